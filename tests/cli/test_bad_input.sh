#!/usr/bin/env bash
# test_bad_input.sh - the catalogue of bad inputs (docs/developer.md, "Reliability"): one table row
# per way a user can get the input wrong (options, config file, targets, mixture file,
# output directory, checkpoint, rank count), each with the exit status and the fragment
# of the message it must produce.  Every row runs at 1 rank (directly, as an MPI
# singleton, as users do too) and at 3 ranks (mpirun), unless its ranks column says
# otherwise, and must give:
#   - the documented exit status (on every rank: mpirun passes it on),
#   - the fragment on stderr, in exactly one "gflowvi: error:" line,
#   - no output file at all (the --out directory absent or empty).
# A hang (a rank left behind in a collective) fails its row after 300 s.  Rows run
# GFV_CATALOGUE_JOBS at a time (default 4): most of a failed mpirun's time is its pause.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# ---- fixtures ----------------------------------------------------------------------
data=$(tmpdir)
printf 'particles = 4\nthis line is wrong\n' >"$data/bad.cfg"
printf 'bogus = 1\n' >"$data/unknown.cfg"
printf 'step = -1\n' >"$data/badval.cfg"
printf 'out = "abc\n' >"$data/quote.cfg"
printf 'config = other.cfg\n' >"$data/nested.cfg"
printf ' = 3\n' >"$data/noname.cfg"
printf 'particles = 4\nsamples = 3\n' >"$data/good.cfg"
printf '\xef\xbb\xbfparticles = 4\nbogus = 1\n' >"$data/bom.cfg"
hdr='weight,mu_1,mu_2,cov_1_1,cov_1_2,cov_2_1,cov_2_2'
printf '%s\n1,0,0,1,0,0,abc\n' "$hdr" >"$data/bad_field.csv"
printf '%s\n1,0,0,1,2,2,1\n' "$hdr" >"$data/not_pd.csv"
printf '1,2,3,4,5,6,7,8\n' >"$data/bad_cols.csv"
printf '0.5,1,0,1,0,0,1\n0.5,-1,0,1,0.2,0.2,1\n' >"$data/good2d.csv"
printf 'x,y\n1,0.5\n2,1.5\n3,0.1\n4,2\n' >"$data/reg.csv"  # 4 rows: 4 x 2^62 units wrapped to 0
printf '%s\n0,0,0,1,0,0,1\n' "$hdr" >"$data/zero_weight.csv"
printf '%s\n1,0,0,1,0.5,0.4,1\n' "$hdr" >"$data/not_symmetric.csv"
printf '%s\n' "$hdr" >"$data/header_only.csv"
printf '%s\n1,0,0,1,0,0,1\n1,0,0,1,0,0\n' "$hdr" >"$data/ragged.csv"
printf '1,inf,0,1,0,0,1\n' >"$data/infinite.csv"
printf 'weight,mu,cov\n1,0,0,1,0,0,1\n' >"$data/header_mismatch.csv"
: >"$data/empty.csv"
printf '1,0,1\n1,3,7.1e-309\n' >"$data/tiny_variance.csv"
printf '1,0,1\n\0\0\0\n1,2,3\n' >"$data/nul_byte.csv"
printf 'particles = 4\0 garbage\n' >"$data/nul_byte.cfg"
touch "$data/regular_file"
long=$(printf 'x%.0s' {1..5000})

# ---- the catalogue -----------------------------------------------------------------
# name | status | ranks | message fragment (plain text) | arguments (bash words; $data
# is the fixtures directory, $long a 5000-character word).  Every run also gets
# --iters=3 and its own --out first, which a row's arguments override.
catalogue=$(
  cat <<'EOF'
# command-line options (status 2)
unknown-option          | 2 | 1,3 | unknown option '--bogus'                       | --bogus=1
single-dash-option      | 2 | 1,3 | unknown option '-x'                            | -x
positional-argument     | 2 | 1,3 | unexpected argument 'foo'                      | foo
malformed-integer       | 2 | 1,3 | --particles: 'abc' is not an integer           | --particles=abc
integer-trailing-text   | 2 | 1,3 | --iters: '10x' is not an integer               | --iters=10x
integer-leading-blank   | 2 | 1,3 | --samples: ' 5' is not an integer              | "--samples= 5"
integer-out-of-range    | 2 | 1,3 | --seed: '99999999999999999999' is out of range | --seed=99999999999999999999
malformed-real          | 2 | 1,3 | --step: '0.1x' is not a number                 | --step=0.1x
empty-real              | 2 | 1,3 | --step: '' is not a number                     | --step=
real-overflow           | 2 | 1,3 | --step: '1e999' is not a finite number         | --step=1e999
real-nan                | 2 | 1,3 | --init-var: 'nan' is not a finite number       | --init-var=nan
zero-samples            | 2 | 1,3 | --samples: must be >= 1                        | --samples=0
zero-particles          | 2 | 1,3 | --particles: must be >= 1                      | --particles=0
zero-step               | 2 | 1,3 | --step: must be > 0                            | --step=0
negative-step           | 2 | 1,3 | --step: must be > 0                            | --step=-1
negative-dim            | 2 | 1,3 | --dim: must be >= 0                            | --dim=-1
negative-weight-step    | 2 | 1,3 | --weight-step: must be >= 0                    | --weight-step=-0.1
zero-init-var           | 2 | 1,3 | --init-var: must be > 0                        | --init-var=0
zero-eval-samples       | 2 | 1,3 | --eval-samples: must be >= 1                   | --eval-samples=0
max-retries-too-large   | 2 | 1,3 | --max-retries: must be between 0 and 60        | --max-retries=61
conv-window-too-large   | 2 | 1,3 | --conv-window: must be between 10 and 1e+07    | --conv-window=9223372036854775807
init-starts-too-many    | 2 | 1,3 | --init-starts: must be between 1 and 1e+06     | --init=mode --init-starts=1229782938247303442
unknown-flow            | 2 | 1,3 | --flow: 'fast' is not one of                   | --flow=fast
unknown-estimator       | 2 | 1,3 | --estimator: 'exact' is not one of             | --estimator=exact
unknown-update          | 2 | 1,3 | --update: 'euler' is not one of                | --update=euler
unknown-family          | 2 | 1,3 | --family: 'block' is not one of                | --family=block
lowrank-zero            | 2 | 1,3 | --family: 'lowrank:0' is not one of            | --family=lowrank:0
lowrank-not-a-number    | 2 | 1,3 | --family: 'lowrank:x' is not one of            | --family=lowrank:x
lowrank-rank-ge-dim     | 2 | 1,3 | --family=lowrank:3: the rank must be below the dimension 3 | --family=lowrank:3 --target=gauss --dim=3
lowrank-gflow           | 2 | 1   | --family=lowrank:1 takes --flow=ngflow only    | --family=lowrank:1 --target=gauss --dim=3 --flow=gflow
lowrank-hessian         | 2 | 1   | --family=lowrank:1 takes --estimator=stein only | --family=lowrank:1 --target=gauss --dim=3 --estimator=hessian
lowrank-params          | 2 | 1   | --family=lowrank:1 runs the samples layout only | --family=lowrank:1 --target=gauss --dim=3 --layout=params
bad-boolean             | 2 | 1,3 | --quiet: 'maybe' is not a boolean              | --quiet=maybe
missing-value           | 2 | 1,3 | --samples: missing value                       | --samples
value-is-next-option    | 2 | 1,3 | --out: missing value                           | --out --step=1
empty-target            | 2 | 1,3 | --target: must not be empty                    | --target=
empty-out               | 2 | 1,3 | --out: must not be empty                       | --out=
value-too-long          | 2 | 1,3 | --target: value too long (5000 characters      | --target=$long
work-too-large          | 2 | 1,3 | --particles x --samples = 4611686018427387904 x 4 is too large | --particles=4611686018427387904 --samples=4
# a start so wide that the ELBO's error overflows (4), not the convergence test's message
init-var-overflow       | 4 | 1,3 | the ELBO of the initial particles overflows    | --init-var=1e300
init-scale-overflow     | 4 | 1,3 | the ELBO of the initial particles overflows    | --init-scale=1e150
# config file (missing or unreadable: 3; bad content: 2, as on the command line)
missing-config          | 3 | 1,3 | cannot open config file                        | --config=$data/nope.cfg
config-is-directory     | 3 | 1,3 | cannot read config file                        | --config=$data
malformed-config        | 2 | 1,3 | bad.cfg:2: expected 'name = value'             | --config=$data/bad.cfg
config-unknown-option   | 2 | 1,3 | unknown.cfg:1: unknown option 'bogus'          | --config=$data/unknown.cfg
config-bad-value        | 2 | 1,3 | badval.cfg:1: step: must be > 0                | --config=$data/badval.cfg
config-unterminated     | 2 | 1,3 | quote.cfg:1: out: unterminated quote           | --config=$data/quote.cfg
config-bom-then-error   | 2 | 1,3 | bom.cfg:2: unknown option 'bogus'              | --config=$data/bom.cfg
config-sets-config      | 2 | 1,3 | 'config' cannot be set inside a config file    | --config=$data/nested.cfg
config-empty-name       | 2 | 1,3 | noname.cfg:1: expected 'name = value'          | --config=$data/noname.cfg
config-nul-byte         | 3 | 1,3 | nul_byte.cfg:1: contains a NUL byte            | --config=$data/nul_byte.cfg
# targets (2)
unknown-target          | 2 | 1,3 | unknown target 'nope'                          | --target=nope
wrong-dimension         | 2 | 1,3 | has dimension 2, but --dim=3                   | --target=gmm4 --dim=3
gmm-without-file        | 2 | 1,3 | target gmm:FILE needs a file name              | --target=gmm:
funnel-dim-too-small    | 2 | 1,3 | needs --dim >= 2                               | --target=funnel --dim=1
gauss-dim-too-large     | 7 | 1,3 | --dim=10000000: target gauss keeps two d x d matrices | --target=gauss --dim=10000000
bnn-hidden-too-large    | 2 | 1,3 | --hidden=4611686018427387904: a network on 1 inputs | --target=bnn --data=$data/reg.csv --hidden=4611686018427387904
# mixture file of --target=gmm:FILE (3; a dimension clash with --dim is usage, 2)
missing-mixture-file    | 3 | 1,3 | nope.csv': No such file or directory           | --target=gmm:$data/nope.csv
mixture-is-directory    | 3 | 1,3 | Is a directory                                 | --target=gmm:$data
mixture-empty-file      | 3 | 1,3 | empty.csv: no data rows                        | --target=gmm:$data/empty.csv
mixture-header-only     | 3 | 1,3 | header_only.csv: no data rows                  | --target=gmm:$data/header_only.csv
mixture-bad-field       | 3 | 1,3 | bad_field.csv:2: field 7 'abc' is not a number | --target=gmm:$data/bad_field.csv
mixture-infinite        | 3 | 1,3 | field 2 'inf' is not a finite number           | --target=gmm:$data/infinite.csv
mixture-ragged          | 3 | 1,3 | ragged.csv:3: expected 7 columns, found 6      | --target=gmm:$data/ragged.csv
mixture-header-mismatch | 3 | 1,3 | the header has 3 columns, this row 7           | --target=gmm:$data/header_mismatch.csv
mixture-bad-columns     | 3 | 1,3 | 8 columns is not 1 + d + d*d                   | --target=gmm:$data/bad_cols.csv
mixture-zero-weight     | 3 | 1,3 | weight 0 is not positive                       | --target=gmm:$data/zero_weight.csv
mixture-not-symmetric   | 3 | 1,3 | covariance is not symmetric                    | --target=gmm:$data/not_symmetric.csv
mixture-not-pd          | 3 | 1,3 | not positive definite                          | --target=gmm:$data/not_pd.csv
mixture-tiny-variance   | 3 | 1,3 | component 2 (data row 2): covariance too small | --target=gmm:$data/tiny_variance.csv
mixture-nul-byte        | 3 | 1,3 | nul_byte.csv:2: contains a NUL byte            | --target=gmm:$data/nul_byte.csv
mixture-wrong-dim       | 2 | 1,3 | has dimension 2, but --dim=3                   | --target=gmm:$data/good2d.csv --dim=3
# output directory (5)
unwritable-out          | 5 | 1,3 | regular_file' exists and is not a directory    | --out=$data/regular_file/sub
out-is-a-file           | 5 | 1,3 | exists and is not a directory                  | --out=$data/regular_file
checkpoint-is-a-dir     | 5 | 1,3 | is a directory; give a file name               | --checkpoint=$data
checkpoint-slash        | 5 | 1,3 | newdir/ names a directory; give a file name    | --checkpoint=$data/newdir/ --checkpoint-every=1
# checkpoint to restart from (3)
restart-missing         | 3 | 1,3 | cannot open checkpoint                         | --restart=$data/none.h5
restart-not-hdf5        | 3 | 1,3 | is not a readable HDF5 file                    | --restart=$data/good2d.csv
# rank counts: every rank needs a particle (at 1 rank these are valid)
particles-below-ranks   | 2 | 3   | smaller than the number of ranks (3)           | --particles=2
one-particle-3-ranks    | 2 | 3   | smaller than the number of ranks (3)           | --particles=1
# TODO(data models, issue 6 hook): --data missing / not numeric / label column out of
#   range / --test-data with other columns, once src/targets/data.c has landed.
# TODO(plugins, issue 6 hook): plugin:FILE that is missing, not a shared object, of another
#   ABI version, missing a required symbol, or crashing on load.
# TODO(checkpoints, issue 6 hook): truncated and corrupted checkpoints are in
#   tests/mpi/test_checkpoint.sh; a kill during a checkpoint write belongs to the faults test.
EOF
)

# ---- the runner --------------------------------------------------------------------
trim() {
  local s=$1
  s=${s#"${s%%[![:space:]]*}"}
  echo "${s%"${s##*[![:space:]]}"}"
}

# run_case ID NAME NP STATUS FRAGMENT ARGS... - one row at one rank count; writes one
# PASS/FAIL line to $results/ID.
results=$GFV_TMP/results
mkdir -p "$results"
run_case() {
  local id=$1 name=$2 np=$3 status=$4 frag=$5
  shift 5
  local out err code=0 lines label=$name-np$np
  out=$(tmpdir)/out
  err=$GFV_TMP/$label.err
  # Each run gets its own limit (a row takes about a second; 300 s is far beyond any load),
  # so a hang is reported under its row's name instead of as the whole script's timeout.
  if ((np == 1)); then
    timeout -k 10 300 "$GFV_BIN" --iters=3 --out="$out" "$@" >/dev/null 2>"$err" </dev/null || code=$?
  else
    timeout -k 10 300 "$GFV_ROOT/tools/mpirun.sh" "$np" "$GFV_BIN" --iters=3 --out="$out" "$@" \
      >/dev/null 2>"$err" </dev/null || code=$?
  fi
  lines=$(grep -c '^gflowvi: error:' "$err" || true)
  {
    if ((code == 124 || code == 137)); then
      echo "FAIL $label: hung: no exit within 300 s: $(_gfv_head "$err")"
    elif ((code != status)); then
      echo "FAIL $label: exit status $code, expected $status: $(_gfv_head "$err")"
    elif ! grep '^gflowvi: error:' "$err" | grep -qF -- "$frag"; then
      echo "FAIL $label: no error line with '$frag': $(_gfv_head "$err")"
    elif ((lines != 1)); then
      echo "FAIL $label: $lines error lines, expected exactly one"
    elif [[ -e $out && -n $(ls -A "$out") ]]; then
      echo "FAIL $label: output left behind: $(ls -A "$out" | tr '\n' ' ')"
    else
      echo "PASS $label"
    fi
  } >"$results/$id"
}

jobs_max=${GFV_CATALOGUE_JOBS:-4}
# Rows whose point is an allocation too large to exist: AddressSanitizer reports it and stops
# (allocation-size-too-big) where glibc returns NULL, so only the plain build can test the
# program's own message.
asan_skip=" gauss-dim-too-large "
asan=0
gfv_asan_build && asan=1
ncases=0
nrows=0
declare -A seen=()
while IFS= read -r row; do
  [[ -z $(trim "$row") || $(trim "$row") == \#* ]] && continue
  IFS='|' read -r name status ranks frag args <<<"$row"
  name=$(trim "$name") status=$(trim "$status") ranks=$(trim "$ranks")
  frag=$(trim "$frag") args=$(trim "$args")
  if [[ -n ${seen[$name]:-} ]]; then
    fail "catalogue-$name" "duplicate row name"
    continue
  fi
  seen[$name]=1
  if ((asan)) && [[ $asan_skip == *" $name "* ]]; then
    echo "SKIP $name: an allocation too large to exist, which AddressSanitizer stops at"
    continue
  fi
  nrows=$((nrows + 1))
  # The arguments are bash words: quotes group, $data and $long expand.
  eval "argv=($args)"
  for np in ${ranks//,/ }; do
    while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n || true; done
    ncases=$((ncases + 1))
    run_case "$(printf '%04d' "$ncases")" "$name" "$np" "$status" "$frag" "${argv[@]}" &
  done
done <<<"$catalogue"
wait

for f in "$results"/*; do
  line=$(cat "$f")
  case $line in
    PASS\ *) pass "${line#PASS }" ;;
    FAIL\ *) rest=${line#FAIL } && fail "${rest%%: *}" "${rest#*: }" ;;
    *) fail "catalogue-$(basename "$f")" "no result" ;;
  esac
done
((ncases == $(ls "$results" | wc -l))) || fail catalogue "$ncases runs started, fewer results"
echo "# catalogue: $nrows bad inputs, $ncases runs"
((nrows >= 40)) && pass "catalogue-has-40-rows ($nrows)" || fail catalogue-has-40-rows "only $nrows"

# ---- good input, for contrast ------------------------------------------------------
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
