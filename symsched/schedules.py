"""Standard noise schedules in symsched's convention, and stable conversions between levels.

A *schedule* is ``alpha_bar``: a 1-D float64 array of ``K`` noise levels, strictly increasing in
``[0, 1)`` (a first level 0 is pure noise: zero terminal SNR, flow ``t = 1``), **noisiest first**; the sampler then
takes an implicit final step to
``alpha_bar = 1`` (clean), which is never stored. Every function here that returns a schedule
passes it through :func:`symsched._validate.as_levels`.

Two orders appear and are kept apart:

* **sampling order** (symsched): ``alpha_bar[0]`` is the noisiest level, increasing;
* **training order** (DDPM / diffusers): index ``t = 0 .. T-1`` is the timestep, and the grid
  ``alphas_cumprod[t] = prod_{s<=t} (1 - beta_s)`` *decreases* with ``t``. Betas, training grids
  and ``grid`` arguments are in training order; :func:`from_grid` converts.

Conversions (all elementwise, any shape, numerically stable near ``alpha_bar -> 0`` and ``-> 1``):
log-SNR ``l = log(ab / (1 - ab))``, VE noise ``sigma = sqrt((1 - ab) / ab) = exp(-l / 2)``.

References: Ho et al. DDPM (arXiv 2006.11239); Nichol & Dhariwal, improved DDPM / cosine schedule
(arXiv 2102.09672); Karras et al. EDM (arXiv 2206.00364); Lin et al., common diffusion noise
schedules are flawed (arXiv 2305.08891, the leading / trailing / linspace spacings); Hoogeboom
et al., simple diffusion (arXiv 2301.11093) and Esser et al., SD3 (arXiv 2403.03206) for shifted
schedules; Sabour et al., Align Your Steps (arXiv 2404.14507).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, log_expit, logit

from ._markdown import count as _count
from ._validate import (
    MAX_STEPS, MAX_TRAIN_TIMESTEPS, as_int, as_positive as _positive, as_real as _real, as_real_array, as_levels,
    refuse_rounded_to_one, _first, _show, _type_error, as_bool, as_positive_int, check_choice, numpy_error_defaults,
)

__all__ = [
    "linear_betas",
    "scaled_linear_betas",
    "cosine_betas",
    "sigmoid_betas",
    "training_grid",
    "betas_to_alpha_bar",
    "rescale_zero_terminal_snr",
    "alpha_bar_to_betas",
    "alpha_bar_to_log_snr",
    "log_snr_to_alpha_bar",
    "alpha_bar_to_sigmas",
    "sigmas_to_alpha_bar",
    "flow_t_to_log_snr",
    "log_snr_to_flow_t",
    "flow_t_to_alpha_bar",
    "alpha_bar_to_flow_t",
    "flow_t_to_sigmas",
    "sigmas_to_flow_t",
    "timesteps",
    "from_grid",
    "nearest_timesteps",
    "karras",
    "kl_optimal",
    "shifted",
    "align_your_steps",
    "loglinear_interp",
    "sd3_time_shift",
    "shift_to_log_snr",
    "flux_mu",
    "flux_image_seq_len",
    "BETA_RANGES",
    "FLUX_DEFAULTS",
    "uniform_flow_t",
    "flow_match_t",
    "flux_t",
    "flow_schedule",
    "FLOW_SCHEDULES",
    "standard_schedule",
    "STANDARD_SCHEDULES",
    "SPACINGS",
    "GridCollision",
    "BETA_SCHEDULES",
    "AYS_SIGMAS",
]

Array = NDArray[np.float64]

SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")
BETA_SCHEDULES: tuple[str, ...] = ("linear", "scaled_linear", "cosine", "sigmoid")

#: Align Your Steps 10-step sigma tables (11 entries: 10 steps from the first to the last entry),
#: Sabour, Fidler, Kreis, "Align Your Steps: Optimizing Sampling Schedules in Diffusion Models",
#: arXiv 2404.14507: the Stable Diffusion training sigmas ``sqrt((1 - g) / g)`` of
#: ``training_grid("scaled_linear")`` at the AYS *timesteps* the authors publish for diffusers on their
#: project page (NVIDIA Toronto AI Lab, "AlignYourSteps/howto": SD1.5 999, 850, 736, 645, 545, 455, 343,
#: 233, 124, 24, 0; SDXL 999, 845, 730, 587, 443, 310, 193, 116, 53, 13, 0), i.e. the levels a diffusers
#: pipeline runs with that recipe. The sigma lists published for continuous samplers (k-diffusion,
#: ComfyUI; diffusers' ``AysSchedules["StableDiffusionSigmas"]``) are rounded to 3 decimals and differ
#: from these by up to 0.3 % (SD1.5) and 1.4 % (SDXL). The last entry 0.0291671582 is the smallest
#: training sigma (timestep 0); samplers replace it by 0 (clean), in symsched the implicit final step.
AYS_SIGMAS: dict[str, tuple[float, ...]] = {
    "sd15": (
        14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
        0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582,
    ),
    "sdxl": (
        14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141,
        0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582,
    ),
}

#: Every named standard schedule accepted by :func:`standard_schedule`.
STANDARD_SCHEDULES: tuple[str, ...] = (
    "linear-leading",
    "linear-trailing",
    "linear-linspace",
    "scaled_linear-leading",
    "scaled_linear-trailing",
    "scaled_linear-linspace",
    "cosine",
    "sigmoid",
    "karras",
    "kl_optimal",
    "shifted",
    "ays-sd15",
    "ays-sdxl",
)

_GRID_NAMES = {
    "linear-leading": ("linear", "leading"),
    "linear-trailing": ("linear", "trailing"),
    "linear-linspace": ("linear", "linspace"),
    "scaled_linear-leading": ("scaled_linear", "leading"),
    "scaled_linear-trailing": ("scaled_linear", "trailing"),
    "scaled_linear-linspace": ("scaled_linear", "linspace"),
    "cosine": ("cosine", None),
    "sigmoid": ("sigmoid", None),
}

class GridCollision(ValueError):
    """Two levels of a schedule land on the same timestep of a discrete training grid (the grid is too coarse
    for that many levels in that range). A ``ValueError``; raised by :func:`nearest_timesteps` and
    :func:`standard_schedule` with a grid, and by the timestep exports of :mod:`symsched.export`. ``collision``:
    which levels meet at which timestep, in words, whatever context a caller's message adds. Source:
    :func:`nearest_timesteps`."""

    def __init__(self, message: str, collision: str = "") -> None:
        super().__init__(message)
        self.collision = collision or message

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:  # (a worker's exception keeps its collision)
        return type(self), (str(self), self.collision)


def _check_grid_size(g: NDArray[np.float64], steps: int) -> None:
    """ValueError naming ``grid`` and ``steps`` when the grid has fewer than ``steps`` levels."""
    if g.size < steps:
        raise ValueError(f"grid has {_count(g.size, 'level')}, fewer than steps={steps}: cannot choose {steps} "
                         "distinct levels")


# ---------------------------------------------------------------------------------------------
# small validators (schedule-specific; the generic ones live in symsched._validate)
# ---------------------------------------------------------------------------------------------


def _nonneg_int(value: Any, name: str) -> int:
    return as_int(value, name, 0)


def _pos_int(value: Any, name: str, maximum: int = MAX_STEPS) -> int:
    """A positive integer, at most ``maximum`` (a count of steps: MAX_STEPS; of training timesteps: MAX_TRAIN_TIMESTEPS)."""
    limit = "MAX_STEPS" if maximum == MAX_STEPS else "MAX_TRAIN_TIMESTEPS"
    return as_positive_int(value, name, maximum, limit=limit)


def _real_array(value: ArrayLike, name: str) -> Array:
    """``value`` as a non-empty float64 array (ValueError or TypeError naming ``name``, as every conversion here
    says)."""
    arr = as_real_array(value, name)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return arr


def _float_array(value: ArrayLike, name: str) -> Array:
    arr = _real_array(value, name)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return arr


#: diffusers' stand-in for a zero-terminal-SNR last level: EulerDiscrete, EulerAncestralDiscrete, DPMSolverMultistep
#: and UniPCMultistep with ``rescale_betas_zero_snr=True`` set ``alphas_cumprod[-1] = 2**-24`` (a finite sigma_max)
ZERO_SNR_STANDIN = 2.0**-24


def _standin_as_zero(arr: Array, *, only_if_forced: bool = False) -> Array:
    """``arr`` with a last entry of exactly :data:`ZERO_SNR_STANDIN` read as the 0 the model was trained at.

    The one rule of every grid reader: a training-timestep lookup (:func:`symsched.probe.diffusers_denoiser`, the
    exports' timestep matching) always reads it as 0; a grid of levels to run (``only_if_forced``: :func:`_as_grid`)
    keeps it as the level the scheduler runs wherever the grid can hold it (after a larger level: 1.97e-7 on the
    scaled-linear betas) and reads it as 0 only where it cannot (after a smaller one: 4.2e-9 on the linear betas)."""
    if arr.ndim != 1 or arr.size < 2 or arr[-1] != ZERO_SNR_STANDIN:
        return arr
    if only_if_forced and arr[-2] > ZERO_SNR_STANDIN:
        return arr
    out = arr.copy()
    out[-1] = 0.0
    return out


def _as_grid(grid: ArrayLike, name: str = "grid", *, lone_zero: bool = False) -> Array:
    """A training-order grid: 1-D, strictly decreasing in t (``grid[t] = alphas_cumprod[t]``), in (0, 1) except
    that the last entry may be exactly 0 (zero terminal SNR, ``rescale_betas_zero_snr=True``); ``[0.0]`` alone only
    with ``lone_zero`` (a one-step schedule from pure noise, not a grid a model was trained on). A last entry of
    exactly :data:`ZERO_SNR_STANDIN` at or above the one before it (a 1000-step Euler-type zero-SNR grid on linear
    betas: 2**-24 after 4.2e-9) is diffusers' stand-in for the 0 the model was trained at, and reads as 0; after a
    larger level (scaled-linear betas: 1.97e-7) it stays the level the scheduler runs (:func:`_standin_as_zero`)."""
    arr = _float_array(grid, name)
    refuse_rounded_to_one(grid, arr, name, "levels", "the clean end rather than a level")
    arr = _standin_as_zero(arr, only_if_forced=True)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array alphas_cumprod[t] (got shape {arr.shape})")
    if np.any(arr < 0) or np.any(arr >= 1) or np.any(arr[:-1] == 0):
        raise ValueError(
            f"{name} must lie in (0, 1), except a last entry 0 (zero terminal SNR) "
            f"(got min {arr.min():.17g}, max {arr.max():.17g})"
        )
    if arr[0] == 0 and not (lone_zero and arr.size == 1):
        raise ValueError(f"{name} must hold a level above 0 before its zero-terminal-SNR entry (got {name} = [0.0])")
    if arr.size > 1 and np.any(np.diff(arr) >= 0):
        i = int(np.argmax(np.diff(arr) >= 0))  # the first offending pair
        raise ValueError(
            f"{name} must be strictly decreasing in the timestep t (training order, "
            f"{name}[t] = alphas_cumprod[t]): {name}[{i}]={float(arr[i])!r} <= {name}[{i + 1}]={float(arr[i + 1])!r}"
        )
    return arr


def _check_out_of_range(ab: Array, values: Array, mask: Array, name: str, to_zero: str, to_one: str) -> Array:
    """Refuse an input (where ``mask``) whose level ``ab`` rounds to 0 or 1 in float64, naming the first such entry.

    ``to_zero`` / ``to_one`` say which way the input is out of range for each case (e.g. ``"too small (below
    about -745.13)"``): the direction depends on the coordinate (a large sigma, but a small log-SNR, is near 0).
    """
    for bad, end, why in ((mask & (ab <= 0), "underflows to 0", to_zero), (mask & (ab >= 1), "rounds to 1", to_one)):
        if np.any(bad):
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            where = f"{name}[{', '.join(map(str, i))}]" if values.ndim else name
            raise ValueError(f"{name} {why}: {where}={float(values[i])!r} gives an alpha_bar that {end} in float64 "
                             "(not a representable level)")
    return ab


# ---------------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------------


def _check_closed(arr: Array, name: str, hi: float) -> None:
    """ValueError naming ``name`` and its first bad entry unless every value lies in the closed interval [0, hi]
    (``hi`` 1 for levels and flow times, inf for sigmas): a NaN is named as such, not as an out-of-range minimum
    (the one wording of every conversion's range check)."""
    interval = f"[0, {hi:g}]"

    def got(bad: Array) -> str:  # a scalar is named by itself, as _check_out_of_range does
        return f"{name}={float(arr)!r}" if arr.ndim == 0 else _first(arr, bad, name)

    nan = np.isnan(arr)
    if np.any(nan):
        raise ValueError(f"{name} must not be NaN (got {got(nan)}); its values lie in {interval}")
    out = (arr < 0) | (arr > hi)
    if np.any(out):
        raise ValueError(f"{name} must lie in {interval} (got {got(out)})")


def _unit_closed(value: ArrayLike, name: str) -> Array:
    """Levels in the closed interval [0, 1] (0 = pure noise, 1 = clean), any shape."""
    arr = _real_array(value, name)
    refuse_rounded_to_one(value, arr, name, "values", {"alpha_bar": "the clean end", "t": "pure noise"}[name])
    _check_closed(arr, name, 1.0)
    return arr + 0.0  # -0.0 is the level 0 (pure noise): + 0.0 makes it +0.0, so 1/sqrt(0) is +inf, not -inf


def _log_snr_array(log_snr: ArrayLike, name: str = "log_snr") -> Array:
    arr = _real_array(log_snr, name)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not be NaN (-inf is pure noise, +inf the clean level)")
    return arr


@numpy_error_defaults
def alpha_bar_to_log_snr(alpha_bar: ArrayLike) -> Array:
    r"""Log signal-to-noise ratio :math:`\ell = \log\bar\alpha - \operatorname{log1p}(-\bar\alpha)`, elementwise.

    ``alpha_bar = 0`` (zero terminal SNR, pure noise) maps to ``-inf`` and ``alpha_bar = 1`` (clean)
    to ``+inf`` exactly; in between the two logs carry full relative precision (no cancellation).
    Source: docs/model.md §2 (log-SNR), §10 (``alpha_bar = 0``).

    Parameters
    ----------
    alpha_bar : array_like, any shape
        Levels in the closed interval [0, 1].

    Returns
    -------
    ndarray, same shape, float64

    Raises
    ------
    ValueError
        If ``alpha_bar`` is empty, NaN or outside [0, 1].
    """
    ab = _unit_closed(alpha_bar, "alpha_bar")
    with np.errstate(divide="ignore"):
        return np.asarray(logit(ab), dtype=np.float64)


@numpy_error_defaults
def log_snr_to_alpha_bar(log_snr: ArrayLike) -> Array:
    r"""Inverse of :func:`alpha_bar_to_log_snr`: :math:`\bar\alpha = \operatorname{expit}(\ell)`.

    Computed so that both :math:`\bar\alpha` and :math:`1-\bar\alpha` keep full relative
    precision: for :math:`\ell \ge 0` the result is ``1 - expit(-l)``, otherwise ``expit(l)``.
    ``-inf`` maps to 0 (pure noise) and ``+inf`` to 1 (clean) exactly. Source: docs/model.md §2, §10.

    Parameters
    ----------
    log_snr : array_like, any shape
        Log-SNR values; finite ones must map into the open interval (0, 1) in float64
        (``-745.13 < l < 37.43``; the largest level below 1, ``1 - 2**-53``, has ``l = 36.74``, and every
        ``l`` from there to 37.43 rounds to it). Below ``l = -708.4`` alpha_bar is subnormal (``< 2.2e-308``) and is
        still computed (``e^l``, rounded to the subnormal spacing 5e-324). The round trip
        ``log_snr_to_alpha_bar(alpha_bar_to_log_snr(ab))`` returns every level from 5e-324 up, to the
        conditioning of ``e^l``: relative error up to about ``|l| 2**-53`` (the rounding of ``l`` itself; 1e-13
        near the subnormal range), exact where that is below the subnormal spacing (``ab < ~1e-320``).

    Returns
    -------
    ndarray, same shape, float64, in [0, 1]

    Raises
    ------
    ValueError
        If ``log_snr`` is empty or NaN, or a finite entry maps to alpha_bar 0 or 1 in float64 (not
        representable).
    """
    l = _log_snr_array(log_snr)
    ab = _alpha_bar_unchecked(l)
    fin = np.isfinite(l)
    _check_out_of_range(ab, l, fin, "log_snr", "too small (below about -745.13: alpha_bar = e^l < 5e-324)",
                        "too large (above about 37.43: 1 - alpha_bar = e^-l <= 2**-54 rounds to 0)")
    return ab


def _expit_low(m: Array) -> Array:
    """``expit(m)`` for ``m <= 0`` (-inf allowed), down into the subnormal range: ``e^m / (1 + e^m)``, whose
    denominator is 1 in float64 below m = -40, where ``e^m`` alone keeps the subnormal results scipy's expit flushes
    to 0 (below about m = -709)."""
    with np.errstate(over="ignore", under="ignore"):
        return np.asarray(np.where(m < -40.0, np.exp(np.minimum(m, 0.0)), expit(m)), dtype=np.float64)


def _alpha_bar_unchecked(l: Array) -> Array:
    """``expit(l)`` for any log-SNR array (+-inf allowed) with both alpha_bar and 1 - alpha_bar to full relative
    precision (``1 - expit(-l)`` for l >= 0); levels beyond float64 round to 0 or 1 (the callers check)."""
    low = _expit_low(-np.abs(l))
    return np.asarray(np.where(l >= 0, 1.0 - low, low), dtype=np.float64)


@numpy_error_defaults
def alpha_bar_to_sigmas(alpha_bar: ArrayLike) -> Array:
    r"""VE noise level :math:`\sigma = \sqrt{1-\bar\alpha}/\sqrt{\bar\alpha} = e^{-\ell/2}`, elementwise.

    ``alpha_bar = 0`` maps to ``inf``, ``alpha_bar = 1`` to 0, exactly; the quotient of square roots
    neither overflows (``sqrt(5e-324) = 2.2e-162``) nor cancels (``1 - ab`` is exact for ``ab >= 1/2``).
    Source: docs/model.md §2 (VE form, ``sigma = exp(-l/2)``), §10 (``sigma = inf``).

    Parameters
    ----------
    alpha_bar : array_like, any shape
        Levels in [0, 1]. A schedule (increasing) maps to decreasing sigmas, noisiest first.

    Returns
    -------
    ndarray, same shape, float64, in [0, inf]

    Raises
    ------
    ValueError
        If ``alpha_bar`` is empty, NaN or outside [0, 1].
    """
    ab = _unit_closed(alpha_bar, "alpha_bar")
    with np.errstate(divide="ignore"):
        return np.asarray(np.sqrt(1.0 - ab) / np.sqrt(ab))  # (a 0-d array for a number, as the other conversions)


def sigma_to_alpha_bar_unchecked(s: Any) -> Any:
    """:func:`sigmas_to_alpha_bar`'s formula without its checks, for a float or an array of sigmas in [0, inf]:
    ``1 - s^2/(1 + s^2)`` for ``s <= 1``, ``r^2/(1 + r^2)`` with ``r = 1/s`` above (a positive sigma may round to 1,
    a finite one above ~6.4e161 to 0: the callers decide)."""
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        r = 1.0 / np.asarray(s, dtype=np.float64)
        ss, rr = np.square(s), r * r
        ab = np.where(np.asarray(s) <= 1.0, 1.0 - ss / (1.0 + ss), rr / (1.0 + rr))  # 1 - ab keeps its precision
    return float(ab) if np.ndim(ab) == 0 else ab


@numpy_error_defaults
def sigmas_to_alpha_bar(sigmas: ArrayLike) -> Array:
    r"""Inverse of :func:`alpha_bar_to_sigmas`: :math:`\bar\alpha = 1/(1+\sigma^2)`, elementwise.

    Evaluated as ``1 - sigma^2/(1 + sigma^2)`` for ``sigma <= 1`` (``1 - alpha_bar`` keeps its relative
    precision) and ``r^2/(1 + r^2)``, ``r = 1/sigma``, above, which never overflows. ``sigma = inf`` maps to 0 (pure noise), ``sigma = 0`` to 1 (clean).
    Source: docs/model.md §2 (the VE-VP map ``alpha_bar = 1/(1+sigma^2)``).

    Parameters
    ----------
    sigmas : array_like, any shape
        VE noise levels in [0, inf].

    Returns
    -------
    ndarray, same shape, float64, in [0, 1]

    Raises
    ------
    ValueError
        If ``sigmas`` is empty, NaN or negative, or a finite positive sigma maps to alpha_bar 0 (sigma above
        ~1e162) or 1 (sigma below ~1e-8) in float64.
    """
    s = _real_array(sigmas, "sigmas")
    _check_closed(s, "sigmas", np.inf)
    ab = sigma_to_alpha_bar_unchecked(s)
    inner = (s > 0) & np.isfinite(s)
    _check_out_of_range(ab, s, inner, "sigmas", "too large (above about 6.4e161: alpha_bar = 1/(1 + sigma^2) "
                        "rounds to 0, below half of 5e-324)", "too small (below about 1e-8: 1 - alpha_bar = sigma^2/(1 + sigma^2) < 2**-53)")
    return np.asarray(ab, dtype=np.float64)


# -- rectified flow / flow matching: x_t = (1 - t) x0 + t eps ----------------------------------------------
# alpha = 1 - t and sigma_vp = t, so the VP level is alpha_bar = (1-t)^2 / ((1-t)^2 + t^2), the log-SNR is
# l = 2 log((1 - t)/t) and the VE noise sigma = t / (1 - t). t = 1 is pure noise, t = 0 clean.


@numpy_error_defaults
def flow_t_to_log_snr(t: ArrayLike) -> Array:
    r"""Log-SNR of flow-matching time :math:`t`: :math:`\ell = 2\log\frac{1-t}{t} = -2\operatorname{logit}(t)`.

    ``x_t = (1 - t) x0 + t eps`` (Lipman et al. 2022; Esser et al. 2024, SD3; diffusers calls ``t`` the
    flow ``sigmas``). ``t = 1`` maps to ``-inf``, ``t = 0`` to ``+inf`` exactly. scipy's ``logit`` keeps full
    relative precision near ``t = 1/2`` too, where ``2(log1p(-t) - log t)`` cancelled (5e-11 relative at
    ``t = 0.5 + 5e-7``). Any shape; ValueError for NaN or ``t`` outside [0, 1]. Source: docs/model.md §10.
    """
    tt = _unit_closed(t, "t")
    with np.errstate(divide="ignore"):
        return np.asarray(0.0 - 2.0 * logit(tt), dtype=np.float64)  # (0 - 0: +0.0 at t = 1/2)


@numpy_error_defaults
def log_snr_to_flow_t(log_snr: ArrayLike) -> Array:
    r"""Flow time of a log-SNR: :math:`t = \operatorname{expit}(-\ell/2) = 1/(1 + e^{\ell/2})` (``-inf -> 1``, ``+inf -> 0``).

    ``1 - t = expit(l/2)`` keeps full precision too (use :func:`flow_t_to_log_snr` for the way back).
    Any shape; ValueError for NaN, or a finite log-SNR whose t rounds to 0 (``l > ~1488.9``: t = e^(-l/2) below
    5e-324; subnormal t from l = 1416.8 up) or 1 (``l < ~-74.9``). Source: docs/model.md §10.
    """
    l = _log_snr_array(log_snr)
    low = _expit_low(-0.5 * np.abs(l))
    t = np.asarray(np.where(l >= 0, low, 1.0 - low), dtype=np.float64)
    fin = np.isfinite(l)
    if np.any((t[fin] <= 0) | (t[fin] >= 1)):
        raise ValueError("log_snr: some finite entries map to flow t = 0 or 1 in float64 (|log_snr| too large)")
    return t


@numpy_error_defaults
def flow_t_to_alpha_bar(t: ArrayLike) -> Array:
    r"""VP level of flow time :math:`t`: :math:`\bar\alpha = (1-t)^2/((1-t)^2 + t^2)` (``t = 1 -> 0``, ``t = 0 -> 1``).

    Evaluated as written, with ``1 - t`` (exact for ``t >= 1/2``): a few ulps everywhere, where the way through the
    log-SNR multiplied its rounding by ``|log_snr|`` (87 ulps at ``t = 1 - 2.4e-15``). Any shape; ValueError for NaN,
    ``t`` outside [0, 1], or a ``0 < t < ~1e-8`` whose alpha_bar rounds to 1. Source: docs/model.md §10.
    """
    tt = _unit_closed(t, "t")
    u = 1.0 - tt
    with np.errstate(under="ignore"):
        u2 = u * u
        ab = np.asarray(u2 / (u2 + tt * tt), dtype=np.float64)
    if np.any((tt > 0) & (ab >= 1.0)):
        raise ValueError("t: some entries are so close to 0 (t < ~1e-8) that alpha_bar = 1 - t^2/(...) rounds to 1 "
                         "in float64 (not a representable level; the clean level t = 0 itself is allowed)")
    return ab


@numpy_error_defaults
def alpha_bar_to_flow_t(alpha_bar: ArrayLike) -> Array:
    r"""Flow time of a VP level: :math:`t = \sqrt{1-\bar\alpha}/(\sqrt{\bar\alpha} + \sqrt{1-\bar\alpha})` (``0 -> 1``, ``1 -> 0``).

    A sum of positive terms: no cancellation anywhere; above ``t = 1/2`` it is formed as ``1 - c/(c + s)``, one
    rounding of the small distance from pure noise (``s/(c + s)`` rounded ``c + s ~ 1`` first: 1 ulp off next to
    ``t = 1``, and ``t = 1 - 2^-53`` came back as 1). Any shape; ValueError for NaN, outside [0, 1], or a level
    ``0 < alpha_bar < ~3.1e-33`` whose t rounds to 1 in float64 (it would read as pure noise, alpha_bar = 0, on the
    way back; :func:`flow_t_to_alpha_bar` refuses the mirror case ``0 < t < ~1e-8`` the same way).
    Source: docs/model.md §10.
    """
    ab = _unit_closed(alpha_bar, "alpha_bar")
    c, s = np.sqrt(ab), np.sqrt(1.0 - ab)
    t = np.where(c < s, 1.0 - c / (c + s), s / (c + s))
    _check_not_noise(t, ab > 0, ab, "alpha_bar", "0 < alpha_bar < ~3.1e-33")
    return np.asarray(t)


def _check_not_noise(t: Array, inner: Array, values: Array, name: str, rule: str) -> None:
    """Refuse a level that is not pure noise (where ``inner``) but whose flow time ``t`` rounds to 1 in float64."""
    bad = inner & (t >= 1.0)
    if np.any(bad):
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        where = f"{name}[{', '.join(map(str, i))}]" if values.ndim else name
        raise ValueError(f"{name}: {where}={float(values[i])!r} is so close to pure noise ({rule}) that its flow time "
                         "t rounds to 1 in float64, the pure-noise level itself; not a representable flow level")


@numpy_error_defaults
def flow_t_to_sigmas(t: ArrayLike) -> Array:
    r"""VE noise of flow time: :math:`\sigma = t/(1-t)` (``t = 1 -> inf``). Any shape; ValueError outside [0, 1].

    ValueError too for an empty ``t`` or NaN. Source: docs/model.md §10.
    """
    tt = _unit_closed(t, "t")
    with np.errstate(divide="ignore"):
        return np.asarray(tt / (1.0 - tt))


@numpy_error_defaults
def sigmas_to_flow_t(sigmas: ArrayLike) -> Array:
    r"""Flow time of a VE noise level: :math:`t = \sigma/(1+\sigma) = 1 - 1/(1 + \sigma)` (``inf -> 1``, ``0 -> 0``).

    The second form above ``sigma = 1``: one rounding of the small distance ``1/(1 + sigma)`` from pure noise.
    Any shape; ValueError for NaN or negative sigmas, or a finite ``sigma > ~1.8e16`` whose t rounds to 1 in
    float64 (only ``sigma = inf``, pure noise, is t = 1). Source: docs/model.md §10.
    """
    s = _real_array(sigmas, "sigmas") + 0.0  # (-0.0 is sigma 0: t = +0.0, as _unit_closed)
    _check_closed(s, "sigmas", np.inf)
    with np.errstate(invalid="ignore"):  # inf / inf in the unused branch
        t = np.where(s <= 1.0, s / (1.0 + s), 1.0 - 1.0 / (1.0 + s))
    _check_not_noise(t, np.isfinite(s), s, "sigmas", "finite sigma > ~1.8e16")
    return t


@numpy_error_defaults
def betas_to_alpha_bar(betas: ArrayLike) -> Array:
    r"""Training grid :math:`\bar\alpha_t = \prod_{s \le t} (1-\beta_s)`, in training order.

    ``1 - alpha_bar`` keeps full relative precision where ``alpha_bar >= 1/2`` (computed as
    ``-expm1(cumsum(log1p(-betas)))``); below 1/2 a plain cumulative product is used. A last beta of
    exactly 1 gives ``alpha_bar[T-1] = 0``: zero terminal SNR (Lin et al. 2023, arXiv 2305.08891).
    Source: Ho et al. 2020 (DDPM, arXiv 2006.11239, §2: ``alpha_bar_t = prod_s alpha_s``); docs/model.md §2.

    Parameters
    ----------
    betas : array_like, shape (T,)
        Per-step variances in the open interval (0, 1), training order (t = 0 first); the last one may be 1.

    Returns
    -------
    ndarray, shape (T,), float64
        ``alphas_cumprod``, strictly decreasing in t. Reverse it (``[::-1]``) for symsched order.

    Raises
    ------
    ValueError
        If ``betas`` is not 1-D, empty, not finite, outside (0, 1) (1 is allowed last), or if the levels are not
        strictly decreasing in float64 (the product underflows, or 1 - beta rounds to 1), naming the first pair.
    """
    b = _float_array(betas, "betas")
    refuse_rounded_to_one(betas, b, "betas", "values", "the zero-terminal-SNR beta")
    if b.ndim != 1:
        raise ValueError(f"betas must be 1-D (got shape {b.shape})")
    if np.any(b <= 0) or np.any(b > 1) or np.any(b[:-1] == 1):
        raise ValueError(
            "betas must lie in the open interval (0, 1); only the last may be 1 (zero terminal SNR) "
            f"(got min {b.min():.17g}, max {b.max():.17g})"
        )
    ab, fault = _cumulative_alpha_bar(b)
    if fault:
        raise ValueError(f"betas: {fault}")
    return ab


def _cumulative_alpha_bar(b: Array) -> tuple[Array, str]:
    """(alphas_cumprod of the valid betas ``b``, "" or why it is not a strictly decreasing grid of levels in
    [0, 1): its first pair of levels float64 cannot tell apart, a first level that rounds to 1, or a product that
    underflows to 0 before a zero-terminal-SNR last step)."""
    with np.errstate(divide="ignore"):
        log_ab = np.cumsum(np.log1p(-b))
    high = log_ab >= -math.log(2.0)
    ab = np.where(high, 1.0 + np.expm1(log_ab), np.cumprod(1.0 - b))
    zero_end = b[-1] == 1
    if zero_end:
        ab[-1] = 0.0
    inner = ab[:-1] if zero_end else ab
    if inner.size and inner[0] >= 1.0:
        return ab, ("alphas_cumprod[0] = 1.0 is the clean data, not a noise level: 1 - beta rounds to 1 in float64 "
                    "(betas below about 1.1e-16); use larger betas")
    stall = np.flatnonzero((np.diff(inner) >= 0) | (inner[1:] <= 0))
    if not stall.size:
        return ab, ""
    i = int(stall[0])
    why = ("the cumulative product of 1 - beta_t underflows below the smallest float64; use fewer timesteps or "
           "smaller betas" if inner[i + 1] < np.finfo(np.float64).tiny else "1 - beta_t rounds to 1 in float64; use "
           "larger betas")
    return ab, (f"alphas_cumprod[{i}] = {float(inner[i])!r} and alphas_cumprod[{i + 1}] = {float(inner[i + 1])!r} "
                f"are not distinct levels: {why}")


@numpy_error_defaults
def rescale_zero_terminal_snr(alpha_bar: ArrayLike) -> Array:
    r"""Lin et al.'s zero-terminal-SNR rescaling of a training grid (arXiv 2305.08891, Algorithm 1).

    :math:`\sqrt{\bar\alpha'_t} = (\sqrt{\bar\alpha_t} - \sqrt{\bar\alpha_{T-1}})\,
    \sqrt{\bar\alpha_0}/(\sqrt{\bar\alpha_0} - \sqrt{\bar\alpha_{T-1}})`: the first level is kept, the
    last becomes exactly 0. diffusers ``rescale_zero_terminal_snr`` (``schedulers/scheduling_ddim.py``; used by
    DDIM, DDPM and EulerDiscrete with ``rescale_betas_zero_snr=True``) does the same on the betas in float32.

    Parameters
    ----------
    alpha_bar : array_like, shape (T,), T >= 2
        Training-order grid (strictly decreasing in t).

    Returns
    -------
    ndarray, shape (T,), float64
        The rescaled grid, ``[T-1] == 0`` (strictly decreasing).

    Raises
    ------
    ValueError
        If ``alpha_bar`` is not a valid training grid (1-D, finite, in (0, 1) except a last 0, strictly
        decreasing) or holds fewer than 2 timesteps, or two of its levels (an ulp or so apart) rescale to one
        float64 level.
    """
    g = _as_grid(alpha_bar, "alpha_bar")
    if g.size < 2:
        raise ValueError("alpha_bar must hold at least 2 timesteps to rescale to zero terminal SNR")
    # as alpha_bar_t ((1 - q_t) / (1 - q_0))^2 with q_t = sqrt(alpha_bar_{T-1} / alpha_bar_t): the factor is <= 1 and
    # non-increasing in t as computed, so no level rises above its original or above the one before it (the form
    # (sqrt(ab_t) - sqrt(ab_T-1))^2 ... tied a level with the one before it when the two were an ulp apart)
    q = np.ones_like(g)  # (the last level is set to 0 below; an already-zero last one would be 0/0 here)
    q[:-1] = np.sqrt(g[-1] / g[:-1])  # only the last level may be 0
    out = g * ((1.0 - q) / (1.0 - q[0])) ** 2
    out[0], out[-1] = g[0], 0.0
    tied = np.flatnonzero(np.diff(out) >= 0)
    if tied.size:
        i = int(tied[0])
        raise ValueError(f"alpha_bar: timesteps {i} and {i + 1} (alpha_bar {float(g[i])!r}, {float(g[i + 1])!r}) "
                         f"rescale to one float64 level ({float(out[i])!r}): too close together to stay distinct")
    return out


@numpy_error_defaults
def alpha_bar_to_betas(alpha_bar: ArrayLike) -> Array:
    r"""Inverse of :func:`betas_to_alpha_bar`: :math:`\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}`.

    With :math:`\bar\alpha_{-1} = 1`, computed as ``(ab[t-1] - ab[t]) / ab[t-1]`` (the
    difference is exact in floating point), so small betas keep full relative precision.
    A beta close to 1 cannot carry ``1 - beta = ab[t]/ab[t-1]`` more precisely than about
    ``1e-16 / (ab[t]/ab[t-1])`` relative, so the round trip ``alpha_bar -> betas -> alpha_bar`` is
    accurate to 1e-12 (relative, in both ``ab`` and ``1 - ab``) whenever every ratio
    ``ab[t]/ab[t-1]`` is at least about 1e-3 (float64 betas cannot do better for larger jumps;
    use log-SNR or sigmas, which round-trip to 1e-12 for any levels, instead).
    Source: Ho et al. 2020 (DDPM, arXiv 2006.11239, §2), the inverse of ``alpha_bar_t = prod_s (1 - beta_s)``.

    Parameters
    ----------
    alpha_bar : array_like, shape (T,)
        Training-order grid: in (0, 1), strictly decreasing in t, the last entry may be 0 (zero terminal SNR,
        beta = 1 there). For a symsched schedule (noisiest first) pass ``alpha_bar[::-1]``.

    Returns
    -------
    ndarray, shape (T,), float64, in (0, 1]

    Raises
    ------
    ValueError
        If ``alpha_bar`` is not 1-D, empty, not finite, outside (0, 1) (except a last 0), or not strictly decreasing.
    """
    ab = _as_grid(alpha_bar, "alpha_bar", lone_zero=True)
    prev = np.concatenate(([1.0], ab[:-1]))
    return (prev - ab) / prev


# ---------------------------------------------------------------------------------------------
# training grids (betas, training order)
# ---------------------------------------------------------------------------------------------


def _check_beta_range(beta_start: Any, beta_end: Any) -> tuple[float, float]:
    b0 = _real(beta_start, "beta_start")
    b1 = _real(beta_end, "beta_end")
    for v, n in ((b0, "beta_start"), (b1, "beta_end")):
        if not 0 < v < 1:
            raise ValueError(f"{n} must lie in the open interval (0, 1) (got {v!r})")
    return b0, b1


#: default ``(beta_start, beta_end)`` of the beta families that take them (diffusers' defaults for the same names)
BETA_RANGES: dict[str, tuple[float, float]] = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012),
                                               "sigmoid": (1e-4, 0.02)}


@numpy_error_defaults
def linear_betas(T: int = 1000, *, beta_start: float = BETA_RANGES["linear"][0],
                 beta_end: float = BETA_RANGES["linear"][1]) -> Array:
    r"""DDPM linear betas :math:`\beta_t = \beta_0 + (\beta_1-\beta_0)\, t/(T-1)`, shape (T,).

    Ho et al. (2020) use T=1000, 1e-4 to 0.02 (diffusers ``beta_schedule="linear"``).
    Computed in float64 (diffusers uses float32; the grids agree to ~1e-7 relative).
    Raises ValueError (naming the argument) unless ``1 <= T <= MAX_TRAIN_TIMESTEPS`` and both betas lie in (0, 1).
    """
    T = _pos_int(T, "T", MAX_TRAIN_TIMESTEPS)
    b0, b1 = _check_beta_range(beta_start, beta_end)
    return np.linspace(b0, b1, T, dtype=np.float64)


@numpy_error_defaults
def scaled_linear_betas(T: int = 1000, *, beta_start: float = BETA_RANGES["scaled_linear"][0],
                        beta_end: float = BETA_RANGES["scaled_linear"][1]) -> Array:
    r"""Stable Diffusion betas, linear in :math:`\sqrt\beta`: ``linspace(sqrt(b0), sqrt(b1), T)**2``, shape (T,).

    Defaults are Stable Diffusion 1.x / 2.x / XL's (diffusers ``beta_schedule="scaled_linear"``).
    Raises ValueError (naming the argument) unless ``1 <= T <= MAX_TRAIN_TIMESTEPS`` and both betas lie in (0, 1).
    Source: diffusers ``schedulers/scheduling_ddim.py`` (``scaled_linear`` branch); Rombach et al. 2022 (arXiv
    2112.10752), the latent diffusion models' configuration.
    """
    T = _pos_int(T, "T", MAX_TRAIN_TIMESTEPS)
    b0, b1 = _check_beta_range(beta_start, beta_end)
    return np.linspace(math.sqrt(b0), math.sqrt(b1), T, dtype=np.float64) ** 2


@numpy_error_defaults
def cosine_betas(T: int = 1000, *, s: float = 0.008, max_beta: float = 0.999) -> Array:
    r"""Nichol–Dhariwal cosine betas :math:`\beta_t = \min(1 - f(t+1)/f(t), \beta_{max})`, shape (T,).

    :math:`f(t) = \cos^2\!\big(\tfrac{t/T + s}{1+s}\tfrac{\pi}{2}\big)` (diffusers
    ``"squaredcos_cap_v2"``). The last beta is capped at ``max_beta`` because ``f(T) = 0``.
    Source: Nichol & Dhariwal 2021 (arXiv 2102.09672), §3.2. Raises ValueError (naming the argument) unless
    ``1 <= T <= MAX_TRAIN_TIMESTEPS``, ``s > 0`` (small enough that every beta stays positive) and
    ``0 < max_beta < 1``.
    """
    T = _pos_int(T, "T", MAX_TRAIN_TIMESTEPS)
    s = _real(s, "s")
    if s <= 0:
        raise ValueError(f"s must be positive (got {s!r})")
    max_beta = _real(max_beta, "max_beta")
    if not 0 < max_beta < 1:
        raise ValueError(f"max_beta must lie in the open interval (0, 1) (got {max_beta!r})")
    t = np.arange(T + 1, dtype=np.float64) / T
    f = np.cos((t + s) / (1.0 + s) * (np.pi / 2.0)) ** 2
    betas = np.minimum(1.0 - f[1:] / f[:-1], max_beta)
    if not np.all(betas > 0):  # f(t) no longer decreases in float64: the offset swamps t / T
        i = int(np.argmax(~(betas > 0)))
        raise ValueError(f"s={s!r}: the cosine schedule's beta_{i} rounds to {float(betas[i])!r} (f(t) = "
                         "cos^2((t/T + s)/(1 + s) pi/2) no longer decreases in float64 for so large an offset); use a "
                         "small offset such as Nichol & Dhariwal's 0.008")
    return betas


@numpy_error_defaults
def sigmoid_betas(T: int = 1000, *, beta_start: float = BETA_RANGES["sigmoid"][0],
                  beta_end: float = BETA_RANGES["sigmoid"][1]) -> Array:
    r"""GeoDiff sigmoid betas :math:`\beta_t = \beta_0 + (\beta_1-\beta_0)\,\operatorname{expit}(u_t)`, shape (T,).

    ``u = linspace(-6, 6, T)`` (diffusers ``DDPMScheduler(beta_schedule="sigmoid")``; defaults are
    the diffusers scheduler defaults).
    Raises ValueError (naming the argument) unless ``1 <= T <= MAX_TRAIN_TIMESTEPS`` and both betas lie in (0, 1).
    """
    T = _pos_int(T, "T", MAX_TRAIN_TIMESTEPS)
    b0, b1 = _check_beta_range(beta_start, beta_end)
    return expit(np.linspace(-6.0, 6.0, T)) * (b1 - b0) + b0


@numpy_error_defaults
def training_grid(beta_schedule: str = "linear", *, num_train_timesteps: int = 1000, rescale_zero_snr: bool = False,
                  **kwargs: Any) -> Array:
    r"""Training grid ``alphas_cumprod`` of a named beta family, shape (T,), training order.

    Parameters
    ----------
    beta_schedule : {"linear", "scaled_linear", "cosine", "sigmoid"}
        Beta family (see :func:`linear_betas`, :func:`scaled_linear_betas`, :func:`cosine_betas`,
        :func:`sigmoid_betas`).
    num_train_timesteps : int
        T, the number of training timesteps.
    rescale_zero_snr : bool
        Apply :func:`rescale_zero_terminal_snr` (diffusers ``rescale_betas_zero_snr=True``): the last
        level becomes exactly 0.
    **kwargs
        Passed to the beta function (``beta_start``/``beta_end``, or ``s``/``max_beta``).

    Returns
    -------
    ndarray, shape (T,), float64
        ``alphas_cumprod[t]``, strictly decreasing in t (the last entry 0 with ``rescale_zero_snr``).

    Raises
    ------
    ValueError
        Unknown ``beta_schedule``, ``num_train_timesteps`` outside [1, MAX_TRAIN_TIMESTEPS], a keyword the beta
        function does not take or a bad value of one, a non-boolean ``rescale_zero_snr`` (ArgumentTypeError), or
        a grid whose levels are not strictly decreasing in float64 (the first pair named).

    Source: diffusers ``schedulers/scheduling_ddim.py`` (``betas_for_alpha_bar``, ``rescale_zero_terminal_snr``,
    ``alphas_cumprod = cumprod(1 - betas)``); Ho et al. 2020 (linear), Nichol & Dhariwal 2021 (cosine).
    """
    rescale = as_bool(rescale_zero_snr, "rescale_zero_snr")
    check_choice(beta_schedule, "beta_schedule", BETA_SCHEDULES)
    fn = {
        "linear": linear_betas,
        "scaled_linear": scaled_linear_betas,
        "cosine": cosine_betas,
        "sigmoid": sigmoid_betas,
    }[beta_schedule]
    T = _pos_int(num_train_timesteps, "num_train_timesteps", MAX_TRAIN_TIMESTEPS)
    if rescale and T < 2:
        raise ValueError(f"num_train_timesteps must be at least 2 with rescale_zero_snr=True (got {T}): the rescaling "
                         "keeps the first level and sends the last to 0")
    try:
        betas = fn(T, **kwargs)
    except TypeError as exc:
        raise ValueError(f"training_grid({beta_schedule!r}): bad keyword argument ({exc})") from None
    grid, fault = _cumulative_alpha_bar(betas)
    if fault:
        given = "".join(f", {k}={v!r}" for k, v in kwargs.items())
        raise ValueError(f"training_grid({beta_schedule!r}, num_train_timesteps={T}{given}): "
                         + fault.replace("fewer timesteps", "fewer num_train_timesteps"))
    return rescale_zero_terminal_snr(grid) if rescale else grid


# ---------------------------------------------------------------------------------------------
# timestep selection on a training grid
# ---------------------------------------------------------------------------------------------


@numpy_error_defaults
def timesteps(
    num_steps: int,
    *,
    spacing: str = "leading",
    num_train_timesteps: int = 1000,
    steps_offset: int = 0,
) -> NDArray[np.int64]:
    r"""Integer timesteps (descending) that diffusers' ``DDIMScheduler.set_timesteps`` selects.

    With ``T = num_train_timesteps`` and ``K = num_steps``:

    * ``"leading"``: ``r = T // K``; ``t = round(arange(K) * r)[::-1] + steps_offset``
      (T=1000, K=10: 900, 800, ..., 0);
    * ``"trailing"``: ``r = T / K``; ``round(arange(T, 0, -r))[:K] - 1``, i.e. ``t_i = round(T - i r) - 1``
      up to NumPy's float fill of ``arange`` (T=1000, K=10: 999, 899, ..., 99);
    * ``"linspace"``: ``round(linspace(0, T - 1, K))[::-1]`` (T=1000, K=10: 999, 888, ..., 0).

    As in diffusers, ``steps_offset`` only shifts the ``"leading"`` spacing (Stable Diffusion
    configs use ``steps_offset=1``). Unlike diffusers (whose ``np.arange`` with a float step can
    return K+1 trailing timesteps ending in -1, e.g. for K=61), exactly K timesteps are returned.

    Parameters
    ----------
    num_steps : int
        K, with ``1 <= K <= num_train_timesteps``.
    spacing : {"leading", "trailing", "linspace"}
    num_train_timesteps : int
        T, length of the training grid.
    steps_offset : int
        Non-negative offset added to the leading timesteps.

    Returns
    -------
    ndarray, shape (K,), int64
        Distinct timesteps in ``[0, T-1]``, descending (noisiest first, as diffusers).

    Raises
    ------
    ValueError
        Bad spacing, non-positive counts, ``K > T``, or leading timesteps shifted past ``T - 1``.
    """
    K = _pos_int(num_steps, "num_steps")
    T = _pos_int(num_train_timesteps, "num_train_timesteps", MAX_TRAIN_TIMESTEPS)
    check_choice(spacing, "spacing", SPACINGS)
    offset = _nonneg_int(steps_offset, "steps_offset")
    if K > T:
        raise ValueError(f"num_steps must not exceed num_train_timesteps={T} (got {K})")
    if spacing == "linspace":
        t = np.linspace(0, T - 1, K).round()[::-1].astype(np.int64)
    elif spacing == "leading":
        ratio = T // K
        if (K - 1) * ratio + offset > T - 1:  # Python integers: checked before the int64 sum could wrap
            raise ValueError(
                f"steps_offset={offset} shifts the leading timesteps past num_train_timesteps - 1 = {T - 1} "
                f"(largest timestep {(K - 1) * ratio + offset})"
            )
        t = (np.arange(0, K) * ratio).round()[::-1].astype(np.int64) + offset
    else:  # trailing
        # np.arange's own float fill (as diffusers), truncated to K values
        t = np.round(np.arange(T, 0, -(T / K))[:K]).astype(np.int64) - 1
    return np.ascontiguousarray(t)


@numpy_error_defaults
def from_grid(grid_alpha_bar: ArrayLike, timesteps: ArrayLike) -> Array:
    r"""Schedule ``grid[timesteps]`` in symsched order (noisiest first): shape (K,).

    Parameters
    ----------
    grid_alpha_bar : array_like, shape (T,)
        Training-order grid ``alphas_cumprod`` (strictly decreasing in t, in (0, 1); the last entry may be 0: zero
        terminal SNR).
    timesteps : array_like of int, shape (K,)
        Distinct timesteps in ``[0, T-1]``, any order (diffusers returns them descending).

    Returns
    -------
    ndarray, shape (K,), float64
        ``grid[sorted(timesteps, descending)]``: strictly increasing, noisiest first.

    Raises
    ------
    ValueError
        Bad grid, non-integer / out-of-range / repeated timesteps.

    Source: diffusers' ``alphas_cumprod[timesteps]`` indexing (``schedulers/scheduling_ddim.py`` ``step``).
    """
    grid = _as_grid(grid_alpha_bar, "grid_alpha_bar")
    if timesteps is None or isinstance(timesteps, (str, bytes)):
        raise _type_error("timesteps", "an array of integers", timesteps)
    ts = np.asarray(timesteps)
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"timesteps must be a non-empty 1-D array (got shape {ts.shape})")
    if ts.dtype == bool or not (np.issubdtype(ts.dtype, np.integer) or np.issubdtype(ts.dtype, np.floating)):
        raise ValueError(f"timesteps must be integers (got dtype {ts.dtype})")
    if np.issubdtype(ts.dtype, np.floating):
        if not np.all(np.isfinite(ts)) or np.any(ts != np.round(ts)):
            raise ValueError("timesteps must be integers (found a non-integer value)")
    T = grid.size
    out = (ts < 0) | (ts > T - 1)  # on the values as given: a cast to int64 first wraps 1e20 and 2**63 + 5
    if np.any(out):
        raise ValueError(f"timesteps must lie in [0, {T - 1}] for a grid of length {T} (got {ts[out][0].item()!r} at "
                         f"position {int(np.flatnonzero(out)[0])})")
    ts = ts.astype(np.int64)
    ts_sorted = np.sort(ts)[::-1]
    if np.any(np.diff(ts_sorted) == 0):
        dup = int(ts_sorted[np.argmax(np.diff(ts_sorted) == 0)])
        raise ValueError(f"timesteps must be distinct (timestep {dup} is repeated)")
    return as_levels(grid[ts_sorted], "from_grid result")


@numpy_error_defaults
def nearest_timesteps(alpha_bar: ArrayLike, grid: ArrayLike) -> NDArray[np.int64]:
    r"""For each level, the grid timestep nearest in log-SNR: ``argmin_t |l(ab_k) - l(grid_t)|``.

    Source: docs/model.md §2 (log-SNR) and §8 (levels restricted to a trained model's timestep grid).

    Parameters
    ----------
    alpha_bar : array_like, shape (K,)
        A schedule (noisiest first, strictly increasing in [0, 1)).
    grid : array_like, shape (T,)
        Training-order grid (strictly decreasing in t). Levels beyond the grid's range snap to
        its end points: pure noise (``alpha_bar = 0``) to a zero-terminal-SNR grid's level 0, else to the
        grid's noisiest timestep ``T - 1`` (its smallest ``alpha_bar``, e.g. 4.04e-5 for the linear grid).

    Returns
    -------
    ndarray, shape (K,), int64
        Timesteps, descending (noisiest first).

    Raises
    ------
    ValueError
        Bad inputs.
    GridCollision
        A ``ValueError``: two levels snap to the same timestep (the grid is too coarse for K
        levels in that range; use fewer steps or pass a finer grid).
    """
    ab = as_levels(alpha_bar, "alpha_bar")
    g = _as_grid(grid, "grid")
    lg = alpha_bar_to_log_snr(g)  # decreasing in t (-inf at a zero-SNR end)
    la = alpha_bar_to_log_snr(ab)
    inc = lg[::-1]  # increasing, index T-1-t
    pos = np.searchsorted(inc, la)
    lo = np.clip(pos - 1, 0, inc.size - 1)
    hi = np.clip(pos, 0, inc.size - 1)
    with np.errstate(invalid="ignore"):  # -inf - -inf: an exact match, distance 0
        d_lo = np.where(la == inc[lo], 0.0, np.abs(la - inc[lo]))
        d_hi = np.where(la == inc[hi], 0.0, np.abs(inc[hi] - la))
    pick = np.where(d_lo <= d_hi, lo, hi)
    ts = (g.size - 1 - pick).astype(np.int64)
    if np.any(np.diff(ts) == 0):
        k = int(np.argmax(np.diff(ts) == 0))
        where = f"levels alpha_bar[{k}] and alpha_bar[{k + 1}] snap to the same grid timestep {int(ts[k])}"
        raise GridCollision(f"{where}: the grid is too coarse for these levels (use fewer steps or a finer grid)",
                            where)
    return ts


# ---------------------------------------------------------------------------------------------
# continuous schedules
# ---------------------------------------------------------------------------------------------


def _sigma_range(sigma_min: Any, sigma_max: Any) -> tuple[float, float]:
    lo = _positive(sigma_min, "sigma_min")
    hi = _positive(sigma_max, "sigma_max")
    if not hi > lo:
        raise ValueError(f"sigma_max must be greater than sigma_min (got sigma_min={lo!r}, sigma_max={hi!r})")
    return lo, hi


def _levels_from_sigmas(sig: Array, label: str) -> Array:
    try:
        ab = sigmas_to_alpha_bar(sig)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None
    return as_levels(ab, f"{label} alpha_bar")


@numpy_error_defaults
def karras(K: int, *, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Array:
    r"""EDM schedule :math:`\sigma_i = (\sigma_{max}^{1/\rho} + \tfrac{i}{K-1}(\sigma_{min}^{1/\rho} - \sigma_{max}^{1/\rho}))^\rho`.

    ``i = 0..K-1`` (K=1 gives ``sigma_max``), then :math:`\bar\alpha = 1/(1+\sigma^2)`; the
    sampler's final step to sigma = 0 is the implicit one. Karras et al. 2022, eq. (5).

    Parameters
    ----------
    K : int
        Number of levels (sampling steps).
    sigma_min, sigma_max : float
        Positive end points, ``sigma_min < sigma_max`` (EDM defaults 0.002, 80).
    rho : float
        Positive warping exponent (7 in EDM).

    Returns
    -------
    ndarray, shape (K,), float64
        ``alpha_bar``, noisiest first.

    Raises
    ------
    ValueError
        ``K`` outside [1, MAX_STEPS], non-positive ``sigma_min``/``sigma_max``/``rho``, ``sigma_max <= sigma_min``,
        or a sigma whose alpha_bar rounds to 0 or 1 in float64 (``sigma_min`` below ~1e-8, ``sigma_max`` above
        ~6.4e161).
    """
    K = _pos_int(K, "K")
    lo, hi = _sigma_range(sigma_min, sigma_max)
    rho = _positive(rho, "rho")
    ramp = _ramp(K)
    with np.errstate(over="ignore", under="ignore"):
        a, b = np.float64(hi) ** (1.0 / rho), np.float64(lo) ** (1.0 / rho)
    if np.isfinite(a) and b > 0:
        sig = (a + ramp * (b - a)) ** rho
    else:  # a small rho takes sigma^(1/rho) beyond float64: sigma = hi (1 - t + t (lo/hi)^(1/rho))^rho in logs,
        # with (lo/hi)^(1/rho) = e^d; d = -inf (rho = 5e-324) is fine (the log form of a, b gave inf - inf = NaN)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            d = (math.log(lo) - math.log(hi)) / rho
            sig = hi * np.exp(rho * np.log1p(ramp * math.expm1(d)))
        if K > 2 and not sig[1] < hi:
            raise ValueError(f"rho={rho:g} is too small: karras(K={K}) puts sigma_1 = sigma_max * (1 - 1/(K-1))^rho, "
                             f"which rounds to sigma_max={hi:g} in float64 (the levels coincide)")
    sig[0] = hi  # exact end points (the power amplifies round-off in b - a)
    if K > 1:
        sig[-1] = lo
    return _levels_from_sigmas(sig, f"karras(K={K}, sigma_min={lo:g}, sigma_max={hi:g}, rho={rho:g})")


@numpy_error_defaults
def kl_optimal(K: int, *, sigma_min: float = 0.002, sigma_max: float = 80.0) -> Array:
    r"""Tangent law :math:`\sigma_i = \tan\theta_i`, :math:`\theta = \operatorname{linspace}(\arctan\sigma_{max}, \arctan\sigma_{min}, K)`.

    Equal steps in the angle :math:`\theta = \arctan\sigma` (the DDIM rotation angle for a unit
    mode, docs/model.md §7.6), then :math:`\bar\alpha = 1/(1+\sigma^2) = \cos^2\theta`. K=1 gives
    ``sigma_max``. Defaults as :func:`karras`.

    Returns
    -------
    ndarray, shape (K,), float64
        ``alpha_bar``, noisiest first.

    Raises
    ------
    ValueError
        As :func:`karras`: ``K`` outside [1, MAX_STEPS], non-positive ends, ``sigma_max <= sigma_min``, or a
        sigma whose alpha_bar rounds to 0 or 1 in float64.
    """
    K = _pos_int(K, "K")
    lo, hi = _sigma_range(sigma_min, sigma_max)
    sig = np.exp(_equal_angle_log_sigmas(math.log(hi), math.log(lo), *_log_weights(_ramp(K))))
    sig[0] = hi  # exact end points
    if K > 1:
        sig[-1] = lo
    return _levels_from_sigmas(sig, f"kl_optimal(K={K}, sigma_min={lo:g}, sigma_max={hi:g})")


_DEFAULT_SHIFT = 3.0


@numpy_error_defaults
def shifted(
    K: int,
    *,
    shift: float = _DEFAULT_SHIFT,
    base: Union[str, ArrayLike] = "flow",
    log_snr_min: float = -15.0,
    log_snr_max: float = 15.0,
) -> Array:
    r"""Log-SNR shifted schedule :math:`\ell_i = \ell^{base}_i - 2\log(\text{shift})`.

    ``shift > 1`` moves every level towards more noise, as for high-resolution models.

    Base schedules (``u_i = 1 - i/K``, ``i = 0..K-1``: uniform time, noisiest first; the level
    ``u = 0`` is replaced by symsched's implicit final step to clean):

    * ``"flow"`` (SD3, Esser et al. 2024): rectified flow ``x = (1-t) x0 + t eps``, with
      :math:`\ell(t) = 2\log((1-t)/t)` and ``t`` linear in ``u`` between the times where
      :math:`\ell` = ``log_snr_max`` and ``log_snr_min``. The shift equals SD3's time shift
      ``t' = shift t / (1 + (shift - 1) t)``.
    * ``"cosine"`` (simple diffusion, Hoogeboom et al. 2023): clipped cosine
      :math:`\ell(u) = -2\log\tan(a u + b)`, ``b = arctan(exp(-l_max/2))``,
      ``a = arctan(exp(-l_min/2)) - b``; simple diffusion's ``shift = d/64`` for resolution d.
    * an array: any schedule ``alpha_bar`` of length K, shifted as is.

    Parameters
    ----------
    K : int
        Number of levels.
    shift : float
        Positive shift factor (SD3 uses 3.0).
    base : {"flow", "cosine"} or array_like, shape (K,)
    log_snr_min, log_snr_max : float
        Clipping range of the named base schedules (``log_snr_min < log_snr_max``), exact for any
        values (computed with sums of positive terms, no saturation); ``log_snr_min = -inf`` puts the
        first level at pure noise (``alpha_bar = 0``, flow ``t = 1``), ``log_snr_max = +inf`` makes
        the base reach the clean level (with ``base="flow"`` and both infinite, ``t_i = 1 - i/K``:
        the uniform flow schedule).

    Returns
    -------
    ndarray, shape (K,), float64
        ``alpha_bar``, noisiest first.

    Raises
    ------
    ValueError
        Bad arguments (named), or a level whose alpha_bar float64 cannot represent (the message names
        the end points or the shift to change).
    """
    K = _pos_int(K, "K")
    shift = _positive(shift, "shift")
    if isinstance(base, str):
        check_choice(base, "base", ("flow", "cosine"))
        lmin = _log_snr_end(log_snr_min, "log_snr_min")
        lmax = _log_snr_end(log_snr_max, "log_snr_max")
        if not lmax > lmin:
            raise ValueError(f"log_snr_max must be greater than log_snr_min (got {lmin!r}, {lmax!r})")
        u = 1.0 - np.arange(K, dtype=np.float64) / K
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            l1u, lu = _log_weights(u)
            if base == "flow":  # the flow time t linear in u from t(l_max) (u = 0) to t(l_min) (u = 1)
                l = _uniform_flow_log_snr(lmax / 2.0, lmin / 2.0, l1u, lu)
            else:  # equal steps in the angle theta = atan(sigma) from sigma(l_min) (u = 1) to sigma(l_max) (u = 0)
                l = -2.0 * _equal_angle_log_sigmas(-lmin / 2.0, -lmax / 2.0, lu, l1u)
    else:
        ab0 = as_levels(base, "base")
        if ab0.size != K:
            raise ValueError(f"base must hold K={K} levels (got {ab0.size})")
        l = alpha_bar_to_log_snr(ab0)
    l = l - 2.0 * math.log(shift)
    ab = _alpha_bar_unchecked(l) if isinstance(base, str) else _shift_levels(ab0, shift)
    bad = np.isfinite(l) & ((ab <= 0) | (ab >= 1))
    if np.any(bad):
        i = int(np.argmax(bad))
        what = "log_snr_min/log_snr_max" if isinstance(base, str) else "base"
        raise ValueError(
            f"shifted(K={K}, shift={shift:g}): level {i} has log-SNR {l[i]:.6g}, whose alpha_bar is not representable "
            "in float64 (log-SNR below -745.13: alpha_bar under 5e-324; above 37.43: within 2**-54 of 1); choose "
            f"{what} or shift closer to the range (-inf for log_snr_min gives an exact pure-noise first level, "
            "alpha_bar = 0)"
        )
    return as_levels(ab, f"shifted(K={K}, shift={shift:g}) alpha_bar")


def _shift_levels(ab: Array, shift: float) -> Array:
    r"""Levels whose SNR is divided by ``shift**2``: :math:`\bar\alpha' = \bar\alpha / (\bar\alpha + s^2 (1 -
    \bar\alpha))`, i.e. :func:`_time_shift` of ``t = alpha_bar`` by ``1/s^2``: a few ulps for every level, where the
    detour through float64 log-SNR costs ``|l| 2**-53`` (audit of 5 December: 183 ulps at 2e-308); ``shift = 1`` is
    the identity, and a shift whose square is beyond float64's normal range goes through the logistic form."""
    if shift == 1.0:
        return ab.copy()
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        inv2 = float((np.float64(1.0) / shift) ** 2)
    if 2.2250738585072014e-308 <= inv2 < math.inf:
        return _time_shift(ab, inv2)
    return _time_shift_log(ab, -2.0 * math.log(shift))


def _equal_angle_log_sigmas(log_first: float, log_last: float, log_w_first: Array, log_w_last: Array) -> Array:
    r"""log sigma at the angles :math:`\theta = w_0 \arctan\sigma_{first} + w_1 \arctan\sigma_{last}` (weights given as logs).

    With :math:`w_0 + w_1 = 1` these are equal steps in the angle (the tangent law, :func:`kl_optimal`). The
    angle and its complement :math:`\phi = \pi/2 - \theta` are each a sum of positive terms, formed in logs, and
    :math:`\sigma = \sin\theta / \sin\phi`: no digit is lost near :math:`\theta = \pi/2` (large sigmas, where
    ``tan(linspace(atan(hi), atan(lo)))`` kept only the ends) nor near 0; ``log_first``/``log_last`` may be +-inf.
    Shapes: the weights broadcast; returns their shape.
    """
    log_theta = np.logaddexp(log_w_first + _log_atan_exp(log_first), log_w_last + _log_atan_exp(log_last))
    log_phi = np.logaddexp(log_w_first + _log_atan_exp(-log_first), log_w_last + _log_atan_exp(-log_last))
    return _log_sin(log_theta) - _log_sin(log_phi)


def _ramp(K: int) -> Array:
    """r_i = i/(K-1), i = 0..K-1 (K = 1: [0]): the position of each of K levels between the two ends."""
    return np.linspace(0.0, 1.0, K) if K > 1 else np.zeros(1)


def _log_weights(t: Array) -> tuple[Array, Array]:
    """``(log(1 - t), log t)``: the log weights of the ends of a ramp ``t`` in [0, 1] (-inf at its ends, silently)."""
    with np.errstate(divide="ignore"):
        return np.log1p(-t), np.log(t)


def _uniform_flow_log_snr(y_first: float, y_last: float, log_w_first: Array, log_w_last: Array) -> Array:
    r"""Log-SNR :math:`2\log((1-t)/t)` at the flow times :math:`t = w_0\,\mathrm{expit}(-y_{first}) + w_1\,\mathrm{expit}(-y_{last})`.

    ``y`` is half an end's log-SNR (a flow time ``t = expit(-y)``), the weights are given as logs; ``log t`` and
    ``log(1 - t)`` are log-sums of positive terms, exact where ``t`` nears 0 or 1 for any ends (+-inf included).
    Shapes: the weights broadcast; returns their shape. (:func:`shifted`'s flow base, the fits' shift family.)
    """
    log_t = np.logaddexp(log_w_first + log_expit(-y_first), log_w_last + log_expit(-y_last))
    log_1mt = np.logaddexp(log_w_first + log_expit(y_first), log_w_last + log_expit(y_last))
    return 2.0 * (log_1mt - log_t)


def _log_atan_exp(y: float) -> float:
    """log(arctan(e^y)) without underflow (arctan x = x (1 - x^2/3 + ...) for tiny x)."""
    if y < -40.0:
        return y
    return math.log(math.atan(math.exp(y))) if y < 700.0 else math.log(math.pi / 2.0)


def _log_sin(log_x: Array) -> Array:
    """log(sin x) from log x, for x in [0, pi/2] (sin x = x sinc(x/pi); -inf at x = 0)."""
    x = np.exp(log_x)
    return log_x + np.log(np.sinc(x / np.pi))


def _log_snr_end(value: Any, name: str) -> float:
    """A log-SNR end point: a real number, or -inf / +inf (pure noise / clean)."""
    if isinstance(value, (float, np.floating)) and math.isinf(value):  # (an integer is never infinite)
        return float(value)
    return _real(value, name)


# ---------------------------------------------------------------------------------------------
# flow-matching schedules (flow time t, noisiest first; t = 1 is pure noise, alpha_bar = 0)
# ---------------------------------------------------------------------------------------------

#: diffusers ``FluxPipeline`` / ``FlowMatchEulerDiscreteScheduler`` defaults (``calculate_shift``):
#: mu = 0.5 at 256 image tokens, 1.15 at 4096, linear in between (and extrapolated outside).
FLUX_DEFAULTS: dict[str, float] = {"base_seq_len": 256, "max_seq_len": 4096, "base_shift": 0.5, "max_shift": 1.15}

#: Named flow-matching schedules accepted by :func:`standard_schedule` (levels alpha_bar, first level 0).
FLOW_SCHEDULES: tuple[str, ...] = ("flow-uniform", "flow-sd3", "flow-flux")


def _time_shift(t: Array, s: float, *, inverse: bool = False) -> Array:
    r""":math:`t' = s t / (s t + (1 - t))` (``inverse``: :math:`t = t' / (t' + s (1 - t'))`) for t in [0, 1], s > 0.

    Every term is non-negative, so nothing cancels (the textbook ``s t / (1 + (s - 1) t)`` loses everything at
    t = 1 when s is far from 1); the result lies in [0, 1] exactly, 0 -> 0 and 1 -> 1. The branch keeps every
    intermediate finite (s t <= s, s (1 - t) <= 1, t / s <= t); below s = 2**-900, where ``(1 - t) / s`` could
    overflow (a subnormal s and t within 1e-12 of 1: t' = 4.9e-312, not 0), numerator and denominator are both
    scaled by 2**600.
    """
    u = 1.0 - t
    with np.errstate(over="ignore", under="ignore"):
        if inverse:
            if s <= 1.0:
                return t / (t + s * u)
            a = t / s
            return a / (a + u)
        if s >= 1.0:
            a = s * t
            return a / (a + u)
        if s >= 2.0 ** -900:
            return t / (t + u / s)
        a = (s * 2.0 ** 600) * t  # (s 2**600 >= 2e-143: no underflow of the scale itself)
        return a / (a + u * 2.0 ** 600)


def _time_shift_log(t: Array, log_s: float) -> Array:
    r""":func:`_time_shift` with :math:`s = e^{\log s}` for any finite ``log_s``: the logistic form
    :math:`t' = \operatorname{expit}(\log s + \log t - \log(1 - t))` where ``exp(log_s)`` is no normal float64
    (there t' is subnormal or rounds to 1 unless t is within ~1e-300 of 0 or 1, so the sum's rounding, ~|log s| ulps
    of z, does not show)."""
    if -708.0 <= log_s <= 709.0:
        return _time_shift(t, math.exp(log_s))
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        z = log_s + (np.log(t) - np.log1p(-t))  # t = 0, 1: -inf, +inf (log_s is finite: no inf - inf)
        e = np.exp(-np.abs(z))  # in [0, 1]: e^z / (1 + e^z) for z < 0 keeps subnormal results (scipy's expit
        return np.where(z < 0, e / (1.0 + e), 1.0 / (1.0 + e))  # flushes them to 0)


@numpy_error_defaults
def sd3_time_shift(t: ArrayLike, shift: float) -> Array:
    r"""SD3's time shift :math:`t' = s t / (1 + (s-1) t)` of rectified-flow times :math:`t \in [0, 1]`.

    Esser et al. 2024 (arXiv 2403.03206), eq. (23); diffusers ``FlowMatchEulerDiscreteScheduler``
    (``sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)``). With :math:`\ell = 2\log((1-t)/t)`
    it is the log-SNR offset :func:`shift_to_log_snr` (``-2 log s``). Evaluated as
    :math:`s t / (s t + (1 - t))`, where no term cancels: exact to a few ulps for every positive float64
    shift, in [0, 1], with 0 -> 0 and 1 -> 1. Any shape. ValueError for ``t`` NaN or outside [0, 1], or ``shift``
    not a finite number > 0 (TypeError for a wrong type).
    """
    s = _positive(shift, "shift")
    tt = _real_array(t, "t")
    refuse_rounded_to_one(t, tt, "t", "values", "pure noise")
    if not np.all(np.isfinite(tt)) or np.any(tt < 0) or np.any(tt > 1):
        raise ValueError("t must lie in [0, 1] (rectified-flow time)")
    return np.asarray(_time_shift(tt + 0.0, s))


@numpy_error_defaults
def shift_to_log_snr(shift: ArrayLike) -> Array:
    r"""Log-SNR offset :math:`-2\log s` of a time shift s (SD3 ``shift``, Flux :math:`e^{\mu}`). Inverse: ``exp(-l/2)``.

    ``shift``: array_like, any shape; returns a float64 array of the same shape. ValueError unless every shift is
    positive and finite. Source: docs/model.md §10; Esser et al., SD3 (arXiv 2403.03206), Hoogeboom et al.,
    simple diffusion (arXiv 2301.11093, the shift ``d/d0`` of resolution d).
    """
    s = _real_array(shift, "shift")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("shift must be positive and finite")
    return np.asarray(-2.0 * np.log(s))


@numpy_error_defaults
def flux_mu(
    image_seq_len: ArrayLike, *, base_seq_len: float = 256, max_seq_len: float = 4096,
    base_shift: float = 0.5, max_shift: float = 1.15,
) -> Array:
    r"""Flux's resolution-dependent shift :math:`\mu`, linear in the token count; the time shift is :math:`s = e^\mu`.

    diffusers ``pipelines/flux/pipeline_flux.py`` ``calculate_shift`` (defaults as there and in the
    FLUX.1 scheduler config, :data:`FLUX_DEFAULTS`): :math:`\mu = \mu_0 + (\mu_1-\mu_0)(n - n_0)/(n_1 - n_0)`,
    not clamped. The scheduler applies :math:`t' = e^\mu/(e^\mu + 1/t - 1)` (``time_shift``), which is
    :func:`sd3_time_shift` with :math:`s = e^\mu`, i.e. a log-SNR offset of :math:`-2\mu` (docs/model.md §10).

    ``image_seq_len``: token counts, array_like of any shape; returns float64 ``mu`` of the same shape. Raises
    ValueError (naming the argument) for a non-positive or non-finite ``image_seq_len``, non-positive
    ``base_seq_len``/``max_seq_len``, ``max_seq_len == base_seq_len`` or non-finite shifts.
    """
    n = _real_array(image_seq_len, "image_seq_len")
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise ValueError("image_seq_len must be positive and finite")
    n0, n1 = _positive(base_seq_len, "base_seq_len"), _positive(max_seq_len, "max_seq_len")
    if n1 == n0:
        raise ValueError("max_seq_len must differ from base_seq_len")
    mu0, mu1 = _real(base_shift, "base_shift"), _real(max_shift, "max_shift")
    # (mu1 - mu0) and the product overflow for shifts near float64's limit: the difference is taken halved, and a
    # mu float64 cannot hold is refused (it was returned as inf)
    with np.errstate(over="ignore", invalid="ignore"):
        mu = mu0 + 2.0 * ((0.5 * mu1 - 0.5 * mu0) * ((n - n0) / (n1 - n0)))
    if not np.all(np.isfinite(mu)):
        bad = n[~np.isfinite(mu)].flat[0]
        raise ValueError(
            f"image_seq_len = {bad:g} gives mu = base_shift + (max_shift - base_shift) (image_seq_len - base_seq_len) "
            f"/ (max_seq_len - base_seq_len) beyond float64's range (base_shift = {mu0:g}, max_shift = {mu1:g}, "
            f"base_seq_len = {n0:g}, max_seq_len = {n1:g})")
    return np.asarray(mu)


@numpy_error_defaults
def flux_image_seq_len(height: int, width: int, *, vae_scale_factor: int = 8, patch_size: int = 2) -> int:
    """Flux's image tokens for an image of ``height`` x ``width`` pixels: ``(h // (8*2)) * (w // (8*2))``.

    In general ``n = (height // (v p)) * (width // (v p))``, ``v = vae_scale_factor``, ``p = patch_size``.
    diffusers ``FluxPipeline``: latents are 8x smaller (VAE) and packed 2x2 into tokens.
    Scalars in (pixels), a Python int >= 1 out (tokens). Raises ValueError (naming the argument) unless all four
    arguments are positive integers (ArgumentTypeError for a float, 1024.0 too), or when ``height`` or ``width`` is
    below ``v p`` pixels: no token, for which :func:`flux_mu` has no shift. Source: diffusers
    ``pipelines/flux/pipeline_flux.py``; docs/model.md §10 (``mu`` linear in the sequence length).
    """
    h, w = as_positive_int(height, "height"), as_positive_int(width, "width")
    v, p = as_positive_int(vae_scale_factor, "vae_scale_factor"), as_positive_int(patch_size, "patch_size")
    f = v * p
    for name, value in (("height", h), ("width", w)):
        if value < f:  # (h // f) * (w // f) = 0 tokens: flux_mu and flux_t refuse image_seq_len = 0
            raise ValueError(f"{name} must be at least vae_scale_factor * patch_size = {v} * {p} = {f} pixels, one "
                             f"token (got {name}={value}: no token)")
    return (h // f) * (w // f)


@numpy_error_defaults
def uniform_flow_t(K: int) -> Array:
    r"""Uniform flow time :math:`t_i = 1 - i/K`, ``i = 0..K-1``: K equal steps from pure noise to clean (t = 0 implicit).

    The rectified-flow schedule of Liu et al. / Lipman et al.; ``t_0 = 1`` is ``alpha_bar = 0``. Shape (K,).
    ValueError unless ``1 <= K <= MAX_STEPS``. Source: docs/model.md §10.
    """
    K = _pos_int(K, "K")
    return 1.0 - np.arange(K, dtype=np.float64) / K


@numpy_error_defaults
def flow_match_t(K: int, *, shift: float = 1.0, num_train_timesteps: int = 1000) -> Array:
    r"""Flow times of diffusers ``FlowMatchEulerDiscreteScheduler(shift=s).set_timesteps(K)`` (SD3), noisiest first.

    diffusers 0.42 ``scheduling_flow_match_euler_discrete.py``: ``__init__`` shifts the training times
    ``n/T`` (n = T..1) with :func:`sd3_time_shift`, so ``sigma_max = 1`` and ``sigma_min = shift(1/T)``;
    ``set_timesteps`` takes ``linspace(sigma_max, sigma_min, K)`` and shifts again:
    :math:`t_i = \mathrm{shift}(1 + \tfrac{i}{K-1}(\mathrm{shift}(1/T) - 1))` (the last level is shifted twice,
    as diffusers does). SD3 uses ``shift=3.0``. Computed in float64 (diffusers: float32). Shape (K,); the
    trailing 0 diffusers appends is symsched's implicit final step. ValueError naming ``shift`` when the shift
    is so far from 1 that levels merge (or reach t = 0) in float64, naming ``num_train_timesteps`` when it is 1 and
    ``K > 1`` (one training timestep: every level is t = 1); ValueError / ArgumentTypeError for ``K`` or
    ``num_train_timesteps`` not a positive integer (``10.0`` too) or beyond MAX_STEPS / MAX_TRAIN_TIMESTEPS.
    """
    K = _pos_int(K, "K")
    s = _positive(shift, "shift")
    T = _pos_int(num_train_timesteps, "num_train_timesteps", MAX_TRAIN_TIMESTEPS)
    if T == 1 and K > 1:  # sigma_min = shift(1/T) = 1 = sigma_max: every level is t = 1, whatever the shift
        raise ValueError(f"num_train_timesteps must be at least 2 for K={K} > 1 steps (got 1): with one training "
                         "timestep sigma_min = sigma_max = 1, so every level is t = 1")
    t_min = float(_time_shift(np.array([1.0 / T]), s)[0])
    t = _time_shift(np.linspace(1.0, t_min, K), s)
    return _check_flow_times(t, f"flow_match_t(K={K}, shift={s:g})", "shift must be closer to 1")


@numpy_error_defaults
def flux_t(
    K: int, *, mu: Optional[float] = None, image_seq_len: Optional[int] = None, base_shift: float = 0.5,
    max_shift: float = 1.15, base_seq_len: int = 256, max_seq_len: int = 4096,
) -> Array:
    r"""Flow times of the Flux pipeline: ``linspace(1, 1/K, K)`` shifted by :math:`t' = e^\mu/(e^\mu + 1/t - 1)`.

    diffusers ``FluxPipeline.__call__`` passes ``sigmas = np.linspace(1.0, 1 / K, K)`` and ``mu`` to
    ``FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True).set_timesteps`` (``time_shift_type=
    "exponential"``, the default), with ``mu = calculate_shift(image_seq_len, ...)`` (:func:`flux_mu`). Give
    ``mu`` or ``image_seq_len`` (e.g. :func:`flux_image_seq_len` (1024, 1024) = 4096 tokens, mu = 1.15).
    Shape (K,), noisiest first (``t_0 = 1``). Exact for any finite ``mu`` (no ``exp(mu)`` overflow: a logistic
    form beyond |mu| ~ 708). Raises ValueError when neither or both of ``mu`` and ``image_seq_len`` are given,
    for ``K`` not a positive integer, a non-finite ``mu``, a bad ``image_seq_len`` (as :func:`flux_mu`), and naming
    ``mu`` (or ``image_seq_len``, when that was given) when levels merge (or reach t = 0) in float64. Source:
    diffusers ``pipelines/flux/pipeline_flux.py``, ``schedulers/scheduling_flow_match_euler_discrete.py``.
    """
    K = _pos_int(K, "K")
    if (mu is None) == (image_seq_len is None):
        raise ValueError("flux_t: give exactly one of mu and image_seq_len")
    given_mu = mu is not None
    if mu is None:
        mus = flux_mu(image_seq_len, base_shift=base_shift, max_shift=max_shift, base_seq_len=base_seq_len,
                      max_seq_len=max_seq_len)
        if np.ndim(mus) != 0:
            raise ValueError(f"image_seq_len must be one token count for flux_t (got shape {np.shape(mus)})")
        mu = float(mus)
    m = _real(mu, "mu")
    t = _time_shift_log(np.linspace(1.0, 1.0 / K, K), m)  # e^mu / (e^mu + 1/t - 1) for any finite mu
    if given_mu:
        what, fix = f"mu={m:g}", "mu must be closer to 0"
    else:  # (break-test 7 December: this blamed mu, which the caller never passed)
        what = f"image_seq_len={image_seq_len!r}, which gives mu={m:g}"
        fix = f"use a {'smaller' if m > 0 else 'larger'} image_seq_len (mu = flux_mu(image_seq_len) closer to 0)"
    return _check_flow_times(t, f"flux_t(K={K}, {what})", fix)


def _check_flow_times(t: Array, what: str, fix: str) -> Array:
    """Shifted flow times, refused (naming ``what``) unless strictly decreasing in (0, 1] from t = 1.

    A shift far from 1 moves levels to t = 1 or t = 0 in float64 (``1 - t`` or ``t`` below ~1e-16 / 1e-324):
    they are then no distinct levels of a schedule, which no float64 value can represent.
    """
    bad = np.flatnonzero((t <= 0) | np.append(False, np.diff(t) >= 0))
    if bad.size:
        i = int(bad[0])
        where = "rounds to 0 (alpha_bar = 1)" if t[i] <= 0 else f"rounds to t[{i - 1}] = {float(t[i - 1])!r}"
        raise ValueError(f"{what}: the shifted flow time t[{i}] {where} in float64, so the {t.size} levels are not "
                         f"distinct; {fix}")
    return t


@numpy_error_defaults
def flow_schedule(name: str, steps: int, *, shift: Optional[float] = None, mu: Optional[float] = None,
                  image_seq_len: Optional[int] = None) -> Array:
    r"""A named flow-matching schedule as ``alpha_bar`` (first level 0), shape (steps,).

    * ``"flow-uniform"``: :func:`uniform_flow_t`;
    * ``"flow-sd3"``: :func:`flow_match_t` with ``shift`` (None: 3.0, SD3's config);
    * ``"flow-flux"``: :func:`flux_t` with ``mu`` or ``image_seq_len`` (neither: 4096 tokens, 1024 x 1024).

    Converted with :func:`flow_t_to_alpha_bar` (``t = 1 -> alpha_bar = 0``). An option the named schedule does
    not use is refused rather than ignored: ``shift`` applies to ``"flow-sd3"`` only, ``mu`` and ``image_seq_len``
    to ``"flow-flux"`` only (and not both at once).

    Raises
    ------
    ValueError
        Unknown ``name``; ``steps`` not in [1, MAX_STEPS]; ``shift`` not a positive real; ``image_seq_len`` not
        positive and finite; ``mu`` not finite; an option given for a schedule that does not use it (naming it);
        levels that merge in float64 (naming the shift, ``mu`` or ``image_seq_len``).
    ArgumentTypeError
        An argument of the wrong type (``steps=10.0``, ``shift="3"``); a TypeError and a ValueError.

    Source: docs/model.md §10; Esser et al., SD3 (arXiv 2403.03206) for the shifted flow times.
    """
    check_choice(name, "name", FLOW_SCHEDULES)
    K = _pos_int(steps, "steps")
    if shift is not None:
        _positive(shift, "shift")
        if name != "flow-sd3":
            hint = "; 'flow-flux' takes mu (its shift is e^mu) or image_seq_len" if name == "flow-flux" else ""
            raise ValueError(f"shift applies to 'flow-sd3' only (got shift={_show(shift)} for {name!r}, which would "
                             f"ignore it){hint}")
    for opt, value in (("mu", mu), ("image_seq_len", image_seq_len)):
        if value is not None and name != "flow-flux":
            raise ValueError(f"{opt} applies to 'flow-flux' only (got {opt}={_show(value)} for {name!r}, which would "
                             "ignore it)")
    if mu is not None and image_seq_len is not None:
        raise ValueError("flow_schedule: give at most one of mu and image_seq_len (mu would override image_seq_len)")
    if image_seq_len is not None:
        flux_mu(image_seq_len)  # checks image_seq_len
    if name == "flow-uniform":
        return as_levels(flow_t_to_alpha_bar(uniform_flow_t(K)), f"{name} alpha_bar")
    if name == "flow-sd3":
        s = 3.0 if shift is None else shift
        t, what = flow_match_t(K, shift=s), f"shift={_real(s, 'shift'):g}"
    else:
        seq = 4096 if image_seq_len is None else image_seq_len
        t = flux_t(K, mu=mu) if mu is not None else flux_t(K, image_seq_len=seq)
        what = f"mu={_real(mu, 'mu'):g}" if mu is not None else f"image_seq_len={_show(seq)}"
    try:
        return as_levels(flow_t_to_alpha_bar(t), f"{name} alpha_bar")
    except ValueError as exc:  # a level so close to t = 0 that alpha_bar rounds to 1: the shift's doing
        raise ValueError(f"flow_schedule({name!r}, {K}) with {what}: {exc}") from None


@numpy_error_defaults
def loglinear_interp(values: ArrayLike, num: int) -> Array:
    r"""Log-linear resampling of a decreasing positive sequence to ``num`` points.

    The Align-Your-Steps recipe: ``np.interp(linspace(0, 1, num), linspace(0, 1, n),
    log(values[::-1]))``, exponentiated and reversed (Sabour et al. 2024, arXiv 2404.14507, and the
    authors' ``loglinear_interp``).

    Parameters
    ----------
    values : array_like, shape (n,), n >= 2
        Positive, strictly decreasing values (e.g. sigmas, noisiest first).
    num : int
        Number of output points (>= 1).

    Returns
    -------
    ndarray, shape (num,), float64, decreasing

    Raises
    ------
    ValueError
        If ``values`` is not 1-D with at least 2 finite, positive, strictly decreasing entries, or ``num`` is not
        in [1, MAX_STEPS].
    """
    v = _float_array(values, "values")
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"values must be 1-D with at least 2 entries (got shape {v.shape})")
    if np.any(v <= 0):
        raise ValueError("values must be positive (log-linear interpolation)")
    if np.any(np.diff(v) >= 0):
        raise ValueError("values must be strictly decreasing")
    return _loglinear(v, _pos_int(num, "num"))


def _loglinear(v: Array, num: int) -> Array:
    """:func:`loglinear_interp` of checked values (``num`` unchecked: callers bound their own counts)."""
    xs = np.linspace(0.0, 1.0, v.size)
    ys = np.log(v[::-1])
    new = np.interp(np.linspace(0.0, 1.0, num), xs, ys)
    return np.exp(new)[::-1].copy()


@numpy_error_defaults
def align_your_steps(K: int = 10, *, model: str = "sd15") -> Array:
    r"""Align-Your-Steps schedule (Sabour et al. 2024, arXiv 2404.14507) for K sampling steps.

    The published 10-step table has 11 sigmas (:data:`AYS_SIGMAS`). As in the authors' recipe,
    K steps use K+1 sigmas: the table itself when K = 10, else :func:`loglinear_interp` of the
    table to K+1 points. The last of the K+1 sigmas is the step to (nearly) clean, which samplers
    set to 0 and symsched takes as the implicit final step; the first K become the levels.
    So K=10 gives sigmas 14.6146412293 ... 0.1515232662 (SD1.5): the training sigmas at the published
    AYS timesteps 999, 850, ..., 24 (see :data:`AYS_SIGMAS`). diffusers' ``AysSchedules`` sigma lists
    are the published continuous-time sigmas, rounded to 3 decimals, followed by a final 0.0 (the
    implicit clean step); they differ from these by up to 0.3 % (SD1.5) / 1.4 % (SDXL).

    Parameters
    ----------
    K : int
        Number of levels (sampling steps).
    model : {"sd15", "sdxl"}

    Returns
    -------
    ndarray, shape (K,), float64
        ``alpha_bar = 1/(1+sigma^2)``, noisiest first.

    Raises
    ------
    ValueError
        ``K`` outside [1, MAX_STEPS] or ``model`` not ``"sd15"``/``"sdxl"``.
    """
    K = _pos_int(K, "K")
    check_choice(model, "model", tuple(AYS_SIGMAS))
    table = np.asarray(AYS_SIGMAS[model], dtype=np.float64)
    sig = table.copy() if K + 1 == table.size else _loglinear(table, K + 1)  # K <= MAX_STEPS: K + 1 points
    return _levels_from_sigmas(sig[:K], f"align_your_steps(K={K}, model={model!r})")


# ---------------------------------------------------------------------------------------------
# single entry point
# ---------------------------------------------------------------------------------------------


@numpy_error_defaults
def standard_schedule(
    name: str,
    steps: int,
    *,
    grid: Optional[ArrayLike] = None,
    spacing: Optional[str] = None,
    steps_offset: int = 0,
) -> Array:
    r"""Named standard schedule of ``steps`` levels, noisiest first: shape (steps,).

    How the K levels are chosen:

    * DDPM-grid names ``"linear-<spacing>"``, ``"scaled_linear-<spacing>"``, ``"cosine"``,
      ``"sigmoid"``: K timesteps of the named beta family's training grid (:func:`training_grid`,
      1000 steps, or ``len(grid)`` steps when ``grid`` is given) chosen by :func:`timesteps` with
      the spacing (the name's suffix; for ``"cosine"``/``"sigmoid"`` the ``spacing`` argument,
      default ``"leading"`` as in diffusers), then ``alpha_bar = alphas_cumprod[timesteps]``
      reversed into noisiest-first order (:func:`from_grid`). ``steps_offset`` applies to leading
      spacing. The name always means its own beta family: ``"cosine"`` on a linear grid gives the
      cosine schedule's levels moved onto the linear grid (below), never the linear grid's
      timesteps. On the family's own grid this is exactly diffusers' ``set_timesteps``; to apply a
      spacing to another model's grid, use ``from_grid(grid, timesteps(K, spacing=...))``.
    * ``"karras"``, ``"kl_optimal"``: :func:`karras` / :func:`kl_optimal` with EDM end points
      (0.002, 80), or, if ``grid`` is given, the grid's smallest and largest sigma.
    * ``"shifted"``: :func:`shifted` with its defaults (rectified-flow base, shift 3, SD3); with
      ``grid``, the base's log-SNR clipping range is chosen so that the shifted levels span the
      grid's log-SNR range.
    * ``"ays-sd15"``, ``"ays-sdxl"``: :func:`align_your_steps`.
    * flow matching, :data:`FLOW_SCHEDULES` (not in :data:`STANDARD_SCHEDULES`): ``"flow-uniform"``,
      ``"flow-sd3"``, ``"flow-flux"`` (:func:`flow_schedule`); their first level is ``alpha_bar = 0``.

    A zero-terminal-SNR ``grid`` (last entry 0, :func:`training_grid` with ``rescale_zero_snr=True``) is
    accepted: its level 0 is a grid level like any other (``"karras"``/``"kl_optimal"`` then use the
    largest finite grid sigma as ``sigma_max``). It is not the beta family's own grid: a DDPM-grid name's levels
    are snapped onto it like any name's; diffusers' timesteps on it are ``from_grid(grid, timesteps(K, ...))``.

    A given ``grid`` restricts the levels to grid levels, for every name: each level of the named
    schedule moves to the nearest grid level in log-SNR (:func:`nearest_timesteps`); if two levels
    land on the same grid level a :class:`GridCollision` (a ValueError) says so. A flow schedule's
    pure-noise level thus becomes the grid's noisiest level (0 only on a zero-terminal-SNR grid).

    Source: diffusers ``schedulers/scheduling_ddim.py`` ``set_timesteps`` (spacings, ``steps_offset``);
    the families' own functions (:func:`karras`, :func:`kl_optimal`, :func:`shifted`,
    :func:`align_your_steps`, :func:`flow_schedule`) cite their papers.

    Parameters
    ----------
    name : str
        One of :data:`STANDARD_SCHEDULES` or :data:`FLOW_SCHEDULES`.
    steps : int
        K, the number of levels (sampling steps).
    grid : array_like, shape (T,), optional
        Training-order grid ``alphas_cumprod`` (strictly decreasing in t), any length T >= K.
    spacing : {"leading", "trailing", "linspace"}, optional
        Only for ``"cosine"`` and ``"sigmoid"``, or equal to the name's own suffix.
    steps_offset : int
        Offset for leading spacing (DDPM-grid names only).

    Returns
    -------
    ndarray, shape (K,), float64
        Strictly increasing levels in [0, 1), noisiest first (passes ``as_levels``); the first is 0 only for
        a flow name (without ``grid``) or on a zero-terminal-SNR grid.

    Raises
    ------
    ValueError
        ``name`` unknown; ``steps`` not a positive integer or above ``MAX_STEPS`` = 10000; ``grid`` not a
        strictly decreasing training grid in [0, 1) or with fewer than ``steps`` levels; ``spacing`` unknown,
        given for a name it does not apply to, or conflicting with the name's suffix; ``steps_offset``
        negative or given for a non-DDPM-grid name; :class:`GridCollision` when two levels snap to one
        grid level. TypeError (:class:`ArgumentTypeError`) for a wrong type.
    """
    check_choice(name, "name", STANDARD_SCHEDULES + FLOW_SCHEDULES)
    K = _pos_int(steps, "steps")
    g = None if grid is None else _as_grid(grid, "grid")
    if g is not None:  # (every name: K distinct grid levels)
        _check_grid_size(g, K)
    if name in FLOW_SCHEDULES:
        if spacing is not None or _nonneg_int(steps_offset, "steps_offset") != 0:
            raise ValueError(f"spacing and steps_offset apply only to DDPM-grid schedules, not to {name!r}")
        ab = flow_schedule(name, K)
        return ab if g is None else _snapped(name, ab, g)
    if spacing is not None:
        check_choice(spacing, "spacing", SPACINGS)
    if name in _GRID_NAMES:
        family, own = _GRID_NAMES[name]
        if own is not None and spacing is not None and spacing != own:
            raise ValueError(f"spacing={spacing!r} conflicts with schedule {name!r} (its spacing is {own!r})")
        sp = own or spacing or "leading"
        own_grid = training_grid(family, num_train_timesteps=1000 if g is None else g.size)
        if K > own_grid.size:  # (timesteps would name its own argument, num_steps)
            raise ValueError(f"steps: {name!r} takes timesteps of its {own_grid.size}-step training grid, so at most "
                             f"{own_grid.size} steps (got {K}); give a longer grid")
        ab = from_grid(own_grid, timesteps(K, spacing=sp, num_train_timesteps=own_grid.size, steps_offset=steps_offset))
        return ab if g is None else _snapped(name, ab, g)
    if spacing is not None:
        raise ValueError(f"spacing applies only to DDPM-grid schedules, not to {name!r}")
    if _nonneg_int(steps_offset, "steps_offset") != 0:
        raise ValueError(f"steps_offset applies only to DDPM-grid schedules, not to {name!r}")
    if g is not None and name in ("karras", "kl_optimal", "shifted"):  # the grid's ends give the noise range
        finite = "finite " if name != "shifted" else ""  # karras/kl_optimal span sigmas, shifted log-SNR (to -inf)
        count = int(np.count_nonzero(g > 0)) if finite else g.size
        if count < 2:
            raise ValueError(f"grid: {name!r} spans the grid's noise range (from its noisiest to its cleanest "
                             f"{finite}level), but the grid holds {count} {finite}level(s); give a grid of at least 2")
    if name in ("karras", "kl_optimal"):
        fn = karras if name == "karras" else kl_optimal
        if g is None:
            ab = fn(K)
        else:
            sg = alpha_bar_to_sigmas(g)
            sg = sg[np.isfinite(sg)]  # a zero-terminal-SNR grid: the largest finite sigma
            ab = fn(K, sigma_min=float(sg[0]), sigma_max=float(sg[-1]))
    elif name == "shifted":
        if g is None:
            ab = shifted(K)
        else:  # clip the base so that the shifted levels span the grid's log-SNR range
            lg = alpha_bar_to_log_snr(g)
            d = 2.0 * math.log(_DEFAULT_SHIFT)
            ab = shifted(K, shift=_DEFAULT_SHIFT, log_snr_min=float(lg[-1]) + d, log_snr_max=float(lg[0]) + d)
    else:
        ab = align_your_steps(K, model=name.split("-", 1)[1])
    if g is not None:
        ab = _snapped(name, ab, g)
    return as_levels(ab, f"{name} schedule")


def _snapped(name: str, ab: Array, grid: Array) -> Array:
    """The named schedule's levels moved to their nearest grid levels (GridCollision if two coincide)."""
    try:
        return from_grid(grid, nearest_timesteps(ab, grid))
    except GridCollision as exc:
        raise GridCollision(f"{name} schedule on the given grid: {exc}", exc.collision) from None
