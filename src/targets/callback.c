/* callback.c - the target whose log density is a caller's function (gfv_target_create_callback,
 * include/gflowvi/target.h): the way the Python package, or any program embedding the
 * library, supplies a density without writing a plugin.
 *
 * As for plugins, the function always gets a gradient buffer (scratch when the solver asks
 * for log densities only), so it never has to test grad for NULL. */
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "gflowvi/target.h"
#include "targets/targets_impl.h"

typedef struct {
  gfv_density_fn fn;
  void *user;
  double *gscratch; /* grad buffer when the caller passes none */
  size_t gcap;      /* points it holds */
} callback_ctx;

static void callback_destroy(void *p) {
  callback_ctx *c = p;
  if (!c) return;
  free(c->gscratch);
  free(c);
}

static int callback_eval(const gfv_target *t, size_t n, const double *z, double *logp, double *grad,
                         double *hess) {
  callback_ctx *c = t->ctx;
  const size_t d = t->dim;
  double *g;
  GFV_CALL(gfv_target_grad_buffer(grad, n, d, &c->gscratch, &c->gcap, "log density callback", &g));
  /* Nothing is pending here (a status is passed up at once), so a message found after the
   * call is the function's own. */
  gfv_error_clear();
  int rc = c->fn(c->user, n, d, z, logp, g, hess);
  if (rc == 0) return GFV_OK;
  const char *msg = gfv_error_message();
  if (!msg[0]) GFV_ERROR(GFV_ERR_INPUT, "log density callback failed (returned %d)", rc);
  char copy[1024]; /* gfv_error_set formats into the buffer msg points to */
  snprintf(copy, sizeof copy, "%s", msg);
  GFV_ERROR(GFV_ERR_INPUT, "log density callback failed: %s", copy);
}

int gfv_target_create_callback(size_t dim, gfv_density_fn fn, void *ctx, unsigned flags,
                               gfv_target **out) {
  *out = NULL;
  GFV_CHECK(dim >= 1, GFV_ERR_USAGE, "callback target: the dimension must be at least 1");
  GFV_CHECK(fn, GFV_ERR_USAGE, "callback target: no log density function (NULL)");
  GFV_CHECK(!(flags & ~(unsigned)(GFV_CALLBACK_HESSIAN | GFV_CALLBACK_NORMALIZED)), GFV_ERR_USAGE,
            "callback target: unknown flags 0x%x (known: GFV_CALLBACK_HESSIAN, "
            "GFV_CALLBACK_NORMALIZED)", flags);
  gfv_target *t = NULL;
  int st = GFV_OK;
  GFV_CALL(gfv_target_alloc("callback", dim, &t));
  t->has_hessian = (flags & GFV_CALLBACK_HESSIAN) != 0;
  t->normalized = (flags & GFV_CALLBACK_NORMALIZED) != 0;
  t->eval = callback_eval;
  t->destroy = callback_destroy;
  callback_ctx *c = NULL;
  GFV_CALL_GOTO(st, gfv_calloc(&c, 1, sizeof *c), fail);
  t->ctx = c;
  c->fn = fn;
  c->user = ctx;
  *out = t;
  return GFV_OK;
fail:
  gfv_target_free(t);
  return st;
}
