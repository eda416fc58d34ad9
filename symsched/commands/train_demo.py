"""``symsched train-demo``: retrain the built-in ``patches16`` denoiser from its seed.

Runs :func:`symsched.models.train.train` (fixed seed, documented hyper-parameters, one CPU thread,
deterministic kernels) and writes ``patches16.safetensors`` and ``patches16.json`` (configuration,
per-step loss curve, time, held-out check) to ``--out``. With the defaults it re-runs the shipped recipe: bit for
bit on the machine that trained it; elsewhere float32 rounding moves the first losses by ~1e-7 relative and grows
over 12,000 steps into weight differences of order 1 (same held-out MSE to ~1e-4). The command reports the largest
difference from the shipped weights and from the shipped loss curve. A shorter
run (``--minutes``, ``--steps``) is compared with the shipped loss curve over the steps both runs took with the same
updates (all of them for ``--minutes``, the warm-up's for another ``--steps``); another seed is not compared.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import _settings

LEVELS = (0.9, 0.5, 0.1)  # noise levels of the held-out denoising check


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "train-demo",
        help="retrain the built-in patches16 denoiser (the shipped recipe; reports how closely it matches)",
        description="Train the built-in builtin:patches16 denoiser (EDM-preconditioned residual MLP on "
        "16x16 greyscale patches of scikit-image's photographs) with its fixed seed and hyper-parameters "
        "on CPU, then write OUT/patches16.safetensors and OUT/patches16.json (loss curve, timing, "
        "held-out denoising MSE against the Gaussian posterior mean). The saved and scored weights are the "
        "exponential moving average of the iterates (decay 0.999). With the default settings the weights "
        "match the shipped ones bit for bit on the machine that trained them (elsewhere float32 rounding "
        "moves them, with the same held-out quality); the command prints how closely. Needs torch "
        "(symsched[torch]).",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the shipped run's)")
    p.add_argument("--minutes", type=_settings.real, default=None,
                   help="stop after this many minutes of training (the result then differs from the shipped one)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the shipped run's, 0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise ValueError(f'train-demo needs torch and safetensors: pip install "symsched[torch]" ({exc})') from None
    from .._io import check_kind, staged_folder
    from ..models import load_model, patches16
    from ..models.evaluate import denoising_mse, gaussian_denoiser
    from ..models.train import TrainConfig, save, train

    from .._validate import as_positive
    from ..models.train import check_config

    # every argument checked before anything is printed: "steps must be ...", named --steps by the CLI
    given = {k: v for k, v in (("steps", args.steps), ("seed", args.seed), ("threads", args.threads)) if v is not None}
    cfg = check_config(replace(TrainConfig(), **given))
    if args.minutes is not None:
        as_positive(args.minutes, "minutes")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder (got the file {str(out)!r})")
    _check_not_shipped(out, [out / "patches16.safetensors", out / "patches16.json"])
    for name in ("patches16.safetensors", "patches16.json"):  # before the training, not after it
        check_kind(out, out / name, False, "symsched train-demo")
    print(f"symsched train-demo: {cfg.steps} steps, batch {cfg.batch_size}, seed {cfg.seed}, "
          f"{cfg.threads} thread(s)")
    res = train(cfg, minutes=args.minutes, progress=not args.no_progress)
    weights, log = out / "patches16.safetensors", out / "patches16.json"
    with staged_folder(out, "symsched train-demo") as stage:  # weights and log together, or neither
        save(res, stage / weights.name)  # written first so that the held-out check runs the saved model
        m = load_model(stage / weights.name)
        test = patches16("test")
        wiener = gaussian_denoiser(patches16("train"))
        check = {str(ab): {"model": denoising_mse(m.denoiser, test, ab), "gaussian": denoising_mse(wiener, test, ab)}
                 for ab in LEVELS}
        save(res, stage / weights.name, stage / log.name, extra={"heldout_mse": check})
    cpu = res.cpu_user_seconds + res.cpu_sys_seconds
    print(f"trained {res.steps_done} steps in {res.wall_seconds:.1f} s wall, {cpu:.1f} s CPU "
          f"(user {res.cpu_user_seconds:.1f} s + sys {res.cpu_sys_seconds:.1f} s); final loss of the raw network "
          f"(mean of last {len(res.losses[-100:])}) {sum(res.losses[-100:]) / len(res.losses[-100:]):.4f}")
    note = ema_note(res.steps_done, cfg.ema)
    if note:
        print(f"note: {note}")
    for ab, v in check.items():
        print(f"held-out MSE at alpha_bar={ab}: model {v['model']:.5f}, Gaussian posterior mean "
              f"{v['gaussian']:.5f} (ratio {v['model'] / v['gaussian']:.3f})")
    _compare_with_shipped(res, cfg)
    print(f"wrote {weights} and {log}")
    return 0


def ema_note(steps: int, decay: float) -> str:
    """What a short run saves: the EMA of the weights (``decay``), which after ``steps`` steps still holds
    ``decay**steps`` of the initial weights; empty once that is below 1 % (audit of 6 December: 250 steps saved
    weights 78 % initial, scored 4.2 times the Gaussian posterior's MSE, while the printed loss was the raw net's)."""
    from ..models.train import TrainConfig

    left = decay**steps
    if left < 0.01:
        return ""
    return (f"the saved and scored weights are the moving average of the iterates (decay {decay:g}), which after "
            f"{steps} steps still holds {left:.0%} of the initial weights: train longer (the shipped run: "
            f"{TrainConfig().steps:,} steps) for a model whose samples mean anything")


def _check_not_shipped(out: Path, targets: list[Path]) -> None:
    """ValueError if ``out`` or a file written there (through a symlink too) lies in the installed package's data
    folder, or in the ``symsched/models/data`` folder of any other copy of symsched (a checkout beside the one
    imported: audit of 6 December): shipped weights and logs are not overwritten."""
    import os

    from ..models import weights_path

    data = Path(os.path.realpath(weights_path().parent))
    for p in (out, *targets):
        real = Path(os.path.realpath(p))
        if real == data or data in real.parents:
            raise ValueError(f"--out {str(out)!r} would write into the installed package's data folder {str(data)!r} "
                             "(the shipped weights); choose another folder")
        other = next((d for d in (real, *real.parents) if _is_shipped_data(d)), None)
        if other is not None:
            raise ValueError(f"--out {str(out)!r} would write into {str(other)!r}, the data folder of a copy of "
                             "symsched (its shipped weights); choose another folder")


def _is_shipped_data(folder: Path) -> bool:
    """Whether ``folder`` is a symsched package's ``models/data`` folder (beside ``models/builtin.py``)."""
    return (folder.name == "data" and folder.parent.name == "models" and folder.parent.parent.name == "symsched"
            and (folder.parent / "builtin.py").is_file())


#: relative difference per loss below which a re-run's loss curve matches the shipped one: a same-machine re-run is
#: bit-identical, another machine's float32 rounding moves the losses by < 2e-7, another seed or recipe by > 1e-2
#: (tests/test_models_train.py)
LOSS_RTOL = 1e-4


def comparable_steps(cfg, steps_done: int, shipped_steps_done: int, head: int) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    """``(n, differing)``: how many of the first per-step losses of this run and of the shipped one were made by the
    same updates (0 when a setting other than the step count differs), and the names of the differing settings.

    Only ``steps`` may differ: it enters the learning rate after the warm-up (the cosine decay's length), so loss
    ``i`` (before update ``i``) is comparable while every update before it was a warm-up one, ``i <= warmup``."""
    from ..models.train import TrainConfig

    shipped = TrainConfig()
    differing = [k for k in shipped.to_dict() if getattr(cfg, k) != getattr(shipped, k)]
    if [k for k in differing if k != "steps"]:
        return 0, differing
    n = min(steps_done, shipped_steps_done, head)
    if differing:  # another total step count: the same learning rates only through the warm-up
        n = min(n, cfg.warmup + 1)
    return n, differing


def _compare_with_shipped(res, cfg) -> None:  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file

    from ..models import weights_path
    from ..models.train import TrainConfig, loss_log

    shipped_log = weights_path().with_suffix(".json")
    if not shipped_log.is_file():
        print("(no shipped training log found: no comparison with the shipped run)")
        return
    log = json.loads(shipped_log.read_text())
    ref = log["loss_head"]
    n, differing = comparable_steps(cfg, res.steps_done, int(log["steps_done"]), len(ref))
    if n == 0:
        print(f"(settings differ from the shipped run: {', '.join(differing)}; no comparison with the shipped loss "
              "curve or weights)")
        return
    mine = loss_log(res.losses[:n])["loss_head"]  # rounded to float32 as the shipped log stores them
    rel = max(abs(a - b) / abs(b) for a, b in zip(mine, ref[:n]))
    verdict = (f"matches it (max relative difference {rel:.2e}, within {LOSS_RTOL:g})" if rel <= LOSS_RTOL else
               f"differs from it (max relative difference {rel:.2e}, more than {LOSS_RTOL:g})")
    why = "" if n == len(ref) else (
        f"; the first {n} steps both runs took" + (" with the same learning rates (--steps changes them after the "
                                                  f"{cfg.warmup}-step warm-up)" if differing else ""))
    print(f"against the shipped run: loss curve head ({n} steps{why}) {verdict}")
    if cfg != TrainConfig() or res.steps_done != cfg.steps:
        print(f"(weights not compared: this run took {res.steps_done} of the shipped run's {log['steps_done']} steps"
              + (f" with {', '.join(f'{k}={getattr(cfg, k)}' for k in differing)}" if differing else "") + ")")
        return
    shipped = load_file(str(weights_path()))
    mine = res.net.state_dict()
    dw = max(float((mine[k] - shipped[k]).abs().max()) for k in shipped)
    print(f"against the shipped run: weights max |difference| {dw:.2e}")
