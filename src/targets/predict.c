/* predict.c - what the data models' predictions and reports share (models.h): the data
 * description of summary.json, the per-row predictive summary of predictions.csv, and the
 * Monte Carlo standard error of the held-out log predictive density. */
#include <math.h>
#include <stdlib.h>

#include "core/optdef.h"
#include "gflowvi/io.h"
#include "linalg/linalg.h"
#include "targets/models.h"

static void json_array(FILE *json, const char *key, size_t n, const double *v) {
  fprintf(json, "    \"%s\": [", key);
  for (size_t a = 0; a < n; a++) {
    if (a) fputs(", ", json);
    gfv_json_number(json, v[a]);
  }
  fputs("]", json);
}

/* 1-based places in the data file, as a JSON array member followed by a comma. */
static void json_rows(FILE *json, const char *key, size_t n, const size_t *rows) {
  fprintf(json, "    \"%s\": [", key);
  for (size_t i = 0; i < n; i++) fprintf(json, "%s%zu", i ? ", " : "", rows[i] + 1);
  fputs("],\n", json);
}

void gfv_data_describe(const gfv_data *d, FILE *json) {
  static const char *const modes[] = {"none", "scale", "center-scale"};
  const size_t p = d->train.p;
  fputs("    \"features\": ", json);
  if (!d->names) fputs("null", json);
  for (size_t a = 0; d->names && a < p; a++) {
    fputs(a ? ", " : "[", json);
    gfv_json_string(json, d->names[a]);
  }
  fputs(d->names ? "],\n    \"label\": " : ",\n    \"label\": ", json);
  if (d->label_name) gfv_json_string(json, d->label_name);
  else fputs("null", json);
  fprintf(json, ",\n    \"label_column\": %zu,\n    \"training_rows\": %zu,\n    \"test_rows\": %zu,\n",
          d->label_col + 1, d->train.n, d->test.n);
  if (d->test_rows) json_rows(json, "test_rows_in_file", d->test.n, d->test_rows);
  if (d->dev.n) {
    fprintf(json, "    \"dev_rows\": %zu,\n", d->dev.n);
    json_rows(json, "dev_rows_in_file", d->dev.n, d->dev_rows);
  }
  fprintf(json, "    \"standardize\": \"%s\",\n", modes[d->mode]);
  json_array(json, "mean", p, d->mean);
  fputs(",\n", json);
  json_array(json, "scale", p, d->sd);
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* numpy's default (R's type 7): linear between the order statistics around (M - 1) p. */
static double quantile(size_t M, const double *sorted, double p) {
  double h = (double)(M - 1) * p, lo = floor(h);
  size_t i = (size_t)lo;
  return i + 1 < M ? sorted[i] + (h - lo) * (sorted[i + 1] - sorted[i]) : sorted[M - 1];
}

void gfv_predict_header(FILE *csv) { fputs("row,mean,sd,q5,q50,q95\n", csv); }

void gfv_predict_row(FILE *csv, size_t M, double *v) {
  double mean = 0, ss = 0;
  for (size_t m = 0; m < M; m++) mean += v[m];
  mean /= (double)M;
  for (size_t m = 0; m < M; m++) ss += (v[m] - mean) * (v[m] - mean);
  qsort(v, M, sizeof *v, by_value);
  fprintf(csv, ",%.17g,%.17g,%.17g,%.17g,%.17g\n", mean, sqrt(ss / (double)M),
          quantile(M, v, 0.05), quantile(M, v, 0.5), quantile(M, v, 0.95));
}

double gfv_lpd_add(size_t M, const double *loglik, size_t T, double *acc) {
  double lp = gfv_logsumexp(M, loglik, 1) - log((double)M);
  for (size_t m = 0; m < M; m++) acc[m] += exp(loglik[m] - lp) / (double)T;
  return lp;
}

double gfv_lpd_mcse(size_t M, const double *acc) {
  if (M < 2) return NAN;
  double ss = 0; /* the mean of acc is 1 by construction */
  for (size_t m = 0; m < M; m++) ss += (acc[m] - 1.0) * (acc[m] - 1.0);
  return sqrt(ss / (double)(M - 1) / (double)M);
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option predict_options[] = {
    {.name = "predict", .type = OPT_STRING, OPT_FIELD(predict), .metavar = "FILE", .def = "",
     .role = ROLE_RUN,
     .help = "logreg, bnn: a CSV of feature rows (the columns of --data without the label); "
             "writes predictions.csv with each row's predictive mean, sd and 5/50/95% quantiles"},
};
GFV_OPTION_TABLE(gfv_options_predict, predict_options);
