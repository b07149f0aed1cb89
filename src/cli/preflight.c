/* preflight.c - the checks of the prolog (see preflight.h).
 *
 * They run after the options are parsed and the target is created, before the solver
 * allocates anything and before its first BLAS call.  The order matters: OpenBLAS maps
 * its buffer (128 MiB of address space per thread on x86-64) at the first level-3 call
 * and, when that mapping fails under `ulimit -v`, retries forever, deaf to SIGTERM (our
 * handler only sets a flag), so a run that does not fit must be refused before.  A
 * memory cgroup (Slurm's ConstrainRAMSpace) OOM-kills a job without a word, and an
 * unwritable checkpoint path or a full disk only showed after the work. */
#include "cli/preflight.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "core/limits.h"
#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "gflowvi/solver.h"
#include "io/netcdf_dl.h"
#include "solver/footprint.h"

/* The directory part of path ("." when it has none). */
static void dir_of(const char *path, char *dir, size_t size) {
  snprintf(dir, size, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, size, ".");
  else if (slash == dir) slash[1] = '\0';
  else *slash = '\0';
}

/* Whether path can only name a directory, existing or not: it ends in '/' or its last
 * component is "." or "..". */
static int names_directory(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return !*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0;
}

/* Runs a directory check and puts "OPTION=VALUE: " before its message. */
static int check_dir(const char *option, const char *value, const char *dir) {
  int st = gfv_dir_check_writable(dir);
  if (!st) return GFV_OK;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", gfv_error_message());
  return gfv_error_set(st, __FILE__, __LINE__, __func__, "%s=%s: %s", option, value, msg);
}

/* (a) Rank 0: --out, and the checkpoint's directory, created and proven writable; the
 * checkpoint's path must not be a directory (the first checkpoint would fail there). */
static int check_paths(const gfv_config *cfg) {
  char ck[GFV_PATH_MAX + 64], dir[GFV_PATH_MAX + 64];
  struct stat sb;
  GFV_CALL(check_dir("--out", cfg->out, cfg->out));
  gfv_checkpoint_path(cfg, ck, sizeof ck);
  if (!cfg->checkpoint[0]) {
    GFV_CHECK(stat(ck, &sb) != 0 || !S_ISDIR(sb.st_mode), GFV_ERR_IO,
              "--out=%s: '%s', where the checkpoint goes, is a directory; remove it or give "
              "--checkpoint=FILE",
              cfg->out, ck);
    return GFV_OK;
  }
  /* A name ending in '/' used to pass (the directory did not exist yet) and the first
   * checkpoint then failed to rename its temporary file onto it. */
  size_t n = strlen(cfg->checkpoint);
  while (n > 1 && cfg->checkpoint[n - 1] == '/') n--;
  GFV_CHECK(stat(ck, &sb) != 0 || !S_ISDIR(sb.st_mode), GFV_ERR_IO,
            "--checkpoint=%s is a directory; give a file name (e.g. --checkpoint=%.*s/checkpoint.h5)",
            cfg->checkpoint, (int)n, cfg->checkpoint);
  GFV_CHECK(!names_directory(ck), GFV_ERR_IO,
            "--checkpoint=%s names a directory; give a file name (e.g. --checkpoint=%.*s/checkpoint.h5)",
            cfg->checkpoint, (int)n, cfg->checkpoint);
  dir_of(ck, dir, sizeof dir);
  GFV_CALL(check_dir("--checkpoint", cfg->checkpoint, dir));
  return GFV_OK;
}

/* The files this run reads: a file among the outputs' names that is one of them stays. */
static size_t run_inputs(const gfv_config *cfg, const char **in, char *ck, size_t cksize) {
  const char *colon = strchr(cfg->target, ':'); /* gmm:FILE, plugin:FILE */
  size_t n = 0;
  in[n++] = cfg->config, in[n++] = cfg->restart, in[n++] = cfg->data, in[n++] = cfg->test_data;
  in[n++] = cfg->predict;
  if (colon) in[n++] = colon + 1;
  in[n++] = gfv_checkpoint_path(cfg, ck, cksize);
  return n;
}

/* One file system: its free bytes and what the run writes there. */
typedef struct {
  dev_t dev;
  char dir[GFV_PATH_MAX + 64];
  double free, total;
  const gfv_disk_file *largest;
} volume;

static int open_volume(const char *dir, volume *v) {
  struct statvfs fs;
  struct stat sb;
  memset(v, 0, sizeof *v);
  snprintf(v->dir, sizeof v->dir, "%s", dir);
  /* Unknown (a file system that cannot tell): no limit. */
  v->free = INFINITY;
  if (stat(dir, &sb) != 0) return -1;
  v->dev = sb.st_dev;
  /* f_bavail: what an unprivileged writer may use, as df shows it. */
  if (statvfs(dir, &fs) == 0 && fs.f_blocks > 0) v->free = (double)fs.f_bavail * (double)fs.f_frsize;
  return 0;
}

static void add_to_volume(volume *v, const gfv_disk_file *f) {
  v->total += f->bytes;
  if (!v->largest || f->bytes > v->largest->bytes) v->largest = f;
}

static int check_volume(const volume *v) {
  if (v->total <= v->free) return GFV_OK;
  const gfv_disk_file *f = v->largest;
  char need[32], free[32], all[32];
  gfv_format_bytes(f->bytes, need, sizeof need);
  gfv_format_bytes(v->free, free, sizeof free);
  gfv_format_bytes(v->total, all, sizeof all);
  if (f->bytes > v->free)
    GFV_ERROR(GFV_ERR_IO, "%s would write about %s to '%s', but the file system has %s free",
              f->option, need, f->path, free);
  GFV_ERROR(GFV_ERR_IO,
            "%s: the run would write about %s to '%s/' (%s of it to '%s'), but the file system "
            "has %s free",
            f->option, all, v->dir, need, f->path, free);
}

/* (b) Rank 0: the outputs and the checkpoint against the free space of their file
 * systems.  The previous run's outputs that the clean-up will remove count as free. */
static int check_disk(const gfv_config *cfg, const gfv_target *t) {
  gfv_disk_estimate est;
  gfv_disk_estimate_files(cfg, t, &est);
  const gfv_disk_file *ck = &est.file[est.n - 1];
  char ckdir[GFV_PATH_MAX + 64], ckpath[GFV_PATH_MAX + 64];
  const char *in[8];
  size_t nin = run_inputs(cfg, in, ckpath, sizeof ckpath);
  double reclaimed = 0;
  volume out, ckv;
  GFV_CALL(gfv_outputs_clean(cfg->out, in, nin, 1, NULL, &reclaimed));
  open_volume(cfg->out, &out);
  out.free += reclaimed;
  for (size_t i = 0; i + 1 < est.n; i++) add_to_volume(&out, &est.file[i]);
  dir_of(ck->path, ckdir, sizeof ckdir);
  /* A checkpoint replaces its predecessor by a rename: both exist for a moment. */
  if (open_volume(ckdir, &ckv) == 0 && ckv.dev == out.dev) {
    add_to_volume(&out, ck);
    return check_volume(&out);
  }
  GFV_CALL(check_volume(&out));
  add_to_volume(&ckv, ck);
  return check_volume(&ckv);
}

/* where: "on rank 2", "on this node"; ranks: how many share the need (0: say nothing);
 * margin: the part of need that is not the estimate's (per rank), margin_what: what it
 * is.  The option that sizes the largest term leads the line, unless the margin is larger:
 * then no option is to blame, the limit is too tight for any run. */
static int memory_error(const gfv_config *cfg, const gfv_mem_estimate *e, double need, double margin,
                        const char *margin_what, const char *where, int ranks,
                        const gfv_mem_limit *l) {
  char lead[GFV_PATH_MAX + 2] = "", needs[32], free[32], limit[32], shared[32] = "", tail[4300];
  int dominant = gfv_mem_dominant(e);
  const char *what = margin > e->term[dominant] ? margin_what : gfv_mem_term_what(dominant);
  if (margin <= e->term[dominant]) {
    gfv_mem_term_options(cfg, dominant, lead, sizeof lead - 2);
    strcat(lead, ": ");
  }
  gfv_format_bytes(need, needs, sizeof needs);
  gfv_format_bytes(l->free, free, sizeof free);
  gfv_format_bytes(l->limit, limit, sizeof limit);
  if (ranks > 1) snprintf(shared, sizeof shared, "%d ranks; ", ranks);
  if (strcmp(l->name, "MemAvailable") == 0)
    snprintf(tail, sizeof tail, "only %s is available (MemAvailable)", free);
  else snprintf(tail, sizeof tail, "only %s is left under the %s limit of %s", free, limit, l->name);
  GFV_ERROR(GFV_ERR_MEMORY, "%sthe run needs about %s %s (%smostly %s), but %s", lead, needs, where,
            shared, what, tail);
}

/* (c) Every rank: its peak against the process limits; the sum over the ranks of each
 * node against the node's (cgroup, MemAvailable).  Address space needs room for
 * OpenBLAS's buffer besides; resident memory only for the part of it that is touched. */
static int check_memory(gfv_comm *comm, const gfv_config *cfg, const gfv_target *t) {
  int rank = gfv_comm_rank(comm), size = gfv_comm_size(comm), node_ranks = 1;
  gfv_mem_estimate e;
  gfv_mem_limit proc, node;
  char where[64];
  gfv_memory_estimate(cfg, t, size, rank, &e);
  gfv_process_memory_limit(GFV_PROC_STATUS, &proc);
  double node_need = e.peak + GFV_RSS_MARGIN;
  int st = gfv_comm_node_sum(comm, &node_need, 1, &node_ranks);
  if (!st && e.peak + GFV_BLAS_VM_MARGIN > proc.free) {
    snprintf(where, sizeof where, "on rank %d", rank);
    st = memory_error(cfg, &e, e.peak + GFV_BLAS_VM_MARGIN, GFV_BLAS_VM_MARGIN,
                      "what OpenBLAS maps for its buffer", size > 1 ? where : "in this process", 0,
                      &proc);
  }
  if (!st) {
    gfv_node_memory_limit(GFV_PROC_MEMINFO, GFV_PROC_CGROUP, GFV_PROC_MOUNTINFO, &node);
    if (node_need > node.free)
      st = memory_error(cfg, &e, node_need, GFV_RSS_MARGIN, "the libraries' own buffers",
                        "on this node", node_ranks, &node);
  }
  return gfv_comm_agree(comm, st, NULL);
}

/* Rank 0, after every check passed: the previous run's files out of --out. */
static int clean_outputs(const gfv_config *cfg) {
  char ck[GFV_PATH_MAX + 64];
  const char *in[8];
  size_t nin = run_inputs(cfg, in, ck, sizeof ck), count = 0;
  GFV_CALL(gfv_outputs_clean(cfg->out, in, nin, 0, &count, NULL));
  if (count && !cfg->quiet) {
    printf("gflowvi: removed the previous run's outputs from %s/ (%zu file%s)\n", cfg->out, count,
           count == 1 ? "" : "s");
    fflush(stdout);
  }
  return GFV_OK;
}

/* (0) Rank 0: the --predict file is read now, so that a bad one stops the run before the
 * fit rather than after it: readable, numeric, one column per feature of the model. */
static int check_predict(const gfv_config *cfg, const gfv_target *t) {
  if (!cfg->predict[0]) return GFV_OK;
  GFV_CHECK(t->predict, GFV_ERR_USAGE,
            "--predict=%s: --target=%s makes no predictions (only logreg and bnn do)", cfg->predict,
            cfg->target);
  gfv_table tab;
  int st = gfv_table_read_csv(cfg->predict, &tab);
  if (st) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", gfv_error_message());
    return gfv_error_set(st, __FILE__, __LINE__, __func__, "--predict: %s", msg);
  }
  size_t cols = tab.cols;
  gfv_table_free(&tab);
  GFV_CHECK(cols == t->predict_cols, GFV_ERR_INPUT,
            "--predict: %s has %zu column%s, but the model takes %zu features (the columns of "
            "--data=%s without the label)",
            cfg->predict, cols, cols == 1 ? "" : "s", t->predict_cols, cfg->data);
  return GFV_OK;
}

/* Rank 0: the netCDF library that posterior.nc needs is there (loaded now, after MPI_Init:
 * io/netcdf_dl.h). */
static int check_outputs_lib(void) {
  const gfv_netcdf *nc;
  return gfv_netcdf_load(&nc);
}

int gfv_preflight(gfv_comm *comm, const gfv_config *cfg, const gfv_target *t) {
  int rank = gfv_comm_rank(comm);
  const char *skip = getenv(GFV_SKIP_RESOURCE_CHECKS);
  int check = !skip || !skip[0] || strcmp(skip, "0") == 0;
  int st = rank == 0 ? check_predict(cfg, t) : GFV_OK;
  if (!st && rank == 0) st = check_outputs_lib();
  GFV_CALL(gfv_comm_agree(comm, st, NULL));
  st = rank == 0 ? check_paths(cfg) : GFV_OK;
  GFV_CALL(gfv_comm_agree(comm, st, NULL));
  if (check) { /* memory first: it is the first limit the run would hit */
    GFV_CALL(check_memory(comm, cfg, t));
    st = rank == 0 ? check_disk(cfg, t) : GFV_OK;
    GFV_CALL(gfv_comm_agree(comm, st, NULL));
  } else if (rank == 0) {
    fprintf(stderr, "gflowvi: warning: %s is set: free space and memory limits are not checked\n",
            GFV_SKIP_RESOURCE_CHECKS);
  }
  st = rank == 0 ? clean_outputs(cfg) : GFV_OK;
  GFV_CALL(gfv_comm_agree(comm, st, NULL));
  return GFV_OK;
}
