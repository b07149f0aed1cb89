/* resample.c - draws_psis.csv: the draws of draws.csv resampled with replacement by their
 * Pareto-smoothed importance weights (psis.h).  The draws come from q (restricted to the
 * target's support where it has a bound, which changes the log ratios by a constant only),
 * so w_i ~ exp(lp__ - lq__) corrects them towards the target; the smoothing replaces the
 * largest weights by the expected order statistics of the fitted Pareto tail, which bounds
 * the variance that a few huge raw weights would bring.  With k-hat above 0.7 the resampled
 * draws are no better than the fit (summary.json says so). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "rng/stream.h"
#include "solver/draws.h"

int gfv_draws_resample_psis(const gfv_draws *d, uint64_t seed, FILE *f, gfv_psis_result *res,
                            size_t *distinct) {
  const size_t N = d->N;
  double *lr = NULL, *w = NULL;
  unsigned char *seen = NULL;
  gfv_discrete *table = NULL;
  const gfv_stream picks = gfv_stream_make(seed, 0, GFV_PURPOSE_RESAMPLE);
  int st = GFV_OK;
  memset(res, 0, sizeof *res);
  res->khat = NAN;
  *distinct = 0;
  gfv_draws_csv_header(d, f);
  if (N == 0) return GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&lr, N, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&w, N, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&seen, N, 1), done);
  for (size_t i = 0; i < N; i++) lr[i] = d->v[i * d->cols + d->m] - d->v[i * d->cols + d->m + 1];
  GFV_CALL_GOTO(st, gfv_psis(N, lr, w, res), done);
  double mx = -INFINITY;
  for (size_t i = 0; i < N; i++) mx = fmax(mx, w[i]);
  for (size_t i = 0; i < N; i++) w[i] = exp(w[i] - mx);
  GFV_CALL_GOTO(st, gfv_discrete_alloc(N, w, &table), done);
  for (size_t i = 0; i < N; i++) {
    size_t r = gfv_discrete_pick(table, gfv_u01(gfv_stream_word(&picks, 0, 0, i)));
    *distinct += !seen[r];
    seen[r] = 1;
    gfv_draws_csv_row(d, r, f);
  }
done:
  gfv_discrete_free(table);
  free(lr), free(w), free(seen);
  return st;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const char *const resample_choices[] = {"none", "psis", NULL};
static const gfv_option resample_options[] = {
    {.name = "resample", .type = OPT_CHOICE, OPT_FIELD(resample), .def = "none",
     .choices = resample_choices, .role = ROLE_RUN,
     .help = "psis = also write draws_psis.csv: the draws of draws.csv resampled with "
             "replacement by their Pareto-smoothed importance weights p/q"},
};
GFV_OPTION_TABLE(gfv_options_resample, resample_options);
