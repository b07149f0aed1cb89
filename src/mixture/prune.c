/* prune.c - the bounds behind the fused kernel's exact pruning (prune.h, docs/pruning.md). */
#include "mixture/prune.h"

#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

int gfv_prune_eig(size_t d, const double *P, double *work, double *lmin, double *lmax) {
  double *a = work, *w = work + d * d, *wk = w + d;
  memcpy(a, P, d * d * sizeof(double));
  /* P is symmetric: its row-major lower triangle is the column-major upper one, and the
   * column-major call makes no transposed copy. */
  lapack_int info = LAPACKE_dsyev_work(LAPACK_COL_MAJOR, 'N', 'U', (lapack_int)d, a, (lapack_int)d, w, wk,
                                       (lapack_int)(3 * d));
  double top = fabs(w[d - 1]) > fabs(w[0]) ? fabs(w[d - 1]) : fabs(w[0]);
  if (info != 0 || !isfinite(top)) {
    *lmin = 0.0, *lmax = INFINITY;
    return 1;
  }
  /* The computed eigenvalues are exact for a matrix within a small multiple of
   * eps |P|_2 of P; 16 d eps |P|_2 covers that with room to spare. */
  double err = 16.0 * (double)d * DBL_EPSILON * top;
  *lmin = w[0] - err > 0 ? w[0] - err : 0.0;
  *lmax = w[d - 1] + err;
  return 0;
}

double gfv_prune_ball(size_t d, size_t n, const double *z, const unsigned char *skip, double *centre) {
  size_t m = 0;
  memset(centre, 0, d * sizeof(double));
  for (size_t i = 0; i < n; i++) {
    if (skip && skip[i]) continue;
    for (size_t t = 0; t < d; t++) centre[t] += z[i * d + t];
    m++;
  }
  if (!m) return -1.0;
  for (size_t t = 0; t < d; t++) centre[t] /= (double)m;
  double r2 = 0.0;
  for (size_t i = 0; i < n; i++) {
    if (skip && skip[i]) continue;
    double s = 0.0;
    for (size_t t = 0; t < d; t++) s += (z[i * d + t] - centre[t]) * (z[i * d + t] - centre[t]);
    r2 = s > r2 ? s : r2;
  }
  /* Rounding of the sums above: a relative 1e-12 is far beyond it. */
  return sqrt(r2) * (1.0 + 1e-12) + 1e-300;
}

double gfv_prune_upper(size_t d, const double *mu, double logc, double lmin, const double *centre,
                       double radius, double *t0) {
  /* Four partial sums: independent chains (this runs K times per tile). */
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  size_t t = 0;
  for (; t + 4 <= d; t += 4) {
    double e0 = mu[t] - centre[t], e1 = mu[t + 1] - centre[t + 1];
    double e2 = mu[t + 2] - centre[t + 2], e3 = mu[t + 3] - centre[t + 3];
    s0 += e0 * e0, s1 += e1 * e1, s2 += e2 * e2, s3 += e3 * e3;
  }
  for (; t < d; t++) s0 += (mu[t] - centre[t]) * (mu[t] - centre[t]);
  double gap = sqrt((s0 + s1) + (s2 + s3)) * (1.0 - 1e-12) - radius;
  *t0 = gap > 0 ? lmin * gap * gap * (1.0 - 1e-12) : 0.0;
  return logc - 0.5 * *t0;
}

double gfv_prune_factor(double t0, double lmax, double lref) {
  double poly = 1.0 + t0 > 2.0 ? 1.0 + t0 : 2.0;
  double ratio = lref > 0 && lmax > lref ? lmax / lref : 1.0;
  return log(poly) + log(ratio);
}

double gfv_prune_threshold(double lower, size_t K) {
  return lower + log(DBL_EPSILON / 2) - log((double)(K ? K : 1)) - 1.0;
}
