/* h5file.h - the small part of HDF5 that gflowvi uses, with its errors routed into ours.
 *
 * Files are written atomically like every other output: created under "<path>.tmp.<pid>",
 * closed, flushed to disk and renamed over path by gfv_h5_commit.  HDF5's own error
 * printing is turned off; every failure becomes one gflowvi message naming the file and
 * the object.  Not collective: one rank writes (the checkpoint is small next to the data
 * the ranks exchange every iteration). */
#ifndef GFLOWVI_H5FILE_H
#define GFLOWVI_H5FILE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  hid_t id;
  char path[4200], tmp[4300]; /* final and temporary names (writing), or path (reading) */
} gfv_h5;

/* Writing. */
int gfv_h5_create(const char *path, gfv_h5 *f);
int gfv_h5_commit(gfv_h5 *f); /* close, fsync, rename; removes the temporary on failure */
void gfv_h5_abort(gfv_h5 *f); /* close and remove the temporary file */
int gfv_h5_write_doubles(gfv_h5 *f, const char *name, int rank, const size_t *dims, const double *v);
int gfv_h5_write_bytes(gfv_h5 *f, const char *name, size_t rows, size_t cols, const unsigned char *v);
int gfv_h5_attr_string(gfv_h5 *f, const char *name, const char *value);
int gfv_h5_attr_double(gfv_h5 *f, const char *name, double value);

/* Reading.  Every read checks the stored shape against the expected one. */
int gfv_h5_open(const char *path, gfv_h5 *f);
void gfv_h5_close(gfv_h5 *f);
int gfv_h5_read_doubles(gfv_h5 *f, const char *name, int rank, const size_t *dims, double *v);
int gfv_h5_read_bytes(gfv_h5 *f, const char *name, size_t rows, size_t cols, unsigned char *v);
int gfv_h5_read_attr_string(gfv_h5 *f, const char *name, char *out, size_t size);
int gfv_h5_read_attr_double(gfv_h5 *f, const char *name, double *value);

/* FNV-1a, 64-bit: the checkpoint's checksum over everything it stores. */
uint64_t gfv_fnv1a(uint64_t h, const void *data, size_t bytes);
#define GFV_FNV_INIT 0xcbf29ce484222325ULL

#endif
