"""LaTeX table text (symsched._tex.tex_text): every character symsched can print typesets with pdflatex.

Audit of 4 December: a loss cell "≈0" (rounding-level loss: K <= 3, flow runs) went into the fits tables raw,
and pdflatex stopped with "Unicode character ≈ (U+2248)"; the escaping knew a fixed list of symbols only.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import symsched
from symsched._tex import tex_text
from symsched.insight import fit_heuristics
from tex_helpers import compile_body

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
    return compile_body(tmp_path, body)


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


def _pdf_fonts(tmp_path: Path, body: str) -> str:
    """The fonts pdflatex embedded for ``body`` (the .pfb files its log lists, wrapped lines joined)."""
    proc = _compile(tmp_path, body)
    assert proc.returncode == 0, proc.stdout[-2000:]
    return (tmp_path / "doc.log").read_text(errors="replace").replace("\n", "")


@NO_PDFLATEX
def test_a_best_cell_prints_its_number_in_bold(tmp_path) -> None:
    """Review of 5 December: the best cells of every LaTeX table were written \\textbf{$8.615$}, which prints the
    number in the regular font (\\textbf does not reach math mode). Bold digits come from cmbx10, regular from
    cmr10: the fonts pdflatex embeds tell which the reader sees."""
    from symsched._tex import tex_bold
    from symsched.commands.report import _latex

    S = symsched.spectra.power_law((8, 8), alpha=2.0)
    res = symsched.optimize_schedule(S, 3, divergence="w2", restarts=0)
    tables = [_latex(["schedule", "K=5"], [["optimised", "**8.615**"]], "W2"), fit_heuristics(res, S).to_latex(),
              symsched.compare_schedules(S, (3,), restarts=0).to_latex()]
    for tex in tables:  # every bold cell of the three tables is written one way
        assert tex.count(r"\textbf{") == tex.count(r"\textbf{\boldmath ") >= 1, tex
    assert "cmbx10.pfb" in _pdf_fonts(tmp_path, tex_bold(tex_text("8.615")))
    assert "cmbx10.pfb" not in _pdf_fonts(tmp_path, r"\textbf{$8.615$}")  # companion: the form it replaced


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
    assert r"\textbf{\boldmath $1.384\times10^{6}$}" in tex and r"$\bar\alpha$ = $4.036\times10^{-5}$" in tex
    proc = _compile(tmp_path, tex)
    assert proc.returncode == 0, proc.stdout[-2000:]


# ---------------------------------------------------------------------------------------------------------------
# Audit of 6 December: "-inf" (a zero-SNR first level) and "sigmoid (1.02e-09)" (a runner-up's RMS inside a text
# cell) went into the LaTeX tables raw, while sde-table printed its cells with a formatter of its own. Every LaTeX
# number now goes through symsched._tex (tex_number; tex_text writes the numbers of its cells the same way).
# ---------------------------------------------------------------------------------------------------------------
_NUMBER_RE = re.compile(r"(?<![\\\w])(?:inf|nan)\b|\d[eE][+-]?\d")  # a raw inf / nan / exponent-notation number


def _paper(text: str) -> str:
    """A Python-printed number as a paper prints it, written out here by hand (not by symsched): math mode,
    a power of ten for exponent notation."""
    mant, _, exp = text.partition("e")
    return f"${mant}\\times10^{{{int(exp)}}}$" if exp else f"${mant}$"


@pytest.mark.parametrize("text,tex", [
    ("-inf", r"$-\infty$"), ("inf", r"$\infty$"), ("+inf", r"$\infty$"), ("nan", "n/a"),
    ("0.4552", "$0.4552$"), ("-3.25", "$-3.25$"), ("**-inf**", r"**$-\infty$**"),
    ("sigmoid (1.02e-09)", r"sigmoid ($1.02\times10^{-9}$)"),
    ("rho=inf, sigma_max=1.2e+03", r"rho=$\infty$, sigma\_max=$1.2\times10^{3}$"),
    ("+0.12 / -0.30", "$+0.12$ / $-0.30$"), ("cosine (nan)", "cosine (n/a)"),
    # names and unsigned decimals inside text stay as they are
    ("K=5", "K=5"), ("info", "info"), ("a-inf", "a-inf"), ("karras-1e3 (x1e5)", "karras-1e3 (x1e5)"),
])
def test_tex_text_writes_infinities_nan_and_numbers_inside_text_as_a_paper_does(text, tex) -> None:
    assert tex_text(text) == tex


def _data_rows(tex: str) -> list[list[str]]:
    body = tex.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0]
    return [[c.strip() for c in line.removesuffix(" \\\\").split(" & ")] for line in body.splitlines()
            if line.endswith("\\\\") and not line.startswith("\\")]


def test_a_zero_snr_sweep_prints_minus_infinity_in_latex() -> None:
    """The auditor's case: endpoints (0, None) fix the first level at alpha_bar = 0, log-SNR log(0 / 1) = -inf."""
    res = symsched.sweep([np.array([0.5, 1.0, 2.0])], (3,), endpoints=(0.0, None), restarts=0, n_jobs=1)
    r = res.results[(0, 3)]
    assert r.alpha_bar[0] == 0.0  # so the first log-SNR is -inf (log 0)
    for levels in (False, True):
        tex = res.to_latex(levels=levels)
        assert _NUMBER_RE.search(tex) is None, tex
        (row,) = _data_rows(tex)
        expected = ["$3$", _paper(f"{r.value:.4g}"), _paper(f"{r.kl:.4g}"), _paper(f"{r.w2:.4g}"), r"$-\infty$",
                    _paper(f"{r.log_snr[-1]:.2f}")]
        assert row[:6] == expected, row
        if levels:
            assert row[6].startswith(r"$-\infty$, "), row[6]


def test_the_fits_table_prints_the_runner_up_rms_as_a_paper_does() -> None:
    """The auditor's case: a runner-up's RMS of ~1e-9 inside the text cell "sigmoid (1.02e-09)"."""
    fits = symsched.sweep([np.array([0.0, 1.0, 1e300])], (5,), restarts=0, n_jobs=1).fit_heuristics()
    tex = fits.to_latex()
    assert _NUMBER_RE.search(tex) is None, tex
    (row,) = _data_rows(tex)
    second = fits.fits[(0, 5)].fits[1]
    assert row[-1] == f"{second.family} ({_paper(f'{second.rms:.3g}')})", row[-1]


def test_sde_tables_and_the_report_share_the_one_number_formatter() -> None:
    """sde-table printed -inf as $\\infty$ (no sign) and its numbers as $1.384\\times 10^{6}$ (its own spacing);
    its caption wrote beta_min = 1e-05 in math as "1e-05"."""
    from symsched import sde
    from symsched._tex import tex_number
    from symsched.commands.report import _latex
    from symsched.sde import _tex_number

    assert _tex_number(-math.inf, 7) == r"$-\infty$" and _tex_number(math.inf, 7) == r"$\infty$"
    assert _tex_number(math.nan, 7) == "n/a" and _tex_number(-0.0, 7) == "$0$"
    assert _tex_number(1.384e6, 4) == tex_text("1.384e+06") == tex_number(1.384e6, 4) == r"$1.384\times10^{6}$"
    assert tex_number(-1.23456789e-7, 3) == r"$-1.23\times10^{-7}$"
    table = sde.error_table([0.5, 2.0], (10,), (0.0,), schemes=("euler",), beta_min=1e-5)
    caption = next(line for line in table.to_latex().splitlines() if line.startswith("\\caption{"))
    assert r"$\beta(t) = 1\times10^{-5} + (10 - 1\times10^{-5})\,t$" in caption, caption
    assert _NUMBER_RE.search(caption) is None
    tex = _latex(["schedule", "K=5"], [["cosine", "inf"], ["optimised", "**-inf**"]], "first log-SNR -inf")
    assert r"cosine & $\infty$ \\" in tex and r"\textbf{\boldmath $-\infty$}" in tex
    assert r"first log-SNR $-\infty$" in tex


@NO_PDFLATEX
def test_tables_with_infinities_and_numbers_inside_text_compile(tmp_path) -> None:
    res = symsched.sweep([np.array([0.5, 1.0, 2.0])], (3,), endpoints=(0.0, None), restarts=0, n_jobs=1)
    body = res.to_latex(levels=True) + tex_text("sigmoid (1.02e-09), rho=inf, +0.12 / -0.30, nan")
    proc = _compile(tmp_path, body)
    assert proc.returncode == 0, proc.stdout[-2000:]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex installed: compile step skipped")
def test_a_table_keeps_its_natural_width_inside_the_resizebox(tmp_path: Path) -> None:
    """Review of 5 December: the line end after the tabular added a space inside tex_table's \\resizebox, so the box
    was 3.3 pt wider than the table (off-centre, and a wide table was scaled with the space)."""
    from symsched._tex import tex_table

    tabular = "\\begin{tabular}{ll}\n\\toprule\na & b \\\\\n\\bottomrule\n\\end{tabular}\n"
    out = tex_table(tabular, "A caption.", "report")
    boxed = out[out.index("\\resizebox"): out.index("\n}\n") + 2]
    body = ("\\newsavebox\\nat\\newsavebox\\ours\\sbox\\nat{" + tabular.rstrip("\n") + "}\\sbox\\ours{" + boxed
            + "}\\typeout{WIDTHS \\the\\wd\\nat\\space \\the\\wd\\ours}")
    proc = _compile(tmp_path, body)
    assert proc.returncode == 0, proc.stdout[-2000:]
    natural, ours = re.search(r"WIDTHS ([\d.]+)pt ([\d.]+)pt", proc.stdout).groups()
    assert abs(float(natural) - float(ours)) < 0.01  # (graphicx's scaling rounds in TeX's fixed point: ~5e-4 pt)
