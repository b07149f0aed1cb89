/* test_option_registry.c - the registries drive the options: walking each registry, every
 * entry must show up where the user meets it (--help, the choice lists, the messages), and
 * every option row must be well formed.  This is what makes "adding a target = its file +
 * one line in src/targets/target_list.h" true (docs/developer.md, "How to add a target"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/optdef.h"
#include "flows/flow.h"
#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/target.h"
#include "harness.h"
#include "targets/registry.h"

static char *help_text(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  gfv_config_print_help(f, "gflowvi");
  fclose(f);
  return text;
}

/* Every registered target has its line in --help's Targets list (synopsis, then the start of
 * its help), and is named by the unknown-target message; its name finds it again. */
static void test_every_target_in_help(void) {
  char *help = help_text();
  const char *list = strstr(help, "\nTargets (--target=SPEC):\n");
  CHECK(list, "no Targets section in --help");
  gfv_target *t = NULL;
  gfv_error_clear();
  CHECK(gfv_target_create("no-such-target", 0, &t) == GFV_ERR_USAGE && !t, "unknown target");
  const char *msg = gfv_error_message();
  const gfv_target_type *tt;
  size_t n = 0;
  for (size_t i = 0; (tt = gfv_target_type_at(i)) != NULL; i++, n++) {
    CHECK(tt->name && tt->synopsis && tt->help && tt->create, "type %zu incomplete", i);
    char want[256];
    snprintf(want, sizeof want, "\n  %s ", tt->synopsis);
    const char *at = list ? strstr(list, want) : NULL;
    CHECK(at, "--help lacks the line of target %s", tt->synopsis);
    char start[24]; /* the help's first words, before any wrap */
    snprintf(start, sizeof start, "%s", tt->help);
    CHECK(at && strstr(at, start) && strstr(at, start) < strchr(at + 1, '\n'),
          "target %s: help '%s' not on its line", tt->synopsis, start);
    CHECK(strstr(msg, tt->synopsis), "unknown-target message lacks %s: %s", tt->synopsis, msg);
    CHECK(strstr(gfv_target_list_help(), tt->synopsis), "gfv_target_list_help lacks %s",
          tt->synopsis);
    /* A prefix type ("gmm:") is found with an argument after it; a name, as itself. */
    size_t len = strlen(tt->name);
    snprintf(want, sizeof want, "%s%s", tt->name, tt->name[len - 1] == ':' ? "x" : "");
    CHECK(gfv_target_type_find(want) == tt, "'%s' does not find its own type", want);
    /* --target takes the spec: a name fits the field. */
    gfv_config cfg;
    gfv_config_defaults(&cfg);
    CHECK(gfv_config_set(&cfg, "target", want, NULL) == GFV_OK && strcmp(cfg.target, want) == 0,
          "--target=%s refused", want);
  }
  CHECK(n >= 9, "only %zu targets registered", n);
  CHECK(gfv_target_type_find("gmm") == NULL && gfv_target_type_find("gauss2") == NULL,
        "a prefix or a longer name matched");
  free(help);
}

/* A target's own options are options: each row is reachable through the option registry. */
static void test_target_options_registered(void) {
  const gfv_target_type *tt;
  for (size_t i = 0; (tt = gfv_target_type_at(i)) != NULL; i++) {
    if (!tt->options) continue;
    for (size_t r = 0; r < tt->options->n; r++) {
      const gfv_option *o = NULL;
      for (size_t k = 0; (o = gfv_option_at(k)) != NULL; k++)
        if (o == &tt->options->rows[r]) break;
      CHECK(o, "target %s: option --%s not in the registry", tt->synopsis,
            tt->options->rows[r].name);
    }
  }
}

/* --flow's choices are exactly the registered flows; --estimator's the estimators and
 * "auto".  Each is accepted by gfv_config_set and named by the refusal of a wrong one. */
static void test_flow_choices_from_registry(void) {
  gfv_config cfg;
  gfv_config_defaults(&cfg);
  const gfv_flow_type *ft;
  size_t nf = 0;
  for (size_t i = 0; (ft = gfv_flow_at(i)) != NULL; i++, nf++) {
    CHECK(gfv_config_set(&cfg, "flow", ft->name, NULL) == GFV_OK && strcmp(cfg.flow, ft->name) == 0,
          "--flow=%s refused", ft->name);
    CHECK(gfv_flow_lookup(ft->name) == ft, "lookup %s", ft->name);
  }
  const gfv_estimator_type *et;
  size_t ne = 0;
  for (size_t i = 0; (et = gfv_estimator_at(i)) != NULL; i++, ne++)
    CHECK(gfv_config_set(&cfg, "estimator", et->name, NULL) == GFV_OK &&
              strcmp(cfg.estimator, et->name) == 0,
          "--estimator=%s refused", et->name);
  CHECK(gfv_config_set(&cfg, "estimator", "auto", NULL) == GFV_OK, "--estimator=auto refused");
  CHECK(nf == 2 && ne == 2, "%zu flows, %zu estimators", nf, ne);
  /* The other way round: every choice of the rows is registered. */
  const gfv_option *o;
  for (size_t k = 0; (o = gfv_option_at(k)) != NULL; k++) {
    const char *c;
    size_t n = 0;
    for (size_t i = 0; (c = gfv_option_choice(o, i)) != NULL; i++, n++) {
      if (strcmp(o->name, "flow") == 0) CHECK(gfv_flow_lookup(c), "--flow choice %s unknown", c);
      if (strcmp(o->name, "estimator") == 0)
        CHECK(strcmp(c, "auto") == 0 || gfv_estimator_lookup(c), "--estimator choice %s", c);
    }
    if (strcmp(o->name, "flow") == 0) CHECK(n == nf, "--flow has %zu choices", n);
    if (strcmp(o->name, "estimator") == 0) CHECK(n == ne + 1, "--estimator: %zu choices", n);
  }
  gfv_error_clear();
  CHECK(gfv_config_set(&cfg, "flow", "nope", NULL) == GFV_ERR_USAGE &&
            strstr(gfv_error_message(), "'nope' is not one of ngflow, gflow"),
        "message: %s", gfv_error_message());
}

/* Every row: a unique name, a --help line, a choice list whose entries fit the field, a
 * place in gfv_config.given; the echo starts with config and ends with strict. */
static void test_rows_well_formed(void) {
  char *help = help_text();
  size_t n = gfv_option_count();
  CHECK(n <= GFV_OPTIONS_MAX, "%zu options > GFV_OPTIONS_MAX", n);
  CHECK(gfv_option_at(n) == NULL && gfv_option_at(n - 1) != NULL, "count %zu", n);
  CHECK(strcmp(gfv_option_at(0)->name, "config") == 0 &&
            strcmp(gfv_option_at(n - 1)->name, "strict") == 0,
        "echo order: first %s, last %s", gfv_option_at(0)->name, gfv_option_at(n - 1)->name);
  for (size_t i = 0; i < n; i++) {
    const gfv_option *o = gfv_option_at(i);
    for (size_t j = 0; j < i; j++)
      CHECK(strcmp(o->name, gfv_option_at(j)->name) != 0, "--%s twice", o->name);
    char want[80];
    snprintf(want, sizeof want, "\n  --%s=", o->name);
    CHECK(strstr(help, want), "--help lacks --%s", o->name);
    CHECK(o->help && o->help[0] && o->def, "--%s: no help or default", o->name);
    CHECK(o->offset + o->size <= sizeof(gfv_config), "--%s: field outside gfv_config", o->name);
    if (o->type == OPT_CHOICE) {
      const char *c;
      size_t k = 0;
      for (; (c = gfv_option_choice(o, k)) != NULL; k++)
        CHECK(strlen(c) < o->size, "--%s: choice %s does not fit", o->name, c);
      CHECK(k >= 2, "--%s: %zu choices", o->name, k);
    } else {
      CHECK(!o->choices && !o->choice_at, "--%s: choices on a non-choice option", o->name);
    }
  }
  free(help);
}

int main(void) {
  RUN(test_every_target_in_help);
  RUN(test_target_options_registered);
  RUN(test_flow_choices_from_registry);
  RUN(test_rows_well_formed);
  return harness_report();
}
