#!/usr/bin/env bash
# test_resources.sh - what can be checked before the work is checked before it, and the
# output directory holds one run's files (docs/developer.md, "Reliability"), at 1 and 3 ranks.
#  (a) Output paths: a --checkpoint under a regular file, a --checkpoint that is a
#      directory, OUT/checkpoint.h5 that is a directory, a --checkpoint on a read-only
#      file system (a read-only tmpfs, mounted as root; a visible SKIP where mounting is
#      not allowed): exit status 5, one error line naming the option.
#  (b) Disk space, on a 2 MB tmpfs: --out-samples far too large, and outputs that fit one
#      by one but not together: status 5 naming the option and the figures; a run that
#      fits still runs there, and runs again into its own folder (the outputs it replaces
#      count as free space).
#  (c) Memory: --iters=10000000000 (480 GB of trace), refused, and with the check off the
#      failed allocation names --iters; a run too big for `ulimit -v` (must
#      refuse with status 7, not spin in OpenBLAS's allocator); a run too big for a memory
#      cgroup made here (v1 or v2; a visible SKIP where this machine does not allow one),
#      which used to be OOM-killed without a word.  Runs that fit under the same limits
#      still run.
#  Every refused run: one error line, status 5 or 7, the fit never started (no banner, no
#  progress, well under the time limit) and no file in --out.
#  (d) The output directory: stale "*.tmp.<pid>" files of a killed run are removed; a 4-D
#      run into a 2-D run's folder leaves no density.csv; a run that fails after the
#      prolog (a target that is NaN everywhere) leaves no summary.json; checkpoint.h5 and
#      unrelated files survive; a temporary file of another live gflowvi is left alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

mounts=()
cgroup_dir=""
bg_pid=""
cleanup() {
  [[ -z $bg_pid ]] || kill -KILL "$bg_pid" 2>/dev/null || true
  local m
  for m in ${mounts[@]+"${mounts[@]}"}; do umount "$m" 2>/dev/null || true; done
  # A cgroup can go only once its processes have: they are ours and ended above.
  [[ -z $cgroup_dir ]] || rmdir "$cgroup_dir" 2>/dev/null || true
  _gfv_cleanup
}
trap cleanup EXIT

small=(--iters=20 --eval-samples=1000 --out-samples=100 --progress-every=5)
wrap=() # a command the run is started through (ulimit, cgroup)

# launch NP ARGS... - gflowvi on NP ranks (1: the program itself), through ${wrap[@]}.
launch() {
  local np=$1
  shift
  local cmd=("$GFV_BIN")
  ((np == 1)) || cmd=("$GFV_ROOT/tools/mpirun.sh" "$np" "$GFV_BIN")
  timeout -s KILL 60 ${wrap[@]+"${wrap[@]}"} "${cmd[@]}" "$@"
}

# refused NAME NP STATUS FRAGMENT OUT ARGS... - the run must be refused in the prolog.
refused() {
  local name=$1 np=$2 want=$3 frag=$4 out=$5
  shift 5
  local log=$GFV_TMP/$name status=0 t0=$SECONDS
  launch "$np" "$@" --out="$out" >"$log.out" 2>"$log.err" </dev/null || status=$?
  local secs=$((SECONDS - t0)) files
  files=$(find "$out" -type f 2>/dev/null | tr '\n' ' ')
  if ((status != want)); then
    fail "$name" "exit status $status, expected $want, after ${secs} s: $(_gfv_head "$log.err")"
  elif [[ $(grep -c '^gflowvi: error:' "$log.err" || true) != 1 ]] || ! grep -qF -- "$frag" "$log.err"; then
    fail "$name" "not one error line with '$frag': $(_gfv_head "$log.err")"
  elif grep -qE '^(gflowvi: N?GFlow-VI|iter )' "$log.out" || ((secs > 30)); then
    fail "$name" "the fit started (${secs} s): $(_gfv_head "$log.out")"
  elif [[ -n $files ]]; then
    fail "$name" "left in --out: $files"
  else
    pass "$name"
  fi
}

# runs NAME NP ARGS... - the run must succeed (a control: the checks do not refuse all).
runs() {
  local name=$1 np=$2
  shift 2
  local log=$GFV_TMP/$name status=0
  launch "$np" "$@" >"$log.out" 2>"$log.err" </dev/null || status=$?
  if ((status == 0)); then pass "$name"; else fail "$name" "exit status $status: $(_gfv_head "$log.err")"; fi
}

# mount_tmpfs DIR OPTIONS - a small file system at DIR; fails, with the reason in $why,
# when this machine does not allow it.
mount_tmpfs() {
  mkdir -p "$1"
  why=""
  if ((EUID != 0)); then
    why="not root"
  elif ! mount -t tmpfs -o "$2" gflowvi-res "$1" 2>"$GFV_TMP/mount.err"; then
    why="mount -t tmpfs failed: $(head -n 1 "$GFV_TMP/mount.err")"
  else
    mounts+=("$1")
  fi
  [[ -z $why ]]
}

# ---- (a) output paths -------------------------------------------------------------------
somefile=$GFV_TMP/somefile
echo "not a directory" >"$somefile"
for np in 1 3; do
  refused "ck-under-file-np$np" "$np" 5 "--checkpoint=$somefile/ck.h5: cannot create" "$(tmpdir)/o" \
    --target=gauss --dim=3 "${small[@]}" --checkpoint="$somefile/ck.h5"
  d=$(tmpdir)
  refused "ck-is-dir-np$np" "$np" 5 "--checkpoint=$d is a directory" "$(tmpdir)/o" \
    --target=gauss --dim=3 "${small[@]}" --checkpoint="$d"
  o=$(tmpdir)
  mkdir "$o/checkpoint.h5"
  refused "ck-default-is-dir-np$np" "$np" 5 "'$o/checkpoint.h5', where the checkpoint goes, is a directory" \
    "$o" --target=gauss --dim=3 "${small[@]}"
done
ro=$GFV_TMP/ro
if mount_tmpfs "$ro" ro,size=64k; then
  for np in 1 3; do
    refused "ck-read-only-np$np" "$np" 5 "--checkpoint=$ro/ck.h5: cannot write to output directory '$ro': Read-only file system" \
      "$(tmpdir)/o" --target=gauss --dim=3 "${small[@]}" --checkpoint="$ro/ck.h5"
  done
else
  echo "SKIP ck-read-only: cannot make a read-only file system here ($why)"
fi

# ---- (b) disk space ---------------------------------------------------------------------
disk=$GFV_TMP/disk
if mount_tmpfs "$disk" size=2m; then
  for np in 1 3; do
    refused "out-samples-huge-np$np" "$np" 5 \
      "--out-samples=2000000 would write about 176 MB to '$disk/o$np/draws.csv', but the file system has" \
      "$disk/o$np" --target=gmm4 "${small[@]}" --out-samples=2000000
  done
  # draws.csv (1.3 MB), samples.csv, posterior.nc and density.csv (0.7 MB) fit one by one,
  # not together.  (The checkpoint is 15 kB: 3.5 MB in all; 3.6 MB when it held 5 kB of
  # MT19937 state a particle.)
  refused outputs-together-np1 1 5 \
    "--out-samples=15000: the run would write about 3.5 MB to '$disk/ot/' (1.3 MB of it to '$disk/ot/draws.csv'), but the file system has 2.1 MB free" \
    "$disk/ot" --target=gmm4 "${small[@]}" --out-samples=15000
  runs small-outputs-fit-np1 1 --target=gmm4 "${small[@]}" --out-samples=3000 --out="$disk/ok" --quiet
  # Again into the same folder, now 2/3 full: the previous outputs it replaces count as free.
  runs rerun-into-own-folder-np1 1 --target=gmm4 "${small[@]}" --out-samples=3000 --out="$disk/ok" --quiet
  rm -rf "${disk:?}"/*
else
  echo "SKIP disk-space: cannot make a small file system here ($why)"
fi

# ---- (c) memory -------------------------------------------------------------------------
for np in 1 3; do
  refused "iters-1e10-np$np" "$np" 7 "--iters=10000000000: the run needs about" "$(tmpdir)/o" \
    --target=gauss --dim=3 "${small[@]}" --iters=10000000000
  # The particles' size grows with d: the line names --dim too, not the default's 20 alone.
  refused "dim-4e9-np$np" "$np" 7 "--particles=20 --dim=4294967296: the run needs about" \
    "$(tmpdir)/o" --target=funnel --dim=4294967296 --family=diag "${small[@]}"
done
# Without the check, the allocation of the trace itself fails, and says which option.
# (Not under ASan, whose allocator reports a 480 GB request as an error of its own.)
if ! gfv_asan_build; then
  expect_fail trace-allocation-names-iters-np1 7 "--iters=10000000000: cannot allocate the trace" \
    env GFV_SKIP_RESOURCE_CHECKS=1 "$GFV_BIN" --target=gauss --dim=3 "${small[@]}" \
    --iters=10000000000 --out="$(tmpdir)/o"
fi
# 10^7 iterations: 0.5 GB of trace (4 copies on rank 0 while a checkpoint is written)
# under 1 GB of address space, of which MPI and OpenBLAS take about 0.4 GB at the start.
# funnel: its creation makes no BLAS call, so OpenBLAS has not mapped its buffer yet.
if gfv_asan_build; then
  echo "SKIP ulimit-v: $GFV_BIN is built with AddressSanitizer, which reserves terabytes of address space"
else
  wrap=(bash -c 'ulimit -v 1000000 && exec "$@"' ulimit)
  for np in 1 3; do
    refused "ulimit-v-np$np" "$np" 7 "left under the 1.0 GB limit of RLIMIT_AS (ulimit -v)" "$(tmpdir)/o" \
      --target=funnel "${small[@]}" --iters=10000000
  done
  runs ulimit-v-small-runs-np1 1 --target=funnel "${small[@]}" --out="$(tmpdir)/o" --quiet
  wrap=()
fi

# A child of this process's memory cgroup (v2: memory.max; v1: memory.limit_in_bytes)
# with 256 MB; the runs join it through a wrapper that writes its pid to cgroup.procs.
make_cgroup() {
  local v2 v1 base
  v2=$(sed -n 's/^0:://p' /proc/self/cgroup)
  v1=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}:\(.*\)/\3/p' /proc/self/cgroup)
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    base=/sys/fs/cgroup${v2%/}
    cgroup_dir=$base/gflowvi-test-$$
    mkdir "$cgroup_dir" 2>/dev/null && echo $((256 << 20)) >"$cgroup_dir/memory.max" 2>/dev/null && return 0
  elif [[ -n $v1 && -d /sys/fs/cgroup/memory ]]; then
    base=/sys/fs/cgroup/memory${v1%/}
    [[ -d $base ]] || base=/sys/fs/cgroup/memory
    cgroup_dir=$base/gflowvi-test-$$
    mkdir "$cgroup_dir" 2>/dev/null &&
      echo $((256 << 20)) >"$cgroup_dir/memory.limit_in_bytes" 2>/dev/null && return 0
  fi
  [[ -z $cgroup_dir ]] || rmdir "$cgroup_dir" 2>/dev/null || true
  cgroup_dir=""
  return 1
}
if ((EUID == 0)) && make_cgroup; then
  wrap=(bash -c 'echo $$ >"$0" && exec "$@"' "$cgroup_dir/cgroup.procs")
  # K = 2000, S = 10 in the samples layout: 268 MB of K^2 S terms (320 MB, held in ranges
  # under its 256 MiB budget), touched every iteration.
  refused cgroup-np1 1 7 "--particles=2000 --samples=10: the run needs about" "$(tmpdir)/o" \
    --target=gmm4 "${small[@]}" --particles=2000 --samples=10 --layout=samples
  refused cgroup-np3 3 7 "on this node (3 ranks; mostly the K^2 S mixture terms), but only" "$(tmpdir)/o" \
    --target=gmm4 "${small[@]}" --particles=2000 --samples=10 --layout=samples
  # The same run in the params layout has no K^2 term: about 40 MB, it fits.
  runs cgroup-params-fits-np1 1 --target=gmm4 "${small[@]}" --particles=2000 --samples=10 \
    --layout=params --out="$(tmpdir)/o" --quiet
  grep -qF "limit of the memory cgroup $cgroup_dir" "$GFV_TMP/cgroup-np3.err" && pass cgroup-named ||
    fail cgroup-named "$(_gfv_head "$GFV_TMP/cgroup-np3.err")"
  runs cgroup-small-runs-np1 1 --target=gmm4 "${small[@]}" --out="$(tmpdir)/o" --quiet
  wrap=()
else
  echo "SKIP cgroup: cannot create a memory cgroup here (not root, or no writable memory controller)"
fi

# ---- (d) the output directory -----------------------------------------------------------
dead=$(cat /proc/sys/kernel/pid_max) # no process has this pid: pids stay below pid_max
for np in 1 3; do
  out=$(tmpdir)
  echo '{"old": true}' >"$out/summary.json"
  head -c 100000 /dev/zero >"$out/mixture.h5.tmp.$dead"
  echo x >"$out/checkpoint.h5.tmp.$dead"
  echo precious >"$out/checkpoint.h5"
  echo mine >"$out/notes.txt"
  log=$GFV_TMP/stale-np$np
  if launch "$np" --target=gauss --dim=3 "${small[@]}" --out="$out" >"$log.out" 2>"$log.err" </dev/null &&
    [[ -z $(find "$out" -name '*.tmp.*') ]] &&
    grep -qxF "gflowvi: removed the previous run's outputs from $out/ (3 files)" "$log.out" &&
    [[ $(json_get "$out/summary.json" dim) == 3 && $(cat "$out/checkpoint.h5") == precious &&
      $(cat "$out/notes.txt") == mine ]]; then
    pass "stale-tmp-removed-np$np"
  else
    fail "stale-tmp-removed-np$np" "left: $(ls -A "$out" | tr '\n' ' '); $(_gfv_head "$log.out") $(_gfv_head "$log.err")"
  fi

  out=$(tmpdir)
  launch "$np" --target=gmm4 "${small[@]}" --out="$out" --quiet >/dev/null 2>&1 </dev/null || true
  status=0
  launch "$np" --target=gauss --dim=4 "${small[@]}" --out="$out" --quiet >"$log.4d" 2>&1 </dev/null || status=$?
  if ((status == 0)) && [[ ! -e $out/density.csv && $(json_get "$out/summary.json" dim) == 4 ]] &&
    ! grep -q "removed" "$log.4d"; then
    pass "no-stale-density-np$np"
  else
    fail "no-stale-density-np$np" "status $status, files: $(ls -A "$out" | tr '\n' ' '); $(_gfv_head "$log.4d")"
  fi

  out=$(tmpdir)
  launch "$np" --target=gmm4 "${small[@]}" --out="$out" --quiet >/dev/null 2>&1 </dev/null || true
  echo precious >"$out/checkpoint.h5"
  echo mine >"$out/notes.txt"
  status=0
  launch "$np" --target=plugin:"$GFV_BUILD/plugins/ring.so" --plugin-arg=nan "${small[@]}" \
    --out="$out" >"$log.nan" 2>&1 </dev/null || status=$?
  if ((status == 4)) && [[ $(ls -A "$out" | tr '\n' ' ') == "checkpoint.h5 notes.txt " ]]; then
    pass "failed-run-leaves-no-summary-np$np"
  else
    fail "failed-run-leaves-no-summary-np$np" "status $status, files: $(ls -A "$out" | tr '\n' ' ')"
  fi
done

# Another gflowvi, alive and writing into the same directory: its temporary file stays.
"$GFV_BIN" --target=gauss --dim=3 --iters=10000000 --progress-every=0 --quiet --out="$(tmpdir)" \
  >/dev/null 2>&1 </dev/null &
bg_pid=$!
out=$(tmpdir)
echo x >"$out/samples.csv.tmp.$bg_pid"
sleep 0.5
status=0
"$GFV_BIN" --target=gauss --dim=3 "${small[@]}" --out="$out" --quiet >/dev/null 2>"$GFV_TMP/live.err" || status=$?
if ((status == 0)) && [[ -e $out/samples.csv.tmp.$bg_pid ]] &&
  grep -qF "left '$out/samples.csv.tmp.$bg_pid' in place: process $bg_pid, another gflowvi" "$GFV_TMP/live.err"; then
  pass live-tmp-left-alone
else
  fail live-tmp-left-alone "status $status: $(_gfv_head "$GFV_TMP/live.err")"
fi
kill -KILL "$bg_pid" 2>/dev/null || true
{ wait "$bg_pid"; } 2>/dev/null || true # without bash's "Killed" notice
bg_pid=""
finish
