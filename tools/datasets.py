#!/usr/bin/python3
"""datasets.py - the data sets of the model examples (docs/user-guide.md), as gflowvi CSV input.

gflowvi reads numeric CSV: one header line of column names, then one row of numbers per
observation, the label/response in the last column.  The source files are the ones Debian's
python3-sklearn ships (tools/install-deps.sh installs it), so nothing is downloaded:

  breast-cancer  sklearn/datasets/data/breast_cancer.csv: a count header "569,30,malignant,
                 benign", then 569 rows of 30 features and the label (0 = malignant,
                 1 = benign).  Written with the feature names of sklearn's documentation.
  boston         sklearn/datasets/data/boston_house_prices.csv: a count header "506,13,...",
                 a quoted header of 14 names, then 506 rows; the last column is MEDV, the
                 median house value in $1000s (the response of the regression benchmark).

Usage:
  tools/datasets.py convert [--out DIR]           both files into DIR (default data/):
                                                  DIR/breast_cancer.csv, DIR/boston.csv
  tools/datasets.py split IN.csv TRAIN.csv TEST.csv [--seed S] [--test-fraction F]
                                                  a random train/test split of IN.csv:
                                                  the last n - floor((1 - F) n) rows of a
                                                  permutation drawn from seed S (default 1,
                                                  F = 0.1) are the test rows
  tools/datasets.py boston-splits [--out DIR] [--splits 20]
                                                  the Boston protocol's splits as files,
                                                  DIR/boston_train_S.csv and _test_S.csv,
                                                  S = 1..20 (gflowvi --split-seed=S makes
                                                  its own split in-process instead; the two
                                                  permutations differ)

The data directory is not part of the repository (do not commit copies of the data)."""
import argparse
import csv
import importlib.util
import math
import os
import sys

import numpy as np

BREAST_CANCER_NAMES = [
    f"{stat} {feat}" for stat in ("mean", "error", "worst")
    for feat in ("radius", "texture", "perimeter", "area", "smoothness", "compactness",
                 "concavity", "concave points", "symmetry", "fractal dimension")
]


def sklearn_data_dir():
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("datasets.py: python3-sklearn is not installed (bash tools/install-deps.sh, "
                 "or apt-get install python3-sklearn)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")
    if not os.path.isdir(path):
        sys.exit(f"datasets.py: {path} not found: is python3-sklearn complete?")
    return path


def read_counted(path, names_line):
    """Rows of a sklearn data file with a count header "n,p,...", and the column names when
    names_line (a quoted header after the count line)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    n, p = int(rows[0][0]), int(rows[0][1])
    names = [s.strip() for s in rows[1]] if names_line else None
    body = rows[2:] if names_line else rows[1:]
    data = np.array([[float(v) for v in r] for r in body if r], dtype=float)
    if data.shape != (n, p + 1):
        sys.exit(f"datasets.py: {path}: expected {n} rows of {p + 1} columns (count header), "
                 f"found {data.shape[0]} x {data.shape[1]}")
    return names, data


def fmt(x):
    return repr(float(x)) if x != int(x) else str(int(x))


def write_csv(path, names, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(",".join(names) + "\n")
        for row in data:
            f.write(",".join(fmt(v) for v in row) + "\n")
    os.replace(tmp, path)
    print(f"{path}: {data.shape[0]} rows, {data.shape[1]} columns")


def convert(out):
    src = sklearn_data_dir()
    os.makedirs(out, exist_ok=True)
    _, bc = read_counted(os.path.join(src, "breast_cancer.csv"), names_line=False)
    labels = set(bc[:, -1])
    if not labels <= {0.0, 1.0}:
        sys.exit(f"datasets.py: breast_cancer.csv: labels {sorted(labels)} are not 0/1")
    write_csv(os.path.join(out, "breast_cancer.csv"), BREAST_CANCER_NAMES + ["benign"], bc)
    names, bo = read_counted(os.path.join(src, "boston_house_prices.csv"), names_line=True)
    write_csv(os.path.join(out, "boston.csv"), names, bo)


def read_ours(path):
    with open(path) as f:
        header = f.readline().rstrip("\n")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return header, data


def split_rows(n, seed, frac):
    perm = np.random.RandomState(seed).permutation(n)
    ntrain = int(math.floor((1.0 - frac) * n))
    if ntrain < 2 or n - ntrain < 1:
        sys.exit(f"datasets.py: {n} rows cannot be split with test fraction {frac}")
    return perm[:ntrain], perm[ntrain:]


def split(inp, train, test, seed, frac):
    header, data = read_ours(inp)
    tr, te = split_rows(data.shape[0], seed, frac)
    names = header.split(",")
    write_csv(train, names, data[tr])
    write_csv(test, names, data[te])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("--out", default="data")
    s = sub.add_parser("split")
    s.add_argument("inp")
    s.add_argument("train")
    s.add_argument("test")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--test-fraction", type=float, default=0.1)
    b = sub.add_parser("boston-splits")
    b.add_argument("--out", default="data")
    b.add_argument("--splits", type=int, default=20)
    a = ap.parse_args()
    if a.cmd == "convert":
        convert(a.out)
    elif a.cmd == "split":
        split(a.inp, a.train, a.test, a.seed, a.test_fraction)
    else:
        path = os.path.join(a.out, "boston.csv")
        if not os.path.exists(path):
            convert(a.out)
        for k in range(1, a.splits + 1):
            split(path, os.path.join(a.out, f"boston_train_{k}.csv"),
                  os.path.join(a.out, f"boston_test_{k}.csv"), k, 0.1)


if __name__ == "__main__":
    main()
