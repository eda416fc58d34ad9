"""Wrong types, extreme values and messages that name the right argument (insight families and scenes, read_image,
export's rtol, flux_mu, the result classes' accessors, report_section, the plots, sde at a subnormal beta)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from symsched import insight
from symsched._validate import MAX_MODES
from symsched.insight import families


def _starts(call, name: str, exc=ValueError) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(exc) as info:
            call()
    msg = str(info.value)
    assert type(info.value) is not AttributeError and msg.startswith(name), msg
    return msg


FAMILY_FUNCTIONS = ("cosine_offset", "tangent", "flow_shift", "polyexponential", "sigmoid")


@pytest.mark.parametrize("fam", FAMILY_FUNCTIONS)
@pytest.mark.parametrize("ends, name", [
    (dict(log_snr_min=-1500.0), "log_snr_min"), (dict(log_snr_min=-1e308), "log_snr_min"),
    (dict(log_snr_min=0.0, log_snr_max=1500.0), "log_snr_max"),
    (dict(log_snr_min=0.0, log_snr_max=1e308), "log_snr_max"),
])
@pytest.mark.parametrize("K", [1, 5])
def test_family_extreme_end_is_named(fam, ends, name, K):
    # tangent raised OverflowError (math.exp) or blamed sigma_min, a parameter it does not have; cosine_offset warned
    msg = _starts(lambda: getattr(families, fam)(K, **ends), name)
    assert "sigma" not in msg


def test_tangent_extreme_mode_variance_in_range():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for S in (1e-300, 1e300, 1.7e308):
            ab = families.tangent(7, mode_variance=S, log_snr_min=-30.0, log_snr_max=30.0)
            assert np.all(np.diff(ab) > 0)
    np.testing.assert_allclose(families.tangent(20), insight.families._sch.kl_optimal(20), rtol=1e-14)


@pytest.mark.parametrize("alpha", [1e300, -1e300])
def test_scene_power_law_extreme_alpha_blames_alpha(alpha):
    msg = _starts(lambda: insight.scene_power_law(64, alpha=alpha), "alpha")
    assert not msg.startswith("c ")


def test_scene_power_law_stack_within_max_modes():
    msg = _starts(lambda: insight.scene_power_law(2048, alpha=np.full(64, 2.0), c=np.ones(64)), "resolution")
    assert "MAX_MODES" in msg and str(MAX_MODES) in msg
    assert insight.scene_power_law(64, alpha=np.full(3, 2.0), c=np.ones(3)).shape == (64, 64, 3)


@pytest.mark.parametrize("path", [None, 123, 1.5])
def test_read_image_path_type(path):
    from symsched import spectra

    _starts(lambda: spectra.read_image(path), "path", TypeError)


@pytest.mark.parametrize("mode, exc", [(5, TypeError), ("XYZ", ValueError), ("I;16", ValueError)])
def test_read_image_mode_choices(tmp_path, mode, exc):
    from PIL import Image

    from symsched import spectra

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    msg = _starts(lambda: spectra.read_image(tmp_path / "a.png", mode=mode), "mode", exc)
    assert "'RGB'" in msg
    assert spectra.read_image(tmp_path / "a.png", mode="L").shape == (4, 4)


@pytest.mark.parametrize("rtol, exc", [("0.1", TypeError), (np.nan, ValueError), (-1.0, ValueError),
                                       (True, TypeError)])
@pytest.mark.parametrize("kw", [{}, {"scheduler": "DDIMScheduler"}, {"scheduler": "EulerDiscreteScheduler"}])
def test_to_diffusers_rtol_checked_on_every_path(rtol, exc, kw):
    from symsched import export

    _starts(lambda: export.to_diffusers([0.1, 0.5], rtol=rtol, **kw), "rtol", exc)


def test_to_diffusers_grid_checked_before_scheduler():
    from symsched import export

    _starts(lambda: export.to_diffusers([0.1, 0.5], grid="x", scheduler="DDIMScheduler"), "grid", TypeError)


@pytest.mark.parametrize("kw", [dict(max_shift=1e308, base_shift=-1e308), dict(max_shift=1e308),
                                dict(max_shift=-1e308, base_shift=1e308)])
def test_flux_mu_overflow_refused(kw):
    from symsched import schedules

    msg = _starts(lambda: schedules.flux_mu(1e308, **kw), "image_seq_len")
    assert "max_shift" in msg
    np.testing.assert_allclose(schedules.flux_mu([256, 4096]), [0.5, 1.15], rtol=1e-15)


def test_simple_diffusion_shift_extreme_ratio_is_finite():
    out = families.simple_diffusion_log_snr_shift(1e308, 1e-308)
    assert np.isfinite(out) and out == pytest.approx(-2.0 * (np.log(1e308) - np.log(1e-308)))


@pytest.fixture(scope="module")
def small_sweep():
    return insight.sweep([np.linspace(0.1, 1.0, 8)], steps=[3], progress=False, n_jobs=1)


@pytest.mark.parametrize("steps", [np.array([3]), "3", None, 2.5])
def test_sweep_accessors_steps_type(small_sweep, steps):
    exc = ValueError if steps == 2.5 else TypeError
    _starts(lambda: small_sweep.log_snr(steps), "steps", exc)
    _starts(lambda: small_sweep.result(small_sweep.values[0], steps), "steps", exc)
    assert small_sweep.log_snr(3).shape == (1, 3)


def test_heuristic_fit_getitem_names_families(small_sweep):
    fit = small_sweep.fit_heuristics().fits[(0, 3)]
    with pytest.raises(KeyError) as info:
        fit["nope"]
    assert str(info.value).startswith("family 'nope'") and "'karras'" in str(info.value)
    assert fit["karras"].family == "karras"


def test_resolution_law_accessors_name_the_argument():
    law = insight.resolution_law(lambda d: insight.scene_power_law(d), [8, 16], steps=3, divergences=("kl",),
                                 progress=False, n_jobs=1)
    for call in (law.equivalent_shift, law.first_level_pinned, law.undetermined_offsets, law.first_level_name):
        _starts(lambda: call("w2"), "divergence")
        _starts(lambda: call(None), "divergence", TypeError)
    _starts(lambda: law.rule_slope("nope"), "rule")
    assert np.isfinite(law.rule_slope("Flux mu"))


@pytest.mark.parametrize("results, exc", [({}, ValueError), (None, TypeError), ({"kl": {3: 5}}, TypeError),
                                          ({"kl": {}}, ValueError), ({"nope": {}}, ValueError), ({"kl": 5}, TypeError)])
def test_report_section_results_checked(tmp_path, results, exc):
    _starts(lambda: insight.report_section(np.linspace(0.1, 1.0, 8), results, tmp_path), "results", exc)


def test_report_section_out_type(small_sweep):
    r = small_sweep.result(small_sweep.values[0], 3)
    _starts(lambda: insight.report_section(np.linspace(0.1, 1.0, 8), {"kl": {3: r}}, None), "out", TypeError)


@pytest.mark.parametrize("fn, name", [("plot_sweep", "result"), ("plot_fits", "fit"), ("plot_resolution_law", "law"),
                                      ("plot_intermediate", "result"), ("band_profile", "result")])
@pytest.mark.parametrize("bad", ["x", 5, None])
def test_insight_plots_wrong_type(fn, name, bad):
    from symsched.insight import plots as ip

    _starts(lambda: getattr(ip, fn)(bad), name, TypeError)


def test_plots_wrong_types():
    from symsched import plots

    S = np.linspace(0.1, 1.0, 8)
    for call in (lambda: plots.plot_schedules(5), lambda: plots.plot_output_psd(S, [0.1, 0.5]),
                 lambda: plots.plot_frequency_error(S, "ab")):
        _starts(call, "schedules", TypeError)
    for call in (lambda: plots.plot_schedules({"a": [0.1, 0.5]}, title=5),
                 lambda: plots.plot_output_psd(S, {"a": [0.1, 0.5]}, title=3),
                 lambda: plots.plot_frequency_error(S, {"a": [0.1, 0.5]}, title=b"x")):
        _starts(call, "title", TypeError)


@pytest.mark.parametrize("beta", [1e-320, 5e-309])
def test_sde_subnormal_beta_refused_without_warning(beta):
    from symsched import sde

    S = np.linspace(0.1, 1.0, 16)
    kw = dict(beta_min=beta, beta_max=beta)
    for call in (lambda: sde.continuous_output_spectrum(S, "sde", **kw), lambda: sde.output_spectrum(S, "ei", 5, **kw),
                 lambda: sde.error_table(S, sizes=(5,), eps_values=(0.0,), **kw)):
        _starts(call, "beta_min, beta_max")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(np.isfinite(sde.continuous_output_spectrum(S, "sde", beta_min=beta, beta_max=1.0)))
        assert np.all(np.isfinite(sde.output_spectrum(S, "ei", 5, beta_min=beta, beta_max=1.0)))


def test_sde_table_cli_subnormal_beta_one_line(tmp_path):
    """As a user runs it (python -m symsched): the RuntimeWarning of the kernel printed before the error line."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    np.save(tmp_path / "S.npy", np.linspace(0.1, 1.0, 16))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-m", "symsched", "sde-table", "--spectrum", "S.npy", "--nfe", "10",
                          "--beta-min", "1e-320", "--beta-max", "1e-320", "--out", "t.tex", "--no-progress"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "--beta-min" in lines[0], out.stderr


def test_every_public_numeric_insight_function_resets_the_error_state():
    """As test_schedules' check of the numeric modules, for symsched.insight (simple_diffusion_log_snr_shift,
    fit_power_law, image_spectra, schedule_objective, explain, the five families and scene_power_law were bare)."""
    import importlib
    import inspect

    not_numeric = {"family_names", "get_family", "source_images", "plot_sweep", "plot_fits", "plot_resolution_law",
                   "plot_intermediate", "band_profile"}
    missing = []
    for name in ("families", "fits", "sweep", "resolution", "intermediate", "explain"):
        m = importlib.import_module(f"symsched.insight.{name}")
        missing += [f"{name}.{n}" for n in m.__all__ if inspect.isfunction(getattr(m, n)) and n not in not_numeric
                    and not hasattr(getattr(m, n), "__wrapped__")]
    missing += [f"families.{n}" for n in FAMILY_FUNCTIONS if not hasattr(getattr(families, n), "__wrapped__")]
    assert missing == []


@pytest.mark.parametrize("source", [None, 5])
def test_image_sources_wrong_type(source):
    from symsched import spectra
    from symsched.insight import resolution

    _starts(lambda: spectra.load_spectrum(source), "source", TypeError)
    _starts(lambda: resolution.source_images(source), "source", TypeError)


def _float_count_calls():
    import symsched
    from symsched import montecarlo as mc
    from symsched import probe, schedules as S, sde as D, spectra as P

    sp4 = np.array([4.0, 1.0, 0.25, 0.01])
    return [
        ("K", lambda n: S.karras(n)),
        ("num_steps", lambda n: S.timesteps(n)),
        ("num_train_timesteps", lambda n: S.training_grid(num_train_timesteps=n)),
        ("T", lambda n: S.linear_betas(n)),
        ("K", lambda n: S.uniform_flow_t(n)),
        ("num", lambda n: S.loglinear_interp([1.0, 0.5], n)),
        ("height", lambda n: S.flux_image_seq_len(n * 100, 1024)),
        ("steps", lambda n: S.flow_schedule("flow-sd3", n)),
        ("shape entries", lambda n: P.fft_frequencies(n)),
        ("shape entries", lambda n: P.power_law((n, 8))),
        ("n_points", lambda n: D.output_spectrum(sp4, "em", n)),
        ("n_evals", lambda n: D.n_points_for_nfe("em", n)),
        ("sizes", lambda n: D.error_table(sp4, sizes=[n], eps_values=[0.0], schemes=["em"])),
        ("n_samples", lambda n: mc.gaussian_field(P.power_law((4, 4)), n)),
        ("steps", lambda n: probe.default_schedules(sp4, n, names=("karras",))),
        ("steps", lambda n: symsched.optimize_schedule(sp4, n, restarts=0, maxiter=5)),
        ("resolution", lambda n: insight.scene_power_law(n)),
        ("steps", lambda n: insight.sweep(sp4, steps=[n], divergence="w2", n_jobs=1, restarts=0)),
    ]


@pytest.mark.parametrize("i", range(18))
def test_a_whole_number_float_is_no_count(i):
    """Audit 3b D1: karras(10.0), timesteps(10.0), training_grid(num_train_timesteps=10.0), fft_frequencies(8.0) were
    accepted while output_spectrum(..., 10.0) raised TypeError. A count is an integer (a Python or NumPy integer),
    as range(10.0) and np.linspace(0, 1, 10.0) say: a float, 10.0 too, is a TypeError naming the argument."""
    name, call = _float_count_calls()[i]
    msg = _starts(lambda: call(10.0), name, TypeError)
    assert "not a float" in msg or "got 10.0" in msg, msg
    call(np.int64(10))  # a NumPy integer is a count


def test_tensors_that_require_grad_are_read_as_their_values() -> None:
    """Audit of 6 December: an autograd tensor (a torch Parameter, or ``requires_grad_()``) as levels, sigmas or a
    spectrum gave torch's raw RuntimeError ("Can't call numpy() on Tensor that requires grad") from every array
    argument, while export's ``grid=`` detached it. Each is now read as its values, as a plain tensor is."""
    torch = pytest.importorskip("torch")
    import symsched
    from symsched import export, schedules

    levels = [0.01, 0.5, 0.9]
    p = torch.nn.Parameter(torch.tensor(levels, dtype=torch.float64))
    np.testing.assert_array_equal(symsched.output_spectrum([1.0], p), symsched.output_spectrum([1.0], levels))
    np.testing.assert_array_equal(export.to_k_diffusion_sigmas(p), export.to_k_diffusion_sigmas(levels))
    np.testing.assert_array_equal(schedules.alpha_bar_to_sigmas(p), schedules.alpha_bar_to_sigmas(levels))
    sig = torch.tensor([10.0, 1.0, 0.1], dtype=torch.float64, requires_grad=True)
    assert symsched.output_spectrum_ve([1.0], sig, sampler="euler")[0] == \
        symsched.output_spectrum_ve([1.0], [10.0, 1.0, 0.1], sampler="euler")[0]
    S = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert symsched.optimize_schedule(S, 3, restarts=0).value == symsched.optimize_schedule([1.0, 2.0], 3,
                                                                                           restarts=0).value
    with pytest.raises(ValueError, match="^alpha_bar must be an array of real numbers"):
        symsched.output_spectrum([1.0], torch.tensor([0.1, 0.5], dtype=torch.bfloat16))  # (NumPy has no bfloat16)


def test_an_array_like_whose_conversion_raises_runtime_error_is_named() -> None:
    """Any object whose ``__array__`` raises RuntimeError (as torch's did) is a ValueError naming the argument."""
    import symsched

    class Bad:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("cannot convert")

    with pytest.raises(ValueError, match=r"^spectrum must be an array of real numbers \(cannot convert\)"):
        symsched.output_spectrum(Bad(), [0.1, 0.5])


def test_boolean_switches_of_exports_tables_and_verdicts_take_only_booleans() -> None:
    """New-user pass of 6 December: to_comfyui_sigmas(ab, flow="no") exported flow times ("no" is truthy),
    SweepResult.to_markdown/to_latex(levels=...) and PsdCheck.verdict(short=...) took "no", None, 1.5 and [] as
    switches. Each is an ArgumentTypeError naming the switch now; True/False (and NumPy booleans) still work."""
    import symsched
    from symsched import export
    from symsched._validate import ArgumentTypeError

    ab = np.array([0.05, 0.5])
    assert export.to_comfyui_sigmas(ab, flow=np.bool_(False)) == export.to_comfyui_sigmas(ab)
    res = symsched.sweep([np.logspace(-2, 1, 8)], [2])
    check = symsched.montecarlo.psd_check(np.ones((8, 8)), np.ones((8, 8)), 50)
    for bad in ("no", None, 1.5, [], 0):
        with pytest.raises(ArgumentTypeError, match="^flow must be True or False"):
            export.to_comfyui_sigmas(ab, flow=bad)
        for method in (res.to_markdown, res.to_latex):
            with pytest.raises(ArgumentTypeError, match="^levels must be True or False"):
                method(levels=bad)
        with pytest.raises(ArgumentTypeError, match="^short must be True or False"):
            check.verdict(short=bad)
    assert check.verdict(short=True) in ("PASS", "FAIL", "INCONCLUSIVE")
