/* ngflow.c - NGFlow-VI: the natural-gradient particle update (docs/method.md, section 2).
 *
 *   P'  = P + eta G + (eta^2 / 2) G P^{-1} G      (plain: P + eta G)
 *   mu' = mu - eta P'^{-1} gh
 *
 * The quadratic term makes P' = 1/2 P + 1/2 (P + eta G) P^{-1} (P + eta G), positive
 * definite for every eta and every estimate G, even when G is indefinite (always
 * possible once K > 1).  The change is measured in (mu, P). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "flows/flow.h"
#include "linalg/linalg.h"

static int ngflow_update(size_t d, const double *mu, const double *P, const double *L,
                         const double *gh, const double *G, double eta, int plain, double *mu_out,
                         double *P_out, double *L_out, double *work, gfv_step_info *info) {
  const int n = (int)d;
  double *W = work, *T = work + d * d;
  memcpy(P_out, P, d * d * sizeof(double));
  cblas_daxpy(n * n, eta, G, 1, P_out, 1);
  if (!plain) {
    /* G P^{-1} G = W^T W with W = L^{-1} G (P = L L^T, G symmetric): one triangular solve
     * and one rank-d update of the lower triangle, 2 d^3 flops, where forming P^{-1} and two
     * products took about 5 d^3 (the full family's cost per component at large d). */
    memcpy(W, G, d * d * sizeof(double));
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n, n, 1.0, L, n, W,
                n);
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, n, n, 0.5 * eta * eta, W, n, 1.0, P_out, n);
    gfv_fill_upper_from_lower(d, P_out);
  } else {
    gfv_symmetrize(d, P_out);
  }
  memcpy(L_out, P_out, d * d * sizeof(double));
  if (gfv_chol(d, L_out)) return 1;
  /* mu' = mu - eta P'^{-1} gh by two triangular solves with L'. */
  double *x = T;
  memcpy(x, gh, d * sizeof(double));
  cblas_dtrsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, n, L_out, n, x, 1);
  cblas_dtrsv(CblasRowMajor, CblasLower, CblasTrans, CblasNonUnit, n, L_out, n, x, 1);
  for (size_t i = 0; i < d; i++) mu_out[i] = mu[i] - eta * x[i];
  info->step_sq = gfv_sqdist(d, mu_out, mu) + gfv_sqdist(d * d, P_out, P);
  info->param_sq = cblas_ddot(n, mu_out, 1, mu_out, 1) + cblas_ddot(n * n, P_out, 1, P_out, 1);
  return 0;
}

/* Diagonal family: p' = p + eta g + eta^2/2 g^2 / p elementwise (positive for any g). */
static int ngflow_update_diag(size_t d, const double *mu, const double *P, const double *gh,
                              const double *G, double eta, int plain, double *mu_out, double *P_out,
                              double *L_out, gfv_step_info *info) {
  info->step_sq = info->param_sq = 0.0;
  for (size_t t = 0; t < d; t++) {
    double p = P[t] + eta * G[t] + (plain ? 0.0 : 0.5 * eta * eta * G[t] * G[t] / P[t]);
    if (!(p > 0) || !isfinite(p)) return 1;
    P_out[t] = p;
    L_out[t] = sqrt(p);
    mu_out[t] = mu[t] - eta * gh[t] / p;
    info->step_sq += (mu_out[t] - mu[t]) * (mu_out[t] - mu[t]) + (p - P[t]) * (p - P[t]);
    info->param_sq += mu_out[t] * mu_out[t] + p * p;
  }
  return 0;
}

const gfv_flow_type gfv_flow_ngflow = {"ngflow", "(mu, P)", ngflow_update, ngflow_update_diag};
