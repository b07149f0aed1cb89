/* stream.c - Philox4x64-10 streams, Box-Muller normals, discrete picks (see stream.h). */
#include "rng/stream.h"

#include <Random123/philox.h>
#include <math.h>
#include <stdlib.h>

#include "gflowvi/error.h"

gfv_stream gfv_stream_make(uint64_t seed, uint64_t index, unsigned purpose) {
  gfv_stream s = {{seed, index}, purpose};
  return s;
}

void gfv_philox4x64(const uint64_t ctr[4], const uint64_t key[2], uint64_t out[4]) {
  philox4x64_ctr_t c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
  philox4x64_key_t k = {{key[0], key[1]}};
  philox4x64_ctr_t r = philox4x64_R(10, c, k);
  for (int i = 0; i < 4; i++) out[i] = r.v[i];
}

/* Block b of the sequence (hi, lo): counter (b, lo, hi, purpose). */
static inline void block(const gfv_stream *s, uint64_t hi, uint64_t lo, uint64_t b, uint64_t w[4]) {
  philox4x64_ctr_t c = {{b, lo, hi, s->purpose}};
  philox4x64_key_t k = {{s->key[0], s->key[1]}};
  philox4x64_ctr_t r = philox4x64_R(10, c, k);
  w[0] = r.v[0], w[1] = r.v[1], w[2] = r.v[2], w[3] = r.v[3];
}

uint64_t gfv_stream_word(const gfv_stream *s, uint64_t hi, uint64_t lo, uint64_t i) {
  uint64_t w[4];
  block(s, hi, lo, i / 4, w);
  return w[i % 4];
}

void gfv_stream_bits(const gfv_stream *s, uint64_t hi, uint64_t lo, uint64_t first, size_t n,
                     uint64_t *out) {
  uint64_t b = first / 4, w[4];
  unsigned skip = (unsigned)(first % 4);
  for (size_t i = 0; i < n; b++, skip = 0) {
    block(s, hi, lo, b, w);
    for (unsigned t = skip; t < 4 && i < n; t++) out[i++] = w[t];
  }
}

uint64_t gfv_below(uint64_t w, uint64_t m) {
  /* The high word of the 128-bit product, from 32-bit halves (portable C11). */
  const uint64_t a0 = w & 0xffffffffu, a1 = w >> 32, b0 = m & 0xffffffffu, b1 = m >> 32;
  const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* Box-Muller: the words (w0, w1) give two independent N(0, 1) exactly (up to rounding),
 * r = sqrt(-2 log u) with u in (0, 1], angle 2 pi v with v in [0, 1). */
static inline void box_muller(uint64_t w0, uint64_t w1, double *z0, double *z1) {
  const double r = sqrt(-2.0 * log(gfv_u01(w0)));
  const double a = 2.0 * M_PI * ((double)(w1 >> 11) * 0x1p-53);
  *z0 = r * cos(a);
  *z1 = r * sin(a);
}

static inline void block_normals(const gfv_stream *s, uint64_t hi, uint64_t lo, uint64_t b, double z[4]) {
  uint64_t w[4];
  block(s, hi, lo, b, w);
  box_muller(w[0], w[1], &z[0], &z[1]);
  box_muller(w[2], w[3], &z[2], &z[3]);
}

void gfv_stream_normals_at(const gfv_stream *s, uint64_t hi, uint64_t lo, uint64_t first, size_t n,
                           double *out) {
  uint64_t b = first / 4;
  size_t i = 0;
  double z[4];
  if (first % 4 && n > 0) { /* the tail of a block begun by an earlier call */
    block_normals(s, hi, lo, b++, z);
    for (unsigned t = (unsigned)(first % 4); t < 4 && i < n; t++) out[i++] = z[t];
  }
  for (; i + 4 <= n; i += 4) block_normals(s, hi, lo, b++, out + i);
  if (i < n) {
    block_normals(s, hi, lo, b, z);
    for (unsigned t = 0; i < n; t++) out[i++] = z[t];
  }
}

void gfv_stream_normals(const gfv_stream *s, uint64_t hi, uint64_t lo, size_t n, double *out) {
  gfv_stream_normals_at(s, hi, lo, 0, n, out);
}

double gfv_stream_mixture_row(const gfv_stream *s, uint64_t r, size_t d, double *eps) {
  gfv_stream_normals(s, r, 1, d, eps);
  return gfv_u01(gfv_stream_word(s, r, 0, 0));
}

struct gfv_discrete {
  size_t n;
  double *cum; /* n cumulative weights; cum[n - 1] is the total */
};

int gfv_discrete_alloc(size_t n, const double *w, gfv_discrete **out) {
  *out = NULL;
  double total = 0.0;
  for (size_t i = 0; i < n; i++) {
    GFV_CHECK(isfinite(w[i]) && w[i] >= 0, GFV_ERR_NUMERIC,
              "invalid mixture weights for sampling (weight %zu is %g)", i + 1, w[i]);
    total += w[i];
  }
  GFV_CHECK(n > 0 && total > 0 && isfinite(total), GFV_ERR_NUMERIC,
            "invalid mixture weights for sampling (total %g)", total);
  gfv_discrete *t;
  GFV_ALLOC(t, 1);
  if (gfv_calloc(&t->cum, n, sizeof(double))) {
    free(t);
    GFV_ERROR(GFV_ERR_MEMORY, "cannot allocate the sampler of %zu mixture weights", n);
  }
  double c = 0.0;
  for (size_t i = 0; i < n; i++) t->cum[i] = c += w[i];
  t->n = n;
  *out = t;
  return GFV_OK;
}

size_t gfv_discrete_pick(const gfv_discrete *t, double u) {
  /* x in (0, total]: u <= 1 and rounding is monotone, so x <= cum[n - 1]; the first index
   * with cum >= x > 0 never has a zero weight (its cum equals the one before it). */
  const double x = u * t->cum[t->n - 1];
  size_t a = 0, b = t->n - 1;
  while (a < b) {
    size_t m = a + (b - a) / 2;
    if (t->cum[m] >= x) b = m;
    else a = m + 1;
  }
  return a;
}

void gfv_discrete_free(gfv_discrete *t) {
  if (!t) return;
  free(t->cum);
  free(t);
}
