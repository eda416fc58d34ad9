"""Compiled per-mode divergences, generated from :mod:`symsched.symbolic.divergences`.

- ``divergence_kernel(name)(P, S) -> [f, df/dP]``: the per-mode objective of the generated variance
  ``P`` against the data variance ``S`` ("kl" = KL(data || generated), "kl-reverse", "w2" = W2²).
  KL is evaluated in its ratio form ``F(r, t)`` with ``r`` the variance ratio and ``t`` its
  logarithm as a difference of logs (both named intermediates, formed exactly as written), and
  ``F``'s limit where the ratio overflows to inf. The derivative is the chain rule through
  ``(r, t)``, written in ``r``: ``(1 - r)/(2P)`` for "kl", never ``S/P²`` (which underflows for
  modes below 1e-154).
- ``w2_amplitude_kernel()(p, q) -> [|√p − √q|]`` for the scaled W2 sum.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .codegen import compile_kernel

__all__ = ["divergence_kernel", "kl_series_kernel", "w2_amplitude_kernel", "KL_SERIES_RADIUS", "KL_SERIES_ORDER"]

#: |m| = |generated/data - 1| below which a KL term is summed from its Taylor series in m (the ratio form's
#: r - 1 - log r cancels to ~m^2/2 and keeps ~log10(m^2/(4 ulp)) digits: 8e-7 relative off at m = 1e-10) ...
KL_SERIES_RADIUS = 1e-2
#: ... to this order (the first term left out, ~m^12, is below 1e-20 of the m^2 term there)
KL_SERIES_ORDER = 12


def _kl_form(P: Any, S: Any, reverse: bool) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """[f, df/dP] of KL(S || P) (or KL(P || S)) in the ratio form, and the named intermediates."""
    import sympy as sp

    from ..symbolic.divergences import kl_parts, ratio

    num, den = (P, S) if reverse else (S, P)
    F, defs = kl_parts(num, den)
    (r, r_of), (d, d_of), (t, _) = defs
    t_of = d_of  # for the derivative: dt/dP is the same in both branches of t
    # chain rule through (r, t); dr/dP written in r by solving r = r_of for the data variance S
    (S_of_r,) = sp.solve(sp.Eq(r_of, r), S)
    dr = sp.simplify(sp.diff(r_of, P).subs(S, S_of_r))
    dt = sp.simplify(sp.diff(t_of, P))
    dF = sp.factor(sp.diff(F, r) * dr + sp.diff(F, t) * dt)  # in r and P, e.g. (1 - r)/(2P) for "kl"
    # where r overflows, the same derivative in the inverse ratio v = 1/r (which is then 0) and S
    v = sp.Symbol("v", extended_nonnegative=True)
    (P_of_v,) = sp.solve(sp.Eq(1 / r_of, v), P)
    dF_v = sp.factor(sp.cancel(dF.subs(r, r_of).subs(P, P_of_v)))
    at_inf = sp.limit(F.subs(t, sp.log(r)), r, sp.oo)  # the value where the ratio overflows
    f = sp.Piecewise((at_inf, sp.Eq(ratio, sp.oo)), (F, True))
    df = sp.Piecewise((dF_v, sp.Eq(ratio, sp.oo)), (dF, True))
    return [f, df], [*defs, (v, den / num)]


def divergence_kernel(name: str) -> Callable[..., list[Any]]:
    """``f(P, S) -> [f, df/dP]`` of the per-mode divergence ``name`` (see the module docstring)."""

    def build() -> tuple[Sequence[Any], ...]:
        import sympy as sp

        from ..symbolic.divergences import DIVERGENCES, divergence
        from ..symbolic.symbols import S, p

        if name not in DIVERGENCES:
            raise ValueError(f"divergence must be one of {DIVERGENCES} (got {name!r})")
        if name == "w2":  # the squared amplitude (rationalised: no cancellation where P ~ S), squared last: its
            from ..symbolic.divergences import w2_amplitude  # square (P - S)^2 / (...)^2 would overflow at 1e154

            a = sp.Symbol("a", nonnegative=True)
            return [p, S], [a**2, sp.simplify(sp.diff(divergence(name, p, S), p))], 2, ((a, w2_amplitude(p, S)),)
        exprs, defs = _kl_form(p, S, reverse=name == "kl-reverse")
        return [p, S], exprs, 2, defs

    return compile_kernel(f"divergence:{name}", build)


def kl_series_kernel(name: str) -> Callable[..., list[Any]]:
    """``f(m) -> [term]``: the KL term of a mode whose generated variance is ``(1 + m)`` times the data's, as the
    Taylor series of :func:`symsched.symbolic.divergences.kl_of_ratio` in ``m`` to :data:`KL_SERIES_ORDER` (``r =
    1/(1 + m)`` for "kl" = KL(data || generated), ``1 + m`` for "kl-reverse"); for ``|m| <`` :data:`KL_SERIES_RADIUS`,
    where the ratio form cancels. ``m`` itself is ``(generated - data) / data``: exact difference, one rounding."""

    def build() -> tuple[Sequence[Any], ...]:
        import sympy as sp

        from ..symbolic.divergences import kl_of_ratio

        m = sp.Symbol("m", real=True)
        r = 1 / (1 + m) if name == "kl" else 1 + m
        series = sp.series(kl_of_ratio(r, sp.log(r)), m, 0, KL_SERIES_ORDER).removeO()
        return [m], [sp.horner(sp.expand(series))], 1

    return compile_kernel(f"kl-series:{name}:{KL_SERIES_ORDER}", build)


def w2_amplitude_kernel() -> Callable[..., list[Any]]:
    """``a(p, q) -> [|√p − √q|]``: W2 = (Σ a²)^½, formed as a scaled sum by the caller."""

    def build() -> tuple[Sequence[Any], ...]:
        from ..symbolic.divergences import w2_amplitude
        from ..symbolic.symbols import p, q

        return [p, q], [w2_amplitude(p, q)], 2

    return compile_kernel("w2-amplitude", build)
