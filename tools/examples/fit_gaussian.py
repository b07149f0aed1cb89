"""fit_gaussian.py - a density of your own from Python (docs/python.md): N(m, S) with
m = (1, -2), S = [[2, 0.6], [0.6, 1]], fitted by one Gaussian, which can match it exactly.
    PYTHONPATH=src/bindings/python /usr/bin/python3 tools/examples/fit_gaussian.py"""
import numpy as np
import gflowvi

m, P = np.array([1.0, -2.0]), np.linalg.inv([[2.0, 0.6], [0.6, 1.0]])

def logp_and_grad(z):                   # z: (n, 2) points -> l(z) (n,), its gradient (n, 2)
    g = -(z - m) @ P
    return 0.5 * np.einsum("na,na->n", z - m, g), g

r = gflowvi.fit(logp_and_grad, dim=2, particles=1)
print("mean", *np.round(r.mean, 6))
print("cov", *np.round(r.cov.ravel(), 6))
