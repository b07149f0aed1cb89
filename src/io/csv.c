/* csv.c - dense numeric tables from CSV files (see io.h).
 *
 * Lines are read with getline, so there is no line-length limit (a mixture.csv row in
 * d = 100 has over 10^4 fields).  A trailing '\r' is dropped, so files written on Windows
 * read the same.  Blank lines and lines whose first non-blank character is '#' are skipped.
 *
 * Header detection: the first remaining line is a header when none of its fields is a
 * number.  Requiring *no* numeric field (rather than "some field is not a number") keeps a
 * malformed first data row such as "1,2,abc" from silently passing as a header: it is
 * reported like any other bad row.  A header must have as many fields as the data rows,
 * which catches a header and data that disagree about the layout. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gflowvi/error.h"
#include "gflowvi/io.h"

/* Reader state: the current line split in place into trimmed fields. */
typedef struct {
  const char *path;
  char **field;
  size_t nfield, cap;
} csv_reader;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Splits line (no newline) at commas, in place, trimming blanks around each field. */
static int split_fields(csv_reader *r, char *line) {
  size_t need = 1;
  for (const char *p = line; *p; p++) need += *p == ',';
  if (need > r->cap) {
    char **f = realloc(r->field, need * sizeof *f);
    if (!f) GFV_ERROR(GFV_ERR_MEMORY, "%s: out of memory splitting a line of %zu fields", r->path, need);
    r->field = f;
    r->cap = need;
  }
  r->nfield = 0;
  char *p = line;
  for (;;) {
    while (is_blank(*p)) p++;
    char *start = p;
    while (*p && *p != ',') p++;
    char *end = p;
    while (end > start && is_blank(end[-1])) end--;
    int last = *p == '\0';
    *end = '\0';
    r->field[r->nfield++] = start;
    if (last) break;
    p++; /* past the comma (overwritten by the terminator when the field had no trailing blank) */
  }
  return GFV_OK;
}

/* 1 when s, a trimmed field, is a number in full (strtod syntax, including inf and nan). */
static int parse_number(const char *s, double *x) {
  if (!*s) return 0;
  char *end;
  errno = 0;
  *x = strtod(s, &end);
  /* ERANGE on underflow still yields a usable (denormal or zero) value; overflow gives inf,
   * which the finiteness check reports. */
  return *end == '\0';
}

static int any_number(const csv_reader *r) {
  double x;
  for (size_t j = 0; j < r->nfield; j++)
    if (parse_number(r->field[j], &x)) return 1;
  return 0;
}

/* The header's fields as t->header: copies, without a pair of surrounding quotes. */
static int keep_header(const csv_reader *r, gfv_table *t) {
  GFV_CALL(gfv_calloc(&t->header, r->nfield + 1, sizeof(char *)));
  for (size_t j = 0; j < r->nfield; j++) {
    const char *f = r->field[j];
    size_t n = strlen(f);
    if (n >= 2 && f[0] == '"' && f[n - 1] == '"') f++, n -= 2;
    char *c = malloc(n + 1);
    GFV_CHECK(c, GFV_ERR_MEMORY, "%s: out of memory reading the header", r->path);
    memcpy(c, f, n);
    c[n] = '\0';
    t->header[j] = c;
  }
  return GFV_OK;
}

/* Appends the current fields as a data row of t, growing t->v by doubling. */
static int append_row(csv_reader *r, long lineno, gfv_table *t, size_t *cap) {
  if (t->rows == 0 && t->cols == 0) t->cols = r->nfield;
  if (r->nfield != t->cols)
    GFV_ERROR(GFV_ERR_INPUT, "%s:%ld: expected %zu columns, found %zu", r->path, lineno, t->cols,
              r->nfield);
  if ((t->rows + 1) * t->cols > *cap) {
    size_t ncap = *cap ? 2 * *cap : 64 * t->cols;
    double *v = realloc(t->v, ncap * sizeof *v);
    if (!v) GFV_ERROR(GFV_ERR_MEMORY, "%s:%ld: out of memory reading the table", r->path, lineno);
    t->v = v;
    *cap = ncap;
  }
  double *row = t->v + t->rows * t->cols;
  for (size_t j = 0; j < r->nfield; j++) {
    const char *s = r->field[j];
    if (!parse_number(s, &row[j]))
      GFV_ERROR(GFV_ERR_INPUT, "%s:%ld: field %zu '%.40s' is not a number", r->path, lineno, j + 1, s);
    if (!isfinite(row[j]))
      GFV_ERROR(GFV_ERR_INPUT, "%s:%ld: field %zu '%.40s' is not a finite number", r->path, lineno,
                j + 1, s);
  }
  t->rows++;
  return GFV_OK;
}

/* The loop over lines; the caller owns fp and r. */
static int read_lines(FILE *fp, csv_reader *r, gfv_table *t) {
  char *line = NULL;
  size_t linecap = 0, cap = 0, header_fields = 0;
  long lineno = 0;
  int st = GFV_OK, first = 1;
  ssize_t len;
  for (;;) {
    GFV_CALL_GOTO(st, gfv_read_line(fp, &line, &linecap, &len, "", r->path, lineno), done);
    if (len < 0) break;
    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    /* A NUL byte would silently cut the line short (or blank it): not a text file. */
    if (memchr(line, '\0', (size_t)len))
      GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "%s:%ld: contains a NUL byte (not a text CSV file?)",
                     r->path, lineno);
    char *s = line;
    if (lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3; /* UTF-8 byte-order mark */
    while (is_blank(*s)) s++;
    if (*s == '\0' || *s == '#') continue;
    GFV_CALL_GOTO(st, split_fields(r, s), done);
    if (first) {
      first = 0;
      if (!any_number(r)) {
        t->has_header = 1;
        header_fields = r->nfield;
        GFV_CALL_GOTO(st, keep_header(r, t), done);
        continue;
      }
    }
    GFV_CALL_GOTO(st, append_row(r, lineno, t, &cap), done);
    if (t->has_header && t->rows == 1 && header_fields != t->cols)
      GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "%s:%ld: the header has %zu columns, this row %zu",
                     r->path, lineno, header_fields, t->cols);
  }
  if (t->rows == 0) GFV_ERROR_GOTO(st, done, GFV_ERR_INPUT, "%s: no data rows", r->path);
done:
  free(line);
  return st;
}

int gfv_table_read_csv_stream(FILE *fp, const char *name, gfv_table *t) {
  memset(t, 0, sizeof *t);
  csv_reader r = {name, NULL, 0, 0};
  int st = read_lines(fp, &r, t);
  free(r.field);
  if (st) {
    gfv_error_push(__FILE__, __LINE__, __func__);
    gfv_table_free(t);
  }
  return st;
}

int gfv_table_read_csv(const char *path, gfv_table *t) {
  memset(t, 0, sizeof *t);
  FILE *fp = fopen(path, "r");
  if (!fp) GFV_ERROR(GFV_ERR_INPUT, "cannot open '%s': %s", path, strerror(errno));
  int st = gfv_table_read_csv_stream(fp, path, t);
  fclose(fp);
  GFV_CALL(st);
  return GFV_OK;
}

void gfv_table_free(gfv_table *t) {
  if (!t) return;
  for (size_t j = 0; t->header && t->header[j]; j++) free(t->header[j]);
  free(t->header);
  free(t->v);
  memset(t, 0, sizeof *t);
}
