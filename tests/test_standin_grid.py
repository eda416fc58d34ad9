"""A 1000-step Euler-type zero-SNR grid ends in diffusers' stand-in 2**-24 (break-test of 7 December).

``EulerDiscreteScheduler(rescale_betas_zero_snr=True).alphas_cumprod`` ends [..., 4.21e-09, 2**-24]: not decreasing,
so every grid argument refused it (``torch_denoiser``, ``standard_schedule(grid=)``, ``grid_timestep``, ``--grid``)
although ``diffusers_denoiser`` and the exports read the stand-in as the 0 the model was trained at, and the README
promised that any scheduler's own grid works, a zero-terminal-SNR one too.
"""

from __future__ import annotations

import numpy as np
import pytest

from symsched import probe, schedules
from symsched.cli import main

STANDIN = 2.0**-24


def _euler_zero_snr_grid() -> np.ndarray:
    """diffusers' Euler-type zero-SNR alphas_cumprod, built here: the rescaled grid with its 0 replaced by 2**-24."""
    g = schedules.training_grid("linear", rescale_zero_snr=True)
    assert g[-1] == 0.0 and g[-2] < STANDIN  # the case: the stand-in breaks the order
    g = g.copy()
    g[-1] = STANDIN
    return g


def _zeroed(g: np.ndarray) -> np.ndarray:
    z = g.copy()
    z[-1] = 0.0
    return z


@pytest.mark.parametrize("name", ["linear-trailing", "grid-trailing", "karras"])
def test_standard_schedules_on_the_stand_in_grid_are_those_of_the_zero_grid(name) -> None:
    g = _euler_zero_snr_grid()
    if name == "grid-trailing":
        got = schedules.from_grid(g, schedules.timesteps(5, spacing="trailing"))
        want = schedules.from_grid(_zeroed(g), schedules.timesteps(5, spacing="trailing"))
        assert got[0] == 0.0  # t = 999 runs at pure noise, as the model was trained
    else:
        got = schedules.standard_schedule(name, 5, grid=g)
        want = schedules.standard_schedule(name, 5, grid=_zeroed(g))
    np.testing.assert_array_equal(got, want)


def test_grid_timestep_and_torch_denoiser_take_the_stand_in_grid() -> None:
    g = _euler_zero_snr_grid()
    assert probe.grid_timestep(0.0, g) == 999.0
    assert probe.grid_timestep(0.3, g) == probe.grid_timestep(0.3, _zeroed(g))
    den = probe.torch_denoiser(lambda x, t: x, g, shape=(4, 4)) if _has_torch() else None
    if den is not None:
        assert den.grid[-1] == 0.0 and np.array_equal(den.grid[:-1], g[:-1])


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def test_a_stand_in_that_keeps_the_order_stays_a_level() -> None:
    """A short grid whose level before the stand-in lies above 2**-24: the stand-in is a level the scheduler runs."""
    g = np.array([0.9, 0.5, 1e-3, STANDIN])
    got = schedules._as_grid(g)
    assert got[-1] == STANDIN


def test_optimize_cli_takes_the_stand_in_grid(tmp_path, capsys) -> None:
    np.save(tmp_path / "grid.npy", _euler_zero_snr_grid())
    np.save(tmp_path / "S.npy", np.linspace(0.1, 3.0, 64))
    code = main(["optimize", "--spectrum", str(tmp_path / "S.npy"), "--steps", "4",
                 "--grid", str(tmp_path / "grid.npy"), "--out", str(tmp_path / "s.json"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (tmp_path / "s.json").exists()


@pytest.mark.diffusers
def test_diffusers_own_euler_zero_snr_grid() -> None:
    diffusers = pytest.importorskip("diffusers")
    ac = diffusers.EulerDiscreteScheduler(num_train_timesteps=1000, rescale_betas_zero_snr=True).alphas_cumprod
    g = ac.numpy().astype(np.float64)
    assert g[-1] == STANDIN and g[-2] < STANDIN
    assert schedules._as_grid(g)[-1] == 0.0
    np.testing.assert_array_equal(schedules.standard_schedule("linear-trailing", 5, grid=g),
                                  schedules.standard_schedule("linear-trailing", 5, grid=_zeroed(g)))
