/* rng.h - random streams and draws.  GSL's distribution headers pull in GSL's own CBLAS
 * declarations, which clash with OpenBLAS's cblas.h, so every use of gsl_randist lives
 * behind this small interface and the numerical files include only cblas.h. */
#ifndef GFLOWVI_RNG_H
#define GFLOWVI_RNG_H

#include <gsl/gsl_rng.h>
#include <stddef.h>

/* n independent N(0, 1) draws into out. */
void gfv_rng_gaussian_fill(gsl_rng *rng, size_t n, double *out);

/* A sampler of indices 0..n-1 with probabilities proportional to w (all >= 0). */
typedef struct gfv_discrete gfv_discrete;
int gfv_discrete_alloc(size_t n, const double *w, gfv_discrete **out);
size_t gfv_discrete_draw(const gfv_discrete *t, gsl_rng *rng);
void gfv_discrete_free(gfv_discrete *t);

#endif
