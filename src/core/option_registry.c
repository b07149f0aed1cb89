/* option_registry.c - the registry of options: every module's table (src/core/optdef.h), in
 * the order of the echo ("# resolved configuration", summary.json's "config" and the
 * configuration text of checkpoints), which is also the order of --help.
 *
 * Each table is defined next to the code that reads its options.  A target's own options
 * come with its type (gfv_target_type.options, src/targets/registry.h): the tables of the
 * targets listed below keep their place; any other registered target's table follows the
 * list, so adding a target with options touches only its file and its registry line. */
#include "core/optdef.h"
#include "targets/registry.h"

extern const gfv_option_table gfv_options_cli, gfv_options_target, gfv_options_flow,
    gfv_options_particles, gfv_options_layout, gfv_options_step, gfv_options_stopping,
    gfv_options_schedule, gfv_options_init, gfv_options_output, gfv_options_checkpoint,
    gfv_options_restart, gfv_options_data, gfv_options_logreg, gfv_options_bnn,
    gfv_options_split, gfv_options_plugin, gfv_options_resample, gfv_options_predict,
    gfv_options_check, gfv_options_report;

static const gfv_option_table *const tables[] = {
    &gfv_options_cli,        /* src/cli/options.c: config */
    &gfv_options_target,     /* src/targets/registry.c: target, dim */
    &gfv_options_flow,       /* src/flows/registry.c: flow, estimator, update */
    &gfv_options_particles,  /* src/solver/particles.c: family, particles, samples */
    &gfv_options_layout,     /* src/solver/layout.c */
    &gfv_options_step,       /* src/flows/trust_region.c: step, weight-step, trust-region */
    &gfv_options_stopping,   /* src/solver/convergence.c: iters, tol, tol-update, conv-window */
    &gfv_options_schedule,   /* src/solver/schedule.c: step-schedule, step-max, step-min */
    &gfv_options_init,       /* src/solver/init.c: seed, init-* */
    &gfv_options_output,     /* src/solver/outputs.c: out, out-samples, ..., max-retries */
    &gfv_options_checkpoint, /* src/solver/checkpoint.c */
    &gfv_options_restart,    /* src/solver/restart.c */
    &gfv_options_data,       /* src/targets/data.c: data, test-data, label-col, standardize */
    &gfv_options_logreg,     /* src/targets/logreg.c: intercept, prior-scale */
    &gfv_options_bnn,        /* src/targets/bnn.c: hidden, batch-size */
    &gfv_options_split,      /* src/targets/data.c: split-seed, test-fraction */
    &gfv_options_plugin,     /* src/targets/plugin.c: plugin-arg */
    &gfv_options_resample,   /* src/solver/resample.c */
    &gfv_options_predict,    /* src/targets/predict.c */
    &gfv_options_check,      /* src/solver/check_target.c: check-target */
    &gfv_options_report,     /* src/solver/diagnostics.c: quiet, strict */
};
#define NTABLES (sizeof tables / sizeof tables[0])

static int listed(const gfv_option_table *t) {
  for (size_t i = 0; i < NTABLES; i++)
    if (tables[i] == t) return 1;
  return 0;
}

/* The k-th table: the list, then the unlisted targets' tables; NULL past the last.  Walked
 * on every call rather than cached, so that there is no state to initialise (the library
 * may be called from several threads); the lists are a few dozen entries. */
static const gfv_option_table *table_at(size_t k) {
  if (k < NTABLES) return tables[k];
  k -= NTABLES;
  const gfv_target_type *tt;
  for (size_t i = 0; (tt = gfv_target_type_at(i)) != NULL; i++)
    if (tt->options && !listed(tt->options) && k-- == 0) return tt->options;
  return NULL;
}

size_t gfv_option_count(void) {
  size_t n = 0;
  const gfv_option_table *t;
  for (size_t k = 0; (t = table_at(k)) != NULL; k++) n += t->n;
  return n;
}

const gfv_option *gfv_option_at(size_t i) {
  const gfv_option_table *t;
  for (size_t k = 0; (t = table_at(k)) != NULL; k++) {
    if (i < t->n) return &t->rows[i];
    i -= t->n;
  }
  return NULL;
}

const char *gfv_option_choice(const gfv_option *o, size_t i) {
  if (o->choice_at) return o->choice_at(i);
  return o->choices ? o->choices[i] : NULL;
}
