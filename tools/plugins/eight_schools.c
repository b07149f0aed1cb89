/* eight_schools.c - the eight-schools hierarchical model as a gflowvi plugin
 * (include/gflowvi/plugin.h): a model of the kind users write, not one the method was
 * designed on, used by the tests of default settings (tests/cli/test_hierarchical.sh).
 *
 *   mu ~ N(0, 5^2),  tau ~ HalfCauchy(0, 5),  theta_j ~ N(mu, tau^2),  y_j ~ N(theta_j, sigma_j^2)
 *
 * with the classic data (Rubin 1981): y = 28 8 -3 7 -1 1 18 12, sigma = 15 10 16 11 9 11 10 18.
 * Unconstrained coordinates, d = 10, u = log tau with its log-Jacobian u:
 *   centered:     z = (mu, u, theta_1..theta_8)
 *   noncentered:  z = (mu, u, eta_1..eta_8),  theta_j = mu + tau eta_j,  eta_j ~ N(0, 1)
 * Every density is normalised, so both share the normaliser of the posterior,
 *   log Z = log int int N(mu; 0, 25) HC(tau; 5) prod_j N(y_j; mu, sigma_j^2 + tau^2) dmu dtau
 *         = -31.311 (tools/plugins/eight_schools_logz.py computes it by quadrature),
 * and the ELBO of a fit can be compared with it.  The centred density has no mode (it grows
 * without bound as tau -> 0 with theta_j = mu: the funnel), the non-centred one has one.
 *
 * Arguments (--plugin-arg): centered (default) or noncentered.  Gradient and Hessian are
 * exact (tests/unit/test_plugins.c checks them against finite differences).
 *   cc -O2 -fPIC -shared -Iinclude -o build/plugins/eight_schools.so tools/plugins/eight_schools.c -lm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/plugin.h"

#define J 8
#define D (J + 2)

static const double y_obs[J] = {28, 8, -3, 7, -1, 1, 18, 12};
static const double sigma_obs[J] = {15, 10, 16, 11, 9, 11, 10, 18};
static const double prior_mu_sd = 5.0, cauchy_scale = 5.0;

typedef struct {
  int noncentered;
} model;

int gfv_plugin_abi_version(void) { return GFV_PLUGIN_ABI_VERSION; }

int gfv_plugin_init(int argc, const char *const *argv, void **state, char *err, size_t errlen) {
  model *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errlen, "out of memory");
    return 1;
  }
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "centered") == 0) m->noncentered = 0;
    else if (strcmp(argv[i], "noncentered") == 0) m->noncentered = 1;
    else {
      snprintf(err, errlen, "unknown argument '%s' (use centered or noncentered)", argv[i]);
      free(m);
      return 1;
    }
  }
  *state = m;
  return 0;
}

void gfv_plugin_destroy(void *state) { free(state); }

size_t gfv_plugin_dim(void *state) {
  (void)state;
  return D;
}

int gfv_plugin_normalized(void *state) {
  (void)state;
  return 0; /* normalised densities, but of the joint: exp(l) integrates to Z, not 1 */
}

/* log N(mu; 0, 5^2) + log HalfCauchy(e^u; 5) + u, its derivatives in (mu, u). */
static double hyperprior(double mu, double u, double *dmu, double *du, double *duu) {
  double c = exp(2 * u) / (cauchy_scale * cauchy_scale);
  *dmu = -mu / (prior_mu_sd * prior_mu_sd);
  *du = 1.0 - 2 * c / (1 + c);
  *duu = -4 * c / ((1 + c) * (1 + c));
  return -0.5 * mu * mu / (prior_mu_sd * prior_mu_sd) - 0.5 * log(2 * M_PI * prior_mu_sd * prior_mu_sd) +
         log(2.0 / (M_PI * cauchy_scale)) - log1p(c) + u;
}

static double centered(const double *z, double *g, double *H) {
  const double mu = z[0], u = z[1], e2 = exp(-2 * u);
  double lp = hyperprior(mu, u, &g[0], &g[1], &H[1 * D + 1]);
  H[0] = -1.0 / (prior_mu_sd * prior_mu_sd);
  for (int j = 0; j < J; j++) {
    const double th = z[2 + j], dt = th - mu, s2 = sigma_obs[j] * sigma_obs[j];
    lp += -0.5 * log(2 * M_PI) - u - 0.5 * dt * dt * e2;
    lp += -0.5 * log(2 * M_PI * s2) - 0.5 * (y_obs[j] - th) * (y_obs[j] - th) / s2;
    g[0] += dt * e2;
    g[1] += -1.0 + dt * dt * e2;
    g[2 + j] = -dt * e2 + (y_obs[j] - th) / s2;
    H[0] -= e2;
    H[0 * D + 1] -= 2 * dt * e2;
    H[0 * D + 2 + j] = e2;
    H[1 * D + 1] -= 2 * dt * dt * e2;
    H[1 * D + 2 + j] = 2 * dt * e2;
    H[(2 + j) * D + 2 + j] = -e2 - 1.0 / s2;
  }
  return lp;
}

static double noncentered(const double *z, double *g, double *H) {
  const double mu = z[0], u = z[1], tau = exp(u);
  double lp = hyperprior(mu, u, &g[0], &g[1], &H[1 * D + 1]);
  H[0] = -1.0 / (prior_mu_sd * prior_mu_sd);
  for (int j = 0; j < J; j++) {
    const double eta = z[2 + j], s2 = sigma_obs[j] * sigma_obs[j];
    const double r = (y_obs[j] - mu - tau * eta) / s2; /* d/dtheta of the likelihood */
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
  memset(H, 0, D * D * sizeof(double));
  double lp = m->noncentered ? noncentered(z, g, H) : centered(z, g, H);
  for (int a = 0; a < D; a++)
    for (int b = 0; b < a; b++) H[a * D + b] = H[b * D + a];
  return isnan(lp) ? -INFINITY : lp;
}

int gfv_plugin_logdensity(void *state, size_t n, size_t d, const double *z, double *logp,
                          double *grad) {
  double H[D * D];
  if (d != D) return 1;
  for (size_t i = 0; i < n; i++) logp[i] = eval_point(state, z + i * D, grad + i * D, H);
  return 0;
}

int gfv_plugin_hessian(void *state, size_t n, size_t d, const double *z, double *hess) {
  double g[D];
  if (d != D) return 1;
  for (size_t i = 0; i < n; i++) (void)eval_point(state, z + i * D, g, hess + i * D * D);
  return 0;
}
