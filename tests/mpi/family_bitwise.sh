#!/usr/bin/env bash
# family_bitwise.sh OLD_GFLOWVI NEW_GFLOWVI - two builds give bitwise the same fits: the ELBO
# trace (without its seconds), mixture.csv, samples.csv, draws.csv and density.csv of the
# full and diag families, params and samples layouts, 1 and 3 ranks.  Used to check a
# refactor that must not change numerics (issue 13, families as type objects); not part of
# tests/run_all.sh, since it needs the build from before the change.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
old=$1 new=$2
work=$(tmpdir)
"$GFV_PYTHON" - "$work/logit.csv" <<'PY'
import sys, numpy as np
r = np.random.default_rng(3)
X = r.normal(size=(60, 5))
y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + 0.5 * r.normal(size=60) > 0).astype(int)
np.savetxt(sys.argv[1], np.column_stack([X, y]), delimiter=",", header="a,b,c,d,e,y",
           comments="", fmt="%.10g")
PY
runs=(
  "--target=gauss --dim=8 --particles=16 --iters=50"
  "--target=gauss --dim=2 --particles=6 --iters=40 --family=diag"
  "--family=diag --target=logreg --data=$work/logit.csv --particles=6 --iters=40"
  "--target=logreg --data=$work/logit.csv --particles=5 --iters=30 --estimator=stein"
)
i=0
for args in "${runs[@]}"; do
  for layout in params samples; do
    for np in 1 3; do
      i=$((i + 1))
      for which in old new; do
        bin=$old; [[ $which == new ]] && bin=$new
        # shellcheck disable=SC2086
        "$GFV_ROOT/tools/mpirun.sh" "$np" "$bin" $args --layout=$layout --seed=7 \
          --out="$work/$which$i" >"$work/$which$i.log" 2>&1 || echo "exit $? ($which)" >>"$work/$which$i.log"
      done
      name="run$i:${args// /_}:$layout:np$np"
      diffs=""
      for f in mixture.csv samples.csv draws.csv density.csv; do
        [[ -e $work/old$i/$f || -e $work/new$i/$f ]] || continue
        cmp -s "$work/old$i/$f" "$work/new$i/$f" || diffs+=" $f"
      done
      cut -d, -f1-5 "$work/old$i/trace.csv" >"$work/t_old" 2>/dev/null || true
      cut -d, -f1-5 "$work/new$i/trace.csv" >"$work/t_new" 2>/dev/null || true
      [[ -s $work/t_old ]] && cmp -s "$work/t_old" "$work/t_new" || diffs+=" trace.csv"
      [[ -z $diffs ]] && pass "$name" || fail "$name" "differs:$diffs (logs $work/old$i.log $work/new$i.log)"
    done
  done
done
finish
