"""DPM-Solver++(2M), k-diffusion ``sample_dpmpp_2m`` (Lu et al. 2022, arXiv 2211.01095, Algorithm 2).

With t = -log sigma, h = t_{i+1} - t_i and the previous step's h_last, r = h_last / h:
D_d = (1 + 1/(2r)) D_i - 1/(2r) D_{i-1},  x_{i+1} = (sigma_{i+1}/sigma_i) x_i - (e^{-h} - 1) D_d;
the first step, and the step to sigma = 0, use D_i alone (first order).
State: the sample and the previous denoised value.
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step

PROCESS = "ve"
ENTRIES = (("x", "sample"), ("D_{i-1}", "data"))
KINDS = {"first": (0, 1), "second": (-1, 0, 1)}


def plan(K: int, levels: Any = None, params: Any = None, **options: Any) -> list[PlanStep]:
    """k-diffusion: first order when there is no previous denoised value or sigma_{i+1} = 0."""
    return [step("first" if i == 0 or i == K - 1 else "second", *((i, i + 1) if i == 0 or i == K - 1 else (i - 1, i, i + 1)))
            for i in range(K)]


def build():  # noqa: ANN201 - returns a Sampler
    import sympy as sp

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import slot_level

    x, D_prev, D = sp.symbols("x D_{i-1} D_i", real=True)
    s_prev, s_t, s_next = (slot_level("ve", j) for j in (-1, 0, 1))
    t = lambda sig: -sp.log(sig)  # noqa: E731  (k-diffusion's t_fn)
    h = t(s_next) - t(s_t)

    first = Update(
        state=(x, D_prev),
        new=((s_next / s_t) * x - (sp.exp(-h) - 1) * D, D),
        stages=((D, ve_denoiser(s_t) * x),),
        slots=(0, 1),
    )
    r = (t(s_t) - t(s_prev)) / h  # h_last / h
    D_d = sp.Symbol("D_d", real=True)
    second = Update(
        state=(x, D_prev),
        new=((s_next / s_t) * x - (sp.exp(-h) - 1) * D_d, D),
        stages=((D, ve_denoiser(s_t) * x), (D_d, (1 + 1 / (2 * r)) * D - 1 / (2 * r) * D_prev)),
        slots=(-1, 0, 1),
    )
    return from_module(
        __name__,
        kinds={"first": first, "second": second},
        title="DPM-Solver++(2M)",
        citation="Lu, Zhou, Bao, Chen, Li, Zhu. DPM-Solver++ (arXiv 2211.01095); k-diffusion sample_dpmpp_2m",
        description=(
            "A second-order multistep solver of the probability-flow ODE in $t = -\\log\\sigma$: it "
            "extrapolates the denoised value linearly from the current and the previous step."
        ),
        order=2,
    )
