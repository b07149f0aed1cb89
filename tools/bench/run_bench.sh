#!/usr/bin/env bash
# run_bench.sh [BUILD_DIR] - the benchmark of docs/performance.md (`make bench`).
#
# Runs gflowvi-bench (BUILD_DIR/bin, default build) and the NumPy baseline
# tools/bench/ngflow_numpy.py on the same configurations of the gauss target, one after the
# other in this one run, and prints one table (tools/bench/report.py).  Per configuration:
#   1. gflowvi-bench, in each layout (--layout=samples, then params): warm-up, timed
#      repetitions (medians), the DGEMM rates, the breakdown of the mixture phase, and R
#      replicate trajectories (the spread of the final KL); --dump writes its initial
#      particles and one exact step for NumPy;
#   2. ngflow_numpy.py check-step, for each layout's dump: NumPy recomputes that step from
#      the same particles and samples (must agree to 1e-9);
#   3. ngflow_numpy.py bench: the same number of iterations from the same initial
#      particles, timed the same way; its final ELBO is compared with gflowvi's.
# The diagonal family (--family=diag) is the last configuration: d=500, where gflowvi's
# --estimator=auto is stein.  Then 2-rank runs (tools/mpirun.sh) of the d=32 configuration
# in both layouts, which must reproduce the 1-rank trajectories.  Last, the fused kernel with
# --prune=on and off on a spread-out and a compact mixture (docs/pruning.md; about 15 s).
# Everything is single-threaded: the program sets one OpenBLAS thread
# itself; NumPy gets OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 (a per-core comparison).
# OPENBLAS_CORETYPE, when the environment sets it, is left as it is (and printed).
#
# Exit status: 0 when every configuration is Valid, 1 when one is INVALID, 2 on a failure
# to run.  The raw JSON results stay in BUILD_DIR/bench/.  Takes about 3-4 minutes on the
# 2-core machine of docs/performance.md.
set -euo pipefail

build=${1:-build}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
[[ $build == /* ]] || build=$root/$build
bench=$build/bin/gflowvi-bench
py=/usr/bin/python3
np_script=tools/bench/ngflow_numpy.py
out=$build/bench
[[ -x $bench ]] || { echo "run_bench: $bench not built (make bench builds it)" >&2; exit 2; }
"$py" -c 'import numpy' 2>/dev/null || {
  echo "run_bench: $py has no NumPy (Debian: apt-get install python3-numpy)" >&2; exit 2; }
rm -rf "$out"
mkdir -p "$out"

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# name  family d K S  warmup reps block replicates: the iteration counts keep the whole run
# short (the figure of merit is per iteration); each run does warmup + reps x block iterations.
configs=(
  "d2      full 2   10  10 2 5 40 6"
  "d16     full 16  64  8  2 5 8  6"
  "d32     full 32  256 8  2 5 4  6"
  "d50     full 50  100 10 2 5 6  6"
  "diag500 diag 500 64  8  2 5 4  6"
)
step=0.2   # converges within these iterations (the verification compares the final ELBO)

"$bench" --machine >"$out/machine.json"
"$py" - >"$out/numpy.json" <<'EOF'
import json, os, numpy
lib = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
print(json.dumps({"numpy": numpy.__version__,
                  "blas": os.path.realpath(lib) if os.path.exists(lib) else "unknown"}))
EOF
"$py" "$np_script" check-k1 --dim 8 --iters 200 >"$out/numpy_k1.json" || true

t_start=$SECONDS
for c in "${configs[@]}"; do
  read -r name family d K S warm reps block repl <<<"$c"
  for layout in samples params; do
    echo "run_bench: $name: $family d=$d K=$K S=$S, $layout layout, $((warm + reps * block)) iterations ..." >&2
    "$bench" --family="$family" --dim="$d" --particles="$K" --samples="$S" --step="$step" --warmup="$warm" \
      --reps="$reps" --block="$block" --replicates="$repl" --breakdown --layout="$layout" \
      --dump="$out/$name.$layout.dump" >"$out/$name.$layout.c.json"
    "$py" "$np_script" check-step --dump "$out/$name.$layout.dump" >"$out/$name.$layout.step.json" || true
  done
  "$py" "$np_script" bench --family "$family" --dim "$d" --particles "$K" --samples "$S" --step "$step" \
    --warmup "$warm" --reps "$reps" --block "$block" --init "$out/$name.samples.dump" \
    >"$out/$name.np.json"
  rm -f "$out/$name".*.dump
done
for layout in samples params; do
  echo "run_bench: d32 on 2 ranks, $layout layout ..." >&2
  bash tools/mpirun.sh 2 "$bench" --dim=32 --particles=256 --samples=8 --step="$step" \
    --warmup=2 --reps=5 --block=4 --layout="$layout" >"$out/d32.r2.$layout.json"
done
# Exact pruning (docs/pruning.md): the fused kernel with pruning on and off on the same
# particles and points (--breakdown), on a spread-out and on a compact mixture.
for spread in "spread 8" "compact 0.3"; do
  read -r name scale <<<"$spread"
  echo "run_bench: pruning, $name mixture (d=16 K=512 S=8, --init-scale=$scale) ..." >&2
  "$bench" --dim=16 --particles=512 --samples=8 --layout=params --init-scale="$scale" --warmup=1 --reps=3 \
    --block=1 --eval-samples=200 --square=500 --breakdown >"$out/prune.$name.json"
done
echo "run_bench: done in $((SECONDS - t_start)) s" >&2

"$py" tools/bench/report.py "$out"
