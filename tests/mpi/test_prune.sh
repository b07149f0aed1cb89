#!/usr/bin/env bash
# test_prune.sh - the params layout's exact pruning (docs/pruning.md) in whole runs: on a
# target of 48 well-separated modes (30 standard deviations apart in d = 4), started from
# its own components, most (point, component) pairs are pruned, and the fit -- the ELBO
# trace and the final mixture -- equals the unpruned fit to 1e-12 relative; with pruning
# on, 3 ranks give the 1-rank answer (only the collectives' summation order differs).  A
# compact start (every component overlapping) prunes nothing and gives the same answer too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

dir=$(tmpdir)
"$GFV_PYTHON" - "$dir/modes.csv" "$dir/compact.csv" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(3)
d, M = 4, 48
eye = np.eye(d).ravel()
hdr = "weight," + ",".join("mu_%d" % (a + 1) for a in range(d)) + "," + \
      ",".join("cov_%d_%d" % (a + 1, b + 1) for a in range(d) for b in range(d))
grid = np.array(np.meshgrid(*[np.arange(3)] * d)).reshape(d, -1).T[:M] * 30.0
rows = [np.concatenate([[1.0 / M], g + rng.normal(0, 0.5, d), eye * (0.8 + 0.4 * rng.random())]) for g in grid]
np.savetxt(sys.argv[1], rows, delimiter=",", header=hdr, comments="")
rows = [np.concatenate([[1.0 / M], 30.0 + rng.normal(0, 0.3, d), eye]) for _ in range(M)]
np.savetxt(sys.argv[2], rows, delimiter=",", header=hdr, comments="")
PY

# Largest relative difference of two CSV files (per column scale) and of two ELBO traces.
max_rel_diff() {
  "$GFV_PYTHON" - "$@" <<'PY'
import sys, numpy as np
worst = 0.0
for f in ("mixture.csv", "trace.csv"):
    a = np.genfromtxt(sys.argv[1] + "/" + f, delimiter=",", names=True)
    b = np.genfromtxt(sys.argv[2] + "/" + f, delimiter=",", names=True)
    cols = [c for c in a.dtype.names if c != "seconds"]
    for c in cols:
        scale = max(np.abs(b[c]).max(), 1e-300)
        worst = max(worst, np.abs(a[c] - b[c]).max() / scale)
print("%.3e" % worst)
PY
}

run() { # NAME NP INIT PRUNE
  local out=$dir/$1
  if gfv_mpirun "$2" --target="gmm:$dir/modes.csv" --init="$3" --particles=48 --samples=6 --iters=6 \
      --layout=params --prune="$4" --eval-samples=500 --out-samples=10 --out="$out" --quiet \
      >/dev/null 2>"$out.err"; then
    return 0
  fi
  fail "$1" "$(head -c 300 "$out.err")"
  return 1
}

within() { "$GFV_PYTHON" -c "import sys; sys.exit(0 if float('$1') <= $2 else 1)"; }

compare() { # NAME A B TOL
  local diff
  diff=$(max_rel_diff "$dir/$2" "$dir/$3")
  if within "$diff" "$4"; then pass "$1 (max rel diff $diff)"; else fail "$1" "max relative difference $diff > $4"; fi
}

if run spread-on 1 "$dir/modes.csv" on && run spread-off 1 "$dir/modes.csv" off && run spread-on3 3 "$dir/modes.csv" on; then
  frac=$(json_get "$dir/spread-on/summary.json" pruned_fraction)
  if within "0.9" "$frac"; then pass "spread: pruned fraction $frac"; else fail "spread-fraction" "only $frac of the pairs pruned"; fi
  off=$(json_get "$dir/spread-off/summary.json" pruned_fraction)
  if within "$off" 0; then pass "prune=off prunes nothing"; else fail "prune-off" "pruned fraction $off"; fi
  compare spread-pruned-equals-unpruned spread-on spread-off 1e-12
  compare spread-pruned-3ranks-equals-1rank spread-on3 spread-on 1e-11
fi
if run compact-on 1 "$dir/compact.csv" on && run compact-off 1 "$dir/compact.csv" off; then
  compare compact-pruned-equals-unpruned compact-on compact-off 1e-12
fi
finish
