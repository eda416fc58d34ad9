"""Line breaking of long displayed equations, so that generated derivations fit the page.

SymPy prints an expression on one line; a multistep matrix entry runs far past the margin. This module
estimates the printed width of an expression from its tree (in points, from measured glyph widths) and, where it
is too wide, breaks it at the ``+``/``-`` of a sum, recursing into the parentheses of a product's long sum or a
fraction's long numerator, written ``\\frac{c}{d}\\Biggl( ... \\Biggr)`` (``\\biggl`` one level deeper, and so
on, each level indented by a further ``\\qquad``), in an ``align*`` the reader can paste. Matrices too wide for a
line show their long entries as ``A_{rc}`` (0-based) and define each below. Display only: every piece printed is
SymPy's own printing.
"""

from __future__ import annotations

import re
from functools import lru_cache

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence

#: Width of a display line in points: the derivations' 11pt article with 2 cm margins sets 500 pt of text; the rest
#: is a margin for the estimate's error (checked by tests/test_latex.py: pdflatex reports no overfull line).
LINE = 380.0
#: The further indentation of each level of broken parentheses (a \qquad; LINE leaves room for the first), in points.
NEST = 22.0
_SCRIPT = 0.7  # size of sub/superscripts and of fractions inside fractions, relative to the text size
# Glyph widths (points, 11pt Computer Modern math), measured with pdflatex's \wd on the derivations' symbols.
_UPPER, _LOWER, _DIGIT, _GREEK, _BINOP, _SIGN, _PARENS, _FRAC, _RADICAL = 8.4, 5.6, 5.5, 6.3, 13.4, 8.6, 8.6, 2.4, 9.2
_COLUMN_GAP, _BRACKETS = 11.0, 25.0  # between a matrix's columns; its two brackets


def _glyphs(text: str) -> float:
    """Width of a run of math glyphs (commands such as \\alpha count as one Greek letter; braces are free)."""
    text = re.sub(r"\\(mathcal|mathrm|hat|bar|tilde|operatorname)\b", "", text)
    out = 0.0
    for token in re.findall(r"\\[A-Za-z]+|[A-Za-z]|[0-9]|[-+]|[^{}\s]", text):
        out += (_GREEK if token.startswith("\\") else _UPPER if token.isupper() else _LOWER if token.isalpha()
                else _DIGIT if token.isdigit() else 8.0 if token in "+-" else 3.0)
    return out


def _symbol_width(name: str, scale: float) -> float:
    base, _, sub = name.partition("_")
    main, _, sup = base.partition("^")
    return scale * _glyphs(main) + _SCRIPT * scale * (_glyphs(sub) + _glyphs(sup))


def width(expr: sp.Basic) -> float:
    """Estimated printed width of ``expr`` in a display, in points (a fraction's numerator and denominator keep the
    size of the display, those of a fraction inside them are set smaller, as TeX sets them). A matrix's entries are
    set in text style, smaller: they are estimated at display size, a margin."""
    if isinstance(expr, sp.MatrixBase):
        cols = [max(_expr_width(expr[r, c]) for r in range(expr.rows)) for c in range(expr.cols)]
        return sum(cols) + _COLUMN_GAP * (len(cols) - 1) + _BRACKETS
    return _expr_width(expr)


@lru_cache(maxsize=8192)  # (the line breaking asks for a term's width again at every level it tries)
def _expr_width(expr: sp.Expr) -> float:
    return _width(expr, 1.0, False)


def _width(expr: sp.Basic, scale: float, in_fraction: bool) -> float:
    def w(e: sp.Basic, sc: float = scale, frac: bool = in_fraction) -> float:
        return _width(e, sc, frac)

    small = max(0.5, _SCRIPT * scale)
    if expr.is_Symbol:
        return _symbol_width(expr.name, scale)
    if expr.is_Number:
        p, q = sp.fraction(abs(expr))
        sign = _SIGN * scale if expr < 0 else 0.0
        if q == 1:
            return sign + scale * _DIGIT * len(str(p))
        return sign + max(w(p, small if in_fraction else scale, True), w(q, small if in_fraction else scale, True)) \
            + _FRAC * scale
    if expr.is_Add:  # binary spacing only at display size (TeX drops it in scripts)
        return sum(w(t) for t in expr.args) + (_BINOP if scale == 1.0 else _SIGN) * scale * (len(expr.args) - 1)
    if expr.could_extract_minus_sign() and expr.is_Mul:
        return _SIGN * scale + w(-expr)
    if expr.is_Mul:
        num, den = sp.fraction(expr, exact=True)  # as the LaTeX printer splits it
        if den != 1:
            inner = small if in_fraction else scale
            return max(w(num, inner, True), w(den, inner, True)) + _FRAC * scale
        return sum(w(f) + (_PARENS * scale if f.is_Add else 0.0) for f in expr.args)
    if expr.is_Pow:
        base, ex = expr.args
        if ex.is_Rational and ex.q in (2, 4) and ex.p == 1:
            return w(base) + _RADICAL * scale + (3.0 * scale if ex.q == 4 else 0.0)
        if ex.is_Number and ex < 0:
            return w(1 / expr, scale) + _FRAC * scale
        return w(base) + (_PARENS * scale if base.is_Add or base.is_Mul else 0.0) + w(ex, small, True)
    if isinstance(expr, sp.exp):
        return 5.1 * scale + w(expr.args[0], small, True)
    if isinstance(expr, sp.Function):
        return scale * (_glyphs(type(expr).__name__) + _PARENS) + sum(w(a) for a in expr.args)
    return scale * _glyphs(sp.latex(expr))


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


def _opening(depth: int) -> tuple[str, str]:
    """The parentheses of a broken product at nesting ``depth``: the outermost large enough for the display fractions
    inside, each level inside a size smaller, so that a reader sees which closing belongs to which opening."""
    size = ("\\Bigg", "\\bigg", "\\Big", "\\big")[min(depth, 3)]
    return size + "l(", size + "r)"


def lines(expr: sp.Expr, budget: float = LINE, lead: float = 0.0, depth: int = 0) -> list[str]:
    """``expr`` as LaTeX lines, each estimated to fit ``budget`` where a break exists (continuation lines begin
    with their operator); the first line shares its room with ``lead`` already printed; ``depth`` counts the
    broken parentheses around ``expr``."""
    if lead + width(expr) <= budget:
        return [sp.latex(expr)]
    if expr.is_Add:
        return _sum_lines(expr, budget, lead, depth)
    split = _long_factor(expr) if expr.is_Mul else None
    if split is None:
        return [sp.latex(expr)]
    rest, s = split
    sign, rest = _signed(rest)
    shown = sp.latex(rest)
    if precedence(rest) < PRECEDENCE["Mul"]:  # a sum multiplying the parentheses needs its own
        shown = f"\\left({shown}\\right)"
    prefix = ("- " if sign == "-" else "") + ("" if rest == 1 else shown + " ")
    if lead > 0.0 and lead + width(rest) + _PARENS > budget:  # not even the factor fits the rest of the line
        return ["", *lines(expr, budget, 0.0, depth)]
    left, right = _opening(depth)
    # (continuation lines inside are indented by NEST more; the first shares the line that holds the prefix)
    inner = lines(s, budget - NEST, lead + (0.0 if rest == 1 else width(rest)) + _PARENS - NEST, depth + 1)
    if lead > 0.0 and not inner[0]:  # nothing after the opening parenthesis: the whole product on the next line
        return ["", *lines(expr, budget, 0.0, depth)]
    if len(inner) == 1:
        return [prefix + left + inner[0] + right]
    return [prefix + left + inner[0], *inner[1:-1], inner[-1] + right]


def _sum_lines(expr: sp.Add, budget: float, lead: float, depth: int) -> list[str]:
    """The terms of ``expr`` packed into lines; a term too wide for the rest of a line starts on that line when it
    holds little (so that no line ends on a lone parenthesis) and breaks itself, else on the next. When short leading
    terms would still be left alone on the first line of a display ("A = 1"), they are printed last instead, where
    another term can start that line, or the left-hand side stands alone on it, as papers set long equations."""
    terms = expr.as_ordered_terms()
    out, alone = _pack(terms, budget, lead, depth)
    if 0 < alone < len(terms) and depth == 0:  # (inside parentheses the order is SymPy's)
        rotated = terms[alone:] + terms[:alone]
        out, _ = _pack(rotated, budget, lead, depth)
        if not out[0]:  # no term can start the first line: the left-hand side stands alone on it
            fresh, again = _pack(terms, budget, 0.0, depth)
            out = ["", *(fresh if not again else _pack(rotated, budget, 0.0, depth)[0])]
    return out


def _pack(terms: list[sp.Expr], budget: float, lead: float, depth: int) -> tuple[list[str], int]:
    """(lines, k): ``terms`` packed into lines, and the number k of leading terms left alone on a first line that
    holds little (0 if none)."""
    out = [""]
    used, alone = lead, 0
    for k, term in enumerate(terms):
        sign, mag = _signed(term)
        head = ("- " if sign == "-" else "") if k == 0 else f"{sign} "
        w = width(mag) + _BINOP
        if used + w <= budget:  # the term fits where the line stands
            out[-1] += (" " if out[-1] else "") + head + sp.latex(mag)
            used += w
            continue
        parts = lines(mag, budget, used + _BINOP, depth) if used < budget / 3 else []
        if len(parts) > 1 and parts[0]:  # broken, starting on the line that holds little
            out[-1] += (" " if out[-1] else "") + head + parts[0]
        else:
            parts = lines(mag, budget, 0.0, depth)
            if out[-1] or used > 0.0:  # on a line of its own (the first line may be left with what precedes it)
                if len(out) == 1 and out[0] and used - lead < budget / 6:  # ("1", "x": too little to stand alone)
                    alone = k
                out.append(head + parts[0])
            else:
                out[-1] = head + parts[0]
        out += parts[1:]
        used = budget if len(parts) > 1 else w
    return out, alone


def display(lhs: str, expr: sp.Expr) -> str:
    """``lhs = expr`` as an unnumbered display: one ``equation*`` if it fits a line, else a broken ``align*``."""
    if isinstance(expr, sp.MatrixBase):
        return _matrix(lhs, expr)
    parts = lines(expr, LINE, _glyphs(lhs) + _BINOP)  # the first line starts after "lhs ="
    if len(parts) == 1:
        return f"\\begin{{equation*}}\n{lhs} = {parts[0]}\n\\end{{equation*}}\n"
    body, depth = f"{lhs} ={{}}& {parts[0]}", 0
    for before, line in zip(parts, parts[1:]):  # continuation lines indented by their depth in broken parentheses
        depth += len(re.findall(r"\\[Bb]igg?l\(", before)) - len(re.findall(r"\\[Bb]igg?r\)", before))
        indent = "\\qquad" * (1 + depth)
        body += f"\\\\\n&{indent} {{}}{line}"
    return f"\\begin{{align*}}\n{body}\n\\end{{align*}}\n"


def _matrix(lhs: str, M: sp.MatrixBase) -> str:
    """A matrix that fits as it is; else the matrix with its long entries named ``lhs_{rc}``, each defined below."""
    if width(M) <= LINE:
        return f"\\begin{{equation*}}\n{lhs} = {sp.latex(M)}\n\\end{{equation*}}\n"
    cut = max(40.0, (LINE - _BRACKETS) / M.cols - _COLUMN_GAP)
    named: list[tuple[sp.Symbol, sp.Expr]] = []

    def entry(r: int, c: int) -> sp.Expr:
        if width(M[r, c]) <= cut:
            return M[r, c]
        named.append((sp.Symbol(f"{lhs}_{{{r}{c}}}"), M[r, c]))  # 0-based, as the sections' A_{00} and e_0
        return named[-1][0]

    shown = sp.Matrix(M.rows, M.cols, entry)
    out = [f"\\begin{{equation*}}\n{lhs} = {sp.latex(shown)}\n\\end{{equation*}}\n", "with\n"]
    out += [display(sp.latex(sym), value) for sym, value in named]
    return "".join(out)
