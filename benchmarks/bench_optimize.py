"""Benchmark: schedule optimisation on real spectra (issue #4, item 6).

Two problems:

* K = 10 on the 3,072-mode CIFAR-10 PCA spectrum (``../shared/data/cifar10_pca_eigenvalues.npy``);
* K = 1000 on the 196,608-mode ADSN texture PSD (``../shared/data/adsn_eigenvalues.npy``).

For each: wall time and objective evaluations of the default :func:`symsched.optimize.optimize_schedule`
(DDIM eta=0, KL, white start, default endpoints), and the gap to the best of ``--restarts``
(default 20) random restarts (``standard_starts=False``: a plain random multi-start search with the
same objective and local optimiser), plus the ratios default / multi-start of time and evaluations,
and the best standard schedule for reference. Skips cleanly when ``../shared/data`` is absent.

Run: ``python benchmarks/bench_optimize.py [--restarts 20] [--only cifar|adsn]``. The K = 1000 ADSN
case takes several minutes per optimisation on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CASES = {
    "cifar": ("cifar10_pca_eigenvalues.npy", 10, "CIFAR-10 PCA, 3,072 modes"),
    "adsn": ("adsn_eigenvalues.npy", 1000, "ADSN 256x256x3 PSD, 196,608 modes"),
}


def run_case(name: str, restarts: int) -> dict[str, float] | None:
    from symsched.optimize import optimize_schedule

    fname, K, label = CASES[name]
    path = DATA / fname
    if not path.is_file():
        print(f"[{name}] skipped: {path} not found (../shared/data is absent)")
        return None
    S = np.load(path, allow_pickle=False).astype(np.float64) + 0.0
    print(f"[{name}] {label}, K={K}, ddim eta=0, KL, white start, default endpoints", flush=True)

    t0 = time.perf_counter()
    res = optimize_schedule(S, K, progress=True)
    t_def = time.perf_counter() - t0
    print(f"  default      : {t_def:8.1f} s  {res.n_evaluations:6d} evaluations  KL = {res.value:.8g}  ({res.message})",
          flush=True)

    t0 = time.perf_counter()
    ref = optimize_schedule(S, K, restarts=restarts, standard_starts=False, seed=12345, progress=True)
    t_ref = time.perf_counter() - t0
    print(f"  {restarts:2d} random   : {t_ref:8.1f} s  {ref.n_evaluations:6d} evaluations  KL = {ref.value:.8g}",
          flush=True)

    best_name, best_std = res.best_baseline
    gap = res.value / ref.value - 1.0
    print(f"  best standard: {best_name} KL = {best_std:.8g}")
    print(f"  ratios       : time default/multistart = {t_def / t_ref:.3f}, "
          f"evaluations = {res.n_evaluations / ref.n_evaluations:.3f}, "
          f"KL default/multistart = {res.value / ref.value:.6f} (gap {gap:+.2e}), "
          f"best standard/default = {best_std / res.value:.3g}")
    print(f"  time per evaluation: {t_def / res.n_evaluations * 1e3:.1f} ms", flush=True)
    return {"time": t_def, "evals": res.n_evaluations, "value": res.value, "ref_time": t_ref,
            "ref_evals": ref.n_evaluations, "ref_value": ref.value, "gap": gap}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--restarts", type=int, default=20, help="random restarts of the reference search")
    ap.add_argument("--only", choices=sorted(CASES), default=None, help="run one case")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (the real spectra live in ../shared/data)")
        return 0
    for name in CASES:
        if args.only in (None, name):
            run_case(name, args.restarts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
