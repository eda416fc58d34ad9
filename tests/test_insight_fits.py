"""Heuristic fits (issue 12, item 2): acceptance tests, the families against their sources, bookkeeping.

Expected schedules are derived here from docs/model.md §7.6 and from the papers' formulas, never with the
code under test. Witnesses: diffusers' ``FlowMatchEulerDiscreteScheduler`` (SD3 shift) and the
installed diffusers / k-diffusion source of ``calculate_shift`` (Flux) and
``get_sigmas_polyexponential``, executed from the library files themselves.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

import symsched
from symsched import schedules, spectra
from symsched.insight import fit_heuristics, family_names
from symsched.insight import families as fam


def _equal_angle_log_snr(S: float, ab_first: float, ab_last: float, K: int) -> np.ndarray:
    """docs/model.md §7.6: theta = arctan(sigma / sqrt(S)), equal steps between the fixed end levels; l = -2 log sigma."""
    sig = lambda ab: math.sqrt((1.0 - ab) / ab)  # noqa: E731
    theta = np.linspace(math.atan(sig(ab_first) / math.sqrt(S)), math.atan(sig(ab_last) / math.sqrt(S)), K)
    return -2.0 * np.log(math.sqrt(S) * np.tan(theta))


@pytest.mark.parametrize("divergence", ["kl", "w2"])
def test_flat_spectrum_gives_the_equal_angle_cosine_schedule(divergence) -> None:
    """Acceptance: S = 1, fixed end points -> the optimum is cosine-shaped to 1e-6 in log-SNR."""
    S = np.ones((8, 8))
    K, ends = 8, (0.01, 0.99)
    res = symsched.optimize_schedule(S, K, divergence=divergence, endpoints=ends)
    expected = _equal_angle_log_snr(1.0, *ends, K)
    assert np.max(np.abs(res.log_snr - expected)) <= 1e-6
    fit = fit_heuristics(res, S)
    cos = fit["cosine"]
    assert cos.max_abs <= 1e-6
    assert fit.best.family in ("cosine", "tangent") and fit.best.max_abs <= 1e-6
    assert abs(cos.loss) <= 1e-9 * max(res.value, 1.0)
    # the cosine family with s = 0 *is* the equal-angle schedule (independent formula)
    ab = fam.cosine_offset(K, s=0.0, log_snr_min=expected[0], log_snr_max=expected[-1])
    np.testing.assert_allclose(schedules.alpha_bar_to_log_snr(ab), expected, atol=1e-12)


@pytest.mark.parametrize("divergence,S", [("kl", 5.0), ("w2", 0.2), ("kl", 40.0)])
def test_one_mode_gives_the_tangent_law_as_the_fitted_family(divergence, S) -> None:
    """Acceptance: for one mode the tangent law is the best family, with ~zero residual, and recovers S."""
    K, ends = 6, (1e-3, 0.995)
    res = symsched.optimize_schedule([S], K, divergence=divergence, endpoints=ends)
    np.testing.assert_allclose(res.log_snr, _equal_angle_log_snr(S, *ends, K), atol=1e-6)
    fit = fit_heuristics(res, [S])
    assert fit.best.family == "tangent"
    assert fit.best.rms <= 1e-6 and fit.best.max_abs <= 1e-6
    assert fit.best.params["mode_variance"] == pytest.approx(S, rel=1e-4)
    assert abs(fit.best.loss) <= 1e-9 * res.value
    assert fit.fits[1].rms > 100 * max(fit.best.rms, 1e-9)  # a clear winner


def test_free_end_points_never_fit_worse_and_match_pins_them() -> None:
    S = spectra.load_spectrum("builtin:natural-patches")
    res = symsched.optimize_schedule(S, 8, divergence="w2", restarts=0)
    match = fit_heuristics(res, S)
    free = fit_heuristics(res, S, endpoints="free")
    for f in match.fits:
        assert f.log_snr[0] == res.log_snr[0] and f.log_snr[-1] == res.log_snr[-1]
        assert free[f.family].rms <= f.rms + 1e-9, f.family
        assert free[f.family].n_params == f.n_params + 2


def test_objective_and_loss_are_the_exact_divergence_of_the_fitted_schedule() -> None:
    S = spectra.load_spectrum("builtin:natural-patches")
    res = symsched.optimize_schedule(S, 8, divergence="w2", restarts=0)
    fit = fit_heuristics(res, S)
    for f in fit.fits:
        P = symsched.output_spectrum(S, f.alpha_bar, sampler="ddim")
        w2sq = float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2))
        assert f.value == pytest.approx(w2sq, rel=1e-9), f.family
        assert f.loss == pytest.approx(w2sq - res.value, rel=1e-6, abs=1e-9)
        assert f.loss >= -1e-6 * res.value, f.family  # no heuristic beats the optimum
    rms = [f.rms for f in fit.fits]
    assert rms == sorted(rms)
    md, tex = fit.to_markdown(), fit.to_latex()
    assert md.count("\n") == len(family_names()) + 2 and f"**{fit.best.family}**" in md
    assert r"\begin{tabular}" in tex and r"\textbf{" in tex
    json.dumps(fit.to_dict())
    assert len(fit.plot().axes) == 2


def test_no_family_is_the_optimum_of_the_builtin_spectrum() -> None:
    """README: at K = 10 the W2 optimum is closest to log-linear (RMS ~0.5) and costs ~13 % to replace; the KL
    optimum fits no family well."""
    S = spectra.load_spectrum("builtin:natural-patches")
    w2 = fit_heuristics(symsched.optimize_schedule(S, 10, divergence="w2", restarts=0), S)
    assert w2.best.family == "loglinear" and 0.3 < w2.best.rms < 0.7 and 0.05 < w2.best.relative_loss < 0.3
    kl = fit_heuristics(symsched.optimize_schedule(S, 10, divergence="kl", restarts=0), S)
    assert kl.best.rms > 0.8 and kl.best.relative_loss > 0.5


def test_plain_levels_use_the_given_objective_and_no_spectrum_gives_nan() -> None:
    ab = schedules.standard_schedule("karras", 10)
    fit = fit_heuristics(ab)
    assert math.isnan(fit.best.value) and math.isnan(fit.value)
    assert fit.best.family == "karras" and fit.best.rms < 1e-9 and fit.best.params["rho"] == pytest.approx(7.0)
    S = spectra.power_law((16, 16), alpha=2.0)
    fit2 = fit_heuristics(ab, S, divergence="w2", sampler="euler")
    sig = schedules.alpha_bar_to_sigmas(ab)
    J, _ = symsched.divergence_and_grad_ve(S, sig, divergence="w2", sampler="euler")
    assert fit2.value == pytest.approx(J, rel=1e-12)


@pytest.mark.parametrize("name,model", [("ays-sd15", "sd15"), ("ays-sdxl", "sdxl")])
def test_ays_table_is_its_own_family(name, model) -> None:
    ab = schedules.align_your_steps(10, model=model)
    fit = fit_heuristics(ab, families=[name, "karras"])
    assert fit.best.family == name and fit.best.max_abs < 1e-12
    assert fit.best.params["sigma_max"] == pytest.approx(14.6146412293, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# the families against their sources
# ---------------------------------------------------------------------------------------------


def test_cosine_family_matches_the_cosine_training_grid() -> None:
    """Nichol & Dhariwal's discrete grid (schedules.cosine_betas, a product of betas) at t = 100..900 of 1000."""
    grid = schedules.betas_to_alpha_bar(schedules.cosine_betas(1000, s=0.008))
    ts = np.arange(900, 99, -100)  # noisiest first
    target = schedules.alpha_bar_to_log_snr(grid[ts - 1])  # grid[i] is time (i + 1) / T
    ab = fam.cosine_offset(ts.size, s=0.008, log_snr_min=target[0], log_snr_max=target[-1])
    np.testing.assert_allclose(schedules.alpha_bar_to_log_snr(ab), target, atol=1e-9)
    fit = fit_heuristics(grid[ts - 1])
    # (with both end points matched the offset s is nearly redundant, so only the shape is checked)
    assert fit.best.family == "cosine" and fit.best.max_abs <= 1e-6


def test_sigmoid_family_matches_chens_algorithm() -> None:
    """Chen 2023, Alg. 1: gamma(t) = (v_end - sigmoid((t (end - start) + start) / tau)) / (v_end - v_start)."""
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    start, end, tau = -3.0, 3.0, 0.7
    t = np.linspace(0.85, 0.2, 7)
    gamma = (sig(end / tau) - sig((t * (end - start) + start) / tau)) / (sig(end / tau) - sig(start / tau))
    target = np.log(gamma / (1 - gamma))
    ab = fam.sigmoid(7, tau=tau, log_snr_min=target[0], log_snr_max=target[-1])
    np.testing.assert_allclose(schedules.alpha_bar_to_log_snr(ab), target, atol=1e-9)
    fit = fit_heuristics(gamma)
    assert fit.best.family == "sigmoid" and fit.best.params["tau"] == pytest.approx(tau, rel=1e-6)
    assert fit.best.params["t_max"] == pytest.approx(0.85, rel=1e-6)


def _mp_family(name: str, K: int, lo: float, hi: float, shape: float) -> list:
    """The family's defining formula in mpmath (the papers' coordinate, taken uniform between the ends' values):
    cosine angle phi (offset s = shape), flow time t (shift), sigmoid time t (tau), 400 digits."""
    import mpmath as mp

    with mp.workdps(400):
        return _mp_family_levels(mp, name, K, lo, hi, shape)


def _mp_family_levels(mp, name: str, K: int, lo: float, hi: float, shape: float) -> list:
    M = mp.mpf
    ex = lambda x: 1 / (1 + mp.exp(-x))  # noqa: E731
    if name == "cosine":
        phi0 = mp.pi / 2 * M(shape) / (1 + M(shape))
        coord = lambda l: mp.atan(mp.sqrt(mp.exp(-M(l)) + mp.sin(phi0) ** 2) / mp.cos(phi0))  # noqa: E731
        level = lambda p: 2 * mp.log(mp.cos(p)) - mp.log(mp.sin(p - phi0)) - mp.log(mp.sin(p + phi0))  # noqa: E731
    elif name == "flow":
        coord = lambda l: ex(-(M(l) / 2 + mp.log(M(shape))))  # noqa: E731
        level = lambda t: 2 * mp.log((1 - t) / t) - 2 * mp.log(M(shape))  # noqa: E731
    else:
        tau = math.exp(math.log(shape))  # the float the family takes (its internal shape is log tau)
        x0, x1 = M(-3.0 / tau), M(3.0 / tau)
        v0, v1 = ex(x0), ex(x1)
        coord = lambda l: (mp.log(((1 - ex(M(l))) * v1 + ex(M(l)) * v0)  # noqa: E731
                                  / (1 - ((1 - ex(M(l))) * v1 + ex(M(l)) * v0))) - x0) / (x1 - x0)
        level = lambda t: mp.log(v1 - ex(x0 + t * (x1 - x0))) - mp.log(ex(x0 + t * (x1 - x0)) - v0)  # noqa: E731
    a, b = coord(lo), coord(hi)
    return [float(level(a + (b - a) * M(i) / (K - 1))) for i in range(K)]


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("lo, hi", [(-40.0, -30.0), (25.0, 36.0), (-700.0, 36.0), (-10.0, 12.0), (-745.0, -744.0),
                                    (-745.0, -740.0)])
@pytest.mark.parametrize("name, shape", [("cosine", 0.008), ("cosine", 3.0), ("flow", 3.0), ("flow", 0.01),
                                         ("sigmoid", 1.0), ("sigmoid", 0.3), ("sigmoid", 1e-3), ("sigmoid", 50.0)])
def test_families_keep_every_digit_where_their_coordinate_saturates(name, shape, lo, hi) -> None:
    """Audit of 4 December (the kind of kl_optimal's fault): the cosine angle near pi/2 or its offset, the flow time
    near 0 or 1 and the sigmoid near either end lost digits when the levels were formed from the coordinate itself
    (sigmoid 6e-3 in log-SNR on (-40, -30), cosine 4e-6 on (25, 36); inf at (-300, 300); a ZeroDivisionError for a
    small tau). Now each is formed from its distances to both ends; reference: the defining formula, mpmath."""
    internal = {"cosine": 0.5 * math.pi * shape / (1.0 + shape), "flow": math.log(shape), "sigmoid": math.log(shape)}
    family = fam.get_family({"flow": "shift"}.get(name, name))
    got = family.levels(9, lo, hi, internal[name])  # the log-SNR levels the fits compare (alpha_bar near 1 holds fewer)
    want = _mp_family(name, 9, lo, hi, shape)
    np.testing.assert_allclose(got, want, rtol=4e-15, atol=4e-15)
    # the fitted parameters' report (t_max, t_min: the coordinate at the ends) from the same helpers, within [0, 1]
    params = family.params(lo, hi, [internal[name]])
    if "t_max" in params:
        assert 0.0 <= params["t_min"] <= params["t_max"] <= 1.0


def _library_function(package: str, relpath: str, name: str, namespace: dict):
    """Execute one function definition from an installed library's source file (no package import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / relpath
    tree = ast.parse(path.read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    ns = dict(namespace)
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), ns)
    return ns[name]


def test_flux_mu_is_diffusers_calculate_shift() -> None:
    calculate_shift = _library_function("diffusers", "pipelines/flux/pipeline_flux.py", "calculate_shift", {})
    for n in (4, 256, 1000, 4096, 16384):
        assert float(fam.flux_mu(n)) == pytest.approx(calculate_shift(n), rel=1e-12, abs=1e-12)
    assert fam.flux_image_seq_len(1024, 1024) == 4096 and fam.flux_image_seq_len(256, 256) == 256


def test_polyexponential_is_k_diffusion_get_sigmas_polyexponential() -> None:
    torch = pytest.importorskip("torch")
    f = _library_function("k_diffusion", "sampling.py", "get_sigmas_polyexponential",
                          {"torch": torch, "math": math, "append_zero": lambda x: torch.cat([x, x.new_zeros([1])])})
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for rho in (0.5, 1.0, 2.5):
            sig = f(9, 0.03, 40.0, rho=rho).numpy()[:-1]
            ab = fam.polyexponential(9, rho=rho, log_snr_min=-2 * math.log(40.0), log_snr_max=-2 * math.log(0.03))
            np.testing.assert_allclose(schedules.alpha_bar_to_sigmas(ab), sig, rtol=1e-12)
    finally:
        torch.set_default_dtype(old)


@pytest.mark.diffusers
def test_flow_shift_is_diffusers_flow_match_euler_shift() -> None:
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)
    base = np.linspace(0.9, 0.1, 8)
    sch.set_timesteps(sigmas=base.tolist())
    t = sch.sigmas.numpy().astype(np.float64)[:-1]  # shifted flow times; a trailing 0 is appended
    np.testing.assert_allclose(t, fam.sd3_time_shift(base, 3.0), rtol=1e-6)
    target = 2.0 * np.log((1.0 - t) / t)
    ab = fam.flow_shift(8, shift=3.0, log_snr_min=target[0], log_snr_max=target[-1])
    np.testing.assert_allclose(schedules.alpha_bar_to_log_snr(ab), target, atol=1e-5)  # diffusers works in float32


def test_rules_and_their_log_snr_offsets() -> None:
    t = np.linspace(0.05, 0.95, 7)
    for s in (0.5, 3.0):
        shifted = fam.sd3_time_shift(t, s)
        l0, l1 = 2 * np.log((1 - t) / t), 2 * np.log((1 - shifted) / shifted)
        np.testing.assert_allclose(l1 - l0, fam.shift_to_log_snr(s), atol=1e-12)
    np.testing.assert_allclose(fam.simple_diffusion_log_snr_shift([64, 128], 32), [-2 * math.log(2), -2 * math.log(4)])
    assert fam.flux_mu(256) == pytest.approx(0.5) and fam.flux_mu(4096) == pytest.approx(1.15)


def test_karras_and_tangent_families_reuse_the_schedules_module() -> None:
    ab = fam.tangent(7, mode_variance=1.0, log_snr_min=-2 * math.log(80.0), log_snr_max=-2 * math.log(0.002))
    np.testing.assert_allclose(ab, schedules.kl_optimal(7), rtol=1e-12)
    kar = fam.get_family("karras").levels(7, -2 * math.log(80.0), -2 * math.log(0.002), math.log(7.0))
    np.testing.assert_allclose(kar, schedules.alpha_bar_to_log_snr(schedules.karras(7)), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(families=["cosine", "ddim"]), "^families entries must be one of"),
        (dict(families="cosine"), "^families must be a sequence of names"),
        (dict(endpoints="loose"), "endpoints must be one of"),
        (dict(divergence="js"), "divergence must be one of"),
        (dict(sampler="plms"), "sampler must be one of"),
    ],
)
def test_fit_errors(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        fit_heuristics(schedules.kl_optimal(5), **kwargs)


def test_family_function_errors() -> None:
    with pytest.raises(ValueError, match="s must be non-negative"):
        fam.cosine_offset(5, s=-0.1)
    with pytest.raises(ValueError, match="log_snr_max must be greater"):
        fam.flow_shift(5, log_snr_min=3.0, log_snr_max=1.0)
    with pytest.raises(ValueError, match="end must be greater than start"):
        fam.sigmoid(5, start=3.0, end=-3.0)
    with pytest.raises(ValueError, match="shift must be positive"):
        fam.sd3_time_shift([0.5], 0.0)
    with pytest.raises(ValueError, match="t must lie in"):
        fam.sd3_time_shift([1.5], 3.0)
    with pytest.raises(ValueError, match="image_seq_len must be positive"):
        fam.flux_mu(-1)
    with pytest.raises(ValueError, match="strictly increasing"):
        fit_heuristics([0.5, 0.2])
    with pytest.raises(ValueError, match=r"^name must be one of 'cosine'.* \(got 'cosin'\)"):
        fam.get_family("cosin")  # the argument's own name
    with pytest.raises(TypeError, match="^name must be"):
        fam.get_family(["cosine"])


@pytest.mark.parametrize("name", ["cosine_offset", "tangent", "flow_shift", "polyexponential", "sigmoid"])
def test_every_family_function_caps_the_number_of_levels(name) -> None:
    from symsched._validate import MAX_STEPS

    fn = getattr(fam, name)
    assert fn(MAX_STEPS).shape == (MAX_STEPS,)
    with pytest.raises(ValueError, match="K must be at most 10000"):
        fn(MAX_STEPS + 1)


# ---------------------------------------------------------------------------------------------
# zero terminal SNR and flow matching (break-test items 2, 3), weights without a spectrum (item 12)
# ---------------------------------------------------------------------------------------------
def _w2_squared(S, ab, sampler):
    P = symsched.output_spectrum(S, ab, sampler=sampler)
    return float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2))


def _flow_alpha_bar(t):
    """x = (1 - t) x0 + t eps: alpha_bar = (1 - t)^2 / ((1 - t)^2 + t^2), written here independently."""
    t = np.asarray(t, dtype=np.float64)
    return (1.0 - t) ** 2 / ((1.0 - t) ** 2 + t**2)


def test_a_zero_snr_first_level_is_a_fixed_end_and_the_finite_levels_are_fitted() -> None:
    """Karras (rho = 7) on the finite levels after alpha_bar = 0: recovered exactly, and the zero level kept."""
    K, rho, smax, smin = 6, 7.0, 40.0, 0.05
    r = np.linspace(0.0, 1.0, K - 1)
    sig = (smax ** (1 / rho) + r * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho  # Karras eq. 5
    ab = np.concatenate(([0.0], 1.0 / (1.0 + sig**2)))
    S = spectra.power_law((8, 8), alpha=2.0)
    for endpoints in ("match", "free"):
        fit = fit_heuristics(ab, S, divergence="w2", endpoints=endpoints)
        assert fit.log_snr[0] == -np.inf and fit.best.family == "karras", endpoints
        assert fit.best.rms < 1e-6 and fit.best.params["rho"] == pytest.approx(rho, rel=1e-5)
        assert fit.best.params["sigma_max"] == pytest.approx(smax, rel=1e-6)
        for f in fit.fits:
            assert f.alpha_bar[0] == 0.0 and f.log_snr[0] == -np.inf and f.alpha_bar.size == K, f.family
            assert math.isfinite(f.rms) and math.isfinite(f.max_abs) and f.params, f.family
            assert f.value == pytest.approx(_w2_squared(S, f.alpha_bar, "ddim"), rel=1e-9), f.family
        assert fit.value == pytest.approx(_w2_squared(S, ab, "ddim"), rel=1e-9)
        assert "nan" not in fit.to_markdown() and "nan" not in fit.to_latex()


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("sampler", ["ddim", "flow_match_euler"])
def test_zero_snr_optima_are_fitted_without_nan(sampler) -> None:
    """The break-test case: optimum with endpoints=(0, None); every family fitted, none beats the optimum."""
    S = spectra.power_law((8, 8), alpha=2.0)
    o = symsched.optimize_schedule(S, 5, sampler=sampler, divergence="w2", endpoints=(0.0, None), restarts=0)
    assert o.alpha_bar[0] == 0.0
    for endpoints in ("match", "free"):
        fit = fit_heuristics(o, S, endpoints=endpoints)
        assert fit.sampler == sampler
        for f in fit.fits:
            assert f.alpha_bar[0] == 0.0 and math.isfinite(f.rms) and math.isfinite(f.value), f.family
            assert f.value == pytest.approx(_w2_squared(S, f.alpha_bar, sampler), rel=1e-9), f.family
            assert f.loss >= -1e-6 * o.value, f.family  # no heuristic beats the optimum
        assert len(fit.plot().axes) == 2  # the fixed -inf level plots without an invalid residual
        json.dumps(fit.to_dict())
    sw = symsched.sweep([S], (4, 5), divergence="w2", endpoints=(0.0, None), restarts=0, n_jobs=1,
                        sampler=sampler).fit_heuristics()
    assert "nan" not in sw.to_markdown() and "nan" not in sw.to_latex()


def test_flow_matching_optimum_is_fitted_by_the_shift_family() -> None:
    """SD3: t' = s t / (1 + (s - 1) t) with t = 1 - i/K (t = 1 first: alpha_bar = 0); the shift family on the
    finite levels is this schedule, so it is recovered with its shift; objectives measured with the flow sampler."""
    K, s = 6, 3.0
    t = 1.0 - np.arange(K) / K
    ab = _flow_alpha_bar(s * t / (1.0 + (s - 1.0) * t))
    S = spectra.power_law((8, 8), alpha=2.0)
    fit = fit_heuristics(ab, S, sampler="flow_match_heun", divergence="w2")
    assert fit.best.family == "shift" and fit.best.rms < 1e-9
    assert fit.best.params["shift"] == pytest.approx(s, rel=1e-7)
    assert fit.value == pytest.approx(_w2_squared(S, ab, "flow_match_heun"), rel=1e-9)
    assert fit.best.loss == pytest.approx(0.0, abs=1e-9 * fit.value)


def test_a_schedule_of_only_alpha_bar_zero_and_weights_without_a_spectrum_are_refused() -> None:
    with pytest.raises(ValueError, match="schedule: its only level is alpha_bar = 0"):
        fit_heuristics([0.0])
    with pytest.raises(ValueError, match="weights: given without a spectrum"):
        fit_heuristics(schedules.kl_optimal(5), weights=np.ones(4))


def test_relative_loss_of_a_zero_optimum() -> None:
    """0/0 (every schedule generates an all-zero spectrum exactly) is 0 %; a loss against a zero optimum is '–'."""
    from symsched.insight.fits import FamilyFit

    z = np.zeros(3)
    assert FamilyFit("x", {}, z, z, 0.0, 0.0, value=0.0, loss=0.0).relative_loss == 0.0
    assert math.isnan(FamilyFit("x", {}, z, z, 0.0, 0.0, value=1.0, loss=1.0).relative_loss)
    S = np.zeros((8, 8))
    fit = fit_heuristics(symsched.optimize_schedule(S, 4, divergence="w2", restarts=0), S)
    assert fit.value == 0.0 and all(f.relative_loss == 0.0 for f in fit.fits)
    row = fit.to_markdown().splitlines()[2]
    assert row.endswith("| 0 | 0 | 0 |") and "nan" not in fit.to_latex()


def test_an_optimize_result_is_measured_on_the_spectrum_given() -> None:
    """fit_heuristics(result, spectrum): target and families on that spectrum (break-test: it was ignored)."""
    S = spectra.power_law((8, 8), alpha=2.0)
    res = symsched.optimize_schedule(S, 4, divergence="w2", restarts=0)
    same = fit_heuristics(res, S)
    assert same.value == pytest.approx(res.value, rel=1e-12)  # the spectrum it was optimised for
    S2 = 100.0 * S
    P = symsched.output_spectrum(S2, res.alpha_bar, sampler="ddim")
    w2sq = float(np.sum((np.sqrt(P) - np.sqrt(S2)) ** 2))  # W2^2 of the result's levels on S2, by hand
    other = fit_heuristics(res, S2)
    assert other.value == pytest.approx(w2sq, rel=1e-9) and other.value != pytest.approx(res.value, rel=1e-3)
    for f in other.fits:
        assert f.loss == pytest.approx(f.value - w2sq, rel=1e-9, abs=1e-9), f.family
    assert fit_heuristics(res).value == res.value  # no spectrum: the result's own value
    with pytest.raises(ValueError, match="spectrum"):
        fit_heuristics(res, np.array([1.0, -1.0]))


def test_plain_levels_default_to_the_optimisers_divergence() -> None:
    from symsched.insight.fits import schedule_objective
    from symsched.optimize import DEFAULT_DIVERGENCE

    assert DEFAULT_DIVERGENCE == "w2"
    ab = schedules.standard_schedule("karras", 6)
    S = spectra.power_law((8, 8), alpha=2.0)
    P = symsched.output_spectrum(S, ab, sampler="ddim")
    w2sq = float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2))
    fit = fit_heuristics(ab, S)
    assert fit.divergence == "w2" and fit.value == pytest.approx(w2sq, rel=1e-9)
    assert schedule_objective(S, ab) == pytest.approx(w2sq, rel=1e-9)


@pytest.mark.parametrize("s", [0.0, 0.008, 0.3, 2.0, 10.0])
def test_cosine_fit_recovers_the_offset_and_times_it_was_built_with(s) -> None:
    """break-test E: the fitted s, t_max and t_min are those of the schedule (Nichol & Dhariwal eq. 17, computed
    here), not of another one (the fit read its angle phi0 as sin^2 phi0: s = 0.3 came back as 0.699)."""
    phi = lambda t: 0.5 * math.pi * (t + s) / (1 + s)  # noqa: E731
    t = np.linspace(0.9, 0.05, 9)
    ab = np.cos(phi(t)) ** 2 / math.cos(phi(0.0)) ** 2
    fit = fit_heuristics(ab)["cosine"]
    assert fit.rms < 1e-9
    assert fit.params["s"] == pytest.approx(s, rel=1e-7, abs=1e-9)
    assert fit.params["t_max"] == pytest.approx(0.9, rel=1e-7) and fit.params["t_min"] == pytest.approx(0.05, rel=1e-7)
    again = fam.cosine_offset(9, s=fit.params["s"], log_snr_min=fit.log_snr[0], log_snr_max=fit.log_snr[-1])
    np.testing.assert_allclose(schedules.alpha_bar_to_log_snr(again), fit.log_snr, atol=1e-9)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_schedule_starting_below_float64s_normal_alpha_bar_is_fitted() -> None:
    """Review of 4 December: a first level of log-SNR -712 (alpha_bar 1e-309, subnormal) overflowed exp(-l) in the
    cosine family's parameter report (OverflowError). The cosine schedule it was built from fits itself, reporting
    its own s and a t_max of 1 (the first level's time, 1 - O(e^-356)); t_min from eq. 17 computed here."""
    s = 0.008
    ab = fam.cosine_offset(8, s=s, log_snr_min=-712.0, log_snr_max=10.0)
    fit = fit_heuristics(ab, families=["cosine", "sigmoid"])
    assert fit.best.family == "cosine" and fit.best.max_abs < 1e-12
    phi_min = math.atan(math.sqrt(math.exp(-10.0) + math.sin(0.5 * math.pi * s / (1 + s)) ** 2)
                        / math.cos(0.5 * math.pi * s / (1 + s)))  # tan^2 phi = (e^-l + sin^2 phi0) / cos^2 phi0
    assert fit.best.params["s"] == pytest.approx(s, rel=1e-9)
    assert fit.best.params["t_max"] == 1.0
    assert fit.best.params["t_min"] == pytest.approx(phi_min * (1 + s) / (0.5 * math.pi) - s, rel=1e-9)


def test_one_finite_level_fits_every_family_exactly_without_a_shape() -> None:
    """break-test E: one level is every family's one-level schedule (karras and tangent showed the 1e3 penalty)."""
    S = spectra.power_law((8, 8), alpha=2.0)
    for ab in ([0.3], [0.0, 0.3]):
        fit = fit_heuristics(ab, S)
        for f in fit.fits:
            assert f.rms == 0.0 and f.max_abs == 0.0 and f.params == {} and f.n_params == 0, f.family
            assert f.alpha_bar[-1] == pytest.approx(0.3, rel=1e-14)
        assert "1e+03" not in fit.to_markdown()


def test_fit_dicts_are_strict_json_at_zero_terminal_snr() -> None:
    """break-test E: to_dict is JSON-ready with allow_nan=False (-inf as a string, as every symsched JSON file)."""
    S = spectra.power_law((8, 8), alpha=2.0)
    res = symsched.optimize_schedule(S, 4, endpoints=(0.0, None), restarts=0)
    d = fit_heuristics(res, S).to_dict()
    assert json.loads(json.dumps(d, allow_nan=False))["target_log_snr"][0] == "-inf"
    assert json.loads(json.dumps(res.to_dict(), allow_nan=False))["sigmas"][0] == "inf"
    sw = symsched.sweep([S, 2 * S], 3, values=np.array([2, 3]), n_jobs=1, restarts=0, endpoints=(0.0, None))
    doc = json.loads(json.dumps(sw.to_dict(), allow_nan=False))
    assert [r["parameter"] for r in doc["results"]] == [2, 3] and doc["results"][0]["log_snr"][0] == "-inf"


def test_two_finite_levels_fit_every_family_without_a_shape() -> None:
    """break-test 49: with two levels every family passes through both (its end points), so its shape parameter is
    undetermined; it was reported (cosine s=0, tangent mode_variance=0.0183 on a flat spectrum). Three levels do
    determine it (the companion)."""
    S = np.ones(16)
    for ab in ([0.2, 0.7], [0.0, 0.2, 0.7]):  # two finite levels, the second after a pure-noise first level
        fit = fit_heuristics(ab, S)
        for f in fit.fits:
            assert f.rms < 1e-12 and f.params == {} and f.n_params == 0, (ab, f.family, f.params)
    three = fit_heuristics([0.2, 0.5, 0.7], S)
    assert three["cosine"].params and three["cosine"].n_params == 1


def test_the_objective_is_its_value_alone_where_the_gradient_overflows() -> None:
    """break-test 49: fit_heuristics computed the gradient it never used, and for S up to 1e300 dJ/d alpha_bar
    overflows float64: a valid optimum (KL 1.24e304) was refused with advice (wrt='log_snr') it has no argument for.
    The value alone is the optimiser's own (compared with OptimizeResult.value, another code path)."""
    from symsched.insight.fits import schedule_objective

    S = np.array([1e300, 1.0, 1e-300])
    opt = symsched.optimize_schedule(S, 1, divergence="kl", restarts=0)
    with pytest.raises(ValueError, match="overflows float64"):  # the gradient path refuses these levels
        symsched.divergence_and_grad(S, opt.alpha_bar, divergence="kl")
    fit = fit_heuristics(opt, S)
    assert fit.value == pytest.approx(opt.value, rel=1e-12) and math.isfinite(fit.value)
    # the value equals divergence_and_grad's where both work, for VP, VE, flow and multistep samplers and weights
    S2, ab, w = np.array([0.5, 2.0, 3.0]), np.array([0.1, 0.5, 0.9]), np.array([1.0, 2.0, 3.0])
    for sampler in ("ddim", "dpmpp_2m", "flow_match_euler"):
        ref = symsched.divergence_and_grad(S2, ab, sampler=sampler, weights=w)[0]
        assert schedule_objective(S2, ab, sampler=sampler, weights=w) == pytest.approx(ref, rel=1e-13), sampler
    ref = symsched.divergence_and_grad_ve(S2, schedules.alpha_bar_to_sigmas(ab), sampler="euler", weights=w)[0]
    assert schedule_objective(S2, ab, sampler="euler", weights=w) == pytest.approx(ref, rel=1e-13)


def test_levels_that_collapse_in_alpha_bar_are_no_fit() -> None:
    """break-test 49: on S = [1e300, 1, 1e-300], K = 4, a family's levels distinct in log-SNR collapsed to one float64
    alpha_bar (0.999999998 three times); it was ranked best with RMS 2e-5 and no objective. Every reported fit is now
    a valid schedule with its objective."""
    S = np.array([1e300, 1.0, 1e-300])
    fit = fit_heuristics(symsched.optimize_schedule(S, 4, divergence="kl", restarts=0), S)
    for f in fit.fits:
        if math.isfinite(f.rms):
            assert np.all(np.diff(f.alpha_bar) > 0) and math.isfinite(f.value), f.family
        else:
            assert np.all(np.isnan(f.alpha_bar)), f.family
    assert math.isfinite(fit.best.rms) and math.isfinite(fit.best.value)


def test_a_loss_within_rounding_prints_as_zero_not_as_a_negative_loss() -> None:
    """break-test 49: "lost -7.9e-14 %" (the two evaluations' rounding) read as a gain. A loss within ROUNDING of the
    objective prints "≈0"; an exact 0 prints "0"; a real loss, and an undefined one with its true reason, are kept."""
    from symsched.insight.fits import ROUNDING, FamilyFit, HeuristicFit

    z = np.array([0.2, 0.6, 0.9])

    def f(value: float, loss: float) -> FamilyFit:
        return FamilyFit("cosine", {}, z, z, 0.1, 0.1, value=value, loss=loss)

    assert ROUNDING == 1e-12
    tiny = f(2.0e295, -1.59e280)
    assert tiny.loss_is_rounding and tiny.lost_text().startswith("≈0 %")
    assert not f(1.0, 0.0).loss_is_rounding and f(1.0, 0.0).lost_text() == "0 %"
    real = f(1.01, 0.01)
    assert not real.loss_is_rounding and real.lost_text() == "1 %"
    # audit of 5 December: the report's sentence said "costs 1.2e+02 %"; value 2.2 against the optimum 1.0 is 120 %
    assert f(2.2, 1.2).lost_text() == "120 %" and f(38.17, 37.17).lost_text() == "3717 %"
    assert f(math.nan, math.nan).lost_text() == "– (undefined: no objective for the fitted levels)"
    assert f(1.0, 1.0).lost_text() == "– (undefined: the optimum is 0)"
    table = HeuristicFit(log_snr=z, value=2.0e295, fits=[tiny, real], endpoints="match", divergence="kl",
                         sampler="ddim").to_markdown().splitlines()
    assert table[2].endswith("| ≈0 | ≈0 |") and "-" not in table[2].split("|")[6]
    assert table[3].endswith("| 0.01 | 1 |")


def test_shape_parameters_the_fit_did_not_choose_are_marked() -> None:
    """Audit of 5 December: the sigmoid's tau was printed as fitted (tau=0.0729 on the built-in W2 optimum) where the
    residual is the same to 15 digits for every tau from 0.02 to 0.07 (its small-tau limit, uniform in log-SNR), and
    Karras rho = 200 sat at the search bound unmarked. Target: uniform in log-SNR plus a bump, matched ends."""
    K = 9
    target = np.linspace(-6.0, 6.0, K) + 0.3 * np.sin(np.linspace(0.0, math.pi, K)) ** 2
    fit = fit_heuristics(schedules.log_snr_to_alpha_bar(target))
    # Karras' rho -> inf limit is geometric sigmas (EDM eq. 5), uniform in log-SNR: the bump pulls rho to the bound
    assert fit["karras"].params["rho"] == pytest.approx(200.0, rel=1e-6)
    assert fit["karras"].notes == {"rho": "at search bound"}
    # the sigmoid's residual, evaluated here at two tau far apart, does not move: tau is not determined
    sig = fam.get_family("sigmoid")
    rms = [math.sqrt(np.mean((sig.levels(K, target[0], target[-1], math.log(tau)) - target) ** 2))
           for tau in (0.03, 0.06)]
    assert rms[0] == pytest.approx(rms[1], rel=1e-9)
    assert fit["sigmoid"].notes == {"tau": "not determined"}
    # determined parameters carry no note, nor does the cosine offset at its own bound s = 0 (not a search limit)
    assert fit["loglinear"].notes == {} and fit["shift"].notes == {}
    assert fit["cosine"].params["s"] == pytest.approx(0.0, abs=1e-6) and fit["cosine"].notes == {}
    md = fit.to_markdown()
    assert "(rho at search bound)" in md and "(tau not determined)" in md
    assert json.loads(json.dumps(fit.to_dict()))["fits"][[f.family for f in fit.fits].index("karras")]["notes"] == \
        {"rho": "at search bound"}


def test_a_sweeps_fit_applies_the_objective_it_is_given() -> None:
    """Audit of the insight package (F1): fit_heuristics(SweepResult, divergence=, sampler=, eta=, variance=, init=)
    ignored all five and measured the sweep's own objective; they apply to each schedule as for one optimum."""
    from symsched.insight import sweep

    S = spectra.power_law((8, 8), alpha=2.0)
    res = sweep([S], 5, restarts=0, n_jobs=1)  # W2, DDIM
    kw = dict(divergence="kl", sampler="ddpm", variance="beta", init="exact")
    for fits in (fit_heuristics(res, **kw), res.fit_heuristics(**kw)):
        f = fits.fits[(0, 5)]
        one = fit_heuristics(res.results[(0, 5)], S, **kw)
        assert (f.divergence, f.sampler, f.settings["variance"], f.settings["init"]) == ("kl", "ddpm", "beta", "exact")
        assert f.value == one.value and [g.loss for g in f.fits] == [g.loss for g in one.fits]
    ddim = fit_heuristics(res, eta=0.5).fits[(0, 5)]
    assert ddim.settings["eta"] == 0.5
    assert ddim.value == fit_heuristics(res.results[(0, 5)], S, eta=0.5).value != res.results[(0, 5)].value


def test_a_weighted_optimum_is_fitted_in_its_weighted_objective() -> None:
    """Audit of the insight package (F2): a weighted optimum fitted without its weights was measured in the unweighted
    objective, next to its weighted value, and 'lost' came out negative. The result does not keep the weights: with a
    spectrum they must be given again (a ValueError naming weights otherwise), and then no family beats the optimum."""
    from symsched.insight import sweep
    from symsched.insight.fits import ROUNDING

    S = spectra.power_law((8, 8), alpha=2.0)
    w = np.where(S > 10, 100.0, 1.0)
    opt = symsched.optimize_schedule(S, 6, divergence="w2", weights=w, restarts=0)
    assert opt.weighted
    with pytest.raises(ValueError, match="^weights: the schedule was optimised with weights"):
        fit_heuristics(opt, S)
    assert fit_heuristics(opt).value == opt.value  # no spectrum: its own (weighted) value, no losses
    fit = fit_heuristics(opt, S, weights=w)
    assert fit.value == pytest.approx(opt.value, rel=1e-12)
    assert all(f.loss >= -ROUNDING * fit.value for f in fit.fits if math.isfinite(f.loss))
    res = sweep([S], 6, divergence="w2", weights=w, restarts=0, n_jobs=1)  # a sweep keeps its weights
    sf = res.fit_heuristics().fits[(0, 6)]
    assert sf.value == pytest.approx(res.results[(0, 6)].value, rel=1e-12)
    assert all(f.loss >= -ROUNDING * sf.value for f in sf.fits if math.isfinite(f.loss))


def test_families_are_checked_as_names_of_runs() -> None:
    """Audit of 5 December: ``families=itertools.repeat('cosine')`` was listed whole (MemoryError), ``[1]`` and
    ``['nope']`` were blamed on "family", and ``['cosine', 'cosine']`` fitted the family twice."""
    from symsched._validate import MAX_ENTRIES
    from limit_helpers import Endless

    ab = [0.1, 0.5, 0.9]
    with pytest.raises(ValueError, match=rf"^families must hold at most {MAX_ENTRIES} values \(symsched\."):
        fit_heuristics(ab, families=Endless("cosine", what="families"))
    with pytest.raises(TypeError, match=r"^families entries must be one of 'cosine'.* \(got 1\)"):
        fit_heuristics(ab, families=[1])
    with pytest.raises(ValueError, match=r"^families entries must be one of 'cosine'.* \(got 'nope'\)"):
        fit_heuristics(ab, families=["nope"])
    with pytest.raises(ValueError, match=r"^families must not repeat a value \(got 'cosine' more than once\)"):
        fit_heuristics(ab, families=["cosine", "cosine"])
    for bad in ({"cosine": 1}, {"cosine"}):
        with pytest.raises(TypeError, match=r"^families must be a sequence of names"):
            fit_heuristics(ab, families=bad)
    with pytest.raises(ValueError, match=r"^families must name at least one of"):
        fit_heuristics(ab, families=[])
    assert [f.family for f in fit_heuristics(ab, families=iter(["cosine"])).fits] == ["cosine"]


def test_rms_and_max_abs_are_the_residuals_own_statistics() -> None:
    """mutation run 5 Dec: max_abs = max(residual) without the abs (a negative "max |error|" when the largest
    residual is negative) passed every test. Independent values from each fit's levels and the target."""
    S = spectra.load_spectrum("builtin:natural-patches")
    res = fit_heuristics(symsched.optimize_schedule(S, 6, divergence="w2", restarts=0), S)
    seen_negative = False
    for f in res.fits:
        if not math.isfinite(f.rms):
            continue
        ok = np.isfinite(f.log_snr) & np.isfinite(res.log_snr)
        r = f.log_snr[ok] - res.log_snr[ok]
        seen_negative |= bool(r[np.argmax(np.abs(r))] < 0)
        assert f.max_abs == pytest.approx(float(np.max(np.abs(r))), rel=1e-12, abs=1e-15), f.family
        assert f.rms == pytest.approx(float(np.sqrt(np.mean(r**2))), rel=1e-12, abs=1e-15), f.family
        assert f.max_abs >= f.rms >= 0.0
    assert seen_negative  # some family's largest residual is negative: the abs is exercised


# ---- audit of 6 December (insight)


def test_a_free_fit_that_beats_its_optimum_says_it_left_the_end_points() -> None:
    """With endpoints="free" the families beat the KL optimum by up to 60 % by starting noisier than its pinned
    first level, and the tables called it a loss (a negative one) with nothing to say why."""
    S = np.logspace(-6, 6, 20)
    opt = symsched.optimize_schedule(S, 8, divergence="kl", restarts=0)
    free = fit_heuristics(opt, S, endpoints="free")
    lower = [f for f in free.fits if f.loss < 0 and not f.loss_is_rounding]
    assert lower, "the case of the audit: some family is lower at its own end points"
    for f in free.fits:
        moved = f.log_snr[0] != opt.log_snr[0] or f.log_snr[-1] != opt.log_snr[-1]
        if f in lower:
            assert moved and "end points" in f.notes, f.family
            assert f.notes["end points"].startswith(f"first log-SNR {f.log_snr[0]:.3g}, last {f.log_snr[-1]:.3g},")
            assert "at other end points" in f.lost_text() and f.lost_text().startswith("-")
        else:
            assert "end points" not in f.notes, f.family
    assert "not a better shape" in free.to_markdown()
    for f in fit_heuristics(opt, S).fits:  # matched end points: no such note, and no gain over the optimum
        assert "end points" not in f.notes and f.loss >= -1e-9 * opt.value, f.family


def _sigmoid_reference(K: int, tau: float, lo: float, hi: float) -> np.ndarray:
    """Chen (arXiv 2301.10972) Algorithm 1 in 60-digit arithmetic: t uniform between the times of log-SNR lo and hi,
    gamma(t) = (v_end - sigmoid((t (end - start) + start) / tau)) / (v_end - v_start), start = -3, end = 3."""
    import mpmath as mp

    with mp.workdps(60):
        tau = mp.mpf(tau)
        v0, v1 = mp.mpf(1) / (1 + mp.exp(3 / tau)), mp.mpf(1) / (1 + mp.exp(-3 / tau))

        def a_of(l):  # sigmoid(a) from gamma = expit(l)
            s = (v1 + mp.exp(l) * v0) / (1 + mp.exp(l))
            return mp.log(s / (1 - s))

        a0, a1 = a_of(mp.mpf(lo)), a_of(mp.mpf(hi))
        out = []
        for i in range(K):
            a = a0 + (a1 - a0) * mp.mpf(i) / (K - 1)
            s = 1 / (1 + mp.exp(-a))
            out.append(float(mp.log(v1 - s) - mp.log(s - v0)))
    return np.array(out)


@pytest.mark.parametrize("tau", [1e-300, 1e-18, 1e-16, 1e-3, 0.3, 1.0, 50.0])
def test_the_sigmoid_family_is_exact_for_every_tau(tau) -> None:
    """tau = 1e-16 moved the middle levels by up to 0.5 in log-SNR (a recovered as end/tau - D lost its digits to
    end/tau = 3e16), and tau <= 1e-18 merged two levels into a ValueError."""
    lo, hi = -6.0, 9.0
    got = fam.get_family("sigmoid").levels(7, lo, hi, math.log(tau))
    np.testing.assert_allclose(got, _sigmoid_reference(7, tau, lo, hi), rtol=0, atol=1e-12)
    levels = schedules.alpha_bar_to_log_snr(fam.sigmoid(5, tau=tau))  # the public function, through alpha_bar
    assert np.all(np.diff(levels) > 0)


def test_an_undetermined_sigmoid_tau_is_marked_even_when_the_fit_is_exact() -> None:
    """tau = 0.03 came back as an unmarked 0.11: the "not determined" test was relative to a residual of ~1e-17,
    which any change exceeds; the levels themselves do not move (uniform in log-SNR to ~1e-9 there)."""
    for tau in (0.03, 0.05):
        f = fit_heuristics(fam.sigmoid(8, tau=tau, log_snr_min=-8, log_snr_max=8), families=["sigmoid"])["sigmoid"]
        assert f.rms < 1e-8 and f.notes == {"tau": "not determined"}, tau
    f = fit_heuristics(fam.sigmoid(8, tau=0.3, log_snr_min=-8, log_snr_max=8), families=["sigmoid"])["sigmoid"]
    assert f.params["tau"] == pytest.approx(0.3, rel=1e-6) and f.notes == {}


def test_no_negative_zero_is_printed() -> None:
    from symsched.insight import fit_power_law

    assert "-0" not in str(fit_power_law(np.ones((8, 8))))


def test_a_cosine_offset_fitted_a_rounding_off_its_bound_is_not_marked() -> None:
    """Break-test of 7 December: a cosine target with s = 0 fitted s = 6.4e-11 (not exactly the bound 0), whose
    downward "2 %" probe was clamped to a move of 6e-11 and found the residual flat: "s: not determined", though
    s = 0.05 moves the levels by 0.09 RMS. A probe clamped to within 1e-6 of the range is no probe (the bound, as
    at s = 0 exactly); the sigmoid test above shows the mark still set where a parameter is free."""
    target = fam.cosine_offset(8, s=0.0, log_snr_min=-8, log_snr_max=6)
    f = fit_heuristics(target, None, families=["cosine"]).best
    assert f.family == "cosine" and 0.0 <= f.params["s"] < 1e-6 and f.notes == {}, (f.params, f.notes)
    moved = schedules.alpha_bar_to_log_snr(fam.cosine_offset(8, s=0.05, log_snr_min=-8, log_snr_max=6))
    assert np.sqrt(np.mean((moved - schedules.alpha_bar_to_log_snr(target)) ** 2)) > 0.05  # s is determined
