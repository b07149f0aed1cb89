/* output_blocks.c - the block size of the streamed outputs (see output_blocks.h). */
#include "solver/output_blocks.h"

#include <stdlib.h>

size_t gfv_output_block_rows(size_t row_bytes) {
  double bytes = GFV_OUTPUT_BLOCK_BYTES;
  const char *e = getenv(GFV_OUTPUT_BLOCK_ENV);
  if (e && *e >= '0' && *e <= '9') {
    char *end;
    unsigned long long v = strtoull(e, &end, 10);
    if (*end == '\0' && v > 0 && v <= (1ull << 30)) bytes = (double)v; /* one message: < 2^31 bytes */
  }
  double rows = row_bytes ? bytes / (double)row_bytes : bytes;
  return rows >= 1 ? (size_t)rows : 1;
}

size_t gfv_mixture_block_rows(size_t K, size_t d, size_t ps) {
  const size_t rows = gfv_output_block_rows((1 + d + ps) * sizeof(double));
  return rows < K ? rows : K;
}

size_t gfv_ckpt_block_rows(size_t K, int ranks, size_t row_bytes) {
  const size_t rows = gfv_output_block_rows(row_bytes), most = (K + (size_t)ranks - 1) / (size_t)ranks;
  return rows < most ? rows : most; /* no rank holds more than ceil(K / ranks) particles */
}
