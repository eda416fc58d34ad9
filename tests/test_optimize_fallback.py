"""The optimiser's coarse fallback and its warm starts (break-test of 7 December).

``optimize_schedule(builtin:natural-patches, 20, sampler="dpmpp_2m", divergence="kl")`` ran its 2,000
iterations into a ladder of near-duplicate first levels (log-SNR -10.118, -10.117, -10.116, ...) at KL 8.2e-6,
while the same search warm-started from the K = 10 optimum converges near 2e-8; a search that runs out of
iterations now also starts from the optimum at K // 2 levels.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import symsched
from symsched import spectra
from symsched.cli import main
from symsched.optimize import _resample


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def test_resample_keeps_a_pure_noise_first_level_and_resamples_the_finite_ones() -> None:
    """A warm start from a zero-SNR / flow optimum [0, ...]: interpolating from log-SNR -inf gave -inf for the
    second level too (the start lost a level to the bottom of the range)."""
    l = _resample(np.array([0.0, 0.3, 0.9]), 5)
    assert l[0] == -math.inf and np.all(np.isfinite(l[1:]))
    want = np.linspace(_logit(0.3), _logit(0.9), 4)  # the finite levels, linear in the step index
    np.testing.assert_allclose(l[1:], want, rtol=1e-14, atol=0)


def test_resample_without_a_pure_noise_level_is_linear_in_the_step_index() -> None:
    l = _resample(np.array([0.1, 0.5, 0.9]), 5)
    want = [_logit(0.1), _logit(0.1) / 2, 0.0, _logit(0.9) / 2, _logit(0.9)]
    np.testing.assert_allclose(l, want, rtol=1e-14, atol=1e-15)


def test_a_warm_start_is_a_start_of_the_plain_multistart_search() -> None:
    S = np.linspace(0.1, 3.0, 40)
    warm = symsched.schedules.standard_schedule("cosine", 6)
    res = symsched.optimize_schedule(S, 6, standard_starts=False, restarts=0, warm_starts=[warm])
    assert set(res.starts) == {"warm start 0"} and res.success
    with pytest.raises(ValueError, match="restarts must be >= 1 when standard_starts=False and no warm start resamples"):
        symsched.optimize_schedule(S, 6, standard_starts=False, restarts=0)


def test_a_search_out_of_iterations_also_starts_from_the_half_k_optimum() -> None:
    S = spectra.power_law((16, 16), alpha=2.0)
    res = symsched.optimize_schedule(S, 8, divergence="kl", maxiter=3)
    assert "the K=4 optimum" in res.starts
    assert res.value <= min(res.starts.values())
    full = symsched.optimize_schedule(S, 8, divergence="kl")  # converges: no fallback run
    assert full.success and not any(name.startswith("the K=") for name in full.starts)


def test_no_fallback_below_four_steps_or_for_the_plain_multistart() -> None:
    S = spectra.power_law((16, 16), alpha=2.0)
    for kw in ({"steps": 3}, {"steps": 8, "standard_starts": False}):
        steps = kw.pop("steps")
        res = symsched.optimize_schedule(S, steps, divergence="kl", maxiter=3, **kw)
        assert not any(name.startswith("the K=") for name in res.starts)


def test_the_cli_says_when_the_search_did_not_converge(tmp_path, capsys, monkeypatch) -> None:
    import symsched.optimize as opt

    real = opt.optimize_schedule
    stop = "L-BFGS-B from 'equal gaps': STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
    monkeypatch.setattr(opt, "optimize_schedule",
                        lambda *a, **kw: dataclasses.replace(real(*a, **kw), success=False, message=stop))
    np.save(tmp_path / "S.npy", spectra.power_law((16, 16), alpha=2.0))
    code = main(["optimize", "--spectrum", str(tmp_path / "S.npy"), "--steps", "8", "--divergence", "kl",
                 "--out", str(tmp_path / "s.json"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"note: the search did not converge ({stop}): the schedule is the lowest point" in out
    assert "not a verified optimum" in out


@pytest.mark.slow
def test_dpmpp_2m_k20_kl_leaves_the_near_duplicate_ladder() -> None:
    S = spectra.load_spectrum("builtin:natural-patches")
    res = symsched.optimize_schedule(S, 20, sampler="dpmpp_2m", divergence="kl")
    assert res.value < 1e-7  # the ladder: 8.2e-6; from the K = 10 optimum ~2e-8
    assert np.min(np.diff(res.log_snr)) > 0.01  # the ladder's first gaps: 0.001


def test_a_warm_start_that_cannot_be_resampled_leaves_no_start() -> None:
    S = np.linspace(0.1, 3.0, 40)
    for warm in ([0.5], [0.0, 0.5]):  # one finite level: nothing to interpolate
        with pytest.raises(ValueError, match="no warm start resamples to K levels"):
            symsched.optimize_schedule(S, 6, standard_starts=False, restarts=0, warm_starts=[np.array(warm)])


def _spy(monkeypatch) -> list[int]:
    """The K of every search run (the outer one and each coarse one)."""
    import symsched.optimize as opt

    seen: list[int] = []
    real = opt._optimize
    monkeypatch.setattr(opt, "_optimize", lambda S, K, *a, **kw: seen.append(K) or real(S, K, *a, **kw))
    return seen


def test_compare_schedules_hands_its_half_k_optimum_to_the_fallback(monkeypatch) -> None:
    """Review of 7 December: each K's fallback re-solved K // 2 from scratch (searches 4, 2, 8, 4, 2, 16, 8, 4, 2)."""
    import symsched.optimize as opt

    real = opt.optimize_schedule
    monkeypatch.setattr(opt, "optimize_schedule", lambda *a, **kw: real(*a, **{**kw, "maxiter": 3}))
    seen = _spy(monkeypatch)
    symsched.compare_schedules(spectra.power_law((16, 16), alpha=2.0), (4, 8, 16), divergence="kl")
    assert seen == [4, 2, 8, 16]  # K = 4 has no K = 2 warm start: searched once; 8 and 16 take 4 and 8 as given


@pytest.mark.parametrize("kw", [
    {"sampler": "flow_match_euler"},  # pure noise first: K // 2 = 2 leaves one finite level
    {"endpoints": (0.0, None)},
    {"endpoints": (0.01, 0.9)},  # both ends fixed: the K // 2 = 2 levels are the endpoints
])
def test_no_coarse_search_where_it_cannot_help(monkeypatch, kw) -> None:
    seen = _spy(monkeypatch)
    symsched.optimize_schedule(spectra.power_law((16, 16), alpha=2.0), 5, divergence="kl", maxiter=2, **kw)
    assert seen == [5]


def test_the_coarse_search_counts_in_the_evaluations(monkeypatch) -> None:
    S = spectra.power_law((16, 16), alpha=2.0)
    seen = _spy(monkeypatch)
    res = symsched.optimize_schedule(S, 8, divergence="kl", maxiter=3)
    assert seen[:2] == [8, 4]
    half = symsched.optimize_schedule(S, 4, divergence="kl", maxiter=3)
    alone = symsched.optimize_schedule(S, 8, divergence="kl", maxiter=3, warm_starts=[half.alpha_bar])
    # the same search, given the K = 4 optimum, scores it as one more start (1 evaluation) instead of searching it
    assert res.n_evaluations == (alone.n_evaluations - 1) + half.n_evaluations


def test_a_near_duplicate_ladder_is_recognised_whatever_stopped_the_search() -> None:
    """The K // 2 restart ran only when L-BFGS-B ran out of iterations; on an AVX2 machine it *converged* on the
    dpmpp_2m K = 20 ladder (gaps 2e-4, 1e-3, 5e-3, ... against a mean of 1.2), so the ladder itself triggers it."""
    from symsched.optimize import _ladder

    ladder = np.cumsum([-8.0, 2e-4, 1e-3, 5e-3, 2.5e-2, 1.2, 2.0, 2.0, 2.0])
    assert _ladder(ladder) and _ladder(np.concatenate([[-np.inf], ladder]))  # (an alpha_bar = 0 level: gap inf)
    assert not _ladder(np.linspace(-8.0, 8.0, 20)) and not _ladder(np.array([-8.0, 0.0]))
    assert not _ladder(np.cumsum([-8.0, 0.05, 0.5, 1.0, 1.5, 2.0]))  # a gap 1/20 of the mean: uneven, no ladder
