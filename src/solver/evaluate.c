/* evaluate.c - the final estimate of the ELBO (and KL) from fresh samples of the mixture.
 *
 * The iteration's ELBO rests on K S samples, a handful per particle; the reported one uses
 * --eval-samples fresh ones.  They are stratified: every particle draws M = ceil(N / K)
 * samples from its own evaluation stream, and
 *   ELBO = -sum_k w_k mean_k(log q_rho - l),   se^2 = sum_k w_k^2 var_k / M,
 * which is unbiased for E_q[l - log q_rho] and never worse than drawing the components at
 * random.  For this phase the parameters (K (2 d^2 + d + 1) numbers) are all-gathered and
 * every rank evaluates the whole mixture at its own samples, as the params layout does in
 * every iteration (gfv_solver_gather_params): instead of moving N d sample coordinates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/sim.h"
#include "gflowvi/error.h"
#include "gflowvi/interrupt.h"
#include "gflowvi/psis.h"
#include "solver/solver_impl.h"

int gfv_solver_alloc_full(gfv_solver *s, int with_L) {
  const size_t K = s->K;
  /* One copy for all ranks in a timing-only simulated run (src/comm/sim.h): each rank
   * writes its own rows, and the all-gathers, which SMPI does not copy into shared blocks,
   * have nothing left to move (they are still simulated, message by message). */
  if (!s->full_logw) GFV_SIM_ALLOC(s->full_logw, K); /* alone: gather_logw */
  if (!s->full_mu) {
    GFV_SIM_ALLOC(s->full_mu, K * s->d);
    GFV_SIM_ALLOC(s->full_P, K * s->psize);
    GFV_SIM_ALLOC(s->full_logc, K);
  }
  if (with_L && !s->full_L) GFV_SIM_ALLOC(s->full_L, K * s->psize);
  return GFV_OK;
}

/* Collective: every rank's rows (`row` numbers per local particle, at local) into full, in
 * particle order; this rank's rows are copied to their place and gathered in place. */
static int gather_rows(gfv_solver *s, const double *local, double *full, size_t row) {
  gfv_block_counts(s->K, s->size, row, s->g_counts, s->g_displs);
  memcpy(full + s->k0 * row, local, s->kloc * row * sizeof(double));
  return gfv_comm_allgatherv(s->comm, full + s->k0 * row, s->kloc * row, full, s->g_counts,
                             s->g_displs);
}

int gfv_solver_gather_params(gfv_solver *s) {
  GFV_CALL(gather_rows(s, s->cur.mu, s->full_mu, s->d));
  GFV_CALL(gather_rows(s, s->cur.P, s->full_P, s->psize));
  return gather_rows(s, s->cur.logc, s->full_logc, 1);
}

/* A timing-only simulated run's copy of the whole mixture outside the iterations (the
 * outputs, a relocation): the arrays are shared, so each rank copies its rows in place and
 * one small collective makes sure every rank has (the parameters only mean anything where
 * rank 0 writes them; the all-gathers' 4 (P - 1) P messages at 1,024 ranks would cost
 * minutes of simulation and change none of the timers that matter). */
static int share_rows(gfv_solver *s) {
  const size_t d = s->d, ps = s->psize;
  memcpy(s->full_logw + s->k0, s->cur.logw, s->kloc * sizeof(double));
  memcpy(s->full_mu + s->k0 * d, s->cur.mu, s->kloc * d * sizeof(double));
  memcpy(s->full_P + s->k0 * ps, s->cur.P, s->kloc * ps * sizeof(double));
  memcpy(s->full_L + s->k0 * ps, s->cur.L, s->kloc * ps * sizeof(double));
  return gfv_comm_agree(s->comm, GFV_OK, NULL);
}

int gfv_solver_gather_full(gfv_solver *s) {
  const size_t d = s->d, K = s->K;
  GFV_CALL(gfv_comm_agree(s->comm, gfv_solver_alloc_full(s, 1), NULL));
  if (gfv_sim_sampling() > 0) {
    GFV_CALL(share_rows(s));
    s->fam->log_const(s->fam, d, K, s->full_logw, s->full_P, s->full_L, s->full_logc);
    return GFV_OK;
  }
  GFV_CALL(gather_rows(s, s->cur.logw, s->full_logw, 1));
  GFV_CALL(gather_rows(s, s->cur.mu, s->full_mu, d));
  GFV_CALL(gather_rows(s, s->cur.P, s->full_P, s->psize));
  GFV_CALL(gather_rows(s, s->cur.L, s->full_L, s->psize));
  s->fam->log_const(s->fam, d, K, s->full_logw, s->full_P, s->full_L, s->full_logc);
  return GFV_OK;
}

/* The weights alone (solver_impl.h): what the verdict and the draws' choice of
 * component need of the whole mixture when the evaluation or the outputs stream it. */
int gfv_solver_gather_logw(gfv_solver *s) {
  int st = s->full_logw ? GFV_OK : gfv_calloc(&s->full_logw, s->K, sizeof(double));
  GFV_CALL(gfv_comm_agree(s->comm, st, NULL));
  return gather_rows(s, s->cur.logw, s->full_logw, 1);
}

int gfv_solver_gather_impl(gfv_solver *s, double *w, double *mu, double *P) {
  GFV_CALL(gfv_solver_require_ready(s, "gfv_solver_gather"));
  GFV_CALL(gfv_solver_gather_full(s));
  for (size_t k = 0; k < s->K; k++) w[k] = exp(s->full_logw[k]);
  memcpy(mu, s->full_mu, s->K * s->d * sizeof(double));
  memcpy(P, s->full_P, s->K * s->psize * sizeof(double));
  return GFV_OK;
}

/* Running sums of h = log q - l over one particle's samples, shifted by the first value,
 * which keeps the variance accurate when |h| >> sd(h). */
typedef struct {
  double shift, sum, sumsq;
  size_t count;
} h_sums;

/* Adds c samples (log q, l) to a: the samples outside the target's support (l = -inf: a
 * zero density, left out of the mean) and the broken values (NaN or +inf, which fail the
 * evaluation) are counted instead; lr receives the c log importance ratios l - log q +
 * lr_shift. */
static void add_samples(h_sums *a, size_t c, const double *lq, const double *lp, double lr_shift,
                        double *lr, size_t *nonfinite, size_t *outside) {
  for (size_t i = 0; i < c; i++) {
    double h = lq[i] - lp[i];
    lr[i] = -h + lr_shift;
    if (lp[i] == -INFINITY && isfinite(lq[i])) {
      (*outside)++; /* importance ratio 0: exactly right for the evidence estimate */
      continue;
    }
    if (!isfinite(h)) {
      (*nonfinite)++;
      continue;
    }
    if (isnan(a->shift)) a->shift = h;
    a->sum += h - a->shift;
    a->sumsq += (h - a->shift) * (h - a->shift);
    a->count++;
  }
}

static void finish_sums(const h_sums *a, double *mean, double *var) {
  double m = a->count ? a->sum / (double)a->count : 0.0;
  double v = a->count > 1 ? (a->sumsq - (double)a->count * m * m) / (double)(a->count - 1) : 0.0;
  *mean = m + (a->count ? a->shift : 0.0);
  *var = v < 0 ? 0.0 : v;
}

/* log q of the whole mixture at c points: the params layout's fused kernel, or the samples
 * kernel's evaluation. */
static int mixture_logq(gfv_solver *s, gfv_mix_work *w, gfv_mix_fused *f, size_t c,
                        const double *z, double *lq) {
  gfv_mix_view full = {s->d, s->K, s->full_mu, s->full_P, s->full_L, s->full_logc, s->fam->diag, s->fam->rank};
  if (f) return gfv_mix_fused_terms(&full, c, z, NULL, lq, NULL, NULL, f);
  return gfv_mix_eval(&full, c, z, lq, NULL, NULL, w);
}

/* The c draws from i0 on of each of nb local particles from j0 on, into z (particle by
 * particle): block i0 / GFV_EVAL_BLOCK of each one's evaluation stream. */
static void draw_block(gfv_solver *s, size_t j0, size_t nb, size_t i0, size_t c, double *z) {
  for (size_t b = 0; b < nb; b++) {
    const gfv_stream st = gfv_particles_stream(&s->cur, j0 + b, GFV_PURPOSE_EVAL);
    gfv_particles_sample(&s->cur, j0 + b, &st, 0, i0 / GFV_EVAL_BLOCK, c, z + b * c * s->d);
  }
}

/* Mean and variance of h = log q - l over nb local particles' M fresh samples each, from
 * particle j0 on; lr receives their M log importance ratios each, l - log q + log(K w_j):
 * the stratified draws reweighted to iid draws from q (psis.h).  Each particle's draws come
 * from its evaluation stream, one sequence (0, block number) per block of GFV_EVAL_BLOCK;
 * when M is below that, the draws of several particles (nb M <= GFV_EVAL_BLOCK) share one
 * call of the kernel, whose per-call set-up is O(K d^2) (a call per particle would cost
 * O(K^2 d^2) in set-ups alone: minutes at K = 65,536).  lq_all (NULL unless the mixture
 * streams): log q at all of this rank's draws, kloc x M, computed before (stream_logq). */
static int particles_stats(gfv_solver *s, size_t j0, size_t nb, size_t M, gfv_mix_work *w,
                           gfv_mix_fused *f, double *z, double *lq, double *lp, double *mean,
                           double *var, size_t *nonfinite, size_t *outside, size_t *out_of,
                           double *lr, const double *lq_all) {
  h_sums a[64]; /* nb <= 64 (evaluate_local) */
  for (size_t b = 0; b < nb; b++) a[b] = (h_sums){NAN, 0, 0, 0};
  for (size_t i0 = 0; i0 < M; i0 += GFV_EVAL_BLOCK) {
    /* A safe point: a stop asked for now is honoured within one block. */
    if (gfv_interrupt_signal()) return GFV_STOPPED;
    size_t c = M - i0 < GFV_EVAL_BLOCK ? M - i0 : GFV_EVAL_BLOCK;
    draw_block(s, j0, nb, i0, c, z);
    if (lq_all) /* streamed: log q summed over the blocks already (stream_logq) */
      for (size_t b = 0; b < nb; b++) memcpy(lq + b * c, lq_all + (j0 + b) * M + i0, c * sizeof(double));
    else
      GFV_CALL(mixture_logq(s, w, f, nb * c, z, lq));
    GFV_CALL(gfv_target_eval(s->target, nb * c, z, lp, NULL, NULL));
    for (size_t b = 0; b < nb; b++) {
      const double lr_shift = log((double)s->K) + s->cur.logw[j0 + b];
      size_t o0 = *outside;
      add_samples(&a[b], c, lq + b * c, lp + b * c, lr_shift, lr + b * M + i0, nonfinite, outside);
      out_of[b] += *outside - o0;
    }
  }
  for (size_t b = 0; b < nb; b++) finish_sums(&a[b], mean + b, var + b);
  return GFV_OK;
}

/* The streamed mixture (params_stream.c): log q at this rank's evaluation draws, summed
 * into lq_all (kloc x M, particle by particle) block by block as the components pass.  The
 * draws are computed again for every block (they are counter-based), so nothing of size
 * kloc M d is kept. */
typedef struct {
  size_t M, per;
  double *z, *lq, *lq_all;
  gfv_mix_fused *f;
} eval_sweep;

static int eval_block(gfv_solver *s, const gfv_mix_view *v, const double *lmin, void *ctx) {
  eval_sweep *e = ctx;
  const size_t M = e->M;
  gfv_mix_fused_fix_mixture(e->f, 1); /* this block's bounds, once for its many calls */
  gfv_mix_fused_set_bounds(e->f, lmin, lmin + v->k);
  for (size_t j0 = 0; j0 < s->kloc; j0 += e->per) {
    const size_t nb = s->kloc - j0 < e->per ? s->kloc - j0 : e->per;
    for (size_t i0 = 0; i0 < M; i0 += GFV_EVAL_BLOCK) {
      if (gfv_interrupt_signal()) return GFV_STOPPED;
      size_t c = M - i0 < GFV_EVAL_BLOCK ? M - i0 : GFV_EVAL_BLOCK;
      draw_block(s, j0, nb, i0, c, e->z);
      for (size_t b = 0; b < nb; b++) memcpy(e->lq + b * c, e->lq_all + (j0 + b) * M + i0, c * sizeof(double));
      GFV_CALL(gfv_mix_fused_logq_add(v, nb * c, e->z, NULL, e->lq, s->K, e->f));
      for (size_t b = 0; b < nb; b++) memcpy(e->lq_all + (j0 + b) * M + i0, e->lq + b * c, c * sizeof(double));
    }
  }
  return GFV_OK;
}

static int stream_logq(gfv_solver *s, eval_sweep *e) {
  double lref;
  for (size_t i = 0; i < s->kloc * e->M; i++) e->lq_all[i] = -INFINITY;
  if (strcmp(s->cfg->prune, "off") != 0) GFV_CALL(gfv_solver_own_bounds(s, e->f, &lref));
  GFV_CALL(gfv_solver_ring_sweep(s, eval_block, e));
  gfv_mix_fused_set_bounds(e->f, NULL, NULL);
  return GFV_OK;
}

static int evaluate_local(gfv_solver *s, size_t M, double *sums, double *lr) {
  int st = GFV_OK;
  gfv_mix_work *w = NULL;
  gfv_mix_fused *f = NULL;
  double *z = NULL, *lq = NULL, *lp = NULL, *lq_all = NULL;
  size_t nonfinite = 0, outside = 0;
  const size_t cap = s->stream_cap; /* the mixture streams: blocks of cap components */
  int agreed = 0;                   /* streamed: the ranks agreed on their buffers */
  /* Particles per call of the kernel (at most 64, so that the per-particle sums stay small). */
  const size_t per = M < GFV_EVAL_BLOCK ? (GFV_EVAL_BLOCK / M < 64 ? GFV_EVAL_BLOCK / M : 64) : 1;
  /* The params layout evaluates log q as its iterations do, with the fused kernel (whose
   * blocks of components keep a large mixture fast); the samples layout as it always did. */
  if (s->layout == GFV_LAYOUT_PARAMS || cap) {
    /* Groups of M: each particle's draws, the pruning's tiles (docs/pruning.md); single
     * points when a particle's draws come in several calls. */
    GFV_CALL_GOTO(st, gfv_mix_fused_alloc(s->d, cap ? cap : s->K, M <= GFV_EVAL_BLOCK ? M : 1,
                                          s->fam->diag, GFV_MIX_FUSED_BUDGET, &f), done);
    gfv_mix_fused_set_prune(f, strcmp(s->cfg->prune, "off") != 0);
    gfv_mix_fused_fix_mixture(f, 1); /* the evaluation's calls all see the final mixture */
    if (cap) GFV_CALL_GOTO(st, gfv_calloc(&lq_all, s->kloc * M, sizeof(double)), done);
  } else
    GFV_CALL_GOTO(st, s->fam->work_alloc(s->fam, s->d, s->K, 1, &w), done);
  GFV_CALL_GOTO(st, gfv_calloc(&z, GFV_EVAL_BLOCK * s->d, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&lq, GFV_EVAL_BLOCK, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&lp, GFV_EVAL_BLOCK, sizeof(double)), done);
  if (cap) { /* collective: every rank streams, after all have their buffers */
    eval_sweep e = {M, per, z, lq, lq_all, f};
    agreed = 1;
    GFV_CALL_GOTO(st, gfv_comm_agree(s->comm, st, NULL), done);
    GFV_CALL_GOTO(st, stream_logq(s, &e), done);
  }
  for (size_t j0 = 0; j0 < s->kloc; j0 += per) {
    const size_t nb = s->kloc - j0 < per ? s->kloc - j0 : per;
    double mean[64], var[64];
    size_t out_of[64] = {0};
    GFV_CALL_GOTO(st, particles_stats(s, j0, nb, M, w, f, z, lq, lp, mean, var, &nonfinite,
                                      &outside, out_of, lr + j0 * M, lq_all),
                  done);
    for (size_t b = 0; b < nb; b++) {
      const size_t j = j0 + b;
      double wj = exp(s->cur.logw[j]);
      /* The component's mass inside the support, P_j(S), weighs its restricted mean (see
       * gfv_solver_evaluate); 1 exactly when no draw fell outside. */
      size_t inside = M - out_of[b];
      double wi = inside == M ? wj : wj * (double)inside / (double)M;
      s->eval_phi[j] = mean[b];
      sums[0] += wi * mean[b];
      sums[1] += inside ? wi * wi * var[b] / (double)inside : 0.0;
      sums[4] += wi;
    }
  }
  sums[2] += (double)nonfinite;
  sums[3] += (double)outside;
done:
  gfv_mix_work_free(w);
  gfv_mix_fused_free(f);
  free(z), free(lq), free(lp), free(lq_all);
  /* A rank whose buffers failed tells the others, which wait in that agreement. */
  if (cap && !agreed) st = gfv_comm_agree(s->comm, st, NULL);
  return st;
}

/* PSIS on rank 0 over all N log ratios (N doubles gathered: 0.8 MB for the default N),
 * the results broadcast to every rank. */
static int psis_all(gfv_solver *s, size_t M, const double *lr, gfv_eval_result *res) {
  double *all = NULL, out[5] = {0};
  size_t *counts = NULL, *displs = NULL;
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&counts, (size_t)s->size, sizeof(size_t)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&displs, (size_t)s->size, sizeof(size_t)), done);
  if (s->rank == 0) GFV_CALL_GOTO(st, gfv_calloc(&all, s->K * M, sizeof(double)), done);
done:
  st = gfv_comm_agree(s->comm, st, NULL);
  if (!st) {
    gfv_block_counts(s->K, s->size, M * sizeof(double), counts, displs);
    st = gfv_comm_gatherv_bytes(s->comm, lr, s->kloc * M * sizeof(double), all, counts, displs, 0);
  }
  if (!st && s->rank == 0) {
    gfv_psis_result pr;
    st = gfv_psis(s->K * M, all, NULL, &pr);
    if (!st) out[0] = pr.khat, out[1] = pr.log_evidence, out[2] = pr.log_evidence_se, out[3] = pr.ess;
  }
  free(all), free(counts), free(displs);
  GFV_CALL(gfv_comm_agree(s->comm, st, NULL));
  GFV_CALL(gfv_comm_bcast(s->comm, out, sizeof out, 0));
  res->khat = out[0], res->log_evidence = out[1], res->log_evidence_se = out[2], res->ess = out[3];
  return GFV_OK;
}

int gfv_solver_evaluate_impl(gfv_solver *s, gfv_eval_result *res) {
  GFV_CALL(gfv_solver_require_ready(s, "gfv_solver_evaluate"));
  double t0 = gfv_comm_wtime();
  memset(res, 0, sizeof *res);
  /* A timing-only simulated run (src/comm/sim.h) has no fit to evaluate: its summary keeps
   * the timers, the figures are null and the verdict says why. */
  if (gfv_sim_sampling() > 0) {
    res->elbo = res->elbo_se = res->kl = res->kl_se = NAN;
    res->khat = res->log_evidence = res->log_evidence_se = res->ess = res->outside = NAN;
    res->nwarnings = 1, res->reliable = 0, res->warning_severe[0] = 1;
    snprintf(res->warnings[0], GFV_WARNING_LEN,
             "timing-only simulated run (%s=%d): the mixture terms were sampled, so there is no "
             "fit to evaluate; only the timers mean anything",
             GFV_SMPI_SAMPLE, gfv_sim_sampling());
    return GFV_OK;
  }
  /* The final figures use all the data: iteration -1 tells a minibatching model so. */
  if (s->target->begin_iteration)
    s->target->begin_iteration(s->target, -1, (unsigned long)s->cfg->seed);
  /* Beyond the gather budget the mixture streams past the draws (stream_logq) and only the
   * weights are gathered (the verdict's); below, it is gathered whole. */
  GFV_CALL(gfv_comm_agree(s->comm, gfv_solver_stream_alloc(s), NULL));
  GFV_CALL(s->stream_cap ? gfv_solver_gather_logw(s) : gfv_solver_gather_full(s));
  size_t M = ((size_t)s->cfg->eval_samples + s->K - 1) / s->K;
  /* sum w P(S) mean(h), sum (w P(S))^2 var(h)/M, broken, outside, P_q(S) = sum w P(S) */
  double sums[5] = {0, 0, 0, 0, 0};
  double *lr = NULL;
  int st = gfv_calloc(&lr, s->kloc * M, sizeof(double));
  if (!st) st = evaluate_local(s, M, sums, lr);
  st = gfv_comm_agree(s->comm, st, NULL);
  if (!st) st = gfv_comm_allreduce_sum(s->comm, sums, 5);
  if (!st && sums[2] == 0) st = psis_all(s, M, lr, res);
  free(lr);
  GFV_CALL(st);
  s->timers[GFV_PHASE_EVAL] += gfv_comm_wtime() - t0;
  GFV_CHECK(sums[2] == 0, GFV_ERR_NUMERIC,
            "final evaluation: the target returned non-finite values at %.0f of %zu samples of "
            "the fitted mixture",
            sums[2], M * s->K);
  res->eval_samples = M * s->K;
  res->outside = sums[3] / (double)res->eval_samples;
  /* With a bounded support the fit is the mixture restricted to it, q~ = q 1_S / P_q(S)
   * (the draws of samples.csv come from q~): its ELBO is E_{q|S}[l - log q] + log P_q(S),
   * the components' restricted means weighted by w_k P_k(S) / P_q(S).  Without draws
   * outside, P_q(S) = 1 and this is the plain ELBO, to the bit. */
  const double pin = sums[3] > 0 ? sums[4] : 1.0;
  res->elbo = sums[3] > 0 ? -sums[0] / pin + log(pin) : -sums[0];
  res->elbo_se = sums[3] > 0 ? sqrt(sums[1]) / pin : sqrt(sums[1]);
  res->kl = s->target->normalized ? -res->elbo : NAN;
  res->kl_se = s->target->normalized ? res->elbo_se : NAN;
  GFV_CHECK(isfinite(res->elbo) && isfinite(res->elbo_se), GFV_ERR_DIVERGED,
            "final evaluation: the ELBO estimate is not finite (%g +- %g): the fit diverged",
            res->elbo, res->elbo_se);
  /* KL(q || p) >= 0 on a normalised target; far below 0 is no fit but a numerical collapse
   * (a covariance so small that log q and l cancel to nothing). */
  GFV_CHECK(!(s->target->normalized && res->outside == 0 && res->kl < -(5 * res->kl_se + 1e-6)),
            GFV_ERR_DIVERGED,
            "final evaluation: KL(q || p) = %.6g +- %.2g is negative on a normalised target, which "
            "is impossible: the fit diverged numerically (try a smaller --step or --trust-region)",
            res->kl, res->kl_se);
  for (size_t k = 0; k < s->K; k++)
    if (exp(s->full_logw[k]) < 1e-6) res->negligible++;
  GFV_CALL(gfv_solver_diagnose(s, res));
  return GFV_OK;
}
