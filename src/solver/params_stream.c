/* params_stream.c - the params layout with the mixture streamed around the ranks (docs/method.md,
 * section 9), for a mixture too large to gather on every rank.
 *
 * Below the budget (gfv_params_gather_budget) every rank all-gathers the parameters of all
 * K components, K (d + ps + 1) numbers, and meets them in one call of the fused kernel: the
 * fastest way.  Above it the components travel in blocks around a ring: each rank cuts its
 * own particles into chunks of at most `cap` components; in step t of a sweep a rank holds
 * chunk ch of rank (r - t) mod P, uses it, and passes it on to rank r + 1 while it receives
 * the next from rank r - 1 (gfv_comm_ring_shift).  So a rank holds its own particles and two
 * blocks of cap (d + ps + 3) numbers (the one in hand and the one arriving: means,
 * precisions, log-constants and the precisions' eigenvalue bounds), whatever K: each an
 * eighth of the budget at most.
 *
 * Two sweeps, because the responsibilities need the whole log q first:
 *   1. log q at this rank's points, block by block (gfv_mix_fused_logq_add);
 *   2. each block's gradient and Hessian terms with r_ij = exp(a_ij - log q_i)
 *      (gfv_mix_fused_terms_given).
 * One sweep with an online rescaling (flash-attention style: keep a running maximum and
 * rescale the accumulators when it grows) would serve the gradient sums, whose rescaling is
 * one factor per point, but not the Hessian sums: a particle's sum adds its S points' terms
 * into one d x d matrix, and the points have different log q, so rescaling it would need a
 * d x d accumulator per point instead of per particle.  The two sweeps are exact (the same
 * terms as the one call, summed in another order), cost one more pass of the log terms'
 * DGEMM and twice the ring's traffic, and keep the memory per rank at O(k ps + cap ps).
 *
 * The pruning stays exact: the second sweep's bounds use the whole log q, the whole K and
 * the flattest curvature of the whole mixture (one all-reduce of each rank's own), and the
 * first sweep's log q summed over the blocks so far, also below the whole one.
 * The precisions' eigenvalue bounds (a LAPACK dsyev each) are computed once per state by
 * their owner and travel with the block: otherwise every rank would compute all K of them
 * in each sweep, twice the gathered path's count (a third of the mixture time at d = 64). 
 *
 * The final evaluation streams the same way (evaluate.c) in both layouts.  A timing-only
 * simulated run (src/comm/sim.h) does not stream: its shared arrays make the gather free. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm/sim.h"
#include "gflowvi/error.h"
#include "solver/solver_impl.h"

double gfv_params_gather_budget(void) {
  const char *e = getenv(GFV_PARAMS_GATHER_ENV);
  char *end = NULL;
  double v = e && *e ? strtod(e, &end) : 0.0;
  return e && *e && end && *end == '\0' && v > 0 ? v : GFV_PARAMS_GATHER_BUDGET;
}

size_t gfv_params_stream_cap(size_t K, int ranks, size_t d, size_t ps) {
  const double row = 8.0 * (double)(d + ps + GFV_RING_EXTRA), budget = gfv_params_gather_budget();
  if ((double)K * row <= budget || gfv_sim_sampling() > 0) return 0;
  /* A block is an eighth of the budget: the two in flight take a quarter, so that a mixture
   * just beyond the budget takes far less streamed than gathered. */
  size_t most = (K + (size_t)ranks - 1) / (size_t)ranks, cap = (size_t)(budget / (8.0 * row));
  if (cap > most) cap = most;
  return cap < 1 ? 1 : cap;
}

size_t gfv_samples_h_rows(size_t K, size_t ps, int hessian) {
  const double budget = gfv_params_gather_budget(), row = 8.0 * (double)ps;
  if (!hessian || (double)K * row <= budget || gfv_sim_sampling() > 0) return K;
  size_t rows = (size_t)(budget / row);
  return rows < 1 ? 1 : rows;
}

size_t gfv_family_stream_cap(const gfv_family_type *fam, size_t K, int ranks, size_t d) {
  /* The low-rank family (samples layout only) gathers its mixture for the evaluation
   * whatever its size: the streamed sweeps use the fused kernel, which has no low-rank path;
   * its mixture is K (d + d R) numbers, small for the few components it is meant for. */
  return fam->rank ? 0 : gfv_params_stream_cap(K, ranks, d, fam->psize(fam, d));
}

int gfv_solver_stream_alloc(gfv_solver *s) {
  s->stream_cap = gfv_family_stream_cap(s->fam, s->K, s->size, s->d);
  if (!s->stream_cap || s->ring[0]) return GFV_OK;
  const size_t row = s->d + s->psize + GFV_RING_EXTRA;
  for (int i = 0; i < 2; i++) GFV_ALLOC(s->ring[i], s->stream_cap * row);
  GFV_ALLOC(s->ring_bounds, 2 * s->kloc);
  return GFV_OK;
}

/* Components in chunk ch of rank r. */
static size_t chunk_size(const gfv_solver *s, int r, size_t ch) {
  size_t k0, kl, a = ch * s->stream_cap;
  gfv_block_range(s->K, s->size, r, &k0, &kl);
  return a >= kl ? 0 : (kl - a < s->stream_cap ? kl - a : s->stream_cap);
}

/* The view of a block of cnt components packed as [mu | P | logc | lmin | lmax]. */
static gfv_mix_view block_view(const gfv_solver *s, const double *buf, size_t cnt) {
  const size_t d = s->d, ps = s->psize;
  gfv_mix_view v = {d, cnt, buf, buf + cnt * d, NULL, buf + cnt * (d + ps), s->fam->diag, s->fam->rank};
  return v;
}

int gfv_solver_ring_sweep(gfv_solver *s, gfv_block_fn fn, void *ctx) {
  const size_t d = s->d, ps = s->psize, row = d + ps + GFV_RING_EXTRA, cap = s->stream_cap;
  const int P = s->size, r = s->rank;
  size_t most = (s->K + (size_t)P - 1) / (size_t)P, nch = (most + cap - 1) / cap;
  int st = GFV_OK;
  double tc = 0.0;
  for (size_t ch = 0; ch < nch; ch++) {
    double *hold = s->ring[0], *next = s->ring[1];
    size_t a = ch * cap, cnt = chunk_size(s, r, ch);
    if (cnt) { /* (a is past this rank's particles when it has fewer chunks) */
      memcpy(hold, s->cur.mu + a * d, cnt * d * sizeof(double));
      memcpy(hold + cnt * d, s->cur.P + a * ps, cnt * ps * sizeof(double));
      memcpy(hold + cnt * (d + ps), s->cur.logc + a, cnt * sizeof(double));
      memcpy(hold + cnt * (d + ps + 1), s->ring_bounds + a, cnt * sizeof(double));
      memcpy(hold + cnt * (d + ps + 2), s->ring_bounds + s->kloc + a, cnt * sizeof(double));
    }
    for (int t = 0; t < P; t++) {
      const int src = (r - t + P) % P;
      cnt = chunk_size(s, src, ch);
      gfv_mix_view v = block_view(s, hold, cnt);
      /* A failure here is agreed after the sweep: the ring must go round on every rank. */
      if (cnt && !st) st = fn(s, &v, hold + cnt * (d + ps + 1), ctx);
      if (t + 1 == P) break;
      size_t incoming = chunk_size(s, (src - 1 + P) % P, ch);
      double t0 = gfv_comm_wtime();
      GFV_CALL(gfv_comm_ring_shift(s->comm, hold, cnt * row, next, incoming * row));
      tc += gfv_comm_wtime() - t0;
      double *tmp = hold;
      hold = next, next = tmp;
    }
  }
  s->timers[GFV_PHASE_COMM] += tc;
  s->timers[GFV_PHASE_MIXTURE] -= tc; /* the callers time the sweep as mixture work */
  return gfv_comm_agree(s->comm, st, NULL);
}

int gfv_solver_own_bounds(gfv_solver *s, gfv_mix_fused *f, double *lref) {
  gfv_mix_view own = {s->d, s->kloc, s->cur.mu, s->cur.P, NULL, s->cur.logc, s->fam->diag, s->fam->rank};
  double m = -gfv_mix_fused_bounds(&own, f, s->ring_bounds, s->ring_bounds + s->kloc);
  GFV_CALL(gfv_comm_allreduce_max(s->comm, &m, 1));
  *lref = -m;
  return GFV_OK;
}

static int sweep_logq(gfv_solver *s, const gfv_mix_view *v, const double *lmin, void *ctx) {
  (void)ctx;
  gfv_mix_fused_set_bounds(s->mf, lmin, lmin + v->k);
  return gfv_mix_fused_logq_add(v, s->nloc, s->zloc, s->skip, s->logq, s->K, s->mf);
}

static int sweep_terms(gfv_solver *s, const gfv_mix_view *v, const double *lmin, void *ctx) {
  const double *lref = ctx;
  gfv_mix_fused_set_bounds(s->mf, lmin, lmin + v->k);
  double *H = s->est->needs_hessian ? s->recv + s->nloc * s->d : NULL;
  return gfv_mix_fused_terms_given(v, s->nloc, s->zloc, s->skip, s->logq, s->K, *lref, s->recv, H,
                                   s->mf);
}

int gfv_solver_stream_terms(gfv_solver *s) {
  double t0 = gfv_comm_wtime(), lref = INFINITY;
  for (size_t i = 0; i < s->nloc; i++) s->logq[i] = -INFINITY;
  memset(s->recv, 0, s->rs_counts[s->rank] * sizeof(double));
  /* The pruning's eigenvalue bounds, once per state by each owner (they travel with the
   * blocks), where each rank would otherwise compute all K of them in each sweep. */
  if (strcmp(s->cfg->prune, "off") != 0) GFV_CALL(gfv_solver_own_bounds(s, s->mf, &lref));
  GFV_CALL(gfv_solver_ring_sweep(s, sweep_logq, NULL));
  GFV_CALL(gfv_solver_ring_sweep(s, sweep_terms, &lref));
  gfv_mix_fused_set_bounds(s->mf, NULL, NULL);
  s->timers[GFV_PHASE_MIXTURE] += gfv_comm_wtime() - t0;
  return GFV_OK;
}
