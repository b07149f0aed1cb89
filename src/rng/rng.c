/* rng.c - Gaussian draws over GSL generators, for the tests (see rng.h). */
#include "rng/rng.h"

#include <gsl/gsl_randist.h>

void gfv_rng_gaussian_fill(gsl_rng *rng, size_t n, double *out) {
  /* The ziggurat method: several times faster than Box-Muller, same stream semantics. */
  for (size_t i = 0; i < n; i++) out[i] = gsl_ran_gaussian_ziggurat(rng, 1.0);
}
