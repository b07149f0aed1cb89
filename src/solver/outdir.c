/* outdir.c - clearing the output directory of an earlier run's files before a new run.
 *
 * Without it a new run into an old --out leaves the old run's other files beside the new
 * ones (a 2-D run's density.csv beside a 4-D run's outputs), a failed run leaves the
 * previous summary.json (so the folder looks complete), and the temporary files of a
 * killed run ("<name>.tmp.<pid>", see io.h) stay forever.  Only the names gflowvi itself
 * writes are touched (outputs.c's list, the plots of tools/plot.py, and the temporaries
 * of those and of the checkpoint), only in that directory, never recursively, and never
 * checkpoint.h5 itself: a restart may need it. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "gflowvi/error.h"
#include "solver/solver_impl.h"

/* tools/plot.py's figures. */
static const char *const plot_names[] = {"density.png", "trace.png"};
#define NPLOTS (sizeof plot_names / sizeof plot_names[0])
#define MAX_KEEP 16

typedef struct {
  const char *dir;
  int dry_run;
  struct stat keep[MAX_KEEP];
  size_t nkeep, count;
  double bytes;
} cleaner;

/* Whether name is "<base>.tmp.<digits>" for an output or the checkpoint; *pid gets the
 * digits. */
static int is_temporary(const char *name, long *pid) {
  for (int i = 0; i <= F_COUNT; i++) {
    const char *base = i < F_COUNT ? gfv_output_file_names[i] : GFV_CHECKPOINT_NAME;
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0 || strncmp(name + n, ".tmp.", 5) != 0) continue;
    const char *digits = name + n + 5;
    if (!*digits || strspn(digits, "0123456789") != strlen(digits)) return 0;
    *pid = strtol(digits, NULL, 10);
    return 1;
  }
  return 0;
}

/* Whether pid is a live gflowvi on this host (it may be writing that file right now). */
static int live_gflowvi(long pid) {
  char path[64], comm[32] = "";
  snprintf(path, sizeof path, "/proc/%ld/comm", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
  fclose(f);
  return strcmp(comm, "gflowvi\n") == 0;
}

/* Removes (or with dry_run counts) dir/name when it is a file that is not to be kept. */
static int clean_one(cleaner *c, const char *name) {
  char path[GFV_PATH_MAX + 300];
  snprintf(path, sizeof path, "%s/%s", c->dir, name);
  struct stat sb;
  if (lstat(path, &sb) != 0 || S_ISDIR(sb.st_mode)) return GFV_OK;
  for (size_t i = 0; i < c->nkeep; i++)
    if (sb.st_dev == c->keep[i].st_dev && sb.st_ino == c->keep[i].st_ino) {
      if (!c->dry_run)
        gfv_log_line(GFV_LOG_WARNING, "gflowvi: warning: left '%s' in place: it is an input of this run",
                     path);
      return GFV_OK;
    }
  c->count++;
  /* Space comes back only when this was the file's last name. */
  if (S_ISREG(sb.st_mode) && sb.st_nlink == 1) c->bytes += (double)sb.st_size;
  if (c->dry_run || unlink(path) == 0 || errno == ENOENT) return GFV_OK;
  GFV_ERROR(GFV_ERR_IO, "--out=%s: cannot remove the previous run's '%s': %s (remove it by hand)",
            c->dir, path, strerror(errno));
}

/* The stale temporary files in dir. */
static int clean_temporaries(cleaner *c) {
  DIR *d = opendir(c->dir);
  if (!d) return GFV_OK; /* nothing to clean; the writability check reports real trouble */
  int st = GFV_OK;
  for (struct dirent *e; !st && (e = readdir(d)) != NULL;) {
    long pid;
    if (!is_temporary(e->d_name, &pid)) continue;
    /* Nothing of ours is written yet, so our own pid marks the file of an earlier process
     * that had it.  Another live gflowvi on this host may be writing its file into the
     * same directory right now: that file is left alone. */
    if (pid != (long)getpid() && live_gflowvi(pid)) {
      if (!c->dry_run)
        gfv_log_line(GFV_LOG_WARNING,
                     "gflowvi: warning: left '%s/%s' in place: process %ld, another gflowvi, may "
                     "be writing it (two runs into one --out overwrite each other's files)",
                     c->dir, e->d_name, pid);
      continue;
    }
    st = clean_one(c, e->d_name);
  }
  closedir(d);
  return st;
}

int gfv_outputs_clean(const char *dir, const char *const *keep, size_t nkeep, int dry_run,
                      size_t *count, double *bytes) {
  cleaner c = {.dir = dir, .dry_run = dry_run};
  for (size_t i = 0; i < nkeep && c.nkeep < MAX_KEEP; i++)
    if (keep[i] && keep[i][0] && stat(keep[i], &c.keep[c.nkeep]) == 0) c.nkeep++;
  /* summary.json first: a folder that has one must have the complete set beside it. */
  GFV_CALL(clean_one(&c, gfv_output_file_names[F_SUMMARY]));
  for (int i = 0; i < F_COUNT; i++)
    if (i != F_SUMMARY) GFV_CALL(clean_one(&c, gfv_output_file_names[i]));
  for (size_t i = 0; i < NPLOTS; i++) GFV_CALL(clean_one(&c, plot_names[i]));
  GFV_CALL(clean_temporaries(&c));
  if (count) *count = c.count;
  if (bytes) *bytes = c.bytes;
  return GFV_OK;
}
