/* test_solver_errors.c - each solver's own error record and where the library's lines go
 * (docs/api.md, "Errors" and "Log"):
 *  - two solvers in one thread: each keeps the message of its own last failed call while the
 *    other fails and succeeds; a successful call clears it (GFV_OK, ""); the thread's record
 *    (gfv_error_message) holds only the latest failure;
 *  - a failure inside the solve (the callback target's own message, recorded with
 *    gfv_error_set) and a stop by the monitor (GFV_STOPPED, a message saying so) are
 *    recorded in the solver they happened in;
 *  - two threads, each with its own solver, failing in lock step (a barrier between the
 *    failures and the reads, 20 rounds): each solver, and each thread, holds its own message;
 *  - the log: gfv_set_log receives gfv_outputs_clean's warning and nothing reaches file
 *    descriptors 1 and 2; a line said during a call on a solver (by its target) goes to that
 *    solver's callback and not to the thread's; without callbacks the line is printed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "gflowvi/comm.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "harness.h"

/* l(z) = -|z|^2 / 2; fails (with a message naming ctx's tag) from evaluation fail_at on, and
 * says a line through the log at evaluation say_at (as a target's warning would). */
typedef struct {
  int calls, fail_at, say_at;
  char tag[32];
} density;

static int gauss(void *ctx, size_t n, size_t d, const double *z, double *lp, double *grad,
                 double *hess) {
  density *c = ctx;
  (void)hess;
  c->calls++;
  if (c->say_at && c->calls == c->say_at) gfv_log_line(GFV_LOG_WARNING, "target says %s", c->tag);
  if (c->fail_at && c->calls >= c->fail_at) {
    gfv_error_set(GFV_ERR_INPUT, __FILE__, __LINE__, __func__, "density %s failed at call %d",
                  c->tag, c->calls);
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    lp[i] = 0;
    for (size_t a = 0; a < d; a++) lp[i] -= 0.5 * z[i * d + a] * z[i * d + a], grad[i * d + a] = -z[i * d + a];
  }
  return 0;
}

/* A solver on its own one-rank communicator with a quiet, small configuration. */
static int make_solver(gfv_comm **comm, gfv_target **t, density *c, gfv_solver **s) {
  *comm = NULL, *t = NULL, *s = NULL;
  int st = gfv_comm_self(comm);
  if (!st) st = gfv_target_create_callback(2, gauss, c, 0, t);
  if (!st) st = gfv_solver_create_empty(*comm, s);
  static const char *const opts[][2] = {{"particles", "2"}, {"samples", "10"}, {"iters", "30"},
                                        {"quiet", "true"}, {"seed", "5"}};
  for (size_t i = 0; !st && i < sizeof opts / sizeof opts[0]; i++)
    st = gfv_solver_set_option(*s, opts[i][0], opts[i][1]);
  if (!st) st = gfv_solver_set_target(*s, *t);
  return st;
}

static void free_solver(gfv_comm *comm, gfv_target *t, gfv_solver *s) {
  gfv_solver_free(s);
  gfv_target_free(t);
  gfv_comm_free(comm);
}

static int has(const char *text, const char *fragment) { return strstr(text, fragment) != NULL; }

static void test_two_solvers_one_thread(void) {
  gfv_comm *ca, *cb;
  gfv_target *ta, *tb;
  gfv_solver *a, *b;
  density da = {.fail_at = 0, .tag = "A"}, db = {.fail_at = 0, .tag = "B"};
  CHECK(make_solver(&ca, &ta, &da, &a) == 0 && make_solver(&cb, &tb, &db, &b) == 0, "solvers: %s",
        gfv_error_message());
  if (!a || !b) return;
  CHECK(gfv_solver_error_code(a) == GFV_OK && !strcmp(gfv_solver_error_message(a), ""),
        "a fresh solver has an error: %d %s", gfv_solver_error_code(a), gfv_solver_error_message(a));
  CHECK(gfv_solver_set_option(a, "family", "diagonal") == GFV_ERR_USAGE, "family=diagonal taken");
  CHECK(gfv_solver_set_option(b, "particles", "0") == GFV_ERR_USAGE, "particles=0 taken");
  CHECK(gfv_solver_error_code(a) == GFV_ERR_USAGE &&
            has(gfv_solver_error_message(a), "--family: 'diagonal' is not one of full, diag"),
        "a: %d %s", gfv_solver_error_code(a), gfv_solver_error_message(a));
  CHECK(has(gfv_solver_error_message(b), "--particles: must be >= 1"), "b: %s",
        gfv_solver_error_message(b));
  CHECK(has(gfv_error_message(), "--particles"), "thread: %s", gfv_error_message());
  /* b succeeds: its record clears, a's stays. */
  CHECK(gfv_solver_set_option(b, "iters", "20") == GFV_OK, "iters: %s", gfv_error_message());
  CHECK(gfv_solver_error_code(b) == GFV_OK && !strcmp(gfv_solver_error_message(b), ""),
        "b after a success: %d '%s'", gfv_solver_error_code(b), gfv_solver_error_message(b));
  CHECK(has(gfv_solver_error_message(a), "--family"), "a lost its message: %s",
        gfv_solver_error_message(a));
  /* Failures inside a call: the density's own message, then a stop by the monitor. */
  da.fail_at = 12;
  CHECK(gfv_solver_solve(a) == GFV_ERR_INPUT, "a's failing density did not fail the solve");
  CHECK(gfv_solver_error_code(a) == GFV_ERR_INPUT &&
            has(gfv_solver_error_message(a), "density A failed at call 12"),
        "a: %d %s", gfv_solver_error_code(a), gfv_solver_error_message(a));
  CHECK(gfv_solver_evaluate(b, NULL) == GFV_ERR_USAGE, "evaluate before setup taken");
  CHECK(has(gfv_solver_error_message(b), "gfv_solver_evaluate: the solver is not set up"), "b: %s",
        gfv_solver_error_message(b));
  CHECK(has(gfv_solver_error_message(a), "density A"), "a after b's failure: %s",
        gfv_solver_error_message(a));
  free_solver(ca, ta, a);
  free_solver(cb, tb, b);
  CHECK(gfv_solver_error_code(NULL) == GFV_ERR_USAGE && has(gfv_solver_error_message(NULL), "no solver"),
        "NULL solver");
}

static int stop_at_2(gfv_solver *s, long iter, double elbo, void *ctx) {
  (void)s, (void)elbo, (void)ctx;
  return iter >= 2;
}

static void test_monitor_stop_is_recorded(void) {
  gfv_comm *c;
  gfv_target *t;
  gfv_solver *s;
  density d = {.tag = "M"};
  CHECK(make_solver(&c, &t, &d, &s) == 0, "solver: %s", gfv_error_message());
  if (!s) return;
  gfv_solver_set_monitor(s, stop_at_2, NULL);
  CHECK(gfv_solver_solve(s) == GFV_STOPPED, "not stopped");
  CHECK(gfv_solver_error_code(s) == GFV_STOPPED && has(gfv_solver_error_message(s), "gfv_solver_solve: stopped"),
        "%d %s", gfv_solver_error_code(s), gfv_solver_error_message(s));
  CHECK(gfv_solver_iterate(s) == GFV_OK && gfv_solver_error_code(s) == GFV_OK, "iterate after the stop");
  free_solver(c, t, s);
}

/* ---- two threads ------------------------------------------------------------------------- */

#define ROUNDS 20
static pthread_barrier_t barrier;

typedef struct {
  int id, bad; /* bad: checks that failed */
  char why[256];
} worker;

static void *work(void *arg) {
  worker *w = arg;
  gfv_comm *c;
  gfv_target *t;
  gfv_solver *s;
  density d = {.fail_at = 0};
  snprintf(d.tag, sizeof d.tag, "thread%d", w->id);
  int st = make_solver(&c, &t, &d, &s);
  for (int r = 0; r < ROUNDS; r++) {
    char value[32], want[64];
    snprintf(value, sizeof value, "bad%d_%d", w->id, r);
    snprintf(want, sizeof want, "'%s' is not one of", value);
    int got = st ? st : gfv_solver_set_option(s, "family", value);
    pthread_barrier_wait(&barrier); /* both have failed before either reads */
    if (got != GFV_ERR_USAGE || !has(gfv_solver_error_message(s), want) || !has(gfv_error_message(), want)) {
      if (!w->bad++)
        snprintf(w->why, sizeof w->why, "round %d: status %d, solver '%s', thread '%s'", r, got,
                 s ? gfv_solver_error_message(s) : "-", gfv_error_message());
    }
    pthread_barrier_wait(&barrier);
  }
  /* A failure deep in the solve, at a different evaluation in each thread. */
  d.fail_at = 10 + 3 * w->id;
  if (!st) st = gfv_solver_solve(s);
  pthread_barrier_wait(&barrier);
  char want[64];
  snprintf(want, sizeof want, "density thread%d failed at call %d", w->id, d.fail_at);
  if (st != GFV_ERR_INPUT || !has(gfv_solver_error_message(s), want)) {
    if (!w->bad++)
      snprintf(w->why, sizeof w->why, "solve: status %d, solver '%s'", st, gfv_solver_error_message(s));
  }
  free_solver(c, t, s);
  return NULL;
}

static void test_two_threads(void) {
  pthread_t th[2];
  worker w[2] = {{.id = 0}, {.id = 1}};
  pthread_barrier_init(&barrier, NULL, 2);
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, work, &w[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  for (int i = 0; i < 2; i++) CHECK(w[i].bad == 0, "thread %d: %d checks failed; first: %s", i, w[i].bad, w[i].why);
}

/* ---- the log -------------------------------------------------------------------------------- */

typedef struct {
  int lines, warnings;
  char last[512];
} heard;

static void listen(int level, const char *line, void *ctx) {
  heard *h = ctx;
  h->lines++;
  h->warnings += level == GFV_LOG_WARNING;
  snprintf(h->last, sizeof h->last, "%s", line);
}

/* Runs fn with file descriptors 1 and 2 on a temporary file; returns the bytes they got. */
static long captured(void (*fn)(void *), void *arg) {
  fflush(stdout), fflush(stderr);
  FILE *f = tmpfile();
  int saved[2];
  for (int fd = 1; fd <= 2; fd++) saved[fd - 1] = dup(fd), dup2(fileno(f), fd);
  fn(arg);
  fflush(stdout), fflush(stderr);
  for (int fd = 1; fd <= 2; fd++) dup2(saved[fd - 1], fd), close(saved[fd - 1]);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

/* gfv_outputs_clean keeps an input of the run that sits in the output directory, and says so. */
static void clean_with_input(void *dir) {
  char input[512];
  snprintf(input, sizeof input, "%s/mixture.csv", (char *)dir);
  const char *keep[] = {input};
  gfv_outputs_clean(dir, keep, 1, 0, NULL, NULL);
}

static void solve_saying(void *arg) {
  gfv_solver *s = arg;
  gfv_solver_solve(s);
}

static void test_log_routing(void) {
  char dir[] = "/tmp/gfv_test_log_XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  char path[512];
  snprintf(path, sizeof path, "%s/mixture.csv", dir);
  FILE *f = fopen(path, "w");
  if (f) fclose(f);
  heard thread = {0}, own = {0};
  gfv_set_log(listen, &thread);
  long n = captured(clean_with_input, dir);
  CHECK(n == 0, "%ld bytes on stdout/stderr with a thread log set", n);
  CHECK(thread.warnings == 1 && has(thread.last, "left '") && has(thread.last, "it is an input of this run"),
        "the cleaner's warning: %d lines, last '%s'", thread.lines, thread.last);
  /* A line said by the target during a call on a solver with its own log goes there. */
  gfv_comm *c;
  gfv_target *t;
  gfv_solver *s;
  density d = {.say_at = 3, .tag = "hello"};
  CHECK(make_solver(&c, &t, &d, &s) == 0, "solver: %s", gfv_error_message());
  if (s) {
    gfv_solver_set_log(s, listen, &own);
    thread.lines = 0;
    n = captured(solve_saying, s);
    CHECK(n == 0, "%ld bytes on stdout/stderr", n);
    CHECK(own.warnings == 1 && !strcmp(own.last, "target says hello") && thread.lines == 0,
          "solver's log %d ('%s'), thread's %d", own.warnings, own.last, thread.lines);
  }
  free_solver(c, t, s);
  /* Outside any call the thread's callback hears it; without callbacks it is printed. */
  gfv_log_line(GFV_LOG_NOTE, "after the solve");
  CHECK(thread.lines == 1 && !strcmp(thread.last, "after the solve"), "thread's log: '%s'", thread.last);
  gfv_set_log(NULL, NULL);
  n = captured(clean_with_input, dir);
  CHECK(n > 40, "the default printed %ld bytes of the cleaner's warning", n);
  remove(path);
  rmdir(dir);
}

int main(void) {
  RUN(test_two_solvers_one_thread);
  RUN(test_monitor_stop_is_recorded);
  RUN(test_two_threads);
  RUN(test_log_routing);
  return harness_report();
}
