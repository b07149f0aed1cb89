#!/usr/bin/python3
"""perfmodel.py - a performance model of one gflowvi iteration: time per iteration for any
(K particles, S samples, d dimensions, P ranks), per phase, for the layout gflowvi uses and
for the alternative layout of docs/method.md, section 9 (params).

  tools/perfmodel.py predict --calib build/calibration.json --K 4096 --S 10 --d 16 \\
      [--ranks 1,2,4,...] [--weak] [--estimator hessian|stein] [--flow ngflow|gflow]
      [--weight-flow] [--network calibrated|ib|ALPHA,BETA] [--target-cost SECONDS]
      [--csv FILE] [--plot FILE]
  tools/perfmodel.py compare --calib build/calibration.json scaling.csv
      (the model next to every measured row of a tools/scaling.py / jobs/ CSV table)
  tools/perfmodel.py flops --K 64 --S 10 --d 8   (the operation counts alone)

The machine constants come from build/bin/calibrate (tools/bench/calibrate.c): achieved
DGEMM and DSYRK rates on the mixture kernel's shapes, the kernel's non-BLAS cost per
(point, component) pair, per-particle update and estimator costs, sampling and gauss-target
costs per point, the reduction operators' arithmetic (gamma), and the alpha-beta constants
of point-to-point messages.

One iteration on the slowest rank (k = ceil(K / P) local particles, n = K S points in all,
n_loc = k S local points) costs, as src/solver/solver.c and src/mixture/kernel.c do it:

  sample    n_loc (d normals + a d x d triangular solve)            n_loc * t_sample(d)
  target    n_loc evaluations (gauss target, or --target-cost)       n_loc * t_target(d)
  mixture   phase A: one DGEMM of quadratic features over all n points,
            (c x mq)(mq x k), mq = d(d+1)/2 + d + 1                   2 n k mq flops / R_gemm_A(d, k)
            + log-sum-exp per pair (and the features, per point)    n k c_A(d, k)
            phase B: DGEMM (c x d)(d x k d)                          2 n k d^2 flops / R_gemm(d, k)
            + responsibilities, gradient sums per pair                n k c_B(d, k)
            hessian estimator: one DSYRK per group of S points       n k d (d + 1) flops / R_syrk
              (the r g g^T sums) and a (K x k)(k x d^2) DGEMM        (in c_BH)
  update    the estimator (O(S d^2)) and the flow (O(d^3): Cholesky, inverse, two products)
            per local particle                                        k (t_est(d, S) + t_flow(d))
  comm      allgatherv of the samples              K S d doubles      T_allgather
            allreduce (log-sum-exp op) of log q    K S doubles        T_allreduce(gamma_lse)
            reduce-scatter of the gradient sums    K S d (+ K d^2, hessian) doubles   T_rs(gamma_sum)
            3 small allreduces (ELBO and flags, step norms, agreement) + 1 for the weight flow

The alternative layout (docs/method.md section 9, "params": all-gather the particles' parameters):
each rank all-gathers every particle's (mu, P, log c), K (d + d^2 + 1) doubles, and
evaluates ALL K components at its OWN n_loc points.  The same pairs are computed (n_loc K =
n k), with the DGEMM shape (c x d)(d x K d); no log-sum-exp all-reduce and no reduce-scatter
are needed, since every sum is then local.  It moves less data whenever
d^2 + d + 1 < 2 S d + S (+ d^2 for the hessian estimator), i.e. unless d > 2 S with the
stein estimator, and does one collective instead of three.

Collectives (P ranks, m bytes in the whole vector; alpha, beta per message and byte; gamma
per reduced double), the usual algorithms' costs (Thakur, Rabenseifner and Gropp 2005):
  allgather       ceil(log2 P) alpha + (P-1)/P m beta                         (Bruck / ring)
  allreduce       min(ceil(log2 P)(alpha + m beta + m/8 gamma),                (recursive doubling,
                      2 ceil(log2 P) alpha + 2 (P-1)/P m beta + (P-1)/P m/8 gamma)   Rabenseifner)
  reduce-scatter  ceil(log2 P) alpha + (P-1)/P m (beta + gamma/8)              (recursive halving)
The network constants default to the calibrated ones (shared memory on the calibration
machine); --network ib uses alpha = 2 us, beta = 1 / (10 GB/s) per byte, an InfiniBand
HDR-class interconnect (an assumption, stated in every output), for predictions at scale.
"""

import argparse
import csv
import json
import math

NETWORKS = {
    # alpha (s), beta (s per byte)
    "ib": (2.0e-6, 1.0e-10),
}


class Machine:
    """The calibration file, with interpolation over its (d, k) grids."""

    def __init__(self, path, network="calibrated"):
        with open(path) as f:
            c = json.load(f)
        self.path = path
        self.cpu = c.get("cpu", "unknown")
        self.calib_ranks = c.get("ranks", 1)
        self.d = [float(x) for x in c["d"]]
        self.k = [float(x) for x in c["k"]]
        self.kernel = c["kernel"]
        self.particle = c["particle"]
        self.group = c.get("group", 10)
        self.gamma_sum = c["gamma_sum"]
        self.gamma_lse = c["gamma_lse"]
        mpi = c.get("mpi")
        if network == "calibrated":
            if not mpi:
                raise SystemExit(f"perfmodel: {path} was measured on 1 rank (no MPI constants); "
                                 "calibrate on 2 or more ranks, or use --network ib")
            self.alpha, self.beta = mpi["alpha"], mpi["beta"]
            self.coll = self._fit_collectives(mpi)
            self.network = (f"calibrated ({self.calib_ranks} ranks, shared memory): alpha "
                            f"{self.alpha * 1e6:.2f} us, beta {self.beta * 1e9:.4f} ns/B point to point; "
                            "per collective: " + ", ".join(
                                f"{n} {a * 1e6:.2f} us + {b * 1e9:.3f} ns/B"
                                for n, (a, b) in self.coll.items()))
        elif network in NETWORKS:
            self.alpha, self.beta = NETWORKS[network]
            self.coll = {}
            self.network = (f"assumed {network}: alpha {self.alpha * 1e6:.1f} us, "
                            f"beta {self.beta * 1e9:.2f} ns/B ({1e-9 / self.beta:.0f} GB/s)")
        else:
            a, b = (float(x) for x in network.split(","))
            self.alpha, self.beta = a, b
            self.coll = {}
            self.network = f"given: alpha {a * 1e6:.2f} us, beta {b * 1e9:.4f} ns/B"

    def _fit_collectives(self, mpi):
        """alpha and beta of each collective's formula (below) fitted to what calibrate
        measured at its rank count Pc: alpha from the smallest message, beta in relative
        error over 32 KiB and up, with the reduction arithmetic (gamma) taken out.  On
        shared memory these betas come out 1.5-3x the point-to-point one (the extra copies
        through MPI's buffers), which the plain alpha-beta model would miss."""
        Pc = self.calib_ranks
        if Pc < 2 or "allgather" not in mpi:
            return {}
        lg, f = _lg(Pc), (Pc - 1) / Pc
        # t = a_mult alpha + b_mult(m) beta + g(m): the formulas of t_* at P = Pc.
        forms = {
            "allgather": (lg, lambda m: f * m, lambda m: 0.0),
            "allreduce_sum": (2 * lg, lambda m: 2 * f * m, lambda m: f * m / 8 * self.gamma_sum),
            "allreduce_lse": (2 * lg, lambda m: 2 * f * m, lambda m: f * m / 8 * self.gamma_lse),
            "reduce_scatter": (lg, lambda m: f * m, lambda m: f * m / 8 * self.gamma_sum),
        }
        out = {}
        for name, (am, bm, g) in forms.items():
            ms, ts = mpi["bytes"], mpi[name]
            alpha = max(ts[0] - g(ms[0]), 1e-9) / am
            num = den = 0.0
            for m, t in zip(ms, ts):
                if m < 32768:
                    continue
                w = 1.0 / t ** 2
                x = bm(m)
                num += w * x * (t - am * alpha - g(m))
                den += w * x * x
            beta = num / den if den else self.beta
            out[name] = (alpha, max(beta, self.beta))
        return out

    def coll_ab(self, name):
        return self.coll.get(name, (self.alpha, self.beta))

    # -- interpolation: piecewise linear in (log d, log k) on log values, clamped at the
    # grid's ends; past d = 64 per-pair costs grow like d^2 (BLAS-bound there).
    @staticmethod
    def _interp1(xs, ys, x):
        lx = math.log(x)
        lxs = [math.log(v) for v in xs]
        if lx <= lxs[0]:
            return math.log(ys[0])
        if lx >= lxs[-1]:
            return math.log(ys[-1])
        for i in range(len(xs) - 1):
            if lxs[i] <= lx <= lxs[i + 1]:
                t = (lx - lxs[i]) / (lxs[i + 1] - lxs[i])
                return (1 - t) * math.log(ys[i]) + t * math.log(ys[i + 1])
        return math.log(ys[-1])

    def _grid(self, table, d, k, grow=0.0):
        rows = [math.exp(self._interp1(self.k, row, k)) for row in table]
        v = math.exp(self._interp1(self.d, rows, d))
        if grow and d > self.d[-1]:
            v *= (d / self.d[-1]) ** grow
        return v

    def _line(self, values, d, grow=0.0):
        v = math.exp(self._interp1(self.d, values, d))
        if grow and d > self.d[-1]:
            v *= (d / self.d[-1]) ** grow
        return v

    def gemm_a_rate(self, d, k):
        """Phase A's DGEMM of quadratic features (calibrations before it: phase B's)."""
        return self._grid(self.kernel.get("gemm_a_rate", self.kernel["gemm_rate"]), d, k)

    def gemm_rate(self, d, k):
        return self._grid(self.kernel["gemm_rate"], d, k)

    def syrk_rate(self, d, k):
        return self._grid(self.kernel["syrk_rate"], d, k)

    @staticmethod
    def _fit_k(ks, ts):
        """a, b >= 0 of t(k) = a + b / k, least squares in relative error: the per-pair cost
        plus per-point work (log-sum-exp, the per-group DSYRK call) shared by the k pairs.
        Smooths the measurement noise and extrapolates past the measured k."""
        w = [1.0 / t ** 2 for t in ts]
        s11 = sum(w)
        s12 = sum(wi / k for wi, k in zip(w, ks))
        s22 = sum(wi / k ** 2 for wi, k in zip(w, ks))
        r1 = sum(wi * t for wi, t in zip(w, ts))
        r2 = sum(wi * t / k for wi, t, k in zip(w, ts, ks))
        det = s11 * s22 - s12 * s12
        a = (r1 * s22 - r2 * s12) / det if det else r1 / s11
        b = (s11 * r2 - s12 * r1) / det if det else 0.0
        if b < 0:
            a, b = r1 / s11, 0.0
        elif a < 0:
            a, b = 0.0, r2 / s22
        return a, b

    def pair_time(self, phase, d, k):
        """Kernel seconds per (point, component) pair (phase_a, phase_b, phase_bh): per
        measured d, the fit a + b / k over the measured k; between the d, interpolated;
        past d = 64, growing like d^2."""
        at_k = []
        for row in self.kernel[phase + "_pair"]:
            a, b = self._fit_k(self.k, row)
            at_k.append(a + b / k)
        return self._line(at_k, d, grow=2.0)

    def flow_time(self, flow, d):
        return self._line(self.particle[flow], d, grow=3.0)

    def estimator_time(self, est, d, S):
        t10 = self._line(self.particle[est + "_s10"], d, grow=2.0)
        t40 = self._line(self.particle[est + "_s40"], d, grow=2.0)
        slope = max((t40 - t10) / 30.0, 0.0)
        return max(t10 + slope * (S - 10), t10 * 0.1)

    def sample_time(self, d):
        return self._line(self.particle["sample_per_point"], d, grow=2.0)

    def gauss_target_time(self, d):
        return self._line(self.particle["gauss_target_per_point"], d, grow=2.0)


# ---- collectives -------------------------------------------------------------------------
def _lg(P):
    return math.ceil(math.log2(P)) if P > 1 else 0


def t_allgather(m, P, M):
    if P <= 1:
        return 0.0
    a, b = M.coll_ab("allgather")
    return _lg(P) * a + (P - 1) / P * m * b


def t_allreduce(m, P, M, gamma, name="allreduce_sum"):
    if P <= 1:
        return 0.0
    a, b = M.coll_ab(name)
    rd = _lg(P) * (a + m * b + m / 8 * gamma)
    rab = 2 * _lg(P) * a + 2 * (P - 1) / P * m * b + (P - 1) / P * m / 8 * gamma
    return min(rd, rab)


def t_reduce_scatter(m, P, M, gamma):
    if P <= 1:
        return 0.0
    a, b = M.coll_ab("reduce_scatter")
    return _lg(P) * a + (P - 1) / P * m * (b + gamma / 8)


# ---- operation counts ----------------------------------------------------------------------
# GFV_SAMPLES_A_BUDGET of src/solver/solver_impl.h: the most bytes of phase-A terms the
# samples layout holds at once.
SAMPLES_A_BUDGET = 256 * 2 ** 20


def flops(K, S, d, P=1, estimator="hessian", layout="current"):
    """Floating-point operations per iteration on the slowest rank, by phase (for the
    record; the times below use measured rates)."""
    k = math.ceil(K / P)
    n, nl = K * S, k * S
    pairs = n * k
    out = {
        "sample": nl * d * d,                             # triangular solve, per point d^2
        "mixture_gemm": 2 * pairs * (d * (d + 1) // 2 + d + 1) + 2 * pairs * d * d,  # A, B
        "mixture_elementwise": pairs * (7 * d + 4),       # Mahalanobis, responsibilities, sums
        "mixture_syrk": pairs * d * (d + 1) if estimator == "hessian" else 0,
        "update": k * (16 * d ** 3 // 3 + 2 * S * d * d),  # flow O(d^3) + estimator O(S d^2)
    }
    words = {
        "allgather": (K * (d + d * d + 1)) if layout == "params" else n * d,
        "allreduce_lse": 0 if layout == "params" else n,
        "reduce_scatter": 0 if layout == "params" else n * d + (K * d * d if estimator == "hessian" else 0),
    }
    return out, words


# ---- the model -----------------------------------------------------------------------------
def predict(M, K, S, d, P, estimator="hessian", flow="ngflow", weight_flow=False,
            target_cost=None, layout="current", cores=None):
    """Seconds per iteration on the slowest rank, by phase and by collective.  With cores
    given and P > cores (oversubscribed), each rank gets cores / P of a core: the compute
    phases stretch by P / cores (the communication is left as is, so this is a lower
    bound: MPI's busy polling wastes more)."""
    k = math.ceil(K / P)
    n, nl = K * S, k * S
    pairs = n * k
    # The kernel's shape: the rank's own k components (current) or all K (params).
    kshape = K if layout == "params" else k
    ph_b = "phase_bh" if estimator == "hessian" else "phase_b"
    t_mix = pairs * (M.pair_time("phase_a", d, kshape) + M.pair_time(ph_b, d, kshape))
    # The samples layout holds phase A's n x k terms only up to SAMPLES_A_BUDGET bytes
    # (src/solver/solver_impl.h, GFV_SAMPLES_A_BUDGET); beyond, it runs phase A in ranges
    # and phase B computes each range's terms again: phase A twice.
    if layout != "params" and 8.0 * n * k > SAMPLES_A_BUDGET:
        t_mix += pairs * M.pair_time("phase_a", d, kshape)
    mq = d * (d + 1) / 2 + d + 1
    gemm_part = (2.0 * pairs * mq / M.gemm_a_rate(d, kshape)
                 + 2.0 * pairs * d * d / M.gemm_rate(d, kshape))
    syrk_part = (pairs * d * (d + 1) / M.syrk_rate(d, kshape)) if estimator == "hessian" else 0.0
    t_target = nl * (target_cost if target_cost is not None else M.gauss_target_time(d))
    t = {
        "sample": nl * M.sample_time(d),
        "target": t_target,
        "mixture": t_mix,
        "update": k * (M.estimator_time(estimator, d, S) + M.flow_time(flow, d)),
    }
    small = (4 if weight_flow else 3) * t_allreduce(40, P, M, M.gamma_sum)
    if layout == "params":
        comm = {"allgather": t_allgather(8.0 * K * (d + d * d + 1), P, M),
                "allreduce_lse": 0.0, "reduce_scatter": 0.0, "small": small}
    else:
        rs_words = n * d + (K * d * d if estimator == "hessian" else 0)
        comm = {"allgather": t_allgather(8.0 * n * d, P, M),
                "allreduce_lse": t_allreduce(8.0 * n, P, M, M.gamma_lse, "allreduce_lse"),
                "reduce_scatter": t_reduce_scatter(8.0 * rs_words, P, M, M.gamma_sum),
                "small": small}
    if cores and P > cores:
        for x in t:
            t[x] *= P / cores
    t["comm"] = sum(comm.values())
    total = sum(t.values())
    return {"ranks": P, "K": K, "S": S, "d": d, "layout": layout, "total": total,
            "phases": t, "comm_detail": comm, "comm_fraction": t["comm"] / total if total else 0.0,
            "mixture_blas_fraction": (gemm_part + syrk_part) / t_mix if t_mix else 0.0}


def sweep(M, K, S, d, ranks, weak=False, **kw):
    """Predictions at each rank count: strong (K fixed) or weak (K = K * P particles, K
    per rank).  Speedup is the model's time for the same problem on one rank over its
    time on P ranks, efficiency = speedup / P: for a weak sweep, too, this is the true
    parallel efficiency of each problem (the model can predict the one-rank time of a
    problem far too large to run there)."""
    rows = []
    for P in ranks:
        KP = K * P if weak else K
        if KP < P:
            continue
        r = predict(M, KP, S, d, P, **kw)
        r["speedup"] = predict(M, KP, S, d, 1, **kw)["total"] / r["total"]
        r["efficiency"] = r["speedup"] / P
        rows.append(r)
    return rows


def first_below(rows, threshold=0.8):
    for r in rows:
        if r["efficiency"] < threshold:
            return r["ranks"]
    return None


def powers_of_two(lo, hi):
    out, p = [], 1
    while p <= hi:
        if p >= lo:
            out.append(p)
        p *= 2
    return out


def parse_ranks(text):
    if ":" in text:  # LO:HI = powers of two
        lo, hi = (int(x) for x in text.split(":"))
        return powers_of_two(lo, hi)
    return [int(x) for x in text.split(",") if x]


def fmt_s(x):
    if x >= 1:
        return f"{x:.3g} s"
    if x >= 1e-3:
        return f"{x * 1e3:.3g} ms"
    return f"{x * 1e6:.3g} us"


# ---- commands ------------------------------------------------------------------------------
def cmd_predict(a):
    M = Machine(a.calib, a.network)
    ranks = parse_ranks(a.ranks)
    kw = dict(estimator=a.estimator, flow=a.flow, weight_flow=a.weight_flow, target_cost=a.target_cost)
    layouts = ["current", "params"] if a.layout == "both" else [a.layout]
    results = {L: sweep(M, a.K, a.S, a.d, ranks, weak=a.weak, layout=L, **kw) for L in layouts}
    kind = f"weak, {a.K} particles per rank" if a.weak else f"strong, K = {a.K}"
    print(f"# gflowvi performance model: {kind}, S = {a.S}, d = {a.d}, {a.estimator} estimator, "
          f"{a.flow}")
    print(f"# compute constants: {M.cpu}, from {a.calib}; network: {M.network}")
    names = {"current": "samples all-gathered (gflowvi)", "params": "parameters all-gathered (alternative)"}
    for L in layouts:
        rows = results[L]
        print(f"\n## layout: {names[L]}")
        print(f"{'ranks':>6} {'K':>8} {'time/iter':>10} {'compute':>10} {'comm':>10} {'comm %':>7} "
              f"{'speedup':>9} {'effic.':>7}  comm: allgather / lse-allreduce / reduce-scatter / small")
        for r in rows:
            c = r["comm_detail"]
            comp = r["total"] - r["phases"]["comm"]
            print(f"{r['ranks']:>6} {r['K']:>8} {fmt_s(r['total']):>10} {fmt_s(comp):>10} "
                  f"{fmt_s(r['phases']['comm']):>10} {100 * r['comm_fraction']:>6.1f}% "
                  f"{r['speedup']:>9.1f} {r['efficiency']:>7.2f}  "
                  f"{fmt_s(c['allgather'])} / {fmt_s(c['allreduce_lse'])} / "
                  f"{fmt_s(c['reduce_scatter'])} / {fmt_s(c['small'])}")
        p80 = first_below(rows)
        print(f"efficiency below 80% from {p80} ranks" if p80 else
              f"efficiency stays at or above 80% up to {rows[-1]['ranks']} ranks" if rows else "no rows")
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["layout", "ranks", "particles", "samples", "dim", "seconds_per_iteration",
                        "sample_s", "target_s", "mixture_s", "update_s", "comm_s", "allgather_s",
                        "allreduce_lse_s", "reduce_scatter_s", "small_s", "comm_fraction",
                        "speedup", "efficiency", "network"])
            for L in layouts:
                for r in results[L]:
                    p, c = r["phases"], r["comm_detail"]
                    w.writerow([L, r["ranks"], r["K"], r["S"], r["d"], "%.6g" % r["total"],
                                *("%.6g" % p[x] for x in ("sample", "target", "mixture", "update", "comm")),
                                *("%.6g" % c[x] for x in ("allgather", "allreduce_lse", "reduce_scatter", "small")),
                                "%.4f" % r["comm_fraction"], "%.4g" % r["speedup"],
                                "%.4f" % r["efficiency"], M.network])
        print(f"\nwrote {a.csv}")
    if a.plot:
        plot_predictions(results, a, M)
        print(f"wrote {a.plot}")


def plot_predictions(results, a, M):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"current": ("C0", "samples all-gathered (gflowvi)"),
              "params": ("C1", "parameters all-gathered (alternative)")}
    for L, rows in results.items():
        col, label = styles[L]
        P = [r["ranks"] for r in rows]
        ax[0].loglog(P, [r["total"] for r in rows], "o-", color=col, label=label)
        ax[0].loglog(P, [r["phases"]["comm"] for r in rows], "s--", color=col, alpha=0.6,
                     label="  of which communication")
        ax[1].semilogx(P, [r["efficiency"] for r in rows], "o-", color=col, label=label)
    if results:
        rows = next(iter(results.values()))
        P = [r["ranks"] for r in rows]
        ideal = [r["total"] * r["efficiency"] for r in rows]  # the one-rank time / P
        ax[0].loglog(P, ideal, "k:", label="ideal")
    ax[1].axhline(0.8, color="gray", ls="--", lw=1, label="80%")
    ax[1].axhline(1.0, color="k", ls=":", lw=1)
    ax[1].set_ylim(0, 1.1)
    kind = f"weak ({a.K} particles/rank)" if a.weak else f"strong (K={a.K})"
    ax[0].set(xlabel="ranks", ylabel="seconds per iteration",
              title=f"model: {kind}, S={a.S}, d={a.d}")
    ax[1].set(xlabel="ranks", ylabel="parallel efficiency", title="model: efficiency")
    for x in ax:
        x.grid(True, which="both", alpha=0.3)
        x.legend(fontsize=8)
    fig.text(0.01, 0.01, f"compute: {M.cpu} (calibrated); network: {M.network}", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(a.plot, dpi=110)


def cmd_compare(a):
    M = Machine(a.calib, a.network)
    with open(a.table) as f:
        rows = list(csv.DictReader(f))
    print(f"# measured (from {a.table}) against the model ({M.cpu}; network: {M.network})")
    print(f"{'sweep':>6} {'ranks':>5} {'K':>5} {'S':>4} {'d':>4} {'measured':>10} {'model':>10} "
          f"{'ratio':>6}   phases measured/model: mixture  comm  update  sample+target")
    for r in rows:
        P, K, S, d = int(r["ranks"]), int(r["particles"]), int(r["samples"]), int(r["dim"])
        est = r.get("estimator") or "hessian"
        flow = r.get("flow") or "ngflow"
        tc = float(r["target_s"]) / (math.ceil(K / P) * S) if a.measured_target and r.get("target_s") else None
        m = predict(M, K, S, d, P, estimator=est, flow=flow, target_cost=tc,
                    cores=int(r["cores"]) if r.get("cores") else None)
        meas = float(r["seconds_per_iteration"])
        ph = m["phases"]

        def ratio(x, y):
            return f"{float(x) / y:5.2f}" if y > 0 else "  -  "
        over = " (oversubscribed)" if str(r.get("oversubscribed")) == "1" else ""
        print(f"{r.get('sweep', ''):>6} {P:>5} {K:>5} {S:>4} {d:>4} {fmt_s(meas):>10} {fmt_s(m['total']):>10} "
              f"{meas / m['total']:6.2f}   {ratio(r['mixture_s'], ph['mixture'])}  "
              f"{ratio(r['comm_s'], ph['comm'])}  {ratio(r['update_s'], ph['update'])}  "
              f"{ratio(float(r['sample_s']) + float(r['target_s']), ph['sample'] + ph['target'])}{over}")


def cmd_flops(a):
    for layout in ("current", "params"):
        f, w = flops(a.K, a.S, a.d, a.P, a.estimator, layout)
        print(f"layout {layout}, K={a.K} S={a.S} d={a.d} P={a.P} (slowest rank):")
        for k, v in f.items():
            print(f"  {k:22s} {v:14.4g} flops")
        for k, v in w.items():
            print(f"  {k:22s} {v:14.4g} doubles ({v * 8 / 1e6:.3g} MB)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, calib=True):
        if calib:
            p.add_argument("--calib", default="build/calibration.json",
                           help="calibration file of build/bin/calibrate (default %(default)s)")
            p.add_argument("--network", default="calibrated",
                           help="calibrated (default), ib (alpha 2 us, 10 GB/s), or ALPHA,BETA in s and s/byte")
        p.add_argument("--estimator", default="hessian", choices=["hessian", "stein"])
        p.add_argument("--flow", default="ngflow", choices=["ngflow", "gflow"])

    p = sub.add_parser("predict", help="time per iteration at each rank count")
    common(p)
    p.add_argument("--K", type=int, required=True, help="particles (per rank with --weak)")
    p.add_argument("--S", type=int, default=10)
    p.add_argument("--d", type=int, required=True)
    p.add_argument("--ranks", default="1:4096", help="comma list, or LO:HI for powers of two (default 1:4096)")
    p.add_argument("--weak", action="store_true", help="K particles per rank")
    p.add_argument("--weight-flow", action="store_true")
    p.add_argument("--target-cost", type=float, help="seconds per target evaluation (default: the gauss target's)")
    p.add_argument("--layout", default="both", choices=["current", "params", "both"])
    p.add_argument("--csv")
    p.add_argument("--plot")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("compare", help="model next to measured rows of a scaling CSV")
    common(p)
    p.add_argument("table")
    p.add_argument("--measured-target", action="store_true",
                   help="take the target's cost from the measured row (for targets other than gauss)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("flops", help="operation and word counts")
    common(p, calib=False)
    p.add_argument("--K", type=int, required=True)
    p.add_argument("--S", type=int, default=10)
    p.add_argument("--d", type=int, required=True)
    p.add_argument("--P", type=int, default=1)
    p.set_defaults(func=cmd_flops)

    a = ap.parse_args(argv)
    a.func(a)


if __name__ == "__main__":
    main()
