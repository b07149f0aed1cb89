/* resample.c - draws_psis.csv: the draws of draws.csv resampled with replacement by their
 * Pareto-smoothed importance weights (psis.h).  The draws come from q (restricted to the
 * target's support where it has a bound, which changes the log ratios by a constant only),
 * so w_i ~ exp(lp__ - lq__) corrects them towards the target; the smoothing replaces the
 * largest weights by the expected order statistics of the fitted Pareto tail, which bounds
 * the variance that a few huge raw weights would bring.  With k-hat above 0.7 the resampled
 * draws are no better than the fit (summary.json says so). */
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "rng/rng.h"
#include "solver/draws.h"

int gfv_draws_resample_psis(const gfv_draws *d, unsigned long seed, FILE *f, gfv_psis_result *res,
                            size_t *distinct) {
  const size_t N = d->N;
  double *lr = NULL, *w = NULL;
  unsigned char *seen = NULL;
  gfv_discrete *table = NULL;
  gsl_rng *rng = NULL;
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
  rng = gsl_rng_alloc(gsl_rng_mt19937);
  if (!rng) GFV_ERROR_GOTO(st, done, GFV_ERR_MEMORY, "cannot allocate a random stream");
  gsl_rng_set(rng, seed);
  for (size_t i = 0; i < N; i++) {
    size_t r = gfv_discrete_draw(table, rng);
    *distinct += !seen[r];
    seen[r] = 1;
    gfv_draws_csv_row(d, r, f);
  }
done:
  gsl_rng_free(rng);
  gfv_discrete_free(table);
  free(lr), free(w), free(seen);
  return st;
}
