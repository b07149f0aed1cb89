/* targets_impl.h - the built-in targets behind the registry (src/targets/registry.c).
 *
 * One file per target; each create function fills a gfv_target made by gfv_target_alloc
 * and is reached only through gfv_target_create, which has already checked the dimension.
 * The accessors at the end expose exact properties of a target to the tests.  None of this
 * is collective. */
#ifndef GFLOWVI_TARGETS_IMPL_H
#define GFLOWVI_TARGETS_IMPL_H

#include <stddef.h>

#include "gflowvi/mixture.h"
#include "gflowvi/target.h"

/* A zeroed target with the given registry name and dimension (destroy and ctx unset). */
int gfv_target_alloc(const char *name, size_t dim, gfv_target **out);

int gfv_target_gauss_create(size_t dim, gfv_target **out);          /* dim >= 1 */
int gfv_target_gmm4_create(gfv_target **out);
int gfv_target_gmm_file_create(const char *path, gfv_target **out);  /* d from the file */
int gfv_target_banana_create(gfv_target **out);
int gfv_target_funnel_create(size_t dim, gfv_target **out);         /* dim >= 2 */

/* The gauss target's exact mean (d) and covariance (d x d, row-major); GFV_ERR_INTERNAL
 * when t is not a gauss target.  The arrays belong to t. */
int gfv_target_gauss_moments(const gfv_target *t, const double **mean, const double **cov);

/* The components of a gmm4 or gmm:FILE target as a mixture view, and their normalised
 * log-weights (k); GFV_ERR_INTERNAL for any other target.  The arrays belong to t. */
int gfv_target_gmm_view(const gfv_target *t, gfv_mix_view *view, const double **logw);

#endif
