/* linalg.h - small dense linear-algebra helpers over row-major d x d matrices.
 *
 * The Cholesky routines call LAPACK's column-major kernels directly on our row-major
 * arrays (a row-major lower triangle is a column-major upper triangle), which avoids the
 * transposed copy, and so the allocation, that LAPACKE's row-major wrappers make. */
#ifndef GFLOWVI_LINALG_H
#define GFLOWVI_LINALG_H

#include <stddef.h>

/* In place: A (symmetric) <- L, its lower Cholesky factor, upper part zeroed.
 * Returns 0, or a positive value when A is not (numerically) positive definite or has
 * non-finite entries; records no error, so callers may treat failure as a rejected step. */
int gfv_chol(size_t d, double *A);

/* inv <- A^{-1} from L (A = L L^T), both triangles filled.  Returns 0 or LAPACK's info. */
int gfv_chol_inverse(size_t d, const double *L, double *inv);

/* sum_i log L[i][i] = 1/2 log det(L L^T). */
double gfv_chol_logdet_half(size_t d, const double *L);

/* A <- (A + A^T) / 2. */
void gfv_symmetrize(size_t d, double *A);

/* Copies the lower triangle onto the upper one. */
void gfv_fill_upper_from_lower(size_t d, double *A);

/* log sum_i exp(x[i*stride]), stable; -inf for n = 0 or all -inf. */
double gfv_logsumexp(size_t n, const double *x, size_t stride);

/* log(exp(a) + exp(b)), stable. */
double gfv_logaddexp(double a, double b);

/* Frobenius-style sum of squares of a - b over n entries. */
double gfv_sqdist(size_t n, const double *a, const double *b);

#endif
