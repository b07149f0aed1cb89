/* target.h - the unnormalised log density l(z) that gflowvi approximates.
 *
 * A target is a type object: its evaluation function works on a block of n points at
 * once (row-major n x d), so models can use BLAS level 3 across the block.  Targets are
 * created by name from a registry: src/targets/target_list.h lists the built-in ones
 * (`gflowvi --help`, "Targets", shows each with its synopsis).  Those that read more of the
 * configuration than --dim (logreg, bnn, plugin:FILE.so, stan:FILE.stan) are created with
 * gfv_target_create_from_config.
 * A target returns non-finite values rather than failing; the caller checks them. */
#ifndef GFLOWVI_TARGET_H
#define GFLOWVI_TARGET_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <stddef.h>
#include <stdio.h>

#include "gflowvi/config.h"

typedef struct gfv_target gfv_target;

/* The fitted mixture as handed to a target's report hook: K components with weights w,
 * means mu (K x d) and covariances cov (K x d x d). */
typedef struct {
  size_t K, d;
  const double *w, *mu, *cov; /* cov: K x d x d, or K x d variances when diag is set */
  unsigned long seed; /* --seed, for any sampling the report does (posterior predictive) */
  int diag;           /* the diagonal family: cov holds variances */
  size_t rank;        /* > 0: --family=lowrank:R, cov holds [v | Z] (K x (d + d R)) per
                       * component, the covariance diag(v) - Z Z^T (docs/lowrank.md) */
} gfv_fitted_mixture;

/* Evaluates at n points z (n x d): logp[i] = l(z_i); grad (n x d) = grad l, or NULL;
 * hess (n x d x d, each row-major, symmetric) = Hessian of l, or NULL.  Only called
 * with hess != NULL when has_hessian is set.  Returns a status (failure is for
 * internal errors only, never for a point where l is not finite). */
typedef int (*gfv_target_eval_fn)(const gfv_target *t, size_t n, const double *z, double *logp,
                                  double *grad, double *hess);

struct gfv_target {
  char name[64];        /* registry name: "gauss", "gmm" (for gmm:FILE), ... */
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
  /* Optional: the model's own names for draws.csv and posterior.nc (src/solver/draws.c).
   * out_names[j] (j < nout) names output j as a user reads it, 1-based indices in brackets
   * ("mu", "theta[1]", "Sigma[2,1]"); constrain maps n points z (n x d) to their outputs
   * (n x nout), seeds[i] seeding point i's random quantities (plugin.h,
   * gfv_plugin_write_array).  out_groups[j]: 0 parameter, 1 transformed parameter, 2
   * generated quantity (NULL: all 0).  dim_names (d names of z's coordinates) may be NULL.
   * nout = 0: the outputs are z itself, named z[1]..z[d].  The arrays belong to t. */
  size_t nout;
  char **out_names, **dim_names;
  int *out_groups;
  int (*constrain)(const gfv_target *t, size_t n, const double *z, const unsigned long *seeds,
                   double *out);
  /* Optional (logreg, bnn): --predict.  predict_cols features per row; writes the rows'
   * predictive summaries as CSV (header included) from draws of fit. */
  size_t predict_cols;
  int (*predict)(const gfv_target *t, const gfv_fitted_mixture *fit, size_t rows, const double *X,
                 FILE *csv);
  /* Optional: JSON members about the data (feature names, standardisation) for the
   * "data" object of summary.json, in the report's format. */
  int (*describe)(const gfv_target *t, FILE *json);
  /* Optional: the model's own starting mean mu (d) of particle k (--init=target), drawn
   * from (seed, k) alone so the start does not depend on the rank count (bnn: SVGD's). */
  int (*init_mean)(const gfv_target *t, unsigned long seed, size_t k, double *mu);
};

/* For targets: names[i] = a copy of the printf-style text, for an array of n names made
 * by gfv_names_alloc (all NULL); freed with gfv_names_free (NULL allowed).  Not collective. */
int gfv_names_alloc(size_t n, char ***names);
int gfv_names_set(char **names, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gfv_names_free(char **names, size_t n);

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

/* A target whose log density is a function of the caller's, so that any language with a C
 * foreign-function interface can supply one (src/bindings/python/ does, through ctypes).
 * fn evaluates n points z (n x d, row-major; d = dim) into logp (n), grad (n x d, never
 * NULL) and, only when hess != NULL, hess (n x d x d, row-major, symmetric).  It returns 0,
 * or non-zero to stop the fit: the status is then GFV_ERR_INPUT with the message
 * "log density callback failed (returned RC)", or with the message fn recorded through
 * gfv_error_set before returning, if it recorded one.  As for every target, l may be
 * -INFINITY outside the support, and NaN or +INFINITY are passed on unchanged to the
 * solver's safeguards (reject and retry, then GFV_ERR_NUMERIC).  ctx is passed to fn as is
 * and belongs to the caller.  flags: GFV_CALLBACK_HESSIAN (fn fills hess when asked: the
 * hessian estimator may be used), GFV_CALLBACK_NORMALIZED (exp(l) integrates to 1, so the
 * summary reports KL = -ELBO).  GFV_ERR_USAGE for dim = 0, fn = NULL or an unknown flag.
 * The target's name is "callback".  Not collective; every rank creates its own. */
typedef int (*gfv_density_fn)(void *ctx, size_t n, size_t d, const double *z, double *logp,
                              double *grad, double *hess);
enum { GFV_CALLBACK_HESSIAN = 1, GFV_CALLBACK_NORMALIZED = 2 };
int gfv_target_create_callback(size_t dim, gfv_density_fn fn, void *ctx, unsigned flags,
                               gfv_target **out);

#pragma GCC visibility pop

#endif
