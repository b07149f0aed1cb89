/* comm_handler.c - the program of tests/mpi/test_comm_handler.sh: gflowvi on the caller's
 * MPI communicator leaves the caller's error handlers alone (issue 13, item 3).
 *  - gfv_comm_init_mpi after the caller's MPI_Init: MPI_COMM_WORLD keeps
 *    MPI_ERRORS_ARE_FATAL (it once got MPI_ERRORS_RETURN, for the whole process);
 *  - gfv_comm_create_from_mpi on a split communicator carrying the caller's own handler:
 *    the handler is the same object before, during and after (create, use, free); the
 *    gfv_comm has the split's size and rank, and its sum over ranks is the closed form;
 *  - MPI errors on gflowvi's duplicate come back as GFV_ERR_MPI (a broadcast from a root
 *    out of range), so the handler sits on the duplicate; the caller's communicator still
 *    works after the free;
 *  - MPI_COMM_NULL is refused with GFV_ERR_USAGE.
 * Prints PASS/FAIL lines from rank 0; a check fails when it fails on any rank. */
#include <stdio.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/comm_mpi.h"
#include "gflowvi/error.h"

static int failures;

/* Collective over WORLD: the check holds on every rank. */
static void check(int ok, const char *name, const char *why) {
  int all = 0, rank;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (!all) failures++;
  if (rank == 0) {
    if (all) printf("PASS %s\n", name);
    else printf("FAIL %s: %s\n", name, why);
    fflush(stdout);
  }
}

static void callers_handler(MPI_Comm *comm, int *code, ...) {
  (void)comm, (void)code;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int wrank, wsize;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);

  /* (a) the program's path, with MPI initialised by the caller. */
  gfv_comm *c = NULL;
  int st = gfv_comm_init_mpi(&argc, &argv, &c);
  MPI_Errhandler h;
  MPI_Comm_get_errhandler(MPI_COMM_WORLD, &h);
  check(st == GFV_OK && h == MPI_ERRORS_ARE_FATAL, "world-handler-untouched-by-init",
        "MPI_COMM_WORLD's handler changed by gfv_comm_init_mpi");
  MPI_Errhandler_free(&h);
  double x = gfv_comm_rank(c) + 1.0;
  st = gfv_comm_allreduce_sum(c, &x, 1);
  check(st == GFV_OK && x == wsize * (wsize + 1) / 2.0, "world-duplicate-works", "allreduce");
  gfv_comm_free(c); /* did not initialise MPI: must not finalise it */
  int finalized = 1;
  MPI_Finalized(&finalized);
  check(!finalized, "free-leaves-mpi-running", "gfv_comm_free finalised the caller's MPI");

  /* (b) the caller's own communicator with its own handler: rank 0 alone, the rest. */
  MPI_Comm mine;
  MPI_Comm_split(MPI_COMM_WORLD, wrank == 0, wrank, &mine);
  MPI_Errhandler eh;
  MPI_Comm_create_errhandler(callers_handler, &eh);
  MPI_Comm_set_errhandler(mine, eh);
  int mrank, msize;
  MPI_Comm_rank(mine, &mrank);
  MPI_Comm_size(mine, &msize);
  st = gfv_comm_create_from_mpi(mine, &c);
  check(st == GFV_OK, "create-from-mpi", gfv_error_message());
  MPI_Comm_get_errhandler(mine, &h);
  check(h == eh, "handler-kept-while-wrapped", "the caller's handler was replaced");
  MPI_Errhandler_free(&h);
  check(st == GFV_OK && gfv_comm_size(c) == msize && gfv_comm_rank(c) == mrank,
        "size-and-rank-of-the-callers-communicator", "size or rank differ");
  x = gfv_comm_rank(c) + 1.0;
  int st2 = gfv_comm_allreduce_sum(c, &x, 1);
  check(st2 == GFV_OK && x == msize * (msize + 1) / 2.0, "sum-over-the-callers-ranks", "allreduce");
  char byte = 0;
  st2 = gfv_comm_bcast(c, &byte, 1, msize); /* no such root */
  check(st2 == GFV_ERR_MPI, "errors-return-on-the-duplicate",
        "an MPI error on gflowvi's communicator did not come back as GFV_ERR_MPI");
  gfv_comm_free(c);
  MPI_Comm_get_errhandler(mine, &h);
  check(h == eh, "handler-kept-after-free", "the caller's handler was replaced");
  MPI_Errhandler_free(&h);
  st2 = MPI_Barrier(mine);
  check(st2 == MPI_SUCCESS, "callers-communicator-usable-after-free", "barrier failed");

  c = NULL;
  st2 = gfv_comm_create_from_mpi(MPI_COMM_NULL, &c);
  check(st2 == GFV_ERR_USAGE && !c, "null-communicator-refused", "MPI_COMM_NULL taken");

  MPI_Errhandler_free(&eh);
  MPI_Comm_free(&mine);
  MPI_Finalize();
  return failures ? 1 : 0;
}
