"""probe.sample on zero-terminal-SNR schedules, its argument checks, and measured_spectrum/compare on odd inputs.

Monte Carlo checks use the exact chi^2 law of the periodogram (``mc_helpers.assert_psd_matches``):
every bin must lie within the Bonferroni chi^2 bounds at family-wise false-alarm probability
``FAMILYWISE_ALPHA = 1e-6`` per test case, against the closed form ``symsched.output_spectrum``
(which accepts ``alpha_bar[0] = 0`` independently of the signal-space sampler loop).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import symsched
from symsched import _signal_samplers as loops
from symsched import montecarlo as mc
from symsched import probe

from mc_helpers import assert_psd_matches, assert_psd_rejects, make_spectrum

SHAPE = (8, 8)
N = 3000
S8 = make_spectrum(SHAPE, "power", exponent=2.0, scale=5.0)
AB0 = np.array([0.0, 0.3, 0.6, 0.85, 0.97])  # zero terminal SNR: the first level is pure noise

VP_CASES = [("ddim", {"eta": 0.0}), ("ddim", {"eta": 1.0}), ("ddpm", {"variance": "posterior"}),
            ("ddpm", {"variance": "beta"})]


@pytest.mark.parametrize("prediction", ["sample", "v"])
@pytest.mark.parametrize("sampler,kw", VP_CASES, ids=["ddim-eta0", "ddim-eta1", "ddpm-posterior", "ddpm-beta"])
def test_zero_snr_wiener_control_reproduces_output_spectrum(sampler, kw, prediction):
    den = probe.wiener_denoiser(S8, prediction=prediction)
    seed = 300 + 10 * VP_CASES.index((sampler, kw)) + ["sample", "v"].index(prediction)
    x = probe.sample(den, AB0, n_samples=N, sampler=sampler, seed=seed, progress=False, **kw)
    assert np.all(np.isfinite(x))
    P = symsched.output_spectrum(S8, AB0, sampler=sampler, init="white", **kw)
    assert_psd_matches(mc.empirical_psd(x), P, N, what=f"zero SNR {sampler} {kw} {prediction}")
    # power (deterministic DDIM, where the first step scales the output by 1 - ab[1]): dropping the
    # pure-noise first step (running ab[1:] from white noise) must be rejected
    if sampler == "ddim" and kw["eta"] == 0.0:
        assert_psd_rejects(mc.empirical_psd(x), symsched.output_spectrum(S8, AB0[1:], sampler=sampler, init="white"),
                           N, what="first step dropped")


def test_zero_snr_ddim_eta0_is_the_readme_identity():
    """DDIM(0) from alpha_bar = 0: x_1 = sqrt(ab1) x0_hat(=0) + sqrt(1 - ab1) x_0, so P = (1 - ab1) P(ab[1:])."""
    P0 = symsched.output_spectrum(S8, AB0, sampler="ddim", init="white")
    np.testing.assert_allclose(P0, (1 - AB0[1]) * symsched.output_spectrum(S8, AB0[1:], sampler="ddim"), rtol=1e-12)


class _KnownX0:
    """A model whose x0_hat is a fixed array (and eps_hat the exact complement at alpha_bar = 0)."""

    def __init__(self, x0):
        self.x0 = x0

    def vp(self, x, alpha_bar, want):
        assert alpha_bar == 0.0
        return [self.x0.copy() if w == "x0" else x.copy() for w in want]


@pytest.mark.parametrize("variance,var", [("posterior", 1 - 0.36), ("beta", 1.0)])
def test_ddpm_step_from_zero_snr_is_the_posterior_mean_limit(variance, var):
    """beta = 1: x_s = sqrt(a_s) x0_hat exactly, plus noise of variance (1 - a_s) (posterior) or beta = 1."""
    rng = np.random.default_rng(0)
    x0, xt = rng.standard_normal((2, 3, 5))
    got = []
    out = loops.ddpm_step(xt.copy(), 0.0, 0.36, model=_KnownX0(x0), add_noise=lambda x, v: (got.append(v), x)[1],
                          last=False, state={}, variance=variance)
    np.testing.assert_array_equal(out, 0.6 * x0)
    assert got == [pytest.approx(var, rel=1e-15)]
    assert loops._one_minus_ratio(0.0, 0.36) == 1.0


def test_zero_snr_epsilon_model_is_refused_clearly():
    den = probe.wiener_denoiser(S8, prediction="epsilon")
    for sampler in ("ddim", "ddpm"):
        with pytest.raises(ValueError, match=r"^alpha_bar starts at alpha_bar = 0 .*epsilon-prediction model determines no x0_hat"):
            probe.sample(den, AB0, n_samples=4, sampler=sampler, seed=0, progress=False)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "euler"])
def test_epsilon_model_floor_keeps_half_of_float64s_digits(sampler):
    """Audit of 5 December: the epsilon floor sat at alpha_bar = 1e-32, where x0 = (x - sqrt(1-ab) eps)/sqrt(ab)
    magnifies eps's rounding (2^-53) by 1e16, i.e. to the size of x itself: at 1e-30 the Wiener control's PSD was
    off by 8-22 %. Above the floor the epsilon model must agree with the same denoiser as a v model (no
    cancellation) to 1e-7 of the samples' scale (measured: ~2.4e-8 at 1e-16, 2e-6 at 1e-20); below it, refused."""
    S = np.array([4.0, 2.0, 0.5, 0.1, 0.5, 2.0])
    at_floor = np.array([1e-16, 0.3, 0.9])
    x_eps, x_v = (probe.sample(probe.wiener_denoiser(S, prediction=p), at_floor, n_samples=500, seed=0,
                               sampler=sampler, progress=False) for p in ("epsilon", "v"))
    assert np.abs(x_eps - x_v).max() <= 1e-7 * np.abs(x_v).max()
    for a0 in (1e-20, 1e-30):
        with pytest.raises(ValueError, match=r"prediction='epsilon' cannot give x0_hat at alpha_bar_t=1e-(20|30)"):
            probe.sample(probe.wiener_denoiser(S, prediction="epsilon"), [a0, 0.3, 0.9], n_samples=4, seed=0,
                         sampler=sampler, progress=False)


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m", "euler_ancestral"])
def test_zero_snr_sigma_samplers_are_refused_up_front(sampler):
    den = probe.wiener_denoiser(S8, prediction="v")
    with pytest.raises(ValueError, match=r"^alpha_bar: .*infinite at alpha_bar = 0.*\(ddim, ddpm\)") as exc:
        probe.sample(den, AB0, n_samples=4, sampler=sampler, seed=0, progress=False)
    assert "non-finite" not in str(exc.value) and "math domain" not in str(exc.value)


# ------------------------------------------------------------------------------------------
# argument checks of probe.sample
# ------------------------------------------------------------------------------------------
def test_sample_seed_eta_variance_checks():
    den = probe.wiener_denoiser(S8, prediction="v")
    kw = dict(n_samples=4, progress=False)
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer \(got -1\)"):
        probe.sample(den, AB0[1:], seed=-1, **kw)
    for bad in (True, np.bool_(False)):
        with pytest.raises(TypeError, match="seed"):
            probe.sample(den, AB0[1:], seed=bad, **kw)
    np.testing.assert_array_equal(probe.sample(den, AB0[1:], seed=np.int64(3), **kw),
                                  probe.sample(den, AB0[1:], seed=np.random.default_rng(3), **kw))
    # a setting the sampler does not take, away from its neutral value: refused as output_spectrum refuses it
    with pytest.raises(ValueError, match="no setting 'eta'"):
        symsched.output_spectrum(S8, AB0[1:], sampler="ddpm", eta=0.5)
    with pytest.raises(ValueError, match=r"^eta: sampler 'ddpm' takes no eta"):
        probe.sample(den, AB0[1:], sampler="ddpm", eta=0.5, seed=0, **kw)
    for eta in (0.5, 1.0, 2.0):  # (review of 4 December: 2.0 read "eta must lie in [0, 1]", as if 0.5 would do)
        with pytest.raises(ValueError, match=r"^eta: sampler 'euler_ancestral' takes no eta.*options"):
            probe.sample(den, AB0[1:], sampler="euler_ancestral", eta=eta, seed=0, **kw)
    with pytest.raises(ValueError, match=r"^eta must lie in \[0, 1\] \(got 2.0\)"):
        probe.sample(den, AB0[1:], sampler="ddim", eta=2.0, seed=0, **kw)
    with pytest.raises(ValueError, match=r"^variance: sampler 'ddim' takes no variance"):
        probe.sample(den, AB0[1:], sampler="ddim", variance="beta", seed=0, **kw)
    # the neutral values pass (one set of settings for every sampler, as output_spectrum)
    probe.sample(den, AB0[1:], sampler="ddpm", eta=0.0, seed=0, **kw)
    probe.sample(den, AB0[1:], sampler="euler", eta=0.0, variance="posterior", seed=0, **kw)


# ------------------------------------------------------------------------------------------
# measured_spectrum and compare on odd inputs
# ------------------------------------------------------------------------------------------
def test_measured_spectrum_is_exactly_homogeneous_without_overflow():
    """The spectrum is quadratic: spectrum(2^k x) = 2^(2k) spectrum(x) exactly (power-of-two scaling is exact)."""
    x = np.random.default_rng(5).standard_normal((6, 3, 4, 4))
    U = np.linalg.qr(np.random.default_rng(6).standard_normal((48, 48)))[0]
    for k in (400, -400):
        with np.errstate(all="raise"):
            for kw in ({}, {"channel_axis": 0}, {"basis": U}):
                got = probe.measured_spectrum(np.ldexp(x, k), **kw)
                np.testing.assert_array_equal(got, np.ldexp(probe.measured_spectrum(x, **kw), 2 * k))
    with np.errstate(all="raise"):
        with pytest.raises(ValueError, match=r"^samples: values too large .*float64"):
            probe.measured_spectrum(np.full((2, 4, 4), 1e200))


def test_compare_errors_name_the_users_arguments():
    r = np.random.default_rng(0).standard_normal((50, 4, 4))
    big = np.full((50, 4, 4), 1e200)
    with pytest.raises(ValueError, match=r"^samples: values too large"):
        probe.compare([big], r)
    with pytest.raises(ValueError, match=r"^reference: values too large"):
        probe.compare([r], big)
    with pytest.raises(ValueError, match=r"^reference must not consist of identical points"):
        probe.compare([r], np.zeros((50, 4, 4)))
    one = probe.compare([r[:25]], r[25:], metrics=["mmd2"])
    assert math.isfinite(one.mean("mmd2"))
    with pytest.raises(TypeError, match=r"^metrics must be a sequence of names"):
        probe.compare([r], r, metrics=3)
    with pytest.raises(TypeError, match=r"^metrics must be a sequence of names"):  # audit 3b D2: as names=, families=
        probe.compare([r], r, metrics="mmd2")
    with pytest.raises(ValueError, match=r"^metrics entries must be one of .*\(got 'mmd'\)"):
        probe.compare([r], r, metrics=["mmd"])


def test_grid_timestep_on_a_zero_terminal_snr_grid() -> None:
    """A grid whose last level is 0 (rescale_zero_snr) was refused; alpha_bar = 0 is its last timestep, a grid
    level is its own timestep, and a finite level below the last finite one is nearer to it than to l = -inf."""
    from symsched import schedules as sc

    z = sc.training_grid("scaled_linear", rescale_zero_snr=True)
    T = z.size
    assert z[-1] == 0.0
    for mode in ("nearest", "interpolate"):
        assert probe.grid_timestep(0.0, z, mode=mode) == T - 1
        assert probe.grid_timestep(z[500], z, mode=mode) == pytest.approx(500, abs=1e-9)
        assert probe.grid_timestep(z[-2] / 2, z, mode=mode) == T - 2
    # between two finite levels the interpolation is linear in log-SNR, as without the zero level
    mid = 1 / (1 + np.exp(-0.5 * (np.log(z[10] / (1 - z[10])) + np.log(z[11] / (1 - z[11])))))
    assert probe.grid_timestep(mid, z, mode="interpolate") == pytest.approx(10.5, abs=1e-9)


def test_a_torch_denoiser_on_a_zero_snr_grid_gets_its_last_timestep_at_pure_noise() -> None:
    torch = pytest.importorskip("torch")
    from symsched import schedules as sc

    z = sc.training_grid("linear", rescale_zero_snr=True)
    seen = []

    class Net(torch.nn.Module):
        def forward(self, x, t):
            seen.append(int(t[0]))
            return torch.zeros_like(x)

    den = probe.torch_denoiser(Net(), z, prediction="epsilon")
    den.fn(np.zeros((2, 4)), 0.0)
    den.fn(np.zeros((2, 4)), float(z[300]))
    assert seen == [z.size - 1, 300]


AB_TINY = np.array([1e-200, 1e-60])  # levels far below the eps form's reach (x0_hat lost below ~1e-32)


@pytest.mark.parametrize("prediction", ["sample", "v"])
def test_ddpm_from_tiny_levels_keeps_a_sample_or_v_models_x0(prediction):
    """break-test G: DDPM always took the eps form (x_t - beta/sqrt(1-a_t) eps_hat) sqrt(a_s/a_t), which cancels
    x_t against eps_hat (beta ~ 1) and lost a sample or v model's x0_hat below a_t ~ 1e-32: the samples were 0
    where output_spectrum predicts P ~ 1e-60 S^2. Monte Carlo: exact chi^2 law of the periodogram at family-wise
    1e-6, without the absolute rounding floor (atol = 0: the last step multiplies x0_hat alone, its x_t coefficient
    (1 - a_s) is 0, so no O(1) rounding reaches P); power: the spectrum of the levels one decade off
    ([1e-200, 1e-59]: P ten times larger) is rejected."""
    den = probe.wiener_denoiser(S8, prediction=prediction)
    x = probe.sample(den, AB_TINY, n_samples=N, sampler="ddpm", seed=410 + (prediction == "v"), progress=False)
    psd = mc.empirical_psd(x)
    right = mc.psd_check(psd, symsched.output_spectrum(S8, AB_TINY, sampler="ddpm"), N, atol=0.0)
    assert right.passed, (right.max_abs_z, right.z_crit, float(psd.max()))
    wrong = mc.psd_check(psd, symsched.output_spectrum(S8, [1e-200, 1e-59], sampler="ddpm"), N, atol=0.0)
    assert wrong.max_abs_z >= 2 * wrong.z_crit, (wrong.max_abs_z, wrong.z_crit)


@pytest.mark.parametrize("a_t", [0.0, 1e-300, 1e-40, 1e-33, 1e-20, 0.3])
def test_one_ddpm_step_to_the_clean_level_returns_a_sample_models_x0(a_t):
    """The last DDPM step (to a_s = 1, no noise) is the posterior mean beta/(1-a_t) x0_hat = x0_hat: a model that
    predicts the sample 0.5 everywhere gives 0.5 (it gave 0 at a_t = 1e-40 and noise at 1e-33)."""
    den = probe.Denoiser(lambda x, a: np.full_like(x, 0.5), "sample", (4,), None, "constant")
    x = probe.sample(den, [a_t], n_samples=64, sampler="ddpm", seed=0, progress=False)
    np.testing.assert_allclose(x, 0.5, rtol=1e-15)


def test_a_spectrum_below_float64_is_refused_like_one_above():
    """break-test G: samples near 1e-170 gave an all-zero measured spectrum (and compare a spectral KL of 0 or
    inf) where values near 1e200 are refused; just above the normal range the homogeneity is exact."""
    x = np.random.default_rng(7).standard_normal((40, 4, 4))
    np.testing.assert_array_equal(probe.measured_spectrum(np.ldexp(x, -480)),
                                  np.ldexp(probe.measured_spectrum(x), -960))  # ~1e-289: still normal
    with pytest.raises(ValueError, match=r"^samples: values too small for their spectrum to be represented"):
        probe.measured_spectrum(x * 1e-170)
    with pytest.raises(ValueError, match=r"^reference: values too small"):
        probe.compare(x, x * 1e-165, metrics=["spectral_kl"])
    with pytest.raises(ValueError, match=r"^samples: values too small"):
        probe.compare(x * 1e-155, x, metrics=["spectral_kl"])


def test_compare_refuses_a_metric_beyond_float64_but_keeps_a_true_infinite_kl():
    """A spectral W2 or KL that overflows float64 is a ValueError (it came back as inf); a mode that is 0 in the
    samples only makes KL(reference || samples) = +inf exactly, which is returned."""
    rng = np.random.default_rng(8)
    ref = rng.standard_normal((40, 4, 4))
    with pytest.raises(ValueError, match=r"^samples, reference: their spectral_kl exceeds the float64 range"):
        probe.compare(ref * 2.0**-511, ref, metrics=["spectral_kl"])  # p/q ~ 2^1022 in each of 16 modes
    assert probe.compare(ref * 2.0**-508, ref, metrics=["spectral_kl"]).values["spectral_kl"][0] < 1e308
    assert probe.compare(np.zeros_like(ref), ref, metrics=["spectral_kl"]).values["spectral_kl"][0] == math.inf


@pytest.mark.diffusers
def test_diffusers_denoiser_reads_an_euler_zero_snr_grid_as_alpha_bar_zero() -> None:
    """audit of 4 December: EulerDiscreteScheduler(rescale_betas_zero_snr=True) stores diffusers' stand-in 2**-24
    at its last timestep (above alphas_cumprod[-2] = 4e-9), which was refused as a grid that is not decreasing,
    under an argument ``grid`` diffusers_denoiser does not have. Its model was trained at alpha_bar = 0 there: the
    denoiser must be DDPMScheduler's (same betas, alphas_cumprod[-1] = 0 exactly) at every level."""
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    unet = tiny_unet()
    euler = diffusers.EulerDiscreteScheduler(rescale_betas_zero_snr=True, prediction_type="v_prediction")
    ddpm = diffusers.DDPMScheduler(rescale_betas_zero_snr=True, prediction_type="v_prediction")
    assert float(euler.alphas_cumprod[-1]) == 2.0**-24 and float(ddpm.alphas_cumprod[-1]) == 0.0  # the premise
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8))
    d_euler, d_ddpm = probe.diffusers_denoiser(unet, euler), probe.diffusers_denoiser(unet, ddpm)
    for ab in (0.0, 1e-6, 0.3, 0.99):
        np.testing.assert_array_equal(d_euler(x, ab), d_ddpm(x, ab))

    class Reversed:  # a scheduler whose grid is not one: named as the scheduler's
        alphas_cumprod = np.array([0.9, 0.95, 0.1])
        config = {"prediction_type": "epsilon"}

    with pytest.raises(ValueError, match=r"^scheduler\.alphas_cumprod \(the training grid\) must be strictly"):
        probe.diffusers_denoiser(unet, Reversed())
