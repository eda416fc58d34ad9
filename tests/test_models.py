"""symsched.models: the patches16 data set, the built-in learned denoiser, its shipped weights.

The data-set tests recompute the expected pixels straight from scikit-image; the model tests need
torch and safetensors (the ``[torch]`` extra) and skip cleanly without them.
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from symsched import models
from symsched.models import datasets

IMAGES = datasets.PATCHES16_IMAGES


# ------------------------------------------------------------------------------------------------
# data set
# ------------------------------------------------------------------------------------------------
def _grey(name: str) -> np.ndarray:
    from skimage import color, data, util

    img = getattr(data, name)()
    return 2.0 * (color.rgb2gray(img) if img.ndim == 3 else util.img_as_float(img)) - 1.0


def _count(h: int, w: int) -> int:
    return ((h - 16) // 8 + 1) * ((w - 16) // 8 + 1)


def test_patches16_split_is_spatial_and_deterministic() -> None:
    train, test = models.patches16("train"), models.patches16("test")
    assert train.dtype == test.dtype == np.float64
    assert train.shape[1:] == test.shape[1:] == (16, 16)
    greys = [_grey(n) for n in IMAGES]
    cuts = [int(0.8 * g.shape[1]) for g in greys]
    assert train.shape[0] == sum(_count(g.shape[0], c) for g, c in zip(greys, cuts))
    assert test.shape[0] == sum(_count(g.shape[0], g.shape[1] - c) for g, c in zip(greys, cuts))
    assert test.shape[0] >= 2000  # enough held-out patches for 2,000-sample comparisons
    # first and last patch of each split, located independently
    g0, gl = greys[0], greys[-1]
    np.testing.assert_array_equal(train[0], g0[:16, :16])
    np.testing.assert_array_equal(test[0], g0[:16, cuts[0]:cuts[0] + 16])
    hl, wl = gl.shape
    rt, ct = (hl - 16) // 8 * 8, (wl - cuts[-1] - 16) // 8 * 8
    np.testing.assert_array_equal(test[-1], gl[rt:rt + 16, cuts[-1] + ct:cuts[-1] + ct + 16])
    assert train.min() >= -1.0 and train.max() <= 1.0
    np.testing.assert_array_equal(models.patches16("train"), train)  # deterministic
    train[0] = 0.0  # a fresh copy every call
    assert models.patches16("train")[0].any()


def test_patches16_rejects_unknown_split() -> None:
    with pytest.raises(ValueError, match="split"):
        models.patches16("validation")


def test_importing_models_does_not_import_torch() -> None:
    code = "import sys, symsched, symsched.models; from symsched import models; " \
           "models.patches16('test'); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------------
# the built-in model
# ------------------------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")


@pytest.fixture(scope="module")
def model():
    return models.load_model("builtin:patches16")


def test_shipped_weights_load_without_pickle(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    for mod, attr in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(mod, attr, refuse)
    m = models.load_model("builtin:patches16")
    assert m.shape == (16, 16) and m.prediction == "sample"
    np.testing.assert_array_equal(m.grid, __import__("symsched").schedules.training_grid("linear"))
    assert models.weights_path().stat().st_size <= 5 * 2**20
    assert m.n_parameters == 1_043_264  # the README's "1.04 M parameters"


@pytest.mark.parametrize("ab", [0.0, 1e-6, 0.5, 0.9999])
def test_denoiser_is_finite_and_bounded_at_every_level(model, ab) -> None:
    """x̂0 stays in the data's range even at pure noise: an unpreconditioned ε-network's
    x̂0 = (x - √(1-ᾱ) ε̂)/√ᾱ would multiply its error by up to 1/√1e-6 = 1000 here."""
    rng = np.random.default_rng(0)
    x0 = models.patches16("test")[:256]
    x_t = np.sqrt(ab) * x0 + np.sqrt(1 - ab) * rng.standard_normal(x0.shape)
    out = model.denoiser(x_t, ab)
    assert out.shape == x_t.shape and out.dtype == np.float64
    assert np.all(np.isfinite(out))
    assert np.max(np.abs(out)) < 1.5


def test_denoiser_at_clean_level_returns_input_and_accepts_per_sample_levels(model) -> None:
    x = models.patches16("test")[:8]
    np.testing.assert_array_equal(model.denoiser(x, 1.0), x)  # c_skip = 1, c_out = 0
    ab = np.linspace(0.0, 0.9, 8)
    per_sample = model.denoiser(x, ab)
    one_by_one = np.concatenate([model.denoiser(x[i:i + 1], float(a)) for i, a in enumerate(ab)])
    # the network runs in float32, and BLAS blocks a batch of 8 differently from a batch of 1
    np.testing.assert_allclose(per_sample, one_by_one, rtol=0, atol=1e-5)


def test_denoiser_rejects_bad_input(model) -> None:
    x = np.zeros((2, 16, 16))
    for bad, match in ((np.zeros((16, 16)), "shape"), (np.zeros((2, 8, 8)), "shape"),
                       (np.full((2, 16, 16), np.nan), "finite")):
        with pytest.raises(ValueError, match=match):
            model.denoiser(bad, 0.5)
    for ab in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"alpha_bar_t must lie in \[0, 1\]"):
            model.denoiser(x, ab)
    with pytest.raises(ValueError, match="shape"):
        model.denoiser(x, [0.1, 0.2, 0.3])
    with pytest.raises(TypeError):
        model.denoiser(np.array([["a"] * 16] * 16)[None], 0.5)


def test_load_model_errors(tmp_path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="unknown built-in model"):
        models.load_model("builtin:cifar10")
    with pytest.raises(ValueError, match="safetensors"):
        models.load_model(str(tmp_path / "w.pt"))
    with pytest.raises(ValueError, match="does not exist"):
        models.load_model(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        models.load_model(bad)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "other"})
    with pytest.raises(ValueError, match="not a symsched weight file"):
        models.load_model(tmp_path / "other.safetensors")
    # break-test I: malformed metadata gave a bare JSONDecodeError, NaN weights were blamed on x_t later
    from safetensors import safe_open

    with safe_open(str(models.weights_path()), framework="pt") as fh:
        meta, tensors = dict(fh.metadata()), {k: fh.get_tensor(k) for k in fh.keys()}
    for key in ("log_snr_range", "train_config"):
        save_file(tensors, str(tmp_path / "m.safetensors"), metadata={**meta, key: "{not json"})
        with pytest.raises(ValueError, match=rf"m.safetensors': metadata '{key}': malformed JSON \(JSONDecodeError"):
            models.load_model(tmp_path / "m.safetensors")
    # break-test (probe): values that parse but are no preconditioning loaded and gave wrong x0_hat or a misleading
    # overflow message on every call
    for key, value, match in (("sigma_data", "0", "sigma_data must be a positive finite number"),
                              ("sigma_data", "-0.44", "sigma_data must be a positive finite number"),
                              ("sigma_data", "NaN", "sigma_data must be a positive finite number"),
                              ("log_snr_range", "[NaN, 1]", "log_snr_range must be two finite log-SNRs"),
                              ("log_snr_range", "[5, -5]", "log_snr_range must be two finite log-SNRs")):
        save_file(tensors, str(tmp_path / "m.safetensors"), metadata={**meta, key: value})
        with pytest.raises(ValueError, match=f"m.safetensors': metadata '{key}': {match}"):
            models.load_model(tmp_path / "m.safetensors")
    name = sorted(tensors)[0]
    save_file({**tensors, name: torch.full_like(tensors[name], float("nan"))}, str(tmp_path / "n.safetensors"),
              metadata=meta)
    with pytest.raises(ValueError, match=f"holds non-finite weights .*{name}"):
        models.load_model(tmp_path / "n.safetensors")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"symsched\[torch\]"):
        models.load_model("builtin:patches16")


def test_denoiser_beats_the_gaussian_posterior_mean_on_held_out_patches(model) -> None:
    """At mid noise the learned denoiser beats the best *linear* denoiser of the training data.

    Baseline: the exact posterior mean of N(μ, Σ) fitted to the training patches (full covariance:
    the Wiener filter of the training spectrum in its PCA basis, plus the mean). Paired on the
    same noise over all 6,272 held-out patches; the threshold (5 % lower MSE) is far outside the
    paired standard error (printed) and fails for the baseline itself and for the identity."""
    from symsched.models.evaluate import denoising_mse, gaussian_denoiser

    test = models.patches16("test")
    wiener = gaussian_denoiser(models.patches16("train"))
    for ab in (0.5, 0.9):
        mse_model = denoising_mse(model.denoiser, test, ab, seed=1)
        mse_wiener = denoising_mse(wiener, test, ab, seed=1)
        mse_identity = denoising_mse(lambda x, a: x / np.sqrt(a), test, ab, seed=1)
        assert mse_wiener < mse_identity
        assert mse_model < 0.95 * mse_wiener, (ab, mse_model, mse_wiener)


def test_shipped_log_heldout_numbers_are_this_model(model) -> None:
    """The held-out MSEs in the shipped log (quoted in the README) are what the shipped weights give."""
    from symsched.models.evaluate import denoising_mse, gaussian_denoiser

    log = json.loads(models.weights_path().with_suffix(".json").read_text())
    test = models.patches16("test")
    wiener = gaussian_denoiser(models.patches16("train"))
    for ab, rec in log["heldout_mse"].items():
        assert denoising_mse(model.denoiser, test, float(ab)) == pytest.approx(rec["model"], rel=1e-5)
        assert denoising_mse(wiener, test, float(ab)) == pytest.approx(rec["gaussian"], rel=1e-9)


def test_builtin_denoiser_refuses_complex_input_as_an_argument_type_error() -> None:
    """break3/user F9: a complex x_t is a wrong type: ArgumentTypeError (a TypeError and a ValueError)."""
    from symsched._validate import ArgumentTypeError

    model = models.load_model("builtin:patches16")
    with pytest.raises(ArgumentTypeError, match="x_t must be an array of real numbers, not complex"):
        model.denoiser(np.zeros((2, 16, 16), complex), 0.5)
    # break-test (probe): a boolean batch passed as 0/1; a string, boolean or None level ran or was called NaN
    with pytest.raises(ArgumentTypeError, match="x_t must be an array of real numbers, not booleans"):
        model.denoiser(np.zeros((2, 16, 16), bool), 0.5)
    for level in ("0.5", True, None):
        with pytest.raises(ArgumentTypeError, match="alpha_bar_t must be an array of real numbers"):
            model.denoiser(np.zeros((2, 16, 16)), level)


# ------------------------------------------------------------------------------------------------
# weight files that cannot work: refused at load, naming the file and the key or tensor
# ------------------------------------------------------------------------------------------------
def _shipped() -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(models.weights_path()), framework="pt") as fh:
        return dict(fh.metadata()), {k: fh.get_tensor(k) for k in fh.keys()}


def _write(path, tensors, meta, **changes):
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata={**meta, **changes})
    return path


def test_param_shapes_are_the_networks_own() -> None:
    """The header check compares against network.param_shapes; it must be what ResMLP builds."""
    from symsched.models.network import NetConfig, ResMLP, param_shapes

    for cfg in (NetConfig(), NetConfig(width=8, depth=2, hidden=12, emb_dim=4, n_freqs=0)):
        assert param_shapes(cfg) == {k: tuple(v.shape) for k, v in ResMLP(cfg).state_dict().items()}


def test_load_model_checks_the_header_before_building_the_network(tmp_path, monkeypatch) -> None:
    """break-test (models) 1: metadata "width": 8000 built a 1.3 GB network before "size mismatch" (20000: 6 GB)."""
    from symsched.models import network

    meta, tensors = _shipped()
    net = json.loads(meta["net"])

    def refuse(*args, **kwargs):
        raise AssertionError("ResMLP built before the header was checked")

    monkeypatch.setattr(network, "ResMLP", refuse)
    for fields, match in (({"width": 8000, "hidden": 8000}, r"metadata 'net': net.width must be an integer in "
                                                             r"\[1, 4096\] \(got 8000\)"),
                          ({"width": 4000, "hidden": 4000}, "net describes a network of 68,673,312 parameters, more "
                                                            "than MAX_NET_PARAMETERS"),
                          ({"width": 512, "hidden": 512}, r"tensor 'blocks.0.ada.mod.bias' has shape \(768,\), "
                                                          r"where the metadata 'net' implies \(1024,\)"),
                          ({"depth": 5}, "does not hold the tensors its metadata 'net' describes "
                                         r"\(missing: blocks.4.ada.mod.bias"),
                          ({"depth": True}, r"net.depth must be an integer in \[1, 64\] \(got True\)"),
                          ({"extra": 1}, "net must have exactly the fields")):
        path = _write(tmp_path / "w.safetensors", tensors, meta, net=json.dumps({**net, **fields}))
        with pytest.raises(ValueError, match=f"model file '{re.escape(str(path))}'.*{match}"):
            models.load_model(path)


@pytest.mark.parametrize("dtype, tag", [("bool", "BOOL"), ("int32", "I32"), ("uint8", "U8"), ("float16", "F16"),
                                        ("bfloat16", "BF16"), ("float64", "F64")])
def test_load_model_refuses_weights_that_are_not_float32(tmp_path, dtype, tag) -> None:
    """break-test (models) 2: boolean, integer and half-precision weights were converted without a word."""
    meta, tensors = _shipped()
    weight = tensors["inp.weight"].to(getattr(torch, dtype))
    path = _write(tmp_path / "w.safetensors", {**tensors, "inp.weight": weight}, meta)
    with pytest.raises(ValueError, match=f"tensor 'inp.weight' has dtype {tag}; a symsched weight file holds float32"):
        models.load_model(path)


@pytest.mark.parametrize("key, change, match", [
    ("net", {"pixels": 64}, r"metadata 'net': net.pixels must be 256 \(16×16 patches\) \(got 64\)"),
    ("prediction", "epsilon", "metadata 'prediction': prediction must be 'sample'"),
    ("train_config", {"num_train_timesteps": 2.5}, r"metadata 'train_config': num_train_timesteps must be an integer"
                                                   r" >= 2, not a float \(got 2.5\)"),
    ("train_config", {"num_train_timesteps": 1}, "metadata 'train_config': num_train_timesteps must be an integer "
                                                 ">= 2"),
    ("log_snr_range", ["1", "2"], "metadata 'log_snr_range': log_snr_range must be two finite log-SNRs"),
    ("log_snr_range", [1, 2], r"metadata 'log_snr_range': log_snr_range must be the training grid's log-SNR range "
                              r"\[-10.11767"),
    ("sigma_data", "1e300", r"metadata 'sigma_data': sigma_data must be a positive finite number in \[0.001, 1000\]"),
    ("sigma_data", "1e-300", r"metadata 'sigma_data': sigma_data must be a positive finite number in \[0.001, "),
    ("prediction", None, "metadata 'prediction' is missing"),
])
def test_load_model_refuses_metadata_that_cannot_work(tmp_path, key, change, match) -> None:
    """break-test (models) 3: "pixels": 64 loaded claiming (16, 16) then failed in torch on every call; "prediction":
    "epsilon" was reported as "sample"; num_train_timesteps 2.5 was truncated to 2; log_snr_range ["1", "2"] was
    accepted; sigma_data 1e300 loaded and raised OverflowError in the denoiser."""
    meta, tensors = _shipped()
    if isinstance(change, dict):
        value = json.dumps({**json.loads(meta[key]), **change})
    else:
        value = change if isinstance(change, str) or change is None else json.dumps(change)
    meta = {k: v for k, v in meta.items() if k != key} if value is None else {**meta, key: value}
    path = _write(tmp_path / "w.safetensors", tensors, meta)
    with pytest.raises(ValueError, match=f"model file '{re.escape(str(path))}': {match}"):
        models.load_model(path)


def test_load_model_refuses_weights_that_overflow_float32(tmp_path) -> None:
    """break-test (models) 4: weights of 3e38 loaded, and the denoiser then blamed x_t ("values up to 3.9 overflow")."""
    from symsched.models.network import MAX_ABS_WEIGHT

    meta, tensors = _shipped()
    assert max(float(v.abs().max()) for v in tensors.values()) < MAX_ABS_WEIGHT / 100
    path = _write(tmp_path / "w.safetensors", {**tensors, "inp.weight": torch.full_like(tensors["inp.weight"], 3e38)},
                  meta)
    with pytest.raises(ValueError, match=r"tensor 'inp.weight' holds a weight of magnitude 3e\+38, beyond "
                                         "MAX_ABS_WEIGHT = 1000"):
        models.load_model(path)


def test_denoiser_overflow_on_small_input_blames_the_weights() -> None:
    """The x_t message stays for x_t of ~1e30; on x_t of order 1 the weights are named instead."""
    class Inf(torch.nn.Module):
        def forward(self, x, c):
            return torch.full_like(x, float("inf"))

    meta, _ = _shipped()
    m = models.LearnedModel("overflowing", Inf(), meta)
    with pytest.raises(ValueError, match="its weights, not x_t, are out of range") as info:
        m.denoiser(np.ones((2, 16, 16)), 0.5)
    assert "overflowing" in str(info.value)
    with pytest.raises(ValueError, match="x_t: values up to 1e\\+30 overflow"):
        m.denoiser(np.full((2, 16, 16), 1e30), 0.5)


def test_load_model_names_what_is_not_a_file_and_refuses_other_types(tmp_path) -> None:
    """break-test (models) 8: a FIFO or a directory named x.safetensors "did not exist"; None and 3 were plain
    ValueErrors."""
    import os

    from symsched._validate import ArgumentTypeError

    (tmp_path / "d.safetensors").mkdir()
    os.mkfifo(tmp_path / "f.safetensors")
    with pytest.raises(ValueError, match="d.safetensors' is a directory, not a regular file"):
        models.load_model(tmp_path / "d.safetensors")
    with pytest.raises(ValueError, match="f.safetensors' is a FIFO, not a regular file"):
        models.load_model(str(tmp_path / "f.safetensors"))
    for bad in (None, 3, b"builtin:patches16"):
        with pytest.raises(ArgumentTypeError, match="model must be 'builtin:patches16' or the path of a .safetensors"):
            models.load_model(bad)


def test_denoising_mse_checks_the_level() -> None:
    """break-test (models) 7: alpha_bar 1.5 and -0.5 returned NaN with a RuntimeWarning, "0.5" was accepted."""
    from symsched._validate import ArgumentTypeError
    from symsched.models.evaluate import denoising_mse

    x0 = np.zeros((4, 2, 2))
    for ab in (1.5, -0.5, float("nan")):
        with pytest.raises(ValueError, match="alpha_bar must"):
            denoising_mse(lambda x, a: x, x0, ab)
    for ab in ("0.5", None, True):
        with pytest.raises(ArgumentTypeError, match="alpha_bar must be a real number"):
            denoising_mse(lambda x, a: x, x0, ab)
    assert denoising_mse(lambda x, a: x, x0 + 1.0, 1.0) == 0.0  # the clean level: x_t = x0
    assert denoising_mse(lambda x, a: 0.0 * x, x0 + 1.0, 0.0) == 1.0  # pure noise


def test_denoising_mse_checks_the_batch() -> None:
    """review of 4 December: an empty batch returned NaN with two RuntimeWarnings; a batch of the wrong shape was
    refused in the denoiser's words, naming x_t, an argument the caller never passed."""
    from symsched.models.evaluate import denoising_mse

    model = models.load_model("builtin:patches16")
    for empty in (np.zeros((0, 16, 16)), np.zeros((3, 0)), np.float64(1.0)):
        with pytest.raises(ValueError, match=r"x0 must be a batch \(N, \.\.\.\) of N >= 1 non-empty samples"):
            denoising_mse(model.denoiser, empty, 0.5)
    with pytest.raises(ValueError, match=r"x0 \(shape \(2, 8, 8\)\): the denoiser refused .*x_t must have shape "
                                         r"\(N, 16, 16\)"):
        denoising_mse(model.denoiser, np.zeros((2, 8, 8)), 0.5)


def test_denoising_mse_checks_the_denoiser_output() -> None:
    """audit of 4 December: a NaN output returned nan, a scalar or a broadcastable output the MSE of something
    else, a complex one a negative "mean squared error": each is now refused, as the samplers refuse it."""
    from symsched._validate import ArgumentTypeError
    from symsched.models.evaluate import denoising_mse

    x0 = np.ones((5, 4, 4))
    for out, rule in ((lambda x, a: np.full_like(x, np.nan), "non-finite"), (lambda x, a: 0.0, "shape"),
                      (lambda x, a: np.zeros((5, 1, 1)), "shape"), (lambda x, a: np.zeros((1, 4, 4)), "shape")):
        with pytest.raises(ValueError, match=rule):
            denoising_mse(out, x0, 0.5)
    with pytest.raises(ArgumentTypeError, match="complex"):
        denoising_mse(lambda x, a: x + 1j, x0, 0.5)
    assert denoising_mse(lambda x, a: np.zeros_like(x), x0, 0.5) == 1.0  # (x0_hat - x0)^2 = 1 everywhere


def test_gaussian_denoiser_checks_x_t() -> None:
    """audit of 4 December: a complex x_t came back complex and a NaN x_t as NaN, where the built-in model refuses
    both."""
    from symsched._validate import ArgumentTypeError
    from symsched.models.evaluate import gaussian_denoiser

    wiener = gaussian_denoiser(np.random.default_rng(0).standard_normal((8, 2, 2)))
    with pytest.raises(ArgumentTypeError, match="x_t"):
        wiener(np.zeros((3, 2, 2)) + 1j, 0.5)
    with pytest.raises(ValueError, match="x_t must be finite"):
        wiener(np.full((3, 2, 2), np.nan), 0.5)
    assert wiener(np.zeros((3, 2, 2)), 0.5).shape == (3, 2, 2)


def test_gaussian_denoiser_keeps_the_mean_of_a_direction_without_variance_at_alpha_bar_one() -> None:
    """A training set with a constant pixel has a zero-variance principal direction; at alpha_bar = 1 its gain
    sqrt(ab) lam / (ab lam + 1 - ab) is 0/0 and its limit is 0 (the pixel keeps its training mean): no NaN.
    Expected values from the definition: a constant training set has mean 0.3 everywhere, so x0_hat = 0.3
    whatever x_t is, at every level."""
    from symsched.models.evaluate import denoising_mse, gaussian_denoiser

    wiener = gaussian_denoiser(np.full((6, 2, 3), 0.3))
    for ab in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(wiener(np.full((2, 2, 3), 7.0), ab), 0.3, rtol=1e-12)
    assert denoising_mse(wiener, np.full((4, 2, 3), 0.3), 1.0) == pytest.approx(0.0, abs=1e-24)


@pytest.mark.parametrize("train, message", [
    (np.zeros((1, 2, 2)), "N >= 2"), (np.zeros((0, 2, 2)), "N >= 2"), (np.zeros(5), "N >= 2"),
    (np.full((3, 2, 2), np.nan), "train must be finite"), ("abc", "train must be an array of real numbers")])
def test_gaussian_denoiser_refuses_bad_training_sets(train, message) -> None:
    from symsched.models.evaluate import gaussian_denoiser

    with pytest.raises(ValueError, match=message):
        gaussian_denoiser(train)


def test_gaussian_denoiser_refuses_bad_levels_and_shapes() -> None:
    from symsched.models.evaluate import gaussian_denoiser

    wiener = gaussian_denoiser(np.random.default_rng(0).standard_normal((8, 2, 2)))
    with pytest.raises(ValueError, match=r"alpha_bar must lie in \[0, 1\]"):
        wiener(np.zeros((1, 2, 2)), 1.5)
    with pytest.raises(TypeError, match="alpha_bar must be a real number"):
        wiener(np.zeros((1, 2, 2)), "0.5")
    with pytest.raises(ValueError, match=r"x_t must have shape \(batch, 2, 2\)"):
        wiener(np.zeros((1, 3, 2)), 0.5)


def test_denoising_mse_passes_a_denoiser_s_own_error_unchanged() -> None:
    """review of 4 December: every ValueError of the denoiser was reported as a fault of x0."""
    from symsched.models.evaluate import denoising_mse

    def broken(x_t, alpha_bar):
        raise ValueError("weights must be finite")

    with pytest.raises(ValueError, match=r"^weights must be finite$"):
        denoising_mse(broken, np.zeros((2, 4)), 0.5)
