/* particles.c - the rank's particles: allocation, initial state, sampling. */
#include "solver/particles.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"

void gfv_block_range(size_t K, int size, int rank, size_t *k0, size_t *kloc) {
  size_t P = (size_t)size, r = (size_t)rank, base = K / P, extra = K % P;
  *kloc = base + (r < extra ? 1 : 0);
  *k0 = r * base + (r < extra ? r : extra);
}

void gfv_block_counts(size_t K, int size, size_t row, size_t *counts, size_t *displs) {
  for (int r = 0; r < size; r++) {
    size_t k0, kl;
    gfv_block_range(K, size, r, &k0, &kl);
    counts[r] = kl * row, displs[r] = k0 * row;
  }
}

int gfv_block_owner(size_t K, int size, size_t k) {
  /* The first K % size blocks hold base + 1 particles, the others base. */
  size_t P = (size_t)size, base = K / P, extra = K % P, big = extra * (base + 1);
  return (int)(k < big ? k / (base + 1) : extra + (k - big) / base);
}

gfv_stream gfv_particles_stream(const gfv_particles *p, size_t j, unsigned purpose) {
  return gfv_stream_make(p->seed, (uint64_t)(p->k0 + j), purpose);
}

int gfv_particles_alloc(size_t d, size_t K, size_t k0, size_t kloc, const gfv_family_type *fam,
                        unsigned long seed, gfv_particles *p) {
  memset(p, 0, sizeof *p);
  p->d = d, p->K = K, p->k0 = k0, p->kloc = kloc, p->fam = fam;
  p->psize = fam->psize(fam, d);
  GFV_ALLOC(p->mu, kloc * d);
  GFV_ALLOC(p->P, kloc * p->psize);
  GFV_ALLOC(p->L, kloc * p->psize);
  GFV_ALLOC(p->logw, kloc);
  GFV_ALLOC(p->logc, kloc);
  p->seed = (uint64_t)seed;
  return GFV_OK;
}

void gfv_particles_free(gfv_particles *p) {
  free(p->mu), free(p->P), free(p->L), free(p->logw), free(p->logc);
  memset(p, 0, sizeof *p);
}

void gfv_particles_init(gfv_particles *p, double scale, double var) {
  const size_t d = p->d, ps = p->psize;
  for (size_t j = 0; j < p->kloc; j++) {
    gfv_stream st = gfv_particles_stream(p, j, GFV_PURPOSE_INIT);
    gfv_stream_normals(&st, 0, 0, d, p->mu + j * d);
    for (size_t t = 0; t < d; t++) p->mu[j * d + t] *= scale;
    p->fam->init(p->fam, d, var, p->P + j * ps, p->L + j * ps);
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
  p->fam->log_const(p->fam, p->d, p->kloc, p->logw, p->P, p->L, p->logc);
}

gfv_mix_view gfv_particles_view(const gfv_particles *p) {
  gfv_mix_view v = {p->d, p->kloc, p->mu, p->P, p->L, p->logc, p->fam->diag, p->fam->rank};
  return v;
}

void gfv_particles_sample(const gfv_particles *p, size_t j, const gfv_stream *st, uint64_t hi,
                          uint64_t lo, size_t S, double *z) {
  gfv_stream_normals(st, hi, lo, S * p->d, z);
  gfv_particles_transform(p, j, S, z);
}

void gfv_particles_transform(const gfv_particles *p, size_t j, size_t S, double *z) {
  p->fam->transform(p->fam, p->d, p->mu + j * p->d, p->L + j * p->psize, S, z);
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

/* The registered families (src/mixture/family.c), in their order, then lowrank:R (listed
 * for --help and the messages; family_accept is what validates). */
static const char *family_choice(size_t i) {
  const gfv_family_type *f = gfv_family_at(i);
  return f ? f->name : gfv_family_at(i - 1) ? "lowrank:R" : NULL;
}
static int family_accept(const char *value) { return gfv_family_lookup(value) != NULL; }
static const gfv_option particles_options[] = {
    {.name = "family", .type = OPT_CHOICE, OPT_FIELD(family), .def = "full",
     .choice_at = family_choice, .accept = family_accept,
     .role = ROLE_PROBLEM,
     .help = "covariance family: full (dense, O(K^2 S d^2) per iteration), diag (diagonal, "
             "O(K^2 S d): for hundreds or thousands of parameters) or lowrank:R (precision "
             "diagonal plus rank R, 1 <= R < d, R <= 32: O(K^2 S d R); stein estimator, ngflow, "
             "samples layout; docs/lowrank.md)"},
    {.name = "particles", .type = OPT_LONG, OPT_FIELD(particles), .def = "20", .bound = BOUND_GE,
     .role = ROLE_PROBLEM,
     .lo = 1, .help = "number of mixture components K (sharded over the ranks; K >= ranks)"},
    {.name = "samples", .type = OPT_LONG, OPT_FIELD(samples), .def = "10", .bound = BOUND_GE,
     .lo = 1,
     .role = ROLE_PROBLEM,
     .help = "Monte Carlo samples per particle per iteration"},
};
GFV_OPTION_TABLE(gfv_options_particles, particles_options);
