/* api_calls.c - the public calls of solver.h that return a status, around their bodies
 * (the *_impl functions of api.c, solver.c, evaluate.c, ...).  Each call
 *  - records its outcome in the solver (docs/api.md, "Errors"): GFV_OK and "" on success,
 *    else the status and this thread's message when the call raised one, so that two
 *    solvers in one thread keep their own last error however the calls interleave;
 *  - puts the solver's log callback in scope while it runs, so that what the target says
 *    during the call (a plugin's warnings) reaches the same callback (src/core/log.h).
 * Calls nest (solve runs setup; a monitor may gather): the inner call records first, the
 * outer one records the same outcome or overwrites it with its own. */
#include <stdio.h>

#include "core/error_serial.h"
#include "core/log.h"
#include "gflowvi/error.h"
#include "solver/solver_impl.h"

typedef struct {
  gfv_log_scope saved;
  unsigned long serial; /* this thread's error count when the call began */
} call_frame;

static call_frame enter(const gfv_solver *s) {
  call_frame f = {gfv_log_scope_enter(s->log, s->log_ctx), gfv_error_serial()};
  return f;
}

static int leave(gfv_solver *s, call_frame f, const char *fn, int st) {
  gfv_log_scope_leave(f.saved);
  s->err_code = st;
  /* A message raised during this call is its own (a stop carries one only when it was
   * raised with GFV_STOPPED; a rejected step's message may linger from the same call). */
  int fresh = gfv_error_serial() != f.serial && (st != GFV_STOPPED || gfv_error_code() == st);
  if (!st) s->err_message[0] = '\0';
  else if (fresh) snprintf(s->err_message, sizeof s->err_message, "%s", gfv_error_message());
  else if (st == GFV_STOPPED)
    snprintf(s->err_message, sizeof s->err_message,
             "%s: stopped (the monitor, or a signal after its checkpoint, ended the run)", fn);
  else
    snprintf(s->err_message, sizeof s->err_message,
             "%s: failed on another rank (status %d, %s); the lowest failing rank's message "
             "says why", fn, st, gfv_status_name(st));
  return st;
}

/* The body's status, recorded in s; a NULL solver leaves only the thread's record. */
#define SOLVER_CALL(s, fn, body)                                                                   \
  do {                                                                                             \
    if (!(s)) GFV_ERROR(GFV_ERR_USAGE, "%s: no solver given", fn);                                 \
    call_frame f_ = enter(s);                                                                      \
    return leave((s), f_, fn, (body));                                                             \
  } while (0)

int gfv_solver_error_code(const gfv_solver *s) { return s ? s->err_code : GFV_ERR_USAGE; }
const char *gfv_solver_error_message(const gfv_solver *s) {
  return s ? s->err_message : "no solver given";
}

int gfv_solver_set_option(gfv_solver *s, const char *name, const char *value) {
  SOLVER_CALL(s, "gfv_solver_set_option", gfv_solver_set_option_impl(s, name, value));
}
int gfv_solver_set_config(gfv_solver *s, const gfv_config *cfg) {
  SOLVER_CALL(s, "gfv_solver_set_config", gfv_solver_set_config_impl(s, cfg));
}
int gfv_solver_set_target(gfv_solver *s, gfv_target *target) {
  SOLVER_CALL(s, "gfv_solver_set_target", gfv_solver_set_target_impl(s, target));
}
int gfv_solver_setup(gfv_solver *s) { SOLVER_CALL(s, "gfv_solver_setup", gfv_solver_setup_impl(s)); }
int gfv_solver_iterate(gfv_solver *s) {
  SOLVER_CALL(s, "gfv_solver_iterate", gfv_solver_iterate_impl(s));
}
int gfv_solver_run(gfv_solver *s) { SOLVER_CALL(s, "gfv_solver_run", gfv_solver_run_impl(s)); }
int gfv_solver_solve(gfv_solver *s) { SOLVER_CALL(s, "gfv_solver_solve", gfv_solver_solve_impl(s)); }
int gfv_solver_evaluate(gfv_solver *s, gfv_eval_result *res) {
  SOLVER_CALL(s, "gfv_solver_evaluate", gfv_solver_evaluate_impl(s, res));
}
int gfv_solver_write_outputs(gfv_solver *s, const gfv_eval_result *res) {
  SOLVER_CALL(s, "gfv_solver_write_outputs", gfv_solver_write_outputs_impl(s, res));
}
int gfv_solver_check_target(gfv_solver *s, FILE *out) {
  SOLVER_CALL(s, "gfv_solver_check_target", gfv_solver_check_target_impl(s, out));
}
int gfv_solver_checkpoint(gfv_solver *s, const char *path) {
  SOLVER_CALL(s, "gfv_solver_checkpoint", gfv_solver_checkpoint_impl(s, path));
}
int gfv_solver_stop(gfv_solver *s, const char *phase) {
  SOLVER_CALL(s, "gfv_solver_stop", gfv_solver_stop_impl(s, phase));
}
int gfv_solver_gather(gfv_solver *s, double *w, double *mu, double *P) {
  SOLVER_CALL(s, "gfv_solver_gather", gfv_solver_gather_impl(s, w, mu, P));
}
int gfv_solver_gather_covariances(gfv_solver *s, double *w, double *mu, double *Sigma) {
  SOLVER_CALL(s, "gfv_solver_gather_covariances", gfv_solver_gather_covariances_impl(s, w, mu, Sigma));
}
