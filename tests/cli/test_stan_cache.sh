#!/usr/bin/env bash
# test_stan_cache.sh - the cache of compiled Stan models (tools/stan/gflowvi-stan,
# docs/user-guide.md, "Stan models"), in a fresh cache directory (GFV_STAN_CACHE) that shares
# the compiler and the shim with the user's cache and starts with one model, the
# non-centred eight schools, copied from it (so the test compiles one model, not two):
#  - a run finds that model and compiles nothing, and the lookup alone takes well under a
#    second;
#  - the model changed (one more comment) is compiled again, and once, while a 3-rank run
#    and a separate build process ask for it at the same moment (rank 0 builds under the
#    file lock, the other ranks wait at the agreement, the other process at the lock); both
#    get the same new shared object, and the 3-rank fit of the changed model gives the
#    1-rank fit's ELBO; a second run compiles nothing;
#  - `gflowvi-stan path` names what `build` made; no temporary build directory is left.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$GFV_ROOT/tests/stan/lib_stan.sh"
stan_skip_under_sanitizers "it compiles a changed model, and the cache is not memory code of gflowvi"
stan_setup

work=$(tmpdir)
shim=$("$STAN_TOOL" shim)
es_dir=$PDB/eight_schools-eight_schools_noncentered
unzip_json "$es_dir/data.json.zip" "$work/es.json"
cp "$es_dir/model.stan" "$work/es.stan"
seed=$("$STAN_TOOL" build --quiet "$es_dir/model.stan")   # in the user's cache (usually there)
export GFV_STAN_CACHE=$work/cache
mkdir -p "$GFV_STAN_CACHE/models"
ln -s "$(dirname "$STANC")" "$GFV_STAN_CACHE/"
ln -s "$(dirname "$shim")" "$GFV_STAN_CACHE/"
so=$("$STAN_TOOL" path "$work/es.stan")
cp -r "$(dirname "$seed")" "$(dirname "$so")"

builds() { grep -c " built model " "$GFV_STAN_CACHE/builds.log" 2>/dev/null || true; }
opts=(--data="$work/es.json" --particles=3 --iters=100 --eval-samples=3000 --out-samples=10
      --progress-every=0 --quiet)

if gfv_mpirun 1 --target=stan:"$work/es.stan" "${opts[@]}" --out="$work/o1" >"$work/o1.log" 2>&1; then
  pass cached-model-runs
else
  fail cached-model-runs "$(tail -n 3 "$work/o1.log" | tr '\n' ' ')"
fi
n=$(builds)
((n == 0)) && pass cached-model-no-rebuild || fail cached-model-no-rebuild "$n builds: $(cat "$GFV_STAN_CACHE/builds.log")"

# The lookup alone, timed: the tool finds the model without compiling.
start=$EPOCHREALTIME
found=$("$STAN_TOOL" build --quiet "$work/es.stan")
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
echo "# cached lookup: $secs s"
[[ $found == "$so" ]] && pass lookup-finds-it || fail lookup-finds-it "$found, expected $so"
awk -v s="$secs" 'BEGIN { exit !(s < 5) }' && pass cached-lookup-fast || fail cached-lookup-fast "$secs s"

echo "// a comment: the model text changed" >>"$work/es.stan"
new=$("$STAN_TOOL" path "$work/es.stan")
[[ $new != "$so" ]] && pass changed-model-new-key || fail changed-model-new-key "same path $new"
gfv_mpirun 3 --target=stan:"$work/es.stan" "${opts[@]}" --out="$work/o3" >"$work/o3.log" 2>&1 &
pa=$!
"$STAN_TOOL" build --quiet "$work/es.stan" >"$work/b.out" 2>"$work/b.err" &
pb=$!
sa=0 sb=0
wait $pa || sa=$?
wait $pb || sb=$?
n=$(builds)
((sa == 0 && sb == 0)) && pass concurrent-run-and-build-succeed ||
  fail concurrent-run-and-build-succeed "exit $sa, $sb: $(tail -n 3 "$work/o3.log" | tr '\n' ' ') $(cat "$work/b.err")"
((n == 1)) && pass changed-model-compiled-once || fail changed-model-compiled-once "$n builds: $(cat "$GFV_STAN_CACHE/builds.log" 2>/dev/null)"
[[ $(cat "$work/b.out") == "$new" && -f $new ]] && pass changed-model-object || fail changed-model-object "$(cat "$work/b.out") vs $new"
# A second run of the changed model finds it.
gfv_mpirun 1 --target=stan:"$work/es.stan" "${opts[@]}" --out="$work/o1b" >"$work/o1b.log" 2>&1 ||
  fail second-run "$(tail -n 3 "$work/o1b.log" | tr '\n' ' ')"
n=$(builds)
((n == 1)) && pass second-run-no-rebuild || fail second-run-no-rebuild "$n builds"
e1=$(json_get "$work/o1b/summary.json" elbo)
e3=$(json_get "$work/o3/summary.json" elbo)
"$GFV_PYTHON" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-9 * abs(a))" "$e1" "$e3" &&
  pass same-elbo-1-and-3-ranks || fail same-elbo-1-and-3-ranks "$e1 vs $e3"
left=$(find "$GFV_STAN_CACHE" -maxdepth 2 -name '.build-*' | wc -l)
((left == 0)) && pass no-temporary-left || fail no-temporary-left "$left .build-* directories"
finish
