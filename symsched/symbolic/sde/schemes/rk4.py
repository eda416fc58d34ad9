"""Classic fourth-order Runge–Kutta on the probability-flow ODE (Pierret & Galerne 2025, eq. (20)).

K_1 = f(y, tau_k), K_2 = f(y + Delta K_1 / 2, tau_k - Delta/2), K_3 = f(y + Delta K_2 / 2, tau_k - Delta/2),
K_4 = f(y + Delta K_3, tau_{k+1}), y_{k+1} = y + Delta (K_1 + 2 K_2 + 2 K_3 + K_4) / 6,
with the PF-ODE slope f(y, tau) = beta(tau)(y - y/lambda(tau)).
"""

from __future__ import annotations

import sympy as sp

from ..model import Delta, ode_drift, tau_k, tau_next, y
from ..scheme import Scheme

K_1, K_2, K_3, K_4 = sp.symbols("K_1 K_2 K_3 K_4", real=True)


def scheme() -> Scheme:
    """RK4: 4 score evaluations per step, middle stages at forward time tau_k - Delta/2."""
    mid = tau_k - Delta / 2
    return Scheme(
        name="rk4",
        title="Runge--Kutta 4 (probability-flow ODE)",
        equation="ode",
        evals_per_step=4,
        order=4,
        description=(
            "The classic fourth-order Runge--Kutta method; the two middle stages sit at forward "
            "time $\\tau_k - \\Delta/2$ and the last one at $\\tau_{k+1}$."
        ),
        citation="Pierret, Galerne (arXiv 2405.14250), eq. (20)",
        assignments=(
            (K_1, ode_drift(y, tau_k)),  # (1)
            (K_2, ode_drift(y + Delta * K_1 / 2, mid)),  # (2)
            (K_3, ode_drift(y + Delta * K_2 / 2, mid)),  # (3)
            (K_4, ode_drift(y + Delta * K_3, tau_next)),  # (4)
        ),
        final=y + Delta * (K_1 + 2 * K_2 + 2 * K_3 + K_4) / 6,  # (5)
    )
