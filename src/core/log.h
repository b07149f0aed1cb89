/* log.h - the library's one way to say a line to the user (include/gflowvi/log.h).
 *
 * gfv_log_line formats one line and hands it to the callback in scope: the one a solver
 * call put in scope (gfv_log_scope_enter, while the call runs), else the thread's
 * (gfv_set_log), else the default printer, which alone writes to stdout / stderr. */
#ifndef GFV_CORE_LOG_H
#define GFV_CORE_LOG_H

#include <stdarg.h>

#include "gflowvi/log.h"

/* A line (without its newline) at level; the caller decides which rank speaks. */
void gfv_log_line(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same to fn when it is set (a solver's own callback), else to the callback in scope. */
void gfv_log_vline(gfv_log_fn fn, void *ctx, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* The callback in scope during a call on an object that has one; enter returns the scope it
 * replaced, which leave restores (calls nest: a solver call inside a monitor). */
typedef struct {
  gfv_log_fn fn;
  void *ctx;
} gfv_log_scope;
gfv_log_scope gfv_log_scope_enter(gfv_log_fn fn, void *ctx);
void gfv_log_scope_leave(gfv_log_scope saved);

#endif
