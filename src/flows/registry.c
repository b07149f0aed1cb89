/* registry.c - flows and estimators by name. */
#include <string.h>

#include "flows/flow.h"

const gfv_flow_type *gfv_flow_lookup(const char *name) {
  static const gfv_flow_type *const flows[] = {&gfv_flow_ngflow, &gfv_flow_gflow};
  for (size_t i = 0; i < sizeof flows / sizeof flows[0]; i++)
    if (strcmp(flows[i]->name, name) == 0) return flows[i];
  return NULL;
}

size_t gfv_flow_work_size(size_t d) { return 4 * d * d + 2 * d; }

const gfv_estimator_type *gfv_estimator_lookup(const char *name) {
  static const gfv_estimator_type *const ests[] = {&gfv_estimator_hessian, &gfv_estimator_stein};
  for (size_t i = 0; i < sizeof ests / sizeof ests[0]; i++)
    if (strcmp(ests[i]->name, name) == 0) return ests[i];
  return NULL;
}

size_t gfv_estimator_work_size(size_t d, size_t S) { return 2 * S * d + d * d; }
