/* family.c - the covariance families by name (family.h). */
#include <string.h>

#include "mixture/family.h"

static const gfv_family_type *const families[] = {&gfv_family_full, &gfv_family_diag};
#define COUNT(a) (sizeof a / sizeof a[0])

const gfv_family_type *gfv_family_at(size_t i) { return i < COUNT(families) ? families[i] : NULL; }

const gfv_family_type *gfv_family_lookup(const char *name) {
  for (size_t i = 0; i < COUNT(families); i++)
    if (strcmp(families[i]->name, name) == 0) return families[i];
  return NULL;
}
