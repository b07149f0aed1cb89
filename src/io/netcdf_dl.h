/* netcdf_dl.h - the few netCDF-4 functions posterior.nc needs, loaded with dlopen.
 *
 * Why not linked: libnetcdf pulls in libxml2, whose thread-local storage, when it is loaded
 * at program start, crashes LeakSanitizer's exit check in a singleton MPI run (the SAN=1
 * build of tests/sanitizers; "Tracer caught signal 11" in its DTLS scan).  Loaded after
 * MPI_Init, like a plugin, it does not.  Debian's Open MPI build (libnetcdf-mpi-dev) is the
 * one loaded: it uses the same HDF5 as the checkpoints, so a process never holds two HDF5
 * libraries.  Not thread-safe (one thread per process). */
#ifndef GFLOWVI_NETCDF_DL_H
#define GFLOWVI_NETCDF_DL_H

#include <netcdf.h>
#include <netcdf_mem.h>
#include <stddef.h>

typedef struct {
  int (*create_mem)(const char *path, int mode, size_t initialsize, int *ncid);
  int (*close_memio)(int ncid, NC_memio *info);
  int (*abort_)(int ncid);
  const char *(*strerror_)(int status);
  int (*def_grp)(int ncid, const char *name, int *grpid);
  int (*def_dim)(int ncid, const char *name, size_t len, int *dimid);
  int (*def_var)(int ncid, const char *name, nc_type type, int ndims, const int *dimids, int *varid);
  int (*put_att_text)(int ncid, int varid, const char *name, size_t len, const char *value);
  int (*put_var_double)(int ncid, int varid, const double *v);
  int (*put_var_longlong)(int ncid, int varid, const long long *v);
} gfv_netcdf;

/* The library's functions (loaded on the first call, kept to the end of the process);
 * GFV_ERR_IO with a message naming the library and what to install when it is missing. */
int gfv_netcdf_load(const gfv_netcdf **out);

#endif
