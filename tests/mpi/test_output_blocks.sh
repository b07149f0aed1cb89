#!/usr/bin/env bash
# test_output_blocks.sh - mixture.csv, mixture.h5 and the checkpoint written a block of
# particles at a time (src/solver/output_blocks.h): rank 0 never holds a second copy of
# the whole mixture, and the files do not depend on the block size.
#  - at 1, 2 and 3 ranks, a run with blocks forced small (GFV_OUTPUT_BLOCK_BYTES, the test
#    knob: 1000 bytes = 3 checkpoint particles or 12 mixture rows at d = 3, so each rank's
#    13-40 particles take 5-14 blocks; and 1 byte, one particle a block, at 2 ranks) writes
#    mixture.csv, mixture.h5 and checkpoint.h5 bitwise equal to the run with the default
#    32 MB blocks (one block), with the clocks fixed (HDF5's object times, the run's
#    timings); and, with the clocks running (or where they cannot be fixed), the same size,
#    datasets and attributes, every number bitwise equal (h5py; the timings, run_seconds
#    and the trace's seconds, and the checksum over them, left out; the checksum is
#    checked by the restarts below); and the checkpoint's means and weights
#    are those of mixture.h5 (which rank 0 writes from the gathered mixture);
#  - a run stopped at iteration 15 on 3 ranks with small blocks restarts from its
#    checkpoint (which verifies the checksum) to iteration 30 and ends bitwise equal to the
#    uninterrupted run; the same checkpoint restarts on 1 rank within 1e-9 (the usual
#    rank-count tolerance).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

common=(--target=gauss --dim=3 --particles=40 --samples=4 --iters=30 --checkpoint-every=15 --quiet
  --eval-samples=2000 --out-samples=200 --seed=7)

# Bitwise comparisons of HDF5 files need fixed clocks: HDF5 stamps every object with its
# modification time (gettimeofday), and the checkpoint holds the run's timings (gflowvi's
# clock_gettime).  This preloaded library fixes both for those callers only; without a C
# compiler, or in the sanitizer build (ASan must come first in the preload list), the HDF5
# files are compared number by number instead (same_h5).
dir=$(tmpdir)
clock=""
if ! gfv_asan_build && command -v cc >/dev/null; then
  cat >"$dir/fixed_clock.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
static int from(const void *ret, const char *name) {
  Dl_info info;
  return dladdr(ret, &info) && info.dli_fname && strstr(info.dli_fname, name);
}
int gettimeofday(struct timeval *tv, void *tz) {
  if (tv && from(__builtin_return_address(0), "hdf5")) {
    tv->tv_sec = 1700000000, tv->tv_usec = 0;
    return 0;
  }
  int (*real)(struct timeval *, void *) = (int (*)(struct timeval *, void *))dlsym(RTLD_NEXT, "gettimeofday");
  return real(tv, tz);
}
int clock_gettime(clockid_t c, struct timespec *ts) {
  if (ts && from(__builtin_return_address(0), "gflowvi")) {
    ts->tv_sec = 1000, ts->tv_nsec = 0;
    return 0;
  }
  int (*real)(clockid_t, struct timespec *) = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
  return real(c, ts);
}
C
  cc -shared -fPIC -o "$dir/fixed_clock.so" "$dir/fixed_clock.c" -ldl 2>/dev/null && clock=$dir/fixed_clock.so
fi
[[ -n $clock ]] || echo "SKIP bitwise HDF5 comparisons (no fixed clock here): comparing their numbers"

# run NAME NP BLOCK_BYTES ARGS... - a run into $dir/NAME/out (BLOCK_BYTES empty: the
# default), started in $dir/NAME with --out=out: the checkpoint stores the options, and the
# same --out everywhere keeps them the same.
run() {
  local name=$1 np=$2 block=$3
  shift 3
  local status=0
  mkdir -p "$dir/$name"
  # shellcheck disable=SC2097,SC2098
  (cd "$dir/$name" && GFV_OUTPUT_BLOCK_BYTES=$block LD_PRELOAD=${clock:+$clock${LD_PRELOAD:+:$LD_PRELOAD}} \
    gfv_mpirun "$np" "${common[@]}" "$@" --out=out >/dev/null 2>"$dir/$name.err") || status=$?
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
  local name=$1 ref=$dir/$2/out got=$dir/$3/out why
  if ! ck_matches_mixture "$got"; then
    fail "$name" "the checkpoint's mu and logw are not mixture.h5's means and weights"
  elif ! cmp -s "$ref/mixture.csv" "$got/mixture.csv"; then
    fail "$name" "mixture.csv differs"
  elif [[ -n $clock ]] && ! cmp -s "$ref/mixture.h5" "$got/mixture.h5"; then
    fail "$name" "mixture.h5 differs bitwise"
  elif [[ -n $clock ]] && ! cmp -s "$ref/checkpoint.h5" "$got/checkpoint.h5"; then
    fail "$name" "checkpoint.h5 differs bitwise"
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

# A restart from a checkpoint written in small blocks on 3 ranks, read back in small blocks
# (rank 0 reads each rank's particles a block of rows at a time and sends them).
if run part-3 3 1000 --iters=15 && run cont-3 3 1000 --restart="$dir/part-3/out/checkpoint.h5"; then
  if cmp -s "$dir/one-3/out/mixture.csv" "$dir/cont-3/out/mixture.csv"; then
    pass restart-from-blocked-checkpoint-bitwise
  else
    fail restart-from-blocked-checkpoint-bitwise "mixture.csv differs from the uninterrupted 3-rank run"
  fi
fi
if run cont-1 1 "" --restart="$dir/part-3/out/checkpoint.h5"; then
  d=$("$GFV_PYTHON" - "$dir/one-3/out/mixture.csv" "$dir/cont-1/out/mixture.csv" <<'PY'
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
