"""VE Euler step of the probability-flow ODE = VE DDIM (Karras et al. 2022, arXiv 2206.00364).

x_s = D(x_t; sigma_t) + (sigma_s / sigma_t) (x_t - D(x_t; sigma_t)).
"""

from __future__ import annotations

from ..plan import default_plan

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
KINDS = {"step": (0, 1), "final": (0, 1)}
plan = default_plan


def build():  # noqa: ANN201 - returns a Sampler
    """Deterministic VE Euler (identical to VE DDIM)."""
    import sympy as sp

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import sigma_s, sigma_t

    x, D = sp.Symbol("x", real=True), sp.Symbol("D", real=True)
    step = Update(
        state=(x,),
        new=(D + sigma_s / sigma_t * (x - D),),  # (2) x_s = D + (sigma_s/sigma_t)(x_t - D)
        stages=((D, ve_denoiser(sigma_t) * x),),  # (1) D = S/(S + sigma_t^2) x_t
    )
    return from_module(
        __name__,
        kinds={"step": step, "final": step},
        title="VE Euler (= VE DDIM)",
        citation="Karras, Aittala, Aila, Laine. Elucidating the Design Space of Diffusion Models (arXiv 2206.00364)",
        description=(
            "One Euler step of the probability-flow ODE $dx/d\\sigma = (x - D(x;\\sigma))/\\sigma$; "
            "it keeps the denoised estimate and rescales the residual noise."
        ),
    )
