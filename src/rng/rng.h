/* rng.h - Gaussian draws from a GSL generator, for the tests' own data (their data sets,
 * random matrices, synthetic log ratios).  The program itself draws only from the
 * counter-based streams of stream.h.  GSL's distribution headers pull in GSL's own CBLAS
 * declarations, which clash with OpenBLAS's cblas.h, so gsl_randist stays behind this
 * function and the numerical files include only cblas.h. */
#ifndef GFLOWVI_RNG_H
#define GFLOWVI_RNG_H

#include <gsl/gsl_rng.h>
#include <stddef.h>

/* n independent N(0, 1) draws into out. */
void gfv_rng_gaussian_fill(gsl_rng *rng, size_t n, double *out);

#endif
