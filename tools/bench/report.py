#!/usr/bin/python3
"""report.py DIR - the table of `make bench` from the JSON files run_bench.sh left
in DIR.  Exit status 1 when a configuration is INVALID (or its results are missing).

Verification of a configuration (all must hold):
  step   NumPy recomputes gflowvi's last warm-up step from the same particles and the same
         samples: ELBO, means and precisions agree to 1e-9 relative (they agree to ~1e-15);
         this is the whole hot path (both kernel phases, estimator, retraction) on this
         exact configuration and its blocking;
  KL     the gauss target is normalised and its optimum is known (every component equal
         to the target, KL = 0), so the final KL(q||p) = -ELBO from 20000 fresh samples must
         be >= -4 standard errors;
  NumPy  NumPy's final ELBO, after the same iterations from the same initial particles,
         equals gflowvi's within Monte Carlo error: |KL_np - mean KL_c| <= 5 sd sqrt(1+1/R),
         where mean and sd are over R gflowvi trajectories that differ only in their
         samples (the sd covers both the trajectory's and the evaluation's randomness; the
         bound is a t-test at 5 "sigmas": with R = 6, a false alarm < 0.5%);
  ranks  (2-rank rows) the 2-rank run reproduces the 1-rank trajectory of its layout: KL
         equal to 1e-6.
Each configuration runs in both layouts (--layout=samples and params, docs/method.md
section 9), one row each; NumPy runs once per configuration.  "mixture / 2000^3" is at the
flop count of the kernel that ran; for the params layout the samples layout's count for
the same pairs follows in parentheses (what the fused kernel achieves in those terms).
"""
import json
import math
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def fmt_si(x):
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return "%.3g %s" % (x / div, unit)
    return "%.3g" % x


def main():
    out = sys.argv[1]
    mach, npinfo, k1 = (load(os.path.join(out, f)) for f in ("machine.json", "numpy.json", "numpy_k1.json"))
    names = ["d2", "d16", "d32", "d50", "diag500"]
    rows, notes, speed, all_ok = [], [], [], True
    ref_kl = {}
    width = 18

    def ratio_cell(c):
        cell = "%.0f%%" % (100 * c["mix_to_square"])
        if c.get("layout") == "params":
            cell += " (%.0f%%)" % (100 * c["mix_to_square_samples"])
        return cell

    for name in names:
        nb = load(os.path.join(out, "%s.np.json" % name))
        for layout in ("samples", "params"):
            c, st = (load(os.path.join(out, "%s.%s.%s.json" % (name, layout, x))) for x in ("c", "step"))
            if not c or not nb:
                rows.append("| %s | %s | results missing |" % (name, layout) + " |" * (width - 3) + " INVALID |")
                all_ok = False
                continue
            R = len(c["kl_replicates"])
            tol = 5 * c["kl_sd"] * math.sqrt(1 + 1 / R)
            kl_np = -nb["elbo"]
            checks = {
                "step": bool(st and st.get("ok")),
                "KL>=0": c["kl"] >= -4 * c["kl_se"],
                "NumPy": abs(kl_np - c["kl_mean"]) <= tol,
                "no rejected steps": c["rejected"] == 0 and nb["rejected"] == 0,
            }
            ok = all(checks.values())
            all_ok &= ok
            ref_kl[(layout, c["d"], c["K"], c["S"])] = c["kl"]
            speedup = nb["sec_per_iter"] / c["sec_per_iter"]
            # At equal machine speed: each side's time scaled by the 2000^3 DGEMM rate measured
            # during its own repetitions (the machine is shared; its speed drifts between runs).
            speedup_eq = speedup * nb.get("dgemm_square_gflops", float("nan")) / c["dgemm_square_gflops"]
            label = "%d" % c["d"] if c["family"] == "full" else "%d (diag, %s)" % (c["d"], c["estimator"])
            rows.append(
                "| %s | %d | %d | 1 | %s | %s | %.1f | %.1f | %.1f | %s | %.4g | %.4g | %.1fx / **%.1fx** | %.0f | %.4f +- %.4f | %.4f +- %.4f | %s |"
                % (label, c["K"], c["S"], layout, fmt_si(c["pairs_per_s_rank"]), c["mix_gflops"],
                   c["dgemm_match_gflops"], c["dgemm_square_gflops"], ratio_cell(c), c["iters_per_s"],
                   nb["sec_per_iter"] * 1e3, speedup, speedup_eq, c["peak_rss_mib"], c["kl_mean"], c["kl_sd"], kl_np,
                   nb["elbo_se"], "Valid" if ok else "INVALID (%s)" % ", ".join(k for k, v in checks.items() if not v)))
            gq_c, gq_np = c["dgemm_square_gflops"], nb.get("dgemm_square_gflops", float("nan"))
            speed.append("  %-7s %-7s gflowvi %.3g ms/it with DGEMM 2000^3 at %.1f GF/s meanwhile; NumPy %.3g ms/it with %.1f GF/s "
                         "meanwhile: %.1fx raw, %.1fx at equal machine speed%s"
                         % (name, layout, c["sec_per_iter"] * 1e3, gq_c, nb["sec_per_iter"] * 1e3, gq_np, speedup,
                            speedup_eq, "" if abs(gq_np / gq_c - 1) < 0.15 else
                            "  (the machine's speed changed between the two runs)"))
            if "breakdown" in c:
                b = c["breakdown"]
                if layout == "params":
                    other = b["phase_a"] - b["gemm"] - b["syrk"] - b["gemm_p"]
                    notes.append(
                        "  %-7s params  mixture %.2f ms/iter in the loop (%.0f%% of the iteration); alone: fused kernel %.2f ms; "
                        "its DGEMM %.2f (%.1f GF/s), as BLAS DSYRKs %.2f (%.1f GF/s; the kernel forms these sums itself where "
                        "the CPU has AVX2), P-DGEMM %.2f, the rest %.2f"
                        % (name, c["mix_sec_per_iter"] * 1e3, 100 * c["mix_fraction"], b["phase_a"] * 1e3, b["gemm"] * 1e3,
                           b["gemm_gflops"], b["syrk"] * 1e3, b["syrk_gflops"], b["gemm_p"] * 1e3, other * 1e3))
                    continue
                other_a = b["phase_a"] - b["gemm"]
                other_b = b["phase_b"] - b["gemm"] - b["syrk"] - b["gemm_p"]
                notes.append(
                    "  %-7s samples mixture %.2f ms/iter in the loop (%.0f%% of the iteration); alone: phase A %.2f ms = DGEMM %.2f "
                    "(%.1f GF/s) + other %.2f; phase B %.2f ms = DGEMM %.2f + DSYRK %.2f (%.1f GF/s) + P-DGEMM %.2f + other %.2f"
                    % (name, c["mix_sec_per_iter"] * 1e3, 100 * c["mix_fraction"], b["phase_a"] * 1e3, b["gemm"] * 1e3,
                       b["gemm_gflops"], other_a * 1e3, b["phase_b"] * 1e3, b["gemm"] * 1e3, b["syrk"] * 1e3,
                       b["syrk_gflops"], b["gemm_p"] * 1e3, other_b * 1e3))
    for layout in ("samples", "params"):
        r2 = load(os.path.join(out, "d32.r2.%s.json" % layout))
        if not r2:
            rows.append("| 32 | 256 | 8 | 2 | %s | results missing |" % layout + " |" * (width - 4) + " INVALID |")
            all_ok = False
            continue
        ref = ref_kl.get((layout, r2["d"], r2["K"], r2["S"]))
        ok = ref is not None and abs(r2["kl"] - ref) <= 1e-6 * max(1.0, abs(ref)) and r2["rejected"] == 0
        all_ok &= ok
        rows.append(
            "| %d | %d | %d | 2 | %s | %s | %.1f | %.1f | %.1f | %s | %.4g | | | %.0f | %.6f (1 rank: %.6f) | | %s |"
            % (r2["d"], r2["K"], r2["S"], layout, fmt_si(r2["pairs_per_s_rank"]), r2["mix_gflops"],
               r2["dgemm_match_gflops"], r2["dgemm_square_gflops"], ratio_cell(r2), r2["iters_per_s"],
               r2["peak_rss_mib"], r2["kl"], ref if ref is not None else float("nan"),
               "Valid" if ok else "INVALID (2 ranks differ from 1 rank)"))

    print("gflowvi benchmark: NGFlow-VI on the gauss target, step 0.2; full family with the hessian estimator, "
          "diag with gflowvi's --estimator=auto")
    if mach:
        print("machine: %s, %d cores; %s (core %s, OPENBLAS_CORETYPE=%s); %s %s"
              % (mach["cpu"], mach["cores"], mach["openblas_config"], mach["openblas_core"],
                 mach["openblas_coretype_env"] or "unset", mach["compiler"], mach["cflags"]))
        print("load average at start: %s (other processes on these cores slow every figure; the DGEMM columns "
              "are timed between the repetitions so that the ratio sees the same machine)" % mach.get("loadavg", "?"))
    if npinfo:
        print("NumPy %s on %s, OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 (one core, as gflowvi's one rank)"
              % (npinfo["numpy"], npinfo["blas"]))
    print()
    print("| d | K | S | ranks | layout | pairs/s/rank | mixture GF/s | DGEMM match GF/s | DGEMM 2000^3 GF/s | mixture / 2000^3 "
          "| gflowvi it/s | NumPy ms/it | gflowvi vs NumPy (raw / at equal machine speed) | peak RSS MiB | KL gflowvi (mean +- sd) | KL NumPy (+- se) | check |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    print()
    print("gflowvi vs NumPy (time per iteration):")
    for n in speed:
        print(n)
    print("where the mixture time goes (seconds per iteration, kernel phases and their BLAS calls timed alone):")
    for n in notes:
        print(n)
    for name in ("spread", "compact"):  # run_bench.sh's pruning rows (docs/pruning.md)
        p = load(os.path.join(out, "prune.%s.json" % name))
        if p and "prune" in p:
            q = p["prune"]
            print("pruning, %-7s mixture (d=%d K=%d S=%d): %.1f%% of the pairs pruned; fused kernel %.2f ms on, "
                  "%.2f ms off: %.2fx" % (name, p["d"], p["K"], p["S"], 100 * q["fraction"], q["on_sec"] * 1e3,
                                          q["off_sec"] * 1e3, q["speedup"]))
    if k1:
        print("NumPy self-check, K=1 on gauss d=%d: KL %.2e -> %.2e after %d iterations (%s)"
              % (k1["d"], k1["kl_initial"], k1["kl_final"], k1["iters"], "ok" if k1["ok"] else "FAILED"))
        all_ok &= bool(k1["ok"])
    print("checks: exact step vs NumPy (1e-9), KL >= -4 se, |KL_NumPy - KL_gflowvi| <= 5 sd sqrt(1+1/R) over R=6 "
          "gflowvi trajectories, 2 ranks = 1 rank of the same layout (1e-6); see tools/bench/report.py")
    print("result: %s" % ("all Valid" if all_ok else "INVALID"))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
