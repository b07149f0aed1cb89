/* test_targets.c - every built-in target: derivatives against finite differences,
 * normalization by quadrature, closed forms, block evaluation, and every error the
 * registry and the gmm:FILE reader report.
 *
 * Finite-difference tolerance.  Central differences with step h have error
 *   h^2/6 |f'''| (truncation) + eps |f| / h (rounding, eps = 1.1e-16).
 * With h = 1e-5 that is 1.7e-11 |f'''| + 1.1e-11 |f|.  At the test points |l| and the
 * third derivatives stay below about 1e3 (points are drawn where each target has its
 * mass), so the error is below 3e-8; the checks allow 1e-6 relative to max(|value|, 1),
 * a margin of 30 that still catches any wrong term (a wrong coefficient is an O(1) error).
 * The same bound holds for the Hessian from differences of the analytic gradient. */
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/error.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "linalg/linalg.h"
#include "targets/targets_impl.h"

#define FD_H 1e-5
#define FD_RTOL 1e-6
#define NPTS 6

static char tmpdir[256];

static void write_file(const char *name, const char *content, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  if (!f) {
    printf("cannot create %s\n", path);
    exit(2);
  }
  fputs(content, f);
  fclose(f);
}

static gfv_target *make(const char *spec, long dim) {
  gfv_target *t = NULL;
  gfv_error_clear();
  int st = gfv_target_create(spec, dim, &t);
  CHECK(st == GFV_OK && t, "creating %s (dim %ld): status %d: %s", spec, dim, st, gfv_error_message());
  return st == GFV_OK ? t : NULL;
}

/* log density, gradient and Hessian at one point. */
static void eval1(const gfv_target *t, const double *z, double *lp, double *g, double *H) {
  int st = gfv_target_eval(t, 1, z, lp, g, H);
  CHECK(st == GFV_OK, "eval: %s", gfv_error_message());
}

/* Deterministic points where target `kind` has its mass (see each case). */
static void make_points(const char *kind, size_t d, size_t n, unsigned long seed, double *z) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  for (size_t i = 0; i < n; i++) {
    double *zi = z + i * d;
    if (strcmp(kind, "banana") == 0) { /* near the ridge x2 = (x1^2 - 4) / 4 */
      zi[0] = 2.0 * gsl_ran_gaussian(r, 1.0);
      zi[1] = 0.25 * (zi[0] * zi[0] - 4.0) + gsl_ran_gaussian(r, 1.0);
    } else if (strcmp(kind, "funnel") == 0) { /* v within +-3, z_i on its own scale */
      zi[0] = 3.0 * (2.0 * gsl_rng_uniform(r) - 1.0);
      for (size_t a = 1; a < d; a++) zi[a] = exp(zi[0] / 2.0) * gsl_ran_gaussian(r, 1.0);
    } else { /* a box around the modes, including the regions between them */
      for (size_t a = 0; a < d; a++) zi[a] = 8.0 * gsl_rng_uniform(r) - 4.0;
    }
  }
  gsl_rng_free(r);
}

/* Block evaluation at n points equals point-by-point evaluation, grad-only and hess-only
 * calls equal the full one, and gradient and Hessian match finite differences. */
static void check_target(const gfv_target *t, size_t n, const double *z) {
  const size_t d = t->dim, dd = d * d;
  double *lp = calloc(n, sizeof *lp), *g = calloc(n * d, sizeof *g), *H = calloc(n * dd, sizeof *H);
  double *lp2 = calloc(n, sizeof *lp2), *g2 = calloc(n * d, sizeof *g2), *H2 = calloc(n * dd, sizeof *H2);
  double *zp = calloc(d, sizeof *zp), *gp = calloc(d, sizeof *gp), *gm = calloc(d, sizeof *gm);
  CHECK(gfv_target_eval(t, n, z, lp, g, H) == GFV_OK, "block eval: %s", gfv_error_message());
  CHECK(gfv_target_eval(t, n, z, lp2, NULL, NULL) == GFV_OK, "logp-only eval");
  for (size_t i = 0; i < n; i++) CHECK_REL(lp2[i], lp[i], 1e-13, 1.0, "logp-only call");
  CHECK(gfv_target_eval(t, n, z, lp2, g2, NULL) == GFV_OK, "grad-only eval");
  for (size_t i = 0; i < n * d; i++) CHECK_REL(g2[i], g[i], 1e-13, 1.0, "grad-only call");
  CHECK(gfv_target_eval(t, n, z, lp2, NULL, H2) == GFV_OK, "hess-without-grad eval");
  for (size_t i = 0; i < n * dd; i++) CHECK_REL(H2[i], H[i], 1e-13, 1.0, "hess-without-grad call");
  for (size_t i = 0; i < n; i++) {
    const double *zi = z + i * d, *gi = g + i * d, *Hi = H + i * dd;
    double l1, lpl, lmi;
    eval1(t, zi, &l1, gp, NULL);
    CHECK_REL(l1, lp[i], 1e-12, 1.0, "single point vs block");
    for (size_t a = 0; a < d; a++) {
      memcpy(zp, zi, d * sizeof *zp);
      zp[a] = zi[a] + FD_H;
      eval1(t, zp, &lpl, gp, NULL);
      zp[a] = zi[a] - FD_H;
      eval1(t, zp, &lmi, gm, NULL);
      CHECK_REL((lpl - lmi) / (2 * FD_H), gi[a], FD_RTOL, 1.0, "gradient vs finite difference");
      for (size_t b = 0; b < d; b++)
        CHECK_REL((gp[b] - gm[b]) / (2 * FD_H), Hi[b * d + a], FD_RTOL, 1.0, "Hessian vs finite difference");
    }
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < a; b++) CHECK(Hi[a * d + b] == Hi[b * d + a], "Hessian not symmetric");
  }
  free(lp), free(g), free(H), free(lp2), free(g2), free(H2), free(zp), free(gp), free(gm);
}

static void check_spec(const char *spec, long dim, const char *kind) {
  gfv_target *t = make(spec, dim);
  if (!t) return;
  CHECK(t->has_hessian && t->normalized, "%s: flags", spec);
  double *z = calloc(NPTS * t->dim, sizeof *z);
  make_points(kind, t->dim, NPTS, 17 + (unsigned long)t->dim, z);
  check_target(t, NPTS, z);
  free(z);
  gfv_target_free(t);
}

static void test_derivatives(void) {
  check_spec("gauss", 1, "box");
  check_spec("gauss", 3, "box");
  check_spec("gauss", 7, "box");
  check_spec("gmm4", 0, "box");
  check_spec("banana", 0, "banana");
  check_spec("funnel", 2, "funnel");
  check_spec("funnel", 5, "funnel");
}

/* More points than one internal chunk (256) exercises the chunk loops of gauss and of the
 * gmm hess-without-grad path. */
static void test_large_blocks(void) {
  const size_t n = 600;
  const char *specs[2] = {"gauss", "gmm4"};
  for (int s = 0; s < 2; s++) {
    gfv_target *t = make(specs[s], s == 0 ? 5 : 0);
    if (!t) continue;
    double *z = calloc(n * t->dim, sizeof *z);
    make_points("box", t->dim, n, 99, z);
    check_target(t, n, z);
    free(z);
    gfv_target_free(t);
  }
}

/* The documented gauss mean and covariance, built here independently. */
static void gauss_reference(size_t d, double *m, double *S) {
  const double mv[3] = {1.0, 2.0, 3.0}, sv[3] = {1.0, 1.5, 2.0};
  for (size_t i = 0; i < d; i++) m[i] = (i % 2 == 0 ? 0.5 : -0.5) * mv[i % 3];
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < d; j++) S[i * d + j] = sv[i % 3] * sv[j % 3] * pow(0.6, fabs((double)i - (double)j));
}

/* gauss: documented moments, the default dimension, and logp against GSL's multivariate
 * normal density (an independent implementation; agreement to 1e-12 is rounding only). */
static void test_gauss_closed_form(void) {
  const size_t dims[3] = {1, 3, 7};
  gfv_target *t0 = make("gauss", 0);
  if (t0) CHECK(t0->dim == 4 && strcmp(t0->name, "gauss") == 0, "gauss default: d = %zu", t0->dim);
  gfv_target_free(t0);
  for (int c = 0; c < 3; c++) {
    const size_t d = dims[c];
    gfv_target *t = make("gauss", (long)d);
    if (!t) continue;
    double m[7], S[49], z[7];
    const double *tm, *tS;
    gauss_reference(d, m, S);
    CHECK(gfv_target_gauss_moments(t, &tm, &tS) == GFV_OK, "moments");
    for (size_t i = 0; i < d; i++) CHECK(tm[i] == m[i], "mean[%zu] = %g, want %g", i, tm[i], m[i]);
    for (size_t i = 0; i < d * d; i++) CHECK_REL(tS[i], S[i], 1e-15, 1e-300, "covariance");
    gsl_matrix *Lg = gsl_matrix_alloc(d, d);
    gsl_vector *x = gsl_vector_alloc(d), *mu = gsl_vector_alloc(d), *work = gsl_vector_alloc(d);
    for (size_t i = 0; i < d; i++) {
      gsl_vector_set(mu, i, m[i]);
      for (size_t j = 0; j < d; j++) gsl_matrix_set(Lg, i, j, S[i * d + j]);
    }
    gsl_linalg_cholesky_decomp1(Lg);
    make_points("box", d, 1, 5, z);
    for (int p = 0; p < 3; p++) {
      double want, got;
      for (size_t i = 0; i < d; i++) gsl_vector_set(x, i, z[i] + 0.7 * p);
      gsl_ran_multivariate_gaussian_log_pdf(x, mu, Lg, &want, work);
      eval1(t, x->data, &got, NULL, NULL);
      CHECK_REL(got, want, 1e-12, 1.0, "gauss logp vs GSL");
    }
    gsl_matrix_free(Lg), gsl_vector_free(x), gsl_vector_free(mu), gsl_vector_free(work);
    gfv_target_free(t);
  }
}

/* log sum_j w_j N(z; m_j, S_j) with GSL's density, weights normalised here. */
static double mixture_logpdf(size_t d, size_t k, const double *w, const double *m, const double *S,
                             const double *z) {
  double terms[8], wsum = 0;
  gsl_matrix *L = gsl_matrix_alloc(d, d);
  gsl_vector *x = gsl_vector_alloc(d), *mu = gsl_vector_alloc(d), *work = gsl_vector_alloc(d);
  for (size_t j = 0; j < k; j++) wsum += w[j];
  for (size_t j = 0; j < k; j++) {
    for (size_t a = 0; a < d; a++) {
      gsl_vector_set(x, a, z[a]), gsl_vector_set(mu, a, m[j * d + a]);
      for (size_t b = 0; b < d; b++) gsl_matrix_set(L, a, b, S[j * d * d + a * d + b]);
    }
    gsl_linalg_cholesky_decomp1(L);
    gsl_ran_multivariate_gaussian_log_pdf(x, mu, L, &terms[j], work);
    terms[j] += log(w[j] / wsum);
  }
  gsl_matrix_free(L), gsl_vector_free(x), gsl_vector_free(mu), gsl_vector_free(work);
  return gfv_logsumexp(k, terms, 1);
}

/* The gmm:FILE test mixture: 3 components in d = 3, correlated covariances, weights 1:2:3. */
static const double fw[3] = {1.0, 2.0, 3.0};
static const double fm[9] = {0.0, 1.0, -1.0, 2.0, -1.5, 0.5, -2.0, 0.0, 1.5};
static const double fS[27] = {1.0, 0.3, -0.2, 0.3, 0.8, 0.1, -0.2, 0.1, 0.5,
                              2.0, -0.6, 0.4, -0.6, 1.0, -0.3, 0.4, -0.3, 1.5,
                              0.7, 0.2, 0.25, 0.2, 1.2, -0.4, 0.25, -0.4, 0.9};

/* The mixture as mixture.csv text (header, a comment, 17 digits). */
static void write_mixture_file(char *path, size_t cap) {
  char text[4096], *p = text;
  p += sprintf(p, "# test mixture\nweight,mu_1,mu_2,mu_3");
  for (int a = 1; a <= 3; a++)
    for (int b = 1; b <= 3; b++) p += sprintf(p, ",cov_%d_%d", a, b);
  p += sprintf(p, "\n");
  for (int j = 0; j < 3; j++) {
    p += sprintf(p, "%.17g", fw[j]);
    for (int a = 0; a < 3; a++) p += sprintf(p, ",%.17g", fm[j * 3 + a]);
    for (int a = 0; a < 9; a++) p += sprintf(p, ",%.17g", fS[j * 9 + a]);
    p += sprintf(p, "\n");
  }
  write_file("mix3.csv", text, path, cap);
}

static void test_gmm_file(void) {
  char path[512], spec[600];
  write_mixture_file(path, sizeof path);
  snprintf(spec, sizeof spec, "gmm:%s", path);
  gfv_target *t = make(spec, 0);
  if (!t) return;
  CHECK(t->dim == 3 && strcmp(t->name, "gmm") == 0 && !t->has_box, "gmm:FILE: d %zu name %s", t->dim, t->name);
  gfv_mix_view v;
  const double *logw;
  CHECK(gfv_target_gmm_view(t, &v, &logw) == GFV_OK && v.k == 3 && v.d == 3, "view");
  for (int j = 0; j < 3; j++) CHECK_REL(exp(logw[j]), fw[j] / 6.0, 1e-14, 1e-300, "normalised weight");
  double z[NPTS * 3];
  make_points("box", 3, NPTS, 3, z);
  for (int i = 0; i < NPTS; i++) {
    double got;
    eval1(t, z + 3 * i, &got, NULL, NULL);
    CHECK_REL(got, mixture_logpdf(3, 3, fw, fm, fS, z + 3 * i), 1e-12, 1.0, "gmm:FILE vs mixture by hand");
  }
  check_target(t, NPTS, z);
  gfv_target_free(t);
  t = make(spec, 3); /* the file's own dimension is accepted */
  gfv_target_free(t);
  remove(path);
}

/* gmm4 against its definition: four N((+-3, +-3), 0.5 I) with weights 1/4. */
static void test_gmm4_closed_form(void) {
  gfv_target *t = make("gmm4", 0);
  if (!t) return;
  const double w[4] = {1, 1, 1, 1}, m[8] = {3, 3, 3, -3, -3, 3, -3, -3};
  const double S[16] = {0.5, 0, 0, 0.5, 0.5, 0, 0, 0.5, 0.5, 0, 0, 0.5, 0.5, 0, 0, 0.5};
  const double pts[6] = {0, 0, 3, 3, -2.5, 3.7};
  for (int i = 0; i < 3; i++) {
    double got;
    eval1(t, pts + 2 * i, &got, NULL, NULL);
    CHECK_REL(got, mixture_logpdf(2, 4, w, m, S, pts + 2 * i), 1e-12, 1.0, "gmm4 vs definition");
  }
  CHECK(t->has_box && t->box[0] == -6.5 && t->box[3] == 6.5, "gmm4 box");
  gfv_target_free(t);
}

/* h^2 sum exp(l) over rows of points: the rectangle rule, which for a smooth integrand
 * negligible at the border is the trapezoid rule and converges faster than any power of h
 * (error ~ exp(-2 pi^2 s^2 / h^2) for a feature of width s). */
static double grid_mass(const gfv_target *t, double x0, double x1, double y0, double y1, double h) {
  size_t nx = (size_t)((x1 - x0) / h) + 1, ny = (size_t)((y1 - y0) / h) + 1;
  double *z = calloc(2 * nx, sizeof *z), *lp = calloc(nx, sizeof *lp), s = 0.0;
  for (size_t iy = 0; iy < ny; iy++) {
    for (size_t ix = 0; ix < nx; ix++) z[2 * ix] = x0 + h * (double)ix, z[2 * ix + 1] = y0 + h * (double)iy;
    gfv_target_eval(t, nx, z, lp, NULL, NULL);
    for (size_t ix = 0; ix < nx; ix++) s += exp(lp[ix]);
  }
  free(z), free(lp);
  return s * h * h;
}

/* Normalization of the 2-D targets.  Widths: gmm4 sd 0.71, banana sd 1 across the ridge
 * and at least 1/3 along x1 where the ridge is steepest inside the window, so h = 0.04
 * makes the rule error far below 1e-12; the windows leave out less than 1e-11 of the mass
 * (gmm4: 9.9 sd from every mode; banana: x1 within 7 sd, x2 at least 9 sd from the ridge).
 * The funnel's neck (sd e^{v/2}, 6e-6 at v = -24) defeats a fixed grid, so its z_1 nodes
 * scale with the conditional sd: 241 nodes over +-12 sd at each v, v over +-8 sd in steps
 * of 0.05 (sd 3); it still evaluates l itself at every node.  Tolerance 1e-9 is the sum
 * of these bounds with a wide margin. */
static void test_normalization(void) {
  gfv_target *t = make("gmm4", 0);
  if (t) CHECK_NEAR(grid_mass(t, -10, 10, -10, 10, 0.04), 1.0, 1e-9, "gmm4 mass");
  gfv_target_free(t);
  t = make("banana", 0);
  if (t) CHECK_NEAR(grid_mass(t, -14, 14, -10, 56, 0.04), 1.0, 1e-9, "banana mass");
  gfv_target_free(t);
  t = make("funnel", 2);
  if (!t) return;
  const size_t nz = 241;
  double z[2 * 241], lp[241], mass = 0.0;
  for (double v = -24.0; v <= 24.0 + 1e-9; v += 0.05) {
    double sd = exp(v / 2.0), hz = 24.0 * sd / (double)(nz - 1), s = 0.0;
    for (size_t i = 0; i < nz; i++) z[2 * i] = v, z[2 * i + 1] = -12.0 * sd + hz * (double)i;
    gfv_target_eval(t, nz, z, lp, NULL, NULL);
    for (size_t i = 0; i < nz; i++) s += exp(lp[i]);
    mass += s * hz * 0.05;
  }
  CHECK_NEAR(mass, 1.0, 1e-9, "funnel mass");
  gfv_target_free(t);
}

/* Boxes, defaults and names; non-finite values come back with status OK. */
static void test_properties(void) {
  const char *specs[3] = {"gmm4", "banana", "funnel"};
  for (int s = 0; s < 3; s++) {
    gfv_target *t = make(specs[s], s == 2 ? 2 : 0);
    if (!t) continue;
    CHECK(t->dim == 2 && t->has_box && t->box[0] < t->box[1] && t->box[2] < t->box[3], "%s box", specs[s]);
    CHECK(strcmp(t->name, specs[s]) == 0, "name %s", t->name);
    gfv_target_free(t);
  }
  gfv_target *t = make("funnel", 0);
  if (t) {
    CHECK(t->dim == 10 && !t->has_box, "funnel default d = %zu", t->dim);
    double z[10] = {-800, 1, 1, 1, 1, 1, 1, 1, 1, 1}, lp;
    CHECK(gfv_target_eval(t, 1, z, &lp, NULL, NULL) == GFV_OK && !isfinite(lp), "funnel at v = -800: %g", lp);
    CHECK(gfv_target_eval(t, 0, z, &lp, NULL, NULL) == GFV_OK, "n = 0");
  }
  gfv_target_free(t);
  const char *help = gfv_target_list_help();
  int lines = 0;
  for (const char *p = help; *p; p++) lines += *p == '\n';
  CHECK(lines == 9 && strstr(help, "gauss") && strstr(help, "gmm4") && strstr(help, "gmm:FILE") &&
            strstr(help, "banana") && strstr(help, "funnel") && strstr(help, "logreg") &&
            strstr(help, "bnn") && strstr(help, "plugin:") && strstr(help, "stan:"),
        "help text:\n%s", help);
  gfv_target_free(NULL);
}

/* Creating spec fails with code and a message containing want. */
static void expect_fail(const char *spec, long dim, int code, const char *want) {
  gfv_target *t = (gfv_target *)1;
  gfv_error_clear();
  int st = gfv_target_create(spec, dim, &t);
  CHECK(st == code && t == NULL, "%s --dim=%ld: status %d, want %d", spec, dim, st, code);
  CHECK(strstr(gfv_error_message(), want) != NULL, "%s: message '%s' lacks '%s'", spec,
        gfv_error_message(), want);
  if (st == GFV_OK) gfv_target_free(t);
}

static void test_registry_errors(void) {
  char path[512], spec[600];
  expect_fail("gaus", 0, GFV_ERR_USAGE, "unknown target 'gaus' (choose gauss, gmm4, gmm:FILE, banana, funnel, logreg, bnn, plugin:FILE.so, stan:FILE.stan)");
  expect_fail("gmm", 0, GFV_ERR_USAGE, "unknown target 'gmm'");
  expect_fail("gmm:", 0, GFV_ERR_USAGE, "needs a file name");
  expect_fail("gmm4", 5, GFV_ERR_USAGE, "target gmm4 has dimension 2, but --dim=5 was given");
  expect_fail("banana", 3, GFV_ERR_USAGE, "target banana has dimension 2, but --dim=3 was given");
  expect_fail("funnel", 1, GFV_ERR_USAGE, "target funnel needs --dim >= 2, but --dim=1 was given");
  expect_fail("gauss", -1, GFV_ERR_USAGE, "--dim must be >= 0");
  write_mixture_file(path, sizeof path);
  snprintf(spec, sizeof spec, "gmm:%s", path);
  char want[700];
  snprintf(want, sizeof want, "target %s has dimension 3, but --dim=2 was given", spec);
  expect_fail(spec, 2, GFV_ERR_USAGE, want);
  remove(path);
}

/* gmm:FILE with the given content fails with GFV_ERR_INPUT and a message containing the
 * file name followed by want. */
static void expect_file_fail(const char *content, const char *want) {
  char path[512], spec[600], msg[1024];
  write_file("bad.csv", content, path, sizeof path);
  snprintf(spec, sizeof spec, "gmm:%s", path);
  snprintf(msg, sizeof msg, "%s%s", path, want);
  expect_fail(spec, 0, GFV_ERR_INPUT, msg);
  remove(path);
}

static void test_gmm_file_errors(void) {
  char path[512], spec[600], want[700];
  snprintf(path, sizeof path, "%s/missing.csv", tmpdir);
  snprintf(spec, sizeof spec, "gmm:%s", path);
  snprintf(want, sizeof want, "cannot open '%s': No such file or directory", path);
  expect_fail(spec, 0, GFV_ERR_INPUT, want);
  /* 8 columns: between d = 2 (7) and d = 3 (13). */
  expect_file_fail("1,0,0,1,0,0,1,5\n", ": 8 columns is not 1 + d + d*d for any d");
  expect_file_fail("1,0,0,1,0,0,1\n1,0,0,1,2,2,1\n", ": component 2 (data row 2): covariance is not positive definite");
  expect_file_fail("1,0,0,1,0,0,1\n1,0,0,0,0,0,1\n", ": component 2 (data row 2): covariance is not positive definite");
  expect_file_fail("1,0,0,1,0,0,1\n-0.5,0,0,1,0,0,1\n", ": component 2 (data row 2): weight -0.5 is not positive");
  expect_file_fail("0,0,0,1,0,0,1\n", ": component 1 (data row 1): weight 0 is not positive");
  expect_file_fail("1,0,0,1,0.5,0.4,1\n", ": component 1 (data row 1): covariance is not symmetric");
  expect_file_fail("weight,mu_1,cov_1_1\n1,x,1\n", ":2: field 2 'x' is not a number");
  expect_file_fail("weight,mu_1,cov_1_1\n", ": no data rows");
  expect_file_fail("1,0,1\n1,0\n", ":2: expected 3 columns, found 2");
  /* Symmetric to rounding (a relative 1e-14 difference) is accepted. */
  write_file("ok.csv", "1,0,0,1,0.30000000000000004,0.3,1\n", path, sizeof path);
  snprintf(spec, sizeof spec, "gmm:%s", path);
  gfv_target *t = make(spec, 2);
  if (t) CHECK(t->has_box && t->box[0] == -4.0 && t->box[3] == 4.0, "gmm:FILE box");
  gfv_target_free(t);
  remove(path);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/gfv_test_targets_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    printf("cannot create a temporary directory\n");
    return 2;
  }
  RUN(test_derivatives);
  RUN(test_large_blocks);
  RUN(test_gauss_closed_form);
  RUN(test_gmm4_closed_form);
  RUN(test_gmm_file);
  RUN(test_normalization);
  RUN(test_properties);
  RUN(test_registry_errors);
  RUN(test_gmm_file_errors);
  rmdir(tmpdir);
  return harness_report();
}
