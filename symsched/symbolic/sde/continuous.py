"""Exact output variance of the continuous reverse SDE and probability-flow ODE, per mode.

Ito's formula for a reverse-time linear equation ``dy = a(tau) y dt + sigma(tau) dw`` (``t = T - tau``)
gives the variance ODE ``dv/dt = 2 a v + sigma^2``, i.e. ``dv/dtau = -(2 a v + sigma^2)``. With
``a = beta (1 - 2/lambda), sigma^2 = 2 beta`` (reverse SDE) or ``a = beta (1 - 1/lambda), sigma = 0``
(PF-ODE) and the coordinate ``b = B(tau)`` (``db = beta dtau``), both ODEs are autonomous in ``b``.
SymPy's ``dsolve`` solves them from ``v(B(T)) = v_init`` and :func:`closed_form` gives the compact
forms, whose equality with the dsolve solutions is checked symbolically (:func:`verify`):

- reverse SDE: ``P = lambda(eps) + (v_init - lambda(T)) e^{-2(B(T) - B(eps))} lambda(eps)^2 / lambda(T)^2``,
  kept as ``P = rho (1 - r + v_init r rho)``, ``rho = lambda(eps)/lambda(T)``, ``r = e^{-2(B(T) - B(eps))}``
  (the same function with the exact cancellation of its S terms done: no digits lost for any S);
- PF-ODE: ``P = v_init lambda(eps) / lambda(T)``.

With the exact start ``v_init = lambda(T)`` both give ``P = lambda(eps)``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import sympy as sp

from .model import B, S, b, beta, eps, horizon, lam, lam_of_b, v_init

__all__ = ["KINDS", "INITS", "variance_ode", "dsolve_solution", "closed_form", "init_variance", "verify",
           "exact_start_variance", "exact_start_reduces"]

Kind = Literal["sde", "ode"]
KINDS: tuple[str, ...] = ("sde", "ode")
INITS: tuple[str, ...] = ("white", "exact")

#: Value of B at the horizon, a symbol while solving in the b coordinate.
B_T = sp.Symbol("B_T", nonnegative=True)


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} (got {kind!r})")


def variance_ode(kind: str) -> tuple[sp.Function, sp.Eq]:
    """(v, Eq(dv/db, rhs)): the variance ODE of the reverse equation in the coordinate b = B(tau).

    rhs = -(2 a v + sigma^2) / beta with a/beta = 1 - 2/lambda, sigma^2/beta = 2 (SDE) or
    a/beta = 1 - 1/lambda, sigma = 0 (ODE), and lambda written in b.
    """
    _check(kind)
    v = sp.Function("v")
    L = lam_of_b(b)
    if kind == "sde":
        a_over_beta, sig2_over_beta = 1 - 2 / L, sp.Integer(2)
    else:
        a_over_beta, sig2_over_beta = 1 - 1 / L, sp.Integer(0)
    return v, sp.Eq(v(b).diff(b), -(2 * a_over_beta * v(b) + sig2_over_beta))


@lru_cache(maxsize=None)
def dsolve_solution(kind: str) -> sp.Expr:
    """SymPy's dsolve solution v(b) with v(B_T) = v_init (an expression in b, B_T, S, v_init)."""
    v, ode = variance_ode(kind)
    return sp.dsolve(ode, v(b), ics={v(B_T): v_init}).rhs


def closed_form(kind: str) -> sp.Expr:
    """Compact closed form of the output variance at forward time eps, in lambda(.), B(.), v_init."""
    _check(kind)
    if kind == "sde":
        # lambda(eps) + (v_init - lambda(T)) r lambda(eps)^2/lambda(T)^2 with r = e^{-2(B(T) - B(eps))}, written
        # without its S - S cancellation: lambda(T) - r lambda(eps) = 1 - r for every S (the S terms cancel
        # exactly), so P = rho (1 - r + v_init r rho) with rho = lambda(eps)/lambda(T); the textbook order lost
        # every digit for S >= 1e16 and went negative or NaN beyond
        r = sp.exp(-2 * (B(horizon) - B(eps)))
        rho = lam(eps) / lam(horizon)
        return rho * ((1 - r) + v_init * r * rho)
    return v_init * lam(eps) / lam(horizon)


def init_variance(init: str) -> sp.Expr:
    """Start variance at tau = T: 1 (white) or lambda(T) (exact)."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS} (got {init!r})")
    return sp.Integer(1) if init == "white" else lam(horizon)


def output_variance(kind: str, init: str) -> sp.Expr:
    """closed_form with the start variance substituted (in lambda(.), B(.))."""
    return closed_form(kind).subs(v_init, init_variance(init))


def exact_start_variance() -> sp.Expr:
    """lambda(eps): what both kinds give from the exact start v_init = lambda(T) (:func:`exact_start_reduces`)."""
    return lam(eps)


@lru_cache(maxsize=None)
def exact_start_reduces(kind: str) -> bool:
    """True when :func:`output_variance` ``(kind, "exact")`` equals :func:`exact_start_variance` once lambda is
    written out (for the SDE form this uses lambda(T) - r lambda(eps) = 1 - r, true for every S)."""
    expr = output_variance(kind, "exact") - exact_start_variance()
    expr = expr.subs({lam(eps): lam_of_b(B(eps)), lam(horizon): lam_of_b(B(horizon))})
    return sp.simplify(expr) == 0


@lru_cache(maxsize=None)
def verify(kind: str) -> bool:
    """True when the compact closed form equals the dsolve solution (checked in the b coordinate)."""
    compact = closed_form(kind).subs({lam(eps): lam_of_b(b), lam(horizon): lam_of_b(B_T)})
    compact = compact.subs({B(horizon): B_T, B(eps): b})
    diff = (dsolve_solution(kind) - compact).rewrite(sp.exp)
    return sp.cancel(sp.expand(diff)) == 0


_ = (S, beta)
