"""The step-ratio cap of optimize_schedule for samplers that reuse earlier denoiser outputs (multistep).

Audit of 5 December: on Stable Diffusion's grid (scaled_linear, noisiest alpha_bar 0.0047) the exact-denoiser
optimum of DPM-Solver++ at K = 8 was timesteps [999, 998, 997, 268, 3, 2, 1, 0] (continuous: a first log-SNR step of
1e-5 before one of 6): a tiny step buys the multistep extrapolation a free derivative, whose weight h_i / (2 h_{i-1})
multiplies a learned denoiser's error. The witness below runs diffusers' own scheduler.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import symsched
from symsched import schedules as sch
from symsched.cli import main
from symsched.optimize import MAX_STEP_RATIO, _Box, _check_steps_for, _feasible_within_cap, _history_pairs, _RatioGaps
from symsched.spectra import power_law

S16 = power_law((16, 16), alpha=2.0)
SD_GRID = sch.training_grid("scaled_linear")  # Stable Diffusion 1.x/2.x: alphas_cumprod[-1] = 0.0047


def _max_ratio(alpha_bar: np.ndarray) -> float:
    """Largest ratio of a log-SNR step to the step before it (computed here, not by the package)."""
    h = np.diff(np.log(alpha_bar) - np.log1p(-alpha_bar))
    return float(np.max(h[1:] / h[:-1]))


@pytest.mark.parametrize("first,last", [(-5.0, None), (None, None), (-5.0, 8.0), (None, 8.0)])
def test_ratio_parametrisation_keeps_the_cap_and_its_gradient_is_exact(first, last) -> None:
    rng = np.random.default_rng(0)
    K, pairs, R = 7, (1, 2, 3, 4, 5), 2.0
    par = _RatioGaps(K, first, last, -10.0, 20.0, pairs, R)
    for _ in range(200):
        h = np.diff(par.levels(rng.normal(0.0, 4.0, par.m)))
        assert np.all(h > 0) and np.all(h[1:] <= R * (1 + 1e-12) * h[:-1])
    y, g = rng.normal(0.0, 2.0, par.m), rng.normal(size=K)
    f = lambda v: float(par.levels(v) @ g)  # noqa: E731
    numeric = np.array([(f(y + 1e-6 * e) - f(y - 1e-6 * e)) / 2e-6 for e in np.eye(par.m)])
    np.testing.assert_allclose(par.pullback(y, g), numeric, rtol=1e-6, atol=1e-7)
    levels = par.levels(rng.normal(0.0, 0.5, par.m))  # a schedule within the cap is its own projection
    np.testing.assert_allclose(par.levels(par.from_levels(levels)), levels, rtol=0, atol=1e-9)
    bad = np.array([-5.0, -4.9999, -4.9998, 0.6, 5.7, 6.0, 7.0])  # far beyond the cap: projected inside it
    h = np.diff(par.levels(par.from_levels(bad)))
    assert np.all(h[1:] <= R * (1 + 1e-12) * h[:-1])


def test_history_steps_come_from_each_samplers_plan() -> None:
    """DPM-Solver++(2M) extrapolates from the previous level at every step but the first and the one to the clean
    level; 3M SDE and LMS from two and three earlier levels (the same steps: pairs are consecutive); DDIM, Heun and
    DPM-Solver order 1 reuse nothing."""
    assert _history_pairs(_check_steps_for("dpmpp_2m", 6, None, "posterior", {}), 6) == (1, 2, 3, 4)
    assert _history_pairs(_check_steps_for("dpmpp_3m_sde", 6, None, "posterior", {}), 6) == (1, 2, 3, 4)
    assert _history_pairs(_check_steps_for("lms", 6, None, "posterior", {}), 6) == (1, 2, 3, 4)
    assert _history_pairs(_check_steps_for("dpmsolver_multistep", 6, None, "posterior", {}), 6) == (1, 2, 3, 4)
    for name, kw in (("ddim", {}), ("heun", {}), ("dpmsolver_multistep", {"solver_order": 1})):
        assert _history_pairs(_check_steps_for(name, 6, None, "posterior", kw), 6) == (), name


def test_the_multistep_optimum_keeps_the_cap_where_the_uncapped_one_exploits_it() -> None:
    capped = symsched.optimize_schedule(S16, 8, sampler="dpmsolver_multistep", divergence="w2", grid=SD_GRID,
                                        restarts=0)
    free = symsched.optimize_schedule(S16, 8, sampler="dpmsolver_multistep", divergence="w2", grid=SD_GRID,
                                      restarts=0, max_step_ratio=math.inf)
    assert MAX_STEP_RATIO == 5.0 and capped.max_step_ratio == 5.0 and free.max_step_ratio == math.inf
    assert _max_ratio(capped.alpha_bar) <= 5.0 * (1 + 1e-9)
    assert _max_ratio(free.alpha_bar) > 50.0  # the exploit the cap exists for
    assert free.value < capped.value  # (the cap costs exact-denoiser objective: it is a constraint)
    assert "max_step_ratio" in capped.constraint and "max_step_ratio" not in free.constraint
    beyond = [name for name, ab in capped.baseline_schedules.items() if _max_ratio(ab) > 5.0 * (1 + 1e-9)]
    for name, ab in capped.baseline_schedules.items():  # a baseline beyond the cap is no fair comparison
        assert capped.feasible[name] == (free.feasible[name] and name not in beyond), name
        assert capped.meets_constraint(ab) == capped.feasible[name]
    assert any(free.feasible[name] for name in beyond)  # (sigmoid: 12.1 on this grid at K = 8)


def test_samplers_without_history_are_untouched() -> None:
    a = symsched.optimize_schedule(S16, 6, sampler="ddim", divergence="w2", grid=SD_GRID, restarts=0)
    b = symsched.optimize_schedule(S16, 6, sampler="ddim", divergence="w2", grid=SD_GRID, restarts=0,
                                   max_step_ratio=1.5)
    assert a.history_steps == () and a.max_step_ratio == math.inf and b.max_step_ratio == math.inf
    np.testing.assert_array_equal(a.alpha_bar, b.alpha_bar)
    assert a.value == b.value and a.feasible == b.feasible


@pytest.mark.parametrize("value,error", [(1.0, ValueError), (0.5, ValueError), (float("nan"), ValueError),
                                         (-math.inf, ValueError), ("2", TypeError), (True, TypeError)])
def test_max_step_ratio_is_checked(value, error) -> None:
    """(Audit of 5 December: NaN and -inf were "must be finite", though inf is a documented value.)"""
    match = r"^max_step_ratio must be > 1 \(math.inf: no cap" if error is ValueError else r"max_step_ratio"
    with pytest.raises(error, match=match):
        symsched.optimize_schedule(S16, 4, sampler="dpmpp_2m", max_step_ratio=value)


def test_cli_max_step_ratio(tmp_path, capsys) -> None:
    np.save(tmp_path / "S.npy", S16)
    argv = ["optimize", "--spectrum", str(tmp_path / "S.npy"), "--steps", "5", "--sampler", "dpmpp_2m",
            "--no-progress", "--restarts", "0"]
    assert main(argv + ["--max-step-ratio", "0.5", "--out", str(tmp_path / "a.json")]) == 2
    cap = capsys.readouterr()
    assert cap.err.count("\n") == 1 and "--max-step-ratio" in cap.err and "must be > 1" in cap.err
    assert cap.out == ""  # refused before the spectrum is read (audit of 5 December: its line came first)
    assert main(argv + ["--max-step-ratio", "inf", "--out", str(tmp_path / "b.json")]) == 0
    assert main(argv + ["--out", str(tmp_path / "c.json")]) == 0
    import json

    b = json.loads((tmp_path / "b.json").read_text())
    assert b["max_step_ratio"] == "inf" and b["history_steps"] == [1, 2, 3]  # uncapped, yet the steps extrapolate
    c = json.loads((tmp_path / "c.json").read_text())
    assert c["max_step_ratio"] == 5.0 and c["history_steps"] == [1, 2, 3]
    # audit of 5 December: a sampler with nothing to cap (DDIM, default cap) recorded "inf", as if switched off
    argv[argv.index("dpmpp_2m")] = "ddim"
    assert main(argv + ["--out", str(tmp_path / "d.json")]) == 0
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["max_step_ratio"] is None and d["history_steps"] == []


@pytest.mark.diffusers
def test_diffusers_dpm_solver_amplifies_a_denoiser_error_on_the_uncapped_optimum() -> None:
    """Witness: diffusers' DPMSolverMultistepScheduler (float64 coefficients), the exact epsilon of each mode plus an
    error of standard deviation 1e-2 (fixed seeds; the same draws for every schedule). The output error's RMS is
    deterministic here; measured on 5 December (the S = 7 mode): uncapped optimum 143, capped (R = 5) 0.97,
    diffusers' own 8-step spacing 0.04. Asserted with wide margins: uncapped > 500x the default spacing, capped
    < 100x."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    S = symsched.spectra.load_spectrum("builtin:natural-patches")
    runs = {"capped": None, "uncapped": math.inf}
    timesteps = {k: [int(t) for t in symsched.optimize_schedule(
        S, 8, sampler="dpmsolver_multistep", divergence="w2", grid=SD_GRID, restarts=0, max_step_ratio=r).timesteps]
        for k, r in runs.items()}
    modes = torch.tensor([1e-3, 0.03, 0.5, 1.0, 7.0], dtype=torch.float64)

    def output_error(ts) -> float:
        outs = []
        for delta in (0.0, 1e-2):
            s = diffusers.DPMSolverMultistepScheduler(beta_schedule="scaled_linear", solver_order=2)
            s.set_timesteps(8) if ts is None else s.set_timesteps(timesteps=ts)
            for name in ("sigmas", "alpha_t", "sigma_t", "lambda_t"):
                setattr(s, name, getattr(s, name).double())
            gen = torch.Generator().manual_seed(1)
            x = torch.randn(2000, modes.numel(), dtype=torch.float64, generator=gen) * float(s.init_noise_sigma)
            for i, t in enumerate(s.timesteps):
                a = 1.0 / (1.0 + float(s.sigmas[i]) ** 2)
                eps = math.sqrt(1 - a) / (a * modes + 1 - a) * x  # the exact epsilon-prediction of each mode
                eps = eps + delta * torch.randn(eps.shape, dtype=torch.float64, generator=gen)
                x = s.step(eps, t, x).prev_sample
            outs.append(x)
        return float(((outs[1] - outs[0]) ** 2).mean().sqrt())

    default = output_error(None)
    assert output_error(timesteps["uncapped"]) > 500 * default
    assert output_error(timesteps["capped"]) < 100 * default


def test_a_grid_rounding_beyond_the_cap_starts_from_the_nearest_levels_within_it() -> None:
    """Review of 5 December: with both endpoints fixed on the grid, rounding the continuous optimum broke the cap and
    the pattern search, all of whose single moves were infeasible too, returned it with value inf and success=True,
    although [20, 17, 10, 0] meets the cap."""
    S = power_law((8, 8), alpha=2.0)
    kw = dict(sampler="dpmpp_2m", divergence="w2", grid=SD_GRID, endpoints=(SD_GRID[20], SD_GRID[0]), restarts=0)
    res = symsched.optimize_schedule(S, 4, **kw)
    assert np.isfinite(res.value) and res.meets_constraint(res.alpha_bar)
    assert _max_ratio(res.alpha_bar) <= 5.0 * (1 + 1e-9)
    mine = SD_GRID[[20, 17, 10, 0]]
    w2_mine = symsched.w2_distance(symsched.output_spectrum(S, mine, sampler="dpmpp_2m"), S) ** 2
    assert _max_ratio(mine) <= 5.0 and res.value <= w2_mine * (1 + 1e-12)


def test_a_cap_no_grid_schedule_meets_is_a_clear_error() -> None:
    """Six levels from timestep 10 to 0 of Stable Diffusion's grid: none of the C(9, 4) = 126 choices keeps every step
    within 1.1 times the one before it (checked here by brute force), so the search must say so."""
    from itertools import combinations

    assert not any(_max_ratio(SD_GRID[[10, *inner, 0]]) <= 1.1 for inner in combinations(range(9, 0, -1), 4))
    with pytest.raises(ValueError, match=r"^max_step_ratio: no 6 grid levels between the endpoints keep every"):
        symsched.optimize_schedule(S16, 6, sampler="dpmpp_2m", divergence="w2", grid=SD_GRID,
                                   endpoints=(SD_GRID[10], SD_GRID[0]), restarts=0, max_step_ratio=1.1)


def test_a_tight_cap_far_from_the_rounded_optimum_still_finds_grid_levels() -> None:
    """Review of 5 December: with R = 1.2, K = 20 and Stable Diffusion's end timesteps fixed, every schedule near the
    rounded continuous optimum broke the cap and the search raised 'found no 20 grid levels', although grid schedules
    within the cap exist (the result below is one, checked here)."""
    S = power_law((8, 8), alpha=2.0)
    res = symsched.optimize_schedule(S, 20, sampler="dpmpp_2m", divergence="w2", grid=SD_GRID, restarts=0,
                                     max_step_ratio=1.2, endpoints=(SD_GRID[999], SD_GRID[0]))
    assert res.timesteps[0] == 999 and res.timesteps[-1] == 0 and np.all(np.diff(res.timesteps) < 0)
    assert _max_ratio(SD_GRID[res.timesteps]) <= 1.2 * (1 + 1e-12)
    w2 = symsched.w2_distance(symsched.output_spectrum(S, SD_GRID[res.timesteps], sampler="dpmpp_2m"), S) ** 2
    assert res.value == pytest.approx(w2, rel=1e-12)


@pytest.mark.parametrize("R", [1.05, 1.3, 2.0])
def test_grid_schedules_within_the_cap_are_found_exactly_when_they_exist(R) -> None:
    """On random 12-level grids (log-normal log-SNR spacing), K = 7 with both ends fixed: a schedule within the cap
    comes back exactly when brute force over all C(10, 5) inner choices finds one, and what comes back keeps the
    cap and the endpoints."""
    from itertools import combinations

    rng = np.random.default_rng(11)
    found = {True: 0, False: 0}
    for _ in range(40):
        l_inc = np.cumsum(rng.lognormal(-1.5, 1.0, 12)) - 3.0
        g = (1.0 / (1.0 + np.exp(-l_inc)))[::-1]  # alpha_bar by timestep: decreasing
        exists = any(_max_ratio(g[[11, *inner, 0]]) <= R for inner in combinations(range(10, 0, -1), 5))
        box = _Box(7, g[-1], g[0], g, {}, pairs=(1, 2, 3, 4, 5), ratio=R)
        j = _feasible_within_cap(np.linspace(l_inc[0], l_inc[-1], 7), box)
        assert (j is not None) == exists
        found[exists] += 1
        if j is not None:
            assert j[0] == 0 and j[-1] == 11 and np.all(np.diff(j) > 0)
            assert _max_ratio(g[::-1][j]) <= R * (1 + 1e-12)
    assert min(found.values()) >= 6  # both outcomes occur


def test_explain_passes_max_step_ratio_on_and_checks_it_first(tmp_path) -> None:
    """Review of 5 December: explain(..., max_step_ratio=2.0) was refused as a sampler setting."""
    from symsched.insight import explain

    kw = dict(sampler="dpmpp_2m", steps=(5,), divergences=("w2",), resolutions=None, images="off", progress=False,
              n_jobs=1)
    with pytest.raises(ValueError, match=r"^max_step_ratio must be > 1"):
        explain(S16, tmp_path / "bad", max_step_ratio=0.5, **kw)
    assert not (tmp_path / "bad").exists()
    ex = explain(S16, tmp_path / "ok", max_step_ratio=2.0, **kw)
    res = ex.sweeps["w2"].results[(0, 5)]
    assert res.max_step_ratio == 2.0 and _max_ratio(res.alpha_bar) <= 2.0 * (1 + 1e-9)


@pytest.mark.parametrize("command", ["explain", "report"])
def test_explain_and_report_commands_take_max_step_ratio(command, tmp_path, capsys) -> None:
    """Review of 5 December: only `symsched optimize` had --max-step-ratio; explain and report ran every multistep
    optimum at the default cap. A bad value is one line naming the flag before anything is written; a good one reaches
    every optimum, and the written description of the run names the cap."""
    import json

    np.save(tmp_path / "S.npy", S16)
    argv = [command, "--spectrum", str(tmp_path / "S.npy"), "--steps", "6", "--sampler", "dpmpp_2m", "--no-progress"]
    argv += (["--divergences", "w2", "--resolutions", "none", "--images", "off", "--jobs", "1"] if command == "explain"
             else ["--probe-samples", "0", "--samples", "200", "--jobs", "1"])
    assert main(argv + ["--max-step-ratio", "1", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-step-ratio" in err and "must be > 1" in err
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "ok"
    assert main(argv + ["--max-step-ratio", "1.5", "--out", str(out)]) == 0
    if command == "explain":
        doc, data = (out / "explain.md").read_text(), json.loads((out / "explain.json").read_text())
        assert data["info"]["max_step_ratio"] == 1.5
        levels = [np.array(r["alpha_bar"]) for r in data["schedules"]["w2"]["results"]]
    else:
        doc = (out / "table_w2.tex").read_text()
        levels = [np.array(json.loads((out / f"schedule_{d}_K6.json").read_text())["alpha_bar"]) for d in ("kl", "w2")]
    assert "max_step_ratio=1.5" in doc.replace("\\_", "_")
    assert levels and all(_max_ratio(a) <= 1.5 * (1 + 1e-9) for a in levels)
    assert all(a.size == 6 for a in levels)


def test_the_cap_holds_on_the_float64_levels_returned_near_alpha_bar_one() -> None:
    """Audit of 5 December: the search kept the cap on its log-SNR levels, but above log-SNR ~30 alpha_bar's float64
    spacing moves log-SNR by up to ~0.05, and the returned levels broke it (h_6 / h_5 = 1.525 under R = 1.5). They
    keep it now (checked on the returned alpha_bar), with the value of those levels; where no nudge keeps it, a
    ValueError naming max_step_ratio."""
    S = power_law((8, 8), alpha=2.0) * 1e-14
    kw = dict(sampler="dpmpp_2m", restarts=1)
    for last in (1 - 2.0**-49, 1 - 2.0**-51):
        res = symsched.optimize_schedule(S, 8, max_step_ratio=1.5, endpoints=(0.5, last), **kw)
        h = np.diff(np.log(res.alpha_bar) - np.log1p(-res.alpha_bar))
        assert max(h[i] / h[i - 1] for i in res.history_steps) <= 1.5 * (1 + 1e-12)
        assert res.alpha_bar[-1] == last
        w2 = symsched.w2_distance(symsched.output_spectrum(S, res.alpha_bar, sampler="dpmpp_2m"), S) ** 2
        assert res.value == pytest.approx(w2, rel=1e-9, abs=0)
    with pytest.raises(ValueError, match=r"^max_step_ratio: near alpha_bar = 1 float64's spacing"):
        symsched.optimize_schedule(S, 8, max_step_ratio=1.05, endpoints=(0.5, 1 - 2.0**-49), **kw)


@pytest.mark.parametrize("call", [
    lambda: symsched.optimize_schedule(S16, 5, sampler="dpmpp_2m", max_step_ratio=1e308, restarts=0),
    lambda: symsched.optimize_schedule(S16, 10, sampler="dpmpp_2m", max_step_ratio=1.05, restarts=0,
                                       grid=sch.training_grid("cosine", rescale_zero_snr=True), endpoints=(None, None)),
])
def test_the_cap_raises_no_floating_point_warning(call) -> None:
    """Audit of 5 December: R h overflowed for R = 1e308, and a zero-SNR grid level's infinite distance to a free
    first level was summed to an overflow: RuntimeWarnings (a second line on the CLI's stderr)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = call()
    assert np.all(np.isfinite(res.alpha_bar[1:]))


def test_an_uncapped_run_says_so(tmp_path) -> None:
    """Audit of 5 December: with --max-step-ratio inf the report's captions and explain.md read "(library defaults)",
    as for a sampler with nothing to cap, and explain.json's max_step_ratio was null."""
    import json

    np.save(tmp_path / "S.npy", S16)
    base = ["--spectrum", str(tmp_path / "S.npy"), "--steps", "6", "--sampler", "dpmpp_2m", "--no-progress",
            "--max-step-ratio", "inf", "--jobs", "0"]
    assert main(["explain", *base, "--divergences", "w2", "--resolutions", "none", "--images", "off",
                 "--out", str(tmp_path / "e")]) == 0
    assert "max_step_ratio=inf" in (tmp_path / "e" / "explain.md").read_text()
    assert json.loads((tmp_path / "e" / "explain.json").read_text())["info"]["max_step_ratio"] == "inf"
    assert main(["report", *base, "--probe-samples", "0", "--samples", "200", "--out", str(tmp_path / "r")]) == 0
    assert "max_step_ratio=inf" in (tmp_path / "r" / "table_w2.md").read_text().replace("\\_", "_") + \
        (tmp_path / "r" / "summary.md").read_text()


def test_explain_records_the_cap_its_capped_step_counts_ran_with(tmp_path) -> None:
    """Review of 5 December: explain recorded the cap of its main step count only, so with --steps 2,3,6 (main K = 3,
    where diffusers' DEIS reuses no earlier level: its last step is first order) explain.json and explain.md said
    max_step_ratio inf (no cap) although its K = 6 optimum ran with the default cap."""
    from symsched.insight import explain

    assert _history_pairs(_check_steps_for("deis_multistep", 3, None, None, {}), 3) == ()  # (what the case rests on)
    assert _history_pairs(_check_steps_for("deis_multistep", 6, None, None, {}), 6) != ()
    ex = explain(S16, tmp_path / "e", steps=[2, 3, 6], sampler="deis_multistep", divergences=["w2"], resolutions=None,
                 images="off", progress=False, n_jobs=1)
    assert ex.main_steps == 3 and ex.info["max_step_ratio"] == MAX_STEP_RATIO
    assert f"max_step_ratio={MAX_STEP_RATIO:g}" in (tmp_path / "e" / "explain.md").read_text()
    ex = explain(S16, tmp_path / "d", steps=[2, 3], sampler="deis_multistep", divergences=["w2"], resolutions=None,
                 images="off", progress=False, n_jobs=1)
    assert ex.info["max_step_ratio"] is None  # (no step count with a cap: nothing to say)
