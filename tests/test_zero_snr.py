"""Zero terminal SNR (issue 11): alpha_bar = 0 is a level everywhere a level or a grid is accepted.

Right values come from the definitions (mpmath at 60 digits for the conversions; Lin et al.'s
rescaling and diffusers' own grids for the training grids), never from the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from mpmath import mp, mpf

import symsched
from symsched import schedules as sch
from symsched.export import from_diffusers, to_diffusers, to_k_diffusion_sigmas

INF = np.inf

# levels spanning the float64 range, the ends included
AB = [0.0, 5e-324, 1e-320, 1e-200, 1e-12, 0.25, 0.5, 0.75, 1 - 1e-12, 1 - 2**-53, 1.0]
T_FLOW = [0.0, 1e-7, 1e-3, 0.3, 0.5, 0.7, 1 - 1e-12, 1 - 2**-53, 1.0]


def rel_err(x: float, ref) -> float:
    if ref == 0 or mp.isinf(ref):
        return 0.0 if x == float(ref) else INF
    return float(abs((mpf(x) - ref) / ref))


# ---------------------------------------------------------------------------------------------
# conversions: 0 <-> -inf <-> inf exactly, no cancellation in between
# ---------------------------------------------------------------------------------------------
def test_issue_values_exactly() -> None:
    assert sch.alpha_bar_to_log_snr([0, 0.5]).tolist() == [-INF, 0.0]
    assert sch.alpha_bar_to_sigmas([0, 0.5]).tolist() == [INF, 1.0]
    assert sch.log_snr_to_alpha_bar([-INF, 0]).tolist() == [0.0, 0.5]
    assert sch.sigmas_to_alpha_bar([INF, 1.0, 0.0]).tolist() == [0.0, 0.5, 1.0]
    assert sch.alpha_bar_to_log_snr([1.0]).tolist() == [INF] and sch.alpha_bar_to_sigmas([1.0]).tolist() == [0.0]
    assert sch.log_snr_to_alpha_bar([INF]).tolist() == [1.0]


def test_flow_map_end_points_exactly() -> None:
    """x_t = (1 - t) x0 + t eps: t = 1 is pure noise (alpha_bar 0, log-SNR -inf, sigma inf), t = 0 clean."""
    assert sch.flow_t_to_alpha_bar([1.0, 0.5, 0.0]).tolist() == [0.0, 0.5, 1.0]
    assert sch.flow_t_to_log_snr([1.0, 0.5, 0.0]).tolist() == [-INF, 0.0, INF]
    assert sch.flow_t_to_sigmas([1.0, 0.5, 0.0]).tolist() == [INF, 1.0, 0.0]
    assert sch.alpha_bar_to_flow_t([0.0, 0.5, 1.0]).tolist() == [1.0, 0.5, 0.0]
    assert sch.log_snr_to_flow_t([-INF, 0.0, INF]).tolist() == [1.0, 0.5, 0.0]
    assert sch.sigmas_to_flow_t([INF, 1.0, 0.0]).tolist() == [1.0, 0.5, 0.0]


def test_vp_conversions_match_mpmath_across_the_float64_range() -> None:
    mp.dps = 60
    ab = np.array(AB)
    # a level 0 < alpha_bar <= 2^-108 (~3.1e-33) has a flow time that rounds to t = 1 (pure noise): refused
    # (break3/numerics F8), as flow_t_to_alpha_bar refuses a t whose level rounds to 1
    flow_ok = (ab == 0) | (ab > 2.0**-108)
    l, sig, t = sch.alpha_bar_to_log_snr(ab), sch.alpha_bar_to_sigmas(ab), np.full(ab.size, np.nan)
    t[flow_ok] = sch.alpha_bar_to_flow_t(ab[flow_ok])
    for a in ab[~flow_ok]:
        with pytest.raises(ValueError, match="flow time t rounds to 1"):
            sch.alpha_bar_to_flow_t([a])
    for i, a in enumerate(AB):
        A = mpf(a)
        ref_l = mp.log(A / (1 - A)) if 0 < a < 1 else (-mp.inf if a == 0 else mp.inf)
        ref_s = mp.sqrt((1 - A) / A) if a > 0 else mp.inf
        ref_t = mp.sqrt(1 - A) / (mp.sqrt(A) + mp.sqrt(1 - A))
        assert rel_err(l[i], ref_l) <= 1e-15, (a, l[i])
        assert rel_err(sig[i], ref_s) <= 4e-16, (a, sig[i])
        assert not flow_ok[i] or rel_err(t[i], ref_t) <= 4e-16, (a, t[i])
    # back again: both alpha_bar and 1 - alpha_bar keep their relative precision
    for i, a in enumerate(AB):
        if 1e-300 < a < 1:
            back = sch.log_snr_to_alpha_bar([l[i]])[0]
            cond = 2.3e-16 * (1.0 + abs(l[i]))  # relative error of l (1 ulp) times d log(ab) / d l
            assert abs(back - a) <= cond * a and abs((1 - back) - (1 - a)) <= cond * (1 - a) + 1e-300
            back = sch.sigmas_to_alpha_bar([sig[i]])[0]
            assert abs(back - a) <= 1e-15 * a and abs((1 - back) - (1 - a)) <= 1e-15 * (1 - a)


def test_flow_conversions_match_mpmath() -> None:
    mp.dps = 60
    tt = np.array(T_FLOW)
    l, ab, sig = sch.flow_t_to_log_snr(tt), sch.flow_t_to_alpha_bar(tt), sch.flow_t_to_sigmas(tt)
    for i, t in enumerate(T_FLOW):
        T = mpf(t)
        ref_l = 2 * mp.log((1 - T) / T) if 0 < t < 1 else (mp.inf if t == 0 else -mp.inf)
        ref_ab = (1 - T) ** 2 / ((1 - T) ** 2 + T**2)
        ref_s = T / (1 - T) if t < 1 else mp.inf
        assert rel_err(l[i], ref_l) <= 1e-15, (t, l[i])
        if float(ref_ab) > 1e-300 or ref_ab == 0:  # below: a subnormal alpha_bar, compare absolutely
            assert rel_err(ab[i], ref_ab) <= 1e-14, (t, ab[i])
        else:
            assert abs(ab[i] - float(ref_ab)) <= 1e-320
        assert rel_err(sig[i], ref_s) <= 4e-16, (t, sig[i])
        if 0 < t < 1:
            back = sch.log_snr_to_flow_t([l[i]])[0]
            cond = 2.3e-16 * (1.0 + abs(l[i]))
            # (t near 1 is stored to 1.1e-16 absolute: that is all 1 - t can keep)
            assert abs(back - t) <= cond * t and abs((1 - back) - (1 - t)) <= cond * (1 - t) + 2.3e-16
            assert abs(sch.sigmas_to_flow_t([sig[i]])[0] - t) <= 4e-16 * t


def test_flow_time_next_to_pure_noise_keeps_its_last_ulp() -> None:
    """break-test of 7 December: t = 1 - 2^-53 went to alpha_bar 1.23e-32 and came back refused as 'rounds to 1',
    and sigma = 2^53 - 1 gave t = 1 - 2^-52 (exact 1 - 2^-53): s/(c + s) and 1/(1 + 1/sigma) rounded a sum near 1
    before dividing. Near t = 1 the distance 1 - t is what matters; the reference is mpmath at 60 digits."""
    mp.dps = 60
    assert sch.alpha_bar_to_flow_t(sch.flow_t_to_alpha_bar([1 - 2.0**-53])).tolist() == [1 - 2.0**-53]
    assert sch.sigmas_to_flow_t([2.0**53 - 1]).tolist() == [1 - 2.0**-53]
    tt = 1.0 - np.arange(1, 400) * 2.0**-53  # the 399 flow times next to pure noise: both round trips exact
    np.testing.assert_array_equal(sch.alpha_bar_to_flow_t(sch.flow_t_to_alpha_bar(tt)), tt)
    np.testing.assert_array_equal(sch.sigmas_to_flow_t(sch.flow_t_to_sigmas(tt)), tt)
    rng = np.random.default_rng(7)
    ab = np.exp(rng.uniform(np.log(4e-33), np.log(0.5), 300))  # t in (1/2, 1): 1 - t = c/(c + s)
    sig = np.exp(rng.uniform(0.0, np.log(1.7e16), 300))
    for t, A in zip(sch.alpha_bar_to_flow_t(ab), map(mpf, ab)):
        d = mp.sqrt(A) / (mp.sqrt(A) + mp.sqrt(1 - A))  # 1 - t, exactly
        assert abs((1 - mpf(t)) - d) <= 2.0**-54 + 4 * 2.0**-53 * d, (float(A), t)  # half an ulp plus its rounding
    for t, s in zip(sch.sigmas_to_flow_t(sig), map(mpf, sig)):
        d = 1 / (1 + s)
        assert abs((1 - mpf(t)) - d) <= 2.0**-54 + 3 * 2.0**-53 * d, (float(s), t)
    # the refusals sit where t really rounds to 1: just above 2^-108 (sigma just below 2^54) is kept
    assert sch.alpha_bar_to_flow_t([2.0**-108 * 1.01])[0] == 1 - 2.0**-53
    assert sch.sigmas_to_flow_t([2.0**54 * 0.99])[0] == 1 - 2.0**-53
    for call in (lambda: sch.alpha_bar_to_flow_t([2.0**-108]), lambda: sch.sigmas_to_flow_t([2.0**54])):
        with pytest.raises(ValueError, match="flow time t rounds to 1"):
            call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sch.alpha_bar_to_log_snr([-1e-300]), r"alpha_bar must lie in \[0, 1\]"),
        (lambda: sch.flow_t_to_alpha_bar([1.5]), r"t must lie in \[0, 1\]"),
        (lambda: sch.flow_t_to_alpha_bar([1e-300]), "t: .*rounds to 1"),  # 1 - alpha_bar = 1e-600
        (lambda: sch.log_snr_to_alpha_bar([-800.0]), "log_snr.*underflows"),
        (lambda: sch.sigmas_to_alpha_bar([1e170]), "sigmas.*too small|sigmas"),
        (lambda: sch.sigmas_to_flow_t([np.nan]), "NaN"),
        (lambda: sch.log_snr_to_flow_t([np.nan]), "NaN"),
    ],
)
def test_unrepresentable_conversions_raise_naming_the_argument(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# training grids with alpha_bar_T = 0
# ---------------------------------------------------------------------------------------------
def test_betas_with_a_last_beta_of_one() -> None:
    g = sch.betas_to_alpha_bar([0.1, 0.5, 1.0])
    assert g.tolist() == [0.9, 0.45, 0.0]
    np.testing.assert_allclose(sch.alpha_bar_to_betas(g), [0.1, 0.5, 1.0], rtol=1e-15)
    with pytest.raises(ValueError, match="only the last may be 1"):
        sch.betas_to_alpha_bar([0.1, 1.0, 0.5])


def test_rescaled_grid_is_lin_et_al_and_diffusers() -> None:
    """Lin et al. (2023) Algorithm 1 written here from the paper; diffusers' float32 grid agrees to float32 precision."""
    T = 1000
    betas = np.linspace(0.00085**0.5, 0.012**0.5, T) ** 2
    ab = np.cumprod(1.0 - betas)
    r = np.sqrt(ab)
    r = (r - r[-1]) * r[0] / (r[0] - r[-1])
    ref = r**2
    g = sch.training_grid("scaled_linear", rescale_zero_snr=True)
    assert g[-1] == 0.0 and g[0] == ab[0]
    np.testing.assert_allclose(g[:-1], ref[:-1], rtol=1e-12)
    diffusers = pytest.importorskip("diffusers")
    d = diffusers.DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                rescale_betas_zero_snr=True)
    ac = d.alphas_cumprod.double().numpy()
    assert ac[-1] == 0.0
    np.testing.assert_allclose(ac[:-1], g[:-1], rtol=1e-4)  # float32 grid, cancellation at the noisy end
    np.testing.assert_allclose(ac[:900], g[:900], rtol=2e-6)


def test_zero_snr_grid_in_from_grid_timesteps_and_nearest() -> None:
    g = sch.training_grid("scaled_linear", rescale_zero_snr=True)
    ab = sch.from_grid(g, sch.timesteps(10, spacing="trailing"))
    assert ab[0] == 0.0 and np.all(np.diff(ab) > 0)
    assert sch.nearest_timesteps(ab, g).tolist() == sch.timesteps(10, spacing="trailing").tolist()
    assert sch.nearest_timesteps([0.0, 0.5], g)[0] == 999
    # every named schedule on a zero-SNR grid: valid levels on the grid (the 0 level wherever the name reaches it)
    for name in sch.STANDARD_SCHEDULES + sch.FLOW_SCHEDULES:
        try:
            lev = sch.standard_schedule(name, 10, grid=g)
        except ValueError as exc:  # only the documented snapping conflict
            assert "same grid timestep" in str(exc), (name, exc)
            continue
        assert np.all(np.isin(lev, g)), name
    assert sch.standard_schedule("flow-uniform", 10, grid=g)[0] == 0.0


def test_shifted_exact_far_below_minus_60() -> None:
    """Issue 11: shifted() saturated near log_snr_min = -75 and then blamed 'log_snr'; exact for any end now."""
    mp.dps = 50
    for lmin in (-60.0, -100.0, -700.0):  # -702.2 after the shift: alpha_bar 1e-305, still a float64
        for base in ("flow", "cosine"):
            l0 = sch.alpha_bar_to_log_snr(sch.shifted(6, shift=3.0, base=base, log_snr_min=lmin))[0]
            assert abs(l0 - (lmin - 2 * np.log(3.0))) <= 1e-12 * abs(lmin), (lmin, base, l0)
    ab = sch.shifted(6, base="flow", log_snr_min=-np.inf)
    assert ab[0] == 0.0
    # both ends infinite, shift 1: exactly the uniform flow schedule t = 1 - i/K
    np.testing.assert_allclose(sch.alpha_bar_to_flow_t(sch.shifted(8, shift=1.0, log_snr_min=-np.inf,
                                                                  log_snr_max=np.inf)),
                               1 - np.arange(8) / 8, rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="log_snr_min/log_snr_max or shift") as info:
        sch.shifted(6, log_snr_min=-2000.0)
    assert "log_snr:" not in str(info.value)  # no argument the caller never passed


# ---------------------------------------------------------------------------------------------
# samplers from alpha_bar = 0
# ---------------------------------------------------------------------------------------------
def test_ddim_white_start_from_zero_snr_only_scales() -> None:
    """x0_hat = 0, eps_hat = x at alpha_bar = 0: P(S, [0, .3, .9]) = (1 - .3) P(S, [.3, .9])."""
    S = np.array([0.0, 1e-300, 1e-12, 1e-3, 1.0, 7.0, 1e12, 1e300])
    P = symsched.output_spectrum(S, [0.0, 0.3, 0.9])
    np.testing.assert_allclose(P, 0.7 * symsched.output_spectrum(S, [0.3, 0.9]), rtol=1e-14)


@pytest.mark.parametrize("name", symsched.SAMPLERS)
def test_every_sampler_takes_a_zero_first_level_or_names_it(name: str) -> None:
    """A finite output (mpmath-checked in test_zero_snr_extremes.py), or a ValueError naming alpha_bar."""
    S = np.geomspace(1e-3, 1e3, 5)
    try:
        P = symsched.output_spectrum(S, [0.0, 0.2, 0.6, 0.95], sampler=name)
    except ValueError as exc:
        assert "alpha_bar" in str(exc) and "0" in str(exc), str(exc)
        return
    assert np.all(np.isfinite(P)) and np.all(P >= 0)


@pytest.mark.parametrize("name,options", [
    ("dpmpp_2m_sde", {}), ("dpmpp_2m_sde", {"solver_type": "heun"}), ("dpmpp_3m_sde", {}), ("dpmpp_sde", {}),
    ("euler_ancestral", {}),
])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_sde_samplers_from_zero_snr_restart_from_pure_noise(name: str, options: dict, eta: float) -> None:
    """From sigma = inf these samplers' first step leaves pure noise of the next level, x_1 = sigma_1 z
    (e^{-eta h} x -> 0, or (sigma_1/sigma_0) x -> sigma_1 z, and D -> 0), and the next step forgets the history
    (r = h_{i-1}/h_i = inf): the schedule [0, a_1, ...] is the schedule [a_1, ...] from k-diffusion's white start
    x = sigma_1 z. These were refused before the limits were taken at the parameter values the step runs with
    (a symbolic eta made SymPy answer 'unbounded' or nothing)."""
    S = np.array([1e-3, 0.05, 3.0, 40.0])
    ab = [0.2, 0.6, 0.95]
    kw = dict(sampler=name, eta=eta, **options)
    expected = symsched.output_spectrum(S, ab, **kw)
    np.testing.assert_allclose(symsched.output_spectrum(S, [0.0, *ab], **kw), expected, rtol=1e-9)
    np.testing.assert_allclose(symsched.output_spectrum_ve(S, [INF, *sch.alpha_bar_to_sigmas(ab)], **kw), expected,
                               rtol=1e-9)
    # and it is the limit of the finite schedules (slowly for the multistep ones: the history weight is 1/r)
    near = symsched.output_spectrum(S, [1e-300, *ab], **kw)
    np.testing.assert_allclose(near, expected, rtol=0.02)


def test_heun_from_sigma_inf_is_refused_as_unbounded() -> None:
    """Heun's corrector adds (sigma_1 - sigma_0) d_1 / 2 with d_1 finite: unbounded as sigma_0 -> inf (P grows like
    1/alpha_bar_0), so the refusal is genuine, not a failed limit."""
    with pytest.raises(ValueError, match="unbounded"):
        symsched.output_spectrum([1.0], [0.0, 0.5, 0.9], sampler="heun")
    P = [symsched.output_spectrum([1.0], [a0, 0.5, 0.9], sampler="heun")[0] for a0 in (1e-10, 1e-20)]
    assert P[1] > 1e9 * P[0]
    # the mpmath entry points say the same, naming the argument (break-test F7: "it is unbounded there" alone)
    with pytest.raises(ValueError, match=r"^alpha_bar: sampler 'heun' is undefined at alpha_bar = 0 .* unbounded"):
        symsched.output_spectrum_mp([1.0], [0.0, 0.5], sampler="heun")
    with pytest.raises(ValueError, match=r"^sigmas: sampler 'heun' is undefined at alpha_bar = 0 .* unbounded"):
        symsched.output_spectrum_ve_mp([1.0], [np.inf, 1.0], sampler="heun")
    with pytest.raises(ValueError) as info:  # a one-step sampler's step is "its step", not "its step 'step'"
        symsched.output_spectrum([1.0], [0.0, 0.5, 0.9], sampler="heun")
    assert "for its step it is unbounded" in str(info.value) and "'step'" not in str(info.value)


@pytest.mark.parametrize("name", ["euler", "dpmpp_2m", "lms", "euler_ancestral", "dpm_2", "dpmpp_2m_sde", "ddim"])
def test_ve_samplers_through_sigma_inf(name: str) -> None:
    """output_spectrum_ve with a leading inf is the alpha_bar = 0 schedule."""
    S = np.geomspace(1e-2, 1e2, 5)
    ab = np.array([0.0, 0.1, 0.5, 0.9])
    try:
        P = symsched.output_spectrum(S, ab, sampler=name)
    except ValueError as exc:
        assert "alpha_bar" in str(exc)
        with pytest.raises(ValueError):
            symsched.output_spectrum_ve(S, [INF, 3.0, 1.0, 1 / 3], sampler=name)
        return
    P_ve = symsched.output_spectrum_ve(S, sch.alpha_bar_to_sigmas(ab), sampler=name)
    np.testing.assert_allclose(P_ve, P, rtol=1e-12)


def test_tiny_levels_are_exact_not_nan() -> None:
    S = np.array([1e-3, 1.0, 30.0])
    for ab in ([1e-320, 0.3, 0.9], [1e-200, 1e-160, 0.5]):
        P = symsched.output_spectrum(S, ab)
        ref = np.array(symsched.output_spectrum_mp(S, ab, dps=60), dtype=float)
        np.testing.assert_allclose(P, ref, rtol=1e-9)
    sig = [1e200, 1e155, 1.0]
    P = symsched.output_spectrum_ve(S, sig)
    np.testing.assert_allclose(P, np.array(symsched.output_spectrum_ve_mp(S, sig, dps=60), dtype=float), rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# diffusers import / export
# ---------------------------------------------------------------------------------------------
def test_from_diffusers_names_a_timestep_outside_the_grid() -> None:
    """Stable Diffusion's config (steps_offset=1, leading) at 1000 steps visits timestep 1000: a ValueError, not IndexError."""
    diffusers = pytest.importorskip("diffusers")
    d = diffusers.DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                timestep_spacing="leading", clip_sample=False, set_alpha_to_one=False)
    d.set_timesteps(1000)
    with pytest.raises(ValueError, match=r"timestep 1000 .*outside the training grid \[0, 999\]"):
        from_diffusers(d)
    p = diffusers.DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                timestep_spacing="leading", clip_sample=False)
    p.set_timesteps(1000)
    with pytest.raises(ValueError, match="timestep 1000"):
        from_diffusers(p)


@pytest.mark.parametrize("cls", ["DDIMScheduler", "DDPMScheduler"])
def test_from_diffusers_reads_a_zero_snr_scheduler(cls: str) -> None:
    diffusers = pytest.importorskip("diffusers")
    kw = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True,
              timestep_spacing="trailing", clip_sample=False, prediction_type="v_prediction")
    if cls == "DDIMScheduler":
        kw["set_alpha_to_one"] = True
    s = getattr(diffusers, cls)(**kw)
    s.set_timesteps(10)
    info = from_diffusers(s)
    assert info.alpha_bar[0] == 0.0 and info.sigmas[0] == INF and info.consistent
    P = info.output_spectrum(np.geomspace(1e-2, 1e2, 4))
    assert np.all(np.isfinite(P))


def test_exports_refuse_sigma_inf_and_keep_ddpm_timesteps() -> None:
    g = sch.training_grid("scaled_linear", rescale_zero_snr=True)
    ab = sch.from_grid(g, sch.timesteps(10, spacing="trailing"))
    with pytest.raises(ValueError, match="alpha_bar: the first level is 0"):
        to_k_diffusion_sigmas(ab)
    with pytest.raises(ValueError, match="alpha_bar: the first level is 0"):
        to_diffusers(ab)
    assert to_diffusers(ab, grid=g)["timesteps"] == sch.timesteps(10, spacing="trailing").tolist()


# a zero first level that the third-order multistep steps read as history (break-test F5)
AB_HISTORY = [0.0, 0.011269571206198791, 0.024010778424453594, 0.6078723715360526, 0.7472460848904522,
              0.8543258558596021]


@pytest.mark.slow
@pytest.mark.parametrize("name,kw", [
    ("dpmsolver_multistep", dict(solver_order=3)),
    ("dpmsolver_multistep", dict(solver_order=3, algorithm_type="sde-dpmsolver++")),
    ("unipc_multistep", dict(solver_order=3)),
    ("deis_multistep", dict(solver_order=3)),
])
def test_third_order_history_at_pure_noise_is_the_limit_of_tiny_levels(name: str, kw: dict) -> None:
    """DPM-Solver order 3 with alpha_bar = 0 as a history level spent many minutes in SymPy's limit (break-test
    F5); the limit is now taken in log(alpha_bar). Checked independently of that derivation: those steps read
    the level through its log-SNR, so P(eps) - P(0) decays like c / log(eps) (mpmath at eps = 1e-150, 1e-300,
    where no limit is taken): halving log eps halves the gap, to 1 %. A P(0) off by 0.1 % breaks that ratio."""
    S = [1.0, 0.01, 100.0]
    P0 = symsched.output_spectrum(S, AB_HISTORY, sampler=name, **kw)

    def gap(eps: float, ref: np.ndarray) -> np.ndarray:
        P = symsched.output_spectrum_mp(S, [eps] + AB_HISTORY[1:], sampler=name, dps=30, **kw)
        return np.array([float(x) for x in P]) - ref

    g1, g2 = gap(1e-150, P0), gap(1e-300, P0)
    np.testing.assert_allclose(g1 / g2, 2.0, rtol=0.02)
    wrong = P0 * (1 + 1e-3)
    assert np.max(np.abs(gap(1e-150, wrong) / gap(1e-300, wrong) - 2.0)) > 0.1


def test_degenerate_zero_snr_grids_are_refused_or_determined() -> None:
    """break-test 54: a grid [0.0] ended in IndexError (karras's baseline took the largest finite sigma of none);
    on [0.5, 0.0] K = 2 (the only choice: both levels) and K = 1 with free endpoints the search divided 0/0
    (RuntimeWarnings, then 'log_snr must not be NaN')."""
    import warnings

    S = np.logspace(-2, 2, 20)
    with pytest.raises(ValueError, match=r"^grid must hold a level above 0 before its zero-terminal-SNR entry"):
        symsched.optimize_schedule(S, 1, grid=np.array([0.0]))
    with pytest.raises(ValueError, match=r"^grid must hold a level above 0"):
        sch.standard_schedule("karras", 1, grid=np.array([0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        both = symsched.optimize_schedule(S, 2, grid=np.array([0.5, 0.0]))
        np.testing.assert_array_equal(both.alpha_bar, [0.0, 0.5])
        np.testing.assert_array_equal(both.timesteps, [1, 0])
        assert both.value == pytest.approx(symsched.w2_distance(symsched.output_spectrum(S, [0.0, 0.5]), S) ** 2, rel=1e-12)
        free = symsched.optimize_schedule(S, 1, grid=np.array([0.5, 0.0]), endpoints=(None, None))
        np.testing.assert_array_equal(free.alpha_bar, [0.5])


def _standin_grid() -> np.ndarray:
    """A zero-SNR grid as EulerDiscrete/DPMSolverMultistep/UniPC keep it: the last entry diffusers' 2**-24."""
    g = symsched.schedules.training_grid("scaled_linear", rescale_zero_snr=True).copy()
    g[-1] = 2.0**-24
    return g


def test_a_standin_grid_is_refused_for_samplers_whose_scheduler_runs_zero() -> None:
    """break-test: a grid saved from EulerDiscreteScheduler (last entry 2**-24) optimised for ddpm: the schedule's
    first level was 5.96e-8 but the exported DDPMScheduler (rescale_betas_zero_snr=True) runs alpha_bar = 0 there."""
    S = np.logspace(-2, 2, 16)
    for sampler, eta in (("ddpm", None), ("ddim", 1.0)):  # both export to DDPMScheduler
        with pytest.raises(ValueError, match=r"^grid ends in 2\*\*-24, diffusers' stand-in"):
            symsched.optimize_schedule(S, 4, sampler=sampler, eta=eta, grid=_standin_grid())
    # DDIM eta = 0 exports to EulerDiscreteScheduler sigmas, which run the stand-in level itself (review)
    assert symsched.optimize_schedule(S, 4, sampler="ddim", grid=_standin_grid(), maxiter=5).alpha_bar[0] == 2.0**-24
    g0 = _standin_grid()
    g0[-1] = 0.0  # the fix the message names
    assert symsched.optimize_schedule(S, 4, sampler="ddpm", grid=g0, maxiter=5).alpha_bar.size == 4


def test_dpmsolver_exports_the_standin_level_it_runs() -> None:
    """DPMSolverMultistepScheduler runs a zero-SNR timestep at 2**-24: optimised on its own grid, the first level is
    that stand-in, and the export places it on the last timestep (it was refused: "not on the grid")."""
    S = np.logspace(-2, 2, 16)
    res = symsched.optimize_schedule(S, 4, sampler="dpmsolver_multistep", grid=_standin_grid(), maxiter=20)
    assert res.alpha_bar[0] == 2.0**-24
    kw = symsched.export.to_diffusers(res.alpha_bar, scheduler="DPMSolverMultistepScheduler", grid=_standin_grid())
    assert kw["timesteps"][0] == 999
    with pytest.raises(ValueError, match=r"alpha_bar\[0\]=5\.96.* is not on the grid"):
        symsched.export.to_diffusers(res.alpha_bar, scheduler="DDPMScheduler", grid=_standin_grid())  # DDPM would run 0 there
    diffusers = pytest.importorskip("diffusers")
    s = diffusers.DPMSolverMultistepScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                              rescale_betas_zero_snr=True)
    s.set_timesteps(**kw)
    np.testing.assert_allclose(symsched.export.from_diffusers(s).alpha_bar, res.alpha_bar, rtol=1e-5)  # float32 cumprod


def test_rescale_of_a_grid_already_ending_at_zero_warns_nothing() -> None:
    """Audit 3b A1: a grid whose last level is already 0 printed "invalid value encountered in divide" (0/0 in
    sqrt(g[-1] / g)) though the result was right."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(sch.rescale_zero_terminal_snr([0.5, 0.0]), [0.5, 0.0])
        np.testing.assert_array_equal(sch.rescale_zero_terminal_snr([0.9, 0.5, 0.0]), [0.9, 0.5, 0.0])  # identity
