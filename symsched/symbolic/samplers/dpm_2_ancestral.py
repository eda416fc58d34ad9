"""Ancestral DPM-Solver-2 steps, k-diffusion ``sample_dpm_2_ancestral`` (k-diffusion 0.1.1.post1, ``sampling.py``).

sigma_down, sigma_up = get_ancestral_step(sigma_i, sigma_{i+1}, eta); d = (x - D(x; sigma_i))/sigma_i.
If sigma_down > 0: sigma_mid = exp(lerp(log sigma_i, log sigma_down, 1/2)), x_2 = x + d (sigma_mid - sigma_i),
x' = x + d_2 (sigma_down - sigma_i) + s_noise sigma_up z with d_2 at (x_2, sigma_mid).
If sigma_down = 0 (the last step, or eta > 1 where the min binds): the Euler step x' = x - d sigma_i = D, and,
as k-diffusion's code does, no noise.
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step
from ._kdiffusion import ANCESTRAL_PURE_NOISE_NOTE, ANCESTRAL_TEX, level_binds, param_values

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
#: "step": sigma_down > 0 (DPM-Solver-2 to sigma_down, then noise); "to_zero": sigma_down = 0 (Euler, no noise).
KINDS = {"step": (0, 1), "to_zero": (0, 1)}
PARAMS = {"eta": 1.0, "s_noise": 1.0}
#: the LaTeX section's note on the first step from sigma = inf (eta = 1 in float64)
PURE_NOISE_NOTE = ANCESTRAL_PURE_NOISE_NOTE


def plan(K: int, levels: Any = None, params: Any = None, **options: Any) -> list[PlanStep]:
    """``to_zero`` (k-diffusion's Euler branch, sigma_down = 0) on the last step and where the min binds."""
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
    D, d, x_2, D_2, d_2 = sp.symbols("D d x_2 D_2 d_2", real=True)
    head = ((D, ve_denoiser(sigma_t) * x), (d, sym_to_d(x, sigma_t, D)))

    sigma_down, sigma_up = sym_ancestral_step(sigma_t, sigma_s, eta, bound=False)
    sigma_mid = sp.exp((sp.log(sigma_t) + sp.log(sigma_down)) / 2)  # log sigma_i lerp log sigma_down, 0.5
    dpm2 = Update(
        state=(x,),
        new=(x + d_2 * (sigma_down - sigma_t) + s_noise * sigma_up * z,),
        noises=(z,),
        stages=head + ((x_2, x + d * (sigma_mid - sigma_t)), (D_2, ve_denoiser(sigma_mid) * x_2),
                       (d_2, sym_to_d(x_2, sigma_mid, D_2))),
        parts={r"\sigma_{\downarrow}": sigma_down, r"\sigma_{\uparrow}": sigma_up},
    )
    euler = Update(state=(x,), new=(x + d * (0 - sigma_t),), stages=head)  # sigma_down = 0: Euler, no noise
    return from_module(
        __name__,
        kinds={"step": dpm2, "to_zero": euler},
        title="DPM-2 ancestral (k-diffusion)",
        citation="Crowson, k-diffusion sample_dpm_2_ancestral; Lu et al. DPM-Solver (arXiv 2206.00927)",
        description=(
            "A DPM-Solver-2 step in $\\sigma$ down to $\\sigma_{\\downarrow}$ (slope again at "
            "$\\sqrt{\\sigma_i\\sigma_{\\downarrow}}$), then fresh noise $s_{\\mathrm{noise}}\\sigma_{\\uparrow} z$, with "
            "$(\\sigma_{\\downarrow}, \\sigma_{\\uparrow})$ from k-diffusion's \\texttt{get\\_ancestral\\_step} "
            f"(from $\\sigma_i$ to $\\sigma_{{i+1}}$: {ANCESTRAL_TEX}); where "
            "$\\sigma_{\\downarrow} = 0$ an Euler step to the denoised value and, as in k-diffusion, no noise."
        ),
        order=2,
        stochastic=True,
    )
