/* registry.c - targets by name (see target.h) and the calls every target shares.
 *
 * The dimension rules live here, not in the targets, so every target reports a wrong
 * --dim the same way: 0 picks the target's default, a fixed-dimension target refuses any
 * other non-zero value, and a target with a minimum dimension says which. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "targets/models.h"
#include "targets/targets_impl.h"

#define GAUSS_DEFAULT_DIM 4
#define FUNNEL_DEFAULT_DIM 10

int gfv_target_alloc(const char *name, size_t dim, gfv_target **out) {
  gfv_target *t;
  GFV_ALLOC(t, 1);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->dim = dim;
  *out = t;
  return GFV_OK;
}

int gfv_target_grad_buffer(double *grad, size_t n, size_t dim, double **scratch, size_t *cap,
                           const char *who, double **g) {
  *g = grad;
  if (grad) return GFV_OK;
  if (*cap < n) {
    double *p = realloc(*scratch, n * dim * sizeof(double));
    GFV_CHECK(p, GFV_ERR_MEMORY, "%s: cannot allocate a gradient buffer", who);
    *scratch = p, *cap = n;
  }
  *g = *scratch;
  return GFV_OK;
}

/* A target whose dimension the user does not choose: --dim must be 0 or equal to it. */
static int check_fixed_dim(const char *spec, const gfv_target *t, long dim) {
  if (dim != 0 && (size_t)dim != t->dim)
    GFV_ERROR(GFV_ERR_USAGE, "target %s has dimension %zu, but --dim=%ld was given", spec, t->dim, dim);
  return GFV_OK;
}

/* A target of chosen dimension: the default for 0, otherwise at least min_dim. */
static int free_dim(const char *spec, long dim, long def, long min_dim, size_t *out) {
  if (dim == 0) dim = def;
  if (dim < min_dim)
    GFV_ERROR(GFV_ERR_USAGE, "target %s needs --dim >= %ld, but --dim=%ld was given", spec, min_dim,
              dim);
  *out = (size_t)dim;
  return GFV_OK;
}

/* The targets that read more of the configuration than --dim (data models, plugins);
 * cfg is NULL when called through gfv_target_create.  Returns 1 in *handled when spec is
 * one of them. */
static int create_model(const char *spec, const gfv_config *cfg, gfv_target **t, int *handled) {
  *handled = 1;
  if (strcmp(spec, "logreg") == 0 || strcmp(spec, "bnn") == 0) {
    GFV_CHECK(cfg, GFV_ERR_USAGE, "target %s reads its data from the configuration (--data); "
              "create it with gfv_target_create_from_config", spec);
    if (spec[0] == 'l') GFV_CALL(gfv_target_logreg_create(cfg, t));
    else GFV_CALL(gfv_target_bnn_create(cfg, t));
  } else if (strncmp(spec, "plugin:", 7) == 0) {
    GFV_CALL(gfv_target_plugin_create(spec + 7, cfg, t));
  } else if (strncmp(spec, "stan:", 5) == 0) {
    GFV_CHECK(cfg, GFV_ERR_USAGE, "target %s reads --data from the configuration; create it "
              "with gfv_target_create_from_config", spec);
    GFV_CALL(gfv_target_stan_create(spec + 5, cfg, t));
  } else {
    *handled = 0;
  }
  return GFV_OK;
}

static int create(const char *spec, long dim, const gfv_config *cfg, gfv_target **out) {
  *out = NULL;
  GFV_CHECK(dim >= 0, GFV_ERR_USAGE, "--dim must be >= 0 (0 = the target's default), got %ld", dim);
  gfv_target *t = NULL;
  size_t d = 0;
  int handled = 0;
  GFV_CALL(create_model(spec, cfg, &t, &handled));
  if (handled) {
    /* logreg, bnn, plugin:FILE or stan:FILE, made above */
  } else if (strcmp(spec, "gauss") == 0) {
    GFV_CALL(free_dim(spec, dim, GAUSS_DEFAULT_DIM, 1, &d));
    GFV_CALL(gfv_target_gauss_create(d, &t));
  } else if (strcmp(spec, "funnel") == 0) {
    GFV_CALL(free_dim(spec, dim, FUNNEL_DEFAULT_DIM, 2, &d));
    GFV_CALL(gfv_target_funnel_create(d, &t));
  } else if (strcmp(spec, "gmm4") == 0) {
    GFV_CALL(gfv_target_gmm4_create(&t));
  } else if (strcmp(spec, "banana") == 0) {
    GFV_CALL(gfv_target_banana_create(&t));
  } else if (strncmp(spec, "gmm:", 4) == 0) {
    GFV_CHECK(spec[4] != '\0', GFV_ERR_USAGE, "target gmm:FILE needs a file name, as in gmm:mixture.csv");
    GFV_CALL(gfv_target_gmm_file_create(spec + 4, &t));
  } else {
    GFV_ERROR(GFV_ERR_USAGE,
              "unknown target '%s' (choose gauss, gmm4, gmm:FILE, banana, funnel, logreg, bnn, "
              "plugin:FILE.so, stan:FILE.stan)", spec);
  }
  int st = check_fixed_dim(spec, t, dim);
  if (st) {
    gfv_target_free(t);
    GFV_CALL(st);
  }
  *out = t;
  return GFV_OK;
}

int gfv_target_prepare(const gfv_config *cfg) {
  if (strncmp(cfg->target, "stan:", 5) == 0) GFV_CALL(gfv_target_stan_prepare(cfg));
  return GFV_OK;
}

int gfv_target_create(const char *spec, long dim, gfv_target **out) {
  GFV_CALL(create(spec, dim, NULL, out));
  return GFV_OK;
}

int gfv_target_create_from_config(const gfv_config *cfg, gfv_target **out) {
  GFV_CALL(create(cfg->target, cfg->dim, cfg, out));
  return GFV_OK;
}

int gfv_target_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                    double *hess) {
  GFV_CHECK(!hess || t->has_hessian, GFV_ERR_INTERNAL, "target %s has no Hessian", t->name);
  if (n == 0) return GFV_OK;
  GFV_CALL(t->eval(t, n, z, logp, grad, hess));
  return GFV_OK;
}

void gfv_target_free(gfv_target *t) {
  if (!t) return;
  if (t->destroy) t->destroy(t->ctx);
  gfv_names_free(t->out_names, t->nout);
  gfv_names_free(t->dim_names, t->dim);
  free(t->out_groups);
  free(t);
}

/* One line per target; gauss spells out its fixed mean and covariance (i = 0, ..., d-1), so
 * a user can check a fit against them. */
const char *gfv_target_list_help(void) {
  return "  gauss      correlated Gaussian, --dim (default 4): mean (-1)^i (1 + i mod 3)/2, cov s_i s_j 0.6^|i-j|, s_i = 1 + (i mod 3)/2\n"
         "  gmm4       2-D mixture of four Gaussians at (+-3, +-3), covariance 0.5 I, equal weights\n"
         "  gmm:FILE   Gaussian mixture read from FILE (mixture.csv: weight, mean, covariance per row; weights normalised)\n"
         "  banana     2-D twisted Gaussian: x1 ~ N(0, 2^2), x2 | x1 ~ N(0.25 (x1^2 - 4), 1)\n"
         "  funnel     Neal's funnel, --dim (default 10): z_0 ~ N(0, 3^2), z_i | z_0 ~ N(0, exp(z_0)) for i >= 1\n"
         "  logreg     Bayesian logistic regression on --data (0/1 labels), prior N(0, prior_scale^2 I), intercept last\n"
         "  bnn        Bayesian neural-network regression on --data, one ReLU layer of --hidden units\n"
         "  plugin:F   your own model: a shared object F implementing include/gflowvi/plugin.h\n"
         "  stan:F     a Stan program F (data: --data=FILE.json), compiled once into a cached plugin\n";
}
