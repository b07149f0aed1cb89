/* mixture_fixture.h - a mixture's arrays for the kernel tests (test_mixture, test_prune):
 * k components in d dimensions, zero-filled; each test fills them its own way. */
#ifndef GFV_TEST_MIXTURE_FIXTURE_H
#define GFV_TEST_MIXTURE_FIXTURE_H

#include <stdlib.h>

typedef struct {
  size_t d, k;
  double *mu, *P, *L, *logw, *logc;
} mixture;

static inline mixture mixture_alloc(size_t d, size_t k) {
  mixture m = {d, k, 0, 0, 0, 0, 0};
  m.mu = calloc(k * d, sizeof(double));
  m.P = calloc(k * d * d, sizeof(double));
  m.L = calloc(k * d * d, sizeof(double));
  m.logw = calloc(k, sizeof(double));
  m.logc = calloc(k, sizeof(double));
  return m;
}

static inline void free_mixture(mixture *m) {
  free(m->mu), free(m->P), free(m->L), free(m->logw), free(m->logc);
}

#endif
