#!/usr/bin/env bash
# compare_builds.sh OLD_GFLOWVI NEW_GFLOWVI - two builds give bitwise the same fits: the ELBO
# trace (without its seconds), mixture.csv, samples.csv, draws.csv and density.csv of the
# full and diag families, params and samples layouts, 1 and 3 ranks.  Used to check a
# refactor that must not change numerics (issue 13, families as type objects); not part of
# tests/run_all.sh, since it needs the build from before the change.
set -euo pipefail
old=$(realpath "$1") new=$(realpath "$2")
shift 2 # lib.sh takes the build directory (for the ring plugin) from $1: build/ by default
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
work=$(tmpdir)
"$GFV_PYTHON" - "$work/logit.csv" <<'PY'
import sys, numpy as np
r = np.random.default_rng(3)
X = r.normal(size=(60, 5))
y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + 0.5 * r.normal(size=60) > 0).astype(int)
np.savetxt(sys.argv[1], np.column_stack([X, y]), delimiter=",", header="a,b,c,d,e,y",
           comments="", fmt="%.10g")
PY
ring=$GFV_BUILD/plugins/ring.so
# label|arguments: both families, both estimators, --init=mode, and a bounded support (the
# ring cut at z_2 = -1: the support barrier); 2-D targets write density.csv.
runs=(
  "gauss8|--target=gauss --dim=8 --particles=16 --iters=50"
  "gauss2-diag|--target=gauss --dim=2 --particles=6 --iters=40 --family=diag"
  "logreg-diag|--family=diag --target=logreg --data=$work/logit.csv --particles=6 --iters=40"
  "logreg-stein|--target=logreg --data=$work/logit.csv --particles=5 --iters=30 --estimator=stein"
  "mode|--target=gauss --dim=4 --particles=5 --iters=20 --init=mode"
  "mode-diag|--target=gauss --dim=4 --particles=5 --iters=20 --init=mode --family=diag"
  "ring-cut|--target=plugin:$ring --plugin-arg=cut=-1 --particles=6 --iters=60"
  "ring-cut-diag|--target=plugin:$ring --plugin-arg=cut=-1 --particles=6 --iters=60 --family=diag"
)
i=0
for run in "${runs[@]}"; do
  label=${run%%|*} args=${run#*|}
  for layout in params samples; do
    for np in 1 3; do
      i=$((i + 1))
      for which in old new; do
        bin=$old; [[ $which == new ]] && bin=$new
        # shellcheck disable=SC2086
        "$GFV_ROOT/tools/mpirun.sh" "$np" "$bin" $args --layout=$layout --seed=7 \
          --out="$work/$which$i" >"$work/$which$i.log" 2>&1 || echo "exit $? ($which)" >>"$work/$which$i.log"
      done
      name="$label-$layout-np$np"
      diffs=""
      for f in mixture.csv samples.csv draws.csv density.csv; do
        [[ -e $work/old$i/$f || -e $work/new$i/$f ]] || continue
        cmp -s "$work/old$i/$f" "$work/new$i/$f" || diffs+=" $f"
      done
      # mixture.h5 without its attributes (timings); the trace without its seconds
      for which in old new; do
        h5dump -d /weights -d /means -d /covariances -d /variances "$work/$which$i/mixture.h5" 2>/dev/null |
          sed 1d >"$work/h5_$which" || true # line 1 names the file
      done
      cmp -s "$work/h5_old" "$work/h5_new" && [[ -s $work/h5_old ]] || diffs+=" mixture.h5"
      cut -d, -f1-5 "$work/old$i/trace.csv" >"$work/t_old" 2>/dev/null || true
      cut -d, -f1-5 "$work/new$i/trace.csv" >"$work/t_new" 2>/dev/null || true
      [[ -s $work/t_old ]] && cmp -s "$work/t_old" "$work/t_new" || diffs+=" trace.csv"
      [[ -z $diffs ]] && pass "$name" || fail "$name" "differs:$diffs (logs $work/old$i.log $work/new$i.log)"
    done
  done
done
finish
