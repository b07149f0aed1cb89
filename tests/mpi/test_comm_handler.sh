#!/usr/bin/env bash
# test_comm_handler.sh - gflowvi on the caller's MPI communicator (include/gflowvi/
# comm_mpi.h) leaves the caller's error handlers as they were, at 1 and 3 ranks: the
# checks are in tests/mpi/comm_handler.c (built by make as BUILD/tests/mpi/comm_handler);
# its PASS/FAIL lines get a -npN suffix here.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

prog=$GFV_BUILD/tests/mpi/comm_handler
if [[ ! -x $prog ]]; then
  fail comm-handler-built "$prog missing (make all builds it)"
  finish
fi
for np in 1 3; do
  set +e
  log=$(timeout 120 "$GFV_ROOT/tools/mpirun.sh" "$np" "$prog" 2>&1)
  rc=$?
  set -e
  lines=$(grep -E '^(PASS|FAIL) ' <<<"$log" || true)
  if [[ -z $lines ]]; then
    fail "comm-handler-np$np" "exit $rc, no result: $(tail -5 <<<"$log")"
    continue
  fi
  while read -r verdict name rest; do
    name=${name%:}
    if [[ $verdict == PASS ]]; then pass "$name-np$np"; else fail "$name-np$np" "$rest"; fi
  done <<<"$lines"
  [[ $rc == 0 ]] || fail "comm-handler-exit-np$np" "exit $rc"
done
finish
