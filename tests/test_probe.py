"""The spectral probe: the Wiener-denoiser control, the shared sampler loops, metrics, comparisons, adapters.

Monte Carlo checks use the exact chi^2 law of the periodogram (``mc_helpers``): each parametrised
case of a control test accepts a correct closed form except with probability <= 1e-6
(``FAMILYWISE_ALPHA``, Bonferroni over the independent frequency bins); the power tests show the
same check rejects a wrong prediction-type conversion with max |z| >= 2 z_crit. Everything is seeded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg, stats
from scipy.spatial.distance import cdist, pdist

import symsched
from symsched import _signal_samplers as loops
from symsched import montecarlo as mc
from symsched import probe, schedules, spectra
from symsched._validate import MAX_MODES, MAX_SAMPLES, ArgumentTypeError

from mc_helpers import assert_psd_matches, assert_psd_rejects, make_spectrum, random_orthonormal

SHAPE = (16, 16)
N = 3000
S16 = make_spectrum(SHAPE, "power", exponent=2.0, scale=5.0)
#: a schedule with levels spread over the whole log-SNR range, as a few-step sampler uses
AB8 = schedules.standard_schedule("linear-trailing", 8)

VP_CASES = [("ddim", {"eta": 0.0}), ("ddim", {"eta": 1.0}), ("ddpm", {"variance": "posterior"}),
            ("ddpm", {"variance": "beta"})]


# ------------------------------------------------------------------------------------------
# the control: with the exact denoiser the probe reproduces the closed form
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v"])
@pytest.mark.parametrize("sampler,kw", VP_CASES, ids=["ddim-eta0", "ddim-eta1", "ddpm-posterior", "ddpm-beta"])
def test_control_wiener_denoiser_reproduces_output_spectrum(sampler, kw, prediction):
    den = probe.wiener_denoiser(S16, prediction=prediction)
    seed = 100 + 10 * VP_CASES.index((sampler, kw)) + ["epsilon", "sample", "v"].index(prediction)
    x = probe.sample(den, AB8, n_samples=N, sampler=sampler, seed=seed, progress=False, **kw)
    assert x.shape == (N, *SHAPE)
    P = symsched.output_spectrum(S16, AB8, sampler=sampler, init="white", **kw)
    assert_psd_matches(mc.empirical_psd(x), P, N, what=f"{sampler} {kw} {prediction}")


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_control_ve_samplers(sampler):
    den = probe.wiener_denoiser(S16, prediction="v")
    x = probe.sample(den, AB8, n_samples=N, sampler=sampler, seed=7, progress=False)
    P = symsched.output_spectrum_ve(S16, schedules.alpha_bar_to_sigmas(AB8), sampler=sampler, init="white")
    assert_psd_matches(mc.empirical_psd(x), P, N, what=sampler)
    assert np.allclose(P, probe.predicted_spectrum(S16, AB8, sampler=sampler))


def test_control_in_a_pca_basis():
    d = 24
    U = random_orthonormal(d, seed=3)
    S = np.geomspace(5.0, 1e-3, d)
    den = probe.wiener_denoiser(S, prediction="sample", basis=U)
    x = probe.sample(den, AB8, n_samples=N, sampler="ddpm", seed=11, progress=False)
    P = symsched.output_spectrum(S, AB8, sampler="ddpm")
    assert_psd_matches(mc.empirical_psd(x, basis=U), P, N, axes=(), what="PCA basis")
    np.testing.assert_allclose(probe.measured_spectrum(x, U), mc.empirical_psd(x, basis=U))


# the companion: the same check rejects a wrong prediction-type conversion
def _mutant(kind):
    def to_x0_eps(prediction, x, out, a):
        sa, sb = math.sqrt(a), math.sqrt(1.0 - a)
        if kind == "epsilon":  # forgot a square root: x0 = (x - (1-a) eps)/sqrt(a)
            return (x - (1.0 - a) * out) / sa, out
        if kind == "sample":  # eps = (x - a x0)/sqrt(1-a)
            return out, (x - a * out) / sb
        return sa * x + sb * out, sb * x + sa * out  # v with the sign of x0's v-term flipped

    return to_x0_eps


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v"])
def test_power_wrong_prediction_conversion_is_rejected(prediction, monkeypatch):
    monkeypatch.setattr(loops, "to_x0_eps", _mutant(prediction))
    den = probe.wiener_denoiser(S16, prediction=prediction)
    x = probe.sample(den, AB8, n_samples=N, sampler="ddim", seed=5, progress=False)
    P = symsched.output_spectrum(S16, AB8, sampler="ddim")
    assert_psd_rejects(mc.empirical_psd(x), P, N, what=f"mutated {prediction} conversion")


def test_power_mislabelled_prediction_is_rejected():
    den = probe.wiener_denoiser(S16, prediction="sample")
    # (a plain function declares no prediction: the Denoiser itself refuses a conflicting one, test_probe_inputs)
    x = probe.sample(lambda x, a: den(x, a), AB8, n_samples=N, prediction="epsilon", shape=S16.shape, seed=6,
                     progress=False)
    P = symsched.output_spectrum(S16, AB8, sampler="ddim")
    assert_psd_rejects(mc.empirical_psd(x), P, N, what="x0 read as epsilon")


# ------------------------------------------------------------------------------------------
# one implementation of each sampler loop
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler,kw", VP_CASES + [("euler", {}), ("heun", {})])
def test_probe_and_montecarlo_run_the_same_loop(sampler, kw):
    """Same seed, exact denoiser: the probe's samples are montecarlo's, to rounding."""
    den = probe.wiener_denoiser(S16, prediction="epsilon")
    x = probe.sample(den, AB8, n_samples=64, sampler=sampler, seed=3, batch_size=20, progress=False, **kw)
    if sampler in symsched.VP_SAMPLERS:
        y = mc.sample(S16, AB8, sampler=sampler, n_samples=64, seed=3, batch_size=20, progress=False, **kw)
    else:
        y = mc.sample_ve(S16, schedules.alpha_bar_to_sigmas(AB8), sampler=sampler, n_samples=64, seed=3,
                         batch_size=20, progress=False)
    np.testing.assert_allclose(x, y, rtol=1e-7, atol=1e-9 * np.abs(y).max())


def test_sampler_table_covers_every_sampler():
    # symsched's own loops, plus k-diffusion's own sample_<name> for the other k-diffusion samplers; the
    # diffusers multistep schedulers (no custom levels) raise ValueError (tests/test_probe_library.py)
    no_custom = {"dpmsolver_multistep", "unipc_multistep", "deis_multistep", "euler_ancestral_discrete"}
    assert set(probe.SAMPLERS) == {"ddim", "ddpm", "euler", "heun"}
    assert set(probe.SAMPLERS + probe.LIBRARY_SAMPLERS) == set(symsched.VP_SAMPLERS + symsched.VE_SAMPLERS) - no_custom
    for name, spec in loops.SAMPLERS.items():
        assert spec.family == ("vp" if name in symsched.VP_SAMPLERS else "ve")
        assert spec.reference and callable(spec.step)


def test_conversions_invert_the_forward_process():
    rng = np.random.default_rng(0)
    x0, eps = rng.standard_normal((2, 5))
    for a in (1e-4, 0.3, 0.999):
        x = math.sqrt(a) * x0 + math.sqrt(1 - a) * eps
        v = math.sqrt(a) * eps - math.sqrt(1 - a) * x0
        for pred, out in (("epsilon", eps), ("sample", x0), ("v", v)):
            got0, gote = loops.to_x0_eps(pred, x, out, a)
            np.testing.assert_allclose(got0, x0, atol=1e-9 / math.sqrt(a))
            np.testing.assert_allclose(gote, eps, atol=1e-9 / math.sqrt(1 - a))


def test_conversions_at_the_end_levels_give_the_exact_limit_or_a_clear_error():
    """Zero terminal SNR (alpha_bar = 0): x_t = eps; v = -x0 there, so v- and x0-models give both exactly,
    while an eps-model determines no x0 (0/0) and must raise, not return NaN/inf. Symmetrically at 1."""
    rng = np.random.default_rng(1)
    x0, eps = rng.standard_normal((2, 5))
    for pred, out in (("v", -x0), ("sample", x0)):
        got0, gote = loops.to_x0_eps(pred, eps, out, 0.0)
        np.testing.assert_array_equal(got0, x0)
        np.testing.assert_array_equal(gote, eps)
    with pytest.raises(ValueError, match="alpha_bar_t = 0"):
        loops.to_x0_eps("epsilon", eps, eps, 0.0)
    for pred, out in (("v", eps), ("epsilon", eps)):  # alpha_bar = 1: x_t = x0, v = eps
        got0, gote = loops.to_x0_eps(pred, x0, out, 1.0)
        np.testing.assert_array_equal(got0, x0)
        np.testing.assert_array_equal(gote, eps)
    with pytest.raises(ValueError, match="alpha_bar_t = 1"):
        loops.to_x0_eps("sample", x0, x0, 1.0)


def test_sample_accepts_a_model_object_and_checks_its_output():
    class Model:
        prediction = "sample"
        shape = (4, 4)

        def denoiser(self, x, a):
            return np.zeros_like(x)

    m = Model()
    x = probe.sample(m.denoiser, [0.2, 0.7], n_samples=3, seed=0)  # prediction and shape from the bound object
    assert x.shape == (3, 4, 4) and np.all(x == 0.0)  # x0_hat = 0 and DDIM's last step returns x0_hat
    with pytest.raises(ValueError, match="prediction must be given"):
        probe.sample(lambda x, a: x, [0.5], shape=(4,), n_samples=2)
    with pytest.raises(ValueError, match="shape must be given"):
        probe.sample(lambda x, a: x, [0.5], prediction="epsilon", n_samples=2)
    with pytest.raises(ValueError, match="non-finite.*alpha_bar_t=0.5"):
        probe.sample(lambda x, a: x * np.nan, [0.5], shape=(4,), prediction="v", n_samples=2)
    with pytest.raises(ValueError, match=r"input's shape \(2, 4\)"):
        probe.sample(lambda x, a: x[:, :2], [0.5], shape=(4,), prediction="v", n_samples=2)
    # F7: a complex output is refused (it used to lose its imaginary part with only a ComplexWarning)
    for out in (lambda x: x * (0.5 + 0.5j), lambda x: (x * (1 + 1j)).tolist()):
        with pytest.raises(ArgumentTypeError, match=r"denoiser output must be a real array, not complex.*alpha_bar_t=0.01"):
            probe.sample(lambda x, a, out=out: out(x), [0.01, 0.2, 0.6, 0.95], shape=(4,), n_samples=3,
                         prediction="sample", seed=0)
    with pytest.raises(ValueError, match="denoiser output must be a real array, not boolean"):
        probe.sample(lambda x, a: x > 0, [0.5], shape=(4,), prediction="sample", n_samples=2)
    for out in (lambda x: (3 * x).astype(np.int64), lambda x: np.zeros(x.shape, np.uint8)):
        with pytest.raises(ArgumentTypeError, match="denoiser output must be a real array, not integer"):
            probe.sample(lambda x, a, out=out: out(x), [0.5], shape=(4,), prediction="sample", n_samples=2)
    with pytest.raises(TypeError, match="denoiser must be callable"):
        probe.sample("ddim", [0.5], shape=(4,), prediction="v", n_samples=2)
    with pytest.raises(ValueError, match="prediction must be one of"):
        probe.sample(m.denoiser, [0.5], prediction="score", n_samples=2)
    with pytest.raises(ValueError, match="alpha_bar must be strictly increasing"):
        probe.sample(m.denoiser, [0.5, 0.2], n_samples=2)
    with pytest.raises(ValueError, match="sampler must be one of"):
        probe.sample(m.denoiser, [0.5], n_samples=2, sampler="dpm")
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        probe.sample(m.denoiser, [0.5], n_samples=0)
    # aliases of the prediction type (diffusers' names)
    y = probe.sample(probe.wiener_denoiser(np.ones(4), prediction="v"), [0.5], n_samples=2, prediction="v_prediction")
    assert y.shape == (2, 4)


@pytest.mark.parametrize("sampler,prediction,value,match", [
    # the conversion to x0_hat overflows: x0 = (x - sqrt(1 - ab) eps)/sqrt(ab) at ab = 4e-5
    ("euler", "epsilon", 1e307, r"'epsilon' output at alpha_bar_t=4.03583e-05 .* non-finite x0_hat"),
    ("ddim", "epsilon", 1e307, r"'epsilon' output at alpha_bar_t=4.03583e-05 .* non-finite x0_hat"),
    ("heun", "v", 1.5e308, r"'v' output .* non-finite x0_hat"),
    # finite x0_hat / eps_hat, the update overflows
    ("ddpm", "epsilon", 1.7e308, r"ddpm step 1 of 5 \(level 4.03583e-05 -> 0.00153209\) produced non-finite samples"),
    ("ddpm", "v", 1.7e308, r"'v' output at alpha_bar_t=0.195146 .* non-finite x0_hat"),  # posterior-mean form
])
def test_finite_denoiser_outputs_that_overflow_are_refused_naming_the_level(sampler, prediction, value, match):
    """break-test F3: a denoiser returning finite 1e307 made euler return NaN samples and ddim -inf, with only
    RuntimeWarnings; now a ValueError names the level (or the step) and no warning escapes."""
    import warnings

    ab = schedules.standard_schedule("linear-trailing", 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=match):
            probe.sample(lambda x, a: np.full(x.shape, value), ab, shape=(4,), n_samples=3, seed=0,
                         prediction=prediction, sampler=sampler, progress=False)

def test_same_seed_same_initial_noise_for_every_schedule():
    """DDIM eta=0 is deterministic given its start: paired schedules share the start x_K ~ N(0, I)."""
    seen = []

    def den(x, a):
        seen.append((a, x.copy()))
        return np.zeros_like(x)

    for ab in ([0.01, 0.5], [0.02, 0.3, 0.9]):
        probe.sample(den, ab, shape=(6,), prediction="epsilon", n_samples=5, seed=42)
    starts = [x for a, x in seen if a in (0.01, 0.02)]
    np.testing.assert_array_equal(starts[0], starts[1])
    np.testing.assert_array_equal(starts[0], np.random.default_rng(42).standard_normal((5, 6)))


# ------------------------------------------------------------------------------------------
# timesteps of a training grid
# ------------------------------------------------------------------------------------------
def test_grid_timestep_nearest_and_interpolated():
    g = schedules.training_grid("linear")
    for t in (0, 1, 17, 500, 998, 999):
        assert probe.grid_timestep(g[t], g) == t
        assert probe.grid_timestep(g[t], g, mode="interpolate") == pytest.approx(t, abs=1e-9)
    l = schedules.alpha_bar_to_log_snr(g)
    mid = schedules.log_snr_to_alpha_bar(np.array([0.25 * l[300] + 0.75 * l[301]]))[0]
    assert probe.grid_timestep(mid, g) == 301
    assert probe.grid_timestep(mid, g, mode="interpolate") == pytest.approx(300.75, abs=1e-6)
    assert probe.grid_timestep(1e-9, g) == 999 and probe.grid_timestep(1 - 1e-9, g) == 0
    with pytest.raises(ValueError, match="mode must be one of"):
        probe.grid_timestep(0.5, g, mode="round")
    with pytest.raises(ValueError, match="strictly decreasing"):
        probe.grid_timestep(0.5, g[::-1])


# ------------------------------------------------------------------------------------------
# measured spectra
# ------------------------------------------------------------------------------------------
def test_measured_spectrum_fft_colour_and_basis():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 8, 8))
    np.testing.assert_allclose(probe.measured_spectrum(x), np.mean(np.abs(np.fft.fft2(x)) ** 2, axis=0) / 64)
    rgb = rng.standard_normal((40, 3, 8, 8))
    ce = probe.measured_spectrum(rgb, channel_axis=0)
    np.testing.assert_allclose(ce, spectra.colour_eigen_psd(np.moveaxis(rgb, 1, -1)))
    assert ce.shape == (8, 8, 3)
    np.testing.assert_allclose(probe.measured_spectrum(np.moveaxis(rgb, 1, -1), channel_axis=-1), ce)
    U, S = probe.pca_basis(x)
    X = x.reshape(50, -1)
    np.testing.assert_allclose(U @ np.diag(S) @ U.T, X.T @ X / 50, atol=1e-12)
    assert np.all(np.diff(S) <= 0)
    np.testing.assert_allclose(probe.measured_spectrum(x, U), np.mean((X @ U) ** 2, axis=0))
    np.testing.assert_allclose(probe.measured_spectrum(x, U), S, atol=1e-12)  # the reference's own basis
    with pytest.raises(ValueError, match="channel_axis"):
        probe.measured_spectrum(x, channel_axis=5)
    with pytest.raises(TypeError, match=r"channel_axis must be an axis of one sample in \[-3, 3\)"):
        probe.measured_spectrum(rgb, channel_axis=True)  # a bool is no axis (ArgumentTypeError, as radial_psd)
    with pytest.raises(ValueError, match="at least 2 samples"):
        probe.measured_spectrum(x[:1])


# ------------------------------------------------------------------------------------------
# metrics against independent computations
# ------------------------------------------------------------------------------------------
def _mmd_bruteforce(X, Y, hs):
    def k(A, B):
        d2 = cdist(A, B, "sqeuclidean")
        return np.mean([np.exp(-d2 / (2 * h * h)) for h in hs], axis=0)

    m, n = len(X), len(Y)
    Kxx, Kyy, Kxy = k(X, X), k(Y, Y), k(X, Y)
    return ((Kxx.sum() - np.trace(Kxx)) / (m * (m - 1)) + (Kyy.sum() - np.trace(Kyy)) / (n * (n - 1))
            - 2 * Kxy.mean())


def test_mmd2_matches_a_bruteforce_unbiased_estimator(monkeypatch):
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((37, 5)), 1.3 * rng.standard_normal((29, 5)) + 0.2
    monkeypatch.setattr(probe, "_KERNEL_CHUNK", 8)  # exercise the chunking
    for hs in ([1.5], [0.7, 1.9, 3.3], [0.5, 1.0, 2.0]):  # the last uses the squaring shortcut
        assert probe.mmd2(X, Y, bandwidths=hs) == pytest.approx(_mmd_bruteforce(X, Y, hs), rel=1e-12)
    h = np.median(pdist(Y))
    assert probe.median_bandwidth(Y) == pytest.approx(h, rel=1e-12)
    assert probe.mmd2(X, Y) == pytest.approx(_mmd_bruteforce(X, Y, [0.5 * h, h, 2 * h]), rel=1e-12)


def test_mmd2_of_identical_sets_is_the_closed_form():
    """x = y: MMD²_u = 2 K_off/(n(n-1)) - 2 (K_off + n)/n², with K_off the off-diagonal kernel sum (< 0)."""
    X = np.random.default_rng(3).standard_normal((60, 4))
    h = 1.7
    K_off = 2.0 * np.sum(np.exp(-pdist(X, "sqeuclidean") / (2 * h * h)))
    n = len(X)
    expect = 2 * K_off / (n * (n - 1)) - 2 * (K_off + n) / n**2
    assert expect < 0
    assert probe.mmd2(X, X, bandwidths=h) == pytest.approx(expect, rel=1e-12)


#: two Gaussians for the unbiasedness check: x ~ N(0, s1² I_d), y ~ N(mu, s2² I_d), RBF bandwidth h
_MMD_D, _MMD_H, _MMD_S1, _MMD_S2, _MMD_MU = 3, 1.5, 1.0, 1.4, np.array([0.6, 0.0, 0.0])
#: two-sided threshold on the t statistic of R = 60 estimates (59 degrees of freedom), false alarm 1e-6
_MMD_R = 60
_MMD_T = float(stats.t.isf(0.5e-6, _MMD_R - 1))


def _mmd2_z(estimator) -> float:
    """t statistic of the mean of R iid estimates of MMD² against the population value (closed form).

    E exp(-|x-y|²/(2h²)) = (h²/(h²+a²+b²))^(d/2) exp(-|mu_x-mu_y|²/(2(h²+a²+b²))) for x ~ N(mu_x, a² I),
    y ~ N(mu_y, b² I). Each estimate (m = n = 50) is near normal, so the statistic is Student t with R - 1
    degrees of freedom under an unbiased estimator.
    """
    d, h = _MMD_D, _MMD_H

    def ek(a, b, dm2):
        v = h * h + a * a + b * b
        return (h * h / v) ** (d / 2) * math.exp(-dm2 / (2 * v))

    mu = _MMD_MU
    pop = ek(_MMD_S1, _MMD_S1, 0.0) + ek(_MMD_S2, _MMD_S2, 0.0) - 2 * ek(_MMD_S1, _MMD_S2, float(mu @ mu))
    rng = np.random.default_rng(4)
    est = [estimator(_MMD_S1 * rng.standard_normal((50, d)), mu + _MMD_S2 * rng.standard_normal((50, d)), h)
           for _ in range(_MMD_R)]
    return (np.mean(est) - pop) / (np.std(est, ddof=1) / math.sqrt(len(est)))


def test_mmd2_is_unbiased_for_gaussians():
    """|t| <= t_59^{-1}(1 - 5e-7) (~5.46): false-alarm probability 1e-6 for an unbiased estimator."""
    z = _mmd2_z(lambda x, y, h: probe.mmd2(x, y, bandwidths=h))
    assert abs(z) <= _MMD_T, z


def test_mmd2_unbiasedness_check_rejects_the_biased_v_statistic():
    """Companion: the V-statistic (diagonal kernel terms kept, Gretton et al. 2012 eq. 5) overestimates MMD² by
    (1 - E k(x,x'))/m + (1 - E k(y,y'))/n ~ 0.028 here; the same check rejects it."""
    def v_statistic(x, y, h):
        k = [np.exp(-cdist(a, b, "sqeuclidean") / (2 * h * h)).mean() for a, b in ((x, x), (y, y), (x, y))]
        return k[0] + k[1] - 2 * k[2]

    assert abs(_mmd2_z(v_statistic)) > _MMD_T


def test_sliced_w2_in_one_dimension_is_the_exact_w2():
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((80, 1)), 0.5 + 2.0 * rng.standard_normal((55, 1))
    exact = math.sqrt(ot.emd2(np.full(80, 1 / 80), np.full(55, 1 / 55), ot.dist(x, y)))  # squared Euclidean cost
    assert probe.sliced_w2(x, y, n_projections=3) == pytest.approx(exact, rel=1e-9)


def test_sliced_w2_of_the_comparison_is_pots():
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(6)
    ref, x = rng.standard_normal((70, 3, 4)), 1.2 * rng.standard_normal((50, 3, 4))
    c = probe.compare(x, ref, metrics=("sliced_w2",), n_projections=40, seed=9)
    P = probe._projections(12, 40, 9)
    expect = ot.sliced_wasserstein_distance(x.reshape(50, -1), ref.reshape(70, -1), projections=P)
    assert c.values["sliced_w2"][0] == pytest.approx(expect, rel=1e-12)
    assert probe.sliced_w2(x, ref, n_projections=40, seed=9) == pytest.approx(expect, rel=1e-12)


def _direction_zscores(P: np.ndarray) -> np.ndarray:
    """z-scores of the moments of unit directions ``P`` (d, n) under the uniform law on the sphere: E theta = 0
    (variance 1/d), E theta_k^2 = 1/d (variance 3/(d(d+2)) - 1/d^2) and E theta_i theta_j = 0 (variance
    1/(d(d+2))), each averaged over the n directions (normal by the CLT at n = 20,000)."""
    d, n = P.shape
    m4, m22 = 3 / (d * (d + 2)), 1 / (d * (d + 2))
    z = [P.mean(axis=1) / math.sqrt(1 / d / n)]
    M = P @ P.T / n
    z.append((np.diag(M) - 1 / d) / math.sqrt((m4 - 1 / d**2) / n))
    z.append(M[np.triu_indices(d, 1)] / math.sqrt(m22 / n))
    return np.concatenate(z)


def _uniform_directions_check(P: np.ndarray) -> bool:
    """All 2d + d(d-1)/2 moment z-scores inside the two-sided Sidak band at family-wise false-alarm 1e-6."""
    from scipy.stats import norm

    z = _direction_zscores(P)
    return bool(np.all(np.abs(z) < norm.isf(1e-6 / (2 * z.size))))


def test_sliced_w2_directions_are_uniform_on_the_sphere():
    """Audit of 6 December: the directions were checked only against POT given the package's own directions, and in
    1-D, where any direction is +-1: directions drawn from the positive orthant passed every test. Their first and
    second moments are those of the uniform law (14 statistics at d = 4; family-wise false alarm 1e-6), and they are
    unit vectors."""
    P = probe._projections(4, 20000, 0)
    np.testing.assert_allclose(np.linalg.norm(P, axis=0), 1.0, rtol=1e-14)
    assert _uniform_directions_check(P)


def test_direction_check_rejects_orthant_directions():
    """Companion: |normal| directions (the positive orthant) fail the same check."""
    G = np.abs(np.random.default_rng(0).standard_normal((4, 20000)))
    assert not _uniform_directions_check(G / np.linalg.norm(G, axis=0))


def _spd(d, seed):
    A = np.random.default_rng(seed).standard_normal((d, d))
    return A @ A.T / d + 0.1 * np.eye(d)


def test_frechet_distance_of_gaussians():
    # commuting (diagonal) covariances: |mu1-mu2|² + sum (sqrt a - sqrt b)²
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expect = 5.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert probe.gaussian_frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expect, rel=1e-12)
    # general covariances: the FID formula with scipy.linalg.sqrtm(C1 C2)
    C1, C2 = _spd(6, 1), _spd(6, 2)
    mu1, mu2 = np.arange(6.0), np.ones(6)
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(C1 + C2) - 2 * np.real(np.trace(linalg.sqrtm(C1 @ C2)))
    assert probe.gaussian_frechet_distance(mu1, C1, mu2, C2) == pytest.approx(ref, rel=1e-9)
    assert probe.gaussian_frechet_distance(mu1, C1, mu1, C1) == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="shape mismatch"):
        probe.gaussian_frechet_distance(mu1, C1, mu2[:3], C2)


def _with_moments(n, mu, C, seed):
    """n samples whose sample mean and covariance (ddof=1) are exactly mu and C."""
    Z = np.random.default_rng(seed).standard_normal((n, mu.size))
    Z -= Z.mean(axis=0)
    L = np.linalg.cholesky(np.cov(Z, rowvar=False))
    W = np.linalg.solve(L, Z.T).T  # whitened: sample covariance I
    return mu + W @ np.linalg.cholesky(C).T


def test_frechet_distance_of_samples_uses_their_moments():
    C1, C2 = _spd(5, 3), _spd(5, 4)
    mu1, mu2 = np.zeros(5), np.full(5, 0.3)
    x, y = _with_moments(200, mu1, C1, 5), _with_moments(300, mu2, C2, 6)
    expect = probe.gaussian_frechet_distance(mu1, C1, mu2, C2)
    assert probe.frechet_distance(x, y) == pytest.approx(expect, rel=1e-9)
    c = probe.compare(x.reshape(200, 5, 1), y.reshape(300, 5, 1), metrics=("fd",))
    assert c.values["fd"][0] == pytest.approx(expect, rel=1e-9)
    # PCA features: the top-k directions of y's covariance
    w, V = np.linalg.eigh(np.cov(y, rowvar=False))
    F = V[:, ::-1][:, :2]
    expect2 = probe.gaussian_frechet_distance(F.T @ mu1, F.T @ C1 @ F, F.T @ mu2, F.T @ C2 @ F)
    assert probe.frechet_distance(x, y, components=2) == pytest.approx(expect2, rel=1e-8)


def test_frechet_components_are_validated_not_silently_reinterpreted():
    """F3: components / fd_components must be None or an integer in [1, d]; -5 meant d - 5, 0 and > d meant
    raw pixels, 2.5 meant 2, "3" was accepted and True crashed inside NumPy."""
    C1, C2 = _spd(5, 3), _spd(5, 4)
    x, y = _with_moments(40, np.zeros(5), C1, 5), _with_moments(60, np.full(5, 0.3), C2, 6)
    pixels = probe.frechet_distance(x, y)
    assert probe.frechet_distance(x, y, components=5) == pytest.approx(pixels, rel=1e-9)  # all of them: a rotation
    for bad in (-5, 0, 6, 1000, 2.5):
        with pytest.raises(ValueError, match=r"components must be None or an integer in \[1, 5\]"):
            probe.frechet_distance(x, y, components=bad)
        with pytest.raises(ValueError, match=r"^fd_components must be None or an integer in \[1, 5\]"):
            probe.compare(x, y, metrics=("fd",), fd_components=bad)
    for bad in ("3", True, [2]):
        with pytest.raises(ArgumentTypeError, match="components must be None or an integer"):
            probe.frechet_distance(x, y, components=bad)
        with pytest.raises(ArgumentTypeError, match="fd_components must be None or an integer"):
            probe.compare_paired({"a": x}, y, metrics=("fd",), fd_components=bad)


# ------------------------------------------------------------------------------------------
# comparisons
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paired():
    pytest.importorskip("ot", reason='the probe\'s sliced W2 needs POT: pip install -e ".[torch]"')
    S = make_spectrum((8, 8), "power", exponent=2.0, scale=4.0)
    ref = mc.gaussian_field(S, 400, seed=50)
    den = probe.wiener_denoiser(S, prediction="epsilon")
    scheds = {"w2": symsched.optimize_schedule(S, 4, divergence="w2").alpha_bar,
              "leading": schedules.standard_schedule("linear-leading", 4)}
    samples = {k: [probe.sample(den, ab, n_samples=300, seed=s) for s in (0, 1, 2)] for k, ab in scheds.items()}
    return S, ref, scheds, samples


def test_compare_values_and_predicted_spectral_errors(paired):
    S, ref, scheds, samples = paired
    c = probe.compare(samples["w2"], ref, alpha_bar=scheds["w2"], spectrum=S)
    assert c.n_seeds == 3 and c.n_samples == (300, 300, 300) and c.n_reference == 400
    ref_psd = mc.empirical_psd(ref)
    for i, x in enumerate(samples["w2"]):
        psd = mc.empirical_psd(x)
        assert c.values["spectral_kl"][i] == pytest.approx(symsched.kl_divergence(ref_psd, psd), rel=1e-12)
        assert c.values["spectral_w2"][i] == pytest.approx(symsched.w2_distance(psd, ref_psd), rel=1e-12)
        assert c.values["mmd2"][i] == pytest.approx(probe.mmd2(x, ref), rel=1e-9)
        assert c.values["fd"][i] == pytest.approx(probe.frechet_distance(x, ref), rel=1e-9)
    P = symsched.output_spectrum(S, scheds["w2"], sampler="ddim")
    assert c.predicted["spectral_kl"] == pytest.approx(symsched.kl_divergence(S, P), rel=1e-12)
    assert c.predicted["spectral_w2"] == pytest.approx(symsched.w2_distance(P, S), rel=1e-12)
    assert c.mean("mmd2") == pytest.approx(np.mean(c.values["mmd2"]))
    assert c.sd("fd") == pytest.approx(np.std(c.values["fd"], ddof=1))
    md = c.to_markdown()
    assert "spectral KL (predicted)" in md and "MMD²" in md and " ± " in md
    single = probe.compare(samples["w2"][0], ref, metrics=("mmd2",))
    assert math.isnan(single.sd("mmd2")) and "±" not in single.to_markdown()


def test_paired_differences(paired):
    S, ref, scheds, samples = paired
    pc = probe.compare_paired(samples, ref, alpha_bar=scheds, spectrum=S)
    assert pc.baseline == "w2" and pc.metrics == probe.METRICS
    for m in probe.METRICS:
        d = pc.difference("leading", m)
        expect = pc.comparisons["leading"].values[m] - pc.comparisons["w2"].values[m]
        np.testing.assert_allclose(d.values, expect)
        assert d.mean == pytest.approx(np.mean(expect)) and d.sd == pytest.approx(np.std(expect, ddof=1))
        assert d.wins == int(np.sum(expect < 0))
        np.testing.assert_allclose(pc.difference("w2", m, "leading").values, -expect)
    # one reference, one kernel, one set of projections: each schedule's numbers equal a lone compare()
    alone = probe.compare(samples["leading"], ref)
    for m in probe.METRICS:
        np.testing.assert_allclose(pc.comparisons["leading"].values[m], alone.values[m], rtol=1e-12)
    md = pc.to_markdown()
    assert "Paired differences `schedule − w2`" in md and "| leading |" in md
    # the optimised-for-W2 schedule has the lower spectral W2, predicted and measured, on every seed
    assert pc.comparisons["w2"].predicted["spectral_w2"] < pc.comparisons["leading"].predicted["spectral_w2"]
    assert pc.difference("leading", "spectral_w2").wins == 0
    # a tie is no win (audit of 6 December: counting values <= 0 passed): the same samples under two names, and a
    # hand-made difference of -1, 0 and +2 (one win in three)
    twins = probe.compare_paired({"a": samples["w2"], "b": samples["w2"]}, ref)
    assert all(twins.difference("b", m).wins == 0 and np.all(twins.difference("b", m).values == 0)
               for m in twins.metrics)
    assert probe.PairedDifference("a", "b", "mmd2", np.array([-1.0, 0.0, 2.0])).wins == 1
    with pytest.raises(ValueError, match="same number of seeds"):
        probe.compare_paired({"a": samples["w2"], "b": samples["leading"][:2]}, ref)
    with pytest.raises(ValueError, match="baseline must be one of"):
        probe.compare_paired(samples, ref, baseline="karras")
    with pytest.raises(ValueError, match="sample shape"):
        probe.compare(np.zeros((5, 4, 4)), ref)
    with pytest.raises(ValueError, match="^metrics entries must be one of"):
        probe.compare(samples["w2"], ref, metrics=("fid",))


def test_probe_schedules_matches_compare_paired(paired):
    S, ref, scheds, samples = paired
    den = probe.wiener_denoiser(S, prediction="epsilon")
    res = probe.probe_schedules(den, scheds, ref, n_samples=300, seeds=(0, 1, 2), spectrum=S, progress=False,
                                grid=schedules.training_grid("linear"), n_examples=4)
    pc = probe.compare_paired(samples, ref, alpha_bar=scheds, spectrum=S)
    for k in scheds:
        for m in probe.METRICS:
            np.testing.assert_allclose(res.comparison.comparisons[k].values[m], pc.comparisons[k].values[m],
                                       rtol=1e-10)
        np.testing.assert_array_equal(res.examples[k], samples[k][0][:4])
    assert res.reference_examples.shape == (4, 8, 8)
    assert all(len(t) == 4 for t in res.timesteps.values())
    d = res.to_dict()
    assert d["seeds"] == [0, 1, 2] and set(d["comparisons"]) == set(scheds)
    fig = probe.plot_probe(res)
    assert len(fig.axes) == 2  # the samples (a row per schedule and the reference) and the PSDs
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic.shape == ((len(scheds) + 1) * 9 - 1, 4 * 9 - 1)  # 8x8 samples, 1-pixel gaps
    np.testing.assert_allclose(mosaic[:8, :8], np.clip(0.5 * (res.examples[list(scheds)[0]][0] + 1), 0, 1))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(scheds) + ["reference"]
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend == (["reference (measured, thick black line)"] + [f"{k} (measured)" for k in scheds]
                      + ["closed-form prediction (thin line, same colour)"])  # the lines are explained too
    # new-user audit: the title said "measured (markers) vs predicted (lines)" while the reference, measured, is a
    # (thick black) line too; title and legend now name the same three kinds of curve
    assert fig.axes[1].get_title() == ("markers: measured · thin lines: closed-form prediction · "
                                       "black: reference (measured)")
    ref = fig.axes[1].get_lines()[0]
    assert ref.get_label().startswith("reference") and ref.get_color() == "k" and ref.get_linewidth() == 2
    for bad in (2, -3, 10**30):  # (8, 8) samples: axes -2 and 1 at most
        with pytest.raises(ValueError, match="channel_axis"):
            probe.plot_probe(res, channel_axis=bad)


def test_default_schedules_are_on_the_grid():
    S = make_spectrum((8, 8), "power", exponent=2.0)
    g = schedules.training_grid("linear")
    sch = probe.default_schedules(S, 3, grid=g, names=["optimised-w2", "linear-trailing", "karras"])
    assert list(sch) == ["optimised-w2", "linear-trailing", "karras"]
    for ab in sch.values():
        assert ab.size == 3 and all(np.min(np.abs(g - a)) == 0 for a in ab)
    np.testing.assert_array_equal(sch["optimised-w2"],
                                  symsched.optimize_schedule(S, 3, divergence="w2", grid=g, init="white",
                                                           endpoints=probe.PROBE_ENDPOINTS).alpha_bar)
    np.testing.assert_array_equal(sch["karras"], schedules.standard_schedule("karras", 3, grid=g))
    with pytest.raises(ValueError, match="names entries must be one of"):
        probe.default_schedules(S, 5, names=["best"])


@pytest.mark.parametrize("bad", ["optimised-W2", "optimised-foo", "Karras"])
def test_default_schedules_check_every_name_before_optimising(monkeypatch, bad):
    """Audit of 5 December: ['optimised-w2', 'karras', 'optimised-W2'] optimised the first name, then blamed
    "divergence" (an argument never passed); every name is checked first, and named as such."""
    import symsched as pkg

    def no_work(*args, **kwargs):
        raise AssertionError("optimised before the names were checked")

    monkeypatch.setattr(pkg, "optimize_schedule", no_work)
    with pytest.raises(ValueError, match=rf"^names entries must be one of .*got '{bad}'"):
        probe.default_schedules(np.ones(4), 3, names=["optimised-w2", "karras" if bad != "Karras" else "cosine", bad])


# ------------------------------------------------------------------------------------------
# adapters
# ------------------------------------------------------------------------------------------
def _torch_wiener(torch, S, grid, output):
    """A torch module computing the exact denoiser at the grid level of an integer timestep."""

    class Wiener(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("S", torch.from_numpy(S))
            self.register_buffer("grid", torch.from_numpy(grid))
            self.scale = torch.nn.Parameter(torch.ones((), dtype=torch.float64))
            self.timesteps = []

        def forward(self, x, t):
            self.timesteps.append(t.clone())
            a = self.grid[t].reshape(-1, *([1] * (x.ndim - 1)))
            X = torch.fft.fftn(x, dim=tuple(range(1, x.ndim)))
            lam = a * self.S + 1 - a
            g = torch.sqrt(1 - a) / lam if output == "epsilon" else torch.sqrt(a) * self.S / lam
            return self.scale * torch.fft.ifftn(X * g, dim=tuple(range(1, x.ndim))).real

    return Wiener()


def test_torch_adapter_drives_the_probe_exactly():
    torch = pytest.importorskip("torch")
    g = schedules.training_grid("linear")
    ab = schedules.standard_schedule("linear-trailing", 6)
    mod = _torch_wiener(torch, S16, g, "epsilon")
    den = probe.torch_denoiser(mod, g, prediction="epsilon", shape=SHAPE)
    assert den.prediction == "epsilon" and den.shape == SHAPE
    x = probe.sample(den, ab, n_samples=N, seed=21, progress=False)
    assert [int(t[0]) for t in mod.timesteps[:6]] == [int(probe.grid_timestep(a, g)) for a in ab]
    assert all(t.dtype == torch.int64 for t in mod.timesteps)
    assert_psd_matches(mc.empirical_psd(x), symsched.output_spectrum(S16, ab), N, what="torch adapter")
    # same numbers as the NumPy Wiener denoiser (float64 module)
    y = probe.sample(probe.wiener_denoiser(S16), ab, n_samples=8, seed=21)
    np.testing.assert_allclose(x[:8], y, rtol=1e-8, atol=1e-10)
    # interpolated timesteps are floats; a float32 module gets float32 input
    mod32 = _torch_wiener(torch, S16.astype(np.float32), g.astype(np.float32), "sample").float()
    den32 = probe.torch_denoiser(lambda x, t: mod32(x, t.round().long()), g, prediction="sample", shape=SHAPE,
                                 timestep="interpolate", dtype=torch.float32)
    out = den32(np.zeros((2, *SHAPE)), float(g[10]))
    assert out.dtype == np.float64 and out.shape == (2, *SHAPE)


def test_torch_adapter_runs_a_module_in_training_mode_as_in_eval_mode_and_leaves_its_modes_alone():
    """Audit of 4 December: a module in training mode (dropout, batch-norm on batch statistics) gave other samples
    for the same seed, and batch-norm made them depend on batch_size. The adapter runs it in eval mode for each call
    and restores every submodule's own mode (here a frozen batch-norm in a training module). Reference: the same
    module put in eval mode by hand."""
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.frozen, self.bn, self.drop = torch.nn.BatchNorm1d(16), torch.nn.BatchNorm1d(16), torch.nn.Dropout(0.5)

        def forward(self, x, t):
            return self.drop(self.bn(self.frozen(x.reshape(len(x), -1)))).reshape(x.shape)

    torch.manual_seed(0)
    net = Net().double()
    with torch.no_grad():  # running statistics unlike a batch's, so that training mode would differ
        for bn in (net.frozen, net.bn):
            bn.running_mean.fill_(0.3)
            bn.running_var.fill_(2.0)
    net.frozen.eval()
    g = schedules.training_grid("linear")
    ab = schedules.standard_schedule("linear-trailing", 4)
    den = probe.torch_denoiser(net, g, shape=(4, 4))
    a = probe.sample(den, ab, n_samples=6, seed=1, batch_size=4)
    b = probe.sample(den, ab, n_samples=6, seed=1, batch_size=6)
    assert net.training and net.bn.training and net.drop.training and not net.frozen.training  # modes restored
    net.eval()
    ref = probe.sample(probe.torch_denoiser(net, g, shape=(4, 4)), ab, n_samples=6, seed=1)
    np.testing.assert_array_equal(a, ref)
    np.testing.assert_array_equal(b, ref)


def test_torch_adapter_keeps_a_shared_module_in_eval_mode_until_its_last_caller_leaves():
    """Review of 4 December: two threads sharing one denoiser; the first to leave put the module back in training
    mode while the second was still running it (dropout on). Ordered by events: B reads the mode after A has left."""
    torch = pytest.importorskip("torch")
    import threading

    a_done, b_inside, seen = threading.Event(), threading.Event(), []

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = torch.nn.Dropout(0.5)

        def forward(self, x, t):
            if threading.current_thread().name == "A":
                seen.append(("A", self.drop.training))
                assert b_inside.wait(10)
            else:
                b_inside.set()
                assert a_done.wait(10)
                seen.append(("B", self.drop.training))
            return x

    net = Net().double()
    den = probe.torch_denoiser(net, schedules.training_grid("linear"), shape=(4,))

    def run_a() -> None:
        den(np.zeros((2, 4)), 0.5)
        a_done.set()

    threads = [threading.Thread(target=run_a, name="A"), threading.Thread(target=den, args=(np.zeros((2, 4)), 0.5),
                                                                          name="B")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert sorted(seen) == [("A", False), ("B", False)] and net.training and net.drop.training


def test_adapters_need_torch(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r'pip install "symsched\[torch\]"'):
        probe.torch_denoiser(object(), schedules.training_grid("linear"))


@pytest.mark.diffusers
def test_diffusers_adapter_reads_the_scheduler():
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    unet = tiny_unet()
    unet.eval()
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear",
                                    prediction_type="v_prediction")
    den = probe.diffusers_denoiser(unet, sched)
    assert den.prediction == "v" and den.shape == (1, 8, 8)
    np.testing.assert_allclose(den.grid, sched.alphas_cumprod.numpy(), rtol=1e-7)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8))
    t = 640
    with torch.inference_mode():
        direct = unet(torch.from_numpy(x).float(), torch.full((3,), t)).sample.double().numpy()
    np.testing.assert_allclose(den(x, float(sched.alphas_cumprod[t])), direct, rtol=1e-6, atol=1e-6)
    ab = schedules.standard_schedule("scaled_linear-trailing", 3)
    out = probe.sample(den, ab, n_samples=4, seed=0)
    assert out.shape == (4, 1, 8, 8) and np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="prediction_type must be one of"):
        probe.diffusers_denoiser(unet, diffusers.DDPMScheduler(prediction_type="flow"))


def test_probe_schedules_validates_before_sampling():
    calls = []

    def den(x, a):
        calls.append(a)
        return np.zeros_like(x)

    ref = np.random.default_rng(0).standard_normal((20, 4, 4))
    ok = dict(shape=(4, 4), prediction="sample", n_samples=5, progress=False)
    bad = [(dict(seeds=3), "seeds must be a sequence"),
           (dict(seeds=(0, -1)), r"seeds must be a non-negative integer \(got -1\)"),
           # (audit of 4 December: range(10**9) was listed whole and then sampled seed by seed, without a bound)
           (dict(seeds=range(10**9)), r"seeds must hold at most 100 values \(symsched._validate.MAX_ENTRIES"),
           (dict(sampler="unipc_multistep"), "sampler 'unipc_multistep': the learned probe has no loop"),
           (dict(spectrum=np.ones(3)), "spectrum and reference disagree"),
           (dict(metrics=()), "metrics must name"), (dict(baseline="x"), "baseline must be one of")]
    for kw, msg in bad:
        with pytest.raises(ValueError, match=msg):
            probe.probe_schedules(den, {"a": [0.3, 0.8]}, ref, **{**ok, **kw})
    with pytest.raises(ValueError, match=r"schedules\['a'\] must be strictly increasing"):
        probe.probe_schedules(den, {"a": [0.8, 0.3]}, ref, **ok)
    with pytest.raises(ValueError, match=r"n_samples must be at most 10000000 \(symsched._validate.MAX_SAMPLES\)"):
        probe.probe_schedules(den, {"a": [0.3, 0.8]}, ref, **{**ok, "n_samples": MAX_SAMPLES + 1})
    assert calls == []


def test_sample_holds_n_samples_and_shape_to_the_documented_limits():
    """F5: probe.sample ran 20,000,001 samples (mc.sample refuses them) and hit a MemoryError on a huge shape;
    both are refused with the MAX_SAMPLES / MAX_MODES ValueError before the denoiser is called or anything allocated."""
    calls = []

    def den(x, a):
        calls.append(a)
        return 0 * x

    with pytest.raises(ValueError, match=r"n_samples must be at most 10000000 \(symsched._validate.MAX_SAMPLES\)"):
        probe.sample(den, [0.5], shape=(1,), n_samples=MAX_SAMPLES + 1, prediction="sample", seed=0)
    for shape in ((10**6, 10**6), (MAX_MODES + 1,)):
        with pytest.raises(ValueError, match=r"shape asks for \d+ modes, more than MAX_MODES"):
            probe.sample(den, [0.5], shape=shape, n_samples=3, prediction="sample", seed=0)
    assert calls == []
    assert probe.sample(den, [0.5], shape=(2,), n_samples=3, prediction="sample", seed=0).shape == (3, 2)


def test_refusal_of_diffusers_only_samplers_is_truthful():
    """F10: the message said DPMSolverMultistep / FlowMatchEuler take no custom levels; they do (timesteps= on the
    training grid, sigmas=). It now says what the probe lacks (a loop for the diffusers scheduler's step) and how
    the schedule runs in diffusers, consistent with export.to_diffusers."""
    from symsched import export

    den = lambda x, a: 0.5 * x  # noqa: E731
    cases = {
        "dpmsolver_multistep": ("DPMSolverMultistepScheduler", "timesteps= on its training grid", "'dpmpp_2m'"),
        "flow_match_euler": ("FlowMatchEulerDiscreteScheduler", "sigmas=", ""),
        "euler_ancestral_discrete": ("EulerAncestralDiscreteScheduler", "only num_inference_steps", "'euler_ancestral'"),
        "unipc_multistep": ("UniPCMultistepScheduler", "use_flow_sigmas", ""),
        "deis_multistep": ("DEISMultistepScheduler", "only num_inference_steps", ""),
        "flow_match_heun": ("FlowMatchHeunDiscreteScheduler", "only num_inference_steps", ""),
    }
    for name, (scheduler, how, nearest) in cases.items():
        with pytest.raises(ValueError) as info:
            probe.sample(den, [0.1, 0.5], shape=(4,), n_samples=3, prediction="sample", sampler=name)
        msg = str(info.value)
        assert "takes no custom levels" not in msg and "whose set_timesteps takes" not in msg, msg
        assert f"no loop for diffusers' {scheduler}.step" in msg and how in msg, msg
        assert (nearest in msg) if nearest else "nearest" not in msg, msg
    # what the message says the diffusers schedulers take is what the export returns
    assert set(export.to_diffusers([0.1, 0.5], scheduler="FlowMatchEulerDiscreteScheduler")) == {"sigmas"}
    grid = schedules.training_grid("linear")
    assert set(export.to_diffusers(grid[[999, 500]], grid=grid, scheduler="DPMSolverMultistepScheduler")) == {"timesteps"}
    assert "custom levels" not in (probe.sample.__doc__ or "")


@pytest.mark.parametrize("sampler,options,msg", [
    ("euler_ancestral", {"eta": -1.0}, r"options: eta must lie in \[0, inf\), finite for sampler 'euler_ancestral'"),
    ("lms", {"order": 7}, r"options: order must be one of 1, 2, 3, 4 \(default 4\) for sampler 'lms'"),
    ("dpmpp_2m_sde", {"s_noise": -1}, r"options: s_noise must lie in \[0, inf\), finite for sampler 'dpmpp_2m_sde'"),
    ("dpmpp_2m_sde", {"solver_type": "rk4"}, r"options: solver_type must be one of 'midpoint', 'heun'"),
    ("dpmpp_sde", {"r": float("nan")}, r"options: r must lie in"),
])
def test_options_are_checked_as_output_spectrum_checks_them(sampler, options, msg):
    """F8: invalid k-diffusion settings ran unchecked although output_spectrum_ve refuses them (the
    predicted-vs-measured comparison was then meaningless). The probe now raises output_spectrum's own error."""
    calls = []

    def den(x, a):
        calls.append(a)
        return 0.5 * x

    with pytest.raises(ValueError) as expected:
        symsched.output_spectrum_ve([2.0], [3.0, 1.0], sampler=sampler, **options)
    with pytest.raises(ValueError, match=msg) as got:
        probe.sample(den, [0.01, 0.2, 0.6, 0.95], shape=(4,), n_samples=3, prediction="sample", seed=0,
                     sampler=sampler, options=options)
    assert str(got.value) == f"options: {expected.value}" and type(got.value) is type(expected.value)
    assert calls == []


@pytest.mark.parametrize("scale", [1e160, 1e-200])
def test_sliced_w2_at_the_ends_of_float64_is_the_scaled_distance(scale):
    """Sliced W2 is homogeneous of degree 1; samples near 1e160 overflowed the squared distances (a silent NaN)
    and near 1e-200 underflowed them (0). In one dimension it is the exact W2 (POT's emd2, computed here)."""
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((80, 1)), 0.5 + 2.0 * rng.standard_normal((55, 1))
    exact = math.sqrt(ot.emd2(np.full(80, 1 / 80), np.full(55, 1 / 55), ot.dist(x, y)))
    assert probe.sliced_w2(x * scale, y * scale, n_projections=3) == pytest.approx(exact * scale, rel=1e-9, abs=0)


def test_gaussian_frechet_distance_refuses_what_is_not_a_covariance():
    mu = np.zeros(2)
    with pytest.raises(ValueError, match="cov1 must be positive semi-definite"):
        probe.gaussian_frechet_distance(mu, -4 * np.eye(2), mu, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="cov2 must be a symmetric"):
        probe.gaussian_frechet_distance(mu, np.eye(2), mu, np.array([[1.0, 2.0], [0.0, 1.0]]))
    # by hand: |mu1 - mu2|^2 + tr(I + 4I - 2 (4I)^1/2) = 2 + 2 (5 - 4) = 4; round-off negatives are still fine
    assert probe.gaussian_frechet_distance(mu, np.eye(2), np.ones(2), 4 * np.eye(2)) == pytest.approx(4.0, rel=1e-14)
    assert probe.gaussian_frechet_distance(mu, np.diag([1.0, -1e-17]), mu, np.diag([1.0, 0.0])) == pytest.approx(0, abs=1e-12)


def test_metric_messages_name_the_samples_the_user_passed():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 4)), rng.normal(size=(40, 4))
    with pytest.raises(ValueError, match=r"^x, y: the Fréchet distance of these Gaussians exceeds the float64 range"):
        probe.frechet_distance(X * 1e200, Y)  # (|mean|^2 ~ 1e400: its moments are representable, the distance not)
    # MMD² depends on distances / bandwidth only: tiny data are rescaled by a power of two (they used to be refused)
    assert probe.mmd2(X * 1e-200, Y * 1e-200) == pytest.approx(probe.mmd2(X, Y), rel=1e-12)
    with pytest.raises(ValueError, match="identical points"):
        probe.mmd2(X, np.ones((40, 4)))


@pytest.mark.parametrize("max_points, rule", [(0, "positive integer"), (1, "at least 2"), (2.5, "integer")])
def test_median_bandwidth_checks_max_points(max_points, rule):
    X = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(ValueError, match=rf"max_points .*{rule}"):
        probe.median_bandwidth(X, max_points=max_points)
    assert probe.median_bandwidth(X) == pytest.approx(float(np.median(pdist(X))), rel=1e-15)


def test_probe_on_a_stable_diffusion_grid_gets_the_grid_spacings(capsys) -> None:
    """break-test 45: on scaled_linear betas (SD) the linear-trailing levels collide at timestep 999 and the probe
    CLI stopped with its defaults; grid-<spacing> names run diffusers' spacing on the model's own grid (trailing,
    K = 4: timesteps 999, 749, 499, 249, typed in from diffusers' DDIMScheduler rule), and the CLI's defaults
    switch to them, with a note, where the linear ones do not fit."""
    from symsched.commands.probe import _on_model_grid

    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    sd = np.cumprod(1.0 - betas)
    from symsched.schedules import GridCollision

    with pytest.raises(GridCollision, match="snap to the same grid timestep 999"):  # typed: the CLI catches the type
        probe.default_schedules(np.ones(4), 4, names=["linear-trailing"], grid=sd)
    with pytest.raises(ValueError, match="grid must not be empty"):  # any other refusal is not a collision
        _on_model_grid(["linear-trailing"], np.array([]), 4)
    got = probe.default_schedules(np.ones(4), 4, names=["grid-trailing", "grid-leading"], grid=sd)
    np.testing.assert_array_equal(got["grid-trailing"], sd[[999, 749, 499, 249]])
    np.testing.assert_array_equal(got["grid-leading"], sd[[750, 500, 250, 0]])
    names, notes = _on_model_grid(list(probe.DEFAULT_SCHEDULES), sd, 4)
    assert names[2] == "grid-trailing" and "linear-leading" in names
    assert len(notes) == 1 and "linear-trailing does not fit this model's grid" in notes[0]
    assert capsys.readouterr().err == ""  # the CLI prints the notes after the run (a refusal stays one line)
    assert _on_model_grid(list(probe.DEFAULT_SCHEDULES), None, 4) == (list(probe.DEFAULT_SCHEDULES), [])


def test_sliced_w2_beyond_float64_is_a_value_error():
    """break-test: ±1.7e308 (a distance of 3.4e308) returned inf; up to the float64 range the value is exact: in
    one dimension two point masses at ±8e307 are 1.6e308 apart."""
    pytest.importorskip("ot")
    assert probe.sliced_w2(np.full((3, 1), 8e307), np.full((4, 1), -8e307), n_projections=2) == \
        pytest.approx(1.6e308, rel=1e-12)
    with pytest.raises(ValueError, match=r"^x, y: their sliced W2 exceeds the float64 range"):
        probe.sliced_w2(np.full((3, 2), 1.7e308), np.full((3, 2), -1.7e308))


def test_mmd2_median_bandwidth_beyond_float64_names_the_samples():
    """break-test: the refusal named ``scales``, which the caller never passed; the cause is the samples' size."""
    y = np.array([[0.0], [1.5e308], [1e308]])
    with pytest.raises(ValueError, match=r"^y: its median pairwise distance 1e\+308 times scales .* exceeds"):
        probe.mmd2(y, y)


def test_compare_refuses_a_predicted_kl_beyond_float64() -> None:
    """audit 5 Dec: a faint spectrum (S = 1e-320 per mode, DDIM's P ~ S^2) has a predicted spectral KL of ~3e320,
    beyond float64: compare returned +inf, which its docstring reserves for a mode that is 0 in one spectrum only.
    Independent value: one mode's KL term, 1/2 (S/P - 1 - log(S/P)), with S/P from the closed-form gain."""
    rng = np.random.default_rng(0)
    ref, x = rng.standard_normal((50, 4, 4)), rng.standard_normal((40, 4, 4))
    with pytest.raises(ValueError, match=r"predicted spectral_kl .*exceeds the float64 range"):
        probe.compare(x, ref, alpha_bar=[0.1, 0.5], spectrum=np.full((4, 4), 1e-320))
    S = np.full((4, 4), 1e-150)  # P ~ 1e-300: the KL, about 16 x 1/2 x S/P ~ 1e150, is finite and returned
    got = probe.compare(x, ref, alpha_bar=[0.1, 0.5], spectrum=S).predicted["spectral_kl"]
    P = symsched.output_spectrum(S, [0.1, 0.5])
    r = 1e-150 / float(P[0, 0])
    assert got == pytest.approx(16 * 0.5 * (r - 1 - math.log(r)), rel=1e-9)
    S[0, 0] = 0.0  # a zero mode whose predicted output is 0 too contributes nothing: finite
    assert math.isfinite(probe.compare(x, ref, alpha_bar=[0.1, 0.5], spectrum=S).predicted["spectral_kl"])


def test_grid_timestep_tie_goes_to_the_noisier_timestep() -> None:
    """mutation run 5 Dec: the tie rule (<= vs <) was untested. Grid levels 0.75 and 0.25 have log-SNR +-log 3
    exactly negatives in float64, and alpha_bar 0.5 has log-SNR 0, exactly halfway: the documented choice is the
    noisier (larger) timestep; a hair to either side picks the nearer one."""
    grid = [0.75, 0.25]
    assert probe.grid_timestep(0.5, grid) == 1.0
    assert probe.grid_timestep(0.5 + 1e-12, grid) == 0.0 and probe.grid_timestep(0.5 - 1e-12, grid) == 1.0


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [1, 5, 7, 10, 30])
def test_ddim_scheduler_note_agrees_with_diffusers_own_ddim_steps(spacing, steps):
    """The note appears exactly where diffusers' DDIMScheduler.step goes somewhere other than the next timestep."""
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing, steps_offset=0, clip_sample=False)
    sch.set_timesteps(steps)
    torch = pytest.importorskip("torch")
    ac = sch.alphas_cumprod.double().numpy()
    ts = [int(t) for t in sch.timesteps]
    went = []  # where diffusers' step went, read off its output: with eps = 0, x_prev = sqrt(ac_prev / ac_t) x
    for t in ts[:-1]:
        x = torch.ones(1, dtype=torch.float64)
        ac_prev = float(sch.step(torch.zeros_like(x), t, x).prev_sample[0]) ** 2 * ac[t]
        went.append(int(np.argmin(np.abs(np.log(ac) - np.log(ac_prev)))))
    diffusers_is_a_schedule = went == ts[1:]
    note = probe.ddim_scheduler_note(f"grid-{spacing}", steps, 1000)
    assert (note is None) == diffusers_is_a_schedule, (spacing, steps, ts)
    assert probe.ddim_scheduler_note("karras", steps, 1000) is None


def _white_patch_spectrum(seed):
    return probe.measured_spectrum(np.random.default_rng(seed).standard_normal((200, 1, 8, 8)) * 0.5)


@pytest.mark.parametrize("seed", [2, 3])
def test_no_optimised_schedule_loses_on_its_own_divergence_to_another(seed):
    """break-test (7 December): on nearly white spectra the KL-optimised schedule lost on KL to the W2-optimised one
    (seed 2) or the reverse on W2 (seed 3): several near-zero basins, each search in another."""
    from symsched.optimize import schedule_metrics

    S = _white_patch_spectrum(seed)
    got = probe.default_schedules(S, 3, names=["optimised-w2", "optimised-kl"])
    w2, kl = (schedule_metrics(S, got[n]) for n in ("optimised-w2", "optimised-kl"))
    assert kl["kl"] <= w2["kl"] and w2["w2"] <= kl["w2"]


def test_grid_search_is_never_worse_than_a_warm_start_on_the_grid():
    """break-test (7 December): a warm start of K grid levels (timesteps [256, 182, 61], KL 1.31e-5) returned as
    [256, 181, 60] at 1.45e-5: the grid search did not start from it."""
    from symsched.optimize import optimize_schedule, schedule_metrics

    S, grid = _white_patch_spectrum(0), schedules.training_grid("linear")
    for ts in ([256, 182, 61], [500, 300, 100], [999, 50, 0]):
        warm = grid[ts]
        own = schedule_metrics(S, warm)["kl"]
        r = optimize_schedule(S, 3, divergence="kl", endpoints=(None, None), grid=grid, warm_starts=[warm])
        assert r.value <= own * (1 + 1e-12), (ts, r.timesteps, r.value, own)
    # and a warm start off the grid is rounded onto it (here: its nearest timesteps)
    off = np.exp(np.log(grid[[256, 182, 61]]) * 1.0001)
    r = optimize_schedule(S, 3, divergence="kl", endpoints=(None, None), grid=grid, warm_starts=[off])
    assert r.value <= schedule_metrics(S, grid[[256, 182, 61]])["kl"] * (1 + 1e-12)
