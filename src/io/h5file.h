/* h5file.h - the small part of HDF5 that gflowvi uses, with its errors routed into ours.
 *
 * Files are written atomically like every other output: HDF5 (its default sec2 driver)
 * writes straight to the temporary name of a gfv_ofile ("<path>.tmp.<pid>", io/ofile_named.h),
 * which is fsynced and renamed over path only after H5Fclose succeeded; on any failure the
 * temporary file is removed.  Nothing of the file is held in memory, so mixture.h5 and the
 * checkpoint can be written a block of rows at a time (gfv_h5_set) however large they are.
 * A full disk must not reach HDF5's metadata flushes: after one failed, HDF5 1.10.8 can
 * never close the file, and crashes in MPI_Finalize.  So gfv_h5_create reserves the
 * file's space first (fallocate, FALLOC_FL_KEEP_SIZE), and a failure closes the file
 * through an in-memory sink (memfd) that takes HDF5's last writes.  HDF5's own error printing is turned off; every failure becomes one gflowvi
 * message naming the file and the reason ("cannot write 'ck.h5': No space left on
 * device").  Not collective: one rank writes. */
#ifndef GFLOWVI_H5FILE_H
#define GFLOWVI_H5FILE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gflowvi/io.h"

typedef struct {
  hid_t id;
  char path[4200]; /* the file's name (the final one when writing) */
  gfv_ofile *out;  /* writing: the temporary file HDF5 writes */
  int owns_out;    /* gfv_h5_create: commit and abort take out with them */
  double reserved; /* bytes reserved on disk for the file (given back at the close) */
} gfv_h5;

/* Writing. */
/* reserve: the bytes the file will take, about (its data and 64 KiB more is plenty),
 * allocated on disk before HDF5 writes (a full disk fails here, cleanly). */
int gfv_h5_create(const char *path, double reserve, gfv_h5 *f);
int gfv_h5_commit(gfv_h5 *f); /* close; fsync, rename; nothing left on failure */
void gfv_h5_abort(gfv_h5 *f); /* close, remove the temporary file (when f owns it) */
/* An HDF5 file at the temporary name of out (gfv_ofile_open_named), for a set of files
 * renamed together: gfv_h5_close_file closes it, the caller finishes and commits out
 * (gfv_h5_abort closes it and leaves out to the caller). */
int gfv_h5_create_in(gfv_ofile *out, const char *path, double reserve, gfv_h5 *f);
int gfv_h5_close_file(gfv_h5 *f);
int gfv_h5_write_doubles(gfv_h5 *f, const char *name, int rank, const size_t *dims, const double *v);
int gfv_h5_write_bytes(gfv_h5 *f, const char *name, size_t rows, size_t cols, const unsigned char *v);
int gfv_h5_attr_string(gfv_h5 *f, const char *name, const char *value);
int gfv_h5_attr_double(gfv_h5 *f, const char *name, double value);

/* A dataset of doubles created at its full size (dims) and written, or read back, a block
 * of rows (along dims[0]) at a time.  The storage is allocated at the first write, as
 * with gfv_h5_write_doubles: a set created and first written in the same order as
 * gfv_h5_write_doubles' calls gives the same file, byte for byte. */
typedef struct {
  hid_t id;
  gfv_h5 *file;
  const char *name;
  int rank;
  hsize_t dims[4];
} gfv_h5_set;
int gfv_h5_set_create(gfv_h5 *f, const char *name, int rank, const size_t *dims, gfv_h5_set *d);
int gfv_h5_set_write_rows(gfv_h5_set *d, size_t row0, size_t n, const double *v);
int gfv_h5_set_read_rows(gfv_h5_set *d, size_t row0, size_t n, double *v);
/* An existing set of a file opened for reading, its shape checked against dims (rank). */
int gfv_h5_set_open(gfv_h5 *f, const char *name, int rank, const size_t *dims, gfv_h5_set *d);
void gfv_h5_set_close(gfv_h5_set *d); /* also on a set never created (id < 0) */

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
