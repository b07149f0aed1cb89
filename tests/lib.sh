# shellcheck shell=bash
# lib.sh - helpers for the shell tests in tests/cli and tests/mpi.  Source it:
#
#   #!/usr/bin/env bash
#   set -euo pipefail
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#   out=$(tmpdir)
#   gfv_mpirun 2 --target=gmm4 --iters=10 --out="$out" >/dev/null && pass runs || fail runs "exit $?"
#   expect_fail bad_flow 2 "--flow" gfv_mpirun 1 --flow=nope --out="$out"
#   [[ $(json_get "$out/summary.json" dim) == 2 ]] && pass dim || fail dim "dim != 2"
#   finish
#
# Output follows tests/run_all.sh's protocol: one "PASS name" or "FAIL name: why" line per
# check.  Variables set here: GFV_ROOT (repo root), GFV_BUILD (build dir: $GFV_BUILD from
# run_all.sh, else the script's $1, else build), GFV_BIN (the gflowvi binary), GFV_TMP (a
# scratch directory removed on exit; GFV_KEEP_TMP=1 keeps it for debugging).

GFV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# When sourced without arguments, "$1" here is the sourcing script's $1: the BUILD_DIR
# that run_all.sh passes.  Absolute, so it stays valid after a test cd's elsewhere.
GFV_BUILD=${GFV_BUILD:-${1:-build}}
[[ $GFV_BUILD == /* ]] || GFV_BUILD=$GFV_ROOT/$GFV_BUILD
GFV_BIN=$GFV_BUILD/bin/gflowvi
# The system Python: the python3 first on PATH may be a build without NumPy.
GFV_PYTHON=/usr/bin/python3
export GFV_ROOT GFV_BUILD GFV_BIN GFV_PYTHON

GFV_PASSED=0
GFV_FAILED=0

# pass NAME - records a passed check.
pass() {
  echo "PASS $1"
  GFV_PASSED=$((GFV_PASSED + 1))
}

# fail NAME MSG - records a failed check; returns 0 so `cmd && pass x || fail x ...` and
# set -e scripts carry on to the next check.
fail() {
  echo "FAIL $1: ${2:-failed}"
  GFV_FAILED=$((GFV_FAILED + 1))
}

# finish - ends the script: exit status 1 when any check failed (run_all.sh counts the
# lines either way; the status matters when a script is run by hand).
finish() {
  echo "# $GFV_PASSED passed, $GFV_FAILED failed"
  exit $((GFV_FAILED > 0))
}

# One scratch directory per script, created now and removed however the script ends, so
# tmpdir works inside $(...) (a trap set in that subshell would fire too early).
GFV_TMP=$(mktemp -d "${TMPDIR:-/tmp}/gflowvi-test.XXXXXX")
export GFV_TMP
_gfv_cleanup() {
  if [[ ${GFV_KEEP_TMP:-0} == 1 ]]; then
    echo "# kept $GFV_TMP" >&2
  else
    rm -rf "$GFV_TMP"
  fi
}
trap _gfv_cleanup EXIT

# tmpdir - prints a new empty directory under GFV_TMP (removed at exit).
tmpdir() {
  mktemp -d "$GFV_TMP/d.XXXXXX"
}

# gfv_mpirun NP ARGS... - runs the built gflowvi on NP ranks via tools/mpirun.sh, which
# knows the root/oversubscribe/container settings.
gfv_mpirun() {
  local np=$1
  shift
  "$GFV_ROOT/tools/mpirun.sh" "$np" "$GFV_BIN" "$@"
}

# expect_refused NAME STATUS FRAGMENT ARGS... - runs gflowvi with ARGS at 1 and 3 ranks
# (a run that is not refused stops after 60 s) and passes NAME-np1 / NAME-np3 when each
# exits with STATUS, stderr holds FRAGMENT and exactly one "gflowvi: error:" line, and the
# --out folder that ARGS name (give one) holds no file.  GFV_REFUSED_BEFORE_OUT=1 also
# requires that the folder was not created at all (the check came before the preflight).
expect_refused() {
  local name=$1 status=$2 frag=$3
  shift 3
  local np out="" arg err code lines
  for arg in "$@"; do
    [[ $arg == --out=* ]] && out=${arg#--out=}
  done
  for np in 1 3; do
    err=$GFV_TMP/$name.$np.err
    rm -rf "${out:?expect_refused needs --out=DIR}"
    code=0
    timeout 60 "$GFV_ROOT/tools/mpirun.sh" "$np" "$GFV_BIN" "$@" >/dev/null 2>"$err" </dev/null ||
      code=$?
    lines=$(grep -c '^gflowvi: error:' "$err" || true)
    if ((code != status)); then
      fail "$name-np$np" "exit status $code, expected $status: $(_gfv_head "$err")"
    elif ! grep -qF -- "$frag" "$err"; then
      fail "$name-np$np" "stderr lacks '$frag': $(_gfv_head "$err")"
    elif ((lines != 1)); then
      fail "$name-np$np" "$lines error lines, expected exactly one"
    elif [[ ${GFV_REFUSED_BEFORE_OUT:-0} == 1 && -e $out ]]; then
      fail "$name-np$np" "--out was created: the check came after the preflight"
    elif [[ -e $out && -n $(ls -A "$out") ]]; then
      fail "$name-np$np" "output left behind: $(ls -A "$out" | tr '\n' ' ')"
    else
      pass "$name-np$np"
    fi
  done
}

# expect_fail NAME EXPECTED_STATUS MESSAGE_FRAGMENT CMD... - runs CMD and passes when it
# exits with EXPECTED_STATUS and its stderr contains MESSAGE_FRAGMENT (plain text, not a
# pattern).  On failure shows the status and the start of stderr.
expect_fail() {
  local name=$1 want=$2 frag=$3
  shift 3
  local err status=0
  err=$(mktemp "$GFV_TMP/stderr.XXXXXX")
  "$@" >/dev/null 2>"$err" </dev/null || status=$?
  if ((status != want)); then
    fail "$name" "expected exit status $want, got $status; stderr: $(_gfv_head "$err")"
  elif ! grep -qF -- "$frag" "$err"; then
    fail "$name" "stderr lacks '$frag'; stderr: $(_gfv_head "$err")"
  else
    pass "$name"
  fi
}

# expect_ok NAME CMD... - runs CMD and passes when it exits 0; else shows stderr's start.
expect_ok() {
  local name=$1
  shift
  local err status=0
  err=$(mktemp "$GFV_TMP/stderr.XXXXXX")
  "$@" >/dev/null 2>"$err" </dev/null || status=$?
  if ((status == 0)); then
    pass "$name"
  else
    fail "$name" "exit status $status; stderr: $(_gfv_head "$err")"
  fi
}

# py_check NAME ARGS... - runs the Python program on stdin (the system Python) with ARGS;
# passes when it exits 0 (printing what it printed), else fails with its last line (an
# assertion's message).
py_check() {
  local name=$1 msg status=0
  shift
  msg=$("$GFV_PYTHON" - "$@" 2>&1) || status=$?
  if ((status == 0)); then
    [[ -z $msg ]] || echo "$msg"
    pass "$name"
  else
    fail "$name" "$(echo "$msg" | tail -n 1)"
  fi
}

# The start of a file on one line, so a FAIL message stays a single line; drops the
# "-----" rulers of mpirun's banners so the program's own message shows.
_gfv_head() {
  grep -v -- '^---*$' "$1" | tr -s ' \n' '  ' | head -c 300 | sed 's/ *$//' || true
}

# json_get FILE KEY - prints a top-level value of a JSON file: strings bare, numbers as
# written by Python (repr, round-trips), true/false/null as in JSON, objects and arrays
# as compact JSON.  Fails (status 1, message on stderr) for a missing file or key.
# True when the build under test is the AddressSanitizer one (make SAN=1, the suite's second
# stage): tests that cannot run under it (valgrind, address-space limits, an uninstrumented
# Python loading the library, SMPI) skip, and test_install expects its MPI wrappers.
gfv_asan_build() {
  grep -qa __asan_init "$GFV_BIN" 2>/dev/null
}

json_get() {
  "$GFV_PYTHON" - "$1" "$2" <<'EOF'
import json, sys
path, key = sys.argv[1], sys.argv[2]
try:
    with open(path) as f:
        doc = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"json_get: {path}: {e}")
if not isinstance(doc, dict) or key not in doc:
    sys.exit(f"json_get: {path}: no top-level key '{key}'")
v = doc[key]
if isinstance(v, str):
    print(v)
elif isinstance(v, (dict, list, bool)) or v is None:
    print(json.dumps(v, separators=(",", ":")))
else:
    print(repr(v))
EOF
}
