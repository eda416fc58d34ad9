"""Edges found by a third review: latent-channel figures, UNets of any size, module dtypes, settings that
default_schedules dropped, faint spectra (x0_hat and the predicted KL underflowed), LaTeX labels, save()."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import symsched
from symsched import montecarlo as mc
from symsched import probe, schedules, spectra
from symsched._tex import tex_text
from symsched._validate import ArgumentTypeError


def _result(C: int, channel_axis=None, n: int = 60):
    """probe_schedules of a linear 'model' on (C, 8, 8) samples (no torch)."""
    pytest.importorskip("ot", reason='the probe\'s sliced W2 needs POT: pip install -e ".[torch]"')
    x = np.random.default_rng(0).standard_normal((200, C, 8, 8))
    den = probe.Denoiser(lambda x, a: 0.5 * x, "sample", (C, 8, 8))
    return probe.probe_schedules(den, {"a": [0.1, 0.5]}, x, n_samples=n, seeds=(0, 1), channel_axis=channel_axis,
                                 progress=False, n_examples=3)


@pytest.mark.parametrize("C, channel_axis", [(4, None), (4, 0), (2, 0)])
def test_plot_probe_draws_latent_channel_counts(C, channel_axis) -> None:
    """A 4-channel (latent) model's probe crashed in the figure after all the sampling (an (8, 8, 4) image into an
    RGB mosaic); its first channel is drawn, grey."""
    res = _result(C, channel_axis)
    mosaic = probe.plot_probe(res).axes[0].images[0].get_array()
    assert mosaic.shape == (2 * 9 - 1, 3 * 9 - 1)  # grey: a row for the schedule and the reference, 3 examples
    np.testing.assert_allclose(mosaic[:8, :8], np.clip(0.5 * (res.examples["a"][0][0] + 1), 0, 1))


def test_plot_probe_reads_the_probes_own_colour_axis() -> None:
    """Audit of 6 December: channels-last samples probed with channel_axis=-1 were drawn as (8, 3) grey strips,
    since plot_probe ignored result.channel_axis; each is an (8, 8) RGB image."""
    pytest.importorskip("ot", reason='the probe\'s sliced W2 needs POT: pip install -e ".[torch]"')
    x = np.random.default_rng(0).standard_normal((200, 8, 8, 3))
    den = probe.Denoiser(lambda x, a: 0.5 * x, "sample", (8, 8, 3))
    res = probe.probe_schedules(den, {"a": [0.1, 0.5]}, x, n_samples=60, seeds=(0, 1), channel_axis=-1,
                                progress=False, n_examples=3)
    mosaic = probe.plot_probe(res).axes[0].images[0].get_array()
    assert mosaic.shape == (2 * 9 - 1, 3 * 9 - 1, 3)
    np.testing.assert_allclose(mosaic[:8, :8], np.clip(0.5 * (res.examples["a"][0] + 1), 0, 1))


def test_probe_schedules_refuses_a_shape_unlike_the_reference_before_sampling() -> None:
    """Audit of 6 December: shape=(4, 4) against (5, 5) reference samples was refused after the first schedule had
    been sampled, naming the run ("a, seed 0 must have sample shape ...")."""
    calls = []

    def den(x, a):
        calls.append(a)
        return 0.5 * x

    ref = np.random.default_rng(0).standard_normal((20, 5, 5))
    with pytest.raises(ValueError, match=r"^shape must be the reference's sample shape \(5, 5\)"):
        probe.probe_schedules(den, {"a": [0.1, 0.5]}, ref, n_samples=5, seeds=(0,), shape=(4, 4),
                              prediction="sample", progress=False)
    assert calls == []


def test_plot_probe_radial_psd_follows_how_the_spectra_were_measured() -> None:
    """(3, 8, 8) samples without channel_axis have an FFT PSD over all three axes: the curve is that of its zero
    channel frequency (plot_probe averaged a (3, 8) slice of channel x row frequency as if it were an image)."""
    for channel_axis in (None, 0):
        res = _result(3, channel_axis)
        comp = res.comparison.comparisons["a"]
        spec = comp.reference_psd[..., 0] if channel_axis is not None else comp.reference_psd[0]
        f, r = spectra.radial_psd(spec)
        line = probe.plot_probe(res).axes[1].lines[0]
        np.testing.assert_allclose(line.get_xdata(), f[1:])
        np.testing.assert_allclose(line.get_ydata(), r[1:])


def test_plot_probe_result_type() -> None:
    with pytest.raises(ArgumentTypeError, match="result must be a ProbeResult"):
        probe.plot_probe(None)


@pytest.mark.diffusers
def test_diffusers_denoiser_of_a_unet_of_any_size() -> None:
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    kw = dict(in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
              down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2)
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(**kw)  # sample_size=None, diffusers' default: TypeError before
    den = probe.diffusers_denoiser(unet, diffusers.DDPMScheduler())
    assert den.shape is None
    x = probe.sample(den, [0.1, 0.5], shape=(1, 8, 8), n_samples=2, seed=0)
    assert x.shape == (2, 1, 8, 8) and np.all(np.isfinite(x))
    for bad in (2.5, (8,), (8, 0), "8", True):
        unet.register_to_config(sample_size=bad)
        with pytest.raises(ValueError, match="unet.config: sample_size"):
            probe.diffusers_denoiser(unet, diffusers.DDPMScheduler())


@pytest.mark.diffusers
def test_diffusers_denoiser_refuses_unets_it_cannot_run_alone() -> None:
    """Audit of 6 December: a UNet2DConditionModel, a class-conditional and a learned-variance UNet2DModel were
    accepted, then failed at the first call inside torch (or as "an output of the wrong shape"); and a UNet of any
    size given a shape with the wrong channels or an odd size failed in torch, naming neither shape nor unet."""
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    kw = dict(in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
              down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2)
    sched = diffusers.DDPMScheduler()
    with pytest.raises(ValueError, match=r"^unet.config.out_channels = 2 differs from in_channels = 1"):
        probe.diffusers_denoiser(diffusers.UNet2DModel(**{**kw, "out_channels": 2}), sched)
    with pytest.raises(ValueError, match=r"^unet.config: a class-conditional UNet"):
        probe.diffusers_denoiser(diffusers.UNet2DModel(**{**kw, "num_class_embeds": 3}), sched)
    cond = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
        norm_num_groups=4, cross_attention_dim=8, attention_head_dim=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    with pytest.raises(TypeError, match=r"^unet must run as unet\(x_t, t\).*requires encoder_hidden_states"):
        probe.diffusers_denoiser(cond, sched)
    den = probe.diffusers_denoiser(diffusers.UNet2DModel(**kw), sched)  # sample_size=None: any size
    assert probe.sample(den, [0.1, 0.5], shape=(1, 8, 8), n_samples=2, seed=0).shape == (2, 1, 8, 8)
    for bad in ((3, 8, 8), (1, 7, 7), (8, 8)):
        with pytest.raises(ValueError, match=r"^shape must be \(C, H, W\) = \(1, H, W\) with H and W multiples of 2"):
            probe.sample(den, [0.1, 0.5], shape=bad, n_samples=2, seed=0)


@pytest.mark.diffusers
def test_cli_probe_refuses_a_unet_of_any_size_in_one_line(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet
    from symsched.cli import main

    unet = tiny_unet()
    unet.register_to_config(sample_size=None)
    folder = tmp_path / "model"
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    diffusers.DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
    np.save(tmp_path / "ref.npy", np.random.default_rng(0).uniform(-1, 1, (50, 8, 8)))
    rc = main(["probe", "--model", str(folder), "--reference", str(tmp_path / "ref.npy"), "--out", str(tmp_path / "o"),
               "--steps", "3", "--samples", "20", "--seeds", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "sample_size null" in err and len(err.strip().splitlines()) == 1


def test_torch_denoiser_dtype_must_match_the_module() -> None:
    """A dtype none of the module's parameters has failed at the first call with torch's own RuntimeError."""
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)  # float32 parameters

        def forward(self, x, t):
            return self.lin(x)

    g = schedules.training_grid("linear")
    net = Net()
    with pytest.raises(ValueError, match=r"dtype=torch.float64 differs from the module's parameters"):
        probe.torch_denoiser(net, g, dtype=torch.float64)
    for module, dtype in ((net, torch.float32), (net, None), (Net().double(), torch.float64)):
        den = probe.torch_denoiser(module, g, dtype=dtype, prediction="sample")
        assert probe.sample(den, [0.1, 0.5], shape=(4,), n_samples=2, seed=0).shape == (2, 4)


@pytest.mark.parametrize("kw, name", [(dict(sampler="bogus"), "sampler"), (dict(eta=2.0), "eta"),
                                      (dict(sampler="ddpm", eta=0.5), "eta"), (dict(variance="x"), "variance"),
                                      (dict(endpoints="free"), "^endpoints must be None or a pair"),
                                      (dict(endpoints=(0.5, 0.1)), "^endpoints must satisfy first < last"),
                                      (dict(spectrum=[-1.0, 1.0]), "^spectrum must be non-negative")])
def test_default_schedules_checks_the_sampler_settings(kw, name) -> None:
    """Every argument is checked on entry, whatever the names (review of 4 December: endpoints and the spectrum were
    checked only when a name asked for an optimised schedule)."""
    S = kw.pop("spectrum", spectra.power_law((8, 8), alpha=2.0))
    with pytest.raises(ValueError, match=name):
        probe.default_schedules(S, 3, names=["karras"], **kw)


def test_intermediate_spectra_of_faint_modes() -> None:
    """x0_hat ~ S^2 underflows below S ~ 1e-162: the generation step of such a mode read 1 (its final x0_hat 0); its
    share of the final variance per step is that of any mode far below the noise (the S -> 0 limit, reached at
    S = 1e-100 where nothing underflows)."""
    ab = schedules.standard_schedule("linear-trailing", 5)
    ref = symsched.intermediate_spectra(np.array([1e-100, 1.0]), ab)
    limit = ref.x0_hat[:, 0] / ref.x0_hat[-1, 0]  # the plain ratio, no underflow at 1e-100
    for c in (1e-170, 1e-250, 1e-300):
        r = symsched.intermediate_spectra(np.array([c, 1.0]), ab)
        np.testing.assert_allclose(r.generated_fraction()[:, 0], limit, rtol=1e-12)
        assert r.generation_step()[0] == 5 == ref.generation_step()[0]
        np.testing.assert_allclose(r.accuracy()[:, 0] / c, ref.accuracy()[:, 0] / 1e-100, rtol=1e-12)
    S = spectra.power_law((16, 16), alpha=2.0)
    _, gen = symsched.intermediate_spectra(S, ab).radial("generated")
    _, faint = symsched.intermediate_spectra(S * 2.0**-700, ab).radial("generated")
    assert np.all(np.isfinite(faint)) and faint[0, -1] < 1e-3 < gen[-2, 3]  # not "all generated at step 1"


def test_predicted_kl_of_a_faint_spectrum_is_finite_and_exact() -> None:
    """P ~ S^2 underflows for S ~ 1e-200: the predicted KL came back inf; mpmath at 50 digits gives ~1.4e200."""
    pytest.importorskip("ot", reason='the probe\'s sliced W2 needs POT: pip install -e ".[torch]"')
    S = spectra.power_law((4, 4), alpha=2.0) * 1e-200
    ab = [0.1, 0.5]
    ref, x = mc.gaussian_field(S / 1e-200, 100, seed=1), mc.gaussian_field(S / 1e-200, 50, seed=2)
    got = probe.compare(x, ref, spectrum=S, alpha_bar=ab).predicted["spectral_kl"]
    P = symsched.output_spectrum_mp(S.ravel(), ab, dps=50)
    with mpmath.workdps(50):
        kl = sum((mpmath.mpf(s) / p - 1 - mpmath.log(mpmath.mpf(s) / p)) / 2 for s, p in zip(S.ravel(), P))
    assert got == pytest.approx(float(kl), rel=1e-12)


def test_tex_text_escapes_every_special_character() -> None:
    assert tex_text("a_b & c%d $e #f {g} ~h ^i \\j") == (r"a\_b \& c\%d \$e \#f \{g\} \textasciitilde{}h "
                                                          r"\textasciicircum{}i \textbackslash{}j")
    assert tex_text("Δℓ −1 ×2 K² |x| a–b †‡") == r"$\Delta\ell$ $-$1 $\times$2 K$^2$ $|$x$|$ a--b $^\dagger$$^\ddagger$"
    assert tex_text("KL(data ‖ generated)") == r"KL(data $\|$ generated)"


def test_sweep_latex_keeps_its_columns_with_user_labels() -> None:
    S = spectra.power_law((8, 8), alpha=2.0)
    tex = symsched.sweep([S, 2 * S], 1, values=["a_b", "c&d"], n_jobs=1, restarts=0).to_latex()
    rows = [ln for ln in tex.splitlines() if ln.endswith(r"\\")]
    assert len({ln.replace(r"\&", "").count("&") for ln in rows}) == 1  # every row as many columns as the header
    assert r"c\&d" in tex and r"a\_b" in tex


def test_train_save_checks_its_arguments(tmp_path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from symsched.models import train as tr

    with pytest.raises(ArgumentTypeError, match="result must be a TrainResult"):
        tr.save(None, tmp_path / "x.safetensors")
    res = tr.train(tr.TrainConfig(steps=1, batch_size=2), progress=False)
    with pytest.raises(ArgumentTypeError, match="weights must be a file path"):
        tr.save(res, None)
    with pytest.raises(ValueError, match=r"weights must name a \.safetensors file"):
        tr.save(res, tmp_path / "w.npz")
    assert not (tmp_path / "w.npz").exists()


def test_default_schedules_keeps_accepting_a_grid_only_the_optimiser_refuses() -> None:
    """review of 4 December: the entry check ran the optimiser's grid rules for every name, so a grid whose noisiest
    level is 2**-24 (fine for ddpm's standard schedules) was refused even with no optimised name."""
    g = schedules.training_grid("linear").copy()
    g[-1] = 2.0**-24
    S = spectra.power_law((8, 8), alpha=2.0)
    out = probe.default_schedules(S, 5, names=["karras", "grid-trailing"], sampler="ddpm", grid=g)
    assert set(out) == {"karras", "grid-trailing"}
    assert all(np.all(np.isfinite(v)) and v.shape == (5,) for v in out.values())
    with pytest.raises(ValueError, match="grid"):
        probe.default_schedules(S, 5, names=["optimised-w2"], sampler="ddpm", grid=g)


# ---- audit of 4 December -------------------------------------------------------------------


def _counting(S, prediction):
    calls = [0]
    w = probe.wiener_denoiser(S, prediction=prediction)

    def fn(x, a):
        calls[0] += 1
        return w(x, a)

    return probe.Denoiser(fn, prediction, S.shape), calls


@pytest.mark.parametrize("sampler,schedules,bad,message", [
    ("ddim", {"ok": [0.1, 0.5], "tiny": [1e-40, 0.5]}, "tiny", "cannot give x0_hat at alpha_bar_t=1e-40"),
    ("dpmpp_2m_sde", {"ok": [0.01, 0.1], "short": [0.01]}, "short", "fails with 1 step"),
])
def test_probe_schedules_refuses_every_schedule_before_sampling_any(sampler, schedules, bad, message) -> None:
    """README: "every schedule of probe_schedules is checked before any is sampled"; an epsilon model's first level
    below 1e-32 and a K that k-diffusion's SDE sampler cannot run were refused only when their turn came, after the
    schedules before them had been sampled, and without naming the schedule."""
    S = spectra.power_law((4, 4), alpha=2.0)
    den, calls = _counting(S, "epsilon")
    ref = mc.gaussian_field(S, 50, seed=1)
    with pytest.raises(ValueError, match=rf"^schedules\['{bad}'\].*{message}"):
        probe.probe_schedules(den, schedules, ref, n_samples=20, seeds=(0, 1), sampler=sampler, progress=False,
                              metrics=("fd",))
    assert calls[0] == 0


@pytest.mark.parametrize("sampler,levels", [("euler", [0.0, 0.5]), ("dpmpp_2m", [0.0, 0.5]),
                                            ("dpmpp_2m_sde", [0.1])])
def test_predicted_spectrum_refuses_what_sample_refuses(sampler, levels) -> None:
    """predicted_spectrum returned spectra for levels sample() refuses (sigma = inf at alpha_bar = 0 for a VE
    sampler), so compare() reported predicted metrics of a run that cannot exist."""
    S = spectra.power_law((4, 4), alpha=2.0)
    with pytest.raises(ValueError, match="^alpha_bar"):
        probe.predicted_spectrum(S, levels, sampler=sampler)
    den = probe.wiener_denoiser(S, prediction="sample")
    with pytest.raises(ValueError, match="^alpha_bar"):
        probe.sample(den, levels, shape=S.shape, n_samples=2, seed=0, sampler=sampler)


def test_compare_predicts_with_the_samplers_own_options() -> None:
    """compare() had no options=: samples drawn with euler_ancestral eta=0 were scored against the eta=1 prediction
    (spectral KL 13.8 for a measured 5.0), and its error for eta= pointed to an options= it did not have."""
    from kdiffusion_helpers import load_sampling

    load_sampling()
    S = spectra.power_law((8, 8), alpha=2.0)
    ab = schedules.standard_schedule("linear-trailing", 6)
    x = probe.sample(probe.wiener_denoiser(S, prediction="sample"), ab, n_samples=400, seed=0,
                     sampler="euler_ancestral", options={"eta": 0.0})
    ref = mc.gaussian_field(S, 400, seed=1)
    sig = np.sqrt((1 - ab) / ab)
    kl = {}
    for eta in (0.0, 1.0):  # KL(data || generated) of the closed form, written out here
        P = symsched.output_spectrum_ve(S, sig, sampler="euler_ancestral", eta=eta)
        kl[eta] = float(np.sum(S / P - 1 - np.log(S / P)) / 2)
    assert kl[1.0] > 2 * kl[0.0]
    got = probe.compare(x, ref, alpha_bar=ab, spectrum=S, sampler="euler_ancestral", options={"eta": 0.0},
                        metrics=("spectral_kl",)).predicted
    assert got["spectral_kl"] == pytest.approx(kl[0.0], rel=1e-10)
    paired = probe.compare_paired({"a": [x]}, ref, alpha_bar={"a": ab}, spectrum=S, sampler="euler_ancestral",
                                  options={"eta": 0.0}, metrics=("spectral_kl",))
    assert paired.comparisons["a"].predicted["spectral_kl"] == pytest.approx(kl[0.0], rel=1e-10)


@pytest.mark.parametrize("offset", [1e7, 1e8, -3e9])
def test_mmd2_does_not_depend_on_where_the_data_lie(offset) -> None:
    """|x|^2 + |y|^2 - 2 x.y cancelled by the data's offset: MMD² was 3 % off at 1e7 and of the wrong sign at 1e8.
    The unbiased MMD² is written out here with pairwise differences, which do not cancel."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(120, 6)), 1.2 * rng.normal(size=(100, 6))
    h = 2.0

    def k(a, b):
        return np.exp(-cdist(a, b, "sqeuclidean") / (2 * h * h))

    kxx, kyy = k(X, X), k(Y, Y)
    want = ((kxx.sum() - np.trace(kxx)) / (120 * 119) + (kyy.sum() - np.trace(kyy)) / (100 * 99)
            - 2 * k(X, Y).mean())
    assert probe.mmd2(X, Y, bandwidths=h) == pytest.approx(want, rel=1e-9)
    assert probe.mmd2(X + offset, Y + offset, bandwidths=h) == pytest.approx(want, rel=1e-6)


def _cmp_data():
    rng = np.random.default_rng(0)
    S = spectra.power_law(4)
    ref = rng.standard_normal((60, 4)) * np.sqrt(S)
    return rng.standard_normal((60, 4)) * np.sqrt(S), ref, S


@pytest.mark.parametrize("kw, name", [(dict(metrics=["fd"], bandwidths=-1.0), "bandwidths"),
                                      (dict(metrics=["fd"], bandwidths=[1.0, np.nan]), "bandwidths"),
                                      (dict(metrics=["fd"], scales=(0.0,)), "scales"),
                                      (dict(metrics=["mmd2"], fd_components=9), "fd_components"),
                                      (dict(metrics=["mmd2"], n_projections=0), "n_projections"),
                                      (dict(metrics=["mmd2"], seed=-1), "seed")])
def test_compare_checks_every_metric_option_whatever_metrics_run(kw, name) -> None:
    """Audit 3b C3: compare(metrics=['fd'], bandwidths=-1.0) succeeded while n_projections=0 with metrics=['mmd2']
    was refused: every option given is now checked on every call, whichever metrics are requested."""
    x, ref, _ = _cmp_data()
    with pytest.raises(ValueError, match=rf"^{name}"):
        probe.compare(x, ref, **kw)
    with pytest.raises(ValueError, match=rf"^{name}"):
        probe.compare_paired({"a": x, "b": x}, ref, **kw)


@pytest.mark.parametrize("kw, names", [(dict(sampler="euler"), "sampler"), (dict(eta=0.5), "eta"),
                                       (dict(sampler="ddpm", variance="beta"), "sampler, variance"),
                                       (dict(spectrum="S"), "spectrum"),
                                       (dict(sampler="lms", options={"order": 3}), "sampler, options")])
def test_compare_refuses_prediction_settings_without_alpha_bar(kw, names) -> None:
    """Audit 3b C3: sampler / eta were checked but unused without alpha_bar (nothing is predicted then); settings
    away from their defaults, and a spectrum, are now refused naming them. With alpha_bar they predict as before."""
    if "options" in kw:  # options are checked against k-diffusion's own function first (it needs torch)
        from kdiffusion_helpers import load_sampling

        load_sampling()
    x, ref, S = _cmp_data()
    kw = {k: (S if v == "S" else v) for k, v in kw.items()}
    with pytest.raises(ValueError, match=rf"^{names}: only used for the predicted spectral errors, which need "
                                         r"alpha_bar"):
        probe.compare(x, ref, metrics=["mmd2"], **kw)
    with pytest.raises(ValueError, match=rf"^{names}: only used"):
        probe.compare_paired({"a": x, "b": x}, ref, metrics=["mmd2"], **kw)
    ab = schedules.karras(4)
    assert probe.compare(x, ref, metrics=["spectral_kl"], alpha_bar=ab, **kw).predicted
    assert not probe.compare(x, ref, metrics=["mmd2"], sampler="ddim", eta=0.0).predicted  # the defaults


@pytest.mark.parametrize("seed", [-1, None, "1", 1.5, 1.0])
def test_default_schedules_checks_seed_whatever_the_names(seed) -> None:
    """Audit 3b C4: seed=-1 (or None, '1') passed with names=('karras',) and was refused with an optimised name."""
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0"):
        probe.default_schedules(spectra.power_law(4), 3, names=("karras",), seed=seed)


@pytest.mark.parametrize("call", [
    lambda x, ref: probe.compare(x, ref, metrics="mmd2"),
    lambda x, ref: probe.compare_paired({"a": x}, ref, metrics="fd"),
    lambda x, ref: probe.default_schedules(spectra.power_law(4), 3, names="karras"),
])
def test_a_bare_string_is_no_list_of_names(call) -> None:
    """Audit 3b D2: compare(metrics='mmd2') took the string as one name while names='karras',
    families='karras' and schemes='em' were a TypeError: every list-of-names argument refuses a bare string."""
    x, ref, _ = _cmp_data()
    with pytest.raises(TypeError, match=r"^(metrics|names) must be a sequence of"):
        call(x, ref)


def test_compare_reads_scales_given_as_a_generator_once() -> None:
    """Review of 6 December: the every-option check read scales a second time, after _bandwidths had used up a
    one-shot iterable: scales=(s for s in ...) raised "scales must be ... (got [])". Checked once, reused."""
    x, ref, _ = _cmp_data()
    a = probe.compare(x, ref, metrics=["mmd2"], scales=(s for s in [0.5, 1.0, 2.0]))
    b = probe.compare(x, ref, metrics=["mmd2"], scales=[0.5, 1.0, 2.0])
    assert a.values["mmd2"] == b.values["mmd2"] and np.array_equal(a.bandwidths, b.bandwidths)
