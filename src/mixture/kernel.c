/* kernel.c - every mixture component against a block of points (see mixture.h).
 *
 * Per block of c points, one DGEMM computes Z_c [P_1 P_2 ... P_k] (c x d times d x kd):
 * row i holds z_i^T P_j for every component j side by side.  Since
 *   g_j(z_i) = -P_j (z_i - mu_j) = P_j mu_j - P_j z_i,
 * the gradients of all components at all points of the block follow by subtracting the
 * precomputed b_j = P_j mu_j, and the Mahalanobis terms by m_ij = -(z_i - mu_j).g_j(z_i).
 * Written this way the O(k n d^2) work is a single level-3 call with a long inner shape
 * (k d columns) instead of k thin ones, which is what lets it run near the DGEMM rate.
 *
 * The block buffer is laid out [point i][component j][coordinate], so for a group of
 * consecutive points the scaled gradients sqrt(r_ij) g_j(z_i) of all (i, j) form one
 * contiguous (group * k) x d matrix: its Gram matrix, one DSYRK, is the sum of
 * r_ij g_j g_j^T over the group, the Hessian estimator's main term. */
#include "gflowvi/mixture.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "mixture/kernel_impl.h"

int gfv_mix_work_alloc(size_t d, size_t k, size_t group, gfv_mix_work **out) {
  GFV_CHECK(d >= 1 && group >= 1, GFV_ERR_INTERNAL, "mixture workspace: d=%zu group=%zu", d, group);
  if (k == 0) k = 1;
  gfv_mix_work *w;
  GFV_ALLOC(w, 1);
  w->d = d;
  w->kmax = k;
  w->group = group;
  size_t per_point = k * d * sizeof(double);
  size_t groups = GFV_MIX_BLOCK_BYTES / (per_point * group);
  if (groups < 1) groups = 1;
  w->chunk = groups * group;
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&w->Pcat, d * k * d, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&w->b, k * d, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&w->buf, w->chunk * k * d, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&w->cw, groups * k, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&w->A_eval, w->chunk * k, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&w->lse_eval, w->chunk, sizeof(double)), fail);
  *out = w;
  return GFV_OK;
fail:
  gfv_mix_work_free(w);
  return st;
}

void gfv_mix_work_free(gfv_mix_work *w) {
  if (!w) return;
  free(w->Pcat);
  free(w->b);
  free(w->buf);
  free(w->cw);
  free(w->A_eval);
  free(w->lse_eval);
  free(w->zaug), free(w->caug), free(w->coef), free(w->out), free(w->R), free(w->center);
  free(w);
}

void gfv_mix_log_const(size_t d, size_t k, const double *logw, const double *L, double *logc) {
  const double half_log_2pi = 0.5 * log(2.0 * M_PI);
  for (size_t j = 0; j < k; j++)
    logc[j] = logw[j] + gfv_chol_logdet_half(d, L + j * d * d) - (double)d * half_log_2pi;
}

/* Fills Pcat and b for the view's components. */
static int prepare(const gfv_mix_view *m, gfv_mix_work *w) {
  const size_t d = m->d, k = m->k;
  GFV_CHECK(d == w->d && k <= w->kmax && !w->diag, GFV_ERR_INTERNAL,
            "mixture workspace for d=%zu k<=%zu used with d=%zu k=%zu", w->d, w->kmax, d, k);
  for (size_t j = 0; j < k; j++) {
    const double *P = m->P + j * d * d;
    for (size_t r = 0; r < d; r++) memcpy(w->Pcat + r * k * d + j * d, P + r * d, d * sizeof(double));
    cblas_dsymv(CblasRowMajor, CblasLower, (int)d, 1.0, P, (int)d, m->mu + j * d, 1, 0.0,
                w->b + j * d, 1);
  }
  return GFV_OK;
}

/* buf (c x k x d) <- z_i^T P_j for the c points starting at z. */
static void block_products(const gfv_mix_view *m, size_t c, const double *z, gfv_mix_work *w) {
  const int d = (int)m->d, kd = (int)(m->k * m->d);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, kd, d, 1.0, z, d, w->Pcat, kd, 0.0,
              w->buf, kd);
}

int gfv_mix_log_terms(const gfv_mix_view *m, size_t n, const double *z, double *A, double *lse,
                      gfv_mix_work *w) {
  if (m->diag) return gfv_mixd_log_terms(m, n, z, A, lse, w);
  const size_t d = m->d, k = m->k;
  if (k == 0) {
    for (size_t i = 0; i < n; i++) lse[i] = -INFINITY;
    return GFV_OK;
  }
  GFV_CALL(prepare(m, w));
  for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    block_products(m, c, z + i0 * d, w);
    for (size_t i = 0; i < c; i++) {
      const double *zi = z + (i0 + i) * d;
      double *Ai = A + (i0 + i) * k;
      for (size_t j = 0; j < k; j++) {
        const double *row = w->buf + (i * k + j) * d, *bj = w->b + j * d, *mu = m->mu + j * d;
        double maha = 0.0; /* (z - mu)^T P (z - mu) = -(z - mu) . g */
        for (size_t t = 0; t < d; t++) maha += (zi[t] - mu[t]) * (row[t] - bj[t]);
        Ai[j] = m->logc[j] - 0.5 * maha;
      }
      lse[i0 + i] = gfv_logsumexp(k, Ai, 1);
    }
  }
  return GFV_OK;
}

int gfv_mix_grad_terms(const gfv_mix_view *m, size_t n, const double *z, const double *A,
                       const double *logq, size_t group, double *gbar, double *H, gfv_mix_work *w) {
  if (m->diag) return gfv_mixd_grad_terms(m, n, z, A, logq, group, gbar, H, w);
  const size_t d = m->d, k = m->k;
  GFV_CHECK(group == w->group && n % group == 0, GFV_ERR_INTERNAL,
            "mixture phase B: %zu points in groups of %zu (workspace %zu)", n, group, w->group);
  if (k == 0) return GFV_OK;
  GFV_CALL(prepare(m, w));
  const size_t dd = d * d;
  for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    size_t ngroups = c / group;
    block_products(m, c, z + i0 * d, w);
    if (H) memset(w->cw, 0, ngroups * k * sizeof(double));
    for (size_t i = 0; i < c; i++) {
      const double *Ai = A + (i0 + i) * k;
      double lq = logq[i0 + i];
      double *gi = gbar + (i0 + i) * d;
      double *cwi = w->cw + (i / group) * k;
      for (size_t j = 0; j < k; j++) {
        /* A point no component reaches (log q = -inf) has no responsibility anywhere. */
        double r = isfinite(lq) ? exp(Ai[j] - lq) : 0.0;
        double *row = w->buf + (i * k + j) * d;
        const double *bj = w->b + j * d;
        double sr = sqrt(r);
        for (size_t t = 0; t < d; t++) {
          double g = bj[t] - row[t];
          gi[t] += r * g;
          row[t] = sr * g;
        }
        if (H) cwi[j] += r;
      }
    }
    if (!H) continue;
    double *Hb = H + (i0 / group) * dd;
    for (size_t g = 0; g < ngroups; g++)
      cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)(group * k), 1.0,
                  w->buf + g * group * k * d, (int)d, 1.0, Hb + g * dd, (int)d);
    /* The -sum_j r_ij P_j part for all groups of the block at once: (groups x k)(k x d^2). */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ngroups, (int)dd, (int)k, -1.0, w->cw,
                (int)k, m->P, (int)dd, 1.0, Hb, (int)dd);
    /* DSYRK updated only the lower triangle; the lower triangle now holds the full sum. */
    for (size_t g = 0; g < ngroups; g++) gfv_fill_upper_from_lower(d, Hb + g * dd);
  }
  return GFV_OK;
}

int gfv_mix_eval(const gfv_mix_view *m, size_t n, const double *z, double *logq, double *grad,
                 double *hess, gfv_mix_work *w) {
  if (m->diag) return gfv_mixd_eval(m, n, z, logq, grad, hess, w);
  const size_t d = m->d, dd = d * d;
  GFV_CHECK(w->group == 1, GFV_ERR_INTERNAL, "gfv_mix_eval needs a workspace with group 1");
  for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    const double *zb = z + i0 * d;
    GFV_CALL(gfv_mix_log_terms(m, c, zb, w->A_eval, w->lse_eval, w));
    memcpy(logq + i0, w->lse_eval, c * sizeof(double));
    if (!grad && !hess) continue;
    /* The Hessian's -gbar gbar^T term needs the gradient, so hess requires grad. */
    GFV_CHECK(grad != NULL, GFV_ERR_INTERNAL, "gfv_mix_eval: the Hessian needs grad");
    double *gb = grad + i0 * d;
    memset(gb, 0, c * d * sizeof(double));
    double *hb = hess ? hess + i0 * dd : NULL;
    if (hb) memset(hb, 0, c * dd * sizeof(double));
    GFV_CALL(gfv_mix_grad_terms(m, c, zb, w->A_eval, w->lse_eval, 1, gb, hb, w));
    if (!hb) continue;
    for (size_t i = 0; i < c; i++) { /* H_logq = sum_j r_j (g_j g_j^T - P_j) - gbar gbar^T */
      cblas_dsyr(CblasRowMajor, CblasLower, (int)d, -1.0, gb + i * d, 1, hb + i * dd, (int)d);
      gfv_fill_upper_from_lower(d, hb + i * dd);
    }
  }
  return GFV_OK;
}
