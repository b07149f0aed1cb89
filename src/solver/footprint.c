/* footprint.c - the memory and disk estimates of a run (see footprint.h).
 *
 * Memory, per rank (8-byte doubles; d dimension, ps = d^2, or d for --family=diag; K
 * particles, kloc of them on this rank; S samples; n = K S; nloc = kloc S; H = 1 when the
 * estimator is hessian; rows = iters + 1; the random streams are counter-based and take no
 * memory, rng/stream.h; the layout as gfv_layout_choose resolves --layout):
 *   kept from gfv_solver_create to the end (solver.c allocate(), particles.c):
 *     trace        48 rows
 *     mixture      samples layout: 8 a kloc phase-A terms (a = n points, or fewer in ranges
 *                  under GFV_SAMPLES_A_BUDGET, then 8 a more) + the kernel workspace for
 *                  (d, kloc, S); params layout: the fused kernel's workspace for (d, K, S),
 *                  O(K d + GFV_MIX_FUSED_BUDGET), or for (d, cap, S) when the mixture
 *                  streams (cap: components per block, gfv_params_stream_cap)
 *     samples      samples layout: 8 (4 n d + nloc d + nloc + n + nloc d [+ H (K + kloc) ps])
 *                  + with several ranks, Open MPI's temporaries for the reduce-scatter
 *                  (twice its message) and the log-sum-exp all-reduce (n doubles); params
 *                  layout: 8 (3 nloc d + 2 nloc [+ H kloc ps]) + nloc flags
 *     Hessians     8 H (nloc + S) d^2 (the targets' Hessians; one particle's, compacted)
 *     particles    two states (cur, prev) of 8 kloc (d + 2 ps + 2), two estimates of
 *                  8 kloc (d + ps + 2), the flow and estimator work, the trust region's
 *                  8 (4 kloc + d^2 + d + 3 S d) and 2 x 16 kloc flags, five per-rank count
 *                  arrays; samples layout: 8 H K ps (phase B's Hessian sums; beyond
 *                  GFV_PARAMS_GATHER_BUDGET 8 H h ps, chunks of h particles, and no send
 *                  buffer: its n d + H K ps above drop out); params
 *                  layout: the whole mixture but L, 8 K (d + ps + 2), or when it exceeds
 *                  GFV_PARAMS_GATHER_BUDGET the ring's two blocks, 2 x 8 cap (d + ps + 3)
 *                  (at most a quarter of the budget: params_stream.c), and the own
 *                  precisions' eigenvalue bounds, 16 kloc
 *   plus the largest of these later phases:
 *     restart      rank 0 checks the checkpoint's checksum and reads it a block of rows at a
 *                  time (checkpoint.c, restore), sending each rank its own: two blocks
 *                  on rank 0, one on the others, and every rank keeps its own kloc
 *     checkpoint   blocks of B = min(GFV_OUTPUT_BLOCK_BYTES / per, ceil(K / P)) packed
 *                  particles (per = 8 (5 + 2d + 3ps) bytes; output_blocks.h): every rank
 *                  packs and sends one block at a time; rank 0 holds one block received and
 *                  its columns (2 B per) and one copy of the trace, and HDF5 writes the file
 *                  directly (no image in memory)
 *     evaluation   the whole mixture 8 K (2 + d + 2 ps) on every rank (params layout: its L,
 *                  8 K ps, the rest is kept), the kernel workspace for (d, K, 1) (params
 *                  layout: the fused kernel's); streamed (either layout, the mixture beyond
 *                  the budget): the weights 8 K, the fused kernel's workspace for (d, cap, 1),
 *                  log q at the draws 8 kloc M, and in the samples layout the ring's two
 *                  blocks; 8 kloc M
 *                  log ratios, M = ceil(N/K) of --eval-samples=N; rank 0 gathers all K M for
 *                  PSIS (32 bytes each: the ratios, the smoothed copy, the sort's (value,
 *                  index) pairs)
 *     outputs      below the budget, the whole mixture 8 K (2 + d + 2 ps) on every rank;
 *                  rank 0: one block of B = min(K, GFV_OUTPUT_BLOCK_BYTES / (8 (1 + d + ps)))
 *                  rows of weights, means and covariances, 8 B (1 + d + ps), for mixture.csv
 *                  and mixture.h5 (written by HDF5 directly); all K of them, 8 K (1 + ps),
 *                  only for a target's report or --predict hooks; density.csv's grid and
 *                  workspace for 2-D targets; the kernel workspace for (d, K, 1).  Beyond the
 *                  budget (cap > 0) and without those hooks (d != 2, no report, no
 *                  --predict), which keep the gathered path (they are for small K): every
 *                  rank holds the weights three times (gathered, exp'd, the sampler's sums),
 *                  24 K, one block 8 B (1 + d + ps) (the owner packs, rank 0 receives:
 *                  block_root.h), the fused kernel's workspace for (d, cap, 1), a share of
 *                  a block's log q and, in the samples layout, the ring's blocks.  Both: the
 *                  draws (draws.h): a block of 4096 draws' scratch 8 4096 (d + m + 3) on
 *                  every rank that draws; rank 0: N = --out-samples rows of m + 2 values (m
 *                  outputs), kept for posterior.nc, whose in-memory image and one variable's
 *                  buffer take about as much again, the PSIS weights (17 N)
 * malloc's own bookkeeping (16 bytes a block), HDF5's metadata cache (about 2 MB while a
 * file is open) and the targets' buffers (allocated when the
 * target is created, before the check, so part of what the process already uses) are
 * not counted; tests/unit/test_resources.c holds the persistent part to 5% of what a
 * created solver allocates.
 *
 * Disk: the CSV files at the field lengths measured on typical runs (%.17g fields and
 * their separators are 19-21 bytes; exponents make some longer), the binary files at
 * their exact data size plus the HDF5 overhead measured (2-8 kB), every file rounded up by
 * a 4 kB block.  The checkpoint counts even when none is scheduled: SIGTERM and SIGUSR1
 * always write one. */
#include "solver/footprint.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "flows/flow.h"
#include "gflowvi/mixture.h"
#include "solver/output_blocks.h"
#include "solver/particles.h"
#include "solver/solver_impl.h"

#define CSV_FIELD 22.0        /* bytes per %.17g field with its separator */
#define TRACE_ROW 100.0       /* bytes per row of trace.csv (97-99 measured) */
#define DENSITY_ROW 47.0      /* bytes per row of density.csv (46.3 measured) */
#define H5_OVERHEAD 6144.0    /* HDF5 superblock, headers, attributes of mixture.h5 (2.4-4 kB) */
#define CKPT_OVERHEAD 10240.0 /* the same for the checkpoint, with the configuration's JSON (7-8 kB) */
#define SUMMARY_BYTES 8192.0  /* summary.json: 2.5 kB measured, more with a target's report */
#define NC_OVERHEAD 65536.0   /* posterior.nc: headers, and the image grows by 64 kB at a time */
#define PREDICT_ROW 110.0     /* bytes per row of predictions.csv (a row number, 5 fields) */

/* The sizes every estimate starts from, as doubles: no product can overflow. */
typedef struct {
  double d, ps, K, S, kloc, n, nloc, rows, per_ck, cap; /* cap: 0 unless the mixture streams */
  int diag, H, root, params;
} shape;

static void get_shape(const gfv_config *cfg, const gfv_target *t, int ranks, int rank, shape *s) {
  size_t k0, kl;
  gfv_block_range((size_t)cfg->particles, ranks, rank, &k0, &kl);
  const gfv_estimator_type *est = gfv_estimator_lookup(gfv_solver_estimator_name(cfg, t));
  const gfv_family_type *fam = gfv_family_lookup(cfg->family); /* a validated choice */
  if (!fam) fam = &gfv_family_full;
  s->diag = fam->diag || fam->rank; /* the kernels' workspace sizes (lowrank: a diagonal one) */
  s->H = est && est->needs_hessian;
  s->root = rank == 0;
  s->d = (double)t->dim;
  s->ps = (double)fam->psize(fam, t->dim);
  s->K = (double)cfg->particles;
  s->S = (double)cfg->samples;
  s->kloc = (double)kl;
  s->n = s->K * s->S;
  s->nloc = s->kloc * s->S;
  s->rows = (double)cfg->iters + 1;
  s->per_ck = 8 * (5 + 2 * s->d + 3 * s->ps); /* checkpoint.c doubles_per_particle */
  s->params = !fam->rank && gfv_layout_choose(cfg->layout, (size_t)cfg->particles, (size_t)cfg->samples, t->dim,
                                s->diag, s->H, ranks) == GFV_LAYOUT_PARAMS;
  s->cap = (double)gfv_family_stream_cap(fam, (size_t)cfg->particles, ranks, t->dim);
}

/* Adds to term the phase whose total is the largest. */
static void add_largest(const double phases[][GFV_MEM_NTERMS], int count, double *term) {
  int best = 0;
  double best_sum = -1;
  for (int p = 0; p < count; p++) {
    double sum = 0;
    for (int i = 0; i < GFV_MEM_NTERMS; i++) sum += phases[p][i];
    if (sum > best_sum) best_sum = sum, best = p;
  }
  for (int i = 0; i < GFV_MEM_NTERMS; i++) term[i] += phases[best][i];
}

void gfv_memory_estimate(const gfv_config *cfg, const gfv_target *t, int ranks, int rank,
                         gfv_mem_estimate *out) {
  shape s;
  get_shape(cfg, t, ranks, rank, &s);
  const double d = s.d, ps = s.ps, K = s.K, n = s.n, nloc = s.nloc, kloc = s.kloc;
  const double row = sizeof(gfv_trace_row);
  double *keep = out->term;
  memset(out, 0, sizeof *out);
  keep[GFV_MEM_TRACE] = s.rows * row;
  const size_t S = (size_t)cfg->samples;
  if (s.params) {
    keep[GFV_MEM_MIXTURE] = gfv_mix_fused_bytes(t->dim, (size_t)(s.cap > 0 ? s.cap : K), S, s.diag,
                                                GFV_MIX_FUSED_BUDGET);
    keep[GFV_MEM_SAMPLES] = 8 * (3 * nloc * d + 2 * nloc + s.H * kloc * ps) + nloc;
  } else {
    const double a = (double)gfv_samples_a_rows((size_t)n, (size_t)kloc, S);
    keep[GFV_MEM_MIXTURE] = 8 * a * kloc + (a < n ? 8 * a : 0) +
                            gfv_mix_work_bytes(t->dim, (size_t)kloc, S, s.diag);
    /* The reduce-scatter's message; with the Hessian sums in chunks (hr < K particles at a
     * time) there is no send buffer, and the largest message is gbar's or a chunk's. */
    const double hr = (double)gfv_samples_h_rows((size_t)K, (size_t)ps, s.H);
    const double send = hr < K ? 0 : n * d + s.H * K * ps;
    const double msg = hr < K ? fmax(n * d, hr * ps) : send;
    keep[GFV_MEM_SAMPLES] = 8 * (n * d + n * d + send + nloc * d + s.H * kloc * ps + nloc +
                                 nloc * d + n);
    if (ranks > 1) keep[GFV_MEM_SAMPLES] += 8 * (2 * msg + n);
  }
  /* and the trust region's compaction buffers for one particle's samples (solver.c) */
  /* The other particles: the params layout's gathered mixture, or the ring's two blocks. */
  const double ring = s.cap > 0 ? 2 * 8 * s.cap * (d + ps + GFV_RING_EXTRA) + 16 * kloc : 0;
  const double others = s.params ? (s.cap > 0 ? ring : 8 * K * (d + ps + 2))
                                 : 8 * s.H * (double)gfv_samples_h_rows((size_t)K, (size_t)ps, s.H) * ps;
  keep[GFV_MEM_HESSIANS] = 8 * s.H * nloc * d * d + 8 * s.H * (double)cfg->samples * d * d;
  keep[GFV_MEM_PARTICLES] =
      2 * 8 * kloc * (d + 2 * ps + 2) + 2 * 8 * kloc * (d + ps + 2) +
      others + 8 * (double)gfv_flow_work_size(t->dim) +
      8 * (double)gfv_estimator_work_size(t->dim, (size_t)cfg->samples) + 5 * 8 * (double)ranks +
      /* per-component step control: bounds, step factors, flags, final objectives, the
       * estimates' sample counts and flags; the KL's work; the compaction buffers */
      8 * kloc * 4 + 2 * 16 * kloc + 8 * (d * d + d) + 3 * 8 * (double)cfg->samples * d;
  for (int i = 0; i < GFV_MEM_NTERMS; i++) out->persistent += keep[i];

  const double ck_rows = (double)gfv_ckpt_block_rows((size_t)K, ranks, (size_t)s.per_ck);
  enum { RESTART, CHECKPOINT, EVALUATION, OUTPUTS, NPHASES };
  double phase[NPHASES][GFV_MEM_NTERMS] = {{0}};
  if (cfg->restart[0]) {
    /* every rank's own block, a block of rows in flight, and rank 0's columns of one */
    phase[RESTART][GFV_MEM_PARTICLES] = kloc * s.per_ck + (1 + s.root) * ck_rows * s.per_ck;
    phase[RESTART][GFV_MEM_TRACE] = s.rows * 48;
  }
  phase[CHECKPOINT][GFV_MEM_PARTICLES] = (1 + s.root) * ck_rows * s.per_ck;
  phase[CHECKPOINT][GFV_MEM_TRACE] = s.root * s.rows * 48;
  /* The whole mixture (gfv_solver_gather_full): only L is new in the params layout. */
  const double full = s.params && s.cap == 0 ? 8 * K * ps : 8 * K * (2 + d + 2 * ps);
  const double M = ceil((double)cfg->eval_samples / K);
  double work = (s.params ? gfv_mix_fused_bytes(t->dim, (size_t)K, 1, s.diag, GFV_MIX_FUSED_BUDGET)
                          : gfv_mix_work_bytes(t->dim, (size_t)K, 1, s.diag)) +
                8 * GFV_EVAL_BLOCK * (d + 2);
  /* Streamed (evaluate.c stream_logq): the weights, the workspace for a block, log q at the
   * draws, and in the samples layout the ring's blocks, new there. */
  if (s.cap > 0)
    work = 8 * K + gfv_mix_fused_bytes(t->dim, (size_t)s.cap, 1, s.diag, GFV_MIX_FUSED_BUDGET) +
           8 * GFV_EVAL_BLOCK * (d + 2) + 8 * kloc * M + (s.params ? 0 : ring);
  phase[EVALUATION][GFV_MEM_PARTICLES] = (s.cap > 0 ? 0 : full) + work;
  phase[EVALUATION][GFV_MEM_EVAL] = 8 * kloc * M + s.root * 32 * K * M;
  /* Beyond the budget the outputs keep only the weights (outputs.c), unless a hook that
   * takes the whole mixture runs: density.csv (d = 2), the report, --predict. */
  const int hooks = t->dim == 2 || t->report || cfg->predict[0];
  const int streamed = s.cap > 0 && !hooks;
  const double mix_rows = (double)gfv_mixture_block_rows((size_t)K, (size_t)d, (size_t)ps);
  const double mix_block = 8 * mix_rows * (1 + d + ps); /* every rank's when streamed */
  const double N = (double)cfg->out_samples, m = (double)(t->nout ? t->nout : t->dim);
  const double draw_block = 8 * 4096 * (d + m + 3);
  if (streamed) {
    /* the weights, their copy and the sampler's cumulative sums; a block of the mixture's
     * rows; the draws' block, the fused kernel for (d, cap, 1), a share of log q and the
     * samples layout's ring (draws.c gfv_draws_make_streamed) */
    phase[OUTPUTS][GFV_MEM_PARTICLES] =
        3 * 8 * K + mix_block + gfv_mix_fused_bytes(t->dim, (size_t)s.cap, 1, s.diag, GFV_MIX_FUSED_BUDGET) +
        8 * (4096.0 / ranks + 1) + 16 * ranks + (s.params ? 0 : ring);
    phase[OUTPUTS][GFV_MEM_DRAWS] = draw_block;
  } else {
    phase[OUTPUTS][GFV_MEM_PARTICLES] = full;
    if (s.root) {
      phase[OUTPUTS][GFV_MEM_PARTICLES] += mix_block + (t->report || cfg->predict[0] ? 8 * K * (1 + ps) : 0);
      if (t->dim == 2)
        phase[OUTPUTS][GFV_MEM_PARTICLES] +=
            8.0 * 4 * GFV_GRID * GFV_GRID + gfv_mix_work_bytes(2, (size_t)K, 1, s.diag);
    }
    if (s.root) phase[OUTPUTS][GFV_MEM_DRAWS] = draw_block + gfv_mix_work_bytes(t->dim, (size_t)K, 1, s.diag);
  }
  if (s.root)
    phase[OUTPUTS][GFV_MEM_DRAWS] += 3 * 8 * N * (m + 2) + NC_OVERHEAD + 17 * N;
  add_largest((const double(*)[GFV_MEM_NTERMS])phase, NPHASES, keep);
  for (int i = 0; i < GFV_MEM_NTERMS; i++) out->peak += keep[i];
}

int gfv_mem_dominant(const gfv_mem_estimate *e) {
  int best = 0;
  for (int i = 1; i < GFV_MEM_NTERMS; i++)
    if (e->term[i] > e->term[best]) best = i;
  return best;
}

const char *gfv_mem_term_what(int term) {
  static const char *const what[GFV_MEM_NTERMS] = {
      "the trace", "the K^2 S mixture terms", "the K S d sample buffers",
      "the target's Hessians at the samples", "the particles", "the final evaluation",
      "the draws of draws.csv and posterior.nc"};
  return term >= 0 && term < GFV_MEM_NTERMS ? what[term] : "";
}

void gfv_mem_term_options(const gfv_config *cfg, int term, char *buf, size_t size) {
  switch (term) {
  case GFV_MEM_TRACE: snprintf(buf, size, "--iters=%ld", cfg->iters); break;
  case GFV_MEM_MIXTURE:
  case GFV_MEM_SAMPLES:
    snprintf(buf, size, "--particles=%ld --samples=%ld", cfg->particles, cfg->samples);
    break;
  case GFV_MEM_HESSIANS: snprintf(buf, size, "--samples=%ld", cfg->samples); break;
  case GFV_MEM_EVAL: snprintf(buf, size, "--eval-samples=%ld", cfg->eval_samples); break;
  case GFV_MEM_DRAWS: snprintf(buf, size, "--out-samples=%ld", cfg->out_samples); break;
  default: snprintf(buf, size, "--particles=%ld", cfg->particles); break;
  }
  /* These two grow with d^2 (d with --family=diag): a huge --dim is what to blame, not the
   * 20 particles of the default (--dim=4294967296 --family=diag named only --particles). */
  size_t len = strlen(buf);
  if (cfg->dim > 0 && (term == GFV_MEM_PARTICLES || term == GFV_MEM_HESSIANS) && len < size)
    snprintf(buf + len, size - len, " --dim=%ld", cfg->dim);
}

static void add_file(gfv_disk_estimate *e, const char *dir, const char *name, double bytes,
                     const char *option, double value) {
  gfv_disk_file *f = &e->file[e->n++];
  if (dir) snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
  else snprintf(f->path, sizeof f->path, "%s", name);
  /* Every file takes whole blocks; 4 kB each covers the common block sizes. */
  f->bytes = bytes + 4096;
  if (value >= 0) snprintf(f->option, sizeof f->option, "%s=%.0f", option, value);
  else snprintf(f->option, sizeof f->option, "%s", option);
}

void gfv_disk_estimate_files(const gfv_config *cfg, const gfv_target *t, gfv_disk_estimate *out) {
  shape s;
  get_shape(cfg, t, 1, 0, &s);
  const double fields = 1 + s.d + s.ps; /* a mixture row: weight, mean, covariance */
  const char *dir = cfg->out, *const *names = gfv_output_file_names;
  char out_opt[GFV_PATH_MAX + 8], ck[GFV_PATH_MAX + 64];
  snprintf(out_opt, sizeof out_opt, "--out=%s", cfg->out);
  out->n = 0;
  add_file(out, dir, names[F_MIXTURE], s.K * fields * CSV_FIELD + fields * 12, "--particles", s.K);
  add_file(out, dir, names[F_TRACE], s.rows * TRACE_ROW, "--iters", s.rows - 1);
  add_file(out, dir, names[F_SAMPLES], (double)cfg->out_samples * s.d * CSV_FIELD + s.d * 8,
           "--out-samples", (double)cfg->out_samples);
  if (t->dim == 2)
    add_file(out, dir, names[F_DENSITY], (double)GFV_GRID * GFV_GRID * DENSITY_ROW, out_opt, -1);
  add_file(out, dir, names[F_H5], 8 * s.K * fields + H5_OVERHEAD, "--particles", s.K);
  /* the draws: m outputs, lp__ and lq__ per row (draws.h) */
  const double N = (double)cfg->out_samples, cols = (double)(t->nout ? t->nout : t->dim) + 2;
  add_file(out, dir, names[F_DRAWS], N * cols * CSV_FIELD + cols * 12, "--out-samples", N);
  add_file(out, dir, names[F_NC], 8 * N * (cols + 2) + NC_OVERHEAD + cols * 1024, "--out-samples", N);
  if (!strcmp(cfg->resample, "psis"))
    add_file(out, dir, names[F_PSIS], N * cols * CSV_FIELD + cols * 12, "--out-samples", N);
  struct stat sb;
  if (cfg->predict[0] && t->predict_cols && stat(cfg->predict, &sb) == 0) /* >= 2 bytes a field */
    add_file(out, dir, names[F_PREDICTIONS], (double)sb.st_size / (2.0 * (double)t->predict_cols) * PREDICT_ROW,
             "--predict", -1);
  add_file(out, dir, names[F_SUMMARY], SUMMARY_BYTES, out_opt, -1);
  /* The checkpoint: K packed particles and the trace (checkpoint.c). */
  const double parts = s.K * s.per_ck, trace = s.rows * 48;
  add_file(out, NULL, gfv_checkpoint_path(cfg, ck, sizeof ck), parts + trace + CKPT_OVERHEAD,
           trace > parts ? "--iters" : "--particles", trace > parts ? s.rows - 1 : s.K);
}
