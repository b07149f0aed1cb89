#!/usr/bin/env bash
# test_valgrind.sh - a short 2-rank run (6 iterations, the weight flow, two checkpoints,
# every output file) with each rank under valgrind memcheck: no invalid access, no use
# of uninitialised memory, no definite or possible leak, in gflowvi's code.  Open MPI's
# own reports are suppressed by tests/sanitizers/valgrind-mpi.supp (a reason per entry).
# The SAN=1 build cannot run under valgrind (ASan owns the address space): there this
# test prints a SKIP line; tools/check.sh runs it on the plain build.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if ! command -v valgrind >/dev/null; then
  echo "SKIP valgrind: valgrind is not installed (tools/install-deps.sh installs it)"
  finish
fi
if gfv_asan_build; then
  echo "SKIP valgrind: $GFV_BIN is built with AddressSanitizer, which valgrind cannot run" \
    "(the plain build runs this test)"
  finish
fi

logs=$(tmpdir)
out=$(tmpdir)
status=0
# tools/mpirun.sh itself (gfv_mpirun would put gflowvi first): valgrind is the program.
"$GFV_ROOT/tools/mpirun.sh" 2 valgrind --tool=memcheck --log-file="$logs/vg.%p.log" --error-exitcode=99 \
  --leak-check=full --show-leak-kinds=definite,possible --errors-for-leak-kinds=definite,possible \
  --num-callers=40 --suppressions="$GFV_ROOT/tests/sanitizers/valgrind-mpi.supp" \
  "$GFV_BIN" --target=gmm4 --particles=4 --samples=5 --iters=6 --weight-step=0.05 \
  --checkpoint-every=3 --eval-samples=1000 --out-samples=100 --quiet --out="$out" \
  >"$logs/run.out" 2>&1 </dev/null || status=$?
shopt -s nullglob
vglogs=("$logs"/vg.*.log)
if ((status != 0)); then
  fail valgrind-run "exit status $status: $(_gfv_head "$logs/run.out")"
elif ((${#vglogs[@]} != 2)); then
  fail valgrind-run "expected 2 valgrind logs (one per rank), found ${#vglogs[@]}"
else
  pass valgrind-run
fi
# (To find where an uninitialised value comes from, add --track-origins=yes: slower.)
i=0
for log in "${vglogs[@]}"; do
  i=$((i + 1))
  name=valgrind-memcheck-process$i
  summary=$(grep 'ERROR SUMMARY' "$log" | tail -n 1 || true)
  if [[ $summary == *"ERROR SUMMARY: 0 errors"* ]]; then
    pass "$name (${summary#*ERROR SUMMARY: })"
  else
    fail "$name" "${summary:-no ERROR SUMMARY line}; first report: $(grep -m1 -A8 -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|[0-9,]+ bytes in)' "$log" | tr -s ' \n' ' ' | head -c 600)"
  fi
done
if [[ -s $out/summary.json && -s $out/mixture.csv && -s $out/checkpoint.h5 ]]; then
  pass valgrind-outputs-written
else
  fail valgrind-outputs-written "missing outputs in $out: $(ls -A "$out" | tr '\n' ' ')"
fi
finish
