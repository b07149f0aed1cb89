/* test_prune.c - the fused kernel's exact pruning (src/mixture/prune.c, docs/pruning.md):
 * its bound against the exact log terms, and the kernel with pruning against the kernel
 * without, on spread-out mixtures (where most pairs are pruned) and on a compact one. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/mixture.h"
#include "harness.h"
#include "mixture_fixture.h"
#include "linalg/linalg.h"
#include "mixture/prune.h"


/* K components with means `spread` times a standard normal, and random precisions whose
 * scales differ by up to `scales` (P = A A^T + (0.2 + scales u) I, u uniform). */
static mixture make_mixture(size_t d, size_t k, double spread, double scales, gsl_rng *r) {
  mixture m = mixture_alloc(d, k);
  double *A = calloc(d * d, sizeof(double));
  for (size_t j = 0; j < k; j++) {
    for (size_t t = 0; t < d; t++) m.mu[j * d + t] = spread * gsl_ran_gaussian(r, 1.0);
    for (size_t t = 0; t < d * d; t++) A[t] = gsl_ran_gaussian(r, 0.4);
    double s0 = 0.2 + scales * gsl_rng_uniform(r), *P = m.P + j * d * d;
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) {
        double s = a == b ? s0 : 0.0;
        for (size_t t = 0; t < d; t++) s += A[a * d + t] * A[b * d + t];
        P[a * d + b] = s;
      }
    memcpy(m.L + j * d * d, P, d * d * sizeof(double));
    gfv_chol(d, m.L + j * d * d);
    m.logw[j] = -log((double)k) + 0.3 * gsl_ran_gaussian(r, 1.0);
  }
  gfv_mix_log_const(d, k, m.logw, m.L, m.logc);
  free(A);
  return m;
}

/* Exact a = logc - (z - mu)^T P (z - mu) / 2. */
static double log_term(const mixture *m, size_t j, const double *z) {
  const size_t d = m->d;
  const double *P = m->P + j * d * d, *mu = m->mu + j * d;
  double q = 0;
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) q += (z[a] - mu[a]) * P[a * d + b] * (z[b] - mu[b]);
  return m->logc[j] - 0.5 * q;
}

/* The eigenvalue bounds hold (x^T P x >= lmin |x|^2, <= lmax |x|^2 for random x, and the
 * bounds are those of a diagonal matrix to 1e-12), and the tile bound is never below the
 * exact log term of any point of the tile, near and far, in d = 1 .. 16. */
static void test_bound_never_below_exact(void) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  double work[GFV_PRUNE_EIG_WORK(16)], D[9] = {3, 0, 0, 0, 0.5, 0, 0, 0, 7}, lmin, lmax;
  CHECK(gfv_prune_eig(3, D, work, &lmin, &lmax) == 0, "eig");
  CHECK_REL(lmin, 0.5, 1e-12, 0.0, "lmin of diag(3, 0.5, 7)");
  CHECK_REL(lmax, 7.0, 1e-12, 0.0, "lmax of diag(3, 0.5, 7)");
  CHECK(lmin <= 0.5 && lmax >= 7.0, "the bounds are on the safe side");
  size_t checked = 0, tight = 0;
  for (size_t d = 1; d <= 16; d += 3) {
    mixture m = make_mixture(d, 20, 3.0, 5.0, r);
    double z[16 * 16], centre[16], x[16];
    for (size_t j = 0; j < m.k; j++) {
      const double *P = m.P + j * d * d;
      gfv_prune_eig(d, P, work, &lmin, &lmax);
      for (int rep = 0; rep < 20; rep++) {
        double xx = 0, xpx = 0;
        for (size_t t = 0; t < d; t++) x[t] = gsl_ran_gaussian(r, 1.0), xx += x[t] * x[t];
        for (size_t a = 0; a < d; a++)
          for (size_t b = 0; b < d; b++) xpx += x[a] * P[a * d + b] * x[b];
        CHECK(xpx >= lmin * xx && xpx <= lmax * xx, "d=%zu j=%zu: %g not in [%g, %g] |x|^2", d, j, xpx, lmin, lmax);
      }
      for (int tile = 0; tile < 10; tile++) { /* 16 points around a random spot */
        double off = 10.0 * gsl_rng_uniform(r), sc = 2.0 * gsl_rng_uniform(r);
        for (size_t i = 0; i < 16; i++)
          for (size_t t = 0; t < d; t++)
            z[i * d + t] = m.mu[j * d + t] + off * (t == 0) + sc * gsl_ran_gaussian(r, 1.0);
        double R = gfv_prune_ball(d, 16, z, NULL, centre), t0;
        double ub = gfv_prune_upper(d, m.mu + j * d, m.logc[j], lmin, centre, R, &t0);
        for (size_t i = 0; i < 16; i++) {
          double a = log_term(&m, j, z + i * d);
          CHECK(ub >= a, "d=%zu j=%zu: bound %.17g below the exact term %.17g", d, j, ub, a);
          checked++;
          tight += ub - a < 10.0 + 2 * off * off * lmax; /* not vacuous */
        }
      }
    }
    free_mixture(&m);
  }
  CHECK(tight > checked / 2, "the bound is loose at %zu of %zu points", checked - tight, checked);
  gsl_rng_free(r);
}

/* |a - b| over n entries, relative to the largest |b| (at least floor). */
static double max_rel(size_t n, const double *a, const double *b, double floor) {
  double scale = floor, diff = 0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
  for (size_t i = 0; i < n; i++) diff = fmax(diff, a[i] == b[i] ? 0 : fabs(a[i] - b[i]));
  return diff / scale;
}

/* S draws of each component of m into z (n = k S points), some marked in skip (one whole
 * group too: a tile with nothing to do). */
static void draw_points(const mixture *mx, size_t S, gsl_rng *r, double *z, unsigned char *skip) {
  const mixture m = *mx;
  const size_t d = m.d, n = m.k * S, dd = d * d;
  for (size_t i = 0; i < n; i++) { /* z = mu_j + L_j^{-T} e, e ~ N(0, I): a draw of component j */
    size_t j = i / S;
    const double *L = m.L + j * dd;
    double e[64];
    for (size_t t = 0; t < d; t++) e[t] = gsl_ran_gaussian(r, 1.0);
    for (size_t t = d; t-- > 0;) { /* back substitution with L^T */
      double s = e[t];
      for (size_t a = t + 1; a < d; a++) s -= L[a * d + t] * z[i * d + a];
      z[i * d + t] = s / L[t * d + t];
    }
    for (size_t t = 0; t < d; t++) z[i * d + t] += m.mu[j * d + t];
    skip[i] = i % 11 == 3 || j == 2; /* and one whole group: a tile with nothing to do */
  }
}

/* Run 1's log q (+inf where skipped), gradients (n x d) and nh Hessian numbers equal run
 * 0's to tol. */
static void check_same(const char *what, size_t n, size_t d, size_t nh, const unsigned char *skip,
                       double *const lq[2], double *const g[2], double *const H[2], double tol) {
  for (size_t i = 0; i < n; i++)
    CHECK(skip[i] ? lq[1][i] == INFINITY : fabs(lq[1][i] - lq[0][i]) <= tol * fmax(1, fabs(lq[0][i])),
          "%s: log q at %zu: %.17g vs %.17g", what, i, lq[1][i], lq[0][i]);
  CHECK(max_rel(n * d, g[1], g[0], 1.0) <= tol, "%s: gradients differ by %.3g", what, max_rel(n * d, g[1], g[0], 1.0));
  CHECK(max_rel(nh, H[1], H[0], 1.0) <= tol, "%s: Hessian sums differ by %.3g", what, max_rel(nh, H[1], H[0], 1.0));
}

/* The fused kernel with and without pruning on S samples of each component (the params
 * layout's points, group S), some left out (one whole group too); returns the pruned fraction. */
static double check_pruned(size_t d, size_t k, size_t S, double spread, size_t budget, double tol,
                           const char *what) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 5 + k);
  mixture m = make_mixture(d, k, spread, 2.0, r);
  gfv_mix_view v = {d, k, m.mu, m.P, m.L, m.logc, 0, 0};
  const size_t n = k * S, ng = k, dd = d * d;
  double *z = calloc(n * d, sizeof(double)), *lq[2], *g[2], *H[2];
  unsigned char *skip = calloc(n, 1);
  draw_points(&m, S, r, z, skip);
  double pairs = 0, pruned = 0;
  for (int on = 0; on < 2; on++) {
    lq[on] = calloc(n, sizeof(double)), g[on] = calloc(n * d, sizeof(double));
    H[on] = calloc(ng * dd, sizeof(double));
    gfv_mix_fused *f;
    CHECK(gfv_mix_fused_alloc(d, k, S, 0, budget, &f) == 0, "%s: alloc", what);
    gfv_mix_fused_set_prune(f, on);
    CHECK(gfv_mix_fused_terms(&v, n, z, skip, lq[on], g[on], H[on], f) == 0, "%s: kernel", what);
    gfv_mix_fused_counts(f, &pairs, &pruned, 1);
    CHECK(pairs == (double)n * (double)k, "%s: %g pairs counted, not %zu", what, pairs, n * k);
    if (!on) CHECK(pruned == 0, "%s: pruned with pruning off", what);
    gfv_mix_fused_free(f);
  }
  check_same(what, n, d, ng * dd, skip, lq, g, H, tol);
  for (int on = 0; on < 2; on++) free(lq[on]), free(g[on]), free(H[on]);
  free(z), free(skip);
  free_mixture(&m);
  gsl_rng_free(r);
  return pruned / pairs;
}

/* Spread-out mixtures: means 30 standard deviations of the draws apart in d = 4 and 8, in
 * one pass (the default budget), in two passes (a small budget, with more kept components
 * than fit a block): nearly every pair is pruned, and the sums equal the unpruned ones to
 * 1e-13 relative in one pass (rounding: the kept pairs are summed in another order).  In
 * two passes the unpruned log q comes from the quadratic-feature DGEMM, whose rounding is
 * about eps |z - centre|^2 |P| (1e-12 here, the means being ~60 from their centre), while a
 * tile whose kept components fit one block takes the product form: 1e-11 there. */
static void test_pruned_equals_unpruned_spread(void) {
  double fr = check_pruned(4, 200, 6, 30.0, 0, 1e-13, "d = 4, spread, one pass");
  CHECK(fr > 0.9, "d = 4 spread: only %.3f of the pairs pruned", fr);
  fr = check_pruned(8, 120, 5, 30.0, 0, 1e-13, "d = 8, spread, one pass");
  CHECK(fr > 0.9, "d = 8 spread: only %.3f of the pairs pruned", fr);
  fr = check_pruned(4, 200, 6, 30.0, 20000, 1e-11, "d = 4, spread, two passes");
  CHECK(fr > 0.9, "d = 4 spread, two passes: only %.3f of the pairs pruned", fr);
  fr = check_pruned(4, 200, 6, 8.0, 3000, 1e-11, "d = 4, half spread, small blocks");
  CHECK(fr > 0.5, "d = 4 half spread: only %.3f of the pairs pruned", fr);
}

/* A compact mixture (every component overlapping every point): nothing can be pruned, and
 * the kernel takes the unpruned path, with the same sums. */
static void test_pruned_equals_unpruned_compact(void) {
  double fr = check_pruned(4, 60, 6, 0.3, 0, 1e-13, "d = 4, compact");
  CHECK(fr < 0.01, "compact: %.3f of the pairs pruned", fr);
  fr = check_pruned(6, 60, 4, 0.3, 5000, 1e-11, "d = 6, compact, two passes");
  CHECK(fr < 0.01, "compact, two passes: %.3f of the pairs pruned", fr);
}

/* The streamed params layout's kernel: the mixture in blocks of kb components, log q
 * summed block by block (gfv_mix_fused_logq_add), then each block's terms with that log q
 * (gfv_mix_fused_terms_given), against one call on the whole mixture (pruning on in both):
 * log q, the gradients and the Hessian sums agree to tol.  diag: the diagonal family on
 * the precisions' diagonals. */
static void check_streamed(size_t d, size_t k, size_t S, double spread, size_t kb, size_t budget,
                           int diag, double tol, const char *what) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 7 + k);
  mixture m = make_mixture(d, k, spread, 2.0, r);
  const size_t n = k * S, ng = k, ps = diag ? d : d * d;
  double *Pd = calloc(k * d, sizeof(double));
  for (size_t j = 0; j < k; j++)
    for (size_t t = 0; t < d; t++) Pd[j * d + t] = m.P[j * d * d + t * d + t];
  const double *P = diag ? Pd : m.P;
  double *z = calloc(n * d, sizeof(double)), *lq[2], *g[2], *H[2];
  unsigned char *skip = calloc(n, 1);
  draw_points(&m, S, r, z, skip);
  for (int i = 0; i < 2; i++)
    lq[i] = calloc(n, sizeof(double)), g[i] = calloc(n * d, sizeof(double)), H[i] = calloc(ng * ps, sizeof(double));
  gfv_mix_fused *f;
  gfv_mix_view v = {d, k, m.mu, P, m.L, m.logc, diag, 0};
  CHECK(gfv_mix_fused_alloc(d, k, S, diag, budget, &f) == 0, "%s: alloc", what);
  CHECK(gfv_mix_fused_terms(&v, n, z, skip, lq[0], g[0], H[0], f) == 0, "%s: one call", what);
  gfv_mix_fused_free(f);
  CHECK(gfv_mix_fused_alloc(d, kb, S, diag, budget, &f) == 0, "%s: block alloc", what);
  double lref = INFINITY, pairs, pruned, *lmin = calloc(k, sizeof(double)), *lmax = calloc(k, sizeof(double));
  for (size_t i = 0; i < n; i++) lq[1][i] = -INFINITY;
  gfv_mix_fused_counts(f, &pairs, &pruned, 1);
  for (size_t j0 = 0; j0 < k; j0 += kb) { /* each block's eigenvalue bounds, as its owner's */
    gfv_mix_view b = {d, k - j0 < kb ? k - j0 : kb, m.mu + j0 * d, P + j0 * ps, NULL, m.logc + j0, diag, 0};
    double l = gfv_mix_fused_bounds(&b, f, lmin + j0, lmax + j0);
    lref = l < lref ? l : lref;
  }
  for (int pass = 1; pass <= 2; pass++)
    for (size_t j0 = 0; j0 < k; j0 += kb) {
      gfv_mix_view b = {d, k - j0 < kb ? k - j0 : kb, m.mu + j0 * d, P + j0 * ps, NULL, m.logc + j0, diag, 0};
      gfv_mix_fused_set_bounds(f, lmin + j0, lmax + j0);
      CHECK((pass == 1 ? gfv_mix_fused_logq_add(&b, n, z, skip, lq[1], k, f)
                       : gfv_mix_fused_terms_given(&b, n, z, skip, lq[1], k, lref, g[1], H[1], f)) == 0,
            "%s: pass %d", what, pass);
    }
  free(lmin), free(lmax);
  gfv_mix_fused_counts(f, &pairs, &pruned, 1);
  if (!diag && spread > 10) CHECK(pruned > 0.5 * pairs, "%s: only %g of %g pairs pruned", what, pruned, pairs);
  gfv_mix_fused_free(f);
  check_same(what, n, d, ng * ps, skip, lq, g, H, tol);
  for (int i = 0; i < 2; i++) free(lq[i]), free(g[i]), free(H[i]);
  free(z), free(skip), free(Pd);
  free_mixture(&m);
  gsl_rng_free(r);
}

/* Blocks of 7 and 50 of 120 to 200 components (a last short block), spread out (most pairs
 * pruned, block by block against the whole log q), compact (none), in one and two passes of
 * the block kernel, and the diagonal family: the sums are the one call's to 1e-12 (the
 * blocks add the same terms in another order; two-pass log q from the quadratic features,
 * as test_pruned_equals_unpruned_spread explains, 1e-11). */
static void test_streamed_equals_one_call(void) {
  check_streamed(4, 200, 6, 30.0, 7, 0, 0, 1e-12, "d = 4, spread, blocks of 7");
  check_streamed(8, 120, 5, 30.0, 50, 0, 0, 1e-12, "d = 8, spread, blocks of 50");
  check_streamed(4, 200, 6, 0.3, 7, 0, 0, 1e-12, "d = 4, compact, blocks of 7");
  check_streamed(6, 120, 4, 0.3, 50, 5000, 0, 1e-11, "d = 6, compact, two passes, blocks of 50");
  check_streamed(4, 200, 6, 8.0, 50, 3000, 0, 1e-11, "d = 4, half spread, two passes, blocks of 50");
  check_streamed(5, 120, 4, 1.0, 13, 0, 1, 1e-12, "d = 5, diag, blocks of 13");
}

int main(void) {
  RUN(test_bound_never_below_exact);
  RUN(test_pruned_equals_unpruned_spread);
  RUN(test_pruned_equals_unpruned_compact);
  RUN(test_streamed_equals_one_call);
  return harness_report();
}
