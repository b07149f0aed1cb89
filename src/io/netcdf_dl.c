/* netcdf_dl.c - loading netCDF-4 at run time (see netcdf_dl.h). */
#include "io/netcdf_dl.h"

#include <dlfcn.h>
#include <string.h>

#include "gflowvi/error.h"

/* The development package's name first, then the runtime package's (Debian 12: ABI 19). */
static const char *const libnames[] = {"libnetcdf_mpi.so", "libnetcdf_mpi.so.19"};

int gfv_netcdf_load(const gfv_netcdf **out) {
  static gfv_netcdf nc;
  static int loaded;
  *out = NULL;
  if (loaded) {
    *out = &nc;
    return GFV_OK;
  }
  void *h = NULL;
  for (size_t i = 0; !h && i < sizeof libnames / sizeof libnames[0]; i++)
    h = dlopen(libnames[i], RTLD_NOW | RTLD_LOCAL);
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
