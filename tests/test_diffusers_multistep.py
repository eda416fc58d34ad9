"""Witness: diffusers' multistep schedulers, driven by the exact denoiser, have the transfer function
symsched predicts (noise-free gain probe), and the places where diffusers departs from a plain
schedule are real (DEIS noise floor, UniPC's last corrector, UniPC NaN/inf settings).

Probe: x_T = 1 in every mode, noise off (SDE-DPM-Solver: ``variance_noise=0``; Euler ancestral: its
``randn_tensor`` returning zeros), compared with ``from_diffusers(scheduler).transfer_function(S)``
on the float32 levels the scheduler holds, at the tolerances of ``diffusers_helpers`` (float32,
diffusers' default: 5e-4 relative + 5e-5; float64 with the scheduler's sigmas upcast: 1e-10 for UniPC
and DEIS, 2e-6 for DPM-Solver and Euler ancestral, whose ``step`` rounds the sample to float32). Every
probe test has a power companion: a wrong variant (another order, no lower-order final step, midpoint
for heun, bh2 for bh1, ...) misses by more than 100 times the float64 tolerance.
The Monte Carlo output-variance checks are in ``test_diffusers_multistep_mc.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from diffusers_helpers import diffusers, excess, fresh, gain_probe, probe_tolerance, torch

import symsched  # noqa: E402
from symsched.export import from_diffusers  # noqa: E402

pytestmark = [
    pytest.mark.diffusers,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning"),  # diffusers DEIS
]

S = np.logspace(-4, 3, 15)

DPM = diffusers.DPMSolverMultistepScheduler
UNIPC = diffusers.UniPCMultistepScheduler
DEIS = diffusers.DEISMultistepScheduler
EA = diffusers.EulerAncestralDiscreteScheduler

#: (class, config, K): every option of the issue, the lower-order ramp (< 15 and >= 15 steps; DPM-Solver and DEIS
#: at K = 14 and 15, either side of diffusers' ``len(timesteps) < 15``; UniPC, which has no such cutoff, there too),
#: both final levels, the three spacings, Karras sigmas, zero-terminal-SNR betas and all prediction types.
CASES = [
    (DPM, {}, 10),
    (DPM, dict(solver_order=3), 10),
    (DPM, dict(solver_order=3), 20),
    (DPM, dict(solver_order=3), 14),  # the last K with the lower-order ramp (K = 15 below: none)
    (DPM, dict(solver_order=3, final_sigmas_type="sigma_min"), 14),
    (DPM, dict(solver_order=1, timestep_spacing="trailing"), 8),
    (DPM, dict(solver_type="heun", final_sigmas_type="sigma_min"), 12),
    (DPM, dict(solver_order=3, lower_order_final=False, final_sigmas_type="sigma_min"), 10),
    (DPM, dict(euler_at_final=True, final_sigmas_type="sigma_min"), 16),
    (DPM, dict(solver_order=3, final_sigmas_type="sigma_min"), 16),
    (DPM, dict(algorithm_type="sde-dpmsolver++"), 10),
    (DPM, dict(algorithm_type="sde-dpmsolver++", solver_type="heun", solver_order=3), 15),
    (DPM, dict(use_karras_sigmas=True, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012), 10),
    (DPM, dict(prediction_type="v_prediction", timestep_spacing="leading", steps_offset=1), 9),
    (DPM, dict(prediction_type="sample", rescale_betas_zero_snr=True, timestep_spacing="trailing"), 10),
    (UNIPC, {}, 10),
    (UNIPC, dict(solver_order=3), 10),
    (UNIPC, dict(solver_order=3), 20),
    (UNIPC, dict(solver_order=3), 14),  # UniPC lowers the final orders at any K: no cutoff at 15
    (UNIPC, dict(solver_order=3), 15),
    (UNIPC, dict(solver_order=3, final_sigmas_type="sigma_min"), 15),
    (UNIPC, dict(solver_order=3, solver_type="bh1", final_sigmas_type="sigma_min"), 10),
    (UNIPC, dict(solver_order=1), 6),
    (UNIPC, dict(solver_order=3, lower_order_final=False, final_sigmas_type="sigma_min"), 8),
    (UNIPC, dict(use_karras_sigmas=True, prediction_type="v_prediction"), 12),
    (UNIPC, dict(prediction_type="sample", timestep_spacing="trailing"), 7),
    (DEIS, {}, 10),
    (DEIS, dict(solver_order=3), 10),
    (DEIS, dict(solver_order=3, lower_order_final=False), 12),
    (DEIS, dict(solver_order=3), 18),
    (DEIS, dict(solver_order=3), 14),  # both sides of diffusers' `len(timesteps) < 15`
    (DEIS, dict(solver_order=3), 15),
    (DEIS, dict(solver_order=1, prediction_type="sample"), 6),
    (DEIS, dict(prediction_type="v_prediction", timestep_spacing="trailing"), 9),
    (EA, {}, 10),
    (EA, dict(timestep_spacing="leading"), 12),
    (EA, dict(timestep_spacing="trailing", prediction_type="v_prediction"), 8),
]


def _id(case):
    cls, cfg, K = case
    return f"{cls.__name__[:5]}-{'-'.join(f'{k}={v}' for k, v in cfg.items()) or 'default'}-K{K}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_gain_probe_matches_transfer_function(case):
    cls, cfg, K = case
    sch = fresh(cls(**cfg), K)
    info = from_diffusers(sch)
    H = info.transfer_function(S)
    for dtype in (torch.float32, torch.float64):
        H_lib = gain_probe(fresh(cls(**cfg), K), S, dtype=dtype, upcast_sigmas=dtype == torch.float64)
        tol = probe_tolerance(sch, dtype)
        assert excess(H_lib, H, tol) <= 1.0, (
            f"{info.scheduler} {cfg} K={K} {dtype}: max |dH| / tol = {excess(H_lib, H, tol):.3g} ({tol}); "
            f"rel {np.max(np.abs(H_lib / H - 1)):.3g}")
    assert info.raw_output and info.consistent
    assert info.init_variance == pytest.approx(float(sch.init_noise_sigma) ** 2, rel=1e-12)


#: (case, a wrong closed form): the probe tolerance rejects each by a wide margin
WRONG = [
    ((DPM, dict(solver_order=3), 10), dict(solver_order=2)),
    ((DPM, dict(solver_order=3), 10), dict(lower_order_final=False)),  # third order on the step before the last
    ((DPM, dict(solver_type="heun", final_sigmas_type="sigma_min"), 12), dict(solver_type="midpoint")),
    ((DPM, dict(solver_order=3, final_sigmas_type="sigma_min"), 16), dict(euler_at_final=True)),
    ((UNIPC, dict(solver_order=3), 10), dict(solver_order=2)),
    ((UNIPC, dict(solver_order=3, solver_type="bh1", final_sigmas_type="sigma_min"), 10), dict(solver_type="bh2")),
    ((DEIS, dict(solver_order=3), 10), dict(solver_order=2)),
    ((DEIS, dict(solver_order=3, lower_order_final=False), 12), dict(lower_order_final=True)),
    # either side of the 15-step cutoff: the ramp is real below it and absent at it
    ((DEIS, dict(solver_order=3), 14), dict(lower_order_final=False)),
    ((DEIS, dict(solver_order=3), 15), dict(solver_order=2)),
    ((DPM, dict(solver_order=3), 14), dict(lower_order_final=False)),
    ((DPM, dict(solver_order=3, final_sigmas_type="sigma_min"), 14), dict(lower_order_final=False)),
    ((UNIPC, dict(solver_order=3, final_sigmas_type="sigma_min"), 15), dict(lower_order_final=False)),
]


@pytest.mark.parametrize("case,wrong", WRONG, ids=[f"{_id(c)}-vs-{w}" for c, w in WRONG])
def test_gain_probe_rejects_a_wrong_variant(case, wrong):
    cls, cfg, K = case
    sch = fresh(cls(**cfg), K)
    info = from_diffusers(sch)
    H_lib = gain_probe(sch, S, dtype=torch.float64, upcast_sigmas=True)
    H_wrong = symsched.transfer_function_ve(S, info.sigmas, **dict(info.kwargs, **wrong))
    miss = excess(H_lib, H_wrong, probe_tolerance(sch, torch.float64))
    assert miss > 100, f"{wrong} is not told apart by the probe (max |dH| / tol = {miss:.3g})"


#: DPMSolverMultistep whose last step is diffusers' zero step sigma_min -> sigma_min (Karras / LU sigmas with
#: final_sigmas_type="sigma_min", which end at sigma_min already): the identity (h = 0), the run before it with
#: diffusers' orders (practitioner audit 5 Dec: refused, though diffusers runs it)
ZERO_LAST = [
    (dict(use_karras_sigmas=True), 10),
    (dict(use_karras_sigmas=True), 20),
    (dict(use_karras_sigmas=True, solver_order=1), 8),
    (dict(use_karras_sigmas=True, algorithm_type="sde-dpmsolver++"), 12),
    (dict(use_karras_sigmas=True, solver_type="heun"), 9),
    (dict(use_lu_lambdas=True, beta_schedule="linear", beta_start=0.0001, beta_end=0.02), 10),
    (dict(use_karras_sigmas=True, solver_order=3, euler_at_final=True), 16),
    (dict(use_karras_sigmas=True, solver_order=3, euler_at_final=True, lower_order_final=False), 10),
]


@pytest.mark.parametrize("cfg,K", ZERO_LAST, ids=[_id((DPM, c, k)) for c, k in ZERO_LAST])
def test_zero_last_step_is_the_identity_after_diffusers_orders(cfg, K):
    cfg = dict(dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012), **cfg,
               final_sigmas_type="sigma_min")
    sch = fresh(DPM(**cfg), K)
    assert float(sch.sigmas[-1]) == float(sch.sigmas[-2]) > 0  # diffusers' own zero last step
    info = from_diffusers(sch)
    assert info.alpha_bar.size == K and any("sigma_min -> sigma_min" in n for n in info.notes)
    H = info.transfer_function(S)
    for dtype in (torch.float32, torch.float64):
        H_lib = gain_probe(fresh(DPM(**cfg), K), S, dtype=dtype, upcast_sigmas=dtype == torch.float64)
        tol = probe_tolerance(sch, dtype)
        assert excess(H_lib, H, tol) <= 1.0, (cfg, K, dtype, excess(H_lib, H, tol))
    # power: the same levels read as an ordinary sigma_min run (the last real step first order) miss by far
    wrong = symsched.transfer_function(S, info.alpha_bar, sampler="dpmsolver_multistep",
                                       **dict(info.options, lower_order_final=True, euler_at_final=True))
    H64 = gain_probe(fresh(DPM(**cfg), K), S, dtype=torch.float64, upcast_sigmas=True)
    if cfg.get("solver_order", 2) > 1 and "algorithm_type" not in cfg:  # (the SDE's correction is ~1e-6 here)
        assert excess(H64, wrong, probe_tolerance(sch, torch.float64)) > 100, (cfg, K)


@pytest.mark.parametrize("cfg,K,why", [
    (dict(solver_order=3), 20, "NaN"),  # diffusers' third-order zero step divides 0 by 0
    (dict(solver_order=3, lower_order_final=False), 10, "NaN"),
    (dict(solver_order=3), 10, "second order"),  # the cap before diffusers' zero step: no symsched plan has it
    (dict(solver_type="heun", lower_order_final=False), 9, "cannot run"),  # heun's (e^-h - 1)/h over h = 0: NaN
])
def test_zero_last_step_refusals_say_why(cfg, K, why):
    cfg = dict(cfg, use_karras_sigmas=True, final_sigmas_type="sigma_min", beta_schedule="scaled_linear",
               beta_start=0.00085, beta_end=0.012)
    sch = fresh(DPM(**cfg), K)
    with pytest.raises(ValueError, match=why) as info:
        from_diffusers(sch)
    assert "final_sigmas_type='zero'" in str(info.value) or why == "cannot run"
    if why != "second order":  # diffusers' own run is NaN there: the refusal is the truth, not a gap
        assert not np.isfinite(gain_probe(fresh(DPM(**cfg), K), S, dtype=torch.float64, upcast_sigmas=True)).all()


#: LU lambdas end at exp of a float32 log of sigma_min, which can round above the sigma_min diffusers appends
#: (audit of 5 December: 1.8 * 2^-23 relative on the cosine grid, 1.6 * 2^-23 on a 500-step linear grid rescaled to
#: zero terminal SNR, for every K: refused as "a zero step ... not modelled"): still the zero step sigma_min ->
#: sigma_min, read as the run before it (SDE's upcast float64 run is NaN there, a sqrt of -h: not probed)
COSINE = dict(beta_schedule="squaredcos_cap_v2")
ZSNR500 = dict(num_train_timesteps=500, beta_end=0.03, rescale_betas_zero_snr=True)
ROUNDED_ZERO_LAST = [(COSINE, K) for K in (2, 3, 6, 10, 17, 30)] + [(ZSNR500, K) for K in (2, 5, 10, 20, 30)] + [
    (dict(COSINE, solver_order=3, euler_at_final=True), 16),
    (dict(COSINE, solver_type="heun"), 9),
    (dict(ZSNR500, solver_order=3), 20),  # finite in diffusers' float32 loop here (its h rounds to nonzero)
    (dict(ZSNR500, solver_order=1), 8),
]


def _sigma_min_rounding(sigma):
    """symsched.export's bound, restated: 4 float32 ulps of NumPy's float32 log, exp'd, plus two float32 roundings."""
    return 2.0**-23 * (4.0 * abs(np.log(sigma)) + 1.0)


@pytest.mark.parametrize("cfg,K", ROUNDED_ZERO_LAST, ids=[_id((DPM, c, k)) for c, k in ROUNDED_ZERO_LAST])
def test_zero_last_step_rounded_above_is_the_identity(cfg, K):
    cfg = dict(cfg, use_lu_lambdas=True, final_sigmas_type="sigma_min")
    sch = fresh(DPM(**cfg), K)
    last, final = float(sch.sigmas[-2]), float(sch.sigmas[-1])
    assert last < final <= last * (1.0 + _sigma_min_rounding(last))  # a rounding above, not diffusers' equality
    info = from_diffusers(sch)
    assert info.alpha_bar.size == K and any("sigma_min -> sigma_min" in n for n in info.notes)
    assert info.sigmas[-1] == pytest.approx(last, rel=1e-7)
    H = info.transfer_function(S)
    # K = 2 is one step down from sigma_max 2e4 (4096): diffusers' float32 loop misses that by 4-9 times the float32
    # tolerance with final_sigmas_type="zero" too (not the zero step): probed with the sigmas upcast only
    for dtype in (torch.float32, torch.float64)[K == 2:]:
        H_lib = gain_probe(fresh(DPM(**cfg), K), S, dtype=dtype, upcast_sigmas=dtype == torch.float64)
        tol = probe_tolerance(sch, dtype)
        assert excess(H_lib, H, tol) <= 1.0, (cfg, K, dtype, excess(H_lib, H, tol))


@pytest.mark.parametrize("above", [1.0001, "just beyond"])
@pytest.mark.parametrize("grid", [COSINE, ZSNR500], ids=["cosine", "zsnr500"])
def test_final_sigma_above_the_rounding_is_still_refused(grid, above):
    """The companion: a final sigma above the last by more than that rounding is no zero step and no schedule."""
    sch = fresh(DPM(**grid, use_lu_lambdas=True, final_sigmas_type="sigma_min"), 10)
    last = float(sch.sigmas[-2])
    bound = last * (1.0 + _sigma_min_rounding(last))
    final = np.float32(last * above) if above != "just beyond" else np.nextafter(np.float32(bound), np.float32(1))
    assert final > bound
    sch.sigmas[-1] = float(final)
    assert float(sch.sigmas[-1]) == final
    with pytest.raises(ValueError, match="a zero step.*not modelled"):
        from_diffusers(sch)
