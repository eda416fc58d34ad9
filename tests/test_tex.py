"""LaTeX table text (symsched._tex.tex_text): every character symsched can print typesets with pdflatex.

Audit of 4 December: a loss cell "≈0" (rounding-level loss: K <= 3, flow runs) went into the fits tables raw,
and pdflatex stopped with "Unicode character ≈ (U+2248)"; the escaping knew a fixed list of symbols only.
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import symsched
from symsched._tex import tex_text
from symsched.insight import fit_heuristics

PACKAGE = Path(symsched.__file__).resolve().parent
NO_PDFLATEX = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex installed: compile step skipped")


def _package_characters() -> str:
    """Every non-ASCII character in symsched's source: what its tables, labels and messages can contain."""
    chars = set()
    for path in PACKAGE.rglob("*.py"):
        chars.update(c for c in path.read_text(encoding="utf-8") if ord(c) > 127)
    return "".join(sorted(chars))


def _typesettable(tex: str) -> bool:
    """ASCII, or Latin letters of U+00C0-U+017F (which LaTeX's default utf8 input maps to accents; some of them need
    T1 fonts, which the compile tests below catch)."""
    return all(ord(c) < 128 or (0xC0 <= ord(c) < 0x180 and unicodedata.name(c, "").startswith("LATIN ")) for c in tex)


def _letters() -> str:
    """Every Latin and Greek letter of U+00A0-U+03FF: what a user's label (a dataset, a schedule name) may hold."""
    return "".join(chr(c) for c in range(0xA0, 0x400)
                   if unicodedata.name(chr(c), "").startswith(("LATIN ", "GREEK SMALL LETTER", "GREEK CAPITAL LETTER")))


def _compile(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n" + body
                                      + "\n\\end{document}\n", encoding="utf-8")
    return subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def test_every_character_of_the_package_becomes_typesettable_latex() -> None:
    chars = _package_characters() + _letters()
    assert "≈" in chars and "σ" in chars  # the check sees what the tables print
    for c in chars:
        assert _typesettable(tex_text(c)), (c, tex_text(c))


@pytest.mark.parametrize("text,tex", [
    ("≈0", r"$\approx$0"),
    ("max |Δlog-SNR|", r"max $|$$\Delta$log-SNR$|$"),
    ("Δℓ", r"$\Delta\ell$"),
    ("10⁻¹", r"10$^{-}$$^{1}$"),  # inline math groups side by side (joined, they were a double superscript)
    ("x̂0", r"$\hat{x}$0"),
    ("ᾱ = 0", r"$\bar\alpha$ = 0"),
    ("a_b & 5% $", r"a\_b \& 5\% \$"),
    ("\\$σ", r"\textbackslash{}\$$\sigma$"),
    ("Α", "A"),  # a Greek capital without a LaTeX macro
    ("Będzin Þórr ς ϝ", "Bedzin Thórr $\\varsigma$ U+03DD"),  # T1-only letters, final sigma, digamma
    ("😀", "U+1F600"),
    # audit of 5 December: numbers went into the paper's tables as Python's "1.384e+06"
    ("1.384e+06", r"$1.384\times10^{6}$"),
    ("1.13e+04†", r"$1.13\times10^{4}$$^\dagger$"),
    ("-2.5E-300", r"$-2.5\times10^{-300}$"),
    ("**1.384e+06**", r"**$1.384\times10^{6}$**"),  # (bold, as the report's cells mark the best)
    # review of 5 December: labels that contain such a pattern are names, not numbers
    ("x1e5 v1.2e3", "x1e5 v1.2e3"), ("karras-1e3", "karras-1e3"), ("1e3-1e5", "1e3-1e5")
])
def test_tex_text(text, tex) -> None:
    assert tex_text(text) == tex


@NO_PDFLATEX
def test_the_package_characters_compile(tmp_path) -> None:
    """(review of 4 December: Latin letters beyond OT1 — ą, Ð, þ, ſ — and archaic Greek letters such as digamma,
    written as undefined macros, stopped pdflatex: "Command \\k unavailable in encoding OT1")"""
    body = " ".join(tex_text(c) for c in _package_characters() + _letters()) + " " + tex_text("x†‡ ⁻¹² Δℓ ‖x‖ a_b 😀")
    proc = _compile(tmp_path, body)
    assert proc.returncode == 0, proc.stdout[-2000:]


@NO_PDFLATEX
def test_a_fits_table_with_a_rounding_level_loss_compiles(tmp_path) -> None:
    """K = 3 with matched end points: one free level, which the families meet to rounding: "≈0" cells."""
    S = symsched.spectra.power_law((8, 8), alpha=2.0)
    fit = fit_heuristics(symsched.optimize_schedule(S, 3, divergence="w2", restarts=0), S)
    tex = fit.to_latex()
    assert any(f.loss_is_rounding for f in fit.fits) and r"$\approx$0" in tex
    assert _typesettable(tex)
    proc = _compile(tmp_path, tex)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_a_wrong_escape_is_caught() -> None:
    """Companion: the check above rejects the raw symbol the tables used to carry."""
    assert not _typesettable("≈0") and _typesettable("é")
    assert np.all([_typesettable(tex_text(c)) for c in "≈σ√"])


def test_tex_prose_writes_the_identifiers_as_symbols() -> None:
    """Audit of 5 December: the report's captions said "alpha\\_bar = 4.036e-05", "eta=0" and "W2" in code words."""
    from symsched._tex import tex_prose

    assert tex_prose("W2 of ddim (eta=0): first level alpha_bar = 4.036e-05; W2² and sigma_max, beta=1, a_bar, 3e7") == (
        r"$W_2$ of ddim ($\eta$=0): first level $\bar\alpha$ = $4.036\times10^{-5}$; $W_2^2$ and $\sigma_{\max}$, "
        r"beta=1, a\_bar, $3\times10^{7}$")


@NO_PDFLATEX
def test_the_report_tables_compile_with_their_numbers_and_captions(tmp_path) -> None:
    """The report's LaTeX table with exponent-notation cells and a prose caption compiles."""
    from symsched.commands.report import _latex

    tex = _latex(["schedule", "K=5"], [["optimised", "**1.384e+06**"], ["cosine", "1.13e+04†"]],
                 "W2 between the data and the generated Gaussian, ddim (eta=0): first level alpha_bar = 4.036e-05")
    assert r"\textbf{$1.384\times10^{6}$}" in tex and r"$\bar\alpha$ = $4.036\times10^{-5}$" in tex
    proc = _compile(tmp_path, tex)
    assert proc.returncode == 0, proc.stdout[-2000:]
