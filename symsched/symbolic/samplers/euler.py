"""VE Euler step of the probability-flow ODE = VE DDIM (Karras et al. 2022, arXiv 2206.00364), with
k-diffusion's churn (``sample_euler``, EDM Algorithm 2).

x_s = D(x_t; sigma_t) + (sigma_s / sigma_t) (x_t - D(x_t; sigma_t)); with churn gamma_i > 0 the step
first noises x up to sigma_hat = sigma_t (1 + gamma_i) and takes the Euler step from sigma_hat.
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step
from ._kdiffusion import CHURN_BOUNDS, CHURN_PARAMS, CHURN_TEX, churn_gammas, param_values

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
KINDS = {"step": (0, 1), "final": (0, 1), "churn": (0, 1)}
PARAMS = dict(CHURN_PARAMS)
PARAM_BOUNDS = dict(CHURN_BOUNDS)
STEP_PARAMS = ("gamma",)


def plan(K: int, levels: Any = None, params: Any = None, **options: Any) -> list[PlanStep]:
    """The Euler step from level i to i + 1 (``final`` into sigma = 0); ``churn`` where gamma_i > 0."""
    gammas = churn_gammas(K, levels, param_values(PARAMS, params))
    return [step("churn" if g > 0 else ("final" if i == K - 1 else "step"), i, i + 1, gamma=g)
            for i, g in enumerate(gammas)]


def build():  # noqa: ANN201 - returns a Sampler
    """VE Euler (identical to VE DDIM), and its churned step."""
    import sympy as sp

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import param, sigma_s, sigma_t
    from ._kdiffusion import sym_churn, sym_to_d

    x, D = sp.Symbol("x", real=True), sp.Symbol("D", real=True)
    step = Update(
        state=(x,),
        new=(D + sigma_s / sigma_t * (x - D),),  # (2) x_s = D + (sigma_s/sigma_t)(x_t - D)
        stages=((D, ve_denoiser(sigma_t) * x),),  # (1) D = S/(S + sigma_t^2) x_t
    )
    z, x_hat, d = sp.symbols(r"z \hat{x} d", real=True)
    sigma_hat, churned = sym_churn(x, sigma_t, param("gamma"), param("s_noise"), z)
    churn = Update(
        state=(x,),
        new=(x_hat + d * (sigma_s - sigma_hat),),  # Euler step from sigma_hat (k-diffusion sample_euler)
        noises=(z,),
        stages=((x_hat, churned), (D, ve_denoiser(sigma_hat) * x_hat), (d, sym_to_d(x_hat, sigma_hat, D))),
        parts={r"\hat\sigma": sigma_hat},
    )
    return from_module(
        __name__,
        kinds={"step": step, "final": step, "churn": churn},
        title="VE Euler (= VE DDIM)",
        citation="Karras, Aittala, Aila, Laine. Elucidating the Design Space of Diffusion Models (arXiv 2206.00364)",
        description=(
            "One Euler step of the probability-flow ODE $dx/d\\sigma = (x - D(x;\\sigma))/\\sigma$; "
            "it keeps the denoised estimate and rescales the residual noise: DDIM's step ($\\eta = 0$) in the VE "
            "scale. The starts differ: white noise here is $\\mathcal N(0, \\sigma_K^2)$, DDIM's $\\mathcal N(0, 1)$ "
            "is $1 + \\sigma_K^2$ in this scale, so without churn white-start spectra differ by the factor "
            "$\\sigma_K^2/(1 + \\sigma_K^2) = 1 - \\bar\\alpha_K$ (exact starts agree). With k-diffusion's "
            f"{CHURN_TEX}."
        ),
    )
