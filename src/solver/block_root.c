/* block_root.c - every rank's particles to or from rank 0 a block at a time (block_root.h). */
#include "solver/block_root.h"

#include "gflowvi/error.h"

int gfv_solver_blocks_to_root(gfv_solver *s, size_t per, size_t rows, double *block, int tag,
                              gfv_pack_fn pack, gfv_take_fn take, void *ctx) {
  int st = GFV_OK, pst = GFV_OK, wst = GFV_OK; /* the transfer's, the packs', rank 0's takes */
  for (int r = 0; !st && r < s->size; r++) {
    size_t k0, kl;
    gfv_block_range(s->K, s->size, r, &k0, &kl);
    for (size_t j = 0; j < kl && !st; j += rows) {
      const size_t n = kl - j < rows ? kl - j : rows, bytes = n * per * sizeof(double);
      if (r == s->rank && !pst) pst = pack(s, j, n, block, ctx);
      if (r == s->rank && r != 0) st = gfv_comm_send_bytes(s->comm, block, bytes, 0, tag);
      else if (r != s->rank && s->rank == 0) st = gfv_comm_recv_bytes(s->comm, block, bytes, r, tag);
      /* After a failed take rank 0 still receives every block, so that no rank waits. */
      if (!st && s->rank == 0 && !wst && !pst) wst = take(s, k0 + j, n, block, ctx);
    }
  }
  return st ? st : pst ? pst : wst;
}

int gfv_solver_blocks_from_root(gfv_solver *s, size_t per, size_t rows, double *block, int tag,
                                gfv_pack_fn fill, gfv_take_fn take, void *ctx) {
  int st = GFV_OK, fst = GFV_OK; /* the transfer's, rank 0's fills */
  for (int r = 0; !st && r < s->size; r++) {
    size_t k0, kl;
    gfv_block_range(s->K, s->size, r, &k0, &kl);
    for (size_t j = 0; j < kl && !st; j += rows) {
      const size_t n = kl - j < rows ? kl - j : rows, bytes = n * per * sizeof(double);
      /* After a failed fill rank 0 still sends every block, so that no rank waits. */
      if (s->rank == 0 && !fst) fst = fill(s, k0 + j, n, block, ctx);
      if (s->rank == 0 && r != 0) st = gfv_comm_send_bytes(s->comm, block, bytes, r, tag);
      else if (r == s->rank && r != 0) st = gfv_comm_recv_bytes(s->comm, block, bytes, 0, tag);
      if (!st && r == s->rank) st = take(s, j, n, block, ctx);
    }
  }
  return st ? st : fst;
}
