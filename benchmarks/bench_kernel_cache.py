"""Benchmark: what the on-disk kernel cache saves a fresh process.

Each run is a fresh Python process that imports symsched and then builds the kernels of one
``output_spectrum(..., sampler="ddpm")`` call and one ``divergence_and_grad`` (KL) call, timing only
the kernel step (imports excluded). Three settings, alternated, medians over ``--repeats`` runs:

- cold: an empty cache directory (SymPy derives, simplifies and CSEs every kernel, then stores it);
- warm: the cache those cold runs wrote (expression tables are read, rebuilt as SymPy objects,
  printed and compiled in-process: no simplification, no CSE);
- off: ``SYMSCHED_DISK_CACHE=0`` (same work as cold, nothing stored).

Run: ``python benchmarks/bench_kernel_cache.py [--repeats 5]``.
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


def worker() -> dict:
    import symsched  # noqa: F401  (imports are not timed)
    from symsched.engine.divergence import divergence_kernel
    from symsched.engine.kernels import final_kernel, init_kernel, level_kernel, step_kernel

    t0 = time.perf_counter()
    import sympy  # noqa: F401  (part of the warm cost: the tables are rebuilt as SymPy objects)

    t1 = time.perf_counter()
    for grad in (False, True):
        step_kernel("ddpm", "posterior", grad)
        final_kernel("ddpm", "posterior", grad)
        step_kernel("ddim", "", grad)
        final_kernel("ddim", "", grad)
    init_kernel("vp", "white")
    level_kernel("alpha_bar")
    level_kernel("log_snr")
    divergence_kernel("kl")
    t2 = time.perf_counter()
    return {"sympy_import": t1 - t0, "kernels": t2 - t1, "total": t2 - t0}


def _run(env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker"], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker()))
        return
    times: dict[str, list[dict]] = {"cold": [], "warm": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            cache = os.path.join(tmp, f"cache{i}")
            times["cold"].append(_run({"SYMSCHED_CACHE_DIR": cache}))
            times["warm"].append(_run({"SYMSCHED_CACHE_DIR": cache}))
            times["off"].append(_run({"SYMSCHED_CACHE_DIR": cache, "SYMSCHED_DISK_CACHE": "0"}))
    med = {k: {q: statistics.median(r[q] for r in v) for q in ("sympy_import", "kernels", "total")}
           for k, v in times.items()}
    print(f"18 kernels (output_spectrum + divergence_and_grad, DDPM and DDIM), medians of {args.repeats} fresh processes:")
    for k in ("cold", "off", "warm"):
        m = med[k]
        print(f"  {k:4s}: {m['total']:.3f} s  (SymPy import {m['sympy_import']:.3f} s, kernels {m['kernels']:.3f} s)")
    print(f"  warm cache is {med['cold']['total'] / med['warm']['total']:.1f}x faster than cold "
          f"({med['cold']['kernels'] / med['warm']['kernels']:.1f}x on the kernel step alone)")


if __name__ == "__main__":
    main()
