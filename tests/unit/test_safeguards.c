/* test_safeguards.c - the step safeguards of docs/method.md, sections 4-5, with targets
 * that return NaN, +Inf or -Inf (docs/developer.md, "Reliability"): a target that is
 * non-finite everywhere stops cleanly at the start with the reason.  With the paper's plain steps
 * (--trust-region=0): an overshooting step that lands where the target is non-finite is
 * rejected, reported on stderr, and retried with a halved step, and the run recovers; a
 * target that stays NaN next to the particles ends with a clear error after the allowed
 * retries.  With the default per-component trust region: the same overshooting runs
 * recover (the region keeps the step short, or the component is put back alone), -Inf is a
 * zero density (samples outside the support are left out, their fraction reported), and a
 * persistent NaN ends with status 11, "diverged". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "solver/solver_impl.h"

/* A 1-D standard Gaussian centred at `centre`, `bad` (NaN, +Inf or -Inf) added to the
 * log density and its derivatives where |z| > nan_above. */
typedef struct {
  double centre, nan_above, bad;
  int truncated; /* bad = -Inf cuts the density: no longer normalised */
} nan_ctx;

static int nan_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                    double *hess) {
  const nan_ctx *c = t->ctx;
  for (size_t i = 0; i < n; i++) {
    double x = z[i] - c->centre, bad = fabs(z[i]) > c->nan_above ? c->bad : 0.0;
    logp[i] = -0.5 * x * x - 0.5 * log(2 * M_PI) + bad;
    if (grad) grad[i] = -x + bad;
    if (hess) hess[i] = -1 + bad;
  }
  return 0;
}

static double last_outside; /* the fraction of the last iteration's samples outside the support */

static int solve(nan_ctx *ctx, gfv_config *cfg, long *rejected, double *kl) {
  gfv_target t = {.name = "nantarget", .dim = 1, .has_hessian = 1, .normalized = !ctx->truncated,
                  .ctx = ctx, .eval = nan_eval};
  gfv_comm *comm;
  gfv_solver *s = NULL;
  gfv_eval_result res = {0};
  gfv_comm_self(&comm);
  cfg->quiet = 1;
  int st = gfv_solver_create(cfg, &t, comm, &s);
  if (!st) st = gfv_solver_run(s);
  if (!st) st = gfv_solver_evaluate(s, &res);
  if (s) *rejected = s->rejected, last_outside = s->est_buf[s->cur_est].outside;
  *kl = res.kl;
  gfv_solver_free(s);
  gfv_comm_free(comm);
  return st;
}

static gfv_config base_config(void) {
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  cfg.particles = 1, cfg.samples = 10, cfg.iters = 200, cfg.seed = 5, cfg.eval_samples = 20000;
  return cfg;
}

/* The paper's plain steps: whole-step rejection with a halved step. */
static gfv_config plain_config(void) {
  gfv_config cfg = base_config();
  cfg.trust_region = 0;
  return cfg;
}

static void test_nan_everywhere_stops_cleanly(void) {
  nan_ctx c = {0, -1, NAN, 0}; /* |z| > -1 everywhere: NaN */
  gfv_config cfg = base_config();
  long rej = 0;
  double kl;
  int st = solve(&c, &cfg, &rej, &kl);
  CHECK(st == GFV_ERR_NUMERIC, "status %d", st);
  CHECK(strstr(gfv_error_message(), "non-finite") != NULL, "message: %s", gfv_error_message());
  gfv_error_clear();
}

/* eta = 3 overshoots: the mean error is multiplied by about 1 - eta = -2 per step until a
 * sample lands beyond |z| = 30, where the target is NaN.  The rejected step is retried at
 * eta = 1.5 (error factor -0.5), which converges. */
static void test_overshoot_into_nan_is_rejected_and_recovers(void) {
  nan_ctx c = {0, 30, NAN, 0};
  gfv_config cfg = plain_config();
  cfg.step = 3, cfg.init_scale = 5;
  long rej = 0;
  double kl = NAN;
  int st = solve(&c, &cfg, &rej, &kl);
  CHECK(st == 0, "status %d: %s", st, gfv_error_message());
  CHECK(rej > 0, "no step was rejected");
  CHECK(kl < 0.05, "KL after recovery %g", kl);
}

/* The optimum (centre 3) lies beyond the NaN boundary at 1: the particle keeps sampling
 * there, every retry fails, and the run must end with the named reason: with the paper's
 * plain steps after the step was halved --max-retries times (status 4); with the trust
 * region after --max-retries retries of one iteration, each putting the component back
 * (status 11, "diverged"). */
static void persistent_nan(gfv_config cfg, int want, const char *phrase) {
  nan_ctx c = {3, 1, NAN, 0};
  cfg.init_scale = 0, cfg.init_var = 0.01, cfg.max_retries = 4, cfg.iters = 5000;
  long rej = 0;
  double kl;
  int st = solve(&c, &cfg, &rej, &kl);
  CHECK(st == want, "status %d, expected %d", st, want);
  CHECK(strstr(gfv_error_message(), phrase) != NULL, "message: %s", gfv_error_message());
  gfv_error_clear();
}

static void test_persistent_nan_ends_with_reason(void) {
  persistent_nan(plain_config(), GFV_ERR_NUMERIC, "halved 4 times (--max-retries");
}

/* +Inf (an unbounded density) and -Inf (zero density, outside a support) everywhere: the
 * same clean stop as NaN, with the reason. */
static void test_inf_everywhere_stops_cleanly(void) {
  for (int sign = -1; sign <= 1; sign += 2) {
    nan_ctx c = {0, -1, sign * INFINITY, 0};
    gfv_config cfg = base_config();
    long rej = 0;
    double kl;
    int st = solve(&c, &cfg, &rej, &kl);
    CHECK(st == GFV_ERR_NUMERIC, "%+g everywhere: status %d", c.bad, st);
    /* +Inf is a broken value; -Inf everywhere is a support that no particle reaches. */
    CHECK(strstr(gfv_error_message(), sign > 0 ? "non-finite" : "inside the target's support") != NULL,
          "%+g: message: %s", c.bad, gfv_error_message());
    gfv_error_clear();
  }
}

/* As the NaN overshoot, with +Inf and -Inf beyond |z| = 30; each rejection is reported on
 * stderr ("step rejected ... retrying with step 1.5"), which is captured here. */
static void test_overshoot_into_inf_is_rejected_reported_and_recovers(void) {
  for (int sign = -1; sign <= 1; sign += 2) {
    nan_ctx c = {0, 30, sign * INFINITY, 0};
    gfv_config cfg = plain_config();
    cfg.step = 3, cfg.init_scale = 5;
    long rej = 0;
    double kl = NAN;
    char path[] = "/tmp/gflowvi-safeguards.XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    fflush(stderr);
    if (fd >= 0 && saved >= 0) dup2(fd, 2);
    int st = solve(&c, &cfg, &rej, &kl);
    fflush(stderr);
    if (saved >= 0) dup2(saved, 2), close(saved);
    char text[4096] = "";
    FILE *f = fd >= 0 ? fopen(path, "r") : NULL;
    if (f) {
      size_t n = fread(text, 1, sizeof text - 1, f);
      text[n] = '\0';
      fclose(f);
    }
    if (fd >= 0) close(fd), unlink(path);
    CHECK(st == 0, "%+g: status %d: %s", c.bad, st, gfv_error_message());
    CHECK(rej > 0, "%+g: no step was rejected", c.bad);
    CHECK(strstr(text, "step rejected") && strstr(text, "retrying with step 1.5"),
          "%+g: rejection not reported on stderr: '%s'", c.bad, text);
    CHECK(kl < 0.05, "%+g: KL after recovery %g", c.bad, kl);
  }
}

/* The same overshooting runs with the default trust region: each recovers, without any
 * whole-step rejection being needed for +-Inf and NaN at |z| > 30 (the region keeps the step
 * of a component from jumping that far); with -Inf the few samples beyond 30 are outside
 * the support and simply left out. */
static void test_trust_region_keeps_overshoot_in_check(void) {
  const double bads[3] = {NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 3; i++) {
    nan_ctx c = {0, 30, bads[i], 0};
    gfv_config cfg = base_config();
    cfg.step = 3, cfg.init_scale = 5;
    long rej = 0;
    double kl = NAN;
    int st = solve(&c, &cfg, &rej, &kl);
    CHECK(st == 0, "%g: status %d: %s", c.bad, st, gfv_error_message());
    CHECK(kl < 0.05, "%g: KL %g", c.bad, kl);
    gfv_error_clear();
  }
}

/* A bounded support: the target is -Inf (zero density) for z < -0.5, a standard normal
 * truncated there otherwise.  The fit keeps going with the samples inside the support
 * (no rejection, no error), and reports the fraction of samples outside it. */
static void test_bounded_support_is_a_zero_density(void) {
  gfv_config cfg = base_config();
  cfg.iters = 300;
  nan_ctx t = {1.0, 1.5, -INFINITY, 1}; /* N(1, 1) cut at |z| > 1.5: support [-1.5, 1.5] */
  long rej = 0;
  double kl = NAN;
  int st = solve(&t, &cfg, &rej, &kl);
  CHECK(st == 0, "status %d: %s", st, gfv_error_message());
  CHECK(rej == 0, "%ld steps rejected", rej);
  CHECK(last_outside > 0 && last_outside < 0.5, "fraction outside the support %g", last_outside);
  gfv_error_clear();
}

static void test_persistent_nan_with_trust_region_diverges(void) {
  persistent_nan(base_config(), GFV_ERR_DIVERGED, "diverged: components kept producing");
}

int main(void) {
  gfv_error_install_gsl_handler();
  RUN(test_nan_everywhere_stops_cleanly);
  RUN(test_overshoot_into_nan_is_rejected_and_recovers);
  RUN(test_persistent_nan_ends_with_reason);
  RUN(test_inf_everywhere_stops_cleanly);
  RUN(test_overshoot_into_inf_is_rejected_reported_and_recovers);
  RUN(test_trust_region_keeps_overshoot_in_check);
  RUN(test_bounded_support_is_a_zero_density);
  RUN(test_persistent_nan_with_trust_region_diverges);
  return harness_report();
}
