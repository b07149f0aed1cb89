#!/usr/bin/env bash
# demo.sh - THE demo command: fits a 4-component 2-D Gaussian mixture target (gmm4) with
# 20 particles on 2 MPI ranks, then plots the fit.
#
#   bash tools/demo.sh [--no-install] [GFLOWVI_OPTIONS...]
#
# Options after the script name go to gflowvi and, coming last, override the demo's
# defaults (e.g. bash tools/demo.sh --iters=100, or --out=DIR for another output folder).
# --no-install skips tools/install-deps.sh (used by `make demo`).
set -euo pipefail

# The Makefile, the binary and the default output folder are all repo-relative.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

install=1
args=()
for a in "$@"; do
  if [[ $a == --no-install ]]; then install=0; else args+=("$a"); fi
done

# The output folder: the demo's default unless the user gave --out=DIR (the last one wins,
# as in gflowvi).  "--out DIR" in two words is also accepted by gflowvi; follow it too.
out=gflowvi-out
prev=""
for a in ${args[@]+"${args[@]}"}; do
  case $a in
    --out=*) out=${a#--out=} ;;
  esac
  [[ $prev != --out ]] || out=$a
  prev=$a
done

((install == 0)) || bash tools/install-deps.sh
make -j2 build/bin/gflowvi

# --help: show gflowvi's options and stop (there is nothing to plot).
for a in ${args[@]+"${args[@]}"}; do
  if [[ $a == --help || $a == -h ]]; then
    exec build/bin/gflowvi --help
  fi
done

echo "== gflowvi on 2 MPI ranks"
bash tools/mpirun.sh 2 build/bin/gflowvi --target=gmm4 --particles=20 --weight-step=0.05 \
  --iters=600 --out=gflowvi-out ${args[@]+"${args[@]}"}

echo "== plots"
/usr/bin/python3 tools/plot.py "$out"

# Absolute paths so they can be opened from anywhere.
[[ $out == /* ]] || out=$PWD/$out
echo
# What the run wrote (posterior.nc only where libnetcdf is installed), not a fixed list.
echo "outputs in $out/: $(cd "$out" && ls -- *.csv *.json *.h5 *.nc 2>/dev/null | tr '\n' ' ')"
echo "plots:     $out/density.png  $out/trace.png"
