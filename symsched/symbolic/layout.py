"""Line breaking of long displayed equations, so that generated derivations fit the page.

SymPy prints an expression on one line; a multistep matrix entry runs far past the margin. This module
estimates the printed width of an expression from its tree and, where it is too wide, breaks it at the
``+``/``-`` of a sum (recursing into the parentheses of a product's long sum, or a fraction's long
numerator, written as ``\\frac{c}{d}\\Bigl( ... \\Bigr)``), in an ``align*`` the reader can paste. Matrices too wide
for a line show their long entries as ``A_{r,c}`` and define each below. Display only: the equations
printed are SymPy's own printing of the same expressions.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence

#: Width of a display line in units of an average math character (11pt, 17 cm of text; calibrated against
#: pdflatex's overfull-box reports on the generated derivations, with a margin).
LINE = 60.0
_SUB = 0.7  # a subscript or superscript character, relative to a base character


def _symbol_width(name: str) -> float:
    base, _, sub = name.partition("_")
    base = re.sub(r"\\(mathcal|mathrm|hat|bar|tilde)\b", "", base)
    n_base = len(re.sub(r"\\[A-Za-z]+", "x", base).replace("{", "").replace("}", "")) or 1
    n_sub = len(re.sub(r"\\(mathrm|downarrow|uparrow)\b", "", re.sub(r"\\[A-Za-z]+", "x", sub)).replace("{", "")
                .replace("}", "").replace(" ", ""))
    return n_base + _SUB * n_sub


def width(expr: sp.Basic) -> float:
    """Estimated printed width of ``expr`` (units of an average math character of a display; the parts of a
    fraction inside a fraction are set smaller, as TeX sets them)."""
    return _width(expr, 1.0)


def _width(expr: sp.Basic, scale: float) -> float:
    inner = max(_SUB, 0.8 * scale)  # the size of a fraction's numerator and denominator when they hold fractions
    if isinstance(expr, sp.MatrixBase):
        cols = [max(_width(expr[r, c], inner) for r in range(expr.rows)) for c in range(expr.cols)]
        return sum(cols) + 2.0 * (len(cols) - 1) + 4.0
    if expr.is_Symbol:
        return scale * _symbol_width(expr.name)
    if expr.is_Number:
        p, q = sp.fraction(expr)
        return scale * (len(str(abs(p))) if q == 1 else max(len(str(abs(p))), len(str(q))) + 0.5)
    if expr.is_Add:
        return sum(_width(t, scale) for t in expr.args) + 2.5 * scale * (len(expr.args) - 1)
    if expr.is_Mul:
        num, den = sp.fraction(expr)
        if den != 1:
            return max(_width(num, inner), _width(den, inner)) + scale
        return sum(_width(f, scale) + (2.0 * scale if f.is_Add else 0.0) for f in expr.args) \
            + 0.3 * scale * (len(expr.args) - 1)
    if expr.is_Pow:
        base, ex = expr.args
        if ex == sp.Rational(1, 2):
            return _width(base, scale) + 1.5 * scale
        if ex.is_Number and ex < 0:
            return _width(1 / expr, scale)
        return _width(base, scale) + (2.0 * scale if base.is_Add or base.is_Mul else 0.0) + _width(ex, _SUB * scale)
    if isinstance(expr, sp.exp):
        return scale + _width(expr.args[0], _SUB * scale)
    if isinstance(expr, sp.Function):
        return scale * (len(type(expr).__name__) + 2.0) + sum(_width(a, scale) for a in expr.args)
    return scale * len(sp.latex(expr))


def _signed(term: sp.Expr) -> tuple[str, sp.Expr]:
    """(``"+"`` or ``"-"``, the term without its sign), as SymPy prints a term of a sum."""
    return ("-", -term) if term.could_extract_minus_sign() else ("+", term)


def _long_factor(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """``(rest, s)`` with ``expr = rest * s`` and ``s`` the widest sum among the numerator's factors, else None."""
    num, den = sp.fraction(expr)
    sums = [f for f in sp.Mul.make_args(num) if f.is_Add]
    if not sums:
        return None
    s = max(sums, key=width)
    return sp.Mul(*[f for f in sp.Mul.make_args(num) if f is not s]) / den, s


def lines(expr: sp.Expr, budget: float = LINE, lead: float = 0.0) -> list[str]:
    """``expr`` as LaTeX lines, each estimated to fit ``budget`` where a break exists (continuation lines begin
    with their operator); the first line shares its room with ``lead`` already printed."""
    if lead + width(expr) <= budget:
        return [sp.latex(expr)]
    if expr.is_Add:
        out = [""]
        used = lead
        for k, term in enumerate(expr.as_ordered_terms()):
            sign, mag = _signed(term)
            head = ("- " if sign == "-" else "") if k == 0 else f"{sign} "
            w = width(mag) + 2.5
            if used + w <= budget:  # the term fits where the line stands
                out[-1] += (" " if out[-1] else "") + head + sp.latex(mag)
                used += w
                continue
            fresh = not out[-1] and len(out) == 1 and lead == 0.0
            parts = lines(mag, budget - 2.0, 0.0 if fresh else 2.5)
            if fresh:
                out[-1] = head + parts[0]
            else:
                out.append(head + parts[0])
            out += parts[1:]
            used = budget if len(parts) > 1 else 2.5 + width(mag)
        return out
    split = _long_factor(expr) if expr.is_Mul else None
    if split is None:
        return [sp.latex(expr)]
    rest, s = split
    sign, rest = ("- ", -rest) if rest.could_extract_minus_sign() else ("", rest)
    shown = sp.latex(rest)
    if precedence(rest) < PRECEDENCE["Mul"]:  # a sum multiplying the parentheses needs its own
        shown = f"\\left({shown}\\right)"
    prefix = sign + ("" if rest == 1 else shown + " ")
    inner = lines(s, budget - 2.0, lead + (0.0 if rest == 1 else width(rest)) + 2.0)
    if len(inner) == 1:
        return [prefix + "\\Bigl(" + inner[0] + "\\Bigr)"]
    return [prefix + "\\Bigl(" + inner[0], *inner[1:-1], inner[-1] + "\\Bigr)"]


def display(lhs: str, expr: sp.Expr) -> str:
    """``lhs = expr`` as an unnumbered display: one ``equation*`` if it fits a line, else a broken ``align*``."""
    if isinstance(expr, sp.MatrixBase):
        return _matrix(lhs, expr)
    parts = lines(expr)
    if len(parts) == 1:
        return f"\\begin{{equation*}}\n{lhs} = {parts[0]}\n\\end{{equation*}}\n"
    body = f"{lhs} ={{}}& {parts[0]}" + "".join(f"\\\\\n&\\qquad {{}}{p}" for p in parts[1:])
    return f"\\begin{{align*}}\n{body}\n\\end{{align*}}\n"


def _matrix(lhs: str, M: sp.MatrixBase) -> str:
    """A matrix that fits as it is; else the matrix with its long entries named ``lhs_{r,c}``, each defined below."""
    if width(M) <= LINE:
        return f"\\begin{{equation*}}\n{lhs} = {sp.latex(M)}\n\\end{{equation*}}\n"
    cut = max(6.0, (LINE - 4.0) / M.cols - 2.0)
    named: list[tuple[sp.Symbol, sp.Expr]] = []

    def entry(r: int, c: int) -> sp.Expr:
        if width(M[r, c]) <= cut:
            return M[r, c]
        named.append((sp.Symbol(f"{lhs}_{{{r + 1},{c + 1}}}"), M[r, c]))
        return named[-1][0]

    shown = sp.Matrix(M.rows, M.cols, entry)
    out = [f"\\begin{{equation*}}\n{lhs} = {sp.latex(shown)}\n\\end{{equation*}}\n", "with\n"]
    out += [display(sp.latex(sym), value) for sym, value in named]
    return "".join(out)
