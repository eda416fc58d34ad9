"""Faults found by the README walkthrough of 7 December (second round), one test each: the zero-SNR stand-in read by
one rule everywhere, a default option blamed for a value the user passed, and counts of one in the singular."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symsched
from symsched import export, schedules
from symsched._markdown import count

ROOT = Path(__file__).resolve().parents[1]
STANDIN = 2.0**-24  # diffusers' alphas_cumprod[-1] of Euler-type schedulers with rescale_betas_zero_snr=True


def _euler_type_grid(betas: str) -> np.ndarray:
    """The zero-SNR grid as EulerDiscreteScheduler stores it: the last entry replaced by diffusers' 2**-24."""
    g = schedules.training_grid(betas, rescale_zero_snr=True).copy()
    g[-1] = STANDIN
    return g


def test_the_two_zero_snr_stand_in_cases_lie_either_side_of_it() -> None:
    """The facts the rule rests on (diffusers' float32 grids: 4.2e-9 and 1.97e-7 before the last entry)."""
    assert _euler_type_grid("linear")[-2] < STANDIN < _euler_type_grid("scaled_linear")[-2]


@pytest.mark.parametrize("betas, runs_standin", [("linear", False), ("scaled_linear", True)])
def test_grid_readers_share_one_stand_in_rule(betas: str, runs_standin: bool) -> None:
    """A timestep lookup (the exports; diffusers_denoiser) always reads 2**-24 as the 0 the model was trained at; a
    grid of levels to run keeps it where a decreasing grid can hold it (scaled-linear betas) and reads it as 0 only
    where it cannot (linear betas)."""
    g = _euler_type_grid(betas)
    assert export._as_export_grid(g)[-1] == 0.0
    assert schedules._as_grid(g)[-1] == (STANDIN if runs_standin else 0.0)
    assert schedules._standin_as_zero(g)[-1] == 0.0 and g[-1] == STANDIN  # (a copy: the caller's grid untouched)
    ab = symsched.optimize_schedule(np.logspace(-2, 2, 16), 3, grid=g, restarts=0).alpha_bar
    assert ab[0] == (STANDIN if runs_standin else 0.0)  # the default first level: the grid's noisiest


def test_a_grid_not_ending_in_the_stand_in_is_read_as_given() -> None:
    g = np.array([0.9, 0.5, 1e-7])
    assert schedules._standin_as_zero(g) is g
    assert schedules._standin_as_zero(np.array([STANDIN])).tolist() == [STANDIN]  # (one entry: no level before it)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "symsched.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_sde_table_blames_horizon_not_the_default_eps_list(tmp_path: Path) -> None:
    """Without --eps, a horizon below the default truncation times was reported as "--eps: eps must satisfy ...",
    an option the user never passed."""
    np.save(tmp_path / "S.npy", np.ones(4))
    r = _cli("sde-table", "--spectrum", "S.npy", "--horizon", "1e-300", "--out", "t.tex", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "symsched sde-table: error: --horizon must exceed every truncation time of the default --eps list "
        "0,1e-5,1e-4,1e-3 (got --horizon 1e-300): pass --eps with values below it"]
    r = _cli("sde-table", "--spectrum", "S.npy", "--horizon", "1e-300", "--eps", "1e-3", "--out", "t.tex", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("symsched sde-table: error: --eps")  # given: its own rule


def test_counts_of_one_are_singular() -> None:
    assert [count(1, "seed"), count(3, "seed"), count(0, "paired seed")] == ["1 seed", "3 seeds", "0 paired seeds"]
    with pytest.raises(ValueError, match=r"^grid has 1 level, fewer than steps=5"):
        schedules.standard_schedule("linear-leading", 5, grid=[0.5])


@pytest.mark.parametrize("sampler, scale", [
    ("euler", lambda s: 1.0),  # VE: x = x0 + sigma eps, so x0_hat = D(x) = S/(S + sigma^2) x
    ("ddim", lambda s: np.sqrt(1.0 + s * s)),  # VP: x = sqrt(a) (x0 + sigma eps), x0_hat = D(x / sqrt(a))
    ("flow_match_euler", lambda s: 1.0 + s),  # flow: x = (1 - t) (x0 + sigma eps), 1/(1 - t) = 1 + sigma
])
def test_transfer_function_ve_is_in_the_samplers_own_scale(sampler: str, scale) -> None:
    """One step from sigma to 0 returns the exact x0 estimate, so H = S/(S + sigma^2) / (the start's scale factor);
    the docstring said "VE-scaled start" for every sampler, wrong for the VP and flow ones (numerics audit)."""
    S, s = np.array([0.0, 0.5, 2.0, 1e6]), 3.0
    H = symsched.transfer_function_ve(S, [s], sampler=sampler)
    np.testing.assert_allclose(H, S / (S + s * s) * scale(s), rtol=1e-14, atol=0)


def test_transfer_function_ve_of_a_vp_sampler_is_transfer_function_on_its_levels() -> None:
    sig = np.array([1285.8, 300.0, 20.0])
    S = np.logspace(-3, 3, 7)
    H = symsched.transfer_function_ve(S, sig, sampler="deis_multistep")
    np.testing.assert_allclose(H, symsched.transfer_function(S, 1.0 / (1.0 + sig**2), sampler="deis_multistep"),
                               rtol=1e-12, atol=0)


def _flow_euler_mp(S: float, t: list[float]) -> float:
    """Output variance of the flow Euler ODE from x = eps at t[0] = 1 (x_t = (1 - t) x0 + t eps, v = (x - x0_hat) / t,
    x0_hat = (1 - t) S / ((1 - t)^2 S + t^2) x), to t = 0, in 50 digits: per mode the run is x_out = H x."""
    import mpmath

    with mpmath.workdps(50):
        H, S_ = mpmath.mpf(1), mpmath.mpf(S)
        ts = [mpmath.mpf(v) for v in t] + [mpmath.mpf(0)]
        for a, b in zip(ts[:-1], ts[1:]):
            c = (1 - a) * S_ / ((1 - a) ** 2 * S_ + a * a)
            H *= 1 + (b - a) * (1 - c) / a
        return float(H * H)


@pytest.mark.parametrize("last", [2e-8, 1e-6, 1e-3])
def test_from_diffusers_flow_keeps_the_digits_of_a_small_flow_time(last: float) -> None:
    """from_diffusers read FlowMatchEuler's flow times through float64 alpha_bar, where 1 - alpha_bar ~ t^2: the
    output spectrum was 2.1e-7 off at a last t of 2e-8 (numerics audit, 7 December); now within 1e-13."""
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.FlowMatchEulerDiscreteScheduler()
    sch.set_timesteps(sigmas=[1.0, 0.5, last])
    t = [float(v) for v in sch.sigmas.double().numpy()[:-1]]  # (diffusers' float32 times, as it runs them)
    S = [1e-2, 1.0, 100.0]
    P = export.from_diffusers(sch).output_spectrum(np.array(S))
    np.testing.assert_allclose(P, [_flow_euler_mp(s, t) for s in S], rtol=1e-13, atol=0)


def test_report_section_uses_the_fits_computed_elsewhere(tmp_path: Path, monkeypatch) -> None:
    """symsched report runs the heuristic fits in its workers while the parent optimises; report_section then takes
    them (fits=) instead of fitting again, and writes the same section as when it fits itself."""
    import importlib

    from symsched.insight.fits import fit_heuristics

    explain = importlib.import_module("symsched.insight.explain")  # (the package exports a function of that name)

    S = np.logspace(-3, 2, 64)
    results = {"w2": {K: symsched.optimize_schedule(S, K, divergence="w2", restarts=0) for K in (3, 5)}}
    own = explain.report_section(S, results, tmp_path / "own")
    fits = {("w2", K): fit_heuristics(r, S) for K, r in results["w2"].items()}

    def refuse(*a, **kw):
        raise AssertionError("fitted again")

    monkeypatch.setattr(explain, "fit_heuristics", refuse)
    given = explain.report_section(S, results, tmp_path / "given", fits=fits)
    assert given == own
    tex = [(tmp_path / d / "insight_fits_w2.tex").read_text() for d in ("own", "given")]
    assert tex[0] == tex[1] and "\\begin{tabular}" in tex[0]
