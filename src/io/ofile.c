/* ofile.c - atomic output files and output directories.
 *
 * An output is written to "<path>.tmp.<pid>" and renamed over path only after it was
 * flushed and synced, so readers (and a crash) see the old file or the whole new one.
 * The pid keeps concurrent runs writing the same path from clobbering each other's
 * temporary file. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gflowvi/error.h"
#include "gflowvi/io.h"
#include "io/ofile_named.h"

struct gfv_ofile {
  FILE *fp;
  char *path; /* final name */
  char *tmp;  /* name written to until the commit */
  int named;  /* gfv_ofile_open_named: another writer (HDF5) writes tmp; 1 until synced */
};

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static void ofile_free(gfv_ofile *f) {
  free(f->path);
  free(f->tmp);
  free(f);
}

/* The names of f; fp stays NULL. */
static int ofile_names(const char *path, gfv_ofile **out) {
  *out = NULL;
  gfv_ofile *f = NULL;
  GFV_ALLOC(f, 1);
  size_t n = strlen(path) + 32;
  f->path = dup_string(path);
  f->tmp = malloc(n);
  if (!f->path || !f->tmp) {
    ofile_free(f);
    GFV_ERROR(GFV_ERR_MEMORY, "out of memory opening '%s'", path);
  }
  snprintf(f->tmp, n, "%s.tmp.%ld", path, (long)getpid());
  *out = f;
  return GFV_OK;
}

int gfv_ofile_open_named(const char *path, gfv_ofile **out) {
  GFV_CALL(ofile_names(path, out));
  (*out)->named = 1;
  return GFV_OK;
}

const char *gfv_ofile_tmp_path(const gfv_ofile *f) { return f->tmp; }

int gfv_ofile_open(const char *path, gfv_ofile **out) {
  gfv_ofile *f = NULL;
  *out = NULL;
  GFV_CALL(ofile_names(path, &f));
  f->fp = fopen(f->tmp, "w");
  if (!f->fp) {
    int err = errno;
    ofile_free(f);
    GFV_ERROR(GFV_ERR_IO, "cannot create output file '%s': %s", path, strerror(err));
  }
  *out = f;
  return GFV_OK;
}

FILE *gfv_ofile_stream(gfv_ofile *f) { return f ? f->fp : NULL; }

/* Makes the rename itself durable; best effort, since the data is complete either way and
 * some file systems cannot sync a directory. */
static void sync_parent_dir(const char *path) {
  char *dir = dup_string(path);
  if (!dir) return;
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) slash[1] = '\0';
  else *slash = '\0';
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

/* Flushes, syncs and closes f->fp; 0 or the errno of the first failure.  The stream is
 * closed in every case. */
static int flush_and_close(FILE *fp) {
  int err = 0;
  if (fflush(fp) != 0) err = errno;
  /* An earlier failed write leaves only the error flag; its errno is gone. */
  if (!err && ferror(fp)) err = EIO;
  /* EINVAL: the file system cannot sync this file, which is no reason to lose it. */
  if (!err && fsync(fileno(fp)) != 0 && errno != EINVAL) err = errno;
  if (fclose(fp) != 0 && !err) err = errno;
  return err;
}

/* Syncs the file another writer wrote and closed; 0 or an errno. */
static int sync_named(const char *tmp) {
  int fd = open(tmp, O_RDONLY), err = 0;
  if (fd < 0) return errno;
  if (fsync(fd) != 0 && errno != EINVAL) err = errno;
  close(fd);
  return err;
}

int gfv_ofile_finish(gfv_ofile *f) {
  GFV_CHECK(f, GFV_ERR_INTERNAL, "gfv_ofile_finish: no file");
  if (!f->fp && !f->named) return GFV_OK; /* finished before */
  int err = f->fp ? flush_and_close(f->fp) : sync_named(f->tmp);
  f->fp = NULL;
  f->named = 0;
  if (err) {
    remove(f->tmp);
    GFV_ERROR(GFV_ERR_IO, "cannot write '%s': %s", f->path, strerror(err));
  }
  return GFV_OK;
}

int gfv_ofile_commit(gfv_ofile *f) {
  GFV_CHECK(f, GFV_ERR_INTERNAL, "gfv_ofile_commit: no file");
  int st = gfv_ofile_finish(f);
  if (st) {
    ofile_free(f);
    GFV_CALL(st);
  }
  if (rename(f->tmp, f->path) != 0) {
    int err = errno;
    remove(f->tmp);
    gfv_error_set(GFV_ERR_IO, __FILE__, __LINE__, __func__, "cannot rename '%s' to '%s': %s",
                  f->tmp, f->path, strerror(err));
    ofile_free(f);
    return GFV_ERR_IO;
  }
  sync_parent_dir(f->path);
  ofile_free(f);
  return GFV_OK;
}

void gfv_ofile_abort(gfv_ofile *f) {
  if (!f) return;
  if (f->fp) fclose(f->fp);
  remove(f->tmp);
  ofile_free(f);
}

/* ---- directories ------------------------------------------------------------------- */

/* mkdir that accepts an existing directory.  ENOTDIR when path exists as something else. */
static int make_one(const char *path) {
  if (mkdir(path, 0777) == 0) return 0;
  int err = errno;
  struct stat sb;
  if (err == EEXIST) return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? 0 : ENOTDIR;
  return err;
}

/* Creates dir and its parents.  Returns 0 or an errno; failed receives the component that
 * could not be created (or that exists and is not a directory). */
static int mkdir_all(const char *dir, char *failed, size_t n) {
  char *buf = dup_string(dir);
  if (!buf) return ENOMEM;
  int err = 0;
  /* Each '/' that follows a name ends a parent: create the prefix before it.  On failure
   * buf stays cut there, naming the failed component. */
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/' || p[-1] == '/') continue;
    *p = '\0';
    err = make_one(buf);
    if (err) break;
    *p = '/';
  }
  if (!err) err = make_one(buf);
  if (err) snprintf(failed, n, "%s", buf);
  free(buf);
  return err;
}

/* The reason part of a directory error message. */
static void dir_reason(const char *dir, const char *failed, int err, char *buf, size_t n) {
  if (err == ENOTDIR) snprintf(buf, n, "'%s' exists and is not a directory", failed);
  else if (strcmp(failed, dir) != 0) snprintf(buf, n, "'%s': %s", failed, strerror(err));
  else snprintf(buf, n, "%s", strerror(err));
}

int gfv_mkdir_p(const char *dir) {
  GFV_CHECK(dir && dir[0], GFV_ERR_IO, "cannot create a directory with an empty name");
  char failed[4096], reason[4096 + 128];
  int err = mkdir_all(dir, failed, sizeof failed);
  if (!err) return GFV_OK;
  dir_reason(dir, failed, err, reason, sizeof reason);
  GFV_ERROR(GFV_ERR_IO, "cannot create directory '%s': %s", dir, reason);
}

int gfv_dir_check_writable(const char *dir) {
  GFV_CHECK(dir && dir[0], GFV_ERR_IO, "the output directory name is empty");
  char failed[4096], reason[4096 + 128];
  int err = mkdir_all(dir, failed, sizeof failed);
  if (err) {
    dir_reason(dir, failed, err, reason, sizeof reason);
    GFV_ERROR(GFV_ERR_IO, "cannot create output directory '%s': %s", dir, reason);
  }
  /* Only a real file proves writability (permissions, read-only mounts, ACLs, quotas). */
  size_t n = strlen(dir) + 64;
  char *probe = malloc(n);
  GFV_CHECK(probe, GFV_ERR_MEMORY, "out of memory checking '%s'", dir);
  snprintf(probe, n, "%s/.gflowvi-probe.%ld", dir, (long)getpid());
  int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    close(fd);
    unlink(probe);
  }
  free(probe);
  GFV_CHECK(!err, GFV_ERR_IO, "cannot write to output directory '%s': %s", dir, strerror(err));
  return GFV_OK;
}
