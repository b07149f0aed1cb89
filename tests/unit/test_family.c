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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
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

int main(void) {
  RUN(test_registry);
  RUN(test_full_refuses_indefinite);
  return harness_report();
}
