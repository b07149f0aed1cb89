/* test_convergence_window.c - the windowed ELBO convergence test (src/solver/convergence.c):
 *  - a noisy constant sequence converges after (hold + 1) windows, and a normalised target
 *    (ELBO near 0) is handled through the max(1, |ELBO|) scale;
 *  - a rising sequence -100 + 50 (1 - exp(-t/300)) + noise does not converge while its true
 *    change per window is above tol, and does once it is well below;
 *  - noise cannot pass: constant values with a large reported standard error, large real
 *    noise, a real trend above tol hidden in noise, and an autocorrelated wander larger
 *    than tol never converge;
 *  - the median guards against a change of shape that keeps the mean;
 *  - the real case: the trace of the breast-cancer logistic regression (fixture
 *    tests/unit/data/logreg_breast_cancer_trace.csv, its header says how it was made), where
 *    the old --tol=1e-2 stopped at iteration 37, 154 nats below the optimum;
 *  - replaying a trace reproduces the live state bitwise (checkpoint / restart);
 *  - the old test under its new name, and the argument checks.
 * The random sequences come from GSL's MT19937 with fixed seeds: deterministic. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "harness.h"
#include "solver/convergence.h"

#define W GFV_CONV_WINDOW
#define HOLD GFV_CONV_HOLD

/* Pushes n values mean(t) + sd N(0,1) with reported standard error se (t = 1..n); returns
 * converged_at (-1: never).  mean == NULL: constant c. */
static long feed(gfv_convergence *c, long n, double (*mean)(long), double cst, double sd, double se,
                 unsigned long seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  for (long t = 1; t <= n; t++) {
    double v = (mean ? mean(t) : cst) + (sd > 0 ? gsl_ran_gaussian(r, sd) : 0.0);
    CHECK(gfv_convergence_push(c, v, se, NULL) == GFV_OK, "push %ld", t);
  }
  gsl_rng_free(r);
  gfv_convergence_stats s;
  gfv_convergence_get_stats(c, &s);
  return s.converged_at;
}

static gfv_convergence *make(double tol) {
  gfv_convergence *c = NULL;
  CHECK(gfv_convergence_create(W, HOLD, tol, &c) == GFV_OK, "create: %s", gfv_error_message());
  return c;
}

/* -100 + N(0, 1), se 1: window-mean se about 1/sqrt(50) = 0.14, so (|delta| + 2 se_delta) / 100
 * is about 0.005 < 1e-2: every window passes; the first compared window is the second, the
 * hold of 2 is reached at the end of the third: iteration 150. */
static void noisy_constant_converges(void) {
  gfv_convergence *c = make(1e-2);
  int conv = -1;
  for (long t = 1; t <= 149; t++) gfv_convergence_push(c, -100.0 + (t % 7 - 3) * 0.4, 1.0, &conv);
  CHECK(conv == 0, "converged before 3 windows");
  gfv_convergence_reset(c);
  long at = feed(c, 400, NULL, -100.0, 1.0, 1.0, 1);
  gfv_convergence_stats s;
  gfv_convergence_get_stats(c, &s);
  CHECK(at == 150, "converged_at %ld, expected 150", at);
  CHECK(s.converged && s.streak == 7 && s.windows == 8, "streak %ld windows %ld", s.streak, s.windows);
  CHECK(s.pushes == 400, "pushes %ld", s.pushes);
  CHECK(s.first_held == 100, "first_held %ld (the streak starts at the second window)", s.first_held);
  /* se of a window mean: at least the Monte Carlo 1/sqrt(50), and not wildly above. */
  CHECK(s.se >= 1.0 / sqrt(50.0) - 1e-15 && s.se < 0.3, "se %g", s.se);
  CHECK_NEAR(s.mean, -100.0, 0.5, "window mean");
  CHECK(s.rel_bound < 1e-2 && s.rel_mean <= s.rel_bound && s.rel_median < 1e-2,
        "rel_bound %g rel_mean %g rel_median %g", s.rel_bound, s.rel_mean, s.rel_median);
  gfv_convergence_free(c);
}

/* ELBO -0.03 (a normalised target: -KL), noise 0.002: the scale max(1, |ELBO|) = 1 makes tol
 * an absolute 0.01 nats; a plain relative change |delta| / 0.03 would need |delta| < 3e-4. */
static void normalised_target_converges(void) {
  gfv_convergence *c = make(1e-2);
  long at = feed(c, 300, NULL, -0.03, 0.002, 0.002, 2);
  CHECK(at == 150, "converged_at %ld, expected 150", at);
  gfv_convergence_free(c);
}

static double rising(long t) { return -100.0 + 50.0 * (1.0 - exp(-(double)t / 300.0)); }

/* The noise-free relative change of the window ending at t against the one before. */
static double true_rel_change(long t) {
  double m1 = 0, m0 = 0;
  for (long i = t - W + 1; i <= t; i++) m1 += rising(i) / W;
  for (long i = t - 2 * W + 1; i <= t - W; i++) m0 += rising(i) / W;
  return fabs(m1 - m0) / fmax(1.0, fabs(m1));
}

static void rising_converges_only_when_flat(void) {
  const double tols[2] = {1e-2, 1e-3};
  for (int k = 0; k < 2; k++) {
    double tol = tols[k], sd = 0.05;
    gfv_convergence *c = make(tol);
    long at = feed(c, 4000, rising, 0, sd, sd, 3 + (unsigned long)k);
    /* Not before the true change is below tol for every window of the hold. */
    long first_below = -1, first_well_below = -1;
    for (long t = 2 * W; t <= 4000; t += W) {
      if (first_below < 0 && true_rel_change(t) < tol) first_below = t;
      /* Well below: the change plus 2 se_delta (se of a window mean >= sd / sqrt(W)) and
       * a margin of 1.5 for the window's trend, which widens its spread. */
      if (first_well_below < 0 && 1.5 * true_rel_change(t) + 2 * sqrt(2.0) * sd / sqrt(W) / 50 < tol)
        first_well_below = t;
    }
    CHECK(at > 0, "tol %g: never converged in 4000 iterations", tol);
    CHECK(at >= first_below + (HOLD - 1) * W, "tol %g: converged at %ld, true change below tol from %ld",
          tol, at, first_below);
    CHECK(at <= first_well_below + HOLD * W, "tol %g: converged at %ld, well below tol from %ld", tol,
          at, first_well_below);
    printf("# rising sequence, tol %g: converged at %ld (true change below tol from %ld)\n", tol, at,
           first_below);
    gfv_convergence_free(c);
  }
}

/* Values that agree exactly but are each uncertain (se 10): the Monte Carlo floor keeps
 * (0 + 2 sqrt(2) 10 / sqrt(50)) / 100 = 0.04 above tol = 0.01, so the test never passes. */
static void large_se_never_passes(void) {
  gfv_convergence *c = make(1e-2);
  CHECK(feed(c, 5000, NULL, -100.0, 0.0, 10.0, 4) < 0, "converged on values with se 10");
  gfv_convergence_stats s;
  gfv_convergence_get_stats(c, &s);
  CHECK_NEAR(s.se, 10.0 / sqrt(50.0), 1e-12, "se is the Monte Carlo floor");
  CHECK(s.rel_mean == 0 && s.rel_median == 0, "the values agree exactly");
  gfv_convergence_free(c);
  /* The same with tol 0.05 > 0.04 does converge: the floor is what blocked it. */
  c = make(5e-2);
  CHECK(feed(c, 300, NULL, -100.0, 0.0, 10.0, 4) == 150, "tol 0.05 should converge at 150");
  gfv_convergence_free(c);
}

/* Real noise sd 10 (se of a window mean 1.4): the plain test |delta| / 100 < 0.01 would
 * pass in about 38% of the windows, and twice in a row often; the resolved one never. */
static void large_noise_never_passes(void) {
  gfv_convergence *c = make(1e-2);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 5);
  long plain_pass = 0, windows = 0;
  for (long t = 1; t <= 20000; t++) {
    gfv_convergence_push(c, -100.0 + gsl_ran_gaussian(r, 10.0), 10.0, NULL);
    gfv_convergence_stats s;
    gfv_convergence_get_stats(c, &s);
    if (t % W == 0 && t > W) windows++, plain_pass += s.rel_mean < 1e-2;
  }
  gfv_convergence_stats s;
  gfv_convergence_get_stats(c, &s);
  CHECK(s.converged_at < 0, "converged by noise at %ld", s.converged_at);
  CHECK(plain_pass > windows / 5, "plain test passed in %ld of %ld windows (expected ~38%%)",
        plain_pass, windows);
  gsl_rng_free(r);
  gfv_convergence_free(c);
}

/* A slow wander: AR(1) with rho 0.98 (correlation time 50 iterations) and stationary sd 3
 * around -100, Monte Carlo se 0.1.  Window means then differ by about 5 nats (5% of |ELBO|)
 * from one window to the next, so a 1% test must not pass.  Inside a window the values
 * look smooth: the plain sd / sqrt(W) is far too small and lets the test pass now and then;
 * the batch means see the autocorrelation. */
static void autocorrelated_wander_never_passes(void) {
  gfv_convergence *c = make(1e-2);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 9);
  const double rho = 0.98, sd = 3.0;
  double x = 0;
  for (long t = 1; t <= 50000; t++) {
    x = rho * x + gsl_ran_gaussian(r, sd * sqrt(1 - rho * rho));
    gfv_convergence_push(c, -100.0 + x, 0.1, NULL);
  }
  gfv_convergence_stats s;
  gfv_convergence_get_stats(c, &s);
  CHECK(s.converged_at < 0, "a wander of 5%% per window passed at %ld", s.converged_at);
  gsl_rng_free(r);
  gfv_convergence_free(c);
}

/* A real change of 1.5% per window (m(t) = -100 * 1.015^(t / W)) under noise of 4% of |m|:
 * with tol 1e-2 it must never converge, however the noise falls. */
static void hidden_trend_never_passes(void) {
  gfv_convergence *c = make(1e-2);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 6);
  for (long t = 1; t <= 20000; t++) {
    double m = -100.0 * pow(1.015, (double)t / W), sd = 0.04 * fabs(m);
    gfv_convergence_push(c, m + gsl_ran_gaussian(r, sd), sd, NULL);
  }
  gfv_convergence_stats s;
  gfv_convergence_get_stats(c, &s);
  CHECK(s.converged_at < 0, "a trend above tol passed at %ld", s.converged_at);
  CHECK(s.windows == 400, "windows %ld", s.windows);
  gsl_rng_free(r);
  gfv_convergence_free(c);
}

/* Window 1 is -100 +- 0.01; windows 2-4 keep its mean (-100) but not its median: in every
 * batch of 10, 8 values at -101.1 and 2 at -95.6 (sd 2.2, se of the mean 0.31).  Window 2's
 * change is resolved (rel_bound 0.006 < 0.01) but its median moved by 1.1 nats: it does not
 * pass; windows 3 and 4 (equal to window 2, rel_bound 0.009) do, so the hold of 2 is reached
 * at 200, not 150. */
static void median_guards_shape(void) {
  gfv_convergence *c = make(1e-2);
  gfv_convergence_stats s;
  for (int w = 0; w < 4; w++) {
    for (int i = 0; i < W; i++) {
      double v = w == 0 ? -100.0 + (i % 2 ? 0.01 : -0.01) : (i % 10 < 8 ? -101.1 : -95.6);
      gfv_convergence_push(c, v, 0.01, NULL);
    }
    if (w == 1) {
      gfv_convergence_get_stats(c, &s);
      CHECK(s.rel_mean < 1e-12 && s.rel_bound < 1e-2, "window 2: rel_mean %g rel_bound %g",
            s.rel_mean, s.rel_bound);
      CHECK_NEAR(s.rel_median, 0.011, 1e-12, "median moved by 1.1 nats of 100");
      CHECK(s.streak == 0, "passed on a moved median");
    }
  }
  gfv_convergence_get_stats(c, &s);
  CHECK(s.windows == 4 && s.converged_at == 200, "windows %ld converged_at %ld", s.windows,
        s.converged_at);
  gfv_convergence_free(c);
}

static size_t read_trace(const char *path, gfv_trace_row *rows, size_t cap) {
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "cannot open %s (run from the repository root, or set GFV_ROOT)", path);
  if (!f) return 0;
  char line[512];
  size_t n = 0;
  while (fgets(line, sizeof line, f) && n < cap) {
    gfv_trace_row *r = &rows[n];
    if (sscanf(line, "%ld,%lf,%lf,%lf,%lf", &r->iteration, &r->elbo, &r->elbo_se, &r->step_norm,
               &r->step_size) == 5)
      n++;
  }
  fclose(f);
  return n;
}

static gfv_trace_row lr[1100];
static size_t nlr;

static long first_converged(double tol, double *mean_at) {
  gfv_convergence *c = make(tol);
  long at = -1;
  for (size_t i = 1; i < nlr && at < 0; i++) {
    int conv = 0;
    gfv_convergence_push(c, lr[i].elbo, lr[i].elbo_se, &conv);
    if (conv) {
      gfv_convergence_stats s;
      gfv_convergence_get_stats(c, &s);
      at = s.converged_at, *mean_at = s.mean;
    }
  }
  gfv_convergence_free(c);
  return at;
}

static void logreg_trace(void) {
  char path[4096];
  const char *root = getenv("GFV_ROOT");
  snprintf(path, sizeof path, "%s/tests/unit/data/logreg_breast_cancer_trace.csv", root ? root : ".");
  nlr = read_trace(path, lr, 1100);
  CHECK(nlr == 1001 && lr[0].iteration == 0 && lr[1000].iteration == 1000, "fixture: %zu rows", nlr);
  if (nlr != 1001) return;
  double plateau = 0;
  for (size_t i = 501; i <= 1000; i++) plateau += lr[i].elbo / 500.0;
  CHECK_NEAR(lr[37].elbo, -232.43489052605889, 1e-9, "the old test's stop (fixture header)");
  double m2 = 0, m3 = 0;
  long at2 = first_converged(1e-2, &m2), at3 = first_converged(1e-3, &m3);
  printf("# logreg trace: old --tol=1e-2 stopped at 37 (ELBO %.2f); windowed test: tol 1e-2 at %ld "
         "(window mean %.3f), tol 1e-3 at %ld (%.3f); plateau %.3f\n",
         lr[37].elbo, at2, m2, at3, m3, plateau);
  /* Values of this fixture, with window 50 and hold 2; they change only with the test. */
  CHECK(at2 == 300, "tol 1e-2: converged at %ld, expected 300", at2);
  CHECK(at3 == 500, "tol 1e-3: converged at %ld, expected 500", at3);
  /* What they mean: converged fits are within the tolerance of the plateau, not 154 nats. */
  CHECK(fabs(m2 - plateau) < 1e-2 * fabs(plateau), "tol 1e-2: %.3f vs plateau %.3f", m2, plateau);
  CHECK(fabs(m3 - plateau) < 1e-3 * fabs(plateau), "tol 1e-3: %.3f vs plateau %.3f", m3, plateau);
  /* Everything up to the old stop, however it is cut, never converges. */
  gfv_convergence *c = NULL;
  CHECK(gfv_convergence_create(GFV_CONV_MIN_WINDOW, 1, 1e-2, &c) == GFV_OK, "create");
  int conv = 0;
  for (size_t i = 1; i <= 37; i++) gfv_convergence_push(c, lr[i].elbo, lr[i].elbo_se, &conv);
  CHECK(!conv, "shortest window, hold 1: converged by iteration 37");
  gfv_convergence_free(c);
}

static int same_stats(const gfv_convergence_stats *a, const gfv_convergence_stats *b) {
  return memcmp(a, b, sizeof *a) == 0; /* both zero-padded by reset; NaNs compare bitwise */
}

/* A restart replays the checkpoint's trace: the state must equal the live one bitwise,
 * from a cut in the middle of a window, and stay equal as both continue. */
static void replay_equals_live(void) {
  static gfv_trace_row rows[1200];
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 7);
  rows[0] = (gfv_trace_row){0, -500.0, 30.0, 0, 0, 0}; /* the initial row is not pushed */
  for (long t = 1; t < 1200; t++)
    rows[t] = (gfv_trace_row){t, rising(t) + gsl_ran_gaussian(r, 0.3), 0.2 + 0.1 * gsl_rng_uniform(r),
                              1, 0.05, 0};
  gsl_rng_free(r);
  gfv_convergence *live = make(1e-3), *again = make(1e-3);
  const size_t cut = 437;
  for (size_t i = 1; i < cut; i++) gfv_convergence_push(live, rows[i].elbo, rows[i].elbo_se, NULL);
  gfv_convergence_push(again, 1.0, 1.0, NULL); /* replay must reset first */
  CHECK(gfv_convergence_replay(again, rows, cut) == GFV_OK, "replay");
  gfv_convergence_stats a, b;
  memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
  gfv_convergence_get_stats(live, &a);
  gfv_convergence_get_stats(again, &b);
  CHECK(same_stats(&a, &b), "after the replay: pushes %ld/%ld mean %.17g/%.17g", a.pushes, b.pushes,
        a.mean, b.mean);
  int diverged = 0;
  for (size_t i = cut; i < 1200; i++) {
    int c1, c2;
    gfv_convergence_push(live, rows[i].elbo, rows[i].elbo_se, &c1);
    gfv_convergence_push(again, rows[i].elbo, rows[i].elbo_se, &c2);
    gfv_convergence_get_stats(live, &a);
    gfv_convergence_get_stats(again, &b);
    diverged += c1 != c2 || !same_stats(&a, &b);
  }
  CHECK(!diverged, "the restarted test diverged from the live one in %d iterations", diverged);
  CHECK(a.windows == 23, "windows %ld", a.windows);
  gfv_convergence_free(live), gfv_convergence_free(again);
}

static void update_norm_and_arguments(void) {
  CHECK(gfv_update_norm_below(0.009, 0.01) == 1, "below");
  CHECK(gfv_update_norm_below(0.01, 0.01) == 0, "equal is not below");
  CHECK(gfv_update_norm_below(0.0, 0.0) == 0, "tol 0 never holds");
  gfv_convergence *c = NULL;
  CHECK(gfv_convergence_create(5, 2, 1e-3, &c) == GFV_ERR_USAGE && !c, "window 5");
  CHECK(strstr(gfv_error_message(), "--conv-window=5") != NULL, "message: %s", gfv_error_message());
  CHECK(gfv_convergence_create(50, 0, 1e-3, &c) == GFV_ERR_USAGE, "hold 0");
  CHECK(gfv_convergence_create(50, 2, 1.5, &c) == GFV_ERR_USAGE, "tol 1.5");
  CHECK(gfv_convergence_create(50, 2, NAN, &c) == GFV_ERR_USAGE, "tol NaN");
  c = make(0.0); /* tol 0: never converges, but keeps the statistics */
  CHECK(feed(c, 300, NULL, -1.0, 0.0, 0.0, 8) < 0, "tol 0 converged");
  gfv_convergence_stats s;
  gfv_convergence_get_stats(c, &s);
  CHECK(s.windows == 6 && s.rel_mean == 0, "windows %ld", s.windows);
  CHECK(gfv_convergence_push(c, NAN, 1.0, NULL) == GFV_ERR_NUMERIC, "NaN elbo");
  CHECK(gfv_convergence_push(c, 1.0, -1.0, NULL) == GFV_ERR_NUMERIC, "negative se");
  gfv_convergence_get_stats(c, &s);
  CHECK(s.pushes == 300, "a refused value is not counted");
  gfv_convergence_free(c);
}

int main(void) {
  RUN(noisy_constant_converges);
  RUN(normalised_target_converges);
  RUN(rising_converges_only_when_flat);
  RUN(large_se_never_passes);
  RUN(large_noise_never_passes);
  RUN(hidden_trend_never_passes);
  RUN(autocorrelated_wander_never_passes);
  RUN(median_guards_shape);
  RUN(logreg_trace);
  RUN(replay_equals_live);
  RUN(update_norm_and_arguments);
  return harness_report();
}
