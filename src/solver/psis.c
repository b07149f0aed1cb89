/* psis.c - Pareto-smoothed importance sampling: k-hat, smoothed log weights and the
 * importance-weighted log evidence (see include/gflowvi/psis.h).  A transcription of the
 * loo R package (psis.R: do_psis_i, psis_smooth_tail; gpdfit.R: gpdfit, lx, adjust_k_wip,
 * qgpd), in its variable names where it helps. */
#include "gflowvi/psis.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"

int gfv_gpdfit(size_t m, const double *x, int wip, double *k_out, double *sigma_out) {
  const double prior = 3.0, N = (double)m;
  const size_t M = 30 + (size_t)floor(sqrt(N));
  double *theta = NULL, *l_theta;
  GFV_ALLOC(theta, 2 * M); /* one block: an early return cannot leak the first half */
  l_theta = theta + M;
  /* first quartile, as R's x[floor(N / 4 + 0.5)] (1-based); a zero there (ties with the
   * cutoff) would divide by zero, so move up to the first positive value */
  size_t q = (size_t)floor(N / 4.0 + 0.5);
  q = q < 1 ? 0 : q - 1;
  while (q + 1 < m && !(x[q] > 0)) q++;
  const double xstar = x[q];
  for (size_t j = 0; j < M; j++)
    theta[j] = 1.0 / x[m - 1] + (1.0 - sqrt((double)M / ((double)(j + 1) - 0.5))) / prior / xstar;
  double lmax = -INFINITY;
  for (size_t j = 0; j < M; j++) {
    /* lx(a, x) = log(a / k) - k - 1 with a = -theta, k = mean(log1p(a x)) */
    double a = -theta[j], k = 0;
    for (size_t i = 0; i < m; i++) k += log1p(a * x[i]);
    k /= N;
    double l = a != 0 && k != 0 ? N * (log(a / k) - k - 1.0) : -INFINITY;
    l_theta[j] = isnan(l) ? -INFINITY : l;
    if (l_theta[j] > lmax) lmax = l_theta[j];
  }
  double wsum = 0, theta_hat = 0;
  for (size_t j = 0; j < M; j++) {
    double w = exp(l_theta[j] - lmax);
    wsum += w;
    theta_hat += theta[j] * w;
  }
  theta_hat /= wsum;
  double k = 0;
  for (size_t i = 0; i < m; i++) k += log1p(-theta_hat * x[i]);
  k /= N;
  double sigma = -k / theta_hat;
  if (wip) k = k * N / (N + 10.0) + 10.0 * 0.5 / (N + 10.0);
  if (isnan(k)) k = INFINITY;
  *k_out = k, *sigma_out = sigma;
  free(theta); /* l_theta with it */
  return GFV_OK;
}

/* GPD quantile (loo's qgpd). */
static double qgpd(double p, double k, double sigma) {
  if (!(sigma > 0)) return NAN;
  if (k == 0) return -sigma * log1p(-p);
  return sigma * expm1(-k * log1p(-p)) / k;
}

typedef struct {
  double v;
  size_t i;
} ranked;

static int by_value(const void *a, const void *b) {
  double x = ((const ranked *)a)->v, y = ((const ranked *)b)->v;
  return x < y ? -1 : x > y ? 1 : 0;
}

/* Fits the tail of lw (shifted so that its maximum is 0) and smooths it in place. */
static int smooth_tail(size_t n, double *lw, gfv_psis_result *res) {
  const size_t M = (size_t)ceil(fmin(0.2 * (double)n, 3.0 * sqrt((double)n)));
  res->khat = NAN;
  res->sigma = NAN;
  res->tail = 0;
  if (M < 5) return GFV_OK; /* loo: too few tail draws to fit */
  res->tail = M;
  ranked *ord = NULL;
  double *x = NULL;
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&ord, n, sizeof *ord), done);
  GFV_CALL_GOTO(st, gfv_calloc(&x, M, sizeof *x), done);
  for (size_t i = 0; i < n; i++) ord[i].v = lw[i], ord[i].i = i;
  qsort(ord, n, sizeof *ord, by_value);
  const ranked *tail = ord + (n - M);
  if (fabs(tail[M - 1].v - tail[0].v) < DBL_EPSILON / 100) { /* loo's test */
    res->khat = -INFINITY; /* constant tail: no Pareto tail at all */
    goto done;
  }
  const double exp_cutoff = exp(ord[n - M - 1].v);
  for (size_t j = 0; j < M; j++) x[j] = exp(tail[j].v) - exp_cutoff;
  double k, sigma;
  GFV_CALL_GOTO(st, gfv_gpdfit(M, x, 1, &k, &sigma), done);
  res->khat = k, res->sigma = sigma;
  if (isfinite(k))
    for (size_t j = 0; j < M; j++) {
      double p = ((double)(j + 1) - 0.5) / (double)M;
      lw[tail[j].i] = log(qgpd(p, k, sigma) + exp_cutoff);
    }
done:
  free(ord), free(x);
  return st;
}

int gfv_psis(size_t n, const double *lr, double *smoothed, gfv_psis_result *res) {
  memset(res, 0, sizeof *res);
  GFV_CHECK(n >= 1, GFV_ERR_NUMERIC, "PSIS: no importance ratios");
  double mx = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    GFV_CHECK(!isnan(lr[i]) && lr[i] != INFINITY, GFV_ERR_NUMERIC,
              "PSIS: log importance ratio %zu is %g (NaN and +Inf are not allowed)", i, lr[i]);
    if (lr[i] == -INFINITY) res->n_neg_inf++;
    if (lr[i] > mx) mx = lr[i];
  }
  GFV_CHECK(isfinite(mx), GFV_ERR_NUMERIC,
            "PSIS: every log importance ratio is -Inf (the target is zero at every draw)");
  /* log mean exp and the delta-method standard error, from weights scaled by exp(-max) */
  double sw = 0, sw2 = 0;
  for (size_t i = 0; i < n; i++) {
    double w = exp(lr[i] - mx);
    sw += w, sw2 += w * w;
  }
  const double dn = (double)n, mean = sw / dn;
  res->log_evidence = mx + log(mean);
  double var = n > 1 ? (sw2 - dn * mean * mean) / (dn - 1.0) : 0.0;
  res->log_evidence_se = sqrt(var > 0 ? var : 0.0) / (sqrt(dn) * mean);
  double *lw = smoothed;
  if (!lw) GFV_ALLOC(lw, n);
  for (size_t i = 0; i < n; i++) lw[i] = lr[i] - mx;
  int st = smooth_tail(n, lw, res);
  if (!st) {
    sw = 0, sw2 = 0;
    for (size_t i = 0; i < n; i++) {
      if (lw[i] > 0) lw[i] = 0; /* truncation at the largest raw weight */
      double w = exp(lw[i]);
      sw += w, sw2 += w * w;
      lw[i] += mx;
    }
    res->ess = sw * sw / sw2;
  }
  if (lw != smoothed) free(lw);
  if (st) gfv_error_push(__FILE__, __LINE__, __func__);
  return st;
}
