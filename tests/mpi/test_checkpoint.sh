#!/usr/bin/env bash
# test_checkpoint.sh - checkpoint and restart (HDF5):
#  - a run stopped by its checkpoint-every schedule and restarted on the same rank count
#    ends bitwise identical to the uninterrupted run; on another rank count within 1e-9;
#    the checkpoint holds no random-stream state (format 3: counter-based streams), and a
#    format-2 checkpoint (MT19937 states) is refused;
#  - SIGUSR1 (what Slurm sends before a time limit) checkpoints, exits with status 10,
#    and the restart completes the same run bitwise;
#  - kill -9 during frequent checkpoint writes never leaves a checkpoint that fails to
#    restart (temporary file + rename);
#  - truncated, corrupted, mismatched and missing checkpoints are refused clearly; a changed
#    problem option with status 2 (the checkpoint stores the options, see
#    test_restart_config.sh), and a checkpoint written before that with the older checks.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

common=(--particles=8 --samples=6 --weight-step=0.05 --iters=200 --quiet --eval-samples=5000 --out-samples=100)
ref=$(tmpdir)
gfv_mpirun 2 "${common[@]}" --out="$ref" >/dev/null 2>&1 || fail reference "uninterrupted run failed"

max_rel() {
  "$GFV_PYTHON" - "$1" "$2" <<'PY'
import sys, numpy as np
a = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1); b = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1)
print("%.3e" % (np.abs(a - b) / np.maximum(np.abs(a).max(axis=0), 1e-300)).max())
PY
}

# Stop at iteration 120 by the schedule (checkpoint at 60 and 120), restart to 200.
part=$(tmpdir)
gfv_mpirun 2 "${common[@]}" --iters=120 --checkpoint-every=60 --out="$part" >/dev/null 2>&1
ck=$part/checkpoint.h5
if [[ $(h5dump -a iteration "$ck" 2>/dev/null | grep -o '(0): [0-9]*' || true) == "(0): 120" ]]; then
  pass checkpoint-written-with-iteration
else
  fail checkpoint-written-with-iteration "no iteration 120 in $ck"
fi
# No stream state: the counter-based streams (src/rng/stream.h) follow from the iteration.
if "$GFV_PYTHON" - "$ck" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    ok = ("rng_state" not in f and f.attrs["format"] == b"gflowvi-checkpoint 3"
          and f.attrs["rng_type"] == b"philox4x64-10/box-muller" and "rng_state_bytes" not in f.attrs)
sys.exit(0 if ok else 1)
PY
then pass checkpoint-holds-no-stream-state
else fail checkpoint-holds-no-stream-state "rng_state present, or format / rng_type not the counter-based streams' in $ck"; fi
same=$(tmpdir)
gfv_mpirun 2 "${common[@]}" --restart="$ck" --out="$same" >/dev/null 2>&1
if cmp -s "$ref/mixture.csv" "$same/mixture.csv"; then pass restart-same-ranks-bitwise
else fail restart-same-ranks-bitwise "mixture.csv differs after restart on 2 ranks"; fi
for np in 1 3; do
  other=$(tmpdir)
  gfv_mpirun "$np" "${common[@]}" --restart="$ck" --out="$other" >/dev/null 2>&1
  d=$(max_rel "$ref/mixture.csv" "$other/mixture.csv")
  if "$GFV_PYTHON" -c "import sys; sys.exit(0 if float('$d') <= 1e-9 else 1)"; then
    pass "restart-on-$np-ranks (max rel diff $d)"
  else
    fail "restart-on-$np-ranks" "max relative difference $d > 1e-9"
  fi
done
# The trace continues: 201 rows (iterations 0..200), identical to the reference's numbers.
if diff <(cut -d, -f1-5 "$ref/trace.csv") <(cut -d, -f1-5 "$same/trace.csv") >/dev/null; then
  pass restart-trace-continues
else
  fail restart-trace-continues "trace.csv differs from the uninterrupted run"
fi

# A checkpoint written in one layout restarts in the other (--layout is a run option, and
# the layouts differ by rounding only): the default run above (auto: params on 2 ranks)
# continued with --layout=samples, and a samples-layout run continued with params, on 2
# and 3 ranks, against the uninterrupted runs (1e-9).  Not given, --layout is the
# checkpoint's.
restart_layout() { # NAME NP LAYOUT CHECKPOINT REFERENCE
  local out d
  out=$(tmpdir)
  if ! gfv_mpirun "$2" "${common[@]}" --layout="$3" --restart="$4" --out="$out" >/dev/null 2>"$out.err"; then
    fail "$1" "$(head -c 300 "$out.err")"
    return
  fi
  d=$(max_rel "$5/mixture.csv" "$out/mixture.csv")
  if [[ $(json_get "$out/summary.json" layout) != "$3" ]]; then
    fail "$1" "summary.json says layout $(json_get "$out/summary.json" layout), not $3"
  elif "$GFV_PYTHON" -c "import sys; sys.exit(0 if float('$d') <= 1e-9 else 1)"; then
    pass "$1 (max rel diff $d)"
  else
    fail "$1" "max relative difference $d > 1e-9"
  fi
}
[[ $(json_get "$ref/summary.json" layout) == params ]] && pass default-layout-params ||
  fail default-layout-params "auto chose $(json_get "$ref/summary.json" layout) on 2 ranks"
restart_layout restart-params-checkpoint-as-samples 2 samples "$ck" "$ref"
sref=$(tmpdir)
spart=$(tmpdir)
gfv_mpirun 2 "${common[@]}" --layout=samples --out="$sref" >/dev/null 2>&1
gfv_mpirun 2 "${common[@]}" --layout=samples --iters=120 --checkpoint-every=120 --out="$spart" >/dev/null 2>&1
restart_layout restart-samples-checkpoint-as-params-2 2 params "$spart/checkpoint.h5" "$sref"
restart_layout restart-samples-checkpoint-as-params-3 3 params "$spart/checkpoint.h5" "$sref"
kept=$(tmpdir)
gfv_mpirun 2 --restart="$spart/checkpoint.h5" --iters=200 --out="$kept" --quiet >/dev/null 2>&1
if [[ $(json_get "$kept/summary.json" layout) == samples ]] && cmp -s "$sref/mixture.csv" "$kept/mixture.csv"; then
  pass restart-keeps-checkpoint-layout-bitwise
else
  fail restart-keeps-checkpoint-layout-bitwise "layout $(json_get "$kept/summary.json" layout), or mixture.csv differs"
fi

# The diagonal family round-trips too (its precisions are stored as (K, d)).
dref=$(tmpdir)
dpart=$(tmpdir)
dres=$(tmpdir)
gfv_mpirun 2 "${common[@]}" --family=diag --out="$dref" >/dev/null 2>&1
gfv_mpirun 2 "${common[@]}" --family=diag --iters=90 --checkpoint-every=90 --out="$dpart" >/dev/null 2>&1
gfv_mpirun 2 "${common[@]}" --family=diag --restart="$dpart/checkpoint.h5" --out="$dres" >/dev/null 2>&1
if cmp -s "$dref/mixture.csv" "$dres/mixture.csv"; then pass restart-diag-bitwise
else fail restart-diag-bitwise "diag mixture differs after restart"; fi
# Options not given come from the checkpoint, so the family must be given to differ.
expect_fail refuse-other-family 2 "--family=full (checkpoint: diag)" "$GFV_BIN" "${common[@]}" \
  --family=full --restart="$dpart/checkpoint.h5" --out="$dpart/o"

# SIGUSR1: checkpoint at the end of the current iteration, exit 10 on every rank.
long=(--particles=16 --iters=1000000 --quiet --progress-every=0 --eval-samples=2000 --out-samples=10)
sig=$(tmpdir)
# Started directly (not through a shell function) so that $! is mpirun itself, which
# forwards SIGUSR1 to the ranks as it does under Slurm.
"$GFV_ROOT/tools/mpirun.sh" 2 "$GFV_BIN" "${long[@]}" --out="$sig" >/dev/null 2>"$sig.err" &
pid=$!
sleep 1.5
kill -USR1 "$pid"
code=0
wait "$pid" || code=$?
if ((code == 10)) && grep -q "received SIGUSR1: checkpoint written" "$sig.err" && [[ -s $sig/checkpoint.h5 ]]; then
  pass sigusr1-checkpoints-and-exits-10
else
  fail sigusr1-checkpoints-and-exits-10 "status $code: $(_gfv_head "$sig.err")"
fi
it=$(h5dump -a iteration "$sig/checkpoint.h5" 2>/dev/null | grep -o '(0): [0-9]*' | cut -d' ' -f2 || true)
# Finish the signalled run a little further and compare with an uninterrupted run of the
# same length: restarting must not change a single bit.
if [[ -n $it ]]; then
  n=$((it + 50))
  a=$(tmpdir)
  b=$(tmpdir)
  gfv_mpirun 2 "${long[@]}" --iters="$n" --out="$a" >/dev/null 2>&1
  gfv_mpirun 2 "${long[@]}" --iters="$n" --restart="$sig/checkpoint.h5" --out="$b" >/dev/null 2>&1
  if cmp -s "$a/mixture.csv" "$b/mixture.csv"; then pass signal-restart-bitwise
  else fail signal-restart-bitwise "mixture after restart differs"; fi
else
  fail signal-restart-bitwise "no checkpoint iteration"
fi

# kill -9 while checkpoints are written every iteration: whatever checkpoint.h5 is left
# must restart (the temporary-then-rename write never exposes a partial file).
kil=$(tmpdir)
"$GFV_ROOT/tools/mpirun.sh" 2 "$GFV_BIN" --particles=64 --samples=4 --iters=1000000 --quiet \
  --progress-every=0 --checkpoint-every=1 --out="$kil" >/dev/null 2>&1 &
pid=$!
sleep 2
pkill -9 -f "gflowvi.*$kil" || true
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [[ -s $kil/checkpoint.h5 ]]; then
  it=$(h5dump -a iteration "$kil/checkpoint.h5" 2>/dev/null | grep -o '(0): [0-9]*' | cut -d' ' -f2 || true)
  expect_ok restart-after-kill-9 gfv_mpirun 2 --particles=64 --samples=4 --iters=$((it + 2)) --quiet \
    --eval-samples=1000 --out-samples=10 --restart="$kil/checkpoint.h5" --out="$kil/after"
else
  fail restart-after-kill-9 "no checkpoint written within 2 s"
fi

# Refusals, each with one clear line and status 3 (input) or 2 (usage).
bad=$(tmpdir)
head -c 2000 "$ck" >"$bad/truncated.h5"
cp "$ck" "$bad/corrupted.h5"
"$GFV_PYTHON" - "$bad/corrupted.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["mu"][0, 0] += 1e-9   # a valid file whose numbers changed: only the checksum can tell
PY
expect_fail refuse-truncated 3 "not a readable HDF5 file" "$GFV_BIN" "${common[@]}" --restart="$bad/truncated.h5" --out="$bad/o1"
expect_fail refuse-corrupted 3 "checksum mismatch" "$GFV_BIN" "${common[@]}" --restart="$bad/corrupted.h5" --out="$bad/o2"
expect_fail refuse-other-target 2 "--target=banana (checkpoint: gmm4)" "$GFV_BIN" "${common[@]}" --target=banana --restart="$ck" --out="$bad/o3"
expect_fail refuse-other-particles 2 "--particles=9 (checkpoint: 8)" "$GFV_BIN" "${common[@]}" --particles=9 --restart="$ck" --out="$bad/o4"
expect_fail refuse-missing 3 "cannot open checkpoint" "$GFV_BIN" "${common[@]}" --restart="$bad/none.h5" --out="$bad/o5"
expect_fail refuse-not-checkpoint 3 "not a gflowvi checkpoint" "$GFV_BIN" "${common[@]}" --restart="$ref/mixture.h5" --out="$bad/o6"
expect_fail refuse-iters-below 2 "below the checkpoint's iteration 120" "$GFV_BIN" "${common[@]}" --iters=100 --restart="$ck" --out="$bad/o7"
# A checkpoint of the MT19937 streams (format 2) cannot continue with the Philox streams.
cp "$ck" "$bad/format2.h5"
"$GFV_PYTHON" - "$bad/format2.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f.attrs.modify("format", b"gflowvi-checkpoint 2")
PY
expect_fail refuse-format-2 3 "written by an earlier gflowvi (format 'gflowvi-checkpoint 2', MT19937 streams)" \
  "$GFV_BIN" "${common[@]}" --restart="$bad/format2.h5" --out="$bad/o12"
# A checkpoint from before the options were stored (no config_text): the command line's
# options, checked against the checkpoint's target, particles and family as before.
cp "$ck" "$bad/legacy.h5"
cp "$dpart/checkpoint.h5" "$bad/legacy-diag.h5"
"$GFV_PYTHON" - "$bad/legacy.h5" "$bad/legacy-diag.h5" <<'PY'
import sys, h5py
for p in sys.argv[1:]:
    with h5py.File(p, "r+") as f:
        for a in ("config_text", "config_text_checksum", "data_checksum", "target_file_checksum"):
            del f.attrs[a]
PY
expect_fail legacy-other-target 3 "is for target 'gmm4', not 'banana'" "$GFV_BIN" "${common[@]}" --target=banana --restart="$bad/legacy.h5" --out="$bad/o8"
expect_fail legacy-other-particles 3 "has 8 particles, but --particles=9" "$GFV_BIN" "${common[@]}" --particles=9 --restart="$bad/legacy.h5" --out="$bad/o9"
expect_fail legacy-other-family 3 "is for --family=diag, not full" "$GFV_BIN" "${common[@]}" --restart="$bad/legacy-diag.h5" --out="$bad/o10"
legacy=$(tmpdir)
gfv_mpirun 2 "${common[@]}" --restart="$bad/legacy.h5" --out="$legacy" >/dev/null 2>&1 || true
cmp -s "$ref/mixture.csv" "$legacy/mixture.csv" && pass legacy-restart-bitwise ||
  fail legacy-restart-bitwise "mixture.csv differs after a restart from a checkpoint without config_text"
for o in o1 o2 o3 o4 o5 o6 o7 o8 o9 o10 o12; do
  [[ ! -e $bad/$o || -z $(ls -A "$bad/$o") ]] || fail "no-output-$o" "files left in $bad/$o"
done
gfv_mpirun 3 "${common[@]}" --target=gauss --dim=3 --restart="$ck" --out="$bad/o11" >/dev/null 2>"$bad/o11.err" || true
grep -qF -- "--target=gauss (checkpoint: gmm4), --dim=3 (checkpoint: 0)" "$bad/o11.err" && [[ $(grep -c '^gflowvi: error' "$bad/o11.err") == 1 ]] &&
  pass refuse-mismatch-3-ranks || fail refuse-mismatch-3-ranks "$(_gfv_head "$bad/o11.err")"
finish
