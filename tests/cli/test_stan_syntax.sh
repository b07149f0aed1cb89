#!/usr/bin/env bash
# test_stan_syntax.sh - the rewriting of current Stan syntax (array[N] real y) into the Stan
# 2.21 syntax Debian's stanc parses (tools/stan/stan_syntax.py): crafted cases with their
# exact expected text, and every posteriordb model (no array declaration left, line numbers
# kept, idempotent; stanc rejects the original and accepts the rewrite).  The checks
# themselves are in tests/stan/check_syntax.py.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$GFV_ROOT/tests/stan/lib_stan.sh"

stan_setup
"$GFV_PYTHON" "$GFV_ROOT/tests/stan/check_syntax.py" "$STANC"
