/* solver.h - the gradient-flow solver: set up, iterate, evaluate, write.
 *
 * GSL-style split: gfv_solver_create allocates everything (no allocation in the loop),
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

/* Collective.  The solver keeps pointers to cfg, target and comm (owned by the caller). */
int gfv_solver_create(const gfv_config *cfg, gfv_target *target, gfv_comm *comm, gfv_solver **out);
void gfv_solver_free(gfv_solver *s);

/* Collective: one accepted iteration (rejections with halved steps happen inside). */
int gfv_solver_iterate(gfv_solver *s);
/* Collective: iterate to cfg->iters (or the tolerance), printing progress on rank 0. */
int gfv_solver_run(gfv_solver *s);
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

/* Queries. */
long gfv_solver_iteration(const gfv_solver *s);
double gfv_solver_elbo(const gfv_solver *s, double *se);
/* Seconds spent in gfv_solver_run so far. */
double gfv_solver_seconds(const gfv_solver *s);
/* Collective: every particle's parameters on every rank: weights (K), means (K x d),
 * precisions (K x d x d; K x d diagonals in the diag family).  Arrays are the caller's. */
int gfv_solver_gather(gfv_solver *s, double *w, double *mu, double *P);

#pragma GCC visibility pop

#endif
