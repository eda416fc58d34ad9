"""Witness: diffusers' own schedulers, driven by the exact (Wiener) denoiser, sample the PSD symsched predicts.

The "model" is the exact MMSE denoiser of a Gaussian stationary field, evaluated by FFT at the
level diffusers says the sample is at (``alphas_cumprod[t]``, or ``sigmas[i]`` for Euler). The
periodogram of what ``scheduler.step`` returns is compared with the closed form of
:func:`symsched.export.from_diffusers` at family-wise false-alarm level 1e-6 per test (exact
chi^2 z-scores, Bonferroni over independent bins; see ``mc_helpers``).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import symsched  # noqa: E402
from symsched import montecarlo as mc  # noqa: E402
from symsched.export import from_diffusers, to_diffusers  # noqa: E402

from mc_helpers import assert_psd_matches, assert_psd_rejects, make_spectrum  # noqa: E402

pytestmark = [
    pytest.mark.diffusers,
    # numpy 2 warns about diffusers' own np.array(tensor) calls; not ours to fix
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

SHAPE = (16, 16)
S = make_spectrum(SHAPE, "power", exponent=2.0, scale=20.0)
N = 3000


def run_diffusers(scheduler, *, n=N, seed=0, eta=None, model="eps"):
    """The usual pipeline loop on (n, 1, 16, 16) float64 tensors; returns (n, 16, 16) numpy."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 1, *SHAPE), generator=g, dtype=torch.float64) * float(scheduler.init_noise_sigma)
    # Heun: step i calls the model at sigmas[i] too (a corrector's sample already stands at the level it completes)
    euler = isinstance(scheduler, (diffusers.EulerDiscreteScheduler, diffusers.HeunDiscreteScheduler))
    for i, t in enumerate(scheduler.timesteps):
        if euler:
            sigma = float(scheduler.sigmas[i])
            ab = 1.0 / (1.0 + sigma**2)
            model_in = scheduler.scale_model_input(x, t)
        else:
            ab = float(scheduler.alphas_cumprod[int(t)])
            model_in = x
        out = mc.wiener_denoiser(model_in.numpy(), S, ab, output="x0" if model == "x0" else "eps")
        out = torch.from_numpy(out)
        if euler:
            x = scheduler.step(out, t, x).prev_sample
        elif isinstance(scheduler, diffusers.DDIMScheduler):
            x = scheduler.step(out, t, x, eta=eta, generator=g).prev_sample
        else:
            x = scheduler.step(out, t, x, generator=g).prev_sample
    return x.to(torch.float64).numpy()[:, 0]


def check(scheduler, *, eta=0.0, seed=0, model="eps"):
    info = from_diffusers(scheduler, eta=eta)
    x = run_diffusers(scheduler, seed=seed, eta=eta, model=model)
    psd = mc.empirical_psd(info.denoise_final(x, S))
    P = info.output_spectrum(S)
    assert_psd_matches(psd, P, N, what=f"{info.scheduler} {info.notes}")
    return info, psd


DDIM_CASES = [
    # beta schedule, timestep_spacing, steps_offset, set_alpha_to_one, K, eta
    ("linear", "leading", 0, True, 10, 0.0),
    ("linear", "trailing", 0, True, 20, 1.0),
    ("scaled_linear", "leading", 1, False, 25, 0.5),  # Stable Diffusion's configuration
    ("scaled_linear", "trailing", 0, False, 8, 0.0),
    ("squaredcos_cap_v2", "trailing", 0, True, 5, 0.3),
    ("squaredcos_cap_v2", "leading", 0, False, 4, 1.0),
    # Stable Diffusion's configuration at 501 steps: T // K = 1, timesteps 501 ... 1, the last step 1 -> 0 stops at
    # alphas_cumprod[0] whatever set_alpha_to_one says (audit of 6 December: refused as "not a DDIM schedule")
    ("scaled_linear", "leading", 1, True, 501, 0.0),
]


@pytest.mark.parametrize("schedule,spacing,offset,to_one,K,eta", DDIM_CASES)
def test_ddim_scheduler_matches_closed_form(schedule, spacing, offset, to_one, K, eta):
    sch = diffusers.DDIMScheduler(beta_schedule=schedule, timestep_spacing=spacing, steps_offset=offset,
                                  set_alpha_to_one=to_one, clip_sample=False, beta_end=0.012
                                  if schedule == "scaled_linear" else 0.02, beta_start=0.00085
                                  if schedule == "scaled_linear" else 1e-4)
    sch.set_timesteps(K)
    info, _ = check(sch, eta=eta, seed=K)
    assert info.sampler == "ddim" and info.consistent
    last = int(sch.timesteps[-1]) - 1000 // K  # where DDIMScheduler.step takes the last step
    final = float(sch.alphas_cumprod[last]) if last >= 0 else 1.0 if to_one else float(sch.alphas_cumprod[0])
    assert info.final_alpha_bar == final and info.steps[-1][1] == final
    assert (final == 1.0) == (to_one and last < 0)
    np.testing.assert_array_equal(info.alpha_bar[:K], sch.alphas_cumprod.double().numpy()[sch.timesteps.numpy()])


def test_ddim_trained_betas_and_x0_prediction():
    betas = np.geomspace(1e-4, 0.05, 200)
    sch = diffusers.DDIMScheduler(num_train_timesteps=200, trained_betas=betas, clip_sample=False,
                                  prediction_type="sample", timestep_spacing="trailing")
    sch.set_timesteps(10)
    info, _ = check(sch, eta=0.7, seed=3, model="x0")
    np.testing.assert_allclose(info.alpha_bar, np.cumprod(1 - betas.astype(np.float32))[sch.timesteps.numpy()],
                               rtol=1e-6)


def test_ddim_set_alpha_to_one_false_really_stops_early():
    """With set_alpha_to_one=False the output sits at alphas_cumprod[0] < 1 (noisy); after the final
    exact x0 step (denoise_final) it matches the closed form, before it does not.

    With the usual grids alphas_cumprod[0] ~ 0.9999 and the difference is ~1e-4 of the PSD (not
    measurable here), so the grid below starts with beta_0 = 0.05 to make it visible.
    """
    betas = np.linspace(0.05, 0.3, 50)
    sch = diffusers.DDIMScheduler(num_train_timesteps=50, trained_betas=betas, timestep_spacing="trailing",
                                  set_alpha_to_one=False, clip_sample=False)
    sch.set_timesteps(5)
    info = from_diffusers(sch)
    assert info.final_alpha_bar == pytest.approx(0.95, rel=1e-6)
    assert info.alpha_bar[-1] == info.final_alpha_bar and info.alpha_bar.size == 6
    x = run_diffusers(sch, seed=1, eta=0.0)
    P = info.output_spectrum(S)
    assert_psd_matches(mc.empirical_psd(info.denoise_final(x, S)), P, N, what="after denoise_final")
    assert_psd_rejects(mc.empirical_psd(x), P, N, what="raw noisy output")


def test_ddim_linspace_is_not_a_schedule():
    """diffusers DDIM steps to t - T//K but calls the model at the next 'linspace' timestep."""
    sch = diffusers.DDIMScheduler(timestep_spacing="linspace", clip_sample=False)
    sch.set_timesteps(3)  # timesteps 999, 500, 0; steps 999 -> 666, 500 -> 167, 0 -> 1
    with pytest.raises(ValueError, match="not a DDIM schedule"):
        from_diffusers(sch)
    info = from_diffusers(sch, strict=False)
    assert not info.consistent and any("666" in s for s in info.notes)
    with pytest.raises(ValueError, match="not consistent"):
        info.output_spectrum(S)
    # what it samples is indeed not the DDIM PSD of the levels it evaluates the model at
    x = run_diffusers(sch, seed=2, eta=0.0)
    naive = symsched.output_spectrum(S, sch.alphas_cumprod.double().numpy()[sch.timesteps.numpy()], sampler="ddim")
    assert_psd_rejects(mc.empirical_psd(x), naive, N, what="linspace DDIM vs naive schedule")


DDPM_CASES = [
    # beta schedule, timestep_spacing, variance_type, K
    ("linear", "leading", "fixed_small", 10),
    ("linear", "trailing", "fixed_large", 10),  # diffusers adds beta noise on its last step (t=99)
    ("linear", "linspace", "fixed_large", 12),
    ("scaled_linear", "trailing", "fixed_small", 20),
    ("squaredcos_cap_v2", "linspace", "fixed_small_log", 15),
    ("squaredcos_cap_v2", "leading", "fixed_large", 6),
]


@pytest.mark.parametrize("schedule,spacing,variance_type,K", DDPM_CASES)
def test_ddpm_scheduler_matches_closed_form(schedule, spacing, variance_type, K):
    sch = diffusers.DDPMScheduler(beta_schedule=schedule, timestep_spacing=spacing, variance_type=variance_type,
                                  clip_sample=False)
    sch.set_timesteps(K)
    info, psd = check(sch, seed=100 + K)
    assert info.sampler == "ddpm"
    assert info.variance == ("beta" if variance_type == "fixed_large" else "posterior")
    if spacing == "trailing" and variance_type == "fixed_large":
        # the last-step noise is real: the closed form without it is rejected
        assert info.final_noise_variance > 1e-3
        bare = symsched.output_spectrum(S, info.alpha_bar, sampler="ddpm", variance="beta")
        assert_psd_rejects(psd, bare, N, what="fixed_large final-step noise ignored")


def test_ddpm_variance_swap_is_detected_through_diffusers():
    sch = diffusers.DDPMScheduler(variance_type="fixed_small", clip_sample=False)
    sch.set_timesteps(4)
    info = from_diffusers(sch)
    x = run_diffusers(sch, seed=9)
    wrong = symsched.output_spectrum(S, info.alpha_bar, sampler="ddpm", variance="beta")
    assert_psd_rejects(mc.empirical_psd(x), wrong, N, what="fixed_small vs beta")


def test_ddpm_custom_timesteps_from_to_diffusers():
    """A symsched schedule on the training grid runs in diffusers via set_timesteps(timesteps=...)."""
    sch = diffusers.DDPMScheduler(clip_sample=False, variance_type="fixed_small")
    grid = sch.alphas_cumprod
    t = np.array([980, 700, 420, 250, 120, 40, 5])
    ab = grid.double().numpy()[t]
    kw = to_diffusers(ab, grid=grid)
    assert kw == {"timesteps": t.tolist()}
    sch.set_timesteps(**kw)
    info, _ = check(sch, seed=5)
    np.testing.assert_array_equal(info.alpha_bar, ab)


def test_euler_with_symsched_sigmas():
    """EulerDiscreteScheduler.set_timesteps(sigmas=...) from to_diffusers == VE Euler closed form."""
    ab = np.array([0.002, 0.02, 0.1, 0.3, 0.6, 0.9])
    sch = diffusers.EulerDiscreteScheduler()
    sch.set_timesteps(**to_diffusers(ab))
    info, psd = check(sch, seed=7)
    assert info.sampler == "euler" and info.init_variance == pytest.approx(info.sigmas[0] ** 2, rel=1e-6)
    # Euler with the exact denoiser is deterministic DDIM (MATH 7.3)
    ddim = symsched.output_spectrum_ve(S, info.sigmas, sampler="euler")
    np.testing.assert_allclose(info.output_spectrum(S), ddim, rtol=1e-12)


@pytest.mark.parametrize("spacing,final,interpolation", [("leading", "zero", "linear"),
                                                         ("trailing", "sigma_min", "linear"),
                                                         ("linspace", "zero", "log_linear")])
def test_euler_scheduler_spacings(spacing, final, interpolation):
    """log_linear: K + 1 sigmas for K timesteps, so diffusers' loop stops at sigma_min > 0 (not 0)."""
    sch = diffusers.EulerDiscreteScheduler(timestep_spacing=spacing, final_sigmas_type=final,
                                           interpolation_type=interpolation)
    sch.set_timesteps(12)
    info, _ = check(sch, seed=11)
    if spacing == "leading":  # init_noise_sigma = sqrt(sigma_max^2 + 1): the VP white start
        # (init_noise_sigma is a float32 tensor in diffusers, hence rtol 1e-6)
        np.testing.assert_allclose(info.output_spectrum(S),
                                   symsched.output_spectrum(S, info.alpha_bar, sampler="ddim"), rtol=1e-6)
    assert (info.final_alpha_bar < 1.0) == (final == "sigma_min" or interpolation == "log_linear")


def test_repeated_first_timestep_is_noted_and_the_closed_form_is_the_loop_from_step_0():
    """Karras sigmas up to 80 on SD's grid (sigma_max 14.6): diffusers clamps the first four timesteps to 999, and
    index_for_timestep then starts a loop without set_begin_index(0) at the second of them, which fails at its last
    step (what StableDiffusionPipeline runs). from_diffusers says so; the loop started at step 0 (what
    StableDiffusionXLPipeline runs) is the closed form, probed exactly."""
    from diffusers_helpers import F64_SAMPLE32_TOL, excess, gain_probe

    modes = np.logspace(-3, 3, 8)
    cfg = dict(use_karras_sigmas=True, sigma_min=0.002, sigma_max=80.0, beta_schedule="scaled_linear",
               beta_start=0.00085, beta_end=0.012)
    sch = diffusers.EulerDiscreteScheduler(**cfg)
    sch.set_timesteps(12)
    assert int((sch.timesteps == sch.timesteps[0]).sum()) == 4
    info = from_diffusers(sch)
    assert any("999 4 times" in n and "set_begin_index(0)" in n for n in info.notes)
    with pytest.raises(IndexError):  # the note's claim, on diffusers' own plain loop
        gain_probe(sch, modes, dtype=torch.float64, upcast_sigmas=True)
    sch = diffusers.EulerDiscreteScheduler(**cfg)
    sch.set_timesteps(12)
    sch.set_begin_index(0)
    assert not any("set_begin_index" in n for n in from_diffusers(sch).notes)
    H_lib = gain_probe(sch, modes, dtype=torch.float64, upcast_sigmas=True)
    assert excess(H_lib, info.transfer_function(modes), F64_SAMPLE32_TOL) <= 1.0


# ------------------------------------------------------------------------------------------------
# the diffusers-free stand-ins of tests/test_export.py model these classes faithfully
# ------------------------------------------------------------------------------------------------
STANDIN_CASES = [
    (cls, dict(beta_schedule=sched, timestep_spacing=spacing, **extra), K)
    for cls, extra in [("DDIMScheduler", dict(set_alpha_to_one=False)), ("DDIMScheduler", dict(steps_offset=1)),
                       ("DDPMScheduler", dict(variance_type="fixed_large")),
                       ("EulerDiscreteScheduler", dict(final_sigmas_type="sigma_min")),
                       ("EulerDiscreteScheduler", dict(interpolation_type="log_linear")),
                       ("EulerDiscreteScheduler", {}), ("HeunDiscreteScheduler", {})]
    for sched in ("linear", "scaled_linear", "squaredcos_cap_v2")
    for spacing in ("leading", "trailing", "linspace")
    for K in (1, 7, 10)
]


def test_standin_schedulers_match_diffusers():
    """Same timesteps, levels, final level, sigmas and initial noise as diffusers (float32 rounding aside),
    hence the same from_diffusers reading."""
    import diffusers_standin

    def arr(x):
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float64)

    for cls, kw, K in STANDIN_CASES:
        if cls not in ("EulerDiscreteScheduler", "HeunDiscreteScheduler"):
            kw = dict(kw, clip_sample=False)
        real, fake = getattr(diffusers, cls)(**kw), getattr(diffusers_standin, cls)(**kw)
        for stage in ("init", "set_timesteps"):
            if stage == "set_timesteps":
                real.set_timesteps(K)
                fake.set_timesteps(K)
            what = f"{cls} {kw} K={K} {stage}"
            assert fake.num_inference_steps == real.num_inference_steps, what
            np.testing.assert_array_equal(arr(fake.timesteps), arr(real.timesteps), err_msg=what)
            # torch.linspace and np.linspace differ in the last float32 bit of some betas
            np.testing.assert_allclose(arr(fake.alphas_cumprod), arr(real.alphas_cumprod), rtol=2e-6, err_msg=what)
            np.testing.assert_allclose(float(fake.init_noise_sigma), float(real.init_noise_sigma), rtol=2e-6, err_msg=what)
            if cls == "DDIMScheduler":
                np.testing.assert_allclose(float(fake.final_alpha_cumprod), float(real.final_alpha_cumprod), rtol=2e-6)
            if cls in ("EulerDiscreteScheduler", "HeunDiscreteScheduler"):
                np.testing.assert_allclose(arr(fake.sigmas), arr(real.sigmas), rtol=2e-6, err_msg=what)
        a, b = from_diffusers(real, strict=False), from_diffusers(fake, strict=False)
        assert (a.sampler, a.consistent, a.variance, a.notes != ()) == (b.sampler, b.consistent, b.variance, b.notes != ())
        np.testing.assert_allclose(b.alpha_bar, a.alpha_bar, rtol=2e-6, err_msg=f"{cls} {kw} K={K}")
        np.testing.assert_allclose(np.array(b.steps), np.array(a.steps), rtol=2e-6)
        assert b.final_alpha_bar == pytest.approx(a.final_alpha_bar, rel=2e-6)
        assert b.init_variance == pytest.approx(a.init_variance, rel=4e-6)


@pytest.mark.parametrize("beta_schedule, spacing, K, prediction", [
    ("scaled_linear", "leading", 6, "epsilon"), ("linear", "trailing", 10, "v_prediction"),
    ("squaredcos_cap_v2", "linspace", 4, "epsilon"),
])
def test_heun_discrete_scheduler_is_k_diffusion_heun(beta_schedule, spacing, K, prediction):
    """Break-test I: HeunDiscreteScheduler (diffusers' own 2K - 1 step calls, the exact denoiser) against
    from_diffusers' closed form: k-diffusion's sample_heun on the predictors' sigmas, started at init_noise_sigma."""
    sch = diffusers.HeunDiscreteScheduler(beta_schedule=beta_schedule, timestep_spacing=spacing,
                                          prediction_type=prediction)
    sch.set_timesteps(K)
    info = from_diffusers(sch)
    assert info.sampler == "heun" and info.sigmas.size == K and len(info.steps) == 2 * K - 1
    model = "eps"
    if prediction == "v_prediction":  # the v the scheduler reads: v = c eps - s x0 in the VP scale (x_in = x / sqrt(1 + sigma^2))
        model = "v"
    x = _run_heun(sch, model)
    psd = mc.empirical_psd(x)
    assert_psd_matches(psd, info.output_spectrum(S), N, what=f"HeunDiscreteScheduler {beta_schedule} {spacing} K={K}")


def _run_heun(scheduler, model):
    g = torch.Generator().manual_seed(3)
    x = torch.randn((N, 1, *SHAPE), generator=g, dtype=torch.float64) * float(scheduler.init_noise_sigma)
    for i, t in enumerate(scheduler.timesteps):
        sigma = float(scheduler.sigmas[i])
        ab = 1.0 / (1.0 + sigma**2)
        x_in = scheduler.scale_model_input(x, t).numpy()
        x0 = mc.wiener_denoiser(x_in, S, ab, output="x0")
        eps = mc.wiener_denoiser(x_in, S, ab, output="eps")
        out = np.sqrt(ab) * eps - np.sqrt(1 - ab) * x0 if model == "v" else eps
        x = scheduler.step(torch.from_numpy(out), t, x).prev_sample
    return x.to(torch.float64).numpy()[:, 0]


def test_heun_witness_rejects_the_euler_closed_form():
    """Companion: the same run is rejected against VE Euler on the same sigmas (a wrong formula)."""
    sch = diffusers.HeunDiscreteScheduler(beta_schedule="scaled_linear", timestep_spacing="leading")
    sch.set_timesteps(6)
    info = from_diffusers(sch)
    wrong = symsched.output_spectrum_ve(S, info.sigmas, sampler="euler") * (info.init_variance / info.sigmas[0] ** 2)
    assert_psd_rejects(mc.empirical_psd(_run_heun(sch, "eps")), wrong, N)


def test_the_float32_note_names_a_run_that_is_the_closed_form() -> None:
    """Break-test of 7 December: on squaredcos_cap_v2 (sigma_max 2e4) every sigma reader's float32 note said that with
    scheduler.sigmas cast to float64 diffusers runs the closed form; EulerDiscreteScheduler.step rounds the sample
    itself to float32, and with use_beta_sigmas (K = 3) that float64-sigma run is still 8.7 % off. Its note now
    points to k-diffusion's float64 sample_euler (which agrees), and Heun's and DPM-Solver's, whose float64-sigma
    runs do agree, keep the cast (the companions)."""
    from diffusers_helpers import F64_SAMPLE32_TOL, excess, gain_probe
    from kdiffusion_helpers import gain_probe as kd_gain_probe
    from kdiffusion_helpers import load_sampling

    modes = np.logspace(-3, 3, 13)

    def note_and_runs(cls: type, **cfg: object) -> tuple[str, np.ndarray, np.ndarray, object]:
        sch = cls(beta_schedule="squaredcos_cap_v2", **cfg)
        sch.set_timesteps(3)
        info = from_diffusers(sch)
        note = " ".join(n for n in info.notes if "6e-8" in n)
        return note, info.transfer_function(modes), gain_probe(sch, modes, dtype=torch.float64, upcast_sigmas=True), sch

    note, H, H64, sch = note_and_runs(diffusers.EulerDiscreteScheduler, use_beta_sigmas=True)
    assert "rounds the sample itself to float32" in note and "sample_euler in float64" in note, note
    assert "diffusers runs it" not in note
    assert np.max(np.abs(H64 / H - 1.0)) > 0.01  # the cast does not give the closed form here
    sigmas = sch.sigmas.to(torch.float64).numpy()
    assert sigmas[-1] == 0.0
    H_kd = kd_gain_probe(load_sampling(), "euler", modes, sigmas[:-1])
    np.testing.assert_allclose(H_kd, H, rtol=1e-8, atol=0)
    for cls in (diffusers.HeunDiscreteScheduler, diffusers.DPMSolverMultistepScheduler):
        note, H, H64, _ = note_and_runs(cls)
        assert "with scheduler.sigmas cast to float64 diffusers runs it" in note, (cls.__name__, note)
        assert excess(H64, H, F64_SAMPLE32_TOL) <= 1.0, cls.__name__
