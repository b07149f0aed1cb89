#!/usr/bin/python3
"""Open question 2, built in: the step-size schedules of src/solver/schedule.c (run by
tools/experiments/schedule_driver.c, the solver loop with the schedule and the windowed
convergence test) on the setting of oq2_stepsize.py, to choose the adaptive rule's noise
threshold and cap.

gmm4 (normalised, so KL is known), K = 64 equal weights, 400 iterations, both flows, several
seeds.  Strategies: constant steps; decay (eta0 = 1, chunk 25); adaptive with
  z = 0/0   the experiment's rule: grow on any increase of the half-chunk mean, else halve
  z = 1/1   grow only on an increase of more than 1 se, else halve
  z = 1/-1  grow on an increase of more than 1 se, halve on a decrease of more than 1 se,
            keep the step in between (dead band)
each from start steps 0.05 (the default --step) and 0.1 (the experiment's), with caps 1 and
2 (= 20 x the start).  Then logistic regression on the breast-cancer data (default settings,
1000 iterations): final ELBO and the iteration where the convergence test (tol 1e-3,
window 50, hold 2) held, for the same strategies.
Writes results/oq2_schedule.csv and prints a summary per strategy and flow."""
import argparse
import os
import subprocess
import sys

import numpy as np

from _common import RESULTS, ROOT, MPIRUN, write_csv

DRIVER = os.path.join(ROOT, "build", "bin", "schedule_driver")
FLAGS = ("-O2 -g -std=c11 -D_DEFAULT_SOURCE -Iinclude -Isrc -I/usr/include/hdf5/openmpi -Wall "
         "-Wextra -Werror").split()
LIBS = "-lhdf5_openmpi -lgsl -llapacke -lopenblas -lm -ldl".split()


def build():
    lib = os.path.join(ROOT, "build", "libgflowvi.a")
    if not os.path.exists(lib):
        sys.exit("build/libgflowvi.a not found: run `make -j2 all` first")
    src = os.path.join(ROOT, "tools", "experiments", "schedule_driver.c")
    subprocess.run(["mpicc"] + FLAGS + [src, lib, "-o", DRIVER] + LIBS, cwd=ROOT, check=True)


def drive(ranks, **opts):
    args = [MPIRUN, str(ranks), DRIVER] + ["--%s=%s" % (k.replace("_", "-"), v)
                                           for k, v in opts.items()]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = [l for l in p.stdout.splitlines() if l.startswith("kl=")]
    if p.returncode != 0 or not line:
        return None, (p.stderr.strip().splitlines() or ["status %d" % p.returncode])[-1][:120]
    return dict(kv.split("=", 1) for kv in line[0].split()), ""


def strategies(a):
    out = [("constant %g" % e, dict(schedule="constant", step=e)) for e in a.constant]
    out.append(("decay 1", dict(schedule="decay", step=1)))
    for start in a.starts:
        for cap in a.caps:
            for floor in a.floors:
                for rule in a.rules:
                    zu, zd = (float(x) for x in rule.split("/"))
                    c = cap if cap > 0 else max(1.0, start)  # cap 0: max(1, start)
                    out.append(("adaptive z=%s start %g cap %g min /%g" % (rule, start, c, floor),
                                dict(schedule="adaptive", step=start, step_max=c,
                                     step_min=start / floor, z_up=zu, z_down=zd)))
    return out


def floats(text):
    return [float(x) for x in text.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--K", type=int, default=64)
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--logreg-data", default="",
                    help="breast_cancer.csv from tools/datasets.py convert (skipped if empty)")
    ap.add_argument("--logreg-seeds", type=int, default=2)
    ap.add_argument("--rules", default="0/0,1/1,1/-1", help="adaptive z_up/z_down pairs")
    ap.add_argument("--starts", type=floats, default=[0.05, 0.1])
    ap.add_argument("--caps", type=floats, default=[1, 2], help="0: max(1, start)")
    ap.add_argument("--floors", type=floats, default=[1024], help="step_min = start / FLOOR")
    ap.add_argument("--constant", type=floats, default=[0.05, 0.2, 0.5, 1])
    ap.add_argument("--logreg-starts", type=floats, default=[0.05, 0.1])
    ap.add_argument("--tag", default="", help="results/oq2_schedule{TAG}.csv")
    a = ap.parse_args()
    a.rules = a.rules.split(",")
    STRATEGIES = strategies(a)
    build()
    rows = []
    for flow in ("ngflow", "gflow"):
        for name, opt in STRATEGIES:
            for seed in range(1, a.seeds + 1):
                r, err = drive(a.ranks, target="gmm4", particles=a.K, flow=flow, iters=a.iters,
                               seed=seed, eval_samples=20000, conv_tol=1e-3, **opt)
                rows.append(["gmm4", flow, name, seed] + (
                    [r["kl"], r["rejected"], r["converged_at"], r["replay"], r["steps"]]
                    if r else ["", "", "", "", "failed: " + err]))
    if a.logreg_data:
        for name, opt in STRATEGIES:
            if opt["schedule"] == "decay" or opt["step"] not in a.logreg_starts:
                continue
            for seed in range(1, a.logreg_seeds + 1):
                r, err = drive(a.ranks, target="logreg", data=a.logreg_data, iters=1000, seed=seed,
                               conv_tol=1e-3, **opt)
                rows.append(["logreg", "ngflow", name, seed] + (
                    [r["elbo"], r["rejected"], r["converged_at"], r["replay"], r["steps"]]
                    if r else ["", "", "", "", "failed: " + err]))
    write_csv(os.path.join(RESULTS, "oq2_schedule%s.csv" % a.tag),
              ["target", "flow", "strategy", "seed", "kl_or_elbo", "rejected", "converged_at",
               "replay", "steps"], rows)
    print("%-7s %-6s %-46s %9s %9s %9s %5s %5s %s" % ("target", "flow", "strategy", "median",
                                                      "worst", "best", "fail", "rej",
                                                      "converged_at (median)"))
    for tgt in ("gmm4", "logreg"):
        for flow in ("ngflow", "gflow"):
            for name, _ in STRATEGIES:
                rs = [r for r in rows if r[0] == tgt and r[1] == flow and r[2] == name]
                if not rs:
                    continue
                v = np.array([float(r[4]) for r in rs if r[4] != ""])
                fails = sum(1 for r in rs if r[4] == "")
                rej = sum(int(r[5]) for r in rs if r[5] != "")
                conv = [int(r[6]) for r in rs if r[6] not in ("", "-1")]
                worst = (v.max() if tgt == "gmm4" else v.min()) if len(v) else np.nan
                best = (v.min() if tgt == "gmm4" else v.max()) if len(v) else np.nan
                print("%-7s %-6s %-46s %9.4f %9.4f %9.4f %5d %5d %s" % (
                    tgt, flow, name, np.median(v) if len(v) else np.nan, worst, best, fails, rej,
                    ("%d/%d at %d" % (len(conv), len(rs), np.median(conv))) if conv else
                    "0/%d" % len(rs)))
    bad = [r for r in rows if r[7] not in ("same", "")]
    print("replay of the trace reproduced the live schedule and test: %s" %
          ("every run" if not bad else "NOT in %d runs" % len(bad)))


if __name__ == "__main__":
    main()
