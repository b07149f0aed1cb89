/* test_options.c - the option table: defaults, command line and config files, every
 * error message, --help, and the text and JSON echoes of the configuration. */
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "harness.h"



/* The number of options, from --help (one "  --name=TYPE" line each), so that the echo
 * and JSON tests follow the table as options are added. */
static int count_options(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  gfv_config_print_help(f, "gflowvi");
  fclose(f);
  int n = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    if (strncmp(line, "  --", 4) == 0 && strcspn(line + 4, "= ") < strcspn(line + 4, " "))
      n++; /* the first word is --name=TYPE (not "--help") */
  free(text);
  return n;
}
#define NOPT count_options()

static char tmpdir[64];

/* ---- helpers ---------------------------------------------------------------------- */

/* Parses the NULL-terminated arguments (argv[0] is added). */
static int parse(gfv_config *cfg, int *help, ...) {
  char *argv[64];
  int argc = 0;
  va_list ap;
  va_start(ap, help);
  argv[argc++] = "gflowvi";
  for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 63;) argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  gfv_error_clear();
  return gfv_config_parse(cfg, argc, argv, help);
}

/* Writes text to tmpdir/name; returns the path in a static buffer (one at a time). */
static const char *write_file(const char *name, const char *text) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  if (!f) return NULL;
  fputs(text, f);
  fclose(f);
  return path;
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* Runs one printer into a string (caller frees). */
typedef struct {
  char *buf;
  size_t len;
  FILE *f;
} capture;

static FILE *capture_begin(capture *c) {
  c->buf = NULL, c->len = 0;
  c->f = open_memstream(&c->buf, &c->len);
  return c->f;
}

static char *capture_end(capture *c) {
  fclose(c->f);
  return c->buf;
}

/* ---- a minimal JSON reader: an object of scalar members, strictly by the grammar ---- */

typedef struct {
  char key[64];
  char kind; /* 's' string, 'n' number, 't' true, 'f' false, 'z' null */
  char str[256];
  double num;
} jmember;

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
  return p;
}

static const char *json_str(const char *p, char *out, size_t n) {
  size_t k = 0;
  if (*p++ != '"') return NULL;
  for (; *p != '"'; p++) {
    char c = *p;
    if (c == '\0' || (unsigned char)c < 0x20) return NULL; /* raw controls are invalid */
    if (c == '\\') {
      p++;
      switch (*p) {
      case '"': c = '"'; break;
      case '\\': c = '\\'; break;
      case '/': c = '/'; break;
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'u': {
        unsigned v;
        if (sscanf(p + 1, "%4x", &v) != 1 || v >= 0x80) return NULL;
        c = (char)v;
        p += 4;
        break;
      }
      default: return NULL;
      }
    }
    if (k + 1 >= n) return NULL;
    out[k++] = c;
  }
  out[k] = '\0';
  return p + 1;
}

static const char *json_num(const char *p, double *out) {
  const char *s = p;
  if (*p == '-') p++;
  if (*p == '0') p++;
  else if (*p >= '1' && *p <= '9') while (*p >= '0' && *p <= '9') p++;
  else return NULL;
  if (*p == '.') {
    if (!(*++p >= '0' && *p <= '9')) return NULL;
    while (*p >= '0' && *p <= '9') p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (!(*p >= '0' && *p <= '9')) return NULL;
    while (*p >= '0' && *p <= '9') p++;
  }
  *out = strtod(s, NULL);
  return p;
}

/* Parses "{ members }"; returns the member count, or -1 when the text is not valid JSON. */
static int json_object(const char *p, jmember *m, int max) {
  int n = 0;
  p = skip_ws(p);
  if (*p++ != '{') return -1;
  p = skip_ws(p);
  if (*p == '}') return *skip_ws(p + 1) ? -1 : 0;
  for (;;) {
    if (n >= max) return -1;
    jmember *x = &m[n++];
    if (!(p = json_str(skip_ws(p), x->key, sizeof x->key))) return -1;
    p = skip_ws(p);
    if (*p++ != ':') return -1;
    p = skip_ws(p);
    if (*p == '"') {
      x->kind = 's';
      p = json_str(p, x->str, sizeof x->str);
    } else if (strncmp(p, "true", 4) == 0) {
      x->kind = 't', p += 4;
    } else if (strncmp(p, "false", 5) == 0) {
      x->kind = 'f', p += 5;
    } else if (strncmp(p, "null", 4) == 0) {
      x->kind = 'z', p += 4;
    } else {
      x->kind = 'n';
      p = json_num(p, &x->num);
    }
    if (!p) return -1;
    p = skip_ws(p);
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p++ != '}') return -1;
    return *skip_ws(p) ? -1 : n;
  }
}

static const jmember *jget(const jmember *m, int n, const char *key) {
  for (int i = 0; i < n; i++)
    if (strcmp(m[i].key, key) == 0) return &m[i];
  return NULL;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_defaults(void) {
  gfv_config c;
  int help = 7;
  CHECK(parse(&c, &help, NULL) == GFV_OK, "no arguments must parse: %s", gfv_error_message());
  CHECK(help == 0, "want_help %d", help);
  CHECK(strcmp(c.config, "") == 0, "config '%s'", c.config);
  CHECK(strcmp(c.target, "gmm4") == 0, "target '%s'", c.target);
  CHECK(c.dim == 0, "dim %ld", c.dim);
  CHECK(strcmp(c.flow, "ngflow") == 0, "flow '%s'", c.flow);
  CHECK(strcmp(c.estimator, "auto") == 0, "estimator '%s'", c.estimator);
  CHECK(strcmp(c.update, "retraction") == 0, "update '%s'", c.update);
  CHECK(c.particles == 20, "particles %ld", c.particles);
  CHECK(c.samples == 10, "samples %ld", c.samples);
  CHECK(c.step == 0.05, "step %g", c.step);
  CHECK(c.weight_step == 0, "weight_step %g", c.weight_step);
  CHECK(c.iters == 1000, "iters %ld", c.iters);
  CHECK(c.tol == 0, "tol %g", c.tol);
  CHECK(c.seed == 1, "seed %ld", c.seed);
  CHECK(c.init_scale == 3, "init_scale %g", c.init_scale);
  CHECK(c.init_var == 1, "init_var %g", c.init_var);
  CHECK(strcmp(c.out, "gflowvi-out") == 0, "out '%s'", c.out);
  CHECK(c.out_samples == 10000, "out_samples %ld", c.out_samples);
  CHECK(c.eval_samples == 100000, "eval_samples %ld", c.eval_samples);
  CHECK(c.progress_every == 100, "progress_every %ld", c.progress_every);
  CHECK(c.max_retries == 10, "max_retries %ld", c.max_retries);
  CHECK(c.quiet == 0, "quiet %d", c.quiet);
  gfv_config d;
  memset(&d, 0xff, sizeof d);
  gfv_config_defaults(&d);
  CHECK(d.particles == 20 && strcmp(d.flow, "ngflow") == 0 && d.init_var == 1,
        "gfv_config_defaults must fill every field");
}

static void test_both_forms(void) {
  gfv_config c;
  int help;
  int st = parse(&c, &help, "--particles=7", "--samples", "3", "--step=0.125", "--flow", "gflow",
                 "--target=banana", "--weight-step", "0.5", "--dim", "12", "--init-scale=-0",
                 "--out", "res dir", "--estimator=stein", "--update", "plain", NULL);
  CHECK(st == GFV_OK, "status %d: %s", st, gfv_error_message());
  CHECK(c.particles == 7 && c.samples == 3, "particles %ld samples %ld", c.particles, c.samples);
  CHECK(c.step == 0.125 && c.weight_step == 0.5, "step %g weight_step %g", c.step, c.weight_step);
  CHECK(strcmp(c.flow, "gflow") == 0 && strcmp(c.target, "banana") == 0, "flow %s target %s",
        c.flow, c.target);
  CHECK(c.dim == 12 && c.init_scale == 0, "dim %ld init_scale %g", c.dim, c.init_scale);
  CHECK(strcmp(c.out, "res dir") == 0, "out '%s'", c.out);
  CHECK(strcmp(c.estimator, "stein") == 0 && strcmp(c.update, "plain") == 0, "estimator %s update %s",
        c.estimator, c.update);
  /* Last one wins. */
  st = parse(&c, &help, "--seed=4", "--seed", "9", NULL);
  CHECK(st == GFV_OK && c.seed == 9, "repeated option: status %d seed %ld", st, c.seed);
  /* A value may contain '='. */
  st = parse(&c, &help, "--target=gmm:a=b.csv", NULL);
  CHECK(st == GFV_OK && strcmp(c.target, "gmm:a=b.csv") == 0, "target '%s'", c.target);
}

static void test_config_file(void) {
  const char *path = write_file("good.cfg",
                                "# a comment\n"
                                "\n"
                                "   particles = 5\n"
                                "weight_step=0.25\n"
                                "init_var = 2   # inline comment\n"
                                "out = \"my dir # not a comment\"\n"
                                "target = gmm:x#1.csv\n"
                                "samples = 4\r\n"
                                "flow = gflow\n"
                                "quiet = yes\n"
                                "    # indented comment\n"
                                "tol = 1e-6");
  CHECK(path != NULL, "cannot write the config file");
  if (!path) return;
  char arg[300];
  snprintf(arg, sizeof arg, "--config=%s", path);
  gfv_config c;
  int help;
  int st = parse(&c, &help, arg, NULL);
  CHECK(st == GFV_OK, "status %d: %s", st, gfv_error_message());
  CHECK(strcmp(c.config, path) == 0, "config '%s'", c.config);
  CHECK(c.particles == 5, "particles %ld", c.particles);
  CHECK(c.weight_step == 0.25, "underscore name: weight_step %g", c.weight_step);
  CHECK(c.init_var == 2, "init_var %g", c.init_var);
  CHECK(strcmp(c.out, "my dir # not a comment") == 0, "quoted out '%s'", c.out);
  CHECK(strcmp(c.target, "gmm:x#1.csv") == 0, "'#' inside a word: target '%s'", c.target);
  CHECK(c.samples == 4, "CRLF line: samples %ld", c.samples);
  CHECK(strcmp(c.flow, "gflow") == 0, "flow '%s'", c.flow);
  CHECK(c.quiet == 1, "quiet %d", c.quiet);
  CHECK(c.tol == 1e-6, "last line without newline: tol %g", c.tol);
  CHECK(c.iters == 1000, "untouched option keeps its default: iters %ld", c.iters);
  /* gfv_config_read_file on its own applies on top of what cfg holds. */
  gfv_config d;
  gfv_config_defaults(&d);
  d.iters = 3;
  CHECK(gfv_config_read_file(&d, path) == GFV_OK && d.particles == 5 && d.iters == 3,
        "read_file: particles %ld iters %ld", d.particles, d.iters);
}

static void test_command_line_overrides_config(void) {
  const char *path = write_file("over.cfg", "particles = 5\nstep = 0.2\nseed = 3\n");
  CHECK(path != NULL, "cannot write the config file");
  if (!path) return;
  gfv_config c;
  int help;
  /* --config after the option it is overridden by: order on the command line is irrelevant. */
  int st = parse(&c, &help, "--particles=9", "--config", path, "--seed", "0", NULL);
  CHECK(st == GFV_OK, "status %d: %s", st, gfv_error_message());
  CHECK(c.particles == 9, "command line must win: particles %ld", c.particles);
  CHECK(c.seed == 0, "command line must win: seed %ld", c.seed);
  CHECK(c.step == 0.2, "config value kept: step %g", c.step);
}

typedef struct {
  const char *args[4];
  int status;
  const char *words[3]; /* substrings of the message */
} err_case;

static void test_command_line_errors(void) {
  static const err_case cases[] = {
      {{"--foo"}, GFV_ERR_USAGE, {"unknown option '--foo'", "--help"}},
      {{"--foo=1"}, GFV_ERR_USAGE, {"unknown option '--foo'"}},
      {{"-x"}, GFV_ERR_USAGE, {"unknown option '-x'"}},
      {{"foo"}, GFV_ERR_USAGE, {"unexpected argument 'foo'"}},
      {{"--particles=abc"}, GFV_ERR_USAGE, {"--particles: 'abc' is not an integer"}},
      {{"--particles=12x"}, GFV_ERR_USAGE, {"--particles: '12x' is not an integer"}},
      {{"--particles=1.5"}, GFV_ERR_USAGE, {"is not an integer"}},
      {{"--particles="}, GFV_ERR_USAGE, {"--particles: '' is not an integer"}},
      {{"--particles=0"}, GFV_ERR_USAGE, {"--particles: must be >= 1, got 0"}},
      {{"--seed=99999999999999999999999"}, GFV_ERR_USAGE, {"--seed:", "out of range"}},
      {{"--step=-1"}, GFV_ERR_USAGE, {"--step: must be > 0, got -1"}},
      {{"--step=0"}, GFV_ERR_USAGE, {"--step: must be > 0, got 0"}},
      {{"--step=abc"}, GFV_ERR_USAGE, {"--step: 'abc' is not a number"}},
      {{"--step=0.1x"}, GFV_ERR_USAGE, {"--step: '0.1x' is not a number"}},
      {{"--step=inf"}, GFV_ERR_USAGE, {"--step: 'inf' is not a finite number"}},
      {{"--step=nan"}, GFV_ERR_USAGE, {"not a finite number"}},
      {{"--step=1e999"}, GFV_ERR_USAGE, {"not a finite number"}},
      {{"--init-var=0"}, GFV_ERR_USAGE, {"--init-var: must be > 0"}},
      {{"--tol=-1e-9"}, GFV_ERR_USAGE, {"--tol: must be between 0 and 1, got -1e-9"}},
      {{"--max-retries=61"}, GFV_ERR_USAGE, {"--max-retries: must be between 0 and 60, got 61"}},
      {{"--max-retries=-1"}, GFV_ERR_USAGE, {"between 0 and 60"}},
      {{"--eval-samples=0"}, GFV_ERR_USAGE, {"--eval-samples: must be >= 1"}},
      {{"--flow=xyz"}, GFV_ERR_USAGE, {"--flow: 'xyz' is not one of ngflow, gflow"}},
      {{"--estimator", "exact"}, GFV_ERR_USAGE, {"is not one of auto, hessian, stein"}},
      {{"--update=Plain"}, GFV_ERR_USAGE, {"is not one of retraction, plain"}},
      {{"--samples"}, GFV_ERR_USAGE, {"--samples: missing value"}},
      {{"--out", "--step=1"}, GFV_ERR_USAGE, {"--out: missing value"}},
      {{"--quiet=maybe"}, GFV_ERR_USAGE, {"--quiet: 'maybe' is not a boolean"}},
      {{"--target="}, GFV_ERR_USAGE, {"--target: must not be empty"}},
      {{"--out="}, GFV_ERR_USAGE, {"--out: must not be empty"}},
      {{"--config=/nonexistent/x.cfg"},
       GFV_ERR_INPUT,
       {"cannot open config file '/nonexistent/x.cfg'", "No such file or directory"}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const err_case *e = &cases[i];
    gfv_config c;
    int help;
    int st = parse(&c, &help, e->args[0], e->args[1], e->args[2], NULL);
    const char *msg = gfv_error_message();
    CHECK(st == e->status, "%s: status %d, expected %d (%s)", e->args[0], st, e->status, msg);
    CHECK(strchr(msg, '\n') == NULL, "%s: message must be one line: %s", e->args[0], msg);
    for (int w = 0; w < 3 && e->words[w]; w++)
      CHECK(contains(msg, e->words[w]), "%s: message '%s' lacks '%s'", e->args[0], msg, e->words[w]);
  }
}

static void test_too_long_string(void) {
  char *arg = malloc(GFV_PATH_MAX + 32);
  CHECK(arg != NULL, "malloc");
  if (!arg) return;
  strcpy(arg, "--target=");
  memset(arg + 9, 'a', GFV_PATH_MAX);
  arg[9 + GFV_PATH_MAX] = '\0';
  gfv_config c;
  int help;
  int st = parse(&c, &help, arg, NULL);
  CHECK(st == GFV_ERR_USAGE && contains(gfv_error_message(), "--target: value too long"),
        "status %d: %s", st, gfv_error_message());
  arg[9 + GFV_PATH_MAX - 1] = '\0'; /* exactly fits: 4095 characters and the NUL */
  st = parse(&c, &help, arg, NULL);
  CHECK(st == GFV_OK && strlen(c.target) == GFV_PATH_MAX - 1, "status %d: %s", st,
        gfv_error_message());
  free(arg);
}

typedef struct {
  const char *name, *text;
  int status;
  const char *words[2];
} file_case;

static void test_config_file_errors(void) {
  static const file_case cases[] = {
      {"e1.cfg", "particles = 5\n\nfoo = 1\n", GFV_ERR_USAGE, {"e1.cfg:3: unknown option 'foo'"}},
      {"e2.cfg", "# ok\nparticles 5\n", GFV_ERR_USAGE, {"e2.cfg:2: expected 'name = value'"}},
      {"e3.cfg", "= 5\n", GFV_ERR_USAGE, {"e3.cfg:1: expected 'name = value'"}},
      {"e4.cfg", "iters = 3\nparticles = abc\n", GFV_ERR_USAGE,
       {"e4.cfg:2: particles: 'abc' is not an integer"}},
      {"e5.cfg", "step = -1\n", GFV_ERR_USAGE, {"e5.cfg:1: step: must be > 0, got -1"}},
      {"e6.cfg", "config = other.cfg\n", GFV_ERR_USAGE, {"e6.cfg:1:", "'config'"}},
      {"e7.cfg", "flow = xyz\n", GFV_ERR_USAGE, {"e7.cfg:1: flow: 'xyz' is not one of ngflow, gflow"}},
      {"e8.cfg", "out = \"unterminated\n", GFV_ERR_USAGE, {"e8.cfg:1:", "quote"}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const file_case *e = &cases[i];
    const char *path = write_file(e->name, e->text);
    CHECK(path != NULL, "cannot write %s", e->name);
    if (!path) continue;
    gfv_config c;
    gfv_config_defaults(&c);
    gfv_error_clear();
    int st = gfv_config_read_file(&c, path);
    const char *msg = gfv_error_message();
    CHECK(st == e->status, "%s: status %d, expected %d (%s)", e->name, st, e->status, msg);
    for (int w = 0; w < 2 && e->words[w]; w++)
      CHECK(contains(msg, e->words[w]), "%s: message '%s' lacks '%s'", e->name, msg, e->words[w]);
  }
  /* A directory opens but cannot be read. */
  gfv_config c;
  gfv_config_defaults(&c);
  int st = gfv_config_read_file(&c, tmpdir);
  CHECK(st == GFV_ERR_INPUT && contains(gfv_error_message(), "config file"), "directory: %d %s",
        st, gfv_error_message());
}

static void test_help(void) {
  gfv_config c;
  int help = 0;
  int st = parse(&c, &help, "--particles=abc", "-h", NULL);
  CHECK(st == GFV_OK && help == 1, "-h: status %d help %d", st, help);
  help = 0;
  st = parse(&c, &help, "--bogus", "--help", "--config=/nonexistent", NULL);
  CHECK(st == GFV_OK && help == 1, "--help: status %d help %d", st, help);
  st = parse(&c, &help, "--particles=3", NULL);
  CHECK(st == GFV_OK && help == 0, "no help flag: status %d help %d", st, help);
}

static void test_bool(void) {
  static const struct {
    const char *arg;
    int quiet;
  } cases[] = {{"--quiet", 1},       {"--quiet=1", 1},   {"--quiet=0", 0},     {"--quiet=true", 1},
               {"--quiet=false", 0}, {"--quiet=yes", 1}, {"--quiet=no", 0},    {"--quiet=on", 1},
               {"--quiet=off", 0},   {"--quiet=TRUE", 1}, {"--quiet=Off", 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gfv_config c;
    int help;
    int st = parse(&c, &help, "--quiet=no", cases[i].arg, NULL);
    CHECK(st == GFV_OK && c.quiet == cases[i].quiet, "%s: status %d quiet %d", cases[i].arg, st,
          c.quiet);
  }
  gfv_config c;
  int help;
  int st = parse(&c, &help, "--quiet", "false", "--seed=2", NULL);
  CHECK(st == GFV_OK && c.quiet == 0 && c.seed == 2, "'--quiet false': status %d quiet %d", st,
        c.quiet);
  st = parse(&c, &help, "--quiet", "--seed=2", NULL);
  CHECK(st == GFV_OK && c.quiet == 1 && c.seed == 2, "'--quiet' then option: status %d quiet %d",
        st, c.quiet);
  st = parse(&c, &help, "--quiet", "foo", NULL);
  CHECK(st == GFV_ERR_USAGE && contains(gfv_error_message(), "unexpected argument 'foo'"),
        "'--quiet foo': status %d (%s)", st, gfv_error_message());
}

static void test_config_set(void) {
  gfv_config c;
  gfv_config_defaults(&c);
  CHECK(gfv_config_set(&c, "init_scale", "0.5", NULL) == GFV_OK && c.init_scale == 0.5,
        "underscore name: init_scale %g", c.init_scale);
  int st = gfv_config_set(&c, "samples", "0", "run.cfg:5");
  CHECK(st == GFV_ERR_USAGE && contains(gfv_error_message(), "run.cfg:5: samples: must be >= 1"),
        "file origin: %s", gfv_error_message());
  st = gfv_config_set(&c, "samples", "-3", "--samples");
  CHECK(st == GFV_ERR_USAGE && strcmp(gfv_error_message(), "--samples: must be >= 1, got -3") == 0,
        "option origin: '%s'", gfv_error_message());
  CHECK(c.samples == 10, "a rejected value leaves the field alone: samples %ld", c.samples);
  st = gfv_config_set(&c, "nope", "1", "run.cfg:9");
  CHECK(st == GFV_ERR_USAGE && strcmp(gfv_error_message(), "run.cfg:9: unknown option 'nope'") == 0,
        "unknown: '%s'", gfv_error_message());
  st = gfv_config_set(&c, "step", NULL, NULL);
  CHECK(st == GFV_ERR_USAGE && contains(gfv_error_message(), "--step: missing value"), "'%s'",
        gfv_error_message());
}

static void test_print_round_trip(void) {
  gfv_config c;
  int help;
  int st = parse(&c, &help, "--particles=33", "--step=0.1", "--tol=1e-7", "--flow=gflow",
                 "--quiet", "--out=o", "--weight-step=0.3", "--seed=123456789012", NULL);
  CHECK(st == GFV_OK, "status %d: %s", st, gfv_error_message());
  capture cap;
  gfv_config_print(capture_begin(&cap), &c, "# ");
  char *text = capture_end(&cap);
  int lines = 0;
  for (char *p = text; *p; p++) lines += *p == '\n';
  CHECK(lines == NOPT, "%d lines, expected %d", lines, NOPT);
  CHECK(strncmp(text, "# ", 2) == 0, "prefix missing: %.20s", text);
  CHECK(contains(text, "step ") && contains(text, "= 0.1\n"), "step line: %s", text);
  CHECK(contains(text, "= 1e-07\n"), "tol printed shortest: %s", text);
  CHECK(contains(text, "= 123456789012\n"), "seed exact: %s", text);
  CHECK(contains(text, "= true\n") && contains(text, "= gflow\n"), "bool/choice: %s", text);
  free(text);

  /* The unprefixed echo, less its config line, is a config file giving the same run. */
  gfv_config_print(capture_begin(&cap), &c, "");
  text = capture_end(&cap);
  char *nl = strchr(text, '\n');
  CHECK(strncmp(text, "config", 6) == 0 && nl, "first line should be config: %.30s", text);
  if (!nl) {
    free(text);
    return;
  }
  const char *path = write_file("echo.cfg", nl + 1);
  gfv_config d;
  gfv_config_defaults(&d);
  st = gfv_config_read_file(&d, path);
  CHECK(st == GFV_OK, "re-reading the echo: %s", gfv_error_message());
  gfv_config_print(capture_begin(&cap), &d, "");
  char *again = capture_end(&cap);
  CHECK(strcmp(text, again) == 0, "echo round trip differs:\n%s---\n%s", text, again);
  CHECK(d.step == c.step && d.tol == c.tol && d.weight_step == c.weight_step,
        "doubles must read back exactly");
  free(text);
  free(again);
}

static void test_json(void) {
  gfv_config c;
  gfv_config_defaults(&c);
  const char *weird = "we\"ird\nna\\me\t/x";
  CHECK(gfv_config_set(&c, "target", weird, NULL) == GFV_OK, "%s", gfv_error_message());
  CHECK(gfv_config_set(&c, "step", "0.1", NULL) == GFV_OK, "%s", gfv_error_message());
  CHECK(gfv_config_set(&c, "quiet", "on", NULL) == GFV_OK, "%s", gfv_error_message());
  capture cap;
  FILE *f = capture_begin(&cap);
  fputs("{\n", f);
  gfv_config_print_json(f, &c, 2);
  fputs("\n}\n", f);
  char *text = capture_end(&cap);

  jmember m[64];
  int n = json_object(text, m, 64);
  CHECK(n == NOPT, "JSON parse gave %d members, expected %d:\n%s", n, NOPT, text);
  const jmember *x = jget(m, n, "target");
  CHECK(x && x->kind == 's' && strcmp(x->str, weird) == 0, "target did not round-trip: %s",
        x ? x->str : "(missing)");
  x = jget(m, n, "step");
  CHECK(x && x->kind == 'n' && x->num == 0.1, "step: %g", x ? x->num : -1);
  x = jget(m, n, "particles");
  CHECK(x && x->kind == 'n' && x->num == 20, "particles: %g", x ? x->num : -1);
  x = jget(m, n, "quiet");
  CHECK(x && x->kind == 't', "quiet should be true");
  x = jget(m, n, "flow");
  CHECK(x && x->kind == 's' && strcmp(x->str, "ngflow") == 0, "flow");
  x = jget(m, n, "config");
  CHECK(x && x->kind == 's' && x->str[0] == '\0', "config should be \"\"");
  CHECK(jget(m, n, "weight-step") && jget(m, n, "max-retries"), "option names as keys");
  /* Layout: every member line indented by 2, no trailing comma, no newline after the last. */
  CHECK(strncmp(text, "{\n  \"config\": ", 14) == 0, "first member: %.30s", text);
  CHECK(contains(text, "\n  \"quiet\": true,\n"), "quiet: %s", text);
  CHECK(contains(text, "\n  \"strict\": false\n}\n"), "last member without comma: %s", text);
  CHECK(!contains(text, ",\n}"), "trailing comma");
  free(text);
}

static void test_help_text(void) {
  capture cap;
  gfv_config_print_help(capture_begin(&cap), "prog");
  char *text = capture_end(&cap);
  const char *usage = "usage: prog [--config=FILE] [--OPTION=VALUE ...]\n";
  CHECK(strncmp(text, usage, strlen(usage)) == 0, "usage: %.60s", text);
  static const char *const names[] = {
      "config",       "target",      "dim",        "flow",  "estimator", "update",     "particles",
      "samples",      "step",        "weight-step", "iters", "tol",      "seed",       "init-scale",
      "init-var",     "out",         "out-samples", "eval-samples", "progress-every", "max-retries",
      "quiet"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char want[64];
    snprintf(want, sizeof want, "\n  --%s=", names[i]);
    CHECK(contains(text, want), "help lacks '%s'", want + 1);
  }
  CHECK(contains(text, "--flow=ngflow|gflow"), "choices shown as the type");
  CHECK(contains(text, "--particles=INT"), "long type");
  CHECK(contains(text, "--step=NUM"), "double type");
  CHECK(contains(text, "(default: 20)") && contains(text, "(default: 0.05)") &&
            contains(text, "(default: gmm4)"),
        "defaults shown");
  CHECK(contains(text, "gmm:FILE") && contains(text, "funnel"), "targets listed");
  CHECK(contains(text, "mpirun"), "mentions mpirun");
  CHECK(contains(text, "Outputs (in --out):") && contains(text, "summary.json") &&
            contains(text, "mixture.csv") && contains(text, "trace.csv") &&
            contains(text, "samples.csv") && contains(text, "density.csv"),
        "outputs section");
  CHECK(contains(text, "Exit status: 0 ok, 2 usage, 3 input, 4 numerical, 5 output, 6 mpi, 7 "
                       "memory, 8 internal"),
        "exit status line");
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    CHECK(len <= 100, "help line longer than 100 columns: %.*s", (int)len, line);
    line += len + (end != NULL);
  }
  free(text);
}

/* rm -r of the test directory (only what the tests created: files and directories). */
static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char sub[512];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      remove_tree(sub);
    }
    closedir(d);
  }
  remove(path);
}

int main(void) {
  strcpy(tmpdir, "/tmp/gfv-test-options-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_defaults);
  RUN(test_both_forms);
  RUN(test_config_file);
  RUN(test_command_line_overrides_config);
  RUN(test_command_line_errors);
  RUN(test_too_long_string);
  RUN(test_config_file_errors);
  RUN(test_help);
  RUN(test_bool);
  RUN(test_config_set);
  RUN(test_print_round_trip);
  RUN(test_json);
  RUN(test_help_text);
  remove_tree(tmpdir);
  return harness_report();
}
