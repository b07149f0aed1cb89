/* draws.c - samples.csv and draws.csv: N independent draws from the fitted mixture (a
 * component by weight, then its Gaussian), the same rows in both files.  With a bounded
 * support (the final evaluation saw draws outside it), a draw where the target is -inf is
 * dropped and the next one drawn, so the rows come from the mixture restricted to the
 * support, the distribution whose ELBO summary.json reports, and no row lies outside the
 * support.  Candidate r (rejected or not) is row r of its stream, computed on its own.
 *
 * draws.csv gives each draw as the model names it (target.h: out_names and constrain;
 * z[1]..z[d] for a target without names), then lp__ = l(z), the log target as gflowvi
 * evaluates it at the unconstrained draw, and lq__ = log q(z), the log density of the
 * mixture (not renormalised to the support), so that exp(lp__ - lq__) are importance
 * weights up to a constant. */
#include "solver/draws.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "gflowvi/interrupt.h"
#include "rng/stream.h"

#define GFV_SAMPLE_BLOCK 4096

void gfv_draws_free(gfv_draws *d) {
  if (!d) return;
  free(d->v);
  gfv_names_free(d->names, d->m);
  free(d->groups);
  memset(d, 0, sizeof *d);
}

/* The names and groups of the outputs: the target's, or z[1]..z[d]. */
static int draws_names(const gfv_target *t, gfv_draws *d) {
  d->m = t->nout ? t->nout : t->dim;
  d->cols = d->m + 2;
  GFV_CALL(gfv_names_alloc(d->m, &d->names));
  GFV_CALL(gfv_calloc(&d->groups, d->m, sizeof(int)));
  for (size_t j = 0; j < d->m; j++) {
    if (t->nout) GFV_CALL(gfv_names_set(d->names, j, "%s", t->out_names[j]));
    else GFV_CALL(gfv_names_set(d->names, j, "z[%zu]", j + 1));
    if (t->out_groups) d->groups[j] = t->out_groups[j];
  }
  return GFV_OK;
}

static void csv_name(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n\r")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

void gfv_draws_csv_header(const gfv_draws *d, FILE *f) {
  for (size_t j = 0; j < d->m; j++) {
    csv_name(f, d->names[j]);
    fputc(',', f);
  }
  fputs("lp__,lq__\n", f);
}

void gfv_draws_csv_row(const gfv_draws *d, size_t i, FILE *f) {
  const double *r = d->v + i * d->cols;
  for (size_t j = 0; j < d->cols; j++) {
    if (j) fputc(',', f);
    /* pandas, NumPy and R all read NaN */
    if (isnan(r[j])) fputs("NaN", f);
    else fprintf(f, "%.17g", r[j]);
  }
  fputc('\n', f);
}

/* Scratch of one block. */
typedef struct {
  double *w, *z, *lp, *lq, *out;
  unsigned long *seeds;
  gfv_mix_work *mw;
} block_work;

/* whole: the mixture kernel's workspace for all K components (the gathered path). */
static int work_alloc(const gfv_solver *s, size_t m, int whole, block_work *b) {
  const size_t B = GFV_SAMPLE_BLOCK;
  GFV_CALL(gfv_calloc(&b->w, s->K, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->z, B * s->d, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->lp, B, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->lq, B, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->out, B * m, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->seeds, B, sizeof(unsigned long)));
  if (whole) GFV_CALL(s->fam->work_alloc(s->fam, s->d, s->K, 1, &b->mw));
  return GFV_OK;
}

static void work_free(block_work *b) {
  free(b->w), free(b->z), free(b->lp), free(b->lq), free(b->out), free(b->seeds);
  gfv_mix_work_free(b->mw);
}

/* Moves draw i of the block (z, lp, lq) to the front at position k, so the block's
 * accepted draws are contiguous, and gives it the seed of candidate r's outputs. */
static void keep_draw(block_work *b, size_t d, size_t i, size_t k, const gfv_stream *outs, uint64_t r) {
  b->seeds[k] = (unsigned long)gfv_stream_word(outs, r, 0, 0);
  if (i == k) return;
  memmove(b->z + k * d, b->z + i * d, d * sizeof(double));
  b->lp[k] = b->lp[i], b->lq[k] = b->lq[i];
}

/* Fills rows [first, first + c) of out->v from the block's c accepted draws, and writes
 * them to both files. */
static int emit(gfv_solver *s, block_work *b, size_t c, size_t first, FILE *samples, FILE *csv,
                gfv_draws *out) {
  const size_t d = s->d, m = out->m;
  const gfv_target *t = s->target;
  if (t->constrain) GFV_CALL(t->constrain(t, c, b->z, b->seeds, b->out));
  for (size_t i = 0; i < c; i++) {
    double *r = out->v + (first + i) * out->cols;
    const double *o = t->constrain ? b->out + i * m : b->z + i * d;
    int nan = 0;
    for (size_t j = 0; j < m; j++) r[j] = o[j], nan |= isnan(o[j]);
    out->not_computed += nan;
    r[m] = b->lp[i], r[m + 1] = b->lq[i];
    for (size_t a = 0; a < d; a++) fprintf(samples, a ? ",%.17g" : "%.17g", b->z[i * d + a]);
    fputc('\n', samples);
    gfv_draws_csv_row(out, first + i, csv);
  }
  return GFV_OK;
}

int gfv_draws_make(gfv_solver *s, int restrict_, FILE *samples, FILE *csv, gfv_draws *out) {
  const size_t d = s->d, N = (size_t)s->cfg->out_samples;
  /* Rejection stops being a way to draw when nearly every draw is rejected. */
  const size_t max_drawn = 1000 * N + 100000;
  block_work b = {0};
  gfv_discrete *table = NULL;
  int st = GFV_OK;
  /* Candidate r: row r of rows (gfv_stream_mixture_row), its outputs' seed from (r, 0) of outs. */
  const gfv_stream rows = gfv_stream_make(s->cur.seed, 0, GFV_PURPOSE_SAMPLES_CSV);
  const gfv_stream outs = gfv_stream_make(s->cur.seed, 0, GFV_PURPOSE_DRAWS);
  memset(out, 0, sizeof *out);
  GFV_CALL_GOTO(st, draws_names(s->target, out), done);
  GFV_CALL_GOTO(st, work_alloc(s, out->m, 1, &b), done);
  GFV_CALL_GOTO(st, gfv_calloc(&out->v, N * out->cols + 1, sizeof(double)), done);
  for (size_t k = 0; k < s->K; k++) b.w[k] = exp(s->full_logw[k]);
  GFV_CALL_GOTO(st, gfv_discrete_alloc(s->K, b.w, &table), done);
  gfv_particles view = s->cur; /* borrow the sampler with the whole mixture's arrays */
  view.mu = s->full_mu, view.L = s->full_L;
  gfv_mix_view full = {d, s->K, s->full_mu, s->full_P, s->full_L, s->full_logc, s->fam->diag, s->fam->rank};
  fprintf(samples, "z_1");
  for (size_t t = 1; t < d; t++) fprintf(samples, ",z_%zu", t + 1);
  fprintf(samples, "\n");
  gfv_draws_csv_header(out, csv);
  for (size_t written = 0, drawn = 0; written < N;) {
    /* A safe point every block: a stop asked for now abandons the (temporary) files. */
    if (gfv_interrupt_signal()) {
      st = GFV_STOPPED;
      goto done;
    }
    if (drawn > max_drawn)
      GFV_ERROR_GOTO(st, done, GFV_ERR_NUMERIC,
                     "samples.csv: only %zu of %zu draws fell inside the target's support; the "
                     "mixture has almost no mass there", written, drawn);
    size_t c = N - written < GFV_SAMPLE_BLOCK ? N - written : GFV_SAMPLE_BLOCK, kept = 0;
    for (size_t i = 0; i < c; i++) {
      size_t k = gfv_discrete_pick(table, gfv_stream_mixture_row(&rows, drawn + i, d, b.z + i * d));
      gfv_particles_transform(&view, k, 1, b.z + i * d);
    }
    GFV_CALL_GOTO(st, gfv_target_eval(s->target, c, b.z, b.lp, NULL, NULL), done);
    GFV_CALL_GOTO(st, gfv_mix_eval(&full, c, b.z, b.lq, NULL, NULL, b.mw), done);
    for (size_t i = 0; i < c; i++)
      if (!restrict_ || b.lp[i] != -INFINITY) keep_draw(&b, d, i, kept++, &outs, drawn + i);
    drawn += c;
    GFV_CALL_GOTO(st, emit(s, &b, kept, written, samples, csv, out), done);
    written += kept;
  }
  out->N = N;
done:
  gfv_discrete_free(table);
  work_free(&b);
  if (st) gfv_draws_free(out);
  return st;
}

/* ---- beyond the gather budget: the draws from the components' owners ---- */

/* The streamed evaluation of log q at this rank's share of a block's draws, summed over
 * the mixture's blocks as they pass round the ring (params_stream.c; as the final
 * evaluation's stream_logq). */
typedef struct {
  size_t n;
  const double *z;
  double *lq;
  gfv_mix_fused *f;
} lq_sweep;

static int lq_block(gfv_solver *s, const gfv_mix_view *v, const double *lmin, void *ctx) {
  lq_sweep *e = ctx;
  gfv_mix_fused_fix_mixture(e->f, 1);
  gfv_mix_fused_set_bounds(e->f, lmin, lmin + v->k);
  return gfv_mix_fused_logq_add(v, e->n, e->z, NULL, e->lq, s->K, e->f);
}

/* Collective: the c candidates from `drawn` on into z on every rank.  Every rank picks
 * each one's component from the gathered weights (table) and the component's owner makes
 * the draw; the others leave -0.0, which the sum over ranks adds without a trace (x + -0.0
 * is x, -0.0 and NaN included), so z is bitwise the gathered path's. */
static int draw_candidates(gfv_solver *s, const gfv_discrete *table, const gfv_stream *rows,
                           size_t drawn, size_t c, double *z) {
  const size_t d = s->d;
  for (size_t i = 0; i < c; i++) {
    double *zi = z + i * d;
    size_t k = gfv_discrete_pick(table, gfv_stream_mixture_row(rows, drawn + i, d, zi));
    if (k >= s->k0 && k < s->k0 + s->kloc) gfv_particles_transform(&s->cur, k - s->k0, 1, zi);
    else
      for (size_t a = 0; a < d; a++) zi[a] = -0.0;
  }
  return gfv_comm_allreduce_sum(s->comm, z, c * d);
}

/* Collective: log q at the c draws into lq on rank 0: each rank sums the streamed mixture
 * at its share of them (mine, scratch of a share), rank 0 gathers the shares. */
static int candidates_logq(gfv_solver *s, gfv_mix_fused *f, size_t c, const double *z,
                           double *mine, double *lq, size_t *counts, size_t *displs) {
  size_t i0, n;
  gfv_block_range(c, s->size, s->rank, &i0, &n);
  for (size_t i = 0; i < n; i++) mine[i] = -INFINITY;
  lq_sweep e = {n, z + i0 * s->d, mine, f};
  GFV_CALL(gfv_solver_ring_sweep(s, lq_block, &e));
  gfv_mix_fused_set_bounds(f, NULL, NULL);
  gfv_block_counts(c, s->size, sizeof(double), counts, displs);
  return gfv_comm_gatherv_bytes(s->comm, mine, n * sizeof(double), lq, counts, displs, 0);
}

int gfv_draws_make_streamed(gfv_solver *s, int restrict_, FILE *samples, FILE *csv, gfv_draws *out) {
  const size_t d = s->d, N = (size_t)s->cfg->out_samples, B = GFV_SAMPLE_BLOCK;
  const size_t max_drawn = 1000 * N + 100000;
  const int root = s->rank == 0;
  block_work b = {0};
  gfv_discrete *table = NULL;
  gfv_mix_fused *f = NULL;
  double *mine = NULL, lref;
  size_t *counts = NULL, *displs = NULL;
  const gfv_stream rows = gfv_stream_make(s->cur.seed, 0, GFV_PURPOSE_SAMPLES_CSV);
  const gfv_stream outs = gfv_stream_make(s->cur.seed, 0, GFV_PURPOSE_DRAWS);
  memset(out, 0, sizeof *out);
  int st = draws_names(s->target, out);
  if (!st) st = work_alloc(s, out->m, 0, &b);
  if (!st && root) st = gfv_calloc(&out->v, N * out->cols + 1, sizeof(double));
  if (!st) st = gfv_calloc(&mine, B / (size_t)s->size + 1, sizeof(double));
  if (!st) st = gfv_calloc(&counts, (size_t)s->size, sizeof(size_t));
  if (!st) st = gfv_calloc(&displs, (size_t)s->size, sizeof(size_t));
  if (!st) st = gfv_mix_fused_alloc(d, s->stream_cap, 1, s->fam->diag, GFV_MIX_FUSED_BUDGET, &f);
  if (!st) {
    gfv_mix_fused_set_prune(f, strcmp(s->cfg->prune, "off") != 0);
    for (size_t k = 0; k < s->K; k++) b.w[k] = exp(s->full_logw[k]);
    st = gfv_discrete_alloc(s->K, b.w, &table);
  }
  GFV_CALL_GOTO(st, gfv_comm_agree(s->comm, st, NULL), done);
  /* the pruning's eigenvalue bounds, once, by each owner (they travel with the blocks) */
  if (strcmp(s->cfg->prune, "off") != 0) GFV_CALL_GOTO(st, gfv_solver_own_bounds(s, f, &lref), done);
  if (root) {
    fprintf(samples, "z_1");
    for (size_t t = 1; t < d; t++) fprintf(samples, ",z_%zu", t + 1);
    fprintf(samples, "\n");
    gfv_draws_csv_header(out, csv);
  }
  for (size_t written = 0, drawn = 0; written < N;) {
    GFV_CALL_GOTO(st, gfv_comm_agree(s->comm, gfv_interrupt_signal() ? GFV_STOPPED : GFV_OK, NULL), done);
    /* drawn is the same on every rank: the check needs no agreement */
    if (drawn > max_drawn)
      GFV_ERROR_GOTO(st, done, GFV_ERR_NUMERIC,
                     "samples.csv: only %zu of %zu draws fell inside the target's support; the "
                     "mixture has almost no mass there", written, drawn);
    size_t c = N - written < B ? N - written : B, kept = 0;
    GFV_CALL_GOTO(st, draw_candidates(s, table, &rows, drawn, c, b.z), done);
    GFV_CALL_GOTO(st, candidates_logq(s, f, c, b.z, mine, b.lq, counts, displs), done);
    if (root) { /* the target, the choice of the kept draws and the rows: rank 0's */
      st = gfv_target_eval(s->target, c, b.z, b.lp, NULL, NULL);
      for (size_t i = 0; !st && i < c; i++)
        if (!restrict_ || b.lp[i] != -INFINITY) keep_draw(&b, d, i, kept++, &outs, drawn + i);
      if (!st) st = emit(s, &b, kept, written, samples, csv, out);
    }
    GFV_CALL_GOTO(st, gfv_comm_agree(s->comm, st, NULL), done);
    GFV_CALL_GOTO(st, gfv_comm_bcast(s->comm, &kept, sizeof kept, 0), done);
    drawn += c;
    written += kept;
  }
  out->N = N;
done:
  gfv_discrete_free(table);
  gfv_mix_fused_free(f);
  work_free(&b);
  free(mine), free(counts), free(displs);
  if (st) gfv_draws_free(out);
  return st;
}
