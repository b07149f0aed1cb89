#!/usr/bin/env bash
# run_all.sh BUILD_DIR - runs the whole test suite and prints "N passed, N failed" last.
#
# Runs every BUILD_DIR/tests/test_* program (unit tests, see tests/unit/harness.h), then
# every tests/cli/*.sh, tests/mpi/*.sh and tests/slurm/*.sh script (given BUILD_DIR as
# $1, run from the repo root).  Each prints one "PASS name" or "FAIL name: why" line per
# test (or "SKIP name: why" where it cannot run here); this script adds them up.  A
# program that fails without saying why (non-zero exit and no FAIL line), crashes, hangs
# past the timeout, or reports nothing at all counts as one failure under its own name,
# with the tail of its log, so a broken test can never look green.
#
# Environment: GFV_TEST_TIMEOUT  seconds allowed per program (default 900)
#              GFV_TEST_FILTER   only run programs whose name contains this string
# Exit status: 0 only when nothing failed and at least one test passed.
set -euo pipefail

if (($# != 1)); then
  echo "usage: ${0##*/} BUILD_DIR   (e.g. tests/run_all.sh build, after make all)" >&2
  exit 2
fi

# BUILD_DIR is relative to the caller's directory; make it absolute before moving to the
# repo root so scripts can use it even after they cd elsewhere (e.g. into a tmpdir).
build=$1
[[ $build == /* ]] || build=$PWD/$build
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

timeout_s=${GFV_TEST_TIMEOUT:-900}
filter=${GFV_TEST_FILTER:-}
logdir=$build/test-logs
mkdir -p "$logdir"
# For tests/lib.sh and any script that wants them without parsing $1.
export GFV_ROOT=$root GFV_BUILD=$build

total_pass=0
total_fail=0
total_skip=0
ran=0

# Microseconds since the epoch, from bash's own clock (no subprocess per test).
now_us() {
  local t=${EPOCHREALTIME/[.,]/}
  echo "$t"
}

# run_one NAME CMD... - runs one test program under the timeout, logs its output, tallies.
run_one() {
  local name=$1
  shift
  local log=$logdir/${name//\//_}.log
  local start end status=0
  start=$(now_us)
  # stdin from /dev/null: mpirun forwards stdin to rank 0 and could block on a terminal.
  # timeout signals the whole process group, so mpirun and its ranks go too; --kill-after
  # handles a program that ignores SIGTERM.  The outer 2>/dev/null only silences bash's
  # own "Segmentation fault" notice; the crash is reported below, in order.
  { timeout --kill-after=30 "$timeout_s" "$@" </dev/null >"$log" 2>&1; } 2>/dev/null || status=$?
  end=$(now_us)

  local npass nfail nskip
  npass=$(grep -c '^PASS ' "$log" || true)
  nfail=$(grep -c '^FAIL ' "$log" || true)
  nskip=$(grep -c '^SKIP ' "$log" || true)

  # Why the program itself counts as a failure, if it does (empty when it does not).
  local why=""
  if ((status == 124 || status == 137)) && ((end - start >= timeout_s * 1000000)); then
    why="timed out after ${timeout_s} s"
  elif ((status > 128)); then
    why="crashed (killed by signal $((status - 128)))"
  elif ((status != 0 && nfail == 0)); then
    why="exit status $status without a FAIL line"
  elif ((status == 0 && npass + nfail + nskip == 0)); then
    why="reported no PASS/FAIL lines"
  fi
  [[ -z $why ]] || nfail=$((nfail + 1))

  local secs
  secs=$(printf '%d.%02d' $(((end - start) / 1000000)) $(((end - start) % 1000000 / 10000)))
  printf '== %-40s %8s s  %d passed, %d failed%s\n' "$name" "$secs" "$npass" "$nfail" \
    "$( ((nskip == 0)) || echo ", $nskip skipped")"
  grep '^FAIL ' "$log" || true
  # Skipped checks are shown with their reason, so a skip is never silent.
  grep '^SKIP ' "$log" || true
  if [[ -n $why ]]; then
    echo "FAIL $name: $why; last lines of $log:"
    tail -n 20 "$log" | sed 's/^/    | /'
  fi

  total_pass=$((total_pass + npass))
  total_fail=$((total_fail + nfail))
  total_skip=$((total_skip + nskip))
  ran=$((ran + 1))
}

# Sorted for a stable order (globs sort by locale; force C so every machine agrees).
export LC_ALL=C
shopt -s nullglob

if [[ ! -d $build/tests ]]; then
  echo "note: no $build/tests directory; build the unit tests with 'make all' first" >&2
fi
for prog in "$build"/tests/test_*; do
  # Only the executables: skip logs, objects or dependency files that may sit alongside.
  [[ -f $prog && -x $prog ]] || continue
  name=tests/${prog##*/}
  [[ -z $filter || $name == *"$filter"* ]] || continue
  run_one "$name" "$prog"
done

# tests/slurm last: they start a Slurm cluster (or print SKIP lines where they cannot).
for script in tests/cli/*.sh tests/mpi/*.sh tests/slurm/*.sh; do
  [[ -z $filter || $script == *"$filter"* ]] || continue
  run_one "$script" bash "$script" "$build"
done

if ((ran == 0)); then
  echo "no test programs found (looked in $build/tests, tests/cli, tests/mpi)" >&2
fi
((total_skip == 0)) || echo "# $total_skip skipped"
echo "logs in $logdir/"
echo "$total_pass passed, $total_fail failed$( ((total_skip == 0)) || echo ", $total_skip skipped")"
((total_fail == 0 && total_pass > 0))
