/* test_mixture.c - the mixture kernel against direct formulas and finite differences,
 * and the two-phase split (components on different "ranks") against the whole. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "gflowvi/mixture.h"
#include "harness.h"
#include "mixture_fixture.h"
#include "linalg/linalg.h"
#include "mixture/kernel_impl.h"


/* A deterministic random mixture with well-conditioned, non-diagonal precisions. */
static mixture make_mixture(size_t d, size_t k, unsigned long seed) {
  mixture m = mixture_alloc(d, k);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  double wsum = 0;
  for (size_t j = 0; j < k; j++) {
    for (size_t t = 0; t < d; t++) m.mu[j * d + t] = 2.0 * gsl_ran_gaussian(r, 1.0);
    double A[64 * 64];
    for (size_t t = 0; t < d * d; t++) A[t] = gsl_ran_gaussian(r, 0.5);
    double *P = m.P + j * d * d;
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) {
        double s = a == b ? 0.5 + 0.3 * (double)j : 0.0;
        for (size_t t = 0; t < d; t++) s += A[a * d + t] * A[b * d + t];
        P[a * d + b] = s;
      }
    memcpy(m.L + j * d * d, P, d * d * sizeof(double));
    gfv_chol(d, m.L + j * d * d);
    m.logw[j] = log(1.0 + (double)j);
    wsum += 1.0 + (double)j;
  }
  for (size_t j = 0; j < k; j++) m.logw[j] -= log(wsum);
  gfv_mix_log_const(d, k, m.logw, m.L, m.logc);
  gsl_rng_free(r);
  return m;
}

static gfv_mix_view view_of(const mixture *m, size_t j0, size_t k) {
  gfv_mix_view v = {m->d, k, m->mu + j0 * m->d, m->P + j0 * m->d * m->d, m->L + j0 * m->d * m->d,
                    m->logc + j0, 0, 0};
  return v;
}

/* log q(z) by the textbook formula, with log det from an independent Cholesky. */
static double direct_logq(const mixture *m, const double *z) {
  size_t d = m->d;
  double terms[64];
  for (size_t j = 0; j < m->k; j++) {
    const double *P = m->P + j * d * d, *mu = m->mu + j * d;
    double maha = 0, C[64 * 64];
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) maha += (z[a] - mu[a]) * P[a * d + b] * (z[b] - mu[b]);
    memcpy(C, P, d * d * sizeof(double));
    gfv_chol(d, C);
    double logdet = 2 * gfv_chol_logdet_half(d, C);
    terms[j] = m->logw[j] + 0.5 * logdet - 0.5 * (double)d * log(2 * M_PI) - 0.5 * maha;
  }
  return gfv_logsumexp(m->k, terms, 1);
}

static double eval_logq(const mixture *m, gfv_mix_work *w, const double *z) {
  gfv_mix_view v = view_of(m, 0, m->k);
  double lq;
  gfv_mix_eval(&v, 1, z, &lq, NULL, NULL, w);
  return lq;
}

static void test_logq_matches_direct_formula(void) {
  mixture m = make_mixture(4, 6, 11);
  gfv_mix_work *w;
  CHECK(gfv_mix_work_alloc(4, 6, 1, &w) == 0, "alloc");
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  for (int p = 0; p < 20; p++) {
    double z[4];
    for (int t = 0; t < 4; t++) z[t] = gsl_ran_gaussian(r, 3.0);
    CHECK_REL(eval_logq(&m, w, z), direct_logq(&m, z), 1e-12, 1.0, "log q");
  }
  gsl_rng_free(r);
  gfv_mix_work_free(w);
  free_mixture(&m);
}

/* Central differences: error O(h^2 f''') ~ 1e-10 for h = 1e-5 on these smooth,
 * O(1)-scaled functions, plus rounding eps/h ~ 1e-11; 1e-6 relative leaves margin. */
static void test_gradient_and_hessian_by_finite_differences(void) {
  const size_t d = 3, k = 4;
  mixture m = make_mixture(d, k, 5);
  gfv_mix_work *w;
  gfv_mix_work_alloc(d, k, 1, &w);
  gfv_mix_view v = view_of(&m, 0, k);
  const double h = 1e-5;
  double pts[3][3] = {{0.1, -0.3, 0.7}, {1.5, 0.2, -1.0}, {-0.5, 2.0, 0.4}};
  for (int p = 0; p < 3; p++) {
    double lq, g[3], H[9];
    gfv_mix_eval(&v, 1, pts[p], &lq, g, H, w);
    for (size_t a = 0; a < d; a++) {
      double zp[3], zm[3], lp, lm, gp[3], gm[3];
      memcpy(zp, pts[p], sizeof zp), memcpy(zm, pts[p], sizeof zm);
      zp[a] += h, zm[a] -= h;
      gfv_mix_eval(&v, 1, zp, &lp, gp, NULL, w);
      gfv_mix_eval(&v, 1, zm, &lm, gm, NULL, w);
      CHECK_REL(g[a], (lp - lm) / (2 * h), 1e-6, 1.0, "gradient vs FD");
      for (size_t b = 0; b < d; b++)
        CHECK_REL(H[b * d + a], (gp[b] - gm[b]) / (2 * h), 1e-6, 1.0, "Hessian vs FD");
    }
  }
  gfv_mix_work_free(w);
  free_mixture(&m);
}

/* Components split over two "ranks": combining phase A by log-sum-exp and phase B by
 * summation must reproduce the whole mixture, including grouped Hessian sums. */
static void test_split_phases_match_whole(void) {
  const size_t d = 5, k = 7, n = 12, group = 3, k1 = 3;
  mixture m = make_mixture(d, k, 9);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  double z[12 * 5];
  for (size_t i = 0; i < n * d; i++) z[i] = gsl_ran_gaussian(r, 2.0);
  gfv_mix_work *w1, *wa, *wb;
  gfv_mix_work_alloc(d, k, 1, &w1);
  gfv_mix_work_alloc(d, k, group, &wa);
  gfv_mix_work_alloc(d, k, group, &wb);
  /* Reference: per-point values from the serial evaluation. */
  double lq[12], g[12 * 5], H[12 * 25];
  gfv_mix_view all = view_of(&m, 0, k);
  gfv_mix_eval(&all, n, z, lq, g, H, w1);
  /* Split. */
  gfv_mix_view va = view_of(&m, 0, k1), vb = view_of(&m, k1, k - k1);
  double Aa[12 * 7], Ab[12 * 7], la[12], lb[12], lqs[12];
  gfv_mix_log_terms(&va, n, z, Aa, la, wa);
  gfv_mix_log_terms(&vb, n, z, Ab, lb, wb);
  for (size_t i = 0; i < n; i++) {
    lqs[i] = gfv_logaddexp(la[i], lb[i]);
    CHECK_REL(lqs[i], lq[i], 1e-13, 1.0, "split log q");
  }
  double gs[12 * 5] = {0}, Hs[4 * 25] = {0};
  gfv_mix_grad_terms(&va, n, z, Aa, lqs, group, gs, Hs, wa);
  gfv_mix_grad_terms(&vb, n, z, Ab, lqs, group, gs, Hs, wb);
  for (size_t i = 0; i < n * d; i++) CHECK_REL(gs[i], g[i], 1e-12, 1.0, "split gradient");
  /* Hs_group = sum over the group of (H_i + g_i g_i^T). */
  for (size_t gi = 0; gi < n / group; gi++)
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) {
        double ref = 0;
        for (size_t i = gi * group; i < (gi + 1) * group; i++)
          ref += H[i * d * d + a * d + b] + g[i * d + a] * g[i * d + b];
        CHECK_REL(Hs[gi * d * d + a * d + b], ref, 1e-11, 1.0, "split grouped Hessian");
      }
  gsl_rng_free(r);
  gfv_mix_work_free(w1), gfv_mix_work_free(wa), gfv_mix_work_free(wb);
  free_mixture(&m);
}

/* Many points (several blocks of the workspace) give the same as one at a time. */
static void test_blocking_is_invisible(void) {
  const size_t d = 8, k = 40, n = 3000;
  mixture m = make_mixture(d, k, 3);
  gfv_mix_work *w;
  gfv_mix_work_alloc(d, k, 1, &w);
  gfv_mix_view v = view_of(&m, 0, k);
  double *z = malloc(n * d * sizeof(double)), *lq = malloc(n * sizeof(double));
  double *g = malloc(n * d * sizeof(double));
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  for (size_t i = 0; i < n * d; i++) z[i] = gsl_ran_gaussian(r, 2.0);
  gfv_mix_eval(&v, n, z, lq, g, NULL, w);
  for (size_t i = 0; i < n; i += 97) {
    double l1, g1[8];
    gfv_mix_eval(&v, 1, z + i * d, &l1, g1, NULL, w);
    CHECK_REL(lq[i], l1, 1e-13, 1.0, "blocked log q");
    for (size_t t = 0; t < d; t++) CHECK_REL(g[i * d + t], g1[t], 1e-12, 1.0, "blocked gradient");
  }
  gsl_rng_free(r);
  free(z), free(lq), free(g);
  gfv_mix_work_free(w);
  free_mixture(&m);
}

/* The diagonal family's kernel against the full kernel on the same diagonal mixture:
 * log q, gradient and Hessian diagonal per point, and the split into two "ranks" with
 * grouped Hessian sums.  Means far from the origin (offset 50) check the centring. */
static void test_diagonal_kernel_matches_full(void) {
  const size_t d = 6, k = 5, n = 40, group = 4;
  double mu[5 * 6], pd[5 * 6], P[5 * 36] = {0}, L[5 * 36] = {0}, logw[5], logc[5], logcd[5];
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  for (size_t j = 0; j < k; j++) {
    logw[j] = log(1.0 / (double)k);
    for (size_t t = 0; t < d; t++) {
      mu[j * d + t] = 50.0 + gsl_ran_gaussian(r, 1.0);
      pd[j * d + t] = 0.5 + gsl_rng_uniform(r) * 3.0;
      P[j * 36 + t * 7] = pd[j * d + t];
      L[j * 36 + t * 7] = sqrt(pd[j * d + t]);
    }
  }
  gfv_mix_log_const(d, k, logw, L, logc);
  gfv_mix_log_const_diag(d, k, logw, pd, logcd);
  for (size_t j = 0; j < k; j++) CHECK_REL(logcd[j], logc[j], 1e-13, 1.0, "log constant");
  double z[40 * 6];
  for (size_t i = 0; i < n * d; i++) z[i] = 50.0 + gsl_ran_gaussian(r, 1.2);
  gfv_mix_view full = {d, k, mu, P, L, logc, 0, 0}, diag = {d, k, mu, pd, NULL, logcd, 1, 0};
  gfv_mix_work *wf, *wd, *wa, *wb;
  gfv_mix_work_alloc(d, k, 1, &wf);
  gfv_mix_work_alloc_diag(d, k, 1, &wd);
  double lq[40], lqd[40], g[40 * 6], gd[40 * 6], H[40 * 36], Hd[40 * 6];
  gfv_mix_eval(&full, n, z, lq, g, H, wf);
  gfv_mix_eval(&diag, n, z, lqd, gd, Hd, wd);
  for (size_t i = 0; i < n; i++) {
    CHECK_REL(lqd[i], lq[i], 1e-11, 1.0, "diag log q");
    for (size_t t = 0; t < d; t++) {
      CHECK_REL(gd[i * d + t], g[i * d + t], 1e-9, 1.0, "diag gradient");
      CHECK_REL(Hd[i * d + t], H[i * 36 + t * 7], 1e-8, 1.0, "diag Hessian");
    }
  }
  /* Two "ranks": components 0-1 and 2-4, grouped sums over groups of 4 points. */
  gfv_mix_work_alloc_diag(d, k, group, &wa);
  gfv_mix_work_alloc_diag(d, k, group, &wb);
  gfv_mix_view va = {d, 2, mu, pd, NULL, logcd, 1, 0}, vb = {d, 3, mu + 2 * d, pd + 2 * d, NULL, logcd + 2, 1, 0};
  double Aa[40 * 5], Ab[40 * 5], la[40], lb[40], lqs[40], gs[40 * 6] = {0}, Hs[10 * 6] = {0};
  gfv_mix_log_terms(&va, n, z, Aa, la, wa);
  gfv_mix_log_terms(&vb, n, z, Ab, lb, wb);
  for (size_t i = 0; i < n; i++) lqs[i] = gfv_logaddexp(la[i], lb[i]);
  gfv_mix_grad_terms(&va, n, z, Aa, lqs, group, gs, Hs, wa);
  gfv_mix_grad_terms(&vb, n, z, Ab, lqs, group, gs, Hs, wb);
  for (size_t i = 0; i < n * d; i++) CHECK_REL(gs[i], g[i], 1e-9, 1.0, "split diag gradient");
  for (size_t gi = 0; gi < n / group; gi++)
    for (size_t t = 0; t < d; t++) {
      double ref = 0;
      for (size_t i = gi * group; i < (gi + 1) * group; i++) ref += H[i * 36 + t * 7] + g[i * d + t] * g[i * d + t];
      CHECK_REL(Hs[gi * d + t], ref, 1e-8, 1.0, "split diag Hessian sums");
    }
  gsl_rng_free(r);
  gfv_mix_work_free(wf), gfv_mix_work_free(wd), gfv_mix_work_free(wa), gfv_mix_work_free(wb);
}

/* Largest |a_i - b_i| over n entries, relative to the largest |b_i| (and at least floor). */
static double max_rel(size_t n, const double *a, const double *b, double floor) {
  double scale = floor, diff = 0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
  for (size_t i = 0; i < n; i++) diff = fmax(diff, isfinite(a[i]) && isfinite(b[i]) ? fabs(a[i] - b[i]) : INFINITY);
  return diff / scale;
}

/* The parameter layout's fused kernel against the two phases on the whole mixture (one
 * "rank"), which test_split_phases_match_whole holds to the serial evaluation: log q, the
 * gradients and the grouped Hessian sums, with points left out (skip), in one pass (the
 * default budget), in two passes over blocks of 4 and of 1 components (tiny budgets), and
 * with groups split between blocks of points.  The means sit 30 away from the origin, so
 * the centring matters.  Different formulas for the same sums: 1e-10 relative. */
static void check_fused(size_t d, size_t k, size_t n, size_t group, int diag, size_t budget,
                        const char *what) {
  mixture m = make_mixture(d, k, 17);
  double *pd = calloc(k * d, sizeof(double));
  for (size_t j = 0; j < k; j++)
    for (size_t t = 0; t < d; t++) {
      m.mu[j * d + t] += 30.0;
      pd[j * d + t] = m.P[j * d * d + t * (d + 1)];
    }
  if (diag) gfv_mix_log_const_diag(d, k, m.logw, pd, m.logc);
  gfv_mix_view v = view_of(&m, 0, k);
  if (diag) v.P = pd, v.diag = 1;
  const size_t ps = diag ? d : d * d, ng = n / group;
  double *z = calloc(n * d, sizeof(double)), *A = calloc(n * k, sizeof(double));
  double *lq = calloc(n, sizeof(double)), *lqf = calloc(n, sizeof(double));
  double *g = calloc(n * d, sizeof(double)), *gf = calloc(n * d, sizeof(double));
  double *H = calloc(ng * ps, sizeof(double)), *Hf = calloc(ng * ps, sizeof(double));
  unsigned char *skip = calloc(n, 1);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  for (size_t i = 0; i < n * d; i++) z[i] = 30.0 + gsl_ran_gaussian(r, 2.0);
  for (size_t i = 0; i < n; i += 7) skip[i] = 1;
  gfv_mix_work *w;
  gfv_mix_fused *f;
  if (diag) gfv_mix_work_alloc_diag(d, k, group, &w);
  else gfv_mix_work_alloc(d, k, group, &w);
  CHECK(gfv_mix_fused_alloc(d, k, group, diag, budget, &f) == 0, "%s: alloc", what);
  gfv_mix_log_terms(&v, n, z, A, lq, w);
  for (size_t i = 0; i < n; i++)
    if (skip[i]) lq[i] = INFINITY;
  gfv_mix_grad_terms(&v, n, z, A, lq, group, g, H, w);
  for (int h = 0; h < 2; h++) { /* with the Hessian sums, then without */
    CHECK(gfv_mix_fused_terms(&v, n, z, skip, lqf, gf, h ? NULL : Hf, f) == 0, "%s: fused", what);
    for (size_t i = 0; i < n; i++)
      CHECK(skip[i] ? lqf[i] == INFINITY : fabs(lqf[i] - lq[i]) <= 1e-10 * fmax(1, fabs(lq[i])),
            "%s: log q at %zu: %.15g vs %.15g", what, i, lqf[i], lq[i]);
    CHECK(max_rel(n * d, gf, g, 1.0) <= 1e-10, "%s: gradients differ by %.3g", what, max_rel(n * d, gf, g, 1.0));
    for (size_t i = 0; i < n; i++)
      if (skip[i]) CHECK(gf[i * d] == 0, "%s: a left-out point has a gradient", what);
    if (!h) CHECK(max_rel(ng * ps, Hf, H, 1.0) <= 1e-10, "%s: Hessian sums differ by %.3g", what, max_rel(ng * ps, Hf, H, 1.0));
  }
  gsl_rng_free(r);
  gfv_mix_work_free(w);
  gfv_mix_fused_free(f);
  free(z), free(A), free(lq), free(lqf), free(g), free(gf), free(H), free(Hf), free(skip), free(pd);
  free_mixture(&m);
}

/* Both forms of the passes: AVX2 (kernel_simd.c; where the CPU has it) and plain C. */
static void test_fused_kernel_matches_phases(void) {
  for (int simd = 1; simd >= 0; simd--) {
    gfv_mix_simd_set(simd);
    if (simd && !gfv_mix_simd()) continue;
    check_fused(3, 40, 300, 5, 0, 0, "one pass");
    check_fused(32, 30, 64, 8, 0, 0, "d = 32: whole tiles");
    check_fused(11, 13, 36, 3, 0, 0, "d = 11: partial tiles");
    check_fused(3, 40, 300, 5, 0, 8000, "two passes, blocks of 4 components");
    check_fused(3, 40, 300, 5, 0, 100, "two passes, one component at a time");
    check_fused(3, 40, 300, 100, 0, 40000, "groups split between blocks");
    check_fused(3, 40, 300, 100, 0, 100, "two passes, groups split between blocks");
    check_fused(5, 7, 60, 4, 0, 0, "d = 5, K = 7");
    check_fused(6, 9, 120, 4, 1, 0, "diagonal family");
  }
  gfv_mix_simd_set(1);
}

/* Its workspace follows the budget: O(K d + budget) bytes, whatever the number of points
 * (it never holds n x K numbers), and gfv_mix_fused_bytes says what alloc takes. */
static void test_fused_workspace_is_bounded(void) {
  const size_t budget = (size_t)4 << 20;
  double b1 = gfv_mix_fused_bytes(16, 65536, 1, 0, budget);
  CHECK(b1 < 8.0 * 65536 * 16 * 2 + 3.0 * budget, "K = 65536, d = 16: %.0f bytes", b1);
  double b2 = gfv_mix_fused_bytes(32, 256, 8, 0, budget);
  CHECK(b2 < 8.0 * 256 * 32 + 3.0 * budget, "K = 256, d = 32: %.0f bytes", b2);
  gfv_mix_fused *f;
  CHECK(gfv_mix_fused_alloc(16, 65536, 1, 0, budget, &f) == 0, "alloc");
  size_t c, kb, cw;
  gfv_mix_fused_shape(f, &c, &kb, &cw);
  CHECK(kb < 65536, "K = 65536 must take blocks of components");
  gfv_mix_fused_free(f);
  CHECK(gfv_mix_fused_alloc(32, 256, 8, 0, budget, &f) == 0, "alloc");
  gfv_mix_fused_shape(f, &c, &kb, &cw);
  CHECK(kb == 256 && c >= 16 && c % 8 == 0, "K = 256, d = 32 fits one pass (%zu points)", c);
  gfv_mix_fused_free(f);
}

int main(void) {
  RUN(test_logq_matches_direct_formula);
  RUN(test_gradient_and_hessian_by_finite_differences);
  RUN(test_split_phases_match_whole);
  RUN(test_blocking_is_invisible);
  RUN(test_diagonal_kernel_matches_full);
  RUN(test_fused_kernel_matches_phases);
  RUN(test_fused_workspace_is_bounded);
  return harness_report();
}
