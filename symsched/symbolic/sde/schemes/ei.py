"""Exponential integrator on the reverse SDE (Pierret & Galerne 2025, arXiv 2405.14250, eq. (12)).

y_{k+1} = y_k + gamma_1 (y_k - 2 y_k / lambda_k) + sqrt(2 gamma_2) z_k with
gamma_1 = e^{B(tau_k) - B(tau_{k+1})} - 1 and gamma_2 = (e^{2(B(tau_k) - B(tau_{k+1}))} - 1)/2:
the linear part beta y is integrated exactly, the score is frozen at tau_k.
"""

from __future__ import annotations

import sympy as sp

from ..model import B, score, tau_k, tau_next, y, z
from ..scheme import Scheme

gamma_1, gamma_2 = sp.symbols(r"\gamma_1 \gamma_2", positive=True)


def scheme() -> Scheme:
    """Exponential integrator (score frozen at tau_k, linear drift exact)."""
    dB = B(tau_k) - B(tau_next)
    return Scheme(
        name="ei",
        title="Exponential integrator (reverse SDE)",
        equation="sde",
        evals_per_step=1,
        order=1,
        description=(
            "The exponential integrator solves the linear part $\\beta y$ of the reverse SDE exactly "
            "over the step and freezes the score at $\\tau_k$."
        ),
        citation="Pierret, Galerne (arXiv 2405.14250), eq. (12)",
        assignments=(
            (gamma_1, sp.exp(dB) - 1),  # (1)
            (gamma_2, (sp.exp(2 * dB) - 1) / 2),  # (2)
        ),
        final=y + gamma_1 * (y + 2 * score(y, tau_k)) + sp.sqrt(2 * gamma_2) * z,  # (12)
    )
