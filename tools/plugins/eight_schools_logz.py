#!/usr/bin/python3
"""Exact log Z of the hierarchical normal models of tools/plugins/eight_schools.c.

    tools/plugins/eight_schools_logz.py [schools|effects]      prints log Z

Given tau, the thetas integrate out (y_j | mu, tau ~ N(mu, sigma_j^2 + tau^2)) and so does mu
(a Gaussian prior times Gaussian likelihoods: closed form), which leaves one integral over
u = log tau, done here by the trapezoid rule on a fine grid (the integrand is smooth and
decays exponentially in u at both ends).  Both parameterisations (centred, non-centred)
have this normaliser.  The data must match the plugin's (use_data there).
"""
import sys

import numpy as np


def data(name):
    if name == "schools":
        y = np.array([28, 8, -3, 7, -1, 1, 18, 12], float)
        sigma = np.array([15, 10, 16, 11, 9, 11, 10, 18], float)
        return y, sigma, 5.0, 5.0, "halfcauchy"
    j = np.arange(1, 17, dtype=float)
    return 0.3 * np.sin(j), 0.25 + 0.05 * j, 10.0, 1.0, "halfnormal"


def log_marginal_given_tau(tau, y, sigma, s0):
    """log p(y | tau) with mu integrated out against N(0, s0^2), for a vector of tau."""
    v = sigma[None, :] ** 2 + np.asarray(tau)[:, None] ** 2
    prec = 1 / s0 ** 2 + np.sum(1 / v, axis=1)
    b = np.sum(y / v, axis=1)
    return (-0.5 * np.sum(np.log(2 * np.pi * v), axis=1) - 0.5 * np.sum(y ** 2 / v, axis=1)
            - 0.5 * np.log(s0 ** 2 * prec) + 0.5 * b * b / prec)


def log_z(name="schools"):
    y, sigma, s0, a, prior = data(name)
    u = np.linspace(-40, 40, 400001)
    tau = np.exp(u)
    if prior == "halfcauchy":
        log_prior = np.log(2 / (np.pi * a)) - np.log1p((tau / a) ** 2)
    else:
        log_prior = np.log(2 / (np.sqrt(2 * np.pi) * a)) - 0.5 * (tau / a) ** 2
    f = log_marginal_given_tau(tau, y, sigma, s0) + log_prior + u
    m = f.max()
    return m + np.log(np.trapz(np.exp(f - m), u))


if __name__ == "__main__":
    print("%.6f" % log_z(sys.argv[1] if len(sys.argv) > 1 else "schools"))
