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

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

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

/* ---- optional: named outputs on the model's own scale ------------------------------
 *
 * A model whose coordinates z are not what its user reads -- a Stan model, fitted on the
 * unconstrained scale (log sigma, the logit of a probability, ...) -- defines these so that
 * gflowvi can write each draw of the fit as the model's named quantities: the constrained
 * parameters, then any derived quantities (Stan: transformed parameters, then generated
 * quantities).  All four are optional and independent of the rules above (no ABI version
 * change: a plugin without them loads and runs as before, and gflowvi names the outputs
 * z[1], ..., z[d] and writes z unchanged).  gflowvi uses gfv_plugin_num_outputs,
 * gfv_plugin_output_names and gfv_plugin_write_array only when all three are defined.
 * Names are those the user wrote, with 1-based indices in brackets, as Stan and posteriordb
 * spell them: "mu", "theta[1]", "Sigma[2,1]"; the order is the plugin's own (a Stan model's
 * is Stan's: parameters, transformed parameters, generated quantities, each in declaration
 * order).  Draws written with these names are compared by name, never by position. */

/* The number m of output values per draw (>= 1). */
size_t gfv_plugin_num_outputs(void *state);

/* Stores in names[j] (0 <= j < m) a pointer to the name of output j: a NUL-terminated
 * string owned by the plugin, valid until gfv_plugin_destroy.  Returns 0 on success. */
int gfv_plugin_output_names(void *state, const char **names);

/* Maps one point z (d values, the plugin's coordinates) to its m outputs out[0..m-1].
 * seed is the seed of this draw's random numbers (Stan: the generated quantities'
 * RNG); the outputs depend on (z, seed) alone, so gflowvi passes a seed derived from
 * (--seed, draw index) and the draws do not depend on the rank count.  Where the model
 * cannot compute its outputs at z (a rejection in generated quantities, a derived value
 * that violates its declared constraint) the plugin writes NaN into every out[j] and
 * returns 0; any other non-zero return stops the run (exit status 3), as for
 * gfv_plugin_logdensity. */
int gfv_plugin_write_array(void *state, const double *z, double *out, unsigned long seed);

/* Stores in group[j] (0 <= j < m) what output j is: 0 a parameter, 1 a quantity derived
 * deterministically from the parameters (Stan: transformed parameters), 2 a quantity that
 * may be random given the parameters (Stan: generated quantities, e.g. a posterior
 * predictive draw).  Absent: every output is a parameter.  Returns 0 on success. */
int gfv_plugin_output_groups(void *state, int *group);

/* Stores in names[a] (0 <= a < d) the name of coordinate a of z, as for
 * gfv_plugin_output_names (Stan: its unconstrained parameter names, so "tau" for
 * log(tau)).  Absent: z[1], ..., z[d].  Returns 0 on success. */
int gfv_plugin_dim_names(void *state, const char **names);

/* ---- optional: the plugin's own lines ------------------------------------------------ */

/* A line a plugin prints itself reaches only the terminal.  When a plugin defines
 * gfv_plugin_set_log, gflowvi calls it once, right after gfv_plugin_init (with the state it
 * stored), handing over a function that says one line through gflowvi's log
 * (include/gflowvi/log.h): to the caller's gfv_solver_set_log or gfv_set_log callback when
 * there is one, else to stderr (notes, warnings) or stdout (info), as gflowvi's own lines.
 * level is a gfv_log_level (GFV_LOG_INFO 1, GFV_LOG_NOTE 2, GFV_LOG_WARNING 3); message is
 * one line without its newline, which the plugin should begin with its own name.  The
 * function stays valid until gfv_plugin_destroy and may be called from any plugin function. */
typedef void (*gfv_plugin_log_fn)(int level, const char *message);
void gfv_plugin_set_log(void *state, gfv_plugin_log_fn log);

/* The loader's function types. */
typedef int (*gfv_plugin_abi_version_fn)(void);
typedef size_t (*gfv_plugin_dim_fn)(void *);
typedef int (*gfv_plugin_logdensity_fn)(void *, size_t, size_t, const double *, double *, double *);
typedef int (*gfv_plugin_init_fn)(int, const char *const *, void **, char *, size_t);
typedef int (*gfv_plugin_hessian_fn)(void *, size_t, size_t, const double *, double *);
typedef int (*gfv_plugin_normalized_fn)(void *);
typedef void (*gfv_plugin_destroy_fn)(void *);
typedef size_t (*gfv_plugin_num_outputs_fn)(void *);
typedef int (*gfv_plugin_output_names_fn)(void *, const char **);
typedef int (*gfv_plugin_write_array_fn)(void *, const double *, double *, unsigned long);
typedef int (*gfv_plugin_output_groups_fn)(void *, int *);
typedef int (*gfv_plugin_dim_names_fn)(void *, const char **);
typedef void (*gfv_plugin_set_log_fn)(void *, gfv_plugin_log_fn);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop

#endif
