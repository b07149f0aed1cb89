/* solver.c - set-up and the iteration of the particle flow (ALGORITHM.md sections 2-5, 8, 9).
 *
 * One iteration, per rank (section 8):
 *   1. draw the S samples of each local particle from its own stream;
 *   2. evaluate the target at them;
 *   3. all-gather the samples of all particles (n = K S points);
 *   4. phase A: this rank's components at all points, a log-sum-exp all-reduce -> log q_rho;
 *   5. phase B: this rank's share of grad log q_rho and of the Hessian sums at all points,
 *      summed over ranks and delivered to the owners with one reduce-scatter;
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
#include "linalg/linalg.h"
#include "solver/solver_impl.h"

const char *const gfv_phase_names[GFV_NPHASES] = {"sample", "target", "mixture", "comm",
                                                  "update", "eval",   "io"};

/* Weights below this are floored (section 5): log 0 would poison the mixture density. */
#define GFV_LOGW_FLOOR (-690.7755278982137) /* log(1e-300) */

static int alloc_estimate(gfv_estimate *e, size_t kloc, size_t d, size_t psize) {
  GFV_ALLOC(e->gh, kloc * d);
  GFV_ALLOC(e->G, kloc * psize);
  GFV_ALLOC(e->phi, kloc);
  GFV_ALLOC(e->phivar, kloc);
  return GFV_OK;
}

static void free_estimate(gfv_estimate *e) {
  free(e->gh), free(e->G), free(e->phi), free(e->phivar);
}

const char *gfv_solver_estimator_name(const gfv_config *cfg, const gfv_target *t) {
  /* auto: the Price (hessian) estimator has the lower variance, but the diagonal family is
   * for large d, where the targets' full d x d Hessians per sample would dominate. */
  if (strcmp(cfg->estimator, "auto") != 0) return cfg->estimator;
  int diag = strcmp(cfg->family, "diag") == 0;
  return t->has_hessian && (!diag || t->dim <= GFV_DIAG_HESSIAN_MAX_DIM) ? "hessian" : "stein";
}

static int resolve_methods(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  s->flow = gfv_flow_lookup(cfg->flow);
  GFV_CHECK(s->flow, GFV_ERR_USAGE, "--flow: unknown flow '%s'", cfg->flow);
  s->diag = strcmp(cfg->family, "diag") == 0;
  s->psize = s->diag ? s->d : s->d * s->d;
  const char *est = gfv_solver_estimator_name(cfg, s->target);
  s->est = gfv_estimator_lookup(est);
  GFV_CHECK(s->est, GFV_ERR_USAGE, "--estimator: unknown estimator '%s'", est);
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
  GFV_CALL(gfv_particles_alloc(d, s->K, s->k0, s->kloc, s->diag, seed, &s->cur));
  GFV_CALL(gfv_particles_alloc(d, s->K, s->k0, s->kloc, s->diag, seed, &s->prev));
  for (int i = 0; i < 2; i++) GFV_CALL(alloc_estimate(&s->est_buf[i], s->kloc, d, ps));
  GFV_ALLOC(s->z_counts, P);
  GFV_ALLOC(s->z_displs, P);
  GFV_ALLOC(s->rs_counts, P);
  for (int r = 0; r < s->size; r++) {
    size_t k0, kl;
    gfv_block_range(s->K, s->size, r, &k0, &kl);
    s->z_counts[r] = kl * s->S * d;
    s->z_displs[r] = k0 * s->S * d;
    s->rs_counts[r] = kl * s->S * d + (s->est->needs_hessian ? kl * ps : 0);
  }
  GFV_ALLOC(s->zall, s->n * d);
  GFV_ALLOC(s->logp, s->nloc);
  GFV_ALLOC(s->grad_l, s->nloc * d);
  if (s->est->needs_hessian) GFV_ALLOC(s->hess_l, s->nloc * dd);
  GFV_ALLOC(s->A, s->n * s->kloc);
  GFV_ALLOC(s->logq, s->n);
  GFV_ALLOC(s->gbar_all, s->n * d);
  if (s->est->needs_hessian) GFV_ALLOC(s->H_all, s->K * ps);
  GFV_ALLOC(s->send, s->n * d + (s->est->needs_hessian ? s->K * ps : 0));
  GFV_ALLOC(s->recv, s->rs_counts[s->rank]);
  GFV_ALLOC(s->flow_work, gfv_flow_work_size(d));
  GFV_ALLOC(s->est_work, gfv_estimator_work_size(d, s->S));
  if (s->diag) GFV_CALL(gfv_mix_work_alloc_diag(d, s->kloc, s->S, &s->mw));
  else GFV_CALL(gfv_mix_work_alloc(d, s->kloc, s->S, &s->mw));
  /* The trace is preallocated (48 bytes per iteration).  The prolog compares it with the
   * memory limits (src/cli/preflight.c); should the allocation still fail, say why. */
  const size_t rows = (size_t)s->cfg->iters + 1;
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

static int create_local(const gfv_config *cfg, gfv_target *target, gfv_comm *comm, gfv_solver *s) {
  s->cfg = cfg, s->target = target, s->comm = comm;
  s->rank = gfv_comm_rank(comm), s->size = gfv_comm_size(comm);
  s->d = target->dim, s->K = (size_t)cfg->particles, s->S = (size_t)cfg->samples;
  GFV_CHECK(s->K >= (size_t)s->size, GFV_ERR_USAGE,
            "--particles=%zu is smaller than the number of ranks (%d): every rank needs at least "
            "one particle",
            s->K, s->size);
  gfv_block_range(s->K, s->size, s->rank, &s->k0, &s->kloc);
  s->n = s->K * s->S, s->nloc = s->kloc * s->S;
  GFV_CALL(resolve_methods(s));
  GFV_CALL(allocate(s));
  gfv_particles_init(&s->cur, cfg->init_scale, cfg->init_var);
  s->eta = cfg->step;
  return GFV_OK;
}

int gfv_solver_create(const gfv_config *cfg, gfv_target *target, gfv_comm *comm, gfv_solver **out) {
  *out = NULL;
  gfv_solver *s = NULL;
  int st = gfv_calloc(&s, 1, sizeof *s);
  if (!st) {
    s->t_start = gfv_comm_wtime();
    st = create_local(cfg, target, comm, s);
  }
  st = gfv_comm_agree(comm, st, NULL);
  if (st) {
    gfv_solver_free(s);
    return st;
  }
  s->last_checkpoint = gfv_comm_wtime();
  if (cfg->restart[0]) { /* the state, estimates and trace come from the checkpoint */
    st = gfv_solver_restore(s, cfg->restart);
    if (st) {
      gfv_solver_free(s);
      return st;
    }
    *out = s;
    return GFV_OK;
  }
  int bad = 0;
  st = gfv_solver_estimate(s, &s->est_buf[s->cur_est], &bad);
  if (!st && bad)
    st = gfv_error_set(GFV_ERR_NUMERIC, __FILE__, __LINE__, __func__,
                       "the target returned a non-finite value (NaN or Inf) at the samples of the "
                       "initial particles; check the model or change --init-scale / --init-var");
  if (st) {
    gfv_solver_free(s);
    return st;
  }
  record(s, &s->est_buf[s->cur_est], 0.0, 0.0);
  *out = s;
  return GFV_OK;
}

void gfv_solver_set_stop_flag(gfv_solver *s, volatile sig_atomic_t *flag) { s->stop_flag = flag; }

void gfv_solver_free(gfv_solver *s) {
  if (!s) return;
  gfv_particles_free(&s->cur);
  gfv_particles_free(&s->prev);
  for (int i = 0; i < 2; i++) free_estimate(&s->est_buf[i]);
  free(s->z_counts), free(s->z_displs), free(s->rs_counts);
  free(s->zall), free(s->logp), free(s->grad_l), free(s->hess_l);
  free(s->A), free(s->logq), free(s->gbar_all), free(s->H_all), free(s->send), free(s->recv);
  free(s->flow_work), free(s->est_work), free(s->trace);
  gfv_mix_work_free(s->mw);
  free(s->full_logw), free(s->full_mu), free(s->full_P), free(s->full_L), free(s->full_logc);
  free(s);
}

double gfv_solver_elapsed(const gfv_solver *s) { return gfv_comm_wtime() - s->t_start; }

static int all_finite(size_t n, const double *x) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* Steps 1-2: this rank's samples and the target at them.  Returns the local status. */
static int sample_and_model(gfv_solver *s, double *zloc, int *bad) {
  double t0 = gfv_comm_wtime();
  for (size_t j = 0; j < s->kloc; j++)
    gfv_particles_sample(&s->cur, j, s->cur.rng[j], s->S, zloc + j * s->S * s->d);
  double t1 = gfv_comm_wtime();
  s->timers[GFV_PHASE_SAMPLE] += t1 - t0;
  int st = gfv_target_eval(s->target, s->nloc, zloc, s->logp, s->grad_l, s->hess_l);
  s->timers[GFV_PHASE_TARGET] += gfv_comm_wtime() - t1;
  if (st) return st;
  *bad = !all_finite(s->nloc, s->logp) || !all_finite(s->nloc * s->d, s->grad_l) ||
         (s->hess_l && !all_finite(s->nloc * s->d * s->d, s->hess_l));
  return GFV_OK;
}

/* Steps 3-5: the mixture terms at this rank's samples, in s->recv. */
static int mixture_terms(gfv_solver *s, double *zloc) {
  const size_t d = s->d, ps = s->psize;
  gfv_comm *c = s->comm;
  double t0 = gfv_comm_wtime();
  GFV_CALL(gfv_comm_allgatherv(c, zloc, s->nloc * d, s->zall, s->z_counts, s->z_displs));
  double t1 = gfv_comm_wtime();
  gfv_mix_view v = gfv_particles_view(&s->cur);
  GFV_CALL(gfv_mix_log_terms(&v, s->n, s->zall, s->A, s->logq, s->mw));
  double t2 = gfv_comm_wtime();
  GFV_CALL(gfv_comm_allreduce_logsumexp(c, s->logq, s->n));
  double t3 = gfv_comm_wtime();
  memset(s->gbar_all, 0, s->n * d * sizeof(double));
  if (s->H_all) memset(s->H_all, 0, s->K * ps * sizeof(double));
  GFV_CALL(gfv_mix_grad_terms(&v, s->n, s->zall, s->A, s->logq, s->S, s->gbar_all, s->H_all, s->mw));
  /* Pack by destination rank: its points' gradient sums, then its particles' Hessian sums. */
  double *p = s->send;
  for (int r = 0; r < s->size; r++) {
    size_t k0, kl;
    gfv_block_range(s->K, s->size, r, &k0, &kl);
    memcpy(p, s->gbar_all + k0 * s->S * d, kl * s->S * d * sizeof(double));
    p += kl * s->S * d;
    if (s->H_all) {
      memcpy(p, s->H_all + k0 * ps, kl * ps * sizeof(double));
      p += kl * ps;
    }
  }
  double t4 = gfv_comm_wtime();
  GFV_CALL(gfv_comm_reduce_scatter_sum(c, s->send, s->recv, s->rs_counts));
  double t5 = gfv_comm_wtime();
  s->timers[GFV_PHASE_COMM] += (t1 - t0) + (t3 - t2) + (t5 - t4);
  s->timers[GFV_PHASE_MIXTURE] += (t2 - t1) + (t4 - t3);
  return GFV_OK;
}

/* Step 6 (first half): phi, gh and G of each local particle. */
static void local_estimates(gfv_solver *s, const double *zloc, gfv_estimate *e, int *bad) {
  const size_t d = s->d, dd = d * d, ps = s->psize, S = s->S;
  const double *gbar = s->recv, *Hq = s->recv + s->nloc * d;
  for (size_t j = 0; j < s->kloc; j++) {
    const double *lq = s->logq + (s->k0 + j) * S, *lp = s->logp + j * S;
    double mean = 0, m2 = 0;
    for (size_t i = 0; i < S; i++) mean += lq[i] - lp[i];
    mean /= (double)S;
    for (size_t i = 0; i < S; i++) m2 += (lq[i] - lp[i] - mean) * (lq[i] - lp[i] - mean);
    e->phi[j] = mean;
    e->phivar[j] = S > 1 ? m2 / (double)(S - 1) : 0.0;
    gfv_particle_samples smp = {d,
                               S,
                               s->cur.mu + j * d,
                               s->cur.P + j * ps,
                               zloc + j * S * d,
                               s->grad_l + j * S * d,
                               s->hess_l ? s->hess_l + j * S * dd : NULL,
                               gbar + j * S * d,
                               s->H_all ? Hq + j * ps : NULL};
    if (s->diag) s->est->estimate_diag(&smp, e->gh + j * d, e->G + j * ps);
    else s->est->estimate(&smp, e->gh + j * d, e->G + j * ps, s->est_work);
  }
  if (!all_finite(s->kloc, e->phi) || !all_finite(s->kloc * d, e->gh) ||
      !all_finite(s->kloc * ps, e->G))
    *bad = 1;
}

int gfv_solver_estimate(gfv_solver *s, gfv_estimate *e, int *bad) {
  int local_bad = 0;
  if (s->target->begin_iteration)
    s->target->begin_iteration(s->target, s->iter, (unsigned long)s->cfg->seed);
  double *zloc = s->zall + s->k0 * s->S * s->d; /* sampled in place, gathered in place */
  int st = sample_and_model(s, zloc, &local_bad);
  GFV_CALL(gfv_comm_agree(s->comm, st, NULL));
  GFV_CALL(mixture_terms(s, zloc));
  double t0 = gfv_comm_wtime();
  local_estimates(s, zloc, e, &local_bad);
  /* Fused into the one small all-reduce: the failure flag, and whether any rank was asked
   * to stop or is due for a timed checkpoint (ranks see signals at different moments). */
  const gfv_config *cfg = s->cfg;
  int stop = s->stop_flag && *s->stop_flag;
  int due = cfg->checkpoint_seconds > 0 &&
            gfv_comm_wtime() - s->last_checkpoint >= cfg->checkpoint_seconds;
  double sums[5] = {0, 0, (double)local_bad, (double)stop, (double)due};
  for (size_t j = 0; j < s->kloc; j++) {
    double w = exp(s->cur.logw[j]);
    sums[0] += w * e->phi[j];
    sums[1] += w * w * e->phivar[j] / (double)s->S;
  }
  double t1 = gfv_comm_wtime();
  s->timers[GFV_PHASE_UPDATE] += t1 - t0;
  GFV_CALL(gfv_comm_allreduce_sum(s->comm, sums, 5));
  s->timers[GFV_PHASE_COMM] += gfv_comm_wtime() - t1;
  s->stop_requested = sums[3] > 0;
  s->checkpoint_due = sums[4] > 0;
  e->phibar = sums[0];
  e->elbo = -sums[0];
  e->elbo_se = sqrt(sums[1]);
  *bad = sums[2] > 0 || !isfinite(e->elbo);
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

/* Applies the flow to every local particle from s->prev; returns the local failure count. */
static double update_particles(gfv_solver *s, const gfv_estimate *e, double eta, double *sums) {
  const size_t d = s->d, ps = s->psize;
  double fails = 0;
  for (size_t j = 0; j < s->kloc; j++) {
    gfv_step_info info = {0, 0};
    const double *mu = s->prev.mu + j * d, *P = s->prev.P + j * ps, *gh = e->gh + j * d;
    const double *G = e->G + j * ps;
    double *mu2 = s->cur.mu + j * d, *P2 = s->cur.P + j * ps, *L2 = s->cur.L + j * ps;
    int bad = s->diag ? s->flow->update_diag(d, mu, P, gh, G, eta, s->plain, mu2, P2, L2, &info)
                      : s->flow->update(d, mu, P, s->prev.L + j * ps, gh, G, eta, s->plain, mu2, P2,
                                        L2, s->flow_work, &info);
    fails += bad;
    sums[1] += info.step_sq;
    sums[2] += info.param_sq;
  }
  return fails;
}

static void warn(const gfv_solver *s, const char *what, double eta) {
  if (s->rank == 0)
    fprintf(stderr, "gflowvi: warning: iteration %ld: step rejected (%s); retrying with step %g\n",
            s->iter + 1, what, eta);
}

int gfv_solver_iterate(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  gfv_estimate *e = &s->est_buf[s->cur_est], *enew = &s->est_buf[1 - s->cur_est];
  gfv_particles_copy_params(&s->prev, &s->cur);
  /* A halved step stays halved for the rest of the run (backtracking): a step size that
   * once produced NaN or an indefinite covariance is not tried again.  --max-retries bounds
   * the halvings over the whole run, so a target that is NaN next to its optimum ends the
   * run with a reason instead of shrinking the step towards zero. */
  const double eta_floor = ldexp(cfg->step, (int)-cfg->max_retries);
  for (long r = 0; ldexp(s->eta, (int)-r) >= eta_floor; r++) {
    double eta = ldexp(s->eta, (int)-r), scale = eta / cfg->step;
    double t0 = gfv_comm_wtime();
    double sums[3] = {0, 0, 0}; /* failures, step norm^2, parameter norm^2 */
    sums[0] = update_particles(s, e, eta, sums);
    if (cfg->weight_step > 0) GFV_CALL(weight_flow(s, e, cfg->weight_step * scale));
    gfv_particles_update_logc(&s->cur);
    double t1 = gfv_comm_wtime();
    s->timers[GFV_PHASE_UPDATE] += t1 - t0;
    GFV_CALL(gfv_comm_allreduce_sum(s->comm, sums, 3));
    s->timers[GFV_PHASE_COMM] += gfv_comm_wtime() - t1;
    if (sums[0] > 0) {
      s->rejected++;
      gfv_particles_copy_params(&s->cur, &s->prev);
      warn(s, "a covariance lost positive definiteness", 0.5 * eta);
      continue;
    }
    int bad = 0;
    GFV_CALL(gfv_solver_estimate(s, enew, &bad));
    if (bad) {
      s->rejected++;
      gfv_particles_copy_params(&s->cur, &s->prev);
      warn(s, "non-finite ELBO or gradient", 0.5 * eta);
      continue;
    }
    s->cur_est = 1 - s->cur_est;
    s->eta = eta;
    s->iter++;
    s->last_rel_step = sqrt(sums[1]) / (1.0 + sqrt(sums[2]));
    record(s, enew, sqrt(sums[1]), eta);
    return GFV_OK;
  }
  GFV_ERROR(GFV_ERR_NUMERIC,
            "iteration %ld: step rejected again with the step already halved %ld times "
            "(--max-retries; %ld rejections in all): the target returns non-finite values near "
            "the particles, or --step is far too large",
            s->iter + 1, cfg->max_retries, s->rejected);}

static void progress(const gfv_solver *s) {
  const gfv_trace_row *t = &s->trace[s->ntrace - 1];
  double secs = t->seconds;
  printf("iter %6ld/%ld  elbo %12.6f +- %.4f  step %.3e  eta %.3g  %8.2f s  %8.1f it/s\n",
         t->iteration, s->cfg->iters, t->elbo, t->elbo_se, t->step_norm, t->step_size, secs,
         secs > 0 ? (double)t->iteration / secs : 0.0);
  fflush(stdout);
}

/* After an accepted iteration: the periodic and timed checkpoints, and the stop on a
 * signal (checkpoint, then GFV_STOPPED on every rank). */
static int checkpoint_if_asked(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  char path[GFV_PATH_MAX + 32];
  gfv_solver_checkpoint_path(s, path, sizeof path);
  int periodic = cfg->checkpoint_every > 0 && s->iter % cfg->checkpoint_every == 0;
  if (!periodic && !s->checkpoint_due && !s->stop_requested) return GFV_OK;
  GFV_CALL(gfv_solver_checkpoint(s, path));
  s->last_checkpoint = gfv_comm_wtime();
  if (!s->stop_requested) return GFV_OK;
  if (s->rank == 0) {
    int sig = s->stop_flag ? (int)*s->stop_flag : 0;
    fprintf(stderr, "gflowvi: received %s: checkpoint written to %s at iteration %ld; stopping\n",
            sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "a stop signal", path, s->iter);
  }
  return GFV_STOPPED;
}

int gfv_solver_run(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  int show = s->rank == 0 && !cfg->quiet && cfg->progress_every > 0;
  double t0 = gfv_comm_wtime();
  while (s->iter < cfg->iters) {
    GFV_CALL(gfv_solver_iterate(s));
    int last = s->iter == cfg->iters;
    if (cfg->tol > 0 && s->last_rel_step < cfg->tol) s->converged = 1;
    if (show && (s->iter % cfg->progress_every == 0 || last || s->converged)) progress(s);
    if (s->converged) {
      if (s->rank == 0 && !cfg->quiet)
        printf("converged: relative update norm %.3e < --tol=%g at iteration %ld\n",
               s->last_rel_step, cfg->tol, s->iter);
      break;
    }
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
