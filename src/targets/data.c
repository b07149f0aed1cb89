/* data.c - data sets of the logreg and bnn targets, and the helpers their reports share
 * (see models.h for the conventions). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "linalg/linalg.h"
#include "rng/stream.h"
#include "targets/models.h"

double gfv_log1pexp(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

void gfv_data_free(gfv_data *d) {
  if (!d) return;
  free(d->train.X), free(d->train.y), free(d->test.X), free(d->test.y);
  free(d->dev.X), free(d->dev.y), free(d->test_rows), free(d->dev_rows);
  free(d->mean), free(d->sd);
  gfv_names_free(d->names, d->train.p);
  free(d->label_name);
  memset(d, 0, sizeof *d);
}

static int resolve_mode(const char *s, gfv_std_mode def, gfv_std_mode *out) {
  if (strcmp(s, "auto") == 0) *out = def;
  else if (strcmp(s, "scale") == 0) *out = GFV_STD_SCALE;
  else if (strcmp(s, "center-scale") == 0) *out = GFV_STD_CENTER_SCALE;
  else if (strcmp(s, "none") == 0) *out = GFV_STD_NONE;
  else GFV_ERROR(GFV_ERR_USAGE, "--standardize: unknown mode '%s'", s);
  return GFV_OK;
}

/* The 0-based label column of a file with cols columns. */
static int label_column(long lc, size_t cols, const char *path, size_t *out) {
  long idx = lc > 0 ? lc - 1 : (long)cols + lc;
  if (lc == 0 || idx < 0 || idx >= (long)cols)
    GFV_ERROR(GFV_ERR_USAGE,
              "--label-col=%ld: %s has %zu columns (use 1..%zu, or -1..-%zu counting from the end)",
              lc, path, cols, cols, cols);
  *out = (size_t)idx;
  return GFV_OK;
}

static int check_labels(const gfv_table *t, size_t lc, const char *path) {
  for (size_t i = 0; i < t->rows; i++) {
    double v = t->v[i * t->cols + lc];
    if (v != 0.0 && v != 1.0)
      GFV_ERROR(GFV_ERR_INPUT,
                "%s: data row %zu: label %g (column %zu) is not 0 or 1; logistic regression needs "
                "0/1 labels (choose the column with --label-col)",
                path, i + 1, v, lc + 1);
  }
  return GFV_OK;
}

static int alloc_part(gfv_dataset *part, size_t n, size_t p) {
  part->n = n, part->p = p;
  GFV_ALLOC(part->X, n * p > 0 ? n * p : 1);
  GFV_ALLOC(part->y, n > 0 ? n : 1);
  return GFV_OK;
}

/* Row `row` of table t into row i of part, the label column split off. */
static void copy_row(const gfv_table *t, size_t row, size_t lc, gfv_dataset *part, size_t i) {
  const double *src = t->v + row * t->cols;
  double *dst = part->X + i * part->p;
  for (size_t c = 0, a = 0; c < t->cols; c++) {
    if (c == lc) part->y[i] = src[c];
    else dst[a++] = src[c];
  }
}

/* Training statistics and their application to both parts. */
static void standardize(gfv_data *d) {
  const size_t p = d->train.p, n = d->train.n;
  for (size_t a = 0; a < p; a++) {
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++) m += d->train.X[i * p + a];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) v += (d->train.X[i * p + a] - m) * (d->train.X[i * p + a] - m);
    double sd = sqrt(v / (double)n);
    d->mean[a] = d->mode == GFV_STD_CENTER_SCALE ? m : 0.0;
    d->sd[a] = d->mode != GFV_STD_NONE && sd > 0 ? sd : 1.0;
  }
  gfv_dataset *parts[3] = {&d->train, &d->test, &d->dev};
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < parts[k]->n; i++)
      for (size_t a = 0; a < p; a++) {
        double *x = parts[k]->X + i * p + a;
        *x = (*x - d->mean[a]) / d->sd[a];
      }
}

/* The --split-seed split of table t into d->train and d->test; rows (ntrain) receives the
 * training rows' places in the file, d->test_rows the test rows'. */
static int split(const gfv_config *cfg, const gfv_table *t, const char *model, gfv_data *d,
                 size_t *rows) {
  const size_t n = t->rows, p = t->cols - 1;
  size_t ntrain = (size_t)floor((1.0 - cfg->test_fraction) * (double)n), ntest = n - ntrain;
  GFV_CHECK(ntest >= 1 && ntrain >= 2, GFV_ERR_INPUT,
            "--split-seed: %s has %zu rows; holding out --test-fraction=%g leaves %zu training "
            "and %zu test rows (need at least 2 and 1) for --target=%s",
            cfg->data, n, cfg->test_fraction, ntrain, ntest, model);
  size_t *perm = NULL;
  GFV_ALLOC(perm, n);
  /* Fisher-Yates, step i from word i of the split's stream */
  const gfv_stream rs = gfv_stream_make((uint64_t)cfg->split_seed, 0, GFV_PURPOSE_SPLIT);
  for (size_t i = 0; i < n; i++) perm[i] = i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)gfv_below(gfv_stream_word(&rs, 0, 0, i), i + 1), tmp = perm[i];
    perm[i] = perm[j], perm[j] = tmp;
  }
  int st = GFV_OK;
  GFV_CALL_GOTO(st, alloc_part(&d->train, ntrain, p), done);
  GFV_CALL_GOTO(st, alloc_part(&d->test, ntest, p), done);
  GFV_CALL_GOTO(st, gfv_calloc(&d->test_rows, ntest, sizeof(size_t)), done);
  for (size_t i = 0; i < ntrain; i++) copy_row(t, rows[i] = perm[i], d->label_col, &d->train, i);
  for (size_t i = 0; i < ntest; i++) copy_row(t, d->test_rows[i] = perm[ntrain + i], d->label_col, &d->test, i);
done:
  free(perm);
  return st;
}

static int load_test_file(const gfv_config *cfg, int binary_labels, gfv_data *d) {
  gfv_table t;
  int st = GFV_OK;
  GFV_CALL(gfv_table_read_csv(cfg->test_data, &t));
  if (t.cols != d->file_cols)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "--test-data: %s has %zu columns, but %s has %zu",
                   cfg->test_data, t.cols, cfg->data, d->file_cols);
  if (binary_labels) GFV_CALL_GOTO(st, check_labels(&t, d->label_col, cfg->test_data), done);
  GFV_CALL_GOTO(st, alloc_part(&d->test, t.rows, t.cols - 1), done);
  for (size_t i = 0; i < t.rows; i++) copy_row(&t, i, d->label_col, &d->test, i);
done:
  gfv_table_free(&t);
  return st;
}

/* --dev-fraction: the last round(f n) of the n training rows (SVGD's bayesian_nn.py takes
 * the last 10% of its shuffled training rows) move to d->dev, before the standardisation,
 * so the statistics come from the rows the network is trained on.  rows: the training rows'
 * places in the file. */
static int hold_dev(const gfv_config *cfg, const char *model, const size_t *rows, gfv_data *d) {
  GFV_CHECK(strcmp(model, "bnn") == 0, GFV_ERR_USAGE,
            "--dev-fraction=%g: only --target=bnn holds out a development set (not --target=%s); "
            "leave it at 0", cfg->dev_fraction, model);
  const size_t n = d->train.n, p = d->train.p, ndev = (size_t)llround(cfg->dev_fraction * (double)n);
  GFV_CHECK(ndev >= 1 && n - ndev >= 2, GFV_ERR_INPUT,
            "--dev-fraction=%g: %s has %zu training rows; holding out %zu leaves %zu (need at "
            "least 1 development and 2 training rows)",
            cfg->dev_fraction, cfg->data, n, ndev, n - ndev);
  GFV_CALL(alloc_part(&d->dev, ndev, p));
  GFV_CALL(gfv_calloc(&d->dev_rows, ndev, sizeof(size_t)));
  const size_t keep = n - ndev;
  memcpy(d->dev.X, d->train.X + keep * p, ndev * p * sizeof(double));
  memcpy(d->dev.y, d->train.y + keep, ndev * sizeof(double));
  memcpy(d->dev_rows, rows + keep, ndev * sizeof(size_t));
  d->train.n = keep;
  return GFV_OK;
}

/* The header's names: the features in file order, and the label's. */
static int keep_names(const gfv_table *t, gfv_data *d) {
  GFV_CALL(gfv_names_alloc(t->cols - 1, &d->names));
  for (size_t c = 0, a = 0; c < t->cols; c++) {
    if (c != d->label_col) {
      GFV_CALL(gfv_names_set(d->names, a++, "%s", t->header[c]));
      continue;
    }
    char **label = &d->label_name;
    GFV_CALL(gfv_names_set(label, 0, "%s", t->header[c]));
  }
  return GFV_OK;
}

static int load(const gfv_config *cfg, const char *model, gfv_std_mode default_mode,
                int binary_labels, gfv_data *d) {
  GFV_CHECK(cfg->data[0], GFV_ERR_USAGE, "--target=%s needs its training data: --data=FILE (CSV)",
            model);
  GFV_CHECK(!(cfg->test_data[0] && cfg->split_seed > 0), GFV_ERR_USAGE,
            "--test-data and --split-seed both name a test set; give one of them");
  GFV_CALL(resolve_mode(cfg->standardize, default_mode, &d->mode));
  gfv_table t;
  int st = GFV_OK;
  size_t *rows = NULL; /* the training rows' places in the file */
  GFV_CALL(gfv_table_read_csv(cfg->data, &t));
  d->file_cols = t.cols;
  if (t.cols < 2)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT,
                   "%s: %zu column; --target=%s needs at least one feature and a label column",
                   cfg->data, t.cols, model);
  GFV_CALL_GOTO(st, label_column(cfg->label_col, t.cols, cfg->data, &d->label_col), done);
  if (binary_labels) GFV_CALL_GOTO(st, check_labels(&t, d->label_col, cfg->data), done);
  GFV_CALL_GOTO(st, gfv_calloc(&rows, t.rows > 0 ? t.rows : 1, sizeof(size_t)), done);
  if (cfg->split_seed > 0) {
    GFV_CALL_GOTO(st, split(cfg, &t, model, d, rows), done);
  } else {
    if (t.rows < 2)
      GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "%s: %zu data row; --target=%s needs at least 2",
                     cfg->data, t.rows, model);
    GFV_CALL_GOTO(st, alloc_part(&d->train, t.rows, t.cols - 1), done);
    for (size_t i = 0; i < t.rows; i++) copy_row(&t, rows[i] = i, d->label_col, &d->train, i);
    if (cfg->test_data[0]) GFV_CALL_GOTO(st, load_test_file(cfg, binary_labels, d), done);
    else d->test.p = t.cols - 1;
  }
  if (cfg->dev_fraction > 0) GFV_CALL_GOTO(st, hold_dev(cfg, model, rows, d), done);
  if (t.has_header) GFV_CALL_GOTO(st, keep_names(&t, d), done);
  GFV_CALL_GOTO(st, gfv_calloc(&d->mean, t.cols - 1, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&d->sd, t.cols - 1, sizeof(double)), done);
  standardize(d);
done:
  free(rows);
  gfv_table_free(&t);
  return st;
}

int gfv_data_load(const gfv_config *cfg, const char *model, gfv_std_mode default_mode,
                  int binary_labels, gfv_data *out) {
  memset(out, 0, sizeof *out);
  int st = load(cfg, model, default_mode, binary_labels, out);
  if (st) {
    gfv_data_free(out);
    gfv_error_push(__FILE__, __LINE__, __func__);
  }
  return st;
}

/* A lowrank:R fit (cov = [v | Z], Sigma = diag(v) - Z Z^T with the columns of v^{-1/2} Z
 * orthogonal, family_lowrank.c): x = mu + v^{1/2} (eps - Y Y^T eps) with
 * Y_r = v^{-1/2} Z_r / h_r, h_r = sqrt(2 - y_r), y_r = 1 - sqrt(1 - |v^{-1/2} Z_r|^2), the
 * sampling factor family_lowrank.c's covariance was made from.  Y (d x R) is overwritten. */
static int lowrank_factor(size_t d, size_t R, const double *cov, double *Y) {
  const double *v = cov, *Z = cov + d;
  for (size_t r = 0; r < R; r++) {
    double w = 0;
    for (size_t a = 0; a < d; a++) {
      if (!(v[a] > 0) || !isfinite(v[a])) return 1;
      w += Z[a * R + r] * Z[a * R + r] / v[a];
    }
    if (!(w < 1)) return 1;
    const double h = sqrt(2 - (1 - sqrt(1 - w)));
    for (size_t a = 0; a < d; a++) Y[a * R + r] = Z[a * R + r] / sqrt(v[a]) / h;
  }
  return 0;
}

static void lowrank_draw(size_t d, size_t R, const double *mu, const double *v, const double *Y,
                         const double *eps, double *x) {
  double c[32] = {0}; /* GFV_LOWRANK_MAX */
  for (size_t a = 0; a < d; a++)
    for (size_t r = 0; r < R; r++) c[r] += Y[a * R + r] * eps[a];
  for (size_t a = 0; a < d; a++) {
    double e = eps[a];
    for (size_t r = 0; r < R; r++) e -= Y[a * R + r] * c[r];
    x[a] = mu[a] + sqrt(v[a]) * e;
  }
}

int gfv_fit_draw(const gfv_fitted_mixture *fit, unsigned purpose, size_t n, double *z) {
  const size_t d = fit->d, dd = d * d, K = fit->K, R = fit->rank, ps = d + d * R;
  int st = GFV_OK;
  double *L = NULL, *eps = NULL;
  gfv_discrete *pick = NULL;
  const gfv_stream rows = gfv_stream_make(fit->seed, 0, purpose);
  GFV_CHECK(R <= 32, GFV_ERR_INTERNAL, "fitted mixture of rank %zu", R);
  GFV_CALL_GOTO(st, gfv_calloc(&L, R ? K * d * R : fit->diag ? K * d : K * dd, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&eps, d, sizeof(double)), done);
  for (size_t k = 0; k < K && R; k++)
    if (lowrank_factor(d, R, fit->cov + k * ps, L + k * d * R))
      GFV_ERROR_GOTO(st, done, GFV_ERR_NUMERIC, "fitted component %zu: covariance not positive definite",
                     k + 1);
  for (size_t k = 0; k < K && fit->diag && !R; k++)
    for (size_t a = 0; a < d; a++) {
      double v = fit->cov[k * d + a];
      if (!(v > 0) || !isfinite(v))
        GFV_ERROR_GOTO(st, done, GFV_ERR_NUMERIC, "fitted component %zu: variance %g", k + 1, v);
      L[k * d + a] = sqrt(v);
    }
  for (size_t k = 0; k < K && !fit->diag && !R; k++) {
    memcpy(L + k * dd, fit->cov + k * dd, dd * sizeof(double));
    if (gfv_chol(d, L + k * dd))
      GFV_ERROR_GOTO(st, done, GFV_ERR_NUMERIC,
                     "fitted component %zu: covariance not positive definite", k + 1);
  }
  GFV_CALL_GOTO(st, gfv_discrete_alloc(K, fit->w, &pick), done);
  for (size_t i = 0; i < n; i++) {
    size_t k = gfv_discrete_pick(pick, gfv_stream_mixture_row(&rows, i, d, eps));
    const double *mu = fit->mu + k * d;
    double *zi = z + i * d;
    if (R) {
      lowrank_draw(d, R, mu, fit->cov + k * ps, L + k * d * R, eps, zi);
      continue;
    }
    if (fit->diag) {
      for (size_t a = 0; a < d; a++) zi[a] = mu[a] + L[k * d + a] * eps[a];
      continue;
    }
    const double *Lk = L + k * dd;
    for (size_t a = 0; a < d; a++) {
      double s = mu[a];
      for (size_t b = 0; b <= a; b++) s += Lk[a * d + b] * eps[b];
      zi[a] = s;
    }
  }
done:
  gfv_discrete_free(pick);
  free(L), free(eps);
  return st;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const char *const standardize_choices[] = {"auto", "scale", "center-scale", "none", NULL};
static const gfv_option data_options[] = {
    {.name = "data", .type = OPT_STRING, OPT_FIELD(data), .metavar = "FILE", .def = "",
     .role = ROLE_PROBLEM,
     .help = "training data of --target=logreg or bnn: a CSV of numbers (one optional header "
             "line), features and a label/response column"},
    {.name = "test-data", .type = OPT_STRING, OPT_FIELD(test_data), .metavar = "FILE", .def = "",
     .role = ROLE_RUN,
     .help = "held-out CSV (same columns as --data): the run reports predictive accuracy / "
             "RMSE and log-likelihood under the fitted mixture"},
    {.name = "label-col", .type = OPT_LONG, OPT_FIELD(label_col), .def = "-1",
     .role = ROLE_PROBLEM,
     .help = "column of the label (logreg, 0/1) or response (bnn): 1-based, negative counts "
             "from the end (-1 = last)"},
    {.name = "standardize", .type = OPT_CHOICE, OPT_FIELD(standardize), .def = "auto",
     .role = ROLE_PROBLEM,
     .choices = standardize_choices,
     .help = "feature scaling from the training data: scale = divide by the standard "
             "deviation, center-scale = also subtract the mean; auto = scale for logreg, "
             "center-scale for bnn"},
};
GFV_OPTION_TABLE(gfv_options_data, data_options);

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option split_options[] = {
    {.name = "split-seed", .type = OPT_LONG, OPT_FIELD(split_seed), .def = "0", .bound = BOUND_GE,
     .role = ROLE_PROBLEM,
     .lo = 0,
     .help = "logreg, bnn: hold out a random --test-fraction of --data as the test set, "
             "drawn from this seed; 0 = no split"},
    {.name = "test-fraction", .type = OPT_DOUBLE, OPT_FIELD(test_fraction), .def = "0.1",
     .role = ROLE_PROBLEM,
     .bound = BOUND_BETWEEN, .lo = 0, .hi = 0.9,
     .help = "fraction of the rows held out by --split-seed"},
};
GFV_OPTION_TABLE(gfv_options_split, split_options);
