/* test_solver_api.c - the solver driven through its public functions the way a program
 * embedding the library drives it, not the way gflowvi's main does.
 *  - Iterating past the configured --iters grows the trace (it once wrote past the end of
 *    a buffer sized iters + 1: invalid writes under valgrind / ASan, a corrupted heap
 *    otherwise); every iteration is recorded, in order, and the outputs still write.
 *  - The block partition of the particles over ranks: gfv_block_owner inverts
 *    gfv_block_range and gfv_block_counts agrees with it, for every K and rank count up to
 *    40 (exhaustive: the closed form's two cases, K divisible by the ranks or not). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "solver/solver_impl.h"

static void test_iterating_past_iters_grows_the_trace(void) {
  gfv_target *t;
  CHECK(gfv_target_create("gauss", 3, &t) == 0, "target");
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  cfg.particles = 2, cfg.samples = 10, cfg.iters = 3, cfg.seed = 5, cfg.quiet = 1;
  gfv_comm *comm;
  gfv_comm_self(&comm);
  gfv_solver *s = NULL;
  CHECK(gfv_solver_create(&cfg, t, comm, &s) == 0, "create: %s", gfv_error_message());
  /* 40 > 3 + 1 rows: two doublings of the trace. */
  const long n = 40;
  for (long i = 0; s && i < n; i++) CHECK(gfv_solver_iterate(s) == 0, "iteration %ld", i + 1);
  if (s) {
    CHECK(gfv_solver_iteration(s) == n, "iteration count %ld", gfv_solver_iteration(s));
    CHECK(s->ntrace == (size_t)n + 1, "trace rows %zu, expected %ld", s->ntrace, n + 1);
    CHECK(s->trace_cap >= s->ntrace, "capacity %zu below %zu rows", s->trace_cap, s->ntrace);
    for (size_t r = 0; r < s->ntrace; r++)
      CHECK(s->trace[r].iteration == (long)r && isfinite(s->trace[r].elbo),
            "trace row %zu holds iteration %ld, elbo %g", r, s->trace[r].iteration,
            s->trace[r].elbo);
    double se, elbo = gfv_solver_elbo(s, &se);
    CHECK(isfinite(elbo) && isfinite(se), "elbo %g +- %g", elbo, se);
  }
  gfv_solver_free(s);
  gfv_comm_free(comm);
  gfv_target_free(t);
}

static void test_block_owner_inverts_block_range(void) {
  size_t counts[40], displs[40];
  for (size_t K = 1; K <= 40; K++)
    for (int P = 1; P <= (int)K; P++) {
      gfv_block_counts(K, P, 3, counts, displs);
      size_t next = 0;
      for (int r = 0; r < P; r++) {
        size_t k0, kl;
        gfv_block_range(K, P, r, &k0, &kl);
        CHECK(k0 == next && kl >= 1, "K=%zu P=%d rank %d: block [%zu, +%zu)", K, P, r, k0, kl);
        CHECK(counts[r] == 3 * kl && displs[r] == 3 * k0, "K=%zu P=%d rank %d: counts", K, P, r);
        for (size_t k = k0; k < k0 + kl; k++)
          CHECK(gfv_block_owner(K, P, k) == r, "K=%zu P=%d: particle %zu owned by %d, not %d", K,
                P, k, gfv_block_owner(K, P, k), r);
        next = k0 + kl;
      }
      CHECK(next == K, "K=%zu P=%d: blocks cover %zu", K, P, next);
    }
}

int main(void) {
  gfv_error_install_gsl_handler();
  RUN(test_iterating_past_iters_grows_the_trace);
  RUN(test_block_owner_inverts_block_range);
  return harness_report();
}
