"""Benchmark: the full ``symsched sde-table`` for a 196,608-mode spectrum (issue #5).

Table: 6 schemes x sizes 50, 250, 500, 1000 (grid points) x eps 0, 1e-5, 1e-4, 1e-3 x both starts,
plus the continuous solutions. Timed (a) in a fresh process with an empty kernel cache (includes
building every kernel with SymPy) and (b) warm, in this process.

Baseline: what a reference notebook would write -- a plain per-step NumPy loop over *all* modes
(no de-duplication), one run per (scheme, size, eps, start), formulas typed in from the issue.
By default the baseline runs on a slice of the table (every scheme and size, one eps, the white
start: 1/8 of the work) and symsched is timed on the same slice (where its one pass computes both starts, the
baseline's one: the ratio is conservative, in the baseline's favour); the full-table baseline time is
extrapolated (x8) unless ``--full-baseline`` is given.

Uses ../shared/data/adsn_eigenvalues.npy when present; otherwise says so and uses a synthetic
256x256x3 FFT-grid PSD of the same size. Run: ``python benchmarks/bench_sde_table.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ADSN = Path(os.environ.get("SYMSCHED_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data",
           "adsn_eigenvalues.npy")  # as tests/conftest.py
SIZES = (50, 250, 500, 1000)
EPS = (0.0, 1e-5, 1e-4, 1e-3)
SCHEMES = ("em", "ei", "ddpm", "euler", "heun", "rk4")
BETA_MIN, BETA_MAX, HORIZON = 0.05, 10.0, 1.0


def load_spectrum() -> tuple[np.ndarray, str]:
    if ADSN.is_file():
        return np.load(ADSN, allow_pickle=False).astype(np.float64), "ADSN texture PSD (../shared/data, 196,608 modes)"
    print(f"note: {ADSN} not found (no ../shared): using a synthetic spectrum of the same size", file=sys.stderr)
    f = np.fft.fftfreq(256)
    r2 = f[:, None] ** 2 + f[None, :] ** 2
    base = 1.0 / (1e-4 + r2)
    spec = np.stack([base, 0.1 * base, 0.01 * base], axis=-1).ravel()
    spec[np.argsort(spec)[: spec.size // 3]] = 0.0  # zero modes, as in real textures
    return spec, "synthetic 256x256x3 power-law PSD with zeros"


# ----------------------------------------------------------------------------------------------
# baseline: plain per-step loop over all modes, formulas typed in from issue #5
# ----------------------------------------------------------------------------------------------
def _beta(t: float) -> float:
    return BETA_MIN + (BETA_MAX - BETA_MIN) * t


def _B(t: float) -> float:
    return BETA_MIN * t + (BETA_MAX - BETA_MIN) * t * t / 2


def _lam(S: np.ndarray, t: float) -> np.ndarray:
    e = np.exp(-2 * _B(t))
    return e * S + 1 - e


def baseline_variance(S: np.ndarray, scheme: str, N: int, eps: float, init: str) -> np.ndarray:
    t = [(HORIZON - eps) * k / (N - 1) for k in range(N)]
    tau = [HORIZON - tk for tk in t]
    D = t[1] - t[0]
    v = np.ones_like(S) if init == "white" else _lam(S, HORIZON)

    def slope(y, s):
        return _beta(s) * (y - y / _lam(S, s))

    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(N - 1):
            a, c = tau[k], tau[k + 1]
            lk, bk = _lam(S, a), _beta(a)
            if scheme == "em":
                v = (1 + D * bk * (1 - 2 / lk)) ** 2 * v + 2 * D * bk
            elif scheme == "ei":
                g1 = np.exp(_B(a) - _B(c)) - 1
                g2 = (np.exp(2 * (_B(a) - _B(c))) - 1) / 2
                v = (1 + g1 * (1 - 2 / lk)) ** 2 * v + 2 * g2
            elif scheme == "ddpm":
                b = 2 * D * bk
                v = ((1 - b / lk) / np.sqrt(1 - b)) ** 2 * v + b
            elif scheme == "euler":
                v = (1 + D * bk * (1 - 1 / lk)) ** 2 * v
            elif scheme == "heun":
                d1 = slope(1.0, a)
                v = (1 + D * (d1 + slope(1 + D * d1, c)) / 2) ** 2 * v
            else:
                m = a - D / 2
                k1 = slope(1.0, a)
                k2 = slope(1 + D * k1 / 2, m)
                k3 = slope(1 + D * k2 / 2, m)
                k4 = slope(1 + D * k3, c)
                v = (1 + D * (k1 + 2 * k2 + 2 * k3 + k4) / 6) ** 2 * v
    return v


def baseline_w2(S: np.ndarray, scheme: str, N: int, eps: float, init: str) -> float:
    P = baseline_variance(S, scheme, N, eps, init)
    if not np.all(np.isfinite(P)):
        return float("inf")
    return float(np.sqrt(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2)))


# ----------------------------------------------------------------------------------------------
def cold_worker() -> dict:
    """In a fresh process with an empty kernel cache: import, build kernels, full table."""
    t0 = time.perf_counter()
    from symsched.sde import error_table

    S, _ = load_spectrum()
    t1 = time.perf_counter()
    error_table(S, SIZES, EPS)
    return {"seconds": time.perf_counter() - t1, "import": t1 - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full-baseline", action="store_true", help="run the baseline on the whole table (~5 min)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(cold_worker()))
        return 0

    from symsched.sde import error_table

    S, label = load_spectrum()
    print(f"spectrum: {label}; {S.size} modes, {np.unique(S).size} distinct values")
    print(f"table: {len(SCHEMES)} schemes x sizes {SIZES} (grid points) x eps {EPS} x 2 starts + continuous")

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SYMSCHED_CACHE_DIR=cache)
        proc = subprocess.run([sys.executable, __file__, "--worker"], env=env, capture_output=True, text=True, check=True)
    cold = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"symsched, fresh process, empty kernel cache: {cold['seconds']:.2f} s (+ {cold['import']:.2f} s import/load)")

    error_table(S, (50,), (1e-3,))  # warm the kernels in this process
    t = time.perf_counter()
    full = error_table(S, SIZES, EPS)
    warm = time.perf_counter() - t
    verdict = "under" if max(warm, cold["seconds"]) < 60 else "OVER"
    print(f"symsched, warm: {warm:.2f} s  -> full table {verdict} one minute")

    eps_slice = (EPS,) if args.full_baseline else ((EPS[-1],),)
    inits = ("white", "exact") if args.full_baseline else ("white",)
    t = time.perf_counter()
    ours = error_table(S, SIZES, eps_slice[0])
    ours_slice = time.perf_counter() - t
    t = time.perf_counter()
    worst = 0.0
    for scheme in SCHEMES:
        for size in SIZES:
            for e in eps_slice[0]:
                for init in inits:
                    w = baseline_w2(S, scheme, size, e, init)
                    ref = ours.cells[(scheme, size, e, init)]
                    if np.isfinite(w) or np.isfinite(ref):
                        worst = max(worst, abs(w / ref - 1))
    base = time.perf_counter() - t
    scale = 1 if args.full_baseline else len(EPS) * 2
    what = "full table" if args.full_baseline else f"slice (eps = {EPS[-1]:g}, white start; 1/{scale} of the table)"
    print(f"\nbaseline vs symsched on the {what}:")
    print(f"  baseline (per-step NumPy loop over all {S.size} modes): {base:.2f} s")
    ours_time = ours_slice if not args.full_baseline else warm
    print(f"  symsched (de-duplicated modes, compiled kernels; computes both starts in its one pass): {ours_time:.2f} s")
    print(f"  ratio baseline / symsched: {base / ours_time:.1f}x   (max relative W2 difference {worst:.1e})")
    if not args.full_baseline:
        print(f"  full-table baseline, extrapolated x{scale}: ~{base * scale:.0f} s vs symsched {warm:.1f} s "
              f"(ratio ~{base * scale / warm:.1f}x)")
    _ = full
    return 0


if __name__ == "__main__":
    sys.exit(main())
