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
 * (rounding in a written file; it is then symmetrised) and positive definite.
 *
 * The reader, gfv_mixture_file_read, also serves the warm start (--init=FILE): there d is
 * known, and the diagonal family's layout, weight, mu_1..mu_d, var_1..var_d (1 + 2d
 * columns), is read too, kept as variances (never expanded to d x d).  A header naming
 * var_ or cov_ columns decides the layout where the column count alone could not
 * (1 + 2d = 1 + d' + d'^2 for d = 3, 6, 10, ...: a d' = 2 full file would otherwise pass
 * as a d = 3 diagonal one). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "linalg/linalg.h"
#include "targets/registry.h"
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
  gfv_mix_view v = {c->d, c->k, c->mu, c->P, c->L, c->logc, 0, 0};
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

/* In place: k positive weights, not yet normalised, -> normalised log-weights.  Relative
 * to the largest weight, so weights near DBL_MAX or DBL_MIN neither overflow the sum nor
 * lose their ratios. */
static void gmm_log_weights(size_t k, double *w) {
  double wmax = 0.0, wsum = 0.0;
  for (size_t j = 0; j < k; j++) wmax = fmax(wmax, w[j]);
  for (size_t j = 0; j < k; j++) wsum += w[j] / wmax;
  for (size_t j = 0; j < k; j++) w[j] = log(w[j]) - log(wmax) - log(wsum);
}

/* L <- the Cholesky factors of the k precisions P (k x d x d each).  what names the source. */
static int gmm_chol_all(size_t d, size_t k, const double *P, double *L, const char *what) {
  const size_t dd = d * d;
  for (size_t j = 0; j < k; j++) {
    memcpy(L + j * dd, P + j * dd, dd * sizeof(double));
    int info = gfv_chol(d, L + j * dd);
    GFV_CHECK(info == 0, GFV_ERR_INPUT,
              "%s: component %zu: the precision (inverse covariance) is not positive definite "
              "(covariance too ill-conditioned)", what, j + 1);
  }
  return GFV_OK;
}

/* From weights in logw (positive, not yet normalised) and precisions in P: the log-weights,
 * the Cholesky factors of P and logc.  what names the source in errors. */
static int gmm_finish(gfv_target *t, const char *what) {
  gmm_ctx *c = t->ctx;
  gmm_log_weights(c->k, c->logw);
  GFV_CALL(gmm_chol_all(c->d, c->k, c->P, c->L, what));
  gfv_mix_log_const(c->d, c->k, c->logw, c->L, c->logc);
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

/* Checks row j of the table (weight, mean, covariance or variances) and stores its weight,
 * mean and symmetrised covariance (or variances); the caller inverts the covariance. */
static int gmm_read_row(const char *path, const gfv_table *tab, size_t j, gfv_mixture_file *m) {
  const size_t d = m->d, cs = m->diag ? d : d * d;
  const double *row = tab->v + j * tab->cols, *S = row + 1 + d;
  double *cov = m->cov + j * cs;
  GFV_CHECK(row[0] > 0.0, GFV_ERR_INPUT, "%s: component %zu (data row %zu): weight %g is not positive",
            path, j + 1, j + 1, row[0]);
  m->logw[j] = row[0];
  memcpy(m->mu + j * d, row + 1, d * sizeof(double));
  if (m->diag) { /* variances; the same limit as gmm_precision puts on precisions */
    for (size_t a = 0; a < d; a++)
      GFV_CHECK(S[a] > 0.0 && 1.0 / S[a] <= GMM_MAX_SCALE && fabs(row[1 + a] / S[a]) <= GMM_MAX_SCALE,
                GFV_ERR_INPUT,
                "%s: component %zu (data row %zu): variance %zu is %g: not positive, or too small "
                "for its mean in double precision", path, j + 1, j + 1, a + 1, S[a]);
    memcpy(cov, S, d * sizeof(double));
    return GFV_OK;
  }
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
static int gmm_precision(const char *path, size_t j, gfv_mixture_file *c, double *L) {
  const size_t d = c->d;
  const double *cov = c->cov + j * d * d;
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

/* The layout a header names: 1 for var_ columns (diagonal), 0 for cov_ columns, -1 when
 * it names neither (the column count decides).  The header is the first line that is
 * neither blank nor a '#' comment, as in gfv_table_read_csv. */
static int gmm_header_layout(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int layout = -1;
  /* gfv_read_line: getline never returned on /dev/zero.  A NUL byte is no header: the
   * CSV reader then refuses the file. */
  while (gfv_read_line(f, &line, &cap, &len, "", path, 0) == GFV_OK && len >= 0) {
    if (memchr(line, '\0', (size_t)len)) break;
    const char *p = line + strspn(line, " \t");
    if (*p == '\0' || *p == '\n' || *p == '\r' || *p == '#') continue;
    layout = strstr(p, "var_") ? 1 : strstr(p, "cov_") ? 0 : -1;
    break;
  }
  free(line);
  fclose(f);
  return layout;
}

/* *diag <- the layout of tab for dimension d (0 full, 1 variances), or fails. */
static int gmm_layout(const char *path, const gfv_table *tab, size_t d, int *diag) {
  const size_t full = 1 + d + d * d, vars = 1 + 2 * d;
  int named = tab->has_header ? gmm_header_layout(path) : -1;
  if (tab->cols == full && tab->cols == vars) *diag = 0; /* d = 1: the same numbers */
  else if (tab->cols == full && named != 1) *diag = 0;
  else if (tab->cols == vars && named != 0) *diag = 1;
  else
    GFV_ERROR(GFV_ERR_INPUT,
              "%s: %zu columns%s do not hold a mixture in d = %zu: expected 1 + d + d*d = %zu "
              "(weight, mean, covariance) or 1 + 2d = %zu (weight, mean, variances); was the file "
              "written for another model?",
              path, tab->cols, named == 1 ? " of variances" : named == 0 ? " of covariances" : "",
              d, full, vars);
  return GFV_OK;
}

void gfv_mixture_file_free(gfv_mixture_file *m) {
  free(m->logw), free(m->mu), free(m->cov), free(m->P), free(m->L);
  memset(m, 0, sizeof *m);
}

int gfv_mixture_file_read(const char *path, size_t dim, gfv_mixture_file *m) {
  gfv_table tab;
  double *L = NULL;
  int st = GFV_OK;
  memset(m, 0, sizeof *m);
  GFV_CALL(gfv_table_read_csv(path, &tab));
  const size_t d = dim ? dim : gmm_dim_of(tab.cols), k = tab.rows;
  if (d == 0)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT,
                   "%s: %zu columns is not 1 + d + d*d for any d (expected weight, mean, covariance)",
                   path, tab.cols);
  if (dim) GFV_CALL_GOTO(st, gmm_layout(path, &tab, d, &m->diag), done);
  m->k = k, m->d = d;
  GFV_CALL_GOTO(st, gfv_calloc(&m->logw, k, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&m->mu, k * d, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&m->cov, k * (m->diag ? d : d * d), sizeof(double)), done);
  if (!m->diag) {
    GFV_CALL_GOTO(st, gfv_calloc(&m->P, k * d * d, sizeof(double)), done);
    GFV_CALL_GOTO(st, gfv_calloc(&m->L, k * d * d, sizeof(double)), done);
    GFV_CALL_GOTO(st, gfv_calloc(&L, d * d, sizeof(double)), done);
  }
  for (size_t j = 0; j < k; j++) {
    GFV_CALL_GOTO(st, gmm_read_row(path, &tab, j, m), done);
    if (!m->diag) GFV_CALL_GOTO(st, gmm_precision(path, j, m, L), done);
  }
  gmm_log_weights(k, m->logw);
  if (!m->diag) GFV_CALL_GOTO(st, gmm_chol_all(d, k, m->P, m->L, path), done);
done:
  if (st) gfv_mixture_file_free(m);
  gfv_table_free(&tab);
  free(L);
  return st;
}

int gfv_target_gmm_file_create(const char *path, gfv_target **out) {
  gfv_mixture_file m;
  gfv_target *t = NULL;
  int st = GFV_OK;
  *out = NULL;
  GFV_CALL(gfv_mixture_file_read(path, 0, &m));
  const size_t d = m.d, k = m.k;
  GFV_CALL_GOTO(st, gmm_alloc("gmm", d, k, &t), done);
  gmm_ctx *c = t->ctx;
  memcpy(c->mu, m.mu, k * d * sizeof(double));
  memcpy(c->P, m.P, k * d * d * sizeof(double));
  memcpy(c->L, m.L, k * d * d * sizeof(double));
  memcpy(c->logw, m.logw, k * sizeof(double));
  gfv_mix_log_const(d, k, c->logw, c->L, c->logc);
  gmm_box(t, m.cov);
  *out = t;
done:
  gfv_mixture_file_free(&m);
  return st;
}

int gfv_target_gmm_view(const gfv_target *t, gfv_mix_view *view, const double **logw) {
  GFV_CHECK(t && t->eval == gmm_eval, GFV_ERR_INTERNAL, "not a gmm target");
  const gmm_ctx *c = t->ctx;
  *view = gmm_view(c);
  *logw = c->logw;
  return GFV_OK;
}

/* ---- the type (src/targets/registry.h; listed in target_list.h) ---- */

static int create_gmm4(const char *arg, size_t dim, const gfv_config *cfg, gfv_target **out) {
  (void)arg, (void)dim, (void)cfg;
  return gfv_target_gmm4_create(out);
}

const gfv_target_type gfv_target_type_gmm4 = {
    .name = "gmm4", .synopsis = "gmm4",
    .help = "2-D mixture of four Gaussians at (+-3, +-3), covariance 0.5 I, equal weights",
    .create = create_gmm4};

static int create_gmm_file(const char *path, size_t dim, const gfv_config *cfg,
                           gfv_target **out) {
  (void)dim, (void)cfg;
  GFV_CHECK(path[0] != '\0', GFV_ERR_USAGE,
            "target gmm:FILE needs a file name, as in gmm:mixture.csv");
  return gfv_target_gmm_file_create(path, out);
}

const gfv_target_type gfv_target_type_gmm_file = {
    .name = "gmm:", .synopsis = "gmm:FILE",
    .help = "Gaussian mixture read from FILE (mixture.csv: weight, mean, covariance per row; "
            "weights normalised)",
    .create = create_gmm_file};
