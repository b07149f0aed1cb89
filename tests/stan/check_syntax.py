"""check_syntax.py [STANC] - tests of tools/stan/stan_syntax.py, the rewriting of current Stan
syntax into Stan 2.21's (run by tests/cli/test_stan_syntax.sh; prints PASS/FAIL lines).

Crafted cases with their exact expected text; then every posteriordb model in
$GFV_POSTERIORDB (default tests/stan/posteriordb): no `array[` declaration left, the line
count kept, the rewrite idempotent, and -- with STANC, the path of the built stanc -- stanc
rejects the original and accepts the rewrite."""

import glob
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "stan"))
import stan_syntax  # noqa: E402

CASES = [
    ("scalar_array", "array[N] real y;", "real y[N];"),
    ("bounded", "array[J] real<lower=0> sigma; // sd", "real<lower=0> sigma[J]; // sd"),
    ("int_bounds_with_index", "array[N] int<lower=0, upper=K[1]> y;",
     "int<lower=0, upper=K[1]> y[N];"),
    ("2d_of_vectors_with_init", "array[N, M] vector<lower=0>[K] x = f(N);",
     "vector<lower=0>[K] x[N, M] = f(N);"),
    ("matrix_elements", "array[2] matrix[3, 4] A;", "matrix[3, 4] A[2];"),
    ("cholesky", "array[G] cholesky_factor_corr[3] L;", "cholesky_factor_corr[3] L[G];"),
    ("offset_multiplier", "array[J] real<offset=mu, multiplier=tau> theta;",
     "real<offset=mu, multiplier=tau> theta[J];"),
    ("expression_dims", "array[size(x) - 1] int idx;", "int idx[size(x) - 1];"),
    ("local_declaration", "{\n  array[3] real tmp;\n  tmp[1] = 0;\n}",
     "{\n  real tmp[3];\n  tmp[1] = 0;\n}"),
    ("function_arguments", "real f(data array[,] int x, array[] vector v, array[] real w) {",
     "real f(data int[,] x, vector[] v, real[] w) {"),
    ("return_type", "array[] real g(array[] real x);", "real[] g(real[] x);"),
    ("return_type_2d", "array[,] matrix h(int n) {", "matrix[,] h(int n) {"),
    ("newlines_kept", "array[2]\n  real\n  y;", "real\n  y[2]\n;"),
    ("comment_untouched", "// array[N] real y;\n/* array[N] int z; */ x = 1;",
     "// array[N] real y;\n/* array[N] int z; */ x = 1;"),
    ("string_untouched", 'print("array[N] real y");', 'print("array[N] real y");'),
    ("variable_named_array", "int array[3]; array[1] = 2;", "int array[3]; array[1] = 2;"),
    ("old_syntax_passes", "real y[N];\nvector[K] x[N, M];", "real y[N];\nvector[K] x[N, M];"),
    ("lupdf", "target += normal_lupdf(y | 0, 1) + poisson_lupmf(n | 3);",
     "target += normal_lpdf(y | 0, 1) + poisson_lpmf(n | 3);"),
    ("integer_division", "int h = n %/% 2;", "int h = n / 2;"),
    ("two_declarations", "array[N] real a;\narray[M] int b;", "real a[N];\nint b[M];"),
]

passed = failed = 0


def check(name, ok, why=""):
    global passed, failed
    if ok:
        print("PASS syntax_%s" % name)
        passed += 1
    else:
        print("FAIL syntax_%s: %s" % (name, why))
        failed += 1


for name, src, want in CASES:
    got = stan_syntax.translate(src)
    check(name, got == want, "%r -> %r, expected %r" % (src, got, want))
    check(name + "_idempotent", stan_syntax.translate(got) == got, repr(stan_syntax.translate(got)))

try:
    stan_syntax.translate("array[N real y;")
    check("unbalanced_rejected", False, "no error for 'array[N real y;'")
except stan_syntax.SyntaxTranslationError as e:
    check("unbalanced_rejected", "unbalanced" in str(e), str(e))


def stanc_ok(stanc, text, tmp):
    path = os.path.join(tmp, "m.stan")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([stanc, "--o=" + os.path.join(tmp, "m.cpp"), path],
                       capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip().replace("\n", " ")[:300]


stanc = sys.argv[1] if len(sys.argv) > 1 else ""
pdb = os.environ.get("GFV_POSTERIORDB", os.path.join(os.path.dirname(os.path.abspath(__file__)), "posteriordb"))
models = sorted(glob.glob(os.path.join(pdb, "*", "model.stan")))
check("posteriordb_models_found", len(models) >= 4, "%d model.stan in %s" % (len(models), pdb))
with tempfile.TemporaryDirectory() as tmp:
    for m in models:
        name = os.path.basename(os.path.dirname(m))
        with open(m) as f:
            src = f.read()
        got = stan_syntax.translate(src)
        code = "".join(t for k, t in stan_syntax.tokenize(got) if k not in ("comment", "string"))
        check(name + "_no_array_left", "array[" not in code.replace(" ", ""), "array[ left")
        check(name + "_lines_kept", got.count("\n") == src.count("\n"),
              "%d lines -> %d" % (src.count("\n"), got.count("\n")))
        check(name + "_idempotent", stan_syntax.translate(got) == got)
        if stanc:
            ok, msg = stanc_ok(stanc, got, tmp)
            check(name + "_stanc_accepts", ok, msg)
            if "array[" in src:
                ok, msg = stanc_ok(stanc, src, tmp)
                check(name + "_stanc_rejects_original", not ok, "stanc 2.21 accepted array syntax")

# The eight schools declarations, spelled out.
es = os.path.join(pdb, "eight_schools-eight_schools_noncentered", "model.stan")
if os.path.isfile(es):
    with open(es) as f:
        got = stan_syntax.translate(f.read()).splitlines()
    check("eight_schools_lines", got[2:4] == ["  real y[J]; // estimated treatment",
                                              "  real<lower=0> sigma[J]; // std of estimated effect"],
          repr(got[2:4]))

print("# %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
