"""DDIM(eta), Song, Meng & Ermon 2021 (arXiv 2010.02502), eq. (12), with the exact denoiser.

x_s = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sigma_t^2) eps_hat + sigma_t z,
sigma_t^2 = eta^2 (1 - ab_s)/(1 - ab_t) (1 - ab_t/ab_s).
"""

from __future__ import annotations

from ..plan import default_plan

PROCESS = "vp"
ENTRIES = (("x", "sample"),)
KINDS = {"step": (0, 1), "final": (0, 1)}
PARAMS = {"eta": 0.0}  # name -> default
PARAM_BOUNDS = {"eta": (0.0, 1.0)}  # beyond 1 the DDIM direction term is imaginary
plan = default_plan


def build():  # noqa: ANN201 - returns a Sampler
    """DDIM with eta as a symbol (eta = 0 deterministic, eta = 1 ancestral-like)."""
    import sympy as sp

    from ..forward import vp_denoiser
    from ..statespace import Update, from_module
    from ..symbols import alpha_bar_s as ab_s, alpha_bar_t as ab_t, eta

    x, z = sp.Symbol("x", real=True), sp.Symbol("z", real=True)
    x0_hat, eps_hat = sp.symbols(r"\hat{x}_0 \hat{\varepsilon}", real=True)
    c_x0, c_eps = vp_denoiser(ab_t)
    sigma2 = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)  # (1) DDIM noise variance
    step = Update(
        state=(x,),
        new=(sp.sqrt(ab_s) * x0_hat + sp.sqrt(1 - ab_s - sigma2) * eps_hat + sp.sqrt(sigma2) * z,),  # (2)
        noises=(z,),
        stages=((x0_hat, c_x0 * x), (eps_hat, c_eps * x)),
        parts={r"\sigma_t^2": sigma2},
    )
    return from_module(
        __name__,
        kinds={"step": step, "final": step},
        title="DDIM",
        citation="Song, Meng, Ermon. Denoising Diffusion Implicit Models (arXiv 2010.02502)",
        description=(
            "DDIM moves the denoised estimate to the next noise level and re-adds a fraction of the "
            "predicted noise; $\\eta$ trades the predicted noise for fresh noise."
        ),
    )
