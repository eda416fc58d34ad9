"""Tests for symsched.schedules: expected values are derived by hand from the definitions or
taken from the papers / published tables, never by running the code under test."""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from symsched import schedules as sch
from symsched._validate import as_levels
from errstate_helpers import assert_unchanged_under_seterr_raise

SETTINGS = settings(derandomize=True, database=None, max_examples=300, deadline=None)

SD15_TABLE = [14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
              0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582]


def rel_close(a, b, tol):
    """|a - b| <= tol * min(b, 1 - b): relative precision in both alpha_bar and 1 - alpha_bar."""
    a, b = np.asarray(a), np.asarray(b)
    return np.all(np.abs(a - b) <= tol * np.minimum(b, 1.0 - b))


# ------------------------------------------------------------------------------ training grids


def test_linear_grid_matches_ddpm():
    g = sch.training_grid("linear")
    assert g.shape == (1000,)
    assert g[0] == pytest.approx(1 - 1e-4, rel=1e-15)
    # DDPM linear grid: alphas_cumprod[999] = 4.0358e-5 (diffusers / Ho et al. T=1000 setting)
    assert g[-1] == pytest.approx(4.0358e-5, rel=1e-4)
    assert np.all(np.diff(g) < 0)


def test_scaled_linear_grid_sigma_range_is_stable_diffusions():
    sig = sch.alpha_bar_to_sigmas(sch.training_grid("scaled_linear"))
    # Stable Diffusion's sigma range, the end points of the Align-Your-Steps tables
    assert sig[-1] == pytest.approx(14.6146412293, rel=1e-6)
    assert sig[0] == pytest.approx(0.0291671582, rel=1e-6)


def test_cosine_grid_telescopes():
    T, s = 1000, 0.008
    g = sch.training_grid("cosine")

    def f(t):
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    # the product of ratios f(t+1)/f(t) telescopes to f(t+1)/f(0) while no beta is capped
    for t in (0, 1, 10, 500, 990, 998):
        assert g[t] == pytest.approx(f(t + 1) / f(0), rel=1e-12)
    betas = sch.cosine_betas()
    assert betas[-1] == 0.999  # f(T) = 0, capped at max_beta
    assert np.all(betas[:-1] < 0.999)


def test_sigmoid_betas():
    b = sch.sigmoid_betas(1000)
    b0, b1 = 1e-4, 0.02
    assert b[0] == pytest.approx(b0 + (b1 - b0) / (1 + math.exp(6.0)), rel=1e-14)
    # expit(-u) + expit(u) = 1 and linspace(-6, 6) is symmetric
    np.testing.assert_allclose(b + b[::-1], b0 + b1, rtol=1e-14)
    assert np.all(np.diff(b) > 0)


def test_scaled_linear_betas_are_linear_in_sqrt():
    b = sch.scaled_linear_betas(5, beta_start=0.01, beta_end=0.09)
    np.testing.assert_allclose(np.sqrt(b), [0.1, 0.15, 0.2, 0.25, 0.3], rtol=1e-14)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sch.training_grid("quadratic"), "beta_schedule"),
        (lambda: sch.training_grid("linear", gamma=1), "bad keyword"),
        (lambda: sch.linear_betas(0), "T must be a positive integer"),
        (lambda: sch.linear_betas(10, beta_start=0.0), "beta_start"),
        (lambda: sch.linear_betas(10, beta_end=1.0), "beta_end"),
        (lambda: sch.cosine_betas(10, s=-1), "s must be positive"),
        (lambda: sch.cosine_betas(10, max_beta=1.0), "max_beta"),
        (lambda: sch.training_grid("linear", num_train_timesteps=2.5), "num_train_timesteps"),
    ],
)
def test_training_grid_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------ conversions


def test_conversion_hand_values():
    ab = np.array([0.2, 0.5, 0.8])
    np.testing.assert_allclose(sch.alpha_bar_to_log_snr(ab), [-math.log(4), 0.0, math.log(4)], atol=1e-15)
    np.testing.assert_allclose(sch.alpha_bar_to_sigmas(ab), [2.0, 1.0, 0.5], rtol=1e-15)
    np.testing.assert_allclose(sch.sigmas_to_alpha_bar([2.0, 1.0, 0.5]), ab, rtol=1e-15)
    np.testing.assert_allclose(sch.log_snr_to_alpha_bar([0.0, math.log(4)]), [0.5, 0.8], rtol=1e-15)
    # elementwise on any shape
    assert sch.alpha_bar_to_sigmas(np.full((2, 3), 0.5)).shape == (2, 3)


unit_floats = st.one_of(
    st.floats(min_value=1e-300, max_value=1e-12),  # within 1e-12 of 0
    st.floats(min_value=1e-12, max_value=1.0, exclude_max=True),
    st.floats(min_value=2.0**-53, max_value=1e-12).map(lambda d: 1.0 - d),  # within 1e-12 of 1
)


@SETTINGS
@given(st.lists(unit_floats, min_size=1, max_size=20))
def test_log_snr_and_sigma_round_trips(values):
    ab = np.array(values)
    ab = ab[(ab > 0) & (ab < 1)]
    assume(ab.size > 0)
    assert rel_close(sch.log_snr_to_alpha_bar(sch.alpha_bar_to_log_snr(ab)), ab, 1e-12)
    assert rel_close(sch.sigmas_to_alpha_bar(sch.alpha_bar_to_sigmas(ab)), ab, 1e-12)


@st.composite
def chains(draw):
    """Schedules (noisiest first) whose consecutive ratios are >= 1e-3 (the documented condition),
    reaching within 1e-12 of 1 (top level) and of 0 (after enough steps)."""
    top = 1.0 - draw(st.floats(min_value=2.0**-53, max_value=0.5))
    ratios = draw(st.lists(st.floats(min_value=1e-3, max_value=1.0 - 1e-9), min_size=0, max_size=60))
    levels = [top]
    for r in ratios:
        nxt = levels[-1] * r
        if nxt < 1e-300 or nxt >= levels[-1]:
            break
        levels.append(nxt)
    return np.array(levels[::-1])


@SETTINGS
@given(chains())
def test_betas_round_trip(ab):
    ab = as_levels(ab)
    betas = sch.alpha_bar_to_betas(ab[::-1])  # training order
    assert np.all((betas > 0) & (betas < 1))
    back = sch.betas_to_alpha_bar(betas)[::-1]
    assert rel_close(back, ab, 1e-12)


def test_betas_round_trip_extremes():
    # 1 - 1e-13 down to ~1e-13 in ratio-1e-3 steps, plus a level at 1 - 2**-53
    ab = np.concatenate([[1e-13 * 1.2345], 1e-3 ** np.arange(4, 0, -1) * 0.987, [0.5, 1 - 1e-13, 1 - 2.0**-53]])
    ab = as_levels(ab)
    back = sch.betas_to_alpha_bar(sch.alpha_bar_to_betas(ab[::-1]))[::-1]
    assert rel_close(back, ab, 1e-12)
    assert back[-1] == 1 - 2.0**-53 and back[-2] == 1 - 1e-13
    assert rel_close(sch.log_snr_to_alpha_bar(sch.alpha_bar_to_log_snr(ab)), ab, 1e-12)
    assert rel_close(sch.sigmas_to_alpha_bar(sch.alpha_bar_to_sigmas(ab)), ab, 1e-12)


def test_betas_to_alpha_bar_matches_product():
    b = np.array([0.1, 0.2, 0.5])
    np.testing.assert_allclose(sch.betas_to_alpha_bar(b), [0.9, 0.72, 0.36], rtol=1e-15)
    np.testing.assert_allclose(sch.alpha_bar_to_betas([0.9, 0.72, 0.36]), b, rtol=1e-14)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sch.alpha_bar_to_log_snr([0.5, 1.5]), r"\[0, 1\]"),  # 0 and 1 are levels (issue 11)
        (lambda: sch.alpha_bar_to_sigmas([-0.1]), r"\[0, 1\]"),
        (lambda: sch.alpha_bar_to_log_snr([np.nan]), "NaN"),
        (lambda: sch.alpha_bar_to_log_snr([]), "empty"),
        (lambda: sch.alpha_bar_to_log_snr(["a"]), "real numbers"),
        (lambda: sch.log_snr_to_alpha_bar([40.0]), "rounds to 1"),
        (lambda: sch.log_snr_to_alpha_bar([-800.0]), "underflows to 0"),
        (lambda: sch.log_snr_to_alpha_bar([np.nan]), "NaN"),
        (lambda: sch.sigmas_to_alpha_bar([np.nan]), r"sigmas must not be NaN .*\[0, inf\]"),
        (lambda: sch.sigmas_to_alpha_bar([-1.0]), r"sigmas must lie in \[0, inf\]"),
        (lambda: sch.sigmas_to_alpha_bar([1e-9]), "sigmas.*rounds to 1"),
        (lambda: sch.betas_to_alpha_bar([1.0, 0.1]), r"betas must lie in the open interval.*only the last may be 1"),
        (lambda: sch.betas_to_alpha_bar([[0.1]]), "betas must be 1-D"),
        (lambda: sch.betas_to_alpha_bar(np.full(400, 0.9)), r"^betas: alphas_cumprod\[322\] = 1e-323 and alphas_cumprod"
                                                            r"\[323\] = 0.0 are not distinct levels: .* underflows"),
        (lambda: sch.alpha_bar_to_betas([0.5, 0.7]), "strictly decreasing"),
        (lambda: sch.alpha_bar_to_betas([[0.5]]), "1-D"),
    ],
)
def test_conversion_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_log_snr_refusal_bound_is_the_one_it_states():
    """Audit of 5 December: the message said "above about 36.7" while 36.8 to 37.42 were accepted. The largest level
    below 1 is 1 - 2**-53 (log-SNR 53 ln 2 = 36.74); 1 - expit(-l) rounds to 1 once e^-l <= 2**-54, l >= 54 ln 2."""
    top = 54 * math.log(2)  # 37.4299...
    assert sch.log_snr_to_alpha_bar([top - 1e-9]).tolist() == [1 - 2.0 ** -53]
    assert sch.log_snr_to_alpha_bar([53 * math.log(2)]).tolist() == [1 - 2.0 ** -53]
    with pytest.raises(ValueError, match=r"above about 37\.43.*log_snr\[0\]=37\.43"):
        sch.log_snr_to_alpha_bar([37.43])


# ------------------------------------------------------------------------------ timesteps


@pytest.mark.parametrize(
    "spacing, K, expected",
    [
        ("leading", 10, [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]),
        ("trailing", 10, [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]),
        ("linspace", 10, [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]),
        # K=7: leading ratio 1000 // 7 = 142; trailing round(1000 - 1000 i / 7) - 1
        ("leading", 7, [852, 710, 568, 426, 284, 142, 0]),
        ("trailing", 7, [999, 856, 713, 570, 428, 285, 142]),
        ("linspace", 7, [999, 832, 666, 500, 333, 166, 0]),
        ("leading", 1, [0]),
        ("trailing", 1, [999]),
        ("linspace", 1, [0]),
    ],
)
def test_timesteps_by_hand(spacing, K, expected):
    t = sch.timesteps(K, spacing=spacing)
    assert t.dtype == np.int64
    np.testing.assert_array_equal(t, expected)


def test_timesteps_offset_and_full_grid():
    np.testing.assert_array_equal(sch.timesteps(10, steps_offset=1), np.arange(901, 0, -100))
    # steps_offset only affects leading spacing, as in diffusers
    np.testing.assert_array_equal(sch.timesteps(10, spacing="trailing", steps_offset=1), np.arange(999, 0, -100))
    for sp in sch.SPACINGS:
        np.testing.assert_array_equal(sch.timesteps(1000, spacing=sp), np.arange(999, -1, -1))
    t = sch.timesteps(61, spacing="trailing")  # diffusers returns 62 values ending in -1 here
    assert t.size == 61 and t[-1] == round(1000 / 61) - 1 and t[0] == 999
    np.testing.assert_array_equal(sch.timesteps(5, num_train_timesteps=20), [16, 12, 8, 4, 0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_steps=1001), "must not exceed num_train_timesteps"),
        (dict(num_steps=0), "num_steps must be a positive integer"),
        (dict(num_steps=2.5), "num_steps must be a positive integer"),
        (dict(num_steps=True), "num_steps must be a positive integer"),
        (dict(num_steps=np.inf), "num_steps must be a positive integer"),
        (dict(num_steps=10, steps_offset=np.nan), "steps_offset must be a non-negative integer"),
        (dict(num_steps=10, spacing="middle"), "spacing must be one of"),
        (dict(num_steps=10, steps_offset=-1), "steps_offset must be a non-negative integer"),
        (dict(num_steps=1000, steps_offset=1), "past num_train_timesteps - 1"),
        (dict(num_steps=10, num_train_timesteps=0), "num_train_timesteps must be a positive integer"),
    ],
)
def test_timesteps_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sch.timesteps(**kwargs)


@pytest.mark.diffusers
def test_timesteps_match_diffusers_ddim():
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    for spacing, offset in (("leading", 0), ("leading", 1), ("trailing", 0), ("linspace", 0)):
        ref = diffusers.DDIMScheduler(timestep_spacing=spacing, steps_offset=offset)
        for K in range(1, 1001):
            if offset and K == 1000:
                continue
            ref.set_timesteps(K)
            expected = ref.timesteps.numpy()[:K]  # diffusers' trailing may append a spurious -1
            np.testing.assert_array_equal(
                sch.timesteps(K, spacing=spacing, steps_offset=offset), expected, err_msg=f"{spacing} K={K}"
            )
    # training grids against diffusers' (float32) alphas_cumprod
    for name, kw in (("linear", {}), ("scaled_linear", dict(beta_start=0.00085, beta_end=0.012)),
                     ("squaredcos_cap_v2", {}), ("sigmoid", {})):
        ref = diffusers.DDPMScheduler(beta_schedule=name, **kw).alphas_cumprod.numpy()
        ours = sch.training_grid({"squaredcos_cap_v2": "cosine"}.get(name, name))
        np.testing.assert_allclose(ours, ref, rtol=2e-4)


# ------------------------------------------------------------------------------ from_grid


def test_from_grid_order_and_values():
    grid = np.array([0.9, 0.7, 0.5, 0.3, 0.1])
    np.testing.assert_array_equal(sch.from_grid(grid, [4, 2, 0]), [0.1, 0.5, 0.9])
    np.testing.assert_array_equal(sch.from_grid(grid, np.array([0, 4, 2])), [0.1, 0.5, 0.9])
    np.testing.assert_array_equal(sch.from_grid(grid, [3.0]), [0.3])
    g = sch.training_grid("linear")
    ab = sch.from_grid(g, sch.timesteps(10))
    assert ab[0] == g[900] and ab[-1] == g[0]


@pytest.mark.parametrize(
    "grid, ts, match",
    [
        ([0.9, 0.7, 0.5], [0, 0], "distinct"),
        ([0.9, 0.7, 0.5], [3], r"lie in \[0, 2\]"),
        ([0.9, 0.7, 0.5], [-1], r"lie in \[0, 2\]"),
        ([0.9, 0.7, 0.5], [0.5], "integers"),
        ([0.9, 0.7, 0.5], [], "non-empty 1-D"),
        ([0.9, 0.7, 0.5], [True], "integers"),
        ([0.5, 0.7, 0.9], [0], "strictly decreasing"),
        ([0.9, 0.7, 1.0], [0], r"must lie in \(0, 1\)"),
    ],
)
def test_from_grid_errors(grid, ts, match):
    with pytest.raises(ValueError, match=match):
        sch.from_grid(grid, ts)


# ------------------------------------------------------------------------------ continuous


def test_karras():
    ab = sch.karras(3)
    sig = np.sqrt((1 - ab) / ab)
    mid = ((80 ** (1 / 7) + 0.002 ** (1 / 7)) / 2) ** 7
    # alpha_bar = 1/(1 + 0.002**2) is a float64 within 4e-6 of 1, so 1 - alpha_bar (and sigma)
    # is only known to ulp(1) / 4e-6 ~ 3e-11 relative
    np.testing.assert_allclose(sig, [80.0, mid, 0.002], rtol=1e-10)
    assert sch.karras(1)[0] == pytest.approx(1 / (1 + 80.0**2), rel=1e-14)
    sig = sch.alpha_bar_to_sigmas(sch.karras(5, sigma_min=1.0, sigma_max=5.0, rho=1.0))
    np.testing.assert_allclose(sig, [5, 4, 3, 2, 1], rtol=1e-13)


def test_kl_optimal_equal_arctan_steps():
    K = 12
    ab = sch.kl_optimal(K, sigma_min=0.03, sigma_max=14.6)
    theta = np.arctan(np.sqrt((1 - ab) / ab))
    assert theta[0] == pytest.approx(math.atan(14.6), rel=1e-13)
    assert theta[-1] == pytest.approx(math.atan(0.03), rel=1e-12)
    np.testing.assert_allclose(np.diff(theta), (math.atan(0.03) - math.atan(14.6)) / (K - 1), rtol=1e-10)
    # alpha_bar = cos^2(theta)
    np.testing.assert_allclose(ab, np.cos(theta) ** 2, rtol=1e-13)


@pytest.mark.parametrize("K, lo, hi", [(3, 1e14, 1e18), (4, 1e12, 1e15), (5, 1e6, 1e14), (60, 1e-7, 1e150),
                                       (1000, 0.002, 80.0)])
def test_kl_optimal_keeps_every_digit_where_the_angle_nears_a_right_angle(K, lo, hi):
    """Audit of 4 December: tan(linspace(atan(hi), atan(lo))) kept only the two ends once both angles rounded to
    ~pi/2 (the middle sigma of K=3 from 1e18 to 1e14 was 1.1 % off). Reference: the same law in mpmath, 60 digits,
    alpha_bar = sin^2(phi) and 1 - alpha_bar = sin^2(theta), phi = pi/2 - theta formed from atan(1/sigma). float64
    holds alpha_bar to a few ulp relative and 1 - alpha_bar to ulp(1) absolute (its representation near 1)."""
    ab = sch.kl_optimal(K, sigma_min=lo, sigma_max=hi)
    with mpmath.workdps(60):
        for i in range(K):
            t = mpmath.mpf(i) / (K - 1)
            phi = (1 - t) * mpmath.atan(1 / mpmath.mpf(hi)) + t * mpmath.atan(1 / mpmath.mpf(lo))
            theta = (1 - t) * mpmath.atan(mpmath.mpf(hi)) + t * mpmath.atan(mpmath.mpf(lo))
            # (sigma passes through exp(log sigma): ~|log sigma| ulps, 6e-15 at 1e18, squared in alpha_bar)
            assert abs(mpmath.mpf(ab[i]) / mpmath.sin(phi) ** 2 - 1) < 2e-14 * (1 + math.log2(K))
            assert abs((1 - mpmath.mpf(ab[i])) - mpmath.sin(theta) ** 2) < 6e-16


def test_a_ddpm_grid_name_names_steps_beyond_its_training_grid():
    """Audit of 4 December: the refusal named timesteps()' own argument, num_steps, which standard_schedule lacks."""
    with pytest.raises(ValueError, match=r"^steps: 'linear-trailing' .* at most 1000 steps \(got 1001\)"):
        sch.standard_schedule("linear-trailing", 1001)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sch.karras(0), "K must be a positive integer"),
        (lambda: sch.karras(5, sigma_min=1.0, sigma_max=1.0), "greater than sigma_min"),
        (lambda: sch.karras(5, sigma_min=0.0), "sigma_min must be positive"),
        (lambda: sch.karras(5, rho=-1), "rho must be positive"),
        (lambda: sch.karras(5, sigma_max=np.inf), "sigma_max must be finite"),
        (lambda: sch.karras(5, sigma_min=1e-10), "rounds to 1"),
        (lambda: sch.kl_optimal(5, sigma_min=2.0, sigma_max=1.0), "greater than sigma_min"),
        (lambda: sch.kl_optimal(5, sigma_max="big"), "sigma_max must be a real number"),
    ],
)
def test_continuous_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_shifted_flow_is_sd3_time_shift():
    K, s = 8, 3.0
    base = sch.shifted(K, shift=1.0)
    out = sch.shifted(K, shift=s)
    np.testing.assert_allclose(
        sch.alpha_bar_to_log_snr(out), sch.alpha_bar_to_log_snr(base) - 2 * math.log(s), atol=1e-12
    )
    # rectified flow time t = 1 / (1 + exp(l / 2)): equally spaced for shift = 1
    t = 1 / (1 + np.exp(sch.alpha_bar_to_log_snr(base) / 2))
    np.testing.assert_allclose(np.diff(t), np.diff(t)[0], rtol=1e-9)
    assert t[0] == pytest.approx(1 / (1 + math.exp(-7.5)), rel=1e-12)  # l = -15 at u = 1
    # SD3's shift t' = s t / (1 + (s - 1) t)
    t_shift = 1 / (1 + np.exp(sch.alpha_bar_to_log_snr(out) / 2))
    np.testing.assert_allclose(t_shift, s * t / (1 + (s - 1) * t), rtol=1e-12)


def test_shifted_cosine_and_array_base():
    l = sch.alpha_bar_to_log_snr(sch.shifted(4, shift=1.0, base="cosine"))
    assert l[0] == pytest.approx(-15.0, abs=1e-9)  # u = 1 is the clipped end
    # u = 1/2: -2 log tan(a / 2 + b) with the simple-diffusion constants
    b = math.atan(math.exp(-7.5))
    a = math.atan(math.exp(7.5)) - b
    assert l[2] == pytest.approx(-2 * math.log(math.tan(a / 2 + b)), abs=1e-12)
    ab = np.array([0.1, 0.5, 0.9])
    out = sch.shifted(3, shift=2.0, base=ab)
    np.testing.assert_allclose(out, ab / (ab + 4 * (1 - ab)), rtol=1e-14)  # SNR / 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(K=3, shift=0.0), "shift must be positive"),
        (dict(K=3, base="linear"), "base must be one of"),
        (dict(K=3, base=[0.1, 0.5]), "K=3 levels"),
        (dict(K=2, base=[0.5, 0.1]), "strictly increasing"),
        (dict(K=3, log_snr_min=5.0, log_snr_max=5.0), "greater than log_snr_min"),
        (dict(K=3, shift=1e-30), "not representable in float64.*shift"),
    ],
)
def test_shifted_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sch.shifted(**kwargs)


# ------------------------------------------------------------------------------ Align Your Steps


def test_ays_tables():
    sig = sch.alpha_bar_to_sigmas(sch.align_your_steps(10, model="sd15"))
    np.testing.assert_allclose(sig, SD15_TABLE[:10], rtol=1e-12)
    assert sig[0] == pytest.approx(14.6146412293, rel=1e-12) and sig[-1] == pytest.approx(0.1515232662, rel=1e-12)
    # the table is Stable Diffusion's training sigmas at the AYS timesteps published for diffusers
    g = sch.training_grid("scaled_linear")
    ts = [999, 850, 736, 645, 545, 455, 343, 233, 124, 24, 0]
    np.testing.assert_allclose(np.sqrt((1 - g[ts]) / g[ts]), SD15_TABLE, rtol=0, atol=6e-11)  # table: 10 decimals
    # diffusers' AysSchedules["StableDiffusionSigmas"]: the published continuous-time sigmas, 3 decimals, then
    # a final 0.0 (the implicit clean step); within 0.3 % of the table, not equal to it
    published = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152]
    rel = np.abs(sig / np.array(published) - 1)
    assert rel.max() < 3.5e-3 and rel.max() > 1e-3
    np.testing.assert_allclose(sig, [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152], rtol=4e-3)
    sdxl = sch.alpha_bar_to_sigmas(sch.align_your_steps(10, model="sdxl"))
    np.testing.assert_allclose(sdxl, [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.38, 0.234, 0.113], rtol=2e-2)


def test_ays_interpolation():
    # 20 steps: 21 log-linear points; every other one is a table node
    sig = sch.alpha_bar_to_sigmas(sch.align_your_steps(20))
    assert sig.size == 20
    np.testing.assert_allclose(sig[::2], SD15_TABLE[:10], rtol=1e-12)
    np.testing.assert_allclose(sig[1], math.sqrt(SD15_TABLE[0] * SD15_TABLE[1]), rtol=1e-12)
    # 1 step: the noisiest entry
    assert sch.alpha_bar_to_sigmas(sch.align_your_steps(1))[0] == pytest.approx(SD15_TABLE[0], rel=1e-12)


def test_ays_snapped_to_sd_grid_gives_published_timesteps():
    sd = sch.training_grid("scaled_linear")
    ts = sch.nearest_timesteps(sch.align_your_steps(10, model="sd15"), sd)
    np.testing.assert_array_equal(ts, [999, 850, 736, 645, 545, 455, 343, 233, 124, 24])
    ts = sch.nearest_timesteps(sch.align_your_steps(10, model="sdxl"), sd)
    np.testing.assert_array_equal(ts, [999, 845, 730, 587, 443, 310, 193, 116, 53, 13])


def test_loglinear_interp_and_errors():
    np.testing.assert_allclose(sch.loglinear_interp([100.0, 1.0], 3), [100.0, 10.0, 1.0], rtol=1e-14)
    for bad, match in (([1.0], "at least 2"), ([1.0, 2.0], "strictly decreasing"), ([1.0, -1.0], "positive")):
        with pytest.raises(ValueError, match=match):
            sch.loglinear_interp(bad, 3)
    with pytest.raises(ValueError, match="model must be one of"):
        sch.align_your_steps(10, model="sd3")


# ------------------------------------------------------------------------------ entry point


@pytest.mark.parametrize("name", sch.STANDARD_SCHEDULES)
@pytest.mark.parametrize("K", [1, 2, 10, 50])
def test_every_standard_schedule_is_valid(name, K):
    ab = sch.standard_schedule(name, K)
    assert ab.shape == (K,) and ab.dtype == np.float64
    as_levels(ab)


@pytest.mark.parametrize("name", sch.STANDARD_SCHEDULES)
def test_standard_schedules_on_a_grid(name):
    sd = sch.training_grid("scaled_linear")
    try:
        ab = sch.standard_schedule(name, 10, grid=sd)
    except ValueError as exc:
        # e.g. the linear family's two noisiest levels lie beyond Stable Diffusion's noisiest level:
        # both would collapse onto timestep 999
        own = sch.standard_schedule(name, 10)
        assert np.sum(own < sd[-1]) >= 2 and "snap to the same grid timestep 999" in str(exc)
        return
    as_levels(ab)
    assert np.all(np.isin(ab, sd))  # restricted to grid levels


def test_standard_schedule_definitions():
    lin = sch.training_grid("linear")
    np.testing.assert_array_equal(sch.standard_schedule("linear-leading", 10), lin[[900, 800, 700, 600, 500, 400, 300, 200, 100, 0]])
    np.testing.assert_array_equal(sch.standard_schedule("linear-trailing", 10), lin[np.arange(999, 0, -100)])
    cos = sch.training_grid("cosine")
    np.testing.assert_array_equal(sch.standard_schedule("cosine", 10, spacing="trailing"), cos[np.arange(999, 0, -100)])
    np.testing.assert_array_equal(sch.standard_schedule("cosine", 10), cos[np.arange(900, -1, -100)])
    np.testing.assert_array_equal(sch.standard_schedule("scaled_linear-leading", 10, steps_offset=1),
                                  sch.training_grid("scaled_linear")[np.arange(901, 0, -100)])
    # on a custom grid the name keeps its own family (its T-step grid), levels snapped onto the grid
    g = np.linspace(0.99, 0.01, 50)
    own = sch.training_grid("linear", num_train_timesteps=50)[[49, 39, 29, 19, 9]]
    np.testing.assert_array_equal(sch.standard_schedule("linear-trailing", 5, grid=g), g[_nearest(own, g)])
    # karras on a grid uses the grid's sigma range: first and last levels are the grid's ends
    sd = sch.training_grid("scaled_linear")
    ab = sch.standard_schedule("karras", 10, grid=sd)
    assert ab[0] == sd[-1] and ab[-1] == sd[0]
    np.testing.assert_array_equal(sch.standard_schedule("ays-sdxl", 10), sch.align_your_steps(10, model="sdxl"))


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("ddim", 10), {}, "name must be one of"),
        (("karras", 0), {}, "steps must be a positive integer"),
        (("linear-leading", 10), dict(spacing="trailing"), "conflicts"),
        (("karras", 10), dict(spacing="leading"), "spacing applies only"),
        (("karras", 10), dict(steps_offset=1), "steps_offset applies only"),
        (("cosine", 10), dict(spacing="middle"), "spacing must be one of"),
        (("linear-leading", 10), dict(grid=[0.1, 0.5]), "strictly decreasing"),
        (("linear-leading", 10), dict(grid=np.linspace(0.9, 0.1, 5)), "^grid has 5 levels, fewer than steps=10"),
        (("karras", 300), dict(grid=np.linspace(0.99, 0.01, 200)), "^grid has 200 levels, fewer than steps=300"),
        (("karras", 150), dict(grid=np.linspace(0.99, 0.01, 200)), "snap to the same grid timestep"),
    ],
)
def test_standard_schedule_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sch.standard_schedule(*args, **kwargs)


# ------------------------------------------------------------------------------ named schedules on another grid


def _nearest(levels, grid):
    """Indices t of the grid levels nearest to ``levels`` in log-SNR, by brute force (independent of symsched)."""
    lg = np.log(grid / (1.0 - grid))
    return np.array([int(np.argmin(np.abs(lg - np.log(a / (1.0 - a))))) for a in levels])


def _cosine_alphas_cumprod(t):
    """Nichol & Dhariwal's alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t+1)/T + s)/(1+s) pi/2), T = 1000, s = 0.008."""
    f = lambda x: np.cos(((x / 1000.0) + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    return f(np.asarray(t, dtype=float) + 1.0) / f(0.0)


def test_cosine_on_the_linear_grid_is_the_cosine_schedule_snapped():
    """Issue 9: cosine with grid=linear silently returned the linear-leading timesteps [800, ..., 0]."""
    lin = sch.training_grid("linear")
    ab = sch.standard_schedule("cosine", 5, grid=lin)
    assert not np.array_equal(ab, sch.standard_schedule("linear-leading", 5))
    own = _cosine_alphas_cumprod([800, 600, 400, 200, 0])  # cosine, leading spacing, noisiest first
    np.testing.assert_allclose(own, sch.standard_schedule("cosine", 5), rtol=1e-9)
    np.testing.assert_array_equal(ab, lin[_nearest(own, lin)])
    np.testing.assert_array_equal(sch.nearest_timesteps(ab, lin), _nearest(own, lin))


_FAMILY = {"linear-leading": "linear", "linear-trailing": "linear", "linear-linspace": "linear",
           "scaled_linear-leading": "scaled_linear", "scaled_linear-trailing": "scaled_linear",
           "scaled_linear-linspace": "scaled_linear", "cosine": "cosine", "sigmoid": "sigmoid"}


@pytest.mark.parametrize("name", sorted(_FAMILY))
@pytest.mark.parametrize("grid_family", sch.BETA_SCHEDULES)
def test_every_ddpm_grid_name_keeps_its_family_on_any_grid(name, grid_family):
    K = 6
    g = sch.training_grid(grid_family)
    own = sch.standard_schedule(name, K)  # its own family's 1000-step grid
    try:
        ab = sch.standard_schedule(name, K, grid=g)
    except ValueError as exc:  # honest refusal: two of its levels share one grid level
        assert "snap to the same grid timestep" in str(exc) and len(set(_nearest(own, g))) < K
        return
    np.testing.assert_array_equal(ab, g[_nearest(own, g)])
    if grid_family == _FAMILY[name]:  # on its own grid: exactly diffusers' timesteps, unchanged
        np.testing.assert_array_equal(ab, own)


@pytest.mark.parametrize("grid_family", sch.BETA_SCHEDULES)
def test_different_families_do_not_collapse_onto_one_schedule(grid_family):
    """The fault's kind: with grid= every DDPM-grid name used to give that grid's timesteps."""
    g = sch.training_grid(grid_family)
    got = {}
    for name in ("linear-leading", "scaled_linear-leading", "cosine", "sigmoid"):
        try:
            got[name] = tuple(sch.standard_schedule(name, 5, grid=g))
        except ValueError:
            continue
    assert len(got) >= 3 and len(set(got.values())) == len(got), got


@pytest.mark.parametrize("name", sch.STANDARD_SCHEDULES)
def test_every_name_on_a_foreign_grid_uses_grid_levels_near_its_own(name):
    g = np.linspace(0.999, 0.001, 400)  # a custom (not a named family) grid
    ab = sch.standard_schedule(name, 5, grid=g)
    assert np.all(np.isin(ab, g)) and np.all(np.diff(ab) > 0)
    if name in _FAMILY:
        own = sch.standard_schedule(name, 5, grid=sch.training_grid(_FAMILY[name], num_train_timesteps=400))
        np.testing.assert_array_equal(ab, g[_nearest(own, g)])


# ------------------------------------------------------------------------------ break3 faults


def test_sigma_out_of_range_names_the_right_direction_and_entry():
    """break3/user F11: a huge sigma (alpha_bar underflows to 0) is 'too large', a tiny one 'too small'."""
    with pytest.raises(ValueError, match=r"sigmas too large.*sigmas\[1\]=1e\+200.*underflows to 0"):
        sch.sigmas_to_alpha_bar([1.0, 1e200])
    with pytest.raises(ValueError, match=r"sigmas too small.*sigmas\[0\]=1e-200.*rounds to 1"):
        sch.sigmas_to_alpha_bar([1e-200])
    with pytest.raises(ValueError, match=r"log_snr too small.*log_snr\[0\]=-800.0"):
        sch.log_snr_to_alpha_bar([-800.0])
    with pytest.raises(ValueError, match=r"log_snr too large.*log_snr\[1\]=40.0"):
        sch.log_snr_to_alpha_bar([0.0, 40.0])


def test_ays_at_max_steps_and_underflowing_training_grids_name_the_users_argument():
    """break3/user F12: steps = MAX_STEPS works for AYS (it interpolates K + 1 sigmas internally); a training grid
    whose cumulative product underflows is refused naming num_train_timesteps, zero-SNR rescale or not."""
    from symsched._validate import MAX_STEPS

    for name in ("ays-sd15", "ays-sdxl"):
        ab = sch.standard_schedule(name, MAX_STEPS)
        assert ab.shape == (MAX_STEPS,) and np.all(np.diff(ab) > 0)
    with pytest.raises(ValueError, match=r"steps must be at most 10000.*got 10001"):
        sch.standard_schedule("ays-sd15", MAX_STEPS + 1)
    for zero in (False, True):
        with pytest.raises(ValueError, match=r"^training_grid\('linear', num_train_timesteps=100000\): .* not distinct "
                                             r"levels: the cumulative product of 1 - beta_t underflows.* fewer "
                                             r"num_train_timesteps"):
            sch.training_grid("linear", num_train_timesteps=100_000, rescale_zero_snr=zero)


def test_log_snr_round_trips_subnormal_levels_exactly():
    """break3/numerics F8: log_snr_to_alpha_bar inverts alpha_bar_to_log_snr down to the smallest subnormal."""
    ab = np.array([5e-324, 1e-322, 1e-320])  # |l| 2**-53 below the subnormal spacing: exact
    np.testing.assert_array_equal(sch.log_snr_to_alpha_bar(sch.alpha_bar_to_log_snr(ab)), ab)
    assert sch.log_snr_to_alpha_bar([-740.0])[0] == np.exp(-740.0) > 0
    rng = np.random.default_rng(0)
    x = np.concatenate(([1e-310, 2e-308, 1e-300], np.exp(rng.uniform(-744.0, -1.0, 20000))))
    l = sch.alpha_bar_to_log_snr(x)
    err = np.abs(sch.log_snr_to_alpha_bar(l) - x)
    assert np.all(err <= np.abs(l) * 2.0**-52 * x + 5e-324)  # the rounding of l, or one subnormal spacing


def test_flow_t_does_not_collapse_onto_pure_noise():
    """break3/numerics F8: a level that is not pure noise but whose flow t rounds to 1 is refused, naming the
    argument, as the mirror case t -> alpha_bar = 1 is; pure noise itself still maps to t = 1."""
    with pytest.raises(ValueError, match=r"^alpha_bar: alpha_bar\[1\]=1e-40 .*rounds to 1"):
        sch.alpha_bar_to_flow_t([0.0, 1e-40, 0.5])
    with pytest.raises(ValueError, match=r"^sigmas: sigmas\[1\]=1e\+20 .*rounds to 1"):
        sch.sigmas_to_flow_t([np.inf, 1e20])
    assert sch.alpha_bar_to_flow_t([0.0, 1e-30])[0] == 1.0 > sch.alpha_bar_to_flow_t([0.0, 1e-30])[1]
    assert sch.sigmas_to_flow_t([np.inf, 1e15]).tolist()[0] == 1.0
    t = sch.alpha_bar_to_flow_t([1e-30])
    assert 0.0 < sch.flow_t_to_alpha_bar(t)[0] < 2e-30


def test_negative_zero_is_the_pure_noise_level() -> None:
    """-0.0 passes validation as the level 0; its sigma is +inf (1/sqrt(-0.0) used to give -inf)."""
    sig = sch.alpha_bar_to_sigmas([-0.0, 0.5])
    assert sig[0] == np.inf and sig[1] == 1.0


@pytest.mark.parametrize("rho", [0.005, 0.001])
def test_karras_with_a_small_rho_is_computed_in_logs(rho: float) -> None:
    """sigma_max^(1/rho) overflows for rho below ~0.006 (80^200 > 1e308): the levels come from the same sum in
    logs. By hand, sigma_i = (a (1 - t) + b t)^rho ~ sigma_max (1 - t)^rho for t < 1 (b/a underflows)."""
    K = 5
    sig = sch.alpha_bar_to_sigmas(sch.karras(K, rho=rho))
    t = np.linspace(0, 1, K)[1:-1]
    np.testing.assert_allclose(sig[1:-1], 80.0 * (1 - t) ** rho, rtol=1e-12)
    assert sig[0] == pytest.approx(80.0, rel=1e-15) and sig[-1] == pytest.approx(0.002, rel=1e-12)


def test_a_merged_level_message_names_the_schedule_once() -> None:
    """break-test F7: the karras refusal repeated its "karras(K=5, ...)" prefix three times."""
    with pytest.raises(ValueError) as exc:  # (rho=1e-300 is now refused as rho: test_breaktest_dec7.py)
        sch.karras(5, sigma_min=0.1, sigma_max=float(np.nextafter(0.1, 1.0)), rho=7.0)
    msg = str(exc.value)
    assert msg.count("karras(") == 1 and "alpha_bar[0]=" in msg and "alpha_bar[1]=" in msg


@pytest.mark.parametrize("call,match", [
    # break-test (optimize): the cast to int64 came first and wrapped these values (with a RuntimeWarning)
    (lambda: sch.from_grid(sch.training_grid("linear"), [1e20]), r"got 1e\+20 at position 0"),
    (lambda: sch.from_grid(sch.training_grid("linear"), np.array([2**63 + 5], dtype=np.uint64)),
     r"got 9223372036854775813 at position 0"),
    # the beta check blamed "betas" for an offset s that makes every cosine beta 0
    (lambda: sch.training_grid("cosine", s=1e300), r"^s=1e\+300: the cosine schedule's beta_0 rounds to 0.0"),
    # "sigma_max must be greater than sigma_min" / log_snr_min for a grid the user passed
    (lambda: sch.standard_schedule("karras", 1, grid=[0.5]), r"^grid: 'karras' spans the grid's noise range"),
    (lambda: sch.standard_schedule("kl_optimal", 1, grid=[0.5, 0.0]), r"^grid: 'kl_optimal' .* 1 finite level"),
    (lambda: sch.standard_schedule("shifted", 1, grid=[0.5]), r"^grid: 'shifted' .* holds 1 level"),
])
def test_messages_name_what_the_user_passed(call, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no RuntimeWarning on the way
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize("name", ["cosine", "linear-leading", "karras", "flow-uniform"])
def test_a_grid_shorter_than_steps_is_refused_naming_grid_and_steps(name):
    """break-test H: named num_steps and num_train_timesteps, the internal timesteps() call's arguments."""
    with pytest.raises(ValueError, match=r"^grid has 3 levels, fewer than steps=5"):
        sch.standard_schedule(name, 5, grid=sch.training_grid("linear")[:3])
    g3 = sch.training_grid("linear", num_train_timesteps=3)
    np.testing.assert_array_equal(sch.standard_schedule("linear-leading", 3, grid=g3), g3[::-1])  # T = K: every level


def test_a_grid_that_stops_decreasing_is_refused_naming_the_caller_s_arguments():
    """Audit of 5 December: training_grid("linear", num_train_timesteps=100000, beta_end=0.5) said "betas:
    alphas_cumprod underflows to 0 in float64 at t=99999" (an argument it has not; the product stalls at 2.5e-323
    from t=16967, found here by an independent cumprod), and betas_to_alpha_bar returned grids that stop decreasing
    (repeated subnormals, or 1.0 for betas below float64's resolution near 1) although it promises a strictly
    decreasing one. Both refuse, at the first repeated pair, naming their own arguments."""
    b = np.linspace(1e-4, 0.5, 100000)
    prod = np.cumprod(1.0 - b)
    first = int(np.flatnonzero(np.diff(prod) >= 0)[0])
    assert first == 16967  # the stall the audit measured (independent of symsched)
    lo, hi = float(prod[first]), float(prod[first + 1])
    pair = (rf"alphas_cumprod\[{first}\] = {lo!r} and alphas_cumprod\[{first + 1}\] = {hi!r} are not distinct "
            r"levels: the cumulative product of 1 - beta_t underflows")
    with pytest.raises(ValueError, match=rf"^training_grid\('linear', num_train_timesteps=100000, beta_end=0.5\): "
                                         rf"{pair}.*fewer num_train_timesteps"):
        sch.training_grid("linear", num_train_timesteps=100000, beta_end=0.5)
    with pytest.raises(ValueError, match=rf"^betas: {pair}"):
        sch.betas_to_alpha_bar(b)
    for small in (np.full(5, 1e-17), [1e-17]):  # 1 - beta rounds to 1: the level would be 1, the clean data
        with pytest.raises(ValueError, match=r"^betas: alphas_cumprod\[0\] = 1.0 .*1 - beta rounds to 1"):
            sch.betas_to_alpha_bar(small)
    with pytest.raises(ValueError, match=r"^training_grid\('linear', num_train_timesteps=10, beta_start=1e-17, "
                                         r"beta_end=1e-17\): alphas_cumprod\[0\] = 1.0"):
        sch.training_grid("linear", num_train_timesteps=10, beta_start=1e-17, beta_end=1e-17)
    np.testing.assert_array_equal(sch.betas_to_alpha_bar([0.1, 0.5, 1.0]), [0.9, 0.45, 0.0])  # zero SNR still ends at 0


# ---- audit of 5 December: levels at the ends of float64, numpy's error state, ties after rescaling


def _expit_mp(x: float) -> float:
    """expit(x) = 1 / (1 + e^-x) in 50-digit mpmath, rounded once to float64."""
    with mpmath.workdps(50):
        return float(1 / (1 + mpmath.exp(-mpmath.mpf(x))))


@pytest.mark.parametrize("l", [1416.0, 1420.0, 1427.6, 1480.0, 1488.8])
def test_log_snr_to_flow_t_reaches_subnormal_times(l) -> None:
    """log_snr_to_flow_t refused log-SNRs 1418..1489 (scipy's expit flushed its subnormal t to 0): t = expit(-l/2)."""
    t = float(sch.log_snr_to_flow_t(l))
    want = _expit_mp(-l / 2)
    assert want > 0 and abs(t - want) <= np.spacing(want) + 1e-13 * want


@pytest.mark.parametrize("t", [1e-300, 1e-310, 1e-320, 5e-324])
def test_subnormal_flow_times_round_trip(t) -> None:
    l = sch.flow_t_to_log_snr(t)
    assert abs(float(sch.log_snr_to_flow_t(l)) - t) <= np.spacing(t) + 1e-12 * t


def test_shifted_levels_below_minus_709_are_computed() -> None:
    """shifted refused log-SNRs between -745 and -709 ("below ~1e-320"), whose levels are subnormal floats."""
    ab = sch.shifted(5, log_snr_min=-720.0, shift=1.0)
    assert ab[0] == pytest.approx(_expit_mp(-720.0), rel=1e-12, abs=0)
    ab = sch.shifted(3, base=[1e-300, 1e-10, 0.5], shift=1e5)  # log-SNRs shifted by -2 log 1e5 = -23.03
    with mpmath.workdps(50):
        want = [float(1 / (1 + mpmath.mpf(1e10) * (1 - mpmath.mpf(a)) / mpmath.mpf(a))) for a in (1e-300, 1e-10, 0.5)]
    np.testing.assert_allclose(ab, want, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=r"log-SNR below -745\.13"):
        sch.shifted(5, log_snr_min=-760.0, shift=1.0)


def test_sd3_time_shift_of_a_subnormal_shift() -> None:
    """A shift of 5e-324 returned [0, 0]: (1 - t) / s overflowed. t' = s t / (s t + 1 - t)."""
    t = np.array([1 - 1e-12, 0.9])
    got = sch.sd3_time_shift(t, 5e-324)
    with mpmath.workdps(50):
        s = mpmath.mpf(5e-324)
        want = [float(s * mpmath.mpf(x) / (s * mpmath.mpf(x) + 1 - mpmath.mpf(x))) for x in t]
    assert got[0] == pytest.approx(want[0], rel=1e-12, abs=0)
    assert abs(got[1] - want[1]) <= np.spacing(want[1])


def test_rescaled_grid_stays_strictly_decreasing_or_says_why() -> None:
    """Two front levels an ulp apart rescaled to one float64 level (the docstring promises a strictly decreasing
    grid); a rescaling of adjacent floats that float64 cannot keep apart is a ValueError naming alpha_bar."""
    g = np.array([0.95000859566635, 0.9500085956663499, 0.15257385697971776])
    out = sch.rescale_zero_terminal_snr(g)
    assert out[0] > out[1] > out[2] == 0.0
    with mpmath.workdps(50):
        r = [mpmath.sqrt(mpmath.mpf(x)) for x in g]
        assert out[1] == pytest.approx(float(((r[1] - r[2]) * r[0] / (r[0] - r[2])) ** 2), rel=1e-14, abs=0)
    sch.from_grid(out, [0, 1])  # a valid grid
    with pytest.raises(ValueError, match=r"^alpha_bar: timesteps 1 and 2 .* rescale to one float64 level"):
        sch.rescale_zero_terminal_snr([0.99, 0.2, np.nextafter(0.2, 0.0), 0.01])


def test_rescaled_grids_match_mpmath() -> None:
    """Lin et al.'s rescaling against 40-digit mpmath on random grids: relative error at most 1e-11 (the
    cancellation sqrt(ab_t) - sqrt(ab_T-1) near the end costs up to ~1e-13 here)."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        g = np.sort(rng.uniform(0.01, 0.99, 12))[::-1]
        out = sch.rescale_zero_terminal_snr(g)
        with mpmath.workdps(40):
            r = [mpmath.sqrt(mpmath.mpf(x)) for x in g]
            want = [float(((x - r[-1]) * r[0] / (r[0] - r[-1])) ** 2) for x in r[:-1]]
        np.testing.assert_allclose(out[:-1], want, rtol=1e-11, atol=0)


def test_schedules_ignore_a_global_numpy_error_state() -> None:
    """np.seterr(all="raise") made betas_to_alpha_bar, karras and loglinear_interp raise FloatingPointError on
    underflows they handle; the README says no public numeric function changes its result."""
    calls = {
        "betas": lambda: sch.betas_to_alpha_bar([0.9] * 320),
        "karras": lambda: sch.karras(10, rho=1e-3),
        "loglinear": lambda: sch.loglinear_interp([1.7e308, 5e-324], 10),
        "flow_t": lambda: sch.log_snr_to_flow_t([1480.0, -30.0]),
    }
    assert_unchanged_under_seterr_raise(calls)


def test_every_public_numeric_function_resets_the_error_state() -> None:
    """The kind behind the test above: each public function of the numeric modules runs under
    numpy_error_defaults (its wrapper is what keeps a caller's np.seterr out)."""
    import inspect

    from symsched import api, export, montecarlo, optimize, probe, sde, spectra

    not_numeric = {"sampler_info", "torch_denoiser", "diffusers_denoiser", "grid_timestep", "default_schedules",
                   "plot_probe", "psd_dof", "independent_bins", "default_grid", "nfe", "n_points_for_nfe"}
    missing = [f"{m.__name__}.{n}" for m in (sch, export, spectra, api, optimize, montecarlo, sde, probe)
               for n in m.__all__ if inspect.isfunction(getattr(m, n)) and n not in not_numeric
               and not hasattr(getattr(m, n), "__wrapped__")]
    assert missing == []


@pytest.mark.parametrize("call", [lambda: sch.shift_to_log_snr([]), lambda: sch.flux_mu([]),
                                  lambda: sch.sd3_time_shift([], 3.0)])
def test_empty_inputs_are_refused_like_every_conversion(call) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        call()


def test_minus_zero_sigma_is_flow_time_plus_zero() -> None:
    assert not np.signbit(sch.sigmas_to_flow_t(-0.0)) and not np.signbit(sch.sigmas_to_flow_t([-0.0, 1.0])[0])


def test_argument_names_of_small_misuses() -> None:
    """training_grid with one timestep and zero terminal SNR named alpha_bar; from_grid(g, None) said "got shape ()"."""
    with pytest.raises(ValueError, match=r"^num_train_timesteps must be at least 2 with rescale_zero_snr=True"):
        sch.training_grid(num_train_timesteps=1, rescale_zero_snr=True)
    g = sch.training_grid("linear")
    for bad in (None, "5", b"5"):
        with pytest.raises(TypeError, match=r"^timesteps must be an array of integers"):
            sch.from_grid(g, bad)


def test_shifted_array_bases_are_exact_to_an_ulp() -> None:
    """Audit of 5 December: an array base went through float64 log-SNR (error |l| 2**-53), so shift=1 moved 2e-308 by
    183 ulps and shift=10 missed 2.6e-308 by 99. Exact: alpha_bar / (alpha_bar + s^2 (1 - alpha_bar)), 50 digits."""
    cases = [(2e-308, 1.0), (1e-300, 1.0), (2.6e-306, 10.0), (0.3, 3.0), (1 - 1e-12, 0.01), (0.5, 1e150),
             (0.5, 1e160), (0.999, 1e5)]
    for a, s in cases:
        got = sch.shifted(1, shift=s, base=np.array([a]))[0]
        with mpmath.workdps(50):
            am, sm = mpmath.mpf(a), mpmath.mpf(s)
            want = float(am / (am + sm * sm * (1 - am)))
        assert abs(got - want) <= 2 * np.spacing(want), (a, s, got, want)
    base = np.array([1e-300, 0.2, 0.7, 1 - 1e-15])
    np.testing.assert_array_equal(sch.shifted(4, shift=1.0, base=base), base)  # shift 1: the identity


@pytest.mark.parametrize("fn", [sch.sigmas_to_alpha_bar, sch.sigmas_to_flow_t])
def test_sigma_conversions_name_a_nan_or_negative_sigma_alike(fn) -> None:
    """Audit 3b B3: sigmas_to_alpha_bar([0.5, nan]) read "must lie in [0, inf] (got min 0.5; NaN is refused)", a
    minimum inside the interval, and sigmas_to_flow_t's same check had other words; one helper now names the entry."""
    with pytest.raises(ValueError, match=r"^sigmas must not be NaN \(got sigmas\[1\] = nan\); its values lie in "
                                         r"\[0, inf\]$"):
        fn([0.5, np.nan])
    with pytest.raises(ValueError, match=r"^sigmas must lie in \[0, inf\] \(got sigmas\[1\] = -1.0\)$"):
        fn([0.5, -1.0])
    with pytest.raises(ValueError, match=r"^t must lie in \[0, 1\] \(got t\[0\] = 1.5\)$"):
        sch.flow_t_to_alpha_bar([1.5, 0.5])  # the levels' and flow times' [0, 1] check is the same helper
