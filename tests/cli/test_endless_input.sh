#!/usr/bin/env bash
# test_endless_input.sh - an input that never ends a line: /dev/zero given as each text input
# (--config, --data, --test-data, --target=gmm:FILE, --init=FILE, --predict).  Every reader
# refuses a NUL byte, but getline looked for a newline first, so it grew its buffer until the
# OOM killer ended the run (SIGKILL, no message).  Each must stop at once with status 3 and
# one line "FILE:1: contains a NUL byte".  The runs are capped at 3 GB of address space
# (ulimit -v), so that the old behaviour fails here with ENOMEM instead of eating the
# machine's memory; a normal small run fits in that (the control).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

data=$(tmpdir)
printf 'a,b,y\n1,2,1\n3,4,0\n2,2,1\n0,1,0\n' >"$data/train.csv"
printf 'a,b\n1,2\n' >"$data/predict.csv"

# The 3 GB cap: ulimit -v, except in the sanitizer build, whose AddressSanitizer reserves
# terabytes of address space up front (any ulimit -v kills it at start); there ASan's
# malloc_limit_mb makes any one allocation above 3 GB fail (a report, and the test fails),
# which a buffer that doubles reaches soon after 3 GB.  (hard_rss_limit_mb would do it by a
# background thread, whose own TLS LeakSanitizer then reports.)
cap() {
  if gfv_asan_build; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}malloc_limit_mb=3000"
  else
    ulimit -v 3000000
  fi
}

# capped NAME STATUS FRAGMENT ARGS... - runs gflowvi on one rank under the 3 GB cap.
capped() {
  local name=$1 want=$2 frag=$3
  shift 3
  local out err status=0
  out=$(tmpdir)/out
  err=$GFV_TMP/$name.err
  (cap && exec timeout -k 10 120 "$GFV_BIN" --iters=3 --eval-samples=1000 \
    --out-samples=10 --quiet --out="$out" "$@") >/dev/null 2>"$err" </dev/null || status=$?
  if ((status != want)); then
    fail "$name" "exit status $status, expected $want: $(_gfv_head "$err")"
  elif [[ -n $frag ]] && { [[ $(grep -c '^gflowvi: error:' "$err" || true) != 1 ]] ||
    ! grep -qF -- "$frag" "$err"; }; then
    fail "$name" "not one error line with '$frag': $(_gfv_head "$err")"
  elif [[ -n $(ls -A "$out" 2>/dev/null) && $want != 0 ]]; then
    fail "$name" "left in --out: $(ls -A "$out" | tr '\n' ' ')"
  else
    pass "$name"
  fi
}

nul="/dev/zero:1: contains a NUL byte"
capped control 0 "" --target=logreg --data="$data/train.csv"
capped config 3 "$nul" --config=/dev/zero
capped data 3 "$nul" --target=logreg --data=/dev/zero
capped test-data 3 "$nul" --target=logreg --data="$data/train.csv" --test-data=/dev/zero
capped gmm-file 3 "$nul" --target=gmm:/dev/zero
capped init-file 3 "$nul" --init=/dev/zero
capped predict 3 "$nul" --target=logreg --data="$data/train.csv" --predict=/dev/zero
finish
