"""Break-test of 8 December: the Monte Carlo witness and its statistics at the extremes.

Heun's second slope (x_e - D)/sigma divided the FFT's rounding (1e-16 of the field) by a tiny sigma, so
``sample_ve(..., sampler="heun")`` with a last positive sigma below ~1e-15 returned garbage that ``psd_check``
rejected against a right closed form; sums and products overflowed on values the results can hold; a few errors
named nothing, or came late."""

from __future__ import annotations

import re

import numpy as np
import pytest
from mc_helpers import assert_psd_matches, assert_psd_rejects

import symsched
import symsched.montecarlo as mc
from symsched import export

# family-wise false-alarm probability of each Monte Carlo check here (Šidák over the bins, see psd_check)
ALPHA = 1e-4


@pytest.mark.parametrize("sigma_min", [1e-20, 1e-100, 1e-300])
def test_heun_monte_carlo_matches_closed_form_at_tiny_last_sigma(sigma_min):
    """A spectrum with a zero mode (S[0] = 0, whose share of every FFT's rounding the slope's 1/sigma gain
    multiplied) and a last positive sigma far below 1e-15: before, the sample PSD was ~1e28 at 1e-30 and the
    sampler refused 1e-200 as an overflow. Tolerance: psd_check at family-wise ALPHA; companion: Euler's spectrum
    on the same sigmas (a different sampler) is rejected by twice the critical z."""
    S, sig, n = np.array([0.0, 1.0, 2.0, 3.0, 2.0, 1.0]), [10.0, 1.0, sigma_min], 4000
    psd = mc.empirical_psd(mc.sample_ve(S, sig, sampler="heun", n_samples=n, seed=3, progress=False))
    assert_psd_matches(psd, symsched.output_spectrum_ve(S, sig, sampler="heun"), n, alpha=ALPHA, what="heun")
    assert_psd_rejects(psd, symsched.output_spectrum_ve(S, sig, sampler="euler"), n, alpha=ALPHA, what="euler")


def test_heun_monte_carlo_in_a_basis_and_across_channels_at_tiny_last_sigma():
    """The same kind on the eigen-basis path (a random orthonormal basis) and the multichannel path (colour
    eigen-modes per frequency), which mixed the modes through matrix products instead of FFTs."""
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    S, sig, n = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.0]), [10.0, 1.0, 1e-40], 4000
    psd = mc.empirical_psd(mc.sample_ve(S, sig, sampler="heun", n_samples=n, seed=5, basis=U), basis=U)
    assert_psd_matches(psd, symsched.output_spectrum_ve(S, sig, sampler="heun"), n, axes=(), alpha=ALPHA)
    assert_psd_rejects(psd, symsched.output_spectrum_ve(S, sig, sampler="euler"), n, axes=(), alpha=ALPHA)

    cross = np.tile(np.array([[1.0, 0.5], [0.5, 1.0]]), (8, 1, 1))
    x = mc.sample_multichannel_ve(cross, sig, sampler="heun", n_samples=n, seed=6)
    lam, V = mc.cross_spectrum_modes(cross)
    modes = mc.mode_psd(mc.empirical_cross_spectrum(x), V)
    assert_psd_matches(modes, symsched.output_spectrum_ve(lam, sig, sampler="heun"), n, axes=(0,), alpha=ALPHA)
    assert_psd_rejects(modes, symsched.output_spectrum_ve(lam, sig, sampler="euler"), n, axes=(0,), alpha=ALPHA)


def test_cross_spectrum_near_float64_max_is_used_not_nan():
    """0.5 (A + A^H) and LAPACK's sums overflowed at entries above ~9e307: NaN eigenvalues and NaN fields."""
    cross = np.tile(np.eye(2), (4, 1, 1)) * 1e308
    lam, V = mc.cross_spectrum_modes(cross)
    assert np.array_equal(lam, np.full((4, 2), 1e308))
    assert np.allclose(np.abs(V), np.tile(np.eye(2), (4, 1, 1)), rtol=0, atol=1e-15)
    x = mc.gaussian_field_multichannel(cross, 3, seed=0)
    assert np.all(np.isfinite(x)) and np.max(np.abs(x)) > 1e153  # standard deviation 1e154
    with pytest.raises(ValueError, match="^cross_spectrum has an eigenvalue beyond float64"):
        mc.cross_spectrum_modes(np.ones((4, 2, 2)) * 1e308)  # eigenvalue 2e308


def test_mean_periodogram_near_float64_max_is_computed_from_batches():
    """Each batch was unscaled before the sum, so n times a representable mean overflowed (refused, with a
    RuntimeWarning). Constant fields c: the periodogram is exactly c^2 N at DC, 0 elsewhere."""
    c, N, n = 2.0**510, 4, 2000  # c^2 N = 2^1022 ~ 4.5e307; the sum of n of them is beyond float64
    x = np.full((n, N), c)
    want = np.array([c * c * N, 0.0, 0.0, 0.0])
    assert np.array_equal(mc.empirical_psd(x), want)
    assert np.array_equal(mc.empirical_psd(iter([x[i:i + 10] for i in range(0, n, 10)])), want)
    small = np.full((10, N), 1.0)  # batches of very different scales: the result keeps the large one's
    got = mc.empirical_psd(iter([small, x[:10]]))
    assert got[0] == pytest.approx((c * c * N + N) / 2, rel=1e-15) and np.all(got[1:] == 0)


def test_psd_confidence_near_float64_max_and_at_zero():
    """nu psd_hat overflowed (an interval [inf, inf] around 1e300); psd_hat = 0 with chi2.ppf rounding to 0 gave
    0 * inf = NaN. Reference: the chi-square pivot computed here with scipy."""
    from scipy import stats

    lo, hi = mc.psd_confidence(np.full(4, 1e300), 10**9)
    nu = 2e9  # bin 1 of 4 is not self-conjugate: 2 degrees of freedom per sample
    assert lo[1] == pytest.approx(1e300 * (nu / stats.chi2.isf(0.025, nu)), rel=1e-12)
    assert hi[1] == pytest.approx(1e300 * (nu / stats.chi2.ppf(0.025, nu)), rel=1e-12)
    lo, hi = mc.psd_confidence(np.zeros(4), 1, alpha=1e-300)
    assert np.array_equal(lo, np.zeros(4)) and np.array_equal(hi, np.zeros(4))


@pytest.mark.parametrize("call,message", [
    (lambda: mc.empirical_cross_spectrum(np.zeros((0, 3, 4))), "^samples must hold at least one sample$"),
    (lambda: mc.empirical_psd(np.zeros((3, 0))), "^samples must have a non-empty field"),
    (lambda: mc.empirical_cross_spectrum(np.zeros((2, 3, 0))), "^samples must have at least one channel"),
    (lambda: mc.mode_psd(np.full((4, 3, 3), 1e200), np.full((4, 3, 3), 1e200)), "^V must be unitary"),
    (lambda: mc.empirical_psd(np.ones((5, 8)), basis=np.eye(8), axes=(5,)), "^axes must not be given with basis"),
    (lambda: mc.wiener_denoiser(np.ones((1, 4)), np.ones((2, 2)), 0.5, basis=np.eye(4)), "^spectrum must be 1-D"),
    (lambda: mc.gaussian_field(np.ones((1,) * 33), 2), "^spectrum must have at most MAX_NDIM = 32 axes"),
])
def test_errors_name_the_argument_and_rule(call, message):
    """Before: a RuntimeWarning then "values too large"; SciPy's "invalid number of data points"; an all-inf
    result; axes silently ignored; a 2-D spectrum taken with a basis; a field no check could take."""
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("entry", ["iter_sample", "iter_sample_ve"])
def test_iter_sample_checks_progress_on_the_call(entry):
    """The docstring promises errors on the call; a bad progress came only at the first next()."""
    with pytest.raises(TypeError, match="^progress must be True or False"):
        getattr(mc, entry)(np.ones(4), [0.5], n_samples=3, progress="yes")


# ---------------------------------------------------------------------------------------------
# export: a schedule diffusers cannot run is refused, as from_diffusers refuses the configured scheduler
# ---------------------------------------------------------------------------------------------
def _zero_snr_schedulers():
    diffusers = pytest.importorskip("diffusers")
    g = symsched.schedules.training_grid("scaled_linear", rescale_zero_snr=True)
    betas = symsched.schedules.alpha_bar_to_betas(g).tolist()  # last beta = 1: alphas_cumprod[-1] = 0, no stand-in
    return g[[999, 700, 300, 50]], [
        (diffusers.HeunDiscreteScheduler(trained_betas=betas, prediction_type="v_prediction"), "no zero-SNR setting"),
        (diffusers.DPMSolverMultistepScheduler(trained_betas=betas, prediction_type="v_prediction"),
         "rescale_betas_zero_snr=True"),
        (diffusers.DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                 rescale_betas_zero_snr=True, clip_sample=False), "prediction_type='v_prediction'"),
    ]


@pytest.mark.diffusers
def test_to_diffusers_refuses_a_zero_level_the_scheduler_runs_as_nan():
    """Each export returned timesteps without a warning and diffusers' own loop on them returned NaN (sigma = inf
    without the 2**-24 stand-in; an epsilon DDPM's x0 divided by sqrt(0)); from_diffusers refused all three."""
    import torch

    ab, cases = _zero_snr_schedulers()
    for sch, remedy in cases:
        name = type(sch).__name__
        with pytest.raises(ValueError, match=f"^alpha_bar: this {name} cannot run the timesteps exported for it: "
                                             f"{name}.step returns (nan|inf) on step 0 .*{re.escape(remedy)}"):
            export.to_diffusers(ab, scheduler=sch)
        sch.set_timesteps(timesteps=[999, 700, 300, 50])  # the witness: diffusers' loop on those timesteps
        x = torch.ones(1, 4) * float(getattr(sch, "init_noise_sigma", 1.0))
        for t in sch.timesteps:
            x = sch.step(torch.zeros_like(x), t, x).prev_sample
        assert not torch.isfinite(x).all(), name
    assert export.to_diffusers(ab[1:], scheduler=cases[0][0]) == {"timesteps": [700, 300, 50]}  # runnable: kept


@pytest.mark.diffusers
def test_scheduler_class_instead_of_instance_is_named():
    diffusers = pytest.importorskip("diffusers")
    with pytest.raises(TypeError, match="^scheduler must be a configured instance .*not the class DDPMScheduler"):
        export.from_diffusers(diffusers.DDPMScheduler)
    with pytest.raises(TypeError, match="not the class EulerDiscreteScheduler itself$"):
        export.to_diffusers([0.1, 0.5], scheduler=diffusers.EulerDiscreteScheduler)


@pytest.mark.diffusers
@pytest.mark.parametrize("cls,what", [
    ("EulerDiscreteScheduler", "clamps its sigma to the grid's end \\(timestep 0's\\)"),
    ("DDIMScheduler", "torch's alphas_cumprod\\[-1\\] wraps to the noisiest level"),
])
def test_trailing_spacing_one_timestep_too_many_names_its_cause(cls, what):
    """diffusers' trailing spacing makes 62 timesteps ending at -1 for K = 61: the refusal said "index out of range"
    / "two steps share one level" and advised steps_offset=0, which was already 0."""
    diffusers = pytest.importorskip("diffusers")
    kw = {"clip_sample": False} if cls == "DDIMScheduler" else {}
    sch = getattr(diffusers, cls)(timestep_spacing="trailing", **kw)
    sch.set_timesteps(61)
    assert len(sch.timesteps) == 62 and int(sch.timesteps[-1]) == -1  # the quirk itself
    with pytest.raises(ValueError) as info:
        export.from_diffusers(sch)
    msg = str(info.value)
    assert re.search(what, msg) and "one timestep too many" in msg and "timestep_spacing='linspace'" in msg
    assert "steps_offset=0" not in msg.split(": ")[-1]


@pytest.mark.diffusers
def test_float32_note_measures_a_higher_order_run_it_used_to_miss():
    """DPM-Solver order 3, lower_order_final=False, beta sigmas, K = 4: diffusers' float32 run is 19 % off the closed
    form at S = 0.01 (exact with its sigmas in float64), yet sigma_max x 6e-8 = 9e-6 gave no note. Witness: the
    library's own loop with the exact Wiener denoiser as its epsilon model, float32 tensors against float64 ones;
    the note must name a gap of the measured size. A default 10-step run stays unnoted."""
    diffusers = pytest.importorskip("diffusers")
    import torch

    def make():
        s = diffusers.DPMSolverMultistepScheduler(solver_order=3, lower_order_final=False, use_beta_sigmas=True)
        s.set_timesteps(4)
        return s

    S = torch.tensor([0.01, 0.1, 1.0], dtype=torch.float64)

    def run(sch):
        x = torch.ones(3, dtype=torch.float64)
        for i, t in enumerate(sch.timesteps):
            a = 1.0 / (1.0 + float(sch.sigmas[i]) ** 2)
            x = sch.step((1.0 - a) ** 0.5 / (a * S + 1.0 - a) * x, t, x).prev_sample.double()
        return x.numpy()

    wide = make()
    wide.sigmas = wide.sigmas.double()
    H32, H64 = run(make()), run(wide)
    ds = export.from_diffusers(make())
    assert np.allclose(H64, ds.transfer_function(S.numpy()), rtol=1e-6, atol=0)  # the closed form is the exact run
    assert abs(H32[0] ** 2 / H64[0] ** 2 - 1) > 0.1  # the float32 run is far off at S = 0.01
    (note,) = [n for n in ds.notes if "forms its step coefficients in float32" in n]
    gap = float(re.search(r"output by up to ([0-9.e-]+) in units of the data", note).group(1))
    assert 1e-4 < gap and 0.1 < gap / float(np.max(np.abs(H32 - H64))) < 10  # the measured size, not sigma_max's
    plain = diffusers.DPMSolverMultistepScheduler()
    plain.set_timesteps(10)
    assert not [n for n in export.from_diffusers(plain).notes if "float32" in n]
