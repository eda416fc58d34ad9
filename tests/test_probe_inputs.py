"""Break-test K (probe inputs): what reaches a user's denoiser and what a user's denoiser may do.

- A denoiser that writes into its input (``x *= c``, an in-place ReLU, a torch ``mul_`` on a tensor that shares
  the batch's memory) must not change the sampler's state: the samples are those of the same denoiser without
  the write (it previously shrank the sample variance from 3.87 to 0.28).
- A level the caller gives strictly inside (0, 1) reaches the denoiser strictly inside, also through a VE
  sampler's sigma (1 - 2**-53 used to arrive as 1.0, 1e-310 as 0.0, and the errors then blamed the schedule).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from symsched import probe, schedules, spectra
from symsched._signal_samplers import interior_alpha_bar

S4 = spectra.power_law((4, 4), alpha=2.0)
AB4 = [4e-5, 0.05, 0.3, 0.7]


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "euler", "heun"])
def test_a_denoiser_writing_into_its_input_changes_nothing(sampler: str) -> None:
    W = probe.wiener_denoiser(S4, prediction="sample")

    def writing(x: np.ndarray, a: float) -> np.ndarray:
        out = W(x.copy(), a)
        x *= 0.5
        return out

    clean = probe.sample(W, AB4, shape=(4, 4), prediction="sample", sampler=sampler, n_samples=64, seed=0,
                         progress=False)
    got = probe.sample(writing, AB4, shape=(4, 4), prediction="sample", sampler=sampler, n_samples=64, seed=0,
                       progress=False)
    np.testing.assert_array_equal(got, clean)


def test_a_torch_module_writing_into_its_input_changes_nothing() -> None:
    torch = pytest.importorskip("torch")
    grid = schedules.training_grid("linear")
    W = probe.wiener_denoiser(S4, prediction="sample")
    ab = schedules.standard_schedule("linear-trailing", 5)

    class Writing(torch.nn.Module):
        def __init__(self, write: bool) -> None:
            super().__init__()
            self.write = write

        def forward(self, x, t):  # the exact x0 at the grid level of t, then an in-place op on the input
            out = torch.from_numpy(W(x.numpy().copy(), float(grid[int(t[0])])))
            if self.write:
                x.mul_(0.5)
            return out

    runs = [probe.sample(probe.torch_denoiser(Writing(w), grid, prediction="sample", shape=(4, 4),
                                              dtype=torch.float64), ab, n_samples=32, seed=1, progress=False)
            for w in (False, True)]
    np.testing.assert_array_equal(runs[1], runs[0])


@pytest.mark.parametrize("levels", [[0.3, 1 - 2.0**-53], [1e-310, 0.5], [5e-324, 0.5]])
@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_levels_inside_zero_one_reach_the_denoiser_inside(levels, sampler: str) -> None:
    seen: list[float] = []
    # a v-model (an epsilon model is refused below alpha_bar = 1e-16, where its x0 magnifies rounding past half of
    # float64's digits)
    W = probe.wiener_denoiser(S4, prediction="v")

    def f(x: np.ndarray, a: float) -> np.ndarray:
        seen.append(a)
        return W(x, a)

    probe.sample(f, levels, shape=(4, 4), prediction="v", sampler=sampler, n_samples=4, seed=0, progress=False)
    assert seen and all(0.0 < a < 1.0 for a in seen)
    assert min(seen) == min(levels) and max(seen) == max(levels)  # the given levels themselves, not rounded ones


def test_interior_alpha_bar_against_mpmath() -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    for sigma in [1e-300, 1e-9, 1.0536712127723509e-08, 1e-3, 0.5, 1.0, 2.0, 1e8, 1e150, 4e161]:
        want = 1 / (1 + mpmath.mpf(sigma) ** 2)
        got = interior_alpha_bar(sigma)
        assert 0.0 < got < 1.0
        if mpmath.mpf(2) ** -54 < 1 - want and want > mpmath.mpf(2) ** -1074:  # representable inside (0, 1)
            assert abs(mpmath.mpf(got) - want) <= 2 * mpmath.mpf(np.spacing(got)), sigma
    assert interior_alpha_bar(0.0) == 1.0 and interior_alpha_bar(float("inf")) == 0.0  # the ends stay the ends


# -- the probe's metrics and paired comparisons refuse what they cannot mean -------------------------------------
def test_sliced_w2_projections_must_be_finite_unit_columns() -> None:
    pytest.importorskip("ot")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 16)), rng.standard_normal((50, 16))
    P = rng.standard_normal((16, 3))
    P /= np.linalg.norm(P, axis=0)
    assert np.isfinite(probe.sliced_w2(x, y, projections=P))
    with pytest.raises(ValueError, match=r"projections must have unit columns \(column \d+ has norm 5\)"):
        probe.sliced_w2(x, y, projections=5 * P)
    with pytest.raises(ValueError, match="projections must be finite"):
        probe.sliced_w2(x, y, projections=np.where(P > 0, np.nan, P))
    # columns normalised in float32 (norms 1 +- ~1e-6 at d = 3072) are unit directions, renormalised in float64
    big = rng.standard_normal((3072, 8)).astype(np.float32)
    big /= np.linalg.norm(big, axis=0)
    xb, yb = rng.standard_normal((20, 3072)), rng.standard_normal((30, 3072))
    assert probe.sliced_w2(xb, yb, projections=big) == pytest.approx(
        probe.sliced_w2(xb, yb, projections=big.astype(np.float64) / np.linalg.norm(big.astype(np.float64), axis=0)),
        rel=1e-12)


def test_compare_paired_refuses_alpha_bar_of_other_schedules() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((50, 4, 4))
    samples = {"a": [rng.standard_normal((40, 4, 4)) for _ in range(2)],
               "b": [rng.standard_normal((40, 4, 4)) for _ in range(2)]}
    metrics = ["spectral_kl", "spectral_w2"]
    ok = probe.compare_paired(samples, y, alpha_bar={"a": [0.1, 0.5], "b": [0.2, 0.6]}, metrics=metrics)
    assert set(ok.comparisons) == {"a", "b"}
    with pytest.raises(ValueError, match=r"not among samples: \['bb'\]; missing: \['b'\]"):
        probe.compare_paired(samples, y, alpha_bar={"a": [0.1, 0.5], "bb": [0.2, 0.6]}, metrics=metrics)
    with pytest.raises(ValueError, match=r"missing: \['b'\]"):
        probe.compare_paired(samples, y, alpha_bar={"a": [0.1, 0.5]}, metrics=metrics)


def test_probe_schedules_refuses_repeated_seeds_and_names_a_reference_of_other_data() -> None:
    from symsched import montecarlo as mc

    ref = mc.gaussian_field(S4, 60, seed=1)
    den = probe.wiener_denoiser(S4)
    sch = {"a": [0.05, 0.5], "b": [0.1, 0.6]}
    with pytest.raises(ValueError, match="seeds must be distinct"):
        probe.probe_schedules(den, sch, ref, n_samples=20, seeds=(0, 0), spectrum=S4, progress=False,
                              metrics=["spectral_w2"])
    with pytest.raises(ValueError, match=r"spectrum and reference disagree.*\(4, 4\).*\(2, 4\)"):
        probe.probe_schedules(den, sch, ref[:, :2], n_samples=20, seeds=(0,), spectrum=S4, progress=False,
                              metrics=["spectral_w2"])


def test_a_torch_module_returning_complex_or_boolean_is_refused() -> None:
    """break-test (probe): torch_denoiser cast the module's output to float64 before the sampler's check, so a complex
    output lost its imaginary part (a torch warning only) and a boolean one passed as 0/1; a plain function returning
    the same values was refused."""
    torch = pytest.importorskip("torch")
    from symsched._validate import ArgumentTypeError

    grid = schedules.training_grid("linear")
    for module, what in ((lambda x, t: x.to(torch.complex128) * (1 + 5j), "complex"), (lambda x, t: x > 0, "boolean"),
                         (lambda x, t: (3 * x).long(), "integer")):  # (break-test of 7 December: x.long() ran)
        den = probe.torch_denoiser(module, grid, prediction="sample", shape=(4,))
        with pytest.raises(ArgumentTypeError, match=f"torch module output must be a real array, not {what}"):
            probe.sample(den, [0.1, 0.5], n_samples=2, seed=0, progress=False)
    half = probe.torch_denoiser(lambda x, t: x.to(torch.bfloat16), grid, prediction="sample", shape=(4,))
    assert probe.sample(half, [0.1, 0.5], n_samples=2, seed=0, progress=False).dtype == np.float64  # no NumPy twin
    with pytest.raises(ArgumentTypeError, match="grid must be an array of real numbers"):
        probe.torch_denoiser(lambda x, t: x, "abc")


def test_probe_schedules_checks_every_start_before_sampling() -> None:
    """break-test (probe): an epsilon-prediction model with a schedule from alpha_bar = 0 (zero terminal SNR) was
    refused only when that schedule's turn came, after the schedules before it had been sampled."""
    calls: list[float] = []

    def den(x: np.ndarray, a: float) -> np.ndarray:
        calls.append(a)
        return np.zeros_like(x)

    ref = np.random.default_rng(0).standard_normal((20, 4, 4))
    with pytest.raises(ValueError, match=r"schedules\['b'\] starts at alpha_bar = 0 .*epsilon-prediction model"):
        probe.probe_schedules(den, {"a": [0.1, 0.5], "b": [0.0, 0.5]}, ref, n_samples=4, seeds=(0,),
                              prediction="epsilon", shape=(4, 4), progress=False)
    assert calls == []
    with pytest.raises(ValueError, match=r"^alpha_bar starts at alpha_bar = 0 .*epsilon-prediction model"):
        probe.sample(den, [0.0, 0.5], prediction="epsilon", shape=(4, 4), n_samples=2, progress=False)
    assert calls == []


def test_a_shape_the_denoiser_does_not_take_is_refused_naming_shape() -> None:
    """An (8, 8) Wiener denoiser asked for (4, 4) samples: the error named x (the denoiser's own argument, "x must
    end with the spectrum's grid shape (8, 8) (got (4, 4, 4))"), not the shape the caller passed; it is refused
    before any denoiser call, naming shape (or the reference, whose sample shape is probe_schedules' default)."""
    from symsched import montecarlo as mc

    S8 = spectra.power_law((8, 8), alpha=2.0)
    calls = []
    W = probe.wiener_denoiser(S8)
    den = probe.Denoiser(lambda x, a: calls.append(a) or W(x, a), "epsilon", (8, 8))
    ab = schedules.standard_schedule("linear-trailing", 3)
    for bad in ((4, 4), (2, 8, 8), (64,)):
        for d in (W, den):
            with pytest.raises(ValueError, match=r"^shape must be the denoiser's sample shape \(8, 8\) \(got "
                                                 + re.escape(str(bad)) + r"\)$"):
                probe.sample(d, ab, n_samples=4, seed=0, shape=bad, progress=False)
    ref4 = mc.gaussian_field(S4, 20, seed=1)
    with pytest.raises(ValueError, match=r"^reference samples \(the default shape\) must have the denoiser's sample "
                                         r"shape \(8, 8\) \(got \(4, 4\)\)$"):
        probe.probe_schedules(den, {"a": ab}, ref4, n_samples=4, seeds=(0,), progress=False)
    with pytest.raises(ValueError, match=r"^shape must be the denoiser's sample shape \(8, 8\) \(got \(4, 4\)\)$"):
        probe.probe_schedules(den, {"a": ab}, mc.gaussian_field(S8, 20, seed=1), n_samples=4, seeds=(0,),
                              shape=(4, 4), progress=False)
    assert calls == []
    # the denoiser's own shape (given or by default) and a denoiser that declares none still run
    assert probe.sample(den, ab, n_samples=4, seed=0, shape=(8, 8), progress=False).shape == (4, 8, 8)
    assert probe.sample(lambda x, a: W(x, a), ab, n_samples=4, seed=0, shape=(8, 8), prediction="epsilon",
                        progress=False).shape == (4, 8, 8)


def test_measured_spectrum_takes_the_channels_on_any_of_three_sample_axes() -> None:
    """Audit of 4 December (the docstring claimed only (n, C, H, W) / (n, H, W, C)): the channel axis may be any of a
    sample's 3 axes, the other two are H and W in order; other numbers of axes are refused, naming channel_axis."""
    from symsched.spectra import colour_eigen_psd

    x = np.random.default_rng(3).standard_normal((6, 8, 3, 5))
    got = probe.measured_spectrum(x, channel_axis=1)
    np.testing.assert_allclose(got, colour_eigen_psd(np.moveaxis(x, 2, -1)), rtol=1e-12)
    assert got.shape == (8, 5, 3)
    with pytest.raises(ValueError, match=r"channel_axis needs 3 axes per sample"):
        probe.measured_spectrum(x[:, :, 0], channel_axis=0)


def test_a_prediction_the_denoiser_does_not_return_is_refused() -> None:
    """Audit of 5 December: probe_schedules(wiener_denoiser(S) (epsilon), ..., prediction="sample") ran, reading the
    epsilon output as x0 (MMD² 0.140 for 0.037), while a conflicting shape is refused. A prediction that conflicts with
    the denoiser's declared one is refused before any call; the same prediction, or none, runs; a plain function
    (which declares none) takes any."""
    from symsched import montecarlo as mc

    calls = []
    W = probe.wiener_denoiser(S4)  # epsilon
    den = probe.Denoiser(lambda x, a: calls.append(a) or W(x, a), "epsilon", (4, 4))
    for d in (W, den):
        for bad in ("sample", "v"):
            with pytest.raises(ValueError, match=rf"^prediction='{bad}' conflicts with the denoiser's own prediction "
                                                 r"'epsilon'"):
                probe.sample(d, AB4, n_samples=4, seed=0, prediction=bad, progress=False)
    with pytest.raises(ValueError, match=r"^prediction='sample' conflicts"):
        probe.probe_schedules(den, {"a": AB4}, mc.gaussian_field(S4, 20, seed=1), n_samples=4, seeds=(0,),
                              prediction="sample", progress=False)
    assert calls == []
    same = probe.sample(den, AB4, n_samples=4, seed=0, prediction="epsilon", progress=False)
    np.testing.assert_array_equal(same, probe.sample(den, AB4, n_samples=4, seed=0, progress=False))
    assert probe.sample(lambda x, a: W(x, a), AB4, n_samples=4, seed=0, shape=(4, 4), prediction="sample",
                        progress=False).shape == (4, 4, 4)


def test_an_attribute_named_prediction_that_is_not_one_declares_nothing() -> None:
    """Review of 5 December: a network class with a method called ``prediction`` was refused with an explicit
    prediction="epsilon" ("denoiser.prediction must be one of ..."); only a valid declared value can conflict."""
    W = probe.wiener_denoiser(S4)

    class Net:
        shape = (4, 4)

        def prediction(self):  # an unrelated method
            return None

        def __call__(self, x, a):
            return W(x, a)

    x = probe.sample(Net(), AB4, n_samples=4, seed=0, prediction="epsilon", progress=False)
    np.testing.assert_array_equal(x, probe.sample(W, AB4, n_samples=4, seed=0, progress=False))


def test_a_prediction_declared_by_its_alias_still_conflicts() -> None:
    """Audit of 5 December (second pass): a denoiser declaring diffusers' spelling ``"v_prediction"`` (or ``"eps"``,
    ``"x0"``) was read correctly when prediction was left out, but an explicit conflicting prediction ran without a
    word (samples off by up to 5e3). The alias is normalised before the comparison; the alias's own meaning runs."""
    W = probe.wiener_denoiser(S4)  # returns epsilon
    for alias, meaning, bad in (("eps", "epsilon", "sample"), ("x0", "sample", "epsilon"),
                                ("v_prediction", "v", "epsilon")):
        den = probe.Denoiser(W, alias, (4, 4))
        with pytest.raises(ValueError, match=rf"^prediction='{bad}' conflicts with the denoiser's own prediction "
                                             rf"'{meaning}'"):
            probe.sample(den, AB4, n_samples=4, seed=0, prediction=bad, progress=False)
    den = probe.Denoiser(W, "eps", (4, 4))
    np.testing.assert_array_equal(probe.sample(den, AB4, n_samples=4, seed=0, prediction="epsilon", progress=False),
                                  probe.sample(W, AB4, n_samples=4, seed=0, progress=False))
