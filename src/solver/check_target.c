/* check_target.c - --check-target: the target's gradient (and Hessian, where it has one)
 * against central finite differences, at points drawn from the initial mixture.
 *
 * Step: h_a = eps^(1/3) max(1, |z_a|), rounded so that z_a + h_a - z_a = h_a exactly.
 * The central difference (l(z + h e_a) - l(z - h e_a)) / (2 h) then errs by the truncation
 * h^2 l'''/6 plus the rounding of the two values, about eps |l| / h: both are of the order
 * eps^(2/3) = 4e-11 times the scale of l and its third derivative, the least total error a
 * central difference can have.  The relative error |g - fd| / max(1, |g|, |fd|) of a correct
 * gradient is then 1e-10 to 1e-7 on every model we have (tests/cli/test_check_target.sh),
 * and that of a real mistake (a dropped term or factor, a wrong sign, a swapped index) is
 * 1e-2 or more: the tolerance 1e-5 sits well between them.  Where l itself is so large
 * that the rounding of the difference approaches that (|l| ~ 1e6 at unit scale), the
 * allowance grows by 100 times the rounding estimate eps (|l(z+h)| + |l(z-h)|) / (2 h),
 * so a large but correct model is not blamed for its floating point.  The Hessian's
 * column a is checked against the central difference of the gradient the same way. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "rng/stream.h"
#include "solver/solver_impl.h"

#define CHECK_POINTS 8      /* points drawn from the initial mixture */
#define CHECK_TRIES 10000   /* draws allowed to find them inside the target's support */
#define CHECK_TOL 1e-5

typedef struct {
  double *z, *lp, *g, *H;   /* one point: d, 1, d, d x d */
  double *zz, *ll, *gg;     /* its 2 d perturbed points: 2d x d, 2d, 2d x d */
  double *gerr, *herr;      /* per coordinate: worst relative error over the points */
  size_t *hrow;             /* the Hessian row of that worst error */
  size_t *skipped;          /* per coordinate: points where l(z +- h) was not finite */
} check_work;

static int work_alloc(size_t d, int hess, check_work *w) {
  GFV_CALL(gfv_calloc(&w->z, d, sizeof(double)));
  GFV_CALL(gfv_calloc(&w->lp, 1, sizeof(double)));
  GFV_CALL(gfv_calloc(&w->g, d, sizeof(double)));
  if (hess) GFV_CALL(gfv_calloc(&w->H, d * d, sizeof(double)));
  GFV_CALL(gfv_calloc(&w->zz, 2 * d * d, sizeof(double)));
  GFV_CALL(gfv_calloc(&w->ll, 2 * d, sizeof(double)));
  GFV_CALL(gfv_calloc(&w->gg, 2 * d * d, sizeof(double)));
  GFV_CALL(gfv_calloc(&w->gerr, d, sizeof(double)));
  GFV_CALL(gfv_calloc(&w->herr, d, sizeof(double)));
  GFV_CALL(gfv_calloc(&w->hrow, d, sizeof(size_t)));
  GFV_CALL(gfv_calloc(&w->skipped, d, sizeof(size_t)));
  return GFV_OK;
}

static void work_free(check_work *w) {
  free(w->z), free(w->lp), free(w->g), free(w->H), free(w->zz), free(w->ll), free(w->gg);
  free(w->gerr), free(w->herr), free(w->hrow), free(w->skipped);
}

/* The relative error of a derivative against its finite difference, with the rounding
 * allowance folded in: a value <= CHECK_TOL passes. */
static double rel_error(double exact, double fd, double noise) {
  double scale = fmax(1.0, fmax(fabs(exact), fabs(fd)));
  double err = fabs(exact - fd);
  if (!isfinite(err)) return INFINITY;
  double allowed = CHECK_TOL * scale + 100 * noise;
  /* reported relative to the scale, but a difference within the rounding allowance is
   * reported as at most the tolerance */
  return err <= allowed ? fmin(err / scale, CHECK_TOL) : err / scale;
}

/* Checks one point: the perturbed points in one block, then every coordinate. */
static int check_point(const gfv_target *t, check_work *w) {
  const size_t d = t->dim;
  const double step = cbrt(DBL_EPSILON);
  GFV_CALL(gfv_target_eval(t, 1, w->z, w->lp, w->g, w->H));
  for (size_t a = 0; a < d; a++) {
    volatile double up = w->z[a] + step * fmax(1.0, fabs(w->z[a]));
    double h = up - w->z[a];
    memcpy(w->zz + 2 * a * d, w->z, d * sizeof(double));
    memcpy(w->zz + (2 * a + 1) * d, w->z, d * sizeof(double));
    w->zz[2 * a * d + a] += h;
    w->zz[(2 * a + 1) * d + a] -= h;
  }
  GFV_CALL(gfv_target_eval(t, 2 * d, w->zz, w->ll, w->gg, NULL));
  for (size_t a = 0; a < d; a++) {
    double lp = w->ll[2 * a], lm = w->ll[2 * a + 1];
    double h = w->zz[2 * a * d + a] - w->z[a];
    if (!isfinite(lp) || !isfinite(lm)) { /* a bound of the support within h */
      w->skipped[a]++;
      continue;
    }
    double fd = (lp - lm) / (2 * h), noise = DBL_EPSILON * (fabs(lp) + fabs(lm)) / (2 * h);
    w->gerr[a] = fmax(w->gerr[a], rel_error(w->g[a], fd, noise));
    if (!w->H) continue;
    const double *gp = w->gg + 2 * a * d, *gm = w->gg + (2 * a + 1) * d;
    for (size_t b = 0; b < d; b++) {
      double fdh = (gp[b] - gm[b]) / (2 * h);
      double nh = DBL_EPSILON * (fabs(gp[b]) + fabs(gm[b])) / (2 * h);
      double e = rel_error(w->H[b * d + a], fdh, nh);
      if (e > w->herr[a] || (b == 0 && w->herr[a] == 0)) w->herr[a] = e, w->hrow[a] = b;
    }
  }
  return GFV_OK;
}

/* The next draw of the mixture with a finite log density: candidate t is row t of the
 * stream (seed, 0, GFV_PURPOSE_CHECK) (gfv_stream_mixture_row). */
static int next_point(gfv_solver *s, const gfv_stream *st, const gfv_discrete *table, check_work *w,
                      size_t *tries) {
  gfv_particles view = s->cur;
  view.mu = s->full_mu, view.L = s->full_L;
  while (*tries < CHECK_TRIES) {
    size_t k = gfv_discrete_pick(table, gfv_stream_mixture_row(st, (*tries)++, s->d, w->z));
    gfv_particles_transform(&view, k, 1, w->z);
    GFV_CALL(gfv_target_eval(s->target, 1, w->z, w->lp, NULL, NULL));
    if (isfinite(w->lp[0])) return GFV_OK;
  }
  return GFV_ERR_NUMERIC;
}

static void coord_name(const gfv_target *t, size_t a, char *buf, size_t n) {
  if (t->dim_names) snprintf(buf, n, "z[%zu] (%s)", a + 1, t->dim_names[a]);
  else snprintf(buf, n, "z[%zu]", a + 1);
}

/* The table and the verdict; GFV_ERR_NUMERIC naming the first wrong coordinate. */
static int verdict(const gfv_solver *s, const check_work *w, size_t points, FILE *out) {
  const gfv_target *t = s->target;
  const size_t d = t->dim;
  size_t bad_g = 0, bad_h = 0, first_g = d, first_h = d, worst_g = 0, worst_h = 0;
  char name[160];
  fprintf(out, "%-24s %-22s%s\n", "coordinate", "gradient: max rel err",
          t->has_hessian ? "   Hessian column: max rel err (row)" : "");
  for (size_t a = 0; a < d; a++) {
    int gok = w->gerr[a] <= CHECK_TOL, hok = !t->has_hessian || w->herr[a] <= CHECK_TOL;
    coord_name(t, a, name, sizeof name);
    fprintf(out, "%-24s %9.2e %-12s", name, w->gerr[a], gok ? "ok" : "WRONG");
    if (t->has_hessian) fprintf(out, "   %9.2e %-5s (z[%zu])", w->herr[a], hok ? "ok" : "WRONG", w->hrow[a] + 1);
    if (w->skipped[a]) fprintf(out, "   (%zu points skipped: the support ends within h)", w->skipped[a]);
    fputc('\n', out);
    if (!gok && bad_g++ == 0) first_g = a;
    if (!hok && bad_h++ == 0) first_h = a;
    if (w->gerr[a] > w->gerr[worst_g]) worst_g = a;
    if (t->has_hessian && w->herr[a] > w->herr[worst_h]) worst_h = a;
  }
  if (!bad_g && !bad_h) {
    coord_name(t, worst_g, name, sizeof name);
    fprintf(out, "verdict: the gradient%s agree%s with central differences at %zu points "
                 "(gradient: worst relative error %.2e at %s",
            t->has_hessian ? " and the Hessian" : "", t->has_hessian ? "" : "s", points,
            w->gerr[worst_g], name);
    coord_name(t, worst_h, name, sizeof name);
    if (t->has_hessian) fprintf(out, "; Hessian: %.2e in column %s", w->herr[worst_h], name);
    fprintf(out, "; tolerance %.0e)\n", CHECK_TOL);
    fflush(out);
    return GFV_OK;
  }
  size_t a = bad_g ? first_g : first_h;
  coord_name(t, a, name, sizeof name);
  fprintf(out, "verdict: WRONG: %zu of %zu gradient coordinates%s disagree with central differences "
               "(tolerance %.0e)\n", bad_g, d,
          t->has_hessian ? (bad_h ? " and some Hessian columns" : "; the Hessian agrees") : "",
          CHECK_TOL);
  fflush(out);
  if (bad_g)
    GFV_ERROR(GFV_ERR_NUMERIC,
              "--check-target: the gradient of %s disagrees with central finite differences in "
              "%zu of %zu coordinates, first %s (relative error %.3g > %.0e)",
              s->cfg->target, bad_g, d, name, w->gerr[a], CHECK_TOL);
  GFV_ERROR(GFV_ERR_NUMERIC,
            "--check-target: the Hessian of %s disagrees with central finite differences of its "
            "gradient in %zu of %zu columns, first %s, row z[%zu] (relative error %.3g > %.0e)",
            s->cfg->target, bad_h, d, name, w->hrow[a] + 1, w->herr[a], CHECK_TOL);
}

static int check_rank0(gfv_solver *s, FILE *out) {
  gfv_target *t = s->target;
  check_work w = {0};
  const gfv_stream points_stream = gfv_stream_make(s->cur.seed, 0, GFV_PURPOSE_CHECK);
  gfv_discrete *table = NULL;
  double *wt = NULL;
  size_t points = 0, tries = 0;
  int st = GFV_OK;
  if (t->begin_iteration) t->begin_iteration(t, -1, (unsigned long)s->cfg->seed); /* all the data */
  GFV_CALL_GOTO(st, work_alloc(s->d, t->has_hessian, &w), done);
  GFV_CALL_GOTO(st, gfv_calloc(&wt, s->K, sizeof(double)), done);
  for (size_t k = 0; k < s->K; k++) wt[k] = exp(s->full_logw[k]);
  GFV_CALL_GOTO(st, gfv_discrete_alloc(s->K, wt, &table), done);
  fprintf(out, "gflowvi: checking the derivatives of %s (d = %zu) against central differences, "
               "step h = %.2e max(1, |z_a|), at %d points drawn from the initial mixture "
               "(--init=%s, --seed=%ld)\n",
          s->cfg->target, s->d, cbrt(DBL_EPSILON), CHECK_POINTS, s->cfg->init, s->cfg->seed);
  for (; points < CHECK_POINTS; points++) {
    if (next_point(s, &points_stream, table, &w, &tries)) {
      if (points) break;
      GFV_ERROR_GOTO(st, done, GFV_ERR_NUMERIC,
                     "--check-target: none of %d draws of the initial mixture has a finite log "
                     "density under %s; choose another --init or --init-scale",
                     CHECK_TRIES, s->cfg->target);
    }
    GFV_CALL_GOTO(st, check_point(t, &w), done);
  }
  st = verdict(s, &w, points, out);
done:
  gfv_discrete_free(table);
  work_free(&w);
  free(wt);
  return st;
}

int gfv_solver_check_target_impl(gfv_solver *s, FILE *out) {
  GFV_CALL(gfv_solver_require_ready(s, "gfv_solver_check_target"));
  GFV_CALL(gfv_solver_gather_full(s));
  int st = s->rank == 0 ? check_rank0(s, out) : GFV_OK;
  GFV_CALL(gfv_comm_agree(s->comm, st, NULL));
  return GFV_OK;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option check_options[] = {
    {.name = "check-target", .type = OPT_BOOL, OPT_FIELD(check_target), .def = "false",
     .role = ROLE_RUN,
     .help = "fit nothing: compare the target's gradient (and Hessian) with central finite "
             "differences at points drawn from the initial mixture; exit 0 when they agree, "
             "4 when not"},
};
GFV_OPTION_TABLE(gfv_options_check, check_options);
