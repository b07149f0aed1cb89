/* linalg.c - Cholesky, inverse and reduction helpers (see linalg.h). */
#include "linalg.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

int gfv_chol(size_t d, double *A) {
  for (size_t i = 0; i < d * d; i++)
    if (!isfinite(A[i])) return 1;
  /* Column-major 'U' on a row-major array is the row-major lower factor. */
  lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', (lapack_int)d, A, (lapack_int)d);
  if (info != 0) return info > 0 ? (int)info : 1;
  for (size_t i = 0; i < d; i++)
    for (size_t j = i + 1; j < d; j++) A[i * d + j] = 0.0;
  return 0;
}

int gfv_chol_inverse(size_t d, const double *L, double *inv) {
  memcpy(inv, L, d * d * sizeof *inv);
  lapack_int info = LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'U', (lapack_int)d, inv, (lapack_int)d);
  if (info != 0) return (int)info;
  gfv_fill_upper_from_lower(d, inv);
  return 0;
}

double gfv_chol_logdet_half(size_t d, const double *L) {
  double s = 0.0;
  for (size_t i = 0; i < d; i++) s += log(L[i * d + i]);
  return s;
}

void gfv_symmetrize(size_t d, double *A) {
  for (size_t i = 0; i < d; i++)
    for (size_t j = i + 1; j < d; j++) {
      double v = 0.5 * (A[i * d + j] + A[j * d + i]);
      A[i * d + j] = A[j * d + i] = v;
    }
}

void gfv_fill_upper_from_lower(size_t d, double *A) {
  for (size_t i = 0; i < d; i++)
    for (size_t j = i + 1; j < d; j++) A[i * d + j] = A[j * d + i];
}

double gfv_logsumexp(size_t n, const double *x, size_t stride) {
  double m = -INFINITY;
  for (size_t i = 0; i < n; i++)
    if (x[i * stride] > m) m = x[i * stride];
  if (!isfinite(m)) return m; /* all -inf, or +inf / NaN present */
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += exp(x[i * stride] - m);
  return m + log(s);
}

double gfv_logaddexp(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

double gfv_sqdist(size_t n, const double *a, const double *b) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) {
    double t = a[i] - b[i];
    s += t * t;
  }
  return s;
}
