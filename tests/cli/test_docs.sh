#!/usr/bin/env bash
# test_docs.sh - the manual stays true to the program: every option that --help lists is
# documented in README.md (in the options table or the models' section), and every relative
# link and image path in the project's Markdown files points at a file that exists.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

missing=""
for opt in $("$GFV_BIN" --help | grep -oE '^  --[a-z][a-z0-9-]*' | sed 's/^ *//'); do
  grep -qF -- "\`$opt" "$GFV_ROOT/README.md" || missing="$missing $opt"
done
[[ -z $missing ]] && pass every-option-in-readme || fail every-option-in-readme "not in README.md:$missing"

broken=$(cd "$GFV_ROOT" && "$GFV_PYTHON" - <<'PY'
import os, re, subprocess
files = subprocess.run(["git", "ls-files", "*.md"], capture_output=True, text=True).stdout.split()
for f in files:
    text = open(f, encoding="utf-8", errors="replace").read()
    for m in re.finditer(r"!?\[[^\]]*\]\(([^)\s]+)\)", text):
        t = m.group(1).split("#")[0]
        if not t or "://" in t or t.startswith("mailto:"):
            continue
        if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(f), t))):
            print(f"{f}: {m.group(1)}")
PY
)
[[ -z $broken ]] && pass markdown-links || fail markdown-links "$(echo "$broken" | tr '\n' ' ')"
finish
