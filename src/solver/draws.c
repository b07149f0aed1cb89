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

static int work_alloc(const gfv_solver *s, size_t m, block_work *b) {
  const size_t B = GFV_SAMPLE_BLOCK;
  GFV_CALL(gfv_calloc(&b->w, s->K, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->z, B * s->d, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->lp, B, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->lq, B, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->out, B * m, sizeof(double)));
  GFV_CALL(gfv_calloc(&b->seeds, B, sizeof(unsigned long)));
  GFV_CALL(s->fam->work_alloc(s->fam, s->d, s->K, 1, &b->mw));
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
  GFV_CALL_GOTO(st, work_alloc(s, out->m, &b), done);
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
