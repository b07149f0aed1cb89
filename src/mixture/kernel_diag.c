/* kernel_diag.c - the mixture kernel for the diagonal family (docs/method.md, section 1).
 *
 * With diagonal precisions p_j every quantity is a sum over coordinates, so the k x n
 * component-point work is O(k n d) and is written as GEMMs against per-component
 * coefficient rows.  All coordinates are first shifted by a common centre c (the mean of
 * the view's means): the results do not change, but the expanded squares
 *   (z - mu)^2 = y^2 - 2 y m + m^2,   y = z - c,  m = mu - c
 * then lose no accuracy to a large common offset.
 *   phase A:  maha_ij = sum_t p_jt (y_it - m_jt)^2 = [y^2, y]_i . [p_j; -2 p_j m_j] + sum p m^2
 *   phase B:  with R = (r_ij),  R [p | p m | p^2 | p^2 m | p^2 m^2]  gives per point
 *     gbar  = sum_j r_j p_j (m_j - y)           = (R pm) - y (R p)
 *     Hdiag = sum_j r_j (g_j^2 - p_j)            = R p2m2 - 2 y R p2m + y^2 R p2 - R p */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "mixture/kernel_impl.h"

/* As kernel.c's layout(): block size and buffer counts, in the order of buffers(). */
enum { NBUF = 9 };
static void layout(gfv_mix_work *w, size_t d, size_t k, size_t group, size_t *n) {
  w->d = d, w->kmax = k, w->group = group, w->diag = 1;
  size_t per_point = (7 * d + 2 * k + 1) * sizeof(double);
  size_t groups = GFV_MIX_BLOCK_BYTES / (per_point * group);
  if (groups < 1) groups = 1;
  w->chunk = groups * group;
  /* b: sum_t p m^2 per component */
  const size_t counts[NBUF] = {w->chunk * 2 * d, 2 * d * k, k * 5 * d,    w->chunk * 5 * d, w->chunk * k,
                               d,                k,         w->chunk * k, w->chunk};
  memcpy(n, counts, sizeof counts);
}

static void buffers(gfv_mix_work *w, double ***b) {
  double **p[NBUF] = {&w->zaug,   &w->caug, &w->coef,   &w->out,     &w->R,
                      &w->center, &w->b,    &w->A_eval, &w->lse_eval};
  memcpy(b, p, sizeof p);
}

const gfv_mix_plan gfv_mixd_plan = {NBUF, layout, buffers};

int gfv_mix_work_alloc_diag(size_t d, size_t k, size_t group, gfv_mix_work **out) {
  return gfv_mix_work_make(&gfv_mixd_plan, d, k, group, out);
}

void gfv_mix_log_const_diag(size_t d, size_t k, const double *logw, const double *p, double *logc) {
  const double half_log_2pi = 0.5 * log(2.0 * M_PI);
  for (size_t j = 0; j < k; j++) {
    double s = 0.0;
    for (size_t t = 0; t < d; t++) s += log(p[j * d + t]);
    logc[j] = logw[j] + 0.5 * s - (double)d * half_log_2pi;
  }
}

/* The centre, and the coefficient tables of the view's components. */
static int prepare(const gfv_mix_view *m, gfv_mix_work *w) {
  const size_t d = m->d, k = m->k;
  GFV_CHECK(d == w->d && k <= w->kmax && w->diag, GFV_ERR_INTERNAL,
            "diagonal mixture workspace for d=%zu k<=%zu used with d=%zu k=%zu", w->d, w->kmax, d, k);
  for (size_t t = 0; t < d; t++) {
    double s = 0.0;
    for (size_t j = 0; j < k; j++) s += m->mu[j * d + t];
    w->center[t] = s / (double)k;
  }
  for (size_t j = 0; j < k; j++) {
    const double *p = m->P + j * d, *mu = m->mu + j * d;
    double *row = w->coef + j * 5 * d, c = 0.0;
    for (size_t t = 0; t < d; t++) {
      double mt = mu[t] - w->center[t], pt = p[t];
      w->caug[t * k + j] = pt;
      w->caug[(d + t) * k + j] = -2.0 * pt * mt;
      row[t] = pt;
      row[d + t] = pt * mt;
      row[2 * d + t] = pt * pt;
      row[3 * d + t] = pt * pt * mt;
      row[4 * d + t] = pt * pt * mt * mt;
      c += pt * mt * mt;
    }
    w->b[j] = c;
  }
  return GFV_OK;
}

/* zaug rows [y^2, y] for the c points at z, y = z - centre. */
static void shifted_points(size_t d, size_t c, const double *z, gfv_mix_work *w) {
  for (size_t i = 0; i < c; i++)
    for (size_t t = 0; t < d; t++) {
      double y = z[i * d + t] - w->center[t];
      w->zaug[i * 2 * d + t] = y * y;
      w->zaug[i * 2 * d + d + t] = y;
    }
}

int gfv_mixd_log_terms(const gfv_mix_view *m, size_t n, const double *z, double *A, double *lse,
                       gfv_mix_work *w) {
  const size_t d = m->d, k = m->k;
  if (k == 0) {
    for (size_t i = 0; i < n; i++) lse[i] = -INFINITY;
    return GFV_OK;
  }
  GFV_CALL(prepare(m, w));
  for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    shifted_points(d, c, z + i0 * d, w);
    double *Ab = A + i0 * k;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)k, (int)(2 * d), 1.0, w->zaug,
                (int)(2 * d), w->caug, (int)k, 0.0, Ab, (int)k);
    for (size_t i = 0; i < c; i++) {
      double *Ai = Ab + i * k;
      for (size_t j = 0; j < k; j++) {
        double maha = Ai[j] + w->b[j];
        Ai[j] = m->logc[j] - 0.5 * (maha > 0 ? maha : 0.0);
      }
      lse[i0 + i] = gfv_logsumexp(k, Ai, 1);
    }
  }
  return GFV_OK;
}

int gfv_mixd_grad_terms(const gfv_mix_view *m, size_t n, const double *z, const double *A,
                        const double *logq, size_t group, double *gbar, double *H, gfv_mix_work *w) {
  const size_t d = m->d, k = m->k, cols = H ? 5 * d : 2 * d;
  GFV_CHECK(group == w->group && n % group == 0, GFV_ERR_INTERNAL,
            "diagonal mixture phase B: %zu points in groups of %zu (workspace %zu)", n, group, w->group);
  if (k == 0) return GFV_OK;
  GFV_CALL(prepare(m, w));
  for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    for (size_t i = 0; i < c; i++) {
      double lq = logq[i0 + i];
      for (size_t j = 0; j < k; j++)
        w->R[i * k + j] = isfinite(lq) ? exp(A[(i0 + i) * k + j] - lq) : 0.0;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)cols, (int)k, 1.0, w->R,
                (int)k, w->coef, (int)(5 * d), 0.0, w->out, (int)(5 * d));
    for (size_t i = 0; i < c; i++) {
      const double *o = w->out + i * 5 * d, *zi = z + (i0 + i) * d;
      double *gi = gbar + (i0 + i) * d;
      double *Hg = H ? H + ((i0 + i) / group) * d : NULL;
      for (size_t t = 0; t < d; t++) {
        double y = zi[t] - w->center[t];
        gi[t] += o[d + t] - y * o[t];
        if (Hg) Hg[t] += o[4 * d + t] - 2.0 * y * o[3 * d + t] + y * y * o[2 * d + t] - o[t];
      }
    }
  }
  return GFV_OK;
}

int gfv_mixd_eval(const gfv_mix_view *m, size_t n, const double *z, double *logq, double *grad,
                  double *hess, gfv_mix_work *w) {
  const size_t d = m->d;
  GFV_CHECK(w->group == 1, GFV_ERR_INTERNAL, "gfv_mix_eval needs a workspace with group 1");
  GFV_CHECK(grad || !hess, GFV_ERR_INTERNAL, "gfv_mix_eval: the Hessian needs grad");
  for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    const double *zb = z + i0 * d;
    GFV_CALL(gfv_mixd_log_terms(m, c, zb, w->A_eval, w->lse_eval, w));
    memcpy(logq + i0, w->lse_eval, c * sizeof(double));
    if (!grad) continue;
    double *gb = grad + i0 * d, *hb = hess ? hess + i0 * d : NULL;
    memset(gb, 0, c * d * sizeof(double));
    if (hb) memset(hb, 0, c * d * sizeof(double));
    GFV_CALL(gfv_mixd_grad_terms(m, c, zb, w->A_eval, w->lse_eval, 1, gb, hb, w));
    if (hb) /* diagonal of H_logq = sum_j r_j (g_j^2 - p_j) - gbar^2 */
      for (size_t t = 0; t < c * d; t++) hb[t] -= gb[t] * gb[t];
  }
  return GFV_OK;
}
