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


def test_a_first_level_0_on_diffusers_zero_snr_stand_in_grid_names_the_stand_in(tmp_path, capsys):
    """break-test (7 December): --endpoints 0,none on a grid ending in diffusers' 2**-24 stand-in said "no zero
    terminal SNR" and suggested building another grid; without --endpoints the same grid got the real fix."""
    from symsched import schedules
    from symsched.cli import main

    grid = schedules.training_grid("scaled_linear", rescale_zero_snr=True).copy()
    grid[-1] = schedules.ZERO_SNR_STANDIN
    np.save(tmp_path / "g.npy", grid)
    code = main(["optimize", "--steps", "4", "--grid", str(tmp_path / "g.npy"), "--sampler", "ddim", "--endpoints",
                 "0,none", "--out", str(tmp_path / "o.json"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "2**-24, diffusers' stand-in for zero terminal SNR" in err and "grid[-1] = 0" in err, err
    assert "no zero terminal SNR" not in err
    with pytest.raises(ValueError, match=r"stand-in for zero terminal SNR.*grid\[-1\] = 0"):
        symsched.optimize_schedule(np.ones(4), 4, grid=grid, endpoints=(0.0, None))


def test_comfyui_export_of_an_init_exact_schedule_does_not_contradict_itself(tmp_path, capsys):
    """break-test (7 December): one note said "optimised with --init exact", a later one "these sigmas were optimised
    for k-diffusion's start N(0, sigmas[0]^2)"."""
    import json

    from symsched.cli import main

    out = tmp_path / "ie.json"
    assert main(["optimize", "--steps", "3", "--sampler", "euler", "--init", "exact", "--format", "comfyui", "--out",
                 str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    notes = json.loads(out.read_text())["notes"]
    for text in (printed, " ".join(notes)):
        assert "optimised with --init exact" in text and "optimised for k-diffusion's start" not in text
        assert "not from the --init exact start these sigmas were optimised for" in text
