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


# ---------------------------------------------------------------------------------------------
# audit 7b / 7c: options that must reach the computation
# ---------------------------------------------------------------------------------------------
def _kl_line(out: str) -> float:
    return float(next(line for line in out.splitlines() if line.startswith("KL(data || generated)")).split("=")[1])


def test_transfer_init_reaches_the_sigmas_path(tmp_path, capsys) -> None:
    """Audit fault 7b: `init=args.init` -> `init="white"` on the --sigmas path survived the suite. --init white and
    --init exact give the KL and output PSD the API predicts for each start, and they differ."""
    from symsched import kl_divergence, output_spectrum_ve

    S = np.array([4.0, 1.5, 0.5, 0.1, 0.5, 1.5])
    sig = np.array([3.0, 1.0, 0.3, 0.05])
    np.save(tmp_path / "S.npy", S)
    np.save(tmp_path / "sig.npy", sig)
    kl = {}
    for init in ("white", "exact"):
        out = tmp_path / f"P_{init}.npy"
        assert main(["transfer", "--spectrum", str(tmp_path / "S.npy"), "--sigmas", str(tmp_path / "sig.npy"),
                     "--init", init, "--out", str(out)]) == 0
        kl[init] = _kl_line(capsys.readouterr().out)
        P = output_spectrum_ve(S, sig, sampler="euler", init=init)
        np.testing.assert_allclose(np.load(out), P, rtol=1e-14)
        assert kl[init] == pytest.approx(float(kl_divergence(S, P)), rel=1e-9)
    assert abs(kl["white"] - kl["exact"]) > 1e-3 * abs(kl["exact"])


def test_validate_seed_reaches_the_sampler(capsys) -> None:
    """Audit fault 7c: `seed=args.seed` -> `seed=0` survived the suite. The statistics printed for --seed 7 are
    those of the API's run with seed 7 (iter_sample -> empirical_psd -> psd_check), not seed 0's."""
    from symsched.commands.validate import default_schedule, power_law_spectrum
    from symsched.montecarlo import empirical_psd, iter_sample, psd_check

    S, ab = power_law_spectrum((8, 8)), default_schedule(5)
    chi2 = {}
    for seed in (0, 7):
        assert main(["validate", "--steps", "5", "--samples", "300", "--shape", "8x8", "--seed", str(seed),
                     "--no-progress"]) in (0, 1)
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("sum of z^2 ="))
        chi2[seed] = float(line.split("=")[1].split()[0])
        psd = empirical_psd(iter_sample(S, ab, n_samples=300, seed=seed, sampler="ddim", progress=False))
        P = symsched.output_spectrum(S, ab, sampler="ddim")
        assert chi2[seed] == pytest.approx(psd_check(psd, P, 300).chi2, abs=0.051)  # printed with 1 decimal
    assert chi2[0] != chi2[7]
