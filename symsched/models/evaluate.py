"""Denoising checks for learned models: held-out MSE against the Gaussian (Wiener) posterior mean.

The Gaussian baseline fits ``N(μ, Σ)`` to the training patches (mean and full 256×256 covariance,
the PCA spectrum with its basis, docs/model.md §1) and denoises with its exact posterior mean,
``x̂0 = μ + √ᾱ Σ (ᾱ Σ + (1-ᾱ) I)⁻¹ (x_t - √ᾱ μ)``: the best *linear* (affine) denoiser for that
second-order model (docs/model.md §3 with the mean added). A learned denoiser that beats it on held-out
patches has learned structure beyond the spectrum.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import NDArray

from .._validate import _show, as_real, as_real_array, as_seed

__all__ = ["gaussian_denoiser", "denoising_mse"]

Denoiser = Callable[[NDArray[np.float64], float], NDArray[np.float64]]


def gaussian_denoiser(train: NDArray[np.float64]) -> Denoiser:
    """Posterior mean of ``N(μ, Σ)`` fitted to ``train`` (N, H, W): ``(x_t, ᾱ) -> x̂0`` (module docstring).

    Per principal direction of variance λ the gain on ``x_t - √ᾱ μ`` is ``√ᾱ λ / (ᾱ λ + 1 - ᾱ)``, taken as its
    limit 0 where λ = 0 and ᾱ = 1 (a direction without variance keeps the mean).

    Raises
    ------
    ValueError
        ``train`` with fewer than 2 samples, no pixels, or a NaN or inf; (returned denoiser) ``alpha_bar`` outside
        [0, 1], ``x_t`` whose trailing shape is not ``train``'s or with a NaN or inf.
    ArgumentTypeError
        (a TypeError and a ValueError) ``train`` not an array of real numbers, ``alpha_bar`` not a real number,
        (returned denoiser) ``x_t`` not an array of real numbers.

    Source: the posterior (conditional) mean of jointly Gaussian ``x0`` and ``x_t``: docs/model.md §1 (the PCA
    spectrum and basis) and §3 (the Wiener denoiser), with the mean ``μ`` added; ``Σ`` the biased (1/N) sample
    covariance (``numpy.cov(..., bias=True)``), diagonalised by ``numpy.linalg.eigh``.
    """
    X = as_real_array(train, "train")
    if X.ndim < 2 or X.shape[0] < 2 or X[0].size == 0:
        raise ValueError(f"train must be an array (N, ...) of N >= 2 non-empty samples (got shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise ValueError("train must be finite (found NaN or inf)")
    sample_shape = X.shape[1:]
    X = X.reshape(X.shape[0], -1).astype(np.float64)
    mu = X.mean(0)
    lam, U = np.linalg.eigh(np.cov(X.T, bias=True).reshape(X.shape[1], X.shape[1]))
    lam = np.clip(lam, 0.0, None)

    def denoise(x_t: NDArray[np.float64], alpha_bar: float) -> NDArray[np.float64]:
        ab = as_real(alpha_bar, "alpha_bar")
        if not 0.0 <= ab <= 1.0:
            raise ValueError(f"alpha_bar must lie in [0, 1] (got {_show(alpha_bar)})")
        x_t = as_real_array(x_t, "x_t")  # ArgumentTypeError for complex, boolean or string arrays
        if not np.all(np.isfinite(x_t)):
            raise ValueError("x_t must be finite (found NaN or inf)")
        if x_t.ndim < 1 or x_t.shape[1:] != tuple(sample_shape):
            raise ValueError(f"x_t must have shape (batch, {', '.join(map(str, sample_shape))}) (got {x_t.shape})")
        x = x_t.reshape(x_t.shape[0], -1)
        den = ab * lam + (1.0 - ab)
        gain = np.divide(np.sqrt(ab) * lam, den, out=np.zeros_like(lam), where=den > 0)
        return (mu + ((x - np.sqrt(ab) * mu) @ U * gain) @ U.T).reshape(x_t.shape)

    return denoise


def denoising_mse(denoiser: Denoiser, x0: NDArray[np.float64], alpha_bar: float, *, seed: int = 0) -> float:
    """Mean squared error per pixel of ``denoiser(√ᾱ x0 + √(1-ᾱ) ε, ᾱ)`` against ``x0`` (ε from ``seed``).

    ``alpha_bar`` is a noise level in [0, 1]: 0 is pure noise, 1 the clean level (``x_t = x0``).

    Raises
    ------
    ValueError
        ``alpha_bar`` outside [0, 1] or not finite, ``x0`` empty or not finite, a negative ``seed``; a batch the
        denoiser refuses naming ``x_t`` (its shape, its values) is reported as about ``x0``, any other error of the
        denoiser passes unchanged; a denoiser output not of the shape of ``x0`` or not finite.
    ArgumentTypeError
        (a TypeError and a ValueError) ``alpha_bar`` not a real number (``"0.5"``, ``True``, ``None``), ``x0`` not
        an array of real numbers, a complex or boolean denoiser output.

    Source: the L2 denoising error of Karras et al. 2022 (arXiv 2206.00364), eq. 2, in VP coordinates, with the
    forward process ``x_t = √ᾱ x0 + √(1-ᾱ) ε`` of Ho et al. 2020 (arXiv 2006.11239), eq. 4 (ε drawn by
    ``numpy.random.default_rng(seed)``).
    """
    ab = as_real(alpha_bar, "alpha_bar")
    if not 0.0 <= ab <= 1.0:
        raise ValueError(f"alpha_bar must lie in [0, 1] (got {_show(alpha_bar)})")
    x0 = as_real_array(x0, "x0")
    if x0.ndim < 1 or x0.shape[0] < 1 or x0.size == 0:
        raise ValueError(f"x0 must be a batch (N, ...) of N >= 1 non-empty samples (got shape {x0.shape})")
    if not np.all(np.isfinite(x0)):
        raise ValueError("x0 must be finite (found NaN or inf)")
    eps = np.random.default_rng(as_seed(seed)).standard_normal(x0.shape)
    x_t = np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * eps
    from .._signal_samplers import PredictionModel

    try:  # its output checked as the samplers check it: real, the shape of x_t, finite
        x0_hat = PredictionModel(denoiser, "sample").predict(x_t, ab)
    except ValueError as err:  # a refusal naming x_t (the noised x0, the denoiser's argument) is about x0;
        if "x_t" not in str(err) or type(err) is not ValueError:  # any other error is the denoiser's own: untouched
            raise
        raise ValueError(f"x0 (shape {x0.shape}): the denoiser refused its noised batch x_t: {err}") from err
    return float(np.mean((x0_hat - x0) ** 2))
