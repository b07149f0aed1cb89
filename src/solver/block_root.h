/* block_root.h - every rank's particles to rank 0 (or from it), a block at a time, in
 * particle order: the checkpoint and the restart (checkpoint.c) and, beyond the gather budget, mixture.csv / mixture.h5
 * (outputs.c).  No rank holds more than one block of `rows` rows of `per` doubles. */
#ifndef GFLOWVI_BLOCK_ROOT_H
#define GFLOWVI_BLOCK_ROOT_H

#include "solver/solver_impl.h"

/* The owner packs its local particles [j, j + n) into block; rank 0 takes global rows
 * [k, k + n) from it. */
typedef int (*gfv_pack_fn)(const gfv_solver *s, size_t j, size_t n, double *block, void *ctx);
typedef int (*gfv_take_fn)(gfv_solver *s, size_t k, size_t n, const double *block, void *ctx);

/* Collective (point to point, tag): the ranks in order, each rank's particles in blocks of
 * at most rows.  A failed pack or take does not stop the transfer (no rank waits forever):
 * the first failure is returned, not agreed; the caller agrees it. */
int gfv_solver_blocks_to_root(gfv_solver *s, size_t per, size_t rows, double *block, int tag,
                              gfv_pack_fn pack, gfv_take_fn take, void *ctx);

/* The reverse (collective, point to point, tag): rank 0 fills block with global rows
 * [k, k + n) (fill's j is the global row k), the owner takes them as its local rows
 * [j, j + n) (take's k is the local row j): the restart (checkpoint.c).  A failed fill
 * does not stop the transfer; the first failure is returned, not agreed. */
int gfv_solver_blocks_from_root(gfv_solver *s, size_t per, size_t rows, double *block, int tag,
                                gfv_pack_fn fill, gfv_take_fn take, void *ctx);

#endif
