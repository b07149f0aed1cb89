#!/usr/bin/env bash
# test_params_stream.sh - the params layout with the mixture streamed around the ranks
# (src/solver/params_stream.c, docs/method.md section 9).  GFV_PARAMS_GATHER_BYTES, the
# test knob of the gather budget, forces blocks of 4 components (d = 4: 23 numbers each; a
# budget of 7000 bytes, a block an eighth of it), so that 48 particles stream in 4 to 12 blocks
# per rank.  The fits at 1, 2 and 3 ranks equal the gathered fit: mixture.csv and the ELBO
# trace to 1e-10 relative (the same terms summed in another order, over 20 iterations;
# measured 1e-15 to 3e-13), the final ELBO and KL to 1e-10 (the evaluation streams too);
# likewise the diagonal family, the stein estimator, and a spread mixture whose pairs are
# mostly pruned (exact pruning against the whole mixture).  The streamed runs really
# stream: they send over twice the gathered run's bytes per iteration (3.3x here).  The
# samples layout's Hessian sums, in chunks under the same budget, give its whole-buffer fit.  A streamed run
# stopped by a checkpoint and restarted gives the uninterrupted run's mixture.csv bitwise.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

dir=$(tmpdir)
common=(--target=gauss --dim=4 --particles=48 --samples=4 --iters=20 --layout=params --init-scale=2
        --eval-samples=2000 --out-samples=10 --quiet)

run() { # NAME NP BUDGET ARGS...
  local name=$1 np=$2 budget=$3
  shift 3
  # An assignment before a function call is exported to what the function runs.
  if GFV_PARAMS_GATHER_BYTES=$budget gfv_mpirun "$np" "$@" --out="$dir/$name" >/dev/null \
      2>"$dir/$name.err"; then
    return 0
  fi
  fail "$name" "$(head -c 300 "$dir/$name.err")"
  return 1
}

# Largest difference of mixture.csv and trace.csv (relative to each column's largest value,
# or to 1 when that is smaller), and of the final ELBO and KL (to max(1, |value|)).
max_rel_diff() {
  "$GFV_PYTHON" - "$@" <<'PY'
import sys, json, numpy as np
worst = 0.0
for name in ("mixture", "trace"):
    a, b = (np.genfromtxt("%s/%s.csv" % (d, name), delimiter=",", names=True) for d in sys.argv[1:3])
    # relative to 1 at least: a perfect fit's ELBO is 0 to rounding, and a column that
    # stays 0 (an off-diagonal covariance) holds rounding alone
    for c in (c for c in a.dtype.names if c != "seconds"):
        worst = max(worst, np.abs(a[c] - b[c]).max() / max(np.abs(b[c]).max(), 1.0))
sa, sb = (json.load(open(d + "/summary.json")) for d in sys.argv[1:3])
for k in ("elbo", "kl"):
    if sb.get(k) is not None: worst = max(worst, abs(sa[k] - sb[k]) / max(abs(sb[k]), 1.0))
print("%.3e" % worst)
PY
}

within() { "$GFV_PYTHON" -c "import sys; sys.exit(0 if float('$1') <= float('$2') else 1)"; }

compare() { # NAME A B TOL
  local diff
  diff=$(max_rel_diff "$dir/$2" "$dir/$3")
  if within "$diff" "$4"; then pass "$1 (max rel diff $diff)"; else fail "$1" "max relative difference $diff > $4"; fi
}

bytes() { json_get "$dir/$1/summary.json" timers | "$GFV_PYTHON" -c \
  "import json,sys; print(json.load(sys.stdin)['bytes_sent_per_iteration']['mean'])"; }

if run gathered 1 "" "${common[@]}"; then
  for np in 1 2 3; do
    run "streamed$np" "$np" 7000 "${common[@]}" && compare "streamed-${np}ranks-equals-gathered" "streamed$np" gathered 1e-10
  done
fi
if run gathered3 3 "" "${common[@]}" && [[ -f $dir/streamed3/summary.json ]]; then
  g=$(bytes gathered3) s=$(bytes streamed3)
  if within "$((2 * ${g%.*}))" "$s"; then pass "streamed run streams ($s bytes per iteration, gathered $g)"
  else fail streamed-run-streams "sent $s bytes per iteration, not over 2x the gathered run's $g"; fi
fi
if run diag-g 2 "" "${common[@]}" --family=diag && run diag-s 2 2000 "${common[@]}" --family=diag; then
  compare diag-streamed-equals-gathered diag-s diag-g 1e-10
fi
if run stein-g 2 "" "${common[@]}" --estimator=stein && run stein-s 3 7000 "${common[@]}" --estimator=stein; then
  compare stein-streamed-3ranks-equals-gathered stein-s stein-g 1e-10
fi
# Spread out: a target of 48 modes 30 apart on a line (unit covariances), fitted from
# components one standard deviation off their modes with covariances 0.6: most pairs are
# pruned in both paths.
"$GFV_PYTHON" - "$dir/line.csv" "$dir/start.csv" <<'PY'
import sys
d, M = 4, 48
def write(path, shift, var):
    cov = ",".join(repr(var) if a == b else "0" for a in range(d) for b in range(d))
    with open(path, "w") as f:
        f.write("weight," + ",".join("mu_%d" % (a + 1) for a in range(d)) + "," +
                ",".join("cov_%d_%d" % (a + 1, b + 1) for a in range(d) for b in range(d)) + "\n")
        for k in range(M):
            f.write("%r,%r,%r,-0.5,0.25,%s\n" % (1.0 / M, 30.0 * k, 0.5 + shift, cov))
write(sys.argv[1], 0.0, 1.0)
write(sys.argv[2], 1.0, 0.6)
PY
spread=(--target="gmm:$dir/line.csv" --init="$dir/start.csv" --particles=48 --samples=4 --iters=8
        --layout=params --eval-samples=2000 --out-samples=10 --quiet)
if run spread-g 1 "" "${spread[@]}" && run spread-s 2 7000 "${spread[@]}"; then
  frac=$(json_get "$dir/spread-s/summary.json" pruned_fraction)
  if within 0.5 "$frac"; then pass "spread, streamed: pruned fraction $frac"
  else fail spread-streamed-prunes "only $frac of the pairs pruned"; fi
  compare spread-streamed-pruned-equals-gathered spread-s spread-g 1e-10
fi
# The samples layout under a budget of 2000 bytes: the Hessian sums of all 48 particles
# (6 kB) go in chunks of 15 particles, each reduce-scattered on its own, and the final evaluation
# streams the mixture; the fits at 1 and 3 ranks equal the whole-buffer fit on 2.
if run samples-g 2 "" "${common[@]}" --layout=samples; then
  for np in 1 3; do
    run "samples-s$np" "$np" 2000 "${common[@]}" --layout=samples \
      && compare "samples-hessian-chunks-${np}ranks-equal-whole" "samples-s$np" samples-g 1e-10
  done
fi
# Restart: 10 iterations with a checkpoint, then on to 20, streamed on 3 ranks.
if run part 3 7000 "${common[@]}" --iters=10 --checkpoint-every=10 \
    && run resumed 3 7000 "${common[@]}" --restart="$dir/part/checkpoint.h5"; then
  if cmp -s "$dir/streamed3/mixture.csv" "$dir/resumed/mixture.csv"; then pass streamed-restart-bitwise
  else fail streamed-restart-bitwise "mixture.csv of the restarted run differs from the uninterrupted one"; fi
fi
finish
