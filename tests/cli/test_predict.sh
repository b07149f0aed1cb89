#!/usr/bin/env bash
# test_predict.sh - the data models' names, data description and predictions:
#  - logreg: draws.csv named by --data's header ("intercept" last), the coefficients on the
#    original scale (w_a / scale_a) beside them; summary.json "data" holds the features and
#    the standardisation (checked against NumPy's statistics of the file);
#  - --predict: predictions.csv against an independent Monte Carlo computation from
#    mixture.csv and the data description (logreg: the probability; bnn: the response with
#    its noise), within the Monte Carlo error of both;
#  - bnn's predictions at 3 ranks, for the rows in another order and one row twice, are
#    those of the 1-rank run to rounding: a row's summary depends on its inputs alone;
#  - the held-out log predictive density has a positive Monte Carlo standard error;
#  - a bad --predict file (missing, non-numeric, wrong column count, a target without
#    predictions) stops the run before the fit (--iters=10^9 would never end) with one
#    line and status 3 (2 for the target), leaving no output.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

data=$(tmpdir)
"$GFV_PYTHON" - "$data" <<'EOF'
import sys
import numpy as np
d = sys.argv[1]
r = np.random.RandomState(5)
X = r.normal(size=(150, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
y = (r.uniform(size=150) < 1 / (1 + np.exp(-(0.5 + X @ [1.0, -0.5, 2.0])))).astype(int)
np.savetxt(f"{d}/train.csv", np.column_stack([X[:120], y[:120]]), delimiter=",", header="age,bmi,dose,label", comments="", fmt="%.10g")
np.savetxt(f"{d}/test.csv", np.column_stack([X[120:], y[120:]]), delimiter=",", header="age,bmi,dose,label", comments="", fmt="%.10g")
np.savetxt(f"{d}/new.csv", X[:6], delimiter=",", header="age,bmi,dose", comments="", fmt="%.10g")
np.savetxt(f"{d}/new_with_label.csv", np.column_stack([X[:6], y[:6]]), delimiter=",", fmt="%.10g")
X = r.normal(size=(90, 2))
y = 10 + 3 * np.sin(X[:, 0]) - X[:, 1] + 0.3 * r.normal(size=90)
np.savetxt(f"{d}/reg.csv", np.column_stack([X, y]), delimiter=",", header="u,v,y", comments="", fmt="%.10g")
np.savetxt(f"{d}/reg_new.csv", np.array([[0.0, 0.0], [1.5, -1.0], [-2.0, 0.5]]), delimiter=",", fmt="%.10g")
np.savetxt(f"{d}/reg_perm.csv", np.array([[-2.0, 0.5], [0.0, 0.0], [-2.0, 0.5], [1.5, -1.0]]), delimiter=",", fmt="%.10g")
EOF
printf 'age,bmi,dose\n1,2,3\n4,abc,6\n' >"$data/bad.csv"

# ---- logreg --------------------------------------------------------------------------------
o=$(tmpdir)
if gfv_mpirun 2 --target=logreg --data="$data/train.csv" --test-data="$data/test.csv" --predict="$data/new.csv" \
  --particles=3 --iters=200 --step=0.1 --init-scale=0 --init-var=0.1 --quiet --out="$o" >"$o.log" 2>&1; then
  py_check logreg-names-data-predictions "$o" "$data" <<'EOF'
import json, sys
import numpy as np
import pandas as pd
o, data = sys.argv[1:3]
df = pd.read_csv(f"{o}/draws.csv", float_precision="round_trip")
cols = ["age", "bmi", "dose", "intercept", "age_original", "bmi_original", "dose_original",
        "intercept_original", "lp__", "lq__"]
assert list(df.columns) == cols, list(df.columns)
s = json.load(open(f"{o}/summary.json"))
X = np.loadtxt(f"{data}/train.csv", delimiter=",", skiprows=1)[:, :3]
dd = s["data"]
assert dd["features"] == ["age", "bmi", "dose"] and dd["label"] == "label" and dd["standardize"] == "scale", dd
assert np.allclose(dd["scale"], X.std(axis=0), rtol=1e-12) and dd["mean"] == [0, 0, 0], dd
assert dd["training_rows"] == 120 and dd["test_rows"] == 30
w = df[["age", "bmi", "dose"]].values
assert np.allclose(df[["age_original", "bmi_original", "dose_original"]].values, w / np.array(dd["scale"]), rtol=1e-13)
assert np.array_equal(df["intercept_original"], df["intercept"])  # scale only: the intercept stays
rep = s["report"]
assert 0 < rep["test_log_predictive_mcse"] < 0.05, rep
# predictions.csv against p(y = 1 | x) averaged over draws of mixture.csv
P = pd.read_csv(f"{o}/predictions.csv")
assert list(P.columns) == ["row", "mean", "sd", "q5", "q50", "q95"] and list(P["row"]) == [1, 2, 3, 4, 5, 6]
assert s["predictions"]["rows"] == 6 and s["predictions"]["draws"] == 4000
M = np.loadtxt(f"{o}/mixture.csv", delimiter=",", skiprows=1, ndmin=2)
rng = np.random.default_rng(0)
W = np.concatenate([rng.multivariate_normal(m[1:5], m[5:].reshape(4, 4), size=int(round(100000 * m[0])))
                    for m in M])
Xn = np.loadtxt(f"{data}/new.csv", delimiter=",", skiprows=1) / np.array(dd["scale"])
p = 1 / (1 + np.exp(-(Xn @ W[:, :3].T + W[:, 3])))
mean, sd = p.mean(axis=1), p.std(axis=1)
tol = 5 * sd / np.sqrt(4000) + 1e-4
assert (np.abs(P["mean"] - mean) < tol).all(), (P["mean"].values, mean, tol)
assert (np.abs(P["sd"] - sd) < 0.1 * sd + 1e-4).all(), (P["sd"].values, sd)
q = np.quantile(p, [0.05, 0.5, 0.95], axis=1)
assert (np.abs(P[["q5", "q50", "q95"]].values - q.T) < 0.05 * sd[:, None] + 3 * tol[:, None]).all(), (P, q.T)
assert ((0 <= P["q5"]) & (P["q5"] <= P["q50"]) & (P["q50"] <= P["q95"]) & (P["q95"] <= 1)).all()
EOF
else
  fail logreg-names-data-predictions "exit status $?: $(_gfv_head "$o.log")"
fi

# ---- bnn ---------------------------------------------------------------------------------
o=$(tmpdir)
bnn=(--target=bnn --data="$data/reg.csv" --split-seed=1 --hidden=4 --particles=3 --samples=20 --iters=300
  --step=0.02 --init-scale=0.3 --init-var=0.01 --quiet)
if gfv_mpirun 1 "${bnn[@]}" --predict="$data/reg_new.csv" --out="$o" >"$o.log" 2>&1; then
  py_check bnn-names-predictions "$o" "$data" <<'EOF'
import json, sys
import numpy as np
import pandas as pd
o, data = sys.argv[1:3]
p, H = 2, 4
D = (p + 2) * H + 3
df = pd.read_csv(f"{o}/draws.csv", float_precision="round_trip")
names = [f"W1[{a},{h}]" for a in range(1, p + 1) for h in range(1, H + 1)] + [f"b1[{h}]" for h in range(1, H + 1)] \
    + [f"w2[{h}]" for h in range(1, H + 1)] + ["b2", "log_gamma", "log_lambda", "noise_sd", "lp__", "lq__"]
assert list(df.columns) == names, list(df.columns)
s = json.load(open(f"{o}/summary.json"))
dd = s["data"]
assert dd["features"] == ["u", "v"] and dd["standardize"] == "center-scale", dd
ym, ys = dd["response_mean"], dd["response_scale"]
assert np.allclose(df["noise_sd"], ys * np.exp(-0.5 * df["log_gamma"]), rtol=1e-13)
assert 0 < s["report"]["test_log_likelihood_mcse"] < 0.5, s["report"]
# the predictive distribution of the response from mixture.csv's draws
M = np.loadtxt(f"{o}/mixture.csv", delimiter=",", skiprows=1, ndmin=2)
rng = np.random.default_rng(1)
Z = np.concatenate([rng.multivariate_normal(m[1:D + 1], m[D + 1:].reshape(D, D), size=int(round(200000 * m[0])))
                    for m in M])
Xn = (np.loadtxt(f"{data}/reg_new.csv", delimiter=",") - dd["mean"]) / np.array(dd["scale"])
W1 = Z[:, :p * H].reshape(-1, p, H)
b1, w2, b2 = Z[:, p * H:p * H + H], Z[:, p * H + H:p * H + 2 * H], Z[:, D - 3]
A = np.maximum(np.einsum("rp,mph->mrh", Xn, W1) + b1[:, None, :], 0)
f = ym + ys * (np.einsum("mrh,mh->mr", A, w2) + b2[:, None])
noise = ys ** 2 * np.exp(-Z[:, D - 2])
mean, sd = f.mean(axis=0), np.sqrt(f.var(axis=0) + noise.mean())
P = pd.read_csv(f"{o}/predictions.csv")
assert list(P["row"]) == [1, 2, 3]
assert (np.abs(P["mean"] - mean) < 5 * sd / np.sqrt(4000)).all(), (P["mean"].values, mean, sd)
assert (np.abs(P["sd"] / sd - 1) < 0.08).all(), (P["sd"].values, sd)
assert (P["q5"] < P["q50"]).all() and (P["q50"] < P["q95"]).all()
EOF
else
  fail bnn-names-predictions "exit status $?: $(_gfv_head "$o.log")"
fi
o3=$(tmpdir)
if gfv_mpirun 3 "${bnn[@]}" --predict="$data/reg_perm.csv" --out="$o3" >"$o3.log" 2>&1; then
  py_check bnn-predictions-3-ranks-any-row-order "$o" "$o3" <<'EOF'
import sys
import numpy as np
import pandas as pd
P1 = pd.read_csv(f"{sys.argv[1]}/predictions.csv").values[:, 1:]
P3 = pd.read_csv(f"{sys.argv[2]}/predictions.csv").values[:, 1:]
assert np.allclose(P3, P1[[2, 0, 2, 1]], rtol=1e-9, atol=1e-9), (P3, P1)
EOF
else
  fail bnn-predictions-3-ranks-any-row-order "exit status $?: $(_gfv_head "$o3.log")"
fi

# ---- bad --predict files: before the fit, one line, no output ------------------------------
bad() {
  local name=$1 status=$2 frag=$3
  shift 3
  local np out err code lines
  for np in 1 3; do
    out=$(tmpdir)/out
    err=$GFV_TMP/$name.$np.err
    code=0
    timeout 60 "$GFV_ROOT/tools/mpirun.sh" "$np" "$GFV_BIN" --iters=1000000000 --particles=3 --out="$out" \
      --target=logreg --data="$data/train.csv" "$@" >/dev/null 2>"$err" </dev/null || code=$?
    lines=$(grep -c '^gflowvi: error:' "$err" || true)
    if ((code != status)); then
      fail "$name-np$np" "exit status $code, expected $status: $(_gfv_head "$err")"
    elif ! grep -qF -- "$frag" "$err"; then
      fail "$name-np$np" "stderr lacks '$frag': $(_gfv_head "$err")"
    elif ((lines != 1)); then
      fail "$name-np$np" "$lines error lines, expected exactly one"
    elif [[ -e $out ]]; then
      fail "$name-np$np" "--out was created: the check came after the preflight"
    else
      pass "$name-np$np"
    fi
  done
}
bad predict-missing 3 "--predict: cannot open '$data/nope.csv'" --predict="$data/nope.csv"
bad predict-not-numeric 3 "--predict: $data/bad.csv:3: field 2 'abc' is not a number" --predict="$data/bad.csv"
bad predict-columns 3 "--predict: $data/new_with_label.csv has 4 columns, but the model takes 3 features" \
  --predict="$data/new_with_label.csv"
bad predict-target 2 "--target=gmm4 makes no predictions (only logreg and bnn do)" --target=gmm4 \
  --predict="$data/new.csv"

finish
