#!/usr/bin/env bash
# test_python.sh - the Python package (src/bindings/python/gflowvi, docs/python.md) with
# /usr/bin/python3, over this build's libgflowvi.so.  tests/python/fit_checks.py:
#  - a 2-D Gaussian written in NumPy: the fitted mixture's mean and covariance against the
#    closed form; the result's arrays; bad options raise GflowviError with the library's
#    message and status 2; a NaN density gives the library's error (status 4), a density
#    that raises gives status 3 naming the exception (kept as __cause__), wrong shapes
#    status 3; the process still fits afterwards;
#  - the program's gauss target written in NumPy gives the program's fit: the same output
#    files, mixture.csv and summary.json's numbers equal to 1e-9 (the two differ only in
#    the rounding of the density's arithmetic);
#  - with python3-mpi4py, 3 ranks under mpirun: every rank gets the 1-rank answer (1e-9)
#    and rank 0 writes the files;
#  - PyTorch autograd (gflowvi.torch_density), skipped where python3-torch is absent;
#  - the package installed by make install finds the installed library by itself.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if gfv_asan_build; then
  # The Python interpreter is not built with ASan, so it cannot load an ASan library.
  echo "SKIP python: $GFV_BUILD is a sanitizer build; the Python package is tested on the plain build"
  finish
fi
export GFLOWVI_LIBRARY=$GFV_BUILD/lib/libgflowvi.so.0
export PYTHONPATH=$GFV_ROOT/src/bindings/python
checks=$GFV_ROOT/tests/python/fit_checks.py
version=$(sed -n 's/^#define GFV_VERSION_STRING "\(.*\)"/\1/p' "$GFV_ROOT/include/gflowvi/version.h")

# run_checks NAME CMD... - runs CMD (which prints PASS/FAIL/SKIP lines); a crash or a
# silent failure is one FAIL.
run_checks() {
  local name=$1 status=0
  shift
  "$@" >"$GFV_TMP/$name.log" 2>&1 || status=$?
  grep -E '^(PASS|FAIL|SKIP|#) ' "$GFV_TMP/$name.log" || true
  GFV_PASSED=$((GFV_PASSED + $(grep -c '^PASS ' "$GFV_TMP/$name.log" || true)))
  GFV_FAILED=$((GFV_FAILED + $(grep -c '^FAIL ' "$GFV_TMP/$name.log" || true)))
  if ((status != 0)) && ! grep -q '^FAIL ' "$GFV_TMP/$name.log"; then
    fail "$name" "exit status $status: $(tail -n 5 "$GFV_TMP/$name.log" | tr '\n' ' ')"
  fi
}

run_checks basic "$GFV_PYTHON" "$checks" basic "$version"

py=$(tmpdir) cli=$(tmpdir)
run_checks same_as_cli "$GFV_PYTHON" "$checks" same_as_cli "$py"
"$GFV_BIN" --target=gauss --dim=2 --particles=6 --iters=200 --seed=3 --quiet --out="$cli" >/dev/null 2>&1 || true
[[ $(cd "$py" && ls) == "$(cd "$cli" && ls)" ]] && pass same_files_as_cli ||
  fail same_files_as_cli "python wrote: $(cd "$py" && ls | tr '\n' ' '); gflowvi: $(cd "$cli" && ls | tr '\n' ' ')"
"$GFV_PYTHON" - "$py" "$cli" <<'PY' && pass same_numbers_as_cli || fail same_numbers_as_cli "see above"
import json, sys
import numpy as np
a, b = (np.loadtxt(f"{d}/mixture.csv", delimiter=",", skiprows=1) for d in sys.argv[1:])
sa, sb = (json.load(open(f"{d}/summary.json")) for d in sys.argv[1:])
worst = max(np.abs(a - b).max(), *(abs(sa[k] - sb[k]) for k in ("elbo", "kl", "khat", "log_evidence")))
print(f"# python vs gflowvi: largest difference {worst:.2g}")
assert a.shape == b.shape and worst < 1e-9, worst
PY

if "$GFV_PYTHON" -c 'import mpi4py' 2>/dev/null; then
  mpiout=$(tmpdir)
  run_checks mpi "$GFV_ROOT/tools/mpirun.sh" 3 "$GFV_PYTHON" "$checks" mpi "$mpiout"
else
  echo "SKIP mpi: python3-mpi4py is not installed (tools/install-deps.sh installs it)"
fi

run_checks torch "$GFV_PYTHON" "$checks" torch

prefix=$(tmpdir)
if make -s -C "$GFV_ROOT" BUILD="$GFV_BUILD" install PREFIX="$prefix" >"$GFV_TMP/install.log" 2>&1; then
  got=$(env -u GFLOWVI_LIBRARY PYTHONPATH="$prefix/lib/python3/dist-packages" "$GFV_PYTHON" -c \
    'import gflowvi, gflowvi._lib as l; print(gflowvi.version(), l.lib._name)' 2>&1 || true)
  [[ $got == "$version $prefix/lib/python3/dist-packages/gflowvi/../../../libgflowvi.so.0" ]] &&
    pass installed_package || fail installed_package "got: $got"
else
  fail installed_package "make install: $(tail -n 3 "$GFV_TMP/install.log")"
fi
finish
