#!/usr/bin/python3
"""simulate.py - running gflowvi on SimGrid's simulated cluster (docs/cluster.md).

Used by tools/scaling.py run --simulate and tests/mpi/test_smpi.sh:

  run(prog, ranks, args, out_dir, platform=..., sample=0)   one smpirun of gflowvi
  platform_info(path)                                      hosts and network of a platform
  model_network(info)                                      "ALPHA,BETA" for tools/perfmodel.py

and on the command line, one simulated run with its output on the terminal and gflowvi's
exit status:

  tools/smpi/simulate.py [--build build-smpi] [--platform FILE] [--sample N] RANKS \
      --target=gauss --dim=16 --particles=256 --out=sim-out ...

prog is the SMPI build of gflowvi (make smpi: build-smpi/bin/gflowvi).  sample > 0 runs it
in timing-only mode (GFV_SMPI_SAMPLE, src/comm/sim.h): SMPI benchmarks `sample` blocks of
each mixture phase over all ranks and charges the rest at their mean time, and the large
buffers are shared by all ranks; the run's numbers are then meaningless, its timers are not.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_PLATFORM = os.path.join(HERE, "cluster.xml")

_UNITS = {  # SimGrid's unit suffixes that the platform files here use
    "f": 1.0, "kf": 1e3, "Mf": 1e6, "Gf": 1e9, "Tf": 1e12,
    "Bps": 1.0, "kBps": 1e3, "MBps": 1e6, "GBps": 1e9, "TBps": 1e12,
    "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9,
}


def parse_value(text):
    """'12.5GBps' -> 1.25e10, '0.25us' -> 2.5e-07, '30Gf' -> 3e10."""
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"cannot read the platform value '{text}'")
    return float(m.group(1)) * _UNITS[m.group(2)]


def platform_info(path):
    """The first <cluster> of a platform file: its host names, core speed, link bandwidth
    and latency, the host speed SMPI assumes for this machine, and the fat tree's levels."""
    root = ET.parse(path).getroot()
    cl = root.find(".//cluster")
    if cl is None:
        raise ValueError(f"{path}: no <cluster> element")
    lo, hi = (int(x) for x in cl.get("radical").split("-"))
    hosts = [f"{cl.get('prefix', '')}{i}{cl.get('suffix', '')}" for i in range(lo, hi + 1)]
    props = {p.get("id"): p.get("value") for p in root.iter("prop")}
    levels = 1
    if (cl.get("topology") or "").upper() == "FAT_TREE":
        levels = int(cl.get("topo_parameters").split(";")[0])
    return {"path": path, "name": os.path.basename(path), "hosts": hosts,
            "speed": parse_value(cl.get("speed")), "bw": parse_value(cl.get("bw")),
            "lat": parse_value(cl.get("lat")), "levels": levels,
            "host_speed": parse_value(props.get("smpi/host-speed", "20000f")),
            "coll_selector": props.get("smpi/coll-selector", "naive")}


def model_network(info):
    """alpha and beta of the performance model for the platform: a message between leaves
    crosses 2 x levels links (up to the top and down again), each with the link latency;
    the bandwidth is one link's."""
    alpha = 2 * info["levels"] * info["lat"]
    beta = 1.0 / info["bw"]
    return f"{alpha:.6g},{beta:.6g}"


def describe(info):
    return (f"{len(info['hosts'])} nodes, {info['speed'] / 1e9:g} Gf/s cores "
            f"(this machine's core = {info['host_speed'] / 1e9:g} Gf/s), "
            f"{info['levels']}-level fat tree, {info['bw'] / 1e9:g} GB/s links, "
            f"{2 * info['levels'] * info['lat'] * 1e6:g} us between leaves, "
            f"{info['coll_selector']} collectives")


def write_hostfile(path, info, ranks):
    if ranks > len(info["hosts"]):
        raise ValueError(f"{ranks} ranks, but the platform {info['path']} has "
                         f"{len(info['hosts'])} nodes")
    with open(path, "w") as f:
        f.write("\n".join(info["hosts"][:ranks]) + "\n")


def environment(sample):
    """The run's environment; sample None leaves GFV_SMPI_SAMPLE as the caller's is."""
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = "1"  # SMPI times one thread per rank
    if sample is not None:
        env.pop("GFV_SMPI_SAMPLE", None)
    if sample:
        env["GFV_SMPI_SAMPLE"] = str(sample)
        # The memory and disk checks would compare the whole simulated cluster's needs with
        # this machine's: meaningless here (the shared buffers are what make it fit).
        env["GFV_SKIP_RESOURCE_CHECKS"] = "1"
    return env


def command(prog, ranks, platform, hostfile, args):
    # dlopen privatization: every rank gets its own copy of gflowvi's global variables.
    # SimGrid's warnings and errors only (not a line per collective algorithm chosen).
    return ["smpirun", "-np", str(ranks), "-platform", platform, "-hostfile", hostfile,
            "--cfg=smpi/privatization:dlopen", "--log=root.thres:warning", prog, *args]


def _smpirun(prog, ranks, args, hostfile, platform, sample, timeout, out):
    """Runs smpirun with its output to `out` (a file, or None: this process's); returns
    (exit status, host seconds); 124 when the timeout expired."""
    write_hostfile(hostfile, platform_info(platform), ranks)
    t0 = time.time()
    # Its own process group, so that a timeout ends smpirun's simulator (smpimain) too,
    # not only the smpirun script.
    proc = subprocess.Popen(command(prog, ranks, platform, hostfile, args), stdout=out,
                            stderr=subprocess.STDOUT if out else None, env=environment(sample),
                            start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rc = 124
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return rc, time.time() - t0


def run(prog, ranks, args, out_dir, platform=DEFAULT_PLATFORM, sample=0, timeout=3600):
    """One simulated run of prog on `ranks` ranks; gflowvi writes into out_dir (which args
    should name with --out), SMPI's and gflowvi's messages into out_dir/smpirun.log.
    Returns (exit status, host seconds, log file)."""
    os.makedirs(out_dir, exist_ok=True)
    log = os.path.join(out_dir, "smpirun.log")
    with open(log, "w") as f:
        rc, wall = _smpirun(prog, ranks, args, os.path.join(out_dir, "hostfile"), platform,
                            sample, timeout, f)
    return rc, wall, log


def main(argv=None):
    ap = argparse.ArgumentParser(allow_abbrev=False,
                                 description="one run of gflowvi on the simulated cluster "
                                 "(docs/cluster.md); the rest of the line goes to gflowvi")
    ap.add_argument("ranks", type=int)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-smpi"),
                    help="the SMPI build (make smpi; default %(default)s)")
    ap.add_argument("--platform", default=DEFAULT_PLATFORM, help="default %(default)s")
    ap.add_argument("--sample", type=int, default=None,
                    help="timing-only mode: GFV_SMPI_SAMPLE=N; 0: the real fit (default: "
                         "GFV_SMPI_SAMPLE as in the environment)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds (default: none)")
    a, rest = ap.parse_known_args(argv)
    prog = os.path.join(a.build, "bin", "gflowvi")
    if not os.access(prog, os.X_OK):
        sys.exit(f"simulate.py: no program at {prog}; run make smpi first")
    with tempfile.TemporaryDirectory() as tmp:
        sys.stdout.flush()
        rc, _ = _smpirun(prog, a.ranks, rest, os.path.join(tmp, "hostfile"), a.platform,
                         a.sample, a.timeout, None)
    return rc


if __name__ == "__main__":
    sys.exit(main())
