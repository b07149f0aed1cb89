/* prune.h - exact pruning of (point, component) pairs in the fused kernel (docs/pruning.md).
 *
 * A pair is pruned when a bound shows that its responsibility, times the polynomial factors
 * the gradient and Hessian terms multiply it by, is below the rounding error the unpruned
 * sums already carry.  Bounds are per tile: a ball (centre, radius R) around a few points
 * against one component j, from the smallest eigenvalue lmin_j of its precision:
 *   a_ij = logc_j - (z - mu_j)^T P_j (z - mu_j) / 2 <= logc_j - t0 / 2,
 *   t0 = lmin_j max(0, |mu_j - centre| - R)^2   for every z in the ball. */
#ifndef GFLOWVI_PRUNE_H
#define GFLOWVI_PRUNE_H

#include <stddef.h>

/* Scratch of gfv_prune_eig: d d + 4 d numbers. */
#define GFV_PRUNE_EIG_WORK(d) ((d) * (d) + 4 * (d))

/* A lower bound of the smallest and an upper bound of the largest eigenvalue of the
 * symmetric d x d matrix P (LAPACK's eigenvalues, widened by their backward error).
 * Returns 0, or nonzero when LAPACK fails (then lmin = 0, lmax = +inf: nothing pruned). */
int gfv_prune_eig(size_t d, const double *P, double *work, double *lmin, double *lmax);

/* The ball of the points z (n x d) whose skip flag is clear (skip may be NULL): centre
 * (d) their mean, returned radius an upper bound of their distance to it; -1 when every
 * point is skipped. */
double gfv_prune_ball(size_t d, size_t n, const double *z, const unsigned char *skip, double *centre);

/* The bound above for one component: returns logc - t0 / 2 and sets *t0. */
double gfv_prune_upper(size_t d, const double *mu, double logc, double lmin, const double *centre,
                       double radius, double *t0);

/* The log of the factor a pruned term's responsibility is multiplied by, over the bound:
 * max(2, 1 + t0) (the largest (1 + t) e^{-(t - t0)/2} for t >= t0) times lmax / lref, so
 * that bound + this factor covers r_ij (|g_ij|^2 + |P_j|) / lref. */
double gfv_prune_factor(double t0, double lmax, double lref);

/* log q(z) can only exceed a_ij; keep the pair unless
 *   bound + factor < lower + log(2^-53) - log(K) - 1. */
double gfv_prune_threshold(double lower, size_t K);

#endif
