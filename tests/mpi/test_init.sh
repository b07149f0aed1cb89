#!/usr/bin/env bash
# test_init.sh - --init through the program:
#  - mode (its starts shared out over the ranks and gathered) and FILE (split and kept
#    components) build the same initial mixture on 1 and 3 ranks, to 1e-12;
#  - the log line "init: ..." is printed once, by rank 0;
#  - a restart takes its state from the checkpoint and never runs the init (a missing
#    --init file does not matter), and continues the run bitwise;
#  - bad --init values: one error line, the exit status, at 3 ranks.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

plugin=$GFV_BUILD/plugins/eight_schools.so

# Largest absolute difference between two mixture.csv files (or "shape ..." when they
# have different shapes).
max_abs_diff() {
  "$GFV_PYTHON" - "$1" "$2" <<'PY'
import sys, numpy as np
a = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, ndmin=2)
b = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2)
print("shape %s %s" % (a.shape, b.shape) if a.shape != b.shape else "%.3e" % np.abs(a - b).max())
PY
}

# agree NAME ARGS... - the initial mixture (--iters=0) on 1 and 3 ranks agrees to 1e-12;
# leaves the 1-rank output in $agreed.
agreed=
agree() {
  local name=$1
  shift
  local o1 o3 d
  o1=$(tmpdir)
  o3=$(tmpdir)
  if ! gfv_mpirun 1 "$@" --iters=0 --eval-samples=10 --out-samples=0 --out="$o1" >"$o1.log" 2>&1 ||
    ! gfv_mpirun 3 "$@" --iters=0 --eval-samples=10 --out-samples=0 --out="$o3" >"$o3.log" 2>&1; then
    fail "$name" "a run failed: $(_gfv_head "$o1.log") / $(_gfv_head "$o3.log")"
    return
  fi
  agreed=$o1
  d=$(max_abs_diff "$o1/mixture.csv" "$o3/mixture.csv")
  if [[ $d != shape* ]] && "$GFV_PYTHON" -c "import sys; sys.exit(0 if float('$d') <= 1e-12 else 1)"; then
    pass "$name-1-vs-3-ranks (max abs diff $d)"
  else
    fail "$name-1-vs-3-ranks" "max abs diff $d > 1e-12"
  fi
  local lines
  lines=$(grep -c '^init: ' "$o3.log" || true)
  [[ $lines == 1 ]] && pass "$name-one-log-line" || fail "$name-one-log-line" "$lines 'init:' lines at 3 ranks"
}

# 5 starts over 3 ranks (2, 2, 1), 7 particles (3, 2, 2), four modes.
agree mode-gmm4 --target=gmm4 --init=mode --init-starts=5 --init-scale=1 --particles=7
gmm4_mix=$agreed/mixture.csv
# No mode: the paths run down the funnel and the ELBO chooses.
agree mode-eight-schools --target="plugin:$plugin" --plugin-arg=centered --init=mode --particles=6
# Warm starts from the 7 components above: split to 10, the heaviest 4 kept, file weights.
if [[ -n $gmm4_mix ]]; then
  agree file-split --target=gmm4 --init="$gmm4_mix" --particles=10 --weight-step=0.05
  agree file-keep --target=gmm4 --init="$gmm4_mix" --particles=4 --weight-step=0.05
fi

# A restart never runs the init: a missing --init file is no error there, and the run
# continues bitwise as the uninterrupted one.
common=(--target=gmm4 --init=mode --init-starts=3 --particles=6 --samples=4 --eval-samples=100
  --out-samples=0 --quiet)
ref=$(tmpdir)
part=$(tmpdir)
cont=$(tmpdir)
gfv_mpirun 2 "${common[@]}" --iters=40 --out="$ref" >/dev/null 2>&1 || fail restart-reference "run failed"
gfv_mpirun 2 "${common[@]}" --iters=20 --checkpoint-every=20 --out="$part" >/dev/null 2>&1 ||
  fail restart-part "run failed"
if gfv_mpirun 3 "${common[@]}" --iters=40 --restart="$part/checkpoint.h5" --init="$GFV_TMP/nope.csv" \
  --out="$cont" >"$cont.log" 2>&1; then
  d=$(max_abs_diff "$ref/mixture.csv" "$cont/mixture.csv")
  if [[ $d != shape* ]] && "$GFV_PYTHON" -c "import sys; sys.exit(0 if float('$d') <= 1e-9 else 1)"; then
    pass "restart-skips-init (max abs diff $d)"
  else
    fail restart-skips-init "restarted run differs: $d"
  fi
else
  fail restart-skips-init "restart with a missing --init file failed: $(_gfv_head "$cont.log")"
fi

# Bad values: the status and one line, from one rank.
data=$(tmpdir)
printf 'weight,mu_1,mu_2,mu_3,var_1,var_2,var_3\n1,0,0,0,1,1,1\n' >"$data/d3.csv"
printf 'weight,mu_1,mu_2,cov_1_1,cov_1_2,cov_2_1,cov_2_2\n1,0,0,1,2,2,1\n' >"$data/notpd.csv"
one_line() {
  local name=$1 want=$2 frag=$3
  shift 3
  local err status=0
  err=$(mktemp "$GFV_TMP/stderr.XXXXXX")
  gfv_mpirun 3 "$@" --out="$data/out" --quiet >/dev/null 2>"$err" </dev/null || status=$?
  local n
  n=$(grep -c 'gflowvi: error:' "$err" || true)
  if ((status == want)) && grep -qF -- "$frag" "$err" && ((n == 1)); then
    pass "$name"
  else
    fail "$name" "status $status (want $want), $n error lines: $(_gfv_head "$err")"
  fi
}
one_line missing-file 3 "$data/nope.csv" --target=gmm4 --init="$data/nope.csv"
one_line wrong-dimension 3 "do not hold a mixture in d = 2" --target=gmm4 --init="$data/d3.csv"
one_line not-positive-definite 3 "not positive definite" --target=gmm4 --init="$data/notpd.csv"
one_line empty-init 2 "--init: must not be empty" --target=gmm4 --init=
one_line zero-starts 2 "--init-starts" --target=gmm4 --init=mode --init-starts=0
finish
