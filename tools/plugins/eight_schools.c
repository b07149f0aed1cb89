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
 * Named outputs (the optional hooks of plugin.h, as a Stan model has them): mu, tau, then
 * theta[1..J] (centred: parameters) or eta[1..J] and the transformed parameters
 * theta[j] = mu + tau eta_j (non-centred), then the generated quantities
 * y_rep[j] ~ N(theta_j, sigma_j^2), drawn from the seed gflowvi passes for the draw.
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

#define NAME_LEN 24
typedef struct {
  int noncentered, halfnormal; /* tau's prior: HalfCauchy(0, tau_scale) or HalfNormal */
  int J;
  double y[JMAX], sigma[JMAX], s0, tau_scale;
  char names[2 + 3 * JMAX][NAME_LEN]; /* the outputs' names (gfv_plugin_output_names) */
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

/* ---- named outputs -------------------------------------------------------------------- */

size_t gfv_plugin_num_outputs(void *state) {
  const model *m = state;
  return (size_t)(2 + (m->noncentered ? 3 : 2) * m->J);
}

int gfv_plugin_output_names(void *state, const char **names) {
  model *m = state;
  const int J = m->J, nc = m->noncentered;
  snprintf(m->names[0], NAME_LEN, "mu");
  snprintf(m->names[1], NAME_LEN, "tau");
  for (int j = 0; j < J; j++) {
    snprintf(m->names[2 + j], NAME_LEN, "%s[%d]", nc ? "eta" : "theta", j + 1);
    if (nc) snprintf(m->names[2 + J + j], NAME_LEN, "theta[%d]", j + 1);
    snprintf(m->names[2 + (nc ? 2 : 1) * J + j], NAME_LEN, "y_rep[%d]", j + 1);
  }
  for (size_t k = 0; k < gfv_plugin_num_outputs(state); k++) names[k] = m->names[k];
  return 0;
}

int gfv_plugin_output_groups(void *state, int *group) {
  const model *m = state;
  const int J = m->J, nc = m->noncentered;
  for (int k = 0; k < 2 + J; k++) group[k] = 0;
  for (int j = 0; j < J; j++) {
    if (nc) group[2 + J + j] = 1;
    group[2 + (nc ? 2 : 1) * J + j] = 2;
  }
  return 0;
}

int gfv_plugin_dim_names(void *state, const char **names) {
  const char *out[2 + 3 * JMAX];
  int rc = gfv_plugin_output_names(state, out);
  for (int a = 0; a < ((model *)state)->J + 2; a++) names[a] = out[a]; /* tau for log tau */
  return rc;
}

/* splitmix64, and a normal draw by Box-Muller: y_rep depends on (z, seed) alone. */
static double uniform01(unsigned long *x) {
  unsigned long z = (*x += 0x9E3779B97F4A7C15UL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
  z ^= z >> 31;
  return ((double)(z >> 11) + 0.5) / 9007199254740992.0; /* in (0, 1) */
}

int gfv_plugin_write_array(void *state, const double *z, double *out, unsigned long seed) {
  const model *m = state;
  const int J = m->J, nc = m->noncentered;
  const double mu = z[0], tau = exp(z[1]);
  out[0] = mu, out[1] = tau;
  for (int j = 0; j < J; j++) {
    double theta = nc ? mu + tau * z[2 + j] : z[2 + j];
    out[2 + j] = z[2 + j];
    if (nc) out[2 + J + j] = theta;
    double u1 = uniform01(&seed), u2 = uniform01(&seed);
    out[2 + (nc ? 2 : 1) * J + j] = theta + m->sigma[j] * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
  }
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
