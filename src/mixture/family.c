/* family.c - the covariance families by name (family.h): "full", "diag", and the
 * parameterised "lowrank:R" (1 <= R <= GFV_LOWRANK_MAX, written without leading zeros or
 * signs, so that the name a checkpoint records is the name given). */
#include <stdio.h>
#include <string.h>

#include "mixture/family.h"

static const gfv_family_type *const families[] = {&gfv_family_full, &gfv_family_diag};
#define COUNT(a) (sizeof a / sizeof a[0])

const gfv_family_type *gfv_family_at(size_t i) { return i < COUNT(families) ? families[i] : NULL; }

/* One object per rank, made on first use (the program looks families up before any
 * thread starts). */
static gfv_family_type lowrank[GFV_LOWRANK_MAX];
static char lowrank_names[GFV_LOWRANK_MAX][16];

static const gfv_family_type *lookup_lowrank(const char *name) {
  static const char prefix[] = "lowrank:";
  if (strncmp(name, prefix, sizeof prefix - 1) != 0) return NULL;
  const char *s = name + sizeof prefix - 1;
  size_t R = 0, n = 0;
  for (; s[n] >= '0' && s[n] <= '9' && n < 3; n++) R = 10 * R + (size_t)(s[n] - '0');
  if (n == 0 || s[n] != '\0' || s[0] == '0' || R < 1 || R > GFV_LOWRANK_MAX) return NULL;
  gfv_family_type *f = &lowrank[R - 1];
  if (f->rank != R) {
    if (gfv_family_lowrank(R, f)) return NULL;
    snprintf(lowrank_names[R - 1], sizeof lowrank_names[R - 1], "lowrank:%zu", R);
    f->name = lowrank_names[R - 1];
  }
  return f;
}

const gfv_family_type *gfv_family_lookup(const char *name) {
  for (size_t i = 0; i < COUNT(families); i++)
    if (strcmp(families[i]->name, name) == 0) return families[i];
  return lookup_lowrank(name);
}
