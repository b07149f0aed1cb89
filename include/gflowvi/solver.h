/* solver.h - the gradient-flow solver: set up, iterate, evaluate, write.
 *
 * GSL-style split: gfv_solver_setup (or gfv_solver_create) allocates everything (no
 * allocation in the loop; docs/api.md has the whole life cycle),
 * gfv_solver_iterate performs one accepted step, gfv_solver_run loops with progress lines
 * and the stopping test, gfv_solver_evaluate estimates the final ELBO from fresh samples,
 * gfv_solver_write_outputs writes the output directory.  All are collective: every rank
 * calls them in the same order, and every rank returns the same status. */
#ifndef GFLOWVI_SOLVER_H
#define GFLOWVI_SOLVER_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/log.h"
#include "gflowvi/target.h"

typedef struct gfv_solver gfv_solver;

#define GFV_MAX_WARNINGS 16
#define GFV_WARNING_LEN 400

/* Per-phase timers of one rank, in seconds. */
enum gfv_phase {
  GFV_PHASE_SAMPLE,
  GFV_PHASE_TARGET,
  GFV_PHASE_MIXTURE,
  GFV_PHASE_COMM,
  GFV_PHASE_UPDATE,
  GFV_PHASE_EVAL,
  GFV_PHASE_IO,
  GFV_NPHASES
};
extern const char *const gfv_phase_names[GFV_NPHASES];

typedef struct {
  double elbo, elbo_se;   /* from eval_samples fresh samples of the final mixture */
  double kl, kl_se;       /* -elbo when the target is normalised, else NAN */
  size_t eval_samples;    /* samples actually used (a multiple of K) */
  size_t negligible;      /* components with weight below 1e-6 */
  double outside;         /* fraction of the samples outside the target's support (l = -inf) */
  /* PSIS diagnostics of the importance ratios p~/q at the same samples (psis.h). */
  double khat;            /* Pareto k-hat: > 0.7 means do not trust expectations under q */
  double log_evidence, log_evidence_se; /* importance-weighted log Z estimate */
  double ess;             /* effective sample size of the smoothed importance weights */
  /* The verdict (diagnostics.c): warnings in words, and whether any of them says the fit
   * should not be trusted (reliable = 0).  Notes (recovered rejections, negligible
   * components) are listed but leave reliable = 1. */
  int nwarnings, reliable;
  int warning_severe[GFV_MAX_WARNINGS];
  char warnings[GFV_MAX_WARNINGS][GFV_WARNING_LEN];
} gfv_eval_result;
/* sizeof(gfv_eval_result), for bindings that mirror the struct (src/bindings/python/). */
size_t gfv_eval_result_size(void);

/* ---- Life cycle (docs/api.md) ----------------------------------------------------------
 *
 *   gfv_solver_create_empty(comm, &s);          the default configuration, owned by s
 *   gfv_solver_set_option(s, "particles", "8"); validated as on the command line
 *   gfv_solver_set_target(s, target);
 *   gfv_solver_setup(s);                        sizes, allocation, initial particles
 *   gfv_solver_solve(s);  or  gfv_solver_iterate(s) as often as wanted
 *   gfv_solver_free(s);
 *
 * The solver keeps pointers to target and comm (the caller's, to outlive it) and its own copy
 * of the configuration.  All calls are collective but the accessors and the setters of
 * callbacks and options (which every rank must still make alike). */

/* Collective (agrees on the allocation).  A solver with the default configuration. */
int gfv_solver_create_empty(gfv_comm *comm, gfv_solver **out);
/* Sets option name (as on the command line, without "--") from its text value, validated as
 * the command line validates it: GFV_ERR_USAGE and a message naming the option and what it
 * allows for an unknown name or a bad value (the configuration is then unchanged).  After
 * gfv_solver_setup only the run options below may change; any other is refused with
 * GFV_ERR_USAGE: iters, tol-update, progress-every, quiet, out, out-samples, eval-samples,
 * checkpoint, checkpoint-every, checkpoint-seconds, strict, resample, predict. */
int gfv_solver_set_option(gfv_solver *s, const char *name, const char *value);
/* Copies a whole configuration (checked by gfv_solver_setup); before setup only. */
int gfv_solver_set_config(gfv_solver *s, const gfv_config *cfg);
/* The target to fit (the caller's; it must outlive the solver); before setup only. */
int gfv_solver_set_target(gfv_solver *s, gfv_target *target);
/* Collective: checks the configuration (gfv_config_check: an unknown choice or a value out of
 * range is GFV_ERR_USAGE naming the option), sizes and allocates everything, draws the initial
 * particles (or loads the checkpoint of the restart option) and estimates the ELBO there.
 * After a failure only gfv_solver_free is allowed. */
int gfv_solver_setup(gfv_solver *s);

/* Collective: create_empty + set_config(cfg) + set_target + setup in one call (the command
 * line's path); on failure *out is NULL and nothing is left allocated.  cfg is copied. */
int gfv_solver_create(const gfv_config *cfg, gfv_target *target, gfv_comm *comm, gfv_solver **out);
void gfv_solver_free(gfv_solver *s);

/* ---- Callbacks ------------------------------------------------------------------------- */

/* Called by gfv_solver_run / gfv_solver_solve on every rank after every accepted iteration,
 * with the iteration's number and ELBO (the same on every rank).  A non-zero return on any
 * rank stops the run: gfv_solver_solve then returns GFV_STOPPED on every rank (no checkpoint
 * is written).  The monitor may call collective functions (gfv_solver_gather), since every
 * rank calls it.  fn NULL removes it.  gfv_solver_iterate does not call it. */
typedef int (*gfv_monitor_fn)(gfv_solver *s, long iter, double elbo, void *ctx);
void gfv_solver_set_monitor(gfv_solver *s, gfv_monitor_fn fn, void *ctx);

/* What the solver says (the levels and gfv_log_fn are in log.h), on rank 0 only: the other
 * ranks say nothing.  With a callback set, the lines of the solver, and those said during a
 * call on it (a plugin's warnings), go to fn; fn NULL restores the thread's callback
 * (gfv_set_log) or, without one, stdout / stderr as the command-line program prints them. */
void gfv_solver_set_log(gfv_solver *s, gfv_log_fn fn, void *ctx);

/* Collective: one accepted iteration (rejections with halved steps happen inside). */
int gfv_solver_iterate(gfv_solver *s);
/* Collective: iterate to cfg->iters (or the tolerance), with progress lines on rank 0 (through
 * the log, gfv_solver_set_log), the monitor, checkpoints and the stop flag. */
int gfv_solver_run(gfv_solver *s);
/* Collective: gfv_solver_setup if not yet done, then gfv_solver_run.  GFV_STOPPED when the
 * monitor (or a stop signal, after its checkpoint) ended the run. */
int gfv_solver_solve(gfv_solver *s);
/* Collective: final ELBO / KL from fresh samples. */
int gfv_solver_evaluate(gfv_solver *s, gfv_eval_result *res);
/* Collective: rank 0 writes the output directory; every rank gets the outcome. */
int gfv_solver_write_outputs(gfv_solver *s, const gfv_eval_result *res);

/* Collective (--check-target): rank 0 compares the target's gradient (and Hessian) with
 * central finite differences at points drawn from the initial mixture and prints a table
 * and a verdict to out; GFV_ERR_NUMERIC on every rank when they disagree. */
int gfv_solver_check_target(gfv_solver *s, FILE *out);

/* Checkpoints (HDF5, see src/solver/checkpoint.c).  gfv_solver_checkpoint is collective
 * (rank 0 writes).  A run started with cfg->restart set continues from that file. */
int gfv_solver_checkpoint(gfv_solver *s, const char *path);
/* Collective, before the target is created: for cfg->restart, completes cfg with the
 * configuration stored in the checkpoint (options not given take its values; a changed
 * problem option is refused, GFV_ERR_USAGE) and refuses input files whose contents changed
 * since (GFV_ERR_INPUT).  Rank 0 reads the file and broadcasts it.  No-op without restart. */
int gfv_restart_configure(gfv_comm *comm, gfv_config *cfg);
/* The checkpoint file of this run: --checkpoint, or OUT/checkpoint.h5. */
const char *gfv_solver_checkpoint_path(const gfv_solver *s, char *buf, size_t size);
const char *gfv_checkpoint_path(const gfv_config *cfg, char *buf, size_t size);
/* Not collective (rank 0 calls it): removes from the output directory dir the files an
 * earlier run of gflowvi left there: summary.json first, then mixture.csv, trace.csv,
 * samples.csv, density.csv, mixture.h5, tools/plot.py's density.png and trace.png, and the
 * stale temporaries "<one of those or checkpoint.h5>.tmp.<pid>" of killed runs.  Never
 * checkpoint.h5, never recursively, never another name; a file that is one of keep (the
 * run's inputs, NULL or "" entries allowed) stays.  With dry_run set, removes nothing.
 * *count and *bytes (either may be NULL) get the number of files and the bytes they free. */
int gfv_outputs_clean(const char *dir, const char *const *keep, size_t nkeep, int dry_run,
                      size_t *count, double *bytes);
/* A flag set asynchronously (by a signal handler) to ask for a checkpoint and a stop at
 * the end of the current iteration; gfv_solver_run then returns GFV_STOPPED on every rank,
 * even if only some ranks saw the signal. */
void gfv_solver_set_stop_flag(gfv_solver *s, volatile sig_atomic_t *flag);

/* Collective: writes the checkpoint and says on stderr (rank 0) that the run stops on the
 * signal that asked for it, during `phase` (NULL: between iterations); returns GFV_STOPPED
 * (or the checkpoint's error). */
int gfv_solver_stop(gfv_solver *s, const char *phase);

/* Queries.  The sizes hold the configured values before gfv_solver_setup and the resolved
 * ones after it (layout: "auto" before, "params" or "samples" after). */
size_t gfv_solver_dim(const gfv_solver *s);           /* d (0 before a target is set) */
size_t gfv_solver_num_particles(const gfv_solver *s); /* K, over all ranks */
/* This rank's particles: global indices first .. first + count - 1 (after setup). */
void gfv_solver_local_particles(const gfv_solver *s, size_t *first, size_t *count);
const char *gfv_solver_family(const gfv_solver *s);   /* "full" or "diag" */
const char *gfv_solver_layout(const gfv_solver *s);
const char *gfv_solver_flow(const gfv_solver *s);      /* "ngflow" or "gflow" */
const char *gfv_solver_estimator(const gfv_solver *s); /* "hessian" or "stein" after setup */
int gfv_solver_num_ranks(const gfv_solver *s);
int gfv_solver_rank(const gfv_solver *s);
/* The solver's own configuration (read-only; change it with gfv_solver_set_option). */
const gfv_config *gfv_solver_config(const gfv_solver *s);
long gfv_solver_iteration(const gfv_solver *s);
double gfv_solver_elbo(const gfv_solver *s, double *se);
/* Seconds spent in gfv_solver_run so far. */
double gfv_solver_seconds(const gfv_solver *s);
/* Collective: every particle's parameters on every rank: weights (K), means (K x d),
 * precisions (K x d x d; K x d diagonals in the diag family).  Arrays are the caller's.
 * The precision P_k is the inverse covariance: component k is N(mu_k, P_k^-1); use
 * gfv_solver_gather_covariances for the covariances themselves. */
int gfv_solver_gather(gfv_solver *s, double *w, double *mu, double *P);
/* Collective: the same with the covariances (P_k^-1; the diagonals' reciprocals in the diag
 * family) in Sigma instead of the precisions.  GFV_ERR_NUMERIC when a P_k cannot be inverted. */
int gfv_solver_gather_covariances(gfv_solver *s, double *w, double *mu, double *Sigma);

/* ---- Errors (docs/api.md, "Errors") ----------------------------------------------------
 *
 * Every call on s that returns a status records it in s: GFV_OK and "" when it succeeded,
 * else its status and its one-line message (the one gfv_error_message() of the calling
 * thread holds right after it; on a rank where another rank's failure was agreed, a line
 * saying so).  The record describes the last such call on s only: two solvers keep theirs
 * apart, in one thread or in two.  The calls that return no status (the accessors, the
 * callbacks' setters) leave it alone; gfv_solver_create_empty and gfv_solver_create, which
 * have no solver yet when they fail, leave only the thread's record (error.h).  Not
 * collective.  NULL s: GFV_ERR_USAGE and "no solver given". */
int gfv_solver_error_code(const gfv_solver *s);
const char *gfv_solver_error_message(const gfv_solver *s);

#pragma GCC visibility pop

#endif
