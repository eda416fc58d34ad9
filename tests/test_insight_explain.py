"""`symsched explain` end to end (small settings) and the insight section of `symsched report`."""

from __future__ import annotations

import json
import re
from html import unescape

import numpy as np
import pytest

import symsched
from symsched.cli import main
from symsched.spectra import load_spectrum


pytestmark = pytest.mark.slow  # whole-command runs (still run in CI)


@pytest.fixture(scope="module")
def explained(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("explain")
    code = main(["explain", "--out", str(out), "--steps", "4,6", "--resolutions", "16,32", "--image-resolutions",
                 "16,32", "--jobs", "2", "--no-progress"])
    assert code == 0
    return out


def test_explain_writes_markdown_figures_and_latex(explained) -> None:
    names = {p.name for p in explained.iterdir()}
    for stem in ("schedules_kl", "schedules_w2", "fits_kl", "fits_w2", "fits_kl_K6", "fits_w2_K6",
                 "resolution_powerlaw", "resolution_images"):
        assert {f"{stem}.md", f"{stem}.tex"} <= names, stem
    for fig in ("schedules.png", "fits_w2_K6.png", "intermediate_kl_K6.png", "intermediate_w2_K6.png",
                "resolution_powerlaw.png", "resolution_images.png"):
        assert (explained / fig).stat().st_size > 10_000, fig
    doc = (explained / "explain.md").read_text()
    for heading in ("## Optimal schedules", "## Which heuristic is it?", "## The resolution law",
                    "## Coarse to fine", "## What the Gaussian theory does and does not justify"):
        assert heading in doc
    for name in names - {"explain.md", "explain.json"}:
        if name.endswith(".png"):
            assert f"({name})" in doc, name  # every figure is shown
    assert r"\begin{tabular}" in (explained / "resolution_images.tex").read_text()


def test_the_heat_map_captions_explain_the_white_curve(explained, tmp_path) -> None:
    """New-user audit: explain.md and the report's summary described the per-step heat maps' panels but not the
    white curve (the 0.5 contour, each band's generation step) nor the black dots."""
    from symsched.insight.explain import report_section

    curve = "white curve: the 0.5 contour, the step at which each band has half of its final variance"
    dots = "black dots: the band whose mean variance equals the step's noise level σ²"
    doc = (explained / "explain.md").read_text()
    section = doc.split("## Coarse to fine", 1)[1].split("\n## ", 1)[0]
    assert curve in section and dots in section and "(intermediate_w2_K6.png)" in section
    S = load_spectrum("builtin:natural-patches")
    results = {"w2": {3: symsched.optimize_schedule(S, 3, divergence="w2", restarts=0)}}
    md, html = report_section(S, results, tmp_path)
    assert md.index("(insight_intermediate.png)") < md.index(curve) and dots in md
    text = unescape(html)  # (the HTML escapes the apostrophes)
    assert curve in text and dots in text


def test_explain_numbers_are_reproducible_from_the_api(explained) -> None:
    data = json.loads((explained / "explain.json").read_text())
    assert data["info"]["warning"] is None  # a real spectrum: the results describe it
    S = load_spectrum("builtin:natural-patches")
    rec = [r for r in data["schedules"]["w2"]["results"] if r["steps"] == 6][0]
    P = symsched.output_spectrum(S, np.array(rec["alpha_bar"]))
    assert float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2)) == pytest.approx(rec["value"], rel=1e-9)
    fit = data["fits"]["w2"]["6"]
    best = fit["fits"][0]
    assert best["family"] == fit["best"]
    P_fit = symsched.output_spectrum(S, 1 / (1 + np.exp(-np.array(best["log_snr"]))))
    assert float(np.sum((np.sqrt(P_fit) - np.sqrt(S)) ** 2)) == pytest.approx(best["value"], rel=1e-6)
    table = (explained / "fits_w2.md").read_text()
    assert f"| 6 | {best['family']} |" in table
    law = data["resolution_law"]["power law"]
    off = np.array(law["log_snr"]["w2"])
    np.testing.assert_allclose(law["offset"]["w2"], (off - off[0]).mean(axis=1), atol=1e-12)
    assert law["rule_slope_per_doubling"]["simple diffusion"] == pytest.approx(-2 * np.log(2))


def test_explain_shows_a_progress_bar(tmp_path, capsys, monkeypatch) -> None:
    """On a terminal (stderr a file or pipe draws none: audit of 5 December)."""
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code = main(["explain", "--out", str(tmp_path), "--steps", "3", "--divergences", "w2", "--resolutions", "none",
                 "--images", "off", "--jobs", "1"])
    assert code == 0
    captured = capsys.readouterr()
    assert "symsched explain" in captured.err and "100%" in captured.err
    assert "symsched explain: wrote" in captured.out
    doc = (tmp_path / "explain.md").read_text()
    assert "## The resolution law" not in doc and "## Coarse to fine" in doc


@pytest.mark.parametrize("sampler", ["dpmpp_2m", "deis_multistep"])
def test_explain_takes_every_sampler_the_optimiser_takes(tmp_path, sampler) -> None:
    # VE (dpmpp_2m, on the levels' sigmas) and a multistep sampler that stops at its last level (DEIS)
    code = main(["explain", "--sampler", sampler, "--out", str(tmp_path), "--steps", "4", "--divergences", "w2",
                 "--resolutions", "none", "--images", "off", "--jobs", "1", "--no-progress"])
    assert code == 0
    data = json.loads((tmp_path / "explain.json").read_text())
    rec = data["schedules"]["w2"]["results"][0]
    S = load_spectrum("builtin:natural-patches")
    ab = np.array(rec["alpha_bar"])
    if sampler in symsched.VE_SAMPLERS:
        P = symsched.output_spectrum_ve(S, np.sqrt((1 - ab) / ab), sampler=sampler)
    else:
        P = symsched.output_spectrum(S, ab, sampler=sampler)
    assert float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2)) == pytest.approx(rec["value"], rel=1e-9)
    assert sampler in (tmp_path / "explain.md").read_text()


def test_explain_passes_eta_and_options_to_every_sampler(tmp_path) -> None:
    """--eta/--option reach the optimiser, the fits and the per-step spectra (not only DDIM's eta)."""
    code = main(["explain", "--sampler", "euler_ancestral", "--eta", "0.5", "--option", "s_noise=1.01", "--out",
                 str(tmp_path), "--steps", "3", "--divergences", "w2", "--resolutions", "none", "--images", "off",
                 "--jobs", "1", "--no-progress"])
    assert code == 0
    data = json.loads((tmp_path / "explain.json").read_text())
    rec = data["schedules"]["w2"]["results"][0]
    S = load_spectrum("builtin:natural-patches")
    ab = np.array(rec["alpha_bar"])
    sig = np.sqrt((1 - ab) / ab)

    def w2(**kw):
        P = symsched.output_spectrum_ve(S, sig, sampler="euler_ancestral", **kw)
        return float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2))

    assert w2(eta=0.5, s_noise=1.01) == pytest.approx(rec["value"], rel=1e-9)
    assert abs(w2() - rec["value"]) > 1e-3 * rec["value"]
    assert data["info"]["settings"]["eta"] == 0.5 and data["info"]["settings"]["s_noise"] == 1.01
    assert "Sampler euler_ancestral (eta=0.5 s_noise=1.01)" in (tmp_path / "explain.md").read_text()


def test_explain_of_a_flow_matching_model_starts_every_schedule_from_pure_noise(tmp_path) -> None:
    code = main(["explain", "--flow", "--out", str(tmp_path), "--steps", "4", "--divergences", "w2",
                 "--resolutions", "16,32", "--images", "off", "--jobs", "1", "--no-progress"])
    assert code == 0
    def strict(name):  # RFC 8259 JSON has no Infinity/NaN: other tools' parsers refuse them
        raise AssertionError(f"explain.json holds the non-JSON constant {name}")

    data = json.loads((tmp_path / "explain.json").read_text(), parse_constant=strict)
    rec = data["schedules"]["w2"]["results"][0]
    ab = np.array(rec["alpha_bar"])
    assert ab[0] == 0.0 and rec["log_snr"][0] == "-inf" and data["schedules"]["w2"]["settings"]["sampler"] == "flow_match_euler"
    S = load_spectrum("builtin:natural-patches")
    P = symsched.output_spectrum(S, ab, sampler="flow_match_euler")
    assert float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2)) == pytest.approx(rec["value"], rel=1e-9)
    law = data["resolution_law"]["power law"]
    assert np.all(np.isfinite(law["offset"]["w2"])) and np.isfinite(law["slope_per_doubling"]["w2"])
    assert all(row[0] == "-inf" for row in law["log_snr"]["w2"])
    doc = (tmp_path / "explain.md").read_text()
    assert "first level pure noise, t = 1" in doc and "first level after pure noise" in doc and "nan" not in doc


def test_explain_on_a_pca_spectrum_skips_the_power_law(tmp_path) -> None:
    np.save(tmp_path / "S.npy", np.sort(load_spectrum("builtin:natural-patches").ravel())[::-1][:200].copy())
    code = main(["explain", "--spectrum", str(tmp_path / "S.npy"), "--out", str(tmp_path / "o"), "--steps", "3",
                 "--divergences", "kl", "--jobs", "1", "--no-progress"])
    assert code == 0
    assert "needs a square FFT-grid spectrum" in (tmp_path / "o" / "explain.md").read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--steps", "5,x"], "--steps must be comma-separated positive integers"),
        (["--divergences", "kl,js"], "divergences entries must be one of"),
        (["--spectrum", "missing.npy"], "missing.npy"),
        (["--jobs", "-4097"], "at most 4096 in size (got -4097)"),
        (["--eta", "2"], "eta must lie in"),
        (["--sampler", "dpmpp_2m", "--eta", "0.5"], "eta applies only to samplers with an eta parameter"),
        (["--flow", "--sampler", "ddim"], "--flow runs a flow-matching sampler"),
        (["--flow", "--steps", "1,3"], "--steps: K = 1 with a flow-matching sampler"),  # before any work
        (["--sampler", "dpmsolver_multistep", "--option", "solver_order=9"], "--option solver_order"),
        (["--images", "on", "--image-resolutions", "16,4096", "--resolutions", "none"],
         "--image-resolutions: image_resolutions must not exceed the smallest square crop"),
    ],
)
def test_explain_bad_input_prints_one_line_and_exits_2(tmp_path, capsys, argv, message) -> None:
    assert main(["explain", "--out", str(tmp_path), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("symsched explain: error:") and message in err[0]


def test_explain_images_on_needs_images(tmp_path, capsys) -> None:
    np.save(tmp_path / "S.npy", np.ones((8, 8)))
    assert main(["explain", "--spectrum", str(tmp_path / "S.npy"), "--images", "on", "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    assert "builtin:natural-patches' or a folder of images" in capsys.readouterr().err


def test_report_has_the_insight_section(tmp_path) -> None:
    assert main(["report", "--out", str(tmp_path), "--steps", "4", "--samples", "500", "--no-progress"]) == 0
    md = (tmp_path / "summary.md").read_text()
    assert "## Spectral insight" in md and "insight_intermediate.png" in md
    assert re.search(r"\| 4 \| \w", (tmp_path / "insight_fits_w2.md").read_text())
    assert (tmp_path / "insight_intermediate.png").is_file() and (tmp_path / "insight_fits_kl.tex").is_file()
    html = (tmp_path / "summary.html").read_text()
    assert "<h2>Spectral insight</h2>" in html and html.rstrip().endswith("</html>")


def test_explain_of_an_all_zero_spectrum_loses_0_percent_not_nan(tmp_path, capsys) -> None:
    """Break-test item 9: every schedule generates an all-zero spectrum exactly, so the relative loss is
    0/0; it is defined as 0 % (nothing lost) in the console line, the Markdown and the LaTeX tables."""
    np.save(tmp_path / "zeros.npy", np.zeros((8, 8)))
    code = main(["explain", "--spectrum", str(tmp_path / "zeros.npy"), "--steps", "2,3", "--divergences", "w2",
                 "--resolutions", "none", "--images", "off", "--out", str(tmp_path / "o"), "--jobs", "1",
                 "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "lost 0 %" in out and "nan" not in out
    for name in ("explain.md", "fits_w2.md", "fits_w2.tex", "fits_w2_K3.md", "fits_w2_K3.tex"):
        assert "nan" not in (tmp_path / "o" / name).read_text().lower(), name
    table = [re.split(r"(?<!\\)\|", row) for row in (tmp_path / "o" / "fits_w2.md").read_text().splitlines()]
    assert all(len(row) == len(table[0]) for row in table)  # the pipes in "max |Δlog-SNR|" are escaped
    assert table[0][6].strip() == "lost (%)" and [row[6].strip() for row in table[2:]] == ["0", "0"]
    # (review of 4 December: and it named a best family and a generation order without saying they mean nothing)
    warning = "Every mode of the spectrum is 0, which sampler 'ddim' reproduces exactly whatever the levels"
    assert f"  note: {warning}" in out
    doc = (tmp_path / "o" / "explain.md").read_text()
    assert doc.count(warning) == 1 and doc.index(warning) < doc.index("## Optimal schedules")
    assert json.loads((tmp_path / "o" / "explain.json").read_text())["info"]["warning"].startswith(warning)


def test_a_tie_between_fitted_families_reads_as_a_tie() -> None:
    """break-test B: "best cosine (RMS 1.4e-16) ... runner-up tangent (RMS 0)" read as a contradiction; RMS values
    equal to 1e-12 are a tie (broken by the families' order) and the sentence says so."""
    from symsched.insight.explain import _fit_sentence
    from symsched.insight.fits import FamilyFit, HeuristicFit

    ab = np.array([0.2, 0.6, 0.9])

    def fam(name: str, rms: float) -> FamilyFit:
        return FamilyFit(family=name, params={}, log_snr=np.log(ab / (1 - ab)), alpha_bar=ab, rms=rms, max_abs=rms)

    tied = HeuristicFit(log_snr=np.log(ab / (1 - ab)), value=1.0, fits=[fam("cosine", 1.4e-16), fam("tangent", 0.0)],
                        endpoints="match", divergence="w2", sampler="ddim")
    text = _fit_sentence("w2", 3, tied)
    assert "**cosine**" in text and "tied with tangent" in text and "runner-up" not in text
    apart = HeuristicFit(log_snr=np.log(ab / (1 - ab)), value=1.0, fits=[fam("cosine", 0.01), fam("tangent", 0.2)],
                         endpoints="match", divergence="w2", sampler="ddim")
    assert "(runner-up: tangent, RMS 0.2)" in _fit_sentence("w2", 3, apart)


def test_the_console_summary_says_when_the_data_determine_no_shift(tmp_path, capsys) -> None:
    """break-test 49: on a flat spectrum every offset is marked ‡ in explain.md (no shift identified), yet the console
    printed 'optimum per doubling KL -19.28'; it now says 'not identified ‡' there too, and names reverse KL as the
    Markdown does (it printed KL-REVERSE). Companion: a power law's shift is printed as a number."""
    np.save(tmp_path / "flat.npy", np.ones((4, 4)))
    argv = ["explain", "--steps", "2,4", "--resolutions", "4,8", "--images", "off", "--jobs", "1", "--no-progress"]
    assert main([*argv, "--spectrum", str(tmp_path / "flat.npy"), "--divergences", "kl,kl-reverse",
                 "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    law = next(line for line in out.splitlines() if "resolution law" in line)
    assert "KL not identified ‡" in law and "reverse KL not identified ‡" in law and "KL-REVERSE" not in out
    assert "reverse KL K=" in out
    np.save(tmp_path / "pl.npy", symsched.spectra.power_law((8, 8), alpha=2.0))
    assert main([*argv, "--spectrum", str(tmp_path / "pl.npy"), "--divergences", "w2", "--out", str(tmp_path / "p"),
                 "--resolutions", "8,16"]) == 0
    law = next(line for line in capsys.readouterr().out.splitlines() if "resolution law" in line)
    assert re.search(r"W2 [+-]\d+\.\d\d;", law) and "‡" not in law, law


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_explain_leaves_out_as_it_was(tmp_path, capsys, monkeypatch, stop) -> None:
    """break-test 49: Ctrl-C while explain wrote its files left half of them in --out (fits, schedules, no
    explain.md). The files are staged next to --out and moved there at the end; an interrupt or error on the way
    leaves --out as it was, with no staging folder. Companion: a finished run adds its files and keeps the others."""
    import importlib

    ex = importlib.import_module("symsched.insight.explain")  # the module (the package exports its function)
    np.save(tmp_path / "S.npy", np.ones((4, 4)))
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["explain", "--spectrum", str(tmp_path / "S.npy"), "--steps", "2", "--divergences", "w2", "--resolutions",
            "none", "--images", "off", "--jobs", "1", "--no-progress", "--out", str(out)]
    real = ex._document

    def fail(*args, **kwargs):
        raise stop("stopped while writing")

    monkeypatch.setattr(ex, "_document", fail)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == (130 if stop is KeyboardInterrupt else 1), err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    monkeypatch.setattr(ex, "_document", real)
    assert main(argv) == 0
    names = {p.name for p in out.iterdir()}
    assert {"notes.txt", "explain.md", "explain.json", "fits_w2.md"} <= names
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ---- audit of 4 December -------------------------------------------------------------------


def test_explain_of_a_square_spectrum_without_a_power_law_skips_that_law(tmp_path, capsys) -> None:
    """An all-zero (or one-positive-mode) square spectrum has no power law to fit: explain stopped with exit 2
    ("fewer than two positive modes") under the default resolutions instead of skipping that section."""
    np.save(tmp_path / "Z.npy", np.zeros((8, 8)))
    code = main(["explain", "--spectrum", str(tmp_path / "Z.npy"), "--steps", "2,3", "--divergences", "w2",
                 "--images", "off", "--out", str(tmp_path / "o"), "--jobs", "1", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    doc = (tmp_path / "o" / "explain.md").read_text()
    assert "The power-law resolution law is skipped" in doc and "fewer than two positive modes" in doc
    assert "## The resolution law" not in doc


def test_explain_images_on_with_an_array_names_images(tmp_path) -> None:
    with pytest.raises(ValueError, match="images='on' needs spectrum to be an image folder"):
        symsched.insight.explain(np.ones((8, 8)), tmp_path, images="on", steps=[2], progress=False)


def test_report_section_uses_each_results_own_sampler_and_start(tmp_path, monkeypatch) -> None:
    """The section ran the per-step spectra as DDIM from white noise whatever the results were: an Euler result
    failed ("sampler 'ddim' has no setting 's_churn'") and an init='exact' one was drawn from the wrong start."""
    import importlib

    ex = importlib.import_module("symsched.insight.explain")  # (symsched.insight.explain is the function)
    S = symsched.spectra.power_law((8, 8), alpha=2.0)
    r = symsched.optimize_schedule(S, 4, sampler="euler", init="exact", divergence="w2", restarts=0,
                                   s_churn=0.5)
    seen = {}
    real = ex.intermediate_spectra

    def spy(*a, **kw):
        seen["out"] = real(*a, **kw)
        return seen["out"]

    monkeypatch.setattr(ex, "intermediate_spectra", spy)
    md, html = ex.report_section(S, {"w2": {4: r}}, tmp_path)
    expected = symsched.output_spectrum_ve(S, r.sigmas, sampler="euler", init="exact", s_churn=0.5)
    np.testing.assert_allclose(seen["out"].sample[-1], expected, rtol=1e-12)
    # Markdown escapes are HTML in the HTML section (they were printed literally)
    assert "\\|" not in html and "`" not in html and "<code>symsched explain</code>" in html
    assert "<th>max |Δlog-SNR|</th>" in html
    # (review: the sampler= keyword stays for earlier callers: the results' own is accepted, another refused)
    assert ex.report_section(S, {"w2": {4: r}}, tmp_path / "again", sampler="euler")[0] == md
    with pytest.raises(ValueError, match="sampler='ddim': the results were optimised for \\['euler'\\]"):
        ex.report_section(S, {"w2": {4: r}}, tmp_path / "other", sampler="ddim")


def test_degenerate_fits_read_as_such() -> None:
    """K = 2 with matched ends: every family passes through both levels; the sentence said "best fitted by
    **cosine** ()" with an empty parameter list."""
    from symsched.insight.explain import _fit_sentence

    S = symsched.spectra.power_law((8, 8), alpha=2.0)
    fit = symsched.insight.fit_heuristics(symsched.optimize_schedule(S, 2, divergence="w2", restarts=0), S)
    text = _fit_sentence("w2", 2, fit)
    assert "the matched end points are the whole schedule" in text and "()" not in text
    with pytest.raises(ValueError, match="n_families"):
        fit.plot(n_families="a")


@pytest.mark.parametrize("extra,console,markdown", [
    # flow, K = 3: pure noise and 2 finite levels, all matched: every family passes through them
    (["--flow"], "the matched end points are the whole schedule: nothing to tell the families apart",
     "nothing to tell the families apart"),
    # DDIM, K = 3: one interior level, which every one-parameter family fits exactly: a tie
    ([], ", tied with ", "(tied with "),
])
def test_explain_console_says_what_explain_md_says_of_the_fit(tmp_path, capsys, extra, console, markdown) -> None:
    """audit of 4 December: the console named a "best heuristic cosine (RMS 0)" where explain.md said that nothing
    tells the families apart, or that two are tied."""
    np.save(tmp_path / "S.npy", symsched.spectra.power_law((8, 8), alpha=2.0))
    code = main(["explain", "--spectrum", str(tmp_path / "S.npy"), "--steps", "2,3", "--divergences", "w2",
                 "--resolutions", "none", "--images", "off", "--jobs", "1", "--no-progress",
                 "--out", str(tmp_path / "o"), *extra])
    assert code == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  W2 K=3: "))
    assert console in line, line
    doc = (tmp_path / "o" / "explain.md").read_text()
    assert markdown in doc


def test_explain_says_on_the_console_which_sections_it_left_out(tmp_path, capsys) -> None:
    """break-test: --image-resolutions 3,100000 dropped the photographs' resolution law with exit 0 and nothing on
    the console (only explain.md said so), where --resolutions 100000 is refused."""
    code = main(["explain", "--out", str(tmp_path / "o"), "--steps", "3", "--divergences", "w2", "--resolutions",
                 "none", "--image-resolutions", "16,100000", "--jobs", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "  note: Image resolutions [100000] exceed the smallest photograph" in out
    assert "  note: Fewer than two image resolutions are available" in out
    assert "Fewer than two image resolutions are available" in (tmp_path / "o" / "explain.md").read_text()


def test_fit_sentences_print_the_tables_digits() -> None:
    """Audit of 5 December: the report's sentence said "max 1" where its table said 1.02 (2 against 3 significant
    digits), and "costs 1.2e+02 %"."""
    from symsched.insight.explain import _fit_sentence
    from symsched.insight.fits import FamilyFit, HeuristicFit

    ab = np.array([0.2, 0.6, 0.9, 0.95])
    best = FamilyFit(family="shift", params={}, log_snr=np.log(ab / (1 - ab)), alpha_bar=ab, rms=0.4734,
                     max_abs=1.0234, value=2.2, loss=1.2)
    other = FamilyFit(family="karras", params={}, log_snr=np.log(ab / (1 - ab)), alpha_bar=ab, rms=0.5851,
                      max_abs=1.2)
    fit = HeuristicFit(log_snr=np.log(ab / (1 - ab)), value=1.0, fits=[best, other], endpoints="match",
                       divergence="w2", sampler="ddim")
    text = _fit_sentence("w2", 4, fit)
    assert "RMS 0.473 / max 1.02 in log-SNR" in text and "costs 120 % of" in text and "RMS 0.585)" in text


def _no_optimisation(monkeypatch) -> None:
    import importlib

    def no_work(*a, **k):  # pragma: no cover - reached only if a check is missing
        raise AssertionError("an optimisation ran before the arguments were checked")

    monkeypatch.setattr(importlib.import_module("symsched.insight.explain"), "run_optimizations", no_work)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(resolutions=8), TypeError, r"^resolutions must be a sequence of positive integers, e\.g\. \[32, 64\] "
                                     r"\(got 8\)"),
    (dict(resolutions="32,64"), TypeError, r"^resolutions must be a sequence of positive integers.*\(got '32,64'\)"),
    (dict(resolutions=[64]), ValueError, r"^resolutions must hold at least two resolutions, or none"),
    (dict(image_resolutions="abc"), TypeError, r"^image_resolutions must be a sequence of positive integers"),
    (dict(image_resolutions=[16, 0]), ValueError, r"^image_resolutions entries must be a positive integer"),
    (dict(restarts=-1), ValueError, r"^restarts must be an integer >= 0"),
    (dict(seed=-1), ValueError, r"^seed must be an integer >= 0"),
    (dict(out=None), TypeError, r"^out must be a folder path \(str or os\.PathLike\), got NoneType"),
    (dict(out=""), ValueError, r"^out must be a folder path \(got an empty string\)"),
    (dict(out="FILE"), ValueError, r"^out '.*FILE': is a file, not a directory; explain writes a folder there"),
    (dict(out="FILE/sub"), ValueError, r"^out '.*FILE/sub': '.*FILE' is a file, not a directory"),
])
def test_explain_checks_every_argument_before_any_work(tmp_path, monkeypatch, kwargs, exc, match) -> None:
    """Audit of the insight package (F5): out was checked only after all the work (21-23 s), resolutions=8 gave
    "'int' object is not iterable" and resolutions="32,64" was iterated character by character."""
    from symsched.insight import explain

    (tmp_path / "FILE").write_text("x")
    if isinstance(kwargs.get("out"), str) and kwargs["out"]:
        kwargs = dict(kwargs, out=str(tmp_path / kwargs["out"]))
    kwargs = {"out": tmp_path / "o", **kwargs}
    _no_optimisation(monkeypatch)
    with pytest.raises(exc, match=match):
        explain(np.ones((8, 8)), steps=[3], progress=False, n_jobs=1, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]  # nothing written


def test_image_resolutions_beyond_the_photographs_name_image_resolutions(tmp_path, capsys, monkeypatch) -> None:
    """Audit of the insight package (F4): photographs of 40 x 48 with --images on said "--resolutions: resolutions
    must not exceed the smallest square crop", naming the power law's option instead of --image-resolutions."""
    from PIL import Image

    from symsched.insight import explain

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(folder / f"a{i}.png")
    _no_optimisation(monkeypatch)
    with pytest.raises(ValueError, match=r"^image_resolutions must not exceed the smallest square crop of the "
                                         r"photographs \(40 pixels; got 64\)"):
        explain(folder, tmp_path / "o", steps=[3], images="on", image_resolutions=[16, 64], progress=False, n_jobs=1)
    assert main(["explain", "--spectrum", str(folder), "--images", "on", "--out", str(tmp_path / "o"),
                 "--steps", "3", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["symsched explain: error: --image-resolutions: image_resolutions must not exceed the smallest "
                   "square crop of the photographs (40 pixels; got 128): enlarging invents no detail"]


def test_jobs_means_the_same_in_explain_and_report(tmp_path, capsys) -> None:
    """Audit of 5 December: `report --jobs 0` ran in-process and refused -2, `explain --jobs 0` was refused and -1
    meant every core. Both now read 0 = in this process, n = n workers, -m = one per core but m - 1 (joblib)."""
    import os

    from symsched.commands import _settings

    cores = os.cpu_count() or 1
    assert [_settings.jobs(v) for v in (0, 3, -1, -2)] == [0, 3, cores, max(1, cores - 1)]
    assert _settings.jobs(-cores - 5) == 1
    for command in ("explain", "report"):
        assert main([command, "--out", str(tmp_path / command), "--no-progress", "--jobs", "-4097"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--jobs must be 0 = everything in this process" in err[0], err
        assert "at most 4096 in size (got -4097)" in err[0]
    np.save(tmp_path / "S.npy", np.array([0.5, 1.0, 2.0]))
    assert main(["explain", "--spectrum", str(tmp_path / "S.npy"), "--steps", "3", "--divergences", "w2",
                 "--resolutions", "none", "--images", "off", "--out", str(tmp_path / "e0"), "--jobs", "0",
                 "--no-progress"]) == 0
    assert (tmp_path / "e0" / "explain.md").is_file()
