/* psis.h - Pareto-smoothed importance sampling diagnostics (Vehtari, Simpson, Gelman, Yao
 * and Gabry, "Pareto smoothed importance sampling", JMLR 2024; the loo R package).
 *
 * Given log importance ratios lr_i = l(z_i) - log q(z_i) of n draws z_i ~ q:
 *  - the importance-weighted log evidence  log (1/n) sum_i exp(lr_i)  (a stochastic lower
 *    bound on log Z in expectation, tighter than the ELBO), with its delta-method standard
 *    error  sd(w) / (sqrt(n) mean(w)),  w_i = exp(lr_i);
 *  - k-hat: the shape of a generalized Pareto distribution fitted to the M largest ratios,
 *    M = ceil(min(n / 5, 3 sqrt(n))), by the Zhang and Stephens (2009) empirical-Bayes
 *    estimator with the weakly informative prior adjustment k <- (M k + 5) / (M + 10);
 *    exactly the loo package's gpdfit (30 + floor(sqrt(M)) grid points, prior 3).
 *    Reading: k-hat < 0.5 fine, 0.5 to 0.7 usable, > 0.7 do not trust importance-sampling
 *    (or variational) expectations from this q;
 *  - optionally the Pareto-smoothed log weights: the M tail ratios replaced by the
 *    expected order statistics of the fitted GPD, then all truncated at the largest raw
 *    ratio (the loo package's psis_smooth_tail and truncation).
 *
 * Stratified draws (each mixture component contributing N/K draws, as in the final
 * evaluation) are iid draws from q_rho only when the weights are equal; with unequal
 * weights w_k, pass lr_i + log(K w_k) for a draw of component k.
 *
 * Not collective: call it on one rank with all n ratios. */
#ifndef GFLOWVI_PSIS_H
#define GFLOWVI_PSIS_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <stddef.h>

typedef struct {
  double khat;          /* Pareto k-hat; -INFINITY when the M largest ratios are all equal
                           (no tail at all: a perfect fit); NAN when M < 5 (n <= 20) */
  double sigma;         /* scale of the fitted GPD, in units of exp(max ratio) */
  size_t tail;          /* M, the number of ratios in the fitted tail (0 when n <= 20) */
  double log_evidence;  /* log (1/n) sum exp(lr_i) */
  double log_evidence_se; /* its delta-method standard error */
  double ess;           /* (sum w)^2 / sum w^2 of the smoothed weights (of the raw ones when
                           no tail was fitted), between 1 and n */
  size_t n_neg_inf;     /* ratios equal to -INFINITY (zero target density: zero weight) */
} gfv_psis_result;

/* The diagnostics of n >= 1 log ratios.  smoothed (n values, or NULL) receives the
 * smoothed log weights (same shift as lr: unnormalised).  -INFINITY ratios are allowed
 * (weight 0); NaN or +INFINITY is GFV_ERR_NUMERIC, as is an all -INFINITY input.
 * Allocates O(n) scratch (GFV_ERR_MEMORY). */
int gfv_psis(size_t n, const double *lr, double *smoothed, gfv_psis_result *res);

/* The loo package's gpdfit on x (m values sorted ascending, all >= 0): the Zhang-Stephens
 * estimate of the GPD shape k (with the prior adjustment when wip is non-zero) and scale
 * sigma.  Exposed for the tests.  Returns GFV_OK or GFV_ERR_MEMORY. */
int gfv_gpdfit(size_t m, const double *x, int wip, double *k, double *sigma);

#pragma GCC visibility pop

#endif
