"""Break-test (probe metrics): the metrics' inputs follow the package's type rules, and finite inputs give finite
values (or a clear refusal), never a silent NaN.

Expected values are computed here independently: brute-force kernel sums in plain Python loops (MMD²), the closed
forms of Gaussian Fréchet distances of scaled identities, and scipy's pdist for the median heuristic.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from symsched import probe, schedules, spectra
from symsched._validate import ArgumentTypeError

X = np.random.default_rng(0).standard_normal((10, 4))
Y = X + 1.0


def brute_mmd2(x: np.ndarray, y: np.ndarray, h: np.ndarray) -> float:
    """Gretton et al. 2012 eq. 3 term by term (mixture kernel mean_b exp(-|a-b|^2 / (2 h_b^2)))."""
    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.exp(-np.sum((a - b) ** 2) / (2 * h**2))))

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd2_of_far_apart_sets_is_finite_and_right() -> None:
    """x at 1e160 (|x|^2 overflowed: inf - inf = NaN): every kernel touching x is 0, so MMD² = k_yy, computed
    unscaled here; data and bandwidths scaled together by 1e-200 give the unscaled value."""
    h = np.median(pdist(Y)) * np.array([0.5, 1.0, 2.0])
    n = len(Y)
    kyy = sum(np.mean(np.exp(-np.sum((Y[i] - Y[j]) ** 2) / (2 * h**2))) for i in range(n) for j in range(n)
              if i != j) / (n * (n - 1))
    assert probe.mmd2(X * 1e160, Y) == pytest.approx(kyy, rel=1e-12)
    ref = brute_mmd2(X, Y, h)
    assert probe.mmd2(X, Y) == pytest.approx(ref, rel=1e-12)
    assert probe.mmd2(X * 1e160, Y * 1e160) == pytest.approx(ref, rel=1e-12)
    assert probe.mmd2(X * 1e-200, Y * 1e-200, bandwidths=h * 1e-200) == pytest.approx(ref, rel=1e-9)
    assert probe.median_bandwidth(Y * 1e160) == pytest.approx(np.median(pdist(Y)) * 1e160, rel=1e-12)


def test_mmd2_at_extreme_bandwidths_takes_the_kernel_limits() -> None:
    """bandwidth 1e200: every kernel value 1 (MMD² = 1 + 1 - 2 = 0; it was 0 * inf = NaN on the excluded diagonal);
    1e-200: every kernel between distinct points 0."""
    assert probe.mmd2(X, Y, bandwidths=1e200) == 0.0
    assert probe.mmd2(X, Y, bandwidths=1e-200) == 0.0
    assert np.isfinite(probe.mmd2(X, X, bandwidths=1e-300))


def test_gaussian_frechet_distance_of_huge_and_tiny_gaussians() -> None:
    """FD(N(m1, a I), N(m2, b I)) = |m1 - m2|^2 + d (sqrt a - sqrt b)^2; 1e300 covariances gave NaN."""
    I2 = np.eye(2)
    assert probe.gaussian_frechet_distance([0, 0], I2 * 1e300, [0, 0], I2 * 1e300) == 0.0
    assert probe.gaussian_frechet_distance([0, 0], I2 * 1e300, [0, 0], I2 * 4e300) == pytest.approx(2e300, rel=1e-12)
    assert probe.gaussian_frechet_distance([1e100, 0], I2 * 1e-300, [0, 0], I2 * 4e-300) == pytest.approx(1e200, rel=1e-12)
    assert probe.gaussian_frechet_distance([0, 0], I2 * 1e-320, [0, 0], I2 * 4e-320) == pytest.approx(2e-320, rel=1e-3, abs=0)
    assert probe.gaussian_frechet_distance([1, 0], I2, [0, 0], 4 * I2) == pytest.approx(3.0, rel=1e-14)
    with pytest.raises(ValueError, match="exceeds the float64 range"):  # 4e400: not representable
        probe.gaussian_frechet_distance([1e200, 0], I2, [-1e200, 0], I2)


@pytest.mark.parametrize("call", [
    lambda: probe.mmd2(X.astype(str), Y),
    lambda: probe.mmd2(X, Y, bandwidths="1"),
    lambda: probe.mmd2(X, Y, bandwidths=True),
    lambda: probe.sliced_w2(X > 0, Y),
    lambda: probe.frechet_distance(None, Y),
    lambda: probe.measured_spectrum(X + 1j),
    lambda: probe.pca_basis(X.astype(str)),
    lambda: probe.sliced_w2(X, Y * 2, seed=None),
    lambda: probe.median_bandwidth(X, seed=None),
    lambda: probe.compare(X, Y, seed=None, metrics=["mmd2"]),
    lambda: probe.grid_timestep(np.array([0.5]), schedules.training_grid("linear")),
    lambda: probe.grid_timestep("0.5", schedules.training_grid("linear")),
])
def test_metric_arguments_of_a_wrong_type(call) -> None:
    """Strings were converted, complex / boolean arrays and None gave a plain ValueError, seed=None made the 'fixed'
    projections random, and grid_timestep of an array raised numpy's own TypeError."""
    with pytest.raises(ArgumentTypeError):
        call()


@pytest.mark.parametrize("call,match", [
    (lambda: probe.mmd2(X, Y, scales=[[1, 2]]), "scales must be a positive finite number or a 1-D sequence"),
    (lambda: probe.mmd2(X, Y, bandwidths=[1.0, -1.0]), "bandwidths must be a positive finite number"),
    (lambda: probe.measured_spectrum(np.zeros((5, 0))), r"samples must hold at least one value per sample"),
    (lambda: probe.sliced_w2(np.zeros((5, 0)), np.zeros((5, 0))), r"x must hold at least one value per sample"),
    (lambda: probe.frechet_distance(np.zeros((5, 0)), np.zeros((5, 0))), r"x must hold at least one value"),
    (lambda: probe.grid_timestep(1.5, schedules.training_grid("linear")), r"alpha_bar_t must lie in \[0, 1\]"),
    (lambda: probe.default_schedules(spectra.power_law((8, 8), alpha=2.0), 3, names=["karras", "karras"]),
     "names must not repeat a value"),
])
def test_metric_arguments_out_of_rule(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_compare_rescales_like_the_metric_functions() -> None:
    """review: compare's fd and sliced W2 (their reference-side shortcuts) skipped the rescaling: data at 1e100 raised
    numpy's LinAlgError, data at 1e-170 gave sliced W2 = 0. They now equal the public functions; at 1e-170 compare
    refuses (every Comparison carries the measured spectra, ~1e-340, below float64: they came back as zeros)."""
    x, y = np.random.default_rng(1).standard_normal((2, 20, 4))
    for c in (1.0, 1e100, 1e-150):
        r = probe.compare(x * c, y * c, metrics=("fd", "sliced_w2"))
        assert r.mean("sliced_w2") == pytest.approx(probe.sliced_w2(x * c, y * c), rel=1e-12, abs=0)
        assert r.mean("sliced_w2") > 0
        if c >= 1.0:  # (at 1e-150 the distance, ~1e-300, loses digits in float64 for both)
            assert r.mean("fd") == pytest.approx(probe.frechet_distance(x * c, y * c), rel=1e-10)
    assert probe.sliced_w2(x * 1e-170, y * 1e-170) == pytest.approx(1e-170 * probe.sliced_w2(x, y), rel=1e-12, abs=0)
    with pytest.raises(ValueError, match=r"^reference: values too small for their spectrum"):
        probe.compare(x * 1e-170, y * 1e-170, metrics=("fd", "sliced_w2"))


@pytest.mark.parametrize("power", [0, -400, -480, -500, -510])
def test_spectral_kl_of_tiny_samples_keeps_the_faint_modes(power) -> None:
    """Samples scaled by 2^-500 (largest ~1e-151) have faint modes whose second moments fall below float64's normal
    range (subnormal or 0, 28 of 64 here): the measured spectra lost them and compare's spectral KL came out 0.085
    instead of 0.141. KL is scale-free, so compare takes it from the spectra at a common scale: the same number at
    every scale, equal to 0.5 sum(r - 1 - log r), r = S_ref/P_hat, of the unscaled second moments (numpy here)."""
    S = np.geomspace(1.0, 1e-40, 64)  # independent coordinates: the identity basis measures each mode alone
    x = np.random.default_rng(1).standard_normal((400, 64)) * np.sqrt(S)
    ref = np.random.default_rng(2).standard_normal((400, 64)) * np.sqrt(S)
    r = np.mean(ref**2, axis=0) / np.mean(x**2, axis=0)
    want = 0.5 * np.sum(r - 1.0 - np.log(r))
    c = 2.0**power  # exact: the scaled samples are the same numbers
    res = probe.compare(x * c, ref * c, metrics=["spectral_kl"], basis=np.eye(64))
    assert res.mean("spectral_kl") == pytest.approx(want, rel=1e-12)
    if power <= -480:  # (the case: some modes of the returned spectrum are below the normal range)
        assert np.min(probe.measured_spectrum(x * c, basis=np.eye(64))) < np.finfo(np.float64).tiny
    # a spectrum that does differ is still told apart at that scale
    worse = probe.compare(x * c * 1.5, ref * c, metrics=["spectral_kl"], basis=np.eye(64))
    r2 = r / 2.25
    assert worse.mean("spectral_kl") == pytest.approx(0.5 * np.sum(r2 - 1.0 - np.log(r2)), rel=1e-12)


def test_median_heuristic_of_mostly_repeated_points_says_so() -> None:
    with pytest.raises(ValueError, match="more than half of its pairwise distances are 0"):
        probe.median_bandwidth(np.array([[0.0]] * 4 + [[1.0]]))


# ---------------------------------------------------------------------------------------------
# audit: argument types of the Gaussian Fréchet distance, limits on work, the kernel-power shortcut
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, name", [
    (dict(mu1=np.array([0.0, 1j])), "mu1"),
    (dict(cov1=np.eye(2) * (1 + 1j)), "cov1"),
    (dict(mu1=np.array([True, False])), "mu1"),
    (dict(mu1="ab"), "mu1"),
    (dict(mu2=None), "mu2"),
    (dict(cov2=np.eye(2, dtype=bool)), "cov2"),
])
def test_gaussian_frechet_distance_names_an_argument_of_the_wrong_type(bad, name) -> None:
    """Audit fault 3: complex mu1 / cov1 were cast silently (ComplexWarning, then 0.0), booleans taken as 0/1, and
    mu1='ab' raised NumPy's message naming no argument."""
    args = dict(mu1=np.zeros(2), cov1=np.eye(2), mu2=np.zeros(2), cov2=np.eye(2))
    args.update(bad)
    with pytest.raises(ArgumentTypeError, match=rf"^{name} must be an array of real numbers"):
        probe.gaussian_frechet_distance(**args)
    # the closed form on valid input: |mu1 - mu2|^2 + (sqrt(c1) - sqrt(c2))^2 per axis for diagonal covariances
    assert probe.gaussian_frechet_distance([0.0, 0.0], np.diag([1.0, 4.0]), [1.0, 2.0], np.diag([4.0, 9.0])) \
        == pytest.approx(1 + 4 + (1 - 2) ** 2 + (2 - 3) ** 2, rel=1e-12)


def test_metric_work_is_bounded_by_documented_limits() -> None:
    """Audit fault 5: n_projections=10**9 ran into a MemoryError, and MMD² (every pair: 200k samples never finished)
    had no bound; both are refused up front, naming the argument and the constant."""
    from symsched._validate import MAX_MMD_SAMPLES, MAX_PROJECTIONS

    with pytest.raises(ValueError, match=rf"^n_projections must be at most {MAX_PROJECTIONS} .*MAX_PROJECTIONS"):
        probe.sliced_w2(X, Y, n_projections=10**9)
    big = np.zeros((MAX_MMD_SAMPLES + 1, 1))
    with pytest.raises(ValueError, match=r"^x: at most .*MAX_MMD_SAMPLES"):
        probe.mmd2(big, Y[:, :1])
    with pytest.raises(ValueError, match=r"^y: at most .*MAX_MMD_SAMPLES"):
        probe.mmd2(Y[:, :1], big)
    with pytest.raises(ValueError, match=r"^reference: at most .*MAX_MMD_SAMPLES"):
        probe.compare(Y[:, :1], big, metrics=("mmd2",))
    with pytest.raises(ValueError, match=r"^n_projections must be at most"):
        probe.compare(Y, X, metrics=("mmd2",), n_projections=MAX_PROJECTIONS + 1)


def _exact_ratio(h0: float, ratio: float) -> tuple[float, float]:
    """(h0', h) near (h0, h0 / sqrt(ratio)) with (-0.5 / h**2) / (-0.5 / h0'**2) == ratio exactly in float64 (the
    exponent ratio the shortcut tests): inputs chosen here, not expected values."""
    for k in range(1000):
        a = h0 * (1 + 1e-3 * k)
        h = a / np.sqrt(ratio)
        for _ in range(8):
            for b in (h, np.nextafter(h, 0.0), np.nextafter(h, np.inf)):
                if (-0.5 / b**2) / (-0.5 / a**2) == ratio:
                    return a, b
            h = np.nextafter(h, np.inf)
    raise AssertionError("no exact ratio found")  # pragma: no cover


def _bandwidth_sets() -> list[np.ndarray]:
    a4, b4 = _exact_ratio(1.7, 4.0)
    a2, b2 = _exact_ratio(1.7, 2.0)
    assert (-0.5 / (b2 / 2) ** 2) / (-0.5 / b2**2) == 4.0  # halving is exact
    return [np.array([a4, b4]),  # exponent ratio 4: the fourth power
            np.array([a2, b2]),  # ratio 2: the square
            np.array([a2, b2, b2 / 2]),  # 2 then 4
            np.array([2 * a2, a2, b2]),  # 4 then 2
            np.array([3.918628048811352, 2.770888466262316]),  # the audit's pair (ratio 2)
            np.array([1.7, 0.77 * 1.7, 0.3 * 1.7])]  # arbitrary: exp every time


@pytest.mark.parametrize("h", _bandwidth_sets())
def test_mmd2_equals_the_direct_sum_for_bandwidth_ratios_4_2_and_arbitrary(h) -> None:
    """Audit fault 7d: _kernel_sums takes a kernel whose exponent is exactly 2x (4x) the previous one as its square
    (fourth power); `ratio == 4.0` -> `ratio >= 2.0` survived the suite (0.05192 instead of 0.04092). Each
    bandwidth set is checked against the direct O(n^2) RBF sum typed in above (brute_mmd2), in both orders."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal((9, 3)) + 0.4
    assert probe.mmd2(x, y, bandwidths=h) == pytest.approx(brute_mmd2(x, y, h), rel=1e-12, abs=1e-15)
    assert probe.mmd2(x, y, bandwidths=h[::-1]) == pytest.approx(brute_mmd2(x, y, h), rel=1e-12, abs=1e-15)


def test_probe_cli_refuses_more_samples_than_mmd_takes(capsys) -> None:
    """Audit fault 5: `symsched probe --samples` took up to 10M samples, but MMD² over them never finishes; the
    limit is checked before the model is loaded or anything sampled (one line, exit 2, naming --samples)."""
    from symsched.cli import main

    assert main(["probe", "--samples", "20001", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--samples must be at most 20000" in err, err


@pytest.mark.parametrize("kw,msg", [
    ({"sampler": "bogus", "eta": 2.0}, r"^sampler must be one of 'ddim'"),
    ({"eta": 2.0}, r"^eta must lie in \[0, 1\] \(got 2.0\)"),
    ({"eta": "0.5"}, r"^eta must be a number in \[0, 1\]"),
    ({"sampler": "euler", "eta": 0.5}, r"^eta: sampler 'euler' takes no eta"),
    ({"variance": "bogus"}, r"^variance must be one of 'posterior', 'beta'"),
    ({"variance": "beta"}, r"^variance: sampler 'ddim' takes no variance"),
    ({"sampler": "dpmsolver_multistep"}, r"^sampler 'dpmsolver_multistep': the learned probe has no loop"),
])
def test_compare_checks_the_sampler_settings_without_alpha_bar(kw, msg) -> None:
    """break-test F7c: compare(x, ref, sampler="bogus", eta=2.0) was accepted silently without alpha_bar, although the
    docstring says bad sampler settings raise; with alpha_bar, a VE sampler's eta was ignored (predicted_spectrum did
    not pass it on). The settings are checked as sample() checks them, with or without alpha_bar."""
    with pytest.raises(ValueError, match=msg):
        probe.compare(X, Y, metrics=("spectral_kl",), **kw)
    with pytest.raises(ValueError, match=msg):
        probe.compare_paired({"a": X}, Y, metrics=("spectral_kl",), **kw)
    with pytest.raises(ValueError, match=msg):
        probe.compare(X, Y, alpha_bar=[0.1, 0.5], metrics=("spectral_kl",), **kw)
    assert np.isfinite(probe.compare(X, Y, metrics=("spectral_kl",)).mean("spectral_kl"))


def _mp_frechet(x: np.ndarray, y: np.ndarray, dps: int = 50) -> float:
    """Fréchet distance of the sample moments at ``dps`` digits (mpmath): tr (C1^½ C2 C1^½)^½ from mpmath's
    symmetric eigendecompositions, written out here, independent of the package."""
    import mpmath as mp

    with mp.workdps(dps):
        def moments(z: np.ndarray):  # mean and sample covariance (n - 1)
            Z = mp.matrix(z.tolist())
            m = [mp.fsum(Z[i, j] for i in range(Z.rows)) / Z.rows for j in range(Z.cols)]
            D = mp.matrix(Z.rows, Z.cols)
            for i in range(Z.rows):
                for j in range(Z.cols):
                    D[i, j] = Z[i, j] - m[j]
            return m, D.T * D / (Z.rows - 1)

        m1, C1 = moments(x)
        m2, C2 = moments(y)
        e, Q = mp.eigsy(C1)
        r1 = Q * mp.diag([mp.sqrt(max(v, 0)) for v in e]) * Q.T
        ev, _ = mp.eigsy(r1 * C2 * r1)
        tr = mp.fsum(mp.sqrt(max(v, 0)) for v in ev)
        d = C1.rows
        return float(mp.fsum((a - b) ** 2 for a, b in zip(m1, m2)) + mp.fsum(C1[i, i] + C2[i, i] for i in range(d))
                     - 2 * tr)


@pytest.mark.parametrize("n, d, factor", [(3, 40, 1.001), (5, 30, 1 + 1e-5), (8, 12, 0.9)])
def test_frechet_distance_of_fewer_samples_than_dimensions_matches_mpmath(n, d, factor) -> None:
    """break-test: with singular covariances the square roots of the round-off eigenvalues of C1^½ C2 C1^½ (~eps^½
    each) were summed over the null space: 17 % low at n = 3, d = 60, and 0 for 6.2e-9 at n = 5, d = 50."""
    x = np.random.default_rng(n).standard_normal((n, d))
    y = factor * x + 0.01
    want = _mp_frechet(x, y)
    assert probe.frechet_distance(x, y) == pytest.approx(want, rel=1e-7)
    C = np.cov(x, rowvar=False)
    assert probe.gaussian_frechet_distance(x.mean(0), C, y.mean(0), factor**2 * C) == pytest.approx(want, rel=1e-6)
    ref = probe.compare(y.reshape(n, d, 1), x.reshape(n, d, 1), metrics=("fd",))  # (samples, reference) swapped
    assert ref.values["fd"][0] == pytest.approx(want, rel=1e-7)


def test_frechet_features_of_few_large_samples_need_no_d_by_d_covariance(monkeypatch) -> None:
    """break-test: the default 256 PCA directions of 256 x 256 x 3 samples asked np.cov for a 288 GiB matrix
    (MemoryError), and compare() built them even when "fd" was not requested (56 s on 64 x 64 samples). With
    fewer samples than values the directions come from the n x n Gram matrix: the same span as np.cov's top
    eigenvectors, checked here on a size np.cov can take."""
    rng = np.random.default_rng(3)
    y = rng.standard_normal((12, 40)) * np.linspace(3.0, 0.1, 40)  # distinct variances: well-defined directions
    x = rng.standard_normal((15, 40)) * 1.3
    w, V = np.linalg.eigh(np.cov(y, rowvar=False))
    F = V[:, ::-1][:, :5]
    want = probe.gaussian_frechet_distance(F.T @ x.mean(0), F.T @ np.cov(x, rowvar=False) @ F,
                                           F.T @ y.mean(0), F.T @ np.cov(y, rowvar=False) @ F)
    real_cov = np.cov

    def small_cov(m, *a, **k):
        out = real_cov(m, *a, **k)
        assert np.ndim(out) < 2 or out.shape[0] <= 16, f"a {out.shape} covariance was formed"
        return out

    monkeypatch.setattr(np, "cov", small_cov)
    assert probe.frechet_distance(x, y, components=5) == pytest.approx(want, rel=1e-9)
    # beyond the reference's rank (n - 1 = 11) there is nothing to rank: 11 directions, no d x d matrix
    assert np.isfinite(probe.frechet_distance(x, y, components=30))
    big = rng.standard_normal((4, 3, 40, 40))  # d = 4800: np.cov would be 4800 x 4800
    assert probe.frechet_distance(big, big[::-1] * 1.1) > 0

    def never(*a, **k):
        raise AssertionError("computed for a metric that was not requested")

    monkeypatch.setattr(probe, "_features", never)
    monkeypatch.setattr(probe, "_projections", never)
    c = probe.compare(big, big, metrics=("spectral_kl", "spectral_w2", "mmd2"))
    assert c.values["spectral_kl"][0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("mu1, match", [([[0.0, 0.0]], r"mu1 must be a non-empty vector"),
                                        ([], r"mu1 must be a non-empty vector")])
def test_gaussian_frechet_distance_refuses_a_mean_that_is_not_a_vector(mu1, match) -> None:
    cov = np.eye(len(np.ravel(mu1))) if np.size(mu1) else np.zeros((0, 0))
    with pytest.raises(ValueError, match=match):
        probe.gaussian_frechet_distance(mu1, cov, np.zeros(np.size(mu1)), cov)


@pytest.mark.parametrize("grid", [np.array([0.9, 0.5 + 0.3j]), "abc", np.array([True, False])])
def test_diffusers_denoiser_names_a_training_grid_that_is_not_real_numbers(grid) -> None:
    """break-test: a complex alphas_cumprod was cast to [0.9, 0.5] with only numpy's ComplexWarning, and a string
    gave numpy's "could not convert string to float", naming nothing."""
    pytest.importorskip("torch")

    class Config:
        sample_size, in_channels = 8, 1

    class Unet:
        config = Config()

        def __call__(self, x, t):  # pragma: no cover - never called
            return x

    class Scheduler:
        alphas_cumprod = grid
        config = {"prediction_type": "epsilon"}

    with pytest.raises(ArgumentTypeError, match=r"^scheduler\.alphas_cumprod must be an array of real numbers"):
        probe.diffusers_denoiser(Unet(), Scheduler())


@pytest.mark.parametrize("call, name", [
    (lambda v: probe.default_schedules(np.ones(4), 3, names=v), "names"),
    (lambda v: probe.compare(X, Y, metrics=v), "metrics"),
    (lambda v: probe.compare_paired({"a": X}, Y, metrics=v), "metrics"),
])
def test_names_of_runs_are_read_to_max_entries_at_most(call, name) -> None:
    """Audit of 5 December: ``names=itertools.cycle(['karras'])`` and ``metrics=itertools.repeat('fd')`` were
    listed whole (MemoryError); each is now checked as a sequence of distinct names (_validate.as_choices)."""
    from symsched._validate import MAX_ENTRIES
    from limit_helpers import Endless

    item = "karras" if name == "names" else "fd"
    with pytest.raises(ValueError, match=rf"^{name} must hold at most {MAX_ENTRIES} values \(symsched\."):
        call(Endless(item, what=name))
    with pytest.raises(ValueError, match=rf"^{name} must not repeat a value \(got {item!r}"):
        call([item, item])
    with pytest.raises(TypeError, match=rf"^{name} entries must be one of .*\(got 1\)"):
        call([1])
    with pytest.raises(TypeError, match=rf"^{name} must be "):
        call({item: 1})


def test_compare_caps_the_seed_sets_as_probe_schedules_caps_seeds() -> None:
    """Audit of 5 December: 2,000 sample sets (one per seed, each scored by every metric) were taken, where
    probe_schedules holds its seeds to MAX_ENTRIES."""
    from symsched._validate import MAX_ENTRIES

    with pytest.raises(ValueError, match=rf"^samples must hold at most {MAX_ENTRIES} values"):
        probe.compare([X] * (MAX_ENTRIES + 1), Y, metrics=["fd"])
    with pytest.raises(ValueError, match=rf"^samples\['a'\] must hold at most {MAX_ENTRIES} values"):
        probe.compare_paired({"a": [X] * (MAX_ENTRIES + 1)}, Y, metrics=["fd"])
    assert probe.compare([X] * 3, Y, metrics=["fd"]).n_seeds == 3


@pytest.mark.parametrize("kw", ["bandwidths", "scales"])
def test_kernel_widths_are_read_to_max_entries_at_most(kw) -> None:
    """Audit of 5 December: ``bandwidths=range(1, 10**9)`` (or scales=) was listed whole (MemoryError), and
    ``np.ones(10**6)`` bandwidths were taken: a kernel pass over every pair of samples each."""
    from symsched._validate import MAX_ENTRIES
    from limit_helpers import Endless

    for bad in (Endless(1.0, what=kw), range(1, 10**9), np.ones(MAX_ENTRIES + 1)):
        with pytest.raises(ValueError, match=rf"^{kw} must hold at most {MAX_ENTRIES} values \(symsched\."):
            probe.mmd2(X, Y, **{kw: bad})
    assert np.isfinite(probe.mmd2(X, Y, **{kw: np.ones(MAX_ENTRIES)}))
