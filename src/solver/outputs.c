/* outputs.c - the output directory: summary.json, mixture.csv, trace.csv, mixture.h5, the
 * draws (samples.csv, draws.csv, posterior.nc, with --resample=psis draws_psis.csv: see
 * draws.h), with --predict predictions.csv and, for 2-D targets, density.csv (the target
 * and the mixture on a grid, for plots).
 *
 * Rank 0 writes every file to a temporary name first and renames them only when all of
 * them were written completely, summary.json last: a reader that finds summary.json finds
 * a complete set, and a failure leaves no partial file behind. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "gflowvi/interrupt.h"
#include "gflowvi/io.h"
#include "gflowvi/version.h"
#include "io/h5file.h"
#include "io/ofile_named.h"
#include "linalg/linalg.h"
#include "rng/stream.h"
#include "solver/block_root.h"
#include "solver/draws.h"
#include "solver/footprint.h"
#include "solver/output_blocks.h"
#include "solver/solver_impl.h"
#include "targets/models.h"

#define GFV_VERSION GFV_VERSION_STRING /* include/gflowvi/version.h */
/* The tag of mixture.csv's blocks beyond the gather budget (owner to rank 0, in order). */
#define MIX_TAG 0x6d78
const char *const gfv_output_file_names[F_COUNT] = {
    "mixture.csv", "trace.csv",      "samples.csv",     "density.csv", "mixture.h5",
    "draws.csv",   "posterior.nc",   "draws_psis.csv",  "predictions.csv", "summary.json"};

/* Timer statistics over ranks: min, max, mean of each phase, of bytes per iteration, of
 * the peak resident memory (getrusage's maxrss: the most each process held so far), and
 * of the fused kernel's pairs met and pruned (docs/pruning.md). */
enum { STAT_BYTES = GFV_NPHASES, STAT_RSS, STAT_PAIRS, STAT_PRUNED, NSTATS };
typedef struct {
  double min[NSTATS], max[NSTATS], mean[NSTATS];
  double *rss; /* rank 0: each rank's peak resident memory, in rank order */
} rank_stats;

static int gather_stats(gfv_solver *s, rank_stats *rs) {
  const int n = NSTATS;
  double v[NSTATS];
  struct rusage ru;
  memcpy(v, s->timers, sizeof s->timers);
  v[STAT_BYTES] = gfv_comm_bytes_sent(s->comm) / (double)(s->iter > 0 ? s->iter : 1);
  v[STAT_RSS] = getrusage(RUSAGE_SELF, &ru) == 0 ? 1024.0 * (double)ru.ru_maxrss : NAN; /* KiB */
  v[STAT_PAIRS] = v[STAT_PRUNED] = 0.0;
  if (s->mf) gfv_mix_fused_counts(s->mf, v + STAT_PAIRS, v + STAT_PRUNED, 0);
  for (int i = 0; i < n; i++) rs->max[i] = v[i], rs->min[i] = -v[i], rs->mean[i] = v[i];
  GFV_CALL(gfv_comm_allreduce_max(s->comm, rs->max, (size_t)n));
  GFV_CALL(gfv_comm_allreduce_max(s->comm, rs->min, (size_t)n));
  GFV_CALL(gfv_comm_allreduce_sum(s->comm, rs->mean, (size_t)n));
  for (int i = 0; i < n; i++) rs->min[i] = -rs->min[i], rs->mean[i] /= s->size;
  /* and every rank's own peak, for summary.json's list (size doubles on rank 0) */
  size_t *counts = NULL, *displs = NULL;
  int st = gfv_calloc(&counts, (size_t)s->size, sizeof(size_t));
  if (!st) st = gfv_calloc(&displs, (size_t)s->size, sizeof(size_t));
  if (!st && s->rank == 0) st = gfv_calloc(&rs->rss, (size_t)s->size, sizeof(double));
  st = gfv_comm_agree(s->comm, st, NULL);
  if (!st) {
    gfv_block_counts((size_t)s->size, s->size, sizeof(double), counts, displs);
    st = gfv_comm_gatherv_bytes(s->comm, &v[STAT_RSS], sizeof(double), rs->rss, counts, displs, 0);
  }
  free(counts), free(displs);
  return st;
}

/* "peak_rss_bytes": min and max over ranks, each rank's, and the memory model's bound for
 * each rank (footprint.c: what the solver allocates at its peak, without the process's
 * own libraries and the target's buffers, so RSS exceeds it by a constant of some MB). */
static void write_rss(const gfv_solver *s, const rank_stats *rs, FILE *f) {
  fprintf(f, "  \"peak_rss_bytes\": {\"min\": ");
  gfv_json_number(f, rs->min[STAT_RSS]);
  fprintf(f, ", \"max\": ");
  gfv_json_number(f, rs->max[STAT_RSS]);
  fprintf(f, ", \"ranks\": [");
  for (int r = 0; r < s->size; r++) {
    if (r) fprintf(f, ", ");
    gfv_json_number(f, rs->rss ? rs->rss[r] : NAN);
  }
  fprintf(f, "], \"model_bytes\": [");
  for (int r = 0; r < s->size; r++) {
    gfv_mem_estimate e;
    gfv_memory_estimate(s->cfg, s->target, s->size, r, &e);
    if (r) fprintf(f, ", ");
    gfv_json_number(f, e.peak);
  }
  fprintf(f, "]},\n");
}

static void csv_header(FILE *f, const char *prefix, size_t d, int matrix) {
  for (size_t a = 0; a < d; a++) {
    if (!matrix) {
      fprintf(f, ",%s_%zu", prefix, a + 1);
      continue;
    }
    for (size_t b = 0; b < d; b++) fprintf(f, ",%s_%zu_%zu", prefix, a + 1, b + 1);
  }
}

/* Components [k0, k0 + n) in user terms: weights w (n) and covariances cov (n x ps: d x d,
 * or the d variances in the diag family), from log-weights logw, precisions P and their
 * factors L of those n components (the gathered mixture's rows, or an owner's own). */
static int fitted_rows(const gfv_solver *s, size_t k0, size_t n, const double *logw,
                       const double *P, const double *L, double *w, double *cov) {
  const size_t ps = s->psize;
  const gfv_family_type *f = s->fam;
  for (size_t i = 0; i < n; i++) {
    w[i] = exp(logw[i]);
    GFV_CHECK(f->covariance(f, s->d, P + i * ps, L + i * ps, cov + i * ps) == 0,
              GFV_ERR_NUMERIC, "particle %zu: cannot invert its precision", k0 + i);
  }
  return GFV_OK;
}

static int fitted_block(const gfv_solver *s, size_t k0, size_t n, double *w, double *cov) {
  const size_t ps = s->psize;
  return fitted_rows(s, k0, n, s->full_logw + k0, s->full_P + k0 * ps, s->full_L + k0 * ps, w, cov);
}

/* The whole fitted mixture, for the targets' report and --predict hooks only: the files
 * take it a block at a time (write_mixture). */
typedef struct {
  double *w, *cov; /* K; K x ps */
} fitted;

static int fitted_compute(const gfv_solver *s, fitted *m) {
  GFV_ALLOC(m->w, s->K);
  GFV_ALLOC(m->cov, s->K * s->psize);
  return fitted_block(s, 0, s->K, m->w, m->cov);
}

/* A block of n rows of the mixture files, packed as [w (n) | mu (n x d) | cov (n x ps)]. */
typedef struct {
  FILE *csv;
  gfv_h5 h;
  gfv_h5_set set[3]; /* weights, means, covariances (or variances) */
  int created;
} mix_writer;

static int mix_take(gfv_solver *s, size_t k, size_t n, const double *block, void *ctx) {
  mix_writer *m = ctx;
  const size_t K = s->K, d = s->d, ps = s->psize;
  const double *w = block, *mu = block + n, *cov = block + n * (1 + d);
  for (size_t i = 0; i < n; i++) {
    fprintf(m->csv, "%.17g", w[i]);
    for (size_t t = 0; t < d; t++) fprintf(m->csv, ",%.17g", mu[i * d + t]);
    for (size_t t = 0; t < ps; t++) fprintf(m->csv, ",%.17g", cov[i * ps + t]);
    fprintf(m->csv, "\n");
  }
  /* the covariances at rank 2 are (K, psize): (K, d) for diag, (K, d + d R) for lowrank:R */
  const size_t dims[3][3] = {{K, 0, 0}, {K, d, 0}, {K, s->fam->cov_rank == 2 ? d : ps, d}};
  const int ranks[3] = {1, 2, 1 + s->fam->cov_rank};
  const char *names[3] = {"weights", "means", s->fam->h5_cov};
  const double *cols[3] = {w, mu, cov};
  for (int i = 0; i < 3; i++) { /* the first block creates each set before its first write */
    if (!m->created) GFV_CALL(gfv_h5_set_create(&m->h, names[i], ranks[i], dims[i], &m->set[i]));
    GFV_CALL(gfv_h5_set_write_rows(&m->set[i], k, n, cols[i]));
  }
  m->created = 1;
  return GFV_OK;
}

/* The owner's side beyond the gather budget: its own particles [j, j + n). */
static int mix_pack(const gfv_solver *s, size_t j, size_t n, double *block, void *ctx) {
  (void)ctx;
  const size_t d = s->d, ps = s->psize;
  memcpy(block + n, s->cur.mu + j * d, n * d * sizeof(double));
  return fitted_rows(s, s->k0 + j, n, s->cur.logw + j, s->cur.P + j * ps, s->cur.L + j * ps,
                     block, block + n * (1 + d));
}

/* mixture.csv (to csv) and mixture.h5 (for HDF5 readers: h5py, hdf5r, h5dump; written by
 * HDF5 to h5out's temporary name), a block of GFV_OUTPUT_BLOCK_BYTES of weights, means and
 * covariances at a time (output_blocks.h): the datasets are created at full size and
 * written by hyperslabs.  Below the gather budget rank 0 cuts the gathered mixture into
 * the blocks; beyond it (streamed != 0: collective, csv and h5out NULL on the other ranks)
 * each owner computes its own and sends them to rank 0 (block_root.h), as the checkpoint
 * does, so that no rank holds the whole mixture. */
static int write_mixture(gfv_solver *s, const gfv_eval_result *res, FILE *csv, gfv_ofile *h5out,
                         const char *path, int streamed) {
  const size_t K = s->K, d = s->d, ps = s->psize, per = 1 + d + ps;
  const size_t rows = gfv_mixture_block_rows(K, d, ps);
  const int root = s->rank == 0;
  double *block = NULL;
  mix_writer m = {.csv = csv, .h = {.id = H5I_INVALID_HID}};
  for (int i = 0; i < 3; i++) m.set[i].id = H5I_INVALID_HID;
  int st = gfv_calloc(&block, rows * per, sizeof(double));
  if (!st && root) {
    fprintf(csv, "weight");
    csv_header(csv, "mu", d, 0);
    csv_header(csv, s->fam->csv_prefix, d, s->fam->csv_pairs);
    for (size_t a = 0; a < d && s->fam->rank; a++) /* lowrank:R: Sigma = diag(dvar) - Z Z^T */
      for (size_t r = 0; r < s->fam->rank; r++) fprintf(csv, ",z_%zu_%zu", a + 1, r + 1);
    fprintf(csv, "\n");
    /* the data and 64 KiB for HDF5's headers and the attributes */
    st = gfv_h5_create_in(h5out, path, 8.0 * (double)K * (double)per + 65536.0, &m.h);
  }
  if (streamed) {
    st = gfv_comm_agree(s->comm, st, NULL);
    if (!st) st = gfv_solver_blocks_to_root(s, per, rows, block, MIX_TAG, mix_pack, mix_take, &m);
  } else
    for (size_t k = 0; !st && k < K; k += rows) {
      const size_t n = K - k < rows ? K - k : rows;
      memcpy(block + n, s->full_mu + k * d, n * d * sizeof(double));
      st = fitted_block(s, k, n, block, block + n * (1 + d));
      if (!st) st = mix_take(s, k, n, block, &m);
    }
  for (int i = 0; i < 3; i++) gfv_h5_set_close(&m.set[i]);
  if (!st && root) {
    gfv_h5 *h = &m.h;
    GFV_CALL_GOTO(st, gfv_h5_attr_string(h, "target", s->cfg->target), done);
    GFV_CALL_GOTO(st, gfv_h5_attr_string(h, "flow", s->flow->name), done);
    GFV_CALL_GOTO(st, gfv_h5_attr_double(h, "elbo", res->elbo), done);
    GFV_CALL_GOTO(st, gfv_h5_attr_double(h, "elbo_se", res->elbo_se), done);
    GFV_CALL_GOTO(st, gfv_h5_attr_double(h, "kl", res->kl), done);
    GFV_CALL_GOTO(st, gfv_h5_attr_double(h, "iterations", (double)s->iter), done);
    st = gfv_h5_close_file(h);
  }
done:
  if (root) gfv_h5_abort(&m.h); /* after a failure; h5out is the caller's */
  free(block);
  return st;
}

static void write_trace(const gfv_solver *s, FILE *f) {
  fprintf(f, "iteration,elbo,elbo_se,step_norm,step_size,seconds\n");
  for (size_t i = 0; i < s->ntrace; i++) {
    const gfv_trace_row *t = &s->trace[i];
    fprintf(f, "%ld,%.17g,%.17g,%.17g,%.17g,%.6f\n", t->iteration, t->elbo, t->elbo_se,
            t->step_norm, t->step_size, t->seconds);
  }
}

/* The plotting window: the target's own box, else the means +- 4 standard deviations. */
static void plot_box(const gfv_solver *s, double box[4]) {
  if (s->target->has_box) {
    memcpy(box, s->target->box, 4 * sizeof(double));
    return;
  }
  box[0] = box[2] = INFINITY, box[1] = box[3] = -INFINITY;
  /* The covariance's shape (family.h, cov_rank): a 2 x 2 matrix, or the two variances. */
  const size_t ps = s->psize, vstride = s->fam->cov_rank == 2 ? 3 : 1;
  double cov[4]; /* at d = 2: 4 numbers at most (full; lowrank:1 has [1/D (2) | Z (2)]) */
  for (size_t k = 0; k < s->K; k++) {
    if (s->fam->covariance(s->fam, 2, s->full_P + ps * k, s->full_L + ps * k, cov)) continue;
    for (int a = 0; a < 2; a++) {
      double v = cov[vstride * (size_t)a];
      if (s->fam->rank) v -= cov[2 + (size_t)a] * cov[2 + (size_t)a]; /* d = 2, R = 1 */
      double m = s->full_mu[2 * k + a], r = 4 * sqrt(v);
      box[2 * a] = fmin(box[2 * a], m - r);
      box[2 * a + 1] = fmax(box[2 * a + 1], m + r);
    }
  }
}

static int write_density(gfv_solver *s, FILE *f) {
  const size_t n = GFV_GRID * GFV_GRID;
  double box[4], *z = NULL, *lq = NULL, *lp = NULL;
  gfv_mix_work *w = NULL;
  int st = GFV_OK;
  plot_box(s, box);
  GFV_CALL_GOTO(st, gfv_calloc(&z, 2 * n, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&lq, n, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&lp, n, sizeof(double)), done);
  GFV_CALL_GOTO(st, s->fam->work_alloc(s->fam, 2, s->K, 1, &w), done);
  for (size_t iy = 0; iy < GFV_GRID; iy++)
    for (size_t ix = 0; ix < GFV_GRID; ix++) {
      double *p = z + 2 * (iy * GFV_GRID + ix);
      p[0] = box[0] + (box[1] - box[0]) * (double)ix / (GFV_GRID - 1);
      p[1] = box[2] + (box[3] - box[2]) * (double)iy / (GFV_GRID - 1);
    }
  gfv_mix_view full = {2, s->K, s->full_mu, s->full_P, s->full_L, s->full_logc, s->fam->diag, s->fam->rank};
  GFV_CALL_GOTO(st, gfv_mix_eval(&full, n, z, lq, NULL, NULL, w), done);
  GFV_CALL_GOTO(st, gfv_target_eval(s->target, n, z, lp, NULL, NULL), done);
  fprintf(f, "x,y,log_target,log_q\n");
  for (size_t i = 0; i < n; i++) {
    /* Non-finite values (log 0 far out) are empty fields: NumPy reads nan, R reads NA. */
    fprintf(f, "%.10g,%.10g,", z[2 * i], z[2 * i + 1]);
    if (isfinite(lp[i])) fprintf(f, "%.10g", lp[i]);
    fprintf(f, ",");
    if (isfinite(lq[i])) fprintf(f, "%.10g", lq[i]);
    fprintf(f, "\n");
  }
done:
  free(z), free(lq), free(lp);
  gfv_mix_work_free(w);
  return st;
}

static void json_member(FILE *f, const char *key, double x, int last) {
  fprintf(f, "  ");
  gfv_json_string(f, key);
  fprintf(f, ": ");
  gfv_json_number(f, x);
  fprintf(f, last ? "\n" : ",\n");
}

static void json_text(FILE *f, const char *key, const char *value) {
  fprintf(f, "  ");
  gfv_json_string(f, key);
  fprintf(f, ": ");
  gfv_json_string(f, value);
  fprintf(f, ",\n");
}

/* The target's own report (held-out metrics of data models), as JSON members and text. */
typedef struct {
  char *json, *text;
  size_t json_len, text_len;
} target_report;

/* The fitted mixture as the targets' hooks see it; they draw from the streams (seed, 0,
 * purpose) of its seed, the report GFV_PURPOSE_REPORT, --predict GFV_PURPOSE_PREDICT. */
static gfv_fitted_mixture fit_of(const gfv_solver *s, const fitted *m) {
  gfv_fitted_mixture fit = {s->K, s->d, m->w, s->full_mu, m->cov, (unsigned long)s->cur.seed, s->fam->diag,
                          s->fam->rank};
  return fit;
}

static int run_report(const gfv_solver *s, const fitted *m, target_report *r) {
  memset(r, 0, sizeof *r);
  if (!s->target->report) return GFV_OK;
  gfv_fitted_mixture fit = fit_of(s, m);
  FILE *json = open_memstream(&r->json, &r->json_len), *text = open_memstream(&r->text, &r->text_len);
  if (!json || !text) {
    if (json) fclose(json);
    if (text) fclose(text);
    GFV_ERROR(GFV_ERR_MEMORY, "cannot allocate the report buffers");
  }
  int st = s->target->report(s->target, &fit, json, text);
  fclose(json);
  fclose(text);
  GFV_CALL(st);
  return GFV_OK;
}

/* What the draw files and the predictions add to summary.json. */
typedef struct {
  const gfv_draws *draws;
  int resampled;
  gfv_psis_result psis;
  size_t distinct, predict_rows;
} extras;

/* predictions.csv: the --predict rows (checked before the fit; read again here). */
static int write_predictions(const gfv_solver *s, const fitted *m, FILE *f, size_t *rows) {
  const gfv_target *t = s->target;
  gfv_table tab;
  GFV_CALL(gfv_table_read_csv(s->cfg->predict, &tab));
  int st = GFV_OK;
  if (tab.cols != t->predict_cols)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "--predict: %s has %zu columns, expected %zu",
                   s->cfg->predict, tab.cols, t->predict_cols);
  gfv_fitted_mixture fit = fit_of(s, m);
  GFV_CALL_GOTO(st, t->predict(t, &fit, tab.rows, tab.v, f), done);
  *rows = tab.rows;
done:
  gfv_table_free(&tab);
  return st;
}

static void write_extras(const gfv_solver *s, const extras *x, FILE *f) {
  const gfv_draws *d = x->draws;
  fprintf(f, "  \"draws\": {\"rows\": %zu, \"outputs\": %zu, \"outputs_not_computed\": %zu},\n",
          d->N, d->m, d->not_computed);
  if (x->resampled) {
    fprintf(f, "  \"resample\": {\"method\": \"psis\", \"rows\": %zu, \"distinct_rows\": %zu, \"khat\": ",
            d->N, x->distinct);
    gfv_json_number(f, x->psis.khat);
    fprintf(f, ", \"ess\": ");
    gfv_json_number(f, x->psis.ess);
    fprintf(f, ", \"reliable\": %s},\n", x->psis.khat <= 0.7 ? "true" : "false");
  }
  if (s->cfg->predict[0]) {
    fprintf(f, "  \"predictions\": {\"file\": ");
    gfv_json_string(f, s->cfg->predict);
    fprintf(f, ", \"rows\": %zu, \"draws\": %d},\n", x->predict_rows, GFV_PREDICT_DRAWS);
  }
}

static void write_summary(gfv_solver *s, const gfv_eval_result *res, const rank_stats *rs,
                          const target_report *rep, const extras *x, const char *data, FILE *f) {
  const gfv_config *cfg = s->cfg;
  double se, iter_elbo = gfv_solver_elbo(s, &se);
  fprintf(f, "{\n");
  json_text(f, "program", "gflowvi");
  json_text(f, "version", GFV_VERSION);
  json_text(f, "target", cfg->target);
  json_member(f, "dim", (double)s->d, 0);
  json_text(f, "flow", s->flow->name);
  json_text(f, "estimator", s->est->name);
  json_text(f, "update", cfg->update);
  json_member(f, "particles", (double)s->K, 0);
  json_member(f, "samples", (double)s->S, 0);
  json_member(f, "iterations", (double)s->iter, 0);
  json_member(f, "ranks", (double)s->size, 0);
  json_text(f, "layout", gfv_layout_name(s->layout));
  json_member(f, "seed", (double)cfg->seed, 0);
  json_member(f, "elbo", res->elbo, 0);
  json_member(f, "elbo_se", res->elbo_se, 0);
  json_member(f, "kl", res->kl, 0);
  json_member(f, "kl_se", res->kl_se, 0);
  json_member(f, "eval_samples", (double)res->eval_samples, 0);
  json_member(f, "log_evidence", res->log_evidence, 0);
  json_member(f, "log_evidence_se", res->log_evidence_se, 0);
  json_member(f, "khat", res->khat, 0);
  json_member(f, "psis_ess", res->ess, 0);
  json_member(f, "last_iteration_elbo", iter_elbo, 0);
  json_member(f, "last_iteration_elbo_se", se, 0);
  json_member(f, "rejected_steps", (double)s->rejected, 0);
  json_member(f, "negligible_components", (double)res->negligible, 0);
  fprintf(f, "  \"converged\": %s,\n", s->converged ? "true" : "false");
  fprintf(f, "  \"reliable\": %s,\n", res->reliable ? "true" : "false");
  fprintf(f, "  \"warnings\": [");
  for (int i = 0; i < res->nwarnings; i++) {
    fprintf(f, i ? ",\n    " : "\n    ");
    gfv_json_string(f, res->warnings[i]);
  }
  fprintf(f, "%s],\n", res->nwarnings ? "\n  " : "");
  gfv_convergence_stats cs;
  gfv_convergence_get_stats(s->conv, &cs);
  fprintf(f, "  \"convergence\": {\"test\": \"windowed ELBO\", \"tol\": ");
  gfv_json_number(f, s->conv_tol);
  fprintf(f, ", \"stops_run\": %s, \"window\": %ld, \"windows\": %ld, \"converged_at\": ",
          s->cfg->tol > 0 ? "true" : "false", s->cfg->conv_window, cs.windows);
  gfv_json_number(f, cs.converged_at >= 0 ? (double)cs.converged_at : NAN);
  fprintf(f, ", \"rel_mean\": ");
  gfv_json_number(f, cs.rel_mean);
  fprintf(f, ", \"rel_median\": ");
  gfv_json_number(f, cs.rel_median);
  fprintf(f, ", \"rel_bound\": ");
  gfv_json_number(f, cs.rel_bound);
  fprintf(f, "},\n");
  fprintf(f, "  \"step_schedule\": ");
  gfv_json_string(f, s->cfg->step_schedule);
  fprintf(f, ",\n");
  json_member(f, "final_step", s->eta, 0);
  json_member(f, "outside_support_fraction", res->outside, 0);
  json_member(f, "trust_region_limited_steps", (double)s->tr_limited, 0);
  json_member(f, "max_component_move_sd", s->max_move, 0);
  json_member(f, "seconds", s->run_seconds, 0);
  json_member(f, "iterations_per_second", s->run_seconds > 0 ? (double)s->iter / s->run_seconds : 0,
              0);
  fprintf(f, "  \"timers\": {\n");
  for (int i = 0; i <= GFV_NPHASES; i++) {
    const char *name = i < GFV_NPHASES ? gfv_phase_names[i] : "bytes_sent_per_iteration";
    fprintf(f, "    \"%s\": {\"min\": ", name);
    gfv_json_number(f, rs->min[i]);
    fprintf(f, ", \"max\": ");
    gfv_json_number(f, rs->max[i]);
    fprintf(f, ", \"mean\": ");
    gfv_json_number(f, rs->mean[i]);
    fprintf(f, "}%s\n", i < GFV_NPHASES ? "," : "");
  }
  fprintf(f, "  },\n");
  write_rss(s, rs, f);
  /* Means over ranks: their ratio is that of the sums. */
  const double pairs = rs->mean[STAT_PAIRS], pruned = rs->mean[STAT_PRUNED];
  json_member(f, "pruned_fraction", pairs > 0 ? pruned / pairs : 0.0, 0);
  json_member(f, "pairs_evaluated_per_iteration",
              (pairs - pruned) * s->size / (double)(s->iter > 0 ? s->iter : 1), 0);
  write_extras(s, x, f);
  if (data) fprintf(f, "  \"data\": {\n%s\n  },\n", data);
  if (rep->json && rep->json_len) fprintf(f, "  \"report\": {\n%s\n  },\n", rep->json);
  fprintf(f, "  \"config\": {\n");
  gfv_config_print_json(f, cfg, 4);
  fprintf(f, "\n  }\n}\n");
}

static int path_in(const char *dir, const char *name, char *out, size_t size) {
  int n = snprintf(out, size, "%s/%s", dir, name);
  GFV_CHECK(n > 0 && (size_t)n < size, GFV_ERR_USAGE, "--out: path too long");
  return GFV_OK;
}

/* Rank 0's part before the mixture: the directory, the hooks' report, the data's
 * description and every file open at its temporary name. */
static int open_all(gfv_solver *s, gfv_ofile **files, fitted *m, target_report *rep, char **data,
                    const extras *x) {
  char path[GFV_PATH_MAX + 64];
  size_t data_len = 0;
  GFV_CALL(gfv_mkdir_p(s->cfg->out));
  if (s->target->report || s->cfg->predict[0]) GFV_CALL(fitted_compute(s, m));
  GFV_CALL(run_report(s, m, rep));
  if (s->target->describe) {
    FILE *df = open_memstream(data, &data_len);
    GFV_CHECK(df, GFV_ERR_MEMORY, "cannot allocate the data description");
    int st = s->target->describe(s->target, df);
    fclose(df);
    GFV_CALL(st);
  }
  for (int i = 0; i < F_COUNT; i++) {
    if (i == F_DENSITY && s->d != 2) continue;
    if ((i == F_PSIS && !x->resampled) || (i == F_PREDICTIONS && !s->cfg->predict[0])) continue;
    GFV_CALL(path_in(s->cfg->out, gfv_output_file_names[i], path, sizeof path));
    /* mixture.h5: HDF5 writes the temporary file itself */
    if (i == F_H5) GFV_CALL(gfv_ofile_open_named(path, &files[i]));
    else GFV_CALL(gfv_ofile_open(path, &files[i]));
  }
  return GFV_OK;
}

static FILE *stream_of(gfv_ofile **files, int i) { return files[i] ? gfv_ofile_stream(files[i]) : NULL; }

/* Every rank when the mixture is streamed (streamed != 0: mixture.csv / mixture.h5 and the
 * draws are collective, every step's status agreed), else rank 0 alone. */
static int write_all(gfv_solver *s, const gfv_eval_result *res, const rank_stats *rs, int streamed) {
  gfv_ofile *files[F_COUNT] = {0};
  char path[GFV_PATH_MAX + 64];
  target_report rep = {0};
  fitted m = {0};
  gfv_draws draws = {0};
  extras x = {.draws = &draws, .resampled = strcmp(s->cfg->resample, "psis") == 0};
  char *data = NULL;
  const int root = s->rank == 0;
  int st = root ? open_all(s, files, &m, &rep, &data, &x) : GFV_OK;
  if (!st) st = path_in(s->cfg->out, gfv_output_file_names[F_H5], path, sizeof path);
  if (streamed) st = gfv_comm_agree(s->comm, st, NULL);
  if (!st) st = write_mixture(s, res, stream_of(files, F_MIXTURE), files[F_H5], path, streamed);
  if (streamed) st = gfv_comm_agree(s->comm, st, NULL);
  GFV_CALL_GOTO(st, st, fail);
  if (root) write_trace(s, gfv_ofile_stream(files[F_TRACE]));
  if (streamed)
    GFV_CALL_GOTO(st, gfv_draws_make_streamed(s, res->outside > 0, stream_of(files, F_SAMPLES),
                                              stream_of(files, F_DRAWS), &draws), fail);
  else
    GFV_CALL_GOTO(st, gfv_draws_make(s, res->outside > 0, gfv_ofile_stream(files[F_SAMPLES]),
                                      gfv_ofile_stream(files[F_DRAWS]), &draws), fail);
  if (!root) goto fail; /* the rest is rank 0's */
  if (files[F_DENSITY]) GFV_CALL_GOTO(st, write_density(s, gfv_ofile_stream(files[F_DENSITY])), fail);
  GFV_CALL_GOTO(st, path_in(s->cfg->out, gfv_output_file_names[F_NC], path, sizeof path), fail);
  gfv_nc_meta meta = {s->cfg->target, GFV_VERSION};
  GFV_CALL_GOTO(st, gfv_posterior_nc_write(&draws, path, &meta, gfv_ofile_stream(files[F_NC])), fail);
  if (files[F_PSIS])
    GFV_CALL_GOTO(st, gfv_draws_resample_psis(&draws, s->cur.seed, gfv_ofile_stream(files[F_PSIS]), &x.psis,
                                              &x.distinct), fail);
  if (files[F_PREDICTIONS])
    GFV_CALL_GOTO(st, write_predictions(s, &m, gfv_ofile_stream(files[F_PREDICTIONS]), &x.predict_rows),
                  fail);
  write_summary(s, res, rs, &rep, &x, data, gfv_ofile_stream(files[F_SUMMARY]));
  /* Every file complete on disk (a full disk shows here) before the first rename, so a
   * failure leaves no file at all; then the renames, summary.json last. */
  for (int i = 0; i < F_COUNT; i++)
    if (files[i]) GFV_CALL_GOTO(st, gfv_ofile_finish(files[i]), fail);
  for (int i = 0; i < F_COUNT; i++) {
    if (!files[i]) continue;
    gfv_ofile *f = files[i];
    files[i] = NULL;
    GFV_CALL_GOTO(st, gfv_ofile_commit(f), fail);
  }
  if (rep.text && rep.text_len && !s->cfg->quiet) /* the target's report, line by line */
    for (const char *a = rep.text, *b; *a; a = *b ? b + 1 : b) {
      b = strchr(a, '\n');
      if (!b) b = a + strlen(a);
      gfv_log(s, GFV_LOG_INFO, "%.*s", (int)(b - a), a);
    }
fail:
  for (int i = 0; i < F_COUNT; i++) gfv_ofile_abort(files[i]);
  free(rep.json), free(rep.text), free(m.w), free(m.cov), free(data);
  gfv_draws_free(&draws);
  return st;
}

/* The hooks that keep the gathered mixture (small K by nature): density.csv's grid (d = 2)
 * and the targets' report and --predict, which take the whole fitted mixture. */
static int needs_whole_mixture(const gfv_solver *s) {
  return s->d == 2 || s->target->report || s->cfg->predict[0];
}

int gfv_solver_write_outputs_impl(gfv_solver *s, const gfv_eval_result *res) {
  GFV_CALL(gfv_solver_require_ready(s, "gfv_solver_write_outputs"));
  double t0 = gfv_comm_wtime();
  rank_stats rs = {0};
  GFV_CALL(gfv_comm_agree(s->comm, gfv_interrupt_signal() ? GFV_STOPPED : GFV_OK, NULL));
  /* Beyond the gather budget (params_stream.c) only the weights are gathered, and the
   * mixture's rows and the draws come from their owners. */
  GFV_CALL(gfv_comm_agree(s->comm, gfv_solver_stream_alloc(s), NULL));
  const int streamed = s->stream_cap > 0 && !needs_whole_mixture(s);
  GFV_CALL(streamed ? gfv_solver_gather_logw(s) : gfv_solver_gather_full(s));
  int st = gather_stats(s, &rs);
  if (streamed) st = gfv_comm_agree(s->comm, st, NULL);
  if (!st && (streamed || s->rank == 0)) st = write_all(s, res, &rs, streamed);
  free(rs.rss);
  GFV_CALL(gfv_comm_agree(s->comm, st, NULL));
  s->timers[GFV_PHASE_IO] += gfv_comm_wtime() - t0;
  return GFV_OK;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option output_options[] = {
    {.name = "out", .type = OPT_STRING, OPT_FIELD(out), .metavar = "DIR", .def = "gflowvi-out",
     .role = ROLE_RUN,
     .help = "output directory (created if needed)"},
    {.name = "out-samples", .type = OPT_LONG, OPT_FIELD(out_samples), .def = "10000",
     .role = ROLE_RUN,
     .bound = BOUND_GE, .lo = 0,
     .help = "rows of samples.csv and draws.csv, drawn from the fitted mixture"},
    {.name = "eval-samples", .type = OPT_LONG, OPT_FIELD(eval_samples), .def = "100000",
     .role = ROLE_RUN,
     .bound = BOUND_GE, .lo = 1, .help = "fresh samples for the final ELBO and KL estimates"},
    {.name = "progress-every", .type = OPT_LONG, OPT_FIELD(progress_every), .def = "100",
     .role = ROLE_RUN,
     .bound = BOUND_GE, .lo = 0, .help = "print a progress line every N iterations; 0 = never"},
    {.name = "max-retries", .type = OPT_LONG, OPT_FIELD(max_retries), .def = "10",
     .role = ROLE_RUN,
     .bound = BOUND_BETWEEN, .lo = 0, .hi = 60,
     .help = "halvings of the step allowed in a run (a rejected step halves it for the rest of "
             "the run) before giving up"},
};
GFV_OPTION_TABLE(gfv_options_output, output_options);
