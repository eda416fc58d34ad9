"""VE Heun, EDM Algorithm 1 deterministic (Karras et al. 2022, arXiv 2206.00364), with k-diffusion's churn
(``sample_heun``, EDM Algorithm 2).

d_t = (x - D(x; sigma_t))/sigma_t, x' = x + (sigma_s - sigma_t) d_t,
x_s = x + (sigma_s - sigma_t)(d_t + d'_s)/2 with d'_s at (x', sigma_s); Euler on the step to 0.
With churn gamma_i > 0 the step first noises x up to sigma_hat = sigma_t (1 + gamma_i) and steps from sigma_hat.
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step
from ._kdiffusion import CHURN_BOUNDS, CHURN_PARAMS, CHURN_TEX, churn_gammas, param_values

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
KINDS = {"step": (0, 1), "final": (0, 1), "churn": (0, 1), "churn_final": (0, 1)}
PARAMS = dict(CHURN_PARAMS)
PARAM_BOUNDS = dict(CHURN_BOUNDS)
STEP_PARAMS = ("gamma",)


def plan(K: int, levels: Any = None, params: Any = None, **options: Any) -> list[PlanStep]:
    """Heun from level i to i + 1, Euler into sigma = 0 (``final``); the churn kinds where gamma_i > 0."""
    gammas = churn_gammas(K, levels, param_values(PARAMS, params))
    out = []
    for i, g in enumerate(gammas):
        last = i == K - 1
        kind = ("churn_final" if last else "churn") if g > 0 else ("final" if last else "step")
        out.append(step(kind, i, i + 1, gamma=g))
    return out


def build():  # noqa: ANN201 - returns a Sampler
    """Deterministic EDM Heun (2nd order), and its churned steps."""
    import sympy as sp

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import param, sigma_s, sigma_t
    from ._kdiffusion import sym_churn

    x = sp.Symbol("x", real=True)
    d_t, x_pred, d_s = sp.symbols(r"d_t \tilde{x} d_s", real=True)

    def slope(y: sp.Expr, s: sp.Expr) -> sp.Expr:
        return (y - ve_denoiser(s) * y) / s  # d(y; sigma) = (y - D(y; sigma)) / sigma

    def update(start: sp.Expr, s_from: sp.Expr, heun: bool, churn: tuple = ()) -> Update:
        stages = list(churn) + [(d_t, slope(start, s_from))]  # (1) slope at sigma_t (or sigma_hat)
        if not heun:
            return Update(state=(x,), new=(start + (sigma_s - s_from) * d_t,), noises=(z,) if churn else (),
                          stages=tuple(stages))
        stages += [
            (x_pred, start + (sigma_s - s_from) * d_t),  # (2) Euler predictor
            (d_s, slope(x_pred, sigma_s)),  # (3) slope at sigma_s of the predictor
        ]
        return Update(state=(x,), new=(start + (sigma_s - s_from) * (d_t + d_s) / 2,),  # (4) trapezoid
                      noises=(z,) if churn else (), stages=tuple(stages))

    z, x_hat = sp.symbols(r"z \hat{x}", real=True)
    sigma_hat, churned = sym_churn(x, sigma_t, param("gamma"), param("s_noise"), z)
    return from_module(
        __name__,
        kinds={  # EDM: no 2nd-order correction when sigma_s = 0
            "step": update(x, sigma_t, True),
            "final": update(x, sigma_t, False),
            "churn": update(x_hat, sigma_hat, True, ((x_hat, churned),)),
            "churn_final": update(x_hat, sigma_hat, False, ((x_hat, churned),)),
        },
        title="VE Heun (EDM, 2nd order)",
        citation="Karras, Aittala, Aila, Laine. Elucidating the Design Space of Diffusion Models (arXiv 2206.00364), Algorithm 1",
        description=(
            "Heun's method on the probability-flow ODE: an Euler predictor, then the trapezoid of "
            "the slopes at both levels; the last step to $\\sigma=0$ is a plain Euler step. With k-diffusion's "
            f"{CHURN_TEX}."
        ),
        order=2,
    )
