"""Issue 14: wrong types, misleading messages, limits, file modes, and exact KL / W2 at the extremes."""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path

import mpmath
import numpy as np
import pytest

import symsched
from symsched import _io, export, insight, montecarlo as mc, probe, schedules, sde, spectra
from symsched._validate import MAX_DPS, MAX_SAMPLES, MAX_STEPS, ArgumentTypeError, as_int, as_real
from errstate_helpers import assert_unchanged_under_seterr_raise

S3 = np.array([0.5, 2.0, 2.0])  # Hermitian on a 3-point FFT grid
AB = np.array([0.1, 0.5, 0.9])


def _raises(call, name: str, exc=ValueError, match: str = "") -> str:
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    assert re.search(rf"(^|[^\w]){re.escape(name)}([^\w]|$)", msg), f"{name!r} not named in: {msg}"
    assert match in msg, msg
    return msg


# ------------------------------------------------------------------------------------ wrong types

SAMPLE = dict(n_samples=2, seed=0)


@pytest.mark.parametrize("bad", [float("inf"), None, float("nan"), "x", "10", 1.5, True, np.array([2])])
def test_n_samples_of_the_wrong_kind(bad) -> None:
    _raises(lambda: mc.sample(S3, AB, n_samples=bad), "n_samples")
    _raises(lambda: mc.gaussian_field(S3, bad), "n_samples")


@pytest.mark.parametrize("bad", [-1, "abc", 1.5, True, float("nan"), [1, 2]])
def test_seeds_of_the_wrong_kind(bad) -> None:
    _raises(lambda: mc.sample(S3, AB, n_samples=2, seed=bad), "seed")
    _raises(lambda: mc.gaussian_field(S3, 2, seed=bad), "seed")
    _raises(lambda: symsched.optimize_schedule(S3, 2, seed=bad), "seed")


def test_valid_seeds_still_work() -> None:
    a = mc.gaussian_field(S3, 3, seed=7)
    np.testing.assert_array_equal(a, mc.gaussian_field(S3, 3, seed=np.int64(7)))
    np.testing.assert_array_equal(a, mc.gaussian_field(S3, 3, seed=np.random.default_rng(7)))
    assert mc.gaussian_field(S3, np.int64(3), seed=None).shape == (3, 3)  # a NumPy integer count is fine


@pytest.mark.parametrize("seed", [20251203, 2**32, 2**70])
def test_seeds_of_any_size_are_taken(seed) -> None:
    """break-test 54: optimize (API and CLI), explain and report refused seeds above MAX_ITER = 1e6 (a date, 2**31),
    which validate, probe and NumPy take. The seed still decides the random restarts (a different seed, a different
    start set: the results may agree, the call must not raise)."""
    a = symsched.optimize_schedule(S3, 2, seed=seed, restarts=2)
    b = symsched.optimize_schedule(S3, 2, seed=seed, restarts=2)
    np.testing.assert_array_equal(a.alpha_bar, b.alpha_bar)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda v: symsched.output_spectrum(S3, AB, sampler=v), "sampler"),
        (lambda v: symsched.transfer_function(S3, AB, sampler=v), "sampler"),
        (lambda v: symsched.output_spectrum(S3, AB, init=v), "init"),
        (lambda v: symsched.divergence_and_grad(S3, AB, divergence=v), "divergence"),
        (lambda v: mc.sample(S3, AB, sampler=v, **SAMPLE), "sampler"),
        (lambda v: symsched.optimize_schedule(S3, 2, sampler=v), "sampler"),
        (lambda v: symsched.output_spectrum_mp(S3, AB, sampler=v), "sampler"),
        (lambda v: symsched.sampler_info(v), "sampler"),  # break-test 53: a plain ValueError before
        (lambda v: sde.output_spectrum(S3, v, 10), "scheme"),
        (lambda v: spectra.psd2d(np.zeros((2, 4, 4)), mean=v), "mean"),
        (lambda v: schedules.standard_schedule(v, 5), "name"),
    ],
)
@pytest.mark.parametrize("bad", [np.array(["ddim"]), ["ddim"], None, 1, b"ddim"])
def test_names_must_be_strings(call, name, bad) -> None:
    _raises(lambda: call(bad), name, TypeError)


@pytest.mark.parametrize("bad", [True, "0.5", 0.5 + 0j, None, np.array([0.5]), float("nan")])
def test_eta_must_be_a_real_number(bad) -> None:
    calls = [lambda: symsched.output_spectrum(S3, AB, eta=bad), lambda: mc.sample(S3, AB, eta=bad, **SAMPLE),
             lambda: symsched.output_spectrum_mp(S3, AB, eta=bad)]
    if bad is not None:  # optimize_schedule(eta=None) is the sampler's own default (checked below)
        calls.append(lambda: symsched.optimize_schedule(S3, 2, eta=bad))
    for call in calls:
        _raises(call, "eta")


def test_optimize_eta_none_is_the_samplers_default() -> None:
    none = symsched.optimize_schedule(S3, 2, eta=None, restarts=0)
    zero = symsched.optimize_schedule(S3, 2, eta=0.0, restarts=0)
    assert none.eta == 0.0 and np.array_equal(none.alpha_bar, zero.alpha_bar)


@pytest.mark.parametrize("bad", ["no", "False", 0, 1, None, np.array([True])])
def test_booleans_must_be_booleans(bad) -> None:
    X = np.random.default_rng(0).normal(size=(6, 3))
    _raises(lambda: spectra.pca_spectrum(X, center=bad), "center", TypeError)
    _raises(lambda: symsched.optimize_schedule(S3, 2, progress=bad), "progress", TypeError)
    _raises(lambda: mc.psd_band(S3, 10, familywise=bad), "familywise", TypeError)


ARRAY_CALLS = [
        (lambda x: symsched.output_spectrum(x, AB), "spectrum"),
        (lambda x: symsched.output_spectrum(S3, x), "alpha_bar"),
        (lambda x: symsched.output_spectrum_ve(S3, x), "sigmas"),
        (lambda x: symsched.transfer_function(x, AB), "spectrum"),
        (lambda x: symsched.divergence_and_grad(S3, AB, weights=x), "weights"),
        (lambda x: symsched.kl_divergence(x, S3), "p"),
        (lambda x: symsched.w2_distance(S3, x), "q"),
        (lambda x: mc.sample(x, AB, **SAMPLE), "spectrum"),
        (lambda x: mc.psd_check(x, S3, 10), "psd_hat"),
        (lambda x: mc.psd_check(S3, x, 10), "psd_true"),
        (lambda x: sde.output_spectrum(x, "em", 10), "spectrum"),
        (lambda x: schedules.alpha_bar_to_log_snr(x), "alpha_bar"),
        (lambda x: schedules.log_snr_to_alpha_bar(x), "log_snr"),
        (lambda x: export.to_k_diffusion_sigmas(x), "alpha_bar"),
        (lambda x: export.from_k_diffusion_sigmas(x), "sigmas"),
        (lambda x: spectra.pca_spectrum(x), "data"),
        (lambda x: symsched.optimize_schedule(x, 2), "spectrum"),
]
BAD_ARRAYS = [
        ("complex", lambda: AB.astype(complex) + 1e-3j),
        ("complex with zero imaginary part", lambda: AB.astype(complex)),
        ("bool", lambda: np.array([True, True, False])),
        ("strings", lambda: np.array(["0.1", "0.5", "0.9"])),
        ("None", lambda: None),
        ("a string", lambda: "0.5"),
        ("objects", lambda: np.array([0.1, None, 0.9], dtype=object)),
]


@pytest.mark.parametrize(
    "call, name, kind, make",
    [(c, n, k, m) for c, n in ARRAY_CALLS for k, m in BAD_ARRAYS if not (n == "weights" and k == "None")],  # None: default
)
def test_arrays_must_hold_real_numbers(call, name, kind, make) -> None:
    msg = _raises(lambda: call(make()), name, TypeError)
    assert "NaN" not in msg  # None used to be reported as "found NaN or inf"


def test_spectrum_none_is_not_reported_as_nan() -> None:
    msg = _raises(lambda: symsched.output_spectrum(None, AB), "spectrum", TypeError)
    assert msg == "spectrum must be an array of real numbers (got None)"


def test_psd_check_names_the_argument() -> None:
    _raises(lambda: mc.psd_check("abc", S3, 10), "psd_hat", TypeError)
    _raises(lambda: mc.psd_check(S3, S3, 10, alpha="abc"), "alpha", TypeError)
    _raises(lambda: mc.psd_check(S3, S3, 10, zero_tol=None), "zero_tol", TypeError)


def test_type_errors_are_also_value_errors() -> None:
    """Callers that catch ValueError (the CLI, scripts written before) still catch a wrong type."""
    with pytest.raises(ValueError):
        symsched.output_spectrum(S3, AB, eta="0.5")
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)


def test_scalar_validators() -> None:
    assert as_real(np.float32(0.5), "x") == 0.5 and as_real(np.array(2.0), "x") == 2.0
    assert as_int(4, "k") == 4 and as_int(np.int8(3), "k") == 3
    _raises(lambda: as_int(4.0, "k"), "k", match="not a float")  # audit 3b D1: a count is an integer
    _raises(lambda: as_real(10**400, "x"), "x", match="finite")
    _raises(lambda: as_int(10**6, "k", 1, 10, limit="MAX_STEPS"), "k", match="MAX_STEPS")
    # a NumPy scalar is printed as the number it is (audit 3b B4: "np.float64(-1.0)" read as code)
    msg = _raises(lambda: symsched.output_spectrum([1.0], [0.3, 0.9], sampler="ddim", eta=np.float64(1.5)), "eta")
    assert "(got 1.5)" in msg and "np." not in msg
    msg = _raises(lambda: symsched.output_spectrum([1.0], [0.3, 0.9], sampler="ddim", eta=np.float32(-0.5)), "eta")
    assert "(got -0.5)" in msg and "np." not in msg


# ------------------------------------------------------------------------------------ misleading messages


def test_patch_size_larger_than_the_photographs() -> None:
    msg = _raises(lambda: spectra.natural_patches_spectrum(patch_size=10**6), "patch_size")
    assert "larger than every built-in photograph" in msg and "empty" not in msg
    _raises(lambda: spectra.load_spectrum("builtin:natural-patches", patch_size=513), "patch_size")


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver_multistep", "euler"])
def test_weights_near_the_float64_range_scale_exactly_or_are_named(sampler) -> None:
    S = np.logspace(-3, 3, 50)
    ab = np.array([0.01, 0.3, 0.9])
    if sampler in symsched.VE_SAMPLERS:
        def run(**kw):
            return symsched.divergence_and_grad_ve(S, np.sqrt((1 - ab) / ab), divergence="kl", sampler=sampler, **kw)
    else:
        def run(**kw):
            return symsched.divergence_and_grad(S, ab, divergence="kl", sampler=sampler, **kw)
    J1, g1 = run()
    for w in (2.0**996, 2.0**-1030):  # powers of two: J and the gradient scale exactly (both are linear in w)
        J, g = run(weights=np.full(S.shape, w))
        assert J == J1 * w and np.array_equal(g, g1 * w)
    # J would be about 2e310: beyond float64, which is a property of the weights, not of the levels
    msg = _raises(lambda: run(weights=np.full(S.shape, 1e308)), "weights")
    assert "alpha_bar" not in msg and "sigmas" not in msg


# ------------------------------------------------------------------------------------ limits


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: symsched.output_spectrum_mp(S3, AB, dps=10**7), "dps"),
        (lambda: symsched.output_spectrum_ve_mp(S3, [2.0, 1.0], dps=MAX_DPS + 1), "dps"),
        (lambda: sde.output_spectrum_mp(S3, "em", 10, dps=10**7), "dps"),
        (lambda: mc.sample(S3, AB, n_samples=10**300), "n_samples"),  # (1e300, a float, is no count: TypeError)
        (lambda: mc.gaussian_field(S3, MAX_SAMPLES + 1), "n_samples"),
        (lambda: mc.sample_multichannel(np.ones((4, 1, 1)), AB, n_samples=10**12), "n_samples"),
        (lambda: symsched.optimize_schedule(S3, 10**6), "steps"),
        (lambda: symsched.compare_schedules(S3, (5, 10**6)), "steps_list entries"),
        (lambda: schedules.standard_schedule("linear-trailing", MAX_STEPS + 1), "steps"),
        (lambda: schedules.karras(10**9), "K"),
        (lambda: schedules.training_grid(num_train_timesteps=10**9), "num_train_timesteps"),
        (lambda: sde.output_spectrum(S3, "em", 10**7), "n_points"),
        (lambda: spectra.power_law((10**5, 10**5)), "shape"),
    ],
)
def test_unbounded_work_is_refused_before_it_starts(call, name) -> None:
    _raises(call, name, match="at most" if name != "shape" else "MAX_MODES")


@pytest.mark.parametrize(
    "call",
    [  # each within MAX_SAMPLES and MAX_MODES alone, but 10**6 samples x 2**11 or more values exceed MAX_VALUES
        lambda: mc.gaussian_field(np.ones((64, 64)), 10**6),
        lambda: mc.gaussian_field_eigen(np.eye(2048), np.ones(2048), 10**6),
        lambda: mc.sample(np.ones((64, 64)), AB, n_samples=10**6),
        lambda: mc.sample_ve(np.ones((64, 64)), [2.0, 1.0], n_samples=10**6),
        lambda: mc.sample_multichannel(np.ones((64, 64, 1, 1)), AB, n_samples=10**6),
        lambda: probe.sample(lambda x, ab: x, AB, shape=(64, 64), n_samples=10**6, prediction="sample", seed=0),
    ],
)
def test_outputs_beyond_max_values_are_refused_before_any_work(call, monkeypatch) -> None:
    from symsched import _validate

    assert 10**6 * 2048 > _validate.MAX_VALUES  # the limit this test crosses
    def no_sampling(*args, **kwargs):  # a generator, like the real loop: fails once a batch is asked for
        pytest.fail("sampling started")
        yield

    monkeypatch.setattr(mc._loops, "run", no_sampling)
    _raises(call, "n_samples", match="MAX_VALUES")


def test_max_values_lets_the_largest_allowed_output_through(monkeypatch) -> None:
    from symsched import _validate

    monkeypatch.setattr(_validate, "MAX_VALUES", 64 * 16)
    assert mc.gaussian_field(np.ones((4, 4)), 64, seed=0).shape == (64, 4, 4)
    _raises(lambda: mc.gaussian_field(np.ones((4, 4)), 65, seed=0), "n_samples", match="MAX_VALUES")
    assert mc.sample(np.ones((4, 4)), AB, n_samples=64, seed=0, batch_size=10).shape == (64, 4, 4)


# ------------------------------------------------------------------------------------ files


def test_overwriting_keeps_the_mode(tmp_path) -> None:
    for mode in (0o600, 0o640, 0o604):
        target = tmp_path / f"P{mode:o}.npy"
        target.write_bytes(b"old")
        os.chmod(target, mode)
        _io.save_npy(target, np.arange(3.0))
        assert stat.S_IMODE(os.stat(target).st_mode) == mode
        np.testing.assert_array_equal(np.load(target), np.arange(3.0))
        _io.atomic_write_text(target, "text")
        assert stat.S_IMODE(os.stat(target).st_mode) == mode


@pytest.mark.parametrize("mode, kept", [(0o4755, 0o755), (0o2750, 0o750), (0o6700, 0o700), (0o1644, 0o1644)])
def test_overwriting_drops_set_id_bits(tmp_path, mode, kept) -> None:
    """break-test (review): a set-user-ID file replaced by an output kept its S_ISUID bit on the new contents; the
    permission bits and the sticky bit are kept, the set-ID bits never (a write() by anyone but root clears them)."""
    target = tmp_path / "P.npy"
    target.write_bytes(b"old")
    os.chmod(target, mode)
    _io.save_npy(target, np.arange(3.0))
    assert stat.S_IMODE(os.stat(target).st_mode) == kept


def _other_group() -> int:
    """A group the writer may give its files other than its own (any as root), else skip."""
    mine = os.getegid()
    if os.geteuid() == 0:
        return 1 if mine != 1 else 2
    others = [g for g in os.getgroups() if g != mine]
    if not others:
        pytest.skip("the writer belongs to no second group to test with")
    return others[0]


def test_overwriting_keeps_the_group(tmp_path) -> None:
    """Audit of 4 December: a 0640 file of group g became the writer's group after an overwrite, so members of g
    lost read access (the mode alone was kept). atomic_write and the folder publish keep the group too."""
    gid = _other_group()
    target = tmp_path / "g.json"
    target.write_text("{}")
    os.chown(target, -1, gid)
    os.chmod(target, 0o640)
    _io.atomic_write_json(target, {"a": 1})
    st = os.stat(target)
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (gid, 0o640) and target.read_text().strip().startswith("{")
    out, stage = tmp_path / "out", tmp_path / "stage"
    out.mkdir()
    stage.mkdir()
    (out / "summary.md").write_text("old")
    os.chown(out / "summary.md", -1, gid)
    os.chmod(out / "summary.md", 0o640)
    (stage / "summary.md").write_text("new")
    _io.publish(stage, out)
    st = os.stat(out / "summary.md")
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (gid, 0o640) and (out / "summary.md").read_text() == "new"


def test_json_files_are_strict_json_and_keep_the_mode(tmp_path) -> None:
    """A first level at pure noise has log-SNR -inf: the file says "-inf" (RFC 8259 has no Infinity)."""
    import json

    target = tmp_path / "o.json"
    target.write_text("{}")
    os.chmod(target, 0o600)
    doc = {"log_snr": np.array([-np.inf, 0.5]), "x": np.float64(np.nan), "k": np.int64(3), "t": (1.0, np.inf)}
    _io.atomic_write_json(target, doc)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    back = json.loads(target.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert back == {"log_snr": ["-inf", 0.5], "x": "nan", "k": 3, "t": [1.0, "inf"]}


def test_new_files_follow_the_umask(tmp_path) -> None:
    old = os.umask(0o027)
    try:
        _io.atomic_write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640


def test_cli_overwrite_keeps_the_mode(tmp_path) -> None:
    from symsched.cli import main

    np.save(tmp_path / "S.npy", S3)
    np.save(tmp_path / "A.npy", AB)
    out = tmp_path / "P.npy"
    out.write_bytes(b"")
    os.chmod(out, 0o600)
    assert main(["transfer", "--spectrum", str(tmp_path / "S.npy"), "--alpha-bar", str(tmp_path / "A.npy"),
                 "--out", str(out)]) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    np.testing.assert_array_equal(np.load(out), symsched.output_spectrum(S3, AB))


def test_failed_write_leaves_the_target_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("original")

    def broken(tmp: str) -> None:
        open(tmp, "w").write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        _io.atomic_write(target, broken)
    assert target.read_text() == "original" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_an_interrupt_right_after_the_temporary_is_created_removes_it(tmp_path, monkeypatch) -> None:
    """break-test 49: a Ctrl-C between mkstemp and the cleanup's try left '.fits_kl_K5.md.ae7_m8kk.md' behind. The
    temporary's name is now known before it exists, so an interrupt at the first step after its creation (here: the
    close of its descriptor) still removes it; the target is untouched."""
    target = tmp_path / "keep.txt"
    target.write_text("original")
    real_close = os.close

    def close_then_interrupt(fd: int) -> None:
        real_close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(_io.os, "close", close_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _io.atomic_write_text(target, "new")
    monkeypatch.setattr(_io.os, "close", real_close)
    assert target.read_text() == "original" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_an_output_that_is_a_symbolic_link_is_written_through(tmp_path) -> None:
    """break-tests 50/51: --out link.json replaced the link by a regular file (with the mode of the file it named,
    which kept its old content). Written through now, by atomic_write and by a staged folder's publish: the named
    file gets the new content and keeps its mode, the link stays; a dangling link creates the file it names where its
    folder exists (audit of 5 December: not folders wherever the link points, which is refused)."""
    import stat

    target = tmp_path / "p.json"
    target.write_text("old")
    os.chmod(target, 0o600)
    link = tmp_path / "link.json"
    link.symlink_to("p.json")
    _io.atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new" and stat.S_IMODE(os.stat(target).st_mode) == 0o600
    dangling = tmp_path / "d.json"
    dangling.symlink_to("sub/made.json")
    with pytest.raises(FileNotFoundError, match="dangling symbolic link"):
        _io.atomic_write_text(dangling, "x")
    assert not (tmp_path / "sub").exists()
    (tmp_path / "sub").mkdir()
    _io.atomic_write_text(dangling, "x")
    assert dangling.is_symlink() and (tmp_path / "sub" / "made.json").read_text() == "x"
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.md").symlink_to(target)
    with _io.staged_folder(out) as stage:
        (stage / "summary.md").write_text("published")
    assert (out / "summary.md").is_symlink() and target.read_text() == "published"


def test_special_targets_are_refused(tmp_path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        _io.atomic_write_text(fifo, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# ------------------------------------------------------------------------------------ exact divergences


def _kl_mp(p: float, q: float) -> mpmath.mpf:
    with mpmath.workdps(60):
        if p == q:
            return mpmath.mpf(0)
        if p == 0 or q == 0:
            return mpmath.inf
        r = mpmath.mpf(p) / mpmath.mpf(q)
        return (r - 1 - mpmath.log(r)) / 2


def _w2_mp(p, q) -> mpmath.mpf:
    with mpmath.workdps(60):
        return mpmath.sqrt(mpmath.fsum((mpmath.sqrt(mpmath.mpf(a)) - mpmath.sqrt(mpmath.mpf(b))) ** 2
                                       for a, b in zip(p, q)))


def _close(value: float, exact: mpmath.mpf, rel: float = 1e-13) -> bool:
    if exact > mpmath.mpf(np.finfo(float).max):
        return value == math.inf
    if exact == 0:
        return value == 0
    return math.isfinite(value) and abs(mpmath.mpf(value) - exact) <= rel * exact


def test_issue_instances() -> None:
    kl = symsched.kl_divergence([1e-200], [1e200])
    assert _close(kl, _kl_mp(1e-200, 1e200)) and round(kl, 1) == 460.0
    assert symsched.kl_divergence([1e300], [1e-300]) == math.inf
    w2 = symsched.w2_distance([1.7e308] * 2, [0, 0])
    assert _close(w2, _w2_mp([1.7e308] * 2, [0, 0])) and f"{w2:.3g}" == "1.84e+154"


def test_modes_below_1e154_are_exact() -> None:
    p = np.array([1e-160, 3e-200, 1e-300, 5e-324, 2e-170])
    q = np.array([2e-160, 1e-200, 1e-300, 1e-323, 1e-170])
    kl = symsched.kl_divergence(p, q)
    exact = mpmath.fsum(_kl_mp(a, b) for a, b in zip(p, q))
    assert _close(kl, exact, 1e-12)
    assert _close(symsched.w2_distance(p, q), _w2_mp(p, q), 1e-12)


def _extreme_pairs(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 10.0 ** rng.uniform(-307, 308, n) * rng.uniform(1, 1.7, n)
    q = 10.0 ** rng.uniform(-307, 308, n) * rng.uniform(1, 1.7, n)
    return p, q


def _kl_check(kl_fn) -> list[int]:
    """Indices where a per-mode KL function disagrees with mpmath (inf only where the truth overflows)."""
    p, q = _extreme_pairs()
    return [i for i in range(p.size) if not _close(float(kl_fn(p[i:i + 1], q[i:i + 1])), _kl_mp(p[i], q[i]), 1e-12)]


def test_kl_matches_mpmath_over_the_float64_range() -> None:
    assert _kl_check(symsched.kl_divergence) == []


def test_the_kl_check_rejects_the_naive_formula() -> None:
    """Companion: the same check fails the formula the issue reported (log(S * (1/P)))."""

    def naive(p, q):
        with np.errstate(all="ignore"):
            x0 = q ** (-1.0)
            return float(np.sum(0.5 * p * x0 - 0.5 * np.log(p * x0) - 0.5))

    assert len(_kl_check(naive)) > 50


def test_w2_matches_mpmath_over_the_float64_range() -> None:
    p, q = _extreme_pairs(seed=1)
    for k in (1, 2, 50, 400):
        assert _close(symsched.w2_distance(p[:k], q[:k]), _w2_mp(p[:k], q[:k]), 1e-12)
    big = np.full(10, 1.7e308)
    assert _close(symsched.w2_distance(big, np.zeros(10)), _w2_mp(big, np.zeros(10)), 1e-13)
    tiny = np.full(10, 5e-324)
    assert _close(symsched.w2_distance(tiny, np.zeros(10)), _w2_mp(tiny, np.zeros(10)), 1e-13)


@pytest.mark.parametrize("name", ["kl", "kl-reverse", "w2"])
def test_divergence_kernel_value_and_derivative_match_mpmath(name) -> None:
    """The engine's per-mode kernel f(P, S) and df/dP, generated from the ratio form, at the extremes."""
    from symsched.engine.divergence import divergence_kernel

    P, S = _extreme_pairs(200, seed=2)
    P = np.concatenate([P, [1e-160, 1e-170, 1e-310, 1.0]])
    S = np.concatenate([S, [2e-160, 1e-170, 3e-310, 1.0 + 2**-52]])
    with np.errstate(all="ignore"):
        f, df = divergence_kernel(name)(P, S)
    with mpmath.workdps(60):
        for i in range(P.size):
            Pm, Sm = mpmath.mpf(P[i]), mpmath.mpf(S[i])
            if name == "w2":
                fe, de = (mpmath.sqrt(Pm) - mpmath.sqrt(Sm)) ** 2, 1 - mpmath.sqrt(Sm / Pm)
            elif name == "kl":
                fe, de = (Sm / Pm - 1 - mpmath.log(Sm / Pm)) / 2, (1 - Sm / Pm) / (2 * Pm)
            else:
                fe, de = (Pm / Sm - 1 - mpmath.log(Pm / Sm)) / 2, (Pm / Sm - 1) / (2 * Pm)
            # near r = 1 both are small differences: absolute accuracy ~ eps times the size of the terms
            slack = 4e-16 * (1 + abs(float(mpmath.log(Sm / Pm))))
            assert _close(float(f[i]), fe, 1e-12) or abs(float(f[i]) - fe) <= slack, (i, P[i], S[i], f[i], fe)
            big = mpmath.mpf(np.finfo(float).max)
            scale = (1 + mpmath.sqrt(Sm / Pm)) if name == "w2" else (1 + Sm / Pm + Pm / Sm) / Pm
            if abs(de) > big:
                assert df[i] == (math.inf if de > 0 else -math.inf), (i, df[i], de)
            else:
                assert abs(mpmath.mpf(df[i]) - de) <= 1e-12 * abs(de) + 4e-16 * min(scale, big), (i, P[i], S[i], df[i], de)


def test_kl_is_written_once_symbolically() -> None:
    import sympy as sp

    from symsched.symbolic import divergences as d
    from symsched.symbolic.symbols import p, q

    assert d.kl(p, q) == (p / q - 1 - sp.log(p / q)) / 2  # the display form is unchanged
    F, ((r, r_of), (dd, d_of), (t, t_of)) = d.kl_parts(p, q)
    for branch in (sp.log(r_of), d_of):  # both branches of the log-ratio are log(p/q)
        assert sp.expand_log(F.subs({r: r_of, t: branch}) - d.kl(p, q), force=True) == 0
    assert {arg.expr for arg in t_of.args} == {sp.log(r), dd}
    a, b = sp.symbols("a b", positive=True)  # the amplitude is the rationalised square root of W2's term
    zero, general = d.w2_amplitude(p, q).subs({p: a, q: b}).args
    assert zero == (0, sp.Eq(a, b)) and sp.simplify(general.expr ** 2 - d.w2_squared(a, b)) == 0


def _near_pairs() -> tuple[np.ndarray, np.ndarray]:
    """p and q a few ulp to 1e-6 apart, across the float64 range (audit of 6 December)."""
    p = 10.0 ** np.linspace(-300, 300, 61)
    k = np.array([1, 2, 3, 1e3, 1e6, 4.5e9] * 11)[:61]
    return p, p * (1 + k * 2.0**-52)


def _w2_near_wrong(w2) -> list[int]:
    p, q = _near_pairs()
    return [i for i in range(p.size) if not _close(w2(p[i:i + 1], q[i:i + 1]), _w2_mp(p[i:i + 1], q[i:i + 1]), 1e-13)]


def test_w2_of_nearly_equal_variances_keeps_its_digits() -> None:
    """|sqrt(p) - sqrt(q)| cancelled: w2_distance([1], [1 + 2^-52]) was 0 (exact 1.1e-16), and 1.4 relative off at
    1e300."""
    assert _w2_near_wrong(symsched.w2_distance) == []
    assert symsched.w2_distance([1.0], [1.0 + 2**-52]) == pytest.approx(2**-53, rel=1e-15, abs=0)


def test_the_near_pair_check_rejects_the_difference_of_square_roots() -> None:
    def naive(p, q):
        return float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))

    assert len(_w2_near_wrong(naive)) > 20


@pytest.mark.parametrize("p", [1.5e308, 1.7976931348623157e308, 9.1e307])
def test_kl_whose_ratio_overflows_but_term_does_not_is_finite(p) -> None:
    """kl_divergence([1.5e308], [0.5]) was inf: the ratio 3e308 overflows, the KL (about 1.5e308) does not."""
    kl = symsched.kl_divergence([p], [0.5])
    assert _close(kl, _kl_mp(p, 0.5), 1e-13) and math.isfinite(kl)
    assert symsched.kl_divergence([p], [0.25]) == math.inf  # beyond float64 itself: inf, as documented


def test_gaussian_spectrum_with_tiny_modes_optimises() -> None:
    S = spectra.gaussian((32, 32), length_scale=8)  # smallest mode ~1e-272
    J, g = symsched.divergence_and_grad(S, [0.01, 0.3, 0.9])
    assert math.isfinite(J) and np.all(np.isfinite(g))


@pytest.mark.parametrize("value, exc", [(True, TypeError), ("2", TypeError), (7, ValueError), (2.5, ValueError),
                                        (3 + 0j, TypeError), (np.complex128(2), TypeError),
                                        (np.array([2, 3]), TypeError), (np.array([3]), TypeError),
                                        (np.array([], dtype=int), TypeError), ([3], TypeError)])
def test_sampler_option_of_the_wrong_kind_is_a_type_error(value, exc) -> None:
    """lms' order takes 1-4: a bool or a numeric string is the wrong type (TypeError), 7 a wrong value. Audit of
    4 December: ``3 + 0j == 3`` in Python, so a complex order ran as 3, and an array raised NumPy's ambiguous truth
    value error (naming no option); each is the wrong kind of value, refused naming the option."""
    with pytest.raises(exc, match=r"order must be one of 1, 2, 3, 4 \(default 4\) for sampler 'lms'"):
        symsched.output_spectrum_ve(np.ones(3), [10.0, 1.0, 0.1], sampler="lms", order=value)


def test_boolean_option_refuses_a_number() -> None:
    with pytest.raises(TypeError, match="lower_order_final must be one of"):
        symsched.output_spectrum(np.ones(3), [0.1, 0.5, 0.9], sampler="dpmsolver_multistep", lower_order_final=1)


@pytest.mark.parametrize("kw", [dict(sampler="lms", order=True), dict(sampler="dpmsolver_multistep", solver_order=True),
                                dict(sampler="dpmsolver_multistep", lower_order_final="yes"),
                                dict(sampler="dpmsolver_multistep", euler_at_final=None)])
def test_sampler_options_of_the_wrong_kind_are_argument_type_errors(kw) -> None:
    """break3/user F9: these were plain TypeErrors, which `except ValueError` does not catch; the README promises
    ArgumentTypeError (both) for every wrong-type argument."""
    from symsched._validate import ArgumentTypeError

    with pytest.raises(ArgumentTypeError, match=next(k for k in kw if k != "sampler")):
        symsched.output_spectrum(np.array([0.01, 1.0, 100.0]), np.array([0.01, 0.3, 0.9]), **kw)


def test_negative_weights_are_described_as_weights() -> None:
    for call in (lambda: symsched.divergence_and_grad(np.ones(3), [0.1, 0.5], weights=[1.0, -1.0, 1.0]),
                 lambda: symsched.optimize_schedule(np.ones(3), 2, weights=[1.0, -1.0, 1.0])):
        msg = _raises(call, "weights", match="per-mode weights")
        assert "mode variances" not in msg


def test_numpy_scalars_are_accepted_as_option_values() -> None:
    """np.False_ and np.int64(3) are the values they hold (a 1-element array is still refused)."""
    ab = [0.01, 0.1, 0.5, 0.9]
    a = symsched.output_spectrum(S3, ab, sampler="dpmsolver_multistep", lower_order_final=np.False_,
                                 solver_order=np.int64(3))
    b = symsched.output_spectrum(S3, ab, sampler="dpmsolver_multistep", lower_order_final=False, solver_order=3)
    c = symsched.output_spectrum(S3, ab, sampler="dpmsolver_multistep")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)  # the options did reach the sampler
    _raises(lambda: symsched.output_spectrum(S3, ab, sampler="dpmsolver_multistep",
                                             lower_order_final=np.array([False])), "lower_order_final", TypeError)


def test_an_output_beyond_float64_is_an_error_without_warnings() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _raises(lambda: symsched.output_spectrum([0, 1, 10], [0.01, 0.1, 0.5, 0.9], sampler="euler", s_noise=1e308,
                                                 s_churn=1.0), "spectrum")


def test_a_masked_array_is_refused_not_silently_unmasked() -> None:
    """break-test B: np.asarray drops a mask, so a masked spectrum or schedule used to run on its hidden values."""
    S = np.ma.masked_array([1.0, -5.0, 0.5], mask=[False, True, False])
    with pytest.raises(ValueError, match=r"^spectrum is a masked array with masked entries"):
        symsched.output_spectrum(S, [0.1, 0.5])
    ab = np.ma.masked_array([0.1, 0.5, 0.9], mask=[False, False, True])
    with pytest.raises(ValueError, match=r"^alpha_bar is a masked array"):
        symsched.output_spectrum([1.0], ab)
    full = np.ma.masked_array([1.0, 2.0], mask=[False, False])  # nothing masked: the values themselves
    np.testing.assert_allclose(symsched.output_spectrum(full, [0.1, 0.5]), symsched.output_spectrum([1.0, 2.0], [0.1, 0.5]))


@pytest.mark.parametrize("bad", ["yes", 1, np.array([True])])
def test_every_progress_flag_is_a_boolean(bad, tmp_path) -> None:
    """break-test E: sweep(progress="yes") ran with a bar; every public progress= is checked like optimize_schedule's."""
    from symsched.insight import explain, resolution_law

    S = spectra.power_law((8, 8), alpha=2.0)
    _raises(lambda: symsched.sweep([S], 2, n_jobs=1, restarts=0, progress=bad), "progress", TypeError)
    _raises(lambda: symsched.compare_schedules(S, [2], restarts=0, progress=bad), "progress", TypeError)
    _raises(lambda: resolution_law(lambda d: spectra.power_law((d, d), alpha=2.0), [8, 16], steps=2, progress=bad),
            "progress", TypeError)
    _raises(lambda: explain(S, tmp_path / "x", steps=(2,), progress=bad), "progress", TypeError)
    assert not (tmp_path / "x").exists()


def test_compare_schedules_names_the_step_count_whose_divergence_is_infinite() -> None:
    """compare_schedules(S, [1, 3], endpoints=(0.0, None), divergence="kl") stopped with optimize_schedule's +inf
    message, which names no K: the fixed level of K = 1 (pure noise, one deterministic step) outputs P = 0 where
    S > 0, so KL = +inf for that K only. The refusal names steps_list and K = 1 (sweep's: steps); K = 3 alone runs."""
    from symsched.optimize import InfiniteObjective

    S = spectra.power_law((8, 8), alpha=2.0)
    msg = _raises(lambda: symsched.compare_schedules(S, [1, 3], endpoints=(0.0, None), divergence="kl", restarts=0),
                  "steps_list", InfiniteObjective, match="at K=1 ")
    assert msg.startswith("divergence: at K=1 of steps_list the endpoints fix every level") and msg.endswith(
        "(or drop K=1 from steps_list)")
    for n_jobs in (1, 2):  # sweep's tasks (in worker processes too) name their K the same way
        msg = _raises(lambda: symsched.sweep([S], [3, 1], endpoints=(0.0, None), divergence="kl", restarts=0,
                                             n_jobs=n_jobs), "steps", InfiniteObjective, match="at K=1 of steps ")
    table = symsched.compare_schedules(S, [3], endpoints=(0.0, None), divergence="kl", restarts=0)
    assert table.steps_list == [3] and np.isfinite(table.results[3].kl)


def test_a_repeated_step_count_is_refused_everywhere() -> None:
    """break-test E: explain(steps=(4, 4)) and compare_schedules dropped the repeat silently, sweep refused it."""
    from symsched.commands._settings import positive_ints
    from symsched.insight import explain

    S = spectra.power_law((8, 8), alpha=2.0)
    _raises(lambda: symsched.sweep([S], [3, 3], n_jobs=1), "steps", match="repeat")
    _raises(lambda: symsched.compare_schedules(S, [3, 2, 3]), "steps_list", match="repeat")
    _raises(lambda: explain(S, None, steps=(4, 4)), "steps", match="repeat")
    _raises(lambda: positive_ints("5,10,5", "--steps"), "--steps", match="repeat")
    assert positive_ints("20,5", "--steps") == [20, 5] and positive_ints("none", "--r", allow_none=True) == []


def test_messages_name_the_real_cause() -> None:
    """Break-test I: weights that overflow every schedule were blamed on the sampler; a bound [0, inf] read as if
    inf were allowed; a folder given for a .npy file was called missing."""
    S = np.linspace(0.1, 10.0, 100)
    # (the search runs on the weights' scaled objective; the optimum's value in the user's units is what overflows)
    with pytest.raises(ValueError, match=r"^weights: with these weights \(largest 1e\+308\) the divergence exceeds"):
        symsched.optimize_schedule(S, 3, weights=np.full(100, 1e308), restarts=0)
    with pytest.raises(ValueError, match=r"s_noise must lie in \[0, inf\), finite for sampler 'euler_ancestral'"):
        symsched.output_spectrum([1.0], [0.1, 0.5], sampler="euler_ancestral", s_noise=float("inf"))
    with pytest.raises(ValueError, match=r"s_noise must lie in \[0, inf\)"):
        symsched.output_spectrum([1.0], [0.1, 0.5], sampler="euler_ancestral", s_noise=-1.0)


def test_a_folder_for_a_npy_file_is_called_a_folder(tmp_path) -> None:
    from symsched._io import load_npy

    with pytest.raises(ValueError, match="is a folder; a .npy file is expected here"):
        load_npy(tmp_path, "--spectrum")
    with pytest.raises(ValueError, match="does not exist"):
        load_npy(tmp_path / "missing.npy", "--spectrum")


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_every_npy_format_version_of_a_plain_array_loads(tmp_path, version) -> None:
    """Break-test I: a valid format 3.0 file of float64 was refused as 'unsupported .npy format version'."""
    from symsched._io import load_npy

    S = np.array([[0.5, 1.0], [2.0, 4.0]])
    with open(tmp_path / "S.npy", "wb") as fh:
        np.lib.format.write_array(fh, S, version=version)
    np.testing.assert_array_equal(load_npy(tmp_path / "S.npy", "--spectrum"), S)


def test_all_zero_weights_leave_nothing_to_optimise() -> None:
    S = np.array([0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="weights must give some mode a positive weight"):
        symsched.optimize_schedule(S, 3, weights=np.zeros(3))
    assert symsched.divergence_and_grad(S, [0.1, 0.5], weights=np.zeros(3))[0] == 0.0  # a value is still a value


def test_sampler_parameters_take_any_real_number_as_the_other_arguments_do() -> None:
    """Break-test H: eta=Fraction(1, 2) and eta=np.array(0.5) were refused as 'not a real number'."""
    from fractions import Fraction

    S, ab = [1.0, 2.0], [0.1, 0.5]
    want = symsched.output_spectrum(S, ab, eta=0.5)
    for eta in (Fraction(1, 2), np.array(0.5), np.float32(0.5)):
        np.testing.assert_array_equal(symsched.output_spectrum(S, ab, eta=eta), want)
    for bad in (True, "0.5", np.array([0.5])):
        with pytest.raises(TypeError, match="eta must be a real number"):
            symsched.output_spectrum(S, ab, eta=bad)
    with pytest.raises(ValueError, match="eta must lie in"):
        symsched.output_spectrum(S, ab, eta=Fraction(10**400, 1))


def _shape_calls():
    den = probe.wiener_denoiser(np.ones(4))
    return [("spectra.power_law", lambda s: spectra.power_law(s)),
            ("probe.sample", lambda s: probe.sample(den, [0.5], shape=s, n_samples=2, seed=0, progress=False)),
            ("montecarlo.psd_dof", lambda s: mc.psd_dof(s))]


@pytest.mark.parametrize("bad, exc, needle", [
    ((4, True), TypeError, r"shape entries must be .* \(got True\)"),
    ((4, 2.5), ValueError, r"shape entries must be .* \(got 2.5\)"),
    ((4, "a"), TypeError, r"shape entries must be .* \(got 'a'\)"),
    ("44", TypeError, "shape must be an integer or a non-empty sequence"),
    ({4: 4}, TypeError, "shape must be an integer or a non-empty sequence"),
    ((), ValueError, "shape must be an integer or a non-empty sequence"),
    ((10**6, 10**6), ValueError, "shape asks for 1000000000000 modes, more than MAX_MODES"),
])
def test_every_grid_shape_follows_one_rule(bad, exc, needle) -> None:
    """One shape rule (``_validate.as_shape``) for spectra, probe and montecarlo: before, each had its own and
    ``montecarlo.psd_dof((10**6, 10**6))`` allocated until MemoryError."""
    for where, call in _shape_calls():
        if bad == () and where.startswith("montecarlo"):  # a 0-d periodogram's shape (one scalar mode) is ()
            continue
        with pytest.raises(exc, match=needle):
            call(bad)
            pytest.fail(f"{where} accepted shape={bad!r}")


# ------------------------------------------------------------------ edges found by a second review

def test_pca_basis_rescales_instead_of_overflowing_or_underflowing() -> None:
    X = np.random.default_rng(0).standard_normal((30, 5))
    U, S = probe.pca_basis(X)
    Ub, Sb = probe.pca_basis(np.ldexp(X, 500))  # a power of two: the same scaled problem, bit for bit
    np.testing.assert_array_equal(Ub, U)
    np.testing.assert_array_equal(Sb, np.ldexp(S, 1000))
    U2, S2 = probe.pca_basis(X * 1e154)  # eigh of X^T X / n itself did not converge (inf entries)
    np.testing.assert_allclose(S2, S * 1e308, rtol=1e-12)
    np.testing.assert_allclose(np.abs(U2), np.abs(U), atol=1e-12)
    _raises(lambda: probe.pca_basis(X * 1e-300), "reference", match="too small")  # variances ~1e-600: were all 0
    _raises(lambda: probe.pca_basis(X * 1e160), "reference", match="too large")


def test_exports_refuse_levels_that_merge_in_float64() -> None:
    ab = [0.1, np.nextafter(0.1, 1)]  # strictly increasing, but both map to sigma = 3.0
    _raises(lambda: export.to_k_diffusion_sigmas(ab), "alpha_bar", match="same VE sigma")
    _raises(lambda: export.to_diffusers(ab), "alpha_bar", match="same VE sigma")
    g = schedules.training_grid("linear")
    pair = [g[500], np.nextafter(g[500], 1)]
    _raises(lambda: export.to_diffusers(pair, scheduler="flow_match_euler"), "alpha_bar", match="same flow time")
    assert export.to_k_diffusion_sigmas([0.1, 0.5]).tolist() == [3.0, 1.0, 0.0]  # distinct levels still export


@pytest.mark.parametrize("offset", [2**63 - 1, 10**20, 100])
def test_timesteps_offset_past_the_grid_is_refused_before_int64_wraps(offset) -> None:
    _raises(lambda: schedules.timesteps(10, steps_offset=offset), "steps_offset", match="num_train_timesteps - 1")
    assert schedules.timesteps(10, steps_offset=99)[0] == 999  # the largest offset that fits


def test_reverse_grid_at_the_top_of_float64() -> None:
    tau, delta = sde.reverse_grid(10, horizon=1e308)  # (T - eps) k overflowed to inf before the division
    assert np.all(np.isfinite(tau)) and np.all(np.diff(tau) < 0) and tau[0] == 1e308 and tau[-1] == 0.0
    np.testing.assert_allclose(tau, 1e308 * (1 - np.arange(10) / 9), rtol=1e-15)
    assert delta == pytest.approx(1e308 / 9, rel=1e-15)
    t1, d1 = sde.reverse_grid(7, horizon=2.5, eps=0.5)  # ordinary horizons: unchanged arithmetic
    np.testing.assert_allclose(t1, [2.5, 2.5 - 1 / 3, 2.5 - 2 / 3, 1.5, 2.5 - 4 / 3, 2.5 - 5 / 3, 0.5], rtol=1e-15)


def test_welch_psd_window_and_detrend_are_checked_by_name() -> None:
    from scipy.signal import get_window

    x = np.random.default_rng(1).standard_normal(1000)
    _, p = spectra.welch_psd(x, nperseg=64)
    np.testing.assert_array_equal(spectra.welch_psd(x, nperseg=64, window=get_window("hann", 64))[1], p)
    for bad in (None, 0.5, np.zeros(64), np.ones(3), [np.nan] * 64, "nope", ("kaiser",)):
        _raises(lambda: spectra.welch_psd(x, nperseg=64, window=bad), "window")
    for bad in (np.array([1, 2]), None, "x"):
        _raises(lambda: spectra.welch_psd(x, nperseg=64, detrend=bad), "detrend")


def test_scalar_arguments_given_as_arrays_or_huge_integers() -> None:
    _raises(lambda: schedules.flux_t(5, image_seq_len=np.array([4096])), "image_seq_len", match="one token count")
    np.testing.assert_array_equal(schedules.flux_t(5, image_seq_len=np.array(4096)), schedules.flux_t(5, mu=1.15))
    _raises(lambda: schedules.shifted(5, log_snr_max=10**400), "log_snr_max")
    _raises(lambda: spectra.load_spectrum("builtin:natural-patches", patch_size=1e308), "patch_size")
    _raises(lambda: spectra.radial_psd(np.ones((4, 4, 3)), channel_axis=10**30), "channel_axis")
    S = spectra.power_law((8, 8), alpha=2.0)
    _raises(lambda: symsched.optimize_schedule(S, 3, endpoints=np.array(0.5)), "endpoints")
    _raises(lambda: symsched.optimize_schedule(S, 3, warm_starts=np.array(0.5)), "warm_starts")
    for call in (lambda: mc.psd_dof((4, 4), axes=np.array(0)), lambda: mc.independent_bins((4, 4), axes=np.array(0))):
        _raises(call, "axes", exc=TypeError)


@pytest.mark.parametrize("bad", [{"a": 1}, {1, 2}, 1, "yes"])
def test_progress_that_is_not_a_bar_or_a_bool(bad) -> None:
    _raises(lambda: mc.sample(S3, AB, n_samples=2, seed=0, progress=bad), "progress", exc=TypeError)


def test_results_do_not_depend_on_a_global_numpy_error_state() -> None:
    """np.seterr(all="raise") in the caller's program: the engine's handled underflows (a subnormal level, S = 0)
    raised FloatingPointError from inside symsched; the results must equal those under NumPy's defaults."""
    S = np.array([0.0, 5e-324, 1e-300, 1.0, 1e300])
    calls = {
        "vp": lambda: symsched.output_spectrum(S, [5e-324, 0.5, 1 - 1e-12]),
        "ve": lambda: symsched.output_spectrum_ve(S, [1e100, 1.0, 1e-8], sampler="dpmpp_2m"),
        "grad": lambda: symsched.divergence_and_grad(S, [0.0, 0.5, 0.999], divergence="w2")[1],
        "intermediate": lambda: symsched.intermediate_spectra(S, [5e-324, 0.5, 0.99]).sample,
        "mc": lambda: mc.sample(np.array([[1e-300, 1.0], [1.0, 1e300]]), [5e-324, 0.5], n_samples=4, seed=0),
    }
    assert_unchanged_under_seterr_raise(calls)


def test_sde_overflow_of_many_modes_names_the_steep_beta() -> None:
    """More modes than mpmath recomputes leave the float64 recursion: with a steep beta(t) (e^(2 int beta) beyond
    float64) the message named the spectrum; the arguments at fault are those above their defaults."""
    S = np.linspace(0.01, 1.0, 64)
    for kw, lead in ((dict(beta_max=1e308), "beta_max"), (dict(horizon=1e5), "horizon"),
                     (dict(horizon=1e5, beta_min=0.01), "horizon"), (dict(horizon=1e5, beta_max=20.0),
                                                                     "beta_max, horizon")):
        with pytest.raises(ValueError, match=rf"^{lead}: the float64 recursion"):
            sde.output_spectrum(S, "em", 20, **kw)


def test_overwriting_without_posix_ownership_calls(tmp_path, monkeypatch) -> None:
    """Review of 4 December: keeping the group called os.geteuid / os.chown unguarded; where they do not exist
    (Windows) an overwrite raised AttributeError. The mode is still kept."""
    target = tmp_path / "w.json"
    target.write_text("{}")
    os.chmod(target, 0o600)
    monkeypatch.delattr(os, "geteuid")
    monkeypatch.delattr(os, "chown")
    _io.atomic_write_json(target, {"a": 1})
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600 and '"a": 1' in target.read_text()


# ---------------------------------------------------------------------------------------------
# audit of 4 December: symsched/_io.py at the edges
# ---------------------------------------------------------------------------------------------
def test_output_names_up_to_name_max_are_written(tmp_path) -> None:
    """A valid 250-byte name failed after the work: its temporary name was 22 bytes longer than NAME_MAX (255)."""
    from symsched import _io

    for n in (233, 240, 251):
        name = "a" * (n - 4) + ".npy"
        _io.save_npy(tmp_path / name, np.arange(3.0))
        np.testing.assert_array_equal(np.load(tmp_path / name), np.arange(3.0))
    out = tmp_path / ("d" * 245)
    with _io.staged_folder(out) as stage:
        (stage / "x.txt").write_text("x")
    assert (out / "x.txt").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_error_without_a_number_keeps_its_words_and_names_the_target(tmp_path) -> None:
    """NumPy's "4000 requested and 496 written" (a full disk) has no errno: rebuilt from it, the CLI printed
    "[Errno None] None"; inside a staged folder the hidden stage was named, not the file under --out."""
    from symsched import _io

    def writer(tmp: str) -> None:
        raise OSError("4000 requested and 496 written")

    with pytest.raises(OSError) as info:
        _io.atomic_write(tmp_path / "P.npy", writer)
    assert info.value.filename == str(tmp_path / "P.npy") and info.value.strerror == "4000 requested and 496 written"
    out = tmp_path / "deriv"
    with pytest.raises(OSError) as info:
        with _io.staged_folder(out) as stage:
            raise OSError(28, "No space left on device", str(stage / "ddim.tex"))
    assert info.value.filename == str(out / "ddim.tex") and info.value.errno == 28
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _folder_with(tmp_path, n: int):
    out = tmp_path / "out"
    out.mkdir()
    for i in range(n):
        (out / f"f{i}.txt").write_text("old")
    return out


def test_a_publish_that_fails_midway_puts_back_what_it_replaced(tmp_path, monkeypatch) -> None:
    """A publish moved file by file and stopped at the first target no rename could replace (immutable, or on
    another file system through a link): 3 of 22 derivations new, the rest old. It now puts them back."""
    from symsched import _io

    out = _folder_with(tmp_path, 5)
    real, calls = os.replace, []

    def failing(src, dst):
        calls.append(dst)
        if Path(dst).name == "f3.txt":
            raise PermissionError(1, "Operation not permitted", str(dst))
        return real(src, dst)

    monkeypatch.setattr(_io.os, "replace", failing)
    with pytest.raises(PermissionError) as info:
        with _io.staged_folder(out) as stage:
            for i in range(5):
                (stage / f"f{i}.txt").write_text("new")
            (stage / "extra.txt").write_text("new")
    assert info.value.filename == str(out / "f3.txt")
    assert sorted(p.name for p in out.iterdir()) == [f"f{i}.txt" for i in range(5)]  # (extra.txt removed again)
    assert all((out / f"f{i}.txt").read_text() == "old" for i in range(5))
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no stage, no kept links left


def test_a_target_that_cannot_be_kept_stops_the_publish_before_any_move(tmp_path, monkeypatch) -> None:
    """The file a move would replace is first kept as a hard link (refused for an immutable file, as the rename
    would be): a refusal there changes nothing."""
    from symsched import _io

    out = _folder_with(tmp_path, 3)
    real = os.link

    def refusing(src, dst):
        if Path(src).name == "f1.txt":
            raise PermissionError(1, "Operation not permitted", str(src))
        return real(src, dst)

    monkeypatch.setattr(_io.os, "link", refusing)
    with pytest.raises(PermissionError):
        with _io.staged_folder(out) as stage:
            for i in range(3):
                (stage / f"f{i}.txt").write_text("new")
    assert all((out / f"f{i}.txt").read_text() == "old" for i in range(3))
    assert sorted(p.name for p in out.iterdir()) == ["f0.txt", "f1.txt", "f2.txt"]


def test_every_samplers_doc_is_a_whole_sentence() -> None:
    """Review of 5 December: sampler_info's ``doc`` was the docstring's first line, so a wrapped first sentence ended
    mid-phrase ("euler": "... arXiv 2206.00364), with"). Each is now the first paragraph on one line."""
    from symsched.api import SAMPLERS

    for name in SAMPLERS:
        doc = symsched.sampler_info(name)["doc"]
        assert doc.endswith(".") and "\n" not in doc and "  " not in doc, (name, doc)
    assert symsched.sampler_info("euler")["doc"].endswith("(``sample_euler``, EDM Algorithm 2).")


# ------------------------------------------------------------------------------------ unbounded arguments


@pytest.mark.parametrize("call", [
    lambda s: spectra.power_law(s),
    lambda s: spectra.gaussian(s),
    lambda s: spectra.matern(s),
    lambda s: spectra.band_limited(s),
    lambda s: spectra.fft_frequencies(s),
    lambda s: mc.psd_dof(s),
    lambda s: probe.sample(lambda x, ab: x, AB, shape=s, n_samples=2, prediction="sample", seed=0),
])
def test_a_shape_is_read_to_max_ndim_axes_at_most(call) -> None:
    """Audit of 5 December: as_shape listed its argument whole (``power_law(itertools.count(1))``,
    ``psd_dof(range(1, 10**9))``: MemoryError); a shape has at most MAX_NDIM axes."""
    from symsched._validate import MAX_NDIM
    from limit_helpers import Endless

    _raises(lambda: call(Endless(1, MAX_NDIM, "shape sizes")), "shape", match=f"at most {MAX_NDIM} values")
    _raises(lambda: call(range(1, 10**9)), "shape", match="MAX_NDIM")
    _raises(lambda: call((1,) * (MAX_NDIM + 1)), "shape", match=f"got {MAX_NDIM + 1} values")
    assert mc.psd_dof((1,) * (MAX_NDIM - 1) + (4,)).shape == (1,) * (MAX_NDIM - 1) + (4,)  # MAX_NDIM axes pass


BIG_RANGE = range(1, 10**9)


@pytest.mark.parametrize("call, name", [
    (lambda: symsched.output_spectrum(BIG_RANGE, [0.5]), "spectrum"),
    (lambda: symsched.optimize_schedule(np.ones(8), 3, grid=BIG_RANGE), "grid"),
    (lambda: symsched.optimize_schedule(np.ones(8), 3, weights=BIG_RANGE), "weights"),
    (lambda: export.to_diffusers(AB, grid=BIG_RANGE), "grid"),
    (lambda: schedules.nearest_timesteps(BIG_RANGE, AB), "alpha_bar"),
    (lambda: schedules.betas_to_alpha_bar(BIG_RANGE), "betas"),
    (lambda: schedules.betas_to_alpha_bar(range(10**30)), "betas"),
    (lambda: probe.grid_timestep(0.5, BIG_RANGE), "grid"),
    (lambda: probe.compare(np.zeros((4, 2)), BIG_RANGE), "reference"),
])
def test_a_long_range_is_refused_before_numpy_lists_it(call, name) -> None:
    """Audit of 5 December: a ``range`` costs nothing to pass and np.asarray lists it (8 GiB for range(1, 10**9),
    MemoryError); as_real_array refuses one longer than MAX_MODES, the largest array argument, first."""
    from symsched._validate import as_real_array

    msg = _raises(call, name, match="MAX_MODES")
    assert msg.startswith(name), msg
    assert np.array_equal(as_real_array(range(3), "x"), [0.0, 1.0, 2.0])  # a short range is an array as before


@pytest.mark.parametrize("call", [
    lambda w: symsched.optimize_schedule(np.ones(8), 3, warm_starts=w),
    lambda w: symsched.compare_schedules(np.ones(8), (3,), warm_starts=w),
    lambda w: insight.sweep([np.ones(8)], 3, n_jobs=1, warm_starts=w),
])
def test_warm_starts_are_read_to_max_entries_at_most(call) -> None:
    """Audit of 5 December: ``warm_starts=itertools.repeat(ab)`` hung (listed whole), and 5,000 starts were taken,
    each a run of the optimiser."""
    from symsched._validate import MAX_ENTRIES
    from limit_helpers import Endless

    for bad in (Endless(AB, what="warm starts"), [AB] * (MAX_ENTRIES + 1)):
        msg = _raises(lambda: call(bad), "warm_starts", match=f"at most {MAX_ENTRIES} values")
        assert msg.startswith("warm_starts"), msg


def test_intermediate_spectra_beyond_max_values_is_refused_before_any_work(monkeypatch) -> None:
    """Audit of 5 December: 3,000 levels x 2**20 modes asked NumPy for 23.4 GiB (MemoryError)."""
    from symsched import _validate
    from symsched.engine import recursion

    monkeypatch.setattr(recursion, "checked_state_variances", lambda *a, **k: pytest.fail("work started"))
    msg = _raises(lambda: symsched.intermediate_spectra(np.ones(2**20), schedules.karras(3000)), "alpha_bar",
                  match="MAX_VALUES")
    assert msg.startswith("alpha_bar") and "spectrum" in msg, msg
    assert 3000 * 2**20 > _validate.MAX_VALUES >= 1024 * 2**20


# ------------------------------------------------------------------ products of limits (break-test of 7 December)


@pytest.mark.parametrize(
    "call",
    [  # within MAX_SAMPLES and MAX_MODES each, and batched (no MAX_VALUES), but 10**7 x 2**20 x 3 levels is 3e13
        lambda: mc.iter_sample(np.ones((1024, 1024)), AB, n_samples=10**7),
        lambda: mc.iter_sample_ve(np.ones((1024, 1024)), [4.0, 2.0, 1.0], n_samples=10**7),
    ],
)
def test_a_monte_carlo_run_beyond_max_sample_work_is_refused_before_it_starts(call, monkeypatch) -> None:
    """``symsched validate --samples 10000000 --shape 8192x8192 --steps 1000`` (6.7e17 value-steps, centuries) was
    accepted and ran until killed: each factor was within its own limit. The product is bounded too."""
    from symsched import _validate

    assert 10**7 * 2**20 * 3 > _validate.MAX_SAMPLE_WORK  # the limit this test crosses

    def no_sampling(*args, **kwargs):
        pytest.fail("sampling started")
        yield

    monkeypatch.setattr(mc._loops, "run", no_sampling)
    _raises(call, "n_samples", match="MAX_SAMPLE_WORK")


def test_max_sample_work_lets_the_largest_allowed_run_through(monkeypatch) -> None:
    from symsched import _validate

    monkeypatch.setattr(_validate, "MAX_SAMPLE_WORK", 64 * 16 * AB.size)
    batches = list(mc.iter_sample(np.ones((4, 4)), AB, n_samples=64, seed=0, batch_size=10))
    assert sum(b.shape[0] for b in batches) == 64
    _raises(lambda: mc.iter_sample(np.ones((4, 4)), AB, n_samples=65, seed=0), "n_samples", match="MAX_SAMPLE_WORK")


@pytest.mark.parametrize(
    ("call", "levels"),
    [
        (lambda S: symsched.output_spectrum_mp(S, AB, dps=15), 3),
        (lambda S: symsched.transfer_function_mp(S, AB, dps=15), 3),
        (lambda S: symsched.output_spectrum_ve_mp(S, [4.0, 2.0, 1.0], dps=15), 3),
        (lambda S: symsched.sde.output_spectrum_mp(S, "em", 3, dps=15), 3),
        (lambda S: symsched.sde.continuous_output_spectrum_mp(S, dps=15), 1),
    ],
)
def test_an_mpmath_evaluation_beyond_max_mp_evaluations_is_refused_and_repeated_modes_count_once(call, levels
                                                                                                 ) -> None:
    """``output_spectrum_mp(np.ones(10**6), ...)`` ran 183 s (one mode, evaluated a million times) and 10**5 modes at
    dps = 1000 ran on: the mpmath path evaluates each distinct mode once and holds distinct modes x levels (grid
    points) to MAX_MP_EVALUATIONS; 10**6 copies of three modes are fine (the companion), and equal the modes alone,
    in the spectrum's shape."""
    from symsched import _validate

    assert _validate.MAX_MP_EVALUATIONS == 100_000
    too_many = -(-100_001 // levels)  # the fewest distinct modes beyond the limit
    _raises(lambda: call(np.linspace(0.5, 1.5, too_many)), "spectrum", match="MAX_MP_EVALUATIONS")
    few = np.array([0.25, 1.0, 4.0])
    alone = call(few)
    tiled = call(np.tile(few, (10**6 // 3, 1)))
    assert tiled.shape == (10**6 // 3, 3)
    assert all(a == b for a, b in zip(np.tile(alone, 10**6 // 3), tiled.ravel()))
