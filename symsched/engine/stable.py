"""Rewrite step expressions into a cancellation-free form before compiling them.

Levels are mapped to the VE coordinate sigma (alpha_bar = 1/(1 + sigma^2)) and the larger level of
a step is written sigma_t = sigma_s + h with the gap h > 0. After factoring, the expressions of the
samplers here are ratios of sums of positive terms in (S, sigma_s, h), so neither 1 - alpha_bar near
alpha_bar = 1 nor alpha_bar_t / alpha_bar_s for close levels loses digits.
"""

from __future__ import annotations

import sympy as sp

from ..symbolic.forward import alpha_bar_from_sigma
from ..symbolic.symbols import alpha_bar_s, alpha_bar_t, h, sigma_s, sigma_t

__all__ = ["to_sigma", "to_gap", "tidy"]


def to_sigma(expr: sp.Expr) -> sp.Expr:
    """Replace VP levels alpha_bar_{t,s} by their VE coordinates sigma_{t,s}."""
    return expr.subs({alpha_bar_t: alpha_bar_from_sigma(sigma_t), alpha_bar_s: alpha_bar_from_sigma(sigma_s)})


def to_gap(expr: sp.Expr) -> sp.Expr:
    """Replace sigma_t by sigma_s + h."""
    return expr.subs(sigma_t, sigma_s + h)


def tidy(expr: sp.Expr) -> sp.Expr:
    """Simplify, then factor numerator and denominator (keeps sums of positive terms together)."""
    expr = sp.simplify(expr)
    if expr.is_number:
        return expr
    return sp.factor(expr)


#: Compile-time reparametrisation of sampler parameters: eta -> zeta = 1 - eta^2 in [0, 1], so that
#: DDIM's sqrt(1 - ab_s - sigma_t^2) becomes a sum of positive terms for every eta in [0, 1].
zeta = sp.Symbol("zeta", nonnegative=True)


def param_rewrites() -> dict[sp.Symbol, tuple[sp.Symbol, sp.Expr]]:
    """symbol -> (numeric symbol, symbol written in the numeric symbol)."""
    from ..symbolic.symbols import eta

    return {eta: (zeta, sp.sqrt(1 - zeta))}


def rewrite_params(expr: sp.Expr, params: tuple[sp.Symbol, ...]) -> tuple[sp.Expr, list[sp.Symbol]]:
    """Substitute each parameter by its numeric form; return the expression and the numeric symbols."""
    table = param_rewrites()
    numeric = []
    for prm in params:
        sym, form = table.get(prm, (prm, prm))
        expr = expr.subs(prm, form)
        numeric.append(sym)
    return expr, numeric
