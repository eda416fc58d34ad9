"""Witness: the output variance of diffusers' multistep schedulers, sampled with the exact denoiser,
is the closed form ``from_diffusers(scheduler).output_spectrum(S)``, mode by mode.

Each run draws n independent float32 samples (diffusers' default dtype) from the scheduler's own
start ``init_noise_sigma * randn``, one mode per tensor column; the SDE variants and Euler ancestral
draw their noise from the same seeded generator. Per mode, ``n * psd_hat / P ~ chi^2_n`` exactly, so
``mc.psd_check`` (exact chi^2 normal scores, Bonferroni over the modes) accepts a correct closed form
with false-alarm probability <= ALPHA per check, ALPHA = 1e-4 / N_CHECKS: family-wise <= 1e-4 over the whole
file (Bonferroni over its checks, as the k-diffusion witness does); a null mode (P = 0) must come out
(numerically) zero. Each case has a power companion: a wrong variant is rejected with
max |z| >= 2 z_crit on the same samples. The float32 rounding of the run (<= 5e-4 relative, see
``diffusers_helpers``) moves a z-score by <= 5e-4 sqrt(n / 2) = 0.11 at n = 1e5.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from diffusers_helpers import diffusers, fresh, sample

import symsched  # noqa: E402
from symsched import montecarlo as mc  # noqa: E402
from symsched.export import from_diffusers  # noqa: E402

from mc_helpers import assert_psd_matches, assert_psd_rejects  # noqa: E402

pytestmark = [
    pytest.mark.diffusers,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

#: one acceptance check per case, and one in the DEIS noise-floor test
N_CHECKS = 11
#: false-alarm probability of each check (Bonferroni over the modes inside it): 1e-4 family-wise for the file
ALPHA = 1e-4 / N_CHECKS
N = 100_000
#: a zero mode, then modes from far below to far above the unit noise variance
S = np.concatenate([[0.0], np.logspace(-3, 2, 12)])


def _replace(info, **options):
    """The same schedule read with other sampler options (a wrong variant)."""
    return dataclasses.replace(info, options=dict(info.options, **options))


#: (id, scheduler factory, K, wrong closed form (info -> P)); the wrong forms differ by 7-40 % somewhere
CASES = [
    ("dpm2m", lambda: diffusers.DPMSolverMultistepScheduler(), 10,
     lambda info: _replace(info, solver_order=1).output_spectrum(S)),
    ("dpm2m-sde", lambda: diffusers.DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++"), 10,
     lambda info: _replace(info, algorithm_type="dpmsolver++").output_spectrum(S)),  # the noise is real
    ("dpm3m-sde-heun-sigma_min",
     lambda: diffusers.DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", solver_type="heun",
                                                   solver_order=3, final_sigmas_type="sigma_min"), 8,
     lambda info: _replace(info, solver_type="midpoint").output_spectrum(S)),
    # Karras sigmas end at sigma_min: diffusers' last step sigma_min -> sigma_min is the identity (audit 5 Dec);
    # wrong: the same levels read as an ordinary sigma_min run, whose last step is first order
    ("dpm2m-sde-karras-zero-last-step",
     lambda: diffusers.DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", use_karras_sigmas=True,
                                                   final_sigmas_type="sigma_min"), 6,
     lambda info: _replace(info, lower_order_final=True, euler_at_final=True, algorithm_type="dpmsolver++")
     .output_spectrum(S)),
    ("unipc-default", lambda: diffusers.UniPCMultistepScheduler(), 10,
     lambda info: _replace(info, solver_order=1).output_spectrum(S)),
    ("deis-default", lambda: diffusers.DEISMultistepScheduler(), 10,
     lambda info: _replace(info, solver_order=1).output_spectrum(S)),
    ("unipc3", lambda: diffusers.UniPCMultistepScheduler(solver_order=3), 8,
     lambda info: _replace(info, solver_type="bh1").output_spectrum(S)),
    ("deis3", lambda: diffusers.DEISMultistepScheduler(solver_order=3), 8,
     lambda info: _replace(info, solver_order=2).output_spectrum(S)),
    ("euler-ancestral", lambda: diffusers.EulerAncestralDiscreteScheduler(), 10,
     lambda info: symsched.output_spectrum_ve(S, info.sigmas, sampler="euler")),  # no ancestral noise
    ("euler-ancestral-leading", lambda: diffusers.EulerAncestralDiscreteScheduler(timestep_spacing="leading"), 10,
     lambda info: symsched.output_spectrum(S, info.alpha_bar, sampler="ddim", eta=0.0)),
]
assert N_CHECKS == len(CASES) + 1


@pytest.mark.parametrize("name,make,K,wrong", CASES, ids=[c[0] for c in CASES])
def test_output_variance_matches_closed_form(name, make, K, wrong):
    sch = fresh(make(), K)
    info = from_diffusers(sch)
    x = sample(sch, S, N, seed=sum(map(ord, name)))
    psd = np.mean(x * x, axis=0)
    P = info.output_spectrum(S)
    assert_psd_matches(psd, P, N, alpha=ALPHA, axes=(), what=f"{name}: {info.options} {info.notes}")
    assert_psd_rejects(psd, wrong(info), N, alpha=ALPHA, axes=(), what=f"{name}: wrong variant")


def test_deis_noise_floor_is_real():
    """DEIS stops at sigma(alphas_cumprod[0]) > 0: a zero-variance mode comes out with variance
    (1 - ab_final) / (1 - ab_first) (the noise left after the exact x0 = 0 is used at every step), about
    1e-4 here; a clean-ending solver on the same model levels (DPM-Solver++ 3M) gives exactly 0."""
    sch = fresh(diffusers.DEISMultistepScheduler(solver_order=3), 8)
    info = from_diffusers(sch)
    ac = sch.alphas_cumprod.double().numpy()
    floor = (1.0 - ac[0]) / (1.0 - info.alpha_bar[0])  # (sigma_final / sigma_first)^2 in VP terms
    assert info.final_alpha_bar == pytest.approx(ac[0], rel=1e-6) and any("noise floor" in n for n in info.notes)
    P = info.output_spectrum(S)
    assert P[0] == pytest.approx(floor, rel=1e-6) and 0.9e-4 < P[0] < 1.1e-4
    x = sample(sch, S, N, seed=11)
    psd = np.mean(x * x, axis=0)
    assert_psd_matches(psd, P, N, alpha=ALPHA, axes=(), what="DEIS with its noise floor")
    dpm = fresh(diffusers.DPMSolverMultistepScheduler(solver_order=3), 8)
    clean = symsched.output_spectrum_ve(S, info.sigmas[:-1], sampler="dpmsolver_multistep", solver_order=3)
    assert clean[0] == 0.0
    res = mc.psd_check(psd, clean, N, alpha=ALPHA, axes=())
    # a zero mode with nonzero output variance: an excess of 1e-4 over the rounding floor 1e-10 x max
    assert not res.passed and res.max_abs_z > 1000
    # and DPM-Solver itself, ending at sigma = 0, returns 0 for that mode (up to float32 rounding of its
    # eps -> x0 conversion), where DEIS leaves a standard deviation of 1e-2
    assert np.max(np.abs(sample(dpm, S, 1000, seed=3)[:, 0])) < 1e-6
