/* banana.c - the "banana" target: a 2-D twisted Gaussian, normalized, with a Hessian.
 *
 *   x1 ~ N(0, 2^2),   x2 | x1 ~ N(b (x1^2 - 4), 1),   b = 0.25.
 * Equivalently (x1, u) with u = x2 - b (x1^2 - 4) is N(0, diag(4, 1)); the map is a shear
 * with Jacobian 1, so the density stays normalized:
 *   l = -log(2 pi) - log 2 - x1^2 / 8 - u^2 / 2.
 * With du/dx1 = -2 b x1 and du/dx2 = 1:
 *   dl/dx1 = -x1/4 + 2 b x1 u,          dl/dx2 = -u,
 *   d2l/dx1^2 = -1/4 + 2 b u - 4 b^2 x1^2,   d2l/dx1dx2 = 2 b x1,   d2l/dx2^2 = -1.
 * The curved ridge x2 = b (x1^2 - 4) makes one Gaussian a poor fit and the Hessian
 * indefinite away from it (where 2 b u > 1/4 + 4 b^2 x1^2). */
#include <math.h>

#include "gflowvi/error.h"
#include "targets/registry.h"
#include "targets/targets_impl.h"

#define BANANA_B 0.25

static int banana_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                       double *hess) {
  (void)t;
  const double b = BANANA_B, c0 = -log(2.0 * M_PI) - log(2.0);
  for (size_t i = 0; i < n; i++) {
    double x1 = z[2 * i], x2 = z[2 * i + 1];
    double u = x2 - b * (x1 * x1 - 4.0);
    logp[i] = c0 - x1 * x1 / 8.0 - 0.5 * u * u;
    if (grad) {
      grad[2 * i] = -x1 / 4.0 + 2.0 * b * x1 * u;
      grad[2 * i + 1] = -u;
    }
    if (hess) {
      double *H = hess + 4 * i;
      H[0] = -0.25 + 2.0 * b * u - 4.0 * b * b * x1 * x1;
      H[1] = H[2] = 2.0 * b * x1;
      H[3] = -1.0;
    }
  }
  return GFV_OK;
}

int gfv_target_banana_create(gfv_target **out) {
  gfv_target *t;
  GFV_CALL(gfv_target_alloc("banana", 2, &t));
  t->has_hessian = 1;
  t->normalized = 1;
  t->eval = banana_eval;
  /* x1 within +-3.5 sd; x2 from 3 sd below the ridge's lowest point (-1) up to where the
   * ridge is at x1 = +-6 (b 32 = 8) plus 2 sd. */
  t->has_box = 1;
  t->box[0] = -7.0, t->box[1] = 7.0, t->box[2] = -4.0, t->box[3] = 10.0;
  *out = t;
  return GFV_OK;
}

/* ---- the type (src/targets/registry.h; listed in target_list.h) ---- */

static int create_banana(const char *arg, size_t dim, const gfv_config *cfg, gfv_target **out) {
  (void)arg, (void)dim, (void)cfg;
  return gfv_target_banana_create(out);
}

const gfv_target_type gfv_target_type_banana = {
    .name = "banana", .synopsis = "banana",
    .help = "2-D twisted Gaussian: x1 ~ N(0, 2^2), x2 | x1 ~ N(0.25 (x1^2 - 4), 1)",
    .create = create_banana};
