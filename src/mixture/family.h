/* family.h - covariance families as type objects (the way PETSc's Mat has ops tables):
 * gfv_family_lookup("full"), gfv_family_lookup("diag").
 *
 * A family says how a component's precision P = L L^T is stored (psize numbers for P and
 * psize for its factor L), and everything that depends on that storage: the initial state,
 * sampling, the log-constant, the kernels' workspace, the flow's update and retraction, the
 * estimator, the trust region's KL, the covariance for the outputs and the shapes the files
 * store.  The solver holds `const gfv_family_type *fam` and calls through it; a new family
 * is one file (family_NAME.c) and one line in family.c's list (docs/developer.md).
 * Every hook takes the family object itself first (f), so that a parameterised family (say
 * a rank R) keeps its parameter in the object.  The hooks never record errors: those
 * returning int return 0, or 1 when the parameters are not positive definite (the caller
 * decides what that means). */
#ifndef GFLOWVI_FAMILY_H
#define GFLOWVI_FAMILY_H

#include <stddef.h>

#include "flows/flow.h"
#include "gflowvi/mixture.h"

typedef struct gfv_family_type {
  const char *name; /* the value of --family */
  size_t rank;      /* a parameterised family's parameter (lowrank: R); 0 otherwise */
  /* The kernels' and the public structs' flag (gfv_mix_view.diag, gfv_mix_fused_alloc,
   * gfv_fitted_mixture.diag): 1 when P holds the precisions' diagonals only. */
  int diag;
  /* Numbers per precision, per factor, per E[H_h] estimate and per covariance. */
  size_t (*psize)(const struct gfv_family_type *f, size_t d);
  /* P = I / var and its factor L. */
  void (*init)(const struct gfv_family_type *f, size_t d, double var, double *P, double *L);
  /* P and L from a dense symmetric positive-definite precision Pd (d x d); 1 when Pd has no
   * Cholesky factor. */
  int (*from_precision)(const struct gfv_family_type *f, size_t d, const double *Pd, double *P,
                        double *L);
  /* L from the family's own P (the retraction's last step); 1 when P is not positive
   * definite. */
  int (*factor)(const struct gfv_family_type *f, size_t d, const double *P, double *L);
  /* logc_j = log w_j + 1/2 log det P_j - d/2 log(2 pi), j < k (k components in a row). */
  void (*log_const)(const struct gfv_family_type *f, size_t d, size_t k, const double *logw,
                    const double *P, const double *L, double *logc);
  /* Rows of z (S x d) hold standard normals on entry and mu + L^-T eps on exit: draws from
   * N(mu, P^-1). */
  void (*transform)(const struct gfv_family_type *f, size_t d, const double *mu, const double *L,
                    size_t S, double *z);
  /* The covariance P^-1 in psize numbers (what mixture.csv / mixture.h5 store). */
  int (*covariance)(const struct gfv_family_type *f, size_t d, const double *P, const double *L,
                    double *cov);
  /* The samples layout's kernel workspace (gfv_mix_log_terms / gfv_mix_grad_terms /
   * gfv_mix_eval) for views with this family's flag. */
  int (*work_alloc)(const struct gfv_family_type *f, size_t d, size_t k, size_t group,
                    gfv_mix_work **out);
  /* One flow step of a component (gfv_flow_type: update or update_diag); work holds
   * gfv_flow_work_size(d) doubles. */
  int (*update)(const struct gfv_family_type *f, const gfv_flow_type *flow, size_t d,
                const double *mu, const double *P, const double *L, const double *gh,
                const double *G, double eta, int plain, double *mu_out, double *P_out,
                double *L_out, double *work, gfv_step_info *info);
  /* gh (d) and G (psize numbers) of one particle's samples (gfv_estimator_type). */
  void (*estimate)(const struct gfv_family_type *f, const gfv_estimator_type *est,
                   const gfv_particle_samples *ps, double *gh, double *G, double *work);
  /* 1 when the factor is finite, positive and not degenerate (gfv_factor_is_sane). */
  int (*factor_is_sane)(const struct gfv_family_type *f, size_t d, const double *L);
  /* KL(N(mu1, P1^-1) || N(mu0, P0^-1)); *maha (optional) = sqrt(dmu^T P0 dmu).  work holds
   * d * d + d doubles. */
  double (*kl)(const struct gfv_family_type *f, size_t d, const double *mu1, const double *P1,
               const double *L1, const double *mu0, const double *P0, const double *L0,
               double *work, double *maha);
  /* sqrt(dm^T P dm); dm (d) may be overwritten. */
  double (*mahalanobis)(const struct gfv_family_type *f, size_t d, const double *P, const double *L,
                        double *dm);
  /* The support barrier's terms (src/solver/solver.c, support_barrier): with m (d) the mean of
   * z_i - mu over n samples, gh -= P m and G += P - P C P, C the samples' second moment
   * about mu.  m is overwritten; work holds d doubles. */
  void (*support_barrier)(const struct gfv_family_type *f, size_t d, size_t n, const double *z,
                          const double *mu, const double *P, double *m, double *gh, double *G,
                          double *work);
  /* I/O shapes.  mixture.csv: columns PREFIX_a (csv_pairs 0) or PREFIX_a_b (csv_pairs 1) per
   * component; mixture.h5 dataset h5_cov of rank 1 + cov_rank; the checkpoint's precision,
   * precision_chol and hessian_estimate datasets have rank 1 + cov_rank too: (K, d) for 1,
   * (K, d, d) for 2. */
  const char *csv_prefix;
  int csv_pairs;
  const char *h5_cov;
  int cov_rank;
} gfv_family_type;

extern const gfv_family_type gfv_family_full; /* dense precisions (family_full.c) */
extern const gfv_family_type gfv_family_diag; /* diagonal precisions (family_diag.c) */

/* Diagonal plus rank-R precisions (family_lowrank.c; --family=lowrank:R through
 * gfv_family_lookup).  Fills *out for rank R (1 <= R <= GFV_LOWRANK_MAX); 1 when R is out
 * of range.  It takes --flow=ngflow, --estimator=stein and --layout=samples only (the
 * solver refuses the others). */
#define GFV_LOWRANK_MAX 32
int gfv_family_lowrank(size_t R, gfv_family_type *out);
/* The doubles its estimate hook's work needs for S samples (O(S d + (R + 2S) d)): more than
 * gfv_estimator_work_size(d, S) at times, and never d x d. */
size_t gfv_family_lowrank_est_work(size_t d, size_t S, size_t R);
/* GFV_OK unless f is a lowrank family that cannot run with this d, flow, estimator and
 * --layout value (GFV_ERR_USAGE and a one-line message saying what to use). */
int gfv_family_lowrank_check(const gfv_family_type *f, size_t d, const gfv_flow_type *flow,
                             const gfv_estimator_type *est, const char *layout);

/* NULL when the name is unknown: "full", "diag" or "lowrank:R" (1 <= R <= GFV_LOWRANK_MAX;
 * R < d is the solver's check, which knows d). */
const gfv_family_type *gfv_family_lookup(const char *name);
/* The i-th registered family with a fixed shape (full, diag), NULL past the last; the
 * lowrank:R objects come from gfv_family_lookup only. */
const gfv_family_type *gfv_family_at(size_t i);

#endif
