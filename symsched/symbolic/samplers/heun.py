"""VE Heun, EDM Algorithm 1 deterministic (Karras et al. 2022, arXiv 2206.00364).

d_t = (x - D(x; sigma_t))/sigma_t, x' = x + (sigma_s - sigma_t) d_t,
x_s = x + (sigma_s - sigma_t)(d_t + d'_s)/2 with d'_s at (x', sigma_s); Euler on the step to 0.
"""

from __future__ import annotations

from ..plan import default_plan

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
KINDS = {"step": (0, 1), "final": (0, 1)}
plan = default_plan


def build():  # noqa: ANN201 - returns a Sampler
    """Deterministic EDM Heun (2nd order)."""
    import sympy as sp

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import sigma_s, sigma_t

    x = sp.Symbol("x", real=True)
    d_t, x_pred, d_s = sp.symbols("d_t x' d_s", real=True)

    def slope(y: sp.Expr, s: sp.Expr) -> sp.Expr:
        return (y - ve_denoiser(s) * y) / s  # d(y; sigma) = (y - D(y; sigma)) / sigma

    heun = Update(
        state=(x,),
        new=(x + (sigma_s - sigma_t) * (d_t + d_s) / 2,),  # (4) trapezoid
        stages=(
            (d_t, slope(x, sigma_t)),  # (1) slope at sigma_t
            (x_pred, x + (sigma_s - sigma_t) * d_t),  # (2) Euler predictor
            (d_s, slope(x_pred, sigma_s)),  # (3) slope at sigma_s of the predictor
        ),
    )
    euler = Update(state=(x,), new=(x + (sigma_s - sigma_t) * d_t,), stages=((d_t, slope(x, sigma_t)),))
    return from_module(
        __name__,
        kinds={"step": heun, "final": euler},  # EDM: no 2nd-order correction when sigma_s = 0
        title="VE Heun (EDM, 2nd order)",
        citation="Karras, Aittala, Aila, Laine. Elucidating the Design Space of Diffusion Models (arXiv 2206.00364), Algorithm 1",
        description=(
            "Heun's method on the probability-flow ODE: an Euler predictor, then the trapezoid of "
            "the slopes at both levels; the last step to $\\sigma=0$ is a plain Euler step."
        ),
        order=2,
    )
