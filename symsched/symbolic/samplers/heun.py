"""VE Heun, EDM Algorithm 1 deterministic (Karras et al. 2022, arXiv 2206.00364).

d_t = (x - D(x; sigma_t))/sigma_t, x' = x + (sigma_s - sigma_t) d_t,
x_s = x + (sigma_s - sigma_t)(d_t + d'_s)/2 with d'_s at (x', sigma_s); Euler on the step to 0.
"""

from __future__ import annotations

import sympy as sp

from ..forward import ve_denoiser
from ..step import Sampler, Step
from ..symbols import sigma_s, sigma_t


def _slope(s: sp.Expr) -> sp.Expr:
    """d(x; sigma) / x = (1 - S/(S + sigma^2)) / sigma."""
    return (1 - ve_denoiser(s)) / s


def _heun(s_t: sp.Expr, s_s: sp.Expr) -> Step:
    d_t = _slope(s_t)  # (1) slope at sigma_t
    x_pred = 1 + (s_s - s_t) * d_t  # (2) Euler predictor
    d_s = _slope(s_s) * x_pred  # (3) slope at sigma_s of the predictor
    gain = 1 + (s_s - s_t) * (d_t + d_s) / 2  # (4) trapezoid
    return Step(gain=gain, noise=sp.Integer(0))


def _euler_to_zero(s_t: sp.Expr) -> Step:
    gain = 1 + (0 - s_t) * _slope(s_t)  # EDM: no 2nd-order correction when sigma_s = 0
    return Step(gain=gain, noise=sp.Integer(0))


def sampler() -> Sampler:
    """Deterministic EDM Heun (2nd order)."""
    return Sampler(
        name="heun",
        process="ve",
        title="VE Heun (EDM, 2nd order)",
        citation="Karras, Aittala, Aila, Laine. Elucidating the Design Space of Diffusion Models (arXiv 2206.00364), Algorithm 1",
        description=(
            "Heun's method on the probability-flow ODE: an Euler predictor, then the trapezoid of "
            "the slopes at both levels; the last step to $\\sigma=0$ is a plain Euler step."
        ),
        step=_heun(sigma_t, sigma_s),
        final=_euler_to_zero(sigma_t),
    )
