#!/usr/bin/env bash
# test_stan_cache.sh - the cache of compiled Stan models (tools/stan/gflowvi-stan, README
# "Stan models: --target=stan"), in a fresh cache directory (GFV_STAN_CACHE) that shares
# only the compiler and the shim with the user's cache:
#  - a first run on 3 ranks compiles the model once (one line in builds.log), and the fit
#    gives the same ELBO as on 1 rank;
#  - a second run compiles nothing and finds the model in well under a second;
#  - a changed model (one more comment) is compiled again, once, even when two processes
#    ask for it at the same moment (the file lock), and both get the same shared object;
#  - `gflowvi-stan path` names the shared object `build` made; no temporary build
#    directory is left behind.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$GFV_ROOT/tests/stan/lib_stan.sh"
stan_setup

work=$(tmpdir)
shim=$("$STAN_TOOL" shim)
export GFV_STAN_CACHE=$work/cache
mkdir -p "$GFV_STAN_CACHE"
ln -s "$(dirname "$STANC")" "$GFV_STAN_CACHE/"
ln -s "$(dirname "$shim")" "$GFV_STAN_CACHE/"

cat >"$work/normal.stan" <<'EOF'
data {
  int<lower=1> N;
  array[N] real y;
}
parameters {
  real mu;
  real<lower=0> sigma;
}
model {
  mu ~ normal(0, 10);
  sigma ~ lognormal(0, 1);
  y ~ normal(mu, sigma);
}
EOF
echo '{"N": 5, "y": [1.2, 0.4, 2.2, 1.9, 0.7]}' >"$work/normal.json"
builds() { grep -c " built model " "$GFV_STAN_CACHE/builds.log" 2>/dev/null || true; }
opts=(--target=stan:"$work/normal.stan" --data="$work/normal.json" --particles=3 --iters=100
      --eval-samples=3000 --out-samples=10 --progress-every=0 --quiet)

if gfv_mpirun 3 "${opts[@]}" --out="$work/o3" >"$work/o3.log" 2>&1; then
  pass first-run-3-ranks
else
  fail first-run-3-ranks "$(tail -n 3 "$work/o3.log" | tr '\n' ' ')"
fi
n=$(builds)
((n == 1)) && pass compiled-once-for-3-ranks || fail compiled-once-for-3-ranks "$n builds: $(cat "$GFV_STAN_CACHE/builds.log" 2>/dev/null)"

gfv_mpirun 1 "${opts[@]}" --out="$work/o1" >"$work/o1.log" 2>&1 || fail second-run "$(tail -n 3 "$work/o1.log")"
n=$(builds)
((n == 1)) && pass second-run-no-rebuild || fail second-run-no-rebuild "$n builds"
e1=$(json_get "$work/o1/summary.json" elbo)
e3=$(json_get "$work/o3/summary.json" elbo)
"$GFV_PYTHON" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-9 * abs(a))" "$e1" "$e3" &&
  pass same-elbo-1-and-3-ranks || fail same-elbo-1-and-3-ranks "$e1 vs $e3"

# The lookup alone, timed: the tool finds the model without compiling.
start=$EPOCHREALTIME
so=$("$STAN_TOOL" build --quiet "$work/normal.stan")
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
echo "# cached lookup: $secs s"
awk -v s="$secs" 'BEGIN { exit !(s < 5) }' && pass cached-lookup-fast || fail cached-lookup-fast "$secs s"
[[ $("$STAN_TOOL" path "$work/normal.stan") == "$so" ]] && pass path-matches-build || fail path-matches-build "path differs"

echo "// a comment: the model text changed" >>"$work/normal.stan"
"$STAN_TOOL" build --quiet "$work/normal.stan" >"$work/a.out" 2>"$work/a.err" &
pa=$!
"$STAN_TOOL" build --quiet "$work/normal.stan" >"$work/b.out" 2>"$work/b.err" &
pb=$!
sa=0 sb=0
wait $pa || sa=$?
wait $pb || sb=$?
n=$(builds)
((sa == 0 && sb == 0)) && pass concurrent-builds-succeed || fail concurrent-builds-succeed "exit $sa, $sb: $(cat "$work/a.err" "$work/b.err")"
((n == 2)) && pass changed-model-compiled-once || fail changed-model-compiled-once "$n builds in all (expected 2)"
[[ -s $work/a.out && $(cat "$work/a.out") == "$(cat "$work/b.out")" && $(cat "$work/a.out") != "$so" ]] &&
  pass changed-model-new-object || fail changed-model-new-object "$(cat "$work/a.out") / $(cat "$work/b.out") / $so"
left=$(find "$GFV_STAN_CACHE" -maxdepth 2 -name '.build-*' | wc -l)
((left == 0)) && pass no-temporary-left || fail no-temporary-left "$left .build-* directories"
finish
