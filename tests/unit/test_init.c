/* test_init.c - the initial particles (--init, src/solver/init*.c):
 *  - prior: exactly the original initialisation (bitwise);
 *  - mode on gauss: the mode is the mean and the Laplace covariance the target's (1e-6);
 *  - the finite-difference Hessian matches the analytic one, and a forced-FD search finds
 *    the same mode;
 *  - eight schools, centred (no mode: a funnel): the chosen Gaussian stays in the body
 *    (log tau > -5) with an ELBO near log Z, while the path ran down the neck;
 *    non-centred: the mode found matches an independent scipy optimisation;
 *  - gmm4: the particles are shared over the four modes;
 *  - the particles' covariances are init_var times the Laplace covariance (full and diag);
 *  - warm starts from a mixture.csv: the same K, more (split), fewer (heaviest kept), file
 *    weights or equal ones, diag file into a full run and back, and bad files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "linalg/linalg.h"
#include "rng/rng.h"
#include "solver/init.h"
#include "solver/solver_impl.h"
#include "targets/targets_impl.h"

static char plugdir[1024], tmpdir[256];

/* log Z of eight schools (tools/plugins/eight_schools_logz.py, by quadrature). */
#define EIGHT_SCHOOLS_LOGZ (-31.311)

static gfv_target *make_target(const char *spec, long dim, const char *arg) {
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  if (strncmp(spec, "plugin:", 7) == 0) snprintf(cfg.target, sizeof cfg.target, "plugin:%s/%s", plugdir, spec + 7);
  else snprintf(cfg.target, sizeof cfg.target, "%s", spec);
  snprintf(cfg.plugin_arg, sizeof cfg.plugin_arg, "%s", arg);
  cfg.dim = dim;
  gfv_target *t = NULL;
  int st = gfv_target_create_from_config(&cfg, &t);
  CHECK(st == GFV_OK && t, "target %s: %s", spec, gfv_error_message());
  return t;
}

/* The gauss target in d dimensions and its exact mean and covariance. */
static gfv_target *gauss(size_t d, const double **mean, const double **cov) {
  gfv_target *t = make_target("gauss", (long)d, "");
  if (t) gfv_target_gauss_moments(t, mean, cov);
  return t;
}

static gfv_mode_opts opts(size_t starts, double scale) {
  gfv_mode_opts o = {starts, scale, 1, GFV_INIT_MAX_ITER, GFV_INIT_DRAWS, 0};
  return o;
}

static double *find_modes(const gfv_target *t, const gfv_mode_opts *o) {
  gfv_comm *comm;
  gfv_comm_self(&comm);
  double *res = NULL;
  int st = gfv_init_find_modes(t, comm, o, &res);
  CHECK(st == GFV_OK && res, "find_modes: status %d: %s", st, gfv_error_message());
  gfv_comm_free(comm);
  return res;
}

/* The index of the best ELBO among the results. */
static size_t best_start(const double *res, size_t S, size_t d) {
  size_t b = 0;
  for (size_t s = 1; s < S; s++)
    if (res[s * GFV_MODE_STRIDE(d)] > res[b * GFV_MODE_STRIDE(d)]) b = s;
  return b;
}

/* A solver on target t with cfg (quiet), or NULL with the status in *st. */
static gfv_solver *make_solver(gfv_config *cfg, gfv_target *t, int *st) {
  gfv_comm *comm;
  gfv_comm_self(&comm);
  gfv_solver *s = NULL;
  cfg->quiet = 1;
  gfv_error_clear();
  *st = gfv_solver_create(cfg, t, comm, &s);
  if (*st) gfv_comm_free(comm);
  return s;
}

static void free_solver(gfv_solver *s) {
  if (!s) return;
  gfv_comm *c = s->comm;
  gfv_solver_free(s);
  gfv_comm_free(c);
}

static gfv_config base_config(long K) {
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  cfg.particles = K, cfg.samples = 4, cfg.iters = 0, cfg.eval_samples = 10, cfg.out_samples = 0;
  return cfg;
}

/* ---- prior --------------------------------------------------------------------------- */

static void test_prior_is_the_original(void) {
  gfv_target *t = make_target("gauss", 3, "");
  gfv_config cfg = base_config(5);
  cfg.seed = 17, cfg.init_scale = 2.5, cfg.init_var = 0.3;
  int st;
  gfv_solver *s = make_solver(&cfg, t, &st);
  CHECK(s, "solver: %s", gfv_error_message());
  gfv_particles p;
  gfv_particles_alloc(3, 5, 0, 5, &gfv_family_full, 17, &p);
  gfv_particles_init(&p, 2.5, 0.3);
  if (s) {
    CHECK(memcmp(p.mu, s->cur.mu, 15 * sizeof(double)) == 0, "means differ");
    CHECK(memcmp(p.P, s->cur.P, 45 * sizeof(double)) == 0, "precisions differ");
    CHECK(memcmp(p.logc, s->cur.logc, 5 * sizeof(double)) == 0, "log constants differ");
  }
  gfv_particles_free(&p);
  free_solver(s);
  gfv_target_free(t);
}

/* ---- mode: exact cases --------------------------------------------------------------- */

static void test_mode_gauss(void) {
  const size_t d = 5;
  const double *mean, *cov;
  gfv_target *t = gauss(d, &mean, &cov);
  gfv_mode_opts o = opts(3, 3.0);
  double *res = find_modes(t, &o);
  double cmax = 0.0;
  for (size_t i = 0; i < d * d; i++) cmax = fmax(cmax, fabs(cov[i]));
  for (size_t s = 0; res && s < o.starts; s++) {
    const double *b = res + s * GFV_MODE_STRIDE(d), *m = b + GFV_MODE_HEAD, *C = m + d, *e = C + d * d;
    CHECK(b[GFV_MODE_END] == GFV_PATH_CONVERGED || b[GFV_MODE_END] == GFV_PATH_STALLED,
          "start %zu ended %g", s, b[GFV_MODE_END]);
    for (size_t a = 0; a < d; a++) {
      CHECK_NEAR(e[a], mean[a], 1e-6, "end point = mean");
      CHECK_NEAR(m[a], mean[a], 1e-6, "best Gaussian's mean = mean");
    }
    for (size_t i = 0; i < d * d; i++) CHECK_NEAR(C[i], cov[i], 1e-6 * cmax, "Laplace covariance");
  }
  free(res);
  gfv_target_free(t);
}

/* Analytic Hessians against central differences of the gradient: banana (2-D) at a few
 * points, and eight schools (non-centred, d = 10) at a point and at its mode. */
static void test_fd_hessian_matches_analytic(void) {
  static const double bpts[3][2] = {{0.3, -1.2}, {-1.5, 2.0}, {0.0, 0.0}};
  gfv_target *b = make_target("banana", 0, "");
  double H[100], F[100];
  for (int i = 0; b && i < 3; i++) {
    gfv_init_neg_hessian(b, bpts[i], 0, H);
    gfv_init_neg_hessian(b, bpts[i], 1, F);
    for (int k = 0; k < 4; k++) CHECK_NEAR(F[k], H[k], 1e-6 * fmax(1.0, fabs(H[k])), "banana");
  }
  gfv_target_free(b);
  gfv_target *t = make_target("plugin:eight_schools.so", 0, "noncentered");
  if (!t) return;
  const double z[10] = {1.0, 0.5, -0.3, 0.2, 0.9, -1.1, 0.4, 0.0, 1.3, -0.7};
  gfv_init_neg_hessian(t, z, 0, H);
  gfv_init_neg_hessian(t, z, 1, F);
  for (int k = 0; k < 100; k++) CHECK_NEAR(F[k], H[k], 1e-6 * fmax(1.0, fabs(H[k])), "eight schools");
  /* The whole search with the Hessian forced to finite differences finds the same mode. */
  gfv_mode_opts o = opts(2, 1.0), ofd = o;
  ofd.force_fd = 1;
  double *ra = find_modes(t, &o), *rf = find_modes(t, &ofd);
  for (size_t s = 0; ra && rf && s < 2; s++) {
    const double *ea = ra + s * GFV_MODE_STRIDE(10) + GFV_MODE_HEAD + 110;
    const double *ef = rf + s * GFV_MODE_STRIDE(10) + GFV_MODE_HEAD + 110;
    for (int a = 0; a < 10; a++) CHECK_NEAR(ef[a], ea[a], 1e-6, "mode with FD Hessians");
    gfv_init_neg_hessian(t, ea, 0, H);
    gfv_init_neg_hessian(t, ea, 1, F);
    for (int k = 0; k < 100; k++) CHECK_NEAR(F[k], H[k], 1e-6 * fmax(1.0, fabs(H[k])), "at the mode");
  }
  free(ra), free(rf);
  gfv_target_free(t);
}

/* ---- mode: eight schools ------------------------------------------------------------- */

/* ELBO of N(m, C) with n fresh draws. */
static double fresh_elbo(const gfv_target *t, const double *m, const double *C, size_t n) {
  const size_t d = t->dim;
  double *eps = calloc(n * d, sizeof(double)), *z = calloc(n * d, sizeof(double));
  double *lp = calloc(n, sizeof(double)), root[100], L[100], Pm[100], cov[100], work[110], logdet, elbo;
  long evals;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 4242);
  gfv_rng_gaussian_fill(r, n * d, eps);
  gsl_rng_free(r);
  /* A root of C: the Laplace routine on C^-1 (nothing clips: C is already clipped). */
  memcpy(L, C, d * d * sizeof(double));
  gfv_chol(d, L);
  gfv_chol_inverse(d, L, Pm);
  gfv_init_laplace(d, Pm, 1.0, cov, root, &logdet, work);
  gfv_init_gaussian_elbo(t, n, eps, m, root, logdet, z, lp, &elbo, &evals);
  free(eps), free(z), free(lp);
  return elbo;
}

static void test_mode_eight_schools_centered(void) {
  gfv_target *t = make_target("plugin:eight_schools.so", 0, "centered");
  if (!t) return;
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  gfv_mode_opts o = opts((size_t)cfg.init_starts, cfg.init_scale); /* what --init=mode uses */
  double *res = find_modes(t, &o);
  if (!res) return;
  const size_t d = 10, b = best_start(res, o.starts, d);
  const double *best = res + b * GFV_MODE_STRIDE(d), *m = best + GFV_MODE_HEAD;
  double elbo = fresh_elbo(t, m, m + d, 20000);
  printf("# centred eight schools: chosen log tau %.3f, ELBO %.3f (%zu draws: %.3f), log Z %.3f\n",
         m[1], best[GFV_MODE_ELBO], (size_t)20000, elbo, EIGHT_SCHOOLS_LOGZ);
  CHECK(m[1] > -5.0, "chosen log tau %g in the funnel neck", m[1]);
  /* 6.8 nats short with the defaults: the Laplace Gaussians of a funnel are that far from
   * the best single Gaussian (1.3 nats short); the flow does the rest. */
  CHECK(elbo > EIGHT_SCHOOLS_LOGZ - 8.0 && elbo < EIGHT_SCHOOLS_LOGZ + 0.05,
        "ELBO of the chosen Gaussian %g, log Z %g", elbo, EIGHT_SCHOOLS_LOGZ);
  /* The paths themselves ran down the neck: the ELBO, not the log density, chose. */
  int necks = 0;
  for (size_t s = 0; s < o.starts; s++) {
    const double *r = res + s * GFV_MODE_STRIDE(d), *e = r + GFV_MODE_HEAD + d + d * d;
    CHECK(r[GFV_MODE_END] != GFV_PATH_CONVERGED, "start %zu converged: the centred model has no mode", s);
    if (r[GFV_MODE_END] == GFV_PATH_NECK && e[1] < m[1] - 1.0 && r[GFV_MODE_END_LOGP] > best[GFV_MODE_LOGP])
      necks++;
  }
  CHECK(necks >= 1, "no path ended down the neck (%d)", necks);
  free(res);
  gfv_target_free(t);
}

/* sqrt((x - m)^T H (x - m)) with H minus the Hessian at the mode m: the distance in the
 * metric of the search's stopping rule, which ends a path when the gradient's norm in the
 * whitened coordinates of the Laplace covariance, sqrt(g^T H^-1 g) = |x - m|_H to first
 * order, is below 1e-6 (INIT_GTOL).  A coordinate's error is then up to 1e-6 of its
 * Laplace standard deviation (mu's is 4.9 here), not 1e-6 absolute. */
static double mode_distance(const gfv_target *t, const double *m, const double *x) {
  enum { D = 10 };
  double H[D * D], dx[D], q = 0;
  if (gfv_init_neg_hessian(t, m, 0, H) != 0) return NAN;
  for (int a = 0; a < D; a++) dx[a] = x[a] - m[a];
  for (int a = 0; a < D; a++)
    for (int b = 0; b < D; b++) q += dx[a] * H[a * D + b] * dx[b];
  return sqrt(fmax(q, 0.0));
}

/* The reference mode, by scipy.optimize (BFGS with the analytic gradient, 20 starts, to
 * |grad| 3e-8) on the same density written in Python:
 *   negl(z) = -[-mu^2/50 - log(2 pi 25)/2 + log(2/(5 pi)) - log1p(e^(2u)/25) + u
 *              + sum_j (-log(2 pi)/2 - eta_j^2/2 - log(2 pi s_j^2)/2 - (y_j - mu - e^u eta_j)^2/(2 s_j^2))]
 * with y = 28 8 -3 7 -1 1 18 12, s = 15 10 16 11 9 11 10 18. */
static void test_mode_eight_schools_noncentered(void) {
  static const double ref[10] = {1.432926103268,  3.366425135061,  0.723107589839,  0.202524690349,
                                 -0.117242051867, 0.167931765404,  -0.076578639011, -0.013059289661,
                                 0.510918807908,  0.263144620561};
  const double ref_logp = -40.05649292527046;
  gfv_target *t = make_target("plugin:eight_schools.so", 0, "noncentered");
  if (!t) return;
  gfv_mode_opts o = opts(4, 3.0);
  double *res = find_modes(t, &o);
  int found = 0;
  for (size_t s = 0; res && s < o.starts; s++) {
    const double *r = res + s * GFV_MODE_STRIDE(10), *e = r + GFV_MODE_HEAD + 110;
    if (r[GFV_MODE_END] != GFV_PATH_CONVERGED && r[GFV_MODE_END] != GFV_PATH_STALLED) continue;
    found++;
    /* The whitening is the Laplace covariance of the last restart's iterate, not of the
     * mode, so the two norms differ by a factor near 1 (1.04 measured): bound 1.5e-6. */
    double dist = mode_distance(t, ref, e);
    CHECK(dist <= 1.5e-6, "path %zu ended %.3g from the mode in its Laplace metric", s, dist);
    CHECK_NEAR(r[GFV_MODE_END_LOGP], ref_logp, 1e-9, "log density at the mode");
  }
  CHECK(found == 4, "%d of 4 paths reached the mode", found);
  free(res);
  gfv_target_free(t);
}

/* ---- mode: placement ----------------------------------------------------------------- */

static void test_mode_gmm4_shares_particles(void) {
  gfv_target *t = make_target("gmm4", 0, "");
  gfv_config cfg = base_config(20);
  snprintf(cfg.init, sizeof cfg.init, "mode");
  cfg.init_starts = 16, cfg.init_scale = 1.0;
  int st, count[4] = {0};
  gfv_solver *s = make_solver(&cfg, t, &st);
  CHECK(s, "solver: %s", gfv_error_message());
  for (size_t k = 0; s && k < 20; k++) {
    const double *mu = s->cur.mu + 2 * k;
    int q = (mu[0] > 0) * 2 + (mu[1] > 0);
    CHECK(fabs(fabs(mu[0]) - 3) < 2.5 && fabs(fabs(mu[1]) - 3) < 2.5, "particle %zu at (%g, %g)", k, mu[0], mu[1]);
    CHECK_NEAR(s->cur.logw[k], -log(20.0), 1e-15, "equal weights");
    count[q]++;
  }
  for (int q = 0; q < 4; q++) CHECK(count[q] == 5, "mode %d has %d particles, want 5", q, count[q]);
  free_solver(s);
  gfv_target_free(t);
}

/* Particles around the gauss mode: covariances init_var Sigma (full), variances
 * init_var / (Sigma^-1)_tt (diag), and the means spread (not all at the mode). */
static void test_mode_places_particles(void) {
  const size_t d = 3;
  const double *mean, *cov;
  gfv_target *t = gauss(d, &mean, &cov);
  double Pt[9], L[9];
  memcpy(L, cov, sizeof L);
  gfv_chol(d, L);
  gfv_chol_inverse(d, L, Pt);
  for (int diag = 0; diag < 2; diag++) {
    gfv_config cfg = base_config(4);
    snprintf(cfg.init, sizeof cfg.init, "mode");
    snprintf(cfg.family, sizeof cfg.family, "%s", diag ? "diag" : "full");
    cfg.init_var = 0.5, cfg.init_scale = 1.0;
    int st;
    gfv_solver *s = make_solver(&cfg, t, &st);
    CHECK(s, "solver: %s", gfv_error_message());
    for (size_t k = 0; s && k < 4; k++) {
      const double *P = s->cur.P + k * s->psize;
      double spread = gfv_sqdist(d, s->cur.mu + k * d, mean);
      CHECK(spread > 1e-6, "particle %zu at the mode", k);
      for (size_t a = 0; a < d; a++)
        for (size_t b = 0; b < d; b++) {
          if (diag && a != b) continue;
          double want = Pt[a * d + b] / 0.5, got = diag ? P[a] : P[a * d + b];
          CHECK_NEAR(got, want, 1e-6 * fabs(Pt[0]) / 0.5, "precision of init_var Sigma");
        }
    }
    free_solver(s);
  }
  gfv_target_free(t);
}

/* ---- warm start ---------------------------------------------------------------------- */

/* A d = 2 full file: weights 0.5, 0.3, 0.2 (given unnormalised: x 2). */
static const double wfile[3] = {1.0, 0.6, 0.4};
static const double mfile[3][2] = {{1, 2}, {-3, 0.5}, {4, -4}};
static const double cfile[3][4] = {{1, 0.3, 0.3, 2}, {0.5, -0.1, -0.1, 0.25}, {3, 0, 0, 1}};

static void write_full(const char *path) {
  FILE *f = fopen(path, "w");
  fprintf(f, "weight,mu_1,mu_2,cov_1_1,cov_1_2,cov_2_1,cov_2_2\n");
  for (int j = 0; j < 3; j++)
    fprintf(f, "%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", wfile[j], mfile[j][0], mfile[j][1],
            cfile[j][0], cfile[j][1], cfile[j][2], cfile[j][3]);
  fclose(f);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

/* Covariance of local particle k (full family). */
static void particle_cov(const gfv_solver *s, size_t k, double *C) {
  gfv_chol_inverse(s->d, s->cur.L + k * s->psize, C);
}

static gfv_solver *warm(const char *path, long K, double wstep, const char *family, int *st) {
  static gfv_target *t;
  if (!t) t = make_target("gauss", 2, ""); /* any 2-D target: kept for the whole program */
  gfv_config cfg = base_config(K);
  snprintf(cfg.init, sizeof cfg.init, "%s", path);
  snprintf(cfg.family, sizeof cfg.family, "%s", family);
  cfg.weight_step = wstep;
  return make_solver(&cfg, t, st);
}

static void test_warm_same_k(void) {
  char path[300];
  snprintf(path, sizeof path, "%s/full.csv", tmpdir);
  write_full(path);
  int st;
  gfv_solver *s = warm(path, 3, 0.1, "full", &st);
  CHECK(s, "solver: %s", gfv_error_message());
  for (size_t k = 0; s && k < 3; k++) {
    double C[4];
    particle_cov(s, k, C);
    CHECK_NEAR(exp(s->cur.logw[k]), wfile[k] / 2.0, 1e-15, "weight");
    for (int a = 0; a < 2; a++) CHECK_NEAR(s->cur.mu[k * 2 + a], mfile[k][a], 0, "mean");
    for (int i = 0; i < 4; i++) CHECK_NEAR(C[i], cfile[k][i], 1e-13, "covariance");
  }
  free_solver(s);
  /* --weight-step=0: equal weights. */
  s = warm(path, 3, 0.0, "full", &st);
  for (size_t k = 0; s && k < 3; k++) CHECK_NEAR(s->cur.logw[k], -log(3.0), 1e-15, "equal weight");
  free_solver(s);
}

/* K = 5 from 3: the heaviest (0.5) splits into 0.25 + 0.25, then the heaviest left (0.3)
 * into 0.15 + 0.15; each pair is centred on its parent's mean, with its covariance. */
static void test_warm_split(void) {
  char path[300];
  snprintf(path, sizeof path, "%s/full.csv", tmpdir);
  write_full(path);
  int st;
  gfv_solver *s = warm(path, 5, 0.1, "full", &st);
  CHECK(s, "solver: %s", gfv_error_message());
  if (!s) return;
  static const double want_w[5] = {0.25, 0.15, 0.2, 0.25, 0.15};
  static const int parent[5] = {0, 1, 2, 0, 1};
  double wsum = 0.0;
  for (size_t k = 0; k < 5; k++) {
    double C[4];
    wsum += exp(s->cur.logw[k]);
    CHECK_NEAR(exp(s->cur.logw[k]), want_w[k], 1e-15, "split weight");
    particle_cov(s, k, C);
    for (int i = 0; i < 4; i++) CHECK_NEAR(C[i], cfile[parent[k]][i], 1e-13, "split covariance");
  }
  CHECK_NEAR(wsum, 1.0, 1e-15, "weights sum to 1");
  for (int pair = 0; pair < 2; pair++) { /* components pair and pair + 3 */
    const double *a = s->cur.mu + 2 * pair, *b = s->cur.mu + 2 * (pair + 3);
    for (int t = 0; t < 2; t++) CHECK_NEAR(0.5 * (a[t] + b[t]), mfile[pair][t], 1e-14, "pair centred on parent");
    CHECK(gfv_sqdist(2, a, b) > 1e-4, "pair %d not split apart", pair);
  }
  CHECK(memcmp(s->cur.mu + 4, mfile[2], 2 * sizeof(double)) == 0, "unsplit component moved");
  free_solver(s);
}

/* K = 2 from 3: the two heaviest (0.5, 0.3), renormalised to 0.625, 0.375. */
static void test_warm_fewer(void) {
  char path[300];
  snprintf(path, sizeof path, "%s/full.csv", tmpdir);
  write_full(path);
  int st;
  gfv_solver *s = warm(path, 2, 0.1, "full", &st);
  CHECK(s, "solver: %s", gfv_error_message());
  for (size_t k = 0; s && k < 2; k++) {
    CHECK_NEAR(exp(s->cur.logw[k]), k == 0 ? 0.625 : 0.375, 1e-15, "kept weight");
    for (int a = 0; a < 2; a++) CHECK_NEAR(s->cur.mu[k * 2 + a], mfile[k][a], 0, "kept mean");
  }
  free_solver(s);
}

/* A diag file into a full run: diagonal matrices; a full file into a diag run: the
 * variances 1 / (Sigma^-1)_tt. */
static void test_warm_families(void) {
  char path[300], fpath[300];
  snprintf(path, sizeof path, "%s/diag.csv", tmpdir);
  write_text(path, "weight,mu_1,mu_2,var_1,var_2\n1,0.5,-0.5,2,0.25\n1,3,3,1,4\n");
  int st;
  gfv_solver *s = warm(path, 2, 0.0, "full", &st);
  CHECK(s, "diag file, full run: %s", gfv_error_message());
  static const double var[2][2] = {{2, 0.25}, {1, 4}};
  for (size_t k = 0; s && k < 2; k++) {
    const double *P = s->cur.P + k * 4;
    CHECK_NEAR(P[0], 1.0 / var[k][0], 1e-15, "precision 1,1");
    CHECK_NEAR(P[3], 1.0 / var[k][1], 1e-15, "precision 2,2");
    CHECK(P[1] == 0 && P[2] == 0, "off-diagonal %g %g", P[1], P[2]);
  }
  free_solver(s);
  s = warm(path, 2, 0.0, "diag", &st);
  for (size_t k = 0; s && k < 2; k++)
    for (int a = 0; a < 2; a++) CHECK_NEAR(s->cur.P[k * 2 + a], 1.0 / var[k][a], 1e-15, "diag into diag");
  free_solver(s);
  snprintf(fpath, sizeof fpath, "%s/full.csv", tmpdir);
  write_full(fpath);
  s = warm(fpath, 3, 0.0, "diag", &st);
  CHECK(s, "full file, diag run: %s", gfv_error_message());
  for (size_t k = 0; s && k < 3; k++) {
    const double *c = cfile[k], det = c[0] * c[3] - c[1] * c[2];
    CHECK_NEAR(s->cur.P[k * 2], c[3] / det, 1e-13, "(Sigma^-1)_11");
    CHECK_NEAR(s->cur.P[k * 2 + 1], c[0] / det, 1e-13, "(Sigma^-1)_22");
  }
  free_solver(s);
}

static void expect_bad(const char *name, const char *text, const char *family, const char *fragment) {
  char path[300];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  write_text(path, text);
  int st;
  gfv_solver *s = warm(path, 2, 0.0, family, &st);
  CHECK(!s && st == GFV_ERR_INPUT, "%s: status %d, want %d", name, st, GFV_ERR_INPUT);
  CHECK(strstr(gfv_error_message(), path) && strstr(gfv_error_message(), fragment),
        "%s: message '%s' lacks the path or '%s'", name, gfv_error_message(), fragment);
  CHECK(!strchr(gfv_error_message(), '\n'), "%s: more than one line", name);
  free_solver(s);
}

static void test_warm_bad_files(void) {
  expect_bad("ragged.csv", "weight,mu_1,mu_2,var_1,var_2\n1,0,0,1,1\n1,0,0,1\n", "full", "columns");
  expect_bad("dim.csv", "weight,mu_1,var_1\n1,0,1\n", "full", "d = 2");
  expect_bad("notpd.csv", "w,m1,m2,c11,c12,c21,c22\n1,0,0,1,2,2,1\n", "full", "not positive definite");
  expect_bad("weight.csv", "w,m1,m2,c11,c12,c21,c22\n0,0,0,1,0,0,1\n", "full", "weight");
  expect_bad("negvar.csv", "weight,mu_1,mu_2,var_1,var_2\n1,0,0,1,-1\n", "diag", "variance 2");
  expect_bad("text.csv", "weight,mu_1,mu_2,var_1,var_2\n1,0,zero,1,1\n", "full", "text.csv");
  /* 7 columns are a full d = 2 file; the header says so, so a d = 3 run refuses it. */
  char path[300];
  snprintf(path, sizeof path, "%s/full.csv", tmpdir);
  write_full(path);
  gfv_target *t3 = make_target("gauss", 3, "");
  gfv_config cfg = base_config(2);
  snprintf(cfg.init, sizeof cfg.init, "%s", path);
  int st;
  gfv_solver *s = make_solver(&cfg, t3, &st);
  CHECK(!s && st == GFV_ERR_INPUT && strstr(gfv_error_message(), "of covariances do not hold a mixture in d = 3"),
        "d = 3 run from a d = 2 full file: status %d: %s", st, gfv_error_message());
  free_solver(s);
  gfv_target_free(t3);
  s = warm(tmpdir, 2, 0.0, "full", &st); /* a directory */
  CHECK(!s && st == GFV_ERR_INPUT, "a directory: status %d", st);
  free_solver(s);
}

int main(void) {
  gfv_error_install_gsl_handler();
  const char *build = getenv("GFV_BUILD");
  snprintf(plugdir, sizeof plugdir, "%s/plugins", build && *build ? build : "build");
  char probe[1100];
  snprintf(probe, sizeof probe, "%s/eight_schools.so", plugdir);
  if (access(probe, R_OK) != 0) {
    printf("FAIL setup: %s not found (make plugins builds it)\n", probe);
    return 1;
  }
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/gfv_test_init_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    printf("FAIL setup: cannot create a temporary directory\n");
    return 1;
  }
  RUN(test_prior_is_the_original);
  RUN(test_mode_gauss);
  RUN(test_fd_hessian_matches_analytic);
  RUN(test_mode_eight_schools_centered);
  RUN(test_mode_eight_schools_noncentered);
  RUN(test_mode_gmm4_shares_particles);
  RUN(test_mode_places_particles);
  RUN(test_warm_same_k);
  RUN(test_warm_split);
  RUN(test_warm_fewer);
  RUN(test_warm_families);
  RUN(test_warm_bad_files);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
  return harness_report();
}
