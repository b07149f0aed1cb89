#!/usr/bin/env bash
# test_plugin_faults.sh - broken plugin files and plugins that end the process
# (--target=plugin:FILE): each must fail with its exit status and a message naming the file
# and the problem, and write no output.  The damaged files are made here from ring.so: cut
# short (dlopen died of SIGBUS on it), e_machine patched to another architecture, EI_CLASS
# patched to 32-bit; then a directory, a text file named .so, a missing file.  The plugins
# that end the process are ring.c builds (Makefile): exit(0) in gfv_plugin_init or in a
# constructor (they used to end the run with status 0 and no word at 1 rank), abort() in
# gfv_plugin_init (a signal; mpirun must report it).
#
# Every case runs at 1 rank directly (an MPI singleton, as users run it) and at 3 ranks
# under mpirun; the exit() cases also at 1 rank under mpirun.  Checks: the exit status, the
# fragment on stderr, the number of "gflowvi: error:" lines (one for the agreed file
# errors; one per rank at most for exit(), where each rank exits on its own), and no file
# in --out.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

plug=$GFV_BUILD/plugins
data=$(tmpdir)
ring=$plug/ring.so
size=$(stat -c %s "$ring")

# patch FILE OFFSET BYTES - overwrites bytes (printf escapes) in place.
patch() {
  printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
head -c 4096 "$ring" >"$data/truncated.so"
cp "$ring" "$data/foreign.so"
if [[ $(uname -m) == aarch64 ]]; then
  patch "$data/foreign.so" 18 '\x3e\x00' # EM_X86_64
  foreign_msg="foreign.so' is built for x86-64, this gflowvi runs on aarch64"
else
  patch "$data/foreign.so" 18 '\xb7\x00' # 183 = EM_AARCH64
  foreign_msg="foreign.so' is built for aarch64, this gflowvi runs on"
fi
cp "$ring" "$data/class32.so"
patch "$data/class32.so" 4 '\x01' # EI_CLASS = ELFCLASS32
mkdir "$data/dir.so"
printf 'not a shared object\n' >"$data/text.so"
cp "$ring" "$data/copy.so"

# run_case NAME RANKS STATUS FRAGMENT ERRLINES PLUGIN - RANKS: 1 (direct), mpi1, 3;
# ERRLINES: one (exactly one "gflowvi: error:" line), ranks (1 to the rank count), any.
run_case() {
  local name=$1 ranks=$2 want=$3 frag=$4 lines=$5 plugin=$6
  local dir out err status=0 n np
  dir=$(tmpdir)
  out=$dir/out
  err=$dir/stderr
  local args=(--target="plugin:$plugin" --iters=3 --particles=2 --out="$out")
  case $ranks in
  # The outer 2>/dev/null silences only bash's own "Aborted" notice.
  1) np=1 && { "$GFV_BIN" "${args[@]}" >/dev/null 2>"$err" </dev/null; } 2>/dev/null || status=$? ;;
  mpi1) np=1 && gfv_mpirun 1 "${args[@]}" >/dev/null 2>"$err" </dev/null || status=$? ;;
  3) np=3 && gfv_mpirun 3 "${args[@]}" >/dev/null 2>"$err" </dev/null || status=$? ;;
  esac
  name="$name-$ranks"
  n=$(grep -c '^gflowvi: error:' "$err" || true)
  if ((status != want)); then
    fail "$name" "exit status $status, want $want; stderr: $(_gfv_head "$err")"
  elif ! grep -qF -- "$frag" "$err"; then
    fail "$name" "stderr lacks '$frag'; stderr: $(_gfv_head "$err")"
  elif [[ $lines == one ]] && ((n != 1)); then
    fail "$name" "$n error lines, want one; stderr: $(_gfv_head "$err")"
  elif [[ $lines == ranks ]] && ((n < 1 || n > np)); then
    fail "$name" "$n error lines, want 1 to $np; stderr: $(_gfv_head "$err")"
  elif [[ -e $out && -n $(ls -A "$out") ]]; then
    fail "$name" "files written in --out: $(ls -A "$out" | tr '\n' ' ')"
  else
    pass "$name"
  fi
}

# The undamaged copy runs: the damaged ones fail for their damage alone.
out=$(tmpdir)
expect_ok copy-runs "$GFV_BIN" --target="plugin:$data/copy.so" --iters=3 --particles=2 --out="$out"
[[ -s $out/summary.json ]] && pass copy-writes-summary || fail copy-writes-summary "no summary.json"

for r in 1 3; do
  run_case truncated $r 3 "truncated.so' is truncated: 4096 of $size bytes (a copy or a build was cut short?)" one "$data/truncated.so"
  run_case foreign-arch $r 3 "$foreign_msg" one "$data/foreign.so"
  run_case class32 $r 3 "class32.so' is a 32-bit ELF file, this gflowvi is 64-bit" one "$data/class32.so"
  run_case directory $r 3 "dir.so' is a directory, not a shared object" one "$data/dir.so"
  run_case text-file $r 3 "text.so' is not an ELF file" one "$data/text.so"
  run_case missing $r 3 "cannot open plugin '$data/missing.so': No such file or directory" one "$data/missing.so"
done
for r in 1 mpi1 3; do
  run_case exit-in-init $r 3 "ring_exitinit.so' called exit(0) during its initialisation (gfv_plugin_init)" ranks "$plug/ring_exitinit.so"
  run_case exit-in-constructor $r 3 "ring_exitctor.so' called exit(0) during its loading (a constructor run by dlopen)" ranks "$plug/ring_exitctor.so"
done
# abort(): SIGABRT, 128 + 6 from the shell and from mpirun, which names the signal.
run_case abort-in-init 1 134 "" any "$plug/ring_abortinit.so"
run_case abort-in-init mpi1 134 "exited on signal 6 (Aborted)" any "$plug/ring_abortinit.so"
run_case abort-in-init 3 134 "exited on signal 6 (Aborted)" any "$plug/ring_abortinit.so"
finish
