/* init_file.c - the warm start, --init=FILE: the particles from the mixture.csv of an
 * earlier fit, read and checked by the reader of the gmm:FILE target
 * (gfv_mixture_file_read: a malformed file, another dimension, a weight <= 0, a covariance
 * that is not symmetric positive definite are GFV_ERR_INPUT naming the file).
 *
 * Any K.  With K <= the file's k components, the K heaviest are kept (in file order, so a
 * file read back at its own K gives its own mixture).  With K > k, the heaviest component
 * (the first among equals) is split in two until there are K: the halves get half its
 * weight each and means m -+ SPLIT_JITTER L eps (L L^T its covariance, eps from the new
 * component's own stream (seed, index)), an antithetic pair that keeps the mixture's mean
 * and puts the halves one covariance-standard deviation apart on average, far enough for
 * their samples to differ, near enough that the fit's density barely changes; covariances
 * as the parent's.
 *
 * Weights: the file's, renormalised, when the weight flow is on (--weight-step > 0): it
 * goes on from them.  Equal (1/K) when it is off: fixed unequal weights could never be
 * corrected then, and equal weights are the paper's method.
 *
 * Families: a full file in a diag run gives each component the variances 1 / (Sigma^-1)_tt,
 * the diagonal Gaussian nearest it in KL(q || p), what the flow minimises (the marginal
 * variances Sigma_tt would overshoot by Sigma_tt (Sigma^-1)_tt in correlated directions); a
 * diag file in a full run gives diagonal matrices.  --init-scale and --init-var are not
 * used. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "rng/stream.h"
#include "solver/init.h"
#include "solver/solver_impl.h"
#include "targets/targets_impl.h"

#define SPLIT_JITTER 0.5

/* The component list: K entries, each a file component (src) with its own weight and mean. */
typedef struct {
  size_t *src;
  double *w, *mu;
} comp_list;

/* The K heaviest of the file's components, in file order. */
static int keep_heaviest(const gfv_mixture_file *f, size_t K, comp_list *c) {
  size_t *order = NULL;
  GFV_CALL(gfv_calloc(&order, f->k, sizeof(size_t)));
  for (size_t i = 0; i < f->k; i++) { /* insertion sort by weight, ties by index */
    size_t j = i;
    for (; j > 0 && f->logw[order[j - 1]] < f->logw[i]; j--) order[j] = order[j - 1];
    order[j] = i;
  }
  double cut = f->logw[order[K - 1]]; /* keep weights above cut, and the first ties at cut */
  size_t at_cut = 0, m = 0;
  for (size_t r = 0; r < K; r++) at_cut += f->logw[order[r]] == cut;
  for (size_t i = 0; i < f->k && m < K; i++) {
    int take = f->logw[i] > cut || (f->logw[i] == cut && at_cut > 0);
    if (!take) continue;
    if (f->logw[i] == cut) at_cut--;
    c->src[m] = i, c->w[m] = exp(f->logw[i]);
    memcpy(c->mu + m * f->d, f->mu + i * f->d, f->d * sizeof(double));
    m++;
  }
  free(order);
  return GFV_OK;
}

/* Splits the heaviest component until there are K. */
static int split_heaviest(const gfv_mixture_file *f, size_t K, unsigned long seed, comp_list *c) {
  const size_t d = f->d;
  double *delta = NULL;
  GFV_CALL(gfv_calloc(&delta, d, sizeof(double)));
  for (size_t i = 0; i < f->k; i++) {
    c->src[i] = i, c->w[i] = exp(f->logw[i]);
    memcpy(c->mu + i * d, f->mu + i * d, d * sizeof(double));
  }
  for (size_t m = f->k; m < K; m++) {
    size_t h = 0;
    for (size_t i = 1; i < m; i++)
      if (c->w[i] > c->w[h]) h = i;
    const size_t s = c->src[h];
    const gfv_stream st = gfv_stream_make(seed, m, GFV_PURPOSE_INIT_SPLIT);
    gfv_stream_normals(&st, 0, 0, d, delta);
    if (f->diag) { /* L = diag(sqrt(var)) */
      for (size_t a = 0; a < d; a++) delta[a] *= sqrt(f->cov[s * d + a]);
    } else { /* L^T-solve with the precision's factor: covariance (L_P L_P^T)^-1 */
      cblas_dtrsv(CblasRowMajor, CblasLower, CblasTrans, CblasNonUnit, (int)d, f->L + s * d * d,
                  (int)d, delta, 1);
    }
    for (size_t a = 0; a < d; a++) {
      c->mu[m * d + a] = c->mu[h * d + a] + SPLIT_JITTER * delta[a];
      c->mu[h * d + a] -= SPLIT_JITTER * delta[a];
    }
    c->w[h] *= 0.5;
    c->w[m] = c->w[h], c->src[m] = s;
  }
  free(delta);
  return GFV_OK;
}

/* Local particle j <- component c of the list, in the run's family. */
static void fill_particle(gfv_particles *p, size_t j, const gfv_mixture_file *f, const comp_list *c,
                          size_t kk) {
  const size_t d = p->d, dd = d * d, s = c->src[kk];
  double *P = p->P + j * p->psize, *L = p->L + j * p->psize;
  memcpy(p->mu + j * d, c->mu + kk * d, d * sizeof(double));
  if (p->fam->rank) { /* lowrank:R: a diagonal file as it is, a full one by its PPCA */
    memset(P, 0, p->psize * sizeof(double));
    for (size_t a = 0; a < d && f->diag; a++) P[a] = 1.0 / f->cov[s * d + a];
    if (f->diag) p->fam->factor(p->fam, d, P, L);
    else p->fam->from_precision(p->fam, d, f->P + s * dd, P, L);
  } else if (p->fam->diag) {
    for (size_t a = 0; a < d; a++) {
      P[a] = f->diag ? 1.0 / f->cov[s * d + a] : f->P[s * dd + a * d + a];
      L[a] = sqrt(P[a]);
    }
  } else if (f->diag) {
    memset(P, 0, dd * sizeof(double));
    memset(L, 0, dd * sizeof(double));
    for (size_t a = 0; a < d; a++) {
      P[a * d + a] = 1.0 / f->cov[s * d + a];
      L[a * d + a] = sqrt(P[a * d + a]);
    }
  } else {
    memcpy(P, f->P + s * dd, dd * sizeof(double));
    memcpy(L, f->L + s * dd, dd * sizeof(double));
  }
}

int gfv_init_from_file(gfv_solver *s, const char *path, char *msg, size_t n) {
  const gfv_config *cfg = s->cfg;
  const size_t d = s->d, K = s->K;
  gfv_mixture_file f;
  comp_list c = {0};
  int st = GFV_OK;
  GFV_CALL(gfv_mixture_file_read(path, d, &f));
  GFV_CALL_GOTO(st, gfv_calloc(&c.src, K, sizeof(size_t)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&c.w, K, sizeof(double)), done);
  GFV_CALL_GOTO(st, gfv_calloc(&c.mu, K * d, sizeof(double)), done);
  if (K <= f.k) GFV_CALL_GOTO(st, keep_heaviest(&f, K, &c), done);
  else GFV_CALL_GOTO(st, split_heaviest(&f, K, (unsigned long)cfg->seed, &c), done);
  double wsum = 0.0;
  for (size_t i = 0; i < K; i++) wsum += c.w[i];
  gfv_particles *p = &s->cur;
  for (size_t j = 0; j < p->kloc; j++) {
    fill_particle(p, j, &f, &c, p->k0 + j);
    p->logw[j] = cfg->weight_step > 0 ? log(c.w[p->k0 + j] / wsum) : -log((double)K);
  }
  gfv_particles_update_logc(p);
  snprintf(msg, n, "warm start from %s: %zu %s component%s, %s K = %zu; %s weights", path, f.k,
           f.diag ? "diagonal" : "full", f.k == 1 ? "" : "s",
           K == f.k ? "all kept for" : K < f.k ? "the heaviest kept for" : "the heaviest split for", K,
           cfg->weight_step > 0 ? "the file's" : "equal (--weight-step=0)");
done:
  free(c.src), free(c.w), free(c.mu);
  gfv_mixture_file_free(&f);
  return st;
}
