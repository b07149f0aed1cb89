#!/usr/bin/python3
"""posteriordb_table.py - fits posteriordb posteriors with gflowvi --target=stan and scores
the fits against posteriordb's reference draws (docs/user-guide.md, "Stan models").

    tools/posteriordb_table.py [--posteriordb DIR] [--np N] [--only NAME] [--json FILE]
                               [--keep DIR] [-- GFLOWVI OPTIONS...]
    tools/posteriordb_table.py --extract POSTERIORDB_DIR tests/stan/posteriordb

For each posterior folder of DIR (default tests/stan/posteriordb, the repository's copy;
each holds model.stan, data.json.zip, and reference_draws.json.zip as posteriordb ships
it or the reference draws' means and standard deviations, reference_moments.json): runs gflowvi on N ranks (default 1) with the
options given after `--` (default: none, gflowvi's defaults), reads the fit's draws.csv
(the draws mapped to Stan's named, constrained parameters by the model's write_array, as
gflowvi writes them for every Stan fit), and compares, for every named parameter of the
reference draws,
    mean error  |mean_q - mean_ref| / sd_ref      and      sd ratio  sd_q / sd_ref.
Prints a Markdown table (worst and median over the parameters of each posterior) and, with
--json, writes every figure to FILE.  Exit status 1 when a fit fails.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))

TOOL = os.path.join(ROOT, "tools", "stan", "gflowvi-stan")


def read_zip_json(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if len(names) != 1:
            raise SystemExit("%s: expected one member, found %d" % (path, len(names)))
        return json.loads(z.read(names[0]))


def reference(pdir):
    """{name: (mean, sd)} of the reference draws: from reference_draws.json.zip (all chains)
    where the folder has it, else from reference_moments.json (the repository's copy,
    tests/stan/posteriordb/, written by --extract)."""
    path = os.path.join(pdir, "reference_draws.json.zip")
    if not os.path.isfile(path):
        with open(os.path.join(pdir, "reference_moments.json")) as f:
            return {k: (v["mean"], v["sd"]) for k, v in json.load(f).items()}
    out = {}
    for ch in read_zip_json(path):
        for k, v in ch.items():
            out.setdefault(k, []).extend(v)
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1))) for k, v in out.items()}


def extract(src, dest):
    """The repository's copy of the posteriordb folders in src: model.stan and data.json.zip
    unchanged, and each parameter's mean and standard deviation over the 10,000 reference
    draws (reference_moments.json) instead of the draws themselves."""
    for d in sorted(os.listdir(src)):
        if not os.path.isfile(os.path.join(src, d, "model.stan")):
            continue
        os.makedirs(os.path.join(dest, d), exist_ok=True)
        for f in ("model.stan", "data.json.zip", "posterior.json"):
            shutil.copyfile(os.path.join(src, d, f), os.path.join(dest, d, f))
        mom = reference(os.path.join(src, d))
        with open(os.path.join(dest, d, "reference_moments.json"), "w") as f:
            json.dump({k: {"mean": m, "sd": s} for k, (m, s) in mom.items()}, f, indent=1)
            f.write("\n")


def fit(pdir, work, args):
    name = os.path.basename(pdir.rstrip("/"))
    data = os.path.join(work, name + ".data.json")
    with open(data, "w") as f:
        json.dump(read_zip_json(os.path.join(pdir, "data.json.zip")), f)
    model = os.path.join(pdir, "model.stan")
    out = os.path.join(work, name)
    cmd = [os.path.join(ROOT, "tools", "mpirun.sh"), str(args.np), args.gflowvi,
           "--target=stan:" + model, "--data=" + data, "--out=" + out, "--quiet"] + args.opts
    # The model's compilation (once, then cached) is timed apart from the fit.
    t0 = time.time()
    r = subprocess.run([TOOL, "build", "--quiet", model], capture_output=True, text=True)
    build_s = time.time() - t0
    if r.returncode != 0:
        return {"posterior": name, "error": r.stderr.strip()}
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    fit_s = time.time() - t0
    if r.returncode not in (0, 12):
        return {"posterior": name, "error": "gflowvi exit %d: %s" % (r.returncode, r.stderr.strip()[-500:])}
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    draws = pd.read_csv(os.path.join(out, "draws.csv"), float_precision="round_trip")
    ref = reference(pdir)
    rows = []
    for k, (mean, sd) in ref.items():
        if k not in draws.columns:
            return {"posterior": name, "error": "reference parameter %s is not in draws.csv" % k}
        q = draws[k].values
        q = q[np.isfinite(q)]
        rows.append({"name": k, "mean_ref": mean, "sd_ref": sd,
                     "mean_q": float(q.mean()), "sd_q": float(q.std(ddof=1)),
                     "mean_err": float(abs(q.mean() - mean) / sd),
                     "sd_ratio": float(q.std(ddof=1) / sd)})
    errs = np.array([r_["mean_err"] for r_ in rows])
    ratios = np.array([r_["sd_ratio"] for r_ in rows])
    return {"posterior": name, "dim": summary["dim"], "parameters": len(rows),
            "elbo": summary["elbo"], "elbo_se": summary["elbo_se"], "khat": summary["khat"],
            "log_evidence": summary["log_evidence"], "reliable": summary["reliable"],
            "fit_seconds": fit_s, "build_seconds": build_s,
            "mean_err_max": float(errs.max()), "mean_err_median": float(np.median(errs)),
            "sd_ratio_min": float(ratios.min()), "sd_ratio_max": float(ratios.max()),
            "sd_ratio_median": float(np.median(ratios)), "per_parameter": rows,
            "options": " ".join(args.opts) or "(defaults)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--posteriordb", default=os.path.join(ROOT, "tests", "stan", "posteriordb"),
                    help="folder of posterior folders (default: the repository's copy; "
                         "posteriordb's own folders, with reference_draws.json.zip, work too)")
    ap.add_argument("--extract", nargs=2, metavar=("SRC", "DEST"),
                    help="write the repository's copy of SRC's posteriors to DEST and stop")
    ap.add_argument("--gflowvi", default=os.path.join(ROOT, "build", "bin", "gflowvi"))
    ap.add_argument("--np", type=int, default=1)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--keep", default="", help="keep the fits' output folders here")
    ap.add_argument("--params", default="",
                    help="also write every named parameter's scores as Markdown to this file")
    ap.add_argument("--from-json", default="",
                    help="print the tables of an earlier run's --json FILE (no fitting)")
    ap.add_argument("opts", nargs="*", help="gflowvi options (after --)")
    args = ap.parse_args()
    if args.extract:
        extract(*args.extract)
        return 0
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        return report(results, args)
    dirs = sorted(os.path.join(args.posteriordb, d) for d in os.listdir(args.posteriordb)
                  if os.path.isfile(os.path.join(args.posteriordb, d, "model.stan")))
    if args.only:
        dirs = [d for d in dirs if args.only in os.path.basename(d)]
    if not dirs:
        raise SystemExit("no posterior folders (with model.stan) in %s" % args.posteriordb)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        for d in dirs:
            results.append(fit(d, work, args))
    return report(results, args)


def per_parameter(results):
    """Markdown: one row per named parameter of every posterior."""
    lines = ["| posterior | parameter | ref mean | ref sd | mean | sd | mean err | sd ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for p in r.get("per_parameter", []):
            lines.append("| %s | `%s` | %.4g | %.4g | %.4g | %.4g | %.3f | %.3f |" %
                         (r["posterior"], p["name"], p["mean_ref"], p["sd_ref"], p["mean_q"],
                          p["sd_q"], p["mean_err"], p["sd_ratio"]))
    return "\n".join(lines) + "\n"


def report(results, args):
    """Prints the summary table (worst and median per posterior); writes --json, --params."""
    print("| posterior | d | params | max mean err | median mean err | sd ratio min / median / max "
          "| ELBO | k-hat | fit s |")
    print("|---|---|---|---|---|---|---|---|---|")
    bad = 0
    for r in results:
        if "error" in r:
            bad += 1
            print("| %s | fit failed: %s |" % (r["posterior"], r["error"]))
            continue
        print("| %s | %d | %d | %.3f | %.3f | %.2f / %.2f / %.2f | %.2f +- %.2f | %.2f | %.1f |" %
              (r["posterior"], r["dim"], r["parameters"], r["mean_err_max"], r["mean_err_median"],
               r["sd_ratio_min"], r["sd_ratio_median"], r["sd_ratio_max"], r["elbo"], r["elbo_se"],
               r["khat"], r["fit_seconds"]))
    if args.json and not args.from_json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.params:
        with open(args.params, "w") as f:
            f.write(per_parameter(results))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
