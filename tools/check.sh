#!/usr/bin/env bash
# check.sh - THE test command: installs what is missing, builds everything, runs the
# whole suite.  Exit status is the suite's: 0 only when every test passed.
#
#   bash tools/check.sh
#
# Make variables pass through the environment (e.g. OPT=-O0 bash tools/check.sh), and
# GFV_TEST_TIMEOUT / GFV_TEST_FILTER reach tests/run_all.sh.
set -euo pipefail

# Work from the repo root whatever the caller's cwd: the Makefile and tests use
# repo-relative paths.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/install-deps.sh
# -j2: parallel enough to help on small CI boxes without oversubscribing them.
make -j2 all
bash tests/run_all.sh build
