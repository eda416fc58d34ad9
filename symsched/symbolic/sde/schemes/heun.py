"""Heun on the probability-flow ODE (Pierret & Galerne 2025, arXiv 2405.14250, eq. (18)).

d_1 = f(y_k, tau_k), y' = y_k + Delta d_1 (Euler predictor), d_2 = f(y', tau_{k+1}),
y_{k+1} = y_k + Delta (d_1 + d_2) / 2, with the PF-ODE slope f(y, tau) = beta(tau)(y - y/lambda(tau)).
Every step, the last one included, evaluates the score at tau_{k+1} (at eps on the last step).
"""

from __future__ import annotations

import sympy as sp

from ..model import Delta, ode_drift, tau_k, tau_next, y
from ..scheme import Scheme

d_1, y_pred, d_2 = sp.symbols("d_1 y' d_2", real=True)


def scheme() -> Scheme:
    """Heun (explicit trapezoid): 2 score evaluations per step."""
    return Scheme(
        name="heun",
        title="Heun (probability-flow ODE)",
        equation="ode",
        evals_per_step=2,
        order=2,
        description=(
            "Heun's method: an Euler predictor, then the trapezoid of the slope at $\\tau_k$ and "
            "the slope of the predictor at $\\tau_{k+1}$; every step, the last one included, "
            "evaluates the score at $\\tau_{k+1}$."
        ),
        citation="Pierret, Galerne (arXiv 2405.14250), eq. (18)",
        assignments=(
            (d_1, ode_drift(y, tau_k)),  # (1) slope at tau_k
            (y_pred, y + Delta * d_1),  # (2) Euler predictor
            (d_2, ode_drift(y_pred, tau_next)),  # (3) slope at tau_{k+1} of the predictor
        ),
        final=y + Delta * (d_1 + d_2) / 2,  # (4) trapezoid
    )
