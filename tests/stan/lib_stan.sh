# shellcheck shell=bash
# lib_stan.sh - what the Stan tests (tests/cli/test_stan*.sh) share; source after tests/lib.sh.
#
# stan_setup: SKIPs the whole script (exit 0) where Debian's r-cran-stanheaders is not
# installed (tools/install-deps.sh installs it; CI has it), else builds or finds stanc
# (tools/stan/gflowvi-stan stanc: a few CPU-minutes the first time on a machine, then
# cached; tools/check.sh builds it before the suite) and sets STANC and STAN_TOOL.
# The models are compiled into the user's cache ($GFV_STAN_CACHE or ~/.cache/gflowvi/stan),
# as gflowvi itself does, so the suite's second stage (the sanitizer build) and later runs
# reuse them; test_stan_cache.sh works in caches of its own.

STAN_TOOL=$GFV_ROOT/tools/stan/gflowvi-stan
PDB=${GFV_POSTERIORDB:-$GFV_ROOT/tests/stan/posteriordb}

stan_setup() {
  local err=$GFV_TMP/stanc.err
  if ! STANC=$("$STAN_TOOL" stanc 2>"$err"); then
    if grep -q "not found" "$err"; then
      echo "SKIP stan: $(tr '\n' ' ' <"$err" | head -c 300)"
      finish
    fi
    fail stanc-build "$(tr '\n' ' ' <"$err" | head -c 300)"
    finish
  fi
  export STANC STAN_TOOL
}

# stan_skip_under_sanitizers WHY - in the suite's sanitizer stage (tests/sanitizers/run.sh,
# which exports GFV_SAN_REPORTS), prints a SKIP line and ends the script.  For the Stan tests
# whose subject is not memory safety of gflowvi's own code (the compilation cache, the
# accuracy of long fits): under ASan they would only recompile models (30 CPU-s each) and
# repeat minutes of fits that the plain stage has just run.  test_stan.sh and
# test_stan_outputs.sh do run there: they load cached models into the instrumented program.
stan_skip_under_sanitizers() {
  if [[ -n ${GFV_SAN_REPORTS:-} ]]; then
    echo "SKIP $(basename "$0" .sh): not in the sanitizer stage ($1)"
    finish
  fi
}

# unzip_json ZIP OUT - the single member of a posteriordb .json.zip, written to OUT.
unzip_json() {
  "$GFV_PYTHON" - "$1" "$2" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    open(sys.argv[2], "wb").write(z.read(z.namelist()[0]))
EOF
}
