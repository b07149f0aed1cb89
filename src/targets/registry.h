/* registry.h - the target types behind --target (src/targets/registry.c).
 *
 * Each target file defines one gfv_target_type; src/targets/target_list.h names it on one
 * line, and that line is all the registry needs: the type's name is matched against
 * --target, its synopsis and help are listed by --help and the unknown-target message, and
 * its option table (if any) joins the options (src/core/option_registry.c). */
#ifndef GFLOWVI_TARGETS_REGISTRY_H
#define GFLOWVI_TARGETS_REGISTRY_H

#include <stddef.h>

#include "core/optdef.h"
#include "gflowvi/config.h"
#include "gflowvi/target.h"

typedef struct {
  /* The spec: a whole name ("gauss"), or a prefix ending in ':' ("gmm:"), the rest of the
   * spec being the argument handed to create. */
  const char *name;
  const char *synopsis; /* as --help and messages list it: "gauss", "gmm:FILE" */
  const char *help;     /* one line for --help's list of targets */
  /* A dimension the user chooses with --dim: its default and least value (min_dim >= 1);
   * 0, 0 for a target whose dimension is its own (fixed, or from a file). */
  long default_dim, min_dim;
  /* 1: the target reads more of the configuration than --dim (data, plugin arguments), so
   * gfv_target_create (which has no configuration) refuses it. */
  int needs_config;
  /* Makes the target.  arg: the text after the prefix, or the name; dim: the resolved
   * --dim (0 when the type has no default_dim); cfg: NULL through gfv_target_create. */
  int (*create)(const char *arg, size_t dim, const gfv_config *cfg, gfv_target **out);
  /* Optional: run on rank 0 alone before create (gfv_target_prepare). */
  int (*prepare)(const gfv_config *cfg);
  const gfv_option_table *options; /* optional: the target's own options */
} gfv_target_type;

/* The i-th registered type, NULL past the last. */
const gfv_target_type *gfv_target_type_at(size_t i);
/* The type whose name matches spec, NULL for none. */
const gfv_target_type *gfv_target_type_find(const char *spec);

/* The types, declared from target_list.h. */
#define GFV_TARGET(id) extern const gfv_target_type gfv_target_type_##id;
#include "targets/target_list.h"
#undef GFV_TARGET

#endif
