"""Benchmark: what the on-disk kernel cache saves a fresh process.

Each run is a fresh Python process that imports symsched and then makes the first calls of
``output_spectrum`` and ``divergence_and_grad`` (KL) for DDPM and DDIM on a small spectrum (the kernels
they need are built then; the arithmetic on 4 modes is negligible), timing only those calls (imports
excluded, also those of the numeric engine symsched loads on first use: ``_engine.import_engine``) and recording
whether SymPy was imported. Three settings, alternated, medians over ``--repeats``:

- cold: an empty cache directory (SymPy derives, simplifies and CSEs every kernel, then stores it);
- warm: the cache those cold runs wrote (checked expression data printed as NumPy source and compiled
  in-process, without SymPy: no derivation, no simplification, no CSE);
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
    import numpy as np

    import symsched  # (imports are not timed: the engine symsched loads on first use neither)
    from _engine import import_engine  # (benchmarks/ is the script's folder: first on sys.path)

    import_engine()

    S = np.array([0.01, 0.5, 2.0, 40.0])
    ab = symsched.schedules.standard_schedule("linear-trailing", 10)
    t0 = time.perf_counter()
    for sampler in ("ddpm", "ddim"):
        symsched.output_spectrum(S, ab, sampler=sampler)
        symsched.divergence_and_grad(S, ab, sampler=sampler, divergence="kl")
    t1 = time.perf_counter()
    return {"kernels": t1 - t0, "sympy_imported": float("sympy" in sys.modules)}


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
    med = {k: statistics.median(r["kernels"] for r in v) for k, v in times.items()}
    sympy = {k: sum(r["sympy_imported"] for r in v) for k, v in times.items()}
    print(f"first output_spectrum + divergence_and_grad calls (DDPM and DDIM), medians of {args.repeats} fresh processes:")
    for k in ("cold", "off", "warm"):
        print(f"  {k:4s}: {med[k]:.3f} s  (SymPy imported in {sympy[k]:.0f} of {args.repeats} runs)")
    print(f"  warm cache is {med['cold'] / med['warm']:.1f}x faster than cold")

if __name__ == "__main__":
    main()
