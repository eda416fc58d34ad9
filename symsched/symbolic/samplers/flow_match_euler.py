"""Flow-matching Euler, diffusers ``FlowMatchEulerDiscreteScheduler.step`` (SD3, Flux), with the exact velocity.

x_t = (1 - t) x0 + t eps (diffusers calls t ``sigma``); the model predicts the velocity v = eps - x0;
x_s = x_t + (t_s - t_t) v_hat (``prev_sample = sample + dt * model_output``, ``dt = sigma_next - sigma``).
With the exact denoiser v_hat = eps_hat - x0_hat, so x_s = (1 - t_s) x0_hat + t_s eps_hat: DDIM eta = 0
under the map alpha_bar = (1 - t)^2 / ((1 - t)^2 + t^2) (proved in tests/test_flow_samplers.py).
"""

from __future__ import annotations

from ..plan import default_plan

PROCESS = "flow"
ENTRIES = (("x", "sample"),)
KINDS = {"step": (0, 1), "final": (0, 1)}
PARAMS: dict[str, float] = {}
plan = default_plan


def build():  # noqa: ANN201 - returns a Sampler
    """One Euler step of dx/dt = v(x, t) with the exact velocity."""
    import sympy as sp

    from ..forward import flow_velocity
    from ..statespace import Update, from_module
    from ..symbols import slot_level

    t, t_next = slot_level(PROCESS, 0), slot_level(PROCESS, 1)
    x, v = sp.Symbol("x", real=True), sp.Symbol(r"\hat{v}", real=True)
    step = Update(
        state=(x,),
        new=(x + (t_next - t) * v,),  # (2) prev_sample = sample + dt * model_output
        stages=((v, flow_velocity(t) * x),),  # (1) v_hat = E[eps - x0 | x_t]
    )
    return from_module(
        __name__,
        kinds={"step": step, "final": step},
        title="Flow-matching Euler (diffusers FlowMatchEulerDiscreteScheduler)",
        citation=(
            "Lipman et al., Flow Matching for Generative Modeling (arXiv 2210.02747); Esser et al., SD3 "
            "(arXiv 2403.03206); diffusers schedulers/scheduling_flow_match_euler_discrete.py"
        ),
        description=(
            "One Euler step of the flow ODE $dx/dt = v(x, t)$ along $x_t = (1-t)x_0 + t\\varepsilon$ with the "
            "exact velocity $\\hat v = \\hat\\varepsilon - \\hat x_0$. It lands on "
            "$(1-t_{i+1})\\hat x_0 + t_{i+1}\\hat\\varepsilon$: exactly DDIM with $\\eta = 0$ under the map "
            "$\\bar\\alpha = (1-t)^2/((1-t)^2 + t^2)$."
        ),
    )
