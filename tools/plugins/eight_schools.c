/* eight_schools.c - hierarchical normal models as a gflowvi plugin
 * (include/gflowvi/plugin.h): models of the kind users write, not ones the method was
 * designed on, used by the tests of default settings (tests/cli/test_hierarchical.sh).
 *
 *   mu ~ N(0, s0^2),  tau ~ prior,  theta_j ~ N(mu, tau^2),  y_j ~ N(theta_j, sigma_j^2),  j = 1..J
 *
 * Data sets (--plugin-arg):
 *   schools (default)  eight schools (Rubin 1981): y = 28 8 -3 7 -1 1 18 12,
 *                      sigma = 15 10 16 11 9 11 10 18; s0 = 5, tau ~ HalfCauchy(0, 5); d = 10
 *   effects            a random-effects model with a sharp funnel: J = 16 groups of well
 *                      measured effects close together (y_j = 0.3 sin(j), sigma_j = 0.25 +
 *                      0.05 j), s0 = 10, tau ~ HalfNormal(0, 1); d = 18.  The data pull tau
 *                      towards 0, where the centred posterior is a narrow funnel.
 * Unconstrained coordinates, u = log tau with its log-Jacobian u:
 *   centered (default):  z = (mu, u, theta_1..theta_J)
 *   noncentered:         z = (mu, u, eta_1..eta_J),  theta_j = mu + tau eta_j,  eta_j ~ N(0, 1)
 * Every density is normalised, so both share the normaliser of the posterior,
 *   log Z = log int int N(mu; 0, s0^2) p(tau) prod_j N(y_j; mu, sigma_j^2 + tau^2) dmu dtau
 * (eight schools: -31.311; tools/plugins/eight_schools_logz.py computes it by quadrature),
 * and the ELBO of a fit can be compared with it.  The centred density has no mode (it grows
 * without bound as tau -> 0 with theta_j = mu: the funnel), the non-centred one has one.
 *
 * Arguments: centered | noncentered, schools | effects.  Gradient and Hessian are exact
 * (tests/unit/test_plugins.c checks them against finite differences).  Built without the
 * Hessian (-DHIER_NO_HESSIAN, build/plugins/eight_schools_nohess.so) it is the model as a
 * user writes it first, with gradients only (the stein estimator).
 *   cc -O2 -fPIC -shared -Iinclude -o build/plugins/eight_schools.so tools/plugins/eight_schools.c -lm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/plugin.h"

#define JMAX 16
#define DMAX (JMAX + 2)

static const double schools_y[8] = {28, 8, -3, 7, -1, 1, 18, 12};
static const double schools_sigma[8] = {15, 10, 16, 11, 9, 11, 10, 18};

typedef struct {
  int noncentered, halfnormal; /* tau's prior: HalfCauchy(0, tau_scale) or HalfNormal */
  int J;
  double y[JMAX], sigma[JMAX], s0, tau_scale;
} model;

static void use_data(model *m, int effects) {
  if (!effects) {
    m->J = 8, m->s0 = 5, m->tau_scale = 5, m->halfnormal = 0;
    memcpy(m->y, schools_y, sizeof schools_y);
    memcpy(m->sigma, schools_sigma, sizeof schools_sigma);
    return;
  }
  m->J = 16, m->s0 = 10, m->tau_scale = 1, m->halfnormal = 1;
  for (int j = 0; j < m->J; j++) m->y[j] = 0.3 * sin(j + 1.0), m->sigma[j] = 0.25 + 0.05 * (j + 1);
}

int gfv_plugin_abi_version(void) { return GFV_PLUGIN_ABI_VERSION; }

int gfv_plugin_init(int argc, const char *const *argv, void **state, char *err, size_t errlen) {
  model *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errlen, "out of memory");
    return 1;
  }
  use_data(m, 0);
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "centered") == 0) m->noncentered = 0;
    else if (strcmp(argv[i], "noncentered") == 0) m->noncentered = 1;
    else if (strcmp(argv[i], "schools") == 0) use_data(m, 0);
    else if (strcmp(argv[i], "effects") == 0) use_data(m, 1);
    else {
      snprintf(err, errlen, "unknown argument '%s' (use centered, noncentered, schools, effects)",
               argv[i]);
      free(m);
      return 1;
    }
  }
  *state = m;
  return 0;
}

void gfv_plugin_destroy(void *state) { free(state); }

size_t gfv_plugin_dim(void *state) { return (size_t)((model *)state)->J + 2; }

int gfv_plugin_normalized(void *state) {
  (void)state;
  return 0; /* normalised densities, but of the joint: exp(l) integrates to Z, not 1 */
}

/* log N(mu; 0, s0^2) + log p(tau = e^u) + u, and its derivatives in (mu, u), with
 * c = (tau / scale)^2: HalfCauchy log p = log(2 / (pi scale)) - log(1 + c),
 * HalfNormal log p = log(2 / (sqrt(2 pi) scale)) - c / 2. */
static double hyperprior(const model *m, double mu, double u, double *dmu, double *du, double *duu) {
  const double s0 = m->s0, a = m->tau_scale, c = exp(2 * u) / (a * a);
  double lp_tau;
  *dmu = -mu / (s0 * s0);
  if (m->halfnormal) {
    lp_tau = log(2.0 / (sqrt(2 * M_PI) * a)) - 0.5 * c;
    *du = 1.0 - c;
    *duu = -2 * c;
  } else {
    lp_tau = log(2.0 / (M_PI * a)) - log1p(c);
    *du = 1.0 - 2 * c / (1 + c);
    *duu = -4 * c / ((1 + c) * (1 + c));
  }
  return -0.5 * mu * mu / (s0 * s0) - 0.5 * log(2 * M_PI * s0 * s0) + lp_tau + u;
}

static double centered(const model *m, const double *z, double *g, double *H) {
  const int D = m->J + 2;
  const double mu = z[0], u = z[1], e2 = exp(-2 * u);
  double lp = hyperprior(m, mu, u, &g[0], &g[1], &H[1 * D + 1]);
  H[0] = -1.0 / (m->s0 * m->s0);
  for (int j = 0; j < m->J; j++) {
    const double th = z[2 + j], dt = th - mu, s2 = m->sigma[j] * m->sigma[j], y = m->y[j];
    lp += -0.5 * log(2 * M_PI) - u - 0.5 * dt * dt * e2;
    lp += -0.5 * log(2 * M_PI * s2) - 0.5 * (y - th) * (y - th) / s2;
    g[0] += dt * e2;
    g[1] += -1.0 + dt * dt * e2;
    g[2 + j] = -dt * e2 + (y - th) / s2;
    H[0] -= e2;
    H[0 * D + 1] -= 2 * dt * e2;
    H[0 * D + 2 + j] = e2;
    H[1 * D + 1] -= 2 * dt * dt * e2;
    H[1 * D + 2 + j] = 2 * dt * e2;
    H[(2 + j) * D + 2 + j] = -e2 - 1.0 / s2;
  }
  return lp;
}

static double noncentered(const model *m, const double *z, double *g, double *H) {
  const int D = m->J + 2;
  const double mu = z[0], u = z[1], tau = exp(u);
  double lp = hyperprior(m, mu, u, &g[0], &g[1], &H[1 * D + 1]);
  H[0] = -1.0 / (m->s0 * m->s0);
  for (int j = 0; j < m->J; j++) {
    const double eta = z[2 + j], s2 = m->sigma[j] * m->sigma[j];
    const double r = (m->y[j] - mu - tau * eta) / s2; /* d/dtheta of the likelihood */
    lp += -0.5 * log(2 * M_PI) - 0.5 * eta * eta;
    lp += -0.5 * log(2 * M_PI * s2) - 0.5 * r * r * s2;
    g[0] += r;
    g[1] += r * tau * eta;
    g[2 + j] = -eta + r * tau;
    H[0] -= 1.0 / s2;
    H[0 * D + 1] -= tau * eta / s2;
    H[0 * D + 2 + j] = -tau / s2;
    H[1 * D + 1] += r * tau * eta - tau * eta * tau * eta / s2;
    H[1 * D + 2 + j] = tau * r - tau * tau * eta / s2;
    H[(2 + j) * D + 2 + j] = -1.0 - tau * tau / s2;
  }
  return lp;
}

/* One point: log density, gradient (D) and Hessian (D x D, both triangles). */
static double eval_point(const model *m, const double *z, double *g, double *H) {
  const int D = m->J + 2;
  memset(H, 0, (size_t)(D * D) * sizeof(double));
  double lp = m->noncentered ? noncentered(m, z, g, H) : centered(m, z, g, H);
  for (int a = 0; a < D; a++)
    for (int b = 0; b < a; b++) H[a * D + b] = H[b * D + a];
  return isnan(lp) ? -INFINITY : lp;
}

int gfv_plugin_logdensity(void *state, size_t n, size_t d, const double *z, double *logp,
                          double *grad) {
  const model *m = state;
  double H[DMAX * DMAX];
  if (d != (size_t)m->J + 2) return 1;
  for (size_t i = 0; i < n; i++) logp[i] = eval_point(m, z + i * d, grad + i * d, H);
  return 0;
}

#ifndef HIER_NO_HESSIAN
int gfv_plugin_hessian(void *state, size_t n, size_t d, const double *z, double *hess) {
  const model *m = state;
  double g[DMAX];
  if (d != (size_t)m->J + 2) return 1;
  for (size_t i = 0; i < n; i++) (void)eval_point(m, z + i * d, g, hess + i * d * d);
  return 0;
}
#endif
