/* gflow.c - GFlow-VI: the Euclidean-gradient particle update in (mu, Sigma)
 * (docs/method.md, section 2), with B = G / 2 the gradient of Phi in Sigma:
 *
 *   Sigma' = Sigma - eta B + (eta^2 / 2) B Sigma^{-1} B      (plain: Sigma - eta B)
 *   mu'    = mu - eta gh
 *
 * The same retraction as NGFlow-VI, now in Sigma-space, keeps Sigma' positive definite.
 * The state stays (mu, P, L), so Sigma' is inverted back.  The change is measured in
 * (mu, Sigma). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "flows/flow.h"
#include "linalg/linalg.h"

static int gflow_update(size_t d, const double *mu, const double *P, const double *L,
                        const double *gh, const double *G, double eta, int plain, double *mu_out,
                        double *P_out, double *L_out, double *work, gfv_step_info *info) {
  (void)P; /* the products use its factor L */
  const int n = (int)d;
  double *Sigma = work, *Snew = work + d * d, *T = work + 2 * d * d;
  if (gfv_chol_inverse(d, L, Sigma)) return 1;
  memcpy(Snew, Sigma, d * d * sizeof(double));
  cblas_daxpy(n * n, -0.5 * eta, G, 1, Snew, 1);
  if (!plain) {
    /* (eta^2/2) B P B with B = G/2, and G P G = W^T W with W = L^T G (P = L L^T): a
     * triangular product and a rank-d update of the lower triangle, 2 d^3 flops in place of
     * 4 d^3 for two general products. */
    memcpy(T, G, d * d * sizeof(double));
    cblas_dtrmm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, n, n, 1.0, L, n, T, n);
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, n, n, 0.125 * eta * eta, T, n, 1.0, Snew, n);
    gfv_fill_upper_from_lower(d, Snew);
  } else {
    gfv_symmetrize(d, Snew);
  }
  /* P' = Sigma'^{-1}: factor Sigma', invert, factor P'. */
  memcpy(T, Snew, d * d * sizeof(double));
  if (gfv_chol(d, T)) return 1;
  if (gfv_chol_inverse(d, T, P_out)) return 1;
  gfv_symmetrize(d, P_out);
  memcpy(L_out, P_out, d * d * sizeof(double));
  if (gfv_chol(d, L_out)) return 1;
  for (size_t i = 0; i < d; i++) mu_out[i] = mu[i] - eta * gh[i];
  info->step_sq = gfv_sqdist(d, mu_out, mu) + gfv_sqdist(d * d, Snew, Sigma);
  info->param_sq = cblas_ddot(n, mu_out, 1, mu_out, 1) + cblas_ddot(n * n, Snew, 1, Snew, 1);
  return 0;
}

/* Diagonal family: s' = s - eta b + eta^2/2 b^2 / s with s = 1/p, b = g/2, elementwise. */
static int gflow_update_diag(size_t d, const double *mu, const double *P, const double *gh,
                             const double *G, double eta, int plain, double *mu_out, double *P_out,
                             double *L_out, gfv_step_info *info) {
  info->step_sq = info->param_sq = 0.0;
  for (size_t t = 0; t < d; t++) {
    double s = 1.0 / P[t], b = 0.5 * G[t];
    double sn = s - eta * b + (plain ? 0.0 : 0.5 * eta * eta * b * b * P[t]);
    if (!(sn > 0) || !isfinite(sn)) return 1;
    P_out[t] = 1.0 / sn;
    L_out[t] = sqrt(P_out[t]);
    mu_out[t] = mu[t] - eta * gh[t];
    info->step_sq += (mu_out[t] - mu[t]) * (mu_out[t] - mu[t]) + (sn - s) * (sn - s);
    info->param_sq += mu_out[t] * mu_out[t] + sn * sn;
  }
  return 0;
}

const gfv_flow_type gfv_flow_gflow = {"gflow", "(mu, Sigma)", gflow_update, gflow_update_diag};
