"""Exact numbers at the extremes (issues 11 and 14): every float64 level and mode variance, against mpmath.

Across S in {0, 1e-300, 1e-12, 1, 1e12, 1e300} and levels alpha_bar in {0, 1e-320, 1e-200, 1e-12, 0.5,
1 - 1e-12} (and VE sigmas up to 1.7e308) the float64 engine agrees with the package's own mpmath path
(the samplers' update equations in native coordinates at 60 digits) to <= 1e-9 relative, or raises
ValueError naming an argument; never a NaN. Where the exact value lies below the normal float64
range, the float64 result is that value rounded (0 or a subnormal) and is compared in absolute terms.
"""

from __future__ import annotations

import itertools
import warnings
import math
import re
import sys

import numpy as np
import pytest
import mpmath
from mpmath import mp, mpf

import symsched
from symsched import schedules as sch

S_GRID = np.array([0.0, 1e-300, 1e-12, 1.0, 1e12, 1e300])
LEVELS = [0.0, 1e-320, 1e-200, 1e-12, 0.5, 1 - 1e-12]
TINY = np.finfo(np.float64).tiny

# schedules: every level alone, every increasing pair, and the whole ladder
SCHEDULES = [[a] for a in LEVELS] + [list(p) for p in itertools.combinations(LEVELS, 2)] + [LEVELS]

CASES = [("ddim", {}), ("ddim", {"eta": 1.0}), ("ddim", {"eta": 0.3}), ("ddpm", {}), ("ddpm", {"variance": "beta"}),
         ("euler", {}), ("heun", {}), ("dpmpp_2m", {})]


def assert_close_to_mp(P: np.ndarray, ref: np.ndarray, what: str) -> None:
    for p, q in zip(np.ravel(P), np.ravel(ref)):
        q = float(q)
        assert np.isfinite(p), f"{what}: non-finite {p} (mpmath {q:g})"
        if abs(q) >= TINY:
            assert abs(p - q) <= 1e-9 * abs(q), f"{what}: {p!r} vs mpmath {q!r}"
        else:  # below the normal range: the float64 value is the rounded exact value
            assert abs(p - q) <= 4 * 5e-324 + 1e-9 * abs(q), f"{what}: {p!r} vs mpmath {q!r}"


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}{kw}" for n, kw in CASES])
@pytest.mark.parametrize("init", ["white", "exact"])
def test_every_level_and_mode_variance_matches_mpmath_or_raises(name: str, kw: dict, init: str) -> None:
    checked = 0
    for ab in SCHEDULES:
        try:
            P = symsched.output_spectrum(S_GRID, ab, sampler=name, init=init, **kw)
        except ValueError as exc:  # only what float64 cannot represent, or a step that is undefined there
            assert "alpha_bar" in str(exc) or "spectrum" in str(exc), str(exc)
            continue
        ref = symsched.output_spectrum_mp(S_GRID, ab, sampler=name, init=init, dps=60, **kw)
        assert_close_to_mp(P, ref, f"{name}{kw} {init} alpha_bar={ab}")
        checked += 1
    assert checked >= len(SCHEDULES) // 2  # most schedules are representable for every sampler


@pytest.mark.parametrize("name", ["euler", "heun", "ddim", "dpmpp_2m"])
def test_ve_sigmas_up_to_the_float64_maximum(name: str) -> None:
    for sig in ([1.7e308, 1.0], [1.7e308, 1e154, 1.0, 1e-3], [1e155, 1e100], [np.inf, 1e200, 2.0], [1.0, 1e-300]):
        try:
            P = symsched.output_spectrum_ve(S_GRID, sig, sampler=name)
        except ValueError as exc:
            assert "sigmas" in str(exc) or "spectrum" in str(exc), str(exc)
            continue
        assert_close_to_mp(P, symsched.output_spectrum_ve_mp(S_GRID, sig, sampler=name, dps=60), f"{name} {sig}")


def test_zero_terminal_snr_first_step_only_scales() -> None:
    """DDIM eta=0 from alpha_bar = 0: x0_hat = 0, eps_hat = x, so P = (1 - 0.3) P([0.3, 0.9]) (issue 11)."""
    rng = np.random.default_rng(0)
    S = rng.lognormal(0, 2, 50)
    P = symsched.output_spectrum(S, [0.0, 0.3, 0.9])
    np.testing.assert_allclose(P, 0.7 * symsched.output_spectrum(S, [0.3, 0.9]), rtol=1e-13)
    # and the VE spelling sigma = inf is the same schedule
    sig = np.sqrt((1 - np.array([0.3, 0.9])) / np.array([0.3, 0.9]))
    np.testing.assert_allclose(symsched.output_spectrum_ve(S, [np.inf, *sig], sampler="ddim"), P, rtol=1e-12)


def test_tiny_levels_no_longer_give_nan() -> None:
    """Issue 11: [1e-320, 0.3, 0.9] and two levels below 1e-150 returned all-NaN; output_spectrum_ve at sigma >= 1e155."""
    S = np.array([1e-3, 1.0, 30.0])
    for ab in ([1e-320, 0.3, 0.9], [1e-200, 1e-160, 0.5]):
        P = symsched.output_spectrum(S, ab)
        assert_close_to_mp(P, symsched.output_spectrum_mp(S, ab, dps=60), str(ab))
    P = symsched.output_spectrum_ve(S, [1e156, 1e155, 1.0])
    assert_close_to_mp(P, symsched.output_spectrum_ve_mp(S, [1e156, 1e155, 1.0], dps=60), "ve 1e156")


def test_a_step_that_is_unbounded_at_zero_snr_names_the_level() -> None:
    """EDM Heun from sigma = inf divides by sigma_t in its corrector: a ValueError, not a NaN."""
    with pytest.raises(ValueError, match=r"alpha_bar: sampler 'heun' is undefined at alpha_bar = 0"):
        symsched.output_spectrum([1.0], [0.0, 0.5], sampler="heun")


@pytest.mark.parametrize("divergence", ["kl", "w2", "kl-reverse"])
def test_divergence_and_grad_finite_at_extreme_modes(divergence: str) -> None:
    """Modes down to 1e-300 and up to 1e300: J and every gradient entry finite (P/S is carried, not P)."""
    S = np.array([1e-300, 1e-200, 1e-154, 1e-100, 1e-12, 1.0, 1e100, 1e300])
    ab = np.array([1e-6, 0.01, 0.3, 0.9, 0.999])
    J, g = symsched.divergence_and_grad(S, ab, divergence=divergence, sampler="ddpm")
    assert np.isfinite(g).all()
    assert np.isfinite(J) or (divergence != "w2" and J == np.inf)


def test_a_step_sympy_cannot_take_to_zero_snr_says_so_without_sympy_internals(monkeypatch) -> None:
    """Where SymPy's limit fails (forced here: every sampler's limit is derived today), the error says that the
    limit could not be derived -- not that the step is unbounded -- and shows no SymPy expression."""
    from symsched.engine import canonical, kernels

    def fail(*args, **kwargs):
        raise NotImplementedError("sign(r)")

    monkeypatch.setenv("SYMSCHED_DISK_CACHE", "0")
    monkeypatch.setattr(canonical.sp, "limit", fail)
    for clear in (canonical._canonical.cache_clear, kernels.step_kernels.cache_clear, kernels._UNDEFINED.clear):
        clear()
    try:
        with pytest.raises(ValueError) as info:
            symsched.output_spectrum(np.array([0.5, 2.0]), [0.0, 0.3, 0.9], sampler="dpmpp_sde", eta=0.625)
    finally:
        monkeypatch.undo()
        for clear in (canonical._canonical.cache_clear, kernels.step_kernels.cache_clear, kernels._UNDEFINED.clear):
            clear()
    msg = str(info.value)
    assert msg.startswith("alpha_bar: sampler 'dpmpp_sde' is undefined at alpha_bar = 0")
    assert "SymPy cannot take its limit there (NotImplementedError)" in msg
    assert "unbounded" not in msg and "sign(" not in msg

# ---------------------------------------------------------------------------------------------
# level coefficients whose formulas cancel (LMS on clustered levels): exact or refused, never wrong
# ---------------------------------------------------------------------------------------------
CLUSTERED = [0.5352356131158433, 0.535473847130013, 0.535481447548326, 0.5354817403082517, 0.5354852897503868]


def _lms_by_hand(S: float, sigmas: list, order: int = 4, dps: int = 60, alpha_bar: bool = False) -> float:
    """k-diffusion's sample_lms with the exact denoiser, in mpmath, written from its source: x is tracked as a
    multiple of the white start x_0 = sigma_0 n, the Lagrange weights integrated by mp.quad. With ``alpha_bar``
    the levels are alpha_bar, converted at full precision (clustered levels are ill-conditioned in sigma)."""
    with mp.workdps(dps):
        sig = [mp.sqrt((1 - mpf(a)) / mpf(a)) if alpha_bar else mpf(a) for a in sigmas] + [mpf(0)]
        x, ds = mpf(1), []
        for i in range(len(sigmas)):
            D = mpf(S) / (mpf(S) + sig[i] ** 2) * x
            ds.append((x - D) / sig[i])
            q = min(i + 1, order)
            for j in range(q):
                def basis(tau, j=j):
                    out = mpf(1)
                    for k in range(q):
                        if k != j:
                            out *= (tau - sig[i - k]) / (sig[i - j] - sig[i - k])
                    return out
                x += mp.quad(basis, [sig[i], sig[i + 1]]) * ds[-1 - j]
        return float((x * sig[0]) ** 2)


def test_lms_on_clustered_levels_is_exact_or_refused_never_wrong() -> None:
    """Order-4 LMS weights on levels 1e-6 apart in log-SNR cancel in float64 and even in longdouble (the engine
    used to return 8e26 for 0.665); the coefficient check now sends a few modes to mpmath and refuses many."""
    sig = [float(v) for v in sch.alpha_bar_to_sigmas(np.array(CLUSTERED))]
    ref = _lms_by_hand(1.0, CLUSTERED, alpha_bar=True)
    # k-diffusion's algorithm in exact rational arithmetic (SymPy, sigmas to 70 digits) gives 0.66487103759010937...
    assert abs(ref - 0.6648710375901094) < 1e-12
    np.testing.assert_allclose(symsched.output_spectrum([1.0], CLUSTERED, sampler="lms"), [ref], rtol=1e-9)
    with pytest.raises(ValueError, match=r"^alpha_bar: .*cancel in float64"):
        symsched.output_spectrum(np.geomspace(1e-3, 1e3, 40), CLUSTERED, sampler="lms")
    with pytest.raises(ValueError, match=r"^sigmas: .*cancel in float64"):
        symsched.output_spectrum_ve(np.geomspace(1e-3, 1e3, 40), sig, sampler="lms")


def test_lms_fallback_settles_its_own_precision() -> None:
    """Levels 1e-9 apart before a long step: the float64 sweep is not trusted and the few modes go to the mpmath
    path, whose 30 digits plus the levels' decimal range used to be too few (0.5128654619 for 0.5128648542,
    right only when a mode 1e-60 in the same call widened the range): every mpmath result is now confirmed at
    a higher precision, so one mode's value no longer depends on the others."""
    sig = [1.0, 1 - 1e-9, 1 - 2e-9, 0.5]
    ref = _lms_by_hand(1.0, sig, dps=120)
    assert abs(ref - 0.51286485417493344) < 1e-15  # two independent mpmath re-implementations of sample_lms
    alone = symsched.output_spectrum_ve([1.0], sig, sampler="lms")[0]
    with_tiny = symsched.output_spectrum_ve([1e-60, 1.0], sig, sampler="lms")[1]
    assert alone == pytest.approx(ref, rel=1e-13) and with_tiny == pytest.approx(ref, rel=1e-13)
    mp_value = symsched.output_spectrum_ve_mp([1.0], sig, sampler="lms", dps=30)[0]
    assert abs(mp_value - ref) < 2e-16 * ref  # ref is a float


def test_lms_on_ordinary_levels_is_not_refused() -> None:
    """The coefficient check must not refuse ordinary schedules: K = 5..200 standard schedules, by hand at 40 modes."""
    for K in (5, 20, 200):
        ab = sch.standard_schedule("cosine", K)
        P = symsched.output_spectrum(np.geomspace(1e-3, 1e3, 40), ab, sampler="lms")
        assert np.all(np.isfinite(P))
    sig = [float(v) for v in sch.alpha_bar_to_sigmas(sch.standard_schedule("cosine", 5))]
    np.testing.assert_allclose(symsched.output_spectrum_ve([0.3], sig, sampler="lms"), [_lms_by_hand(0.3, sig)],
                               rtol=1e-12)


def test_coefficient_check_rejects_a_wrong_threshold(monkeypatch) -> None:
    """Companion: with the check switched off and the coefficients left in longdouble (no mpmath recomputation),
    the clustered schedule's float64 answer is wrong by orders of magnitude -- the checks, not luck, make the
    test above pass."""
    from symsched.engine import program, recursion

    monkeypatch.setattr(recursion, "MAX_COEFFICIENT_LOSS", np.inf)
    monkeypatch.setattr(program, "MP_COEFFICIENT_LOSS", np.inf)
    P = symsched.output_spectrum([1.0], CLUSTERED, sampler="lms")[0]
    assert not abs(P - 0.6648710375901094) < 1e-3 * 0.66


#: break-test B: ten levels 0.003 apart in log-SNR (e.g. ten consecutive timesteps of a 1000-step grid)
CLOSE = [float(v) for v in sch.log_snr_to_alpha_bar(np.arange(10) * 0.003 - 1.0)]


@pytest.mark.parametrize("order", [3, 4])
def test_lms_on_close_levels_is_exact_for_many_modes(order) -> None:
    """break-test B: LMS on levels 0.003 apart was wrong by 0.35 % (order 4) with no error: its Lagrange weights
    lose 9 digits even in longdouble, where the level functions are now evaluated in mpmath, and a longdouble
    sweep (whose S-free entries were once rounded to float64) replaces a float64 one that loses digits."""
    S = np.geomspace(1e-6, 1e2, 40)
    P = symsched.output_spectrum(S, CLOSE, sampler="lms", init="white", order=order)
    ref = [_lms_by_hand(float(s), CLOSE, order=order, dps=40, alpha_bar=True) for s in S[::8]]
    np.testing.assert_allclose(P[::8], ref, rtol=1e-10)


#: break-test C: ordinary schedules with a cluster of three or four levels 3e-4 to 2.5e-3 apart in log-SNR
CLUSTER_SCHEDULES = [
    (4, [-9.0, -7.154367697718872, -5.3087353954377425, -3.4631030931566134, -1.617470790875485, -0.6174707908754851,
         -0.6149772386254012, -0.6124836863753172, 0.8825292091245149, 3.58835280608301, 6.294176403041505, 9.0]),
    (3, [-9.0, -5.1338152291135195, -1.267630458227039, 2.5985543126594415, 3.5985543126594415, 3.598886363372174,
         3.5992184140849064, 5.0985543126594415]),
]


@pytest.mark.parametrize("order,log_snr", CLUSTER_SCHEDULES)
def test_lms_with_a_cluster_of_levels_is_right_to_1e9(order, log_snr) -> None:
    """break-test C: with the mpmath threshold at a float64 coefficient loss of 1e-11 these came back 1.7e-8 and
    1.0e-8 off with no error (the mode functions amplify what longdouble coefficients lose); at 1e-13 they are
    within the engine's 1e-9 promise."""
    S = np.array([1e-6, 1e-2, 1.0, 20.0, 1e6])
    sig = [float(v) for v in np.exp(-np.array(log_snr) / 2)]
    P = symsched.output_spectrum_ve(S, sig, sampler="lms", order=order)
    ref = [_lms_by_hand(float(s), sig, order=order, dps=60) for s in S]
    np.testing.assert_allclose(P, ref, rtol=1e-9)


def test_close_levels_without_the_mpmath_coefficients_are_wrong_or_refused(monkeypatch) -> None:
    """Companion: with the level functions left in longdouble the same schedule is off by more than 1e-6, and
    without the longdouble sweep the float64 one is refused (never silently wrong)."""
    from symsched.engine import program, recursion

    S = np.geomspace(1e-6, 1e2, 40)
    ref = _lms_by_hand(float(S[-1]), CLOSE, dps=40, alpha_bar=True)
    with monkeypatch.context() as m:
        m.setattr(program, "MP_COEFFICIENT_LOSS", np.inf)
        m.setattr(recursion, "MAX_COEFFICIENT_LOSS", np.inf)
        m.setattr(recursion, "MAX_ROUNDING", np.inf)
        assert abs(symsched.output_spectrum(S, CLOSE, sampler="lms")[-1] / ref - 1) > 1e-6
    monkeypatch.setattr(recursion, "_LD_GAIN", 0.0)
    with pytest.raises(ValueError, match=r"^alpha_bar: .*cancel in float64"):
        symsched.output_spectrum(S, CLOSE, sampler="lms")


# ---------------------------------------------------------------------------------------------
# gradients where r = P/S is extreme: exact, not silently 0
# ---------------------------------------------------------------------------------------------
def _kl_mp(S: list, levels: list, *, ve: bool = False, sampler: str = "ddim", dps: int = 80):
    """KL(data||gen) summed over modes, from the mpmath path (the literal step equations)."""
    fn = symsched.output_spectrum_ve_mp if ve else symsched.output_spectrum_mp
    P = fn(S, levels, sampler=sampler, dps=dps)
    with mp.workdps(dps):
        return sum((1 / r - 1 + mp.log(r)) / 2 for r in (mpf(p) / mpf(q) for p, q in zip(P, S)))


def _central(J, levels: list, j: int, rel: float = 1e-7) -> float:
    h = levels[j] * rel
    up, down = list(levels), list(levels)
    up[j] += h
    down[j] -= h
    return float((J(up) - J(down)) / (2 * h))


@pytest.mark.parametrize("S,levels,sampler,ve", [
    ([1e300], [0.2, 0.7, 0.99], "ddim", False),  # r = 1e-300: KL's slope (r - 1)/(2 r^2) overflowed and was zeroed
    ([1e-6, 1.0, 1e6], [1e-200, 1e-5, 0.5], "heun", False),  # r = 1e206: r^2 overflowed, slope 0
    ([1e-3, 0.1, 1.0, 10.0], [1e150, 1e10, 1.0, 1e-5], "heun", True),
    ([1e-200, 1.0], [0.01, 0.5], "ddim", False),  # break-test H: S^2 underflowed in the gradient kernels
    ([1e-160, 1e-250, 1.0], [0.01, 0.3, 0.6, 0.9], "ddpm", False),
    # break-test 53: gradient coefficients below float64 (1.5e-325) were zeroed in the longdouble sweeps' reduction
    ([1e200], [1e-200, 1e-190], "heun", False),
    ([1e200], [1e-200, 1e-190], "dpmpp_sde", False),
    ([1e150], [1e-150, 1e-140], "dpmpp_2s_ancestral", False),
    ([1e150], [1e-150, 1e-140], "dpm_2_ancestral", False),
    ([1e200], [1e-200, 1e-190], "flow_match_heun", False),
])
def test_gradient_at_extreme_ratios_matches_mpmath_differences(S, levels, sampler, ve) -> None:
    """Every gradient entry against central differences of the mpmath objective, normwise to 1e-6 (entries below
    1e-14 of the largest are rounding in any float64 adjoint); the old code returned exactly 0 for all."""
    fn = symsched.divergence_and_grad_ve if ve else symsched.divergence_and_grad
    J, g = fn(S, levels, sampler=sampler, divergence="kl")
    J_mp = lambda lv: _kl_mp(S, lv, ve=ve, sampler=sampler)  # noqa: E731
    assert abs(J - float(J_mp(levels))) <= 1e-9 * abs(J)
    ref = np.array([_central(J_mp, levels, j) for j in range(len(levels))])
    assert np.max(np.abs(g - ref)) <= 1e-6 * np.max(np.abs(ref)), (g, ref)
    big = np.abs(ref) > 1e-10 * np.max(np.abs(ref))
    np.testing.assert_allclose(g[big], ref[big], rtol=1e-5)


def test_mp_path_keeps_the_digits_a_level_and_a_mode_cancel_together() -> None:
    """DDPM's one step from alpha_bar = 1e-95 for S = 1e-104: P = ab S^2 / lambda^2 (no noise on the last step),
    where 1 - (1 - ab)/lambda cancels to ab S = 1e-199: the reference path used to return exactly 0 at its
    default precision (it carried only the larger of the two decade spans)."""
    S, ab = 1e-104, 1e-95
    with mp.workdps(400):
        lam = mpf(ab) * mpf(S) + 1 - mpf(ab)
        ref = mpf(ab) * mpf(S) ** 2 / lam**2
    got = symsched.output_spectrum_mp([S], [ab], sampler="ddpm")[0]
    assert abs(got - ref) <= mpf("1e-40") * ref


def test_representable_output_of_a_mode_whose_ratio_to_its_scale_overflows() -> None:
    """EDM heun from sigma 1e10 to 1e-150 on S = 1e-300 (= sigma_1^2): by hand, the Euler predictor lands at
    x sigma_1/sigma_0, where the denoiser halves it, so the corrector's slopes are x/sigma_0 and x/(2 sigma_0) and
    the step multiplies x by 1 - (1 + 1/2)/2 = 1/4; the last Euler step to sigma = 0 halves it again (D = x/2).
    P = sigma_0^2 / 64 = 1.5625e18. It used to be refused as beyond float64 (P / S = 1.6e318 is)."""
    P = symsched.output_spectrum_ve([1e-300], [1e10, 1e-150], sampler="heun")
    assert P[0] == pytest.approx(1e20 / 64, rel=1e-12)
    P2 = symsched.output_spectrum_ve([1e-300, 1.0], [1.7e308, 1e154, 1e-154], sampler="heun")
    ref = symsched.output_spectrum_ve_mp([1e-300, 1.0], [1.7e308, 1e154, 1e-154], sampler="heun", dps=30)
    np.testing.assert_allclose(P2, np.array(ref, dtype=np.float64), rtol=1e-12)


@pytest.mark.parametrize("sampler, eta", [("dpmpp_3m_sde", 1e4), ("dpmpp_2m_sde", 1e6)])
def test_a_huge_eta_is_evaluated_and_an_undefined_step_names_its_parameters(sampler: str, eta: float,
                                                                            monkeypatch) -> None:
    """break-test 53: an SDE sampler's huge eta made its level coefficients NaN even in longdouble (the factorised
    forms split e^{eta h / 2} from e^{-eta h / 2}, which overflow apart) and was refused, though the value is finite.
    Such coefficients are now computed in mpmath (value against output_spectrum_mp, gradient against central
    differences). Where mpmath fails too, the error names the levels and the parameter values."""
    from symsched.engine import program

    S, ab = [0.0, 1.0, 10.0], [0.01, 0.1, 0.5, 0.9]
    ref = np.array([float(v) for v in symsched.output_spectrum_mp(S, ab, sampler=sampler, eta=eta)])
    np.testing.assert_allclose(symsched.output_spectrum(S, ab, sampler=sampler, eta=eta), ref, rtol=1e-12)
    l, d = np.log(np.array(ab) / (1 - np.array(ab))), 1e-6
    g = symsched.divergence_and_grad(S[1:], ab, sampler=sampler, eta=eta, wrt="log_snr")[1]

    def J(ll: np.ndarray) -> float:
        return symsched.divergence_and_grad(S[1:], 1 / (1 + np.exp(-ll)), sampler=sampler, eta=eta)[0]

    fd = np.array([(J(l + d * e) - J(l - d * e)) / (2 * d) for e in np.eye(len(l))])
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-6 * np.max(np.abs(fd)))
    monkeypatch.setattr(program, "_evaluate_mp", lambda *a, **k: None)
    with pytest.raises(ValueError, match=rf"alpha_bar: .*{sampler}.* with eta={re.escape(f'{2 * eta:g}')}.*_mp"):
        symsched.output_spectrum(S, ab, sampler=sampler, eta=2 * eta)  # another eta: not a cached program


def test_an_eta_beyond_the_mpmath_coefficients_is_refused_not_wrong() -> None:
    """The mpmath coefficients of the test above are confirmed at a second precision: at eta = 1e300 they need
    more than 300 digits, and at 30 the gradient came out -1e270 (central differences: 0.46)."""
    S, ab = [1.0, 10.0], [0.01, 0.1, 0.5, 0.9]
    with pytest.raises(ValueError, match=r"alpha_bar: a step of this schedule is undefined .*eta=1e\+300"):
        symsched.divergence_and_grad(S, ab, sampler="dpmpp_2m_sde", eta=1e300)


def _tiny_mode_slope_spread(samplers) -> float:
    """Largest relative change of the reverse-KL log-SNR gradient of one tiny mode across S in (1e-289, 1e-101).
    For S -> 0 every sampler here generates P = S r(levels) + O(S^2), so reverse KL's slope is S-free: the
    gradients at every tiny S must agree with the one at S = 1e-300 (longdouble, the limit) to rounding."""
    ab = np.array([0.01, 0.3, 0.6, 0.9])
    worst = 0.0
    for sampler, init in samplers:
        kw = dict(divergence="kl-reverse", wrt="log_snr", sampler=sampler, init=init)
        ref = symsched.divergence_and_grad([1e-300, 1.0], ab, **kw)[1]
        for s in (1e-101, 1e-140, 1e-155, 1e-170, 1e-200, 1e-250, 1e-289):
            g = symsched.divergence_and_grad([s, 1.0], ab, **kw)[1]
            worst = max(worst, float(np.max(np.abs(g - ref)) / np.max(np.abs(ref))))
    return worst


_TINY = [("ddim", "white"), ("ddpm", "exact"), ("dpmsolver_multistep", "exact"), ("unipc_multistep", "exact"),
         ("flow_match_heun", "white")]


def test_gradient_of_a_tiny_mode_reaches_its_limit() -> None:
    """Break-test H: for 1e-290 <= S < 1e-154 the float64 'scaled' sweep returned gradients off by up to 90 %."""
    assert _tiny_mode_slope_spread(_TINY) <= 1e-12


def test_tiny_mode_check_rejects_the_old_float64_band(monkeypatch) -> None:
    """Companion: with the scaled float64 group reaching down to 1e-290 again, the check above fails."""
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "_LOW", 1e-290)
    assert _tiny_mode_slope_spread(_TINY[:1]) > 0.1


def _rkl_mp(S: list, levels: list, dps: int = 60):
    """Reverse KL(gen||data) summed over modes from the mpmath path: (r - 1 - log r)/2, r = P/S."""
    P = symsched.output_spectrum_mp(S, levels, dps=dps)
    with mp.workdps(dps):
        return sum((r - 1 - mp.log(r)) / 2 for r in (mpf(p) / mpf(q) for p, q in zip(P, S)))


@pytest.mark.parametrize("S", [[1e-320], [5e-324, 1.0], [1e-310, 1e-200, 2.0]])
def test_subnormal_modes_keep_their_reverse_kl_and_gradient(S) -> None:
    """Break-test H: r = P/S ~ S underflowed for subnormal S, giving +inf (true ~368) and a zero gradient."""
    levels = [0.01, 0.5]
    J, g = symsched.divergence_and_grad(S, levels, divergence="kl-reverse")
    ref_J = _rkl_mp(S, levels)
    assert abs(J - float(ref_J)) <= 1e-12 * float(ref_J)
    ref = np.array([_central(lambda lv: _rkl_mp(S, lv), levels, j) for j in range(2)])
    np.testing.assert_allclose(g, ref, rtol=1e-6)
    opt = symsched.optimize_schedule(S, 3, divergence="kl-reverse", restarts=0)
    assert np.isfinite(opt.value) and opt.value == pytest.approx(float(_rkl_mp(S, list(opt.alpha_bar))), rel=1e-9)


def test_subnormal_modes_w2_is_not_refused_and_kl_beyond_float64_is() -> None:
    J, g = symsched.divergence_and_grad([1e-320, 1.0], [0.01, 0.5], divergence="w2")
    J_ref, g_ref = symsched.divergence_and_grad([1e-300, 1.0], [0.01, 0.5], divergence="w2")  # the tiny mode adds ~1e-480
    assert J == pytest.approx(J_ref, rel=1e-14) and np.allclose(g, g_ref, rtol=1e-12)
    with pytest.raises(ValueError, match="spectrum: the divergence .* not representable in float64"):
        symsched.divergence_and_grad([1e-320, 1.0], [0.01, 0.5], divergence="kl")  # S/(2P) ~ 1e320: not +inf


_FLOOR_SAMPLERS = [("deis_multistep", {}), ("dpmsolver_multistep", {"final_sigmas_type": "sigma_min"})]


@pytest.mark.parametrize("sampler, settings", _FLOOR_SAMPLERS)
def test_schedule_metrics_kl_of_subnormal_modes_under_a_noise_floor_is_finite(sampler, settings) -> None:
    """A sampler that stops at sigma_min > 0 leaves every mode a noise floor P ~ 0.05: for a subnormal mode r = P/S
    ~ 1e322 lies beyond float64, but KL(data||gen) ~ log(r)/2 ~ 370 does not. schedule_metrics returned +inf (the
    ratio was formed in float64 before its longdouble redo); reference: mpmath's P, summed in mpmath."""
    from symsched.optimize import schedule_metrics

    S, levels = [1e-320, 5e-324, 1e-310, 1.0], [0.01, 0.3, 0.7, 0.95]
    P = symsched.output_spectrum_mp(S, levels, sampler=sampler, dps=60, **settings)
    with mp.workdps(60):
        ref = sum((mpf(s) / p - 1 - mp.log(mpf(s) / p)) / 2 for s, p in zip(S, P))
    m = schedule_metrics(S, levels, sampler=sampler, **settings)
    assert abs(m["kl"] - float(ref)) <= 1e-13 * float(ref), (m, ref)
    assert m["kl_reverse"] == math.inf  # (r - 1 - log r)/2 ~ 5e321: beyond float64, as documented
    J, _ = symsched.divergence_and_grad(S, levels, sampler=sampler, divergence="kl", **settings)
    assert J == m["kl"]


def test_schedule_metrics_floor_check_rejects_a_float64_ratio(monkeypatch) -> None:
    """Companion: with the extreme ratios redone from the float64 product (as before), KL comes back +inf."""
    from symsched import api
    from symsched.optimize import schedule_metrics

    original = api._wide_terms

    def float64_product(fn, f, d, pos, r, rho, S, scale):  # the redo from r = rho kappa/S as float64 formed it
        rho = np.array(rho, dtype=np.float64)
        rho[pos] = np.where(np.isinf(r), np.inf, rho[pos])
        return original(fn, f, d, pos, r, rho, S, scale)

    monkeypatch.setattr(api, "_wide_terms", float64_product)
    sampler, settings = _FLOOR_SAMPLERS[1]
    assert schedule_metrics([1e-320, 1.0], [0.01, 0.3, 0.7, 0.95], sampler=sampler, **settings)["kl"] == math.inf


def test_subnormal_check_rejects_float64_ratios(monkeypatch) -> None:
    """Companion: with the ratios of subnormal modes left in float64, the value comes back wrong (+inf)."""
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "below_float64", lambda prog, S, init, rho: rho)
    opt_value = symsched.optimize_schedule([1e-320, 1.0], 3, divergence="kl-reverse", restarts=0).value
    assert not np.isfinite(opt_value)


def test_a_term_beyond_float64_that_a_small_weight_brings_back_is_summed() -> None:
    """Break-test J: KL's S/(2P) ~ 1e320 of a subnormal mode was stored as float64 inf before its weight 1e-300
    applied, and a finite J = 1.7e19 was refused; without the weight J itself is beyond float64 and named so."""
    ab = sch.standard_schedule("linear-trailing", 6)
    S, w = [0.3, 1e-320], [1.0, 1e-300]
    J, _ = symsched.divergence_and_grad(S, ab, divergence="kl", weights=w, wrt="log_snr")
    P = symsched.output_spectrum_mp(S, ab, dps=60)
    with mp.workdps(60):
        ref = sum(mpf(wi) * (mpf(s) / mpf(p) - 1 - mp.log(mpf(s) / mpf(p))) / 2 for wi, p, s in zip(w, P, S))
    assert J == pytest.approx(float(ref), rel=1e-10)
    with pytest.raises(ValueError, match="spectrum: the divergence .* not representable in float64"):
        symsched.divergence_and_grad(S, ab, divergence="kl")


def _weighted_mp(S, levels, divergence: str, sampler: str, ve: bool, w) -> mpf:
    """sum_i w_i term_i in mpmath on the mpmath path's output, each weight multiplied in mpmath (a term of 1e-320
    weighed 1e308 is 1e-12): W2 = (sqrt P - sqrt S)^2, KL(data||gen) = (r - 1 - log r)/2 with r = S/P, reverse KL
    with r = P/S, and 0 for a mode with S = P = 0 (the only S = 0 modes used with KL here)."""
    fn = symsched.output_spectrum_ve_mp if ve else symsched.output_spectrum_mp
    P = fn(S, levels, sampler=sampler, dps=60)
    with mp.workdps(400):
        total = mpf(0)
        for wi, p, s in zip(w, map(mpf, P), (mpf(float(v)) for v in S)):
            if divergence == "w2":
                t = (mp.sqrt(p) - mp.sqrt(s)) ** 2
            elif s == 0:
                assert p == 0
                t = mpf(0)
            else:
                r = s / p if divergence == "kl" else p / s
                t = (r - 1 - mp.log(r)) / 2
            total += mpf(wi) * t
        return total


def _weighted_slopes_mp(S, levels, divergence: str, sampler: str, ve: bool, w) -> np.ndarray:
    """dJ/d(log-SNR of level j) of :func:`_weighted_mp`: :func:`_level_slopes_mp` of the weighted sum itself (no
    weighted slope rounded to float64 before the sum)."""
    return _level_slopes_mp(lambda lv: [_weighted_mp(S, lv, divergence, sampler, ve, w)], levels, ve)[:, 0]


#: (divergence, sampler, levels, spectrum, weights, VE, the old J): weights spanning beyond one power-of-two scale
_SPREAD_WEIGHTS = [
    ("w2", "ddim", [0.5], [1e-300, 1e300], [1e300, 1e-300], False, 1.0),
    ("w2", "ddim", [0.5], [0.0, 1e-20], [1e300, 1.0], False, 1.0005576689441423e-20),
    ("w2", "ddim", [0.5], [0.0, 1e-20], [1e308, 1.0], False, 0.0),
    ("w2", "ddim", [0.5], [1e-320, 1.0], [1e308, 1.0], False, None),
    ("w2", "euler", [1.0], [0.0, 1e-20], [1e308, 1.0], True, 0.0),
    ("w2", "euler", [2e-155, 1e-156], [1e-310, 1e-312, 1.0], [1e300, 1e302, 1e-300], True, 5.022356399579479e-11),
    ("kl", "ddim", [0.5], [0.0, 1e300], [1e300, 1e-300], False, 0.0),
    ("kl-reverse", "euler", [3e150], [0.0, 1e300], [1e300, 1e-299], True, 0.0),
    ("kl-reverse", "dpmpp_2m", [0.1, 0.7], [0.0, 2.0, 1e300], [1e308, 1e-20, 1e-300], False, 0.0),
]


@pytest.mark.parametrize("case", _SPREAD_WEIGHTS, ids=[
    f"{c[0]}-{c[1]}{'-ve' if c[5] else ''}-K{len(c[2])}-w{max(c[4]):.0e}-{min(c[4]):.0e}" for c in _SPREAD_WEIGHTS])
def test_weights_spanning_beyond_one_scale_keep_every_mode(case) -> None:
    """Audit: every weight was scaled by the one power of two 2^-e of the largest, so weights 2^970 or more below it
    became subnormal or 0, and so did their modes' terms: W2 of S = [1e-300, 1e300] with weights [1e300, 1e-300]
    (each term 1) gave J = 1 for 2; S = [0, 1e-20] weighted [1e308, 1] gave J = 0 (the S = 0 mode's term is an
    exact 0); subnormal terms weighed 1e300 kept a handful of bits (J 4e-11 off). Weights beyond 2^64 are now used
    unscaled, the weighted terms and slopes leaving float64's normal range formed in longdouble. J and the gradient
    are checked against the weighted sum in mpmath (its central differences), which the old J fails."""
    div, name, levels, S, w, ve, old = case
    fn = symsched.divergence_and_grad_ve if ve else symsched.divergence_and_grad
    J, g = fn(S, levels, divergence=div, sampler=name, weights=w, wrt="log_snr")
    want = float(_weighted_mp(S, levels, div, name, ve, w))
    slopes = _weighted_slopes_mp(S, levels, div, name, ve, w)
    assert want > 1e-305 and J == pytest.approx(want, rel=1e-12, abs=0)
    assert np.all(np.abs(slopes) > 1e-300) and g == pytest.approx(slopes, rel=1e-8, abs=0)
    if not ve:  # the value alone (one forward sweep: symsched.api.grouped_value) as well
        from symsched.insight.fits import schedule_objective

        value = schedule_objective(S, levels, divergence=div, sampler=name, weights=w)
        assert value == pytest.approx(want, rel=1e-12, abs=0)
    if old is not None:
        assert old != pytest.approx(want, rel=1e-12, abs=0)  # the old J fails the same check


def test_a_tiny_largest_weight_that_brings_a_term_back_into_range_is_not_refused() -> None:
    """Weights below 2^-64 are scaled up to a largest sum of 1; KL's S/(2P) ~ 1e320 of a subnormal mode, carrying the
    largest weight 1e-300, then left float64 (Unrepresentable, 'spectrum') though J = 1.7e19: such weights are now
    run unscaled where the scaled run fails. (J and the gradient for the value alone and with the gradient.)"""
    ab = sch.standard_schedule("linear-trailing", 6)
    S, w = [0.3, 1e-320], [1e-305, 1e-300]
    want = float(_weighted_mp(S, ab, "kl", "ddim", False, w))
    J, g = symsched.divergence_and_grad(S, ab, divergence="kl", weights=w, wrt="log_snr")
    assert J == pytest.approx(want, rel=1e-12, abs=0) and np.all(np.isfinite(g))
    # the same weights times 2^40: J and the gradient scale exactly (both are linear in the weights)
    J2, g2 = symsched.divergence_and_grad(S, ab, divergence="kl", weights=np.ldexp(w, 40), wrt="log_snr")
    assert J2 == np.ldexp(J, 40) and np.array_equal(g2, np.ldexp(g, 40))
    from symsched.insight.fits import schedule_objective

    assert schedule_objective(S, ab, divergence="kl", weights=w) == pytest.approx(want, rel=1e-12, abs=0)


def test_an_alpha_bar_gradient_that_overflows_under_large_weights_names_the_level() -> None:
    """Audit of 6 December: where dJ/d alpha_bar = (dJ/d log-SNR) / (alpha_bar (1 - alpha_bar)) overflows at a level
    of 1e-150 under weights up to 1e100, the error blamed the weights ("scale them down"), though J and the log-SNR
    gradient are finite (wrt="log_snr" returns them): it names the level and the remedy, as without weights."""
    S, w = [1e-310, 1e-300, 1e-20], [5e-324, 1.0, 1e100]
    ab = [1e-150, 0.03644896378141138, 0.44926066896958916, 0.5119344734114881]
    J, g = symsched.divergence_and_grad(S, ab, divergence="kl", sampler="ddpm", init="exact", weights=w,
                                        wrt="log_snr")
    with np.errstate(over="ignore"):
        assert np.isfinite(J) and np.all(np.isfinite(g)) and np.isinf(abs(g[0]) / 1e-150)  # its alpha_bar form is not
    with pytest.raises(ValueError, match=r"^alpha_bar: dJ/d alpha_bar at alpha_bar\[0\] = 1e-150 overflows "
                                         r"float64; pass wrt='log_snr'"):
        symsched.divergence_and_grad(S, ab, divergence="kl", sampler="ddpm", init="exact", weights=w)


@pytest.mark.parametrize("ve", [False, True])
def test_spread_weights_whose_divergence_exceeds_float64_are_still_named(ve) -> None:
    """Where the weighted J itself is beyond float64 (reverse KL's 367 weighed 1e308), the ValueError still names
    ``weights``, as under the one scale."""
    S, w = [1e-320, 1.0], [1e308, 1.0]
    with pytest.raises(ValueError, match="^weights: with these weights"):
        if ve:
            symsched.divergence_and_grad_ve(S, [1.0], divergence="kl-reverse", weights=w)
        else:
            symsched.divergence_and_grad(S, [0.5], divergence="kl-reverse", weights=w)


# ---------------------------------------------------------------------------------------------
# break-test 46: nearly coincident levels, tiny parameters at pure noise
# ---------------------------------------------------------------------------------------------
def _lsab(l):
    return 1.0 / (1.0 + np.exp(-np.asarray(l, dtype=np.float64)))


_LMS_HEX = ["0x1.78f02564da113p-10", "0x1.2d367c9e00710p-8", "0x1.2d36a7736eb09p-8", "0x1.06b36f88e316bp-7",
            "0x1.8d7ab55a18e69p-3", "0x1.1852f2b04f354p-2", "0x1.f89f85c1ed791p-1"]


@pytest.mark.parametrize("S,ab,init,kw", [
    # one ulp apart: the gap of two rounded log-SNRs was 10 % off, and DPM++ 2M SDE divides by it (2.4e-4)
    ([1e6, 1.0], [0.3, float(np.nextafter(0.3, 1.0)), 0.6, 0.9], "white", dict(sampler="dpmpp_2m_sde")),
    ([1e6, 1.0], [0.3, float(np.nextafter(0.3, 1.0)), 0.6, 0.9], "white", dict(sampler="dpmpp_3m_sde")),
    # longdouble-only modes (S = 1e300) were never checked: 2e-7 off
    ([1e300, 1.0], _lsab([-3, -1, -1 + 1e-12, 2, 5]), "exact", dict(sampler="dpmpp_2m_sde")),
    # longdouble fallback with coefficients that carry less than its 11 extra bits: 4.5e-7 and 1.3e-9 off
    ([1e6], [float.fromhex(h) for h in _LMS_HEX], "white", dict(sampler="lms")),
    ([7.0], _lsab([-3, -1, 2, 2 + 3e-10, 5]), "white", dict(sampler="lms", order=2)),
], ids=["2m_sde-ulp", "3m_sde-ulp", "2m_sde-S1e300", "lms4-close", "lms2-3e-10"])
def test_nearly_coincident_levels_are_exact_or_refused(S, ab, init, kw) -> None:
    """Against the sampler's own equations in mpmath (output_spectrum_mp): within the engine's trust bound
    MAX_ROUNDING = 1e-9 (each case was off by more before, silently)."""
    got = symsched.output_spectrum(S, ab, init=init, **kw)
    ref = np.array([float(v) for v in symsched.output_spectrum_mp(S, ab, init=init, **kw)])
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0)


def test_tiny_parameters_at_pure_noise_are_their_class() -> None:
    """eta = 1e-300 with a first level alpha_bar = 0 raised codegen's internal 'bad integer' (a 300-digit
    rational pinned into the limit), and eta = 0.3 for DPM++ 2M SDE took a minute to derive: the steps from
    alpha_bar = 0 are derived for eta = 0 or eta > 0 and take eta's value as an argument."""
    S, ab = [0.01, 1.0, 100.0], [0.0, 0.01, 0.5]
    ddim0 = symsched.output_spectrum(S, ab, sampler="ddim", eta=0.0)
    for eta in (1e-300, 5e-324):  # DDIM is continuous in eta: eta**2 ~ 1e-600 changes nothing in float64
        np.testing.assert_allclose(symsched.output_spectrum(S, ab, sampler="ddim", eta=eta), ddim0, rtol=1e-14)
    # DPM++ 2M SDE at pure noise: e^{-eta h} with h = inf is 0 for every eta > 0, so tiny etas agree with each other
    tiny = [symsched.output_spectrum(S, ab, sampler="dpmpp_2m_sde", eta=e) for e in (1e-300, 1e-12)]
    np.testing.assert_allclose(tiny[0], tiny[1], rtol=1e-10)
    assert np.all(np.isfinite(tiny[0]))
    with pytest.raises(ValueError, match=r"^eta=1e-300.*too extreme to derive exactly"):  # dpmpp_sde: by value
        symsched.output_spectrum(S, ab, sampler="dpmpp_sde", eta=1e-300)


def test_gradient_sweeps_fall_back_to_longdouble_like_the_value() -> None:
    """break-test 45/48: divergence_and_grad refused (ValueError) a DEIS schedule whose float64 sweep disagrees with
    longdouble by 2e-8 (a fitted heuristic in `symsched report`), though output_spectrum evaluates it via longdouble.
    Now the gradient sweeps rerun in longdouble too, confirmed with mpmath: J against the W2 of
    output_spectrum_mp, interior gradient entries against central differences of that mpmath J."""
    ab = np.array([4.035829765375676e-05, 0.0005095137301111975, 0.0019345172254719176, 0.005179945110140769,
                   0.012994132005233767, 0.03673009986291381, 0.1842847050296406, 0.8151125374593755,
                   0.9999999957970138, 0.9999999970548527])
    S = np.r_[0.0, np.geomspace(1e-3, 1e2, 15)]
    J, g = symsched.divergence_and_grad(S, ab, sampler="deis_multistep", divergence="w2", wrt="log_snr")
    l = sch.alpha_bar_to_log_snr(ab)

    def J_mp(levels):
        P = np.array([float(v) for v in symsched.output_spectrum_mp(S, sch.log_snr_to_alpha_bar(levels),
                                                                    sampler="deis_multistep")])
        return float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2))

    assert J == pytest.approx(J_mp(l), rel=1e-12)
    h = 1e-5
    for i in (1, 5):
        up, down = l.copy(), l.copy()
        up[i] += h
        down[i] -= h
        assert g[i] == pytest.approx((J_mp(up) - J_mp(down)) / (2 * h), rel=1e-6), i


LINEAR_ETA = ["dpmpp_2m_sde", "dpmpp_3m_sde"]  # eta enters as e^{-eta h}: first order in eta (the others: eta^2)


@pytest.mark.parametrize("sampler", LINEAR_ETA)
@pytest.mark.parametrize("eta", [1e-7, 1e-10])
def test_a_small_eta_keeps_its_digits(sampler: str, eta: float) -> None:
    """The kernels took eta only as zeta = 1 - eta^2 (for DDIM's positive sums): eta = 1e-9 rounded to 0, and
    DPM++ 2M SDE at eta = 1e-7 was off by 3e-10 relative against mpmath (its whole effect of 5e-8 is linear in
    eta). They now take eta too. Reference: output_spectrum_mp (the update equations with eta itself, 60 digits);
    tolerance 1e-13, a few hundred ulps of a 6-level recursion."""
    S, ab = np.logspace(-3, 2, 7), np.linspace(0.01, 0.99, 6)
    ref = np.array([float(v) for v in symsched.output_spectrum_mp(S, ab, sampler=sampler, eta=eta)])
    np.testing.assert_allclose(symsched.output_spectrum(S, ab, sampler=sampler, eta=eta), ref, rtol=1e-13)
    # the check tells eta from 0 (what the rounded zeta computed): that spectrum misses by far more than 1e-13
    at_zero = symsched.output_spectrum(S, ab, sampler=sampler, eta=0.0)
    assert np.max(np.abs(at_zero / ref - 1)) > 50 * 1e-13


def test_eta_zero_gradient_of_dpmpp_2m_sde_is_dpmpp_2m() -> None:
    """divergence_and_grad refused eta = 0 for the SDE samplers (their noise sigma sqrt(-expm1(-2 eta h)) has the
    derivative eta e^{-2 eta h}/sqrt(...), 0/0 at eta = 0), though output_spectrum ran it. At eta = 0 k-diffusion's
    DPM++ 2M SDE (midpoint) is its DPM++ 2M: the same value and gradient from another sampler's module."""
    S, ab = np.logspace(-3, 2, 30), np.linspace(0.02, 0.98, 6)
    for div in ("w2", "kl"):
        v, g = symsched.divergence_and_grad(S, ab, sampler="dpmpp_2m_sde", eta=0.0, divergence=div, wrt="log_snr")
        v2, g2 = symsched.divergence_and_grad(S, ab, sampler="dpmpp_2m", divergence=div, wrt="log_snr")
        assert v == pytest.approx(v2, rel=1e-13)
        np.testing.assert_allclose(g, g2, rtol=1e-11, atol=1e-12 * np.max(np.abs(g2)))


@pytest.mark.parametrize("eta", [0.0, 1e-9])
def test_eta_zero_gradient_of_dpmpp_3m_sde_matches_central_differences(eta: float) -> None:
    """As above for DPM++ 3M SDE (no ODE twin in k-diffusion): central differences in log-SNR, step 1e-5, whose
    truncation error (~1e-10 * |J'''|) and rounding (~1e-16 |J| / 1e-5) stay below 1e-7 of the largest entry."""
    S, ab = np.logspace(-3, 2, 30), np.linspace(0.02, 0.98, 6)
    v, g = symsched.divergence_and_grad(S, ab, sampler="dpmpp_3m_sde", eta=eta, wrt="log_snr")
    l, d = np.log(ab / (1 - ab)), 1e-5

    def J(ll: np.ndarray) -> float:
        return symsched.divergence_and_grad(S, 1 / (1 + np.exp(-ll)), sampler="dpmpp_3m_sde", eta=eta)[0]

    fd = np.array([(J(l + d * e) - J(l - d * e)) / (2 * d) for e in np.eye(len(l))])
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-7 * np.max(np.abs(fd)))
    # the check tells the gradient from a wrong one: eta = 0.3's gradient differs from this one by far more
    g3 = symsched.divergence_and_grad(S, ab, sampler="dpmpp_3m_sde", eta=0.3, wrt="log_snr")[1]
    assert np.max(np.abs(g3 - fd)) > 1e3 * 1e-7 * np.max(np.abs(fd))


def test_a_sweep_that_cancels_to_zero_in_both_types_is_not_trusted(monkeypatch) -> None:
    """break-test 53: DEIS on levels [1e-80, 1e-60, 0.5, 0.99] returned an all-zero spectrum and transfer function
    (and KL = inf with a zero gradient): its second-order coefficients (~3e28) cancel to exactly 0 in float64 and
    longdouble alike, and the probe skipped modes whose longdouble value is 0. A positive mode's zero probe is now
    confirmed with mpmath: the few modes are then computed there; the gradient is refused, naming the levels."""
    from symsched.engine import recursion

    S = np.array([0.0, 1.0, 1e12])
    for ab in ([1e-80, 1e-60, 0.5, 0.99], [1e-300, 1e-200, 0.5, 0.99]):
        ref = np.array([float(v) for v in symsched.output_spectrum_mp(S, ab, sampler="deis_multistep")])
        np.testing.assert_allclose(symsched.output_spectrum(S, ab, sampler="deis_multistep"), ref, rtol=1e-9)
        H = np.array([float(v) for v in symsched.transfer_function_mp(S, ab, sampler="deis_multistep")])
        np.testing.assert_allclose(symsched.transfer_function(S, ab, sampler="deis_multistep"), H, rtol=1e-9)
        with pytest.raises(ValueError, match=r"^alpha_bar: this schedule makes the sampler's multistep coefficients"):
            symsched.divergence_and_grad([1.0], ab, sampler="deis_multistep", divergence="kl")
    # the companion: without the zero-probe confirmation (and the perturbation probe, which now catches it too) the
    # same call is silently all zeros again
    monkeypatch.setattr(recursion, "_zero_disagreement", lambda *a: 0.0)
    monkeypatch.setattr(recursion, "_condition", lambda *a: 0.0)
    assert np.all(symsched.output_spectrum(S, [1e-80, 1e-60, 0.5, 0.99], sampler="deis_multistep") == 0)


@pytest.mark.parametrize("sampler, gap", [("lms", 1e-9), ("lms", 1e-7), ("dpmpp_2m", 1e-11), ("dpmsolver_multistep", 1e-11),
                                          ("unipc_multistep", 1e-13), ("deis_multistep", 1e-13),
                                          ("dpmpp_2m_sde", 1e-13), ("dpmpp_3m_sde", 1e-13)])
def test_transfer_function_on_close_levels_is_exact_or_refused(sampler: str, gap: float) -> None:
    """break-test 53: transfer_function had none of output_spectrum's checks: LMS on levels 1e-9 apart gave
    H = 1.971 for 0.99999883 (mpmath), DPM-Solver 2.6e-6 off at 1e-11, UniPC/DEIS/SDE up to 8e-4 at 1e-13. It now
    runs the same rounding check, longdouble rerun and mpmath fallback (few modes) or refuses (many)."""
    ab = [0.3, 0.3 + gap, 0.6, 0.9]
    S = np.array([1.0, 1e6])
    H = np.array([float(v) for v in symsched.transfer_function_mp(S, ab, sampler=sampler)])
    np.testing.assert_allclose(symsched.transfer_function(S, ab, sampler=sampler), H, rtol=1e-9)
    many = np.logspace(-3, 6, 200)
    try:
        got = symsched.transfer_function(many, ab, sampler=sampler)
    except ValueError as exc:
        assert str(exc).startswith("alpha_bar: this schedule makes the sampler's multistep coefficients cancel")
        assert "transfer_function_mp evaluates it exactly" in str(exc)
    else:
        idx = np.arange(0, many.size, 40)
        ref = np.array([float(v) for v in symsched.transfer_function_mp(many[idx], ab, sampler=sampler)])
        np.testing.assert_allclose(got[idx], ref, rtol=1e-9)


def test_transfer_check_rejects_the_unchecked_sweep(monkeypatch) -> None:
    """The companion of the test above: with the check switched off, LMS's transfer function on levels 1e-9 apart
    is wrong again (the 97 % error the check now catches)."""
    from symsched.engine import recursion

    ab, S = [0.3, 0.3 + 1e-9, 0.6, 0.9], np.array([1.0, 1e6])
    H = np.array([float(v) for v in symsched.transfer_function_mp(S, ab, sampler="lms")])
    monkeypatch.setattr(recursion, "rounding_check", lambda *a, **k: (True, 0.0))
    assert np.max(np.abs(symsched.transfer_function(S, ab, sampler="lms") / H - 1)) > 1e-3


def test_dpmpp_sde_gradient_at_r_one() -> None:
    """break-test 53: DPM++ SDE's r = 1 (the top of its range) made the gradient coefficients 0/0, so
    divergence_and_grad refused it and optimize_schedule returned its best start unoptimised (26.80 against
    20.52). The step is now derived with r pinned to 1. Checked against r = 1 - 1e-12 (the value is continuous;
    the gradient moves by ~1e-12 relative) and against central differences (step 1e-5: error ~1e-9)."""
    S = np.array([1e-3, 0.05, 1.0, 30.0, 1e3])
    ab = np.array([0.002, 0.03, 0.2, 0.55, 0.85, 0.97])
    v, g = symsched.divergence_and_grad(S, ab, sampler="dpmpp_sde", r=1.0, wrt="log_snr")
    v2, g2 = symsched.divergence_and_grad(S, ab, sampler="dpmpp_sde", r=1 - 1e-12, wrt="log_snr")
    assert v == pytest.approx(v2, rel=1e-10)
    np.testing.assert_allclose(g, g2, rtol=0, atol=1e-9 * np.max(np.abs(g)))
    l, d = np.log(ab / (1 - ab)), 1e-5

    def J(ll: np.ndarray) -> float:
        return symsched.divergence_and_grad(S, 1 / (1 + np.exp(-ll)), sampler="dpmpp_sde", r=1.0)[0]

    fd = np.array([(J(l + d * e) - J(l - d * e)) / (2 * d) for e in np.eye(len(l))])
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-7 * np.max(np.abs(fd)))


def test_w2_gradient_where_the_output_is_exactly_zero_says_why() -> None:
    """break-test 53: Euler ancestral with s_noise = 0 from alpha_bar = 0 outputs exactly 0 (it keeps nothing of its
    start and adds no noise); W2's gradient there is undefined (d sqrt(P)/dP = inf), and the error blamed 'a level
    this close to pure noise with modes this large' for S = 1 and a level of 0.2."""
    assert np.all(symsched.output_spectrum([1.0, 2.0], [0.0, 0.2], sampler="euler_ancestral", s_noise=0.0) == 0)
    with pytest.raises(ValueError, match=r"^alpha_bar: the gradient at level 1 is undefined: the output variance of "
                                         r"the mode S=1 is exactly 0"):
        symsched.divergence_and_grad([1.0, 2.0], [0.0, 0.2], sampler="euler_ancestral", s_noise=0.0)


_NEAR_MAX = ([1e-310, 1e-200], [0.01, 0.3, 0.7, 0.95])  # LMS: P = 2.9e-619 for S = 1e-310, S/(2P) = 1.69e308


def test_a_gradient_beyond_float64_is_not_blamed_on_an_exact_zero_output() -> None:
    """LMS on a subnormal-sized mode: P = 2.9e-619 (mpmath) underflows float64 but is not 0, and KL = 1.69e308 is
    finite while its gradient (about 17 times that) is not; the error said the output variance 'is exactly 0'."""
    from symsched.optimize import schedule_metrics

    S, levels = _NEAR_MAX
    P = symsched.output_spectrum_mp(S, levels, sampler="lms", dps=60)
    assert 0 < P[0] < mpf("1e-600")
    with mp.workdps(60):
        ref = sum((mpf(s) / p - 1 - mp.log(mpf(s) / p)) / 2 for s, p in zip(S, P))
    assert abs(schedule_metrics(S, levels, sampler="lms")["kl"] - float(ref)) <= 1e-13 * float(ref)
    with pytest.raises(ValueError, match=r"^alpha_bar: the gradient at level 3 lies beyond the float64 range") as exc:
        symsched.divergence_and_grad(S, levels, sampler="lms", divergence="kl")
    assert "exactly 0" not in str(exc.value)


def test_an_exact_zero_output_check_on_the_underflowed_variance_misleads(monkeypatch) -> None:
    """Companion: telling an exact zero output by P = rho kappa in float64 (as before) blames the zero output."""
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "_zero_output", lambda rho, S: (rho * recursion.kappa(S) == 0) & (S > 0))
    with pytest.raises(ValueError, match="exactly 0"):
        symsched.divergence_and_grad(*_NEAR_MAX, sampler="lms", divergence="kl")


def test_gradient_reduction_without_the_longdouble_coefficients_is_wrong(monkeypatch) -> None:
    """The companion of the break-test 53 cases above: reducing with the float64 copy of the gradient coefficients
    (where 1.5e-325 is 0) gives Heun's old gradient, twice the right first entry."""
    from symsched.engine import recursion

    good = symsched.divergence_and_grad([1e200], [1e-200, 1e-190], sampler="heun", divergence="kl", wrt="log_snr")[1]
    monkeypatch.setattr(recursion, "_gamma", lambda st, R: st.gamma)
    bad = symsched.divergence_and_grad([1e200], [1e-200, 1e-190], sampler="heun", divergence="kl", wrt="log_snr")[1]
    assert abs(bad[0] / good[0] - 2) < 1e-6 and abs(bad[1]) > 0.5


def test_mpmath_residue_of_an_exact_zero_at_s_zero_settles() -> None:
    """break-test 53: transfer_function_mp([0], LMS on [0.3, 0.30001, 0.6, 0.9]) never settled ('within 4000 working
    digits'): the exact H(0) is 0 (the last step returns the denoised 0), and LMS's close-level weights amplify the
    rounding residue to ~10**(-work + 2), above the agreement floor 10**-work, at every precision. A value at S = 0
    that falls with the working precision in two comparisons running is that residue, returned as an exact 0; a
    small genuine value stays (review: DEIS's P(0) ~ sigma_last^2 = 1.01e-200 was zeroed by a magnitude rule)."""
    from symsched.engine import highprec

    H = symsched.transfer_function_mp([0.0, 1.0], [0.3, 0.30001, 0.6, 0.9], sampler="lms")
    assert H[0] == 0 and abs(float(H[1]) - 0.536129991017336) < 1e-14
    P = symsched.output_spectrum_ve_mp([0.0, 1e-3], [10.0, 1.0, 0.1, 1e-100], sampler="deis_multistep", dps=30)
    with mp.workdps(40):  # 1.01 sigma_last^2 of the float64 sigma_last = 1e-100 (itself 1e-100 (1 + 2e-17))
        assert abs(P[0] / (mpf("1.01") * mpf(1e-100) ** 2) - 1) < mpf(10) ** -25
    assert symsched.output_spectrum_ve([0.0, 1e-3, 1.0], [1e40, 1e30, 1.0, 1e-100], sampler="deis_multistep")[0] \
        == pytest.approx(1e-200, rel=1e-9, abs=0)  # the float engine's mpmath fallback keeps it too
    # the rule itself: the first two residues of the LMS run shrink by 30 orders for 30 more digits; a value does not
    a, b = np.array([mpf("4.65e-59")], dtype=object), np.array([mpf("8.8585e-89")], dtype=object)
    assert highprec._shrinking(a, b, 30)[0]
    assert not highprec._shrinking(np.array([mpf("1.01e-200")], dtype=object), np.array([mpf("1.01e-200")],
                                   dtype=object), 30)[0]
    assert not highprec._agree(a, b, 50, 61)  # without the rule the residues never agree


def test_the_value_at_s_zero_does_not_depend_on_the_other_modes() -> None:
    """audit of 4 December: LMS order 3 on sigmas [1, 1 - 1e-6, 1 - 2e-6] returned P(0) = 1.0e-171 with the mode
    1e-3 beside it and 0 alone. The exact P(0) is 0: at S = 0 the denoiser is 0, the slope d = x/sigma is constant
    along x = c sigma, every LMS step integrates it exactly and the last lands on sigma = 0. The working digits grow
    with the other modes' span, and two residues both below the agreement floor passed as a value: a value below it
    that still moves with the precision at S = 0 is a residue (0); a settled one (DEIS's 1e-200 above) stays."""
    from symsched.engine import highprec

    sig = [1.0, 0.999999, 0.999998]
    for S in ([0.0], [0.0, 1e-3], [0.0, 1e-12, 1e-3, 0.5, 1.0, 30.0, 1e4, 1e12]):
        assert symsched.output_spectrum_ve(S, sig, sampler="lms", order=3)[0] == 0.0, S
        assert symsched.transfer_function_ve(S, sig, sampler="lms", order=3)[0] == 0.0, S
    for dps in (30, 50, 80):
        assert symsched.output_spectrum_ve_mp([0.0, 1e-3], sig, sampler="lms", order=3, dps=dps)[0] == 0
    def one(x: str) -> np.ndarray:
        return np.array([mpf(x)], dtype=object)

    moving, settled = highprec._unsettled(one("1.1e-159"), one("5.6e-250"), 30), highprec._unsettled(
        one("1.01e-200"), one("1.01e-200"), 30)
    assert moving[0] and not settled[0]


def test_transfer_from_pure_noise_of_ve_samplers_is_zero_without_mpmath() -> None:
    """Review of the transfer checks: a VE sampler (k-diffusion's) from alpha_bar = 0 has native scale c0 = 0, so
    the mpmath reference divided by it was 0/0 and transfer_function refused (DPM++ 2M SDE on a 200-level zero-SNR
    grid: 'no wider type confirmed them') where H = H_vp * 0 = 0; a step whose start weight SymPy derived as 0
    (e^{-eta h} at h = inf) makes H structurally 0 too, with no mpmath run. Reference: transfer_function_mp."""
    S = np.logspace(-3, 3, 40)
    ab = np.concatenate([[0.0], np.linspace(0.02, 0.98, 199)])
    for sampler in ("dpmpp_2m_sde", "dpmpp_3m_sde", "lms"):
        assert all(v == 0 for v in symsched.transfer_function_mp([0.5, 2.0], [0.0, 0.3, 0.6, 0.9], sampler=sampler))
        assert np.all(symsched.transfer_function(S, ab, sampler=sampler) == 0)
        assert np.all(symsched.transfer_function_ve(S, [np.inf, 1.0, 0.99, 0.5], sampler=sampler) == 0)


def _mp_reverse_kl_ddim_one_step(S: list, l):
    """KL(generated || data) = 1/2 sum (r - 1 - log r), r = P/S, of DDIM from one level alpha_bar = sigmoid(l) to
    the clean level (x_out = x0_hat = sqrt(a) S / lam x_t, P = a S^2 / lam^2, lam = a S + 1 - a), in mpmath."""
    with mp.workdps(60):
        a = 1 / (1 + mp.exp(-l))
        J = mpf(0)
        for s in map(mpf, S):
            r = a * s / (a * s + 1 - a) ** 2
            J += (r - 1 - mp.log(r)) / 2
        return J


@pytest.mark.parametrize("S,ab", [([1e-150], 1e-200), ([1e-150, 1.0], 1e-200), ([1e-150], 1e-172), ([1e-150], 1e-170)])
def test_reverse_kl_where_p_over_s_leaves_float64(S, ab) -> None:
    """break-test: r = P/S below the float64 normal range (P = 1e-500 for S = 1e-150) made the gradient path's KL
    +inf (log 0) with a zero gradient, or lost 5 digits as a subnormal r; the values alone were right. The sweeps
    are rerun in longdouble there, as the values' path recomputes those ratios."""
    J, g = symsched.divergence_and_grad(S, [ab], divergence="kl-reverse", sampler="ddim", wrt="log_snr")
    with mp.workdps(60):
        l, h = mp.log(mpf(ab) / (1 - mpf(ab))), mpf("1e-20")
        ref = _mp_reverse_kl_ddim_one_step(S, l)
        dref = (_mp_reverse_kl_ddim_one_step(S, l + h) - _mp_reverse_kl_ddim_one_step(S, l - h)) / (2 * h)
    assert abs(J - float(ref)) <= 1e-12 * float(ref), (J, float(ref))
    assert abs(g[0] - float(dref)) <= 1e-9 * abs(float(dref)), (g, float(dref))


def test_forward_kl_beyond_float64_is_refused_not_an_infinite_value() -> None:
    """break-test: KL(data || generated) ~ S/(2P) = 5e349 came back (inf, [0]) at alpha_bar = 1e-200 but as the
    documented refusal at 1e-170: a +inf flagged by the float64 sweep stuck after the longdouble one."""
    for ab in (1e-200, 1e-170):
        with pytest.raises(ValueError, match=r"^spectrum: the divergence \(inf\) is not representable in float64"):
            symsched.divergence_and_grad([1e-150], [ab], divergence="kl", sampler="ddim", wrt="log_snr")


def test_without_the_longdouble_rerun_the_reverse_kl_is_wrong(monkeypatch) -> None:
    """Companion: with the rerun switched off the comparison above fails (+inf, or digits lost)."""
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "_below_normal", lambda S, rho, prog: np.zeros(np.shape(S), dtype=bool))
    J, _ = symsched.divergence_and_grad([1e-150], [1e-200], divergence="kl-reverse", sampler="ddim", wrt="log_snr")
    assert not abs(J - 402.452391273958) <= 1e-6 * 402.45


def test_ve_gradient_in_log_snr_is_the_sigma_gradient_chained() -> None:
    """divergence_and_grad_ve(wrt="log_snr") (break-test: a VE user could not avoid dJ/d sigma's 2/sigma scaling of
    the rounding error): dJ/d sigma = -2 dJ/d l / sigma, l = -2 log sigma, checked against central differences."""
    S, sig = np.logspace(-2, 2, 7), np.array([20.0, 3.0, 0.4, 0.05])
    J, g_l = symsched.divergence_and_grad_ve(S, sig, divergence="kl", sampler="dpmpp_2m", wrt="log_snr")
    J2, g_s = symsched.divergence_and_grad_ve(S, sig, divergence="kl", sampler="dpmpp_2m")
    assert J == J2
    np.testing.assert_allclose(g_s, -2.0 * g_l / sig, rtol=1e-12)
    h = 1e-6
    for k in range(sig.size):
        up, dn = sig.copy(), sig.copy()
        up[k] *= np.exp(-h / 2)  # l + h
        dn[k] *= np.exp(h / 2)
        fd = (symsched.divergence_and_grad_ve(S, up, divergence="kl", sampler="dpmpp_2m")[0]
              - symsched.divergence_and_grad_ve(S, dn, divergence="kl", sampler="dpmpp_2m")[0]) / (2 * h)
        assert abs(fd - g_l[k]) <= 1e-5 * max(abs(g_l[k]), 1e-3), (k, fd, g_l[k])
    with pytest.raises(ValueError, match="wrt must be one of"):
        symsched.divergence_and_grad_ve(S, sig, wrt="alpha_bar")


def test_sigmas_to_alpha_bar_refuses_exactly_where_alpha_bar_rounds_to_zero() -> None:
    """Audit of 4 December: the docs said sigmas above ~4.5e161 are refused; 1/(1 + sigma^2) rounds to 0 only below
    half the smallest subnormal, 2**-1075, i.e. above sigma = 2**537.5 ~ 6.36e161 (4.5e161 gives 5e-324)."""
    from symsched.schedules import sigmas_to_alpha_bar

    edge = 2.0**537.5
    assert sigmas_to_alpha_bar([4.5e161, 0.999 * edge])[1] == 5e-324
    with pytest.raises(ValueError, match=r"sigmas too large \(above about 6\.4e161"):
        sigmas_to_alpha_bar([1.001 * edge])


@pytest.mark.parametrize("divergence", ["kl", "kl-reverse"])
def test_a_kl_of_order_eps_squared_keeps_its_digits(divergence) -> None:
    """break-test: with P/S = 1 + 3e-9 the forward KL's ratio form (rho (log rho - 1) + 1)/(2 rho) rounded log rho - 1
    and returned exactly 0 for 4.45e-18 (so the optimiser saw a flat 0 and stopped ABNORMAL); kl-reverse kept its
    digits. Both now agree with 50-digit mpmath to the precision of rho itself (~eps / (rho - 1))."""
    import mpmath as mp

    S = np.array([2.0])
    ab = 1 / (1 + np.exp(-np.array([17.47154272, 17.82091613, 18.16060959, 18.92984083])))
    J, _ = symsched.divergence_and_grad(S, ab, divergence=divergence, sampler="ddim", init="exact")
    with mp.workdps(50):
        x = mp.mpf(2) / symsched.output_spectrum_mp(S, ab, sampler="ddim", init="exact", dps=50)[0]  # S / P
        want = float((x - 1 - mp.log(x)) / 2 if divergence == "kl" else (1 / x - 1 + mp.log(x)) / 2)
    assert 4e-18 < want < 5e-18
    assert J == pytest.approx(want, rel=1e-6, abs=0)  # (approx's default abs=1e-12 would accept 0)


def _ddim_exact_mp(S: float, levels, shift=None) -> mpf:
    """DDIM (eta 0) from the exact start, written here in mpmath from docs/model.md §4-5: v = lambda(a_0);
    v <- g^2 v with g = (sqrt(a_s a_t) S + sqrt((1 - a_s)(1 - a_t))) / lambda(a_t), to the clean level a = 1."""
    a = [mpf(float(v)) for v in levels]
    if shift is not None:
        a[shift[0]] += shift[1]
    a.append(mpf(1))
    s = mpf(float(S))
    v = a[0] * s + 1 - a[0]
    for t, u in zip(a[:-1], a[1:]):
        v *= ((mp.sqrt(u * t) * s + mp.sqrt((1 - u) * (1 - t))) / (t * s + 1 - t)) ** 2
    return v


def _euler_exact_mp(S: float, sigmas, shift=None) -> mpf:
    """EDM Euler from the exact start, written here: v = S + sigma_0^2; gain 1 + (sigma' - sigma) sigma/(S + sigma^2)
    (x' = x + (sigma' - sigma)(x - D)/sigma with D = S/(S + sigma^2) x), to sigma = 0."""
    sg = [mpf(float(v)) for v in sigmas]
    if shift is not None:
        sg[shift[0]] += shift[1]
    sg.append(mpf(0))
    s = mpf(float(S))
    v = s + sg[0] ** 2
    for t, u in zip(sg[:-1], sg[1:]):
        v *= (1 + (u - t) * t / (s + t * t)) ** 2
    return v


@pytest.mark.parametrize("big", [1e20, 10**31.25, 1e33, 1e258, 1e300])
@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_w2_of_a_huge_mode_from_the_exact_start_is_resolved(big: float, sampler: str) -> None:
    """Audit of 5 December: W2 from init="exact" with one huge mode (its output P ~ S - 31) came out 0.935 for
    0.0581 at S = 1.8e31, 12.4 at 1e33, 1.5e267 at 1e300, with gradients as wrong: S (sqrt(P/S) - 1)^2 of a
    rounded P/S is S ulp^2. Those terms are now recomputed in mpmath: J and its gradient match a recursion written
    here at 700 digits (central differences with step 1e-300)."""
    mp.dps = 700
    try:
        S = np.array([1.0, big])
        if sampler == "ddim":
            x = np.array([0.02, 0.3, 0.7, 0.95])
            J, g = symsched.divergence_and_grad(S, x, divergence="w2", sampler="ddim", init="exact")
            run = _ddim_exact_mp
        else:
            x = np.array([80.0, 10.0, 1.0, 0.1])
            J, g = symsched.divergence_and_grad_ve(S, x, divergence="w2", sampler="euler", init="exact")
            run = _euler_exact_mp

        def J_mp(shift=None) -> mpf:
            return sum((mp.sqrt(run(s, x, shift)) - mp.sqrt(mpf(float(s)))) ** 2 for s in S)

        assert J == pytest.approx(float(J_mp()), rel=1e-9)
        h = mpf("1e-300")
        ref = [float((J_mp((i, h)) - J_mp((i, -h))) / (2 * h)) for i in range(x.size)]
        np.testing.assert_allclose(g, ref, rtol=1e-7, atol=1e-10 * max(map(abs, ref)))  # a flat entry: ulps of the norm
    finally:
        mp.dps = 15


def _dpmpp_2m_gain_mp(S: mpf, sig: list) -> mpf:
    """H of k-diffusion's sample_dpmpp_2m from ``sig[0]`` through ``sig[-1]`` (mpmath numbers; exact denoiser
    S/(S + sigma^2)), written here from its update: x <- (s'/s) x - expm1(-h) D_d, D_d = (1 + 1/2r) D - D_old/2r
    (D itself on the first step), and x <- D on a step to sigma = 0."""
    c, old, h_last = mpf(1), None, None
    for i in range(len(sig) - 1):
        den = S / (S + sig[i] ** 2) * c
        if sig[i + 1] == 0:
            c = den
            continue
        h = mp.log(sig[i] / sig[i + 1])
        dd = den if old is None else (1 + h / (2 * h_last)) * den - old * h / (2 * h_last)
        c, old, h_last = sig[i + 1] / sig[i] * c - mp.expm1(-h) * dd, den, h
    return c


def _dpmpp_2m_exact_mp(s: float, alpha_bar: list[float]) -> mpf:
    """P of k-diffusion's sample_dpmpp_2m on sigma = sqrt((1 - a)/a) (no step to 0), x0 of variance S + sigma_0^2."""
    S = mpf(float(s))
    sig = [mp.sqrt((1 - mpf(a)) / mpf(a)) for a in alpha_bar]
    return _dpmpp_2m_gain_mp(S, sig) ** 2 * (S + sig[0] ** 2)


def _dpmpp_2m_ve_H_mp(s: float, sigmas: list[float]) -> mpf:
    """H of k-diffusion's sample_dpmpp_2m on ``sigmas`` + [0], as it runs them (:func:`_dpmpp_2m_gain_mp`)."""
    return _dpmpp_2m_gain_mp(mpf(float(s)), [mpf(float(x)) for x in sigmas] + [mpf(0)])


#: break-test of 7 December: levels 1e-12 apart, then one beyond the float64 range (every sweep in longdouble)
_CLOSE_THEN_TINY = [1e-8, 9.999999999990001e-09, 1e-200]


def _close_then_tiny_errors() -> tuple[float, float]:
    """Worst relative error of dpmpp_2m's H and P (white start) on _CLOSE_THEN_TINY with S = 0, 1e-14, 1, 1e20 in
    one call, against :func:`_dpmpp_2m_ve_H_mp` at 200 digits."""
    S = np.array([0.0, 1e-14, 1.0, 1e20])
    with mp.workdps(200):
        H_ref = np.array([float(_dpmpp_2m_ve_H_mp(x, _CLOSE_THEN_TINY)) for x in S])
    H = symsched.transfer_function_ve(S, _CLOSE_THEN_TINY, sampler="dpmpp_2m")
    P = symsched.output_spectrum_ve(S, _CLOSE_THEN_TINY, sampler="dpmpp_2m")
    P_ref = (H_ref * _CLOSE_THEN_TINY[0]) ** 2
    assert H[0] == 0.0 and P[0] == 0.0  # S = 0: the last step returns the denoised value, 0
    return float(np.max(np.abs(H[1:] / H_ref[1:] - 1))), float(np.max(np.abs(P[1:] / P_ref[1:] - 1)))


def test_a_longdouble_sweep_is_confirmed_where_its_cancellation_hits() -> None:
    """Break-test of 7 December: a program beyond the float64 range was confirmed with mpmath at the smallest mode,
    the middle one and the largest only: with S = 0, 1e-14, 1, 1e20 in one call those were 0, 1 and 1e20, which the
    cancellation of the close levels barely touches, and S = 1e-14 came back 1.1e-5 off (right alone). The modes
    confirmed now spread in log S over the positive ones."""
    err_H, err_P = _close_then_tiny_errors()
    assert err_H <= 1e-9 and err_P <= 1e-9


def test_the_confirmation_at_the_old_modes_misses_the_cancellation(monkeypatch) -> None:
    """The companion: confirmed at the old three modes (smallest, middle, largest) the same call is 1e-5 off."""
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "_confirm_modes", lambda S: np.unique([0, S.size // 2, S.size - 1]))
    err_H, err_P = _close_then_tiny_errors()
    assert err_H > 1e-6 and err_P > 1e-6


def test_confirmation_modes_spread_over_the_positive_modes_in_log_s() -> None:
    """The modes mpmath confirms a longdouble sweep at: the smallest and largest positive mode and three nearest to
    log-spaced points between them (S = 0 left out), every mode when there are at most five."""
    from symsched.engine.recursion import _confirm_modes

    S = np.concatenate([[0.0], np.geomspace(1e-20, 1e20, 41)])  # one mode per decade
    np.testing.assert_allclose(S[_confirm_modes(S)], [1e-20, 1e-10, 1.0, 1e10, 1e20], rtol=1e-12, atol=0)
    assert _confirm_modes(np.array([0.0, 1e-14, 1.0, 1e20])).tolist() == [1, 2, 3]
    assert _confirm_modes(np.array([0.0])).tolist() == [0]


def test_a_longdouble_sweep_off_at_one_mode_is_untrusted_when_that_mode_is_confirmed() -> None:
    """_confirmed compares the longdouble sweep with ``exact`` at :func:`_confirm_modes` and at the mode where float64
    disagreed most: a sweep off at a mode between the log-spaced ones passes unless that mode is the amplified one."""
    from symsched.engine.recursion import _confirmed, _most_amplified

    S = np.geomspace(1e-20, 1e20, 41)
    truth = S / (1 + S)  # any exact values
    rho = truth.copy()
    rho[13] *= 1 + 1e-6  # off at S = 1e-7, not a confirmation mode
    exact = lambda Sx: Sx / (1 + Sx)  # noqa: E731  (scale = ones: rho is compared as it is)
    ones = np.ones_like
    assert _confirmed(rho, S, exact, 0.0, ones) == (True, 0.0)
    values64 = truth.copy()
    values64[13] *= 1 + 1e-3  # float64 disagreed most there
    amplified = _most_amplified(values64, rho)
    assert amplified == 13
    trusted, worst = _confirmed(rho, S, exact, 0.0, ones, amplified)
    assert not trusted and worst == pytest.approx(1e-6, rel=1e-6)


def _dpmpp_sde_P_mp(s: float, sigmas: list[float], eta: float = 1.0, r: float = 0.5) -> mpf:
    """P of k-diffusion's sample_dpmpp_sde (s_noise = 1, white start of variance sigma_0^2) on ``sigmas`` + [0], written
    here from its update; its two noises of a step are the Brownian increments over [sigma_s, sigma_i] and
    [sigma_{i+1}, sigma_s] that its BrownianTreeNoiseSampler draws (normalised: correlated). Get_ancestral_step's min
    is taken in exact arithmetic (it does not bind on the levels used here)."""
    S, e = mpf(float(s)), mpf(eta)
    sig = [mpf(float(x)) for x in sigmas] + [mpf(0)]
    var, x = {"x0": sig[0] ** 2}, {"x0": mpf(1)}

    def lin(*terms: tuple) -> dict:
        out: dict = {}
        for c, v in terms:
            for k, a in v.items():
                out[k] = out.get(k, mpf(0)) + c * a
        return out

    def ancestral(f: mpf, t: mpf) -> tuple[mpf, mpf]:
        up = min(t, e * mp.sqrt(t**2 * (f**2 - t**2) / f**2))
        return mp.sqrt(t**2 - up**2), up

    for i in range(len(sig) - 1):
        den = S / (S + sig[i] ** 2)
        if sig[i + 1] == 0:  # Euler to the denoised value
            x = lin((den, x))
            continue
        t, h = -mp.log(sig[i]), mp.log(sig[i] / sig[i + 1])
        sig_s = mp.exp(-(t + h * mpf(r)))
        a, b = sig[i] - sig_s, sig_s - sig[i + 1]
        var[("a", i)], var[("b", i)] = a, b
        n1 = {("a", i): 1 / mp.sqrt(a)}
        n2 = {("a", i): 1 / mp.sqrt(a + b), ("b", i): 1 / mp.sqrt(a + b)}
        down, up = ancestral(sig[i], sig_s)
        x2 = lin((down / sig[i], x), (-(down / sig[i] - 1) * den, x), (up, n1))
        den2 = lin((S / (S + sig_s**2), x2))
        down, up = ancestral(sig[i], sig[i + 1])
        dd = lin((1 - 1 / (2 * mpf(r)), lin((den, x))), (1 / (2 * mpf(r)), den2))
        x = lin((down / sig[i], x), (-(down / sig[i] - 1), dd), (up, n2))
    return mp.fsum(c * c * var[k] for k, c in x.items())


#: break-test of 7 December: sigmas 1e-12 apart, then one beyond the float64 range
_SDE_CLOSE = [7.0330470829985e+98, 7.033047082991468e+98, 1e-300]


def _sde_close_error() -> float:
    S = np.array([1.0, 1e6])
    with mp.workdps(80):
        ref = np.array([float(_dpmpp_sde_P_mp(x, _SDE_CLOSE)) for x in S])
    P = symsched.output_spectrum_ve(S, _SDE_CLOSE, sampler="dpmpp_sde", eta=1.0)
    return float(np.max(np.abs(P / ref - 1)))


def test_one_entry_coefficients_that_cancel_come_from_mpmath() -> None:
    """Break-test of 7 December: dpmpp_sde (one entry, two noises a step) on sigmas 1e-12 apart then 1e-300 was 2.2e-8
    off with no error: the coefficient loss was measured only for samplers with memory, and level coefficients were
    recomputed in mpmath only for programs within the float64 range."""
    assert _sde_close_error() <= 1e-9


def test_one_entry_coefficients_without_mpmath_are_off(monkeypatch) -> None:
    """The companion: with the threshold for mpmath coefficients out of reach the same call is 2e-8 off."""
    from symsched.engine import program

    monkeypatch.setattr(program, "MP_COEFFICIENT_LOSS", math.inf)
    assert _sde_close_error() > 1e-9


@pytest.mark.parametrize("big", [1e20, 1e26, 1e100])
def test_w2_of_a_huge_mode_whose_own_rounding_dominates_j_is_resolved(big: float) -> None:
    """Audit of 5 December (an independent 300-digit simulation): dpmpp_2m from the exact start on [0.126, 0.1405,
    0.99956, 0.99999999984] rounds P/S by ~5e-13 (its extrapolation weights are large), so the one huge mode's rounded
    term (J = 7.4 for 5.5e-24 at S = 1e26) was the whole objective and hid itself from the refinement, which compared
    the mode's rounding floor with that J. The near modes' own terms no longer count in that comparison."""
    mp.dps = 150
    try:
        ab = [0.126, 0.1405, 0.99956, 0.99999999984]
        J, _ = symsched.divergence_and_grad([big], ab, divergence="w2", sampler="dpmpp_2m", init="exact")
        P = _dpmpp_2m_exact_mp(big, ab)
        assert J == pytest.approx(float((mp.sqrt(P) - mp.sqrt(mpf(big))) ** 2), rel=1e-9, abs=0)
    finally:
        mp.dps = 15


def test_w2_resolution_check_rejects_the_rounded_ratio(monkeypatch) -> None:
    """The companion: without the mpmath refinement (the rounded ratio alone) the same case is far off."""
    from symsched import api

    monkeypatch.setattr(api, "_unresolved", lambda *a, **k: np.empty(0))
    J, _ = symsched.divergence_and_grad(np.array([1.0, 1e33]), np.array([0.02, 0.3, 0.7, 0.95]), divergence="w2",
                                        sampler="ddim", init="exact")
    assert abs(J - 0.05814096) > 1.0


#: audit of 6 December: a KL term whose ratio float64 rounds to 1, magnified by its weight, was the whole J
_WEIGHTED_KL = [
    ([1e150], [0.006012405622695671, 0.07817683909312867, 0.41453347887879655, 0.7, 0.8759636727567353], [1e100],
     "kl", dict(sampler="ddpm", variance="beta")),  # J was 1.2e68
    ([1e-3, 1e20], [0.01, 0.5], [1.0, 1e50], "kl", dict(sampler="ddim", eta=0.5)),  # J was 497 (too small)
    ([1.7e308], [1e-20, 0.7], [1e300], "kl-reverse", dict(sampler="ddpm")),  # J was 1.8e268; the term is 8.7e-578
]


def _weighted_kl_mp(S: list, levels: list, w: list, divergence: str, settings: dict) -> mpf:
    """sum w (r - 1 - log r)/2 from mpmath's P at 400 digits (r = S/P for "kl", P/S for "kl-reverse")."""
    P = symsched.output_spectrum_mp(S, levels, init="exact", dps=400, **settings)
    with mp.workdps(400):
        total = mpf(0)
        for s, p, weight in zip(S, P, w):
            r = mpf(s) / p if divergence == "kl" else p / mpf(s)
            total += weight * (r - 1 - mp.log(r)) / 2
        return total


@pytest.mark.parametrize("S, levels, w, divergence, settings", _WEIGHTED_KL)
def test_a_weighted_kl_term_within_rounding_of_zero_is_resolved(S, levels, w, divergence, settings) -> None:
    """A mode whose output matches it to rounding (a huge mode from the exact start) has a KL term of ~(P/S - 1)^2,
    rounding noise in float64, which a weight of 1e50-1e300 made the whole objective (or hid: 497 for 1.7e13). Its
    P/S - 1 is recomputed in mpmath, as W2's, and the term formed from it; reference: mpmath's P at 400 digits."""
    J, _ = symsched.divergence_and_grad(S, levels, divergence=divergence, init="exact", weights=w, **settings)
    ref = _weighted_kl_mp(S, levels, w, divergence, settings)
    assert abs(J - float(ref)) <= 1e-9 * float(ref), (J, ref)


def test_kl_resolution_check_rejects_the_rounded_ratio(monkeypatch) -> None:
    """Companion: without the refinement (the rounded ratio alone) the weighted KL above is far off."""
    from symsched import api

    monkeypatch.setattr(api, "_unresolved", lambda *a, **k: np.empty(0))
    S, levels, w, divergence, settings = _WEIGHTED_KL[1]
    J, _ = symsched.divergence_and_grad(S, levels, divergence=divergence, init="exact", weights=w, **settings)
    assert abs(J / float(_weighted_kl_mp(S, levels, w, divergence, settings)) - 1) > 0.5


def test_w2_refinement_leaves_ordinary_spectra_alone_and_agrees_across_paths(monkeypatch) -> None:
    """Review of 5 December: a first criterion (each term to 1e-13 of its chunk's J) refined every mode of a good
    fit and refused the built-in spectrum under Heun on 200 Karras levels; chunked gradient sweeps judged each group
    against its own sum, so the value ran and the gradient raised. Ordinary spectra (scaled up to 1e10, either
    start) never reach mpmath; a huge mode among 4,000 others, over both sweep groups (S <= 1 and S > 1) and
    several chunks, is refined once, and the value path and the gradient path give the same J."""
    from symsched import api, optimize, spectra

    calls = []
    real = api._refined
    monkeypatch.setattr(api, "_refined", lambda S, *a: calls.append(np.size(S)) or real(S, *a))
    S = spectra.load_spectrum("builtin:natural-patches")
    sig = sch.alpha_bar_to_sigmas(sch.karras(200))
    P = spectra.power_law((64, 64), alpha=2.0)
    for spectrum in (S, P * 1e6):  # (the second: J = 7.4e-10, which float64 gives to 2e-5 of mpmath's)
        for init, divergence in itertools.product(("white", "exact"), ("w2", "kl", "kl-reverse")):
            J, g = symsched.divergence_and_grad_ve(spectrum, sig, divergence=divergence, sampler="heun", init=init)
            assert np.isfinite(J) and np.all(np.isfinite(g))
    for scale, K in ((1e6, 50), (1e10, 10)):
        ab = sch.standard_schedule("linear-trailing", K)
        J, _ = symsched.divergence_and_grad(P * scale, ab, divergence="w2", init="exact")
        assert J == pytest.approx(optimize.schedule_metrics(P * scale, ab, init="exact")["w2"] ** 2, rel=1e-9)
    assert calls == []
    big = np.concatenate([np.linspace(0.01, 5.0, 4000), [1e33]])
    ab = np.array([0.02, 0.3, 0.7, 0.95])
    J, _ = symsched.divergence_and_grad(big, ab, divergence="w2", init="exact")
    assert calls and all(n == 1 for n in calls)
    assert J == pytest.approx(optimize.schedule_metrics(big, ab, init="exact")["w2"] ** 2, rel=1e-12)
    rest = float(np.sum((np.sqrt(symsched.output_spectrum(big[:-1], ab, init="exact")) - np.sqrt(big[:-1])) ** 2))
    assert J == pytest.approx(rest, rel=1e-9)  # the huge mode's own term, (31/2)^2/1e33, is nothing


def test_w2_refinement_repeats_until_no_rounding_hides_another_and_starts_from_a_zero_j() -> None:
    """Review of 5 December: one pass refined only the 1e300 mode of S = [1, 1e40, 1e300] (its rounded term, 1e267,
    hid the 1e40 mode's 1e8), so divergence_and_grad said 1.2e8 where schedule_metrics said 0.1026; and a spectrum of
    huge modes whose rounded ratios were all exactly 1 gave J = 0, so nothing was refined (true 2.4e-23). Both now
    match the recursion written here at 700 digits, on both paths."""
    from symsched import optimize

    mp.dps = 700
    try:
        ab = sch.standard_schedule("linear-trailing", 5)
        for S in (np.array([1.0, 1e40, 1e300]), np.array([1e25]), np.array([1e25, 2e25, 4e25]), np.array([0.0, 1e40])):
            want = float(sum((mp.sqrt(_ddim_exact_mp(s, ab)) - mp.sqrt(mpf(float(s)))) ** 2 for s in S))
            J, _ = symsched.divergence_and_grad(S, ab, divergence="w2", init="exact")
            assert J == pytest.approx(want, rel=1e-9, abs=0), S
            assert optimize.schedule_metrics(S, ab, init="exact")["w2"] ** 2 == pytest.approx(want, rel=1e-9, abs=0), S
    finally:
        mp.dps = 15


def _mp_dpm_2_ancestral_then_euler(S: float, s_from: float, s_to: float) -> mpf:
    """k-diffusion's sample_dpm_2_ancestral on [s_from, s_to, 0] (eta = 1, white start x = s_from eps), in
    1500-digit mpmath, the first step on its DPM-Solver-2 branch (sigma_down > 0 in exact arithmetic, how symsched
    decided below sigma_to ~ 1.5e-154 until 7 December: :func:`_exact_ancestral_branch`), the last one Euler
    (sigma_down = 0): every stage is a per-mode gain."""
    with mp.workdps(1500):
        S, a, b = mpf(S), mpf(s_from), mpf(s_to)
        up = mp.sqrt(b**2 * (a**2 - b**2) / a**2)
        down = mp.sqrt(b**2 - up**2)
        mid = mp.exp((mp.log(a) + mp.log(down)) / 2)
        d = 1 - S / (S + a**2)  # d = (x - D(x; a)) / a, times a
        x2 = 1 + d / a * (mid - a)
        d2 = x2 * (1 - S / (S + mid**2)) / mid
        g = 1 + d2 * (down - a)
        return (S / (S + b**2)) ** 2 * (g**2 * a**2 + up**2)  # then the Euler step to 0: x -> D(x; b)


@pytest.fixture
def _exact_ancestral_branch(monkeypatch) -> None:
    """get_ancestral_step's branch decided in exact arithmetic (as symsched did below sigma_to ~ 1.5e-154 until 7
    December; k-diffusion's float64, whose sigma_to^2 is 0 there, runs the Euler branch, and so does symsched now):
    the DPM-2 branch from sigma = 1e155 or 1e300 to 1e-155 or 1e-300 at eta = 1, whose sigma_down = sqrt(sigma_to^2 -
    sigma_up^2) cancels to 0 below 620 or 1200 digits, a vehicle for the mp path's digit doubling."""
    from symsched.symbolic.samplers import _kdiffusion

    exact = _kdiffusion._exact_binds
    monkeypatch.setattr(_kdiffusion, "ancestral_binds", lambda l_from, l_to, eta, *, s_from=None, s_to=None,
                        float32=False: (not math.isfinite(l_to) and l_to > 0) or exact(l_from, l_to, eta, s_from, s_to))


@pytest.mark.usefixtures("_exact_ancestral_branch")
def test_a_quantity_that_cancels_to_zero_in_the_mp_path_gets_more_digits() -> None:
    """Audit of 5 December: from sigma = 1e155 to 1e-155 dpm_2_ancestral's sigma_down = sqrt(sigma_to^2 - sigma_up^2)
    cancels to an exact 0 at the mp path's first working precision (360 digits; it needs about 620), and mpmath's
    ZeroDivisionError reached the caller of output_spectrum_ve, whose float64 sweep had asked the mp path to confirm a
    mode. Now the mp path doubles its digits and the float64 one names the mode whose P exceeds float64 (on the DPM-2
    branch, :func:`_exact_ancestral_branch`)."""
    for sig in ([1e155, 1e-155], [1e300, 1e-300]):
        ref = _mp_dpm_2_ancestral_then_euler(1.0, *sig)
        got = symsched.output_spectrum_ve_mp([1.0], sig, sampler="dpm_2_ancestral", dps=30)[0]
        assert abs(got / ref - 1) < mpf(10) ** -25, (sig, got, ref)
        assert ref > mpf("1.8e308")  # beyond float64: the float64 path refuses it, naming the mode
        for init in ("white", "exact"):
            with pytest.raises(ValueError, match=r"^spectrum: the output variance of the mode S=1 exceeds the float64"):
                symsched.output_spectrum_ve([1.0], sig, sampler="dpm_2_ancestral", init=init)
    assert abs(_mp_dpm_2_ancestral_then_euler(1.0, 1e155, 1e-155) / mpf("1e310") - 1) < 1e-10  # the check can fail:
    assert abs(_mp_dpm_2_ancestral_then_euler(1.0, 1e154, 1e-155) / mpf("1e310") - 1) > 0.5  # it sees the levels


# ---------------------------------------------------------------------------------------------
# gradients of modes whose adjoints dJ/drho lie far apart: every mode's share, not the largest's alone
# ---------------------------------------------------------------------------------------------
def _mode_terms_mp(S, levels, divergence: str, sampler: str, init: str, kw: dict, ve: bool) -> list:
    """Every mode's divergence term, written here in mpmath on the mpmath path's output (the literal update
    equations): KL(data||gen) = (r - 1 - log r)/2 with r = S/P, reverse KL with r = P/S, W2 = (sqrt P - sqrt S)^2."""
    fn = symsched.output_spectrum_ve_mp if ve else symsched.output_spectrum_mp
    P = fn(S, levels, sampler=sampler, init=init, dps=60, **kw)
    with mp.workdps(400):  # W2's S - 2 sqrt(S P) + P of S = 1e20, P = 1e-260 moves by 1e-120 of itself
        out = []
        for p, s in zip(map(mpf, P), (mpf(float(v)) for v in S)):
            if divergence == "w2":
                out.append((mp.sqrt(p) - mp.sqrt(s)) ** 2)
            else:
                r = s / p if divergence == "kl" else p / s
                out.append((r - 1 - mp.log(r)) / 2)
        return out


def _level_slopes_mp(fn, levels, ve: bool) -> np.ndarray:
    """(levels, outputs): d fn(levels)[i] / d(log-SNR of level j), Richardson-extrapolated central differences at the
    float levels evaluated (their log-SNR recomputed from them, exactly); ``fn`` returns a list of mpf."""
    lsnr = (lambda x: -2 * mp.log(x)) if ve else (lambda x: mp.log(x) - mp.log1p(-x))
    level = (lambda l: float(mp.exp(-l / 2))) if ve else (lambda l: float(1 / (1 + mp.exp(-l))))
    out = []
    with mp.workdps(400):
        for j in range(len(levels)):
            l0, est = lsnr(mpf(levels[j])), []
            for h in (mpf("1e-4"), mpf("5e-5")):
                ends = []
                for sign in (1, -1):
                    lv = list(levels)
                    lv[j] = level(l0 + sign * h)
                    ends.append((fn(lv), lsnr(mpf(lv[j]))))
                (tp, lp), (tm, lm) = ends
                est.append([(a - b) / (lp - lm) for a, b in zip(tp, tm)])
            out.append([float(d2 + (d2 - d1) / 3) for d1, d2 in zip(*est)])
    return np.array(out)


def _mode_slopes_mp(S, levels, divergence: str, sampler: str, init: str, kw: dict, ve: bool) -> np.ndarray:
    """(levels, modes): d(term of mode i)/d(log-SNR of level j), :func:`_level_slopes_mp` of :func:`_mode_terms_mp`."""
    return _level_slopes_mp(lambda lv: _mode_terms_mp(S, lv, divergence, sampler, init, kw, ve), levels, ve)


_S2, _S3 = [1e20, 1e250], [1e-300, 1e20, 1e300]
_S5 = [5e-324, 1e-20, 1e20, 7.9e281, 1e300]
#: (divergence, sampler, settings, init, levels, spectrum, weights, VE, the old gradient): reverse KL of a mode whose
#: P/S is ~1e-280 next to a much larger mode, whose old entries (audit of 8 December) kept one mode's share only; and
#: KL and W2 where weights make the shares of modes with P = 1e-260 and 1e200 comparable (dJ/drho = share / P)
_FAR_ADJOINTS = [("kl-reverse", name, {}, init, [1e-300], _S2, None, False, [-0.5]) for name, init in itertools.product(
    ["ddim", "ddpm", "euler", "dpmpp_2m", "flow_match_euler", "dpmsolver_multistep"], ["white", "exact"])] + [
    ("kl-reverse", "euler", {}, "white", [1e150], _S2, None, True, [-0.5]),
    ("kl-reverse", "ddim", {}, "white", [1e-300], _S2, [1.0, 2.0], False, [-0.5]),
    ("kl-reverse", "euler_ancestral", {"s_noise": 0.0}, "white", [1e-200, 0.5], _S2, None, False, [-0.5, None]),
    ("kl-reverse", "dpmpp_3m_sde", {"eta": 0.3, "s_noise": 0.0}, "white", [1e-300, 0.999999], _S5, None, False,
     [-0.45, None]),
    ("kl-reverse", "dpmpp_3m_sde", {"eta": 1.0, "s_noise": 0.0}, "exact", [1e-300, 0.5], _S3, None, False,
     [-1.0, None]),
    ("kl", "ddim", {}, "white", [1e-300], _S2, [1e-230, 1.0], False, [-5e49]),
    ("w2", "ddim", {}, "white", [1e-300], _S2, [1.0, 1e-290], False, [-1e-120]),
    ("w2", "dpmpp_2m", {}, "exact", [1e-300], _S2, [1.0, 1e-290], False, [-1e-120]),
]


def _far_adjoint_check(case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gradient, its mpmath reference, tolerance) of one case, in log-SNR: the reference is the weighted sum of
    every mode's own slope, the tolerance 1e-7 of the sum of their sizes (the entries where the modes' slopes cancel,
    e.g. euler_ancestral's ~0 from -0.5 and +0.5, are judged on the slopes' scale), and at least 1e-12 of the largest
    such sum (an entry where J is flat, 1e-20 there, is an adjoint's rounding: a few ulps of the terms it sums)."""
    div, name, kw, init, levels, S, w, ve, _ = case
    fn = symsched.divergence_and_grad_ve if ve else symsched.divergence_and_grad
    J, g = fn(S, levels, divergence=div, sampler=name, init=init, weights=w, wrt="log_snr", **kw)
    slopes = _mode_slopes_mp(S, levels, div, name, init, kw, ve) * np.asarray(w or [1.0] * len(S))
    terms = _mode_terms_mp(S, levels, div, name, init, kw, ve)
    assert J == pytest.approx(float(sum(wi * t for wi, t in zip(w or [1.0] * len(S), terms))), rel=1e-9, abs=0)
    size = np.abs(slopes).sum(axis=1)
    return g, slopes.sum(axis=1), 1e-7 * size + 1e-12 * size.max()


@pytest.mark.parametrize("case", _FAR_ADJOINTS, ids=[
    f"{c[0]}-{c[1]}-{c[3]}{'-ve' if c[7] else ''}{'-w' if c[6] else ''}-K{len(c[4])}-{len(c[5])}modes"
    for c in _FAR_ADJOINTS])
def test_gradient_keeps_every_mode_whose_adjoint_lies_far_below_the_largest(case) -> None:
    """Audit of 8 December: one power of two scaled the whole adjoint (dJ/drho = -5e259 for S = 1e20, -5e-201 for
    1e250 from alpha_bar = 1e-300), and the smaller one, 2^-1532 after it, became 0: reverse KL's gradient came out
    -0.5, one mode's share, for -1.0 (J itself right), in every sampler, VP and VE, and on K > 1 schedules. The
    adjoint is now carried in bands of 2^960, each with its own scale. Every entry is checked against the sum of the
    modes' own slopes from central differences in mpmath; the old gradient fails the same check."""
    g, ref, tol = _far_adjoint_check(case)
    assert np.all(np.abs(g - ref) <= tol), (g, ref)
    for j, old in enumerate(case[-1]):
        if old is not None:
            assert abs(old - ref[j]) > 1e3 * tol[j], (old, ref[j])  # the check rejects the old value


def test_one_scale_for_the_whole_adjoint_fails_the_far_adjoint_check(monkeypatch) -> None:
    """Companion: with a single band (every mode under the largest one's scale, the old code) the check above fails
    with the old value."""
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "_ADJOINT_BAND", 0.0)
    for case in (_FAR_ADJOINTS[0], _FAR_ADJOINTS[16], _FAR_ADJOINTS[-3], _FAR_ADJOINTS[-1]):
        g, ref, tol = _far_adjoint_check(case)
        assert not np.all(np.abs(g - ref) <= tol)
        assert g[0] == pytest.approx(case[-1][0], rel=1e-12, abs=0)


def test_adjoint_bands_sum_to_the_adjoint_and_keep_every_entry_normal() -> None:
    """The bands of :func:`recursion._adjoint_scales`: one, the adjoint itself, in the common case (max |at| within
    2^+-64); otherwise entries within 2^960 of their band's largest, scaled into [2^-960, 1] by powers of two (also
    beyond the float64 range: 2^-1993 came back as the float 0.0), summing back to the adjoint rounded to float64."""
    from symsched.engine import recursion
    from symsched.engine.program import LD

    at = np.array([3.0, -1e-300, 0.0, 1e10])
    ((part, sc),) = recursion._adjoint_scales(at)
    assert sc == 1.0 and np.array_equal(part, at)
    for at in (np.array([-5e259, -5e-201]), np.array([1e300, 0.0, -1e-10, 2.0**-1074, 1e-300], dtype=LD),
               np.array([LD("1e600"), LD("-1e-600"), LD(3)]), np.array([1e-320, 1e-100])):
        bands = recursion._adjoint_scales(at)
        total = sum(np.asarray(part, dtype=LD) * LD(sc) for part, sc in bands)
        assert np.all(np.abs(total - at) <= 2.0**-53 * np.abs(np.asarray(at, dtype=LD))), (at, bands)
        for part, _ in bands:
            nz = np.abs(part[part != 0])
            assert nz.size and np.all((nz >= 2.0**-960) & (nz <= 1.0)), (at, bands)
    assert len(recursion._adjoint_scales(np.array([-5e259, -5e-201]))) == 2


def _mp_floats(values) -> np.ndarray:
    return np.array([float(v) for v in values])


_NOISY_END = [  # (alpha_bar, DEIS options, init): DEIS ends at its last level, whose noise floor is tiny near 1
    ([0.3, 0.5, 0.7, 0.999999999, 1 - 2**-52, 1 - 2**-53], {}, "white"),  # P 7.6e-9, H 1.6e-9 off, unchecked
    ([0.9, 0.9 + 9 * 2**-53, 0.9 + 10 * 2**-53, 0.900000000010001, 0.99], {}, "white"),
    ([0.9, 0.9 + 9 * 2**-53, 0.9 + 10 * 2**-53, 0.900000000010001, 0.99], {"lower_order_final": False}, "white"),
    ([0.2, 0.7, 0.999999999999], {"lower_order_final": False}, "exact"),
]


@pytest.mark.parametrize("ab,kw,init", _NOISY_END, ids=["floor-2^-53", "ulp-gaps", "ulp-gaps-order2", "1e-12-exact"])
def test_deis_ending_near_alpha_bar_one_is_within_the_trust_bound(ab, kw, init) -> None:
    """Audit of 7 December: DEIS stops at its last level, so its output at S = 0 is that level's noise, of VP amplitude
    sigma_out, reached from the start's sigma_0 through eps histories of the start's size: the float64 sweep's rounding
    is amplified by about sigma_0 / sigma_out (5e7 here) times the extrapolation of third-order steps, and the screen
    for cancelling schedules (gaps alone) let the first schedule through unchecked: P(0) 7.6e-9 and H(0) 1.6e-9 off.
    Such schedules (sigma_0 / sigma_out beyond 2^10) are now probed in longdouble like a huge gap."""
    S = np.array([0.0, 1e-3, 1.0])
    P = symsched.output_spectrum(S, ab, sampler="deis_multistep", init=init, **kw)
    ref = _mp_floats(symsched.output_spectrum_mp(S, ab, sampler="deis_multistep", init=init, **kw))
    np.testing.assert_allclose(P, ref, rtol=1e-9, atol=0)
    H = symsched.transfer_function(S, ab, sampler="deis_multistep", **kw)
    ref = _mp_floats(symsched.transfer_function_mp(S, ab, sampler="deis_multistep", **kw))
    np.testing.assert_allclose(H, ref, rtol=1e-9, atol=0)


def _near_one_schedules(seed: int, n: int):
    """``n`` random schedules of three ordinary levels and three within 1e-7 .. 1e-16 of 1 (fixed seed)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        ab = np.sort(np.concatenate([rng.uniform(0.01, 0.9, 3), 1 - 10.0 ** -rng.uniform(7, 15.95, 3)]))
        if np.unique(ab).size == ab.size:
            yield ab.tolist(), int(rng.integers(2, 4)), bool(rng.integers(2))


def test_random_schedules_ending_near_one_are_within_the_trust_bound() -> None:
    """A random search (fixed seed, ~3 s): every multistep sampler whose output keeps a noise floor (DEIS;
    DPM-Solver and UniPC with final_sigmas_type="sigma_min") on levels within 1e-7 .. 1e-16 of 1 agrees with
    mpmath to 1e-9 at S = 0, or refuses. Before, 3 of the first 20 DEIS schedules were up to 2e-9 off."""
    samplers = ["deis_multistep"] * 4 + ["dpmsolver_multistep", "unipc_multistep"]
    for i, (ab, order, lof) in enumerate(_near_one_schedules(7, 48)):
        name = samplers[i % len(samplers)]
        kw: dict = dict(solver_order=order, lower_order_final=lof)
        if name != "deis_multistep":
            kw["final_sigmas_type"] = "sigma_min"
        try:
            P = symsched.output_spectrum([0.0], ab, sampler=name, **kw)
        except ValueError as exc:  # refused: allowed (the message names the mpmath path)
            assert "output_spectrum_mp evaluates it exactly" in str(exc)
            continue
        ref = _mp_floats(symsched.output_spectrum_mp([0.0], ab, sampler=name, **kw))
        assert abs(P[0] - ref[0]) <= 1e-9 * abs(ref[0]), (name, kw, ab, P[0], ref[0])


def test_noisy_output_screen_rejects_the_unchecked_sweep(monkeypatch) -> None:
    """The companion of the two tests above: without the noise-floor screen (the gaps alone decide), the first audit
    schedule is unchecked again and the comparison with mpmath that those tests make fails (7.6e-9 > 1e-9)."""
    from symsched.engine import recursion

    ab = _NOISY_END[0][0]
    ref = _mp_floats(symsched.output_spectrum_mp([0.0], ab, sampler="deis_multistep"))
    monkeypatch.setattr(recursion, "_FLOOR_RATIO", np.inf)
    P = symsched.output_spectrum([0.0], ab, sampler="deis_multistep")
    assert abs(P[0] / ref[0] - 1) > 1e-9
    bad = 0
    for ab, order, lof in list(_near_one_schedules(7, 48))[::6][:4] + list(_near_one_schedules(0, 20)):
        kw = dict(solver_order=order, lower_order_final=lof)
        P = symsched.output_spectrum([0.0], ab, sampler="deis_multistep", **kw)
        ref = _mp_floats(symsched.output_spectrum_mp([0.0], ab, sampler="deis_multistep", **kw))
        bad += abs(P[0] / ref[0] - 1) > 1e-9
    assert bad > 0


_MID_FLOOR = [0.07564235073789775, 0.09184488138797976, 0.18916232786534923, 0.831648488200427, 0.9998088049697202,
              0.9999999999963768]  # sigma_0 / sigma_out ~ 2^19: between the screen's 2^10 and an unchecked 6e-9 error


def test_a_noise_floor_ratio_between_2_10_and_2_20_is_screened(monkeypatch) -> None:
    """Mutation run of 5 December: no test had sigma_0 / sigma_out between 2^10 and 2^20, so a screen at 2^20 passed
    everything. On this DEIS schedule (a random search's) the unscreened float64 sweep is 6e-9 off."""
    from symsched.engine import recursion

    kw = dict(solver_order=3, lower_order_final=False)
    S = [0.0, 1e-3]
    ratio = math.sqrt((1 - _MID_FLOOR[0]) / (1 - _MID_FLOOR[-1]))
    assert 2**10 < ratio < 2**20
    ref = _mp_floats(symsched.output_spectrum_mp(S, _MID_FLOOR, sampler="deis_multistep", **kw))
    np.testing.assert_allclose(symsched.output_spectrum(S, _MID_FLOOR, sampler="deis_multistep", **kw), ref,
                               rtol=1e-9, atol=0)
    monkeypatch.setattr(recursion, "_FLOOR_RATIO", 2.0**20)  # companion: a screen set too high lets it through
    P = symsched.output_spectrum(S, _MID_FLOOR, sampler="deis_multistep", **kw)
    assert np.max(np.abs(P / ref - 1)) > 1e-9


@pytest.mark.usefixtures("_exact_ancestral_branch")
def test_the_mp_path_keeps_doubling_its_digits_beyond_a_thousand() -> None:
    """Mutation run of 5 December: the existing retry test starts below 1000 working digits; from sigma = 1e300 to
    1e-300 at dps = 500 the mp path starts at ~1110 and needs ~1200, so a retry capped near 1000 digits passed every
    test while it refused this schedule ("cancels to 0 within 4000 working digits", which was not even true)."""
    ref = _mp_dpm_2_ancestral_then_euler(1.0, 1e300, 1e-300)
    got = symsched.output_spectrum_ve_mp([1.0], [1e300, 1e-300], sampler="dpm_2_ancestral", dps=500)[0]
    assert abs(got / ref - 1) < mpf(10) ** -25, (got, ref)


@pytest.mark.parametrize("S", [1e150, 1e165, 1e200, 1e300])
def test_w2_of_a_huge_exactly_started_mode_is_its_own_small_number(S: float) -> None:
    """gradient audit of 5 Dec: W2's complement form S m^2 / (1 + sqrt(1 + m))^2 squared m first, which underflows
    for a huge mode (m ~ 1e-163 at S = 1e165): J came out 0 where the true J ~ 1e-165 is a normal float64. Independent
    value: one DDIM step from alpha_bar to 1 from the exact start has P = alpha_bar S^2 / lambda (docs/model.md 7.1),
    so m = P/S - 1 = -(1 - alpha_bar) / lambda, and J = S (sqrt(1 + m) - 1)^2 in mpmath."""
    a = 0.3
    with mpmath.workdps(700):  # sqrt(1 + m) - 1 with m ~ 1e-300: the naive form, carried at 700 digits
        lam = mpmath.mpf(a) * mpmath.mpf(S) + 1 - mpmath.mpf(a)
        m = -(1 - mpmath.mpf(a)) / lam
        want = float(mpmath.mpf(S) * (mpmath.sqrt(1 + m) - 1) ** 2)
    J, _ = symsched.divergence_and_grad([S], [a], divergence="w2", init="exact")
    assert want > 1e-305 and J == pytest.approx(want, rel=1e-12, abs=0)


# ---------------------------------------------------------------------------------------------
# k-diffusion's get_ancestral_step where sigma^2 overflows float64 (audit: false refusal, mpc from the mp path)
# ---------------------------------------------------------------------------------------------
def _mp_kdiffusion_ancestral(sampler: str, S: float, sigmas, eta: float, init: str = "white") -> mpf:
    """One mode's output variance of k-diffusion's sample_<sampler> (0.1.1.post1: get_ancestral_step, the samplers'
    ``sigma_down == 0`` Euler branch, noise s_noise sigma_up where sigmas[i + 1] > 0 except dpm_2_ancestral's Euler
    branch) on ``sigmas + [0]`` with the exact denoiser D(x; s) = S/(S + s^2) x, every step a gain g and a noise
    variance, in 1500-digit mpmath (exact arithmetic for these numbers; the min binds where it binds exactly)."""
    with mp.workdps(1500):
        S = mpf(S)
        sig = [x if isinstance(x, mpf) else (mp.inf if x == np.inf else mpf(float(x))) for x in sigmas] + [mpf(0)]
        v = sig[0] ** 2 if init == "white" else S + sig[0] ** 2
        den = lambda s: S / (S + s**2) if s != mp.inf else mpf(0)  # noqa: E731
        for a, b in zip(sig, sig[1:]):
            if eta == 0:
                down, up = b, mpf(0)
            else:
                up = min(b, mpf(eta) * mp.sqrt(b**2 * (a**2 - b**2) / a**2)) if a != mp.inf else b
                down = mp.sqrt(b**2 - up**2)
            if down == 0:  # Euler to sigma_down = 0: x -> D(x; a)
                g, noise = den(a), (mpf(0) if sampler == "dpm_2_ancestral" else up)
            else:
                assert a != mp.inf
                if sampler == "euler_ancestral":  # x + d (down - a), d = (1 - den(a)) x / a
                    g = den(a) + (1 - den(a)) * down / a
                elif sampler == "dpm_2_ancestral":
                    mid = mp.exp((mp.log(a) + mp.log(down)) / 2)
                    x2 = den(a) + (1 - den(a)) * mid / a
                    g = 1 + x2 * (1 - den(mid)) / mid * (down - a)
                else:  # dpmpp_2s_ancestral, t = -log sigma, h = t_next - t, s = t + h/2
                    h = mp.log(a) - mp.log(down)
                    x2 = mp.exp(-h / 2) - mp.expm1(-h / 2) * den(a)
                    g = mp.exp(-h) - mp.expm1(-h) * den(mp.exp(-(-mp.log(a) + h / 2))) * x2
                noise = up if b > 0 else mpf(0)
            v = (g**2 * v if a != mp.inf else mpf(0)) + noise**2
        return +v


_HUGE_SIGMAS = [[1e300, 1e290], [1e200, 1e190], [1e170, 1e168], [1.7e308, 1e160, 1e155], [np.inf, 1e300, 1e250]]
_HUGE_ALPHA_BAR = [[5e-324, 1e-315], [1e-320, 1e-310, 1e-300]]  # sigma up to 1.4e161, from the VP entry points
_S_HUGE = [0.0, 1.0, 1e100, 1e250, 1e300]


@pytest.mark.parametrize("eta", [1.0001, 1.5, 3.0])
@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral"])
def test_ancestral_min_binds_where_sigma_squared_overflows(sampler: str, eta: float) -> None:
    """Audit: above sigma_to ~ 1.3e154 k-diffusion's float64 sigma_down is inf - inf = NaN, and symsched decided the
    ancestral min did not bind there: for eta > 1 its sigma_down = sqrt(sigma_to^2 - sigma_up^2) was imaginary,
    output_spectrum_ve refused ("a step of this schedule is undefined") and output_spectrum_ve_mp returned mpc. The
    min binds (sigma_up = sigma_to, sigma_down = 0): checked against k-diffusion's update equations in mpmath."""
    for sig in _HUGE_SIGMAS:
        for init in ("white", "exact"):
            P = symsched.output_spectrum_ve(_S_HUGE, sig, sampler=sampler, eta=eta, init=init)
            ref = [_mp_kdiffusion_ancestral(sampler, s, sig, eta, init) for s in _S_HUGE]
            assert_close_to_mp(P, ref, f"{sampler} eta={eta} {init} sigmas={sig}")
    for ab in _HUGE_ALPHA_BAR:
        with mp.workdps(1500):
            sig = [mp.sqrt((1 - mpf(a)) / mpf(a)) for a in ab]
        P = symsched.output_spectrum(_S_HUGE, ab, sampler=sampler, eta=eta)
        assert_close_to_mp(P, [_mp_kdiffusion_ancestral(sampler, s, sig, eta) for s in _S_HUGE],
                           f"{sampler} eta={eta} alpha_bar={ab}")
    for fn, levels in ((symsched.output_spectrum_ve_mp, [1e200, 1e190]),
                       (symsched.output_spectrum_mp, [5e-324, 1e-315])):
        got = fn(_S_HUGE, levels, sampler=sampler, eta=eta, dps=30)
        assert all(type(v) is mpf for v in got), got  # real numbers, never mpc
        with mp.workdps(1500):
            sig = levels if fn is symsched.output_spectrum_ve_mp else [mp.sqrt((1 - mpf(a)) / mpf(a)) for a in levels]
        for g, s in zip(got, _S_HUGE):
            ref = _mp_kdiffusion_ancestral(sampler, s, sig, eta)
            assert abs(g - ref) <= mpf(10) ** -25 * abs(ref), (fn.__name__, s, g, ref)


def test_dpmpp_sde_ancestral_min_where_sigma_squared_overflows_agrees_with_the_mp_path() -> None:
    """dpmpp_sde decides its two get_ancestral_step mins the same way (it was refused on these sigmas at eta = 1.5);
    here against the package's mpmath path, which returns real numbers."""
    for sig in ([1e200, 1e190], [1e300, 1e250, 1e200]):
        for eta in (1.5, 3.0):
            P = symsched.output_spectrum_ve(_S_HUGE, sig, sampler="dpmpp_sde", eta=eta)
            ref = symsched.output_spectrum_ve_mp(_S_HUGE, sig, sampler="dpmpp_sde", eta=eta, dps=30)
            assert all(type(v) is mpf for v in ref), ref
            assert_close_to_mp(P, ref, f"dpmpp_sde eta={eta} sigmas={sig}")


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral"])
def test_ancestral_min_on_float32_sigmas_whose_square_overflows_float32(sampler: str) -> None:
    """The same in float32 (k-diffusion's get_sigmas_* dtype): above sigma_to ~ 1.8e19 torch's float32 sigma_down is
    NaN; eta > 1 binds as in exact arithmetic, eta <= 1 does not (the step to sigma_down > 0)."""
    sig = np.array([1e30, 1e25], dtype=np.float32)
    for eta in (0.5, 1.0, 1.5):
        P = symsched.output_spectrum_ve(_S_HUGE[:3], sig, sampler=sampler, eta=eta)
        ref = [_mp_kdiffusion_ancestral(sampler, s, [float(v) for v in sig], eta) for s in _S_HUGE[:3]]
        assert_close_to_mp(P, ref, f"{sampler} eta={eta} float32 sigmas")


def test_ancestral_mp_path_never_returns_complex_numbers() -> None:
    """On these sigmas k-diffusion's float64 min does not bind (sigma_to^2 - sigma_up^2 rounds to a few ulp > 0) where
    exact arithmetic binds by a rounding: the mp path's step (sigma_down = sqrt of a negative number) is not real, and
    it says so instead of returning mpc; the float64 path follows k-diffusion's branch."""
    from fractions import Fraction

    f, t, eta = 0.5722961106404242, 0.48412899469390724, 1.8752022712470207
    up = min(t, eta * (t**2 * (f**2 - t**2) / f**2) ** 0.5)
    assert t**2 - up**2 > 0  # float64: the DPM step to sigma_down > 0
    assert Fraction(eta) ** 2 * (Fraction(f) ** 2 - Fraction(t) ** 2) > Fraction(f) ** 2  # exact: the min binds
    for sampler in ("euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral"):
        assert np.all(np.isfinite(symsched.output_spectrum_ve([1.0, 0.01], [f, t], sampler=sampler, eta=eta)))
        with pytest.raises(ValueError, match=rf"^sigmas: a step of this schedule is not real for sampler '{sampler}'"):
            symsched.output_spectrum_ve_mp([1.0, 0.01], [f, t], sampler=sampler, eta=eta)


# ---------------------------------------------------------------------------------------------
# metrics of a schedule whose output matches the data to rounding (audit of 6 December)
# ---------------------------------------------------------------------------------------------
#: levels so clean that DDIM from the exact start leaves P/S - 1 ~ 1e-12 for all 134 distinct modes of the spectrum
_NEAR_ONE = [1 - 1e-12, 1 - 5e-13, 1 - 1e-13]


def _ddim_exact_w2(S: np.ndarray, levels: list) -> float:
    """W2 (not squared) of DDIM eta=0 from the exact start, in mpmath at 60 digits, typed in: the start has variance
    a0 S + 1 - a0; a step a -> a' multiplies a mode by sqrt(a') sqrt(a) S / (a S + 1 - a) + sqrt(1 - a') sqrt(1 - a)
    / (a S + 1 - a) (x0_hat and eps_hat of the exact denoiser), the last one to a' = 1."""
    with mp.workdps(60):
        total = mpf(0)
        for s in np.unique(S):
            s = mpf(float(s))
            a = [mpf(v) for v in levels] + [mpf(1)]
            var = a[0] * s + 1 - a[0]
            for lo, hi in zip(a[:-1], a[1:]):
                d = lo * s + 1 - lo
                var *= (mp.sqrt(hi) * mp.sqrt(lo) * s / d + mp.sqrt(1 - hi) * mp.sqrt(1 - lo) / d) ** 2
            total += int(np.sum(S == float(s))) * (mp.sqrt(var) - mp.sqrt(s)) ** 2
        return float(mp.sqrt(total))


def test_metrics_of_a_schedule_matching_the_data_to_rounding_are_exact(recwarn) -> None:
    """optimize_schedule(power_law 32x32, K=3, divergence="kl", endpoints=(None, None), init="exact") finished its
    search, then raised from its W2 metric: 134 distinct modes had P/S within rounding of 1, over the 32 an objective
    evaluation recomputes in mpmath. A metric, computed once, recomputes up to MAX_REFINED_METRIC_STEPS mode-levels:
    W2 matches a typed-in mpmath recursion; the KL search returns."""
    from symsched import spectra

    S = spectra.power_law((32, 32), alpha=2.0)
    assert np.unique(S[S > 0]).size > symsched.api.MAX_REFINED_MODES  # more than an objective refines
    m = symsched.optimize.schedule_metrics(S, _NEAR_ONE, sampler="ddim", init="exact")
    ref = _ddim_exact_w2(S, _NEAR_ONE)
    assert 0 < ref < 1e-9 and m["w2"] == pytest.approx(ref, rel=1e-6, abs=0)
    assert not [w for w in recwarn if "float64 rounding" in str(w.message)]
    with pytest.raises(ValueError, match="not resolved"):  # the objective keeps its own limit (per evaluation)
        symsched.divergence_and_grad(S, _NEAR_ONE, divergence="w2", sampler="ddim", init="exact")
    res = symsched.optimize_schedule(S, 3, divergence="kl", endpoints=(None, None), init="exact", sampler="dpmpp_2m")
    assert np.isfinite(res.w2) and res.w2 < 1e-6 and res.kl == res.value


def test_metrics_beyond_the_mpmath_budget_warn_and_keep_the_other_values(monkeypatch) -> None:
    """Companion: beyond the budget each divergence is the float64 value of the output spectrum, said in a warning.
    Within it, the KLs (~1e-24, terms at the level of rounding: float64 gave 1.138e-24) are mpmath's."""
    from symsched import api, spectra

    S = spectra.power_law((32, 32), alpha=2.0)
    full = symsched.optimize.schedule_metrics(S, _NEAR_ONE, sampler="ddim", init="exact")
    u, n = np.unique(S[S > 0], return_counts=True)
    P_mp = symsched.output_spectrum_mp(u, _NEAR_ONE, sampler="ddim", init="exact", dps=60)
    with mp.workdps(60):
        kl = sum(k * (mpf(s) / p - 1 - mp.log(mpf(s) / p)) / 2 for s, p, k in zip(u, P_mp, n))
        kl_reverse = sum(k * (p / mpf(s) - 1 - mp.log(p / mpf(s))) / 2 for s, p, k in zip(u, P_mp, n))
    assert full["kl"] == pytest.approx(float(kl), rel=1e-12, abs=0)
    assert full["kl_reverse"] == pytest.approx(float(kl_reverse), rel=1e-12, abs=0)
    monkeypatch.setattr(api, "MAX_REFINED_METRIC_STEPS", 3)
    with pytest.warns(UserWarning, match=r"^KL, reverse KL and W2 of this schedule \(.*\) lie at the level of "
                                         r"float64 rounding: \d+ distinct modes") as caught:
        cut = symsched.optimize.schedule_metrics(S, _NEAR_ONE, sampler="ddim", init="exact")
    assert len(caught) == 1 and caught[0].filename == __file__  # the caller's line, not symsched's
    P = symsched.output_spectrum(S, _NEAR_ONE, sampler="ddim", init="exact")
    assert cut["kl"] == symsched.kl_divergence(S, P) and cut["kl_reverse"] == symsched.kl_divergence(P, S)
    # (each term |P - S| / (sqrt P + sqrt S), squared: the difference of square roots cancels where P ~ S)
    assert cut["w2"] == pytest.approx(float(np.sqrt(np.sum(((P - S) / (np.sqrt(P) + np.sqrt(S))) ** 2))), rel=1e-9,
                                      abs=0)


def test_the_cli_prints_the_metrics_warning_as_one_line(monkeypatch, tmp_path, capsys) -> None:
    """On the command line a warning of symsched's is one line naming the command, like its errors (it was Python's
    two-line format with the path of a symsched file; audit of 6 December)."""
    from symsched import api, spectra
    from symsched.cli import main

    monkeypatch.setattr(api, "MAX_REFINED_METRIC_STEPS", 3)
    np.save(tmp_path / "S.npy", spectra.power_law((32, 32), alpha=2.0))
    np.save(tmp_path / "A.npy", np.array(_NEAR_ONE))
    with warnings.catch_warnings():  # shown as outside pytest: showwarning writes formatwarning's text
        warnings.simplefilter("always")
        warnings.showwarning = lambda m, c, f, n, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(m, c, f, n, line))
        assert main(["transfer", "--spectrum", str(tmp_path / "S.npy"), "--alpha-bar", str(tmp_path / "A.npy"),
                     "--init", "exact"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("symsched transfer: warning: KL, reverse KL and W2 of this schedule (") and \
        err.count("\n") == 1, err


# audit of 6 December: a representable output whose sweep passed below the float64 normal range on its way
HUGE_MODES = np.array([1e138, 1e144, 1e150, 1e156, 1e160])
NEAR_ZERO_SNR = [[1e-300, 1e-290, 1e-80], [2.92e-307, 1.80e-296, 5.25e-83]]


def _underflow_cases(samplers) -> list[str]:
    """Where float64 disagrees with mpmath on huge modes after near-zero-SNR levels (refusals are fine)."""
    wrong = []
    for name, init, ab in itertools.product(samplers, ("white", "exact"), NEAR_ZERO_SNR):
        try:
            P = symsched.output_spectrum(HUGE_MODES, ab, sampler=name, init=init)
        except ValueError:
            continue
        ref = symsched.output_spectrum_mp(HUGE_MODES, ab, sampler=name, init=init, dps=60)
        try:
            assert_close_to_mp(P, ref, f"{name} {init} {ab}")
        except AssertionError as exc:
            wrong.append(str(exc))
    return wrong


@pytest.mark.parametrize("samplers", [symsched.SAMPLERS[i::4] for i in range(4)], ids=lambda s: s[0])
def test_a_sweep_that_passes_below_float64_on_its_way_is_exact(samplers) -> None:
    """dpm_2_ancestral carried S = 1e144 through a variance of 1e-384 (0 in float64) and scaled it by 1e80 in its
    last step: P came out 0 for 1e-304 (and 1e-5 off for S = 1e160), silently. Every sampler, both starts."""
    assert _underflow_cases(samplers) == []


def test_the_underflow_check_rejects_the_float64_floor(monkeypatch) -> None:
    """Companion: with the floor at the float64 normal range itself (no amplification bound) the check fails."""
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "_underflow_floor", lambda prog: float(TINY))
    assert _underflow_cases(["dpm_2_ancestral"])


def test_the_ve_entry_is_exact_there_too() -> None:
    sig = [1e150, 1e145, 1e40]
    P = symsched.output_spectrum_ve(HUGE_MODES, sig, sampler="dpm_2_ancestral")
    assert_close_to_mp(P, symsched.output_spectrum_ve_mp(HUGE_MODES, sig, sampler="dpm_2_ancestral", dps=60), "ve")


@pytest.mark.parametrize("sampler,kw", [("dpm_2_ancestral", {}), ("dpmpp_2s_ancestral", {}),
                                        ("euler", {"s_churn": 1.0, "s_tmax": 0.1})])
def test_mp_path_decides_float32_sigmas_as_the_float64_path(sampler: str, kw: dict) -> None:
    """Numerics hunt of 6 December: output_spectrum_ve_mp re-validated float32 sigmas as plain float64 and took the
    other branch than output_spectrum_ve, the function it is the reference of (dpm_2_ancestral on float32 [80, 0.002]:
    6399.6 against 1.562e-4 at S = 1; euler's churn window at float32(0.1) <= 0.1: 17 % apart). Both now decide on
    float32 numbers in float32; the float64 copy of the same numbers takes the other branch (the test can fail)."""
    sig = [80.0, 0.002] if sampler != "euler" else [10.0, 1.0, 0.1]
    s32 = np.array(sig, dtype=np.float32)
    S = np.array([1e-6, 0.01, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (dpm_2_ancestral's note on k-diffusion's own float32 sigma_down)
        P = symsched.output_spectrum_ve(S, s32, sampler=sampler, **kw)
        ref = symsched.output_spectrum_ve_mp(S, s32, sampler=sampler, dps=20, **kw)
        other = symsched.output_spectrum_ve_mp(S, s32.astype(np.float64), sampler=sampler, dps=20, **kw)
    assert_close_to_mp(P, ref, f"{sampler} on float32 sigmas")
    assert max(abs(float(o) / float(r) - 1) for o, r in zip(other, ref)) > 0.1


def test_an_infinite_kl_has_a_zero_gradient() -> None:
    """Numerics hunt of 6 December: divergence_and_grad([0, 1], [0.3, 0.9], sampler='deis_multistep', divergence='kl')
    returned (inf, [-0.54, 0.83]) (DEIS stops at a noisy level: output where the data has none), though J = inf comes
    with a zero gradient by the docstring. The same spectrum under DDIM, finite, keeps its gradient."""
    J, g = symsched.divergence_and_grad([0.0, 1.0], [0.3, 0.9], sampler="deis_multistep", divergence="kl")
    assert J == math.inf and np.array_equal(g, np.zeros(2))
    J, g = symsched.divergence_and_grad_ve([0.0, 1.0], [3.0, 0.3], sampler="dpmsolver_multistep", divergence="kl",
                                           final_sigmas_type="sigma_min")
    assert J == math.inf and np.array_equal(g, np.zeros(2))
    J, g = symsched.divergence_and_grad([0.0, 1.0], [0.3, 0.9], sampler="ddim", divergence="kl")
    assert math.isfinite(J) and np.all(np.abs(g) > 0.1)


_KL_NEAR = [(1.0, 1 + 1e-10), (1.0, 1 + 1e-12), (1.0, 1 + 2**-52), (1 - 2**-53, 1.0), (1.0, 1.005), (1.0, 1.0099),
            (1.0, 1.0101), (2.0, 1.98), (1e-300, 1.0000001e-300), (1e300, 1e300 * (1 - 1e-9))]


def _kl_mp80(p: float, q: float) -> float:
    """KL(N(0, p) || N(0, q)) = (p/q - 1 - log(p/q)) / 2, typed in, at 80 digits."""
    with mp.workdps(80):
        r = mpf(p) / mpf(q)
        return float((r - 1 - mpmath.log(r)) / 2)


@pytest.mark.parametrize("p,q", _KL_NEAR)
def test_kl_divergence_keeps_its_digits_where_p_is_close_to_q(p: float, q: float) -> None:
    """Numerics hunt of 6 December: kl_divergence([1], [1 + 1e-10]) was 8.4e-7 off, [1], [1 + 2**-52] 100 % and
    [1 - 2**-53], [1] returned 0 (the ratio form r - 1 - log r cancels to ~m^2/2). Within 1 % of each other the term
    comes from its generated Taylor series in m = q/p - 1 now: 1e-13 of the 80-digit value, both directions."""
    for a, b in ((p, q), (q, p)):
        assert symsched.kl_divergence([a], [b]) == pytest.approx(_kl_mp80(a, b), rel=1e-13, abs=0)


def test_the_ratio_form_alone_loses_the_digits_the_series_keeps() -> None:
    """Companion: the ratio-form kernel on its own (what kl_divergence summed before) is off by more than 1e-6 on
    one of these pairs, so the test above can fail."""
    from symsched.engine.divergence import divergence_kernel

    worst = max(abs(float(divergence_kernel("kl")(np.array([b]), np.array([a]))[0][0]) / _kl_mp80(a, b) - 1)
                for a, b in _KL_NEAR)
    assert worst > 1e-6
