#!/usr/bin/env bash
# test_layering.sh - the modules keep their layers (issue 13): only src/comm/ (and the public
# MPI bridge include/gflowvi/comm_mpi.h) includes mpi.h; the targets, flows, mixture kernels,
# linear algebra, random streams and core know neither the CLI, the solver nor the
# communicator (their option tables need only src/core/optdef.h); their objects call no MPI;
# the numerics (flows, mixture, linalg, rng) write no files; and the library prints nothing
# itself: only src/cli/ and the default log printer (src/core/log.c) write to stdout/stderr,
# every other line goes through the log (src/core/log.h) to the caller's callback.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$GFV_ROOT"

bad=$(grep -rlE '#include *[<"]mpi\.h[>"]' src include | grep -vE '^(src/comm/|include/gflowvi/comm_mpi\.h$)' || true)
[[ -z $bad ]] && pass mpi-h-only-in-comm || fail mpi-h-only-in-comm "mpi.h included by: $bad"

lower="src/targets src/flows src/mixture src/linalg src/rng src/core"
bad=$(grep -rnE '#include *"(cli|solver|comm)/|#include *"gflowvi/(comm|comm_mpi|solver)\.h"' $lower || true)
[[ -z $bad ]] && pass lower-layers-no-cli-solver-comm || fail lower-layers-no-cli-solver-comm "$bad"

objs=$(for d in $lower; do ls "$GFV_BUILD/obj/$d"/*.o; done)
bad=$(nm -A $objs | grep -E ' U (MPI_|PMPI_|ompi_)' || true)
[[ -z $bad ]] && pass lower-layers-call-no-mpi || fail lower-layers-call-no-mpi "$bad"

# fopen for writing, rename, mkdir or the temporary-name writer of src/io/ofile.c
bad=$(grep -rnE 'fopen\([^)]*"[wa]|\brename\(|\bmkdir\(|gfv_ofile_' src/flows src/mixture src/linalg src/rng || true)
[[ -z $bad ]] && pass numerics-write-no-files || fail numerics-write-no-files "$bad"

# A print to the terminal: printf / puts / perror / putchar, stdout or stderr handed to a
# function (fprintf(stderr, ...), fflush(stdout), fwrite(..., stderr)), or write on fd 1 or 2.
# Comment lines (starting with * or /) are skipped; a string that names stderr is not a call.
prints='\b(v?printf|puts|perror|putchar)\(|[(,][[:space:]]*(stdout|stderr)[[:space:]]*[,)]|\bwrite\((1|2|STD(OUT|ERR)_FILENO)[[:space:]]*,'
bad=$(grep -rnE "$prints" src --include='*.c' --include='*.h' | grep -vE '^src/cli/|^src/core/log\.c:' |
  grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|/)' || true)
[[ -z $bad ]] && pass library-prints-only-through-log || fail library-prints-only-through-log "$bad"

finish
