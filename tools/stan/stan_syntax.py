"""stan_syntax.py - current Stan syntax rewritten into the Stan 2.21 syntax that the stanc2
compiler of Debian's r-cran-stanheaders parses.

Stan 2.26 introduced `array[dims] T name` for arrays and 2.33 removed the old form
`T name[dims]`; posteriordb's models and most Stan code in use now are written the new way,
which stanc 2.21 rejects.  translate() rewrites, outside comments and string literals:

  array[N] real y;                      ->  real y[N];
  array[N, M] vector<lower=0>[K] x = e; ->  vector<lower=0>[K] x[N, M] = e;
  array[] real x      (function argument, unsized)  ->  real[] x
  data array[,] int x                   ->  data int[,] x
  array[] real f(...)  (return type)    ->  real[] f(...)
  foo_lupdf( / foo_lupmf(               ->  foo_lpdf( / foo_lpmf(
  a %/% b                               ->  a / b        (integer division in 2.21)

`_lupdf` keeps the normalising constants in 2.21; gflowvi evaluates Stan models with all
constants anyway (propto = false), so the two spellings give the same density there.

Line numbers are kept (a rewritten declaration keeps every newline it spanned), so stanc's
messages point at the user's own lines; columns can shift within a rewritten declaration.
Text that is not one of these forms passes through unchanged, including code already in the
old syntax; `array` followed by `[` is rewritten only when an element type follows the
brackets, so a variable that happens to be named `array` is left alone.
"""

import re

ELEMENT_TYPES = {
    "int", "real", "complex", "vector", "row_vector", "matrix", "simplex", "ordered",
    "positive_ordered", "unit_vector", "cholesky_factor_corr", "cholesky_factor_cov",
    "corr_matrix", "cov_matrix",
}

_TOKEN = re.compile(r"""
    (?P<comment>//[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<ws>\s+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<op>%/%|.)
""", re.VERBOSE | re.DOTALL)


class SyntaxTranslationError(ValueError):
    """Raised for an `array[...]` declaration that cannot be rewritten (unbalanced brackets)."""


def tokenize(text):
    """(kind, text) pairs covering text exactly."""
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m.lastgroup == "comment" and m.group().startswith("/*") and not m.group().endswith("*/"):
            raise SyntaxTranslationError("unterminated /* comment")
        out.append((m.lastgroup, m.group()))
        pos = m.end()
    return out


def _skip_ws(toks, i):
    while i < len(toks) and toks[i][0] in ("ws", "comment"):
        i += 1
    return i


def _balanced(toks, i, open_, close):
    """toks[i] is open_: the index just past its matching close (tracking (), [] and <>
    only for the bracket pair asked for, and () [] inside <...>)."""
    depth = 0
    inner = 0  # () and [] nesting inside <...>, where '>' does not close
    j = i
    while j < len(toks):
        kind, t = toks[j]
        if kind == "op":
            if open_ == "<" and t in "([":
                inner += 1
            elif open_ == "<" and t in ")]":
                inner -= 1
            elif t == open_ and inner == 0:
                depth += 1
            elif t == close and inner == 0:
                depth -= 1
                if depth == 0:
                    return j + 1
        j += 1
    raise SyntaxTranslationError("unbalanced '%s' in an array declaration" % open_)


def _text(toks, a, b):
    return "".join(t for _, t in toks[a:b])


def _newlines(s):
    return "\n" * s.count("\n")


def _rewrite_array(toks, i):
    """toks[i] is `array` followed by `[`: returns (replacement text, index past the consumed
    tokens), or None when this is not an array type."""
    lb = _skip_ws(toks, i + 1)
    rb = _balanced(toks, lb, "[", "]")
    dims = _text(toks, lb + 1, rb - 1)
    j = _skip_ws(toks, rb)
    if j >= len(toks) or toks[j][0] != "ident" or toks[j][1] not in ELEMENT_TYPES:
        return None
    type_start = j
    j += 1
    k = _skip_ws(toks, j)
    if k < len(toks) and toks[k] == ("op", "<"):
        j = _balanced(toks, k, "<", ">")
    k = _skip_ws(toks, j)
    if k < len(toks) and toks[k] == ("op", "["):
        j = _balanced(toks, k, "[", "]")
    elem = _text(toks, type_start, j)
    lost = _newlines(_text(toks, i, type_start))
    if dims.replace(",", "").strip() == "":
        # Unsized (function arguments and return types): T[,] name.
        return elem + "[" + dims.replace(" ", "") + "]" + lost, j
    # Sized: T name[dims]; the name is the next identifier.
    k = _skip_ws(toks, j)
    if k >= len(toks) or toks[k][0] != "ident":
        raise SyntaxTranslationError("array declaration of type %s without a variable name" % elem)
    between = _text(toks, j, k)
    return elem + between + toks[k][1] + "[" + dims + "]" + lost, k + 1


def translate(text):
    """The Stan program text in Stan 2.21 syntax (see the module comment)."""
    toks = tokenize(text)
    out = []
    i = 0
    while i < len(toks):
        kind, t = toks[i]
        if kind == "ident" and t == "array":
            k = _skip_ws(toks, i + 1)
            if k < len(toks) and toks[k] == ("op", "["):
                r = _rewrite_array(toks, i)
                if r is not None:
                    # The element type may itself hold an array (never in valid Stan, but a
                    # nested rewrite keeps the output well formed).
                    out.append(r[0])
                    i = r[1]
                    continue
        if kind == "ident" and (t.endswith("_lupdf") or t.endswith("_lupmf")):
            k = _skip_ws(toks, i + 1)
            if k < len(toks) and toks[k] == ("op", "("):
                t = t[:-5] + "lp" + t[-2:]
        if kind == "op" and t == "%/%":
            t = "/"
        out.append(t)
        i += 1
    return "".join(out)
