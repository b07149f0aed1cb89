#!/usr/bin/python3
"""Exact log Z of the eight-schools posterior (tools/plugins/eight_schools.c).

Given tau, the thetas integrate out (y_j | mu, tau ~ N(mu, sigma_j^2 + tau^2)) and so does mu
(a Gaussian prior times Gaussian likelihoods: closed form), which leaves one integral over
u = log tau, done here by the trapezoid rule on a fine grid (the integrand is smooth and
decays like tau at 0 and like 1/tau at infinity in u, i.e. exponentially).  Prints log Z.
"""
import numpy as np

y = np.array([28, 8, -3, 7, -1, 1, 18, 12], float)
sigma = np.array([15, 10, 16, 11, 9, 11, 10, 18], float)
s0, cs = 5.0, 5.0  # prior sd of mu, half-Cauchy scale of tau


def log_marginal_given_tau(tau):
    """log p(y | tau) with mu integrated out against N(0, s0^2)."""
    v = sigma[None, :] ** 2 + np.asarray(tau)[:, None] ** 2
    prec = 1 / s0 ** 2 + np.sum(1 / v, axis=1)
    b = np.sum(y / v, axis=1)
    return (-0.5 * np.sum(np.log(2 * np.pi * v), axis=1) - 0.5 * np.sum(y ** 2 / v, axis=1)
            - 0.5 * np.log(s0 ** 2 * prec) + 0.5 * b * b / prec)


def log_z():
    u = np.linspace(-40, 40, 400001)
    tau = np.exp(u)
    log_hc = np.log(2 / (np.pi * cs)) - np.log1p((tau / cs) ** 2)
    f = log_marginal_given_tau(tau) + log_hc + u
    m = f.max()
    return m + np.log(np.trapz(np.exp(f - m), u))


if __name__ == "__main__":
    print("%.6f" % log_z())
