/* test_config_restart.c - what a restart does with the options: the config-file form that a
 * checkpoint stores (gfv_config_write) reads back exactly (gfv_config_read_text), values no
 * config file can hold are refused, the parser records which options were given, and
 * gfv_config_merge_restart takes the checkpoint's values, keeps the given run options and
 * refuses a changed problem option with one line naming each. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "harness.h"

/* cfg written as a config file (caller frees), or NULL with the status in *st. */
static char *written(const gfv_config *cfg, int *st) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  gfv_error_clear();
  *st = gfv_config_write(f, cfg);
  fclose(f);
  if (*st) free(text), text = NULL;
  return text;
}

/* The resolved-configuration echo, which shows every option: equal echoes, equal configs. */
static char *echo(const gfv_config *cfg) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  gfv_config_print(f, cfg, "");
  fclose(f);
  return text;
}

/* Writes a, reads the text back into defaults, and checks that every option came back. */
static void check_round_trip(const gfv_config *a, const char *what) {
  int st;
  char *text = written(a, &st);
  CHECK(text, "%s: write failed (%d): %s", what, st, gfv_error_message());
  if (!text) return;
  gfv_config b;
  gfv_config_defaults(&b);
  st = gfv_config_read_text(&b, text, "round-trip");
  CHECK(st == GFV_OK, "%s: reading back: %s\n%s", what, gfv_error_message(), text);
  char *ea = echo(a), *eb = echo(&b);
  CHECK(strcmp(ea, eb) == 0, "%s: differs after the round trip:\n%s---\n%s---\ntext:\n%s", what,
        ea, eb, text);
  free(ea), free(eb), free(text);
}

static void set(gfv_config *c, const char *name, const char *value) {
  int st = gfv_config_set(c, name, value, NULL);
  CHECK(st == GFV_OK, "setting %s: %s", name, gfv_error_message());
}

static void test_defaults_round_trip(void) {
  gfv_config c;
  gfv_config_defaults(&c);
  check_round_trip(&c, "defaults");
  int st;
  char *text = written(&c, &st);
  /* Not carried: a restart keeps its own --config and --restart. */
  CHECK(text && !strstr(text, "config =") && !strstr(text, "restart =") &&
            strstr(text, "\nparticles = 20\n") && strstr(text, "\nprior-scale = 10\n"),
        "written defaults:\n%s", text ? text : "(null)");
  free(text);
}

static void test_awkward_values_round_trip(void) {
  gfv_config c;
  gfv_config_defaults(&c);
  set(&c, "out", "/tmp/a dir with spaces/out");
  set(&c, "target", "gmm:/data/run #3/mix.csv");  /* '#' after a blank: quoted */
  set(&c, "data", "  leading and trailing  ");     /* edge blanks: quoted */
  set(&c, "test-data", "#starts-with-hash");
  set(&c, "checkpoint", "tab\tinside");
  set(&c, "plugin-arg", "a=\"b c\",d");           /* a quote, bare: fine */
  set(&c, "step", "1.7976931348623157e308");      /* largest double */
  set(&c, "prior-scale", "4.9406564584124654e-324"); /* smallest subnormal */
  set(&c, "weight-step", "2.2250738585072014e-308");
  set(&c, "tol", "0.30000000000000004");           /* 0.1 + 0.2, 17 digits */
  set(&c, "init-var", "1e-300");
  set(&c, "seed", "9223372036854775807");
  set(&c, "label-col", "-9223372036854775808");
  set(&c, "quiet", "yes");
  set(&c, "intercept", "off");
  set(&c, "flow", "gflow");
  set(&c, "standardize", "center-scale");
  check_round_trip(&c, "awkward values");
  gfv_config b;
  gfv_config_defaults(&b);
  int st;
  char *text = written(&c, &st);
  if (text) gfv_config_read_text(&b, text, "again");
  CHECK(b.step == c.step && b.prior_scale == c.prior_scale && b.prior_scale > 0 &&
            b.weight_step == c.weight_step && b.tol == 0.1 + 0.2 && b.seed == LONG_MAX &&
            b.label_col == LONG_MIN,
        "numbers must read back bit for bit:\n%s", text ? text : "(null)");
  CHECK(text && strstr(text, "\nprior-scale = 5e-324\n") && strstr(text, "\ntol = 0.30000000000000004\n"),
        "shortest exact forms:\n%s", text ? text : "(null)");
  free(text);
}

static void test_unwritable_values(void) {
  static const struct {
    const char *value, *why;
  } bad[] = {{"two\nlines", "newline"}, {"\"quoted\"", "double quote"},
             {"x \"y\" # z", "double quote"}, {"trailing quote\" ", "double quote"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gfv_config c;
    gfv_config_defaults(&c);
    set(&c, "data", bad[i].value); /* gfv_config_set takes it; writing cannot */
    int st;
    char *text = written(&c, &st);
    CHECK(!text && st == GFV_ERR_USAGE && strstr(gfv_error_message(), "--data: the value contains") &&
              strstr(gfv_error_message(), bad[i].why),
          "value %zu: status %d, '%s'", i, st, gfv_error_message());
    free(text);
    /* The command line refuses it before any work. */
    char arg[64], *argv[] = {"gflowvi", arg, NULL};
    snprintf(arg, sizeof arg, "--data=%s", bad[i].value);
    int help;
    gfv_error_clear();
    st = gfv_config_parse(&c, 2, argv, &help);
    CHECK(st == GFV_ERR_USAGE && strstr(gfv_error_message(), bad[i].why),
          "parse of value %zu: status %d, '%s'", i, st, gfv_error_message());
  }
}

static void test_given(void) {
  char path[] = "/tmp/gfv-test-given-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp");
  if (fd < 0) return;
  FILE *f = fdopen(fd, "w");
  fputs("seed = 3\nstep = 0.05\n", f); /* the default value, but given */
  fclose(f);
  char config[64];
  snprintf(config, sizeof config, "--config=%s", path);
  char *argv[] = {"gflowvi", "--particles=9", config, "--quiet", NULL};
  gfv_config c;
  int help;
  int st = gfv_config_parse(&c, 4, argv, &help);
  remove(path);
  CHECK(st == GFV_OK, "%s", gfv_error_message());
  CHECK(gfv_config_given(&c, "particles") && gfv_config_given(&c, "seed") &&
            gfv_config_given(&c, "step") && gfv_config_given(&c, "quiet") &&
            gfv_config_given(&c, "config"),
        "command line and config file options are given");
  CHECK(!gfv_config_given(&c, "samples") && !gfv_config_given(&c, "iters") &&
            !gfv_config_given(&c, "restart") && !gfv_config_given(&c, "no-such-option"),
        "defaults are not given");
  CHECK(gfv_config_given(&c, "weight_step") == 0, "underscore spelling looks up the option");
}

/* The checkpoint's configuration of the merge tests. */
static void checkpoint_config(gfv_config *ck) {
  gfv_config_defaults(ck);
  set(ck, "target", "gauss");
  set(ck, "dim", "3");
  set(ck, "particles", "8");
  set(ck, "seed", "5");
  set(ck, "step", "0.2");
  set(ck, "init-scale", "2");
  set(ck, "iters", "40");
  set(ck, "out", "ck-out");
  set(ck, "restart", "not carried");
}

static int parse_args(gfv_config *c, char **args) {
  char *argv[16] = {"gflowvi"};
  int argc = 1;
  while (args[argc - 1] && argc < 15) argv[argc] = args[argc - 1], argc++;
  int help;
  gfv_error_clear();
  return gfv_config_parse(c, argc, argv, &help);
}

static void test_merge_takes_checkpoint_values(void) {
  gfv_config ck, c;
  checkpoint_config(&ck);
  char *args[] = {"--restart=ck.h5", "--iters=50", "--init-scale=9", "--seed=5", "--tol=1e-3",
                  NULL};
  CHECK(parse_args(&c, args) == GFV_OK, "%s", gfv_error_message());
  int st = gfv_config_merge_restart(&c, &ck, "ck.h5");
  CHECK(st == GFV_OK, "status %d: %s", st, gfv_error_message());
  CHECK(strcmp(c.target, "gauss") == 0 && c.dim == 3 && c.particles == 8 && c.seed == 5,
        "problem options from the checkpoint: %s %ld %ld %ld", c.target, c.dim, c.particles,
        c.seed);
  CHECK(c.step == 0.2 && strcmp(c.out, "ck-out") == 0, "run options not given come from it");
  CHECK(c.iters == 50 && c.tol == 1e-3, "given run options stay: iters %ld tol %g", c.iters,
        c.tol);
  CHECK(c.init_scale == 2, "init options keep the checkpoint's value: %g", c.init_scale);
  CHECK(strcmp(c.restart, "ck.h5") == 0, "restart is not carried: '%s'", c.restart);
}

static void test_merge_refuses_changed_problem(void) {
  gfv_config ck, c;
  checkpoint_config(&ck);
  set(&ck, "prior-scale", "10");
  char *args[] = {"--restart=ck.h5", "--seed=7", "--step=0.1", "--prior-scale=3", NULL};
  CHECK(parse_args(&c, args) == GFV_OK, "%s", gfv_error_message());
  int st = gfv_config_merge_restart(&c, &ck, "ck.h5");
  CHECK(st == GFV_ERR_USAGE &&
            strcmp(gfv_error_message(),
                   "--restart=ck.h5: the checkpoint's problem differs: --seed=7 (checkpoint: 5), "
                   "--prior-scale=3 (checkpoint: 10); these options define the problem and "
                   "cannot change on restart") == 0,
        "status %d: '%s'", st, gfv_error_message());
  char *args2[] = {"--data=x.csv", "--flow=gflow", NULL};
  CHECK(parse_args(&c, args2) == GFV_OK, "%s", gfv_error_message());
  st = gfv_config_merge_restart(&c, &ck, "ck.h5");
  CHECK(st == GFV_ERR_USAGE && strstr(gfv_error_message(), "--data=x.csv (checkpoint: '')") &&
            strstr(gfv_error_message(), "--flow=gflow (checkpoint: ngflow)"),
        "'%s'", gfv_error_message());
}

int main(void) {
  RUN(test_defaults_round_trip);
  RUN(test_awkward_values_round_trip);
  RUN(test_unwritable_values);
  RUN(test_given);
  RUN(test_merge_takes_checkpoint_values);
  RUN(test_merge_refuses_changed_problem);
  return harness_report();
}
