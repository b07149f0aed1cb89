/* test_callback.c - gfv_target_create_callback: a log density given as a C function.
 *  - Evaluation passes the caller's values through: a 2-D Gaussian's log density, gradient
 *    and Hessian against their closed forms, a gradient buffer even when the solver asks
 *    for none, no Hessian asked without the flag; the flags set has_hessian / normalized.
 *  - A failing function stops with GFV_ERR_INPUT and "returned RC", or with the message it
 *    recorded through gfv_error_set; bad arguments are GFV_ERR_USAGE.
 *  - A fit (one rank, no MPI) of the Gaussian recovers its mean and covariance; a density
 *    that is NaN everywhere ends in a status and a message, not a crash. */
#include <math.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "fit_run.h"
#include "harness.h"

/* N(m, S) with m = (1, -2), S = [[2, 0.6], [0.6, 1]]: P = S^-1 = [[1, -0.6], [-0.6, 2]] / 1.64. */
static const double M[2] = {1.0, -2.0}, S[4] = {2.0, 0.6, 0.6, 1.0};
static const double DET = 1.64;

typedef struct {
  int calls, grad_null, hess_calls, fail_rc, set_message, nan;
} probe;

static int gauss2(void *ctx, size_t n, size_t d, const double *z, double *logp, double *grad,
                  double *hess) {
  probe *p = ctx;
  p->calls++;
  if (!grad) p->grad_null++;
  if (hess) p->hess_calls++;
  if (p->fail_rc) {
    if (p->set_message)
      gfv_error_set(GFV_ERR_USAGE, __FILE__, __LINE__, __func__, "model data missing (%d)", 42);
    return p->fail_rc;
  }
  const double P[4] = {S[3] / DET, -S[1] / DET, -S[2] / DET, S[0] / DET};
  for (size_t i = 0; i < n; i++) {
    const double x = z[i * d] - M[0], y = z[i * d + 1] - M[1];
    const double g0 = -(P[0] * x + P[1] * y), g1 = -(P[2] * x + P[3] * y);
    logp[i] = p->nan ? NAN : -log(2.0 * M_PI) - 0.5 * log(DET) + 0.5 * (x * g0 + y * g1);
    if (grad) grad[i * d] = g0, grad[i * d + 1] = g1;
    if (hess)
      for (size_t a = 0; a < 4; a++) hess[i * 4 + a] = -P[a];
  }
  return 0;
}

static void test_eval_passes_values_through(void) {
  probe p = {0};
  gfv_target *t = NULL;
  int st = gfv_target_create_callback(2, gauss2, &p, GFV_CALLBACK_HESSIAN | GFV_CALLBACK_NORMALIZED, &t);
  CHECK(st == 0 && t, "create: %s", gfv_error_message());
  if (!t) return;
  CHECK(t->dim == 2 && t->has_hessian && t->normalized && strcmp(t->name, "callback") == 0,
        "dim %zu hessian %d normalized %d name %s", t->dim, t->has_hessian, t->normalized, t->name);
  const double z[4] = {1.0, -2.0, 2.0, 0.0};
  double lp[2], g[4], h[8];
  CHECK(gfv_target_eval(t, 2, z, lp, g, h) == 0, "eval");
  CHECK_NEAR(lp[0], -log(2.0 * M_PI) - 0.5 * log(DET), 1e-14, "log density at the mean");
  /* (1, 2) P (1, 2)^T = (1 * 1 - 2 * 0.6 * 2 + 4 * 2) / 1.64 = 6.6 / 1.64 */
  CHECK_NEAR(lp[1], -log(2.0 * M_PI) - 0.5 * log(DET) - 0.5 * 6.6 / DET, 1e-13, "log density");
  CHECK_NEAR(g[2], -(1.0 - 1.2) / DET, 1e-14, "gradient");
  CHECK_NEAR(h[5], 0.6 / DET, 1e-14, "Hessian");
  CHECK(gfv_target_eval(t, 2, z, lp, NULL, NULL) == 0 && p.grad_null == 0 && p.hess_calls == 1,
        "without grad: %d NULL gradients, %d Hessian calls", p.grad_null, p.hess_calls);
  gfv_target_free(t);
  CHECK(gfv_target_create_callback(2, gauss2, &p, 0, &t) == 0 && !t->has_hessian && !t->normalized,
        "flags 0");
  gfv_target_free(t);
}

static void test_errors(void) {
  probe p = {.fail_rc = 7};
  gfv_target *t = NULL;
  CHECK(gfv_target_create_callback(2, gauss2, &p, 0, &t) == 0, "create");
  double z[2] = {0, 0}, lp[1], g[2];
  CHECK(gfv_target_eval(t, 1, z, lp, g, NULL) == GFV_ERR_INPUT &&
            strstr(gfv_error_message(), "log density callback failed (returned 7)"),
        "failure: %s", gfv_error_message());
  p.set_message = 1;
  CHECK(gfv_target_eval(t, 1, z, lp, g, NULL) == GFV_ERR_INPUT &&
            strcmp(gfv_error_message(), "log density callback failed: model data missing (42)") == 0,
        "failure with a message: %s", gfv_error_message());
  gfv_target_free(t);
  CHECK(gfv_target_create_callback(0, gauss2, &p, 0, &t) == GFV_ERR_USAGE && !t, "dim 0");
  CHECK(gfv_target_create_callback(2, NULL, &p, 0, &t) == GFV_ERR_USAGE && !t, "NULL function");
  CHECK(gfv_target_create_callback(2, gauss2, &p, 4, &t) == GFV_ERR_USAGE &&
            strstr(gfv_error_message(), "0x4"),
        "unknown flag: %s", gfv_error_message());
}

/* Runs a fit of the callback target; the mixture's mean and covariance into mean, cov. */
static int fit(probe *p, double *mean, double *cov) {
  gfv_target *t = NULL;
  gfv_eval_result res;
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  int st = gfv_config_set(&cfg, "particles", "4", "test");
  if (!st) st = gfv_config_set(&cfg, "iters", "300", "test");
  if (!st) st = gfv_config_set(&cfg, "eval-samples", "2000", "test");
  cfg.quiet = 1;
  if (!st) st = gfv_target_create_callback(2, gauss2, p, GFV_CALLBACK_HESSIAN, &t);
  double w[4], mu[8], P[16], C[16];
  if (!st) st = test_run_fit(&cfg, t, &res, w, mu, P);
  if (!st) {
    for (int k = 0; k < 4; k++) { /* the 2 x 2 inverses in closed form */
      const double *Pk = P + 4 * k, det = Pk[0] * Pk[3] - Pk[1] * Pk[2];
      C[4 * k] = Pk[3] / det, C[4 * k + 1] = -Pk[1] / det;
      C[4 * k + 2] = -Pk[2] / det, C[4 * k + 3] = Pk[0] / det;
    }
    test_mixture_moments(4, 2, w, mu, C, mean, cov);
  }
  gfv_target_free(t);
  return st;
}

static void test_fit_recovers_the_gaussian(void) {
  probe p = {0};
  double mean[2], cov[4];
  int st = fit(&p, mean, cov);
  CHECK(st == 0, "fit: status %d, %s", st, gfv_error_message());
  if (st) return;
  /* The Gaussian family holds the target: only the Monte Carlo noise of the last steps
   * remains, well under 0.05 in the mean and 5% in the covariance (measured: see the log). */
  printf("# fitted mean (%.4f, %.4f), cov [%.4f %.4f; %.4f %.4f]\n", mean[0], mean[1], cov[0],
         cov[1], cov[2], cov[3]);
  for (int a = 0; a < 2; a++) CHECK_NEAR(mean[a], M[a], 0.05, "mean");
  for (int a = 0; a < 4; a++) CHECK_NEAR(cov[a], S[a], 0.05 * S[0], "covariance");
}

static void test_nan_density_is_an_error_not_a_crash(void) {
  probe p = {.nan = 1};
  double mean[2], cov[4];
  int st = fit(&p, mean, cov);
  printf("# NaN density: status %d (%s): %s\n", st, gfv_status_name(st), gfv_error_message());
  CHECK(st == GFV_ERR_NUMERIC && gfv_error_message()[0], "status %d: %s", st, gfv_error_message());
}

int main(void) {
  gfv_error_install_gsl_handler();
  RUN(test_eval_passes_values_through);
  RUN(test_errors);
  RUN(test_fit_recovers_the_gaussian);
  RUN(test_nan_density_is_an_error_not_a_crash);
  return harness_report();
}
