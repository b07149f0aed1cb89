#!/usr/bin/env bash
# test_signals.sh - a stop signal is honoured in every phase (docs/user-guide.md, "Checkpoints"): during
# set-up, the iteration, the final evaluation and the output writing, SIGTERM (one rank, the
# process itself) and SIGUSR1 (three ranks, sent to mpirun, which forwards it as under Slurm)
# stop the run within seconds of the phase's next safe point with exit status 10 and a line
# naming the phase; where there is state (every phase after set-up) a checkpoint is written,
# --out holds no output file and no temporary file, and a restart from the checkpoint
# completes the run.  A second signal stops at once (killed by the signal, no checkpoint).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ring=$GFV_BUILD/plugins/ring.so

# start NP LOG ARGS... - starts gflowvi in the background (directly for one rank, so the
# signal reaches the process itself; through mpirun otherwise); sets $pid.
start() {
  local np=$1 log=$2
  shift 2
  if ((np == 1)); then
    OPENBLAS_NUM_THREADS=1 "$GFV_BIN" "$@" >"$log.out" 2>"$log.err" </dev/null &
  else
    "$GFV_ROOT/tools/mpirun.sh" "$np" "$GFV_BIN" "$@" >"$log.out" 2>"$log.err" </dev/null &
  fi
  pid=$!
}

# wait_line FILE TEXT SECONDS - waits until FILE contains TEXT.
wait_line() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# wait_count FILE TEXT N SECONDS - waits until FILE has N lines containing TEXT.
wait_count() {
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    (($(grep -cF -- "$2" "$1" 2>/dev/null || true) >= $3)) && return 0
    sleep 0.1
  done
  return 1
}

# finish_within SECONDS - waits for $pid to end; sets $code and $took (tenths of seconds).
finish_within() {
  local i
  code=0
  for ((took = 0; took < $1 * 10; took++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null || true
    pkill -9 -f "$GFV_BIN.*$log" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || code=$?
}

# phase_case NAME NP SIGNAL MARKER STDERR_TEXT HAS_STATE ARGS... - starts a run, waits for
# MARKER on its stdout (a MARKER starting with "err:" on its stderr, once from every rank:
# the ranks are then past their start-up and have their handlers), sends SIGNAL, and checks
# the stop.
phase_case() {
  local name=$1 np=$2 sig=$3 marker=$4 phase=$5 state=$6
  shift 6
  local dir log
  dir=$(tmpdir)
  log=$dir/run
  start "$np" "$log" --out="$dir/out" --checkpoint="$dir/ck.h5" "$@"
  if [[ $marker == err:* ]]; then
    wait_count "$log.err" "${marker#err:}" "$np" 120 ||
      { fail "$name" "never reached '${marker#err:}'"; kill -9 "$pid"; return; }
  else
    wait_line "$log.out" "$marker" 60 || { fail "$name" "never reached '$marker'"; kill -9 "$pid"; return; }
    sleep 0.3
  fi
  kill -"$sig" "$pid" 2>/dev/null || true
  finish_within 20
  local why=""
  ((code == 10)) || why="exit $code, expected 10"
  ((took <= 60)) || why="$why; took $((took / 10)) s after the signal"
  grep -qF -- "$phase" "$log.err" || why="$why; stderr lacks '$phase'"
  if ((state)); then
    [[ -s $dir/ck.h5 ]] || why="$why; no checkpoint"
  else
    [[ ! -e $dir/ck.h5 ]] || why="$why; a checkpoint without state"
  fi
  local left
  left=$(find "$dir/out" -type f 2>/dev/null | grep -v '\.gflowvi-probe' || true)
  [[ -z $left ]] || why="$why; files left in --out: $(echo $left | tr '\n' ' ')"
  if [[ -z $why ]]; then pass "$name"; else fail "$name" "$why; stderr: $(_gfv_head "$log.err")"; fi
  if ((state)) && [[ -s $dir/ck.h5 ]]; then
    # The restart finishes the interrupted phase (smaller outputs and a few more iterations
    # than the checkpoint holds: run options).
    local it
    it=$("$GFV_PYTHON" -c "import h5py,sys; print(int(h5py.File(sys.argv[1])['/'].attrs['iteration']))" \
      "$dir/ck.h5")
    expect_ok "$name-restart" gfv_mpirun "$np" --restart="$dir/ck.h5" --out="$dir/out2" \
      --iters=$((it + 5)) --eval-samples=2000 --out-samples=100 --quiet
    [[ -s $dir/out2/summary.json ]] || fail "$name-restart-summary" "no summary.json after the restart"
  fi
}

for np in 1 3; do
  sig=TERM
  ((np == 1)) || sig=USR1
  name=$(echo "$sig" | tr 'A-Z' 'a-z')-np$np
  phase_case "setup-$name" "$np" "$sig" "err:ring: sleeping" "during set-up" 0 \
    --target=plugin:"$ring" --plugin-arg=sleep=3 --particles=4 --iters=5
  phase_case "iteration-$name" "$np" "$sig" "iter " ": checkpoint written to" 1 \
    --target=gauss --dim=3 --particles=6 --iters=1000000 --progress-every=100
  phase_case "evaluation-$name" "$np" "$sig" "final evaluation:" "during the final evaluation" 1 \
    --target=gauss --dim=20 --particles=4 --iters=5 --eval-samples=8000000 --out-samples=10
  phase_case "output-$name" "$np" "$sig" "writing the outputs" "during output writing" 1 \
    --target=gmm4 --particles=4 --iters=5 --eval-samples=1000 --out-samples=6000000
done

# A signal that arrives before the handlers could catch it (during MPI's start-up, which
# takes a second for a singleton): made deterministic by starting gflowvi with SIGTERM and
# SIGUSR1 blocked and already pending (both survive exec).  It must stop in set-up with
# status 10 and one line, not be killed by the default action nor ignored for the run.
for sig in TERM USR1; do
  dir=$(tmpdir)
  code=0
  "$GFV_PYTHON" -c '
import os, signal, sys
sig = getattr(signal, "SIG" + sys.argv[1])
signal.pthread_sigmask(signal.SIG_BLOCK, {sig})
os.kill(os.getpid(), sig)
os.execv(sys.argv[2], sys.argv[2:])' "$sig" "$GFV_BIN" --target=gmm4 --particles=4 --iters=5 \
    --eval-samples=1000 --out-samples=10 --out="$dir/out" >"$dir/log.out" 2>"$dir/log.err" \
    </dev/null || code=$?
  if ((code == 10)) && grep -q "received SIG$sig during set-up" "$dir/log.err" &&
    [[ -z $(ls -A "$dir/out" 2>/dev/null) ]]; then
    pass "pending-at-start-$sig"
  else
    fail "pending-at-start-$sig" "exit $code; stderr: $(_gfv_head "$dir/log.err")"
  fi
done

# A second signal while the first is being honoured: stopped at once by the signal.
dir=$(tmpdir)
log=$dir/run
start 1 "$log" --target=plugin:"$ring" --plugin-arg=sleep=4 --particles=4 --out="$dir/out"
wait_count "$log.err" "ring: sleeping" 1 120 || true
kill -TERM "$pid" 2>/dev/null || true
sleep 0.5
kill -TERM "$pid" 2>/dev/null || true
finish_within 10
if ((code == 143)) && ((took <= 15)) && grep -q "second stop signal" "$log.err"; then
  pass second-signal-stops-at-once
else
  fail second-signal-stops-at-once "exit $code after $((took / 10)) s; stderr: $(_gfv_head "$log.err")"
fi
finish
