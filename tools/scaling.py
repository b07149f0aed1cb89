#!/usr/bin/python3
"""scaling.py - strong and weak scaling sweeps of gflowvi: one CSV table and plots.

  tools/scaling.py run [--spec SPEC.json] [--out DIR] [--build DIR] [--repeat N]
                       [--calib FILE] [--wait-quiet SECONDS]
      runs both sweeps through tools/mpirun.sh, writes DIR/scaling.csv and DIR/*.png
      (default DIR: scaling-out)
  tools/scaling.py row --sweep strong|weak [--header] RUN_DIR
      prints the CSV row of one finished run (its summary.json); the Slurm jobs in jobs/
      append these to their table
  tools/scaling.py finish TABLE.csv [--out DIR] [--calib FILE] [--network N]
      fills the speedup and efficiency columns (and the model's prediction, with --calib)
      and draws the plots; the Slurm jobs call it at the end
  tools/scaling.py run --simulate [--ranks 16,64,256,1024] [--sweeps strong,weak]
                       [--layout L1,L2] [--sample N] [--platform FILE] [--calib FILE] ...
      the same sweeps on a simulated cluster (docs/cluster.md): the SMPI build of gflowvi
      (make smpi: build-smpi/bin/gflowvi) under SimGrid's smpirun on tools/smpi/cluster.xml;
      --sample N (default 4) runs in timing-only mode (GFV_SMPI_SAMPLE=N), 0 runs the real
      fit; --layout passes --layout=L to gflowvi, one sweep per layout; with --calib the
      table gets the performance model's prediction for the platform's network, and the
      run adds model_vs_simulation.png and table.md

The spec is a small JSON file; anything left out takes the default below (per-sweep keys
override the shared ones):

  {"target": "gauss", "dim": 8, "samples": 10, "iters": 300, "extra": [],
   "strong": {"ranks": [1, 2, 3, 4], "particles": 64},
   "weak":   {"ranks": [1, 2, 3, 4], "particles_per_rank": 16}}

With --simulate the defaults are the cluster-sized sweeps: target gauss, d = 16, S = 10,
1 iteration, strong K = 16384 and weak 64 particles per rank, on 16, 64, 256, 1024 ranks.

A strong sweep keeps K fixed; a weak sweep keeps K / P fixed.  The mixture terms cost
O(K^2 S d^2) in all, so with K / P fixed the work per rank still grows like P: the weak
sweep's speedup and efficiency count work as K^2 S (mixture pairs, the dominant term):
speedup(P) = [W(P) / T(P)] / [W(P0) / T(P0)] * P0 and efficiency = speedup / P, where T is
the time per iteration and P0 the sweep's first rank count.  For a strong sweep that is the
usual T(P0) P0 / T(P).

Columns of the table (one row per run): sweep, ranks, cores (of the machine), oversubscribed
(1 when ranks > cores), particles, samples, dim, target, flow, estimator, iterations,
seconds_per_iteration (the iteration loop only, from summary.json), then per iteration and
averaged over ranks the phase times sample_s, target_s, mixture_s, comm_s (MPI calls,
including waiting for slower ranks), update_s, and comm_min_s / comm_max_s over ranks,
bytes_per_iteration (sent by one rank, mean over ranks), busy_cores (CPU used by other
processes just before the run: above 0.3 the timing is suspect), speedup, efficiency,
model_s (the performance model's prediction, with --calib), cpu; then layout (the --layout
given, or the run's own), simulated (the platform file of a simulated run, else empty),
sampled (its GFV_SMPI_SAMPLE, 0 for a real fit), wall_s (host seconds of a simulated run),
rejected_steps, model_mixture_s and model_comm_s (the model's two main phases).  In a
simulated row the times are simulated seconds, cores = ranks (one core per simulated node),
and the phase times are per estimate (the run does iterations + 1 of them, the first before
the loop: with few iterations that matters), while seconds_per_iteration is the loop's.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "smpi"))
import simulate  # noqa: E402  (tools/smpi/simulate.py)

DEFAULT_SPEC = {
    "target": "gauss", "dim": 8, "samples": 10, "iters": 300, "extra": [],
    "strong": {"ranks": [1, 2, 3, 4], "particles": 64},
    "weak": {"ranks": [1, 2, 3, 4], "particles_per_rank": 16},
}

SIM_DEFAULT_SPEC = {
    # Timing-only runs repeat one identical iteration: one is enough (and at 1,024 ranks one
    # estimate costs minutes of simulation: two collectives of P^2 messages each).
    "target": "gauss", "dim": 16, "samples": 10, "iters": 1, "extra": [],
    "strong": {"ranks": [16, 64, 256, 1024], "particles": 16384},
    "weak": {"ranks": [16, 64, 256, 1024], "particles_per_rank": 64},
}

PHASES = ["sample", "target", "mixture", "comm", "update"]
COLUMNS = (["sweep", "ranks", "cores", "oversubscribed", "particles", "samples", "dim", "target",
            "flow", "estimator", "iterations", "seconds_per_iteration"]
           + [p + "_s" for p in PHASES]
           + ["comm_min_s", "comm_max_s", "bytes_per_iteration", "busy_cores", "speedup",
              "efficiency", "model_s", "cpu", "layout", "simulated", "sampled", "wall_s",
              "rejected_steps", "model_mixture_s", "model_comm_s"])


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v), idle


def busy_cores(interval=0.5):
    """Cores' worth of CPU used (by anything) over the next `interval` seconds."""
    try:
        t0, i0 = _cpu_times()
        time.sleep(interval)
        t1, i1 = _cpu_times()
    except OSError:
        return float("nan")
    total = t1 - t0
    return (os.cpu_count() or 1) * (1 - (i1 - i0) / total) if total > 0 else 0.0


def row_from_summary(run_dir, sweep, busy=float("nan"), sim=None, layout=""):
    """One table row from RUN_DIR/summary.json; sim: (platform info, sample, host seconds)
    of a simulated run."""
    with open(os.path.join(run_dir, "summary.json")) as f:
        s = json.load(f)
    it = max(int(s["iterations"]), 1)
    # A simulated run has few iterations: its phases are divided by the estimates it made.
    per = it + 1 if sim else it
    tm = s.get("timers", {})
    cores = int(s["ranks"]) if sim else os.cpu_count() or 1
    r = {"sweep": sweep, "ranks": s["ranks"], "cores": cores,
         "oversubscribed": int(s["ranks"] > cores), "particles": s["particles"],
         "samples": s["samples"], "dim": s["dim"], "target": s["target"], "flow": s["flow"],
         "estimator": s["estimator"], "iterations": s["iterations"],
         "seconds_per_iteration": "%.6g" % (s["seconds"] / it)}
    for p in PHASES:
        r[p + "_s"] = "%.6g" % (tm[p]["mean"] / per) if p in tm else ""
    if "comm" in tm:
        r["comm_min_s"] = "%.6g" % (tm["comm"]["min"] / per)
        r["comm_max_s"] = "%.6g" % (tm["comm"]["max"] / per)
    b = tm.get("bytes_sent_per_iteration")
    r["bytes_per_iteration"] = "%.6g" % b["mean"] if b else ""
    r["busy_cores"] = "" if busy != busy else "%.2f" % busy
    r["cpu"] = cpu_name()
    r["layout"] = layout or str(s.get("layout") or s.get("config", {}).get("layout", ""))
    r["rejected_steps"] = s.get("rejected_steps", "")
    if sim:
        info, sample, wall = sim
        r["cpu"] = "simulated: " + simulate.describe(info) + "; host " + cpu_name()
        r["simulated"], r["sampled"], r["wall_s"] = info["name"], sample, "%.1f" % wall
    return r


def read_table(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_table(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in COLUMNS})
    os.replace(tmp, path)


def model_layout(r):
    """The performance model's name for a row's layout."""
    return "params" if r.get("layout") == "params" else "current"


def fill_derived(rows, calib=None, network="calibrated"):
    """Speedup and efficiency per sweep and layout (against its first rank count), and the
    model (on the given network; a simulated row's cores are its ranks)."""
    machine = None
    if calib:
        sys.path.insert(0, HERE)
        import perfmodel
        machine = perfmodel.Machine(calib, network)
    for sweep in sorted({(r["sweep"], r.get("layout", "")) for r in rows}):
        rs = sorted((r for r in rows if (r["sweep"], r.get("layout", "")) == sweep),
                    key=lambda r: int(r["ranks"]))
        base = rs[0]
        P0, K0, T0 = int(base["ranks"]), int(base["particles"]), float(base["seconds_per_iteration"])
        for r in rs:
            P, K, T = int(r["ranks"]), int(r["particles"]), float(r["seconds_per_iteration"])
            speedup = (K / K0) ** 2 * T0 / T * P0
            r["speedup"] = "%.4g" % speedup
            r["efficiency"] = "%.4g" % (speedup / P)
    if machine:
        for r in rows:
            m = perfmodel.predict(machine, int(r["particles"]), int(r["samples"]), int(r["dim"]),
                                  int(r["ranks"]), estimator=r.get("estimator") or "hessian",
                                  flow=r.get("flow") or "ngflow", layout=model_layout(r),
                                  cores=int(r["cores"]) if r.get("cores") else None)
            r["model_s"] = "%.6g" % m["total"]
            r["model_mixture_s"] = "%.6g" % m["phases"]["mixture"]
            r["model_comm_s"] = "%.6g" % m["phases"]["comm"]
    return rows


# ---- plots -------------------------------------------------------------------------------
def save_figure(fig, out_dir, name):
    """Lays out, writes OUT_DIR/NAME at the resolution of every figure here, closes; returns
    the path."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    f = os.path.join(out_dir, name)
    fig.savefig(f, dpi=110)
    plt.close(fig)
    return f


def plot(rows, out_dir, title_extra="", logx=False):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("scaling.py: matplotlib not available; no plots", file=sys.stderr)
        return []
    sweeps = [s for s in ("strong", "weak") if any(r["sweep"] == s for r in rows)]
    sweeps += sorted({r["sweep"] for r in rows} - set(sweeps))
    cpu = rows[0].get("cpu", "") if rows else ""
    cores = rows[0].get("cores", "") if rows else ""
    machine = f"{cpu}, {cores} cores{title_extra}"
    if rows and rows[0].get("simulated"):
        machine = f"simulated cluster {rows[0]['simulated']} (docs/cluster.md){title_extra}"
    files = []

    def series(sweep):
        rs = sorted((r for r in rows if r["sweep"] == sweep), key=lambda r: int(r["ranks"]))
        P = [int(r["ranks"]) for r in rs]
        return rs, P

    def label(sweep, rs):
        if sweep == "weak":
            return f"weak ({int(rs[0]['particles']) // int(rs[0]['ranks'])} particles/rank)"
        return f"{sweep} (K={rs[0]['particles']})"

    def mark_oversubscribed(ax, P, y, color):
        xs = [p for p, r in zip(P, y) if r[1]]
        ys = [r[0] for r in y if r[1]]
        if xs:
            ax.plot(xs, ys, "o", mfc="white", color=color, ms=9, zorder=5)

    # 1. time per iteration, measured, ideal and (if present) the model.
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.2 * len(sweeps), 4.2), squeeze=False)
    for ax, sweep in zip(axes[0], sweeps):
        rs, P = series(sweep)
        T = [float(r["seconds_per_iteration"]) for r in rs]
        K = [int(r["particles"]) for r in rs]
        ideal = [T[0] * P[0] / p * (k / K[0]) ** 2 for p, k in zip(P, K)]
        ax.plot(P, T, "o-", color="C0", label="measured")
        mark_oversubscribed(ax, P, [(t, str(r["oversubscribed"]) == "1") for t, r in zip(T, rs)], "C0")
        ax.plot(P, ideal, "k:", label="ideal (work / ranks)")
        if all(r.get("model_s") for r in rs):
            ax.plot(P, [float(r["model_s"]) for r in rs], "s--", color="C2", label="model")
        ax.set(xlabel="MPI ranks", ylabel="seconds per iteration", title=label(sweep, rs))
        if logx:
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
        ax.set_xticks(P, [str(p) for p in P])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"gflowvi time per iteration ({rs[0]['target']}, S={rs[0]['samples']}, "
                 f"d={rs[0]['dim']}); {machine}; hollow: oversubscribed", fontsize=9)
    files.append(save_figure(fig, out_dir, "time_per_iteration.png"))

    # 2. speedup and efficiency against ideal.
    fig, ax = plt.subplots(1, 2, figsize=(10.5, 4.2))
    allP = sorted({int(r["ranks"]) for r in rows})
    for i, sweep in enumerate(sweeps):
        rs, P = series(sweep)
        col = f"C{i}"
        sp = [float(r["speedup"]) for r in rs]
        ef = [float(r["efficiency"]) for r in rs]
        ax[0].plot(P, sp, "o-", color=col, label=label(sweep, rs))
        ax[1].plot(P, ef, "o-", color=col, label=label(sweep, rs))
        over = [str(r["oversubscribed"]) == "1" for r in rs]
        mark_oversubscribed(ax[0], P, list(zip(sp, over)), col)
        mark_oversubscribed(ax[1], P, list(zip(ef, over)), col)
    ax[0].plot(allP, allP, "k:", label="ideal")
    ax[0].set(xlabel="MPI ranks", ylabel="speedup", title="speedup (work-scaled for weak)")
    ax[1].axhline(1.0, color="k", ls=":", lw=1, label="ideal")
    ax[1].axhline(0.8, color="gray", ls="--", lw=1, label="80%")
    ax[1].set(xlabel="MPI ranks", ylabel="parallel efficiency", title="parallel efficiency",
              ylim=(0, 1.2))
    for x in ax:
        if logx:
            x.set_xscale("log", base=2)
        x.set_xticks(allP, [str(p) for p in allP])
        x.grid(alpha=0.3)
        x.legend(fontsize=8)
    if logx:
        ax[0].set_yscale("log", base=2)
    fig.suptitle(f"gflowvi scaling; {machine}; hollow: oversubscribed", fontsize=9)
    files.append(save_figure(fig, out_dir, "speedup_efficiency.png"))

    # 3. phase breakdown: stacked bars per rank count, per sweep.
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.2 * len(sweeps), 4.2), squeeze=False)
    for ax, sweep in zip(axes[0], sweeps):
        rs, P = series(sweep)
        x = list(range(len(P)))
        bottom = [0.0] * len(P)
        for j, p in enumerate(PHASES):
            v = [float(r[p + "_s"] or 0) * 1e3 for r in rs]
            ax.bar(x, v, bottom=bottom, color=f"C{j}", label=p)
            bottom = [b + y for b, y in zip(bottom, v)]
        ax.plot(x, [float(r["seconds_per_iteration"]) * 1e3 for r in rs], "k_", ms=20, mew=2,
                label="time per iteration")
        ax.set_xticks(x, [str(p) for p in P])
        ax.set(xlabel="MPI ranks", ylabel="ms per iteration (mean over ranks)",
               title=f"phases: {label(sweep, rs)}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"gflowvi phase breakdown (comm includes waiting for slower ranks); {machine}",
                 fontsize=9)
    files.append(save_figure(fig, out_dir, "phases.png"))
    return files


# ---- commands ------------------------------------------------------------------------------
def load_spec(path, default=DEFAULT_SPEC):
    spec = json.loads(json.dumps(default))
    if path:
        with open(path) as f:
            user = json.load(f)
        for k, v in user.items():
            if isinstance(v, dict) and isinstance(spec.get(k), dict):
                spec[k].update(v)
            else:
                spec[k] = v
    return spec


def sweep_runs(spec, name):
    """(ranks, K, S, d, iters, target, extra) for each run of a sweep."""
    sw = spec.get(name)
    if not sw:
        return []
    get = lambda k: sw.get(k, spec.get(k))
    out = []
    for P in sw["ranks"]:
        K = sw["particles"] if name == "strong" else sw["particles_per_rank"] * P
        out.append((P, K, get("samples"), get("dim"), get("iters"), get("target"), get("extra") or []))
    return out


def model_vs_simulation(rows, out_dir, network):
    """Simulated time per iteration and efficiency next to the model's, per sweep: the
    model's efficiency against the same first rank count, and against one rank (which the
    model can predict for any problem)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = sorted({(r["sweep"], r.get("layout", "")) for r in rows},
                    key=lambda g: (g[0] != "strong", g))
    fig, axes = plt.subplots(2, len(groups), figsize=(5.4 * len(groups), 8), squeeze=False)
    for i, g in enumerate(groups):
        rs = sorted((r for r in rows if (r["sweep"], r.get("layout", "")) == g),
                    key=lambda r: int(r["ranks"]))
        P = [int(r["ranks"]) for r in rs]
        T = [float(r["seconds_per_iteration"]) for r in rs]
        M = [float(r["model_s"]) for r in rs]
        name = f"{g[0]}" + (f" [{g[1]}]" if g[1] else "")
        name += f" (K={rs[0]['particles']})" if g[0] == "strong" else \
            f" ({int(rs[0]['particles']) // P[0]} particles/rank)"
        ax = axes[0][i]
        ax.loglog(P, T, "o-", label="simulated (SMPI)")
        ax.loglog(P, M, "s--", label="model")
        ax.loglog(P, [float(r["mixture_s"]) for r in rs], "o:", color="C0", alpha=0.5,
                  label="simulated: mixture phase")
        ax.loglog(P, [float(r["comm_s"]) for r in rs], "^:", color="C0", alpha=0.5,
                  label="simulated: communication")
        ax.loglog(P, [float(r["model_comm_s"]) for r in rs], "^:", color="C1", alpha=0.5,
                  label="model: communication")
        ax.set(title=name, xlabel="ranks", ylabel="seconds per iteration")
        ax = axes[1][i]
        ax.semilogx(P, [float(r["efficiency"]) for r in rs], "o-", label="simulated")
        ax.semilogx(P, [M[0] * P[0] / (m * p) * (int(r["particles"]) / int(rs[0]["particles"])) ** 2
                        for m, p, r in zip(M, P, rs)], "s--", label=f"model (vs {P[0]} ranks)")
        ax.axhline(0.8, color="gray", ls="--", lw=1)
        top = max([1.15] + [1.05 * float(r["efficiency"]) for r in rs])
        ax.set(xlabel="ranks", ylabel=f"efficiency (vs {P[0]} ranks)", ylim=(0, top))
        for x in axes[0][i], ax:
            x.set_xscale("log", base=2)
            x.set_xticks(P, [str(p) for p in P])
            x.grid(True, which="both", alpha=0.3)
            x.legend(fontsize=7)
    fig.suptitle(f"gflowvi on a simulated cluster: SMPI against tools/perfmodel.py\n"
                 f"(model network: alpha, beta = {network})", fontsize=9)
    return save_figure(fig, out_dir, "model_vs_simulation.png")


def markdown_table(rows):
    """The simulated table in the form docs/cluster.md quotes: simulated and model side by
    side; efficiencies against each sweep's first rank count (the model's too)."""
    def ms(r, c):
        v = r.get(c)
        if v in (None, ""):
            return ""
        v = 1e3 * float(v)
        return "%.0f" % v if v >= 100 else "%.3g" % v
    head = ("| sweep | layout | ranks | K | ms per iteration | efficiency | model ms | model "
            "efficiency | mixture ms | model mixture ms | comm ms (min-max over ranks) | "
            "model comm ms | host s |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    first = {}
    for r in sorted(rows, key=lambda r: (r["sweep"] != "strong", r["sweep"], r.get("layout", ""),
                                         int(r["ranks"]))):
        g = (r["sweep"], r.get("layout", ""))
        m_eff = ""
        if r.get("model_s"):
            P, K, M = int(r["ranks"]), int(r["particles"]), float(r["model_s"])
            P0, K0, M0 = first.setdefault(g, (P, K, M))
            m_eff = "%.3f" % ((K / K0) ** 2 * M0 * P0 / (M * P))
        out.append(f"| {r['sweep']} | {r.get('layout') or 'default'} | {r['ranks']} | "
                   f"{r['particles']} | {ms(r, 'seconds_per_iteration')} | "
                   f"{float(r['efficiency']):.3f} | {ms(r, 'model_s')} | {m_eff} | "
                   f"{ms(r, 'mixture_s')} | {ms(r, 'model_mixture_s')} | {ms(r, 'comm_s')} "
                   f"({ms(r, 'comm_min_s')}-{ms(r, 'comm_max_s')}) | {ms(r, 'model_comm_s')} | "
                   f"{r.get('wall_s', '')} |")
    return "\n".join(out) + "\n"


def finish_simulated(rows, table, out, calib, network):
    """Derived columns, the table, table.md and the plots (log axes) of simulated rows."""
    fill_derived(rows, calib, network)
    write_table(table, rows)
    print(f"wrote {table}")
    layouts = {r.get("layout", "") for r in rows}
    plot_rows = [dict(r, sweep=f"{r['sweep']} [{r['layout']}]") for r in rows] \
        if len(layouts) > 1 else rows
    for f in plot(plot_rows, out, "", logx=True):
        print(f"wrote {f}")
    if calib:
        print(f"wrote {model_vs_simulation(rows, out, network)}")
    md = os.path.join(out, "table.md")
    with open(md, "w") as f:
        f.write(markdown_table(rows))
    print(f"wrote {md}")


def simulated_runs(a, spec):
    """--simulate: every (layout, sweep, rank count) under smpirun; returns the rows."""
    prog = os.path.join(a.build, "bin", "gflowvi")
    if not os.access(prog, os.X_OK):
        sys.exit(f"scaling.py: no program at {prog}; run make smpi first")
    info = simulate.platform_info(a.platform)
    rows = []
    for layout in a.layout.split(",") if a.layout else [""]:
        for name in a.sweeps.split(","):
            for P, K, S, d, iters, target, extra in sweep_runs(spec, name):
                run_dir = os.path.join(a.out, "runs", f"{name}{'-' + layout if layout else ''}-p{P}")
                args = [f"--target={target}", f"--dim={d}", f"--particles={K}", f"--samples={S}",
                        f"--iters={iters}", f"--out={run_dir}", "--quiet", "--progress-every=0",
                        "--eval-samples=1000", "--out-samples=10", *extra]
                if layout:
                    args.append(f"--layout={layout}")
                busy = busy_cores()
                rc, wall, log = simulate.run(prog, P, args, run_dir, a.platform, a.sample, a.timeout)
                if rc != 0:
                    with open(log) as f:
                        tail = f.read()[-2000:]
                    sys.exit(f"scaling.py: simulated run failed (status {rc}) after {wall:.0f} s: "
                             f"{' '.join(simulate.command(prog, P, a.platform, 'HOSTFILE', args))}\n{tail}")
                r = row_from_summary(run_dir, name, busy, (info, a.sample, wall), layout)
                print(f"{name:6s} {layout or '':8s} P={P:<5d} K={K:<6d} S={S} d={d}: "
                      f"{float(r['seconds_per_iteration']) * 1e3:10.3f} simulated ms/iteration "
                      f"(comm {float(r['comm_s']) * 1e3:.3f} ms; {wall:.0f} s on this machine, "
                      f"other load {busy:.2f} cores)", flush=True)
                rows.append(r)
    return rows, simulate.model_network(info)


def cmd_run(a):
    if a.simulate:
        spec = load_spec(a.spec, SIM_DEFAULT_SPEC)
        for name in ("strong", "weak"):
            if a.ranks and spec.get(name):
                spec[name]["ranks"] = [int(x) for x in a.ranks.split(",")]
        if a.build is None:
            a.build = os.path.join(ROOT, "build-smpi")
        os.makedirs(a.out, exist_ok=True)
        rows, network = simulated_runs(a, spec)
        finish_simulated(rows, os.path.join(a.out, "scaling.csv"), a.out, a.calib,
                         a.network or network)
        return
    if a.build is None:
        a.build = os.path.join(ROOT, "build")
    spec = load_spec(a.spec)
    os.makedirs(a.out, exist_ok=True)
    prog = os.path.join(a.build, "bin", "gflowvi")
    if not os.access(prog, os.X_OK):
        sys.exit(f"scaling.py: no program at {prog}; run make first")
    mpirun = os.path.join(ROOT, "tools", "mpirun.sh")
    rows = []
    for name in ("strong", "weak"):
        for P, K, S, d, iters, target, extra in sweep_runs(spec, name):
            best = None
            for rep in range(a.repeat):
                run_dir = os.path.join(a.out, "runs", f"{name}-p{P}-r{rep}")
                busy = busy_cores()
                if a.wait_quiet > 0:
                    end = time.time() + a.wait_quiet
                    while busy > 0.3 and time.time() < end:
                        time.sleep(2)
                        busy = busy_cores()
                cmd = [mpirun, str(P), prog, f"--target={target}", f"--dim={d}",
                       f"--particles={K}", f"--samples={S}", f"--iters={iters}", f"--out={run_dir}",
                       "--quiet", "--progress-every=0", f"--eval-samples={max(K, 1000)}",
                       "--out-samples=10", *extra]
                res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                if res.returncode != 0:
                    sys.exit(f"scaling.py: run failed (status {res.returncode}): {' '.join(cmd)}\n"
                             f"{res.stdout[-2000:]}")
                r = row_from_summary(run_dir, name, busy)
                t = float(r["seconds_per_iteration"])
                print(f"{name:6s} P={P:<3d} K={K:<5d} S={S} d={d}: {t * 1e3:9.3f} ms/iteration"
                      f"  (comm {float(r['comm_s']) * 1e3:.3f} ms, other load {busy:.2f} cores)",
                      flush=True)
                if best is None or t < float(best["seconds_per_iteration"]):
                    best = r
            rows.append(best)
    table = os.path.join(a.out, "scaling.csv")
    fill_derived(rows, a.calib, a.network or "calibrated")
    write_table(table, rows)
    print(f"wrote {table}")
    for f in plot(rows, a.out, f"; best of {a.repeat}" if a.repeat > 1 else ""):
        print(f"wrote {f}")


def cmd_row(a):
    busy = float("nan")
    w = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    if a.header:
        w.writeheader()
    if a.run_dir:
        r = row_from_summary(a.run_dir, a.sweep, busy)
        w.writerow({c: r.get(c, "") for c in COLUMNS})


def cmd_finish(a):
    rows = read_table(a.table)
    if not rows:
        sys.exit(f"scaling.py: {a.table} has no rows")
    out = a.out or os.path.dirname(os.path.abspath(a.table))
    if rows[0].get("simulated"):  # a table of tools/scaling.py run --simulate
        os.makedirs(out, exist_ok=True)
        platform = os.path.join(simulate.HERE, rows[0]["simulated"])
        network = a.network or simulate.model_network(simulate.platform_info(platform))
        finish_simulated(rows, a.table, out, a.calib, network)
        return
    fill_derived(rows, a.calib, a.network or "calibrated")
    write_table(a.table, rows)
    os.makedirs(out, exist_ok=True)
    print(f"updated {a.table}")
    for f in plot(rows, out):
        print(f"wrote {f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="run the sweeps, write the table and plots")
    p.add_argument("--spec", help="JSON spec (see --help of the module)")
    p.add_argument("--out", default="scaling-out")
    p.add_argument("--build", help="build directory (default build, or build-smpi with --simulate)")
    p.add_argument("--repeat", type=int, default=1, help="runs per point; the fastest is kept")
    p.add_argument("--calib", help="calibration file: adds the model's prediction")
    p.add_argument("--network", help="the model's network (tools/perfmodel.py --network); "
                   "default: calibrated, or the platform's with --simulate")
    p.add_argument("--wait-quiet", type=float, default=0,
                   help="wait up to this many seconds for other processes to leave the CPUs")
    p.add_argument("--simulate", action="store_true",
                   help="run on SimGrid's simulated cluster (docs/cluster.md)")
    p.add_argument("--platform", default=simulate.DEFAULT_PLATFORM,
                   help="--simulate: SimGrid platform file (default %(default)s)")
    p.add_argument("--ranks", help="--simulate: rank counts of both sweeps, e.g. 16,64,256,1024")
    p.add_argument("--sweeps", default="strong,weak", help="--simulate: strong, weak or both")
    p.add_argument("--layout", default="",
                   help="--simulate: comma list of gflowvi --layout values, one sweep each "
                        "(default: gflowvi's own layout, no --layout passed)")
    p.add_argument("--sample", type=int, default=4,
                   help="--simulate: blocks SMPI benchmarks per mixture phase (GFV_SMPI_SAMPLE); "
                        "0 = the real fit, every block run (default %(default)s)")
    p.add_argument("--timeout", type=float, default=3600,
                   help="--simulate: seconds allowed per simulated run (default %(default)s)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("row", help="the CSV row of one finished run")
    p.add_argument("--sweep", default="strong")
    p.add_argument("--header", action="store_true")
    p.add_argument("run_dir", nargs="?")
    p.set_defaults(func=cmd_row)
    p = sub.add_parser("finish", help="speedup/efficiency columns and plots for a table")
    p.add_argument("table")
    p.add_argument("--out")
    p.add_argument("--calib")
    p.add_argument("--network", help="the model's network (tools/perfmodel.py --network)")
    p.set_defaults(func=cmd_finish)
    a = ap.parse_args(argv)
    a.func(a)


if __name__ == "__main__":
    main()
