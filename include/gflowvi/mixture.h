/* mixture.h - the Gaussian-mixture kernel: every component against a block of points.
 *
 * This is the hot path of gflowvi (O(k n d^2) per call).  A component j is stored as its
 * mean mu_j, its precision P_j = L_j L_j^T with L_j lower triangular, and the constant
 *   logc_j = log w_j + sum_i log L_j[i][i] - d/2 log(2 pi),
 * so log(w_j N_j(z)) = logc_j - 1/2 (z - mu_j)^T P_j (z - mu_j).
 *
 * The work is split into two phases so that the components may live on different ranks:
 *   phase A (gfv_mix_log_terms):  a_ij = log(w_j N_j(z_i)) and a local log-sum-exp;
 *   (the caller combines the local log-sum-exps into log q(z_i) over all components)
 *   phase B (gfv_mix_grad_terms): with r_ij = exp(a_ij - log q(z_i)),
 *       gbar_i += sum_j r_ij g_j(z_i),                g_j(z) = -P_j (z - mu_j)
 *       H_g    += sum_{i in group g} sum_j r_ij (g_j g_j^T - P_j)
 * Both phases do their work as one DGEMM of the points against the concatenated
 * precisions per block of points, and phase B's outer products as one DSYRK per group.
 * Nothing here allocates after gfv_mix_work_alloc. */
#ifndef GFLOWVI_MIXTURE_H
#define GFLOWVI_MIXTURE_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <stddef.h>

typedef struct {
  size_t d;
  size_t k;            /* number of components in this view */
  const double *mu;    /* k x d */
  const double *P;     /* k x d x d, symmetric, both triangles stored (diag: k x d diagonals) */
  const double *L;     /* k x d x d, lower Cholesky factor of P, upper part zero (diag: unused) */
  const double *logc;  /* k */
  int diag;            /* the diagonal family: P holds the precisions' diagonals */
  size_t rank;         /* > 0: diagonal plus rank-R precisions, P_j = [D_j | U_j] (d + d R
                        * numbers, family_lowrank.c; no Hessian sums); 0 otherwise */
} gfv_mix_view;

typedef struct gfv_mix_work gfv_mix_work;

/* Workspace for views of up to k components in dimension d, with phase-B groups of
 * `group` consecutive points.  The kernels walk any number of points in blocks whose size
 * the workspace chooses (a multiple of group, a few MiB of scratch). */
int gfv_mix_work_alloc(size_t d, size_t k, size_t group, gfv_mix_work **out);
void gfv_mix_work_free(gfv_mix_work *w);
/* The bytes gfv_mix_work_alloc (diag: gfv_mix_work_alloc_diag) allocates for these sizes,
 * for the memory estimate of a run (src/solver/footprint.c). */
double gfv_mix_work_bytes(size_t d, size_t k, size_t group, int diag);

/* logc_j from log w_j and L_j, for j < k. */
void gfv_mix_log_const(size_t d, size_t k, const double *logw, const double *L, double *logc);

/* The diagonal family (docs/method.md, section 1): components with diagonal precisions p_j,
 * O(k n d) work per call, done as GEMMs of the points' [(z - c)^2, z - c] against the
 * components' coefficients.  In diagonal views P is k x d and the Hessian sums H of phase
 * B are diagonals too (n/group x d). */
int gfv_mix_work_alloc_diag(size_t d, size_t k, size_t group, gfv_mix_work **out);
void gfv_mix_log_const_diag(size_t d, size_t k, const double *logw, const double *p, double *logc);

/* Phase A.  A (n x k, row-major) = a_ij; lse (n) = log sum_j exp(a_ij) (-inf when k = 0). */
int gfv_mix_log_terms(const gfv_mix_view *m, size_t n, const double *z, double *A, double *lse,
                      gfv_mix_work *w);

/* Phase B.  Accumulates into gbar (n x d) and, when H is not NULL, into H (n/group x d x d,
 * full symmetric).  The caller zeroes them first.  logq (n) is log q at the points over the
 * whole mixture (all ranks' components). */
int gfv_mix_grad_terms(const gfv_mix_view *m, size_t n, const double *z, const double *A,
                       const double *logq, size_t group, double *gbar, double *H, gfv_mix_work *w);

/* The parameter layout's kernel (kernel_fused.c): the whole mixture against n points that
 * one rank owns, in one pass per block of points, so that nothing of size n x K exists.
 * For every point i it writes logq[i] = log q(z_i) and gbar (n x d) = grad log q(z_i) and,
 * when H is not NULL, per group g of `group` consecutive points the sums
 *   H_g = sum_{i in g} sum_j r_ij (g_j(z_i) g_j(z_i)^T - P_j)   (n/group x d x d, full
 * symmetric; diag: n/group x d diagonals).  gbar and H are overwritten; with gbar NULL (and
 * so H NULL) only log q is computed (by the quadratic-feature DGEMM alone in the two-pass
 * form: the final evaluation of a large mixture).  A point with
 * skip[i] set (skip may be NULL) is left out: logq[i] = +inf, and it adds nothing to gbar
 * and H, as the samples layout leaves out a point its owner marked.
 * The workspace holds blocks of points and of components sized to about `budget` bytes
 * (0: GFV_MIX_FUSED_BUDGET): all K components at once when at least 16 points then fit (one
 * DGEMM per block gives both the log terms and the gradients), otherwise blocks of
 * components in two passes (the log-sum-exp first, by the quadratic-feature DGEMM).  Its
 * size is O(K d + budget), never O(n K). */
#define GFV_MIX_FUSED_BUDGET ((size_t)4 << 20)
typedef struct gfv_mix_fused gfv_mix_fused;
int gfv_mix_fused_alloc(size_t d, size_t K, size_t group, int diag, size_t budget,
                        gfv_mix_fused **out);
void gfv_mix_fused_free(gfv_mix_fused *f);
/* The bytes gfv_mix_fused_alloc allocates (for src/solver/footprint.c). */
double gfv_mix_fused_bytes(size_t d, size_t K, size_t group, int diag, size_t budget);
/* The workspace's blocks: points per block, components per block (K unless it works in two
 * passes) and groups whose -sum r P part may wait for one DGEMM. */
void gfv_mix_fused_shape(const gfv_mix_fused *f, size_t *points, size_t *comps, size_t *pending);
int gfv_mix_fused_terms(const gfv_mix_view *m, size_t n, const double *z, const unsigned char *skip,
                        double *logq, double *gbar, double *H, gfv_mix_fused *f);
/* One block of a larger mixture (the streamed params layout), the first pass: log q of the
 * whole mixture summed block by block, logq_i <- log(exp(logq_i) + sum_{j in m} exp(a_ij))
 * (start from -inf; +inf at a left-out point).  K_all: the whole mixture's number of
 * components; the pruning takes the sum so far as a lower bound of the whole log q. */
int gfv_mix_fused_logq_add(const gfv_mix_view *m, size_t n, const double *z, const unsigned char *skip,
                           double *logq, size_t K_all, gfv_mix_fused *f);
/* The second pass, one block of a larger mixture: adds the terms of m's
 * components at the n points to gbar and H (not zeroed: the caller zeroes them before the
 * first block), with r_ij = exp(a_ij - logq_i) from logq, the whole mixture's log q at the
 * points (+inf at a left-out point, which then adds nothing; skip may also mark it).
 * K_all is the whole mixture's number of components and lref_all the least lower bound of
 * its precisions' eigenvalues (the least of gfv_mix_fused_bounds over all its components), which
 * keep the pruning exact for the whole sums.  Summed over the blocks, the result is
 * gfv_mix_fused_terms's on the whole mixture, to rounding. */
int gfv_mix_fused_terms_given(const gfv_mix_view *m, size_t n, const double *z, const unsigned char *skip,
                              const double *logq, size_t K_all, double lref_all, double *gbar,
                              double *H, gfv_mix_fused *f);
/* The pruning's bounds of the eigenvalues of each of m's precisions into lmin and lmax (k
 * each; 0 and +inf for the diagonal family, which does not prune); returns the least lmin
 * (+inf for the diagonal family). */
double gfv_mix_fused_bounds(const gfv_mix_view *m, gfv_mix_fused *f, double *lmin, double *lmax);
/* The next calls take the bounds of the view's components from lmin and lmax (as
 * gfv_mix_fused_bounds gave them) instead of computing them: a streamed block carries its
 * own, computed once by its owner; NULL, NULL computes them again. */
void gfv_mix_fused_set_bounds(gfv_mix_fused *f, const double *lmin, const double *lmax);
/* Exact pruning (docs/pruning.md; on after gfv_mix_fused_alloc): pairs whose terms a bound
 * shows to lie below the rounding of the sums are skipped, by tiles of points against the
 * whole mixture (full family).  gfv_mix_fused_counts: the pairs the
 * calls met and those they pruned since the last reset (reset != 0 zeroes them). */
void gfv_mix_fused_set_prune(gfv_mix_fused *f, int on);
/* on: the calls until this is called again see one and the same mixture (the final
 * evaluation's many small calls), so the precisions' eigenvalue bounds, O(K d^3), are
 * computed once. */
void gfv_mix_fused_fix_mixture(gfv_mix_fused *f, int on);
void gfv_mix_fused_counts(gfv_mix_fused *f, double *pairs, double *pruned, int reset);

/* Serial convenience over a complete mixture: log q (n), its gradient (n x d, or NULL) and
 * its Hessian (n x d x d, or NULL) at n points.  Used by the gmm targets and the tests.
 * Needs a workspace made with group 1. */
int gfv_mix_eval(const gfv_mix_view *m, size_t n, const double *z, double *logq, double *grad,
                 double *hess, gfv_mix_work *w);

#pragma GCC visibility pop

#endif
