/* test_io.c - JSON primitives, atomic output files and output directories. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "harness.h"
#include "io/h5file.h"

static char tmpdir[64];

/* ---- helpers ---------------------------------------------------------------------- */

/* tmpdir/name in a static buffer (one at a time per slot). */
static const char *in_tmp(const char *name, int slot) {
  static char buf[4][512];
  snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, name);
  return buf[slot];
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists(const char *path) {
  struct stat sb;
  return lstat(path, &sb) == 0;
}

/* Entries of dir, except . and ..; with needle, only those whose name contains it. */
static int count_entries(const char *dir, const char *needle) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (!needle || strstr(e->d_name, needle)) n++;
  }
  closedir(d);
  return n;
}

/* The whole file as a string ("" when unreadable); caller frees. */
static char *slurp(const char *path) {
  char *buf = calloc(1, 1 << 16);
  FILE *f = fopen(path, "r");
  if (f && buf) {
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
  }
  if (f) fclose(f);
  return buf;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char sub[1024];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      remove_tree(sub);
    }
    closedir(d);
  }
  remove(path);
}

/* A fresh empty subdirectory of tmpdir for one test. */
static const char *fresh_dir(const char *name) {
  const char *p = in_tmp(name, 3);
  remove_tree(p);
  mkdir(p, 0777);
  return p;
}

/* What a JSON printer writes, as a string (caller frees). */
static char *json_of_string(const char *s) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  gfv_json_string(f, s);
  fclose(f);
  return buf;
}

static char *json_of_number(double x) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  gfv_json_number(f, x);
  fclose(f);
  return buf;
}

/* ---- JSON --------------------------------------------------------------------------- */

static void test_json_string(void) {
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"plain", "\"plain\""},
      {"", "\"\""},
      {"say \"hi\"", "\"say \\\"hi\\\"\""},
      {"back\\slash", "\"back\\\\slash\""},
      {"line\nbreak", "\"line\\u000abreak\""},
      {"tab\there\r\x01\x1f", "\"tab\\u0009here\\u000d\\u0001\\u001f\""},
      {"caf\xc3\xa9 / ok", "\"caf\xc3\xa9 / ok\""}, /* UTF-8 and '/' pass through */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *got = json_of_string(cases[i].in);
    CHECK(strcmp(got, cases[i].out) == 0, "case %zu: got %s, expected %s", i, got, cases[i].out);
    free(got);
  }
  char *got = json_of_string(NULL);
  CHECK(strcmp(got, "null") == 0, "NULL string: %s", got);
  free(got);
}

static void test_json_number(void) {
  static const struct {
    double x;
    const char *out;
  } cases[] = {{1, "1"}, {-2.5, "-2.5"}, {0.1, "0.10000000000000001"}, {1e300, "1.0000000000000001e+300"},
               {0, "0"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *got = json_of_number(cases[i].x);
    CHECK(strcmp(got, cases[i].out) == 0, "%g: got %s, expected %s", cases[i].x, got, cases[i].out);
    free(got);
  }
  /* 17 digits always read back as the same double. */
  const double values[] = {M_PI, -1.0 / 3.0, 2.2250738585072014e-308, 4.9e-324, 1.7976931348623157e308,
                           123456789.123456789};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    char *got = json_of_number(values[i]);
    CHECK(strtod(got, NULL) == values[i], "%s does not read back as %.17g", got, values[i]);
    free(got);
  }
  const double bad[] = {NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < 3; i++) {
    char *got = json_of_number(bad[i]);
    CHECK(strcmp(got, "null") == 0, "non-finite %g gave %s", bad[i], got);
    free(got);
  }
}

/* ---- atomic files ------------------------------------------------------------------- */

static void test_commit_creates_file(void) {
  const char *dir = fresh_dir("commit");
  char path[600];
  snprintf(path, sizeof path, "%s/out.csv", dir);
  gfv_ofile *f = NULL;
  int st = gfv_ofile_open(path, &f);
  CHECK(st == GFV_OK && f, "open: %d %s", st, gfv_error_message());
  if (!f) return;
  fprintf(gfv_ofile_stream(f), "a,b\n1,%d\n", 42);
  CHECK(!exists(path), "the final name must not exist before the commit");
  CHECK(count_entries(dir, ".tmp.") == 1, "one temporary file while writing, found %d",
        count_entries(dir, ".tmp."));
  st = gfv_ofile_commit(f);
  CHECK(st == GFV_OK, "commit: %d %s", st, gfv_error_message());
  char *text = slurp(path);
  CHECK(strcmp(text, "a,b\n1,42\n") == 0, "content: '%s'", text);
  free(text);
  CHECK(count_entries(dir, NULL) == 1, "only the file must remain, found %d entries",
        count_entries(dir, NULL));
  CHECK(count_entries(dir, ".tmp.") == 0, "temporary file left behind");
}

static void test_commit_replaces_file(void) {
  const char *dir = fresh_dir("replace");
  char path[600];
  snprintf(path, sizeof path, "%s/summary.json", dir);
  write_text(path, "old");
  gfv_ofile *f = NULL;
  CHECK(gfv_ofile_open(path, &f) == GFV_OK, "open: %s", gfv_error_message());
  if (!f) return;
  fputs("new", gfv_ofile_stream(f));
  char *text = slurp(path);
  CHECK(strcmp(text, "old") == 0, "the old file must stay until the commit: '%s'", text);
  free(text);
  CHECK(gfv_ofile_commit(f) == GFV_OK, "commit: %s", gfv_error_message());
  text = slurp(path);
  CHECK(strcmp(text, "new") == 0, "after the commit: '%s'", text);
  free(text);
  CHECK(count_entries(dir, NULL) == 1, "%d entries", count_entries(dir, NULL));
}

static void test_abort_leaves_nothing(void) {
  const char *dir = fresh_dir("abort");
  char path[600], old[600];
  snprintf(path, sizeof path, "%s/x.csv", dir);
  snprintf(old, sizeof old, "%s/keep.csv", dir);
  gfv_ofile *f = NULL;
  CHECK(gfv_ofile_open(path, &f) == GFV_OK, "open: %s", gfv_error_message());
  if (f) fputs("partial", gfv_ofile_stream(f));
  gfv_ofile_abort(f);
  CHECK(count_entries(dir, NULL) == 0, "abort must leave an empty directory, found %d",
        count_entries(dir, NULL));
  gfv_ofile_abort(NULL); /* allowed */
  /* Aborting a replacement keeps the old file. */
  write_text(old, "old");
  f = NULL;
  CHECK(gfv_ofile_open(old, &f) == GFV_OK, "open: %s", gfv_error_message());
  if (f) fputs("new", gfv_ofile_stream(f));
  gfv_ofile_abort(f);
  char *text = slurp(old);
  CHECK(strcmp(text, "old") == 0, "old file changed by abort: '%s'", text);
  free(text);
  CHECK(count_entries(dir, NULL) == 1, "%d entries", count_entries(dir, NULL));
}

static void test_open_in_missing_dir(void) {
  char path[600];
  snprintf(path, sizeof path, "%s/no-such-dir/mixture.csv", tmpdir);
  gfv_ofile *f = (gfv_ofile *)&f; /* must be reset to NULL */
  gfv_error_clear();
  int st = gfv_ofile_open(path, &f);
  const char *msg = gfv_error_message();
  CHECK(st == GFV_ERR_IO, "status %d", st);
  CHECK(f == NULL, "handle must be NULL on failure");
  CHECK(contains(msg, path) && contains(msg, "No such file or directory"), "message: %s", msg);
  CHECK(!exists(in_tmp("no-such-dir", 0)), "nothing may be created");
}

/* The directory disappears between open and commit: the rename fails. */
static void test_commit_into_vanished_dir(void) {
  const char *dir = fresh_dir("vanish");
  char path[600];
  snprintf(path, sizeof path, "%s/trace.csv", dir);
  gfv_ofile *f = NULL;
  CHECK(gfv_ofile_open(path, &f) == GFV_OK, "open: %s", gfv_error_message());
  if (!f) return;
  fputs("iteration,elbo\n", gfv_ofile_stream(f));
  /* Remove the temporary file (still open) and the directory behind the writer's back. */
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    if (strstr(e->d_name, ".tmp.")) {
      char tmp[900];
      snprintf(tmp, sizeof tmp, "%s/%s", dir, e->d_name);
      unlink(tmp);
    }
  if (d) closedir(d);
  CHECK(rmdir(dir) == 0, "rmdir: %s", strerror(errno));
  gfv_error_clear();
  int st = gfv_ofile_commit(f);
  const char *msg = gfv_error_message();
  CHECK(st == GFV_ERR_IO, "status %d (%s)", st, msg);
  CHECK(contains(msg, path) && contains(msg, "No such file or directory"), "message: %s", msg);
  CHECK(!exists(dir) && !exists(path), "nothing may appear");
}

/* The final name is a non-empty directory: the write succeeds, the rename cannot. */
static void test_commit_rename_failure(void) {
  const char *dir = fresh_dir("blocked");
  char path[600], inner[700];
  snprintf(path, sizeof path, "%s/samples.csv", dir);
  mkdir(path, 0777);
  snprintf(inner, sizeof inner, "%s/keep", path);
  write_text(inner, "x");
  gfv_ofile *f = NULL;
  CHECK(gfv_ofile_open(path, &f) == GFV_OK, "open: %s", gfv_error_message());
  if (!f) return;
  fputs("1,2\n", gfv_ofile_stream(f));
  gfv_error_clear();
  int st = gfv_ofile_commit(f);
  const char *msg = gfv_error_message();
  CHECK(st == GFV_ERR_IO, "status %d (%s)", st, msg);
  CHECK(contains(msg, "cannot rename") && contains(msg, path), "message: %s", msg);
  CHECK(count_entries(dir, ".tmp.") == 0, "temporary file left behind");
  CHECK(is_dir(path) && exists(inner), "the existing directory must be untouched");
}

/* A write error (file size limit) must surface at the commit, not be lost in a buffer. */
static void test_commit_write_failure(void) {
  const char *dir = fresh_dir("full");
  char path[600];
  snprintf(path, sizeof path, "%s/big.csv", dir);
  struct rlimit old, lim;
  if (getrlimit(RLIMIT_FSIZE, &old) != 0) return;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of a fatal signal */
  gfv_ofile *f = NULL;
  CHECK(gfv_ofile_open(path, &f) == GFV_OK, "open: %s", gfv_error_message());
  lim = old;
  lim.rlim_cur = 4096;
  setrlimit(RLIMIT_FSIZE, &lim);
  if (f)
    for (int i = 0; i < 20000; i++) fprintf(gfv_ofile_stream(f), "%d,0.123456789\n", i);
  gfv_error_clear();
  int st = f ? gfv_ofile_commit(f) : -1;
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, prev);
  const char *msg = gfv_error_message();
  CHECK(st == GFV_ERR_IO, "status %d (%s)", st, msg);
  CHECK(contains(msg, path) && contains(msg, "File too large"), "message: %s", msg);
  CHECK(count_entries(dir, NULL) == 0, "nothing may be left, found %d", count_entries(dir, NULL));
}

/* ---- directories -------------------------------------------------------------------- */

static void test_mkdir_p(void) {
  const char *nested = in_tmp("a/b/c", 0);
  CHECK(gfv_mkdir_p(nested) == GFV_OK, "nested: %s", gfv_error_message());
  CHECK(is_dir(nested), "a/b/c was not created");
  CHECK(gfv_mkdir_p(nested) == GFV_OK, "existing directory: %s", gfv_error_message());
  const char *slashes = in_tmp("d//e/", 0);
  CHECK(gfv_mkdir_p(slashes) == GFV_OK && is_dir(in_tmp("d/e", 1)), "d//e/: %s",
        gfv_error_message());

  const char *file = in_tmp("plainfile", 1);
  write_text(file, "x");
  const char *below = in_tmp("plainfile/sub/deeper", 2);
  gfv_error_clear();
  int st = gfv_mkdir_p(below);
  const char *msg = gfv_error_message();
  CHECK(st == GFV_ERR_IO, "below a file: status %d", st);
  CHECK(contains(msg, below) && contains(msg, "'") && contains(msg, "not a directory") &&
            contains(msg, "plainfile'"),
        "message: %s", msg);
  st = gfv_mkdir_p(file);
  CHECK(st == GFV_ERR_IO && contains(gfv_error_message(), "exists and is not a directory"),
        "the path is a file: %d %s", st, gfv_error_message());
  st = gfv_mkdir_p("");
  CHECK(st == GFV_ERR_IO, "empty name: %d", st);
}

static void test_dir_check_writable(void) {
  const char *fresh = in_tmp("w/x/y", 0);
  int st = gfv_dir_check_writable(fresh);
  CHECK(st == GFV_OK, "fresh nested dir: %d %s", st, gfv_error_message());
  CHECK(is_dir(fresh), "the directory must be created");
  CHECK(count_entries(fresh, NULL) == 0, "the probe file must be removed");
  CHECK(gfv_dir_check_writable(fresh) == GFV_OK, "second check: %s", gfv_error_message());

  const char *file = in_tmp("somefile", 1);
  write_text(file, "x");
  const char *below = in_tmp("somefile/sub", 2);
  gfv_error_clear();
  st = gfv_dir_check_writable(below);
  const char *msg = gfv_error_message();
  CHECK(st == GFV_ERR_IO, "below a file: status %d", st);
  CHECK(contains(msg, "output directory") && contains(msg, below) && contains(msg, "somefile'") &&
            contains(msg, "not a directory"),
        "message: %s", msg);
  CHECK(strchr(msg, '\n') == NULL, "one line: %s", msg);
  st = gfv_dir_check_writable(file);
  CHECK(st == GFV_ERR_IO && contains(gfv_error_message(), "exists and is not a directory"),
        "the path is a file: %d %s", st, gfv_error_message());

  /* Permission bits stop writes only for non-root users. */
  if (geteuid() != 0) {
    const char *ro = in_tmp("readonly", 0);
    mkdir(ro, 0555);
    chmod(ro, 0555);
    st = gfv_dir_check_writable(ro);
    CHECK(st == GFV_ERR_IO && contains(gfv_error_message(), "cannot write to output directory") &&
              contains(gfv_error_message(), "Permission denied"),
          "read-only dir: %d %s", st, gfv_error_message());
    chmod(ro, 0755);
  }
}

/* ---- HDF5 datasets written in blocks (src/io/h5file.h) --------------------------------- */

/* Reads a whole file (at most 1 MB) into buf; its size, or -1. */
static long read_bytes(const char *path, unsigned char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return (long)n;
}

/* The checkpoint's pattern: each of NSET datasets created and given its first block in the
 * order whole arrays were written, then the trace, then the other blocks; or whole arrays.
 * Ten datasets of 7 kB, as in a checkpoint: their object headers outgrow HDF5's first 2 kB
 * block of metadata, so creating them all before their data would change the file. */
#define H5K 300
#define NSET 10
static int write_h5(const char *path, int blocks, const double *x, const double *t) {
  const size_t kx[2] = {H5K, 3}, kt[2] = {4, 6};
  char name[NSET][8];
  gfv_h5 h;
  gfv_h5_set set[NSET];
  for (int i = 0; i < NSET; i++) set[i].id = H5I_INVALID_HID, snprintf(name[i], sizeof name[i], "d%d", i);
  int st = gfv_h5_create(path, 65536, &h);
  if (st) return st;
  for (int i = 0; !st && i < NSET; i++) {
    if (!blocks) st = gfv_h5_write_doubles(&h, name[i], 2, kx, x);
    else if (!(st = gfv_h5_set_create(&h, name[i], 2, kx, &set[i]))) st = gfv_h5_set_write_rows(&set[i], 0, 70, x);
  }
  if (!st) st = gfv_h5_write_doubles(&h, "trace", 2, kt, t);
  for (size_t k = 70; blocks && !st && k < H5K; k += 100)
    for (int i = 0; !st && i < NSET; i++)
      st = gfv_h5_set_write_rows(&set[i], k, H5K - k < 100 ? H5K - k : 100, x + 3 * k);
  double back[15];
  if (blocks && !st) st = gfv_h5_set_read_rows(&set[3], 68, 5, back); /* across two blocks */
  if (blocks && !st && memcmp(back, x + 3 * 68, sizeof back) != 0) st = GFV_ERR_INTERNAL;
  for (int i = 0; i < NSET; i++) gfv_h5_set_close(&set[i]);
  if (!st) st = gfv_h5_attr_double(&h, "scalar", 1.5);
  if (!st) return gfv_h5_commit(&h);
  gfv_h5_abort(&h);
  return st;
}

/* A file written in blocks is byte for byte the one written whole (what keeps checkpoint.h5
 * and mixture.h5 those of before).  HDF5 stamps objects with the time in seconds: a pair
 * that straddles a second may differ there, so a mismatch is tried again, twice. */
static void test_h5_blocks_same_file(void) {
  const char *dir = fresh_dir("h5blocks");
  char a[600], b[600];
  snprintf(a, sizeof a, "%s/whole.h5", dir);
  snprintf(b, sizeof b, "%s/blocks.h5", dir);
  static double x[3 * H5K], t[24];
  for (int i = 0; i < 3 * H5K; i++) x[i] = exp(-0.01 * i);
  for (int i = 0; i < 24; i++) t[i] = i;
  static unsigned char fa[1 << 20], fb[1 << 20];
  long na = -1, nb = -2;
  int same = 0;
  for (int attempt = 0; attempt < 3 && !same; attempt++) {
    CHECK(write_h5(a, 0, x, t) == GFV_OK, "whole: %s", gfv_error_message());
    CHECK(write_h5(b, 1, x, t) == GFV_OK, "blocks: %s", gfv_error_message());
    na = read_bytes(a, fa, sizeof fa), nb = read_bytes(b, fb, sizeof fb);
    same = na > 0 && na == nb && memcmp(fa, fb, (size_t)na) == 0;
  }
  CHECK(same, "the file written in blocks differs (%ld and %ld bytes)", na, nb);
  CHECK(count_entries(dir, ".tmp.") == 0, "temporary file left behind");
}

int main(void) {
  strcpy(tmpdir, "/tmp/gfv-test-io-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_json_string);
  RUN(test_json_number);
  RUN(test_commit_creates_file);
  RUN(test_commit_replaces_file);
  RUN(test_abort_leaves_nothing);
  RUN(test_open_in_missing_dir);
  RUN(test_commit_into_vanished_dir);
  RUN(test_commit_rename_failure);
  RUN(test_commit_write_failure);
  RUN(test_mkdir_p);
  RUN(test_dir_check_writable);
  RUN(test_h5_blocks_same_file);
  remove_tree(tmpdir);
  return harness_report();
}
