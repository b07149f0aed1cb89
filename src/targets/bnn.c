/* bnn.c - the "bnn" target: Bayesian neural-network regression, one hidden ReLU layer, the
 * model of the probabilistic-backpropagation (PBP) and SVGD benchmarks.
 *
 * Data: --data (see models.h); inputs standardised on the training rows (--standardize,
 * auto = center-scale), the response always centred and scaled by its training mean and
 * standard deviation.  With p inputs and H = --hidden units the parameter vector is
 *   z = [ W1 (p x H, row-major), b1 (H), w2 (H), b2, log gamma, log lambda ],
 * dim = (p + 2) H + 3, and the network is f(x) = w2 . relu(W1^T x + b1) + b2.
 *
 *   y_i | x_i, z ~ N(f(x_i), 1/gamma)                       (noise precision gamma)
 *   every weight (W1, b1, w2, b2; nw = (p + 2) H + 1 of them) ~ N(0, 1/lambda)
 *   gamma ~ Gamma(a0, b0), lambda ~ Gamma(a0, b0), a0 = 1, b0 = 0.1 (shape, rate)
 * with the two precisions as log-precisions (Jacobian included):
 *   l(z) = c_B [ B/2 (log gamma - log 2 pi) - gamma/2 sum_{i in batch} (f(x_i) - y_i)^2 ]
 *          + nw/2 (log lambda - log 2 pi) - lambda/2 |w|^2
 *          + a0 log gamma - b0 gamma + a0 log lambda - b0 lambda + 2 (a0 log b0 - lgamma(a0)).
 * The batch is all N training rows (c_B = 1) or, with --batch-size=B, B rows drawn without
 * replacement in begin_iteration from (seed, iteration), with c_B = N / B, so l and its
 * gradient are unbiased for the full-data ones and the choice does not depend on the rank
 * count.  begin_iteration with iteration < 0 selects all rows (for final evaluations).
 *
 * Gradient by backpropagation, vectorised over a block of points: the first layer of all
 * points of the block is one DGEMM, X [W1_1 | ... | W1_n] (B x nH), and its gradient one
 * more, X^T [dA_1 | ... | dA_n].  No Hessian: the solver uses the stein estimator.
 *
 * Report (--test-data or --split-seed): with M = 1000 draws z_m from the fitted mixture,
 * predictions on the original scale yhat_m(x) = mean_y + sd_y f_m(x) and noise variances
 * sd_y^2 / gamma_m; test RMSE of the predictive mean (1/M) sum_m yhat_m(x), and the mean
 * test log-likelihood (1/T) sum_t log (1/M) sum_m N(y_t; yhat_m(x_t), sd_y^2 / gamma_m).
 * With --dev-fraction, also the same log-likelihood with each draw's noise variance replaced
 * by its mean squared residual on the development rows (recalibrate), reported apart.
 *
 * --init=target starts particle k where SVGD's code starts a particle (bnn_init_mean). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "linalg/linalg.h"
#include "rng/stream.h"
#include "targets/models.h"
#include "targets/registry.h"
#include "targets/targets_impl.h"

#define BNN_A0 1.0
#define BNN_B0 0.1
#define BNN_CHUNK_ELEMS (1u << 21) /* bound on rows x (points per chunk) x H scratch */
#define BNN_MAX_DIM 1e9             /* parameters: one mean alone is then 8 GB */
#define BNN_DRAWS 1000              /* posterior draws for the report */
#define LOG_2PI 1.8378770664093454836

typedef struct {
  size_t p, H, D, nw;         /* inputs, hidden units, dimension, weights */
  size_t N, T;                /* training rows, test rows */
  double *X, *y;              /* N x p, N: standardised training data */
  double *Xt, *yt;            /* T x p (standardised inputs), T (original scale) */
  size_t Nd;                  /* --dev-fraction: development rows */
  double *Xd, *yd;            /* Nd x p (standardised inputs), Nd (original scale) */
  double ymean, ysd;
  size_t B;                   /* --batch-size; 0 = all rows */
  size_t nb;                  /* rows in the active batch */
  int full;                   /* the active batch is all rows (X, y used directly) */
  size_t *perm;               /* N: scratch for the draw, first nb = the active rows */
  double *Xb, *yb;            /* B x p, B: the active batch */
  size_t chunk;               /* points per block */
  double *Wp, *A, *dA, *G1, *F; /* p x cH, N x cH, N x cH, p x cH, c x N */
  double prior_const;         /* 2 (a0 log b0 - lgamma(a0)) */
  double *mean, *sd;          /* p: the inputs' standardisation x' = (x - mean) / sd */
  char *describe;             /* the data description (gfv_data_describe), as JSON members */
} bnn_ctx;

static void bnn_destroy(void *p) {
  bnn_ctx *c = p;
  if (!c) return;
  free(c->X), free(c->y), free(c->Xt), free(c->yt), free(c->perm), free(c->Xb), free(c->yb);
  free(c->Xd), free(c->yd);
  free(c->Wp), free(c->A), free(c->dA), free(c->G1), free(c->F);
  free(c->mean), free(c->sd), free(c->describe);
  free(c);
}

/* The network at nc points z (nc x D) on n rows X (n x p): A (n x nc H) receives the
 * hidden activations relu(X W1 + b1), F (nc x n) the outputs.  Wp is p x nc H scratch. */
static void forward(const bnn_ctx *c, size_t n, const double *X, size_t nc, const double *z,
                    double *Wp, double *A, double *F) {
  const size_t p = c->p, H = c->H, D = c->D, cH = nc * H;
  for (size_t j = 0; j < nc; j++)
    for (size_t a = 0; a < p; a++) memcpy(Wp + a * cH + j * H, z + j * D + a * H, H * sizeof(double));
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)cH, (int)p, 1.0, X, (int)p,
              Wp, (int)cH, 0.0, A, (int)cH);
  for (size_t j = 0; j < nc; j++) {
    const double *b1 = z + j * D + p * H, *w2 = b1 + H, b2 = w2[H];
    for (size_t i = 0; i < n; i++) {
      double *a = A + i * cH + j * H, f = b2;
      for (size_t h = 0; h < H; h++) {
        double v = a[h] + b1[h];
        v = v > 0 ? v : 0.0;
        a[h] = v;
        f += v * w2[h];
      }
      F[j * n + i] = f;
    }
  }
}

static void eval_chunk(bnn_ctx *c, size_t nc, const double *z, double *logp, double *grad) {
  const size_t p = c->p, H = c->H, D = c->D, cH = nc * H, n = c->nb;
  const double *X = c->full ? c->X : c->Xb, *y = c->full ? c->y : c->yb;
  const double scale = (double)c->N / (double)n;
  forward(c, n, X, nc, z, c->Wp, c->A, c->F);
  for (size_t j = 0; j < nc; j++) {
    const double *zj = z + j * D, *w2 = zj + p * H + H;
    const double lg = zj[D - 2], ll = zj[D - 1], gam = exp(lg), lam = exp(ll);
    double *F = c->F + j * n; /* overwritten by dl/df */
    double sse = 0;
    for (size_t i = 0; i < n; i++) {
      double r = F[i] - y[i];
      sse += r * r;
      F[i] = -scale * gam * r;
    }
    double w2sum = cblas_ddot((int)c->nw, zj, 1, zj, 1);
    logp[j] = scale * (0.5 * (double)n * (lg - LOG_2PI) - 0.5 * gam * sse) +
              0.5 * (double)c->nw * (ll - LOG_2PI) - 0.5 * lam * w2sum + BNN_A0 * lg - BNN_B0 * gam +
              BNN_A0 * ll - BNN_B0 * lam + c->prior_const;
    if (!grad) continue;
    double *g = grad + j * D, *gb1 = g + p * H, *gw2 = gb1 + H;
    memset(gb1, 0, 2 * H * sizeof(double));
    double gb2 = 0;
    for (size_t i = 0; i < n; i++) {
      const double df = F[i], *a = c->A + i * cH + j * H;
      double *da = c->dA + i * cH + j * H;
      gb2 += df;
      for (size_t h = 0; h < H; h++) {
        gw2[h] += a[h] * df;
        da[h] = a[h] > 0 ? df * w2[h] : 0.0;
        gb1[h] += da[h];
      }
    }
    gw2[H] = gb2;
    g[D - 2] = scale * (0.5 * (double)n - 0.5 * gam * sse) + BNN_A0 - BNN_B0 * gam;
    g[D - 1] = 0.5 * (double)c->nw - 0.5 * lam * w2sum + BNN_A0 - BNN_B0 * lam;
  }
  if (!grad) return;
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, (int)cH, (int)n, 1.0, X, (int)p,
              c->dA, (int)cH, 0.0, c->G1, (int)cH);
  for (size_t j = 0; j < nc; j++) {
    double *g = grad + j * D;
    const double *zj = z + j * D, lam = exp(zj[D - 1]);
    for (size_t a = 0; a < p; a++) memcpy(g + a * H, c->G1 + a * cH + j * H, H * sizeof(double));
    cblas_daxpy((int)c->nw, -lam, zj, 1, g, 1); /* the prior on the weights */
  }
}

static int bnn_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                    double *hess) {
  (void)hess; /* has_hessian = 0: never asked for */
  bnn_ctx *c = t->ctx;
  for (size_t i0 = 0; i0 < n; i0 += c->chunk) {
    size_t nc = n - i0 < c->chunk ? n - i0 : c->chunk;
    eval_chunk(c, nc, z + i0 * c->D, logp + i0, grad ? grad + i0 * c->D : NULL);
  }
  return GFV_OK;
}

/* The minibatch of iteration iter: B rows without replacement (a partial Fisher-Yates
 * shuffle restarted from the identity, so it depends on (seed, iter) alone). */
static void bnn_begin_iteration(gfv_target *t, long iter, unsigned long seed) {
  bnn_ctx *c = t->ctx;
  if (c->B == 0 || c->B >= c->N || iter < 0) {
    c->full = 1, c->nb = c->N;
    return;
  }
  /* Step i from word i of the sequence (iter, 0) of the minibatch stream. */
  const gfv_stream st = gfv_stream_make(seed, 0, GFV_PURPOSE_MINIBATCH);
  for (size_t i = 0; i < c->N; i++) c->perm[i] = i;
  for (size_t i = 0; i < c->B; i++) {
    uint64_t w = gfv_stream_word(&st, (uint64_t)iter, 0, i);
    size_t j = i + (size_t)gfv_below(w, c->N - i), tmp = c->perm[i];
    c->perm[i] = c->perm[j], c->perm[j] = tmp;
  }
  for (size_t i = 0; i < c->B; i++) {
    memcpy(c->Xb + i * c->p, c->X + c->perm[i] * c->p, c->p * sizeof(double));
    c->yb[i] = c->y[c->perm[i]];
  }
  c->full = 0, c->nb = c->B;
}

/* The network's outputs F (M x n) at the M draws Z on the n rows X, chunk draws at a time
 * (Wp: p x chunk H, A: n x chunk H scratch). */
static void outputs(const bnn_ctx *c, size_t n, const double *X, size_t M, const double *Z,
                    size_t chunk, double *Wp, double *A, double *F) {
  for (size_t m0 = 0; m0 < M; m0 += chunk) {
    size_t nc = M - m0 < chunk ? M - m0 : chunk;
    forward(c, n, X, nc, Z + m0 * c->D, Wp, A, F + m0 * n);
  }
}

/* The scores of the M draws' outputs F (M x n) on n rows with responses y, the draws' noise
 * variances var (M), all on the original scale: the RMSE of the predictive mean, the mean
 * log predictive density and its Monte Carlo standard error.  lik, acc: M scratch each. */
static void score(const bnn_ctx *c, size_t M, size_t n, const double *F, const double *y,
                  const double *var, double *lik, double *acc, double *rmse, double *lpd,
                  double *se) {
  double sse = 0, ll = 0;
  memset(acc, 0, M * sizeof *acc);
  for (size_t r = 0; r < n; r++) {
    double mean = 0;
    for (size_t m = 0; m < M; m++) {
      double yhat = c->ymean + c->ysd * F[m * n + r], e = y[r] - yhat;
      mean += yhat;
      lik[m] = -0.5 * (LOG_2PI + log(var[m])) - 0.5 * e * e / var[m];
    }
    mean /= (double)M;
    sse += (mean - y[r]) * (mean - y[r]);
    ll += gfv_lpd_add(M, lik, n, acc);
  }
  *rmse = sqrt(sse / (double)n), *lpd = ll / (double)n, *se = gfv_lpd_mcse(M, acc);
}

static double mean_sqrt(size_t M, const double *v) {
  double s = 0;
  for (size_t m = 0; m < M; m++) s += sqrt(v[m]);
  return s / (double)M;
}

/* --dev-fraction: every draw's noise variance replaced by its mean squared residual on the
 * development rows, the precision that maximises the dev rows' likelihood under that draw
 * (SVGD's per-particle choice; its "keep it if the dev likelihood is higher" always holds
 * for the maximiser), and the test set scored again with them.  F, Fd: the draws' outputs
 * on the test and dev rows; var: their fitted variances; vd (M) receives the new ones. */
static void recalibrate(const bnn_ctx *c, size_t M, const double *F, const double *Fd,
                        const double *var, double *vd, double *lik, double *acc, FILE *json,
                        FILE *text) {
  const size_t Nd = c->Nd;
  for (size_t m = 0; m < M; m++) {
    double ss = 0;
    for (size_t r = 0; r < Nd; r++) {
      double e = c->yd[r] - (c->ymean + c->ysd * Fd[m * Nd + r]);
      ss += e * e;
    }
    vd[m] = ss > 0 ? ss / (double)Nd : var[m]; /* a perfect dev fit: no finite maximiser */
  }
  double rmse, dev0, dev1, test1, se0, se1;
  score(c, M, Nd, Fd, c->yd, var, lik, acc, &rmse, &dev0, &se0);
  score(c, M, Nd, Fd, c->yd, vd, lik, acc, &rmse, &dev1, &se0);
  score(c, M, c->T, F, c->yt, vd, lik, acc, &rmse, &test1, &se1);
  const double sd0 = mean_sqrt(M, var), sd1 = mean_sqrt(M, vd);
  fprintf(json, ",\n    \"dev_rows\": %zu,\n    \"noise_sd_fitted\": %.17g,\n", Nd, sd0);
  fprintf(json, "    \"noise_sd_recalibrated\": %.17g,\n", sd1);
  fprintf(json, "    \"dev_log_likelihood\": %.17g,\n    \"dev_log_likelihood_recalibrated\": %.17g,\n",
          dev0, dev1);
  fprintf(json, "    \"test_log_likelihood_recalibrated\": %.17g,\n", test1);
  fprintf(json, "    \"test_log_likelihood_recalibrated_mcse\": %.17g", se1);
  fprintf(text, "dev set: %zu rows; noise sd per draw recalibrated on them: mean %.4f -> %.4f, dev "
                "log-likelihood %.4f -> %.4f, test log-likelihood %.4f +- %.4f per row (recalibrated)\n",
          Nd, sd0, sd1, dev0, dev1, test1, se1);
}

static int bnn_report(const gfv_target *t, const gfv_fitted_mixture *fit, FILE *json, FILE *text) {
  const bnn_ctx *c = t->ctx;
  const size_t T = c->T, Nd = c->Nd, M = BNN_DRAWS, H = c->H, D = c->D, p = c->p;
  if (T == 0) return GFV_OK;
  GFV_CHECK(fit->d == D, GFV_ERR_INTERNAL, "report: mixture of dimension %zu, target %zu", fit->d, D);
  const size_t R = T > Nd ? T : Nd; /* the most rows one forward pass sees */
  size_t chunk = BNN_CHUNK_ELEMS / (R * H);
  chunk = chunk < 1 ? 1 : chunk > 64 ? 64 : chunk;
  double *Z = NULL, *Wp = NULL, *A = NULL, *F = NULL, *Fd = NULL, *lik = NULL, *acc = NULL;
  double *var = NULL, *vd = NULL;
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&acc, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&Z, M * D, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&Wp, p * chunk * H, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&A, R * chunk * H, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&F, M * T, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&Fd, M * (Nd > 0 ? Nd : 1), sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&lik, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&var, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&vd, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_fit_draw(fit, GFV_PURPOSE_REPORT, M, Z), done);
  outputs(c, T, c->Xt, M, Z, chunk, Wp, A, F);
  for (size_t m = 0; m < M; m++) var[m] = c->ysd * c->ysd * exp(-Z[m * D + D - 2]);
  double rmse, mll, se;
  score(c, M, T, F, c->yt, var, lik, acc, &rmse, &mll, &se);
  fprintf(json, "    \"test_rows\": %zu,\n    \"predictive_draws\": %zu,\n", T, M);
  fprintf(json, "    \"test_rmse\": %.17g,\n    \"test_log_likelihood\": %.17g,\n", rmse, mll);
  fprintf(json, "    \"test_log_likelihood_mcse\": %.17g", se);
  fprintf(text, "test set: %zu rows, RMSE %.4f, log-likelihood %.4f +- %.4f per row "
                "(posterior predictive over %zu mixture draws, original scale)\n", T, rmse, mll, se, M);
  if (Nd > 0) {
    outputs(c, Nd, c->Xd, M, Z, chunk, Wp, A, Fd);
    recalibrate(c, M, F, Fd, var, vd, lik, acc, json, text);
  }
done:
  free(Z), free(Wp), free(A), free(F), free(Fd), free(lik), free(acc), free(var), free(vd);
  return st;
}

/* --init=target: SVGD's initialisation (bayesian_nn.py, Liu & Wang 2016) of particle k from
 * its stream (seed, k, GFV_PURPOSE_INIT): W1 ~ N(0, 1/(p + 1)), w2 ~ N(0, 1/(H + 1)) (normals
 * of the sequence (0, 0)), biases 0; lambda from its prior Gamma(a0, b0), an exponential of
 * rate b0 for a0 = 1 (word 0 of the sequence (1, 0)); log gamma = -log of the initial
 * network's mean squared residual on the training rows (SVGD: on a random 1000 of them when
 * there are more), the noise level the starting network actually has. */
static int bnn_init_mean(const gfv_target *t, unsigned long seed, size_t k, double *mu) {
  bnn_ctx *c = t->ctx;
  const size_t p = c->p, H = c->H, D = c->D, N = c->N;
  const gfv_stream st = gfv_stream_make(seed, (uint64_t)k, GFV_PURPOSE_INIT);
  gfv_stream_normals(&st, 0, 0, D, mu);
  const double s1 = 1.0 / sqrt((double)p + 1.0), s2 = 1.0 / sqrt((double)H + 1.0);
  for (size_t a = 0; a < p * H; a++) mu[a] *= s1;
  double *b1 = mu + p * H, *w2 = b1 + H;
  for (size_t h = 0; h < H; h++) b1[h] = 0.0, w2[h] *= s2;
  w2[H] = 0.0; /* b2 */
  mu[D - 1] = log(-log(gfv_u01(gfv_stream_word(&st, 1, 0, 0))) / BNN_B0);
  forward(c, N, c->X, 1, mu, c->Wp, c->A, c->F); /* the scratch holds chunk >= 1 points on N rows */
  double ss = 0;
  for (size_t i = 0; i < N; i++) ss += (c->F[i] - c->y[i]) * (c->F[i] - c->y[i]);
  mu[D - 2] = -log(ss / (double)N);
  GFV_CHECK(isfinite(mu[D - 2]), GFV_ERR_NUMERIC,
            "--init=target: particle %zu's starting network has mean squared residual %g on the "
            "training rows, so no finite noise precision; use --init=prior", k + 1, ss / (double)N);
  return GFV_OK;
}

/* draws.csv: z as it is, then the noise standard deviation on the response's scale. */
static int bnn_constrain(const gfv_target *t, size_t n, const double *z, const unsigned long *seeds,
                         double *out) {
  (void)seeds;
  const bnn_ctx *c = t->ctx;
  for (size_t i = 0; i < n; i++) {
    double *o = out + i * t->nout;
    memcpy(o, z + i * c->D, c->D * sizeof(double));
    o[c->D] = c->ysd * exp(-0.5 * z[i * c->D + c->D - 2]);
  }
  return GFV_OK;
}

/* W1[a,h] (input a, unit h, row-major as in z), b1[h], w2[h], b2, log_gamma, log_lambda;
 * then noise_sd, a transformed parameter. */
static int bnn_names(gfv_target *t) {
  const bnn_ctx *c = t->ctx;
  const size_t p = c->p, H = c->H, D = c->D;
  t->nout = D + 1;
  GFV_CALL(gfv_names_alloc(t->nout, &t->out_names));
  GFV_CALL(gfv_names_alloc(D, &t->dim_names));
  GFV_CALL(gfv_calloc(&t->out_groups, t->nout, sizeof(int)));
  char **nm = t->out_names;
  for (size_t a = 0; a < p; a++)
    for (size_t h = 0; h < H; h++) GFV_CALL(gfv_names_set(nm, a * H + h, "W1[%zu,%zu]", a + 1, h + 1));
  for (size_t h = 0; h < H; h++) {
    GFV_CALL(gfv_names_set(nm, p * H + h, "b1[%zu]", h + 1));
    GFV_CALL(gfv_names_set(nm, p * H + H + h, "w2[%zu]", h + 1));
  }
  GFV_CALL(gfv_names_set(nm, D - 3, "b2"));
  GFV_CALL(gfv_names_set(nm, D - 2, "log_gamma"));
  GFV_CALL(gfv_names_set(nm, D - 1, "log_lambda"));
  GFV_CALL(gfv_names_set(nm, D, "noise_sd"));
  t->out_groups[D] = 1;
  for (size_t a = 0; a < D; a++) GFV_CALL(gfv_names_set(t->dim_names, a, "%s", nm[a]));
  return GFV_OK;
}

/* --predict: the response, noise included, over GFV_PREDICT_DRAWS draws of the mixture
 * (each with one noise draw), per row of raw inputs; rows in blocks to bound the scratch.
 * The noise of draw m is normal m of the sequence (0, 0) of the stream (seed, 0,
 * GFV_PURPOSE_PREDICT_NOISE), the same at every row, as the mixture draws are: a row's
 * summary depends on its inputs alone, not on its place in the file. */
#define BNN_PREDICT_BLOCK 64
static int bnn_predict(const gfv_target *t, const gfv_fitted_mixture *fit, size_t rows,
                       const double *X, FILE *csv) {
  const bnn_ctx *c = t->ctx;
  const size_t M = GFV_PREDICT_DRAWS, H = c->H, D = c->D, p = c->p;
  const size_t R = rows < BNN_PREDICT_BLOCK ? rows : BNN_PREDICT_BLOCK;
  size_t chunk = BNN_CHUNK_ELEMS / (R * H);
  chunk = chunk < 1 ? 1 : chunk > 64 ? 64 : chunk;
  double *Z = NULL, *Wp = NULL, *A = NULL, *F = NULL, *Xs = NULL, *y = NULL, *eps = NULL;
  const gfv_stream noise = gfv_stream_make(fit->seed, 0, GFV_PURPOSE_PREDICT_NOISE);
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_calloc(&Z, M * D, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&Wp, p * chunk * H, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&A, R * chunk * H, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&F, M * R, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&Xs, R * p, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&y, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&eps, M, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_fit_draw(fit, GFV_PURPOSE_PREDICT, M, Z), done);
  gfv_stream_normals(&noise, 0, 0, M, eps);
  gfv_predict_header(csv);
  for (size_t r0 = 0; r0 < rows; r0 += R) {
    size_t nr = rows - r0 < R ? rows - r0 : R;
    for (size_t r = 0; r < nr; r++)
      for (size_t a = 0; a < p; a++) Xs[r * p + a] = (X[(r0 + r) * p + a] - c->mean[a]) / c->sd[a];
    for (size_t m0 = 0; m0 < M; m0 += chunk) {
      size_t nc = M - m0 < chunk ? M - m0 : chunk;
      forward(c, nr, Xs, nc, Z + m0 * D, Wp, A, F + m0 * nr);
    }
    for (size_t r = 0; r < nr; r++) {
      for (size_t m = 0; m < M; m++)
        y[m] = c->ymean + c->ysd * (F[m * nr + r] + exp(-0.5 * Z[m * D + D - 2]) * eps[m]);
      fprintf(csv, "%zu", r0 + r + 1);
      gfv_predict_row(csv, M, y);
    }
  }
done:
  free(Z), free(Wp), free(A), free(F), free(Xs), free(y), free(eps);
  return st;
}

static int bnn_describe(const gfv_target *t, FILE *json) {
  const bnn_ctx *c = t->ctx;
  fputs(c->describe, json);
  fprintf(json, ",\n    \"response_mean\": %.17g,\n    \"response_scale\": %.17g", c->ymean, c->ysd);
  return GFV_OK;
}

/* What the outputs, the predictions and summary.json's "data" need from the data set. */
static int keep_data(gfv_target *t, const gfv_data *data) {
  bnn_ctx *c = t->ctx;
  GFV_ALLOC(c->mean, c->p);
  GFV_ALLOC(c->sd, c->p);
  memcpy(c->mean, data->mean, c->p * sizeof(double));
  memcpy(c->sd, data->sd, c->p * sizeof(double));
  size_t len = 0;
  FILE *f = open_memstream(&c->describe, &len);
  GFV_CHECK(f, GFV_ERR_MEMORY, "cannot allocate the data description");
  gfv_data_describe(data, f);
  GFV_CHECK(fclose(f) == 0, GFV_ERR_MEMORY, "cannot allocate the data description");
  GFV_CALL(bnn_names(t));
  t->constrain = bnn_constrain;
  t->predict = bnn_predict;
  t->predict_cols = c->p;
  t->describe = bnn_describe;
  return GFV_OK;
}

static int setup(bnn_ctx *c, const gfv_config *cfg, gfv_data *data) {
  c->p = data->train.p, c->H = (size_t)cfg->hidden, c->N = data->train.n, c->T = data->test.n;
  c->nw = (c->p + 2) * c->H + 1, c->D = c->nw + 2;
  /* the response: centred and scaled by its training statistics */
  double m = 0, v = 0;
  for (size_t i = 0; i < c->N; i++) m += data->train.y[i];
  m /= (double)c->N;
  for (size_t i = 0; i < c->N; i++) v += (data->train.y[i] - m) * (data->train.y[i] - m);
  c->ymean = m, c->ysd = sqrt(v / (double)c->N);
  GFV_CHECK(c->ysd > 0, GFV_ERR_INPUT, "%s: the response (column %zu) is constant on the training rows",
            cfg->data, data->label_col + 1);
  for (size_t i = 0; i < c->N; i++) data->train.y[i] = (data->train.y[i] - m) / c->ysd;
  /* take the arrays over from data */
  c->X = data->train.X, c->y = data->train.y, c->Xt = data->test.X, c->yt = data->test.y;
  data->train.X = data->train.y = data->test.X = data->test.y = NULL;
  c->Nd = data->dev.n, c->Xd = data->dev.X, c->yd = data->dev.y;
  data->dev.X = data->dev.y = NULL;
  c->B = (size_t)cfg->batch_size;
  c->full = 1, c->nb = c->N;
  if (c->B > 0 && c->B < c->N) {
    GFV_ALLOC(c->perm, c->N);
    GFV_ALLOC(c->Xb, c->B * c->p);
    GFV_ALLOC(c->yb, c->B);
  }
  size_t chunk = BNN_CHUNK_ELEMS / (c->N * c->H); /* the full batch is the largest */
  c->chunk = chunk < 1 ? 1 : chunk > 64 ? 64 : chunk;
  const size_t cH = c->chunk * c->H;
  GFV_ALLOC(c->Wp, c->p * cH);
  GFV_ALLOC(c->A, c->N * cH);
  GFV_ALLOC(c->dA, c->N * cH);
  GFV_ALLOC(c->G1, c->p * cH);
  GFV_ALLOC(c->F, c->chunk * c->N);
  c->prior_const = 2.0 * (BNN_A0 * log(BNN_B0) - lgamma(BNN_A0));
  return GFV_OK;
}

int gfv_target_bnn_create(const gfv_config *cfg, gfv_target **out) {
  *out = NULL;
  gfv_data data;
  GFV_CALL(gfv_data_load(cfg, "bnn", GFV_STD_CENTER_SCALE, 0, &data));
  gfv_target *t = NULL;
  bnn_ctx *c = NULL;
  int st = GFV_OK;
  /* Counted in doubles first: a huge --hidden wrapped the size_t products (dimension, rows
   * x units) and the chunk size divided by zero (SIGFPE). */
  const size_t p = data.train.p;
  const double Dd = ((double)p + 2) * (double)cfg->hidden + 3;
  if (Dd > BNN_MAX_DIM) {
    gfv_data_free(&data);
    GFV_ERROR(GFV_ERR_USAGE, "--hidden=%ld: a network on %zu inputs would have %.3g parameters, "
              "more than the %.0e any family can fit", cfg->hidden, p, Dd, BNN_MAX_DIM);
  }
  size_t D = (p + 2) * (size_t)cfg->hidden + 3;
  GFV_CALL_GOTO(st, gfv_target_alloc("bnn", D, &t), fail);
  t->has_hessian = 0;
  t->normalized = 0;
  t->eval = bnn_eval;
  t->destroy = bnn_destroy;
  t->begin_iteration = bnn_begin_iteration;
  t->report = bnn_report;
  t->init_mean = bnn_init_mean;
  GFV_CALL_GOTO(st, gfv_calloc(&c, 1, sizeof *c), fail);
  t->ctx = c;
  GFV_CALL_GOTO(st, setup(c, cfg, &data), fail);
  GFV_CALL_GOTO(st, keep_data(t, &data), fail);
  gfv_data_free(&data);
  *out = t;
  return GFV_OK;
fail:
  gfv_data_free(&data);
  gfv_target_free(t);
  return st;
}

int gfv_target_bnn_layout(const gfv_target *t, size_t *p, size_t *H, size_t *ntrain) {
  GFV_CHECK(t && t->eval == bnn_eval, GFV_ERR_INTERNAL, "not a bnn target");
  const bnn_ctx *c = t->ctx;
  *p = c->p, *H = c->H, *ntrain = c->N;
  return GFV_OK;
}

int gfv_target_bnn_batch(const gfv_target *t, size_t *B, const size_t **rows) {
  GFV_CHECK(t && t->eval == bnn_eval, GFV_ERR_INTERNAL, "not a bnn target");
  const bnn_ctx *c = t->ctx;
  *B = c->nb;
  *rows = c->full ? NULL : c->perm;
  return GFV_OK;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option bnn_options[] = {
    {.name = "hidden", .type = OPT_LONG, OPT_FIELD(hidden), .def = "50", .bound = BOUND_GE, .lo = 1,
     .role = ROLE_PROBLEM,
     .help = "bnn: hidden units (one ReLU layer)"},
    {.name = "batch-size", .type = OPT_LONG, OPT_FIELD(batch_size), .def = "0", .bound = BOUND_GE,
     .role = ROLE_PROBLEM,
     .lo = 0,
     .help = "bnn: training rows per minibatch, drawn per iteration from (seed, iteration); "
             "0 = all rows"},
    {.name = "dev-fraction", .type = OPT_DOUBLE, OPT_FIELD(dev_fraction), .def = "0",
     .bound = BOUND_BETWEEN, .lo = 0, .hi = 0.9, .role = ROLE_PROBLEM,
     .help = "bnn: hold out the last round(f n) of the n training rows as a development set "
             "(not trained on); the report then also scores the test set with each draw's "
             "noise recalibrated on them (SVGD's protocol); 0 = none"},
};
GFV_OPTION_TABLE(gfv_options_bnn, bnn_options);

/* ---- the type (src/targets/registry.h; listed in target_list.h) ---- */

static int create_bnn(const char *arg, size_t dim, const gfv_config *cfg, gfv_target **out) {
  (void)arg, (void)dim;
  return gfv_target_bnn_create(cfg, out);
}

const gfv_target_type gfv_target_type_bnn = {
    .name = "bnn", .synopsis = "bnn",
    .help = "Bayesian neural-network regression on --data, one ReLU layer of --hidden units",
    .needs_config = 1, .create = create_bnn, .options = &gfv_options_bnn};
