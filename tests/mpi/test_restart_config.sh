#!/usr/bin/env bash
# test_restart_config.sh - --restart=FILE alone continues the run; its problem cannot change:
#  - a run with non-default options, stopped by its checkpoint schedule and restarted with
#    only --restart and --iters, ends bitwise identical to the uninterrupted run, in the
#    original --out, at 1 and at 3 ranks;
#  - every option that defines the problem, changed on the command line or in --config, is
#    refused with status 2 and one line naming it with both values; nothing is written to
#    --out and the checkpoint is untouched; run options (--step, --iters, --out) change,
#    the init options keep the checkpoint's values;
#  - a --data file, a gmm:FILE or a plugin .so edited under the same name is refused
#    (status 3), and accepted again once restored;
#  - a tampered configuration in the checkpoint is refused (checksum);
#  - SIGINT (Ctrl-C) checkpoints and exits with status 10, like SIGTERM, at 1 and 3 ranks.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

opts=(--particles=8 --samples=5 --flow=gflow --target=gauss --dim=3 --weight-step=0.05
  --init-scale=2 --quiet --eval-samples=2000 --out-samples=50)

# ---- a bare restart continues the same run --------------------------------------------
for np in 1 3; do
  ref=$(tmpdir)
  part=$(tmpdir)
  gfv_mpirun "$np" "${opts[@]}" --iters=80 --out="$ref" >/dev/null 2>&1 || fail "reference-$np" "run failed"
  gfv_mpirun "$np" "${opts[@]}" --iters=40 --checkpoint-every=40 --out="$part" >/dev/null 2>&1 ||
    fail "first-half-$np" "run failed"
  # Only --restart and --iters: the outputs go to the checkpointed run's --out.
  gfv_mpirun "$np" --restart="$part/checkpoint.h5" --iters=80 >"$part.log" 2>&1 ||
    fail "bare-restart-$np" "$(_gfv_head "$part.log")"
  if cmp -s "$ref/mixture.csv" "$part/mixture.csv" &&
    diff <(cut -d, -f1-5 "$ref/trace.csv") <(cut -d, -f1-5 "$part/trace.csv") >/dev/null; then
    pass "bare-restart-bitwise-$np-ranks"
  else
    fail "bare-restart-bitwise-$np-ranks" "mixture.csv or trace.csv differs from the uninterrupted run"
  fi
done
ck=$part/checkpoint.h5 # from the 3-rank run, at iteration 80 now
# The restart reports the resolved options: those of the checkpoint.
[[ $(json_get "$part/summary.json" config | "$GFV_PYTHON" -c \
  'import json,sys; c=json.load(sys.stdin); print(c["particles"], c["flow"], c["samples"], c["init-scale"], c["iters"])') == "8 gflow 5 2 80" ]] &&
  pass restart-summary-has-checkpoint-options || fail restart-summary-has-checkpoint-options "$(json_get "$part/summary.json" config)"

# ---- problem options cannot change ------------------------------------------------------
sum_before=$(md5sum <"$ck")
bad=$(tmpdir)
n=0
while read -r opt value; do
  n=$((n + 1))
  expect_fail "refuse-changed-$opt" 2 "--$opt=$value (checkpoint: " \
    "$GFV_BIN" --restart="$ck" --iters=100 --"$opt=$value" --out="$bad/o$n"
  [[ ! -e $bad/o$n ]] || fail "refuse-changed-$opt-no-output" "$bad/o$n was created"
done <<'EOF'
target banana
dim 4
data x.csv
label-col 2
standardize scale
intercept false
prior-scale 3
hidden 7
batch-size 5
split-seed 3
test-fraction 0.2
plugin-arg x
flow ngflow
estimator stein
update plain
family diag
particles 9
samples 6
seed 7
EOF
# Several at once: one line naming each with both values.
expect_fail refuse-changed-message 2 "--restart=$ck: the checkpoint's problem differs: --samples=6 (checkpoint: 5), --seed=7 (checkpoint: 1); these options define the problem and cannot change on restart" \
  "$GFV_BIN" --restart="$ck" --seed=7 --samples=6 --out="$bad/multi"
# From a --config file too; at 3 ranks, one line.
printf 'seed = 7\n' >"$bad/seed.cfg"
gfv_mpirun 3 --restart="$ck" --config="$bad/seed.cfg" --out="$bad/cfg" >/dev/null 2>"$bad/cfg.err" && code=0 || code=$?
((code == 2)) && grep -qF -- "--seed=7 (checkpoint: 1)" "$bad/cfg.err" && [[ $(grep -c '^gflowvi: error' "$bad/cfg.err") == 1 ]] &&
  pass refuse-changed-in-config-file-3-ranks || fail refuse-changed-in-config-file-3-ranks "status $code: $(_gfv_head "$bad/cfg.err")"
[[ $(md5sum <"$ck") == "$sum_before" ]] && pass refusals-leave-checkpoint-untouched ||
  fail refusals-leave-checkpoint-untouched "the checkpoint changed"
# The same value given again is no change.
expect_ok same-problem-value-accepted "$GFV_BIN" --restart="$ck" --seed=1 --particles=8 --iters=82 --out="$bad/same"

# ---- run options may change; init options keep the checkpoint's ------------------------
new=$(tmpdir)
expect_ok run-options-change "$GFV_BIN" --restart="$ck" --step=0.02 --iters=90 --init-scale=9 --out="$new/o"
got=$(json_get "$new/o/summary.json" config | "$GFV_PYTHON" -c \
  'import json,sys; c=json.load(sys.stdin); print(c["step"], c["iters"], c["init-scale"], c["particles"])' 2>/dev/null || true)
rows=$(($(wc -l <"$new/o/trace.csv" 2>/dev/null || echo 0) - 1))
[[ $got == "0.02 90 2 8" && $rows == 91 ]] && pass run-options-used ||
  fail run-options-used "step iters init-scale particles = $got, $rows trace rows"

# ---- input files edited under the same name ---------------------------------------------
files=$(tmpdir)
"$GFV_PYTHON" - "$files" <<'EOF'
import sys
import numpy as np
r = np.random.RandomState(5)
X = r.normal(size=(60, 2))
y = (r.uniform(size=60) < 1 / (1 + np.exp(-(X @ [1.0, -1.0])))).astype(int)
np.savetxt(sys.argv[1] + "/train.csv", np.column_stack([X, y]), delimiter=",", fmt="%.10g")
EOF
short=(--quiet --iters=20 --checkpoint-every=20 --particles=4 --samples=4 --eval-samples=400 --out-samples=10)
# A changed file is refused; the same file restored is accepted (so the checksum is why).
edit_and_restart() { # NAME FILE OUT: edits FILE (the python below), restarts, restores
  local name=$1 file=$2 out=$3
  cp "$file" "$file.orig"
  "$GFV_PYTHON" -c "import sys; p=sys.argv[1]; b=open(p,'rb').read(); open(p,'wb').write(b.replace(b'1', b'2', 1))" "$file"
  cmp -s "$file" "$file.orig" && fail "$name" "the edit changed nothing"
  expect_fail "refuse-edited-$name" 3 "changed since the checkpoint was written (checksum " \
    "$GFV_BIN" --restart="$out/checkpoint.h5" --iters=21 --out="$out/again"
  mv "$file.orig" "$file"
  expect_ok "restored-$name-accepted" "$GFV_BIN" --restart="$out/checkpoint.h5" --iters=21 --out="$out/again"
}
if gfv_mpirun 1 --target=logreg --data="$files/train.csv" "${short[@]}" --out="$files/lr" >/dev/null 2>&1; then
  edit_and_restart data "$files/train.csv" "$files/lr"
else
  fail refuse-edited-data "the logreg run failed"
fi
cp "$ref/mixture.csv" "$files/mix.csv"
if gfv_mpirun 1 --target=gmm:"$files/mix.csv" "${short[@]}" --out="$files/gm" >/dev/null 2>&1; then
  edit_and_restart gmm-file "$files/mix.csv" "$files/gm"
else
  fail refuse-edited-gmm-file "the gmm:FILE run failed"
fi
cp "$GFV_BUILD/plugins/ring.so" "$files/model.so"
if gfv_mpirun 1 --target=plugin:"$files/model.so" "${short[@]}" --out="$files/pl" >/dev/null 2>&1; then
  cp "$GFV_BUILD/plugins/ring_nohess.so" "$files/model.so"
  expect_fail refuse-replaced-plugin 3 "--target=plugin:$files/model.so changed since the checkpoint" \
    "$GFV_BIN" --restart="$files/pl/checkpoint.h5" --iters=21 --out="$files/pl/again"
else
  fail refuse-replaced-plugin "the plugin run failed"
fi

# ---- a tampered configuration -----------------------------------------------------------
cp "$ck" "$bad/tampered.h5"
if "$GFV_PYTHON" - "$bad/tampered.h5" 2>/dev/null <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    t = f.attrs["config_text"].decode().replace("seed = 1\n", "seed = 2\n")
    f.attrs.create("config_text", np.bytes_(t))
PY
then :; else fail tamper "h5py could not edit the checkpoint"; fi
expect_fail refuse-tampered-config 3 "is corrupted (checksum mismatch)" \
  "$GFV_BIN" --restart="$bad/tampered.h5" --iters=100 --out="$bad/t"

# ---- SIGINT ------------------------------------------------------------------------------
long=(--particles=16 --iters=1000000 --quiet --progress-every=0 --eval-samples=2000 --out-samples=10 --checkpoint-every=100)
# Waits for the first checkpoint (so the handlers are installed), sends SIGINT to the given
# processes, and checks the status, the message and the checkpoint.
sigint_test() { # NAME PID DIR TARGETS...
  local name=$1 pid=$2 dir=$3 code=0 i
  shift 3
  for ((i = 0; i < 100; i++)); do [[ -s $dir/checkpoint.h5 ]] && break; sleep 0.1; done
  kill -INT "$@" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  wait "$pid" || code=$?
  if ((code == 10)) && grep -q "received SIGINT: checkpoint written" "$dir.err" &&
    [[ $(grep -c "received SIGINT" "$dir.err") == 1 ]] &&
    "$GFV_BIN" --restart="$dir/checkpoint.h5" --iters=$(($(h5dump -a iteration "$dir/checkpoint.h5" |
      grep -o '(0): [0-9]*' | cut -d' ' -f2) + 5)) --progress-every=0 >/dev/null 2>&1; then
    pass "$name"
  else
    fail "$name" "status $code: $(_gfv_head "$dir.err")"
  fi
}
s1=$(tmpdir)
# One rank without mpirun, as a Ctrl-C in a terminal reaches it.
"$GFV_BIN" "${long[@]}" --out="$s1" >/dev/null 2>"$s1.err" &
pid=$!
sigint_test sigint-checkpoints-and-exits-10 "$pid" "$s1" "$pid"
# Three ranks, each signalled (as srun or a shared process group delivers Ctrl-C).
s3=$(tmpdir)
"$GFV_ROOT/tools/mpirun.sh" 3 "$GFV_BIN" "${long[@]}" --out="$s3" >/dev/null 2>"$s3.err" &
pid=$!
for ((i = 0; i < 100; i++)); do [[ -s $s3/checkpoint.h5 ]] && break; sleep 0.1; done
mapfile -t ranks < <(pgrep -P "$pid" || true)
if ((${#ranks[@]} == 3)); then
  sigint_test sigint-3-ranks "$pid" "$s3" "${ranks[@]}"
else
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || true
  fail sigint-3-ranks "found ${#ranks[@]} rank processes under mpirun"
fi
finish
