"""Shared helpers for the experiment scripts: run gflowvi, read its outputs."""
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RESULTS = os.path.join(HERE, "results")
BIN = os.path.join(ROOT, "build", "bin", "gflowvi")
MPIRUN = os.path.join(ROOT, "tools", "mpirun.sh")
WORK = os.environ.get("GFV_EXP_WORK", "/tmp/gflowvi-experiments")


def run(out, ranks=2, check=True, **opts):
    """Run gflowvi on `ranks` ranks with --name=value options; return (rc, summary or None)."""
    if not os.path.exists(BIN):
        sys.exit("build/bin/gflowvi not found: run `make -j2 all` first")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    args = [MPIRUN, str(ranks), BIN, "--quiet", "--out=" + out]
    opts.setdefault("eval_samples", 20000)
    opts.setdefault("out_samples", 2000)
    for k, v in opts.items():
        args.append("--%s=%s" % (k.replace("_", "-"), v))
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    summ = None
    if p.returncode == 0:
        with open(os.path.join(out, "summary.json")) as f:
            summ = json.load(f)
    elif check:
        sys.stderr.write(" ".join(args) + "\n" + p.stderr[-2000:])
    return p.returncode, summ, p.stderr


def load_csv(path):
    return np.atleast_2d(np.genfromtxt(path, delimiter=",", skip_header=1))


def mixture(out):
    """weights (K), means (K,d), covs (K,d,d) (or variances (K,d) for diag) from mixture.csv."""
    m = load_csv(os.path.join(out, "mixture.csv"))
    w = m[:, 0]
    ncol = m.shape[1] - 1
    # full: d + d^2 = ncol; diag: 2d = ncol
    d = int(round((-1 + np.sqrt(1 + 4 * ncol)) / 2))
    if d + d * d == ncol:
        return w, m[:, 1:1 + d], m[:, 1 + d:].reshape(-1, d, d)
    d = ncol // 2
    return w, m[:, 1:1 + d], m[:, 1 + d:]


def write_mixture(path, w, mus, covs):
    """Write a gmm:FILE target in mixture.csv format."""
    K, d = mus.shape
    hdr = ["weight"] + ["mu_%d" % (i + 1) for i in range(d)] + \
        ["cov_%d_%d" % (i + 1, j + 1) for i in range(d) for j in range(d)]
    rows = np.column_stack([w, mus, covs.reshape(K, d * d)])
    np.savetxt(path, rows, delimiter=",", header=",".join(hdr), comments="", fmt="%.17g")


def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(x) for x in r) + "\n")
    print("wrote", os.path.relpath(path, ROOT))
