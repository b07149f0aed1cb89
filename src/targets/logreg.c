/* logreg.c - the "logreg" target: Bayesian logistic regression on a data file.
 *
 * Data: --data (see models.h): features x_i (standardised per --standardize, default
 * scale = divided by their standard deviation) and labels y_i in {0, 1}.  With --intercept
 * (default) a column of ones is appended, so the weight vector z has D = p + 1
 * coordinates: z_1..z_p for the features in file order, z_D the intercept.
 *
 *   l(z) = sum_i [ y_i s_i - log(1 + e^{s_i}) ] - |z|^2 / (2 s^2) - D/2 log(2 pi s^2),
 *   s_i = x_i . z,   s = --prior-scale (default 10),
 *
 * the log joint density of labels and weights (likelihood times the normalised prior), so
 * exp(l) integrates to the evidence p(y | X), the ELBO is a lower bound on log p(y | X),
 * and the target is not normalised.
 *
 *   grad l = X^T (y - sigma(s)) - z / s^2,   H_l = -X^T diag(sigma (1 - sigma)) X - I / s^2.
 *
 * A block of n points Z (n x D) costs one DGEMM for S = X Z^T (N x n), one for the gradients
 * R^T X with R = y - sigma(S), and one DSYRK per point for the Hessians.
 *
 * Report (--test-data or --split-seed): with M = 4000 draws w_m from the fitted mixture,
 * the posterior predictive p(y = 1 | x) = (1/M) sum_m sigma(x . w_m); accuracy of the rule
 * p > 1/2 and the mean log predictive likelihood (1/T) sum_t log p(y_t | x_t). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "rng/stream.h"
#include "targets/models.h"
#include "targets/registry.h"
#include "targets/targets_impl.h"

#define LOGREG_CHUNK_ELEMS (1u << 20) /* bound on N x (points per chunk) scratch */
#define LOGREG_DRAWS 4000             /* posterior draws for the report */

typedef struct {
  size_t N, D, T;           /* training rows, dimension, test rows */
  size_t p;                 /* features (D = p + 1 with the intercept) */
  int intercept, scaled;    /* --intercept; --standardize changed the features */
  double *mean, *sd;        /* p: the standardisation x' = (x - mean) / sd */
  char *describe;           /* the data description (gfv_data_describe), as JSON members */
  double *X, *y;            /* N x D (intercept last), N */
  double *Xt, *yt;          /* T x D, T: the test set */
  double prec, logc;        /* 1/s^2, -D/2 log(2 pi s^2) */
  size_t chunk;             /* points per block */
  double *S, *R, *Xw;       /* N x chunk, N x chunk, N x D scratch */
} logreg_ctx;

static void logreg_destroy(void *p) {
  logreg_ctx *c = p;
  if (!c) return;
  free(c->X), free(c->y), free(c->Xt), free(c->yt), free(c->S), free(c->R), free(c->Xw);
  free(c->mean), free(c->sd), free(c->describe);
  free(c);
}

static double sigmoid(double s) {
  if (s >= 0) return 1.0 / (1.0 + exp(-s));
  double e = exp(s);
  return e / (1.0 + e);
}

static void eval_chunk(logreg_ctx *c, size_t nc, const double *Z, double *logp, double *grad,
                       double *hess) {
  const size_t N = c->N, D = c->D;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)nc, (int)D, 1.0, c->X, (int)D,
              Z, (int)D, 0.0, c->S, (int)nc);
  for (size_t j = 0; j < nc; j++)
    logp[j] = c->logc - 0.5 * c->prec * cblas_ddot((int)D, Z + j * D, 1, Z + j * D, 1);
  for (size_t i = 0; i < N; i++) {
    const double yi = c->y[i], *Si = c->S + i * nc;
    double *Ri = c->R + i * nc;
    for (size_t j = 0; j < nc; j++) {
      logp[j] += yi * Si[j] - gfv_log1pexp(Si[j]);
      Ri[j] = yi - sigmoid(Si[j]);
    }
  }
  if (grad) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nc, (int)D, (int)N, 1.0, c->R,
                (int)nc, c->X, (int)D, 0.0, grad, (int)D);
    cblas_daxpy((int)(nc * D), -c->prec, Z, 1, grad, 1);
  }
  if (hess)
    for (size_t j = 0; j < nc; j++) {
      double *H = hess + j * D * D;
      for (size_t i = 0; i < N; i++) {
        double pi = sigmoid(c->S[i * nc + j]), v = sqrt(pi * (1.0 - pi));
        for (size_t a = 0; a < D; a++) c->Xw[i * D + a] = v * c->X[i * D + a];
      }
      cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)D, (int)N, -1.0, c->Xw, (int)D, 0.0,
                  H, (int)D);
      gfv_fill_upper_from_lower(D, H);
      for (size_t a = 0; a < D; a++) H[a * D + a] -= c->prec;
    }
}

/* S, R and Xw are scratch reached through ctx (one thread per process). */
static int logreg_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                       double *hess) {
  logreg_ctx *c = t->ctx;
  const size_t D = c->D;
  for (size_t i0 = 0; i0 < n; i0 += c->chunk) {
    size_t nc = n - i0 < c->chunk ? n - i0 : c->chunk;
    eval_chunk(c, nc, z + i0 * D, logp + i0, grad ? grad + i0 * D : NULL,
               hess ? hess + i0 * D * D : NULL);
  }
  return GFV_OK;
}

/* Posterior-predictive accuracy and log-likelihood on the test set. */
static int logreg_report(const gfv_target *t, const gfv_fitted_mixture *fit, FILE *json,
                         FILE *text) {
  const logreg_ctx *c = t->ctx;
  const size_t D = c->D, T = c->T, M = LOGREG_DRAWS;
  if (T == 0) return GFV_OK;
  GFV_CHECK(fit->d == D, GFV_ERR_INTERNAL, "report: mixture of dimension %zu, target %zu", fit->d, D);
  double *W = NULL, *S = NULL, *lw = NULL, *acc = NULL;
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&W, M * D, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&S, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&lw, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&acc, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_fit_draw(fit, GFV_PURPOSE_REPORT, M, W), done);
  double correct = 0, ll = 0;
  for (size_t r = 0; r < T; r++) {
    /* s_m = w_m . x_r for all draws at once; log p(y | x) = logmeanexp(-log(1 + e^{-+s})) */
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)M, (int)D, 1.0, W, (int)D, c->Xt + r * D, 1,
                0.0, S, 1);
    const double sign = c->yt[r] == 1.0 ? 1.0 : -1.0;
    for (size_t m = 0; m < M; m++) lw[m] = -gfv_log1pexp(-sign * S[m]);
    double lp = gfv_lpd_add(M, lw, T, acc); /* log p(y_r | x_r) */
    ll += lp;
    /* the rule predicts 1 when p(y = 1 | x) > 1/2 */
    correct += c->yt[r] == 1.0 ? lp > log(0.5) : lp >= log(0.5);
  }
  double accuracy = correct / (double)T, mll = ll / (double)T;
  fprintf(json, "    \"test_rows\": %zu,\n    \"predictive_draws\": %zu,\n", T, M);
  double se = gfv_lpd_mcse(M, acc);
  fprintf(json, "    \"test_accuracy\": %.17g,\n    \"test_log_predictive\": %.17g,\n", accuracy,
          mll);
  fprintf(json, "    \"test_log_predictive_mcse\": %.17g", se);
  fprintf(text, "test set: %zu rows, accuracy %.4f, log predictive likelihood %.4f +- %.4f per row "
                "(posterior predictive over %zu mixture draws)\n", T, accuracy, mll, se, M);
done:
  free(W), free(S), free(lw), free(acc);
  return st;
}

/* draws.csv: the coefficients as fitted (on the standardised features), then, when
 * --standardize changed the features, the same linear predictor on the original scale:
 * x' . w + b = sum_a (w_a / sd_a) x_a + (b - sum_a w_a mean_a / sd_a). */
static int logreg_constrain(const gfv_target *t, size_t n, const double *z, const unsigned long *seeds,
                            double *out) {
  (void)seeds;
  const logreg_ctx *c = t->ctx;
  const size_t D = c->D, p = c->p;
  for (size_t i = 0; i < n; i++) {
    const double *w = z + i * D;
    double *o = out + i * t->nout;
    memcpy(o, w, D * sizeof(double));
    if (!c->scaled) continue;
    double b = c->intercept ? w[p] : 0.0;
    for (size_t a = 0; a < p; a++) {
      o[D + a] = w[a] / c->sd[a];
      b -= w[a] * c->mean[a] / c->sd[a];
    }
    o[D + p] = b;
  }
  return GFV_OK;
}

/* The header's feature names, else beta[1..p]; "intercept" last. */
static int logreg_names(gfv_target *t, const gfv_data *data) {
  const logreg_ctx *c = t->ctx;
  const size_t p = c->p, D = c->D;
  t->nout = D + (c->scaled ? p + 1 : 0);
  GFV_CALL(gfv_names_alloc(t->nout, &t->out_names));
  GFV_CALL(gfv_names_alloc(D, &t->dim_names));
  for (size_t a = 0; a < p; a++) {
    if (data->names) GFV_CALL(gfv_names_set(t->out_names, a, "%s", data->names[a]));
    else GFV_CALL(gfv_names_set(t->out_names, a, "beta[%zu]", a + 1));
    if (!c->scaled) continue;
    if (data->names) GFV_CALL(gfv_names_set(t->out_names, D + a, "%s_original", data->names[a]));
    else GFV_CALL(gfv_names_set(t->out_names, D + a, "beta_original[%zu]", a + 1));
  }
  if (c->intercept) GFV_CALL(gfv_names_set(t->out_names, p, "intercept"));
  if (c->scaled) GFV_CALL(gfv_names_set(t->out_names, D + p, "intercept_original"));
  for (size_t a = 0; a < D; a++) GFV_CALL(gfv_names_set(t->dim_names, a, "%s", t->out_names[a]));
  return GFV_OK;
}

/* --predict: p(y = 1 | x) over GFV_PREDICT_DRAWS draws, per row of raw features. */
static int logreg_predict(const gfv_target *t, const gfv_fitted_mixture *fit, size_t rows,
                          const double *X, FILE *csv) {
  const logreg_ctx *c = t->ctx;
  const size_t D = c->D, p = c->p, M = GFV_PREDICT_DRAWS;
  double *W = NULL, *S = NULL, *x = NULL;
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&W, M * D, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&S, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&x, D, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_fit_draw(fit, GFV_PURPOSE_PREDICT, M, W), done);
  gfv_predict_header(csv);
  for (size_t r = 0; r < rows; r++) {
    for (size_t a = 0; a < p; a++) x[a] = (X[r * p + a] - c->mean[a]) / c->sd[a];
    if (D > p) x[p] = 1.0;
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)M, (int)D, 1.0, W, (int)D, x, 1, 0.0, S, 1);
    for (size_t m = 0; m < M; m++) S[m] = sigmoid(S[m]);
    fprintf(csv, "%zu", r + 1);
    gfv_predict_row(csv, M, S);
  }
done:
  free(W), free(S), free(x);
  return st;
}

static int logreg_describe(const gfv_target *t, FILE *json) {
  const logreg_ctx *c = t->ctx;
  fputs(c->describe, json);
  return GFV_OK;
}

/* What the outputs, the predictions and summary.json's "data" need from the data set. */
static int keep_data(gfv_target *t, const gfv_data *data) {
  logreg_ctx *c = t->ctx;
  c->p = data->train.p, c->intercept = c->D > c->p;
  GFV_ALLOC(c->mean, c->p);
  GFV_ALLOC(c->sd, c->p);
  memcpy(c->mean, data->mean, c->p * sizeof(double));
  memcpy(c->sd, data->sd, c->p * sizeof(double));
  c->scaled = data->mode != GFV_STD_NONE;
  size_t len = 0;
  FILE *f = open_memstream(&c->describe, &len);
  GFV_CHECK(f, GFV_ERR_MEMORY, "cannot allocate the data description");
  gfv_data_describe(data, f);
  GFV_CHECK(fclose(f) == 0, GFV_ERR_MEMORY, "cannot allocate the data description");
  GFV_CALL(logreg_names(t, data));
  t->constrain = logreg_constrain;
  t->predict = logreg_predict;
  t->predict_cols = c->p;
  t->describe = logreg_describe;
  return GFV_OK;
}

/* X (n x p) -> n x D with the intercept column last when D = p + 1. */
static int design(const gfv_dataset *part, size_t D, double **X, double **y) {
  const size_t n = part->n, p = part->p;
  GFV_ALLOC(*X, n * D > 0 ? n * D : 1);
  GFV_ALLOC(*y, n > 0 ? n : 1);
  for (size_t i = 0; i < n; i++) {
    memcpy(*X + i * D, part->X + i * p, p * sizeof(double));
    if (D > p) (*X)[i * D + p] = 1.0;
    (*y)[i] = part->y[i];
  }
  return GFV_OK;
}

static int setup(logreg_ctx *c, const gfv_config *cfg, const gfv_data *data) {
  c->N = data->train.n, c->T = data->test.n;
  c->D = data->train.p + (cfg->intercept ? 1 : 0);
  GFV_CALL(design(&data->train, c->D, &c->X, &c->y));
  GFV_CALL(design(&data->test, c->D, &c->Xt, &c->yt));
  const double s = cfg->prior_scale;
  c->prec = 1.0 / (s * s);
  c->logc = -0.5 * (double)c->D * log(2.0 * M_PI * s * s);
  size_t chunk = LOGREG_CHUNK_ELEMS / c->N;
  c->chunk = chunk < 1 ? 1 : chunk > 256 ? 256 : chunk;
  GFV_ALLOC(c->S, c->N * c->chunk);
  GFV_ALLOC(c->R, c->N * c->chunk);
  GFV_ALLOC(c->Xw, c->N * c->D);
  return GFV_OK;
}

int gfv_target_logreg_create(const gfv_config *cfg, gfv_target **out) {
  *out = NULL;
  gfv_data data;
  GFV_CALL(gfv_data_load(cfg, "logreg", GFV_STD_SCALE, 1, &data));
  gfv_target *t = NULL;
  logreg_ctx *c = NULL;
  int st = GFV_OK;
  size_t D = data.train.p + (cfg->intercept ? 1 : 0);
  GFV_CALL_GOTO(st, gfv_target_alloc("logreg", D, &t), fail);
  t->has_hessian = 1;
  t->normalized = 0;
  t->eval = logreg_eval;
  t->destroy = logreg_destroy;
  t->report = logreg_report;
  GFV_CALL_GOTO(st, gfv_calloc(&c, 1, sizeof *c), fail);
  t->ctx = c;
  GFV_CALL_GOTO(st, setup(c, cfg, &data), fail);
  GFV_CALL_GOTO(st, keep_data(t, &data), fail);
  gfv_data_free(&data);
  *out = t;
  return GFV_OK;
fail:
  gfv_data_free(&data);
  gfv_target_free(t);
  return st;
}

int gfv_target_logreg_design(const gfv_target *t, size_t *n, size_t *D, const double **X,
                             const double **y) {
  GFV_CHECK(t && t->eval == logreg_eval, GFV_ERR_INTERNAL, "not a logreg target");
  const logreg_ctx *c = t->ctx;
  *n = c->N, *D = c->D, *X = c->X, *y = c->y;
  return GFV_OK;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option logreg_options[] = {
    {.name = "intercept", .type = OPT_BOOL, OPT_FIELD(intercept), .def = "true",
     .role = ROLE_PROBLEM,
     .help = "logreg: add an intercept (a column of ones) to the features"},
    {.name = "prior-scale", .type = OPT_DOUBLE, OPT_FIELD(prior_scale), .def = "10",
     .role = ROLE_PROBLEM,
     .bound = BOUND_GT, .lo = 0, .help = "logreg: prior N(0, s^2 I) on all weights"},
};
GFV_OPTION_TABLE(gfv_options_logreg, logreg_options);

/* ---- the type (src/targets/registry.h; listed in target_list.h) ---- */

static int create_logreg(const char *arg, size_t dim, const gfv_config *cfg, gfv_target **out) {
  (void)arg, (void)dim;
  return gfv_target_logreg_create(cfg, out);
}

const gfv_target_type gfv_target_type_logreg = {
    .name = "logreg", .synopsis = "logreg",
    .help = "Bayesian logistic regression on --data (0/1 labels), prior N(0, prior_scale^2 I), "
            "intercept last",
    .needs_config = 1, .create = create_logreg, .options = &gfv_options_logreg};
