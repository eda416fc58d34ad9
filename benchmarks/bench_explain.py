"""Benchmark: ``symsched explain`` on the built-in spectrum (issue 12 acceptance: under 60 s on 2 cores).

Runs the command exactly as a user would (a fresh process, default settings: K = 5, 10, 20, KL and W2,
the fitted power law at d = 32..256 and the photographs at d = 32..128: 20 optimisations) with
``--jobs 2`` and, as the baseline in the same run, ``--jobs 1`` (serial). Prints the wall time, the
CPU time of the process tree (user + system of the command and its joblib workers), the machine's
load average before each run (other work on the machine slows both runs), and the ratio serial /
parallel. ``CPU / 2`` is what the parallel run would take on two otherwise idle cores, plus its serial part.

Run: ``python benchmarks/bench_explain.py [--repeat 1] [--out /tmp/bench-explain]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def run(jobs: int, out: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "symsched.cli", "explain", "--out", out, "--jobs", str(jobs),
                    "--no-progress"], check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, MPLBACKEND="Agg"))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="bench-explain-")
    print(f"symsched explain (defaults) on builtin:natural-patches, {os.cpu_count()} cores")
    rows = []
    for r in range(args.repeat):
        for jobs in (2, 1):
            load = os.getloadavg()[0]
            wall, cpu = run(jobs, os.path.join(out, f"jobs{jobs}"))
            rows.append((jobs, wall, cpu, load))
            print(f"  run {r + 1}, --jobs {jobs}: wall {wall:6.1f} s   CPU {cpu:6.1f} s   (load average before: {load:.1f})",
                  flush=True)
    par = min(w for j, w, _, _ in rows if j == 2)
    ser = min(w for j, w, _, _ in rows if j == 1)
    cpu2 = min(c for j, _, c, _ in rows if j == 2)
    print(f"best wall: --jobs 2 {par:.1f} s, --jobs 1 {ser:.1f} s; serial / parallel = {ser / par:.2f}x")
    print(f"CPU of the parallel run {cpu2:.1f} s -> on two idle cores about {cpu2 / 2:.1f} s plus its serial part")
    return 0


if __name__ == "__main__":
    sys.exit(main())
