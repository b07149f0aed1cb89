#!/usr/bin/env bash
# test_smpi.sh - gflowvi on the simulated cluster (docs/cluster.md): the real program, built
# with SimGrid's smpicc (make smpi -> build-smpi/), run by smpirun on tools/smpi/cluster.xml
# (tools/smpi/simulate.py).  About 40 s on 2 cores, plus the build when it is not up to date.
#   - the same problem (gauss, d = 16, K = 256, S = 10, 10 iterations) on 1, 16 and 64
#     simulated ranks gives the same ELBO, the final one and the last iteration's, to 1e-9
#     relative (as tests/mpi/test_rank_agreement.sh asks of real runs: particle k's streams
#     depend on (seed, k) only, so only the order of floating-point sums changes);
#   - the simulated time per iteration falls from 1 to 16 ranks by more than 2x: the
#     mixture terms, over 90% of the one-rank iteration, divide by 16, and one message
#     costs microseconds on the simulated fat tree (tools/perfmodel.py predicts about 8x);
#   - timing-only mode (GFV_SMPI_SAMPLE=3, src/comm/sim.h) on 16 ranks of K = 1024 (5
#     blocks of points per phase) takes the real run's path (no rejected step, the same
#     iterations), says in summary.json that there is no fit to evaluate, and its simulated
#     mixture time per estimate is within 35% of the real fit's: SMPI charges the blocks it
#     skipped at the mean time of the ones it ran, and all blocks do the same work (35%: the
#     kernels of the two runs are timed at different moments on a shared machine, whose
#     speed drifts by 20-30% between runs; a block left uncharged would be off by 5x);
#   - a malformed GFV_SMPI_SAMPLE is refused with status 2, naming the variable.
# The build: tools/check.sh builds build-smpi once per CI run (make smpi); this script runs
# make smpi too (a no-op when up to date) under a lock, so that it also works alone.  Where
# SimGrid is missing it prints SKIP (tools/install-deps.sh installs libsimgrid-dev); the
# sanitizer stage skips it (the plain build's stage runs it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if ! command -v smpicc >/dev/null || ! command -v smpirun >/dev/null; then
  echo "SKIP smpi: SimGrid's smpicc/smpirun not installed (tools/install-deps.sh: libsimgrid-dev)"
  finish
fi
if grep -qa __asan_init "$GFV_BIN" 2>/dev/null; then
  echo "SKIP smpi: $GFV_BIN is an AddressSanitizer build; the plain build's stage runs this test"
  finish
fi

smpi_build=$GFV_ROOT/build-smpi
work=$(tmpdir)
mkdir -p "$smpi_build"
if ! (cd "$GFV_ROOT" && flock "$smpi_build/.lock" make -s -j2 WERROR=1 smpi) >"$work/make.log" 2>&1; then
  fail smpi-build "make smpi failed: $(tail -n 5 "$work/make.log" | tr '\n' ' ' | head -c 300)"
  finish
fi
pass smpi-build

sim() { # sim RANKS [--sample N] GFLOWVI_ARGS...
  "$GFV_PYTHON" "$GFV_ROOT/tools/smpi/simulate.py" --build "$smpi_build" "$@"
}
problem=(--target=gauss --dim=16 --particles=256 --samples=10 --iters=10 --eval-samples=1000
  --out-samples=10 --quiet)

# 1. 1, 16 and 64 ranks of the real fit.
ok=1
for p in 1 16 64; do
  if ! sim "$p" "${problem[@]}" --out="$work/p$p" >"$work/p$p.log" 2>&1; then
    fail "smpi-run-$p" "exit status $?: $(_gfv_head "$work/p$p.log")"
    ok=0
  elif [[ $(json_get "$work/p$p/summary.json" ranks) != "$p" ]]; then
    fail "smpi-run-$p" "summary.json says ranks $(json_get "$work/p$p/summary.json" ranks)"
    ok=0
  else
    pass "smpi-run-$p"
  fi
done

if ((ok)); then
  why=$("$GFV_PYTHON" - "$work" <<'PY'
import json, sys
s = {p: json.load(open(f"{sys.argv[1]}/p{p}/summary.json")) for p in (1, 16, 64)}
msgs, worst = [], 0.0
for p in (16, 64):
    for key in ("elbo", "last_iteration_elbo"):
        a, b = s[1][key], s[p][key]
        worst = max(worst, abs(b - a) / abs(a))
        if not abs(b - a) <= 1e-9 * abs(a):
            msgs.append(f"{key} on {p} ranks {b!r} vs {a!r} on 1 (rel. {abs(b - a) / abs(a):.2g})")
print("; ".join(msgs) if msgs else f"OK max rel diff {worst:.3g}")
PY
  )
  if [[ $why == OK* ]]; then pass "smpi-elbo-agrees-1-16-64 (${why#OK })"; else fail smpi-elbo-agrees-1-16-64 "$why"; fi
  why=$("$GFV_PYTHON" - "$work" <<'PY'
import json, sys
t = {p: json.load(open(f"{sys.argv[1]}/p{p}/summary.json")) for p in (1, 16)}
t1, t16 = (t[p]["seconds"] / t[p]["iterations"] for p in (1, 16))
c16 = t[16]["timers"]["comm"]["mean"]
if not t16 < t1 / 2:
    print(f"simulated s/iteration {t16:.4g} on 16 ranks, {t1:.4g} on 1: not 2x faster")
elif not c16 > 0:
    print(f"no simulated communication time on 16 ranks ({c16})")
else:
    print(f"OK speedup {t1 / t16:.3g}")
PY
  )
  if [[ $why == OK* ]]; then pass "smpi-time-falls-1-16 (${why#OK })"; else fail smpi-time-falls-1-16 "$why"; fi
fi

# 2. Timing-only mode on 16 ranks, against the real fit's timers, on a problem of 5 blocks
#    (K = 1024: 10,240 points, blocks of at least 2,048), so that skipped blocks are charged.
timing=(--target=gauss --dim=16 --particles=1024 --samples=10 --iters=3 --eval-samples=1000
  --out-samples=10 --quiet)
if sim 16 --sample 0 "${timing[@]}" --out="$work/r16" >"$work/r16.log" 2>&1 &&
  sim 16 --sample 3 "${timing[@]}" --out="$work/s16" >"$work/s16.log" 2>&1; then
  why=$("$GFV_PYTHON" - "$work" <<'PY'
import json, sys
real = json.load(open(f"{sys.argv[1]}/r16/summary.json"))
samp = json.load(open(f"{sys.argv[1]}/s16/summary.json"))
msgs = []
if samp["iterations"] != real["iterations"] or samp["rejected_steps"] != 0:
    msgs.append(f"iterations {samp['iterations']}, rejected {samp['rejected_steps']}")
if samp["elbo"] is not None or not any("timing-only" in w for w in samp["warnings"]):
    msgs.append("summary.json has an ELBO, or no timing-only warning")
# Per estimate: each run makes iterations + 1 of them.
m_real, m_samp = (s["timers"]["mixture"]["mean"] / (s["iterations"] + 1) for s in (real, samp))
if not abs(m_samp / m_real - 1) <= 0.35:
    msgs.append(f"sampled mixture time {m_samp:.4g} s per estimate vs {m_real:.4g} s real")
print("; ".join(msgs) if msgs else f"OK sampled/real mixture time {m_samp / m_real:.3g}")
PY
  )
  if [[ $why == OK* ]]; then pass "smpi-timing-only-16 (${why#OK })"; else fail smpi-timing-only-16 "$why"; fi
else
  fail smpi-timing-only-16 "exit status $?: $(_gfv_head "$work/r16.log") $(_gfv_head "$work/s16.log")"
fi

# 3. A malformed GFV_SMPI_SAMPLE.
expect_fail smpi-bad-sample-variable 2 "GFV_SMPI_SAMPLE='2x'" \
  env GFV_SMPI_SAMPLE=2x "$GFV_PYTHON" "$GFV_ROOT/tools/smpi/simulate.py" --build "$smpi_build" 2 \
  --target=gmm4 --particles=4 --iters=2 --quiet --out="$work/bad"
finish
