"""Issue 11 acceptance: EVERY registered sampler at the extremes, against the package's mpmath path.

Across S in {0, 1e-300, 1e-12, 1, 1e12, 1e300} and levels alpha_bar in {0, 1e-320, 1e-200, 1e-12, 0.5,
1 - 1e-12} the float64 engine agrees with :func:`symsched.output_spectrum_mp` (the sampler module's own
update equations in native coordinates, at 60 digits) to <= 1e-9 relative, or raises a ValueError naming
``alpha_bar`` (a step whose limit at alpha_bar = 0 is unbounded, e.g. EDM Heun's corrector divides by
sigma = inf) or ``spectrum`` (the exact output exceeds the float64 range, as mpmath confirms here); never a NaN. Flow-matching samplers included. (tests/test_extremes.py checks more schedules
for the first VP/VE samplers.)
"""

from __future__ import annotations

import numpy as np
import pytest

import symsched
from test_extremes import LEVELS, assert_close_to_mp  # the same level ladder and mpmath comparison

S_GRID = np.array([0.0, 1e-300, 1e-12, 1.0, 1e12, 1e300])
# every level of the acceptance grid, as first level and inside a schedule
SCHEDULES = [[0.0, 0.5], [1e-320, 0.5], [1e-200, 1e-12, 0.5], [1e-12, 0.5, 1 - 1e-12], [1 - 1e-12], LEVELS]


@pytest.mark.slow
@pytest.mark.parametrize("name", symsched.SAMPLERS)
def test_every_registered_sampler_matches_mpmath_or_raises(name: str) -> None:
    checked = 0
    for init in ("white", "exact"):
        for ab in SCHEDULES:
            try:
                P = symsched.output_spectrum(S_GRID, ab, sampler=name, init=init)
            except ValueError as exc:
                msg = str(exc)
                if msg.startswith("spectrum"):  # only when the exact output really exceeds the float64 range
                    ref = symsched.output_spectrum_mp(S_GRID, ab, sampler=name, init=init, dps=30)
                    assert max(float(abs(v)) for v in ref) > np.finfo(np.float64).max, msg
                else:  # a step undefined at alpha_bar = 0, or too few levels for a multistep sampler
                    assert msg.startswith("alpha_bar"), msg
                    assert ab[0] == 0.0 or len(ab) == 1, f"{name} {ab}: {msg}"
                continue
            ref = symsched.output_spectrum_mp(S_GRID, ab, sampler=name, init=init, dps=60)
            assert_close_to_mp(P, ref, f"{name} {init} alpha_bar={ab}")
            checked += 1
    assert checked >= len(SCHEDULES)  # at least half of the (schedule, init) pairs


def test_flow_samplers_are_in_the_registry() -> None:
    assert {"flow_match_euler", "flow_match_heun"} <= set(symsched.SAMPLERS)
    assert symsched.sampler_info("flow_match_euler")["process"] == "flow"


def test_ill_conditioned_multistep_ladder_is_exact_or_refused() -> None:
    """DEIS across log-SNR gaps 0 -> 1e-320 -> 1e-200 -> 1e-12: its multistep coefficients cancel by ~1e33 in
    float64 (the unguarded engine returned P(S = 0) = 1.5e146 where mpmath gives 1e-12). A few modes are
    recomputed exactly; a large spectrum is refused with a ValueError naming alpha_bar, never a wrong number."""
    P = symsched.output_spectrum(S_GRID, LEVELS, sampler="deis_multistep")
    ref = symsched.output_spectrum_mp(S_GRID, LEVELS, sampler="deis_multistep", dps=60)
    assert_close_to_mp(P, ref, "deis_multistep on the extreme ladder")
    with pytest.raises(ValueError, match=r"^alpha_bar: .*cancel"):
        symsched.output_spectrum(np.logspace(-3, 3, 100), LEVELS, sampler="deis_multistep")
    with pytest.raises(ValueError, match=r"^alpha_bar: .*cancel"):
        symsched.divergence_and_grad(np.logspace(-3, 3, 100), LEVELS[1:], sampler="deis_multistep")
    # an ordinary schedule is well conditioned: same values with and without the guard's probes
    ab = symsched.schedules.standard_schedule("karras", 10)
    S = np.logspace(-4, 4, 64)
    np.testing.assert_allclose(symsched.output_spectrum(S, ab, sampler="deis_multistep"),
                               [float(v) for v in symsched.output_spectrum_mp(S, ab, sampler="deis_multistep", dps=30)],
                               rtol=1e-9)


DEIS_TOTAL_LOSS = [1e-300, 1e-230, 1e-150, 1e-113, 1e-96, 0.9999999999999998]


@pytest.mark.parametrize("S", [[0.0], [1.0], [1e-160], [1e-320], [0.0, 1.0]])
def test_a_cancellation_that_longdouble_loses_as_completely_as_float64_is_caught(S) -> None:
    """NaN audit, 5 Dec: DEIS across log-SNR gaps of ~160 to a noisy last level has a step whose two coefficients
    are -1.24e38 and +1.24e38 with an O(1) sum: float64 and longdouble both round it to exactly 0, so they agreed and
    the probe comparison trusted H(1) = -3.8e15 (mpmath: 1.49e-8 = sigma_out) and P(0) = 0 (mpmath: 2.2e-16, the
    noise floor; right only when a mode like 1.0 joined the call). The probes now also measure the sweep's condition
    by perturbing its coefficients: a few modes come from mpmath, never a wrong number."""
    ref_P = [float(v) for v in symsched.output_spectrum_mp(S, DEIS_TOTAL_LOSS, sampler="deis_multistep", dps=60)]
    ref_H = [float(v) for v in symsched.transfer_function_mp(S, DEIS_TOTAL_LOSS, sampler="deis_multistep", dps=60)]
    assert min(ref_P) > 2e-16 and min(ref_H) > 1.4e-8  # the independent values: the noise floor, sigma_out
    np.testing.assert_allclose(symsched.output_spectrum(S, DEIS_TOTAL_LOSS, sampler="deis_multistep"), ref_P,
                               rtol=1e-9)
    np.testing.assert_allclose(symsched.transfer_function(S, DEIS_TOTAL_LOSS, sampler="deis_multistep"), ref_H,
                               rtol=1e-9)
    with pytest.raises(ValueError, match=r"^alpha_bar: .*cancel.*rounding error is about 1\.0e\+00 relative"):
        symsched.output_spectrum(np.logspace(-3, 3, 100), DEIS_TOTAL_LOSS, sampler="deis_multistep")


@pytest.mark.parametrize("sampler", ["dpmpp_2m", "dpmsolver_multistep"])
def test_a_huge_mode_after_near_duplicate_tiny_levels_is_exact(sampler: str) -> None:
    """NaN audit, 5 Dec: two levels 1e-12 apart (relative) at alpha_bar ~ 9e-73, then a gap of ~14 and two near 1: P of
    S = 1e100 came out 1.1000737e72 against mpmath's 1.1000865e72 (1.2e-5), float64 and longdouble agreeing; the
    perturbation probe (condition ~1e18) now sends the mode to mpmath."""
    ab = [9.090194644984909e-73, 9.090194644994e-73, 1e-66, 0.999999999999, 0.9999999999999999]
    ref = [float(v) for v in symsched.output_spectrum_mp([1e100], ab, sampler=sampler, dps=60)]
    np.testing.assert_allclose(symsched.output_spectrum([1e100], ab, sampler=sampler), ref, rtol=1e-9)


def test_without_the_condition_probe_the_total_loss_is_trusted(monkeypatch) -> None:
    """Companion: the perturbation probe is what catches the case above (float64 and longdouble agree there)."""
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "_condition", lambda *a: 0.0)
    assert symsched.transfer_function([1.0], DEIS_TOTAL_LOSS, sampler="deis_multistep")[0] < -1e15
    assert symsched.output_spectrum([0.0], DEIS_TOTAL_LOSS, sampler="deis_multistep")[0] == 0.0


def test_without_the_guard_the_float64_value_is_wrong(monkeypatch) -> None:
    """Companion: the guard is what makes the test above pass -- trusting the float64 sweep blindly gives a
    result mpmath rejects (so the mpmath comparison can fail)."""
    from symsched.engine import recursion

    ab = [1e-250, 1e-30, 0.5, 0.99]  # within the float64 range: the longdouble comparison decides
    S = np.array([1e-3, 1.0, 1e3])
    ref = np.array([float(v) for v in symsched.output_spectrum_mp(S, ab, sampler="deis_multistep", dps=40)])
    with pytest.raises(ValueError, match="rounding error is about .* relative, measured against a wider type"):
        symsched.output_spectrum(np.logspace(-3, 3, 100), ab, sampler="deis_multistep")
    np.testing.assert_allclose(symsched.output_spectrum(S, ab, sampler="deis_multistep"), ref, rtol=1e-9)
    monkeypatch.setattr(recursion, "rounding_check", lambda *a, **k: (True, 0.0))
    blind = symsched.output_spectrum(S, ab, sampler="deis_multistep")
    assert np.max(np.abs(blind - ref) / ref) > 1e-6


# ------------------------------------------------------------------------------------------------
# levels one ulp apart: the smallest gap of all
# ------------------------------------------------------------------------------------------------
_N = np.nextafter
#: (VE?, S, levels, sampler, settings, reference): references from an independent 50-digit per-mode recursion of
#: each library's update equations (k-diffusion 0.1.1.post1 sampling.py; diffusers 0.42 DPMSolverMultistep, UniPC
#: and DEIS schedulers) with the exact denoiser, written for the break-test of 3 December 2026
ULP_CASES = [
    (True, 100.0, [10.0, 5.0, _N(5.0, 0), 1.0], "dpmpp_2m", {}, 49.0350783268057),
    (True, 100.0, [10.0, 5.0, _N(5.0, 0), 2.5], "lms", {}, 45.1439802362636),
    (True, 100.0, [10.0, 5.0, _N(5.0, 0), 2.5, 1.0, 0.5], "dpmpp_3m_sde", dict(eta=0.0), 44.6927054573),
    (False, 100.0, [0.01, _N(0.01, 1), 0.04, 0.2], "dpmsolver_multistep", dict(init="exact"), 104.249417556463),
    (False, 100.0, [0.01, _N(0.01, 1), 0.04, 0.2], "unipc_multistep", dict(init="exact"), 103.928613151802),
    (False, 1.0, [0.00802646670360291, 0.008026466703602912, 0.9292948309837288], "deis_multistep",
     dict(solver_order=3, lower_order_final=False), 0.182234438583826),
]


def _ulp_run(ve, S, levels, sampler, kw):
    f = symsched.output_spectrum_ve if ve else symsched.output_spectrum
    return f([S], levels, sampler=sampler, **kw)[0]


@pytest.mark.parametrize("ve,S,levels,sampler,kw,ref", ULP_CASES)
def test_levels_one_ulp_apart_are_exact(ve, S, levels, sampler, kw, ref) -> None:
    """break-test: two adjacent levels one or two ulps apart gave dpmpp_2m 77.9 for 49.0, LMS 6e30 for 45.1, DEIS 0
    for 0.18: their float64 log-SNRs are equal, so the screen for cancelling multistep coefficients skipped the
    schedule (it looked only at non-zero gaps) and the float64 sweep was trusted unchecked."""
    assert abs(_ulp_run(ve, S, levels, sampler, kw) - ref) <= 1e-9 * ref


def test_one_ulp_apart_without_the_screen_is_wrong(monkeypatch) -> None:
    """Companion: with the old screen (zero float64 gaps ignored) the same comparison fails."""
    from symsched.engine import recursion

    def old_screen(prog):
        ell = np.asarray(prog.l, dtype=np.float64)
        gaps = np.diff(ell[np.isfinite(ell)])
        a = np.abs(gaps[gaps != 0])
        return float(np.max(np.abs(gaps))) > 20.0 or float(np.min(a, initial=np.inf)) < 0.05

    monkeypatch.setattr(recursion, "_may_cancel", old_screen)
    ve, S, levels, sampler, kw, ref = ULP_CASES[0]
    assert abs(_ulp_run(ve, S, levels, sampler, kw) - ref) > 0.1 * ref


def test_a_gradient_over_levels_one_ulp_apart_is_refused_naming_them() -> None:
    """break-test: divergence_and_grad_ve said "spectrum: the divergence (nan) is not representable" (the wrong
    argument and cause); a gradient has no mpmath fallback, so it is the cancellation refusal naming sigmas."""
    with pytest.raises(ValueError, match=r"^sigmas: this schedule makes the sampler's multistep coefficients cancel"):
        symsched.divergence_and_grad_ve([0.01, 1.0, 100.0], [10.0, 5.0, _N(5.0, 0), 1.0], divergence="kl",
                                        sampler="dpmpp_2m")


# ------------------------------------------------------------------------------------------------
# k-diffusion's get_ancestral_step at eta = 1 from (near) pure noise: its float64 branch
# ------------------------------------------------------------------------------------------------
def _kdiffusion_binds(s: float, s_to: float, eta: float = 1.0) -> bool:
    """k-diffusion 0.1.1.post1 get_ancestral_step's sigma_down == 0, typed in here in float64 (its arithmetic)."""
    up = eta * (s_to**2 * (s**2 - s_to**2) / s**2) ** 0.5
    up = min(s_to, up)
    return (s_to**2 - up**2) ** 0.5 == 0.0


def _mp_dpm_2_ancestral(S: float, sigmas: list, dps: int = 60):
    """k-diffusion's ``sample_dpm_2_ancestral`` (eta = 1) with the exact denoiser, per mode in mpmath, written here from
    its source; the branch as k-diffusion takes it in float64 (:func:`_kdiffusion_binds`): the DPM-2 midpoint step
    to sigma_down = sqrt(sigma_to^2 - sigma_up^2), or the Euler step to D(x) (no noise on that branch).
    Variance v <- g^2 v + sigma_up^2, white start v = sigma_0^2."""
    from mpmath import mp, mpf

    with mp.workdps(dps):
        sig = [float(s) for s in sigmas] + [0.0]
        S, v = mpf(S), mpf(sig[0]) ** 2
        for s_f, s_to_f in zip(sig[:-1], sig[1:]):
            s, s_to = mpf(s_f), mpf(s_to_f)
            if s_to_f == 0.0 or _kdiffusion_binds(s_f, s_to_f):
                v = (S / (S + s**2)) ** 2 * v
                continue
            up = mp.sqrt(s_to**2 * (s**2 - s_to**2) / s**2)
            down = mp.sqrt(s_to**2 - up**2)
            mid = mp.sqrt(s * down)
            g_2 = 1 + (mid - s) * s / (S + s**2)  # x_2 = g_2 x
            g = 1 + (down - s) * mid / (S + mid**2) * g_2
            v = g**2 * v + up**2
        return v


@pytest.mark.parametrize("a0,bound", [(1e-12, False), (1e-20, True), (1e-40, True)])
def test_dpm_2_ancestral_at_eta_1_from_tiny_levels_takes_k_diffusions_branch(a0: float, bound: bool) -> None:
    """eta = 1: the min of get_ancestral_step binds in float64 once sigma_0/sigma_1 > ~1e8, and k-diffusion runs its
    Euler branch there (0.567); the DPM-2 branch, which exact arithmetic would keep, grows as sigma_0^2 (1.2e9 at
    a0 = 1e-12, where k-diffusion keeps it too). Float64 and mpmath paths, against the recursion typed in above."""
    S, ab = [1.0, 30.0], np.array([a0, 0.1, 0.5, 0.9])
    sig = np.sqrt((1 - ab) / ab)
    assert _kdiffusion_binds(sig[0], sig[1]) == bound
    ref = [float(_mp_dpm_2_ancestral(s, list(sig))) for s in S]
    for got in (symsched.output_spectrum(S, ab, sampler="dpm_2_ancestral"),
                symsched.output_spectrum_mp(S, ab, sampler="dpm_2_ancestral")):
        np.testing.assert_allclose(np.asarray(got, dtype=float), ref, rtol=1e-9)
    assert (ref[0] < 1.0) == bound  # the two branches differ by 9 orders of magnitude here


def test_ancestral_samplers_from_pure_noise_are_the_limit_of_that_branch() -> None:
    """alpha_bar = 0 (sigma = inf) at eta = 1 is the limit of k-diffusion's float64 decision, the Euler branch: the
    value at the tiniest finite level (1e-300) and at 0 agree; for dpmpp_2s_ancestral from [0, a1] that is
    x_1 = sigma_1 z then P = c_1^2 sigma_1^2, c = S/(S + sigma^2) (the DPM-Solver branch's limit would be
    c_1^2 sigma_1^2 (1 + c_1^2)); dpm_2_ancestral adds no noise on that branch (k-diffusion 0.1.1.post1 adds it
    inside the DPM-2 branch only), so from pure noise its output is 0 (S^2/sigma_0^2 c_1^2 at sigma_0 = 1e150)."""
    a1, S = 0.2, np.array([0.3, 1.0, 30.0])
    s1 = np.sqrt((1 - a1) / a1)
    c1 = S / (S + s1**2)
    for name in ("dpmpp_2s_ancestral", "euler_ancestral"):
        at0 = symsched.output_spectrum(S, [0.0, a1], sampler=name)
        np.testing.assert_allclose(at0, symsched.output_spectrum(S, [1e-300, a1], sampler=name), rtol=1e-12)
        np.testing.assert_allclose(at0, c1**2 * s1**2, rtol=1e-12)
    assert np.all(symsched.output_spectrum(S, [0.0, a1], sampler="dpm_2_ancestral") == 0.0)
    np.testing.assert_allclose(symsched.output_spectrum(S, [1e-300, a1], sampler="dpm_2_ancestral"),
                               S**2 * (1e-300 / (1 - 1e-300)) * c1**2, rtol=1e-9)
    assert np.all(np.abs(c1**2 * s1**2 * (1 + c1**2) / (c1**2 * s1**2) - 1) > 1e-3)  # the other branch's limit


def test_dpmpp_sde_between_1e_155_and_1e_200_is_refused_not_an_overflow() -> None:
    """break-test: eta = 1e-180 from pure noise raised OverflowError ("int too large to convert to float") while
    printing its exact kernel; it is the documented ValueError naming eta, as 1e-205 was."""
    with pytest.raises(ValueError, match=r"eta=1e-180.*too extreme to derive exactly"):
        symsched.output_spectrum([1.0], [0.0, 0.1, 0.5, 0.9], sampler="dpmpp_sde", eta=1e-180)
