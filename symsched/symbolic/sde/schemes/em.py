"""Euler–Maruyama on the reverse SDE (Pierret & Galerne 2025, arXiv 2405.14250, eq. (10)).

y_{k+1} = y_k + Delta beta_k (y_k - 2 y_k / lambda_k) + sqrt(2 Delta beta_k) z_k.
"""

from __future__ import annotations

import sympy as sp

from ..model import Delta, beta, sde_drift, tau_k, y, z
from ..scheme import Scheme


def scheme() -> Scheme:
    """Euler–Maruyama: drift and diffusion frozen at tau_k."""
    return Scheme(
        name="em",
        title="Euler--Maruyama (reverse SDE)",
        equation="sde",
        evals_per_step=1,
        order=1,
        description=(
            "Euler--Maruyama freezes the drift and the diffusion of the reverse SDE at the start "
            "$\\tau_k$ of the step."
        ),
        citation="Pierret, Galerne (arXiv 2405.14250), eq. (10)",
        final=y + Delta * sde_drift(y, tau_k) + sp.sqrt(2 * Delta * beta(tau_k)) * z,  # (10)
    )
