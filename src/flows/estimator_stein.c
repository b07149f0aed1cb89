/* estimator_stein.c - the first-order (Bonnet / Stein's lemma) estimator of E_q[H_h]:
 *   E_q[H_h] = P E_q[(z - mu) grad h(z)^T]   (z ~ N(mu, P^{-1})),
 * estimated as sym(P (1/S) sum_s (z_s - mu) grad h(z_s)^T).  Needs gradients only, so it
 * serves models without a Hessian.   */
#include <cblas.h>

#include "flows/flow.h"
#include "linalg/linalg.h"

static void stein_estimate(const gfv_particle_samples *ps, double *gh, double *G, double *work) {
  const size_t d = ps->d, S = ps->S;
  const int n = (int)d, s = (int)S;
  double *Zc = work, *Gh = work + S * d;
  for (size_t t = 0; t < d; t++) gh[t] = 0.0;
  for (size_t i = 0; i < S; i++)
    for (size_t t = 0; t < d; t++) {
      Zc[i * d + t] = ps->z[i * d + t] - ps->mu[t];
      Gh[i * d + t] = ps->gbar[i * d + t] - ps->grad_l[i * d + t];
      gh[t] += Gh[i * d + t];
    }
  for (size_t t = 0; t < d; t++) gh[t] /= (double)S;
  /* G = P M with M = (1/S) Zc^T Gh.  With fewer samples than dimensions, G = (Zc P)^T Gh / S
   * costs 4 S d^2 in place of 2 S d^2 + 2 d^3 for P times the d x d M (at d = 753, S = 10
   * it was a quarter of a bnn iteration); otherwise M first.  The S x d product Zc P fits
   * in M's d x d space exactly when S <= d. */
  double *M = work + 2 * S * d;
  if (S < d) {
    cblas_dsymm(CblasRowMajor, CblasRight, CblasLower, s, n, 1.0, ps->P, n, Zc, n, 0.0, M, n);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, s, 1.0 / (double)S, M, n, Gh, n, 0.0,
                G, n);
  } else {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, s, 1.0 / (double)S, Zc, n, Gh, n, 0.0,
                M, n);
    cblas_dsymm(CblasRowMajor, CblasLeft, CblasLower, n, n, 1.0, ps->P, n, M, n, 0.0, G, n);
  }
  gfv_symmetrize(d, G);
}

/* Diagonal family: G_t = p_t mean_s((z_st - mu_t) grad h_st), the diagonal of Stein's form. */
static void stein_estimate_diag(const gfv_particle_samples *ps, double *gh, double *G) {
  const size_t d = ps->d, S = ps->S;
  for (size_t t = 0; t < d; t++) {
    double g = 0.0, m = 0.0;
    for (size_t i = 0; i < S; i++) {
      double v = ps->gbar[i * d + t] - ps->grad_l[i * d + t];
      g += v;
      m += (ps->z[i * d + t] - ps->mu[t]) * v;
    }
    gh[t] = g / (double)S;
    G[t] = ps->P[t] * m / (double)S;
  }
}

const gfv_estimator_type gfv_estimator_stein = {"stein", 0, stein_estimate, stein_estimate_diag};
