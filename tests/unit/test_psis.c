/* test_psis.c - Pareto-smoothed importance sampling (include/gflowvi/psis.h) on cases with
 * known answers:
 *  - equal ratios (a perfect fit): k-hat = -inf, log evidence exact, ESS = n, nothing smoothed;
 *  - ratios drawn from a generalized Pareto distribution of shape k = 0.5 and 0.8 (their
 *    tail beyond any threshold is again GPD with the same k): k-hat close to k;
 *  - a light-tailed case (a Student-t proposal for a Gaussian target: bounded ratios):
 *    k-hat < 0.5; a too-narrow Gaussian proposal for a Student-t target (unbounded ratios,
 *    infinite variance): k-hat > 0.7 on average;
 *  - the log evidence of a normalised target under a wider proposal: 0 within 4 standard
 *    errors, and the standard error close to its exact value;
 *  - the smoothed weights keep the order of the raw ones, never exceed the largest raw one,
 *    and leave the body untouched; bad input is refused.
 * Draws come from fixed seeds; the tolerances are justified where they are set. */
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "gflowvi/psis.h"
#include "harness.h"
#include "rng/rng.h"

static gsl_rng *rng_new(unsigned long seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  return r;
}

/* log of n GPD(k, sigma = 1) draws by inversion: x = (U^{-k} - 1) / k. */
static void gpd_log_draws(gsl_rng *r, size_t n, double k, double *lr) {
  for (size_t i = 0; i < n; i++) {
    double u = gsl_rng_uniform_pos(r);
    lr[i] = log(expm1(-k * log(u)) / k);
  }
}

static void test_equal_ratios(void) {
  enum { N = 1000 };
  double lr[N], sm[N];
  for (size_t i = 0; i < N; i++) lr[i] = 3.7;
  gfv_psis_result res;
  CHECK(gfv_psis(N, lr, sm, &res) == GFV_OK, "psis: %s", gfv_error_message());
  CHECK(res.khat == -INFINITY, "k-hat of a constant tail: %g", res.khat);
  CHECK(res.tail == 95, "tail size ceil(min(200, 3 sqrt(1000) = 94.9)) = 95, got %zu", res.tail);
  CHECK_NEAR(res.log_evidence, 3.7, 1e-14, "log evidence");
  CHECK_NEAR(res.log_evidence_se, 0.0, 1e-14, "its standard error");
  CHECK_NEAR(res.ess, (double)N, 1e-9, "ESS");
  for (size_t i = 0; i < N; i++) CHECK(sm[i] == 3.7, "smoothed[%zu] = %g", i, sm[i]);
}

/* The Zhang-Stephens estimate from M tail draws has a standard deviation of about
 * (1 + k) / sqrt(M) (the asymptotic MLE value; the empirical-Bayes estimator is close to
 * it).  With n = 20000, M = ceil(3 sqrt(n)) = 425: about 0.07 (k = 0.5) and 0.087 (k = 0.8).
 * Ten replicates: their mean has sd 0.03 at most; the check allows 0.08 (2.7 sd), and each
 * replicate 0.3 (3.4 sd).  The prior adjustment moves k by (0.5 - k) 10 / (M + 10): 0 and
 * -0.007, well inside.  An estimator wrong by 0.1 or more (a sign, the profile likelihood,
 * the grid, the threshold) fails the check on the mean. */
static void check_gpd(double k) {
  enum { N = 20000, REP = 10 };
  double *lr = malloc(N * sizeof *lr), sum = 0;
  gsl_rng *r = rng_new(1000 + (unsigned long)(10 * k));
  for (int rep = 0; rep < REP; rep++) {
    gpd_log_draws(r, N, k, lr);
    gfv_psis_result res;
    CHECK(gfv_psis(N, lr, NULL, &res) == GFV_OK, "psis: %s", gfv_error_message());
    CHECK(res.tail == 425, "tail %zu", res.tail);
    CHECK_NEAR(res.khat, k, 0.3, "one replicate's k-hat");
    sum += res.khat;
  }
  CHECK_NEAR(sum / REP, k, 0.08, "mean k-hat over replicates");
  gsl_rng_free(r);
  free(lr);
}

static void test_gpd_k05(void) { check_gpd(0.5); }
static void test_gpd_k08(void) { check_gpd(0.8); }

/* gpdfit directly on GPD draws with a known scale: sigma-hat close to sigma = 2, and k-hat
 * without the prior adjustment close to k = 0.3 (M = 5000: sd of k about 0.02, of
 * log sigma about 0.03; the checks allow 0.1 and 10%). */
static void test_gpdfit_scale(void) {
  enum { M = 5000 };
  double *x = malloc(M * sizeof *x), k, sigma;
  gsl_rng *r = rng_new(77);
  gpd_log_draws(r, M, 0.3, x);
  for (size_t i = 0; i < M; i++) x[i] = 2.0 * exp(x[i]);
  gsl_rng_free(r);
  /* sort ascending (gfv_gpdfit expects sorted input) */
  for (size_t i = 1; i < M; i++) { /* insertion sort is fine for 5000 */
    double v = x[i];
    size_t j = i;
    while (j > 0 && x[j - 1] > v) x[j] = x[j - 1], j--;
    x[j] = v;
  }
  CHECK(gfv_gpdfit(M, x, 0, &k, &sigma) == GFV_OK, "gpdfit");
  CHECK_NEAR(k, 0.3, 0.1, "k without the prior");
  CHECK_REL(sigma, 2.0, 0.1, 1.0, "sigma");
  double kw, sw;
  gfv_gpdfit(M, x, 1, &kw, &sw);
  CHECK_NEAR(kw, k * M / (M + 10.0) + 5.0 / (M + 10.0), 1e-12, "the weakly informative prior adjustment");
  free(x);
}

/* Target N(0, 1), proposal Student-t(4) scaled by 1.5: the ratio is bounded (the proposal
 * has the heavier tails), so the true k is negative; k-hat (pulled towards 0.5 by the
 * prior by at most 10/(M+10) x 0.5 ~ 0.01) must stay below 0.5. */
static void test_light_tail(void) {
  enum { N = 10000 };
  double *lr = malloc(N * sizeof *lr);
  gsl_rng *r = rng_new(5);
  const double nu = 4, s = 1.5;
  const double logc_t = lgamma((nu + 1) / 2) - lgamma(nu / 2) - 0.5 * log(nu * M_PI) - log(s);
  for (size_t i = 0; i < N; i++) {
    double g[5];
    gfv_rng_gaussian_fill(r, 5, g); /* t_4 = g0 / sqrt(chi2_4 / 4) */
    double chi = g[1] * g[1] + g[2] * g[2] + g[3] * g[3] + g[4] * g[4];
    double x = s * g[0] / sqrt(chi / nu), u = x / s;
    double logq = logc_t - (nu + 1) / 2 * log1p(u * u / nu);
    lr[i] = -0.5 * x * x - 0.5 * log(2 * M_PI) - logq;
  }
  gsl_rng_free(r);
  gfv_psis_result res;
  CHECK(gfv_psis(N, lr, NULL, &res) == GFV_OK, "psis");
  CHECK(res.khat < 0.5, "k-hat %g for bounded ratios", res.khat);
  /* the log evidence of the normalised target is 0; the ratio's variance is finite */
  CHECK(fabs(res.log_evidence) < 4 * res.log_evidence_se, "log evidence %g +- %g", res.log_evidence,
        res.log_evidence_se);
  CHECK(res.ess > 0.5 * N, "ESS %g of %d", res.ess, N);
  free(lr);
}

/* Target Student-t(2), proposal N(0, 0.5^2): the ratio grows like exp(2 x^2) / x^3 in the
 * tails, so P(w > t) ~ 1/t up to logarithmic factors: the true k is 1 (infinite variance),
 * approached slowly (the log factors bias finite-sample estimates down: 0.79 on average
 * here).  Five replicates of n = 10000: their mean must exceed 0.7 ("do not trust") and
 * each one 0.6. */
static void test_heavy_target_narrow_proposal(void) {
  enum { N = 10000, REP = 5 };
  double *lr = malloc(N * sizeof *lr), sum = 0;
  const double nu = 2, s = 0.5, logc_t = lgamma((nu + 1) / 2) - lgamma(nu / 2) - 0.5 * log(nu * M_PI);
  for (int rep = 0; rep < REP; rep++) {
    gsl_rng *r = rng_new(9 + (unsigned long)rep);
    gfv_rng_gaussian_fill(r, N, lr);
    gsl_rng_free(r);
    for (size_t i = 0; i < N; i++) {
      double x = s * lr[i];
      lr[i] = logc_t - (nu + 1) / 2 * log1p(x * x / nu) -
              (-0.5 * x * x / (s * s) - 0.5 * log(2 * M_PI) - log(s));
    }
    gfv_psis_result res;
    CHECK(gfv_psis(N, lr, NULL, &res) == GFV_OK, "psis");
    CHECK(res.khat > 0.6, "replicate %d: k-hat %g", rep, res.khat);
    sum += res.khat;
  }
  CHECK(sum / REP > 0.7, "mean k-hat %g for a too-narrow proposal", sum / REP);
  free(lr);
}

/* Target N(0, 1), proposal N(0, 2^2): w = 2 exp(-3 x^2 / 8), E_q w = 1 (log evidence 0) and
 * E_q w^2 in closed form below, so both the estimate and its standard error are known. */
static void test_log_evidence(void) {
  enum { N = 100000 };
  double *lr = malloc(N * sizeof *lr);
  gsl_rng *r = rng_new(13);
  gfv_rng_gaussian_fill(r, N, lr);
  for (size_t i = 0; i < N; i++) {
    double x = 2.0 * lr[i];
    lr[i] = (-0.5 * x * x) - (-0.5 * x * x / 4.0 - log(2.0));
  }
  gsl_rng_free(r);
  gfv_psis_result res;
  CHECK(gfv_psis(N, lr, NULL, &res) == GFV_OK, "psis");
  /* E_q[w^2] = int p(x)^2 / q(x) dx = (2 / sqrt(2 pi)) int exp(-x^2 + x^2 / 8) dx
   *          = (2 / sqrt(2 pi)) sqrt(pi / (7/8)) = 2 / sqrt(7/4) = 4 / sqrt(7), so
   * var(w) = 4 / sqrt(7) - 1 and se(log mean w) = sqrt(var / N) (mean w = 1). */
  double se = sqrt((4.0 / sqrt(7.0) - 1.0) / N);
  CHECK_REL(res.log_evidence_se, se, 0.05, 0.0, "standard error vs exact");
  CHECK(fabs(res.log_evidence) < 4 * se, "log evidence %g (se %g)", res.log_evidence, se);
  CHECK(res.khat < 0.5, "k-hat %g", res.khat);
  free(lr);
}

/* Smoothing on GPD(0.8) draws shifted by a constant: the body is untouched, the tail keeps
 * its order, nothing exceeds the largest raw ratio, and the shift carries through. */
static void test_smoothed_weights(void) {
  enum { N = 2000 };
  double *lr = malloc(N * sizeof *lr), *sm = malloc(N * sizeof *sm);
  gsl_rng *r = rng_new(21);
  gpd_log_draws(r, N, 0.8, lr);
  gsl_rng_free(r);
  for (size_t i = 0; i < N; i++) lr[i] -= 50.0;
  gfv_psis_result res;
  CHECK(gfv_psis(N, lr, sm, &res) == GFV_OK, "psis");
  double mx = -INFINITY;
  for (size_t i = 0; i < N; i++) mx = fmax(mx, lr[i]);
  /* the cutoff: the (M+1)-th largest raw ratio */
  double *sorted = malloc(N * sizeof *sorted);
  memcpy(sorted, lr, N * sizeof *sorted);
  for (size_t i = 1; i < N; i++) {
    double v = sorted[i];
    size_t j = i;
    while (j > 0 && sorted[j - 1] > v) sorted[j] = sorted[j - 1], j--;
    sorted[j] = v;
  }
  const double cutoff = sorted[N - res.tail - 1];
  size_t changed = 0;
  for (size_t i = 0; i < N; i++) {
    CHECK(sm[i] <= mx, "smoothed %g above the largest raw %g", sm[i], mx);
    if (lr[i] <= cutoff) CHECK(sm[i] == lr[i], "body ratio %zu changed", i);
    else {
      changed += sm[i] != lr[i];
      CHECK(sm[i] > cutoff - 1e-12, "tail ratio below the cutoff");
    }
    for (size_t j = 0; j < N; j += 97)
      if (lr[i] > cutoff && lr[j] > cutoff && lr[i] < lr[j]) CHECK(sm[i] <= sm[j], "order kept");
  }
  CHECK(changed > res.tail / 2, "only %zu of %zu tail ratios smoothed", changed, res.tail);
  CHECK(res.ess >= 1 && res.ess <= N, "ESS %g", res.ess);
  free(lr), free(sm), free(sorted);
}

static void test_small_and_bad_input(void) {
  double lr[30], sm[30];
  gfv_psis_result res;
  for (int i = 0; i < 21; i++) lr[i] = 0.1 * i;
  CHECK(gfv_psis(20, lr, sm, &res) == GFV_OK && isnan(res.khat) && res.tail == 0,
        "n = 20: too few for a tail (M = ceil(0.2 n) = 4 < 5): k %g tail %zu", res.khat, res.tail);
  CHECK(sm[19] == lr[19], "no smoothing without a tail");
  CHECK(gfv_psis(21, lr, sm, &res) == GFV_OK && isfinite(res.khat) && res.tail == 5,
        "n = 21: a tail of 5: k %g tail %zu", res.khat, res.tail);
  for (int i = 0; i < 30; i++) lr[i] = i < 10 ? -INFINITY : 0.01 * i;
  CHECK(gfv_psis(30, lr, NULL, &res) == GFV_OK && res.n_neg_inf == 10, "-inf ratios allowed");
  CHECK_NEAR(res.log_evidence, log(exp(0.1) * (1 - exp(0.2)) / (1 - exp(0.01)) / 30.0), 1e-12,
             "log evidence with zero weights");
  lr[3] = NAN;
  CHECK(gfv_psis(30, lr, NULL, &res) == GFV_ERR_NUMERIC, "NaN refused");
  lr[3] = INFINITY;
  CHECK(gfv_psis(30, lr, NULL, &res) == GFV_ERR_NUMERIC, "+Inf refused");
  for (int i = 0; i < 30; i++) lr[i] = -INFINITY;
  CHECK(gfv_psis(30, lr, NULL, &res) == GFV_ERR_NUMERIC, "all -Inf refused");
  CHECK(gfv_psis(0, lr, NULL, &res) == GFV_ERR_NUMERIC, "n = 0 refused");
}

int main(void) {
  gfv_error_install_gsl_handler();
  RUN(test_equal_ratios);
  RUN(test_gpd_k05);
  RUN(test_gpd_k08);
  RUN(test_gpdfit_scale);
  RUN(test_light_tail);
  RUN(test_heavy_target_narrow_proposal);
  RUN(test_log_evidence);
  RUN(test_smoothed_weights);
  RUN(test_small_and_bad_input);
  return harness_report();
}
