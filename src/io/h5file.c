/* h5file.c - HDF5 reading and writing with gflowvi's error path (see h5file.h). */
#define _GNU_SOURCE /* memfd_create */
#include "io/h5file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "io/ofile_named.h"

/* HDF5 prints its error stack to stderr by default; we report our own single line. */
static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* The errno of the system call under the HDF5 failure just reported: the sec2 driver puts
 * "errno = N" in its error description (a format HDF5 documents as stable); errno itself
 * may have changed since.  EIO when the stack names none. */
static herr_t find_errno(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  const char *p = e->desc ? strstr(e->desc, "errno = ") : NULL;
  if (p && *(int *)data == 0) *(int *)data = atoi(p + 8);
  return 0;
}

static int h5_errno(void) {
  int err = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_errno, &err);
  return err > 0 ? err : EIO;
}

/* Closes f->id whatever happened before.  HDF5 then still holds dirty metadata that
 * H5Fclose would write to a file system that refused a write, and a failed H5Fclose leaves
 * the file open inside HDF5 (HDF5 1.10 then crashes in MPI_Finalize): so the file's
 * descriptor is first pointed at an anonymous in-memory file (memfd), which takes those
 * last writes; the caller removes the temporary file.  This works only while HDF5's own
 * metadata flushes have not failed (1.10.8's cache cannot be flushed again after one
 * failed: "slist already enabled"), which the reservation in gfv_h5_create_in sees to. */
static void close_after_failure(gfv_h5 *f) {
  if (f->id < 0) return;
  int *fd = NULL;
  if (H5Fget_vfd_handle(f->id, H5P_DEFAULT, (void **)&fd) >= 0 && fd && *fd >= 0) {
    int sink = memfd_create("gflowvi-h5-abort", 0);
    if (sink >= 0) {
      (void)dup2(sink, *fd);
      close(sink);
    }
  }
  H5Fclose(f->id);
  f->id = H5I_INVALID_HID;
}

/* Reserves the blocks of `bytes` for the file at tmp without changing its size
 * (FALLOC_FL_KEEP_SIZE; gfv_h5_close_file gives back what is left over): 0, or the errno of a
 * refusal (ENOSPC).  A file system that cannot reserve (EOPNOTSUPP) is written without. */
static int reserve_space(const char *tmp, double bytes) {
  int fd = open(tmp, O_WRONLY), err = 0;
  if (fd < 0) return errno;
  if (bytes > 0 && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)bytes) != 0 &&
      errno != EOPNOTSUPP && errno != ENOSYS)
    err = errno;
  close(fd);
  return err;
}

int gfv_h5_create_in(gfv_ofile *out, const char *path, double reserve, gfv_h5 *f) {
  quiet_hdf5();
  memset(f, 0, sizeof *f);
  f->id = H5I_INVALID_HID;
  GFV_CHECK(strlen(path) < sizeof f->path, GFV_ERR_USAGE, "path too long: '%s'", path);
  strcpy(f->path, path);
  f->out = out;
  /* The default (sec2) driver, straight to the temporary name: no image in memory. */
  f->id = H5Fcreate(gfv_ofile_tmp_path(out), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  GFV_CHECK(f->id >= 0, GFV_ERR_IO, "cannot create the HDF5 file '%s': %s", path,
            strerror(h5_errno()));
  /* The whole file's space before HDF5 writes a byte: a full disk is then our own error
   * here, never a failed flush inside HDF5, which could not close the file after it. */
  int err = reserve_space(gfv_ofile_tmp_path(out), reserve);
  f->reserved = reserve;
  if (err) {
    close_after_failure(f);
    GFV_ERROR(GFV_ERR_IO, "cannot write '%s': %s", path, strerror(err));
  }
  return GFV_OK;
}

int gfv_h5_create(const char *path, double reserve, gfv_h5 *f) {
  gfv_ofile *out = NULL;
  GFV_CALL(gfv_ofile_open_named(path, &out));
  int st = gfv_h5_create_in(out, path, reserve, f);
  if (st) {
    gfv_ofile_abort(out);
    return st;
  }
  f->owns_out = 1;
  return GFV_OK;
}

int gfv_h5_close_file(gfv_h5 *f) {
  GFV_CHECK(f->id >= 0, GFV_ERR_INTERNAL, "'%s': HDF5 file not open", f->path);
  /* Every deferred write now, while a failure can still be closed cleanly. */
  if (H5Fflush(f->id, H5F_SCOPE_GLOBAL) < 0) {
    int err = h5_errno();
    close_after_failure(f);
    GFV_ERROR(GFV_ERR_IO, "cannot write '%s': %s", f->path, strerror(err));
  }
  if (H5Fclose(f->id) < 0) { /* the file may stay open inside HDF5: try once more */
    int err = h5_errno();
    close_after_failure(f);
    GFV_ERROR(GFV_ERR_IO, "cannot write '%s': %s", f->path, strerror(err));
  }
  f->id = H5I_INVALID_HID;
  /* The reserved blocks beyond the end go back now, before the other outputs are written
   * (best effort: they are the file system's again when the file is removed). */
  struct stat sb;
  int fd = open(gfv_ofile_tmp_path(f->out), O_WRONLY);
  if (fd >= 0 && fstat(fd, &sb) == 0 && (double)sb.st_size < f->reserved)
    (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, sb.st_size,
                    (off_t)f->reserved - sb.st_size);
  if (fd >= 0) close(fd);
  return GFV_OK;
}

int gfv_h5_commit(gfv_h5 *f) {
  int st = gfv_h5_close_file(f);
  gfv_ofile *out = f->out;
  f->out = NULL;
  if (st) {
    gfv_ofile_abort(out);
    return st;
  }
  return gfv_ofile_commit(out); /* fsync, rename; frees out */
}

void gfv_h5_abort(gfv_h5 *f) {
  close_after_failure(f);
  if (f->owns_out) gfv_ofile_abort(f->out);
  f->out = NULL;
}

static int write_raw(gfv_h5 *f, const char *name, int rank, const hsize_t *dims, hid_t type,
                     const void *v) {
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t set = space >= 0 ? H5Dcreate2(f->id, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                         : H5I_INVALID_HID;
  herr_t rc = set >= 0 ? H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : -1;
  int err = rc < 0 ? h5_errno() : 0;
  if (set >= 0) H5Dclose(set);
  if (space >= 0) H5Sclose(space);
  GFV_CHECK(rc >= 0, GFV_ERR_IO, "cannot write '%s': %s (dataset '%s')", f->path, strerror(err), name);
  return GFV_OK;
}

int gfv_h5_write_doubles(gfv_h5 *f, const char *name, int rank, const size_t *dims, const double *v) {
  hsize_t h[4];
  for (int i = 0; i < rank; i++) h[i] = dims[i];
  return write_raw(f, name, rank, h, H5T_NATIVE_DOUBLE, v);
}

int gfv_h5_write_bytes(gfv_h5 *f, const char *name, size_t rows, size_t cols, const unsigned char *v) {
  hsize_t h[2] = {rows, cols};
  return write_raw(f, name, 2, h, H5T_NATIVE_UCHAR, v);
}

/* ---- datasets written in blocks of rows ---------------------------------------------- */

int gfv_h5_set_create(gfv_h5 *f, const char *name, int rank, const size_t *dims, gfv_h5_set *d) {
  memset(d, 0, sizeof *d);
  d->id = H5I_INVALID_HID;
  d->file = f, d->name = name, d->rank = rank;
  for (int i = 0; i < rank; i++) d->dims[i] = dims[i];
  hid_t space = H5Screate_simple(rank, d->dims, NULL);
  d->id = space >= 0 ? H5Dcreate2(f->id, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                     : H5I_INVALID_HID;
  int err = d->id < 0 ? h5_errno() : 0;
  if (space >= 0) H5Sclose(space);
  GFV_CHECK(d->id >= 0, GFV_ERR_IO, "cannot write '%s': %s (dataset '%s')", f->path, strerror(err), name);
  return GFV_OK;
}

/* Rows [row0, row0 + n) (along the first dimension) to or from v. */
static int set_rows(gfv_h5_set *d, size_t row0, size_t n, double *v, int write) {
  if (n == 0) return GFV_OK;
  hsize_t start[4] = {row0}, count[4];
  count[0] = n;
  for (int i = 1; i < d->rank; i++) count[i] = d->dims[i];
  hid_t file = H5Dget_space(d->id), mem = H5Screate_simple(d->rank, count, NULL);
  herr_t rc = file >= 0 && mem >= 0 ? H5Sselect_hyperslab(file, H5S_SELECT_SET, start, NULL, count, NULL) : -1;
  if (rc >= 0)
    rc = write ? H5Dwrite(d->id, H5T_NATIVE_DOUBLE, mem, file, H5P_DEFAULT, v)
               : H5Dread(d->id, H5T_NATIVE_DOUBLE, mem, file, H5P_DEFAULT, v);
  int err = rc < 0 ? h5_errno() : 0;
  if (mem >= 0) H5Sclose(mem);
  if (file >= 0) H5Sclose(file);
  GFV_CHECK(rc >= 0, GFV_ERR_IO, "cannot %s '%s': %s (rows %zu-%zu of dataset '%s')",
            write ? "write" : "read back", d->file->path, strerror(err), row0, row0 + n, d->name);
  return GFV_OK;
}

int gfv_h5_set_open(gfv_h5 *f, const char *name, int rank, const size_t *dims, gfv_h5_set *d) {
  memset(d, 0, sizeof *d);
  d->file = f, d->name = name, d->rank = rank;
  for (int i = 0; i < rank; i++) d->dims[i] = dims[i];
  d->id = H5Dopen2(f->id, name, H5P_DEFAULT);
  GFV_CHECK(d->id >= 0, GFV_ERR_INPUT, "checkpoint '%s' has no dataset '%s'", f->path, name);
  hid_t space = H5Dget_space(d->id);
  hsize_t got[8] = {0};
  int r = space >= 0 ? H5Sget_simple_extent_dims(space, got, NULL) : -1;
  int shape_ok = r == rank;
  for (int i = 0; shape_ok && i < rank; i++) shape_ok = got[i] == dims[i];
  if (space >= 0) H5Sclose(space);
  GFV_CHECK(shape_ok, GFV_ERR_INPUT, "checkpoint '%s': dataset '%s' has the wrong shape", f->path,
            name);
  return GFV_OK;
}

int gfv_h5_set_write_rows(gfv_h5_set *d, size_t row0, size_t n, const double *v) {
  return set_rows(d, row0, n, (double *)(uintptr_t)v, 1);
}

int gfv_h5_set_read_rows(gfv_h5_set *d, size_t row0, size_t n, double *v) {
  return set_rows(d, row0, n, v, 0);
}

void gfv_h5_set_close(gfv_h5_set *d) {
  if (d->id >= 0) H5Dclose(d->id);
  d->id = H5I_INVALID_HID;
}

int gfv_h5_attr_string(gfv_h5 *f, const char *name, const char *value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, strlen(value) + 1);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(f->id, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = attr >= 0 ? H5Awrite(attr, type, value) : -1;
  if (attr >= 0) H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
  GFV_CHECK(rc >= 0, GFV_ERR_IO, "cannot write attribute '%s' to '%s'", name, f->path);
  return GFV_OK;
}

int gfv_h5_attr_double(gfv_h5 *f, const char *name, double value) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(f->id, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = attr >= 0 ? H5Awrite(attr, H5T_NATIVE_DOUBLE, &value) : -1;
  if (attr >= 0) H5Aclose(attr);
  H5Sclose(space);
  GFV_CHECK(rc >= 0, GFV_ERR_IO, "cannot write attribute '%s' to '%s'", name, f->path);
  return GFV_OK;
}

int gfv_h5_open(const char *path, gfv_h5 *f) {
  quiet_hdf5();
  memset(f, 0, sizeof *f);
  f->id = H5I_INVALID_HID;
  GFV_CHECK(strlen(path) < sizeof f->path, GFV_ERR_USAGE, "path too long: '%s'", path);
  strcpy(f->path, path);
  GFV_CHECK(access(path, R_OK) == 0, GFV_ERR_INPUT, "cannot open checkpoint '%s': %s", path,
            strerror(errno));
  f->id = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  GFV_CHECK(f->id >= 0, GFV_ERR_INPUT,
            "checkpoint '%s' is not a readable HDF5 file (truncated or corrupted?)", path);
  return GFV_OK;
}

void gfv_h5_close(gfv_h5 *f) {
  if (f->id >= 0) H5Fclose(f->id);
  f->id = H5I_INVALID_HID;
}

static int read_raw(gfv_h5 *f, const char *name, int rank, const size_t *dims, hid_t type, void *v) {
  hid_t set = H5Dopen2(f->id, name, H5P_DEFAULT);
  GFV_CHECK(set >= 0, GFV_ERR_INPUT, "checkpoint '%s' has no dataset '%s'", f->path, name);
  hid_t space = H5Dget_space(set);
  hsize_t got[8] = {0};
  int r = space >= 0 ? H5Sget_simple_extent_dims(space, got, NULL) : -1;
  int shape_ok = r == rank;
  for (int i = 0; shape_ok && i < rank; i++) shape_ok = got[i] == dims[i];
  herr_t rc = shape_ok ? H5Dread(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : -1;
  if (space >= 0) H5Sclose(space);
  H5Dclose(set);
  GFV_CHECK(shape_ok, GFV_ERR_INPUT, "checkpoint '%s': dataset '%s' has the wrong shape", f->path,
            name);
  GFV_CHECK(rc >= 0, GFV_ERR_INPUT, "checkpoint '%s': cannot read dataset '%s' (corrupted?)",
            f->path, name);
  return GFV_OK;
}

int gfv_h5_read_doubles(gfv_h5 *f, const char *name, int rank, const size_t *dims, double *v) {
  return read_raw(f, name, rank, dims, H5T_NATIVE_DOUBLE, v);
}

int gfv_h5_read_bytes(gfv_h5 *f, const char *name, size_t rows, size_t cols, unsigned char *v) {
  size_t dims[2] = {rows, cols};
  return read_raw(f, name, 2, dims, H5T_NATIVE_UCHAR, v);
}

int gfv_h5_read_attr_string(gfv_h5 *f, const char *name, char *out, size_t size) {
  hid_t attr = H5Aopen(f->id, name, H5P_DEFAULT);
  GFV_CHECK(attr >= 0, GFV_ERR_INPUT, "checkpoint '%s' has no attribute '%s'", f->path, name);
  hid_t type = H5Aget_type(attr);
  size_t n = H5Tget_size(type);
  herr_t rc = -1;
  if (H5Tget_class(type) == H5T_STRING && n <= size) rc = H5Aread(attr, type, out);
  H5Tclose(type);
  H5Aclose(attr);
  GFV_CHECK(rc >= 0, GFV_ERR_INPUT, "checkpoint '%s': attribute '%s' is unreadable", f->path, name);
  out[size - 1] = '\0';
  if (n > 0 && n <= size) out[n - 1] = '\0';
  return GFV_OK;
}

int gfv_h5_read_attr_string_alloc(gfv_h5 *f, const char *name, char **out) {
  *out = NULL;
  hid_t attr = H5Aopen(f->id, name, H5P_DEFAULT);
  GFV_CHECK(attr >= 0, GFV_ERR_INPUT, "checkpoint '%s' has no attribute '%s'", f->path, name);
  hid_t type = H5Aget_type(attr);
  size_t n = H5Tget_size(type);
  char *buf = NULL;
  herr_t rc = -1;
  /* Fixed-length strings only (what gfv_h5_attr_string writes): a variable-length one
   * would read as a pointer. */
  if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) == 0 && n > 0 &&
      (buf = malloc(n + 1)) != NULL)
    rc = H5Aread(attr, type, buf);
  H5Tclose(type);
  H5Aclose(attr);
  if (rc < 0) {
    free(buf);
    GFV_ERROR(GFV_ERR_INPUT, "checkpoint '%s': attribute '%s' is unreadable", f->path, name);
  }
  buf[n] = '\0';
  *out = buf;
  return GFV_OK;
}

int gfv_h5_read_attr_double(gfv_h5 *f, const char *name, double *value) {
  hid_t attr = H5Aopen(f->id, name, H5P_DEFAULT);
  GFV_CHECK(attr >= 0, GFV_ERR_INPUT, "checkpoint '%s' has no attribute '%s'", f->path, name);
  herr_t rc = H5Aread(attr, H5T_NATIVE_DOUBLE, value);
  H5Aclose(attr);
  GFV_CHECK(rc >= 0, GFV_ERR_INPUT, "checkpoint '%s': attribute '%s' is unreadable", f->path, name);
  return GFV_OK;
}

uint64_t gfv_fnv1a(uint64_t h, const void *data, size_t bytes) {
  const unsigned char *p = data;
  for (size_t i = 0; i < bytes; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}
