"""fit_banana.py - gflowvi from Python (docs/python.md): a twisted 2-D Gaussian written in
NumPy, fitted by a mixture of 16 Gaussians, with the program's output files in banana-out/.
Run from a source checkout after `make`:
    PYTHONPATH=src/bindings/python /usr/bin/python3 tools/examples/fit_banana.py
"""
import numpy as np

import gflowvi


def banana(z):
    """l(x, y) = -x^2 / 8 - (y - x^2 / 4)^2 / 2: x ~ N(0, 4), y | x ~ N(x^2 / 4, 1)."""
    x, y = z[:, 0], z[:, 1]
    r = y - x ** 2 / 4
    logp = -x ** 2 / 8 - r ** 2 / 2
    grad = np.column_stack([-x / 4 + r * x / 2, -r])
    return logp, grad


r = gflowvi.fit(banana, dim=2, particles=16, iters=1000, seed=1, out="banana-out")
print(r)
print("weights    ", np.round(r.weights, 3))
print("mean       ", np.round(r.mean, 3), "(exact: 0, 1)")
print("covariance ", np.round(r.cov, 3).tolist(), "(exact: [[4, 0], [0, 3]])")
print("ELBO %.4f +- %.4f, log Z %.4f (exact %.4f), k-hat %.2f" %
      (r.elbo, r.elbo_se, r.log_evidence, np.log(2 * np.pi * 2), r.khat))
for w in r.warnings:
    print("warning:", w)
