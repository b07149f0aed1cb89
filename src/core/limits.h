/* limits.h - the memory limits in force for this process and its node, read from the
 * kernel's files (so that a run too big for them can be refused before it starts).
 *
 * Every reader takes the paths of the files it reads, so that the unit tests can hand it
 * fake /proc and /sys/fs/cgroup trees; the program passes the real ones (GFV_PROC_*).
 * Not collective. */
#ifndef GFLOWVI_LIMITS_H
#define GFLOWVI_LIMITS_H

#include <stddef.h>

#define GFV_PROC_STATUS "/proc/self/status"
#define GFV_PROC_MEMINFO "/proc/meminfo"
#define GFV_PROC_CGROUP "/proc/self/cgroup"
#define GFV_PROC_MOUNTINFO "/proc/self/mountinfo"

/* A limit: how many more bytes may be allocated under it (free), the limit itself, and
 * what it is ("RLIMIT_AS (ulimit -v)", "the memory cgroup /sys/fs/cgroup/x", ...).
 * free = limit = INFINITY when nothing limits. */
typedef struct {
  double free, limit;
  char name[4096 + 64];
} gfv_mem_limit;

/* The value of a "Key:   123 kB" line (the format of /proc/meminfo and /proc/PID/status),
 * in bytes.  Returns 0, or -1 when the file or the key is missing or malformed. */
int gfv_read_kb_field(const char *path, const char *key, double *bytes);

/* The tighter of the process's address-space and data limits (getrlimit RLIMIT_AS and
 * RLIMIT_DATA), each less what the process already maps (VmSize, VmData of status). */
void gfv_process_memory_limit(const char *status, gfv_mem_limit *out);

/* The tightest memory cgroup limit that applies to the process: its own cgroup's and
 * every parent's (cgroup v2 memory.max, v1 memory.limit_in_bytes), each less that
 * cgroup's current usage net of its reclaimable page cache (inactive_file).  proc_cgroup
 * and mountinfo are /proc/self/cgroup and /proc/self/mountinfo: the cgroup's path and
 * where its hierarchy is mounted. */
void gfv_cgroup_memory_limit(const char *proc_cgroup, const char *mountinfo, gfv_mem_limit *out);

/* The node's limit: the tighter of the cgroup limit and MemAvailable of meminfo. */
void gfv_node_memory_limit(const char *meminfo, const char *proc_cgroup, const char *mountinfo,
                           gfv_mem_limit *out);

/* Writes bytes in decimal units with 2-3 significant digits ("480 GB", "1.5 MB"). */
void gfv_format_bytes(double bytes, char *buf, size_t size);

#endif
