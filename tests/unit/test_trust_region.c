/* test_trust_region.c - the per-component trust region (docs/method.md, section 3):
 *  - gfv_kl_gauss against the closed form computed here from the covariance matrices
 *    themselves (LAPACK inverses and determinants), and the diagonal version against the full
 *    one on diagonal matrices;
 *  - the bound holds after every update: runs whose plain steps are far too large (the funnel
 *    at step 3, eight schools with the stein estimator) are iterated one step at a time, and
 *    after each accepted iteration KL(new || old) of every component, computed from the
 *    solver's own before/after state, is at most the component's bound before the step; for
 *    both flows and both families; and the region did shorten steps (else the test would
 *    prove nothing). */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow.h"
#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "linalg/linalg.h"
#include "solver/solver_impl.h"

#define TD 3

/* KL(N(m1, S1) || N(m0, S0)) = 1/2 [tr(S0^-1 S1) - d + (m1-m0)^T S0^-1 (m1-m0) + ln det S0 - ln det S1]. */
static double kl_closed(const double *m1, const double *S1, const double *m0, const double *S0) {
  double inv0[TD * TD], c0[TD * TD], c1[TD * TD];
  memcpy(inv0, S0, sizeof inv0);
  LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', TD, inv0, TD);
  LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', TD, inv0, TD);
  for (int a = 0; a < TD; a++)
    for (int b = a + 1; b < TD; b++) inv0[a * TD + b] = inv0[b * TD + a];
  double tr = 0, q = 0;
  for (int a = 0; a < TD; a++)
    for (int b = 0; b < TD; b++) {
      tr += inv0[a * TD + b] * S1[b * TD + a];
      q += (m1[a] - m0[a]) * inv0[a * TD + b] * (m1[b] - m0[b]);
    }
  memcpy(c0, S0, sizeof c0), memcpy(c1, S1, sizeof c1);
  LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', TD, c0, TD);
  LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', TD, c1, TD);
  double ld = 0;
  for (int a = 0; a < TD; a++) ld += 2 * (log(c0[a * (TD + 1)]) - log(c1[a * (TD + 1)]));
  return 0.5 * (tr - TD + q + ld);
}

/* The factor L of P = S^{-1}, as the solver stores it. */
static void precision_factor(const double *S, double *L) {
  double P[TD * TD];
  memcpy(P, S, sizeof P);
  LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', TD, P, TD);
  LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', TD, P, TD);
  for (int a = 0; a < TD; a++)
    for (int b = a + 1; b < TD; b++) P[a * TD + b] = P[b * TD + a];
  memcpy(L, P, sizeof P);
  gfv_chol(TD, L);
}

static void test_kl_closed_form(void) {
  const double S0[TD * TD] = {2.0, 0.3, -0.1, 0.3, 1.0, 0.2, -0.1, 0.2, 0.5};
  const double S1[TD * TD] = {1.5, -0.2, 0.0, -0.2, 0.7, 0.1, 0.0, 0.1, 0.9};
  const double m0[TD] = {0.1, -0.4, 2.0}, m1[TD] = {0.7, 0.2, 1.1};
  double L0[TD * TD], L1[TD * TD], work[TD * TD + TD], maha;
  precision_factor(S0, L0);
  precision_factor(S1, L1);
  double want = kl_closed(m1, S1, m0, S0);
  CHECK_REL(gfv_kl_gauss(TD, m1, L1, m0, L0, work, &maha), want, 1e-12, 1e-12, "KL full");
  /* The mean's move in the old standard deviations: sqrt(dm^T S0^-1 dm). */
  const double zero[TD] = {0, 0, 0};
  CHECK_REL(gfv_kl_gauss(TD, m1, L0, m0, L0, work, NULL), 0.5 * maha * maha, 1e-12, 1e-12, "maha");
  CHECK_NEAR(gfv_kl_gauss(TD, zero, L0, zero, L0, work, NULL), 0.0, 1e-14, "KL of a component to itself");
  /* Diagonal family: p are precisions. */
  const double p0[TD] = {0.5, 2.0, 4.0}, p1[TD] = {0.8, 1.0, 3.5};
  double D0[TD * TD] = {0}, D1[TD * TD] = {0};
  for (int a = 0; a < TD; a++) D0[a * (TD + 1)] = 1 / p0[a], D1[a * (TD + 1)] = 1 / p1[a];
  CHECK_REL(gfv_kl_gauss_diag(TD, m1, p1, m0, p0, NULL), kl_closed(m1, D1, m0, D0), 1e-12, 1e-12,
            "KL diag");
}

/* Iterates s one step at a time and checks the bound after each step; returns the largest
 * KL / bound seen. */
static double check_bound(gfv_solver *s, long iters, const char *what) {
  double worst = 0, *eps = malloc(s->kloc * sizeof *eps);
  for (long it = 0; it < iters && eps; it++) {
    memcpy(eps, s->tr_eps, s->kloc * sizeof *eps);
    int st = gfv_solver_iterate(s);
    if (st) { /* a diverging run ends with an error; the steps before it were checked */
      CHECK(st == GFV_ERR_DIVERGED, "%s: iteration %ld: status %d: %s", what, it, st, gfv_error_message());
      gfv_error_clear();
      break;
    }
    for (size_t j = 0; j < s->kloc; j++) {
      const size_t d = s->d, ps = s->psize;
      double kl = s->fam->diag ? gfv_kl_gauss_diag(d, s->cur.mu + j * d, s->cur.P + j * ps,
                                               s->prev.mu + j * d, s->prev.P + j * ps, NULL)
                          : gfv_kl_gauss(d, s->cur.mu + j * d, s->cur.L + j * ps,
                                         s->prev.mu + j * d, s->prev.L + j * ps, s->kl_work, NULL);
      CHECK(kl <= eps[j] * (1 + 1e-9), "%s: iteration %ld component %zu: KL %g > bound %g", what,
            it + 1, j, kl, eps[j]);
      if (kl / eps[j] > worst) worst = kl / eps[j];
    }
  }
  free(eps);
  return worst;
}

static void run_case(const char *spec, long dim, const char *flow, const char *family,
                     const char *estimator, double step, const char *plugin_arg) {
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  snprintf(cfg.target, sizeof cfg.target, "%s", spec);
  snprintf(cfg.flow, sizeof cfg.flow, "%s", flow);
  snprintf(cfg.family, sizeof cfg.family, "%s", family);
  snprintf(cfg.estimator, sizeof cfg.estimator, "%s", estimator);
  snprintf(cfg.plugin_arg, sizeof cfg.plugin_arg, "%s", plugin_arg);
  cfg.dim = dim, cfg.particles = 6, cfg.iters = 60, cfg.step = step, cfg.quiet = 1;
  cfg.trust_region = 0.3;
  char what[256];
  snprintf(what, sizeof what, "%s %s %s %s step %g", spec, flow, family, estimator, step);
  gfv_target *t = NULL;
  gfv_comm *comm = NULL;
  gfv_solver *s = NULL;
  gfv_comm_self(&comm);
  int st = gfv_target_create_from_config(&cfg, &t);
  if (!st) st = gfv_solver_create(&cfg, t, comm, &s);
  CHECK(st == 0, "%s: set-up: %s", what, gfv_error_message());
  if (!st) {
    double worst = check_bound(s, cfg.iters, what);
    CHECK(s->tr_limited > 0, "%s: the region never shortened a step (worst KL/bound %g)", what, worst);
  }
  gfv_solver_free(s);
  gfv_target_free(t);
  gfv_comm_free(comm);
  gfv_error_clear();
}

static void test_bound_holds_after_every_update(void) {
  const char *flows[2] = {"ngflow", "gflow"}, *families[2] = {"full", "diag"};
  for (int f = 0; f < 2; f++)
    for (int m = 0; m < 2; m++) {
      run_case("funnel", 4, flows[f], families[m], "auto", 3.0, "");
      run_case("banana", 0, flows[f], families[m], "stein", 3.0, "");
    }
  char spec[1100];
  const char *build = getenv("GFV_BUILD");
  snprintf(spec, sizeof spec, "plugin:%s/plugins/eight_schools_nohess.so", build ? build : "build");
  run_case(spec, 0, "ngflow", "full", "stein", 0.05, "centered");
  run_case(spec, 0, "ngflow", "full", "stein", 0.05, "effects");
}

int main(void) {
  gfv_error_install_gsl_handler();
  RUN(test_kl_closed_form);
  RUN(test_bound_holds_after_every_update);
  return harness_report();
}
