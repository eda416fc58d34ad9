"""The learned probe with every k-diffusion sampler: :func:`symsched.probe.sample` drives k-diffusion's own
``sample_<name>`` with the denoiser. Control: with the exact Wiener denoiser its output spectrum is the
closed form ``predicted_spectrum`` (= ``output_spectrum_ve``, white start sigma_max * randn).

Monte Carlo: the averaged periodogram of n fields on a 16 x 16 grid obeys the exact chi^2 law per
frequency bin (``mc_helpers``); each check accepts a correct closed form except with probability
<= ALPHA = 1e-4 / len(CASES) (family-wise 1e-4 over this file, Bonferroni over the bins), and the power
companion rejects a wrong variant on the same samples with max |z| >= 2 z_crit. Seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsched
from symsched import montecarlo as mc
from symsched import probe, schedules

from kdiffusion_helpers import load_sampling
from mc_helpers import assert_psd_matches, assert_psd_rejects, make_spectrum

pytestmark = [pytest.mark.kdiffusion, pytest.mark.filterwarnings("ignore::UserWarning")]

SHAPE = (16, 16)
N = 2000
S16 = make_spectrum(SHAPE, "power", exponent=2.0, scale=5.0)
AB8 = schedules.standard_schedule("linear-trailing", 8)

#: (sampler, k-diffusion options, the wrong variant: (sampler, options))
CASES = [
    ("dpmpp_2m", {}, ("euler", {})),
    ("euler_ancestral", {"eta": 1.0}, ("euler", {})),  # the ancestral noise forgotten
    ("dpmpp_sde", {"eta": 1.0}, ("euler", {})),
    # symsched's noise_sampler="independent" is k-diffusion's default_noise_sampler(x); wrong: the Brownian tree
    ("dpmpp_sde", {"eta": 1.0, "noise_sampler": "independent"}, ("dpmpp_sde", {"eta": 1.0})),
    ("lms", {"order": 3}, ("lms", {"order": 1})),
    # break-test 44: euler / heun with churn run k-diffusion's sample_euler / sample_heun; wrong: churn forgotten
    ("euler", {"s_churn": 4.0}, ("euler", {})),
    ("heun", {"s_churn": 4.0, "s_noise": 1.003}, ("heun", {})),
]
ALPHA = 1e-4 / len(CASES)


@pytest.fixture(scope="module", autouse=True)
def _k_diffusion() -> None:
    load_sampling()  # skips the file without torch / torchsde / k-diffusion


@pytest.mark.parametrize("sampler,options,wrong", CASES, ids=[c[0] + "-" + "-".join(map(str, c[1].values())) for c in CASES])
def test_control_library_sampler_reproduces_output_spectrum(sampler, options, wrong):
    den = probe.wiener_denoiser(S16, prediction="epsilon")
    x = probe.sample(den, AB8, n_samples=N, sampler=sampler, seed=5 + CASES.index((sampler, options, wrong)),
                     progress=False, options=options)
    assert x.shape == (N, *SHAPE) and np.all(np.isfinite(x))
    P = probe.predicted_spectrum(S16, AB8, sampler=sampler, options=options)
    psd = mc.empirical_psd(x)
    assert_psd_matches(psd, P, N, alpha=ALPHA, what=f"{sampler} {options}")
    P_wrong = probe.predicted_spectrum(S16, AB8, sampler=wrong[0], options=wrong[1] or None)
    assert_psd_rejects(psd, P_wrong, N, alpha=ALPHA, what=f"{sampler}: wrong variant {wrong}")


def test_same_seed_same_samples_and_torch_rng_untouched():
    import torch

    den = probe.wiener_denoiser(S16, prediction="v")
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = probe.sample(den, AB8[:4], n_samples=3, sampler="dpmpp_2m_sde", seed=9, progress=False)
    b = probe.sample(den, AB8[:4], n_samples=3, sampler="dpmpp_2m_sde", seed=9, progress=False)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(before, torch.random.get_rng_state())


def test_finite_outputs_that_overflow_in_k_diffusions_update_are_refused():
    """break-test F3: a denoiser's finite x0 of 1.7e308 overflows in sample_dpmpp_2m's update; the samples were
    returned as inf/NaN."""
    with pytest.raises(ValueError, match="k-diffusion's sample_dpmpp_2m produced non-finite samples"):
        probe.sample(lambda x, a: np.full(x.shape, 1.7e308), AB8[:5], shape=(4,), n_samples=3, seed=0,
                     prediction="sample", sampler="dpmpp_2m", progress=False)


def test_samplers_the_probe_cannot_drive_raise_a_clear_error():
    den = probe.wiener_denoiser(S16)
    for name in ("unipc_multistep", "deis_multistep", "dpmsolver_multistep"):
        with pytest.raises(ValueError, match=name):
            probe.sample(den, AB8, n_samples=2, sampler=name, progress=False)
    with pytest.raises(ValueError, match="options"):
        probe.sample(den, AB8, n_samples=2, sampler="ddim", progress=False, options={"eta": 1.0})
    with pytest.raises(ValueError, match="options: sampler 'dpmpp_2m' has no setting 'bogus'"):
        probe.sample(den, AB8, n_samples=2, sampler="dpmpp_2m", progress=False, options={"bogus": 1.0})


def test_loading_k_diffusion_sampling_keeps_its_package_findable() -> None:
    """The bare stand-in package (no __init__, no torchvision) once had no __spec__: importlib.util.find_spec
    ("k_diffusion") then raised ValueError for the rest of the process."""
    import importlib.util

    from kdiffusion_helpers import load_sampling

    load_sampling()
    spec = importlib.util.find_spec("k_diffusion")
    assert spec is not None and spec.submodule_search_locations


def test_a_whole_float_integer_option_runs_as_the_integer() -> None:
    """break-test 52: the README says order=3.0 is kept as the integer 3 (the exports do so), but probe.sample passed
    the float to k-diffusion's sample_lms, which raised TypeError ('float' object cannot be interpreted as an integer)
    and the CLI printed 'internal error'. The options reach k-diffusion as the engine reads them: the run with 3.0 is
    the run with 3, sample for sample (same seed)."""
    load_sampling()  # skips without k-diffusion
    S = np.ones(4)
    ab = np.array([0.05, 0.3, 0.7, 0.95])
    den = probe.wiener_denoiser(S, prediction="epsilon")
    as_float = probe.sample(den, ab, shape=(4,), n_samples=8, sampler="lms", options={"order": 3.0}, seed=0)
    as_int = probe.sample(den, ab, shape=(4,), n_samples=8, sampler="lms", options={"order": 3}, seed=0)
    np.testing.assert_array_equal(as_float, as_int)
    with pytest.raises(ValueError, match="order"):
        probe.sample(den, ab, shape=(4,), n_samples=8, sampler="lms", options={"order": 2.5}, seed=0)


def test_a_first_level_beyond_the_brownian_tree_is_refused_up_front(monkeypatch) -> None:
    """break-test F7b: sample(wiener_denoiser(S, "sample"), [1e-310, 0.5], sampler="dpmpp_sde") raised "x must be
    finite (found NaN or inf)", naming the Wiener filter's input. The NaN is k-diffusion's Brownian-tree noise:
    torchsde's bridge multiplies the halves of [sigma_min, sigma_max], beyond float64 for sigma_max > 2^513
    (alpha_bar < ~1.4e-309), while output_spectrum predicts the schedule. Refused up front, naming the level and the
    sampler; what never queries the tree inside the interval still runs."""
    from symsched import _library_samplers

    load_sampling()  # skips without k-diffusion
    S = make_spectrum((8, 8), "power", exponent=2.0, scale=4.0)
    W = probe.wiener_denoiser(S, prediction="sample")
    calls = []

    def den(x, a):
        calls.append(a)
        return W(x, a)

    kw = dict(prediction="sample", shape=(8, 8), n_samples=4, seed=0, progress=False)
    for sampler, ab, opts in (("dpmpp_sde", [1e-310, 0.5], None), ("dpmpp_sde", [1.3e-309, 0.5], {"eta": 0.0}),
                              ("dpmpp_2m_sde", [1e-310, 0.5, 0.9], None), ("dpmpp_3m_sde", [1e-310, 0.5, 0.9], None)):
        with pytest.raises(ValueError, match=rf"^alpha_bar\[0\] = {ab[0]:.3g} \(sigma = .*\): sampler '{sampler}' runs "
                                             rf"k-diffusion's sample_{sampler}, whose Brownian-tree noise"):
            probe.sample(den, ab, sampler=sampler, options=opts, **kw)
    # the advice is the spelling that works: options={'eta': 0} (the probe's own eta= is DDIM's), as followed below
    with pytest.raises(ValueError, match=r"or pass options=\{'eta': 0\} \(CLI: --option eta=0\)$"):
        probe.sample(den, [1e-310, 0.5, 0.9], sampler="dpmpp_2m_sde", **kw)
    with pytest.raises(ValueError, match=r"or pass options=\{'noise_sampler': 'independent'\} \(CLI: --option "
                                         r"noise_sampler=independent\)$"):
        probe.sample(den, [1e-310, 0.5], sampler="dpmpp_sde", **kw)
    ref = mc.gaussian_field(S, 20, seed=3)
    with pytest.raises(ValueError, match=r"^schedules\['tiny'\]\[0\] = 1e-310 "):
        probe.probe_schedules(den, {"fine": [0.1, 0.5], "tiny": [1e-310, 0.5]}, ref, sampler="dpmpp_sde",
                              prediction="sample", n_samples=4, seeds=(0,), progress=False)
    assert not calls  # nothing sampled
    # the closed form exists (output_spectrum_ve), but the probe's prediction is of a run sample() refuses: refused
    # alike (audit of 4 December), with the independent-noise spelling that runs
    sig = schedules.alpha_bar_to_sigmas([1e-310, 0.5])
    assert np.all(np.isfinite(symsched.output_spectrum_ve(S, sig, sampler="dpmpp_sde")))
    with pytest.raises(ValueError, match=r"^alpha_bar\[0\] = 1e-310 "):
        probe.predicted_spectrum(S, [1e-310, 0.5], sampler="dpmpp_sde")
    assert np.all(np.isfinite(probe.predicted_spectrum(S, [1e-310, 0.5], sampler="dpmpp_sde",
                                                       options={"noise_sampler": "independent"})))
    for sampler, ab, opts in (("dpmpp_sde", [1.45e-309, 0.5], None),  # just inside the bound
                              ("dpmpp_sde", [1e-310, 0.5], {"noise_sampler": "independent"}),
                              ("dpmpp_2m_sde", [1e-310, 0.5], None),  # one query, the whole interval
                              ("dpmpp_2m_sde", [1e-310, 0.5, 0.9], {"eta": 0})):  # no noise
        assert np.all(np.isfinite(probe.sample(W, ab, sampler=sampler, options=opts, **kw))), (sampler, ab, opts)
    # a non-finite state of k-diffusion's reaching the denoiser is named as k-diffusion's, not as the denoiser's x
    monkeypatch.setattr(_library_samplers, "check_brownian_tree", lambda *a: None)
    with pytest.raises(ValueError, match=r"^k-diffusion's sample_dpmpp_sde produced non-finite samples \(NaN or inf\) "
                                         r"before its denoiser call at sigma = .*\(alpha_bar\)$"):
        probe.sample(W, [1e-310, 0.5], sampler="dpmpp_sde", **kw)
