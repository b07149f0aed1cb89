#!/usr/bin/python3
"""Experiment 3: ELBO and update norm over iterations for step sizes over two orders of
magnitude (default 0.005..0.5, plus 1 and 2 to find where it breaks), both flows, gmm4, K = 10.

A run "diverges" here when gflowvi rejects steps (rejected_steps in summary.json: each
rejection halves the step) or stops with status 4; it "stalls" when the last 10% of the
iterations still improve the ELBO by more than 0.01 (not yet converged) at the end.
"""
import argparse
import os

import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import RESULTS, WORK, run, load_csv, write_csv


def smooth(x, n=10):
    if len(x) < n:
        return x
    return np.convolve(x, np.ones(n) / n, mode="valid")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", default="0.005,0.01,0.02,0.05,0.1,0.2,0.5,1,2")
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--iters", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--weight-step", type=float, default=0.0)
    ap.add_argument("--target", default="gmm4")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--tag", default="exp3")
    a = ap.parse_args()
    steps = [float(x) for x in a.steps.split(",")]
    rows = []
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    cmap = plt.get_cmap("viridis")
    for col, flow in enumerate(["ngflow", "gflow"]):
        for i, eta in enumerate(steps):
            out = os.path.join(WORK, a.tag, "%s_eta%g" % (flow, eta))
            rc, s, err = run(out, ranks=a.ranks, check=False, target=a.target, particles=a.K,
                             flow=flow, step=eta, iters=a.iters, seed=a.seed,
                             weight_step=a.weight_step)
            if rc != 0:
                rows.append([flow, eta, rc, "", "", "", "", "", "failed: " + ([l for l in err.splitlines() if "error:" in l] or ["?"])[0][:120]])
                continue
            tr = load_csv(os.path.join(out, "trace.csv"))
            it, elbo, snorm, ssize = tr[:, 0], tr[:, 1], tr[:, 3], tr[:, 4]
            n = len(elbo)
            tail = int(max(10, 0.1 * n))
            late_gain = np.mean(elbo[-tail // 2:]) - np.mean(elbo[-tail:-tail // 2])
            status = []
            if s["rejected_steps"] > 0:
                status.append("%d rejected steps (final step %g)" % (s["rejected_steps"], ssize[-1]))
            if late_gain > 0.01:
                status.append("still improving at the end (stalled/slow)")
            if not status:
                status.append("converged")
            if n < a.iters + 1:
                status.append("stopped at iteration %d" % (n - 1))
            rows.append([flow, eta, 0, s["kl"], s["kl_se"], s["rejected_steps"], ssize[-1],
                         float(np.mean(snorm[-tail:])), "; ".join(status)])
            c = cmap(i / max(1, len(steps) - 1))
            axes[0, col].plot(it[9:], smooth(-elbo), color=c, lw=1, label="eta %g" % eta)
            axes[1, col].plot(it[1:], snorm[1:], color=c, lw=0.6, label="eta %g" % eta)
        axes[0, col].set_yscale("log"); axes[1, col].set_yscale("log")
        axes[0, col].set_title("%s, %s K=%d: -ELBO = KL (10-iteration mean)" % (flow, a.target, a.K), fontsize=9)
        axes[1, col].set_title("%s: update norm per iteration" % flow, fontsize=9)
        axes[1, col].set_xlabel("iteration")
        axes[0, col].legend(fontsize=7, ncol=2)
    for flow in ("ngflow", "gflow"):   # far above the flow's best KL = not converged
        ok = [r[3] for r in rows if r[0] == flow and r[3] != ""]
        for r in rows:
            if r[0] == flow and r[3] != "" and r[3] > min(ok) + 0.02 and "converged" in r[8]:
                r[8] = "KL %.3g above the best step's: not converged in %d iterations" % (
                    r[3] - min(ok), a.iters)
    fig.tight_layout()
    png = os.path.join(RESULTS, "%s_convergence.png" % a.tag)
    fig.savefig(png, dpi=110)
    write_csv(os.path.join(RESULTS, "%s_convergence.csv" % a.tag),
              ["flow", "step", "rc", "kl", "kl_se", "rejected_steps", "final_step",
               "late_step_norm", "status"], rows)
    print("wrote", png)
    for r in rows:
        print("%-6s eta %-6g KL %-10s rejected %-3s %s" % (r[0], r[1],
              ("%.4f" % r[3]) if r[3] != "" else "-", r[5], r[8]))


if __name__ == "__main__":
    main()
