"""check_plugin.py STAN_SO DATA.json CLOSED_FORM_SO - posteriordb's non-centred eight schools,
compiled by tools/stan/gflowvi-stan, against the closed form of tools/plugins/eight_schools.c
(`noncentered`), through the plugin ABI (tests/stan/gfv_plugin.py).  Prints PASS/FAIL lines.

Coordinates: Stan z = (eta_1..eta_8, mu, u), the closed form (mu, u, eta_1..eta_8), u = log tau.
Both densities carry every constant and the log-Jacobian u of tau = exp(u); Stan's
`tau ~ cauchy(0, 5)` on tau > 0 is the untruncated Cauchy density, half the half-Cauchy
of the closed form, so l_stan(z) - l_closed(z) = -log 2 exactly (to rounding)."""

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gfv_plugin import Plugin, PluginError  # noqa: E402

passed = failed = 0


def check(name, ok, why=""):
    global passed, failed
    print(("PASS eight-schools-%s" % name) if ok else ("FAIL eight-schools-%s: %s" % (name, why)))
    if ok:
        passed += 1
    else:
        failed += 1


stan_so, data, closed_so = sys.argv[1:4]
stan = Plugin(stan_so, ["data=" + data])
closed = Plugin(closed_so, ["noncentered", "schools"])
check("dim", stan.d == 10 and closed.d == 10, "dims %d, %d" % (stan.d, closed.d))

rng = np.random.default_rng(11)
zs = rng.normal(size=(25, 10))                # eta, then mu and u below
zs[:, 8] = rng.normal(4, 4, size=25)          # mu
zs[:, 9] = rng.normal(1, 1.5, size=25)        # u = log tau
perm = [8, 9] + list(range(8))                 # Stan order -> closed-form order
zc = zs[:, perm]
ls, gs = stan.logdensity(zs)
lc, gc = closed.logdensity(zc)
diff = ls - lc
check("logdensity", np.all(np.abs(diff + math.log(2)) < 1e-10),
      "l_stan - l_closed - (-log 2): max %.3g" % np.max(np.abs(diff + math.log(2))))
check("gradient", np.max(np.abs(gs[:, perm] - gc)) < 1e-10 * (1 + np.max(np.abs(gc))),
      "max gradient difference %.3g" % np.max(np.abs(gs[:, perm] - gc)))

hs = stan.hessian(zs[:5])
hc = closed.hessian(zc[:5])
hs_p = hs[:, perm][:, :, perm]
rel = np.max(np.abs(hs_p - hc)) / np.max(np.abs(hc))
check("difference-hessian", rel < 1e-6, "relative error %.3g of the central differences" % rel)
check("hessian-symmetric", np.max(np.abs(hs - hs.transpose(0, 2, 1))) == 0.0, "asymmetric")

names = stan.output_names()
want = ["theta_trans[%d]" % j for j in range(1, 9)] + ["mu", "tau"] + ["theta[%d]" % j for j in range(1, 9)]
check("output-names", names == want, repr(names))
check("output-groups", stan.output_groups() == [0] * 10 + [1] * 8, repr(stan.output_groups()))
check("dim-names", stan.dim_names() == want[:10], repr(stan.dim_names()))
out = stan.write_array(zs, seed=5)
tau = np.exp(zs[:, 9])
theta = zs[:, :8] * tau[:, None] + zs[:, 8][:, None]
expect = np.hstack([zs[:, :8], zs[:, 8:9], tau[:, None], theta])
check("write-array", np.max(np.abs(out - expect)) < 1e-12 * np.max(np.abs(expect)),
      "max difference %.3g" % np.max(np.abs(out - expect)))

# Outside what Stan can evaluate: a non-finite point gives -inf and a zero gradient.
bad = zs[:1].copy()
bad[0, 9] = np.inf
lb, gb = stan.logdensity(bad)
check("nonfinite-point", lb[0] == -np.inf and np.all(gb == 0), "l = %r" % lb[0])

try:
    Plugin(stan_so, ["data=" + data, "nope=1"])
    check("unknown-argument", False, "accepted")
except PluginError as e:
    check("unknown-argument", "unknown argument 'nope=1'" in str(e), str(e))

stan.close()
closed.close()
print("# %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
