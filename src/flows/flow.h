/* flow.h - the particle updates (flows) and the E[H_h] estimators, as type objects
 * chosen by name (PETSc/GSL style): gfv_flow_lookup("ngflow"), gfv_estimator_lookup("stein").
 *
 * A particle is (mu, P = L L^T).  Its update consumes two Monte Carlo estimates at the
 * particle's S samples (docs/method.md, section 2):
 *   gh = E_q[grad h],  G = E_q[H_h]  (symmetric),   h(z) = log q_rho(z) - l(z). */
#ifndef GFLOWVI_FLOW_H
#define GFLOWVI_FLOW_H

#include <stddef.h>

typedef struct {
  double step_sq;  /* squared norm of the change, in the flow's own coordinates */
  double param_sq; /* squared norm of the new parameters in those coordinates */
} gfv_step_info;

typedef struct {
  const char *name;
  const char *coordinates; /* what step_sq measures, for the documentation */
  /* Writes the updated particle.  work holds gfv_flow_work_size(d) doubles.  plain != 0
   * uses the plain update instead of the positive-definite retraction (ablation only).
   * Returns 0, or 1 when the new matrix is not positive definite (the caller rejects the
   * step); never records an error. */
  int (*update)(size_t d, const double *mu, const double *P, const double *L, const double *gh,
                const double *G, double eta, int plain, double *mu_out, double *P_out,
                double *L_out, double *work, gfv_step_info *info);
  /* The same for the diagonal family (docs/method.md, section 1): P, L (= sqrt(P)) and G are
   * d-vectors and every matrix operation is elementwise.  Needs no work space. */
  int (*update_diag)(size_t d, const double *mu, const double *P, const double *gh, const double *G,
                     double eta, int plain, double *mu_out, double *P_out, double *L_out,
                     gfv_step_info *info);
} gfv_flow_type;

extern const gfv_flow_type gfv_flow_ngflow; /* natural gradient (NGFlow-VI) */
extern const gfv_flow_type gfv_flow_gflow;  /* Euclidean gradient in (mu, Sigma) (GFlow-VI) */

/* NULL when the name is unknown. */
const gfv_flow_type *gfv_flow_lookup(const char *name);
/* The i-th registered flow (src/flows/registry.c), NULL past the last. */
const gfv_flow_type *gfv_flow_at(size_t i);
size_t gfv_flow_work_size(size_t d);

/* The samples of one particle and the mixture terms at them, as an estimator sees them. */
typedef struct {
  size_t d, S;
  const double *mu, *P;   /* the particle */
  const double *z;        /* S x d samples */
  const double *grad_l;   /* S x d gradients of the target */
  const double *hess_l;   /* S x d x d Hessians of the target (hessian estimator only) */
  const double *gbar;     /* S x d: grad log q_rho at the samples */
  const double *Hq;       /* d x d: sum over samples of sum_j r_j (g_j g_j^T - P_j) (hessian only) */
} gfv_particle_samples;

typedef struct {
  const char *name;
  int needs_hessian; /* needs hess_l and Hq */
  /* gh (d) and G (d x d, symmetric).  work holds gfv_estimator_work_size(d, S) doubles. */
  void (*estimate)(const gfv_particle_samples *ps, double *gh, double *G, double *work);
  /* The diagonal family: P and Hq are d-vectors, G is the diagonal of E[H_h] (d); hess_l
   * stays the targets' full S x d x d (its diagonals are used). */
  void (*estimate_diag)(const gfv_particle_samples *ps, double *gh, double *G);
} gfv_estimator_type;

extern const gfv_estimator_type gfv_estimator_hessian; /* Price: average of H_h */
extern const gfv_estimator_type gfv_estimator_stein;   /* Bonnet/Stein: sym(P E[(z-mu) grad h^T]) */

const gfv_estimator_type *gfv_estimator_lookup(const char *name);
/* The i-th registered estimator, NULL past the last. */
const gfv_estimator_type *gfv_estimator_at(size_t i);

/* ---- the per-component trust region (trust_region.c) ------------------------------- */

/* Largest ratio of two standard deviations of one component before its factor counts as
 * broken (cond(P) ~ 1e16: double precision has no digit left). */
#define GFV_MAX_SCALE_RATIO 1e8

/* KL(N(mu_new, P_new^{-1}) || N(mu_old, P_old^{-1})) from the Cholesky factors of the
 * precisions.  work holds d * d + d doubles.  *maha (optional) receives the length of the
 * mean's move in the old component's standard deviations, sqrt(dmu^T P_old dmu). */
double gfv_kl_gauss(size_t d, const double *mu_new, const double *L_new, const double *mu_old,
                    const double *L_old, double *work, double *maha);
/* The same for diagonal precisions p (d-vectors). */
double gfv_kl_gauss_diag(size_t d, const double *mu_new, const double *p_new, const double *mu_old,
                         const double *p_old, double *maha);
/* 1 when a factor (L, or sqrt(p) for diag) is finite, positive and not degenerate. */
int gfv_factor_is_sane(size_t d, const double *L, int diag);
/* The factor by which to multiply a component's step after it reached KL = kl > eps. */
double gfv_trust_region_shrink(double kl, double eps);
size_t gfv_estimator_work_size(size_t d, size_t S);

#endif
