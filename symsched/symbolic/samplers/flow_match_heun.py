"""Flow-matching Heun, diffusers ``FlowMatchHeunDiscreteScheduler.step`` (no churn), with the exact velocity.

x_t = (1 - t) x0 + t eps, the model predicts v = eps - x0. diffusers runs each step as two calls:
first order ``denoised = x - v t``, ``d = (x - denoised)/t``, ``x' = x + (t_s - t) d``; second order at
(x', t_s): ``d' = (x' - (x' - v' t_s))/t_s``, ``x_s = x + (t_s - t)(d + d')/2``. Its schedule repeats every
interior level, so the last step (into t = 0) is the first-order Euler step alone.
"""

from __future__ import annotations

from ..plan import default_plan

PROCESS = "flow"
ENTRIES = (("x", "sample"),)
KINDS = {"step": (0, 1), "final": (0, 1)}
PARAMS: dict[str, float] = {}
plan = default_plan


def build():  # noqa: ANN201 - returns a Sampler
    """Heun (trapezoid) steps of dx/dt = v(x, t); Euler into t = 0."""
    import sympy as sp

    from ..forward import flow_velocity
    from ..statespace import Update, from_module
    from ..symbols import slot_level

    t, t_next = slot_level(PROCESS, 0), slot_level(PROCESS, 1)
    x = sp.Symbol("x", real=True)
    v, den, d, xp, v2, den2, d2 = sp.symbols(r"\hat{v} D d \tilde{x} \hat{v}' D' d'", real=True)
    first = (
        (v, flow_velocity(t) * x),  # (1) model_output at (x, t)
        (den, x - v * t),  # (2) denoised = sample - model_output * sigma
        (d, (x - den) / t),  # (3) derivative = (sample - denoised) / sigma_hat
    )
    euler = Update(state=(x,), new=(x + (t_next - t) * d,), stages=first)
    heun = Update(
        state=(x,),
        new=(x + (t_next - t) * (d + d2) / 2,),  # (7) prev_sample = sample + 0.5 (d + d') dt
        stages=first + (
            (xp, x + (t_next - t) * d),  # (4) first-order prev_sample
            (v2, flow_velocity(t_next) * xp),  # (5) model_output at (x', sigma_next)
            (den2, xp - v2 * t_next),
            (d2, (xp - den2) / t_next),  # (6) derivative at sigma_next
        ),
    )
    return from_module(
        __name__,
        kinds={"step": heun, "final": euler},
        title="Flow-matching Heun (diffusers FlowMatchHeunDiscreteScheduler)",
        citation=(
            "Karras et al., EDM (arXiv 2206.00364), Algorithm 1, on the flow ODE; "
            "diffusers schedulers/scheduling_flow_match_heun_discrete.py"
        ),
        description=(
            "Heun's method on the flow ODE $dx/dt = v(x, t)$: an Euler predictor, then the trapezoid of the "
            "velocities at both levels; the last step into $t = 0$ is a plain Euler step (as diffusers)."
        ),
        order=2,
    )
