"""Input validation shared by every public function.

Every rule raises :class:`ValueError` whose message names the argument and the rule broken,
so bad input never turns into a silent NaN further down.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "as_spectrum",
    "as_levels",
    "as_sigmas",
    "check_choice",
    "check_eta",
    "as_positive_int",
    "check_same_shape",
    "as_real",
    "as_positive",
]


def _as_float_array(value: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
    return arr


def as_spectrum(spectrum: ArrayLike, name: str = "spectrum") -> NDArray[np.float64]:
    """Return ``spectrum`` as a float64 array of mode variances ``S >= 0`` (any shape, not empty)."""
    arr = _as_float_array(spectrum, name)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    if np.any(arr < 0):
        bad = float(arr.min())
        raise ValueError(f"{name} must be non-negative: mode variances S >= 0 (minimum is {bad:g})")
    # -0.0 is a valid zero mode; normalise it so that log/sqrt see +0.0
    return arr + 0.0


def as_levels(alpha_bar: ArrayLike, name: str = "alpha_bar", *, allow_zero: bool = True) -> NDArray[np.float64]:
    """Return 1-D strictly increasing noise levels in [0, 1) (``allow_zero``) or (0, 1), noisiest first.

    ``alpha_bar = 0`` (zero terminal SNR, pure noise) can only be the first level.
    """
    arr = _as_float_array(alpha_bar, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (got shape {arr.shape})")
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one level")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    if np.any(arr < 0) or np.any(arr >= 1) or (not allow_zero and np.any(arr == 0)):
        interval = "[0, 1)" if allow_zero else "the open interval (0, 1)"
        raise ValueError(
            f"{name} levels must lie in {interval} (got min {arr.min():.17g}, max {arr.max():.17g})"
        )
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        i = int(np.argmin(np.diff(arr)))
        raise ValueError(
            f"{name} must be strictly increasing (noisiest first): "
            f"{name}[{i}]={arr[i]!r} >= {name}[{i + 1}]={arr[i + 1]!r}"
        )
    return arr


def as_sigmas(sigmas: ArrayLike, name: str = "sigmas", *, allow_inf: bool = True,
              allow_trailing_zero: bool = True) -> NDArray[np.float64]:
    """Return 1-D strictly decreasing, positive VE noise levels, noisiest first.

    ``inf`` (zero terminal SNR) is accepted as the first level when ``allow_inf``; a trailing 0 (as
    k-diffusion's ``sigmas`` end) is dropped when ``allow_trailing_zero`` (the step to 0 is implicit).
    """
    arr = _as_float_array(sigmas, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (got shape {arr.shape})")
    if allow_trailing_zero and arr.size > 1 and arr[-1] == 0:
        arr = arr[:-1]
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one level")
    if np.any(np.isnan(arr)) or np.any(np.isneginf(arr)) or (np.any(np.isposinf(arr)) and not allow_inf):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    if arr.size > 1 and np.any(np.isposinf(arr[1:])):
        raise ValueError(f"{name}: only the first (noisiest) level may be inf (zero terminal SNR)")
    if np.any(arr <= 0):
        raise ValueError(
            f"{name} must be positive (the final step to sigma=0 is implicit; got min {arr.min():g})"
        )
    if arr.size > 1 and np.any(np.diff(arr) >= 0):
        i = int(np.argmax(np.diff(arr)))
        raise ValueError(
            f"{name} must be strictly decreasing (noisiest first): "
            f"{name}[{i}]={arr[i]!r} <= {name}[{i + 1}]={arr[i + 1]!r}"
        )
    return arr


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))} (got {value!r})")
    return str(value)


def check_eta(eta: Any, name: str = "eta") -> float:
    """DDIM stochasticity: a finite number in [0, 1] (beyond 1 the DDIM direction term is imaginary)."""
    try:
        val = float(eta)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1] (got {eta!r})") from None
    if not np.isfinite(val) or val < 0 or val > 1:
        raise ValueError(f"{name} must lie in [0, 1] (got {eta!r})")
    return val


def as_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer (got {value!r})")
    return int(value)


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {name_a} has shape {a.shape} but {name_b} has shape {b.shape}")


def as_real(value: Any, name: str) -> float:
    """A finite real number (booleans are refused)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a real number (got {value!r})")
    try:
        val = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number (got {value!r})") from None
    if not np.isfinite(val):
        raise ValueError(f"{name} must be finite (got {value!r})")
    return val


def as_positive(value: Any, name: str) -> float:
    """A finite real number > 0."""
    val = as_real(value, name)
    if val <= 0:
        raise ValueError(f"{name} must be positive (got {value!r})")
    return val
