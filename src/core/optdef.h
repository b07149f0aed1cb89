/* optdef.h - what an option is: the row type of the option tables.
 *
 * Every module that reads gfv_config defines the rows of its own options next to its code
 * (src/targets/data.c defines --data, src/flows/registry.c --flow, ...) as a
 * gfv_option_table; src/core/option_registry.c lists the tables in the order of the echo,
 * src/core/config.c checks and sets values from that list (gfv_config_set, gfv_config_check,
 * shared by the command line and the library), and src/cli/options.c parses the command
 * line and config files and prints help and the echoes.  This header needs nothing but
 * config.h, so a numerics module can define its rows without the CLI. */
#ifndef GFLOWVI_OPTDEF_H
#define GFLOWVI_OPTDEF_H

#include <stddef.h>

#include "gflowvi/config.h"

typedef enum { OPT_STRING, OPT_LONG, OPT_DOUBLE, OPT_BOOL, OPT_CHOICE } opt_type;

/* Range of a numeric option: lo <= v, lo < v, or lo <= v <= hi. */
typedef enum { BOUND_NONE, BOUND_GE, BOUND_GT, BOUND_BETWEEN } opt_bound;

/* What an option is to a restart (--restart=FILE; gfv_config_merge_restart).  Every option
 * not given on the command line or in --config takes the checkpoint's value; a given one:
 *   ROLE_PROBLEM  defines the posterior or the random streams: refused if it differs;
 *   ROLE_INIT     only shapes the start, which the checkpoint replaces: the checkpoint's
 *                 value is kept silently;
 *   ROLE_RUN      steps, lengths, tolerances, outputs: the new value is used;
 *   ROLE_NONE     not carried by the checkpoint (config, restart).
 * ROLE_PROBLEM is 0, so a row added without a role is on the safe side. */
typedef enum { ROLE_PROBLEM = 0, ROLE_INIT, ROLE_RUN, ROLE_NONE } opt_role;

typedef struct {
  const char *name;              /* with dashes, as on the command line */
  opt_type type;
  size_t offset, size;           /* the field in gfv_config */
  const char *metavar;           /* --help placeholder for strings (FILE, DIR, SPEC) */
  const char *def;               /* default, as text: parsed like any user value */
  const char *help;
  opt_bound bound;
  double lo, hi;
  /* OPT_CHOICE: either a NULL-terminated list, or choice_at(i), the i-th choice (NULL past
   * the last), for choices that a registry owns (the flows, the estimators). */
  const char *const *choices;
  const char *(*choice_at)(size_t i);
  /* OPT_CHOICE with a parameterised choice (--family=lowrank:R): when set, it alone says
   * whether a value is valid (the choices are then only what --help and the messages
   * list). */
  int (*accept)(const char *value);
  opt_role role;                 /* on restart; see opt_role */
} gfv_option;

/* One module's rows, contiguous in the echo. */
typedef struct {
  const gfv_option *rows;
  size_t n;
} gfv_option_table;

#define OPT_FIELD(f) \
  .offset = offsetof(gfv_config, f), .size = sizeof(((gfv_config *)0)->f)

/* const gfv_option_table NAME, made from the array ROWS defined just before. */
#define GFV_OPTION_TABLE(name, rows_) \
  const gfv_option_table name = {.rows = rows_, .n = sizeof rows_ / sizeof rows_[0]}

/* All options, in the echo's order (src/core/option_registry.c): gfv_option_count() rows,
 * row i at gfv_option_at(i) (NULL past the end).  gfv_config.given is indexed alike. */
size_t gfv_option_count(void);
const gfv_option *gfv_option_at(size_t i);

/* The i-th choice of an OPT_CHOICE option, NULL past the last. */
const char *gfv_option_choice(const gfv_option *o, size_t i);

/* ---- the values (src/core/config.c), for the parser and the echoes ---------------- */

/* The option called given[0..len), '_' matching '-' (config files may use the struct field
 * spelling, weight_step); NULL for none. */
const gfv_option *gfv_option_find(const char *given, size_t len);
/* o's index in gfv_option_at (and gfv_config.given). */
size_t gfv_option_index(const gfv_option *o);
/* Records that o was given (gfv_config.given). */
void gfv_option_mark_given(gfv_config *cfg, const gfv_option *o);
/* Parses value into o's field of cfg; where prefixes every message ("--step",
 * "run.cfg:5: step").  cfg is left unchanged on failure. */
int gfv_option_set_value(gfv_config *cfg, const gfv_option *o, const char *value,
                         const char *where);
/* 1 and *out set when s is a boolean word (true/false, yes/no, on/off, 1/0), else 0. */
int gfv_option_bool_word(const char *s, int *out);
/* The choices of o joined by sep into buf. */
void gfv_option_join_choices(const gfv_option *o, const char *sep, char *buf, size_t n);
/* The value of o in cfg as exact text (doubles: the shortest %g that reads back the same);
 * numbers are formatted into buf (40 bytes at least). */
const char *gfv_option_value_text(const gfv_config *cfg, const gfv_option *o, char *buf,
                                  size_t n);
/* A config-file value must be written in quotes ('#', or a blank or quote at either end). */
int gfv_option_needs_quotes(const char *s);
/* GFV_ERR_USAGE when string value v cannot be written to a config file or checkpoint. */
int gfv_option_check_writable(const gfv_option *o, const char *v);

static inline const void *gfv_option_cfield(const gfv_config *cfg, const gfv_option *o) {
  return (const char *)cfg + o->offset;
}

#endif
