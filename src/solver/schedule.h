/* schedule.h - the step-size schedule (--step-schedule): the step of each iteration from the
 * ELBO estimates so far, built in instead of emulated by chunked restarts
 * (tools/experiments/oq2_stepsize.py).
 *
 *   constant  --step, halved for the rest of the run by each rejected step (the solver's
 *             backtracking; the behaviour before schedules existed).
 *   decay     eta_c = --step / (1 + c) in chunk c (iterations c C + 1 .. (c + 1) C), times
 *             the halvings of rejected steps so far; never below step_min.
 *   adaptive  starts at --step; at the end of each chunk compares the mean ELBO of the
 *             chunk's second half with the previous chunk's second half:
 *               a rejected step in the chunk         -> eta / 2
 *               delta > z_up se(delta)  (improved)   -> eta * 1.5 (at most step_max)
 *               delta < z_down se(delta) (not)       -> eta / 2  (at least step_min)
 *               otherwise (within the noise)         -> eta unchanged
 *             delta = new half-chunk mean - old; z_up = z_down = 0 is the experiment's rule
 *             (any increase); schedule.c says which z were tried and why the default.
 *             A rejected step lowers the step at once for the rest of the chunk.
 *
 * Calling convention: the solver runs iteration iter with the step returned for it (the
 * first with gfv_schedule_first_step), then calls gfv_schedule_step with that iteration's
 * ELBO estimate and the step it actually used; a used step smaller than the one returned
 * means the solver rejected the step and retried with it halved.  Those are exactly the
 * trace columns (iteration, elbo, elbo_se, step_size), so gfv_schedule_replay recomputes
 * the state of a restarted run from its checkpoint's trace, bitwise.
 *
 * The state is a plain struct of numbers; nothing is allocated. */
#ifndef GFLOWVI_SCHEDULE_H
#define GFLOWVI_SCHEDULE_H

#include <stddef.h>

#include "solver/trace.h"

typedef enum { GFV_SCHEDULE_CONSTANT, GFV_SCHEDULE_DECAY, GFV_SCHEDULE_ADAPTIVE } gfv_schedule_kind;

typedef struct {
  gfv_schedule_kind kind;
  double step;      /* eta_0 (--step) */
  double step_max;  /* adaptive: cap on growth */
  double step_min;  /* decay, adaptive: floor of the schedule's own decreases */
  long chunk;       /* C: iterations per chunk (decay, adaptive) */
  double z_up;      /* adaptive: grow when delta > z_up se(delta) */
  double z_down;    /* adaptive: shrink when delta < z_down se(delta); z_down <= z_up */
} gfv_schedule_params;

/* The defaults chosen with tools/experiments/oq2_schedule.py (schedule.c says why). */
#define GFV_SCHEDULE_CHUNK 25
#define GFV_SCHEDULE_GROW 1.5
#define GFV_SCHEDULE_SHRINK 0.5
#define GFV_SCHEDULE_Z_UP 1.0       /* grow on an improvement of more than 1 se */
#define GFV_SCHEDULE_Z_DOWN 0.0     /* halve on any decrease */
#define GFV_SCHEDULE_STEP_MAX 1.0   /* default cap: max(1, --step) */
#define GFV_SCHEDULE_MIN_RATIO 0.01 /* default floor: --step / 100 */

typedef struct {
  gfv_schedule_params p;
  double eta;        /* the step returned last (the step for the next iteration) */
  double chunk_eta;  /* adaptive: the step the current chunk started with; decay: unused */
  double backoff;    /* decay: product of the rejections' halvings so far */
  int rejected;      /* a rejection in the current chunk */
  /* Second half of the current chunk and of the previous one: count, mean, sum of squared
   * deviations (Welford), sum of se^2. */
  long n;
  double mean, m2, var_sum;
  int have_prev;
  double prev_mean, prev_se;
  long last_iter;    /* the iteration last passed to gfv_schedule_step */
  /* The last chunk decision (for the progress line and the summary). */
  double last_delta, last_se_delta;
  int last_decision; /* -1 shrink, 0 keep, +1 grow; 0 before the first chunk end */
} gfv_schedule;

/* Fills p for the options: step_max <= 0 means max(GFV_SCHEDULE_STEP_MAX, step), step_min <= 0
 * means step * GFV_SCHEDULE_MIN_RATIO; the floor is raised to step / 2^max_retries, below
 * which the solver's retries give up (so the step it is given is always one it may try).
 * Chunk and z are the defaults above. */
void gfv_schedule_resolve(gfv_schedule_params *p, gfv_schedule_kind kind, double step,
                          double step_max, double step_min, long max_retries);

/* Checks the parameters (GFV_ERR_USAGE naming the option: step > 0, 0 < step_min <= step <=
 * step_max, chunk >= 4, z_down <= z_up) and starts the schedule. */
int gfv_schedule_init(gfv_schedule *s, const gfv_schedule_params *p);

/* The step of iteration 1. */
double gfv_schedule_first_step(const gfv_schedule *s);

/* After iteration iter (1, 2, ... in order): its ELBO estimate, standard error and the step
 * it used.  Returns the step for iteration iter + 1. */
double gfv_schedule_step(gfv_schedule *s, long iter, double elbo, double elbo_se, double step_used);

/* Re-initialises s with its parameters and feeds it the trace rows with iteration >= 1.
 * Returns the step for the iteration after the last row (what the live run held). */
double gfv_schedule_replay(gfv_schedule *s, const gfv_trace_row *rows, size_t n);

/* For a restart whose replay does not give the checkpoint's step (the step options changed,
 * e.g. a new --step, to which the solver rescales the saved step): re-initialises s to go on
 * after iteration iter with step eta.  Decay keeps eta's ratio to its formula as the halvings
 * so far; adaptive has no previous chunk to compare with until the next chunk end. */
void gfv_schedule_continue(gfv_schedule *s, long iter, double eta);

/* "constant", "decay", "adaptive" -> kind; GFV_ERR_USAGE for anything else. */
int gfv_schedule_parse(const char *name, gfv_schedule_kind *out);
const char *gfv_schedule_name(gfv_schedule_kind kind);

#endif
