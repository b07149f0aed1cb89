/* log.c - the library's lines to the user (include/gflowvi/log.h, src/core/log.h): the only
 * file of the library that writes to stdout or stderr (tests/cli/test_layering.sh), so that a
 * caller's callback receives everything the library says.  Thread-local like the error record:
 * two threads each driving a solver keep their callbacks apart. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "gflowvi/config.h" /* GFV_PATH_MAX */

static _Thread_local gfv_log_fn thread_fn;
static _Thread_local void *thread_ctx;
static _Thread_local gfv_log_scope scope; /* the solver call now running, if it has a log */

void gfv_set_log(gfv_log_fn fn, void *ctx) { thread_fn = fn, thread_ctx = ctx; }

gfv_log_scope gfv_log_scope_enter(gfv_log_fn fn, void *ctx) {
  gfv_log_scope saved = scope;
  scope.fn = fn, scope.ctx = ctx;
  return saved;
}

void gfv_log_scope_leave(gfv_log_scope saved) { scope = saved; }

void gfv_log_vline(gfv_log_fn fn, void *ctx, int level, const char *fmt, va_list ap) {
  char line[2 * GFV_PATH_MAX + 1024];
  vsnprintf(line, sizeof line, fmt, ap);
  if (!fn) fn = scope.fn, ctx = scope.ctx;
  if (!fn) fn = thread_fn, ctx = thread_ctx;
  if (fn) {
    fn(level, line, ctx);
    return;
  }
  /* What the program has always printed where: progress and facts on stdout, flushed per
   * line (a user, or a test, waits on them); notes and warnings on stderr. */
  FILE *out = level == GFV_LOG_PROGRESS || level == GFV_LOG_INFO ? stdout : stderr;
  fprintf(out, "%s\n", line);
  fflush(out);
}

void gfv_log_line(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gfv_log_vline(NULL, NULL, level, fmt, ap);
  va_end(ap);
}
