#!/usr/bin/python3
"""Open question 3: non-Gaussian targets that the Gaussian components must tile.

Targets: banana (d = 2), Neal's funnel (d = 2..5), and a heavy-tailed mixture of two 2-D
Student-t densities (nu = 3). gflowvi has no Student-t target, so the t mixture is written as
a gmm:FILE target through the scale-mixture identity t_nu(z; m, S) = E_u[N(z; m, S/u)],
u ~ Gamma(nu/2, rate nu/2), discretised by --nodes-point Gauss-Laguerre quadrature (the
tails are then t-like out to about 5 scale units and Gaussian beyond; KL is against this
finite mixture). For each target and K: KL(q||p) and the PSIS k-hat of the fit (summary.json),
NGFlow-VI with the weight flow.
"""
import argparse
import math
import os

import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import RESULTS, WORK, run, write_csv, write_mixture


def student_t_mixture(path, nu=3.0, nodes=24):
    x, wq = np.polynomial.laguerre.laggauss(nodes)
    a = nu / 2
    wu = wq * x ** (a - 1) / math.gamma(a)      # Gamma(a, 1) weights at x; u = x / (nu/2)
    keep = wu > 1e-14
    x, wu = x[keep], wu[keep] / wu[keep].sum()
    scale = a / x                                # covariance multiplier 1/u
    comps = [((-2.5, 0.0), np.array([[1.0, 0.6], [0.6, 1.0]])),
             ((2.5, 0.0), np.array([[1.0, -0.6], [-0.6, 1.0]]))]
    w, mus, covs = [], [], []
    for m, S in comps:
        for wi, si in zip(wu, scale):
            w.append(0.5 * wi); mus.append(m); covs.append(S * si)
    write_mixture(path, np.array(w), np.array(mus), np.array(covs))
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--K", default="1,2,4,8,16,32")
    ap.add_argument("--funnel-dims", default="2,3,4,5")
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--step", type=float, default=0.05)
    ap.add_argument("--weight-step", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ranks", type=int, default=2)
    a = ap.parse_args()
    Ks = [int(k) for k in a.K.split(",")]
    os.makedirs(os.path.join(WORK, "oq3"), exist_ok=True)
    tfile = student_t_mixture(os.path.join(WORK, "oq3", "tmix.csv"))
    targets = [("banana", dict(target="banana"))]
    targets += [("funnel d=%s" % d, dict(target="funnel", dim=int(d)))
                for d in a.funnel_dims.split(",")]
    targets += [("t3 mixture", dict(target="gmm:" + tfile))]
    rows, res = [], {}
    for name, topts in targets:
        for K in Ks:
            out = os.path.join(WORK, "oq3", "%s_K%d" % (name.replace(" ", "_").replace("=", ""), K))
            rc, s, err = run(out, ranks=min(a.ranks, K), check=False, particles=K,
                             step=a.step, weight_step=a.weight_step, iters=a.iters,
                             seed=a.seed, eval_samples=40000, out_samples=10, **topts)
            if rc != 0:
                rows.append([name, K, rc, "", "", "", ""])
                print("%-12s K=%-3d failed (status %d)" % (name, K, rc))
                continue
            rows.append([name, K, 0, s["kl"], s["kl_se"], s["khat"], s["rejected_steps"]])
            res[(name, K)] = (s["kl"], s["khat"])
            print("%-12s K=%-3d KL %.4f +- %.4f  khat %.2f  rejected %d" %
                  (name, K, s["kl"], s["kl_se"], s["khat"], s["rejected_steps"]))
    write_csv(os.path.join(RESULTS, "oq3_nongaussian.csv"),
              ["target", "K", "rc", "kl", "kl_se", "khat", "rejected_steps"], rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, _) in enumerate(targets):
        ks = [K for K in Ks if (name, K) in res]
        axes[0].plot(ks, [max(res[(name, K)][0], 1e-4) for K in ks], marker="o", label=name)
        axes[1].plot(ks, [res[(name, K)][1] for K in ks], marker="o", label=name)
    axes[0].set_yscale("log"); axes[0].set_ylabel("KL(q||p) (floored at 1e-4)")
    axes[1].axhline(0.7, color="gray", ls=":", label="k-hat 0.7")
    axes[1].set_ylabel("PSIS k-hat")
    for ax in axes:
        ax.set_xscale("log", base=2); ax.set_xlabel("K"); ax.legend(fontsize=7)
    fig.suptitle("non-Gaussian targets: NGFlow-VI, weight flow, %d iterations, seed %d"
                 % (a.iters, a.seed), fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "oq3_nongaussian.png"), dpi=110)
    print("wrote results/oq3_nongaussian.png")


if __name__ == "__main__":
    main()
