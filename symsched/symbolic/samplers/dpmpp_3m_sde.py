"""DPM-Solver++(3M) SDE, k-diffusion ``sample_dpmpp_3m_sde`` (k-diffusion 0.1.1.post1, ``sampling.py``).

With t = -log sigma, h = t_{i+1} - t_i, h_eta = h (eta + 1), h_1, h_2 the two previous steps' h:
x' = e^{-h_eta} x - expm1(-h_eta) D_i + (phi_2 d1 - phi_3 d2, or phi_2 d on the second step)
     + sigma_{i+1} sqrt(-expm1(-2 eta h)) s_noise z,
phi_2 = expm1(-h_eta)/h_eta + 1, phi_3 = phi_2/h_eta - 1/2, r0 = h_1/h, r1 = h_2/h, d1_0 = (D_i - D_{i-1})/r0,
d1_1 = (D_{i-1} - D_{i-2})/r1, d1 = d1_0 + (d1_0 - d1_1) r0/(r0 + r1), d2 = (d1_0 - d1_1)/(r0 + r1);
x' = D_i on the step to sigma = 0. Disjoint Brownian-tree intervals: independent draws per step.
State: the sample and the two previous denoised values.
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step

PROCESS = "ve"
ENTRIES = (("x", "sample"), ("D_{i-1}", "data"), ("D_{i-2}", "data"))
KINDS = {"first": (0, 1), "second": (-1, 0, 1), "third": (-2, -1, 0, 1), "final": (0, 1)}
PARAMS = {"eta": 1.0, "s_noise": 1.0}


def plan(K: int, levels: Any = None, params: Any = None, **options: Any) -> list[PlanStep]:
    """First, second, then third order as denoised values accumulate; ``final`` (x = D) into sigma = 0."""
    out = []
    for i in range(K):
        if i == K - 1:
            out.append(step("final", i, i + 1))
        elif i == 0:
            out.append(step("first", i, i + 1))
        elif i == 1:
            out.append(step("second", i - 1, i, i + 1))
        else:
            out.append(step("third", i - 2, i - 1, i, i + 1))
    return out


def build():  # noqa: ANN201 - returns a Sampler
    import sympy as sp
    from sympy.codegen.cfunctions import expm1

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import param, slot_level

    eta, s_noise = param("eta"), param("s_noise")
    x, D1, D2, D, z = sp.symbols("x D_{i-1} D_{i-2} D_i z", real=True)
    lv = {j: slot_level("ve", j) for j in (-2, -1, 0, 1)}
    t_fn = lambda sig: -sp.log(sig)  # noqa: E731
    h = t_fn(lv[1]) - t_fn(lv[0])
    h_1 = t_fn(lv[0]) - t_fn(lv[-1])
    h_2 = t_fn(lv[-1]) - t_fn(lv[-2])
    h_eta = h * (eta + 1)
    base = sp.exp(-h_eta) * x + (-expm1(-h_eta)) * D
    noise = lv[1] * sp.sqrt(-expm1(-2 * h * eta)) * s_noise * z
    phi_2 = expm1(-h_eta) / h_eta + 1
    phi_3 = phi_2 / h_eta - sp.Rational(1, 2)
    # second step: r = h_1/h, d = (D - D_1)/r
    corr2 = phi_2 * (D - D1) / (h_1 / h)
    # third step
    r0, r1 = h_1 / h, h_2 / h
    d1_0 = (D - D1) / r0
    d1_1 = (D1 - D2) / r1
    d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    corr3 = phi_2 * d1 - phi_3 * d2
    stage = ((D, ve_denoiser(lv[0]) * x),)
    state = (x, D1, D2)
    kinds = {
        "first": Update(state=state, new=(base + noise, D, D1), noises=(z,), stages=stage, slots=(0, 1)),
        "second": Update(state=state, new=(base + corr2 + noise, D, D1), noises=(z,), stages=stage, slots=(-1, 0, 1)),
        "third": Update(state=state, new=(base + corr3 + noise, D, D1), noises=(z,), stages=stage, slots=(-2, -1, 0, 1)),
        "final": Update(state=state, new=(D, D, D1), stages=stage, slots=(0, 1)),  # denoising step
    }
    return from_module(
        __name__,
        kinds=kinds,
        title="DPM-Solver++(3M) SDE (k-diffusion)",
        citation="Lu, Zhou, Bao, Chen, Li, Zhu. DPM-Solver++ (arXiv 2211.01095); k-diffusion sample_dpmpp_3m_sde",
        description=(
            "A third-order multistep solver of the reverse SDE in $t = -\\log\\sigma$, step $h = t_{i+1} - t_i = "
            "\\log(\\sigma_i/\\sigma_{i+1})$ (the probability-flow "
            "ODE at $\\eta = 0$): the exponential integrator with damping $e^{-\\eta h}$, first and second "
            "differences of the last three denoised values, and fresh noise "
            "$\\sigma_{i+1}\\sqrt{1 - e^{-2\\eta h}}\\,s_{\\mathrm{noise}} z$; the last step returns the denoised value."
        ),
        order=2,  # global order: the Euler first step caps it at 2 (measured: tests/test_sampler_identities.py)
        stochastic=True,
    )
