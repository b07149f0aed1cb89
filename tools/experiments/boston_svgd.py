#!/usr/bin/python3
"""boston_svgd.py - SVGD itself on gflowvi's Boston splits: the reference for the gap.

A NumPy transcription of the SVGD paper's bayesian_nn.py (Liu & Wang 2016): the same model as
gflowvi's bnn target (one layer of 50 ReLU units, Gamma(1, 0.1) priors on the noise and
weight precisions), 20 particles, SVGD's initialisation, minibatches of 100 taken in turn
from the shuffled training rows, 2000 AdaGrad steps (master step 1e-3, auto-correlation
0.9) of the RBF-kernel SVGD direction (median bandwidth), then each particle's noise
precision set to 1 / its mean squared residual on the dev rows.  It runs on exactly the
train, dev and test rows of a `tools/boston_protocol.py --svgd-protocol` run (its
summary.json files name them), so the two can be compared split by split.

  tools/experiments/boston_svgd.py PROTOCOL_OUT [--splits 20] [--first 1] [--data data/boston.csv]
      [--map]     (--map: no kernel, i.e. 20 independent MAP networks: a deep ensemble)

Prints each split's test RMSE and log-likelihood and their mean +- standard error."""
import argparse
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
A0, B0, M = 1.0, 0.1, 20


class Net:
    def __init__(self, p, H):
        self.p, self.H = p, H
        self.D = (p + 2) * H + 3  # W1 (p x H), b1, w2, b2, log gamma, log lambda: gflowvi's order

    def unpack(self, t):
        p, H = self.p, self.H
        return (t[:p * H].reshape(p, H), t[p * H:p * H + H], t[p * H + H:p * H + 2 * H],
                t[-3], t[-2], t[-1])

    def f(self, t, X):
        w1, b1, w2, b2, _, _ = self.unpack(t)
        return np.maximum(X @ w1 + b1, 0) @ w2 + b2

    def grad(self, t, X, y, N):
        """The gradient of gflowvi's l(z) (src/targets/bnn.c) on a minibatch scaled by N/B."""
        w1, b1, w2, b2, lg, ll = self.unpack(t)
        a = X @ w1 + b1
        h = np.maximum(a, 0)
        r = h @ w2 + b2 - y
        gam, lam, s = np.exp(lg), np.exp(ll), N / len(y)
        df = -gam * r * s
        da = np.outer(df, w2) * (a > 0)
        w = t[:-2]
        g = np.concatenate([(X.T @ da).ravel(), da.sum(0), h.T @ df, [df.sum()]]) - lam * w
        glg = 0.5 * N - 0.5 * gam * s * (r * r).sum() + A0 - B0 * gam
        gll = 0.5 * len(w) - 0.5 * lam * (w * w).sum() + A0 - B0 * lam
        return np.concatenate([g, [glg, gll]])


def run_split(A, data, seed, kernel, iters=2000, batch=100, step=1e-3, alpha=0.9):
    rng = np.random.RandomState(seed)
    n, p = A.shape[0], A.shape[1] - 1
    test = np.array(data["test_rows_in_file"]) - 1
    dev = np.array(data["dev_rows_in_file"]) - 1
    train = np.setdiff1d(np.arange(n), np.concatenate([test, dev]))
    rng.shuffle(train)
    X, y = A[train, :p], A[train, p]
    mx, sx = X.mean(0), X.std(0)
    sx[sx == 0] = 1
    my, sy = y.mean(), y.std()
    Xn, yn, N = (X - mx) / sx, (y - my) / sy, len(y)
    net = Net(p, 50)
    th = np.zeros((M, net.D))
    for i in range(M):
        th[i, :p * 50] = rng.randn(p * 50) / np.sqrt(p + 1)
        th[i, p * 50 + 50:p * 50 + 100] = rng.randn(50) / np.sqrt(50 + 1)
        th[i, -1] = np.log(rng.gamma(A0, B0))  # numpy's scale: SVGD's code, as it is
        ridx = rng.choice(N, min(N, 1000), replace=False)
        th[i, -2] = -np.log(np.mean((net.f(th[i], Xn[ridx]) - yn[ridx]) ** 2))
    hist = None
    for it in range(iters):
        b = np.arange(it * batch, (it + 1) * batch) % N
        g = np.array([net.grad(th[i], Xn[b], yn[b], N) for i in range(M)])
        if kernel:
            sq = ((th[:, None, :] - th[None, :, :]) ** 2).sum(-1)
            h = np.sqrt(0.5 * np.median(sq) / np.log(M + 1))
            K = np.exp(-sq / h ** 2 / 2)
            g = (K @ g + (th * K.sum(1)[:, None] - K @ th) / h ** 2) / M
        hist = g * g if hist is None else alpha * hist + (1 - alpha) * g * g
        th = th + step * g / (1e-6 + np.sqrt(hist))
    Xd, yd = (A[dev, :p] - mx) / sx, A[dev, p]
    for i in range(M):
        th[i, -2] = -np.log(np.mean((net.f(th[i], Xd) * sy + my - yd) ** 2))
    Xt, yt = (A[test, :p] - mx) / sx, A[test, p]
    P = np.array([net.f(th[i], Xt) * sy + my for i in range(M)])
    lg = th[:, -2][:, None]
    lik = 0.5 * lg - 0.5 * np.log(2 * np.pi) - 0.5 * (P - yt) ** 2 * np.exp(lg)
    ll = np.logaddexp.reduce(lik, axis=0) - np.log(M)
    return np.sqrt(np.mean((P.mean(0) - yt) ** 2)), ll.mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("protocol_out", help="the --out folder of boston_protocol.py --svgd-protocol")
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--first", type=int, default=1,
                    help="first split seed: splits FIRST .. FIRST + SPLITS - 1")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "boston.csv"))
    ap.add_argument("--map", action="store_true", help="no kernel: independent MAP networks")
    args = ap.parse_args()
    A = np.loadtxt(args.data, delimiter=",", skiprows=1)
    res = []
    for k in range(args.first, args.first + args.splits):
        with open(os.path.join(args.protocol_out, f"split_{k:02d}", "summary.json")) as f:
            data = json.load(f)["data"]
        rmse, ll = run_split(A, data, k, not args.map)
        res.append((rmse, ll))
        print(f"split {k:2d}: RMSE {rmse:.3f}  test LL {ll:.3f}", flush=True)
    R = np.array(res)
    se = R.std(0, ddof=1) / np.sqrt(len(R)) if len(R) > 1 else [np.nan, np.nan]
    print(f"{'MAP ensemble' if args.map else 'SVGD'} on these splits: RMSE {R[:, 0].mean():.2f} +- "
          f"{se[0]:.2f}   test LL {R[:, 1].mean():.2f} +- {se[1]:.2f}")


if __name__ == "__main__":
    main()
