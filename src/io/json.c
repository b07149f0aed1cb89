/* json.c - the two JSON primitives behind every hand-written JSON file of gflowvi. */
#include <math.h>
#include <stdio.h>

#include "gflowvi/io.h"

/* Escapes only what JSON requires ('"', '\\', control characters), all controls as \uXXXX
 * so one rule covers them; bytes >= 0x80 pass through, so UTF-8 stays UTF-8. */
void gfv_json_string(FILE *f, const char *s) {
  if (!s) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      fputc('\\', f);
      fputc(*p, f);
    } else if (*p < 0x20) {
      fprintf(f, "\\u%04x", (unsigned)*p);
    } else {
      fputc(*p, f);
    }
  }
  fputc('"', f);
}

/* 17 significant digits read back as the same double; NaN and infinities have no JSON
 * spelling, and null keeps the file loadable. */
void gfv_json_number(FILE *f, double x) {
  if (isfinite(x)) fprintf(f, "%.17g", x);
  else fputs("null", f);
}
