#!/usr/bin/env bash
# test_models.sh - the data models and plugins through the program, at 1 and 3 ranks:
#  - logreg with --test-data and bnn with --split-seed and minibatches run, write their
#    held-out metrics into summary.json ("report") and print them; the fit does not depend
#    on the rank count (minibatches are drawn from (seed, iteration));
#  - the example plugin runs from the command line with --plugin-arg;
#  - every bad input gives its status, one clear error line and no output file.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

data=$(tmpdir)
plugins=$GFV_BUILD/plugins
# Synthetic data: logistic (3 features, 0/1 label last) and regression (4 inputs).
"$GFV_PYTHON" - "$data" <<'EOF'
import sys
import numpy as np
d = sys.argv[1]
r = np.random.RandomState(3)
for name, n in (("train", 120), ("test", 40)):
    X = r.normal(size=(n, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    s = 0.5 + X @ [1.0, -0.5, 2.0]
    y = (r.uniform(size=n) < 1 / (1 + np.exp(-s))).astype(int)
    np.savetxt(f"{d}/logit_{name}.csv", np.column_stack([X, y]), delimiter=",",
               header="a,b,c,label", comments="", fmt="%.10g")
X = r.normal(size=(80, 4))
y = 10 + 3 * np.sin(X[:, 0]) + X[:, 1] ** 2 - X[:, 2] + 0.3 * r.normal(size=80)
np.savetxt(f"{d}/reg.csv", np.column_stack([X, y]), delimiter=",", header="a,b,c,d,y",
           comments="", fmt="%.10g")
EOF
printf 'a,b,label\n1,2,0\n2,1,2\n3,3,1\n' >"$data/labels.csv"
printf 'a,b,label\n1,2,0\n2,1\n' >"$data/ragged.csv"
printf 'not a shared object\n' >"$data/text.so"

# ---- runs -------------------------------------------------------------------------

out1=$(tmpdir)
if gfv_mpirun 2 --target=logreg --data="$data/logit_train.csv" --test-data="$data/logit_test.csv" \
  --particles=4 --iters=150 --step=0.1 --init-scale=0 --init-var=0.1 --eval-samples=4000 \
  --out="$out1" >"$out1.log" 2>&1; then
  acc=$(json_get "$out1/summary.json" report | "$GFV_PYTHON" -c 'import json,sys; r=json.load(sys.stdin); print(r["test_accuracy"], r["test_rows"], r["test_log_predictive"])')
  read -r a rows ll <<<"$acc"
  if [[ $rows == 40 ]] && "$GFV_PYTHON" -c "import sys; sys.exit(not (0.6 < $a <= 1 and -0.7 < $ll < 0))" &&
    grep -q '^test set: 40 rows, accuracy' "$out1.log" && [[ $(json_get "$out1/summary.json" dim) == 4 ]]; then
    pass logreg-test-data
  else
    fail logreg-test-data "report $acc; $(grep 'test set' "$out1.log" || true)"
  fi
else
  fail logreg-test-data "exit status $?: $(_gfv_head "$out1.log")"
fi

# bnn with minibatches: 1 and 3 ranks give the same fit (the batches depend on (seed,
# iteration) only; the summation order differs, so allow 1e-9 relative).
bnn_args=(--target=bnn --data="$data/reg.csv" --split-seed=2 --hidden=8 --batch-size=16
  --particles=3 --samples=20 --iters=60 --step=0.02 --init-scale=0.3 --init-var=0.01
  --eval-samples=600)
o1=$(tmpdir)
o3=$(tmpdir)
if gfv_mpirun 1 "${bnn_args[@]}" --out="$o1" >"$o1.log" 2>&1 &&
  gfv_mpirun 3 "${bnn_args[@]}" --out="$o3" >"$o3.log" 2>&1; then
  if "$GFV_PYTHON" - "$o1" "$o3" <<'EOF'; then
import json, sys
import numpy as np
a, b = (json.load(open(f"{d}/summary.json")) for d in sys.argv[1:3])
ma, mb = (np.loadtxt(f"{d}/mixture.csv", delimiter=",", skiprows=1) for d in sys.argv[1:3])
ok = a["dim"] == (4 + 2) * 8 + 3 and a["estimator"] == "stein"
ok &= np.allclose(ma, mb, rtol=1e-9, atol=1e-12)
ra, rb = a["report"], b["report"]
ok &= ra["test_rows"] == 8 and abs(ra["test_rmse"] - rb["test_rmse"]) <= 1e-9 * ra["test_rmse"]
ok &= 0 < ra["test_rmse"] < 20 and ra["test_log_likelihood"] < 0
sys.exit(0 if ok else 1)
EOF
    pass bnn-minibatch-rank-independent
  else
    fail bnn-minibatch-rank-independent "1 and 3 ranks differ or the report is wrong: $(grep 'test set' "$o1.log" "$o3.log" | tr '\n' ' ')"
  fi
else
  fail bnn-minibatch-rank-independent "a run failed: $(_gfv_head "$o1.log") $(_gfv_head "$o3.log")"
fi

op=$(tmpdir)
if gfv_mpirun 2 --target=plugin:"$plugins/ring.so" --plugin-arg=radius=3,width=0.4 --particles=12 \
  --weight-step=0.05 --iters=500 --eval-samples=20000 --out="$op" >"$op.log" 2>&1; then
  kl=$(json_get "$op/summary.json" kl)
  if "$GFV_PYTHON" -c "import sys; sys.exit(not (-0.01 < $kl < 0.05))"; then
    pass plugin-ring-fit
  else
    fail plugin-ring-fit "KL $kl"
  fi
else
  fail plugin-ring-fit "exit status $?: $(_gfv_head "$op.log")"
fi

# ---- bad input --------------------------------------------------------------------

# Each bad input at 1 and 3 ranks: its status, one error line, no output (tests/lib.sh).
case_() {
  local name=$1 status=$2 frag=$3
  shift 3
  expect_refused "$name" "$status" "$frag" --iters=3 --particles=3 --out="$(tmpdir)/out" "$@"
}

case_ logreg-no-data 2 "--target=logreg needs its training data: --data=FILE" --target=logreg
case_ logreg-missing-data 3 "cannot open '$data/nope.csv'" --target=logreg --data="$data/nope.csv"
case_ logreg-labels 3 "labels.csv: data row 2: label 2 (column 3) is not 0 or 1" \
  --target=logreg --data="$data/labels.csv"
case_ logreg-label-col 2 "--label-col=7: $data/labels.csv has 3 columns" \
  --target=logreg --data="$data/labels.csv" --label-col=7
case_ logreg-ragged 3 "ragged.csv:3: expected 3 columns, found 2" --target=logreg --data="$data/ragged.csv"
case_ logreg-test-columns 3 "reg.csv has 5 columns, but $data/logit_train.csv has 4" \
  --target=logreg --data="$data/logit_train.csv" --test-data="$data/reg.csv"
case_ logreg-split-and-test 2 "--test-data and --split-seed both name a test set" \
  --target=logreg --data="$data/logit_train.csv" --test-data="$data/logit_test.csv" --split-seed=1
case_ logreg-wrong-dim 2 "target logreg has dimension 4, but --dim=3 was given" \
  --target=logreg --data="$data/logit_train.csv" --dim=3
case_ bnn-missing-data 3 "nope.csv" --target=bnn --data="$data/nope.csv"
case_ bnn-bad-standardize 2 "--standardize: 'unit' is not one of" --target=bnn --data="$data/reg.csv" \
  --standardize=unit
case_ plugin-missing 3 "cannot open plugin '$data/nope.so': No such file or directory" \
  --target=plugin:"$data/nope.so"
case_ plugin-not-shared-object 3 "plugin '$data/text.so' is not an ELF file" --target=plugin:"$data/text.so"
case_ plugin-missing-symbol 3 "does not define the required function gfv_plugin_logdensity" \
  --target=plugin:"$plugins/ring_nosym.so"
case_ plugin-abi-mismatch 3 "was built for plugin ABI version 2, but this gflowvi implements version 1" \
  --target=plugin:"$plugins/ring_badabi.so"
case_ plugin-wrong-dim 2 "has dimension 2, but --dim=5 was given" --target=plugin:"$plugins/ring.so" --dim=5
case_ plugin-bad-arg 3 "gfv_plugin_init failed: unknown argument 'colour=red'" \
  --target=plugin:"$plugins/ring.so" --plugin-arg=colour=red
case_ plugin-nan 4 "the target returned a non-finite value (NaN or +Inf)" \
  --target=plugin:"$plugins/ring.so" --plugin-arg=nan

# The NaN plugin is also named in a warning (once per rank at most).
err=$GFV_TMP/nan.err
"$GFV_BIN" --target=plugin:"$plugins/ring.so" --plugin-arg=nan --out="$(tmpdir)/o" >/dev/null 2>"$err" || true
if grep -qF "gflowvi: warning: plugin $plugins/ring.so: gfv_plugin_logdensity returned a non-finite log density (nan)" "$err" &&
  [[ $(grep -c 'warning: plugin' "$err") == 1 ]]; then
  pass plugin-nan-warning
else
  fail plugin-nan-warning "stderr: $(_gfv_head "$err")"
fi

finish
