/* gmm.c - Gaussian-mixture targets: "gmm4" and "gmm:FILE", both normalized, with Hessians.
 *
 * Both store their components exactly as the variational mixture does (mean, precision P,
 * its lower Cholesky factor L, and logc) and evaluate through gfv_mix_eval, so the target
 * and the approximation share one tested kernel and a fitted mixture.csv can be read back
 * as a target (the KL between a fit and its own output is then 0).
 *
 * gmm:FILE reads the mixture.csv layout: one row per component with columns
 *   weight, mu_1..mu_d, cov_1_1..cov_d_d (row-major),
 * so a row has 1 + d + d^2 columns, which fixes d.  Weights must be positive and are
 * normalised to sum 1 (a file of unnormalised weights is accepted: the target stays a
 * normalized density).  Each covariance must be finite, symmetric to a relative 1e-10
 * (rounding in a written file; it is then symmetrised) and positive definite. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "linalg/linalg.h"
#include "targets/targets_impl.h"

#define GMM_CHUNK 256 /* points per call when the caller wants a Hessian but no gradient */
#define GMM_MAX_SCALE 1e150 /* largest precision entry and P mu entry of a gmm:FILE component */

typedef struct {
  size_t d, k;
  double *mu, *P, *L, *logw, *logc; /* k x d, k x d x d, k x d x d, k, k */
  gfv_mix_work *work;               /* group 1, as gfv_mix_eval needs */
  double *gscratch;                 /* GMM_CHUNK x d: the gradient gfv_mix_eval needs for hess */
} gmm_ctx;

static void gmm_destroy(void *p) {
  gmm_ctx *c = p;
  if (!c) return;
  free(c->mu), free(c->P), free(c->L), free(c->logw), free(c->logc), free(c->gscratch);
  gfv_mix_work_free(c->work);
  free(c);
}

static gfv_mix_view gmm_view(const gmm_ctx *c) {
  gfv_mix_view v = {c->d, c->k, c->mu, c->P, c->L, c->logc, 0};
  return v;
}

/* work and gscratch are scratch reached through ctx, so a const target may use them (one
 * thread per process). */
static int gmm_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                    double *hess) {
  gmm_ctx *c = t->ctx;
  gfv_mix_view v = gmm_view(c);
  if (grad || !hess) {
    GFV_CALL(gfv_mix_eval(&v, n, z, logp, grad, hess, c->work));
    return GFV_OK;
  }
  const size_t d = c->d;
  for (size_t i0 = 0; i0 < n; i0 += GMM_CHUNK) {
    size_t nc = n - i0 < GMM_CHUNK ? n - i0 : GMM_CHUNK;
    GFV_CALL(gfv_mix_eval(&v, nc, z + i0 * d, logp + i0, c->gscratch, hess + i0 * d * d, c->work));
  }
  return GFV_OK;
}

/* A target with room for k components in d dimensions; the caller fills mu and P (the
 * covariance inverse) and w (weights, positive), then calls gmm_finish. */
static int gmm_alloc(const char *name, size_t d, size_t k, gfv_target **out) {
  gfv_target *t = NULL;
  gmm_ctx *c = NULL;
  int st = GFV_OK;
  *out = NULL;
  GFV_CALL(gfv_target_alloc(name, d, &t));
  t->has_hessian = 1;
  t->normalized = 1;
  t->eval = gmm_eval;
  t->destroy = gmm_destroy;
  GFV_CALL_GOTO(st, gfv_calloc(&c, 1, sizeof *c), fail);
  t->ctx = c;
  c->d = d, c->k = k;
  GFV_CALL_GOTO(st, gfv_calloc(&c->mu, k * d, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&c->P, k * d * d, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&c->L, k * d * d, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&c->logw, k, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&c->logc, k, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&c->gscratch, GMM_CHUNK * d, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_mix_work_alloc(d, k, 1, &c->work), fail);
  *out = t;
  return GFV_OK;
fail:
  gfv_target_free(t);
  return st;
}

/* From weights in logw (positive, not yet normalised) and precisions in P: the log-weights,
 * the Cholesky factors of P and logc.  what names the source in errors. */
static int gmm_finish(gfv_target *t, const char *what) {
  gmm_ctx *c = t->ctx;
  const size_t d = c->d, dd = d * d, k = c->k;
  /* Relative to the largest weight, so weights near DBL_MAX or DBL_MIN neither overflow
   * the sum nor lose their ratios. */
  double wmax = 0.0, wsum = 0.0;
  for (size_t j = 0; j < k; j++) wmax = fmax(wmax, c->logw[j]);
  for (size_t j = 0; j < k; j++) wsum += c->logw[j] / wmax;
  for (size_t j = 0; j < k; j++) c->logw[j] = log(c->logw[j]) - log(wmax) - log(wsum);
  for (size_t j = 0; j < k; j++) {
    memcpy(c->L + j * dd, c->P + j * dd, dd * sizeof(double));
    int info = gfv_chol(d, c->L + j * dd);
    GFV_CHECK(info == 0, GFV_ERR_INPUT,
              "%s: component %zu: the precision (inverse covariance) is not positive definite "
              "(covariance too ill-conditioned)", what, j + 1);
  }
  gfv_mix_log_const(d, k, c->logw, c->L, c->logc);
  return GFV_OK;
}

/* Plotting window of a 2-D mixture: the bounding box of the means +- 4 standard deviations. */
static void gmm_box(gfv_target *t, const double *cov) {
  const gmm_ctx *c = t->ctx;
  if (c->d != 2) return;
  t->has_box = 1;
  for (size_t a = 0; a < 2; a++) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < c->k; j++) {
      double sd = sqrt(cov[j * 4 + a * 2 + a]), m = c->mu[j * 2 + a];
      lo = fmin(lo, m - 4.0 * sd);
      hi = fmax(hi, m + 4.0 * sd);
    }
    t->box[2 * a] = lo, t->box[2 * a + 1] = hi;
  }
}

int gfv_target_gmm4_create(gfv_target **out) {
  static const double means[4][2] = {{-3, -3}, {-3, 3}, {3, -3}, {3, 3}};
  gfv_target *t;
  GFV_CALL(gmm_alloc("gmm4", 2, 4, &t));
  gmm_ctx *c = t->ctx;
  for (size_t j = 0; j < 4; j++) {
    c->mu[2 * j] = means[j][0], c->mu[2 * j + 1] = means[j][1];
    c->P[4 * j] = c->P[4 * j + 3] = 2.0; /* covariance 0.5 I */
    c->logw[j] = 1.0;
  }
  int st = gmm_finish(t, "gmm4");
  if (st) {
    gfv_target_free(t);
    GFV_CALL(st);
  }
  /* The documented window, symmetric and a little wider than the modes +- 4 sd (6.33). */
  t->has_box = 1;
  t->box[0] = t->box[2] = -6.5;
  t->box[1] = t->box[3] = 6.5;
  *out = t;
  return GFV_OK;
}

/* Checks row j of the table (weight, mean, covariance) and stores its weight, mean and
 * symmetrised covariance; the caller inverts the covariance. */
static int gmm_read_row(const char *path, const gfv_table *tab, size_t j, gmm_ctx *c, double *cov) {
  const size_t d = c->d;
  const double *row = tab->v + j * tab->cols, *S = row + 1 + d;
  GFV_CHECK(row[0] > 0.0, GFV_ERR_INPUT, "%s: component %zu (data row %zu): weight %g is not positive",
            path, j + 1, j + 1, row[0]);
  c->logw[j] = row[0];
  memcpy(c->mu + j * d, row + 1, d * sizeof(double));
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < a; b++) {
      double x = S[a * d + b], y = S[b * d + a];
      double scale = fmax(fmax(fabs(x), fabs(y)), sqrt(fabs(S[a * d + a] * S[b * d + b])));
      GFV_CHECK(fabs(x - y) <= 1e-10 * scale, GFV_ERR_INPUT,
                "%s: component %zu (data row %zu): covariance is not symmetric (entry %zu,%zu is %g, "
                "entry %zu,%zu is %g)", path, j + 1, j + 1, a + 1, b + 1, x, b + 1, a + 1, y);
    }
  memcpy(cov, S, d * d * sizeof(double));
  gfv_symmetrize(d, cov);
  return GFV_OK;
}

/* Covariance (row j) -> precision: Cholesky of the covariance (which tests definiteness),
 * then its inverse.  L is d x d scratch. */
static int gmm_precision(const char *path, size_t j, gmm_ctx *c, const double *cov, double *L) {
  const size_t d = c->d;
  memcpy(L, cov, d * d * sizeof(double));
  int info = gfv_chol(d, L);
  GFV_CHECK(info == 0, GFV_ERR_INPUT,
            "%s: component %zu (data row %zu): covariance is not positive definite", path, j + 1, j + 1);
  info = gfv_chol_inverse(d, L, c->P + j * d * d);
  GFV_CHECK(info == 0, GFV_ERR_INPUT,
            "%s: component %zu (data row %zu): cannot invert the covariance (LAPACK info %d)", path,
            j + 1, j + 1, info);
  /* The kernel forms P z and P mu (kernel.c): entries near DBL_MAX overflow there and turn
   * the density into NaN at every point, so a component whose precision or P mu exceeds
   * GMM_MAX_SCALE (a variance below about 1e-150) is refused here. */
  const double *P = c->P + j * d * d, *mu = c->mu + j * d;
  for (size_t a = 0; a < d; a++) {
    double pmu = 0.0, pmax = 0.0;
    for (size_t b = 0; b < d; b++) {
      pmu += P[a * d + b] * mu[b];
      pmax = fmax(pmax, fabs(P[a * d + b]));
    }
    GFV_CHECK(pmax <= GMM_MAX_SCALE && fabs(pmu) <= GMM_MAX_SCALE, GFV_ERR_INPUT,
              "%s: component %zu (data row %zu): covariance too small for its mean in double "
              "precision (precision entry %g, precision x mean %g; at most %g)",
              path, j + 1, j + 1, pmax, pmu, GMM_MAX_SCALE);
  }
  return GFV_OK;
}

/* The d with 1 + d + d^2 = cols, or 0. */
static size_t gmm_dim_of(size_t cols) {
  for (size_t d = 1; 1 + d + d * d <= cols; d++)
    if (1 + d + d * d == cols) return d;
  return 0;
}

int gfv_target_gmm_file_create(const char *path, gfv_target **out) {
  gfv_table tab;
  gfv_target *t = NULL;
  double *cov = NULL, *L = NULL;
  int st = GFV_OK;
  *out = NULL;
  GFV_CALL(gfv_table_read_csv(path, &tab));
  size_t d = gmm_dim_of(tab.cols), k = tab.rows;
  if (d == 0)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT,
                   "%s: %zu columns is not 1 + d + d*d for any d (expected weight, mean, covariance)",
                   path, tab.cols);
  GFV_CALL_GOTO(st, gmm_alloc("gmm", d, k, &t), done);
  GFV_CALL_GOTO(st, gfv_calloc(&cov, k * d * d, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&L, d * d, sizeof(double)), done);
  gmm_ctx *c = t->ctx;
  for (size_t j = 0; j < k; j++) {
    GFV_CALL_GOTO(st, gmm_read_row(path, &tab, j, c, cov + j * d * d), done);
    GFV_CALL_GOTO(st, gmm_precision(path, j, c, cov + j * d * d, L), done);
  }
  GFV_CALL_GOTO(st, gmm_finish(t, path), done);
  gmm_box(t, cov);
  *out = t;
  t = NULL;
done:
  gfv_target_free(t);
  gfv_table_free(&tab);
  free(cov), free(L);
  return st;
}

int gfv_target_gmm_view(const gfv_target *t, gfv_mix_view *view, const double **logw) {
  GFV_CHECK(t && t->eval == gmm_eval, GFV_ERR_INTERNAL, "not a gmm target");
  const gmm_ctx *c = t->ctx;
  *view = gmm_view(c);
  *logw = c->logw;
  return GFV_OK;
}
