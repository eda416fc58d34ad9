"""Acceptance on the built-in learned model (issue 9): the default optimised schedule helps a real model.

Needs torch and ``symsched.models`` (``builtin:patches16``); skips cleanly without them. The claim is
paired and per seed: with the same three seeds for every schedule (DDIM eta=0 on the model's
1000-step linear grid, K = 5, 2,000 samples against all 6,272 held-out patches; ``symsched probe`` compares with
a 2,000-patch subset of them by default, ``--reference-samples``), the default optimised
schedule of ``symsched probe`` (:func:`symsched.probe.default_schedules` ``"optimised"``: the default
objective :data:`symsched.optimize.DEFAULT_DIVERGENCE`, white-noise start, both end points free on the
model's grid, for the PSD of the training patches) has a lower MMD² and a lower sliced W2 than
linear-trailing, linear-leading and karras on each seed.

The configuration (K = 5, the model's grid, the schedules and metrics) is the issue's; the seeds are fixed (0, 1, 2),
so the test is deterministic.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")  # (the built-in weights: torch alone is not enough)
models = pytest.importorskip("symsched.models")

from symsched import probe, spectra  # noqa: E402
from symsched.optimize import DEFAULT_DIVERGENCE  # noqa: E402

STANDARD = ("linear-trailing", "linear-leading", "karras")
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def result():
    m = models.load_model("builtin:patches16")
    S = spectra.psd2d(models.patches16("train"))
    scheds = probe.default_schedules(S, 5, names=("optimised",) + STANDARD, grid=m.grid)
    return probe.probe_schedules(m, scheds, models.patches16("test"), n_samples=2000, seeds=SEEDS, spectrum=S,
                                 metrics=("mmd2", "sliced_w2"), progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["mmd2", "sliced_w2"])
@pytest.mark.parametrize("standard", STANDARD)
def test_default_optimised_schedule_beats_standard_on_every_paired_seed(result, standard, metric):
    """Issue 9's acceptance claim on the shipped model, as a regression pin on seeds fixed before looking: not a
    significance test (3 wins of 3 is p = 0.125 per comparison as a sign test; the margins, in seed-to-seed sd,
    were 5 to 60 at K = 5 in symsched probe's run of 6 December), but deterministic: a schedule, sampler or metric
    change that loses on any seed fails it."""
    d = result.comparison.difference(standard, metric, "optimised")  # standard - optimised, per seed
    assert d.values.size == len(SEEDS)
    assert (d.values > 0).all(), (
        f"{metric}: {standard} - optimised per seed = {d.values.tolist()}\n{result.to_markdown()}"
    )


def test_the_default_objective_is_w2():
    """The evidence above (and the README table) is for W2; KL-optimised samples are far worse on MMD²."""
    assert DEFAULT_DIVERGENCE == "w2"
