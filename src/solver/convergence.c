/* convergence.c - the windowed ELBO test of convergence (convergence.h).
 *
 * Why windows, means and medians.  One iteration's ELBO is a Monte Carlo estimate (S samples
 * per particle); its change from one iteration to the next is mostly noise, so a test on
 * consecutive values (or on the size of the update, the old --tol) says nothing about the
 * distance to the optimum.  As in Stan's ADVI (tol_rel_obj: relative ELBO changes every
 * eval_elbo iterations, mean or median of a circular buffer of them below tol), the test
 * compares averages over many iterations; unlike Stan it requires BOTH the mean and the
 * median to have settled (the median is not dragged by one heavy-tailed estimate, the mean
 * sees a slow drift of the whole distribution) and it accounts for the Monte Carlo error:
 * the change of the window mean must be below tol even at the upper end of its confidence
 * interval, |delta| + 2 se(delta), so a noisy estimate passes only if its noise is small
 * against tol, never by chance.  The relative change is scaled by max(1, |ELBO|): targets
 * that are normalised have an ELBO near 0 (-KL), where a plain relative change would be
 * undefined; there tol acts as an absolute tolerance in nats.
 *
 * The standard error of a window's mean is the largest of three estimates, because each
 * alone can be too small:
 *   - Monte Carlo: sqrt(sum se_i^2) / W.  Each iteration draws fresh samples from the
 *     particles' streams, so the estimates' Monte Carlo errors are independent; this is the
 *     error of the mean even if the particles stood still, and it cannot be fooled by a
 *     window whose values happen to agree.
 *   - plain: sd / sqrt(W) from the window's spread, which also holds the fluctuation of the
 *     iterate (a constant step never settles: the particles jitter around the optimum).
 *     Exact for independent values, too small when they are positively autocorrelated.
 *   - batch means: the sd of the means of GFV_CONV_BATCHES consecutive batches over
 *     sqrt(batches).  It accounts for autocorrelation shorter than a batch (W / 5
 *     iterations); at an optimum the ELBO depends on the iterate's deviation only at second
 *     order, so the independent Monte Carlo noise dominates and short batches suffice.  With
 *     4 degrees of freedom it is noisy itself, hence the maximum with the two others.
 * A trend inside a window widens the spread too, so while the ELBO still moves the se is
 * larger: this only delays convergence.  Adjacent windows are treated as independent
 * (se_delta^2 = se^2 + se_prev^2): their correlation reaches only across the boundary.
 *
 * `hold` consecutive passing windows are required so that one lucky window does not end the
 * run: converged means the test held over hold windows, i.e. (hold + 1) W iterations of ELBO
 * estimates agree to within tol. */
#include "solver/convergence.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"

struct gfv_convergence {
  size_t window, hold;
  double tol;
  double *val, *var, *sorted; /* the open window's elbo and se^2; scratch for the median */
  size_t fill;                /* values in the open window */
  int have_prev;              /* a previous window exists */
  double prev_mean, prev_median, prev_se;
  gfv_convergence_stats st;
};

int gfv_update_norm_below(double rel_update_norm, double tol) {
  return tol > 0 && rel_update_norm < tol;
}

void gfv_convergence_reset(gfv_convergence *c) {
  c->fill = 0;
  c->have_prev = 0;
  c->prev_mean = c->prev_median = c->prev_se = NAN;
  gfv_convergence_stats *s = &c->st;
  memset(s, 0, sizeof *s); /* padding too: a replayed state compares bitwise */
  s->mean = s->median = s->se = NAN;
  s->rel_mean = s->rel_median = s->rel_bound = s->se_delta = NAN;
  s->first_held = s->converged_at = -1;
}

int gfv_convergence_create(size_t window, size_t hold, double tol, gfv_convergence **out) {
  *out = NULL;
  GFV_CHECK(window >= GFV_CONV_MIN_WINDOW, GFV_ERR_USAGE,
            "--conv-window=%zu is too short: the test needs at least %d iterations per window",
            window, GFV_CONV_MIN_WINDOW);
  GFV_CHECK(hold >= 1, GFV_ERR_USAGE, "--conv-hold=%zu: at least 1 window must pass", hold);
  GFV_CHECK(isfinite(tol) && tol >= 0 && tol <= 1, GFV_ERR_USAGE,
            "--tol=%g: a relative ELBO change needs 0 <= tol <= 1 (0 = run all iterations)", tol);
  gfv_convergence *c = NULL;
  GFV_CALL(gfv_calloc(&c, 1, sizeof *c));
  c->window = window, c->hold = hold, c->tol = tol;
  int st = gfv_calloc(&c->val, window, sizeof(double));
  if (!st) st = gfv_calloc(&c->var, window, sizeof(double));
  if (!st) st = gfv_calloc(&c->sorted, window, sizeof(double));
  if (st) {
    gfv_convergence_free(c);
    return st;
  }
  gfv_convergence_reset(c);
  *out = c;
  return GFV_OK;
}

void gfv_convergence_free(gfv_convergence *c) {
  if (!c) return;
  free(c->val), free(c->var), free(c->sorted);
  free(c);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double mean_of(const double *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  return s / (double)n;
}

/* Standard error of the mean of the open (full) window; the header comment says why the max. */
static double window_se(const gfv_convergence *c, double mean) {
  const size_t W = c->window, B = GFV_CONV_BATCHES;
  double ss = 0, var_sum = 0;
  for (size_t i = 0; i < W; i++) {
    ss += (c->val[i] - mean) * (c->val[i] - mean);
    var_sum += c->var[i];
  }
  double se_mc = sqrt(var_sum) / (double)W;
  double se_plain = sqrt(ss / (double)(W - 1) / (double)W);
  double bss = 0; /* batch b holds values [b W / B, (b + 1) W / B) */
  for (size_t b = 0; b < B; b++) {
    size_t lo = b * W / B, hi = (b + 1) * W / B;
    double bm = mean_of(c->val + lo, hi - lo) - mean;
    bss += bm * bm;
  }
  double se_bm = sqrt(bss / (double)(B - 1) / (double)B);
  return fmax(se_mc, fmax(se_plain, se_bm));
}

static void close_window(gfv_convergence *c) {
  const size_t W = c->window;
  gfv_convergence_stats *s = &c->st;
  double mean = mean_of(c->val, W);
  memcpy(c->sorted, c->val, W * sizeof(double));
  qsort(c->sorted, W, sizeof(double), cmp_double);
  double median = W % 2 ? c->sorted[W / 2] : 0.5 * (c->sorted[W / 2 - 1] + c->sorted[W / 2]);
  double se = window_se(c, mean);
  s->windows++;
  s->mean = mean, s->median = median, s->se = se;
  if (c->have_prev) {
    double scale = fmax(1.0, fabs(mean)), dm = fabs(mean - c->prev_mean);
    s->se_delta = sqrt(se * se + c->prev_se * c->prev_se);
    s->rel_mean = dm / scale;
    s->rel_median = fabs(median - c->prev_median) / scale;
    s->rel_bound = (dm + 2.0 * s->se_delta) / scale;
    int pass = c->tol > 0 && s->rel_bound < c->tol && s->rel_median < c->tol;
    if (pass) {
      if (s->streak == 0) s->first_held = s->pushes;
      s->streak++;
    } else {
      s->streak = 0;
      s->first_held = -1;
    }
    s->converged = s->streak >= (long)c->hold;
    if (s->converged && s->converged_at < 0) s->converged_at = s->pushes;
  }
  c->have_prev = 1;
  c->prev_mean = mean, c->prev_median = median, c->prev_se = se;
  c->fill = 0;
}

int gfv_convergence_push(gfv_convergence *c, double elbo, double elbo_se, int *converged) {
  GFV_CHECK(isfinite(elbo) && isfinite(elbo_se) && elbo_se >= 0, GFV_ERR_NUMERIC,
            "convergence test: iteration %ld has ELBO %g +- %g; only finite values can be tested",
            c->st.pushes + 1, elbo, elbo_se);
  c->val[c->fill] = elbo;
  c->var[c->fill] = elbo_se * elbo_se;
  c->fill++;
  c->st.pushes++;
  if (c->fill == c->window) close_window(c);
  if (converged) *converged = c->st.converged;
  return GFV_OK;
}

void gfv_convergence_get_stats(const gfv_convergence *c, gfv_convergence_stats *out) {
  *out = c->st;
}

int gfv_convergence_replay(gfv_convergence *c, const gfv_trace_row *rows, size_t n) {
  gfv_convergence_reset(c);
  for (size_t i = 0; i < n; i++)
    if (rows[i].iteration >= 1) GFV_CALL(gfv_convergence_push(c, rows[i].elbo, rows[i].elbo_se, NULL));
  return GFV_OK;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option stopping_options[] = {
    {.name = "iters", .type = OPT_LONG, OPT_FIELD(iters), .def = "1000", .bound = BOUND_GE, .lo = 0,
     .role = ROLE_RUN,
     .help = "maximum number of iterations"},
    {.name = "tol", .type = OPT_DOUBLE, OPT_FIELD(tol), .def = "0", .bound = BOUND_BETWEEN, .lo = 0,
     .hi = 1,
     .role = ROLE_RUN,
     .help = "stop when the ELBO has settled: the mean and median ELBO of each window of "
             "--conv-window iterations moved by less than tol x max(1, |ELBO|) from the window "
             "before, even with 2 standard errors added, for 2 windows in a row; 0 = run all "
             "iterations (the verdict then judges convergence at 0.01)"},
    {.name = "tol-update", .type = OPT_DOUBLE, OPT_FIELD(tol_update), .def = "0", .bound = BOUND_GE,
     .lo = 0,
     .role = ROLE_RUN,
     .help = "stop when the relative update norm |dlambda| / (1 + |lambda|) falls below this: "
             "the particles moved little, which does not mean the fit is good; 0 = never"},
    /* At most 10^7: three windows of doubles are allocated up front (an unbounded value
     * stopped with 'allocation of ... bytes overflows', naming no option). */
    {.name = "conv-window", .type = OPT_LONG, OPT_FIELD(conv_window), .def = "50",
     .bound = BOUND_BETWEEN,
     .lo = 10, .hi = 1e7,
     .role = ROLE_RUN,
     .help = "iterations per window of the convergence test (--tol and the verdict)"},
};
GFV_OPTION_TABLE(gfv_options_stopping, stopping_options);
