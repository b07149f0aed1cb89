/* main.c - the gflowvi program: prolog (options, target, checks), the flow, epilog
 * (final evaluation, outputs, summary).  Every rank runs the same sequence; any failure
 * is agreed on by all ranks, the lowest failing rank prints one line, and all exit with
 * the same status (see README, "Exit status"). */
#include <cblas.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/preflight.h"
#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"

/* SIGTERM and SIGUSR1 (what Slurm sends before a time limit or at preemption) ask for a
 * checkpoint and a clean stop at the end of the current iteration. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

static void install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
}

static void banner(const gfv_config *cfg, const gfv_target *t, int ranks) {
  printf("gflowvi: %s on target %s (d = %zu), %ld particles x %ld samples on %d rank%s\n",
         strcmp(cfg->flow, "gflow") == 0 ? "GFlow-VI" : "NGFlow-VI", cfg->target, t->dim,
         cfg->particles, cfg->samples, ranks, ranks == 1 ? "" : "s");
  printf("# resolved configuration\n");
  gfv_config_print(stdout, cfg, "# ");
  fflush(stdout);
}

static void report(const gfv_config *cfg, const gfv_eval_result *res, long iters, double secs) {
  printf("done: %ld iterations in %.2f s (%.1f it/s)\n", iters, secs,
         secs > 0 ? (double)iters / secs : 0.0);
  printf("ELBO      %.6f +- %.6f  (%zu fresh samples)\n", res->elbo, res->elbo_se,
         res->eval_samples);
  if (res->kl == res->kl) printf("KL(q||p)  %.6f +- %.6f\n", res->kl, res->kl_se);
  printf("log Z     %.6f +- %.6f  (importance-weighted)\n", res->log_evidence, res->log_evidence_se);
  printf("PSIS k-hat %.3f: %s\n", res->khat,
         res->khat > 0.7   ? "do not trust expectations from this fit (k-hat > 0.7)"
         : res->khat > 0.5 ? "usable, with caution (0.5 < k-hat <= 0.7)"
                           : "good (k-hat <= 0.5)");
  if (res->negligible) printf("components with negligible weight (< 1e-6): %zu\n", res->negligible);
  printf("outputs in %s/\n", cfg->out);
  fflush(stdout);
}

/* Options, target, output paths and resources, checked on every rank before any long work. */
static int prolog(gfv_comm *comm, int argc, char **argv, gfv_config *cfg, gfv_target **target,
                  int *help) {
  int rank = gfv_comm_rank(comm);
  int st = gfv_config_parse(cfg, argc, argv, help);
  GFV_CALL(gfv_comm_agree(comm, st, NULL));
  if (*help) {
    if (rank == 0) gfv_config_print_help(stdout, "gflowvi");
    return GFV_OK;
  }
  st = gfv_target_create_from_config(cfg, target);
  GFV_CALL(gfv_comm_agree(comm, st, NULL));
  /* Output paths, disk space, memory limits; then the old outputs go (preflight.h). */
  GFV_CALL(gfv_preflight(comm, cfg, *target));
  return GFV_OK;
}

static int run(gfv_comm *comm, int argc, char **argv) {
  gfv_config cfg;
  gfv_target *target = NULL;
  gfv_solver *solver = NULL;
  gfv_eval_result res;
  int help = 0, st, rank = gfv_comm_rank(comm);
  GFV_CALL_GOTO(st, prolog(comm, argc, argv, &cfg, &target, &help), done);
  if (help) goto done;
  if (rank == 0 && !cfg.quiet) banner(&cfg, target, gfv_comm_size(comm));
  GFV_CALL_GOTO(st, gfv_solver_create(&cfg, target, comm, &solver), done);
  if (rank == 0 && !cfg.quiet && cfg.restart[0])
    printf("restarted from %s at iteration %ld\n", cfg.restart, gfv_solver_iteration(solver));
  gfv_solver_set_stop_flag(solver, &stop_signal);
  st = gfv_solver_run(solver);
  if (st) goto done; /* GFV_STOPPED after a checkpoint, or an agreed error */
  GFV_CALL_GOTO(st, gfv_solver_evaluate(solver, &res), done);
  GFV_CALL_GOTO(st, gfv_solver_write_outputs(solver, &res), done);
  if (rank == 0 && !cfg.quiet)
    report(&cfg, &res, gfv_solver_iteration(solver), gfv_solver_seconds(solver));
done:
  gfv_solver_free(solver);
  gfv_target_free(target);
  return st;
}

int main(int argc, char **argv) {
  gfv_comm *comm = NULL;
  int st = gfv_comm_init_mpi(&argc, &argv, &comm);
  if (st) {
    fprintf(stderr, "gflowvi: error: %s\n", gfv_error_message());
    return st;
  }
  /* MPI ranks are the parallelism: one BLAS thread per rank, never left to the user. */
  openblas_set_num_threads(1);
  gfv_error_install_gsl_handler();
  install_signal_handlers();
  st = run(comm, argc, argv);
  if (st && st != GFV_STOPPED) {
    /* Every rank holds the agreed status; the lowest rank that holds a message prints it. */
    int reporter = 0;
    int has_message = gfv_error_message()[0] != '\0';
    gfv_comm_agree(comm, has_message ? st : 0, &reporter);
    if (reporter) {
      fprintf(stderr, "gflowvi: error: %s\n", gfv_error_message());
      if (getenv("GFV_TRACEBACK")) gfv_error_print_trace(stderr);
    }
  }
  gfv_comm_free(comm);
  return st;
}
