/* init_mode.c - the search behind --init=mode, in the spirit of Pathfinder (Zhang,
 * Carpenter, Gelman, Vehtari 2022).
 *
 * From each start, a quasi-Newton path (GSL's vector_bfgs2) climbs the log density l.  At
 * iterates z_t of the path -- every one for d <= INIT_EVERY_DIM, a geometric subset above,
 * where each costs a d x d Hessian -- the Gaussians N(z_t, alpha Sigma_t), Sigma_t the
 * clipped Laplace covariance at z_t and alpha in 1/16 .. 2, are scored by their ELBO,
 * E l(z) + entropy, from opts->draws draws evaluated in one block call, and the path keeps
 * its best.  Scoring by the ELBO rather than by l is what copes with densities that have no
 * mode: the centred eight-schools posterior grows without bound down its funnel
 * (log tau -> -inf), so the path runs off, but the Gaussians there grow narrow and their
 * ELBO falls; the best stays in the body.  The scale alpha is the one-parameter ELBO fit of
 * the Laplace covariance, which the local curvature of a skewed posterior gets wrong by
 * factors of 2 to 8 (non-centred eight schools at its mode: ELBO -58 at alpha = 1, -40 at
 * alpha = 1/4; without alpha the ELBO of Laplace Gaussians early on a path is so poor that
 * it cannot tell a funnel from a climb).
 *
 * A path ends when the gradient is tiny (a mode), after max_iter iterations, when the line
 * search makes no more progress, or in a funnel neck: when l has risen above its value at
 * the best Gaussian's centre by more than (d + 4 sqrt(2d)) / 2 -- the spread of l over the
 * typical set of a Gaussian that fits, a chi^2_d / 2 spread -- while two ELBO estimates
 * since have not improved on the best, and the path is not closing in on a mode (the
 * gradient's norm in the whitened coordinates, the Newton decrement, is above 1: a path
 * within about one Laplace standard deviation of a mode is climbing its last nats, as on
 * the non-centred eight schools from a start at log tau = -3, whose first step overshoots
 * to log tau = 6 and whose Gaussians there score worse than the start's; on the centred
 * model's necks the decrement stays near 3).  A proper density can rise like that only on
 * a set of vanishing volume, which no Gaussian of a better ELBO covers.
 *
 * Every ELBO uses the same standard-normal draws (common random numbers, stream
 * GFV_PURPOSE_INIT_DRAWS), so iterates and paths are compared on the same noise.  The
 * Hessians, Laplace covariances and ELBOs are in init_laplace.c (GSL's multimin header and
 * OpenBLAS's cblas.h cannot meet in one file). */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_multimin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "gflowvi/interrupt.h"
#include "rng/stream.h"
#include "solver/init.h"
#include "solver/particles.h"

#define INIT_EVERY_DIM 64      /* score every iterate up to this d, a geometric subset above */
#define INIT_EVAL_RATIO 1.25   /* ratio of that subset: about 20 of 200 iterates */
#define INIT_GTOL 1e-6         /* a mode when sqrt(grad^T Sigma grad) <= GTOL (see run_path) */
#define INIT_LINE_TOL 0.1      /* vector_bfgs2's line-search tolerance (GSL's advice) */
#define INIT_ALPHA_LO (-4)     /* the scales alpha of the Laplace covariance tried: 2^LO .. 2^HI */
#define INIT_ALPHA_HI 1

/* One rank's workspace for its paths. */
typedef struct {
  const gfv_target *t;
  const gfv_mode_opts *o;
  size_t d, M;
  double s0;                /* the clipping scale */
  double *eps;              /* M x d: the shared standard-normal draws */
  double *z, *lp;           /* M x d points and their log densities */
  double *H, *cov, *root, *root_a, *eig_work; /* d x d each; eig_work d x d + d */
  double *x, *g;            /* d: the callback's point and gradient of l */
  double *xcur, *x0;        /* d: the current iterate; a copy */
  double *c, *R;            /* the whitened coordinates: x = c + R y (d, d x d) */
  gsl_vector *gtmp, *y0;    /* the gradient path_f does not return; y = 0 */
  double fpen;              /* value returned where l is not finite: above the start */
  long evals;               /* target points on this path */
  int st;                   /* the first failing status of a target call */
} mode_work;

/* The best ELBO of N(x, alpha Sigma), Sigma the Laplace covariance at x, over the scales
 * alpha (its covariance left in w->cov, the root of Sigma in w->root; *have_root = 0 when
 * the Hessian was not finite). */
static int score(mode_work *w, const double *x, double *elbo, int *have_root) {
  const size_t d = w->d;
  double logdet, best_a = 1.0;
  *elbo = -INFINITY, *have_root = 0;
  GFV_CALL(gfv_init_neg_hessian(w->t, x, w->o->force_fd, w->H));
  w->evals += w->t->has_hessian && !w->o->force_fd ? 1 : 2 * (long)d;
  if (gfv_init_laplace(d, w->H, w->s0, w->cov, w->root, &logdet, w->eig_work)) return GFV_OK;
  *have_root = 1;
  for (int e = INIT_ALPHA_LO; e <= INIT_ALPHA_HI; e++) {
    const double a = ldexp(1.0, e), ra = sqrt(a);
    double val;
    long n = 0;
    for (size_t i = 0; i < d * d; i++) w->root_a[i] = ra * w->root[i];
    GFV_CALL(gfv_init_gaussian_elbo(w->t, w->M, w->eps, x, w->root_a, logdet + (double)d * log(a),
                                    w->z, w->lp, &val, &n));
    w->evals += n;
    if (val > *elbo) *elbo = val, best_a = a;
  }
  for (size_t i = 0; i < d * d; i++) w->cov[i] *= best_a;
  return GFV_OK;
}

/* ---- one L-BFGS path ---------------------------------------------------------------- */

/* The path runs in coordinates y whitened by the Laplace covariance: x = c + R y with
 * R R^T = Sigma at the last scored iterate c, where the minimizer restarts (see run_path).
 * f(y) = -l(x) and grad_y f = -R^T grad l; fpen and a zero gradient where l is not finite,
 * which the line search reads as "too far" and backs off from. */
static void path_fdf(const gsl_vector *y, void *p, double *f, gsl_vector *gy) {
  mode_work *w = p;
  const size_t d = w->d;
  for (size_t a = 0; a < d; a++) {
    double v = w->c[a];
    for (size_t b = 0; b < d; b++) v += w->R[a * d + b] * gsl_vector_get(y, b);
    w->x[a] = v;
  }
  double l = NAN;
  int st = gfv_target_eval(w->t, 1, w->x, &l, w->g, NULL);
  w->evals++;
  if (st && !w->st) w->st = st;
  int ok = !st && isfinite(l);
  for (size_t a = 0; ok && a < d; a++) ok = isfinite(w->g[a]);
  *f = ok ? -l : w->fpen;
  for (size_t b = 0; b < d; b++) {
    double v = 0.0;
    for (size_t a = 0; ok && a < d; a++) v -= w->R[a * d + b] * w->g[a];
    gsl_vector_set(gy, b, v);
  }
}

static double path_f(const gsl_vector *y, void *p) {
  mode_work *w = p;
  double f;
  path_fdf(y, p, &f, w->gtmp);
  return f;
}

static void path_df(const gsl_vector *y, void *p, gsl_vector *gy) {
  double f;
  path_fdf(y, p, &f, gy);
}

static double norm2(const gsl_vector *v) {
  double s = 0.0;
  for (size_t i = 0; i < v->size; i++) s += gsl_vector_get(v, i) * gsl_vector_get(v, i);
  return sqrt(s);
}

/* (Re)starts the minimizer at x, in coordinates whitened by R (d x d; NULL: R = I), with a
 * first trial step of the Newton step's length |R^T grad l| (capped at 4 sqrt(d), a few
 * standard deviations): the first step is then a Newton step under a line search.
 * Returns GSL's status; a failing target call is left in w->st. */
static int restart(mode_work *w, gsl_multimin_fdfminimizer *m, gsl_multimin_function_fdf *fn,
                   const double *x, const double *R) {
  const size_t d = w->d;
  memcpy(w->c, x, d * sizeof(double));
  memset(w->R, 0, d * d * sizeof(double));
  for (size_t a = 0; a < d; a++) w->R[a * d + a] = 1.0;
  if (R) memcpy(w->R, R, d * d * sizeof(double));
  gsl_vector_set_zero(w->y0);
  double f;
  path_fdf(w->y0, w, &f, w->gtmp);
  double step = fmin(norm2(w->gtmp), 4.0 * sqrt((double)d));
  if (!(step > 0.0)) step = 1.0;
  return gsl_multimin_fdfminimizer_set(m, fn, w->y0, step, INIT_LINE_TOL);
}

/* Start s: its path from a point drawn from its own stream; res (GFV_MODE_STRIDE(d))
 * receives the best Gaussian on the path and the path's end point.
 *
 * Preconditioning: GSL's vector_bfgs2 keeps little curvature memory, and on an
 * ill-conditioned posterior it crawls (logistic regression on the breast-cancer data:
 * still |grad l| = 3 after 200 iterations).  The Laplace covariance is computed at every
 * scored iterate anyway, so the minimizer restarts there in coordinates it whitens: near a
 * mode each restart is a Newton step with a line search (quadratic convergence), and
 * between the sparser scored iterates of large d it is BFGS in well-scaled coordinates. */
static int run_path(mode_work *w, gsl_multimin_fdfminimizer *m, size_t s, double *res) {
  const size_t d = w->d;
  const gfv_mode_opts *o = w->o;
  double *best_mean = res + GFV_MODE_HEAD, *best_cov = best_mean + d, *end_x = best_cov + d * d;
  res[GFV_MODE_ELBO] = -INFINITY, res[GFV_MODE_LOGP] = NAN, res[GFV_MODE_ITERS] = 0;
  res[GFV_MODE_END] = GFV_PATH_FAILED, res[GFV_MODE_BEST_ITER] = -1, res[GFV_MODE_END_LOGP] = NAN;
  w->evals = 0;
  const gfv_stream st = gfv_stream_make(o->seed, s, GFV_PURPOSE_INIT_START);
  gfv_stream_normals(&st, 0, 0, d, w->xcur);
  for (size_t a = 0; a < d; a++) w->xcur[a] *= o->scale;
  memcpy(end_x, w->xcur, d * sizeof(double));

  gsl_multimin_function_fdf fn = {path_f, path_df, path_fdf, d, w};
  w->fpen = INFINITY;
  int gst = restart(w, m, &fn, w->xcur, NULL);
  GFV_CALL(w->st);
  res[GFV_MODE_EVALS] = (double)w->evals;
  double f0 = gsl_multimin_fdfminimizer_minimum(m);
  if (gst != GSL_SUCCESS || !isfinite(f0)) return GFV_OK; /* nothing finite at the start */
  w->fpen = f0 + 1e3 * (1.0 + fabs(f0));

  const double growth = 0.5 * ((double)d + 4.0 * sqrt(2.0 * (double)d));
  double best = -INFINITY, l_best = -INFINITY, l = -f0;
  long next_eval = 0, since_best = 0, t;
  int end = 0;
  for (t = 0;; t++) {
    const gsl_vector *y = gsl_multimin_fdfminimizer_x(m);
    for (size_t a = 0; a < d; a++) {
      double v = w->c[a];
      for (size_t b = 0; b < d; b++) v += w->R[a * d + b] * gsl_vector_get(y, b);
      w->xcur[a] = v;
    }
    l = -gsl_multimin_fdfminimizer_minimum(m);
    /* |R^T grad l|: in whitened coordinates, sqrt(grad^T Sigma grad), the Newton decrement. */
    double gn = norm2(gsl_multimin_fdfminimizer_gradient(m));
    if (!end) {
      if (gn <= INIT_GTOL) end = GFV_PATH_CONVERGED;
      else if (t >= o->max_iter) end = GFV_PATH_MAXITER;
      else if (isfinite(best) && l - l_best > growth && since_best >= 2 && gn > 1.0) end = GFV_PATH_NECK;
    }
    if (t == next_eval || end) {
      double e;
      int have_root;
      GFV_CALL(score(w, w->xcur, &e, &have_root));
      if (e > best) {
        best = e, l_best = l, since_best = 0;
        res[GFV_MODE_ELBO] = e, res[GFV_MODE_LOGP] = l, res[GFV_MODE_BEST_ITER] = (double)t;
        memcpy(best_mean, w->xcur, d * sizeof(double));
        memcpy(best_cov, w->cov, d * d * sizeof(double));
      } else {
        since_best++;
      }
      long geo = (long)ceil(INIT_EVAL_RATIO * (double)t);
      next_eval = d <= INIT_EVERY_DIM || geo <= t ? t + 1 : geo;
      if (!end && have_root) {
        memcpy(w->x0, w->xcur, d * sizeof(double));
        gst = restart(w, m, &fn, w->x0, w->root);
        GFV_CALL(w->st);
        if (gst != GSL_SUCCESS) end = GFV_PATH_STALLED;
      }
    }
    if (end) break;
    /* A safe point of the set-up: a stop asked for now ends the search (no state yet). */
    if (gfv_interrupt_signal()) return GFV_STOPPED;
    gst = gsl_multimin_fdfminimizer_iterate(m);
    GFV_CALL(w->st);
    /* No progress is how a path in floating point usually ends near a mode; any other
     * failure of the line search (in a non-convex region) ends the path too, keeping the
     * best Gaussian so far.  Neither is an error. */
    if (gst != GSL_SUCCESS) end = GFV_PATH_STALLED;
  }
  memcpy(end_x, w->xcur, d * sizeof(double));
  res[GFV_MODE_END_LOGP] = l;
  res[GFV_MODE_ITERS] = (double)t;
  res[GFV_MODE_EVALS] = (double)w->evals;
  res[GFV_MODE_END] = end;
  return GFV_OK;
}

/* ---- all paths ---------------------------------------------------------------------- */

static void work_free(mode_work *w) {
  free(w->eps), free(w->z), free(w->lp), free(w->H), free(w->cov), free(w->root), free(w->root_a);
  free(w->eig_work), free(w->x), free(w->g), free(w->x0), free(w->xcur), free(w->c), free(w->R);
  if (w->gtmp) gsl_vector_free(w->gtmp);
  if (w->y0) gsl_vector_free(w->y0);
}

static int work_alloc(const gfv_target *t, const gfv_mode_opts *o, mode_work *w) {
  const size_t d = t->dim, M = o->draws;
  memset(w, 0, sizeof *w);
  w->t = t, w->o = o, w->d = d, w->M = M;
  w->s0 = o->scale > 0.0 ? o->scale : 1.0;
  GFV_ALLOC(w->eps, M * d);
  GFV_ALLOC(w->z, M * d);
  GFV_ALLOC(w->lp, M);
  GFV_ALLOC(w->H, d * d);
  GFV_ALLOC(w->cov, d * d);
  GFV_ALLOC(w->root, d * d);
  GFV_ALLOC(w->root_a, d * d);
  GFV_ALLOC(w->eig_work, d * d + d);
  GFV_ALLOC(w->x, d);
  GFV_ALLOC(w->g, d);
  GFV_ALLOC(w->x0, d);
  GFV_ALLOC(w->xcur, d);
  GFV_ALLOC(w->c, d);
  GFV_ALLOC(w->R, d * d);
  w->gtmp = gsl_vector_alloc(d);
  w->y0 = gsl_vector_alloc(d);
  GFV_CHECK(w->gtmp && w->y0, GFV_ERR_MEMORY, "cannot allocate a vector of %zu numbers", d);
  const gfv_stream st = gfv_stream_make(o->seed, 0, GFV_PURPOSE_INIT_DRAWS);
  gfv_stream_normals(&st, 0, 0, M * d, w->eps);
  return GFV_OK;
}

/* This rank's paths: starts s0 .. s0 + n - 1 into res (n blocks). */
static int run_local(const gfv_target *t, const gfv_mode_opts *o, size_t s0, size_t n, double *res) {
  if (n == 0) return GFV_OK;
  mode_work w;
  gsl_multimin_fdfminimizer *m = NULL;
  int st = work_alloc(t, o, &w);
  if (!st) {
    m = gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, t->dim);
    if (!m) st = gfv_error_set(GFV_ERR_MEMORY, __FILE__, __LINE__, __func__,
                               "cannot allocate the L-BFGS minimizer (d = %zu)", t->dim);
  }
  for (size_t i = 0; !st && i < n; i++) st = run_path(&w, m, s0 + i, res + i * GFV_MODE_STRIDE(t->dim));
  if (m) gsl_multimin_fdfminimizer_free(m);
  work_free(&w);
  return st;
}

int gfv_init_find_modes(const gfv_target *t, gfv_comm *comm, const gfv_mode_opts *o, double **out) {
  const size_t d = t->dim, S = o->starts, stride = GFV_MODE_STRIDE(d);
  const int size = gfv_comm_size(comm), rank = gfv_comm_rank(comm);
  double *all = NULL;
  size_t *counts = NULL, *displs = NULL, s0 = 0, n = 0;
  *out = NULL;
  gfv_block_range(S, size, rank, &s0, &n);
  /* Two factors, so that gfv_calloc sees an overflowing product instead of a wrapped one. */
  int st = gfv_calloc(&all, S, stride * sizeof(double));
  if (!st) st = gfv_calloc(&counts, (size_t)size, sizeof(size_t));
  if (!st) st = gfv_calloc(&displs, (size_t)size, sizeof(size_t));
  if (!st) st = run_local(t, o, s0, n, all + s0 * stride);
  st = gfv_comm_agree(comm, st, NULL);
  if (!st) {
    for (int r = 0; r < size; r++) {
      size_t r0, rn;
      gfv_block_range(S, size, r, &r0, &rn);
      counts[r] = rn * stride, displs[r] = r0 * stride;
    }
    st = gfv_comm_allgatherv(comm, all + s0 * stride, n * stride, all, counts, displs);
  }
  free(counts), free(displs);
  if (st) {
    free(all);
    return st;
  }
  *out = all;
  return GFV_OK;
}
