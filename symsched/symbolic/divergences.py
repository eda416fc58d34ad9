"""Per-mode distances between zero-mean Gaussians (docs/model.md §6); the totals sum over modes.

KL is written once, as a function of the variance ratio ``r = p/q`` and its logarithm ``t = log r``:
``F(r, t) = (r - 1 - t)/2`` (:func:`kl_of_ratio`). The display form is ``F(p/q, log(p/q))``; the
numeric form (:func:`kl_parts`) takes ``t = log p - log q`` where the ratio is not a normal float64
(finite for every positive ``p`` and ``q``), while ``r = p/q`` may underflow to 0 (then
``F = -(1 + t)/2`` is still right) or overflow to inf (then ``F`` is its limit, inf; the engine evaluates such a
term again in longdouble, where the ratio is finite). W2² is ``(√p − √q)²``; its amplitude ``|√p − √q|``
(:func:`w2_amplitude`, rationalised as ``|p − q|/(√p + √q)``: nothing cancels) never overflows, so the total
``W2 = (Σ a²)^½`` is formed as a scaled sum by the engine.
"""

from __future__ import annotations

import sympy as sp

from .symbols import p, q

__all__ = ["kl", "kl_of_ratio", "kl_parts", "w2_squared", "w2_amplitude", "DIVERGENCES", "divergence",
           "ratio", "log_ratio", "NORMAL_LOG_RATIO"]

#: The variance ratio r = p/q of one mode and its logarithm t = log r.
ratio = sp.Symbol("r", extended_nonnegative=True)
log_ratio = sp.Symbol("t", extended_real=True)


def kl_of_ratio(r: sp.Expr = ratio, t: sp.Expr = log_ratio) -> sp.Expr:
    """KL(N(0,p) || N(0,q)) as a function of r = p/q and t = log r: (r - 1 - t) / 2."""
    return (r - 1 - t) / 2


def kl(p_: sp.Expr = p, q_: sp.Expr = q) -> sp.Expr:
    """KL(N(0,p) || N(0,q)) = (p/q - 1 - log(p/q)) / 2."""
    return kl_of_ratio(p_ / q_, sp.log(p_ / q_))


#: |log p - log q| below which the ratio p/q is a normal float64 (e^±700 lies inside 2.2e-308 .. 1.8e308)
NORMAL_LOG_RATIO = 700


def kl_parts(p_: sp.Expr = p, q_: sp.Expr = q) -> tuple[sp.Expr, tuple[tuple[sp.Symbol, sp.Expr], ...]]:
    """Numeric form of :func:`kl`: ``(F(r, t), ((r, p/q), (d, log p - log q), (t, log r or d)))``.

    The ratio ``r`` is formed directly and may over/underflow; ``F`` is linear in ``r``, so ``r = 0``
    gives the right value and ``r = inf`` the right limit (taken with :func:`sympy.limit` by the
    engine). The log-ratio is ``log r`` (accurate to an ulp, also when ``p ≈ q``) while ``r`` is a
    normal number, and the difference of logarithms ``d`` (finite for all positive floats) beyond.
    """
    d = sp.Symbol("d", extended_real=True)
    t = sp.Piecewise((sp.log(ratio), sp.Abs(d) < NORMAL_LOG_RATIO), (d, True))
    return kl_of_ratio(), ((ratio, p_ / q_), (d, sp.log(p_) - sp.log(q_)), (log_ratio, t))


def w2_squared(p_: sp.Expr = p, q_: sp.Expr = q) -> sp.Expr:
    """W2(N(0,p), N(0,q))^2 = (sqrt(p) - sqrt(q))^2."""
    return (sp.sqrt(p_) - sp.sqrt(q_)) ** 2


def w2_amplitude(p_: sp.Expr = p, q_: sp.Expr = q) -> sp.Expr:
    """|sqrt(p) - sqrt(q)|, the square root of :func:`w2_squared`, rationalised: |p - q| / (sqrt(p) + sqrt(q)).

    The base of :func:`w2_squared` times its conjugate over the conjugate, so that nothing cancels where p ≈ q
    (the difference of square roots lost every digit there: ``w2_distance([1], [1 + 2^-52])`` was 0; audit of 6
    December); 0 where p = q (both 0 included); at most max(p, q)^½, so it never overflows."""
    base, exponent = w2_squared(p_, q_).as_base_exp()
    assert exponent == 2
    conjugate = sp.sqrt(p_) + sp.sqrt(q_)
    difference = sp.expand(base * conjugate)  # p - q (or q - p): no square root left
    assert sp.expand(difference**2 - (p_ - q_) ** 2) == 0
    return sp.Piecewise((sp.Integer(0), sp.Eq(p_, q_)), (sp.Abs(difference) / conjugate, True))


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
