"""Per-step spectra (issue 12, item 4): exact identities, Monte Carlo, and a check that rejects wrong formulas.

Monte Carlo design. ``symsched.montecarlo`` has no per-step capture, so the intermediate states are
reached through *partial schedules*: every sampler here ends with a step to the clean level whose
output is the denoised estimate of its input (DDIM and DDPM: ``(x - sqrt(1-ab) eps_hat)/sqrt(ab)``;
VE Euler/Heun: ``D(x; sigma)``). So the samples of the partial schedule ``ab[:j]`` are the
estimate ``x0_hat`` computed in step j from the sample at ``ab[j-1]``, which in turn is that sample
times the Wiener coefficient ``c = sqrt(ab) S / lambda`` (VE: ``S / (S + sigma^2)``, docs/model.md §3,
written here independently). Dividing the periodogram by ``c^2`` gives the periodogram of the sample
itself. Both are compared with :func:`symsched.insight.intermediate_spectra` by the exact chi^2
test of ``montecarlo.psd_check``, Bonferroni-corrected over all checks of a test, so a correct
formula fails with probability <= 1e-6 per test (fixed seeds: deterministic).
"""

from __future__ import annotations

import numpy as np
import pytest

import symsched
from symsched import montecarlo as mc
from symsched import schedules, spectra
from symsched.insight import intermediate_spectra

FAMILYWISE = 1e-6
CASES = [("ddim", dict(eta=0.5)), ("ddim", {}), ("ddpm", {}), ("ddpm", dict(variance="beta")), ("euler", {}),
         ("heun", {})]


def _partials(S, ab, sampler, kw, init):
    if sampler in ("euler", "heun"):
        sig = schedules.alpha_bar_to_sigmas(ab)
        return [symsched.output_spectrum_ve(S, sig[: j + 1], sampler=sampler, init=init) for j in range(ab.size)], \
            symsched.output_spectrum_ve(S, sig, sampler=sampler, init=init)
    return [symsched.output_spectrum(S, ab[: j + 1], sampler=sampler, init=init, **kw) for j in range(ab.size)], \
        symsched.output_spectrum(S, ab, sampler=sampler, init=init, **kw)


@pytest.mark.parametrize("sampler,kw", CASES)
@pytest.mark.parametrize("init", ["white", "exact"])
def test_last_sample_is_the_output_and_x0_hat_is_the_partial_schedules_output(sampler, kw, init) -> None:
    S = spectra.power_law((16, 16), alpha=2.5)
    ab = schedules.standard_schedule("scaled_linear-trailing", 7)
    res = intermediate_spectra(S, ab, sampler=sampler, init=init, **kw)
    parts, P = _partials(S, ab, sampler, kw, init)
    assert res.sample.shape == res.x0_hat.shape == res.marginal.shape == (7, 16, 16)
    np.testing.assert_allclose(res.sample[-1], P, rtol=1e-12)
    for k in range(7):
        np.testing.assert_allclose(res.x0_hat[k], parts[k], rtol=1e-12)
    np.testing.assert_allclose(res.marginal[-1], S, rtol=0)


def _coefficient(S, ab_level, sampler):
    """Wiener coefficient c of x0_hat = c x at level ab (docs/model.md §3), VP or VE, written independently."""
    if sampler in ("euler", "heun"):
        sig2 = (1.0 - ab_level) / ab_level
        return S / (S + sig2)
    lam = ab_level * S + 1.0 - ab_level
    return np.sqrt(ab_level) * S / lam


def _mc_partials(S, ab, sampler, kw, n, seed):
    out = []
    for j in range(1, ab.size + 1):
        if sampler in ("euler", "heun"):
            x = mc.sample_ve(S, schedules.alpha_bar_to_sigmas(ab[:j]), sampler=sampler, n_samples=n, seed=seed + j,
                             progress=False)
        else:
            x = mc.sample(S, ab[:j], sampler=sampler, n_samples=n, seed=seed + j, progress=False, **kw)
        out.append(mc.empirical_psd(x))
    return out


def _checks(S, ab, sampler, psds, predicted_sample, predicted_x0):
    """(name, psd_hat, psd_true) for every check: x0_hat of every step, and the sample after every step but the last."""
    checks = []
    for j, psd in enumerate(psds):  # partial schedule ab[:j+1]: x0_hat of step j+1, from the sample at ab[j]
        checks.append((f"x0_hat[{j}]", psd, predicted_x0[j]))
        if j >= 1:  # the sample at ab[j] is the sample after step j
            c2 = _coefficient(S, ab[j], sampler) ** 2
            checks.append((f"sample[{j - 1}]", psd / c2, predicted_sample[j - 1]))
    return checks


N_MC = 3000


@pytest.mark.parametrize("sampler,kw", CASES)
def test_intermediate_spectra_match_monte_carlo(sampler, kw) -> None:
    S = spectra.power_law((16, 16), alpha=2.0)
    ab = schedules.standard_schedule("linear-trailing", 4)
    res = intermediate_spectra(S, ab, sampler=sampler, **kw)
    psds = _mc_partials(S, ab, sampler, kw, N_MC, seed=11)
    checks = _checks(S, ab, sampler, psds, res.sample, res.x0_hat)
    alpha = FAMILYWISE / len(checks)
    for name, psd, pred in checks:
        out = mc.psd_check(psd, pred, N_MC, alpha=alpha)
        assert out.passed, f"{sampler} {kw} {name}: max|z| = {out.max_abs_z:.2f} > {out.z_crit:.2f}"


@pytest.mark.parametrize("sampler,kw", [("ddim", {}), ("ddpm", {}), ("heun", {})])
def test_the_same_check_rejects_the_partial_schedule_output_as_the_sample_variance(sampler, kw) -> None:
    """Companion: the tempting wrong formula 'sample variance at level k = output of the partial schedule
    ab[:k+1]' (the estimate, not the sample) and an off-by-one x0_hat are both rejected."""
    S = spectra.power_law((16, 16), alpha=2.0)
    ab = schedules.standard_schedule("linear-trailing", 4)
    res = intermediate_spectra(S, ab, sampler=sampler, **kw)
    psds = _mc_partials(S, ab, sampler, kw, N_MC, seed=11)
    parts, _ = _partials(S, ab, sampler, kw, "white")
    wrong_sample = np.stack([parts[k + 1] for k in range(ab.size - 1)] + [parts[-1]])
    shifted_x0 = np.concatenate([res.x0_hat[1:], res.x0_hat[-1:]])
    for wrong_s, wrong_x in ((wrong_sample, res.x0_hat), (res.sample, shifted_x0)):
        checks = _checks(S, ab, sampler, psds, wrong_s, wrong_x)
        alpha = FAMILYWISE / len(checks)
        verdicts = [mc.psd_check(psd, pred, N_MC, alpha=alpha) for _, psd, pred in checks]
        assert not all(v.passed for v in verdicts)
        assert max(v.max_abs_z / v.z_crit for v in verdicts) > 2.0  # rejected by a wide margin, not by luck


def test_bands_are_generated_coarse_to_fine() -> None:
    """For a decreasing spectrum, a mode with more variance reaches half its final x0_hat variance no later."""
    S = spectra.power_law((32, 32), alpha=2.0)
    for name in ("linear-trailing", "karras", "kl_optimal", "cosine"):
        ab = schedules.standard_schedule(name, 10)
        res = intermediate_spectra(S, ab)
        step = res.generation_step(0.5).ravel()
        order = np.argsort(S.ravel(), kind="stable")[::-1]
        assert np.all(np.diff(step[order]) >= 0), name
        assert step.min() < step.max()  # not all generated at once
        np.testing.assert_allclose(res.generated_fraction()[-1], 1.0)


def test_colour_spectrum_shapes_zero_modes_and_extreme_levels() -> None:
    S = spectra.load_spectrum("builtin:natural-patches").copy()
    S[0, 0, 2] = 0.0
    ab = np.array([1e-12, 0.3, 0.9, 1.0 - 1e-12])
    for sampler in ("ddim", "ddpm", "euler", "heun"):
        res = intermediate_spectra(S, ab, sampler=sampler)
        assert res.sample.shape == (4, 32, 32, 3)
        for arr in (res.sample, res.x0_hat, res.marginal, res.accuracy(), res.generated_fraction()):
            assert np.all(np.isfinite(arr)) and np.all(arr >= 0)
        assert np.all(res.x0_hat[:, 0, 0, 2] == 0)
        x, prof = res.radial("generated")
        assert prof.shape == (4, x.size) and np.allclose(prof[-1], 1.0)


def test_plot_and_band_profiles() -> None:
    S = spectra.power_law((16, 16), alpha=2.0)
    res = intermediate_spectra(S, schedules.standard_schedule("karras", 6), sampler="euler")
    fig = res.plot()
    assert len(fig.axes) == 6  # three panels and their colour bars
    x, acc = res.radial("accuracy")
    _, gen = res.radial("generated")
    assert np.all(np.diff(x) > 0) and acc.shape == gen.shape == (6, x.size)
    pca = intermediate_spectra(np.sort(S.ravel())[::-1], schedules.standard_schedule("karras", 6))
    xp, _ = pca.radial("sample/marginal")
    assert xp.size > 1 and pca.plot() is not None


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sampler="plms"), "sampler must be one of"),
        (dict(sampler="ddpm", eta=0.5), "sampler 'ddpm' has no setting 'eta'"),
        (dict(eta=1.5), "eta must lie in"),
        (dict(init="noise"), "init must be one of"),
        (dict(sampler="ddpm", variance="small"), "variance must be one of"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        intermediate_spectra(np.ones(4), [0.1, 0.5], **kwargs)


def test_bad_levels_and_spectrum_raise() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        intermediate_spectra(np.ones(4), [0.5, 0.1])
    with pytest.raises(ValueError, match="non-negative"):
        intermediate_spectra(-np.ones(4), [0.1, 0.5])
    with pytest.raises(ValueError, match="threshold"):
        intermediate_spectra(np.ones(4), [0.1, 0.5]).generation_step(0.0)


# ---------------------------------------------------------------------------------------------
# every sampler (break-test item 1): multi-entry states, UniPC's corrector, DEIS's last level
# ---------------------------------------------------------------------------------------------
_LEVEL_STOPPERS = {"deis_multistep"}  # samplers whose last step stops at alpha_bar[-1] (K - 1 rows)


@pytest.mark.parametrize("sampler", symsched.SAMPLERS)
def test_every_sampler_runs_and_its_last_row_is_the_output_spectrum(sampler) -> None:
    S = np.array([0.0, 1e-3, 1.0, 1e3])
    ab = schedules.standard_schedule("linear-trailing", 4)
    res = intermediate_spectra(S, ab, sampler=sampler)
    rows = 3 if sampler in _LEVEL_STOPPERS else 4
    assert res.sample.shape == res.x0_hat.shape == res.marginal.shape == (rows, 4) and res.steps == rows
    P = symsched.output_spectrum(S, ab, sampler=sampler)
    np.testing.assert_allclose(res.sample[-1], P, rtol=1e-12, atol=0)
    for arr in (res.sample, res.x0_hat, res.marginal, res.start, res.accuracy(), res.generated_fraction()):
        assert np.all(np.isfinite(arr))
    assert res.generation_step(0.5).shape == S.shape
    if sampler in _LEVEL_STOPPERS:  # the output is the sample at alpha_bar[-1]: the marginal there, not S
        np.testing.assert_allclose(res.marginal[-1], ab[-1] * S + 1.0 - ab[-1], rtol=1e-15)
    else:
        np.testing.assert_array_equal(res.marginal[-1], S)


@pytest.mark.parametrize("kw", [dict(sampler="unipc_multistep", solver_order=3),
                                dict(sampler="deis_multistep", solver_order=3),
                                dict(sampler="dpmsolver_multistep", final_sigmas_type="sigma_min"),
                                dict(sampler="unipc_multistep", final_sigmas_type="sigma_min")])
def test_multistep_variants_end_at_the_output_spectrum(kw) -> None:
    S = spectra.power_law((8, 8), alpha=2.0)
    ab = schedules.standard_schedule("linear-trailing", 6)
    res = intermediate_spectra(S, ab, **kw)
    rows = 6 if kw.get("final_sigmas_type", "zero") == "zero" and kw["sampler"] != "deis_multistep" else 5
    assert res.sample.shape[0] == rows
    np.testing.assert_allclose(res.sample[-1], symsched.output_spectrum(S, ab, **kw), rtol=1e-12)


def test_unipc_estimates_are_the_model_calls_on_the_predicted_sample() -> None:
    """First order UniPC (plans are prefixes of each other): the partial schedule ab[:k+1] ends with an
    order-1 prediction to the clean level, which outputs the model call at ab[k]; that is x0_hat[k]."""
    S = spectra.power_law((8, 8), alpha=2.0)
    ab = schedules.standard_schedule("linear-trailing", 5)
    kw = dict(sampler="unipc_multistep", solver_order=1)
    res = intermediate_spectra(S, ab, **kw)
    for k in range(ab.size):
        np.testing.assert_allclose(res.x0_hat[k], symsched.output_spectrum(S, ab[: k + 1], **kw), rtol=1e-12)
    # final_sigmas_type="sigma_min": the partial schedule ab[:k+2] outputs the *predicted* sample at ab[k+1],
    # on which the model is called (x0_hat = c^2 var), while sample[k] holds the corrected one
    kw = dict(sampler="unipc_multistep", solver_order=1, final_sigmas_type="sigma_min")
    res = intermediate_spectra(S, ab, **kw)
    assert res.steps == ab.size - 1  # model calls at ab[0..K-2]; the last step stops at ab[-1]
    for j in range(1, res.steps):
        predicted = symsched.output_spectrum(S, ab[: j + 1], **kw)
        np.testing.assert_allclose(res.x0_hat[j], _coefficient(S, ab[j], "ddim") ** 2 * predicted, rtol=1e-12)
    np.testing.assert_allclose(res.sample[-1], symsched.output_spectrum(S, ab, **kw), rtol=1e-12)
    assert not np.allclose(res.sample[0], symsched.output_spectrum(S, ab[:2], **kw), rtol=1e-3)  # corrected


@pytest.mark.parametrize("kw", [dict(sampler="deis_multistep", solver_order=1),
                                dict(sampler="dpmsolver_multistep", solver_order=1, final_sigmas_type="sigma_min")])
def test_samplers_that_stop_at_the_last_level_hold_its_sample(kw) -> None:
    """First order: the partial schedule ab[:k+2] outputs the sample at ab[k+1], which is sample[k]."""
    S = spectra.power_law((8, 8), alpha=2.0)
    ab = schedules.standard_schedule("linear-trailing", 5)
    res = intermediate_spectra(S, ab, **kw)
    assert res.steps == 4
    for k in range(4):
        np.testing.assert_allclose(res.sample[k], symsched.output_spectrum(S, ab[: k + 2], **kw), rtol=1e-12)
        np.testing.assert_allclose(res.marginal[k], ab[k + 1] * S + 1.0 - ab[k + 1], rtol=1e-14)
        np.testing.assert_allclose(res.x0_hat[k], _coefficient(S, ab[k], "ddim") ** 2 *
                                   (res.start if k == 0 else res.sample[k - 1]), rtol=1e-12)
    assert len(res.plot().axes) == 6 and res.radial("generated")[1].shape[0] == 4


@pytest.mark.parametrize("sampler", [s for s in symsched.SAMPLERS
                                     if s not in ("heun", "dpmpp_2m_sde", "dpmpp_3m_sde", "dpmpp_sde")])
def test_every_sampler_defined_at_zero_terminal_snr_runs_from_alpha_bar_zero(sampler) -> None:
    S = spectra.power_law((8, 8), alpha=2.0)
    ab = np.concatenate(([0.0], schedules.standard_schedule("linear-trailing", 4)[1:]))
    res = intermediate_spectra(S, ab, sampler=sampler)
    np.testing.assert_allclose(res.sample[-1], symsched.output_spectrum(S, ab, sampler=sampler), rtol=1e-12)
    assert np.all(res.x0_hat[0] == 0.0)  # the estimate at pure noise is 0
    for arr in (res.sample, res.x0_hat, res.marginal):
        assert np.all(np.isfinite(arr))


@pytest.mark.parametrize("bad,exc", [("0.5", TypeError), (None, TypeError), (True, TypeError), (np.nan, ValueError),
                                     (1.5, ValueError), (0.0, ValueError), ([0.5], TypeError)])
def test_generation_step_threshold_is_checked(bad, exc) -> None:
    res = intermediate_spectra(np.array([0.5, 2.0]), [0.1, 0.5, 0.9])
    with pytest.raises(exc, match="threshold"):
        res.generation_step(bad)
    assert np.array_equal(res.generation_step(np.float32(1.0)), res.generation_step(1))


def test_a_diverging_mode_is_named_like_output_spectrum_names_it_without_a_warning() -> None:
    """break-test B: the mode, not the levels, is named, and no RuntimeWarning escapes before the error."""
    import warnings

    S, ab = [1.0, 1e300], [0.0, 0.3, 0.9, 1 - 1e-12]
    with pytest.raises(ValueError, match=r"^spectrum: the output variance of the mode S=1e\+300"):
        symsched.output_spectrum(S, ab, sampler="dpm_2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^spectrum: the sample variance of the mode S=1e\+300 after step 1 "):
            intermediate_spectra(S, ab, sampler="dpm_2")


def _flow_euler_variances(S: float, t: list[float]) -> tuple[list[float], list[float]]:
    """Flow matching's Euler ODE step in its own scale, x_t = (1 - t) x0 + t eps, from first principles: the exact
    denoiser x0_hat = (1 - t) S / ((1 - t)^2 S + t^2) x, eps_hat = (x - (1 - t) x0_hat) / t, and
    x' = x + (t' - t)(eps_hat - x0_hat); a variance v maps to g^2 v with the step's gain g. Start: x = eps at t[0]
    (variance t[0]^2 + (1 - t[0])^2 S for the exact start, 1 at t = 1). Returns (sample after each step, marginal)."""
    v = (1 - t[0]) ** 2 * S + t[0] ** 2
    out, marg = [], []
    for a, b in zip(t, t[1:] + [0.0]):
        c0 = (1 - a) * S / ((1 - a) ** 2 * S + a**2)
        g = 1 + (b - a) * ((1 - (1 - a) * c0) / a - c0)
        v = g * g * v
        out.append(v)
        marg.append((1 - b) ** 2 * S + b**2)
    return out, marg


@pytest.mark.parametrize("S", [1.0, 0.3, 7.0])
def test_flow_sample_rows_are_in_flow_scale(S) -> None:
    """break-test E: flow samplers' sample, marginal and start rows are in x_t = (1 - t) x0 + t eps units, as the
    docstring says (they were the VP scale: 0.98 instead of 0.766 after the first step)."""
    ab = [0.0, 0.02, 0.1, 0.3, 0.6, 0.9]
    t = schedules.alpha_bar_to_flow_t(ab).tolist()
    res = intermediate_spectra([S], ab, sampler="flow_match_euler", init="exact")
    want, marg = _flow_euler_variances(S, t)
    np.testing.assert_allclose(res.sample.ravel(), want, rtol=1e-12)
    np.testing.assert_allclose(res.marginal.ravel(), marg, rtol=1e-12)
    assert res.start.ravel()[0] == pytest.approx(1.0, rel=1e-15)  # t = 1: pure noise, variance 1
    res_vp = intermediate_spectra([S], ab, sampler="ddim", init="exact")  # companion: the VP rows differ
    assert abs(res_vp.sample.ravel()[0] - want[0]) > 1e-3


def test_ve_rows_that_overflow_in_ve_units_name_the_level_not_a_diverging_mode() -> None:
    """break-test E: a level so noisy (alpha_bar = 1e-320, sigma^2 ~ 1e320) that its VE variance exceeds float64 is an
    alpha_bar error; the start used to come back as inf with no error, and a sample row blamed the mode S = 0."""
    with pytest.raises(ValueError, match=r"^alpha_bar: the start variance .* alpha_bar\[0\] = 9\.99989e-321 is so noisy"):
        intermediate_spectra([0.5, 2.0], [1e-320, 0.5], sampler="euler")
    with pytest.raises(ValueError, match=r"^alpha_bar: the sample variance .* after step 1 .* alpha_bar\[1\]"):
        intermediate_spectra([0.5, 2.0], [0.0, 1e-320], sampler="euler")
    res = intermediate_spectra([0.5, 2.0], [0.0, 0.5], sampler="euler")  # sigma = inf exactly: an infinite start
    assert np.all(np.isinf(res.start)) and np.all(np.isfinite(res.sample))
    np.testing.assert_allclose(res.sample[0], [1.0, 1.0], rtol=1e-15)  # Euler from sigma = inf: x = sigma_1 eps


# break-test H: the forward covariance sweep of a sampler with memory cancels on close or uneven levels
_CLOSE = [0.3, 0.3 + 1e-9, 0.3 + 2e-9, 0.9]
_CONSECUTIVE = schedules.from_grid(schedules.training_grid("linear"), np.arange(600, 590, -1))


def _cancelling_cases_agree() -> bool:
    """Whether intermediate_spectra's output row matches the mpmath path (1e-9) and no row is negative, on schedules
    whose forward covariance sweep cancels in float64 (dpmpp_2m, UniPC on levels 1e-9 apart; LMS on ten
    consecutive timesteps of the 1000-step grid)."""
    S = np.array([0.5, 1.0, 2.0])
    for sampler, ab in [("dpmpp_2m", _CLOSE), ("unipc_multistep", _CLOSE), ("lms", _CONSECUTIVE)]:
        res = intermediate_spectra(S, ab, sampler=sampler)
        ref = np.array(symsched.output_spectrum_mp(S, ab, sampler=sampler, dps=60), dtype=float)
        if np.any(res.sample < 0) or np.max(np.abs(res.sample[-1] / ref - 1)) > 1e-9:
            return False
    return True


def test_cancelling_schedules_are_exact_or_refused() -> None:
    assert _cancelling_cases_agree()
    with pytest.raises(ValueError, match="alpha_bar: this schedule makes the sampler's multistep coefficients cancel"):
        intermediate_spectra([0.5, 1.0, 2.0], _CLOSE, sampler="lms")  # longdouble cannot rescue a truncated row


def test_cancelling_check_rejects_the_unchecked_sweep(monkeypatch) -> None:
    """Companion: with the forward sweep used unchecked (the old code), the check above fails."""
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "checked_state_variances",
                        lambda prog, S, init, exact=None: recursion.state_variances(prog, S, init))
    assert not _cancelling_cases_agree()


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "dpmsolver_multistep", "lms", "dpmpp_2m", "deis_multistep",
                                     "unipc_multistep", "flow_match_heun"])
def test_the_last_row_is_output_spectrum_itself(sampler) -> None:
    """Break-test J: sample[-1] kept the forward sweep's own last row (1e-11 off output_spectrum on consecutive
    timesteps, an ulp on zero-SNR starts) where the docstring promises output_spectrum."""
    S = np.array([1e-4, 0.01, 0.3, 2.0, 50.0])
    for ab in (_CONSECUTIVE[:6], np.array([0.0, 0.2, 0.5, 0.9])):
        res = intermediate_spectra(S, ab, sampler=sampler)
        np.testing.assert_array_equal(res.sample[-1], symsched.output_spectrum(S, ab, sampler=sampler))


def _mp_rows(S, ab, eta, variance="posterior"):
    """Independent per-step reference in mpmath (50 digits), written from DDIM (Song et al. 2021, eq. 12) and DDPM's
    posterior (Ho et al. 2020, eq. 7) with the Wiener estimate x0_hat = c x_t, c = sqrt(ab) S / (ab S + 1 - ab):
    each step maps v -> g^2 v + n; rows are (sample after step k, x0_hat at step k). White start v = 1."""
    from mpmath import mp, mpf

    with mp.workdps(50):
        S = mpf(S)
        levels = [mpf(a) for a in ab] + [mpf(1)]
        v, rows = mpf(1), []
        for k in range(len(ab)):
            a_t, a_s = levels[k], levels[k + 1]
            c = mp.sqrt(a_t) * S / (a_t * S + 1 - a_t)
            x0_var = c * c * v
            if variance is None:  # DDIM: x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s - s^2) eps_hat + s z
                s2 = eta ** 2 * (1 - a_s) / (1 - a_t) * (1 - a_t / a_s)
                e = (1 - mp.sqrt(a_t) * c) / mp.sqrt(1 - a_t)  # eps_hat = e x_t
                g, n = mp.sqrt(a_s) * c + mp.sqrt(1 - a_s - s2) * e, s2
            else:  # DDPM posterior mean + its variance (none on the last step)
                beta = 1 - a_t / a_s
                g = mp.sqrt(a_s) * beta / (1 - a_t) * c + mp.sqrt(a_t / a_s) * (1 - a_s) / (1 - a_t)
                n = (1 - a_s) / (1 - a_t) * beta if k < len(ab) - 1 else mpf(0)
                if variance == "beta" and k < len(ab) - 1:
                    n = beta
            v = g * g * v + n
            rows.append((v, x0_var))
        return rows


@pytest.mark.parametrize("sampler,kw,variance", [("ddim", {}, None), ("ddim", dict(eta=1.0), None),
                                                 ("ddpm", {}, "posterior"), ("ddpm", dict(variance="beta"), "beta")])
def test_every_row_matches_an_independent_mpmath_recursion_at_the_extremes(sampler, kw, variance) -> None:
    """Every row (not only the last, which output_spectrum's own mpmath tests cover) at levels from 0 to
    1 - 1e-12 and S from 0 to 1e300, against a 50-digit per-step recursion written here from the papers."""
    S = np.array([0.0, 1e-300, 1e-12, 1.0, 1e12, 1e300])
    ab = np.array([0.0, 1e-300, 1e-12, 0.3, 0.9, 1.0 - 1e-12])  # 0: zero terminal SNR
    res = intermediate_spectra(S, ab, sampler=sampler, **kw)
    eta = kw.get("eta", 0.0)
    for j, s in enumerate(S):
        for k, (v, x0) in enumerate(_mp_rows(s, ab, eta, variance)):
            for got, ref in ((res.sample[k, j], v), (res.x0_hat[k, j], x0)):
                assert abs(got - float(ref)) <= 1e-11 * float(ref) + 1e-320, (sampler, kw, s, k, got, float(ref))


def _mp_churned_euler_rows(S: float, ab: np.ndarray, s_churn: float, s_noise: float) -> list:
    """(sample, x0_hat, x0_hat / S) after every step of k-diffusion's ``sample_euler`` with churn (EDM Algorithm 2),
    VE units, 700 digits (1 + (sigma_s - sigma_hat)(1 - c)/sigma_hat cancels 290 of them when sigma_hat = 1e150), white
    start v = sigma_0^2: gamma = min(s_churn / K, sqrt(2) - 1), sigma_hat = sigma (1 +
    gamma), x_hat = x + s_noise sqrt(sigma_hat^2 - sigma^2) z, D = S/(S + sigma_hat^2) x_hat (the estimate, on the
    churned sample), x_s = x_hat + (sigma_s - sigma_hat)(x_hat - D)/sigma_hat."""
    from mpmath import mp, mpf

    with mp.workdps(700):
        S = mpf(S)
        sig = [mp.sqrt((1 - mpf(a)) / mpf(a)) for a in ab] + [mpf(0)]
        gamma = min(mpf(s_churn) / len(ab), mp.sqrt(2) - 1)
        v, rows = sig[0] ** 2, []
        for k in range(len(ab)):
            hat = sig[k] * (1 + gamma)
            v_hat = v + mpf(s_noise) ** 2 * (hat**2 - sig[k] ** 2)
            c = S / (S + hat**2)
            v = (1 + (sig[k + 1] - hat) * (1 - c) / hat) ** 2 * v_hat
            rows.append((v, c * c * v_hat, c * (S / (S + hat**2)) * v_hat / S if S > 0 else mpf(1)))
        return rows


def test_churned_estimates_match_an_independent_mpmath_recursion_at_the_extremes() -> None:
    """The estimate of a churned step is the model call on the churned sample (k-diffusion; the k-diffusion witness
    test checks the library itself): every row at levels from 1e-300 to 1 - 1e-12 and S from 0 to 1e300, and the
    ratio x0_hat / S where x0_hat itself underflows (S = 1e-300)."""
    S = np.array([0.0, 1e-315, 1e-310, 1e-300, 1e-12, 1.0, 1e12, 1e300])
    ab = np.array([1e-300, 1e-12, 0.3, 0.9, 1.0 - 1e-12])
    res = intermediate_spectra(S, ab, sampler="euler", s_churn=2.0, s_noise=1.3)
    for j, s in enumerate(S):
        for k, (v, x0, ratio) in enumerate(_mp_churned_euler_rows(s, ab, 2.0, 1.3)):
            for got, ref in ((res.sample[k, j], v), (res.x0_hat[k, j], x0)):
                assert abs(got - float(ref)) <= 1e-11 * float(ref) + 1e-320, (s, k, got, float(ref))
            # the ratio to 1e-11 wherever it is a normal float64 (x0 itself underflows below S ~ 1e-160)
            tiny = np.finfo(np.float64).tiny
            tol = 1e-11 * float(ratio) if ratio >= tiny else tiny
            assert abs(res.x0_hat_ratio[k, j] - float(ratio)) <= tol, (s, k, res.x0_hat_ratio[k, j], float(ratio))
    # companion: the estimate from the sample before the churn (the old formula, the Wiener coefficient at the level
    # itself on the unchurned sample) is far off here
    unchurned = (1e-12 / (1e-12 + (1 - 0.3) / 0.3)) ** 2 * res.sample[1, 4]
    assert abs(unchurned / res.x0_hat[2, 4] - 1) > 0.3


def test_the_mpmath_row_check_rejects_an_off_by_one_row() -> None:
    """Companion: the same comparison fails for the rows shifted by one step (x0_hat read at the next level)."""
    S = np.array([1e-12, 1.0, 1e12])
    ab = np.array([1e-12, 0.3, 0.9, 1.0 - 1e-12])
    res = intermediate_spectra(S, ab, sampler="ddim")
    ref = np.array([[float(r[1]) for r in _mp_rows(s, ab, 0.0, None)] for s in S]).T
    assert np.allclose(res.x0_hat, ref, rtol=1e-11, atol=0)
    assert not np.allclose(np.roll(res.x0_hat, 1, axis=0), ref, rtol=1e-3, atol=0)


def test_a_diverging_mode_names_the_sampler_parameters_too() -> None:
    """review: intermediate_spectra kept the old message, blaming the spectrum alone for s_noise = 1e200."""
    with pytest.raises(ValueError, match=r"^spectrum: the sample variance of the mode S=.* after step 1 exceeds the "
                                         r"float64 range for this schedule with eta=1, s_noise=1e\+200"):
        intermediate_spectra([1.0, 2.0], [0.01, 0.5], sampler="euler_ancestral", s_noise=1e200)


def test_plot_of_levels_near_the_smallest_double_does_not_overflow() -> None:
    """Audit of the insight package (F6): levels near alpha_bar = 1e-320 gave "RuntimeWarning: overflow encountered in
    square" (sigma^2 = (1 - ab) / ab beyond float64); the SNR = 1 marks compare S ab with 1 - ab instead."""
    import warnings

    S = np.array([1e-3, 1.0, 1e3])
    # (at 1 - 1e-16 every band is past SNR 1: no crossing within the bands, no dot; audit of 7 December)
    for ab, snr1 in (([1e-320, 0.5, 1 - 1e-16], [2]), ([5e-324, 1e-323, 0.5], [3])):
        res = intermediate_spectra(S, np.array(ab))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fig = res.plot()
        dots = [line for line in fig.axes[0].lines if line.get_label().startswith("band mean S")]
        assert dots and list(dots[0].get_xdata()) == snr1  # the top mode (1e3) at SNR >= 1, the lowest still below


@pytest.mark.parametrize("sampler", ["dpmsolver_multistep", "unipc_multistep", "deis_multistep"])
@pytest.mark.parametrize("first", [5e-324, 1e-310])
def test_a_subnormal_first_level_of_a_multistep_sampler_is_evaluated(sampler, first) -> None:
    """Audit of 5 December: output_spectrum evaluates a first level below the float64 normal range (its mpmath
    fallback confirms the output), but intermediate_spectra refused it ("its levels lie beyond the float64 range and
    no wider type confirmed them"): its output check had no mpmath fallback."""
    S = np.array([1e-5, 1.0, 1e5])
    ab = [first, 0.5, 0.9]
    res = intermediate_spectra(S, ab, sampler=sampler)
    ref = np.array([float(v) for v in symsched.output_spectrum_mp(S, ab, sampler=sampler, dps=30)])
    np.testing.assert_allclose(res.sample[-1], ref, rtol=1e-12, atol=0)
    assert np.all(np.isfinite(res.sample)) and np.all(np.isfinite(res.x0_hat))


def test_a_ve_sampler_from_a_subnormal_level_names_its_ve_units() -> None:
    """The same level for a VE sampler: its start, sigma^2 = (1 - ab)/ab > 1.8e308 in VE units, is not representable
    in the result's native scale (output_spectrum, which returns the output alone, evaluates it)."""
    with pytest.raises(ValueError, match=r"^alpha_bar: the start variance .* exceeds the float64 range"):
        intermediate_spectra([1.0], [5e-324, 0.5], sampler="dpmpp_2m")
    assert np.isfinite(symsched.output_spectrum([1.0], [5e-324, 0.5], sampler="dpmpp_2m")[0])


def test_generation_steps_lie_in_one_to_k_and_follow_the_first_step_at_half() -> None:
    """mutation run 5 Dec: generation_step without its + 1 (0-based) passed this file; and explain kept its own copy
    of the rule for bands (band_half_step), which no test read. Independent value: a loop over the steps."""
    S = spectra.power_law((16, 16), alpha=2.0)
    ab = schedules.standard_schedule("linear-trailing", 6)
    res = intermediate_spectra(S, ab)
    frac = res.generated_fraction().reshape(6, -1)
    want = [next(k + 1 for k in range(6) if frac[k, m] >= 0.5 * (1 - 1e-12)) for m in range(frac.shape[1])]
    got = res.generation_step(0.5).ravel()
    assert np.array_equal(got, want) and got.min() >= 1 and got.max() <= 6
    assert got.min() == 1 or frac[0].max() < 0.5


@pytest.mark.parametrize("sampler,kw,eta,variance", [
    ("ddpm", {"variance": "beta"}, None, "beta"), ("ddim", {"eta": 0.5}, 0.5, None),
    ("dpmpp_2m", {}, None, None), ("euler_ancestral", {"eta": 0.7}, 0.7, None), ("euler", {}, None, None)])
def test_the_recorded_settings_are_the_samplers_own(sampler, kw, eta, variance) -> None:
    """Audit of 6 December: ``variance`` read "posterior" (and ``eta`` 0) for samplers without either setting;
    they are None there, as in OptimizeResult (checked against it here)."""
    res = intermediate_spectra([0.5, 2.0], [0.1, 0.5, 0.9], sampler=sampler, **kw)
    assert res.eta == eta and res.variance == variance
    opt = symsched.optimize_schedule([0.5, 2.0], 3, sampler=sampler, restarts=0, **kw)
    assert (opt.eta, opt.variance) == (res.eta, res.variance)
