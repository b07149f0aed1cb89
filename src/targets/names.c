/* names.c - arrays of output names for the targets (target.h: out_names, dim_names). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "gflowvi/error.h"
#include "gflowvi/target.h"

int gfv_names_alloc(size_t n, char ***names) {
  *names = NULL;
  GFV_CALL(gfv_calloc(names, n > 0 ? n : 1, sizeof(char *)));
  return GFV_OK;
}

int gfv_names_set(char **names, size_t i, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  GFV_CHECK(n >= 0, GFV_ERR_INTERNAL, "cannot format an output name");
  char *s = malloc((size_t)n + 1);
  GFV_CHECK(s, GFV_ERR_MEMORY, "out of memory for an output name");
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  free(names[i]);
  names[i] = s;
  return GFV_OK;
}

void gfv_names_free(char **names, size_t n) {
  if (!names) return;
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}
