#!/usr/bin/env bash
# test_check_target.sh - gflowvi --check-target: the derivatives against central differences.
#  - correct models pass (exit 0, a verdict line, every coordinate "ok"): the ring plugin,
#    eight schools centred and non-centred, with and without its Hessian, logreg;
#  - a plugin with a deliberately wrong gradient component (ring_badgrad.so: the second
#    coordinate misses a factor) is caught: exit 4, one error line naming z[2], the table
#    marks z[2] WRONG and z[1] ok; at 1 and 3 ranks;
#  - nothing is written: --out is not even created.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

plugins=$GFV_BUILD/plugins
data=$(tmpdir)
"$GFV_PYTHON" - "$data" <<'EOF'
import sys
import numpy as np
r = np.random.RandomState(3)
X = r.normal(size=(100, 3))
y = (r.uniform(size=100) < 1 / (1 + np.exp(-(X @ [1.0, -0.5, 2.0])))).astype(int)
np.savetxt(f"{sys.argv[1]}/logit.csv", np.column_stack([X, y]), delimiter=",", header="a,b,c,y", comments="", fmt="%.10g")
EOF

# ok NAME ARGS... - passes when the check exits 0 with a verdict and no WRONG line.
ok() {
  local name=$1 out status=0
  shift
  out=$(tmpdir)/out
  "$GFV_BIN" --check-target --out="$out" "$@" >"$GFV_TMP/$name.log" 2>&1 </dev/null || status=$?
  if ((status != 0)); then
    fail "$name" "exit status $status: $(_gfv_head "$GFV_TMP/$name.log")"
  elif ! grep -q '^verdict: the gradient' "$GFV_TMP/$name.log" || grep -q WRONG "$GFV_TMP/$name.log"; then
    fail "$name" "no passing verdict: $(_gfv_head "$GFV_TMP/$name.log")"
  elif [[ -e $out ]]; then
    fail "$name" "--check-target created --out"
  else
    grep '^verdict' "$GFV_TMP/$name.log" | sed 's/^/# /'
    pass "$name"
  fi
}

ok ring --target=plugin:"$plugins/ring.so"
ok eight-schools-centered --target=plugin:"$plugins/eight_schools.so"
ok eight-schools-noncentered --target=plugin:"$plugins/eight_schools.so" --plugin-arg=noncentered,effects
ok eight-schools-no-hessian --target=plugin:"$plugins/eight_schools_nohess.so" --plugin-arg=noncentered
ok logreg --target=logreg --data="$data/logit.csv"

for np in 1 3; do
  log=$GFV_TMP/bad.$np.log
  err=$GFV_TMP/bad.$np.err
  status=0
  gfv_mpirun "$np" --check-target --target=plugin:"$plugins/ring_badgrad.so" >"$log" 2>"$err" </dev/null || status=$?
  if ((status != 4)); then
    fail "wrong-gradient-caught-np$np" "exit status $status, expected 4: $(_gfv_head "$err")"
  elif [[ $(grep -c '^gflowvi: error:' "$err") != 1 ]] ||
    ! grep -q 'disagrees with central finite differences in 1 of 2 coordinates, first z\[2\]' "$err"; then
    fail "wrong-gradient-caught-np$np" "stderr: $(_gfv_head "$err")"
  elif ! grep -Eq '^z\[2\] +[0-9.e+-]+ WRONG' "$log" || ! grep -Eq '^z\[1\] +[0-9.e+-]+ ok' "$log" ||
    ! grep -q '^verdict: WRONG' "$log"; then
    fail "wrong-gradient-caught-np$np" "table: $(_gfv_head "$log")"
  else
    pass "wrong-gradient-caught-np$np"
  fi
done

finish
