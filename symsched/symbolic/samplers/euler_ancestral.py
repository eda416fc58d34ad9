"""Euler ancestral, k-diffusion ``sample_euler_ancestral`` (k-diffusion 0.1.1.post1, ``sampling.py``).

sigma_down, sigma_up = get_ancestral_step(sigma_i, sigma_{i+1}, eta); d = (x - D(x; sigma_i))/sigma_i;
x' = x + d (sigma_down - sigma_i) + s_noise sigma_up z (no noise when sigma_{i+1} = 0).
On sigma = sqrt((1 - ab)/ab) this is DDIM(eta) (docs/model.md §9).
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step
from ._kdiffusion import ANCESTRAL_PURE_NOISE_NOTE, level_binds, param_values

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
#: "step": get_ancestral_step's min does not bind (sigma_down > 0); "to_zero": it does (sigma_up =
#: sigma_{i+1}, sigma_down = 0: only for eta > 1), and on the last step (sigma_{i+1} = 0).
KINDS = {"step": (0, 1), "to_zero": (0, 1)}
PARAMS = {"eta": 1.0, "s_noise": 1.0}
#: the LaTeX section's note on the first step from sigma = inf (eta = 1 in float64)
PURE_NOISE_NOTE = ANCESTRAL_PURE_NOISE_NOTE


def plan(K: int, levels: Any = None, params: Any = None, **options: Any) -> list[PlanStep]:
    """get_ancestral_step's min decides: sigma_down = 0 (``to_zero``) where it binds and on the last step."""
    prm = param_values(PARAMS, params)
    out = []
    for i in range(K):
        bound = i == K - 1 or (levels is not None and level_binds(levels, i, i + 1, prm["eta"]))
        out.append(step("to_zero" if bound else "step", i, i + 1))
    return out


def build():  # noqa: ANN201 - returns a Sampler
    import sympy as sp

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import param, sigma_s, sigma_t
    from ._kdiffusion import sym_ancestral_step, sym_to_d

    eta, s_noise = param("eta"), param("s_noise")
    x, z = sp.symbols("x z", real=True)
    D, d = sp.symbols("D d", real=True)

    def update(bound: bool) -> Update:
        sigma_down, sigma_up = sym_ancestral_step(sigma_t, sigma_s, eta, bound)
        return Update(
            state=(x,),
            new=(x + d * (sigma_down - sigma_t) + s_noise * sigma_up * z,),  # Euler to sigma_down, then noise
            noises=(z,),
            stages=((D, ve_denoiser(sigma_t) * x), (d, sym_to_d(x, sigma_t, D))),
            parts={r"\sigma_{\downarrow}": sigma_down, r"\sigma_{\uparrow}": sigma_up},
        )

    return from_module(
        __name__,
        kinds={"step": update(False), "to_zero": update(True)},
        title="Euler ancestral (k-diffusion)",
        citation="Crowson, k-diffusion sample_euler_ancestral; Karras et al. (arXiv 2206.00364)",
        description=(
            "An Euler step of the probability-flow ODE down to $\\sigma_{\\downarrow}$, then fresh noise "
            "$s_{\\mathrm{noise}}\\sigma_{\\uparrow} z$ back up to $\\sigma_{i+1}$, with "
            "$\\sigma_{\\uparrow} = \\min(\\sigma_{i+1}, \\eta\\,\\sigma_{i+1}\\sqrt{1 - \\sigma_{i+1}^2/\\sigma_i^2})$ "
            "and $\\sigma_{\\downarrow}^2 = \\sigma_{i+1}^2 - \\sigma_{\\uparrow}^2$; on "
            "$\\sigma = \\sqrt{(1-\\bar\\alpha)/\\bar\\alpha}$ it is DDIM($\\eta$)."
        ),
        stochastic=True,
    )
