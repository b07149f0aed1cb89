/* netcdf_dl.c - loading netCDF-4 at run time (see netcdf_dl.h). */
#include "io/netcdf_dl.h"

#include <dlfcn.h>
#include <string.h>

#include "gflowvi/error.h"

/* Sanitizer builds: LeakSanitizer, which runs without scanning thread-local storage
 * (tests/sanitizers/env.sh, use_tls=0), would report the blocks that only the loader's and
 * the library's thread-local state point to (the dynamic loader's bookkeeping of the new
 * objects; OpenSSL's per-thread state, libnetcdf -> libcurl -> libcrypto), which live to
 * the end of the process.  What the loading allocates is kept out of the check, as for
 * MPI_Init (src/comm/comm.c), and so is netCDF's one-time set-up (nc_initialize, which
 * starts libcurl and OpenSSL); what netCDF allocates later, in our calls, is still checked. */
#ifdef GFV_SANITIZE
#include <sanitizer/lsan_interface.h>
#define LSAN_OFF() __lsan_disable()
#define LSAN_ON() __lsan_enable()
#else
#define LSAN_OFF() ((void)0)
#define LSAN_ON() ((void)0)
#endif

/* The development package's name first, then the runtime package's (Debian 12: ABI 19).
 * The SMPI build (make smpi, docs/cluster.md) links the serial HDF5 and runs under SimGrid's
 * MPI, so it loads the serial netCDF (libnetcdf19, on the serial HDF5): the Open MPI build
 * would bring Open MPI's libmpi and a second HDF5 into the simulation's process. */
#ifdef GFV_SMPI
static const char *const libnames[] = {"libnetcdf.so.19", "libnetcdf.so"};
#else
static const char *const libnames[] = {"libnetcdf_mpi.so", "libnetcdf_mpi.so.19"};
#endif

int gfv_netcdf_load(const gfv_netcdf **out) {
  static gfv_netcdf nc;
  static int loaded;
  *out = NULL;
  if (loaded) {
    *out = &nc;
    return GFV_OK;
  }
  void *h = NULL;
  LSAN_OFF();
  for (size_t i = 0; !h && i < sizeof libnames / sizeof libnames[0]; i++)
    h = dlopen(libnames[i], RTLD_NOW | RTLD_LOCAL);
  /* netCDF's one-time set-up (its first nc_create would do it): libcurl and OpenSSL */
  int (*init)(void) = h ? (int (*)(void))dlsym(h, "nc_initialize") : NULL;
  if (init) init();
  LSAN_ON();
  GFV_CHECK(h, GFV_ERR_IO,
            "posterior.nc: cannot load the netCDF-4 library (%s): %s; install Debian's "
            "libnetcdf-mpi-dev (tools/install-deps.sh)", libnames[0], dlerror());
  struct {
    const char *name;
    void **slot;
  } fns[] = {{"nc_create_mem", (void **)&nc.create_mem},   {"nc_close_memio", (void **)&nc.close_memio},
             {"nc_abort", (void **)&nc.abort_},             {"nc_strerror", (void **)&nc.strerror_},
             {"nc_def_grp", (void **)&nc.def_grp},          {"nc_def_dim", (void **)&nc.def_dim},
             {"nc_def_var", (void **)&nc.def_var},          {"nc_put_att_text", (void **)&nc.put_att_text},
             {"nc_put_var_double", (void **)&nc.put_var_double},
             {"nc_put_var_longlong", (void **)&nc.put_var_longlong}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    *fns[i].slot = dlsym(h, fns[i].name);
    if (!*fns[i].slot) {
      dlclose(h);
      memset(&nc, 0, sizeof nc);
      GFV_ERROR(GFV_ERR_IO, "posterior.nc: the netCDF library %s lacks %s (netCDF 4.6.2 or later is needed)",
                libnames[0], fns[i].name);
    }
  }
  loaded = 1;
  *out = &nc;
  return GFV_OK;
}
