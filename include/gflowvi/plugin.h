/* plugin.h - the C ABI of user models loaded with --target=plugin:PATH.so.
 *
 * A plugin is a shared object (cc -O2 -fPIC -shared -o model.so model.c, with -I on
 * gflowvi's include/ directory) that defines the functions below with C linkage.  gflowvi
 * loads it with dlopen on every MPI rank, checks the ABI version first, then calls
 * gfv_plugin_init (if defined) once per rank and gfv_plugin_dim.  During the run it calls
 * gfv_plugin_logdensity (and gfv_plugin_hessian, if defined and the hessian estimator is
 * used) on blocks of points, from one thread per process.  A complete example:
 * tools/plugins/ring.c.
 *
 * Conventions
 *  - Points are a row-major block: z[i * d + a] is coordinate a of point i (0 <= i < n).
 *  - The log density l(z) may be unnormalised; it may be -INFINITY where the density is 0.
 *    Never return NaN or +INFINITY: gflowvi rejects a step whose samples produce them
 *    (retrying with a halved step) and stops with exit status 4 when it cannot avoid them,
 *    and it warns once per process, naming the plugin and the point, when it first sees one.
 *  - Return 0 on success.  Any other value stops the run (exit status 3) with a message
 *    naming the plugin and the function; use it for real failures (a file the model
 *    needs cannot be read), not for points outside the support (return -INFINITY there).
 *  - state is whatever gfv_plugin_init stored (NULL when the plugin has no init).
 *  - Never call exit(): not in a constructor, not in any function here.  gflowvi reports
 *    it as an error naming the plugin and the function (exit status 3), whatever status
 *    the plugin passed.
 *
 * Versioning: GFV_PLUGIN_ABI_VERSION changes whenever a signature or a rule above changes
 * incompatibly.  A plugin returns the value it was compiled with, and gflowvi refuses (exit
 * status 3) to load one built for another version. */
#ifndef GFLOWVI_PLUGIN_H
#define GFLOWVI_PLUGIN_H

#include <stddef.h>

#define GFV_PLUGIN_ABI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

/* ---- required --------------------------------------------------------------------- */

/* Returns GFV_PLUGIN_ABI_VERSION (the value the plugin was compiled with). */
int gfv_plugin_abi_version(void);

/* The dimension d of z (>= 1), called after gfv_plugin_init.  When --dim is non-zero it
 * must equal this, or gflowvi stops with exit status 2. */
size_t gfv_plugin_dim(void *state);

/* logp[i] = l(z_i) and grad[i * d + a] = d l / d z_a at z_i, for the n points of z.
 * grad is never NULL.  n >= 1. */
int gfv_plugin_logdensity(void *state, size_t n, size_t d, const double *z, double *logp,
                          double *grad);

/* ---- optional --------------------------------------------------------------------- */

/* Set-up from the --plugin-arg option, split at commas into argc strings
 * (--plugin-arg=radius=2,width=0.5 gives {"radius=2", "width=0.5"}; no option, argc 0).
 * The strings are valid only during the call.  Stores the plugin's state in *state.  On failure returns non-zero and writes a one-line
 * message (at most errlen bytes, terminated) into err; gflowvi stops with exit status 3
 * and prints it. */
int gfv_plugin_init(int argc, const char *const *argv, void **state, char *err, size_t errlen);

/* hess[i * d * d + a * d + b] = d^2 l / d z_a d z_b at z_i (symmetric, both triangles).
 * When defined, the default estimator is the hessian one. */
int gfv_plugin_hessian(void *state, size_t n, size_t d, const double *z, double *hess);

/* Non-zero when exp(l) integrates to 1, so the summary reports KL(q || p) = -ELBO.
 * Absent: not normalised. */
int gfv_plugin_normalized(void *state);

/* Releases the state; called once per rank at the end. */
void gfv_plugin_destroy(void *state);

/* The loader's function types. */
typedef int (*gfv_plugin_abi_version_fn)(void);
typedef size_t (*gfv_plugin_dim_fn)(void *);
typedef int (*gfv_plugin_logdensity_fn)(void *, size_t, size_t, const double *, double *, double *);
typedef int (*gfv_plugin_init_fn)(int, const char *const *, void **, char *, size_t);
typedef int (*gfv_plugin_hessian_fn)(void *, size_t, size_t, const double *, double *);
typedef int (*gfv_plugin_normalized_fn)(void *);
typedef void (*gfv_plugin_destroy_fn)(void *);

#ifdef __cplusplus
}
#endif

#endif
