/* error.c - the per-thread error record behind GFV_ERROR / GFV_CALL.
 *
 * Thread-local, so that two threads driving two solvers (each on its own communicator)
 * never read each other's message; within one thread, the last error wins. */
#include "gflowvi/error.h"

#include "core/error_serial.h"

#include <gsl/gsl_errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define GFV_TRACE_MAX 32

static _Thread_local char err_message[1024];
static _Thread_local int err_code;
static _Thread_local struct {
  const char *file;
  int line;
  const char *func;
} err_trace[GFV_TRACE_MAX];
static _Thread_local int err_depth;
static _Thread_local unsigned long err_serial; /* gfv_error_set calls so far */

int gfv_error_set(int code, const char *file, int line, const char *func, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_message, sizeof err_message, fmt, ap);
  va_end(ap);
  err_code = code;
  err_depth = 0;
  err_serial++;
  gfv_error_push(file, line, func);
  return code;
}

void gfv_error_push(const char *file, int line, const char *func) {
  if (err_depth >= GFV_TRACE_MAX) return;
  err_trace[err_depth].file = file;
  err_trace[err_depth].line = line;
  err_trace[err_depth].func = func;
  err_depth++;
}

const char *gfv_error_message(void) { return err_message; }
unsigned long gfv_error_serial(void) { return err_serial; }
int gfv_error_code(void) { return err_code; }

void gfv_error_print_trace(FILE *out) {
  for (int i = 0; i < err_depth; i++)
    fprintf(out, "  [%d] %s:%d in %s()\n", i, err_trace[i].file, err_trace[i].line, err_trace[i].func);
}

void gfv_error_clear(void) {
  err_message[0] = '\0';
  err_code = GFV_OK;
  err_depth = 0;
}

const char *gfv_status_name(int code) {
  switch (code) {
  case GFV_OK: return "ok";
  case GFV_ERR_USAGE: return "usage";
  case GFV_ERR_INPUT: return "input";
  case GFV_ERR_NUMERIC: return "numerical";
  case GFV_ERR_IO: return "output";
  case GFV_ERR_MPI: return "mpi";
  case GFV_ERR_MEMORY: return "memory";
  case GFV_ERR_INTERNAL: return "internal";
  case GFV_ERR_OTHER_RANK: return "other rank";
  case GFV_STOPPED: return "stopped";
  case GFV_ERR_DIVERGED: return "diverged";
  case GFV_UNRELIABLE: return "unreliable";
  default: return "unknown";
  }
}

/* GSL calls this instead of aborting; the GSL function then returns its error code,
 * which our caller turns into a status with the message recorded here. */
static void gsl_handler(const char *reason, const char *file, int line, int gsl_errno) {
  gfv_error_set(GFV_ERR_NUMERIC, file, line, "gsl", "GSL: %s (%s)", reason, gsl_strerror(gsl_errno));
}

void gfv_error_install_gsl_handler(void) { gsl_set_error_handler(gsl_handler); }

/* Tests only (gfv_alloc_fail_after): the allocations left before the one that fails. */
static _Thread_local long alloc_countdown;

void gfv_alloc_fail_after(long n) { alloc_countdown = n > 0 ? n : 0; }
long gfv_alloc_pending_failure(void) { return alloc_countdown; }

int gfv_calloc(void *ptr_to_ptr, size_t n, size_t size) {
  void **pp = (void **)ptr_to_ptr;
  *pp = NULL;
  if (alloc_countdown > 0 && --alloc_countdown == 0)
    GFV_ERROR(GFV_ERR_MEMORY, "out of memory allocating %zu bytes (injected by gfv_alloc_fail_after)",
              n * size);
  if (n == 0) n = 1; /* a valid pointer even for empty arrays keeps free() paths simple */
  if (size != 0 && n > (size_t)-1 / size)
    GFV_ERROR(GFV_ERR_MEMORY, "allocation of %zu x %zu bytes overflows", n, size);
  *pp = calloc(n, size);
  if (!*pp) GFV_ERROR(GFV_ERR_MEMORY, "out of memory allocating %zu bytes", n * size);
  return GFV_OK;
}
