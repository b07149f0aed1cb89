/* sim.c - the simulated-cluster hooks of sim.h.  SMPI's macros (SMPI_SAMPLE_GLOBAL_TAG,
 * SMPI_SHARED_MALLOC's function, smpi_bench_*) are used only when GFV_SMPI is defined, i.e.
 * in the build of `make smpi` with SimGrid's smpicc; everywhere else these are plain. */
#include "comm/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"

#ifdef GFV_SMPI
#include <mpi.h> /* SimGrid's mpi.h, which brings smpi.h */
#include <sys/mman.h>

/* GFV_SMPI_SAMPLE, read once per rank (each rank has its own copy of this variable under
 * SMPI's privatization): -1 not read yet, -2 malformed. */
static int sample_blocks = -1;

static int read_sampling(void) {
  if (sample_blocks == -1) {
    const char *v = getenv(GFV_SMPI_SAMPLE);
    char *end = NULL;
    long n = v && v[0] ? strtol(v, &end, 10) : 0;
    sample_blocks = v && v[0] && (*end || n < 0 || n > 1000000) ? -2 : (int)n;
  }
  return sample_blocks;
}

int gfv_sim_sampling(void) {
  int n = read_sampling();
  return n > 0 ? n : 0;
}

int gfv_sim_check(void) {
  GFV_CHECK(read_sampling() != -2, GFV_ERR_USAGE,
            "%s='%s': give the number of blocks SMPI benchmarks per sampled phase (an integer "
            "from 1 to 1000000), or 0 / unset for a plain simulated run",
            GFV_SMPI_SAMPLE, getenv(GFV_SMPI_SAMPLE));
  return GFV_OK;
}

/* Shared blocks up to this many doubles (2 GB) are touched in advance: one copy of each
 * is what this machine holds for the whole simulated cluster. */
#define PREFAULT_MAX ((size_t)1 << 28)

int gfv_sim_alloc_at(double **p, size_t n, const char *file, int line) {
  if (gfv_sim_sampling() == 0) return gfv_calloc(p, n, sizeof(double));
  *p = NULL;
  if (n == 0) n = 1;
  GFV_CHECK(n <= (size_t)-1 / sizeof(double), GFV_ERR_MEMORY,
            "shared allocation of %zu doubles overflows", n);
  /* With --cfg=smpi/shared-malloc:local, one block per (file, line), mapped by every rank. */
  *p = smpi_shared_malloc(n * sizeof(double), file, line);
  GFV_CHECK(*p, GFV_ERR_MEMORY, "SMPI could not allocate a shared block of %zu doubles", n);
  /* The first rank to map it touches every page, off the clock, so that no benchmarked
   * block pays for page faults the real run pays only once (sampled blocks meet fresh rows).
   * smpi_bench_end may let other ranks run, so the test comes after it: between it and
   * smpi_bench_begin this rank runs alone. */
  smpi_bench_end();
  unsigned char resident = 0;
  if (n <= PREFAULT_MAX && mincore(*p, 1, &resident) == 0 && !(resident & 1))
    memset(*p, 0, n * sizeof(double));
  smpi_bench_begin();
  return GFV_OK;
}

/* Blocks benchmarked so far per sampled loop, over all ranks, in one table that every rank
 * maps (a shared block: zero when created), so that a rank can tell whether SMPI will
 * benchmark its next blocks: SMPI_SAMPLE_GLOBAL does while fewer than GFV_SMPI_SAMPLE
 * have run.  No rank yields between reading and updating it (nothing here calls MPI). */
enum { MAX_LOOPS = 16, TAG_CHARS = 48 };
typedef struct {
  char tag[TAG_CHARS];
  long benched;
} loop_count;
static loop_count *loop_counts;          /* this rank's mapping of the shared table */
static const char *loops_warm[MAX_LOOPS]; /* the loops this rank has warmed up */

static loop_count *count_of(const char *tag) {
  if (!loop_counts) loop_counts = smpi_shared_malloc(MAX_LOOPS * sizeof *loop_counts, __FILE__, __LINE__);
  for (int i = 0; loop_counts && i < MAX_LOOPS; i++) {
    if (!loop_counts[i].tag[0]) snprintf(loop_counts[i].tag, TAG_CHARS, "%s", tag);
    if (strncmp(loop_counts[i].tag, tag, TAG_CHARS - 1) == 0) return &loop_counts[i];
  }
  return NULL;
}

static int first_warm_up(const char *tag) {
  for (int i = 0; i < MAX_LOOPS; i++) {
    if (!loops_warm[i]) {
      loops_warm[i] = tag;
      return 1;
    }
    if (strcmp(loops_warm[i], tag) == 0) return 0;
  }
  return 0;
}

int gfv_sim_blocks(const char *tag, size_t nblocks, gfv_sim_block_fn fn, void *ctx) {
  const int iters = gfv_sim_sampling();
  int st = GFV_OK;
  if (iters == 0) {
    for (size_t b = 0; b < nblocks; b++) GFV_CALL(fn(ctx, b));
    return GFV_OK;
  }
  /* The blocks SMPI benchmarks stand for the run's steady state, so they must not pay for
   * first touches: a rank about to benchmark a loop for the first time runs its block 0
   * once, off the clock, which warms OpenBLAS's buffers, the kernel's workspace and the
   * caches (host time only; the ranks that never benchmark never touch their workspace). */
  loop_count *count = count_of(tag);
  if (nblocks > 0 && count && count->benched < iters && first_warm_up(tag)) {
    smpi_bench_end();
    st = fn(ctx, 0);
    smpi_bench_begin();
    if (st) return st;
  }
  long ran = 0;
  /* A fixed number of benchmarked blocks (threshold < 0).  The body must neither return
   * nor break: SMPI's bookkeeping runs in the loop's condition. */
  SMPI_SAMPLE_GLOBAL_TAG(size_t b = 0, b < nblocks, b++, iters, -1.0, tag) {
    int r = fn(ctx, b);
    if (r && !st) st = r;
    ran++;
  }
  if (count) count->benched += ran;
  return st;
}

void gfv_sim_fill_off_clock(double *x, size_t n, double value) {
  if (gfv_sim_sampling() == 0) return;
  smpi_bench_end(); /* charges the computation so far; the fill below is not timed */
  for (size_t i = 0; i < n; i++) x[i] = value;
  smpi_bench_begin();
}

#else /* not the SMPI build: plain */

int gfv_sim_sampling(void) { return 0; }
int gfv_sim_check(void) { return GFV_OK; }

int gfv_sim_alloc_at(double **p, size_t n, const char *file, int line) {
  (void)file, (void)line;
  return gfv_calloc(p, n, sizeof(double));
}

int gfv_sim_blocks(const char *tag, size_t nblocks, gfv_sim_block_fn fn, void *ctx) {
  (void)tag;
  for (size_t b = 0; b < nblocks; b++) GFV_CALL(fn(ctx, b));
  return GFV_OK;
}

void gfv_sim_fill_off_clock(double *x, size_t n, double value) { (void)x, (void)n, (void)value; }

#endif
