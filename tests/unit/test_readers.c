/* test_readers.c - read errors in the two text readers (the config file and the CSV tables
 * of --data, --test-data and gmm:FILE) are errors, never the end of the file.
 *
 * The faults are made deterministic with glibc's fopencookie: a stream that returns the
 * bytes of a text and then fails with errno EIO (or ENOMEM) after N bytes, at a line
 * boundary, in the middle of a line, or at the very first read.  getline's own ENOMEM,
 * which sets errno but not the stream's error flag, comes from an endless line read in a
 * child process whose address space is limited (skipped under the sanitizers, which
 * reserve terabytes of address space).  A stream that does not fail must read the same as
 * the file. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gflowvi/config.h"
#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "harness.h"

/* The stream's source: text, failing with err once fail_at bytes have been read; with
 * endless, text is followed by 'x' without end. */
typedef struct {
  const char *text;
  size_t len, pos, fail_at;
  int err, endless;
} source;

static ssize_t source_read(void *cookie, char *buf, size_t size) {
  source *s = cookie;
  if (s->pos >= s->fail_at) {
    errno = s->err;
    return -1;
  }
  size_t n = s->fail_at - s->pos;
  if (n > size) n = size;
  if (s->pos >= s->len) {
    if (!s->endless) return 0;
    memset(buf, 'x', n);
  } else {
    if (n > s->len - s->pos) n = s->len - s->pos;
    memcpy(buf, s->text + s->pos, n);
  }
  s->pos += n;
  return (ssize_t)n;
}

static FILE *open_source(source *s, const char *text, size_t fail_at, int err) {
  *s = (source){text, strlen(text), 0, fail_at, err, 0};
  cookie_io_functions_t io = {.read = source_read};
  return fopencookie(s, "r", io);
}

#define NEVER ((size_t)-1)

static const char csv_text[] = "a,b\n1,2\n3,4.5\n5,6\n";
static const char cfg_text[] = "particles = 5\niters = 7\nsamples = 3\n";

static int read_csv(const char *text, size_t fail_at, int err, gfv_table *t) {
  source s;
  FILE *f = open_source(&s, text, fail_at, err);
  gfv_error_clear();
  int st = gfv_table_read_csv_stream(f, "data.csv", t);
  fclose(f);
  return st;
}

static int read_cfg(const char *text, size_t fail_at, int err, gfv_config *c) {
  source s;
  FILE *f = open_source(&s, text, fail_at, err);
  gfv_config_defaults(c);
  gfv_error_clear();
  int st = gfv_config_read_stream(c, f, "x.cfg");
  fclose(f);
  return st;
}

static void expect_message(int st, const char *want) {
  CHECK(st == GFV_ERR_INPUT, "status %d, want %d (%s)", st, GFV_ERR_INPUT, gfv_error_message());
  CHECK(strcmp(gfv_error_message(), want) == 0, "message '%s', want '%s'", gfv_error_message(), want);
}

/* A stream that does not fail reads what the file holds. */
static void test_stream_reads_as_file(void) {
  char path[512];
  const char *base = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/gfv_test_readers_XXXXXX", base && *base ? base : "/tmp");
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp");
  if (fd < 0) return;
  CHECK(write(fd, csv_text, sizeof csv_text - 1) == (ssize_t)(sizeof csv_text - 1), "write");
  close(fd);
  gfv_table a, b;
  int sa = gfv_table_read_csv(path, &a), sb = read_csv(csv_text, NEVER, 0, &b);
  CHECK(sa == GFV_OK && sb == GFV_OK, "status %d %d: %s", sa, sb, gfv_error_message());
  CHECK(b.rows == 3 && b.cols == 2 && b.has_header, "stream: %zu x %zu header %d", b.rows, b.cols,
        b.has_header);
  CHECK(a.rows == b.rows && a.cols == b.cols && a.has_header == b.has_header &&
            memcmp(a.v, b.v, a.rows * a.cols * sizeof(double)) == 0,
        "file and stream differ");
  CHECK(b.v && b.v[3] == 4.5, "v[3] = %g", b.v ? b.v[3] : 0.0);
  gfv_table_free(&a);
  gfv_table_free(&b);

  FILE *f = fopen(path, "w");
  fputs(cfg_text, f);
  fclose(f);
  gfv_config ca, cb;
  gfv_config_defaults(&ca);
  sa = gfv_config_read_file(&ca, path);
  sb = read_cfg(cfg_text, NEVER, 0, &cb);
  CHECK(sa == GFV_OK && sb == GFV_OK, "status %d %d: %s", sa, sb, gfv_error_message());
  CHECK(cb.particles == 5 && cb.iters == 7 && cb.samples == 3, "stream: %ld %ld %ld", cb.particles,
        cb.iters, cb.samples);
  CHECK(ca.particles == cb.particles && ca.iters == cb.iters && ca.samples == cb.samples,
        "file and stream differ");
  unlink(path);
}

/* EIO after the second line, in the middle of the third, at the first read; ENOMEM. */
static void test_csv_read_error(void) {
  gfv_table t;
  const size_t two = strlen("a,b\n1,2\n");
  expect_message(read_csv(csv_text, two, EIO, &t), "cannot read 'data.csv' after line 2: Input/output error");
  CHECK(t.v == NULL && t.rows == 0, "table not cleared");
  /* "3," would otherwise pass as a line with an empty field (or worse, "3,4" for "3,4.5"). */
  expect_message(read_csv(csv_text, two + 3, EIO, &t), "cannot read 'data.csv' after line 2: Input/output error");
  expect_message(read_csv(csv_text, two + 4, EIO, &t), "cannot read 'data.csv' after line 2: Input/output error");
  expect_message(read_csv(csv_text, 0, EIO, &t), "cannot read 'data.csv': Input/output error");
  expect_message(read_csv(csv_text, two, ENOMEM, &t),
                 "cannot read 'data.csv' after line 2: Cannot allocate memory");
  /* Right after the last byte: the end of the file is not reached, the next read fails. */
  expect_message(read_csv(csv_text, sizeof csv_text - 1, EIO, &t),
                 "cannot read 'data.csv' after line 4: Input/output error");
  gfv_table_free(&t);
}

static void test_config_read_error(void) {
  gfv_config c;
  const size_t two = strlen("particles = 5\niters = 7\n");
  expect_message(read_cfg(cfg_text, two, EIO, &c),
                 "cannot read config file 'x.cfg' after line 2: Input/output error");
  /* "samples " alone would otherwise be a syntax error that hides the cause. */
  expect_message(read_cfg(cfg_text, two + 8, EIO, &c),
                 "cannot read config file 'x.cfg' after line 2: Input/output error");
  expect_message(read_cfg(cfg_text, 0, EIO, &c), "cannot read config file 'x.cfg': Input/output error");
  expect_message(read_cfg(cfg_text, two, ENOMEM, &c),
                 "cannot read config file 'x.cfg' after line 2: Cannot allocate memory");
  expect_message(read_cfg(cfg_text, sizeof cfg_text - 1, ENOMEM, &c),
                 "cannot read config file 'x.cfg' after line 3: Cannot allocate memory");
}

#ifndef GFV_SANITIZE
/* getline's own allocation failure: an endless second line in a child whose address
 * space is limited to what it uses now plus 128 MiB.  The child exits 0 when the reader
 * failed with the expected message. */
static int enomem_child(int csv) {
  long pages = 0;
  FILE *statm = fopen("/proc/self/statm", "r");
  if (!statm || fscanf(statm, "%ld", &pages) != 1) return 2;
  fclose(statm);
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)128 << 20);
  if (setrlimit(RLIMIT_AS, &rl) != 0) return 2;
  source s;
  FILE *f = open_source(&s, csv ? "1,2\n" : "particles = 5\n", NEVER, 0);
  s.endless = 1;
  gfv_error_clear();
  int st;
  if (csv) {
    gfv_table t;
    st = gfv_table_read_csv_stream(f, "data.csv", &t);
    gfv_table_free(&t);
  } else {
    gfv_config c;
    gfv_config_defaults(&c);
    st = gfv_config_read_stream(&c, f, "x.cfg");
  }
  const char *want = csv ? "cannot read 'data.csv' after line 1: Cannot allocate memory"
                         : "cannot read config file 'x.cfg' after line 1: Cannot allocate memory";
  int ok = st == GFV_ERR_INPUT && strcmp(gfv_error_message(), want) == 0 && !ferror(f);
  if (!ok) printf("# child: status %d, message '%s', want '%s'\n", st, gfv_error_message(), want);
  fflush(stdout);
  return ok ? 0 : 1;
}
#endif

static void test_getline_enomem(void) {
#ifdef GFV_SANITIZE
  printf("# test_getline_enomem: skipped under the sanitizers (they need the address space)\n");
#else
  for (int csv = 0; csv < 2; csv++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(enomem_child(csv));
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child status 0x%x",
          csv ? "csv" : "config", status);
  }
#endif
}

int main(void) {
  RUN(test_stream_reads_as_file);
  RUN(test_csv_read_error);
  RUN(test_config_read_error);
  RUN(test_getline_enomem);
  return harness_report();
}
