/* api.c - the public life cycle around the solver (solver.h, docs/api.md): an empty solver
 * that owns its configuration, validating setters, the callbacks, the accessors, and the
 * log every line the solver says to the user goes through.
 *
 * gfv_solver_setup and gfv_solver_create are in solver.c, next to the set-up they run. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "solver/solver_impl.h"

int gfv_solver_create_empty(gfv_comm *comm, gfv_solver **out) {
  *out = NULL;
  gfv_solver *s = NULL;
  int st = gfv_comm_agree(comm, gfv_calloc(&s, 1, sizeof *s), NULL);
  if (st) {
    free(s);
    return st;
  }
  s->state = GFV_SOLVER_EMPTY;
  gfv_config_defaults(&s->config);
  s->cfg = &s->config;
  s->comm = comm;
  s->rank = gfv_comm_rank(comm), s->size = gfv_comm_size(comm);
  *out = s;
  return GFV_OK;
}

/* The options a set-up solver still reads as it goes (the loop, the final evaluation, the
 * outputs and checkpoints), so that a change takes effect; every other option shaped the
 * set-up (sizes, streams, schedule, convergence test) and cannot change after it. */
static const char *const run_options[] = {
    "iters",      "tol-update",       "progress-every",     "quiet",  "out",     "out-samples",
    "eval-samples", "checkpoint",     "checkpoint-every",   "checkpoint-seconds", "strict",
    "resample",   "predict",          NULL};

static int is_run_option(const char *name) {
  for (size_t i = 0; run_options[i]; i++) {
    const char *a = run_options[i], *b = name;
    while (*a && (*b == *a || (*b == '_' && *a == '-'))) a++, b++; /* '_' spells '-' */
    if (!*a && !*b) return 1;
  }
  return 0;
}

int gfv_solver_set_option_impl(gfv_solver *s, const char *name, const char *value) {
  GFV_CHECK(s && name, GFV_ERR_USAGE, "gfv_solver_set_option: no solver or no option name");
  GFV_CHECK(s->state != GFV_SOLVER_SETUP_FAILED, GFV_ERR_USAGE,
            "gfv_solver_set_option: the solver's set-up failed; only gfv_solver_free is left");
  /* Validated on a copy with the combinations, so a refused value leaves nothing behind. */
  gfv_config *tmp = NULL;
  GFV_CALL(gfv_calloc(&tmp, 1, sizeof *tmp));
  *tmp = s->config;
  int st;
  GFV_CALL_GOTO(st, gfv_config_set(tmp, name, value, NULL), done);
  if (s->state == GFV_SOLVER_READY && !is_run_option(name))
    GFV_ERROR_GOTO(st, done, GFV_ERR_USAGE,
                   "--%s: cannot change after gfv_solver_setup (only iters, tol-update, "
                   "progress-every, quiet, out, out-samples, eval-samples, checkpoint, "
                   "checkpoint-every, checkpoint-seconds, strict, resample and predict can)",
                   name);
  if (s->state == GFV_SOLVER_READY) GFV_CALL_GOTO(st, gfv_config_check(tmp), done);
  s->config = *tmp;
done:
  free(tmp);
  return st;
}

int gfv_solver_set_config_impl(gfv_solver *s, const gfv_config *cfg) {
  GFV_CHECK(s->state == GFV_SOLVER_EMPTY, GFV_ERR_USAGE,
            "gfv_solver_set_config: only before gfv_solver_setup");
  if (cfg != &s->config) s->config = *cfg;
  return GFV_OK;
}

int gfv_solver_set_target_impl(gfv_solver *s, gfv_target *target) {
  GFV_CHECK(s->state == GFV_SOLVER_EMPTY, GFV_ERR_USAGE,
            "gfv_solver_set_target: only before gfv_solver_setup");
  GFV_CHECK(target, GFV_ERR_USAGE, "gfv_solver_set_target: no target given");
  s->target = target;
  return GFV_OK;
}

int gfv_solver_solve_impl(gfv_solver *s) {
  if (s->state == GFV_SOLVER_EMPTY) GFV_CALL(gfv_solver_setup(s));
  GFV_CALL(gfv_solver_run(s));
  return GFV_OK;
}

void gfv_solver_set_monitor(gfv_solver *s, gfv_monitor_fn fn, void *ctx) {
  s->monitor = fn, s->monitor_ctx = ctx;
}

void gfv_solver_set_log(gfv_solver *s, gfv_log_fn fn, void *ctx) { s->log = fn, s->log_ctx = ctx; }

void gfv_log(const gfv_solver *s, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gfv_log_vline(s ? s->log : NULL, s ? s->log_ctx : NULL, level, fmt, ap);
  va_end(ap);
}

/* ---- accessors --------------------------------------------------------------------------- */

static int ready(const gfv_solver *s) { return s->state == GFV_SOLVER_READY; }

int gfv_solver_require_ready(const gfv_solver *s, const char *fn) {
  GFV_CHECK(s && ready(s), GFV_ERR_USAGE, "%s: the solver is not set up (%s)", fn,
            s && s->state == GFV_SOLVER_SETUP_FAILED ? "its set-up failed"
                                                     : "call gfv_solver_setup first");
  return GFV_OK;
}

size_t gfv_solver_dim(const gfv_solver *s) {
  return ready(s) ? s->d : s->target ? s->target->dim : 0;
}
size_t gfv_solver_num_particles(const gfv_solver *s) {
  return ready(s) ? s->K : (size_t)s->cfg->particles;
}
void gfv_solver_local_particles(const gfv_solver *s, size_t *first, size_t *count) {
  *first = ready(s) ? s->k0 : 0;
  *count = ready(s) ? s->kloc : 0;
}
const char *gfv_solver_family(const gfv_solver *s) {
  return ready(s) ? s->fam->name : s->cfg->family;
}
const char *gfv_solver_layout(const gfv_solver *s) {
  return ready(s) ? gfv_layout_name(s->layout) : s->cfg->layout;
}
const char *gfv_solver_flow(const gfv_solver *s) {
  return ready(s) ? s->flow->name : s->cfg->flow;
}
const char *gfv_solver_estimator(const gfv_solver *s) {
  return ready(s) ? s->est->name : s->cfg->estimator;
}
size_t gfv_eval_result_size(void) { return sizeof(gfv_eval_result); }
int gfv_solver_num_ranks(const gfv_solver *s) { return s->size; }
int gfv_solver_rank(const gfv_solver *s) { return s->rank; }
const gfv_config *gfv_solver_config(const gfv_solver *s) { return s->cfg; }

int gfv_solver_gather_covariances_impl(gfv_solver *s, double *w, double *mu, double *Sigma) {
  GFV_CALL(gfv_solver_gather(s, w, mu, Sigma)); /* the precisions, inverted below */
  const size_t d = s->d, ps = s->psize;
  int bad = 0;
  for (size_t k = 0; k < s->K && !bad; k++) {
    double *S = Sigma + k * ps;
    /* full_L holds P_k's factor, gathered with the precisions (S holds P_k on entry). */
    bad = s->fam->covariance(s->fam, d, S, s->full_L + k * ps, S) != 0;
  }
  GFV_CHECK(!bad, GFV_ERR_NUMERIC, "gfv_solver_gather_covariances: a precision could not be inverted");
  return GFV_OK;
}
