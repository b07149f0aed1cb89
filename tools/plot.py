#!/usr/bin/python3
"""plot.py OUTDIR - plots a gflowvi output directory.

Reads OUTDIR/summary.json, mixture.csv, trace.csv, samples.csv and (2-D targets)
density.csv, and writes:

  OUTDIR/density.png  the target density (filled contours from density.csv; without it, a
                      scatter of the samples' first two coordinates), the fitted mixture's
                      density as contour lines, each component's mean (marker area ~
                      weight) and 2-sigma ellipse; the title names target, flow, K and KL.
                      For d > 2 everything is the marginal on (z_1, z_2); for d == 1, a
                      histogram of the samples with the mixture density.
  OUTDIR/trace.png    the ELBO with a +-2 standard error band, and the step norm (log axis).

Runs with the system Python (/usr/bin/python3: NumPy + matplotlib from Debian); on a
missing directory, file or malformed table prints one line to stderr and exits 1.
"""

import json
import math
import os
import sys
import warnings

import numpy as np
import matplotlib

matplotlib.use("Agg")  # files only: works without a display (CI, ssh)
import matplotlib.pyplot as plt  # noqa: E402  (must follow matplotlib.use)
from matplotlib.patches import Ellipse  # noqa: E402

PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "plot.py"


class PlotError(Exception):
    """A problem with the inputs, reported as one line."""


# ---------------------------------------------------------------------------- reading


def need(outdir, name):
    path = os.path.join(outdir, name)
    if not os.path.isfile(path):
        raise PlotError(f"{path}: no such file (did gflowvi finish writing {outdir}?)")
    return path


def read_summary(outdir):
    path = need(outdir, "summary.json")
    try:
        with open(path) as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        raise PlotError(f"{path}: cannot read JSON: {e}") from None
    if not isinstance(s, dict):
        raise PlotError(f"{path}: expected a JSON object")
    return s


def read_csv(path):
    """(header names, rows x cols float array); empty fields read as NaN."""
    try:
        with open(path) as f:
            header = f.readline().strip()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Empty input file" for a header-only table
            data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=float,
                                 comments="#", invalid_raise=True)
    except (OSError, ValueError) as e:
        raise PlotError(f"{path}: cannot read CSV: {e}") from None
    names = [h.strip() for h in header.split(",")] if header else []
    if not names:
        raise PlotError(f"{path}: empty file (expected a header line)")
    if data.size == 0:
        data = np.empty((0, len(names)))
    data = data.reshape(-1, len(names)) if data.ndim == 1 else data
    if data.shape[1] != len(names):
        raise PlotError(f"{path}: {len(names)} header columns but {data.shape[1]} data columns")
    return names, data


def column(path, names, data, name):
    try:
        return data[:, names.index(name)]
    except ValueError:
        raise PlotError(f"{path}: no column '{name}' in header") from None


def read_mixture(outdir, d):
    """(weights K, means K x d, covariances K x d x d)."""
    path = need(outdir, "mixture.csv")
    names, data = read_csv(path)
    if data.shape[0] == 0:
        raise PlotError(f"{path}: no components")
    w = column(path, names, data, "weight")
    mu = np.stack([column(path, names, data, f"mu_{a}") for a in range(1, d + 1)], axis=1)
    if "var_1" in names:  # --family=diag writes variances only
        var = np.stack([column(path, names, data, f"var_{a}") for a in range(1, d + 1)], axis=1)
        cov = np.zeros((len(w), d, d))
        cov[:, np.arange(d), np.arange(d)] = var
        return w, mu, cov
    cov = np.stack([column(path, names, data, f"cov_{a}_{b}")
                    for a in range(1, d + 1) for b in range(1, d + 1)], axis=1)
    return w, mu, cov.reshape(-1, d, d)


def read_samples(outdir, d):
    path = need(outdir, "samples.csv")
    names, data = read_csv(path)
    return np.stack([column(path, names, data, f"z_{a}") for a in range(1, min(d, 2) + 1)],
                    axis=1)


def read_density(outdir):
    """(x grid nx, y grid ny, log_target ny x nx, log_q ny x nx), or None without the file.

    density.csv lists all x for the first y, then all x for the next y, ..."""
    path = os.path.join(outdir, "density.csv")
    if not os.path.isfile(path):
        return None
    names, data = read_csv(path)
    x, y = column(path, names, data, "x"), column(path, names, data, "y")
    lp, lq = column(path, names, data, "log_target"), column(path, names, data, "log_q")
    n = len(x)
    if n < 4:
        raise PlotError(f"{path}: {n} rows is too few for a grid")
    changes = np.nonzero(y != y[0])[0]
    nx = int(changes[0]) if len(changes) else n
    ny = n // nx
    if nx < 2 or ny < 2 or nx * ny != n:
        raise PlotError(f"{path}: {n} rows do not form a regular grid ({nx} x per y)")
    return x[:nx], y[::nx], lp.reshape(ny, nx), lq.reshape(ny, nx)


# ---------------------------------------------------------------------------- helpers


def fmt(v, spec=".4g"):
    return "n/a" if v is None or not isinstance(v, (int, float)) or not math.isfinite(v) \
        else format(v, spec)


def title_of(s, K):
    kl, kl_se = s.get("kl"), s.get("kl_se")
    kl_text = fmt(kl) + (f" ± {fmt(kl_se, '.2g')}" if fmt(kl) != "n/a" and fmt(kl_se) != "n/a"
                         else "")
    return (f"{s.get('target', '?')}: flow {s.get('flow', '?')}, K = {K}, "
            f"KL(q||p) = {kl_text}")


def grid_density(logv, dx, dy):
    """exp(logv) normalised to integrate to 1 over the grid (NaN/-inf count as 0), so the
    unnormalised target and the mixture share one set of contour levels."""
    finite = np.isfinite(logv)
    if not finite.any():
        return np.zeros_like(logv)
    v = np.where(finite, np.exp(np.where(finite, logv, 0) - np.max(logv[finite])), 0.0)
    total = v.sum() * dx * dy
    return v / total if total > 0 else v


def mixture_logpdf_2d(w, mu, cov, X, Y):
    """log of the mixture's (z_1, z_2) marginal on a grid."""
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    terms = []
    for k in range(len(w)):
        if not w[k] > 0:
            continue
        c = cov[k, :2, :2]
        try:
            L = np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            continue
        r = np.linalg.solve(L, (pts - mu[k, :2]).T)
        terms.append(math.log(w[k]) - 0.5 * np.sum(r * r, axis=0)
                     - np.log(np.diag(L)).sum() - math.log(2 * math.pi))
    if not terms:
        return np.full(X.shape, -np.inf)
    t = np.array(terms)
    m = t.max(axis=0)
    return (m + np.log(np.exp(t - m).sum(axis=0))).reshape(X.shape)


def marker_sizes(w):
    wmax = np.max(w) if len(w) and np.max(w) > 0 else 1.0
    return 12 + 250 * np.clip(w / wmax, 0, 1)  # marker area proportional to weight


def save(fig, path):
    # Write then rename, like gflowvi's own outputs: a viewer never sees half a PNG.
    tmp = f"{path}.tmp.{os.getpid()}.png"
    try:
        fig.savefig(tmp, dpi=120, format="png")
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise PlotError(f"{path}: cannot write: {e}") from None
    finally:
        plt.close(fig)
    print(path)


# ---------------------------------------------------------------------------- plots


def plot_density_2d(ax, w, mu, cov, samples, dens):
    if dens is not None:
        gx, gy, lp, lq = dens
        X, Y = np.meshgrid(gx, gy)
        dx, dy = abs(gx[1] - gx[0]), abs(gy[1] - gy[0])
        p = grid_density(lp, dx, dy)
        if not np.isfinite(lq).any():  # no log_q column values: compute from the mixture
            lq = mixture_logpdf_2d(w, mu, cov, X, Y)
        target_label = "target density"
    else:
        # No grid from gflowvi (d > 2, or an older run): target unknown on a grid, so show
        # where the fitted mixture puts its mass, and its marginal density from mixture.csv.
        pts = np.concatenate([samples[np.all(np.isfinite(samples), axis=1)], mu[:, :2]])
        lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
        pad = 0.15 * np.maximum(hi - lo, 1e-9)
        gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 161)
        gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 161)
        X, Y = np.meshgrid(gx, gy)
        dx, dy = gx[1] - gx[0], gy[1] - gy[0]
        p = None
        lq = mixture_logpdf_2d(w, mu, cov, X, Y)
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.25, color="tab:blue",
                   linewidths=0, label="samples from q", rasterized=True)
        target_label = None

    q = grid_density(lq, dx, dy)
    top = p.max() if p is not None and p.max() > 0 else q.max()
    levels = np.linspace(0, top, 10)[1:] if top > 0 else None
    if p is not None:
        cf = ax.contourf(X, Y, p, levels=np.linspace(0, top, 16) if top > 0 else 16,
                         cmap="Blues")
        ax.figure.colorbar(cf, ax=ax, shrink=0.85, label=target_label, format="%.2g")
    if levels is not None and q.max() > 0:
        ax.contour(X, Y, q, levels=levels, colors="tab:red", linewidths=0.9)
    ax.plot([], [], color="tab:red", lw=0.9,
            label="mixture q (same levels)" if p is not None else "mixture q")

    wmax = np.max(w) if np.max(w) > 0 else 1.0
    for k in range(len(w)):
        c = cov[k, :2, :2]
        vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
        if not np.all(np.isfinite(vals)) or vals.min() <= 0:
            continue
        angle = math.degrees(math.atan2(vecs[1, -1], vecs[0, -1]))
        ax.add_patch(Ellipse(mu[k, :2], 4 * math.sqrt(vals[-1]), 4 * math.sqrt(vals[0]),
                             angle=angle, fill=False, color="black", lw=0.8,
                             alpha=0.25 + 0.75 * float(np.clip(w[k] / wmax, 0, 1))))
    ax.plot([], [], color="black", lw=0.8, label="2σ ellipses")
    ax.scatter(mu[:, 0], mu[:, 1], s=marker_sizes(w), color="black", edgecolors="white",
               linewidths=0.6, zorder=3, label="means (area ∝ weight)")
    ax.set_xlim(gx[0], gx[-1])
    ax.set_ylim(gy[0], gy[-1])
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)


def plot_density_1d(ax, w, mu, cov, samples):
    z = samples[np.isfinite(samples[:, 0]), 0]
    sd = np.sqrt(np.clip(cov[:, 0, 0], 1e-300, None))
    lo = min(np.min(mu[:, 0] - 4 * sd), np.percentile(z, 0.5) if len(z) else np.inf)
    hi = max(np.max(mu[:, 0] + 4 * sd), np.percentile(z, 99.5) if len(z) else -np.inf)
    x = np.linspace(lo, hi, 600)
    q = np.zeros_like(x)
    for k in range(len(w)):
        q += w[k] * np.exp(-0.5 * ((x - mu[k, 0]) / sd[k]) ** 2) / (sd[k] * math.sqrt(2 * math.pi))
    if len(z):
        ax.hist(z, bins=80, density=True, color="tab:blue", alpha=0.4, label="samples from q")
    ax.plot(x, q, color="tab:red", label="mixture q")
    ax.scatter(mu[:, 0], np.zeros(len(w)), s=marker_sizes(w), color="black", zorder=3,
               label="means (area ∝ weight)")
    for k in range(len(w)):
        ax.plot([mu[k, 0] - 2 * sd[k], mu[k, 0] + 2 * sd[k]], [0, 0], color="black", lw=0.8)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)


def plot_trace(outdir, s):
    path = need(outdir, "trace.csv")
    names, data = read_csv(path)
    it = column(path, names, data, "iteration")
    elbo = column(path, names, data, "elbo")
    se = column(path, names, data, "elbo_se")
    step = column(path, names, data, "step_norm")
    size = column(path, names, data, "step_size")

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 2]})
    if len(it) == 0:
        a1.text(0.5, 0.5, "no iterations in trace.csv", ha="center", va="center",
                transform=a1.transAxes)
    else:
        se0 = np.where(np.isfinite(se), se, 0)
        a1.fill_between(it, elbo - 2 * se0, elbo + 2 * se0, color="tab:blue", alpha=0.25,
                        linewidth=0, label="±2 se")
        a1.plot(it, elbo, color="tab:blue", lw=1, label="ELBO (per iteration)")
        final, final_se = s.get("elbo"), s.get("elbo_se")
        if fmt(final) != "n/a":
            a1.axhline(final, color="black", ls="--", lw=0.8,
                       label=f"final ELBO {fmt(final)} ± {fmt(final_se, '.2g')}")
        # The first iterations can be orders of magnitude worse than the rest; keep the
        # y range on where the run spends its time.
        lo_band, hi_band = (elbo - 2 * se0), (elbo + 2 * se0)
        ok = np.isfinite(lo_band) & np.isfinite(hi_band)
        if ok.sum() >= 10:
            lo, hi = np.percentile(lo_band[ok], 5), np.max(hi_band[ok])
            if fmt(final) != "n/a":
                lo, hi = min(lo, final), max(hi, final)
            if hi > lo:
                a1.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        a1.legend(fontsize=8, loc="lower right")

        pos = np.isfinite(step) & (step > 0)
        if pos.any():
            a2.plot(it[pos], step[pos], color="tab:green", lw=1, label="step norm")
        pos = np.isfinite(size) & (size > 0)
        if pos.any():
            a2.plot(it[pos], size[pos], color="tab:gray", lw=0.8, ls="--", label="step size")
        if a2.lines:
            a2.set_yscale("log")
            a2.legend(fontsize=8)
    a1.set_ylabel("ELBO")
    a1.set_title(f"{s.get('target', '?')}: flow {s.get('flow', '?')}, "
                 f"K = {s.get('particles', '?')}")
    a2.set_ylabel("step norm")
    a2.set_xlabel("iteration")
    a1.grid(alpha=0.3)
    a2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save(fig, os.path.join(outdir, "trace.png"))


def plot_density(outdir, s):
    d = s.get("dim")
    if not isinstance(d, (int, float)) or d < 1 or d != int(d):
        raise PlotError(f"{os.path.join(outdir, 'summary.json')}: bad or missing 'dim': {d!r}")
    d = int(d)
    w, mu, cov = read_mixture(outdir, d)
    samples = read_samples(outdir, d)
    fig, ax = plt.subplots(figsize=(7.5, 6.2))
    if d == 1:
        plot_density_1d(ax, w, mu, cov, samples)
    else:
        plot_density_2d(ax, w, mu, cov, samples, read_density(outdir) if d == 2 else None)
        if d > 2:
            ax.set_title(f"marginal on $(z_1, z_2)$ of d = {d}", fontsize=9, loc="left")
    fig.suptitle(title_of(s, len(w)), fontsize=11)
    fig.tight_layout()
    save(fig, os.path.join(outdir, "density.png"))


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(f"usage: {PROG} OUTDIR   (a gflowvi --out directory)", file=sys.stderr)
        return 0 if len(argv) == 2 else 2
    outdir = argv[1]
    try:
        if not os.path.isdir(outdir):
            raise PlotError(f"{outdir}: no such directory")
        s = read_summary(outdir)
        # Check every input first so a missing file fails before anything is written.
        for name in ("mixture.csv", "trace.csv", "samples.csv"):
            need(outdir, name)
        plot_density(outdir, s)
        plot_trace(outdir, s)
    except PlotError as e:
        # One line, even when a library's message spans several.
        print(f"{PROG}: " + " ".join(str(e).split()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
