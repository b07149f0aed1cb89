/* test_models.c - the data targets logreg and bnn: log densities against independent
 * implementations written here, gradients (and the logistic Hessian) against finite
 * differences, data handling (label column, standardisation, split), minibatches, the
 * posterior-predictive reports, and every bad input.
 *
 * Finite-difference tolerance: central differences with h = 1e-5 have error about
 * h^2/6 |f'''| + eps |f| / h.  The log densities here are O(10^2 - 10^3) and smooth at the
 * test points (the bnn points are re-drawn until no ReLU pre-activation lies within 1e-3
 * of its kink, so the difference never straddles one), so the error is below 1e-7 relative
 * to max(|derivative|, |f| 1e-3); the checks allow 1e-6 relative to max(|value|, 1) for
 * logreg and 2e-5 for bnn (larger |f|).  A wrong term is an O(1) relative error. */
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "rng/rng.h"
#include "targets/models.h"

#define FD_H 1e-5

static char tmpdir[256];

static const char *write_file(const char *name, const char *content) {
  static char paths[32][512];
  static int next;
  char *path = paths[next++ % 32];
  snprintf(path, 512, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  if (!f) {
    printf("cannot create %s\n", path);
    exit(2);
  }
  fputs(content, f);
  fclose(f);
  return path;
}

static void config(gfv_config *cfg, const char *target, const char *data) {
  gfv_config_defaults(cfg);
  snprintf(cfg->target, sizeof cfg->target, "%s", target);
  snprintf(cfg->data, sizeof cfg->data, "%s", data ? data : "");
}

static gfv_target *make(const gfv_config *cfg) {
  gfv_target *t = NULL;
  gfv_error_clear();
  int st = gfv_target_create_from_config(cfg, &t);
  CHECK(st == GFV_OK && t, "creating %s: status %d: %s", cfg->target, st, gfv_error_message());
  return st == GFV_OK ? t : NULL;
}

/* Synthetic logistic data: N rows, p standard-normal features with different scales and
 * offsets (so standardisation matters), labels from a logistic model.  Written as CSV
 * with a header, label last. */
static const char *logistic_csv(const char *name, size_t N, size_t p, unsigned long seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  size_t cap = 64 + N * (p + 1) * 32, len = 0;
  char *buf = malloc(cap);
  for (size_t a = 0; a < p; a++) len += (size_t)snprintf(buf + len, cap - len, "x%zu,", a + 1);
  len += (size_t)snprintf(buf + len, cap - len, "label\n");
  double x[16];
  for (size_t i = 0; i < N; i++) {
    double s = 0.3;
    gfv_rng_gaussian_fill(r, p, x);
    for (size_t a = 0; a < p; a++) {
      x[a] = (1.0 + (double)a) * x[a] + 0.5 * (double)a; /* scale 1 + a, offset a/2 */
      s += (a % 2 ? -1.0 : 1.5) * x[a] / (1.0 + (double)a);
      len += (size_t)snprintf(buf + len, cap - len, "%.10g,", x[a]);
    }
    int y = gsl_rng_uniform(r) < 1.0 / (1.0 + exp(-s));
    len += (size_t)snprintf(buf + len, cap - len, "%d\n", y);
  }
  gsl_rng_free(r);
  const char *path = write_file(name, buf);
  free(buf);
  return path;
}

/* Synthetic regression data: y = sin(x1) + x2^2 / 2 - x3 + noise, plus a scale and offset. */
static const char *regression_csv(const char *name, size_t N, unsigned long seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  size_t cap = 64 + N * 4 * 32, len = 0;
  char *buf = malloc(cap);
  len += (size_t)snprintf(buf + len, cap - len, "a,b,c,y\n");
  double x[4];
  for (size_t i = 0; i < N; i++) {
    gfv_rng_gaussian_fill(r, 4, x);
    double y = 20.0 + 5.0 * (sin(x[0]) + 0.5 * x[1] * x[1] - x[2] + 0.3 * x[3]);
    len += (size_t)snprintf(buf + len, cap - len, "%.10g,%.10g,%.10g,%.10g\n", 3.0 * x[0] + 1.0,
                            x[1], 0.5 * x[2] - 2.0, y);
  }
  gsl_rng_free(r);
  const char *path = write_file(name, buf);
  free(buf);
  return path;
}

/* ---- logreg ------------------------------------------------------------------------ */

/* l(z) from the design, written out term by term. */
static double logreg_direct(size_t N, size_t D, const double *X, const double *y, double s,
                            const double *z) {
  double l = -0.5 * (double)D * log(2.0 * M_PI * s * s);
  for (size_t a = 0; a < D; a++) l -= z[a] * z[a] / (2.0 * s * s);
  for (size_t i = 0; i < N; i++) {
    double si = 0;
    for (size_t a = 0; a < D; a++) si += X[i * D + a] * z[a];
    double p1 = 1.0 / (1.0 + exp(-si));
    l += y[i] ? log(p1) : log1p(-p1);
  }
  return l;
}

static void test_logreg_derivatives(void) {
  gfv_config cfg;
  config(&cfg, "logreg", logistic_csv("lr.csv", 60, 4, 11));
  cfg.prior_scale = 3.0;
  gfv_target *t = make(&cfg);
  if (!t) return;
  CHECK(t->dim == 5 && t->has_hessian && !t->normalized && t->report, "logreg flags: d = %zu", t->dim);
  size_t N, D;
  const double *X, *y;
  CHECK(gfv_target_logreg_design(t, &N, &D, &X, &y) == GFV_OK, "design");
  enum { NP = 7 };
  double z[NP * 5], lp[NP], g[NP * 5], H[NP * 25], zp[5], gp[5], gm[5], l1, l2;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 3);
  gfv_rng_gaussian_fill(r, NP * D, z);
  gsl_rng_free(r);
  CHECK(gfv_target_eval(t, NP, z, lp, g, H) == GFV_OK, "eval");
  for (size_t i = 0; i < NP; i++) {
    const double *zi = z + i * D;
    CHECK_REL(lp[i], logreg_direct(N, D, X, y, 3.0, zi), 1e-12, 1.0, "logp vs direct sum");
    for (size_t a = 0; a < D; a++) {
      memcpy(zp, zi, sizeof zp);
      zp[a] += FD_H;
      gfv_target_eval(t, 1, zp, &l1, gp, NULL);
      zp[a] -= 2 * FD_H;
      gfv_target_eval(t, 1, zp, &l2, gm, NULL);
      CHECK_REL((l1 - l2) / (2 * FD_H), g[i * D + a], 1e-6, 1.0, "logreg gradient vs FD");
      for (size_t b = 0; b < D; b++)
        CHECK_REL((gp[b] - gm[b]) / (2 * FD_H), H[i * 25 + b * D + a], 1e-6, 1.0,
                  "logreg Hessian vs FD");
    }
    for (size_t a = 0; a < D; a++)
      for (size_t b = 0; b < a; b++) CHECK(H[i * 25 + a * D + b] == H[i * 25 + b * D + a], "symmetric");
  }
  /* a block larger than the internal chunk equals the point-by-point values */
  enum { NB = 600 };
  double *zb = malloc(NB * D * sizeof *zb), *lb = malloc(NB * sizeof *lb), *gb = malloc(NB * D * sizeof *gb);
  for (size_t i = 0; i < NB; i++)
    for (size_t a = 0; a < D; a++) zb[i * D + a] = z[(i % NP) * D + a] * (1.0 + 0.001 * (double)i);
  CHECK(gfv_target_eval(t, NB, zb, lb, gb, NULL) == GFV_OK, "big block");
  for (size_t i = 0; i < NB; i += 37) {
    double g1[5];
    gfv_target_eval(t, 1, zb + i * D, &l1, g1, NULL);
    CHECK_REL(lb[i], l1, 1e-12, 1.0, "block vs single logp");
    for (size_t a = 0; a < D; a++) CHECK_REL(gb[i * D + a], g1[a], 1e-12, 1.0, "block vs single grad");
  }
  free(zb), free(lb), free(gb);
  gfv_target_free(t);
}

/* Column statistics of the design, label column choice, intercept on/off. */
static void test_logreg_data_handling(void) {
  /* label in column 1; x1 = 1..4 (mean 2.5, sd sqrt(1.25)), x2 constant 10 */
  const char *path = write_file("std.csv", "y,x1,x2\n0,1,10\n1,2,10\n0,3,10\n1,4,10\n");
  const double sd = sqrt(1.25);
  const char *modes[3] = {"scale", "center-scale", "none"};
  for (int m = 0; m < 3; m++) {
    gfv_config cfg;
    config(&cfg, "logreg", path);
    cfg.label_col = 1;
    strcpy(cfg.standardize, modes[m]);
    gfv_target *t = make(&cfg);
    if (!t) continue;
    size_t N, D;
    const double *X, *y;
    gfv_target_logreg_design(t, &N, &D, &X, &y);
    CHECK(N == 4 && D == 3, "%s: N %zu D %zu", modes[m], N, D);
    for (size_t i = 0; i < N; i++) {
      double x1 = (double)i + 1.0;
      double want1 = m == 0 ? x1 / sd : m == 1 ? (x1 - 2.5) / sd : x1;
      double want2 = m == 1 ? 0.0 : 10.0; /* constant column: not scaled */
      CHECK_NEAR(X[i * D], want1, 1e-14, "standardised x1");
      CHECK_NEAR(X[i * D + 1], want2, 1e-14, "constant column");
      CHECK(X[i * D + 2] == 1.0, "intercept last");
      CHECK(y[i] == (double)(i % 2), "label from column 1");
    }
    gfv_target_free(t);
  }
  gfv_config cfg;
  config(&cfg, "logreg", path);
  cfg.label_col = -3; /* column 1 counted from the end */
  cfg.intercept = 0;
  gfv_target *t = make(&cfg);
  if (t) {
    size_t N, D;
    const double *X, *y;
    gfv_target_logreg_design(t, &N, &D, &X, &y);
    CHECK(D == 2 && t->dim == 2, "no intercept: D = %zu", D);
    CHECK(y[1] == 1.0 && y[2] == 0.0, "label-col -3");
    gfv_target_free(t);
  }
  /* auto = scale for logreg, center-scale for bnn */
  gfv_data d;
  config(&cfg, "logreg", path);
  cfg.label_col = 1;
  CHECK(gfv_data_load(&cfg, "logreg", GFV_STD_SCALE, 1, &d) == GFV_OK && d.mode == GFV_STD_SCALE,
        "auto -> scale");
  gfv_data_free(&d);
  CHECK(gfv_data_load(&cfg, "bnn", GFV_STD_CENTER_SCALE, 0, &d) == GFV_OK &&
            d.mode == GFV_STD_CENTER_SCALE,
        "auto -> center-scale");
  gfv_data_free(&d);
}

/* --split-seed: a deterministic partition of the rows; --test-data: a second file. */
static void test_split(void) {
  char buf[4096];
  size_t len = (size_t)snprintf(buf, sizeof buf, "id,label\n");
  for (int i = 0; i < 50; i++) len += (size_t)snprintf(buf + len, sizeof buf - len, "%d,%d\n", i, i % 2);
  const char *path = write_file("ids.csv", buf);
  gfv_config cfg;
  config(&cfg, "logreg", path);
  strcpy(cfg.standardize, "none");
  cfg.split_seed = 7;
  gfv_data a, b;
  CHECK(gfv_data_load(&cfg, "logreg", GFV_STD_NONE, 1, &a) == GFV_OK, "split: %s", gfv_error_message());
  CHECK(a.train.n == 45 && a.test.n == 5, "90/10 of 50: %zu + %zu", a.train.n, a.test.n);
  int seen[50] = {0};
  for (size_t i = 0; i < a.train.n; i++) seen[(int)a.train.X[i]]++;
  for (size_t i = 0; i < a.test.n; i++) seen[(int)a.test.X[i]]++;
  int all_once = 1;
  for (int i = 0; i < 50; i++) all_once &= seen[i] == 1;
  CHECK(all_once, "every row in exactly one part");
  for (size_t i = 0; i < a.test.n; i++)
    CHECK(a.test.y[i] == fmod(a.test.X[i], 2.0), "label travels with its row");
  CHECK(gfv_data_load(&cfg, "logreg", GFV_STD_NONE, 1, &b) == GFV_OK, "again");
  CHECK(memcmp(a.test.X, b.test.X, 5 * sizeof(double)) == 0, "same seed, same split");
  gfv_data_free(&b);
  cfg.split_seed = 8;
  CHECK(gfv_data_load(&cfg, "logreg", GFV_STD_NONE, 1, &b) == GFV_OK, "other seed");
  CHECK(memcmp(a.test.X, b.test.X, 5 * sizeof(double)) != 0, "other seed, other split");
  gfv_data_free(&a), gfv_data_free(&b);
  /* standardisation statistics come from the training rows only */
  config(&cfg, "logreg", write_file("tr.csv", "x,y\n1,0\n3,1\n"));
  strcpy(cfg.test_data, write_file("te.csv", "x,y\n5,1\n"));
  CHECK(gfv_data_load(&cfg, "logreg", GFV_STD_CENTER_SCALE, 1, &a) == GFV_OK, "test file");
  CHECK(a.test.n == 1 && a.test.X[0] == 3.0, "test row scaled by training stats: %g", a.test.X[0]);
  gfv_data_free(&a);
}

/* The report with a (numerically) point-mass mixture at w0 equals the plug-in metrics. */
static void test_logreg_report(void) {
  gfv_config cfg;
  config(&cfg, "logreg", logistic_csv("lr2.csv", 80, 2, 5));
  strcpy(cfg.test_data, logistic_csv("lr2t.csv", 40, 2, 6));
  gfv_target *t = make(&cfg);
  if (!t) return;
  const size_t D = 3;
  double w0[3] = {1.2, -0.7, 0.4}, cov[9] = {1e-20, 0, 0, 0, 1e-20, 0, 0, 0, 1e-20}, wk = 1.0;
  gfv_fitted_mixture fit = {.K = 1, .d = D, .w = &wk, .mu = w0, .cov = cov, .seed = 42};
  char *js = NULL, *tx = NULL;
  size_t jl, tl;
  FILE *json = open_memstream(&js, &jl), *text = open_memstream(&tx, &tl);
  CHECK(t->report(t, &fit, json, text) == GFV_OK, "report: %s", gfv_error_message());
  fclose(json), fclose(text);
  /* the plug-in values from the test file, standardised with the training statistics */
  gfv_data d;
  gfv_data_load(&cfg, "logreg", GFV_STD_SCALE, 1, &d);
  double correct = 0, ll = 0;
  for (size_t i = 0; i < d.test.n; i++) {
    double s = w0[2];
    for (size_t a = 0; a < 2; a++) s += w0[a] * d.test.X[i * 2 + a];
    double p1 = 1.0 / (1.0 + exp(-s));
    correct += (p1 > 0.5) == (d.test.y[i] == 1.0);
    ll += d.test.y[i] == 1.0 ? log(p1) : log(1 - p1);
  }
  double acc, mll;
  const char *pa = js ? strstr(js, "\"test_accuracy\": ") : NULL;
  const char *pl = js ? strstr(js, "\"test_log_predictive\": ") : NULL;
  CHECK(pa && pl && strstr(js, "\"test_rows\": 40"), "report JSON: %s", js ? js : "(none)");
  if (pa && pl) {
    acc = strtod(pa + 17, NULL), mll = strtod(pl + 23, NULL);
    CHECK_NEAR(acc, correct / (double)d.test.n, 1e-12, "accuracy");
    CHECK_NEAR(mll, ll / (double)d.test.n, 1e-9, "log predictive");
  }
  CHECK(tx && strstr(tx, "accuracy"), "report text: %s", tx ? tx : "(none)");
  gfv_data_free(&d);
  free(js), free(tx);
  gfv_target_free(t);
}

/* ---- bnn --------------------------------------------------------------------------- */

typedef struct {
  size_t N, p, H;
  const double *X;   /* N x p standardised inputs */
  double *y;         /* N standardised response */
  double ym, ys;
} bnn_ref;

static void bnn_ref_make(const gfv_config *cfg, gfv_data *d, bnn_ref *r) {
  CHECK(gfv_data_load(cfg, "bnn", GFV_STD_CENTER_SCALE, 0, d) == GFV_OK, "data");
  r->N = d->train.n, r->p = d->train.p, r->H = (size_t)cfg->hidden, r->X = d->train.X;
  double m = 0, v = 0;
  for (size_t i = 0; i < r->N; i++) m += d->train.y[i];
  m /= (double)r->N;
  for (size_t i = 0; i < r->N; i++) v += (d->train.y[i] - m) * (d->train.y[i] - m);
  r->ym = m, r->ys = sqrt(v / (double)r->N);
  r->y = malloc(r->N * sizeof *r->y);
  for (size_t i = 0; i < r->N; i++) r->y[i] = (d->train.y[i] - m) / r->ys;
}

/* The network output at row x, and the smallest |pre-activation|. */
static double bnn_net(const bnn_ref *r, const double *z, const double *x, double *kink) {
  const size_t p = r->p, H = r->H;
  double f = z[(p + 2) * H];
  for (size_t h = 0; h < H; h++) {
    double a = z[p * H + h];
    for (size_t k = 0; k < p; k++) a += x[k] * z[k * H + h];
    if (kink && fabs(a) < *kink) *kink = fabs(a);
    f += (a > 0 ? a : 0) * z[p * H + H + h];
  }
  return f;
}

/* l(z) over the rows `rows` (all when NULL), likelihood scaled by N / B. */
static double bnn_direct(const bnn_ref *r, const double *z, size_t B, const size_t *rows, double *kink) {
  const size_t D = (r->p + 2) * r->H + 3, nw = D - 2;
  const double lg = z[D - 2], ll = z[D - 1], gam = exp(lg), lam = exp(ll);
  double sse = 0, w2 = 0;
  size_t n = rows ? B : r->N;
  for (size_t k = 0; k < n; k++) {
    size_t i = rows ? rows[k] : k;
    double e = bnn_net(r, z, r->X + i * r->p, kink) - r->y[i];
    sse += e * e;
  }
  for (size_t a = 0; a < nw; a++) w2 += z[a] * z[a];
  double c = (double)r->N / (double)n, lb = log(0.1);
  return c * (0.5 * (double)n * (lg - log(2 * M_PI)) - 0.5 * gam * sse) +
         0.5 * (double)nw * (ll - log(2 * M_PI)) - 0.5 * lam * w2 + (lg - 0.1 * gam) + (ll - 0.1 * lam) +
         2 * lb;
}

/* A point with weights ~ N(0, 0.5^2), log gamma, log lambda ~ N(0, 0.5^2), re-drawn until
 * every pre-activation is at least 1e-3 from the ReLU kink. */
static void bnn_point(const bnn_ref *r, gsl_rng *rng, double *z) {
  const size_t D = (r->p + 2) * r->H + 3;
  for (int tries = 0; tries < 1000; tries++) {
    gfv_rng_gaussian_fill(rng, D, z);
    for (size_t a = 0; a < D; a++) z[a] *= 0.5;
    double kink = INFINITY;
    bnn_direct(r, z, 0, NULL, &kink);
    if (kink > 1e-3) return;
  }
}

static void test_bnn_gradient(void) {
  gfv_config cfg;
  config(&cfg, "bnn", regression_csv("reg.csv", 40, 21));
  cfg.hidden = 6;
  gfv_target *t = make(&cfg);
  if (!t) return;
  gfv_data d;
  bnn_ref r;
  bnn_ref_make(&cfg, &d, &r);
  const size_t D = t->dim;
  CHECK(D == (3 + 2) * 6 + 3 && !t->has_hessian && !t->normalized && t->begin_iteration && t->report,
        "bnn flags: d = %zu", D);
  enum { NP = 5 };
  double *z = calloc(NP * D, sizeof *z), *g = calloc(NP * D, sizeof *g), lp[NP];
  double *zp = calloc(D, sizeof *zp), *gs = calloc(D, sizeof *gs), l1, l2;
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(rng, 8);
  for (size_t i = 0; i < NP; i++) bnn_point(&r, rng, z + i * D);
  gsl_rng_free(rng);
  CHECK(gfv_target_eval(t, NP, z, lp, g, NULL) == GFV_OK, "eval");
  for (size_t i = 0; i < NP; i++) {
    const double *zi = z + i * D;
    CHECK_REL(lp[i], bnn_direct(&r, zi, 0, NULL, NULL), 1e-12, 1.0, "bnn logp vs direct");
    gfv_target_eval(t, 1, zi, &l1, gs, NULL);
    for (size_t a = 0; a < D; a++) CHECK_REL(gs[a], g[i * D + a], 1e-12, 1.0, "block vs single");
    for (size_t a = 0; a < D; a++) {
      memcpy(zp, zi, D * sizeof *zp);
      zp[a] += FD_H;
      l1 = bnn_direct(&r, zp, 0, NULL, NULL);
      zp[a] -= 2 * FD_H;
      l2 = bnn_direct(&r, zp, 0, NULL, NULL);
      CHECK_REL((l1 - l2) / (2 * FD_H), g[i * D + a], 2e-5, 1.0, "bnn gradient vs FD");
    }
  }
  free(z), free(g), free(zp), free(gs), free(r.y);
  gfv_data_free(&d);
  gfv_target_free(t);
}

/* Minibatches: determined by (seed, iteration), rows distinct, the scaled batch log density
 * is the formula over those rows, its average over iterations is the full-data value
 * (unbiased), iteration < 0 restores all rows, and the gradient matches FD on the batch. */
static void test_bnn_minibatch(void) {
  gfv_config cfg;
  config(&cfg, "bnn", regression_csv("reg2.csv", 30, 4));
  cfg.hidden = 4;
  cfg.batch_size = 7;
  gfv_target *t = make(&cfg);
  if (!t) return;
  gfv_data d;
  bnn_ref r;
  bnn_ref_make(&cfg, &d, &r);
  const size_t D = t->dim;
  double *z = calloc(D, sizeof *z), *g = calloc(D, sizeof *g), *zp = calloc(D, sizeof *zp), lp, l1, l2;
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(rng, 2);
  bnn_point(&r, rng, z);
  gsl_rng_free(rng);
  size_t B, first[7];
  const size_t *rows;
  t->begin_iteration(t, 5, 99);
  gfv_target_bnn_batch(t, &B, &rows);
  CHECK(B == 7 && rows, "batch of 7: %zu", B);
  if (!rows) goto done;
  memcpy(first, rows, sizeof first);
  for (size_t a = 0; a < 7; a++)
    for (size_t b = 0; b < a; b++) CHECK(first[a] != first[b], "rows distinct");
  gfv_target_eval(t, 1, z, &lp, g, NULL);
  CHECK_REL(lp, bnn_direct(&r, z, 7, first, NULL), 1e-12, 1.0, "batch logp = scaled formula");
  for (size_t a = 0; a < D; a += 3) {
    memcpy(zp, z, D * sizeof *zp);
    zp[a] += FD_H;
    l1 = bnn_direct(&r, zp, 7, first, NULL);
    zp[a] -= 2 * FD_H;
    l2 = bnn_direct(&r, zp, 7, first, NULL);
    CHECK_REL((l1 - l2) / (2 * FD_H), g[a], 2e-5, 1.0, "batch gradient vs FD");
  }
  t->begin_iteration(t, 6, 99);
  gfv_target_bnn_batch(t, &B, &rows);
  CHECK(memcmp(rows, first, sizeof first) != 0, "next iteration, other rows");
  t->begin_iteration(t, 5, 99);
  gfv_target_bnn_batch(t, &B, &rows);
  CHECK(memcmp(rows, first, sizeof first) == 0, "same (seed, iteration), same rows");
  t->begin_iteration(t, 5, 100);
  gfv_target_bnn_batch(t, &B, &rows);
  CHECK(memcmp(rows, first, sizeof first) != 0, "other seed, other rows");
  /* unbiased: the mean over 4000 batches is the full-data value within 4 standard errors */
  const long n = 4000;
  double sum = 0, sum2 = 0, full = bnn_direct(&r, z, 0, NULL, NULL);
  for (long it = 0; it < n; it++) {
    t->begin_iteration(t, it, 1);
    gfv_target_eval(t, 1, z, &lp, NULL, NULL);
    sum += lp - full, sum2 += (lp - full) * (lp - full);
  }
  double mean = sum / (double)n, se = sqrt((sum2 / (double)n - mean * mean) / (double)n);
  CHECK(se > 0 && fabs(mean) < 4 * se, "minibatch bias %g (se %g)", mean, se);
  t->begin_iteration(t, -1, 1);
  gfv_target_bnn_batch(t, &B, &rows);
  CHECK(B == 30 && rows == NULL, "iteration -1: all rows");
  gfv_target_eval(t, 1, z, &lp, NULL, NULL);
  CHECK_REL(lp, full, 1e-12, 1.0, "all rows again");
done:
  free(z), free(g), free(zp), free(r.y);
  gfv_data_free(&d);
  gfv_target_free(t);
}

/* The report with a point-mass mixture at z0: RMSE and log-likelihood of that network. */
static void test_bnn_report(void) {
  gfv_config cfg;
  config(&cfg, "bnn", regression_csv("reg3.csv", 50, 9));
  strcpy(cfg.test_data, regression_csv("reg3t.csv", 20, 10));
  cfg.hidden = 5;
  gfv_target *t = make(&cfg);
  if (!t) return;
  gfv_data d;
  bnn_ref r;
  bnn_ref_make(&cfg, &d, &r);
  const size_t D = t->dim;
  double *z = calloc(D, sizeof *z), *cov = calloc(D * D, sizeof *cov), wk = 1.0;
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(rng, 5);
  bnn_point(&r, rng, z);
  gsl_rng_free(rng);
  for (size_t a = 0; a < D; a++) cov[a * D + a] = 1e-24;
  gfv_fitted_mixture fit = {.K = 1, .d = D, .w = &wk, .mu = z, .cov = cov, .seed = 7};
  char *js = NULL, *tx = NULL;
  size_t jl, tl;
  FILE *json = open_memstream(&js, &jl), *text = open_memstream(&tx, &tl);
  CHECK(t->report(t, &fit, json, text) == GFV_OK, "report: %s", gfv_error_message());
  fclose(json), fclose(text);
  double sse = 0, ll = 0, var = r.ys * r.ys * exp(-z[D - 2]);
  for (size_t i = 0; i < d.test.n; i++) {
    double yhat = r.ym + r.ys * bnn_net(&r, z, d.test.X + i * r.p, NULL), e = d.test.y[i] - yhat;
    sse += e * e;
    ll += -0.5 * log(2 * M_PI * var) - 0.5 * e * e / var;
  }
  const char *pr = js ? strstr(js, "\"test_rmse\": ") : NULL;
  const char *pl = js ? strstr(js, "\"test_log_likelihood\": ") : NULL;
  CHECK(pr && pl, "report JSON: %s", js ? js : "(none)");
  if (pr && pl) {
    CHECK_REL(strtod(pr + 13, NULL), sqrt(sse / (double)d.test.n), 1e-9, 1e-9, "test RMSE");
    CHECK_REL(strtod(pl + 23, NULL), ll / (double)d.test.n, 1e-9, 1e-9, "test log-likelihood");
  }
  free(js), free(tx), free(z), free(cov), free(r.y);
  gfv_data_free(&d);
  gfv_target_free(t);
}

/* ---- bad input --------------------------------------------------------------------- */

static void expect_fail(gfv_config *cfg, int status, const char *fragment) {
  gfv_target *t = NULL;
  gfv_error_clear();
  int st = gfv_target_create_from_config(cfg, &t);
  CHECK(st == status && t == NULL, "%s: status %d (want %d): %s", fragment, st, status,
        gfv_error_message());
  CHECK(strstr(gfv_error_message(), fragment), "message '%s' lacks '%s'", gfv_error_message(), fragment);
  gfv_target_free(t);
}

static void test_bad_input(void) {
  gfv_config cfg;
  char missing[600];
  snprintf(missing, sizeof missing, "%s/nope.csv", tmpdir);
  const char *good = write_file("good.csv", "a,b,label\n1,2,0\n2,1,1\n3,3,0\n");
  const char *targets[2] = {"logreg", "bnn"};
  for (int k = 0; k < 2; k++) {
    config(&cfg, targets[k], "");
    expect_fail(&cfg, GFV_ERR_USAGE, "needs its training data: --data=FILE");
    config(&cfg, targets[k], missing);
    expect_fail(&cfg, GFV_ERR_INPUT, "nope.csv");
    config(&cfg, targets[k], write_file("ragged.csv", "a,b,label\n1,2,0\n2,1\n"));
    expect_fail(&cfg, GFV_ERR_INPUT, "ragged.csv:3: expected 3 columns, found 2");
    config(&cfg, targets[k], write_file("text.csv", "a,b,label\n1,x,0\n"));
    expect_fail(&cfg, GFV_ERR_INPUT, "text.csv:2: field 2 'x' is not a number");
    config(&cfg, targets[k], good);
    cfg.label_col = 4;
    expect_fail(&cfg, GFV_ERR_USAGE, "--label-col=4: ");
    cfg.label_col = -4;
    expect_fail(&cfg, GFV_ERR_USAGE, "--label-col=-4: ");
    cfg.label_col = 0;
    expect_fail(&cfg, GFV_ERR_USAGE, "has 3 columns");
    config(&cfg, targets[k], good);
    strcpy(cfg.test_data, write_file("test4.csv", "a,b,c,label\n1,2,3,0\n"));
    expect_fail(&cfg, GFV_ERR_INPUT, "test4.csv has 4 columns");
    config(&cfg, targets[k], good);
    strcpy(cfg.test_data, good);
    cfg.split_seed = 3;
    expect_fail(&cfg, GFV_ERR_USAGE, "--test-data and --split-seed");
    config(&cfg, targets[k], write_file("two.csv", "a,label\n1,0\n2,1\n"));
    cfg.split_seed = 3; /* 2 rows: 90/10 leaves 1 training row */
    expect_fail(&cfg, GFV_ERR_INPUT, "leaves 1 training and 1 test rows");
    config(&cfg, targets[k], write_file("one.csv", "label\n1\n0\n"));
    expect_fail(&cfg, GFV_ERR_INPUT, "at least one feature");
    config(&cfg, targets[k], write_file("onerow.csv", "a,label\n1,1\n"));
    expect_fail(&cfg, GFV_ERR_INPUT, "1 data row");
  }
  /* logistic labels must be 0 or 1: in --data and in --test-data */
  config(&cfg, "logreg", write_file("labels.csv", "a,b,label\n1,2,0\n2,1,2\n3,3,1\n"));
  expect_fail(&cfg, GFV_ERR_INPUT, "labels.csv: data row 2: label 2 (column 3) is not 0 or 1");
  config(&cfg, "logreg", write_file("labels2.csv", "a,b,label\n1,2,0\n2,1,0.5\n"));
  expect_fail(&cfg, GFV_ERR_INPUT, "label 0.5 (column 3) is not 0 or 1");
  config(&cfg, "logreg", good);
  cfg.label_col = 1; /* column a holds 1, 2, 3 */
  expect_fail(&cfg, GFV_ERR_INPUT, "good.csv: data row 2: label 2 (column 1) is not 0 or 1");
  config(&cfg, "logreg", good);
  strcpy(cfg.test_data, write_file("badtest.csv", "a,b,label\n1,2,-1\n"));
  expect_fail(&cfg, GFV_ERR_INPUT, "badtest.csv: data row 1: label -1");
  /* a constant regression response */
  config(&cfg, "bnn", write_file("const.csv", "a,y\n1,5\n2,5\n3,5\n"));
  expect_fail(&cfg, GFV_ERR_INPUT, "is constant");
  /* a data model created without its configuration */
  gfv_target *t = NULL;
  CHECK(gfv_target_create("logreg", 0, &t) == GFV_ERR_USAGE && !t, "logreg without config");
  /* --dim must match the data */
  config(&cfg, "logreg", good);
  cfg.dim = 5;
  expect_fail(&cfg, GFV_ERR_USAGE, "target logreg has dimension 3, but --dim=5 was given");
}

int main(void) {
  gfv_error_install_gsl_handler();
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/gfv_test_models_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    printf("FAIL setup: cannot create a temporary directory\n");
    return 1;
  }
  RUN(test_logreg_derivatives);
  RUN(test_logreg_data_handling);
  RUN(test_split);
  RUN(test_logreg_report);
  RUN(test_bnn_gradient);
  RUN(test_bnn_minibatch);
  RUN(test_bnn_report);
  RUN(test_bad_input);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
  return harness_report();
}
