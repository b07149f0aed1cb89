/* options.c - everything the option rows drive: defaults, the command line, config files,
 * validation (gfv_config_check, shared with the library), --help, and the echo of the
 * resolved configuration (text and JSON).
 *
 * The rows are not here: each module defines its own options next to its code (a
 * gfv_option_table, src/core/optdef.h) and src/cli/option_tables.c lists the tables.
 * Adding an option means adding a row to its module's table (and the field to
 * gfv_config); parsing, validation, help and both echoes follow from the row. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "core/optdef.h"
#include "targets/registry.h"

/* --config belongs to the parser itself. */
static const gfv_option cli_options[] = {
    {.name = "config", .type = OPT_STRING, GFV_OPTION_FIELD(config), .metavar = "FILE", .def = "",
     .role = ROLE_NONE,
     .help = "read options from FILE ('name = value' lines, '#' comments) before the "
             "command line, which overrides them"},
};
GFV_OPTION_TABLE(gfv_options_cli, cli_options);

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

static const option *find_option(const char *given, size_t len) {
  for (size_t i = 0; i < NOPTIONS; i++)
    if (name_matches(OPTION(i)->name, given, len)) return OPTION(i);
  return NULL;
}

static size_t index_of(const option *o) {
  size_t i = 0;
  while (OPTION(i) && OPTION(i) != o) i++;
  return i;
}

static void *field_of(gfv_config *cfg, const option *o) { return (char *)cfg + o->offset; }

static const void *cfield_of(const gfv_config *cfg, const option *o) {
  return (const char *)cfg + o->offset;
}

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
static int bool_word(const char *s, int *out) {
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

static void join_choices(const option *o, const char *sep, char *buf, size_t n) {
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
  for (size_t i = 0; (c = gfv_option_choice(o, i)) != NULL; i++)
    if (strcmp(s, c) == 0) return GFV_OK;
  char list[256];
  join_choices(o, ", ", list, sizeof list);
  GFV_ERROR(GFV_ERR_USAGE, "%s: '%s' is not one of %s", where, s, list);
}

static int set_choice(char *dst, const option *o, const char *s, const char *where) {
  GFV_CALL(check_choice(o, s, where));
  strcpy(dst, s); /* every choice fits: checked by the defaults test */
  return GFV_OK;
}

/* Parses value for option o into cfg; where prefixes every message ("--step",
 * "run.cfg:5: step").  cfg is left unchanged on failure. */
static int set_value(gfv_config *cfg, const option *o, const char *value, const char *where) {
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
    GFV_CHECK(bool_word(value, &v), GFV_ERR_USAGE,
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
    (void)set_value(cfg, OPTION(i), OPTION(i)->def, OPTION(i)->name);
}

/* origin says where the value came from.  An option spelling ("--step") already names the
 * option; anything else (a "file:line") is followed by the option's name. */
int gfv_config_set(gfv_config *cfg, const char *name, const char *value, const char *origin) {
  const option *o = find_option(name, strlen(name));
  if (!o) {
    if (!origin || origin[0] == '-')
      GFV_ERROR(GFV_ERR_USAGE, "unknown option '--%s' (see --help)", name);
    GFV_ERROR(GFV_ERR_USAGE, "%s: unknown option '%s'", origin, name);
  }
  char where[GFV_PATH_MAX + 2 * GFV_NAME_MAX];
  if (!origin) snprintf(where, sizeof where, "--%s", o->name);
  else if (origin[0] == '-') snprintf(where, sizeof where, "%s", origin);
  else snprintf(where, sizeof where, "%s: %s", origin, o->name);
  GFV_CALL(set_value(cfg, o, value, where));
  cfg->given[index_of(o)] = 1;
  return GFV_OK;
}

/* ---- config files ------------------------------------------------------------------ */

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  return s;
}

/* The value part of a line, in place: either "quoted" (for values with '#' or edge
 * spaces) or bare, where '#' at the start or after a blank begins a comment.  NULL for an
 * unterminated quote or text after the closing quote. */
static char *line_value(char *v) {
  v = trim(v);
  if (*v == '"') {
    char *close = strchr(v + 1, '"');
    if (!close) return NULL;
    *close = '\0';
    char *rest = trim(close + 1);
    return *rest == '\0' || *rest == '#' ? v + 1 : NULL;
  }
  for (char *p = v; *p; p++)
    if (*p == '#' && (p == v || isspace((unsigned char)p[-1]))) {
      *p = '\0';
      break;
    }
  return trim(v);
}

/* A string value that line_value reads back only when written in quotes. */
static int needs_quotes(const char *s) {
  size_t n = strlen(s);
  return n > 0 && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]) ||
                   s[0] == '"' || strchr(s, '#'));
}

/* A string value no config file can hold, since the reader has no escapes: a newline ends
 * the line, and a double quote ends a quoted value.  Checked when the command line is
 * parsed, so that a run never learns at its first checkpoint that it cannot write one. */
static int check_writable(const option *o, const char *v) {
  GFV_CHECK(!strchr(v, '\n'), GFV_ERR_USAGE,
            "--%s: the value contains a newline, which a config file or checkpoint cannot "
            "hold; choose another value", o->name);
  GFV_CHECK(!(needs_quotes(v) && strchr(v, '"')), GFV_ERR_USAGE,
            "--%s: the value contains a double quote and needs quotes itself ('#', or a blank "
            "or quote at either end), which a config file or checkpoint cannot hold; choose "
            "another value", o->name);
  return GFV_OK;
}

static int config_line(gfv_config *cfg, const char *path, long lineno, char *line) {
  char *s = trim(line);
  if (*s == '\0' || *s == '#') return GFV_OK;
  char *eq = strchr(s, '=');
  GFV_CHECK(eq, GFV_ERR_USAGE, "%s:%ld: expected 'name = value'", path, lineno);
  *eq = '\0';
  char *name = trim(s), *value = line_value(eq + 1);
  GFV_CHECK(*name, GFV_ERR_USAGE, "%s:%ld: expected 'name = value'", path, lineno);
  GFV_CHECK(value, GFV_ERR_USAGE, "%s:%ld: %s: unterminated quote or text after the closing quote",
            path, lineno, name);
  const option *o = find_option(name, strlen(name));
  GFV_CHECK(o, GFV_ERR_USAGE, "%s:%ld: unknown option '%s'", path, lineno, name);
  /* A config file naming another would make the precedence order unclear. */
  GFV_CHECK(strcmp(o->name, "config") != 0, GFV_ERR_USAGE,
            "%s:%ld: 'config' cannot be set inside a config file", path, lineno);
  char where[GFV_PATH_MAX + 2 * GFV_NAME_MAX];
  snprintf(where, sizeof where, "%s:%ld: %s", path, lineno, o->name);
  GFV_CALL(set_value(cfg, o, value, where));
  cfg->given[index_of(o)] = 1;
  return GFV_OK;
}

int gfv_config_read_stream(gfv_config *cfg, FILE *f, const char *path) {
  char *line = NULL;
  size_t cap = 0;
  long lineno = 0;
  int st = GFV_OK;
  ssize_t len;
  /* A directory opens fine and fails at the first read with EISDIR. */
  for (;;) {
    GFV_CALL_GOTO(st, gfv_read_line(f, &line, &cap, &len, "config file ", path, lineno), done);
    if (len < 0) break;
    /* A NUL byte would silently cut the line short (or blank it): not a text file. */
    if (memchr(line, '\0', (size_t)len))
      GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "%s:%ld: contains a NUL byte (not a text file?)",
                     path, lineno + 1);
    GFV_CALL_GOTO(st, config_line(cfg, path, ++lineno, line), done);
  }
done:
  free(line);
  return st;
}

int gfv_config_read_file(gfv_config *cfg, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) GFV_ERROR(GFV_ERR_INPUT, "cannot open config file '%s': %s", path, strerror(errno));
  int st = gfv_config_read_stream(cfg, f, path);
  fclose(f);
  GFV_CALL(st);
  return GFV_OK;
}

int gfv_config_read_text(gfv_config *cfg, const char *text, const char *name) {
  size_t n = strlen(text);
  if (n == 0) return GFV_OK; /* fmemopen refuses an empty buffer */
  char *copy = strdup(text); /* fmemopen wants a writable buffer */
  GFV_CHECK(copy, GFV_ERR_MEMORY, "out of memory reading the configuration of %s", name);
  FILE *f = fmemopen(copy, n, "r");
  if (!f) {
    free(copy);
    GFV_ERROR(GFV_ERR_MEMORY, "cannot read the configuration of %s: %s", name, strerror(errno));
  }
  int st = gfv_config_read_stream(cfg, f, name);
  fclose(f);
  free(copy);
  return st;
}

/* ---- command line ------------------------------------------------------------------ */

static int is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }

/* Splits argv[*i] (and, for "--name value", argv[*i + 1]) into an option and its value and
 * advances *i.  where receives the option as typed, for messages.  *value is NULL when a
 * value is missing. */
static int next_arg(int argc, char **argv, int *i, const option **opt, const char **value,
                    char *where, size_t wsize) {
  const char *a = argv[(*i)++];
  if (a[0] != '-')
    GFV_ERROR(GFV_ERR_USAGE, "unexpected argument '%s' (options take the form --name=value)", a);
  if (a[1] != '-') GFV_ERROR(GFV_ERR_USAGE, "unknown option '%s' (see --help)", a);
  const char *name = a + 2, *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  const option *o = find_option(name, len);
  if (!o) GFV_ERROR(GFV_ERR_USAGE, "unknown option '--%.*s' (see --help)", (int)len, name);
  snprintf(where, wsize, "--%.*s", (int)len, name);
  *opt = o;
  if (eq) {
    *value = eq + 1;
  } else if (o->type == OPT_BOOL) {
    /* "--quiet" alone means true; "--quiet no" also works, since no bare words are
     * accepted anywhere else. */
    int b;
    *value = *i < argc && bool_word(argv[*i], &b) ? argv[(*i)++] : "true";
  } else {
    /* "--out --step=1" is a forgotten value, not a directory named "--step=1". */
    int has = *i < argc && strncmp(argv[*i], "--", 2) != 0;
    *value = has ? argv[(*i)++] : NULL;
  }
  return GFV_OK;
}

/* Applies the command line to cfg; with only_config, just --config (the first pass). */
static int apply_argv(gfv_config *cfg, int argc, char **argv, int only_config) {
  for (int i = 1; i < argc;) {
    const option *o = NULL;
    const char *value = NULL;
    char where[2 * GFV_NAME_MAX];
    GFV_CALL(next_arg(argc, argv, &i, &o, &value, where, sizeof where));
    if (only_config && strcmp(o->name, "config") != 0) continue;
    GFV_CALL(set_value(cfg, o, value, where));
    cfg->given[index_of(o)] = 1;
  }
  return GFV_OK;
}

/* Checks that need more than one value or that the table cannot express. */
static int check_combinations(const gfv_config *cfg) {
  GFV_CHECK(cfg->target[0], GFV_ERR_USAGE, "--target: must not be empty");
  GFV_CHECK(cfg->out[0], GFV_ERR_USAGE, "--out: must not be empty");
  for (size_t i = 0; i < NOPTIONS; i++)
    if (OPTION(i)->type == OPT_STRING && OPTION(i)->role != ROLE_NONE)
      GFV_CALL(check_writable(OPTION(i), cfield_of(cfg, OPTION(i))));
  /* K S sample points exist on every rank; the product must at least be representable. */
  GFV_CHECK(cfg->particles <= (long)((size_t)-1 / 2 / sizeof(double)) / cfg->samples,
            GFV_ERR_USAGE, "--particles x --samples = %ld x %ld is too large", cfg->particles,
            cfg->samples);
  return GFV_OK;
}

/* The value of o already in cfg against the same rules as set_value: a program that fills
 * the struct directly (the library's callers) gets the parser's checks and messages. */
static int check_field(const gfv_config *cfg, const option *o) {
  const void *v = cfield_of(cfg, o);
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

int gfv_config_parse(gfv_config *cfg, int argc, char **argv, int *want_help) {
  *want_help = 0;
  gfv_config_defaults(cfg);
  for (int i = 1; i < argc; i++)
    if (is_help(argv[i])) {
      *want_help = 1;
      return GFV_OK;
    }
  /* The config file first, wherever --config appears, so the command line overrides it. */
  GFV_CALL(apply_argv(cfg, argc, argv, 1));
  if (cfg->config[0]) GFV_CALL(gfv_config_read_file(cfg, cfg->config));
  GFV_CALL(apply_argv(cfg, argc, argv, 0));
  GFV_CALL(gfv_config_check(cfg));
  return GFV_OK;
}

/* ---- output ------------------------------------------------------------------------ */

/* The value of o in cfg as text; numbers are formatted into buf (40 bytes at least).
 * Doubles take the shortest %g form that reads back as the same double (0.05, not
 * 0.05000000000000000278; 10, not 1e+01), so the text is exact and two values are equal
 * exactly when their texts are. */
static const char *value_text(const gfv_config *cfg, const option *o, char *buf, size_t n) {
  const void *v = cfield_of(cfg, o);
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

static void print_value(FILE *out, const gfv_config *cfg, const option *o) {
  char buf[64];
  fputs(value_text(cfg, o, buf, sizeof buf), out);
}

static int name_width(void) {
  size_t w = 0;
  for (size_t i = 0; i < NOPTIONS; i++)
    if (strlen(OPTION(i)->name) > w) w = strlen(OPTION(i)->name);
  return (int)w;
}

void gfv_config_print(FILE *out, const gfv_config *cfg, const char *prefix) {
  const int w = name_width();
  for (size_t i = 0; i < NOPTIONS; i++) {
    fprintf(out, "%s%-*s = ", prefix ? prefix : "", w, OPTION(i)->name);
    print_value(out, cfg, OPTION(i));
    fputc('\n', out);
  }
}

/* ---- restart ----------------------------------------------------------------------- */

int gfv_config_write(FILE *out, const gfv_config *cfg) {
  for (size_t i = 0; i < NOPTIONS; i++) {
    const option *o = OPTION(i);
    if (o->role == ROLE_NONE) continue;
    char buf[64];
    const char *v = value_text(cfg, o, buf, sizeof buf);
    if (o->type == OPT_STRING) GFV_CALL(check_writable(o, v));
    fprintf(out, needs_quotes(v) ? "%s = \"%s\"\n" : "%s = %s\n", o->name, v);
  }
  return GFV_OK;
}

int gfv_config_given(const gfv_config *cfg, const char *name) {
  const option *o = find_option(name, strlen(name));
  return o ? cfg->given[index_of(o)] : 0;
}

int gfv_config_merge_restart(gfv_config *cfg, const gfv_config *ck, const char *path) {
  char diff[1024] = "";
  size_t used = 0;
  for (size_t i = 0; i < NOPTIONS; i++) {
    const option *o = OPTION(i);
    if (o->role == ROLE_NONE || (o->role == ROLE_RUN && cfg->given[i])) continue;
    char a[64], b[64];
    const char *mine = value_text(cfg, o, a, sizeof a), *theirs = value_text(ck, o, b, sizeof b);
    if (o->role == ROLE_PROBLEM && cfg->given[i] && strcmp(mine, theirs) != 0) {
      if (used < sizeof diff) /* a long list is cut at the message's length anyway */
        used += (size_t)snprintf(diff + used, sizeof diff - used, "%s--%s=%s (checkpoint: %s)",
                                 used ? ", " : "", o->name, mine[0] ? mine : "''",
                                 theirs[0] ? theirs : "''");
      continue;
    }
    memcpy(field_of(cfg, o), cfield_of(ck, o), o->size);
  }
  GFV_CHECK(!diff[0], GFV_ERR_USAGE,
            "--restart=%s: the checkpoint's problem differs: %s; these options define the "
            "problem and cannot change on restart", path, diff);
  GFV_CALL(gfv_config_check(cfg));
  return GFV_OK;
}

/* Longs are printed exactly with %ld: through a double, a seed above 2^53 would change. */
static void json_value(FILE *out, const gfv_config *cfg, const option *o) {
  const void *v = cfield_of(cfg, o);
  switch (o->type) {
  case OPT_STRING:
  case OPT_CHOICE: gfv_json_string(out, (const char *)v); break;
  case OPT_LONG: fprintf(out, "%ld", *(const long *)v); break;
  case OPT_DOUBLE: gfv_json_number(out, *(const double *)v); break;
  case OPT_BOOL: fputs(*(const int *)v ? "true" : "false", out); break;
  }
}

void gfv_config_print_json(FILE *out, const gfv_config *cfg, int indent) {
  for (size_t i = 0; i < NOPTIONS; i++) {
    fprintf(out, "%*s", indent > 0 ? indent : 0, "");
    gfv_json_string(out, OPTION(i)->name);
    fputs(": ", out);
    json_value(out, cfg, OPTION(i));
    if (i + 1 < NOPTIONS) fputs(",\n", out);
  }
}

/* A space that print_wrapped never breaks at ("(default: 10000)" stays on one line). */
#define NBSP '\x1f'

/* Writes text word-wrapped to width columns; the cursor is at column col, and continuation
 * lines are indented to indent. */
static void print_wrapped(FILE *out, const char *text, int col, int indent, int width) {
  const char *p = text;
  while (*p) {
    while (*p == ' ') p++;
    size_t n = strcspn(p, " ");
    if (n == 0) break;
    if (col > indent && col + 1 + (int)n > width) {
      fprintf(out, "\n%*s", indent, "");
      col = indent;
    } else if (col > indent) {
      fputc(' ', out);
      col++;
    }
    for (size_t k = 0; k < n; k++) fputc(p[k] == NBSP ? ' ' : p[k], out);
    col += (int)n;
    p += n;
  }
  fputc('\n', out);
}

/* "--name=TYPE" as shown in --help. */
static void option_synopsis(const option *o, char *buf, size_t n) {
  char type[256];
  switch (o->type) {
  case OPT_STRING: snprintf(type, sizeof type, "%s", o->metavar); break;
  case OPT_LONG: snprintf(type, sizeof type, "INT"); break;
  case OPT_DOUBLE: snprintf(type, sizeof type, "NUM"); break;
  case OPT_BOOL: snprintf(type, sizeof type, "BOOL"); break;
  case OPT_CHOICE: join_choices(o, "|", type, sizeof type); break;
  }
  snprintf(buf, n, "--%s=%s", o->name, type);
}

static const char help_intro[] =
    "gflowvi fits a mixture of K Gaussians to a target density by a Wasserstein gradient "
    "flow over the variational parameters (means and covariances, or precisions): "
    "GFlow-VI, or its natural-gradient form NGFlow-VI. Run it with mpirun -np P; the K "
    "particles (mixture components) are sharded over the P ranks. Options are read from "
    "--config=FILE first, then from the command line; --name value also works.";

static const char help_outputs[] =
    "Outputs (in --out):\n"
    "  summary.json   ELBO, KL (normalized targets), timings, the resolved configuration\n"
    "  mixture.csv    weight, mean and covariance of every component\n"
    "  trace.csv      ELBO, its standard error, step norm and step size per iteration\n"
    "  samples.csv    --out-samples draws from the fitted mixture\n"
    "  draws.csv      the same draws as the model's named quantities, with lp__ and lq__\n"
    "  posterior.nc   the draws for ArviZ (netCDF-4 groups posterior and sample_stats)\n"
    "  draws_psis.csv --resample=psis: the draws resampled by their PSIS weights\n"
    "  predictions.csv --predict: predictive mean, sd and quantiles per row\n"
    "  density.csv    target and mixture log densities on a grid (2-D targets only)\n"
    "\n"
    "Exit status: 0 ok, 2 usage, 3 input, 4 numerical, 5 output, 6 mpi, 7 memory, 8 internal\n";

void gfv_config_print_help(FILE *out, const char *prog) {
  enum { WIDTH = 100 };
  char syn[GFV_NAME_MAX + 256], text[1024];
  int col = 0;
  for (size_t i = 0; i < NOPTIONS; i++) {
    option_synopsis(OPTION(i), syn, sizeof syn);
    if ((int)strlen(syn) > col) col = (int)strlen(syn);
  }
  col += 5; /* two spaces before, at least three after */
  fprintf(out, "usage: %s [--config=FILE] [--OPTION=VALUE ...]\n\n", prog ? prog : "gflowvi");
  print_wrapped(out, help_intro, 0, 0, WIDTH);
  fprintf(out, "\nOptions:\n");
  for (size_t i = 0; i < NOPTIONS; i++) {
    const option *o = OPTION(i);
    option_synopsis(o, syn, sizeof syn);
    snprintf(text, sizeof text, "%s (default:%c%s)", o->help, NBSP, o->def[0] ? o->def : "none");
    fprintf(out, "  %-*s", col - 2, syn);
    print_wrapped(out, text, col, col, WIDTH);
  }
  /* The targets from their registry (src/targets/target_list.h), one entry each. */
  fprintf(out, "\nTargets (--target=SPEC):\n");
  const gfv_target_type *tt;
  int tcol = 0;
  for (size_t i = 0; (tt = gfv_target_type_at(i)) != NULL; i++)
    if ((int)strlen(tt->synopsis) > tcol) tcol = (int)strlen(tt->synopsis);
  tcol += 3;
  for (size_t i = 0; (tt = gfv_target_type_at(i)) != NULL; i++) {
    fprintf(out, "  %-*s", tcol - 2, tt->synopsis);
    print_wrapped(out, tt->help, tcol, tcol, WIDTH);
  }
  fprintf(out, "\n%s", help_outputs);
}
