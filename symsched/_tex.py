"""Text and numbers into LaTeX table cells: the one escaping and the one number formatter every ``to_latex`` table
(and every LaTeX table or caption symsched writes) uses."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Callable

__all__ = ["tex_text", "tex_prose", "tex_number", "tex_table"]

#: LaTeX's special characters in running text and their escapes, applied in this order (a backslash becomes a
#: placeholder first, so no escape added later is escaped again; braces before the escapes that add braces).
_SPECIAL = (("\\", "\0"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"),
            ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}"), ("\0", r"\textbackslash{}"))
#: The symbols symsched's texts print, in LaTeX that pdflatex's default set-up (OT1, utf8 input) typesets.
_SYMBOLS = {
    "Δℓ": r"$\Delta\ell$", "Δμ": r"$\Delta\mu$", "²": "$^2$", "₀": "$_0$",
    "|": "$|$", "‖": r"$\|$", "−": "$-$", "–": "--", "—": "---", "×": r"$\times$", "·": r"$\cdot$",
    "±": r"$\pm$", "≈": r"$\approx$", "≤": r"$\le$", "≥": r"$\ge$", "≠": r"$\ne$", "∝": r"$\propto$",
    "→": r"$\to$", "←": r"$\leftarrow$", "∞": r"$\infty$", "√": r"$\surd$", "½": r"$\frac{1}{2}$", "°": r"$^\circ$",
    "†": r"$^\dagger$", "‡": r"$^\ddagger$", "§": r"\S{}", "ℓ": r"$\ell$", "…": r"\dots{}", "<": r"$<$", ">": r"$>$",
    "ᾱ": r"$\bar\alpha$", "ε": r"$\varepsilon$", "ϵ": r"$\epsilon$", "λ": r"$\lambda$", "Λ": r"$\Lambda$",
    "‘": "`", "’": "'", "“": "``", "”": "''",
}
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-"))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋", "0123456789+-"))
#: Combining accents (after their letter, as in "x̂") and their math accents.
_ACCENTS = {"\u0302": r"\hat", "\u0304": r"\bar", "\u0303": r"\tilde", "\u0307": r"\dot", "\u20d7": r"\vec"}
#: The 24 letters of the Greek alphabet (Unicode's names): LaTeX has a macro for each small one but omicron.
_GREEK = ("ALPHA", "BETA", "GAMMA", "DELTA", "EPSILON", "ZETA", "ETA", "THETA", "IOTA", "KAPPA", "LAMDA", "MU", "NU",
          "XI", "OMICRON", "PI", "RHO", "SIGMA", "TAU", "UPSILON", "PHI", "CHI", "PSI", "OMEGA")
#: Greek capitals that look like Latin ones have no LaTeX macro.
_LATIN_LOOKALIKE = dict(zip(("ALPHA", "BETA", "EPSILON", "ZETA", "ETA", "IOTA", "KAPPA", "MU", "NU", "OMICRON",
                             "RHO", "TAU", "CHI"), "ABEZHIKMNOPTX"))
#: Latin letters of U+00C0-U+017F that LaTeX's default OT1 fonts lack (T1 glyphs: eth, thorn, ogonek, stroked
#: letters, eng, kra, long s, ...), written with the nearest OT1 letters.
_T1_ONLY = {"Ð": "D", "ð": "d", "Þ": "Th", "þ": "th", "Ą": "A", "ą": "a", "Đ": "D", "đ": "d", "Ę": "E", "ę": "e",
            "Ħ": "H", "ħ": "h", "Į": "I", "į": "i", "ĸ": "k", "Ŀ": "L", "ŀ": "l", "ŉ": "'n", "Ŋ": "N", "ŋ": "n",
            "Ŧ": "T", "ŧ": "t", "Ų": "U", "ų": "u", "ſ": "s"}


def _greek(c: str) -> str | None:
    """A letter of the Greek alphabet as math (``σ`` -> ``$\\sigma$``, final ``ς`` -> ``$\\varsigma$``), or None when
    ``c`` is not one (archaic letters such as digamma have no LaTeX macro)."""
    name = unicodedata.name(c, "")
    if name == "GREEK SMALL LETTER FINAL SIGMA":
        return "$\\varsigma$"
    m = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER ([A-Z]+)", name)
    if m is None or m.group(2) not in _GREEK:
        return None
    name = m.group(2).replace("LAMDA", "LAMBDA")
    if m.group(1) == "SMALL":
        return "o" if name == "OMICRON" else "$\\" + name.lower() + "$"
    return _LATIN_LOOKALIKE.get(name) or "$\\" + name.capitalize() + "$"


def _latin(c: str) -> str | None:
    """A Latin letter as pdflatex's default set-up (OT1 fonts, utf8 input) typesets it: as itself in U+00C0-U+017F
    (utf8 maps it to an accent command), else its nearest OT1 letters (:data:`_T1_ONLY`, or the letter without its
    accents); None when ``c`` is not a Latin letter or has no ASCII base."""
    if not unicodedata.name(c, "").startswith("LATIN "):
        return None
    if c in _T1_ONLY:
        return _T1_ONLY[c]
    if 0xC0 <= ord(c) < 0x180:
        return c
    base = unicodedata.normalize("NFD", c)[0]
    return base if base.isascii() and base.isalpha() else None


def _char(c: str) -> str:
    """One non-ASCII character in LaTeX: a known symbol, a Greek letter, a Latin letter OT1 typesets (or its nearest
    such letters), else its code point written out (never a character pdflatex stops at)."""
    if c in _SYMBOLS:
        return _SYMBOLS[c]
    if c in _SUPERSCRIPTS or c in _SUBSCRIPTS:
        return ("$^{" + _SUPERSCRIPTS[c] + "}$") if c in _SUPERSCRIPTS else ("$_{" + _SUBSCRIPTS[c] + "}$")
    letter = _greek(c) or _latin(c)
    return letter if letter is not None else "U+%04X" % ord(c)


def _accented(out: list[str], accent: str) -> None:
    """Put the combining ``accent`` on the LaTeX of the character before it (``x̂`` -> ``$\\hat{x}$``)."""
    base = out.pop() if out else "{}"
    body = base[1:-1] if len(base) > 1 and base.startswith("$") and base.endswith("$") else base
    out.append("$" + _ACCENTS[accent] + "{" + body + "}$")


def _tokens(text: str) -> list[str]:
    """Characters, with the two-character symbols of :data:`_SYMBOLS` ("Δℓ") kept together."""
    out, i = [], 0
    while i < len(text):
        step = 2 if text[i : i + 2] in _SYMBOLS and len(text[i : i + 2]) == 2 else 1
        out.append(text[i : i + step])
        i += step
    return out


#: a number in Python's exponent notation ("1.384e+06", "4.036e-05"), not part of a longer word or number
_EXPONENT = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)[eE]([+-]?)(\d+)(?![\w.])")
#: a number as Python prints it (``str``, ``:g``, ``:.2f``, ``:+.2f``): signed decimals, exponent notation,
#: ``inf``, ``-inf``, ``nan``
_NUMERAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf|nan"
#: a table cell that is one number (bold ``**`` and trailing marks ``†`` ``‡`` allowed)
_NUMBER_CELL = re.compile(r"(\*\*)?(" + _NUMERAL + r")(\*\*)?([†‡]*)")
#: inside a text cell ("sigmoid (1.02e-09)", "rho=1e+03", "+0.12 / -0.30"): a number that would not print as a
#: paper prints it in text mode (exponent notation, inf, nan, a sign) and that stands as a word of its own: after
#: the start, a space, "(", "[", "=", ",", ";", "/" or ":" and before the end, a space, ")", "]", ",", ";", "/",
#: ":", "†" or "‡" (so "karras-1e3", "x1e5", "1e3-1e5" and "info" are names, not numbers)
_EMBEDDED = re.compile(r"(?<![^\s(\[=,;/:])(?:[+-](?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
                       r"|(?:\d+(?:\.\d*)?|\.\d+)[eE][+-]?\d+|[+-]?inf|nan)(?![^\s)\],;/:†‡])")


def _numeral(text: str) -> str:
    """A number as Python prints it (see :data:`_NUMERAL`) as a paper prints it, in math mode: ``1.384e+06`` ->
    ``$1.384\\times10^{6}$``, ``-0.5`` -> ``$-0.5$`` (a minus sign, not a hyphen), ``inf`` / ``-inf`` ->
    ``$\\infty$`` / ``$-\\infty$``; ``nan`` (an undefined value) -> ``n/a``, so no table prints "nan"."""
    body = text.lower()
    if body == "nan":
        return "n/a"
    if body.lstrip("+-") == "inf":
        return ("$-\\infty$" if body.startswith("-") else "$\\infty$")
    mant, _, exp = body.partition("e")
    if not exp:
        return f"${mant}$"
    return f"${mant}\\times10^{{{int(exp)}}}$"  # int("+06") = 6, int("-05") = -5


def tex_number(x: float, digits: int = 6) -> str:
    """The float ``x`` as a paper prints it in a LaTeX table: ``digits`` significant digits (Python's ``:g``) in
    math mode, exponent notation as a power of ten (``1.384e+06`` -> ``$1.384\\times10^{6}$``), ``$0$`` for
    either zero, ``$\\infty$`` / ``$-\\infty$`` for +inf / -inf and ``n/a`` for NaN (never "nan" or "inf").
    The one number formatter of symsched's LaTeX: :func:`tex_text` writes the numbers of its cells the same way.
    ``digits`` is an integer >= 1 (callers check it where a user sets it)."""
    x = float(x)
    if math.isnan(x):
        return "n/a"
    if x == 0:
        return "$0$"
    return _numeral(f"{x:.{digits}g}")


def tex_bold(tex: str) -> str:
    """The LaTeX cell ``tex`` (text and math alike, as :func:`tex_text` writes it) in bold: ``\\textbf`` for its
    text and ``\\boldmath`` for its math (``\\textbf{$8.6$}`` alone prints the number in the regular font)."""
    return "\\textbf{\\boldmath " + tex + "}"


def _rewrite(text: str, pattern: re.Pattern[str], convert: Callable[[re.Match[str]], str]) -> str:
    """:func:`_tex_plain` of ``text`` with every match of ``pattern`` written as ``convert(match)`` instead."""
    out, last = [], 0
    for m in pattern.finditer(text):
        out += [_tex_plain(text[last:m.start()]), convert(m)]
        last = m.end()
    return "".join(out) + _tex_plain(text[last:])


def tex_text(text: str) -> str:
    """``text`` (a label, a number, a header, a user's schedule name) as LaTeX text: its special characters
    ``\\ & % $ # _ { } ~ ^`` escaped, every other non-ASCII character as LaTeX (math symbols and Greek letters
    in math mode), so that no text symsched writes into a table stops pdflatex.

    Numbers as a paper prints them (as :func:`tex_number`): a cell that is one number (``0.4552``, ``-inf``,
    ``1.384e+06``, ``**1.13e+04**``, ``2e-5†``) in math mode (``$0.4552$``, ``$-\\infty$``,
    ``$1.384\\times10^{6}$``; ``nan`` as ``n/a``); inside a text cell, a number standing as a word of its own
    (see :data:`_EMBEDDED`: ``sigmoid (1.02e-09)``, ``rho=inf``, ``+0.12 / -0.30``) in exponent notation, signed,
    infinite or NaN the same way. A label that only contains such a pattern (``karras-1e3``, ``x1e5``) stays as it
    is, and so do unsigned decimals inside text (``K=5``)."""
    text = str(text)
    m = _NUMBER_CELL.fullmatch(text)
    if m is not None:
        return (m.group(1) or "") + _numeral(m.group(2)) + (m.group(3) or "") + _tex_plain(m.group(4))
    return _rewrite(text, _EMBEDDED, lambda m: _numeral(m.group(0)))


#: identifiers the captions and sentences print, as a paper writes them (whole words only)
_PROSE_TEX = {"alpha_bar": r"$\bar\alpha$", "W2²": "$W_2^2$", "W2": "$W_2$", "eta": r"$\eta$",
              "sigma_max": r"$\sigma_{\max}$", "sigma_min": r"$\sigma_{\min}$"}
#: those identifiers ("eta" only before "="), an exponent-notation number (:data:`_EXPONENT`) or a number that
#: stands as a word (:data:`_EMBEDDED`: signed, inf, nan)
_PROSE = re.compile(r"\balpha_bar\b|\bW2²|\bW2\b|\beta(?==)|\bsigma_max\b|\bsigma_min\b|" + _EXPONENT.pattern
                    + "|" + _EMBEDDED.pattern)


#: opens a box that shrinks its contents to the text width, never enlarging them (graphicx's ``\\resizebox``): put
#: it before a ``tabular`` and ``"}"`` after its ``\\end{tabular}%`` (the "%" keeps the line end from adding a space)
FIT_TO_LINE = "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%"


def tex_table(tabular: str, caption: str, command: str) -> str:
    """A booktabs ``tabular`` as a LaTeX ``table`` float with its caption (:func:`tex_prose` of ``caption``), after a
    comment naming the ``symsched`` command that wrote it: every table file symsched writes (``report``'s
    ``table_*.tex`` and ``insight_fits_*.tex``, every ``explain/*.tex``) goes through here. A table wider than the
    text (the resolution law's 11 columns) is scaled down to ``\\linewidth`` (graphicx's ``\\resizebox``); a
    narrower one keeps its natural size."""
    return "\n".join([f"% Generated by `symsched {command}`; needs \\usepackage{{booktabs}} and "
                      "\\usepackage{graphicx}.", "\\begin{table}[t]", "\\centering",
                      f"\\caption{{{tex_prose(caption)}}}", FIT_TO_LINE, tabular.rstrip("\n") + "%", "}",
                      "\\end{table}"]) + "\n"


def tex_prose(text: str) -> str:
    """A caption or sentence (not a table cell: schedule names stay literal there) as LaTeX: :func:`tex_text` with
    the identifiers it prints as their symbols (``alpha_bar`` -> ``$\\bar\\alpha$``, ``W2`` -> ``$W_2$``, ``eta=`` ->
    ``$\\eta$=``, ``sigma_max`` -> ``$\\sigma_{\\max}$``) and every exponent-notation number (and every signed,
    infinite or NaN number standing as a word) as a paper prints it (:func:`tex_number`'s form)."""
    return _rewrite(text, _PROSE, lambda m: _PROSE_TEX.get(m.group(0)) or _numeral(m.group(0)))


def _tex_plain(text: str) -> str:
    """:func:`tex_text` of text without numbers."""
    out: list[str] = []
    for c in _tokens(text):
        if len(c) > 1:
            out.append(_SYMBOLS[c])
        elif c in _ACCENTS:
            _accented(out, c)
        elif unicodedata.category(c) == "Mn":
            continue  # another combining mark: the letter without it
        elif ord(c) < 128:
            for raw, tex in _SPECIAL:
                c = c.replace(raw, tex)
            out.append(_SYMBOLS.get(c, c))
        else:
            out.append(_char(c))
    return "".join(out)  # adjacent math stays apart ("$^{-}$$^{1}$": inline math ends at its "$", no display)
