/* trust_region.c - how far one iteration may move one component: the KL divergence
 * between a component's new and old Gaussian, and the step that keeps it inside a bound.
 *
 * Why KL: it is invariant to the parameterisation and to the target's scale, so one bound
 * (--trust-region, in nats) means the same thing for every component, flow and family;
 * VIPS and gmmvi bound their per-component updates the same way.  A flow's step is a
 * function of eta alone (the Monte Carlo estimates are fixed within an iteration), so a
 * step that leaves the region is shortened by shrinking that component's eta until
 *   KL(q_new || q_old) <= eps.
 * KL -> 0 as eta -> 0, so the search always ends; it is not monotone in eta for large eta
 * (NGFlow-VI's mean step shrinks again once the quadratic precision term dominates), which
 * is why it only ever shrinks from the step the schedule asked for. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/optdef.h"
#include "flows/flow.h"
#include "linalg/linalg.h"

double gfv_kl_gauss(size_t d, const double *mu_new, const double *L_new, const double *mu_old,
                    const double *L_old, double *work, double *maha) {
  const int n = (int)d;
  /* tr(P_old Sigma_new) = ||L_new^{-1} L_old||_F^2, with P = L L^T. */
  double *X = work, *dm = work + d * d;
  memcpy(X, L_old, d * d * sizeof(double));
  cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n, n, 1.0, L_new, n, X,
              n);
  double tr = cblas_ddot(n * n, X, 1, X, 1);
  /* (mu_new - mu_old)^T P_old (mu_new - mu_old) = ||L_old^T dmu||^2. */
  for (size_t t = 0; t < d; t++) dm[t] = mu_new[t] - mu_old[t];
  cblas_dtrmv(CblasRowMajor, CblasLower, CblasTrans, CblasNonUnit, n, L_old, n, dm, 1);
  double m2 = cblas_ddot(n, dm, 1, dm, 1);
  if (maha) *maha = sqrt(m2);
  /* log det Sigma_old - log det Sigma_new = log det P_new - log det P_old. */
  double ld = 2.0 * (gfv_chol_logdet_half(d, L_new) - gfv_chol_logdet_half(d, L_old));
  double kl = 0.5 * (tr - (double)d + m2 + ld);
  return kl > 0 ? kl : 0.0; /* rounding below 0 for tiny steps */
}

double gfv_kl_gauss_diag(size_t d, const double *mu_new, const double *p_new, const double *mu_old,
                         const double *p_old, double *maha) {
  double kl = 0.0, m2 = 0.0;
  for (size_t t = 0; t < d; t++) {
    double r = p_old[t] / p_new[t], dm = mu_new[t] - mu_old[t];
    /* r - 1 - log r loses every digit for r near 1; log1p keeps them. */
    double x = r - 1.0;
    kl += x - log1p(x);
    m2 += p_old[t] * dm * dm;
  }
  if (maha) *maha = sqrt(m2);
  kl = 0.5 * (kl + m2);
  return kl > 0 ? kl : 0.0;
}

int gfv_factor_is_sane(size_t d, const double *L, int diag) {
  const size_t stride = diag ? 1 : d + 1;
  double lo = INFINITY, hi = 0.0;
  for (size_t t = 0; t < d; t++) {
    double v = L[t * stride];
    if (!(v > 0) || !isfinite(v)) return 0;
    lo = fmin(lo, v), hi = fmax(hi, v);
  }
  /* L_ii are the square roots of the precision's pivots: a ratio of GFV_MAX_SCALE_RATIO
   * between standard deviations means cond(P) near 1e16, where every later solve with this
   * factor has lost all its digits; the absolute bounds keep log det and the samples finite. */
  return hi / lo <= GFV_MAX_SCALE_RATIO && lo >= 1e-150 && hi <= 1e150;
}

double gfv_trust_region_shrink(double kl, double eps) {
  /* KL grows like eta^2 for small steps: aim just inside the bound, but never cut by less
   * than half (the step may be far from that regime) nor by more than 1000 per try. */
  double f = 0.95 * sqrt(eps / kl);
  return f > 0.5 ? 0.5 : f < 1e-3 ? 1e-3 : f;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option step_options[] = {
    {.name = "step", .type = OPT_DOUBLE, OPT_FIELD(step), .def = "0.05", .bound = BOUND_GT, .lo = 0,
     .role = ROLE_RUN,
     .help = "step size eta"},
    {.name = "weight-step", .type = OPT_DOUBLE, OPT_FIELD(weight_step), .def = "0",
     .role = ROLE_RUN,
     .bound = BOUND_GE, .lo = 0,
     .help = "step size of the mixture-weight flow; 0 = equal weights (the paper's method)"},
    {.name = "trust-region", .type = OPT_DOUBLE, OPT_FIELD(trust_region), .def = "0.5",
     .bound = BOUND_GE, .lo = 0,
     .role = ROLE_RUN,
     .help = "bound, in nats, on KL(new || old) of each component in one iteration (times d/10 "
             "above 10 dimensions): a step that would move a component further is shortened for "
             "that component alone; the bound adapts per component (halved when the "
             "component's objective got worse, grown back when not); 0 = no bound (the paper's "
             "plain steps)"},
};
GFV_OPTION_TABLE(gfv_options_step, step_options);
