"""diffusers ``DPMSolverMultistepScheduler`` (DPM-Solver++ and SDE-DPM-Solver++, orders 1-3), with the exact denoiser.

Written from diffusers 0.42 ``schedulers/scheduling_dpmsolver_multistep.py`` (``dpm_solver_first_order_update``,
``multistep_dpm_solver_second_order_update``, ``multistep_dpm_solver_third_order_update``, ``step``), in
diffusers' VP coordinates alpha = sqrt(ab), sigma = sqrt(1 - ab), lambda = log(alpha / sigma),
h = lambda_{i+1} - lambda_i; the model output is converted to x0 (every ``prediction_type`` gives the
same x0_hat with the exact denoiser). Lu et al., DPM-Solver++ (arXiv 2211.01095).

First order (= DDIM): x' = (sigma_{i+1}/sigma_i) x - alpha_{i+1} (e^{-h} - 1) D_i.
State: the sample and the last two x0 predictions D_{i-1}, D_{i-2}.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..plan import PlanStep, step

PROCESS = "vp"
ENTRIES = (("x", "sample"), ("D_{i-1}", "data"), ("D_{i-2}", "data"))
KINDS = {"first": (0, 1), "second": (-1, 0, 1), "third": (-2, -1, 0, 1)}
OPTIONS = {
    "solver_order": (2, 1, 3),
    "algorithm_type": ("dpmsolver++", "sde-dpmsolver++"),
    "solver_type": ("midpoint", "heun"),
    "lower_order_final": (True, False),
    "euler_at_final": (False, True),
    "final_sigmas_type": ("zero", "sigma_min"),
}
#: Options that change the update equations (the others only change the plan).
BUILD_OPTIONS = ("algorithm_type", "solver_type")


def model_levels(K: int, final_sigmas_type: str) -> int:
    """Number of model calls N for K levels: K ("zero": then the clean level) or K - 1 ("sigma_min":
    the last level is the one the last step reaches)."""
    if final_sigmas_type == "zero":
        return K
    if K < 2:
        raise ValueError("alpha_bar: final_sigmas_type='sigma_min' needs at least 2 levels (the model levels, "
                         "then the final level the last step reaches)")
    return K - 1


def plan(K: int, levels: Optional[Sequence[float]] = None, params: Any = None, *, solver_order: int = 2,
         lower_order_final: bool = True, euler_at_final: bool = False, final_sigmas_type: str = "zero",
         **_: Any) -> list[PlanStep]:
    """diffusers' ``step``: order min(solver_order, steps so far + 1), first order on the last step with
    euler_at_final, final_sigmas_type='zero' or (lower_order_final and fewer than 15 steps), at most
    second order on the step before it (lower_order_final and fewer than 15 steps)."""
    N = model_levels(K, final_sigmas_type)
    out = []
    for i in range(N):
        last = i == N - 1 and (euler_at_final or (lower_order_final and N < 15) or final_sigmas_type == "zero")
        second_last = i == N - 2 and lower_order_final and N < 15
        if solver_order == 1 or i < 1 or last:
            out.append(step("first", i, i + 1))
        elif solver_order == 2 or i < 2 or second_last:
            out.append(step("second", i - 1, i, i + 1))
        else:
            out.append(step("third", i - 2, i - 1, i, i + 1))
    return out


def build(algorithm_type: str = "dpmsolver++", solver_type: str = "midpoint", **_: Any):  # noqa: ANN201
    """The three kinds of step of ``algorithm_type`` ("dpmsolver++" or "sde-dpmsolver++") and ``solver_type``."""
    import sympy as sp

    from ..forward import vp_denoiser
    from ..statespace import Update, from_module
    from ..symbols import slot_level

    if algorithm_type not in OPTIONS["algorithm_type"] or solver_type not in OPTIONS["solver_type"]:
        raise ValueError(f"unsupported algorithm_type/solver_type {algorithm_type!r}/{solver_type!r}")
    sde = algorithm_type == "sde-dpmsolver++"
    x, D1, D2 = sp.symbols("x D_{i-1} D_{i-2}", real=True)
    D0, Dd1, Dd2 = sp.symbols(r"D_i \mathcal{D}_1 \mathcal{D}_2", real=True)
    z = sp.Symbol("z", real=True)
    ab = {j: slot_level("vp", j) for j in (-2, -1, 0, 1)}
    alpha = {j: sp.sqrt(a) for j, a in ab.items()}
    sigma = {j: sp.sqrt(1 - a) for j, a in ab.items()}
    lam = {j: sp.log(alpha[j]) - sp.log(sigma[j]) for j in ab}
    h = lam[1] - lam[0]
    E = sp.exp(-h)  # e^{-h}
    if sde:  # sde-dpmsolver++: sample weight (sigma'/sigma) e^{-h}, D weights from e^{-2h}, fresh noise z
        base = sigma[1] / sigma[0] * E * x + alpha[1] * (1 - E**2) * D0 + sigma[1] * sp.sqrt(1 - E**2) * z
        w_mid = sp.Rational(1, 2) * alpha[1] * (1 - E**2)
        w_1 = alpha[1] * ((1 - E**2) / (-2 * h) + 1)
        w_2 = alpha[1] * ((1 - E**2 - 2 * h) / (2 * h) ** 2 - sp.Rational(1, 2))
        noise: tuple[sp.Symbol, ...] = (z,)
    else:  # dpmsolver++
        base = sigma[1] / sigma[0] * x - alpha[1] * (E - 1) * D0
        w_mid = -sp.Rational(1, 2) * alpha[1] * (E - 1)
        w_1 = alpha[1] * ((E - 1) / h + 1)
        w_2 = -alpha[1] * ((E - 1 + h) / h**2 - sp.Rational(1, 2))
        noise = ()
    model = (D0, vp_denoiser(ab[0])[0] * x)  # convert_model_output: x0_hat at the level the step leaves

    first = Update(state=(x, D1, D2), new=(base, D0, D1), noises=noise, stages=(model,), slots=(0, 1))

    r0 = (lam[0] - lam[-1]) / h  # h_0 / h
    second = Update(
        state=(x, D1, D2),
        new=(base + (w_mid if solver_type == "midpoint" else w_1) * Dd1, D0, D1),
        noises=noise,
        stages=(model, (Dd1, (D0 - D1) / r0)),  # D1 = (1/r0)(m0 - m1)
        slots=(-1, 0, 1),
    )

    r1 = (lam[-1] - lam[-2]) / h  # h_1 / h
    D1_0, D1_1 = (sp.Symbol(rf"\mathcal{{D}}_{{1,{k}}}", real=True) for k in (0, 1))
    third = Update(  # the third-order update has no midpoint variant
        state=(x, D1, D2),
        new=(base + w_1 * Dd1 + w_2 * Dd2, D0, D1),
        noises=noise,
        stages=(
            model,
            (D1_0, (D0 - D1) / r0),
            (D1_1, (D1 - D2) / r1),
            (Dd1, D1_0 + r0 / (r0 + r1) * (D1_0 - D1_1)),
            (Dd2, (D1_0 - D1_1) / (r0 + r1)),
        ),
        slots=(-2, -1, 0, 1),
    )

    title = "DPMSolverMultistepScheduler (" + ("SDE-DPM-Solver++" if sde else "DPM-Solver++") + f", {solver_type})"
    return from_module(
        __name__,
        kinds={"first": first, "second": second, "third": third},
        title=title,
        citation="Lu, Zhou, Bao, Chen, Li, Zhu. DPM-Solver++ (arXiv 2211.01095); diffusers "
        "scheduling_dpmsolver_multistep.py",
        description=(
            "A multistep exponential integrator in half the log-SNR, $\\tfrac12\\ell = \\log(\\sqrt{\\bar\\alpha}"
            "/\\sqrt{1 - \\bar\\alpha})$ (diffusers' $\\lambda = \\log(\\alpha_t/\\sigma_t)$): it "
            "extrapolates the denoised value from the last one to three levels"
            + (" and injects fresh noise (the SDE variant)." if sde else ".")
        ),
        options={"algorithm_type": algorithm_type, "solver_type": solver_type},
        variant=f"{algorithm_type}/{solver_type}",
        order=2,
        stochastic=sde,
    )
