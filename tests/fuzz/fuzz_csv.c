/* fuzz_csv.c - the numeric CSV reader (gfv_table_read_csv) that reads mixture files and
 * the data models' --data/--test-data files: any bytes as a CSV file.  On success the
 * table must be what io.h promises: at least one row, every value finite; and a file with
 * a NUL byte is never accepted. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <math.h>

#include "gflowvi/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  gfv_table t;
  int st = gfv_table_read_csv(fuzz_file(data, size), &t);
  if (st == GFV_OK) {
    FUZZ_ASSERT(t.rows >= 1 && t.cols >= 1 && t.v, "empty table (%zu x %zu)", t.rows, t.cols);
    for (size_t i = 0; i < t.rows * t.cols; i++)
      FUZZ_ASSERT(isfinite(t.v[i]), "value %zu is not finite", i);
    gfv_table_free(&t);
  } else {
    FUZZ_ASSERT(t.v == NULL && t.rows == 0, "a failed read left a table behind");
  }
  /* A NUL byte once made a line look blank or end early: now always refused. */
  FUZZ_ASSERT(st != GFV_OK || !memchr(data, '\0', size), "a file with a NUL byte was accepted");
  fuzz_check_status(st);
  return 0;
}
