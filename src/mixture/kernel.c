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

/* The block sizes of a workspace (set in w) and the element count of each buffer, in the
 * order of buffers(): the one description behind gfv_mix_work_alloc and gfv_mix_work_bytes. */
enum { NBUF = 10 };
static void layout(gfv_mix_work *w, size_t d, size_t k, size_t group, size_t *n) {
  w->d = d;
  w->kmax = k;
  w->group = group;
  size_t per_point = k * d * sizeof(double);
  size_t groups = GFV_MIX_BLOCK_BYTES / (per_point * group);
  if (groups < 1) groups = 1;
  w->chunk = groups * group;
  const size_t mq = d * (d + 1) / 2 + d + 1;
  w->chunk_a = GFV_MIX_BLOCK_BYTES / (mq * sizeof(double));
  if (w->chunk_a < 1) w->chunk_a = 1;
  /* The -sum r P DGEMM waits for this many groups, so that it has enough rows to run at
   * the DGEMM rate (it reads all k P_j once per call). */
  w->cwcap = groups < 256 ? 256 : groups;
  const size_t counts[NBUF] = {d * k * d,  k * d, w->chunk * k * d, w->cwcap * k, w->chunk_a * mq,
                               mq * k,     d,     d,                w->chunk * k, w->chunk};
  memcpy(n, counts, sizeof counts);
}

static void buffers(gfv_mix_work *w, double ***b) {
  double **p[NBUF] = {&w->Pcat, &w->b, &w->buf, &w->cw, &w->F, &w->W, &w->mtmp, &w->center,
                      &w->A_eval, &w->lse_eval};
  memcpy(b, p, sizeof p);
}

static const gfv_mix_plan full_plan = {NBUF, layout, buffers};

int gfv_mix_work_make(const gfv_mix_plan *plan, size_t d, size_t k, size_t group,
                      gfv_mix_work **out) {
  GFV_CHECK(d >= 1 && group >= 1, GFV_ERR_INTERNAL, "mixture workspace: d=%zu group=%zu", d, group);
  gfv_mix_work *w;
  GFV_ALLOC(w, 1);
  size_t n[GFV_MIX_MAXBUF];
  double **b[GFV_MIX_MAXBUF];
  plan->layout(w, d, k ? k : 1, group, n);
  plan->buffers(w, b);
  int st = GFV_OK;
  for (int i = 0; i < plan->nbuf; i++) GFV_CALL_GOTO(st, gfv_calloc(b[i], n[i], sizeof(double)), fail);
  *out = w;
  return GFV_OK;
fail:
  gfv_mix_work_free(w);
  return st;
}

int gfv_mix_work_alloc(size_t d, size_t k, size_t group, gfv_mix_work **out) {
  return gfv_mix_work_make(&full_plan, d, k, group, out);
}

double gfv_mix_work_bytes(size_t d, size_t k, size_t group, int diag) {
  const gfv_mix_plan *plan = diag ? &gfv_mixd_plan : &full_plan;
  gfv_mix_work w;
  size_t n[GFV_MIX_MAXBUF];
  plan->layout(&w, d, k ? k : 1, group ? group : 1, n);
  double bytes = sizeof w;
  for (int i = 0; i < plan->nbuf; i++) bytes += (double)n[i] * sizeof(double);
  return bytes;
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
  free(w->F), free(w->W), free(w->mtmp);
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

/* Phase A's coefficients.  With y = z - c and m_j = mu_j - c (c: the mean of the means,
 * so that the expanded square loses no accuracy to a common offset),
 *   log(w_j N_j(z)) = logc_j - 1/2 (y - m_j)^T P_j (y - m_j)
 *                   = [vech(y y^T), y, 1] . [-P_j/2 on the diagonal, -P_j off it;  P_j m_j;
 *                                            logc_j - m_j^T P_j m_j / 2],
 * so all a_ij of a block are one DGEMM (c x mq) (mq x k), mq = d(d+1)/2 + d + 1. */
void gfv_mix_quad_coefs(const gfv_mix_view *m, size_t j0, size_t k, const double *center, double *W,
                        double *bm, double *mtmp) {
  const size_t d = m->d;
  for (size_t j = 0; j < k; j++) {
    const double *P = m->P + (j0 + j) * d * d, *mu = m->mu + (j0 + j) * d;
    for (size_t t = 0; t < d; t++) mtmp[t] = mu[t] - center[t];
    cblas_dsymv(CblasRowMajor, CblasLower, (int)d, 1.0, P, (int)d, mtmp, 1, 0.0, bm, 1);
    size_t q = 0;
    for (size_t a = 0; a < d; a++)
      for (size_t c = a; c < d; c++) W[(q++) * k + j] = (a == c ? -0.5 : -1.0) * P[a * d + c];
    double mpm = 0.0;
    for (size_t a = 0; a < d; a++) {
      W[(q++) * k + j] = bm[a];
      mpm += mtmp[a] * bm[a];
    }
    W[q * k + j] = m->logc[j0 + j] - 0.5 * mpm;
  }
}

void gfv_mix_quad_row(size_t d, const double *z, const double *center, double *F) {
  const size_t mq = d * (d + 1) / 2 + d + 1;
  double *y = F + mq - d - 1;
  for (size_t t = 0; t < d; t++) y[t] = z[t] - center[t];
  size_t q = 0;
  for (size_t a = 0; a < d; a++)
    for (size_t b = a; b < d; b++) F[q++] = y[a] * y[b];
  F[mq - 1] = 1.0;
}

static int prepare_quad(const gfv_mix_view *m, gfv_mix_work *w) {
  const size_t d = m->d, k = m->k;
  GFV_CHECK(d == w->d && k <= w->kmax && !w->diag, GFV_ERR_INTERNAL,
            "mixture workspace for d=%zu k<=%zu used with d=%zu k=%zu", w->d, w->kmax, d, k);
  for (size_t t = 0; t < d; t++) {
    double s = 0.0;
    for (size_t j = 0; j < k; j++) s += m->mu[j * d + t];
    w->center[t] = s / (double)k;
  }
  /* b holds P_j m_j meanwhile; prepare() restores P_j mu_j for phase B. */
  gfv_mix_quad_coefs(m, 0, k, w->center, w->W, w->b, w->mtmp);
  return GFV_OK;
}

static void log_terms_prepared(const gfv_mix_view *m, size_t n, const double *z, double *A,
                               double *lse, gfv_mix_work *w);

int gfv_mix_log_terms(const gfv_mix_view *m, size_t n, const double *z, double *A, double *lse,
                      gfv_mix_work *w) {
  if (m->rank) return gfv_mixl_log_terms(m, n, z, A, lse);
  if (m->diag) return gfv_mixd_log_terms(m, n, z, A, lse, w);
  const size_t k = m->k;
  if (k == 0) {
    for (size_t i = 0; i < n; i++) lse[i] = -INFINITY;
    return GFV_OK;
  }
  GFV_CALL(prepare_quad(m, w));
  log_terms_prepared(m, n, z, A, lse, w);
  return GFV_OK;
}

/* gfv_mix_log_terms once prepare_quad has run for m (its W and centre are in w). */
static void log_terms_prepared(const gfv_mix_view *m, size_t n, const double *z, double *A,
                               double *lse, gfv_mix_work *w) {
  const size_t d = m->d, k = m->k, mq = d * (d + 1) / 2 + d + 1;
  for (size_t i0 = 0; i0 < n; i0 += w->chunk_a) {
    size_t c = n - i0 < w->chunk_a ? n - i0 : w->chunk_a;
    for (size_t i = 0; i < c; i++) gfv_mix_quad_row(d, z + (i0 + i) * d, w->center, w->F + i * mq);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)k, (int)mq, 1.0, w->F, (int)mq,
                w->W, (int)k, 0.0, A + i0 * k, (int)k);
    for (size_t i = 0; i < c; i++) lse[i0 + i] = gfv_logsumexp(k, A + (i0 + i) * k, 1);
  }
}

/* H_g -= sum_j cw_gj P_j for g < ng: one DGEMM (ng x k)(k x d^2), with many groups at
 * once, since it reads all k P_j per call. */
static void flush_p_part(const gfv_mix_view *m, size_t ng, const double *cw, double *H) {
  const int k = (int)m->k, dd = (int)(m->d * m->d);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ng, dd, k, -1.0, cw, k, m->P, dd, 1.0, H,
              dd);
}

int gfv_mix_grad_terms(const gfv_mix_view *m, size_t n, const double *z, const double *A,
                       const double *logq, size_t group, double *gbar, double *H, gfv_mix_work *w) {
  if (m->rank) return gfv_mixl_grad_terms(m, n, z, A, logq, gbar, H);
  if (m->diag) return gfv_mixd_grad_terms(m, n, z, A, logq, group, gbar, H, w);
  const size_t d = m->d, k = m->k;
  GFV_CHECK(group == w->group && n % group == 0, GFV_ERR_INTERNAL,
            "mixture phase B: %zu points in groups of %zu (workspace %zu)", n, group, w->group);
  if (k == 0) return GFV_OK;
  GFV_CALL(prepare(m, w));
  const size_t dd = d * d;
  size_t pend0 = 0, npend = 0; /* groups whose -sum r P part is still to be added */
  for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    size_t ngroups = c / group;
    block_products(m, c, z + i0 * d, w);
    if (H && npend + ngroups > w->cwcap) {
      flush_p_part(m, npend, w->cw, H + pend0 * dd);
      pend0 += npend, npend = 0;
    }
    double *cwb = w->cw + npend * k;
    if (H) memset(cwb, 0, ngroups * k * sizeof(double));
    for (size_t i = 0; i < c; i++) {
      const double *Ai = A + (i0 + i) * k;
      double lq = logq[i0 + i];
      double *gi = gbar + (i0 + i) * d;
      double *cwi = cwb + (i / group) * k;
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
    /* DSYRK updated only the lower triangle; the -sum r P part, symmetric, comes later. */
    for (size_t g = 0; g < ngroups; g++) gfv_fill_upper_from_lower(d, Hb + g * dd);
    npend += ngroups;
  }
  if (H && npend) flush_p_part(m, npend, w->cw, H + pend0 * dd);
  return GFV_OK;
}

int gfv_mix_eval(const gfv_mix_view *m, size_t n, const double *z, double *logq, double *grad,
                 double *hess, gfv_mix_work *w) {
  if (m->rank) return gfv_mixl_eval(m, n, z, logq, grad, hess, w);
  if (m->diag) return gfv_mixd_eval(m, n, z, logq, grad, hess, w);
  const size_t d = m->d, dd = d * d;
  GFV_CHECK(w->group == 1, GFV_ERR_INTERNAL, "gfv_mix_eval needs a workspace with group 1");
  if (!grad && !hess && m->k > 0) {
    /* log q only: the O(k d^2) coefficients once, not once per chunk of points (a chunk is
     * a few points when k is large: K = 65,536 at d = 2 gives 4). */
    GFV_CALL(prepare_quad(m, w));
    for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
      size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
      log_terms_prepared(m, c, z + i0 * d, w->A_eval, w->lse_eval, w);
      memcpy(logq + i0, w->lse_eval, c * sizeof(double));
    }
    return GFV_OK;
  }
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
