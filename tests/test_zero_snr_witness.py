"""Witness (issue 11): diffusers' zero-terminal-SNR schedulers, driven by the exact v-prediction model, sample
the output variance symsched predicts.

``rescale_betas_zero_snr=True`` DDIM / DDPM / EulerDiscrete schedulers (Stable Diffusion's scaled-linear
betas, ``timestep_spacing="trailing"`` as Lin et al. recommend, ``prediction_type="v_prediction"``), K = 10,
one mode per tensor column. The model output comes from the definitions (``tests/diffusers_helpers.py``);
at ``alphas_cumprod = 0`` it is ``v = -x0_hat = 0``. DDIM and DDPM start at ``alpha_bar = 0`` exactly;
EulerDiscrete replaces that level by ``2**-24`` (sigma 4096) itself, which ``from_diffusers`` reads.

Each check: n = 4000 samples of 6 independent modes, ``n var_hat / P ~ chi2_n`` exactly (exact normal
scores), accepted when every |z| <= Phi^-1(1 - 1e-4 / 12): family-wise false alarm <= 1e-4 per check. The
power test runs the same check against the closed form that forgets the rescaling (the same timesteps on
the plain scaled-linear grid), which it must reject. (Dropping only the zero level is not a usable wrong
formula: from a white start it changes the output by the factor 1 - alpha_bar_1 ~ 0.997, below what
4000 samples resolve; test_ddim_first_step_from_zero_snr_only_scales checks that factor exactly.)
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import symsched  # noqa: E402
from symsched.export import from_diffusers, to_diffusers  # noqa: E402
from symsched.schedules import from_grid, training_grid  # noqa: E402

from diffusers_helpers import model_output  # noqa: E402
from mc_helpers import assert_psd_matches, assert_psd_rejects  # noqa: E402

pytestmark = [pytest.mark.diffusers,
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]

ALPHA = 1e-4
S = np.array([1e-3, 1e-1, 1.0, 30.0, 1e3, 1e4])  # the rescaling matters most for large modes
N = 4000
K = 10
CONFIG = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True,
              timestep_spacing="trailing", prediction_type="v_prediction")


def make(cls: str):
    kw = dict(CONFIG)
    if cls != "EulerDiscreteScheduler":
        kw["clip_sample"] = False
    if cls == "DDIMScheduler":
        kw["set_alpha_to_one"] = True
    s = getattr(diffusers, cls)(**kw)
    s.set_timesteps(K)
    return s


def run(s, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((N, S.size), generator=g, dtype=torch.float64) * float(s.init_noise_sigma)
    euler = isinstance(s, diffusers.EulerDiscreteScheduler)
    for i, t in enumerate(s.timesteps):
        if euler:
            sigma = float(s.sigmas[i])
            x_in = s.scale_model_input(x, t)
        else:
            ab = float(s.alphas_cumprod[int(t)])
            sigma = np.inf if ab == 0.0 else float(np.sqrt((1 - ab) / ab))
            x_in = x
        out = model_output(x_in, S, sigma, "v_prediction")
        kw = {} if euler else {"generator": g}
        if isinstance(s, diffusers.DDIMScheduler):
            kw["eta"] = 0.0
        x = s.step(out, t, x, **kw).prev_sample
    return x.to(torch.float64).numpy()


@pytest.mark.parametrize("cls", ["DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler"])
def test_zero_snr_scheduler_monte_carlo(cls: str) -> None:
    s = make(cls)
    info = from_diffusers(s)
    if cls != "EulerDiscreteScheduler":
        assert info.alpha_bar[0] == 0.0  # the zero-SNR level itself, no stand-in
    out = info.denoise_final(run(s, seed=3), S)
    psd = np.mean(out**2, axis=0)
    P = info.output_spectrum(S)
    assert np.all(np.isfinite(P))
    assert_psd_matches(psd, P, N, alpha=ALPHA, axes=(), what=f"{cls} zero SNR")
    # power: the closed form that forgets the rescaling (same timesteps on the plain scaled-linear grid) is rejected
    plain = training_grid("scaled_linear", beta_start=0.00085, beta_end=0.012)
    ab_wrong = from_grid(plain, np.asarray(s.timesteps, dtype=np.float64).round().astype(np.int64))
    wrong = symsched.output_spectrum(S, ab_wrong, sampler="ddpm" if cls == "DDPMScheduler" else "ddim")
    assert_psd_rejects(psd, wrong, N, alpha=ALPHA, axes=(), what=f"{cls} wrong closed form")


def test_ddim_first_step_from_zero_snr_only_scales() -> None:
    """Issue 11's right value, on diffusers' own levels: P = (1 - ab_1) P(ab[1:]) for DDIM eta = 0."""
    info = from_diffusers(make("DDIMScheduler"))
    ab = info.alpha_bar
    np.testing.assert_allclose(symsched.output_spectrum(S, ab), (1 - ab[1]) * symsched.output_spectrum(S, ab[1:]),
                               rtol=1e-13)


def _ddim_eta_run_float32(K: int, eta: float) -> "torch.Tensor":
    """diffusers' DDIM loop (zero SNR, Stable Diffusion's betas, v-prediction), float32 as pipelines run it, driven
    by the exact model: the witness for from_diffusers' verdict."""
    s = diffusers.DDIMScheduler(**CONFIG, clip_sample=False)
    s.set_timesteps(K)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((8, S.size), generator=g)
    for t in s.timesteps:
        ab = float(s.alphas_cumprod[int(t)])
        sigma = np.inf if ab == 0.0 else float(np.sqrt((1 - ab) / ab))
        out = model_output(x, S, sigma, "v_prediction").to(torch.float32)
        x = s.step(out, t, x, eta=eta, generator=g).prev_sample
    return x


#: step counts at which zero-SNR DDIM with eta = 1 may or may not run in diffusers' float32 loop. Which ones return
#: NaN depends on the last bits of float32 ``alphas_cumprod`` and on the machine (torch 2.13.0 CPU: 25 and 50 on one,
#: 10, 20 and 25 on another), so the witness is diffusers' own loop on the machine running the test, never a fixed list.
ETA_ONE_STEPS = (5, 8, 10, 20, 25, 40, 50, 100)  # divisors of T = 1000: DDIM trailing steps


def _eta_verdict(K: int, eta: float) -> bool:
    """Whether diffusers' own float32 loop (exact model) runs this schedule: True if every entry stays finite; a
    loop that goes non-finite must be NaN throughout (the first step's coefficient, not a stray mode)."""
    x = _ddim_eta_run_float32(K, eta)
    if bool(torch.isfinite(x).all()):
        return True
    assert bool(torch.isnan(x).all()), "a partly non-finite run is not the rounding fault these tests witness"
    return False


@pytest.mark.parametrize("K", ETA_ONE_STEPS)
def test_ddim_eta_one_from_zero_snr_is_refused_exactly_when_diffusers_cannot_run_it(K: int) -> None:
    """audit: from a zero-SNR first level DDIM's eta = 1 noise takes all of 1 - alpha_bar_prev, and diffusers'
    float32 ``1 - alpha_prod_t_prev - std_dev_t**2`` can round below 0: its run is NaN (shown on its own loop with
    the exact model). from_diffusers used to call every such schedule consistent; it now runs the scheduler's own
    loop once and refuses (strict) or notes it (strict=False, consistent=False) exactly the ones diffusers cannot
    run, and accepts the others, leaving the caller's scheduler untouched (it steps a copy)."""
    runs = _eta_verdict(K, 1.0)
    s = diffusers.DDIMScheduler(**CONFIG, clip_sample=False)
    s.set_timesteps(K)
    before = (s.timesteps.clone(), s.num_inference_steps, s.alphas_cumprod.clone())
    if runs:
        info = from_diffusers(s, eta=1.0)
        assert info.consistent and not any("cannot run" in n for n in info.notes)
        assert np.all(np.isfinite(info.output_spectrum(S)))
    else:
        with pytest.raises(ValueError, match=r"DDIMScheduler\.step with eta=1\.0 returns nan on step 0 "
                                             r"\(timestep 999\)"):
            from_diffusers(s, eta=1.0)
        info = from_diffusers(s, eta=1.0, strict=False)
        assert not info.consistent and "diffusers itself cannot run this schedule" in info.notes[-1]
        with pytest.raises(ValueError):
            info.output_spectrum(S)
    assert torch.equal(s.timesteps, before[0]) and s.num_inference_steps == before[1]
    assert torch.equal(s.alphas_cumprod, before[2])


def test_the_step_counts_diffusers_cannot_run_are_those_whose_first_coefficient_rounds_below_zero() -> None:
    """The README's reason, checked against the witness: diffusers' loop is NaN at exactly the step counts where its
    float32 ``1 - alpha_prod_t_prev - std_dev_t**2`` (typed in here, as DDIMScheduler.step forms it from the zero-SNR
    first level, eta = 1) rounds below 0. Skipped where no step count of ETA_ONE_STEPS does on this platform, so
    that the refusal branch above is known to be exercised wherever this passes."""
    runs = {K: _eta_verdict(K, 1.0) for K in ETA_ONE_STEPS}
    negative = {}
    for K in ETA_ONE_STEPS:
        s = diffusers.DDIMScheduler(**CONFIG, clip_sample=False)
        s.set_timesteps(K)
        prev = s.alphas_cumprod[int(s.timesteps[1])]  # float32, as step reads it
        variance = (1 - prev) / 1.0 * (1 - 0.0 / prev)  # beta_prod_t = 1 at alpha_prod_t = 0
        std = 1.0 * variance ** (0.5)
        negative[K] = float(1 - prev - std**2) < 0
    assert {K for K, ok in runs.items() if not ok} == {K for K, neg in negative.items() if neg}
    if all(runs.values()):
        pytest.skip("diffusers' float32 loop runs zero-SNR DDIM eta=1 at every step count tried on this platform")


@pytest.mark.parametrize("K", [10, 25, 50])
def test_ddim_eta_below_one_from_zero_snr_that_diffusers_runs_is_accepted(K: int) -> None:
    """eta = 0.999 leaves 1 - alpha_bar_prev - std**2 about 2e-3 (1 - alpha_bar_prev) away from 0, far beyond
    float32's rounding: diffusers runs it at every step count (its own loop shows it) and from_diffusers accepts it."""
    assert _eta_verdict(K, 0.999)
    s = diffusers.DDIMScheduler(**CONFIG, clip_sample=False)
    s.set_timesteps(K)
    info = from_diffusers(s, eta=0.999)
    assert info.consistent and not any("cannot run" in n for n in info.notes)


def test_export_matches_a_float32_zero_snr_grid_within_the_rescale_margin() -> None:
    """Audit fault 7e: export._float32_log_tolerance adds 8 roundings of the zero-SNR rescale to the cumulative
    product's float32 bound (`+ 8.0` -> `+ 0.0` survived the suite). On a short zero-SNR grid the rescale's
    roundings dominate: diffusers' float32 sigmoid grid with T = 20 differs from symsched's float64 one by 25 u at
    t = 2 (u = 2**-24), beyond the product bound alone (12 u there). Every level of the float64 grid must still
    export to its own timestep of the real diffusers scheduler."""
    kw = dict(beta_schedule="sigmoid", beta_start=1e-4, beta_end=0.02)
    s = diffusers.DDPMScheduler(num_train_timesteps=20, rescale_betas_zero_snr=True, clip_sample=False,
                                prediction_type="v_prediction", **kw)  # (epsilon cannot run level 0: refused)
    exact = training_grid("sigmoid", num_train_timesteps=20, rescale_zero_snr=True, beta_start=1e-4, beta_end=0.02)
    g32 = s.alphas_cumprod.double().numpy()
    assert g32[-1] == 0.0 and exact[-1] == 0.0 and not np.array_equal(exact[:-1], g32[:-1])  # float32 vs float64
    out = to_diffusers(exact[::-1], scheduler=s)  # noisiest first: every timestep, 19 .. 0
    assert out == {"timesteps": list(range(19, -1, -1))}


@pytest.mark.parametrize("cls,extra", [("DPMSolverMultistepScheduler", {}),
                                       ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"})])
def test_a_zero_snr_multistep_scheduler_round_trips(cls: str, extra: dict) -> None:
    """Audit of 4 December: from_diffusers reads the zero-SNR stand-in 2**-24 back from diffusers' float32 sigma
    4096 as 1/(1 + 2**24), 6e-8 relative below 2**-24, and to_diffusers matched the stand-in only when equal: the
    round trip of a trailing zero-SNR DPMSolverMultistepScheduler raised "not on the grid (nearest: grid[998])"."""
    cfg = dict(CONFIG, timestep_spacing="trailing", prediction_type="v_prediction", **extra)
    sch = getattr(diffusers, cls)(**cfg)
    sch.set_timesteps(K)
    info = from_diffusers(sch)
    assert info.alpha_bar[0] != 2.0**-24 and abs(info.alpha_bar[0] / 2.0**-24 - 1) < 1e-6  # what it reads back
    kw = to_diffusers(info.alpha_bar, scheduler=getattr(diffusers, cls)(**cfg))
    want = [int(t) for t in sch.timesteps]
    assert want[0] == 999 and kw["timesteps"] == want
    again = getattr(diffusers, cls)(**cfg)
    again.set_timesteps(**kw)
    np.testing.assert_array_equal(again.sigmas.numpy(), sch.sigmas.numpy())
