/* kernel_lowrank.c - the mixture kernels for the diagonal plus rank-R family (views with
 * rank R > 0, family_lowrank.c): P_j = [D_j | U_j] (d + d R numbers), and for t = z - mu_j
 *   t^T Lambda_j t = sum D t^2 + |U^T t|^2,   g_j(z) = -Lambda_j t = -(D t + U (U^T t)),
 * so a (point, component) pair costs O(d R) and nothing d x d exists.  Plain loops: the
 * family serves large d with few components per point, where the pairs' O(d R) dominates
 * and there is no GEMM to form across components.  Phase B computes gbar only: the
 * Hessian sums H are refused (the family takes the stein estimator, which does not need
 * them).  The workspace is the diagonal family's (its phase-A result buffers and block
 * size serve gfv_mixl_eval; nothing else of it is used). */
#include <math.h>
#include <string.h>

#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "mixture/kernel_impl.h"

#define RMAX 32 /* GFV_LOWRANK_MAX */

/* -1/2 t^T Lambda t for t = z - mu, and (when g is not NULL) g += -resp Lambda t. */
static double pair_terms(size_t d, size_t R, const double *P, const double *mu, const double *z,
                         double resp, double *g) {
  const double *D = P, *U = P + d;
  double c[RMAX] = {0}, q = 0;
  for (size_t a = 0; a < d; a++) {
    const double t = z[a] - mu[a];
    q += D[a] * t * t;
    for (size_t r = 0; r < R; r++) c[r] += U[a * R + r] * t;
  }
  for (size_t r = 0; r < R; r++) q += c[r] * c[r];
  if (g)
    for (size_t a = 0; a < d; a++) {
      double v = D[a] * (z[a] - mu[a]);
      for (size_t r = 0; r < R; r++) v += U[a * R + r] * c[r];
      g[a] -= resp * v;
    }
  return -0.5 * q;
}

int gfv_mixl_log_terms(const gfv_mix_view *m, size_t n, const double *z, double *A, double *lse) {
  const size_t d = m->d, k = m->k, R = m->rank, ps = d + d * R;
  GFV_CHECK(R >= 1 && R <= RMAX, GFV_ERR_INTERNAL, "low-rank mixture view of rank %zu", R);
  for (size_t i = 0; i < n; i++) {
    double *Ai = A + i * k;
    for (size_t j = 0; j < k; j++)
      Ai[j] = m->logc[j] + pair_terms(d, R, m->P + j * ps, m->mu + j * d, z + i * d, 0, NULL);
    lse[i] = k ? gfv_logsumexp(k, Ai, 1) : -INFINITY;
  }
  return GFV_OK;
}

int gfv_mixl_grad_terms(const gfv_mix_view *m, size_t n, const double *z, const double *A,
                        const double *logq, double *gbar, double *H) {
  const size_t d = m->d, k = m->k, R = m->rank, ps = d + d * R;
  GFV_CHECK(H == NULL, GFV_ERR_INTERNAL,
            "the low-rank family's kernel has no Hessian sums (use --estimator=stein)");
  GFV_CHECK(R >= 1 && R <= RMAX, GFV_ERR_INTERNAL, "low-rank mixture view of rank %zu", R);
  for (size_t i = 0; i < n; i++) {
    const double lq = logq[i];
    if (!isfinite(lq)) continue; /* no component reaches the point: no responsibility */
    double *gi = gbar + i * d;
    for (size_t j = 0; j < k; j++) {
      const double r = exp(A[i * k + j] - lq);
      if (r == 0) continue;
      pair_terms(d, R, m->P + j * ps, m->mu + j * d, z + i * d, r, gi);
    }
  }
  return GFV_OK;
}

int gfv_mixl_eval(const gfv_mix_view *m, size_t n, const double *z, double *logq, double *grad,
                  double *hess, gfv_mix_work *w) {
  const size_t d = m->d;
  GFV_CHECK(w->group == 1, GFV_ERR_INTERNAL, "gfv_mix_eval needs a workspace with group 1");
  GFV_CHECK(hess == NULL, GFV_ERR_INTERNAL, "the low-rank family's kernel has no Hessian");
  for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    const double *zb = z + i0 * d;
    GFV_CALL(gfv_mixl_log_terms(m, c, zb, w->A_eval, w->lse_eval));
    memcpy(logq + i0, w->lse_eval, c * sizeof(double));
    if (!grad) continue;
    memset(grad + i0 * d, 0, c * d * sizeof(double));
    GFV_CALL(gfv_mixl_grad_terms(m, c, zb, w->A_eval, w->lse_eval, grad + i0 * d, NULL));
  }
  return GFV_OK;
}
