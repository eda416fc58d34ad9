"""``symsched probe``: does an optimised schedule help a real model? Sample, measure, compare.

Loads a learned denoiser (``builtin:patches16`` by default, or a diffusers ``UNet2DModel`` folder),
builds the schedules (optimised for W2 and KL on the model's training grid with both end points free,
:data:`symsched.probe.PROBE_ENDPOINTS`, and standard ones),
samples every schedule from the same seeds with :func:`symsched.probe.sample`, and compares the
samples with held-out data (:func:`symsched.probe.probe_schedules`): predicted vs measured spectral
KL/W2, MMD², sliced W2 and Fréchet distance with their seed-to-seed spread, and paired differences
against the first schedule. Writes ``probe.md``, ``probe.json`` and ``probe.png`` to ``--out``.

:func:`report_section` runs a small version for ``symsched report``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from .. import _html
from .._markdown import count as _count
from . import _settings

DEFAULT_MODEL = "builtin:patches16"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from ..probe import DEFAULT_SCHEDULES, LIBRARY_SAMPLERS, SAMPLERS

    p = sub.add_parser(
        "probe",
        help="sample a learned model with optimised and standard schedules and compare sample metrics",
        description="Sample a learned denoiser (default builtin:patches16, or a diffusers UNet2DModel folder) "
        "with the schedules optimised for W2 and KL on its training grid and with standard schedules, from the "
        "same seeds, and compare the samples with held-out data: predicted vs measured spectral KL/W2, MMD², "
        "sliced W2 and Fréchet distance (mean ± seed-to-seed sd) and paired differences against the first "
        "schedule. Writes probe.md, probe.json and probe.png.",
    )
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="builtin:patches16 (default), a patches16.safetensors written by 'symsched train-demo', "
                   "or a folder with a diffusers UNet2DModel and its scheduler "
                   "config (model/ + scheduler_config.json, or a pipeline folder with unet/ and scheduler/); "
                   "safetensors weights only, offline")
    p.add_argument("--reference", default=None, type=Path,
                   help="held-out data: .npy (N, *sample_shape) or a folder of images resized to the model's size "
                   "(default for builtin:patches16: its held-out patches; required for a diffusers folder)")
    p.add_argument("--spectrum", default=None,
                   help="data spectrum for the optimiser and the predictions (.npy); default: measured on the "
                   "built-in model's training patches, or on --reference")
    p.add_argument("--reference-samples", default=2000, type=int,
                   help="held-out samples the metrics use: a fixed random subset of this size (default 2000; "
                   "0 = all)")
    p.add_argument("--steps", default=5, type=int, help="sampling steps K (default 5)")
    p.add_argument("--schedules", default=",".join(DEFAULT_SCHEDULES),
                   help="comma-separated: optimised-w2, optimised-kl, optimised-kl-reverse, optimised (default "
                   "objective), grid-leading, "
                   "grid-trailing, grid-linspace (diffusers' spacings on the model's own grid) and standard "
                   f"names (default {','.join(DEFAULT_SCHEDULES)}); the first is the baseline of the paired differences")
    p.add_argument("--samples", default=2000, type=int,
                   help="samples per schedule and seed (default 2000; at most MAX_MMD_SAMPLES = 20,000: MMD² compares "
                   "every pair)")
    p.add_argument("--seeds", default=3, type=int, help="number of paired seeds (default 3; at most MAX_ENTRIES = 100)")
    p.add_argument("--seed", default=0, type=int, help="first seed (default 0)")
    p.add_argument("--sampler", default="ddim", choices=list(SAMPLERS + LIBRARY_SAMPLERS),
                   help="sampler (default ddim): symsched's ddim/ddpm/euler/heun loops, or k-diffusion's own "
                   "sample_<name> (needs k-diffusion; its settings by --option)")
    p.add_argument("--option", action="append", default=[], type=_settings.sampler_option, metavar="NAME=VALUE",
                   help="a k-diffusion sampler's setting by its name, e.g. --option s_noise=1.003 or --option order=3 "
                   "(repeatable; for the k-diffusion samplers only)")
    p.add_argument("--eta", default=None, type=_settings.real,
                   help="DDIM's eta in [0, 1] (default 0), or that of k-diffusion's ancestral and SDE samplers "
                   "(default: theirs, 1)")
    _settings.add_variance(p)
    p.add_argument("--batch-size", default=None, type=int,
                   help="samples per denoiser call (default auto; the noise of a seed does not depend on it, except the "
                   "noise k-diffusion draws itself: churn and the Brownian tree of dpmpp_sde / dpmpp_2m_sde / "
                   "dpmpp_3m_sde; a network's float32 arithmetic may round differently per batch size, e.g. a "
                   "diffusers UNet's batched convolutions, about 1e-8 relative in the metrics)")
    p.add_argument("--out", default=Path("probe"), type=Path, help="output directory (default: probe)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------
@dataclass
class ProbeModel:
    """A denoiser with the data that go with it: held-out reference, data spectrum, training grid."""

    label: str
    denoiser: Any
    reference: np.ndarray
    spectrum: np.ndarray
    grid: np.ndarray
    channel_axis: Optional[int]
    #: what the run does differently from the model's own pipeline ("note: ..." lines, printed after the run)
    notes: tuple[str, ...] = ()


def load_probe_model(model: str, reference: Optional[Path] = None, spectrum: Optional[str] = None) -> ProbeModel:
    """``builtin:<name>`` from :mod:`symsched.models` or a ``.safetensors`` file of ``symsched train-demo`` (the same
    network retrained on the same patches), or a diffusers folder; ValueError with one line otherwise."""
    patches = str(model).startswith("builtin:") or str(model).endswith(".safetensors")
    if patches:
        pm = _builtin(str(model))
    else:
        pm = _diffusers_folder(Path(model), reference)
    if reference is not None and patches:
        pm.reference = _load_reference(reference, tuple(pm.reference.shape[1:]))
    if spectrum is not None:
        from .._io import load_spectrum_npy
        from .._validate import as_spectrum

        pm.spectrum = _model_spectrum(as_spectrum(load_spectrum_npy(spectrum), "--spectrum"), pm.spectrum.shape)
    return pm


def _model_spectrum(S: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``S`` in the model's spectrum ``shape``; a one-channel model's also without its channel axis, (H, W) for
    (1, H, W), as its --reference may be (the PSD of greyscale data)."""
    if S.shape == shape:
        return S
    if len(shape) == 3 and shape[0] == 1 and S.shape == shape[1:]:
        return S[None]
    alt = f" or {shape[1:]}" if len(shape) == 3 and shape[0] == 1 else ""
    raise ValueError(f"--spectrum must have shape {shape}{alt} for this model (got {S.shape})")


def _builtin(name: str) -> ProbeModel:
    try:
        from .. import models
    except ImportError as exc:
        raise ValueError(f"--model {name}: symsched.models is not available in this installation ({exc})") from None
    from ..spectra import psd2d

    try:
        m = models.load_model(name)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"--model {name}: {exc}") from None
    train = models.patches16("train")
    return ProbeModel(name, m, models.patches16("test"), psd2d(train), np.asarray(m.grid, dtype=np.float64), None)


def _diffusers_folder(folder: Path, reference: Optional[Path]) -> ProbeModel:
    if not folder.is_dir():
        raise ValueError("--model must be builtin:patches16, a patches16.safetensors written by 'symsched "
                         f"train-demo', or a folder with a diffusers model (got {str(folder)!r})")
    try:
        from diffusers import DDPMScheduler, UNet2DModel
    except ImportError as exc:
        raise ValueError(f'--model {str(folder)!r} needs torch and diffusers: pip install "symsched[diffusers]" '
                         f"({exc})") from None
    from ..probe import _scheduler_prediction, diffusers_denoiser, measured_spectrum

    def present(p: Path) -> bool:  # (a FIFO or a dangling link is there, and refused below as what it is)
        return p.exists() or p.is_symlink()

    unet_dir = folder / "unet" if present(folder / "unet" / "config.json") else folder
    sched_dir = folder / "scheduler" if present(folder / "scheduler" / "scheduler_config.json") else folder
    for f in (unet_dir / "config.json", sched_dir / "scheduler_config.json"):
        if not f.is_file():
            what = "is not a regular file" if present(f) else "is missing"
            raise ValueError(f"--model {str(folder)!r} is not a diffusers model folder: {str(f)!r} {what} "
                             "(expected config.json and scheduler_config.json, or unet/ and scheduler/ subfolders)")
    klass, config = _check_ddpm_grid_scheduler(folder, sched_dir / "scheduler_config.json")
    _check_unet_config(folder, unet_dir / "config.json")
    if not any(unet_dir.glob("*.safetensors")):
        bins = sorted(p.name for p in unet_dir.glob("*.bin"))
        raise ValueError(f"--model {str(folder)!r}: no safetensors weights in {str(unet_dir)!r}"
                         + (f" ({', '.join(bins)} holds pickled weights, which symsched never unpickles: save the "
                            "model with safe_serialization=True)" if bins else ""))
    # (RuntimeError: weights of other shapes than config.json says; NotImplementedError: a beta_schedule; TypeError:
    # a config value of a type the constructors do not take, past the checks above; ArithmeticError: a group or head
    # size of 0, "integer modulo by zero"). diffusers logs a failed load
    # ("An error occurred while trying to fetch ...") besides raising: silenced, the error below says it once
    what = "a UNet2DModel (safetensors)"
    try:
        with _quiet_hf_logging():
            unet = UNet2DModel.from_pretrained(str(unet_dir), use_safetensors=True, local_files_only=True,
                                               low_cpu_mem_usage=False)
            what = f"the scheduler from {str(sched_dir / 'scheduler_config.json')!r}"
            try:
                sched = DDPMScheduler.from_pretrained(str(sched_dir), local_files_only=True)
            except NotImplementedError:  # a beta_schedule DDPMScheduler lacks (Heun's "exp"): the config's own class
                sched = klass.from_pretrained(str(sched_dir), local_files_only=True)
    except (OSError, ValueError, RuntimeError, NotImplementedError, TypeError, ArithmeticError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        msg = " ".join(lines[:2])[:300] if lines else type(exc).__name__
        raise ValueError(f"--model {str(folder)!r}: cannot load {what} offline ({type(exc).__name__}: {msg})") from None
    unet.eval()
    try:
        _scheduler_prediction(sched)
    except ValueError as exc:  # the grid may be fine: say what is wrong
        raise ValueError(f"--model {str(folder)!r}: its scheduler config's prediction_type is not one symsched probe "
                         f"drives ({exc}; diffusers names them 'epsilon', 'sample' and 'v_prediction')") from None
    try:
        den = diffusers_denoiser(unet, sched)
    except ValueError as exc:  # the config's betas give no usable grid (num_train_timesteps 0, NaN, beta_end 2)
        if str(exc).startswith("unet.config"):  # the sample shape: the unet config's fault, not the scheduler's
            raise ValueError(f"--model {str(folder)!r}: its unet config {str(unet_dir / 'config.json')!r} gives no "
                             f"usable sample shape ({exc})") from None
        raise ValueError(f"--model {str(folder)!r}: its scheduler config gives no usable training grid "
                         f"({exc})") from None
    if reference is None:
        raise ValueError("--reference is required with a diffusers model folder (held-out data: .npy or images)")
    if den.shape is None:  # diffusers' default sample_size=None: a UNet of any size
        raise ValueError(f"--model {str(folder)!r}: its unet config has sample_size null (any size), so the size of "
                         "the samples to draw is unknown; set sample_size (e.g. 16) in its unet/config.json")
    ref = _load_reference(reference, den.shape)
    ch = 0 if den.shape[0] > 1 else None
    return ProbeModel(str(folder), den, ref, measured_spectrum(ref, channel_axis=ch), den.grid, ch,
                      _clipping_notes(folder, klass, config))


def _clipping_notes(folder: Path, klass: Any, config: dict[str, Any]) -> tuple[str, ...]:
    """A note when the scheduler config clips x0 (``clip_sample``, DDPM/DDIM's default, or ``thresholding``), as the
    config's own class reads it (its constructor's default where the file is silent; the config is loaded as a
    DDPMScheduler, whose clip_sample=True default an EulerDiscreteScheduler does not have): the probe runs the linear
    samplers the predictions describe, not the clipped step of the model's own pipeline (audit of 6 December: the
    setting was ignored silently; ``export.from_diffusers`` refuses such a config)."""
    import inspect

    from ..export import _nonlinear

    params = inspect.signature(klass.__init__).parameters
    effective = {k: config.get(k, params[k].default if k in params else False) for k in ("clip_sample", "thresholding")}
    why = _nonlinear(effective)
    return (f"note: --model {str(folder)!r}: its scheduler config's {why.split(' makes')[0]} is not applied: the "
            "probe runs the linear sampler (no clipping of the x0 estimate) that the predicted spectra describe; "
            "the model's own diffusers pipeline with this config would clip",) if why else ()


@contextlib.contextmanager
def _quiet_hf_logging() -> Iterator[None]:
    """diffusers' and huggingface_hub's loggers silenced for the block (a failed load logs its error besides raising
    it); their previous verbosity restored afterwards."""
    import logging

    libs = []
    for name in ("diffusers.utils.logging", "huggingface_hub.utils.logging"):
        try:
            libs.append(importlib.import_module(name))
        except ImportError:
            continue
    old = [lib.get_verbosity() for lib in libs]
    try:
        for lib in libs:
            lib.set_verbosity(logging.CRITICAL + 1)
        yield
    finally:
        for lib, level in zip(libs, old):
            lib.set_verbosity(level)


#: largest diffusers config file read (a real one is a few KB; 100,000 trained_betas are about 2 MB)
MAX_CONFIG_BYTES = 16 << 20


def _read_config(folder: Path, config: Path, what: str) -> dict[str, Any]:
    """A diffusers config file as a JSON object; ValueError naming the file otherwise (RecursionError: nested beyond
    what json decodes, e.g. 200000 '['), or beyond MAX_CONFIG_BYTES (read no further: a 1 GB file took 12 s and
    2.5 GB of memory to refuse; audit of 6 December)."""
    try:
        with open(config, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ValueError(f"--model {str(folder)!r}: {str(config)!r} is larger than {MAX_CONFIG_BYTES} bytes "
                             "(symsched.commands.probe.MAX_CONFIG_BYTES), which no diffusers config is")
        cfg = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"--model {str(folder)!r}: cannot read {str(config)!r} as JSON (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--model {str(folder)!r}: cannot read {str(config)!r} as JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"--model {str(folder)!r}: {str(config)!r} is not {what} (a JSON object)")
    return cfg


#: config keys whose JSON type the diffusers constructors assume (else a TypeError deep inside them): "int" an integer,
#: "num" a number, "size" an integer or a list of them, "ints" a list of integers; a "?" allows null
_SCHEDULER_KEYS = {"num_train_timesteps": "int", "beta_start": "num", "beta_end": "num", "trained_betas": "nums?"}
_UNET_KEYS = {"in_channels": "int", "out_channels": "int", "layers_per_block": "int", "norm_num_groups": "int?",
              "sample_size": "size?", "block_out_channels": "ints", "attention_head_dim": "int?"}
_KIND_TEXT = {"int": "an integer", "num": "a number", "size": "an integer or a list of integers",
              "ints": "a list of integers", "nums": "a list of numbers"}


def _check_config_types(folder: Path, config: Path, cfg: dict[str, Any], keys: dict[str, str]) -> None:
    """ValueError naming the file and the key when a value in ``cfg`` has not the JSON type ``keys`` gives it."""
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def is_num(v: Any) -> bool:
        return isinstance(v, float) or is_int(v)

    def is_ints(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(map(is_int, v))

    tests = {"int": is_int, "num": is_num, "size": lambda v: is_int(v) or is_ints(v), "ints": is_ints,
             "nums": lambda v: isinstance(v, list) and all(map(is_num, v))}
    for key, kind in keys.items():
        if key not in cfg:
            continue
        value, base = cfg[key], kind.rstrip("?")
        if (value is None and kind.endswith("?")) or tests[base](value):
            continue
        shown = json.dumps(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        null = " or null" if kind.endswith("?") else ""
        raise ValueError(f"--model {str(folder)!r}: {str(config)!r}: {key} must be {_KIND_TEXT[base]}{null} "
                         f"(got {shown})")


def _check_unet_config(folder: Path, config: Path) -> None:
    """ValueError naming the file and key for a unet config that is no JSON object or whose sizes are no integers
    (diffusers would raise a TypeError from deep inside UNet2DModel, or build a model of no usable sample shape), or
    that describes another number of parameters than its safetensors weights hold (:func:`_check_unet_size`)."""
    cfg = _read_config(folder, config, "a unet config")
    _check_config_types(folder, config, cfg, _UNET_KEYS)
    _check_unet_size(folder, config, cfg)


def _check_grid_size(folder: Path, config: Path, cfg: dict[str, Any]) -> None:
    """ValueError naming the file and key for a training grid of more than MAX_TRAIN_TIMESTEPS timesteps (diffusers
    allocates it whole when it builds the scheduler: num_train_timesteps 10**9 ran out of 24 GB; audit of 6 December)
    or fewer than 2."""
    from .._validate import MAX_TRAIN_TIMESTEPS

    for key in ("num_train_timesteps", "trained_betas"):
        n = cfg.get(key)
        size = len(n) if isinstance(n, list) else n
        if size is not None and not 2 <= size <= MAX_TRAIN_TIMESTEPS:
            what = f"{size} values" if isinstance(n, list) else f"{size}"
            raise ValueError(f"--model {str(folder)!r}: {str(config)!r}: {key} must give 2 to {MAX_TRAIN_TIMESTEPS} "
                             f"training timesteps (symsched._validate.MAX_TRAIN_TIMESTEPS; got {what})")


#: most blocks (entries of block_out_channels) and layers per block of a unet config built to count its parameters
_MAX_UNET_BLOCKS = 64


def _check_unet_size(folder: Path, config: Path, cfg: dict[str, Any]) -> None:
    """ValueError naming the file when the UNet2DModel the config describes has another number of parameters than the
    safetensors weights diffusers would load hold: more, and diffusers would allocate that model before finding the
    mismatch (a config of 10**9 channels would exhaust the memory); fewer (``layers_per_block`` -1,
    ``add_attention`` false), and it would load the rest silently and fail, or sample, with a model that is not the
    trained one. Counted on torch's "meta" device, which allocates nothing (a config diffusers cannot build is named
    with its error); weights that are no regular file or cannot be read are left to the loader's own message."""
    import warnings

    import torch
    from diffusers import UNet2DModel

    for key, unit in (("block_out_channels", "blocks"), ("layers_per_block", "layers")):
        v = cfg.get(key)
        size = len(v) if isinstance(v, list) else v if isinstance(v, int) else 0
        if size > _MAX_UNET_BLOCKS:
            raise ValueError(f"--model {str(folder)!r}: {str(config)!r}: {key} must give at most {_MAX_UNET_BLOCKS} "
                             f"{unit} (got {size})")
    held = _safetensors_values(config.parent)
    if held is None:
        return
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")  # torch: "Initializing zero-element tensors is a no-op"
            n = sum(v.numel() for v in UNet2DModel.from_config(cfg).state_dict().values())
    except Exception as exc:  # noqa: BLE001 - what diffusers' constructor raises, named with the file
        if isinstance(exc, RuntimeError) and "overflow" in str(exc):  # torch: a tensor beyond 2**63 bytes
            n = math.inf
        else:  # e.g. norm_num_groups 0: ZeroDivisionError "integer modulo by zero"
            msg = " ".join(str(exc).split())[:300]
            raise ValueError(f"--model {str(folder)!r}: {str(config)!r} does not describe a UNet2DModel diffusers can "
                             f"build ({type(exc).__name__}: {msg})") from None
    if n != held:
        shown = "more than 2**63 bytes of" if n == math.inf else f"{n:,}"
        raise ValueError(f"--model {str(folder)!r}: {str(config)!r} describes a UNet2DModel of {shown} parameters, but "
                         f"its safetensors weights hold {held:,} values: config and weights do not match")


def _safetensors_values(folder: Path) -> Optional[int]:
    """The number of values in the safetensors weights diffusers loads from ``folder`` (its
    ``diffusion_pytorch_model.safetensors``, or the shards its ``.safetensors.index.json`` names), read from their
    headers; None when there are none, or one is no regular file or has no readable header."""
    import stat

    from safetensors import safe_open

    name = "diffusion_pytorch_model.safetensors"
    files = [folder / name]
    if not (files[0].exists() or files[0].is_symlink()):
        try:
            index = json.loads((folder / f"{name}.index.json").read_text(encoding="utf-8"))
            files = [folder / str(f) for f in sorted(set(index["weight_map"].values()))]
        except Exception:  # noqa: BLE001 - no (readable) index: the loader's own message
            return None
    total = 0
    for path in files:
        try:
            if path.parent != folder or not stat.S_ISREG(path.stat().st_mode):
                return None
            with safe_open(str(path), framework="pt") as f:
                total += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
        except Exception:  # noqa: BLE001 - a corrupt file: the loader's own message says so
            return None
    return total


def _check_ddpm_grid_scheduler(folder: Path, config: Path) -> tuple[Any, dict[str, Any]]:
    """The config's diffusers scheduler class and the config itself (a dict); ValueError unless it describes a
    DDPM-type training grid (betas -> alphas_cumprod): loading any other config as a DDPMScheduler would fill in
    default betas and prediction_type="epsilon" silently.

    A DDPM-type class is a diffusers scheduler whose constructor takes ``beta_schedule`` (DDPM, DDIM, PNDM, Euler,
    DPM-Solver, UniPC, ...); flow matching (``FlowMatch*``, ``use_flow_sigmas``, ``prediction_type="flow_prediction"``)
    and sigma-only schedulers (``EDM*``) are refused, each with its reason."""
    import inspect

    import diffusers

    cfg = _read_config(folder, config, "a scheduler config")
    _check_config_types(folder, config, cfg, _SCHEDULER_KEYS)
    _check_grid_size(folder, config, cfg)
    cls = str(cfg.get("_class_name", ""))
    where = f"--model {str(folder)!r}: its scheduler {cls or '(no _class_name)'}"
    if cls.startswith("FlowMatch") or cfg.get("use_flow_sigmas") or cfg.get("prediction_type") == "flow_prediction":
        raise ValueError(f"{where} is a flow-matching model (x_t = (1 - t) x0 + t eps, a velocity output); symsched "
                         "probe drives models trained on a DDPM grid (epsilon, sample or v prediction)")
    klass = getattr(diffusers, cls, None) if cls.isidentifier() else None
    if klass is None or "beta_schedule" not in inspect.signature(klass.__init__).parameters:
        raise ValueError(f"{where} has no DDPM training grid (betas -> alphas_cumprod: a diffusers scheduler taking "
                         "beta_schedule, e.g. DDPMScheduler or DDIMScheduler); symsched probe needs that grid")
    return klass, cfg


def _load_reference(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """(N, *shape) float64 from a .npy (also (N, H, W) for one channel, or channels last) or a folder of images.
    ValueError naming --reference: not real numbers, a long double beyond float64's range, a wrong shape, fewer
    than 2 samples, NaN or inf."""
    from .._io import load_npy
    from .._validate import as_real_array

    if path.is_dir():
        return _image_folder(path, shape)
    arr = np.asarray(load_npy(path, "--reference"))
    if arr.dtype.kind not in "fiu" or arr.dtype == bool:
        raise ValueError(f"--reference must hold real numbers (got dtype {arr.dtype})")
    dtype = arr.dtype
    arr = as_real_array(arr, "--reference")  # float64: a long double beyond its range refused, never cast to inf
    top = float(np.max(np.abs(arr), initial=0.0))
    if dtype.kind in "iu" and top > 1.0:  # raw pixels? (a folder of images is rescaled)
        print(f"note: --reference holds integers up to {top:g} (dtype {dtype}), used as "
              "given: images from a folder are scaled to [-1, 1]; scale the array as the model's training data was")
    if arr.shape[1:] != shape:
        if len(shape) == 3 and arr.ndim == 3 and shape[0] == 1 and arr.shape[1:] == shape[1:]:
            arr = arr[:, None]
        elif len(shape) == 3 and arr.ndim == 4 and arr.shape[1:] == (*shape[1:], shape[0]):
            arr = np.moveaxis(arr, -1, 1)
        elif len(shape) == 2 and arr.ndim == 4 and arr.shape[1:] == (1, *shape):
            arr = arr[:, 0]
        else:
            raise ValueError(f"--reference must have shape (N, {', '.join(map(str, shape))}) (got {arr.shape})")
    if arr.shape[0] < 2:
        raise ValueError(f"--reference must hold at least 2 samples (got {arr.shape[0]})")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(arr.reshape(arr.shape[0], -1)), axis=1))[0])
        raise ValueError(f"--reference must be finite (sample {bad} holds NaN or inf)")
    return arr


def _image_folder(folder: Path, shape: tuple[int, ...]) -> np.ndarray:
    from skimage.transform import resize

    from ..spectra import read_image

    C, H, W = (shape if len(shape) == 3 else (1, *shape))
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(files) < 2:
        raise ValueError(f"--reference folder {str(folder)!r} holds {len(files)} PNG/JPEG image(s); the metrics "
                         "need at least 2")
    out = []
    for f in files:
        img = np.asarray(read_image(f, "L" if C == 1 else "RGB", "--reference image"), dtype=np.float64) / 255.0
        img = resize(img, (H, W), anti_aliasing=True)
        img = 2.0 * img - 1.0
        out.append(img[None] if C == 1 else np.moveaxis(img, -1, 0))
    arr = np.stack(out)
    return arr if len(shape) == 3 else arr[:, 0]


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------
def _names(text: str) -> list[str]:
    from ..probe import DEFAULT_SCHEDULES
    from ..schedules import STANDARD_SCHEDULES

    from ._settings import comma_list

    from ..probe import GRID_SCHEDULES

    allowed = ("optimised", "optimised-w2", "optimised-kl", "optimised-kl-reverse") + GRID_SCHEDULES + STANDARD_SCHEDULES

    def name(s: str) -> str:
        if s not in allowed:
            raise ValueError(s)
        return s

    return comma_list(text, "--schedules", name, f"comma-separated names from {', '.join(allowed)} (e.g. "
                      f"{','.join(DEFAULT_SCHEDULES)})")


def _on_model_grid(names: list[str], grid: Any, steps: int) -> tuple[list[str], list[str]]:
    """The default names for a model's grid, and the notes saying what changed: a linear-beta spacing whose levels do
    not fit the grid (e.g. Stable Diffusion's scaled_linear betas, whose noisiest level is far above the linear
    grid's) becomes the same spacing on the model's own grid (``grid-trailing``)."""
    out, notes = [], []
    for name in names:
        if name.startswith("linear-"):
            if not _fits(name, grid, steps, quiet=True):
                new = "grid-" + name.split("-", 1)[1]
                notes.append(f"note: {name} does not fit this model's grid (its levels collide there); probing {new}, "
                             "the same timestep spacing on the model's own grid")
                name = new
        out.append(name)
    return out, notes


def _check_fit(names: list[str], grid: Any, steps: int, label: str) -> None:
    """ValueError naming --steps and --schedules, before any optimisation or sampling, when a standard schedule's
    ``steps`` levels collide on the model's training grid (GridCollision), with a step count that fits and the
    alternative of dropping that schedule."""
    from ..schedules import GridCollision

    for name in (n for n in names if not n.startswith("optimised")):  # (the optimised ones are built on the grid)
        try:
            _fits(name, grid, steps)
        except GridCollision as exc:
            lo, hi = 1, steps  # bisection: a step count that fits (1 always does)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _fits(name, grid, mid, quiet=True) else (lo, mid)
            raise ValueError(f"--steps {steps} / --schedules {name}: {steps} levels of {name} do not fit the "
                             f"{len(grid)}-timestep training grid of --model {label} ({exc.collision}); "
                             f"use fewer --steps (--steps {lo} fits) or drop {name} from --schedules") from None


def _fits(name: str, grid: Any, steps: int, quiet: bool = False) -> bool:
    """True when the schedule ``name`` of ``steps`` levels fits on ``grid``; GridCollision (or False when ``quiet``)
    otherwise."""
    from ..probe import default_schedules
    from ..schedules import GridCollision

    try:
        default_schedules(np.ones(1), steps, names=[name], grid=grid)
    except GridCollision:
        if quiet:
            return False
        raise
    return True


def subset(reference: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A fixed random subset of ``n`` samples (in their original order); all of them when ``n`` is 0 or too large."""
    if n == 0 or n >= reference.shape[0]:
        return reference
    return reference[np.sort(np.random.default_rng(seed).choice(reference.shape[0], n, replace=False))]


def probe_run(pm: ProbeModel, *, steps: int, names: list[str], n_samples: int, seeds: tuple[int, ...],
              sampler: str = "ddim", eta: float = 0.0, variance: str = "posterior", batch_size: Optional[int] = None,
              progress: Optional[bool] = None, options: Optional[dict[str, Any]] = None) -> Any:
    """Schedules on the model's grid, then :func:`symsched.probe.probe_schedules`."""
    from ..probe import default_schedules, probe_schedules

    t0 = time.perf_counter()
    scheds = default_schedules(pm.spectrum, steps, names=names, grid=pm.grid, sampler=sampler, eta=eta,
                               variance=variance, options=options)
    t_sched = time.perf_counter() - t0
    result = probe_schedules(pm.denoiser, scheds, pm.reference, n_samples=n_samples, seeds=seeds, sampler=sampler,
                             eta=eta, variance=variance, spectrum=pm.spectrum, channel_axis=pm.channel_axis,
                             grid=pm.grid, batch_size=batch_size, progress=progress, options=options)
    result.seconds["schedules"] = t_sched
    return result


def verdicts(result: Any, metrics: tuple[str, ...] = ("mmd2", "sliced_w2", "fd")) -> list[str]:
    """One line per metric: does the baseline beat every other schedule, for every seed?"""
    from ..probe import METRIC_LABELS

    comp = result.comparison
    lines = []
    for m in metrics:
        if m not in comp.metrics:
            continue
        others = [k for k in comp.comparisons if k != comp.baseline]
        lost = [k for k in others if comp.difference(k, m).values.min() <= 0]
        n_seeds = len(result.seeds)
        if not others:
            continue
        if lost:
            lines.append(f"{METRIC_LABELS[m]}: {comp.baseline} does not beat {', '.join(lost)} on every seed")
        else:
            lines.append(f"{METRIC_LABELS[m]}: {comp.baseline} beats every other schedule on each of "
                         f"{_count(n_seeds, 'paired seed')}")
    return lines


def _describe(result: Any, pm: ProbeModel, steps: int, eta: float, options: Optional[dict[str, Any]] = None,
              variance: str = "posterior") -> str:
    s = result.sampler + (f" (eta={eta:g})" if result.sampler == "ddim" else "")
    if result.sampler == "ddpm":
        s += f" (variance={variance})"
    if options:
        s += " (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"
    return (f"model `{pm.label}`, {s}, K = {steps}, {_count(result.n_samples, 'sample')} × "
            f"{_count(len(result.seeds), 'paired seed')} "
            f"(seeds {', '.join(map(str, result.seeds))}), reference: {pm.reference.shape[0]} held-out samples")


def _check_out(out: Path) -> None:
    """ValueError naming --out before any sampling when a file the probe writes there exists as a folder (--out
    itself is checked by its argparse type)."""
    from .._io import check_kind

    for name in ("probe.md", "probe.json", "probe.png"):
        check_kind(out, out / name, False, "symsched probe")


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write_json, atomic_write_text, staged_folder
    from .._validate import MAX_ENTRIES, MAX_MMD_SAMPLES, MAX_SAMPLES, as_int, as_positive_int, check_eta
    from ..probe import plot_probe

    steps = as_positive_int(args.steps, "--steps")
    from .._library_samplers import check_library_steps

    check_library_steps(args.sampler, steps, "--steps")
    n = as_positive_int(args.samples, "--samples", MAX_SAMPLES, limit="MAX_SAMPLES")
    if n < 2:
        raise ValueError(f"--samples must be at least 2 (got {n})")
    if n > MAX_MMD_SAMPLES:  # MMD² (one of the probe's metrics) sums over every pair: refused before any sampling
        raise ValueError(f"--samples must be at most {MAX_MMD_SAMPLES} (symsched._validate.MAX_MMD_SAMPLES: MMD² sums "
                         f"over every pair of samples; got {n})")
    n_seeds = as_positive_int(args.seeds, "--seeds", MAX_ENTRIES, limit="MAX_ENTRIES")  # each seed runs every schedule
    if args.batch_size is not None:
        as_positive_int(args.batch_size, "--batch-size")
    from ..probe import LIBRARY_SAMPLERS

    names = _names(args.schedules)
    options = _settings.options(args.option)
    eta = 0.0
    if args.sampler in LIBRARY_SAMPLERS and args.eta is not None:  # k-diffusion's eta is one of its settings
        options = {"eta": float(args.eta), **options}
    else:
        eta = check_eta(0.0 if args.eta is None else args.eta, "--eta")
    if options:
        from ..probe import _check_options

        try:
            _check_options(args.sampler, options)
        except ValueError as exc:
            text = str(exc).removeprefix("options: ")
            eta_at_fault = text.startswith("eta ") or "'eta'" in text.split("(")[0]  # the setting --eta gave
            flag = "--eta" if args.eta is not None and eta_at_fault else "--option"
            raise type(exc)(f"{flag}: {text}") from None
    seeds = tuple(as_int(args.seed, "--seed", 0) + i for i in range(n_seeds))  # (the first seed is --seed's)
    _check_out(Path(args.out))
    t0 = time.perf_counter()
    if as_int(args.reference_samples, "--reference-samples", 0, rule="0 (all) or an integer >= 2") == 1:
        raise ValueError(f"--reference-samples must be 0 (all) or an integer >= 2 (got {args.reference_samples})")
    pm = load_probe_model(args.model, args.reference, args.spectrum)
    if steps > pm.grid.size:  # every probed schedule sits on the model's training grid
        raise ValueError(f"--steps must be at most the {pm.grid.size} training timesteps of --model {pm.label} "
                         f"(every probed schedule sits on its grid; got {steps})")
    pm.reference = subset(pm.reference, args.reference_samples)
    if pm.reference.shape[0] > MAX_MMD_SAMPLES:
        raise ValueError(f"--reference-samples: the metrics' reference holds {pm.reference.shape[0]} samples, more "
                         f"than MAX_MMD_SAMPLES = {MAX_MMD_SAMPLES} for MMD² (symsched._validate.MAX_MMD_SAMPLES); "
                         "pass --reference-samples N to use a random subset")
    from ..probe import DEFAULT_SCHEDULES

    notes: list[str] = list(pm.notes)
    if args.schedules == ",".join(DEFAULT_SCHEDULES):
        names, grid_notes = _on_model_grid(names, pm.grid, steps)
        notes += grid_notes
    _check_fit(names, pm.grid, steps, pm.label)
    if args.sampler == "ddim":
        from ..probe import ddim_scheduler_note

        notes += [n for n in (ddim_scheduler_note(name, steps, pm.grid.size) for name in names) if n]
    try:
        result = probe_run(pm, steps=steps, names=names, n_samples=n, seeds=seeds, sampler=args.sampler, eta=eta,
                           variance=args.variance, batch_size=args.batch_size,
                           progress=False if args.no_progress else None, options=options or None)
    except ValueError as exc:  # a schedule the model or sampler cannot start from (checked before any sampling)
        if str(exc).startswith("schedules["):
            raise ValueError(f"--schedules (--model {pm.label}, --sampler {args.sampler}): {exc}") from None
        raise
    for note in notes:  # (after the run: a refusal stays one line; on stdout, as every command's notes)
        print(note)
    out = Path(args.out)
    table = result.to_markdown()
    desc = _describe(result, pm, steps, eta, options, args.variance)
    elapsed = time.perf_counter() - t0
    lines = verdicts(result)
    # eta as run: DDIM's, or a k-diffusion sampler's (its setting; None = k-diffusion's default); None for a sampler
    # that takes none (audit of 5 December: 0.0 was recorded for ddpm, euler and heun)
    run_eta = options.get("eta") if args.sampler in LIBRARY_SAMPLERS else eta if args.sampler == "ddim" else None
    # the variance as run: DDPM's setting; None for a sampler that takes none (audit of 5 December: "posterior" was
    # recorded for DDIM and k-diffusion runs, as if it had been applied)
    run_variance = args.variance if args.sampler == "ddpm" else None
    info = dict(model=pm.label, steps=steps, eta=run_eta, variance=run_variance, options=options, elapsed_s=elapsed,
                **result.to_dict())
    with staged_folder(out, "symsched probe") as stage:  # the three files together, or none
        atomic_write_text(stage / "probe.md", f"# symsched probe\n\n{desc}; {elapsed:.0f} s.\n\n{table}\n"
                          + "".join(f"- {v}\n" for v in lines))
        atomic_write_json(stage / "probe.json", info)
        plot_probe(result, stage / "probe.png", channel_axis=pm.channel_axis)
    print(f"symsched probe: {desc}")
    print(table)
    for v in lines:
        print(f"  {v}")
    sec = result.seconds
    print(f"wrote {out}/probe.md, {out}/probe.json, {out}/probe.png ({elapsed:.1f} s: schedules "
          f"{sec['schedules']:.1f} s, sampling {sec['sampling']:.1f} s, metrics {sec['metrics']:.1f} s)")
    return 0


# --------------------------------------------------------------------------------------------
# the section of `symsched report`
# --------------------------------------------------------------------------------------------
@dataclass
class ReportSection:
    """Markdown and HTML of the report's learned-model section, and the figure it wrote (if any)."""

    markdown: str
    html: str
    figure: Optional[str] = None


_REPORT_TITLE = "Does it help a real model?"


#: the schedules the report's probe section compares
_REPORT_NAMES = ("optimised-w2", "optimised-kl", "linear-trailing", "karras")


def _report_key(steps: int, n_samples: int, seeds: tuple[int, ...], names: list[str], model: str) -> str:
    """The probe cache's key of a report section's settings."""
    return _probe_key(steps=int(steps), n_samples=int(n_samples), seeds=[int(s) for s in seeds], names=list(names),
                      model=str(model))


def cached_report_section(out: Path, *, steps: int = 5, n_samples: int = 500, seeds: tuple[int, ...] = (0, 1),
                          names: Optional[list[str]] = None, model: str = DEFAULT_MODEL) -> Optional[ReportSection]:
    """:func:`report_section` read from the cache of an earlier identical run (``probe.png`` written into ``out``),
    or None: nothing is measured. ``symsched report`` calls it in its own process, so that an unsafe entry's warning
    is given there, and measures in a worker only on a miss."""
    key = _report_key(steps, n_samples, seeds, names or list(_REPORT_NAMES), model)
    doc = _probe_cache().lookup(key, _valid_probe_entry) if model.startswith("builtin:") else None
    if doc is None:
        return None
    from .._io import atomic_write_bytes

    atomic_write_bytes(Path(out) / "probe.png", base64.b64decode(doc["png"], validate=True))
    return _probe_section(doc, cached=True)


def report_section(out: Path, *, steps: int = 5, n_samples: int = 500, seeds: tuple[int, ...] = (0, 1),
                   names: Optional[list[str]] = None, model: str = DEFAULT_MODEL, progress: bool = False) -> ReportSection:
    """A small probe of the built-in learned model for ``symsched report``; a note when torch or the model is missing.

    Writes ``probe.png`` into ``out``; the caller appends ``markdown``/``html`` to its summary. The
    result for a built-in model is cached on disk (:func:`_probe_cache`): sampling is deterministic
    given the seeds, so a warm report reads the measured numbers and the figure instead of sampling
    again; the section says so. ``SYMSCHED_DISK_CACHE=0`` measures every time.
    """
    names = names or list(_REPORT_NAMES)
    hit = cached_report_section(out, steps=steps, n_samples=n_samples, seeds=seeds, names=names, model=model)
    if hit is not None:
        return hit
    try:  # the built-in model needs torch: its loader raises ValueError naming the extra to install
        pm = load_probe_model(model)
    except (ImportError, ValueError) as exc:
        note = (f"Skipped: the learned-model probe needs torch and the built-in model ({exc}). "
                'Install with `pip install "symsched[torch]"` and run `symsched probe`.')
        return ReportSection(f"## {_REPORT_TITLE}\n\n{note}\n", f"<h2>{_REPORT_TITLE}</h2><p>{_html.inline(note)}</p>")
    from ..probe import plot_probe

    t0 = time.perf_counter()
    pm.reference = subset(pm.reference, 2000)
    result = probe_run(pm, steps=steps, names=names, n_samples=n_samples, seeds=seeds, progress=progress)
    png = Path(out) / "probe.png"
    plot_probe(result, png, channel_axis=pm.channel_axis)
    doc = {"description": _describe(result, pm, steps, 0.0), "sampled": _sampled(pm, model, names),
           "seconds": round(time.perf_counter() - t0, 3), "table": result.to_markdown(), "verdicts": verdicts(result)}
    if model.startswith("builtin:"):
        png64 = base64.b64encode(png.read_bytes()).decode("ascii")
        _probe_cache().store(_report_key(steps, n_samples, seeds, names, model), {**doc, "png": png64})
    return _probe_section(doc, cached=False)


def _endpoints_text(endpoints: Optional[tuple[Optional[float], Optional[float]]]) -> str:
    """How the optimiser treats the first and last level, for ``endpoints`` as :func:`symsched.optimize_schedule`
    takes them (None: the first level pinned at the grid's noisiest level, the last free)."""
    if endpoints is None:
        return "the first level pinned at the grid's noisiest level and the last level free"
    first, last = ("free" if e is None else f"pinned at alpha_bar = {e:g}" for e in endpoints)
    if first == last == "free":
        return "both ends free (the optimiser chooses the first and the last level)"
    return f"the first level {first} and the last level {last}"


def _sampled(pm: ProbeModel, model: str, names: list[str]) -> str:
    """What the report's probe samples: not the report's schedules, but schedules optimised for the model's own
    data spectrum on its training grid with :data:`symsched.probe.PROBE_ENDPOINTS` (:func:`probe_run`)."""
    from ..probe import PROBE_ENDPOINTS

    shape = "×".join(map(str, pm.spectrum.shape))
    patches = model.startswith("builtin:") or model.endswith(".safetensors")
    source = (f"the {shape} spectrum of the training patches of `{model}`" if patches
              else f"the {shape} spectrum measured on the held-out reference of `{model}`")
    opt = [n for n in names if n.startswith("optimised")]
    std = [n for n in names if not n.startswith("optimised")]
    text = "These are not the schedules above (optimised for the report's spectrum)"
    if opt:
        text += (f": {', '.join(opt)} are optimised again, for {source} (white-noise start), on the model's "
                 f"training grid ({pm.grid.size} levels) with {_endpoints_text(PROBE_ENDPOINTS)}")
        if std:
            text += f"; {', '.join(std)} are taken on the same grid"
    elif std:
        text += f": {', '.join(std)} on the model's training grid ({pm.grid.size} levels)"
    return text + "."


def _probe_section(doc: dict[str, Any], cached: bool) -> ReportSection:
    """The report section from a probe result's description, time, Markdown table and verdicts."""
    when = f"{doc['seconds']:.0f} s" + ("; read from the cache of an earlier identical run, SYMSCHED_DISK_CACHE=0 "
                                         "measures again" if cached else "")
    intro = (f"A learned denoiser samples with schedules optimised for the Gaussian model of its own data "
             f"({doc['description']}; {when}). {doc['sampled']} Lower is better everywhere; "
             "`symsched probe` runs the full study (2000 samples × 3 seeds).")
    lines = list(doc["verdicts"])
    md = (f"## {_REPORT_TITLE}\n\n{intro}\n\n{doc['table']}\n" + "".join(f"- {v}\n" for v in lines)
          + "\n![probe](probe.png)\n")
    body = [f"<h2>{_REPORT_TITLE}</h2>", f"<p>{_html.inline(intro)}</p>", _html.tables(doc["table"])]
    body += ["<ul>"] + [f"<li>{_html.inline(v)}</li>" for v in lines] + ["</ul>"]
    body.append('<img src="probe.png" alt="probe" width="900">')
    return ReportSection(md, "\n".join(body), "probe.png")


_PROBE_FORMAT = 2  # 2: sealed entries (symsched._datacache.seal)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ProbeCacheWarning(UserWarning):
    """The on-disk cache of the report's probe section was bypassed (unsafe directory); it is measured instead."""


@lru_cache(maxsize=1)
def _probe_fingerprint() -> str:
    """Hash of what determines a probe result: entry format, every file of the symsched package (code and the
    built-in model's weights) and the versions of NumPy, SciPy, torch and POT (not imported here)."""
    from .._datacache import source_digest

    pkg = Path(__file__).resolve().parents[1]
    files = sorted(p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return source_digest(f"probe-format={_PROBE_FORMAT}", ("numpy", "scipy", "torch", "POT"), pkg, files)


@lru_cache(maxsize=1)
def _probe_cache() -> Any:
    from .._datacache import DataCache

    return DataCache("probe", _PROBE_FORMAT, lambda: _probe_fingerprint(), ProbeCacheWarning,
                     "the probe is measured instead")


def _probe_key(**settings: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]


def _valid_probe_entry(doc: dict[str, Any]) -> bool:
    """An entry's fields have their types, the time is finite and >= 0, and the figure decodes as a whole PNG."""
    import io
    import math

    texts = [doc["description"], doc["sampled"], doc["table"], *doc["verdicts"]]
    seconds = doc["seconds"]
    if not (all(isinstance(t, str) for t in texts) and isinstance(doc["verdicts"], list)
            and type(seconds) in (int, float) and math.isfinite(seconds) and seconds >= 0
            and isinstance(doc["png"], str)):
        return False
    png = base64.b64decode(doc["png"], validate=True)
    if not png.startswith(_PNG_MAGIC):
        return False
    from PIL import Image  # matplotlib's dependency

    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as im:
            im.load()  # decodes every chunk: a truncated or corrupt figure raises
    except Exception:  # noqa: BLE001 - any decoding failure means: not our figure
        return False
    return True
