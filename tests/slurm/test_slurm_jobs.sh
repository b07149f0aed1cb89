#!/usr/bin/env bash
# test_slurm_jobs.sh - the job scripts of jobs/ on a real Slurm: a single-node cluster
# started here by tools/local-slurm.sh (Debian's slurm-wlm and munge, installed when
# missing), stopped again at the end.
#
#   1. single-run: jobs/gflowvi.sbatch completes, with the same mixture.csv (bitwise) as
#      the same run started directly with mpirun at the same rank count; again with
#      GFV_LAUNCHER=srun (srun --mpi=pmix);
#   2. signal-requeue: the same job script on a longer run is sent SIGUSR1 while it
#      iterates (`scancel --signal=USR1 --batch`, exactly what `--signal=B:USR1@T` makes
#      Slurm do before a time limit): gflowvi checkpoints and stops with status 10, the
#      script requeues the job, the second run resumes from the checkpoint, and the job
#      ends COMPLETED with mixture.csv bitwise identical to an uninterrupted run and the
#      whole trace;
#   3. strong-scaling / weak-scaling: the two sweep jobs on 1 and 2 ranks write their CSV
#      table (one row per rank count) and the plots.
#   4. only with GFV_SLURM_TIMELIMIT=1 (about 3 minutes more): a job with --time=1 and
#      --signal=B:USR1@50 really reaches its time limit, is signalled by Slurm itself,
#      requeued and completed.
# Waits are bounded (squeue polled); a failure prints the job's log and the daemons' logs
# below its FAIL line (in build/test-logs/).  Prints `SKIP slurm: why` instead when
# there is no way to run Slurm here: not root, packages not installable, daemons that do
# not start.  Takes about 60 s.  Only one copy runs at a time (a lock), on its own ports
# and state directory, so a cluster of tools/local-slurm.sh's defaults is left alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

skip() {
  echo "SKIP slurm: $1"
  exit 0
}

((EUID == 0)) || skip "not root (the test starts munged, slurmctld and slurmd)"
[[ -x $GFV_BIN ]] || { fail slurm-setup "no program at $GFV_BIN"; finish; }
command -v flock >/dev/null || skip "flock not found"

# One Slurm test at a time on this machine (two checkouts, or two developers).
exec 9>/var/lock/gflowvi-slurm-test.lock
flock -w 600 9 || skip "another Slurm test held the lock for 10 minutes"

export LS_DIR=/var/tmp/gflowvi-slurm-test LS_CTLD_PORT=6837 LS_SLURMD_PORT=6838
export LS_TIMEOUT=60
source "$GFV_ROOT/tools/local-slurm.sh"
export SLURM_CONF=$LS_CONF

started=0
cleanup() {
  local st=$?
  if ((started)); then ls_stop >/dev/null 2>&1 || true; fi
  _gfv_cleanup
  exit $st
}
trap cleanup EXIT

# A previous run killed half-way (test timeout) may have left its daemons and jobs: stop
# them and forget their state, so no old job is requeued into this run.
ls_stop >/dev/null 2>&1 || true
rm -rf "$LS_DIR/state" "$LS_DIR/spool" "$LS_DIR/log"

install_log=$(mktemp "$GFV_TMP/install.XXXXXX")
ls_install >"$install_log" 2>&1 || skip "cannot install slurm-wlm and munge: $(tail -n 3 "$install_log" | tr '\n' ' ')"
start_log=$(mktemp "$GFV_TMP/start.XXXXXX")
started=1
if ! ls_start >"$start_log" 2>&1; then
  cat "$start_log"
  skip "the single-node cluster did not start: $(grep -m1 -v '^----' "$start_log" | head -c 200)"
fi
pass "slurm-start ($(sinfo -h -o '%D node, %c CPUs' | head -n 1))"

jobs_dir=$(tmpdir)

# show_failure JOB LOG - the job's record, its log and the daemons' logs, indented.
show_failure() {
  {
    echo "---- scontrol show job $1"
    scontrol show job "$1" 2>&1 || true
    echo "---- job log $2"
    cat "$2" 2>/dev/null || echo "(none)"
    ls_logs
  } | sed 's/^/    | /'
}

# job_field JOB FIELD - one field of `scontrol show job` (JobState, ExitCode, Restarts...).
job_field() {
  scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# wait_gone JOB SECONDS - polls until the job has left the queue (done, failed or
# cancelled); on timeout cancels it and returns 1.
wait_gone() {
  local id=$1 end=$((SECONDS + $2)) st
  while ((SECONDS < end)); do
    st=$(squeue -h -j "$id" -o %T 2>/dev/null || true)
    [[ -n $st ]] || return 0
    sleep 1
  done
  scancel "$id" 2>/dev/null || true
  return 1
}

# submit LOG VARS ARGS... - sbatch with the job scripts' settings GFV_ROOT and GFV_BIN
# and the comma-separated VAR=value list VARS; prints the job id.
submit() {
  local log=$1 vars=$2
  shift 2
  sbatch --parsable --output="$log" --chdir="$jobs_dir" \
    --export="ALL,GFV_ROOT=$GFV_ROOT,GFV_BIN=$GFV_BIN,PYTHON=$GFV_PYTHON,$vars" "$@"
}

# Same file, byte for byte; else the largest relative difference, for the message.
same_or_diff() {
  if cmp -s "$1" "$2"; then
    echo same
    return
  fi
  "$GFV_PYTHON" - "$1" "$2" <<'PY' 2>&1 || true
import sys, numpy as np
a = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, ndmin=2)
b = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2)
if a.shape != b.shape:
    print("shapes differ", a.shape, b.shape)
else:
    print("max abs difference %.3e" % np.abs(a - b).max())
PY
}

# ---- 1. a single run ---------------------------------------------------------------
single_args=(--target=gmm4 --particles=20 --samples=10 --weight-step=0.05 --iters=300
  --eval-samples=20000 --out-samples=100 --quiet)
single_ref=""

# test_single_run NAME LAUNCHER - the job with GFV_LAUNCHER=LAUNCHER (mpirun or srun).
test_single_run() {
  local name=$1 launcher=$2 args=("${single_args[@]}")
  local ref out log id
  out=$jobs_dir/$name-out log=$jobs_dir/$name.log
  if [[ -z $single_ref ]]; then
    single_ref=$(tmpdir)
    if ! gfv_mpirun 2 "${args[@]}" --out="$single_ref" >/dev/null 2>"$single_ref.err"; then
      fail single-run-reference "direct run failed: $(_gfv_head "$single_ref.err")"
      return
    fi
  fi
  ref=$single_ref
  [[ -s $ref/mixture.csv ]] || return 0 # the reference run failed (reported once)
  if ! id=$(submit "$log" "GFV_OUT=$out,GFV_LAUNCHER=$launcher" --ntasks=2 --time=5 \
    "$GFV_ROOT/jobs/gflowvi.sbatch" "${args[@]}" 2>&1); then
    fail "$name-submit" "sbatch: $id"
    return
  fi
  if ! wait_gone "$id" 120; then
    fail "$name" "job $id still queued or running after 120 s"
    show_failure "$id" "$log"
    return
  fi
  local state exitcode diff
  state=$(job_field "$id" JobState) exitcode=$(job_field "$id" ExitCode)
  if [[ $state != COMPLETED || $exitcode != 0:0 ]]; then
    fail "$name" "job $id ended $state, exit code $exitcode"
    show_failure "$id" "$log"
    return
  fi
  pass "$name-completed (job $id)"
  local f absent=""
  for f in summary.json mixture.csv trace.csv samples.csv; do
    [[ -s $out/$f ]] || absent+=" $f"
  done
  if [[ -n $absent ]]; then
    fail "$name-outputs" "missing in $out:$absent"
    show_failure "$id" "$log"
    return
  fi
  local iters ranks
  iters=$(json_get "$out/summary.json" iterations) ranks=$(json_get "$out/summary.json" ranks)
  if [[ $iters == 300 && $ranks == 2 ]]; then
    pass "$name-summary"
  else
    fail "$name-summary" "iterations $iters (want 300), ranks $ranks (want 2)"
  fi
  diff=$(same_or_diff "$ref/mixture.csv" "$out/mixture.csv")
  if [[ $diff == same ]]; then
    pass "$name-same-mixture-as-mpirun"
  else
    fail "$name-same-mixture-as-mpirun" "$diff"
  fi
}

# ---- 2. signalled, checkpointed, requeued, resumed -----------------------------------
# About 2 s of iterations on 2 idle cores; the signal comes after the first progress line.
long_args=(--target=gmm4 --particles=100 --samples=20 --weight-step=0.05 --iters=1500
  --eval-samples=20000 --out-samples=100 --progress-every=50)

# check_resumed NAME ID LOG OUT REF - the checks after a job that was to be interrupted.
check_resumed() {
  local name=$1 id=$2 log=$3 out=$4 ref=$5
  local state exitcode restarts diff
  state=$(job_field "$id" JobState) exitcode=$(job_field "$id" ExitCode)
  restarts=$(job_field "$id" Restarts)
  if grep -q 'checkpoint written to' "$log"; then
    pass "$name-checkpointed ($(grep -m1 -o 'at iteration [0-9]*' "$log"))"
  else
    fail "$name-checkpointed" "no 'checkpoint written to' message in the job log"
  fi
  if [[ ${restarts:-0} -ge 1 ]] && grep -q 'resuming from' "$log" && grep -q 'restarted from' "$log"; then
    pass "$name-requeued-and-resumed (restarts $restarts)"
  else
    fail "$name-requeued-and-resumed" "restarts ${restarts:-none}; log lacks 'resuming from' or 'restarted from'"
  fi
  if [[ $state != COMPLETED || $exitcode != 0:0 ]]; then
    fail "$name-completed" "job $id ended $state, exit code $exitcode"
    show_failure "$id" "$log"
    return
  fi
  pass "$name-completed"
  if [[ ! -s $out/mixture.csv ]]; then
    fail "$name-same-mixture" "no $out/mixture.csv"
    show_failure "$id" "$log"
    return
  fi
  diff=$(same_or_diff "$ref/mixture.csv" "$out/mixture.csv")
  if [[ $diff == same ]]; then
    pass "$name-same-mixture-as-uninterrupted"
  else
    fail "$name-same-mixture-as-uninterrupted" "$diff"
    show_failure "$id" "$log"
  fi
  # The whole trace survives the restart; only the wall-clock column may differ.
  if cmp -s <(cut -d, -f1-5 "$ref/trace.csv") <(cut -d, -f1-5 "$out/trace.csv"); then
    pass "$name-same-trace ($(($(wc -l <"$out/trace.csv") - 1)) iterations)"
  else
    fail "$name-same-trace" "trace.csv differs from the uninterrupted run's (columns 1-5)"
  fi
}

test_signal_requeue() {
  local ref out log id
  ref=$(tmpdir) out=$jobs_dir/requeue-out log=$jobs_dir/requeue.log
  if ! gfv_mpirun 2 "${long_args[@]}" --quiet --out="$ref" >/dev/null 2>"$ref.err"; then
    fail signal-requeue-reference "direct run failed: $(_gfv_head "$ref.err")"
    return
  fi
  if ! id=$(submit "$log" "GFV_OUT=$out,GFV_CHECKPOINT_SECONDS=0" --ntasks=2 --time=10 \
    "$GFV_ROOT/jobs/gflowvi.sbatch" "${long_args[@]}" 2>&1); then
    fail signal-requeue-submit "sbatch: $id"
    return
  fi
  # Signal once the iterations are under way (the first progress line is in the log).
  local end=$((SECONDS + 60))
  until grep -q '^iter ' "$log" 2>/dev/null; do
    if ((SECONDS >= end)); then
      fail signal-requeue "job $id printed no progress line within 60 s"
      show_failure "$id" "$log"
      scancel "$id" 2>/dev/null || true
      return
    fi
    sleep 0.2
  done
  if ! scancel --signal=USR1 --batch "$id"; then
    fail signal-requeue "scancel --signal=USR1 --batch $id failed"
    return
  fi
  if ! wait_gone "$id" 180; then
    fail signal-requeue "job $id not finished 180 s after the signal"
    show_failure "$id" "$log"
    return
  fi
  check_resumed signal-requeue "$id" "$log" "$out" "$ref"
}

# ---- 3. the scaling jobs ----------------------------------------------------------------
test_scaling_job() {
  local kind=$1 res=$jobs_dir/$1-results log=$jobs_dir/$1.log id
  if ! id=$(submit "$log" \
    "GFV_RESULTS=$res,GFV_RANKS=1 2,GFV_ITERS=30,GFV_PARTICLES=16,GFV_PARTICLES_PER_RANK=8,GFV_DIM=4" \
    --ntasks=2 --time=5 \
    "$GFV_ROOT/jobs/$kind-scaling.sbatch" 2>&1); then
    fail "$kind-scaling-submit" "sbatch: $id"
    return
  fi
  if ! wait_gone "$id" 120; then
    fail "$kind-scaling" "job $id not finished after 120 s"
    show_failure "$id" "$log"
    return
  fi
  local state csv=$res/$kind.csv
  state=$(job_field "$id" JobState)
  if [[ $state != COMPLETED || ! -s $csv ]]; then
    fail "$kind-scaling" "job $id ended $state; $csv $([[ -s $csv ]] && echo exists || echo missing)"
    show_failure "$id" "$log"
    return
  fi
  local why
  why=$("$GFV_PYTHON" - "$csv" "$kind" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
kind = sys.argv[2]
need = ["sweep", "ranks", "particles", "samples", "dim", "seconds_per_iteration", "sample_s",
        "target_s", "mixture_s", "comm_s", "update_s", "bytes_per_iteration", "speedup", "efficiency"]
missing = [c for c in need if rows and c not in rows[0]]
if missing:
    print("columns missing:", missing); sys.exit()
if [r["ranks"] for r in rows] != ["1", "2"]:
    print("ranks column", [r["ranks"] for r in rows], "!= ['1', '2']"); sys.exit()
if any(float(r["seconds_per_iteration"]) <= 0 for r in rows):
    print("non-positive seconds per iteration"); sys.exit()
K = [int(r["particles"]) for r in rows]
want = [16, 16] if kind == "strong" else [8, 16]
if K != want:
    print("particles", K, "!=", want); sys.exit()
if float(rows[1]["bytes_per_iteration"]) <= 0:
    print("no bytes sent at 2 ranks"); sys.exit()
PY
  )
  if [[ -z $why ]]; then
    pass "$kind-scaling-job-table"
  else
    fail "$kind-scaling-job-table" "$why"
    show_failure "$id" "$log"
  fi
  if ls "$res"/*.png >/dev/null 2>&1; then
    pass "$kind-scaling-job-plots"
  else
    fail "$kind-scaling-job-plots" "no PNG in $res"
  fi
}

# ---- 4. (opt-in) a real time limit ---------------------------------------------------------
test_time_limit() {
  # Slurm checks time limits every 30 s or so: with --time=1 and --signal=B:USR1@50 the
  # signal comes 10 to 45 s after the start, so the run must last longer than that.
  local args=(--target=gmm4 --particles=400 --samples=20 --weight-step=0.05 --iters=2500
    --eval-samples=20000 --out-samples=100 --progress-every=100)
  local ref out log id
  ref=$(tmpdir) out=$jobs_dir/timelimit-out log=$jobs_dir/timelimit.log
  if ! gfv_mpirun 2 "${args[@]}" --quiet --out="$ref" >/dev/null 2>"$ref.err"; then
    fail time-limit-reference "direct run failed: $(_gfv_head "$ref.err")"
    return
  fi
  if ! id=$(submit "$log" "GFV_OUT=$out,GFV_CHECKPOINT_SECONDS=0" --ntasks=2 --time=1 --signal=B:USR1@50 \
    "$GFV_ROOT/jobs/gflowvi.sbatch" "${args[@]}" 2>&1); then
    fail time-limit-submit "sbatch: $id"
    return
  fi
  if ! wait_gone "$id" 400; then
    fail time-limit "job $id not finished after 400 s"
    show_failure "$id" "$log"
    return
  fi
  check_resumed time-limit "$id" "$log" "$out" "$ref"
}

test_single_run single-run mpirun
test_single_run single-run-srun srun
test_signal_requeue
test_scaling_job strong
test_scaling_job weak
if [[ ${GFV_SLURM_TIMELIMIT:-0} == 1 ]]; then test_time_limit; fi
finish
