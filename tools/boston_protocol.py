#!/usr/bin/python3
"""boston_protocol.py - the Boston-housing BNN benchmark of the PBP and SVGD papers.

20 random 90/10 train/test splits of Boston housing (gflowvi --split-seed=1..20); on each,
gflowvi fits --target=bnn (one hidden layer of 50 ReLU units; inputs and response
standardised on the training part) and reports the test RMSE and the test log-likelihood
under the posterior-predictive mixture, on the original scale.  Prints one line per split,
then the mean and standard error over the splits next to the published figures
(SVGD RMSE 2.96, LL -2.50; PBP 3.01, -2.57; MC dropout 2.97, -2.46), and writes
OUT/protocol.json.

  tools/boston_protocol.py [--splits 20] [--first 1] [--jobs J] [--np P] [--out DIR] [--svgd-protocol]
                           [-- GFLOWVI OPTIONS]

--svgd-protocol follows the SVGD paper's code (bayesian_nn.py): 10% of the training rows held
out as a development set (--dev-fraction=0.1), SVGD's initialisation (--init=target), minibatches
of 100; the report then adds the test log-likelihood with each draw's noise recalibrated on
the dev rows, printed and averaged apart from the uncalibrated one.  It keeps one component:
SVGD's 20 particles as 5 or 20 diagonal components gave the same figures on splits 1-5 at 5
and 20 times the cost (docs/user-guide.md).
Options after "--" are passed to every gflowvi run and override the defaults below.
The data file (default data/boston.csv) is made by tools/datasets.py convert when missing.
Runs go J at a time (default: the number of cores divided by P), each on P ranks (default 1;
P > 1 needs --particles >= P)."""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The defaults measured in docs/user-guide.md: the diagonal family (the 753 parameters of a 50-unit
# network cost O(d) per sample), one component, the stein estimator (the model has no
# Hessian), minibatches of 64 rows (as accurate as all 455 here, 8 times faster).
DEFAULTS = ["--target=bnn", "--hidden=50", "--family=diag", "--particles=1", "--samples=10",
            "--step=0.05", "--iters=3000", "--batch-size=64", "--init-scale=0.1",
            "--init-var=0.01", "--eval-samples=2000", "--out-samples=0", "--progress-every=0",
            "--quiet"]

# --svgd-protocol (docs/user-guide.md, "The SVGD protocol").
SVGD = ["--dev-fraction=0.1", "--init=target", "--batch-size=100"]

PUBLISHED = [("SVGD", 2.96, -2.50), ("PBP", 3.01, -2.57), ("MC dropout", 2.97, -2.46)]


def run_split(k, args, extra):
    out = os.path.join(args.out, f"split_{k:02d}")
    cmd = [args.bin] + args.options + [f"--data={args.data}", f"--split-seed={k}", f"--out={out}",
                                   f"--seed={k}"] + extra
    if args.np > 1:
        cmd = [os.path.join(ROOT, "tools", "mpirun.sh"), str(args.np)] + cmd
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.time() - t0
    if p.returncode != 0:
        return k, None, secs, (p.stderr.strip().splitlines() or ["(no message)"])[-1]
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    return k, s, secs, None


def mean_se(xs):
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else float("nan")
    return m, sd / math.sqrt(n)


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--first", type=int, default=1,
                    help="first split seed: runs splits FIRST .. FIRST + SPLITS - 1")
    ap.add_argument("--np", type=int, default=1, help="MPI ranks per run")
    ap.add_argument("--jobs", type=int, default=0, help="concurrent runs (0: cores / np)")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "boston.csv"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "gflowvi"))
    ap.add_argument("--out", default="boston-protocol")
    ap.add_argument("--svgd-protocol", action="store_true",
                    help="SVGD's dev rows, initialisation, minibatches and components")
    args = ap.parse_args(argv)
    args.options = DEFAULTS + (SVGD if args.svgd_protocol else [])
    if not os.path.exists(args.data):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "datasets.py"), "convert",
                        "--out", os.path.dirname(args.data) or "."], check=True)
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"boston_protocol.py: {args.bin} not found; run make first")
    os.makedirs(args.out, exist_ok=True)
    jobs = args.jobs or max(1, (os.cpu_count() or 1) // args.np)
    print(f"# {args.splits} splits, {jobs} at a time, {args.np} rank(s) each; gflowvi options: "
          + " ".join(args.options + extra), flush=True)
    t0 = time.time()
    rows = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for k, s, secs, err in pool.map(lambda k: run_split(k, args, extra),
                                        range(args.first, args.first + args.splits)):
            if s is None:
                print(f"split {k:2d}: FAILED after {secs:.1f} s: {err}", flush=True)
                continue
            r = s["report"]
            row = {"split": k, "rmse": r["test_rmse"], "loglik": r["test_log_likelihood"],
                   "elbo": s["elbo"], "iterations": s["iterations"], "seconds": secs}
            recal = ""
            if "test_log_likelihood_recalibrated" in r:
                row["loglik_recalibrated"] = r["test_log_likelihood_recalibrated"]
                recal = f" (recalibrated {row['loglik_recalibrated']:.3f})"
            rows.append(row)
            print(f"split {k:2d}: RMSE {r['test_rmse']:.3f}  test LL {r['test_log_likelihood']:.3f}"
                  f"{recal}  ELBO {s['elbo']:.1f}  {s['iterations']} iterations  {secs:.1f} s",
                  flush=True)
    wall = time.time() - t0
    if not rows:
        sys.exit("boston_protocol.py: every run failed")
    rm, rse = mean_se([r["rmse"] for r in rows])
    lm, lse = mean_se([r["loglik"] for r in rows])
    print(f"gflowvi     RMSE {rm:.2f} +- {rse:.2f}   test LL {lm:.2f} +- {lse:.2f}   "
          f"({len(rows)} splits, mean +- standard error; {wall:.0f} s wall in all)")
    summary = {"rmse_mean": rm, "rmse_se": rse, "loglik_mean": lm, "loglik_se": lse}
    if all("loglik_recalibrated" in r for r in rows):
        cm, cse = mean_se([r["loglik_recalibrated"] for r in rows])
        summary.update(loglik_recalibrated_mean=cm, loglik_recalibrated_se=cse)
        print(f"  noise recalibrated on the dev rows:  test LL {cm:.2f} +- {cse:.2f}")
    for name, r, l in PUBLISHED:
        print(f"{name:<11} RMSE {r:.2f}          test LL {l:.2f}")
    with open(os.path.join(args.out, "protocol.json"), "w") as f:
        json.dump({"options": args.options + extra, "splits": rows, **summary, "wall_seconds": wall},
                  f, indent=2)
    if len(rows) < args.splits:
        sys.exit(1)


if __name__ == "__main__":
    main()
