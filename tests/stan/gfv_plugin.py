"""gfv_plugin.py - a gflowvi plugin (include/gflowvi/plugin.h) loaded into Python with ctypes:
the log density and gradient at points, and the optional named outputs (a Stan model's
constrained parameters, transformed parameters and generated quantities), to test a
compiled Stan model's hooks one by one at chosen points (tests/stan/check_plugin.py).  A fit's
named draws come from gflowvi itself (draws.csv, posterior.nc), not from here.  Needs NumPy.

    p = Plugin("model.so", ["data=data.json"])
    logp, grad = p.logdensity(z)           # z: n x d
    names = p.output_names()               # ["theta[1]", ..., "tau"]
    draws = p.write_array(z, seed=1)       # n x m, NaN rows where the model rejects
"""

import ctypes

import numpy as np

_c_double_p = ctypes.POINTER(ctypes.c_double)


class PluginError(RuntimeError):
    pass


def _ptr(a):
    return a.ctypes.data_as(_c_double_p)


class Plugin:
    def __init__(self, path, args=()):
        self.lib = ctypes.CDLL(path if "/" in path else "./" + path)
        L = self.lib
        L.gfv_plugin_abi_version.restype = ctypes.c_int
        self.abi = L.gfv_plugin_abi_version()
        self.state = ctypes.c_void_p()
        if hasattr(L, "gfv_plugin_init"):
            argv = (ctypes.c_char_p * (len(args) + 1))(*[a.encode() for a in args], None)
            err = ctypes.create_string_buffer(512)
            L.gfv_plugin_init.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                                          ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                                          ctypes.c_size_t]
            rc = L.gfv_plugin_init(len(args), argv, ctypes.byref(self.state), err, len(err))
            if rc != 0:
                raise PluginError(err.value.decode(errors="replace"))
        L.gfv_plugin_dim.argtypes = [ctypes.c_void_p]
        L.gfv_plugin_dim.restype = ctypes.c_size_t
        self.d = L.gfv_plugin_dim(self.state)
        L.gfv_plugin_logdensity.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t,
                                            _c_double_p, _c_double_p, _c_double_p]
        self.has_outputs = all(hasattr(L, f) for f in (
            "gfv_plugin_num_outputs", "gfv_plugin_output_names", "gfv_plugin_write_array"))
        if self.has_outputs:
            L.gfv_plugin_num_outputs.argtypes = [ctypes.c_void_p]
            L.gfv_plugin_num_outputs.restype = ctypes.c_size_t
            L.gfv_plugin_output_names.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p)]
            L.gfv_plugin_write_array.argtypes = [ctypes.c_void_p, _c_double_p, _c_double_p,
                                                 ctypes.c_ulong]
            self.m = L.gfv_plugin_num_outputs(self.state)

    def logdensity(self, z):
        z = np.ascontiguousarray(np.atleast_2d(z), dtype=float)
        n, d = z.shape
        if d != self.d:
            raise PluginError("points have %d coordinates, the plugin %d" % (d, self.d))
        logp = np.empty(n)
        grad = np.empty((n, d))
        rc = self.lib.gfv_plugin_logdensity(self.state, n, d, _ptr(z), _ptr(logp), _ptr(grad))
        if rc != 0:
            raise PluginError("gfv_plugin_logdensity returned %d" % rc)
        return logp, grad

    def hessian(self, z):
        z = np.ascontiguousarray(np.atleast_2d(z), dtype=float)
        n, d = z.shape
        h = np.empty((n, d, d))
        L = self.lib
        L.gfv_plugin_hessian.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t,
                                         _c_double_p, _c_double_p]
        if L.gfv_plugin_hessian(self.state, n, d, _ptr(z), _ptr(h)) != 0:
            raise PluginError("gfv_plugin_hessian failed")
        return h

    def _names(self, fn, count):
        arr = (ctypes.c_char_p * count)()
        f = getattr(self.lib, fn)
        f.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p)]
        if f(self.state, arr) != 0:
            raise PluginError(fn + " failed")
        return [a.decode() for a in arr]

    def output_names(self):
        if not self.has_outputs:
            return ["z[%d]" % (a + 1) for a in range(self.d)]
        return self._names("gfv_plugin_output_names", self.m)

    def dim_names(self):
        if not hasattr(self.lib, "gfv_plugin_dim_names"):
            return ["z[%d]" % (a + 1) for a in range(self.d)]
        return self._names("gfv_plugin_dim_names", self.d)

    def output_groups(self):
        if not hasattr(self.lib, "gfv_plugin_output_groups"):
            return [0] * len(self.output_names())
        g = (ctypes.c_int * self.m)()
        self.lib.gfv_plugin_output_groups.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        if self.lib.gfv_plugin_output_groups(self.state, g) != 0:
            raise PluginError("gfv_plugin_output_groups failed")
        return list(g)

    def write_array(self, z, seed=1):
        """Outputs of each row of z; row i uses the seed seed + i."""
        z = np.ascontiguousarray(np.atleast_2d(z), dtype=float)
        if not self.has_outputs:
            return z.copy()
        out = np.empty((z.shape[0], self.m))
        for i in range(z.shape[0]):
            rc = self.lib.gfv_plugin_write_array(self.state, _ptr(z[i]), _ptr(out[i]),
                                                 ctypes.c_ulong(seed + i))
            if rc != 0:
                raise PluginError("gfv_plugin_write_array returned %d" % rc)
        return out

    def close(self):
        if hasattr(self.lib, "gfv_plugin_destroy") and self.state:
            self.lib.gfv_plugin_destroy.argtypes = [ctypes.c_void_p]
            self.lib.gfv_plugin_destroy(self.state)
            self.state = ctypes.c_void_p()
