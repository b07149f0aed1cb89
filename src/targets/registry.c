/* registry.c - targets by name (registry.h, target.h) and the calls every target shares.
 *
 * The list of targets is target_list.h; each type (name, help, create) lives in the
 * target's own file, so nothing here names a target.
 *
 * The dimension rules live here, not in the targets, so every target reports a wrong
 * --dim the same way: 0 picks the target's default, a fixed-dimension target refuses any
 * other non-zero value, and a target with a minimum dimension says which. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "targets/registry.h"
#include "targets/targets_impl.h"

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

static const gfv_target_type *const types[] = {
#define GFV_TARGET(id) &gfv_target_type_##id,
#include "targets/target_list.h"
#undef GFV_TARGET
};
#define NTYPES (sizeof types / sizeof types[0])

const gfv_target_type *gfv_target_type_at(size_t i) { return i < NTYPES ? types[i] : NULL; }

const gfv_target_type *gfv_target_type_find(const char *spec) {
  for (size_t i = 0; i < NTYPES; i++) {
    const char *name = types[i]->name;
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == ':' ? strncmp(spec, name, n) == 0 : strcmp(spec, name) == 0)
      return types[i];
  }
  return NULL;
}

static int unknown(const char *spec) {
  char list[512] = "";
  for (size_t i = 0; i < NTYPES; i++) {
    size_t used = strlen(list);
    snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", types[i]->synopsis);
  }
  GFV_ERROR(GFV_ERR_USAGE, "unknown target '%s' (choose %s)", spec, list);
}

static int create(const char *spec, long dim, const gfv_config *cfg, gfv_target **out) {
  *out = NULL;
  GFV_CHECK(dim >= 0, GFV_ERR_USAGE, "--dim must be >= 0 (0 = the target's default), got %ld", dim);
  const gfv_target_type *tt = gfv_target_type_find(spec);
  if (!tt) GFV_CALL(unknown(spec));
  GFV_CHECK(cfg || !tt->needs_config, GFV_ERR_USAGE,
            "target %s reads its data from the configuration (--data); create it with "
            "gfv_target_create_from_config", spec);
  size_t d = 0;
  if (tt->min_dim > 0) GFV_CALL(free_dim(spec, dim, tt->default_dim, tt->min_dim, &d));
  const size_t n = strlen(tt->name);
  const char *arg = tt->name[n - 1] == ':' ? spec + n : spec;
  gfv_target *t = NULL;
  GFV_CALL(tt->create(arg, d, cfg, &t));
  int st = check_fixed_dim(spec, t, dim);
  if (st) {
    gfv_target_free(t);
    GFV_CALL(st);
  }
  *out = t;
  return GFV_OK;
}

int gfv_target_prepare(const gfv_config *cfg) {
  const gfv_target_type *tt = gfv_target_type_find(cfg->target);
  if (tt && tt->prepare) GFV_CALL(tt->prepare(cfg)); /* an unknown one fails in create */
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

/* One line per target, its synopsis then its help, in a column as wide as the longest
 * synopsis; built once (call_once: the library may be called from several threads). */
static char list_help[4096];
static once_flag list_help_once = ONCE_FLAG_INIT;

static void build_list_help(void) {
  int w = 0;
  for (size_t i = 0; i < NTYPES; i++)
    if ((int)strlen(types[i]->synopsis) > w) w = (int)strlen(types[i]->synopsis);
  size_t used = 0;
  for (size_t i = 0; i < NTYPES && used < sizeof list_help; i++)
    used += (size_t)snprintf(list_help + used, sizeof list_help - used, "  %-*s %s\n", w,
                             types[i]->synopsis, types[i]->help);
}

const char *gfv_target_list_help(void) {
  call_once(&list_help_once, build_list_help);
  return list_help;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option target_options[] = {
    {.name = "target", .type = OPT_STRING, OPT_FIELD(target), .metavar = "SPEC", .def = "gmm4",
     .role = ROLE_PROBLEM,
     .help = "target density: one of the targets listed under 'Targets' below"},
    {.name = "dim", .type = OPT_LONG, OPT_FIELD(dim), .def = "0", .bound = BOUND_GE, .lo = 0,
     .role = ROLE_PROBLEM,
     .help = "dimension; 0 = the target's default dimension"},
};
GFV_OPTION_TABLE(gfv_options_target, target_options);
