#!/usr/bin/env bash
# check.sh - THE test command: installs what is missing, builds everything, runs the
# whole suite.  Exit status is the suite's: 0 only when every test passed.
#
#   bash tools/check.sh
#
# Make variables pass through the environment (e.g. OPT=-O0 bash tools/check.sh), and
# GFV_TEST_TIMEOUT / GFV_TEST_FILTER reach tests/run_all.sh (both suite runs),
# GFV_FUZZ_SECONDS / GFV_FUZZ_JOBS reach tools/fuzz.sh.
set -euo pipefail

# Work from the repo root whatever the caller's cwd: the Makefile and tests use
# repo-relative paths.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/install-deps.sh --tests
# -j2: parallel enough to help on small CI boxes without oversubscribing them.
# WERROR=1: a compiler warning fails CI.
make -j2 WERROR=1 all
# The Stan compiler and plugin shim for --target=stan (once per machine: they are cached,
# like the models the tests compile, in ~/.cache/gflowvi/stan; both suite stages use them).
make stan STAN_JOBS=2
# The simulated cluster's build, once per run (build-smpi/; tests/mpi/test_smpi.sh uses it).
make -j2 WERROR=1 smpi

# Three stages (docs/developer.md, "Reliability"), each run even when an earlier one failed; each
# ends with its own "N passed, N failed", and the last line adds them up:
#   1. the whole suite on the plain build (includes valgrind, the faults, the catalogue);
#   2. the whole suite again built with ASan + UBSan, with zero sanitizer reports;
#   3. every libFuzzer harness for GFV_FUZZ_SECONDS (default 25) from its seed corpus.
# GFV_CHECK_QUICK=1 runs stage 1 only.
total_pass=0 total_fail=0 total_skip=0
stage() {
  local log st
  log=$(mktemp "${TMPDIR:-/tmp}/gflowvi-check.XXXXXX")
  set +e
  "$@" 2>&1 | tee "$log"
  st=${PIPESTATUS[0]}
  set -e
  local line
  line=$(grep -E '^([a-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
  rm -f "$log"
  if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
    total_pass=$((total_pass + BASH_REMATCH[1]))
    total_fail=$((total_fail + BASH_REMATCH[2]))
    total_skip=$((total_skip + ${BASH_REMATCH[4]:-0}))
  fi
  # A stage that failed without counting the failure still fails the check.
  if ((st != 0)) && [[ ! $line =~ [1-9][0-9]*\ failed ]]; then
    echo "FAIL ${*}: exit status $st"
    total_fail=$((total_fail + 1))
  fi
}

stage bash tests/run_all.sh build
if [[ ${GFV_CHECK_QUICK:-0} != 1 ]]; then
  echo "== sanitizers: the suite built with -fsanitize=address,undefined (build-asan/)"
  mkdir -p build-asan
  if make -j2 WERROR=1 BUILD=build-asan SAN=1 all >build-asan/make.log 2>&1; then
    stage bash tests/sanitizers/run.sh build-asan
  else
    echo "FAIL sanitizer-build: make BUILD=build-asan SAN=1 failed; last lines of build-asan/make.log:"
    tail -n 20 build-asan/make.log | sed 's/^/    | /'
    total_fail=$((total_fail + 1))
  fi
  echo "== fuzzing: tools/fuzz.sh (${GFV_FUZZ_SECONDS:-25} s per harness, two at a time)"
  stage bash tools/fuzz.sh
fi
echo "total: $total_pass passed, $total_fail failed$( ((total_skip == 0)) || echo ", $total_skip skipped")"
((total_fail == 0 && total_pass > 0))
