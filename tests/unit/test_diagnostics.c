/* test_diagnostics.c - each warning of the verdict (src/solver/diagnostics.c) fires on a
 * case crafted for it, and only then: starting from a clean fit (gauss, K = 3, converged
 * figures, no warning), one quantity at a time is set to what a bad fit shows, and the
 * verdict must list exactly one warning, containing its phrase, with the right severity
 * (reliable false for a severe one, true for a note).  Then the figures of a real bad fit:
 * a component stranded 7e5 nats away (the eight-schools failure) ends with status 11; one
 * 50 nats away gives the gap and outlier warnings.  Those figures are of unnormalised targets;
 * on a normalised one, an importance-weighted log Z well below 0 (a mode no component
 * covers, which neither k-hat nor the ELBO gap sees) is one more warning. */
#include <math.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "solver/solver_impl.h"

static gfv_comm *comm;
static gfv_target *target;

static gfv_solver *make_solver(void) {
  static gfv_config cfg;
  gfv_config_defaults(&cfg);
  cfg.particles = 3, cfg.iters = 10, cfg.quiet = 1, cfg.tol = 1e-3;
  gfv_solver *s = NULL;
  int st = gfv_solver_create(&cfg, target, comm, &s);
  CHECK(st == 0, "create: %s", gfv_error_message());
  return s;
}

/* A fit with nothing to say: converged, k-hat small, ELBO at log Z, components alike. */
static void clean(gfv_solver *s, gfv_eval_result *res) {
  memset(res, 0, sizeof *res);
  res->elbo = -1.0, res->elbo_se = 0.01, res->log_evidence = -0.98, res->log_evidence_se = 0.01;
  res->khat = 0.3;
  s->converged = 1, s->conv_tol = 1e-3, s->conv_last_rel = 1e-4;
  s->max_move = 0.5, s->rejected = 0;
  for (size_t j = 0; j < s->kloc; j++) s->eval_phi[j] = 0.1 * (double)j;
  gfv_solver_gather_full(s);
}

static void expect_one(gfv_solver *s, gfv_eval_result *res, const char *phrase, int severe,
                       const char *what) {
  int st = gfv_solver_diagnose(s, res);
  CHECK(st == 0, "%s: diagnose: %s", what, gfv_error_message());
  CHECK(res->nwarnings == 1, "%s: %d warnings (first: %s)", what, res->nwarnings,
        res->nwarnings ? res->warnings[0] : "none");
  if (res->nwarnings >= 1) {
    CHECK(strstr(res->warnings[0], phrase) != NULL, "%s: '%s' lacks '%s'", what, res->warnings[0], phrase);
    CHECK(res->warning_severe[0] == severe, "%s: severity %d", what, res->warning_severe[0]);
  }
  CHECK(res->reliable == !severe, "%s: reliable %d", what, res->reliable);
}

static void test_each_warning_fires_alone(void) {
  gfv_solver *s = make_solver();
  if (!s) return;
  gfv_eval_result res;
  clean(s, &res);
  CHECK(gfv_solver_diagnose(s, &res) == 0 && res.nwarnings == 0 && res.reliable,
        "the clean fit: %d warnings (%s)", res.nwarnings, res.nwarnings ? res.warnings[0] : "");

  clean(s, &res), res.khat = 0.85;
  expect_one(s, &res, "k-hat = 0.85", 1, "k-hat");
  clean(s, &res), res.elbo = -4.0;
  expect_one(s, &res, "nats below the importance-weighted log Z", 1, "ELBO gap");
  /* 0.9 nats below log Z with tiny errors: under the 1-nat floor, no warning. */
  clean(s, &res), res.elbo = -1.88;
  CHECK(gfv_solver_diagnose(s, &res) == 0 && res.nwarnings == 0, "a 0.9-nat gap warned: %s",
        res.warnings[0]);
  clean(s, &res), s->eval_phi[s->kloc - 1] = 500.0;
  expect_one(s, &res, "outlying objective", 1, "outlier");
  clean(s, &res), s->max_move = 1e6, s->max_move_iter = 1;
  expect_one(s, &res, "of its own standard deviations in one step (iteration 1)", 1, "jump");
  clean(s, &res), s->converged = 0, s->conv_last_rel = 0.05;
  expect_one(s, &res, "not converged after 0 iterations (--iters=10)", 1, "not converged");
  clean(s, &res), s->rejected = 3;
  expect_one(s, &res, "3 steps rejected", 0, "rejections");
  clean(s, &res), res.negligible = 2;
  expect_one(s, &res, "2 components with negligible weight", 0, "negligible");
  clean(s, &res), res.outside = 0.1;
  expect_one(s, &res, "10% of the mixture's mass lies outside", 0, "outside");
  gfv_solver_free(s);
}

/* The figures of the eight-schools failure (stein, no trust region): ELBO -70,711 against an
 * importance-weighted log Z of -31.4, one component's objective 7e5 above the others.  That
 * is absurd, not doubtful: status 11.  A component 50 nats out with the ELBO 5 nats below
 * log Z is doubtful: the gap and outlier warnings, status 0. */
static void test_stranded_component(void) {
  gfv_solver *s = make_solver();
  if (!s) return;
  gfv_eval_result res;
  clean(s, &res);
  res.elbo = -70710.95, res.elbo_se = 0.034, res.log_evidence = -31.355, res.log_evidence_se = 0.02;
  s->eval_phi[0] = 7.066e5;
  int st = gfv_solver_diagnose(s, &res);
  CHECK(st == GFV_ERR_DIVERGED && strstr(gfv_error_message(), "component 1 is stranded"),
        "status %d: %s", st, gfv_error_message());
  /* The run has the default trust region: the hint must not send the user back to it. */
  CHECK(strstr(gfv_error_message(), "--init=mode") &&
            !strstr(gfv_error_message(), "the default --trust-region"),
        "hint: %s", gfv_error_message());
  gfv_error_clear();
  clean(s, &res);
  res.elbo = -36.4, res.elbo_se = 0.034, res.log_evidence = -31.355, res.log_evidence_se = 0.02;
  s->eval_phi[0] = 50;
  CHECK(gfv_solver_diagnose(s, &res) == 0, "diagnose: %s", gfv_error_message());
  CHECK(!res.reliable && res.nwarnings == 2, "reliable %d, %d warnings", res.reliable, res.nwarnings);
  CHECK(res.nwarnings == 2 && strstr(res.warnings[0], "nats below") &&
            strstr(res.warnings[1], "component 1"),
        "warnings: %s | %s", res.warnings[0], res.nwarnings > 1 ? res.warnings[1] : "");
  gfv_solver_free(s);
}

/* One Gaussian on one of two far-apart, equal modes of a normalised target (gmm:FILE with
 * modes at +-20, --particles=1): ELBO = log Z = -log 2, k-hat ~ 0, no other check fires. */
static void test_missed_mode(void) {
  gfv_solver *s = make_solver();
  if (!s) return;
  gfv_eval_result res;
  target->normalized = 1;
  clean(s, &res);
  res.elbo = -0.6932, res.elbo_se = 1e-4, res.log_evidence = -0.6931, res.log_evidence_se = 1e-4;
  res.khat = -0.01;
  expect_one(s, &res, "reach only about 50% of the posterior's mass", 1, "missed mode");
  /* 8% of the mass missed: warned; within 0.05 nats of 0, or within 5 standard errors: not. */
  clean(s, &res), res.elbo = -0.0834, res.log_evidence = -0.0834, res.log_evidence_se = 1e-4;
  expect_one(s, &res, "reach only about 92% of the posterior's mass", 1, "8% missed");
  clean(s, &res), res.elbo = -0.04, res.log_evidence = -0.03;
  CHECK(gfv_solver_diagnose(s, &res) == 0 && res.nwarnings == 0, "log Z -0.03 warned: %s",
        res.warnings[0]);
  clean(s, &res), res.elbo = -0.31, res.log_evidence = -0.3, res.log_evidence_se = 0.1;
  CHECK(gfv_solver_diagnose(s, &res) == 0 && res.nwarnings == 0, "log Z -0.3 +- 0.1 warned: %s",
        res.warnings[0]);
  /* Unnormalised, log Z says nothing about missed mass. */
  target->normalized = 0;
  clean(s, &res), res.elbo = -0.6932, res.log_evidence = -0.6931;
  CHECK(gfv_solver_diagnose(s, &res) == 0 && res.nwarnings == 0, "unnormalised warned: %s",
        res.warnings[0]);
  gfv_solver_free(s);
}

int main(void) {
  gfv_error_install_gsl_handler();
  gfv_comm_self(&comm);
  if (gfv_target_create("gauss", 2, &target)) return 1;
  target->normalized = 0; /* the figures of clean() and the stranded fits: log Z != 0 */
  RUN(test_each_warning_fires_alone);
  RUN(test_stranded_component);
  RUN(test_missed_mode);
  gfv_target_free(target);
  gfv_comm_free(comm);
  return harness_report();
}
