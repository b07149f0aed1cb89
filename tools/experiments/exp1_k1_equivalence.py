#!/usr/bin/python3
"""Experiment 1: with K = 1, gflowvi's NGFlow-VI is NGVI and its GFlow-VI is BBVI.

gflowvi runs K = 1 on the `gauss` target (one rank: K = 1 cannot be split over two) from
mu = 0, Sigma = I (--init-scale=0), with many samples per iteration (--samples, default 2000).
The state after t iterations is read from mixture.csv of a run with --iters=t (the same seed
gives the same trajectory prefix). The reference is a direct NumPy single-Gaussian NGVI and
BBVI with the EXACT expectations for this Gaussian target (l = -1/2 (z-m)^T A (z-m)):
E_q[grad h] = A (mu - m), E_q[H_h] = A - P. gflowvi's Hessian estimate is exact for K = 1
(H_h is constant), so the only difference is the Monte Carlo error of the sample mean in
E[grad h], of order 1/sqrt(S).
"""
import argparse
import os

import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import RESULTS, WORK, run, mixture, write_csv


def gauss_target(d):
    i = np.arange(d)
    m = (-1.0) ** i * (1 + i % 3) / 2.0
    s = 1 + (i % 3) / 2.0
    C = np.outer(s, s) * 0.6 ** np.abs(i[:, None] - i[None, :])
    return m, C


def reference(flow, d, eta, T):
    m, C = gauss_target(d)
    A = np.linalg.inv(C)
    mu, S = np.zeros(d), np.eye(d)
    traj = [(mu.copy(), S.copy())]
    for _ in range(T):
        P = np.linalg.inv(S)
        gh = A @ (mu - m)
        G = A - P
        if flow == "ngflow":   # NGVI (variational online Newton form, PD-preserving retraction)
            P2 = P + eta * G + 0.5 * eta ** 2 * G @ S @ G
            S = np.linalg.inv(P2)
            mu = mu - eta * S @ gh
        else:                  # BBVI: Euclidean gradient step on (mu, Sigma), same retraction
            B = G / 2
            S = S - eta * B + 0.5 * eta ** 2 * B @ P @ B
            mu = mu - eta * gh
        S = (S + S.T) / 2
        traj.append((mu.copy(), S.copy()))
    return traj


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, default=4)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--step", type=float, default=0.2)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rows = []
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    worst = {}
    for col, flow in enumerate(["ngflow", "gflow"]):
        ref = reference(flow, a.dim, a.step, a.iters)
        got = []
        for t in range(a.iters + 1):
            out = os.path.join(WORK, "exp1", "%s_t%d" % (flow, t))
            rc, s, _ = run(out, ranks=1, target="gauss", dim=a.dim, particles=1, flow=flow,
                           estimator="hessian", samples=a.samples, step=a.step, iters=t,
                           init_scale=0, init_var=1, seed=a.seed, eval_samples=1000,
                           out_samples=10)
            assert rc == 0, "gflowvi failed"
            w, mu, cov = mixture(out)
            got.append((mu[0], cov[0]))
        dmax_mu = dmax_S = 0.0
        for t in range(a.iters + 1):
            mu_g, S_g = got[t]
            mu_r, S_r = ref[t]
            dmu = np.max(np.abs(mu_g - mu_r))
            dS = np.max(np.abs(S_g - S_r))
            dmax_mu, dmax_S = max(dmax_mu, dmu), max(dmax_S, dS)
            rows.append([flow, t] + list(mu_g) + list(mu_r) +
                        [np.linalg.slogdet(S_g)[1], np.linalg.slogdet(S_r)[1], dmu, dS])
        worst[flow] = (dmax_mu, dmax_S)
        ts = np.arange(a.iters + 1)
        ax = axes[0, col]
        for i in range(a.dim):
            ax.plot(ts, [g[0][i] for g in got], "o", ms=3, color="C%d" % i,
                    label="gflowvi mu_%d" % (i + 1))
            ax.plot(ts, [r[0][i] for r in ref], "-", color="C%d" % i)
        ax.set_title("%s K=1 (dots) vs %s in NumPy (lines): means" %
                     (flow, "NGVI" if flow == "ngflow" else "BBVI"), fontsize=9)
        ax.set_xlabel("iteration"); ax.legend(fontsize=7)
        ax = axes[1, col]
        ax.plot(ts, [np.linalg.slogdet(g[1])[1] for g in got], "o", ms=3, label="gflowvi")
        ax.plot(ts, [np.linalg.slogdet(r[1])[1] for r in ref], "-", label="NumPy reference")
        ax.set_title("log det Sigma; max |diff|: mu %.2g, Sigma %.2g" % worst[flow], fontsize=9)
        ax.set_xlabel("iteration"); ax.legend(fontsize=7)
    fig.suptitle("K = 1: gflowvi vs exact-expectation NGVI/BBVI, gauss d=%d, step %g, S=%d"
                 % (a.dim, a.step, a.samples), fontsize=10)
    fig.tight_layout()
    os.makedirs(RESULTS, exist_ok=True)
    png = os.path.join(RESULTS, "exp1_k1_equivalence.png")
    fig.savefig(png, dpi=110)
    d = a.dim
    hdr = (["flow", "iteration"] + ["mu%d_gflowvi" % (i + 1) for i in range(d)] +
           ["mu%d_ref" % (i + 1) for i in range(d)] +
           ["logdet_gflowvi", "logdet_ref", "maxabs_dmu", "maxabs_dSigma"])
    write_csv(os.path.join(RESULTS, "exp1_k1_equivalence.csv"), hdr, rows)
    print("wrote", png)
    for flow, (dm, dS) in worst.items():
        print("%s: largest |mu diff| %.3g, largest |Sigma diff| %.3g over %d iterations "
              "(MC error scale 1/sqrt(S) = %.3g)" % (flow, dm, dS, a.iters, 1 / np.sqrt(a.samples)))


if __name__ == "__main__":
    main()
