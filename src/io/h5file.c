/* h5file.c - HDF5 reading and writing with gflowvi's error path (see h5file.h). */
#include "io/h5file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/error.h"
#include "gflowvi/io.h"

/* HDF5 prints its error stack to stderr by default; we report our own single line. */
static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

int gfv_h5_create(const char *path, gfv_h5 *f) {
  quiet_hdf5();
  memset(f, 0, sizeof *f);
  f->id = H5I_INVALID_HID;
  GFV_CHECK(strlen(path) < sizeof f->path, GFV_ERR_USAGE, "path too long: '%s'", path);
  strcpy(f->path, path);
  /* In memory (core driver, 64 KiB increments, no backing store): see h5file.h. */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  herr_t rc = fapl >= 0 ? H5Pset_fapl_core(fapl, 64 * 1024, 0) : -1;
  if (rc >= 0) f->id = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (fapl >= 0) H5Pclose(fapl);
  GFV_CHECK(f->id >= 0, GFV_ERR_IO, "cannot create the HDF5 file '%s' in memory", path);
  return GFV_OK;
}

int gfv_h5_write_image(gfv_h5 *f, FILE *out) {
  GFV_CHECK(f->id >= 0, GFV_ERR_INTERNAL, "'%s': HDF5 file not open", f->path);
  void *image = NULL;
  ssize_t n = H5Fflush(f->id, H5F_SCOPE_GLOBAL) >= 0 ? H5Fget_file_image(f->id, NULL, 0) : -1;
  if (n > 0) image = malloc((size_t)n);
  if (image && H5Fget_file_image(f->id, image, (size_t)n) != n) n = -1;
  herr_t rc = H5Fclose(f->id);
  f->id = H5I_INVALID_HID;
  if (n <= 0 || !image || rc < 0) {
    free(image);
    GFV_ERROR(n > 0 && !image ? GFV_ERR_MEMORY : GFV_ERR_IO,
              "cannot make the HDF5 image of '%s' (%zd bytes)", f->path, n);
  }
  errno = 0;
  size_t written = fwrite(image, 1, (size_t)n, out);
  int err = errno;
  free(image);
  GFV_CHECK(written == (size_t)n, GFV_ERR_IO, "cannot write '%s': %s", f->path,
            strerror(err ? err : EIO));
  return GFV_OK;
}

int gfv_h5_commit(gfv_h5 *f) {
  gfv_ofile *out = NULL;
  int st = GFV_OK;
  GFV_CALL_GOTO(st, gfv_ofile_open(f->path, &out), fail);
  GFV_CALL_GOTO(st, gfv_h5_write_image(f, gfv_ofile_stream(out)), fail);
  st = gfv_ofile_commit(out); /* frees out */
  out = NULL;
  GFV_CALL_GOTO(st, st, fail);
  return GFV_OK;
fail:
  gfv_h5_abort(f);
  gfv_ofile_abort(out);
  return st;
}

void gfv_h5_abort(gfv_h5 *f) {
  if (f->id >= 0) H5Fclose(f->id);
  f->id = H5I_INVALID_HID;
}

static int write_raw(gfv_h5 *f, const char *name, int rank, const hsize_t *dims, hid_t type,
                     const void *v) {
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t set = space >= 0 ? H5Dcreate2(f->id, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                         : H5I_INVALID_HID;
  herr_t rc = set >= 0 ? H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : -1;
  if (set >= 0) H5Dclose(set);
  if (space >= 0) H5Sclose(space);
  GFV_CHECK(rc >= 0, GFV_ERR_IO, "cannot write dataset '%s' to '%s'", name, f->path);
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
