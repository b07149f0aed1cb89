/* plugin.c - the "plugin:PATH.so" target: a user's model loaded with dlopen through the
 * ABI of include/gflowvi/plugin.h.
 *
 * Loading checks, in order, each with its own message (exit status 3): the file is a
 * complete ELF shared object for this machine (plugin_elf.c: before dlopen, which would
 * die of SIGBUS on a truncated file), dlopen accepts it, it defines gfv_plugin_abi_version
 * and returns this build's GFV_PLUGIN_ABI_VERSION, it defines gfv_plugin_dim and
 * gfv_plugin_logdensity, gfv_plugin_init (if any) succeeds, and the dimension is at least
 * 1.  The registry then checks --dim against the dimension (exit status 2).
 *
 * A plugin that calls exit() -- in a constructor run by dlopen, in gfv_plugin_init or in
 * any other of its functions -- would end the run with the plugin's status, often 0 and
 * without a word.  An on_exit handler (registered once) turns that into a message naming
 * the plugin and the function, and exit status 3 (GFV_ERR_INPUT) by _exit: the other exit
 * handlers (MPI, HDF5) must not run from inside the plugin.  Under MPI each rank exits on
 * its own and mpirun reports the non-zero status.
 *
 * Evaluation calls gfv_plugin_logdensity with a gradient buffer always (the plugin never
 * sees grad == NULL; scratch is used when the caller wants none), and gfv_plugin_hessian
 * when asked for Hessians.  The first NaN or +Inf in the results, and the first non-finite
 * gradient at a finite log density, are reported once per process (through the log, src/core/log.h) with the
 * function and the point; the values are passed on unchanged, so the solver's safeguards
 * (reject and retry, or stop with exit status 4) decide what happens. */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/optdef.h"
#include "gflowvi/error.h"
#include "gflowvi/plugin.h"
#include "targets/models.h"
#include "targets/plugin_elf.h"
#include "targets/registry.h"
#include "targets/targets_impl.h"

#define PLUGIN_ARGS_MAX 256

typedef struct {
  char path[GFV_PATH_MAX];
  void *handle, *state;
  gfv_plugin_dim_fn dim;
  gfv_plugin_logdensity_fn logdensity;
  gfv_plugin_hessian_fn hessian;
  gfv_plugin_destroy_fn destroy;
  gfv_plugin_write_array_fn write_array; /* the optional output hooks (plugin_outputs) */
  int inited, warned;
  double *gscratch;  /* grad buffer when the caller passes none */
  size_t gcap;       /* points it holds */
} plugin_ctx;

/* The plugin and function running now (NULL phase: gflowvi's own code). */
static const char *guard_path, *guard_phase;

static void exit_guard(int status, void *arg) {
  (void)arg;
  if (!guard_phase) return;
  gfv_log_line(GFV_LOG_WARNING,
               "gflowvi: error: plugin '%s' called exit(%d) during %s; a plugin must return an "
               "error instead (see include/gflowvi/plugin.h)",
               guard_path, status, guard_phase);
  fflush(NULL);
  _exit(GFV_ERR_INPUT);
}

static void guard_enter(const plugin_ctx *c, const char *phase) {
  static int registered;
  if (!registered) registered = on_exit(exit_guard, NULL) == 0;
  guard_path = c->path;
  guard_phase = phase;
}

static void guard_leave(void) { guard_phase = NULL; }

static void plugin_destroy(void *p) {
  plugin_ctx *c = p;
  if (!c) return;
  if (c->inited && c->destroy) {
    guard_enter(c, "gfv_plugin_destroy");
    c->destroy(c->state);
    guard_leave();
  }
  if (c->handle) dlclose(c->handle);
  free(c->gscratch);
  free(c);
}

/* Warns once per process about the first invalid value: NaN or +Inf log density, or a
 * non-finite derivative where the log density is finite. */
static void check_values(plugin_ctx *c, const char *fn, const char *dname, size_t n, size_t d,
                         const double *z, const double *logp, const double *deriv, size_t per) {
  if (c->warned) return;
  for (size_t i = 0; i < n; i++) {
    const char *what = NULL;
    double bad = 0;
    if (logp && (isnan(logp[i]) || logp[i] == INFINITY)) what = "log density", bad = logp[i];
    else if (deriv && isfinite(logp ? logp[i] : 0.0))
      for (size_t a = 0; a < per && !what; a++)
        if (!isfinite(deriv[i * per + a]))
          what = dname, bad = deriv[i * per + a];
    if (!what) continue;
    c->warned = 1;
    char pt[256];
    size_t len = 0;
    for (size_t a = 0; a < d && a < 6 && len < sizeof pt; a++)
      len += (size_t)snprintf(pt + len, sizeof pt - len, "%s%.6g", a ? ", " : "", z[i * d + a]);
    gfv_log_line(GFV_LOG_WARNING,
                 "gflowvi: warning: plugin %s: %s returned a non-finite %s (%g) at z = (%s%s); "
                 "gflowvi rejects such steps (reported once)",
            c->path, fn, what, bad, pt, d > 6 ? ", ..." : "");
    return;
  }
}

static int plugin_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                       double *hess) {
  plugin_ctx *c = t->ctx;
  const size_t d = t->dim;
  double *g;
  GFV_CALL(gfv_target_grad_buffer(grad, n, d, &c->gscratch, &c->gcap, c->path, &g));
  guard_enter(c, "gfv_plugin_logdensity");
  int rc = c->logdensity(c->state, n, d, z, logp, g);
  guard_leave();
  GFV_CHECK(rc == 0, GFV_ERR_INPUT, "plugin %s: gfv_plugin_logdensity failed (returned %d)", c->path,
            rc);
  check_values(c, "gfv_plugin_logdensity", "gradient", n, d, z, logp, g, d);
  if (hess) {
    guard_enter(c, "gfv_plugin_hessian");
    rc = c->hessian(c->state, n, d, z, hess);
    guard_leave();
    GFV_CHECK(rc == 0, GFV_ERR_INPUT, "plugin %s: gfv_plugin_hessian failed (returned %d)", c->path,
              rc);
    check_values(c, "gfv_plugin_hessian", "Hessian", n, d, z, logp, hess, d * d);
  }
  return GFV_OK;
}

/* Splits s at commas into argv (pointers into buf). */
static int split_args(const char *s, char *buf, size_t cap, const char **argv, int *argc) {
  *argc = 0;
  if (!s[0]) return GFV_OK;
  GFV_CHECK(strlen(s) < cap, GFV_ERR_USAGE, "--plugin-arg: too long");
  strcpy(buf, s);
  for (char *p = buf;;) {
    GFV_CHECK(*argc < PLUGIN_ARGS_MAX, GFV_ERR_USAGE, "--plugin-arg: more than %d arguments",
              PLUGIN_ARGS_MAX);
    argv[(*argc)++] = p;
    char *comma = strchr(p, ',');
    if (!comma) break;
    *comma = '\0';
    p = comma + 1;
  }
  return GFV_OK;
}

static void *symbol(plugin_ctx *c, const char *name) {
  dlerror();
  return dlsym(c->handle, name);
}

static int required(plugin_ctx *c, const char *name, void **out) {
  *out = symbol(c, name);
  GFV_CHECK(*out, GFV_ERR_INPUT,
            "plugin %s does not define the required function %s (see include/gflowvi/plugin.h)",
            c->path, name);
  return GFV_OK;
}

static int open_plugin(plugin_ctx *c, const char *path) {
  GFV_CHECK(path[0], GFV_ERR_USAGE, "target plugin:FILE needs a file name, as in plugin:./model.so");
  int n = snprintf(c->path, sizeof c->path, "%s", path);
  GFV_CHECK(n > 0 && (size_t)n < sizeof c->path, GFV_ERR_USAGE, "plugin path too long");
  GFV_CALL(gfv_plugin_elf_check(path));
  /* Without a slash dlopen would search the library path, not the current directory. */
  char local[GFV_PATH_MAX + 2];
  snprintf(local, sizeof local, "%s%s", strchr(path, '/') ? "" : "./", path);
  guard_enter(c, "its loading (a constructor run by dlopen)");
  c->handle = dlopen(local, RTLD_NOW | RTLD_LOCAL);
  guard_leave();
  GFV_CHECK(c->handle, GFV_ERR_INPUT, "cannot load plugin '%s': %s", path, dlerror());
  void *fn;
  GFV_CALL(required(c, "gfv_plugin_abi_version", &fn));
  guard_enter(c, "gfv_plugin_abi_version");
  int version = ((gfv_plugin_abi_version_fn)fn)();
  guard_leave();
  GFV_CHECK(version == GFV_PLUGIN_ABI_VERSION, GFV_ERR_INPUT,
            "plugin %s was built for plugin ABI version %d, but this gflowvi implements version %d; "
            "rebuild it against this include/gflowvi/plugin.h",
            path, version, GFV_PLUGIN_ABI_VERSION);
  GFV_CALL(required(c, "gfv_plugin_dim", &fn));
  c->dim = (gfv_plugin_dim_fn)fn;
  GFV_CALL(required(c, "gfv_plugin_logdensity", &fn));
  c->logdensity = (gfv_plugin_logdensity_fn)fn;
  c->hessian = (gfv_plugin_hessian_fn)symbol(c, "gfv_plugin_hessian");
  c->destroy = (gfv_plugin_destroy_fn)symbol(c, "gfv_plugin_destroy");
  return GFV_OK;
}

/* The log a plugin's own lines go through (gfv_plugin_set_log): gflowvi's, so a caller's
 * callback receives them; levels outside the enum count as warnings. */
static void plugin_log(int level, const char *message) {
  if (level < GFV_LOG_PROGRESS || level > GFV_LOG_WARNING) level = GFV_LOG_WARNING;
  gfv_log_line(level, "%s", message ? message : "");
}

/* label (may be NULL) replaces "plugin PATH" in the message of a failed init. */
static int init_plugin(plugin_ctx *c, int argc, const char *const *argv, const char *label) {
  gfv_plugin_init_fn init = (gfv_plugin_init_fn)symbol(c, "gfv_plugin_init");
  if (init) {
    char err[512] = "";
    guard_enter(c, "its initialisation (gfv_plugin_init)");
    int rc = init(argc, argv, &c->state, err, sizeof err);
    guard_leave();
    err[sizeof err - 1] = '\0';
    if (rc != 0 && label)
      GFV_ERROR(GFV_ERR_INPUT, "%s: %s", label, err[0] ? err : "cannot load it (no message)");
    GFV_CHECK(rc == 0, GFV_ERR_INPUT, "plugin %s: gfv_plugin_init failed: %s", c->path,
              err[0] ? err : "(no message)");
  } else {
    GFV_CHECK(argc == 0, GFV_ERR_USAGE,
              "--plugin-arg given, but plugin %s has no gfv_plugin_init to take it", c->path);
  }
  c->inited = 1;
  gfv_plugin_set_log_fn set_log = (gfv_plugin_set_log_fn)symbol(c, "gfv_plugin_set_log");
  if (set_log) {
    guard_enter(c, "gfv_plugin_set_log");
    set_log(c->state, plugin_log);
    guard_leave();
  }
  return GFV_OK;
}

/* ---- the optional output hooks: names and the constraining transform ---------------- */

static int plugin_constrain(const gfv_target *t, size_t n, const double *z, const unsigned long *seeds,
                            double *out) {
  plugin_ctx *c = t->ctx;
  for (size_t i = 0; i < n; i++) {
    guard_enter(c, "gfv_plugin_write_array");
    int rc = c->write_array(c->state, z + i * t->dim, out + i * t->nout, seeds[i]);
    guard_leave();
    GFV_CHECK(rc == 0, GFV_ERR_INPUT, "plugin %s: gfv_plugin_write_array failed (returned %d)",
              c->path, rc);
  }
  return GFV_OK;
}

/* Calls a names hook (gfv_plugin_output_names or gfv_plugin_dim_names) into tmp and copies
 * its n names into *dst; a failure, or a NULL or empty name, is refused. */
static int hook_names(plugin_ctx *c, const char *fn, gfv_plugin_output_names_fn hook, size_t n,
                      const char **tmp, char ***dst) {
  memset(tmp, 0, n * sizeof *tmp);
  guard_enter(c, fn);
  int rc = hook(c->state, tmp);
  guard_leave();
  GFV_CHECK(rc == 0, GFV_ERR_INPUT, "plugin %s: %s failed (returned %d)", c->path, fn, rc);
  GFV_CALL(gfv_names_alloc(n, dst));
  for (size_t j = 0; j < n; j++) {
    GFV_CHECK(tmp[j] && tmp[j][0], GFV_ERR_INPUT, "plugin %s: %s gave no name for entry %zu",
              c->path, fn, j + 1);
    GFV_CALL(gfv_names_set(*dst, j, "%s", tmp[j]));
  }
  return GFV_OK;
}

/* Used only when all of num_outputs, output_names and write_array are defined (plugin.h);
 * output_groups and dim_names are optional on their own. */
static int plugin_outputs(gfv_target *t, plugin_ctx *c) {
  gfv_plugin_num_outputs_fn num = (gfv_plugin_num_outputs_fn)symbol(c, "gfv_plugin_num_outputs");
  gfv_plugin_output_names_fn names = (gfv_plugin_output_names_fn)symbol(c, "gfv_plugin_output_names");
  gfv_plugin_output_groups_fn groups = (gfv_plugin_output_groups_fn)symbol(c, "gfv_plugin_output_groups");
  gfv_plugin_dim_names_fn dnames = (gfv_plugin_dim_names_fn)symbol(c, "gfv_plugin_dim_names");
  c->write_array = (gfv_plugin_write_array_fn)symbol(c, "gfv_plugin_write_array");
  size_t d = t->dim, m = 0;
  const char **tmp = NULL;
  int st = GFV_OK;
  if (num && names && c->write_array) {
    guard_enter(c, "gfv_plugin_num_outputs");
    m = num(c->state);
    guard_leave();
    GFV_CHECK(m >= 1, GFV_ERR_INPUT, "plugin %s: gfv_plugin_num_outputs returned 0", c->path);
  }
  GFV_CALL(gfv_calloc(&tmp, m > d ? m : d, sizeof *tmp));
  if (m) {
    GFV_CALL_GOTO(st, hook_names(c, "gfv_plugin_output_names", names, m, tmp, &t->out_names), done);
    t->nout = m;
    t->constrain = plugin_constrain;
  }
  if (m && groups) {
    GFV_CALL_GOTO(st, gfv_calloc(&t->out_groups, m, sizeof(int)), done);
    guard_enter(c, "gfv_plugin_output_groups");
    int rc = groups(c->state, t->out_groups);
    guard_leave();
    if (rc != 0)
      GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "plugin %s: gfv_plugin_output_groups failed (returned %d)",
                     c->path, rc);
  }
  if (dnames) GFV_CALL_GOTO(st, hook_names(c, "gfv_plugin_dim_names", dnames, d, tmp, &t->dim_names), done);
done:
  free(tmp);
  return st;
}

int gfv_target_plugin_create(const char *path, const gfv_config *cfg, gfv_target **out) {
  char buf[GFV_PATH_MAX];
  const char *argv[PLUGIN_ARGS_MAX + 1];
  int argc = 0;
  *out = NULL;
  GFV_CALL(split_args(cfg ? cfg->plugin_arg : "", buf, sizeof buf, argv, &argc));
  argv[argc] = NULL;
  GFV_CALL(gfv_target_plugin_create_args(path, NULL, argc, argv, out));
  return GFV_OK;
}

int gfv_target_plugin_create_args(const char *path, const char *label, int argc,
                                  const char *const *argv, gfv_target **out) {
  *out = NULL;
  gfv_target *t = NULL;
  plugin_ctx *c = NULL;
  int st = GFV_OK;
  GFV_CALL(gfv_calloc(&c, 1, sizeof *c));
  GFV_CALL_GOTO(st, open_plugin(c, path), fail);
  if (label) snprintf(c->path, sizeof c->path, "%s", label);
  GFV_CALL_GOTO(st, init_plugin(c, argc, argv, label), fail);
  guard_enter(c, "gfv_plugin_dim");
  size_t d = c->dim(c->state);
  guard_leave();
  if (d < 1)
    GFV_ERROR_GOTO(st, fail, GFV_ERR_INPUT, "plugin %s: gfv_plugin_dim returned 0", path);
  gfv_plugin_normalized_fn norm = (gfv_plugin_normalized_fn)symbol(c, "gfv_plugin_normalized");
  GFV_CALL_GOTO(st, gfv_target_alloc("plugin", d, &t), fail);
  t->ctx = c;
  t->destroy = plugin_destroy;
  c = NULL;
  t->eval = plugin_eval;
  plugin_ctx *pc = t->ctx;
  t->has_hessian = pc->hessian != NULL;
  guard_enter(pc, "gfv_plugin_normalized");
  t->normalized = norm ? norm(pc->state) != 0 : 0;
  guard_leave();
  GFV_CALL_GOTO(st, plugin_outputs(t, pc), fail);
  *out = t;
  return GFV_OK;
fail:
  plugin_destroy(c);
  gfv_target_free(t);
  return st;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option plugin_options[] = {
    {.name = "plugin-arg", .type = OPT_STRING, OPT_FIELD(plugin_arg), .metavar = "ARGS", .def = "",
     .role = ROLE_PROBLEM,
     .help = "--target=plugin:FILE.so: comma-separated strings handed to the plugin's "
             "gfv_plugin_init"},
};
GFV_OPTION_TABLE(gfv_options_plugin, plugin_options);

/* ---- the type (src/targets/registry.h; listed in target_list.h) ---- */

static int create_plugin(const char *path, size_t dim, const gfv_config *cfg, gfv_target **out) {
  (void)dim;
  return gfv_target_plugin_create(path, cfg, out);
}

const gfv_target_type gfv_target_type_plugin = {
    .name = "plugin:", .synopsis = "plugin:FILE.so",
    .help = "your own model: a shared object FILE.so implementing include/gflowvi/plugin.h",
    .create = create_plugin, .options = &gfv_options_plugin};
