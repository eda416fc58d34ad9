"""Tests for symsched.spectra.

Statistical checks use a fixed seed and a tolerance derived from the exact chi-square law of the
estimator under Gaussian white noise, with a Bonferroni union bound over frequencies: each test
states its false-alarm probability (the probability that a correct implementation fails)."""

from __future__ import annotations

import math
import os
import warnings

import mpmath

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from symsched import spectra as sp
from symsched import montecarlo as mc
from symsched._io import save_npy

FALSE_ALARM = 1e-6  # per test, two-sided, Bonferroni over frequencies


def mirror(a: np.ndarray, ndim: int) -> np.ndarray:
    """a[-k mod n] over the first ``ndim`` axes, by explicit index arithmetic."""
    idx = [(-np.arange(a.shape[i])) % a.shape[i] for i in range(ndim)]
    return a[np.ix_(*idx)] if ndim > 1 else a[idx[0]]


def chi2_bounds(dof: float, n_tests: int) -> tuple[float, float]:
    """Two-sided quantiles of chi2(dof) at false-alarm FALSE_ALARM / n_tests."""
    a = FALSE_ALARM / n_tests / 2
    return stats.chi2.ppf(a, dof), stats.chi2.isf(a, dof)


def self_conjugate(shape: tuple[int, ...]) -> np.ndarray:
    """Frequencies k with k == -k (DC and Nyquist): the periodogram is chi2(1) there, not chi2(2)/2."""
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    mask = np.ones(shape, dtype=bool)
    for g, n in zip(grids, shape):
        mask &= (g == 0) | (2 * g == n)
    return mask


def assert_periodogram_law(ratio: np.ndarray, n_avg: int) -> None:
    """ratio = estimate / true PSD, averaged over n_avg independent periodograms of Gaussian data.

    Off the self-conjugate frequencies 2 n_avg ratio ~ chi2(2 n_avg); on them n_avg ratio ~ chi2(n_avg).
    """
    sc = self_conjugate(ratio.shape)
    lo2, hi2 = chi2_bounds(2 * n_avg, ratio.size)
    lo1, hi1 = chi2_bounds(n_avg, ratio.size)
    r = ratio[~sc] * 2 * n_avg
    assert r.min() > lo2 and r.max() < hi2, (r.min(), r.max(), lo2, hi2)
    r = ratio[sc] * n_avg
    assert r.min() > lo1 and r.max() < hi1


# ------------------------------------------------------------------------------ models


def test_fft_frequencies():
    np.testing.assert_allclose(sp.fft_frequencies(4), [0, 0.25, 0.5, 0.25])
    f = sp.fft_frequencies((4, 8))
    assert f.shape == (4, 8)
    assert f[1, 2] == pytest.approx(np.hypot(0.25, 0.25))
    assert f[2, 4] == pytest.approx(np.hypot(0.5, 0.5))


def test_power_law_values():
    # shape 4: |f| = 0, 1/4, 1/2, 1/4; default floor 1/4 gives DC the fundamental's value
    np.testing.assert_allclose(sp.power_law(4), [16.0, 16.0, 4.0, 16.0], rtol=1e-15)
    S = sp.power_law((4, 4), alpha=2.0, c=3.0)
    assert S[1, 1] == pytest.approx(3.0 / (2 / 16))
    assert S[0, 0] == pytest.approx(3.0 * 16)
    np.testing.assert_allclose(sp.power_law(4, floor=0.5), [4.0, 4.0, 4.0, 4.0])
    np.testing.assert_allclose(sp.power_law(8, alpha=0.0, c=2.0), 2.0)  # white
    S = sp.power_law((6, 10), alpha=1.7)
    assert S.dtype == np.float64 and np.all(S > 0)
    np.testing.assert_array_equal(S, mirror(S, 2))


def test_band_limited_and_matern_values():
    # shape 8: |f| = 0, 1/8, 1/4, 3/8, 1/2, 3/8, 1/4, 1/8
    np.testing.assert_array_equal(sp.band_limited(8, cutoff=0.25), [1, 1, 1, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(sp.band_limited(8, cutoff=0.125, level=2.0, floor=0.5), [2, 2, .5, .5, .5, .5, .5, 2])
    np.testing.assert_array_equal(sp.band_limited(8, cutoff=0.1), [1, 0, 0, 0, 0, 0, 0, 0])
    S = sp.matern((16, 16), nu=1.5, length_scale=3.0, variance=2.5)
    assert S.mean() == pytest.approx(2.5, rel=1e-13)
    f = sp.fft_frequencies((16, 16))
    # ratio between two frequencies from the Matern PSD (2 nu / l^2 + 4 pi^2 f^2)^-(nu + d/2)
    a, b = (0, 1), (3, 5)
    expected = ((3.0 / 9 + 4 * np.pi**2 * f[b] ** 2) / (3.0 / 9 + 4 * np.pi**2 * f[a] ** 2)) ** 2.5
    assert S[a] / S[b] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(S, mirror(S, 2))


def test_matern_and_gaussian_covariances():
    # the inverse FFT of the PSD is the field's covariance (Wiener-Khinchin)
    S = sp.gaussian((64, 64), length_scale=3.0)
    cov = np.fft.ifft2(S).real
    assert cov[0, 0] == pytest.approx(1.0, rel=1e-13)
    assert cov[3, 4] == pytest.approx(np.exp(-25 / 18), rel=1e-10)  # exp(-r^2 / (2 l^2)), r = 5
    S = sp.matern((256, 256), nu=1.5, length_scale=10.0)
    cov = np.fft.ifft2(S).real
    r = 20.0  # at lag (12, 16): (1 + sqrt(3) r / l) exp(-sqrt(3) r / l); spectral aliasing ~1e-4
    assert cov[12, 16] == pytest.approx((1 + np.sqrt(3) * r / 10) * np.exp(-np.sqrt(3) * r / 10), rel=1e-3)
    np.testing.assert_array_equal(sp.gaussian(32, length_scale=2.0), sp.matern(32, nu=np.inf, length_scale=2.0))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sp.power_law((4, 4, 3)), "1 or 2 axes .*one spectrum per channel"),
        (lambda: sp.power_law(0), "shape entries must be a positive integer"),
        (lambda: sp.power_law("abc"), "shape must be an integer or a non-empty sequence"),
        (lambda: sp.power_law((4, 2.5)), "shape entries must be a positive integer"),
        (lambda: sp.power_law(8, alpha=np.nan), "alpha must be finite"),
        (lambda: sp.power_law(8, c=0.0), "c must be positive"),
        (lambda: sp.power_law(8, floor=-1.0), "floor must be positive"),
        (lambda: sp.power_law(8, alpha=1000.0), "overflows"),
        (lambda: sp.band_limited(8, cutoff=-0.1), "cutoff must be non-negative"),
        (lambda: sp.band_limited(8, level=0.0), "level must be positive"),
        (lambda: sp.band_limited(8, floor=-1.0), "floor must be non-negative"),
        (lambda: sp.matern(8, nu=0.0), "nu must be a positive number"),
        (lambda: sp.matern(8, nu=np.nan), "nu must be a positive number"),
        (lambda: sp.matern(8, length_scale=-2.0), "length_scale must be positive"),
        (lambda: sp.matern(8, variance=0.0), "variance must be positive"),
    ],
)
def test_model_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------ psd2d


def test_white_noise_psd_is_one():
    rng = np.random.default_rng(1)
    N, H, W = 64, 32, 32
    x = rng.standard_normal((N, H, W))
    S = sp.psd2d(x)
    assert S.shape == (H, W) and S.dtype == np.float64
    assert_periodogram_law(S, N)  # false-alarm probability FALSE_ALARM
    # Parseval: mean(S) * N H W = sum of N H W squared N(0,1) samples ~ chi2(N H W)
    lo, hi = chi2_bounds(N * H * W, 1)
    assert lo < S.mean() * N * H * W < hi
    np.testing.assert_allclose(S.mean(), (x**2).mean(), rtol=1e-12)


def test_psd2d_recovers_a_known_spectrum():
    rng = np.random.default_rng(2)
    N, H, W = 48, 16, 24
    S_true = sp.power_law((H, W), alpha=2.0)
    w = rng.standard_normal((N, H, W))
    x = np.fft.ifft2(np.sqrt(S_true) * np.fft.fft2(w, axes=(1, 2)), axes=(1, 2)).real
    S = sp.psd2d(x)
    assert_periodogram_law(S / S_true, N)  # false-alarm probability FALSE_ALARM


@pytest.mark.parametrize("case", ["psd2d-unnormalised", "psd2d-missing-filter", "welch-doubled"])
def test_periodogram_law_rejects_wrong_spectra(case):
    """Companion of the periodogram-law checks above (white noise, a known spectrum, Welch): the same check, on the
    same draws, rejects a PSD off by the field size's normalisation, one that ignores the filter the field was made
    with, and a Welch PSD doubled (a one-sided convention's factor 2)."""
    rng = np.random.default_rng({"psd2d-unnormalised": 1, "psd2d-missing-filter": 2, "welch-doubled": 8}[case])
    if case == "psd2d-unnormalised":
        x = rng.standard_normal((64, 32, 32))
        ratio, n = sp.psd2d(x) * 2.0, 64  # twice the PSD: 8 sd per bin at 64 averages (sd 1/8)
    elif case == "psd2d-missing-filter":
        N, H, W = 48, 16, 24
        S_true = sp.power_law((H, W), alpha=2.0)
        x = np.fft.ifft2(np.sqrt(S_true) * np.fft.fft2(rng.standard_normal((N, H, W)), axes=(1, 2)), axes=(1, 2)).real
        ratio, n = sp.psd2d(x), N  # compared with white noise, not with S_true
    else:
        x = rng.standard_normal(64 * 400)
        ratio, n = 2.0 * sp.welch_psd(x, nperseg=64, noverlap=0, window="boxcar")[1], 400
    with pytest.raises(AssertionError):
        assert_periodogram_law(ratio, n)


def test_psd2d_channels_symmetry_and_means():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 9, 6, 3)) + 0.3
    S = sp.psd2d(x)
    assert S.shape == (9, 6, 3)
    np.testing.assert_array_equal(S, mirror(S, 2))  # exact Hermitian symmetry, odd and even sizes
    np.testing.assert_allclose(S[..., 1], sp.psd2d(x[..., 1]), rtol=1e-12)
    # constant images c_n = 1 and 3: DC = mean(c^2) HW raw, var(c) HW after dataset mean, 0 per image
    c = np.array([1.0, 3.0])[:, None, None] * np.ones((2, 4, 5))
    HW = 20
    for mean, dc in (("none", 5.0 * HW), ("dataset", 1.0 * HW), ("image", 0.0)):
        S = sp.psd2d(c, mean=mean)
        assert S[0, 0] == pytest.approx(dc, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(S.ravel()[1:], 0.0, atol=1e-12)


@pytest.mark.parametrize(
    "images, kwargs, match",
    [
        (np.zeros((4, 4)), {}, "N×H×W"),
        (np.zeros((1, 4, 4, 3, 1)), {}, "N×H×W"),
        (np.zeros((2, 4, 4), dtype=complex), {}, "real numbers"),
        (np.full((2, 4, 4), np.nan), {}, "finite"),
        (np.zeros((0, 4, 4)), {}, "empty"),
        (np.zeros((2, 4, 4)), dict(mean="median"), "mean must be one of"),
    ],
)
def test_psd2d_errors(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sp.psd2d(images, **kwargs)


# ------------------------------------------------------------------------------ colour eigen-modes


def test_colour_eigen_rank_one_is_exact():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((6, 8, 10))
    a = np.array([1.0, -2.0, 0.5])
    x = w[..., None] * a
    E = sp.colour_eigen_psd(x)
    assert E.shape == (8, 10, 3)
    scale = np.abs(E).max()
    np.testing.assert_allclose(E[..., 0], (a @ a) * sp.psd2d(w), rtol=1e-12)
    np.testing.assert_allclose(E[..., 1:], 0.0, atol=1e-12 * scale)


def test_colour_eigen_mixing_matrix():
    rng = np.random.default_rng(5)
    N, H, W = 1500, 8, 8
    A = np.array([[1.0, 0.5, 0.0], [0.2, 1.0, 0.3], [0.0, 0.4, 0.6]])
    x = rng.standard_normal((N, H, W, 3)) @ A.T
    E = sp.colour_eigen_psd(x)
    assert np.all(np.diff(E, axis=-1) <= 0)  # descending
    np.testing.assert_array_equal(E, mirror(E, 2))
    # trace of the cross-spectral matrix = sum of the per-channel PSDs (exact identity)
    np.testing.assert_allclose(E.sum(axis=-1), sp.psd2d(x).sum(axis=-1), rtol=1e-10)
    # spatially white: every frequency has cross-spectrum A A^T. Each eigenvalue estimate from N
    # complex samples has relative sd ~ 1/sqrt(N) = 2.6 %; averaging ~H W / 2 = 32 independent
    # frequencies gives sd ~0.5 % (measured from the spread over frequencies: 0.39-0.51 %), plus an O(1/N)
    # bias: 3 % is 6 sd, a two-sided normal tail of 2e-9 per eigenvalue, false alarm < 1e-8 for the three.
    expected = np.sort(np.linalg.eigvalsh(A @ A.T))[::-1]
    got = E.reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(got, expected, rtol=3e-2)
    # companion: the same check rejects a wrong formula, the channels' own variances without their mixing
    unmixed = np.sort(np.diag(A @ A.T))[::-1]
    assert np.max(np.abs(got / unmixed - 1)) > 10 * 3e-2
    # C = 1 is psd2d
    np.testing.assert_allclose(sp.colour_eigen_psd(x[..., :1])[..., 0], sp.psd2d(x[..., 0]), rtol=1e-12)


def test_colour_eigen_errors():
    with pytest.raises(ValueError, match="N×H×W×C"):
        sp.colour_eigen_psd(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="mean must be one of"):
        sp.colour_eigen_psd(np.zeros((2, 4, 4, 3)), mean="x")


# ------------------------------------------------------------------------------ radial, PCA, Welch


def test_radial_psd():
    N = 16
    f = sp.fft_frequencies((N, N))
    S = 7.0 * np.rint(f * N)
    freq, rad = sp.radial_psd(S)
    np.testing.assert_allclose(freq, np.arange(freq.size) / N)
    np.testing.assert_allclose(rad, 7.0 * np.arange(freq.size), rtol=1e-14)
    assert freq[-1] == pytest.approx(np.rint(np.sqrt(2) * N / 2) / N)
    freq, rad = sp.radial_psd(np.stack([S, 2 * S], axis=0), channel_axis=0)
    assert rad.shape == (freq.size, 2)
    np.testing.assert_allclose(rad[:, 1], 2 * rad[:, 0])
    freq, rad = sp.radial_psd(np.ones((4, 16)))  # non-square: only non-empty rings returned
    np.testing.assert_allclose(rad, 1.0)
    assert np.all(np.diff(freq) > 0)
    freq, rad = sp.radial_psd(sp.power_law(8))  # 1-D folds +-f
    np.testing.assert_allclose(rad, [64.0, 64.0, 16.0, 64 / 9, 4.0])


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_radial_psd_of_values_near_the_top_of_float64_is_their_mean():
    """Audit of 4 December: ring sums of values near 1.8e308 overflowed (inf for a finite spectrum). Rings that
    overflow are summed at a power-of-two scale; the others are not scaled (a ring of 1e-30 keeps its value)."""
    np.testing.assert_array_equal(sp.radial_psd(np.full((4, 4), 1e308))[1], 1e308)
    np.testing.assert_array_equal(sp.radial_psd(np.full(8, 1.7e308))[1], 1.7e308)
    x = np.full((8, 8), 1e-30)
    x[0, 1] = x[1, 0] = 1.7e308  # ring 1 holds 8 points: (0, +-1), (+-1, 0), (+-1, +-1)
    freq, rad = sp.radial_psd(x)
    assert rad[1] == pytest.approx(1.7e308 / 4, rel=1e-15) and np.all(rad[2:] == 1e-30) and rad[0] == 1e-30


def test_radial_psd_errors():
    with pytest.raises(ValueError, match="channel_axis"):
        sp.radial_psd(np.ones((4, 4, 3)))
    with pytest.raises(ValueError, match=r"channel_axis must be an axis of psd of shape \(4, 4, 3\) in \[-3, 3\)"):
        sp.radial_psd(np.ones((4, 4, 3)), channel_axis=5)
    from symsched._validate import ArgumentTypeError

    with pytest.raises(ArgumentTypeError, match="channel_axis"):  # (audit of 4 December: True was axis 1)
        sp.radial_psd(np.ones((4, 4, 3)), channel_axis=True)
    with pytest.raises(ValueError, match="non-negative"):
        sp.radial_psd(-np.ones((4, 4)))


def test_pca_exact_covariance():
    rng = np.random.default_rng(6)
    N, D = 50, 4
    lam = np.array([4.0, 1.0, 0.25, 0.0])
    Q, _ = np.linalg.qr(np.column_stack([np.ones(N), rng.standard_normal((N, D))]))
    U = Q[:, 1:]  # orthonormal columns, orthogonal to the constant vector: zero column means
    R, _ = np.linalg.qr(rng.standard_normal((D, D)))
    X = (U * np.sqrt(lam * (N - 1))) @ R.T + np.array([1.0, -2.0, 3.0, 0.5])
    ev = sp.pca_spectrum(X)
    np.testing.assert_allclose(ev, lam, atol=1e-12 * lam.max())
    assert np.all(ev >= 0) and ev.dtype == np.float64
    # uncentred second moment of zero-mean columns: lam (N - 1) / N
    np.testing.assert_allclose(sp.pca_spectrum(X - X.mean(axis=0), center=False), lam * (N - 1) / N, atol=1e-12)
    # more features than samples: 3 centred samples have rank 2; beyond min(N, D) exact zeros
    ev = sp.pca_spectrum(rng.standard_normal((3, 6)))
    assert ev.shape == (6,) and np.all(ev[3:] == 0) and np.all(ev[:2] > 0)
    assert ev[2] < 1e-12 * ev[0]


def test_pca_statistical():
    rng = np.random.default_rng(7)
    lam = np.array([9.0, 4.0, 1.0])
    R, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    N = 20000
    X = (rng.standard_normal((N, 3)) * np.sqrt(lam)) @ R.T
    # sample eigenvalues of well-separated eigenvalues have relative sd sqrt(2 / N) = 1 % (normal approximation):
    # 6 sd each, a false-alarm probability of 3 * 2 * Phi(-6) = 6e-9 over the three
    np.testing.assert_allclose(sp.pca_spectrum(X), lam, rtol=6 * np.sqrt(2 / N))
    # companion: the same bound rejects the singular values of X / sqrt(N) (square roots, a plausible slip)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(np.linalg.svd(X / np.sqrt(N), compute_uv=False), lam, rtol=6 * np.sqrt(2 / N))


def test_pca_errors():
    with pytest.raises(ValueError, match="2-D"):
        sp.pca_spectrum(np.ones(5))
    with pytest.raises(ValueError, match="at least 2 samples"):
        sp.pca_spectrum(np.ones((1, 5)))
    with pytest.raises(ValueError, match="finite"):
        sp.pca_spectrum(np.full((3, 2), np.inf))


def test_welch_white_noise():
    rng = np.random.default_rng(8)
    nper, nseg = 64, 400
    x = rng.standard_normal(nper * nseg)
    freq, P = sp.welch_psd(x, nperseg=nper, noverlap=0, window="boxcar")
    assert P.shape == (nper,) and freq.shape == (nper,)
    np.testing.assert_allclose(freq, np.fft.fftfreq(nper))
    np.testing.assert_array_equal(P, mirror(P, 1))
    assert_periodogram_law(P, nseg)  # non-overlapping boxcar segments: exact chi2, false alarm FALSE_ALARM
    # fs only scales frequencies; a batch averages
    f2, P2 = sp.welch_psd(x, fs=1000.0, nperseg=nper, noverlap=0, window="boxcar")
    np.testing.assert_allclose(P2, P, rtol=1e-12)
    np.testing.assert_allclose(f2, np.fft.fftfreq(nper, 1 / 1000.0))
    _, P3 = sp.welch_psd(np.stack([x, 2 * x]), nperseg=nper, noverlap=0, window="boxcar")
    np.testing.assert_allclose(P3, 2.5 * P, rtol=1e-12)


def test_welch_default_window_mean():
    from scipy.signal import get_window

    rng = np.random.default_rng(9)
    nper, n = 128, 128 * 100
    x = rng.standard_normal(n)
    _, P = sp.welch_psd(x, nperseg=nper)
    # mean over frequencies = sum_i c_i x_i^2 with c_i from the Hann window (50 % overlap):
    # E = 1, var = 2 sum c_i^2; 6 sd covers a false-alarm probability < 1e-6 (normal approximation)
    w2 = get_window("hann", nper) ** 2
    step = nper // 2
    nseg = (n - nper) // step + 1
    c = np.zeros(n)
    for s in range(nseg):
        c[s * step : s * step + nper] += w2 / w2.sum() / nseg
    assert abs(P.mean() - 1.0) < 6 * np.sqrt(2 * np.sum(c**2))
    assert P.mean() == pytest.approx(np.sum(c * x**2), rel=1e-10)
    # companion: the same 6-sd bound rejects the PSD without Welch's window normalisation (sum w^2 = nper instead)
    assert abs(P.mean() * w2.sum() / nper - 1.0) > 6 * np.sqrt(2 * np.sum(c**2))


@pytest.mark.parametrize(
    "x, kwargs, match",
    [
        (np.zeros((2, 2, 64)), {}, r"1-D \(n,\) or 2-D"),
        (np.zeros(32), dict(nperseg=64), "exceeds the signal length"),
        (np.zeros(128), dict(nperseg=64, noverlap=64), "noverlap must be an integer"),
        (np.zeros(128), dict(nperseg=64, noverlap=np.inf), "noverlap must be an integer"),
        (np.zeros(128), dict(nperseg=np.inf), "nperseg must be a positive integer"),
        (np.zeros(128), dict(nperseg=64, fs=0.0), "fs must be positive"),
        (np.zeros(128), dict(nperseg=64, detrend="quadratic"), "detrend must be"),
        (np.zeros(128, dtype=complex), dict(nperseg=64), "real numbers"),
        (np.zeros(128), dict(nperseg=64, window="no-such-window"), "window: scipy.signal.get_window refuses"),
    ],
)
def test_welch_errors(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sp.welch_psd(x, **kwargs)


# ------------------------------------------------------------------------------ loaders


def test_builtin_natural_patches():
    """Its load time is measured by benchmarks/bench_cli.py, not asserted here."""
    sp._natural_patches_cached.cache_clear()
    sp._natural_spectrum_cached.cache_clear()
    S = sp.load_spectrum("builtin:natural-patches")
    assert S.shape == (32, 32, 3) and S.dtype == np.float64
    assert np.all(np.isfinite(S)) and np.all(S >= 0)
    np.testing.assert_array_equal(S, mirror(S, 2))
    assert np.all(np.diff(S, axis=-1) <= 0)
    # deterministic, cached, and callers cannot modify the cache
    S[...] = -1.0
    S2 = sp.load_spectrum("builtin:natural-patches")
    assert np.all(S2 >= 0)
    np.testing.assert_array_equal(S2, sp.natural_patches_spectrum())
    # natural images: power falls with frequency (ring means over the first few rings)
    freq, rad = sp.radial_psd(S2, channel_axis=-1)
    assert np.all(np.diff(rad[:8, 0]) < 0)


def test_natural_patches():
    P = sp.natural_patches()
    # astronaut 512x512 -> 16*16, chelsea 300x451 -> 9*14, coffee 400x600 -> 12*18, rocket 427x640 -> 13*20
    assert P.shape == (256 + 126 + 216 + 260, 32, 32, 3)
    np.testing.assert_allclose(P.mean(axis=(0, 1, 2)), 0.0, atol=1e-12)
    assert P.min() >= -2.0 and P.max() <= 2.0 and P.max() - P.min() > 1.5
    np.testing.assert_allclose(sp.natural_patches_spectrum(), sp.colour_eigen_psd(P), rtol=1e-12)


def test_load_npy(tmp_path):
    S = sp.power_law((8, 8))
    save_npy(tmp_path / "s.npy", S)
    np.testing.assert_array_equal(sp.load_spectrum(tmp_path / "s.npy"), S)
    np.testing.assert_array_equal(sp.load_spectrum(str(tmp_path / "s.npy")), S)
    save_npy(tmp_path / "i.npy", np.ones((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="must hold floating-point"):
        sp.load_spectrum(tmp_path / "i.npy")
    save_npy(tmp_path / "n.npy", -S)
    with pytest.raises(ValueError, match="non-negative"):
        sp.load_spectrum(tmp_path / "n.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a plain numeric"):
        sp.load_spectrum(tmp_path / "o.npy")


def test_load_folder(tmp_path):
    rng = np.random.default_rng(10)
    a = rng.integers(0, 256, (70, 64, 3), dtype=np.uint8)  # 2 x 2 patches (rows 64..69 dropped)
    b = rng.integers(0, 256, (40, 33), dtype=np.uint8)  # grey -> RGB, 1 patch
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.PNG")
    Image.fromarray(a[:20, :20]).save(tmp_path / "small.png")  # too small: skipped
    (tmp_path / "notes.txt").write_text("ignored")
    S = sp.load_spectrum(tmp_path)
    # independent reference: explicit patches, [-1, 1], dataset mean removed, eigenvalues per frequency
    patches = [a[i:i + 32, j:j + 32] for i in (0, 32) for j in (0, 32)]
    patches.append(np.repeat(b[:32, :32, None], 3, axis=-1))
    x = np.stack(patches).astype(np.float64) / 255 * 2 - 1
    x -= x.mean(axis=(0, 1, 2))
    X = np.fft.fft2(x, axes=(1, 2))
    M = np.einsum("nhwi,nhwj->hwij", X, X.conj()) / (len(patches) * 32 * 32)
    ref = np.linalg.eigvalsh(M)[..., ::-1]
    np.testing.assert_allclose(S, ref, rtol=1e-9, atol=1e-12 * ref.max())
    # JPEG accepted too
    jpg = tmp_path / "jpg"
    jpg.mkdir()
    Image.fromarray(a).save(jpg / "a.JPG", quality=95)
    assert sp.load_spectrum(jpg, patch_size=16).shape == (16, 16, 3)


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="names no built-in spectrum: must be one of"):
        sp.load_spectrum("builtin:imagenet")
    with pytest.raises(ValueError, match="does not exist"):
        sp.load_spectrum(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="does not exist"):
        sp.load_spectrum(tmp_path / "missing.npy")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="neither a folder nor a .npy file"):
        sp.load_spectrum(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="no PNG/JPEG images"):
        sp.load_spectrum(tmp_path)
    with pytest.raises(ValueError, match="source must be"):
        sp.load_spectrum(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="patch_size must be a positive integer"):
        sp.load_spectrum("builtin:natural-patches", patch_size=0)
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(small / "s.png")
    with pytest.raises(ValueError, match="no image is at least 32×32"):
        sp.load_spectrum(small)
    deep = tmp_path / "deep"
    deep.mkdir()
    Image.fromarray(np.zeros((40, 40), dtype=np.uint16)).save(deep / "d.png")
    with pytest.raises(ValueError, match="only 8-bit images"):
        sp.load_spectrum(deep)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot be read"):
        sp.load_spectrum(bad)


def test_folder_of_grey_images_gives_the_grey_psd(tmp_path):
    """break-test 45: a grey folder gave (p, p, 3) with two channels of round-off (1e-15, exact zeros), so KL was
    1e24; now the (p, p) periodogram of the grey patches, computed here with numpy's FFT. One colour image
    brings the colour eigen-modes back."""
    from skimage import data

    g = data.camera()
    Image.fromarray(g).save(tmp_path / "a.png")
    Image.fromarray(g[:300, :300]).convert("RGB").save(tmp_path / "b.png")  # grey stored as RGB is grey too
    S = sp.load_spectrum(tmp_path)
    p = 32

    def patches(img):
        h, w = (img.shape[0] // p) * p, (img.shape[1] // p) * p
        return img[:h, :w].reshape(h // p, p, w // p, p).transpose(0, 2, 1, 3).reshape(-1, p, p)

    x = 2.0 * g.astype(np.float64) / 255.0 - 1.0
    P = np.concatenate([patches(x), patches(x[:300, :300])])
    P -= P.mean()
    ref = np.mean(np.abs(np.fft.fft2(P)) ** 2, axis=0) / (p * p)
    assert S.shape == (p, p)
    np.testing.assert_allclose(S, ref, rtol=1e-12)
    Image.fromarray(data.astronaut()).save(tmp_path / "c.png")
    assert sp.load_spectrum(tmp_path).shape == (p, p, 3)


def test_colour_modes_of_lower_rank_data_are_exact_zeros(tmp_path):
    """break-test 48: grey images tinted B = G + 1 (after the mean, colour rank 1) gave channels of 1e-19..2e-15
    rounding instead of 0, and KL optimisation divided by them (4e11). Below 4096 eps of the largest mode at a
    frequency, a colour mode is 0; a genuinely coloured image keeps all three positive."""
    from skimage import data

    g = (data.camera()[:256, :256] // 2).astype(np.uint8)  # at most 127: B = G + 1 never saturates
    Image.fromarray(np.stack([g, g, g + 1], axis=-1)).save(tmp_path / "t.png")
    S = sp.load_spectrum(tmp_path)
    assert S.shape == (32, 32, 3)
    assert np.all(S[..., 1:] == 0.0) and np.all(S[..., 0] > 0)
    Image.fromarray(data.astronaut()[:256, :256]).save(tmp_path / "t.png")
    assert np.all(sp.load_spectrum(tmp_path) > 0)


# ---------------------------------------------------------------------------------------------
# audit: extreme length scales and variances, overflowing estimates named by their input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("nu", [0.5, 2.5, np.inf])
@pytest.mark.parametrize("ell", [1e155, 1e300])
def test_matern_at_huge_length_scales_is_the_dc_limit(nu, ell) -> None:
    """Audit fault 4: ell**2 raised OverflowError from ell ~ 1e155. A length scale far beyond the grid leaves all
    the variance at DC (every other mode is e^{-huge} or (huge)^{-(nu + d/2)} relative): S = [N, 0, ...] x variance."""
    S = sp.matern((8, 8), nu=nu, length_scale=ell, variance=2.0)
    expected = np.zeros((8, 8))
    expected[0, 0] = 2.0 * 64
    np.testing.assert_allclose(S, expected, rtol=1e-12, atol=1e-300)
    if math.isinf(nu):
        np.testing.assert_allclose(sp.gaussian((8, 8), length_scale=ell, variance=2.0), expected, rtol=1e-12)


@pytest.mark.parametrize("nu, ell", [(1.5, 3.0), (0.5, 1e-200), (np.inf, 2.0), (1e300, 2.0)])
def test_matern_log_form_matches_its_closed_form(nu, ell) -> None:
    """The overflow-free form equals (2 nu / ell^2 + 4 pi^2 f^2)^{-(nu + d/2)} (nu = inf: exp(-2 pi^2 ell^2 f^2),
    nu = 1e300 its limit), normalised to mean 1, typed in here with mpmath."""
    f = sp.fft_frequencies((6, 5))
    with mpmath.workdps(40):
        if math.isinf(nu) or nu > 1e100:
            logs = [-2 * mpmath.pi**2 * mpmath.mpf(ell) ** 2 * mpmath.mpf(float(x)) ** 2 for x in f.ravel()]
        else:
            logs = [-(mpmath.mpf(nu) + 1) * mpmath.log(2 * mpmath.mpf(nu) / mpmath.mpf(ell) ** 2
                                                        + 4 * mpmath.pi**2 * mpmath.mpf(float(x)) ** 2) for x in f.ravel()]
        top = max(logs)
        w = [mpmath.exp(v - top) for v in logs]
        ref = np.array([float(x * len(w) / mpmath.fsum(w)) for x in w]).reshape(f.shape)
    np.testing.assert_allclose(sp.matern((6, 5), nu=nu, length_scale=ell), ref, rtol=1e-12, atol=1e-300)


def test_matern_variance_beyond_float64_names_variance() -> None:
    """Audit fault 4: variance = 1e308 gave "matern spectrum must be finite", naming no argument."""
    with pytest.raises(ValueError, match=r"^variance: .*exceeds float64"):
        sp.matern((8, 8), variance=1e308)


@pytest.mark.parametrize("call, name", [
    (lambda: sp.psd2d(np.full((2, 8, 8), 1e200)), "images"),
    (lambda: sp.colour_eigen_psd(np.full((2, 8, 8, 3), 1e200)), "images"),
    (lambda: sp.pca_spectrum(np.random.default_rng(0).random((10, 4)) * 1e200), "data"),
    (lambda: sp.welch_psd(np.full(512, 1e200), nperseg=64), "x"),
])
def test_an_estimate_beyond_float64_names_its_input(call, name) -> None:
    """Audit fault 6: "psd2d result must be finite" / "pca_spectrum result must be finite" named no input."""
    with pytest.raises(ValueError, match=rf"^{name}: values too large"):
        call()


_FIELD = np.random.default_rng(7).standard_normal((4, 8, 8, 3))


@pytest.mark.parametrize("call, name", [
    (lambda s: sp.psd2d(_FIELD[..., 0] * s), "images"),
    (lambda s: sp.colour_eigen_psd(_FIELD * s), "images"),
    (lambda s: sp.pca_spectrum(_FIELD.reshape(4, -1) * s), "data"),
    (lambda s: sp.pca_spectrum(_FIELD.reshape(4, -1) * s, center=False), "data"),
    (lambda s: sp.welch_psd(_FIELD.reshape(2, -1) * s, nperseg=64), "x"),
    (lambda s: mc.empirical_psd(_FIELD[..., 0] * s), "samples"),
    (lambda s: mc.empirical_psd(_FIELD.reshape(4, -1) * s, basis=np.eye(192)), "samples"),
    (lambda s: np.abs(mc.empirical_cross_spectrum(np.moveaxis(_FIELD, -1, 1) * s)), "samples"),
])
def test_an_estimate_below_float64_names_its_input_and_tiny_data_keep_their_digits(call, name) -> None:
    """review of 4 December: data of values ~1e-170 (second moments ~1e-340) gave an all-zero spectrum, a valid
    spectrum to every later check, where measured_spectrum refused them. Now refused by name; and data at 1e-150
    (second moments ~1e-300, normal, but squared pixel by pixel partly subnormal) give the spectrum of the unit data
    times 1e-300 to rounding. Multiplying data by a power of two multiplies the estimate by its square exactly."""
    with pytest.raises(ValueError, match=rf"^{name}: values too small for .* normal range"):
        call(1e-170)
    unit = call(1.0)
    unit = unit[1] if isinstance(unit, tuple) else unit
    tiny = call(1e-150)
    tiny = tiny[1] if isinstance(tiny, tuple) else tiny
    big = unit > 1e-12 * unit.max()
    np.testing.assert_allclose(tiny[big], unit[big] * 1e-300, rtol=1e-13)
    exact = call(2.0**-500)
    exact = exact[1] if isinstance(exact, tuple) else exact
    np.testing.assert_array_equal(exact, np.ldexp(unit, -1000))
    zero = call(0.0)
    assert not np.any(zero[1] if isinstance(zero, tuple) else zero)  # all-zero data: the zero spectrum, no error


def test_second_moments_below_float64_are_refused_at_every_data_scale() -> None:
    """review of 4 December: data whose peak 2^-500 needs no rescaling skipped the too-small check, so a long field
    (2^23 modes) gave a cross-periodogram all subnormal (2^-500^2 / 2^23 = 2^-1023) while the periodogram refused."""
    x = np.zeros((1, 2, 2**23))
    x[0, 0, 0] = 2.0**-500
    with pytest.raises(ValueError, match=r"^samples: values too small for their cross-periodogram"):
        mc.empirical_cross_spectrum(x)
    with pytest.raises(ValueError, match=r"^samples: values too small for their periodogram"):
        mc.empirical_psd(x[:, 0])


def test_welch_psd_takes_every_positive_fs() -> None:
    """scipy.signal.welch divides by fs (overflow below fs ~ 1e-308, with RuntimeWarnings, once refused here); the
    spectrum does not depend on fs, so symsched asks welch for fs = 1 and labels the frequencies k fs / n itself:
    every positive fs, subnormal ones too, gives the same values and finite frequencies, without a warning."""
    x = np.random.default_rng(0).standard_normal(256)
    ref = sp.welch_psd(x, nperseg=64)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fs in (1e-310, 1e-300, 7.0, 1e300):
            f, p = sp.welch_psd(x, nperseg=64, fs=fs)
            np.testing.assert_array_equal(p, ref)
            assert np.all(np.isfinite(f)) and f[1] == pytest.approx(fs / 64, rel=1e-15, abs=0)


def test_dataset_mean_keeps_the_dc_term_of_data_far_from_zero() -> None:
    """audit of 4 December: the dataset mean was removed by subtracting its share from the DC term of the raw second
    moment at the end: for data with mean/std = 1e6 that cancelled two numbers ~1e12 times the answer (DC 1.375 for
    0.98), at 1e8 it came out 0, and colour data of rank 1 grew a second DC mode. Reference: centre first, then the
    periodogram (and eigh of the 3x3 cross-spectrum), computed here."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((200, 16, 16))
    for offset in (1e4, 1e6, 1e8):
        x = base + offset
        c = x - x.mean(axis=0, keepdims=True).mean(axis=(1, 2), keepdims=True)
        want = (np.abs(np.fft.fft2(c, axes=(1, 2))) ** 2).mean(axis=0) / 256
        got = sp.psd2d(x, mean="dataset")
        np.testing.assert_allclose(got[0, 0], want[0, 0], rtol=1e-7)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
        rgb = base[..., None] * np.array([1.0, 0.5, 0.25]) + offset  # rank 1 in colour: one nonzero mode
        modes = sp.colour_eigen_psd(rgb, mean="dataset")
        assert modes[0, 0, 1] < 1e-9 * modes[0, 0, 0] and modes[0, 0, 2] < 1e-9 * modes[0, 0, 0]


def test_an_empty_source_is_refused_not_read_as_the_working_directory(tmp_path, monkeypatch) -> None:
    """audit of 4 December: load_spectrum("") estimated a spectrum from the images in the working directory."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="source must not be empty"):
        sp.load_spectrum("")


def test_welch_psd_does_not_depend_on_fs_at_its_extremes() -> None:
    """audit of 4 December: fs reached scipy's 1/fs density scaling and was multiplied back: subnormal at fs = 1e300
    for small data (2.7e-8 off), refused at fs = 1e-300 for large data. fs only labels the frequencies."""
    rng = np.random.default_rng(1)
    for scale in (1e-8, 1.0, 1e5):
        x = scale * rng.standard_normal(4096)
        ref = sp.welch_psd(x, nperseg=64)[1]
        for fs in (1e-300, 1e300):
            f, p = sp.welch_psd(x, nperseg=64, fs=fs)
            np.testing.assert_array_equal(p, ref)
            np.testing.assert_allclose(f, np.fft.fftfreq(64, 1 / fs), rtol=1e-15)


def test_load_spectrum_takes_a_bytes_path(tmp_path) -> None:
    """Audit of 5 December: load_spectrum(b"abe.npy") raised pathlib's TypeError ("argument should be a str
    object..."), naming no argument; a file-system name as bytes is a path, as open() takes it."""
    S = np.array([[1.0, 0.5], [0.25, 2.0]])
    np.save(tmp_path / "S.npy", S)
    np.testing.assert_array_equal(sp.load_spectrum(os.fsencode(str(tmp_path / "S.npy"))), S)
    with pytest.raises(ValueError, match=r"^source .* does not exist"):
        sp.load_spectrum(os.fsencode(str(tmp_path / "missing")))
    with pytest.raises(ValueError, match=r"^source must be 'builtin:natural-patches', a \.npy file"):
        sp.load_spectrum(3)


def test_load_spectrum_names_the_bad_entry_of_the_file(tmp_path) -> None:
    """Audit 3b B4: a NaN in a spectrum file read "must be finite (got '/tmp/x.npy'[1] = nan)", an index into the
    path; the entry is now named as an entry of the file."""
    f = tmp_path / "x.npy"
    np.save(f, np.array([1.0, np.nan]))
    import re

    with pytest.raises(ValueError, match=rf"^spectrum in {re.escape(repr(str(f)))} must be finite \(got entry \[1\] = "
                                         r"nan\)$"):
        sp.load_spectrum(f)
    np.save(f, np.array([[1.0, 2.0], [np.inf, 1.0]]))
    with pytest.raises(ValueError, match=r"must be finite \(got entry \[1, 0\] = inf\)$"):
        sp.load_spectrum(f)


def test_a_zero_dimensional_spectrum_file_loads_as_an_array(tmp_path) -> None:
    """Audit of 6 December: a 0-d .npy came back as a NumPy scalar (as_spectrum's "+ 0.0"), not the documented
    ndarray of the file's shape."""
    np.save(tmp_path / "s.npy", np.array(3.0))
    S = sp.load_spectrum(tmp_path / "s.npy")
    assert isinstance(S, np.ndarray) and S.shape == () and S.dtype == np.float64 and float(S) == 3.0
