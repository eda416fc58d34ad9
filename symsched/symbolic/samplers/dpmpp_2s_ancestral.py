"""Ancestral DPM-Solver++(2S), k-diffusion ``sample_dpmpp_2s_ancestral`` (k-diffusion 0.1.1.post1, ``sampling.py``).

sigma_down, sigma_up = get_ancestral_step(sigma_i, sigma_{i+1}, eta). If sigma_down > 0, with t = -log sigma,
t = t(sigma_i), t_next = t(sigma_down), h = t_next - t, s = t + h/2:
x_2 = (sigma(s)/sigma(t)) x - expm1(-h/2) D(x; sigma_i), x' = (sigma(t_next)/sigma(t)) x - expm1(-h) D(x_2; sigma(s));
if sigma_down = 0 (last step, or eta > 1 where the min binds) the Euler step x' = D(x; sigma_i).
Then noise s_noise sigma_up z when sigma_{i+1} > 0 (Lu et al. 2022, arXiv 2211.01095).
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step
from ._kdiffusion import ANCESTRAL_PURE_NOISE_NOTE, ANCESTRAL_TEX, level_binds, param_values

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
#: "step": sigma_down > 0 (DPM-Solver++(2S) to sigma_down); "to_zero": sigma_down = 0 (Euler); both add noise.
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
    from sympy.codegen.cfunctions import expm1

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import param, sigma_s, sigma_t
    from ._kdiffusion import sym_ancestral_step, sym_to_d

    eta, s_noise = param("eta"), param("s_noise")
    x, z = sp.symbols("x z", real=True)
    D, d, x_2, D_2 = sp.symbols("D d x_2 D_2", real=True)
    sigma_fn = lambda t: sp.exp(-t)  # noqa: E731  (k-diffusion's sigma_fn, t_fn)
    t_fn = lambda sigma: -sp.log(sigma)  # noqa: E731

    def update(bound: bool) -> Update:
        sigma_down, sigma_up = sym_ancestral_step(sigma_t, sigma_s, eta, bound)
        noise = s_noise * sigma_up * z
        if bound:  # Euler method
            return Update(state=(x,), new=(x + d * (sigma_down - sigma_t) + noise,), noises=(z,),
                          stages=((D, ve_denoiser(sigma_t) * x), (d, sym_to_d(x, sigma_t, D))))
        t, t_next = t_fn(sigma_t), t_fn(sigma_down)
        r = sp.Rational(1, 2)
        h = t_next - t
        s = t + r * h
        return Update(
            state=(x,),
            new=((sigma_fn(t_next) / sigma_fn(t)) * x - expm1(-h) * D_2 + noise,),
            noises=(z,),
            stages=((D, ve_denoiser(sigma_t) * x), (x_2, (sigma_fn(s) / sigma_fn(t)) * x - expm1(-h * r) * D),
                    (D_2, ve_denoiser(sigma_fn(s)) * x_2)),
            parts={r"\sigma_{\downarrow}": sigma_down, r"\sigma_{\uparrow}": sigma_up},
        )

    return from_module(
        __name__,
        kinds={"step": update(False), "to_zero": update(True)},
        title="DPM-Solver++(2S) ancestral (k-diffusion)",
        citation="Lu, Zhou, Bao, Chen, Li, Zhu. DPM-Solver++ (arXiv 2211.01095); k-diffusion sample_dpmpp_2s_ancestral",
        description=(
            "A single-step second-order DPM-Solver++ step in $t = -\\log\\sigma$ down to $\\sigma_{\\downarrow}$ "
            "(the denoiser again at the midpoint $t + h/2$, $h = \\log(\\sigma_i/\\sigma_{\\downarrow})$), then fresh "
            "noise $s_{\\mathrm{noise}}\\sigma_{\\uparrow} z$ "
            "with $(\\sigma_{\\downarrow}, \\sigma_{\\uparrow})$ from k-diffusion's \\texttt{get\\_ancestral\\_step} "
            f"(from $\\sigma_i$ to $\\sigma_{{i+1}}$: {ANCESTRAL_TEX})."
        ),
        order=2,
        stochastic=True,
    )
