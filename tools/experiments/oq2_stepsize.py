#!/usr/bin/python3
"""Open question 2: step-size sensitivity with many particles (default K = 64 on gmm4, equal
weights): fixed steps against a decaying schedule and an adaptive rule.

gflowvi has no schedule option, so both are emulated with checkpoints: the run is cut into
chunks of --chunk iterations; each chunk restarts from the previous chunk's checkpoint
(--restart, which keeps particles, random streams and trace) with a new --step.
- decay:    eta_c = eta0 / (1 + c)   (c = chunk index; eta0 = --decay-start)
- adaptive: start at --adapt-start; after each chunk compare the mean ELBO of the chunk's
            second half with that of the previous chunk's second half: improved -> eta * 1.5
            (capped at --adapt-max), otherwise (or if gflowvi rejected a step) -> eta / 2.
Reports the final KL of each strategy, flow and seed; robust = low KL for every flow and seed.
"""
import argparse
import os
import shutil

import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import RESULTS, WORK, run, load_csv, write_csv


def chunked(tag, flow, seed, a, next_step):
    """Run in chunks; next_step(c, trace_so_far, eta) gives the step for chunk c."""
    base = os.path.join(WORK, "oq2", "%s_%s_s%d" % (tag, flow, seed))
    shutil.rmtree(base, ignore_errors=True)
    prev, eta, steps = None, None, []
    for c in range(a.iters // a.chunk):
        eta = next_step(c, None if prev is None else load_csv(os.path.join(prev, "trace.csv")), eta)
        steps.append(eta)
        out = os.path.join(base, "c%d" % c)
        opts = dict(target="gmm4", particles=a.K, flow=flow, step=eta, iters=(c + 1) * a.chunk,
                    seed=seed, checkpoint_every=a.chunk, weight_step=a.weight_step,
                    eval_samples=20000, out_samples=10)
        if prev is not None:
            opts["restart"] = os.path.join(prev, "checkpoint.h5")
        rc, s, err = run(out, ranks=a.ranks, check=False, **opts)
        if rc != 0:
            return None, steps, "failed in chunk %d: %s" % (c, err.strip().splitlines()[-1][:100])
        prev = out
    return s, steps, os.path.join(prev, "trace.csv")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--K", type=int, default=64)
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--chunk", type=int, default=25)
    ap.add_argument("--fixed", default="0.01,0.05,0.2,0.5,1,2")
    ap.add_argument("--decay-start", type=float, default=1.0)
    ap.add_argument("--adapt-start", type=float, default=0.1)
    ap.add_argument("--adapt-max", type=float, default=2.0)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--weight-step", type=float, default=0.0)
    ap.add_argument("--ranks", type=int, default=2)
    a = ap.parse_args()
    fixed = [float(x) for x in a.fixed.split(",")]
    rows, curves = [], {}

    def decay(c, tr, eta):
        return a.decay_start / (1 + c)

    def adaptive(c, tr, eta):
        if tr is None:
            return a.adapt_start
        h = a.chunk // 2
        cur = np.mean(tr[-h:, 1])
        prv = np.mean(tr[-a.chunk - h:-a.chunk, 1]) if len(tr) > a.chunk + h else -np.inf
        rejected = np.any(tr[-a.chunk:, 4] < eta * (1 - 1e-12))
        if cur > prv and not rejected:
            return min(eta * 1.5, a.adapt_max)
        return eta / 2

    for flow in ("ngflow", "gflow"):
        for seed in range(1, a.seeds + 1):
            for eta in fixed:
                out = os.path.join(WORK, "oq2", "fixed%g_%s_s%d" % (eta, flow, seed))
                rc, s, err = run(out, ranks=a.ranks, check=False, target="gmm4", particles=a.K,
                                 flow=flow, step=eta, iters=a.iters, seed=seed,
                                 weight_step=a.weight_step, eval_samples=20000, out_samples=10)
                name = "fixed %g" % eta
                if rc != 0:
                    rows.append([flow, seed, name, "", "", "", "failed (status %d)" % rc])
                    continue
                rows.append([flow, seed, name, s["kl"], s["kl_se"], s["rejected_steps"], ""])
                curves[(flow, seed, name)] = load_csv(os.path.join(out, "trace.csv"))
            for name, rule in (("decay", decay), ("adaptive", adaptive)):
                s, steps, info = chunked(name, flow, seed, a, rule)
                if s is None:
                    rows.append([flow, seed, name, "", "", "", info])
                    continue
                rows.append([flow, seed, name, s["kl"], s["kl_se"], s["rejected_steps"],
                             "steps per chunk: " + " ".join("%.3g" % x for x in steps)])
                curves[(flow, seed, name)] = load_csv(info)
    write_csv(os.path.join(RESULTS, "oq2_stepsize.csv"),
              ["flow", "seed", "strategy", "kl", "kl_se", "rejected_steps", "note"], rows)
    names = ["fixed %g" % e for e in fixed] + ["decay", "adaptive"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for col, flow in enumerate(("ngflow", "gflow")):
        ax = axes[col]
        for i, nm in enumerate(names):
            tr = curves.get((flow, 1, nm))
            if tr is None:
                continue
            y = np.convolve(-tr[:, 1], np.ones(10) / 10, mode="valid")
            ax.plot(tr[9:, 0], np.maximum(y, 1e-4), lw=1.6 if nm in ("decay", "adaptive") else 0.8,
                    ls="-" if nm.startswith("fixed") else "--", color="C%d" % i, label=nm)
        ax.set_yscale("log"); ax.set_xlabel("iteration")
        ax.set_title("%s, gmm4 K=%d, seed 1: -ELBO (10-it mean, floored 1e-4)" % (flow, a.K),
                     fontsize=9)
        ax.legend(fontsize=7, ncol=2)
    ax = axes[2]
    for j, flow in enumerate(("ngflow", "gflow")):
        for i, nm in enumerate(names):
            v = [r[3] for r in rows if r[0] == flow and r[2] == nm and r[3] != ""]
            if v:
                ax.plot([i + 0.15 * j] * len(v), v, "o", color="C%d" % j,
                        label=flow if i == 0 else None)
            nf = sum(1 for r in rows if r[0] == flow and r[2] == nm and r[3] == "")
            if nf:
                ax.text(i + 0.15 * j, 2, "x%d" % nf, color="C%d" % j, fontsize=7)
    ax.set_xticks(range(len(names))); ax.set_xticklabels(names, rotation=45, fontsize=7)
    ax.set_yscale("log"); ax.set_ylabel("final KL (each seed; 'xN' = N failed runs)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "oq2_stepsize.png"), dpi=110)
    print("wrote results/oq2_stepsize.png")
    for r in rows:
        print("%-6s seed %d %-10s KL %-8s rejected %-3s %s" % (r[0], r[1], r[2],
              ("%.4f" % r[3]) if r[3] != "" else "-", r[5], r[6]))


if __name__ == "__main__":
    main()
