/* test_draws.c - the pieces behind draws.csv, posterior.nc, draws_psis.csv and
 * predictions.csv that can be checked exactly:
 *  - the names-to-variables layout of posterior.nc (vectors, matrices, out-of-order and
 *    incomplete indices, names that clash or are not valid netCDF names);
 *  - the predictive summary (mean, sd, numpy's default quantiles) on known values;
 *  - the Monte Carlo standard error of the held-out log predictive density against the
 *    spread of the estimate over independent replications (logreg's report);
 *  - PSIS resampling of known importance weights recovers the target's mean. */
#include <gsl/gsl_rng.h>
#include <netcdf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/error.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "rng/rng.h"
#include "solver/draws.h"
#include "targets/models.h"

static const gfv_nc_var *find(const gfv_nc_var *v, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0) return &v[i];
  return NULL;
}

static void test_layout(void) {
  char *names[] = {"mu", "theta[2]", "theta[1]", "theta[3]", "Sigma[1,1]", "Sigma[1,2]",
                   "Sigma[2,1]", "Sigma[2,2]", "x[1]", "x[3]", "chain", "a/b", "y[1]", "y",
                   "lp__", " z", "draw_dim_0", "w_dim_0", "w[1]", "w[2]"};
  const size_t m = sizeof names / sizeof names[0];
  int groups[sizeof names / sizeof names[0]] = {0};
  groups[1] = groups[2] = groups[3] = 1;
  gfv_nc_var *v = NULL;
  size_t n = 0;
  CHECK(gfv_nc_layout(m, names, groups, &v, &n) == GFV_OK, "layout: %s", gfv_error_message());
  const gfv_nc_var *x = find(v, n, "theta");
  CHECK(x && x->ndim == 1 && x->shape[0] == 3 && x->group == 1, "theta: a vector of 3");
  if (x) CHECK(x->cols[0] == 2 && x->cols[1] == 1 && x->cols[2] == 3, "theta's columns in index order");
  x = find(v, n, "Sigma");
  CHECK(x && x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == 2, "Sigma: 2 x 2");
  if (x) CHECK(x->cols[0] == 4 && x->cols[1] == 5 && x->cols[2] == 6 && x->cols[3] == 7, "Sigma row-major");
  /* x[2] missing: no array, two scalars under their own names */
  CHECK(find(v, n, "x[1]") && find(v, n, "x[3]") && !find(v, n, "x"), "incomplete x stays scalars");
  /* y alone and y[1]: an array would hide the scalar */
  CHECK(find(v, n, "y[1]") && find(v, n, "y") && find(v, n, "y")->ndim == 0, "y and y[1] both scalars");
  CHECK(find(v, n, "chain_") && !find(v, n, "chain"), "chain renamed: it is a dim");
  CHECK(find(v, n, "a_b"), "'/' is not allowed in a netCDF name");
  CHECK(find(v, n, "_ z"), "a name starting with a blank gets a leading '_'");
  CHECK(find(v, n, "mu") && find(v, n, "lp__") && find(v, n, "draw_dim_0"), "plain names stay");
  x = find(v, n, "w_");
  CHECK(x && x->ndim == 1 && find(v, n, "w_dim_0") && !find(v, n, "w"),
        "w renamed: its coordinate w_dim_0 would be a variable's name");
  size_t cells = 0;
  for (size_t i = 0; i < n; i++) cells += v[i].size;
  CHECK(cells == m && n == 14, "every column once: %zu cells in %zu variables", cells, n);
  gfv_nc_layout_free(v, n);
  /* the file: every one of those names is accepted by netCDF, and the values land where
   * the layout says (theta[1], column 2, at theta_dim_0 = 0) */
  gfv_draws d = {.N = 3, .m = m, .cols = m + 2, .names = names, .groups = groups};
  CHECK(gfv_calloc(&d.v, 3 * (m + 2), sizeof(double)) == GFV_OK, "alloc");
  for (size_t i = 0; i < 3 * (m + 2); i++) d.v[i] = (double)i;
  char path[] = "/tmp/gfv_test_draws_nc_XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  gfv_nc_meta meta = {"test", "0"};
  CHECK(f && gfv_posterior_nc_write(&d, path, &meta, f) == GFV_OK, "write: %s", gfv_error_message());
  if (f) fclose(f);
  int nc = -1, g = -1, var = -1;
  double got[3] = {0, 0, 0};
  size_t start[3] = {0, 0, 0}, count[3] = {1, 3, 1};
  CHECK(nc_open(path, NC_NOWRITE, &nc) == NC_NOERR, "nc_open");
  CHECK(nc_inq_grp_ncid(nc, "posterior", &g) == NC_NOERR && nc_inq_varid(g, "x[1]", &var) == NC_NOERR &&
            nc_inq_varid(g, "_ z", &var) == NC_NOERR && nc_inq_varid(g, "theta", &var) == NC_NOERR,
        "variables in the file");
  CHECK(var >= 0 && nc_get_vara_double(g, var, start, count, got) == NC_NOERR, "read theta[1]");
  for (int i = 0; i < 3; i++) CHECK_NEAR(got[i], (double)(i * (m + 2) + 2), 0, "theta[1] of draw i");
  nc_close(nc);
  remove(path);
  free(d.v);
}

/* numpy.quantile(np.arange(101.), [0.05, 0.5, 0.95]) = 5, 50, 95; of 1..4: 1.15, 2.5, 3.85. */
static void test_predict_row(void) {
  double v[101];
  for (int i = 0; i < 101; i++) v[i] = 100 - i;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  gfv_predict_row(f, 101, v);
  double w[4] = {4, 2, 3, 1};
  gfv_predict_row(f, 4, w);
  fclose(f);
  double a[5], b[5];
  CHECK(sscanf(text, ",%lf,%lf,%lf,%lf,%lf\n,%lf,%lf,%lf,%lf,%lf", &a[0], &a[1], &a[2], &a[3], &a[4], &b[0],
               &b[1], &b[2], &b[3], &b[4]) == 10, "two rows: %s", text);
  CHECK_NEAR(a[0], 50, 1e-12, "mean");
  CHECK_NEAR(a[1], sqrt(850.0), 1e-12, "sd (divisor n): sqrt((101^2 - 1) / 12)");
  CHECK_NEAR(a[2], 5, 1e-12, "q5");
  CHECK_NEAR(a[3], 50, 1e-12, "q50");
  CHECK_NEAR(a[4], 95, 1e-12, "q95");
  CHECK_NEAR(b[2], 1.15, 1e-12, "q5 of 1..4");
  CHECK_NEAR(b[3], 2.5, 1e-12, "median of 1..4");
  CHECK_NEAR(b[4], 3.85, 1e-12, "q95 of 1..4");
  free(text);
}

/* The logreg report's test_log_predictive over 40 seeds of its 4000 draws: the standard
 * deviation of the estimates against the mean reported standard error.  With 40
 * replications the sample sd is within 25% of the truth with probability > 0.99. */
static void test_lpd_mcse(void) {
  char dir[] = "/tmp/gfv_test_draws_XXXXXX", train[64], test[64];
  CHECK(mkdtemp(dir) != NULL, "tmpdir");
  snprintf(train, sizeof train, "%s/train.csv", dir);
  snprintf(test, sizeof test, "%s/test.csv", dir);
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  for (int k = 0; k < 2; k++) {
    FILE *f = fopen(k ? test : train, "w");
    fprintf(f, "a,b,y\n");
    for (int i = 0; i < (k ? 40 : 60); i++) {
      double x[2];
      gfv_rng_gaussian_fill(rng, 2, x);
      double p = 1 / (1 + exp(-(0.3 + x[0] - 2 * x[1])));
      fprintf(f, "%.10g,%.10g,%d\n", x[0], x[1], gsl_rng_uniform(rng) < p);
    }
    fclose(f);
  }
  gsl_rng_free(rng);
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  snprintf(cfg.target, sizeof cfg.target, "logreg");
  snprintf(cfg.data, sizeof cfg.data, "%s", train);
  snprintf(cfg.test_data, sizeof cfg.test_data, "%s", test);
  gfv_target *t = NULL;
  CHECK(gfv_target_create_from_config(&cfg, &t) == GFV_OK, "logreg: %s", gfv_error_message());
  if (!t) return;
  /* a wide posterior, so that the estimate is noisy enough to measure */
  double w[1] = {1}, mu[3] = {1, -2, 0.3}, cov[9] = {0.6, 0.1, 0, 0.1, 0.5, 0, 0, 0, 0.4};
  double sum = 0, sum2 = 0, se = 0;
  const int R = 40;
  for (int r = 0; r < R; r++) {
    gfv_fitted_mixture fit = {1, 3, w, mu, cov, 1000u + (unsigned)r, 0, 0};
    char *js = NULL, *tx = NULL;
    size_t jl = 0, tl = 0;
    FILE *json = open_memstream(&js, &jl), *text = open_memstream(&tx, &tl);
    CHECK(t->report(t, &fit, json, text) == GFV_OK, "report: %s", gfv_error_message());
    fclose(json), fclose(text);
    const char *a = strstr(js, "\"test_log_predictive\": "), *b = strstr(js, "\"test_log_predictive_mcse\": ");
    CHECK(a && b, "report members: %s", js);
    if (a && b) {
      double lpd = atof(a + 23), s = atof(b + 28);
      sum += lpd, sum2 += lpd * lpd, se += s / R;
    }
    free(js), free(tx);
  }
  double mean = sum / R, sd = sqrt((sum2 - R * mean * mean) / (R - 1));
  printf("# lpd over %d replications: sd %.3g, mean reported mcse %.3g\n", R, sd, se);
  CHECK(se > 0 && sd / se > 0.75 && sd / se < 1.33, "sd %.3g vs reported %.3g", sd, se);
  gfv_target_free(t);
  remove(train), remove(test), rmdir(dir);
}

/* Draws z ~ N(0, 1) as the "mixture", target N(0.7, 1): the resampled mean is 0.7 to
 * within its Monte Carlo error (PSIS weights exp(0.7 z - 0.245), ESS about n e^-0.49). */
static void test_resample(void) {
  const size_t N = 20000;
  gfv_draws d = {.N = N, .m = 1, .cols = 3};
  gfv_names_alloc(1, &d.names);
  gfv_names_set(d.names, 0, "z[1]");
  CHECK(gfv_calloc(&d.v, N * 3, sizeof(double)) == GFV_OK, "alloc");
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(rng, 7);
  for (size_t i = 0; i < N; i++) {
    double z;
    gfv_rng_gaussian_fill(rng, 1, &z);
    d.v[3 * i] = z, d.v[3 * i + 1] = -0.5 * (z - 0.7) * (z - 0.7), d.v[3 * i + 2] = -0.5 * z * z;
  }
  gsl_rng_free(rng);
  char *text = NULL;
  size_t len = 0, distinct = 0;
  FILE *f = open_memstream(&text, &len);
  gfv_psis_result res;
  CHECK(gfv_draws_resample_psis(&d, 11, f, &res, &distinct) == GFV_OK, "resample: %s", gfv_error_message());
  fclose(f);
  double sum = 0;
  size_t rows = 0;
  for (char *line = strchr(text, '\n') + 1; *line; line = strchr(line, '\n') + 1, rows++) sum += atof(line);
  CHECK(strncmp(text, "z[1],lp__,lq__\n", 15) == 0, "header: %.30s", text);
  CHECK(rows == N, "%zu rows", rows);
  CHECK_NEAR(sum / (double)N, 0.7, 0.04, "resampled mean");
  CHECK(res.khat < 0.5 && distinct < N && distinct > N / 3, "k-hat %g, %zu distinct", res.khat, distinct);
  free(text);
  gfv_draws_free(&d);
}

int main(void) {
  gfv_error_install_gsl_handler();
  RUN(test_layout);
  RUN(test_predict_row);
  RUN(test_lpd_mcse);
  RUN(test_resample);
  return harness_report();
}
