"""Acceptance tests of issue #4 for the schedule optimiser (symsched.optimize).

Expected values are computed here independently of the code under test: the reference optimum by
a separate multi-start search (its own parametrisation, starts and chain rule), the tangent law
from its formula (docs/model.md §7.6), the standard schedules' values by direct calls to the public API.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

import symsched
from symsched import schedules as sch
from symsched.optimize import (
    ComparisonTable,
    InfiniteObjective,
    _ratio_to_optimum,
    compare_schedules,
    default_grid,
    optimize_schedule,
    schedule_metrics,
)
from symsched.spectra import power_law

# ---------------------------------------------------------------------------------------------
# helpers (independent of symsched.optimize)
# ---------------------------------------------------------------------------------------------


def synthetic_spectrum() -> np.ndarray:
    """3,072-mode colour-like power law (32x32x3, 1/f^2, channels 1 : 0.05 : 0.005) with 4 zero modes."""
    base = power_law((32, 32), alpha=2.0, c=0.01)
    S = np.stack([base, 0.05 * base, 0.005 * base], axis=-1)
    S[5, 7, 2] = S[-5, -7, 2] = S[9, 1, 2] = S[-9, -1, 2] = 0.0
    return S


def value_of(S, ab, divergence="kl", **kw) -> float:
    """KL unless told otherwise (the tests below were written for KL; divergence_and_grad's default is W2)."""
    return float(symsched.divergence_and_grad(S, ab, divergence=divergence, **kw)[0])


def reference_search(S, K, *, n_starts: int, seed: int, **kw) -> float:
    """Best value of an independent multi-start search over K free levels.

    Different parametrisation (the K log-SNR values themselves, box [-25, 25], wider than the
    optimiser's default range), different optimiser (SLSQP with linear ordering constraints
    l_{i+1} - l_i >= 1e-4), own random starts (sorted uniform log-SNR in [-14, 16]).
    """
    u, counts = np.unique(np.ravel(S), return_counts=True)
    w = counts.astype(float)

    def fun(l, scale):
        l = np.clip(l, -25.0, 25.0)
        for i in range(1, K):  # SLSQP may step slightly outside the ordering constraints
            l[i] = max(l[i], l[i - 1] + 1e-4)
        ab = np.where(l >= 0, 1.0 - expit(-l), expit(l))
        J, g = symsched.divergence_and_grad(u, ab, weights=w, wrt="log_snr", **kw)
        return J / scale, g / scale

    A = np.zeros((K - 1, K))
    A[np.arange(K - 1), np.arange(K - 1)] = -1.0
    A[np.arange(K - 1), np.arange(1, K)] = 1.0
    cons = [{"type": "ineq", "fun": lambda l: A @ l - 1e-4, "jac": lambda l: A}]
    rng = np.random.default_rng(1000 + seed)
    best = math.inf
    for _ in range(n_starts):
        l0 = np.sort(rng.uniform(-14.0, 16.0, K)) + 1e-3 * np.arange(K)
        scale = fun(l0.copy(), 1.0)[0]
        res = minimize(fun, l0, args=(scale,), jac=True, method="SLSQP", bounds=[(-25.0, 25.0)] * K,
                       constraints=cons, options={"maxiter": 1000, "ftol": 1e-14})
        best = min(best, float(res.fun) * scale)
    return best


def standard_values(S, K, grid=None, **kw) -> dict[str, float]:
    out = {}
    for name in sch.STANDARD_SCHEDULES:
        try:
            ab = sch.standard_schedule(name, K, grid=grid)
        except ValueError:
            continue
        out[name] = value_of(S, ab, **kw)
    return out


# ---------------------------------------------------------------------------------------------
# acceptance 1: free endpoints, white start, within 1% (W2) / 2% (KL) of an exhaustive search,
# and better than every standard schedule
# ---------------------------------------------------------------------------------------------

MATRIX = [(K, eta, div) for K in (5, 10) for eta in (0.0, 1.0) for div in ("kl", "w2")]
FAST = {(5, 0.0, "kl"), (5, 0.0, "w2")}


def _check_against_reference(S, K, eta, div):
    kw = dict(sampler="ddim", eta=eta, divergence=div, init="white")
    res = optimize_schedule(S, K, endpoints=(None, None), **kw)
    ref = reference_search(S, K, n_starts=12, seed=K, **kw)
    tol = 0.01 if div == "w2" else 0.02
    assert res.value <= ref * (1.0 + tol), (res.value, ref)
    # the value is the objective at the returned levels
    assert res.value == pytest.approx(value_of(S, res.alpha_bar, **kw), rel=1e-12)
    stds = standard_values(S, K, **kw)
    assert len(stds) >= 12
    assert all(res.value < v for v in stds.values()), (res.value, min(stds.values()))
    assert res.baselines == pytest.approx(stds, rel=1e-12)
    return res.value, ref, min(stds.values())


@pytest.mark.parametrize(
    "K,eta,div",
    [pytest.param(*m, marks=() if m in FAST else pytest.mark.slow) for m in MATRIX],
)
def test_matches_exhaustive_search_synthetic(K, eta, div) -> None:
    _check_against_reference(synthetic_spectrum(), K, eta, div)


@pytest.mark.slow
@pytest.mark.parametrize("K,eta,div", MATRIX)
def test_matches_exhaustive_search_cifar(cifar_spectrum, K, eta, div) -> None:
    assert cifar_spectrum.size == 3072
    _check_against_reference(cifar_spectrum, K, eta, div)


# ---------------------------------------------------------------------------------------------
# acceptance 2: one mode, fixed end levels -> equal-angle tangent law (docs/model.md §7.6)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "S0,K,init,div",
    [(1.0, 10, "exact", "kl"), (4.0, 7, "exact", "w2"), (0.3, 10, "white", "kl"), (2.5, 12, "exact", "kl-reverse")],
)
def test_one_mode_recovers_tangent_law(S0, K, init, div) -> None:
    a, b = 0.01, 0.995  # fixed first (noisiest) and last level
    res = optimize_schedule([S0], K, endpoints=(a, b), init=init, divergence=div)
    sig_a, sig_b = math.sqrt((1 - a) / a), math.sqrt((1 - b) / b)
    theta = np.linspace(math.atan(sig_a / math.sqrt(S0)), math.atan(sig_b / math.sqrt(S0)), K)
    expected_sigma = math.sqrt(S0) * np.tan(theta)
    expected_ab = 1.0 / (1.0 + expected_sigma**2)
    np.testing.assert_allclose(res.sigmas, expected_sigma, rtol=1e-6)
    np.testing.assert_allclose(res.alpha_bar, expected_ab, rtol=1e-6)
    np.testing.assert_allclose(np.arctan(res.sigmas / math.sqrt(S0)), theta, atol=1e-6)
    assert res.alpha_bar[0] == a and res.alpha_bar[-1] == b


def test_unit_mode_tangent_law_is_kl_optimal() -> None:
    lo, hi = 0.002, 80.0
    ab = sch.kl_optimal(8, sigma_min=lo, sigma_max=hi)
    res = optimize_schedule([1.0], 8, endpoints=(ab[0], ab[-1]), init="exact")
    np.testing.assert_allclose(res.alpha_bar, ab, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# acceptance 3: grid restriction
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("div,endpoints", [("kl", None), ("w2", None), ("kl", (None, None))])
def test_grid_uses_grid_levels_and_beats_standard_on_grid(div, endpoints) -> None:
    S = synthetic_spectrum()
    g = default_grid()
    kw = dict(sampler="ddim", divergence=div)
    res = optimize_schedule(S, 10, grid=g, endpoints=endpoints, **kw)
    ts = res.timesteps
    assert ts is not None and ts.dtype.kind == "i" and np.all(np.diff(ts) < 0)
    assert np.all((0 <= ts) & (ts < g.size))
    np.testing.assert_array_equal(res.alpha_bar, g[ts])  # exactly grid levels
    assert res.value == pytest.approx(value_of(S, g[ts], **kw), rel=1e-12)
    stds = standard_values(S, 10, grid=g, **kw)
    assert len(stds) >= 10
    assert res.value <= min(stds.values())
    if endpoints is None:
        assert ts[0] == g.size - 1  # default: first level = noisiest training level


def test_grid_ddpm_1000_steps_cifar(cifar_spectrum) -> None:
    g = default_grid()
    res = optimize_schedule(cifar_spectrum, 5, grid=g, sampler="ddpm", divergence="kl")
    np.testing.assert_array_equal(res.alpha_bar, g[res.timesteps])
    stds = standard_values(cifar_spectrum, 5, grid=g, sampler="ddpm", divergence="kl")
    assert res.value <= min(stds.values())


# ---------------------------------------------------------------------------------------------
# other behaviour
# ---------------------------------------------------------------------------------------------


def test_default_endpoint_is_noisiest_ddpm_level_and_deterministic() -> None:
    S = synthetic_spectrum()
    r1 = optimize_schedule(S, 6)
    r2 = optimize_schedule(S, 6)
    first = float(sch.training_grid("linear")[-1])
    assert r1.alpha_bar[0] == first and r1.endpoints == (first, None)
    np.testing.assert_array_equal(r1.alpha_bar, r2.alpha_bar)
    assert np.all(np.diff(r1.alpha_bar) > 0) and 0 < r1.alpha_bar[0] and r1.alpha_bar[-1] < 1
    assert r1.n_evaluations > 0 and r1.success
    np.testing.assert_allclose(r1.log_snr, np.log(r1.alpha_bar / (1 - r1.alpha_bar)), rtol=1e-10)
    np.testing.assert_allclose(r1.sigmas, np.sqrt((1 - r1.alpha_bar) / r1.alpha_bar), rtol=1e-10)
    m = schedule_metrics(S, r1.alpha_bar)
    assert r1.kl == pytest.approx(m["kl"]) and r1.w2 == pytest.approx(m["w2"])
    assert r1.w2 ** 2 == pytest.approx(r1.value, rel=1e-10)  # the default divergence is W2 squared
    assert "optimised" in r1.summary() and "karras" in r1.summary()
    assert "<table>" in r1._repr_html_()


def test_free_endpoints_not_worse_than_default() -> None:
    S = synthetic_spectrum()
    assert optimize_schedule(S, 5, endpoints=(None, None)).value <= optimize_schedule(S, 5).value * (1 + 1e-9)


def test_ve_sampler_through_sigmas() -> None:
    S = synthetic_spectrum()
    res = optimize_schedule(S, 6, sampler="euler", endpoints=(None, None), divergence="kl")
    J = float(symsched.divergence_and_grad_ve(S, res.sigmas, sampler="euler", divergence="kl")[0])
    assert res.value == pytest.approx(J, rel=1e-10)
    best_std = min(
        float(symsched.divergence_and_grad_ve(S, sch.alpha_bar_to_sigmas(sch.standard_schedule(n, 6)),
                                              sampler="euler", divergence="kl")[0])
        for n in sch.STANDARD_SCHEDULES
    )
    assert res.value < best_std


def test_weights_change_the_objective() -> None:
    S = synthetic_spectrum()
    w = np.ones_like(S)
    w[..., 0] = 10.0
    res = optimize_schedule(S, 5, weights=w, endpoints=(None, None), divergence="kl")
    assert res.value == pytest.approx(value_of(S, res.alpha_bar, weights=w), rel=1e-12)
    plain = optimize_schedule(S, 5, endpoints=(None, None), divergence="kl")
    # each is optimal for its own objective
    assert value_of(S, res.alpha_bar, weights=w) <= value_of(S, plain.alpha_bar, weights=w) * (1 + 1e-6)
    assert value_of(S, plain.alpha_bar) <= value_of(S, res.alpha_bar) * (1 + 1e-6)


def test_zero_modes_contribute_nothing() -> None:
    S = np.array([0.0, 0.0, 0.5, 2.0, 7.0])
    res = optimize_schedule(S, 4, endpoints=(None, None))
    res_nz = optimize_schedule(S[2:], 4, endpoints=(None, None))
    assert res.value == pytest.approx(res_nz.value, rel=1e-8)


def test_one_step_with_fixed_first_level() -> None:
    res = optimize_schedule([1.0, 2.0], 1, endpoints=(0.3, None))
    np.testing.assert_array_equal(res.alpha_bar, [0.3])


def test_compare_schedules_table() -> None:
    S = synthetic_spectrum()
    table = compare_schedules(S, (3, 5), endpoints=(None, None), restarts=1, divergence="kl")
    assert isinstance(table, ComparisonTable) and set(table.results) == {3, 5}
    for K in (3, 5):
        opt = [r for r in table.rows if r["steps"] == K and r["schedule"] == "optimised"]
        assert len(opt) == 1
        others = [r["kl"] for r in table.rows if r["steps"] == K and r["schedule"] != "optimised"]
        assert opt[0]["kl"] < min(others)
        karras = next(r for r in table.rows if r["steps"] == K and r["schedule"] == "karras")
        P = symsched.output_spectrum(S, sch.standard_schedule("karras", K))
        assert karras["kl"] == pytest.approx(symsched.kl_divergence(S, P))
        assert karras["w2"] == pytest.approx(symsched.w2_distance(P, S))
    md = table.to_markdown()
    assert md.splitlines()[0].startswith("| schedule | KL (K=3) | W2 (K=3)")
    assert "**" in md and "| optimised for KL |" in md.replace("**", "")  # (the divergence it minimises, named)
    tex = table.to_latex()
    assert tex.startswith(r"\begin{tabular}") and r"\textbf{" in tex and "linear\\_leading" not in tex


# ---------------------------------------------------------------------------------------------
# fair comparisons (issue 9): baselines under the same endpoint constraint
# ---------------------------------------------------------------------------------------------


def _meets_first(ab, first) -> bool:
    """Independent check: the schedule starts at exactly this level (log-SNR within 1e-9)."""
    return abs(math.log(ab[0] / (1 - ab[0])) - math.log(first / (1 - first))) <= 1e-9


def test_power_law_k5_baselines_are_held_to_the_default_constraint() -> None:
    """Issue 9: "optimised" 392.9 against scaled_linear-trailing's 363.0, which starts at a less noisy level."""
    S = power_law((64, 64), alpha=2.0)
    res = optimize_schedule(S, 5, divergence="kl")
    first = float(default_grid()[-1])
    sl = value_of(S, sch.standard_schedule("scaled_linear-trailing", 5))
    assert sl == pytest.approx(363.0, abs=0.05) and res.value == pytest.approx(392.9, abs=0.05)
    assert res.alpha_bar[0] == first
    stds = standard_values(S, 5)
    for name, v in stds.items():
        ok = _meets_first(sch.standard_schedule(name, 5), first)
        assert res.feasible[name] == ok, name
        if ok:
            assert res.value <= v, name
    assert not res.feasible["scaled_linear-trailing"] and res.feasible["linear-trailing"]
    assert res.best_feasible_baseline[0] in ("linear-trailing", "linear-linspace")
    text = res.summary()
    assert "scaled_linear-trailing †" in text and "not a fair comparison" in text
    assert "linear-trailing †" not in text.replace("scaled_linear-trailing †", "")
    d = res.to_dict()
    assert "scaled_linear-trailing" not in d["baselines_meeting_constraints"]
    assert d["constraint"].startswith("first level alpha_bar = 4.03")


@pytest.mark.parametrize("div", ["kl", "w2"])
@pytest.mark.parametrize("name", ["karras", "shifted", "linear-trailing"])
def test_never_loses_to_a_baseline_meeting_both_fixed_endpoints(div, name) -> None:
    S = synthetic_spectrum()
    ab = sch.standard_schedule(name, 6)
    res = optimize_schedule(S, 6, divergence=div, endpoints=(ab[0], ab[-1]))
    assert res.feasible[name]
    for other, v in standard_values(S, 6, divergence=div).items():
        o = sch.standard_schedule(other, 6)
        ok = _meets_first(o, ab[0]) and _meets_first(o[::-1], ab[-1])
        assert res.feasible[other] == ok, other
        if ok:
            assert res.value <= v
    assert res.value <= value_of(S, ab, divergence=div)


def test_a_crippled_search_still_returns_the_best_feasible_baseline() -> None:
    """One random start and one L-BFGS-B iteration cannot find the optimum: the best baseline meeting
    the constraints is returned instead of anything worse."""
    S = synthetic_spectrum()
    res = optimize_schedule(S, 8, standard_starts=False, restarts=1, maxiter=1)
    first = float(default_grid()[-1])
    fair = {n: v for n, v in standard_values(S, 8).items() if _meets_first(sch.standard_schedule(n, 8), first)}
    assert fair and res.value <= min(fair.values()) * (1 + 1e-12)


def test_grid_baselines_include_the_grid_spacings_and_are_flagged() -> None:
    S = synthetic_spectrum()
    g = np.linspace(0.9995, 0.0005, 300)  # a model's own grid, not a named beta family
    res = optimize_schedule(S, 5, grid=g)
    for spacing in ("leading", "trailing", "linspace"):
        ts = sch.timesteps(5, spacing=spacing, num_train_timesteps=300)
        np.testing.assert_array_equal(res.baseline_schedules[f"grid-{spacing}"], g[np.sort(ts)[::-1]])
    for name, ab in res.baseline_schedules.items():
        assert res.feasible[name] == (ab[0] == g[-1]), name
        if res.feasible[name]:
            assert res.value <= res.baselines[name]
    assert res.feasible["grid-trailing"] and not res.feasible["grid-leading"]


def test_comparison_table_marks_unfair_baselines() -> None:
    S = power_law((64, 64), alpha=2.0)
    table = compare_schedules(S, (5,), restarts=1)
    md = table.to_markdown()
    row = next(line for line in md.splitlines() if line.startswith("| scaled_linear-trailing |"))
    assert "†" in row and "**" not in row  # marked, and not bold although its KL is the lowest
    assert "| **" in next(line for line in md.splitlines() if line.startswith("| optimised for W2 |"))
    assert "not a fair comparison" in md and "first level alpha_bar = 4.03" in md
    assert r"$^\dagger$" in table.to_latex()
    assert all(r["feasible"] == table.results[5].feasible.get(r["schedule"], True) for r in table.rows)


def test_warm_starts_and_compare_reuse_neighbouring_optima() -> None:
    S = synthetic_spectrum()
    r5 = optimize_schedule(S, 5, divergence="w2")
    warm = optimize_schedule(S, 5, divergence="w2", warm_starts=[r5.alpha_bar])
    assert warm.value <= r5.value * (1 + 1e-12) and "from 'warm start 0'" in warm.message
    assert warm.n_gradient_evaluations < r5.n_gradient_evaluations
    resampled = optimize_schedule(S, 7, divergence="w2", warm_starts=[r5.alpha_bar, r5.alpha_bar[:1]])
    assert resampled.value == pytest.approx(optimize_schedule(S, 7, divergence="w2").value, rel=1e-9)
    with pytest.raises(ValueError, match=r"warm_starts\[0\]"):
        optimize_schedule(S, 5, warm_starts=[[0.5, 0.2]])


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(steps=0), "steps must be an integer >= 1"),
        (dict(steps=2.5), "steps must be an integer"),
        (dict(sampler="dpm"), "sampler must be one of"),
        (dict(eta=1.5), "eta must lie in"),
        (dict(sampler="ddpm", eta=0.5), "eta applies only to samplers with an eta parameter"),
        (dict(divergence="l2"), "divergence must be one of"),
        (dict(init="zeros"), "init must be one of"),
        (dict(variance="big"), "variance must be one of"),
        (dict(endpoints=(0.5,)), "endpoints must be None or a pair"),
        (dict(endpoints="free"), "endpoints must be None or a pair"),
        (dict(endpoints=(1.5, None)), r"endpoints\[0\] \(first level\) must be a level"),
        (dict(endpoints=(None, 0.0)), r"endpoints\[1\] \(last level\) must be a level"),
        (dict(endpoints=(0.9, 0.1)), "first < last"),
        (dict(grid=[0.5, 0.9]), "grid must be strictly decreasing"),
        (dict(grid=[0.9, 0.5]), "fewer than steps"),
        (dict(grid=[[0.9, 0.5]]), "grid must be a non-empty 1-D"),
        (dict(grid=[0.9, 1.0]), r"grid must lie in \(0, 1\), except a last entry 0"),
        (dict(grid=[0.9, 0.5, 0.6, 0.55, 0.7]), r"grid\[1\]=0.5 <= grid\[2\]=0.6"),  # the first offending pair
        (dict(weights=np.ones(3)), "shape mismatch: weights"),
        (dict(weights=-np.ones(4)), "weights must be non-negative"),
        (dict(seed=-1), "seed must be an integer >= 0"),
        (dict(restarts=1.5), "restarts must be an integer"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match) -> None:
    S = np.array([0.1, 1.0, 2.0, 3.0])
    args = dict(steps=3)
    args.update(kwargs)
    steps = args.pop("steps")
    with pytest.raises(ValueError, match=match):
        optimize_schedule(S, steps, **args)


def test_bad_spectrum_raises() -> None:
    with pytest.raises(ValueError, match="spectrum must be non-negative"):
        optimize_schedule([1.0, -1.0], 3)
    with pytest.raises(ValueError, match="steps_list"):
        compare_schedules([1.0], "5")


# ---------------------------------------------------------------------------------------------
# export into diffusers reproduces the levels
# ---------------------------------------------------------------------------------------------


@pytest.mark.diffusers
def test_exported_schedule_reproduces_levels_in_diffusers() -> None:
    diffusers = pytest.importorskip("diffusers")
    from symsched.export import from_diffusers, to_diffusers

    S = synthetic_spectrum()
    # continuous levels -> EulerDiscreteScheduler(sigmas=...) (Euler = deterministic DDIM)
    res = optimize_schedule(S, 8, sampler="euler")
    kwargs = to_diffusers(res.alpha_bar)
    euler = diffusers.EulerDiscreteScheduler(num_train_timesteps=1000, beta_schedule="linear")
    euler.set_timesteps(**kwargs)
    got = euler.sigmas.double().numpy()
    np.testing.assert_allclose(got[:-1], res.sigmas, rtol=1e-6)
    assert got[-1] == 0.0
    np.testing.assert_allclose(from_diffusers(euler).alpha_bar, res.alpha_bar, rtol=1e-6)

    # grid levels -> DDPMScheduler(timesteps=...)
    g = default_grid()
    res = optimize_schedule(S, 8, sampler="ddpm", grid=g)
    kwargs = to_diffusers(res.alpha_bar, grid=g)
    assert kwargs["timesteps"] == [int(t) for t in res.timesteps]
    ddpm = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    ddpm.set_timesteps(**kwargs)
    levels = ddpm.alphas_cumprod.double().numpy()[ddpm.timesteps.numpy()]
    np.testing.assert_allclose(levels, res.alpha_bar, rtol=1e-6)
    read = from_diffusers(ddpm)
    assert read.sampler == "ddpm"
    np.testing.assert_allclose(read.alpha_bar, res.alpha_bar, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# trial schedules the engine refuses are infeasible points, not the end of the search
# ---------------------------------------------------------------------------------------------
def test_search_continues_past_refused_trial_schedules() -> None:
    """LMS on this spectrum: L-BFGS-B's line search visits schedules whose multistep coefficients cancel in
    float64, which the engine refuses; the search used to abort with that error (blaming alpha_bar). Now the
    refused points are infeasible, the result is a real optimum and says how many points were refused."""
    S = power_law((8, 8), alpha=2.0)
    res = symsched.optimize_schedule(S, 4, sampler="lms", divergence="w2", endpoints=(None, None),
                                     max_step_ratio=math.inf)  # (uncapped: the search reaches those schedules)
    fresh = symsched.w2_distance(symsched.output_spectrum(S, res.alpha_bar, sampler="lms"), S) ** 2
    assert res.value == pytest.approx(fresh, rel=1e-9)
    feasible = [v for name, v in res.baselines.items() if np.isfinite(v)]
    assert res.value <= min(feasible) * (1 + 1e-9)
    assert "refused by the engine were treated as infeasible" in res.message


def test_refused_points_are_infeasible_whatever_refuses_them(monkeypatch) -> None:
    """The mechanism alone: an objective that refuses every schedule with a level above alpha_bar = 0.9 (as the
    engine refuses ill-conditioned ones) still yields the constrained optimum's neighbourhood, never an error."""
    from symsched import api

    def picky(real):
        def call(grp, x, *args, **kw):  # x: the levels alpha_bar (ddim)
            if np.max(x) > 0.9:
                raise ValueError("alpha_bar: refused (test)")
            return real(grp, x, *args, **kw)
        return call

    monkeypatch.setattr(api, "grouped_value_and_grad", picky(api.grouped_value_and_grad))
    monkeypatch.setattr(api, "grouped_value", picky(api.grouped_value))
    S = power_law((8, 8), alpha=2.0)
    res = symsched.optimize_schedule(S, 5, divergence="kl", endpoints=(None, None), standard_starts=True)
    assert np.all(np.isfinite(res.alpha_bar)) and np.isfinite(res.value)


def test_a_sampler_refusing_every_start_names_the_endpoints() -> None:
    """Heun is unbounded from alpha_bar = 0: with endpoints (0, None) every schedule is refused; one ValueError
    names the endpoints and gives the engine's reason (not a stray 'sigmas: ...' from inside the search)."""
    with pytest.raises(ValueError, match=r"^endpoints: the sampler 'heun' refuses every schedule.*unbounded"):
        symsched.optimize_schedule(power_law((8, 8), alpha=2.0), 4, sampler="heun", endpoints=(0.0, None))


@pytest.mark.parametrize("K", [3, 5])
def test_fixed_endpoints_without_room_between_them_name_the_endpoints(K) -> None:
    """Fuzz audit of 5 December: endpoints one ulp apart leave no float64 level between them; the search ran and
    then blamed the sampler ("the sampler 'ddim' refuses every schedule the search tried"). Now refused up front,
    naming the endpoints; a few ulps more room than the levels need is accepted, and K = 2 needs none."""
    a = 0.5
    b = float(np.nextafter(a, 1.0))
    S = np.array([0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"^endpoints: the fixed first and last levels .* leave no room for "
                                         rf"{K - 2} distinct level"):
        optimize_schedule(S, K, endpoints=(a, b), restarts=0)
    res = optimize_schedule(S, 2, endpoints=(a, b), restarts=0)
    assert res.alpha_bar[0] == a and res.alpha_bar[-1] == b
    res = optimize_schedule(S, K, endpoints=(a, 0.6), restarts=0)
    assert res.alpha_bar[0] == a and res.alpha_bar[-1] == 0.6 and np.all(np.diff(res.alpha_bar) > 0)


def test_lbfgs_abnormal_stop_has_a_reason():
    """break3/user F15: SciPy's abnormal line-search stop reads "ABNORMAL: " with an empty reason; the message
    says what happened."""
    from symsched.optimize import _lbfgs_reason

    assert _lbfgs_reason("ABNORMAL: ") == "ABNORMAL: the line search found no lower value"
    assert _lbfgs_reason("ABNORMAL_TERMINATION_IN_LNSRCH") == "ABNORMAL: the line search found no lower value"
    assert _lbfgs_reason("CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH").startswith("CONVERGENCE")


def test_a_zero_first_level_is_not_moved_onto_a_grid_without_one() -> None:
    """break3/user F1 at the API: endpoints=(0, None) with a grid whose noisiest level is 4e-5 used to move the
    pure-noise level onto it silently; a zero-SNR grid keeps it exactly."""
    S = power_law((8, 8), alpha=2.0)
    with pytest.raises(ValueError, match=r"^endpoints: the first level alpha_bar = 0 .* not on grid"):
        optimize_schedule(S, 4, endpoints=(0.0, None), grid=sch.training_grid("linear"))
    res = optimize_schedule(S, 4, endpoints=(0.0, None), grid=sch.training_grid("linear", rescale_zero_snr=True))
    assert res.alpha_bar[0] == 0.0


@pytest.mark.parametrize("endpoints,T,which,room", [
    ((None, "grid[-1]"), 1000, r"endpoints\[1\] \(last level\)", 0),   # snaps to the noisiest level, t = 999
    ((None, "grid[-2]"), 1000, r"endpoints\[1\] \(last level\)", 1),  # one noisier grid level, two needed
    ((None, "grid[-1]"), 5, r"endpoints\[1\] \(last level\)", 0),
    ((0.99995, None), 1000, r"endpoints\[0\] \(first level\)", 0),  # snaps to t = 0, the cleanest level
])
def test_a_single_fixed_end_must_leave_room_on_the_grid(endpoints, T, which, room) -> None:
    """break-test F2: a fixed end snapped to the grid with fewer than K - 1 grid levels on its free side used to
    reach log(0/0) in the start scoring (a RuntimeWarning, then 'log_snr must not be NaN')."""
    import warnings

    S = power_law((8, 8), alpha=2.0)
    grid = sch.training_grid("linear", num_train_timesteps=T)
    if isinstance(endpoints[1], str):  # a grid level, times 1.0001 (snapped back to it; beyond the grid's noisiest
        endpoints = (None, float(grid[int(endpoints[1][5:-1])]) * 1.0001)  # level is refused before: its own test)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=rf"^{which} snaps to the grid level .* has {room} .* too few for steps=3"):
            optimize_schedule(S, 3, grid=grid, endpoints=endpoints)
    ok = (None, float(grid[-3])) if endpoints[0] is None else (float(grid[2]), None)  # exactly enough room
    res = optimize_schedule(S, 3, grid=grid, endpoints=ok)
    assert np.all(np.isfinite(res.alpha_bar)) and res.alpha_bar.size == 3


# ---------------------------------------------------------------------------------------------
# a fourth break-test round: the search never produces NaN levels, values agree with the gradient path
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("last", [2e-9, 1e-300])
def test_a_fixed_last_level_noisier_than_the_default_range_leaves_room_below_it(last) -> None:
    """(None, 2e-9) used to put the free first level's range [lo, lo] on the last level: NaN log-SNR levels."""
    S = power_law((8, 8), alpha=2.0)
    res = optimize_schedule(S, 4, endpoints=(None, last), restarts=0)
    assert res.alpha_bar[-1] == last and np.all(np.diff(res.alpha_bar) > 0) and res.alpha_bar[0] > 0
    assert res.value == pytest.approx(value_of(S, res.alpha_bar, divergence="w2"), rel=1e-12)
    with pytest.raises(ValueError, match="^endpoints: the fixed last level"):
        optimize_schedule(S, 4, endpoints=(None, 1e-310), restarts=0)
    with pytest.raises(ValueError, match="^endpoints: the fixed first level"):
        optimize_schedule(S, 4, endpoints=(1 - 1e-15, None), restarts=0)


def test_an_exactly_matchable_spectrum_reaches_zero_without_nan() -> None:
    """One mode, KL, both ends free: a guard run reached J = 0 and its polish, scaled by max(J, 1e-300), overflowed
    into NaN levels ("log_snr must not be NaN")."""
    res = optimize_schedule(np.ones(1), 6, divergence="kl", endpoints=(None, None))
    assert np.all(np.isfinite(res.alpha_bar)) and np.all(np.diff(res.alpha_bar) > 0)
    assert 0.0 <= res.value <= 1e-12 and res.value == pytest.approx(value_of(np.ones(1), res.alpha_bar), abs=1e-15)


@pytest.mark.parametrize("divergence", ["kl", "kl-reverse", "w2"])
def test_tiny_spectra_get_finite_values_that_match_the_gradient_path(divergence) -> None:
    """S ~ 1e-200: the value path took P = 0 (underflow) and reported inf for every schedule, NaN ratios and
    success; it now evaluates the same ratio form as divergence_and_grad."""
    S = power_law((8, 8), alpha=2.0) * 1e-200
    res = optimize_schedule(S, 4, restarts=0, divergence=divergence)
    assert math.isfinite(res.value) and all(math.isfinite(v) for v in res.baselines.values())
    assert res.value == pytest.approx(value_of(S, res.alpha_bar, divergence=divergence), rel=1e-12, abs=0)
    ab = sch.standard_schedule("cosine", 4)
    assert res.baselines["cosine"] == pytest.approx(value_of(S, ab, divergence=divergence), rel=1e-12, abs=0)


def test_weights_whose_sum_overflows_are_named_and_scaled_sums_are_exact() -> None:
    S = power_law((8, 8), alpha=2.0)  # every value repeats on the FFT grid: weights are summed per value
    ab = [0.01, 0.3, 0.9]
    with pytest.raises(ValueError, match=r"^weights: .*largest 3e\+307"):
        symsched.divergence_and_grad(S, ab, weights=np.full(S.shape, 3e307))
    J1, g1 = symsched.divergence_and_grad(S, ab)
    J, g = symsched.divergence_and_grad(S, ab, weights=np.full(S.shape, 2.0**1000))
    assert J == J1 * 2.0**1000 and np.array_equal(g, g1 * 2.0**1000)
    with pytest.raises(ValueError, match="weights"):
        optimize_schedule(S, 4, weights=np.full(S.shape, 3e307), restarts=0)


def test_divergence_and_grad_defaults_to_w2_like_everything_else() -> None:
    S = synthetic_spectrum()
    ab = sch.standard_schedule("cosine", 5)
    assert symsched.divergence_and_grad(S, ab)[0] == symsched.divergence_and_grad(S, ab, divergence="w2")[0]
    sig = sch.alpha_bar_to_sigmas(ab)
    assert symsched.divergence_and_grad_ve(S, sig)[0] == symsched.divergence_and_grad_ve(S, sig, divergence="w2")[0]
    assert optimize_schedule(S, 3, restarts=0).divergence == "w2"


# ---------------------------------------------------------------------------------------------
# the sampler's own settings: library defaults recorded, eta and other settings passed through
# ---------------------------------------------------------------------------------------------

_PL = power_law((12, 12), alpha=2.0)


def _ve_value(S, ab, sampler, **kw) -> float:
    return float(symsched.divergence_and_grad_ve(S, sch.alpha_bar_to_sigmas(ab), sampler=sampler, divergence="w2",
                                                 **kw)[0])


def test_ancestral_sampler_runs_and_records_its_library_eta() -> None:
    """k-diffusion's euler_ancestral defaults to eta = 1: the optimum's value is that objective (not eta = 0's),
    and the result says so (it used to report eta = 0 while optimising eta = 1)."""
    res = symsched.optimize_schedule(_PL, 4, sampler="euler_ancestral", restarts=0)
    assert res.eta == 1.0 and res.settings == {"eta": 1.0, "s_noise": 1.0}
    assert res.value == pytest.approx(_ve_value(_PL, res.alpha_bar, "euler_ancestral", eta=1.0), rel=1e-12)
    assert abs(res.value - _ve_value(_PL, res.alpha_bar, "euler_ancestral", eta=0.0)) > 1e-3 * res.value
    d = res.to_dict()
    assert d["eta"] == 1.0 and d["settings"] == {"eta": 1.0, "s_noise": 1.0}
    assert "eta=1" in res.summary().splitlines()[0]
    # the baselines and the metrics are evaluated with the same settings
    name, ab = next(iter(res.baseline_schedules.items()))
    assert res.baselines[name] == pytest.approx(_ve_value(_PL, ab, "euler_ancestral", eta=1.0), rel=1e-9)
    m = schedule_metrics(_PL, res.alpha_bar, sampler="euler_ancestral", **res.settings)
    assert m["w2"] ** 2 == pytest.approx(res.value, rel=1e-9) and res.w2 == pytest.approx(m["w2"], rel=1e-12)


def test_eta_and_settings_reach_the_sampler() -> None:
    res = symsched.optimize_schedule(_PL, 4, sampler="euler_ancestral", eta=0.0, s_noise=1.0, restarts=0)
    assert res.eta == 0.0 and res.settings["eta"] == 0.0
    assert res.value == pytest.approx(_ve_value(_PL, res.alpha_bar, "euler_ancestral", eta=0.0), rel=1e-12)
    res3 = symsched.optimize_schedule(_PL, 6, sampler="dpmsolver_multistep", solver_order=3, restarts=0)
    assert res3.settings["solver_order"] == 3 and res3.eta is None and res3.variance is None
    v3 = float(symsched.divergence_and_grad(_PL, res3.alpha_bar, sampler="dpmsolver_multistep", solver_order=3,
                                            divergence="w2")[0])
    v2 = float(symsched.divergence_and_grad(_PL, res3.alpha_bar, sampler="dpmsolver_multistep", solver_order=2,
                                            divergence="w2")[0])
    # (a near-perfect optimum: its W2 cancels, so the levels' last-bit rounding to alpha_bar shows at 1e-8)
    assert res3.value == pytest.approx(v3, rel=1e-7) and abs(v3 - v2) > 1e-3 * v3
    assert "solver_order=3" in res3.summary().splitlines()[0]
    ddpm = symsched.optimize_schedule(_PL, 3, sampler="ddpm", variance="beta", restarts=0)
    assert ddpm.variance == "beta" and ddpm.settings == {"variance": "beta"} and ddpm.eta is None


@pytest.mark.parametrize("kw, match", [
    (dict(sampler="ddim", s_noise=1.0), "sampler 'ddim' has no setting 's_noise'"),
    (dict(sampler="euler", eta=0.5), "eta applies only to samplers with an eta parameter"),
    (dict(sampler="dpmsolver_multistep", solver_order=5), "solver_order must be one of"),
    (dict(sampler="ddim", eta=1.5), "eta must lie in"),
])
def test_bad_sampler_settings_are_refused_before_work(kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        symsched.optimize_schedule(_PL, 3, **kw)
    with pytest.raises(TypeError, match="eta"):
        symsched.optimize_schedule(_PL, 3, sampler="euler_ancestral", eta="0.5")


def test_compare_schedules_passes_settings_to_every_row() -> None:
    table = symsched.compare_schedules(_PL, [3], sampler="euler_ancestral", eta=0.5, restarts=0)
    res = table.results[3]
    assert res.settings["eta"] == 0.5
    row = next(r for r in table.rows if r["schedule"] != "optimised")
    m = schedule_metrics(_PL, res.baseline_schedules[row["schedule"]], sampler="euler_ancestral", eta=0.5)
    assert row["w2"] == pytest.approx(m["w2"], rel=1e-12)
    m1 = schedule_metrics(_PL, res.baseline_schedules[row["schedule"]], sampler="euler_ancestral")
    assert abs(m1["w2"] - row["w2"]) > 1e-6 * row["w2"]  # the library default (eta = 1) is another number


def test_heuristic_fit_of_an_ancestral_optimum_measures_its_own_objective() -> None:
    from symsched.insight import fit_heuristics

    res = symsched.optimize_schedule(_PL, 4, sampler="euler_ancestral", eta=0.3, restarts=0)
    fit = fit_heuristics(res, _PL)
    assert fit.value == pytest.approx(res.value, rel=1e-9)


def test_a_side_metric_beyond_float64_does_not_sink_the_result() -> None:
    """Spectra near the float64 maximum: W2 squared overflows although the objective (reverse KL) and W2 itself
    do not; the result reports W2 from the scaled sum (as w2_distance computes it) and no warning escapes."""
    import warnings

    S = np.array([1e308, 1.7e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = symsched.optimize_schedule(S, 3, divergence="kl-reverse", restarts=0)
    P = symsched.output_spectrum(S, res.alpha_bar)
    assert math.isfinite(res.value) and res.value == pytest.approx(symsched.kl_divergence(P, S), rel=1e-9)
    amp = np.abs(np.sqrt(P) - np.sqrt(S))
    assert res.w2 == pytest.approx(amp.max() * math.sqrt(np.sum((amp / amp.max()) ** 2)), rel=1e-9)
    assert res.w2 > math.sqrt(np.finfo(np.float64).max)  # W2 squared is genuinely beyond float64


def test_an_objective_infinite_everywhere_is_an_error_not_a_success() -> None:
    """break-test 45: KL with DEIS (which stops at sigma(alphas_cumprod[0]) > 0) on a spectrum with zero modes is
    +inf for every schedule; the optimiser reported success with an arbitrary schedule. W2 stays finite."""
    S = np.r_[np.zeros(3), np.geomspace(1e-2, 1e2, 20)]
    J, _ = symsched.divergence_and_grad(S, symsched.schedules.standard_schedule("cosine", 5),
                                        sampler="deis_multistep", divergence="kl")
    assert J == np.inf  # the premise, for any schedule
    with pytest.raises(ValueError, match=r"divergence: the objective is \+inf at the start schedule"):
        symsched.optimize_schedule(S, 5, sampler="deis_multistep", divergence="kl")
    assert np.isfinite(symsched.optimize_schedule(S, 5, sampler="deis_multistep", divergence="w2").value)


def test_an_all_zero_spectrum_says_that_every_schedule_scores_0() -> None:
    """break-test 54: an all-zero spectrum (a folder of constant images) was 'optimised' silently: every schedule
    scores 0 (the samplers end on the exact denoiser, 0 for S = 0), so the result is arbitrary. The result (which
    explain, fit_heuristics and the plots take, tests/test_insight_explain.py) now says so; DEIS leaves a noise floor
    (P(0) > 0), which a schedule can lower: optimised, without the message."""
    from symsched.optimize import ALL_ZERO_NOTE

    res = optimize_schedule(np.zeros(10), 3)
    assert res.value == 0.0 and ALL_ZERO_NOTE.format(sampler="ddim") in res.message and res.indifferent
    assert res.to_dict()["indifferent"] is True  # (in the JSON the optimize command writes)
    assert not optimize_schedule(np.array([0.0, 1e-6]), 3).indifferent  # one faint mode makes schedules differ
    # the modes that count are those with weight (audit: S = [1, 0] with weights [0, 1] scored 0 everywhere, silently)
    res = optimize_schedule(np.array([1.0, 0.0]), 3, weights=np.array([0.0, 1.0]))
    assert res.value == 0.0 and res.indifferent and ALL_ZERO_NOTE.format(sampler="ddim") in res.message
    assert not optimize_schedule(np.array([1.0, 0.0]), 3, weights=np.array([1.0, 1.0])).indifferent
    res = optimize_schedule(np.zeros(10), 3, sampler="deis_multistep")
    floor = symsched.output_spectrum(np.zeros(1), res.alpha_bar, sampler="deis_multistep")
    assert res.value > 0 and res.value == pytest.approx(10 * floor[0], rel=1e-9)  # W2^2 = sum (sqrt P - 0)^2
    assert "every mode of the spectrum is 0" not in res.message and not res.indifferent


def test_an_optimum_whose_gradient_the_engine_refuses_is_noted() -> None:
    """break-test (optimize): DPM-Solver++ 3M on natural patches returned a schedule whose first two levels were
    1.9e-5 apart in log-SNR; divergence_and_grad refused it (its multistep coefficients cancel in the gradient sweep)
    although output_spectrum evaluates it. The result now says so; a schedule without such a gap gets no note."""
    from symsched import optimize as opt
    from symsched import spectra as sp

    S = sp.load_spectrum("builtin:natural-patches")[::4, ::4]
    obj = opt._Objective(S, None, sampler="dpmsolver_multistep", eta=None, variance="posterior", divergence="w2",
                         init="white", extra={"solver_order": 3})
    for gap, noted in ((1e-6, True), (1e-2, False)):
        ell = np.array([-5.36405, -5.36405 + gap, 2.8, 8.8, 9.15, 9.26, 17.7, 19.0])
        ab = 1.0 / (1.0 + np.exp(-ell))
        note = opt._gradient_note(obj, ab)
        assert (note is not None) == noted, note
        refused = False
        try:
            symsched.divergence_and_grad(S, ab, divergence="w2", sampler="dpmsolver_multistep", solver_order=3)
        except ValueError:
            refused = True
        assert refused == noted
        assert np.all(np.isfinite(symsched.output_spectrum(S, ab, sampler="dpmsolver_multistep", solver_order=3)))
    assert note is None
    ell[1] = ell[0] + 1e-6
    note = opt._gradient_note(obj, 1.0 / (1.0 + np.exp(-ell)))
    assert note.startswith(opt.GRADIENT_NOTE) and "levels, 0 and 1, are 1e-06 apart" in note
    assert note.endswith(opt.GRADIENT_NOTE_END)


@pytest.mark.parametrize("w", [2.0**-1074, 1e-310, 2.0**-70, 2.0**100])
def test_a_uniform_weight_never_moves_the_optimum(w) -> None:
    """break-test (optimize): weights of 2^-1074 moved the optimum (log-SNR -3.123 against -3.427): the search saw a
    subnormal J of one or two digits. It now runs on the scaled objective; values come back in the user's units.
    A power-of-two weight scales J exactly: the same optimum, bit for bit. 1e-310 (a subnormal, scaled up to
    ~0.575 * 2^k) multiplies J by a number that is not a power of two, which rounds J and its gradient differently,
    so L-BFGS-B stops at the same optimum within its tolerance (~2e-10 in log-SNR seen), not bit for bit."""
    S = symsched.spectra.power_law((4, 4), alpha=2.0)
    ref = optimize_schedule(S, 3)
    res = optimize_schedule(S, 3, weights=np.full(S.shape, w))
    if np.frexp(w)[0] == 0.5:
        np.testing.assert_array_equal(res.log_snr, ref.log_snr)
    else:
        np.testing.assert_allclose(res.log_snr, ref.log_snr, rtol=0, atol=1e-7)  # the fault moved it by 0.3
    assert res.value == pytest.approx(ref.value * w, rel=1e-12 if w > 1e-300 else 0.1, abs=0)
    assert res.baselines["karras"] == pytest.approx(ref.baselines["karras"] * w, rel=1e-12 if w > 1e-300 else 0.1, abs=0)


def test_the_gradient_note_names_the_closest_finite_pair(monkeypatch) -> None:
    """review: with a zero-SNR first level (an infinite first gap) the note named levels 0 and 1, 'inf apart'; and
    another refusal (weights beyond float64) is not a merged pair of levels."""
    from symsched import api
    from symsched import optimize as opt

    obj = opt._Objective(np.array([0.5, 2.0]), None, sampler="dpmsolver_multistep", eta=None, variance="posterior",
                         divergence="w2", init="white", extra={"solver_order": 3})

    def cancel(*a, **k):
        raise ValueError("alpha_bar: this schedule makes the sampler's multistep coefficients cancel in float64")

    monkeypatch.setattr(api, "grouped_value_and_grad", cancel)
    note = opt._gradient_note(obj, np.array([0.0, 0.3, 0.300001, 0.9]))
    assert "levels, 1 and 2, are 4.8e-06 apart" in note
    monkeypatch.setattr(api, "grouped_value_and_grad", lambda *a, **k: (_ for _ in ()).throw(ValueError("weights: x")))
    assert opt._gradient_note(obj, np.array([0.0, 0.3, 0.300001, 0.9])) is None


@pytest.mark.parametrize("spectrum, K, kw", [
    (np.ones(4), 1, dict(endpoints=(0.0, None))),                       # one step from pure noise: P = 0
    (np.array([0.0, 1.0]), 2, dict(sampler="deis_multistep", endpoints=(1e-12, 1 - 1e-12))),  # DEIS: P(0) > 0
])
def test_levels_fixed_by_the_endpoints_with_an_infinite_kl_raise_infinite_objective(spectrum, K, kw):
    """break-test: with every level fixed by the endpoints the search was skipped and an objective of +inf came
    back as success (value inf); with a free level the same divergence raised InfiniteObjective."""
    with pytest.raises(InfiniteObjective, match=r"^divergence: the endpoints fix every level and the objective is"):
        symsched.optimize_schedule(spectrum, K, divergence="kl", **kw)


def test_levels_fixed_by_the_endpoints_with_a_finite_objective_are_returned():
    """The K = 1 step from pure noise outputs P = 0, so W2^2 = sum (sqrt(0) - sqrt(1))^2 = 4 on four unit modes."""
    res = symsched.optimize_schedule(np.ones(4), 1, endpoints=(0.0, None), divergence="w2")
    assert res.value == pytest.approx(4.0, rel=1e-12) and res.success
    res = symsched.optimize_schedule(np.ones(4), 2, endpoints=(0.0, 0.5), divergence="kl")  # two steps: P > 0
    assert math.isfinite(res.value) and res.success and res.alpha_bar.tolist() == [0.0, 0.5]


def test_ratio_to_the_optimum_of_zero_and_infinite_values():
    assert _ratio_to_optimum(3.0, 1.5) == 2.0
    assert _ratio_to_optimum(0.0, 0.0) == 1.0 and _ratio_to_optimum(1.0, 0.0) == math.inf
    assert _ratio_to_optimum(math.inf, math.inf) == 1.0 and _ratio_to_optimum(2.0, math.inf) == 0.0


def test_a_level_on_the_churn_windows_end_is_decided_alike_in_the_search_the_result_and_the_export() -> None:
    """Review of 4 December: the search decided k-diffusion's churn window on exp(-l/2) = 80.00000000000004, the
    result and its exports on alpha_bar_to_sigmas = 80.0: with s_tmax = 80 the search optimised a sampler without
    churn at the first level and reported the value of one with it (82.72 for levels whose own optimum is 82.67).
    The search's derived sigmas take the plan's slack; the result's sigmas are the exported ones."""
    from symsched.export import to_k_diffusion_sigmas

    S = symsched.spectra.power_law((8, 8), alpha=2.0)
    kw = dict(divergence="w2", restarts=0, endpoints=(1 / (1 + 80.0**2), None), sampler="euler", s_churn=2.0)
    r = optimize_schedule(S, 4, s_tmax=80.0, **kw)
    free = optimize_schedule(S, 4, s_tmax=np.inf, **kw)  # sigma_0 = 80 lies inside both windows
    for sig in (r.sigmas, to_k_diffusion_sigmas(r.alpha_bar)):
        P = symsched.output_spectrum_ve(S, sig, sampler="euler", s_churn=2.0, s_tmax=80.0)
        assert float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2)) == pytest.approx(r.value, rel=1e-12)
    assert r.value == pytest.approx(free.value, rel=1e-12)
    np.testing.assert_array_equal(r.sigmas, to_k_diffusion_sigmas(r.alpha_bar)[:-1])


def _ddim_kl_term_mp(S: float, alpha_bar: np.ndarray):
    """KL term 1/2 (S/P - 1 - log(S/P)) of one mode under DDIM eta = 0 from a white start, at 60 digits: the DDIM
    step written out here (x0 = sqrt(a) S / (a S + 1 - a) x, eps = (x - sqrt(a) x0) / sqrt(1 - a))."""
    import mpmath as mp

    with mp.workdps(60):
        s, g = mp.mpf(S), mp.mpf(1)
        levels = [mp.mpf(float(a)) for a in alpha_bar] + [mp.mpf(1)]
        for a, b in zip(levels[:-1], levels[1:]):
            x0 = mp.sqrt(a) * s / (a * s + 1 - a)
            eps = (1 - mp.sqrt(a) * x0) / mp.sqrt(1 - a)
            g *= mp.sqrt(b) * x0 + mp.sqrt(1 - b) * eps
        q = s / (g * g)
        return (q - 1 - mp.log(q)) / 2  # (an mpf: it may lie beyond float64)


def test_a_kl_beyond_float64_at_every_trial_schedule_is_an_infinite_objective(tmp_path) -> None:
    """break-test: a subnormal mode (S = 1e-320) puts KL ~ S / (2P) beyond float64 at the search's starts; that
    was a plain ValueError, so `symsched report` stopped (exit 2) where it skips a divergence it cannot optimise."""
    import subprocess
    import sys

    S = np.array([1e-320, 1.0])
    for name in ("linear-trailing", "cosine"):  # the mode's own term, at 60 digits, at two of the search's starts
        assert _ddim_kl_term_mp(1e-320, sch.standard_schedule(name, 2)) > np.finfo(np.float64).max
    assert 0 < _ddim_kl_term_mp(1e-320, np.array([0.5, 1 - 1e-12])) < np.finfo(np.float64).max  # (finite elsewhere)
    with pytest.raises(InfiniteObjective, match=r"^divergence: the 'kl' divergence of this spectrum lies beyond the "
                                                r"float64 range for every schedule the search tried.*; e\.g\. KL ~ S / "
                                                r"\(2P\) of modes far below 1e-300\); use divergence='w2'"):
        symsched.optimize_schedule(S, 2, divergence="kl")
    assert symsched.optimize_schedule(S, 2, divergence="w2").success  # W2 is fine
    # (audit of 6 December) W2 squared beyond float64 is not told to use W2, nor given KL's example
    with pytest.raises(InfiniteObjective, match=r"e\.g\. W2 squared of modes near 1e308\); drop or rescale those "
                                                r"modes$"):
        symsched.optimize_schedule([1.7e308] * 3, 3, divergence="w2", restarts=0)
    np.save(tmp_path / "S.npy", S)
    out = subprocess.run([sys.executable, "-m", "symsched", "report", "--spectrum", str(tmp_path / "S.npy"),
                          "--probe-samples", "0", "--steps", "2", "--out", str(tmp_path / "rep"), "--no-progress"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "Skipped: at K=2 of --steps the 'kl' divergence of this spectrum lies beyond the float64 range" in summary


@pytest.mark.parametrize("div", ["w2", "kl", "kl-reverse"])
def test_the_json_says_what_each_number_measures(div) -> None:
    """Audit of 5 December: the report's schedule_w2_K5.json held "w2": 8.6 (W2) next to "baselines" of 88 (W2
    squared, the objective) with nothing to tell them apart. "units" names them; the numbers are checked against the
    public metrics here: value and each baseline are the objective (W2 squared, KL, reverse KL), "w2" is W2."""
    S = synthetic_spectrum()
    d = optimize_schedule(S, 4, divergence=div).to_dict()
    units = d["units"]
    P = symsched.output_spectrum(S, np.array(d["alpha_bar"]))
    objective = {"w2": symsched.w2_distance(P, S) ** 2, "kl": symsched.kl_divergence(S, P),
                 "kl-reverse": symsched.kl_divergence(P, S)}[div]
    assert d["value"] == pytest.approx(objective, rel=1e-12)
    assert units["value"].startswith({"w2": "W2 squared", "kl": "KL(data || generated)",
                                      "kl-reverse": "KL(generated || data)"}[div])
    assert units["baselines"].startswith(units["value"])
    name = "linear-trailing"
    Pb = symsched.output_spectrum(S, sch.standard_schedule(name, 4))
    base = {"w2": symsched.w2_distance(Pb, S) ** 2, "kl": symsched.kl_divergence(S, Pb),
            "kl-reverse": symsched.kl_divergence(Pb, S)}[div]
    assert d["baselines"][name] == pytest.approx(base, rel=1e-12)
    assert d["w2"] == pytest.approx(symsched.w2_distance(P, S), rel=1e-12) and units["w2"].startswith("W2 = sqrt")
    assert d["kl"] == pytest.approx(symsched.kl_divergence(S, P), rel=1e-12) and units["kl"].startswith("KL(data")


def test_the_json_units_say_weighted_when_weights_were_given() -> None:
    """Review of 5 December: with weights=10 "value" was 10x W2 squared while "units" said W2 squared."""
    S = synthetic_spectrum()
    w = np.full(S.shape, 10.0)
    d = optimize_schedule(S, 4, weights=w).to_dict()
    P = symsched.output_spectrum(S, np.array(d["alpha_bar"]))
    assert d["weighted"] is True and d["units"]["value"].startswith("weighted W2 squared = sum(weights * ")
    assert d["value"] == pytest.approx(10 * symsched.w2_distance(P, S) ** 2, rel=1e-12)
    assert d["w2"] == pytest.approx(symsched.w2_distance(P, S), rel=1e-12)  # the metric itself stays unweighted
    assert optimize_schedule(S, 4).to_dict()["weighted"] is False
    # the weight multiplies each mode's whole term (the text first read "1/2 sum(weights * S/P - 1 - log(S/P))")
    assert optimize_schedule(S, 4, divergence="kl", weights=w).to_dict()["units"]["value"] == (
        "weighted KL(data || generated) = 1/2 sum(weights * (S/P - 1 - log(S/P)))")


def _w2_squared(S: np.ndarray, P: np.ndarray, w: np.ndarray | None = None) -> float:
    """W2 squared between N(0, S) and N(0, P) per mode, (sqrt P - sqrt S)^2 summed (weighted), written here."""
    terms = (np.sqrt(P) - np.sqrt(S)) ** 2
    return float(np.sum(terms if w is None else w * terms))


def test_a_flow_sampler_starts_at_pure_noise_and_is_compared_with_the_flow_schedules() -> None:
    """Audit of 5 December: optimize_schedule(S, K, sampler="flow_match_euler") pinned the first level at the DDPM
    grid's 4e-5 (t = 0.994: a schedule FlowMatchEulerDiscreteScheduler does not start from) and compared it only with
    VP schedules, all unfair; `symsched optimize --flow` added the flow ones after the search, outside the plot and
    the list of fair baselines, unweighted next to a weighted optimum. Now a flow sampler starts at t = 1 and
    uniform t and SD3's shift 3 are fair baselines and starts, scored with the weights."""
    S = power_law((8, 8), alpha=2.0)
    w = np.linspace(0.5, 2.0, S.size).reshape(S.shape)
    res = symsched.optimize_schedule(S, 5, sampler="flow_match_euler", weights=w, restarts=0)
    assert res.alpha_bar[0] == 0.0 and res.endpoints[0] == 0.0
    for name, kw in (("flow-uniform", {}), ("flow-sd3", {"shift": 3.0})):
        ab = sch.flow_schedule(name, 5, **kw)
        np.testing.assert_array_equal(res.baseline_schedules[name], ab)
        assert res.feasible[name] and name in res.to_dict()["baselines_meeting_constraints"]
        P = symsched.output_spectrum(S, ab, sampler="flow_match_euler")
        assert res.baselines[name] == pytest.approx(_w2_squared(S, P, w), rel=1e-10)
        assert res.value <= res.baselines[name]
    assert "weighted W2^2" in res.summary()
    vp = symsched.optimize_schedule(S, 5, sampler="ddim", restarts=0)  # a VP sampler keeps the grid's noisiest level
    assert vp.alpha_bar[0] == pytest.approx(sch.training_grid("linear")[-1], rel=1e-12)
    assert not any(n.startswith("flow-") for n in vp.baselines)


def test_baselines_of_the_caller_are_scored_marked_and_started_from() -> None:
    """optimize_schedule(..., baselines={name: alpha_bar}) compares the caller's own schedules like the standard
    ones: scored by the same objective, fair when they meet the constraints, and never better than the optimum."""
    S = power_law((8, 8), alpha=2.0)
    mine = np.array([sch.training_grid("linear")[-1], 0.05, 0.3, 0.7, 0.95])  # starts at the pinned first level
    off = np.array([0.01, 0.05, 0.3, 0.7, 0.95])  # starts elsewhere: not a fair comparison
    res = symsched.optimize_schedule(S, 5, restarts=0, baselines={"mine": mine, "off": off})
    for name, ab in (("mine", mine), ("off", off)):
        assert res.baselines[name] == pytest.approx(_w2_squared(S, symsched.output_spectrum(S, ab)), rel=1e-10)
    assert res.feasible["mine"] and not res.feasible["off"] and res.value <= res.baselines["mine"]
    for bad, err, match in (({"mine": mine[:4]}, ValueError, r"^baselines\['mine'\] must have steps = 5 levels"),
                            ({"karras": mine}, ValueError, r"^baselines: 'karras' is the name of a standard"),
                            ({"x": [0.5, 0.3, 0.2, 0.1, 0.05]}, ValueError, r"^baselines\['x'\]"),
                            ([mine], TypeError, r"^baselines must be a mapping")):
        with pytest.raises(err, match=match):
            symsched.optimize_schedule(S, 5, restarts=0, baselines=bad)


@pytest.mark.parametrize("endpoints, name, what", [((1e-80, None), r"endpoints\[0\] \(first level\)", "noisiest"),
                                                   ((None, 1 - 1e-8), r"endpoints\[1\] \(last level\)", "cleanest")])
def test_a_fixed_level_beyond_the_grid_is_refused_not_moved(endpoints, name, what) -> None:
    """Audit of 6 December: endpoints=(1e-80, None) on the 1000-step grid became its noisiest level 4.0e-5 (log-SNR
    -184 -> -10.1) without a word, while a first level 0 there was refused."""
    S = np.ones(8)
    g = sch.training_grid()
    with pytest.raises(ValueError, match=rf"^{name}: alpha_bar = .* lies beyond the grid's {what} level"):
        optimize_schedule(S, 3, sampler="ddpm", endpoints=endpoints, grid=g, restarts=0)
    # a rounded copy of the end level (within the grid's own outermost gap) is snapped to it, as before
    res = optimize_schedule(S, 3, sampler="ddpm", endpoints=(4.0e-5, None), grid=g, restarts=0)
    assert res.alpha_bar[0] == g[-1]


def test_the_cli_refuses_it_in_one_line(capsys) -> None:
    from symsched.cli import main

    assert main(["optimize", "--steps", "3", "--sampler", "ddpm", "--endpoints", "1e-80,none", "--grid", "1000",
                 "--out", "unused.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "endpoints[0] (first level)" in err and "Traceback" not in err
