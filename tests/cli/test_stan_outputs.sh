#!/usr/bin/env bash
# test_stan_outputs.sh - what a Stan fit writes, through the same draws.csv / posterior.nc
# code as every other target (src/solver/draws.c, posterior_nc.c; the model's names and
# constraining transform come from the plugin hooks of src/bindings/stan/gfv_stan_plugin.cpp),
# and --check-target on a Stan model.  Model: tests/stan/eight_schools_gq.stan (posteriordb's
# non-centred eight schools with generated quantities), fitted at 1 and 2 ranks:
#  - draws.csv: Stan's names in Stan's order (parameters, transformed parameters, generated
#    quantities; matrices column-major), then lp__ and lq__;
#  - values against closed forms: tau = exp(z_10) (samples.csv), theta = theta_trans tau + mu,
#    M[i, j] = 10 i + j, y_rep - theta ~ N(0, sigma^2); lp__ equals the eight-schools log
#    density with the log-Jacobian log tau, written out here (Stan keeps every constant;
#    its Cauchy on tau > 0 is the untruncated density), to 1e-9;
#  - posterior.nc, opened with xarray: one variable per Stan name with dims (chain, draw,
#    NAME_dim_k), M back in its 2 x 3 shape, the kind of each variable, lp and lq equal to
#    draws.csv's;
#  - 1 and 2 ranks give the same draws (y_rep included: its seed is the draw's index);
#  - --check-target passes on the model at 1 and 2 ranks and names the coordinates by
#    Stan's unconstrained parameter names; with --estimator=hessian the difference Hessian
#    is checked too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$GFV_ROOT/tests/stan/lib_stan.sh"
stan_setup

work=$(tmpdir)
model=$GFV_ROOT/tests/stan/eight_schools_gq.stan
unzip_json "$PDB/eight_schools-eight_schools_noncentered/data.json.zip" "$work/es.json"
args=(--target=stan:"$model" --data="$work/es.json" --particles=6 --iters=300
      --out-samples=4000 --quiet)

if gfv_mpirun 1 "${args[@]}" --out="$work/o1" >"$work/o1.log" 2>&1 &&
  gfv_mpirun 2 "${args[@]}" --out="$work/o2" >"$work/o2.log" 2>&1; then
  pass stan-fits-1-and-2-ranks
  py_check stan-draws-named-and-exact "$work/o1" "$work/es.json" <<'EOF'
import json, math, sys
import numpy as np
import pandas as pd
d = sys.argv[1]
data = json.load(open(sys.argv[2]))
y, sigma = np.array(data["y"], float), np.array(data["sigma"], float)
J = 8
df = pd.read_csv(f"{d}/draws.csv", float_precision="round_trip")
M_names = [f"M[{i},{j}]" for j in (1, 2, 3) for i in (1, 2)]  # Stan's order: column-major
names = [f"theta_trans[{j}]" for j in range(1, J + 1)] + ["mu", "tau"] \
    + [f"theta[{j}]" for j in range(1, J + 1)] + [f"y_rep[{j}]" for j in range(1, J + 1)] \
    + M_names + ["lp__", "lq__"]
assert list(df.columns) == names, list(df.columns)
assert len(df) == 4000, len(df)
Z = np.loadtxt(f"{d}/samples.csv", delimiter=",", skiprows=1)
eta = df[[f"theta_trans[{j}]" for j in range(1, J + 1)]].values
mu, tau = df["mu"].values, df["tau"].values
assert np.array_equal(eta, Z[:, :J]) and np.array_equal(mu, Z[:, J]), "parameters != samples.csv"
assert np.allclose(tau, np.exp(Z[:, J + 1]), rtol=1e-14), "tau != exp(z_10)"
theta = df[[f"theta[{j}]" for j in range(1, J + 1)]].values
assert np.allclose(theta, eta * tau[:, None] + mu[:, None], rtol=1e-13, atol=1e-13), "theta"
for i in (1, 2):
    for j in (1, 2, 3):
        assert (df[f"M[{i},{j}]"] == 10 * i + j).all(), f"M[{i},{j}]"
e = (df[[f"y_rep[{j}]" for j in range(1, J + 1)]].values - theta) / sigma
assert np.abs(e.mean(0)).max() < 0.08 and np.abs(e.std(0) - 1).max() < 0.06, (e.mean(0), e.std(0))
# the log density on the unconstrained scale, every constant kept, + log-Jacobian log tau
def npdf(x, m, s):
    return -0.5 * ((x - m) / s) ** 2 - np.log(s) - 0.5 * math.log(2 * math.pi)
lp = npdf(eta, 0, 1).sum(1) + npdf(y, theta, sigma).sum(1) + npdf(mu, 0, 5) \
    - np.log(math.pi * 5 * (1 + (tau / 5) ** 2)) + np.log(tau)
err = np.abs(df["lp__"].values - lp).max()
assert err < 1e-9 * np.abs(lp).max(), f"lp__ differs from the closed form by {err}"
print(f"# lp__ against the closed form: max difference {err:.2e}")
EOF
  py_check stan-posterior-nc-xarray "$work/o1" <<'EOF'
import sys
import numpy as np
import pandas as pd
import xarray as xr
d = sys.argv[1]
df = pd.read_csv(f"{d}/draws.csv", float_precision="round_trip")
post = xr.open_dataset(f"{d}/posterior.nc", group="posterior")
st = xr.open_dataset(f"{d}/posterior.nc", group="sample_stats")
assert list(post.data_vars) == ["theta_trans", "mu", "tau", "theta", "y_rep", "M"], list(post.data_vars)
assert post["theta"].dims == ("chain", "draw", "theta_dim_0") and post["theta"].shape == (1, 4000, 8)
assert post["mu"].dims == ("chain", "draw")
assert post["M"].dims == ("chain", "draw", "M_dim_0", "M_dim_1") and post["M"].shape == (1, 4000, 2, 3)
M = post["M"].values[0]
assert all((M[:, i, j] == 10 * (i + 1) + (j + 1)).all() for i in range(2) for j in range(3)), M[0]
assert np.array_equal(post["theta"].values[0], df[[f"theta[{j}]" for j in range(1, 9)]].values)
assert np.array_equal(post["tau"].values[0], df["tau"].values)
assert np.array_equal(st["lp"].values[0], df["lp__"].values)
assert np.array_equal(st["lq"].values[0], df["lq__"].values)
kinds = [post[v].attrs["kind"] for v in ("theta_trans", "mu", "tau", "theta", "y_rep", "M")]
assert kinds == ["parameter"] * 3 + ["transformed parameter"] + ["generated quantity"] * 2, kinds
assert post.attrs["inference_library"] == "gflowvi" and post.attrs["target"].startswith("stan:")
EOF
  py_check stan-same-draws-1-and-2-ranks "$work/o1" "$work/o2" <<'EOF'
import sys
import numpy as np
import pandas as pd
a, b = (pd.read_csv(f"{d}/draws.csv", float_precision="round_trip") for d in sys.argv[1:3])
assert list(a.columns) == list(b.columns)
err = np.abs(a.values - b.values).max()
assert np.allclose(a.values, b.values, rtol=1e-8, atol=1e-8), f"max difference {err}"
print(f"# draws.csv at 1 and 2 ranks: max difference {err:.2e}")
EOF
else
  fail stan-fits-1-and-2-ranks "$(_gfv_head "$work/o1.log") $(_gfv_head "$work/o2.log" 2>/dev/null || true)"
fi

# ---- --check-target --------------------------------------------------------------------
for np in 1 2; do
  for est in auto hessian; do
    name=stan-check-target-$est-np$np
    log=$work/$name.log status=0
    gfv_mpirun "$np" --check-target --target=stan:"$model" --data="$work/es.json" \
      --estimator=$est --out="$work/ct" >"$log" 2>&1 </dev/null || status=$?
    want_hess=0 has_hess=0
    [[ $est == hessian ]] && want_hess=1
    grep -q 'Hessian column' "$log" && has_hess=1
    if ((status != 0)); then
      fail "$name" "exit status $status: $(_gfv_head "$log")"
    elif ! grep -q '^verdict: the gradient' "$log" || grep -q WRONG "$log"; then
      fail "$name" "no passing verdict: $(_gfv_head "$log")"
    elif ! grep -q '^z\[10\] (tau) ' "$log" || ! grep -q '^z\[1\] (theta_trans\[1\]) ' "$log"; then
      fail "$name" "coordinates not named by Stan: $(grep '^z\[' "$log" | head -2 | tr '\n' ' ')"
    elif ((has_hess != want_hess)); then
      fail "$name" "Hessian checked: expected $want_hess: $(_gfv_head "$log")"
    elif [[ -e $work/ct ]]; then
      fail "$name" "--check-target created --out"
    else
      grep '^verdict' "$log" | sed 's/^/# /'
      pass "$name"
    fi
  done
done
finish
