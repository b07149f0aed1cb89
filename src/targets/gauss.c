/* gauss.c - the "gauss" target: a correlated Gaussian N(m, Sigma) in d dimensions, normalized.
 *
 * The mean and covariance are fixed functions of the coordinate index i = 0, ..., d-1, so
 * a run is reproducible from its --dim alone and the exact answer is known:
 *   m_i       = (-1)^i (1 + (i mod 3)) / 2         (0.5, -1, 1.5, -0.5, 1, -1.5, ...)
 *   Sigma_ij  = s_i s_j 0.6^|i-j|,  s_i = 1 + (i mod 3) / 2   (s = 1, 1.5, 2, 1, 1.5, 2, ...)
 * Sigma is an AR(1) correlation matrix (positive definite for any d) scaled by varying
 * standard deviations, so both the correlations and the scales differ across coordinates:
 * a mean-field fit cannot be exact, and the condition number grows only mildly with d.
 *
 * The precision P = Sigma^{-1} and log det Sigma are computed once.  A block of n points is
 * evaluated as Y = (Z - 1 m^T) P with one DSYMM per chunk of points, then
 *   l(z_i) = -d/2 log(2 pi) - 1/2 log det Sigma - 1/2 (z_i - m) . y_i,
 *   grad l(z_i) = -y_i,   Hessian = -P. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "targets/registry.h"
#include "targets/targets_impl.h"

#define GAUSS_CHUNK 256 /* points per DSYMM: bounds the scratch at 2 * 256 * d doubles */

typedef struct {
  size_t d;
  double *mean, *cov, *prec; /* d, d x d, d x d (both triangles) */
  double logc;               /* -d/2 log(2 pi) - 1/2 log det Sigma */
  double *D, *Y;             /* GAUSS_CHUNK x d scratch: centred points and (z - m)^T P */
} gauss_ctx;

static void gauss_destroy(void *p) {
  gauss_ctx *c = p;
  if (!c) return;
  free(c->mean), free(c->cov), free(c->prec), free(c->D), free(c->Y);
  free(c);
}

/* The target is const during evaluation, but D and Y are scratch owned through ctx (one
 * thread per process, so no two evaluations share them). */
static int gauss_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                      double *hess) {
  gauss_ctx *c = t->ctx;
  const size_t d = c->d, dd = d * d;
  for (size_t i0 = 0; i0 < n; i0 += GAUSS_CHUNK) {
    size_t nc = n - i0 < GAUSS_CHUNK ? n - i0 : GAUSS_CHUNK;
    for (size_t i = 0; i < nc; i++)
      for (size_t a = 0; a < d; a++) c->D[i * d + a] = z[(i0 + i) * d + a] - c->mean[a];
    cblas_dsymm(CblasRowMajor, CblasRight, CblasLower, (int)nc, (int)d, 1.0, c->prec, (int)d, c->D,
                (int)d, 0.0, c->Y, (int)d);
    for (size_t i = 0; i < nc; i++) {
      const double *Di = c->D + i * d, *Yi = c->Y + i * d;
      logp[i0 + i] = c->logc - 0.5 * cblas_ddot((int)d, Di, 1, Yi, 1);
      if (grad)
        for (size_t a = 0; a < d; a++) grad[(i0 + i) * d + a] = -Yi[a];
      if (hess)
        for (size_t a = 0; a < dd; a++) hess[(i0 + i) * dd + a] = -c->prec[a];
    }
  }
  return GFV_OK;
}

/* Fills mean, cov, prec and logc from the documented formulas. */
static int gauss_setup(gauss_ctx *c) {
  const size_t d = c->d;
  for (size_t i = 0; i < d; i++)
    c->mean[i] = (i % 2 ? -1.0 : 1.0) * (1.0 + (double)(i % 3)) / 2.0;
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < d; j++) {
      double si = 1.0 + 0.5 * (double)(i % 3), sj = 1.0 + 0.5 * (double)(j % 3);
      size_t lag = i > j ? i - j : j - i;
      c->cov[i * d + j] = si * sj * pow(0.6, (double)lag);
    }
  memcpy(c->prec, c->cov, d * d * sizeof(double));
  int info = gfv_chol(d, c->prec); /* prec holds L_Sigma until the inverse below */
  GFV_CHECK(info == 0, GFV_ERR_NUMERIC, "gauss target: Cholesky of the covariance failed (info %d)", info);
  c->logc = -0.5 * (double)d * log(2.0 * M_PI) - gfv_chol_logdet_half(d, c->prec);
  double *L = NULL;
  GFV_ALLOC(L, d * d);
  memcpy(L, c->prec, d * d * sizeof(double));
  info = gfv_chol_inverse(d, L, c->prec);
  free(L);
  GFV_CHECK(info == 0, GFV_ERR_NUMERIC, "gauss target: inverting the covariance failed (info %d)", info);
  return GFV_OK;
}

int gfv_target_gauss_create(size_t dim, gfv_target **out) {
  *out = NULL;
  gfv_target *t = NULL;
  gauss_ctx *c = NULL;
  int st = GFV_OK;
  GFV_CALL(gfv_target_alloc("gauss", dim, &t));
  t->has_hessian = 1;
  t->normalized = 1;
  t->eval = gauss_eval;
  t->destroy = gauss_destroy;
  GFV_CALL_GOTO(st, gfv_calloc(&c, 1, sizeof *c), fail);
  t->ctx = c;
  c->d = dim;
  GFV_CALL_GOTO(st, gfv_calloc(&c->mean, dim, sizeof(double)), fail);
  /* (dim, dim doubles): gfv_calloc then sees an overflowing product, not a wrapped one. */
  GFV_CALL_GOTO(st, gfv_calloc(&c->cov, dim, dim * sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&c->prec, dim, dim * sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&c->D, GAUSS_CHUNK * dim, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gfv_calloc(&c->Y, GAUSS_CHUNK * dim, sizeof(double)), fail);
  GFV_CALL_GOTO(st, gauss_setup(c), fail);
  if (dim == 2) { /* mean +- 4 standard deviations */
    t->has_box = 1;
    for (size_t a = 0; a < 2; a++) {
      double sd = sqrt(c->cov[a * 2 + a]);
      t->box[2 * a] = c->mean[a] - 4.0 * sd;
      t->box[2 * a + 1] = c->mean[a] + 4.0 * sd;
    }
  }
  *out = t;
  return GFV_OK;
fail:
  gfv_target_free(t);
  return st;
}

int gfv_target_gauss_moments(const gfv_target *t, const double **mean, const double **cov) {
  GFV_CHECK(t && t->eval == gauss_eval, GFV_ERR_INTERNAL, "not a gauss target");
  const gauss_ctx *c = t->ctx;
  *mean = c->mean;
  *cov = c->cov;
  return GFV_OK;
}

/* ---- the type (src/targets/registry.h; listed in target_list.h) ---- */

/* --dim chooses the dimension. */
static int create_gauss(const char *arg, size_t dim, const gfv_config *cfg, gfv_target **out) {
  (void)arg, (void)cfg;
  int st = gfv_target_gauss_create(dim, out);
  if (st != GFV_ERR_MEMORY) return st;
  /* The target is created before the prolog's memory check, so its own allocations name
   * the option to blame here ('out of memory allocating 800000000000000 bytes' did not). */
  char msg[512];
  snprintf(msg, sizeof msg, "%s", gfv_error_message());
  return gfv_error_set(st, __FILE__, __LINE__, __func__,
                       "--dim=%zu: target gauss keeps two d x d matrices (%.3g bytes): %s", dim,
                       16.0 * (double)dim * (double)dim, msg);
}

const gfv_target_type gfv_target_type_gauss = {
    .name = "gauss", .synopsis = "gauss", .default_dim = 4, .min_dim = 1,
    .help = "correlated Gaussian, --dim (default 4): mean (-1)^i (1 + i mod 3)/2, cov s_i s_j "
            "0.6^|i-j|, s_i = 1 + (i mod 3)/2",
    .create = create_gauss};
