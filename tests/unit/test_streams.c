/* test_streams.c - the counter-based random streams (src/rng/stream.h):
 *  - Philox4x64-10 against Random123's known-answer vectors (kat_vectors of the Random123
 *    distribution; the Debian package ships the headers only), and the counter layout
 *    (block, lo, hi, purpose) with key (seed, index);
 *  - Box-Muller normals: mean, variance, tail mass, lag-1 correlation and the
 *    Kolmogorov-Smirnov statistic of 10^6 draws, with bounds justified below;
 *  - distinct streams by construction: the key map (seed, k, purpose) -> Philox input is
 *    the identity on the words, so injective for every k < 2^20 and every purpose; the
 *    first variates of the 2^20 particles are all different;
 *  - random access: draw i of a sequence equals draw i of its sequential generation,
 *    however it is cut into calls, and a solver's samples of iteration t are exactly the
 *    sequence (t, 0) of each particle's stream;
 *  - uniforms never 0 (log-safe), bounded integers, the discrete sampler. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "rng/stream.h"
#include "solver/solver_impl.h"

/* ---- Philox -------------------------------------------------------------------------- */

/* Random123 kat_vectors, "philox4x64 10" lines: counter, key, expected. */
static void test_philox_known_answers(void) {
  static const uint64_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x16554d9eca36314cULL, 0xdb20fe9d672d0fdcULL, 0xd7e772cee186176bULL,
       0x7e68b68aec7ba23bULL},
      {~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, 0x87b092c3013fe90bULL, 0x438c3c67be8d0224ULL,
       0x9cc7d7c69cd777b6ULL, 0xa09caebf594f0ba0ULL},
      {0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL, 0xa4093822299f31d0ULL, 0x082efa98ec4e6c89ULL,
       0x452821e638d01377ULL, 0xbe5466cf34e90c6cULL, 0xa528f45403e61d95ULL, 0x38c72dbd566e9788ULL,
       0xa5a1610e72fd18b5ULL, 0x57bd43b5e52b7fe6ULL}};
  for (int v = 0; v < 3; v++) {
    uint64_t out[4];
    gfv_philox4x64(kat[v], kat[v] + 4, out);
    for (int i = 0; i < 4; i++)
      CHECK(out[i] == kat[v][6 + i], "vector %d word %d: %016llx, expected %016llx", v, i,
            (unsigned long long)out[i], (unsigned long long)kat[v][6 + i]);
  }
}

/* Word i of sequence (hi, lo) of stream (seed, k, purpose) is word i % 4 of
 * Philox((i / 4, lo, hi, purpose), (seed, k)): the layout stream.h promises. */
static void test_counter_layout(void) {
  const gfv_stream s = gfv_stream_make(0x243f6a8885a308d3ULL, 12345, GFV_PURPOSE_EVAL);
  const uint64_t hi = 77, lo = 5;
  uint64_t w[11];
  gfv_stream_bits(&s, hi, lo, 0, 11, w);
  for (uint64_t i = 0; i < 11; i++) {
    const uint64_t ctr[4] = {i / 4, lo, hi, GFV_PURPOSE_EVAL}, key[2] = {0x243f6a8885a308d3ULL, 12345};
    uint64_t ref[4];
    gfv_philox4x64(ctr, key, ref);
    CHECK(w[i] == ref[i % 4], "word %d", (int)i);
    CHECK(gfv_stream_word(&s, hi, lo, i) == ref[i % 4], "gfv_stream_word %d", (int)i);
  }
}

/* ---- normals ------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* sup |F_n - Phi| of sorted x. */
static double ks_statistic(size_t n, const double *x) {
  double D = 0.0;
  for (size_t i = 0; i < n; i++) {
    double F = 0.5 * erfc(-x[i] / sqrt(2.0));
    double a = (double)(i + 1) / (double)n - F, b = F - (double)i / (double)n;
    if (a > D) D = a;
    if (b > D) D = b;
  }
  return D;
}

/* 10^6 draws of one sequence (a fixed seed, so the outcome is reproducible).  Bounds, each
 * at about 5 standard errors or the 0.001 quantile, so a correct generator passes them for
 * all but a negligible fraction of seeds, while the errors they guard against exceed them:
 *   mean: sd 1/sqrt(n) = 0.001, bound 0.005;
 *   variance: sd sqrt(2/n) = 0.0014, bound 0.007;
 *   P(|z| > 3) = 0.0026998: binomial sd 5.2e-5, bound 2.6e-4;
 *   lag-1 correlation (within Box-Muller pairs and across them): sd 0.001, bound 0.005;
 *   Kolmogorov-Smirnov: P(sqrt(n) D > 1.95) = 0.001 (Kolmogorov distribution), bound
 *   1.95 / sqrt(n); the same draws scaled by 1.01 (a 1% error in the standard deviation)
 *   must exceed it, so the bound has the power to see such an error. */
static void test_normals_distribution(void) {
  enum { N = 1000000 };
  double *z = malloc(N * sizeof(double));
  CHECK(z, "malloc");
  if (!z) return;
  const gfv_stream s = gfv_stream_make(20240611, 3, GFV_PURPOSE_SAMPLE);
  gfv_stream_normals(&s, 9, 0, N, z);
  double m = 0, v = 0, c = 0, c_in = 0, c_across = 0, tail = 0;
  for (size_t i = 0; i < N; i++) m += z[i];
  m /= N;
  for (size_t i = 0; i < N; i++) {
    v += (z[i] - m) * (z[i] - m);
    tail += fabs(z[i]) > 3.0;
    CHECK(isfinite(z[i]) && fabs(z[i]) <= 8.58, "draw %zu: %g", i, z[i]);
    if (i + 1 < N) {
      double p = (z[i] - m) * (z[i + 1] - m);
      c += p;
      if (i % 2 == 0) c_in += p; /* the two normals of one Box-Muller pair */
      else c_across += p;
    }
  }
  v /= N - 1;
  CHECK_NEAR(m, 0.0, 0.005, "mean");
  CHECK_NEAR(v, 1.0, 0.007, "variance");
  CHECK_NEAR(tail / N, 0.0026998, 2.6e-4, "P(|z| > 3)");
  CHECK_NEAR(c / (N - 1) / v, 0.0, 0.005, "lag-1 correlation");
  CHECK_NEAR(c_in / (N / 2) / v, 0.0, 0.007, "correlation within pairs (sd 0.0014)");
  CHECK_NEAR(c_across / (N / 2) / v, 0.0, 0.007, "correlation across pairs (sd 0.0014)");
  qsort(z, N, sizeof(double), cmp_double);
  const double bound = 1.95 / sqrt((double)N), D = ks_statistic(N, z);
  CHECK(D < bound, "Kolmogorov-Smirnov D = %.3g >= %.3g", D, bound);
  for (size_t i = 0; i < N; i++) z[i] *= 1.01;
  const double D1 = ks_statistic(N, z);
  CHECK(D1 > bound, "a 1%% scale error goes unseen: D = %.3g <= %.3g", D1, bound);
  free(z);
}

/* Uniforms lie in (0, 1]: the extreme words give 2^-53 and 1, never 0. */
static void test_uniforms_never_zero(void) {
  CHECK(gfv_u01(0) == 0x1p-53, "u01(0) = %g", gfv_u01(0));
  CHECK(gfv_u01((1ULL << 11) - 1) == 0x1p-53, "u01 of the low bits alone");
  CHECK(gfv_u01(~0ULL) == 1.0, "u01(max) = %.17g", gfv_u01(~0ULL));
  /* so the largest normal is sqrt(-2 log 2^-53) = 8.57 */
  CHECK(isfinite(sqrt(-2.0 * log(gfv_u01(0)))), "log of the smallest uniform");
}

/* floor(w m / 2^64) against the exact 128-bit product, and its range. */
static void test_below(void) {
  const gfv_stream s = gfv_stream_make(1, 2, GFV_PURPOSE_SPLIT);
  const uint64_t ms[] = {1, 2, 3, 10, 1000003, 1ULL << 40, ~0ULL};
  for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++) {
    CHECK(gfv_below(0, ms[a]) == 0, "below(0, %llu)", (unsigned long long)ms[a]);
    CHECK(gfv_below(~0ULL, ms[a]) == ms[a] - 1, "below(max, %llu)", (unsigned long long)ms[a]);
    for (uint64_t i = 0; i < 1000; i++) {
      uint64_t w = gfv_stream_word(&s, a, 0, i);
      uint64_t exact = (uint64_t)(((unsigned __int128)w * ms[a]) >> 64);
      CHECK(gfv_below(w, ms[a]) == exact, "below(%016llx, %llu)", (unsigned long long)w,
            (unsigned long long)ms[a]);
    }
  }
}

/* ---- distinct streams ------------------------------------------------------------------ */

static const unsigned purposes[] = {
    GFV_PURPOSE_SAMPLE,    GFV_PURPOSE_EVAL,      GFV_PURPOSE_SAMPLES_CSV, GFV_PURPOSE_REPORT,
    GFV_PURPOSE_INIT,      GFV_PURPOSE_RELOCATE,  GFV_PURPOSE_MINIBATCH,   GFV_PURPOSE_SPLIT,
    GFV_PURPOSE_INIT_START, GFV_PURPOSE_INIT_DRAWS, GFV_PURPOSE_INIT_SPLIT, GFV_PURPOSE_DRAWS,
    GFV_PURPOSE_RESAMPLE,  GFV_PURPOSE_PREDICT,   GFV_PURPOSE_PREDICT_NOISE, GFV_PURPOSE_CHECK};
#define NPURPOSES (sizeof purposes / sizeof purposes[0])

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The map (seed, k, purpose) -> (key, purpose word) keeps each input in its own word, so
 * two streams are the same only when seed, k and purpose all are (no hashing into 32
 * bits, whose birthday collisions gave pairs of particles identical streams from
 * K = 2^16 on).  The purposes are distinct numbers. */
static void test_key_map_injective(void) {
  const uint64_t seed = 0xfedcba9876543210ULL;
  long bad = 0;
  for (uint64_t k = 0; k < (1u << 20); k++)
    for (size_t p = 0; p < NPURPOSES; p++) {
      gfv_stream s = gfv_stream_make(seed, k, purposes[p]);
      bad += s.key[0] != seed || s.key[1] != k || s.purpose != purposes[p];
    }
  CHECK(bad == 0, "%ld streams do not carry (seed, k, purpose) unchanged", bad);
  for (size_t a = 0; a < NPURPOSES; a++)
    for (size_t b = a + 1; b < NPURPOSES; b++)
      CHECK(purposes[a] != purposes[b], "purposes %zu and %zu are both %u", a, b, purposes[a]);
}

/* The first variate of each of 2^20 particles (the first sample of the initial estimate):
 * no two are equal.  And the first word of every purpose's stream for 2^16 particles:
 * all different (a collision among 1.05 10^6 64-bit words has probability 3e-8). */
static void test_first_draws_distinct(void) {
  enum { K = 1 << 20, KP = 1 << 16 };
  double *z = malloc(K * sizeof(double));
  uint64_t *w = malloc(KP * NPURPOSES * sizeof(uint64_t));
  CHECK(z && w, "malloc");
  if (!z || !w) {
    free(z), free(w);
    return;
  }
  for (size_t k = 0; k < K; k++) {
    gfv_stream s = gfv_stream_make(1, k, GFV_PURPOSE_SAMPLE);
    gfv_stream_normals(&s, 0, 0, 1, z + k);
  }
  qsort(z, K, sizeof(double), cmp_double);
  size_t dup = 0;
  for (size_t k = 1; k < K; k++) dup += z[k] == z[k - 1];
  CHECK(dup == 0, "%zu pairs of the 2^20 particles share their first variate", dup);
  for (size_t k = 0; k < KP; k++)
    for (size_t p = 0; p < NPURPOSES; p++) {
      gfv_stream s = gfv_stream_make(1, k, purposes[p]);
      w[k * NPURPOSES + p] = gfv_stream_word(&s, 0, 0, 0);
    }
  qsort(w, KP * NPURPOSES, sizeof(uint64_t), cmp_u64);
  dup = 0;
  for (size_t i = 1; i < KP * NPURPOSES; i++) dup += w[i] == w[i - 1];
  CHECK(dup == 0, "%zu equal first words among the streams", dup);
  free(z), free(w);
}

/* ---- random access ------------------------------------------------------------------- */

/* Draw i of a sequence, computed alone or as part of any cut into calls, is draw i of the
 * sequential generation, bit for bit. */
static void test_random_access(void) {
  enum { N = 1001 };
  const gfv_stream s = gfv_stream_make(42, 7, GFV_PURPOSE_SAMPLE);
  const uint64_t his[] = {0, 1, 123456789}, los[] = {0, 3};
  double seq[N], piece[N], one;
  uint64_t wseq[N], wpiece[N];
  for (size_t a = 0; a < 3; a++)
    for (size_t b = 0; b < 2; b++) {
      gfv_stream_normals(&s, his[a], los[b], N, seq);
      gfv_stream_bits(&s, his[a], los[b], 0, N, wseq);
      size_t bad = 0;
      for (size_t i = 0; i < N; i++) {
        gfv_stream_normals_at(&s, his[a], los[b], i, 1, &one);
        bad += memcmp(&one, seq + i, sizeof one) != 0;
        bad += gfv_stream_word(&s, his[a], los[b], i) != wseq[i];
      }
      for (size_t i = 0, len = 1; i < N; i += len, len = len % 9 + 1) { /* cuts of 1..9 */
        size_t c = N - i < len ? N - i : len;
        gfv_stream_normals_at(&s, his[a], los[b], i, c, piece + i);
        gfv_stream_bits(&s, his[a], los[b], i, c, wpiece + i);
      }
      bad += memcmp(piece, seq, sizeof seq) != 0;
      bad += memcmp(wpiece, wseq, sizeof wseq) != 0;
      CHECK(bad == 0, "sequence (%llu, %llu): %zu draws differ", (unsigned long long)his[a],
            (unsigned long long)los[b], bad);
    }
  /* Different sequences differ. */
  double other[N];
  gfv_stream_normals(&s, 0, 1, N, other);
  gfv_stream_normals(&s, 0, 0, N, seq);
  CHECK(memcmp(other, seq, sizeof seq) != 0, "sequences (0, 0) and (0, 1) are equal");
}

/* A mixture row: the normals of sequence (r, 1) and the uniform of word 0 of (r, 0). */
static void test_mixture_row(void) {
  const gfv_stream s = gfv_stream_make(3, 0, GFV_PURPOSE_SAMPLES_CSV);
  double eps[5], ref[5];
  for (uint64_t r = 0; r < 10; r++) {
    double u = gfv_stream_mixture_row(&s, r, 5, eps);
    gfv_stream_normals(&s, r, 1, 5, ref);
    CHECK(memcmp(eps, ref, sizeof ref) == 0, "row %d: normals", (int)r);
    CHECK(u == gfv_u01(gfv_stream_word(&s, r, 0, 0)), "row %d: uniform", (int)r);
  }
}

/* The solver's samples after t iterations without a rejection are z = mu + L^{-T} eps with
 * eps the sequence (t, 0) of each particle's sampling stream, at the current parameters:
 * computable directly, with nothing replayed. */
static void test_solver_samples_are_sequence_t(void) {
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  cfg.particles = 3, cfg.samples = 5, cfg.iters = 7, cfg.seed = 99, cfg.dim = 3;
  snprintf(cfg.target, sizeof cfg.target, "gauss");
  gfv_target *t = NULL;
  gfv_comm *comm = NULL;
  gfv_solver *s = NULL;
  CHECK(gfv_target_create("gauss", 3, &t) == 0, "target: %s", gfv_error_message());
  gfv_comm_self(&comm);
  if (t && gfv_solver_create(&cfg, t, comm, &s) == 0) {
    for (int i = 0; i < 7; i++) CHECK(gfv_solver_iterate(s) == 0, "iterate: %s", gfv_error_message());
    CHECK(s->rejected == 0 && s->iter == 7, "%ld rejections in %ld iterations", s->rejected, s->iter);
    double z[5 * 3];
    for (size_t j = 0; j < s->kloc; j++) {
      gfv_stream st = gfv_stream_make(99, s->k0 + j, GFV_PURPOSE_SAMPLE);
      gfv_particles_sample(&s->cur, j, &st, 7, 0, 5, z);
      CHECK(memcmp(z, s->zall + (s->k0 + j) * 15, sizeof z) == 0, "particle %zu's samples", j);
    }
  } else {
    CHECK(0, "solver: %s", gfv_error_message());
  }
  gfv_solver_free(s);
  gfv_comm_free(comm);
  gfv_target_free(t);
}

/* ---- the discrete sampler -------------------------------------------------------------- */

static void test_discrete(void) {
  const double w[5] = {0, 1, 0, 3, 0};
  gfv_discrete *t = NULL;
  CHECK(gfv_discrete_alloc(5, w, &t) == 0, "alloc: %s", gfv_error_message());
  if (!t) return;
  /* cumulative 0 1 1 4 4: u 4 <= 1 picks 1, above picks 3; never a zero weight */
  CHECK(gfv_discrete_pick(t, 0x1p-53) == 1, "smallest u");
  CHECK(gfv_discrete_pick(t, 0.25) == 1, "u = 1/4");
  CHECK(gfv_discrete_pick(t, nextafter(0.25, 1)) == 3, "u just above 1/4");
  CHECK(gfv_discrete_pick(t, 1.0) == 3, "u = 1");
  /* frequencies from the stream's uniforms: 1/4 and 3/4, binomial sd 0.0014 at n = 10^5 */
  const gfv_stream s = gfv_stream_make(5, 0, GFV_PURPOSE_SAMPLES_CSV);
  size_t count[5] = {0}, n = 100000;
  for (size_t i = 0; i < n; i++) count[gfv_discrete_pick(t, gfv_u01(gfv_stream_word(&s, 0, 0, i)))]++;
  CHECK(count[0] == 0 && count[2] == 0 && count[4] == 0, "a zero weight was picked");
  CHECK_NEAR((double)count[1] / (double)n, 0.25, 0.007, "frequency of weight 1");
  gfv_discrete_free(t);
  const double neg[2] = {1, -1}, zero[2] = {0, 0}, nan2[2] = {1, NAN};
  t = NULL;
  CHECK(gfv_discrete_alloc(2, neg, &t) == GFV_ERR_NUMERIC && !t, "negative weight accepted");
  CHECK(gfv_discrete_alloc(2, zero, &t) == GFV_ERR_NUMERIC && !t, "all-zero weights accepted");
  CHECK(gfv_discrete_alloc(2, nan2, &t) == GFV_ERR_NUMERIC && !t, "NaN weight accepted");
}

int main(void) {
  RUN(test_philox_known_answers);
  RUN(test_counter_layout);
  RUN(test_normals_distribution);
  RUN(test_uniforms_never_zero);
  RUN(test_below);
  RUN(test_key_map_injective);
  RUN(test_first_draws_distinct);
  RUN(test_random_access);
  RUN(test_mixture_row);
  RUN(test_solver_samples_are_sequence_t);
  RUN(test_discrete);
  return harness_report();
}
