"""symsched.export: conversions to and from diffusers / k-diffusion (no sampling here)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import symsched
from symsched.schedules import alpha_bar_to_sigmas
from symsched.export import from_diffusers, from_k_diffusion_sigmas, to_diffusers, to_k_diffusion_sigmas

from kdiffusion_helpers import comfyui_reads
from mc_helpers import linear_ddpm_alphas_cumprod

# numpy 2 warns about diffusers' own np.array(tensor) calls; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_k_diffusion_sigmas_round_trip():
    ab = np.array([0.01, 0.2, 0.5, 0.9])
    sig = to_k_diffusion_sigmas(ab)
    assert sig.shape == (5,) and sig[-1] == 0.0
    np.testing.assert_allclose(sig[:-1], np.sqrt((1 - ab) / ab), rtol=1e-15)
    np.testing.assert_allclose(sig[:-1], alpha_bar_to_sigmas(ab), rtol=1e-14)
    assert np.all(np.diff(sig) < 0)
    np.testing.assert_allclose(from_k_diffusion_sigmas(sig), ab, rtol=1e-14)
    np.testing.assert_allclose(from_k_diffusion_sigmas(sig[:-1]), ab, rtol=1e-14)
    with pytest.raises(ValueError, match="alpha_bar"):
        to_k_diffusion_sigmas(ab[::-1])
    with pytest.raises(ValueError, match="sigmas"):
        from_k_diffusion_sigmas([1.0, 2.0, 0.0])
    # one trailing 0 is k-diffusion's end; a second is a level 0 (break-test F6: both were dropped)
    with pytest.raises(ValueError, match="sigmas must be positive"):
        from_k_diffusion_sigmas([1.0, 0.0, 0.0])


def test_to_diffusers_sigmas_and_grid_timesteps():
    ab = np.array([0.05, 0.5, 0.95])
    d = to_diffusers(ab)
    assert list(d) == ["sigmas"] and d["sigmas"][-1] == 0.0 and len(d["sigmas"]) == 4
    grid = linear_ddpm_alphas_cumprod()
    t = [900, 400, 10]
    d = to_diffusers(grid[t], grid=grid)
    assert d == {"timesteps": t}
    # float32 grids (as diffusers stores them) match within rtol
    d = to_diffusers(grid[t], grid=grid.astype(np.float32))
    assert d == {"timesteps": t}
    with pytest.raises(ValueError, match="not on the grid"):
        to_diffusers([0.5], grid=grid)
    with pytest.raises(ValueError, match="grid"):
        to_diffusers(ab, grid=np.ones((2, 2)))
    # two levels within float32 rounding of the same timestep: the typed collision error (a ValueError)
    from symsched.schedules import GridCollision

    with pytest.raises(GridCollision, match="two levels to the same grid timestep"):
        to_diffusers([grid[500], grid[500] * (1 + 1e-9), grid[100]], grid=grid)
    assert issubclass(GridCollision, ValueError)


@pytest.mark.diffusers
def test_from_diffusers_validation_and_fields():
    diffusers = pytest.importorskip("diffusers")
    with pytest.raises(ValueError, match="DDIMScheduler"):
        from_diffusers(object())
    sch = diffusers.DDIMScheduler()  # clip_sample=True by default
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="clip_sample"):
        from_diffusers(sch)
    info = from_diffusers(sch, strict=False)
    assert any("clip_sample" in s for s in info.notes)
    sch = diffusers.DDIMScheduler(clip_sample=False)
    with pytest.raises(ValueError, match="set_timesteps"):
        from_diffusers(sch)
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="eta"):
        from_diffusers(sch, eta=2.0)
    info = from_diffusers(sch, eta=0.5)
    assert info.kwargs == {"sampler": "ddim", "eta": 0.5}
    assert info.alpha_bar.shape == (10,) and np.all(np.diff(info.alpha_bar) > 0)
    np.testing.assert_allclose(info.sigmas, np.sqrt((1 - info.alpha_bar) / info.alpha_bar))
    assert info.steps[-1] == (info.alpha_bar[-1], 1.0)
    assert info.consistent and info.final_alpha_bar == 1.0 and info.init_variance == 1.0

    sch = diffusers.DDPMScheduler(clip_sample=False, variance_type="learned_range")
    with pytest.raises(ValueError, match="variance_type"):
        from_diffusers(sch)
    # without set_timesteps DDPM runs every training step
    sch = diffusers.DDPMScheduler(clip_sample=False, variance_type="fixed_large", num_train_timesteps=50)
    info = from_diffusers(sch)
    assert info.alpha_bar.size == 50 and info.kwargs == {"sampler": "ddpm", "variance": "beta"}
    assert info.final_noise_variance == 0.0  # last timestep is 0: no noise there
    # zero terminal SNR puts a level at alpha_bar = 0
    # (issue 11: zero terminal SNR is first-class -- the level is read as alpha_bar = 0, not refused)
    sch = diffusers.DDIMScheduler(clip_sample=False, rescale_betas_zero_snr=True, timestep_spacing="trailing",
                                  prediction_type="v_prediction")  # epsilon: diffusers returns NaN (test_interop)
    sch.set_timesteps(10)
    info = from_diffusers(sch)
    assert info.alpha_bar[0] == 0.0 and np.isinf(info.sigmas[0])
    assert np.all(np.isfinite(info.output_spectrum(np.array([0.0, 1e-3, 1.0, 1e3]))))


@pytest.mark.diffusers
def test_grid_refusal_suggests_the_scheduler_when_only_its_float32_grid_was_given():
    """Audit of 5 December: on a short zero-SNR grid diffusers' float32 rescale moves alphas_cumprod beyond the float32
    tolerance, so symsched's own levels are refused with grid= alone; the error said "snap the schedule to the grid
    first", which cannot help (they are grid levels); the scheduler's configuration gives the float64 grid."""
    diffusers = pytest.importorskip("diffusers")
    d = diffusers.DDPMScheduler(num_train_timesteps=7, rescale_betas_zero_snr=True, clip_sample=False,
                                prediction_type="v_prediction")
    grid64 = symsched.schedules.training_grid("linear", num_train_timesteps=7, rescale_zero_snr=True)
    ab = symsched.schedules.from_grid(grid64, [6, 3])
    for kw in ({"grid": d.alphas_cumprod}, {"scheduler": "DDPMScheduler", "grid": d.alphas_cumprod}):
        with pytest.raises(ValueError, match=r"alpha_bar\[1\].*pass the scheduler instance as scheduler="):
            to_diffusers(ab, **kw)
    assert to_diffusers(ab, scheduler=d) == {"timesteps": [6, 3]}
    with pytest.raises(ValueError, match=r"alpha_bar\[0\]=0\.3 is not on the grid.*grid first$"):  # no hint with one
        to_diffusers(np.array([0.3, 0.9]), scheduler=d)


@pytest.mark.diffusers
@pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")  # diffusers' DEIS step
@pytest.mark.parametrize("name, config", [
    ("EulerDiscreteScheduler", {}), ("EulerAncestralDiscreteScheduler", {}), ("HeunDiscreteScheduler", {}),
    ("DPMSolverMultistepScheduler", {"solver_order": 3}), ("DEISMultistepScheduler", {}),
    ("UniPCMultistepScheduler", {}), ("FlowMatchEulerDiscreteScheduler", {}),
    ("DDIMScheduler", {"clip_sample": False}),
])
def test_from_diffusers_reads_a_scheduler_a_pipeline_has_already_run(name, config):
    """Audit of 4 December: after a pipeline's loop, from_diffusers' dry run (on a copy) carried on from the last step
    (IndexError for the sigma schedulers, AssertionError for UniPC, NaN for Heun) and refused the scheduler. Its copy
    now starts afresh as set_timesteps would: the same result as before the loop, and the caller's state untouched."""
    diffusers = pytest.importorskip("diffusers")
    import torch

    sched = getattr(diffusers, name)(**config)
    sched.set_timesteps(8)
    S = np.array([0.01, 0.5, 3.0])
    before = from_diffusers(sched).output_spectrum(S)
    x = torch.ones(1, 4)
    for t in sched.timesteps:  # the pipeline's loop (a zero model output)
        if name != "FlowMatchEulerDiscreteScheduler":
            x = sched.scale_model_input(x, t)
        x = sched.step(torch.zeros_like(x), t, x).prev_sample
    state = getattr(sched, "_step_index", None)
    np.testing.assert_array_equal(from_diffusers(sched).output_spectrum(S), before)
    assert getattr(sched, "_step_index", None) == state


#: (timestep_spacing, K, steps_offset, a DDIM schedule?): steps_offset=1 at T // K = 1 ends 1 -> 0 (audit of 6 December:
#: Stable Diffusion's configuration at 501 to 999 steps was refused as "not a DDIM schedule")
_CHAINING = [("leading", 7, 0, True), ("trailing", 10, 0, True), ("trailing", 3, 0, False), ("linspace", 10, 0, False),
             ("linspace", 1, 0, True), ("leading", 999, 1, True), ("leading", 501, 1, True), ("leading", 600, 3, True)]


@pytest.mark.diffusers
def test_from_diffusers_ddim_chaining_rules():
    diffusers = pytest.importorskip("diffusers")
    for spacing, K, offset, ok in _CHAINING:
        sch = diffusers.DDIMScheduler(clip_sample=False, timestep_spacing=spacing, steps_offset=offset)
        sch.set_timesteps(K)
        info = from_diffusers(sch, strict=False)
        assert info.consistent == ok, (spacing, K, info.notes)
        if not ok:
            with pytest.raises(ValueError, match="not a DDIM schedule"):
                from_diffusers(sch)


@pytest.mark.diffusers
def test_to_diffusers_drives_diffusers_schedulers():
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.DDPMScheduler(clip_sample=False)
    ab = sch.alphas_cumprod.double().numpy()[[999, 500, 100, 0]]
    sch.set_timesteps(**to_diffusers(ab, grid=sch.alphas_cumprod))
    np.testing.assert_array_equal(from_diffusers(sch).alpha_bar, ab)
    eul = diffusers.EulerDiscreteScheduler()
    ab = np.array([0.01, 0.3, 0.8])
    eul.set_timesteps(**to_diffusers(ab))
    info = from_diffusers(eul)
    np.testing.assert_allclose(info.alpha_bar, ab, rtol=1e-6)
    np.testing.assert_allclose(eul.sigmas.numpy(), to_k_diffusion_sigmas(ab), rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# from_diffusers without diffusers: stand-in schedulers (tests/diffusers_standin.py, checked against
# the real classes in test_diffusers_witness.py). The expected PSDs below iterate, on the variance,
# the update that diffusers' own ``step`` performs (typed in from scheduling_ddim/ddpm/euler_discrete
# .py) with the exact eps-denoiser as the model -- they share no code with symsched.export.
# ------------------------------------------------------------------------------------------------
STANDIN_S = np.array([0.003, 0.05, 0.4, 1.0, 2.5, 30.0])


def _x0_step(S, level):
    """Variance gain of the exact x0 estimate at ``level`` (what denoise_final applies)."""
    return (np.sqrt(level) * S / (level * S + 1 - level)) ** 2


def diffusers_ddim_psd(sch, S, eta):
    """DDIMScheduler.step in a loop: prev = t - T // K, alpha_prev = alphas_cumprod[prev] or final_alpha_cumprod."""
    ac = np.asarray(sch.alphas_cumprod, dtype=np.float64)
    T, K = sch.config.num_train_timesteps, sch.num_inference_steps
    v = np.full_like(S, float(sch.init_noise_sigma) ** 2)
    for t in np.asarray(sch.timesteps, dtype=np.int64):
        prev = t - T // K
        a_t = ac[t]
        a_p = ac[prev] if prev >= 0 else float(sch.final_alpha_cumprod)
        c_eps = np.sqrt(1 - a_t) / (a_t * S + 1 - a_t)  # the exact model's eps_hat / x_t
        c_x0 = (1 - np.sqrt(1 - a_t) * c_eps) / np.sqrt(a_t)  # pred_original_sample / x_t
        std2 = eta**2 * (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)  # (eta * sqrt(_get_variance))^2
        g = np.sqrt(a_p) * c_x0 + np.sqrt(1 - a_p - std2) * c_eps
        v = g * g * v + std2
    return v, a_p


def diffusers_ddpm_psd(sch, S):
    """DDPMScheduler.step in a loop: posterior-mean coefficients, noise only while t > 0."""
    ac = np.asarray(sch.alphas_cumprod, dtype=np.float64)
    ts = np.asarray(sch.timesteps, dtype=np.int64)
    v = np.ones_like(S)
    for i, t in enumerate(ts):
        prev = ts[i + 1] if i + 1 < len(ts) else -1
        a_t, a_p = ac[t], (ac[prev] if prev >= 0 else 1.0)
        beta = 1 - a_t / a_p
        c_x0 = np.sqrt(a_t) * S / (a_t * S + 1 - a_t)
        g = np.sqrt(a_p) * beta / (1 - a_t) * c_x0 + np.sqrt(1 - beta) * (1 - a_p) / (1 - a_t)
        noise = 0.0
        if t > 0:
            small = max((1 - a_p) / (1 - a_t) * beta, 1e-20)
            noise = beta if sch.config.variance_type == "fixed_large" else small
        v = g * g * v + noise
    return v


def diffusers_euler_psd(sch, S):
    """The pipeline's loop, one EulerDiscreteScheduler.step per timestep (no churn): step i moves sigmas[i] ->
    sigmas[i + 1] by x += (sigma_next - sigma) (x - D(x)) / sigma. Returns the PSD and the sigma it stops at."""
    sig = np.asarray(sch.sigmas, dtype=np.float64)
    v = np.full_like(S, float(sch.init_noise_sigma) ** 2)
    for i in range(len(sch.timesteps)):
        s, s_next = sig[i], sig[i + 1]
        g = 1 + (s_next - s) * (1 - S / (S + s * s)) / s
        v = g * g * v
    return v, sig[len(sch.timesteps)]


# trained betas whose first value is exact in float32: alphas_cumprod[0] = 1 - 1/16 = 0.9375 exactly
BETAS_20 = np.concatenate([[0.0625], np.linspace(0.07, 0.3, 19)])


@pytest.mark.parametrize("spacing,K", [("trailing", 5), ("leading", 5), ("leading", 20), ("trailing", 4)])
@pytest.mark.parametrize("eta", [0.0, 0.6])
def test_standin_ddim_set_alpha_to_one_false_ends_at_alphas_cumprod_0(spacing, K, eta):
    """The last DDIM step goes to final_alpha_cumprod = alphas_cumprod[0] = 1 - beta_0 = 0.9375, not to 1."""
    from diffusers_standin import DDIMScheduler

    final = 1.0 - 0.0625  # alphas_cumprod[0] from its definition (1 - beta_0), exact in float32 and float64
    sch = DDIMScheduler(num_train_timesteps=20, trained_betas=BETAS_20, set_alpha_to_one=False,
                        clip_sample=False, timestep_spacing=spacing)
    sch.set_timesteps(K)
    info = from_diffusers(sch, eta=eta)
    t_last = int(sch.timesteps[-1])
    ac_last = float(np.prod(1.0 - BETAS_20.astype(np.float32).astype(np.float64)[: t_last + 1]))
    assert info.final_alpha_bar == final
    assert info.alpha_bar[-1] == final
    assert info.steps[-1][1] == final and info.steps[-1][0] == pytest.approx(ac_last, rel=1e-6)
    # leading spacing ends its last model call at t = 0 itself (a step from 0.9375 to 0.9375)
    assert info.alpha_bar.size == (K if t_last == 0 else K + 1)
    assert any("set_alpha_to_one=False" in n for n in info.notes)
    # the PSD: diffusers' loop, then the exact x0 step at 0.9375 (what denoise_final applies)
    v, reached = diffusers_ddim_psd(sch, STANDIN_S, eta)
    assert reached == final
    expected = v * _x0_step(STANDIN_S, final)
    np.testing.assert_allclose(info.output_spectrum(STANDIN_S), expected, rtol=1e-11)
    # power: stopping at 0.9375 is visibly different from stepping the last level straight to 1
    ab_model = np.asarray(sch.alphas_cumprod, dtype=np.float64)[np.asarray(sch.timesteps)]
    to_one = symsched.output_spectrum(STANDIN_S, ab_model, sampler="ddim", eta=eta)
    if t_last > 0:
        assert np.max(np.abs(to_one / expected - 1)) > 1e-2
    # denoise_final is the Wiener x0 filter at 0.9375, applied per FFT bin
    x = np.random.default_rng(3).standard_normal((2, STANDIN_S.size))
    S_grid = np.array([2.0, 1.0, 0.5, 0.25, 0.5, 1.0])  # a real field's PSD on 6 bins
    want = np.fft.ifft(np.fft.fft(x, axis=-1) * np.sqrt(final) * S_grid / (final * S_grid + 1 - final), axis=-1).real
    np.testing.assert_allclose(info.denoise_final(x, S_grid), want, atol=1e-12)
    # break-test A F6: variances of a PCA basis (not Hermitian on an FFT grid) take basis=, per coordinate
    S_pca = np.array([3.0, 1.0, 0.1, 0.01, 2.0, 0.5])
    with pytest.raises(ValueError, match=r"pass basis="):
        info.denoise_final(x, S_pca)
    np.testing.assert_allclose(info.denoise_final(x, S_pca, basis=np.eye(6)),
                               x * np.sqrt(final) * S_pca / (final * S_pca + 1 - final), atol=1e-12)


@pytest.mark.parametrize("to_one", [True, False])
@pytest.mark.parametrize("schedule,spacing,offset,K,eta", [
    ("linear", "leading", 0, 10, 0.0),
    ("linear", "leading", 1, 25, 0.5),
    ("scaled_linear", "trailing", 0, 8, 1.0),
    ("squaredcos_cap_v2", "trailing", 0, 5, 0.3),
    ("scaled_linear", "leading", 1, 600, 0.0),  # T // K = 1: the last step is 1 -> 0, to alphas_cumprod[0]
    ("linear", "leading", 3, 600, 0.5),  # ... 3 -> 2, to alphas_cumprod[2]
])
def test_standin_ddim_levels_and_psd(schedule, spacing, offset, K, eta, to_one):
    from diffusers_standin import DDIMScheduler

    sch = DDIMScheduler(beta_schedule=schedule, timestep_spacing=spacing, steps_offset=offset,
                        set_alpha_to_one=to_one, clip_sample=False)
    sch.set_timesteps(K)
    info = from_diffusers(sch, eta=eta)
    ac = np.asarray(sch.alphas_cumprod, dtype=np.float64)
    ts = np.asarray(sch.timesteps)
    assert info.sampler == "ddim" and info.consistent and info.kwargs == {"sampler": "ddim", "eta": eta}
    np.testing.assert_array_equal(info.timesteps, ts)
    np.testing.assert_array_equal(info.alpha_bar[:K], ac[ts])
    last = ts[-1] - 1000 // K  # DDIMScheduler.step's last step: alphas_cumprod there, or below 0 final_alpha_cumprod
    assert info.final_alpha_bar == (ac[last] if last >= 0 else 1.0 if to_one else ac[0])
    assert info.steps == tuple((ac[t], ac[t - 1000 // K] if t >= 1000 // K else info.final_alpha_bar) for t in ts)
    v, reached = diffusers_ddim_psd(sch, STANDIN_S, eta)
    expected = v if reached == 1.0 else v * _x0_step(STANDIN_S, reached)
    np.testing.assert_allclose(info.output_spectrum(STANDIN_S), expected, rtol=1e-11)


def test_standin_ddim_chaining_rules():
    """diffusers steps DDIM to t - T // K; only when that is the next model timestep is it a schedule."""
    from diffusers_standin import DDIMScheduler

    for spacing, K, offset, ok in _CHAINING:
        sch = DDIMScheduler(clip_sample=False, timestep_spacing=spacing, steps_offset=offset)
        sch.set_timesteps(K)
        ts = np.asarray(sch.timesteps)
        # the last step goes wherever t - T // K is (alphas_cumprod there, or below 0 final_alpha_cumprod)
        chained = all(t - 1000 // K == nxt for t, nxt in zip(ts[:-1], ts[1:]))
        assert chained == ok, (spacing, K, ts)  # the expectation itself, from the stand-in's timesteps
        info = from_diffusers(sch, strict=False)
        assert info.consistent == ok, (spacing, K, info.notes)
        if not ok:
            with pytest.raises(ValueError, match="not a DDIM schedule"):
                from_diffusers(sch)
            with pytest.raises(ValueError, match="not consistent"):
                info.output_spectrum(STANDIN_S)


@pytest.mark.parametrize("variance_type,spacing,K", [
    ("fixed_small", "leading", 10),
    ("fixed_small", "trailing", 7),
    ("fixed_small_log", "linspace", 12),
    ("fixed_large", "leading", 10),
    ("fixed_large", "trailing", 10),  # last model call at t = 99 > 0: diffusers adds beta noise there
    ("fixed_large", None, 50),  # no set_timesteps: every training step of a 50-step grid
])
def test_standin_ddpm_levels_and_psd(variance_type, spacing, K):
    from diffusers_standin import DDPMScheduler

    T = 1000 if spacing else 50
    sch = DDPMScheduler(num_train_timesteps=T, clip_sample=False, variance_type=variance_type,
                        timestep_spacing=spacing or "leading")
    if spacing:
        sch.set_timesteps(K)
    info = from_diffusers(sch)
    ac = np.asarray(sch.alphas_cumprod, dtype=np.float64)
    ts = np.asarray(sch.timesteps)
    assert info.sampler == "ddpm" and info.consistent
    assert info.variance == ("beta" if variance_type == "fixed_large" else "posterior")
    np.testing.assert_array_equal(info.alpha_bar, ac[ts])
    assert info.final_alpha_bar == 1.0 and info.steps[-1] == (ac[ts[-1]], 1.0)
    beta_last = 1.0 - ac[ts[-1]]
    assert info.final_noise_variance == pytest.approx(
        beta_last if (variance_type == "fixed_large" and ts[-1] > 0) else (1e-20 if ts[-1] > 0 else 0.0), rel=1e-12, abs=0)
    np.testing.assert_allclose(info.output_spectrum(STANDIN_S), diffusers_ddpm_psd(sch, STANDIN_S), rtol=1e-11)


def test_standin_ddpm_custom_timesteps_round_trip():
    from diffusers_standin import DDPMScheduler

    sch = DDPMScheduler(clip_sample=False)
    t = [980, 700, 420, 250, 120, 40, 5]
    ab = np.asarray(sch.alphas_cumprod, dtype=np.float64)[t]
    kw = to_diffusers(ab, grid=sch.alphas_cumprod)
    assert kw == {"timesteps": t}
    sch.set_timesteps(**kw)
    info = from_diffusers(sch)
    np.testing.assert_array_equal(info.alpha_bar, ab)
    np.testing.assert_allclose(info.output_spectrum(STANDIN_S), diffusers_ddpm_psd(sch, STANDIN_S), rtol=1e-11)


@pytest.mark.parametrize("spacing,final_type,K", [
    ("linspace", "zero", 10), ("leading", "zero", 12), ("trailing", "sigma_min", 12), ("leading", "sigma_min", 6),
])
def test_standin_euler_levels_and_psd(spacing, final_type, K):
    from diffusers_standin import EulerDiscreteScheduler

    sch = EulerDiscreteScheduler(timestep_spacing=spacing, final_sigmas_type=final_type)
    sch.set_timesteps(K)
    info = from_diffusers(sch)
    sig = np.asarray(sch.sigmas, dtype=np.float64)
    assert info.sampler == "euler" and info.kwargs == {"sampler": "euler"}
    assert info.init_variance == pytest.approx(float(sch.init_noise_sigma) ** 2, rel=1e-12)
    # 'leading' starts from sqrt(sigma_max^2 + 1) (the VP white start), the others from sigma_max
    assert info.init_variance == pytest.approx(sig[0] ** 2 + (spacing == "leading"), rel=1e-6)
    last = sig[-1]
    assert (last > 0) == (final_type == "sigma_min")
    assert info.final_alpha_bar == pytest.approx(1.0 / (1.0 + last**2), rel=1e-15)
    # the levels visited; a last step sigma_min -> sigma_min ('leading' + 'sigma_min') is the identity
    np.testing.assert_allclose(info.sigmas, sig[:-1] if last in (0.0, sig[-2]) else sig, rtol=1e-15)
    v, _ = diffusers_euler_psd(sch, STANDIN_S)
    expected = v * (STANDIN_S / (STANDIN_S + last**2)) ** 2  # the exact x0 step when sigma_last > 0
    np.testing.assert_allclose(info.output_spectrum(STANDIN_S), expected, rtol=1e-11)


@pytest.mark.parametrize("K", [1, 6, 10])
def test_standin_euler_log_linear_stops_one_sigma_short(K):
    """interpolation_type='log_linear' builds K + 1 sigmas (and the final 0) for K timesteps: the loop stops at
    sigmas[K] = sigma_min, never reaching 0. from_diffusers models that stop (it once read all K + 1 levels down
    to 0: a different sampler, its gain off by 1.85x at S = 1e-3), and says so."""
    from diffusers_standin import EulerDiscreteScheduler

    sch = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                 interpolation_type="log_linear")
    sch.set_timesteps(K)
    assert len(sch.sigmas) == K + 2 and len(sch.timesteps) == K
    info = from_diffusers(sch)
    v, stop = diffusers_euler_psd(sch, STANDIN_S)
    assert stop == pytest.approx(float(sch.sigmas[K])) and stop > 0
    assert info.final_alpha_bar == pytest.approx(1.0 / (1.0 + stop**2), rel=1e-15)
    expected = v * (STANDIN_S / (STANDIN_S + stop**2)) ** 2  # described after the exact x0 step at sigma_min
    np.testing.assert_allclose(info.output_spectrum(STANDIN_S), expected, rtol=1e-11)
    assert any("never reached" in n for n in info.notes)


def test_a_scheduler_with_fewer_sigmas_than_its_loop_needs_is_refused():
    from diffusers_standin import EulerDiscreteScheduler

    sch = EulerDiscreteScheduler()
    sch.set_timesteps(5)
    sch.sigmas = sch.sigmas[:-1]  # 5 timesteps, 5 sigmas: diffusers' loop would index sigmas[5]
    with pytest.raises(ValueError, match="5 timesteps but only 5 sigmas"):
        from_diffusers(sch)


def test_standin_euler_runs_a_symsched_schedule():
    from diffusers_standin import EulerDiscreteScheduler

    ab = np.array([0.002, 0.02, 0.1, 0.3, 0.6, 0.9])
    sch = EulerDiscreteScheduler()
    sch.set_timesteps(**to_diffusers(ab))
    info = from_diffusers(sch)
    np.testing.assert_allclose(info.alpha_bar, ab, rtol=1e-6)  # sigmas pass through float32
    v, last = diffusers_euler_psd(sch, STANDIN_S)
    assert last == 0.0
    np.testing.assert_allclose(info.output_spectrum(STANDIN_S), v, rtol=1e-11)


def test_standin_refusals_name_the_setting():
    from diffusers_standin import DDIMScheduler, DDPMScheduler

    with pytest.raises(ValueError, match="DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler"):
        from_diffusers(object())
    sch = DDIMScheduler()  # clip_sample=True by default, as in diffusers
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="clip_sample"):
        from_diffusers(sch)
    assert any("clip_sample" in s for s in from_diffusers(sch, strict=False).notes)
    sch = DDIMScheduler(clip_sample=False, thresholding=True)
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="thresholding"):
        from_diffusers(sch)
    sch = DDIMScheduler(clip_sample=False)
    with pytest.raises(ValueError, match="set_timesteps"):
        from_diffusers(sch)
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="eta"):
        from_diffusers(sch, eta=1.5)
    with pytest.raises(ValueError, match="variance_type"):
        from_diffusers(DDPMScheduler(clip_sample=False, variance_type="learned_range"))
    # a level at alphas_cumprod = 0 (zero terminal SNR: beta_T = 1)
    zero = dict(num_train_timesteps=20, trained_betas=np.append(BETAS_20[:-1], 1.0), clip_sample=False,
                timestep_spacing="trailing")
    sch = DDIMScheduler(**zero, prediction_type="v_prediction")
    sch.set_timesteps(5)
    assert from_diffusers(sch).alpha_bar[0] == 0.0  # read, not refused (zero terminal SNR is first-class)
    sch = DDIMScheduler(**zero)  # ... but not with epsilon prediction: diffusers' step returns NaN there
    sch.set_timesteps(5)
    with pytest.raises(ValueError, match="prediction_type='epsilon'"):
        from_diffusers(sch)


# ---------------------------------------------------------------------------------------------
# to_diffusers on diffusers' own float32 grids (zero terminal SNR included)
# ---------------------------------------------------------------------------------------------
_BETAS = {"linear": ("linear", {}), "scaled_linear": ("scaled_linear", {"beta_start": 0.00085, "beta_end": 0.012}),
          "squaredcos_cap_v2": ("cosine", {})}


@pytest.mark.diffusers
@pytest.mark.parametrize("K", [5, 20])
@pytest.mark.parametrize("zero_snr", [False, True])
@pytest.mark.parametrize("beta_schedule", list(_BETAS))
def test_to_diffusers_matches_float32_grids_of_every_beta_schedule(beta_schedule, zero_snr, K):
    """symsched's float64 grid levels land on diffusers' float32 timesteps (zero SNR: up to 4e-5 apart).

    Expected timesteps: diffusers' own "trailing" spacing; the README's zero-SNR path (DDPM, scheduler=)
    used to fail with "not on the grid within rtol=1e-06".
    """
    diffusers = pytest.importorskip("diffusers")
    name, kw = _BETAS[beta_schedule]
    conf = dict(beta_schedule=beta_schedule, rescale_betas_zero_snr=zero_snr, clip_sample=False, **kw)
    if zero_snr:  # (an epsilon model cannot run the level 0 itself: to_diffusers refuses the export)
        conf["prediction_type"] = "v_prediction"
    ref = diffusers.DDPMScheduler(timestep_spacing="trailing", **conf)
    ref.set_timesteps(K)
    expected = ref.timesteps.tolist()
    ab = symsched.schedules.from_grid(symsched.schedules.training_grid(name, rescale_zero_snr=zero_snr, **kw),
                                      symsched.schedules.timesteps(K, spacing="trailing"))
    assert (ab[0] == 0.0) == zero_snr
    ddpm = diffusers.DDPMScheduler(**conf)
    kw_ddpm = to_diffusers(ab, scheduler=ddpm)
    assert kw_ddpm == {"timesteps": expected}
    ddpm.set_timesteps(**kw_ddpm)
    assert ddpm.timesteps.tolist() == expected
    assert to_diffusers(ab, grid=diffusers.DDIMScheduler(**conf).alphas_cumprod) == {"timesteps": expected}
    conf.pop("clip_sample")
    euler = diffusers.EulerDiscreteScheduler(**conf)  # zero SNR: alphas_cumprod[-1] = 2**-24 stands for 0
    kw_euler = to_diffusers(ab, grid=euler.alphas_cumprod)
    assert kw_euler == {"timesteps": expected}
    euler.set_timesteps(**kw_euler)
    assert [int(t) for t in euler.timesteps] == expected


@pytest.mark.diffusers
@pytest.mark.parametrize("zero_snr", [False, True])
@pytest.mark.parametrize("beta_schedule", list(_BETAS))
def test_to_diffusers_refuses_levels_between_float32_timesteps(beta_schedule, zero_snr):
    """The float32 tolerance never reaches a level halfway (in log alpha_bar) between two of diffusers' timesteps."""
    diffusers = pytest.importorskip("diffusers")
    _, kw = _BETAS[beta_schedule]
    g = diffusers.DDPMScheduler(beta_schedule=beta_schedule, rescale_betas_zero_snr=zero_snr, **kw)
    g = g.alphas_cumprod.double().numpy()
    lg = np.log(g[g > 0])
    mid = np.exp(0.5 * (lg[1:] + lg[:-1]))  # geometric midpoints, diffusers' own values
    for t in (0, 1, 400, 798, 997):
        with pytest.raises(ValueError, match=r"alpha_bar\[0\]=.* is not on the grid"):
            to_diffusers([mid[t]], grid=g)
    accepted = 0
    for m in mid:
        try:
            to_diffusers([m], grid=g)
            accepted += 1
        except ValueError:
            pass
    assert accepted == 0
    # one level off by 1e-3 in log alpha_bar (far more than float32 rounding), named by its index
    t = int(np.searchsorted(-g, -0.5))
    with pytest.raises(ValueError, match=r"alpha_bar\[1\]=.* not on the grid .*float32"):
        to_diffusers([g[t + 10], g[t] * np.exp(1e-3)], grid=g)


def test_to_diffusers_explicit_rtol_and_zero_level():
    g = symsched.schedules.training_grid("scaled_linear", rescale_zero_snr=True)
    g32 = g.astype(np.float32)
    ab = symsched.schedules.from_grid(g, [999, 799, 199])
    assert to_diffusers(ab, grid=g32) == {"timesteps": [999, 799, 199]}
    with pytest.raises(ValueError, match=r"alpha_bar\[1\].*within rtol=1e-09"):
        to_diffusers(ab, grid=g32, rtol=1e-9)  # float32 rounding alone is 3e-8
    with pytest.raises(ValueError, match=r"alpha_bar\[0\]=0.0 is not on the grid: the grid has no zero"):
        to_diffusers(ab, grid=symsched.schedules.training_grid("scaled_linear"))
    with pytest.raises(ValueError, match="rtol must be >= 0"):
        to_diffusers(ab, grid=g32, rtol=-1.0)
    # a loose explicit rtol is still held to a quarter of the way to the neighbouring timesteps: the
    # geometric midpoint of two timesteps is refused (it would round to either)
    lin = symsched.schedules.training_grid("linear")
    mid = float(np.sqrt(lin[10] * lin[11]))
    with pytest.raises(ValueError, match=r"alpha_bar\[0\].*quarter of the way"):
        to_diffusers([mid], grid=lin, rtol=1.0)
    assert to_diffusers([float(lin[10]) * (1 + 1e-7)], grid=lin, rtol=1e-6) == {"timesteps": [10]}
    # the default (float32 rounding) tolerance is held to it too: on a fine custom grid (log-gaps 1e-7..1e-6, below
    # float32's accumulated rounding) the midpoint of timesteps 500 and 501 is refused, not rounded to one of them
    fine = symsched.schedules.betas_to_alpha_bar(np.linspace(1e-7, 1e-6, 1000))
    mid = float(np.sqrt(fine[500] * fine[501]))
    for grid in (fine, fine.astype(np.float32)):
        with pytest.raises(ValueError, match=r"alpha_bar\[0\].*not on the grid"):
            to_diffusers([mid], grid=grid)
    assert to_diffusers([float(fine[500])], grid=fine.astype(np.float32)) == {"timesteps": [500]}


@pytest.mark.parametrize("grid", [[-1.0, 0.5], [2.0, 0.5], [1.0, 0.5], [0.3, 0.5], [0.5, 0.0, 0.1], [0.5, np.nan]])
def test_to_diffusers_validates_the_grid(grid):
    with pytest.raises(ValueError, match="grid"):
        to_diffusers([0.5], grid=grid)


@pytest.mark.parametrize("scheduler", ["DDPMScheduler", "EulerDiscreteScheduler", "HeunDiscreteScheduler",
                                       "DPMSolverMultistepScheduler"])
@pytest.mark.parametrize("kind", ["sigmoid", "scaled_linear_zero_snr", "custom"])
def test_grid_config_rebuilds_any_grid_in_diffusers(scheduler, kind) -> None:
    """The exported config (named betas or trained_betas) makes diffusers compute the same alphas_cumprod."""
    diffusers = pytest.importorskip("diffusers")
    from symsched import schedules as sch
    from symsched.export import _diffusers_grid_config

    if kind == "sigmoid":
        g = sch.training_grid("sigmoid", num_train_timesteps=500)
    elif kind == "custom":
        g = np.exp(-np.linspace(1e-3, 6.0, 300) ** 1.5)
    else:
        g = sch.training_grid("scaled_linear", rescale_zero_snr=True)
    cfg = _diffusers_grid_config(g, scheduler)
    assert cfg["num_train_timesteps"] == g.size
    got = getattr(diffusers, scheduler)(**cfg).alphas_cumprod.double().numpy()
    if g[-1] == 0.0:  # diffusers' stand-in 2**-24 (Euler, DPM-Solver) or an exact 0 (DDPM, Heun)
        assert got[-1] in (0.0, 2.0**-24)
        g, got = g[:-1], got[:-1]
    np.testing.assert_allclose(got, g, rtol=1e-4)


@pytest.mark.diffusers
@pytest.mark.parametrize("name", ["DDPMScheduler", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler"])
def test_from_diffusers_refuses_an_eta_the_scheduler_does_not_take(name):
    """break3/user F13: only DDIMScheduler.step takes eta; any other scheduler with eta != 0 is refused naming eta
    (diffusers itself raises TypeError for step(..., eta=...)), instead of silently reporting eta = 0."""
    diffusers = pytest.importorskip("diffusers")
    kw = {"clip_sample": False} if name == "DDPMScheduler" else {}
    sch = getattr(diffusers, name)(**kw)
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match=rf"^eta=0.5: only DDIMScheduler.step takes an eta; {name}.step has none"):
        from_diffusers(sch, eta=0.5)
    assert from_diffusers(sch, eta=0.0).eta == 0.0


def test_from_k_diffusion_sigmas_keeps_large_finite_sigmas_finite() -> None:
    """1/(1 + s^2) overflowed s^2 for s > 1.3e154 and turned a finite level into pure noise (alpha_bar 0):
    the stable conversion gives 1/s^2 there, and refuses what underflows instead of calling it pure noise."""
    ab = from_k_diffusion_sigmas([1e160, 1.0, 0.0])
    assert ab[0] == pytest.approx(1e-320, rel=1e-3, abs=0) and ab[0] > 0 and ab[1] == 0.5
    with pytest.raises(ValueError, match="sigmas"):
        from_k_diffusion_sigmas([1e200, 1.0, 0.0])
    assert from_k_diffusion_sigmas([np.inf, 1.0, 0.0])[0] == 0.0


@pytest.mark.diffusers
def test_timestep_level_notes_are_raised_only_where_the_model_sees_another_level() -> None:
    """break-test A F7: EulerDiscrete with timestep_type="continuous" calls the model at 0.25 log sigma itself (no
    note, once a false alarm "up to 1"); Karras sigmas on DPM-Solver call it at rounded timesteps (a note that
    says the output may differ by more than the level offset)."""
    diffusers = pytest.importorskip("diffusers")
    base = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    cont = diffusers.EulerDiscreteScheduler(**base, timestep_type="continuous", prediction_type="v_prediction")
    cont.set_timesteps(8)
    assert not any("timesteps whose training levels" in n for n in from_diffusers(cont).notes)
    kar = diffusers.DPMSolverMultistepScheduler(**base, use_karras_sigmas=True)
    kar.set_timesteps(10)
    notes = [n for n in from_diffusers(kar).notes if "timesteps whose training levels" in n]
    assert len(notes) == 1 and "treat it as approximate" in notes[0]


@pytest.mark.diffusers
def test_zero_last_step_refusal_offers_only_a_remedy_that_works() -> None:
    """break-test 44 F2: Karras sigmas end at sigma_min for every number of steps, so with final_sigmas_type=
    "sigma_min" the last step is a zero step at K = 3, 10, 20 alike: the refusal must not suggest fewer steps."""
    diffusers = pytest.importorskip("diffusers")
    # (DPMSolverMultistep's zero last step is modelled as the identity since the audit of 5 December:
    # tests/test_diffusers_multistep.py; UniPC's corrects the sample with the model at sigma_min first)
    cases = [(diffusers.UniPCMultistepScheduler, "use_karras_sigmas")]
    for cls, option in cases:
        for k in (3, 10, 20):
            sch = cls(**{option: True}, final_sigmas_type="sigma_min")
            sch.set_timesteps(k)
            assert float(sch.sigmas[-1]) == float(sch.sigmas[-2])  # diffusers' own zero last step, at every K
            with pytest.raises(ValueError, match="final_sigmas_type='zero'") as info:
                from_diffusers(sch)
            assert "fewer inference steps" not in str(info.value), (cls.__name__, k)


def diffusers_heun_psd(sch, S):
    """HeunDiscreteScheduler.step in a loop (typed in from scheduling_heun_discrete.py): a first-order call stores
    d = (x - D(x)) / sigma, dt = sigma_next - sigma and x, and steps x + d dt; the next call (second order) averages d
    with the derivative at sigma_next and steps from the stored x. The transfer is a gain per mode; VE sigmas."""
    sig = np.asarray(sch.sigmas, dtype=np.float64)
    H = np.ones_like(S)
    first, stored = True, None
    for i in range(len(sch.timesteps)):
        if first:
            s, s_next = sig[i], sig[i + 1]
            d = (1 - S / (S + s * s)) / s  # derivative per unit of x
            stored = (H, d, s_next - s)
            H = H * (1 + d * (s_next - s))
        else:
            s_next = sig[i]
            H0, d0, dt = stored
            d1 = H * (1 - S / (S + s_next * s_next)) / s_next
            H = H0 + (H0 * d0 + d1) / 2 * dt
        first = not first
    return H * H * float(sch.init_noise_sigma) ** 2


@pytest.mark.parametrize("spacing,K", [("linspace", 6), ("leading", 5), ("trailing", 10), ("leading", 1)])
def test_standin_heun_levels_and_psd(spacing, K):
    """Break-test I: from_diffusers reads HeunDiscreteScheduler (no diffusers needed): the predictors' sigmas, and
    the PSD of diffusers' own 2K - 1 step calls."""
    from diffusers_standin import HeunDiscreteScheduler

    sch = HeunDiscreteScheduler(beta_schedule="scaled_linear", timestep_spacing=spacing)
    sch.set_timesteps(K)
    info = from_diffusers(sch)
    sig = np.asarray(sch.sigmas, dtype=np.float64)
    np.testing.assert_array_equal(info.sigmas, sig[:-1:2])
    assert info.sampler == "heun" and len(info.steps) == 2 * K - 1
    np.testing.assert_allclose(info.output_spectrum(STANDIN_S), diffusers_heun_psd(sch, STANDIN_S), rtol=1e-10)
    wrong = diffusers_euler_psd_on(sig[:-1:2], STANDIN_S, float(sch.init_noise_sigma))
    assert np.max(np.abs(info.output_spectrum(STANDIN_S) / wrong - 1)) > 1e-3 or K == 1  # Heun is not Euler


def diffusers_euler_psd_on(levels, S, init_sigma):
    """Euler on the same levels (a companion: the Heun check must tell them apart)."""
    sig = np.append(levels, 0.0)
    v = np.full_like(S, init_sigma**2)
    for s, s_next in zip(sig[:-1], sig[1:]):
        v = (1 + (s_next - s) * (1 - S / (S + s * s)) / s) ** 2 * v
    return v


def test_float32_step_sizes_at_a_huge_sigma_max_are_noted():
    """Break-test J: diffusers' float32 step sizes at sigma_max = 2e4 (squaredcos_cap_v2) changed a low-variance
    mode's output by 64 % against the exact-arithmetic closed form, with no note; the usual grids get none."""
    from diffusers_standin import EulerDiscreteScheduler, HeunDiscreteScheduler

    for cls in (EulerDiscreteScheduler, HeunDiscreteScheduler):
        for betas, noted in (("squaredcos_cap_v2", True), ("scaled_linear", False), ("linear", False)):
            sch = cls(beta_schedule=betas)
            sch.set_timesteps(5)
            notes = " ".join(from_diffusers(sch).notes)
            assert ("float32 sigmas" in notes) == noted, (cls.__name__, betas, notes)


def test_euler_sigmas_above_the_models_training_range_are_refused() -> None:
    """break-test 45: sigmas optimised on the default linear grid (sigma_max 157) exported to a scheduler with
    Stable Diffusion's betas (sigma_max 14.6) ran three of eight steps at timestep 999; the exporter now checks
    the first sigma against the grid's largest (computed here from the betas)."""
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    sd_grid = np.cumprod(1.0 - betas)
    sd_sigma_max = float(np.sqrt((1 - sd_grid[-1]) / sd_grid[-1]))
    assert 14.0 < sd_sigma_max < 15.0
    stand_in = type("EulerDiscreteScheduler", (), {"config": {}, "alphas_cumprod": sd_grid.astype(np.float32)})()
    too_high = 1 / (1 + np.array([157.4, 20.0, 3.0, 0.5, 0.05]) ** 2)
    with pytest.raises(ValueError, match=r"first sigma 157\.4 exceeds the model's largest training sigma 14\.6"):
        to_diffusers(too_high, scheduler=stand_in)
    inside = 1 / (1 + np.array([sd_sigma_max, 3.0, 0.5, 0.05]) ** 2)
    out = to_diffusers(inside, scheduler=stand_in)["sigmas"]
    np.testing.assert_allclose(out[:-1], [sd_sigma_max, 3.0, 0.5, 0.05], rtol=1e-12)
    assert to_diffusers(too_high, scheduler="EulerDiscreteScheduler")["sigmas"][0] == pytest.approx(157.4)  # no grid


# ---------------------------------------------------------------------------------------------
# break-test 51: exports that the library runs differently, and wrong types
# ---------------------------------------------------------------------------------------------


def test_a_dpm_solver_export_whose_noise_would_rise_at_the_stand_in_is_refused() -> None:
    """DPMSolverMultistepScheduler(rescale_betas_zero_snr=True) runs a first level alpha_bar = 0 at diffusers' stand-in
    2**-24 (sigma 4096); a second level noisier than that (timestep 998 of the rescaled linear grid, 4.2e-9) made the
    exported run's noise rise (sigma 4096 -> 15406), silently. Refused, naming the level; a second level below the
    stand-in's noise (timestep 990) is exported as before (the companion)."""
    from symsched.schedules import training_grid

    gl = training_grid("linear", rescale_zero_snr=True)
    assert gl[998] < 2.0**-24 < gl[990]  # the premise, from the grid itself
    with pytest.raises(ValueError, match=r"alpha_bar\[1\] = 4\.2\d*e-09 is at least as noisy"):
        to_diffusers([0.0, gl[998], gl[500]], grid=gl, scheduler="DPMSolverMultistepScheduler")
    assert to_diffusers([0.0, gl[990], gl[500]], grid=gl, scheduler="DPMSolverMultistepScheduler") == {
        "timesteps": [999, 990, 500]}


def test_from_diffusers_names_the_stand_in_when_the_noise_rises_at_the_first_step() -> None:
    """from_diffusers on such a scheduler blamed the spacing ("use fewer inference steps or steps_offset=0")."""
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.DPMSolverMultistepScheduler(rescale_betas_zero_snr=True)
    sch.set_timesteps(timesteps=[999, 998, 500])
    with pytest.raises(ValueError, match="stand-in alphas_cumprod") as exc:
        from_diffusers(sch)
    assert "steps_offset" not in str(exc.value)


def test_a_scheduler_of_the_wrong_type_is_a_type_error() -> None:
    """from_diffusers(None), from_diffusers("DDIMScheduler") and to_diffusers(..., scheduler=3) raised a plain ValueError;
    a wrong type is ArgumentTypeError (a TypeError and a ValueError) naming scheduler. An unknown class name stays a
    ValueError (the companion)."""
    for call in (lambda: from_diffusers(None), lambda: from_diffusers("DDIMScheduler"),
                 lambda: to_diffusers([0.1, 0.5], scheduler=3)):
        with pytest.raises(TypeError, match="scheduler must be a diffusers scheduler instance"):
            call()
    with pytest.raises(ValueError, match="scheduler must be one of") as exc:
        to_diffusers([0.1, 0.5], scheduler="LMSDiscreteScheduler")
    assert not isinstance(exc.value, TypeError)


def test_the_ddim_reader_notes_float32_rounding_as_the_euler_readers_do() -> None:
    """diffusers runs DDIM in float32: on squaredcos_cap_v2 (sigma_max 2e4) at K = 1 its output is off by 2385x at
    S = 0.01 (break-test 51), and only the Euler/Heun/DPM readers said so. Every reader notes it; the linear grid's
    sigma_max 157 does not (the companion)."""
    from diffusers_standin import DDIMScheduler

    cos = DDIMScheduler(beta_schedule="squaredcos_cap_v2", timestep_spacing="trailing", clip_sample=False)
    cos.set_timesteps(1)
    assert any("runs its update in float32 (sigma_max = 2.0" in n for n in from_diffusers(cos).notes)
    lin = DDIMScheduler(timestep_spacing="trailing", clip_sample=False)
    lin.set_timesteps(1)
    assert not any("float32" in n for n in from_diffusers(lin).notes)


def _float32_moved(grid: np.ndarray, rel: float) -> np.ndarray:
    """A stand-in for diffusers' float32 alphas_cumprod: every positive level moved by ``rel`` (alternating sign),
    farther than the first-order float32 bound at the first timesteps; a zero stays zero."""
    sign = np.where(np.arange(grid.size) % 2 == 0, 1.0, -1.0)
    return grid * (1.0 + sign * rel)


def test_levels_of_the_configured_grid_match_their_timesteps_however_far_float32_moved_it():
    """Review: diffusers computes a zero-terminal-SNR grid in float32 through the rescale's cancelling difference
    sqrt(alpha_bar_t) - sqrt(alpha_bar_{T-1}), which moves short grids (T = 3-20) by up to 2e-5 in log, beyond the
    float32 bound to_diffusers allowed: symsched's own levels of that grid were refused. With the scheduler's
    configuration the exact (float64) grid matches too; a level off that grid is still refused. Stand-in
    scheduler: a config mapping and a grid moved by a known amount; the timesteps are known by construction."""
    from types import SimpleNamespace

    from symsched import export
    from symsched.schedules import training_grid

    ddpm = export._EXPORTERS["DDPMScheduler"]  # what to_diffusers(scheduler=<a DDPMScheduler>) runs
    for T in (3, 5, 10, 20):
        exact = training_grid("scaled_linear", num_train_timesteps=T, rescale_zero_snr=True)
        cfg = {"num_train_timesteps": T, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
               "trained_betas": None, "rescale_betas_zero_snr": True}
        sch = SimpleNamespace(config=cfg, alphas_cumprod=_float32_moved(exact, 2e-5))
        levels = exact[::-1].copy()  # 0 first, then every timestep, noisiest first
        with pytest.raises(ValueError, match=r"alpha_bar\[1\]=.* is not on the grid"):
            to_diffusers(levels, grid=sch.alphas_cumprod)  # the grid alone: the float32 bound refuses them
        got = ddpm(levels, sch, sch.alphas_cumprod, None)
        assert got == {"timesteps": list(range(T - 1, -1, -1))}
        off = levels.copy()
        off[1] *= 1.0 + 1e-4  # off the exact grid and off the moved one
        with pytest.raises(ValueError, match=r"alpha_bar\[1\]="):
            ddpm(off, sch, sch.alphas_cumprod, None)
        other = dict(cfg, beta_start=0.0001, beta_end=0.02)  # a configuration that is not this grid's: ignored
        with pytest.raises(ValueError, match=r"alpha_bar\[1\]="):
            ddpm(levels, SimpleNamespace(config=other), sch.alphas_cumprod, None)


@pytest.mark.diffusers
@pytest.mark.parametrize("T", [3, 5, 10, 20])
def test_symsched_levels_of_a_short_zero_snr_diffusers_grid_export_to_their_timesteps(T):
    """The same on diffusers' own float32 grids (DDPM, DPM-Solver; every beta family both know), witnessed by the
    scheduler running the exported timesteps on exactly those grid entries."""
    pytest.importorskip("diffusers")
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler

    from symsched.schedules import training_grid

    for name, dname in (("linear", "linear"), ("scaled_linear", "scaled_linear"), ("cosine", "squaredcos_cap_v2"),
                        ("sigmoid", "sigmoid")):
        kw = {} if name == "cosine" else {"beta_start": 0.00085, "beta_end": 0.012}
        levels = training_grid(name, num_train_timesteps=T, rescale_zero_snr=True, **kw)[::-1].copy()
        for cls in (DDPMScheduler, DPMSolverMultistepScheduler):
            if name == "sigmoid" and cls is not DDPMScheduler:
                continue  # only DDPMScheduler knows diffusers' sigmoid betas
            lin = {"clip_sample": False, "prediction_type": "v_prediction"} if cls is DDPMScheduler else {}  # (its
            # default clips: a warning; an epsilon model cannot run the level 0: the export is refused)
            sch = cls(num_train_timesteps=T, beta_schedule=dname, rescale_betas_zero_snr=True, **kw, **lin)
            run = levels if cls is DDPMScheduler else levels[1:]  # DPM-Solver: no level 0 (it runs 2**-24 there)
            got = to_diffusers(run, scheduler=sch)
            assert got == {"timesteps": list(range(run.size - 1, -1, -1))}, (name, cls.__name__)
            sch.set_timesteps(**got)
            assert [int(t) for t in sch.timesteps[: run.size]] == got["timesteps"]


# ---------------------------------------------------------------------------------------------
# diffusers casts the sigmas it is given to float32 (set_timesteps: np.array(sigmas).astype(np.float32))
# ---------------------------------------------------------------------------------------------
def test_euler_sigmas_beyond_float32_are_refused_not_exported() -> None:
    """alpha_bar = 1e-80 is sigma 1e40: finite in float64, inf in float32 (max 3.4e38), where diffusers'
    EulerDiscreteScheduler would start at sigma = inf (NaN samples)."""
    assert alpha_bar_to_sigmas(np.array([1e-80]))[0] > np.finfo(np.float32).max  # the premise, independently
    with pytest.raises(ValueError, match=r"^alpha_bar: level 0 \(1e-80\).*beyond float32"):
        to_diffusers([1e-80, 0.1, 0.5])
    sig = to_diffusers([1e-76, 0.1, 0.5])["sigmas"]  # sigma 1e38 fits
    assert np.all(np.isfinite(np.asarray(sig, dtype=np.float32))) and sig[0] == pytest.approx(1e38, rel=1e-12)
    assert to_k_diffusion_sigmas([1e-80, 0.1, 0.5])[0] == pytest.approx(1e40, rel=1e-12)  # k-diffusion: float64 kept


def test_flow_times_merging_in_float32_are_refused() -> None:
    """Flow times 1 - 1e-20 and 1 - 1e-18 differ in float64 and are both 1.0 in float32: a zero step in diffusers."""
    t = symsched.schedules.alpha_bar_to_flow_t(np.array([1e-20, 1e-18]))
    assert t[0] > t[1] and np.float32(t[0]) == np.float32(t[1])  # the premise, independently
    with pytest.raises(ValueError, match=r"^alpha_bar: levels 0 and 1 .*same flow time .*float32"):
        to_diffusers([1e-20, 1e-18, 0.5], scheduler="flow_match_euler")


@pytest.mark.parametrize("shift", [float("nan"), 0.0, -1.0, float("inf")])
def test_flow_export_names_a_bad_shift(shift: float) -> None:
    from diffusers_standin import Config

    class FlowMatchEulerDiscreteScheduler:
        config = Config(shift=shift, use_dynamic_shifting=False)

    with pytest.raises(ValueError, match=r"shift=.*must be a finite number > 0"):
        to_diffusers([0.0, 0.2, 0.7], scheduler=FlowMatchEulerDiscreteScheduler())


def test_euler_export_near_the_float32_limit_runs_in_diffusers() -> None:
    """Witness: the largest exported sigma that passes is one diffusers' scheduler holds (finite, as exported)."""
    d = pytest.importorskip("diffusers")
    ab = np.array([1e-76, 0.1, 0.5])
    sch = d.EulerDiscreteScheduler()
    sch.set_timesteps(**to_diffusers(ab))
    got = sch.sigmas.double().numpy()
    assert np.all(np.isfinite(got)) and np.isfinite(float(sch.init_noise_sigma))
    np.testing.assert_allclose(got[:-1], alpha_bar_to_sigmas(ab), rtol=1e-6)


@pytest.mark.diffusers
def test_a_float64_default_dtype_does_not_break_the_dry_run() -> None:
    """Audit of 5 December: with torch.set_default_dtype(torch.float64) every UniPC scheduler with K >= 3 was refused
    ("linalg.solve: Expected A and B to have the same dtype"): the float32 dry run met float64 tensors that step()
    creates by the default dtype. The dry run now runs as diffusers does by default, and restores the caller's."""
    diffusers = pytest.importorskip("diffusers")
    torch = pytest.importorskip("torch")
    ref = diffusers.UniPCMultistepScheduler()
    ref.set_timesteps(5)
    expected = from_diffusers(ref).alpha_bar
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        sch = diffusers.UniPCMultistepScheduler()
        sch.set_timesteps(5)
        got = from_diffusers(sch)
        assert torch.get_default_dtype() == torch.float64  # the caller's setting, restored
    finally:
        torch.set_default_dtype(before)
    np.testing.assert_allclose(got.alpha_bar, expected, rtol=1e-6)  # (float32 vs float64 schedule tensors)


@pytest.mark.diffusers
def test_the_dry_run_restores_the_default_dtype_when_diffusers_raises(monkeypatch) -> None:
    """Review of 5 December: the restore must hold on every path, including a step that raises inside the loop."""
    diffusers = pytest.importorskip("diffusers")
    torch = pytest.importorskip("torch")
    from symsched import export

    sch = diffusers.DDIMScheduler(clip_sample=False)
    sch.set_timesteps(4)

    def broken(*args, **kwargs):
        assert torch.get_default_dtype() == torch.float32  # the loop runs with diffusers' own default
        raise RuntimeError("boom")

    monkeypatch.setattr(type(sch), "step", broken)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        msg = export._dry_run_failure(sch, 0.0)
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(before)
    assert msg is not None and "raises RuntimeError (boom) on step 0" in msg


@pytest.mark.diffusers
def test_a_library_warning_in_the_dry_run_is_not_a_refusal_under_warnings_as_errors(monkeypatch) -> None:
    """Audit of 6 December: under ``-W error`` (or pytest's filterwarnings = error) a DeprecationWarning that NumPy 2
    raises inside torch on DEISMultistepScheduler.step refused the scheduler ("step raises DeprecationWarning"): the
    dry run is symsched's own, and only an exception of the library or a non-finite step refuses a schedule. Here
    the step warns on every call (whatever NumPy and torch versions are installed) and the caller's filter is
    "error"; the schedule read is the one read without the warning, and the caller's filters are left as they were."""
    diffusers = pytest.importorskip("diffusers")
    import warnings

    sch = diffusers.DEISMultistepScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    sch.set_timesteps(5)
    expected = from_diffusers(sch).alpha_bar
    step = type(sch).step

    def warning_step(self, *args, **kwargs):
        warnings.warn("a library's deprecation", DeprecationWarning)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(type(sch), "step", warning_step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = from_diffusers(sch).alpha_bar
        with pytest.raises(DeprecationWarning):  # the caller's filter, intact after the call
            warnings.warn("still an error", DeprecationWarning)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.diffusers
def test_overlapping_dry_runs_leave_the_callers_default_dtype(monkeypatch) -> None:
    """Mutation run of 5 December: without the lock, two dry runs that overlap (A sets float32, B saves float32, A
    restores float64, B restores float32) left the process at float32 for good."""
    import threading

    diffusers = pytest.importorskip("diffusers")
    torch = pytest.importorskip("torch")
    from symsched import export

    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()

    def step_a(*args, **kwargs):
        a_inside.set()
        b_inside.wait(0.5)  # with the lock B cannot get in: A gives up waiting and leaves
        raise RuntimeError("a")

    def step_b(*args, **kwargs):
        b_inside.set()
        a_done.wait(2.0)
        raise RuntimeError("b")

    class A(diffusers.DDIMScheduler):
        step = step_a

    class B(diffusers.DDIMScheduler):
        step = step_b

    A.__module__ = B.__module__ = "diffusers.standin"  # (only diffusers' own schedulers are dry-run)
    sa, sb = A(clip_sample=False), B(clip_sample=False)
    sa.set_timesteps(4)
    sb.set_timesteps(4)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        def run_a() -> None:
            export._dry_run_failure(sa, 0.0)
            a_done.set()

        ta = threading.Thread(target=run_a)
        ta.start()
        assert a_inside.wait(5.0)
        tb = threading.Thread(target=lambda: export._dry_run_failure(sb, 0.0))
        tb.start()
        ta.join(10.0)
        tb.join(10.0)
        assert b_inside.is_set()
        after = torch.get_default_dtype()
    finally:
        torch.set_default_dtype(before)
    assert after == torch.float64


@pytest.mark.diffusers
@pytest.mark.parametrize("flag", ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"])
def test_every_sigma_family_is_refused_where_it_rewrites_the_schedule(flag) -> None:
    """Mutation run of 5 December: only the Karras flag was tested; with use_beta_sigmas dropped from the list,
    to_diffusers gave FlowMatchEulerDiscreteScheduler(use_beta_sigmas=True) sigmas that diffusers silently rewrites,
    and a zero-last-step refusal advised "fewer inference steps" that cannot help."""
    diffusers = pytest.importorskip("diffusers")
    from symsched.export import to_diffusers

    with pytest.raises(ValueError, match=f"{flag}=True"):
        to_diffusers([0.0, 0.3, 0.9], scheduler=diffusers.FlowMatchEulerDiscreteScheduler(**{flag: True}))
    with pytest.raises(ValueError, match=f"{flag}=True"):
        to_diffusers([0.01, 0.3, 0.9], scheduler=diffusers.HeunDiscreteScheduler(**{flag: True}))
    sch = diffusers.UniPCMultistepScheduler(**{flag: True}, final_sigmas_type="sigma_min")
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="final_sigmas_type='zero'") as info:
        from_diffusers(sch)
    assert "fewer inference steps" not in str(info.value)
    sch = diffusers.DPMSolverMultistepScheduler(**{flag: True}, final_sigmas_type="sigma_min")
    sch.set_timesteps(10)  # DPM-Solver's zero last step is the identity (tests/test_diffusers_multistep.py)
    assert from_diffusers(sch).alpha_bar.size == 10


def test_flow_export_undoes_the_live_shift_set_shift_sets() -> None:
    """diffusers' FlowMatchEulerDiscreteScheduler.set_shift() changes the shift set_timesteps applies (its ``shift``
    property) but not ``config.shift``: the export undid the config's 1.0 and the run went to shifted levels."""
    from diffusers_standin import Config

    class FlowMatchEulerDiscreteScheduler:
        config = Config(shift=1.0, use_dynamic_shifting=False)
        shift = property(lambda self: 3.0)  # diffusers: a property returning self._shift

    t = np.array([1.0, 0.8, 0.5, 0.2])
    sig = np.asarray(to_diffusers(symsched.schedules.flow_t_to_alpha_bar(t),
                                  scheduler=FlowMatchEulerDiscreteScheduler())["sigmas"])
    np.testing.assert_allclose(3.0 * sig / (1 + 2.0 * sig), t, rtol=1e-15)  # diffusers' static shift, typed in


def test_flow_export_live_shift_witness() -> None:
    d = pytest.importorskip("diffusers")
    ab = symsched.schedules.flow_t_to_alpha_bar(np.array([1.0, 0.8, 0.6, 0.4, 0.2]))
    sch = d.FlowMatchEulerDiscreteScheduler(shift=1.0)
    sch.set_shift(3.0)
    sch.set_timesteps(**to_diffusers(ab, scheduler=sch))
    np.testing.assert_allclose(sch.sigmas[:-1].double().numpy(), [1.0, 0.8, 0.6, 0.4, 0.2], rtol=1e-6)


@pytest.mark.parametrize(("config", "ab"), [
    ({"use_dynamic_shifting": True}, [0.0, 3.6e-15, 1.4e-14, 0.5]),
    ({"use_dynamic_shifting": True, "time_shift_type": "linear"}, [0.0, 3.6e-15, 1.4e-14, 0.5]),
    ({"shift": 3.0, "use_dynamic_shifting": False}, [0.0, 3.552714102317e-15, 1.4210858103334197e-14, 0.5]),
])
def test_flow_times_the_float32_shift_merges_are_refused(config: dict, ab: list) -> None:
    """Distinct float32 flow times can merge when diffusers applies its shift to them in float32 (the identity mu = 0
    rounds 1 - t up near t = 1; shift 3 compresses 1 - t by 3): a zero step. The check ran before the shift."""
    from diffusers_standin import Config

    class FlowMatchEulerDiscreteScheduler:
        pass

    FlowMatchEulerDiscreteScheduler.config = Config(**config)
    with pytest.raises(ValueError, match=r"^alpha_bar: levels \d and \d .*same flow time \(after the scheduler's "
                                         r"float32 shift\)"):
        to_diffusers(ab, scheduler=FlowMatchEulerDiscreteScheduler())
    with np.errstate(divide="ignore"):  # the premise, independently: diffusers' formulas on the float32 cast
        t32 = symsched.schedules.alpha_bar_to_flow_t(np.array(ab))
        if config.get("shift", 1.0) != 1.0:
            s = config["shift"]
            t32 = t32 / (t32 + s * (1 - t32))
        t32 = t32.astype(np.float32)
        run = (np.float32(1.0) / (1 + (1 / t32 - 1)) if "shift" not in config
               else config["shift"] * t32 / (1 + (config["shift"] - 1) * t32))
    assert np.any(run[1:] >= run[:-1]) and np.all(t32[1:] < t32[:-1])


def test_flow_times_the_float32_shift_keeps_run_in_diffusers() -> None:
    """Witness: the merges above are diffusers' own (it runs two levels at one sigma), and shift 1 keeps them apart."""
    d = pytest.importorskip("diffusers")
    ab = np.array([0.0, 3.6e-15, 1.4e-14, 0.5])
    sch = d.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    t = symsched.schedules.alpha_bar_to_flow_t(ab)
    sch.set_timesteps(sigmas=list(t), mu=0.0)
    run = sch.sigmas[:-1].double().numpy()
    assert run[1] == run[2]
    sch = d.FlowMatchEulerDiscreteScheduler(shift=1.0)
    sch.set_timesteps(**to_diffusers(ab, scheduler=sch))
    assert np.all(np.diff(sch.sigmas[:-1].double().numpy()) < 0)


@pytest.mark.parametrize("config", [{"clip_sample": True}, {"thresholding": True}])
def test_to_diffusers_warns_of_a_non_linear_scheduler(config: dict) -> None:
    """to_diffusers exported timesteps for DDPMScheduler() (clip_sample=True by default) without a word, though the run
    is not the one optimised (library variance 0.29-0.62 against the linear prediction 0.35-16.6 at K = 4) and
    from_diffusers refuses to predict it; the timesteps are still what it runs (a warning, not an error)."""
    from diffusers_standin import Config

    class DDPMScheduler:
        pass

    DDPMScheduler.config = Config(num_train_timesteps=1000, **config)
    DDPMScheduler.alphas_cumprod = symsched.schedules.training_grid("linear")
    ab = symsched.schedules.training_grid("linear")[[900, 500, 100]]
    with pytest.warns(UserWarning, match=rf"^scheduler: DDPMScheduler with {next(iter(config))}=True makes the step "
                                         r"non-linear.*clip_sample=False"):
        got = to_diffusers(ab, scheduler=DDPMScheduler())
    assert got == {"timesteps": [900, 500, 100]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        to_diffusers(ab, scheduler=DDPMScheduler())
    assert caught[0].filename == __file__  # it points at the caller's line, not at symsched's wrapper
    DDPMScheduler.config = Config(num_train_timesteps=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert to_diffusers(ab, scheduler=DDPMScheduler()) == got


def test_to_diffusers_refuses_options_the_export_would_ignore() -> None:
    """Audit 3b C2: to_diffusers(alpha_bar, rtol=0.1) without grid= ignored rtol silently (the export is sigmas,
    matched to nothing); likewise rtol for a scheduler given sigmas and grid for the flow-matching one."""
    ab = symsched.schedules.karras(5)
    g = symsched.schedules.training_grid()
    with pytest.raises(ValueError, match=r"^rtol=0.1 needs grid=:"):
        to_diffusers(ab, rtol=0.1)
    with pytest.raises(ValueError, match=r"^rtol applies to timesteps .*EulerDiscreteScheduler is given sigmas"):
        to_diffusers(ab, rtol=0.1, scheduler="EulerDiscreteScheduler")
    with pytest.raises(ValueError, match=r"^rtol applies .*FlowMatchEulerDiscreteScheduler"):
        to_diffusers([0.0, 0.5], rtol=0.1, scheduler="flow_match_euler")
    with pytest.raises(ValueError, match=r"^grid: FlowMatchEulerDiscreteScheduler is given flow times"):
        to_diffusers([0.0, 0.5], grid=g, scheduler="flow_match_euler")
    on_grid = g[[900, 500, 100]]  # noisiest first
    assert to_diffusers(on_grid, grid=g, rtol=1e-6) == {"timesteps": [900, 500, 100]}
    assert to_diffusers(on_grid, grid=g, rtol=1e-6, scheduler="DDPMScheduler") == {"timesteps": [900, 500, 100]}
    assert "sigmas" in to_diffusers(ab) and "sigmas" in to_diffusers(ab, grid=g, scheduler="EulerDiscreteScheduler")


def test_a_scheduler_without_custom_schedules_is_refused_without_the_non_linear_warning() -> None:
    """DDIMScheduler() (clip_sample=True by default) got the warning to configure clip_sample=False, then the refusal
    that it takes no custom schedule at all: the warning is for a run that exists."""
    from diffusers_standin import Config

    class DDIMScheduler:
        config = Config(num_train_timesteps=1000, clip_sample=True)
        alphas_cumprod = symsched.schedules.training_grid("linear")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^scheduler: DDIMScheduler.set_timesteps takes no custom schedule"):
            to_diffusers(symsched.schedules.training_grid("linear")[[900, 500, 100]], scheduler=DDIMScheduler())


@pytest.mark.parametrize("kind", ["exponential", "linear"])
def test_flow_times_the_identity_mu_keeps_apart_are_exported(kind: str) -> None:
    """The other side of the float32-shift check: alpha_bar 0 and 3.6e-15 (float32 t = 1 and 1 - 6e-8) stay apart
    under the identity mu of either time_shift_type (mu = 0: e^0/(e^0 + 1/t - 1); mu = 1: 1/(1 + 1/t - 1)), where
    the exponential formula at mu = 1 would merge them (e/(e + 6e-8) rounds to 1 in float32)."""
    from diffusers_standin import Config

    class FlowMatchEulerDiscreteScheduler:
        config = Config(use_dynamic_shifting=True, time_shift_type=kind)

    ab = [0.0, 3.6e-15, 0.5]
    got = to_diffusers(ab, scheduler=FlowMatchEulerDiscreteScheduler())
    assert got["mu"] == (0.0 if kind == "exponential" else 1.0)
    t32 = np.asarray(got["sigmas"], dtype=np.float32)
    assert np.float32(math.e) / (np.float32(math.e) + (1 / t32[1] - 1)) == 1.0  # the premise: e-shift merges
    d = pytest.importorskip("diffusers")  # witness: diffusers runs three distinct flow times
    sch = d.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, time_shift_type=kind)
    sch.set_timesteps(**got)
    assert np.all(np.diff(sch.sigmas[:-1].double().numpy()) < 0)


# -- ComfyUI's ManualSigmas text -----------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha_bar", [[1e-4, 0.02, 0.5, 0.9], [4.0358e-5, 0.3, 0.99999], [1e-30, 0.5],
                                       [0.1, 0.1000001, 0.9], [0.5, 1 - 1e-10]])  # (sigma 1e-5: repr is 1e-05)
def test_comfyui_text_reads_back_as_the_float32_sigmas(alpha_bar) -> None:
    """Audit of 6 December: no ComfyUI export. The node's number pattern knows no exponent (1.5e-05 reads as 1.5 and
    -05): the text is positional and reads back, through the node's own rule, as the float32 sigmas and a 0."""
    from symsched import export
    from symsched.schedules import alpha_bar_to_sigmas

    text = export.to_comfyui_sigmas(alpha_bar)
    assert "e" not in text.lower() and text.endswith(", 0")
    want = np.append(alpha_bar_to_sigmas(np.array(alpha_bar)).astype(np.float32), np.float32(0))
    np.testing.assert_array_equal(comfyui_reads(text), want)


def test_comfyui_flow_text_is_flow_time_from_one() -> None:
    from symsched import export
    from symsched.schedules import alpha_bar_to_flow_t

    ab = np.array([0.0, 0.01, 0.3, 0.9])
    text = export.to_comfyui_sigmas(ab, flow=True)
    assert text.startswith("1, ")
    np.testing.assert_array_equal(comfyui_reads(text), np.append(alpha_bar_to_flow_t(ab), 0).astype(np.float32))


@pytest.mark.parametrize("alpha_bar, flow, match", [
    ([0.0, 0.5], False, r"the first level is 0 .* \(flow=True\)"),
    ([1e-300, 0.5], False, "beyond 1.845e[+]19, where ComfyUI's float32 start sqrt"),
    ([2e-39, 0.5], False, "sigma 2.23607e[+]19, beyond 1.845e[+]19"),  # (float32 holds it; sqrt(1 + s^2) does not)
    ([0.3, 0.30000000001, 0.9], False, "map to the same VE sigma .* in float32, to which ManualSigmas converts"),
    ([1e-20, 2e-20, 0.5], True, "map to the same flow time t 1.0 in float32"),
])
def test_comfyui_text_refuses_what_the_node_cannot_hold(alpha_bar, flow, match) -> None:
    from symsched import export

    with pytest.raises(ValueError, match=match):
        export.to_comfyui_sigmas(alpha_bar, flow=flow)


def test_to_diffusers_warns_of_fixed_large_noise_on_a_last_timestep_above_zero() -> None:
    """Witness gap hunt (6 December): to_diffusers exported timesteps ending at t = 5 for DDPMScheduler(variance_type=
    'fixed_large') without a word, though diffusers then draws noise of variance 1 - alphas_cumprod[5] on that last step
    (88 % above output_spectrum(..., 'ddpm', variance='beta') at S = 1e-3); from_diffusers adds it, the export says so.
    The variance named is 1 - grid[5] of the linear grid, computed here from its betas, not by the export."""
    from diffusers_standin import Config

    class DDPMScheduler:
        pass

    grid = symsched.schedules.training_grid("linear")
    DDPMScheduler.alphas_cumprod = grid
    ab = grid[[900, 500, 5]]
    beta = 1.0 - np.prod(1.0 - np.linspace(1e-4, 0.02, 1000)[:6])  # Ho et al.'s linear betas, t = 0..5
    DDPMScheduler.config = Config(num_train_timesteps=1000, clip_sample=False, variance_type="fixed_large")
    with pytest.warns(UserWarning, match=rf"^scheduler: DDPMScheduler with variance_type='fixed_large' adds noise of "
                                         rf"variance beta = 1 - alpha_bar = {beta:.4g} on its last step \(timestep 5"):
        assert to_diffusers(ab, scheduler=DDPMScheduler()) == {"timesteps": [900, 500, 5]}
    for variance_type, last in (("fixed_small", 5), ("fixed_large", 0)):  # no last noise: no warning
        DDPMScheduler.config = Config(num_train_timesteps=1000, clip_sample=False, variance_type=variance_type)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert to_diffusers(grid[[900, 500, last]], scheduler=DDPMScheduler())["timesteps"][-1] == last


def test_the_float32_note_of_the_euler_readers_names_a_float64_run() -> None:
    """EulerDiscreteScheduler.step rounds its sample to float32 whatever the dtypes (diffusers 0.42.1), so its float32
    note names k-diffusion's float64 sample_euler as the run the closed form describes, not a cast of the scheduler's
    sigmas (witnessed in tests/test_diffusers_witness.py); Heun keeps the cast (the companion)."""
    from diffusers_standin import EulerDiscreteScheduler, HeunDiscreteScheduler

    for cls, says, never in ((EulerDiscreteScheduler, "k-diffusion's sample_euler in float64", "diffusers runs it"),
                             (HeunDiscreteScheduler, "with scheduler.sigmas cast to float64 diffusers runs it",
                              "k-diffusion")):
        sch = cls(beta_schedule="squaredcos_cap_v2")
        sch.set_timesteps(5)
        notes = " ".join(n for n in from_diffusers(sch).notes if "6e-8" in n)
        assert says in notes and never not in notes, (cls.__name__, notes)


def test_a_grid_that_is_not_the_schedulers_own_is_refused() -> None:
    """Break-test of 7 December: to_diffusers(ab, grid=training_grid("linear"), scheduler=<a scaled_linear
    DDPMScheduler>) matched the levels on the linear grid and returned timesteps [999, 799, ...], which the scheduler
    runs on its own alphas_cumprod: levels up to 115x from the exported ones (predicted PSD 20 % off with
    HeunDiscreteScheduler's defaults), silently. A grid that differs from the instance's is refused, naming grid and
    the first timestep off; the scheduler's own grid, or the exact float64 grid of its configuration (float32
    rounding apart), is accepted with the timesteps the scheduler runs them at (the companions)."""
    from diffusers_standin import DDPMScheduler

    from symsched import schedules

    ab = schedules.standard_schedule("linear-trailing", 5)
    sd = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    with pytest.raises(ValueError, match=r"^grid: grid\[999\] = 4\.03583e-05, but the DDPMScheduler given runs "
                                         r"alphas_cumprod\[999\] = 0\.004660"):
        to_diffusers(ab, grid=schedules.training_grid("linear"), scheduler=sd)
    with pytest.raises(ValueError, match=r"^grid: 500 timesteps, but the DDPMScheduler given has 1000"):
        to_diffusers(ab, grid=schedules.training_grid("linear", num_train_timesteps=500), scheduler=sd)
    lin = DDPMScheduler(clip_sample=False)
    expect = {"timesteps": [999, 799, 599, 399, 199]}
    exact = schedules.training_grid("linear")
    assert np.max(np.abs(np.log(exact) / np.log(lin.alphas_cumprod.astype(np.float64)) - 1.0)) > 0  # float32 apart
    assert to_diffusers(ab, grid=exact, scheduler=lin) == expect
    assert to_diffusers(ab, grid=lin.alphas_cumprod, scheduler=lin) == expect
    assert to_diffusers(ab, scheduler=lin) == expect
