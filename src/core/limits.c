/* limits.c - the memory limits in force (see limits.h).
 *
 * Per process, the kernel enforces RLIMIT_AS (ulimit -v: all mappings, VmSize) and
 * RLIMIT_DATA (ulimit -d: the heap and private writable mappings, VmData); a run that
 * exceeds one gets failed allocations.  Per node, a memory cgroup (what Slurm's
 * ConstrainRAMSpace sets up for a job) OOM-kills the whole job without a word, and
 * beyond MemAvailable the node swaps or its OOM killer picks a victim.  A cgroup's limit
 * applies to everything below it, so every parent up to the hierarchy's mount point is
 * read too; with cgroup v1 and v2 both mounted (hybrid systems), both are read. */
#include "core/limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* A v1 limit at or above this is "unlimited" (the kernel reports 2^63 rounded to a page). */
#define GFV_CGROUP_V1_UNLIMITED 1e18

int gfv_read_kb_field(const char *path, const char *key, double *bytes) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[512];
  size_t n = strlen(key);
  int found = -1;
  while (found && fgets(line, sizeof line, f)) {
    if (strncmp(line, key, n) != 0 || line[n] != ':') continue;
    char *end;
    double v = strtod(line + n + 1, &end);
    if (end == line + n + 1 || !isfinite(v) || v < 0) break;
    while (*end == ' ' || *end == '\t') end++;
    /* The kernel writes kB (KiB) for sizes; a bare number is a count. */
    *bytes = strncmp(end, "kB", 2) == 0 ? v * 1024.0 : v;
    found = 0;
  }
  fclose(f);
  return found;
}

static void set_none(gfv_mem_limit *out) {
  out->free = out->limit = INFINITY;
  out->name[0] = '\0';
}

/* Keeps in *out the tighter of *out and (free, limit, name). */
static void tighter(gfv_mem_limit *out, double free, double limit, const char *name) {
  if (!(free < out->free)) return;
  out->free = free < 0 ? 0 : free;
  out->limit = limit;
  snprintf(out->name, sizeof out->name, "%.4000s", name);
}

void gfv_process_memory_limit(const char *status, gfv_mem_limit *out) {
  static const struct {
    int resource;
    const char *field, *name;
  } limits[] = {{RLIMIT_AS, "VmSize", "RLIMIT_AS (ulimit -v)"},
                {RLIMIT_DATA, "VmData", "RLIMIT_DATA (ulimit -d)"}};
  set_none(out);
  for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    struct rlimit rl;
    if (getrlimit(limits[i].resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) continue;
    double used = 0; /* unknown (no /proc): the whole limit counts as free */
    gfv_read_kb_field(status, limits[i].field, &used);
    tighter(out, (double)rl.rlim_cur - used, (double)rl.rlim_cur, limits[i].name);
  }
}

/* ---- cgroups ------------------------------------------------------------------------ */

/* The first number in a file, or -1 (missing, or "max": no limit) . */
static double read_number(const char *dir, const char *file) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  double v = -1;
  if (fscanf(f, "%lf", &v) != 1 || !isfinite(v) || v < 0) v = -1;
  fclose(f);
  return v;
}

/* The value of "key N" in DIR/memory.stat, or 0. */
static double stat_field(const char *dir, const char *key) {
  char path[4200], name[128];
  snprintf(path, sizeof path, "%s/memory.stat", dir);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  double v, found = 0;
  while (fscanf(f, "%127s %lf", name, &v) == 2)
    if (strcmp(name, key) == 0) {
      found = v;
      break;
    }
  fclose(f);
  return found;
}

/* mountinfo escapes blanks and backslashes as \ooo; decodes s in place. */
static void unescape(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
        p[3] <= '7') {
      *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
      p += 3;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
}

/* Whether the comma-separated list has item. */
static int has_item(const char *list, const char *item) {
  size_t n = strlen(item);
  for (const char *p = list;; p++) {
    size_t len = strcspn(p, ",");
    if (len == n && strncmp(p, item, n) == 0) return 1;
    p += len;
    if (!*p) return 0;
  }
}

/* The mount of the memory hierarchy (v2: fstype cgroup2; v1: fstype cgroup with the memory
 * controller): its root within the hierarchy and its mount point.  0 or -1. */
static int find_mount(const char *mountinfo, int v2, char *root, char *point, size_t size) {
  FILE *f = fopen(mountinfo, "r");
  if (!f) return -1;
  char line[8192];
  int found = -1;
  while (found && fgets(line, sizeof line, f)) {
    char *field[6] = {0}, *save = NULL, *tok = strtok_r(line, " \n", &save);
    int n = 0;
    for (; tok && n < 6; tok = strtok_r(NULL, " \n", &save)) field[n++] = tok;
    while (tok && strcmp(tok, "-") != 0) tok = strtok_r(NULL, " \n", &save); /* optional fields */
    char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
    char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
    char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
    if (n < 5 || !super) continue;
    if (v2 ? strcmp(fstype, "cgroup2") != 0
           : strcmp(fstype, "cgroup") != 0 || !has_item(super, "memory"))
      continue;
    unescape(field[3]);
    unescape(field[4]);
    snprintf(root, size, "%s", field[3]);
    snprintf(point, size, "%s", field[4]);
    found = 0;
  }
  fclose(f);
  return found;
}

/* The process's path in the hierarchy from /proc/self/cgroup: "0::PATH" (v2) or
 * "N:...,memory,...:PATH" (v1).  0 or -1. */
static int find_path(const char *proc_cgroup, int v2, char *path, size_t size) {
  FILE *f = fopen(proc_cgroup, "r");
  if (!f) return -1;
  char line[8192];
  int found = -1;
  while (found && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c1 = *c2 = '\0';
    int match = v2 ? strcmp(line, "0") == 0 && c1[1] == '\0' : has_item(c1 + 1, "memory");
    if (!match) continue;
    snprintf(path, size, "%s", c2 + 1);
    found = 0;
  }
  fclose(f);
  return found;
}

/* Walks from the process's cgroup directory up to the mount point, keeping the tightest
 * limit in *out. */
static void walk_hierarchy(const char *proc_cgroup, const char *mountinfo, int v2,
                           gfv_mem_limit *out) {
  char root[4096], point[4096], path[4096], dir[8200];
  if (find_mount(mountinfo, v2, root, point, sizeof root) ||
      find_path(proc_cgroup, v2, path, sizeof path))
    return;
  /* The path is relative to the hierarchy's root; the mount shows the subtree at root.
   * A path outside it (a container that sees the host's path) leaves the mount point,
   * the nearest cgroup we can read. */
  size_t rn = strcmp(root, "/") == 0 ? 0 : strlen(root);
  const char *rel = "";
  if (strncmp(path, root, rn) == 0 && (path[rn] == '/' || path[rn] == '\0')) rel = path + rn;
  snprintf(dir, sizeof dir, "%s%s", point, strcmp(rel, "/") == 0 ? "" : rel);
  size_t stop = strlen(point);
  for (;;) {
    double limit = read_number(dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    if (limit >= 0 && (v2 || limit < GFV_CGROUP_V1_UNLIMITED)) {
      double usage = read_number(dir, v2 ? "memory.current" : "memory.usage_in_bytes");
      /* Page cache that is not in active use is reclaimed before the OOM killer acts. */
      double cache = stat_field(dir, v2 ? "inactive_file" : "total_inactive_file");
      if (!v2 && cache == 0) cache = stat_field(dir, "inactive_file");
      double used = usage > cache ? usage - cache : 0;
      char name[sizeof out->name];
      snprintf(name, sizeof name, "the memory cgroup %.4000s", dir);
      tighter(out, limit - used, limit, name);
    }
    if (strlen(dir) <= stop) break;
    char *slash = strrchr(dir + stop, '/');
    if (!slash) break;
    *slash = '\0';
  }
}

void gfv_cgroup_memory_limit(const char *proc_cgroup, const char *mountinfo, gfv_mem_limit *out) {
  set_none(out);
  walk_hierarchy(proc_cgroup, mountinfo, 1, out);
  walk_hierarchy(proc_cgroup, mountinfo, 0, out);
}

void gfv_node_memory_limit(const char *meminfo, const char *proc_cgroup, const char *mountinfo,
                           gfv_mem_limit *out) {
  gfv_cgroup_memory_limit(proc_cgroup, mountinfo, out);
  double avail;
  if (gfv_read_kb_field(meminfo, "MemAvailable", &avail) == 0)
    tighter(out, avail, avail, "MemAvailable");
}

void gfv_format_bytes(double bytes, char *buf, size_t size) {
  static const char *const units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  size_t u = 0;
  while (bytes >= 999.5 && u + 1 < sizeof units / sizeof units[0]) bytes /= 1000.0, u++;
  if (u == 0) snprintf(buf, size, "%.0f bytes", bytes);
  else snprintf(buf, size, bytes < 9.95 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}
