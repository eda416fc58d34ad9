"""Per-mode distances between zero-mean Gaussians (MATH.md §6); the totals sum over modes."""

from __future__ import annotations

import sympy as sp

from .symbols import p, q

__all__ = ["kl", "w2_squared", "DIVERGENCES", "divergence"]


def kl(p_: sp.Expr = p, q_: sp.Expr = q) -> sp.Expr:
    """KL(N(0,p) || N(0,q)) = (p/q - 1 - log(p/q)) / 2."""
    return (p_ / q_ - 1 - sp.log(p_ / q_)) / 2


def w2_squared(p_: sp.Expr = p, q_: sp.Expr = q) -> sp.Expr:
    """W2(N(0,p), N(0,q))^2 = (sqrt(p) - sqrt(q))^2."""
    return (sp.sqrt(p_) - sp.sqrt(q_)) ** 2


#: divergence name -> (per-mode expression of the generated P and the data S, description)
DIVERGENCES = ("kl", "kl-reverse", "w2")


def divergence(name: str, generated: sp.Expr, data: sp.Expr) -> sp.Expr:
    """Per-mode objective: "kl" = KL(data || generated), "kl-reverse" = KL(generated || data), "w2" = W2^2."""
    if name == "kl":
        return kl(data, generated)
    if name == "kl-reverse":
        return kl(generated, data)
    if name == "w2":
        return w2_squared(generated, data)
    raise ValueError(f"divergence must be one of {DIVERGENCES} (got {name!r})")
