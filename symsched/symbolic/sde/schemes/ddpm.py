"""DDPM discretisation of the reverse SDE (Ho et al. 2020; Pierret & Galerne 2025, eq. (14)).

b = 2 Delta beta_k (rendered beta^DDPM_k: the model's b is B(tau)), y_{k+1} = (y_k - b y_k / lambda_k) / sqrt(1 - b) + sqrt(b) z_k
(defined while 2 Delta beta_k < 1).
"""

from __future__ import annotations

import sympy as sp

from ..model import Delta, beta, score, tau_k, y, z
from ..scheme import Scheme

b = sp.Symbol(r"\beta^{\mathrm{DDPM}}_k", positive=True)  # (not the model's coordinate b = B(tau))


def scheme() -> Scheme:
    """DDPM ancestral step with beta_DDPM = 2 Delta beta_k."""
    return Scheme(
        name="ddpm",
        title="DDPM discretisation (reverse SDE)",
        equation="sde",
        evals_per_step=1,
        order=1,
        description=(
            "The DDPM ancestral step with the per-step variance $\\beta^{\\mathrm{DDPM}}_k = 2\\Delta\\beta_k$ (it "
            "needs $\\beta^{\\mathrm{DDPM}}_k < 1$, i.e.\\ enough grid points)."
        ),
        citation="Ho, Jain, Abbeel (arXiv 2006.11239); Pierret, Galerne (arXiv 2405.14250), eq. (14)",
        assignments=((b, 2 * Delta * beta(tau_k)),),  # (1)
        final=(y + b * score(y, tau_k)) / sp.sqrt(1 - b) + sp.sqrt(b) * z,  # (14)
    )
