"""_lib.py - libgflowvi.so through ctypes: finding it, the prototypes, the error type.

The library is looked for, in order, at $GFLOWVI_LIBRARY (a path), beside an installed
package (PREFIX/lib, this file being in PREFIX/lib/python3/dist-packages/gflowvi), in the
build tree of a source checkout (build/lib, this file being in src/bindings/python/gflowvi),
and last by the dynamic loader (LD_LIBRARY_PATH, ldconfig).  It is loaded with RTLD_GLOBAL:
Open MPI loads its components with dlopen, and they need libmpi's symbols global.
"""
import ctypes
import os
from ctypes import POINTER, c_char_p, c_double, c_int, c_size_t, c_uint, c_void_p

SONAME = "libgflowvi.so.0"  # libgflowvi.so.MAJOR: include/gflowvi/version.h
MAX_WARNINGS, WARNING_LEN = 16, 400  # GFV_MAX_WARNINGS, GFV_WARNING_LEN (solver.h)
ERR_INPUT = 3  # GFV_ERR_INPUT (error.h)
CALLBACK_HESSIAN, CALLBACK_NORMALIZED = 1, 2  # target.h


class GflowviError(RuntimeError):
    """A failed library call: status (the exit status the gflowvi program would give,
    include/gflowvi/error.h), status_name ("usage", "numerical", ...) and the library's
    one-line message."""

    def __init__(self, status, status_name, message):
        super().__init__(f"{message} (status {status}, {status_name})")
        self.status, self.status_name, self.message = status, status_name, message


class EvalResult(ctypes.Structure):
    """gfv_eval_result of include/gflowvi/solver.h; checked against gfv_eval_result_size."""
    _fields_ = [("elbo", c_double), ("elbo_se", c_double), ("kl", c_double), ("kl_se", c_double),
                ("eval_samples", c_size_t), ("negligible", c_size_t), ("outside", c_double),
                ("khat", c_double), ("log_evidence", c_double), ("log_evidence_se", c_double),
                ("ess", c_double), ("nwarnings", c_int), ("reliable", c_int),
                ("warning_severe", c_int * MAX_WARNINGS),
                ("warnings", (ctypes.c_char * WARNING_LEN) * MAX_WARNINGS)]


DENSITY_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_size_t, c_size_t, POINTER(c_double),
                              POINTER(c_double), POINTER(c_double), POINTER(c_double))

_PROTOTYPES = {
    "gfv_version": (c_char_p, [POINTER(c_int), POINTER(c_int), POINTER(c_int)]),
    "gfv_error_message": (c_char_p, []),
    "gfv_error_clear": (None, []),
    "gfv_status_name": (c_char_p, [c_int]),
    "gfv_error_install_gsl_handler": (None, []),
    "gfv_comm_self": (c_int, [POINTER(c_void_p)]),
    "gfv_comm_init_mpi": (c_int, [c_void_p, c_void_p, POINTER(c_void_p)]),
    "gfv_comm_rank": (c_int, [c_void_p]),
    "gfv_comm_free": (None, [c_void_p]),
    "gfv_target_create_callback": (c_int, [c_size_t, DENSITY_FN, c_void_p, c_uint, POINTER(c_void_p)]),
    "gfv_target_free": (None, [c_void_p]),
    "gfv_solver_create_empty": (c_int, [c_void_p, POINTER(c_void_p)]),
    "gfv_solver_set_option": (c_int, [c_void_p, c_char_p, c_char_p]),
    "gfv_solver_set_target": (c_int, [c_void_p, c_void_p]),
    "gfv_solver_free": (None, [c_void_p]),
    "gfv_solver_solve": (c_int, [c_void_p]),
    "gfv_solver_error_code": (c_int, [c_void_p]),
    "gfv_solver_error_message": (c_char_p, [c_void_p]),
    "gfv_solver_evaluate": (c_int, [c_void_p, POINTER(EvalResult)]),
    "gfv_solver_write_outputs": (c_int, [c_void_p, POINTER(EvalResult)]),
    "gfv_solver_iteration": (ctypes.c_long, [c_void_p]),
    "gfv_solver_seconds": (c_double, [c_void_p]),
    "gfv_solver_num_particles": (c_size_t, [c_void_p]),
    "gfv_solver_dim": (c_size_t, [c_void_p]),
    "gfv_solver_family": (c_char_p, [c_void_p]),
    "gfv_solver_gather_covariances": (c_int, [c_void_p, POINTER(c_double), POINTER(c_double),
                                              POINTER(c_double)]),
    "gfv_eval_result_size": (c_size_t, []),
    "gfv_outputs_clean": (c_int, [c_char_p, c_void_p, c_size_t, c_int, c_void_p, c_void_p]),
}


def _candidates():
    env = os.environ.get("GFLOWVI_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "..", "..", "..", SONAME),                  # PREFIX/lib
            os.path.join(here, "..", "..", "..", "..", "build", "lib", SONAME),  # source tree
            SONAME]                                                          # the loader's path


def _load():
    errors = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            errors.append(f"{os.path.normpath(path)}: no such file")
            continue
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            break
        except OSError as e:
            errors.append(str(e))
    else:
        raise ImportError("gflowvi: cannot load libgflowvi.so (build it with `make`, install it "
                          "with `make install`, or set GFLOWVI_LIBRARY to its path): "
                          + "; ".join(errors))
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    if lib.gfv_eval_result_size() != ctypes.sizeof(EvalResult):
        raise ImportError(f"gflowvi: {lib._name} has another gfv_eval_result layout "
                          f"({lib.gfv_eval_result_size()} bytes, this package expects "
                          f"{ctypes.sizeof(EvalResult)}); install the package and the library together")
    lib.gfv_error_install_gsl_handler()
    return lib


lib = _load()


def check(status, solver=None, context=""):
    """Raises GflowviError for a non-zero status, with the library's message: the solver's
    own record (gfv_solver_error_message) for a call on a solver, else the thread's (calls
    that have no solver: creating the communicator, the target, the solver itself).
    context, if given, starts the message (which keyword argument was refused)."""
    if status:
        message = (lib.gfv_solver_error_message(solver) if solver is not None and solver.value
                   else lib.gfv_error_message())
        raise GflowviError(status, lib.gfv_status_name(status).decode(),
                           context + message.decode(errors="replace"))


def set_error(message):
    """Records message as the library's error (gfv_error_set), for a failing callback."""
    lib.gfv_error_set(ERR_INPUT, b"python", 0, b"callback", b"%s",
                      message.encode(errors="replace"))
