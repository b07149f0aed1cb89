/* funnel.c - the "funnel" target: Neal's funnel in d >= 2 dimensions, normalized, with a
 * Hessian.
 *
 *   v = z_0 ~ N(0, 3^2),   z_i | v ~ N(0, e^v)  for i = 1, ..., d-1.
 * With S = sum_{i>=1} z_i^2:
 *   l = -d/2 log(2 pi) - log 3 - v^2/18 - (d-1) v/2 - e^{-v} S / 2,
 *   dl/dv = -v/9 - (d-1)/2 + e^{-v} S / 2,      dl/dz_i = -e^{-v} z_i,
 *   d2l/dv^2 = -1/9 - e^{-v} S / 2,   d2l/dv dz_i = e^{-v} z_i,   d2l/dz_i dz_j = -e^{-v} delta_ij.
 * The scale of z_i changes by e^{+-4.5} within v = +-3 sd: the neck defeats a single
 * Gaussian and any fixed step size.  For v below about -709, e^{-v} overflows and l is
 * returned as -inf or NaN, as target.h asks, rather than failing. */
#include <math.h>
#include <string.h>

#include "gflowvi/error.h"
#include "targets/registry.h"
#include "targets/targets_impl.h"

static int funnel_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                       double *hess) {
  const size_t d = t->dim, dd = d * d;
  const double c0 = -0.5 * (double)d * log(2.0 * M_PI) - log(3.0), m = (double)(d - 1);
  for (size_t i = 0; i < n; i++) {
    const double *zi = z + i * d;
    double v = zi[0], e = exp(-v), S = 0.0;
    for (size_t a = 1; a < d; a++) S += zi[a] * zi[a];
    logp[i] = c0 - v * v / 18.0 - 0.5 * m * v - 0.5 * e * S;
    if (grad) {
      double *g = grad + i * d;
      g[0] = -v / 9.0 - 0.5 * m + 0.5 * e * S;
      for (size_t a = 1; a < d; a++) g[a] = -e * zi[a];
    }
    if (hess) {
      double *H = hess + i * dd;
      memset(H, 0, dd * sizeof(double));
      H[0] = -1.0 / 9.0 - 0.5 * e * S;
      for (size_t a = 1; a < d; a++) {
        H[a] = H[a * d] = e * zi[a];
        H[a * d + a] = -e;
      }
    }
  }
  return GFV_OK;
}

int gfv_target_funnel_create(size_t dim, gfv_target **out) {
  GFV_CHECK(dim >= 2, GFV_ERR_INTERNAL, "funnel: dimension %zu < 2", dim);
  gfv_target *t;
  GFV_CALL(gfv_target_alloc("funnel", dim, &t));
  t->has_hessian = 1;
  t->normalized = 1;
  t->eval = funnel_eval;
  if (dim == 2) {
    /* v within +-8/3 sd; z_1 within +-20, about 2.7 sd of the mouth at v = 4 (e^2 = 7.4):
     * the window shows the neck and most of the mouth without flattening the neck away. */
    t->has_box = 1;
    t->box[0] = -8.0, t->box[1] = 8.0, t->box[2] = -20.0, t->box[3] = 20.0;
  }
  *out = t;
  return GFV_OK;
}

/* ---- the type (src/targets/registry.h; listed in target_list.h) ---- */

static int create_funnel(const char *arg, size_t dim, const gfv_config *cfg, gfv_target **out) {
  (void)arg, (void)cfg;
  return gfv_target_funnel_create(dim, out);
}

const gfv_target_type gfv_target_type_funnel = {
    .name = "funnel", .synopsis = "funnel", .default_dim = 10, .min_dim = 2,
    .help = "Neal's funnel, --dim (default 10): z_0 ~ N(0, 3^2), z_i | z_0 ~ N(0, exp(z_0)) for "
            "i >= 1",
    .create = create_funnel};
