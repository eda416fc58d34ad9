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


def test_without_the_guard_the_float64_value_is_wrong(monkeypatch) -> None:
    """Companion: the guard is what makes the test above pass -- trusting the float64 sweep blindly gives a
    result mpmath rejects (so the mpmath comparison can fail)."""
    from symsched.engine import recursion

    ab = [1e-250, 1e-30, 0.5, 0.99]  # within the float64 range: the longdouble comparison decides
    S = np.array([1e-3, 1.0, 1e3])
    ref = np.array([float(v) for v in symsched.output_spectrum_mp(S, ab, sampler="deis_multistep", dps=40)])
    with pytest.raises(ValueError, match="disagrees with a wider one"):
        symsched.output_spectrum(np.logspace(-3, 3, 100), ab, sampler="deis_multistep")
    np.testing.assert_allclose(symsched.output_spectrum(S, ab, sampler="deis_multistep"), ref, rtol=1e-9)
    monkeypatch.setattr(recursion, "rounding_check", lambda *a, **k: (True, 0.0))
    blind = symsched.output_spectrum(S, ab, sampler="deis_multistep")
    assert np.max(np.abs(blind - ref) / ref) > 1e-6
