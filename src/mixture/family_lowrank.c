/* family_lowrank.c - diagonal plus rank-R precisions (issue 13, item 1; --family=lowrank:R,
 * docs/lowrank.md):
 *   Lambda = diag(D) + U U^T,   D > 0 (d),  U (d x R, row-major),
 * for models with thousands of parameters, where the diagonal family is poor and the full
 * one too big.  Storage: P = [D | U] (d + d R numbers).  The factor L = [sqrt(D) | Y] holds
 * the symmetric square root of (I + W W^T)^{-1} = (I - Y Y^T)^2, W = D^{-1/2} U:
 * with K = W^T W = V diag(s) V^T (R x R), Y = W V diag(sqrt(a)), a = 1 / (c (c + 1)),
 * c = sqrt(1 + s), so that
 *   x = D^{-1/2} (eps - Y Y^T eps)           has covariance Lambda^{-1}  (sampling, O(d R)),
 *   log det Lambda = sum log D - 2 sum_r log(1 - |Y_r|^2)   (Y^T Y = diag(1 - 1/c)),
 *   Lambda^{-1} = diag(1/D) - Z Z^T,  Z = D^{-1/2} Y diag(sqrt(2 - |Y_r|^2))  (covariance).
 * The quadratic form (z - mu)^T Lambda (z - mu) = sum D t^2 + |U^T t|^2 needs no Woodbury
 * identity, which is what makes this the kernel-friendly side (the precision, not the
 * covariance, is diagonal plus low rank).
 * The kernels are in kernel_lowrank.c (samples layout only); the estimator's projection
 * and the flow's update with its retraction are below. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "mixture/family.h"

#define RMAX GFV_LOWRANK_MAX

static size_t lr_psize(const gfv_family_type *f, size_t d) {
  return d + d * f->rank;
}

/* Eigenvalues s and eigenvectors (columns of V) of the symmetric R x R matrix A (cyclic
 * Jacobi: R is small, and nothing is allocated).  A is destroyed. */
static void jacobi(size_t R, double *A, double *s, double *V) {
  for (size_t i = 0; i < R * R; i++) V[i] = i % (R + 1) == 0 ? 1.0 : 0.0;
  for (int sweep = 0; sweep < 60; sweep++) {
    double off = 0, tot = 0;
    for (size_t p = 0; p < R; p++)
      for (size_t q = 0; q < R; q++) {
        if (p == q) tot += A[p * R + q] * A[p * R + q];
        else off += A[p * R + q] * A[p * R + q];
      }
    if (off <= 1e-30 * (tot + off) || off == 0) break;
    for (size_t p = 0; p + 1 < R; p++)
      for (size_t q = p + 1; q < R; q++) {
        double apq = A[p * R + q];
        if (apq == 0) continue;
        double th = (A[q * R + q] - A[p * R + p]) / (2 * apq);
        double t = (th >= 0 ? 1.0 : -1.0) / (fabs(th) + sqrt(th * th + 1));
        double c = 1 / sqrt(t * t + 1), sn = t * c;
        for (size_t k = 0; k < R; k++) { /* A <- J^T A J, V <- V J */
          double akp = A[k * R + p], akq = A[k * R + q];
          A[k * R + p] = c * akp - sn * akq, A[k * R + q] = sn * akp + c * akq;
        }
        for (size_t k = 0; k < R; k++) {
          double apk = A[p * R + k], aqk = A[q * R + k];
          A[p * R + k] = c * apk - sn * aqk, A[q * R + k] = sn * apk + c * aqk;
        }
        for (size_t k = 0; k < R; k++) {
          double vkp = V[k * R + p], vkq = V[k * R + q];
          V[k * R + p] = c * vkp - sn * vkq, V[k * R + q] = sn * vkp + c * vkq;
        }
      }
  }
  for (size_t i = 0; i < R; i++) s[i] = A[i * R + i];
}

/* L = [sqrt(D) | Y] from P = [D | U]; 1 when D is not positive and finite. */
static int lr_factor(size_t d, size_t R, const double *P, double *L) {
  const double *D = P, *U = P + d;
  double K[RMAX * RMAX], V[RMAX * RMAX], s[RMAX], g[RMAX];
  for (size_t a = 0; a < d; a++) {
    if (!(D[a] > 0) || !isfinite(D[a])) return 1;
    L[a] = sqrt(D[a]);
  }
  memset(K, 0, R * R * sizeof(double));
  for (size_t a = 0; a < d; a++)
    for (size_t r = 0; r < R; r++)
      for (size_t q = 0; q < R; q++) K[r * R + q] += U[a * R + r] * U[a * R + q] / D[a];
  jacobi(R, K, s, V);
  for (size_t r = 0; r < R; r++) {
    double c = sqrt(1 + fmax(s[r], 0.0));
    g[r] = sqrt(1 / (c * (c + 1)));
  }
  double *Y = L + d;
  for (size_t a = 0; a < d; a++)
    for (size_t r = 0; r < R; r++) {
      double y = 0;
      for (size_t q = 0; q < R; q++) y += U[a * R + q] * V[q * R + r];
      Y[a * R + r] = y / L[a] * g[r];
    }
  return 0;
}

static int lr_factor_hook(const gfv_family_type *f, size_t d, const double *P, double *L) {
  return lr_factor(d, f->rank, P, L);
}

static void lr_init(const gfv_family_type *f, size_t d, double var, double *P, double *L) {
  memset(P, 0, lr_psize(f, d) * sizeof(double));
  for (size_t t = 0; t < d; t++) P[t] = 1.0 / var;
  lr_factor(d, f->rank, P, L);
}

/* The best such precision on Pd's top-R eigenspace (probabilistic PCA): D = delta I, the
 * mean of the other eigenvalues, and U = Q_R diag(sqrt(lambda_r - delta)). */
static int lr_from_precision(const gfv_family_type *f, size_t d, const double *Pd, double *P,
                             double *L) {
  const size_t R = f->rank, keep = R < d ? R : d;
  double *Q = malloc(d * d * sizeof *Q), *lam = malloc(d * sizeof *lam);
  int bad = !Q || !lam;
  if (!bad) {
    memcpy(Q, Pd, d * d * sizeof(double));
    bad = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)d, Q, (lapack_int)d, lam) != 0;
  }
  if (!bad) bad = !(lam[0] > 0); /* ascending: lam[0] the smallest */
  if (!bad) {
    double delta = 0;
    for (size_t i = 0; i < d - keep; i++) delta += lam[i] / (double)(d - keep);
    if (keep == d) delta = 0.5 * lam[0];
    memset(P, 0, lr_psize(f, d) * sizeof(double));
    for (size_t a = 0; a < d; a++) P[a] = delta;
    for (size_t r = 0; r < keep; r++) {
      const size_t i = d - 1 - r; /* the r-th largest */
      const double w = sqrt(fmax(lam[i] - delta, 0.0));
      for (size_t a = 0; a < d; a++) P[d + a * R + r] = Q[a * d + i] * w;
    }
    bad = lr_factor(d, R, P, L);
  }
  free(Q), free(lam);
  return bad;
}

/* 1/2 log det Lambda from the factor. */
static double lr_logdet_half(size_t d, size_t R, const double *L) {
  double s = 0;
  for (size_t a = 0; a < d; a++) s += log(L[a]);
  for (size_t r = 0; r < R; r++) {
    double y2 = 0;
    for (size_t a = 0; a < d; a++) y2 += L[d + a * R + r] * L[d + a * R + r];
    s -= log1p(-y2);
  }
  return s;
}

static void lr_log_const(const gfv_family_type *f, size_t d, size_t k, const double *logw,
                         const double *P, const double *L, double *logc) {
  (void)P;
  const size_t ps = lr_psize(f, d);
  for (size_t j = 0; j < k; j++)
    logc[j] = logw[j] + lr_logdet_half(d, f->rank, L + j * ps) - 0.5 * (double)d * log(2 * M_PI);
}

static void lr_transform(const gfv_family_type *f, size_t d, const double *mu, const double *L,
                         size_t S, double *z) {
  const size_t R = f->rank;
  const double *Y = L + d;
  double c[RMAX];
  for (size_t i = 0; i < S; i++) {
    double *x = z + i * d;
    for (size_t r = 0; r < R; r++) c[r] = 0;
    for (size_t a = 0; a < d; a++)
      for (size_t r = 0; r < R; r++) c[r] += Y[a * R + r] * x[a];
    for (size_t a = 0; a < d; a++) {
      double v = x[a];
      for (size_t r = 0; r < R; r++) v -= Y[a * R + r] * c[r];
      x[a] = v / L[a] + mu[a];
    }
  }
}

/* cov = [1/D | Z]: Lambda^{-1} = diag(1/D) - Z Z^T. */
static int lr_covariance(const gfv_family_type *f, size_t d, const double *P, const double *L,
                         double *cov) {
  const size_t R = f->rank;
  double h[RMAX];
  for (size_t a = 0; a < d; a++) cov[a] = 1.0 / P[a];
  for (size_t r = 0; r < R; r++) {
    double y2 = 0;
    for (size_t a = 0; a < d; a++) y2 += L[d + a * R + r] * L[d + a * R + r];
    h[r] = sqrt(2 - y2);
  }
  for (size_t a = 0; a < d; a++)
    for (size_t r = 0; r < R; r++) cov[d + a * R + r] = L[d + a * R + r] / L[a] * h[r];
  return 0;
}

static int lr_factor_is_sane(const gfv_family_type *f, size_t d, const double *L) {
  if (!gfv_factor_is_sane(d, L, 1)) return 0;
  for (size_t i = 0; i < d * f->rank; i++)
    if (!isfinite(L[d + i])) return 0;
  return 1;
}

/* dm^T Lambda dm = sum D dm^2 + |U^T dm|^2. */
static double lr_quad(size_t d, size_t R, const double *P, const double *dm) {
  double q = 0, c[RMAX] = {0};
  for (size_t a = 0; a < d; a++) {
    q += P[a] * dm[a] * dm[a];
    for (size_t r = 0; r < R; r++) c[r] += P[d + a * R + r] * dm[a];
  }
  for (size_t r = 0; r < R; r++) q += c[r] * c[r];
  return q;
}

static double lr_mahalanobis(const gfv_family_type *f, size_t d, const double *P, const double *L,
                             double *dm) {
  (void)L;
  return sqrt(lr_quad(d, f->rank, P, dm));
}

/* KL(N1 || N0) = 1/2 (tr(Lambda0 Sigma1) + dm^T Lambda0 dm - d + log det Lambda1 -
 * log det Lambda0), tr(Lambda0 Sigma1) = sum_a D0_a Sigma1_aa + sum_r U0_r^T Sigma1 U0_r
 * with Sigma1 = diag(1/D1) - Z1 Z1^T.  work holds 2 d + d R doubles ([1/D1 | Z1] and dm):
 * the d * d + d the solver passes, for R < d. */
static double lr_kl(const gfv_family_type *f, size_t d, const double *mu1, const double *P1,
                    const double *L1, const double *mu0, const double *P0, const double *L0,
                    double *work, double *maha) {
  const size_t R = f->rank;
  double *C = work;
  lr_covariance(f, d, P1, L1, C);
  const double *Z = C + d;
  double tr = 0;
  for (size_t a = 0; a < d; a++) {
    double zz = 0;
    for (size_t r = 0; r < R; r++) zz += Z[a * R + r] * Z[a * R + r];
    tr += P0[a] * (C[a] - zz);
  }
  for (size_t r = 0; r < R; r++) { /* u^T Sigma1 u = sum u^2 / D1 - |Z1^T u|^2 */
    double uu = 0, c[RMAX] = {0};
    for (size_t a = 0; a < d; a++) {
      const double u = P0[d + a * R + r];
      uu += u * u * C[a];
      for (size_t q = 0; q < R; q++) c[q] += Z[a * R + q] * u;
    }
    for (size_t q = 0; q < R; q++) uu -= c[q] * c[q];
    tr += uu;
  }
  double *t = work + d + d * R;
  for (size_t a = 0; a < d; a++) t[a] = mu1[a] - mu0[a];
  const double q = lr_quad(d, R, P0, t);
  if (maha) *maha = sqrt(q);
  return 0.5 * (tr + q - (double)d) + lr_logdet_half(d, R, L1) - lr_logdet_half(d, R, L0);
}

/* The samples layout's kernels (kernel_lowrank.c) use only a diagonal workspace's phase-A
 * result buffers (gfv_mix_eval). */
static int lr_work_alloc(const gfv_family_type *f, size_t d, size_t k, size_t group,
                         gfv_mix_work **out) {
  (void)f;
  return gfv_mix_work_alloc_diag(d, k, group, out);
}

/* ---- the estimator's projection and the flow's update --------------------------------
 *
 * G for this family is [g | W] (psize numbers): g = diag(E), E the stein estimate of
 * E_q[H_h] = sym(Lambda (1/S) sum_i t_i gh_i^T) (t_i = z_i - mu, gh_i = grad h(z_i)), and
 * W sigma W^T the R eigenpairs of largest magnitude of the off-diagonal part of the centred
 * estimate (the samples' covariance of Lambda t_i and gh_i; lr_estimate says why)
 *   E_off = E_c - diag(E_c)
 * on the span of U's columns, the S vectors Lambda t_i and the S vectors gh_i (E_c is
 * exactly of rank <= 2S there): the Rayleigh-Ritz step of E_off on an orthonormal basis Q of
 * that span (m <= min(R + 2S, d) vectors), W's columns Q v sqrt|lambda|, each eigenvalue's
 * sign sigma carried by the sign of its column's entry of largest magnitude (ritz), each
 * eigenvalue then shrunk by the noise test (shrink_noise; docs/lowrank.md).
 * E never exists as a d x d matrix: the work is O(S d + m d + m^2 + S d R).
 * The update (NGFlow-VI's P' = P + eta G, projected onto diagonal plus rank R) is then
 *   U' U'^T = the R largest positive eigenpairs of U U^T + eta W sigma W^T
 *   D' = D + eta g + (eta^2 / 2) g^2 / D - diag(U' U'^T - U U^T)
 * (the eigenproblem on the 2R-dimensional span of [U, W]): eta = 0 keeps the particle,
 * the low-rank part is the rank-R truncation of the off-diagonal step and stays positive
 * semi-definite (negative eigenvalues are dropped, as little as the step size makes them),
 * and Lambda's diagonal follows the diagonal family's update exactly (the truncation's
 * own change of diag(U U^T) comes off D).  U' U'^T >= 0 and D' > 0 make Lambda' positive
 * definite; a step whose D' is not positive is rejected (returns 1) and the trust region
 * shortens it: the correction is O(eta), so a short enough step always passes.  mu' = mu - eta Lambda'^{-1} gh by the
 * factor of Lambda' (O(d R)).  The rank is truncated in the span, not in R^d: a direction
 * the samples never touched cannot enter U, which is why the span holds the samples. */

/* Orthonormalises the n vectors (rows of X, each d numbers) in place by modified
 * Gram-Schmidt twice, dropping those that fall below tol of their length; returns how many
 * are kept (moved to the front). */
static size_t orthonormalise(size_t d, size_t n, double *X) {
  size_t m = 0;
  for (size_t c = 0; c < n; c++) {
    double *x = X + c * d, n0 = 0;
    for (size_t a = 0; a < d; a++) n0 += x[a] * x[a];
    if (!(n0 > 0) || !isfinite(n0)) continue;
    for (int pass = 0; pass < 2; pass++)
      for (size_t q = 0; q < m; q++) {
        const double *e = X + q * d;
        double h = 0;
        for (size_t a = 0; a < d; a++) h += e[a] * x[a];
        for (size_t a = 0; a < d; a++) x[a] -= h * e[a];
      }
    double n1 = 0;
    for (size_t a = 0; a < d; a++) n1 += x[a] * x[a];
    if (!(n1 > 1e-20 * n0)) continue;
    double *dst = X + m * d, inv = 1 / sqrt(n1);
    for (size_t a = 0; a < d; a++) dst[a] = x[a] * inv;
    m++;
  }
  return m;
}

/* Rayleigh-Ritz: with Q (m orthonormal rows of d) and the m x m symmetric T (destroyed),
 * writes R eigenpairs of T as the columns of W (d x R, zero columns where there are
 * fewer): w = c (Q^T v) sqrt|lambda|.  by_magnitude = 0: the R largest positive ones
 * (c = 1, up to the sign below); 1: the R of largest |lambda| with c = sigma(lambda) times
 * the sign that makes the column's entry of largest magnitude positive, so that the sign of
 * that entry carries the sign of lambda (an eigenvector's own sign is arbitrary).
 * V: m x m scratch, lam: m (destroyed). */
static void ritz(size_t d, size_t R, size_t m, const double *Q, double *T, double *V, double *lam,
                 double *W, int by_magnitude) {
  jacobi(m, T, lam, V);
  memset(W, 0, d * R * sizeof(double));
  for (size_t r = 0; r < R; r++) {
    size_t best = m;
    for (size_t i = 0; i < m; i++) {
      if (!isfinite(lam[i])) continue; /* taken */
      const double li = by_magnitude ? fabs(lam[i]) : lam[i];
      if (best == m || li > (by_magnitude ? fabs(lam[best]) : lam[best])) best = i;
    }
    if (best == m || (by_magnitude ? lam[best] == 0 : !(lam[best] > 0))) break;
    const double l = lam[best];
    lam[best] = NAN;
    double big = 0;
    for (size_t a = 0; a < d; a++) {
      double x = 0;
      for (size_t q = 0; q < m; q++) x += V[q * m + best] * Q[q * d + a];
      W[a * R + r] = x;
      if (fabs(x) > fabs(big)) big = x;
    }
    const double c = (big < 0 ? -1.0 : 1.0) * (l < 0 ? -1.0 : 1.0) * sqrt(fabs(l));
    for (size_t a = 0; a < d; a++) W[a * R + r] *= c;
  }
}

/* The sign ritz gave column r of W (d x R): that of its entry of largest magnitude. */
static double column_sign(size_t d, size_t R, const double *W, size_t r) {
  double big = 0;
  for (size_t a = 0; a < d; a++)
    if (fabs(W[a * R + r]) > fabs(big)) big = W[a * R + r];
  return big < 0 ? -1.0 : 1.0;
}

/* Lambda x for P = [D | U]. */
static void lr_apply(size_t d, size_t R, const double *P, const double *x, double *y) {
  double c[RMAX] = {0};
  for (size_t a = 0; a < d; a++)
    for (size_t r = 0; r < R; r++) c[r] += P[d + a * R + r] * x[a];
  for (size_t a = 0; a < d; a++) {
    double v = P[a] * x[a];
    for (size_t r = 0; r < R; r++) v += P[d + a * R + r] * c[r];
    y[a] = v;
  }
}

/* A and B (S d each), the span's basis and Rayleigh-Ritz matrices, gc (d). */
size_t gfv_family_lowrank_est_work(size_t d, size_t S, size_t R) {
  size_t m = R + 2 * S < d ? R + 2 * S : d;
  return 2 * S * d + (R + 2 * S) * d + 2 * m * m + 3 * m + d;
}

/* The noise test's threshold c (in standard errors); see shrink_noise. */
#define LR_NOISE_C 1.5

/* Centres the n rows of A and B (d each) on their means and writes the diagonal of the
 * centred estimate ws sum_i A_i B_i^T to gc. */
static void centre(size_t d, size_t n, double *A, double *B, double ws, double *gc) {
  for (size_t a = 0; a < d; a++) {
    double ma = 0, mb = 0, h = 0;
    for (size_t i = 0; i < n; i++) ma += A[i * d + a], mb += B[i * d + a];
    ma /= (double)n, mb /= (double)n;
    for (size_t i = 0; i < n; i++) {
      A[i * d + a] -= ma, B[i * d + a] -= mb;
      h += A[i * d + a] * B[i * d + a];
    }
    gc[a] = h * ws;
  }
}

/* The R eigenpairs of largest magnitude of E_off = ws sym(sum_i A_i B_i^T) - diag(gc) on
 * the span of U's columns, the A_i and the B_i (exact: E_off lives there but for its
 * diagonal correction, which is projected), written to W as ritz writes them.  work:
 * (R + 2 S) d + 2 m^2 + 3 m, m <= min(R + 2 S, d). */
static void offdiag_ritz(size_t d, size_t S, size_t R, const double *U, const double *A,
                         const double *B, double ws, const double *gc, double *work, double *W) {
  double *Q = work;
  for (size_t r = 0; r < R; r++)
    for (size_t a = 0; a < d; a++) Q[r * d + a] = U[a * R + r];
  memcpy(Q + R * d, A, S * d * sizeof(double));
  memcpy(Q + (R + S) * d, B, S * d * sizeof(double));
  const size_t m = orthonormalise(d, R + 2 * S, Q);
  double *T = Q + (R + 2 * S) * d, *V = T + m * m, *lam = V + m * m, *qa = lam + m, *qb = qa + m;
  memset(T, 0, m * m * sizeof(double));
  for (size_t i = 0; i < S; i++) { /* + ws sym(Q A_i (Q B_i)^T) */
    for (size_t q = 0; q < m; q++) {
      double ha = 0, hb = 0;
      for (size_t a = 0; a < d; a++)
        ha += Q[q * d + a] * A[i * d + a], hb += Q[q * d + a] * B[i * d + a];
      qa[q] = ha, qb[q] = hb;
    }
    for (size_t p = 0; p < m; p++)
      for (size_t q = 0; q < m; q++) T[p * m + q] += 0.5 * (qa[p] * qb[q] + qb[p] * qa[q]) * ws;
  }
  for (size_t p = 0; p < m; p++) /* - Q diag(gc) Q^T */
    for (size_t q = 0; q <= p; q++) {
      double h = 0;
      for (size_t a = 0; a < d; a++) h += Q[p * d + a] * gc[a] * Q[q * d + a];
      T[p * m + q] -= h;
      if (q != p) T[q * m + p] -= h;
    }
  ritz(d, R, m, Q, T, V, lam, W, 1);
}

/* The noise test.  Each eigenvalue lambda of E_off (column w of W, v = w / |w|) is the mean
 * over the samples of their own terms x_i = S ws ((v.A_i)(v.B_i) - sum_a v_a^2 A_ia B_ia),
 * whose spread gives its standard error se.  It is shrunk to
 *   lambda max(0, 1 - c^2 se^2 / (lambda^2 + s^2)),   s = |U^T v|^2 = v^T U U^T v
 * (positive-part James-Stein, with the low-rank precision already there along v as a
 * margin): the truncation in the update is biased only where U U^T + eta E_off has
 * eigenvalues near zero, so only noise comparable with both the estimate and the
 * particle's own low-rank part is taken out.  The map is odd in lambda: zero-mean noise
 * stays zero-mean, and E[H_h] = 0 still stops the flow.  O(S d R). */
static void shrink_noise(size_t d, size_t S, size_t R, const double *A, const double *B, double ws,
                         const double *U, double *W) {
  const double c = LR_NOISE_C;
  if (S < 2) return;
  for (size_t r = 0; r < R; r++) {
    double n2 = 0;
    for (size_t a = 0; a < d; a++) n2 += W[a * R + r] * W[a * R + r];
    if (!(n2 > 0)) continue;
    const double inv = 1 / sqrt(n2);
    double sx = 0, sxx = 0, sv = 0;
    for (size_t i = 0; i < S; i++) {
      double va = 0, vb = 0, dg = 0;
      for (size_t a = 0; a < d; a++) {
        const double v = W[a * R + r] * inv;
        va += v * A[i * d + a], vb += v * B[i * d + a], dg += v * v * A[i * d + a] * B[i * d + a];
      }
      const double x = (va * vb - dg) * (double)S * ws;
      sx += x, sxx += x * x;
    }
    for (size_t q = 0; q < R; q++) {
      double h = 0;
      for (size_t a = 0; a < d; a++) h += U[a * R + q] * W[a * R + r] * inv;
      sv += h * h;
    }
    const double mean = sx / (double)S;
    const double se2 = fmax(sxx - (double)S * mean * mean, 0.0) / (double)(S - 1) / (double)S;
    const double den = mean * mean + sv * sv;
    const double keep = den > 0 ? fmax(0.0, 1 - c * c * se2 / den) : 0.0;
    const double sc = sqrt(keep); /* W's columns carry sqrt|lambda| */
    for (size_t a = 0; a < d; a++) W[a * R + r] *= sc;
  }
}

static void lr_estimate(const gfv_family_type *f, const gfv_estimator_type *est,
                        const gfv_particle_samples *ps, double *gh, double *G, double *work) {
  (void)est; /* the stein estimator's form; the hessian estimator is refused for this family */
  const size_t d = ps->d, S = ps->S, R = f->rank;
  const size_t m = R + 2 * S < d ? R + 2 * S : d;
  double *A = work, *B = work + S * d, *rest = B + S * d; /* A_i = Lambda t_i, B_i = gh_i */
  double *gc = rest + (R + 2 * S) * d + 2 * m * m + 3 * m;
  double *g = G, *W = G + d;
  for (size_t a = 0; a < d; a++) gh[a] = g[a] = 0;
  for (size_t i = 0; i < S; i++) {
    double *t = rest; /* scratch */
    for (size_t a = 0; a < d; a++) {
      t[a] = ps->z[i * d + a] - ps->mu[a];
      B[i * d + a] = ps->gbar[i * d + a] - ps->grad_l[i * d + a];
      gh[a] += B[i * d + a] / (double)S;
    }
    lr_apply(d, R, ps->P, t, A + i * d);
    for (size_t a = 0; a < d; a++) g[a] += A[i * d + a] * B[i * d + a] / (double)S;
  }
  /* g stays the diagonal family's; the off-diagonal part is the samples' covariance of A
   * and B (E[A_i] = Lambda E[t_i] = 0, so it is unbiased with 1 / (S - 1)), which drops
   * the term A-bar gh-bar^T: the samples' mean offset, pure noise, times the mean gradient,
   * which is large away from the optimum and carries a minibatch's gradient noise shared
   * by all the samples (a direction every sample agrees on, that no noise test could tell
   * from a signal). */
  const double ws = S > 1 ? 1.0 / (double)(S - 1) : 1.0;
  if (S > 1) centre(d, S, A, B, ws, gc);
  else memcpy(gc, g, d * sizeof(double));
  offdiag_ritz(d, S, R, ps->P + d, A, B, ws, gc, rest, W);
  shrink_noise(d, S, R, A, B, ws, ps->P + d, W);
}

/* |A A^T - B B^T|_F^2 for d x R matrices (B NULL: zero), from R x R Gram matrices
 * (O(d R^2)). */
static double gram_dist2(size_t d, size_t R, const double *A, const double *B) {
  double aa = 0, bb = 0, ab = 0;
  for (size_t r = 0; r < R; r++)
    for (size_t q = 0; q < R; q++) {
      double x = 0, y = 0, z = 0;
      for (size_t a = 0; a < d; a++) {
        x += A[a * R + r] * A[a * R + q];
        if (B) y += B[a * R + r] * B[a * R + q], z += A[a * R + r] * B[a * R + q];
      }
      aa += x * x, bb += y * y, ab += z * z;
    }
  return fmax(aa + bb - 2 * ab, 0.0); /* rounding could make it slightly negative */
}

static int lr_update(const gfv_family_type *f, const gfv_flow_type *flow, size_t d,
                     const double *mu, const double *P, const double *L, const double *gh,
                     const double *G, double eta, int plain, double *mu_out, double *P_out,
                     double *L_out, double *work, gfv_step_info *info) {
  (void)L;
  if (flow != &gfv_flow_ngflow) return 1; /* refused at configuration (GFlow-VI) */
  const size_t R = f->rank, m2 = 2 * R;
  const double *U = P + d, *U1 = G + d;
  double *Q = work, T[4 * RMAX * RMAX], V[4 * RMAX * RMAX], lam[2 * RMAX], c[2 * RMAX];
  for (size_t r = 0; r < R; r++)
    for (size_t a = 0; a < d; a++) Q[r * d + a] = U[a * R + r], Q[(R + r) * d + a] = U1[a * R + r];
  const size_t m = orthonormalise(d, m2, Q);
  memset(T, 0, m * m * sizeof(double));
  for (int which = 0; which < 2; which++) {
    const double *X = which ? U1 : U;
    for (size_t r = 0; r < R; r++) {
      const double wgt = which ? eta * column_sign(d, R, U1, r) : 1.0;
      for (size_t q = 0; q < m; q++) {
        double h = 0;
        for (size_t a = 0; a < d; a++) h += Q[q * d + a] * X[a * R + r];
        c[q] = h;
      }
      for (size_t p = 0; p < m; p++)
        for (size_t q = 0; q < m; q++) T[p * m + q] += wgt * c[p] * c[q];
    }
  }
  ritz(d, R, m, Q, T, V, lam, P_out + d, 0);
  /* D' keeps Lambda's diagonal on the diagonal family's update: the truncation's own
   * change of diag(U U^T) comes off D. */
  for (size_t a = 0; a < d; a++) {
    double p = P[a] + eta * G[a] + (plain ? 0.0 : 0.5 * eta * eta * G[a] * G[a] / P[a]);
    for (size_t r = 0; r < R; r++)
      p += U[a * R + r] * U[a * R + r] - P_out[d + a * R + r] * P_out[d + a * R + r];
    if (!(p > 0) || !isfinite(p)) return 1; /* the step is rejected (a shorter one will do) */
    P_out[a] = p;
  }
  for (size_t i = 0; i < d + d * R; i++)
    if (!isfinite(P_out[i])) return 1;
  if (lr_factor(d, R, P_out, L_out)) return 1;
  /* mu' = mu - eta Lambda'^{-1} gh, Lambda'^{-1} = D^{-1/2} (I - Y Y^T)^2 D^{-1/2} */
  const double *Y = L_out + d;
  double *x = work;
  for (size_t a = 0; a < d; a++) x[a] = gh[a] / L_out[a];
  for (int pass = 0; pass < 2; pass++) {
    double y[RMAX] = {0};
    for (size_t a = 0; a < d; a++)
      for (size_t r = 0; r < R; r++) y[r] += Y[a * R + r] * x[a];
    for (size_t a = 0; a < d; a++)
      for (size_t r = 0; r < R; r++) x[a] -= Y[a * R + r] * y[r];
  }
  info->step_sq = info->param_sq = 0;
  for (size_t a = 0; a < d; a++) {
    mu_out[a] = mu[a] - eta * x[a] / L_out[a];
    info->step_sq += (mu_out[a] - mu[a]) * (mu_out[a] - mu[a]) + (P_out[a] - P[a]) * (P_out[a] - P[a]);
    info->param_sq += mu_out[a] * mu_out[a] + P_out[a] * P_out[a];
  }
  /* in (mu, D, U U^T): the low-rank part's change in Frobenius norm */
  info->step_sq += gram_dist2(d, R, P_out + d, U);
  info->param_sq += gram_dist2(d, R, P_out + d, NULL);
  return 0;
}

/* The support barrier (family.h): gh -= Lambda m in full, and of G += Lambda - Lambda C
 * Lambda the diagonal only, added to g (G's low-rank part is a projected target, not an
 * increment; the barrier's job, pushing a component's spread back inside the support,
 * is done by the variances).  work holds d doubles; m is overwritten. */
static void lr_support_barrier(const gfv_family_type *f, size_t d, size_t n, const double *z,
                               const double *mu, const double *P, double *m, double *gh,
                               double *G, double *work) {
  const size_t R = f->rank;
  lr_apply(d, R, P, m, work);
  for (size_t a = 0; a < d; a++) {
    gh[a] -= work[a];
    double lam = P[a];
    for (size_t r = 0; r < R; r++) lam += P[d + a * R + r] * P[d + a * R + r];
    G[a] += lam;
  }
  for (size_t i = 0; i < n; i++) {
    for (size_t a = 0; a < d; a++) m[a] = z[i * d + a] - mu[a];
    lr_apply(d, R, P, m, work);
    for (size_t a = 0; a < d; a++) G[a] -= work[a] * work[a] / (double)n;
  }
}

int gfv_family_lowrank(size_t R, gfv_family_type *out) {
  if (R < 1 || R > RMAX) return 1;
  memset(out, 0, sizeof *out);
  out->name = "lowrank";
  out->rank = R;
  out->psize = lr_psize;
  out->init = lr_init;
  out->factor = lr_factor_hook;
  out->from_precision = lr_from_precision;
  out->log_const = lr_log_const;
  out->transform = lr_transform;
  out->covariance = lr_covariance;
  out->factor_is_sane = lr_factor_is_sane;
  out->kl = lr_kl;
  out->mahalanobis = lr_mahalanobis;
  out->work_alloc = lr_work_alloc;
  out->estimate = lr_estimate;
  out->update = lr_update;
  out->support_barrier = lr_support_barrier;
  /* I/O: mixture.csv columns dvar_a (1/D_a) then z_a_r (the covariance diag(dvar) - Z Z^T,
   * written by write_mixture for rank > 0); mixture.h5 and the checkpoint store the psize
   * numbers flat, (K, d + d R). */
  out->csv_prefix = "dvar";
  out->csv_pairs = 0;
  out->h5_cov = "covariance_lowrank";
  out->cov_rank = 1;
  return 0;
}

int gfv_family_lowrank_check(const gfv_family_type *f, size_t d, const gfv_flow_type *flow,
                             const gfv_estimator_type *est, const char *layout) {
  if (!f->rank) return GFV_OK;
  GFV_CHECK(f->rank < d, GFV_ERR_USAGE,
            "--family=%s: the rank must be below the dimension %zu (use --family=full)", f->name, d);
  GFV_CHECK(flow == &gfv_flow_ngflow, GFV_ERR_USAGE,
            "--family=%s takes --flow=ngflow only (GFlow-VI's covariance step has no retraction "
            "onto diagonal plus rank R)", f->name);
  GFV_CHECK(!est->needs_hessian, GFV_ERR_USAGE,
            "--family=%s takes --estimator=stein only (the hessian estimator needs d x d "
            "Hessians)", f->name);
  GFV_CHECK(strcmp(layout, "params") != 0, GFV_ERR_USAGE,
            "--family=%s runs the samples layout only (use --layout=auto or samples)", f->name);
  return GFV_OK;
}
