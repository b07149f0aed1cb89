/* comm_mpi.h - a gfv_comm over the caller's MPI communicator.  For programs that use MPI
 * themselves (this header includes mpi.h; nothing else of gflowvi's public headers does).
 *
 * The communicator is duplicated (MPI_Comm_dup, collective over comm): gflowvi's messages
 * never mix with the caller's, and MPI_ERRORS_RETURN is set on the duplicate only, so the
 * caller's communicator keeps its error handler.  gfv_comm_free frees the duplicate and
 * never finalises MPI (the caller initialised it); call it before MPI_Finalize. */
#ifndef GFLOWVI_COMM_MPI_H
#define GFLOWVI_COMM_MPI_H

#include <mpi.h>

#include "gflowvi/comm.h"

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

/* Collective over comm.  MPI must be initialised.  GFV_ERR_USAGE before MPI_Init or for
 * MPI_COMM_NULL, GFV_ERR_MPI when the duplication fails. */
int gfv_comm_create_from_mpi(MPI_Comm comm, gfv_comm **out);

#pragma GCC visibility pop

#endif
