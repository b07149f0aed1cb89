/* stream.h - counter-based random streams: Philox4x64-10 (Random123, Salmon et al., SC'11).
 *
 * Every random number gflowvi draws is a pure function of
 *
 *     key     = (seed, index)            two 64-bit words: the run's --seed and, say, the
 *                                        particle index k itself (no hashing, no truncation)
 *     counter = (block, lo, hi, purpose) four 64-bit words
 *
 * so two streams that differ in seed, index or purpose never share a single block, at any
 * number of particles, and the draws of particle k at iteration t are computed directly,
 * without replaying anything before them: a stream has no state to save in a checkpoint.
 * One Philox call turns a counter into four 64-bit words; (hi, lo) name a sequence of
 * draws and the block counts through it, so draw i of the sequence (hi, lo) comes from
 * block i / 4, word i % 4, however the sequence is cut into calls.
 *
 * Normal variates: Box-Muller on the two uniforms of each pair of words, so every block
 * gives exactly four normals and draw i has a fixed place (a ziggurat or a polar method
 * uses a variable number of uniforms per variate, which would make the place of draw i
 * depend on the draws before it).  Uniforms u = ((w >> 11) + 1) 2^-53 lie in (0, 1]: the
 * logarithm of Box-Muller never sees 0; the largest |z| is sqrt(-2 log 2^-53) = 8.57
 * (the normal puts 1e-17 of its mass beyond).  docs/method.md section 9 says which
 * purposes and counters the program uses. */
#ifndef GFLOWVI_STREAM_H
#define GFLOWVI_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* What a stream is for; (seed, index, purpose) is the stream's identity.  Listed in one
 * place so that no two uses can pick the same number. */
enum {
  GFV_PURPOSE_SAMPLE = 0,     /* index k: particle k's samples; (hi, lo) = (iteration, retry) */
  GFV_PURPOSE_EVAL = 1,       /* index k: the final evaluation; (0, block of draws) */
  GFV_PURPOSE_SAMPLES_CSV = 2, /* index 0: samples.csv; rows as gfv_stream_mixture_row */
  GFV_PURPOSE_REPORT = 3,     /* index 0: a target's report (gfv_fit_draw) */
  GFV_PURPOSE_INIT = 4,       /* index k: particle k's initial mean (prior, mode); (0, 0) */
  GFV_PURPOSE_RELOCATE = 5,   /* index k: the new mean of a restarted particle; as SAMPLE */
  GFV_PURPOSE_MINIBATCH = 6,  /* index 0: a model's minibatch; (iteration, 0) */
  GFV_PURPOSE_SPLIT = 7,      /* index 0, seed --split-seed: the train/test split; (0, 0) */
  GFV_PURPOSE_INIT_START = 8, /* index s: start s of the mode search; (0, 0) */
  GFV_PURPOSE_INIT_DRAWS = 9, /* index 0: the mode search's ELBO draws; (0, 0) */
  GFV_PURPOSE_INIT_SPLIT = 10, /* index m: the jitter of split component m (--init=FILE) */
  GFV_PURPOSE_DRAWS = 11,     /* index 0: the seed of candidate r's model outputs; (r, 0) word 0 */
  GFV_PURPOSE_RESAMPLE = 12,  /* index 0: draws_psis.csv; row i from word i of (0, 0) */
  GFV_PURPOSE_PREDICT = 13,   /* index 0: predictions.csv's mixture draws; as SAMPLES_CSV */
  GFV_PURPOSE_PREDICT_NOISE = 14, /* index 0: a prediction's noise; draw m: normal m of (0, 0) */
  GFV_PURPOSE_CHECK = 15      /* index 0: --check-target's points; as SAMPLES_CSV */
};

/* A stream: the Philox key and the purpose word of its counters.  A value, 24 bytes. */
typedef struct {
  uint64_t key[2];  /* seed, index */
  uint64_t purpose; /* the counter's last word */
} gfv_stream;

/* The stream (seed, index, purpose): the words themselves, so the map is injective. */
gfv_stream gfv_stream_make(uint64_t seed, uint64_t index, unsigned purpose);

/* Philox4x64 with 10 rounds (Random123's philox4x64): out = f(ctr, key). */
void gfv_philox4x64(const uint64_t ctr[4], const uint64_t key[2], uint64_t out[4]);

/* Words first .. first + n - 1 of the sequence (hi, lo) of stream s. */
void gfv_stream_bits(const gfv_stream *s, uint64_t hi, uint64_t lo, uint64_t first, size_t n,
                     uint64_t *out);
/* Word i of the sequence (hi, lo): one Philox call. */
uint64_t gfv_stream_word(const gfv_stream *s, uint64_t hi, uint64_t lo, uint64_t i);

/* Uniform in (0, 1] from a 64-bit word (its 53 high bits): never 0, so log() is safe. */
static inline double gfv_u01(uint64_t w) { return (double)((w >> 11) + 1) * 0x1p-53; }
/* floor(w m / 2^64): an index in [0, m) from a word, biased by at most m / 2^64. */
uint64_t gfv_below(uint64_t w, uint64_t m);

/* n standard normals: draws first .. first + n - 1 of the sequence (hi, lo).  Draw i is
 * the same whichever call computes it. */
void gfv_stream_normals_at(const gfv_stream *s, uint64_t hi, uint64_t lo, uint64_t first, size_t n,
                           double *out);
/* Draws 0 .. n - 1 of the sequence (hi, lo). */
void gfv_stream_normals(const gfv_stream *s, uint64_t hi, uint64_t lo, size_t n, double *out);

/* Row r of a draw from a mixture (samples.csv, a report's posterior draws): d normals, the
 * sequence (r, 1), into eps, and the uniform in (0, 1] that picks the component, word 0 of
 * (r, 0).  Every row is computed on its own, so a rejected row costs nothing later. */
double gfv_stream_mixture_row(const gfv_stream *s, uint64_t r, size_t d, double *eps);

/* A sampler of indices 0..n-1 with probabilities proportional to w (finite, >= 0, not all
 * 0), by inverting the cumulative weights: gfv_discrete_pick(t, u) with u in (0, 1] is the
 * first index whose cumulative weight reaches u times the total (never a zero weight). */
typedef struct gfv_discrete gfv_discrete;
int gfv_discrete_alloc(size_t n, const double *w, gfv_discrete **out);
size_t gfv_discrete_pick(const gfv_discrete *t, double u);
void gfv_discrete_free(gfv_discrete *t);

#endif
