/* init.h - the initial particles (--init): the solver's entry point and, for the tests, the
 * pieces of the mode search (init_mode.c) and the warm start (init_file.c).
 *
 *   prior  means ~ N(0, init_scale^2 I), covariances init_var I, equal weights (particles.c)
 *   mode   Pathfinder-style: L-BFGS paths from --init-starts random starts; at iterates of
 *          each path the Gaussian N(z, Sigma(z)) with Sigma the clipped Laplace covariance,
 *          scored by a Monte Carlo ELBO; the particles are placed around the best Gaussians
 *          (init.c)
 *   FILE   a mixture.csv of an earlier fit, any K, either family (init_file.c)
 *
 * Everything here that draws random numbers does so from streams keyed by (seed, index),
 * never by rank, so every rank builds the same initial mixture whatever the rank count. */
#ifndef GFLOWVI_INIT_H
#define GFLOWVI_INIT_H

#include <stddef.h>

#include "gflowvi/comm.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"

/* Their streams (rng/stream.h): GFV_PURPOSE_INIT (seed, k): particle k's mean, prior or
 * mode; GFV_PURPOSE_INIT_START (seed, s): start s of the mode search; GFV_PURPOSE_INIT_DRAWS
 * (seed, 0): the ELBO draws, shared by every path; GFV_PURPOSE_INIT_SPLIT (seed, k): the
 * jitter of split component k (FILE). */

/* Collective: fills s->cur as cfg->init says (not called on --restart).  Failures are
 * agreed over the ranks. */
int gfv_solver_init_particles(gfv_solver *s);

/* ---- the mode search (init_mode.c, init_laplace.c) ------------------------------------------------ */

/* How a path ended (the "end" entry of a result). */
enum { GFV_PATH_FAILED = 0,   /* no finite log density at the start */
       GFV_PATH_CONVERGED,    /* gradient norm below tolerance: a mode */
       GFV_PATH_MAXITER,      /* the iteration limit */
       GFV_PATH_NECK,         /* l kept growing while the ELBO did not: no mode (a funnel) */
       GFV_PATH_STALLED };    /* the line search made no more progress */

typedef struct {
  size_t starts;   /* number of paths, shared out over the ranks */
  double scale;    /* starts ~ N(0, scale^2 I); scale^2 is also the clipping scale (0 -> 1) */
  unsigned long seed;
  long max_iter;   /* L-BFGS iterations per path */
  size_t draws;    /* Monte Carlo draws per ELBO estimate */
  int force_fd;    /* Hessians by finite differences even where the target has them (tests) */
} gfv_mode_opts;

/* One path's result, as gathered: a flat block of GFV_MODE_STRIDE(d) doubles. */
enum { GFV_MODE_ELBO,      /* of the path's best Gaussian; -inf: nothing finite found */
       GFV_MODE_LOGP,      /* l at its mean */
       GFV_MODE_ITERS,     /* iterations the path ran */
       GFV_MODE_EVALS,     /* target points it evaluated */
       GFV_MODE_END,       /* how it ended (GFV_PATH_*) */
       GFV_MODE_BEST_ITER, /* the iterate of the best Gaussian */
       GFV_MODE_END_LOGP,  /* l at the end point */
       GFV_MODE_HEAD };
#define GFV_MODE_STRIDE(d) (GFV_MODE_HEAD + 2 * (d) + (d) * (d))
/* ...followed by the best Gaussian's mean (d) and covariance (d x d, row-major), then the
 * path's end point (d): the mode, when the path converged. */

/* Defaults of the options above that have no command-line option. */
#define GFV_INIT_MAX_ITER 200
#define GFV_INIT_DRAWS 64

/* Collective: runs every path (start s on the rank that owns s in a block distribution)
 * and gathers the results: *out (caller frees) holds o->starts blocks on every rank, in
 * start order.  ELBO -inf marks a path that found nothing finite. */
int gfv_init_find_modes(const gfv_target *t, gfv_comm *comm, const gfv_mode_opts *o, double **out);

/* H <- minus the Hessian of l at z (d x d): the target's own (force_fd = 0 and
 * t->has_hessian) or central differences of its gradient, all 2d points in one call. */
int gfv_init_neg_hessian(const gfv_target *t, const double *z, int force_fd, double *H);

/* The clipped Laplace covariance from H = -Hessian: eigenvalues lambda > 0 give variances
 * 1/lambda clipped into [1e-8, 1e4] x s0^2, lambda <= 0 (flat or saddle) the variance
 * s0^2.  cov (d x d) = V diag(v) V^T, root = V diag(sqrt v) (root root^T = cov),
 * *logdet = log det cov; work holds d x d + d numbers.  Returns 0, or 1 when H is not
 * finite or the eigensolver fails. */
int gfv_init_laplace(size_t d, const double *H, double s0, double *cov, double *root,
                     double *logdet, double *work);

/* The ELBO of N(m, root root^T), log det of the covariance logdet, from the M standard-
 * normal draws eps (M x d): E l + entropy, the draws' l in one block call (z: M x d and
 * lp: M scratch).  *elbo = -inf where l is not finite at a draw (the Gaussian reaches where
 * the density is 0 or undefined).  *evals = target points used. */
int gfv_init_gaussian_elbo(const gfv_target *t, size_t M, const double *eps, const double *m,
                           const double *root, double logdet, double *z, double *lp, double *elbo,
                           long *evals);

/* ---- the warm start (init_file.c) ------------------------------------------------- */

/* Fills s->cur from the mixture.csv at path (not collective: every rank reads the file and
 * builds the whole list of K components, then keeps its block); msg (n bytes) receives a
 * line for the log. */
int gfv_init_from_file(gfv_solver *s, const char *path, char *msg, size_t n);

#endif
