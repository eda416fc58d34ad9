"""Benchmark: ``symsched probe`` on its defaults, and the cost of its sample metrics against a plain baseline.

1. **The command.** ``symsched probe`` with its defaults (``builtin:patches16``, DDIM, K = 5, six
   schedules, 2,000 samples × 3 paired seeds), timed end to end in this process, with the split
   reported by the command (schedule optimisation, sampling, metrics). Wall and CPU time are both
   printed: on a shared machine wall time depends on the load. Baseline, same run: the network's
   forward passes the command cannot avoid (``LearnedModel.denoiser`` on 2,000 samples, once per
   step, schedule and seed: 90 batched calls for DDIM), timed alone; the command's ratio to that floor
   is printed. Without torch or ``symsched.models`` the step is skipped.
2. **Metrics.** One reference of 2,000 16×16 samples, 18 sample sets (6 schedules × 3 seeds) of
   2,000 samples: :func:`symsched.probe.compare_paired` (reference-side work done once: kernel sums,
   sorted projections, covariance square root) against the plain per-set calls a notebook would
   make (``probe.mmd2``, POT's ``ot.sliced_wasserstein_distance``, ``probe.frechet_distance``). Same
   numbers (checked), ratio of times printed.

Run: ``python benchmarks/bench_probe.py [--skip-cli]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

import numpy as np


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_cli() -> None:
    try:
        import torch  # noqa: F401

        from symsched import models  # noqa: F401
    except ImportError as exc:
        print(f"[cli] skipped: {exc}")
        return
    from symsched.cli import main

    with tempfile.TemporaryDirectory() as out:
        t0, c0 = time.perf_counter(), _cpu()
        rc = main(["probe", "--out", out, "--no-progress"])
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    floor = network_floor()
    print(f"[cli] symsched probe (defaults): exit {rc}, wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"(budget: 120 s wall on 2 cores); the network's forward passes alone {floor:.1f} s: "
          f"ratio {wall / floor:.2f}x", flush=True)


def network_floor(steps: int = 5, schedules: int = 6, seeds: int = 3, n: int = 2000) -> float:
    """Wall time of the denoiser calls ``symsched probe`` makes on its defaults (one per DDIM step, schedule and
    seed, each on ``n`` samples), with nothing else: the floor of the command's sampling."""
    from symsched.models import load_model

    model = load_model()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, *model.shape))
    levels = np.linspace(0.01, 0.99, steps)
    model.denoiser(x, 0.5)  # warm-up (torch's first call allocates)
    t0 = time.perf_counter()
    for _ in range(schedules * seeds):
        for ab in levels:
            model.denoiser(x, ab)
    return time.perf_counter() - t0


def bench_metrics() -> None:
    import ot

    from symsched import montecarlo as mc
    from symsched import probe, spectra

    S = spectra.natural_patches_spectrum(patch_size=16)[..., 0]
    ref = mc.gaussian_field(S, 2000, seed=0)
    sets = {f"s{i}": [mc.gaussian_field(S * (1 + 0.05 * i), 2000, seed=100 + 10 * i + j) for j in range(3)]
            for i in range(6)}
    metrics = ("mmd2", "sliced_w2", "fd")

    t0 = time.perf_counter()
    pc = probe.compare_paired(sets, ref, metrics=metrics)
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    P = probe._projections(256, 128, 0)
    plain = {}
    for k, xs in sets.items():
        plain[k] = {
            "mmd2": [probe.mmd2(x, ref) for x in xs],
            "sliced_w2": [ot.sliced_wasserstein_distance(x.reshape(2000, -1), ref.reshape(2000, -1), projections=P)
                          for x in xs],
            "fd": [probe.frechet_distance(x, ref) for x in xs],
        }
    t_plain = time.perf_counter() - t0
    ours = np.array([[pc.comparisons[k].values[m] for m in metrics] for k in sets])
    base = np.array([[plain[k][m] for m in metrics] for k in sets])
    err = float(np.max(np.abs(ours - base) / np.abs(base)))
    print(f"[metrics] 18 sets x 2000 samples vs 2000 reference, MMD² + sliced W2 + FD: "
          f"compare_paired {t_ours:.2f} s, plain per-set calls {t_plain:.2f} s, ratio {t_plain / t_ours:.2f}x "
          f"(max relative difference {err:.1e})", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args(argv)
    bench_metrics()
    if not args.skip_cli:
        bench_cli()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
