/* registry.c - flows and estimators by name, and their options (--flow, --estimator and
 * --update), whose choices are the names registered here. */
#include <string.h>

#include "core/optdef.h"
#include "flows/flow.h"

static const gfv_flow_type *const flows[] = {&gfv_flow_ngflow, &gfv_flow_gflow};
static const gfv_estimator_type *const ests[] = {&gfv_estimator_hessian, &gfv_estimator_stein};
#define COUNT(a) (sizeof a / sizeof a[0])

const gfv_flow_type *gfv_flow_at(size_t i) { return i < COUNT(flows) ? flows[i] : NULL; }

const gfv_flow_type *gfv_flow_lookup(const char *name) {
  for (size_t i = 0; i < COUNT(flows); i++)
    if (strcmp(flows[i]->name, name) == 0) return flows[i];
  return NULL;
}

size_t gfv_flow_work_size(size_t d) { return 4 * d * d + 2 * d; }

const gfv_estimator_type *gfv_estimator_at(size_t i) { return i < COUNT(ests) ? ests[i] : NULL; }

const gfv_estimator_type *gfv_estimator_lookup(const char *name) {
  for (size_t i = 0; i < COUNT(ests); i++)
    if (strcmp(ests[i]->name, name) == 0) return ests[i];
  return NULL;
}

size_t gfv_estimator_work_size(size_t d, size_t S) { return 2 * S * d + d * d; }

/* ---- options (rows: src/core/optdef.h; order: src/core/option_registry.c) -- */

static const char *flow_choice(size_t i) { return i < COUNT(flows) ? flows[i]->name : NULL; }

/* "auto" (the solver picks by the target), then the registered estimators. */
static const char *estimator_choice(size_t i) {
  return i == 0 ? "auto" : i - 1 < COUNT(ests) ? ests[i - 1]->name : NULL;
}

static const char *const update_choices[] = {"retraction", "plain", NULL};
static const gfv_option flow_options[] = {
    {.name = "flow", .type = OPT_CHOICE, OPT_FIELD(flow), .def = "ngflow",
     .choice_at = flow_choice,
     .role = ROLE_PROBLEM,
     .help = "ngflow = NGFlow-VI (natural-gradient flow on precisions), gflow = GFlow-VI "
             "(Wasserstein flow on covariances)"},
    {.name = "estimator", .type = OPT_CHOICE, OPT_FIELD(estimator), .def = "auto",
     .role = ROLE_PROBLEM,
     .choice_at = estimator_choice,
     .help = "estimator of the expected Hessian: auto = hessian where the target has one, "
             "else stein"},
    {.name = "update", .type = OPT_CHOICE, OPT_FIELD(update), .def = "retraction",
     .role = ROLE_PROBLEM,
     .choices = update_choices,
     .help = "retraction keeps every covariance positive definite; plain is only for the "
             "ablation, it can lose positive definiteness"},
};
GFV_OPTION_TABLE(gfv_options_flow, flow_options);
