#!/usr/bin/env bash
# run.sh BUILD_DIR - runs the whole test suite (tests/run_all.sh) on a build made with
# `make BUILD=BUILD_DIR SAN=1` (AddressSanitizer + UndefinedBehaviorSanitizer), with the
# options of env.sh, and requires zero sanitizer reports: every report of every process
# (test programs, gflowvi on any number of ranks, the fuzz replays) lands as a file in
# BUILD_DIR/sanitizer-reports/, and any file there fails the run (its text is shown).
# The last line is "N passed, N failed" over the suite plus that one check.
set -euo pipefail

if (($# != 1)); then
  echo "usage: ${0##*/} BUILD_DIR   (a build made with make BUILD=BUILD_DIR SAN=1)" >&2
  exit 2
fi
build=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ $build == /* ]] || build=$PWD/$build
cd "$root"

if ! grep -qa __asan_init "$build/bin/gflowvi" 2>/dev/null; then
  echo "FAIL sanitizers: $build/bin/gflowvi is not built with AddressSanitizer (make BUILD=$build SAN=1)"
  echo "0 passed, 1 failed"
  exit 1
fi

reports=$build/sanitizer-reports
rm -rf "$reports"
# shellcheck source=tests/sanitizers/env.sh
source tests/sanitizers/env.sh "$reports"

log=$(mktemp "${TMPDIR:-/tmp}/gflowvi-san-suite.XXXXXX")
trap 'rm -f "$log"' EXIT
set +e
bash tests/run_all.sh "$build" | tee "$log"
status=${PIPESTATUS[0]}
set -e

npass=0 nfail=0
if [[ $(tail -n 1 "$log") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
  npass=${BASH_REMATCH[1]} nfail=${BASH_REMATCH[2]}
else
  nfail=1
fi
((status == 0)) || ((nfail > 0)) || nfail=1

shopt -s nullglob
files=("$reports"/*)
if ((${#files[@]} == 0)); then
  echo "PASS sanitizers: no AddressSanitizer, LeakSanitizer or UBSan report"
  npass=$((npass + 1))
else
  echo "FAIL sanitizers: ${#files[@]} report file(s) in $reports:"
  for f in "${files[@]}"; do
    echo "---- $f"
    head -n 40 "$f" | sed 's/^/    | /'
  done
  nfail=$((nfail + 1))
fi
echo "sanitizers: $npass passed, $nfail failed"
((nfail == 0))
