/* accessors.c - include/gflowvi/accessors.h: the library's structs seen from a foreign-
 * function interface. */
#include <stdlib.h>

#include "gflowvi/accessors.h"
#include "gflowvi/error.h"
#include "gflowvi/solver.h"

int gfv_config_create(gfv_config **out) {
  gfv_config *cfg;
  *out = NULL;
  GFV_ALLOC(cfg, 1);
  gfv_config_defaults(cfg);
  *out = cfg;
  return GFV_OK;
}

void gfv_config_destroy(gfv_config *cfg) { free(cfg); }

size_t gfv_eval_result_size(void) { return sizeof(gfv_eval_result); }
