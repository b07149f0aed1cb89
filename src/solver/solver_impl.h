/* solver_impl.h - the solver's state, shared by the files of src/solver/ only. */
#ifndef GFLOWVI_SOLVER_IMPL_H
#define GFLOWVI_SOLVER_IMPL_H

#include "flows/flow.h"
#include "gflowvi/mixture.h"
#include "gflowvi/solver.h"
#include "solver/convergence.h"
#include "solver/particles.h"
#include "solver/schedule.h"
#include "solver/trace.h"

/* --estimator=auto uses the hessian estimator in the diagonal family up to this dimension
 * (it reads the targets' full d x d Hessians per sample), stein above. */
#define GFV_DIAG_HESSIAN_MAX_DIM 64

/* The convergence test's tolerance when --tol = 0 (no early stop): the verdict still says
 * whether the ELBO settled, at Stan ADVI's default tol_rel_obj. */
#define GFV_CONV_VERDICT_TOL 0.01

/* What the ranks exchange per iteration (--layout; layout.c, docs/method.md section 9). */
enum { GFV_LAYOUT_SAMPLES, GFV_LAYOUT_PARAMS };
/* --layout resolved: params or samples as given; auto by the rule in layout.c. */
int gfv_layout_choose(const char *option, size_t K, size_t S, size_t d, int diag, int hessian,
                      int ranks);
/* The modelled seconds per iteration in which the layout differs from the other: its
 * collectives, and for samples the per-point work every rank repeats (layout.c). */
double gfv_layout_seconds(int layout, double K, double S, double d, double ps, int hessian,
                          double P);
const char *gfv_layout_name(int layout);

/* The Monte Carlo estimates at one state of the particles. */
typedef struct {
  double *gh;      /* kloc x d: E[grad h] per local particle */
  double *G;       /* kloc x psize: estimate of E[H_h] (its diagonal in the diag family) */
  double *phi;     /* kloc: E[h], the particle's share of the objective */
  double *phivar;  /* kloc: sample variance of h over the particle's samples */
  size_t *used;    /* kloc: samples inside the target's support (l > -inf) of each particle */
  int *bad;        /* kloc: the particle's estimates are unusable: 1 non-finite values, 2 no
                      sample inside the target's support */
  double phibar;   /* sum_k w_k phi_k over all particles = -ELBO */
  double outside;  /* fraction of all K S samples outside the support */
  double elbo, elbo_se;
} gfv_estimate;

/* The files that define the problem besides the options, by content (see restart.c):
 * --data, and the FILE of --target=gmm:FILE or plugin:FILE. */
enum { GFV_INPUT_DATA, GFV_INPUT_TARGET_FILE, GFV_NINPUTS };
#define GFV_SUM_CHARS 17 /* 16 hex digits of a 64-bit FNV-1a, and the NUL */
typedef char gfv_input_sums[GFV_NINPUTS][GFV_SUM_CHARS];
/* The checkpoint attribute holding each input's checksum. */
extern const char *const gfv_input_attr[GFV_NINPUTS];

/* Where a solver is in its life cycle (api.c): options and target may change while EMPTY;
 * SETUP_FAILED allows only gfv_solver_free. */
enum { GFV_SOLVER_EMPTY, GFV_SOLVER_READY, GFV_SOLVER_SETUP_FAILED };

struct gfv_solver {
  const gfv_config *cfg;    /* &config: every file reads the configuration through it */
  gfv_config config;        /* the solver's own copy (gfv_solver_set_option, _set_config) */
  int state;                /* GFV_SOLVER_EMPTY, ... */
  gfv_monitor_fn monitor;   /* gfv_solver_set_monitor (NULL: none) */
  void *monitor_ctx;
  gfv_log_fn log;           /* gfv_solver_set_log (NULL: stdout / stderr, see gfv_log) */
  void *log_ctx;
  int err_code;             /* the last status-returning call's status and message (api_calls.c) */
  char err_message[1024];
  gfv_target *target;
  gfv_comm *comm;
  const gfv_flow_type *flow;
  const gfv_estimator_type *est;
  int rank, size, plain;
  const gfv_family_type *fam; /* the covariance family (--family; mixture/family.h) */
  size_t psize;             /* numbers per precision: fam->psize(d) */
  size_t d, K, S, k0, kloc, n, nloc; /* n = K S points in all, nloc = kloc S on this rank */

  gfv_particles cur, prev; /* prev: the state before the last update, for rejections */
  gfv_estimate est_buf[2];
  int cur_est;              /* est_buf[cur_est] holds the estimates at cur */

  int layout;               /* GFV_LAYOUT_SAMPLES or GFV_LAYOUT_PARAMS (--layout resolved) */
  size_t *z_counts, *z_displs, *rs_counts; /* per rank: gathered points, reduce-scatter */
  size_t *g_counts, *g_displs; /* per rank: scratch for the parameters' all-gathers */
  double *zall;             /* samples layout: n x d, every particle's samples (this rank's
                               at k0 S); params layout: this rank's nloc x d */
  double *zloc;             /* this rank's samples, inside zall */
  double *logp, *grad_l, *hess_l; /* at this rank's samples; hess_l only for hessian */
  double *A, *logq;         /* samples layout: phase-A terms of a_rows x kloc, log q_rho at
                               all n points; params layout: no A, log q at the nloc points */
  double *logq_loc;         /* log q at this rank's samples, inside logq */
  size_t a_rows;            /* samples layout: points per phase-A range (n: all at once) */
  double *lse_tmp;          /* samples layout, several ranges: a range's own log-sum-exps */
  double *gbar_all, *H_all; /* samples layout: phase-B partial sums over this rank's components */
  size_t h_rows;            /* samples layout: particles whose Hessian sums H_all holds at once
                               (K, or fewer beyond the budget: gfv_samples_h_rows) */
  double *send, *recv;      /* reduce-scatter buffers; recv: gradient sums at this rank's
                               samples, then its particles' Hessian sums (both layouts) */
  unsigned char *skip;      /* params layout: this rank's samples the estimates cannot use */
  gfv_mix_fused *mf;        /* params layout: the fused kernel's workspace */
  double *flow_work, *est_work;
  gfv_mix_work *mw;

  gfv_trace_row *trace;
  size_t ntrace, trace_cap; /* rows used, rows allocated (--iters + 1 unless grown) */
  long iter;
  /* The counter of the next samples (rng/stream.h): the iteration whose estimate they are
   * for (0: the initial one) and how many estimates it drew before (retries).  Both follow
   * from iter, so a checkpoint needs no stream state. */
  uint64_t draw_iter, draw_try;
  double eta;               /* the current step: --step, halved by each rejection */
  /* Per-component step control (--trust-region > 0; docs/method.md, section 3). */
  double tr_bound;          /* --trust-region x max(1, d / 10): the largest bound */
  double *tr_eps;           /* kloc: each component's current KL bound */
  double *comp_scale;       /* kloc: step factor of each component within one iteration's retries */
  int *relocate_flags;      /* kloc: particles to restart next to the best one */
  long relocated;           /* particles restarted after leaving the target's support */
  long putback_said;        /* "component put back" warnings so far */
  double *kl_work;          /* d * d + d doubles for the KL */
  double *cz, *cgl, *chl, *cgb; /* one particle's samples inside the support, compacted */
  long tr_limited;          /* component steps shortened by the trust region, whole run */
  double max_move;          /* largest move of a component's mean in its own standard deviations */
  long max_move_iter;       /* the iteration it happened in */
  double *eval_phi;         /* kloc: each particle's E[log q - l] in the final evaluation */
  double conv_tol;          /* tolerance of the convergence test (0: none) */
  double conv_last_rel;     /* its last relative change */
  double last_rel_step;     /* relative update norm of the last accepted step */
  long rejected;            /* rejected step attempts so far */
  int converged;            /* the windowed ELBO test holds (at --tol, or the verdict's default) */
  gfv_schedule sched;       /* --step-schedule: the step of each iteration (schedule.h) */
  gfv_convergence *conv;    /* the windowed ELBO test (convergence.h) */
  double timers[GFV_NPHASES];
  double t_start, run_seconds;

  /* The whole mixture on every rank: every iteration in the params layout (all but L)
   * unless it streams, and for relocations, the final evaluation (unless it streams: then
   * full_logw alone) and the outputs (gfv_solver_gather_full; beyond the budget full_logw
   * alone, but for density.csv and the report and --predict hooks). */
  double *full_logw, *full_mu, *full_P, *full_L, *full_logc;
  /* The mixture streamed instead (params_stream.c): components per block (0: gathered), and
   * the two blocks in flight around the ring. */
  size_t stream_cap;
  double *ring[2];
  double *ring_bounds;      /* 2 kloc: the own precisions' eigenvalue bounds (lmin, then
                               lmax) that travel with the blocks, for the pruning */

  int stop_requested;               /* some rank saw the stop flag (agreed) */
  int checkpoint_due;               /* some rank's checkpoint timer expired (agreed) */
  double last_checkpoint;           /* wall time of the last checkpoint (or the start) */
  gfv_input_sums input_sums;        /* rank 0: the inputs' checksums at the start */
};

/* Checksums of cfg's input files (FNV-1a of their contents, hex); "" where there is none.
 * GFV_ERR_INPUT, naming the option, when a file cannot be read. */
int gfv_input_checksums(const gfv_config *cfg, gfv_input_sums sums);

/* Not collective: the configuration stored in the checkpoint at path, as config-file text
 * (*text, the caller frees it), and the input checksums stored with it, after checking the
 * format and their checksum.  *text is NULL for a checkpoint written before they were
 * stored (that restart keeps the command line's options and the older checks). */
int gfv_checkpoint_read_config(const char *path, char **text, gfv_input_sums sums);
/* The files of the output directory (src/solver/outputs.c), by index. */
enum { F_MIXTURE, F_TRACE, F_SAMPLES, F_DENSITY, F_H5, F_DRAWS, F_NC, F_PSIS, F_PREDICTIONS,
       F_SUMMARY, F_COUNT };
extern const char *const gfv_output_file_names[F_COUNT];
/* The checkpoint's name inside --out when --checkpoint is not given. */
#define GFV_CHECKPOINT_NAME "checkpoint.h5"
#define GFV_GRID 121 /* density.csv is GFV_GRID x GFV_GRID points (2-D targets) */
#define GFV_EVAL_BLOCK 4096 /* points per block of the final evaluation: bounds its scratch */

/* The estimator a run uses: --estimator, with auto resolved for this target. */
const char *gfv_solver_estimator_name(const gfv_config *cfg, const gfv_target *t);

/* Collective: loads the checkpoint at path into a freshly created solver. */
int gfv_solver_restore(gfv_solver *s, const char *path);

/* Collective: samples, target, mixture terms, estimates at s->cur into e; *bad is set on
 * every rank when any rank saw a non-finite value. */
int gfv_solver_estimate(gfv_solver *s, gfv_estimate *e, int *bad);

/* Collective: fills s->full_* from every rank's particles. */
int gfv_solver_gather_full(gfv_solver *s);
/* Collective: the weights alone into full_logw (K numbers), all the streamed evaluation
 * and outputs gather of the whole mixture. */
int gfv_solver_gather_logw(gfv_solver *s);
/* Collective: the same for what the kernel needs (mu, P, log-constants: K (d + ps + 1)
 * numbers), the params layout's all-gather of every iteration; allocates nothing. */
int gfv_solver_gather_params(gfv_solver *s);
/* Allocates s->full_* (full_L when with_L), once. */
int gfv_solver_alloc_full(gfv_solver *s, int with_L);

/* The samples layout's phase A array: at most this many bytes (blocks of points beyond). */
#define GFV_SAMPLES_A_BUDGET ((double)(256 << 20))
/* Its points per range: all n when n x kloc numbers fit the budget, else a multiple of S. */
size_t gfv_samples_a_rows(size_t n, size_t kloc, size_t S);

/* The params layout gathers the whole mixture (K (d + ps + 1) numbers) up to this many
 * bytes, and streams it around the ranks in blocks beyond (params_stream.c).  The
 * environment variable sets another budget, in bytes: a test knob (tests/mpi/
 * test_params_stream.sh forces several blocks per rank with it). */
#define GFV_PARAMS_GATHER_BUDGET ((double)(64 << 20))
#define GFV_PARAMS_GATHER_ENV "GFV_PARAMS_GATHER_BYTES"
/* Numbers per streamed component besides its mean and precision: log-constant, lmin, lmax. */
#define GFV_RING_EXTRA 3
double gfv_params_gather_budget(void);
/* Components per block of the streamed mixture, 0 when it is gathered (it fits the budget,
 * or a timing-only simulated run); a block is at most an eighth of the budget. */
size_t gfv_params_stream_cap(size_t K, int ranks, size_t d, size_t ps);
/* The same for a family: 0 (never streams) for the low-rank one. */
size_t gfv_family_stream_cap(const gfv_family_type *fam, size_t K, int ranks, size_t d);
/* Sets s->stream_cap and allocates the ring's two blocks when the mixture streams. */
int gfv_solver_stream_alloc(gfv_solver *s);
/* Collective: fn(s, block, lmin, ctx) for every block of the mixture (s->cur's components of
 * all ranks) as it passes this rank, lmin (and lmax = lmin + block->k) its components'
 * eigenvalue bounds as s->ring_bounds held them on their owner; its communication time
 * goes to the comm timer, taken off the mixture timer (the callers time the sweep as
 * mixture work).  A failure of fn on any rank is agreed after the sweep. */
typedef int (*gfv_block_fn)(gfv_solver *s, const gfv_mix_view *block, const double *lmin, void *ctx);
int gfv_solver_ring_sweep(gfv_solver *s, gfv_block_fn fn, void *ctx);
/* Collective: this rank's precisions' eigenvalue bounds into s->ring_bounds (once per
 * state: every rank then uses them from the blocks) and into *lref the least of all K (the
 * streamed pruning's). */
int gfv_solver_own_bounds(gfv_solver *s, gfv_mix_fused *f, double *lref);
/* Collective, params layout, streamed: log q, the gradient sums and the Hessian sums at this
 * rank's samples, into s->logq and s->recv, as the gathered path's kernel call gives them. */
int gfv_solver_stream_terms(gfv_solver *s);

/* The samples layout's Hessian sums of all K particles (K ps numbers, before the
 * reduce-scatter) are held whole up to the same budget, and beyond in chunks of this many
 * particles, each reduce-scattered as phase B finishes it (phases.c); K without the
 * hessian estimator and in a timing-only simulated run. */
size_t gfv_samples_h_rows(size_t K, size_t ps, int hessian);

/* Collective: the verdict on a finished fit into res (warnings, reliable); needs the
 * final evaluation's figures in res and s->eval_phi (diagnostics.c). */
int gfv_solver_diagnose(gfv_solver *s, gfv_eval_result *res);

/* Rank 0's lines to the user (api.c), through the log callback or, without one, to stdout
 * (progress, info) or stderr (notes, warnings) with a newline, flushed.  fmt gives one line
 * without its newline.  The callers decide which rank speaks (rank 0, as before). */
void gfv_log(const gfv_solver *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The bodies of the public calls that return a status; the public functions (api_calls.c)
 * wrap them to record the outcome in the solver (gfv_solver_error_code) and to put the
 * solver's log callback in scope while they run. */
int gfv_solver_set_option_impl(gfv_solver *s, const char *name, const char *value);
int gfv_solver_set_config_impl(gfv_solver *s, const gfv_config *cfg);
int gfv_solver_set_target_impl(gfv_solver *s, gfv_target *target);
int gfv_solver_setup_impl(gfv_solver *s);
int gfv_solver_iterate_impl(gfv_solver *s);
int gfv_solver_run_impl(gfv_solver *s);
int gfv_solver_solve_impl(gfv_solver *s);
int gfv_solver_evaluate_impl(gfv_solver *s, gfv_eval_result *res);
int gfv_solver_write_outputs_impl(gfv_solver *s, const gfv_eval_result *res);
int gfv_solver_check_target_impl(gfv_solver *s, FILE *out);
int gfv_solver_checkpoint_impl(gfv_solver *s, const char *path);
int gfv_solver_stop_impl(gfv_solver *s, const char *phase);
int gfv_solver_gather_impl(gfv_solver *s, double *w, double *mu, double *P);
int gfv_solver_gather_covariances_impl(gfv_solver *s, double *w, double *mu, double *Sigma);

/* GFV_OK when s is set up, else GFV_ERR_USAGE naming fn (the public entry points that need
 * the particles call it first). */
int gfv_solver_require_ready(const gfv_solver *s, const char *fn);

/* Seconds since the solver was created. */
double gfv_solver_elapsed(const gfv_solver *s);

#endif
