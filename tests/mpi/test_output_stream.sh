#!/usr/bin/env bash
# test_output_stream.sh - the output phase beyond the gather budget (src/solver/outputs.c,
# draws.c gfv_draws_make_streamed, block_root.c): no rank gathers the whole mixture;
# mixture.csv / mixture.h5 come from the owners block by block, each draw from its
# component's owner, and lq__ = log q at the draws is summed over the mixture's blocks as
# they pass round the ring.  GFV_PARAMS_GATHER_BYTES=2000 (the budget's test knob) makes
# the mixture of 40 components at d = 3 (120 bytes a component in the ring: 4,800 bytes)
# stream in blocks of 2 components; GFV_OUTPUT_BLOCK_BYTES=300 makes mixture.csv's blocks
# 7 rows (8 (1 + d + ps) = 104 bytes a row), so every rank sends several.  The fits use
# the samples layout and the stein estimator, whose iterations do not depend on the budget
# (the params layout's streamed iterations sum in another order; test_params_stream.sh),
# so the outputs must be those of the gathered run at the same rank count:
#  - mixture.csv, samples.csv bitwise, mixture.h5's datasets bitwise (h5py), and draws.csv
#    bitwise but lq__, which the fused kernel sums block by block where the gathered path
#    calls the family's kernel once: within 1e-12 relative (measured 1e-15 to 3e-15);
#    at 1, 2 and 3 ranks, and with the diagonal family at 2 ranks;
#  - a 2-D target (density.csv keeps the gathered mixture, for small K) beyond the same
#    budget: all its files bitwise the gathered run's, density.csv included.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

dir=$(tmpdir)
common=(--target=gauss --dim=3 --particles=40 --samples=4 --iters=10 --layout=samples
        --estimator=stein --eval-samples=2000 --out-samples=300 --seed=7 --quiet)

run() { # NAME NP BUDGET ARGS...
  local name=$1 np=$2 budget=$3
  shift 3
  if GFV_PARAMS_GATHER_BYTES=$budget GFV_OUTPUT_BLOCK_BYTES=300 gfv_mpirun "$np" "$@" \
      --out="$dir/$name" >/dev/null 2>"$dir/$name.err"; then
    return 0
  fi
  fail "$name" "$(_gfv_head "$dir/$name.err")"
  return 1
}

# same_outputs A B - prints what differs between two runs' outputs (nothing: the same).
same_outputs() {
  "$GFV_PYTHON" - "$dir/$1" "$dir/$2" <<'PY'
import os, sys, filecmp, h5py, numpy as np
a, b = sys.argv[1], sys.argv[2]
bad = []
for f in ("mixture.csv", "samples.csv", "density.csv"):
    if os.path.exists(a + "/" + f) or os.path.exists(b + "/" + f):
        if not filecmp.cmp(a + "/" + f, b + "/" + f, shallow=False):
            bad.append(f)
with h5py.File(a + "/mixture.h5", "r") as fa, h5py.File(b + "/mixture.h5", "r") as fb:
    if sorted(fa.keys()) != sorted(fb.keys()):
        bad.append("mixture.h5 datasets %s, %s" % (sorted(fa.keys()), sorted(fb.keys())))
    for k in fa.keys():
        x, y = fa[k][()], fb[k][()]
        if x.shape != y.shape or x.tobytes() != y.tobytes():
            bad.append("mixture.h5 /" + k)
da, db = (np.genfromtxt(d + "/draws.csv", delimiter=",", names=True) for d in (a, b))
if da.shape != db.shape or len(da) == 0:
    bad.append("draws.csv rows %s, %s" % (da.shape, db.shape))
else:
    for c in da.dtype.names:
        if c == "lq__":
            rel = np.max(np.abs(da[c] - db[c]) / np.maximum(np.abs(db[c]), 1.0))
            if not rel <= 1e-12:
                bad.append("draws.csv lq__ (max rel diff %.3g)" % rel)
        elif da[c].tobytes() != db[c].tobytes():
            bad.append("draws.csv " + c)
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
}

compare() { # NAME A B
  local why
  if why=$(same_outputs "$2" "$3"); then pass "$1"; else fail "$1" "differs: $why"; fi
}

for np in 1 2 3; do
  if run "g$np" "$np" "" "${common[@]}" && run "s$np" "$np" 2000 "${common[@]}"; then
    compare "outputs-streamed-${np}ranks-equal-gathered" "g$np" "s$np"
  fi
done
if run diag-g 2 "" "${common[@]}" --family=diag && run diag-s 2 1200 "${common[@]}" --family=diag; then
  compare "outputs-streamed-diag-equal-gathered" diag-g diag-s
fi
two=(--target=gauss --dim=2 --particles=40 --samples=4 --iters=10 --layout=samples
     --estimator=stein --eval-samples=2000 --out-samples=300 --seed=7 --quiet)
if run d2-g 3 "" "${two[@]}" && run d2-s 3 1000 "${two[@]}"; then
  compare "2d-density-keeps-gather-equal" d2-g d2-s
fi
finish
