/* version.c - gfv_version: the numbers this library was built with (version.h). */
#include "gflowvi/version.h"

const char *gfv_version(int *major, int *minor, int *patch) {
  if (major) *major = GFV_VERSION_MAJOR;
  if (minor) *minor = GFV_VERSION_MINOR;
  if (patch) *patch = GFV_VERSION_PATCH;
  return GFV_VERSION_STRING;
}
