/* kernel_impl.h - the mixture workspace and the diagonal-family kernels, shared by
 * kernel.c (full covariances) and kernel_diag.c (diagonal covariances) only. */
#ifndef GFLOWVI_KERNEL_IMPL_H
#define GFLOWVI_KERNEL_IMPL_H

#include "gflowvi/mixture.h"

/* Scratch per block of points: about this many bytes. */
#define GFV_MIX_BLOCK_BYTES ((size_t)4 << 20)

struct gfv_mix_work {
  size_t d, kmax, group, chunk; /* chunk: points per block, a multiple of group */
  int diag;                     /* made for the diagonal family */
  /* full family */
  double *Pcat;                 /* d x (kmax d): [P_1 | P_2 | ...] row by row */
  double *b;                    /* kmax x d: P_j mu_j */
  double *buf;                  /* chunk x kmax x d */
  double *cw;                   /* (chunk / group) x kmax: sum of r_ij over each group */
  double *A_eval, *lse_eval;    /* chunk x kmax, chunk: phase A results for gfv_mix_eval */
  size_t chunk_a;               /* points per phase-A block (its features fill the block) */
  size_t cwcap;                 /* groups whose -sum r P part may wait in cw (>= a block's) */
  double *F;                    /* chunk_a x mq: [vech(y y^T), y, 1] per point, y = z - centre */
  double *W;                    /* mq x kmax: the matching coefficients of each component */
  double *mtmp;                 /* d: mu_j - centre */
  /* diagonal family */
  double *zaug;                 /* chunk x 2d: [(z - c)^2, z - c] */
  double *caug;                 /* 2d x kmax: columns [p_j; -2 p_j (mu_j - c)] */
  double *coef;                 /* kmax x 5d: rows [p, p m, p^2, p^2 m, p^2 m^2], m = mu - c */
  double *out;                  /* chunk x 5d: R coef */
  double *R;                    /* chunk x kmax: responsibilities */
  double *center;               /* d: the common shift c (mean of the means) */
};

/* How a family's workspace is laid out: its block sizes (set in w) and the element count
 * of each of its nbuf buffers (layout), and where those buffers go (buffers), in one
 * order; gfv_mix_work_make allocates by it and gfv_mix_work_bytes counts by it. */
#define GFV_MIX_MAXBUF 10
typedef struct {
  int nbuf;
  void (*layout)(gfv_mix_work *w, size_t d, size_t k, size_t group, size_t *n);
  void (*buffers)(gfv_mix_work *w, double ***b);
} gfv_mix_plan;
extern const gfv_mix_plan gfv_mixd_plan; /* the diagonal family's (kernel_diag.c) */
int gfv_mix_work_make(const gfv_mix_plan *plan, size_t d, size_t k, size_t group,
                      gfv_mix_work **out);

/* Phase A's quadratic-feature form (kernel.c): the coefficients of components j0 .. j0+k-1
 * of m, shifted by center, into W (mq x k, row-major, mq = d(d+1)/2 + d + 1; bm and mtmp:
 * d numbers of scratch each), and one point's features [vech(y y^T), y, 1], y = z - center,
 * into F (mq). */
void gfv_mix_quad_coefs(const gfv_mix_view *m, size_t j0, size_t k, const double *center, double *W,
                        double *bm, double *mtmp);
void gfv_mix_quad_row(size_t d, const double *z, const double *center, double *F);

/* The fused kernel's passes in AVX2 with FMA (kernel_simd.c).  gfv_mix_simd: 1 when this
 * CPU has both and neither GFV_MIX_SIMD=0 in the environment nor gfv_mix_simd_set(0) (for
 * tests; gfv_mix_simd_set(1) allows them again) says otherwise.  log_terms: for one point z and kb components, rows (kb x d) of products
 * P_j y turn into g_j = b_j - row, and a[j] = logc_j - (mu_j - z).g_j / 2.  grad_terms: for
 * the npts x kb rows x of one group's points with responsibilities r, gbar (npts x d) +=
 * sum_j r x, cw (kb; may be NULL) += r, and when H is not NULL its lower triangle (whole
 * tiles across the diagonal) += sum r x x^T; wx: GFV_MIX_SIMD_ROWS x d numbers of scratch. */
int gfv_mix_simd(void);
void gfv_mix_simd_set(int on);
void gfv_mix_simd_log_terms(size_t d, size_t kb, double *rows, const double *b, const double *mu,
                            const double *z, const double *logc, double *a);
void gfv_mix_simd_grad_terms(size_t d, size_t kb, size_t npts, const double *x, const double *r,
                             double *gbar, double *cw, double *H, double *wx);
#define GFV_MIX_SIMD_ROWS 64 /* rows of wx */

int gfv_mixd_log_terms(const gfv_mix_view *m, size_t n, const double *z, double *A, double *lse,
                       gfv_mix_work *w);
int gfv_mixd_grad_terms(const gfv_mix_view *m, size_t n, const double *z, const double *A,
                        const double *logq, size_t group, double *gbar, double *H, gfv_mix_work *w);
int gfv_mixd_eval(const gfv_mix_view *m, size_t n, const double *z, double *logq, double *grad,
                  double *hess, gfv_mix_work *w);
/* The diagonal plus rank-R family (kernel_lowrank.c; views with rank > 0): no Hessian
 * sums (H must be NULL), and no workspace but gfv_mixl_eval's (a diagonal one). */
int gfv_mixl_log_terms(const gfv_mix_view *m, size_t n, const double *z, double *A, double *lse);
int gfv_mixl_grad_terms(const gfv_mix_view *m, size_t n, const double *z, const double *A,
                        const double *logq, double *gbar, double *H);
int gfv_mixl_eval(const gfv_mix_view *m, size_t n, const double *z, double *logq, double *grad,
                  double *hess, gfv_mix_work *w);

#endif
