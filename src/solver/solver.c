/* solver.c - set-up and the iteration of the particle flow (docs/method.md, sections 2-5, 9).
 *
 * One iteration, per rank (section 8):
 *   1. draw the S samples of each local particle from its own stream;
 *   2. evaluate the target at them;
 *   3-5. the mixture terms at this rank's samples, by the layout (--layout, layout.c):
 *      samples: all-gather the samples of all particles (n = K S points); phase A: this
 *        rank's components at all points, a log-sum-exp all-reduce -> log q_rho; phase B:
 *        this rank's share of grad log q_rho and of the Hessian sums at all points, summed
 *        over ranks and delivered to the owners with one reduce-scatter;
 *      params: all-gather every particle's parameters; the whole mixture at this rank's
 *        own samples in one pass (kernel_fused.c), which leaves nothing to exchange (beyond
 *        the gather budget the parameters go round the ranks in blocks instead, twice:
 *        params_stream.c);
 *   6. the estimators and the update of each local particle; one small all-reduce for the
 *      ELBO, the step norm and the failure flags.
 * A step that makes a precision indefinite or the ELBO non-finite is rejected on every
 * rank and retried from the saved state with the step halved (section 9). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "gflowvi/error.h"
#include "gflowvi/interrupt.h"
#include "linalg/linalg.h"
#include "comm/sim.h"
#include "solver/init.h"
#include "solver/phases.h"
#include "solver/solver_impl.h"

const char *const gfv_phase_names[GFV_NPHASES] = {"sample", "target", "mixture", "comm",
                                                  "update", "eval",   "io"};

/* The dimension up to which --trust-region is the bound itself; above, it scales with d. */
#define GFV_TR_DIM 10.0

/* How many "component put back" lines a run prints before it keeps count silently. */
#define GFV_PUTBACK_SAY 5

/* Weights below this are floored (section 5): log 0 would poison the mixture density. */
#define GFV_LOGW_FLOOR (-690.7755278982137) /* log(1e-300) */

static int alloc_estimate(gfv_estimate *e, size_t kloc, size_t d, size_t psize) {
  GFV_ALLOC(e->gh, kloc * d);
  GFV_ALLOC(e->G, kloc * psize);
  GFV_ALLOC(e->phi, kloc);
  GFV_ALLOC(e->phivar, kloc);
  GFV_ALLOC(e->used, kloc);
  GFV_ALLOC(e->bad, kloc);
  return GFV_OK;
}

static void free_estimate(gfv_estimate *e) {
  free(e->gh), free(e->G), free(e->phi), free(e->phivar), free(e->used), free(e->bad);
}

const char *gfv_solver_estimator_name(const gfv_config *cfg, const gfv_target *t) {
  /* auto: the Price (hessian) estimator has the lower variance, but the diagonal family is
   * for large d, where the targets' full d x d Hessians per sample would dominate. */
  if (strcmp(cfg->estimator, "auto") != 0) return cfg->estimator;
  const gfv_family_type *fam = gfv_family_lookup(cfg->family);
  int diag = fam && fam->diag;
  if (fam && fam->rank) return "stein"; /* the low-rank family's only estimator */
  return t->has_hessian && (!diag || t->dim <= GFV_DIAG_HESSIAN_MAX_DIM) ? "hessian" : "stein";
}

static int resolve_methods(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  s->flow = gfv_flow_lookup(cfg->flow);
  GFV_CHECK(s->flow, GFV_ERR_USAGE, "--flow: unknown flow '%s'", cfg->flow);
  s->fam = gfv_family_lookup(cfg->family);
  GFV_CHECK(s->fam, GFV_ERR_USAGE, "--family: unknown family '%s'", cfg->family);
  s->psize = s->fam->psize(s->fam, s->d);
  const char *est = gfv_solver_estimator_name(cfg, s->target);
  s->est = gfv_estimator_lookup(est);
  GFV_CHECK(s->est, GFV_ERR_USAGE, "--estimator: unknown estimator '%s'", est);
  GFV_CALL(gfv_family_lowrank_check(s->fam, s->d, s->flow, s->est, cfg->layout));
  GFV_CHECK(!s->est->needs_hessian || s->target->has_hessian, GFV_ERR_USAGE,
            "--estimator=hessian needs a target with a Hessian; target '%s' has none (use "
            "--estimator=stein)",
            s->target->name);
  s->plain = strcmp(cfg->update, "plain") == 0;
  return GFV_OK;
}

/* Everything sized once here; the iteration allocates nothing. */
static int allocate(gfv_solver *s) {
  const size_t d = s->d, dd = d * d, ps = s->psize, P = (size_t)s->size;
  const unsigned long seed = (unsigned long)s->cfg->seed;
  GFV_CALL(gfv_particles_alloc(d, s->K, s->k0, s->kloc, s->fam, seed, &s->cur));
  GFV_CALL(gfv_particles_alloc(d, s->K, s->k0, s->kloc, s->fam, seed, &s->prev));
  for (int i = 0; i < 2; i++) GFV_CALL(alloc_estimate(&s->est_buf[i], s->kloc, d, ps));
  GFV_ALLOC(s->z_counts, P);
  GFV_ALLOC(s->z_displs, P);
  GFV_ALLOC(s->rs_counts, P);
  GFV_ALLOC(s->g_counts, P);
  GFV_ALLOC(s->g_displs, P);
  gfv_block_counts(s->K, s->size, s->S * d, s->z_counts, s->z_displs);
  /* Each rank receives its points' gradient sums, then its particles' Hessian sums. */
  gfv_block_counts(s->K, s->size, s->S * d + (s->est->needs_hessian ? ps : 0), s->rs_counts,
                   s->g_displs);
  GFV_ALLOC(s->logp, s->nloc);
  GFV_ALLOC(s->grad_l, s->nloc * d);
  if (s->est->needs_hessian) GFV_ALLOC(s->hess_l, s->nloc * dd);
  GFV_ALLOC(s->recv, s->rs_counts[s->rank]);
  if (s->layout == GFV_LAYOUT_PARAMS) {
    /* Only this rank's samples, and the whole mixture's parameters (K (d + ps + 2)). */
    GFV_ALLOC(s->zall, s->nloc * d);
    GFV_ALLOC(s->logq, s->nloc);
    GFV_ALLOC(s->skip, s->nloc);
    s->zloc = s->zall, s->logq_loc = s->logq;
    /* Beyond the budget, the mixture streams in blocks instead (params_stream.c). */
    GFV_CALL(gfv_solver_stream_alloc(s));
    if (!s->stream_cap) GFV_CALL(gfv_solver_alloc_full(s, 0));
    GFV_CALL(gfv_mix_fused_alloc(d, s->stream_cap ? s->stream_cap : s->K, s->S, s->fam->diag,
                                 GFV_MIX_FUSED_BUDGET, &s->mf));
    gfv_mix_fused_set_prune(s->mf, strcmp(s->cfg->prune, "off") != 0);
  } else {
    /* GFV_SIM_ALLOC: one copy for all ranks in a timing-only simulated run (sim.h). */
    GFV_SIM_ALLOC(s->zall, s->n * d);
    s->a_rows = gfv_samples_a_rows(s->n, s->kloc, s->S);
    GFV_SIM_ALLOC(s->A, s->a_rows * s->kloc);
    if (s->a_rows < s->n) GFV_SIM_ALLOC(s->lse_tmp, s->a_rows);
    GFV_ALLOC(s->logq, s->n);
    GFV_SIM_ALLOC(s->gbar_all, s->n * d);
    /* Beyond the budget the Hessian sums go in chunks, each reduce-scattered on its own, and
     * the gradient sums straight from gbar_all: no send buffer (phases.c). */
    s->h_rows = gfv_samples_h_rows(s->K, ps, s->est->needs_hessian);
    if (s->est->needs_hessian) GFV_SIM_ALLOC(s->H_all, s->h_rows * ps);
    if (s->h_rows == s->K) GFV_SIM_ALLOC(s->send, s->n * d + (s->est->needs_hessian ? s->K * ps : 0));
    s->zloc = s->zall + s->k0 * s->S * d, s->logq_loc = s->logq + s->k0 * s->S;
    GFV_CALL(s->fam->work_alloc(s->fam, d, s->kloc, s->S, &s->mw));
  }
  GFV_ALLOC(s->flow_work, s->fam->rank ? (2 * s->fam->rank + 1) * d : gfv_flow_work_size(d));
  GFV_ALLOC(s->tr_eps, s->kloc);
  GFV_ALLOC(s->eval_phi, s->kloc);
  GFV_ALLOC(s->comp_scale, s->kloc);
  GFV_ALLOC(s->relocate_flags, s->kloc);
  GFV_ALLOC(s->kl_work, dd + d);
  GFV_ALLOC(s->cz, s->S * d);
  GFV_ALLOC(s->cgl, s->S * d);
  GFV_ALLOC(s->cgb, s->S * d);
  if (s->est->needs_hessian) GFV_ALLOC(s->chl, s->S * dd);
  GFV_ALLOC(s->est_work, s->fam->rank ? gfv_family_lowrank_est_work(d, s->S, s->fam->rank)
                                      : gfv_estimator_work_size(d, s->S));
  /* The trace is preallocated (48 bytes per iteration).  The prolog compares it with the
   * memory limits (src/cli/preflight.c); should the allocation still fail, say why. */
  const size_t rows = (size_t)s->cfg->iters + 1;
  s->trace_cap = rows;
  if (gfv_calloc(&s->trace, rows, sizeof *s->trace)) {
    char all[32];
    gfv_format_bytes((double)rows * (double)sizeof *s->trace, all, sizeof all);
    GFV_ERROR(GFV_ERR_MEMORY,
              "--iters=%ld: cannot allocate the trace of the run (%zu bytes per iteration, %s in "
              "all); lower --iters",
              s->cfg->iters, sizeof *s->trace, all);
  }
  return GFV_OK;
}

static void record(gfv_solver *s, const gfv_estimate *e, double step_norm, double step_size) {
  gfv_trace_row *t = &s->trace[s->ntrace++];
  t->iteration = s->iter;
  t->elbo = e->elbo;
  t->elbo_se = e->elbo_se;
  t->step_norm = step_norm;
  t->step_size = step_size;
  t->seconds = gfv_solver_elapsed(s);
}

static int create_local(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  GFV_CALL(gfv_config_check(cfg));
  GFV_CALL(gfv_sim_check());
  if (s->rank == 0 && gfv_sim_sampling() > 0)
    gfv_log(s, GFV_LOG_WARNING, "gflowvi: warning: timing-only simulated run (%s=%d): the mixture "
            "terms are sampled, so the fit's numbers mean nothing; only the timers do",
            GFV_SMPI_SAMPLE, gfv_sim_sampling());
  s->d = s->target->dim, s->K = (size_t)cfg->particles, s->S = (size_t)cfg->samples;
  GFV_CHECK(s->K >= (size_t)s->size, GFV_ERR_USAGE,
            "--particles=%zu is smaller than the number of ranks (%d): every rank needs at least "
            "one particle",
            s->K, s->size);
  gfv_block_range(s->K, s->size, s->rank, &s->k0, &s->kloc);
  s->n = s->K * s->S, s->nloc = s->kloc * s->S;
  GFV_CALL(resolve_methods(s));
  s->layout = s->fam->rank ? GFV_LAYOUT_SAMPLES /* no fused kernel for it */
                           : gfv_layout_choose(cfg->layout, s->K, s->S, s->d, s->fam->diag,
                                               s->est->needs_hessian, s->size);
  /* The inputs as they are at the start, for the checkpoints (a restart compares them). */
  if (s->rank == 0) GFV_CALL(gfv_input_checksums(cfg, s->input_sums));
  GFV_CALL(allocate(s));
  gfv_schedule_kind kind;
  GFV_CALL(gfv_schedule_parse(cfg->step_schedule, &kind));
  gfv_schedule_params sp;
  gfv_schedule_resolve(&sp, kind, cfg->step, cfg->step_max, cfg->step_min, cfg->max_retries);
  GFV_CALL(gfv_schedule_init(&s->sched, &sp));
  /* The test runs with --tol when it is to stop the run, else with the verdict's tolerance,
   * so that a fit that never settled says so. */
  s->conv_tol = cfg->tol > 0 ? cfg->tol : GFV_CONV_VERDICT_TOL;
  GFV_CALL(gfv_convergence_create((size_t)cfg->conv_window, GFV_CONV_HOLD, s->conv_tol, &s->conv));
  s->conv_last_rel = NAN;
  s->eta = gfv_schedule_first_step(&s->sched);
  /* A step's KL adds up over the coordinates it moves: the bound grows with d above 10
   * dimensions, so that a component may move each coordinate as far in any dimension. */
  s->tr_bound = cfg->trust_region * fmax(1.0, (double)s->d / GFV_TR_DIM);
  for (size_t j = 0; j < s->kloc; j++) s->tr_eps[j] = s->tr_bound, s->comp_scale[j] = 1.0;
  return GFV_OK;
}

/* The convergence test's state in the solver's terms: converged, and the last relative
 * change (its upper bound with 2 standard errors) for the verdict. */
static void note_convergence(gfv_solver *s) {
  gfv_convergence_stats cs;
  gfv_convergence_get_stats(s->conv, &cs);
  s->converged = cs.converged;
  s->conv_last_rel = cs.rel_bound;
}

/* Collective: the global index of the usable particle with the lowest objective in e (the
 * same on every rank), or -1 when none is usable; *broken counts particles with non-finite
 * values (e->bad == 1) over all ranks. */
static int best_particle(gfv_solver *s, const gfv_estimate *e, long *best, double *broken) {
  double mine[2] = {0, INFINITY}; /* broken count, best phi */
  long at = -1;
  for (size_t j = 0; j < s->kloc; j++) {
    if (e->bad[j] == 1) mine[0] += 1;
    else if (!e->bad[j] && e->phi[j] < mine[1]) mine[1] = e->phi[j], at = (long)(s->k0 + j);
  }
  *broken = mine[0];
  GFV_CALL(gfv_comm_allreduce_sum(s->comm, broken, 1));
  double neg = -mine[1]; /* the max of -phi; the lowest index among ties */
  GFV_CALL(gfv_comm_allreduce_max(s->comm, &neg, 1));
  double idx = at >= 0 && -mine[1] == neg ? -(double)at : -INFINITY;
  GFV_CALL(gfv_comm_allreduce_max(s->comm, &idx, 1));
  *best = isfinite(idx) ? (long)-idx : -1;
  return GFV_OK;
}

/* Collective: restarts every local particle j with which[j] set one standard deviation away
 * from particle `best`: its mean a draw from that component with j's own stream (so the
 * result does not depend on the rank count; GFV_PURPOSE_RELOCATE at the counter of the
 * estimates that found it outside), its covariance that component's.  p is the state to
 * change (cur at the start, prev during an iteration).  Only that one component moves: its
 * owner broadcasts (mu, P, L) of the state the draws use (cur), so no rank gathers the
 * whole mixture here. */
static int relocate(gfv_solver *s, gfv_particles *p, const int *which, long best) {
  const size_t d = s->d, ps = s->psize, b = (size_t)best;
  const int owner = gfv_block_owner(s->K, s->size, b);
  double *buf = NULL;
  int st = gfv_comm_agree(s->comm, gfv_calloc(&buf, d + 2 * ps, sizeof(double)), NULL);
  if (st) {
    free(buf);
    return st;
  }
  if (s->rank == owner) {
    const size_t jb = b - s->k0;
    memcpy(buf, s->cur.mu + jb * d, d * sizeof(double));
    memcpy(buf + d, s->cur.P + jb * ps, ps * sizeof(double));
    memcpy(buf + d + ps, s->cur.L + jb * ps, ps * sizeof(double));
  }
  st = gfv_comm_bcast(s->comm, buf, (d + 2 * ps) * sizeof(double), owner);
  if (st) {
    free(buf);
    return st;
  }
  for (size_t j = 0; j < s->kloc; j++) {
    if (!which[j]) continue;
    memcpy(p->P + j * ps, buf + d, ps * sizeof(double));
    memcpy(p->L + j * ps, buf + d + ps, ps * sizeof(double));
    gfv_particles view = s->cur; /* a draw from the best component with j's stream */
    view.mu = buf, view.L = buf + d + ps;
    gfv_stream str = gfv_particles_stream(&s->cur, j, GFV_PURPOSE_RELOCATE);
    gfv_particles_sample(&view, 0, &str, s->draw_iter, s->draw_try, 1, p->mu + j * d);
  }
  free(buf);
  gfv_particles_update_logc(p);
  return GFV_OK;
}

/* Collective: the estimates at the initial particles.  A target that is NaN or +inf there
 * is an error; a particle all of whose samples fall outside a bounded support is restarted
 * next to the particle with the best objective (up to 20 times), since a prior draw far
 * outside the support says nothing about the model. */
static int initial_estimate(gfv_solver *s) {
  gfv_estimate *e = &s->est_buf[s->cur_est];
  for (int round = 0; round < 20; round++) {
    int bad = 0;
    GFV_CALL(gfv_solver_estimate(s, e, &bad));
    if (!bad) return GFV_OK;
    /* No particle is unusable (the ELBO is NaN when one is), yet the sum or its error
     * overflowed: a start so wide or far out that log q - log p is near 1e300, which no
     * relocation next to another such particle can cure. */
    GFV_CHECK(isnan(e->elbo), GFV_ERR_NUMERIC,
              "the ELBO of the initial particles overflows (%g +- %g): the initial mixture "
              "is far too wide or too far out for the target; change --init / --init-scale / "
              "--init-var",
              e->elbo, e->elbo_se);
    long best;
    double broken;
    GFV_CALL(best_particle(s, e, &best, &broken));
    GFV_CHECK(broken == 0, GFV_ERR_NUMERIC,
              "the target returned a non-finite value (NaN or +Inf) at the samples of the "
              "initial particles; check the model or change --init / --init-scale / --init-var");
    GFV_CHECK(best >= 0, GFV_ERR_NUMERIC,
              "no sample of any initial particle fell inside the target's support (log density "
              "-inf everywhere they looked); check the model or change --init / --init-scale");
    for (size_t j = 0; j < s->kloc; j++) s->relocate_flags[j] = e->bad[j] == 2;
    GFV_CALL(relocate(s, &s->cur, s->relocate_flags, best));
  }
  GFV_ERROR(GFV_ERR_NUMERIC,
            "initial particles: some kept falling outside the target's support after 20 moves; "
            "check the model or change --init / --init-scale");
}

int gfv_solver_setup_impl(gfv_solver *s) {
  GFV_CHECK(s->state == GFV_SOLVER_EMPTY, GFV_ERR_USAGE, "gfv_solver_setup: %s",
            s->state == GFV_SOLVER_READY ? "the solver is already set up"
                                         : "its set-up failed; only gfv_solver_free is left");
  GFV_CHECK(s->target, GFV_ERR_USAGE,
            "gfv_solver_setup: no target to fit (call gfv_solver_set_target first)");
  s->state = GFV_SOLVER_SETUP_FAILED; /* until it succeeds */
  const gfv_config *cfg = s->cfg;
  s->t_start = gfv_comm_wtime();
  GFV_CALL(gfv_comm_agree(s->comm, create_local(s), NULL));
  s->last_checkpoint = gfv_comm_wtime();
  if (cfg->restart[0]) { /* the state, estimates and trace come from the checkpoint */
    GFV_CALL(gfv_solver_restore(s, cfg->restart));
    /* Both recomputed from the checkpoint's trace.  The replay gives the saved step
     * unless the step options changed (the restore rescales the step to a new --step):
     * then the schedule goes on from the rescaled step. */
    double eta = gfv_schedule_replay(&s->sched, s->trace, s->ntrace);
    if (eta != s->eta) gfv_schedule_continue(&s->sched, s->iter, s->eta);
    GFV_CALL(gfv_convergence_replay(s->conv, s->trace, s->ntrace));
    note_convergence(s);
    s->state = GFV_SOLVER_READY;
    return GFV_OK;
  }
  /* Collective (the mode search), so after the agreement above; never on a restart. */
  GFV_CALL(gfv_solver_init_particles(s));
  GFV_CALL(initial_estimate(s));
  record(s, &s->est_buf[s->cur_est], 0.0, 0.0);
  s->state = GFV_SOLVER_READY;
  return GFV_OK;
}

int gfv_solver_create(const gfv_config *cfg, gfv_target *target, gfv_comm *comm, gfv_solver **out) {
  *out = NULL;
  gfv_solver *s = NULL;
  GFV_CALL(gfv_solver_create_empty(comm, &s));
  int st;
  GFV_CALL_GOTO(st, gfv_solver_set_config(s, cfg), fail);
  GFV_CALL_GOTO(st, gfv_solver_set_target(s, target), fail);
  GFV_CALL_GOTO(st, gfv_solver_setup(s), fail);
  *out = s;
  return GFV_OK;
fail:
  gfv_solver_free(s);
  return st;
}

void gfv_solver_set_stop_flag(gfv_solver *s, volatile sig_atomic_t *flag) {
  (void)s;
  gfv_interrupt_watch(flag);
}

void gfv_solver_free(gfv_solver *s) {
  if (!s) return;
  gfv_particles_free(&s->cur);
  gfv_particles_free(&s->prev);
  for (int i = 0; i < 2; i++) free_estimate(&s->est_buf[i]);
  free(s->z_counts), free(s->z_displs), free(s->rs_counts), free(s->g_counts), free(s->g_displs);
  free(s->skip), free(s->lse_tmp);
  gfv_mix_fused_free(s->mf);
  free(s->zall), free(s->logp), free(s->grad_l), free(s->hess_l);
  free(s->A), free(s->logq), free(s->gbar_all), free(s->H_all), free(s->send), free(s->recv);
  free(s->flow_work), free(s->est_work), free(s->trace);
  free(s->tr_eps), free(s->comp_scale), free(s->kl_work), free(s->cz), free(s->cgl), free(s->cgb);
  free(s->chl), free(s->eval_phi), free(s->relocate_flags);
  gfv_mix_work_free(s->mw);
  gfv_convergence_free(s->conv);
  free(s->full_logw), free(s->full_mu), free(s->full_P), free(s->full_L), free(s->full_logc);
  free(s->ring[0]), free(s->ring[1]), free(s->ring_bounds);
  free(s);
}

double gfv_solver_elapsed(const gfv_solver *s) { return gfv_comm_wtime() - s->t_start; }

static int all_finite(size_t n, const double *x) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* Steps 1-2: this rank's samples and the target at them.  Returns the local status.  The
 * samples of particle k are the sequence (draw_iter, draw_try) of its stream: a retry of
 * the iteration draws new ones, a restart at iteration t draws the same ones. */
static int sample_and_model(gfv_solver *s, double *zloc) {
  double t0 = gfv_comm_wtime();
  for (size_t j = 0; j < s->kloc; j++) {
    gfv_stream st = gfv_particles_stream(&s->cur, j, GFV_PURPOSE_SAMPLE);
    gfv_particles_sample(&s->cur, j, &st, s->draw_iter, s->draw_try, s->S, zloc + j * s->S * s->d);
  }
  s->draw_try++;
  double t1 = gfv_comm_wtime();
  s->timers[GFV_PHASE_SAMPLE] += t1 - t0;
  int st = gfv_target_eval(s->target, s->nloc, zloc, s->logp, s->grad_l, s->hess_l);
  s->timers[GFV_PHASE_TARGET] += gfv_comm_wtime() - t1;
  return st;
}

/* A sample the estimates can use: the target is finite there, with finite derivatives.
 * l = -inf (outside the support) and broken values (NaN, +inf) are both excluded here;
 * local_estimates tells them apart. */
static int usable(const gfv_solver *s, size_t i) {
  const size_t d = s->d;
  return isfinite(s->logp[i]) && all_finite(d, s->grad_l + i * d) &&
         (!s->hess_l || all_finite(d * d, s->hess_l + i * d * d));
}

size_t gfv_samples_a_rows(size_t n, size_t kloc, size_t S) {
  if (8.0 * (double)n * (double)kloc <= GFV_SAMPLES_A_BUDGET) return n;
  size_t rows = (size_t)(GFV_SAMPLES_A_BUDGET / (8.0 * (double)kloc)) / S * S;
  return rows < S ? S : rows;
}

/* Steps 3-5, samples layout: the mixture terms at this rank's samples, in s->recv.  Phase A
 * runs over ranges of a_rows points (all n at once unless n x kloc numbers exceed
 * GFV_SAMPLES_A_BUDGET); with several ranges, phase B recomputes each range's terms, with
 * the same calls, so that no n x kloc array exists (phases.c: the ranges are its blocks). */
static int mixture_terms_samples(gfv_solver *s) {
  const size_t d = s->d;
  gfv_comm *c = s->comm;
  double t0 = gfv_comm_wtime();
  GFV_CALL(gfv_comm_allgatherv(c, s->zloc, s->nloc * d, s->zall, s->z_counts, s->z_displs));
  double t1 = gfv_comm_wtime();
  gfv_mix_view v = gfv_particles_view(&s->cur);
  GFV_CALL(gfv_solver_phase_a(s, &v));
  /* A sample the estimates cannot use gets log q = +inf from its owner: the log-sum-exp
   * all-reduce spreads that to every rank, and phase B gives a point with non-finite log q
   * no responsibility, so it drops out of the gradient and Hessian sums everywhere. */
  for (size_t i = 0; i < s->nloc; i++)
    if (!usable(s, i)) s->logq_loc[i] = INFINITY;
  double t2 = gfv_comm_wtime();
  GFV_CALL(gfv_comm_allreduce_logsumexp(c, s->logq, s->n));
  double t3 = gfv_comm_wtime();
  /* The sums, packed by destination rank: its points' gradient sums, then its particles'
   * Hessian sums (phases.c). */
  GFV_CALL(gfv_solver_phase_b(s, &v));
  double t4 = gfv_comm_wtime();
  /* (Hessian sums in chunks: they were delivered in phase B; the gradient sums, in point
   * order, are already in destination order.) */
  GFV_CALL(s->h_rows < s->K ? gfv_comm_reduce_scatter_sum(c, s->gbar_all, s->recv, s->z_counts)
                            : gfv_comm_reduce_scatter_sum(c, s->send, s->recv, s->rs_counts));
  gfv_solver_phases_neutral(s); /* timing-only simulated runs (src/comm/sim.h) */
  double t5 = gfv_comm_wtime();
  s->timers[GFV_PHASE_COMM] += (t1 - t0) + (t3 - t2) + (t5 - t4);
  s->timers[GFV_PHASE_MIXTURE] += (t2 - t1) + (t4 - t3);
  return GFV_OK;
}

/* Steps 3-5, params layout: every particle's parameters are all-gathered and this rank
 * evaluates the whole mixture at its own samples (the fused kernel), which gives log q, the
 * gradient sums and its particles' Hessian sums with no further communication.  A sample
 * the estimates cannot use is left out by its owner, the only rank that sees it. */
static int mixture_terms_params(gfv_solver *s) {
  const size_t d = s->d;
  for (size_t i = 0; i < s->nloc; i++) s->skip[i] = !usable(s, i);
  /* A mixture beyond the gather budget: in blocks around the ranks (params_stream.c). */
  if (s->stream_cap) return gfv_solver_stream_terms(s);
  double t0 = gfv_comm_wtime();
  GFV_CALL(gfv_solver_gather_params(s));
  double t1 = gfv_comm_wtime();
  gfv_mix_view v = {d, s->K, s->full_mu, s->full_P, NULL, s->full_logc, s->fam->diag, s->fam->rank};
  GFV_CALL(gfv_solver_phase_fused(s, &v));
  gfv_solver_phases_neutral(s); /* timing-only simulated runs (src/comm/sim.h) */
  s->timers[GFV_PHASE_COMM] += t1 - t0;
  s->timers[GFV_PHASE_MIXTURE] += gfv_comm_wtime() - t1;
  return GFV_OK;
}

/* The samples of local particle j as an estimator sees them.  Samples outside the support
 * are left out (the estimates become expectations under q_j restricted to the support), by
 * copying the others to the front of the compaction buffers. */
static gfv_particle_samples particle_samples(gfv_solver *s, size_t j, const double *zloc,
                                             size_t used) {
  const size_t d = s->d, dd = d * d, S = s->S;
  const double *gbar = s->recv + j * S * d;
  gfv_particle_samples smp = {d,           S,
                              s->cur.mu + j * d,
                              s->cur.P + j * s->psize,
                              zloc + j * S * d,
                              s->grad_l + j * S * d,
                              s->hess_l ? s->hess_l + j * S * dd : NULL,
                              gbar,
                              s->est->needs_hessian ? s->recv + s->nloc * d + j * s->psize : NULL};
  if (used == S) return smp;
  size_t u = 0;
  for (size_t i = 0; i < S; i++) {
    if (!usable(s, j * S + i)) continue;
    memcpy(s->cz + u * d, smp.z + i * d, d * sizeof(double));
    memcpy(s->cgl + u * d, smp.grad_l + i * d, d * sizeof(double));
    memcpy(s->cgb + u * d, smp.gbar + i * d, d * sizeof(double));
    if (smp.hess_l) memcpy(s->chl + u * dd, smp.hess_l + i * dd, dd * sizeof(double));
    u++;
  }
  smp.S = used, smp.z = s->cz, smp.grad_l = s->cgl, smp.gbar = s->cgb;
  if (smp.hess_l) smp.hess_l = s->chl;
  return smp;
}

/* Samples outside a bounded support (l = -inf) are left out of the estimates, which then
 * describe q_j restricted to the support, q_j 1_S / P_j(S); the objective of that restricted
 * component carries -log P_j(S) on top, whose derivatives, by the score identities, are
 * expectations over the samples inside the support:
 *   grad_mu  (-log P(S)) = -P m,           m = E_{q|S}[z - mu]
 *   2 grad_Sigma (-log P(S)) = P - P C P,  C = E_{q|S}[(z - mu)(z - mu)^T]
 * (G is twice the Sigma-gradient, as Price's identity has it).  They push a component that
 * straddles the edge of the support back inside it; nothing else would, since a zero
 * density has no gradient.  The work space is kl_work (d * d + d, free in this phase). */
static void support_barrier(gfv_solver *s, const gfv_particle_samples *smp, double *gh, double *G) {
  const size_t d = s->d, n = smp->S;
  const double *mu = smp->mu, *P = smp->P;
  double *m = s->kl_work + d * d, *C = s->kl_work;
  for (size_t t = 0; t < d; t++) {
    double a = 0;
    for (size_t i = 0; i < n; i++) a += smp->z[i * d + t] - mu[t];
    m[t] = a / (double)n;
  }
  s->fam->support_barrier(s->fam, d, n, smp->z, mu, P, m, gh, G, C);
}

/* Step 6 (first half): phi, gh and G of each local particle, and which particles have
 * unusable estimates (e->bad). */
static void local_estimates(gfv_solver *s, const double *zloc, gfv_estimate *e) {
  const size_t d = s->d, ps = s->psize, S = s->S;
  for (size_t j = 0; j < s->kloc; j++) {
    const double *lq = s->logq_loc + j * S, *lp = s->logp + j * S;
    size_t used = 0;
    int broken = 0; /* NaN or +inf from the target, or non-finite derivatives */
    for (size_t i = 0; i < S; i++) {
      if (usable(s, j * S + i)) used++;
      else if (lp[i] != -INFINITY) broken = 1;
    }
    e->used[j] = used;
    e->bad[j] = broken ? 1 : used == 0 ? 2 : 0; /* 2: no sample inside the support */
    if (e->bad[j]) {
      e->phi[j] = e->phivar[j] = NAN;
      continue;
    }
    double mean = 0, m2 = 0;
    for (size_t i = 0; i < S; i++)
      if (isfinite(lp[i])) mean += lq[i] - lp[i];
    mean /= (double)used;
    for (size_t i = 0; i < S; i++)
      if (isfinite(lp[i])) m2 += (lq[i] - lp[i] - mean) * (lq[i] - lp[i] - mean);
    e->phi[j] = mean;
    e->phivar[j] = used > 1 ? m2 / (double)(used - 1) : 0.0;
    gfv_particle_samples smp = particle_samples(s, j, zloc, used);
    s->fam->estimate(s->fam, s->est, &smp, e->gh + j * d, e->G + j * ps, s->est_work);
    if (used < S) {
      support_barrier(s, &smp, e->gh + j * d, e->G + j * ps);
      e->phi[j] -= log((double)used / (double)S);
    }
    if (!isfinite(mean) || !all_finite(d, e->gh + j * d) || !all_finite(ps, e->G + j * ps))
      e->bad[j] = 1;
  }
}

int gfv_solver_estimate(gfv_solver *s, gfv_estimate *e, int *bad) {
  if (s->target->begin_iteration)
    s->target->begin_iteration(s->target, s->iter, (unsigned long)s->cfg->seed);
  double *zloc = s->zloc; /* sampled in place (and in the samples layout gathered in place) */
  int st = sample_and_model(s, zloc);
  GFV_CALL(gfv_comm_agree(s->comm, st, NULL));
  GFV_CALL(s->layout == GFV_LAYOUT_PARAMS ? mixture_terms_params(s) : mixture_terms_samples(s));
  double t0 = gfv_comm_wtime();
  local_estimates(s, zloc, e);
  /* Fused into the one small all-reduce: the unusable particles, the samples outside the
   * support, and whether any rank was asked to stop or is due for a timed checkpoint
   * (ranks see signals at different moments). */
  const gfv_config *cfg = s->cfg;
  int stop = gfv_interrupt_signal() != 0;
  int due = cfg->checkpoint_seconds > 0 &&
            gfv_comm_wtime() - s->last_checkpoint >= cfg->checkpoint_seconds;
  double sums[6] = {0, 0, 0, (double)stop, (double)due, 0};
  for (size_t j = 0; j < s->kloc; j++) {
    sums[5] += (double)(s->S - e->used[j]);
    if (e->bad[j]) {
      sums[2] += 1;
      continue;
    }
    double w = exp(s->cur.logw[j]);
    sums[0] += w * e->phi[j];
    sums[1] += w * w * e->phivar[j] / (double)e->used[j];
  }
  double t1 = gfv_comm_wtime();
  s->timers[GFV_PHASE_UPDATE] += t1 - t0;
  GFV_CALL(gfv_comm_allreduce_sum(s->comm, sums, 6));
  s->timers[GFV_PHASE_COMM] += gfv_comm_wtime() - t1;
  s->stop_requested = sums[3] > 0;
  s->checkpoint_due = sums[4] > 0;
  e->outside = sums[5] / (double)s->n;
  e->phibar = sums[0];
  e->elbo = sums[2] > 0 ? NAN : -sums[0];
  e->elbo_se = sqrt(sums[1]);
  /* A finite ELBO with an infinite error (terms near 1e300, their squares overflow) is no
   * more usable than an infinite one: the step tests and the convergence test need both. */
  *bad = (int)sums[2] + (sums[2] == 0 && !(isfinite(e->elbo) && isfinite(e->elbo_se)));
  return GFV_OK;
}

/* Section 5: log w_k <- log w_k - eta_w (Phi_k - sum_j w_j Phi_j), renormalised over all
 * ranks, floored so that a vanishing component never produces log 0. */
static int weight_flow(gfv_solver *s, const gfv_estimate *e, double eta_w) {
  double lse = -INFINITY;
  for (size_t j = 0; j < s->kloc; j++) {
    s->cur.logw[j] = s->prev.logw[j] - eta_w * (e->phi[j] - e->phibar);
    if (!isfinite(s->cur.logw[j])) s->cur.logw[j] = GFV_LOGW_FLOOR;
    lse = gfv_logaddexp(lse, s->cur.logw[j]);
  }
  GFV_CALL(gfv_comm_allreduce_logsumexp(s->comm, &lse, 1));
  for (size_t j = 0; j < s->kloc; j++) {
    s->cur.logw[j] -= lse;
    if (s->cur.logw[j] < GFV_LOGW_FLOOR) s->cur.logw[j] = GFV_LOGW_FLOOR;
  }
  return GFV_OK;
}

/* One flow step of local particle j from s->prev with step eta; 1 when the new factor is
 * not positive definite or degenerate (gfv_factor_is_sane). */
static int update_one(gfv_solver *s, const gfv_estimate *e, size_t j, double eta, gfv_step_info *info) {
  const size_t d = s->d, ps = s->psize;
  const double *mu = s->prev.mu + j * d, *P = s->prev.P + j * ps, *gh = e->gh + j * d;
  const double *G = e->G + j * ps;
  double *mu2 = s->cur.mu + j * d, *P2 = s->cur.P + j * ps, *L2 = s->cur.L + j * ps;
  int bad = s->fam->update(s->fam, s->flow, d, mu, P, s->prev.L + j * ps, gh, G, eta, s->plain, mu2,
                           P2, L2, s->flow_work, info);
  return bad || !s->fam->factor_is_sane(s->fam, d, L2);
}

/* KL(new || old) of local particle j and the move of its mean in old standard deviations. */
static double step_kl(gfv_solver *s, size_t j, double *maha) {
  const size_t d = s->d, ps = s->psize;
  const double *mu1 = s->cur.mu + j * d, *mu0 = s->prev.mu + j * d;
  return s->fam->kl(s->fam, d, mu1, s->cur.P + j * ps, s->cur.L + j * ps, mu0, s->prev.P + j * ps,
                    s->prev.L + j * ps, s->kl_work, maha);
}

/* The move of local particle j's mean in its old standard deviations, sqrt(dmu^T P dmu):
 * the trust region's KL computes it too; without a region this O(d^2) part alone. */
static double step_move(gfv_solver *s, size_t j) {
  const size_t d = s->d, ps = s->psize;
  const double *mu1 = s->cur.mu + j * d, *mu0 = s->prev.mu + j * d, *L = s->prev.L + j * ps;
  double *dm = s->kl_work;
  for (size_t t = 0; t < d; t++) dm[t] = mu1[t] - mu0[t];
  return s->fam->mahalanobis(s->fam, d, s->prev.P + j * ps, L, dm);
}

/* Puts local particle j back to its state before the iteration. */
static void revert_one(gfv_solver *s, size_t j) {
  const size_t d = s->d, ps = s->psize;
  memcpy(s->cur.mu + j * d, s->prev.mu + j * d, d * sizeof(double));
  memcpy(s->cur.P + j * ps, s->prev.P + j * ps, ps * sizeof(double));
  memcpy(s->cur.L + j * ps, s->prev.L + j * ps, ps * sizeof(double));
}

/* What one pass over the local particles measured; summed (max for the move) over ranks. */
enum { U_FAILS, U_STEP_SQ, U_PARAM_SQ, U_LIMITED, U_COUNT };

/* Applies the flow to every local particle from s->prev with step eta * comp_scale[j].
 * With a trust region, a step whose KL exceeds the particle's bound is shortened until it
 * fits; a step that breaks the factor is halved, up to --max-retries times, and otherwise
 * the particle stays where it was (counted in U_FAILS).  Without one (--trust-region=0),
 * any failure is reported in U_FAILS and the caller rejects the whole step. */
static void update_particles(gfv_solver *s, const gfv_estimate *e, double eta, double *u, double *move) {
  const double eps0 = s->tr_bound;
  for (size_t j = 0; j < s->kloc; j++) {
    gfv_step_info info = {0, 0};
    double eta_j = eta * s->comp_scale[j], maha = 0.0;
    int bad = update_one(s, e, j, eta_j, &info), limited = 0;
    if (eps0 > 0) {
      for (long r = 0; r < 200; r++) { /* 200 tries: 1000^-200 reaches any finite KL */
        double kl = bad ? INFINITY : step_kl(s, j, &maha);
        if (!bad && kl <= s->tr_eps[j]) break;
        eta_j *= bad ? 0.5 : gfv_trust_region_shrink(kl, s->tr_eps[j]);
        limited = 1;
        if (bad && eta_j < ldexp(eta * s->comp_scale[j], (int)-s->cfg->max_retries)) break;
        bad = update_one(s, e, j, eta_j, &info);
      }
      if (bad) revert_one(s, j), info.step_sq = 0, maha = 0;
    } else if (!bad) {
      maha = step_move(s, j);
    }
    u[U_FAILS] += bad;
    u[U_STEP_SQ] += info.step_sq;
    u[U_PARAM_SQ] += info.param_sq;
    u[U_LIMITED] += limited;
    if (maha > *move) *move = maha;
  }
}

static void warn(const gfv_solver *s, const char *what, double eta) {
  if (s->rank == 0)
    gfv_log(s, GFV_LOG_WARNING,
            "gflowvi: warning: iteration %ld: step rejected (%s); retrying with step %g",
            s->iter + 1, what, eta);
}

/* The divergence checks on a whole step, the same on every rank (the ELBO is global):
 * returns a reason, or NULL when the step is acceptable. */
static const char *step_diverged(const gfv_solver *s, const gfv_estimate *old, const gfv_estimate *e) {
  double se = sqrt(old->elbo_se * old->elbo_se + e->elbo_se * e->elbo_se);
  /* KL(q || p) >= 0 when p is normalised: an ELBO above 0 beyond its error is impossible,
   * the mark of a covariance collapsed past what double precision can evaluate.  (Not when
   * samples fell outside the support: the estimate then conditions q on the support.) */
  if (s->target->normalized && e->outside == 0 && e->elbo > 5 * e->elbo_se + 1e-6)
    return "ELBO above 0 on a normalised target: numerical breakdown";
  /* A fall by an order of magnitude in one step is no Monte Carlo fluctuation. */
  if (e->elbo < old->elbo - 10 * fmax(1.0, fabs(old->elbo)) - 5 * se)
    return "the ELBO fell by an order of magnitude";
  return NULL;
}

/* A particle whose own objective Phi_k = E_{q_k}[log q - l] rose by an order of magnitude
 * in one step jumped into a region the target does not support. */
static int particle_exploded(const gfv_solver *s, const gfv_estimate *old, const gfv_estimate *e,
                             size_t j) {
  double se = sqrt((old->phivar[j] + e->phivar[j]) / (double)s->S);
  return e->phi[j] > old->phi[j] + 10 * fmax(1.0, fabs(old->phi[j])) + 5 * se;
}

/* After an accepted step: each component's bound grows back towards --trust-region unless
 * its own objective got significantly worse, which halves it.  "Significantly": beyond two
 * Monte Carlo standard errors, so that the noise of a converged component does not shrink
 * its region step after step. */
static void adapt_regions(gfv_solver *s, const gfv_estimate *old, const gfv_estimate *e) {
  const double eps0 = s->tr_bound;
  for (size_t j = 0; j < s->kloc; j++) {
    double se = sqrt((old->phivar[j] / (double)old->used[j]) + (e->phivar[j] / (double)e->used[j]));
    if (e->phi[j] - old->phi[j] > 2 * se) s->tr_eps[j] = fmax(1e-3 * eps0, 0.5 * s->tr_eps[j]);
    else s->tr_eps[j] = fmin(eps0, 1.5 * s->tr_eps[j]);
  }
}

static void accept(gfv_solver *s, gfv_estimate *enew, const double *u, double move, double eta) {
  const gfv_estimate *old = &s->est_buf[s->cur_est];
  if (s->cfg->trust_region > 0) adapt_regions(s, old, enew);
  s->cur_est = 1 - s->cur_est;
  s->eta = eta;
  s->iter++;
  s->last_rel_step = sqrt(u[U_STEP_SQ]) / (1.0 + sqrt(u[U_PARAM_SQ]));
  s->tr_limited += (long)u[U_LIMITED];
  if (move > s->max_move) s->max_move = move, s->max_move_iter = s->iter;
  record(s, enew, sqrt(u[U_STEP_SQ]), eta);
}

/* One attempt at the step from s->prev: updates, weights, the new estimates into enew,
 * with u and *move summed / maxed over ranks.  *nbad: particles with unusable estimates. */
static int attempt(gfv_solver *s, gfv_estimate *enew, double eta, double wscale, double *u,
                   double *move, int *nbad) {
  const gfv_config *cfg = s->cfg;
  const gfv_estimate *e = &s->est_buf[s->cur_est];
  double t0 = gfv_comm_wtime();
  memset(u, 0, U_COUNT * sizeof(double));
  *move = 0.0;
  update_particles(s, e, eta, u, move);
  if (cfg->weight_step > 0) GFV_CALL(weight_flow(s, e, cfg->weight_step * wscale));
  gfv_particles_update_logc(&s->cur);
  double t1 = gfv_comm_wtime();
  s->timers[GFV_PHASE_UPDATE] += t1 - t0;
  GFV_CALL(gfv_comm_allreduce_sum(s->comm, u, U_COUNT));
  GFV_CALL(gfv_comm_allreduce_max(s->comm, move, 1));
  s->timers[GFV_PHASE_COMM] += gfv_comm_wtime() - t1;
  *nbad = 0;
  if (u[U_FAILS] > 0 && cfg->trust_region <= 0) return GFV_OK; /* the caller rejects it all */
  GFV_CALL(gfv_solver_estimate(s, enew, nbad));
  return GFV_OK;
}

/* --trust-region=0: the paper's plain steps.  Any failure rejects the whole step and halves
 * the step for the rest of the run (backtracking: a step size that once produced NaN or an
 * indefinite covariance is not tried again); --max-retries bounds the halvings over the
 * whole run, so a target that is NaN next to its optimum ends the run with a reason instead
 * of shrinking the step towards zero. */
static int iterate_global(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  gfv_estimate *e = &s->est_buf[s->cur_est], *enew = &s->est_buf[1 - s->cur_est];
  const double eta_floor = ldexp(cfg->step, (int)-cfg->max_retries);
  double u[U_COUNT], move;
  const char *why = NULL;
  for (long r = 0; ldexp(s->eta, (int)-r) >= eta_floor; r++) {
    double eta = ldexp(s->eta, (int)-r);
    int nbad = 0;
    GFV_CALL(attempt(s, enew, eta, eta / cfg->step, u, &move, &nbad));
    why = u[U_FAILS] > 0 ? "a covariance lost positive definiteness"
          : nbad        ? "non-finite ELBO or gradient"
                        : step_diverged(s, e, enew);
    if (!why) {
      accept(s, enew, u, move, eta);
      return GFV_OK;
    }
    s->rejected++;
    gfv_particles_copy_params(&s->cur, &s->prev);
    warn(s, why, 0.5 * eta);
  }
  /* Non-finite values that halving cannot cure are the target's (status 4); a step that
   * keeps failing the divergence checks is a diverging fit (status 11). */
  int numeric = why && (why[0] == 'a' || why[0] == 'n');
  GFV_ERROR(numeric ? GFV_ERR_NUMERIC : GFV_ERR_DIVERGED,
            "iteration %ld: step rejected again with the step already halved %ld times "
            "(--max-retries; %ld rejections in all; last: %s): %s",
            s->iter + 1, cfg->max_retries, s->rejected, why ? why : "none",
            numeric ? "the target returns non-finite values near the particles, or --step is far "
                      "too large"
                    : "the fit diverged; use a smaller --step, or the default --trust-region");
}

/* --trust-region > 0: per-component control.  A particle whose new estimates are unusable
 * or exploded is put back alone, with its step halved and its region quartered, and the
 * estimates are recomputed; the others keep their steps (each particle's estimates use only
 * its own samples, so one particle's failure says nothing about the others).  Only a
 * failure of the whole step (step_diverged) halves every particle's step. */
static int iterate_tr(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  gfv_estimate *e = &s->est_buf[s->cur_est], *enew = &s->est_buf[1 - s->cur_est];
  double u[U_COUNT], move, wscale = 1.0;
  for (size_t j = 0; j < s->kloc; j++) s->comp_scale[j] = 1.0;
  const char *why = NULL;
  for (long r = 0; r <= cfg->max_retries; r++) {
    int nbad = 0;
    GFV_CALL(attempt(s, enew, s->eta, wscale * s->eta / cfg->step, u, &move, &nbad));
    double local[1] = {0};
    for (size_t j = 0; j < s->kloc; j++) {
      if (!enew->bad[j] && !e->bad[j] && particle_exploded(s, e, enew, j)) enew->bad[j] = 1;
      local[0] += enew->bad[j];
    }
    GFV_CALL(gfv_comm_allreduce_sum(s->comm, local, 1));
    why = local[0] > 0 ? NULL : step_diverged(s, e, enew);
    if (local[0] == 0 && !why) {
      s->rejected += (long)u[U_FAILS];
      accept(s, enew, u, move, s->eta);
      return GFV_OK;
    }
    s->rejected++;
    if (why) { /* the whole step */
      gfv_particles_copy_params(&s->cur, &s->prev);
      wscale *= 0.5;
      for (size_t j = 0; j < s->kloc; j++) s->comp_scale[j] *= 0.5, s->tr_eps[j] *= 0.5;
      warn(s, why, 0.5 * s->eta * s->comp_scale[0]);
      continue;
    }
    /* A particle whose samples keep falling outside a bounded support after four halvings
     * has drifted out of it (nothing in a zero density pulls it back): it restarts next to
     * the best particle, from where this iteration's step is then not taken. */
    double nout = 0;
    for (size_t j = 0; j < s->kloc; j++) {
      s->relocate_flags[j] = enew->bad[j] == 2 && s->comp_scale[j] <= 1.0 / 16;
      nout += s->relocate_flags[j];
      if (enew->bad[j] && !s->relocate_flags[j]) s->comp_scale[j] *= 0.5, s->tr_eps[j] *= 0.25;
    }
    GFV_CALL(gfv_comm_allreduce_sum(s->comm, &nout, 1));
    if (nout > 0) {
      long best;
      double broken;
      GFV_CALL(best_particle(s, e, &best, &broken));
      GFV_CALL(relocate(s, &s->prev, s->relocate_flags, best));
      for (size_t j = 0; j < s->kloc; j++)
        if (s->relocate_flags[j]) s->comp_scale[j] = 0, s->tr_eps[j] = s->tr_bound;
      s->relocated += (long)nout;
    }
    /* Said on stderr the first few times; the count goes to summary.json either way. */
    if (s->rank == 0 && s->putback_said < GFV_PUTBACK_SAY)
      gfv_log(s, GFV_LOG_WARNING,
              "gflowvi: warning: iteration %ld: %.0f component%s put back (non-finite or exploding "
              "estimates, or no sample inside the support); retrying %s with a shorter step%s",
              s->iter + 1, local[0], local[0] == 1 ? "" : "s", local[0] == 1 ? "it" : "them",
              s->putback_said + 1 == GFV_PUTBACK_SAY ? " (further such lines suppressed)" : "");
    s->putback_said++;
    why = "components kept producing non-finite or exploding estimates";
  }
  GFV_ERROR(GFV_ERR_DIVERGED,
            "iteration %ld: the fit diverged: %s after %ld retries (--max-retries); the target may "
            "be non-finite near the particles, or --step / --trust-region too large",
            s->iter + 1, why, cfg->max_retries);
}

/* A program driving the library may iterate past --iters (gfv_solver_run never does): the
 * trace then doubles, here, before the step, so that record() cannot fail.  The same on
 * every rank, so the status is collective. */
static int trace_reserve(gfv_solver *s) {
  if (s->ntrace < s->trace_cap) return GFV_OK;
  size_t cap = 2 * s->trace_cap;
  gfv_trace_row *t = realloc(s->trace, cap * sizeof *t);
  GFV_CHECK(t != NULL, GFV_ERR_MEMORY, "cannot grow the trace to %zu iterations", cap);
  s->trace = t, s->trace_cap = cap;
  return GFV_OK;
}

int gfv_solver_iterate_impl(gfv_solver *s) {
  GFV_CALL(gfv_solver_require_ready(s, "gfv_solver_iterate"));
  GFV_CALL(trace_reserve(s));
  gfv_particles_copy_params(&s->prev, &s->cur);
  s->draw_iter = (uint64_t)s->iter + 1, s->draw_try = 0;
  return s->cfg->trust_region > 0 ? iterate_tr(s) : iterate_global(s);
}

/* h:mm:ss, or m:ss under an hour. */
static void clock_text(double secs, char *buf, size_t n) {
  long t = secs > 0 && secs < 1e9 ? (long)(secs + 0.5) : 0;
  if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* iteration, ELBO +- its standard error, the step's norm (move) and size (eta), elapsed
 * seconds, the rate, and the time left at the rate of this run so far. */
static void progress(const gfv_solver *s, long iter0, double run_secs) {
  const gfv_trace_row *t = &s->trace[s->ntrace - 1];
  double secs = t->seconds, rate = run_secs > 0 ? (double)(t->iteration - iter0) / run_secs : 0.0;
  char left[32];
  clock_text(rate > 0 ? (double)(s->cfg->iters - t->iteration) / rate : 0.0, left, sizeof left);
  gfv_log(s, GFV_LOG_PROGRESS,
          "iter %6ld/%ld  elbo %12.6f +- %.4f  move %.3e  eta %.3g  %8.2f s  %8.1f it/s  left %s",
          t->iteration, s->cfg->iters, t->elbo, t->elbo_se, t->step_norm, t->step_size, secs, rate,
          left);
}

int gfv_solver_stop_impl(gfv_solver *s, const char *phase) {
  char path[GFV_PATH_MAX + 32];
  gfv_solver_checkpoint_path(s, path, sizeof path);
  GFV_CALL(gfv_solver_checkpoint(s, path));
  s->last_checkpoint = gfv_comm_wtime();
  if (s->rank == 0)
    gfv_log(s, GFV_LOG_NOTE, "gflowvi: received %s%s%s: checkpoint written to %s at iteration %ld; stopping",
            gfv_interrupt_name(gfv_interrupt_signal()), phase ? " during " : "", phase ? phase : "",
            path, s->iter);
  return GFV_STOPPED;
}

/* After an accepted iteration: the periodic and timed checkpoints, and the stop on a
 * signal (checkpoint, then GFV_STOPPED on every rank). */
static int checkpoint_if_asked(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  int periodic = cfg->checkpoint_every > 0 && s->iter % cfg->checkpoint_every == 0;
  if (s->stop_requested) return gfv_solver_stop(s, NULL);
  if (!periodic && !s->checkpoint_due) return GFV_OK;
  char path[GFV_PATH_MAX + 32];
  gfv_solver_checkpoint_path(s, path, sizeof path);
  GFV_CALL(gfv_solver_checkpoint(s, path));
  s->last_checkpoint = gfv_comm_wtime();
  return GFV_OK;
}

int gfv_solver_run_impl(gfv_solver *s) {
  GFV_CALL(gfv_solver_require_ready(s, "gfv_solver_run"));
  const gfv_config *cfg = s->cfg;
  int show = s->rank == 0 && !cfg->quiet && cfg->progress_every > 0;
  double t0 = gfv_comm_wtime(), tstart = t0;
  const long iter0 = s->iter;
  while (s->iter < cfg->iters) {
    GFV_CALL(gfv_solver_iterate(s));
    int last = s->iter == cfg->iters;
    /* The step of the next iteration and the convergence test, from the row just recorded:
     * the ELBO is all-reduced, so every rank takes the same decisions. */
    const gfv_trace_row *t = &s->trace[s->ntrace - 1];
    s->eta = gfv_schedule_step(&s->sched, t->iteration, t->elbo, t->elbo_se, t->step_size);
    GFV_CALL(gfv_convergence_push(s->conv, t->elbo, t->elbo_se, NULL));
    note_convergence(s);
    int settled = cfg->tol > 0 && s->converged;
    int small_update = gfv_update_norm_below(s->last_rel_step, cfg->tol_update);
    if (show && (s->iter % cfg->progress_every == 0 || last || settled || small_update))
      progress(s, iter0, gfv_comm_wtime() - tstart);
    if (settled && s->rank == 0 && !cfg->quiet) {
      gfv_convergence_stats cs;
      gfv_convergence_get_stats(s->conv, &cs);
      gfv_log(s, GFV_LOG_INFO,
              "converged: the ELBO's window means moved by %.2e (%.2e with 2 standard errors) "
              "< --tol=%g, %ld windows of %ld iterations in a row since iteration %ld",
              cs.rel_mean, cs.rel_bound, cfg->tol, cs.streak, cfg->conv_window, cs.first_held);
    }
    if (small_update && s->rank == 0 && !cfg->quiet)
      gfv_log(s, GFV_LOG_INFO,
              "stopped: relative update norm %.3e < --tol-update=%g at iteration %ld (the "
              "particles moved little; that is not a convergence test)",
              s->last_rel_step, cfg->tol_update, s->iter);
    if (s->monitor) { /* every rank calls it; any rank's non-zero stops all */
      double stop = s->monitor(s, s->iter, t->elbo, s->monitor_ctx) != 0;
      GFV_CALL(gfv_comm_allreduce_max(s->comm, &stop, 1));
      if (stop > 0) {
        s->run_seconds += gfv_comm_wtime() - t0;
        return GFV_STOPPED;
      }
    }
    if (settled || small_update) break;
    s->run_seconds += gfv_comm_wtime() - t0; /* the checkpoint stores the time so far */
    t0 = gfv_comm_wtime();
    int st = checkpoint_if_asked(s);
    if (st) return st; /* GFV_STOPPED, or an error (already agreed) */
  }
  s->run_seconds += gfv_comm_wtime() - t0;
  return GFV_OK;
}

long gfv_solver_iteration(const gfv_solver *s) { return s->iter; }
double gfv_solver_seconds(const gfv_solver *s) { return s->run_seconds; }

double gfv_solver_elbo(const gfv_solver *s, double *se) {
  const gfv_estimate *e = &s->est_buf[s->cur_est];
  if (se) *se = e->elbo_se;
  return e->elbo;
}
