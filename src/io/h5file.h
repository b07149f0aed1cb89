/* h5file.h - the small part of HDF5 that gflowvi uses, with its errors routed into ours.
 *
 * Files are written atomically like every other output: built in memory (HDF5's core
 * driver, no backing store), then gfv_h5_commit writes the file image through gfv_ofile
 * ("<path>.tmp.<pid>", flushed, synced, renamed over path).  HDF5 itself never writes to
 * disk, so a full disk or a write error is an ordinary gflowvi error on our own stream:
 * no HDF5 file is left half-closed (HDF5 1.10 crashes in MPI_Finalize after a failed
 * H5Fclose) and no temporary file is left behind.  HDF5's own error
 * printing is turned off; every failure becomes one gflowvi message naming the file and
 * the object.  Not collective: one rank writes (the checkpoint is small next to the data
 * the ranks exchange every iteration). */
#ifndef GFLOWVI_H5FILE_H
#define GFLOWVI_H5FILE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  hid_t id;
  char path[4200], tmp[4300]; /* the file's name (tmp: unused, kept for the layout) */
} gfv_h5;

/* Writing. */
int gfv_h5_create(const char *path, gfv_h5 *f);
int gfv_h5_commit(gfv_h5 *f); /* close; write, fsync, rename the image; nothing left on failure */
void gfv_h5_abort(gfv_h5 *f); /* close, write nothing */
/* Closes f and writes its file image to out (the caller commits out): for a set of files
 * that must be renamed together. */
int gfv_h5_write_image(gfv_h5 *f, FILE *out);
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
/* A string attribute of any length, in a buffer the caller frees. */
int gfv_h5_read_attr_string_alloc(gfv_h5 *f, const char *name, char **out);
int gfv_h5_read_attr_double(gfv_h5 *f, const char *name, double *value);

/* FNV-1a, 64-bit: the checkpoint's checksum over everything it stores. */
uint64_t gfv_fnv1a(uint64_t h, const void *data, size_t bytes);
#define GFV_FNV_INIT 0xcbf29ce484222325ULL

#endif
