"""diffusers ``DEISMultistepScheduler`` (log-rho DEIS, orders 1-3), with the exact denoiser.

Written from diffusers 0.42 ``schedulers/scheduling_deis_multistep.py`` (``convert_model_output``,
``deis_first_order_update``, ``multistep_deis_second_order_update``, ``multistep_deis_third_order_update``,
``step``), in diffusers' VP coordinates alpha = sqrt(ab), sigma = sqrt(1 - ab), rho = sigma / alpha.
The model output is converted to x0 and back to eps = (x - alpha x0_hat) / sigma (the same for every
``prediction_type`` with the exact denoiser); the multistep weights integrate the Lagrange polynomial
of eps in log(rho). Zhang & Chen, DEIS (arXiv 2204.13902).

diffusers' DEIS always ends at ``sigmas[-1] = sigma(alphas_cumprod[0]) > 0``: its output is the sample
at that level, still noisy. Here the last level of a schedule is that final level (the plan never
steps to the clean level), so the output spectrum keeps the noise floor ~ (1 - alpha_bar_last).
State: the sample and the last two converted model outputs eps_{i-1}, eps_{i-2}.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..plan import PlanStep, step

PROCESS = "vp"
ENTRIES = (("x", "sample"), (r"\epsilon_{i-1}", "unit"), (r"\epsilon_{i-2}", "unit"))
KINDS = {"first": (0, 1), "second": (-1, 0, 1), "third": (-2, -1, 0, 1)}
OPTIONS = {"solver_order": (2, 1, 3), "lower_order_final": (True, False)}
#: Options that change the update equations: none (the order only changes the plan).
BUILD_OPTIONS: tuple[str, ...] = ()


def plan(K: int, levels: Optional[Sequence[float]] = None, params: Any = None, *, solver_order: int = 2,
         lower_order_final: bool = True, **_: Any) -> list[PlanStep]:
    """diffusers' ``step``: order min(solver_order, steps so far + 1), first order on the last step and at
    most second order on the one before it when lower_order_final and fewer than 15 steps; the last step
    reaches the last level (DEIS stops at the least noisy schedule level, never at the clean level)."""
    if K < 2:
        raise ValueError("alpha_bar: DEIS needs at least 2 levels (the model levels, then the final level "
                         "sigma(alphas_cumprod[0]) > 0 its last step reaches)")
    N = K - 1
    out = []
    for i in range(N):
        last = i == N - 1 and lower_order_final and N < 15
        second_last = i == N - 2 and lower_order_final and N < 15
        if solver_order == 1 or i < 1 or last:
            out.append(step("first", i, i + 1))
        elif solver_order == 2 or i < 2 or second_last:
            out.append(step("second", i - 1, i, i + 1))
        else:
            out.append(step("third", i - 2, i - 1, i, i + 1))
    return out


def build(**_: Any):  # noqa: ANN201 - returns a Sampler
    """The three kinds of step of log-rho DEIS."""
    import sympy as sp

    from ..forward import vp_denoiser
    from ..statespace import Update, from_module
    from ..symbols import slot_level

    x, e1, e2 = (sp.Symbol(n, real=True) for n, _ in ENTRIES)
    x0, e0 = sp.symbols(r"\hat{x}_0 \epsilon_i", real=True)
    ab = {j: slot_level("vp", j) for j in (-2, -1, 0, 1)}
    alpha = {j: sp.sqrt(a) for j, a in ab.items()}
    sigma = {j: sp.sqrt(1 - a) for j, a in ab.items()}
    lam = {j: sp.log(alpha[j]) - sp.log(sigma[j]) for j in ab}
    rho = {j: sigma[j] / alpha[j] for j in ab}
    log = sp.log
    model = ((x0, vp_denoiser(ab[0])[0] * x), (e0, (x - alpha[0] * x0) / sigma[0]))  # convert_model_output
    state = (x, e1, e2)

    h = lam[1] - lam[0]
    first = Update(state=state, new=(alpha[1] / alpha[0] * x - sigma[1] * (sp.exp(h) - 1) * e0, e0, e1),
                   stages=model, slots=(0, 1))

    def ind2(t: sp.Expr, b: sp.Expr, c: sp.Expr) -> sp.Expr:
        """Integrate[(log(t) - log(c)) / (log(b) - log(c)), {t}] (diffusers' ind_fn)."""
        return t * (-log(c) + log(t) - 1) / (log(b) - log(c))

    coef1 = ind2(rho[1], rho[0], rho[-1]) - ind2(rho[0], rho[0], rho[-1])
    coef2 = ind2(rho[1], rho[-1], rho[0]) - ind2(rho[0], rho[-1], rho[0])
    second = Update(state=state, new=(alpha[1] * (x / alpha[0] + coef1 * e0 + coef2 * e1), e0, e1),
                    stages=model, slots=(-1, 0, 1))

    def ind3(t: sp.Expr, b: sp.Expr, c: sp.Expr, d: sp.Expr) -> sp.Expr:
        """Integrate[(log(t) - log(c))(log(t) - log(d)) / (log(b) - log(c))(log(b) - log(d)), {t}]."""
        num = t * (log(c) * (log(d) - log(t) + 1) - log(d) * log(t) + log(d) + log(t) ** 2 - 2 * log(t) + 2)
        return num / ((log(b) - log(c)) * (log(b) - log(d)))

    c1 = ind3(rho[1], rho[0], rho[-1], rho[-2]) - ind3(rho[0], rho[0], rho[-1], rho[-2])
    c2 = ind3(rho[1], rho[-1], rho[-2], rho[0]) - ind3(rho[0], rho[-1], rho[-2], rho[0])
    c3 = ind3(rho[1], rho[-2], rho[0], rho[-1]) - ind3(rho[0], rho[-2], rho[0], rho[-1])
    third = Update(state=state, new=(alpha[1] * (x / alpha[0] + c1 * e0 + c2 * e1 + c3 * e2), e0, e1),
                   stages=model, slots=(-2, -1, 0, 1))
    return from_module(
        __name__,
        kinds={"first": first, "second": second, "third": third},
        title="DEISMultistepScheduler (log-rho)",
        citation="Zhang, Chen. Fast Sampling of Diffusion Models with Exponential Integrator (DEIS, "
        "arXiv 2204.13902); diffusers scheduling_deis_multistep.py",
        description=(
            "An exponential integrator that interpolates the predicted noise as a polynomial in "
            "$\\log\\rho$, $\\rho = \\sqrt{1 - \\bar\\alpha}/\\sqrt{\\bar\\alpha}$ (the VE noise level; "
            "$\\log\\rho = -\\tfrac12\\ell$, $\\ell = \\log(\\bar\\alpha/(1 - \\bar\\alpha))$ the "
            "log-SNR), through the last one to three levels; diffusers stops at "
            "the level of the first training timestep, so the output keeps a noise floor."
        ),
        order=2,
    )
