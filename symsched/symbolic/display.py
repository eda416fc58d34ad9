"""Display coordinates for the LaTeX of the steps of samplers with memory.

SymPy writes a step in the native level symbols (``alpha_bar``, ``sigma``), so an order-3 multistep matrix
expands every log-SNR difference into four logarithms of square roots and runs to several metres of
page. The samplers themselves are written (by their papers and libraries) in a few named quantities; this
module rewrites an expression into them, for display only:

* VP levels: diffusers' ``alpha_j = sqrt(alpha_bar_j)``, ``sigma_j = sqrt(1 - alpha_bar_j)``, half the log-SNR
  ``lambda_j = log(alpha_j / sigma_j)`` and the steps ``h_j = lambda_{j+1} - lambda_j``
  (``scheduling_dpmsolver_multistep.py``; Lu et al., arXiv 2211.01095, eq. 3.2);
* VE levels: k-diffusion's ``t_j = -log sigma_j`` and ``h_j = t_{j+1} - t_j = log(sigma_j / sigma_{j+1})``
  (``k_diffusion/sampling.py``, ``t_fn``).

Every rewrite is an identity given the definitions, which :func:`definitions` returns so that a test can
substitute them back and compare with the engine's matrices.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Iterable

import sympy as sp

from .symbols import _slot_suffix, slot_level

#: slots a step may read, earliest first (LMS order 4 reads i-3)
SLOTS = (-3, -2, -1, 0, 1)


def _sym(name: str, j: int, **assumptions: bool) -> sp.Symbol:
    return sp.Symbol(f"{name}_{{{_slot_suffix(j)}}}", **assumptions)


def alpha(j: int) -> sp.Symbol:
    return _sym("\\alpha", j, positive=True)


def sigma(j: int) -> sp.Symbol:
    return _sym("\\sigma", j, positive=True)


def lam(j: int) -> sp.Symbol:
    return _sym("\\lambda", j, real=True)


def t(j: int) -> sp.Symbol:
    return _sym("t", j, real=True)


def h(j: int) -> sp.Symbol:
    return _sym("h", j, positive=True)


def definitions(process: str) -> dict[sp.Symbol, sp.Expr]:
    """Every display symbol of ``process`` as an expression in the native slot levels (for tests)."""
    out: dict[sp.Symbol, sp.Expr] = {}
    for j in SLOTS:
        level = slot_level(process, j)
        if process == "vp":
            out[alpha(j)] = sp.sqrt(level)
            out[sigma(j)] = sp.sqrt(1 - level)
            out[lam(j)] = sp.log(sp.sqrt(level)) - sp.log(sp.sqrt(1 - level))
        elif process == "ve":
            out[t(j)] = -sp.log(level)
    if process in ("vp", "ve"):
        step = lam if process == "vp" else t
        out.update({h(j): out[step(j + 1)] - out[step(j)] for j in SLOTS[:-1]})
    return out


def _by_steps(expr: sp.Expr, step: Callable[[int], sp.Symbol]) -> sp.Expr:
    """``expr`` with every log-level ``step(j)`` written as ``step(0)`` plus or minus steps ``h``; kept as it was
    when ``step(0)`` does not cancel (the expression depends on more than the differences)."""
    shift = {step(1): step(0) + h(0)}
    for j in SLOTS:
        if j < 0:
            shift[step(j)] = step(0) - sum((h(k) for k in range(j, 0)), sp.Integer(0))
    out = expr.subs(shift)
    return expr if out.has(step(0)) else out


@lru_cache(maxsize=4096)  # the LaTeX renders an entry twice: to list the symbols it uses, then to print it
def rewrite(expr: sp.Expr, process: str) -> sp.Expr:
    """``expr`` (in the native slot levels) in the display coordinates of ``process``; unchanged for others."""
    if process not in ("vp", "ve"):
        return expr
    e = sp.sympify(expr)
    if process == "vp":
        for j in SLOTS:
            level = slot_level(process, j)
            e = e.subs(1 - level, sigma(j) ** 2).subs(level, alpha(j) ** 2)
        e = e.subs(alpha(0) * sigma(1) / (alpha(1) * sigma(0)), sp.exp(-h(0)))  # e^{-h}, as the papers write it
        if not e.has(sp.log):
            return e
        e = sp.expand_log(e, force=True)  # alpha, sigma positive: log(a b) = log a + log b
        e = e.subs({sp.log(alpha(j)): lam(j) + sp.log(sigma(j)) for j in SLOTS})
        return _by_steps(e, lam)
    if not e.has(sp.log):
        return e
    e = sp.expand_log(e, force=True)
    e = e.subs({sp.log(slot_level(process, j)): -t(j) for j in SLOTS})
    return _by_steps(e, t)


def used(exprs: Iterable[sp.Expr]) -> set[sp.Symbol]:
    """The display symbols that occur in ``exprs``."""
    mine = {f(j) for j in SLOTS for f in (alpha, sigma, lam, t, h)}
    return set().union(*(sp.sympify(e).free_symbols for e in exprs)) & mine


def notation(process: str, symbols: set[sp.Symbol]) -> str:
    """One LaTeX sentence defining the display symbols among ``symbols`` (empty if there are none)."""
    names = {s.name.split("_")[0] for s in symbols}
    if process == "vp":
        names |= {"\\lambda"} if "h" in names else set()  # h is defined through lambda, lambda through alpha, sigma
        names |= {"\\alpha", "\\sigma"} if "\\lambda" in names else set()
        parts = {"\\alpha": "$\\alpha_j = \\sqrt{\\bar\\alpha_j}$",
                 "\\sigma": "$\\sigma_j = \\sqrt{1 - \\bar\\alpha_j}$",
                 "\\lambda": "half the log-SNR $\\lambda_j = \\log(\\alpha_j/\\sigma_j)$",
                 "h": "its steps $h_j = \\lambda_{j+1} - \\lambda_j$"}
        source = "diffusers' notation"
    elif process == "ve":
        names |= {"t"} if "h" in names else set()
        parts = {"t": "$t_j = -\\log\\sigma_j$",
                 "h": "the steps $h_j = t_{j+1} - t_j = \\log(\\sigma_j/\\sigma_{j+1})$"}
        source = "k-diffusion's notation"
    else:
        return ""
    shown = [text for key, text in parts.items() if key in names]
    if not shown:
        return ""
    return f"In {source}, the equations below write " + ", ".join(shown[:-1]) + (" and " if len(shown) > 1 else "") \
        + shown[-1] + ".\n\n"
