/* kernel_simd.c - the fused kernel's passes over (point, component, coordinate) triples in
 * AVX2 with FMA, for the x86-64 processors that have them (checked once at run time, so
 * the program stays portable); elsewhere kernel_fused.c's plain C passes and BLAS's DSYRK
 * run instead.
 *
 * Why by hand: gflowvi is built for any x86-64 at -O2, which vectorises no loop of unknown
 * length and nothing wider than SSE2, while these passes touch every coordinate of every
 * pair; and the Hessian sums, a d x d Gram matrix per group of S points from its S K rows,
 * ran at a quarter of the DGEMM rate in OpenBLAS's DSYRK (measured at d = 32: it packs its
 * one operand twice per call for a 32 x 32 result).  Here the Gram matrix is accumulated in
 * 4 x 4 tiles over blocks of GRAM_ROWS rows that stay in L1, in the same pass that forms
 * the gradient sums from those rows, and with the responsibility r as a factor of one side
 * (no square roots). */
#include <stdlib.h>
#include <string.h>

#include "mixture/kernel_impl.h"

static int simd_cap = 1; /* gfv_mix_simd_set: 0 = the plain passes */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SIMD_TARGET __attribute__((target("avx2,fma")))
#define GRAM_ROWS GFV_MIX_SIMD_ROWS

int gfv_mix_simd(void) {
  static int have = -1;
  if (have < 0) {
    __builtin_cpu_init();
    const char *env = getenv("GFV_MIX_SIMD"); /* GFV_MIX_SIMD=0: the plain passes */
    have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !(env && strcmp(env, "0") == 0);
  }
  return have && simd_cap;
}

/* Lanes below n (0 < n < 4) set. */
SIMD_TARGET static __m256i tail_mask(size_t n) {
  return _mm256_set_epi64x(n > 3 ? -1 : 0, n > 2 ? -1 : 0, n > 1 ? -1 : 0, n > 0 ? -1 : 0);
}

SIMD_TARGET static double hsum(__m256d v) {
  __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
  lo = _mm_add_pd(lo, hi);
  return _mm_cvtsd_f64(_mm_add_sd(lo, _mm_unpackhi_pd(lo, lo)));
}

SIMD_TARGET void gfv_mix_simd_log_terms(size_t d, size_t kb, double *rows, const double *b,
                                        const double *mu, const double *z, const double *logc, double *a) {
  const size_t d4 = d & ~(size_t)3;
  const __m256i m = tail_mask(d - d4);
  for (size_t j = 0; j < kb; j++) {
    double *row = rows + j * d;
    const double *bj = b + j * d, *mj = mu + j * d;
    __m256d s = _mm256_setzero_pd();
    for (size_t t = 0; t < d4; t += 4) {
      __m256d g = _mm256_sub_pd(_mm256_loadu_pd(bj + t), _mm256_loadu_pd(row + t));
      _mm256_storeu_pd(row + t, g);
      s = _mm256_fmadd_pd(_mm256_sub_pd(_mm256_loadu_pd(mj + t), _mm256_loadu_pd(z + t)), g, s);
    }
    if (d4 < d) { /* masked lanes load as 0 and add nothing */
      __m256d g = _mm256_sub_pd(_mm256_maskload_pd(bj + d4, m), _mm256_maskload_pd(row + d4, m));
      _mm256_maskstore_pd(row + d4, m, g);
      s = _mm256_fmadd_pd(_mm256_sub_pd(_mm256_maskload_pd(mj + d4, m), _mm256_maskload_pd(z + d4, m)), g, s);
    }
    double maha = hsum(s);
    a[j] = logc[j] - 0.5 * (maha > 0 ? maha : 0.0);
  }
}

/* H[a0 .. a0+3][b0 .. b0+7] += sum over the n rows of wx[r][a] x[r][b]: 8 accumulators,
 * and per row 2 loads and 4 broadcasts for 8 FMAs.  LOAD and STORE read and write 4
 * columns: whole (when all 8 lie below d) or masked by m0, m1. */
#define GRAM_TILE(name, LOAD, STORE)                                                             \
  SIMD_TARGET static void name(size_t d, size_t n, const double *x, const double *wx, size_t a0,  \
                               size_t b0, __m256i m0, __m256i m1, double *H) {                   \
    double *h = H + a0 * d + b0;                                                                 \
    (void)m0, (void)m1;                                                                          \
    __m256d c00 = LOAD(h, m0), c01 = LOAD(h + 4, m1), c10 = LOAD(h + d, m0);                     \
    __m256d c11 = LOAD(h + d + 4, m1), c20 = LOAD(h + 2 * d, m0), c21 = LOAD(h + 2 * d + 4, m1); \
    __m256d c30 = LOAD(h + 3 * d, m0), c31 = LOAD(h + 3 * d + 4, m1);                            \
    for (size_t r = 0; r < n; r++) {                                                             \
      const double *xr = x + r * d + b0, *w = wx + r * d + a0;                                   \
      __m256d x0 = LOAD(xr, m0), x1 = LOAD(xr + 4, m1), v;                                       \
      v = _mm256_broadcast_sd(w), c00 = _mm256_fmadd_pd(v, x0, c00);                            \
      c01 = _mm256_fmadd_pd(v, x1, c01);                                                         \
      v = _mm256_broadcast_sd(w + 1), c10 = _mm256_fmadd_pd(v, x0, c10);                        \
      c11 = _mm256_fmadd_pd(v, x1, c11);                                                         \
      v = _mm256_broadcast_sd(w + 2), c20 = _mm256_fmadd_pd(v, x0, c20);                        \
      c21 = _mm256_fmadd_pd(v, x1, c21);                                                         \
      v = _mm256_broadcast_sd(w + 3), c30 = _mm256_fmadd_pd(v, x0, c30);                        \
      c31 = _mm256_fmadd_pd(v, x1, c31);                                                         \
    }                                                                                            \
    STORE(h, m0, c00), STORE(h + 4, m1, c01), STORE(h + d, m0, c10), STORE(h + d + 4, m1, c11);  \
    STORE(h + 2 * d, m0, c20), STORE(h + 2 * d + 4, m1, c21), STORE(h + 3 * d, m0, c30);         \
    STORE(h + 3 * d + 4, m1, c31);                                                               \
  }
#define LOAD_WHOLE(p, m) _mm256_loadu_pd(p)
#define STORE_WHOLE(p, m, v) _mm256_storeu_pd(p, v)
GRAM_TILE(gram_tile, LOAD_WHOLE, STORE_WHOLE)
GRAM_TILE(gram_tile_masked, _mm256_maskload_pd, _mm256_maskstore_pd)

/* The rows a0 .. d-1 (fewer than 4) of the lower triangle, one coordinate at a time. */
SIMD_TARGET static void gram_rest(size_t d, size_t n, const double *x, const double *wx, size_t a0,
                                  double *H) {
  for (size_t a = a0; a < d; a++)
    for (size_t r = 0; r < n; r++) {
      const double wa = wx[r * d + a], *xr = x + r * d;
      for (size_t b = 0; b <= a; b++) H[a * d + b] += wa * xr[b];
    }
}

/* Lanes of the 8 columns from b0 that lie below d. */
SIMD_TARGET static void col_masks(size_t d, size_t b0, __m256i *m0, __m256i *m1) {
  const __m256i all = _mm256_set1_epi64x(-1), none = _mm256_setzero_si256();
  size_t left = d - b0;
  *m0 = left >= 4 ? all : tail_mask(left);
  *m1 = left >= 8 ? all : left > 4 ? tail_mask(left - 4) : none;
}

SIMD_TARGET void gfv_mix_simd_grad_terms(size_t d, size_t kb, size_t npts, const double *x,
                                         const double *r, double *gbar, double *cw, double *H,
                                         double *wx) {
  const size_t m = npts * kb, d4 = d & ~(size_t)3;
  const __m256i tm = tail_mask(d - d4);
  for (size_t r0 = 0; r0 < m; r0 += GRAM_ROWS) {
    size_t n = m - r0 < GRAM_ROWS ? m - r0 : GRAM_ROWS;
    for (size_t k = 0; k < n; k++) { /* wx = r x, the gradient sums, the group sums of r */
      const size_t row = r0 + k;
      const double *xr = x + row * d;
      double *gi = gbar + row / kb * d, *w = wx + k * d;
      __m256d rv = _mm256_set1_pd(r[row]);
      if (cw) cw[row % kb] += r[row];
      for (size_t t = 0; t < d4; t += 4) {
        __m256d v = _mm256_mul_pd(rv, _mm256_loadu_pd(xr + t));
        _mm256_storeu_pd(w + t, v);
        _mm256_storeu_pd(gi + t, _mm256_add_pd(_mm256_loadu_pd(gi + t), v));
      }
      if (d4 < d) {
        __m256d v = _mm256_mul_pd(rv, _mm256_maskload_pd(xr + d4, tm));
        _mm256_maskstore_pd(w + d4, tm, v);
        _mm256_maskstore_pd(gi + d4, tm, _mm256_add_pd(_mm256_maskload_pd(gi + d4, tm), v));
      }
    }
    if (!H) continue;
    /* The lower triangle by tiles of 4 rows and 8 columns (the tiles that cross the
     * diagonal also fill some entries above it, which the caller overwrites when it mirrors
     * the lower triangle at the end). */
    for (size_t a0 = 0; a0 + 4 <= d; a0 += 4)
      for (size_t b0 = 0; b0 <= a0 + 3; b0 += 8) {
        __m256i m0, m1;
        col_masks(d, b0, &m0, &m1);
        if (b0 + 8 <= d) gram_tile(d, n, x + r0 * d, wx, a0, b0, m0, m1, H);
        else gram_tile_masked(d, n, x + r0 * d, wx, a0, b0, m0, m1, H);
      }
    gram_rest(d, n, x + r0 * d, wx, d & ~(size_t)3, H);
  }
}

#else /* not x86-64 with GCC or clang: the plain passes only */

int gfv_mix_simd(void) { return 0; }
void gfv_mix_simd_log_terms(size_t d, size_t kb, double *rows, const double *b, const double *mu,
                            const double *z, const double *logc, double *a) {
  (void)d, (void)kb, (void)rows, (void)b, (void)mu, (void)z, (void)logc, (void)a;
}
void gfv_mix_simd_grad_terms(size_t d, size_t kb, size_t npts, const double *x, const double *r,
                             double *gbar, double *cw, double *H, double *wx) {
  (void)d, (void)kb, (void)npts, (void)x, (void)r, (void)gbar, (void)cw, (void)H, (void)wx;
}

#endif

void gfv_mix_simd_set(int on) { simd_cap = on != 0; }
