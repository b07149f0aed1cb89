/* solver_errors.c - the program of tests/mpi/test_solver_errors.sh: each rank's solver
 * records the outcome of a collective call that failed (docs/api.md, "Errors").
 *  - the density of the last rank fails at its 10th evaluation (in the run, after the set-up) with its own message: the
 *    solve returns GFV_ERR_INPUT on every rank; that rank's solver holds the density's
 *    message, every other rank's says the call failed on another rank (status 3, input);
 *  - the next call that succeeds (set_option iters) clears the record on every rank;
 *  - a refused option value: every rank's solver holds the parser's message.
 * Prints PASS/FAIL lines from rank 0; a check fails when it fails on any rank. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/comm_mpi.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"

static int failures;

/* Collective over WORLD: the check holds on every rank; why is the first failing rank's. */
static void check(int ok, const char *name, const char *why) {
  int all = 0, rank, first = 0, me;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  me = ok ? 1 << 30 : rank;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  MPI_Allreduce(&me, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  char text[512] = "";
  if (!all) {
    if (rank == first) snprintf(text, sizeof text, "rank %d: %s", rank, why);
    MPI_Bcast(text, sizeof text, MPI_CHAR, first, MPI_COMM_WORLD);
    failures++;
  }
  if (rank == 0) {
    if (all) printf("PASS %s\n", name);
    else printf("FAIL %s: %s\n", name, text);
    fflush(stdout);
  }
}

typedef struct {
  int calls, fail_at;
} density;

static int gauss(void *ctx, size_t n, size_t d, const double *z, double *lp, double *grad,
                 double *hess) {
  density *c = ctx;
  (void)hess;
  if (c->fail_at && ++c->calls >= c->fail_at) {
    gfv_error_set(GFV_ERR_INPUT, __FILE__, __LINE__, __func__, "the density of the last rank failed");
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    lp[i] = 0;
    for (size_t a = 0; a < d; a++) lp[i] -= 0.5 * z[i * d + a] * z[i * d + a], grad[i * d + a] = -z[i * d + a];
  }
  return 0;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  gfv_comm *comm = NULL;
  gfv_target *t = NULL;
  gfv_solver *s = NULL;
  density dens = {0, rank == size - 1 ? 10 : 0};
  int st = gfv_comm_create_from_mpi(MPI_COMM_WORLD, &comm);
  if (!st) st = gfv_target_create_callback(2, gauss, &dens, 0, &t);
  if (!st) st = gfv_solver_create_empty(comm, &s);
  static const char *const opts[][2] = {{"particles", "3"}, {"samples", "10"}, {"iters", "30"},
                                        {"quiet", "true"}, {"seed", "2"}};
  for (size_t i = 0; !st && i < sizeof opts / sizeof opts[0]; i++)
    st = gfv_solver_set_option(s, opts[i][0], opts[i][1]);
  if (!st) st = gfv_solver_set_target(s, t);
  check(st == GFV_OK, "set-up", gfv_error_message());
  if (st) {
    MPI_Finalize();
    return 1;
  }
  char why[600];
  st = gfv_solver_solve(s);
  const char *msg = gfv_solver_error_message(s);
  int mine = rank == size - 1;
  snprintf(why, sizeof why, "status %d, record %d '%s'", st, gfv_solver_error_code(s), msg);
  check(st == GFV_ERR_INPUT && gfv_solver_error_code(s) == GFV_ERR_INPUT, "failure-agreed", why);
  check(mine ? strstr(msg, "log density callback failed: the density of the last rank failed") != NULL
             : strstr(msg, "gfv_solver_solve: failed on another rank (status 3, input)") != NULL,
        "own-or-other-rank-message", why);
  st = gfv_solver_set_option(s, "iters", "40");
  snprintf(why, sizeof why, "status %d, record %d '%s'", st, gfv_solver_error_code(s),
           gfv_solver_error_message(s));
  check(st == GFV_OK && gfv_solver_error_code(s) == GFV_OK && !gfv_solver_error_message(s)[0],
        "success-clears", why);
  st = gfv_solver_set_option(s, "step", "-1");
  snprintf(why, sizeof why, "status %d, record '%s'", st, gfv_solver_error_message(s));
  check(st == GFV_ERR_USAGE && strstr(gfv_solver_error_message(s), "--step: must be > 0"),
        "refused-option-every-rank", why);
  gfv_solver_free(s);
  gfv_target_free(t);
  gfv_comm_free(comm);
  MPI_Finalize();
  return failures ? 1 : 0;
}
