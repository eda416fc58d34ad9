r"""The spectral probe: sample with any denoiser, measure, and compare schedules on real sample metrics.

The closed forms of :mod:`symsched` are exact for Gaussian data and the exact (Wiener) denoiser.
This module asks whether a schedule helps a *learned* model:

* :func:`sample` runs a sampler with any denoiser ``f(x_t, alpha_bar_t)`` (a batch in, its
  epsilon, sample or v prediction out), through the same update loops as
  :mod:`symsched.montecarlo` (:mod:`symsched._signal_samplers`): with ``f`` the exact Wiener
  filter it *is* the Monte Carlo witness, which the tests use as the control.
* adapters turn a torch module conditioned on a training grid's timesteps
  (:func:`torch_denoiser`) or a diffusers ``UNet2DModel`` with its scheduler config
  (:func:`diffusers_denoiser`) into such an ``f``; :func:`wiener_denoiser` gives the exact one.
* :func:`measured_spectrum` measures the samples' spectrum (FFT periodogram, colour eigen-modes,
  or mean squared coefficients in a PCA basis, :func:`pca_basis`).
* :func:`compare` and :func:`compare_paired` score samples against reference data: spectral KL
  and W2 (measured, and predicted by :func:`symsched.output_spectrum` when the schedule is given),
  MMD² (unbiased, a mixture of RBF kernels at the median heuristic × {0.5, 1, 2}), sliced W2
  (POT) and the Fréchet distance of fitted Gaussians, each with its seed-to-seed spread, and
  paired differences between schedules run from the same seeds.
* :func:`probe_schedules` does all of it for a set of schedules; :func:`default_schedules`
  builds the optimised and standard ones on a model's grid; :func:`plot_probe` draws samples and
  radial spectra. ``symsched probe`` is the command line.

torch, diffusers and POT are optional (``pip install "symsched[torch]"``, ``"symsched[diffusers]"``);
they are imported only by the functions that need them.

References: Gretton et al. 2012, "A kernel two-sample test" (JMLR 13), eq. (3) (unbiased MMD²);
Bonneel et al. 2015 and POT's ``ot.sliced_wasserstein_distance`` (sliced W2); Heusel et al.
2017 (Fréchet distance of Gaussians, the FID formula); Salimans & Ho 2022 (v-prediction).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _library_samplers as _library
from . import _signal_samplers as _loops
from ._markdown import count as _count, md_table
from ._pow2 import at_unit_scale, pow2_scale
from ._validate import (
    MAX_ENTRIES, MAX_MMD_SAMPLES, MAX_PROJECTIONS, MAX_SAMPLES, MAX_VALUES, ArgumentTypeError, as_axis, as_bool,
    as_choices, as_int, as_levels, as_positive_int, as_real, as_real_array, as_seed, as_shape, check_choice,
    check_entries, check_eta, check_names, check_values, _show, is_sequence, numpy_error_defaults,
)

__all__ = [
    "SAMPLERS",
    "PREDICTIONS",
    "METRICS",
    "Denoiser",
    "sample",
    "wiener_denoiser",
    "torch_denoiser",
    "diffusers_denoiser",
    "grid_timestep",
    "measured_spectrum",
    "pca_basis",
    "mmd2",
    "sliced_w2",
    "frechet_distance",
    "gaussian_frechet_distance",
    "median_bandwidth",
    "LIBRARY_SAMPLERS",
    "Comparison",
    "PairedDifference",
    "PairedComparison",
    "compare",
    "compare_paired",
    "default_schedules",
    "PROBE_ENDPOINTS",
    "ProbeResult",
    "probe_schedules",
    "plot_probe",
]

Array = NDArray[np.float64]
Seed = Union[None, int, np.random.SeedSequence, np.random.Generator]

#: samplers :func:`sample` runs with symsched's own loops (the table of :mod:`symsched._signal_samplers`)
SAMPLERS: tuple[str, ...] = tuple(_loops.SAMPLERS)
#: samplers :func:`sample` runs through k-diffusion's own ``sample_<name>`` (when k-diffusion is installed)
LIBRARY_SAMPLERS: tuple[str, ...] = tuple(k for k in _library.K_DIFFUSION if k not in SAMPLERS)
#: prediction types a denoiser may return (aliases: "eps", "x0", "v_prediction")
PREDICTIONS: tuple[str, ...] = _loops.PREDICTIONS
#: the metrics of :func:`compare`, lower is better for each
METRICS: tuple[str, ...] = ("spectral_kl", "spectral_w2", "mmd2", "sliced_w2", "fd")
METRIC_LABELS: dict[str, str] = {
    "spectral_kl": "spectral KL", "spectral_w2": "spectral W2", "mmd2": "MMD²", "sliced_w2": "sliced W2",
    "fd": "FD",
}
_TORCH_HINT = 'pip install "symsched[torch]"'
_MEDIAN_POINTS = 1000  # reference points used for the median heuristic
_KERNEL_CHUNK = 1024  # rows per block of pairwise distances


# --------------------------------------------------------------------------------------------
# denoisers
# --------------------------------------------------------------------------------------------
@dataclass
class Denoiser:
    """A denoiser ``fn(x_t, alpha_bar_t) -> prediction`` with what :func:`sample` needs to know.

    Attributes
    ----------
    fn : callable
        ``fn(x_t, alpha_bar_t)``: ``x_t`` of shape ``(b, *shape)`` (float64, VP-scaled
        ``sqrt(ab) x0 + sqrt(1-ab) eps``), ``alpha_bar_t`` a float in [0, 1) (0 at a zero-SNR first level); returns the
        prediction, same shape.
    prediction : {"epsilon", "sample", "v"}
        (aliases ``"eps"``, ``"x0"``, ``"v_prediction"`` are accepted and stored as these names)
    shape : tuple of int or None
        Shape of one sample.
    grid : ndarray or None
        The training grid ``alphas_cumprod`` (training order) the model was conditioned on.
    name : str

    Raises TypeError (:class:`ArgumentTypeError`) when ``fn`` is not callable or ``name`` not a string, and
    ValueError naming a bad ``prediction``, ``shape`` or ``grid`` (as :func:`torch_denoiser`), on construction.
    Source: the prediction types of diffusers' ``prediction_type`` (``epsilon``, ``sample``, ``v_prediction``).
    """

    fn: Callable[[Array, float], Any]
    prediction: str
    shape: Optional[tuple[int, ...]] = None
    grid: Optional[Array] = None
    name: str = "denoiser"

    def __post_init__(self) -> None:
        # (audit of 6 December: Denoiser(5, "epsilon") was built and failed later as "'int' object is not callable")
        from .schedules import _as_grid

        if not callable(self.fn):
            raise ArgumentTypeError(f"fn must be a callable fn(x_t, alpha_bar_t) (got {type(self.fn).__name__})")
        if not isinstance(self.name, str):
            raise ArgumentTypeError(f"name must be a string (got {type(self.name).__name__})")
        self.prediction = _prediction(self.prediction)
        self.shape = None if self.shape is None else as_shape(self.shape)
        self.grid = None if self.grid is None else _as_grid(self.grid, "grid")

    def __call__(self, x_t: Array, alpha_bar_t: float) -> Any:
        return self.fn(x_t, alpha_bar_t)


def _prediction(value: Any, name: str = "prediction") -> str:
    value = _loops.PREDICTION_ALIASES.get(value, value) if isinstance(value, str) else value
    return check_choice(value, name, PREDICTIONS)


def _attribute(obj: Any, attr: str) -> Any:
    """``obj.attr``, or the attribute of the object a bound method belongs to (``m.denoiser`` -> ``m``)."""
    if hasattr(obj, attr):
        return getattr(obj, attr)
    return getattr(getattr(obj, "__self__", None), attr, None)


@numpy_error_defaults
def wiener_denoiser(spectrum: ArrayLike, *, prediction: str = "epsilon", basis: Optional[ArrayLike] = None) -> Denoiser:
    r"""The exact MMSE denoiser of Gaussian data with PSD ``spectrum`` as a :class:`Denoiser` (the control).

    Per mode: ``x0_hat = sqrt(ab) S/lam x``, ``eps_hat = sqrt(1-ab)/lam x``, ``lam = ab S + 1 - ab``
    (:func:`symsched.montecarlo.wiener_denoiser`); ``v_hat = sqrt(ab) eps_hat - sqrt(1-ab) x0_hat``.

    Parameters
    ----------
    spectrum : array_like, shape (*grid) or (d,) with ``basis``
    prediction : {"epsilon", "sample", "v"}
        (aliases ``"eps"``, ``"x0"``, ``"v_prediction"`` are accepted and stored as these names)
        What the returned function outputs.
    basis : array_like, shape (d, d), optional
        Orthonormal eigenbasis (PCA data).

    Returns
    -------
    Denoiser
        ``shape`` is the spectrum's shape.

    Raises
    ------
    ValueError
        Unknown ``prediction``; a spectrum that is empty, not finite, negative or (without ``basis``) not
        Hermitian-symmetric; a ``basis`` that is not (d, d) orthonormal for the spectrum's d modes.

    Source: docs/model.md §3; Salimans & Ho 2022 (v-prediction).
    """
    from . import montecarlo as mc
    from ._validate import as_spectrum

    pred = _prediction(prediction)
    S = as_spectrum(spectrum)
    B = None if basis is None else as_real_array(basis, "basis")  # a complex basis was cast (ComplexWarning)
    mc.wiener_denoiser(np.zeros((1, *S.shape)), S, 0.5, basis=B)  # validate once

    @numpy_error_defaults
    def fn(x: Array, a: float) -> Array:
        if pred == "epsilon":
            return mc.wiener_denoiser(x, S, a, output="eps", basis=B)
        x0 = mc.wiener_denoiser(x, S, a, output="x0", basis=B)
        if pred == "sample":
            return x0
        eps = mc.wiener_denoiser(x, S, a, output="eps", basis=B)
        return math.sqrt(a) * eps - math.sqrt(1.0 - a) * x0

    return Denoiser(fn, pred, tuple(S.shape), None, f"Wiener filter ({pred})")


def grid_timestep(alpha_bar_t: float, grid: ArrayLike, *, mode: str = "nearest") -> float:
    r"""Training timestep for a level: ``argmin_t |l(ab) - l(grid_t)|`` or its log-SNR interpolation.

    ``l = log(ab/(1-ab))``. ``mode="nearest"`` returns an integer-valued timestep (exact when
    ``ab`` is a grid level; a level exactly halfway in log-SNR between two grid levels takes the noisier one, the
    larger timestep); ``"interpolate"`` the fractional ``t`` linear in log-SNR between grid
    points, as k-diffusion's ``DiscreteSchedule.sigma_to_t`` (``quantize=False``) does in log-sigma.
    Levels beyond the grid's range map to its end timesteps.

    Parameters
    ----------
    alpha_bar_t : float in [0, 1)
        (0: pure noise, the noisiest timestep of a zero-terminal-SNR grid)
    grid : array_like, shape (T,)
        ``alphas_cumprod`` in training order (strictly decreasing in t).
    mode : {"nearest", "interpolate"}

    Returns
    -------
    float
        A timestep in [0, T-1] (``alpha_bar_t = 1`` maps to 0).

    Raises
    ------
    ValueError
        Unknown ``mode``; ``alpha_bar_t`` NaN or outside [0, 1]; ``grid`` not a non-empty 1-D array of finite
        levels in the open interval (0, 1) (a last entry 0, zero terminal SNR, is allowed), strictly decreasing.

    Source: docs/model.md §2 (log-SNR); k-diffusion ``DiscreteSchedule.sigma_to_t``.
    """
    from .schedules import alpha_bar_to_log_snr

    check_choice(mode, "mode", ("nearest", "interpolate"))
    lg = _log_snr_grid(grid)
    a = as_real(alpha_bar_t, "alpha_bar_t")  # ArgumentTypeError for an array, a string, a boolean or None
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"alpha_bar_t must lie in [0, 1] (got {a!r})")
    la = float(alpha_bar_to_log_snr(np.array([a]))[0])
    inc = lg[::-1]  # increasing; index T-1-t
    T = lg.size
    if mode == "nearest":
        pos = int(np.searchsorted(inc, la))
        lo, hi = max(pos - 1, 0), min(pos, T - 1)
        with np.errstate(invalid="ignore"):  # -inf - (-inf): the zero-SNR level itself, picked below
            pick = lo if la == inc[lo] or abs(la - inc[lo]) <= abs(inc[hi] - la) else hi
        return float(T - 1 - pick)
    if inc[0] == -np.inf:  # zero-SNR grid: its last gap is infinite in log-SNR, so only l = -inf reaches T-1
        if la == -np.inf or T == 1:
            return float(T - 1)
        return float(np.interp(la, inc[1:], np.arange(T - 2, -1, -1, dtype=np.float64)))
    return float(np.interp(la, inc, np.arange(T - 1, -1, -1, dtype=np.float64)))


def _log_snr_grid(grid: ArrayLike) -> Array:
    """The log-SNR of a training grid, checked as every training grid is (:func:`symsched.schedules._as_grid`:
    1-D, strictly decreasing, in (0, 1) except a last 0 for zero terminal SNR)."""
    from .schedules import _as_grid, alpha_bar_to_log_snr

    return alpha_bar_to_log_snr(_as_grid(grid, "grid"))


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"this needs torch: {_TORCH_HINT} ({exc})") from None
    return torch


def _torch_device(torch: Any, device: Any) -> Any:
    """``device`` as a ``torch.device`` that holds values in this torch build: a name such as ``"cpu"`` or
    ``"cuda:0"``, an accelerator index, a ``torch.device`` or None (torch's default device); checked by copying one
    value there and back, so the first denoiser call cannot fail on it inside torch."""
    if device is None:  # (torch.get_default_device is torch >= 2.3's)
        device = getattr(torch, "get_default_device", lambda: torch.device("cpu"))()
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise ArgumentTypeError(f"device must be a torch device or its name, such as 'cpu' or 'cuda:0' (got "
                                f"{device!r})")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        what = "not a torch device string" if isinstance(device, str) else "not available in this torch build"
        raise ValueError(f"device {device!r} is {what} (torch: {str(exc).splitlines()[0]})") from None
    if dev.type == "meta":
        raise ValueError("device 'meta' holds no values (a meta tensor has a shape but no data), so the denoiser's "
                         "output could not be read; use 'cpu' or an accelerator")
    try:
        torch.zeros(1, device=dev).to("cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, AssertionError, NotImplementedError, ...
        raise ValueError(f"device {device!r} is not available in this torch build (torch: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return dev


def torch_denoiser(
    module: Any,
    grid: ArrayLike,
    *,
    prediction: str = "epsilon",
    shape: Optional[Sequence[int]] = None,
    timestep: str = "nearest",
    device: Any = "cpu",
    dtype: Any = None,
    name: str = "torch module",
) -> Denoiser:
    r"""A torch module ``module(x_t, t) -> prediction`` conditioned on the timesteps of a training grid.

    ``alpha_bar_t`` is mapped to ``t`` on ``grid`` by :func:`grid_timestep` (``timestep`` mode;
    ``"nearest"`` passes int64 timesteps, ``"interpolate"`` float ones); ``x_t`` is converted to
    ``dtype`` (default: the module's parameter dtype, else float32) on ``device``. The module runs
    in ``torch.inference_mode()`` and in eval mode (dropout off, batch-norm running statistics: the samples depend
    only on the seed, not on the batch; submodules in training mode are switched for each call and restored after
    it, as the CLI's ``unet.eval()`` without changing the caller's module); its output may be a tensor, a tuple (first entry) or an object
    with ``.sample`` (diffusers). It must return the input's shape.

    Parameters
    ----------
    module : torch.nn.Module or callable
    grid : array_like, shape (T,)
        ``alphas_cumprod`` the module was trained with (training order).
    prediction : {"epsilon", "sample", "v"}
        (aliases ``"eps"``, ``"x0"``, ``"v_prediction"`` are accepted and stored as these names)
    shape : tuple of int, optional
        Shape of one sample (recorded for :func:`sample`).
    timestep : {"nearest", "interpolate"}
    device, dtype
        torch device (default ``"cpu"``; a name such as ``"cuda:0"``, an index, a ``torch.device``; None: torch's
        default device) and floating dtype of the module's input. The device is checked here, by copying one value
        to it and back.
    name : str
        How the denoiser is named in progress bars, messages and reports (``Denoiser.name``).

    Returns
    -------
    Denoiser

    Raises
    ------
    ImportError
        torch is not installed (``pip install "symsched[torch]"``).
    TypeError
        ``module`` not callable, ``dtype`` not a torch floating dtype, ``device`` not a device, its name or index;
        when sampling, an output that is no tensor.
    ValueError
        ``device`` not a torch device string (``"bogus"``), not available in this torch build (``"cuda"`` without
        CUDA), or ``"meta"`` (it holds no values); a ``dtype`` that none of the module's floating parameters has; a
        bad ``prediction``, ``timestep``, ``grid`` or ``shape``.

    Source: the call convention ``model(x_t, t)`` of diffusers ``UNet2DModel.forward`` and of DDPM-style training
    (Ho et al. 2020), ``t`` indexing ``alphas_cumprod``; the predictions as diffusers' ``prediction_type``.
    """
    torch = _require_torch()
    if not callable(module):
        raise ArgumentTypeError(f"module must be a torch module or a callable module(x_t, t) (got {type(module).__name__})")
    pred = _prediction(prediction)
    check_choice(timestep, "timestep", ("nearest", "interpolate"))
    from .schedules import _as_grid

    g = _as_grid(grid, "grid")
    dtype = _module_dtype(torch, module, dtype)
    tdtype = torch.int64 if timestep == "nearest" else torch.float32
    shp = None if shape is None else as_shape(shape)
    device = _torch_device(torch, device)

    def fn(x: Array, a: float) -> Array:
        t = grid_timestep(a, g, mode=timestep)
        with torch.inference_mode(), _eval_mode(torch, module):
            xt = torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=dtype)
            tt = torch.full((x.shape[0],), t, dtype=tdtype, device=device)
            out = module(xt, tt)
            if hasattr(out, "sample"):
                out = out.sample
            elif isinstance(out, (tuple, list)) and out:
                out = out[0]
            if not isinstance(out, torch.Tensor):
                raise ArgumentTypeError(f"{name} must return a torch tensor (or a tuple / an object with .sample "
                                        f"holding one), got {type(out).__name__}")
            out = out.detach().to("cpu")
            # float64 NumPy; a complex or boolean output keeps its dtype, refused by the sampler's check
            return (out.to(torch.float64) if out.is_floating_point() else out).numpy()

    return Denoiser(fn, pred, shp, g, name)


#: Modules the adapters hold in eval mode: id -> (calls inside, the submodules they switched); one lock for all
_EVAL_USERS: dict[int, tuple[int, list[Any]]] = {}
_EVAL_LOCK = threading.Lock()


@contextmanager
def _eval_mode(torch: Any, module: Any) -> Iterator[None]:
    """``module`` (a torch.nn.Module; anything else is left alone) in eval mode for the block: each submodule in
    training mode has its ``training`` flag cleared, as ``Module.eval()`` does, and set again when the last of the
    calls running it (threads sharing one denoiser) leaves, so the caller's mixed modes (e.g. frozen batch-norm
    layers in a training module) come back exactly. Code that uses the module directly meanwhile sees eval mode."""
    if not isinstance(module, torch.nn.Module):
        yield
        return
    key = id(module)
    with _EVAL_LOCK:
        inside, switched = _EVAL_USERS.get(key, (0, []))
        if inside == 0:
            switched = [m for m in module.modules() if m.training]
            for m in switched:
                m.training = False
        _EVAL_USERS[key] = (inside + 1, switched)
    try:
        yield
    finally:
        with _EVAL_LOCK:
            inside, switched = _EVAL_USERS.pop(key)
            if inside > 1:
                _EVAL_USERS[key] = (inside - 1, switched)
            else:
                for m in switched:
                    m.training = True


def _module_dtype(torch: Any, module: Any, dtype: Any) -> Any:
    """The input dtype: ``dtype``, or the module's floating parameters' (else float32); ValueError naming ``dtype``
    when the module's floating parameters hold none of that dtype (torch would fail at the first call)."""
    params = getattr(module, "parameters", None)
    kinds = {p.dtype for p in params() if p.is_floating_point()} if callable(params) else set()
    if dtype is None:
        first = next(iter(params()), None) if callable(params) else None
        return first.dtype if first is not None and first.is_floating_point() else torch.float32
    if not isinstance(dtype, torch.dtype):  # ("float32", numpy's float32: not torch's)
        raise ArgumentTypeError(f"dtype must be a torch floating dtype such as torch.float32 (got {dtype!r} of type "
                                f"{type(dtype).__name__})")
    if not dtype.is_floating_point:
        raise ArgumentTypeError(f"dtype must be a torch floating dtype such as torch.float32 (got {dtype!r}): an "
                                "integer dtype would truncate x_t")
    if kinds and dtype not in kinds:
        raise ValueError(f"dtype={dtype} differs from the module's parameters ({', '.join(sorted(map(str, kinds)))}), "
                         f"which torch refuses to mix: cast the module first (module.to({dtype})) or leave dtype=None")
    return dtype


def diffusers_denoiser(unet: Any, scheduler: Any, *, timestep: str = "nearest", device: Any = "cpu",
                       dtype: Any = None) -> Denoiser:
    r"""A diffusers ``UNet2DModel`` with its scheduler's training grid and prediction type.

    Reads ``scheduler.alphas_cumprod`` (the training grid) and ``scheduler.config.prediction_type``
    (``"epsilon"``, ``"sample"`` or ``"v_prediction"``); calls ``unet(x_t, t).sample`` with ``t`` from
    :func:`grid_timestep`. The sample shape is ``(in_channels, H, W)`` from ``unet.config`` (with
    ``sample_size=None``, diffusers' default, none is recorded: give ``shape=`` to :func:`sample`). Only
    the model is used: the update equations are symsched's (the same as diffusers' DDIM/DDPM
    ``step``; diffusers-only options such as ``clip_sample`` and thresholding are not applied).

    Returns
    -------
    Denoiser

    Raises
    ------
    ImportError
        torch is not installed.
    ValueError
        Unknown prediction type, a scheduler without ``alphas_cumprod``, a ``unet.config.sample_size`` that is no
        positive integer, pair or None, a class-conditional UNet (``num_class_embeds`` / ``class_embed_type``) or
        one whose ``out_channels`` differ from ``in_channels`` (learned variance), or a bad ``device`` or ``dtype``
        (as :func:`torch_denoiser`); with ``sample_size=None``, at the first call, a ``shape`` given to
        :func:`sample` that is not ``(in_channels, H, W)`` with H, W multiples of the UNet's downsampling.
    TypeError
        ``unet`` not a diffusers ``UNet2DModel`` (no ``config.sample_size`` / ``in_channels``, or a ``forward``
        that requires more than ``(sample, timestep)``, e.g. ``UNet2DConditionModel``); ``device`` or ``dtype`` of
        the wrong type.

    Source: diffusers ``models/unets/unet_2d.py`` (``UNet2DModel.forward(sample, timestep).sample``) and the
    scheduler's ``alphas_cumprod`` / ``config.prediction_type`` (``schedulers/scheduling_ddim.py``).
    """
    _require_torch()
    ucfg = getattr(unet, "config", None)
    if not callable(unet) or ucfg is None or not hasattr(ucfg, "sample_size") or not hasattr(ucfg, "in_channels"):
        raise ArgumentTypeError(f"unet must be a diffusers UNet2DModel (callable, with config.sample_size and "
                                f"config.in_channels), got {type(unet).__name__}")
    _check_unet(unet, ucfg)
    pred = _scheduler_prediction(scheduler)
    ac = getattr(scheduler, "alphas_cumprod", None)
    if ac is None:
        raise ValueError("scheduler must have alphas_cumprod (a diffusers DDPM/DDIM-type scheduler)")
    from .schedules import _standin_as_zero

    grid = as_real_array(ac.detach().cpu().numpy() if hasattr(ac, "detach") else ac,
                         "scheduler.alphas_cumprod")  # (complex grids were cast to real, strings not named)
    grid = _standin_as_zero(grid)  # diffusers' zero-SNR stand-in 2**-24: the model was trained at alpha_bar = 0 there
    shape = _unet_sample_shape(ucfg)
    try:
        den = torch_denoiser(unet, grid, prediction=pred, shape=shape, timestep=timestep, device=device, dtype=dtype,
                             name=f"diffusers {type(unet).__name__}")
    except ValueError as exc:  # the grid is the scheduler's: name it so
        if not str(exc).startswith("grid"):
            raise
        raise type(exc)(f"scheduler.alphas_cumprod (the training grid){str(exc)[len('grid'):]}") from None
    return den if shape is not None else _sized_by_caller(den, ucfg)


def _check_unet(unet: Any, ucfg: Any) -> None:
    """Refuse, naming ``unet``, a UNet that ``unet(x_t, t)`` cannot run or whose output is not the prediction
    alone (audit of 6 December: a UNet2DConditionModel, a class-conditional or a learned-variance UNet2DModel were
    accepted and failed at the first call inside torch, or as an output "of the wrong shape")."""
    import inspect

    try:
        params = list(inspect.signature(getattr(unet, "forward", unet)).parameters.values())
    except (TypeError, ValueError):  # (no signature to read: the first call will say)
        params = []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    extra = [p.name for p in positional[2:] if p.default is p.empty]
    extra += [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    fix = "wrap it in a module of (x_t, t) that supplies them, and use torch_denoiser"
    if extra:
        raise ArgumentTypeError(f"unet must run as unet(x_t, t), as a diffusers UNet2DModel does; "
                                f"{type(unet).__name__}.forward also requires {', '.join(extra)} (e.g. a "
                                f"text-conditioned UNet2DConditionModel): {fix}")
    if getattr(ucfg, "num_class_embeds", None) is not None or getattr(ucfg, "class_embed_type", None) is not None:
        raise ValueError(f"unet.config: a class-conditional UNet (num_class_embeds / class_embed_type set) needs "
                         f"class_labels at every call: {fix}")
    out, ch = getattr(ucfg, "out_channels", None), getattr(ucfg, "in_channels", None)
    if out is not None and out != ch:
        raise ValueError(f"unet.config.out_channels = {out} differs from in_channels = {ch}: the prediction must have "
                         f"the input's shape (a learned-variance model predicts it and a variance; wrap it to return "
                         f"the first {ch} channels and use torch_denoiser)")


def _sized_by_caller(den: Denoiser, ucfg: Any) -> Denoiser:
    """A UNet of any sample size (``sample_size=None``): its calls check the sample shape the caller gave against
    ``in_channels`` and the UNet's downsampling (``2**(len(block_out_channels) - 1)``), naming ``shape``, before the
    batch reaches torch (whose errors name neither)."""
    ch = int(ucfg.in_channels)
    blocks = getattr(ucfg, "block_out_channels", None)
    m = 2 ** (len(blocks) - 1) if isinstance(blocks, (tuple, list)) and blocks else 1
    inner = den.fn

    def fn(x: Array, a: float) -> Any:
        if x.ndim != 4 or x.shape[1] != ch or x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"shape must be (C, H, W) = ({ch}, H, W) with H and W multiples of {m} for this UNet "
                             f"(unet.config: in_channels {ch}, {m}x downsampling; got sample shape {x.shape[1:]})")
        return inner(x, a)

    return Denoiser(fn, den.prediction, None, den.grid, den.name)


def _unet_sample_shape(ucfg: Any) -> Optional[tuple[int, ...]]:
    """``(in_channels, H, W)`` of a UNet2DModel config; None when ``sample_size`` is None (any size: give ``shape=``
    to :func:`sample`); ValueError naming ``unet.config`` for anything but a positive integer or a pair of them."""
    def count(v: Any) -> bool:  # a positive integer, not a bool or an integral float
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v > 0

    size, ch = ucfg.sample_size, ucfg.in_channels
    hw = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if not count(ch) or not (size is None or (len(hw) == 2 and all(map(count, hw)))):
        raise ValueError(f"unet.config: sample_size must be a positive integer, a pair of them or None, and in_channels "
                         f"a positive integer (got sample_size={_show(size)}, in_channels={_show(ch)})")
    return None if size is None else (int(ch), int(hw[0]), int(hw[1]))


def _scheduler_prediction(scheduler: Any) -> str:
    """The prediction type of a diffusers scheduler's config (``"epsilon"`` when it names none, as diffusers' default),
    as :data:`PREDICTIONS` names it; ValueError naming ``scheduler.config.prediction_type`` otherwise."""
    cfg = getattr(scheduler, "config", None)
    ptype = getattr(cfg, "prediction_type", None) if cfg is not None else None
    if ptype is None and isinstance(cfg, Mapping):
        ptype = cfg.get("prediction_type")
    # diffusers' own names only (its schedulers' step() refuses symsched's aliases "v", "x0", "eps")
    ptype = check_choice(ptype or "epsilon", "scheduler.config.prediction_type", _DIFFUSERS_PREDICTIONS)
    return _prediction(ptype, "scheduler.config.prediction_type")


#: the prediction types diffusers' DDPM-family schedulers take (``schedulers/scheduling_ddim.py``)
_DIFFUSERS_PREDICTIONS = ("epsilon", "sample", "v_prediction")


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------
def _levels_for(sampler: str, ab: Array) -> Array:
    if _loops.SAMPLERS[sampler].family == "vp":
        return ab
    from .schedules import alpha_bar_to_sigmas

    return np.asarray(alpha_bar_to_sigmas(ab), dtype=np.float64)


@numpy_error_defaults
def sample(
    denoiser: Callable[[Array, float], Any],
    alpha_bar: ArrayLike,
    *,
    shape: Optional[Sequence[int]] = None,
    n_samples: int,
    sampler: str = "ddim",
    eta: float = 0.0,
    variance: str = "posterior",
    prediction: Optional[str] = None,
    seed: Seed = None,
    batch_size: Optional[int] = None,
    progress: Any = None,
    options: Optional[Mapping[str, Any]] = None,
) -> Array:
    r"""Samples of a sampler driven by ``denoiser`` over the schedule ``alpha_bar`` (then a final step to clean).

    The update equations are :mod:`symsched.montecarlo`'s (one shared implementation):
    DDIM(eta) ``x_s = sqrt(ab_s) x0_hat + sqrt(1-ab_s-s^2) eps_hat + s z``; DDPM
    ``x_s = (x_t - beta/sqrt(1-ab_t) eps_hat)/sqrt(1-beta) + sqrt(v) z``; VE ``euler``/``heun``
    (EDM) on ``sigma = sqrt((1-ab)/ab)``. ``x0_hat, eps_hat`` come from the denoiser's prediction
    (``epsilon``, ``sample`` or ``v``). Start: ``N(0, I)`` (VP) or ``N(0, sigma_max^2 I)`` (VE).
    With :func:`wiener_denoiser` the output spectrum is :func:`symsched.output_spectrum` exactly.
    The other k-diffusion samplers (:data:`LIBRARY_SAMPLERS`: ``euler_ancestral``, ``dpm_2``, ``lms``,
    ``dpmpp_2m``, ``dpmpp_sde``, ...) run k-diffusion's own ``sample_<name>`` on
    ``sigma = sqrt((1-ab)/ab)`` with ``model(x, sigma) = x0_hat`` (:mod:`symsched._library_samplers`;
    needs torch, torchsde and k-diffusion). The samplers symsched models after diffusers' own ``step``
    (``dpmsolver_multistep``, ``unipc_multistep``, ``deis_multistep``, ``euler_ancestral_discrete``,
    ``flow_match_euler``, ``flow_match_heun``) raise ``ValueError``: the probe has no loop for those
    schedulers (the message says how the schedule runs in diffusers itself, e.g. DPMSolverMultistep's
    ``timesteps=`` on its training grid or FlowMatchEuler's ``sigmas=``, and the nearest sampler it runs,
    e.g. ``dpmpp_2m`` for DPM-Solver++(2M)).

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x_t, alpha_bar_t)``: a float64 batch ``(b, *shape)`` and a float in [0, 1) ->
        the prediction, same shape (NumPy array or torch tensor).
    alpha_bar : array_like, shape (K,)
        Strictly increasing levels in [0, 1), noisiest first. ``alpha_bar[0] = 0`` (zero terminal
        SNR) runs with the VP samplers (``ddim``, ``ddpm``) from a ``"sample"`` or ``"v"`` model
        (DDPM takes its exact limit, the posterior mean ``sqrt(ab_s) x0_hat``); the samplers that step in
        ``sigma`` (infinite there) refuse it with ``ValueError``.
    shape : tuple of int, optional
        Shape of one sample; default ``denoiser.shape``. When the denoiser declares a ``shape`` (a
        :class:`Denoiser`, a built-in model), ``shape`` must equal it (ValueError naming ``shape``, before any
        denoiser call). At most ``MAX_MODES`` values (:mod:`symsched._validate`), refused before anything is
        allocated.
    n_samples : int
        At most ``MAX_SAMPLES`` = 10,000,000, and ``n_samples * prod(shape)`` at most ``MAX_VALUES`` = 2**30
        (:mod:`symsched._validate`), as :func:`symsched.montecarlo.sample`.
    sampler : {"ddim", "ddpm", "euler", "heun"} or one of :data:`LIBRARY_SAMPLERS`
    eta : float in [0, 1]
        DDIM stochasticity (DDIM only: another sampler refuses ``eta != 0``, as
        :func:`symsched.output_spectrum`; k-diffusion's ``eta`` goes in ``options``).
    variance : {"posterior", "beta"}
        DDPM injected variance (DDPM only: another sampler refuses ``"beta"``).
    prediction : {"epsilon", "sample", "v"}, optional
        (aliases ``"eps"``, ``"x0"``, ``"v_prediction"`` are accepted)
        What ``denoiser`` returns; default ``denoiser.prediction`` (a :class:`Denoiser`, a
        ``symsched.models`` model or its bound ``.denoiser``). Required for a plain function.
    seed : int >= 0, Generator or None
        ``np.random.default_rng(seed)`` (booleans refused); the same seed gives the same initial noise for every
        schedule (paired comparisons).
    batch_size : int, optional
        Samples per denoiser call (default: about 2**20 array elements). It does not change the noise of a seed:
        each step's noise has its own stream, consumed in sample order (only the noise k-diffusion draws itself,
        churn and the Brownian tree of ``dpmpp_sde`` / ``dpmpp_2m_sde`` / ``dpmpp_3m_sde``, depends on it); so a
        float64 denoiser gives the same samples, a float32 network the same to its batched rounding (~1e-6).
    progress : bool, tqdm bar or None
        Progress bar (default: only on a terminal); a tqdm instance is updated, not closed.
    options : mapping, optional
        Keyword arguments of k-diffusion's ``sample_<name>`` (``eta``, ``s_noise``, ``s_churn``, ``order``,
        ``solver_type``, ``r``, ...), for the k-diffusion samplers only: :data:`LIBRARY_SAMPLERS`, and ``euler`` /
        ``heun`` with churn (``s_churn``, ``s_tmin``, ``s_tmax``, ``s_noise``: then k-diffusion's own
        ``sample_euler`` / ``sample_heun`` runs, as for the library samplers); checked as
        :func:`symsched.output_spectrum` checks the same settings (``eta=-1``, LMS ``order=7`` and unknown
        names raise ``ValueError``), so every configuration sampled is one symsched can predict.

    Returns
    -------
    ndarray, shape (n_samples, *shape), float64

    Raises
    ------
    ValueError
        Bad arguments, a denoiser output that is complex, of the wrong shape or with NaN/inf, a registered sampler
        that cannot be driven with a learned model here, or k-diffusion missing for a library sampler; a first level
        below alpha_bar ~ 1.4e-309 for the samplers whose k-diffusion noise is a Brownian tree (``dpmpp_sde``,
        ``dpmpp_2m_sde``, ``dpmpp_3m_sde``: it overflows to NaN there;
        :func:`symsched._library_samplers.check_brownian_tree`), refused before any sampling.
    TypeError
        ``denoiser`` is not callable.
    """
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x_t, alpha_bar_t) (got {type(denoiser).__name__})")
    ab = as_levels(alpha_bar)
    eta = _check_run(sampler, eta, variance)
    seed = as_seed(seed)
    n = as_positive_int(n_samples, "n_samples", MAX_SAMPLES, limit="MAX_SAMPLES")
    options = _check_options(sampler, options)
    pred = _denoiser_prediction(denoiser, prediction)
    _check_start(ab, sampler, pred, "alpha_bar", options)
    if shape is None:
        shape = _attribute(denoiser, "shape")
        if shape is None:
            raise ValueError("shape must be given (the shape of one sample): the denoiser has no shape attribute")
    shp = as_shape(shape)
    _check_denoiser_shape(denoiser, shp)
    check_values(n, shp)
    size = int(np.prod(shp))
    batch = max(1, min(n, (1 << 20) // size)) if batch_size is None else as_positive_int(batch_size, "batch_size")
    model = _loops.PredictionModel(denoiser, pred, name=str(_attribute(denoiser, "name") or "denoiser"))
    out = np.empty((n, *shp))
    done = 0
    if sampler in LIBRARY_SAMPLERS or (options and sampler in _library.K_DIFFUSION):  # euler/heun churn: k-diffusion's
        from .schedules import alpha_bar_to_sigmas

        lib_seed = int(np.random.default_rng(seed).integers(2**62))
        bar = _loops.progress_bar(-(-n // batch) * ab.size, progress, f"{sampler} sampling (k-diffusion)")
        try:
            for x in _library.run_k_diffusion(sampler, np.asarray(alpha_bar_to_sigmas(ab), dtype=np.float64),
                                              model.ve, shape=shp, n=n, seed=lib_seed, batch=batch,
                                              options=options or {}, progress=bar.update):
                out[done : done + x.shape[0]] = x
                done += x.shape[0]
        finally:
            bar.close()
        return out
    levels = _levels_for(sampler, ab)
    for x in _loops.run(sampler, levels, model, shape=shp, n=n, rng=np.random.default_rng(seed), batch=batch,
                        options=dict(eta=eta, variance=variance), progress=progress, desc=f"{sampler} sampling"):
        out[done : done + x.shape[0]] = x
        done += x.shape[0]
    return out


def _check_denoiser_shape(denoiser: Any, shp: tuple[int, ...], subject: str = "shape must be") -> None:
    """ValueError starting with ``subject`` (naming the argument ``shp`` came from) when the denoiser declares its
    sample shape (a ``shape`` attribute: a :class:`Denoiser`, a built-in model) and ``shp`` is another: the denoiser
    would refuse the batch naming its own argument (``x must end with the spectrum's grid shape ...``), not the one
    the caller passed."""
    own = _attribute(denoiser, "shape")
    if own is None:
        return
    own = as_shape(own, "the denoiser's shape")
    if shp != own:
        raise ValueError(f"{subject} the denoiser's sample shape {own} (got {shp})")


def _denoiser_prediction(denoiser: Any, prediction: Optional[str]) -> str:
    """``prediction``, else the denoiser's own ``prediction`` attribute; ValueError when neither says, or when both
    say and disagree (as for ``shape``: an epsilon model read as a sample model scored MMD² 0.140 for 0.037 without a
    word, audit of 5 December)."""
    own = _attribute(denoiser, "prediction")
    if prediction is None:
        if own is None:
            raise ValueError("prediction must be given ('epsilon', 'sample' or 'v'): the denoiser does not say what it "
                             "returns")
        return _prediction(own)
    given = _prediction(prediction)
    if isinstance(own, str):  # diffusers' "v_prediction" and the other aliases declare what they stand for
        own = _loops.PREDICTION_ALIASES.get(own, own)
    declared = isinstance(own, str) and own in PREDICTIONS  # (a method named prediction declares none)
    if declared and own != given:
        raise ValueError(f"prediction={given!r} conflicts with the denoiser's own prediction {own!r} (what it returns); "
                         "leave prediction out, or wrap a plain function to reinterpret its output")
    return given


def _check_start(ab: Array, sampler: str, prediction: str, name: str, options: Optional[Mapping[str, Any]]) -> None:
    """ValueError, before any sampling, for a schedule starting at alpha_bar = 0 (zero terminal SNR) that ``sampler``
    or a ``prediction`` model cannot start from, or so close to it that k-diffusion's Brownian-tree noise overflows
    (:func:`symsched._library_samplers.check_brownian_tree`), for fewer levels than k-diffusion's sampler runs
    (:func:`symsched._library_samplers.check_library_steps`), and for an ``"epsilon"`` model whose first level is
    below the floor where it still gives ``x0_hat`` (:func:`symsched._signal_samplers.check_prediction_level`)."""
    if ab[0] != 0.0:
        if sampler in LIBRARY_SAMPLERS:
            _library.check_library_steps(sampler, ab.size, name)
            _library.check_brownian_tree(sampler, _levels_for("euler", ab), options or {}, name)
        _loops.check_prediction_level(prediction, float(ab[0]), f"{name}: ")
        return
    if sampler in LIBRARY_SAMPLERS or _loops.SAMPLERS[sampler].family != "vp":
        vp = ", ".join(k for k, v in _loops.SAMPLERS.items() if v.family == "vp")
        raise ValueError(
            f"{name}: sampler {sampler!r} steps in sigma = sqrt((1-alpha_bar)/alpha_bar), which is infinite at "
            f"alpha_bar = 0 (zero terminal SNR); only the VP samplers ({vp}) run from alpha_bar = 0 in signal "
            f"space. Start {sampler!r} at a finite first level (alpha_bar[0] > 0, e.g. 1e-4) or use one of those")
    if prediction == "epsilon":
        raise ValueError(
            f"{name} starts at alpha_bar = 0 (zero terminal SNR), where an epsilon-prediction model determines no "
            "x0_hat (x_t is pure noise: x0 = (x_t - eps)/sqrt(alpha_bar) is 0/0); use a 'v' or 'sample' model there "
            "or start the schedule at alpha_bar > 0")


def _check_run(sampler: Any, eta: Any, variance: Any) -> float:
    """``eta`` (a float), with the sampler settings of a run checked as :func:`sample` checks them: a sampler it runs,
    ``eta`` in [0, 1], ``variance`` "posterior" or "beta", and neither away from its neutral value for a sampler that
    does not take it (ValueError, or ArgumentTypeError for a wrong type, naming the argument)."""
    _check_sampler(sampler)
    check_choice(variance, "variance", ("posterior", "beta"))
    try:  # a sampler without eta refuses any eta as such, not by DDIM's range (eta=2.0 read "must lie in [0, 1]")
        given = as_real(eta, "eta")
    except ValueError:  # (and ArgumentTypeError) its type or value is refused by check_eta
        given = 0.0
    _check_sampler_settings(sampler, given, variance)
    return check_eta(eta)


def _check_sampler_settings(sampler: str, eta: float, variance: str) -> None:
    """ValueError for a setting ``sampler`` does not take away from its neutral value (as :func:`symsched.output_spectrum`)."""
    takes = _loops.SAMPLERS[sampler].options if sampler in _loops.SAMPLERS else ()
    if eta != 0.0 and "eta" not in takes:
        where = " (k-diffusion's eta goes in options={'eta': ...})" if sampler in LIBRARY_SAMPLERS else ""
        raise ValueError(f"eta: sampler {sampler!r} takes no eta, only 'ddim' does (got eta={eta!r}){where}")
    if variance != "posterior" and "variance" not in takes:
        raise ValueError(f"variance: sampler {sampler!r} takes no variance, only 'ddpm' does (got variance={variance!r})")


def _check_options(sampler: str, options: Any) -> Optional[dict[str, Any]]:
    """The k-diffusion ``options`` of a library sampler (None or a mapping), checked exactly as
    :func:`symsched.output_spectrum` checks the same settings, then against k-diffusion's function itself; returned
    as the engine reads them (an integer setting given as a whole float, ``order=3.0``, as the integer 3, which
    k-diffusion's loops need, as the exports give it).

    A non-mapping is :class:`ArgumentTypeError`; options for a sampler other than the k-diffusion ones
    (:data:`LIBRARY_SAMPLERS`, and ``euler`` / ``heun`` with churn) are a ValueError. Then the shared validator of :mod:`symsched.api` (parameter ranges such as ``eta``/``s_noise`` in
    [0, inf], option choices such as LMS ``order`` in 1-4, unknown names); its error, prefixed with ``options:``,
    keeps its type (ValueError, or TypeError for a value of the wrong kind). Last, the names against the keyword
    parameters of k-diffusion's function (:func:`symsched._library_samplers.check_settings`; needs k-diffusion, as
    sampling does): a setting symsched models at its neutral value (``eta = 0`` for ``dpmpp_2m``) may still be one
    the function does not take, refused here, before any work.
    """
    from .api import _setup

    if options is not None and not isinstance(options, Mapping):
        raise ArgumentTypeError(f"options must be a mapping of k-diffusion settings or None (got {type(options).__name__})")
    if not options:
        return None
    _options_taken(sampler, options)
    try:
        _, opts, params = _setup(sampler, dict(options))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"options: {exc}") from None
    _library.check_settings(sampler, options)
    resolved = {**params, **opts}
    return {k: resolved.get(k, v) for k, v in options.items()}


def _options_taken(sampler: str, options: Any) -> None:
    """ValueError when ``options`` are given for a sampler that is not k-diffusion's (which alone take them)."""
    if options and sampler not in _library.K_DIFFUSION:
        raise ValueError(f"options: only the k-diffusion samplers {', '.join(_library.K_DIFFUSION)} take options "
                         f"(got {dict(options)!r} with sampler {sampler!r})")


#: samplers symsched evaluates in closed form but :func:`sample` cannot drive with a learned model:
#: name -> (the diffusers scheduler whose ``step`` it is, how a symsched schedule runs in that scheduler
#: (:func:`symsched.export.to_diffusers`), the nearest sampler the probe runs, or "")
_DIFFUSERS_ONLY: dict[str, tuple[str, str, str]] = {
    "dpmsolver_multistep": (
        "DPMSolverMultistepScheduler",
        "its set_timesteps takes custom timesteps= on its training grid (symsched.export.to_diffusers(alpha_bar, "
        "scheduler=...)), so the schedule itself runs in diffusers",
        "'dpmpp_2m' (k-diffusion's DPM-Solver++(2M): its first and last steps are not diffusers', so the "
        "predicted spectra differ a little)"),
    "unipc_multistep": (
        "UniPCMultistepScheduler",
        "its set_timesteps takes custom levels only with use_flow_sigmas=True (sigmas=)", ""),
    "deis_multistep": ("DEISMultistepScheduler", "its set_timesteps takes only num_inference_steps", ""),
    "euler_ancestral_discrete": (
        "EulerAncestralDiscreteScheduler", "its set_timesteps takes only num_inference_steps",
        "'euler_ancestral' (k-diffusion's sample_euler_ancestral: the same update, the same predicted spectrum)"),
    "flow_match_euler": (
        "FlowMatchEulerDiscreteScheduler",
        "its set_timesteps takes custom flow times sigmas= (symsched.export.to_diffusers(alpha_bar, "
        "scheduler='FlowMatchEulerDiscreteScheduler')), so the schedule itself runs in diffusers with a velocity model",
        ""),
    "flow_match_heun": ("FlowMatchHeunDiscreteScheduler", "its set_timesteps takes only num_inference_steps", ""),
}


def _check_sampler(sampler: Any) -> None:
    """ValueError unless :func:`sample` can run ``sampler`` (naming registered samplers it cannot drive, and why)."""
    from .symbolic.samplers import REGISTRY

    if isinstance(sampler, str) and sampler in REGISTRY and sampler not in SAMPLERS + LIBRARY_SAMPLERS:
        runs = (f"it samples only with symsched's own update loops ({', '.join(SAMPLERS)}) or k-diffusion's "
                f"sample_<name> ({', '.join(LIBRARY_SAMPLERS)})")
        scheduler, export, nearest = _DIFFUSERS_ONLY.get(sampler, ("", "", ""))
        if scheduler:
            why = f"the learned probe has no loop for diffusers' {scheduler}.step: {runs}. In diffusers, {export}"
        else:  # pragma: no cover - every registered sampler outside the probe's is listed above
            why = f"the learned probe cannot drive it: {runs}"
        near = f"; the nearest sampler the probe runs is {nearest}" if nearest else ""
        raise ValueError(f"sampler {sampler!r}: {why}{near}")
    check_choice(sampler, "sampler", SAMPLERS + LIBRARY_SAMPLERS)


def predicted_spectrum(spectrum: ArrayLike, alpha_bar: ArrayLike, *, sampler: str = "ddim", eta: float = 0.0,
                       variance: str = "posterior", options: Optional[Mapping[str, Any]] = None) -> Array:
    """Closed-form output PSD of :func:`sample` with the exact denoiser (white start).

    :func:`symsched.output_spectrum` for VP samplers, :func:`symsched.output_spectrum_ve` on
    ``sigma = sqrt((1-ab)/ab)`` for VE ones (k-diffusion ``options`` passed on to either, which refuses the
    settings its sampler does not take, as :func:`sample` does). ValueError (ArgumentTypeError for a wrong type) for
    what :func:`sample` refuses of ``sampler``, ``eta``, ``variance`` (an ``eta`` or ``variance`` the sampler does
    not take included), ``alpha_bar`` (e.g. a first level at 0 for a VE sampler, fewer levels than k-diffusion's
    ``sample_dpmpp_2m_sde`` runs: :func:`sample`'s checks before sampling, whatever the model predicts) and
    ``options``, and for a bad ``spectrum``.
    """
    from . import output_spectrum, output_spectrum_ve

    eta = _check_run(sampler, eta, variance)  # (a VE sampler's eta or variance was ignored)
    ab = as_levels(alpha_bar)
    _options_taken(sampler, options)  # as sample(): DDIM's eta and DDPM's variance are arguments, not options
    opts = dict(options or {})
    _check_start(ab, sampler, "sample", "alpha_bar", opts)  # levels sample() refuses whatever the model predicts
    if sampler not in LIBRARY_SAMPLERS and _loops.SAMPLERS[sampler].family == "vp":
        return output_spectrum(spectrum, ab, sampler=sampler, eta=eta, variance=variance, init="white", **opts)
    return output_spectrum_ve(spectrum, _levels_for("euler", ab), sampler=sampler, init="white", **opts)


def _predicted(S: Array, alpha_bar: Optional[ArrayLike], sampler: str, eta: float, variance: str,
               options: Optional[Mapping[str, Any]] = None) -> Optional[tuple[Array, dict[str, float]]]:
    """``(P, {"spectral_kl", "spectral_w2"})`` of a schedule (None without one): :func:`predicted_spectrum`, and the
    divergences in the ratio form of :func:`symsched.optimize.schedule_metrics`, exact where P underflows (a faint
    spectrum's P ~ S^2 is 0 in float64, its KL finite)."""
    from .optimize import schedule_metrics

    if alpha_bar is None:
        return None
    P = predicted_spectrum(S, alpha_bar, sampler=sampler, eta=eta, variance=variance, options=options)
    vp = sampler not in LIBRARY_SAMPLERS and _loops.SAMPLERS[sampler].family == "vp"
    kw = dict(eta=eta, variance=variance) if vp else {}
    m = schedule_metrics(S, alpha_bar, sampler=sampler, init="white", **kw, **dict(options or {}))
    kl = float(m["kl"])
    if kl == math.inf and not np.any((S == 0) & (P > 0)):  # +inf is true only for a zero mode the sampler fills
        faint = f"; smallest nonzero mode variance {float(np.min(S[S > 0])):.3g}" if np.any(S > 0) else ""
        raise ValueError("alpha_bar: the predicted spectral_kl of this schedule on spectrum exceeds the float64 range "
                         f"(the ratio S/P of its faintest modes overflows{faint}); compare a spectrum nearer the "
                         "data's scale")
    return P, {"spectral_kl": kl, "spectral_w2": float(m["w2"])}


# --------------------------------------------------------------------------------------------
# spectra of samples
# --------------------------------------------------------------------------------------------
def _as_samples(samples: ArrayLike, name: str = "samples", shape: Optional[tuple[int, ...]] = None) -> Array:
    arr = as_real_array(samples, name)  # ArgumentTypeError for None, strings, boolean / complex / string arrays
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (n, *sample_shape) with a batch axis first (got {arr.shape})")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} must hold at least 2 samples (got {arr.shape[0]})")
    if arr[0].size == 0:
        raise ValueError(f"{name} must hold at least one value per sample (got shape {arr.shape})")
    if shape is not None and arr.shape[1:] != shape:
        raise ValueError(f"{name} must have sample shape {shape} like the reference (got {arr.shape[1:]})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return arr


@numpy_error_defaults
def measured_spectrum(samples: ArrayLike, basis: Optional[ArrayLike] = None, *,
                      channel_axis: Optional[int] = None) -> Array:
    r"""Spectrum of a batch of samples, in the coordinates symsched's closed forms use.

    * default: the averaged periodogram ``mean_n |fft(x_n)[k]|^2 / N`` over all sample axes
      (:func:`symsched.montecarlo.empirical_psd`), shape of one sample;
    * ``channel_axis`` (an axis of one sample, e.g. 0 for ``(C, H, W)``): the eigenvalues of the
      colour cross-spectrum per frequency (:func:`symsched.spectra.colour_eigen_psd`), shape
      ``(H, W, C)``;
    * ``basis`` ``U`` (d, d) orthonormal: the mean squared coefficient ``mean_n (U^T x_n)^2`` of
      the flattened samples, shape ``(d,)`` (e.g. :func:`pca_basis` of the reference).

    Second moments, not centred: the zero-mean Gaussian model's spectrum (the DC term holds the mean).
    Source: the averaged periodogram of docs/model.md §1 (modes: DFT, colour eigen-modes or PCA).

    Returns
    -------
    ndarray, float64

    Raises
    ------
    ValueError
        ``samples`` not a real array of shape (n, ...) with n >= 2, or not finite; both ``basis`` and
        ``channel_axis`` given; samples without exactly 3 axes per sample with it, or ``channel_axis`` not one of
        them (any of the 3 may hold the channels: the other two, in order, are H and W); a ``basis`` not (d, d)
        orthonormal; a spectrum beyond float64.
    """
    return _measured(samples, basis, channel_axis, "samples")


def _measured(samples: ArrayLike, basis: Optional[ArrayLike], channel_axis: Optional[int], name: str) -> Array:
    """:func:`measured_spectrum` of ``samples`` (called ``name`` in errors), without overflow or underflow."""
    return _measured_scaled(_as_samples(samples, name), basis, channel_axis, name)[0]


def _measured_scaled(x: Array, basis: Optional[ArrayLike], channel_axis: Optional[int],
                     name: str) -> tuple[Array, Array, int]:
    """``(psd, unit, e)``: the spectrum of ``x``, and the spectrum ``unit = psd / 2^(2e)`` of ``x / 2^e`` (largest
    |value| in [0.5, 1)).

    The spectrum is quadratic in the samples and the scaling by a power of two is exact, so ``unit`` keeps every
    mode a scale-free quantity needs (a KL divergence of two spectra brought to a common scale) even where
    ``psd`` itself is subnormal or 0 (``e = 0``, ``unit = psd``, where |x| lies within 2^+-250); ``psd`` beyond
    float64, or all of it below its normal range, raises.
    """
    return at_unit_scale(lambda y: _measured_unscaled(y, basis, channel_axis), x, name, "their spectrum")


def _common_scale(unit_a: Array, e_a: int, unit_b: Array, e_b: int) -> tuple[Array, Array]:
    """Two :func:`_measured_scaled` spectra at one scale (the larger's largest second moment ~1), for quantities that
    do not change when both spectra are multiplied by one number (KL)."""
    top = max(e_a, e_b)
    with np.errstate(under="ignore"):
        return np.ldexp(unit_a, 2 * (e_a - top)), np.ldexp(unit_b, 2 * (e_b - top))


def _measured_unscaled(x: Array, basis: Optional[ArrayLike], channel_axis: Optional[int]) -> Array:
    from . import montecarlo as mc
    from .spectra import colour_eigen_psd

    if basis is not None and channel_axis is not None:
        raise ValueError("give basis or channel_axis, not both")
    if basis is not None:
        return mc.empirical_psd(x.reshape(x.shape[0], -1), basis=basis)
    if channel_axis is not None:
        axis = as_axis(channel_axis, "channel_axis", x.ndim - 1, "one sample")
        if x.ndim != 4:
            raise ValueError(f"channel_axis needs 3 axes per sample, e.g. (n, C, H, W) or (n, H, W, C) (got {x.shape})")
        return colour_eigen_psd(np.moveaxis(x, 1 + axis, -1))
    return mc.empirical_psd(x)


@numpy_error_defaults
def pca_basis(reference: ArrayLike) -> tuple[Array, Array]:
    r"""PCA basis of reference data: ``U`` (d, d) and variances ``S`` (d,), descending: ``X^T X / n = U diag(S) U^T``.

    Uncentred second moments (the zero-mean model), of the flattened samples: ``reference`` (n, ...) with
    ``d`` values per sample. Data beyond 2^250 ≈ 1.8e75 (or all below 2^-250) are divided by one power of two first
    (exact, as for the sample metrics), so neither the second moments nor the eigen-solver overflow or underflow. ValueError unless ``reference`` is a finite real
    array with a batch axis and n >= 2, or when the variances lie beyond float64 or all below its normal range.
    Source: docs/model.md §1 (PCA modes); ``numpy.linalg.eigh``.
    """
    x = _as_samples(reference, "reference")
    X = x.reshape(x.shape[0], -1)
    vectors: list[Array] = []

    def estimate(Xu: Array) -> Array:  # second moments are homogeneous of degree 2: exact rescaling
        unit, V = np.linalg.eigh(Xu.T @ Xu / Xu.shape[0])
        vectors.append(V)
        return np.clip(unit[::-1], 0.0, None)

    S = at_unit_scale(estimate, X, "reference", "their PCA variances")[0]
    U = vectors[0]
    return np.ascontiguousarray(U[:, ::-1]), S


# --------------------------------------------------------------------------------------------
# sample metrics
# --------------------------------------------------------------------------------------------
def _flat(x: ArrayLike, name: str) -> Array:
    a = _as_samples(x, name)
    return a.reshape(a.shape[0], -1)


@numpy_error_defaults
def median_bandwidth(x: ArrayLike, *, max_points: int = _MEDIAN_POINTS, seed: int = 0) -> float:
    """Median heuristic: the median pairwise Euclidean distance of (up to ``max_points`` of) ``x``.

    ``h = median_{i<j} |x_i - x_j|_2`` over the flattened samples; ``x``: (n, ...), n >= 2; returns a float in
    the units of ``x``. Above ``max_points`` samples a random subset (``default_rng(seed)``) is used. Raises
    ValueError for ``x`` not a finite real array of at least 2 samples, identical points (h = 0), distances
    that overflow or underflow float64, ``max_points`` < 2 or a bad ``seed``. Source: the median heuristic (Gretton
    et al. 2012, JMLR 13);
    ``scipy.spatial.distance.pdist``.
    """
    max_points = as_positive_int(max_points, "max_points")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2 (a distance needs two points; got {max_points})")
    return _median_bandwidth(_flat(x, "x"), max_points, _metric_seed(seed), "x")


def _median_bandwidth(X: Array, max_points: int, seed: int, name: str) -> float:
    from scipy.spatial.distance import pdist

    if X.shape[0] > max_points:
        X = X[np.random.default_rng(seed).choice(X.shape[0], max_points, replace=False)]
    c = pow2_scale(X)  # the median distance is homogeneous of degree 1: exact rescaling
    h = c * float(np.median(pdist(X / c)))
    if not h > 0:
        if np.any(X != X[:1]):  # (distances cannot underflow after the rescaling above)
            raise ValueError(f"{name}: more than half of its pairwise distances are 0 (repeated points), so the median "
                             "heuristic gives no bandwidth; pass bandwidths= explicitly")
        raise ValueError(f"{name} must not consist of identical points (median pairwise distance is 0)")
    if not math.isfinite(h):
        raise ValueError(f"{name}: values too large for their pairwise distances to be represented in float64 "
                         f"(median distance overflows); rescale them")
    return h


def _kernel_sums(X: Array, Y: Optional[Array], h: Array) -> Array:
    """Sum over pairs of exp(-|x - y|^2 / (2 h^2)) per bandwidth; Y=None: pairs i != j within X.

    Within X only the blocks on and above the diagonal are formed (the rest by symmetry). Widest
    bandwidth first; a kernel whose exponent is 2x or 4x the previous one is its square or fourth
    power (exact up to rounding: the median-heuristic scales 0.5, 1, 2 differ by powers of 2).
    """
    same = Y is None
    Yb = X if same else Y
    # the kernel depends on |x - y| / h only: data beyond 2^250 (or all below 2^-250) and the bandwidths are
    # divided by one power of two (exact) so that squared distances stay in float64 (they overflowed to inf - inf)
    c = pow2_scale(X, Yb)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        if c != 1.0:
            X, Yb, h = X / c, Yb / c, h / c
        # |x|^2 + |y|^2 - 2 x.y cancels by the data's offset: centre both on one point (the sum is translation
        # invariant) so that an offset of 1e8 does not swamp distances of 1 (it changed the MMD's sign)
        mu = Yb.mean(axis=0)
        X = X - mu
        Yb = X if same else Yb - mu
        # in [-max, -tiny]: a bandwidth far beyond (below) every distance gives k -> 1 (0) without 0 * inf, inf * 0
        sy = np.sum(Yb * Yb, axis=1)
        inv = np.clip(-0.5 / h**2, -np.finfo(np.float64).max, -np.finfo(np.float64).tiny)
    order = np.argsort(h)[::-1]
    tot = np.zeros(h.size)
    for i in range(0, X.shape[0], _KERNEL_CHUNK):
        Xi = X[i : i + _KERNEL_CHUNK]
        b = Xi.shape[0]
        j0 = i if same else 0  # within X: columns from the diagonal block on
        d2 = np.sum(Xi * Xi, axis=1)[:, None] + sy[None, j0:] - 2.0 * (Xi @ Yb[j0:].T)
        np.maximum(d2, 0.0, out=d2)
        if same:
            d2[np.arange(b), np.arange(b)] = np.inf  # k(x_i, x_i) left out
            d2[:, :b] = np.triu(d2[:, :b]) + np.tril(np.full((b, b), np.inf), -1)  # diagonal block: j > i only
        K, c_prev = d2, 0.0
        for k in order:
            ratio = inv[k] / c_prev if c_prev else 0.0
            if ratio in (2.0, 4.0):
                np.multiply(K, K, out=K)
                if ratio == 4.0:
                    np.multiply(K, K, out=K)
            else:
                with np.errstate(over="ignore"):  # -inf: k = 0
                    K = np.exp(d2 * inv[k])
            c_prev = inv[k]
            tot[k] += K.sum()
    return 2.0 * tot if same else tot


def _mmd_size(n: int, name: str) -> None:
    """ValueError naming ``name`` for more than MAX_MMD_SAMPLES samples: MMD² sums over every pair."""
    if n > MAX_MMD_SAMPLES:
        raise ValueError(f"{name}: at most {MAX_MMD_SAMPLES} samples for MMD² (symsched._validate.MAX_MMD_SAMPLES; got "
                         f"{n}): its cost grows with the square of the number of samples; pass a random subset")


def _n_projections(n_projections: Any) -> int:
    return as_positive_int(n_projections, "n_projections", MAX_PROJECTIONS, limit="MAX_PROJECTIONS")


def _mmd_terms(X: Array, Y: Array, h: Array, kyy: Optional[Array] = None) -> Array:
    m, n = X.shape[0], Y.shape[0]
    kxx = _kernel_sums(X, None, h) / (m * (m - 1))
    if kyy is None:
        kyy = _kernel_sums(Y, None, h) / (n * (n - 1))
    kxy = _kernel_sums(X, Y, h) / (m * n)
    return kxx + kyy - 2.0 * kxy


@numpy_error_defaults
def mmd2(x: ArrayLike, y: ArrayLike, *, bandwidths: Union[float, Sequence[float], None] = None,
         scales: Sequence[float] = (0.5, 1.0, 2.0)) -> float:
    r"""Unbiased MMD² with the mixture kernel ``k = mean_b exp(-|x-y|^2 / (2 h_b^2))`` (Gretton et al. 2012, eq. 3).

    ``MMD²_u = 1/(m(m-1)) sum_{i!=j} k(x_i,x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i,y_j) - 2/(mn) sum k(x_i,y_j)``;
    its expectation is 0 when x and y come from one distribution (so estimates can be < 0).

    Parameters
    ----------
    x, y : array_like, shape (m, ...) and (n, ...)
        Samples (flattened per sample), m, n >= 2.
    bandwidths : float or sequence of float, optional
        Kernel widths ``h_b``; default ``median_bandwidth(y) * scales``. At most ``MAX_ENTRIES`` = 100 (each is a
        kernel pass over every pair of samples).
    scales : sequence of float
        Multipliers of the median heuristic when ``bandwidths`` is None (at most ``MAX_ENTRIES``).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``x`` or ``y`` not a finite real array of at least 2 samples, or of more than MAX_MMD_SAMPLES = 20,000
        (``symsched._validate.MAX_MMD_SAMPLES``: the cost is O((m + n)^2 d), every pair; pass a random subset);
        different values per sample; non-positive or non-finite ``bandwidths`` or ``scales``, or more than
        MAX_ENTRIES of them (an endless iterable is not read further); identical points in ``y`` (median heuristic 0).
    """
    X, Y = _flat(x, "x"), _flat(y, "y")
    _mmd_size(X.shape[0], "x")
    _mmd_size(Y.shape[0], "y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"x and y must have the same sample size (got {X.shape[1]} and {Y.shape[1]})")
    h = _bandwidths(bandwidths, scales, Y)
    return float(np.mean(_mmd_terms(X, Y, h)))


def _positive_numbers(value: Any, name: str) -> Array:
    """A number or a 1-D sequence of at most MAX_ENTRIES positive finite numbers (each a kernel pass over every pair
    of samples), as a 1-D float64 array (ArgumentTypeError for a string, a boolean or None)."""
    if is_sequence(value) and not isinstance(value, np.ndarray):  # range(1, 10**9) is not listed
        value = check_entries(value, name, why="each is a kernel pass over every pair of samples")
    a = as_real_array(value, name)
    if a.ndim > 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must be a positive finite number or a 1-D sequence of them (got {_show(value)})")
    if a.size > MAX_ENTRIES:
        raise ValueError(f"{name} must hold at most {MAX_ENTRIES} values (symsched._validate.MAX_ENTRIES; got "
                         f"{a.size} values): each is a kernel pass over every pair of samples")
    return np.atleast_1d(a)


def _bandwidths(bandwidths: Any, scales: Sequence[float], Y: Array, name: str = "y") -> Array:
    if bandwidths is None:
        s = _positive_numbers(scales, "scales")
        median = _median_bandwidth(Y, _MEDIAN_POINTS, 0, name)
        with np.errstate(over="ignore"):
            h = median * s
        if not np.all(np.isfinite(h)):
            raise ValueError(f"{name}: its median pairwise distance {median:.6g} times scales {scales!r} exceeds the "
                             "float64 range; rescale the samples, or pass smaller scales or bandwidths=")
        return h
    return _positive_numbers(bandwidths, "bandwidths")


def _require_ot() -> Any:
    try:
        import ot
    except ImportError as exc:
        raise ImportError(f"sliced W2 needs POT (Python Optimal Transport): {_TORCH_HINT} or pip install POT ({exc})") from None
    return ot


def _metric_seed(seed: Any) -> int:
    """A metric's seed: an integer >= 0 (None or a Generator would make its projections / subset differ between
    calls, and the metric's values of two sample sets unpaired)."""
    return as_int(seed, "seed", 0, rule="an integer >= 0 (it fixes the metric's random directions / subset; None or "
                                        "a Generator would change them between calls)")


def _projections(d: int, n_projections: int, seed: Any) -> Array:
    if d * n_projections > MAX_VALUES:  # the (d, P) matrix itself
        raise ValueError(f"n_projections: {n_projections} directions of {d} values each is more than MAX_VALUES = "
                         f"{MAX_VALUES} (symsched._validate.MAX_VALUES); use fewer")
    P = np.random.default_rng(_metric_seed(seed)).standard_normal((d, n_projections))
    return P / np.linalg.norm(P, axis=0, keepdims=True)


@numpy_error_defaults
def sliced_w2(x: ArrayLike, y: ArrayLike, *, n_projections: int = 128, seed: int = 0,
              projections: Optional[ArrayLike] = None) -> float:
    r"""Sliced Wasserstein-2 distance ``(E_theta W2^2(theta#x, theta#y))^(1/2)`` (POT's ``ot.sliced_wasserstein_distance``).

    ``n_projections`` random unit directions from ``default_rng(seed)`` (or ``projections``,
    shape (d, P), unit columns): the same directions for every call with the same seed, so
    differences between sample sets are paired.

    ``x``, ``y``: (m, ...) and (n, ...) with the same number d of values per sample, m, n >= 2; returns a float
    in the units of the samples. Raises ImportError without POT, and ValueError for ``x``/``y`` not finite real
    arrays of at least 2 samples, different d, ``n_projections`` not a positive integer or beyond MAX_PROJECTIONS =
    10,000 (``symsched._validate.MAX_PROJECTIONS``) or with ``d * n_projections`` beyond MAX_VALUES, or ``projections``
    not of shape (d, P), finite, with unit columns (norms within 1e-3 of 1, e.g. normalised in float32; they are
    renormalised in float64), or a distance beyond float64. Source: Bonneel et al. 2015 (J. Math. Imaging Vis. 51,
    sliced Wasserstein); POT.
    """
    ot = _require_ot()
    X, Y = _flat(x, "x"), _flat(y, "y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"x and y must have the same sample size (got {X.shape[1]} and {Y.shape[1]})")
    if projections is None:
        P = _projections(X.shape[1], _n_projections(n_projections), seed)
    else:
        P = as_real_array(projections, "projections")
        if P.ndim != 2 or P.shape[0] != X.shape[1] or P.shape[1] == 0:
            raise ValueError(f"projections must have shape ({X.shape[1]}, n_projections) (got {P.shape})")
        if not np.all(np.isfinite(P)):
            raise ValueError("projections must be finite")
        norms = np.linalg.norm(P, axis=0)
        if np.max(np.abs(norms - 1.0)) > 1e-3:  # float32-normalised columns (norms 1 +- 1e-5) are unit
            j = int(np.argmax(np.abs(norms - 1.0)))
            raise ValueError(f"projections must have unit columns (column {j} has norm {norms[j]:.6g}): divide "
                             "each by its norm")
        P = P / norms  # exactly unit in float64
    # sliced W2 is homogeneous of degree 1: data beyond 2^250 (or all below 2^-250) are scaled by a power of
    # two (exact) so that the squared projected distances stay in float64 (they overflowed to a silent NaN, or
    # underflowed to 0)
    c = pow2_scale(X, Y)
    return _finite_metric(c * float(ot.sliced_wasserstein_distance(X / c, Y / c, projections=P, p=2)), "sliced W2",
                          "x, y")


@numpy_error_defaults
def gaussian_frechet_distance(mu1: ArrayLike, cov1: ArrayLike, mu2: ArrayLike, cov2: ArrayLike) -> float:
    r"""Fréchet (W2²) distance of Gaussians: ``|mu1-mu2|^2 + tr(C1 + C2 - 2 (C1^½ C2 C1^½)^½)`` (the FID formula).

    ``tr (C1^½ C2 C1^½)^½`` equals ``tr (C1 C2)^½`` (Heusel et al. 2017) and the nuclear norm of ``A1^T A2`` for
    factors ``Ci = Ai Ai^T`` (from the eigendecompositions, eigenvalues at round-off level dropped); it is computed
    from those singular values, so it stays real, and a singular covariance (fewer samples than dimensions) adds no
    ~eps^½ per null direction.

    Shapes: ``mu1``, ``mu2`` (d,), ``cov1``, ``cov2`` (d, d) (scalars for d = 1); returns a float >= 0 in
    squared data units. ValueError on a shape mismatch, non-finite entries, or a covariance that is not symmetric
    positive semi-definite beyond round-off (1e-8 of its largest entry; round-off is symmetrised and clipped);
    :class:`~symsched._validate.ArgumentTypeError` naming the argument for one that is not an array of real numbers
    (None, a string, a complex or boolean array).
    Source: Dowson & Landau 1982 (J. Multivariate Anal. 12);
    Heusel et al. 2017 (FID, arXiv 1706.08500).
    """
    m1, m2 = (np.atleast_1d(as_real_array(v, name)) for v, name in ((mu1, "mu1"), (mu2, "mu2")))
    C1, C2 = (np.atleast_2d(as_real_array(v, name)) for v, name in ((cov1, "cov1"), (cov2, "cov2")))
    d = m1.size
    if m1.ndim != 1 or d == 0:
        raise ValueError(f"mu1 must be a non-empty vector (shape (d,), or a scalar for d = 1); got shape {m1.shape}")
    if m2.shape != (d,) or C1.shape != (d, d) or C2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu1 {m1.shape}, cov1 {C1.shape}, mu2 {m2.shape}, cov2 {C2.shape}")
    for name, a in (("mu1", m1), ("cov1", C1), ("mu2", m2), ("cov2", C2)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite (found NaN or inf)")
    c = pow2_scale(np.sqrt(np.abs(C1)), np.sqrt(np.abs(C2)))  # the factors scale with the square root
    C1s, C2s = C1 / c / c, C2 / c / c
    _check_covariance(C1s, "cov1")
    _check_covariance(C2s, "cov2")
    return _scaled_frechet(m1, _factor(C1s) * c, m2, _factor(C2s) * c, "mu1, cov1, mu2, cov2")


def _scaled_frechet(m1: Array, A1: Array, m2: Array, A2: Array, names: str) -> float:
    """:func:`_frechet` of ``N(m1, A1 A1^T)`` and ``N(m2, A2 A2^T)`` with means and factors divided by a power of two
    ``c`` first (exact) and the distance multiplied by ``c^2`` after (homogeneous of degree 2: means beyond ~1e150
    or factors beyond ~1e50 overflowed in the products to inf - inf, a silent NaN); ValueError where the distance
    itself leaves float64, naming the arguments ``names``."""
    c = pow2_scale(m1, m2, A1, A2, within=1e50)
    with np.errstate(over="ignore"):
        fd = _frechet(m1 / c, A1 / c, m2 / c, A2 / c) * c * c
    if not math.isfinite(fd):
        raise ValueError(f"{names}: the Fréchet distance of these Gaussians exceeds the float64 range (means or "
                         "covariances of order 1e154 / 1e308); rescale them")
    return fd


def _check_covariance(C: Array, name: str) -> None:
    """ValueError unless ``C`` is symmetric positive semi-definite up to round-off (1e-8 of its largest entry)."""
    scale = float(np.max(np.abs(C)))
    if scale == 0.0:
        return
    tol = 1e-8 * scale
    if np.max(np.abs(C - C.T)) > tol:
        raise ValueError(f"{name} must be a symmetric covariance matrix (largest asymmetry "
                         f"{float(np.max(np.abs(C - C.T))):.3g} of entries up to {scale:.3g})")
    lowest = float(np.linalg.eigvalsh(0.5 * (C + C.T))[0])
    if lowest < -tol:
        raise ValueError(f"{name} must be positive semi-definite (a covariance); its smallest eigenvalue is "
                         f"{lowest:.3g}")


def _factor(C: Array) -> Array:
    """A (d, r) factor ``A`` with ``A A^T = C`` (symmetric positive semi-definite) from its eigendecomposition, the
    eigenvalues at round-off level (at most ``d eps`` of the largest, or negative) dropped: kept, their square roots
    (~ eps^½ each) would add up over the null space of a singular covariance."""
    w, V = np.linalg.eigh(0.5 * (C + C.T))
    keep = w > max(float(w[-1]), 0.0) * C.shape[0] * np.finfo(np.float64).eps
    return V[:, keep] * np.sqrt(w[keep])


def _frechet(m1: Array, A1: Array, m2: Array, A2: Array) -> float:
    """``|m1 - m2|^2 + |A1|_F^2 + |A2|_F^2 - 2 |A1^T A2|_*``: the nuclear norm of ``A1^T A2`` is
    ``tr (C1^½ C2 C1^½)^½`` for ``Ci = Ai Ai^T`` (same non-zero singular values), computed from singular values
    that round-off leaves at ~eps, where the square roots of the eigenvalues of ``C1^½ C2 C1^½`` were ~eps^½ each on
    its null space (17 % low with 3 samples of 60 values)."""
    nuclear = float(np.sum(np.linalg.svd(A1.T @ A2, compute_uv=False))) if A1.size and A2.size else 0.0
    return max(float(np.sum((m1 - m2) ** 2) + np.sum(A1 * A1) + np.sum(A2 * A2) - 2.0 * nuclear), 0.0)


def _moments(X: Array, name: str) -> tuple[Array, Array]:
    """Mean and a factor ``A`` of the sample covariance (``A A^T = np.cov``): the centred samples over
    ``(n - 1)^½`` (d, n) when n <= d (exact, and no d x d matrix), else :func:`_factor` of ``np.cov`` (computed
    on the samples divided by a power of two); ValueError naming ``name`` where they leave float64."""
    n, d = X.shape
    c = pow2_scale(X)
    Xs = X / c
    mu = Xs.mean(axis=0)
    A = (Xs - mu).T / math.sqrt(n - 1) if n <= d else _factor(np.atleast_2d(np.cov(Xs, rowvar=False)))
    with np.errstate(over="ignore"):
        mu, A = mu * c, A * c
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(A))):
        raise ValueError(f"{name}: values too large for their covariance to be represented in float64 "
                         f"(largest |value| {float(np.max(np.abs(X))):.3g}); rescale them")
    return mu, A


@numpy_error_defaults
def frechet_distance(x: ArrayLike, y: ArrayLike, *, components: Optional[int] = None) -> float:
    r"""Fréchet distance of Gaussians fitted to x and y (mean, sample covariance), on pixels or PCA features.

    ``components``: an integer in [1, d] (d values per sample): project onto the top principal
    directions of ``y`` (centred covariance) first (``d``: all of them, the same distance as raw
    pixels); default None: raw pixels when a sample has at most 1024 values, else 256 components. When ``y`` has
    no more samples n than values d, its directions come from the n x n Gram matrix of the centred samples (no
    d x d covariance is formed) and there are at most as many as its covariance's rank (n - 1 for distinct samples:
    beyond it ``y`` has no variance to rank directions by); for identical samples, raw pixels.
    Anything else (0, negative, above d, non-integral, a string or a boolean) raises ValueError
    (:class:`~symsched._validate.ArgumentTypeError` for a wrong type).

    ``FD = |mu_x - mu_y|^2 + tr(C_x + C_y - 2 (C_x^½ C_y C_x^½)^½)`` with sample means and covariances
    (``np.cov``). ``x``, ``y``: (m, ...) and (n, ...) with the same number d of values per sample, m, n >= 2;
    returns a float >= 0 in squared data units. ValueError also for ``x``/``y`` not finite real arrays of at
    least 2 samples or of different d. Source: Heusel et al. 2017 (FID); Dowson & Landau 1982.
    """
    X, Y = _flat(x, "x"), _flat(y, "y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"x and y must have the same sample size (got {X.shape[1]} and {Y.shape[1]})")
    F = _features(Y, _components(components, Y.shape[1], "components"))
    Xf, Yf = (X, Y) if F is None else (X @ F, Y @ F)
    return _scaled_frechet(*_moments(Xf, "x"), *_moments(Yf, "y"), "x, y")


def _components(components: Any, d: int, name: str) -> Optional[int]:
    """The number of PCA components of the Fréchet distance: None (the default) or an integer in [1, d]."""
    if components is None:
        return None
    return as_int(components, name, 1, d,
                  rule=f"None or an integer in [1, {d}] (principal components of samples with {d} values)")


def _features(Y: Array, components: Optional[int]) -> Optional[Array]:
    """Top-``components`` principal directions of ``Y`` (validated by :func:`_components`); None: raw pixels."""
    d = Y.shape[1]
    if components is None:
        components = 0 if d <= 1024 else 256
    k = int(components)
    if k == 0 or k >= d:
        return None
    n = Y.shape[0]
    if n > d:  # (eigenvectors do not depend on the scale: a power of two keeps the covariance in range)
        w, V = np.linalg.eigh(np.atleast_2d(np.cov(Y / pow2_scale(Y), rowvar=False)))
        return np.ascontiguousarray(V[:, ::-1][:, :k])
    # fewer samples than values: the directions of non-zero variance from the n x n Gram matrix of the centred
    # samples (a d x d covariance of 64 x 64 x 3 images took a minute, of 256 x 256 x 3 ones 288 GiB)
    Yc = Y / pow2_scale(Y)  # (eigenvectors do not depend on the scale)
    Yc = Yc - Yc.mean(axis=0)
    w, U = np.linalg.eigh(Yc @ Yc.T)
    w, U = w[::-1], U[:, ::-1]
    r = min(k, int(np.count_nonzero(w > max(float(w[0]), 0.0) * n * np.finfo(np.float64).eps)))
    if r == 0:  # identical reference samples: no direction to rank
        return None
    V, _ = np.linalg.qr((Yc.T @ U[:, :r]) / np.sqrt(w[:r]))  # (orthonormal again where round-off in w bent them)
    return np.ascontiguousarray(V)


# --------------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------------
class _Reference:
    """What every comparison against one reference set reuses: spectrum, kernel sums, moments, projections."""

    def __init__(self, reference: ArrayLike, *, basis: Optional[ArrayLike], channel_axis: Optional[int],
                 bandwidths: Any, scales: Sequence[float], n_projections: int, fd_components: Optional[int],
                 seed: int, metrics: Sequence[str]) -> None:
        ref = _as_samples(reference, "reference")
        fd_components = _components(fd_components, int(np.prod(ref.shape[1:])), "fd_components")
        self.shape = ref.shape[1:]
        self.n = ref.shape[0]
        self.basis, self.channel_axis, self.metrics = basis, channel_axis, tuple(metrics)
        self.Y = ref.reshape(self.n, -1)
        self.psd, self.unit, self.e = _measured_scaled(ref, basis, channel_axis, "reference")
        # every metric's options are checked whatever metrics are requested, once (a generator is read once)
        scales = _positive_numbers(scales, "scales")
        bandwidths = None if bandwidths is None else _positive_numbers(bandwidths, "bandwidths")
        if "mmd2" in metrics:
            _mmd_size(self.n, "reference")
        self.h = _bandwidths(bandwidths, scales, self.Y, "reference") if "mmd2" in metrics else np.zeros(0)
        self.kyy = _kernel_sums(self.Y, None, self.h) / (self.n * (self.n - 1)) if "mmd2" in metrics else None
        n_projections, seed = _n_projections(n_projections), _metric_seed(seed)  # (checked even where unused)
        self.P = self.Yp = self.F = self.fd_ref = None  # (each only where a requested metric needs it)
        if "sliced_w2" in metrics:
            self.P = _projections(self.Y.shape[1], n_projections, seed)
            self.Yp = np.sort(self.Y @ self.P, axis=0)
        if "fd" in metrics:
            self.F = _features(self.Y, fd_components)
            self.fd_ref = _moments(self.Y if self.F is None else self.Y @ self.F, "reference")

    def measure(self, samples: ArrayLike, name: str = "samples") -> tuple[dict[str, float], Array]:
        from . import kl_divergence, w2_distance

        x = _as_samples(samples, name, self.shape)
        if "mmd2" in self.metrics:
            _mmd_size(x.shape[0], name)
        X = x.reshape(x.shape[0], -1)
        psd, unit, e = _measured_scaled(x, self.basis, self.channel_axis, name)
        out: dict[str, float] = {}
        for m in self.metrics:
            if m == "spectral_kl":  # scale-free: at a common scale, where no mode of tiny samples flushes to 0
                ref_c, psd_c = _common_scale(self.unit, self.e, unit, e)
                with np.errstate(over="ignore"):
                    kl = float(kl_divergence(ref_c, psd_c))
                out[m] = _finite_metric(kl, m, f"{name}, reference", infinite=bool(
                    np.any((ref_c == 0) != (psd_c == 0))))  # a mode that is 0 in one spectrum only: KL = +inf
            elif m == "spectral_w2":
                out[m] = _finite_metric(float(w2_distance(psd, self.psd)), m, f"{name}, reference")
            elif m == "mmd2":
                out[m] = float(np.mean(_mmd_terms(X, self.Y, self.h, self.kyy)))
            elif m == "sliced_w2":  # ot.sliced_wasserstein_distance with the reference's projections sorted once
                Xp = np.sort(X @ self.P, axis=0)
                c = pow2_scale(Xp, self.Yp)  # homogeneous of degree 1, as sliced_w2
                w = _require_ot().wasserstein_1d(Xp / c, self.Yp / c, p=2, require_sort=False)
                out[m] = _finite_metric(c * float(np.sqrt(np.mean(w))), m, f"{name}, reference")
            elif m == "fd":  # the reference as the first Gaussian: its factor is computed once
                out[m] = _scaled_frechet(*self.fd_ref, *_moments(X if self.F is None else X @ self.F, name),
                                         f"{name}, reference")
        return out, psd


def _finite_metric(value: float, metric: str, names: str, infinite: bool = False) -> float:
    """``value`` of a metric of the finite sample sets ``names``, unless it overflowed float64 (ValueError);
    ``infinite``: +inf is the true value (KL of a mode that is 0 in one spectrum only)."""
    if math.isfinite(value) or (infinite and value == math.inf):
        return value
    raise ValueError(f"{names}: their {metric} exceeds the float64 range (their scales differ too much); rescale "
                     "the samples")


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "–" if math.isnan(x) else str(x)
    return f"{x:.4g}"


def _pm(mean: float, sd: float) -> str:
    return _fmt(mean) if math.isnan(sd) else f"{_fmt(mean)} ± {_fmt(sd)}"


def _sd(v: Array) -> float:
    return float(np.std(v, ddof=1)) if v.size > 1 else math.nan


@dataclass(frozen=True)
class Comparison:
    r"""Sample metrics of one set of samples (one array per seed) against a reference; lower is better.

    Attributes
    ----------
    values : dict
        Metric name (:data:`METRICS`) -> per-seed values, shape (n_seeds,).
    predicted : dict
        ``"spectral_kl"``, ``"spectral_w2"`` of the closed-form output spectrum to the data
        spectrum (empty without a schedule).
    measured_psd, reference_psd : ndarray
        Mean measured spectrum of the samples over seeds, and the reference's.
    predicted_psd : ndarray or None
        Closed-form output spectrum of the schedule.
    n_samples : tuple of int
        Samples per seed.
    n_reference : int
    bandwidths : tuple of float
        MMD kernel widths used.
    Source: :func:`compare` (Gretton et al. 2012, MMD; Heusel et al. 2017, FD; Bonneel et al. 2015, sliced W2).
    """

    values: dict[str, Array]
    predicted: dict[str, float]
    measured_psd: Array
    reference_psd: Array
    predicted_psd: Optional[Array]
    n_samples: tuple[int, ...]
    n_reference: int
    bandwidths: tuple[float, ...]

    @property
    def n_seeds(self) -> int:
        return len(self.n_samples)

    def mean(self, metric: str) -> float:
        """Mean of ``metric`` over seeds."""
        return float(np.mean(self.values[check_choice(metric, "metric", tuple(self.values))]))

    def sd(self, metric: str) -> float:
        """Seed-to-seed standard deviation of ``metric`` (ddof=1; NaN with one seed)."""
        return _sd(self.values[check_choice(metric, "metric", tuple(self.values))])

    def _cells(self) -> tuple[list[str], list[str]]:
        head, cells = [], []
        for m in self.values:
            if m in self.predicted:
                head.append(f"{METRIC_LABELS[m]} (predicted)")
                cells.append(_fmt(self.predicted[m]))
            head.append(METRIC_LABELS[m] + (" (measured)" if m in self.predicted else ""))
            cells.append(_pm(self.mean(m), self.sd(m)))
        return head, cells

    def to_markdown(self) -> str:
        """One-row Markdown table: each metric as mean ± seed-to-seed sd."""
        head, cells = self._cells()
        return md_table(head, [cells])

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready dict (:func:`symsched._io.json_ready`: non-finite floats as "inf"/"nan")."""
        from ._io import json_ready

        return json_ready(dict(values={k: v.tolist() for k, v in self.values.items()}, predicted=dict(self.predicted),
                               n_samples=list(self.n_samples), n_reference=self.n_reference,
                               bandwidths=list(self.bandwidths)))


@dataclass(frozen=True)
class PairedDifference:
    """``metric(a) - metric(b)`` seed by seed (same seeds): mean, sd, and the count of seeds where a < b.

    ``a``, ``b``: schedule names; ``metric``: one of :data:`METRICS`; ``values``: shape (n_seeds,), the paired
    differences (negative: ``a`` better). ``sd`` is the sample standard deviation (ddof 1). Made by
    :meth:`PairedComparison.difference`. Source: the paired design of seed-matched runs (common random numbers).
    """

    a: str
    b: str
    metric: str
    values: Array

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def sd(self) -> float:
        return _sd(self.values)

    @property
    def wins(self) -> int:
        """Seeds where ``a`` is strictly better (lower) than ``b``."""
        return int(np.sum(self.values < 0))

    def __str__(self) -> str:
        return f"{_pm(self.mean, self.sd)} ({self.wins}/{self.values.size})"


@dataclass(frozen=True)
class PairedComparison:
    """:class:`Comparison` per schedule, all run from the same seeds, and paired differences against ``baseline``.

    ``comparisons``: schedule name -> :class:`Comparison` (each metric an array of shape (n_seeds,));
    ``baseline``: the name differences are taken against. Made by :func:`compare_paired` and
    :func:`probe_schedules`. Source: as :func:`compare`.
    """

    comparisons: dict[str, Comparison]
    baseline: str

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(next(iter(self.comparisons.values())).values)

    def difference(self, a: str, metric: str, b: Optional[str] = None) -> PairedDifference:
        """``metric(a) - metric(b)`` per seed (``b`` defaults to the baseline); negative = ``a`` is better."""
        names = tuple(self.comparisons)
        a = check_choice(a, "a", names)
        b = check_choice(self.baseline if b is None else b, "b", names)
        check_choice(metric, "metric", self.metrics)
        va, vb = self.comparisons[a].values[metric], self.comparisons[b].values[metric]
        if va.size != vb.size:
            raise ValueError(f"{a!r} and {b!r} have different numbers of seeds ({va.size} and {vb.size})")
        return PairedDifference(a, b, metric, va - vb)

    def best(self, metric: str) -> str:
        """The schedule with the lowest mean ``metric``."""
        check_choice(metric, "metric", self.metrics)
        return min(self.comparisons, key=lambda k: self.comparisons[k].mean(metric))

    def to_markdown(self) -> str:
        """Two tables: every metric (mean ± sd over seeds, predicted next to measured spectral ones), and
        paired differences ``schedule - baseline`` (mean ± sd, and the number of seeds where the schedule is better)."""
        names = list(self.comparisons)
        head = None
        rows = []
        for n in names:
            h, cells = self.comparisons[n]._cells()
            head = head or ["schedule"] + h
            rows.append([n] + cells)
        out = md_table(head or ["schedule"], rows)
        others = [n for n in names if n != self.baseline]
        if others:
            dhead = ["schedule"] + [f"Δ{METRIC_LABELS[m]}" for m in self.metrics]
            drows = [[n] + [str(self.difference(n, m)) for m in self.metrics] for n in others]
            seeds = _count(self.comparisons[self.baseline].n_seeds, 'seed')
            out += (f"\nPaired differences `schedule − {self.baseline}` over {seeds} "
                    "(mean ± sd; in brackets, seeds where the schedule is better; positive = worse than "
                    f"{self.baseline}):\n\n" + md_table(dhead, drows))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready dict (:func:`symsched._io.json_ready`)."""
        from ._io import json_ready

        return json_ready(dict(baseline=self.baseline, comparisons={k: v.to_dict() for k, v in self.comparisons.items()}))


def _seed_sets(samples: Any, name: str) -> list[Any]:
    """A list or tuple of sample sets, one per seed (at most MAX_ENTRIES, as probe_schedules' seeds: each is scored
    by every metric), or one array of samples."""
    if isinstance(samples, (list, tuple)):
        if not samples:
            raise ValueError(f"{name} must hold at least one array of samples")
        return check_entries(samples, name, why="one array of samples per seed, each scored by every metric")
    return [samples]


def _check_metrics(metrics: Union[str, Iterable[str]]) -> tuple[str, ...]:
    """A sequence of distinct names from METRICS (at most MAX_ENTRIES read); a bare string is an
    :class:`ArgumentTypeError`, as every list-of-names argument (``names``, ``families``, ``schemes``)."""
    return tuple(as_choices(metrics, "metrics", METRICS))


def _check_unpredicted(alpha_bar: Any, spectrum: Any, sampler: str, eta: float, variance: str,
                       options: Optional[Mapping[str, Any]]) -> None:
    """ValueError naming them for the settings of the predicted spectral errors (``spectrum``, and the sampler
    settings away from their defaults) given without ``alpha_bar``: nothing is predicted then, so they would be
    ignored. (Checked after their own validation: a bad value is refused as such first.)"""
    if alpha_bar is not None:
        return
    given = [name for name, unset in (("spectrum", spectrum is None), ("sampler", sampler == "ddim"),
                                      ("eta", eta == 0.0), ("variance", variance == "posterior"),
                                      ("options", not options)) if not unset]
    if given:
        raise ValueError(f"{', '.join(given)}: only used for the predicted spectral errors, which need alpha_bar (the "
                         "schedule that produced the samples); without alpha_bar they would be ignored: pass "
                         "alpha_bar or omit them")


def _comparison(ref: _Reference, sets: list[Any], name: str,
                predicted: Optional[tuple[Array, dict[str, float]]]) -> Comparison:
    names = [f"{name}[{i}]" if len(sets) > 1 else name for i in range(len(sets))]
    return _scored_comparison(ref, [_Scored(ref, s, nm) for s, nm in zip(sets, names)], predicted)


def _model_spectrum(spectrum: Optional[ArrayLike], ref: _Reference) -> Array:
    from ._validate import as_spectrum

    if spectrum is None:
        return ref.psd
    S = as_spectrum(spectrum)
    if S.shape != ref.psd.shape:
        raise ValueError(f"spectrum and reference disagree: spectrum has shape {S.shape}, the reference's measured "
                         f"spectrum {ref.psd.shape} (reference must be (m, *spectrum.shape), the same data)")
    return S


def _reference(reference: Any, **kw: Any) -> _Reference:
    return reference if isinstance(reference, _Reference) else _Reference(reference, **kw)


@numpy_error_defaults
def compare(
    samples: Union[ArrayLike, Sequence[ArrayLike]],
    reference: ArrayLike,
    *,
    alpha_bar: Optional[ArrayLike] = None,
    spectrum: Optional[ArrayLike] = None,
    sampler: str = "ddim",
    eta: float = 0.0,
    variance: str = "posterior",
    options: Optional[Mapping[str, Any]] = None,
    metrics: Sequence[str] = METRICS,
    basis: Optional[ArrayLike] = None,
    channel_axis: Optional[int] = None,
    bandwidths: Union[float, Sequence[float], None] = None,
    scales: Sequence[float] = (0.5, 1.0, 2.0),
    n_projections: int = 128,
    fd_components: Optional[int] = None,
    seed: int = 0,
) -> Comparison:
    r"""Score samples against reference data: spectral KL/W2, MMD², sliced W2, Fréchet distance.

    * spectral KL/W2 (measured): ``KL(N(0,S_ref) || N(0,P_hat))`` and ``W2(P_hat, S_ref)`` of the
      :func:`measured_spectrum` ``P_hat`` of the samples and ``S_ref`` of the reference;
      predicted (when ``alpha_bar`` is given): the same distances between the closed-form output
      spectrum :func:`predicted_spectrum` of ``spectrum`` (default ``S_ref``) and ``spectrum``;
    * ``mmd2``: :func:`mmd2` with bandwidths ``median_bandwidth(reference) * scales`` (fixed by the
      reference, so comparable across sample sets);
    * ``sliced_w2``: :func:`sliced_w2` with ``n_projections`` directions from ``seed``;
    * ``fd``: :func:`frechet_distance` (pixels, or ``fd_components`` PCA features of the reference:
      None or an integer in [1, d], as ``components`` of :func:`frechet_distance`).

    Parameters
    ----------
    samples : array_like (n, *shape), or a list/tuple of such arrays (one per seed)
        At most ``MAX_ENTRIES`` = 100 seeds, as :func:`probe_schedules`' ``seeds``.
    reference : array_like, shape (m, *shape)
    alpha_bar, sampler, eta, variance, options
        The schedule and sampler that produced ``samples`` (for the predicted spectral errors; ``options``: the
        k-diffusion sampler's own, as in :func:`sample`). The sampler settings are checked as :func:`sample` checks
        them; without ``alpha_bar`` nothing is predicted, and a sampler setting away from its default (``sampler``
        not "ddim", ``eta`` not 0, ``variance`` not "posterior", ``options``) is a ValueError naming it.
    spectrum : array_like, optional
        Data spectrum of the Gaussian model (e.g. of the training set), in the coordinates of
        :func:`measured_spectrum`; default the reference's. Only with ``alpha_bar`` (a ValueError without it).
    metrics : sequence of str
        Subset of :data:`METRICS`, each named once (at most ``MAX_ENTRIES`` entries are read); a bare string is
        a TypeError (write ``["mmd2"]``).
    basis, channel_axis
        How spectra are measured (:func:`measured_spectrum`).
    bandwidths : float or sequence of float, optional
        RBF bandwidths of ``mmd2`` (data units); default ``median_bandwidth(reference) * scales``.
    scales : sequence of float
        Multiples of the reference's median bandwidth when ``bandwidths`` is None (default 0.5, 1, 2).
    n_projections : int
        Random directions of ``sliced_w2`` (default 128, at most ``MAX_PROJECTIONS``).
    fd_components : int, optional
        PCA features of the reference for ``fd`` (None: pixels when a sample has at most 1024 values, else 256
        components, as :func:`frechet_distance`).
    seed : int
        Seed of the sliced-W2 directions (the same for every sample set, so that they are comparable).

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        ``reference`` or a sample set not a finite real array of at least 2 samples, or a sample shape other than
        the reference's; an empty list of seeds, or more than MAX_ENTRIES; a metric not in :data:`METRICS`, named
        twice, or more than MAX_ENTRIES of them (TypeError when ``metrics`` is not a sequence of names, a bare
        string included); a ``spectrum`` of another shape than the measured one; bad ``alpha_bar``; bad sampler
        settings (an unknown ``sampler``, ``eta`` outside [0, 1], an unknown ``variance``, or an ``eta`` /
        ``variance`` the sampler does not take), with or without ``alpha_bar``; ``spectrum`` or a sampler setting
        away from its default without ``alpha_bar`` (it would be ignored); bad ``bandwidths``/``scales``/
        ``n_projections``/``fd_components``/``seed``, whichever metrics are requested; identical reference points; a
        measured spectrum or a metric beyond float64 (a spectral
        KL of +inf from a mode that is 0 in one spectrum only is its true value and returned).
    ImportError
        ``"sliced_w2"`` requested without POT.

    Source: Gretton et al. 2012 (MMD²), Bonneel et al. 2015 (sliced W2), Heusel et al. 2017 (FD);
    docs/model.md §6 (spectral KL/W2).
    """
    eta_v = _check_run(sampler, eta, variance)  # with or without alpha_bar: a setting given is never ignored
    options = _check_options(sampler, options)
    _check_unpredicted(alpha_bar, spectrum, sampler, eta_v, variance, options)
    ref = _reference(reference, basis=basis, channel_axis=channel_axis, bandwidths=bandwidths, scales=scales,
                     n_projections=n_projections, fd_components=fd_components, seed=seed,
                     metrics=_check_metrics(metrics))
    S = _model_spectrum(spectrum, ref)
    return _comparison(ref, _seed_sets(samples, "samples"), "samples",
                       _predicted(S, alpha_bar, sampler, eta, variance, options))


@numpy_error_defaults
def compare_paired(
    samples: Mapping[str, Union[ArrayLike, Sequence[ArrayLike]]],
    reference: ArrayLike,
    *,
    alpha_bar: Optional[Mapping[str, ArrayLike]] = None,
    baseline: Optional[str] = None,
    spectrum: Optional[ArrayLike] = None,
    sampler: str = "ddim",
    eta: float = 0.0,
    variance: str = "posterior",
    options: Optional[Mapping[str, Any]] = None,
    metrics: Sequence[str] = METRICS,
    basis: Optional[ArrayLike] = None,
    channel_axis: Optional[int] = None,
    bandwidths: Union[float, Sequence[float], None] = None,
    scales: Sequence[float] = (0.5, 1.0, 2.0),
    n_projections: int = 128,
    fd_components: Optional[int] = None,
    seed: int = 0,
) -> PairedComparison:
    r""":func:`compare` for several schedules whose samples were drawn from the same seeds.

    ``samples[name]`` holds one array per seed, seed ``i`` the same for every schedule (e.g.
    ``sample(..., seed=i)``), so ``metric(name) - metric(baseline)`` per seed is a paired
    difference (:meth:`PairedComparison.difference`). One reference, one set of kernel widths and
    one set of projections serve every schedule. Per seed i: ``d_i = metric(samples[name][i]) -
    metric(samples[baseline][i])``. Shapes: each array (n, *shape), ``reference`` (m, *shape).

    Parameters
    ----------
    samples : mapping name -> array or list of arrays (one per seed)
    reference : array_like
    alpha_bar : mapping name -> schedule, optional
        For the predicted spectral errors: one schedule per name of ``samples`` (other or missing names are refused).
    baseline : str, optional
        Schedule the differences are taken against (default: the first).
    spectrum, sampler, eta, variance, options
        As in :func:`compare`, for every schedule (one sampler for all); without ``alpha_bar`` nothing is predicted,
        and ``spectrum`` or a sampler setting away from its default is a ValueError naming it.
    metrics, basis, channel_axis, bandwidths, scales, n_projections, fd_components, seed
        As in :func:`compare` (metrics to compute, how spectra are measured, MMD² kernel widths, sliced-W2
        directions, FD features); one set serves every schedule.

    Returns
    -------
    PairedComparison

    Raises
    ------
    ValueError
        ``samples`` not a non-empty mapping (:class:`~symsched._validate.ArgumentTypeError` for a key of ``samples``
        or ``alpha_bar`` that is not a string); ``baseline`` not one of its names; ``alpha_bar`` naming other
        schedules than ``samples``; different numbers of seeds per schedule; more than MAX_ENTRIES seeds; and
        everything :func:`compare` refuses.
    ImportError
        ``"sliced_w2"`` requested without POT.

    Source: as :func:`compare`.
    """
    if not isinstance(samples, Mapping) or not samples:
        raise ValueError("samples must be a non-empty mapping schedule name -> samples (one array per seed)")
    if alpha_bar is not None and not isinstance(alpha_bar, Mapping):
        raise ArgumentTypeError("alpha_bar must be a mapping schedule name -> alpha_bar (the schedules of samples), "
                                f"or None (got {type(alpha_bar).__name__})")
    check_names(samples, "samples")
    if alpha_bar is not None:
        check_names(alpha_bar, "alpha_bar")
    base = next(iter(samples)) if baseline is None else check_choice(baseline, "baseline", tuple(samples))
    eta_v = _check_run(sampler, eta, variance)  # with or without alpha_bar, as compare()
    options = _check_options(sampler, options)
    _check_unpredicted(alpha_bar, spectrum, sampler, eta_v, variance, options)
    ref = _reference(reference, basis=basis, channel_axis=channel_axis, bandwidths=bandwidths, scales=scales,
                     n_projections=n_projections, fd_components=fd_components, seed=seed,
                     metrics=_check_metrics(metrics))
    S = _model_spectrum(spectrum, ref)
    sets = {k: _seed_sets(v, f"samples[{k!r}]") for k, v in samples.items()}
    counts = {len(v) for v in sets.values()}
    if len(counts) != 1:
        raise ValueError(f"every schedule needs the same number of seeds for paired differences (got {sorted(counts)})")
    if alpha_bar is not None and set(alpha_bar) != set(samples):
        unknown, missing = sorted(set(alpha_bar) - set(samples), key=str), sorted(set(samples) - set(alpha_bar), key=str)
        raise ValueError("alpha_bar must name the schedules of samples, each once"
                         + (f"; not among samples: {unknown}" if unknown else "")
                         + (f"; missing: {missing}" if missing else ""))
    out = {}
    for k, v in sets.items():
        ab = None if alpha_bar is None else alpha_bar[k]
        out[k] = _comparison(ref, v, f"samples[{k!r}]", _predicted(S, ab, sampler, eta, variance, options))
    return PairedComparison(out, base)


# --------------------------------------------------------------------------------------------
# probing a set of schedules
# --------------------------------------------------------------------------------------------
#: the schedules ``symsched probe`` compares by default
DEFAULT_SCHEDULES: tuple[str, ...] = (
    "optimised-w2", "optimised-kl", "linear-trailing", "linear-leading", "karras", "kl_optimal",
)
#: diffusers' timestep spacings on the model's own grid (:func:`default_schedules`)
GRID_SCHEDULES: tuple[str, ...] = ("grid-leading", "grid-trailing", "grid-linspace")


def ddim_scheduler_note(name: str, steps: int, num_train_timesteps: int) -> Optional[str]:
    """A note when diffusers' ``DDIMScheduler`` does not run the ``grid-*`` schedule ``name`` as probed; else None.

    The probe runs a ``grid-*`` spacing as a schedule (each step to the next of its timesteps), as DDPM-, Euler- and
    DPM-Solver-type schedulers do. ``DDIMScheduler.step`` steps from ``t`` to ``t - T // K`` instead, which is the
    next timestep for ``"leading"`` and for ``"trailing"`` with ``K`` dividing ``T``, but not for ``"linspace"``:
    there the model is called at a level the sample is not at (:func:`symsched.export.from_diffusers` refuses it).
    Source: diffusers ``scheduling_ddim.py`` (``DDIMScheduler.step``: ``prev_timestep``).
    """
    from .schedules import timesteps

    if name not in GRID_SCHEDULES:
        return None
    spacing, T, K = name.split("-", 1)[1], int(num_train_timesteps), int(steps)
    ts = np.asarray(timesteps(K, spacing=spacing, num_train_timesteps=T), dtype=np.int64)
    if K < 2 or np.all(-np.diff(ts) == T // K):
        return None
    return (f"note: {name} is probed as a schedule of its {K} timesteps (each step to the next); diffusers' "
            f"DDIMScheduler with timestep_spacing={spacing!r} runs another one: it steps from each timestep by "
            f"T//K = {T // K} (T = {T}), to a level the model is not next called at (export.from_diffusers "
            "refuses it as not a schedule); DDPM-, Euler- and DPM-Solver-type schedulers run it as probed")


#: endpoints of the optimised schedules of :func:`default_schedules` (``symsched probe``): both free on
#: the model's grid. With ``init="white"`` the Gaussian model itself decides where sampling starts (the
#: white-noise start mismatch at a level is part of the objective), as linear-leading starts at t = 801
#: for K = 5; pinning the first level at t = 999 made the W2 optimum lose to linear-leading on MMD² on
#: ``builtin:patches16`` (README, "Does it help a real model?").
PROBE_ENDPOINTS: tuple[None, None] = (None, None)


def default_schedules(
    spectrum: ArrayLike,
    steps: int,
    *,
    names: Sequence[str] = DEFAULT_SCHEDULES,
    grid: Optional[ArrayLike] = None,
    sampler: str = "ddim",
    eta: float = 0.0,
    variance: str = "posterior",
    seed: int = 0,
    endpoints: Optional[tuple[Optional[float], Optional[float]]] = PROBE_ENDPOINTS,
    options: Optional[Mapping[str, Any]] = None,
) -> dict[str, Array]:
    r"""Schedules to probe, on a model's training grid: optimised ones and standard ones.

    ``"optimised-<div>"`` (``div`` in kl, kl-reverse, w2) is :func:`symsched.optimize_schedule`
    of ``spectrum`` with that divergence, ``init="white"`` (samplers start from white noise) and
    ``endpoints`` (default :data:`PROBE_ENDPOINTS`: first and last level free, on ``grid``; pass
    ``None`` for the optimiser's default, first level pinned at the grid's noisiest level);
    ``"optimised"`` uses the default divergence :data:`symsched.optimize.DEFAULT_DIVERGENCE`. An optimised
    schedule that scores worse on its own divergence than another optimised one is rerun from it (``warm_starts``),
    so that none does.
    ``"grid-leading"``, ``"grid-trailing"``, ``"grid-linspace"`` are diffusers' timestep spacings applied to
    ``grid`` itself, run as schedules (each step to the next timestep; ``steps_offset=0``, a config's
    ``steps_offset`` is not read): what ``DDIMScheduler`` runs for a model with these ``alphas_cumprod`` for
    ``"leading"`` and for ``"trailing"`` with ``K`` dividing the grid's size, not otherwise
    (:func:`ddim_scheduler_note`). Other names are
    :func:`symsched.schedules.standard_schedule` on ``grid`` (their levels snapped to it: ``"linear-trailing"``
    is the linear-beta schedule's levels, which on another model's grid may collide at its noisiest timestep).
    ``sampler``, ``eta``, ``variance`` and, for a k-diffusion sampler (:data:`LIBRARY_SAMPLERS`, or ``euler`` /
    ``heun`` with churn), its ``options`` (as in :func:`sample`; checked) are the settings the optimised
    schedules are optimised for.

    Optimised: ``argmin_levels D(P(S; levels), S)`` over levels on ``grid`` (docs/model.md §8). ``spectrum``:
    any shape (its modes); ``grid``: (T,), training order (default :func:`symsched.optimize.default_grid`).

    Returns
    -------
    dict name -> alpha_bar (K,), noisiest first, in the order of ``names``

    Raises
    ------
    ValueError
        ``steps`` not a positive integer; ``seed`` not an integer >= 0 (whether or not a name optimises); a
        bare string as ``names`` (TypeError: write ``("karras",)``); a name that is neither ``"optimised"``,
        ``"optimised-<div>"`` nor a
        standard schedule, a repeated name, no name or more than MAX_ENTRIES (``names`` is not read further: an
        endless iterable is refused); or what :func:`symsched.optimize_schedule` / ``standard_schedule`` refuse (a bad
        spectrum, grid, divergence or sampler setting; levels that collide on a coarse grid).
    """
    from ._validate import as_spectrum
    from .api import DIVERGENCES
    from .optimize import _check_endpoints, _check_levels_args, default_grid
    from .schedules import STANDARD_SCHEDULES, from_grid, standard_schedule, timesteps

    K = as_positive_int(steps, "steps")
    eta = _check_run(sampler, eta, variance)  # as sample() checks them: a setting given is never dropped unchecked
    seed = as_int(seed, "seed", 0, rule="an integer >= 0")  # as optimize_schedule's, whether a name optimises or not
    if not is_sequence(names):
        raise ArgumentTypeError(f"names must be a sequence of schedule names, e.g. ('optimised-w2', 'karras') "
                                f"(got {names!r})")
    # every name is checked before any work (audit of 5 December: 'optimised-W2' was blamed on divergence, and only
    # once the names before it had been optimised); at most MAX_ENTRIES are read, a repeat is refused (one entry
    # per name in the result: it would be dropped silently)
    optimised = ("optimised",) + tuple(f"optimised-{d}" for d in DIVERGENCES)
    names = as_choices(names, "names", optimised + GRID_SCHEDULES + STANDARD_SCHEDULES)
    from .schedules import _as_grid

    g = default_grid() if grid is None else _as_grid(grid, "grid")
    # checked on entry whatever the names (review of 4 December: endpoints="free" passed unless a name optimised)
    # (the optimiser's grid rules only when a name optimises: a grid a standard schedule takes stays accepted)
    as_spectrum(spectrum)
    if any(n in optimised for n in names):
        _check_levels_args(K, endpoints, g, sampler, eta if sampler == "ddim" else None)
    else:
        _check_endpoints(endpoints, K, g, sampler)
    out: dict[str, Array] = {}
    opt_kw = dict(sampler=sampler, variance=variance, grid=g, seed=seed, init="white", endpoints=endpoints)
    if sampler == "ddim":
        opt_kw["eta"] = eta
    options = _check_options(sampler, options)  # its own settings only: never optimize_schedule's arguments
    opt_kw.update(options or {})  # a k-diffusion sampler's settings (eta, s_noise, order, ...), optimised for
    found = _optimise_each(spectrum, K, [n for n in names if n in optimised], opt_kw)
    for name in names:
        if name in optimised:
            out[name] = found[name]
        elif name in GRID_SCHEDULES:
            out[name] = from_grid(g, timesteps(K, spacing=name.split("-", 1)[1], num_train_timesteps=g.size))
        else:
            out[name] = standard_schedule(name, K, grid=g)
    return out


def _optimise_each(spectrum: ArrayLike, K: int, names: Sequence[str], opt_kw: dict[str, Any]) -> dict[str, Array]:
    """``optimize_schedule`` for every ``"optimised[-<div>]"`` name; one that scores worse on its own divergence than
    another's schedule is rerun from those (``warm_starts``: on the grid the result is never worse than a warm start)
    until none does (break-test of 7 December: on nearly white spectra ``optimised-kl`` lost on KL to
    ``optimised-w2``, or the reverse, each search having settled in one of several near-zero basins)."""
    from .optimize import DEFAULT_DIVERGENCE, optimize_schedule, schedule_metrics

    divs = {n: n.split("-", 1)[1] if "-" in n else DEFAULT_DIVERGENCE for n in names}
    metric_kw = {k: v for k, v in opt_kw.items() if k not in ("grid", "seed", "endpoints")}

    def run(name: str, warm: Optional[list[Array]] = None) -> Array:
        return np.asarray(optimize_schedule(spectrum, K, **opt_kw, divergence=divs[name], warm_starts=warm).alpha_bar,
                          dtype=np.float64)

    out = {name: run(name) for name in names}
    for _ in range(2 * len(names)):  # (each rerun lowers its own objective: this ends; the bound is a guard)
        scores = {n: schedule_metrics(spectrum, ab, **metric_kw) for n, ab in out.items()}  # (w2 unsquared: ordered)
        beaten = {n: [out[m] for m in names if scores[m][_METRIC[divs[n]]] < scores[n][_METRIC[divs[n]]] * (1 - 1e-12)]
                  for n in names}
        if not any(beaten.values()):
            break
        for name, better in beaten.items():
            if better:
                out[name] = run(name, better)
    return out


#: :func:`symsched.optimize.schedule_metrics`' key of each divergence
_METRIC = {"kl": "kl", "kl-reverse": "kl_reverse", "w2": "w2"}


@dataclass(frozen=True)
class ProbeResult:
    """What :func:`probe_schedules` measured: the paired comparison, the schedules, and a few samples per schedule.

    ``schedules``: name -> levels (K_k,); ``examples``: name -> (n_examples, *shape) samples of the first seed;
    ``reference_examples``: (n_examples, *shape); ``timesteps``: name -> grid timesteps (when a grid was given).
    Source: as :func:`probe_schedules`.
    """

    comparison: PairedComparison
    schedules: dict[str, Array]
    examples: dict[str, Array]
    reference_examples: Array
    sampler: str
    seeds: tuple[int, ...]
    n_samples: int
    timesteps: dict[str, Optional[list[int]]] = field(default_factory=dict)
    #: wall-clock seconds spent sampling (denoiser and update loop) and scoring (metrics)
    seconds: dict[str, float] = field(default_factory=dict)
    #: the colour axis of one sample the spectra were measured with (colour eigen-modes, last axis), or None (an FFT
    #: over every axis of a sample)
    channel_axis: Optional[int] = None

    def to_markdown(self) -> str:
        """The Markdown tables of :attr:`comparison` (:meth:`PairedComparison.to_markdown`): every metric per schedule
        (mean ± sd over seeds), then the paired differences against the baseline when there are other schedules."""
        return self.comparison.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready dict (:func:`symsched._io.json_ready`: a zero-SNR level stays 0.0; non-finite floats as strings)."""
        from ._io import json_ready

        return json_ready(dict(sampler=self.sampler, seeds=list(self.seeds), n_samples=self.n_samples,
                               schedules={k: v.tolist() for k, v in self.schedules.items()},
                               timesteps=dict(self.timesteps), seconds=dict(self.seconds), **self.comparison.to_dict()))


@numpy_error_defaults
def probe_schedules(
    denoiser: Callable[[Array, float], Any],
    schedules: Mapping[str, ArrayLike],
    reference: ArrayLike,
    *,
    n_samples: int = 2000,
    seeds: Sequence[int] = (0, 1, 2),
    sampler: str = "ddim",
    eta: float = 0.0,
    variance: str = "posterior",
    prediction: Optional[str] = None,
    shape: Optional[Sequence[int]] = None,
    spectrum: Optional[ArrayLike] = None,
    baseline: Optional[str] = None,
    metrics: Sequence[str] = METRICS,
    channel_axis: Optional[int] = None,
    grid: Optional[ArrayLike] = None,
    batch_size: Optional[int] = None,
    n_examples: int = 8,
    progress: Any = None,
    options: Optional[Mapping[str, Any]] = None,
) -> ProbeResult:
    r"""Sample every schedule from the same seeds with ``denoiser`` and compare with ``reference``.

    For each seed and schedule: :func:`sample` (``n_samples``), then the metrics of
    :func:`compare` against ``reference`` (samples are scored and dropped, so memory stays at one
    set). Returns the :class:`PairedComparison` (baseline: ``baseline`` or the first schedule),
    the schedules, their grid timesteps (when ``grid`` is given) and ``n_examples`` samples per
    schedule from the first seed. ``sampler``: symsched's loops (:data:`SAMPLERS`) or k-diffusion's own
    (:data:`LIBRARY_SAMPLERS`, with their ``options`` as in :func:`sample`).

    Per schedule k and seed s: ``metrics(sample(denoiser, alpha_bar_k, seed=s), reference)``. Shapes:
    ``schedules`` name -> (K_k,); ``reference`` (m, *shape) with m >= 2; each run (n_samples, *shape);
    ``examples[k]`` (min(n_examples, n_samples), *shape). Raises ValueError for an empty or non-mapping
    ``schedules`` (:class:`~symsched._validate.ArgumentTypeError` for a name that is not a string), bad levels,
    ``n_samples`` not in [2, MAX_SAMPLES] (with ``"mmd2"`` among the metrics, or a reference of, more than
    MAX_MMD_SAMPLES = 20,000: see :func:`mmd2`; refused before anything is sampled),
    ``n_examples`` not a positive integer, a bad ``grid``, bad ``seeds`` (not a non-empty sequence of
    at most MAX_ENTRIES = 100 distinct integers >= 0), an unknown sampler, baseline or metric, a bad reference,
    ``shape`` or ``batch_size``, a ``shape`` other than the reference's sample shape (its default), a shape other
    than the one the denoiser declares (all before anything is sampled), and for what
    :func:`sample` refuses (e.g. a denoiser output of the wrong shape or with NaN); ImportError for
    ``"sliced_w2"`` without POT. Source: as :func:`compare`; docs/model.md §5 (the predicted spectra).
    """
    from tqdm.auto import tqdm

    if not isinstance(schedules, Mapping) or not schedules:
        raise ValueError("schedules must be a non-empty mapping name -> alpha_bar")
    check_names(schedules, "schedules")
    seeds_t = _seeds(seeds)
    scheds = {k: as_levels(v, f"schedules[{k!r}]") for k, v in schedules.items()}
    n = as_positive_int(n_samples, "n_samples", MAX_SAMPLES, limit="MAX_SAMPLES")
    if n < 2:
        raise ValueError(f"n_samples must be at least 2: every metric compares a set of samples (got {n})")
    if "mmd2" in _check_metrics(metrics):  # refused before anything is sampled
        _mmd_size(n, "n_samples")
    n_examples = as_positive_int(n_examples, "n_examples")
    _check_run(sampler, eta, variance)
    checked = _check_options(sampler, options)
    pred = _denoiser_prediction(denoiser, prediction)
    for k, ab in scheds.items():  # every schedule checked before any is sampled
        _check_start(ab, sampler, pred, f"schedules[{k!r}]", checked)
        if grid is not None:  # (the grid is only used for the timesteps reported at the end)
            grid_timestep(float(ab[0]), grid)
    base = baseline if baseline is not None else next(iter(scheds))
    check_choice(base, "baseline", tuple(scheds))
    ref = _Reference(reference, basis=None, channel_axis=channel_axis, bandwidths=None, scales=(0.5, 1.0, 2.0),
                     n_projections=128, fd_components=None, seed=0, metrics=_check_metrics(metrics))
    S = _model_spectrum(spectrum, ref)
    shp = ref.shape if shape is None else as_shape(shape)
    _check_denoiser_shape(denoiser, shp, "reference samples (the default shape) must have" if shape is None
                          else "shape must be")
    if shp != ref.shape:  # (audit of 6 December: refused only after the first schedule was sampled, naming it)
        raise ValueError(f"shape must be the reference's sample shape {ref.shape}: every run is compared with it "
                         f"(got {shp})")
    size = int(np.prod(shp))
    batch = max(1, min(n, (1 << 20) // size)) if batch_size is None else as_positive_int(batch_size, "batch_size")
    total = sum(len(seeds_t) * (-(-n // batch) * ab.size + 1) for ab in scheds.values())
    disable = (not bool(getattr(sys.stderr, "isatty", lambda: False)()) if progress is None
               else not as_bool(progress, "progress"))
    bar = tqdm(total=total, desc="symsched probe", unit="step", disable=disable)
    sets: dict[str, list[_Scored]] = {k: [] for k in scheds}
    secs = {"sampling": 0.0, "metrics": 0.0}
    examples: dict[str, Array] = {}
    try:
        for s in seeds_t:
            for k, ab in scheds.items():
                bar.set_postfix_str(f"{k}, seed {s}")
                t0 = time.perf_counter()
                x = sample(denoiser, ab, shape=shp, n_samples=n, sampler=sampler, eta=eta, variance=variance,
                           prediction=prediction, seed=s, batch_size=batch, progress=bar, options=options)
                if k not in examples:
                    examples[k] = x[:n_examples].copy()
                t1 = time.perf_counter()
                sets[k].append(_Scored(ref, x, f"{k}, seed {s}"))
                secs["sampling"] += t1 - t0
                secs["metrics"] += time.perf_counter() - t1
                bar.update(1)
    finally:
        bar.close()
    comps = {}
    for k, ab in scheds.items():
        comps[k] = _scored_comparison(ref, sets[k], _predicted(S, ab, sampler, eta, variance, options))
    ts: dict[str, Optional[list[int]]] = {}
    if grid is not None:
        ts = {k: [int(grid_timestep(float(a), grid)) for a in ab] for k, ab in scheds.items()}
    rng = np.random.default_rng(0)
    ref_examples = np.asarray(reference, dtype=np.float64)[rng.choice(ref.n, min(n_examples, ref.n), replace=False)]
    return ProbeResult(PairedComparison(comps, base), scheds, examples, ref_examples, sampler, seeds_t, n, ts, secs,
                       channel_axis)


def _seeds(seeds: Any) -> tuple[int, ...]:
    if not is_sequence(seeds):
        raise ValueError(f"seeds must be a sequence of integer seeds, e.g. (0, 1, 2) (got {seeds!r})")
    out = []
    for s in check_entries(seeds, "seeds"):  # (each seed is a run of every schedule: MAX_ENTRIES of them at most)
        out.append(as_int(s, "seeds", 0))  # (ArgumentTypeError for a float, 1.0 too; ValueError below 0)
    if not out:
        raise ValueError("seeds must hold at least one seed")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct (got {list(out)}): a repeated seed repeats its samples, so the "
                         "seed-to-seed spread would be understated")
    return tuple(out)


class _Scored:
    """Metrics of one sample set, computed at once so the samples themselves can be dropped."""

    def __init__(self, ref: _Reference, x: Array, name: str) -> None:
        self.values, self.psd = ref.measure(x, name)
        self.n = int(x.shape[0])


def _scored_comparison(ref: _Reference, scored: list[_Scored],
                       predicted: Optional[tuple[Array, dict[str, float]]]) -> Comparison:
    P, values = (None, {}) if predicted is None else predicted
    pred = {m: v for m, v in values.items() if m in ref.metrics}
    vals = {m: np.array([s.values[m] for s in scored]) for m in ref.metrics}
    return Comparison(vals, pred, np.mean([s.psd for s in scored], axis=0), ref.psd, P,
                      tuple(s.n for s in scored), ref.n, tuple(float(h) for h in ref.h))


# --------------------------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------------------------
def _image(x: Array, channel_axis: Optional[int]) -> Array:
    """One sample as an image in [0, 1] (data assumed in [-1, 1]): (h, w) grey or (h, w, 3) RGB.

    Three channels are RGB; one channel, or the first of any other number (a latent's 4), is grey; leading axes
    beyond an image show their first entry."""
    a = np.asarray(x, dtype=np.float64)
    rgb = False
    if channel_axis is not None:
        a = np.moveaxis(a, channel_axis, -1)
        rgb = a.shape[-1] == 3 and a.ndim >= 3
        if not rgb:
            a = a[..., 0]
    while a.ndim > 2 + rgb:
        a = a[0]
    if a.ndim == 1:
        a = a[None, :]
    return np.clip(0.5 * (a + 1.0), 0.0, 1.0)


def _mosaic(rows: list[list[Array]], n_cols: int, gap: int = 1) -> Array:
    """Images (each (h, w) grey or (h, w, 3) RGB in [0, 1]) tiled row by row with white gaps; empty cells white."""
    first = rows[0][0]
    h, w = first.shape[:2]
    rgb = any(img.ndim == 3 for r in rows for img in r)
    shape = (len(rows) * (h + gap) - gap, n_cols * (w + gap) - gap) + ((3,) if rgb else ())
    out = np.ones(shape)
    for i, r in enumerate(rows):
        for j, img in enumerate(r[:n_cols]):
            if rgb and img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=-1)
            out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = img
    return out


def plot_probe(result: ProbeResult, path: Any = None, *, channel_axis: Optional[int] = None) -> Any:
    """Figure: a row of samples per schedule (first seed, same initial noise) and the reference; radial PSDs.

    Right panel: the radially averaged measured spectrum of each schedule (markers), its closed-form
    prediction (thin lines, same colour) and the reference's measured spectrum (thick black line). Returns the
    matplotlib figure; writes a PNG atomically when ``path`` is given (missing folders on it are created, as
    :func:`symsched.plots.save_figure` and every writer of symsched do).

    Images show ``clip((x + 1)/2, 0, 1)`` (data assumed in [-1, 1]); the colour axis is ``channel_axis``, by
    default the probe's own (``result.channel_axis``), else ``(C, H, W)`` samples with C in {1, 3} are read
    channels-first; three channels are RGB, one channel or the first
    of any other number (a latent's 4) grey. Radial PSDs: :func:`symsched.spectra.radial_psd` of the first colour
    eigen-mode when the probe measured colour eigen-modes (``result.channel_axis``), else of the PSD at zero
    frequency along the axes before the last two (of ``(C, H, W)`` samples: the channel mean), against cycles per
    pixel. Raises what :func:`symsched.plots.save_figure`
    raises for ``path`` (TypeError, ValueError for an unknown suffix, OSError). Source: docs/model.md §1, §5.
    """
    from matplotlib.figure import Figure

    from .plots import _tidy_log_axes, save_figure
    from .spectra import radial_psd

    if not isinstance(result, ProbeResult):
        raise ArgumentTypeError(f"result must be a ProbeResult (from probe_schedules), got {type(result).__name__}")
    names = list(result.schedules)
    n_ex = max(len(v) for v in result.examples.values())
    one = result.reference_examples[0]
    if channel_axis is None and result.channel_axis is not None:  # the probe's own colour axis (audit of
        channel_axis = result.channel_axis  # 6 December: channels-last samples were drawn as 8 x 3 strips)
    elif channel_axis is None and one.ndim == 3 and one.shape[0] in (1, 3):
        channel_axis = 0  # (C, H, W), the torch layout
    if channel_axis is not None:
        channel_axis = as_int(channel_axis, "channel_axis", -one.ndim, one.ndim - 1,
                              rule=f"an axis of one sample (shape {one.shape}), in [-{one.ndim}, {one.ndim})")
    rows = len(names) + 1
    cell = 0.85  # inches per sample image
    psd_w = 5.0
    left, right = 1.3, 1.0  # room for the row labels and the PSD axis labels
    width = left + cell * n_ex + 0.3 + psd_w + right
    height = max(cell * rows + 1.1, 4.0)
    fig = Figure(figsize=(width, height))
    gs = fig.add_gridspec(1, 3, width_ratios=[cell * n_ex, 0.3, psd_w], wspace=0.0,
                          left=left / width, right=1 - right / width, top=1 - 0.6 / height, bottom=0.5 / height)
    labelled = [(k, result.examples[k]) for k in names] + [("reference", result.reference_examples)]
    mosaic = _mosaic([[_image(x, channel_axis) for x in ex] for _, ex in labelled], n_ex)
    ax = fig.add_subplot(gs[0, 0])  # one image of every sample: a row per schedule and the reference
    ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    cell_h = mosaic.shape[0] / rows
    ax.set_yticks([(r + 0.5) * cell_h for r in range(rows)], [label for label, _ in labelled], fontsize=8)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax = fig.add_subplot(gs[0, 2])
    comp = result.comparison.comparisons

    def radial(spec: Array) -> tuple[Array, Array]:
        """Radial average of the first colour eigen-mode (``(..., H, W, C)`` with a channel axis), else of the PSD
        at zero frequency along the axes before the last two (``(C, H, W)``: the channel mean's PSD)."""
        spec = np.asarray(spec)
        if result.channel_axis is not None:
            spec = spec[..., 0]
        while spec.ndim > 2:
            spec = spec[0]
        f, r = radial_psd(spec)
        return f[1:], r[1:]

    f, ref_r = radial(comp[names[0]].reference_psd)
    ax.loglog(f, ref_r, "k-", lw=2, label="reference (measured, thick black line)")
    for i, k in enumerate(names):
        col = f"C{i % 10}"
        ax.loglog(f, radial(comp[k].measured_psd)[1], "o", ms=3, color=col, mfc="none", label=f"{k} (measured)")
        if comp[k].predicted_psd is not None:
            ax.loglog(f, radial(comp[k].predicted_psd)[1], "-", lw=1, color=col)
    predicted = any(comp[k].predicted_psd is not None for k in names)
    if predicted:  # one legend entry for every prediction line
        ax.plot([], [], "-", lw=1, color="0.4", label="closed-form prediction (thin line, same colour)")
    ax.set_xlabel("radial frequency (cycles/pixel)")
    ax.set_ylabel("radially averaged PSD")
    # the title names every kind of curve as the legend does (it said "predicted (lines)" of the black reference too)
    ax.set_title("markers: measured · " + ("thin lines: closed-form prediction · " if predicted else "")
                 + "black: reference (measured)", fontsize=8)
    ax.yaxis.set_label_position("right")
    ax.yaxis.tick_right()
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3, which="both")
    _tidy_log_axes(ax)
    fig.suptitle(f"symsched probe: {result.sampler}, K = {next(iter(result.schedules.values())).size}, "
                 f"{_count(result.n_samples, 'sample')} × {_count(len(result.seeds), 'seed')}", fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig
