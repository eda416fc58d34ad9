"""VE Euler step of the probability-flow ODE = VE DDIM (Karras et al. 2022, arXiv 2206.00364).

x_s = D(x_t; sigma_t) + (sigma_s / sigma_t) (x_t - D(x_t; sigma_t)).
"""

from __future__ import annotations

import sympy as sp

from ..forward import ve_denoiser
from ..step import Sampler, Step
from ..symbols import sigma_s, sigma_t


def _step(s_t: sp.Expr, s_s: sp.Expr) -> Step:
    d = ve_denoiser(s_t)  # (1) D = S/(S + sigma_t^2) x_t
    gain = d + s_s / s_t * (1 - d)  # (2) x_s = D + (sigma_s/sigma_t)(x_t - D)
    return Step(gain=gain, noise=sp.Integer(0))


def sampler() -> Sampler:
    """Deterministic VE Euler (identical to VE DDIM)."""
    return Sampler(
        name="euler",
        process="ve",
        title="VE Euler (= VE DDIM)",
        citation="Karras, Aittala, Aila, Laine. Elucidating the Design Space of Diffusion Models (arXiv 2206.00364)",
        description=(
            "One Euler step of the probability-flow ODE $dx/d\\sigma = (x - D(x;\\sigma))/\\sigma$; "
            "it keeps the denoised estimate and rescales the residual noise."
        ),
        step=_step(sigma_t, sigma_s),
        final=_step(sigma_t, sp.Integer(0)),
    )
