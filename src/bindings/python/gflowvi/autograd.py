"""autograd.py - a log density written with PyTorch, its gradient by autograd (torch_density)."""
import numpy as np
import torch


def torch_density(logp):
    """Wraps logp (a (n, d) float64 tensor -> (n,) tensor) as fit's logp_and_grad."""

    def logp_and_grad(z):
        t = torch.from_numpy(np.ascontiguousarray(z)).requires_grad_(True)
        lp = logp(t)
        (g,) = torch.autograd.grad(lp.sum(), t)  # rows are independent: d sum / dz_i = grad l(z_i)
        return lp.detach().numpy(), g.numpy()

    logp_and_grad.__name__ = getattr(logp, "__name__", "torch_density")
    return logp_and_grad
