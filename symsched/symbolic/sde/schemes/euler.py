"""Euler on the probability-flow ODE (Pierret & Galerne 2025, arXiv 2405.14250, eq. (16)).

y_{k+1} = y_k + Delta beta_k (y_k - y_k / lambda_k).
"""

from __future__ import annotations

from ..model import Delta, ode_drift, tau_k, y
from ..scheme import Scheme


def scheme() -> Scheme:
    """Explicit Euler on the PF-ODE."""
    return Scheme(
        name="euler",
        title="Euler (probability-flow ODE)",
        equation="ode",
        evals_per_step=1,
        order=1,
        description="Explicit Euler on the probability-flow ODE, slope taken at $\\tau_k$.",
        citation="Pierret, Galerne (arXiv 2405.14250), eq. (16)",
        final=y + Delta * ode_drift(y, tau_k),  # (16)
    )
