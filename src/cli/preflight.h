/* preflight.h - everything about a run that can be checked before the work is checked
 * before it (docs/user-guide.md, "Before the run"): the output paths, the disk space the outputs and
 * the checkpoint need, and the memory each rank and each node needs against the limits in
 * force; then the output directory is cleared of an earlier run's files. */
#ifndef GFLOWVI_PREFLIGHT_H
#define GFLOWVI_PREFLIGHT_H

#include "gflowvi/comm.h"
#include "gflowvi/config.h"
#include "gflowvi/target.h"

/* Setting this environment variable (to anything but "" or "0") skips the disk-space and
 * memory comparisons, for the rare case where an estimate is wrong for a file system or
 * a machine (and for the tests of the failures they would otherwise prevent). */
#define GFV_SKIP_RESOURCE_CHECKS "GFV_SKIP_RESOURCE_CHECKS"

/* Memory a rank needs beyond what the solver allocates.  Address space (RLIMIT_AS,
 * RLIMIT_DATA): OpenBLAS maps a 128 MiB buffer at its first level-3 call; measured, the
 * smallest `ulimit -v` a small fit runs under is VmSize at the check + the estimate +
 * 127-128 MiB (funnel fits at d = 10 and 20, 1 and 2 BLAS threads), so 144 MiB leaves
 * 16 MiB for the rest (stdio, HDF5's and MPI's own allocations).  Resident (cgroup,
 * MemAvailable): only the touched part of that buffer and MPI's buffers, a few MiB. */
#define GFV_BLAS_VM_MARGIN (144.0 * 1048576)
#define GFV_RSS_MARGIN (32.0 * 1048576)

/* Collective.  Checks the --predict file (status 3; 2 for a target without predictions),
 * the output paths (status 5), the free space (5) and the memory
 * limits (7), with one line naming the option that dominates; then rank 0 removes the
 * previous run's outputs from --out (gfv_outputs_clean) and says so unless --quiet.
 * Every rank returns the same status. */
int gfv_preflight(gfv_comm *comm, const gfv_config *cfg, const gfv_target *t);

#endif
