/* family_diag.c - the diagonal family (docs/method.md, section 1): P holds the precisions'
 * diagonals p (d numbers) and L their square roots; every matrix operation is elementwise. */
#include <math.h>

#include "mixture/family.h"

static size_t diag_psize(const gfv_family_type *f, size_t d) {
  (void)f;
  return d;
}

static void diag_init(const gfv_family_type *f, size_t d, double var, double *P, double *L) {
  (void)f;
  for (size_t t = 0; t < d; t++) {
    P[t] = 1.0 / var;
    L[t] = 1.0 / sqrt(var);
  }
}

static int diag_factor(const gfv_family_type *f, size_t d, const double *P, double *L) {
  (void)f;
  for (size_t a = 0; a < d; a++) {
    if (!(P[a] > 0)) return 1;
    L[a] = sqrt(P[a]);
  }
  return 0;
}

static int diag_from_precision(const gfv_family_type *f, size_t d, const double *Pd, double *P,
                               double *L) {
  (void)f;
  for (size_t a = 0; a < d; a++) P[a] = Pd[a * d + a], L[a] = sqrt(Pd[a * d + a]);
  return 0;
}

static void diag_log_const(const gfv_family_type *f, size_t d, size_t k, const double *logw,
                           const double *P, const double *L, double *logc) {
  (void)f, (void)L;
  gfv_mix_log_const_diag(d, k, logw, P, logc);
}

static void diag_transform(const gfv_family_type *f, size_t d, const double *mu, const double *L,
                           size_t S, double *z) {
  (void)f;
  for (size_t i = 0; i < S; i++) /* x = eps / sqrt(p), L holding sqrt(p) */
    for (size_t t = 0; t < d; t++) z[i * d + t] /= L[t];
  for (size_t i = 0; i < S; i++)
    for (size_t t = 0; t < d; t++) z[i * d + t] += mu[t];
}

static int diag_covariance(const gfv_family_type *f, size_t d, const double *P, const double *L,
                           double *cov) {
  (void)f, (void)L;
  for (size_t t = 0; t < d; t++) cov[t] = 1.0 / P[t];
  return 0;
}

static int diag_update(const gfv_family_type *f, const gfv_flow_type *flow, size_t d,
                       const double *mu, const double *P, const double *L, const double *gh,
                       const double *G, double eta, int plain, double *mu_out, double *P_out,
                       double *L_out, double *work, gfv_step_info *info) {
  (void)f, (void)L, (void)work;
  return flow->update_diag(d, mu, P, gh, G, eta, plain, mu_out, P_out, L_out, info);
}

static void diag_estimate(const gfv_family_type *f, const gfv_estimator_type *est,
                          const gfv_particle_samples *ps, double *gh, double *G, double *work) {
  (void)f, (void)work;
  est->estimate_diag(ps, gh, G);
}

static int diag_factor_is_sane(const gfv_family_type *f, size_t d, const double *L) {
  (void)f;
  return gfv_factor_is_sane(d, L, 1);
}

static double diag_kl(const gfv_family_type *f, size_t d, const double *mu1, const double *P1,
                      const double *L1, const double *mu0, const double *P0, const double *L0,
                      double *work, double *maha) {
  (void)f, (void)L1, (void)L0, (void)work;
  return gfv_kl_gauss_diag(d, mu1, P1, mu0, P0, maha);
}

static double diag_mahalanobis(const gfv_family_type *f, size_t d, const double *P, const double *L,
                               double *dm) {
  (void)f, (void)L;
  double m2 = 0.0;
  for (size_t t = 0; t < d; t++) m2 += P[t] * dm[t] * dm[t];
  return sqrt(m2);
}

static void diag_support_barrier(const gfv_family_type *f, size_t d, size_t n, const double *z,
                                 const double *mu, const double *P, double *m, double *gh,
                                 double *G, double *work) {
  (void)f, (void)work;
  for (size_t t = 0; t < d; t++) {
    double c = 0;
    for (size_t i = 0; i < n; i++) c += (z[i * d + t] - mu[t]) * (z[i * d + t] - mu[t]);
    c /= (double)n;
    gh[t] -= P[t] * m[t];
    G[t] += P[t] - P[t] * P[t] * c;
  }
}

static int diag_work_alloc(const gfv_family_type *f, size_t d, size_t k, size_t group,
                           gfv_mix_work **out) {
  (void)f;
  return gfv_mix_work_alloc_diag(d, k, group, out);
}

const gfv_family_type gfv_family_diag = {
    .name = "diag",
    .diag = 1,
    .psize = diag_psize,
    .init = diag_init,
    .factor = diag_factor,
    .from_precision = diag_from_precision,
    .log_const = diag_log_const,
    .transform = diag_transform,
    .covariance = diag_covariance,
    .work_alloc = diag_work_alloc,
    .update = diag_update,
    .estimate = diag_estimate,
    .factor_is_sane = diag_factor_is_sane,
    .kl = diag_kl,
    .mahalanobis = diag_mahalanobis,
    .support_barrier = diag_support_barrier,
    .csv_prefix = "var",
    .csv_pairs = 0,
    .h5_cov = "variances",
    .cov_rank = 1,
};
