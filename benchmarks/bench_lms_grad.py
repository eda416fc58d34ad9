"""Where LMS's gradient spends its time at K = 1000 (README, "Samplers with memory"): ``divergence_and_grad``
with ``sampler="lms"`` against, in the same run, ``output_spectrum`` on the same input and DPM++ 2M's gradient (the
baselines), and the part of each spent evaluating the step coefficients (``build_program``; for LMS mostly mpmath:
its order-4 Lagrange weights on the close levels of a 1000-step grid lose ~1e-8 in float64, beyond
``program.MP_COEFFICIENT_LOSS``, so they are recomputed in mpmath, and the gradient kernels' 198 coefficients per step
with them). Prints seconds (best of ``--repeats``) and ratios; no assertions. The coefficient part is timed on its
own (its best of ``--repeats`` too), so on a noisy machine it can read a little over 100 % of the whole.
Run: ``python benchmarks/bench_lms_grad.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import symsched
from symsched.api import _setup, _vp_levels
from symsched.engine import program
from symsched.schedules import karras, standard_schedule


def best(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    S = np.array([1.0])
    schedules = {"linear-linspace 1000": standard_schedule("linear-linspace", 1000),
                 "karras(1000, 0.03, 80)": karras(1000, sigma_min=0.03, sigma_max=80.0)}
    print("| schedule | sampler | output_spectrum | divergence_and_grad | grad / value | coefficients (grad) |")
    print("|---|---|---|---|---|---|")
    for label, ab in schedules.items():
        for sampler in ("dpmpp_2m", "lms"):
            symsched.divergence_and_grad(S, ab, sampler=sampler, wrt="log_snr")  # warm the kernel cache
            value = best(lambda: symsched.output_spectrum(S, ab, sampler=sampler), args.repeats)
            grad = best(lambda: symsched.divergence_and_grad(S, ab, sampler=sampler, wrt="log_snr"), args.repeats)
            name, options, params = _setup(sampler, {})
            build = best(lambda: program.build_program(name, options, params, _vp_levels(ab), "alpha_bar", grad=True),
                         args.repeats)
            print(f"| {label} | {sampler} | {value:.3f} s | {grad:.3f} s | {grad / value:.1f}× | {build:.3f} s "
                  f"({build / grad:.0%}) |", flush=True)


if __name__ == "__main__":
    main()
