/* test_family.c - every registered covariance family (src/mixture/family.h) against closed
 * forms, on random parameters from a random dense precision (the family keeps what it can
 * store of it: all of it, or its diagonal):
 *  - psize(d) is the size of the covariance shape cov_rank says (d^cov_rank), and the
 *    registry's names look up to the same objects;
 *  - init(var) gives covariance var * I and a sane factor;
 *  - covariance() is the inverse of the stored precision (C P = I to 1e-10);
 *  - transform() draws from N(mu, covariance()): the mean and covariance of 200,000 draws
 *    agree within 5 standard errors (entry (a, b) of the sample covariance has standard error
 *    sqrt((C_aa C_bb + C_ab^2) / n));
 *  - log_const() = log w + 1/2 log det P - d/2 log(2 pi), with det P by Gaussian elimination;
 *  - kl() and mahalanobis() against the closed form of KL between two Gaussians;
 *  - from_precision() of the full family refuses an indefinite matrix. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "harness.h"
#include "linalg/linalg.h"
#include "mixture/family.h"
#include "rng/stream.h"

#define DMAX 6

/* The family's numbers (psize) as a dense d x d matrix: cov_rank 2 stores it whole, 1 its
 * diagonal. */
static void dense(const gfv_family_type *f, size_t d, const double *x, double *out) {
  if (f->cov_rank == 2) {
    memcpy(out, x, d * d * sizeof(double));
    return;
  }
  memset(out, 0, d * d * sizeof(double));
  for (size_t a = 0; a < d; a++) out[a * d + a] = x[a];
}

/* log det A by Gaussian elimination with partial pivoting (A is positive definite). */
static double logdet(size_t d, const double *A) {
  double M[DMAX * DMAX], s = 0;
  memcpy(M, A, d * d * sizeof(double));
  for (size_t c = 0; c < d; c++) {
    size_t p = c;
    for (size_t r = c + 1; r < d; r++)
      if (fabs(M[r * d + c]) > fabs(M[p * d + c])) p = r;
    for (size_t k = 0; k < d; k++) {
      double t = M[c * d + k];
      M[c * d + k] = M[p * d + k], M[p * d + k] = t;
    }
    s += log(fabs(M[c * d + c]));
    for (size_t r = c + 1; r < d; r++) {
      double m = M[r * d + c] / M[c * d + c];
      for (size_t k = c; k < d; k++) M[r * d + k] -= m * M[c * d + k];
    }
  }
  return s;
}

/* A random symmetric positive-definite precision B B^T / d + 0.5 I. */
static void random_precision(size_t d, uint64_t key, double *P) {
  double B[DMAX * DMAX];
  gfv_stream st = gfv_stream_make(11, key, GFV_PURPOSE_SAMPLE);
  gfv_stream_normals(&st, 0, 0, d * d, B);
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) {
      double s = a == b ? 0.5 : 0.0;
      for (size_t k = 0; k < d; k++) s += B[a * d + k] * B[b * d + k] / (double)d;
      P[a * d + b] = s;
    }
}

static void check_family(const gfv_family_type *f) {
  const size_t d = 4, dd = d * d, n = 200000;
  const size_t ps = f->psize(f, d);
  CHECK(gfv_family_lookup(f->name) == f, "%s: lookup by its name", f->name);
  CHECK(f->cov_rank == 1 || f->cov_rank == 2, "%s: cov_rank %d", f->name, f->cov_rank);
  for (size_t e = 1; e <= DMAX; e++)
    CHECK(f->psize(f, e) == (f->cov_rank == 2 ? e * e : e), "%s: psize(%zu) = %zu", f->name, e,
          f->psize(f, e));

  double P[DMAX * DMAX], L[DMAX * DMAX], C[DMAX * DMAX], Pd[DMAX * DMAX], Cd[DMAX * DMAX];
  /* init: covariance var I */
  f->init(f, d, 2.5, P, L);
  CHECK(f->factor_is_sane(f, d, L), "%s: init factor", f->name);
  CHECK(f->covariance(f, d, P, L, C) == 0, "%s: init covariance", f->name);
  dense(f, d, C, Cd);
  for (size_t a = 0; a < dd; a++)
    CHECK_NEAR(Cd[a], a % (d + 1) == 0 ? 2.5 : 0.0, 1e-14, "init covariance");

  /* random parameters */
  double R[DMAX * DMAX], mu[DMAX] = {0.5, -1.0, 2.0, 0.25};
  random_precision(d, 1, R);
  CHECK(f->from_precision(f, d, R, P, L) == 0, "%s: from_precision", f->name);
  CHECK(f->factor_is_sane(f, d, L), "%s: factor of a random precision", f->name);
  double Lre[DMAX * DMAX];
  CHECK(f->factor(f, d, P, Lre) == 0, "%s: factor", f->name);
  for (size_t a = 0; a < ps; a++) CHECK_NEAR(Lre[a], L[a], 1e-15, "factor = from_precision's");
  CHECK(f->covariance(f, d, P, L, C) == 0, "%s: covariance", f->name);
  dense(f, d, P, Pd);
  dense(f, d, C, Cd);
  for (size_t a = 0; a < d; a++) /* the family keeps R, or its diagonal */
    for (size_t b = 0; b < d; b++) {
      CHECK_NEAR(Pd[a * d + b], f->cov_rank == 2 || a == b ? R[a * d + b] : 0.0, 1e-15,
                 "kept precision");
      double s = 0;
      for (size_t k = 0; k < d; k++) s += Cd[a * d + k] * Pd[k * d + b];
      CHECK_NEAR(s, a == b ? 1.0 : 0.0, 1e-10, "covariance * precision = I");
    }

  /* sampling */
  double *z = malloc(n * d * sizeof *z), m[DMAX] = {0}, S[DMAX * DMAX] = {0};
  CHECK(z != NULL, "allocation");
  if (!z) return;
  gfv_stream st = gfv_stream_make(5, 0, GFV_PURPOSE_SAMPLE);
  gfv_stream_normals(&st, 0, 0, n * d, z);
  f->transform(f, d, mu, L, n, z);
  for (size_t i = 0; i < n; i++)
    for (size_t a = 0; a < d; a++) m[a] += z[i * d + a] / (double)n;
  for (size_t i = 0; i < n; i++)
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++)
        S[a * d + b] += (z[i * d + a] - m[a]) * (z[i * d + b] - m[b]) / (double)(n - 1);
  free(z);
  for (size_t a = 0; a < d; a++) {
    CHECK_NEAR(m[a], mu[a], 5 * sqrt(Cd[a * d + a] / (double)n), "sample mean");
    for (size_t b = 0; b < d; b++) {
      double se = sqrt((Cd[a * d + a] * Cd[b * d + b] + Cd[a * d + b] * Cd[a * d + b]) / (double)n);
      CHECK_NEAR(S[a * d + b], Cd[a * d + b], 5 * se, "sample covariance");
    }
  }

  /* log-constant: two components, weights 0.3 and 0.7 */
  double P2[2 * DMAX * DMAX], L2[2 * DMAX * DMAX], logw[2] = {log(0.3), log(0.7)}, logc[2];
  double R2[DMAX * DMAX];
  random_precision(d, 2, R2);
  memcpy(P2, P, ps * sizeof(double)), memcpy(L2, L, ps * sizeof(double));
  CHECK(f->from_precision(f, d, R2, P2 + ps, L2 + ps) == 0, "%s: second precision", f->name);
  f->log_const(f, d, 2, logw, P2, L2, logc);
  double P1d[DMAX * DMAX];
  dense(f, d, P2 + ps, P1d);
  CHECK_NEAR(logc[0], log(0.3) + 0.5 * logdet(d, Pd) - 0.5 * (double)d * log(2 * M_PI), 1e-12,
             "logc 0");
  CHECK_NEAR(logc[1], log(0.7) + 0.5 * logdet(d, P1d) - 0.5 * (double)d * log(2 * M_PI), 1e-12,
             "logc 1");

  /* KL(N(mu1, P1^-1) || N(mu, P^-1)) = 1/2 (tr(P C1) + dm^T P dm - d + log det P1 - log det P) */
  double mu1[DMAX] = {0.0, -0.5, 2.5, 1.0}, C1[DMAX * DMAX], C1d[DMAX * DMAX], dm[DMAX];
  double work[DMAX * DMAX + DMAX], maha = -1;
  CHECK(f->covariance(f, d, P2 + ps, L2 + ps, C1) == 0, "covariance 1");
  dense(f, d, C1, C1d);
  double tr = 0, q = 0;
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) {
      tr += Pd[a * d + b] * C1d[b * d + a];
      q += (mu1[a] - mu[a]) * Pd[a * d + b] * (mu1[b] - mu[b]);
    }
  double kl = 0.5 * (tr + q - (double)d + logdet(d, P1d) - logdet(d, Pd));
  CHECK_NEAR(f->kl(f, d, mu1, P2 + ps, L2 + ps, mu, P, L, work, &maha), kl, 1e-10, "kl");
  CHECK_NEAR(maha, sqrt(q), 1e-12, "kl's mahalanobis");
  for (size_t a = 0; a < d; a++) dm[a] = mu1[a] - mu[a];
  CHECK_NEAR(f->mahalanobis(f, d, P, L, dm), sqrt(q), 1e-12, "mahalanobis");
}

static void test_registry(void) {
  size_t count = 0;
  for (const gfv_family_type *f; (f = gfv_family_at(count)) != NULL; count++) check_family(f);
  CHECK(count >= 2, "%zu families registered", count);
  CHECK(gfv_family_lookup("full") == &gfv_family_full &&
            gfv_family_lookup("diag") == &gfv_family_diag,
        "full and diag by name");
  CHECK(gfv_family_lookup("nonesuch") == NULL, "unknown name");
}

static void test_full_refuses_indefinite(void) {
  const double A[4] = {1.0, 2.0, 2.0, 1.0}; /* eigenvalues 3 and -1 */
  double P[4], L[4];
  CHECK(gfv_family_full.from_precision(&gfv_family_full, 2, A, P, L) != 0,
        "an indefinite precision");
}

/* ---- the low-rank family (lowrank:R, outside the fixed-shape registry): the same closed
 * forms, densely ---- */

/* Lambda = diag(D) + U U^T from P = [D | U]. */
static void lowrank_dense(size_t d, size_t R, const double *P, double *out) {
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) {
      double v = a == b ? P[a] : 0.0;
      for (size_t r = 0; r < R; r++) v += P[d + a * R + r] * P[d + b * R + r];
      out[a * d + b] = v;
    }
}

static void random_lowrank(size_t d, size_t R, uint64_t key, double *P) {
  gfv_stream st = gfv_stream_make(13, key, GFV_PURPOSE_SAMPLE);
  gfv_stream_normals(&st, 0, 0, d + d * R, P);
  for (size_t a = 0; a < d; a++) P[a] = 0.3 + P[a] * P[a];
}

static void test_lowrank(void) {
  enum { d = 6, R = 2, n = 200000 };
  gfv_family_type fam;
  const gfv_family_type *f = &fam;
  CHECK(gfv_family_lowrank(0, &fam) != 0 && gfv_family_lowrank(GFV_LOWRANK_MAX + 1, &fam) != 0,
        "rank out of range");
  CHECK(gfv_family_lowrank(R, &fam) == 0, "rank %d", R);
  CHECK(f->psize(f, d) == d + d * R, "psize");
  double P[d + d * R], L[d + d * R], C[d + d * R], Lp[d + d * R], Ld[d * d], Sd[d * d], Ad[d * d];
  f->init(f, d, 2.0, C, L);
  CHECK(f->factor_is_sane(f, d, L), "init factor");
  f->covariance(f, d, C, L, C);
  for (size_t a = 0; a < d; a++) CHECK_NEAR(C[a], 2.0, 1e-15, "init variance");
  /* a random Lambda, its factor, and its dense inverse */
  random_lowrank(d, R, 1, P);
  CHECK(f->factor(f, d, P, Lp) == 0 && f->factor_is_sane(f, d, Lp), "factor");
  lowrank_dense(d, R, P, Ad);
  memcpy(Ld, Ad, sizeof Ld);
  CHECK(gfv_chol(d, Ld) == 0 && gfv_chol_inverse(d, Ld, Sd) == 0, "dense inverse");
  /* covariance */
  double Cd[d * d];
  f->covariance(f, d, P, Lp, C);
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) {
      double v = a == b ? C[a] : 0.0;
      for (size_t r = 0; r < R; r++) v -= C[d + a * R + r] * C[d + b * R + r];
      Cd[a * d + b] = v;
      CHECK_NEAR(v, Sd[a * d + b], 1e-10, "covariance = dense inverse");
    }
  /* log-constant */
  double logw = log(0.4), logc;
  f->log_const(f, d, 1, &logw, P, Lp, &logc);
  CHECK_NEAR(logc, log(0.4) + 0.5 * logdet(d, Ad) - 0.5 * d * log(2 * M_PI), 1e-12, "logc");
  /* sampling */
  double mu[d] = {1, -1, 0.5, 0, 2, -0.5}, m[d] = {0}, S[d * d] = {0};
  double *z = malloc((size_t)n * d * sizeof *z);
  CHECK(z != NULL, "allocation");
  if (!z) return;
  gfv_stream st = gfv_stream_make(5, 1, GFV_PURPOSE_SAMPLE);
  gfv_stream_normals(&st, 0, 0, (size_t)n * d, z);
  f->transform(f, d, mu, Lp, n, z);
  for (size_t i = 0; i < n; i++)
    for (size_t a = 0; a < d; a++) m[a] += z[i * d + a] / n;
  for (size_t i = 0; i < n; i++)
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) S[a * d + b] += (z[i * d + a] - m[a]) * (z[i * d + b] - m[b]) / (n - 1);
  free(z);
  for (size_t a = 0; a < d; a++) {
    CHECK_NEAR(m[a], mu[a], 5 * sqrt(Cd[a * d + a] / n), "sample mean");
    for (size_t b = 0; b < d; b++)
      CHECK_NEAR(S[a * d + b], Cd[a * d + b],
                 5 * sqrt((Cd[a * d + a] * Cd[b * d + b] + Cd[a * d + b] * Cd[a * d + b]) / n),
                 "sample covariance");
  }
  /* KL and the Mahalanobis move against a second random component */
  double P0[d + d * R], L0[d + d * R], A0[d * d], mu0[d] = {0.5, 0, 0, 1, 1, 0}, dm[d];
  random_lowrank(d, R, 2, P0);
  CHECK(f->factor(f, d, P0, L0) == 0, "factor 0");
  lowrank_dense(d, R, P0, A0);
  double tr = 0, q = 0, work[d * d + d], maha = -1;
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) {
      tr += A0[a * d + b] * Sd[b * d + a];
      q += (mu[a] - mu0[a]) * A0[a * d + b] * (mu[b] - mu0[b]);
    }
  double kl = 0.5 * (tr + q - d + logdet(d, Ad) - logdet(d, A0));
  CHECK_NEAR(f->kl(f, d, mu, P, Lp, mu0, P0, L0, work, &maha), kl, 1e-10, "kl");
  CHECK_NEAR(maha, sqrt(q), 1e-12, "kl's mahalanobis");
  for (size_t a = 0; a < d; a++) dm[a] = mu[a] - mu0[a];
  CHECK_NEAR(f->mahalanobis(f, d, P0, L0, dm), sqrt(q), 1e-12, "mahalanobis");
  /* from_precision is exact on delta I + rank R */
  double E[d + d * R], Ed[d * d], Pf[d + d * R], Lf[d + d * R], Fd[d * d];
  random_lowrank(d, R, 3, E);
  for (size_t a = 0; a < d; a++) E[a] = 0.7;
  lowrank_dense(d, R, E, Ed);
  CHECK(f->from_precision(f, d, Ed, Pf, Lf) == 0, "from_precision");
  lowrank_dense(d, R, Pf, Fd);
  for (size_t i = 0; i < d * d; i++) CHECK_NEAR(Fd[i], Ed[i], 1e-10, "from_precision exact");
}

/* The low-rank kernels (kernel_lowrank.c) against the full family's on the same precisions
 * made dense: log terms, log-sum-exp, gradient sums and gfv_mix_eval to 1e-12. */
static void test_lowrank_kernels(void) {
  enum { d = 6, R = 2, k = 3, n = 7, ps = d + d * R };
  gfv_family_type fam;
  gfv_family_lowrank(R, &fam);
  double P[k * ps], L[k * ps], Pd[k * d * d], Ld[k * d * d], mu[k * d], z[n * d];
  double logw[k] = {log(0.2), log(0.5), log(0.3)}, logc[k], logcd[k];
  for (size_t j = 0; j < k; j++) {
    random_lowrank(d, R, 20 + j, P + j * ps);
    fam.factor(&fam, d, P + j * ps, L + j * ps);
    lowrank_dense(d, R, P + j * ps, Pd + j * d * d);
    memcpy(Ld + j * d * d, Pd + j * d * d, d * d * sizeof(double));
    CHECK(gfv_chol(d, Ld + j * d * d) == 0, "dense factor %zu", j);
  }
  gfv_stream st = gfv_stream_make(3, 9, GFV_PURPOSE_SAMPLE);
  gfv_stream_normals(&st, 0, 0, k * d, mu);
  gfv_stream_normals(&st, 1, 0, n * d, z);
  fam.log_const(&fam, d, k, logw, P, L, logc);
  gfv_mix_log_const(d, k, logw, Ld, logcd);
  for (size_t j = 0; j < k; j++) CHECK_NEAR(logc[j], logcd[j], 1e-12, "logc");
  gfv_mix_view vl = {d, k, mu, P, L, logc, 0, R}, vf = {d, k, mu, Pd, Ld, logcd, 0, 0};
  gfv_mix_work *wl = NULL, *wf = NULL;
  CHECK(fam.work_alloc(&fam, d, k, 1, &wl) == 0 && gfv_mix_work_alloc(d, k, 1, &wf) == 0, "work");
  if (!wl || !wf) return;
  double A[n * k], Af[n * k], lse[n], lsef[n], g[n * d] = {0}, gf[n * d] = {0};
  CHECK(gfv_mix_log_terms(&vl, n, z, A, lse, wl) == 0, "log terms");
  CHECK(gfv_mix_log_terms(&vf, n, z, Af, lsef, wf) == 0, "dense log terms");
  for (size_t i = 0; i < n * k; i++) CHECK_NEAR(A[i], Af[i], 1e-12, "a_ij");
  for (size_t i = 0; i < n; i++) CHECK_NEAR(lse[i], lsef[i], 1e-12, "lse");
  CHECK(gfv_mix_grad_terms(&vl, n, z, A, lse, 1, g, NULL, wl) == 0, "grad terms");
  CHECK(gfv_mix_grad_terms(&vf, n, z, Af, lsef, 1, gf, NULL, wf) == 0, "dense grad terms");
  for (size_t i = 0; i < n * d; i++) CHECK_NEAR(g[i], gf[i], 1e-12, "gbar");
  double H[d * d];
  gfv_error_clear();
  CHECK(gfv_mix_grad_terms(&vl, n, z, A, lse, 1, g, H, wl) != 0, "Hessian sums refused");
  gfv_error_clear();
  double lq[n], lqf[n], ge[n * d], gef[n * d];
  CHECK(gfv_mix_eval(&vl, n, z, lq, ge, NULL, wl) == 0, "eval");
  CHECK(gfv_mix_eval(&vf, n, z, lqf, gef, NULL, wf) == 0, "dense eval");
  for (size_t i = 0; i < n; i++) CHECK_NEAR(lq[i], lqf[i], 1e-12, "eval logq");
  for (size_t i = 0; i < n * d; i++) CHECK_NEAR(ge[i], gef[i], 1e-12, "eval grad");
  gfv_mix_work_free(wl), gfv_mix_work_free(wf);
}

/* The R largest positive eigenpairs (by_magnitude: the R of largest |lambda|) of the dense
 * symmetric M (d x d, destroyed) as a dense matrix out = sum lambda v v^T. */
static void dense_top(size_t d, size_t R, double *M, double *out, int by_magnitude) {
  double lam[DMAX];
  memset(out, 0, d * d * sizeof(double));
  if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)d, M, (lapack_int)d, lam) != 0) return;
  size_t lo = 0, hi = d; /* ascending: take from either end */
  for (size_t r = 0; r < R; r++) {
    size_t i;
    if (by_magnitude && fabs(lam[lo]) > fabs(lam[hi - 1])) i = lo++;
    else i = --hi;
    if (!by_magnitude && !(lam[i] > 0)) break;
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) out[a * d + b] += lam[i] * M[a * d + i] * M[b * d + i];
  }
}

/* W sigma W^T for the estimator's signed columns (the sign of each column's entry of
 * largest magnitude). */
static void signed_outer(size_t d, size_t R, const double *W, double *out) {
  double sg[DMAX];
  for (size_t r = 0; r < R; r++) {
    double big = 0;
    for (size_t a = 0; a < d; a++)
      if (fabs(W[a * R + r]) > fabs(big)) big = W[a * R + r];
    sg[r] = big < 0 ? -1 : 1;
  }
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) {
      double v = 0;
      for (size_t r = 0; r < R; r++) v += sg[r] * W[a * R + r] * W[b * R + r];
      out[a * d + b] = v;
    }
}

/* U U^T (d x R) as a dense matrix. */
static void outer(size_t d, size_t R, const double *U, double *out) {
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) {
      double v = 0;
      for (size_t r = 0; r < R; r++) v += U[a * R + r] * U[b * R + r];
      out[a * d + b] = v;
    }
}

/* The low-rank estimate's off-diagonal part, densely: A_i = Lambda t_i and B_i = gh_i
 * centred on their means, E_c = sym(sum_i A_i B_i^T) / (S - 1), E_off = E_c - diag(E_c); its
 * R eigenpairs (lambda, v) of largest magnitude, each times the noise test's factor
 * max(0, 1 - c^2 se^2 / (lambda^2 + s^2)), se the standard error of the mean of the samples'
 * own terms x_i = S/(S-1) ((v.A_i)(v.B_i) - sum_a v_a^2 A_ia B_ia), s = |U^T v|^2. */
static void dense_lowrank_estimate(size_t d, size_t R, size_t S, const double *Pd, const double *U,
                                   const double *mu, const double *z, const double *gb,
                                   const double *gl, double c, double *out) {
  double A[DMAX * DMAX], B[DMAX * DMAX], M[DMAX * DMAX], lam[DMAX], ma[DMAX] = {0}, mb[DMAX] = {0};
  for (size_t i = 0; i < S; i++)
    for (size_t a = 0; a < d; a++) {
      double x = 0;
      for (size_t b = 0; b < d; b++) x += Pd[a * d + b] * (z[i * d + b] - mu[b]);
      A[i * d + a] = x, B[i * d + a] = gb[i * d + a] - gl[i * d + a];
      ma[a] += x / (double)S, mb[a] += B[i * d + a] / (double)S;
    }
  for (size_t i = 0; i < S; i++)
    for (size_t a = 0; a < d; a++) A[i * d + a] -= ma[a], B[i * d + a] -= mb[a];
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) {
      double x = 0;
      for (size_t i = 0; i < S; i++) x += 0.5 * (A[i * d + a] * B[i * d + b] + B[i * d + a] * A[i * d + b]);
      M[a * d + b] = a == b ? 0.0 : x / (double)(S - 1);
    }
  memset(out, 0, d * d * sizeof(double));
  if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)d, M, (lapack_int)d, lam) != 0) return;
  size_t lo = 0, hi = d;
  for (size_t r = 0; r < R; r++) {
    size_t k = fabs(lam[lo]) > fabs(lam[hi - 1]) ? lo++ : --hi;
    double sx = 0, sxx = 0, sv = 0;
    for (size_t i = 0; i < S; i++) {
      double va = 0, vb = 0, dg = 0;
      for (size_t a = 0; a < d; a++) {
        const double v = M[a * d + k];
        va += v * A[i * d + a], vb += v * B[i * d + a], dg += v * v * A[i * d + a] * B[i * d + a];
      }
      const double x = (va * vb - dg) * (double)S / (double)(S - 1);
      sx += x, sxx += x * x;
    }
    for (size_t q = 0; q < R; q++) {
      double h = 0;
      for (size_t a = 0; a < d; a++) h += U[a * R + q] * M[a * d + k];
      sv += h * h;
    }
    const double mean = sx / (double)S, se2 = (sxx / (double)S - mean * mean) / (double)(S - 1);
    const double keep = fmax(0.0, 1 - c * c * se2 / (mean * mean + sv * sv));
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) out[a * d + b] += keep * lam[k] * M[a * d + k] * M[b * d + k];
  }
}

/* The low-rank family's estimator projection and NGFlow-VI update against dense
 * computations.  With S = 3 samples, R = 2 and d = 6 the span [U, Lambda t_i, gh_i] is all
 * of R^6, so the Rayleigh-Ritz step is exact: g must be diag(E) (E the full family's stein
 * estimate) and W sigma W^T the dense R eigenpairs of largest magnitude of the centred
 * estimate's off-diagonal part, each shrunk by the noise test (dense_lowrank_estimate,
 * c = 1.5 as LR_NOISE_C); the update must
 * be U'U'^T = top-R(U U^T + eta W sigma W^T), D' = D + eta g + eta^2/2 g^2/D -
 * diag(U'U'^T - U U^T) (Lambda's diagonal on the diagonal family's update), and
 * mu' = mu - eta Lambda'^{-1} gh (dense solve).  Also: G = 0, gh = 0 is a fixed
 * point; a hostile estimate keeps Lambda' positive definite; GFlow-VI is refused. */
static void test_lowrank_flow(void) {
  enum { d = 6, R = 2, S = 3, ps = d + d * R };
  gfv_family_type fam;
  gfv_family_lowrank(R, &fam);
  double P[ps], L[ps], Pd[d * d], mu[d], z[S * d], gb[S * d], gl[S * d];
  random_lowrank(d, R, 40, P);
  fam.factor(&fam, d, P, L);
  lowrank_dense(d, R, P, Pd);
  gfv_stream st = gfv_stream_make(4, 2, GFV_PURPOSE_SAMPLE);
  gfv_stream_normals(&st, 0, 0, d, mu);
  gfv_stream_normals(&st, 1, 0, S * d, z);
  gfv_stream_normals(&st, 2, 0, S * d, gb);
  gfv_stream_normals(&st, 3, 0, S * d, gl);
  gfv_particle_samples sd = {d, S, mu, Pd, z, gl, NULL, gb, NULL}, sl = sd;
  sl.P = P;
  double ghf[d], Gf[d * d], wf[2 * S * d + d * d], gh[d], G[ps];
  double *w = malloc(gfv_family_lowrank_est_work(d, S, R) * sizeof *w);
  CHECK(w != NULL, "allocation");
  if (!w) return;
  gfv_estimator_stein.estimate(&sd, ghf, Gf, wf);
  fam.estimate(&fam, &gfv_estimator_stein, &sl, gh, G, w);
  free(w);
  for (size_t a = 0; a < d; a++) {
    CHECK_NEAR(gh[a], ghf[a], 1e-13, "gh");
    CHECK_NEAR(G[a], Gf[a * d + a], 1e-12, "g = diag(E)");
  }
  double Tr[d * d], O[d * d];
  dense_lowrank_estimate(d, R, S, Pd, P + d, mu, z, gb, gl, 1.5, Tr);
  signed_outer(d, R, G + d, O);
  for (size_t i = 0; i < d * d; i++)
    CHECK_NEAR(O[i], Tr[i], 1e-9, "W sigma W^T = the noise-tested top-R |lambda| of the centred E_off");
  CHECK(fabs(O[1]) > 1e-3, "the test is not vacuous (some eigenpair passes the noise test)");
  /* the update */
  const double eta = 0.05; /* short enough that D' stays positive for this estimate */
  double mu2[d], P2[ps], L2[ps], fw[4 * d * d + 2 * d], Pn[d * d], Ln[d * d], Sn[d * d];
  gfv_step_info info;
  CHECK(fam.update(&fam, &gfv_flow_ngflow, d, mu, P, L, gh, G, eta, 0, mu2, P2, L2, fw, &info) == 0,
        "update");
  CHECK(fam.factor_is_sane(&fam, d, L2), "updated factor");
  for (size_t a = 0; a < d; a++) {
    double dd = 0;
    for (size_t r = 0; r < R; r++)
      dd += P[d + a * R + r] * P[d + a * R + r] - P2[d + a * R + r] * P2[d + a * R + r];
    CHECK_NEAR(P2[a], P[a] + eta * G[a] + 0.5 * eta * eta * G[a] * G[a] / P[a] + dd, 1e-12, "D'");
  }
  double M[d * d], U1[d * d];
  outer(d, R, P + d, M);
  signed_outer(d, R, G + d, U1);
  for (size_t i = 0; i < d * d; i++) M[i] += eta * U1[i];
  dense_top(d, R, M, Tr, 0);
  outer(d, R, P2 + d, O);
  for (size_t i = 0; i < d * d; i++) CHECK_NEAR(O[i], Tr[i], 1e-9, "U'U'^T");
  lowrank_dense(d, R, P2, Pn);
  memcpy(Ln, Pn, sizeof Ln);
  CHECK(gfv_chol(d, Ln) == 0 && gfv_chol_inverse(d, Ln, Sn) == 0, "dense Lambda'");
  for (size_t a = 0; a < d; a++) {
    double x = 0;
    for (size_t b = 0; b < d; b++) x += Sn[a * d + b] * gh[b];
    CHECK_NEAR(mu2[a], mu[a] - eta * x, 1e-10, "mu'");
  }
  CHECK(info.step_sq > 0 && info.param_sq > 0, "step sizes");
  /* a fixed point */
  double G0[ps], zero[d] = {0};
  memset(G0, 0, ps * sizeof(double));
  CHECK(fam.update(&fam, &gfv_flow_ngflow, d, mu, P, L, zero, G0, eta, 0, mu2, P2, L2, fw, &info) == 0,
        "fixed-point update");
  outer(d, R, P + d, M);
  outer(d, R, P2 + d, O);
  for (size_t a = 0; a < d; a++)
    CHECK(fabs(P2[a] - P[a]) < 1e-12 && mu2[a] == mu[a], "fixed point: D, mu");
  for (size_t i = 0; i < d * d; i++) CHECK_NEAR(O[i], M[i], 1e-12, "fixed point: U U^T");
  CHECK_NEAR(info.step_sq, 0.0, 1e-10, "fixed point: no step (up to the Gram form's rounding)");
  /* a hostile estimate (g = -100 D, U1 = 0): rejected, or positive definite */
  for (size_t a = 0; a < d; a++) G0[a] = -100 * P[a];
  memset(G0 + d, 0, d * R * sizeof(double));
  for (double e = 1.0; e > 1e-3; e /= 2) {
    int bad = fam.update(&fam, &gfv_flow_ngflow, d, mu, P, L, gh, G0, e, 0, mu2, P2, L2, fw, &info);
    if (!bad) CHECK(fam.factor_is_sane(&fam, d, L2) && P2[0] > 0, "positive definite when accepted");
    if (e < 0.01) CHECK(!bad, "a short step after a hostile estimate is accepted");
  }
  CHECK(fam.update(&fam, &gfv_flow_gflow, d, mu, P, L, gh, G, eta, 0, mu2, P2, L2, fw, &info) != 0,
        "GFlow-VI refused");
}

/* Lambda x for the low-rank family's P = [D | U]. */
static void lr_dense_apply(size_t d, size_t R, const double *P, const double *x, double *y) {
  for (size_t a = 0; a < d; a++) {
    double v = P[a] * x[a];
    for (size_t r = 0; r < R; r++) {
      double c = 0;
      for (size_t b = 0; b < d; b++) c += P[d + b * R + r] * x[b];
      v += P[d + a * R + r] * c;
    }
    y[a] = v;
  }
}

/* The estimate's noise must not build up a low-rank part.  The target is N(0, I) and q
 * starts there (Lambda = I, U = 0: the fixed point), so E[H_h] = 0 and every E_off is
 * zero-mean noise; each gh_i also carries a zero-mean part c_t shared by the iteration's
 * samples (a minibatch's gradient noise).  d = 60 >> S = 6, as on a BNN.  NGFlow-VI steps
 * of eta = 0.05 with the real estimates (the diagonal's restoring force included), 400 of
 * them; the update keeps the R largest positive eigenpairs of U U^T + eta W sigma W^T, so
 * positive noise enters U and negative noise is clipped.  |U U^T|_F at the end: 1.74 with
 * the first version's estimate (uncentred, untested), 0.30 with centring alone, 0.12 with
 * centring and the noise test; the bound is 0.25 (Lambda = I: |I|_F = 7.7). */
static void test_lowrank_noise(void) {
  enum { d = 60, R = 4, S = 6, ps = d + d * R, steps = 400 };
  gfv_family_type fam;
  gfv_family_lowrank(R, &fam);
  static double P[ps], L[ps], P2[ps], L2[ps], G[ps], z[S * d], gl[S * d], gb[S * d], cm[d];
  double mu[d] = {0}, mu2[d], gh[d];
  double *w = malloc(gfv_family_lowrank_est_work(d, S, R) * sizeof *w);
  double *fw = malloc((4 * d * d + 2 * d) * sizeof *fw);
  CHECK(w && fw, "allocation");
  if (!w || !fw) {
    free(w), free(fw);
    return;
  }
  fam.init(&fam, d, 1.0, P, L);
  gfv_stream st = gfv_stream_make(9, 1, GFV_PURPOSE_SAMPLE);
  gfv_particle_samples sp = {d, S, mu, P, z, gl, NULL, gb, NULL};
  int bad = 0;
  for (int it = 0; it < steps && !bad; it++) {
    gfv_stream_normals(&st, 1, (uint64_t)it, S * d, z);
    fam.transform(&fam, d, mu, L, S, z); /* z ~ q */
    gfv_stream_normals(&st, 2, (uint64_t)it, d, cm);
    for (size_t i = 0; i < S; i++) {
      double t[d], lt[d];
      for (size_t a = 0; a < d; a++) t[a] = z[i * d + a] - mu[a];
      lr_dense_apply(d, R, P, t, lt);
      for (size_t a = 0; a < d; a++) {
        gb[i * d + a] = -lt[a];                  /* grad log q */
        gl[i * d + a] = -z[i * d + a] + cm[a];   /* grad log p, with the shared noise */
      }
    }
    fam.estimate(&fam, &gfv_estimator_stein, &sp, gh, G, w);
    gfv_step_info info;
    bad = fam.update(&fam, &gfv_flow_ngflow, d, mu, P, L, gh, G, 0.05, 0, mu2, P2, L2, fw, &info);
    memcpy(P, P2, sizeof P), memcpy(L, L2, sizeof L), memcpy(mu, mu2, sizeof mu);
  }
  CHECK(!bad, "every update accepted");
  double uu = 0, dm = 0;
  for (size_t a = 0; a < d; a++) dm += P[a] / d;
  for (size_t r = 0; r < R; r++)
    for (size_t q = 0; q < R; q++) {
      double x = 0;
      for (size_t a = 0; a < d; a++) x += P[d + a * R + r] * P[d + a * R + q];
      uu += x * x;
    }
  printf("# noise: |U U^T|_F %.3g, mean D %.3g\n", sqrt(uu), dm);
  CHECK(sqrt(uu) < 0.25, "noise leaves U U^T small: |U U^T|_F %.3g (mean D %.3g)", sqrt(uu), dm);
  free(w), free(fw);
}

int main(void) {
  RUN(test_registry);
  RUN(test_full_refuses_indefinite);
  RUN(test_lowrank);
  RUN(test_lowrank_kernels);
  RUN(test_lowrank_flow);
  RUN(test_lowrank_noise);
  return harness_report();
}
