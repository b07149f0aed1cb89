/* target.h - the unnormalised log density l(z) that gflowvi approximates.
 *
 * A target is a type object: its evaluation function works on a block of n points at
 * once (row-major n x d), so models can use BLAS level 3 across the block.  Targets are
 * created by name from a registry (src/targets/registry.c):
 *   gauss      correlated Gaussian in --dim dimensions (default 4)
 *   gmm4       2-D mixture of four Gaussians at (+-3, +-3), covariance 0.5 I
 *   gmm:FILE   a normalised Gaussian mixture read from FILE (the mixture.csv format)
 *   banana     2-D twisted Gaussian
 *   funnel     Neal's funnel in --dim dimensions (default 10)
 *   logreg     Bayesian logistic regression on --data      (src/targets/logreg.c)
 *   bnn        Bayesian neural-network regression on --data (src/targets/bnn.c)
 *   plugin:F   a user's model in the shared object F        (include/gflowvi/plugin.h)
 *   stan:F     a Stan program F, compiled into a plugin       (src/targets/stan.c)
 * The last four need the configuration: gfv_target_create_from_config.
 * A target returns non-finite values rather than failing; the caller checks them. */
#ifndef GFLOWVI_TARGET_H
#define GFLOWVI_TARGET_H

#include <stddef.h>
#include <stdio.h>

#include "gflowvi/config.h"

typedef struct gfv_target gfv_target;

/* The fitted mixture as handed to a target's report hook: K components with weights w,
 * means mu (K x d) and covariances cov (K x d x d). */
typedef struct {
  size_t K, d;
  const double *w, *mu, *cov; /* cov: K x d x d, or K x d variances when diag is set */
  unsigned long seed; /* for any sampling the report does (posterior predictive) */
  int diag;           /* the diagonal family: cov holds variances */
} gfv_fitted_mixture;

/* Evaluates at n points z (n x d): logp[i] = l(z_i); grad (n x d) = grad l, or NULL;
 * hess (n x d x d, each row-major, symmetric) = Hessian of l, or NULL.  Only called
 * with hess != NULL when has_hessian is set.  Returns a status (failure is for
 * internal errors only, never for a point where l is not finite). */
typedef int (*gfv_target_eval_fn)(const gfv_target *t, size_t n, const double *z, double *logp,
                                  double *grad, double *hess);

struct gfv_target {
  char name[64];        /* registry name: "gauss", "gmm4", "gmm", "banana", "funnel" */
  size_t dim;
  int has_hessian;      /* eval accepts hess != NULL */
  int normalized;       /* exp(l) integrates to 1: KL(q || p) = -ELBO */
  int has_box;          /* box is a sensible plotting window (2-D targets) */
  double box[4];        /* xmin, xmax, ymin, ymax */
  void *ctx;            /* implementation state */
  gfv_target_eval_fn eval;
  void (*destroy)(void *ctx);
  /* Optional: called by the solver before the samples of iteration `iter` are evaluated,
   * on every rank with the same arguments, so that a model can pick, say, the minibatch of
   * this iteration from (seed, iter) alone and stay independent of the rank count.
   * iter = -1 before the final evaluation: use all the data. */
  void (*begin_iteration)(gfv_target *t, long iter, unsigned long seed);
  /* Optional: called on rank 0 after the fit.  Writes JSON members (`"name": value`, comma
   * separated, no braces, no trailing comma) to json and human-readable lines to text,
   * e.g. held-out accuracy and log-likelihood.  Returns a status. */
  int (*report)(const gfv_target *t, const gfv_fitted_mixture *fit, FILE *json, FILE *text);
};

/* Creates the target named by spec ("gauss", "gmm:path.csv", ...).  dim is the --dim
 * option: 0 asks for the target's default; a fixed-dimension target (gmm4, banana,
 * gmm:FILE) fails with GFV_ERR_USAGE when dim is non-zero and differs.  Not collective. */
int gfv_target_create(const char *spec, long dim, gfv_target **out);

/* Creates the target of a run: cfg->target and cfg->dim, plus whatever other options the
 * target reads (data files, priors, plugin arguments).  Not collective. */
int gfv_target_create_from_config(const gfv_config *cfg, gfv_target **out);

/* Work a target needs done once, by one process, before every rank creates it (a Stan
 * model compiled into its cached plugin); nothing for the other targets.  The program
 * calls it on rank 0 and agrees on the status before gfv_target_create_from_config, so a
 * model that does not compile is reported once.  Not collective. */
int gfv_target_prepare(const gfv_config *cfg);

/* Calls t->eval. */
int gfv_target_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                    double *hess);

void gfv_target_free(gfv_target *t);

/* One line per built-in target, for --help. */
const char *gfv_target_list_help(void);

#endif
