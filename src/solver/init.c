/* init.c - the initial particles (--init; see init.h): the entry point, and the placement
 * of the particles around the Gaussians the mode search (init_mode.c) found.
 *
 * Placement (--init=mode).  The paths' best Gaussians are ranked by ELBO.  One whose mean
 * lies in the typical set of a better one's Gaussian and the better one's mean in its own
 * (squared Mahalanobis distance <= d both ways, the mean of chi^2_d) is the same optimum
 * found twice and is dropped; so is one more than INIT_ELBO_MARGIN nats below the best
 * (under 1% of the best one's mass).  The K particles are shared over the distinct
 * Gaussians kept in proportion to exp(ELBO) -- for a Gaussian that fits its mode, exp(ELBO)
 * estimates the mass of that mode -- with at least one each (the best K when there are more
 * than K), so every mode the starts found is covered.  Particle k around N(m, Sigma): mean
 * m + init_scale L eps_k (L L^T = Sigma, eps_k from particle k's own stream: init_scale is
 * in Laplace standard deviations), covariance init_var Sigma; in the diagonal family the
 * variances init_var / (Sigma^-1)_tt, the diagonal Gaussian nearest N(m, init_var Sigma) in
 * KL(q || p), which the flow minimises (the marginal variances Sigma_tt would overshoot by
 * Sigma_tt (Sigma^-1)_tt in correlated directions).  Weights are equal: the particles are
 * already shared by mass. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "rng/stream.h"
#include "solver/init.h"
#include "solver/solver_impl.h"

#define INIT_ELBO_MARGIN 5.0 /* nats below the best ELBO beyond which a Gaussian is dropped */

/* The Gaussians kept and their share of the particles. */
typedef struct {
  size_t n;
  size_t *idx;      /* start index of each, best first */
  size_t *count;    /* particles of each */
  double *Lc;       /* n x d x d: lower Cholesky factors of the covariances */
} kept_set;

static void kept_free(kept_set *k) {
  free(k->idx), free(k->count), free(k->Lc);
  memset(k, 0, sizeof *k);
}

/* (x - m)^T Sigma^-1 (x - m) with Sigma = L L^T; y is d scratch. */
static double maha2(size_t d, const double *L, const double *x, const double *m, double *y) {
  for (size_t a = 0; a < d; a++) y[a] = x[a] - m[a];
  cblas_dtrsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, (int)d, L, (int)d, y, 1);
  return cblas_ddot((int)d, y, 1, y, 1);
}

/* The distinct Gaussians among the results, best first (see the top of the file). */
static int choose(const double *res, size_t S, size_t d, size_t K, kept_set *k) {
  const size_t stride = GFV_MODE_STRIDE(d), dd = d * d;
  size_t *order = NULL;
  double *y = NULL;
  int st = GFV_OK;
  memset(k, 0, sizeof *k);
  GFV_CALL_GOTO(st, gfv_calloc(&order, S, sizeof(size_t)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&y, d, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&k->idx, S, sizeof(size_t)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&k->count, S, sizeof(size_t)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&k->Lc, S * dd, sizeof(double)), done);
  for (size_t i = 0; i < S; i++) { /* insertion sort by ELBO, ties by start: S is small */
    size_t j = i;
    for (; j > 0 && res[order[j - 1] * stride + GFV_MODE_ELBO] < res[i * stride + GFV_MODE_ELBO]; j--)
      order[j] = order[j - 1];
    order[j] = i;
  }
  const double best = res[order[0] * stride + GFV_MODE_ELBO];
  for (size_t r = 0; r < S && k->n < K; r++) {
    const double *b = res + order[r] * stride, *m = b + GFV_MODE_HEAD;
    if (!isfinite(b[GFV_MODE_ELBO]) || b[GFV_MODE_ELBO] < best - INIT_ELBO_MARGIN) break;
    double *L = k->Lc + k->n * dd;
    memcpy(L, m + d, dd * sizeof(double));
    if (gfv_chol(d, L)) continue; /* cannot happen: clipped eigenvalues; never use it */
    int dup = 0;
    for (size_t j = 0; j < k->n && !dup; j++) {
      const double *mj = res + k->idx[j] * stride + GFV_MODE_HEAD, *Lj = k->Lc + j * dd;
      dup = maha2(d, L, mj, m, y) <= (double)d && maha2(d, Lj, m, mj, y) <= (double)d;
    }
    if (!dup) k->idx[k->n++] = order[r];
  }
done:
  free(order), free(y);
  if (st) kept_free(k);
  return st;
}

/* Shares K >= k->n particles: one each, the rest in proportion to exp(ELBO) by largest
 * remainders (ties to the better Gaussian). */
static void share(const double *res, size_t d, size_t K, kept_set *k) {
  const size_t stride = GFV_MODE_STRIDE(d), n = k->n, R = K - n;
  const double best = res[k->idx[0] * stride + GFV_MODE_ELBO];
  double W = 0.0;
  for (size_t i = 0; i < n; i++) W += exp(res[k->idx[i] * stride + GFV_MODE_ELBO] - best);
  size_t given = 0;
  for (size_t i = 0; i < n; i++) {
    double q = (double)R * exp(res[k->idx[i] * stride + GFV_MODE_ELBO] - best) / W;
    k->count[i] = 1 + (size_t)floor(q);
    given += k->count[i] - 1;
  }
  for (; given < R; given++) { /* the largest remainders */
    size_t arg = 0;
    double top = -1.0;
    for (size_t i = 0; i < n; i++) {
      double q = (double)R * exp(res[k->idx[i] * stride + GFV_MODE_ELBO] - best) / W;
      double rem = q - (double)(k->count[i] - 1);
      if (rem > top) top = rem, arg = i;
    }
    k->count[arg]++;
  }
}

/* This rank's particles around the kept Gaussians. */
static int place(gfv_solver *s, const double *res, const kept_set *k) {
  const size_t d = s->d, dd = d * d, stride = GFV_MODE_STRIDE(d);
  const double scale = s->cfg->init_scale, var = s->cfg->init_var;
  gfv_particles *p = &s->cur;
  double *P = NULL, *Pf = NULL, *Lf = NULL, *eps = NULL; /* Pf, Lf: P in the run's family */
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&P, dd, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&Pf, dd, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&Lf, dd, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&eps, d, sizeof(double)), done);
  size_t g = 0, first = 0, have = (size_t)-1; /* Gaussian g: particles first .. first + count[g] - 1 */
  for (size_t j = 0; j < p->kloc; j++) {
    const size_t kk = p->k0 + j;
    while (kk >= first + k->count[g]) first += k->count[g++];
    const double *m = res + k->idx[g] * stride + GFV_MODE_HEAD, *Lc = k->Lc + g * dd;
    if (g != have) { /* the precision of init_var Sigma, Sigma^-1 / init_var, and its factor */
      if (gfv_chol_inverse(d, Lc, P) != 0)
        GFV_ERROR_GOTO(st, done, GFV_ERR_NUMERIC, "--init=mode: cannot invert the covariance found");
      for (size_t i = 0; i < dd; i++) P[i] /= var;
      if (p->fam->from_precision(p->fam, d, P, Pf, Lf) != 0)
        GFV_ERROR_GOTO(st, done, GFV_ERR_NUMERIC,
                       "--init=mode: the precision of the covariance found is not positive definite "
                       "(is --init-var=%g too small?)", var);
      have = g;
    }
    double *mu = p->mu + j * d, *Pj = p->P + j * p->psize, *Lj = p->L + j * p->psize;
    gfv_stream rs = gfv_particles_stream(p, j, GFV_PURPOSE_INIT); /* as for --init=prior */
    gfv_stream_normals(&rs, 0, 0, d, eps);
    cblas_dtrmv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, (int)d, Lc, (int)d, eps, 1);
    for (size_t a = 0; a < d; a++) mu[a] = m[a] + scale * eps[a];
    memcpy(Pj, Pf, p->psize * sizeof(double));
    memcpy(Lj, Lf, p->psize * sizeof(double));
    p->logw[j] = -log((double)p->K);
  }
  gfv_particles_update_logc(p);
done:
  free(P), free(Pf), free(Lf), free(eps);
  return st;
}

/* One line for the log: how the paths ended and what was kept. */
static void describe(const double *res, size_t S, size_t d, const kept_set *k, char *msg, size_t n) {
  const size_t stride = GFV_MODE_STRIDE(d);
  size_t ends[GFV_PATH_STALLED + 1] = {0};
  double evals = 0.0;
  for (size_t i = 0; i < S; i++) {
    int e = (int)res[i * stride + GFV_MODE_END];
    if (e >= 0 && e <= GFV_PATH_STALLED) ends[e]++;
    evals += res[i * stride + GFV_MODE_EVALS];
  }
  const double *b = res + k->idx[0] * stride;
  snprintf(msg, n,
           "mode: %zu start%s (%zu at a mode, %zu in a funnel neck, %zu at the iteration limit, %zu "
           "stalled, %zu failed), %zu distinct Gaussian%s kept, best ELBO %.6g (log density %.6g "
           "at its centre), %.0f target evaluations",
           S, S == 1 ? "" : "s", ends[GFV_PATH_CONVERGED], ends[GFV_PATH_NECK], ends[GFV_PATH_MAXITER],
           ends[GFV_PATH_STALLED], ends[GFV_PATH_FAILED], k->n, k->n == 1 ? "" : "s",
           b[GFV_MODE_ELBO], b[GFV_MODE_LOGP], evals);
}

/* Collective: the mode search, then this rank's particles. */
static int init_mode(gfv_solver *s, char *msg, size_t n) {
  const gfv_config *cfg = s->cfg;
  gfv_target *t = s->target;
  if (t->begin_iteration) t->begin_iteration(t, -1, (unsigned long)cfg->seed); /* all the data */
  gfv_mode_opts o = {(size_t)cfg->init_starts, cfg->init_scale, (unsigned long)cfg->seed,
                     GFV_INIT_MAX_ITER, GFV_INIT_DRAWS, 0};
  double *res = NULL;
  GFV_CALL(gfv_init_find_modes(t, s->comm, &o, &res));
  /* From here every rank works on the same gathered numbers. */
  kept_set k;
  int st = choose(res, o.starts, s->d, s->K, &k);
  if (!st && k.n == 0)
    st = gfv_error_set(GFV_ERR_NUMERIC, __FILE__, __LINE__, __func__,
                       "--init=mode: none of the %zu starts found a finite log density with a "
                       "finite Gaussian around it; check the model, or use --init=prior (perhaps "
                       "with a smaller --init-scale)",
                       o.starts);
  if (!st) {
    share(res, s->d, s->K, &k);
    st = place(s, res, &k);
    describe(res, o.starts, s->d, &k, msg, n);
  }
  kept_free(&k);
  free(res);
  return st;
}

/* --init=target: each particle's mean from the target's init_mean, covariance init_var I. */
static int init_target(gfv_solver *s, char *msg, size_t n) {
  gfv_particles *p = &s->cur;
  const gfv_target *t = s->target;
  GFV_CHECK(t->init_mean, GFV_ERR_USAGE,
            "--init=target: --target=%s has no starting point of its own (bnn has); use "
            "--init=prior or --init=mode", t->name);
  for (size_t j = 0; j < p->kloc; j++) {
    GFV_CALL(t->init_mean(t, (unsigned long)s->cfg->seed, p->k0 + j, p->mu + j * p->d));
    p->fam->init(p->fam, p->d, s->cfg->init_var, p->P + j * p->psize, p->L + j * p->psize);
    p->logw[j] = -log((double)p->K);
  }
  gfv_particles_update_logc(p);
  snprintf(msg, n, "%zu particles at the %s target's own starting points", p->K, t->name);
  return GFV_OK;
}

int gfv_solver_init_particles(gfv_solver *s) {
  const gfv_config *cfg = s->cfg;
  if (strcmp(cfg->init, "prior") == 0) { /* exactly the original initialisation */
    gfv_particles_init(&s->cur, cfg->init_scale, cfg->init_var);
    return GFV_OK;
  }
  const double t0 = gfv_comm_wtime();
  char msg[768] = "";
  int st;
  if (!cfg->init[0])
    st = gfv_error_set(GFV_ERR_USAGE, __FILE__, __LINE__, __func__,
                       "--init: must not be empty (use prior, mode or the path of a mixture.csv)");
  else if (strcmp(cfg->init, "mode") == 0)
    st = init_mode(s, msg, sizeof msg);
  else if (strcmp(cfg->init, "target") == 0)
    st = init_target(s, msg, sizeof msg);
  else
    st = gfv_init_from_file(s, cfg->init, msg, sizeof msg);
  st = gfv_comm_agree(s->comm, st, NULL);
  if (!st && s->rank == 0 && !cfg->quiet) gfv_log(s, GFV_LOG_INFO, "init: %s; %.3f s", msg, gfv_comm_wtime() - t0);
  return st;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option init_options[] = {
    {.name = "seed", .type = OPT_LONG, OPT_FIELD(seed), .def = "1", .bound = BOUND_GE, .lo = 0,
     .role = ROLE_PROBLEM,
     .help = "master random seed; particle k's stream derives from (seed, k)"},
    {.name = "init-scale", .type = OPT_DOUBLE, OPT_FIELD(init_scale), .def = "3", .bound = BOUND_GE,
     .role = ROLE_INIT,
     .lo = 0, .help = "initial means drawn from N(0, init_scale^2 I); with --init=mode, the "
                      "spread of the means in standard deviations of the Laplace covariance "
                      "(and the starts' spread)"},
    {.name = "init-var", .type = OPT_DOUBLE, OPT_FIELD(init_var), .def = "1", .bound = BOUND_GT,
     .role = ROLE_INIT,
     .lo = 0, .help = "initial covariances init_var * I; with --init=mode, init_var times the "
                      "Laplace covariance"},
    {.name = "init", .type = OPT_STRING, OPT_FIELD(init), .metavar = "SPEC",
     .def = GFV_INIT_DEFAULT,
     .role = ROLE_INIT,
     .help = "initial particles: prior = means ~ N(0, init_scale^2 I), covariances init_var I; "
             "mode = around the best Gaussian found by L-BFGS from --init-starts starts "
             "(Pathfinder-style ELBO choice), means spread by init_scale of its standard "
             "deviations, covariances init_var times it; target = the model's own start "
             "(bnn: SVGD's), covariances init_var I; FILE = warm start from a mixture.csv "
             "of an earlier fit (any K, full or diag); default prior, mode for stan: targets"},
    /* At most 10^6 paths (each an L-BFGS search: days of work before that), so that the
     * results' S x stride doubles cannot overflow a size_t. */
    {.name = "init-starts", .type = OPT_LONG, OPT_FIELD(init_starts), .def = "4",
     .bound = BOUND_BETWEEN, .role = ROLE_INIT,
     .lo = 1, .hi = 1e6, .help = "--init=mode: L-BFGS starts drawn from N(0, init_scale^2 I), shared out "
                      "over the ranks"},
};
GFV_OPTION_TABLE(gfv_options_init, init_options);
