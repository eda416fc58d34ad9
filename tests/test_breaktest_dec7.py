"""Faults found by the acceptance audit of 7 December, one test each: a NumPy warning or a misleading message where
a ValueError naming the right argument belongs, a NaN-producing log form, and the start of VP samplers given sigmas."""

from __future__ import annotations

import subprocess
import sys
import warnings

import mpmath
import numpy as np
import pytest

import symsched
from symsched import schedules
from reference import vp_output


@pytest.mark.parametrize("kw, blamed", [({"horizon": 1e308}, "horizon"), ({"beta_max": 1e308, "horizon": 10.0},
                                                                          "beta_max, horizon"),
                                        ({"beta_max": 1e6}, "beta_max")])
def test_an_sde_grid_no_point_count_can_resolve_blames_the_model_not_n_points(kw: dict, blamed: str) -> None:
    """DDPM's update needs 2 Delta beta < 1: with beta(horizon) = inf (or 1e6 at horizon 1) even MAX_STEPS points
    fail, so "use more grid points" misled, and the overflow in beta printed a RuntimeWarning first."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(symsched.sde.UndefinedUpdate, match=rf"^{blamed}: .*even 10000 grid points \(MAX_STEPS\)"):
            symsched.sde.output_spectrum([1.0], "ddpm", 10, **kw)


def test_an_sde_grid_more_points_can_fix_still_asks_for_more_points() -> None:
    with pytest.raises(ValueError, match=r"^n_points=10 is too small .* use more grid points"):
        symsched.sde.output_spectrum([1.0], "ddpm", 10, beta_max=1e3)
    assert np.isfinite(symsched.sde.output_spectrum([1.0], "ddpm", 4000, beta_max=1e3)).all()  # (and more do)


def test_sde_table_at_a_horizon_of_1e308_prints_no_numpy_warning(tmp_path) -> None:
    """The table marks DDPM undefined there (n/a) and the SDE schemes divergent (inf); the overflow of beta(tau) in
    the domain check used to print a RuntimeWarning and its source line above the table."""
    spec = tmp_path / "S.npy"
    np.save(spec, np.ones(4))
    r = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "symsched", "sde-table", "--spectrum",
                        str(spec), "--nfe", "10", "--horizon", "1e308"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "Warning" not in r.stderr, r.stderr
    assert "| ddpm | 0 | 0 | 0 | n/a | n/a |" in r.stdout


def test_kl_divergence_beyond_float64_is_inf_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert symsched.kl_divergence([1.7976931348623157e308] * 3, [1.0] * 3) == np.inf


@pytest.mark.parametrize("rho", [5e-324, 1e-310, 1e-17])
def test_karras_with_a_vanishing_rho_blames_rho_without_warnings(rho: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^rho=.* is too small: karras\(K=5\)"):
            schedules.karras(5, rho=rho)


@pytest.mark.parametrize("rho", [1e-3, 0.01, 0.05])
def test_karras_small_rho_log_form_matches_mpmath(rho: float) -> None:
    """rho < ~0.0037 takes 80^(1/rho) beyond float64: the log form must give the EDM formula's values."""
    K, lo, hi = 6, 0.002, 80.0
    with mpmath.workdps(60):
        r, a, b = mpmath.mpf(rho), mpmath.mpf(hi) ** (1 / mpmath.mpf(rho)), mpmath.mpf(lo) ** (1 / mpmath.mpf(rho))
        ref = [float((a + mpmath.mpf(i) / (K - 1) * (b - a)) ** r) for i in range(K - 1)] + [lo]
    sig = schedules.alpha_bar_to_sigmas(schedules.karras(K, sigma_min=lo, sigma_max=hi, rho=rho))
    np.testing.assert_allclose(sig[:-1], ref[:-1], rtol=1e-12)  # (sigma_min is exact; its alpha_bar = 1 - 4e-6
    assert sig[-1] == pytest.approx(lo, rel=1e-10)  # carries it to 5e-12 through the round trip)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_a_vp_sampler_given_sigmas_starts_from_vp_white_noise(sampler: str) -> None:
    """output_spectrum_ve runs a VP sampler on the levels sigma^2 = (1 - alpha_bar)/alpha_bar from VP N(0, 1), as its
    docstring and the README say (an independent reference from the update equations; k-diffusion's N(0, sigma_max^2)
    start would give 0.9 of it on the big mode)."""
    S, sig = np.array([1e4, 1.0, 0.01]), np.array([3.0, 1.0, 0.3])
    ab = 1.0 / (1.0 + sig ** 2)
    ref = vp_output(S, ab, sampler=sampler)[1]
    np.testing.assert_allclose(symsched.output_spectrum_ve(S, sig, sampler=sampler), ref, rtol=1e-12)
