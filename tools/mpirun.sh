#!/usr/bin/env bash
# mpirun.sh NP PROGRAM [ARGS...] - runs PROGRAM on NP local MPI ranks (Open MPI).
#
# The one place that knows how to launch gflowvi on a single machine, shared by
# tools/demo.sh and the shell tests (tests/lib.sh), so they all behave the same on a
# laptop, a 1-core CI box or a container running as root.
set -euo pipefail

usage() {
  echo "usage: ${0##*/} NP PROGRAM [ARGS...]   (NP: number of MPI ranks, >= 1)" >&2
  exit 2
}
(($# >= 2)) || usage
np=$1
shift
[[ $np =~ ^[1-9][0-9]*$ ]] || usage

if ! command -v mpirun >/dev/null 2>&1; then
  echo "${0##*/}: mpirun not found; run tools/install-deps.sh (Debian: openmpi-bin)" >&2
  exit 127
fi

# Open MPI refuses to start as root unless told twice; CI containers and the README's
# demo commonly run as root.  Harmless when not root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# In containers the shared-memory transport's single-copy mode (CMA, process_vm_readv)
# is often forbidden by ptrace restrictions and then aborts large messages; plain
# copy-in/copy-out always works and costs little at our message sizes.  Overridable.
export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"
# One BLAS thread per rank: ranks already use the cores, and OpenBLAS's default of one
# thread per core in every rank oversubscribes the machine badly.  Overridable.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

# Sanitizer options (tests/sanitizers/env.sh) and the Stan model cache's location go to
# every rank, wherever it starts.
pass_env=()
for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS GFV_STAN_CACHE GFV_STAN_TOOL; do
  [[ -z ${!v:-} ]] || pass_env+=(-x "$v")
done

# --oversubscribe: run NP ranks even when the machine (or the container's CPU quota) has
# fewer cores, e.g. the 2-rank demo and MPI tests on a 1-core box.
exec mpirun --oversubscribe ${pass_env[@]+"${pass_env[@]}"} -np "$np" "$@"
