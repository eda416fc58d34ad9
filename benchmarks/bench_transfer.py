"""Benchmark: output PSD of a 1000-step DDPM schedule on a 196,608-mode (256x256x3) spectrum.

Baseline: the plain per-step NumPy recursion a reference notebook would write (fresh temporaries
every step). Two ratios, medians over alternating runs:

(a) one call in a fresh process with the default allocator: what a CLI user or a notebook cell
    pays (the baseline then spends much of its time faulting in fresh pages for its temporaries);
(b) compute only, both warm, in a process started with MALLOC_MMAP_THRESHOLD_=268435456 and
    MALLOC_TRIM_THRESHOLD_=268435456 so that no temporaries page-fault.

It also reports the cost of ``divergence_and_grad`` relative to one ``output_spectrum`` call.
Uses ../shared/data/adsn_eigenvalues.npy when present, else a synthetic FFT-grid PSD of the same
size. Run: ``python benchmarks/bench_transfer.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ADSN = Path(__file__).resolve().parents[2] / "shared" / "data" / "adsn_eigenvalues.npy"
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "268435456"}


def load_spectrum() -> tuple[np.ndarray, str]:
    if ADSN.is_file():
        return np.load(ADSN, allow_pickle=False).astype(np.float64), "ADSN texture PSD (../shared/data)"
    # synthetic stand-in: 256x256x3 power-law PSD on an FFT grid (Hermitian, so values repeat)
    f = np.fft.fftfreq(256)
    r2 = f[:, None] ** 2 + f[None, :] ** 2
    base = 1.0 / (1e-4 + r2)
    spec = np.stack([base, 0.1 * base, 0.01 * base], axis=-1).ravel()
    return spec, "synthetic 256x256x3 power-law PSD"


def ddpm_schedule(T: int = 1000) -> np.ndarray:
    """1000-step linear DDPM alpha_bar (Ho et al. 2020), noisiest first."""
    betas = np.linspace(1e-4, 0.02, T)
    return np.cumprod(1.0 - betas)[::-1].copy()


def baseline_output_spectrum(S: np.ndarray, alpha_bar: np.ndarray) -> np.ndarray:
    """Reference-notebook recursion for DDPM (posterior variance), white start."""
    levels = list(alpha_bar) + [1.0]
    v = np.ones_like(S)
    for k in range(len(alpha_bar)):
        a_t, a_s = levels[k], levels[k + 1]
        lam = a_t * S + 1 - a_t
        eps_coef = np.sqrt(1 - a_t) / lam
        beta = 1 - a_t / a_s
        g = (1 - beta / np.sqrt(1 - a_t) * eps_coef) / np.sqrt(1 - beta)
        var = (1 - a_s) / (1 - a_t) * beta if k < len(alpha_bar) - 1 else 0.0
        v = g * g * v + var
    return v


def worker(which: str, task: str) -> dict:
    """Run in a fresh process: time one call (after imports and loading)."""
    t0 = time.perf_counter()
    import symsched

    t_import = time.perf_counter() - t0
    S, _ = load_spectrum()
    ab = ddpm_schedule()
    t = time.perf_counter()
    if which == "baseline":
        baseline_output_spectrum(S, ab)
    elif task == "output":
        symsched.output_spectrum(S, ab, sampler="ddpm")
    else:
        symsched.divergence_and_grad(S, ab, sampler="ddpm", divergence="w2")
    return {"seconds": time.perf_counter() - t, "import": t_import}


def warm_worker(repeats: int) -> dict:
    """Run in one process: warm both, then alternate timed calls."""
    import symsched

    S, _ = load_spectrum()
    ab = ddpm_schedule()
    P_ref = baseline_output_spectrum(S, ab)
    P = symsched.output_spectrum(S, ab, sampler="ddpm")
    symsched.divergence_and_grad(S, ab, sampler="ddpm", divergence="w2")
    rel = np.abs(P - P_ref) / np.maximum(P_ref, 1e-300)
    err = float(np.max(rel))
    # who is right where they differ most: both against the same expressions at 50 digits
    worst = np.argsort(-rel)[:3]
    ref = np.array([float(x) for x in symsched.output_spectrum_mp(S[worst], ab, sampler="ddpm", dps=50)])
    err_symsched = float(np.max(np.abs(P[worst] - ref) / ref))
    err_baseline = float(np.max(np.abs(P_ref[worst] - ref) / ref))
    times: dict[str, list[float]] = {"baseline": [], "symsched": [], "grad": []}
    for _ in range(repeats):
        for name in times:
            t = time.perf_counter()
            if name == "baseline":
                baseline_output_spectrum(S, ab)
            elif name == "symsched":
                symsched.output_spectrum(S, ab, sampler="ddpm")
            else:
                symsched.divergence_and_grad(S, ab, sampler="ddpm", divergence="w2")
            times[name].append(time.perf_counter() - t)
    return {"times": times, "max_rel_diff": err, "err_symsched": err_symsched, "err_baseline": err_baseline}


def _run(args: list[str], env: dict | None = None) -> dict:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=full_env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--worker", choices=["baseline", "symsched"], help=argparse.SUPPRESS)
    ap.add_argument("--task", choices=["output", "grad"], default="output", help=argparse.SUPPRESS)
    ap.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.task)))
        return
    if args.warm:
        print(json.dumps(warm_worker(args.repeats)))
        return

    S, label = load_spectrum()
    print(f"spectrum: {label}, {S.size} modes ({np.unique(S).size} distinct); schedule: 1000-step DDPM")
    _run(["--worker", "symsched"])  # builds the on-disk kernel cache once, as a first use would
    _run(["--worker", "symsched", "--task", "grad"])

    fresh: dict[str, list[float]] = {"baseline": [], "symsched": [], "grad": []}
    for _ in range(args.repeats):  # alternate, so drift hits both alike
        fresh["baseline"].append(_run(["--worker", "baseline"])["seconds"])
        fresh["symsched"].append(_run(["--worker", "symsched"])["seconds"])
        fresh["grad"].append(_run(["--worker", "symsched", "--task", "grad"])["seconds"])
    med = {k: statistics.median(v) for k, v in fresh.items()}
    print("\n(a) one call in a fresh process, default allocator (median of %d):" % args.repeats)
    print(f"    baseline {med['baseline']:.3f} s   symsched {med['symsched']:.3f} s   "
          f"speed-up {med['baseline'] / med['symsched']:.2f}x")
    print(f"    divergence_and_grad {med['grad']:.3f} s = {med['grad'] / med['symsched']:.2f}x one output_spectrum call")

    warm = _run(["--warm", "--repeats", str(args.repeats)], env=MALLOC_ENV)
    wm = {k: statistics.median(v) for k, v in warm["times"].items()}
    print("\n(b) compute only, both warm, MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_=256 MiB (median of %d):" % args.repeats)
    print(f"    baseline {wm['baseline']:.3f} s   symsched {wm['symsched']:.3f} s   "
          f"speed-up {wm['baseline'] / wm['symsched']:.2f}x")
    print(f"    divergence_and_grad {wm['grad']:.3f} s = {wm['grad'] / wm['symsched']:.2f}x one output_spectrum call")
    print(f"\nmax relative difference symsched vs baseline: {warm['max_rel_diff']:.2e}; on those modes, "
          f"error vs mpmath (50 digits): symsched {warm['err_symsched']:.1e}, baseline {warm['err_baseline']:.1e}")


if __name__ == "__main__":
    main()
