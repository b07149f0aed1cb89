#!/usr/bin/python3
"""boston_draws.py - how far the Boston anchors are from SVGD itself on random draws of splits.

The Boston goal (RMSE <= 2.95, LL >= -2.50 over 20 splits) is SVGD's published figure on the
paper's own random draw of 20 splits, which is not recoverable (its code shuffles without a
seed).  This script asks how often SVGD itself, under its own protocol, reaches that figure
on a random draw of 20 of our splits, and what gflowvi's gap to it is on the same rows.

  tools/boston_protocol.py --svgd-protocol --splits 100 --out P          # gflowvi, splits 1-100
  tools/experiments/boston_svgd.py P --first 1  --splits 50 > S1.log    # SVGD on the same rows
  tools/experiments/boston_svgd.py P --first 51 --splits 50 > S2.log
  tools/experiments/boston_draws.py P S1.log S2.log [--csv results/boston_100_splits.csv]

Prints the means over all splits, over each block of 20, the share of random 20-split draws
(without replacement, 20,000 of them, fixed seed) on which SVGD meets the goal, and gflowvi's
paired gap to SVGD.  --csv writes the per-split table (split, gflowvi's and SVGD's figures).
With --csv-in it reads such a table instead of the runs."""
import argparse
import csv
import json
import os
import re

import numpy as np

GOAL_RMSE, GOAL_LL = 2.95, -2.50
COLS = ["split", "gflowvi_rmse", "gflowvi_ll", "gflowvi_ll_recalibrated", "svgd_rmse", "svgd_ll"]


def read_runs(protocol_out, svgd_logs):
    svgd = {}
    for path in svgd_logs:
        with open(path) as f:
            for line in f:
                m = re.match(r"split\s+(\d+): RMSE ([\d.]+)\s+test LL ([-\d.]+)", line)
                if m:
                    svgd[int(m[1])] = (float(m[2]), float(m[3]))
    with open(os.path.join(protocol_out, "protocol.json")) as f:
        runs = {r["split"]: r for r in json.load(f)["splits"]}
    rows = []
    for k in sorted(set(svgd) & set(runs)):
        r = runs[k]
        rows.append([k, r["rmse"], r["loglik"], r.get("loglik_recalibrated", float("nan")),
                     *svgd[k]])
    return np.array(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("protocol_out", nargs="?")
    ap.add_argument("svgd_logs", nargs="*")
    ap.add_argument("--csv", help="write the per-split table here")
    ap.add_argument("--csv-in", help="read the per-split table from here instead of the runs")
    a = ap.parse_args()
    if a.csv_in:
        T = np.atleast_2d(np.genfromtxt(a.csv_in, delimiter=",", skip_header=1))
    else:
        T = read_runs(a.protocol_out, a.svgd_logs)
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLS)
            for r in T:
                w.writerow([int(r[0])] + [f"{x:.6f}" for x in r[1:]])
    n = len(T)
    G, S = T[:, [1, 3]], T[:, [4, 5]]  # gflowvi: RMSE, recalibrated LL (SVGD's figure is that)

    def ms(x):
        return f"{x.mean():.2f} +- {x.std(ddof=1) / np.sqrt(len(x)):.2f}"

    print(f"{n} splits        gflowvi RMSE {ms(G[:, 0])}  LL {ms(G[:, 1])}   "
          f"SVGD RMSE {ms(S[:, 0])}  LL {ms(S[:, 1])}")
    for b in range(0, n - n % 20, 20):
        print(f"splits {int(T[b, 0]):3d}-{int(T[b + 19, 0]):3d}  gflowvi RMSE {G[b:b + 20, 0].mean():.2f}"
              f"  LL {G[b:b + 20, 1].mean():.2f}   SVGD RMSE {S[b:b + 20, 0].mean():.2f}"
              f"  LL {S[b:b + 20, 1].mean():.2f}")
    if n >= 20:
        rng = np.random.default_rng(1)
        B = np.array([S[rng.choice(n, 20, replace=False)].mean(0) for _ in range(20000)])
        print(f"SVGD on random draws of 20 of these splits: RMSE <= {GOAL_RMSE} in "
              f"{100 * (B[:, 0] <= GOAL_RMSE).mean():.1f}%, LL >= {GOAL_LL} in "
              f"{100 * (B[:, 1] >= GOAL_LL).mean():.1f}%, both in "
              f"{100 * ((B[:, 0] <= GOAL_RMSE) & (B[:, 1] >= GOAL_LL)).mean():.1f}%")
    d = G - S
    print(f"gflowvi - SVGD on the same rows: RMSE {ms(d[:, 0])}  LL {ms(d[:, 1])}")


if __name__ == "__main__":
    main()
