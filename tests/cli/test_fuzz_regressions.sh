#!/usr/bin/env bash
# test_fuzz_regressions.sh - replays, for every fuzz harness of tests/fuzz, its committed
# seed corpus (tests/fuzz/corpus/NAME) and every input a fuzzer once broke
# (tests/fuzz/regressions/NAME), through the replay build of the harness
# (BUILD/fuzz/NAME, tests/fuzz/replay_main.c): no crash, no failed FUZZ_ASSERT, and in the
# SAN=1 build no sanitizer report.  The fuzzing itself is tools/fuzz.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

shopt -s nullglob
found=0
for src in "$GFV_ROOT"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  bin=$GFV_BUILD/fuzz/$name
  found=1
  if [[ ! -x $bin ]]; then
    fail "replay-$name" "$bin is not built (make all builds it)"
    continue
  fi
  for kind in corpus regressions; do
    dir=$GFV_ROOT/tests/fuzz/$kind/$name
    files=("$dir"/*)
    if ((${#files[@]} == 0)); then
      [[ $kind == regressions ]] && continue
      fail "replay-$name-$kind" "no inputs in $dir"
      continue
    fi
    log=$GFV_TMP/$name.$kind.log
    status=0
    OPENBLAS_NUM_THREADS=1 "$bin" "$dir" >"$log" 2>&1 || status=$?
    if ((status == 0)) && grep -q "^ok ${#files[@]} inputs" "$log"; then
      pass "replay-$name-$kind (${#files[@]} inputs)"
    else
      fail "replay-$name-$kind" "exit status $status; $(grep -E 'replay: |fuzz: |ERROR|runtime error' "$log" | tail -n 3 | tr '\n' ' ')"
    fi
  done
done
((found)) || fail replay "no harness in tests/fuzz"
finish
