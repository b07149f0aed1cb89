/* test_public_api.c - the solver driven through the public headers only (no src/ header),
 * the way a program embedding the library drives it (docs/api.md):
 *  - options are validated as on the command line: a bad value and an unknown name are
 *    refused with the parser's message, and leave the configuration unchanged; a struct
 *    filled directly with family = "diagonal" (once silently the full family) or an
 *    out-of-range number is refused by gfv_solver_create, naming the option;
 *  - create_empty / set_option / set_target / setup / solve / iterate past the configured
 *    count / free; only run options change after setup; the accessors agree with the
 *    configuration; gfv_solver_gather_covariances inverts the precisions (Sigma P = I);
 *  - the monitor sees every accepted iteration with the solver's own ELBO and stops the run
 *    (GFV_STOPPED) at the iteration it asks for;
 *  - with a log callback the progress lines arrive there (one per iteration at
 *    progress-every = 1, numbered 1..n) and nothing at all is written to stdout or stderr
 *    (file descriptors 1 and 2 redirected to a file that must stay empty). */
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

/* ---- capturing file descriptors 1 and 2 ------------------------------------------------- */

typedef struct {
  FILE *f;
  int saved[2];
} capture;

static void capture_start(capture *c) {
  fflush(stdout), fflush(stderr);
  c->f = tmpfile();
  for (int fd = 1; fd <= 2; fd++) {
    c->saved[fd - 1] = dup(fd);
    dup2(fileno(c->f), fd);
  }
}

/* Restores the descriptors; returns the bytes written to them meanwhile. */
static long capture_stop(capture *c) {
  fflush(stdout), fflush(stderr);
  for (int fd = 1; fd <= 2; fd++) {
    dup2(c->saved[fd - 1], fd);
    close(c->saved[fd - 1]);
  }
  fseek(c->f, 0, SEEK_END);
  long n = ftell(c->f);
  fclose(c->f);
  return n;
}

/* ---- the log and the monitor --------------------------------------------------------------- */

typedef struct {
  int progress, info, other;
  long last_iter; /* the number in the last progress line */
  int in_order;   /* progress lines numbered 1, 2, 3, ... */
} log_seen;

static void on_log(int level, const char *msg, void *ctx) {
  log_seen *l = ctx;
  if (level == GFV_LOG_PROGRESS) {
    long it = -1;
    if (sscanf(msg, "iter %ld/", &it) != 1 || it != l->last_iter + 1) l->in_order = 0;
    l->last_iter = it;
    l->progress++;
  } else if (level == GFV_LOG_INFO) {
    l->info++;
  } else {
    l->other++;
  }
}

typedef struct {
  long calls, stop_at, last_iter;
  int elbo_agrees;
} monitor_seen;

static int on_iteration(gfv_solver *s, long iter, double elbo, void *ctx) {
  monitor_seen *m = ctx;
  m->calls++;
  m->last_iter = iter;
  if (iter != gfv_solver_iteration(s) || elbo != gfv_solver_elbo(s, NULL)) m->elbo_agrees = 0;
  return iter >= m->stop_at;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_bad_values_and_names_are_refused(void) {
  gfv_comm *comm;
  gfv_comm_self(&comm);
  gfv_solver *s = NULL;
  CHECK(gfv_solver_create_empty(comm, &s) == GFV_OK, "create_empty: %s", gfv_error_message());
  if (s) {
    CHECK(gfv_solver_set_option(s, "family", "diagonal") == GFV_ERR_USAGE, "family=diagonal taken");
    CHECK(strstr(gfv_error_message(), "--family") && strstr(gfv_error_message(), "full, diag"),
          "message: %s", gfv_error_message());
    CHECK(gfv_error_code() == GFV_ERR_USAGE, "error code %d", gfv_error_code());
    CHECK(strcmp(gfv_solver_config(s)->family, "full") == 0, "family changed to %s",
          gfv_solver_config(s)->family);
    CHECK(gfv_solver_set_option(s, "no-such-option", "1") == GFV_ERR_USAGE, "unknown name taken");
    CHECK(strstr(gfv_error_message(), "unknown option '--no-such-option'"), "message: %s",
          gfv_error_message());
    CHECK(gfv_solver_set_option(s, "particles", "0") == GFV_ERR_USAGE, "particles=0 taken");
    CHECK(strstr(gfv_error_message(), "--particles: must be >= 1"), "message: %s",
          gfv_error_message());
    CHECK(gfv_solver_config(s)->particles == 20, "particles %ld", gfv_solver_config(s)->particles);
    /* The struct's spelling of a name works as in config files. */
    CHECK(gfv_solver_set_option(s, "weight_step", "0.5") == GFV_OK, "%s", gfv_error_message());
    CHECK(gfv_solver_config(s)->weight_step == 0.5, "weight_step %g",
          gfv_solver_config(s)->weight_step);
    /* Nothing to iterate or run before setup; setup needs a target. */
    CHECK(gfv_solver_iterate(s) == GFV_ERR_USAGE, "iterate before setup");
    double w[20], mu[20], P[20];
    gfv_eval_result res;
    CHECK(gfv_solver_gather(s, w, mu, P) == GFV_ERR_USAGE &&
              strstr(gfv_error_message(), "gfv_solver_gather: the solver is not set up"),
          "gather before setup: %s", gfv_error_message());
    CHECK(gfv_solver_evaluate(s, &res) == GFV_ERR_USAGE, "evaluate before setup");
    CHECK(gfv_solver_setup(s) == GFV_ERR_USAGE && strstr(gfv_error_message(), "no target"),
          "setup without a target: %s", gfv_error_message());
  }
  gfv_solver_free(s);
  gfv_comm_free(comm);
}

/* The struct filled by hand: every enumerated choice and bound is checked by the solver. */
static void test_struct_choices_checked_by_create(void) {
  gfv_target *t;
  CHECK(gfv_target_create("gauss", 2, &t) == 0, "target");
  gfv_comm *comm;
  gfv_comm_self(&comm);
  static const struct {
    const char *field, *value, *fragment;
  } bad[] = {{"family", "diagonal", "--family: 'diagonal' is not one of full, diag"},
             {"flow", "ngflo", "--flow: 'ngflo' is not one of ngflow, gflow"},
             {"estimator", "price", "--estimator"},
             {"update", "retract", "--update"},
             {"layout", "both", "--layout"},
             {"step_schedule", "cosine", "--step-schedule"},
             {"standardize", "yes", "--standardize"},
             {"resample", "is", "--resample"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gfv_config cfg;
    gfv_config_defaults(&cfg);
    cfg.quiet = 1;
    char *f = !strcmp(bad[i].field, "family")        ? cfg.family
              : !strcmp(bad[i].field, "flow")        ? cfg.flow
              : !strcmp(bad[i].field, "estimator")   ? cfg.estimator
              : !strcmp(bad[i].field, "update")      ? cfg.update
              : !strcmp(bad[i].field, "layout")      ? cfg.layout
              : !strcmp(bad[i].field, "standardize") ? cfg.standardize
              : !strcmp(bad[i].field, "resample")    ? cfg.resample
                                                     : cfg.step_schedule;
    strcpy(f, bad[i].value);
    gfv_solver *s = NULL;
    int st = gfv_solver_create(&cfg, t, comm, &s);
    CHECK(st == GFV_ERR_USAGE && !s, "%s = %s: status %d", bad[i].field, bad[i].value, st);
    CHECK(strstr(gfv_error_message(), bad[i].fragment), "%s: message: %s", bad[i].field,
          gfv_error_message());
    gfv_solver_free(s);
  }
  /* Numbers: the table's bounds, and a boolean that is neither 0 nor 1. */
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  cfg.samples = 0;
  CHECK(gfv_config_check(&cfg) == GFV_ERR_USAGE && strstr(gfv_error_message(), "--samples: must be >= 1"),
        "samples = 0: %s", gfv_error_message());
  gfv_config_defaults(&cfg);
  cfg.step = NAN;
  CHECK(gfv_config_check(&cfg) == GFV_ERR_USAGE && strstr(gfv_error_message(), "--step"),
        "step = NaN: %s", gfv_error_message());
  gfv_config_defaults(&cfg);
  cfg.test_fraction = 0.95;
  CHECK(gfv_config_check(&cfg) == GFV_ERR_USAGE &&
            strstr(gfv_error_message(), "--test-fraction: must be between 0 and 0.9"),
        "test_fraction: %s", gfv_error_message());
  gfv_config_defaults(&cfg);
  cfg.quiet = 7;
  CHECK(gfv_config_check(&cfg) == GFV_ERR_USAGE && strstr(gfv_error_message(), "--quiet"),
        "quiet = 7: %s", gfv_error_message());
  gfv_config_defaults(&cfg);
  CHECK(gfv_config_check(&cfg) == GFV_OK, "defaults refused: %s", gfv_error_message());
  gfv_comm_free(comm);
  gfv_target_free(t);
}

static void test_life_cycle_log_and_accessors(void) {
  gfv_target *t;
  CHECK(gfv_target_create("gauss", 3, &t) == 0, "target");
  gfv_comm *comm;
  gfv_comm_self(&comm);
  gfv_solver *s = NULL;
  log_seen seen = {.in_order = 1};
  capture cap;
  capture_start(&cap);
  int st = gfv_solver_create_empty(comm, &s);
  static const char *const opts[][2] = {{"particles", "4"}, {"samples", "20"}, {"iters", "5"},
                                        {"seed", "3"},      {"family", "diag"}, {"progress-every", "1"},
                                        {"init", "mode"}};
  for (size_t i = 0; !st && i < sizeof opts / sizeof opts[0]; i++)
    st = gfv_solver_set_option(s, opts[i][0], opts[i][1]);
  if (!st) gfv_solver_set_log(s, on_log, &seen);
  if (!st) st = gfv_solver_set_target(s, t);
  if (!st) st = gfv_solver_setup(s);
  int refused = s ? gfv_solver_set_option(s, "particles", "8") : -1;
  char refused_msg[512];
  snprintf(refused_msg, sizeof refused_msg, "%s", gfv_error_message());
  int more = s ? gfv_solver_set_option(s, "iters", "8") : -1;
  if (!st) st = gfv_solver_solve(s);
  /* Past the configured count: the trace grows, nothing is overrun. */
  for (int i = 0; !st && i < 5; i++) st = gfv_solver_iterate(s);
  long written = capture_stop(&cap);
  CHECK(st == GFV_OK, "life cycle: status %d: %s", st, gfv_error_message());
  CHECK(refused == GFV_ERR_USAGE && strstr(refused_msg, "--particles: cannot change after"),
        "particles after setup: %d, %s", refused, refused_msg);
  CHECK(more == GFV_OK, "iters after setup refused");
  CHECK(written == 0, "%ld bytes written to stdout/stderr with a log callback set", written);
  CHECK(seen.progress == 8 && seen.in_order && seen.last_iter == 8,
        "progress lines %d (expected 8, numbered 1..8: %d, last %ld)", seen.progress, seen.in_order,
        seen.last_iter);
  CHECK(seen.info >= 1, "no info line (--init=mode's \"init: ...\")");
  if (!st) {
    CHECK(gfv_solver_iteration(s) == 13, "iteration %ld, expected 8 + 5", gfv_solver_iteration(s));
    CHECK(gfv_solver_dim(s) == 3, "dim %zu", gfv_solver_dim(s));
    CHECK(gfv_solver_num_particles(s) == 4, "K %zu", gfv_solver_num_particles(s));
    CHECK(strcmp(gfv_solver_family(s), "diag") == 0, "family %s", gfv_solver_family(s));
    CHECK(!strcmp(gfv_solver_layout(s), "params") || !strcmp(gfv_solver_layout(s), "samples"),
          "layout %s", gfv_solver_layout(s));
    CHECK(strcmp(gfv_solver_flow(s), "ngflow") == 0, "flow %s", gfv_solver_flow(s));
    CHECK(strcmp(gfv_solver_estimator(s), "hessian") == 0, "estimator %s (gauss has a Hessian, d <= 64)",
          gfv_solver_estimator(s));
    CHECK(gfv_solver_num_ranks(s) == 1 && gfv_solver_rank(s) == 0, "ranks");
    size_t k0, kl;
    gfv_solver_local_particles(s, &k0, &kl);
    CHECK(k0 == 0 && kl == 4, "local particles [%zu, +%zu)", k0, kl);
    double w[4], mu[12], P[12], S[12];
    CHECK(gfv_solver_gather(s, w, mu, P) == 0, "gather");
    CHECK(gfv_solver_gather_covariances(s, w, mu, S) == 0, "gather_covariances");
    double wsum = 0, err = 0;
    for (int k = 0; k < 4; k++) wsum += w[k];
    for (int i = 0; i < 12; i++) err = fmax(err, fabs(S[i] * P[i] - 1));
    CHECK(fabs(wsum - 1) < 1e-12, "weights sum to %.17g", wsum);
    CHECK(err < 1e-12, "diag: variance x precision off 1 by %g", err);
  }
  gfv_solver_free(s);
  gfv_comm_free(comm);
  gfv_target_free(t);
}

static void test_monitor_stops_the_run(void) {
  gfv_target *t;
  CHECK(gfv_target_create("gauss", 3, &t) == 0, "target");
  gfv_comm *comm;
  gfv_comm_self(&comm);
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  cfg.particles = 3, cfg.samples = 20, cfg.iters = 50, cfg.quiet = 1;
  gfv_solver *s = NULL;
  CHECK(gfv_solver_create(&cfg, t, comm, &s) == 0, "create: %s", gfv_error_message());
  /* The solver owns a copy: changing the caller's struct changes nothing. */
  cfg.iters = 2;
  monitor_seen m = {.stop_at = 3, .elbo_agrees = 1};
  if (s) {
    CHECK(gfv_solver_config(s)->iters == 50, "the solver follows the caller's struct");
    gfv_solver_set_monitor(s, on_iteration, &m);
    int st = gfv_solver_solve(s);
    CHECK(st == GFV_STOPPED, "solve: status %d, expected GFV_STOPPED", st);
    CHECK(m.calls == 3 && m.last_iter == 3 && gfv_solver_iteration(s) == 3,
          "monitor calls %ld, last %ld, iteration %ld", m.calls, m.last_iter, gfv_solver_iteration(s));
    CHECK(m.elbo_agrees, "the monitor's iteration / ELBO differ from the solver's");
    /* The full family: Sigma_k P_k = I. */
    double w[3], mu[9], P[27], S[27], err = 0;
    CHECK(gfv_solver_gather(s, w, mu, P) == 0 && gfv_solver_gather_covariances(s, w, mu, S) == 0,
          "gather");
    for (int k = 0; k < 3; k++)
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
          double v = 0;
          for (int a = 0; a < 3; a++) v += S[k * 9 + i * 3 + a] * P[k * 9 + a * 3 + j];
          err = fmax(err, fabs(v - (i == j)));
        }
    CHECK(err < 1e-9, "full: Sigma P off the identity by %g", err);
    CHECK(gfv_solver_setup(s) == GFV_ERR_USAGE, "a second setup taken");
  }
  gfv_solver_free(s);
  gfv_comm_free(comm);
  gfv_target_free(t);
}

int main(void) {
  RUN(test_bad_values_and_names_are_refused);
  RUN(test_struct_choices_checked_by_create);
  RUN(test_life_cycle_log_and_accessors);
  RUN(test_monitor_stops_the_run);
  return harness_report();
}
