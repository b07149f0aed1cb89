/* test_flows.c - the particle updates against closed forms (docs/method.md, section 2):
 *  - positive definiteness: the retraction keeps P' (or Sigma') positive definite for
 *    indefinite G and large steps, the plain update does not;
 *  - K = 1 reductions, step for step through the whole solver: NGFlow-VI is the
 *    variational online Newton update, GFlow-VI is BBVI with the reparameterisation
 *    gradient, on a Gaussian target where every expectation has a closed form;
 *  - the factored products (W = L^{-1} G and W^T W; Stein's (Zc P)^T Gh) equal the
 *    formulas written with an explicit inverse and general products, at d = 40. */
#include <cblas.h>
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
#include "rng/rng.h"
#include "solver/particles.h"

/* Smallest eigenvalue of a symmetric d x d matrix. */
static double min_eig(size_t d, const double *A) {
  double M[64], w[8];
  memcpy(M, A, d * d * sizeof(double));
  LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'L', (int)d, M, (int)d, w);
  return w[0];
}

static void test_retraction_keeps_definiteness_plain_does_not(void) {
  const size_t d = 4;
  double P[16] = {2, .3, 0, .1, .3, 1, .2, 0, 0, .2, 1.5, .4, .1, 0, .4, 3}, L[16];
  memcpy(L, P, sizeof L);
  gfv_chol(d, L);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  double work[128], mu[4] = {0}, gh[4] = {1, -1, .5, 0}, mu2[4], P2[16], L2[16];
  int plain_failures = 0, trials = 0;
  for (int trial = 0; trial < 50; trial++) {
    double G[16];
    gfv_rng_gaussian_fill(r, 16, G);
    gfv_symmetrize(d, G);
    for (size_t i = 0; i < d; i++) G[i * d + i] -= 1.0; /* mostly negative: indefinite */
    for (double eta = 0.1; eta <= 100; eta *= 10) {
      const gfv_flow_type *flows[2] = {&gfv_flow_ngflow, &gfv_flow_gflow};
      for (int f = 0; f < 2; f++) {
        gfv_step_info info;
        int bad = flows[f]->update(d, mu, P, L, gh, G, eta, 0, mu2, P2, L2, work, &info);
        CHECK(!bad, "%s retraction failed at eta %g", flows[f]->name, eta);
        if (!bad) CHECK(min_eig(d, P2) > 0, "%s: P' not positive definite", flows[f]->name);
        trials++;
        plain_failures += flows[f]->update(d, mu, P, L, gh, G, eta, 1, mu2, P2, L2, work, &info);
      }
    }
  }
  /* The plain update must fail often on this set (indefinite G, steps up to 100). */
  CHECK(plain_failures > trials / 4, "plain update failed only %d of %d times", plain_failures,
        trials);
  gsl_rng_free(r);
}

/* A Gaussian target l(z) = -1/2 (z - m)^T A (z - m) (unnormalised), Hessian -A. */
#define TD 3
static const double tgt_m[TD] = {1.0, -0.5, 2.0};
static const double tgt_A[TD * TD] = {2.0, 0.5, 0.0, 0.5, 1.0, 0.3, 0.0, 0.3, 1.5};

static int gauss_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                      double *hess) {
  (void)t;
  for (size_t i = 0; i < n; i++) {
    double c[TD], Ac[TD];
    for (int a = 0; a < TD; a++) c[a] = z[i * TD + a] - tgt_m[a];
    cblas_dsymv(CblasRowMajor, CblasLower, TD, 1.0, tgt_A, TD, c, 1, 0.0, Ac, 1);
    logp[i] = -0.5 * cblas_ddot(TD, c, 1, Ac, 1);
    if (grad)
      for (int a = 0; a < TD; a++) grad[i * TD + a] = -Ac[a];
    if (hess)
      for (int a = 0; a < TD * TD; a++) hess[i * TD * TD + a] = -tgt_A[a];
  }
  return 0;
}

static gfv_target test_target = {.name = "testgauss", .dim = TD, .has_hessian = 1, .eval = gauss_eval};

/* One iteration with K = 1 through the solver, and the same step by hand from the same
 * random numbers (particle 0's streams: d initial-mean draws, then the S d draws of the
 * initial estimate, the sequence (0, 0) of its sampling stream). */
static void one_step(const char *flow, double *mu_solver, double *P_solver, double *mu_hand,
                     double *P_hand) {
  const size_t d = TD, S = 7, dd = d * d;
  const double eta = 0.3, scale = 0.8, var = 0.5;
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  strcpy(cfg.flow, flow);
  strcpy(cfg.estimator, "hessian");
  cfg.particles = 1, cfg.samples = (long)S, cfg.step = eta, cfg.iters = 1, cfg.seed = 42;
  cfg.init_scale = scale, cfg.init_var = var;
  cfg.trust_region = 0; /* the reduction is a claim about the flow's own step */
  gfv_comm *comm;
  gfv_solver *s;
  gfv_comm_self(&comm);
  CHECK(gfv_solver_create(&cfg, &test_target, comm, &s) == 0, "create: %s", gfv_error_message());
  CHECK(gfv_solver_iterate(s) == 0, "iterate: %s", gfv_error_message());
  double w;
  gfv_solver_gather(s, &w, mu_solver, P_solver);
  gfv_solver_free(s);
  gfv_comm_free(comm);

  /* By hand. */
  const gfv_stream init = gfv_stream_make(42, 0, GFV_PURPOSE_INIT);
  const gfv_stream draws = gfv_stream_make(42, 0, GFV_PURPOSE_SAMPLE);
  double mu[TD], eps[7 * TD], z[7 * TD], Sigma[TD * TD], P[TD * TD];
  gfv_stream_normals(&init, 0, 0, d, mu);
  for (size_t a = 0; a < d; a++) mu[a] *= scale;
  gfv_stream_normals(&draws, 0, 0, S * d, eps);
  for (size_t i = 0; i < S; i++)
    for (size_t a = 0; a < d; a++) z[i * d + a] = mu[a] + sqrt(var) * eps[i * d + a];
  memset(Sigma, 0, sizeof Sigma);
  memset(P, 0, sizeof P);
  for (size_t a = 0; a < d; a++) Sigma[a * d + a] = var, P[a * d + a] = 1 / var;
  /* mean over samples of grad h = -P (z - mu) - grad l = -P (z - mu) + A (z - m) */
  double gh[TD] = {0};
  for (size_t i = 0; i < S; i++)
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++)
        gh[a] += (-P[a * d + b] * (z[i * d + b] - mu[b]) + tgt_A[a * d + b] * (z[i * d + b] - tgt_m[b])) /
                 (double)S;
  if (strcmp(flow, "ngflow") == 0) {
    /* VON: P' = (1 - eta) P + eta E[-H_l] + eta^2/2 G P^{-1} G with G = A - P exactly. */
    double G[TD * TD], T[TD * TD], Pn[TD * TD];
    for (size_t t = 0; t < dd; t++) G[t] = tgt_A[t] - P[t];
    for (size_t t = 0; t < dd; t++) Pn[t] = (1 - eta) * P[t] + eta * tgt_A[t];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, TD, TD, TD, 1.0, G, TD, Sigma, TD, 0.0, T, TD);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, TD, TD, TD, 0.5 * eta * eta, T, TD, G, TD,
                1.0, Pn, TD);
    memcpy(P_hand, Pn, sizeof Pn);
    /* mu' = mu - eta P'^{-1} gh */
    double x[TD];
    memcpy(x, gh, sizeof x);
    LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', TD, 1, Pn, TD, x, 1);
    for (size_t a = 0; a < d; a++) mu_hand[a] = mu[a] - eta * x[a];
  } else {
    /* BBVI: grad_Sigma ELBO = 1/2 (Sigma^{-1} - A) = -B; Sigma' = Sigma - eta B + eta^2/2 B P B. */
    double B[TD * TD], T[TD * TD], Sn[TD * TD];
    for (size_t t = 0; t < dd; t++) B[t] = 0.5 * (tgt_A[t] - P[t]);
    for (size_t t = 0; t < dd; t++) Sn[t] = Sigma[t] - eta * B[t];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, TD, TD, TD, 1.0, B, TD, P, TD, 0.0, T, TD);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, TD, TD, TD, 0.5 * eta * eta, T, TD, B, TD,
                1.0, Sn, TD);
    gfv_chol(d, Sn);
    gfv_chol_inverse(d, Sn, P_hand);
    for (size_t a = 0; a < d; a++) mu_hand[a] = mu[a] - eta * gh[a];
  }
}

/* Agreement to rounding: both paths do O(d^3) operations on O(1) numbers. */
static void test_ngflow_k1_is_variational_online_newton(void) {
  double mu_s[TD], P_s[TD * TD], mu_h[TD], P_h[TD * TD];
  one_step("ngflow", mu_s, P_s, mu_h, P_h);
  for (int a = 0; a < TD; a++) CHECK_REL(mu_s[a], mu_h[a], 1e-11, 1.0, "NGVI mean");
  for (int a = 0; a < TD * TD; a++) CHECK_REL(P_s[a], P_h[a], 1e-11, 1.0, "NGVI precision");
}

static void test_gflow_k1_is_bbvi(void) {
  double mu_s[TD], P_s[TD * TD], mu_h[TD], P_h[TD * TD];
  one_step("gflow", mu_s, P_s, mu_h, P_h);
  for (int a = 0; a < TD; a++) CHECK_REL(mu_s[a], mu_h[a], 1e-11, 1.0, "BBVI mean");
  for (int a = 0; a < TD * TD; a++) CHECK_REL(P_s[a], P_h[a], 1e-10, 1.0, "BBVI precision");
}

/* The two estimators agree in expectation: on the Gaussian target with K = 1 the Hessian
 * estimator is exact (A - P), and Stein's estimate from many samples must approach it
 * within its Monte Carlo error (about 4 sd / sqrt(S) per entry here). */
static void test_stein_estimator_agrees_with_hessian(void) {
  const size_t d = TD, S = 200000;
  double mu[TD] = {0.3, 0.1, -0.2}, P[TD * TD] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  double *z = malloc(S * d * sizeof(double)), *gl = malloc(S * d * sizeof(double));
  double *gb = malloc(S * d * sizeof(double)), *lp = malloc(S * sizeof(double));
  double *work = malloc(gfv_estimator_work_size(d, S) * sizeof(double));
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gfv_rng_gaussian_fill(r, S * d, z);
  for (size_t i = 0; i < S; i++)
    for (size_t a = 0; a < d; a++) {
      z[i * d + a] += mu[a];
      gb[i * d + a] = -(z[i * d + a] - mu[a]);
    }
  gauss_eval(&test_target, S, z, lp, gl, NULL);
  gfv_particle_samples ps = {d, S, mu, P, z, gl, NULL, gb, NULL};
  double gh[TD], G[TD * TD];
  gfv_estimator_stein.estimate(&ps, gh, G, work);
  for (size_t t = 0; t < d * d; t++)
    CHECK_NEAR(G[t], tgt_A[t] - P[t], 4 * 2.0 / sqrt((double)S) * 3, "Stein G vs A - P");
  gsl_rng_free(r);
  free(z), free(gl), free(gb), free(lp), free(work);
}

/* ---- the factored products against the formulas, at a size where they are used -------- */

#define FD 40

/* A random symmetric positive definite d x d matrix with eigenvalues spread over [0.1, 10]
 * (B B^T / d + 0.1 I with a scaled B), and a random symmetric indefinite one. */
static void random_spd(gsl_rng *r, size_t d, double *A) {
  double *B = malloc(d * d * sizeof(double));
  gfv_rng_gaussian_fill(r, d * d, B);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)d, 3.0 / (double)d, B,
              (int)d, B, (int)d, 0.0, A, (int)d);
  for (size_t i = 0; i < d; i++) A[i * d + i] += 0.1;
  free(B);
}

static void random_sym(gsl_rng *r, size_t d, double *G) {
  gfv_rng_gaussian_fill(r, d * d, G);
  gfv_symmetrize(d, G);
}

static double rel_frob(size_t n, const double *a, const double *b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return sqrt(num / den);
}

/* X (d x d) times Y, general product: C = alpha X Y + beta C. */
static void gemm(size_t d, double alpha, const double *X, const double *Y, double beta, double *C) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d, alpha, X, (int)d, Y,
              (int)d, beta, C, (int)d);
}

static void inverse_spd(size_t d, const double *A, double *inv) {
  memcpy(inv, A, d * d * sizeof(double));
  LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (int)d, inv, (int)d);
  LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', (int)d, inv, (int)d);
  gfv_fill_upper_from_lower(d, inv);
}

/* NGFlow-VI: P' = P + eta G + eta^2/2 G P^{-1} G; GFlow-VI: Sigma' = Sigma - eta G/2 +
 * eta^2/8 G P G, P' = Sigma'^{-1}.  Rounding of 40 x 40 products of entries of order 1 to
 * 10 with a condition number near 100 is about 1e-14 relative; 1e-10 leaves room for the
 * conditioning of the inverses without admitting a wrong term (each is >= 1e-3 of P'). */
static void test_factored_updates_match_formulas(void) {
  const size_t d = FD;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 7);
  double *P = malloc(d * d * sizeof(double)), *L = malloc(d * d * sizeof(double));
  double *G = malloc(d * d * sizeof(double)), *Sig = malloc(d * d * sizeof(double));
  double *ref = malloc(d * d * sizeof(double)), *T = malloc(d * d * sizeof(double));
  double *P2 = malloc(d * d * sizeof(double)), *L2 = malloc(d * d * sizeof(double));
  double *work = malloc(gfv_flow_work_size(d) * sizeof(double));
  double mu[FD] = {0}, gh[FD] = {0}, mu2[FD];
  random_spd(r, d, P);
  random_sym(r, d, G);
  memcpy(L, P, d * d * sizeof(double));
  gfv_chol(d, L);
  inverse_spd(d, P, Sig);
  const double etas[3] = {0.05, 1.0, 10.0};
  for (int e = 0; e < 3; e++) {
    const double eta = etas[e];
    gfv_step_info info;
    /* NGFlow-VI */
    memcpy(ref, P, d * d * sizeof(double));
    cblas_daxpy((int)(d * d), eta, G, 1, ref, 1);
    gemm(d, 1.0, Sig, G, 0.0, T);
    gemm(d, 0.5 * eta * eta, G, T, 1.0, ref);
    CHECK(!gfv_flow_ngflow.update(d, mu, P, L, gh, G, eta, 0, mu2, P2, L2, work, &info),
          "ngflow update failed at eta %g", eta);
    double err = rel_frob(d * d, P2, ref);
    CHECK(err < 1e-10, "ngflow P' differs from the formula by %.3g (relative) at eta %g", err, eta);
    /* GFlow-VI, compared in Sigma' = P'^{-1} */
    memcpy(ref, Sig, d * d * sizeof(double));
    cblas_daxpy((int)(d * d), -0.5 * eta, G, 1, ref, 1);
    gemm(d, 1.0, P, G, 0.0, T);
    gemm(d, 0.125 * eta * eta, G, T, 1.0, ref);
    CHECK(!gfv_flow_gflow.update(d, mu, P, L, gh, G, eta, 0, mu2, P2, L2, work, &info),
          "gflow update failed at eta %g", eta);
    inverse_spd(d, P2, T);
    err = rel_frob(d * d, T, ref);
    CHECK(err < 1e-10, "gflow Sigma' differs from the formula by %.3g (relative) at eta %g", err,
          eta);
  }
  gsl_rng_free(r);
  free(P), free(L), free(G), free(Sig), free(ref), free(T), free(P2), free(L2), free(work);
}

/* Stein's G = sym(P (1/S) Zc^T Gh) through both orders of the products: S < d takes
 * (Zc P)^T Gh, S >= d forms the d x d middle first.  Both against the formula. */
static void test_stein_orders_match_formula(void) {
  const size_t d = FD, sizes[2] = {7, 60};
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 11);
  double *P = malloc(d * d * sizeof(double)), *M = malloc(d * d * sizeof(double));
  double *ref = malloc(d * d * sizeof(double)), *G = malloc(d * d * sizeof(double));
  double mu[FD], gh[FD];
  random_spd(r, d, P);
  gfv_rng_gaussian_fill(r, d, mu);
  for (int k = 0; k < 2; k++) {
    const size_t S = sizes[k];
    double *z = malloc(S * d * sizeof(double)), *gl = malloc(S * d * sizeof(double));
    double *gb = malloc(S * d * sizeof(double));
    double *work = malloc(gfv_estimator_work_size(d, S) * sizeof(double));
    gfv_rng_gaussian_fill(r, S * d, z);
    gfv_rng_gaussian_fill(r, S * d, gl);
    gfv_rng_gaussian_fill(r, S * d, gb);
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) {
        double m = 0;
        for (size_t i = 0; i < S; i++) m += (z[i * d + a] - mu[a]) * (gb[i * d + b] - gl[i * d + b]);
        M[a * d + b] = m / (double)S;
      }
    gemm(d, 1.0, P, M, 0.0, ref);
    gfv_symmetrize(d, ref);
    gfv_particle_samples ps = {d, S, mu, P, z, gl, NULL, gb, NULL};
    gfv_estimator_stein.estimate(&ps, gh, G, work);
    double err = rel_frob(d * d, G, ref);
    CHECK(err < 1e-12, "Stein G with S = %zu differs from the formula by %.3g (relative)", S, err);
    free(z), free(gl), free(gb), free(work);
  }
  gsl_rng_free(r);
  free(P), free(M), free(ref), free(G);
}

int main(void) {
  RUN(test_retraction_keeps_definiteness_plain_does_not);
  RUN(test_ngflow_k1_is_variational_online_newton);
  RUN(test_gflow_k1_is_bbvi);
  RUN(test_stein_estimator_agrees_with_hessian);
  RUN(test_factored_updates_match_formulas);
  RUN(test_stein_orders_match_formula);
  return harness_report();
}
