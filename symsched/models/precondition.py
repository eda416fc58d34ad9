r"""EDM preconditioning (Karras et al. 2022, arXiv 2206.00364, Table 1) written in VP coordinates.

EDM's denoiser acts on the VE variable ``x_VE = x0 + σ n`` with ``σ² = (1 - ᾱ)/ᾱ``:
``D(x_VE; σ) = c_skip x_VE + c_out F(c_in x_VE; c_noise)``, ``c_skip = σ_d²/(σ² + σ_d²)``,
``c_out = σ σ_d/√(σ² + σ_d²)``, ``c_in = 1/√(σ² + σ_d²)``, ``c_noise = ln(σ)/4``. A VP batch is
``x_t = √ᾱ x_VE`` (docs/model.md §2); multiplying numerator and denominator by ``ᾱ`` gives, with
``r = 1 - ᾱ + ᾱ σ_d²``,

    x̂0 = c_skip·x_t + c_out·F(c_in·x_t; c_noise),
    c_skip = σ_d² √ᾱ / r,   c_out = σ_d √(1 - ᾱ) / √r,   c_in = 1 / √r,

every one finite on ``[0, 1]``: at ``ᾱ = 0`` (pure noise) ``x̂0 = σ_d F(x_t)``, a bounded output,
where an ε-prediction network's ``x̂0 = (x_t - √(1-ᾱ) ε̂)/√ᾱ`` divides its error by ``√ᾱ``.
The noise condition is EDM's ``ln(σ)/4 = -ℓ/8`` (``ℓ`` the log-SNR) with ``ℓ`` clipped to the
training grid's range, so ``ᾱ = 0`` is conditioned like the noisiest training level.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import ArgumentTypeError, as_real

__all__ = ["coefficients", "log_snr", "grid_log_snr_range", "check_sigma_data", "SIGMA_DATA_RANGE"]

#: Accepted ``σ_d`` (the data's RMS: 0.44 for ``patches16`` in [-1, 1]), inclusive. Within it every coefficient and
#: ``1/c_out`` of the training target stay far inside the float32 range the network computes in.
SIGMA_DATA_RANGE = (1e-3, 1e3)


def check_sigma_data(value: Any, name: str = "sigma_data") -> float:
    """``value`` as a float in :data:`SIGMA_DATA_RANGE`; ArgumentTypeError for a non-number (a string, a boolean),
    ValueError naming ``name`` otherwise (0, a negative number, NaN, 1e300)."""
    lo, hi = SIGMA_DATA_RANGE
    try:
        val = as_real(value, name)
    except ArgumentTypeError:
        raise
    except ValueError:  # NaN or inf: the one rule below names them too
        val = math.nan
    if not lo <= val <= hi:
        raise ValueError(f"{name} must be a positive finite number in [{lo:g}, {hi:g}] (σ_d, the data's RMS; "
                         f"got {value!r})")
    return val


def log_snr(alpha_bar: ArrayLike) -> NDArray[np.float64]:
    """``ℓ = log(ᾱ/(1-ᾱ))`` for ``ᾱ`` in [0, 1): ``-inf`` at 0, no warning."""
    ab = np.asarray(alpha_bar, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(ab) - np.log1p(-ab)


def grid_log_snr_range(grid: ArrayLike) -> tuple[float, float]:
    """(lowest, highest) log-SNR of a training ``grid`` (training order: its last level is the noisiest)."""
    g = np.asarray(grid, dtype=np.float64)
    return float(log_snr(g[-1])), float(log_snr(g[0]))


def coefficients(
    alpha_bar: ArrayLike, *, sigma_data: float, log_snr_range: tuple[float, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    r"""``(c_skip, c_out, c_in, c_noise)`` for VP levels ``alpha_bar`` in [0, 1) (module docstring).

    ``c_noise = -clip(ℓ, lo, hi)/8`` with ``(lo, hi) = log_snr_range``. Each output has the shape
    of ``alpha_bar``, float64, finite (``r >= min(1, σ_d²) > 0``).
    """
    ab = np.asarray(alpha_bar, dtype=np.float64)
    sd2 = float(sigma_data) ** 2
    r = (1.0 - ab) + ab * sd2
    c_skip = sd2 * np.sqrt(ab) / r
    c_out = float(sigma_data) * np.sqrt((1.0 - ab) / r)
    c_in = 1.0 / np.sqrt(r)
    c_noise = -np.clip(log_snr(ab), *log_snr_range) / 8.0
    return c_skip, c_out, c_in, c_noise
