"""gflowvi - Gaussian-mixture variational inference by Wasserstein gradient flows, from Python.

    import numpy as np, gflowvi
    def logp_and_grad(z):                     # z: (n, d) points
        return -0.5 * (z ** 2).sum(1), -z     # l(z) and its gradient
    r = gflowvi.fit(logp_and_grad, dim=2, particles=4, iters=300)
    r.mean, r.cov, r.weights, r.means, r.covariances, r.elbo, r.khat

A thin layer (ctypes) over libgflowvi.so: docs/python.md.
"""
from ._lib import GflowviError, lib as _cdll
from .fit import FitResult, fit

__all__ = ["fit", "FitResult", "GflowviError", "version", "torch_density"]


def version():
    """The version of the loaded libgflowvi.so, "MAJOR.MINOR.PATCH"."""
    return _cdll.gfv_version(None, None, None).decode()


def torch_density(logp):
    """logp_and_grad for fit from a PyTorch function: logp(z) maps a (n, d) float64 tensor
    to the (n,) log densities; the gradient comes from autograd.  Needs torch."""
    from .autograd import torch_density as make
    return make(logp)
