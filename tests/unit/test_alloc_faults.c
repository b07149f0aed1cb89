/* test_alloc_faults.c - every allocation of a run fails in turn (gfv_alloc_fail_after), and
 * each time the run ends with GFV_ERR_MEMORY and leaks nothing.
 *
 * One round: the target, the solver (create: set-up, initial particles and estimate), three
 * iterations and the final evaluation (and in one set-up the output directory; in another
 * the mode search of --init=mode), then everything freed.  Round n makes the n-th
 * gfv_calloc fail; the sweep ends at the first round that never reaches its failure.  The
 * leak check is glibc's count of bytes in use (mallinfo2) before and after each round, after
 * one complete warm-up round (so that OpenBLAS's and the other libraries' one-off buffers are
 * already there): an early return that forgot what its function had allocated shows as bytes
 * still in use.  glibc counts the chunks in its per-thread cache and fast bins as in use, so
 * the program runs itself again with both turned off (GLIBC_TUNABLES) to make the count
 * exact.  The ASan build's LeakSanitizer checks the same at exit.  Three set-ups: the params
 * and samples layouts, the full and diagonal families, both estimators.  GFV_TRACE_LEAKS=1
 * prints the traceback of each leaking failure (the function that leaks is in it). */
#include <malloc.h>
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

typedef struct {
  const char *family, *layout, *estimator, *init;
  const char *out; /* write the output directory too ("" = no) */
} setup;

/* One round; returns its status (the first failure). */
static int round_trip(const setup *u) {
  gfv_target *t = NULL;
  gfv_comm *comm = NULL;
  gfv_solver *s = NULL;
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  cfg.particles = 4, cfg.samples = 10, cfg.iters = 3, cfg.quiet = 1, cfg.eval_samples = 200;
  snprintf(cfg.family, sizeof cfg.family, "%s", u->family);
  snprintf(cfg.layout, sizeof cfg.layout, "%s", u->layout);
  snprintf(cfg.estimator, sizeof cfg.estimator, "%s", u->estimator);
  snprintf(cfg.init, sizeof cfg.init, "%s", u->init);
  if (u->out[0]) snprintf(cfg.out, sizeof cfg.out, "%s", u->out);
  cfg.out_samples = 50;
  int st = gfv_comm_self(&comm);
  if (!st) st = gfv_target_create("gauss", 3, &t);
  if (!st) st = gfv_solver_create(&cfg, t, comm, &s);
  if (!st) st = gfv_solver_run(s);
  gfv_eval_result res;
  if (!st) st = gfv_solver_evaluate(s, &res);
  if (!st && u->out[0]) st = gfv_solver_write_outputs(s, &res);
  gfv_solver_free(s);
  gfv_target_free(t);
  gfv_comm_free(comm);
  return st;
}

static size_t in_use(void) { return mallinfo2().uordblks; }

static void sweep(const setup *u) {
  gfv_alloc_fail_after(0);
  CHECK(round_trip(u) == GFV_OK, "%s/%s/%s: the round without faults: %s", u->family, u->layout,
        u->estimator, gfv_error_message());
  long n = 1, leaky = 0, wrong = 0;
  for (; n < 100000; n++) {
    size_t before = in_use();
    gfv_alloc_fail_after(n);
    int st = round_trip(u);
    int reached = gfv_alloc_pending_failure() == 0;
    gfv_alloc_fail_after(0);
    size_t after = in_use();
    if (!reached) {
      CHECK(st == GFV_OK, "%s: round %ld failed without a fault: %s", u->layout, n, gfv_error_message());
      break;
    }
    if (st != GFV_ERR_MEMORY && wrong++ < 3)
      CHECK(0, "%s/%s: allocation %ld failed: status %d, expected %d (%s)", u->family, u->layout, n,
            st, GFV_ERR_MEMORY, gfv_error_message());
    if (after != before && getenv("GFV_TRACE_LEAKS")) fprintf(stderr, "leak at %ld: %zd bytes\n", n, (ssize_t)(after - before)), gfv_error_print_trace(stderr);
    if (after != before && leaky++ < 5)
      CHECK(0, "%s/%s/%s: allocation %ld failed: %zd bytes leaked (message: %s)", u->family,
            u->layout, u->estimator, n, (ssize_t)(after - before), gfv_error_message());
  }
  CHECK(n > 20, "%s: only %ld allocations: the hook is not reached", u->layout, n - 1);
  printf("# %s/%s/%s%s%s: %ld allocations failed in turn, %ld leaked\n", u->family, u->layout,
         u->estimator, strcmp(u->init, "prior") ? ", init " : "", strcmp(u->init, "prior") ? u->init : "",
         n - 1, leaky);
}

static void test_every_allocation_fails_cleanly(void) {
  char out[] = "/tmp/gflowvi-alloc-faults.XXXXXX";
  CHECK(mkdtemp(out) != NULL, "mkdtemp");
  const setup setups[] = {{"full", "params", "hessian", "prior", out},
                          {"diag", "samples", "stein", "mode", ""},
                          {"full", "samples", "stein", "prior", ""}};
  for (size_t i = 0; i < sizeof setups / sizeof setups[0]; i++) sweep(&setups[i]);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
  CHECK(system(cmd) == 0, "removing %s", out);
}

/* The built-in targets that need no data file, created and freed alone. */
static void test_target_creation_fails_cleanly(void) {
  static const char *const specs[] = {"gauss", "gmm4", "banana", "funnel"};
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    long n = 1, leaky = 0;
    for (; n < 10000; n++) {
      size_t before = in_use();
      gfv_alloc_fail_after(n);
      gfv_target *t = NULL;
      int st = gfv_target_create(specs[i], 0, &t);
      int reached = gfv_alloc_pending_failure() == 0;
      gfv_alloc_fail_after(0);
      gfv_target_free(t);
      if (!reached) {
        CHECK(st == GFV_OK, "%s: %s", specs[i], gfv_error_message());
        break;
      }
      CHECK(st == GFV_ERR_MEMORY && !t, "%s: allocation %ld: status %d", specs[i], n, st);
      if (in_use() != before && leaky++ < 3)
        CHECK(0, "%s: allocation %ld failed: %zd bytes leaked", specs[i], n,
              (ssize_t)(in_use() - before));
    }
    printf("# %s: %ld allocations failed in turn, %ld leaked\n", specs[i], n - 1, leaky);
  }
}

int main(int argc, char **argv) {
  (void)argc;
  if (!getenv("GLIBC_TUNABLES")) {
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then the count may be loose */
  }
  RUN(test_every_allocation_fails_cleanly);
  RUN(test_target_creation_fails_cleanly);
  return harness_report();
}
