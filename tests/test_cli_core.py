"""`symsched transfer` and `symsched latex` end to end."""

from __future__ import annotations

import numpy as np
import pytest

import symsched
from symsched.cli import main


def test_transfer_prints_divergences_and_writes_psd(tmp_path, capsys) -> None:
    spec = np.abs(np.random.default_rng(0).normal(size=(16, 16))) + 0.01
    ab = np.array([0.02, 0.3, 0.8, 0.97])
    np.save(tmp_path / "S.npy", spec)
    np.save(tmp_path / "A.npy", ab)
    code = main([
        "transfer", "--spectrum", str(tmp_path / "S.npy"), "--alpha-bar", str(tmp_path / "A.npy"),
        "--sampler", "ddim", "--eta", "0.5", "--init", "exact", "--out", str(tmp_path / "P.npy"),
    ])
    assert code == 0
    out = capsys.readouterr().out
    P = np.load(tmp_path / "P.npy")
    expected = symsched.output_spectrum(spec, ab, sampler="ddim", eta=0.5, init="exact")
    np.testing.assert_array_equal(P, expected)
    assert f"{symsched.kl_divergence(spec, expected):.10g}" in out
    assert f"{symsched.w2_distance(expected, spec):.10g}" in out


def test_transfer_divergences_are_the_ratio_form_where_the_output_underflows(tmp_path, capsys) -> None:
    """break-test: S = [0, 1e-300, 1, 1e300] from alpha_bar = 0 printed KL = inf both ways (kl_divergence of a P that
    underflowed) while divergence_and_grad gives 1.11e299 and 687.67: the command now prints the API's values."""
    S, ab = np.array([0.0, 1e-300, 1.0, 1e300]), np.array([0.0, 0.1, 0.5, 0.9])
    np.save(tmp_path / "S.npy", S)
    np.save(tmp_path / "A.npy", ab)
    assert main(["transfer", "--spectrum", str(tmp_path / "S.npy"), "--alpha-bar", str(tmp_path / "A.npy")]) == 0
    out = capsys.readouterr().out
    for div, label in (("kl", "KL(data || generated)"), ("kl-reverse", "KL(generated || data)")):
        J = symsched.divergence_and_grad(S, ab, divergence=div)[0]
        assert np.isfinite(J) and f"{label} = {J:.10g}" in out, out
    P = symsched.output_spectrum(S, ab)
    assert symsched.kl_divergence(S, P) == np.inf  # companion: what the command printed before


def test_transfer_passes_sampler_options_by_their_library_names(tmp_path) -> None:
    spec = np.abs(np.random.default_rng(1).normal(size=(8, 8))) + 0.01
    ab = np.array([0.02, 0.3, 0.8, 0.97])
    np.save(tmp_path / "S.npy", spec)
    np.save(tmp_path / "A.npy", ab)
    assert main(["transfer", "--spectrum", str(tmp_path / "S.npy"), "--alpha-bar", str(tmp_path / "A.npy"),
                 "--sampler", "dpmsolver_multistep", "--option", "solver_order=3", "--option",
                 "lower_order_final=false", "--out", str(tmp_path / "P.npy")]) == 0
    P = np.load(tmp_path / "P.npy")
    kw = dict(solver_order=3, lower_order_final=False)
    np.testing.assert_array_equal(P, symsched.output_spectrum(spec, ab, sampler="dpmsolver_multistep", **kw))
    assert not np.allclose(P, symsched.output_spectrum(spec, ab, sampler="dpmsolver_multistep"), rtol=1e-6)


def test_transfer_reports_bad_input_with_exit_code_2(tmp_path, capsys) -> None:
    np.save(tmp_path / "S.npy", np.array([1.0, -2.0]))
    np.save(tmp_path / "A.npy", np.array([0.3, 0.2]))
    code = main(["transfer", "--spectrum", str(tmp_path / "S.npy"), "--alpha-bar", str(tmp_path / "A.npy")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--spectrum" in err and "must be non-negative" in err


def test_latex_command_writes_one_sampler(tmp_path) -> None:
    from symsched.symbolic.latex import render_all

    assert main(["latex", "--sampler", "heun", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heun.tex", "symsched.tex"]
    for name, text in render_all("heun").items():  # what it writes is the derivation, not a stub
        assert (tmp_path / name).read_text(encoding="utf-8") == text
    assert "\\input{heun}" in (tmp_path / "symsched.tex").read_text() and "Heun" in (tmp_path / "heun.tex").read_text()


def test_help_lists_commands(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "latex" in out and "transfer" in out
