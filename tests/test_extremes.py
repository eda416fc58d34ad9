"""Exact numbers at the extremes (issues 11 and 14): every float64 level and mode variance, against mpmath.

Across S in {0, 1e-300, 1e-12, 1, 1e12, 1e300} and levels alpha_bar in {0, 1e-320, 1e-200, 1e-12, 0.5,
1 - 1e-12} (and VE sigmas up to 1.7e308) the float64 engine agrees with the package's own mpmath path
(the samplers' update equations in native coordinates at 60 digits) to <= 1e-9 relative, or raises
ValueError naming an argument; never a NaN. Where the exact value lies below the normal float64
range, the float64 result is that value rounded (0 or a subnormal) and is compared in absolute terms.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import symsched

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


def test_a_step_sympy_cannot_take_to_zero_snr_says_so_without_sympy_internals() -> None:
    """dpmpp_sde's bounded step: SymPy's limit fails (it depends on the sign of r); the error says that the
    limit could not be derived -- not that the step is unbounded -- and shows no SymPy expression."""
    with pytest.raises(ValueError) as info:
        symsched.output_spectrum(np.array([0.5, 2.0]), [0.0, 0.3, 0.9], sampler="dpmpp_sde")
    msg = str(info.value)
    assert msg.startswith("alpha_bar: sampler 'dpmpp_sde' is undefined at alpha_bar = 0")
    assert "SymPy cannot take its limit there" in msg and "unbounded" not in msg and "sign(" not in msg
