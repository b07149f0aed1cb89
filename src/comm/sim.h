/* sim.h - gflowvi on a simulated cluster: the hooks for SimGrid's SMPI (docs/cluster.md).
 *
 * `make smpi` builds gflowvi with SimGrid's smpicc and -DGFV_SMPI into build-smpi/; smpirun
 * then runs every rank of it inside one process, timing the real code between MPI calls
 * and simulating the network.  That build runs the real program: the fit, its numbers and
 * its simulated timers (summary.json) are those of a run on the simulated cluster.
 *
 * Timing-only mode: GFV_SMPI_SAMPLE=N (N > 0) in the environment of a run of that build.
 * For runs whose arithmetic or memory would not fit on this machine (a thousand ranks of
 * tens of thousands of particles), the mixture phases go in blocks of particles
 * (gfv_sim_blocks) and SMPI benchmarks only N blocks of each phase over all ranks, then
 * charges every later block their mean time without running it; the large buffers whose
 * content every rank may share (the gathered samples, the phase-A terms, the phase-B sums
 * and the send buffer) come from SMPI_SHARED_MALLOC, one copy for all ranks.  The numbers
 * of such a run are not the fit's: the mixture terms it did not compute are set to neutral
 * values off the simulated clock (gfv_sim_fill_off_clock), so that every step stays finite
 * and accepted and the run takes the real run's path (its iterations, collectives and
 * message sizes); only its timers mean anything.
 *
 * Only sim.c sees SMPI.  In every other build, and without GFV_SMPI_SAMPLE, these are
 * plain: calloc, every block run in order, no clock to stop. */
#ifndef GFLOWVI_SIM_H
#define GFLOWVI_SIM_H

#include <stddef.h>

/* The environment variable of timing-only mode. */
#define GFV_SMPI_SAMPLE "GFV_SMPI_SAMPLE"

/* Blocks benchmarked per sampled phase (over all ranks), 0 when not in timing-only mode
 * (always 0 outside the SMPI build, and when GFV_SMPI_SAMPLE is malformed). */
int gfv_sim_sampling(void);
/* GFV_ERR_USAGE, naming the variable, when GFV_SMPI_SAMPLE is malformed in the SMPI build. */
int gfv_sim_check(void);

/* n doubles, zeroed in a plain run; one copy shared by every rank in timing-only mode
 * (SMPI_SHARED_MALLOC keyed by the caller's file and line: use GFV_SIM_ALLOC).  free()
 * releases both (smpicc routes free through SMPI's, which knows shared blocks). */
int gfv_sim_alloc_at(double **p, size_t n, const char *file, int line);
#define GFV_SIM_ALLOC(p, n) GFV_CALL(gfv_sim_alloc_at(&(p), (n), __FILE__, __LINE__))

/* Runs fn(ctx, b) for b = 0 ... nblocks - 1; in timing-only mode inside SMPI_SAMPLE_GLOBAL
 * (tag names the loop: one tag per kind of block, all of the same cost), so that only the
 * first GFV_SMPI_SAMPLE blocks over all ranks run.  Returns the first failure. */
typedef int (*gfv_sim_block_fn)(void *ctx, size_t b);
int gfv_sim_blocks(const char *tag, size_t nblocks, gfv_sim_block_fn fn, void *ctx);

/* Timing-only mode: x[0 .. n-1] = value, without charging the time to the simulated
 * clock (between smpi_bench_end and smpi_bench_begin).  Does nothing otherwise. */
void gfv_sim_fill_off_clock(double *x, size_t n, double value);

#endif
