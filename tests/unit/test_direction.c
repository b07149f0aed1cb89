/* test_direction.c - the implemented update direction is the gradient of the mixture KL
 * (docs/method.md, section 2):  dF/dmu_k = w_k E_{q_k}[grad h],  dF/dSigma_k = w_k E_{q_k}[H_h] / 2.
 *
 * F(lambda) = int q (log q - l) is computed by quadrature on a fine 2-D grid (the
 * integrand is smooth and negligible at the border, so the trapezoid rule is accurate to
 * far below the tolerances) and differentiated by central differences.  The solver's
 * Monte Carlo estimates (both estimators) must match within 5 of their standard errors,
 * computed in the test from the per-sample values. */
#include <stdlib.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/mixture.h"
#include "harness.h"
#include "linalg/linalg.h"
#include "solver/solver_impl.h"

#define K 3
#define D 2

/* A correlated Gaussian target, unnormalised: l(z) = -1/2 (z - m)^T A (z - m). */
static const double tm[D] = {0.5, -0.3};
static const double tA[D * D] = {1.2, 0.4, 0.4, 0.8};

static int tgt_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                    double *hess) {
  (void)t;
  for (size_t i = 0; i < n; i++) {
    double c0 = z[i * D] - tm[0], c1 = z[i * D + 1] - tm[1];
    double a0 = tA[0] * c0 + tA[1] * c1, a1 = tA[2] * c0 + tA[3] * c1;
    logp[i] = -0.5 * (c0 * a0 + c1 * a1);
    if (grad) grad[i * D] = -a0, grad[i * D + 1] = -a1;
    if (hess)
      for (int a = 0; a < 4; a++) hess[i * 4 + a] = -tA[a];
  }
  return 0;
}
static gfv_target target = {.name = "fdgauss", .dim = D, .has_hessian = 1, .eval = tgt_eval};

/* The mixture under test: means, covariances, weights. */
static double mus[K * D] = {-1.0, 0.5, 1.0, 1.0, 0.2, -1.2};
static double covs[K * D * D] = {0.6, 0.2, 0.2, 0.5, 0.4, -0.1, -0.1, 0.7, 0.9, 0.3, 0.3, 0.6};
static double weights[K] = {0.5, 0.3, 0.2};

static void to_precision(const double *cov, double *P, double *L) {
  double C[4];
  memcpy(C, cov, sizeof C);
  gfv_chol(D, C);
  gfv_chol_inverse(D, C, P);
  memcpy(L, P, 4 * sizeof(double));
  gfv_chol(D, L);
}

/* F = int q (log q - l) by the trapezoid rule on [-9, 9]^2. */
static double kl_objective(const double *mu, const double *cov) {
  enum { N = 361 };
  static double z[N * N * D], lq[N * N], lp[N * N];
  double P[K * 4], L[K * 4], logw[K], logc[K];
  for (int k = 0; k < K; k++) to_precision(cov + 4 * k, P + 4 * k, L + 4 * k), logw[k] = log(weights[k]);
  gfv_mix_log_const(D, K, logw, L, logc);
  gfv_mix_view v = {D, K, mu, P, L, logc, 0, 0};
  const double lo = -9, h = 18.0 / (N - 1);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) z[(i * N + j) * D] = lo + h * i, z[(i * N + j) * D + 1] = lo + h * j;
  gfv_mix_work *w;
  gfv_mix_work_alloc(D, K, 1, &w);
  gfv_mix_eval(&v, N * N, z, lq, NULL, NULL, w);
  gfv_mix_work_free(w);
  tgt_eval(&target, N * N, z, lp, NULL, NULL);
  double F = 0;
  for (int i = 0; i < N * N; i++) F += exp(lq[i]) * (lq[i] - lp[i]);
  return F * h * h;
}

static void test_update_direction_is_kl_gradient(void) {
  const size_t S = 40000;
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  cfg.particles = K, cfg.samples = (long)S, cfg.iters = 1, cfg.seed = 7;
  strcpy(cfg.estimator, "hessian");
  gfv_comm *comm;
  gfv_solver *s;
  gfv_comm_self(&comm);
  CHECK(gfv_solver_create(&cfg, &target, comm, &s) == 0, "create: %s", gfv_error_message());
  /* Put the mixture under test into the solver and estimate at it. */
  for (int k = 0; k < K; k++) {
    memcpy(s->cur.mu + k * D, mus + k * D, D * sizeof(double));
    to_precision(covs + 4 * k, s->cur.P + 4 * k, s->cur.L + 4 * k);
    s->cur.logw[k] = log(weights[k]);
  }
  gfv_particles_update_logc(&s->cur);
  gfv_estimate *e = &s->est_buf[0];
  int bad = 0;
  CHECK(gfv_solver_estimate(s, e, &bad) == 0 && !bad, "estimate");

  /* Per-sample values for the standard errors: grad h, and H_h from the serial kernel. */
  gfv_mix_view full = gfv_particles_view(&s->cur);
  gfv_mix_work *w;
  gfv_mix_work_alloc(D, K, 1, &w);
  double *lq = malloc(S * sizeof(double)), *g = malloc(S * D * sizeof(double));
  double *H = malloc(S * 4 * sizeof(double));
  const double hmu = 1e-4, hs = 1e-4;
  for (int k = 0; k < K; k++) {
    const double *zk = s->zall + (size_t)k * S * D, *gl = s->grad_l + (size_t)k * S * D;
    gfv_mix_eval(&full, S, zk, lq, g, H, w);
    double m1[D] = {0}, m2[D] = {0}, hm1[4] = {0}, hm2[4] = {0};
    for (size_t i = 0; i < S; i++) {
      for (int a = 0; a < D; a++) {
        double v = g[i * D + a] - gl[i * D + a];
        m1[a] += v, m2[a] += v * v;
      }
      for (int a = 0; a < 4; a++) {
        double v = H[i * 4 + a] + tA[a]; /* H_h = H_logq - H_l */
        hm1[a] += v, hm2[a] += v * v;
      }
    }
    for (int a = 0; a < D; a++) {
      double mean = m1[a] / S, se = sqrt((m2[a] / S - mean * mean) / S);
      double mp[K * D], mm[K * D];
      memcpy(mp, mus, sizeof mp), memcpy(mm, mus, sizeof mm);
      mp[k * D + a] += hmu, mm[k * D + a] -= hmu;
      double fd = (kl_objective(mp, covs) - kl_objective(mm, covs)) / (2 * hmu);
      CHECK_NEAR(weights[k] * e->gh[k * D + a], fd, 5 * weights[k] * se + 1e-6, "dF/dmu");
    }
    for (int a = 0; a < D; a++)
      for (int b = a; b < D; b++) {
        int ab = a * D + b;
        double mean = hm1[ab] / S, se = sqrt((hm2[ab] / S - mean * mean) / S);
        double cp[K * 4], cm[K * 4];
        memcpy(cp, covs, sizeof cp), memcpy(cm, covs, sizeof cm);
        cp[k * 4 + ab] += hs, cm[k * 4 + ab] -= hs;
        if (a != b) cp[k * 4 + b * D + a] += hs, cm[k * 4 + b * D + a] -= hs;
        /* Moving both off-diagonal entries changes F by twice the matrix gradient entry. */
        double fd = (kl_objective(mus, cp) - kl_objective(mus, cm)) / (2 * hs) / (a != b ? 2 : 1);
        CHECK_NEAR(weights[k] * 0.5 * e->G[k * 4 + ab], fd, 5 * weights[k] * 0.5 * se + 1e-6,
                   "dF/dSigma");
      }
  }
  free(lq), free(g), free(H);
  gfv_mix_work_free(w);
  gfv_solver_free(s);
  gfv_comm_free(comm);
}

int main(void) {
  RUN(test_update_direction_is_kl_gradient);
  return harness_report();
}
