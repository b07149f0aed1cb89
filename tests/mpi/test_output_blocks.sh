#!/usr/bin/env bash
# test_output_blocks.sh - mixture.csv, mixture.h5 and the checkpoint written a block of
# particles at a time (src/solver/output_blocks.h): rank 0 never holds a second copy of
# the whole mixture, and the files do not depend on the block size.
#  - at 1, 2 and 3 ranks, a run with blocks forced small (GFV_OUTPUT_BLOCK_BYTES, the test
#    knob: 1000 bytes = 3 checkpoint particles or 12 mixture rows at d = 3, so each rank's
#    13-40 particles take 5-14 blocks; and 1 byte, one particle a block, at 2 ranks) writes
#    mixture.csv bitwise equal to the run with the default 32 MB blocks (one block), and
#    mixture.h5 and checkpoint.h5 of the same size with the same datasets and attributes,
#    every number bitwise equal (h5py; the checkpoint's timings, run_seconds and the trace's
#    seconds, and its checksum over them, differ from run to run and are left out; the
#    checksum is checked by the restarts below); and the checkpoint's means and weights
#    are those of mixture.h5 (which rank 0 writes from the gathered mixture);
#  - a run stopped at iteration 15 on 3 ranks with small blocks restarts from its
#    checkpoint (which verifies the checksum) to iteration 30 and ends bitwise equal to the
#    uninterrupted run; the same checkpoint restarts on 1 rank within 1e-9 (the usual
#    rank-count tolerance).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

common=(--target=gauss --dim=3 --particles=40 --samples=4 --iters=30 --checkpoint-every=15 --quiet
  --eval-samples=2000 --out-samples=200 --seed=7)

# run NAME NP BLOCK_BYTES ARGS... - a run into $dir/NAME (BLOCK_BYTES empty: the default).
dir=$(tmpdir)
run() {
  local name=$1 np=$2 block=$3
  shift 3
  local status=0
  if [[ -n $block ]]; then
    GFV_OUTPUT_BLOCK_BYTES=$block gfv_mpirun "$np" "${common[@]}" "$@" --out="$dir/$name" \
      >/dev/null 2>"$dir/$name.err" || status=$?
  else
    gfv_mpirun "$np" "${common[@]}" "$@" --out="$dir/$name" >/dev/null 2>"$dir/$name.err" || status=$?
  fi
  ((status == 0)) || fail "$name" "exit status $status: $(_gfv_head "$dir/$name.err")"
  return $status
}

# same_h5 A B - the two HDF5 files have the same size, datasets (shape, type, bytes) and
# attributes, but the timings; prints what differs.
same_h5() {
  "$GFV_PYTHON" - "$1" "$2" <<'PY'
import os, sys, h5py, numpy as np
a, b = sys.argv[1], sys.argv[2]
timing = {"run_seconds", "checksum", "config", "config_text", "config_text_checksum"}
bad = []
if os.path.getsize(a) != os.path.getsize(b):
    bad.append("sizes %d and %d" % (os.path.getsize(a), os.path.getsize(b)))
with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
    if sorted(fa.keys()) != sorted(fb.keys()):
        bad.append("datasets %s and %s" % (sorted(fa.keys()), sorted(fb.keys())))
    for k in fa.keys():
        if k not in fb:
            continue
        x, y = fa[k][()], fb[k][()]
        if k == "trace":  # the last column is the wall-clock seconds
            x, y = x[:, :5], y[:, :5]
        if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():
            bad.append("dataset %s" % k)
    if sorted(fa.attrs.keys()) != sorted(fb.attrs.keys()):
        bad.append("attributes")
    for k in fa.attrs.keys():
        if k in timing or k not in fb.attrs:
            continue
        if np.asarray(fa.attrs[k]).tobytes() != np.asarray(fb.attrs[k]).tobytes():
            bad.append("attribute %s" % k)
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
}

# ck_matches_mixture DIR - the checkpoint (taken from the ranks block by block) holds the
# mixture that mixture.h5 (from the gathered mixture) holds: the same means and weights.
ck_matches_mixture() {
  "$GFV_PYTHON" - "$1/checkpoint.h5" "$1/mixture.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as c, h5py.File(sys.argv[2], "r") as m:
    ok = (np.array_equal(c["mu"][()], m["means"][()])
          and np.array_equal(np.exp(c["logw"][()]), m["weights"][()]))
sys.exit(0 if ok else 1)
PY
}

# compare NAME REF RUN - the three files of RUN against REF's.
compare() {
  local name=$1 ref=$dir/$2 got=$dir/$3 why
  if ! ck_matches_mixture "$got"; then
    fail "$name" "the checkpoint's mu and logw are not mixture.h5's means and weights"
  elif ! cmp -s "$ref/mixture.csv" "$got/mixture.csv"; then
    fail "$name" "mixture.csv differs"
  elif ! why=$(same_h5 "$ref/mixture.h5" "$got/mixture.h5"); then
    fail "$name" "mixture.h5: $why"
  elif ! why=$(same_h5 "$ref/checkpoint.h5" "$got/checkpoint.h5"); then
    fail "$name" "checkpoint.h5: $why"
  else
    pass "$name"
  fi
}

for np in 1 2 3; do
  run "one-$np" "$np" "" && run "small-$np" "$np" 1000 && compare "blocks-np$np-same-files" "one-$np" "small-$np"
done
run tiny-2 2 1 && compare blocks-of-one-particle-np2-same-files one-2 tiny-2

# A restart from a checkpoint written in small blocks on 3 ranks.
if run part-3 3 1000 --iters=15 && run cont-3 3 "" --restart="$dir/part-3/checkpoint.h5"; then
  if cmp -s "$dir/one-3/mixture.csv" "$dir/cont-3/mixture.csv"; then
    pass restart-from-blocked-checkpoint-bitwise
  else
    fail restart-from-blocked-checkpoint-bitwise "mixture.csv differs from the uninterrupted 3-rank run"
  fi
fi
if run cont-1 1 "" --restart="$dir/part-3/checkpoint.h5"; then
  d=$("$GFV_PYTHON" - "$dir/one-3/mixture.csv" "$dir/cont-1/mixture.csv" <<'PY'
import sys, numpy as np
a = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1); b = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1)
print("%.3e" % (np.abs(a - b) / np.maximum(np.abs(a).max(axis=0), 1e-300)).max())
PY
)
  if "$GFV_PYTHON" -c "import sys; sys.exit(0 if float('$d') <= 1e-9 else 1)"; then
    pass "restart-blocked-checkpoint-on-1-rank (max rel diff $d)"
  else
    fail restart-blocked-checkpoint-on-1-rank "max relative difference $d > 1e-9"
  fi
fi
finish
