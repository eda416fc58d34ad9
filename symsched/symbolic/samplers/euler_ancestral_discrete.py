"""diffusers ``EulerAncestralDiscreteScheduler``: ancestral Euler on VE sigmas, with the exact denoiser.

Written from diffusers 0.42 ``schedulers/scheduling_euler_ancestral_discrete.py`` (``step``): with
sigma_up = sqrt(sigma_to^2 (sigma_from^2 - sigma_to^2) / sigma_from^2), sigma_down = sqrt(sigma_to^2 - sigma_up^2),
x' = x + (x - D)/sigma_from (sigma_down - sigma_from) + sigma_up z, D = S/(S + sigma_from^2) x (the x0
prediction, the same for every ``prediction_type`` with the exact denoiser); on the last step
(sigma_to = 0) sigma_up = sigma_down = 0 and x' = D. It is k-diffusion's ``sample_euler_ancestral``
with eta = 1 (Karras et al. 2022, arXiv 2206.00364) and DDIM(eta = 1) under the VP <-> VE map.
The sample is VE-scaled (x = x0 + sigma n); diffusers starts from ``init_noise_sigma`` = sigma_max
("linspace", "trailing": this module's white start) or sqrt(sigma_max^2 + 1) ("leading").
"""

from __future__ import annotations

from ..plan import default_plan

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
KINDS = {"step": (0, 1), "final": (0, 1)}
plan = default_plan


def build():  # noqa: ANN201 - returns a Sampler
    """Euler ancestral (eta = 1), the step diffusers takes between consecutive sigmas."""
    import sympy as sp

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import sigma_s, sigma_t

    x, z = sp.Symbol("x", real=True), sp.Symbol("z", real=True)
    D, d = sp.symbols(r"\hat{x}_0 d", real=True)
    sigma_up = sp.sqrt(sigma_s**2 * (sigma_t**2 - sigma_s**2) / sigma_t**2)  # (1)
    sigma_down = sp.sqrt(sigma_s**2 - sigma_up**2)  # (2)
    step = Update(
        state=(x,),
        new=(x + d * (sigma_down - sigma_t) + sigma_up * z,),  # (4) Euler step to sigma_down, then noise
        noises=(z,),
        stages=((D, ve_denoiser(sigma_t) * x), (d, (x - D) / sigma_t)),  # (3) ODE derivative
        parts={r"\sigma_{\uparrow}": sigma_up, r"\sigma_{\downarrow}": sigma_down},
    )
    return from_module(
        __name__,
        kinds={"step": step, "final": step},
        title="EulerAncestralDiscreteScheduler",
        citation="Karras, Aittala, Aila, Laine (arXiv 2206.00364); diffusers scheduling_euler_ancestral_discrete.py",
        description=(
            "An Euler step of the probability-flow ODE down to $\\sigma_{\\downarrow}$, then fresh noise of "
            "standard deviation $\\sigma_{\\uparrow}$ back up to the next level (ancestral sampling), with "
            "$\\sigma_{\\uparrow} = \\sqrt{\\sigma_{i+1}^2(\\sigma_i^2 - \\sigma_{i+1}^2)/\\sigma_i^2}$ and "
            "$\\sigma_{\\downarrow} = \\sqrt{\\sigma_{i+1}^2 - \\sigma_{\\uparrow}^2}$ (diffusers' \\texttt{step})."
        ),
        stochastic=True,
    )
