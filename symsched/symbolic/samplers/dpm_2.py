"""DPM-Solver-2 steps in sigma, k-diffusion ``sample_dpm_2`` (k-diffusion 0.1.1.post1, ``sampling.py``), with churn.

sigma_hat = sigma_i (1 + gamma_i), x_hat = x + s_noise z sqrt(sigma_hat^2 - sigma_i^2) (churn, EDM Alg. 2);
d = (x_hat - D(x_hat; sigma_hat))/sigma_hat, sigma_mid = exp(lerp(log sigma_hat, log sigma_{i+1}, 1/2)),
x_2 = x_hat + d (sigma_mid - sigma_hat), x' = x_hat + d_2 (sigma_{i+1} - sigma_hat) with d_2 at (x_2, sigma_mid);
an Euler step x' = x_hat + d (0 - sigma_hat) on the step to sigma = 0.
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step
from ._kdiffusion import CHURN_BOUNDS, CHURN_PARAMS, CHURN_TEX, churn_gammas, param_values

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
#: "step"/"final": gamma_i = 0 (DPM-Solver-2; Euler to sigma = 0); "churn"/"churn_final": gamma_i > 0.
KINDS = {"step": (0, 1), "final": (0, 1), "churn": (0, 1), "churn_final": (0, 1)}
PARAMS = dict(CHURN_PARAMS)
PARAM_BOUNDS = dict(CHURN_BOUNDS)
STEP_PARAMS = ("gamma",)


def plan(K: int, levels: Any = None, params: Any = None, **options: Any) -> list[PlanStep]:
    """DPM-Solver-2 while sigma_{i+1} > 0, Euler on the step to 0; the churn kinds where gamma_i > 0."""
    gammas = churn_gammas(K, levels, param_values(PARAMS, params))
    out = []
    for i, g in enumerate(gammas):
        last = i == K - 1
        kind = ("churn_final" if last else "churn") if g > 0 else ("final" if last else "step")
        out.append(step(kind, i, i + 1, gamma=g))
    return out


def build():  # noqa: ANN201 - returns a Sampler
    import sympy as sp

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import param, sigma_s, sigma_t
    from ._kdiffusion import sym_churn, sym_to_d

    gamma, s_noise = param("gamma"), param("s_noise")
    x, z = sp.symbols("x z", real=True)
    x_hat, D, d, x_2, D_2, d_2 = sp.symbols(r"\hat{x} D d x_2 D_2 d_2", real=True)

    def update(churn: bool, final: bool) -> Update:
        if churn:
            sigma_hat, churned = sym_churn(x, sigma_t, gamma, s_noise, z)
            stages = [(x_hat, churned)]
            xh = x_hat
        else:
            sigma_hat, stages, xh = sigma_t, [], x
        stages += [(D, ve_denoiser(sigma_hat) * xh), (d, sym_to_d(xh, sigma_hat, D))]
        if final:  # Euler method
            new = xh + d * (sigma_s - sigma_hat)
        else:  # DPM-Solver-2
            sigma_mid = sp.exp((sp.log(sigma_hat) + sp.log(sigma_s)) / 2)  # log sigma_hat lerp log sigma_{i+1}, 0.5
            stages += [(x_2, xh + d * (sigma_mid - sigma_hat)), (D_2, ve_denoiser(sigma_mid) * x_2),
                       (d_2, sym_to_d(x_2, sigma_mid, D_2))]
            new = xh + d_2 * (sigma_s - sigma_hat)
        return Update(state=(x,), new=(new,), noises=(z,) if churn else (), stages=tuple(stages),
                      parts={r"\hat\sigma": sigma_hat} if churn else {})

    return from_module(
        __name__,
        kinds={"step": update(False, False), "final": update(False, True), "churn": update(True, False),
               "churn_final": update(True, True)},
        title="DPM-2 (k-diffusion)",
        citation="Crowson, k-diffusion sample_dpm_2; Lu et al. DPM-Solver (arXiv 2206.00927); Karras et al. (arXiv 2206.00364)",
        description=(
            "A second-order step in $\\sigma$ that evaluates the slope again at the geometric midpoint "
            "$\\sqrt{\\hat\\sigma\\,\\sigma_{i+1}}$ (DPM-Solver-2 in the Karras ODE), an Euler step to "
            f"$\\sigma = 0$, and EDM's {CHURN_TEX}."
        ),
        order=2,
        stochastic=False,
    )
