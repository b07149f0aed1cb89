#!/usr/bin/env bash
# test_solver_errors.sh - each rank's solver keeps the record of a collective call that failed
# (docs/api.md, "Errors"), at 1 and 3 ranks: the checks are in tests/mpi/solver_errors.c (the
# failing rank holds its density's message, the others "failed on another rank (status 3,
# input)"; a success clears the record; a refused option is recorded on every rank).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

gfv_mpi_program_checks solver_errors 1 3
finish
