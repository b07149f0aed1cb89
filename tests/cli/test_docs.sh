#!/usr/bin/env bash
# test_docs.sh - the manual stays true to the program and to itself: every option that --help
# lists is in README.md's options table; every relative link and image path in the project's
# Markdown files points at a file that exists, and every #anchor at a heading of that file;
# every manual in docs/ is linked from README.md (no orphan); and nothing links to the
# shared/ folder, which users never have.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

missing=""
for opt in $("$GFV_BIN" --help | grep -oE '^  --[a-z][a-z0-9-]*' | sed 's/^ *//'); do
  grep -qE -- "^\| \`$opt[=\`]" "$GFV_ROOT/README.md" || missing="$missing $opt"
done
[[ -z $missing ]] && pass every-option-in-readme || fail every-option-in-readme "not a row of README.md's options table:$missing"

# One Python pass prints "KIND: file: target" per problem; KIND is link, anchor, orphan or
# shared.  Anchors follow GitHub's rule: the heading's text (code spans and links reduced to
# their text), lower-cased, every character but letters, digits, '-', '_' and spaces dropped,
# spaces turned into '-', and "-N" appended to the N-th repeat of a heading.
problems=$(cd "$GFV_ROOT" && "$GFV_PYTHON" - <<'PY'
import os, re, subprocess

def strip_code(text):
    # fenced blocks hold shell and output, not Markdown links or headings
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)

def anchors(path):
    seen, out = {}, set()
    for h in re.findall(r"^#{1,6} +(.+?) *#*$", strip_code(open(path, encoding="utf-8").read()), re.M):
        h = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", h).replace("`", "")
        a = re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else f"{a}-{n}")
    return out

files = subprocess.run(["git", "ls-files", "*.md"], capture_output=True, text=True).stdout.split()
linked = set()
for f in files:
    text = strip_code(open(f, encoding="utf-8", errors="replace").read())
    for m in re.finditer(r"!?\[[^\]]*\]\(([^)\s]+)\)", text):
        t = m.group(1)
        if "://" in t or t.startswith("mailto:"):
            continue
        path, _, anchor = t.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if path and re.match(r"(\.\./)*shared(/|$)", os.path.relpath(dest)):
            print(f"shared: {f}: {t}")
        if not os.path.exists(dest):
            print(f"link: {f}: {t}")
            continue
        if f == "README.md":
            linked.add(dest)
        if anchor and dest.endswith(".md") and anchor not in anchors(dest):
            print(f"anchor: {f}: {t}")
for f in files:
    if re.fullmatch(r"docs/[^/]+\.md", f) and f not in linked:
        print(f"orphan: {f}: not linked from README.md")
PY
)
for kind in link anchor orphan shared; do
  bad=$(grep "^$kind: " <<<"$problems" | sed "s/^$kind: //" || true)
  [[ -z $bad ]] && pass "markdown-$kind" || fail "markdown-$kind" "$(echo "$bad" | tr '\n' ' ')"
done
finish
