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

__all__ = ["gaussian_denoiser", "denoising_mse"]

Denoiser = Callable[[NDArray[np.float64], float], NDArray[np.float64]]


def gaussian_denoiser(train: NDArray[np.float64]) -> Denoiser:
    """Posterior mean of ``N(μ, Σ)`` fitted to ``train`` (N, H, W): ``(x_t, ᾱ) -> x̂0`` (module docstring)."""
    X = np.asarray(train, dtype=np.float64).reshape(train.shape[0], -1)
    mu = X.mean(0)
    lam, U = np.linalg.eigh(np.cov(X.T, bias=True))
    lam = np.clip(lam, 0.0, None)

    def denoise(x_t: NDArray[np.float64], alpha_bar: float) -> NDArray[np.float64]:
        ab = float(alpha_bar)
        x = x_t.reshape(x_t.shape[0], -1)
        gain = np.sqrt(ab) * lam / (ab * lam + (1.0 - ab))  # per principal direction
        return (mu + ((x - np.sqrt(ab) * mu) @ U * gain) @ U.T).reshape(x_t.shape)

    return denoise


def denoising_mse(denoiser: Denoiser, x0: NDArray[np.float64], alpha_bar: float, *, seed: int = 0) -> float:
    """Mean squared error per pixel of ``denoiser(√ᾱ x0 + √(1-ᾱ) ε, ᾱ)`` against ``x0`` (ε from ``seed``)."""
    ab = float(alpha_bar)
    eps = np.random.default_rng(seed).standard_normal(x0.shape)
    x_t = np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * eps
    return float(np.mean((denoiser(x_t, ab) - x0) ** 2))
