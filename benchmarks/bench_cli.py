"""Benchmark: what a user waits for at the command line -- the timings the test suite no longer asserts.

Two measurements, each next to a baseline timed in the same run, medians of ``--repeats``
alternating runs, every run in a fresh Python process (what a CLI call or a new notebook pays):

(1) ``symsched optimize --out schedule.json --plot schedule.png`` on the built-in default
    (natural-patches spectrum, K = 10, DDIM, KL), with a warm kernel cache, and once with an empty
    cache (SymPy builds every kernel). Baselines: a process that only imports the CLI and the numeric
    engine it loads on first use (the floor every call pays), and the optimisation alone
    (``optimize_schedule(S, 10)``, spectrum and engine loaded).
(2) ``spectra.load_spectrum("builtin:natural-patches")`` from scratch (858 patches cut from four
    scikit-image photographs, colour eigen-PSD), imports excluded. Baselines: reading those four photographs
    (``skimage.data``, the I/O floor), and ``np.load`` of the finished spectrum saved as ``.npy``.

The test suite used to assert (1) < 30 s and (2) < 4 s; those budgets are printed for reference.
Run: ``python benchmarks/bench_cli.py [--repeats 5]`` (about a minute on a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGETS = {"optimize": 30.0, "load": 4.0}  # the former timed assertions (s)


# ----------------------------------------------------------------------------------------------
# workers: each runs in a fresh process and prints {"seconds": ...} as its last line
# ----------------------------------------------------------------------------------------------
def work(task: str, tmp: str) -> float:
    t0 = time.perf_counter()
    if task == "cli-import":
        import symsched.cli  # noqa: F401
        from _engine import import_engine

        import_engine()  # the numeric engine every command loads (symsched imports it on first use)
    elif task == "optimize-cli":
        from symsched.cli import main

        code = main(["optimize", "--out", os.path.join(tmp, "schedule.json"), "--plot",
                     os.path.join(tmp, "schedule.png"), "--no-progress"])
        if code != 0:
            raise SystemExit(f"symsched optimize exited with {code}")
    elif task == "optimize-only":
        from symsched.optimize import optimize_schedule
        from symsched.spectra import load_spectrum

        from _engine import import_engine

        S = load_spectrum("builtin:natural-patches")
        import_engine()
        t0 = time.perf_counter()  # the optimisation alone: no import, no loading, no files
        optimize_schedule(S, 10)
    elif task == "load-builtin":
        from skimage import data

        from symsched.spectra import load_spectrum

        data.camera()  # pay scikit-image's lazy imports outside the timed region (camera is not used)
        t0 = time.perf_counter()  # (2) times the work, not the imports
        load_spectrum("builtin:natural-patches")
    elif task == "read-photos":
        from skimage import data

        data.camera()
        t0 = time.perf_counter()
        for name in ("astronaut", "chelsea", "coffee", "rocket"):
            getattr(data, name)()
    elif task == "load-npy":
        import numpy as np

        t0 = time.perf_counter()
        np.load(os.path.join(tmp, "natural.npy"), allow_pickle=False)
    else:  # pragma: no cover
        raise SystemExit(f"unknown task {task}")
    return time.perf_counter() - t0


def run(task: str, tmp: str, env: dict[str, str] | None = None) -> float:
    full = dict(os.environ, MPLBACKEND="Agg")
    full.update(env or {})
    out = subprocess.run([sys.executable, __file__, "--worker", task, "--tmp", tmp], capture_output=True,
                         text=True, env=full, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def measure(tasks: list[str], repeats: int, tmp: str, env: dict[str, str]) -> dict[str, float]:
    times: dict[str, list[float]] = {t: [] for t in tasks}
    for _ in range(repeats):  # alternate, so load drift hits every task alike
        for t in tasks:
            times[t].append(run(t, tmp, env))
    return {t: statistics.median(v) for t, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps({"seconds": work(args.worker, args.tmp)}))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        env = {"SYMSCHED_CACHE_DIR": os.path.join(tmp, "kernels")}
        import numpy as np

        from symsched.spectra import load_spectrum

        np.save(Path(tmp) / "natural.npy", load_spectrum("builtin:natural-patches"))
        cold = run("optimize-cli", tmp, env)  # first call: empty kernel cache
        print(f"repeats: {args.repeats} (medians), fresh process per run, cores: {os.cpu_count()}")

        m = measure(["cli-import", "optimize-only", "optimize-cli"], args.repeats, tmp, env)
        print("\n(1) symsched optimize --plot, built-in default (K=10, DDIM, KL)")
        print(f"    import symsched.cli + engine  {m['cli-import']:7.2f} s")
        print(f"    optimize_schedule(S, 10) only {m['optimize-only']:7.2f} s")
        print(f"    symsched optimize, warm cache {m['optimize-cli']:7.2f} s   = {m['optimize-cli'] / m['cli-import']:.1f}x "
              f"the import, {m['optimize-cli'] / m['optimize-only']:.2f}x the optimisation alone")
        print(f"    symsched optimize, cold cache {cold:7.2f} s   = {cold / m['optimize-cli']:.2f}x warm")
        print(f"    former test budget {BUDGETS['optimize']:.0f} s: warm run at {m['optimize-cli'] / BUDGETS['optimize']:.0%}")

        m = measure(["read-photos", "load-npy", "load-builtin"], args.repeats, tmp, env)
        print("\n(2) load_spectrum('builtin:natural-patches') from scratch")
        print(f"    np.load of the finished .npy  {m['load-npy']:7.3f} s")
        print(f"    read the 4 skimage photos     {m['read-photos']:7.3f} s")
        print(f"    load_spectrum(builtin)        {m['load-builtin']:7.3f} s   = {m['load-builtin'] / m['read-photos']:.2f}x "
              f"reading the photos, {m['load-builtin'] / m['load-npy']:.0f}x np.load")
        print(f"    former test budget {BUDGETS['load']:.0f} s: at {m['load-builtin'] / BUDGETS['load']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
