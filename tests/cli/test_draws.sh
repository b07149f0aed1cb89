#!/usr/bin/env bash
# test_draws.sh - the draws as the user reads them: draws.csv, posterior.nc (through
# Debian's python3-xarray + python3-netcdf4, as ArviZ opens it) and draws_psis.csv.
#  - built-in names z[1]..z[d]; samples.csv holds the same draws; lp__ is the target's log
#    density and lq__ the mixture's (recomputed here from mixture.csv), to 1e-9;
#  - a bounded support (the ring plugin cut below z_2 = 0.5): no draw outside it; with
#    --out-samples=1000 the rows are the first 1000 of the 3000 (each candidate draw is
#    computed from its index alone, rejected ones included);
#  - posterior.nc: groups, dims, coordinates, attributes, and the values of draws.csv;
#  - a plugin's named outputs through the optional hooks (eight schools, non-centred):
#    theta[j] = mu + tau eta_j, tau = exp(z_2), y_rep[j] - theta_j ~ N(0, sigma_j^2);
#    theta in posterior.nc with dims (chain, draw, theta_dim_0); the same draws and the
#    same draws_psis.csv at 1 and 3 ranks (to rounding); with --out-samples=1000 the first
#    1000 rows, y_rep included (its seed comes from the draw's index);
#  - --resample=psis: every row of draws_psis.csv is a row of draws.csv, and on a fit
#    stopped early the resampled mean is much closer to the target's mean than the fit's.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

plugins=$GFV_BUILD/plugins

# ---- the ring with a cut: built-in names, lp__, lq__, the support, posterior.nc --------
o=$(tmpdir)
if gfv_mpirun 2 --target=plugin:"$plugins/ring.so" --plugin-arg=cut=0.5 --particles=6 --iters=150 \
  --out-samples=3000 --resample=psis --quiet --out="$o" >"$o.log" 2>&1; then
  py_check ring-draws-lp-lq-support-netcdf "$o" <<'EOF'
import json, math, sys
import numpy as np
import xarray as xr
d = sys.argv[1]
head = open(f"{d}/draws.csv").readline().strip()
assert head == "z[1],z[2],lp__,lq__", head
D = np.loadtxt(f"{d}/draws.csv", delimiter=",", skiprows=1)
Z = np.loadtxt(f"{d}/samples.csv", delimiter=",", skiprows=1)
assert D.shape == (3000, 4) and np.array_equal(D[:, :2], Z), "samples.csv != draws.csv's z"
assert (D[:, 1] >= 0.5).all(), f"a draw outside the support: min z_2 {D[:, 1].min()}"
# the ring's log density (tools/plugins/ring.c, radius 2, width 0.25)
R, w = 2.0, 0.25
a = R / w
logC = math.log(2 * math.pi * w) + math.log(w * math.exp(-a * a / 2) + R * math.sqrt(2 * math.pi) * 0.5 * math.erfc(-a / math.sqrt(2)))
lp = -(np.hypot(D[:, 0], D[:, 1]) - R) ** 2 / (2 * w * w) - logC
assert np.allclose(D[:, 2], lp, rtol=1e-9, atol=1e-9), "lp__"
# the mixture's log density from mixture.csv
M = np.loadtxt(f"{d}/mixture.csv", delimiter=",", skiprows=1, ndmin=2)
comp = []
for row in M:
    wt, mu, C = row[0], row[1:3], row[3:7].reshape(2, 2)
    r = D[:, :2] - mu
    q = np.einsum("ni,ij,nj->n", r, np.linalg.inv(C), r)
    comp.append(math.log(wt) - 0.5 * q - math.log(2 * math.pi) - 0.5 * math.log(np.linalg.det(C)))
lq = np.logaddexp.reduce(np.array(comp), axis=0)
assert np.allclose(D[:, 3], lq, rtol=1e-9, atol=1e-9), f"lq__: {np.abs(D[:, 3] - lq).max()}"
# posterior.nc
post = xr.open_dataset(f"{d}/posterior.nc", group="posterior")
st = xr.open_dataset(f"{d}/posterior.nc", group="sample_stats")
assert list(post.data_vars) == ["z"] and post["z"].dims == ("chain", "draw", "z_dim_0"), post
assert post["z"].shape == (1, 3000, 2) and np.array_equal(post["z"].values[0], D[:, :2])
assert set(st.data_vars) == {"lp", "lq"} and st["lp"].dims == ("chain", "draw")
assert np.array_equal(st["lp"].values[0], D[:, 2]) and np.array_equal(st["lq"].values[0], D[:, 3])
assert list(post["draw"].values[:3]) == [0, 1, 2] and list(post["chain"].values) == [0]
import netCDF4
with netCDF4.Dataset(f"{d}/posterior.nc") as nc:
    assert sorted(nc.groups) == ["posterior", "sample_stats"], list(nc.groups)
    assert nc.data_model == "NETCDF4" and nc.inference_library == "gflowvi"
s = json.load(open(f"{d}/summary.json"))
for ds in (post, st):
    assert ds.attrs["inference_library"] == "gflowvi", ds.attrs
    assert ds.attrs["inference_library_version"] == s["version"] and ds.attrs["created_at"]
    assert ds.attrs["target"] == s["target"]
assert s["draws"] == {"rows": 3000, "outputs": 2, "outputs_not_computed": 0}, s["draws"]
# draws_psis.csv: rows of draws.csv, drawn with replacement
P = np.loadtxt(f"{d}/draws_psis.csv", delimiter=",", skiprows=1)
rows = {tuple(r) for r in D}
assert P.shape == D.shape and all(tuple(r) in rows for r in P), "a resampled row not in draws.csv"
r = s["resample"]
assert r["method"] == "psis" and r["distinct_rows"] == len({tuple(x) for x in P}) < 3000, r
EOF
else
  fail ring-draws-lp-lq-support-netcdf "exit status $?: $(_gfv_head "$o.log")"
fi
p=$(tmpdir)
if gfv_mpirun 2 --target=plugin:"$plugins/ring.so" --plugin-arg=cut=0.5 --particles=6 --iters=150 \
  --out-samples=1000 --quiet --out="$p" >"$p.log" 2>&1; then
  py_check ring-draws-prefix "$o" "$p" <<'EOF'
import sys
a, b = (open(f"{d}/draws.csv").read().splitlines() for d in sys.argv[1:3])
assert len(b) == 1001 and b == a[:1001], "--out-samples=1000 is not the first 1000 rows of 3000"
EOF
else
  fail ring-draws-prefix "exit status $?: $(_gfv_head "$p.log")"
fi

# ---- a plugin's named outputs, at 1 and 3 ranks -----------------------------------------
args=(--target=plugin:"$plugins/eight_schools.so" --plugin-arg=noncentered --particles=6
  --iters=300 --quiet)
o1=$(tmpdir)
o3=$(tmpdir)
p1=$(tmpdir)
if gfv_mpirun 1 "${args[@]}" --out-samples=4000 --resample=psis --out="$o1" >"$o1.log" 2>&1 &&
  gfv_mpirun 3 "${args[@]}" --out-samples=4000 --resample=psis --out="$o3" >"$o3.log" 2>&1 &&
  gfv_mpirun 1 "${args[@]}" --out-samples=1000 --out="$p1" >"$p1.log" 2>&1; then
  py_check plugin-named-outputs-1-and-3-ranks "$o1" "$o3" "$p1" <<'EOF'
import sys
import numpy as np
import pandas as pd
import xarray as xr
d1, d3 = sys.argv[1:3]
df = pd.read_csv(f"{d1}/draws.csv", float_precision="round_trip")
names = ["mu", "tau"] + [f"eta[{j}]" for j in range(1, 9)] + [f"theta[{j}]" for j in range(1, 9)] \
    + [f"y_rep[{j}]" for j in range(1, 9)] + ["lp__", "lq__"]
assert list(df.columns) == names, list(df.columns)
Z = np.loadtxt(f"{d1}/samples.csv", delimiter=",", skiprows=1)
assert np.array_equal(df["mu"], Z[:, 0]) and np.allclose(df["tau"], np.exp(Z[:, 1]), rtol=1e-13)
eta = df[[f"eta[{j}]" for j in range(1, 9)]].values
theta = df[[f"theta[{j}]" for j in range(1, 9)]].values
yrep = df[[f"y_rep[{j}]" for j in range(1, 9)]].values
assert np.allclose(theta, df["mu"].values[:, None] + df["tau"].values[:, None] * eta, rtol=1e-12, atol=1e-12)
sigma = np.array([15, 10, 16, 11, 9, 11, 10, 18.0])
e = (yrep - theta) / sigma  # N(0, 1) if y_rep is drawn right: 4000 draws per school
assert np.abs(e.mean(axis=0)).max() < 0.08 and np.abs(e.std(axis=0) - 1).max() < 0.06, (e.mean(0), e.std(0))
assert abs(np.corrcoef(e[:, 0], e[:, 1])[0, 1]) < 0.08
post = xr.open_dataset(f"{d1}/posterior.nc", group="posterior")
assert list(post.data_vars) == ["mu", "tau", "eta", "theta", "y_rep"], list(post.data_vars)
assert post["theta"].dims == ("chain", "draw", "theta_dim_0") and post["theta"].shape == (1, 4000, 8)
assert list(post["theta_dim_0"].values) == list(range(8))
assert np.array_equal(post["theta"].values[0], theta) and np.array_equal(post["tau"].values[0], df["tau"].values)
kinds = [post[v].attrs["kind"] for v in ("mu", "eta", "theta", "y_rep")]
assert kinds == ["parameter", "parameter", "transformed parameter", "generated quantity"], kinds
df3 = pd.read_csv(f"{d3}/draws.csv", float_precision="round_trip")
assert list(df3.columns) == names and np.allclose(df.values, df3.values, rtol=1e-8, atol=1e-8), \
    np.abs(df.values - df3.values).max()
ps1, ps3 = (np.loadtxt(f"{d}/draws_psis.csv", delimiter=",", skiprows=1) for d in (d1, d3))
assert np.allclose(ps1, ps3, rtol=1e-8, atol=1e-8), "draws_psis.csv differs at 3 ranks"
dp = pd.read_csv(f"{sys.argv[3]}/draws.csv", float_precision="round_trip")
assert np.array_equal(dp.values, df.values[:1000]), "--out-samples=1000: not the first 1000 draws"
EOF
else
  fail plugin-named-outputs-1-and-3-ranks "a run failed: $(_gfv_head "$o1.log") $(_gfv_head "$o3.log") $(_gfv_head "$p1.log")"
fi

# ---- PSIS resampling corrects a poor fit towards the target --------------------------------
# gauss in 2-D (mean (0.5, -1)), stopped after 3 iterations from a wide start: the mixture's
# mean is off; the resampled draws' mean must be much closer.
o=$(tmpdir)
if gfv_mpirun 1 --target=gauss --dim=2 --particles=4 --iters=3 --init-scale=1 --init-var=3 \
  --out-samples=20000 --resample=psis --quiet --out="$o" >"$o.log" 2>&1; then
  py_check psis-resampling-moves-towards-target "$o" <<'EOF'
import json, sys
import numpy as np
d = sys.argv[1]
D = np.loadtxt(f"{d}/draws.csv", delimiter=",", skiprows=1)
P = np.loadtxt(f"{d}/draws_psis.csv", delimiter=",", skiprows=1)
m = np.array([0.5, -1.0])
raw, rs = np.abs(D[:, :2].mean(0) - m).max(), np.abs(P[:, :2].mean(0) - m).max()
k = json.load(open(f"{d}/summary.json"))["resample"]["khat"]
assert rs < 0.05 and rs < raw / 3, f"mean error: raw {raw:.3f}, resampled {rs:.3f}, khat {k}"
print(f"# mean error: raw draws {raw:.3f}, PSIS-resampled {rs:.3f} (k-hat {k:.2f})")
EOF
else
  fail psis-resampling-moves-towards-target "exit status $?: $(_gfv_head "$o.log")"
fi

# ---- --out-samples=0: the files are there, with no rows ----------------------------------
o=$(tmpdir)
if gfv_mpirun 1 --target=gmm4 --iters=20 --out-samples=0 --quiet --out="$o" >"$o.log" 2>&1; then
  py_check no-draws "$o" <<'EOF'
import sys
import xarray as xr
d = sys.argv[1]
assert open(f"{d}/draws.csv").read() == "z[1],z[2],lp__,lq__\n"
post = xr.open_dataset(f"{d}/posterior.nc", group="posterior")
assert post["z"].shape == (1, 0, 2), post["z"].shape
EOF
else
  fail no-draws "exit status $?: $(_gfv_head "$o.log")"
fi

finish
