/* checkpoint.c - saving and restoring a run (HDF5).
 *
 * A checkpoint holds everything needed to continue exactly: the iteration, every
 * particle's parameters and weight, the Monte Carlo estimates at the current particles
 * (the next update consumes them), the step-size state, the trace so far, the resolved
 * configuration, and an FNV-1a checksum over all of it.  The random streams have no state
 * to save: they are counter-based (rng/stream.h), and the draws of iteration t follow from
 * (seed, particle index, t) alone.  Restarting at the same rank count therefore reproduces
 * the uninterrupted run bit for bit; at another rank count the particles are re-sharded
 * and the run agrees to the usual rank-count tolerance, since every particle keys its own
 * streams.
 *
 * Layout (h5dump / h5py / R's hdf5r read it directly):
 *   /logw (K), /mu (K, d), /precision (K, d, d), /precision_chol (K, d, d)  [(K, d) for --family=diag, (K, d + d R) for lowrank:R],
 *   /grad_estimate (K, d), /hessian_estimate (K, d, d), /phi (K), /phi_var (K),
 *   /trust_region (K: each component's KL bound), /samples_in_support (K),
 *   /trace (rows, 6: iteration, elbo, elbo_se, step_norm, step_size, seconds); attributes:
 *   format, target, flow, estimator, update, rng_type (the streams' generator), family,
 *   config (JSON), checksum, and the scalars listed in scalar_names below; for restarts
 *   (restart.c) config_text (the options as a config file), data_checksum and
 *   target_file_checksum (the input files' contents) and config_text_checksum over those.
 *
 * Writing: every rank packs its particles a block at a time (output_blocks.h) and sends
 * them to rank 0, which takes the ranks in order and writes each block into datasets
 * created at full size, HDF5 writing the temporary file itself; then it reads the file back
 * a block at a time for the checksum, syncs it and renames it: no rank holds all K
 * particles, and a kill during the write leaves the previous checkpoint intact.  Reading:
 * rank 0 reads the configuration first (gfv_checkpoint_read_config, before the target
 * exists); then rank 0 reads the whole file and verifies the checksum, broadcasts the
 * scalars and the trace, and scatters to every rank its own block of particles, so that
 * no other rank holds more than its share (K = 65,536 at d = 16 is 420 MB). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "io/h5file.h"
#include "solver/block_root.h"
#include "solver/output_blocks.h"
#include "solver/solver_impl.h"

/* 3: counter-based streams, no stream state (2 held GSL MT19937 states). */
#define GFV_CKPT_FORMAT "gflowvi-checkpoint 3"
/* The generator and the normals the iteration counter refers to. */
#define GFV_CKPT_RNG "philox4x64-10/box-muller"

enum {
  SC_ITERATION, SC_ETA, SC_STEP, SC_REJECTED, SC_RUN_SECONDS, SC_CONVERGED, SC_PHIBAR, SC_ELBO,
  SC_ELBO_SE, SC_NTRACE, SC_PARTICLES, SC_SAMPLES, SC_DIM, SC_SEED, SC_LAST_REL,
  SC_TR_LIMITED, SC_MAX_MOVE, SC_MAX_MOVE_ITER, SC_OUTSIDE, SC_COUNT
};
static const char *const scalar_names[SC_COUNT] = {
    "iteration", "eta",       "step",      "rejected", "run_seconds", "converged",
    "phibar",    "elbo",      "elbo_se",   "ntrace",   "particles",   "samples",
    "dim",       "seed",      "last_relative_step",
    "trust_region_limited",   "max_move",  "max_move_iteration", "outside_fraction"};

enum { S_TARGET, S_FLOW, S_ESTIMATOR, S_UPDATE, S_RNG, S_FAMILY, S_COUNT };
static const char *const string_names[S_COUNT] = {"target",   "flow",     "estimator",
                                                  "update",   "rng_type", "family"};

/* Every particle, in global order, as stored in the file. */
typedef struct {
  size_t K, d, ps, ntrace; /* ps: numbers per precision (d * d, or d for diag) */
  double *logw, *mu, *P, *L, *gh, *G, *phi, *phivar, *tr_eps, *used, *trace;
  double scalars[SC_COUNT];
  char strings[S_COUNT][GFV_PATH_MAX];
} full_state;

static size_t doubles_per_particle(size_t d, size_t ps) { return 5 + 2 * d + 3 * ps; }

static int state_alloc(full_state *f, size_t K, size_t d, size_t ps, size_t ntrace) {
  const size_t dd = ps;
  f->K = K, f->d = d, f->ps = ps, f->ntrace = ntrace;
  GFV_ALLOC(f->logw, K);
  GFV_ALLOC(f->mu, K * d);
  GFV_ALLOC(f->P, K * dd);
  GFV_ALLOC(f->L, K * dd);
  GFV_ALLOC(f->gh, K * d);
  GFV_ALLOC(f->G, K * dd);
  GFV_ALLOC(f->phi, K);
  GFV_ALLOC(f->phivar, K);
  GFV_ALLOC(f->tr_eps, K);
  GFV_ALLOC(f->used, K);
  GFV_ALLOC(f->trace, ntrace * 6);
  return GFV_OK;
}

static void state_free(full_state *f) {
  free(f->logw), free(f->mu), free(f->P), free(f->L), free(f->gh), free(f->G), free(f->phi);
  free(f->phivar), free(f->tr_eps), free(f->used), free(f->trace);
}

/* The part of the checksum after the particles' arrays: the trace, scalars and names. */
static uint64_t checksum_tail(uint64_t h, const full_state *f) {
  h = gfv_fnv1a(h, f->trace, f->ntrace * 6 * 8);
  h = gfv_fnv1a(h, f->scalars, sizeof f->scalars);
  for (int i = 0; i < S_COUNT; i++) h = gfv_fnv1a(h, f->strings[i], strlen(f->strings[i]));
  return h;
}


/* The particles' datasets, in the file's order, which is also the order of a packed
 * particle's numbers and of the checksum: width W1 (1), WD (d) or WP (ps numbers). */
enum { W1, WD, WP };
static const struct {
  const char *name;
  int width;
} particle_sets[] = {{"logw", W1},          {"mu", WD},           {"precision", WP},
                     {"precision_chol", WP}, {"grad_estimate", WD}, {"hessian_estimate", WP},
                     {"phi", W1},            {"phi_var", W1},       {"trust_region", W1},
                     {"samples_in_support", W1}};
#define NSETS (sizeof particle_sets / sizeof particle_sets[0])

static size_t set_width(int w, size_t d, size_t ps) { return w == W1 ? 1 : w == WD ? d : ps; }

/* Dataset i's shape (its rank, and dims): (K), (K, d), and the precisions (K, d, d), or at
 * rank 2 (K, psize): (K, d) for diag, (K, d + d R) for lowrank:R. */
static int set_shape(const gfv_solver *s, size_t i, size_t dims[3]) {
  const int wd = particle_sets[i].width, prank = 1 + s->fam->cov_rank;
  dims[0] = s->K, dims[1] = wd == WD || prank == 3 ? s->d : s->psize, dims[2] = s->d;
  return wd == W1 ? 1 : wd == WD ? 2 : prank;
}

/* Packs this rank's particles [j0, j0 + n), doubles_per_particle each. */
static void pack_local(const gfv_solver *s, size_t j0, size_t n, double *buf) {
  const size_t d = s->d, dd = s->psize, per = doubles_per_particle(d, dd);
  const gfv_estimate *e = &s->est_buf[s->cur_est];
  for (size_t i = 0; i < n; i++) {
    const size_t j = j0 + i;
    double *x = buf + i * per;
    x[0] = s->cur.logw[j];
    memcpy(x + 1, s->cur.mu + j * d, d * 8);
    memcpy(x + 1 + d, s->cur.P + j * dd, dd * 8);
    memcpy(x + 1 + d + dd, s->cur.L + j * dd, dd * 8);
    memcpy(x + 1 + d + 2 * dd, e->gh + j * d, d * 8);
    memcpy(x + 1 + 2 * d + 2 * dd, e->G + j * dd, dd * 8);
    x[1 + 2 * d + 3 * dd] = e->phi[j];
    x[2 + 2 * d + 3 * dd] = e->phivar[j];
    x[3 + 2 * d + 3 * dd] = s->tr_eps[j];
    x[4 + 2 * d + 3 * dd] = (double)e->used[j];
  }
}

static void fill_header(const gfv_solver *s, full_state *f) {
  const gfv_estimate *e = &s->est_buf[s->cur_est];
  double *sc = f->scalars;
  sc[SC_ITERATION] = (double)s->iter, sc[SC_ETA] = s->eta, sc[SC_STEP] = s->cfg->step;
  sc[SC_REJECTED] = (double)s->rejected, sc[SC_RUN_SECONDS] = s->run_seconds;
  sc[SC_CONVERGED] = s->converged, sc[SC_PHIBAR] = e->phibar, sc[SC_ELBO] = e->elbo;
  sc[SC_ELBO_SE] = e->elbo_se, sc[SC_NTRACE] = (double)s->ntrace, sc[SC_PARTICLES] = (double)s->K;
  sc[SC_SAMPLES] = (double)s->S, sc[SC_DIM] = (double)s->d, sc[SC_SEED] = (double)s->cfg->seed;
  sc[SC_LAST_REL] = s->last_rel_step;
  sc[SC_TR_LIMITED] = (double)s->tr_limited, sc[SC_MAX_MOVE] = s->max_move;
  sc[SC_MAX_MOVE_ITER] = (double)s->max_move_iter, sc[SC_OUTSIDE] = e->outside;
  snprintf(f->strings[S_TARGET], GFV_PATH_MAX, "%s", s->cfg->target);
  snprintf(f->strings[S_FLOW], GFV_PATH_MAX, "%s", s->flow->name);
  snprintf(f->strings[S_ESTIMATOR], GFV_PATH_MAX, "%s", s->est->name);
  snprintf(f->strings[S_UPDATE], GFV_PATH_MAX, "%s", s->cfg->update);
  snprintf(f->strings[S_RNG], GFV_PATH_MAX, "%s", GFV_CKPT_RNG);
  snprintf(f->strings[S_FAMILY], GFV_PATH_MAX, "%s", s->fam->name);
  for (size_t i = 0; i < s->ntrace; i++) {
    const gfv_trace_row *t = &s->trace[i];
    double row[6] = {(double)t->iteration, t->elbo, t->elbo_se, t->step_norm, t->step_size, t->seconds};
    memcpy(f->trace + 6 * i, row, sizeof row);
  }
}

/* The checksum of the restart attributes: the configuration text and the input checksums. */
static void config_checksum(const char *text, gfv_input_sums sums, char out[GFV_SUM_CHARS]) {
  uint64_t h = gfv_fnv1a(GFV_FNV_INIT, text, strlen(text));
  for (int i = 0; i < GFV_NINPUTS; i++) h = gfv_fnv1a(h, sums[i], strlen(sums[i]) + 1);
  snprintf(out, GFV_SUM_CHARS, "%016" PRIx64, h);
}

/* The attributes a restart reads before anything else (restart.c). */
static int write_config_text(gfv_solver *s, gfv_h5 *h) {
  char *text = NULL, sum[GFV_SUM_CHARS];
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  GFV_CHECK(mem, GFV_ERR_MEMORY, "cannot allocate the configuration text");
  int st = gfv_config_write(mem, s->cfg);
  fclose(mem);
  if (!st) st = gfv_h5_attr_string(h, "config_text", text);
  for (int i = 0; !st && i < GFV_NINPUTS; i++)
    st = gfv_h5_attr_string(h, gfv_input_attr[i], s->input_sums[i]);
  if (!st) config_checksum(text, s->input_sums, sum);
  if (!st) st = gfv_h5_attr_string(h, "config_text_checksum", sum);
  free(text);
  return st;
}

/* Rank 0's writer: the open file, its particle datasets, and one block's columns. */
typedef struct {
  gfv_h5 h;
  gfv_h5_set set[NSETS];
  double *col[NSETS];
  size_t width[NSETS];
  int created; /* the datasets exist (made with the first block of rows) */
} ck_writer;

static void writer_free(ck_writer *w) {
  for (size_t i = 0; i < NSETS; i++) gfv_h5_set_close(&w->set[i]), free(w->col[i]), w->col[i] = NULL;
}

static void writer_init(ck_writer *w) {
  w->h.id = H5I_INVALID_HID;
  for (size_t i = 0; i < NSETS; i++) w->set[i].id = H5I_INVALID_HID;
}

static int writer_alloc(const gfv_solver *s, size_t rows, ck_writer *w) {
  for (size_t i = 0; i < NSETS; i++) w->width[i] = set_width(particle_sets[i].width, s->d, s->psize);
  for (size_t i = 0; i < NSETS; i++) GFV_CALL(gfv_calloc(&w->col[i], rows * w->width[i], sizeof(double)));
  return GFV_OK;
}

/* Writes n packed particles, global rows [k, k + n), into the datasets; the first block
 * creates each dataset just before its first write, dataset by dataset, so the storage
 * is laid out as gfv_h5_write_doubles lays out whole arrays, and then the trace. */
static int write_block(const gfv_solver *s, ck_writer *w, const full_state *f, const double *packed,
                       size_t k, size_t n) {
  const size_t per = doubles_per_particle(s->d, s->psize);
  for (size_t off = 0, i = 0; i < NSETS; off += w->width[i], i++)
    for (size_t r = 0; r < n; r++)
      memcpy(w->col[i] + r * w->width[i], packed + r * per + off, w->width[i] * sizeof(double));
  for (size_t i = 0; i < NSETS; i++) {
    if (!w->created) {
      size_t dims[3];
      const int rank = set_shape(s, i, dims);
      GFV_CALL(gfv_h5_set_create(&w->h, particle_sets[i].name, rank, dims, &w->set[i]));
    }
    GFV_CALL(gfv_h5_set_write_rows(&w->set[i], k, n, w->col[i]));
  }
  if (!w->created) {
    w->created = 1;
    const size_t tr[2] = {f->ntrace, 6};
    GFV_CALL(gfv_h5_write_doubles(&w->h, "trace", 2, tr, f->trace));
  }
  return GFV_OK;
}

/* The checksum of what the file holds, read back a block at a time (FNV-1a runs through
 * each array whole before the next, so it cannot follow the blocks as they arrive). */
static int checksum_file(const gfv_solver *s, ck_writer *w, const full_state *f, size_t rows,
                         uint64_t *out) {
  uint64_t h = GFV_FNV_INIT;
  for (size_t i = 0; i < NSETS; i++)
    for (size_t k = 0; k < s->K; k += rows) {
      const size_t n = s->K - k < rows ? s->K - k : rows;
      GFV_CALL(gfv_h5_set_read_rows(&w->set[i], k, n, w->col[i]));
      h = gfv_fnv1a(h, w->col[i], n * w->width[i] * sizeof(double));
    }
  *out = checksum_tail(h, f);
  return GFV_OK;
}

/* The attributes (after the datasets, as always) and the checksum last. */
static int write_attributes(gfv_solver *s, ck_writer *w, const full_state *f, size_t rows) {
  gfv_h5 *h = &w->h;
  char *json = NULL, sum[32];
  size_t json_len = 0;
  uint64_t ck = 0;
  int st = GFV_OK;
  GFV_CALL(gfv_h5_attr_string(h, "format", GFV_CKPT_FORMAT));
  for (int i = 0; i < S_COUNT; i++) GFV_CALL(gfv_h5_attr_string(h, string_names[i], f->strings[i]));
  for (int i = 0; i < SC_COUNT; i++) GFV_CALL(gfv_h5_attr_double(h, scalar_names[i], f->scalars[i]));
  FILE *mem = open_memstream(&json, &json_len);
  GFV_CHECK(mem, GFV_ERR_MEMORY, "cannot allocate the configuration text");
  fputs("{\n", mem);
  gfv_config_print_json(mem, s->cfg, 2);
  fputs("\n}\n", mem);
  fclose(mem);
  st = gfv_h5_attr_string(h, "config", json);
  free(json);
  GFV_CALL(st);
  GFV_CALL(write_config_text(s, h));
  GFV_CALL(checksum_file(s, w, f, rows, &ck));
  snprintf(sum, sizeof sum, "%016" PRIx64, ck);
  return gfv_h5_attr_string(h, "checksum", sum);
}

const char *gfv_checkpoint_path(const gfv_config *cfg, char *buf, size_t size) {
  if (cfg->checkpoint[0]) snprintf(buf, size, "%s", cfg->checkpoint);
  else snprintf(buf, size, "%s/" GFV_CHECKPOINT_NAME, cfg->out);
  return buf;
}

const char *gfv_solver_checkpoint_path(const gfv_solver *s, char *buf, size_t size) {
  return gfv_checkpoint_path(s->cfg, buf, size);
}

/* The tag of the checkpoint's blocks (point to point, rank r to rank 0, in order). */
#define CKPT_TAG 0x636b

/* Rank 0's side before any block: the header (scalars, names, trace), the directory, the
 * file and the block buffers. */
static int writer_open(gfv_solver *s, const char *path, size_t rows, ck_writer *w, full_state *f) {
  f->d = s->d, f->ps = s->psize, f->ntrace = s->ntrace;
  GFV_CALL(gfv_calloc(&f->trace, s->ntrace * 6, sizeof(double)));
  fill_header(s, f);
  char dir[GFV_PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    GFV_CALL(gfv_mkdir_p(dir));
  }
  GFV_CALL(writer_alloc(s, rows, w));
  /* The data, the trace, and 64 KiB for HDF5's headers and the configuration's attributes. */
  const double data = (double)s->K * (double)(doubles_per_particle(s->d, s->psize) * sizeof(double));
  return gfv_h5_create(path, data + 48.0 * (double)s->ntrace + 65536.0, &w->h);
}

/* gfv_solver_blocks_to_root's two ends: the owner packs, rank 0 writes. */
typedef struct {
  ck_writer *w;
  full_state *f;
} ckpt_sink;

static int ckpt_pack(const gfv_solver *s, size_t j, size_t n, double *block, void *ctx) {
  (void)ctx;
  pack_local(s, j, n, block);
  return GFV_OK;
}

static int ckpt_take(gfv_solver *s, size_t k, size_t n, const double *block, void *ctx) {
  ckpt_sink *c = ctx;
  return write_block(s, c->w, c->f, block, k, n);
}

int gfv_solver_checkpoint_impl(gfv_solver *s, const char *path) {
  GFV_CALL(gfv_solver_require_ready(s, "gfv_solver_checkpoint"));
  double t0 = gfv_comm_wtime();
  /* Blocks of at most GFV_OUTPUT_BLOCK_BYTES: every rank packs its particles block by
   * block and sends them to rank 0, which takes the ranks in order and writes each block
   * into the datasets as it comes (rank 0 never holds more than two blocks). */
  const size_t per = doubles_per_particle(s->d, s->psize);
  const size_t rows = gfv_ckpt_block_rows(s->K, s->size, per * sizeof(double));
  double *block = NULL;
  full_state f = {0};
  ck_writer w = {0};
  writer_init(&w);
  int st = gfv_calloc(&block, rows * per, sizeof(double));
  if (!st && s->rank == 0) st = writer_open(s, path, rows, &w, &f);
  st = gfv_comm_agree(s->comm, st, NULL);
  ckpt_sink sink = {&w, &f};
  if (!st) st = gfv_solver_blocks_to_root(s, per, rows, block, CKPT_TAG, ckpt_pack, ckpt_take, &sink);
  if (!st && s->rank == 0) st = write_attributes(s, &w, &f, rows);
  if (s->rank == 0) {
    writer_free(&w); /* the datasets closed before the file */
    if (!st) st = gfv_h5_commit(&w.h);
    gfv_h5_abort(&w.h); /* nothing left to do after a commit */
  }
  free(block), free(f.trace);
  GFV_CALL(gfv_comm_agree(s->comm, st, NULL));
  s->timers[GFV_PHASE_IO] += gfv_comm_wtime() - t0;
  return GFV_OK;
}

static int check_format(gfv_h5 *h, const char *path) {
  char fmt[64];
  GFV_CHECK(H5Aexists(h->id, "format") > 0, GFV_ERR_INPUT,
            "'%s' is not a gflowvi checkpoint (HDF5, but no format)", path);
  GFV_CALL(gfv_h5_read_attr_string(h, "format", fmt, sizeof fmt));
  GFV_CHECK(strcmp(fmt, "gflowvi-checkpoint 2") != 0, GFV_ERR_INPUT,
            "checkpoint '%s' was written by an earlier gflowvi (format '%s', MT19937 streams) and "
            "cannot be continued with this version's streams; start the run again",
            path, fmt);
  GFV_CHECK(strcmp(fmt, GFV_CKPT_FORMAT) == 0, GFV_ERR_INPUT,
            "'%s' is not a gflowvi checkpoint (format '%s')", path, fmt);
  return GFV_OK;
}

int gfv_checkpoint_read_config(const char *path, char **text, gfv_input_sums sums) {
  gfv_h5 h;
  char sum[GFV_SUM_CHARS + 8], want[GFV_SUM_CHARS];
  int st = GFV_OK;
  *text = NULL;
  GFV_CALL(gfv_h5_open(path, &h));
  GFV_CALL_GOTO(st, check_format(&h, path), done);
  if (H5Aexists(h.id, "config_text") <= 0) goto done; /* written by an older gflowvi */
  GFV_CALL_GOTO(st, gfv_h5_read_attr_string_alloc(&h, "config_text", text), done);
  for (int i = 0; i < GFV_NINPUTS; i++)
    GFV_CALL_GOTO(st, gfv_h5_read_attr_string(&h, gfv_input_attr[i], sums[i], GFV_SUM_CHARS), done);
  GFV_CALL_GOTO(st, gfv_h5_read_attr_string(&h, "config_text_checksum", sum, sizeof sum), done);
  config_checksum(*text, sums, want);
  if (strcmp(sum, want) != 0)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "checkpoint '%s' is corrupted (checksum mismatch)", path);
done:
  gfv_h5_close(&h);
  if (st) free(*text), *text = NULL;
  return st;
}

/* Rank 0: the checkpoint's header into f (format, scalars, names, checked against this
 * run) and its trace; the particles' datasets are read a block at a time (restore). */
static int read_header(gfv_h5 *h, const char *path, const gfv_config *cfg, size_t d, size_t ps,
                       full_state *f) {
  GFV_CALL(check_format(h, path));
  for (int i = 0; i < SC_COUNT; i++) GFV_CALL(gfv_h5_read_attr_double(h, scalar_names[i], &f->scalars[i]));
  for (int i = 0; i < S_COUNT; i++)
    GFV_CALL(gfv_h5_read_attr_string(h, string_names[i], f->strings[i], GFV_PATH_MAX));
  int st = GFV_OK;
  const double *sc = f->scalars;
  if (strcmp(f->strings[S_TARGET], cfg->target) != 0)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "checkpoint '%s' is for target '%s', not '%s'", path,
                   f->strings[S_TARGET], cfg->target);
  if (sc[SC_DIM] != (double)d)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "checkpoint '%s' has dimension %.0f, the target has %zu",
                   path, sc[SC_DIM], d);
  if (sc[SC_PARTICLES] != (double)cfg->particles)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "checkpoint '%s' has %.0f particles, but --particles=%ld",
                   path, sc[SC_PARTICLES], cfg->particles);
  if (strcmp(f->strings[S_FAMILY], cfg->family) != 0)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "checkpoint '%s' is for --family=%s, not %s", path,
                   f->strings[S_FAMILY], cfg->family);
  if (strcmp(f->strings[S_RNG], GFV_CKPT_RNG) != 0)
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "checkpoint '%s': unsupported random stream '%s'", path,
                   f->strings[S_RNG]);
  if (!(sc[SC_NTRACE] >= 1 && sc[SC_NTRACE] == sc[SC_ITERATION] + 1))
    GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "checkpoint '%s' is corrupted (trace of %.0f rows)", path,
                   sc[SC_NTRACE]);
  f->K = (size_t)cfg->particles, f->d = d, f->ps = ps, f->ntrace = (size_t)sc[SC_NTRACE];
  GFV_ALLOC(f->trace, f->ntrace * 6);
  const size_t tr[2] = {f->ntrace, 6};
  return gfv_h5_read_doubles(h, "trace", 2, tr, f->trace);
done:
  return st;
}

/* Installs f, this rank's block of particles (f->K = kloc), into the solver. */
static int install(gfv_solver *s, const full_state *f) {
  const size_t d = s->d, dd = s->psize;
  const double *sc = f->scalars;
  gfv_estimate *e = &s->est_buf[s->cur_est];
  GFV_CHECK(sc[SC_ITERATION] <= (double)s->cfg->iters, GFV_ERR_USAGE,
            "--iters=%ld is below the checkpoint's iteration %.0f", s->cfg->iters, sc[SC_ITERATION]);
  GFV_CHECK(f->ntrace <= (size_t)s->cfg->iters + 1, GFV_ERR_INPUT, "checkpoint trace is too long");
  for (size_t j = 0; j < s->kloc; j++) {
    s->cur.logw[j] = f->logw[j];
    memcpy(s->cur.mu + j * d, f->mu + j * d, d * 8);
    memcpy(s->cur.P + j * dd, f->P + j * dd, dd * 8);
    memcpy(s->cur.L + j * dd, f->L + j * dd, dd * 8);
    memcpy(e->gh + j * d, f->gh + j * d, d * 8);
    memcpy(e->G + j * dd, f->G + j * dd, dd * 8);
    e->phi[j] = f->phi[j];
    e->phivar[j] = f->phivar[j];
    s->tr_eps[j] = f->tr_eps[j];
    e->used[j] = (size_t)f->used[j];
    e->bad[j] = 0;
  }
  gfv_particles_update_logc(&s->cur);
  e->phibar = sc[SC_PHIBAR], e->elbo = sc[SC_ELBO], e->elbo_se = sc[SC_ELBO_SE];
  e->outside = sc[SC_OUTSIDE];
  s->tr_limited = (long)sc[SC_TR_LIMITED], s->max_move = sc[SC_MAX_MOVE];
  s->max_move_iter = (long)sc[SC_MAX_MOVE_ITER];
  s->iter = (long)sc[SC_ITERATION];
  /* The step state carries over; a new --step rescales it (halvings are kept). */
  s->eta = sc[SC_ETA] * (s->cfg->step / sc[SC_STEP]);
  s->rejected = (long)sc[SC_REJECTED];
  s->run_seconds = sc[SC_RUN_SECONDS];
  s->converged = 0;
  s->last_rel_step = sc[SC_LAST_REL];
  s->ntrace = f->ntrace;
  for (size_t i = 0; i < f->ntrace; i++) {
    const double *r = f->trace + 6 * i;
    gfv_trace_row row = {(long)r[0], r[1], r[2], r[3], r[4], r[5]};
    s->trace[i] = row;
  }
  return GFV_OK;
}

/* The tag of the restart's blocks (point to point, rank 0 to rank r, in order). */
#define RESTORE_TAG 0x7273

/* Rank 0: the file's header and trace into f, its particle datasets opened in w (their
 * shapes checked) and the checksum of everything verified, a block of rows at a time. */
static int open_checkpoint(gfv_solver *s, const char *path, size_t rows, ck_writer *w, full_state *f) {
  char sum[32], want[32];
  uint64_t ck = 0;
  GFV_CALL(gfv_h5_open(path, &w->h));
  GFV_CALL(read_header(&w->h, path, s->cfg, s->d, s->psize, f));
  GFV_CALL(writer_alloc(s, rows, w));
  for (size_t i = 0; i < NSETS; i++) {
    size_t dims[3];
    const int rank = set_shape(s, i, dims);
    GFV_CALL(gfv_h5_set_open(&w->h, particle_sets[i].name, rank, dims, &w->set[i]));
  }
  GFV_CALL(checksum_file(s, w, f, rows, &ck));
  GFV_CALL(gfv_h5_read_attr_string(&w->h, "checksum", sum, sizeof sum));
  snprintf(want, sizeof want, "%016" PRIx64, ck);
  GFV_CHECK(strcmp(sum, want) == 0, GFV_ERR_INPUT, "checkpoint '%s' is corrupted (checksum mismatch)",
            path);
  return GFV_OK;
}

/* gfv_solver_blocks_from_root's two ends: rank 0 reads, the owner unpacks. */
typedef struct {
  ck_writer *w;
  full_state *mine;
} restore_source;

/* Rank 0: global rows [k, k + n) of every particle dataset, packed particle by particle as
 * pack_local packs them. */
static int read_block(const gfv_solver *s, size_t k, size_t n, double *block, void *ctx) {
  ck_writer *w = ((restore_source *)ctx)->w;
  const size_t per = doubles_per_particle(s->d, s->psize);
  for (size_t off = 0, i = 0; i < NSETS; off += w->width[i], i++) {
    GFV_CALL(gfv_h5_set_read_rows(&w->set[i], k, n, w->col[i]));
    for (size_t r = 0; r < n; r++)
      memcpy(block + r * per + off, w->col[i] + r * w->width[i], w->width[i] * sizeof(double));
  }
  return GFV_OK;
}

/* n packed particles into this rank's rows [j0, j0 + n) of mine (the inverse of pack_local). */
static int unpack_rows(gfv_solver *s, size_t j0, size_t n, const double *block, void *ctx) {
  full_state *f = ((restore_source *)ctx)->mine;
  (void)s;
  const size_t d = f->d, dd = f->ps, per = doubles_per_particle(d, dd);
  for (size_t i = 0; i < n; i++) {
    const double *x = block + i * per;
    const size_t j = j0 + i;
    f->logw[j] = x[0];
    memcpy(f->mu + j * d, x + 1, d * 8);
    memcpy(f->P + j * dd, x + 1 + d, dd * 8);
    memcpy(f->L + j * dd, x + 1 + d + dd, dd * 8);
    memcpy(f->gh + j * d, x + 1 + d + 2 * dd, d * 8);
    memcpy(f->G + j * dd, x + 1 + 2 * d + 2 * dd, dd * 8);
    f->phi[j] = x[1 + 2 * d + 3 * dd];
    f->phivar[j] = x[2 + 2 * d + 3 * dd];
    f->tr_eps[j] = x[3 + 2 * d + 3 * dd];
    f->used[j] = x[4 + 2 * d + 3 * dd];
  }
  return GFV_OK;
}

/* Collective: the scalars, names and trace (f, on rank 0) to every rank, and each rank's
 * block of particles into mine, read by rank 0 and sent a block of rows at a time, so that
 * no rank holds more than its own particles and two blocks. */
static int distribute(gfv_solver *s, ck_writer *w, const full_state *f, full_state *mine,
                      size_t rows, double *block) {
  GFV_CALL(gfv_comm_bcast(s->comm, mine->scalars, sizeof mine->scalars, 0));
  GFV_CALL(gfv_comm_bcast(s->comm, mine->strings, sizeof mine->strings, 0));
  const size_t d = s->d, ps = s->psize, ntrace = (size_t)mine->scalars[SC_NTRACE];
  GFV_CALL(gfv_comm_agree(s->comm, state_alloc(mine, s->kloc, d, ps, ntrace), NULL));
  if (s->rank == 0) memcpy(mine->trace, f->trace, ntrace * 6 * sizeof(double));
  GFV_CALL(gfv_comm_bcast(s->comm, mine->trace, ntrace * 6 * sizeof(double), 0));
  restore_source src = {w, mine};
  return gfv_solver_blocks_from_root(s, doubles_per_particle(d, ps), rows, block, RESTORE_TAG,
                                     read_block, unpack_rows, &src);
}

int gfv_solver_restore(gfv_solver *s, const char *path) {
  const size_t per = doubles_per_particle(s->d, s->psize);
  const size_t rows = gfv_ckpt_block_rows(s->K, s->size, per * sizeof(double));
  full_state f = {0}, mine = {0};
  ck_writer w = {0};
  double *block = NULL;
  writer_init(&w);
  int st = gfv_calloc(&block, rows * per, sizeof(double));
  if (!st && s->rank == 0) st = open_checkpoint(s, path, rows, &w, &f);
  if (s->rank == 0) memcpy(mine.scalars, f.scalars, sizeof f.scalars), memcpy(mine.strings, f.strings, sizeof f.strings);
  st = gfv_comm_agree(s->comm, st, NULL);
  if (!st) st = gfv_comm_agree(s->comm, distribute(s, &w, &f, &mine, rows, block), NULL);
  writer_free(&w);
  gfv_h5_close(&w.h);
  free(block);
  state_free(&f);
  if (!st) st = install(s, &mine);
  state_free(&mine);
  GFV_CALL(gfv_comm_agree(s->comm, st, NULL));
  return GFV_OK;
}

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const gfv_option checkpoint_options[] = {
    {.name = "checkpoint", .type = OPT_STRING, OPT_FIELD(checkpoint), .metavar = "FILE", .def = "",
     .role = ROLE_RUN,
     .help = "checkpoint file (HDF5); empty = OUT/checkpoint.h5"},
    {.name = "checkpoint-every", .type = OPT_LONG, OPT_FIELD(checkpoint_every), .def = "0",
     .role = ROLE_RUN,
     .bound = BOUND_GE, .lo = 0, .help = "write a checkpoint every N iterations; 0 = never"},
    {.name = "checkpoint-seconds", .type = OPT_DOUBLE, OPT_FIELD(checkpoint_seconds), .def = "0",
     .role = ROLE_RUN,
     .bound = BOUND_GE, .lo = 0,
     .help = "write a checkpoint when this many seconds have passed since the last; 0 = never "
             "(SIGTERM, SIGUSR1 and SIGINT always checkpoint and stop with status 10)"},
};
GFV_OPTION_TABLE(gfv_options_checkpoint, checkpoint_options);
