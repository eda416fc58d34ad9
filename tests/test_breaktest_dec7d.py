"""Break-test of 7 December (fourth round): errors that named an argument the caller never passed, and a flow
sampler's resolution law that did not start where flow models sample from."""

from __future__ import annotations

import numpy as np
import pytest

import symsched
from symsched.insight import scene_power_law


def test_fit_heuristics_names_the_alpha_bar_the_caller_passed_not_sigmas():
    """fit_heuristics(levels, ...) for a VE sampler said "sigmas: ...", though output_spectrum, transfer_function
    and divergence_and_grad say "alpha_bar: ..." for the same levels."""
    levels, S = [0.0, 0.1, 0.5, 0.9], np.ones(4)
    with pytest.raises(ValueError) as fit:
        symsched.fit_heuristics(levels, S, sampler="heun")
    with pytest.raises(ValueError) as direct:
        symsched.output_spectrum(S, levels, sampler="heun")
    assert str(fit.value).startswith("alpha_bar: sampler 'heun' is undefined at alpha_bar = 0")
    assert str(fit.value) == str(direct.value)


@pytest.mark.parametrize("entry", ["schedule_metrics", "schedule_output"])
def test_every_alpha_bar_entry_point_of_a_ve_sampler_names_alpha_bar(entry):
    """The same kind in the optimiser's scoring functions, which run a VE sampler on the levels' float64 sigmas."""
    from symsched import optimize

    with pytest.raises(ValueError) as info:
        getattr(optimize, entry)(np.ones(4), [0.0, 0.1, 0.5, 0.9], sampler="heun")
    assert str(info.value).startswith("alpha_bar: sampler 'heun' is undefined at alpha_bar = 0")


def test_optimizer_refusal_does_not_name_sigmas_the_caller_never_passed():
    with pytest.raises(ValueError) as info:
        symsched.optimize_schedule(np.ones(4), 3, sampler="heun", endpoints=(0.0, None))
    msg = str(info.value)
    assert msg.startswith("endpoints: the sampler 'heun' refuses every schedule the search tried: sampler 'heun' is "
                          "undefined at alpha_bar = 0")
    assert "sigmas:" not in msg


def test_resolution_law_of_a_flow_sampler_starts_at_pure_noise_as_every_other_entry_point():
    """resolution_law(..., sampler="flow_match_euler") optimised with a free first level (finite log-SNR), where
    optimize_schedule, sweep and explain start a flow sampler at t = 1 (alpha_bar = 0)."""
    law = symsched.resolution_law(lambda d: scene_power_law(d, alpha=2.0), [16, 32], steps=4, restarts=0,
                                  divergences=("w2",), sampler="flow_match_euler", n_jobs=1)
    d = law.to_dict()
    assert d["settings"]["endpoints"] == [0.0, None]
    assert all(row[0] == "-inf" for row in d["log_snr"]["w2"])  # (JSON-safe: pure noise, t = 1)
    assert np.all(np.isfinite(d["offset"]["w2"])) and np.isfinite(d["slope_per_doubling"]["w2"])
    direct = symsched.optimize_schedule(scene_power_law(16, alpha=2.0), 4, divergence="w2", restarts=0,
                                        sampler="flow_match_euler")
    assert direct.alpha_bar[0] == 0.0
    # a VP sampler keeps both ends free (the documented default)
    vp = symsched.resolution_law(lambda d: scene_power_law(d, alpha=2.0), [16, 32], steps=4, restarts=0,
                                 divergences=("w2",), n_jobs=1)
    assert vp.to_dict()["settings"]["endpoints"] == [None, None]
