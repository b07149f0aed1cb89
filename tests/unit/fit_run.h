/* fit_run.h - one whole fit on one process, for the unit tests that check a fit's answer
 * (test_convergence, test_diag, test_plugins, test_logreg_fit, test_callback): create the
 * solver on gfv_comm_self, run it to cfg->iters (or its tolerance), evaluate, gather.
 * Header-only, like harness.h. */
#ifndef GFV_TEST_FIT_RUN_H
#define GFV_TEST_FIT_RUN_H

#include <stddef.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"

/* Runs the fit quietly.  res != NULL: the final evaluation into res; w != NULL: every
 * particle's weight, mean and precision into w, mu, P (gfv_solver_gather's shapes).
 * Returns the first failing status. */
static inline int test_run_fit(gfv_config *cfg, gfv_target *t, gfv_eval_result *res, double *w,
                               double *mu, double *P) {
  gfv_comm *comm = NULL;
  gfv_solver *s = NULL;
  cfg->quiet = 1;
  int st = gfv_comm_self(&comm);
  if (!st) st = gfv_solver_create(cfg, t, comm, &s);
  if (!st) st = gfv_solver_run(s);
  if (!st && res) st = gfv_solver_evaluate(s, res);
  if (!st && w) st = gfv_solver_gather(s, w, mu, P);
  gfv_solver_free(s);
  gfv_comm_free(comm);
  return st;
}

/* The mixture's mean (d) and covariance (d x d) from K weights, means (K x d) and component
 * covariances C (K x d x d): mean = sum w mu, cov = sum w (C + mu mu^T) - mean mean^T. */
static inline void test_mixture_moments(size_t K, size_t d, const double *w, const double *mu,
                                        const double *C, double *mean, double *cov) {
  memset(mean, 0, d * sizeof *mean);
  memset(cov, 0, d * d * sizeof *cov);
  for (size_t k = 0; k < K; k++)
    for (size_t a = 0; a < d; a++) {
      mean[a] += w[k] * mu[k * d + a];
      for (size_t b = 0; b < d; b++)
        cov[a * d + b] += w[k] * (C[(k * d + a) * d + b] + mu[k * d + a] * mu[k * d + b]);
    }
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) cov[a * d + b] -= mean[a] * mean[b];
}

#endif
