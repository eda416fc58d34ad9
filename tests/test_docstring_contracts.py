"""What the public docstrings promise, held to (audit of 6 December: each case below did otherwise).

Every expected value is written out here or computed by an independent formula in the test, never by the code
under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import symsched
from symsched import montecarlo as mc
from symsched import probe, schedules
from symsched.insight import resolution_law, scene_power_law


# --- conversions: "ndarray, same shape" holds for a number too (a 0-d array, as the other conversions) ------------
@pytest.mark.parametrize("fn,x,expected", [
    (schedules.alpha_bar_to_sigmas, 0.2, 2.0),                      # sqrt(0.8 / 0.2)
    (schedules.alpha_bar_to_flow_t, 0.5, 0.5),                      # sqrt(.5) / (sqrt(.5) + sqrt(.5))
    (schedules.flow_t_to_sigmas, 0.75, 3.0),                        # t / (1 - t)
    (schedules.shift_to_log_snr, 2.0, -2.0 * math.log(2.0)),
    (schedules.flux_mu, 4096, 1.15),                                # diffusers calculate_shift at max_seq_len
    (lambda t: schedules.sd3_time_shift(t, 3.0), 0.5, 0.75),        # 3 t / (1 + 2 t)
    (schedules.alpha_bar_to_log_snr, 0.5, 0.0),
])
def test_a_number_gives_a_0d_array(fn, x, expected) -> None:
    out = fn(x)
    assert type(out) is np.ndarray and out.shape == () and out.dtype == np.float64
    assert float(out) == pytest.approx(expected, rel=1e-15, abs=0)
    assert fn([x]).shape == (1,)


# --- argument checks the docstrings promise --------------------------------------------------------------------
def test_save_figure_checks_dpi(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from symsched.plots import save_figure

    fig = plt.figure()
    try:
        with pytest.raises(TypeError, match=r"^dpi must be a real number"):
            save_figure(fig, tmp_path / "a.png", dpi="a")
        for bad in (float("nan"), 0, -5):
            with pytest.raises(ValueError, match=r"^dpi must be"):
                save_figure(fig, tmp_path / "a.png", dpi=bad)
        assert not (tmp_path / "a.png").exists()
        assert save_figure(fig, tmp_path / "b.png", dpi=20).stat().st_size > 0
    finally:
        plt.close(fig)


@pytest.mark.parametrize("value", [np.ones(3), 1.0, np.ones((4, 2, 3))])
def test_mode_psd_names_a_non_matrix_argument(value) -> None:
    with pytest.raises(ValueError, match=r"^cross_hat must have shape \(\*grid, C, C\)"):
        mc.mode_psd(value, value)


def test_mode_psd_of_a_stack_of_matrices() -> None:
    rng = np.random.default_rng(3)
    A = rng.standard_normal((5, 2, 2))
    A = A @ A.transpose(0, 2, 1)
    V = np.linalg.eigh(A)[1]
    out = mc.mode_psd(A, V)
    np.testing.assert_allclose(out, np.linalg.eigvalsh(A), rtol=1e-12, atol=1e-12)


def test_psd_confidence_refuses_an_empty_psd() -> None:
    with pytest.raises(ValueError, match=r"^psd_hat must not be empty"):
        mc.psd_confidence([], 10)


@pytest.mark.parametrize("bad", [[0.5, 0.4], np.array([0.5])])
def test_wiener_denoiser_names_a_level_that_is_not_a_number(bad) -> None:
    with pytest.raises(TypeError, match=r"^alpha_bar must be a real number"):
        mc.wiener_denoiser(np.ones(4), np.ones(4), bad)


def test_wiener_denoiser_takes_a_0d_level() -> None:
    x = np.ones((1, 4))
    S = np.full(4, 3.0)
    out = mc.wiener_denoiser(x, S, np.array(0.5), output="x0")
    np.testing.assert_allclose(out, math.sqrt(0.5) * 3.0 / (0.5 * 3.0 + 0.5), rtol=1e-14)  # sqrt(ab) S / lam


def test_transfer_function_says_it_takes_no_init() -> None:
    for call in (lambda: symsched.transfer_function([1.0], [0.3, 0.9], init="white"),
                 lambda: symsched.transfer_function_ve([1.0], [3.0, 1.0], init="white"),
                 lambda: symsched.transfer_function_mp([1.0], [0.3, 0.9], init="white")):
        with pytest.raises(ValueError, match=r"^init is not a sampler setting: .* takes no init$"):
            call()
    with pytest.raises(ValueError, match=r"has no setting 'bogus'"):  # other unknown settings: as before
        symsched.transfer_function([1.0], [0.3, 0.9], bogus=1)


def test_denoiser_checks_its_fields_when_built() -> None:
    with pytest.raises(TypeError, match=r"^fn must be a callable"):
        probe.Denoiser(5, "epsilon", shape=(4,))
    with pytest.raises(ValueError, match=r"^prediction must be one of"):
        probe.Denoiser(lambda x, a: x, "noise")
    with pytest.raises(TypeError, match=r"^name must be a string"):
        probe.Denoiser(lambda x, a: x, "epsilon", name=5)
    with pytest.raises(ValueError, match=r"shape"):
        probe.Denoiser(lambda x, a: x, "epsilon", shape=(0,))
    d = probe.Denoiser(lambda x, a: x, "x0", shape=[4])
    assert d.prediction == "sample" and d.shape == (4,)  # the documented aliases, stored as the names


def test_torch_denoiser_name_must_be_a_string() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"^name must be a string"):
        probe.torch_denoiser(torch.nn.Identity(), schedules.training_grid(), name=5)


def test_scene_power_law_holds_a_number_for_every_channel() -> None:
    both = scene_power_law(8, alpha=[2.0, 2.5], c=[1.0, 1.0])
    np.testing.assert_array_equal(scene_power_law(8, alpha=[2.0, 2.5]), both)
    np.testing.assert_array_equal(scene_power_law(8, c=[1.0, 0.5])[..., 1], 0.5 * scene_power_law(8))
    with pytest.raises(ValueError, match=r"equal length"):
        scene_power_law(8, alpha=[2.0, 3.0], c=[1.0, 2.0, 3.0])


def test_resolution_law_source_must_be_a_string() -> None:
    with pytest.raises(TypeError, match=r"^source must be a string"):
        resolution_law(scene_power_law, [8, 16], steps=3, source=5, n_jobs=1)


def test_schedule_metrics_of_a_ve_sampler_names_alpha_bar() -> None:
    """Audit of 6 December: schedule_metrics / schedule_output of a VE sampler named "sigmas", no argument of
    theirs, for a decreasing schedule and for two levels that one float64 sigma holds."""
    from symsched.optimize import schedule_metrics, schedule_output

    for fn in (schedule_metrics, schedule_output):
        with pytest.raises(ValueError, match=r"^alpha_bar must be strictly increasing"):
            fn([1.0], [0.5, 0.3], sampler="euler")
        with pytest.raises(ValueError, match=r"^alpha_bar: sampler 'euler' runs on the float64 sigmas"):
            fn([1.0], [0.00045170352855600026, 0.0004517035285560003], sampler="euler")
    # an ordinary schedule: the metrics of the spectrum output_spectrum_ve gives on those sigmas, computed here
    ab = np.array([0.1, 0.5])
    P = float(symsched.output_spectrum_ve([1.0], np.sqrt((1 - ab) / ab), sampler="euler")[0])
    assert schedule_metrics([1.0], ab, sampler="euler")["w2"] == pytest.approx(abs(math.sqrt(P) - 1), rel=1e-12,
                                                                              abs=0)
