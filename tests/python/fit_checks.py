"""fit_checks.py - the checks of tests/cli/test_python.sh that run in one Python process.

Usage: fit_checks.py WHICH [ARGS]; prints PASS / FAIL / SKIP lines (tests/run_all.sh).
  basic VERSION      version, a NumPy Gaussian's moments, bad options, NaN, exceptions
  same_as_cli OUT    the gauss target of the program, written in NumPy, into OUT
  mpi OUT            a fit on every rank (run under mpirun); rank 0 prints the lines
  torch              the Gaussian written with PyTorch autograd
"""
import json
import sys

import numpy as np

import gflowvi

# N(m, S), m = (1, -2), S = [[2, 0.6], [0.6, 1]]
M = np.array([1.0, -2.0])
S = np.array([[2.0, 0.6], [0.6, 1.0]])
P = np.linalg.inv(S)


def gauss(z):
    d = z - M
    g = -d @ P
    return 0.5 * (d * g).sum(1), g


def check(name, cond, why=""):
    print(f"PASS {name}" if cond else f"FAIL {name}: {why}", flush=True)


def expect_error(name, status, fragment, fn):
    try:
        fn()
    except gflowvi.GflowviError as e:
        check(name, e.status == status and fragment in e.message,
              f"status {e.status}, message {e.message!r}; expected {status} and {fragment!r}")
        return e
    except Exception as e:  # noqa: BLE001 - any other exception is the failure reported
        check(name, False, f"{type(e).__name__}: {e}")
        return None
    check(name, False, "no exception")
    return None


def moments_ok(name, r, tol_mean, tol_cov):
    em, ec = np.abs(r.mean - M).max(), np.abs(r.cov - S).max()
    check(name, em < tol_mean and ec < tol_cov and abs(r.weights.sum() - 1) < 1e-12,
          f"mean {r.mean}, cov {r.cov.tolist()}: errors {em:.3g}, {ec:.3g}")
    print(f"# {name}: mean error {em:.2g}, covariance error {ec:.2g}")


def basic(version):
    check("version", gflowvi.version() == version, f"{gflowvi.version()} != version.h {version}")
    # Four components of a 2-D Gaussian: the mixture's moments carry the Monte Carlo noise
    # of the last steps (measured 0.003 in the mean and in the covariance), so 0.03 / 0.06.
    r = gflowvi.fit(gauss, 2, particles=4, iters=300, seed=3)
    moments_ok("numpy_gaussian", r, 0.03, 0.06)
    check("result_arrays", r.weights.shape == (4,) and r.means.shape == (4, 2)
          and r.covariances.shape == (4, 2, 2) and r.iterations == 300 and np.isfinite(r.elbo)
          and all(np.linalg.eigvalsh(C).min() > 0 for C in r.covariances), repr(r))
    expect_error("bad_option_value", 2, "gflowvi.fit(particles='0'): --particles: must be >= 1", lambda: gflowvi.fit(gauss, 2, particles=0))
    expect_error("unknown_option", 2, "gflowvi.fit(no_such_option='1'): unknown option '--no-such-option'", lambda: gflowvi.fit(gauss, 2, no_such_option=1))
    expect_error("bad_choice", 2, "gflowvi.fit(family='dense'): --family: 'dense' is not one of full, diag", lambda: gflowvi.fit(gauss, 2, family="dense"))
    expect_error("nan_density", 4, "non-finite",
                 lambda: gflowvi.fit(lambda z: (np.full(len(z), np.nan), -z), 2, particles=2, iters=20))

    def boom(z):
        raise ValueError("boom")
    e = expect_error("exception_in_density", 3, "log density callback failed: ValueError: boom",
                     lambda: gflowvi.fit(boom, 2))
    check("exception_is_the_cause", e is not None and isinstance(e.__cause__, ValueError), repr(e and e.__cause__))
    expect_error("wrong_shapes", 3, "expected (",
                 lambda: gflowvi.fit(lambda z: (z.sum(1), z[:, :1]), 2, particles=2, iters=5))
    # The process is still usable after all those failures.
    r = gflowvi.fit(gauss, 2, particles=1, iters=200, seed=4, family="diag")
    check("diag_family_after_errors", r.covariances.shape == (1, 2, 2) and r.covariances[0, 0, 1] == 0
          and abs(r.mean - M).max() < 0.05, repr(r))


def same_as_cli(out):
    """The program's gauss target in 2-D (src/targets/gauss.c: m = (0.5, -1), s = (1, 1.5),
    correlation 0.6), normalised, with its Hessian: the same options give the same fit."""
    m = np.array([0.5, -1.0])
    C = np.array([[1.0, 0.9], [0.9, 2.25]])
    Pc = np.linalg.inv(C)
    c = -np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(C))

    def gauss2(z):
        d = z - m
        g = -d @ Pc
        return c + 0.5 * (d * g).sum(1), g
    r = gflowvi.fit(gauss2, 2, hessian=lambda z: np.broadcast_to(-Pc, (len(z), 2, 2)), normalized=True,
                    particles=6, iters=200, seed=3, out=out)
    s = json.load(open(f"{out}/summary.json"))
    check("summary_matches_result", abs(s["elbo"] - r.elbo) < 1e-12 and s["particles"] == 6
          and abs(r.kl + r.elbo) < 1e-12, f"summary elbo {s['elbo']}, result {r.elbo}, kl {r.kl}")


def mpi(out):
    from mpi4py import MPI
    r = gflowvi.fit(gauss, 2, particles=6, iters=200, seed=3, out=out, mpi=True)
    world = MPI.COMM_WORLD
    rows = world.gather(np.concatenate([r.weights, r.means.ravel(), r.covariances.ravel(), [r.elbo]]))
    if world.rank == 0:
        one = gflowvi.fit(gauss, 2, particles=6, iters=200, seed=3)
        ref = np.concatenate([one.weights, one.means.ravel(), one.covariances.ravel(), [one.elbo]])
        worst = max(np.abs(x - ref).max() for x in rows)
        # Sums over ranks in another order: rounding only.
        check("mpi_ranks_agree_with_one_rank", worst < 1e-9 and world.size == 3,
              f"{world.size} ranks, largest difference {worst:.3g}")
        s = json.load(open(f"{out}/summary.json"))
        check("mpi_outputs_written", s["ranks"] == 3 and abs(s["elbo"] - r.elbo) < 1e-12, f"summary {s['ranks']} ranks")


def torch_check():
    try:
        import torch
    except ImportError:
        print("SKIP torch_density: python3-torch is not installed (about 200 Debian packages; "
              "docs/python.md)")
        return
    Pt = torch.tensor(P)
    Mt = torch.tensor(M)

    def logp(z):
        d = z - Mt
        return -0.5 * ((d @ Pt) * d).sum(1)
    r = gflowvi.fit(gflowvi.torch_density(logp), 2, particles=4, iters=300, seed=3)
    moments_ok("torch_density", r, 0.03, 0.06)


if __name__ == "__main__":
    which = sys.argv[1]
    {"basic": lambda: basic(sys.argv[2]), "same_as_cli": lambda: same_as_cli(sys.argv[2]),
     "mpi": lambda: mpi(sys.argv[2]), "torch": torch_check}[which]()
