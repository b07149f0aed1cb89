/* footprint.h - what a run will take before it takes it: the bytes each rank's solver
 * allocates, and the bytes the run writes to disk, estimated from the configuration and
 * the target alone (no allocation, no BLAS call), so that the prolog can refuse a run
 * too big for the memory limits or the file systems before the work starts.
 *
 * The estimates mirror the allocations of src/solver/ and src/mixture/ and the files of
 * outputs.c and checkpoint.c (footprint.c says how); a change there belongs here too.
 * tests/unit/test_resources.c compares them with what a created solver allocates. */
#ifndef GFLOWVI_FOOTPRINT_H
#define GFLOWVI_FOOTPRINT_H

#include <stddef.h>

#include "gflowvi/config.h"
#include "gflowvi/target.h"

/* The terms of the memory estimate, by what they hold (and so by the options that size
 * them; see gfv_mem_term_options). */
enum {
  GFV_MEM_TRACE,     /* the trace, and its copies while a checkpoint is written: --iters */
  GFV_MEM_MIXTURE,   /* the K^2 S phase-A terms and the kernel workspace: --particles --samples */
  GFV_MEM_SAMPLES,   /* the K S d gathered samples, gradient sums, MPI buffers: same */
  GFV_MEM_HESSIANS,  /* the target's d x d Hessians at this rank's samples: --samples */
  GFV_MEM_PARTICLES, /* parameters, streams, estimates, the whole mixture, outputs: --particles */
  GFV_MEM_EVAL,      /* the final evaluation's log ratios (all of them on rank 0): --eval-samples */
  GFV_MEM_DRAWS,     /* rank 0: the rows of draws.csv and posterior.nc's image: --out-samples */
  GFV_MEM_NTERMS
};

typedef struct {
  double term[GFV_MEM_NTERMS]; /* bytes of each term at the peak */
  double persistent;           /* what gfv_solver_create allocates and keeps to the end */
  double peak;                 /* the most allocated at once: persistent + the largest phase */
} gfv_mem_estimate;

/* The bytes rank `rank` of `ranks` allocates for the run (cfg, target t).  Not collective. */
void gfv_memory_estimate(const gfv_config *cfg, const gfv_target *t, int ranks, int rank,
                         gfv_mem_estimate *out);
/* The largest term of e. */
int gfv_mem_dominant(const gfv_mem_estimate *e);
/* "the trace", "the K^2 S mixture terms", ... */
const char *gfv_mem_term_what(int term);
/* The options that size term, with their values: "--iters=1000". */
void gfv_mem_term_options(const gfv_config *cfg, int term, char *buf, size_t size);

/* One file the run writes. */
typedef struct {
  char path[GFV_PATH_MAX + 64];
  char option[GFV_PATH_MAX + 64]; /* the option that sizes it, with its value */
  double bytes;
} gfv_disk_file;

#define GFV_DISK_FILES 16
typedef struct {
  size_t n;
  gfv_disk_file file[GFV_DISK_FILES]; /* the outputs in --out, then the checkpoint */
} gfv_disk_estimate;

/* The files the run writes and their sizes, about (CSV fields vary in length). */
void gfv_disk_estimate_files(const gfv_config *cfg, const gfv_target *t, gfv_disk_estimate *out);

#endif
