#!/usr/bin/python3
"""scaling.py - strong and weak scaling sweeps of gflowvi: one CSV table and plots.

  tools/scaling.py run [--spec SPEC.json] [--out DIR] [--build DIR] [--repeat N]
                       [--calib FILE] [--wait-quiet SECONDS]
      runs both sweeps through tools/mpirun.sh, writes DIR/scaling.csv and DIR/*.png
      (default DIR: scaling-out)
  tools/scaling.py row --sweep strong|weak [--header] RUN_DIR
      prints the CSV row of one finished run (its summary.json); the Slurm jobs in jobs/
      append these to their table
  tools/scaling.py finish TABLE.csv [--out DIR] [--calib FILE]
      fills the speedup and efficiency columns (and the model's prediction, with --calib)
      and draws the plots; the Slurm jobs call it at the end

The spec is a small JSON file; anything left out takes the default below (per-sweep keys
override the shared ones):

  {"target": "gauss", "dim": 8, "samples": 10, "iters": 300, "extra": [],
   "strong": {"ranks": [1, 2, 3, 4], "particles": 64},
   "weak":   {"ranks": [1, 2, 3, 4], "particles_per_rank": 16}}

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
model_s (the performance model's prediction, with --calib), cpu.
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

DEFAULT_SPEC = {
    "target": "gauss", "dim": 8, "samples": 10, "iters": 300, "extra": [],
    "strong": {"ranks": [1, 2, 3, 4], "particles": 64},
    "weak": {"ranks": [1, 2, 3, 4], "particles_per_rank": 16},
}

PHASES = ["sample", "target", "mixture", "comm", "update"]
COLUMNS = (["sweep", "ranks", "cores", "oversubscribed", "particles", "samples", "dim", "target",
            "flow", "estimator", "iterations", "seconds_per_iteration"]
           + [p + "_s" for p in PHASES]
           + ["comm_min_s", "comm_max_s", "bytes_per_iteration", "busy_cores", "speedup",
              "efficiency", "model_s", "cpu"])


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


def row_from_summary(run_dir, sweep, busy=float("nan")):
    """One table row from RUN_DIR/summary.json."""
    with open(os.path.join(run_dir, "summary.json")) as f:
        s = json.load(f)
    it = max(int(s["iterations"]), 1)
    tm = s.get("timers", {})
    cores = os.cpu_count() or 1
    r = {"sweep": sweep, "ranks": s["ranks"], "cores": cores,
         "oversubscribed": int(s["ranks"] > cores), "particles": s["particles"],
         "samples": s["samples"], "dim": s["dim"], "target": s["target"], "flow": s["flow"],
         "estimator": s["estimator"], "iterations": s["iterations"],
         "seconds_per_iteration": "%.6g" % (s["seconds"] / it)}
    for p in PHASES:
        r[p + "_s"] = "%.6g" % (tm[p]["mean"] / it) if p in tm else ""
    if "comm" in tm:
        r["comm_min_s"] = "%.6g" % (tm["comm"]["min"] / it)
        r["comm_max_s"] = "%.6g" % (tm["comm"]["max"] / it)
    b = tm.get("bytes_sent_per_iteration")
    r["bytes_per_iteration"] = "%.6g" % b["mean"] if b else ""
    r["busy_cores"] = "" if busy != busy else "%.2f" % busy
    r["cpu"] = cpu_name()
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


def fill_derived(rows, calib=None):
    """Speedup and efficiency per sweep (against its first rank count), and the model."""
    machine = None
    if calib:
        sys.path.insert(0, HERE)
        import perfmodel
        machine = perfmodel.Machine(calib)
    for sweep in sorted({r["sweep"] for r in rows}):
        rs = sorted((r for r in rows if r["sweep"] == sweep), key=lambda r: int(r["ranks"]))
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
                                  flow=r.get("flow") or "ngflow",
                                  cores=int(r["cores"]) if r.get("cores") else None)
            r["model_s"] = "%.6g" % m["total"]
    return rows


# ---- plots -------------------------------------------------------------------------------
def plot(rows, out_dir, title_extra=""):
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
        ax.set_xticks(P)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"gflowvi time per iteration ({rs[0]['target']}, S={rs[0]['samples']}, "
                 f"d={rs[0]['dim']}); {machine}; hollow: oversubscribed", fontsize=9)
    fig.tight_layout()
    f = os.path.join(out_dir, "time_per_iteration.png")
    fig.savefig(f, dpi=110)
    plt.close(fig)
    files.append(f)

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
        x.set_xticks(allP)
        x.grid(alpha=0.3)
        x.legend(fontsize=8)
    fig.suptitle(f"gflowvi scaling; {machine}; hollow: oversubscribed", fontsize=9)
    fig.tight_layout()
    f = os.path.join(out_dir, "speedup_efficiency.png")
    fig.savefig(f, dpi=110)
    plt.close(fig)
    files.append(f)

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
    fig.tight_layout()
    f = os.path.join(out_dir, "phases.png")
    fig.savefig(f, dpi=110)
    plt.close(fig)
    files.append(f)
    return files


# ---- commands ------------------------------------------------------------------------------
def load_spec(path):
    spec = json.loads(json.dumps(DEFAULT_SPEC))
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


def cmd_run(a):
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
    fill_derived(rows, a.calib)
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
    fill_derived(rows, a.calib)
    write_table(a.table, rows)
    out = a.out or os.path.dirname(os.path.abspath(a.table))
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
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--repeat", type=int, default=1, help="runs per point; the fastest is kept")
    p.add_argument("--calib", help="calibration file: adds the model's prediction")
    p.add_argument("--wait-quiet", type=float, default=0,
                   help="wait up to this many seconds for other processes to leave the CPUs")
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
    p.set_defaults(func=cmd_finish)
    a = ap.parse_args(argv)
    a.func(a)


if __name__ == "__main__":
    main()
