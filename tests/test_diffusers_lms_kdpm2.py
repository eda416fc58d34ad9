"""Witness: diffusers' LMSDiscreteScheduler and KDPM2DiscreteScheduler, driven by the exact denoiser, have the
transfer function :func:`symsched.export.from_diffusers` predicts: k-diffusion's ``lms`` with ``order=4`` (the
default of ``LMSDiscreteScheduler.step``'s ``order`` argument, which no pipeline passes) and ``dpm_2`` without churn.

Probe: x_T = 1 in every mode, diffusers' own ``set_timesteps`` / ``scale_model_input`` / ``step`` in float64 with
the scheduler's float32 sigmas upcast (KDPM2: its ``sigmas_interpol`` recomputed from them in float64 by diffusers'
own formula), compared with ``from_diffusers(scheduler).transfer_function(S)`` to :data:`TOL`. Both steps keep the
sample's dtype, so that run is float64 throughout; LMS's coefficients come from ``scipy.integrate.quad`` with
``epsrel=1e-4``, but the integrands are polynomials of degree <= 3, which quad's first 21-point Gauss-Kronrod rule
integrates exactly. Measured over :data:`LMS_CASES` and :data:`KDPM2_CASES` (diffusers 0.42.1, torch 2 CPU): at most
3.7e-11 (LMS) and 7.8e-11 (KDPM2, cosine grid) relative where |H| > 1e-6, 2.2e-16 absolute below (|H| down to
2e-12, a one-step run on the cosine grid), hence ``rtol=1e-9, atol=1e-14`` (largest excess 0.03). Every probe has
a power companion: a wrong closed form (LMS read as Euler or with order 2 or 3; KDPM2 read as Heun or Euler) misses
by more than 1000 times the tolerance (measured: at least 2.7e4 times, LMS read as Euler at K = 2).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import symsched  # noqa: E402
from symsched.export import from_diffusers  # noqa: E402

from diffusers_helpers import excess, gain_probe, model_output  # noqa: E402

pytestmark = [
    pytest.mark.diffusers,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    # diffusers' _sigma_to_t (np.log of a torch scalar) under NumPy 2
    pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning"),
]

S = np.logspace(-4, 3, 15)
TOL = dict(rtol=1e-9, atol=1e-14)
#: what a wrong closed form must miss by (in units of TOL) for the probe to have power against it
POWER = 1000.0

LMS = diffusers.LMSDiscreteScheduler
KDPM2 = diffusers.KDPM2DiscreteScheduler

#: (config, K): K = 1, 2, 3, 7, 15; the three beta schedules and spacings, the sigma families, all prediction types
#: diffusers implements, Stable Diffusion's leading spacing with steps_offset=1
COMMON = [
    ({}, 1),
    ({}, 2),
    (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012), 3),
    (dict(beta_schedule="squaredcos_cap_v2", timestep_spacing="trailing"), 7),
    (dict(timestep_spacing="leading", steps_offset=1, beta_schedule="scaled_linear", beta_start=0.00085,
          beta_end=0.012), 15),
    (dict(timestep_spacing="trailing", prediction_type="v_prediction"), 7),
    (dict(beta_schedule="squaredcos_cap_v2", timestep_spacing="leading"), 3),
    (dict(use_karras_sigmas=True, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012), 15),
    (dict(use_karras_sigmas=True, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction"), 7),
    (dict(use_exponential_sigmas=True, timestep_spacing="trailing"), 7),
    (dict(use_beta_sigmas=True, beta_schedule="scaled_linear"), 2),
    (dict(beta_schedule="squaredcos_cap_v2"), 1),
    (dict(beta_schedule="squaredcos_cap_v2", timestep_spacing="trailing"), 1),
]
LMS_CASES = COMMON + [(dict(prediction_type="sample", timestep_spacing="trailing"), 15),
                      (dict(prediction_type="sample", use_karras_sigmas=True), 3)]
KDPM2_CASES = COMMON


def _ids(cases):
    return [f"{'-'.join(f'{k}={v}' for k, v in cfg.items()) or 'default'}-K{K}" for cfg, K in cases]


def _scheduler(cls, cfg, K):
    sch = cls(**cfg)
    sch.set_timesteps(K)
    return sch


def lms_probe(sch) -> np.ndarray:
    """diffusers' LMS loop from x_T = 1, float64 with upcast sigmas (diffusers_helpers.gain_probe: the model at
    sigmas[i], the level of step i)."""
    sch.set_begin_index(0)  # the loop from step 0, as from_diffusers describes it
    return gain_probe(sch, S, dtype=torch.float64, upcast_sigmas=True)


def kdpm2_probe(sch, *, recompute: bool = True) -> np.ndarray:
    """diffusers' KDPM2 loop from x_T = 1 in float64: the model at the level the step uses (``sigmas[step_index]``
    on a first-order call, ``sigmas_interpol[step_index]`` on a second-order one, as ``scale_model_input``);
    ``recompute``: ``sigmas_interpol`` from the upcast sigmas by diffusers' formula, else its float32 values upcast."""
    sig = sch.sigmas.to(torch.float64)
    sch.sigmas = sig
    if recompute:  # KDPM2DiscreteScheduler.set_timesteps' own lines, on its levels [s_0, ..., s_{K-1}, 0]
        base = torch.cat([sig[:1], sig[1::2]])
        mid = base.log().lerp(base.roll(1).log(), 0.5).exp()
        sch.sigmas_interpol = torch.cat([mid[:1], mid[1:].repeat_interleave(2), mid[-1:]])
    else:
        sch.sigmas_interpol = sch.sigmas_interpol.to(torch.float64)
    sch.set_begin_index(0)  # the loop from step 0 (a repeated first timestep would start it at step 2)
    x = torch.ones((1, S.size), dtype=torch.float64)
    pred = sch.config.prediction_type
    for t in sch.timesteps:
        x_in = sch.scale_model_input(x, t)
        i = sch.step_index
        sigma = float(sch.sigmas[i] if sch.state_in_first_order else sch.sigmas_interpol[i])
        x = sch.step(model_output(x_in, S, sigma, pred), t, x).prev_sample
    return x.numpy()[0]


@pytest.mark.parametrize("cfg, K", LMS_CASES, ids=_ids(LMS_CASES))
def test_lms_discrete_scheduler_is_k_diffusion_lms_order_4(cfg, K):
    sch = _scheduler(LMS, cfg, K)
    info = from_diffusers(sch)
    assert info.scheduler == "LMSDiscreteScheduler" and info.sampler == "lms" and dict(info.options) == {"order": 4}
    assert info.sigmas.size == K and len(info.steps) == K and info.final_alpha_bar == 1.0
    assert any("order=4" in note for note in info.notes)
    assert excess(lms_probe(sch), info.transfer_function(S), TOL) <= 1.0


@pytest.mark.parametrize("cfg, K, wrong", [
    ({}, 2, dict(sampler="euler")),
    (dict(use_karras_sigmas=True, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012), 15,
     dict(sampler="euler")),
    ({}, 7, dict(sampler="lms", order=3)),
    (dict(timestep_spacing="trailing", prediction_type="v_prediction"), 7, dict(sampler="lms", order=3)),
    (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012), 15, dict(sampler="lms", order=2)),
])
def test_the_lms_probe_rejects_euler_and_other_orders(cfg, K, wrong):
    """The companion: the same run read as Euler or as LMS of another order misses by far more than TOL."""
    sch = _scheduler(LMS, cfg, K)
    info = from_diffusers(sch)
    H_wrong = symsched.transfer_function_ve(S, info.sigmas, **wrong)
    assert excess(lms_probe(sch), H_wrong, TOL) > POWER


@pytest.mark.parametrize("cfg, K", KDPM2_CASES, ids=_ids(KDPM2_CASES))
def test_kdpm2_discrete_scheduler_is_k_diffusion_dpm_2(cfg, K):
    sch = _scheduler(KDPM2, cfg, K)
    info = from_diffusers(sch)
    assert info.scheduler == "KDPM2DiscreteScheduler" and info.sampler == "dpm_2" and not info.options
    assert info.sigmas.size == K and len(info.steps) == sch.timesteps.numel() == 2 * K - 1
    np.testing.assert_array_equal(info.sigmas, sch.sigmas.double().numpy()[0:2 * K - 1:2])
    assert excess(kdpm2_probe(sch), info.transfer_function(S), TOL) <= 1.0


@pytest.mark.parametrize("cfg, K, wrong", [
    ({}, 2, "heun"),
    (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012), 3, "heun"),
    (dict(use_karras_sigmas=True, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012), 15, "heun"),
    (dict(timestep_spacing="trailing", prediction_type="v_prediction"), 7, "euler"),
])
def test_the_kdpm2_probe_rejects_heun_and_euler(cfg, K, wrong):
    """The companion: KDPM2's run read as Heun (same levels, a trapezoidal corrector instead of the midpoint) or as
    Euler misses by far more than TOL."""
    sch = _scheduler(KDPM2, cfg, K)
    info = from_diffusers(sch)
    H_wrong = symsched.transfer_function_ve(S, info.sigmas, sampler=wrong)
    assert excess(kdpm2_probe(sch), H_wrong, TOL) > POWER


@pytest.mark.parametrize("cls", [LMS, KDPM2])
@pytest.mark.parametrize("spacing", ["leading", "linspace"])
def test_output_spectrum_starts_from_init_noise_sigma(cls, spacing):
    """Both loops are deterministic and linear: the PSD of their output from init_noise_sigma * randn is
    H^2 init_noise_sigma^2, with 'leading' spacing's VP start sqrt(sigma_max^2 + 1) as the other schedulers'."""
    sch = _scheduler(cls, dict(timestep_spacing=spacing, beta_schedule="scaled_linear", beta_start=0.00085,
                               beta_end=0.012), 7)
    info = from_diffusers(sch)
    init, top = float(sch.init_noise_sigma), float(sch.sigmas.max())
    assert init == pytest.approx(top if spacing == "linspace" else np.sqrt(top**2 + 1.0), rel=1e-6)
    H = lms_probe(sch) if cls is LMS else kdpm2_probe(sch)
    np.testing.assert_allclose(info.output_spectrum(S), H * H * init**2, rtol=1e-8, atol=0)
    wrong = H * H * float(sch.sigmas.max()) ** 2  # the companion: the white start sigma_max^2 of linspace
    assert (spacing == "linspace") == bool(np.allclose(info.output_spectrum(S), wrong, rtol=1e-8, atol=0))


def test_kdpm2_with_float32_midpoints_is_the_closed_form_to_their_rounding():
    """diffusers computes sigmas_interpol in float32 (log, lerp, exp): upcast as they are, the run differs from the
    closed form by about their rounding (a few 1e-7 relative), far beyond TOL; recomputed in float64 it agrees (the
    tests above). What the float32 note says ("sigmas_interpol recomputed from them")."""
    sch = _scheduler(KDPM2, dict(beta_schedule="squaredcos_cap_v2"), 7)
    info = from_diffusers(sch)
    H = info.transfer_function(S)
    off = np.max(np.abs(kdpm2_probe(sch, recompute=False) / H - 1.0))
    assert 1e-9 < off < 1e-4
    assert any("sigmas_interpol recomputed" in note for note in info.notes)


def test_a_repeated_first_timestep_is_noted_and_the_loop_from_step_0_is_the_closed_form():
    """KDPM2 with Karras sigmas rounds its level timesteps: on the cosine grid t_0 = t_1 = 999, and diffusers'
    index_for_timestep starts a loop without set_begin_index(0) at the second 999, skipping two calls (its float64
    run then steps past the last sigma: NaN). from_diffusers notes it and describes the loop from step 0 (the probe
    above matches it with set_begin_index(0)); the companion: the loop without it is not that run."""
    cfg = dict(use_karras_sigmas=True, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    sch = _scheduler(KDPM2, cfg, 7)
    info = from_diffusers(sch)
    assert any("set_begin_index(0)" in note for note in info.notes)
    assert excess(kdpm2_probe(sch), info.transfer_function(S), TOL) <= 1.0
    sch = _scheduler(KDPM2, cfg, 7)
    sch.set_begin_index = lambda begin_index=0: None  # the pipeline that does not call it
    H = kdpm2_probe(sch)
    assert not np.all(np.isfinite(H)) or excess(H, info.transfer_function(S), TOL) > POWER


def test_kdpm2_sample_prediction_is_refused_as_diffusers_cannot_run_it():
    sch = _scheduler(KDPM2, dict(prediction_type="sample"), 3)
    with pytest.raises(ValueError, match="prediction_type='sample'"):
        from_diffusers(sch)
    with pytest.raises(NotImplementedError):  # the companion: diffusers' own step refuses it
        sch.step(torch.zeros(1), sch.timesteps[0], torch.ones(1))
    from_diffusers(_scheduler(KDPM2, dict(prediction_type="v_prediction"), 3))  # and v_prediction is read


def test_kdpm2_with_tampered_midpoints_is_refused():
    """A KDPM2DiscreteScheduler whose sigmas_interpol are not the geometric midpoints of its levels is not dpm_2:
    refused, naming the layout; the untouched scheduler is read (the companion)."""
    sch = _scheduler(KDPM2, {}, 4)
    from_diffusers(sch)
    sch.sigmas_interpol = sch.sigmas_interpol * 1.01
    with pytest.raises(ValueError, match="geometric midpoints"):
        from_diffusers(sch)


def test_a_timestep_off_the_training_grid_is_refused_for_both():
    """'leading' spacing with steps_offset=1 at 1000 steps puts the first timestep at 1000 > 999, where diffusers'
    np.interp clamps the sigma (a zero first step): refused as for the other sigma schedulers; 999 steps run."""
    for cls in (LMS, KDPM2):
        cfg = dict(timestep_spacing="leading", steps_offset=1)
        with pytest.raises(ValueError, match="outside the training grid"):
            from_diffusers(_scheduler(cls, cfg, 1000))
        assert from_diffusers(_scheduler(cls, cfg, 10)).sigmas.size == 10


def test_from_diffusers_reports_model_levels_and_float32_notes():
    """KDPM2 with Karras sigmas rounds its level timesteps to integers (not the midpoints'): the model's timesteps
    sit off the sigmas, noted as for Euler; the cosine grid's sigma_max 2e4 gets the float32 note, the linear
    grid's 157 does not (the companion)."""
    info = from_diffusers(_scheduler(KDPM2, dict(use_karras_sigmas=True), 6))
    assert any("training levels differ from sigmas" in note for note in info.notes)
    info = from_diffusers(_scheduler(KDPM2, {}, 6))
    assert not any("training levels differ" in note or "float32" in note for note in info.notes)
    for cls in (LMS, KDPM2):
        info = from_diffusers(_scheduler(cls, dict(beta_schedule="squaredcos_cap_v2"), 6))
        assert any("float32 sigmas" in note for note in info.notes)
