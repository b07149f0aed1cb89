/* family_full.c - the full family: dense precisions P (d x d, both triangles stored) and
 * their lower Cholesky factors L, P = L L^T. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "linalg/linalg.h"
#include "mixture/family.h"

static size_t full_psize(const gfv_family_type *f, size_t d) {
  (void)f;
  return d * d;
}

static void full_init(const gfv_family_type *f, size_t d, double var, double *P, double *L) {
  (void)f;
  memset(P, 0, d * d * sizeof(double));
  memset(L, 0, d * d * sizeof(double));
  for (size_t t = 0; t < d; t++) {
    P[t * (d + 1)] = 1.0 / var;
    L[t * (d + 1)] = 1.0 / sqrt(var);
  }
}

static int full_factor(const gfv_family_type *f, size_t d, const double *P, double *L) {
  (void)f;
  memcpy(L, P, d * d * sizeof(double));
  return gfv_chol(d, L) != 0;
}

static int full_from_precision(const gfv_family_type *f, size_t d, const double *Pd, double *P,
                               double *L) {
  (void)f;
  memcpy(P, Pd, d * d * sizeof(double));
  memcpy(L, Pd, d * d * sizeof(double));
  return gfv_chol(d, L) != 0;
}

static void full_log_const(const gfv_family_type *f, size_t d, size_t k, const double *logw,
                           const double *P, const double *L, double *logc) {
  (void)f, (void)P;
  gfv_mix_log_const(d, k, logw, L, logc);
}

static void full_transform(const gfv_family_type *f, size_t d, const double *mu, const double *L,
                           size_t S, double *z) {
  (void)f;
  /* Rows x^T = eps^T L^{-1}, i.e. x = L^{-T} eps, has covariance (L L^T)^{-1} = Sigma. */
  cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (int)S, (int)d,
              1.0, L, (int)d, z, (int)d);
  for (size_t i = 0; i < S; i++)
    for (size_t t = 0; t < d; t++) z[i * d + t] += mu[t];
}

static int full_covariance(const gfv_family_type *f, size_t d, const double *P, const double *L,
                           double *cov) {
  (void)f, (void)P;
  return gfv_chol_inverse(d, L, cov) != 0;
}

static int full_update(const gfv_family_type *f, const gfv_flow_type *flow, size_t d,
                       const double *mu, const double *P, const double *L, const double *gh,
                       const double *G, double eta, int plain, double *mu_out, double *P_out,
                       double *L_out, double *work, gfv_step_info *info) {
  (void)f;
  return flow->update(d, mu, P, L, gh, G, eta, plain, mu_out, P_out, L_out, work, info);
}

static void full_estimate(const gfv_family_type *f, const gfv_estimator_type *est,
                          const gfv_particle_samples *ps, double *gh, double *G, double *work) {
  (void)f;
  est->estimate(ps, gh, G, work);
}

static int full_factor_is_sane(const gfv_family_type *f, size_t d, const double *L) {
  (void)f;
  return gfv_factor_is_sane(d, L, 0);
}

static double full_kl(const gfv_family_type *f, size_t d, const double *mu1, const double *P1,
                      const double *L1, const double *mu0, const double *P0, const double *L0,
                      double *work, double *maha) {
  (void)f, (void)P1, (void)P0;
  return gfv_kl_gauss(d, mu1, L1, mu0, L0, work, maha);
}

static double full_mahalanobis(const gfv_family_type *f, size_t d, const double *P, const double *L,
                               double *dm) {
  (void)f, (void)P;
  cblas_dtrmv(CblasRowMajor, CblasLower, CblasTrans, CblasNonUnit, (int)d, L, (int)d, dm, 1);
  return sqrt(cblas_ddot((int)d, dm, 1, dm, 1));
}

static void full_support_barrier(const gfv_family_type *f, size_t d, size_t n, const double *z,
                                 const double *mu, const double *P, double *m, double *gh,
                                 double *G, double *work) {
  (void)f;
  /* y_i = P (z_i - mu): gh -= mean y, G += P - mean y y^T (= P C P). */
  cblas_dsymv(CblasRowMajor, CblasLower, (int)d, -1.0, P, (int)d, m, 1, 1.0, gh, 1);
  for (size_t t = 0; t < d * d; t++) G[t] += P[t];
  for (size_t i = 0; i < n; i++) {
    for (size_t t = 0; t < d; t++) m[t] = z[i * d + t] - mu[t];
    cblas_dsymv(CblasRowMajor, CblasLower, (int)d, 1.0, P, (int)d, m, 1, 0.0, work, 1);
    cblas_dger(CblasRowMajor, (int)d, (int)d, -1.0 / (double)n, work, 1, work, 1, G, (int)d);
  }
}

static int full_work_alloc(const gfv_family_type *f, size_t d, size_t k, size_t group,
                           gfv_mix_work **out) {
  (void)f;
  return gfv_mix_work_alloc(d, k, group, out);
}

const gfv_family_type gfv_family_full = {
    .name = "full",
    .diag = 0,
    .psize = full_psize,
    .init = full_init,
    .factor = full_factor,
    .from_precision = full_from_precision,
    .log_const = full_log_const,
    .transform = full_transform,
    .covariance = full_covariance,
    .work_alloc = full_work_alloc,
    .update = full_update,
    .estimate = full_estimate,
    .factor_is_sane = full_factor_is_sane,
    .kl = full_kl,
    .mahalanobis = full_mahalanobis,
    .support_barrier = full_support_barrier,
    .csv_prefix = "cov",
    .csv_pairs = 1,
    .h5_cov = "covariances",
    .cov_rank = 2,
};
