/* test_layout.c - the two layouts of docs/method.md section 9 in one process: from the
 * same particles and streams they must give the same estimates (the params layout's fused
 * kernel against the samples layout's two phases; the samples layout in ranges of points
 * against all at once), on a Gaussian target with both estimators and both families, and
 * on a bounded support (samples outside left out, the support barrier, the flags); and the
 * rule behind --layout=auto.  The sums are the same, in another order: 1e-10 relative. */
#include <stdlib.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "harness.h"
#include "solver/solver_impl.h"

/* A standard normal cut at z_1 = -0.5: log density -inf below (a bounded support). */
static int cut_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                    double *hess) {
  const size_t d = t->dim;
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (size_t a = 0; a < d; a++) s += z[i * d + a] * z[i * d + a];
    logp[i] = z[i * d] < -0.5 ? -INFINITY : -0.5 * s;
    for (size_t a = 0; grad && a < d; a++) grad[i * d + a] = -z[i * d + a];
    for (size_t a = 0; hess && a < d * d; a++) hess[i * d * d + a] = a % (d + 1) == 0 ? -1.0 : 0.0;
  }
  return 0;
}
static gfv_target cut_target = {.name = "cut", .dim = 3, .has_hessian = 1, .eval = cut_eval};

/* Largest difference over n numbers relative to the largest magnitude (at least 1). */
static double rel_diff(size_t n, const double *a, const double *b) {
  double scale = 1, diff = 0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
  for (size_t i = 0; i < n; i++)
    diff = fmax(diff, a[i] == b[i] ? 0 : isfinite(a[i] - b[i]) ? fabs(a[i] - b[i]) : INFINITY);
  return diff / scale;
}

static void compare(const gfv_solver *a, const gfv_estimate *ea, const gfv_estimate *eb, double tol,
                    const char *what) {
  const size_t k = a->kloc, d = a->d, ps = a->psize;
  CHECK(rel_diff(k * d, ea->gh, eb->gh) <= tol, "%s: gh differs by %.3g", what, rel_diff(k * d, ea->gh, eb->gh));
  CHECK(rel_diff(k * ps, ea->G, eb->G) <= tol, "%s: G differs by %.3g", what, rel_diff(k * ps, ea->G, eb->G));
  CHECK(rel_diff(k, ea->phi, eb->phi) <= tol, "%s: phi differs by %.3g", what, rel_diff(k, ea->phi, eb->phi));
  CHECK(rel_diff(1, &ea->elbo, &eb->elbo) <= tol, "%s: ELBO %.17g vs %.17g", what, ea->elbo, eb->elbo);
  CHECK(ea->outside == eb->outside, "%s: outside %g vs %g", what, ea->outside, eb->outside);
  for (size_t j = 0; j < k; j++)
    CHECK(ea->used[j] == eb->used[j] && ea->bad[j] == eb->bad[j], "%s: particle %zu used %zu/%zu bad %d/%d",
          what, j, ea->used[j], eb->used[j], ea->bad[j], eb->bad[j]);
}

/* Three solvers from one configuration, with the same particles and streams: samples
 * layout, samples layout in ranges of 2 S points, params layout.  Each estimates once more
 * at its (identical) state, so all see the same samples. */
static void same_estimates(gfv_config *cfg, gfv_target *t, const char *what) {
  static const char *const layouts[3] = {"samples", "samples", "params"};
  gfv_comm *comm;
  gfv_comm_self(&comm);
  gfv_solver *s[3] = {0};
  gfv_estimate *e[3];
  for (int i = 0; i < 3; i++) {
    snprintf(cfg->layout, sizeof cfg->layout, "%s", layouts[i]);
    CHECK(gfv_solver_create(cfg, t, comm, &s[i]) == 0, "%s: create: %s", what, gfv_error_message());
    if (!s[i]) goto done;
  }
  CHECK(s[0]->layout == GFV_LAYOUT_SAMPLES && s[2]->layout == GFV_LAYOUT_PARAMS, "%s: layouts", what);
  s[1]->a_rows = 2 * s[1]->S; /* ranges: phase A recomputed in phase B */
  CHECK(gfv_calloc(&s[1]->lse_tmp, s[1]->a_rows, sizeof(double)) == 0, "lse_tmp");
  for (int i = 0; i < 3; i++) {
    int bad = 0;
    e[i] = &s[i]->est_buf[1 - s[i]->cur_est];
    CHECK(gfv_solver_estimate(s[i], e[i], &bad) == 0, "%s: estimate: %s", what, gfv_error_message());
  }
  compare(s[1], e[1], e[0], 1e-13, what);
  compare(s[2], e[2], e[0], 1e-10, what);
done:
  for (int i = 0; i < 3; i++) gfv_solver_free(s[i]);
  gfv_comm_free(comm);
}

static void base_config(gfv_config *cfg, long K, long S) {
  gfv_config_defaults(cfg);
  cfg->particles = K, cfg->samples = S, cfg->iters = 5, cfg->quiet = 1, cfg->seed = 3;
}

static void test_gauss_both_estimators_and_families(void) {
  static const struct {
    const char *family, *estimator;
    long dim;
  } cases[] = {{"full", "hessian", 4}, {"full", "stein", 5}, {"diag", "hessian", 6}, {"diag", "stein", 30}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gfv_config cfg;
    base_config(&cfg, 11, 6);
    snprintf(cfg.target, sizeof cfg.target, "gauss");
    snprintf(cfg.family, sizeof cfg.family, "%s", cases[i].family);
    snprintf(cfg.estimator, sizeof cfg.estimator, "%s", cases[i].estimator);
    cfg.dim = cases[i].dim;
    gfv_target *t = NULL;
    CHECK(gfv_target_create_from_config(&cfg, &t) == 0, "target");
    char what[64];
    snprintf(what, sizeof what, "gauss d=%ld %s %s", cases[i].dim, cases[i].family, cases[i].estimator);
    if (t) same_estimates(&cfg, t, what);
    gfv_target_free(t);
  }
}

/* Samples below the cut are left out: in the samples layout by log q = +inf from their
 * owner, in the params layout by the owner's skip flags.  The counts of samples inside,
 * the flags and the estimates with the support barrier must agree. */
static void test_bounded_support(void) {
  gfv_config cfg;
  base_config(&cfg, 9, 8);
  cfg.init_scale = 1.0;
  same_estimates(&cfg, &cut_target, "bounded support");
  /* The check above means something only if samples fell outside. */
  gfv_comm *comm;
  gfv_comm_self(&comm);
  gfv_solver *s = NULL;
  snprintf(cfg.layout, sizeof cfg.layout, "params");
  CHECK(gfv_solver_create(&cfg, &cut_target, comm, &s) == 0, "create");
  if (s) CHECK(s->est_buf[s->cur_est].outside > 0.05, "outside fraction %g", s->est_buf[s->cur_est].outside);
  gfv_solver_free(s);
  gfv_comm_free(comm);
}

/* --layout=auto (layout.c): params on one rank and wherever the model says so at scale;
 * samples where the params layout would move d^2 numbers per particle against a few
 * samples' coordinates (stein, S = 1, d = 256 on 64 ranks); the explicit values as given. */
static void test_auto_rule(void) {
  CHECK(gfv_layout_choose("auto", 20, 10, 2, 0, 1, 1) == GFV_LAYOUT_PARAMS, "one rank");
  CHECK(gfv_layout_choose("auto", 4096, 10, 16, 0, 1, 1024) == GFV_LAYOUT_PARAMS, "K 4096 d 16, 1024 ranks");
  CHECK(gfv_layout_choose("auto", 4096, 10, 64, 0, 0, 4096) == GFV_LAYOUT_PARAMS, "stein d 64, 4096 ranks");
  CHECK(gfv_layout_choose("auto", 64, 1, 256, 0, 0, 64) == GFV_LAYOUT_SAMPLES, "stein d 256, S 1");
  CHECK(gfv_layout_choose("auto", 64, 1, 256, 1, 0, 64) == GFV_LAYOUT_PARAMS, "the same, diag");
  CHECK(gfv_layout_choose("samples", 20, 10, 2, 0, 1, 1) == GFV_LAYOUT_SAMPLES, "explicit samples");
  CHECK(gfv_layout_choose("params", 64, 1, 256, 0, 0, 64) == GFV_LAYOUT_PARAMS, "explicit params");
  CHECK(gfv_layout_seconds(GFV_LAYOUT_SAMPLES, 64, 10, 8, 64, 1, 1) == 0 &&
            gfv_layout_seconds(GFV_LAYOUT_PARAMS, 64, 10, 8, 64, 1, 1) == 0,
        "nothing to move or repeat on one rank");
  /* The params layout's all-gather, K (d + ps + 1) doubles over 2 ranks: 3 messages of
   * alpha, half the bytes at beta. */
  double want = 3 * 2e-6 + 0.5 * 8 * 100 * (4 + 16 + 1) * 1e-10;
  CHECK_REL(gfv_layout_seconds(GFV_LAYOUT_PARAMS, 100, 10, 4, 16, 1, 2), want, 1e-12, 0, "params seconds");
}

int main(void) {
  RUN(test_gauss_both_estimators_and_families);
  RUN(test_bounded_support);
  RUN(test_auto_rule);
  return harness_report();
}
