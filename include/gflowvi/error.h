/* error.h - status codes and the error path of gflowvi.
 *
 * Every library function returns an int status: GFV_OK (0) or one of the codes below,
 * which are also the program's exit statuses.  The function that detects a problem
 * records one message with GFV_ERROR; each caller that passes the status on adds its
 * file:line:function with GFV_CALL, so a failure deep inside can print a traceback
 * (PETSc style) while the user sees a single line naming the cause.
 *
 * The error state is per thread (thread-local): a thread sees the last error raised in it.
 * The library is not otherwise thread-safe: one solver, its target and its communicator
 * belong to one thread at a time. */
#ifndef GFLOWVI_ERROR_H
#define GFLOWVI_ERROR_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <stddef.h>
#include <stdio.h>

enum gfv_status {
  GFV_OK = 0,
  GFV_ERR_USAGE = 2,    /* unknown option, malformed or out-of-range value, impossible combination */
  GFV_ERR_INPUT = 3,    /* missing or malformed input file, wrong dimension */
  GFV_ERR_NUMERIC = 4,  /* non-finite values or a failed factorisation that retries could not cure */
  GFV_ERR_IO = 5,       /* an output could not be written */
  GFV_ERR_MPI = 6,      /* an MPI call failed */
  GFV_ERR_MEMORY = 7,   /* allocation failed */
  GFV_ERR_INTERNAL = 8, /* a bug: an internal consistency check failed */
  GFV_ERR_OTHER_RANK = 9, /* used only internally: another rank failed (never an exit status) */
  GFV_STOPPED = 10,       /* not an error: stopped by a signal (checkpoint written where there was state) */
  GFV_ERR_DIVERGED = 11,  /* the fit diverged: steps kept failing the divergence checks, or the
                             final estimate is impossible (KL < 0 on a normalised target) */
  GFV_UNRELIABLE = 12     /* --strict: the fit completed and its outputs are written, but a
                             diagnostic says it should not be trusted (summary.json warnings) */
};

/* Records the error message (printf-style) and the place it was raised; returns code.
 * A second call before gfv_error_clear() replaces the message. */
int gfv_error_set(int code, const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Adds one traceback frame; called by GFV_CALL when a status passes through. */
void gfv_error_push(const char *file, int line, const char *func);

/* The recorded message ("" when none). */
const char *gfv_error_message(void);
/* The status of the recorded message (GFV_OK when none): the code GFV_ERROR raised, which
 * a caller's own status may have replaced (GFV_ERR_OTHER_RANK on ranks that agreed). */
int gfv_error_code(void);

/* Writes the traceback, innermost frame first, one line per frame. */
void gfv_error_print_trace(FILE *out);

void gfv_error_clear(void);

/* Short name of a status code ("usage", "input", ...). */
const char *gfv_status_name(int code);

/* Routes GSL errors into this error path instead of GSL's default abort(). */
void gfv_error_install_gsl_handler(void);

#define GFV_ERROR(code, ...) return gfv_error_set((code), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* User-facing check, on in every build (never plain assert: it does not play well with MPI). */
#define GFV_CHECK(cond, code, ...)                                                                 \
  do {                                                                                             \
    if (!(cond)) GFV_ERROR(code, __VA_ARGS__);                                                     \
  } while (0)

/* Calls expr and passes a non-zero status up, adding this frame. */
#define GFV_CALL(expr)                                                                             \
  do {                                                                                             \
    int gfv_st_ = (expr);                                                                          \
    if (gfv_st_) {                                                                                 \
      gfv_error_push(__FILE__, __LINE__, __func__);                                                \
      return gfv_st_;                                                                              \
    }                                                                                              \
  } while (0)

/* As GFV_CALL, for functions that must release resources: stores the status in st and
 * jumps to label on failure. */
#define GFV_CALL_GOTO(st, expr, label)                                                             \
  do {                                                                                             \
    (st) = (expr);                                                                                 \
    if (st) {                                                                                      \
      gfv_error_push(__FILE__, __LINE__, __func__);                                                \
      goto label;                                                                                  \
    }                                                                                              \
  } while (0)

/* As GFV_ERROR, for functions with a cleanup label. */
#define GFV_ERROR_GOTO(st, label, code, ...)                                                       \
  do {                                                                                             \
    (st) = gfv_error_set((code), __FILE__, __LINE__, __func__, __VA_ARGS__);                       \
    goto label;                                                                                    \
  } while (0)

/* Zero-initialised allocation of n elements into *ptr; fails with GFV_ERR_MEMORY. */
int gfv_calloc(void *ptr_to_ptr, size_t n, size_t size);
#define GFV_ALLOC(ptr, n) GFV_CALL(gfv_calloc(&(ptr), (n), sizeof(*(ptr))))
/* For tests of the failure paths: the n-th gfv_calloc from now in this thread fails with
 * GFV_ERR_MEMORY (0: none).  gfv_alloc_pending_failure() > 0 says it was not reached yet.
 * A function whose GFV_ALLOC returns early must own nothing yet (or use GFV_CALL_GOTO). */
void gfv_alloc_fail_after(long n);
long gfv_alloc_pending_failure(void);

#pragma GCC visibility pop

#endif
