"""Training of the built-in ``patches16`` denoiser (``symsched train-demo`` runs :func:`train`).

Recipe (all fixed by :class:`TrainConfig`; the defaults produced the shipped weights):

* data: :func:`symsched.models.patches16` ``("train")``, flattened to 256 pixels; each step draws
  ``batch_size`` patch indices, timesteps and Gaussian noise from one NumPy ``PCG64(seed)``
  stream (platform-independent), and mirrors a patch left-right with probability 1/2;
* noise levels: timesteps ``t`` of the 1000-step linear DDPM grid
  (``symsched.schedules.training_grid("linear")``) drawn from an equal mixture of the uniform law on
  ``{0, ..., 999}`` and the law uniform in log-SNR (``t`` with probability ∝ the log-SNR interval
  it stands for, which gives the nearly clean levels more weight), ``x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε``;
* loss: EDM's, ``|F(c_in x_t; c_noise) - (x0 - c_skip x_t)/c_out|²`` averaged over pixels and the
  batch, i.e. the x̂0 error weighted by ``1/c_out²`` (Karras et al. 2022, eq. 8 and Table 1);
* optimiser: Adam (β = 0.9, 0.99), peak learning rate ``lr`` after a linear warm-up, cosine decay
  to 0 at ``steps``, gradient norm clipped at 1; the shipped weights are an exponential moving
  average of the iterates (decay ``ema``);
* weights initialised by ``torch.manual_seed(seed)``; ``threads`` CPU threads with
  ``torch.use_deterministic_algorithms(True)``, so a run is bit-reproducible on one machine; across machines
  the kernels' float32 rounding moves the first losses by ~1e-7 relative, and 12,000 steps grow that into weights
  that differ by up to ~1 (same held-out MSE to ~1e-4: measured 6 December on an AVX-512 CPU).
"""

from __future__ import annotations

import json
import math
import os
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .._io import atomic_write, atomic_write_json, check_not_a_folder
from .._validate import (MAX_TRAIN_TIMESTEPS, ArgumentTypeError, _show, as_bool, as_int, as_positive, as_positive_int,
                         as_real, check_choice)
from .datasets import patches16
from .network import NetConfig, ResMLP, net_config
from .precondition import check_sigma_data, coefficients, grid_log_snr_range, log_snr

__all__ = ["TrainConfig", "TrainResult", "train", "check_config", "training_levels", "save", "WEIGHTS_FORMAT",
           "MAX_TRAIN_STEPS", "MAX_BATCH_SIZE", "MAX_SEED", "LEVEL_SAMPLINGS"]

#: ``format`` entry of the weight file's metadata, checked by the loader.
WEIGHTS_FORMAT = "symsched-denoiser-v1"
#: Most training steps of one run (``steps``; about 11 hours of one CPU core at the shipped batch size).
MAX_TRAIN_STEPS = 1_000_000
#: Largest batch (2**16; the training split holds 27,983 patches).
MAX_BATCH_SIZE = 1 << 16
#: Largest seed: ``torch.manual_seed`` takes at most 2**64 - 1.
MAX_SEED = (1 << 64) - 1
#: Accepted ``level_sampling``: how training timesteps are drawn (:func:`_level_weights`).
LEVEL_SAMPLINGS: tuple[str, ...] = ("uniform", "log_snr", "mixed")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train` (the defaults made the shipped ``patches16`` weights)."""

    seed: int = 0
    steps: int = 12000
    batch_size: int = 256
    lr: float = 4e-3
    warmup: int = 200
    ema: float = 0.999
    grad_clip: float = 1.0
    flip: bool = True
    level_sampling: str = "mixed"  #: "uniform" in t, "log_snr" or "mixed" (see _level_weights)
    sigma_data: float = 0.44  #: RMS of the training pixels (0.438), rounded
    beta_schedule: str = "linear"
    num_train_timesteps: int = 1000
    threads: int = 1
    net: NetConfig = field(default_factory=NetConfig)

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (``dataclasses.asdict``, ``net`` as a nested dict of its fields): what
        :func:`save` writes as the weight file's ``train_config`` metadata and in the training log."""
        return asdict(self)


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the EMA network, per-step losses and the time it took."""

    net: Any  # ResMLP with the EMA weights
    raw_net: Any  # the last iterate (not shipped)
    losses: list[float]
    config: TrainConfig
    steps_done: int
    wall_seconds: float
    cpu_user_seconds: float
    cpu_sys_seconds: float
    log_snr_range: tuple[float, float]


def _unit(value: Any, name: str, *, closed_low: bool) -> float:
    """A finite number in [0, 1) (``closed_low``) or (0, 1]; ArgumentTypeError for a non-number."""
    val = as_real(value, name)
    if not (0.0 <= val < 1.0 if closed_low else 0.0 < val <= 1.0):
        raise ValueError(f"{name} must lie in {'[0, 1)' if closed_low else '(0, 1]'} (got {_show(value)})")
    return val


def training_levels(beta_schedule: Any, num_train_timesteps: Any) -> np.ndarray:
    """The training grid of a configuration, at least two levels (one level has no log-SNR range to condition on):
    ValueError naming ``beta_schedule`` or ``num_train_timesteps`` (an integer in [2, MAX_TRAIN_TIMESTEPS]).
    Source: :func:`symsched.schedules.training_grid` (diffusers ``betas`` and ``alphas_cumprod``; Ho et al. 2020,
    arXiv 2006.11239, for the linear schedule)."""
    from ..schedules import training_grid

    T = as_int(num_train_timesteps, "num_train_timesteps", 2, MAX_TRAIN_TIMESTEPS, limit="MAX_TRAIN_TIMESTEPS")
    return training_grid(beta_schedule, num_train_timesteps=T)


def check_config(config: Any) -> TrainConfig:
    """``config`` with every field checked (a count given as a float, 1000.0 too, is refused), before any work.

    Rules: ``seed`` an integer in [0, MAX_SEED]; ``steps`` in [1, MAX_TRAIN_STEPS]; ``batch_size`` in
    [1, MAX_BATCH_SIZE]; ``warmup`` in [0, MAX_TRAIN_STEPS] (beyond ``steps`` the run ends in the warm-up);
    ``lr`` in (0, 1]; ``ema`` in [0, 1); ``grad_clip`` a positive finite number; ``flip`` a boolean;
    ``level_sampling`` one of LEVEL_SAMPLINGS; ``sigma_data`` in ``precondition.SIGMA_DATA_RANGE``;
    ``beta_schedule`` and ``num_train_timesteps`` (>= 2) as :func:`training_levels`; ``threads`` in
    [1, this machine's CPUs]; ``net`` as :func:`network.net_config`. Raises ArgumentTypeError (``config`` not a
    TrainConfig, a field of the wrong type) or ValueError, naming the field.

    Source: the recipe of this module's docstring; ``MAX_SEED`` is the largest seed ``torch.manual_seed`` takes,
    ``SIGMA_DATA_RANGE`` from :mod:`symsched.models.precondition`.
    """
    if not isinstance(config, TrainConfig):
        raise ArgumentTypeError(f"config must be a TrainConfig (got {type(config).__name__})")
    c, cpus = config, os.cpu_count() or 1
    steps = as_int(c.steps, "steps", 1, MAX_TRAIN_STEPS,
                   rule=f"a positive integer up to MAX_TRAIN_STEPS = {MAX_TRAIN_STEPS} (symsched.models.train)")
    training_levels(c.beta_schedule, c.num_train_timesteps)
    return TrainConfig(
        seed=as_int(c.seed, "seed", 0, MAX_SEED), steps=steps,
        batch_size=as_int(c.batch_size, "batch_size", 1, MAX_BATCH_SIZE), lr=_unit(c.lr, "lr", closed_low=False),
        warmup=as_int(c.warmup, "warmup", 0, MAX_TRAIN_STEPS, rule=f"an integer in [0, {MAX_TRAIN_STEPS}]"),
        ema=_unit(c.ema, "ema", closed_low=True), grad_clip=as_positive(c.grad_clip, "grad_clip"),
        flip=as_bool(c.flip, "flip"), level_sampling=check_choice(c.level_sampling, "level_sampling", LEVEL_SAMPLINGS),
        sigma_data=check_sigma_data(c.sigma_data), beta_schedule=c.beta_schedule,
        num_train_timesteps=int(c.num_train_timesteps),
        threads=as_int(c.threads, "threads", 1, cpus, rule=f"an integer in [1, {cpus}] (this machine's CPUs)"),
        net=net_config(c.net, "net"))


def _check_run(config: Any, stop_after: Any, minutes: Any, progress: Any, on_step: Any
               ) -> tuple[TrainConfig, int, Optional[float]]:
    """:func:`train`'s arguments checked: (config, steps to run, minutes or None)."""
    cfg = check_config(config)
    as_bool(progress, "progress")
    if on_step is not None and not callable(on_step):
        raise ArgumentTypeError(f"on_step must be None or a callable(step, loss) (got {type(on_step).__name__})")
    total = cfg.steps if stop_after is None else min(as_positive_int(stop_after, "stop_after"), cfg.steps)
    return cfg, total, (None if minutes is None else as_positive(minutes, "minutes"))


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))


def train(
    config: TrainConfig = TrainConfig(),
    *,
    stop_after: Optional[int] = None,
    minutes: Optional[float] = None,
    progress: bool = False,
    on_step: Optional[Callable[[int, float], None]] = None,
) -> TrainResult:
    """Train the ``patches16`` denoiser F with the recipe of the module docstring.

    Parameters
    ----------
    config : TrainConfig
        Hyper-parameters (checked by :func:`check_config`); the learning-rate schedule always spans
        ``config.steps``.
    stop_after : int, optional
        Stop after this many steps, a positive integer (the first steps of the full run, e.g. for a
        reproducibility check of the loss curve).
    minutes : float, optional
        Wall-clock cap, a positive number; a run stopped by it is *not* the reproducible one.
    progress : bool
        Show a tqdm progress bar with the running loss.
    on_step : callable(step, loss), optional
        Called after every step.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        A bad field of ``config`` (:func:`check_config`: e.g. ``sigma_data=0``, ``ema=2``, ``steps=0``,
        ``grad_clip=nan``, ``level_sampling="bogus"``), ``stop_after`` not a positive integer, ``minutes`` not a
        positive finite number; all checked before any work.
    ArgumentTypeError
        (a TypeError and a ValueError) ``config`` not a TrainConfig, a field or argument of the wrong type
        (``stop_after="1"``, ``progress=1``, ``on_step=3``).

    Source: EDM loss and preconditioning, Karras et al. 2022 (arXiv 2206.00364), eq. 8 and Table 1, in VP
    coordinates (:mod:`symsched.models.precondition`); forward process ``x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε``, Ho et al.
    2020 (arXiv 2006.11239), eq. 4, on their linear grid (§4); Adam, Kingma & Ba 2015 (arXiv 1412.6980); cosine
    decay, Loshchilov & Hutter 2017 (arXiv 1608.03983).
    """
    import torch
    from tqdm.auto import tqdm

    cfg, total, minutes = _check_run(config, stop_after, minutes, progress, on_step)
    grid = training_levels(cfg.beta_schedule, cfg.num_train_timesteps)
    lrange = grid_log_snr_range(grid)
    data = patches16("train").reshape(-1, 16 * 16)
    rng = np.random.Generator(np.random.PCG64(cfg.seed))

    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(cfg.seed)
        net = ResMLP(cfg.net)
        ema = ResMLP(cfg.net)
        ema.load_state_dict(net.state_dict())
        ema.requires_grad_(False)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        losses: list[float] = []
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        bar = tqdm(total=total, desc="train patches16", unit="step", disable=not progress)
        step = 0
        while step < total:
            losses.append(_step(cfg, step, net, ema, opt, _batch(cfg, data, grid, lrange, rng)))
            step += 1
            if on_step is not None:
                on_step(step, losses[-1])
            if step % 50 == 0 or step == total:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            bar.update(1)
            if minutes is not None and time.perf_counter() - t0 > 60.0 * minutes:
                break
        bar.close()
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)
    ema.eval()
    return TrainResult(net=ema, raw_net=net.eval(), losses=losses, config=cfg, steps_done=step, wall_seconds=wall,
                       cpu_user_seconds=r1.ru_utime - r0.ru_utime, cpu_sys_seconds=r1.ru_stime - r0.ru_stime,
                       log_snr_range=lrange)


def _step(cfg: TrainConfig, step: int, net: Any, ema: Any, opt: Any, batch: tuple[Any, Any, Any]) -> float:
    """One optimiser step of ``net`` on ``batch`` (learning rate of ``step``, clipped gradient), then the EMA update;
    returns the loss."""
    import torch

    x_in, c_noise, target = batch
    for g in opt.param_groups:
        g["lr"] = _lr(cfg, step)
    loss = torch.mean((net(x_in, c_noise) - target) ** 2)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
    opt.step()
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), net.parameters()):
            pe.lerp_(p, 1.0 - cfg.ema)
    return float(loss.detach())


def _batch(cfg: TrainConfig, data: np.ndarray, grid: np.ndarray, lrange: tuple[float, float],
           rng: np.random.Generator) -> tuple[Any, Any, Any]:
    """One training batch: network input, noise condition and regression target (float32 tensors)."""
    import torch

    B = cfg.batch_size
    idx = rng.integers(0, data.shape[0], size=B)
    t = rng.choice(grid.size, size=B, p=_level_weights(grid, cfg.level_sampling))
    eps = rng.standard_normal((B, data.shape[1]))
    x0 = data[idx]
    if cfg.flip:
        flip = rng.random(B) < 0.5
        x0 = np.where(flip[:, None], x0.reshape(B, 16, 16)[:, :, ::-1].reshape(B, -1), x0)
    ab = grid[t]
    c_skip, c_out, c_in, c_noise = coefficients(ab, sigma_data=cfg.sigma_data, log_snr_range=lrange)
    xt = np.sqrt(ab)[:, None] * x0 + np.sqrt(1.0 - ab)[:, None] * eps
    target = (x0 - c_skip[:, None] * xt) / c_out[:, None]
    f32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return f32(c_in[:, None] * xt), f32(c_noise), f32(target)


def _level_weights(grid: np.ndarray, how: str) -> np.ndarray:
    """Probability of each grid level: "uniform" in t, "log_snr" ∝ the log-SNR interval the level
    stands for (uniform in log-SNR over the grid), "mixed" the average of the two."""
    u = np.full(grid.size, 1.0 / grid.size)
    if how == "uniform":
        return u
    ell = log_snr(grid)
    mid = np.concatenate([[ell[0]], 0.5 * (ell[1:] + ell[:-1]), [ell[-1]]])
    w = -np.diff(mid) / (ell[0] - ell[-1])
    return w if how == "log_snr" else 0.5 * (u + w)


#: Per-step losses kept in the log (the "head" a re-run is checked against); the rest as window means.
LOG_HEAD, LOG_WINDOW = 200, 100


def loss_log(losses: list[float]) -> dict[str, Any]:
    """``{"loss_head": first LOG_HEAD per-step losses, "loss_window": LOG_WINDOW, "loss_means": mean
    of each window of LOG_WINDOW steps}``; values as the shortest decimal that round-trips float32."""
    f32 = lambda v: float(str(np.float32(v)))  # noqa: E731
    a = np.asarray(losses, dtype=np.float64)
    means = [f32(a[i:i + LOG_WINDOW].mean()) for i in range(0, a.size, LOG_WINDOW)]
    return {"loss_head": [f32(v) for v in a[:LOG_HEAD]], "loss_window": LOG_WINDOW, "loss_means": means}


def _sorted_header(data: bytes) -> bytes:
    """A safetensors file's bytes with its JSON header's keys sorted: safetensors writes them in the order of a Rust
    hash map, which changes from process to process, so identical runs gave files of other bytes (audit of
    6 December). The header keeps safetensors' layout (8-byte little-endian length, JSON padded with spaces to a
    multiple of 8); the tensor offsets are relative to the data that follows it, which is unchanged."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


def save(result: TrainResult, weights: "str | Path", log: "str | Path | None" = None, *,
         extra: Optional[dict[str, Any]] = None) -> None:
    """Write the EMA weights as safetensors (metadata: format, config, sigma_data, log-SNR range)
    and, if ``log`` is given, the training log as JSON. Both written atomically; missing folders on their paths
    are created (as ``mkdir -p``, as every writer of symsched does), a folder on a path that is a file is an OSError.

    ``weights`` must name a ``.safetensors`` file (what :func:`symsched.models.load_model` reads). ArgumentTypeError
    for a ``result`` that is no :class:`TrainResult` or a path that is no ``str`` / ``os.PathLike``; ValueError for
    another suffix. Source: the safetensors format (``safetensors.torch.save``, its JSON header's keys sorted so that
    identical runs give identical bytes); the metadata :func:`symsched.models.load_model` checks."""
    if not isinstance(result, TrainResult):
        raise ArgumentTypeError(f"result must be a TrainResult (from symsched.models.train), got {type(result).__name__}")
    for name, value in (("weights", weights), ("log", log)):
        if not (value is None and name == "log") and not isinstance(value, (str, os.PathLike)):
            raise ArgumentTypeError(f"{name} must be a file path (str or os.PathLike), got {type(value).__name__}")
    check_not_a_folder(weights, "weights", "model.safetensors")
    if log is not None:
        check_not_a_folder(log, "log", "log.json")
    if Path(weights).suffix != ".safetensors":
        raise ValueError(f"weights must name a .safetensors file, which load_model reads (got {str(weights)!r})")
    from safetensors.torch import save as safetensors_bytes

    import torch

    meta = {
        "format": WEIGHTS_FORMAT,
        "net": json.dumps(result.config.net.to_dict()),
        "train_config": json.dumps(result.config.to_dict()),
        "sigma_data": repr(float(result.config.sigma_data)),
        "log_snr_range": json.dumps(list(result.log_snr_range)),
        "prediction": "sample",
        "steps_done": str(result.steps_done),
        "torch_version": torch.__version__,
    }
    tensors = {k: v.detach().contiguous().clone() for k, v in result.net.state_dict().items()}
    data = _sorted_header(safetensors_bytes(tensors, metadata=meta))
    atomic_write(weights, lambda tmp: Path(tmp).write_bytes(data), suffix=".safetensors")
    if log is not None:
        doc = {
            "model": "builtin:patches16",
            "train_config": result.config.to_dict(),
            "steps_done": result.steps_done,
            "n_parameters": int(sum(p.numel() for p in result.net.parameters())),
            "wall_seconds": round(result.wall_seconds, 2),
            "cpu_user_seconds": round(result.cpu_user_seconds, 2),
            "cpu_sys_seconds": round(result.cpu_sys_seconds, 2),
            "torch_version": torch.__version__,
            **loss_log(result.losses),
        }
        doc.update(extra or {})
        atomic_write_json(log, doc, indent=1)
