"""Benchmark: do spectrally optimised schedules help a *learned* denoiser? (issue 9, item 6)

The built-in model ``builtin:patches16`` (``symsched.models``; EDM-preconditioned, trained on the
left 80 % of scikit-image's photographs) samples with DDIM eta = 0 on its 1000-step linear DDPM
grid for K = 5, 10, 20 steps, under

* the W2- and the KL-optimised schedules for the model's data spectrum as ``symsched probe`` builds
  them (:func:`symsched.probe.default_schedules`: ``init="white"``, both end points free on the
  model's grid, with ``S = symsched.spectra.psd2d`` of the training patches), and
* every standard schedule (``symsched.schedules.STANDARD_SCHEDULES``) as a set of levels the model
  knows: the linear-grid names as diffusers picks them; the other DDPM families' levels and the
  continuous schedules (karras, kl_optimal, shifted, AYS) snapped to the nearest grid level in
  log-SNR (karras/kl_optimal/shifted span the grid's own sigma range). Column ``t0`` gives the first
  (noisiest) timestep;
* the ablation ``optimised-w2-pinned``: the W2 objective with :func:`symsched.optimize_schedule`'s
  default endpoints (first level pinned at ``t0 = 999``, last free; ``--no-pinned`` leaves them out),
  compared also with the best standard schedule that starts at t = 999.

Each schedule draws ``--samples`` samples for each of ``--seeds`` (the same initial noise for every
schedule: paired comparisons) and compares them with ``--samples`` held-out patches (the right
20 % of the photographs), sampling and scoring with :mod:`symsched.probe` (``probe.sample``, ``probe.compare``:
the code ``symsched probe`` runs): MMD² (unbiased, a mixture of RBF kernels at 0.5, 1 and 2 × the median
heuristic of the reference), sliced W2 (POT, 512 fixed directions), Fréchet distance (Gaussian fits in pixel
space), the measured spectral KL/W2 (periodogram of the samples vs the held-out patches') and the predicted
ones (closed form ``output_spectrum`` of ``S``). A "data" row compares training patches with the held-out
ones: the floor of every metric. Kendall's τ says how well the predicted W2/KL rank the schedules
like MMD² (over all schedules of a K). Every metric is mean ± sd over the seeds; "paired" rows give
the per-seed difference optimised - best standard (mean ± sd of the difference, relative change).

``--ablation STEPS`` instead trains the same network as a plain ε-predictor (no preconditioning) for
STEPS steps and compares both at t = 999, where x̂0 = (x_t - √(1-ᾱ) ε̂)/√ᾱ multiplies the ε error by 157.

Run: ``python benchmarks/bench_learned.py [--steps 5,10,20] [--samples 1000] [--seeds 0,1,2]
[--standard all] [--threads 2] [--no-pinned]``. The defaults are the README's table (1,000 samples, the standard
schedules ``DEFAULT_STANDARD``): 209 s with ``--threads 1`` on this 2-core machine while the test suite ran on
it (2 December 2026); ``--standard all`` adds every standard schedule (about 3× longer), ``--samples 2000``
doubles the sampling and quadruples the cost of MMD². The Markdown table is printed and written to
``benchmarks/results/learned.md`` (JSON with all numbers next to it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
#: the standard schedules of the README's table: the linear grid's two spacings, Karras, AYS and SD's grid
DEFAULT_STANDARD = ("linear-trailing", "linear-leading", "karras", "ays-sd15", "scaled_linear-linspace")
METRICS = ("mmd2", "sw2", "fd", "kl_meas", "w2_meas")


# ---------------------------------------------------------------------------------------------
# sampling and metrics: symsched.probe (the code `symsched probe` runs)
# ---------------------------------------------------------------------------------------------
#: the probe's metric names -> this table's columns
_PROBE_METRICS = {"mmd2": "mmd2", "sliced_w2": "sw2", "fd": "fd", "spectral_kl": "kl_meas", "spectral_w2": "w2_meas"}
N_PROJECTIONS = 512


def ddim_samples(denoiser, alpha_bar: np.ndarray, n: int, seed: int, *, shape=None, prediction=None) -> np.ndarray:
    """DDIM eta = 0 from white noise at ``alpha_bar[0]`` to the clean level: :func:`symsched.probe.sample`
    (``shape`` and ``prediction`` default to the model's own)."""
    from symsched import probe

    return probe.sample(denoiser, alpha_bar, n_samples=n, sampler="ddim", seed=seed, prediction=prediction,
                        shape=shape, progress=False)


def scores(sets: list[np.ndarray], ref: np.ndarray, metrics=tuple(_PROBE_METRICS)) -> dict[str, list[float]]:
    """Per-seed metrics of ``sets`` against ``ref`` (:func:`symsched.probe.compare`: MMD² at 0.5/1/2 x the median
    heuristic, sliced W2 with 512 fixed directions, FD, measured spectral KL/W2 against the reference's PSD)."""
    from symsched import probe

    c = probe.compare(list(sets), ref, metrics=list(metrics), n_projections=N_PROJECTIONS)
    return {_PROBE_METRICS[k]: [float(v) for v in c.values[k]] for k in metrics}


# ---------------------------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------------------------
def baseline_levels(name: str, K: int, grid: np.ndarray) -> np.ndarray:
    """A standard schedule as levels of the model's grid (module docstring)."""
    from symsched.schedules import _GRID_NAMES, from_grid, nearest_timesteps, standard_schedule

    if name.startswith("linear-"):
        return standard_schedule(name, K)  # on the linear grid = the model's grid
    if name in _GRID_NAMES:  # another beta family: its levels, snapped
        ab = standard_schedule(name, K)
        return from_grid(grid, nearest_timesteps(ab, grid))
    return standard_schedule(name, K, grid=grid)


def schedules_for(S: np.ndarray, K: int, grid: np.ndarray, pinned: bool = True,
                  standard: "tuple[str, ...] | None" = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    import symsched
    from symsched.probe import default_schedules
    from symsched.schedules import STANDARD_SCHEDULES

    out, skipped = default_schedules(S, K, names=("optimised-w2", "optimised-kl"), grid=grid), {}
    if pinned:  # ablation: the optimiser's default endpoints (first level at the grid's noisiest level)
        for div in ("w2",):  # (KL pinned: far worse already when free)
            out[f"optimised-{div}-pinned"] = symsched.optimize_schedule(S, K, divergence=div, grid=grid,
                                                                        init="white").alpha_bar
    for name in standard or STANDARD_SCHEDULES:
        try:
            out[name] = baseline_levels(name, K, grid)
        except ValueError as exc:  # e.g. two levels on one grid timestep
            skipped[name] = str(exc)
    return out, skipped


def first_timestep(ab: np.ndarray, grid: np.ndarray) -> int:
    return int(np.argmin(np.abs(grid - ab[0])))


# ---------------------------------------------------------------------------------------------
# the study
# ---------------------------------------------------------------------------------------------
def run(steps: list[int], n: int, seeds: list[int], pinned: bool = True, progress: bool = True,
        standard: "tuple[str, ...] | None" = None, partial: "Path | None" = None) -> dict:
    import symsched
    from symsched import models
    from symsched.spectra import psd2d

    m = models.load_model("builtin:patches16")
    train = models.patches16("train")
    test = models.patches16("test")
    ref = test[np.linspace(0, test.shape[0] - 1, n).round().astype(int)]
    S = psd2d(train)
    rows: dict = {"data": {}, "K": {}}
    # the floor: training patches (distinct subsets per seed) against the held-out reference
    rows["data"] = scores([train[np.random.default_rng(1000 + s).choice(train.shape[0], n, replace=False)]
                           for s in seeds], ref)
    for K in steps:
        scheds, skipped = schedules_for(S, K, m.grid, pinned=pinned, standard=standard)
        res = {}
        t0 = time.perf_counter()
        for name, ab in scheds.items():
            P = symsched.output_spectrum(S, ab, sampler="ddim", eta=0.0, init="white")
            r = {"alpha_bar": ab.tolist(), "t0": first_timestep(ab, m.grid),
                 "kl_pred": symsched.kl_divergence(S, P), "w2_pred": symsched.w2_distance(P, S)}
            r.update(scores([ddim_samples(m, ab, n, seed=s) for s in seeds], ref))
            res[name] = r
            if progress:
                print(f"  K={K:2d} {name:24s} MMD² {np.mean(r['mmd2']):.3e}  ({time.perf_counter() - t0:5.0f} s)",
                      file=sys.stderr, flush=True)
        rows["K"][K] = {"schedules": res, "skipped": skipped}
        if partial is not None:  # keep what is done if a long run is stopped
            from symsched._io import atomic_write_text

            atomic_write_text(partial, json.dumps(rows, indent=1, default=float) + "\n")
    return rows


def kendall(res: dict, pred: str, metric: str = "mmd2") -> float:
    from scipy.stats import kendalltau

    names = list(res)
    return float(kendalltau([np.mean(res[k][pred]) for k in names], [np.mean(res[k][metric]) for k in names]).statistic)


def _ms(v: list[float], fmt: str) -> str:
    return f"{np.mean(v):{fmt}} ± {np.std(v, ddof=1):{fmt}}" if len(v) > 1 else f"{v[0]:{fmt}}"


def to_markdown(rows: dict, n: int, seeds: list[int]) -> str:
    fmt = {"mmd2": ".3e", "sw2": ".4f", "fd": ".3f", "kl_meas": ".1f", "w2_meas": ".3f"}
    head = ("| K | schedule | t0 | pred. KL | pred. W2 | MMD² | sliced W2 | FD | meas. KL | meas. W2 |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"DDIM eta=0 on the 1000-step linear grid, builtin:patches16, {n} samples × {len(seeds)} paired "
             f"seeds vs {n} held-out patches (mean ± sd over seeds).", "", head]
    d = rows["data"]
    lines.append("| – | data (train patches) | – | – | – | "
                 + " | ".join(_ms(d[k], fmt[k]) for k in METRICS) + " |")
    summary = []
    for K, block in rows["K"].items():
        res = block["schedules"]
        order = sorted(res, key=lambda k: np.mean(res[k]["mmd2"]))
        for name in order:
            r = res[name]
            bold = "**" if name.startswith("optimised") else ""
            lines.append(f"| {K} | {bold}{name}{bold} | {r['t0']} | {r['kl_pred']:.1f} | {r['w2_pred']:.3f} | "
                         + " | ".join(_ms(r[k], fmt[k]) for k in METRICS) + " |")
        std = [k for k in res if not k.startswith("optimised")]
        for opt in [k for k in res if k.startswith("optimised")]:
            same_t0 = [k for k in std if res[k]["t0"] == res[opt]["t0"]]
            for label, pool in (("best standard", std), (f"best standard with t0={res[opt]['t0']}", same_t0)):
                if not opt.endswith("pinned") and pool is same_t0 or not pool:
                    continue
                parts = []
                for k in ("mmd2", "sw2", "fd"):
                    best = min(pool, key=lambda s: np.mean(res[s][k]))
                    diff = np.array(res[opt][k]) - np.array(res[best][k])
                    rel = np.mean(diff) / abs(np.mean(res[best][k]))  # (unbiased MMD² can be < 0 with few samples)
                    parts.append(f"{k} {rel:+.1%} vs {best} (diff {_ms(diff.tolist(), '.2e')}, "
                                 f"lower in {int(np.sum(diff < 0))}/{len(diff)} seeds)")
                summary.append(f"- K={K} {opt} vs {label}: " + "; ".join(parts))
        ratio = np.mean(res["optimised-kl"]["mmd2"]) / np.mean(res["optimised-w2"]["mmd2"])
        summary.append(f"- K={K}: MMD²(optimised-kl) / MMD²(optimised-w2) = {ratio:.2f}; Kendall τ vs MMD² "
                       f"(over {len(res)} schedules): predicted W2 {kendall(res, 'w2_pred'):+.2f}, "
                       f"predicted KL {kendall(res, 'kl_pred'):+.2f}; measured W2 "
                       f"{kendall(res, 'w2_meas'):+.2f}, measured KL {kendall(res, 'kl_meas'):+.2f}")
        if block["skipped"]:
            summary.append(f"- K={K} skipped: " + "; ".join(f"{k} ({v})" for k, v in block["skipped"].items()))
    return "\n".join(lines + ["", "Paired differences, optimised - best standard on that metric (per seed; "
                              "t0 = first timestep):", ""]
                     + summary) + "\n"


# ---------------------------------------------------------------------------------------------
# ablation: a plain epsilon-prediction network (why the built-in model is preconditioned)
# ---------------------------------------------------------------------------------------------
def epsilon_ablation(steps: int, n: int) -> str:
    """Train the same ResMLP as a plain DDPM ε-predictor (input x_t, target ε, no c_skip/c_out/c_in;
    same data, seed, optimiser, batch and level sampling as the shipped model, ``steps`` steps) and
    compare it with the shipped model at t = 999: RMS error of ε̂ and of x̂0 = (x_t - √(1-ᾱ) ε̂)/√ᾱ on
    held-out patches, and MMD² of DDIM samples on linear-trailing K = 5 (which starts at t = 999)."""
    import torch

    from symsched import models
    from symsched.models.network import ResMLP
    from symsched.models.precondition import coefficients
    from symsched.models.train import TrainConfig, _lr, _level_weights
    from symsched.schedules import standard_schedule

    cfg = TrainConfig()
    m = models.load_model("builtin:patches16")
    grid, lrange = m.grid, m.log_snr_range
    data = models.patches16("train").reshape(-1, 256)
    rng = np.random.Generator(np.random.PCG64(cfg.seed))
    torch.manual_seed(cfg.seed)
    net = ResMLP(cfg.net)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    ablation_cfg = TrainConfig(steps=steps)
    p = _level_weights(grid, cfg.level_sampling)
    t0 = time.perf_counter()
    for step in range(steps):
        x0 = data[rng.integers(0, data.shape[0], size=cfg.batch_size)]
        ab = grid[rng.choice(grid.size, size=cfg.batch_size, p=p)]
        eps = rng.standard_normal(x0.shape)
        x_t = np.sqrt(ab)[:, None] * x0 + np.sqrt(1 - ab)[:, None] * eps
        c_noise = coefficients(ab, sigma_data=cfg.sigma_data, log_snr_range=lrange)[3]
        f32 = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
        for g in opt.param_groups:
            g["lr"] = _lr(ablation_cfg, step)
        loss = torch.mean((net(f32(x_t), f32(c_noise)) - f32(eps)) ** 2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
    net.eval()
    train_s = time.perf_counter() - t0

    def eps_denoiser(x, a):  # x̂0 from ε̂: the division by √ᾱ the issue reports
        c_noise = coefficients(np.full(x.shape[0], a), sigma_data=cfg.sigma_data, log_snr_range=lrange)[3]
        with torch.no_grad():
            e = net(torch.from_numpy(x.reshape(x.shape[0], -1).astype(np.float32)),
                    torch.from_numpy(c_noise.astype(np.float32))).double().numpy().reshape(x.shape)
        return (x - math.sqrt(1 - a) * e) / math.sqrt(a)

    test = models.patches16("test")
    ref = test[np.linspace(0, test.shape[0] - 1, n).round().astype(int)]
    a = float(grid[-1])
    eps = np.random.default_rng(7).standard_normal(ref.shape)
    x_t = math.sqrt(a) * ref + math.sqrt(1 - a) * eps
    lines = [f"Ablation at t = 999 (alpha_bar = {a:.3g}, 1/sqrt(alpha_bar) = {1 / math.sqrt(a):.0f}), "
             f"{n} held-out patches; plain eps-network trained {steps} steps ({train_s:.0f} s):", ""]
    ab5 = standard_schedule("linear-trailing", 5)
    for label, den in (("plain eps-prediction", eps_denoiser), ("builtin:patches16 (EDM)", m.denoiser)):
        x0h = den(x_t, a)
        eh = (x_t - math.sqrt(a) * x0h) / math.sqrt(1 - a)
        X = ddim_samples(den, ab5, n, seed=0, shape=m.shape, prediction="sample").reshape(n, -1)
        lines.append(f"- {label}: RMS error of eps_hat {np.sqrt(np.mean((eh - eps) ** 2)):.4f}, of x0_hat "
                     f"{np.sqrt(np.mean((x0h - ref) ** 2)):.3f} (data RMS {np.sqrt(np.mean(ref ** 2)):.3f}); "
                     f"max |x0_hat| {np.abs(x0h).max():.2f}; DDIM linear-trailing K=5: max |sample| "
                     f"{np.abs(X).max():.2f}, MMD² {scores([X.reshape(n, *m.shape)], ref, ('mmd2',))['mmd2'][0]:.3e}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default="5,10,20", help="comma-separated K (default 5,10,20)")
    ap.add_argument("--samples", default=1000, type=int, help="samples per schedule and seed (default 1000)")
    ap.add_argument("--seeds", default="0,1,2", help="paired seeds (default 0,1,2)")
    ap.add_argument("--no-pinned", action="store_true",
                    help="skip the pinned-first-level ablation (default: include it)")
    ap.add_argument("--standard", default=",".join(DEFAULT_STANDARD),
                    help="comma-separated standard schedules, or 'all' for STANDARD_SCHEDULES (default: "
                    f"{','.join(DEFAULT_STANDARD)})")
    ap.add_argument("--threads", default=2, type=int, help="torch CPU threads (default 2)")
    ap.add_argument("--out", default=str(RESULTS / "learned.md"), help="Markdown output (JSON next to it)")
    ap.add_argument("--ablation", type=int, default=0, metavar="STEPS",
                    help="only run the plain eps-network ablation, training it STEPS steps")
    args = ap.parse_args(argv)
    import torch

    from symsched._io import atomic_write_text

    torch.set_num_threads(args.threads)
    if args.ablation:
        text = epsilon_ablation(args.ablation, args.samples)
        print(text)
        atomic_write_text(RESULTS / "learned_ablation.md", text)
        return 0
    steps = [int(s) for s in args.steps.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    out = Path(args.out)
    standard = None if args.standard.strip().lower() == "all" else tuple(args.standard.split(","))
    rows = run(steps, args.samples, seeds, pinned=not args.no_pinned, standard=standard,
               partial=out.with_suffix(".partial.json"))
    elapsed = time.perf_counter() - t0
    md = to_markdown(rows, args.samples, seeds) + (f"\nTotal time {elapsed:.0f} s ({args.threads} torch "
                                                   f"thread{'s' if args.threads != 1 else ''}).\n")
    print(md)
    atomic_write_text(out, md)
    atomic_write_text(out.with_suffix(".json"), json.dumps(rows, indent=1, default=float) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
