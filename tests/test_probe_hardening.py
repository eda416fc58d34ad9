"""Break-test D (learned-model probe): batch-size invariance, errors that name the argument, the k-diffusion path's
progress and error handling, one-value samples, and the VE Euler and Heun steps at huge sigma.

Each fault was found by running the probe as a user would; each test states the right behaviour and, where a
number is asserted, computes it independently (a 1-D Gaussian's Fréchet distance; the closed form of the output
spectrum through the Monte Carlo check with its stated false-alarm probability and a companion rejection).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from mpmath import mp, mpf

import symsched

from symsched import montecarlo as mc
from symsched import probe, schedules, spectra
from symsched._validate import ArgumentTypeError

from mc_helpers import assert_psd_matches, assert_psd_rejects, make_spectrum

S8 = spectra.power_law((8, 8), alpha=2.0)
AB5 = schedules.standard_schedule("linear-trailing", 5)


@pytest.mark.parametrize("sampler,kw", [("ddpm", {}), ("ddpm", {"variance": "beta"}), ("ddim", {"eta": 1.0}),
                                        ("ddim", {}), ("euler", {}), ("heun", {})])
def test_samples_of_a_seed_do_not_depend_on_the_batch_size(sampler, kw) -> None:
    """break-test D: DDPM with batch_size=3 differed from batch_size=10 by up to 10 for the same seed (one generator
    served the steps of every batch in turn); each step's noise now has its own stream."""
    den = probe.wiener_denoiser(S8, prediction="sample")
    runs = [probe.sample(den, AB5, n_samples=10, seed=1, sampler=sampler, batch_size=b, progress=False, **kw)
            for b in (10, 3, 1, None)]
    for x in runs[1:]:
        np.testing.assert_array_equal(x, runs[0])
    other = probe.sample(den, AB5, n_samples=10, seed=2, sampler=sampler, progress=False, **kw)
    assert np.max(np.abs(other - runs[0])) > 0.1  # a different seed is different noise


def test_monte_carlo_samples_do_not_depend_on_the_batch_size() -> None:
    a = mc.sample(S8, AB5, n_samples=12, seed=3, sampler="ddpm", batch_size=5, progress=False)
    b = mc.sample(S8, AB5, n_samples=12, seed=3, sampler="ddpm", batch_size=12, progress=False)
    np.testing.assert_array_equal(a, b)


def test_ddpm_from_a_level_below_1e_16_of_the_next() -> None:
    """break-test (probe): from alpha_bar = 1e-17 before 0.5, 1 - beta = a_t/a_s rounds to 0 from beta = 1 - a_t/a_s, and
    DDPM's 1/sqrt(1 - beta) raised a bare ZeroDivisionError; formed from the ratio itself it matches the closed form
    (x0-prediction: the eps form's x0 = (x - sqrt(1-a) eps)/sqrt(a) is the model's own cancellation; family-wise
    false alarm 1e-4)."""
    S = make_spectrum((8, 8), "power", exponent=2.0, scale=5.0)
    den = probe.wiener_denoiser(S, prediction="sample")
    n = 3000
    for first in (1e-17, 1e-310):  # (review: a_s / a_t overflowed to inf from a subnormal level)
        ab = [first, 0.5, 0.9]
        x = probe.sample(den, ab, n_samples=n, seed=5, sampler="ddpm", progress=False)
        psd = mc.empirical_psd(x)
        assert_psd_matches(psd, probe.predicted_spectrum(S, ab, sampler="ddpm"), n, alpha=1e-4, what=f"ddpm {first}")
        assert_psd_rejects(psd, probe.predicted_spectrum(S, ab, sampler="ddpm", variance="beta"), n, alpha=1e-4,
                           what="ddpm with the beta variance")
    # an epsilon model there: x0 = (x - sqrt(1-ab) eps)/sqrt(ab) magnifies eps's rounding by 1e155 (the samples came
    # out 1e267 times too large): refused, as at alpha_bar = 0, and so is 1e-17 (x 3e8: past half of float64's
    # digits); at the floor 1e-16 (x 1e8) it runs
    eps = probe.wiener_denoiser(S, prediction="epsilon")
    for first in (1e-310, 1e-17):
        with pytest.raises(ValueError, match=r"prediction='epsilon' cannot give x0_hat at alpha_bar_t=1e-(310|17): "
                                             r".*more than half of float64"):
            probe.sample(eps, [first, 0.5, 0.9], n_samples=4, seed=5, sampler="ddpm", progress=False)
    assert np.all(np.isfinite(probe.sample(eps, [1e-16, 0.5, 0.9], n_samples=4, seed=5, sampler="ddpm",
                                           progress=False)))


@pytest.mark.parametrize("sampler,other", [("euler", "heun"), ("heun", "euler")])
def test_ve_samplers_at_a_huge_first_sigma_keep_their_digits(sampler, other) -> None:
    """break-test D: from alpha_bar = 1e-40 (sigma = 1e20) VE Euler returned all zeros (x + (s - t)(x - D)/t cancels
    every digit), and EDM Heun's x + (s - t)(d + d')/2 gave measured spectra 3 to 1300 times the closed form;
    evaluated as D + s (x - D)/t and x_e + ((s - t)/2)(d' - d) they match (family-wise false alarm 1e-4), through the
    probe and through montecarlo.sample_ve alike; a level left out, or the other sampler's spectrum, is rejected."""
    S = make_spectrum((8, 8), "power", exponent=2.0, scale=5.0)
    ab = [1e-40, 0.2, 0.6, 0.95]
    den = probe.wiener_denoiser(S, prediction="sample")
    n = 3000
    x = probe.sample(den, ab, n_samples=n, seed=4, sampler=sampler, progress=False)
    psd = mc.empirical_psd(x)
    assert_psd_matches(psd, probe.predicted_spectrum(S, ab, sampler=sampler), n, alpha=1e-4,
                       what=f"{sampler} from 1e-40")
    assert_psd_rejects(psd, probe.predicted_spectrum(S, [1e-40, 0.2, 0.95], sampler=sampler), n, alpha=1e-4,
                       what=f"{sampler} with a level left out")
    sig = [1e20, 1.0, 0.1]
    x = mc.sample_ve(S, sig, sampler=sampler, n_samples=n, seed=4, progress=False)
    psd = mc.empirical_psd(x)
    assert_psd_matches(psd, symsched.output_spectrum_ve(S, sig, sampler=sampler), n, alpha=1e-4,
                       what=f"sample_ve {sampler}")
    assert_psd_rejects(psd, symsched.output_spectrum_ve(S, sig, sampler=other), n, alpha=1e-4,
                       what=f"sample_ve {sampler} against {other}'s spectrum")


class _ScalarWiener:
    """The exact denoiser of one mode of variance S: D(x; sigma) = S/(S + sigma^2) x (a stand-in for Model)."""

    eps_native = False

    def __init__(self, S: float) -> None:
        self.S = S

    def ve(self, x, sigma):
        r = math.sqrt(self.S) / sigma  # S/(S + sigma^2) = r^2/(1 + r^2), formed so that neither r^2 nor 1/r^2 flushes
        return x / (1.0 + r**-2) if r >= 1.0 else x * r * r / (1.0 + r * r)

    def ve_slope(self, x, sigma):
        r = math.sqrt(self.S) / sigma  # (x - D)/sigma = x/(sigma (1 + r^2)); r^2 = inf gives 0
        with np.errstate(over="ignore"):
            return self.ve(x, sigma), x / sigma / (1.0 + np.square(r))


def _ve_step_mpmath(sampler: str, x: float, t: float, s: float, S: float) -> tuple[float, bool]:
    """EDM Alg. 1 (no churn) in its textbook form: the Euler step, and for Heun the trapezoidal corrector; at 1300
    digits (it cancels terms ~ t against results ~ s, and the levels span 1e-300 to 1e300). Also whether Heun's
    result rests (beyond 1e-10 of it) on a denoiser input x_e or output D_s(x_e) that float64 holds to fewer than 10
    digits (nonzero, below 5e-314 = 1e10 times its smallest subnormal): a float64 denoiser cannot be given or
    return that state, whatever the order of evaluation (D_s enters the result as ((t - s)/(2s)) D_s)."""
    with mp.workdps(1300):
        x, t, s, S = mpf(x), mpf(t), mpf(s), mpf(S)
        D = lambda y, sg: S / (S + sg**2) * y  # noqa: E731
        d = (x - D(x, t)) / t
        xe = x + (s - t) * d
        if sampler == "euler":
            return float(xe), False
        Ds = D(xe, s)
        d2 = (xe - Ds) / s
        out = x + (s - t) * (d + d2) / 2
        below = any(0 < abs(q) < 1e10 * math.ulp(0.0) for q in (xe, Ds))
        return float(out), below and abs(Ds) * (t - s) / (2 * s) > mpf("1e-10") * abs(out)


@pytest.mark.parametrize("sampler", ["euler", "heun"])
@pytest.mark.parametrize("t,s", [(1.0, 0.5), (80.0, 0.002), (1e20, 1.0), (1e10, 1e-10), (1e160, 1e-150),
                                 (1e300, 1e-20), (1e300, 1e-300), (80.0, 1e-300), (1e-200, 1e-300)])
def test_ve_steps_match_mpmath_at_extreme_ratios(sampler, t, s) -> None:
    """One Euler or Heun step on one mode against the textbook formula at 1300 digits, from t/s = 2 to t/s = 1e600
    (where s/t is subnormal or 0 and, for Heun, (t - s)/s overflows float64 though the result is a normal number)
    and modes S from 1e-300 to 1e300. Tolerance: relative 1e-10; the rounding of a float64 denoiser's D_s is
    inherent to Heun (any order of evaluation carries eps |D_s| (t - s)/(2s); at t = 80, s = 0.002, S = 1e6 that is
    4e-12 of the result) and is kept within it. No absolute tolerance: results of 1e-300 are compared to 10 digits.
    Left out: Heun steps whose result rests on a denoiser state held to < 10 digits (12 of the 189 here: x = 2.5 at
    t = 1e300, where x_e = s 2.5e-300 is 2.5e-320 or less)."""
    from symsched._signal_samplers import SAMPLERS

    step = SAMPLERS[sampler].step
    for S in (1e-300, 1e-12, 1e-6, 1.0, 1e6, 1e12, 1e300):
        for x0 in (0.7 * t, -1.3 * t, 2.5):
            got = step(np.array([x0]), t, s, model=_ScalarWiener(S), add_noise=None, last=False, state={})[0]
            want, below = _ve_step_mpmath(sampler, x0, t, s, S)
            if below:
                continue
            assert math.isfinite(got) and got == pytest.approx(want, rel=1e-10, abs=0.0), (t, s, S, x0, got, want)


def test_the_textbook_heun_form_fails_the_mpmath_check() -> None:
    """Companion: the float64 textbook form x + (s - t)(d + d')/2 misses the 1300-digit value at t = 1e20, so the check
    above can fail."""
    x, t, s, S = 0.7e20, 1e20, 1.0, 1.0
    m = _ScalarWiener(S)
    d = (x - m.ve(x, t)) / t
    xe = x + (s - t) * d
    naive = x + (s - t) * (d + (xe - m.ve(xe, s)) / s) / 2
    assert naive != pytest.approx(_ve_step_mpmath("heun", x, t, s, S)[0], rel=1e-10, abs=0.0)


def test_one_value_per_sample_is_compared() -> None:
    """break-test D: d = 1 gave numpy's LinAlgError (np.cov returns a 0-d array); FD of two 1-D Gaussians is
    (m1 - m2)^2 + (s1 - s2)^2 with the sample moments (computed here)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 1)), 1.5 + 2.0 * rng.standard_normal((80, 1))
    res = probe.compare(x, y, metrics=["fd", "mmd2"])
    want = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert res.mean("fd") == pytest.approx(want, rel=1e-9)
    assert probe.frechet_distance(x, y) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (1.5, ValueError), ("a", TypeError), (True, TypeError)])
def test_metric_seeds_are_checked(bad, exc) -> None:
    x = np.random.default_rng(0).standard_normal((20, 4))
    pytest.importorskip("ot")
    with pytest.raises(exc, match="seed"):
        probe.compare(x, x + 1, metrics=["sliced_w2"], seed=bad)
    with pytest.raises(exc, match="seed"):
        probe.sliced_w2(x, x + 1, seed=bad)


def test_paired_comparison_names_a_bad_metric_and_alpha_bar() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((30, 4))
    samples = {"a": [rng.standard_normal((20, 4))], "b": [rng.standard_normal((20, 4))]}
    pc = probe.compare_paired(samples, ref, metrics=["mmd2"])
    for call in (lambda: pc.difference("b", "spectral_kl"), lambda: pc.difference("b", "foo"), lambda: pc.best("foo")):
        with pytest.raises(ValueError, match="metric"):
            call()
    assert pc.difference("b", "mmd2").values.shape == (1,)
    with pytest.raises(TypeError, match="alpha_bar must be a mapping"):
        probe.compare_paired(samples, ref, metrics=["mmd2"], alpha_bar=[0.1, 0.5])


def test_probe_schedules_checks_its_arguments_before_sampling() -> None:
    """break-test D: n_examples, grid and n_samples=1 failed (or were found) only after every schedule was sampled."""
    calls = []

    def den(x, a):
        calls.append(a)
        return np.zeros_like(x)

    ref = np.random.default_rng(0).standard_normal((10, 4, 4))
    kw = dict(n_samples=4, seeds=(0,), prediction="sample", metrics=["mmd2"])
    for bad, exc, name in (({"n_examples": -1}, ValueError, "n_examples"), ({"n_examples": 2.5}, ValueError, "n_examples"),
                           ({"n_examples": 0}, ValueError, "n_examples"), ({"n_samples": 1}, ValueError, "n_samples"),
                           ({"grid": [0.5, 2.0]}, ValueError, "grid")):
        with pytest.raises(exc, match=name):
            probe.probe_schedules(den, {"a": AB5}, ref, **{**kw, **bad})
    assert calls == []
    res = probe.probe_schedules(den, {"a": AB5, "b": AB5[1:]}, ref, n_examples=1, **kw)
    assert res.examples["a"].shape == (1, 4, 4) and calls
    json.dumps(res.to_dict(), allow_nan=False)


@pytest.mark.parametrize("names,exc", [("karras", TypeError), (None, TypeError), ((), ValueError)])
def test_default_schedules_names_must_be_a_sequence(names, exc) -> None:
    with pytest.raises(exc, match="names"):
        probe.default_schedules(S8, 3, names=names)
    assert list(probe.default_schedules(S8, 3, names=["karras"])) == ["karras"]


# ------------------------------------------------------------------------------------------------ torch adapters
def test_torch_denoiser_checks_module_dtype_and_output() -> None:
    torch = pytest.importorskip("torch")
    grid = schedules.training_grid("linear")
    net = torch.nn.Identity()
    for bad in (torch.int64, "float32", np.float32):
        with pytest.raises(TypeError, match="dtype must be a torch floating dtype") as exc:
            probe.torch_denoiser(net, grid, dtype=bad)
        # review of 5 December: "float32" was refused because "an integer dtype would truncate x_t"
        assert ("integer dtype" in str(exc.value)) == (bad is torch.int64), str(exc.value)
    with pytest.raises(TypeError, match="module must be"):
        probe.torch_denoiser(3, grid)
    den = probe.torch_denoiser(lambda x, t: x.numpy(), grid, prediction="sample", shape=(4,))
    with pytest.raises(TypeError, match="must return a torch tensor"):
        probe.sample(den, AB5, n_samples=2, seed=0, progress=False)
    with pytest.raises(TypeError, match="unet must be a diffusers UNet2DModel"):
        probe.diffusers_denoiser(object(), object())


@pytest.mark.parametrize("device,exc,msg", [
    ("bogus", ValueError, r"^device 'bogus' is not a torch device string \(torch: "),
    ("meta", ValueError, r"^device 'meta' holds no values"),
    ("cuda", ValueError, r"^device 'cuda' is not available in this torch build \(torch: "),
    ("mps", ValueError, r"^device 'mps' is not available in this torch build"),
    (True, TypeError, r"^device must be a torch device or its name"),
    (1.5, TypeError, r"^device must be a torch device or its name"),
])
def test_torch_denoiser_checks_the_device_when_it_is_built(device, exc, msg) -> None:
    """break-test F3: the device was not checked; device="bogus" failed inside torch at the first denoiser call with
    RuntimeError, "cuda" (no CUDA build) with AssertionError, "meta" with NotImplementedError ("Cannot copy out of
    meta tensor"). Now the adapter refuses it when built, naming device and why; the module is never called."""
    torch = pytest.importorskip("torch")
    if device == "cuda" and torch.cuda.is_available() or device == "mps" and torch.backends.mps.is_available():
        pytest.skip(f"{device} is available here")
    calls = []
    grid = schedules.training_grid("linear")
    with pytest.raises(exc, match=msg):
        probe.torch_denoiser(lambda x, t: calls.append(t) or x, grid, prediction="sample", shape=(8, 8), device=device)
    assert not calls
    for fine in ("cpu", "cpu:0", torch.device("cpu"), None):  # torch's own spellings of the CPU still run
        den = probe.torch_denoiser(lambda x, t: x, grid, prediction="sample", shape=(8, 8), device=fine)
        assert probe.sample(den, [0.1, 0.5], n_samples=2, seed=0, progress=False).shape == (2, 8, 8)


def test_diffusers_denoiser_checks_its_device() -> None:
    """break-test F3: diffusers_denoiser passes device to torch_denoiser, which now checks it when built."""
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    with pytest.raises(ValueError, match="^device 'meta' holds no values"):
        probe.diffusers_denoiser(tiny_unet(), diffusers.DDPMScheduler(), device="meta")


def test_schedule_names_must_be_strings() -> None:
    """break-test F4: probe_schedules(den, {1: ..., 2: ...}, ...) raised "baseline must be one of 1, 2 (got 1)",
    naming an argument the caller never gave; plot_schedules merged the schedules 1 and "1" into one silently.
    Every name -> schedule mapping refuses a key that is not a string, naming the mapping."""
    den = probe.wiener_denoiser(S8, prediction="sample")
    ref = mc.gaussian_field(S8, 20, seed=3)
    rule = r"must be keyed by schedule names \(strings\), got the key 1 of type int"
    with pytest.raises(ArgumentTypeError, match="^schedules " + rule):
        probe.probe_schedules(den, {1: [.1, .5], 2: [.2, .6]}, ref, n_samples=4, seeds=(0,), progress=False)
    with pytest.raises(ArgumentTypeError, match="^samples " + rule):
        probe.compare_paired({1: ref, "b": ref}, ref)
    with pytest.raises(ArgumentTypeError, match="^alpha_bar " + rule):
        probe.compare_paired({"a": ref}, ref, alpha_bar={1: [.1, .5]})
    with pytest.raises(ArgumentTypeError, match="^names entries must be one of"):
        probe.default_schedules(S8, 3, names=[1])
    from symsched import plots

    with pytest.raises(ArgumentTypeError, match="^schedules " + rule):
        plots.plot_schedules({1: [.1, .5], "1": [.2, .6]})
    from matplotlib.figure import Figure

    assert isinstance(plots.plot_schedules({"1": [.1, .5]}), Figure)  # a string that looks like a number is a name


def test_a_bfloat16_output_is_read_as_float64() -> None:
    torch = pytest.importorskip("torch")
    W = probe.wiener_denoiser(S8, prediction="sample")
    x = probe.sample(lambda x, a: torch.from_numpy(W(x, a)).to(torch.bfloat16), AB5, n_samples=4, seed=0,
                     prediction="sample", shape=(8, 8), progress=False)
    ref = probe.sample(W, AB5, n_samples=4, seed=0, progress=False)
    assert np.all(np.isfinite(x)) and np.max(np.abs(x - ref)) < 0.05 * np.max(np.abs(ref))


# ------------------------------------------------------------------------------------------------ k-diffusion path
def _kd():
    from kdiffusion_helpers import load_sampling

    load_sampling()  # skips without torch / torchsde / k-diffusion


@pytest.mark.parametrize("sampler", ["dpm_2", "dpmpp_2m", "euler_ancestral", "dpmpp_2s_ancestral"])
def test_k_diffusion_samples_do_not_depend_on_the_batch_size(sampler) -> None:
    """break-test D: even deterministic dpm_2 changed with batch_size (k-diffusion draws noise it does not use from the
    generator that also made the next batch's start); ancestral noise now comes from batch-invariant streams."""
    _kd()
    den = probe.wiener_denoiser(S8, prediction="sample")
    a = probe.sample(den, AB5, n_samples=7, seed=1, sampler=sampler, batch_size=7, progress=False)
    b = probe.sample(den, AB5, n_samples=7, seed=1, sampler=sampler, batch_size=3, progress=False)
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_k_diffusion_path_shows_progress_and_passes_a_denoisers_type_error_through() -> None:
    """break-test D: no bar was shown (progress never reached k-diffusion), and a TypeError inside the denoiser was
    reported as "options: k-diffusion's sample_dpmpp_2m rejects {}"."""
    _kd()

    class Bar:
        n = 0

        def update(self, k=1):
            self.n += k

    den = probe.wiener_denoiser(S8, prediction="sample")
    bar = Bar()
    probe.sample(den, AB5, n_samples=5, seed=0, sampler="dpmpp_2m", batch_size=2, progress=bar)
    assert bar.n == 3 * AB5.size  # 3 batches x K steps
    with pytest.raises(TypeError, match="unsupported operand"):
        probe.sample(lambda x, a: x * None, AB5, n_samples=2, seed=0, prediction="sample", shape=(8, 8),
                     sampler="dpmpp_2m", progress=False)
    with pytest.raises(ValueError, match="options"):
        probe.sample(den, AB5, n_samples=2, seed=0, sampler="dpmpp_2m", progress=False, options={"eta": 1.0})


# ------------------------------------------------------------------------------------------------ models and CLI
def test_builtin_model_empty_batch_and_overflowing_inputs() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from symsched import models

    m = models.load_model("builtin:patches16")
    assert m.denoiser(np.zeros((0, 16, 16)), 0.5).shape == (0, 16, 16)
    with pytest.raises(ValueError, match="overflow the network's float32"):
        m.denoiser(np.full((1, 16, 16), 1e30), 0.5)
    import warnings

    with warnings.catch_warnings():  # (review of 4 December: the float32 cast of 1e300 warned before the error)
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^x_t: values up to 1e\+300 overflow the network's float32"):
            m.denoiser(np.full((2, 16, 16), 1e300), 0.5)


def test_training_threads_are_bounded_by_the_machine() -> None:
    pytest.importorskip("torch")
    from dataclasses import replace

    from symsched.models.train import TrainConfig, train

    with pytest.raises(ValueError, match=r"threads must be an integer in \[1, "):
        train(replace(TrainConfig(), threads=(os.cpu_count() or 1) + 1), stop_after=1)


def test_probe_cli_refuses_a_flow_matching_model_folder(tmp_path, capsys) -> None:
    """break-test D: a FlowMatchEulerDiscreteScheduler folder was loaded as a DDPMScheduler (default betas, epsilon)
    and probed without a word."""
    pytest.importorskip("diffusers")
    from symsched.cli import main

    (tmp_path / "unet").mkdir()
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "unet" / "config.json").write_text("{}")
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0, "num_train_timesteps": 1000}))
    code = main(["probe", "--model", str(tmp_path), "--reference", str(tmp_path / "r.npy"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "FlowMatchEulerDiscreteScheduler is a flow-matching model" in err and "Traceback" not in err
    # break-test G: sigma-only schedulers are refused for what they are; a minimal DDPM config (default betas) is not
    for cfg, needle in (({"_class_name": "EDMEulerScheduler"}, "EDMEulerScheduler has no DDPM training grid"),
                        ({"_class_name": "DPMSolverMultistepScheduler", "beta_schedule": "linear",
                          "use_flow_sigmas": True}, "is a flow-matching model"),
                        ({"_class_name": "DDPMScheduler", "num_train_timesteps": 1000}, "no safetensors weights")):
        (tmp_path / "scheduler" / "scheduler_config.json").write_text(json.dumps(cfg))
        assert main(["probe", "--model", str(tmp_path), "--reference", str(tmp_path / "r.npy"), "--no-progress"]) == 2
        assert needle in capsys.readouterr().err, cfg


def test_probe_schedules_takes_k_diffusion_samplers_and_their_options() -> None:
    """audit (issue 10 item 5): the learned probe takes any sampler it can drive, k-diffusion's included, with their
    settings in the samples and in the predictions (KL(S || P) of euler_ancestral at eta = 0.5, computed here)."""
    _kd()
    import symsched

    den = probe.wiener_denoiser(S8, prediction="sample")
    ref = probe.sample(den, AB5, n_samples=40, seed=9, progress=False)
    res = probe.probe_schedules(den, {"a": AB5}, ref, n_samples=20, seeds=(0,), sampler="euler_ancestral",
                                options={"eta": 0.5}, spectrum=S8, metrics=["spectral_kl"], progress=False)
    want = symsched.kl_divergence(S8, symsched.output_spectrum_ve(S8, schedules.alpha_bar_to_sigmas(AB5),
                                                                 sampler="euler_ancestral", eta=0.5))
    assert res.comparison.comparisons["a"].predicted["spectral_kl"] == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="options"):
        probe.probe_schedules(den, {"a": AB5}, ref, n_samples=20, seeds=(0,), options={"eta": 0.5})
    with pytest.raises(ValueError, match="eta"):
        probe.probe_schedules(den, {"a": AB5}, ref, n_samples=20, seeds=(0,), sampler="ddpm", eta=0.5)


def test_probe_cli_runs_a_k_diffusion_sampler(tmp_path, capsys) -> None:
    _kd()
    from symsched.cli import main

    code = main(["probe", "--sampler", "euler_ancestral", "--eta", "0.5", "--samples", "30", "--seeds", "1",
                 "--schedules", "linear-trailing,karras", "--out", str(tmp_path), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "probe.json").read_text())
    assert doc["sampler"] == "euler_ancestral" and doc["options"] == {"eta": 0.5}
    assert "euler_ancestral (eta=0.5)" in (tmp_path / "probe.md").read_text()
    assert main(["probe", "--sampler", "ddim", "--option", "s_noise=1", "--out", str(tmp_path)]) == 2
    assert "--option: only the k-diffusion samplers" in capsys.readouterr().err


@pytest.mark.parametrize("sampler", ["ddpm", "euler"])
def test_seeds_reproduce_and_generators_advance(sampler) -> None:
    """break-test G: the noise streams spawned children of the caller's SeedSequence, so the same SeedSequence gave
    different samples twice and a restored generator state did not reproduce a run; they are seeded from the
    generator's state, untouched."""
    den = probe.wiener_denoiser(S8, prediction="sample")
    ss = np.random.SeedSequence(3)
    run = lambda seed: probe.sample(den, AB5, n_samples=4, seed=seed, sampler=sampler, progress=False)  # noqa: E731
    np.testing.assert_array_equal(run(ss), run(ss))
    assert ss.n_children_spawned == 0
    g = np.random.default_rng(0)
    state = g.bit_generator.state
    first = run(g)
    g2 = np.random.default_rng(1)
    g2.bit_generator.state = state
    np.testing.assert_array_equal(run(g2), first)
    again = run(g)  # the same Generator, advanced by the first run: new noise
    assert np.max(np.abs(again - first)) > 0.1
    np.testing.assert_array_equal(mc.sample(S8, AB5, sampler="ddpm", n_samples=3, seed=ss, progress=False),
                                  mc.sample(S8, AB5, sampler="ddpm", n_samples=3, seed=ss, progress=False))


def test_k_diffusion_options_the_function_does_not_take_are_refused_up_front(tmp_path, capsys) -> None:
    """break-test G: eta = 0 passes symsched's check for dpmpp_2m but k-diffusion's function takes no eta: refused
    before the schedules are optimised, naming --eta on the command line; options cannot override the arguments."""
    _kd()
    from symsched.cli import main

    den = probe.wiener_denoiser(S8, prediction="sample")
    with pytest.raises(ValueError, match=r"sample_dpmpp_2m takes no 'eta'"):
        probe.sample(den, AB5, n_samples=2, seed=0, sampler="dpmpp_2m", options={"eta": 0.0}, progress=False)
    with pytest.raises(ValueError, match="options"):
        probe.default_schedules(S8, 3, names=["karras"], sampler="ddim", options={"sampler": "ddpm"})
    with pytest.raises(ValueError, match="options"):
        probe.default_schedules(S8, 3, names=["karras"], sampler="euler_ancestral", options={"sampler": "ddpm"})
    for argv, needle in ((["--sampler", "dpmpp_2m", "--eta", "0"], "--eta: k-diffusion's sample_dpmpp_2m takes no 'eta'"),
                         (["--sampler", "lms", "--eta", "0.5"], "--eta: sampler 'lms' has no setting 'eta'"),
                         (["--sampler", "lms", "--option", "foo=2"], "--option: sampler 'lms' has no setting 'foo'")):
        assert main(["probe", *argv, "--out", str(tmp_path / "p")]) == 2
        assert needle in capsys.readouterr().err
    assert main(["probe", "--sampler", "euler_ancestral", "--eta", "0.5", "--samples", "20", "--seeds", "1",
                 "--schedules", "karras", "--out", str(tmp_path / "q"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "q" / "probe.json").read_text())["eta"] == 0.5


def test_a_failed_family_reports_no_levels_and_free_ends_stay_representable() -> None:
    """break-test G: free end points wandered past log-SNR 36.7 and the fit raised; a family with no valid schedule
    kept the penalty's levels (target + 1000) in log_snr."""
    from unittest import mock

    from symsched.insight import fit_heuristics
    from symsched.insight import fits as fits_mod

    ab = 1 / (1 + np.exp(-np.array([-40.0, 30.0, 36.0])))
    fit = fit_heuristics(ab, endpoints="free")
    for f in fit.fits:  # every fitted level is a float64 alpha_bar below 1 (the fit used to raise instead)
        assert math.isfinite(f.rms) and np.all(schedules.log_snr_to_alpha_bar(f.log_snr) < 1.0), f.family
    real = fits_mod._family_levels
    with mock.patch.object(fits_mod, "_family_levels",
                           lambda fam, *a: None if fam.name == "karras" else real(fam, *a)):
        fit = fit_heuristics(schedules.standard_schedule("linear-trailing", 6), S8)
    k = fit["karras"]
    assert math.isnan(k.rms) and np.all(np.isnan(k.log_snr)) and fit.fits[-1].family == "karras"
    assert "| karras |  | – | – | – | – | – |" in fit.to_markdown()
    assert len(fit.plot(n_families=8).axes[0].lines) == 8  # the optimum and the 7 fitted families, not karras
