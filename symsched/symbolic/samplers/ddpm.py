"""DDPM ancestral sampling, Ho, Jain & Abbeel 2020 (arXiv 2006.11239), Algorithm 2, on any sub-grid.

mean = (x_t - beta / sqrt(1 - ab_t) eps_hat) / sqrt(1 - beta), beta = 1 - ab_t/ab_s;
variance beta_tilde = (1 - ab_s)/(1 - ab_t) beta ("posterior") or beta ("beta"); none on the final step.
"""

from __future__ import annotations

import sympy as sp

from ..forward import vp_denoiser
from ..step import Sampler, Step
from ..symbols import alpha_bar_s, alpha_bar_t

VARIANCES = ("posterior", "beta")


def _step(ab_t: sp.Expr, ab_s: sp.Expr, variance: str, final: bool) -> Step:
    _, eps_hat = vp_denoiser(ab_t)
    beta = 1 - ab_t / ab_s  # (1) the step's beta
    gain = (1 - beta / sp.sqrt(1 - ab_t) * eps_hat) / sp.sqrt(1 - beta)  # (2) posterior mean
    if final:
        noise = sp.Integer(0)  # (3) no noise on the last step
    elif variance == "posterior":
        noise = (1 - ab_s) / (1 - ab_t) * beta  # (3) beta_tilde
    else:
        noise = beta  # (3) beta
    return Step(gain=gain, noise=noise, parts={r"\beta": beta})


def sampler(variance: str = "posterior") -> Sampler:
    """DDPM with the posterior variance beta_tilde or with beta."""
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES} (got {variance!r})")
    label = r"\tilde\beta" if variance == "posterior" else r"\beta"
    return Sampler(
        name="ddpm",
        process="vp",
        title=f"DDPM (variance ${label}$)",
        citation="Ho, Jain, Abbeel. Denoising Diffusion Probabilistic Models (arXiv 2006.11239)",
        description=(
            "DDPM takes the posterior mean of $x_s$ given $x_t$ and the denoised estimate, then adds "
            f"fresh noise of variance ${label}$ (none on the final step)."
        ),
        step=_step(alpha_bar_t, alpha_bar_s, variance, final=False),
        final=_step(alpha_bar_t, sp.Integer(1), variance, final=True),
        variant=variance,
    )
