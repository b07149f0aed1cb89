#!/usr/bin/python3
"""Experiment 2: coverage of the four-mode target gmm4 as K grows.

For each K, flow (gflow, ngflow), weights (equal = --weight-step=0, the paper; weight flow
--weight-step=0.05) and seed: KL(q||p) from summary.json and the mass q puts on each mode
(the fraction of samples.csv in each quadrant; the modes sit at (+-3, +-3)). Plots KL and the
smallest mode mass against K (mean and min-max over seeds), and a grid of contour plots of
the fitted densities (density.csv) for the first seed.
"""
import argparse
import os

import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import RESULTS, WORK, run, load_csv, write_csv


def mode_masses(out):
    z = load_csv(os.path.join(out, "samples.csv"))
    q = [(z[:, 0] > 0) & (z[:, 1] > 0), (z[:, 0] < 0) & (z[:, 1] > 0),
         (z[:, 0] < 0) & (z[:, 1] < 0), (z[:, 0] > 0) & (z[:, 1] < 0)]
    return [float(np.mean(m)) for m in q]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--K", default="1,2,4,10,20", help="comma list (the paper's grid adds 50)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=600)
    ap.add_argument("--step", type=float, default=0.05)
    ap.add_argument("--ranks", type=int, default=2)
    a = ap.parse_args()
    Ks = [int(k) for k in a.K.split(",")]
    configs = [(f, ws) for f in ("ngflow", "gflow") for ws in (0.0, 0.05)]
    rows = []
    res = {}
    for flow, ws in configs:
        for K in Ks:
            for seed in range(1, a.seeds + 1):
                out = os.path.join(WORK, "exp2", "%s_w%g_K%d_s%d" % (flow, ws, K, seed))
                rc, s, _ = run(out, ranks=min(a.ranks, K), target="gmm4", particles=K,
                               flow=flow, weight_step=ws, step=a.step, iters=a.iters,
                               seed=seed, out_samples=20000)
                if rc != 0:
                    rows.append([flow, ws, K, seed, "", "", "", "", "", "", "", rc])
                    continue
                mm = mode_masses(out)
                rows.append([flow, ws, K, seed, s["kl"], s["kl_se"], s["khat"]] + mm +
                             [s["rejected_steps"]])
                res.setdefault((flow, ws, K), []).append((s["kl"], min(mm), mm))
    write_csv(os.path.join(RESULTS, "exp2_multimodal.csv"),
              ["flow", "weight_step", "K", "seed", "kl", "kl_se", "khat",
               "mass_pp", "mass_mp", "mass_mm", "mass_pm", "rejected_steps_or_rc"], rows)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (flow, ws) in enumerate(configs):
        lab = "%s, %s" % (flow, "weight flow" if ws else "equal weights")
        kl = [np.array([r[0] for r in res.get((flow, ws, K), [])]) for K in Ks]
        mn = [np.array([r[1] for r in res.get((flow, ws, K), [])]) for K in Ks]
        for ax, v in ((axes[0], kl), (axes[1], mn)):
            mean = [x.mean() for x in v]
            lo = [x.mean() - x.min() for x in v]
            hi = [x.max() - x.mean() for x in v]
            ax.errorbar(np.array(Ks) * (1 + 0.03 * i), mean, yerr=[lo, hi], marker="o",
                        capsize=3, label=lab)
    axes[0].axhline(np.log(4), color="gray", ls=":", label="log 4 (one mode)")
    axes[0].set_yscale("symlog", linthresh=1e-3); axes[0].set_xscale("log")
    axes[0].set_xlabel("K"); axes[0].set_ylabel("KL(q||p)  (mean, min-max over seeds)")
    axes[1].axhline(0.25, color="gray", ls=":")
    axes[1].set_xscale("log"); axes[1].set_xlabel("K")
    axes[1].set_ylabel("smallest mass on a mode (target: 0.25)")
    axes[0].legend(fontsize=7); axes[1].legend(fontsize=7)
    fig.suptitle("gmm4: %d seeds, %d iterations, step %g" % (a.seeds, a.iters, a.step))
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "exp2_kl_vs_K.png"), dpi=110)

    fig, axes = plt.subplots(len(configs), len(Ks), figsize=(2.3 * len(Ks), 2.3 * len(configs)),
                             squeeze=False)
    for i, (flow, ws) in enumerate(configs):
        for j, K in enumerate(Ks):
            ax = axes[i, j]
            out = os.path.join(WORK, "exp2", "%s_w%g_K%d_s1" % (flow, ws, K))
            p = os.path.join(out, "density.csv")
            if os.path.exists(p):
                g = load_csv(p)
                n = int(round(np.sqrt(len(g))))
                X, Y = g[:, 0].reshape(n, n), g[:, 1].reshape(n, n)
                lt, lq = g[:, 2].reshape(n, n), g[:, 3].reshape(n, n)
                lev = np.max(lt) - np.array([6, 4, 2, 0.5])
                ax.contourf(X, Y, np.nan_to_num(lt, nan=-1e9), levels=list(lev) + [1e9],
                            cmap="Blues", alpha=0.6)
                ax.contour(X, Y, np.nan_to_num(lt, nan=-1e9), levels=lev, colors="b", linestyles="solid",
                           linewidths=1.6)
                ax.contour(X, Y, np.nan_to_num(lq, nan=-1e9), levels=lev, colors="r",
                           linewidths=0.8, linestyles="dashed")
                kl = res[(flow, ws, K)][0][0]
                ax.set_title("K=%d KL=%.3f" % (K, kl), fontsize=8)
            ax.set_xticks([]); ax.set_yticks([])
            if j == 0:
                ax.set_ylabel("%s\n%s" % (flow, "w-flow" if ws else "equal w"), fontsize=8)
    fig.suptitle("fitted mixture (red dashed) over the target (blue), same log-density levels, seed 1", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "exp2_densities.png"), dpi=100)
    print("wrote results/exp2_kl_vs_K.png, results/exp2_densities.png")
    for (flow, ws, K), v in sorted(res.items()):
        kl = np.array([x[0] for x in v]); mn = np.array([x[1] for x in v])
        print("%-6s w-step %-4g K=%-3d KL %.4f (%.4f-%.4f)  min mode mass %.3f" %
              (flow, ws, K, kl.mean(), kl.min(), kl.max(), mn.mean()))


if __name__ == "__main__":
    main()
