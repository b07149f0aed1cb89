#!/usr/bin/env bash
# test_bnn_dev.sh - the bnn target's SVGD protocol pieces, against NumPy:
#  - --dev-fraction holds out the last round(f n) training rows: they are disjoint from the
#    test rows, the training statistics (summary.json data.mean) are those of the remaining
#    rows alone, and the dev rows and the fit from --init=target are the same at 1 and 3 ranks;
#  - the dev recalibration: with a point-mass mixture (--init-var=1e-14, no iterations) every
#    draw is the mean network, so the recalibrated noise sd is the root mean squared dev
#    residual of that network, computed here from mixture.csv and the data file, and the
#    recalibrated test and dev log-likelihoods are Gaussian ones with that variance;
#  - --init=target (SVGD's start): biases 0, log gamma = -log of the starting network's mean
#    squared residual on the (standardised) training rows;
#  - tools/boston_protocol.py --svgd-protocol: its means are those of its runs' summaries;
#  - misuse: --dev-fraction with logreg, too many dev rows, --init=target without one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

data=$(tmpdir)
"$GFV_PYTHON" - "$data" <<'EOF'
import sys
import numpy as np
r = np.random.RandomState(3)
X = r.normal(size=(80, 4))
y = 10 + 3 * np.sin(X[:, 0]) + X[:, 1] ** 2 - X[:, 2] + 0.3 * r.normal(size=80)
np.savetxt(f"{sys.argv[1]}/reg.csv", np.column_stack([X, y]), delimiter=",",
           header="a,b,c,d,y", comments="", fmt="%.10g")
X = r.normal(size=(6, 2))
np.savetxt(f"{sys.argv[1]}/small.csv", np.column_stack([X, X[:, 0]]), delimiter=",", fmt="%.10g")
np.savetxt(f"{sys.argv[1]}/labels.csv", np.column_stack([X, X[:, 0] > 0]), delimiter=",", fmt="%.10g")
EOF

# The point-mass fit: one component, the SVGD start, no iterations.
common=(--target=bnn --data="$data/reg.csv" --split-seed=2 --dev-fraction=0.2 --hidden=8
  --family=diag --init=target --eval-samples=200)
o1=$(tmpdir)
o3=$(tmpdir)
if gfv_mpirun 1 "${common[@]}" --particles=1 --init-var=1e-14 --iters=0 --out="$o1" >"$o1.log" 2>&1 &&
  gfv_mpirun 3 "${common[@]}" --particles=3 --init-var=0.01 --iters=20 --batch-size=16 \
    --out="$o3" >"$o3.log" 2>&1 &&
  gfv_mpirun 1 "${common[@]}" --particles=3 --init-var=0.01 --iters=20 --batch-size=16 \
    --out="$o3.np1" >"$o3.np1.log" 2>&1; then
  if msg=$("$GFV_PYTHON" - "$data/reg.csv" "$o1" "$o3" <<'EOF'
import json, sys
import numpy as np
csv, o1, o3 = sys.argv[1:4]
A = np.loadtxt(csv, delimiter=",", skiprows=1)
s, s3 = (json.load(open(f"{o}/summary.json")) for o in (o1, o3))
d, r = s["data"], s["report"]
n, p, H = len(A), 4, 8
test = np.array(d["test_rows_in_file"]) - 1
dev = np.array(d["dev_rows_in_file"]) - 1
train = np.setdiff1d(np.arange(n), np.concatenate([test, dev]))
bad = []
ntrain0 = n - len(test)
if len(test) != 8 or len(dev) != round(0.2 * ntrain0) or d["dev_rows"] != len(dev):
    bad.append(f"{len(test)} test, {len(dev)} dev rows")
if len(np.intersect1d(test, dev)) or len(set(dev)) != len(dev) or d["training_rows"] != len(train):
    bad.append("dev rows overlap the test rows or the counts do not add up")
if not np.allclose(d["mean"], A[train, :p].mean(0), rtol=0, atol=1e-12):
    bad.append("the training statistics are not those of the rows left after the dev rows")
if np.allclose(d["mean"], A[np.concatenate([train, dev]), :p].mean(0), rtol=0, atol=1e-6):
    bad.append("the statistics do not tell the dev rows apart")
d3 = s3["data"]
if d3["dev_rows_in_file"] != d["dev_rows_in_file"] or d3["test_rows_in_file"] != d["test_rows_in_file"]:
    bad.append("3 ranks hold out other rows")
# the mean network (weights of the only component)
mu = np.loadtxt(f"{o1}/mixture.csv", delimiter=",", skiprows=1)[1:1 + (p + 2) * H + 3]
W1, b1 = mu[:p * H].reshape(p, H), mu[p * H:p * H + H]
w2, b2, lg = mu[p * H + H:p * H + 2 * H], mu[-3], mu[-2]
ym, ys = d["response_mean"], d["response_scale"]
def f(rows):
    Xs = (A[rows, :p] - d["mean"]) / d["scale"]
    return np.maximum(Xs @ W1 + b1, 0) @ w2 + b2
if np.any(b1 != 0) or b2 != 0:
    bad.append("--init=target: biases not 0")
ytr = (A[train, p] - ym) / ys
if abs(ym - A[train, p].mean()) > 1e-9 or abs(ys - A[train, p].std()) > 1e-9:
    bad.append("response statistics not from the training rows")
if abs(lg + np.log(np.mean((f(train) - ytr) ** 2))) > 1e-9:
    bad.append(f"--init=target: log gamma {lg}, expected {-np.log(np.mean((f(train) - ytr) ** 2))}")
mse = np.mean((ym + ys * f(dev) - A[dev, p]) ** 2)
def gll(rows, var):
    e = A[rows, p] - (ym + ys * f(rows))
    return np.mean(-0.5 * np.log(2 * np.pi * var) - 0.5 * e * e / var)
want = {"noise_sd_recalibrated": np.sqrt(mse), "noise_sd_fitted": ys * np.exp(-lg / 2),
        "dev_log_likelihood_recalibrated": gll(dev, mse),
        "dev_log_likelihood": gll(dev, ys * ys * np.exp(-lg)),
        "test_log_likelihood_recalibrated": gll(test, mse),
        "test_log_likelihood": gll(test, ys * ys * np.exp(-lg))}
for k, v in want.items():  # draws differ from the mean by 1e-7 standard deviations
    if not abs(r[k] - v) <= 1e-5 * max(1, abs(v)):
        bad.append(f"{k} {r[k]}, expected {v}")
if r["dev_log_likelihood_recalibrated"] < r["dev_log_likelihood"]:
    bad.append("recalibration lowered the dev likelihood")
if not s3["report"]["dev_log_likelihood_recalibrated"] >= s3["report"]["dev_log_likelihood"]:
    bad.append("3 ranks: recalibration lowered the dev likelihood")
m3 = np.loadtxt(f"{o3}/mixture.csv", delimiter=",", skiprows=1)
m1 = np.loadtxt(f"{o3}.np1/mixture.csv", delimiter=",", skiprows=1)
if not np.allclose(m1, m3, rtol=1e-9, atol=1e-12):
    bad.append("--init=target with --dev-fraction: 1 and 3 ranks give other fits")
print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
  ); then
    pass bnn-dev-recalibration
  else
    fail bnn-dev-recalibration "$msg"
  fi
  if grep -q "dev set: 14 rows; noise sd per draw recalibrated" "$o1.log"; then
    pass bnn-dev-printout
  else
    fail bnn-dev-printout "no dev line: $(_gfv_head "$o1.log")"
  fi
else
  fail bnn-dev-recalibration "a run failed: $(_gfv_head "$o1.log") $(_gfv_head "$o3.log")"
fi

# tools/boston_protocol.py --svgd-protocol on the synthetic data: its means are those of the
# runs' own summaries, the recalibrated log-likelihood included.
op=$(tmpdir)
if "$GFV_PYTHON" "$GFV_ROOT/tools/boston_protocol.py" --splits 2 --jobs 1 --svgd-protocol \
  --data="$data/reg.csv" --bin="$GFV_BIN" --out="$op" -- --hidden=4 --iters=30 --particles=2 \
  --batch-size=16 >"$op.log" 2>&1; then
  if msg=$("$GFV_PYTHON" - "$op" <<'EOF'
import json, sys
o = sys.argv[1]
pj = json.load(open(f"{o}/protocol.json"))
r = [json.load(open(f"{o}/split_{k:02d}/summary.json"))["report"] for k in (1, 2)]
opts = " ".join(pj["options"])
bad = [] if all(x in opts for x in ("--dev-fraction=0.1", "--init=target")) else [opts]
for key, mkey in (("test_rmse", "rmse_mean"), ("test_log_likelihood", "loglik_mean"),
                  ("test_log_likelihood_recalibrated", "loglik_recalibrated_mean")):
    want = (r[0][key] + r[1][key]) / 2
    if abs(pj[mkey] - want) > 1e-12 * abs(want):
        bad.append(f"{mkey} {pj[mkey]}, the runs give {want}")
print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
  ); then
    pass boston-protocol-svgd
  else
    fail boston-protocol-svgd "$msg"
  fi
else
  fail boston-protocol-svgd "exit status $?: $(_gfv_head "$op.log")"
fi

# Misuse, at 1 and 3 ranks: its status, one error line, no output (tests/lib.sh).
bad=(--iters=3 --particles=3)
expect_refused dev-fraction-logreg 2 "--dev-fraction=0.1: only --target=bnn holds out a development set" \
  "${bad[@]}" --out="$(tmpdir)/out" --target=logreg --data="$data/labels.csv" --dev-fraction=0.1
expect_refused dev-fraction-too-large 3 "holding out 5 leaves 1 (need at least 1 development and 2 training rows)" \
  "${bad[@]}" --out="$(tmpdir)/out" --target=bnn --data="$data/small.csv" --dev-fraction=0.9
expect_refused init-target-unsupported 2 "--init=target: --target=gauss has no starting point of its own" \
  "${bad[@]}" --out="$(tmpdir)/out" --target=gauss --init=target

finish
