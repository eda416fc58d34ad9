"""DDPM ancestral sampling, Ho, Jain & Abbeel 2020 (arXiv 2006.11239), Algorithm 2, on any sub-grid.

mean = (x_t - beta / sqrt(1 - ab_t) eps_hat) / sqrt(1 - beta), beta = 1 - ab_t/ab_s;
variance beta_tilde = (1 - ab_s)/(1 - ab_t) beta ("posterior") or beta ("beta"); none on the final step.
"""

from __future__ import annotations

from ..plan import default_plan

PROCESS = "vp"
ENTRIES = (("x", "sample"),)
KINDS = {"step": (0, 1), "final": (0, 1)}
OPTIONS = {"variance": ("posterior", "beta")}
VARIANCES = OPTIONS["variance"]
plan = default_plan


def build(variance: str = "posterior"):  # noqa: ANN201 - returns a Sampler
    """DDPM with the posterior variance beta_tilde or with beta."""
    import sympy as sp

    from ..forward import vp_denoiser
    from ..statespace import Update, from_module
    from ..symbols import alpha_bar_s as ab_s, alpha_bar_t as ab_t

    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES} (got {variance!r})")
    x, z = sp.Symbol("x", real=True), sp.Symbol("z", real=True)
    eps_hat = sp.Symbol(r"\hat{\varepsilon}", real=True)
    _, c_eps = vp_denoiser(ab_t)
    beta = 1 - ab_t / ab_s  # (1) the step's beta
    mean = (x - beta / sp.sqrt(1 - ab_t) * eps_hat) / sp.sqrt(1 - beta)  # (2) posterior mean

    def update(var: sp.Expr) -> Update:
        return Update(state=(x,), new=(mean + sp.sqrt(var) * z,), noises=(z,), stages=((eps_hat, c_eps * x),),
                      parts={r"\beta": beta})

    var = (1 - ab_s) / (1 - ab_t) * beta if variance == "posterior" else beta  # (3) beta_tilde or beta
    label = r"\tilde\beta" if variance == "posterior" else r"\beta"
    return from_module(
        __name__,
        kinds={"step": update(var), "final": update(sp.Integer(0))},  # (3) no noise on the last step
        title=f"DDPM (variance ${label}$)",
        citation="Ho, Jain, Abbeel. Denoising Diffusion Probabilistic Models (arXiv 2006.11239)",
        description=(
            "DDPM takes the posterior mean of $x_s$ given $x_t$ and the denoised estimate, then adds "
            f"fresh noise of variance ${label}$ (none on the final step)."
        ),
        options={"variance": variance},
        variant=variance,
        stochastic=True,
    )
