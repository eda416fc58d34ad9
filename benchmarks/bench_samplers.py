"""Benchmark table: for the built-in spectrum (builtin:natural-patches), K = 5 / 10 / 20 and each sampler,
KL(data || generated) of the best standard schedule vs the schedule optimised for that sampler.

Uses :func:`symsched.optimize.optimize_schedule` (its baselines are every standard schedule, same sampler,
K and divergence, white start, default endpoints). Prints one markdown row per (sampler, K) as it goes.
Run: ``python benchmarks/bench_samplers.py [--samplers dpmpp_2m,unipc_multistep] [--steps 5,10,20]``.
"""

from __future__ import annotations

import argparse
import time

from symsched.optimize import SAMPLERS, optimize_schedule
from symsched.spectra import load_spectrum


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--steps", default="5,10,20")
    ap.add_argument("--restarts", default=1, type=int)
    args = ap.parse_args()
    S = load_spectrum("builtin:natural-patches")
    print("| sampler | K | best standard schedule | its KL | optimised KL | ratio | time (s) |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for name in args.samplers.split(","):
        for K in (int(k) for k in args.steps.split(",")):
            t = time.perf_counter()
            res = optimize_schedule(S, K, sampler=name, restarts=args.restarts, progress=False)
            base, val = res.best_baseline
            print(f"| {name} | {K} | {base} | {val:.4g} | {res.value:.4g} | {val / res.value:.3g} | "
                  f"{time.perf_counter() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
