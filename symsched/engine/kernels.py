"""Kernel builders: which symbolic expressions become which compiled functions.

Every kernel takes NumPy arrays (broadcasting) in a fixed argument order and returns a list:

- ``step(S, sigma_s, h, *p) -> [g, n]`` for a step sigma_t = sigma_s + h -> sigma_s; its gradient
  twin ``step(S, L_s, L_t, R_s, R_t, sigma_s, h, *p) -> [g^2, n, A_t, A_s, c_t, c_s, dn/dsigma_t,
  dn/dsigma_s]`` with ``dlog(g^2)/dsigma_x = A_x(S) + c_x`` and the level arrays ``L = S + sigma^2``,
  ``R = 1/L`` passed in (each level's pair is shared by the two steps that touch it);
- ``final(S, sigma_t, *p) -> [g, n]`` for the step to the clean level; gradient twin
  ``final(S, L_t, R_t, sigma_t, *p) -> [g^2, n, A_t, c_t, dn/dsigma_t]``;
- ``init(S, sigma) -> [v0, dv0/dsigma]``;
- ``level(x) -> [sigma, dsigma/dx]`` for x = alpha_bar or log-SNR;
- ``divergence(P, S) -> [f, df/dP]``.

VP levels enter as their VE coordinate sigma = sqrt((1 - alpha_bar)/alpha_bar); ``*p`` are the
sampler's numeric parameters (DDIM: zeta = 1 - eta^2).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .codegen import compile_kernel
from .divergence import divergence_kernel  # generated from the stable ratio form (issue 14)

__all__ = [
    "step_kernel",
    "final_kernel",
    "init_kernel",
    "level_kernel",
    "divergence_kernel",
    "numeric_params",
]


def _sampler(name: str, variant: str) -> Any:
    from ..symbolic import get_sampler

    return get_sampler(name, variant)


def numeric_params(name: str, eta: float) -> tuple[float, ...]:
    """Numeric parameter values in kernel order (DDIM: zeta = 1 - eta^2 = (1 - eta)(1 + eta))."""
    if name == "ddim":
        return ((1.0 - eta) * (1.0 + eta),)
    return ()


def _prepare(smp: Any, which: str) -> tuple[list[Any], list[Any]]:
    """(gain, noise) of ``smp.step`` or ``smp.final`` in sigma coordinates with numeric parameters."""
    from .stable import rewrite_params, to_sigma

    st = smp.step if which == "step" else smp.final
    exprs = [st.gain, st.noise]
    if smp.process == "vp":
        exprs = [to_sigma(e) for e in exprs]
    numeric: list[Any] = []
    out = []
    for e in exprs:
        e, numeric = rewrite_params(e, smp.params)
        out.append(e)
    return out, numeric


def _log_derivative(g2: Any, wrt: Any) -> Any:
    """d log(g2) / d wrt, factor by factor of the factored g2 (a short sum of simple ratios)."""
    import sympy as sp

    from .stable import tidy

    total = sp.Integer(0)
    for factor in sp.Mul.make_args(g2):
        base, expo = factor.as_base_exp()
        d = sp.diff(base, wrt)
        if d != 0:
            total += expo * tidy(d) / base
    return total


def _level_symbols() -> tuple[Any, ...]:
    """Per-level arrays of the gradient kernels: L = S + sigma^2 at the step's two levels, R = 1/L.

    Consecutive steps share a level, so the backward sweep forms each L and R once, not twice.
    """
    import sympy as sp

    return tuple(sp.Symbol(name, positive=True) for name in ("L_s", "L_t", "R_s", "R_t"))


def _level_form(expr: Any, levels: dict[Any, tuple[Any, Any]]) -> Any:
    """Write every factor (S + sigma^2) as its level array L and every negative power of it via R = 1/L."""
    import sympy as sp

    for poly, (L, R) in levels.items():
        expr = expr.subs(sp.expand(poly), L)
        expr = expr.replace(
            lambda e, L=L: e.is_Pow and e.base == L and e.exp.is_negative,
            lambda e, R=R: R ** (-e.exp),
        )
    return expr


def _split(expr: Any, S: Any) -> tuple[Any, Any]:
    """expr = c + A(S): (the S-free terms, the S-dependent terms) of a sum."""
    free, dep = expr.as_independent(S, as_Add=True)
    return free, dep


def step_kernel(name: str, variant: str = "", grad: bool = False) -> Callable[..., list[Any]]:
    """Intermediate step sigma_t = sigma_s + h -> sigma_s.

    ``step(S, sigma_s, h, *p) -> [g, n]``; with ``grad``: ``[g^2, n, A_t, A_s, c_t, c_s,
    dn/dsigma_t, dn/dsigma_s]`` where ``dlog(g^2)/dsigma_x = A_x(S) + c_x`` is split into the part that
    depends on S and the part that does not (so a dot product with it costs one pass, not two).
    """

    def build() -> tuple[Sequence[Any], Sequence[Any]]:
        import sympy as sp

        from ..symbolic.symbols import S, h, sigma_s, sigma_t
        from .stable import tidy, to_gap

        smp = _sampler(name, variant)
        (g, n), numeric = _prepare(smp, "step")
        args = [S, sigma_s, h, *numeric]
        if not grad:
            return args, [tidy(to_gap(g)), tidy(to_gap(n))]
        g2 = tidy(to_gap(g**2))
        # in gap coordinates (sigma_s, h): d/dsigma_t = d/dh, d/dsigma_s = d/dsigma_s - d/dh
        dlog_h = _log_derivative(g2, h)
        dlog_s = _log_derivative(g2, sigma_s) - dlog_h
        dn_t = tidy(to_gap(sp.diff(n, sigma_t)))
        dn_s = tidy(to_gap(sp.diff(n, sigma_s)))
        (c_t, a_t), (c_s, a_s) = _split(dlog_h, S), _split(dlog_s, S)
        outs = [g2, tidy(to_gap(n)), a_t, a_s, c_t, c_s, dn_t, dn_s]
        L_s, L_t, R_s, R_t = _level_symbols()
        lt = S + (sigma_s + h) ** 2
        outs = [_level_form(e, {lt: (L_t, R_t), S + sigma_s**2: (L_s, R_s)}) for e in outs]
        return [S, L_s, L_t, R_s, R_t, sigma_s, h, *numeric], outs, 5

    return compile_kernel(f"step:{name}:{variant}:{int(grad)}", build)


def final_kernel(name: str, variant: str = "", grad: bool = False) -> Callable[..., list[Any]]:
    """Final step sigma_t -> clean. ``final(S, sigma_t, *p) -> [g, n]``; with ``grad``:
    ``[g^2, n, dlog(g^2)/dsigma_t, dn/dsigma_t]``."""

    def build() -> tuple[Sequence[Any], Sequence[Any]]:
        import sympy as sp

        from ..symbolic.symbols import S, sigma_t
        from .stable import tidy

        smp = _sampler(name, variant)
        (g, n), numeric = _prepare(smp, "final")
        args = [S, sigma_t, *numeric]
        if not grad:
            return args, [tidy(g), tidy(n)]
        g2 = tidy(g**2)
        c_t, a_t = _split(_log_derivative(g2, sigma_t), S)
        outs = [g2, tidy(n), a_t, c_t, tidy(sp.diff(n, sigma_t))]
        _, L_t, _, R_t = _level_symbols()
        outs = [_level_form(e, {S + sigma_t**2: (L_t, R_t)}) for e in outs]
        return [S, L_t, R_t, sigma_t, *numeric], outs, 3

    return compile_kernel(f"final:{name}:{variant}:{int(grad)}", build)


def init_kernel(process: str, init: str) -> Callable[..., list[Any]]:
    def build() -> tuple[Sequence[Any], Sequence[Any]]:
        import sympy as sp

        from ..symbolic import compose
        from ..symbolic.forward import alpha_bar_from_sigma
        from ..symbolic.symbols import S, alpha_bar, sigma
        from .stable import tidy

        lvl = sigma(1)
        smp = _sampler("ddim" if process == "vp" else "euler", "")
        if process == "vp":
            v0 = compose.init_variance(smp, init, alpha_bar(1)).subs(alpha_bar(1), alpha_bar_from_sigma(lvl))
        else:
            v0 = compose.init_variance(smp, init, lvl)
        v0 = tidy(v0)
        return [S, lvl], [v0, tidy(sp.diff(v0, lvl))]

    return compile_kernel(f"init:{process}:{init}", build)


def level_kernel(coordinate: str) -> Callable[..., list[Any]]:
    """sigma and d sigma / d x for x = "alpha_bar" or "log_snr" (from :mod:`symsched.symbolic.forward`)."""

    def build() -> tuple[Sequence[Any], Sequence[Any]]:
        import sympy as sp

        from ..symbolic.forward import log_snr, sigma_from_alpha_bar

        x = sp.Symbol("x", positive=True) if coordinate == "alpha_bar" else sp.Symbol("x", real=True)
        if coordinate == "alpha_bar":
            sig = sigma_from_alpha_bar(x)
        else:
            # invert l = log(ab / (1 - ab)) symbolically for ab, then take sigma of it
            ab = sp.Symbol("ab", positive=True)
            (ab_of_x,) = sp.solve(sp.Eq(log_snr(ab), x), ab)
            sig = sp.simplify(sigma_from_alpha_bar(ab_of_x))
        return [x], [sig, sp.simplify(sp.diff(sig, x))]

    return compile_kernel(f"level:{coordinate}", build)
