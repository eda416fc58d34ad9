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
