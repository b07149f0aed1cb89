#!/usr/bin/env bash
# test_bad_input.sh - every kind of bad input gets one clear line naming the problem, the
# documented exit status on every rank, and no output file at all.  Each case runs at 1
# and 3 ranks; a hang (a rank left behind in a collective) would hit run_all's timeout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

data=$(tmpdir)
printf 'particles = 4\nthis line is wrong\n' >"$data/bad.cfg"
printf 'particles = 4\nsamples = 3\n' >"$data/good.cfg"
printf 'weight,mu_1,mu_2,cov_1_1,cov_1_2,cov_2_1,cov_2_2\n1,0,0,1,0,0,abc\n' >"$data/bad_field.csv"
printf 'weight,mu_1,mu_2,cov_1_1,cov_1_2,cov_2_1,cov_2_2\n1,0,0,1,2,2,1\n' >"$data/not_pd.csv"
printf '1,2,3,4,5,6,7,8\n' >"$data/bad_cols.csv"
printf '0.5,1,0,1,0,0,1\n0.5,-1,0,1,0.2,0.2,1\n' >"$data/good2d.csv"
touch "$data/regular_file"

# case NAME STATUS FRAGMENT ARGS... : at 1 and 3 ranks, expect STATUS and FRAGMENT on
# stderr, exactly one error line, and no file in the output directory.
case_() {
  local name=$1 status=$2 frag=$3
  shift 3
  local np out err code
  for np in 1 3; do
    out=$(tmpdir)/out
    err=$GFV_TMP/$name.$np.err
    code=0
    # One rank runs without mpirun (MPI singleton, as users do too), which also spares
    # mpirun's pause after a failed job.
    if ((np == 1)); then
      "$GFV_BIN" --iters=3 --out="$out" "$@" >/dev/null 2>"$err" </dev/null || code=$?
    else
      gfv_mpirun "$np" --iters=3 --out="$out" "$@" >/dev/null 2>"$err" </dev/null || code=$?
    fi
    local lines
    lines=$(grep -c '^gflowvi: error:' "$err" || true)
    if ((code != status)); then
      fail "$name-np$np" "exit status $code, expected $status: $(_gfv_head "$err")"
    elif ! grep -qF -- "$frag" "$err"; then
      fail "$name-np$np" "stderr lacks '$frag': $(_gfv_head "$err")"
    elif ((lines != 1)); then
      fail "$name-np$np" "$lines error lines, expected exactly one"
    elif [[ -e $out && -n $(ls -A "$out") ]]; then
      fail "$name-np$np" "output left behind: $(ls -A "$out" | tr '\n' ' ')"
    else
      pass "$name-np$np"
    fi
  done
}

case_ unknown-option 2 "unknown option '--bogus'" --bogus=1
case_ positional-argument 2 "unexpected argument 'foo'" foo
case_ malformed-integer 2 "--particles: 'abc' is not an integer" --particles=abc
case_ malformed-real 2 "--step: '0.1x' is not a number" --step=0.1x
case_ zero-samples 2 "--samples: must be >= 1" --samples=0
case_ zero-step 2 "--step: must be > 0" --step=0
case_ negative-step 2 "--step: must be > 0" --step=-1
case_ unknown-flow 2 "--flow: 'fast' is not one of" --flow=fast
case_ missing-value 2 "--samples: missing value" --samples
case_ missing-config 3 "cannot open config file" --config="$data/nope.cfg"
case_ malformed-config 2 "bad.cfg:2: expected 'name = value'" --config="$data/bad.cfg"
case_ unknown-target 2 "unknown target 'nope'" --target=nope
case_ wrong-dimension 2 "has dimension 2, but --dim=3" --target=gmm4 --dim=3
case_ missing-mixture-file 3 "nope.csv" --target=gmm:"$data/nope.csv"
case_ malformed-mixture-field 3 "bad_field.csv" --target=gmm:"$data/bad_field.csv"
case_ mixture-not-pd 3 "not positive definite" --target=gmm:"$data/not_pd.csv"
case_ mixture-bad-columns 3 "8 columns is not 1 + d + d*d" --target=gmm:"$data/bad_cols.csv"
case_ mixture-wrong-dim 2 "has dimension 2, but --dim=3" --target=gmm:"$data/good2d.csv" --dim=3
case_ funnel-dim-too-small 2 "needs --dim >= 2" --target=funnel --dim=1
case_ unwritable-out 5 "regular_file" --out="$data/regular_file/sub"

# More ranks than particles: every rank needs one.  (At 1 rank this is valid, so only 3.)
err=$GFV_TMP/ranks.err
out=$(tmpdir)/out
code=0
gfv_mpirun 3 --particles=2 --out="$out" >/dev/null 2>"$err" || code=$?
if ((code == 2)) && grep -qF "smaller than the number of ranks (3)" "$err" &&
  [[ $(grep -c '^gflowvi: error:' "$err") == 1 ]] && [[ ! -e $out || -z $(ls -A "$out") ]]; then
  pass particles-fewer-than-ranks
else
  fail particles-fewer-than-ranks "status $code: $(_gfv_head "$err")"
fi

# A good config file is read, and the command line wins over it.
out=$(tmpdir)
gfv_mpirun 2 --config="$data/good.cfg" --samples=5 --iters=2 --out="$out" --quiet >/dev/null 2>&1 || true
if [[ $(json_get "$out/summary.json" particles) == 4 && $(json_get "$out/summary.json" samples) == 5 ]]; then
  pass config-file-and-override
else
  fail config-file-and-override "particles/samples not 4/5 in summary.json"
fi

# --help exits 0 and names every option of the contract.
help=$("$GFV_BIN" --help)
missing=""
for opt in target dim flow estimator particles samples step weight-step iters tol seed init-scale \
  init-var out out-samples eval-samples progress-every config; do
  grep -q -- "--$opt=" <<<"$help" || missing="$missing $opt"
done
[[ -z $missing ]] && pass help-lists-options || fail help-lists-options "missing:$missing"
finish
