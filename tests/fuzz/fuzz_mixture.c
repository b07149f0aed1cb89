/* fuzz_mixture.c - the mixture file of --target=gmm:FILE (gfv_target_create): any bytes
 * as the file.  A mixture that is accepted is evaluated, with gradient and Hessian, at
 * the origin and 8 fixed points around it, as the solver would: an accepted file must
 * give a log density that is never NaN (-inf far out is fine). */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <math.h>

#include "gflowvi/target.h"

#define MAX_POINTS 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  char spec[96];
  snprintf(spec, sizeof spec, "gmm:%s", fuzz_file(data, size));
  gfv_target *t = NULL;
  int st = gfv_target_create(spec, 0, &t);
  if (st == GFV_OK) {
    FUZZ_ASSERT(t && t->dim >= 1 && t->has_hessian, "bad target");
    const size_t d = t->dim;
    double *z = calloc(MAX_POINTS * d, sizeof *z), *logp = calloc(MAX_POINTS, sizeof *logp);
    double *grad = calloc(MAX_POINTS * d, sizeof *grad), *hess = calloc(MAX_POINTS * d * d, sizeof *hess);
    FUZZ_ASSERT(z && logp && grad && hess, "out of memory");
    size_t n = 1;
    for (; n < MAX_POINTS; n++)
      for (size_t a = 0; a < d; a++) z[n * d + a] = (double)((long)(n + a) % 5) - 2.0;
    st = gfv_target_eval(t, n, z, logp, grad, hess);
    FUZZ_ASSERT(st == GFV_OK, "evaluation failed: %s", gfv_error_message());
    for (size_t i = 0; i < n; i++) FUZZ_ASSERT(!isnan(logp[i]), "log density NaN at point %zu", i);
    free(z), free(logp), free(grad), free(hess);
    gfv_target_free(t);
  } else {
    FUZZ_ASSERT(t == NULL, "a failed create left a target behind");
  }
  FUZZ_ASSERT(st != GFV_OK || !memchr(data, '\0', size), "a file with a NUL byte was accepted");
  fuzz_check_status(st);
  return 0;
}
