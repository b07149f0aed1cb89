"""fit.py - gflowvi.fit: a Gaussian-mixture approximation of a log density written in Python.

The density is handed to the library as a C function (gfv_target_create_callback) that
calls back into Python with blocks of points; the solver is driven through the library's
life cycle (create_empty, set_option for each option, set_target, solve, evaluate: docs/api.md),
so the options' validation and their messages are the library's own, and a failure's message
is the solver's own error record.  docs/python.md has the details and an example.
"""
import ctypes
import math
import sys
from ctypes import POINTER, byref, c_double, c_int, c_size_t, c_void_p

import numpy as np

from ._lib import (CALLBACK_HESSIAN, CALLBACK_NORMALIZED, DENSITY_FN, EvalResult, GflowviError,
                   check, lib, set_error)


class FitResult:
    """A fitted mixture: weights (K), means (K x d), covariances (K x d x d), the mixture's
    mean (d) and cov (d x d), the final evaluation (elbo, elbo_se, kl, kl_se, khat,
    log_evidence, log_evidence_se, ess, outside, eval_samples), the verdict (reliable,
    warnings), iterations, seconds, and out (the output directory, or None)."""

    def __repr__(self):
        return (f"FitResult(K={len(self.weights)}, d={self.means.shape[1]}, elbo={self.elbo:.6g}"
                f" +- {self.elbo_se:.2g}, khat={self.khat:.3g}, reliable={self.reliable})")


class _Density:
    """The C callback around the user's functions; remembers the first exception."""

    def __init__(self, logp_and_grad, hessian, dim):
        self.f, self.h, self.dim, self.exc = logp_and_grad, hessian, dim, None
        self.c_fn = DENSITY_FN(self)

    def __call__(self, ctx, n, d, z, lp, grad, hess):
        try:
            Z = np.ctypeslib.as_array(z, shape=(n, d)).copy()  # the caller's points stay untouched
            logp, g = self.f(Z)
            logp = np.asarray(logp, dtype=float)
            g = np.asarray(g, dtype=float)
            if logp.shape not in ((n,), (n, 1)) or g.shape != (n, d):
                raise ValueError(f"logp_and_grad returned shapes {logp.shape} and {g.shape} for "
                                 f"{n} points in {d} dimensions; expected ({n},) and ({n}, {d})")
            np.ctypeslib.as_array(lp, shape=(n,))[:] = logp.reshape(n)
            np.ctypeslib.as_array(grad, shape=(n, d))[:] = g
            if hess:
                H = np.asarray(self.h(Z), dtype=float)
                if H.shape != (n, d, d):
                    raise ValueError(f"hessian returned shape {H.shape}; expected ({n}, {d}, {d})")
                np.ctypeslib.as_array(hess, shape=(n, d, d))[:] = H
            return 0
        except BaseException as e:  # never let an exception cross into C
            if self.exc is None:
                self.exc = e
            set_error(f"{type(e).__name__}: {e}")
            return 1


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fit(logp_and_grad, dim, *, hessian=None, normalized=False, out=None, mpi=False, **options):
    """Fits a Gaussian mixture to the density exp(l) given by logp_and_grad.

    logp_and_grad(z) takes a block of points z, a float array of shape (n, dim), and returns
    (logp, grad): l at each point, shape (n,), and its gradient, shape (n, dim).  l may be
    unnormalised and -inf outside the support; NaN or +inf make the library reject the step
    and, when it cannot avoid them, raise GflowviError (status 4).  hessian(z), if given,
    returns the Hessians, shape (n, dim, dim), and lets --estimator=auto use them;
    normalized=True says exp(l) integrates to 1 (the result then has kl = -elbo).

    options are the gflowvi program's options with '_' for '-' (particles=8, iters=500,
    step=0.5, seed=3, family="diag", ...; `gflowvi --help` lists them); they are validated
    by the library, and a bad one raises GflowviError (status 2) with its message.
    quiet defaults to True here (no progress lines).  out="DIR" writes the output files of
    the program (summary.json, mixture.csv, draws.csv, ...) to DIR, replacing an earlier
    run's.  mpi=True runs on every rank of MPI_COMM_WORLD (start Python with mpirun; needs
    mpi4py, which initialises MPI): every rank calls fit with the same arguments and gets
    the same result; rank 0 writes the files.  Returns a FitResult.
    """
    if not callable(logp_and_grad):
        raise TypeError("logp_and_grad must be callable")
    dim = int(dim)
    options.setdefault("quiet", True)
    if out is not None:
        options["out"] = out
    options.setdefault("target", "python:" + getattr(logp_and_grad, "__name__", "density"))
    if mpi:
        from mpi4py import MPI  # noqa: F401  (initialises MPI; finalises it at exit)
    comm, target, solver = c_void_p(), c_void_p(), c_void_p()
    density = _Density(logp_and_grad, hessian, dim)
    try:
        if dim < 1:  # the library says so too, but would see dim modulo 2^64
            raise GflowviError(2, "usage", f"gflowvi.fit: dim must be at least 1 (got {dim})")
        check(lib.gfv_comm_init_mpi(None, None, byref(comm)) if mpi else lib.gfv_comm_self(byref(comm)))
        check(lib.gfv_solver_create_empty(comm, byref(solver)))
        for name, value in options.items():
            text = _text(value)
            check(lib.gfv_solver_set_option(solver, name.replace("_", "-").encode(), text.encode()),
                  solver, f"gflowvi.fit({name}={text!r}): ")
        flags = (CALLBACK_HESSIAN if hessian is not None else 0) | (CALLBACK_NORMALIZED if normalized else 0)
        check(lib.gfv_target_create_callback(dim, density.c_fn, None, flags, byref(target)))
        check(lib.gfv_solver_set_target(solver, target), solver)
        if out is not None and lib.gfv_comm_rank(comm) == 0:
            check(lib.gfv_outputs_clean(str(out).encode(), None, 0, 0, None, None))
        res = EvalResult()
        for step in (lambda: lib.gfv_solver_solve(solver),
                     lambda: lib.gfv_solver_evaluate(solver, byref(res)),
                     lambda: lib.gfv_solver_write_outputs(solver, byref(res)) if out is not None else 0):
            status = step()
            if status:
                if isinstance(density.exc, KeyboardInterrupt):
                    raise density.exc
                try:
                    check(status, solver)
                except GflowviError as e:
                    raise e from density.exc
        return _result(solver, res, out)
    finally:
        lib.gfv_solver_free(solver)
        lib.gfv_target_free(target)
        lib.gfv_comm_free(comm)


def _result(solver, res, out):
    K, d = lib.gfv_solver_num_particles(solver), lib.gfv_solver_dim(solver)
    diag = lib.gfv_solver_family(solver) == b"diag"
    w, mu = np.empty(K), np.empty((K, d))
    cov = np.empty((K, d)) if diag else np.empty((K, d, d))
    ptr = lambda a: a.ctypes.data_as(POINTER(c_double))  # noqa: E731
    check(lib.gfv_solver_gather_covariances(solver, ptr(w), ptr(mu), ptr(cov)), solver)
    r = FitResult()
    r.weights, r.means = w, mu
    r.covariances = np.stack([np.diag(v) for v in cov]) if diag else cov
    r.mean = w @ mu
    dev = mu - r.mean
    r.cov = np.einsum("k,kab->ab", w, r.covariances) + np.einsum("k,ka,kb->ab", w, dev, dev)
    for name in ("elbo", "elbo_se", "kl", "kl_se", "khat", "log_evidence", "log_evidence_se",
                 "ess", "outside", "eval_samples", "negligible"):
        setattr(r, name, getattr(res, name))
    r.reliable = bool(res.reliable)
    r.warnings = [res.warnings[i].value.decode(errors="replace") for i in range(res.nwarnings)]
    r.iterations = lib.gfv_solver_iteration(solver)
    r.seconds = lib.gfv_solver_seconds(solver)
    r.out = None if out is None else str(out)
    return r
