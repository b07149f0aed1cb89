/* config.c - the values of the options: lookup by name, parsing and checking one value,
 * the defaults, gfv_config_set and gfv_config_check (one check, shared by the command line
 * and the library's gfv_solver_setup), the exact text of a value, and the merge of a
 * restart's configuration by the options' roles.  Everything follows from the option rows
 * (src/core/optdef.h) that the registry lists (src/core/option_registry.c); reading the
 * command line and config files, --help and the echoes are the CLI's (src/cli/options.c). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/optdef.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"

typedef gfv_option option;
#define NOPTIONS gfv_option_count()
#define OPTION(i) gfv_option_at(i)

/* ---- lookup and field access ------------------------------------------------------- */

/* Compares the first len characters of given with an option name, '_' matching '-', so
 * config files may use the struct field spelling (weight_step). */
static int name_matches(const char *name, const char *given, size_t len) {
  for (size_t i = 0; i < len; i++) {
    char c = given[i] == '_' ? '-' : given[i];
    if (name[i] != c) return 0; /* also stops at the end of name */
  }
  return name[len] == '\0';
}

const option *gfv_option_find(const char *given, size_t len) {
  for (size_t i = 0; i < NOPTIONS; i++)
    if (name_matches(OPTION(i)->name, given, len)) return OPTION(i);
  return NULL;
}

size_t gfv_option_index(const option *o) {
  size_t i = 0;
  while (OPTION(i) && OPTION(i) != o) i++;
  return i;
}

/* gfv_config.given has GFV_OPTIONS_MAX entries; more options than that is a build error
 * that gfv_config_check reports (and test_option_registry catches), so the marks of the
 * options beyond are dropped rather than written out of bounds. */
void gfv_option_mark_given(gfv_config *cfg, const gfv_option *o) {
  size_t i = gfv_option_index(o);
  if (i < GFV_OPTIONS_MAX) cfg->given[i] = 1;
}

static int is_given(const gfv_config *cfg, size_t i) { return i < GFV_OPTIONS_MAX && cfg->given[i]; }

static void *field_of(gfv_config *cfg, const option *o) { return (char *)cfg + o->offset; }

/* ---- parsing one value ------------------------------------------------------------- */

static int parse_long(const char *s, const char *where, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  GFV_CHECK(end != s && *end == '\0' && !isspace((unsigned char)s[0]), GFV_ERR_USAGE,
            "%s: '%s' is not an integer", where, s);
  GFV_CHECK(errno != ERANGE, GFV_ERR_USAGE, "%s: '%s' is out of range", where, s);
  *out = v;
  return GFV_OK;
}

static int parse_double(const char *s, const char *where, double *out) {
  char *end;
  double v = strtod(s, &end);
  GFV_CHECK(end != s && *end == '\0' && !isspace((unsigned char)s[0]), GFV_ERR_USAGE,
            "%s: '%s' is not a number", where, s);
  /* Overflow gives +-HUGE_VAL and is caught here; underflow to 0 is left to the range. */
  GFV_CHECK(isfinite(v), GFV_ERR_USAGE, "%s: '%s' is not a finite number", where, s);
  *out = v;
  return GFV_OK;
}

/* 1 and *out set when s is a boolean word, 0 otherwise. */
int gfv_option_bool_word(const char *s, int *out) {
  static const char *const words[][2] = {
      {"0", "1"}, {"false", "true"}, {"no", "yes"}, {"off", "on"}};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    for (int v = 0; v < 2; v++)
      if (strcasecmp(s, words[i][v]) == 0) {
        *out = v;
        return 1;
      }
  return 0;
}

/* v against the option's range; text is the value as the user wrote it. */
static int check_range(const option *o, double v, const char *text, const char *where) {
  switch (o->bound) {
  case BOUND_NONE: break;
  case BOUND_GE:
    GFV_CHECK(v >= o->lo, GFV_ERR_USAGE, "%s: must be >= %g, got %s", where, o->lo, text);
    break;
  case BOUND_GT:
    GFV_CHECK(v > o->lo, GFV_ERR_USAGE, "%s: must be > %g, got %s", where, o->lo, text);
    break;
  case BOUND_BETWEEN:
    GFV_CHECK(v >= o->lo && v <= o->hi, GFV_ERR_USAGE, "%s: must be between %g and %g, got %s",
              where, o->lo, o->hi, text);
    break;
  }
  return GFV_OK;
}

void gfv_option_join_choices(const option *o, const char *sep, char *buf, size_t n) {
  buf[0] = '\0';
  const char *c;
  for (size_t i = 0; (c = gfv_option_choice(o, i)) != NULL; i++) {
    if (i) strncat(buf, sep, n - strlen(buf) - 1);
    strncat(buf, c, n - strlen(buf) - 1);
  }
}

/* s against the option's choices: GFV_OK when it is one, else the message that lists them. */
static int check_choice(const option *o, const char *s, const char *where) {
  const char *c;
  if (o->accept && o->accept(s)) return GFV_OK;
  for (size_t i = 0; !o->accept && (c = gfv_option_choice(o, i)) != NULL; i++)
    if (strcmp(s, c) == 0) return GFV_OK;
  char list[256];
  gfv_option_join_choices(o, ", ", list, sizeof list);
  GFV_ERROR(GFV_ERR_USAGE, "%s: '%s' is not one of %s", where, s, list);
}

static int set_choice(char *dst, const option *o, const char *s, const char *where) {
  GFV_CALL(check_choice(o, s, where));
  strcpy(dst, s); /* every choice fits: checked by the defaults test */
  return GFV_OK;
}

/* Parses value for option o into cfg; where prefixes every message ("--step",
 * "run.cfg:5: step").  cfg is left unchanged on failure. */
int gfv_option_set_value(gfv_config *cfg, const option *o, const char *value, const char *where) {
  void *dst = field_of(cfg, o);
  GFV_CHECK(value, GFV_ERR_USAGE, "%s: missing value", where);
  switch (o->type) {
  case OPT_STRING: {
    size_t len = strlen(value);
    GFV_CHECK(len < o->size, GFV_ERR_USAGE, "%s: value too long (%zu characters, at most %zu)",
              where, len, o->size - 1);
    memcpy(dst, value, len + 1);
    return GFV_OK;
  }
  case OPT_CHOICE: return set_choice(dst, o, value, where);
  case OPT_LONG: {
    long v = 0;
    GFV_CALL(parse_long(value, where, &v));
    GFV_CALL(check_range(o, (double)v, value, where));
    *(long *)dst = v;
    return GFV_OK;
  }
  case OPT_DOUBLE: {
    double v = 0;
    GFV_CALL(parse_double(value, where, &v));
    GFV_CALL(check_range(o, v, value, where));
    *(double *)dst = v;
    return GFV_OK;
  }
  case OPT_BOOL: {
    int v;
    GFV_CHECK(gfv_option_bool_word(value, &v), GFV_ERR_USAGE,
              "%s: '%s' is not a boolean (use true/false, yes/no, on/off or 1/0)", where, value);
    *(int *)dst = v;
    return GFV_OK;
  }
  }
  GFV_ERROR(GFV_ERR_INTERNAL, "%s: option with unknown type %d", where, (int)o->type);
}

void gfv_config_defaults(gfv_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  /* The defaults are text parsed by the same code as user values, so --help shows exactly
   * what is used; they cannot fail (tests/unit/test_options.c checks every field). */
  for (size_t i = 0; i < NOPTIONS; i++)
    (void)gfv_option_set_value(cfg, OPTION(i), OPTION(i)->def, OPTION(i)->name);
}

int gfv_config_create(gfv_config **out) {
  gfv_config *cfg;
  *out = NULL;
  GFV_ALLOC(cfg, 1);
  gfv_config_defaults(cfg);
  *out = cfg;
  return GFV_OK;
}

void gfv_config_destroy(gfv_config *cfg) { free(cfg); }

/* origin says where the value came from.  An option spelling ("--step") already names the
 * option; anything else (a "file:line") is followed by the option's name. */
int gfv_config_set(gfv_config *cfg, const char *name, const char *value, const char *origin) {
  const option *o = gfv_option_find(name, strlen(name));
  if (!o) {
    if (!origin || origin[0] == '-')
      GFV_ERROR(GFV_ERR_USAGE, "unknown option '--%s' (see --help)", name);
    GFV_ERROR(GFV_ERR_USAGE, "%s: unknown option '%s'", origin, name);
  }
  char where[GFV_PATH_MAX + 2 * GFV_NAME_MAX];
  if (!origin) snprintf(where, sizeof where, "--%s", o->name);
  else if (origin[0] == '-') snprintf(where, sizeof where, "%s", origin);
  else snprintf(where, sizeof where, "%s: %s", origin, o->name);
  GFV_CALL(gfv_option_set_value(cfg, o, value, where));
  gfv_option_mark_given(cfg, o);
  return GFV_OK;
}


/* A string value that line_value reads back only when written in quotes. */
int gfv_option_needs_quotes(const char *s) {
  size_t n = strlen(s);
  return n > 0 && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]) ||
                   s[0] == '"' || strchr(s, '#'));
}

/* A string value no config file can hold, since the reader has no escapes: a newline ends
 * the line, and a double quote ends a quoted value.  Checked when the command line is
 * parsed, so that a run never learns at its first checkpoint that it cannot write one. */
int gfv_option_check_writable(const option *o, const char *v) {
  GFV_CHECK(!strchr(v, '\n'), GFV_ERR_USAGE,
            "--%s: the value contains a newline, which a config file or checkpoint cannot "
            "hold; choose another value", o->name);
  GFV_CHECK(!(gfv_option_needs_quotes(v) && strchr(v, '"')), GFV_ERR_USAGE,
            "--%s: the value contains a double quote and needs quotes itself ('#', or a blank "
            "or quote at either end), which a config file or checkpoint cannot hold; choose "
            "another value", o->name);
  return GFV_OK;
}

/* Checks that need more than one value or that the table cannot express. */
static int check_combinations(const gfv_config *cfg) {
  GFV_CHECK(cfg->target[0], GFV_ERR_USAGE, "--target: must not be empty");
  GFV_CHECK(cfg->out[0], GFV_ERR_USAGE, "--out: must not be empty");
  for (size_t i = 0; i < NOPTIONS; i++)
    if (OPTION(i)->type == OPT_STRING && OPTION(i)->role != ROLE_NONE)
      GFV_CALL(gfv_option_check_writable(OPTION(i), gfv_option_cfield(cfg, OPTION(i))));
  /* K S sample points exist on every rank; the product must at least be representable. */
  GFV_CHECK(cfg->particles <= (long)((size_t)-1 / 2 / sizeof(double)) / cfg->samples,
            GFV_ERR_USAGE, "--particles x --samples = %ld x %ld is too large", cfg->particles,
            cfg->samples);
  return GFV_OK;
}

/* The value of o already in cfg against the same rules as gfv_option_set_value: a program
 * that fills the struct directly (the library's callers) gets the parser's checks and messages. */
static int check_field(const gfv_config *cfg, const option *o) {
  const void *v = gfv_option_cfield(cfg, o);
  char where[2 * GFV_NAME_MAX], text[64];
  snprintf(where, sizeof where, "--%s", o->name);
  switch (o->type) {
  case OPT_STRING:
  case OPT_CHOICE:
    GFV_CHECK(memchr(v, '\0', o->size), GFV_ERR_USAGE, "%s: value not terminated within %zu bytes",
              where, o->size);
    return o->type == OPT_CHOICE ? check_choice(o, (const char *)v, where) : GFV_OK;
  case OPT_LONG:
    snprintf(text, sizeof text, "%ld", *(const long *)v);
    return check_range(o, (double)*(const long *)v, text, where);
  case OPT_DOUBLE: {
    const double x = *(const double *)v;
    snprintf(text, sizeof text, "%g", x);
    GFV_CHECK(isfinite(x), GFV_ERR_USAGE, "%s: '%s' is not a finite number", where, text);
    return check_range(o, x, text, where);
  }
  case OPT_BOOL: {
    const int b = *(const int *)v;
    GFV_CHECK(b == 0 || b == 1, GFV_ERR_USAGE, "%s: %d is not a boolean (0 or 1)", where, b);
    return GFV_OK;
  }
  }
  GFV_ERROR(GFV_ERR_INTERNAL, "%s: option with unknown type %d", where, (int)o->type);
}

int gfv_config_check(const gfv_config *cfg) {
  GFV_CHECK(NOPTIONS <= GFV_OPTIONS_MAX, GFV_ERR_INTERNAL,
            "%zu options, but gfv_config.given holds %d: raise GFV_OPTIONS_MAX", NOPTIONS,
            GFV_OPTIONS_MAX);
  for (size_t i = 0; i < NOPTIONS; i++) GFV_CALL(check_field(cfg, OPTION(i)));
  GFV_CALL(check_combinations(cfg));
  return GFV_OK;
}

const char *gfv_option_value_text(const gfv_config *cfg, const option *o, char *buf, size_t n) {
  const void *v = gfv_option_cfield(cfg, o);
  switch (o->type) {
  case OPT_STRING:
  case OPT_CHOICE: return (const char *)v;
  case OPT_LONG: snprintf(buf, n, "%ld", *(const long *)v); break;
  case OPT_DOUBLE: {
    const double x = *(const double *)v;
    char t[40];
    buf[0] = '\0';
    for (int prec = 17; prec >= 1; prec--) { /* ties go to the fewer digits */
      snprintf(t, sizeof t, "%.*g", prec, x);
      if (strtod(t, NULL) == x && (!buf[0] || strlen(t) <= strlen(buf))) snprintf(buf, n, "%s", t);
    }
    break;
  }
  case OPT_BOOL: return *(const int *)v ? "true" : "false";
  }
  return buf;
}

int gfv_config_given(const gfv_config *cfg, const char *name) {
  const option *o = gfv_option_find(name, strlen(name));
  return o ? is_given(cfg, gfv_option_index(o)) : 0;
}

int gfv_config_merge_restart(gfv_config *cfg, const gfv_config *ck, const char *path) {
  char diff[1024] = "";
  size_t used = 0;
  for (size_t i = 0; i < NOPTIONS; i++) {
    const option *o = OPTION(i);
    if (o->role == ROLE_NONE || (o->role == ROLE_RUN && is_given(cfg, i))) continue;
    char a[64], b[64];
    const char *mine = gfv_option_value_text(cfg, o, a, sizeof a);
    const char *theirs = gfv_option_value_text(ck, o, b, sizeof b);
    if (o->role == ROLE_PROBLEM && is_given(cfg, i) && strcmp(mine, theirs) != 0) {
      if (used < sizeof diff) /* a long list is cut at the message's length anyway */
        used += (size_t)snprintf(diff + used, sizeof diff - used, "%s--%s=%s (checkpoint: %s)",
                                 used ? ", " : "", o->name, mine[0] ? mine : "''",
                                 theirs[0] ? theirs : "''");
      continue;
    }
    memcpy(field_of(cfg, o), gfv_option_cfield(ck, o), o->size);
  }
  GFV_CHECK(!diff[0], GFV_ERR_USAGE,
            "--restart=%s: the checkpoint's problem differs: %s; these options define the "
            "problem and cannot change on restart", path, diff);
  GFV_CALL(gfv_config_check(cfg));
  return GFV_OK;
}
