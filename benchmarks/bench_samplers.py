"""Benchmark table: for the built-in spectrum (builtin:natural-patches), K = 5 / 10 / 20 and each sampler,
the divergence (default KL(data || generated)) of the best standard schedule vs the schedule optimised for
that sampler.

Uses :func:`symsched.optimize.optimize_schedule` (its baselines are every standard schedule, same sampler,
K and divergence, white start, default endpoints: the first level pinned at the grid's noisiest; a flow sampler's at
t = 1, with the flow schedules as baselines). Two baselines
per row (issue 9, fair comparisons): the best standard schedule that meets the same endpoint constraint, and the
best of all, marked † when it does not (it starts at a less noisy level the optimum was not allowed), each also as
a ratio to the optimum (baseline / optimised: how many times the optimum's divergence it is). Prints one Markdown
row per (sampler, K) as it goes.
Run: ``python benchmarks/bench_samplers.py [--samplers dpmpp_2m,unipc_multistep] [--steps 5,10,20]
[--divergence kl]``.
"""

from __future__ import annotations

import argparse
import time

from symsched.optimize import DIVERGENCES, SAMPLERS, optimize_schedule
from symsched.spectra import load_spectrum


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--steps", default="5,10,20")
    ap.add_argument("--restarts", default=1, type=int)
    ap.add_argument("--divergence", default="kl", choices=DIVERGENCES,
                    help="objective of the optimum and of the baselines (default kl, the README table's)")
    args = ap.parse_args()
    S = load_spectrum("builtin:natural-patches")
    what = {"kl": "KL", "kl-reverse": "reverse KL", "w2": "W2²"}[args.divergence]
    print(f"| sampler | K | best standard, same first level | its {what} | best standard of all | its {what} | "
          f"optimised {what} | same first level / optimised | of all / optimised | time (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for name in args.samplers.split(","):
        for K in (int(k) for k in args.steps.split(",")):
            t = time.perf_counter()
            res = optimize_schedule(S, K, sampler=name, divergence=args.divergence, restarts=args.restarts,
                                    progress=False)
            fair, fair_val = res.best_feasible_baseline
            best, val = res.best_baseline
            mark = "" if res.feasible.get(best, True) else " †"
            ratio = (lambda b, ok=True: f"{b / res.value:.3g}×" if ok and res.value > 0 else "–")
            print(f"| {name} | {K} | {fair or '–'} | {fair_val:.4g} | {best}{mark} | {val:.4g} | {res.value:.4g} | "
                  f"{ratio(fair_val, bool(fair))} | {ratio(val)} | {time.perf_counter() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
