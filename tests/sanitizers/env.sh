# shellcheck shell=bash
# env.sh - sanitizer run-time options for running gflowvi built with SAN=1.  Source it:
#
#   source tests/sanitizers/env.sh [REPORT_DIR]
#
# Every AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer report goes to a
# file REPORT_DIR/{asan,ubsan}.PID (default: a new directory under ${TMPDIR:-/tmp},
# exported as GFV_SAN_REPORTS), so a report from a rank, or from a program whose stderr a
# test throws away, is still seen: tests/sanitizers/run.sh fails when any file is there.
# The first error stops the process (halt_on_error, and -fno-sanitize-recover at compile
# time), with exit status 1 (leaks: 23), which also fails the test that ran it.
# tools/mpirun.sh passes these variables on to every rank (mpirun -x).

_gfv_san_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GFV_SAN_REPORTS=${1:-$(mktemp -d "${TMPDIR:-/tmp}/gflowvi-san.XXXXXX")}
mkdir -p "$GFV_SAN_REPORTS"
GFV_SAN_REPORTS=$(cd "$GFV_SAN_REPORTS" && pwd)
export GFV_SAN_REPORTS

# strict_string_checks: string functions check their whole argument, not just the part
# read.  Allocation stacks use the fast unwinder: the SAN=1 build's MPI_Init/MPI_Finalize
# wrappers (src/comm/comm.c) keep MPI_Init's allocations out of the leak check and check
# at the start of MPI_Finalize, so no allocation from a dlclose'd MCA component (whose
# stack only the slow unwinder could attribute) ever reaches lsan.supp, and
# fast_unwind_on_malloc=0 would only double each process's cost.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1:log_path=$GFV_SAN_REPORTS/asan"
# use_tls=0: clang 14's LeakSanitizer crashes ("Tracer caught signal 11 ... LeakSanitizer has
# encountered a fatal error", exit 1) when it scans the dynamic TLS of a process that started
# Open MPI as a singleton (gflowvi run without mpirun, as several tests do): a dtv entry of a
# component Open MPI dlopen'd and closed again points at nothing (seen with glibc 2.36 on the
# unchanged code of earlier commits too).  Not scanning TLS means a block referenced only from
# thread-local storage would be reported as a leak: stricter, never laxer; none is.
export LSAN_OPTIONS="suppressions=$_gfv_san_root/tests/sanitizers/lsan.supp:print_suppressions=0:use_tls=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$GFV_SAN_REPORTS/ubsan"
unset _gfv_san_root
