/* options.c - the command line and config files, --help, and the echo of the resolved
 * configuration (text, JSON, and the config text of checkpoints).
 *
 * The rows are not here: each module defines its own options next to its code (a
 * gfv_option_table, src/core/optdef.h) and src/core/option_registry.c lists the tables;
 * checking and setting a value is src/core/config.c's (shared with the library).  Adding an
 * option means adding a row to its module's table (and the field to gfv_config); parsing,
 * validation, help and both echoes follow from the row. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "targets/registry.h"

/* --config belongs to the parser itself. */
static const gfv_option cli_options[] = {
    {.name = "config", .type = OPT_STRING, OPT_FIELD(config), .metavar = "FILE", .def = "",
     .role = ROLE_NONE,
     .help = "read options from FILE ('name = value' lines, '#' comments) before the "
             "command line, which overrides them"},
};
GFV_OPTION_TABLE(gfv_options_cli, cli_options);

typedef gfv_option option;
#define NOPTIONS gfv_option_count()
#define OPTION(i) gfv_option_at(i)

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
  const option *o = gfv_option_find(name, strlen(name));
  GFV_CHECK(o, GFV_ERR_USAGE, "%s:%ld: unknown option '%s'", path, lineno, name);
  /* A config file naming another would make the precedence order unclear. */
  GFV_CHECK(strcmp(o->name, "config") != 0, GFV_ERR_USAGE,
            "%s:%ld: 'config' cannot be set inside a config file", path, lineno);
  char where[GFV_PATH_MAX + 2 * GFV_NAME_MAX];
  snprintf(where, sizeof where, "%s:%ld: %s", path, lineno, o->name);
  GFV_CALL(gfv_option_set_value(cfg, o, value, where));
  gfv_option_mark_given(cfg, o);
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
    /* A UTF-8 byte-order mark (Windows editors) would be read into the first name, as
     * "unknown option '\xEF\xBB\xBFiters'"; the CSV reader skips it too. */
    char *text = line;
    if (lineno == 0 && strncmp(text, "\xEF\xBB\xBF", 3) == 0) text += 3;
    GFV_CALL_GOTO(st, config_line(cfg, path, ++lineno, text), done);
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
  const option *o = gfv_option_find(name, len);
  if (!o) GFV_ERROR(GFV_ERR_USAGE, "unknown option '--%.*s' (see --help)", (int)len, name);
  snprintf(where, wsize, "--%.*s", (int)len, name);
  *opt = o;
  if (eq) {
    *value = eq + 1;
  } else if (o->type == OPT_BOOL) {
    /* "--quiet" alone means true; "--quiet no" also works, since no bare words are
     * accepted anywhere else. */
    int b;
    *value = *i < argc && gfv_option_bool_word(argv[*i], &b) ? argv[(*i)++] : "true";
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
    GFV_CALL(gfv_option_set_value(cfg, o, value, where));
    gfv_option_mark_given(cfg, o);
  }
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

static void print_value(FILE *out, const gfv_config *cfg, const option *o) {
  char buf[64];
  fputs(gfv_option_value_text(cfg, o, buf, sizeof buf), out);
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
    const char *v = gfv_option_value_text(cfg, o, buf, sizeof buf);
    if (o->type == OPT_STRING) GFV_CALL(gfv_option_check_writable(o, v));
    fprintf(out, gfv_option_needs_quotes(v) ? "%s = \"%s\"\n" : "%s = %s\n", o->name, v);
  }
  return GFV_OK;
}


/* Longs are printed exactly with %ld: through a double, a seed above 2^53 would change. */
static void json_value(FILE *out, const gfv_config *cfg, const option *o) {
  const void *v = gfv_option_cfield(cfg, o);
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
  case OPT_CHOICE: gfv_option_join_choices(o, "|", type, sizeof type); break;
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
