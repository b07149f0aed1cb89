#!/usr/bin/env bash
# install-deps.sh - installs the Debian packages gflowvi needs to build, test and plot.
#
# Idempotent: asks dpkg which packages are missing and does nothing (prints nothing) when
# none are, so tools/check.sh and tools/demo.sh can call it every time at no cost.
# As root it installs the missing ones with apt-get; otherwise it prints the exact
# command to run and exits 1, because a half-working toolchain only fails later and
# less clearly (e.g. mpicc present but no lapacke.h).
set -euo pipefail

# Everything the Makefile, the tests and tools/plot.py use: mpicc/mpirun (OpenMPI),
# OpenBLAS + LAPACKE + GSL to link, and the system Python with NumPy and matplotlib
# (tools/plot.py runs /usr/bin/python3 on purpose).  HDF5 (the Open MPI build) for the
# checkpoints and mixture.h5; hdf5-tools (h5dump) and python3-h5py let the tests read
# those files the way users do.  python3-sklearn only for the data sets it ships
# (breast cancer, Boston housing), which tools/datasets.py converts for the model examples.
# Reliability checks (docs/developer.md, "Reliability"): clang and libclang-rt-14-dev (libFuzzer and
# clang's sanitizer runtimes; only recommended by clang, so named here) for tests/fuzz,
# valgrind for tests/mpi/test_valgrind.sh, procps (pgrep) for tests/mpi/test_faults.sh.
# Stan models (--target=stan): r-cran-stanheaders (Stan 2.21's headers, its library and
# the sources of the stanc compiler), r-cran-rcppeigen (the Eigen 3.3 it needs), and the
# TBB and Boost headers it includes; tools/stan/gflowvi-stan builds with them (no R needed).
# netCDF-4 for posterior.nc (ArviZ reads netCDF-4 groups): the Open MPI build, which links
# the same HDF5 as ours; python3-xarray and python3-netcdf4 read it in the tests as ArviZ does.
# python3-pandas reads draws.csv in the tests and tools/posteriordb_table.py (xarray needs it too).
# librandom123-dev: the Philox generator of the random streams (header-only, src/rng/stream.c).
# The simulated cluster (docs/cluster.md, make smpi): SimGrid's smpicc and smpirun
# (libsimgrid-dev) and the serial HDF5 (libhdf5-dev), which SMPI can load where the Open
# MPI build of HDF5 cannot be linked; util-linux (flock) for tests/mpi/test_smpi.sh.
# python3-mpi4py: the Python package across MPI ranks (tests/cli/test_python.sh, docs/python.md).
required=(openmpi-bin libopenmpi-dev libopenblas-dev liblapacke-dev libgsl-dev
          libhdf5-openmpi-dev hdf5-tools librandom123-dev libnetcdf-mpi-dev python3-xarray python3-netcdf4 python3-pandas
          python3 python3-numpy python3-matplotlib python3-h5py pkg-config
          python3-sklearn
          clang libclang-rt-14-dev valgrind procps
          r-cran-stanheaders r-cran-rcppeigen libtbb-dev libboost-dev
          libsimgrid-dev libhdf5-dev libnetcdf19 util-linux
          python3-mpi4py)
# --tests (tools/check.sh): also what only the test suite uses.  python3-torch: the Python
# package's PyTorch-autograd density (tests/cli/test_python.sh); about a minute to install,
# which the demo need not pay.
if [[ ${1:-} == --tests ]]; then
  required+=(python3-torch)
fi

# True when dpkg knows the package as fully installed.  dpkg-query fails for a package it
# has never heard of, which just means "not installed" here, not an error.
installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [[ $status == "install ok installed" ]]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: dpkg-query not found; this script supports Debian/Ubuntu only." >&2
  echo "install-deps: install by hand: a C compiler, make, OpenMPI, OpenBLAS, LAPACKE, GSL," \
       "Python 3 with NumPy and matplotlib, pkg-config." >&2
  exit 1
fi

missing=()
# A compiler toolchain installed piecemeal (gcc + make + libc6-dev) is as good as the
# build-essential metapackage; only ask for build-essential when a piece is absent.
if ! installed build-essential; then
  for p in gcc make libc6-dev; do
    if ! installed "$p"; then
      missing+=(build-essential)
      break
    fi
  done
fi
for p in "${required[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: missing Debian packages: ${missing[*]}"
if ((EUID != 0)); then
  echo "install-deps: not root; run this, then try again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

# The lock timeout waits out another apt/dpkg run (e.g. unattended-upgrades on a fresh
# VM) instead of failing at once; -q keeps the log readable.
apt_opts=(-q -o DPkg::Lock::Timeout=600)
apt-get "${apt_opts[@]}" update
DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends \
  "${missing[@]}"

# Check the result rather than trusting apt's exit status alone.
still=()
for p in "${missing[@]}"; do
  installed "$p" || still+=("$p")
done
if ((${#still[@]} > 0)); then
  echo "install-deps: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${missing[*]}"
