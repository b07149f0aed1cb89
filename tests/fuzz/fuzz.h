/* fuzz.h - shared helpers of the libFuzzer harnesses in tests/fuzz (see
 * docs/developer.md, "Reliability").
 *
 * Each harness defines LLVMFuzzerTestOneInput for one parser of outside input.  The same
 * source builds two ways: `make fuzz` links it with libFuzzer (clang, ASan + UBSan) for
 * tools/fuzz.sh, and `make` links it with replay_main.c, a main that runs the function
 * once per file named on the command line, so the suite replays the seed corpus and every
 * regression case (tests/cli/test_fuzz_regressions.sh) in the normal and SAN=1 builds.
 *
 * A harness must never call MPI_Init, exit, or read a file other than its input.
 *
 * TODO(issue 6 hooks): the data models' --data/--test-data files go through
 * gfv_table_read_csv (fuzz_csv); a harness for their column/label checks belongs here once
 * src/targets/data.c has landed.  A checkpoint harness (the restart reader on an HDF5
 * image opened with H5Pset_file_image) would mostly fuzz libhdf5 itself, which is not
 * hardened against malformed files; truncated and corrupted checkpoints are tested in
 * tests/mpi/test_checkpoint.sh. */
#ifndef GFV_FUZZ_H
#define GFV_FUZZ_H

#define _GNU_SOURCE /* memfd_create */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gflowvi/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the process with a message: a broken harness or a violated invariant, which
 * libFuzzer reports as a crash together with the input. */
#define FUZZ_ASSERT(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "fuzz: %s:%d: assertion '%s' failed: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* Once per process: GSL errors into gflowvi's error path, as the program does. */
static inline void fuzz_init(void) {
  static int done;
  if (done) return;
  done = 1;
  gfv_error_install_gsl_handler();
}

/* The input as a file the parsers open by name: one in-memory file (memfd) per process,
 * rewritten for every input, named /proc/self/fd/N.  No disk I/O and nothing to clean
 * up, and the parser still goes through fopen/getline exactly as for a user's file. */
static inline const char *fuzz_file(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("gflowvi-fuzz", 0);
    FUZZ_ASSERT(fd >= 0, "memfd_create failed");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  FUZZ_ASSERT(ftruncate(fd, 0) == 0, "ftruncate failed");
  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
    FUZZ_ASSERT(n > 0, "pwrite failed");
    done += (size_t)n;
  }
  return path;
}

/* A stream that discards what is written (for the printers a harness also exercises). */
static inline FILE *fuzz_null_stream(void) {
  static FILE *f;
  if (!f) f = fopen("/dev/null", "w");
  FUZZ_ASSERT(f, "cannot open /dev/null");
  return f;
}

/* A failing parser must leave a message, and a status in gflowvi's documented range. */
static inline void fuzz_check_status(int st) {
  if (st == GFV_OK) return;
  FUZZ_ASSERT(st >= GFV_ERR_USAGE && st <= GFV_ERR_INTERNAL, "status %d out of range", st);
  FUZZ_ASSERT(st != GFV_ERR_INTERNAL, "internal error on user input: %s", gfv_error_message());
  FUZZ_ASSERT(gfv_error_message()[0] != '\0', "status %d without a message", st);
  gfv_error_clear();
}

#endif
