/* schedule_driver.c - the solver loop with the step-size schedule (src/solver/schedule.h) and
 * the windowed convergence test (src/solver/convergence.h), before they are wired into
 * gfv_solver_run: the experiment tools/experiments/oq2_schedule.py runs it, and it shows how
 * the solver should call the two modules (the loop in run_loop below).
 *
 *   build/bin/schedule_driver [gflowvi options] [driver options]
 *   driver options: --schedule=constant|decay|adaptive --step-max=X --step-min=X --chunk=N
 *                   --z-up=X --z-down=X --conv-tol=X --conv-window=N --conv-hold=N
 *                   --stop-on-converge=0|1
 *   (defaults: adaptive, gfv_schedule_resolve's cap, floor, chunk and z; tol 1e-3, window
 *   50, hold 2, no stop)
 * Prints one line of key=value pairs: the final KL (normalised targets), ELBO, iterations,
 * rejected steps, the iteration where the test converged, the step of every chunk, and
 * whether replaying the trace reproduced the live state of both modules bitwise.
 *
 * It reaches into the solver's state (solver_impl.h: s->eta, s->trace) because the schedule
 * is not an option yet; built by oq2_schedule.py, not by the Makefile. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "solver/convergence.h"
#include "solver/schedule.h"
#include "solver/solver_impl.h"

typedef struct {
  gfv_schedule_kind kind;
  double step_max, step_min, z_up, z_down; /* 0 / NAN: the defaults */
  long chunk;
  double conv_tol;
  long conv_window, conv_hold;
  int stop;
} driver_opts;

/* Takes the driver's own options out of argv (in place); returns the new argc. */
static int driver_args(int argc, char **argv, driver_opts *o) {
  int n = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *eq = strchr(a, '=');
    const char *v = eq ? eq + 1 : "";
#define IS(name) (strncmp(a, name "=", sizeof name) == 0)
    if (IS("--schedule")) gfv_schedule_parse(v, &o->kind);
    else if (IS("--step-max")) o->step_max = atof(v);
    else if (IS("--step-min")) o->step_min = atof(v);
    else if (IS("--chunk")) o->chunk = atol(v);
    else if (IS("--z-up")) o->z_up = atof(v);
    else if (IS("--z-down")) o->z_down = atof(v);
    else if (IS("--conv-tol")) o->conv_tol = atof(v);
    else if (IS("--conv-window")) o->conv_window = atol(v);
    else if (IS("--conv-hold")) o->conv_hold = atol(v);
    else if (IS("--stop-on-converge")) o->stop = atoi(v);
    else argv[n++] = argv[i];
#undef IS
  }
  return n;
}

/* THE INTEGRATION: what gfv_solver_run should do each iteration.  Before the loop:
 * s->eta = gfv_schedule_first_step(sch) (or, on --restart, gfv_schedule_replay and
 * gfv_convergence_replay over s->trace).  gfv_solver_iterate runs the iteration with s->eta,
 * halving it on rejections; the trace row it records holds the step it actually used. */
static int run_loop(gfv_solver *s, gfv_schedule *sch, gfv_convergence *cv, int stop, double *chunk_steps,
                    size_t *nchunk) {
  const gfv_config *cfg = s->cfg;
  s->eta = gfv_schedule_first_step(sch);
  while (s->iter < cfg->iters) {
    if (sch->p.kind != GFV_SCHEDULE_CONSTANT && (s->iter % sch->p.chunk) == 0)
      chunk_steps[(*nchunk)++] = s->eta;
    GFV_CALL(gfv_solver_iterate(s));
    const gfv_trace_row *t = &s->trace[s->ntrace - 1];
    s->eta = gfv_schedule_step(sch, t->iteration, t->elbo, t->elbo_se, t->step_size);
    int converged = 0;
    GFV_CALL(gfv_convergence_push(cv, t->elbo, t->elbo_se, &converged));
    s->converged = converged;
    if (converged && stop) break;
  }
  return GFV_OK;
}

int main(int argc, char **argv) {
  gfv_comm *comm = NULL;
  if (gfv_comm_init_mpi(&argc, &argv, &comm)) return 1;
  driver_opts o = {GFV_SCHEDULE_ADAPTIVE, 0, 0, NAN, NAN, 0, 1e-3, 50, 2, 0};
  argc = driver_args(argc, argv, &o);
  gfv_config cfg;
  gfv_target *t = NULL;
  gfv_solver *s = NULL;
  gfv_schedule sch, sch2;
  gfv_convergence *cv = NULL, *cv2 = NULL;
  gfv_eval_result res;
  double chunk_steps[4096];
  size_t nchunk = 0;
  int help = 0, st = gfv_config_parse(&cfg, argc, argv, &help);
  cfg.quiet = 1;
  gfv_schedule_params sp; /* as the solver would resolve the options */
  gfv_schedule_resolve(&sp, o.kind, cfg.step, o.step_max, o.step_min, cfg.max_retries);
  if (o.chunk > 0) sp.chunk = o.chunk;
  if (!isnan(o.z_up)) sp.z_up = o.z_up;
  if (!isnan(o.z_down)) sp.z_down = o.z_down;
  if (cfg.iters / sp.chunk >= 4096) st = GFV_ERR_USAGE;
  if (!st) st = gfv_target_create_from_config(&cfg, &t);
  if (!st) st = gfv_schedule_init(&sch, &sp);
  if (!st) st = gfv_convergence_create((size_t)o.conv_window, (size_t)o.conv_hold, o.conv_tol, &cv);
  if (!st) st = gfv_convergence_create((size_t)o.conv_window, (size_t)o.conv_hold, o.conv_tol, &cv2);
  if (!st) st = gfv_solver_create(&cfg, t, comm, &s);
  if (!st) st = run_loop(s, &sch, cv, o.stop, chunk_steps, &nchunk);
  if (!st) st = gfv_solver_evaluate(s, &res);
  if (!st && gfv_comm_rank(comm) == 0) {
    /* What a restart would recompute from the checkpoint's trace. */
    sch2 = sch;
    double eta2 = gfv_schedule_replay(&sch2, s->trace, s->ntrace);
    gfv_convergence_stats a, b;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    gfv_convergence_replay(cv2, s->trace, s->ntrace);
    gfv_convergence_get_stats(cv, &a);
    gfv_convergence_get_stats(cv2, &b);
    int same = memcmp(&sch, &sch2, sizeof sch) == 0 && eta2 == s->eta && memcmp(&a, &b, sizeof a) == 0;
    printf("kl=%.6g kl_se=%.3g elbo=%.6f iters=%ld rejected=%ld converged_at=%ld final_step=%.4g "
           "replay=%s steps=",
           res.kl, res.kl_se, res.elbo, s->iter, s->rejected, a.converged_at, s->eta,
           same ? "same" : "DIFFERENT");
    for (size_t i = 0; i < nchunk; i++) printf("%s%.3g", i ? ";" : "", chunk_steps[i]);
    printf("\n");
  }
  if (st && gfv_comm_rank(comm) == 0) fprintf(stderr, "schedule_driver: error %d: %s\n", st, gfv_error_message());
  gfv_solver_free(s);
  gfv_convergence_free(cv), gfv_convergence_free(cv2);
  gfv_target_free(t);
  gfv_comm_free(comm);
  return st;
}
