/* version.h - the version of gflowvi, of its library and of this header.
 *
 * The numbers follow semantic versioning: MAJOR changes when the ABI of libgflowvi.so
 * changes incompatibly (it is the soname, libgflowvi.so.MAJOR), MINOR when functions are
 * added, PATCH for fixes.  The Makefile reads them from this file, so they are written
 * once.  A program compares the header it was compiled with (GFV_VERSION_*) with the
 * library it loaded (gfv_version) to catch a stale libgflowvi.so on its library path. */
#ifndef GFLOWVI_VERSION_H
#define GFLOWVI_VERSION_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#define GFV_VERSION_MAJOR 0
#define GFV_VERSION_MINOR 1
#define GFV_VERSION_PATCH 0
#define GFV_VERSION_STRING "0.1.0"
/* One number that orders versions: 10000 * MAJOR + 100 * MINOR + PATCH. */
#define GFV_VERSION_NUMBER (10000 * GFV_VERSION_MAJOR + 100 * GFV_VERSION_MINOR + GFV_VERSION_PATCH)

/* The version of the library linked at run time: "MAJOR.MINOR.PATCH"; major, minor and
 * patch (each may be NULL) get the numbers.  Not collective. */
const char *gfv_version(int *major, int *minor, int *patch);

#pragma GCC visibility pop

#endif
