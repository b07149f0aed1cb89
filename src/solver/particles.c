/* particles.c - the rank's particles: allocation, seeding, initial state, sampling. */
#include "solver/particles.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "rng/rng.h"

void gfv_block_range(size_t K, int size, int rank, size_t *k0, size_t *kloc) {
  size_t P = (size_t)size, r = (size_t)rank, base = K / P, extra = K % P;
  *kloc = base + (r < extra ? 1 : 0);
  *k0 = r * base + (r < extra ? r : extra);
}

/* splitmix64: a good 64-bit mixer, so nearby (seed, k) give unrelated streams. */
static unsigned long long splitmix64(unsigned long long x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

unsigned long gfv_stream_seed(unsigned long seed, size_t k, unsigned stream) {
  unsigned long long s = splitmix64(splitmix64((unsigned long long)seed) ^ (unsigned long long)k);
  s = splitmix64(s ^ ((unsigned long long)stream << 56));
  /* GSL's MT19937 uses the low 32 bits; 0 would select GSL's default seed. */
  unsigned long out = (unsigned long)(s & 0xffffffffULL);
  return out ? out : 1;
}

int gfv_particles_alloc(size_t d, size_t K, size_t k0, size_t kloc, int diag, unsigned long seed,
                        gfv_particles *p) {
  memset(p, 0, sizeof *p);
  p->d = d, p->K = K, p->k0 = k0, p->kloc = kloc, p->diag = diag;
  p->psize = diag ? d : d * d;
  GFV_ALLOC(p->mu, kloc * d);
  GFV_ALLOC(p->P, kloc * p->psize);
  GFV_ALLOC(p->L, kloc * p->psize);
  GFV_ALLOC(p->logw, kloc);
  GFV_ALLOC(p->logc, kloc);
  GFV_ALLOC(p->rng, kloc);
  for (size_t j = 0; j < kloc; j++) {
    p->rng[j] = gsl_rng_alloc(gsl_rng_mt19937);
    GFV_CHECK(p->rng[j], GFV_ERR_MEMORY, "cannot allocate a random stream");
    gsl_rng_set(p->rng[j], gfv_stream_seed(seed, k0 + j, 0));
  }
  return GFV_OK;
}

void gfv_particles_free(gfv_particles *p) {
  if (p->rng)
    for (size_t j = 0; j < p->kloc; j++) gsl_rng_free(p->rng[j]);
  free(p->rng), free(p->mu), free(p->P), free(p->L), free(p->logw), free(p->logc);
  memset(p, 0, sizeof *p);
}

void gfv_particles_init(gfv_particles *p, double scale, double var) {
  const size_t d = p->d, ps = p->psize, stride = p->diag ? 1 : d + 1;
  for (size_t j = 0; j < p->kloc; j++) {
    double *P = p->P + j * ps, *L = p->L + j * ps;
    gfv_rng_gaussian_fill(p->rng[j], d, p->mu + j * d);
    for (size_t t = 0; t < d; t++) p->mu[j * d + t] *= scale;
    memset(P, 0, ps * sizeof(double));
    memset(L, 0, ps * sizeof(double));
    for (size_t t = 0; t < d; t++) { /* diagonal entries; in the diag family, all entries */
      P[t * stride] = 1.0 / var;
      L[t * stride] = 1.0 / sqrt(var);
    }
    p->logw[j] = -log((double)p->K);
  }
  gfv_particles_update_logc(p);
}

void gfv_particles_copy_params(gfv_particles *dst, const gfv_particles *src) {
  const size_t n = src->kloc, d = src->d;
  memcpy(dst->mu, src->mu, n * d * sizeof(double));
  memcpy(dst->P, src->P, n * src->psize * sizeof(double));
  memcpy(dst->L, src->L, n * src->psize * sizeof(double));
  memcpy(dst->logw, src->logw, n * sizeof(double));
  memcpy(dst->logc, src->logc, n * sizeof(double));
}

void gfv_particles_update_logc(gfv_particles *p) {
  if (p->diag) gfv_mix_log_const_diag(p->d, p->kloc, p->logw, p->P, p->logc);
  else gfv_mix_log_const(p->d, p->kloc, p->logw, p->L, p->logc);
}

gfv_mix_view gfv_particles_view(const gfv_particles *p) {
  gfv_mix_view v = {p->d, p->kloc, p->mu, p->P, p->L, p->logc, p->diag};
  return v;
}

void gfv_particles_sample(const gfv_particles *p, size_t j, gsl_rng *rng, size_t S, double *z) {
  const size_t d = p->d;
  gfv_rng_gaussian_fill(rng, S * d, z);
  if (p->diag) { /* x = eps / sqrt(p), L holding sqrt(p) */
    const double *l = p->L + j * d;
    for (size_t i = 0; i < S; i++)
      for (size_t t = 0; t < d; t++) z[i * d + t] /= l[t];
  } else {
    /* Rows x^T = eps^T L^{-1}, i.e. x = L^{-T} eps, has covariance (L L^T)^{-1} = Sigma. */
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (int)S, (int)d,
                1.0, p->L + j * d * d, (int)d, z, (int)d);
  }
  for (size_t i = 0; i < S; i++)
    for (size_t t = 0; t < d; t++) z[i * d + t] += p->mu[j * d + t];
}
