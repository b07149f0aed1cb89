/* phases.c - the mixture phases in blocks of particles (phases.h).
 *
 * Samples layout.
 * Block b holds particles [b per, (b + 1) per), i.e. points [b per S, ...), since the points
 * are stored particle by particle.  Phase A of a block is the kernel on its points; phase B
 * zeroes the block's gradient sums (and its particles' Hessian sums) and adds the kernel's
 * on its points: every row of A, log q, gbar and H belongs to exactly one block, so the
 * blocks together do what one call does (and, with one block, exactly that call).  The
 * packing for the reduce-scatter is a loop over destination ranks.  When n x kloc terms
 * exceed the layout's budget (a_rows < n), no block is longer than a_rows points, A holds
 * one block at a time, and phase B recomputes the block's terms first.  When the Hessian
 * sums of all K particles exceed the budget (h_rows < K), phase B's blocks are at most
 * h_rows particles, H_all holds one block's, and each block's are reduce-scattered to
 * their owners as soon as they are complete: in particle order they are already in the
 * order of the destination ranks, as the gradient sums in gbar_all are (solver.c
 * reduce-scatters those straight from there), so nothing is packed.
 *
 * Params layout: block b holds local particles [b per, (b + 1) per): the fused kernel on
 * their points against the whole mixture, into their rows of log q, of the gradient sums
 * and of the Hessian sums (one call per block, each a multiple of S points). */
#include "solver/phases.h"

#include <string.h>

#include "comm/sim.h"
#include "gflowvi/error.h"

typedef struct {
  gfv_solver *s;
  const gfv_mix_view *v;
  size_t per;          /* particles per block */
  size_t send_per_rk;  /* doubles per particle in the send buffer */
  size_t K;            /* particles the blocks cover (all K, or the local kloc) */
} blocks;

/* Blocks of `np` particles (S points each): one block, or up to GFV_SIM_PHASE_BLOCKS in
 * timing-only mode; never more than max_pts points per block (a multiple of S). */
static size_t block_count(const gfv_solver *s, size_t np, size_t max_pts, size_t *per) {
  size_t nb = 1;
  if (gfv_sim_sampling() > 0) {
    nb = np * s->S / GFV_SIM_BLOCK_MIN_POINTS;
    if (nb > GFV_SIM_PHASE_BLOCKS) nb = GFV_SIM_PHASE_BLOCKS;
    if (nb < 1) nb = 1;
  }
  *per = (np + nb - 1) / nb;
  if (*per * s->S > max_pts) *per = max_pts / s->S > 0 ? max_pts / s->S : 1;
  return (np + *per - 1) / *per;
}

/* The block's first point and its number of points. */
static void block_points(const blocks *B, size_t b, size_t *i0, size_t *n) {
  const gfv_solver *s = B->s;
  size_t p0 = b * B->per, np = B->K - p0 < B->per ? B->K - p0 : B->per;
  *i0 = p0 * s->S, *n = np * s->S;
}

/* The phase-A terms of the block at point i0: their own rows of A when A holds all n, else
 * A from its start (a_rows < n: one range at a time). */
static double *block_A(const gfv_solver *s, size_t i0) {
  return s->a_rows < s->n ? s->A : s->A + i0 * s->kloc;
}

static int block_a(void *ctx, size_t b) {
  const blocks *B = ctx;
  gfv_solver *s = B->s;
  size_t i0, n;
  block_points(B, b, &i0, &n);
  return gfv_mix_log_terms(B->v, n, s->zall + i0 * s->d, block_A(s, i0), s->logq + i0, s->mw);
}

/* The Hessian sums of the block at point i0: their rows of H_all, or H_all from its start
 * (h_rows < K: one block at a time). */
static double *block_H(const gfv_solver *s, size_t i0) {
  if (!s->H_all) return NULL;
  return s->h_rows < s->K ? s->H_all : s->H_all + i0 / s->S * s->psize;
}

static int block_b(void *ctx, size_t b) {
  const blocks *B = ctx;
  gfv_solver *s = B->s;
  const size_t d = s->d, ps = s->psize;
  size_t i0, n;
  block_points(B, b, &i0, &n);
  double *H = block_H(s, i0), *A = block_A(s, i0);
  memset(s->gbar_all + i0 * d, 0, n * d * sizeof(double));
  if (H) memset(H, 0, n / s->S * ps * sizeof(double));
  if (s->a_rows < s->n) GFV_CALL(gfv_mix_log_terms(B->v, n, s->zall + i0 * d, A, s->lse_tmp, s->mw));
  return gfv_mix_grad_terms(B->v, n, s->zall + i0 * d, A, s->logq + i0, s->S, s->gbar_all + i0 * d,
                            H, s->mw);
}

/* Params layout: the block's points (of this rank's own samples) against the whole mixture;
 * its gradient sums at those points and its particles' Hessian sums. */
static int block_fused(void *ctx, size_t b) {
  const blocks *B = ctx;
  gfv_solver *s = B->s;
  const size_t d = s->d;
  size_t i0, n;
  block_points(B, b, &i0, &n);
  double *H = s->est->needs_hessian ? s->recv + s->nloc * d + i0 / s->S * s->psize : NULL;
  return gfv_mix_fused_terms(B->v, n, s->zloc + i0 * d, s->skip + i0, s->logq + i0,
                             s->recv + i0 * d, H, s->mf);
}

/* Rank r's part of the send buffer: its points' gradient sums, then its particles'
 * Hessian sums. */
static int pack_rank(void *ctx, size_t r) {
  const blocks *B = ctx;
  gfv_solver *s = B->s;
  const size_t d = s->d, ps = s->psize;
  size_t k0, kl;
  gfv_block_range(s->K, s->size, (int)r, &k0, &kl);
  double *p = s->send + k0 * B->send_per_rk;
  memcpy(p, s->gbar_all + k0 * s->S * d, kl * s->S * d * sizeof(double));
  if (s->H_all) memcpy(p + kl * s->S * d, s->H_all + k0 * ps, kl * ps * sizeof(double));
  return GFV_OK;
}

int gfv_solver_phase_a(gfv_solver *s, const gfv_mix_view *v) {
  blocks B = {s, v, 0, 0, s->K};
  size_t nb = block_count(s, s->K, s->a_rows, &B.per);
  return gfv_sim_blocks("mixture-phase-a", nb, block_a, &B);
}

/* Phase B with the Hessian sums in chunks: each block's, once complete, reduce-scattered
 * to the owners of its particles (the overlap of each rank's range with the block). */
static int block_b_deliver(void *ctx, size_t b) {
  const blocks *B = ctx;
  gfv_solver *s = B->s;
  const size_t ps = s->psize;
  GFV_CALL(block_b(ctx, b));
  size_t i0, n, k0, kl, mine = 0;
  block_points(B, b, &i0, &n);
  const size_t p0 = i0 / s->S, p1 = p0 + n / s->S;
  for (int r = 0; r < s->size; r++) {
    gfv_block_range(s->K, s->size, r, &k0, &kl);
    size_t lo = k0 > p0 ? k0 : p0, hi = k0 + kl < p1 ? k0 + kl : p1;
    s->g_counts[r] = hi > lo ? (hi - lo) * ps : 0;
    if (r == s->rank && hi > lo) mine = lo - k0;
  }
  double t0 = gfv_comm_wtime();
  GFV_CALL(gfv_comm_reduce_scatter_sum(s->comm, s->H_all, s->recv + s->nloc * s->d + mine * ps, s->g_counts));
  double dt = gfv_comm_wtime() - t0;
  s->timers[GFV_PHASE_COMM] += dt, s->timers[GFV_PHASE_MIXTURE] -= dt; /* timed as phase B */
  return GFV_OK;
}

int gfv_solver_phase_b(gfv_solver *s, const gfv_mix_view *v) {
  blocks B = {s, v, 0, s->S * s->d + (s->H_all ? s->psize : 0), s->K};
  if (s->h_rows < s->K) { /* no timing-only sampling here: the blocks hold collectives */
    size_t max_pts = s->a_rows < s->h_rows * s->S ? s->a_rows : s->h_rows * s->S;
    size_t nb = block_count(s, s->K, max_pts, &B.per);
    for (size_t b = 0; b < nb; b++) GFV_CALL(block_b_deliver(&B, b));
    return GFV_OK;
  }
  size_t nb = block_count(s, s->K, s->a_rows, &B.per);
  GFV_CALL(gfv_sim_blocks("mixture-phase-b", nb, block_b, &B));
  return gfv_sim_blocks("mixture-pack", (size_t)s->size, pack_rank, &B);
}

int gfv_solver_phase_fused(gfv_solver *s, const gfv_mix_view *v) {
  blocks B = {s, v, 0, 0, s->kloc};
  if (s->kloc == 0) return GFV_OK;
  size_t nb = block_count(s, s->kloc, s->nloc, &B.per);
  return gfv_sim_blocks("mixture-fused", nb, block_fused, &B);
}

void gfv_solver_phases_neutral(gfv_solver *s) {
  gfv_sim_fill_off_clock(s->logq, s->layout == GFV_LAYOUT_PARAMS ? s->nloc : s->n, 0.0);
  gfv_sim_fill_off_clock(s->recv, s->rs_counts[s->rank], 0.0);
}
