#!/usr/bin/env bash
# test_smpi.sh - gflowvi on the simulated cluster (docs/cluster.md): the real program, built
# with SimGrid's smpicc (make smpi -> build-smpi/), run by smpirun on tools/smpi/cluster.xml
# (tools/smpi/simulate.py).  About 90 s of CPU: 4 minutes on 2 cores shared with other jobs (load
# average 7-13), plus the build when it is not up to
# date.
#   - the same problem (gauss, d = 16, K = 256, S = 10, 10 iterations) on 1, 16 and 64
#     simulated ranks, in both layouts (--layout=samples and params), gives the same ELBO,
#     the final one and the last iteration's, to 1e-9 relative (as
#     tests/mpi/test_rank_agreement.sh asks of real runs: particle k's streams depend on
#     (seed, k) only, so only the order of floating-point sums changes);
#   - the simulated time per iteration falls from 1 to 16 ranks by more than 2x in both
#     layouts: the mixture terms, over 90% of the one-rank iteration, divide by 16, and one
#     message costs microseconds on the simulated fat tree (tools/perfmodel.py predicts
#     about 8x);
#   - timing-only mode (GFV_SMPI_SAMPLE=3, src/comm/sim.h) on 16 ranks of K = 1024 (samples
#     layout: 5 blocks of points per phase; params: 16 blocks of local particles, one per
#     rank) takes the real run's path (no rejected step, the same iterations), says in
#     summary.json that there is no fit to evaluate, and its simulated mixture time per
#     estimate is within 35% of the real fit's: SMPI charges the blocks it skipped at the
#     mean time of the ones it ran, and all blocks do the same work (35%: the kernels of the
#     two runs are timed at different moments on a shared machine, whose speed drifts by
#     20-30% between runs; a block left uncharged would be off by 5x or more);
#   - a small simulated sweep, as the documented 1,024-rank one but smaller
#     (tools/scaling.py run --simulate: strong, K = 4096, d = 16, S = 10, 16 and 64 ranks,
#     both layouts, timing-only): every run takes the real path (rejected_steps 0), the
#     simulated strong efficiency from 16 to 64 ranks is within 0.25 of the performance
#     model's (tools/perfmodel.py with docs/scaling/simulated/calibration.json, on the
#     platform's network), and the simulated time per iteration within a factor 2 of the
#     model's (measured when written: efficiencies 0.9-1.1 against the model's 0.93 and
#     0.99, times 1.0-1.6x the model's: the calibration was measured on a quieter machine);
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
if gfv_asan_build; then
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

# 1. 1, 16 and 64 ranks of the real fit, both layouts.
ok=1
for layout in samples params; do
  for p in 1 16 64; do
    if ! sim "$p" "${problem[@]}" --layout=$layout --out="$work/$layout-p$p" >"$work/$layout-p$p.log" 2>&1; then
      fail "smpi-run-$layout-$p" "exit status $?: $(_gfv_head "$work/$layout-p$p.log")"
      ok=0
    elif [[ $(json_get "$work/$layout-p$p/summary.json" ranks) != "$p" ]]; then
      fail "smpi-run-$layout-$p" "summary.json says ranks $(json_get "$work/$layout-p$p/summary.json" ranks)"
      ok=0
    else
      pass "smpi-run-$layout-$p"
    fi
  done
done

if ((ok)); then
  why=$("$GFV_PYTHON" - "$work" <<'PY'
import json, sys
s = {(l, p): json.load(open(f"{sys.argv[1]}/{l}-p{p}/summary.json"))
     for l in ("samples", "params") for p in (1, 16, 64)}
msgs, worst = [], 0.0
ref = s["samples", 1]
for (l, p), x in s.items():
    for key in ("elbo", "last_iteration_elbo"):
        a, b = ref[key], x[key]
        worst = max(worst, abs(b - a) / abs(a))
        if not abs(b - a) <= 1e-9 * abs(a):
            msgs.append(f"{key} {l} on {p} ranks {b!r} vs {a!r} samples on 1 (rel. {abs(b - a) / abs(a):.2g})")
print("; ".join(msgs) if msgs else f"OK max rel diff {worst:.3g}")
PY
  )
  if [[ $why == OK* ]]; then pass "smpi-elbo-agrees-1-16-64-both-layouts (${why#OK })"; else fail smpi-elbo-agrees-1-16-64-both-layouts "$why"; fi
  for layout in samples params; do
    why=$("$GFV_PYTHON" - "$work" $layout <<'PY'
import json, sys
t = {p: json.load(open(f"{sys.argv[1]}/{sys.argv[2]}-p{p}/summary.json")) for p in (1, 16)}
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
    if [[ $why == OK* ]]; then pass "smpi-time-falls-1-16-$layout (${why#OK })"; else fail smpi-time-falls-1-16-$layout "$why"; fi
  done
fi

# 2. Timing-only mode on 16 ranks, against the real fit's timers, on a problem of 5 blocks
#    (K = 1024: 10,240 points, blocks of at least 2,048), so that skipped blocks are charged.
timing=(--target=gauss --dim=16 --particles=1024 --samples=10 --iters=3 --eval-samples=1000
  --out-samples=10 --quiet)
for layout in samples params; do
  if sim 16 --sample 0 "${timing[@]}" --layout=$layout --out="$work/r16-$layout" >"$work/r16-$layout.log" 2>&1 &&
    sim 16 --sample 3 "${timing[@]}" --layout=$layout --out="$work/s16-$layout" >"$work/s16-$layout.log" 2>&1; then
    why=$("$GFV_PYTHON" - "$work" $layout <<'PY'
import json, sys
real = json.load(open(f"{sys.argv[1]}/r16-{sys.argv[2]}/summary.json"))
samp = json.load(open(f"{sys.argv[1]}/s16-{sys.argv[2]}/summary.json"))
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
    if [[ $why == OK* ]]; then pass "smpi-timing-only-16-$layout (${why#OK })"; else fail smpi-timing-only-16-$layout "$why"; fi
  else
    fail smpi-timing-only-16-$layout "exit status $?: $(_gfv_head "$work/r16-$layout.log") $(_gfv_head "$work/s16-$layout.log")"
  fi
done

# 3. A small simulated sweep, both layouts, against the performance model.
cat >"$work/spec.json" <<'JSON'
{"target": "gauss", "dim": 16, "samples": 10, "iters": 1, "strong": {"ranks": [16, 64], "particles": 4096}}
JSON
if "$GFV_PYTHON" "$GFV_ROOT/tools/scaling.py" run --simulate --build "$smpi_build" --spec "$work/spec.json" \
  --sweeps strong --layout samples,params --sample 4 \
  --calib "$GFV_ROOT/docs/scaling/simulated/calibration.json" --out "$work/sweep" >"$work/sweep.log" 2>&1; then
  why=$("$GFV_PYTHON" - "$work/sweep/scaling.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
msgs, notes = [], []
for layout in ("samples", "params"):
    rs = sorted((r for r in rows if r["layout"] == layout), key=lambda r: int(r["ranks"]))
    if [int(r["ranks"]) for r in rs] != [16, 64]:
        msgs.append(f"{layout}: rows for ranks {[r['ranks'] for r in rs]}")
        continue
    for r in rs:
        if str(r["rejected_steps"]) != "0":
            msgs.append(f"{layout} {r['ranks']} ranks: rejected_steps {r['rejected_steps']}")
        ratio = float(r["seconds_per_iteration"]) / float(r["model_s"])
        if not 0.5 <= ratio <= 2.0:
            msgs.append(f"{layout} {r['ranks']} ranks: simulated/model time {ratio:.3g}")
    eff = float(rs[1]["efficiency"])
    m0, m1 = float(rs[0]["model_s"]), float(rs[1]["model_s"])
    meff = m0 * 16 / (m1 * 64)
    notes.append(f"{layout} {eff:.3f} vs model {meff:.3f}")
    if not abs(eff - meff) <= 0.25:
        msgs.append(f"{layout}: simulated efficiency 16->64 ranks {eff:.3f}, model {meff:.3f}")
print("; ".join(msgs) if msgs else "OK efficiency " + ", ".join(notes))
PY
  )
  if [[ $why == OK* ]]; then pass "smpi-sweep-16-64-vs-model (${why#OK })"; else fail smpi-sweep-16-64-vs-model "$why"; fi
else
  fail smpi-sweep-16-64-vs-model "tools/scaling.py run --simulate failed: $(tail -n 5 "$work/sweep.log" | tr '\n' ' ' | head -c 400)"
fi

# 4. A malformed GFV_SMPI_SAMPLE.
expect_fail smpi-bad-sample-variable 2 "GFV_SMPI_SAMPLE='2x'" \
  env GFV_SMPI_SAMPLE=2x "$GFV_PYTHON" "$GFV_ROOT/tools/smpi/simulate.py" --build "$smpi_build" 2 \
  --target=gmm4 --particles=4 --iters=2 --quiet --out="$work/bad"
finish
