/* test_csv.c - the numeric CSV reader: header detection, comments, blank lines, CRLF,
 * spaces, long lines, and every error it reports (with file and line). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "harness.h"

static char tmpdir[256];

/* Writes content to tmpdir/name; path receives the full name. */
static void write_file(const char *name, const char *content, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  if (!f) {
    printf("cannot create %s\n", path);
    exit(2);
  }
  fputs(content, f);
  fclose(f);
}

/* Reads content written to a file; returns the status and leaves the table in t. */
static int read_text(const char *content, gfv_table *t, char *path, size_t cap) {
  write_file("t.csv", content, path, cap);
  gfv_error_clear();
  return gfv_table_read_csv(path, t);
}

/* The read fails with GFV_ERR_INPUT and the message "<path><suffix>". */
static void expect_error(const char *content, const char *suffix) {
  char path[512], want[1024];
  gfv_table t;
  int st = read_text(content, &t, path, sizeof path);
  snprintf(want, sizeof want, "%s%s", path, suffix);
  CHECK(st == GFV_ERR_INPUT, "status %d for %s", st, suffix);
  CHECK(strcmp(gfv_error_message(), want) == 0, "message '%s', expected '%s'", gfv_error_message(), want);
  CHECK(t.v == NULL && t.rows == 0 && t.cols == 0, "table not cleared after an error");
  gfv_table_free(&t);
}

static void test_plain_numbers(void) {
  char path[512];
  gfv_table t;
  int st = read_text("1,2,3\n4,5,6.5e-1\n-7,+8,0x10", &t, path, sizeof path); /* no final newline */
  CHECK(st == GFV_OK, "status %d: %s", st, gfv_error_message());
  CHECK(t.rows == 3 && t.cols == 3 && !t.has_header, "%zu x %zu, header %d", t.rows, t.cols, t.has_header);
  const double want[9] = {1, 2, 3, 4, 5, 0.65, -7, 8, 16};
  for (int i = 0; i < 9 && st == GFV_OK; i++) CHECK(t.v[i] == want[i], "v[%d] = %g", i, t.v[i]);
  gfv_table_free(&t);
}

static void test_header_comments_crlf_spaces(void) {
  char path[512];
  gfv_table t;
  const char *text = "\xEF\xBB\xBF# written by hand\r\n\r\n   \n weight , mu_1\t,cov_1_1\r\n"
                     "# a comment between rows\r\n  0.5 ,\t1.25 , 2\r\n\t\r\n1e-3,-2,3 \r\n";
  int st = read_text(text, &t, path, sizeof path);
  CHECK(st == GFV_OK, "status %d: %s", st, gfv_error_message());
  CHECK(t.rows == 2 && t.cols == 3 && t.has_header, "%zu x %zu, header %d", t.rows, t.cols, t.has_header);
  const double want[6] = {0.5, 1.25, 2, 1e-3, -2, 3};
  for (int i = 0; i < 6 && st == GFV_OK; i++) CHECK(t.v[i] == want[i], "v[%d] = %g", i, t.v[i]);
  gfv_table_free(&t);
}

/* 3000 columns (a line of about 20 kB) and 2000 rows: no line-length limit, and the
 * table grows past its first allocation. */
static void test_long_lines_many_rows(void) {
  const size_t cols = 3000, rows = 2000;
  char *text = malloc(rows * cols * 8 + 1), *p = text, path[512];
  for (size_t i = 0; i < rows; i++)
    for (size_t j = 0; j < cols; j++) p += sprintf(p, "%zu%c", (i * 7 + j) % 1000, j + 1 < cols ? ',' : '\n');
  gfv_table t;
  int st = read_text(text, &t, path, sizeof path);
  free(text);
  CHECK(st == GFV_OK, "status %d: %s", st, gfv_error_message());
  CHECK(t.rows == rows && t.cols == cols, "%zu x %zu", t.rows, t.cols);
  int bad = 0;
  for (size_t i = 0; i < rows && st == GFV_OK; i++)
    for (size_t j = 0; j < cols; j++) bad += t.v[i * cols + j] != (double)((i * 7 + j) % 1000);
  CHECK(bad == 0, "%d wrong values", bad);
  gfv_table_free(&t);
}

static void test_errors(void) {
  expect_error("a,b,c\n1,2,3\n4,5\n", ":3: expected 3 columns, found 2");
  expect_error("1,2\n\n# c\n3,4,5\n", ":4: expected 2 columns, found 3");
  expect_error("1,2,3\n4,abc,6\n", ":2: field 2 'abc' is not a number");
  expect_error("1,2,3x\n", ":1: field 3 '3x' is not a number"); /* not taken for a header */
  expect_error("1,,3\n", ":1: field 2 '' is not a number");
  expect_error("1,2,\n", ":1: field 3 '' is not a number");
  expect_error("1,inf\n", ":1: field 2 'inf' is not a finite number");
  expect_error("x,y\n1,nan\n", ":2: field 2 'nan' is not a finite number");
  expect_error("1,1e999\n", ":1: field 2 '1e999' is not a finite number");
  expect_error("a,b\n1,2,3\n", ":2: the header has 2 columns, this row 3");
  expect_error("weight,mu_1\n", ": no data rows");
  expect_error("# only a comment\n\n", ": no data rows");
  expect_error("", ": no data rows");
  expect_error("a,b\nc,d\n", ":2: field 1 'c' is not a number");
}

static void test_missing_file(void) {
  char path[512], want[1024];
  snprintf(path, sizeof path, "%s/does-not-exist.csv", tmpdir);
  snprintf(want, sizeof want, "cannot open '%s': No such file or directory", path);
  gfv_table t;
  gfv_error_clear();
  int st = gfv_table_read_csv(path, &t);
  CHECK(st == GFV_ERR_INPUT, "status %d", st);
  CHECK(strcmp(gfv_error_message(), want) == 0, "message '%s'", gfv_error_message());
  gfv_table_free(&t);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/gfv_test_csv_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    printf("cannot create a temporary directory\n");
    return 2;
  }
  RUN(test_plain_numbers);
  RUN(test_header_comments_crlf_spaces);
  RUN(test_long_lines_many_rows);
  RUN(test_errors);
  RUN(test_missing_file);
  char path[512];
  snprintf(path, sizeof path, "%s/t.csv", tmpdir);
  remove(path);
  rmdir(tmpdir);
  return harness_report();
}
