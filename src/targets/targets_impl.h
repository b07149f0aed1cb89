/* targets_impl.h - the built-in targets behind the registry (src/targets/registry.c).
 *
 * One file per target; each create function fills a gfv_target made by gfv_target_alloc
 * and is reached only through gfv_target_create, which has already checked the dimension.
 * The accessors at the end expose exact properties of a target to the tests.  None of this
 * is collective. */
#ifndef GFLOWVI_TARGETS_IMPL_H
#define GFLOWVI_TARGETS_IMPL_H

#include <stddef.h>

#include "gflowvi/mixture.h"
#include "gflowvi/target.h"

/* A zeroed target with the given registry name and dimension (destroy and ctx unset). */
int gfv_target_alloc(const char *name, size_t dim, gfv_target **out);

/* For targets whose model always fills a gradient (plugins, callbacks): *g = grad, or, when
 * the caller wants none (grad NULL), a scratch buffer of n x dim doubles in *scratch (cap:
 * the points it holds), grown as needed.  who names the model in the out-of-memory message. */
int gfv_target_grad_buffer(double *grad, size_t n, size_t dim, double **scratch, size_t *cap,
                           const char *who, double **g);

int gfv_target_gauss_create(size_t dim, gfv_target **out);          /* dim >= 1 */
int gfv_target_gmm4_create(gfv_target **out);
int gfv_target_gmm_file_create(const char *path, gfv_target **out);  /* d from the file */

/* A mixture.csv read and checked (the reader behind gmm:FILE and --init=FILE): k
 * components in d dimensions with normalised log-weights.  dim = 0: d from the column
 * count, full covariances only; dim > 0: d = dim, and a file of the diagonal family
 * (weight, mu_1..mu_d, var_1..var_d) is read too (diag = 1: cov holds k x d variances, P and
 * L are NULL).  GFV_ERR_INPUT, naming the file, for a malformed file, another dimension, a
 * weight <= 0, an asymmetric or indefinite covariance. */
typedef struct {
  size_t k, d;
  int diag;        /* the file held variances */
  double *logw;    /* k, normalised */
  double *mu;      /* k x d */
  double *cov;     /* k x d x d covariances, or k x d variances (diag) */
  double *P, *L;   /* full only: k x d x d precisions and their lower Cholesky factors */
} gfv_mixture_file;
int gfv_mixture_file_read(const char *path, size_t dim, gfv_mixture_file *m);
void gfv_mixture_file_free(gfv_mixture_file *m);
int gfv_target_banana_create(gfv_target **out);
int gfv_target_funnel_create(size_t dim, gfv_target **out);         /* dim >= 2 */

/* The gauss target's exact mean (d) and covariance (d x d, row-major); GFV_ERR_INTERNAL
 * when t is not a gauss target.  The arrays belong to t. */
int gfv_target_gauss_moments(const gfv_target *t, const double **mean, const double **cov);

/* The components of a gmm4 or gmm:FILE target as a mixture view, and their normalised
 * log-weights (k); GFV_ERR_INTERNAL for any other target.  The arrays belong to t. */
int gfv_target_gmm_view(const gfv_target *t, gfv_mix_view *view, const double **logw);

#endif
