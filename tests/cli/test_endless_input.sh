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

# capped NAME STATUS FRAGMENT ARGS... - runs gflowvi on one rank under ulimit -v.
capped() {
  local name=$1 want=$2 frag=$3
  shift 3
  local out err status=0
  out=$(tmpdir)/out
  err=$GFV_TMP/$name.err
  (ulimit -v 3000000 && exec timeout -k 10 120 "$GFV_BIN" --iters=3 --eval-samples=1000 \
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
