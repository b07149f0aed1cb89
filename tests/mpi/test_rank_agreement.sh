#!/usr/bin/env bash
# test_rank_agreement.sh - the same run on 1, 2, 3 and 4 ranks, in both layouts
# (--layout=samples and params, docs/method.md section 9), must give the same final mixture
# to 1e-9 relative after 100 iterations: every particle has its own random stream, so only
# the summation order of the collectives and of the kernels differs, and its rounding
# (1e-16) must not grow past 1e-9 over the run.  The reference is the samples layout on
# one rank.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Largest relative difference between two mixture.csv files, per column scale: an entry
# is compared against the largest magnitude in its column, so near-zero off-diagonal
# covariances are judged on the scale of their column, not on their own tiny size.
max_rel_diff() {
  "$GFV_PYTHON" - "$1" "$2" <<'PY'
import sys, numpy as np
a = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, ndmin=2)
b = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2)
if a.shape != b.shape:
    print("shape", a.shape, b.shape); sys.exit(0)
scale = np.maximum(np.abs(a).max(axis=0), 1e-300)
print("%.3e" % (np.abs(a - b) / scale).max())
PY
}

check_agreement() {
  local name=$1
  shift
  local ref diff np layout
  ref=$(tmpdir)
  if ! gfv_mpirun 1 "$@" --layout=samples --out="$ref" --quiet >/dev/null 2>"$ref.err"; then
    fail "$name-1rank" "$(head -c 300 "$ref.err")"
    return
  fi
  for layout in samples params; do
    for np in 1 2 3 4; do
      [[ $layout == samples && $np == 1 ]] && continue
      local out
      out=$(tmpdir)
      if ! gfv_mpirun "$np" "$@" --layout=$layout --out="$out" --quiet >/dev/null 2>"$out.err"; then
        fail "$name-$layout-${np}ranks" "$(head -c 300 "$out.err")"
        continue
      fi
      if [[ $(json_get "$out/summary.json" layout) != "$layout" ]]; then
        fail "$name-$layout-${np}ranks" "summary.json says layout $(json_get "$out/summary.json" layout)"
        continue
      fi
      diff=$(max_rel_diff "$ref/mixture.csv" "$out/mixture.csv")
      if "$GFV_PYTHON" -c "import sys; sys.exit(0 if float('$diff') <= 1e-9 else 1)" 2>/dev/null; then
        pass "$name-$layout-${np}ranks-vs-samples-1 (max rel diff $diff)"
      else
        fail "$name-$layout-${np}ranks-vs-samples-1" "max relative difference $diff > 1e-9"
      fi
    done
  done
}

common=(--iters=100 --eval-samples=2000 --out-samples=10)
# NGFlow-VI, Hessian estimator, weight flow on: every collective of section 8 is used.
check_agreement ngflow-hessian-gmm4 --target=gmm4 --particles=12 --samples=5 --weight-step=0.05 "${common[@]}"
# GFlow-VI with the Stein estimator on a 3-D correlated Gaussian; K = 7 splits unevenly.
check_agreement gflow-stein-gauss --target=gauss --dim=3 --flow=gflow --estimator=stein \
  --particles=7 --samples=4 --step=0.02 "${common[@]}"
# The diagonal family: Stein in d = 20 (9 particles), and the hessian estimator on gmm4.
check_agreement diag-stein-gauss20 --family=diag --target=gauss --dim=20 --estimator=stein \
  --particles=9 --samples=4 --step=0.02 "${common[@]}"
check_agreement diag-hessian-gmm4 --family=diag --target=gmm4 --particles=10 --samples=5 \
  --weight-step=0.05 "${common[@]}"
finish
