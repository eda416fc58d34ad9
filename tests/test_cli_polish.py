"""A new user's pass over the command line (audit of 6 December): negative inf/nan values taken for options, help
that split a value in the middle of a word, inapplicable options run without a word, a suffix-less .npy written by
one command and refused by the next, and latex's --option messages unlike the other commands'."""

from __future__ import annotations

import re

import numpy as np
import pytest

from symsched.cli import build_parser, main


def _run(argv: list[str]) -> int:
    """main(argv)'s exit code, also where argparse exits (a value its option's type refuses)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _error_line(capsys, code: int, command: str) -> str:
    """The one error line of a usage error (exit code 2, no traceback, nothing after it)."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"symsched {command}: error: "), err
    return lines[0]


@pytest.fixture()
def files(tmp_path):
    np.save(tmp_path / "S.npy", np.logspace(-3, 2, 64))
    np.save(tmp_path / "H.npy", np.ones(8))  # Hermitian on an 8-point FFT grid (validate simulates it)
    np.save(tmp_path / "A.npy", np.array([0.05, 0.3, 0.7, 0.95]))
    return tmp_path


# --- 1. -inf, -nan, -Infinity after an option are its value -------------------------------------------------------


@pytest.mark.parametrize("argv, option, needle", [
    (["transfer", "--spectrum", "{S}", "--alpha-bar", "{A}", "--eta", "-inf"], "--eta", "eta must lie in [0, 1]"),
    (["transfer", "--spectrum", "{S}", "--alpha-bar", "{A}", "--eta", "-nan"], "--eta", "eta must lie in [0, 1]"),
    (["transfer", "--spectrum", "{S}", "--alpha-bar", "{A}", "--eta", "-Infinity"], "--eta", "(got -inf)"),
    (["transfer", "--spectrum", "{S}", "--alpha-bar", "{A}", "--eta", "-INF"], "--eta", "(got -inf)"),
    (["optimize", "--spectrum", "{S}", "--out", "{out}.json", "--endpoints", "-inf,none"], "--endpoints",
     "endpoints[0]"),
    (["optimize", "--spectrum", "{S}", "--out", "{out}.json", "--endpoints", "-NaN,none"], "--endpoints",
     "endpoints[0]"),
    (["optimize", "--spectrum", "{S}", "--out", "{out}.json", "--max-step-ratio", "-inf"], "--max-step-ratio",
     "max_step_ratio"),
    (["sde-table", "--spectrum", "{S}", "--eps", "-inf"], "--eps", "finite numbers (got '-inf')"),
    (["sde-table", "--spectrum", "{S}", "--eps", "-infinity,0.1"], "--eps", "finite numbers (got '-infinity,0.1')"),
])
def test_negative_inf_and_nan_are_the_options_value(argv, option, needle, files, capsys) -> None:
    """``--eta -inf`` said "argument --eta: expected one argument": argparse took -inf for an option (only ``-\\d``
    and ``-.\\d`` were read as values), so the option's own rule was never named."""
    subs = {"{S}": str(files / "S.npy"), "{A}": str(files / "A.npy")}
    argv = [subs.get(a, a.replace("{out}", str(files / "o"))) for a in argv]
    line = _error_line(capsys, _run(argv), argv[0])
    assert "expected one argument" not in line and option in line and needle in line, line


@pytest.mark.parametrize("word", ["-inf", "-nan", "-Infinity", "-INF,none", "-nan,0.5", "-1e-3", "-.5", "-5,10"])
def test_negative_number_matcher_reads_values(word) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    assert sub.choices["transfer"]._negative_number_matcher.match(word), word


@pytest.mark.parametrize("word", ["--eta", "-h", "-info", "-nanx", "-infinityy", "-i"])
def test_negative_number_matcher_leaves_options_and_words(word) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    assert not sub.choices["transfer"]._negative_number_matcher.match(word), word


# --- 2. --help never splits a word ----------------------------------------------------------------------------------

_COMMANDS = ("", "transfer", "validate", "optimize", "report", "explain", "probe", "latex", "sde-table", "train-demo")


def _help(command: str, columns: int, monkeypatch, capsys) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"] if command else ["--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _pieces(word: str) -> set[str]:
    """Every run of consecutive comma-ended pieces of ``word``: where a long comma list may break."""
    parts = re.split(r"(?<=,)", word)
    return {"".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}


@pytest.mark.parametrize("command", _COMMANDS)
@pytest.mark.parametrize("columns", [50, 60, 80])
def test_help_never_splits_a_word(command, columns, monkeypatch, capsys) -> None:
    """``probe --help`` at 80 columns showed ``(default optimised-w2,optimis`` / ``ed-kl,...``, at 50 columns
    ``final_sigmas_type=si`` / ``gma_min`` and ``algorithm_t`` / ``ype=...``: every word of the narrow help is a word
    of the unwrapped help, or a run of a comma list's items (a long list may break after a comma)."""
    words = set(_help(command, 100_000, monkeypatch, capsys).split())
    allowed = set().union(*(_pieces(w) for w in words if "," in w))
    split = [w for w in _help(command, columns, monkeypatch, capsys).split() if w not in words and w not in allowed]
    assert not split, split


# --- 3. inapplicable or meaningless options are refused --------------------------------------------------------------


def test_validate_refuses_shape_with_a_spectrum(files, capsys) -> None:
    """``--shape`` shapes the built-in power law only: with --spectrum it was silently ignored (where --exponent is
    refused)."""
    code = main(["validate", "--spectrum", str(files / "H.npy"), "--shape", "8x8", "--steps", "2", "--samples", "20",
                 "--no-progress"])
    line = _error_line(capsys, code, "validate")
    assert "--shape 8x8 applies only to the built-in power law" in line and "--spectrum" in line, line


def test_validate_runs_a_spectrum_without_shape(files, capsys) -> None:
    code = main(["validate", "--spectrum", str(files / "H.npy"), "--steps", "2", "--samples", "20", "--no-progress"])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    assert " on 8 (" in captured.out


_EXPLAIN = ["explain", "--steps", "2", "--divergences", "w2", "--resolutions", "none", "--jobs", "0", "--no-progress"]


@pytest.mark.parametrize("value, needle", [
    ("32", "--image-resolutions: image_resolutions must hold at least two resolutions (got [32])"),
    ("1,2", "--image-resolutions: image_resolutions must each be at least 8 pixels (got [1, 2])"),
    ("7,16", "--image-resolutions: image_resolutions must each be at least 8 pixels (got [7, 16])"),
])
def test_explain_refuses_image_resolutions_it_cannot_use(value, needle, tmp_path, capsys) -> None:
    """``--image-resolutions 32`` ran with a note (``--resolutions 32`` is refused) and ``1,2`` resized the photographs
    to 1 x 1 and 2 x 2 pixels. The rule is explain's own (the API refuses them alike, below), named as the option."""
    code = main([*_EXPLAIN, "--out", str(tmp_path / "o"), "--image-resolutions", value])
    line = _error_line(capsys, code, "explain")
    assert needle in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value, needle", [
    ([32], r"^image_resolutions must hold at least two resolutions \(got \[32\]\)"),
    ([7, 16], r"^image_resolutions must each be at least 8 pixels \(got \[7, 16\]\)"),
])
def test_explain_api_refuses_the_same_image_resolutions(value, needle, tmp_path) -> None:
    """The API, with images="off" too (checked whatever images is), before any work: no output folder."""
    from symsched.insight import explain

    with pytest.raises(ValueError, match=needle):
        explain("builtin:natural-patches", tmp_path / "o", steps=[2], images="off", image_resolutions=value,
                progress=False, n_jobs=1)
    assert not (tmp_path / "o").exists()


# --- 4. a suffix-less .npy is read as --alpha-bar reads one ---------------------------------------------------------


def test_transfer_out_without_suffix_is_read_back_as_spectrum(files, capsys) -> None:
    """``transfer --out P`` wrote a .npy named ``P`` that ``--spectrum P`` refused ("neither a folder nor a .npy
    file"), while ``--alpha-bar`` reads a suffix-less .npy."""
    base = ["transfer", "--alpha-bar", str(files / "A.npy")]
    assert main([*base, "--spectrum", str(files / "S.npy"), "--out", str(files / "P")]) == 0
    np.save(files / "P2.npy", np.load(files / "P", allow_pickle=False))
    capsys.readouterr()
    assert main([*base, "--spectrum", str(files / "P")]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert main([*base, "--spectrum", str(files / "P2.npy")]) == 0
    assert capsys.readouterr().out == out  # the same spectrum as under a .npy name


@pytest.mark.parametrize("command", ["transfer", "sde-table", "validate", "optimize", "explain"])
def test_every_spectrum_option_reads_a_suffix_less_npy(command, files, capsys) -> None:
    (files / "H").write_bytes((files / "H.npy").read_bytes())
    extra = {"transfer": ["--alpha-bar", str(files / "A.npy")],
             "sde-table": ["--nfe", "4", "--eps", "0", "--out", str(files / "t.tex")],
             "validate": ["--steps", "2", "--samples", "20", "--no-progress"],
             "optimize": ["--steps", "2", "--restarts", "0", "--no-progress", "--out", str(files / "o.json")],
             "explain": [*_EXPLAIN[1:], "--images", "off", "--out", str(files / "e")]}[command]
    code = main([command, "--spectrum", str(files / "H"), *extra])
    assert code in (0, 1), capsys.readouterr().err  # (validate: 1 = rejected, a verdict, not a usage error)


def test_a_suffix_less_file_that_is_no_npy_is_still_refused(files, capsys) -> None:
    (files / "notes").write_text("S = 1, 2, 3\n")
    code = main(["transfer", "--alpha-bar", str(files / "A.npy"), "--spectrum", str(files / "notes")])
    line = _error_line(capsys, code, "transfer")
    assert "--spectrum" in line and "neither a folder nor a .npy file" in line, line


def test_a_suffix_less_pickle_is_refused_unread(files, capsys) -> None:
    np.save(files / "obj.npy", np.array([1.0, None], dtype=object), allow_pickle=True)
    (files / "obj").write_bytes((files / "obj.npy").read_bytes())
    code = main(["transfer", "--alpha-bar", str(files / "A.npy"), "--spectrum", str(files / "obj")])
    line = _error_line(capsys, code, "transfer")
    assert "--spectrum" in line and "symsched never unpickles" in line, line


# --- 5. latex names --option as the other commands do ---------------------------------------------------------------


@pytest.mark.parametrize("argv, needle", [
    (["--sampler", "lms", "--option", "order=7"], "--option order: order must be one of 1, 2, 3, 4"),
    (["--sampler", "ddim", "--option", "foo=0.5"], "--option foo: sampler 'ddim' has no option 'foo'"),
    # a numeric setting is a symbol of the formulas (latex --help): said so, not "ddim has no option 'eta'"
    (["--sampler", "ddim", "--option", "eta=0.5"], "--option eta=...: eta is a numeric setting of sampler 'ddim'"),
    (["--sampler", "dpmpp_sde", "--option", "s_noise=1.1"], "structural settings (of 'dpmpp_sde': ('noise_sampler',))"),
])
def test_latex_option_errors_name_option(argv, needle, tmp_path, capsys) -> None:
    """latex printed ``error: order must be one of ...`` without the ``--option order:`` that transfer, optimize and
    report print, and blamed ``--sampler`` for a setting the sampler lacks."""
    line = _error_line(capsys, main(["latex", *argv, "--out", str(tmp_path / "d")]), "latex")
    assert needle in line and "--sampler:" not in line, line
    assert not (tmp_path / "d").exists()
