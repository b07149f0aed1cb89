/* output_blocks.h - how much of the mixture the writers of mixture.csv, mixture.h5 and the
 * checkpoint hold at once (outputs.c, checkpoint.c): blocks of rows of at most
 * GFV_OUTPUT_BLOCK_BYTES, so that rank 0 never holds a second copy of all K particles
 * (footprint.c counts these blocks).
 *
 * Test knob: GFV_OUTPUT_BLOCK_BYTES=N in the environment (a positive integer, bytes) sets
 * the block size instead, so that tests can make every rank's particles take several
 * blocks (tests/mpi/test_output_blocks.sh); anything else (or more than 1 GiB) is ignored.  The files do
 * not depend on it. */
#ifndef GFLOWVI_OUTPUT_BLOCKS_H
#define GFLOWVI_OUTPUT_BLOCKS_H

#include <stddef.h>

#define GFV_OUTPUT_BLOCK_BYTES (32.0 * 1024 * 1024)
#define GFV_OUTPUT_BLOCK_ENV "GFV_OUTPUT_BLOCK_BYTES"

/* Rows of row_bytes each in one block: at least 1. */
size_t gfv_output_block_rows(size_t row_bytes);
/* The checkpoint's blocks (checkpoint.c): rows of row_bytes, no more than the largest
 * rank's ceil(K / ranks) particles. */
size_t gfv_ckpt_block_rows(size_t K, int ranks, size_t row_bytes);
/* The outputs' blocks of weights, means and covariances (outputs.c): rows of
 * 8 (1 + d + ps) bytes, no more than K. */
size_t gfv_mixture_block_rows(size_t K, size_t d, size_t ps);

#endif
