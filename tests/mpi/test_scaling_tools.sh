#!/usr/bin/env bash
# test_scaling_tools.sh - the scaling-study tools end to end, small and fast (~15 s):
#   - build/bin/calibrate --quick on 2 ranks writes a calibration file with positive
#     rates and the MPI constants;
#   - tools/perfmodel.py predicts a strong sweep to 4096 ranks for both layouts (time
#     falls with the rank count, communication is zero on 1 rank and grows, the
#     efficiency-below-80% line is printed), a weak sweep, and compares with a table;
#   - tools/scaling.py runs a strong and a weak sweep on 1 and 2 ranks through
#     tools/mpirun.sh: one CSV with a row per run, the expected columns and particle
#     counts, and the three plots;
#   - tools/scaling.py row/finish (what the Slurm jobs call) rebuild the same table.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

calib_bin=$GFV_BUILD/bin/calibrate
work=$(tmpdir)
calib=$work/calibration.json

# 1. calibration
if [[ ! -x $calib_bin ]]; then
  fail calibrate "no $calib_bin (make all builds it)"
elif ! "$GFV_ROOT/tools/mpirun.sh" 2 "$calib_bin" --quick --out="$calib" >"$work/calib.out" 2>&1; then
  fail calibrate "exit status $?: $(_gfv_head "$work/calib.out")"
else
  why=$("$GFV_PYTHON" - "$calib" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
k = c["kernel"]
bad = [n for n in ("gemm_rate", "syrk_rate", "phase_a_pair", "phase_b_pair", "phase_bh_pair")
       if not all(v > 0 for row in k[n] for v in row)]
bad += [n for n, v in c["particle"].items() if not all(x > 0 for x in v)]
if not c.get("mpi") or not (c["mpi"]["alpha"] > 0 and c["mpi"]["beta"] > 0):
    bad.append("mpi alpha/beta")
if c["ranks"] != 2:
    bad.append("ranks %r" % c["ranks"])
print(" ".join(bad))
PY
  )
  if [[ -z $why ]]; then pass "calibrate-quick-2-ranks"; else fail calibrate "non-positive or missing: $why"; fi
fi

# 2. the model
if [[ -s $calib ]]; then
  if out=$("$GFV_PYTHON" "$GFV_ROOT/tools/perfmodel.py" predict --calib "$calib" --K 4096 --S 10 --d 16 \
    --network ib --csv "$work/pred.csv" 2>&1); then
    why=$("$GFV_PYTHON" - "$work/pred.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
msgs = []
for layout in ("current", "params"):
    rs = [r for r in rows if r["layout"] == layout]
    if [int(r["ranks"]) for r in rs] != [2 ** i for i in range(13)]:
        msgs.append(f"{layout}: ranks {[r['ranks'] for r in rs]}")
        continue
    t = [float(r["seconds_per_iteration"]) for r in rs]
    c = [float(r["comm_s"]) for r in rs]
    if any(b >= a for a, b in zip(t, t[1:])):
        msgs.append(f"{layout}: time per iteration does not fall with the rank count")
    if c[0] != 0 or not all(x > 0 for x in c[1:]):
        msgs.append(f"{layout}: communication not 0 on 1 rank and positive after")
    if float(rs[0]["efficiency"]) != 1.0:
        msgs.append(f"{layout}: efficiency on 1 rank {rs[0]['efficiency']}")
print("; ".join(msgs))
PY
    )
    if [[ -z $why ]] && grep -q 'efficiency below 80% from\|stays at or above 80%' <<<"$out"; then
      pass perfmodel-predict-strong-to-4096
    else
      fail perfmodel-predict-strong-to-4096 "${why:-no 80% line}"
    fi
  else
    fail perfmodel-predict-strong-to-4096 "$(head -c 300 <<<"$out")"
  fi
  expect_ok perfmodel-predict-weak "$GFV_PYTHON" "$GFV_ROOT/tools/perfmodel.py" predict --calib "$calib" \
    --K 64 --S 10 --d 8 --weak --ranks 1:1024 --estimator stein --flow gflow
  expect_ok perfmodel-flops "$GFV_PYTHON" "$GFV_ROOT/tools/perfmodel.py" flops --K 64 --S 10 --d 8 --P 4
fi

# 3. a sweep through tools/mpirun.sh
spec=$work/spec.json
cat >"$spec" <<'EOF'
{"target": "gauss", "dim": 4, "samples": 5, "iters": 30,
 "strong": {"ranks": [1, 2], "particles": 16},
 "weak": {"ranks": [1, 2], "particles_per_rank": 8}}
EOF
calib_arg=()
[[ ! -s $calib ]] || calib_arg=(--calib "$calib")
if "$GFV_PYTHON" "$GFV_ROOT/tools/scaling.py" run --spec "$spec" --out "$work/sweep" \
  --build "$GFV_BUILD" "${calib_arg[@]}" >"$work/sweep.out" 2>&1; then
  why=$("$GFV_PYTHON" - "$work/sweep/scaling.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
got = [(r["sweep"], int(r["ranks"]), int(r["particles"])) for r in rows]
want = [("strong", 1, 16), ("strong", 2, 16), ("weak", 1, 8), ("weak", 2, 16)]
msgs = []
if got != want:
    msgs.append(f"rows {got} != {want}")
for r in rows:
    if not float(r["seconds_per_iteration"]) > 0:
        msgs.append("non-positive time")
    if r["ranks"] == "1" and float(r["efficiency"]) != 1.0:
        msgs.append("efficiency on 1 rank != 1")
    if r["ranks"] == "2" and not float(r["bytes_per_iteration"]) > 0:
        msgs.append("no bytes sent on 2 ranks")
    for c in ("mixture_s", "comm_s", "speedup", "dim", "samples", "cpu"):
        if r.get(c, "") == "":
            msgs.append(f"empty column {c}")
print("; ".join(sorted(set(msgs))))
PY
  )
  if [[ -z $why ]]; then pass scaling-run-table; else fail scaling-run-table "$why"; fi
  missing=""
  for f in time_per_iteration.png speedup_efficiency.png phases.png; do
    [[ -s $work/sweep/$f ]] || missing+=" $f"
  done
  if [[ -z $missing ]]; then pass scaling-run-plots; else fail scaling-run-plots "missing:$missing"; fi
  if [[ -s $calib ]]; then
    expect_ok perfmodel-compare "$GFV_PYTHON" "$GFV_ROOT/tools/perfmodel.py" compare --calib "$calib" \
      "$work/sweep/scaling.csv"
  fi
else
  fail scaling-run "$(tail -n 5 "$work/sweep.out" | tr '\n' ' ' | head -c 300)"
fi

# 4. row + finish, as the Slurm jobs use them, rebuild a table from the runs' directories.
table=$work/rows.csv
if "$GFV_PYTHON" "$GFV_ROOT/tools/scaling.py" row --header >"$table" &&
  "$GFV_PYTHON" "$GFV_ROOT/tools/scaling.py" row --sweep strong "$work/sweep/runs/strong-p1-r0" >>"$table" &&
  "$GFV_PYTHON" "$GFV_ROOT/tools/scaling.py" row --sweep strong "$work/sweep/runs/strong-p2-r0" >>"$table" &&
  "$GFV_PYTHON" "$GFV_ROOT/tools/scaling.py" finish "$table" --out "$work/rows" >/dev/null 2>&1 &&
  [[ $(wc -l <"$table") == 3 && -s $work/rows/speedup_efficiency.png ]] &&
  "$GFV_PYTHON" -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); sys.exit(0 if r[0]['efficiency']=='1' and r[1]['speedup'] else 1)" "$table"; then
  pass scaling-row-finish
else
  fail scaling-row-finish "the table from row/finish is incomplete: $(head -c 300 "$table" 2>/dev/null)"
fi
finish
