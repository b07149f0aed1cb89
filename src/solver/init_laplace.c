/* init_laplace.c - the Gaussians of the mode search (init_mode.c): minus the Hessian of
 * the log density (the target's own, or central differences of its gradient), the clipped
 * Laplace covariance from it, and the Monte Carlo ELBO of a Gaussian.  See init.h. */
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "solver/init.h"

#define INIT_VAR_LO 1e-8 /* clipped variances: [LO, HI] x s0^2 */
#define INIT_VAR_HI 1e4

int gfv_init_neg_hessian(const gfv_target *t, const double *z, int force_fd, double *H) {
  const size_t d = t->dim;
  double *pts = NULL, *lp = NULL, *g = NULL;
  int st = GFV_OK;
  if (t->has_hessian && !force_fd) {
    double l;
    GFV_CALL(gfv_calloc(&g, d, sizeof(double)));
    GFV_CALL_GOTO(st, gfv_target_eval(t, 1, z, &l, g, H), done);
    for (size_t i = 0; i < d * d; i++) H[i] = -H[i];
    gfv_symmetrize(d, H);
    goto done;
  }
  /* Central differences of the gradient, step eps^(1/3) max(1, |z_b|) (the error balance
   * of a central difference), at the 2d points z +- h_b e_b in one block call. */
  GFV_CALL_GOTO(st, gfv_calloc(&pts, 2 * d * d, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&lp, 2 * d, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&g, 2 * d * d, sizeof(double)), done);
  const double h0 = cbrt(DBL_EPSILON);
  for (size_t b = 0; b < d; b++) {
    double h = h0 * fmax(1.0, fabs(z[b]));
    memcpy(pts + 2 * b * d, z, d * sizeof(double));
    memcpy(pts + (2 * b + 1) * d, z, d * sizeof(double));
    pts[2 * b * d + b] += h;
    pts[(2 * b + 1) * d + b] -= h;
  }
  GFV_CALL_GOTO(st, gfv_target_eval(t, 2 * d, pts, lp, g, NULL), done);
  for (size_t b = 0; b < d; b++) {
    /* The step as represented, so rounding of z +- h does not bias the quotient. */
    double span = pts[2 * b * d + b] - pts[(2 * b + 1) * d + b];
    for (size_t a = 0; a < d; a++)
      H[a * d + b] = -(g[2 * b * d + a] - g[(2 * b + 1) * d + a]) / span;
  }
  gfv_symmetrize(d, H);
done:
  free(pts), free(lp), free(g);
  return st;
}

int gfv_init_laplace(size_t d, const double *H, double s0, double *cov, double *root,
                     double *logdet, double *work) {
  for (size_t i = 0; i < d * d; i++)
    if (!isfinite(H[i])) return 1;
  double *V = work, *lam = work + d * d;
  memcpy(V, H, d * d * sizeof(double));
  /* H is symmetric, so column-major is the same matrix; the eigenvectors come back as the
   * columns of a column-major V, i.e. row j of our row-major V is eigenvector j. */
  if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)d, V, (lapack_int)d, lam) != 0) return 1;
  const double s2 = s0 * s0, lo = INIT_VAR_LO * s2, hi = INIT_VAR_HI * s2;
  double ld = 0.0;
  for (size_t j = 0; j < d; j++) {
    double v = lam[j] > 0.0 ? fmin(fmax(1.0 / lam[j], lo), hi) : s2;
    ld += log(v);
    for (size_t i = 0; i < d; i++) root[i * d + j] = V[j * d + i] * sqrt(v);
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)d, 1.0, root, (int)d,
              root, (int)d, 0.0, cov, (int)d);
  gfv_symmetrize(d, cov);
  *logdet = ld;
  return 0;
}

int gfv_init_gaussian_elbo(const gfv_target *t, size_t M, const double *eps, const double *m,
                           const double *root, double logdet, double *z, double *lp, double *elbo,
                           long *evals) {
  const size_t d = t->dim;
  *elbo = -INFINITY;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)d, (int)d, 1.0, eps, (int)d,
              root, (int)d, 0.0, z, (int)d);
  for (size_t i = 0; i < M; i++)
    for (size_t a = 0; a < d; a++) z[i * d + a] += m[a];
  GFV_CALL(gfv_target_eval(t, M, z, lp, NULL, NULL));
  *evals = (long)M;
  double sum = 0.0;
  for (size_t i = 0; i < M; i++) {
    if (!isfinite(lp[i])) return GFV_OK;
    sum += lp[i];
  }
  *elbo = sum / (double)M + 0.5 * ((double)d * (1.0 + log(2.0 * M_PI)) + logdet);
  return GFV_OK;
}
