/* log.h - where the library's lines to the user go (docs/api.md, "Log").
 *
 * The library prints nothing itself but through one function (src/core/log.c): a line goes
 * to the solver's log callback (gfv_solver_set_log) when it is said by, or during a call on,
 * a solver that has one; else to this thread's callback (gfv_set_log); else progress and
 * info lines to stdout and notes and warnings to stderr, as the gflowvi program prints them. */
#ifndef GFLOWVI_LOG_H
#define GFLOWVI_LOG_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

/* What a line says, by kind. */
enum gfv_log_level {
  GFV_LOG_PROGRESS, /* "iter ... elbo ..." lines (every progress-every iterations) */
  GFV_LOG_INFO,     /* one-off facts: initialisation, convergence, stops */
  GFV_LOG_NOTE,     /* something worth knowing that does not make the fit doubtful */
  GFV_LOG_WARNING   /* rejected steps, components put back, files left in place */
};
/* message: one line, without its newline, as the default would print it. */
typedef void (*gfv_log_fn)(int level, const char *message, void *ctx);

/* This thread's log callback: it receives the lines said outside any solver call (target
 * loaders and plugins while a target is created, gfv_outputs_clean) and those of solvers
 * without their own callback.  fn NULL restores the default (stdout / stderr).  Not
 * collective; each thread has its own. */
void gfv_set_log(gfv_log_fn fn, void *ctx);

#pragma GCC visibility pop

#endif
