/* ofile_named.h - an atomic output file that another writer fills (HDF5 writes mixture.h5
 * and the checkpoint straight to the temporary name, without a file image in memory).
 * Internal to libgflowvi (not in include/gflowvi/io.h). */
#ifndef GFLOWVI_OFILE_NAMED_H
#define GFLOWVI_OFILE_NAMED_H

#include "gflowvi/io.h"

/* Like gfv_ofile_open, but creates nothing and has no stream: the caller's writer creates
 * and closes gfv_ofile_tmp_path(*out); gfv_ofile_finish then fsyncs it, gfv_ofile_commit
 * renames it, gfv_ofile_abort removes it, as for any gfv_ofile. */
int gfv_ofile_open_named(const char *path, gfv_ofile **out);
/* The temporary name ("<path>.tmp.<pid>") written until the commit. */
const char *gfv_ofile_tmp_path(const gfv_ofile *f);

#endif
