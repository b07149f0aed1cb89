/* kernel_fused.c - the parameter layout's mixture kernel (see mixture.h): every component
 * of the mixture against the points of one rank.
 *
 * All K components are local to every point, so log q(z_i) is complete as soon as a block
 * of points has met every component, and the gradient and Hessian sums can follow at once
 * from the same products.  Per block of c points (y = z - centre, centre the mean of the
 * means, so that nothing loses accuracy to a common offset):
 *   one DGEMM  Y = y [P_1 .. P_K]  (c x d)(d x K d), reading the precisions in place (they
 *              are symmetric, so the K d x d stack of them, transposed, is [P_1 .. P_K]);
 *   per pair   g_ij = b_j - Y_ij = P_j (mu_j - z_i)  (b_j = P_j (mu_j - centre)),
 *              a_ij = logc_j - (mu_j - z_i) . g_ij / 2;
 *   per point  log q_i = log-sum-exp_j a_ij, r_ij = exp(a_ij - log q_i);
 *   per pair   gbar_i += r_ij g_ij, and the row sqrt(r_ij) g_ij in place of g_ij;
 *   per group  one DSYRK of its rows gives sum r g g^T; the -sum r P part waits for many
 *              groups and is one DGEMM (groups x K)(K x d^2).
 * That is kernel.c's phase B with phase A's log terms taken from the same products: no
 * second DGEMM and no n x K array.
 *
 * The streamed params layout (src/solver/params_stream.c) calls this per block of a mixture
 * that travels around the ranks: gfv_mix_fused_logq_add sums log q over the blocks, then
 * gfv_mix_fused_terms_given adds each block's gradient and Hessian terms with that log q
 * (r_ij = exp(a_ij - log q_i)); its pruning takes the given log q as its lower bound, and
 * the whole mixture's K and flattest curvature, so it stays exact for the whole sums.
 *
 * When K components and 16 points do not fit the budget, components go in blocks and the
 * block of points makes two passes: the log-sum-exp over all components first (phase A's
 * quadratic-feature DGEMM, per block of components, combined as it goes), then the pass
 * above per block of components with that log q.  The diagonal family runs kernel_diag.c's
 * two phases block by block (its phase B never repeated phase A's GEMM). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "mixture/kernel_impl.h"
#include "mixture/prune.h"

#define FUSED_MIN_POINTS 16 /* fewer points per block than this: blocks of components */
#define FUSED_POINTS 64     /* points per block in the two-pass form */
#define FUSED_PENDING 256   /* groups whose -sum r P part may wait for one DGEMM */
#define PRUNE_BACKOFF 15    /* the longest pause (in calls) after calls that pruned nothing */

struct gfv_mix_fused {
  size_t d, K, group, c, kb, cwcap, mq;
  int diag, two_pass;
  gfv_mix_work *dw; /* the diagonal family's workspace (kernel_diag.c) */
  double *center;   /* d */
  double *y;        /* c x d: the block's points, shifted */
  double *b;        /* K x d: P_j (mu_j - centre) */
  double *buf;      /* c x kb x d: products, then gradients, then scaled gradients */
  double *A;        /* c x kb: log terms, then responsibilities */
  double *lse;      /* c: log q of the block's points */
  double *cw;       /* cwcap x kb: sum of r_ij over each group */
  double *F, *W;    /* two passes: c x mq features, mq x kb coefficients */
  double *bm, *mtmp; /* d each: scratch of gfv_mix_quad_coefs */
  double *wx;       /* GFV_MIX_SIMD_ROWS x d: scratch of gfv_mix_simd_grad_terms */
  /* pruning (docs/pruning.md) */
  int prune;              /* gfv_mix_fused_set_prune */
  size_t ts, ntile;       /* points per tile, tiles per block */
  double *lmin, *lmax;    /* K each: eigenvalue bounds of the precisions */
  double *ub, *tb;        /* K each: the tile's bounds and their t0 */
  double *lrat;           /* K: log(lmax_j / lref), the scale part of the factor */
  double *keep;           /* the components the tiles keep, one list after the other
                           * (unsigned indices; room for kcap of them, see prune_plan) */
  size_t kcap;
  double *gP, *gmu, *glogc, *gb; /* kb components gathered: precisions, means, logc, b */
  double *eigw;           /* GFV_PRUNE_EIG_WORK(d) */
  double *nkt, *kof;      /* ntile each: the number each tile keeps, and where its list starts */
  int fixed, have;        /* gfv_mix_fused_fix_mixture; eigenvalue bounds computed */
  double lref;
  /* gfv_mix_fused_terms_given: the whole mixture's size and curvature bound, and the
   * given log q of the block of points in hand (NULL in the ordinary calls) */
  size_t kall;
  double lref_all;
  const double *gq;
  int lq_add; /* gfv_mix_fused_logq_add: log q written as log(exp(logq) + the block's sum) */
  const double *gmin, *gmax; /* gfv_mix_fused_set_bounds: the components' eigenvalue bounds */
  const double *pq;          /* gfv_mix_fused_logq_add: the block of points' log q so far */
  double pairs, pruned;   /* since gfv_mix_fused_counts last reset them */
  unsigned wait, backoff; /* calls to go without trying to prune, and the next such pause */
};

enum { NB = 25 };

static void layout(gfv_mix_fused *f, size_t d, size_t K, size_t group, size_t budget, size_t *n) {
  const size_t per = (d + 1) * sizeof(double); /* per (point, component): gradient, a_ij */
  f->d = d, f->K = K, f->group = group, f->mq = d * (d + 1) / 2 + d + 1;
  size_t c1 = budget / (K * per);
  if (c1 >= FUSED_MIN_POINTS) {
    f->two_pass = 0, f->kb = K;
    f->c = c1 >= group ? c1 / group * group : c1;
  } else {
    f->two_pass = 1;
    f->c = group <= FUSED_POINTS ? FUSED_POINTS / group * group : FUSED_POINTS;
    f->kb = budget / (f->c * per);
    if (f->kb < 1) f->kb = 1;
    if (f->kb > K) f->kb = K;
  }
  /* A block of c points touches at most (c - 1) / group + 2 groups. */
  size_t touched = (f->c - 1) / group + 2, cap = budget / (K * sizeof(double));
  if (cap > FUSED_PENDING) cap = FUSED_PENDING;
  f->cwcap = f->two_pass || cap < touched ? touched : cap;
  const size_t tp = (size_t)f->two_pass, c = f->c, kb = f->kb;
  /* A tile is one group: the draws of one component in the solver and in the final
   * evaluation, a small ball when the mixture is spread out. */
  f->ts = group;
  if (f->ts > c) f->ts = c;
  f->ntile = (c + f->ts - 1) / f->ts;
  f->kcap = (f->ntile / 2 + 2) * K;
  const size_t counts[NB] = {d,      c * d,  K * d,       c * kb * d, c * kb, c,
                             f->cwcap * kb, tp * c * f->mq, tp * f->mq * kb, d, d, GFV_MIX_SIMD_ROWS * d,
                             K, K, K, K, (f->kcap + 1) / 2, kb * d * d, kb * d, kb, kb * d,
                             GFV_PRUNE_EIG_WORK(d), f->ntile, K, f->ntile};
  memcpy(n, counts, sizeof counts);
}

static void buffers(gfv_mix_fused *f, double ***b) {
  double **p[NB] = {&f->center, &f->y,    &f->b,  &f->buf, &f->A,    &f->lse,   &f->cw, &f->F,
                    &f->W,      &f->bm,   &f->mtmp, &f->wx, &f->lmin, &f->lmax, &f->ub, &f->tb,
                    &f->keep,   &f->gP,   &f->gmu,  &f->glogc, &f->gb, &f->eigw, &f->nkt, &f->lrat, &f->kof};
  memcpy(b, p, sizeof p);
}

int gfv_mix_fused_alloc(size_t d, size_t K, size_t group, int diag, size_t budget,
                        gfv_mix_fused **out) {
  GFV_CHECK(d >= 1 && group >= 1, GFV_ERR_INTERNAL, "fused workspace: d=%zu group=%zu", d, group);
  gfv_mix_fused *f;
  GFV_ALLOC(f, 1);
  int st = GFV_OK;
  f->diag = diag, f->d = d, f->K = K ? K : 1, f->group = group, f->prune = 1;
  if (diag) {
    GFV_CALL_GOTO(st, gfv_mix_work_alloc_diag(d, f->K, group, &f->dw), fail);
  } else {
    size_t n[NB];
    double **b[NB];
    layout(f, d, f->K, group, budget ? budget : GFV_MIX_FUSED_BUDGET, n);
    buffers(f, b);
    for (int i = 0; i < NB; i++) GFV_CALL_GOTO(st, gfv_calloc(b[i], n[i], sizeof(double)), fail);
  }
  *out = f;
  return GFV_OK;
fail:
  gfv_mix_fused_free(f);
  return st;
}

double gfv_mix_fused_bytes(size_t d, size_t K, size_t group, int diag, size_t budget) {
  gfv_mix_fused f;
  double bytes = sizeof f;
  if (!K) K = 1;
  if (diag) return bytes + gfv_mix_work_bytes(d, K, group, 1);
  size_t n[NB];
  layout(&f, d, K, group ? group : 1, budget ? budget : GFV_MIX_FUSED_BUDGET, n);
  for (int i = 0; i < NB; i++) bytes += (double)(n[i] ? n[i] : 1) * sizeof(double);
  return bytes;
}

void gfv_mix_fused_shape(const gfv_mix_fused *f, size_t *points, size_t *comps, size_t *pending) {
  *points = f->diag ? f->dw->chunk : f->c;
  *comps = f->diag ? f->K : f->kb;
  *pending = f->diag ? 0 : f->cwcap;
}

void gfv_mix_fused_free(gfv_mix_fused *f) {
  if (!f) return;
  gfv_mix_work_free(f->dw);
  double **b[NB];
  buffers(f, b);
  for (int i = 0; i < NB; i++) free(*b[i]);
  free(f);
}

/* buf <- products of the block's c points with components j0 .. j0+kb-1, turned into
 * gradients g_ij; A <- their log terms a_ij. */
static void log_terms(const gfv_mix_view *m, const double *bv, size_t j0, size_t kb, size_t c,
                      const double *y, const double *z, gfv_mix_fused *f) {
  const size_t d = m->d;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c, (int)(kb * d), (int)d, 1.0, y,
              (int)d, m->P + j0 * d * d, (int)d, 0.0, f->buf, (int)(kb * d));
  if (gfv_mix_simd()) {
    for (size_t i = 0; i < c; i++)
      gfv_mix_simd_log_terms(d, kb, f->buf + i * kb * d, bv + j0 * d, m->mu + j0 * d, z + i * d,
                             m->logc + j0, f->A + i * kb);
    return;
  }
  for (size_t i = 0; i < c; i++) {
    const double *zi = z + i * d;
    for (size_t j = 0; j < kb; j++) {
      double *row = f->buf + (i * kb + j) * d;
      const double *bj = bv + (j0 + j) * d, *mu = m->mu + (j0 + j) * d;
      /* Four partial sums: independent chains the compiler can keep in one vector. */
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      size_t t = 0;
      for (; t + 4 <= d; t += 4) {
        double g0 = bj[t] - row[t], g1 = bj[t + 1] - row[t + 1];
        double g2 = bj[t + 2] - row[t + 2], g3 = bj[t + 3] - row[t + 3];
        row[t] = g0, row[t + 1] = g1, row[t + 2] = g2, row[t + 3] = g3;
        s0 += (mu[t] - zi[t]) * g0, s1 += (mu[t + 1] - zi[t + 1]) * g1;
        s2 += (mu[t + 2] - zi[t + 2]) * g2, s3 += (mu[t + 3] - zi[t + 3]) * g3;
      }
      for (; t < d; t++) {
        double g = bj[t] - row[t];
        row[t] = g;
        s0 += (mu[t] - zi[t]) * g;
      }
      double maha = (s0 + s1) + (s2 + s3);
      f->A[i * kb + j] = m->logc[j0 + j] - 0.5 * (maha > 0 ? maha : 0.0);
    }
  }
}

/* Pending -sum r P parts: groups pend0 .. pend0 + npend - 1 of H, columns j0 .. j0+kb-1. */
typedef struct {
  size_t pend0, npend;
} pending;

static void flush(const gfv_mix_view *m, size_t j0, size_t kb, pending *p, double *H, gfv_mix_fused *f) {
  const size_t dd = m->d * m->d;
  if (p->npend)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p->npend, (int)dd, (int)kb, -1.0, f->cw,
                (int)kb, m->P + j0 * dd, (int)dd, 1.0, H + p->pend0 * dd, (int)dd);
  p->npend = 0;
}

/* With the responsibilities of the block's points in A and their gradients in buf: the
 * gradient sums into gbar, the DSYRK of each group's rows and the group sums of r into H
 * and cw.  The block holds points i0 .. i0+c-1 and components j0 .. j0+kb-1. */
static void grad_terms(const gfv_mix_view *m, size_t j0, size_t kb, size_t i0, size_t c,
                       double *gbar, double *H, pending *p, gfv_mix_fused *f) {
  const size_t d = m->d, dd = d * d, group = f->group;
  const size_t g_first = i0 / group, g_last = (i0 + c - 1) / group;
  if (H) {
    if (p->npend && g_last - p->pend0 + 1 > f->cwcap) flush(m, j0, kb, p, H, f);
    if (!p->npend) p->pend0 = g_first;
    size_t rows = g_last - p->pend0 + 1;
    memset(f->cw + p->npend * kb, 0, (rows - p->npend) * kb * sizeof(double));
    p->npend = rows;
  }
  if (gfv_mix_simd()) { /* per group's part of the block: gradients, r sums, Gram matrix */
    for (size_t s0 = i0; s0 < i0 + c;) {
      size_t g = s0 / group, s1 = (g + 1) * group < i0 + c ? (g + 1) * group : i0 + c;
      gfv_mix_simd_grad_terms(d, kb, s1 - s0, f->buf + (s0 - i0) * kb * d, f->A + (s0 - i0) * kb,
                              gbar + s0 * d, H ? f->cw + (g - p->pend0) * kb : NULL,
                              H ? H + g * dd : NULL, f->wx);
      s0 = s1;
    }
    return;
  }
  for (size_t i = 0; i < c; i++) {
    const double *Ai = f->A + i * kb;
    double *gi = gbar + (i0 + i) * d;
    double *cwi = H ? f->cw + ((i0 + i) / group - p->pend0) * kb : NULL;
    for (size_t j = 0; j < kb; j++) {
      double r = Ai[j], *row = f->buf + (i * kb + j) * d;
      for (size_t t = 0; t < d; t++) gi[t] += r * row[t];
      if (!H) continue;
      double sr = sqrt(r);
      for (size_t t = 0; t < d; t++) row[t] *= sr;
      cwi[j] += r;
    }
  }
  if (!H) return;
  for (size_t s0 = i0; s0 < i0 + c;) { /* one DSYRK per group's part of the block */
    size_t g = s0 / group, s1 = (g + 1) * group < i0 + c ? (g + 1) * group : i0 + c;
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)((s1 - s0) * kb), 1.0,
                f->buf + (s0 - i0) * kb * d, (int)d, 1.0, H + g * dd, (int)d);
    s0 = s1;
  }
}

/* Responsibilities from log terms: r_ij = exp(a_ij - lse_i), or 0 for a left-out point and
 * one no component reaches. */
static void responsibilities(size_t c, size_t kb, const unsigned char *skip, gfv_mix_fused *f) {
  for (size_t i = 0; i < c; i++) {
    double *Ai = f->A + i * kb, lq = f->lse[i];
    int none = (skip && skip[i]) || !isfinite(lq);
    for (size_t j = 0; j < kb; j++) Ai[j] = none ? 0.0 : exp(Ai[j] - lq);
  }
}

/* One pass: log q of the block from the log terms of all K components, then r. */
static void single_pass_lse(size_t c, size_t K, const unsigned char *skip, gfv_mix_fused *f) {
  for (size_t i = 0; i < c; i++) {
    double *Ai = f->A + i * K, mx = -INFINITY, sum = 0.0;
    for (size_t j = 0; j < K; j++) mx = Ai[j] > mx ? Ai[j] : mx;
    if (mx == -INFINITY || (skip && skip[i])) {
      f->lse[i] = mx;
      memset(Ai, 0, K * sizeof(double));
      continue;
    }
    for (size_t j = 0; j < K; j++) sum += Ai[j] = exp(Ai[j] - mx);
    f->lse[i] = mx + log(sum);
    double inv = 1.0 / sum; /* r = exp(a - mx) / sum: one exp per pair */
    for (size_t j = 0; j < K; j++) Ai[j] *= inv;
  }
}

/* Log q of point i of the block out of the block's log-sum-exp: the whole log q, +inf for
 * a left-out point, or added to what logq holds (gfv_mix_fused_logq_add). */
static double put_logq(double held, const unsigned char *sk, size_t i, const gfv_mix_fused *f) {
  if (sk && sk[i]) return INFINITY;
  return f->lq_add ? gfv_logaddexp(held, f->lse[i]) : f->lse[i];
}

/* Two passes: log q of the block over all components, a block of components at a time. */
static void blocked_lse(const gfv_mix_view *m, size_t c, const double *z, gfv_mix_fused *f) {
  const size_t d = m->d, mq = f->mq;
  for (size_t i = 0; i < c; i++) {
    gfv_mix_quad_row(d, z + i * d, f->center, f->F + i * mq);
    f->lse[i] = -INFINITY;
  }
  for (size_t j0 = 0; j0 < m->k; j0 += f->kb) {
    size_t kb = m->k - j0 < f->kb ? m->k - j0 : f->kb;
    gfv_mix_quad_coefs(m, j0, kb, f->center, f->W, f->bm, f->mtmp);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)kb, (int)mq, 1.0, f->F, (int)mq,
                f->W, (int)kb, 0.0, f->A, (int)kb);
    for (size_t i = 0; i < c; i++) f->lse[i] = gfv_logaddexp(f->lse[i], gfv_logsumexp(kb, f->A + i * kb, 1));
  }
}

/* ---- pruning (docs/pruning.md) ---- */

/* The precisions' eigenvalue bounds; returns the smallest lower bound (the scale the
 * margin refers to). */
static double prune_prepare(const gfv_mix_view *m, gfv_mix_fused *f) {
  const size_t d = m->d, dd = d * d;
  double lref = INFINITY;
  if (f->gmin) { /* given with the components (a streamed block): no eigenvalues here */
    memcpy(f->lmin, f->gmin, m->k * sizeof(double));
    memcpy(f->lmax, f->gmax, m->k * sizeof(double));
  }
  for (size_t j = 0; j < m->k; j++) {
    if (!f->gmin) gfv_prune_eig(d, m->P + j * dd, f->eigw, f->lmin + j, f->lmax + j);
    lref = f->lmin[j] < lref ? f->lmin[j] : lref;
  }
  /* A block of a larger mixture: the bound refers to the whole mixture's flattest component. */
  if (f->gq && f->lref_all < lref) lref = f->lref_all;
  for (size_t j = 0; j < m->k; j++) f->lrat[j] = gfv_prune_factor(0.0, f->lmax[j], lref) - log(2.0);
  return lref;
}

/* The components tile t (points z, n of them) keeps, into keep; returns their number.  lq:
 * the whole mixture's log q at the tile's points when given (gfv_mix_fused_terms_given),
 * whose least value is then the lower bound. */
static size_t prune_tile(const gfv_mix_view *m, size_t n, const double *z, const unsigned char *sk,
                         const double *lq, double lref, unsigned *keep, gfv_mix_fused *f) {
  const size_t d = m->d, K = m->k;
  double R = gfv_prune_ball(d, n, z, sk, f->bm);
  if (R < 0) return 0; /* every point left out: nothing to compute */
  size_t best = 0;
  for (size_t j = 0; j < K; j++) {
    f->ub[j] = gfv_prune_upper(d, m->mu + j * d, m->logc[j], f->lmin[j], f->bm, R, f->tb + j);
    if (f->ub[j] > f->ub[best]) best = j;
  }
  /* A lower bound of log q at every point of the tile: its exact term with the component
   * whose bound is highest, a = logc - x^T P x / 2, x = z - mu. */
  const double *Pb = m->P + best * d * d, *mu = m->mu + best * d;
  double lower = INFINITY;
  for (size_t i = 0; lq && i < n; i++)
    if (!(sk && sk[i])) lower = lq[i] < lower ? lq[i] : lower;
  /* logq_add: log q summed over the blocks met so far is below the whole one too. */
  double sofar = f->pq ? INFINITY : -INFINITY;
  for (size_t i = 0; f->pq && i < n; i++)
    if (!(sk && sk[i])) sofar = f->pq[i] < sofar ? f->pq[i] : sofar;
  for (size_t i = 0; !lq && i < n; i++) {
    if (sk && sk[i]) continue;
    for (size_t t = 0; t < d; t++) f->mtmp[t] = z[i * d + t] - mu[t];
    double q = 0.0;
    for (size_t a = 0; a < d; a++) {
      double v = 0.0;
      for (size_t b = 0; b < d; b++) v += Pb[a * d + b] * f->mtmp[b];
      q += f->mtmp[a] * v;
    }
    double a = m->logc[best] - 0.5 * q;
    lower = a < lower ? a : lower;
  }
  if (sofar > lower) lower = sofar;
  double thr = gfv_prune_threshold(lower, (f->gq || f->lq_add) && f->kall > K ? f->kall : K);
  size_t nk = 0;
  for (size_t j = 0; j < K; j++) {
    /* The factor is >= 0: a bound at or above thr keeps the pair at once.  And
     * log max(2, 1 + t) <= t / 4 + 0.7 for t >= 0 (log(1 + t) - t / 4 peaks at t = 3 with
     * log 4 - 3/4 = 0.64; log 2 = 0.69), so most pruned pairs need no logarithm. */
    const double ub = f->ub[j], t0 = f->tb[j];
    if (ub >= thr) {
      keep[nk++] = (unsigned)j;
      continue;
    }
    if (ub + 0.25 * t0 + 0.7 + f->lrat[j] < thr) continue;
    if (!(ub + gfv_prune_factor(t0, f->lmax[j], lref) < thr)) keep[nk++] = (unsigned)j;
  }
  return nk;
}

/* The view of components keep[0 .. k-1], gathered into the workspace. */
static gfv_mix_view gather(const gfv_mix_view *m, const unsigned *keep, size_t k, gfv_mix_fused *f) {
  const size_t d = m->d, dd = d * d;
  for (size_t j = 0; j < k; j++) {
    size_t s = keep[j];
    memcpy(f->gP + j * dd, m->P + s * dd, dd * sizeof(double));
    memcpy(f->gmu + j * d, m->mu + s * d, d * sizeof(double));
    memcpy(f->gb + j * d, f->b + s * d, d * sizeof(double));
    f->glogc[j] = m->logc[s];
  }
  gfv_mix_view v = {d, k, f->gmu, f->gP, NULL, f->glogc, 0, 0};
  return v;
}

/* Points i0 .. i0+c-1 (y their shifted rows) against the components in keep (nk of them):
 * the kernel of the unpruned path on the gathered components, in one pass when they fit
 * the workspace's block of components, else in two.  With gq (the whole mixture's log q at
 * the tile's points, gfv_mix_fused_terms_given) the responsibilities come from it and
 * logq is neither computed nor written. */
static void tile_terms(const gfv_mix_view *m, const unsigned *keep, size_t nk, size_t i0, size_t c,
                       const double *y, const double *z, const unsigned char *sk, double *logq,
                       const double *gq, double *gbar, double *H, gfv_mix_fused *f) {
  const size_t d = m->d, mq = f->mq;
  const int given = gq != NULL; /* the whole mixture's log q, given: logq is not written */
  pending p = {0, 0};
  if (given) {
    for (size_t i = 0; i < c; i++) f->lse[i] = gq[i];
    if (!nk) return; /* every pair pruned: nothing to add */
  }
  if (!nk) { /* every point left out (a kept point keeps at least its best component) */
    for (size_t i = 0; i < c; i++) f->lse[i] = -INFINITY;
    for (size_t i = 0; i < c; i++) logq[i] = put_logq(logq[i], sk, i, f);
    return;
  }
  if (nk <= f->kb) {
    gfv_mix_view v = gather(m, keep, nk, f);
    log_terms(&v, f->gb, 0, nk, c, y, z, f);
    if (given)
      responsibilities(c, nk, sk, f);
    else
      single_pass_lse(c, nk, sk, f);
    if (gbar) grad_terms(&v, 0, nk, i0, c, gbar, H, &p, f);
    if (H) flush(&v, 0, nk, &p, H, f);
  } else { /* nk > kb happens in the two-pass form only, which has F and W */
    for (size_t i = 0; !given && i < c; i++) {
      gfv_mix_quad_row(d, z + i * d, f->center, f->F + i * mq);
      f->lse[i] = -INFINITY;
    }
    for (size_t j0 = 0; !given && j0 < nk; j0 += f->kb) {
      size_t kb = nk - j0 < f->kb ? nk - j0 : f->kb;
      gfv_mix_view v = gather(m, keep + j0, kb, f);
      gfv_mix_quad_coefs(&v, 0, kb, f->center, f->W, f->bm, f->mtmp);
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c, (int)kb, (int)mq, 1.0, f->F, (int)mq,
                  f->W, (int)kb, 0.0, f->A, (int)kb);
      for (size_t i = 0; i < c; i++) f->lse[i] = gfv_logaddexp(f->lse[i], gfv_logsumexp(kb, f->A + i * kb, 1));
    }
    for (size_t j0 = 0; gbar && j0 < nk; j0 += f->kb) {
      size_t kb = nk - j0 < f->kb ? nk - j0 : f->kb;
      gfv_mix_view v = gather(m, keep + j0, kb, f);
      log_terms(&v, f->gb, 0, kb, c, y, z, f);
      responsibilities(c, kb, sk, f);
      grad_terms(&v, 0, kb, i0, c, gbar, H, &p, f);
      if (H) flush(&v, 0, kb, &p, H, f);
    }
  }
  for (size_t i = 0; !given && i < c; i++) logq[i] = put_logq(logq[i], sk, i, f);
}

/* The tiles of the block of c points: the components each keeps; returns 1 when they
 * prune at least half the block's pairs (else the unpruned path is as fast or faster). */
static int prune_plan(const gfv_mix_view *m, size_t c, const double *zb, const unsigned char *sk,
                      double lref, gfv_mix_fused *f) {
  const size_t K = m->k, d = m->d, ts = f->ts;
  size_t kept = 0, off = 0;
  f->pairs += (double)c * (double)K;
  for (size_t t = 0, a = 0; a < c; t++, a += ts) {
    /* When at most half the pairs are kept, the lists hold at most ntile K / 2 + K indices
     * (every tile but the last has ts points); so a list that might not fit in
     * kcap = (ntile / 2 + 2) K means more than half are kept already. */
    if (off + K > f->kcap) return 0;
    size_t n = c - a < ts ? c - a : ts;
    const double *pq = f->pq;
    if (pq) f->pq = pq + a;
    size_t nk = prune_tile(m, n, zb + a * d, sk ? sk + a : NULL, f->gq ? f->gq + a : NULL, lref,
                           (unsigned *)f->keep + off, f);
    f->pq = pq;
    f->nkt[t] = (double)nk, f->kof[t] = (double)off;
    off += nk, kept += nk * n;
  }
  if (2 * kept > c * K) return 0;
  f->pruned += (double)(c * K - kept);
  return 1;
}

/* The block i0 .. i0+c-1 tile by tile, with the components prune_plan kept. */
static void pruned_block(const gfv_mix_view *m, size_t i0, size_t c, const double *zb,
                         const unsigned char *sk, double *logq, double *gbar, double *H, gfv_mix_fused *f) {
  const size_t d = m->d, ts = f->ts;
  for (size_t t = 0, a = 0; a < c; t++, a += ts) {
    size_t n = c - a < ts ? c - a : ts;
    tile_terms(m, (unsigned *)f->keep + (size_t)f->kof[t], (size_t)f->nkt[t], i0 + a, n, f->y + a * d,
               zb + a * d, sk ? sk + a : NULL, f->gq ? NULL : logq + i0 + a, f->gq ? f->gq + a : NULL,
               gbar, H, f);
  }
}

void gfv_mix_fused_set_prune(gfv_mix_fused *f, int on) {
  if (f->prune != (on != 0)) f->wait = f->backoff = 0;
  f->prune = on != 0;
}

void gfv_mix_fused_fix_mixture(gfv_mix_fused *f, int on) { f->fixed = on != 0, f->have = 0; }

void gfv_mix_fused_counts(gfv_mix_fused *f, double *pairs, double *pruned, int reset) {
  *pairs = f->pairs, *pruned = f->pruned;
  if (reset) f->pairs = f->pruned = 0.0;
}

/* given: the whole mixture's log q at the n points (gfv_mix_fused_terms_given), whose
 * terms then add to gbar and H; logq is then only the chunk's scratch. */
static int fused_diag(const gfv_mix_view *m, size_t n, const double *z, const unsigned char *skip,
                      double *logq, const double *given, double *gbar, double *H, gfv_mix_fused *f) {
  gfv_mix_work *w = f->dw;
  const size_t d = m->d, group = f->group;
  if (given) {
    for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
      size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
      GFV_CALL(gfv_mixd_log_terms(m, c, z + i0 * d, w->A_eval, logq, w));
      GFV_CALL(gfv_mixd_grad_terms(m, c, z + i0 * d, w->A_eval, given + i0, group, gbar + i0 * d,
                                   H ? H + i0 / group * d : NULL, w));
    }
    return GFV_OK;
  }
  for (size_t i0 = 0; f->lq_add && i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    GFV_CALL(gfv_mixd_log_terms(m, c, z + i0 * d, w->A_eval, w->lse_eval, w));
    for (size_t i = 0; i < c; i++)
      logq[i0 + i] = skip && skip[i0 + i] ? INFINITY : gfv_logaddexp(logq[i0 + i], w->lse_eval[i]);
  }
  if (f->lq_add) return GFV_OK;
  if (gbar) memset(gbar, 0, n * d * sizeof(double));
  if (H) memset(H, 0, n / group * d * sizeof(double));
  for (size_t i0 = 0; i0 < n; i0 += w->chunk) {
    size_t c = n - i0 < w->chunk ? n - i0 : w->chunk;
    GFV_CALL(gfv_mixd_log_terms(m, c, z + i0 * d, w->A_eval, logq + i0, w));
    for (size_t i = 0; skip && i < c; i++)
      if (skip[i0 + i]) logq[i0 + i] = INFINITY; /* no responsibility anywhere (phase B) */
    if (!gbar) continue;
    GFV_CALL(gfv_mixd_grad_terms(m, c, z + i0 * d, w->A_eval, logq + i0, group, gbar + i0 * d,
                                 H ? H + i0 / group * d : NULL, w));
  }
  return GFV_OK;
}

/* gfv_mix_fused_terms, or with given (the whole mixture's log q at the n points) the
 * terms of m's components added to gbar and H: then r_ij = exp(a_ij - given_i), no log q is
 * computed or written, and the pruning's lower bound is the given log q itself. */
static int fused_run(const gfv_mix_view *m, size_t n, const double *z, const unsigned char *skip,
                     double *logq, const double *given, double *gbar, double *H, gfv_mix_fused *f) {
  const size_t d = m->d, K = m->k, dd = d * d, group = f->group;
  GFV_CHECK(m->rank == 0, GFV_ERR_INTERNAL,
            "fused kernel: no low-rank views (the family runs the samples layout)");
  GFV_CHECK(d == f->d && K <= f->K && K >= 1 && !m->diag == !f->diag && n % group == 0 && (gbar || !H),
            GFV_ERR_INTERNAL, "fused kernel: workspace (d=%zu K<=%zu group %zu) used with d=%zu K=%zu n=%zu",
            f->d, f->K, group, d, K, n);
  if (f->diag) return fused_diag(m, n, z, skip, logq, given, gbar, H, f);
  if (gbar && !given) memset(gbar, 0, n * d * sizeof(double));
  if (H && !given) memset(H, 0, n / group * dd * sizeof(double));
  for (size_t t = 0; t < d; t++) {
    double s = 0.0;
    for (size_t j = 0; j < K; j++) s += m->mu[j * d + t];
    f->center[t] = s / (double)K;
  }
  for (size_t j = 0; j < K; j++) {
    for (size_t t = 0; t < d; t++) f->mtmp[t] = m->mu[j * d + t] - f->center[t];
    cblas_dsymv(CblasRowMajor, CblasLower, (int)d, 1.0, m->P + j * dd, (int)d, f->mtmp, 1, 0.0,
                f->b + j * d, 1);
  }
  /* A call that prunes nothing (a compact mixture) still pays for the eigenvalue bounds
   * and the tiles' bounds (a few percent): after such calls the next 1, 3, 7, 15 calls do
   * not try (the answer is the same either way), and a call that prunes ends the pause. */
  const int two = f->two_pass && f->kb < K, prune = f->prune && K > 1 && !f->wait;
  if (f->wait) f->wait--;
  if (prune && !(f->fixed && f->have)) f->lref = prune_prepare(m, f), f->have = 1;
  const double lref = f->lref, pruned0 = f->pruned;
  pending p = {0, 0};
  size_t bwait = 0, bback = 0; /* the same pause over the blocks of this call */
  for (size_t i0 = 0; i0 < n; i0 += f->c) {
    size_t c = n - i0 < f->c ? n - i0 : f->c;
    const double *zb = z + i0 * d;
    const unsigned char *sk = skip ? skip + i0 : NULL;
    for (size_t i = 0; i < c; i++)
      for (size_t t = 0; t < d; t++) f->y[i * d + t] = zb[i * d + t] - f->center[t];
    f->gq = given ? given + i0 : NULL;
    f->pq = f->lq_add ? logq + i0 : NULL;
    if (prune && !bwait) {
      if (prune_plan(m, c, zb, sk, lref, f)) {
        bback = 0;
        if (!two && H) flush(m, 0, K, &p, H, f); /* the tiles use cw themselves */
        pruned_block(m, i0, c, zb, sk, logq, gbar, H, f);
        continue;
      }
      bwait = bback = 2 * bback + 1;
    } else {
      f->pairs += (double)c * (double)K;
      bwait -= bwait > 0;
    }
    for (size_t i = 0; given && i < c; i++) f->lse[i] = given[i0 + i];
    if (!two) {
      log_terms(m, f->b, 0, K, c, f->y, zb, f);
      if (given)
        responsibilities(c, K, sk, f);
      else
        single_pass_lse(c, K, sk, f);
      if (gbar) grad_terms(m, 0, K, i0, c, gbar, H, &p, f);
    } else {
      if (!given) blocked_lse(m, c, zb, f);
      for (size_t j0 = 0; gbar && j0 < K; j0 += f->kb) {
        size_t kb = K - j0 < f->kb ? K - j0 : f->kb;
        log_terms(m, f->b, j0, kb, c, f->y, zb, f);
        responsibilities(c, kb, sk, f);
        grad_terms(m, j0, kb, i0, c, gbar, H, &p, f);
        if (H) flush(m, j0, kb, &p, H, f);
      }
    }
    for (size_t i = 0; !given && i < c; i++) logq[i0 + i] = put_logq(logq[i0 + i], sk, i, f);
  }
  f->gq = f->pq = NULL;
  if (prune && f->pruned == pruned0) {
    f->backoff = f->backoff < PRUNE_BACKOFF ? 2 * f->backoff + 1 : PRUNE_BACKOFF;
    f->wait = f->backoff;
  } else if (prune) {
    f->backoff = 0;
  }
  if (!H) return GFV_OK;
  if (!two) flush(m, 0, K, &p, H, f);
  /* DSYRK filled the lower triangles; the -sum r P parts went to both. */
  for (size_t g = 0; g < n / group; g++) gfv_fill_upper_from_lower(d, H + g * dd);
  return GFV_OK;
}

int gfv_mix_fused_terms(const gfv_mix_view *m, size_t n, const double *z, const unsigned char *skip,
                        double *logq, double *gbar, double *H, gfv_mix_fused *f) {
  return fused_run(m, n, z, skip, logq, NULL, gbar, H, f);
}

int gfv_mix_fused_logq_add(const gfv_mix_view *m, size_t n, const double *z, const unsigned char *skip,
                           double *logq, size_t K_all, gfv_mix_fused *f) {
  f->lq_add = 1, f->kall = K_all;
  int st = fused_run(m, n, z, skip, logq, NULL, NULL, NULL, f);
  f->lq_add = 0;
  return st;
}

int gfv_mix_fused_terms_given(const gfv_mix_view *m, size_t n, const double *z, const unsigned char *skip,
                              const double *logq, size_t K_all, double lref_all, double *gbar,
                              double *H, gfv_mix_fused *f) {
  GFV_CHECK(gbar, GFV_ERR_INTERNAL, "fused kernel: the given-log-q form needs gbar");
  f->kall = K_all, f->lref_all = lref_all;
  /* The diagonal family's scratch for a chunk's own log-sum-exp: lse_eval. */
  return fused_run(m, n, z, skip, f->diag ? f->dw->lse_eval : NULL, logq, gbar, H, f);
}

double gfv_mix_fused_bounds(const gfv_mix_view *m, gfv_mix_fused *f, double *lmin, double *lmax) {
  double lref = INFINITY;
  for (size_t j = 0; j < m->k; j++) {
    lmin[j] = 0.0, lmax[j] = INFINITY; /* the diagonal family does not prune */
    if (!f->diag) gfv_prune_eig(m->d, m->P + j * m->d * m->d, f->eigw, lmin + j, lmax + j);
    lref = f->diag || lmin[j] > lref ? lref : lmin[j];
  }
  return lref;
}

void gfv_mix_fused_set_bounds(gfv_mix_fused *f, const double *lmin, const double *lmax) {
  f->gmin = lmin, f->gmax = lmax;
}
