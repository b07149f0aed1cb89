/* convergence.h - when a fit may be called converged: a windowed test on the per-iteration
 * ELBO estimates that accounts for their Monte Carlo error (--tol), and the old relative
 * update-norm test under its honest name (--tol-update).
 *
 * The windowed test (convergence.c explains each choice): the n-th value pushed is the ELBO
 * estimate of iteration n.  Every `window` pushes close a window; its mean m, median md and
 * the standard error se of its mean are compared with the previous window's:
 *
 *   scale      = max(1, |m|)
 *   rel_mean   = |m - m_prev| / scale,   rel_median = |md - md_prev| / scale,
 *   se_delta   = sqrt(se^2 + se_prev^2),
 *   rel_bound  = (|m - m_prev| + 2 se_delta) / scale    (an upper confidence bound)
 *
 * A window passes when rel_median < tol and rel_bound < tol (rel_bound < tol implies
 * rel_mean < tol): the change is below tol and resolved, so noise alone cannot pass.  The
 * test has converged when `hold` consecutive windows passed.  tol = 0 never converges.
 *
 * No allocation after gfv_convergence_create.  Checkpoints: the state is recomputed from the
 * trace (which every checkpoint stores bitwise) with gfv_convergence_replay; replaying the
 * same values performs the same arithmetic, so a restarted run continues the test exactly. */
#ifndef GFLOWVI_CONVERGENCE_H
#define GFLOWVI_CONVERGENCE_H

#include <stddef.h>

#include "solver/trace.h"

/* Windows shorter than this cannot give the batch-means standard error (5 batches of >= 2). */
#define GFV_CONV_MIN_WINDOW 10
/* Defaults: iterations per window (--conv-window) and consecutive passing windows; converged
 * means the ELBO agreed to within tol over 3 windows (150 iterations at the default 50). */
#define GFV_CONV_WINDOW 50
#define GFV_CONV_HOLD 2
/* Batches of the batch-means standard error of a window's mean. */
#define GFV_CONV_BATCHES 5

typedef struct gfv_convergence gfv_convergence;

typedef struct {
  long pushes;        /* values pushed = the last iteration seen */
  long windows;       /* windows closed */
  /* The last closed window (NAN before the first). */
  double mean, median, se; /* se: standard error of the window's mean */
  /* Against the window before it (NAN before the second window). */
  double rel_mean, rel_median, rel_bound, se_delta;
  long streak;        /* consecutive windows that passed, up to the last closed one */
  long first_held;    /* iteration closing the first window of the current streak; -1: none */
  long converged_at;  /* iteration where the test first converged; -1: not yet (stays set) */
  int converged;      /* the test holds now: streak >= hold */
} gfv_convergence_stats;

/* window >= GFV_CONV_MIN_WINDOW pushes per window, hold >= 1 windows, 0 <= tol <= 1
 * (GFV_ERR_USAGE otherwise, naming the option). */
int gfv_convergence_create(size_t window, size_t hold, double tol, gfv_convergence **out);
void gfv_convergence_free(gfv_convergence *c);
/* Back to the state after create. */
void gfv_convergence_reset(gfv_convergence *c);

/* One iteration's ELBO estimate and its Monte Carlo standard error.  *converged (may be
 * NULL) is set to 1 while the test holds, else 0.  GFV_ERR_NUMERIC for a non-finite elbo or
 * a negative or non-finite elbo_se (the solver never records those). */
int gfv_convergence_push(gfv_convergence *c, double elbo, double elbo_se, int *converged);

void gfv_convergence_get_stats(const gfv_convergence *c, gfv_convergence_stats *out);

/* Resets c and pushes the trace rows with iteration >= 1 (row 0, the initial estimate, is
 * never pushed by the solver), in order: the state of the live run after those iterations. */
int gfv_convergence_replay(gfv_convergence *c, const gfv_trace_row *rows, size_t n);

/* The old test, kept for --tol-update: the relative update norm
 * |delta lambda| / (1 + |lambda|) of the last step is below tol.  It says the particles
 * moved little, not that the fit is good: with a small step or a flat stretch of the
 * objective it holds far from the optimum.  tol <= 0 never holds. */
int gfv_update_norm_below(double rel_update_norm, double tol);

#endif
