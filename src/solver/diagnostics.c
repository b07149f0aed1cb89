/* diagnostics.c - the verdict on a finished fit: can it be trusted?
 *
 * Each check below catches a way a fit can look fine and not be; each is a warning in
 * summary.json and on stderr (even with --quiet).  "Severe" warnings make the fit
 * unreliable (reliable = false; --strict turns that into exit status 12); notes say
 * something the user should know but that does not by itself make the answer wrong.
 *
 *  severe  PSIS k-hat > 0.7: the importance ratios p/q are so heavy-tailed that the fit
 *          misses posterior mass (often in the tails); expectations from its draws are
 *          not reliable (Vehtari et al.; Yao et al. 2018, "Yes, but did it work?").
 *  severe  ELBO more than max(1 nat, 5 standard errors) below the importance-weighted
 *          log Z: the mixture puts mass where the posterior has none.  This is what
 *          catches a component stranded far away: its draws get importance weight ~0, so
 *          log Z hardly moves while the ELBO collapses (seen: gap 70,000 nats, k-hat 0.5).
 *  severe  on a normalised target, the importance-weighted log Z more than
 *          max(GFV_MISSED_MASS_NATS, 5 standard errors) below 0: the mixture's draws reach
 *          only a fraction exp(log Z) of the posterior's mass.  This is what catches a mode
 *          that no component covers, which the two checks above cannot see: both look only
 *          where q has draws (one Gaussian on one of two far-apart modes: ELBO = log Z =
 *          -log 2, k-hat 0).
 *  severe  a component whose own objective E_qk[log q - l] is an outlier among the
 *          components that carry weight: it sits where the target is far smaller.  Stranded
 *          more than GFV_STRANDED_NATS away, with the ELBO ten times |log Z| below log Z,
 *          it makes the fit absurd: status 11, no outputs.
 *  severe  a component moved more than GFV_MAX_MOVE of its own standard deviations in one
 *          step: the Monte Carlo gradient says nothing about so far away (the trust region
 *          bounds this; it fires without one).
 *  severe  not converged by --iters (the windowed ELBO test never held).
 *  note    steps were rejected (and recovered); components with negligible weight; mass
 *          outside a bounded support (the fit is then the mixture restricted to the
 *          support, which is what the ELBO and samples.csv describe). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "solver/solver_impl.h"

#define GFV_KHAT_MAX 0.7
#define GFV_MAX_MOVE 20.0      /* standard deviations of the component, in one step */
#define GFV_OUTLIER_NATS 10.0  /* an outlier's objective exceeds the median by at least this */
#define GFV_STRANDED_NATS 1000.0 /* ... and a stranded one (status 11) by this */
/* log Z below 0 by this on a normalised target: about 5% of the posterior's mass missed.
 * A far-off mode of 8% (log Z -0.083) leaves the variance 100 times too small; one Gaussian
 * on gmm4 with 4 components, two on one mode, misses 25% (-0.288, k-hat 0.56).  Fits with
 * k-hat <= 0.7 that cover every mode end within 0.02 of 0 (banana, the correlated gauss with
 * diag and low-rank families, the funnel at d = 2); the worse ones have k-hat > 0.7 too. */
#define GFV_MISSED_MASS_NATS 0.05

static void add(gfv_eval_result *res, int severe, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add(gfv_eval_result *res, int severe, const char *fmt, ...) {
  if (severe) res->reliable = 0;
  if (res->nwarnings >= GFV_MAX_WARNINGS) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->warnings[res->nwarnings], GFV_WARNING_LEN, fmt, ap);
  va_end(ap);
  res->warning_severe[res->nwarnings++] = severe;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Components of non-negligible weight whose objective exceeds the median of those by more
 * than max(GFV_OUTLIER_NATS, 10 median absolute deviations).  Equal-weight mixtures of a
 * multi-modal posterior differ by a few nats between modes; a stranded component by
 * thousands.  Fills the worst one's index and excess. */
static size_t phi_outliers(const gfv_solver *s, const double *phi, size_t *worst, double *excess) {
  const size_t K = s->K;
  double *v = malloc(K * sizeof *v), *dev = malloc(K * sizeof *dev);
  size_t n = 0, count = 0;
  *excess = 0;
  if (!v || !dev) {
    free(v), free(dev);
    return 0;
  }
  for (size_t k = 0; k < K; k++)
    if (exp(s->full_logw[k]) >= 1e-6 && isfinite(phi[k])) v[n++] = phi[k];
  if (n >= 3) {
    qsort(v, n, sizeof *v, cmp_double);
    double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    for (size_t i = 0; i < n; i++) dev[i] = fabs(v[i] - med);
    qsort(dev, n, sizeof *dev, cmp_double);
    double mad = n % 2 ? dev[n / 2] : 0.5 * (dev[n / 2 - 1] + dev[n / 2]);
    double limit = med + fmax(GFV_OUTLIER_NATS, 10 * 1.4826 * mad);
    for (size_t k = 0; k < K; k++) {
      if (exp(s->full_logw[k]) < 1e-6 || !(phi[k] > limit)) continue;
      count++;
      if (phi[k] - med > *excess) *excess = phi[k] - med, *worst = k;
    }
  }
  free(v), free(dev);
  return count;
}

/* Every particle's final objective on every rank. */
static int gather_phi(gfv_solver *s, double *phi) {
  size_t *counts = NULL, *displs = NULL;
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&counts, (size_t)s->size, sizeof(size_t)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&displs, (size_t)s->size, sizeof(size_t)), done);
  gfv_block_counts(s->K, s->size, 1, counts, displs);
done:
  st = gfv_comm_agree(s->comm, st, NULL);
  if (!st) st = gfv_comm_allgatherv(s->comm, s->eval_phi, s->kloc, phi, counts, displs);
  free(counts), free(displs);
  GFV_CALL(st);
  return GFV_OK;
}

/* What to try after a diverged fit.  Advising "the default --trust-region" to a run that
 * already has it sends the user in a circle: with the region on, the fits that still end
 * here start far from the posterior's location or scale (N(1000 1, I): KL 1.3e5 after 1000
 * iterations; N(5 1, 1e-6 I): a component stranded 4e6 nats away), and --init=mode or a
 * smaller region reaches them. */
static const char *diverged_hint(const gfv_solver *s) {
  return s->cfg->trust_region > 0
             ? "use --init=mode, an --init-scale and --init-var on the posterior's scale, or a "
               "smaller --trust-region or --step"
             : "use the default --trust-region, a smaller --step, or --init=mode";
}

int gfv_solver_diagnose(gfv_solver *s, gfv_eval_result *res) {
  double *phi = NULL;
  res->nwarnings = 0, res->reliable = 1;
  int st = gfv_calloc(&phi, s->K, sizeof(double));
  GFV_CALL(gfv_comm_agree(s->comm, st, NULL));
  st = gather_phi(s, phi);
  if (st) {
    free(phi);
    GFV_CALL(st);
  }
  if (res->khat > GFV_KHAT_MAX)
    add(res, 1,
        "PSIS k-hat = %.2f > %.1f: the fit misses part of the posterior (often its tails); "
        "expectations from its draws are not reliable",
        res->khat, GFV_KHAT_MAX);
  double gap = res->log_evidence - res->elbo;
  double gap_se = hypot(res->elbo_se, res->log_evidence_se);
  if (isfinite(gap) && gap > fmax(1.0, 5 * gap_se))
    add(res, 1,
        "the ELBO %.4g is %.4g nats below the importance-weighted log Z %.4g (allowed: max(1, "
        "5 standard errors) = %.2g): part of the mixture sits where the posterior has little "
        "mass",
        res->elbo, gap, res->log_evidence, fmax(1.0, 5 * gap_se));
  if (s->target->normalized && isfinite(res->log_evidence) &&
      -res->log_evidence > fmax(GFV_MISSED_MASS_NATS, 5 * res->log_evidence_se))
    add(res, 1,
        "the importance-weighted log Z is %.4g +- %.2g on a normalised target, where it is 0 "
        "(allowed: max(%g, 5 standard errors) below): the mixture's draws reach only about "
        "%.0f%% of the posterior's mass (a mode no component covers, or a missed tail)",
        res->log_evidence, res->log_evidence_se, GFV_MISSED_MASS_NATS,
        100 * exp(res->log_evidence));
  size_t worst = 0;
  double excess = 0;
  size_t nout = phi_outliers(s, phi, &worst, &excess);
  /* Absurd, not just doubtful: an ELBO ten times |log Z| below the importance-weighted log Z
   * because a component is stranded thousands of nats away from the others (the
   * eight-schools failure: 70,000 nats).  A fit stopped early is far from log Z too, but
   * all its components are alike; that is "not converged", a warning. */
  if (nout && excess > GFV_STRANDED_NATS && isfinite(gap) &&
      gap > 10 * fmax(1.0, fabs(res->log_evidence))) {
    free(phi);
    GFV_ERROR(GFV_ERR_DIVERGED,
              "the fit diverged: component %zu is stranded %.4g nats beyond the others, and the "
              "ELBO %.6g lies %.4g nats below the importance-weighted log Z %.6g (%s)",
              worst + 1, excess, res->elbo, gap, res->log_evidence, diverged_hint(s));
  }
  /* Absurd on a normalised target: a KL of more than max(100, 10 d) nats means the mixture
   * sits where the target has almost no mass (a runaway component the exact log terms of
   * the params layout carry through to the end; banana at --step=3 --trust-region=0: KL 282
   * with the importance-weighted log Z at -272, where it is 0).  Honest poor fits of these
   * targets (one Gaussian on four modes, a diagonal family on a correlated Gaussian) are a
   * few nats to a few tens. */
  const double kl_absurd = fmax(100.0, 10.0 * (double)s->d);
  if (isfinite(res->kl) && res->kl - 5 * res->kl_se > kl_absurd) {
    free(phi);
    GFV_ERROR(GFV_ERR_DIVERGED,
              "the fit diverged: its KL to the normalised target is %.4g nats (more than %.4g), "
              "the importance-weighted log Z %.4g where it is 0 (%s)",
              res->kl, kl_absurd, res->log_evidence, diverged_hint(s));
  }
  if (nout)
    add(res, 1,
        "%zu component%s with an outlying objective E[log q - l] (worst: component %zu, %.4g nats "
        "above the median, weight %.3g): stranded where the target is far smaller",
        nout, nout == 1 ? "" : "s", worst + 1, excess, exp(s->full_logw[worst]));
  if (s->max_move > GFV_MAX_MOVE)
    add(res, 1,
        "a component moved %.3g of its own standard deviations in one step (iteration %ld), "
        "far beyond where its Monte Carlo gradient means anything; use a --trust-region",
        s->max_move, s->max_move_iter);
  if (!s->converged && s->cfg->iters > 0 && s->conv_tol > 0) {
    if (isnan(s->conv_last_rel))
      add(res, 1,
          "not converged after %ld iterations (--iters=%ld): too few for the convergence test "
          "(it compares windows of --conv-window=%ld iterations); run longer (--restart "
          "continues)",
          s->iter, s->cfg->iters, s->cfg->conv_window);
    else
      add(res, 1,
          "not converged after %ld iterations (--iters=%ld): the ELBO still changed by up to "
          "%.3g (relative, with 2 standard errors) between the last windows, above the "
          "tolerance %g; run longer (--restart continues)",
          s->iter, s->cfg->iters, s->conv_last_rel, s->conv_tol);
  }
  if (res->outside > 0)
    add(res, 0,
        "%.3g%% of the mixture's mass lies outside the target's support (zero density): the fit "
        "is the mixture restricted to the support (its ELBO; the draws of samples.csv), while "
        "mixture.csv holds the unrestricted components",
        100 * res->outside);
  if (s->rejected > 0)
    add(res, 0, "%ld step%s rejected and retried with a shorter step (recovered)", s->rejected,
        s->rejected == 1 ? "" : "s");
  if (res->negligible > 0)
    add(res, 0, "%zu component%s with negligible weight (< 1e-6)", res->negligible,
        res->negligible == 1 ? "" : "s");
  /* docs/lowrank.md: with fewer samples than the rank, the low-rank part of the estimate is
   * mostly noise that its truncation lets in (Boston BNN, S = 10: lowrank:20 ends ~250 nats
   * below the diagonal family's ELBO, lowrank:10 above it). */
  if (s->fam->rank && s->S < s->fam->rank)
    add(res, 0,
        "--family=lowrank:%zu with --samples=%zu < %zu: the low-rank part of the estimate is "
        "mostly noise in this regime and the fit can be worse than --family=diag's; use "
        "--samples >= %zu (docs/lowrank.md)",
        s->fam->rank, s->S, s->fam->rank, s->fam->rank);
  free(phi);
  return GFV_OK;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option report_options[] = {
    {.name = "quiet", .type = OPT_BOOL, OPT_FIELD(quiet), .def = "false",
     .role = ROLE_RUN,
     .help = "suppress the configuration echo and the progress lines"},
    {.name = "strict", .type = OPT_BOOL, OPT_FIELD(strict), .def = "false",
     .role = ROLE_RUN,
     .help = "exit with status 12 (after writing the outputs) when the diagnostics say the fit "
             "is not reliable; without it such a fit exits 0 with its warnings on stderr and "
             "in summary.json"},
};
GFV_OPTION_TABLE(gfv_options_report, report_options);
