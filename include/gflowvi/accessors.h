/* accessors.h - what a program that cannot see the library's structs needs (a foreign-
 * function interface such as Python's ctypes, src/bindings/python/): a configuration made
 * and freed by the library, and the size of gfv_eval_result so a binding can check its copy of the layout.  None is collective. */
#ifndef GFLOWVI_ACCESSORS_H
#define GFLOWVI_ACCESSORS_H

/* Exported from libgflowvi.so (built with -fvisibility=hidden): docs/library.md. */
#pragma GCC visibility push(default)

#include <stddef.h>

#include "gflowvi/config.h"
#include "gflowvi/solver.h"

/* A configuration holding every option's default (gfv_config_defaults); GFV_ERR_MEMORY. */
int gfv_config_create(gfv_config **out);
/* Frees it (NULL allowed). */
void gfv_config_destroy(gfv_config *cfg);

/* sizeof(gfv_eval_result), for bindings that mirror the struct. */
size_t gfv_eval_result_size(void);

#pragma GCC visibility pop

#endif
