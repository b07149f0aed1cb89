/* solver_impl.h - the solver's state, shared by the files of src/solver/ only. */
#ifndef GFLOWVI_SOLVER_IMPL_H
#define GFLOWVI_SOLVER_IMPL_H

#include "flows/flow.h"
#include "gflowvi/mixture.h"
#include "gflowvi/solver.h"
#include "solver/particles.h"
#include "solver/trace.h"

/* --estimator=auto uses the hessian estimator in the diagonal family up to this dimension
 * (it reads the targets' full d x d Hessians per sample), stein above. */
#define GFV_DIAG_HESSIAN_MAX_DIM 64

/* The Monte Carlo estimates at one state of the particles. */
typedef struct {
  double *gh;      /* kloc x d: E[grad h] per local particle */
  double *G;       /* kloc x psize: estimate of E[H_h] (its diagonal in the diag family) */
  double *phi;     /* kloc: E[h], the particle's share of the objective */
  double *phivar;  /* kloc: sample variance of h over the particle's samples */
  double phibar;   /* sum_k w_k phi_k over all particles = -ELBO */
  double elbo, elbo_se;
} gfv_estimate;

struct gfv_solver {
  const gfv_config *cfg;
  gfv_target *target;
  gfv_comm *comm;
  const gfv_flow_type *flow;
  const gfv_estimator_type *est;
  int rank, size, plain;
  int diag;                 /* the diagonal family (--family=diag) */
  size_t psize;             /* numbers per precision: d * d, or d for diag */
  size_t d, K, S, k0, kloc, n, nloc; /* n = K S points in all, nloc = kloc S on this rank */

  gfv_particles cur, prev; /* prev: the state before the last update, for rejections */
  gfv_estimate est_buf[2];
  int cur_est;              /* est_buf[cur_est] holds the estimates at cur */

  size_t *z_counts, *z_displs, *rs_counts; /* per rank: gathered points, reduce-scatter */
  double *zall;             /* n x d: every particle's samples (this rank's at k0 S) */
  double *logp, *grad_l, *hess_l; /* at this rank's samples; hess_l only for hessian */
  double *A, *logq;         /* n x kloc phase-A terms; log q_rho at all n points */
  double *gbar_all, *H_all; /* phase-B partial sums over this rank's components */
  double *send, *recv;      /* reduce-scatter buffers */
  double *flow_work, *est_work;
  gfv_mix_work *mw;

  gfv_trace_row *trace;
  size_t ntrace;
  long iter;
  double eta;               /* the current step: --step, halved by each rejection */
  double last_rel_step;     /* relative update norm of the last accepted step */
  long rejected;            /* rejected step attempts so far */
  int converged;
  double timers[GFV_NPHASES];
  double t_start, run_seconds;

  /* The whole mixture on every rank, filled by gfv_solver_evaluate. */
  double *full_logw, *full_mu, *full_P, *full_L, *full_logc;

  volatile sig_atomic_t *stop_flag; /* set by a signal handler; NULL when none */
  int stop_requested;               /* some rank saw the stop flag (agreed) */
  int checkpoint_due;               /* some rank's checkpoint timer expired (agreed) */
  double last_checkpoint;           /* wall time of the last checkpoint (or the start) */
};

/* Collective: loads the checkpoint at path into a freshly created solver. */
int gfv_solver_restore(gfv_solver *s, const char *path);

/* Collective: samples, target, mixture terms, estimates at s->cur into e; *bad is set on
 * every rank when any rank saw a non-finite value. */
int gfv_solver_estimate(gfv_solver *s, gfv_estimate *e, int *bad);

/* Collective: fills s->full_* from every rank's particles. */
int gfv_solver_gather_full(gfv_solver *s);

/* Seconds since the solver was created. */
double gfv_solver_elapsed(const gfv_solver *s);

#endif
