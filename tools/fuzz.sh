#!/usr/bin/env bash
# fuzz.sh [SECONDS] - builds the libFuzzer harnesses of tests/fuzz (make fuzz: clang,
# ASan + UBSan + libFuzzer) and runs each for SECONDS (default $GFV_FUZZ_SECONDS, else
# 25), starting from a copy of its committed seed corpus tests/fuzz/corpus/NAME (and its
# regression inputs), two at a time.  Prints one PASS/FAIL line per harness with its
# number of executions, and last "fuzz: N passed, N failed".  Exit status 0 only when no
# harness found anything.
#
# A crash, leak, timeout or failed FUZZ_ASSERT leaves the input in
# build-fuzz/artifacts/NAME-*: fix the bug, then commit the input under
# tests/fuzz/regressions/NAME/ so that the normal suite replays it for good
# (tests/cli/test_fuzz_regressions.sh).  The corpus grown during the run stays in
# build-fuzz/corpus/NAME (not committed; merge new seeds by hand with -merge=1 if useful).
#
# Environment: GFV_FUZZ_SECONDS  seconds per harness (default 25)
#              GFV_FUZZ_JOBS     harnesses run at once (default 2)
#              GFV_FUZZ_FILTER   only harnesses whose name contains this string
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${1:-${GFV_FUZZ_SECONDS:-25}}
jobs=${GFV_FUZZ_JOBS:-2}
filter=${GFV_FUZZ_FILTER:-}
[[ $secs =~ ^[1-9][0-9]*$ ]] || { echo "usage: ${0##*/} [SECONDS]" >&2; exit 2; }

out=build-fuzz
mkdir -p "$out"
if ! make fuzz >"$out/make.log" 2>&1; then
  echo "FAIL fuzz-build: make fuzz failed; last lines of $out/make.log:"
  tail -n 20 "$out/make.log" | sed 's/^/    | /'
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi

# libFuzzer checks for leaks after each input that allocated (ASan's detect_leaks); UBSan
# stops at its first report, which libFuzzer then saves as a crash.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export OPENBLAS_NUM_THREADS=1

# run_one NAME - fuzzes one harness; writes its PASS/FAIL line to $out/NAME.result.
run_one() {
  local name=$1 corpus=$out/corpus/$1 log=$out/$1.log
  rm -rf "$corpus" "$out/artifacts/$name-"*
  mkdir -p "$corpus" "$out/artifacts"
  cp tests/fuzz/corpus/"$name"/* "$corpus"/
  # Past crashes (fixed) seed the search too: bugs cluster.
  cp tests/fuzz/regressions/"$name"/* "$corpus"/ 2>/dev/null || true
  local seeds status=0
  seeds=$(find "$corpus" -type f | wc -l)
  # -timeout: one input taking more than 10 s is a hang; -max_len bounds input size so
  # the run explores structure rather than size; -rss_limit_mb catches runaway memory.
  timeout --kill-after=30 $((secs + 120)) "$out/fuzz/$name" -max_total_time="$secs" \
    -timeout=10 -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$name-" "$corpus" >"$log" 2>&1 </dev/null || status=$?
  local runs t ncorpus
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  t=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  ncorpus=$(find "$corpus" -type f | wc -l)
  if ((status == 0)) && [[ -n $runs ]]; then
    echo "PASS $name: $runs executions in ${t:-$secs} s (corpus $seeds -> $ncorpus inputs)" \
      >"$out/$name.result"
  else
    {
      echo "FAIL $name: exit status $status after ${runs:-?} executions;" \
        "input(s): $(ls "$out/artifacts/$name-"* 2>/dev/null | tr '\n' ' ')"
      grep -E 'ERROR|SUMMARY|fuzz: |runtime error' "$log" | head -n 8 | sed 's/^/    | /'
    } >"$out/$name.result"
  fi
}

rm -f "$out"/*.result
names=()
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  [[ -z $filter || $name == *"$filter"* ]] || continue
  names+=("$name")
done

# Two at a time: one harness per core on the 2-core CI machine.
running=0
for name in "${names[@]}"; do
  run_one "$name" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

npass=0 nfail=0
for name in "${names[@]}"; do
  if [[ -f $out/$name.result ]]; then
    cat "$out/$name.result"
    if grep -q '^PASS ' "$out/$name.result"; then npass=$((npass + 1)); else nfail=$((nfail + 1)); fi
  else
    echo "FAIL $name: no result (see $out/$name.log)"
    nfail=$((nfail + 1))
  fi
done
echo "fuzz: $npass passed, $nfail failed"
((nfail == 0 && npass > 0))
