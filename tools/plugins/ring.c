/* ring.c - an example gflowvi plugin (include/gflowvi/plugin.h): a 2-D ring, normalised.
 *
 *   p(z) = exp(-(|z| - R)^2 / (2 w^2)) / C,   C = 2 pi w [ w e^{-R^2/(2 w^2)} + R sqrt(2 pi) Phi(R / w) ]
 *
 * (C is the integral in polar coordinates), so gflowvi reports KL(q || p).  No single
 * Gaussian fits a ring; a mixture of a dozen does.
 *
 * Build and run (the Makefile's `plugins` rule does the build):
 *   cc -O2 -fPIC -shared -Iinclude -o build/plugins/ring.so tools/plugins/ring.c -lm
 *   mpirun -np 2 build/bin/gflowvi --target=plugin:build/plugins/ring.so \
 *       --plugin-arg=radius=3,width=0.3 --particles=16 --weight-step=0.05
 *
 * Arguments (--plugin-arg, comma-separated): radius=R (default 2), width=W (default 0.25),
 * nan (return NaN everywhere: shows gflowvi's handling of a broken model), sleep=S (pause S
 * seconds in gfv_plugin_init: a slow set-up, for the signal tests), cut=C (a bounded support:
 * the density is zero, log -inf, where z_2 < C; the ring is then not normalised), warn (say one
 * warning at the first evaluation, through gfv_plugin_set_log's hook: how a plugin's lines
 * reach a library caller's log).
 * Build variants used by the tests: -DRING_ABI_OFFSET=1 (claims another ABI version),
 * -DRING_OMIT_LOGDENSITY (lacks a required function), -DRING_NO_HESSIAN (no Hessian),
 * -DRING_EXIT_IN_INIT and -DRING_EXIT_IN_CONSTRUCTOR (call exit(0) in gfv_plugin_init or
 * in a constructor that dlopen runs: what a plugin must never do), -DRING_ABORT_IN_INIT
 * (abort() in gfv_plugin_init), -DRING_WRONG_GRADIENT (the gradient's second coordinate
 * misses a factor 1/w: what --check-target must catch). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gflowvi/plugin.h"

#ifndef RING_ABI_OFFSET
#define RING_ABI_OFFSET 0
#endif

typedef struct {
  double R, w, logC;
  double cut; /* the density is 0 (log -inf) where z_2 < cut; -inf = no cut */
  int nan;
  int warn, warned;      /* "warn": say one warning at the first evaluation */
  gfv_plugin_log_fn log; /* gflowvi's log (gfv_plugin_set_log); NULL: print it ourselves */
} ring;

int gfv_plugin_abi_version(void) { return GFV_PLUGIN_ABI_VERSION + RING_ABI_OFFSET; }

static int parse(const char *arg, const char *key, double *out) {
  size_t k = strlen(key);
  if (strncmp(arg, key, k) != 0 || arg[k] != '=') return 0;
  char *end;
  *out = strtod(arg + k + 1, &end);
  return end != arg + k + 1 && *end == '\0' ? 1 : -1;
}

#ifdef RING_EXIT_IN_CONSTRUCTOR
__attribute__((constructor)) static void ring_exit_on_load(void) { exit(0); }
#endif

int gfv_plugin_init(int argc, const char *const *argv, void **state, char *err, size_t errlen) {
#ifdef RING_EXIT_IN_INIT
  exit(0);
#endif
#ifdef RING_ABORT_IN_INIT
  abort();
#endif
  ring *r = calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return 1;
  }
  r->R = 2.0, r->w = 0.25, r->cut = -INFINITY;
  for (int i = 0; i < argc; i++) {
    int ok;
    double pause = 0;
    if ((ok = parse(argv[i], "sleep", &pause)) == 1) { /* a slow set-up, for the signal tests */
      struct timespec ts = {(time_t)pause, (long)((pause - (double)(time_t)pause) * 1e9)};
      fprintf(stderr, "ring: sleeping %g s in gfv_plugin_init\n", pause); /* the tests wait for it */
      fflush(stderr);
      while (nanosleep(&ts, &ts) == -1 && errno == EINTR) continue; /* signals do not cut it */
      continue;
    }
    if ((ok = parse(argv[i], "radius", &r->R)) == 0 && (ok = parse(argv[i], "width", &r->w)) == 0 &&
        (ok = parse(argv[i], "cut", &r->cut)) == 0) {
      if (strcmp(argv[i], "nan") == 0) {
        r->nan = 1;
        continue;
      }
      if (strcmp(argv[i], "warn") == 0) {
        r->warn = 1;
        continue;
      }
      snprintf(err, errlen,
               "unknown argument '%s' (use radius=R, width=W, cut=C, nan, warn, sleep=S)",
               argv[i]);
      free(r);
      return 1;
    }
    if (ok < 0 || !(r->R >= 0) || !(r->w > 0)) {
      snprintf(err, errlen, "bad value in '%s' (radius >= 0, width > 0)", argv[i]);
      free(r);
      return 1;
    }
  }
  const double a = r->R / r->w;
  r->logC = log(2.0 * M_PI * r->w) +
            log(r->w * exp(-0.5 * a * a) + r->R * sqrt(2.0 * M_PI) * 0.5 * erfc(-a / sqrt(2.0)));
  *state = r;
  return 0;
}

void gfv_plugin_set_log(void *state, gfv_plugin_log_fn log) { ((ring *)state)->log = log; }

size_t gfv_plugin_dim(void *state) {
  (void)state;
  return 2;
}

#ifndef RING_OMIT_LOGDENSITY
int gfv_plugin_logdensity(void *state, size_t n, size_t d, const double *z, double *logp,
                          double *grad) {
  ring *r = state;
  if (d != 2) return 1;
  if (r->warn && !r->warned) {
    static const char msg[] = "ring: warning: the first evaluation (the 'warn' argument)";
    if (r->log)
      r->log(3 /* GFV_LOG_WARNING */, msg);
    else
      fprintf(stderr, "%s\n", msg);
    r->warned = 1;
  }
  for (size_t i = 0; i < n; i++) {
    const double x = z[2 * i], y = z[2 * i + 1], rad = hypot(x, y), e = rad - r->R;
    logp[i] = r->nan ? NAN : y < r->cut ? -INFINITY : -0.5 * e * e / (r->w * r->w) - r->logC;
    /* d/dz of -(|z| - R)^2 / (2 w^2) = -(|z| - R) / w^2 * z / |z|  (0 at the centre) */
    const double s = rad > 0 ? -e / (r->w * r->w * rad) : 0.0;
    grad[2 * i] = s * x;
    grad[2 * i + 1] = s * y;
#ifdef RING_WRONG_GRADIENT
    grad[2 * i + 1] *= r->w;
#endif
  }
  return 0;
}
#endif

#ifndef RING_NO_HESSIAN
/* H = -(1/w^2) [ u u^T + (1 - R/|z|) (I - u u^T) ],  u = z / |z|. */
int gfv_plugin_hessian(void *state, size_t n, size_t d, const double *z, double *hess) {
  const ring *r = state;
  if (d != 2) return 1;
  for (size_t i = 0; i < n; i++) {
    const double x = z[2 * i], y = z[2 * i + 1], rad = hypot(x, y);
    double *H = hess + 4 * i;
    if (rad == 0) { /* not differentiable at the centre; any finite value will do */
      H[0] = H[3] = -1.0 / (r->w * r->w), H[1] = H[2] = 0;
      continue;
    }
    const double ux = x / rad, uy = y / rad, t = 1.0 - r->R / rad, k = -1.0 / (r->w * r->w);
    H[0] = k * (ux * ux + t * (1 - ux * ux));
    H[3] = k * (uy * uy + t * (1 - uy * uy));
    H[1] = H[2] = k * (ux * uy - t * ux * uy);
  }
  return 0;
}
#endif

int gfv_plugin_normalized(void *state) {
  const ring *r = state;
  return r->cut == -INFINITY; /* a cut ring has lost the mass below the cut */
}

void gfv_plugin_destroy(void *state) { free(state); }
