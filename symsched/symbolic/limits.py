"""The ends of the level range: a step at pure noise and at the clean level, in the VP state scale.

A sampler module writes its update in its own coordinates (VP ``alpha_bar``, VE ``sigma``, flow ``t``) for
levels strictly inside the range. A schedule may also start at pure noise (``alpha_bar = 0``, zero terminal
SNR; ``sigma = inf``; flow ``t = 1``) and ends at the clean level (``alpha_bar = 1``, ``sigma = 0``, ``t = 0``).
The steps there are the limits of the written ones, taken here once for every consumer: the compiled kernels
(:mod:`symsched.engine.canonical`), the mpmath reference (:mod:`symsched.engine.highprec`) and the LaTeX
derivations (:mod:`.latex`). The sample entry is moved to the VP scale ``x_vp = sqrt(alpha_bar) x_0 +
sqrt(1 - alpha_bar) eps`` first, where its variance stays finite at pure noise (in the VE scale it is
``S + sigma^2 = inf``). A step whose limit is unbounded (Heun from ``sigma = inf``) raises :class:`UndefinedStep`.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import sympy as sp

from .statespace import Sampler, clean_value
from .symbols import param, slot_level

__all__ = ["UndefinedStep", "native_scale", "entry_scale", "pure_noise_limit", "clean_limit", "pinned_params",
           "end_limits", "vp_step"]


class UndefinedStep(ValueError):
    """A step whose limit at an end of the level range is unbounded (e.g. Heun from sigma = inf)."""


def native_scale(process: str, level: sp.Expr) -> sp.Expr:
    """x_vp / x_native for the sample entry: 1 (VP), c = 1/sqrt(1 + sigma^2) (VE), 1/sqrt((1-t)^2 + t^2) (flow)."""
    if process == "ve":
        return 1 / sp.sqrt(1 + level**2)
    if process == "flow":
        return 1 / sp.sqrt((1 - level) ** 2 + level**2)
    return sp.Integer(1)


def entry_scale(f_new: sp.Expr, f_old: sp.Expr, new_is_sample: bool, old_is_sample: bool) -> sp.Expr:
    """Factor of an A entry between native and VP state scales: f_new for a sample row, 1/f_old for a sample
    column. SymPy's 1, not the int: 1 / 1 would be the float 1.0 and turn every rational of the entry into a
    15-digit Float (1/6 as 0.166666666666667 in the longdouble kernels and the mpmath reference)."""
    one = sp.Integer(1)
    return (f_new if new_is_sample else one) / (f_old if old_is_sample else one)


def _checked(out: sp.Expr) -> sp.Expr:
    if out.has(sp.zoo, sp.nan, sp.oo, -sp.oo) or isinstance(out, sp.Limit):
        raise UndefinedStep("it is unbounded there" if out.has(sp.zoo, sp.oo, -sp.oo) else "it has no limit there")
    return out


def pure_noise_limit(expr: sp.Expr, process: str, level: sp.Symbol) -> sp.Expr:
    """The limit of a native expression as its level goes to pure noise (alpha_bar -> 0, sigma -> oo, t -> 1).

    Raises :class:`UndefinedStep` where the limit is unbounded, does not exist or SymPy cannot take it."""
    if not expr.has(level):
        return expr
    try:
        if process == "vp":
            out = _log_snr_limit(expr, level)
        elif process == "ve":
            out = _log_limit(expr, level)
        else:
            out = sp.limit(expr, level, 1, "-")
    except (NotImplementedError, RecursionError, TypeError, ValueError) as exc:  # SymPy cannot decide it
        raise UndefinedStep(f"SymPy cannot take its limit there ({type(exc).__name__})") from None
    return _checked(out)


def _log_snr_limit(expr: sp.Expr, alpha_bar: sp.Symbol) -> sp.Expr:
    """lim alpha_bar -> 0+. The multistep VP steps (DPM-Solver, UniPC, DEIS) read a history level through its
    log-SNR, log(alpha_bar) - log(1 - alpha_bar): there the limit is taken with ``l = log(alpha_bar)`` as its own
    variable, the algebraic rest at alpha_bar = 0 and a rational function of l -> -oo left (SymPy's limit in
    alpha_bar took many minutes for DPM-Solver's third order). Without such a log, or where alpha_bar = 0 is
    singular in the rest, the direct limit."""
    ell = sp.Symbol("ell_0", negative=True)
    e = sp.expand_log(expr, force=True)
    if e.has(sp.log(alpha_bar)):
        rest = e.subs(sp.log(alpha_bar), ell)
        rest = rest.subs(alpha_bar, 0) if rest.has(alpha_bar) else rest
        if not rest.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            out = sp.limit(sp.together(rest), ell, -sp.oo)
            if not isinstance(out, sp.Limit):
                return out
    return sp.limit(expr, alpha_bar, 0, "+")


def _log_limit(expr: sp.Expr, sigma: sp.Symbol) -> sp.Expr:
    """lim sigma -> oo, taken in L = log sigma -> oo: the k-diffusion steps read sigma through t = -log sigma,
    so a history level at pure noise (DPM++ 3M SDE's h_2 = log(sigma_{i-2}/sigma_{i-1})) becomes a rational
    function of L, whose limit SymPy takes at once (in sigma it does not return). The direct limit in sigma is
    the fallback."""
    L = sp.Symbol("L_{\\infty}", positive=True)
    try:
        out = sp.limit(sp.expand_log(expr.subs(sigma, sp.exp(L)), force=True), L, sp.oo)
        if not isinstance(out, sp.Limit) and not out.has(sp.nan):
            return out
    except (NotImplementedError, RecursionError, TypeError, ValueError):
        pass
    return sp.limit(expr, sigma, sp.oo)


def clean_limit(expr: sp.Expr, process: str, level: sp.Symbol) -> sp.Expr:
    """The expression at the clean level (alpha_bar = 1, sigma = 0, t = 0), by the limit when singular.

    Raises :class:`UndefinedStep` where the limit is unbounded, does not exist or SymPy cannot take it."""
    if not expr.has(level):
        return expr
    direct = expr.subs(level, clean_value(process))
    if not direct.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        return direct
    try:
        out = sp.limit(expr, level, clean_value(process), "-" if process == "vp" else "+")
    except (NotImplementedError, RecursionError, TypeError, ValueError) as exc:  # SymPy cannot decide it
        raise UndefinedStep(f"SymPy cannot take its limit there ({type(exc).__name__})") from None
    return _checked(out)


def pinned_params(values: Sequence[tuple[str, str]]) -> tuple[dict[sp.Symbol, sp.Expr], dict[sp.Symbol, sp.Expr]]:
    """(pin, unpin): the substitutions that pin sampler parameters to their class before a limit and restore
    them after, from ``(name, class)`` pairs (:func:`symsched.symbolic.plan.param_classes`, see
    :func:`symsched.engine.canonical.canonical_step`): ``"0"`` is 0; ``"+"`` a positive finite stand-in, the
    parameter again after the limit; ``"inf"`` (``s_tmax = inf``) stays the symbol; a ``repr(float)`` is that
    value as an exact rational."""
    pin: dict[sp.Symbol, sp.Expr] = {}
    unpin: dict[sp.Symbol, sp.Expr] = {}
    for n, v in values:
        if v == "0":
            pin[param(n)] = sp.Integer(0)
        elif v == "+":
            stand_in = sp.Dummy(n, positive=True, finite=True)
            pin[param(n)], unpin[stand_in] = stand_in, param(n)
        elif v != "inf":  # a value itself (kernels.pinned_step's fallback), as an exact rational
            pin[param(n)] = sp.Rational(v)
    return pin, unpin


def end_limits(expr: sp.Expr, process: str, slots: Sequence[int], modes: Sequence[str]) -> sp.Expr:
    """``expr`` with every slot whose mode is ``"clean"`` or ``"zero"`` (pure noise) at that end of the range."""
    for j, mode in zip(slots, modes):
        if mode == "clean":
            expr = clean_limit(expr, process, slot_level(process, j))
        elif mode == "zero":
            expr = pure_noise_limit(expr, process, slot_level(process, j))
    return expr


def vp_step(smp: Sampler, kind: str, modes: Sequence[str], values: Sequence[tuple[str, str]] = (),
            pre: Optional[Callable[[sp.Expr], sp.Expr]] = None) -> tuple[sp.Matrix, sp.Matrix]:
    """(A, B) of ``smp.kinds[kind]`` in the VP state scale, in native levels, with the slots whose ``modes``
    entry is ``"zero"`` or ``"clean"`` at that end (:func:`end_limits`); ``values`` pins parameters first
    (:func:`pinned_params`), and ``pre`` rewrites each pinned entry before its limits (the kernels' eta -> zeta,
    :mod:`symsched.engine.canonical`). Raises :class:`UndefinedStep` where such a limit is unbounded."""
    upd = smp.kinds[kind]
    A, B = upd.matrices
    proc = smp.process
    sample = [e.kind == "sample" for e in smp.entries]
    f_old, f_new = native_scale(proc, slot_level(proc, 0)), native_scale(proc, slot_level(proc, 1))
    pinned, unpin = pinned_params(values)

    def convert(e: sp.Expr, scale: sp.Expr) -> sp.Expr:
        e = sp.sympify(e).subs(pinned)
        e = end_limits((pre(e) if pre is not None else e) * scale, proc, upd.slots, modes)
        return e.subs(unpin) if unpin else e

    m, q = A.rows, B.cols
    A2 = sp.Matrix(m, m, lambda i, k: convert(A[i, k], entry_scale(f_new, f_old, sample[i], sample[k]))
                   if A[i, k] != 0 else 0)
    B2 = sp.Matrix(m, q, lambda i, k: convert(B[i, k], f_new if sample[i] else 1) if B[i, k] != 0 else 0)
    return A2, B2
