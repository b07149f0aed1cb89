#!/usr/bin/env bash
# test_comm_handler.sh - gflowvi on the caller's MPI communicator (include/gflowvi/
# comm_mpi.h) leaves the caller's error handlers as they were, at 1 and 3 ranks: the
# checks are in tests/mpi/comm_handler.c (built by make as BUILD/tests/mpi/comm_handler);
# its PASS/FAIL lines get a -npN suffix here.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

gfv_mpi_program_checks comm_handler 1 3
finish
