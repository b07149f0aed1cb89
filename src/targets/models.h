/* models.h - what the data-driven targets (logreg, bnn) and the plugin loader share:
 * reading a data set, standardising it, holding out a test set, drawing from the fitted
 * mixture for the posterior-predictive reports, and the per-iteration minibatch seed.
 *
 * Data files are numeric CSV (gfv_table_read_csv: one optional header line, every row the
 * same number of columns).  One column is the label (logreg: 0 or 1) or the response
 * (bnn), chosen by --label-col: 1-based, negative counts from the end (-1, the default,
 * is the last column).  The other columns are the features, in file order.
 *
 * The test set is either --test-data (a second file with the same columns) or, with
 * --split-seed=S > 0, a random --test-fraction of the rows of --data (a permutation drawn
 * from the stream (S, 0, GFV_PURPOSE_SPLIT) of rng/stream.h; the test set is the last
 * n - floor((1 - fraction) n) rows of the permuted order).  Giving both is an error.
 *
 * --dev-fraction=f (bnn only) then moves the last round(f n) of the n training rows (in the
 * permuted order with --split-seed, file order without) into a development set, before the
 * standardisation: SVGD's protocol, where they choose each particle's noise after the fit.
 *
 * Standardisation statistics (mean, standard deviation with divisor n) come from the
 * training rows only and are applied to the test rows too.  A constant feature column
 * (standard deviation 0) is left unscaled.  None of this is collective: every rank reads
 * the same files and gets the same arrays. */
#ifndef GFLOWVI_MODELS_H
#define GFLOWVI_MODELS_H

#include <stddef.h>
#include <stdio.h>

#include "gflowvi/config.h"
#include "gflowvi/target.h"

typedef enum { GFV_STD_NONE, GFV_STD_SCALE, GFV_STD_CENTER_SCALE } gfv_std_mode;

/* Rows of one part (train or test): features X (n x p, standardised) and labels y (n). */
typedef struct {
  size_t n, p;
  double *X, *y;
} gfv_dataset;

typedef struct {
  gfv_dataset train, test;  /* test.n == 0 when there is no test set */
  gfv_dataset dev;          /* --dev-fraction (bnn): dev.n == 0 when there is none */
  size_t *test_rows;        /* test.n 0-based rows of --data with --split-seed, else NULL */
  size_t *dev_rows;         /* dev.n 0-based rows of --data, or NULL */
  double *mean, *sd;        /* p: the training statistics (mean 0 / sd 1 where unused) */
  gfv_std_mode mode;
  size_t label_col;         /* 0-based column of the label in the file */
  size_t file_cols;         /* columns in the file */
  char **names;             /* p feature names from --data's header line, or NULL */
  char *label_name;         /* the label column's name, or NULL */
} gfv_data;

/* Reads cfg->data (and cfg->test_data or the --split-seed split) for the target `model`
 * ("logreg" or "bnn", for messages).  default_mode resolves --standardize=auto.  With
 * binary_labels, every label must be exactly 0 or 1 (GFV_ERR_INPUT naming the file, the
 * data row and the value).  Errors: no --data (usage), unreadable or malformed file
 * (input), --label-col outside the file's columns (usage), too few rows (input). */
int gfv_data_load(const gfv_config *cfg, const char *model, gfv_std_mode default_mode,
                  int binary_labels, gfv_data *out);
void gfv_data_free(gfv_data *d);

/* n draws from the fitted mixture (n x d), row i from row i of the stream (fit->seed, 0,
 * purpose) (gfv_stream_mixture_row; a report: GFV_PURPOSE_REPORT, --predict:
 * GFV_PURPOSE_PREDICT): component k with probability w_k, then mu_k + chol(cov_k) eps
 * (fit->diag: mu_k + sqrt(var_k) .* eps). */
int gfv_fit_draw(const gfv_fitted_mixture *fit, unsigned purpose, size_t n, double *z);

/* Writes the JSON members of the data description (summary.json "data"): "features" (the
 * feature names, or null without a header), "label", "standardize" and the statistics
 * applied, x' = (x - mean) / scale, per feature ("mean", "scale"). */
void gfv_data_describe(const gfv_data *d, FILE *json);

/* --predict: the predictive summary of M values v (sorted in place): mean, sd (divisor M),
 * and the 5%, 50%, 95% quantiles (linear interpolation between order statistics, numpy's
 * and R's default), written as ",mean,sd,q5,q50,q95" to csv.  The header of such a file. */
void gfv_predict_row(FILE *csv, size_t M, double *v);
#define GFV_PREDICT_DRAWS 4000 /* mixture draws behind each row of predictions.csv */
void gfv_predict_header(FILE *csv);
/* The held-out log predictive density and its Monte Carlo standard error by the delta
 * method over the M shared draws: with L[r][m] the likelihood of test row r under draw m,
 * lpd = (1/T) sum_r log mean_m L[r][m], and g_m = (1/T) sum_r L[r][m] / mean_m L[r][m],
 * se = sd_m(g) / sqrt(M).  Feed each row's M log likelihoods with gfv_lpd_add (acc holds
 * M doubles, zeroed), then gfv_lpd_mcse. */
double gfv_lpd_add(size_t M, const double *loglik, size_t T, double *acc);
double gfv_lpd_mcse(size_t M, const double *acc);

/* log(1 + exp(x)) without overflow or loss of precision. */
double gfv_log1pexp(double x);

/* The targets themselves (reached through gfv_target_create_from_config). */
int gfv_target_logreg_create(const gfv_config *cfg, gfv_target **out);
int gfv_target_bnn_create(const gfv_config *cfg, gfv_target **out);
int gfv_target_plugin_create(const char *path, const gfv_config *cfg, gfv_target **out);
/* The same with the arguments of gfv_plugin_init given (argv[argc] == NULL) and, when label
 * is not NULL, label naming the plugin in its messages (a failed init: "LABEL: message"). */
int gfv_target_plugin_create_args(const char *path, const char *label, int argc,
                                  const char *const *argv, gfv_target **out);

/* stan:MODEL.stan (src/targets/stan.c): prepare compiles the model (rank 0, once), create
 * finds the compiled model (building it if needed) and loads it as a plugin. */
int gfv_target_stan_prepare(const gfv_config *cfg);
int gfv_target_stan_create(const char *model, const gfv_config *cfg, gfv_target **out);

/* Test access to the logistic-regression design: the N x D matrix (intercept included as
 * the last column) and the labels; GFV_ERR_INTERNAL for another target. */
int gfv_target_logreg_design(const gfv_target *t, size_t *n, size_t *D, const double **X,
                             const double **y);

/* bnn layout, for tests: hidden units H and inputs p; the parameter vector is
 * W1 (p x H, row-major), b1 (H), w2 (H), b2, log gamma (noise precision), log lambda
 * (weight-prior precision), so dim = (p + 2) H + 3.  The active minibatch (after
 * begin_iteration) as row indices into the training set; rows = NULL means all rows. */
int gfv_target_bnn_layout(const gfv_target *t, size_t *p, size_t *H, size_t *ntrain);
int gfv_target_bnn_batch(const gfv_target *t, size_t *B, const size_t **rows);

#endif
