/* particles.h - this rank's block of particles: the mixture components it owns and their
 * weights.
 *
 * Particles are block-distributed: rank r owns K/P particles, one more for r < K mod P.
 * Particle k's random streams are keyed by (seed, k) alone (rng/stream.h), so what it
 * samples does not depend on the number of ranks. */
#ifndef GFLOWVI_PARTICLES_H
#define GFLOWVI_PARTICLES_H

#include <stddef.h>
#include <stdint.h>

#include "gflowvi/mixture.h"
#include "mixture/family.h"
#include "rng/stream.h"

typedef struct {
  size_t d, K;       /* dimension, global number of particles */
  size_t k0, kloc;   /* first global index and count on this rank */
  const gfv_family_type *fam; /* the covariance family (mixture/family.h) */
  size_t psize;      /* numbers per precision: fam->psize(d) */
  double *mu;        /* kloc x d */
  double *P, *L;     /* kloc x psize: precision and its Cholesky factor (diag: p, sqrt(p)) */
  double *logw;      /* kloc: log weights, normalised over all ranks */
  double *logc;      /* kloc: log w + log det(L) - d/2 log 2 pi */
  uint64_t seed;     /* --seed: the key of every particle's streams, with its index */
} gfv_particles;

/* The block of rank `rank` of `size`: first index and count. */
void gfv_block_range(size_t K, int size, int rank, size_t *k0, size_t *kloc);
/* For the v-collectives over the blocks, `row` units per particle: counts[r] and displs[r]
 * of every rank r (size entries each). */
void gfv_block_counts(size_t K, int size, size_t row, size_t *counts, size_t *displs);
/* The rank whose block holds particle k (the inverse of gfv_block_range; K >= size). */
int gfv_block_owner(size_t K, int size, size_t k);

/* Stream `purpose` (GFV_PURPOSE_*) of local particle j: key (seed, k0 + j). */
gfv_stream gfv_particles_stream(const gfv_particles *p, size_t j, unsigned purpose);

/* Allocates the block (parameters zeroed). */
int gfv_particles_alloc(size_t d, size_t K, size_t k0, size_t kloc, const gfv_family_type *fam,
                        unsigned long seed,
                        gfv_particles *p);
void gfv_particles_free(gfv_particles *p);

/* Initial state: mean ~ N(0, scale^2 I) from the particle's own stream (GFV_PURPOSE_INIT,
 * counter (0, 0)), covariance var*I, equal weights. */
void gfv_particles_init(gfv_particles *p, double scale, double var);

/* Copies parameters and weights from src to dst, same shape. */
void gfv_particles_copy_params(gfv_particles *dst, const gfv_particles *src);

/* Recomputes logc from logw and L. */
void gfv_particles_update_logc(gfv_particles *p);

/* A view of the block for the mixture kernel. */
gfv_mix_view gfv_particles_view(const gfv_particles *p);

/* Draws S samples of component j: eps ~ N(0, I), the S d normals of the sequence (hi, lo)
 * of stream st, z = mu + L^{-T} eps.  z holds S x d. */
void gfv_particles_sample(const gfv_particles *p, size_t j, const gfv_stream *st, uint64_t hi,
                          uint64_t lo, size_t S, double *z);

/* z = mu + L^{-T} eps of component j, in place: z holds S x d normals on entry. */
void gfv_particles_transform(const gfv_particles *p, size_t j, size_t S, double *z);

#endif
