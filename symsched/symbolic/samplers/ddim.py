"""DDIM(eta), Song, Meng & Ermon 2021 (arXiv 2010.02502), eq. (12), with the exact denoiser.

x_s = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sigma_t^2) eps_hat + sigma_t z,
sigma_t^2 = eta^2 (1 - ab_s)/(1 - ab_t) (1 - ab_t/ab_s).
"""

from __future__ import annotations

import sympy as sp

from ..forward import vp_denoiser
from ..step import Sampler, Step
from ..symbols import alpha_bar_s, alpha_bar_t, eta


def _step(ab_t: sp.Expr, ab_s: sp.Expr) -> Step:
    x0_hat, eps_hat = vp_denoiser(ab_t)
    sigma2 = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)  # (1) DDIM noise variance
    gain = sp.sqrt(ab_s) * x0_hat + sp.sqrt(1 - ab_s - sigma2) * eps_hat  # (2) mean coefficient
    return Step(gain=gain, noise=sigma2, parts={r"\sigma_t^2": sigma2})


def sampler() -> Sampler:
    """DDIM with eta as a symbol (eta = 0 deterministic, eta = 1 ancestral-like)."""
    return Sampler(
        name="ddim",
        process="vp",
        title="DDIM",
        citation="Song, Meng, Ermon. Denoising Diffusion Implicit Models (arXiv 2010.02502)",
        description=(
            "DDIM moves the denoised estimate to the next noise level and re-adds a fraction of the "
            "predicted noise; $\\eta$ trades the predicted noise for fresh noise."
        ),
        step=_step(alpha_bar_t, alpha_bar_s),
        final=_step(alpha_bar_t, sp.Integer(1)),
        params=(eta,),
    )
