#!/usr/bin/python3
"""ngflow_numpy.py - NGFlow-VI in vectorised NumPy: the baseline gflowvi is measured against.

This is the code a competent NumPy user would write for the same method (docs/method.md,
section 2: the `hessian` estimator, the retraction update, equal weights), on the same
`gauss` target as gflowvi (src/targets/gauss.c).  Everything is batched over particles and
samples with matmul / einsum; there is no Python loop over particles or samples:

  (--family diag: the diagonal family, see estimate_diag; full below)
  sampling     z_k = mu_k + L_k^{-T} eps                     (one batched solve)
  target       l, grad l, Hessian of the gauss target        (one matmul)
  mixture      every component j at every point n:           (K x n x d arrays)
               D = z - mu_j, Y = D P_j (batched matmul), a_jn = logc_j - D.Y / 2,
               log q = logsumexp_j a, r = exp(a - log q), grad log q = -sum_j r_j Y_j,
               sum over the owner's samples of sum_j r_j (g g^T - P_j)
               (one batched Gram matrix (sqrt(r) Y)^T (sqrt(r) Y), one matmul for the P part)
  estimator    gh = E[grad log q - grad l],  G = E[H_logq - H_l]
  update       P' = P + eta G + eta^2/2 G P^{-1} G,  mu' = mu - eta P'^{-1} gh
               (a step that loses positive definiteness or gives a non-finite ELBO is
               retried from the saved state with eta halved, as gflowvi does)

Modes (one JSON object on stdout each):
  bench        --dim --particles --samples --step --warmup --reps --block [--init FILE]
               times warmup + reps x block iterations; seconds per iteration = median over
               the reps of (block seconds / block); a 2000^3 matmul after each rep gives the
               machine's DGEMM rate meanwhile; final ELBO from --eval-samples fresh
               stratified samples.  --init FILE starts from the particles gflowvi dumped
               (gflowvi-bench --dump), so both start from the same state.
  check-step   --dump FILE: recomputes one gflowvi step (its last warm-up iteration) from
               the same particles and the same samples; relative differences must be
               below 1e-9.
  check-k1     K = 1 on the gauss target: must converge to the target (closed-form KL).

Run it single-threaded for a per-core comparison: OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
(tools/bench/run_bench.sh does).  Exit status 0 when the check passes, 1 otherwise.
"""
import argparse
import json
import math
import sys
import time

import numpy as np

LOG2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------------------------ target
class Gauss:
    """The gauss target of gflowvi: m_i = (-1)^i (1 + i mod 3)/2,
    Sigma_ij = s_i s_j 0.6^|i-j|, s_i = 1 + (i mod 3)/2."""

    def __init__(self, d):
        i = np.arange(d)
        self.d = d
        self.mean = np.where(i % 2 == 1, -1.0, 1.0) * (1.0 + (i % 3)) / 2.0
        s = 1.0 + 0.5 * (i % 3)
        self.cov = s[:, None] * s[None, :] * 0.6 ** np.abs(i[:, None] - i[None, :])
        Lc = np.linalg.cholesky(self.cov)
        self.prec = np.linalg.inv(self.cov)
        self.prec = 0.5 * (self.prec + self.prec.T)
        self.logc = -0.5 * d * LOG2PI - np.log(np.diag(Lc)).sum()

    def eval(self, z):
        """l(z), grad l(z) for z (n x d); the Hessian is -prec at every point."""
        D = z - self.mean
        Y = D @ self.prec
        return self.logc - 0.5 * np.einsum("nd,nd->n", D, Y), -Y

    def kl_gaussian(self, mu, Sigma):
        """Closed-form KL(N(mu, Sigma) || target)."""
        d = self.d
        diff = self.mean - mu
        _, ld_q = np.linalg.slogdet(Sigma)
        _, ld_p = np.linalg.slogdet(self.cov)
        return 0.5 * (np.trace(self.prec @ Sigma) + diff @ self.prec @ diff - d + ld_p - ld_q)


# ------------------------------------------------------------------------------ state
class State:
    """K particles: means (K x d), precisions P (K x d x d; diag family: K x d diagonals),
    the Cholesky factors L (diag: sqrt(P)) and the log weights."""

    def __init__(self, mu, P, logw):
        self.mu = np.array(mu, dtype=float)
        self.P = np.array(P, dtype=float)
        self.diag = self.P.ndim == 2
        self.L = np.sqrt(self.P) if self.diag else np.linalg.cholesky(self.P)
        self.logw = np.array(logw, dtype=float)

    def logc(self):
        d = self.mu.shape[1]
        if self.diag:
            logdet_half = 0.5 * np.log(self.P).sum(axis=1)
        else:
            logdet_half = np.log(np.diagonal(self.L, axis1=1, axis2=2)).sum(axis=1)
        return self.logw + logdet_half - 0.5 * d * LOG2PI

    def copy(self):
        s = State.__new__(State)
        s.mu, s.P, s.L, s.logw = self.mu.copy(), self.P.copy(), self.L.copy(), self.logw.copy()
        s.diag = self.diag
        return s


def init_state(K, d, rng, scale=1.0, var=1.0, diag=False):
    mu = scale * rng.standard_normal((K, d))
    P = np.full((K, d), 1.0 / var) if diag else np.broadcast_to(np.eye(d) / var, (K, d, d)).copy()
    return State(mu, P, np.full(K, -math.log(K)))


def sample(st, S, rng):
    """S samples per particle: z = mu + L^{-T} eps  ->  K x S x d."""
    K, d = st.mu.shape
    if st.diag:
        return st.mu[:, None, :] + rng.standard_normal((K, S, d)) / st.L[:, None, :]
    eps = rng.standard_normal((K, d, S))
    x = np.linalg.solve(np.swapaxes(st.L, 1, 2), eps)      # L^T x = eps, batched
    return st.mu[:, None, :] + np.swapaxes(x, 1, 2)


def logsumexp0(A):
    m = A.max(axis=0)
    mf = np.where(np.isfinite(m), m, 0.0)
    return mf + np.log(np.exp(A - mf).sum(axis=0))


# ------------------------------------------------------------------------------ one estimate
def estimate(st, z, target):
    """The Monte Carlo estimates at the K x S x d samples z (docs/method.md, section 2).
    Returns gh (K x d), G (K x d x d), phi (K), phivar (K), log q (n), gbar (n x d)."""
    K, S, d = z.shape
    n = K * S
    Z = z.reshape(n, d)
    logp, grad_l = target.eval(Z)
    # Every component at every point: D_jn = z_n - mu_j, Y_jn = P_j D_jn = -g_j(z_n).
    D = Z[None, :, :] - st.mu[:, None, :]                  # K x n x d
    Y = np.matmul(D, st.P)                                 # P symmetric
    A = st.logc()[:, None] - 0.5 * np.einsum("jnd,jnd->jn", D, Y)
    logq = logsumexp0(A)                                   # n
    R = np.exp(A - logq)                                   # K x n responsibilities
    gbar = -np.einsum("jn,jnd->nd", R, Y)                  # grad log q, n x d
    # sum over particle k's samples of sum_j r_jn g_jn g_jn^T: one Gram matrix per k of the
    # (K S) x d matrix of sqrt(r) g, rows (j, s).
    W = (np.sqrt(R)[:, :, None] * Y).reshape(K, K, S, d)   # [j, k, s, :]
    W = W.transpose(1, 0, 2, 3).reshape(K, K * S, d)       # [k, (j, s), :]
    Hgg = np.matmul(W.transpose(0, 2, 1), W)               # K x d x d
    cw = R.reshape(K, K, S).sum(axis=2)                    # [j, k]: sum_s r
    Hq = Hgg - (cw.T @ st.P.reshape(K, d * d)).reshape(K, d, d)
    # Estimator (hessian): gh = E[gbar - grad l], G = E[H_logq - H_l],
    # H_logq = sum_j r_j (g_j g_j^T - P_j) - gbar gbar^T, H_l = -prec.
    gb = gbar.reshape(K, S, d)
    gh = (gb - grad_l.reshape(K, S, d)).mean(axis=1)
    G = (Hq - np.matmul(gb.transpose(0, 2, 1), gb)) / S + target.prec
    G = 0.5 * (G + G.transpose(0, 2, 1))
    h = (logq - logp).reshape(K, S)
    return gh, G, h.mean(axis=1), h.var(axis=1, ddof=1) if S > 1 else np.zeros(K)


def estimate_diag(st, z, target, stein):
    """The diagonal family (gflowvi's kernel_diag.c): the same quantities with diagonal
    precisions p_j, written the way scikit-learn's diagonal GaussianMixture does, as matrix
    products over the expanded square (z - mu)^2 = z^2 - 2 z mu + mu^2 (after a common shift
    of the coordinates by the mean of the means, for accuracy).  G is the diagonal: the Stein
    estimator p mean((z - mu) grad h) or the Price one mean(H_logq - H_l) (diagonals)."""
    K, S, d = z.shape
    n = K * S
    Z = z.reshape(n, d)
    logp, grad_l = target.eval(Z)
    c = st.mu.mean(axis=0)
    Y, M, p = Z - c, st.mu - c, st.P
    maha = (Y * Y) @ p.T - 2.0 * Y @ (p * M).T + (p * M * M).sum(axis=1)
    A = st.logc() - 0.5 * np.maximum(maha, 0.0)                # n x K
    logq = logsumexp0(A.T)
    R = np.exp(A - logq[:, None])                              # n x K responsibilities
    Rp = R @ p
    gbar = R @ (p * M) - Y * Rp                                # sum_j r_j p_j (m_j - y)
    gb = gbar.reshape(K, S, d)
    gh = (gb - grad_l.reshape(K, S, d)).mean(axis=1)
    if stein:
        G = p * ((z - st.mu[:, None, :]) * (gb - grad_l.reshape(K, S, d))).mean(axis=1)
    else:
        p2 = p * p                                             # sum_j r_j (g_j^2 - p_j)
        Hq = R @ (p2 * M * M) - 2.0 * Y * (R @ (p2 * M)) + Y * Y * (R @ p2) - Rp
        G = (Hq.reshape(K, S, d) - gb * gb).mean(axis=1) + np.diag(target.prec)
    h = (logq - logp).reshape(K, S)
    return gh, G, h.mean(axis=1), h.var(axis=1, ddof=1) if S > 1 else np.zeros(K)


def update_diag(st, gh, G, eta):
    """p' = p + eta g + eta^2/2 g^2 / p elementwise, mu' = mu - eta gh / p'."""
    Pn = st.P + eta * G + 0.5 * eta * eta * G * G / st.P
    if not np.all(Pn > 0) or not np.all(np.isfinite(Pn)):
        return None
    new = State.__new__(State)
    new.P, new.L, new.logw, new.diag = Pn, np.sqrt(Pn), st.logw.copy(), True
    new.mu = st.mu - eta * gh / Pn
    return new


def elbo_of(st, phi, phivar, S):
    w = np.exp(st.logw)
    return -(w @ phi), math.sqrt((w * w) @ phivar / S)


def update(st, gh, G, eta):
    """NGFlow-VI with the retraction; None when a precision is not positive definite."""
    Sigma = np.linalg.inv(st.P)
    Pn = st.P + eta * G + 0.5 * eta * eta * np.matmul(G, np.matmul(Sigma, G))
    Pn = 0.5 * (Pn + Pn.transpose(0, 2, 1))
    try:
        Ln = np.linalg.cholesky(Pn)
    except np.linalg.LinAlgError:
        return None
    new = State.__new__(State)
    new.P, new.L, new.logw, new.diag = Pn, Ln, st.logw.copy(), False
    new.mu = st.mu - eta * np.linalg.solve(Pn, gh[:, :, None])[:, :, 0]
    return new


def estimator_for(st, d):
    """gflowvi's --estimator=auto for the gauss target: hessian, but stein in the diagonal
    family above d = 64 (GFV_DIAG_HESSIAN_MAX_DIM)."""
    return st.diag and d > 64


def estimate_any(st, z, target):
    if st.diag:
        return estimate_diag(st, z, target, estimator_for(st, z.shape[2]))
    return estimate(st, z, target)


def update_any(st, gh, G, eta):
    return update_diag(st, gh, G, eta) if st.diag else update(st, gh, G, eta)


class Solver:
    """The same loop as gflowvi: estimate at the start, then per iteration update from the
    current estimate and estimate at the new particles (rejecting and halving on failure)."""

    def __init__(self, st, target, S, eta, rng, max_retries=10):
        self.st, self.target, self.S, self.eta, self.rng = st, target, S, eta, rng
        self.max_retries, self.rejected = max_retries, 0
        self.est = self.estimate_at(self.st)

    def estimate_at(self, st):
        return estimate_any(st, sample(st, self.S, self.rng), self.target)

    def iterate(self):
        gh, G = self.est[0], self.est[1]
        for r in range(self.max_retries + 1):
            eta = self.eta * 0.5 ** r
            new = update_any(self.st, gh, G, eta)
            if new is not None:
                est = self.estimate_at(new)
                if np.isfinite(elbo_of(new, est[2], est[3], self.S)[0]):
                    self.st, self.est, self.eta = new, est, eta
                    return
            self.rejected += 1
        raise RuntimeError("step rejected %d times" % (self.max_retries + 1))

    def elbo(self):
        return elbo_of(self.st, self.est[2], self.est[3], self.S)


def evaluate(st, target, N, rng, block=2048):
    """ELBO from N fresh samples, stratified by component as gflowvi does."""
    K, d = st.mu.shape
    M = -(-N // K)
    logc = st.logc()
    means, vars_ = np.empty(K), np.empty(K)
    for k in range(K):
        eps = rng.standard_normal((d, M))
        if st.diag:
            z = (st.mu[k][:, None] + eps / st.L[k][:, None]).T
        else:
            z = (st.mu[k][:, None] + np.linalg.solve(st.L[k].T, eps)).T     # M x d
        lq = np.empty(M)
        for i0 in range(0, M, block):
            Zb = z[i0:i0 + block]
            if st.diag:
                c = st.mu.mean(axis=0)
                Y, Mu, p = Zb - c, st.mu - c, st.P
                maha = (Y * Y) @ p.T - 2.0 * Y @ (p * Mu).T + (p * Mu * Mu).sum(axis=1)
                lq[i0:i0 + block] = logsumexp0((logc - 0.5 * np.maximum(maha, 0.0)).T)
                continue
            D = Zb[None, :, :] - st.mu[:, None, :]
            A = logc[:, None] - 0.5 * np.einsum("jnd,jnd->jn", D, np.matmul(D, st.P))
            lq[i0:i0 + block] = logsumexp0(A)
        h = lq - target.eval(z)[0]
        means[k], vars_[k] = h.mean(), h.var(ddof=1)
    w = np.exp(st.logw)
    return -(w @ means), math.sqrt((w * w) @ vars_ / M), K * M


# ------------------------------------------------------------------------------ dump files
def read_dump(path):
    """gflowvi-bench --dump: 'key n' header lines followed by n numbers, one per line."""
    out, key, vals, need = {}, None, [], 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if need == 0:
                key, n = line.split()
                need, vals = int(n), []
                if need == 0:
                    out[key] = np.empty(0)
                continue
            vals.append(float(line))
            need -= 1
            if need == 0:
                out[key] = np.array(vals)
    d, K, S = int(out["d"][0]), int(out["K"][0]), int(out["S"][0])
    out["d"], out["K"], out["S"] = d, K, S
    for key in ("init_mu", "mu0", "mu1"):
        out[key] = out[key].reshape(K, d)
    diag = "diag" in out and out["diag"][0] == 1
    for key in ("init_P", "P0", "P1"):
        out[key] = out[key].reshape((K, d) if diag else (K, d, d))
    out["z0"] = out["z0"].reshape(K, S, d)
    return out


def rel(a, b):
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


# ------------------------------------------------------------------------------ modes
def mode_check_step(a):
    dump = read_dump(a.dump)
    target = Gauss(dump["d"])
    st = State(dump["mu0"], dump["P0"], dump["logw0"])
    stein = "stein" in dump and dump["stein"][0] == 1
    assert stein == (st.diag and estimator_for(st, dump["d"])), "gflowvi used another estimator"
    gh, G, phi, phivar = estimate_any(st, dump["z0"], target)
    elbo0 = elbo_of(st, phi, phivar, dump["S"])[0]
    new = update_any(st, gh, G, float(dump["eta"][0]))
    errs = {"elbo0": abs(elbo0 - dump["elbo0"][0]) / max(1.0, abs(dump["elbo0"][0])),
            "mu1": rel(new.mu, dump["mu1"]), "P1": rel(new.P, dump["P1"])}
    ok = all(v < 1e-9 for v in errs.values())
    print(json.dumps({"mode": "check-step", "family": "diag" if st.diag else "full",
                      "d": dump["d"], "K": dump["K"], "S": dump["S"],
                      "max_rel_diff": errs, "tolerance": 1e-9, "ok": ok}))
    return 0 if ok else 1


def mode_check_k1(a):
    """K = 1 on a Gaussian target: with the hessian estimator the Hessian part is exact
    (G = P_target - P) and at P = P_target gh = P_target (mu - m) has no noise, so the
    iteration converges to the target itself; KL must fall below 1e-8."""
    d = a.dim
    target = Gauss(d)
    rng = np.random.default_rng(a.seed)
    st = init_state(1, d, rng, scale=3.0, var=1.0)
    kl0 = target.kl_gaussian(st.mu[0], np.linalg.inv(st.P[0]))
    sol = Solver(st, target, a.samples, a.step, rng)
    for _ in range(a.iters):
        sol.iterate()
    kl = target.kl_gaussian(sol.st.mu[0], np.linalg.inv(sol.st.P[0]))
    ok = bool(kl < 1e-8 and abs(sol.elbo()[0] + kl) < 1e-6)
    print(json.dumps({"mode": "check-k1", "d": d, "iters": a.iters, "step": a.step,
                      "kl_initial": kl0, "kl_final": kl, "elbo_last_iteration": sol.elbo()[0],
                      "tolerance": 1e-8, "ok": ok}))
    return 0 if ok else 1


def mode_bench(a):
    d, K, S = a.dim, a.particles, a.samples
    target = Gauss(d)
    rng = np.random.default_rng(a.seed)
    if a.init:
        dump = read_dump(a.init)
        assert (dump["d"], dump["K"], dump["S"]) == (d, K, S), "--init file has another shape"
        st = State(dump["init_mu"], dump["init_P"], dump["logw0"])
        assert st.diag == (a.family == "diag"), "--init file has another family"
    else:
        st = init_state(K, d, rng, a.init_scale, a.init_var, a.family == "diag")
    sol = Solver(st, target, S, a.step, rng)
    for _ in range(a.warmup):
        sol.iterate()
    # A 2000^3 matmul after each repetition: the machine's speed while NumPy ran (the
    # machine is shared; gflowvi-bench does the same, so the two runs can be compared).
    q = 2000
    Aq, Bq = rng.standard_normal((q, q)), rng.standard_normal((q, q))
    per_iter, gemm = [], []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        for _ in range(a.block):
            sol.iterate()
        per_iter.append((time.perf_counter() - t0) / a.block)
        t0 = time.perf_counter()
        Aq @ Bq
        gemm.append(2.0 * q ** 3 / (time.perf_counter() - t0) * 1e-9)
    del Aq, Bq
    elbo_it, se_it = sol.elbo()
    elbo, se, N = evaluate(sol.st, target, a.eval_samples, rng)
    print(json.dumps({"mode": "bench", "family": a.family, "d": d, "K": K, "S": S,
                      "iters": a.warmup + a.reps * a.block, "sec_per_iter": float(np.median(per_iter)),
                      "sec_per_iter_all": per_iter, "dgemm_square_gflops": float(np.median(gemm)),
                      "elbo": elbo, "elbo_se": se, "eval_samples": N,
                      "last_iteration_elbo": elbo_it, "last_iteration_elbo_se": se_it,
                      "rejected": sol.rejected, "numpy": np.__version__, "ok": bool(np.isfinite(elbo))}))
    return 0 if np.isfinite(elbo) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["bench", "check-step", "check-k1"])
    p.add_argument("--family", choices=["full", "diag"], default="full")
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--particles", type=int, default=64)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--step", type=float, default=0.2)
    p.add_argument("--iters", type=int, default=200, help="check-k1: iterations")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--block", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--init", help="start from the particles of a gflowvi-bench --dump file")
    p.add_argument("--init-scale", type=float, default=1.0)
    p.add_argument("--init-var", type=float, default=1.0)
    p.add_argument("--eval-samples", type=int, default=20000)
    p.add_argument("--dump", help="check-step: the gflowvi-bench --dump file")
    a = p.parse_args()
    return {"bench": mode_bench, "check-step": mode_check_step, "check-k1": mode_check_k1}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
