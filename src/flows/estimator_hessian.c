/* estimator_hessian.c - the Price estimator of E_q[H_h]: the average over the particle's
 * samples of H_h(z) = H_logq(z) - H_l(z), with
 *   H_logq(z) = sum_j r_j (g_j g_j^T - P_j) - gbar gbar^T.
 * The first sum arrives already summed over the samples (Hq, from the mixture kernel and
 * the reduce-scatter); the -gbar gbar^T terms are one DSYRK over the S samples. */
#include <cblas.h>
#include <string.h>

#include "flows/flow.h"
#include "linalg/linalg.h"

static void hessian_estimate(const gfv_particle_samples *ps, double *gh, double *G, double *work) {
  (void)work;
  const size_t d = ps->d, S = ps->S;
  const double inv_s = 1.0 / (double)S;
  for (size_t t = 0; t < d; t++) {
    double s = 0.0;
    for (size_t i = 0; i < S; i++) s += ps->gbar[i * d + t] - ps->grad_l[i * d + t];
    gh[t] = s * inv_s;
  }
  memcpy(G, ps->Hq, d * d * sizeof(double));
  cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)S, -1.0, ps->gbar, (int)d, 1.0, G,
              (int)d);
  gfv_fill_upper_from_lower(d, G);
  for (size_t i = 0; i < S; i++) cblas_daxpy((int)(d * d), -1.0, ps->hess_l + i * d * d, 1, G, 1);
  cblas_dscal((int)(d * d), inv_s, G, 1);
  gfv_symmetrize(d, G);
}

/* Diagonal family: G_t = mean_s (Hq_t - gbar_st^2 - H_l[s]_tt). */
static void hessian_estimate_diag(const gfv_particle_samples *ps, double *gh, double *G) {
  const size_t d = ps->d, S = ps->S;
  for (size_t t = 0; t < d; t++) {
    double g = 0.0, h = ps->Hq[t];
    for (size_t i = 0; i < S; i++) {
      double gb = ps->gbar[i * d + t];
      g += gb - ps->grad_l[i * d + t];
      h -= gb * gb + ps->hess_l[i * d * d + t * (d + 1)];
    }
    gh[t] = g / (double)S;
    G[t] = h / (double)S;
  }
}

const gfv_estimator_type gfv_estimator_hessian = {"hessian", 1, hessian_estimate, hessian_estimate_diag};
