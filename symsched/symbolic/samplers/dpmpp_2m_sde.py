"""DPM-Solver++(2M) SDE, k-diffusion ``sample_dpmpp_2m_sde`` (k-diffusion 0.1.1.post1, ``sampling.py``).

With t = -log sigma, h = t_{i+1} - t_i, eta_h = eta h and r = h_{i-1}/h:
x' = (sigma_{i+1}/sigma_i) e^{-eta_h} x - expm1(-h - eta_h) D_i + (correction) + sigma_{i+1} sqrt(-expm1(-2 eta_h)) s_noise z,
correction (from the second step on) "midpoint": -expm1(-h - eta_h)/2 (D_i - D_{i-1})/r, "heun":
(-expm1(-h - eta_h)/(-h - eta_h) + 1)(D_i - D_{i-1})/r; x' = D_i on the step to sigma = 0.
The Brownian-tree noise of consecutive steps covers disjoint sigma intervals: independent draws.
State: the sample and the previous denoised value (Lu et al. 2022, arXiv 2211.01095).
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step

PROCESS = "ve"
ENTRIES = (("x", "sample"), ("D_{i-1}", "data"))
KINDS = {"first": (0, 1), "second": (-1, 0, 1), "final": (0, 1)}
PARAMS = {"eta": 1.0, "s_noise": 1.0}
OPTIONS = {"solver_type": ("midpoint", "heun")}


def plan(K: int, levels: Any = None, params: Any = None, **options: Any) -> list[PlanStep]:
    """First order without a previous denoised value, ``final`` (x = D) on the step to sigma = 0."""
    out = []
    for i in range(K):
        if i == K - 1:
            out.append(step("final", i, i + 1))
        else:
            out.append(step("first", i, i + 1) if i == 0 else step("second", i - 1, i, i + 1))
    return out


def build(solver_type: str = "midpoint"):  # noqa: ANN201 - returns a Sampler
    import sympy as sp
    from sympy.codegen.cfunctions import expm1

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import param, slot_level

    if solver_type not in OPTIONS["solver_type"]:
        raise ValueError(f"solver_type must be one of {OPTIONS['solver_type']} (got {solver_type!r})")
    eta, s_noise = param("eta"), param("s_noise")
    x, D_prev, D, z = sp.symbols("x D_{i-1} D_i z", real=True)
    s_prev, s_i, s_next = (slot_level("ve", j) for j in (-1, 0, 1))
    t, s = -sp.log(s_i), -sp.log(s_next)
    h = s - t
    eta_h = eta * h
    base = s_next / s_i * sp.exp(-eta_h) * x + (-expm1(-h - eta_h)) * D  # noqa: E226
    noise = s_next * sp.sqrt(-expm1(-2 * eta_h)) * s_noise * z
    if solver_type == "heun":
        corr = ((-expm1(-h - eta_h)) / (-h - eta_h) + 1) * (1 / ((t - (-sp.log(s_prev))) / h)) * (D - D_prev)
    else:
        corr = sp.Rational(1, 2) * (-expm1(-h - eta_h)) * (1 / ((t - (-sp.log(s_prev))) / h)) * (D - D_prev)
    stage = ((D, ve_denoiser(s_i) * x),)
    kinds = {
        "first": Update(state=(x, D_prev), new=(base + noise, D), noises=(z,), stages=stage, slots=(0, 1)),
        "second": Update(state=(x, D_prev), new=(base + corr + noise, D), noises=(z,), stages=stage, slots=(-1, 0, 1)),
        "final": Update(state=(x, D_prev), new=(D, D), stages=stage, slots=(0, 1)),  # denoising step
    }
    return from_module(
        __name__,
        kinds=kinds,
        title=f"DPM-Solver++(2M) SDE ({solver_type}, k-diffusion)",
        citation="Lu, Zhou, Bao, Chen, Li, Zhu. DPM-Solver++ (arXiv 2211.01095); k-diffusion sample_dpmpp_2m_sde",
        description=(
            "A second-order multistep solver of the reverse SDE in $t = -\\log\\sigma$, step $h = t_{i+1} - t_i = "
            "\\log(\\sigma_i/\\sigma_{i+1})$ (the probability-flow "
            "ODE at $\\eta = 0$): the exponential integrator with damping $e^{-\\eta h}$, a first-difference "
            f"correction of the denoised value ({solver_type}), and fresh noise "
            "$\\sigma_{i+1}\\sqrt{1 - e^{-2\\eta h}}\\,s_{\\mathrm{noise}} z$; the last step returns the denoised value."
        ),
        options={"solver_type": solver_type},
        variant=solver_type,
        order=2,
        stochastic=True,
    )
