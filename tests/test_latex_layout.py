"""The derivations' display form: the samplers' own notation (symsched.symbolic.display) and line breaking
(symsched.symbolic.layout).

The rewrite into diffusers' alpha, sigma, lambda, h and k-diffusion's t, h must be an identity: every displayed
entry, with the definitions substituted back, equals the engine's entry at random levels. The breaking must keep
SymPy's own printing of each piece, and every line of the generated document must fit the page (pdflatex reports no
overfull box, where the expressions printed on one line overran by up to 6 m before).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symsched.symbolic import get_sampler
from symsched.symbolic import display, layout
from symsched.symbolic.samplers import REGISTRY
from symsched.symbolic.symbols import slot_level
from tex_helpers import DERIVATIONS as DERIVATIONS_PREAMBLE, compile_body, overfull

DERIVATIONS = Path(__file__).resolve().parents[1] / "derivations"
#: every sampler at its defaults, and the settings that change its update equations
CASES = [(name, {}) for name in REGISTRY] + [
    ("dpmsolver_multistep", {"algorithm_type": "sde-dpmsolver++"}),
    ("dpmsolver_multistep", {"solver_type": "heun"}),
    ("unipc_multistep", {"solver_type": "bh1"}),
    ("dpmpp_2m_sde", {"solver_type": "heun"}),
]


def _shown(smp) -> list[sp.Expr]:
    """Every expression the derivation of ``smp`` displays for its kinds of step (stages, new entries, A, B)."""
    out = []
    for upd in smp.kinds.values():
        A, B = upd.matrices
        out += [v for _, v in upd.stages] + [sp.sympify(e) for e in upd.new] + list(A) + list(B)
    return out


def _levels(process: str, rng: np.random.Generator) -> dict[sp.Symbol, float]:
    """Random levels of the slots i-3 .. i+1, noisiest first (VP alpha_bar increasing, VE sigma decreasing)."""
    if process == "vp":
        values = np.sort(rng.uniform(0.02, 0.98, len(display.SLOTS)))
    else:
        values = np.sort(rng.uniform(0.05, 30.0, len(display.SLOTS)))[::-1]
    return {slot_level(process, j): float(v) for j, v in zip(display.SLOTS, values)}


def _mismatch(exprs: list[sp.Expr], process: str, definitions: dict, seed: int) -> float:
    """Largest relative difference between ``exprs`` and their display forms with ``definitions`` substituted back,
    over 5 random points (levels ordered, every other symbol uniform in [0.2, 0.9])."""
    shown = [display.rewrite(e, process).subs(definitions) for e in exprs]
    free = sorted(set().union(*(e.free_symbols for e in exprs + shown)), key=str)
    f = sp.lambdify(free, exprs, "numpy")
    g = sp.lambdify(free, shown, "numpy")
    rng = np.random.default_rng(seed)
    worst = 0.0
    with np.errstate(invalid="ignore"):  # a wrong form may leave the domain (NaN): a mismatch too
        for _ in range(5):
            vals = _levels(process, rng)
            worst = max(worst, _relative(f, g, [vals.get(s, rng.uniform(0.2, 0.9)) for s in free]))
    return worst


def _relative(f, g, args: list[float]) -> float:
    a, b = np.array(f(*args), dtype=float), np.array(g(*args), dtype=float)
    diff = np.abs(a - b) / (1.0 + np.abs(a))
    return float(np.max(np.where(np.isfinite(diff), diff, np.inf)))


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{'-'.join(map(str, o.values())) or 'default'}"
                                                     for n, o in CASES])
def test_the_display_form_is_the_engines_step(name: str, options: dict) -> None:
    smp = get_sampler(name, **options)
    assert _mismatch(_shown(smp), smp.process, display.definitions(smp.process), seed=7) < 1e-10


@pytest.mark.parametrize("name", ["dpmsolver_multistep", "dpmpp_2m_sde"])
def test_the_identity_check_rejects_a_wrong_definition_of_the_step(name: str) -> None:
    """Companion: with h_j defined backwards (lambda_j - lambda_{j+1}), the same comparison fails."""
    smp = get_sampler(name)
    wrong = dict(display.definitions(smp.process))
    for j in display.SLOTS[:-1]:
        wrong[display.h(j)] = -wrong[display.h(j)]
    assert _mismatch(_shown(smp), smp.process, wrong, seed=7) > 1e-3


def test_the_display_uses_the_libraries_names() -> None:
    """DPM-Solver++'s first-order step reads as diffusers writes it,
    (sigma_{i+1}/sigma_i) x - alpha_{i+1}(e^{-h} - 1) D; DPM++ 2M SDE's damping as k-diffusion's (-h * eta).exp()."""
    first = get_sampler("dpmsolver_multistep").kinds["first"]
    x, D = first.state[0], first.stages[0][0]
    shown = display.rewrite(sp.sympify(first.new[0]), "vp")
    h, a1, s0, s1 = display.h(0), display.alpha(1), display.sigma(0), display.sigma(1)
    assert sp.simplify(shown - (s1 / s0 * x - a1 * (sp.exp(-h) - 1) * D)) == 0
    sde = get_sampler("dpmpp_2m_sde").kinds["first"]
    assert sp.exp(-sp.Symbol(r"\eta", nonnegative=True) * display.h(0)) in \
        display.rewrite(sp.sympify(sde.new[0]), "ve").atoms(sp.exp)


# -- line breaking --------------------------------------------------------------------------------------------------
a = sp.symbols("a_1:41", positive=True)
x, y = sp.symbols("x y", positive=True)
LONG = sp.Add(*a)


def _joined(lines: list[str]) -> str:
    return " ".join(lines).replace("  ", " ")


def test_a_long_sum_breaks_into_sympys_own_printing_of_it() -> None:
    lines = layout.lines(LONG, budget=150)
    assert len(lines) > 3
    assert _joined(lines) == sp.latex(LONG)
    assert all(re.match(r"[+-] ", line) for line in lines[1:])  # continuation lines begin with their operator


def test_a_product_breaks_inside_the_parentheses_of_its_long_sum() -> None:
    lines = layout.lines((1 + x / y) * LONG, budget=150)
    factor = r"\left(" + sp.latex(1 + x / y) + r"\right)"  # the sum multiplying keeps its parentheses
    assert lines[0].startswith(factor + r" \Biggl(")
    assert lines[-1].endswith(r"\Biggr)")  # the outermost broken parentheses: the larger size
    text = _joined(lines).replace(r"\Biggl(", r"\left(").replace(r"\Biggr)", r"\right)")
    assert text == factor + r" \left(" + sp.latex(LONG) + r"\right)"


def test_a_negative_fraction_times_a_long_sum_keeps_its_sign() -> None:
    lines = layout.lines(-(x / y) * LONG, budget=150)
    assert lines[0].startswith(r"- \frac{x}{y} \Biggl(")
    text = _joined(lines).replace(r"\Biggl(", r"\left(").replace(r"\Biggr)", r"\right)")
    assert text == r"- \frac{x}{y} \left(" + sp.latex(LONG) + r"\right)"


def test_a_short_first_term_is_not_left_alone_on_its_line() -> None:
    """Audit of 6 December: entries broke right after a leading 1, so the first line read "A_{4,3} = 1"."""
    expr = 1 + LONG / (x + y)  # SymPy prints the 1 first
    assert sp.latex(expr).startswith("1 + ")
    lines = layout.lines(expr, budget=150)
    assert lines[0].startswith(r"1 + \frac{1}{x + y} \Biggl(a_{1} + ") and len(lines) > 2


def test_a_short_leading_term_goes_last_when_the_next_cannot_share_its_line() -> None:
    """Re-audit of 6 December: "A_{00} = 1" alone on the first line, the rest below. Where the wide term cannot follow
    the 1 but can start the line, the 1 is printed last; where nothing can, the left-hand side stands alone."""
    b = sp.symbols("b_1:14", positive=True)
    expr = 1 + LONG / sp.Add(*b)
    assert sp.latex(expr).startswith("1 + ")  # SymPy's order
    text = layout.display("u", expr)
    assert text.startswith("\\begin{align*}\nu ={}& \\frac{1}{b_{1} + ")
    assert text.endswith("&\\qquad {}+ 1\n\\end{align*}\n")
    wider = layout.display("u", 1 + LONG / sp.Add(*sp.symbols("b_1:40", positive=True)))
    assert wider.startswith("\\begin{align*}\nu ={}& \\\\\n")  # the left-hand side alone


def test_nested_parentheses_are_sized_and_indented_by_depth() -> None:
    """Audit of 6 December: every level used the same delimiter and indentation, so the nesting could not be seen."""
    b = sp.symbols("b_1:31", positive=True)
    text = layout.display("u", (1 + x / y) * (sp.Add(*a[:6]) + (x / y) * sp.Add(*b)))
    assert text.count(r"\Biggl(") == text.count(r"\Biggr)") == 1
    assert text.count(r"\biggl(") == text.count(r"\biggr)") == 1
    assert text.index(r"\Biggl(") < text.index(r"\biggl(") < text.index(r"\biggr)") < text.index(r"\Biggr)")
    assert "&\\qquad\\qquad\\qquad {}+ b_{" in text  # two levels deep: two \qquad beyond the continuation indent


def test_display_chooses_one_line_or_an_aligned_break() -> None:
    assert layout.display("u", x + y) == "\\begin{equation*}\nu = x + y\n\\end{equation*}\n"
    text = layout.display("u", LONG)
    assert text.startswith("\\begin{align*}\nu ={}& a_{1} + ") and "\\\\\n&\\qquad {}+ " in text


def test_a_wide_matrix_names_its_long_entries_and_defines_them() -> None:
    assert "\\begin{matrix}x & y\\\\1 & 0\\end{matrix}" in layout.display("A", sp.Matrix([[x, y], [1, 0]]))
    text = layout.display("A", sp.Matrix([[LONG, y], [1, 0]]))
    assert "\\begin{matrix}A_{00} & y\\\\1 & 0\\end{matrix}" in text  # 0-based, as the sections' e_0 and C_n[0, 0]
    assert "with\n\\begin{align*}\nA_{00} ={}& a_{1} + " in text


# -- the generated documents ----------------------------------------------------------------------------------------
def test_every_display_symbol_is_defined_where_it_is_used() -> None:
    for path in sorted(DERIVATIONS.glob("*.tex")):
        text = path.read_text(encoding="utf-8")
        if "diffusers' notation" in text or re.search(r"\\lambda_\{i|\\alpha_\{i", text):
            assert "\\lambda_j = \\log(\\alpha_j/\\sigma_j)" in text or not re.search(r"\\lambda_\{i|h_\{i", text), \
                path.name
            assert "\\alpha_j = \\sqrt{\\bar\\alpha_j}" in text, path.name
        if "k-diffusion's notation" in text:
            assert "t_j = -\\log\\sigma_j" in text and "h_j = t_{j+1} - t_j" in text, path.name
    unipc = (DERIVATIONS / "unipc_multistep.tex").read_text(encoding="utf-8")
    assert "its steps $h_j = \\lambda_{j+1} - \\lambda_j$" in unipc and "h_{i-2}" in unipc


def test_every_broken_display_balances_its_parentheses_and_starts_with_content() -> None:
    """In the committed derivations: each align* closes every \\Biggl( / \\Bigl( it opens, in order; no row is a bare
    operator; no first row holds one short term alone ("= 1"; the left-hand side may stand alone)."""
    seen = 0
    for path in sorted(DERIVATIONS.glob("*.tex")):
        for body in re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", path.read_text(encoding="utf-8"), re.S):
            seen += 1
            stack = []
            for tok in re.findall(r"\\[Bb]igg?[lr][()]", body):
                if tok.endswith("l("):
                    stack.append(tok[:-2])
                else:
                    assert stack and stack.pop() == tok[:-2], (path.name, body[:80])
            assert stack == [], (path.name, body[:80])
            rows = body.split("\\\\\n")
            assert not re.match(r".* =\{\}& [-+]?[^ ]+$", rows[0]), (path.name, rows[0])  # one short term alone
            bare = [row for row in rows[1:] if re.sub(r"^&(\\q?quad)* \{\}", "", row).strip() in ("+", "-", "")]
            assert bare == [], path.name
    assert seen > 50


def _overfull(folder: Path, body: str) -> list[str]:
    """pdflatex ``body`` in the derivations' preamble; the overfull-box reports of its log."""
    proc = compile_body(folder, body, DERIVATIONS_PREAMBLE)
    assert proc.returncode == 0, proc.stdout[-2000:]
    return overfull(folder)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex installed: compile step skipped")
def test_a_broken_display_fits_where_the_one_line_display_overruns(tmp_path: Path) -> None:
    """The page-width check used on the derivations (tests/test_latex.py) can fail: SymPy's one-line print of a
    long product overruns the margin; the broken display of the same expression does not."""
    expr = (1 + x / y) * sp.Add(*[ak * x for ak in a])
    assert _overfull(tmp_path, f"\\begin{{equation*}}\nu = {sp.latex(expr)}\n\\end{{equation*}}\n")
    assert _overfull(tmp_path, layout.display("u", expr)) == []
