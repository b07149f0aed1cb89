/* main.c - the gflowvi program: prolog (options, target, checks), the flow, epilog
 * (final evaluation, outputs, summary).  Every rank runs the same sequence; any failure
 * is agreed on by all ranks, the lowest failing rank prints one line, and all exit with
 * the same status (see docs/user-guide.md, "Exit status"). */
#include <cblas.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/preflight.h"
#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/interrupt.h"
#include "gflowvi/io.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"

/* SIGTERM and SIGUSR1 (what Slurm sends before a time limit or at preemption) and SIGINT
 * (Ctrl-C) ask for a checkpoint and a clean stop at the end of the current iteration. */
static volatile sig_atomic_t stop_signal;

/* The first signal asks for a stop at the next safe point of whatever phase is running
 * (gflowvi/interrupt.h); a second one, while the first is being honoured, means "now": the
 * default action, with one line saying that no checkpoint is written. */
static void on_stop_signal(int sig) {
  if (stop_signal) {
    static const char msg[] = "gflowvi: a second stop signal: stopping at once, without a checkpoint\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  stop_signal = sig;
}

static void install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  /* A parent may start us with these blocked (the mask survives exec): unblocked, a
   * signal already pending is honoured now instead of never. */
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGUSR1);
  sigaddset(&stop_set, SIGINT);
  sigprocmask(SIG_UNBLOCK, &stop_set, NULL);
  gfv_interrupt_watch(&stop_signal);
}

/* Collective: a stop asked for during set-up, before there is any state to keep, ends the
 * run here with GFV_STOPPED on every rank. */
static int setup_stop(gfv_comm *comm, const char *phase) {
  int st = gfv_comm_agree(comm, stop_signal ? GFV_STOPPED : GFV_OK, NULL);
  if (st == GFV_STOPPED && gfv_comm_rank(comm) == 0)
    fprintf(stderr, "gflowvi: received %s during %s: nothing to checkpoint yet; stopping\n",
            gfv_interrupt_name((int)stop_signal), phase);
  return st;
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
  printf("verdict   %s\n", res->reliable ? (res->nwarnings ? "reliable (with notes on stderr)" : "reliable: no warning")
                                           : "NOT RELIABLE: see the warnings on stderr and in summary.json");
  printf("outputs in %s/\n", cfg->out);
  fflush(stdout);
}

/* A phase of the epilog begins: one line on stdout from rank 0 (a user waiting on a long
 * evaluation, or a test waiting to signal it, sees where the run is). */
static void announce(int rank, const gfv_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void announce(int rank, const gfv_config *cfg, const char *fmt, ...) {
  if (rank != 0 || cfg->quiet) return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

/* The diagnostics' warnings go to stderr whatever --quiet says: a doubtful fit must be
 * impossible to miss (they are in summary.json too). */
static void warn_verdict(const gfv_config *cfg, const gfv_eval_result *res) {
  for (int i = 0; i < res->nwarnings; i++)
    fprintf(stderr, "gflowvi: %s: %s\n", res->warning_severe[i] ? "warning" : "note", res->warnings[i]);
  if (!res->reliable)
    fprintf(stderr, "gflowvi: warning: this fit is NOT RELIABLE (summary.json: \"reliable\": false)%s\n",
            cfg->strict ? "; --strict: exit status 12, outputs written" : "");
  fflush(stderr);
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
  /* A restart continues the checkpoint's run with its options, unless given here; before
   * the target, which comes from them. */
  GFV_CALL(gfv_restart_configure(comm, cfg));
  /* A Stan model's coordinates are Stan's unconstrained parameters, where N(0, 3^2 I) says
   * nothing about where the posterior is: from that start, posteriors far from the origin
   * (posteriordb's kidiq, diamonds) end stranded, status 11.  So Stan models start at the
   * mode unless --init is given (docs/user-guide.md, "Stan models"); the echo shows the choice. */
  if (!cfg->restart[0] && !gfv_config_given(cfg, "init") && strncmp(cfg->target, "stan:", 5) == 0)
    snprintf(cfg->init, sizeof cfg->init, "mode");
  GFV_CALL(setup_stop(comm, "set-up (options)"));
  /* Rank 0 compiles a Stan model while the others wait here (src/targets/stan.c). */
  GFV_CALL(gfv_comm_agree(comm, rank == 0 ? gfv_target_prepare(cfg) : GFV_OK, NULL));
  st = gfv_target_create_from_config(cfg, target);
  GFV_CALL(gfv_comm_agree(comm, st, NULL));
  GFV_CALL(setup_stop(comm, "set-up (loading the target)"));
  /* Output paths, disk space, memory limits; then the old outputs go (preflight.h).  A
   * --check-target run writes nothing. */
  if (!cfg->check_target) GFV_CALL(gfv_preflight(comm, cfg, *target));
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
  if (cfg.check_target) { /* the derivatives against finite differences, no fit */
    st = gfv_solver_create(&cfg, target, comm, &solver);
    if (!st) st = gfv_solver_check_target(solver, stdout);
    goto done;
  }
  if (rank == 0 && !cfg.quiet) banner(&cfg, target, gfv_comm_size(comm));
  st = gfv_solver_create(&cfg, target, comm, &solver);
  if (st == GFV_STOPPED && rank == 0) /* stopped inside the initialisation: no state yet */
    fprintf(stderr, "gflowvi: received %s during set-up (initialisation): nothing to checkpoint "
                    "yet; stopping\n", gfv_interrupt_name((int)stop_signal));
  if (st) goto done;
  if (rank == 0 && !cfg.quiet && cfg.restart[0])
    printf("restarted from %s at iteration %ld\n", cfg.restart, gfv_solver_iteration(solver));
  /* From here on there is state: a stop writes a checkpoint in every phase. */
  if (gfv_comm_agree(comm, stop_signal ? GFV_STOPPED : GFV_OK, NULL) == GFV_STOPPED) {
    st = gfv_solver_stop(solver, "set-up");
    goto done;
  }
  st = gfv_solver_run(solver);
  if (st) goto done; /* GFV_STOPPED after a checkpoint, or an agreed error */
  announce(rank, &cfg, "final evaluation: %ld fresh samples of the mixture\n", cfg.eval_samples);
  st = gfv_solver_evaluate(solver, &res);
  if (st == GFV_STOPPED) st = gfv_solver_stop(solver, "the final evaluation");
  if (st) goto done;
  announce(rank, &cfg, "writing the outputs to %s/\n", cfg.out);
  st = gfv_solver_write_outputs(solver, &res);
  if (st == GFV_STOPPED) st = gfv_solver_stop(solver, "output writing");
  if (st) goto done;
  if (rank == 0 && !cfg.quiet)
    report(&cfg, &res, gfv_solver_iteration(solver), gfv_solver_seconds(solver));
  if (rank == 0) warn_verdict(&cfg, &res);
  if (cfg.strict && !res.reliable) st = GFV_UNRELIABLE;
done:
  gfv_solver_free(solver);
  gfv_target_free(target);
  return st;
}

int main(int argc, char **argv) {
  gfv_comm *comm = NULL;
  /* Before MPI: its start-up (a singleton's takes a second) is part of the set-up, where a
   * stop signal ends the run with status 10 and one line, not with the default action. */
  install_signal_handlers();
  int st = gfv_comm_init_mpi(&argc, &argv, &comm);
  if (st) {
    fprintf(stderr, "gflowvi: error: %s\n", gfv_error_message());
    return st;
  }
  /* MPI ranks are the parallelism: one BLAS thread per rank, never left to the user. */
  openblas_set_num_threads(1);
  gfv_error_install_gsl_handler();
  /* Again after MPI_Init: an MPI library may install its own handlers there (the flag the
   * first handlers set, if a signal came during MPI's start-up, is kept). */
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
