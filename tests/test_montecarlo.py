"""Monte Carlo witness: fields, signal-space samplers, periodogram statistics, closed-form agreement.

Every comparison uses the exact sampling distribution of the periodogram (see ``mc_helpers``):
a correct closed form fails a test with probability <= 1e-6; all tests are seeded/derandomised.
"""

from __future__ import annotations

import itertools
import math
import re

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import symsched
from symsched import montecarlo as mc
from symsched import schedules

from mc_helpers import (
    FAMILYWISE_ALPHA,
    alpha_bars,
    assert_psd_matches,
    assert_psd_rejects,
    linear_ddpm_alphas_cumprod,
    make_spectrum,
    random_cross_spectrum,
    random_orthonormal,
    spectra,
    ve_sigmas,
    vp_settings,
)

N_EXAMPLES = 40
PROPERTY = settings(
    derandomize=True, deadline=None, max_examples=N_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: per-example level so that the whole test function has family-wise false alarm <= 1e-6
ALPHA_EXAMPLE = FAMILYWISE_ALPHA / N_EXAMPLES


# ------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------
def test_dof_and_independent_bins_counts():
    assert mc.psd_dof((16,)).tolist() == [1] + [2] * 7 + [1] + [2] * 7
    assert mc.psd_dof((5,)).tolist() == [1, 2, 2, 2, 2]
    assert int(mc.independent_bins((16,)).sum()) == 9
    assert int(mc.independent_bins((5,)).sum()) == 3
    assert int(mc.independent_bins((8, 8)).sum()) == (64 + 4) // 2
    assert int(mc.independent_bins((5, 8)).sum()) == (40 + 2) // 2
    # a channel axis that is not transformed multiplies the count
    assert int(mc.independent_bins((8, 8, 3), axes=(0, 1)).sum()) == 3 * 34
    assert mc.psd_dof((4, 3), axes=()).tolist() == [[1] * 3] * 4
    assert int(mc.independent_bins((7,), axes=()).sum()) == 7
    # exactly one representative of every pair {k, -k}
    mask = mc.independent_bins((6, 5))
    for k in zip(*np.nonzero(mask)):
        kneg = ((-k[0]) % 6, (-k[1]) % 5)
        assert kneg == k or not mask[kneg]


def test_zscores_are_the_exact_chi2_law():
    n = 50
    P = np.array([2.0, 1.0, 3.0, 1.0])  # 1-D grid of 4: bins 0 and 2 self-conjugate
    ph = np.array([2.5, 0.8, 2.0, 1.3])
    z = mc.psd_zscores(ph, P, n)
    nu = np.array([n, 2 * n, n, 2 * n])
    expect = stats.norm.ppf(stats.chi2.cdf(nu * ph / P, nu))
    np.testing.assert_allclose(z, expect, rtol=1e-9, atol=1e-9)
    # far tails stay finite and signed
    z = mc.psd_zscores(np.array([1e-3, 5.0, 1e-3, 5.0]), np.ones(4), 2000)
    assert np.all(np.isfinite(z)) and z[0] < -30 and z[1] > 30
    # null modes
    z = mc.psd_zscores(np.array([0.0, 1e-30, 1.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0]), 10)
    assert z[0] == 0 and z[1] == 0
    z = mc.psd_zscores(np.array([1e-3, 0.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0]), 10)
    assert z[0] > 30 and z[1] == 0  # an excess of 1e7 times the rounding floor 1e-10
    z = mc.psd_zscores(np.array([1e-3, 0.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0]), 10, zero_tol=0, atol=0)
    assert z[0] == np.inf and z[1] == 0  # no floor: any power at a zero mode


def test_zscores_are_standard_normal_under_h0():
    S = make_spectrum((16, 16), "power")
    n = 300
    ph = mc.empirical_psd(mc.gaussian_field(S, n, seed=11))
    z = mc.psd_zscores(ph, S, n)[mc.independent_bins(S.shape)]
    assert stats.kstest(z, "norm").pvalue > 1e-4
    assert abs(z.mean()) < 5 / math.sqrt(z.size)


def test_band_confidence_and_max_z_agree():
    P = make_spectrum((8, 8), "bandpass")
    n = 1000
    lo, hi = mc.psd_band(P, n, alpha=1e-3)
    m = int(mc.independent_bins(P.shape).sum())
    with mpmath.workdps(40):  # Šidák's per-bin level 1 - (1 - alpha)^(1/m)
        zc = stats.norm.isf(float(1 - (1 - mpmath.mpf("1e-3")) ** (mpmath.mpf(1) / m)) / 2)
    exact = dict(zero_tol=0.0, atol=0.0)  # no rounding floor: the exact chi-square scores
    np.testing.assert_allclose(np.abs(mc.psd_zscores(hi, P, n, **exact)), zc, rtol=1e-8)
    np.testing.assert_allclose(np.abs(mc.psd_zscores(lo, P, n, **exact)), zc, rtol=1e-8)
    # the confidence interval of an estimate equal to the truth covers the truth
    clo, chi = mc.psd_confidence(P, n, alpha=0.05)
    assert np.all(clo < P) and np.all(P < chi)
    # Sidak p-value of a single bin is the two-sided normal p-value
    r = mc.max_z_test(np.array([2.0]), axes=())
    assert r.n_independent == 1
    assert r.pvalue == pytest.approx(2 * stats.norm.sf(2.0), rel=1e-12)
    r = mc.max_z_test(np.array([0.5, -3.0, 1.0]), axes=())
    assert r.max_abs_z == 3.0 and r.argmax == (1,)
    assert r.pvalue == pytest.approx(1 - (1 - 2 * stats.norm.sf(3.0)) ** 3, rel=1e-10)


def _independent_bins_by_counting(shape, axes):
    """m counted by brute force: unordered pairs {k, -k} over the FFT axes, times the other axes' sizes."""
    axes = tuple(range(len(shape))) if axes is None else tuple(axes)
    grid = [shape[a] for a in axes]
    pairs = set()
    for k in itertools.product(*[range(n) for n in grid]):
        pairs.add(min(k, tuple((-ki) % n for ki, n in zip(k, grid))))
    return len(pairs) * math.prod(n for a, n in enumerate(shape) if a not in axes)


def _psd_hat_with_score(P, n, nu, z):
    """The periodogram value whose exact chi^2_nu score is z: nu psd_hat / P = F^-1(Phi(z))."""
    q = stats.chi2.isf(stats.norm.sf(z), nu) if z > 0 else stats.chi2.ppf(stats.norm.cdf(z), nu)
    return P * q / nu


#: (shape, FFT axes, alpha, a generic bin, a self-conjugate bin); axes=() is a PCA basis (all nu = n)
THRESHOLD_CASES = [
    ((16, 16), None, 1e-6, (1, 2), (0, 8)),
    ((9,), None, 1e-3, (2,), (0,)),
    ((6, 5, 3), (0, 1), 1e-6, (1, 2, 1), (3, 0, 2)),
    ((10,), (), 0.05, None, (4,)),
]


@pytest.mark.parametrize("shape,axes,alpha,generic,selfconj", THRESHOLD_CASES)
def test_acceptance_threshold_is_two_sided_sidak_at_half_alpha(shape, axes, alpha, generic, selfconj):
    """z_crit = Phi^-1(1 - b / 2), b = 1 - (1 - alpha/2)^(1/m) (the largest-|z| half of psd_check), computed here
    from scipy and a brute-force m; a statistic just inside the threshold (or the psd_band edge at alpha/2) passes,
    just outside fails, in either tail (one bin off: the chi-square sum stays far below its threshold)."""
    n = 500
    m = _independent_bins_by_counting(shape, axes)
    with mpmath.workdps(40):  # 1 - (1 - alpha/2)^(1/m) cancels in float64
        per_bin = float(1 - (1 - mpmath.mpf(alpha) / 2) ** (mpmath.mpf(1) / m))
    zc = stats.norm.isf(per_bin / 2)
    P = np.linspace(0.5, 3.0, math.prod(shape)).reshape(shape)
    lo, hi = mc.psd_band(P, n, alpha=alpha / 2, axes=axes)
    res = mc.psd_check(P, P, n, alpha=alpha, axes=axes)
    assert res.passed and res.n_independent == m and res.alpha == alpha
    assert res.z_crit == pytest.approx(zc, rel=1e-12)
    bins = [(selfconj, n)] + ([(generic, 2 * n)] if generic is not None else [])
    for k, nu in bins:
        fft_axes = tuple(range(len(shape))) if axes is None else axes
        partner = list(k)
        for a in fft_axes:
            partner[a] = (-k[a]) % shape[a]
        partner = tuple(partner)
        assert (partner == k) == (nu == n)  # self-conjugate bins have n dof, the others 2n
        # the band edges are the chi^2_nu quantiles at per_bin / 2
        assert hi[k] == pytest.approx(P[k] * stats.chi2.isf(per_bin / 2, nu) / nu, rel=1e-10)
        assert lo[k] == pytest.approx(P[k] * stats.chi2.ppf(per_bin / 2, nu) / nu, rel=1e-10)
        for sign in (1.0, -1.0):
            for factor, inside in ((1 - 1e-6, True), (1 + 1e-6, False)):
                hat = P.copy()
                hat[k] = hat[partner] = _psd_hat_with_score(P[k], n, nu, sign * factor * zc)
                r = mc.psd_check(hat, P, n, alpha=alpha, axes=axes)
                assert r.passed == inside, (k, sign, factor, r.max_abs_z, zc)
                assert r.passed == (r.pvalue > alpha)  # the verdict and the reported p-value agree
                assert r.chi2 == pytest.approx((factor * zc) ** 2, rel=1e-8)
                assert r.chi2_pvalue == pytest.approx(stats.chi2.sf((factor * zc) ** 2, m), rel=1e-6)
                assert r.max_abs_z == pytest.approx(factor * zc, rel=1e-8) and r.argmax in (k, partner)
                # Sidak p-value of the same statistic, from its definition
                p = mc.max_z_test(mc.psd_zscores(hat, P, n, axes=axes), axes=axes)
                assert p.n_independent == m
                assert p.pvalue == pytest.approx(1 - (1 - 2 * stats.norm.sf(factor * zc)) ** m, rel=1e-6)
                # the psd_band edge, nudged in or out, agrees with psd_check
                edge = hi[k] if sign > 0 else lo[k]
                hat[k] = hat[partner] = edge * (factor if sign > 0 else 2 - factor)
                assert mc.psd_check(hat, P, n, alpha=alpha, axes=axes).passed == inside


def test_statistics_validate_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        mc.psd_zscores(np.ones(4), np.ones(5), 10)
    with pytest.raises(ValueError, match="n_samples"):
        mc.psd_zscores(np.ones(4), np.ones(4), 0)
    with pytest.raises(ValueError, match="psd_true"):
        mc.psd_zscores(np.ones(4), -np.ones(4), 10)
    with pytest.raises(ValueError, match="alpha"):
        mc.psd_check(np.ones(4), np.ones(4), 10, alpha=0.0)
    with pytest.raises(ValueError, match="axes"):
        mc.psd_dof((4, 4), axes=(2,))
    with pytest.raises(ValueError, match="samples"):
        mc.empirical_psd(np.ones(4))


def test_empirical_psd_streams_batches_and_basis():
    S = make_spectrum((12,), "arbitrary", seed=3)
    x = mc.gaussian_field(S, 100, seed=1)
    full = mc.empirical_psd(x)
    streamed = mc.empirical_psd(iter([x[:30], x[30:]]))
    np.testing.assert_allclose(streamed, full, rtol=1e-12)
    # Parseval: mean over bins of the PSD is the mean power
    np.testing.assert_allclose(full.mean(), np.mean(x**2), rtol=1e-12)
    # identity basis: mean square of each coordinate
    np.testing.assert_allclose(mc.empirical_psd(x, basis=np.eye(12)), np.mean(x**2, axis=0), rtol=1e-12)
    # per-channel PSD over a subset of axes
    y = np.stack([x, 2 * x], axis=1)  # (n, 2, 12)
    np.testing.assert_allclose(mc.empirical_psd(y, axes=(1,))[1], 4 * full, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# Gaussian fields
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(32,), (9,), (16, 16), (5, 8), (4, 4, 4)])
def test_gaussian_field_has_the_requested_psd(shape):
    S = make_spectrum(shape, "zeros" if len(shape) == 2 else "power", seed=2)
    n = 3000
    x = mc.gaussian_field(S, n, seed=5)
    assert x.shape == (n, *shape) and x.dtype == np.float64
    assert_psd_matches(mc.empirical_psd(x), S, n, what=f"field {shape}")
    np.testing.assert_array_equal(x, mc.gaussian_field(S, n, seed=5))


def test_gaussian_field_rejects_bad_spectra():
    S = make_spectrum((8,), "power")
    bad = S.copy()
    bad[1] *= 1.5  # S[1] != S[-1]
    with pytest.raises(ValueError, match="Hermitian"):
        mc.gaussian_field(bad, 10)
    with pytest.raises(ValueError, match="non-negative"):
        mc.gaussian_field(-S, 10)
    with pytest.raises(ValueError, match="n_samples"):
        mc.gaussian_field(S, 0)
    with pytest.raises(ValueError, match="at least 1-D"):
        mc.gaussian_field(1.0, 10)
    # a tiny rounding-level asymmetry is accepted
    ok = S.copy()
    ok[1] *= 1 + 1e-12
    mc.gaussian_field(ok, 2)


@pytest.mark.parametrize("complex_", [False, True])
def test_gaussian_field_multichannel_cross_spectrum(complex_):
    Sig = random_cross_spectrum((8, 8), 3, complex_=complex_, seed=4)
    n = 3000
    x = mc.gaussian_field_multichannel(Sig, n, seed=9)
    assert x.shape == (n, 3, 8, 8) and x.dtype == np.float64
    ch = mc.empirical_cross_spectrum(x)
    assert ch.shape == (8, 8, 3, 3)
    lam, V = mc.cross_spectrum_modes(Sig)
    assert_psd_matches(mc.mode_psd(ch, V), lam, n, axes=(0, 1), what="cross-spectrum modes")
    # channel PSDs equal diag(Sigma)
    for c in range(3):
        assert_psd_matches(mc.empirical_psd(x[:, c]), Sig[..., c, c].real, n, what=f"channel {c}")
    # off-diagonal entries in the mode basis are ~0: |Y_i Y_j^*| averages to O(sqrt(P_i P_j / n))
    M = np.conj(np.swapaxes(V, -1, -2)) @ ch @ V
    off = np.abs(M[..., 0, 1]) / np.sqrt(lam[..., 0] * lam[..., 1])
    assert off.max() < 8 / math.sqrt(n)


def test_gaussian_field_multichannel_validation():
    Sig = random_cross_spectrum((4, 4), 2, seed=1)
    with pytest.raises(ValueError, match=r"\(\*grid, C, C\)"):
        mc.gaussian_field_multichannel(Sig[..., 0], 2)
    bad = Sig.copy()
    bad[1, 1, 0, 1] += 1.0
    with pytest.raises(ValueError, match="Hermitian"):
        mc.gaussian_field_multichannel(bad, 2)
    bad = Sig.copy()
    bad[1, 1] = np.diag([1.0, -1.0])
    bad[3, 3] = np.diag([1.0, -1.0])
    with pytest.raises(ValueError, match="positive semi-definite"):
        mc.gaussian_field_multichannel(bad, 2)
    bad = Sig.copy()
    bad[1, 2] = 2 * bad[1, 2]
    with pytest.raises(ValueError, match="conj"):
        mc.gaussian_field_multichannel(bad, 2)


def test_gaussian_field_eigen():
    d = 10
    U = random_orthonormal(d, seed=3)
    S = np.linspace(0.0, 4.0, d)
    n = 4000
    x = mc.gaussian_field_eigen(U, S, n, seed=2)
    assert x.shape == (n, d)
    assert_psd_matches(mc.empirical_psd(x, basis=U), S, n, axes=(), what="eigen field")
    with pytest.raises(ValueError, match="orthonormal"):
        mc.gaussian_field_eigen(U * 1.01, S, 2)
    with pytest.raises(ValueError, match=r"\(10, 10\)"):
        mc.gaussian_field_eigen(U, S[:-1], 2)
    with pytest.raises(ValueError, match="square"):
        mc.gaussian_field_eigen(U[:, :-1], S, 2)


def test_wiener_denoiser_identities():
    S = make_spectrum((8, 8), "power")
    ab = 0.3
    x = mc.gaussian_field(ab * S + 1 - ab, 5, seed=0)
    x0 = mc.wiener_denoiser(x, S, ab, output="x0")
    eps = mc.wiener_denoiser(x, S, ab, output="eps")
    np.testing.assert_allclose(math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps, x, atol=1e-12)
    # eigenbasis version: U diag(g) U^T x with g = sqrt(1 - ab) / lam
    d = 6
    U = random_orthonormal(d, seed=2)
    Sd = np.array([0.0, 0.1, 1.0, 2.0, 5.0, 9.0])
    y = np.random.default_rng(0).standard_normal((4, d))
    # (at ab = 0.3, not 0.5, where sqrt(ab) = sqrt(1 - ab) and ab S + ab = ab S + 1 - ab would hide a swap)
    lam = 0.3 * Sd + 0.7
    expect = y @ (U @ np.diag(np.sqrt(0.7) / lam) @ U.T).T
    np.testing.assert_allclose(mc.wiener_denoiser(y, Sd, 0.3, basis=U), expect, atol=1e-12)
    expect = y @ (U @ np.diag(np.sqrt(0.3) * Sd / lam) @ U.T).T
    np.testing.assert_allclose(mc.wiener_denoiser(y, Sd, 0.3, basis=U, output="x0"), expect, atol=1e-12)
    # the FFT version is the same matrix for the circulant covariance
    S1 = make_spectrum((6,), "arbitrary", seed=1)
    F = np.fft.fft(np.eye(6), axis=0)
    C = np.real(np.conj(F).T @ np.diag(np.sqrt(0.7) / (0.3 * S1 + 0.7)) @ F) / 6
    np.testing.assert_allclose(mc.wiener_denoiser(y, S1, 0.3), y @ C.T, atol=1e-12)
    with pytest.raises(ValueError, match="output"):
        mc.wiener_denoiser(x, S, ab, output="v")
    with pytest.raises(ValueError, match="alpha_bar"):
        mc.wiener_denoiser(x, S, 1.0)


# ------------------------------------------------------------------------------------------
# samplers: determinism, validation, identities that need no closed form
# ------------------------------------------------------------------------------------------
def test_samplers_validate_and_are_deterministic(capsys):
    S = make_spectrum((8,), "power")
    ab = np.array([0.1, 0.5])
    a = mc.sample(S, ab, sampler="ddpm", n_samples=7, seed=3, batch_size=3, progress=True)
    b = mc.sample(S, ab, sampler="ddpm", n_samples=7, seed=3, batch_size=3, progress=False)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (7, 8)
    with pytest.raises(ValueError, match="alpha_bar"):
        mc.sample(S, ab[::-1], n_samples=2)
    with pytest.raises(ValueError, match="sampler"):
        mc.sample(S, ab, sampler="euler", n_samples=2)
    with pytest.raises(ValueError, match="eta"):
        mc.sample(S, ab, eta=1.5, n_samples=2)
    with pytest.raises(ValueError, match="variance"):
        mc.sample(S, ab, sampler="ddpm", variance="large", n_samples=2)
    with pytest.raises(ValueError, match="init"):
        mc.sample(S, ab, init="noise", n_samples=2)
    with pytest.raises(ValueError, match="batch_size"):
        mc.sample(S, ab, n_samples=2, batch_size=0)
    with pytest.raises(ValueError, match="sigmas"):
        mc.sample_ve(S, [1.0, 2.0], n_samples=2)
    with pytest.raises(ValueError, match="1-D"):
        mc.sample(np.ones((2, 2)), ab, n_samples=2, basis=np.eye(4))


def test_one_ddim_step_from_exact_start_is_the_wiener_variance():
    """MATH 7.1, independent of the closed-form code: P = ab S^2 / (ab S + 1 - ab)."""
    S = make_spectrum((32,), "power")
    ab = 0.2
    n = 4000
    x = mc.sample(S, [ab], sampler="ddim", init="exact", n_samples=n, seed=1)
    assert_psd_matches(mc.empirical_psd(x), ab * S**2 / (ab * S + 1 - ab), n, what="MATH 7.1")
    # and the VE Euler step from sigma to 0 is the same Wiener filter
    sig = math.sqrt((1 - ab) / ab)
    y = mc.sample_ve(S, [sig], sampler="euler", init="exact", n_samples=n, seed=1)
    assert_psd_matches(mc.empirical_psd(y), S**2 / (S + sig**2), n, what="VE Wiener")


# ------------------------------------------------------------------------------------------
# closed form == Monte Carlo (acceptance settings of issue #3)
# ------------------------------------------------------------------------------------------
ACCEPT = [
    dict(sampler="ddim", eta=0.0),
    dict(sampler="ddim", eta=1.0),
    dict(sampler="ddpm", variance="posterior"),
    dict(sampler="ddpm", variance="beta"),
]


@pytest.mark.parametrize("kw", ACCEPT, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_acceptance_32x32_4000_samples(kw):
    """|z| < 6 at every frequency of a 32x32 grid for 4000 samples (10 DDPM-grid levels)."""
    S = make_spectrum((32, 32), "power", exponent=2.0)
    abar = linear_ddpm_alphas_cumprod()
    ab = abar[np.arange(10) * 100][::-1]
    n = 4000
    psd = mc.empirical_psd(mc.iter_sample(S, ab, n_samples=n, seed=2024, **kw))
    P = symsched.output_spectrum(S, ab, **kw)
    z = mc.psd_zscores(psd, P, n)
    assert np.max(np.abs(z)) < 6.0  # P(|z| > 6) = 2.0e-9 per bin (normal approximation): 1.0e-6 over 516 bins
    res = assert_psd_matches(psd, P, n, what=str(kw))
    assert res.n_independent == (1024 + 4) // 2


# ------------------------------------------------------------------------------------------
# property-based: random spectra, schedules, settings
# ------------------------------------------------------------------------------------------
@PROPERTY
@given(S=spectra(), ab=alpha_bars(), kw=vp_settings(), seed=st.integers(0, 2**31))
def test_property_vp_stationary(S, ab, kw, seed):
    n = 2000
    psd = mc.empirical_psd(mc.sample(S, ab, n_samples=n, seed=seed, **kw))
    assert_psd_matches(psd, symsched.output_spectrum(S, ab, **kw), n, alpha=ALPHA_EXAMPLE, what=str(kw))


@PROPERTY
@given(S=spectra(), sig=ve_sigmas(), sampler=st.sampled_from(["euler", "heun"]),
       init=st.sampled_from(["white", "exact"]), seed=st.integers(0, 2**31))
def test_property_ve_stationary(S, sig, sampler, init, seed):
    n = 2000
    psd = mc.empirical_psd(mc.sample_ve(S, sig, sampler=sampler, init=init, n_samples=n, seed=seed))
    P = symsched.output_spectrum_ve(S, sig, sampler=sampler, init=init)
    assert_psd_matches(psd, P, n, alpha=ALPHA_EXAMPLE, what=f"{sampler} {init}")


@PROPERTY
@given(d=st.integers(2, 16), kind=st.sampled_from(["arbitrary", "zeros", "power"]), ab=alpha_bars(),
       kw=vp_settings(), ve=st.booleans(), seed=st.integers(0, 2**31))
def test_property_eigenbasis(d, kind, ab, kw, ve, seed):
    """Non-stationary data N(0, U diag(S) U^T): the sampler runs in signal space, tested per PCA mode."""
    U = random_orthonormal(d, seed=seed % 1000)
    S = make_spectrum((d,), kind, seed=seed % 997) * 5.0
    n = 3000
    if ve:
        sig = np.sqrt((1 - ab) / ab)  # ab increasing -> sigma decreasing, noisiest first
        x = mc.sample_ve(S, sig, sampler="heun", init=kw["init"], n_samples=n, seed=seed, basis=U)
        P = symsched.output_spectrum_ve(S, sig, sampler="heun", init=kw["init"])
    else:
        x = mc.sample(S, ab, n_samples=n, seed=seed, basis=U, **kw)
        P = symsched.output_spectrum(S, ab, **kw)
    assert x.shape == (n, d)
    assert_psd_matches(mc.empirical_psd(x, basis=U), P, n, axes=(), alpha=ALPHA_EXAMPLE, what=str(kw))


@PROPERTY
@given(grid=st.sampled_from([(8, 8), (6, 5), (16,)]), complex_=st.booleans(), rank=st.sampled_from([None, 1, 2]),
       ab=alpha_bars(max_k=15), kw=vp_settings(), seed=st.integers(0, 2**31))
def test_property_rgb_multichannel(grid, complex_, rank, ab, kw, seed):
    """RGB fields with a random (possibly rank-deficient, complex) colour cross-spectrum.

    The sampler applies the C x C Wiener matrix per frequency; per eigen-mode of Sigma(k) the
    closed form with S = eigenvalue must hold (the modes are measured with the true eigenvectors).
    """
    Sig = random_cross_spectrum(grid, 3, complex_=complex_, rank=rank, seed=seed % 4096)
    n = 2000
    x = mc.sample_multichannel(Sig, ab, n_samples=n, seed=seed, **kw)
    assert x.shape == (n, 3, *grid)
    lam, V = mc.cross_spectrum_modes(Sig)
    P = symsched.output_spectrum(lam, ab, **kw)
    axes = tuple(range(len(grid)))
    psd = mc.mode_psd(mc.empirical_cross_spectrum(x), V)
    assert_psd_matches(psd, P, n, axes=axes, alpha=ALPHA_EXAMPLE, what=f"RGB {kw}")


def test_multichannel_ve_heun():
    Sig = random_cross_spectrum((8, 8), 3, seed=8)
    sig = np.array([30.0, 4.0, 1.0, 0.2])
    n = 3000
    x = mc.sample_multichannel_ve(Sig, sig, sampler="heun", init="exact", n_samples=n, seed=1)
    lam, V = mc.cross_spectrum_modes(Sig)
    P = symsched.output_spectrum_ve(lam, sig, sampler="heun", init="exact")
    assert_psd_matches(mc.mode_psd(mc.empirical_cross_spectrum(x), V), P, n, axes=(0, 1), what="RGB heun")


# ------------------------------------------------------------------------------------------
# power: the same check rejects wrong closed forms (deterministically, by a wide margin)
# ------------------------------------------------------------------------------------------
POWER_S = make_spectrum((32,), "power", exponent=2.0, scale=10.0)
POWER_N = 4000


def test_power_ddpm_variance_swapped():
    ab = np.array([0.02, 0.3, 0.9])
    for right, wrong in [("posterior", "beta"), ("beta", "posterior")]:
        psd = mc.empirical_psd(mc.sample(POWER_S, ab, sampler="ddpm", variance=right, n_samples=POWER_N, seed=7))
        assert_psd_matches(psd, symsched.output_spectrum(POWER_S, ab, sampler="ddpm", variance=right), POWER_N)
        assert_psd_rejects(psd, symsched.output_spectrum(POWER_S, ab, sampler="ddpm", variance=wrong), POWER_N,
                           what=f"ddpm {right} vs {wrong}")


@pytest.mark.parametrize("eta,wrong", [(1.0, 0.9), (0.9, 0.99)])
def test_power_eta_off_by_ten_percent(eta, wrong):
    ab = np.array([0.5, 0.99])  # two steps: the eta-dependence is largest here (log ratio ~0.3-0.4)
    psd = mc.empirical_psd(mc.sample(POWER_S, ab, sampler="ddim", eta=eta, n_samples=POWER_N, seed=8))
    assert_psd_matches(psd, symsched.output_spectrum(POWER_S, ab, sampler="ddim", eta=eta), POWER_N)
    assert_psd_rejects(psd, symsched.output_spectrum(POWER_S, ab, sampler="ddim", eta=wrong), POWER_N,
                       what=f"eta {eta} vs {wrong}")


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_power_exact_start_instead_of_white(sampler):
    ab = np.array([0.3, 0.6, 0.9])  # a truncated start: lambda_K differs from 1 by ~30%
    psd = mc.empirical_psd(mc.sample(POWER_S, ab, sampler=sampler, init="white", n_samples=POWER_N, seed=9))
    assert_psd_matches(psd, symsched.output_spectrum(POWER_S, ab, sampler=sampler, init="white"), POWER_N)
    assert_psd_rejects(psd, symsched.output_spectrum(POWER_S, ab, sampler=sampler, init="exact"), POWER_N,
                       what=f"{sampler} exact vs white start")


def test_power_ve_heun_vs_euler():
    sig = np.array([20.0, 2.0, 0.5])
    psd = mc.empirical_psd(mc.sample_ve(POWER_S, sig, sampler="heun", n_samples=POWER_N, seed=10))
    assert_psd_matches(psd, symsched.output_spectrum_ve(POWER_S, sig, sampler="heun"), POWER_N)
    assert_psd_rejects(psd, symsched.output_spectrum_ve(POWER_S, sig, sampler="euler"), POWER_N, what="heun/euler")


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------
def test_cli_validate_runs_and_plots(tmp_path, capsys):
    from symsched.cli import main

    out = tmp_path / "psd.png"
    rc = main(["validate", "--sampler", "ddpm", "--steps", "5", "--samples", "400", "--shape", "16x16",
               "--seed", "1", "--plot", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "max |z|" in text and "p-value" in text and "sum of z^2" in text and "-> PASS" in text
    # the printed threshold is Šidák's two-sided one at alpha / 2: m = (256 + 4) / 2 bins on 16x16, alpha 1e-6
    printed = float(re.search(r"\|z\| <= ([0-9.]+) and", text).group(1))
    with mpmath.workdps(40):
        per_bin = float(1 - (1 - mpmath.mpf("5e-7")) ** (mpmath.mpf(1) / 130))
    assert printed == pytest.approx(stats.norm.isf(per_bin / 2), abs=5e-4)
    assert out.is_file() and out.stat().st_size > 10_000
    rc = main(["validate", "--sampler", "ddim", "--eta", "0.5", "--steps", "3", "--samples", "300",
               "--shape", "32", "--init", "exact"])
    assert rc == 0


def test_cli_validate_with_a_spectrum_file(tmp_path, capsys):
    from symsched.cli import main

    path = tmp_path / "S.npy"
    np.save(path, make_spectrum((8, 8), "bandpass"))
    rc = main(["validate", "--spectrum", str(path), "--steps", "4", "--samples", "300", "--sampler", "ddpm",
               "--variance", "beta", "--no-progress"])
    assert rc == 0
    assert "8x8" in capsys.readouterr().out
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([1.0, 2.0, 3.0]))  # not Hermitian on its FFT grid
    assert main(["validate", "--spectrum", str(bad), "--samples", "10"]) == 2
    assert "Hermitian" in capsys.readouterr().err


def test_cli_validate_rejects_bad_arguments(capsys):
    from symsched.cli import main

    assert main(["validate", "--shape", "0x4", "--samples", "10"]) == 2
    assert "shape" in capsys.readouterr().err
    assert main(["validate", "--steps", "0", "--samples", "10"]) == 2
    assert main(["validate", "--eta", "2", "--samples", "10"]) == 2


def test_max_z_test_refuses_nan_scores() -> None:
    """A NaN score gave a NaN p-value, which a threshold test reads as neither pass nor fail."""
    with pytest.raises(ValueError, match="NaN"):
        mc.max_z_test(np.array([1.0, np.nan, 0.5]))
    res = mc.max_z_test(np.array([0.0, 3.0, -1.0]))
    assert res.max_abs_z == 3.0


# ------------------------------------------------------------------------------------------
# break-test (Monte Carlo): the rounding floor, the omnibus sum, argument checks
# ------------------------------------------------------------------------------------------
def test_bins_just_below_the_rounding_floor_keep_the_false_alarm_bound() -> None:
    """Two modes at 0.95e-10 of the largest, just below the floor 1e-10 x max: they scored +inf whenever the
    periodogram rose above the floor (22 % of correct runs failed). Scored one-sided against P + floor, 200 seeded
    runs of a correct spectrum all pass (each fails with probability <= 1e-6), and a spectrum 10x too large at those
    modes is still rejected on every seed (one 10x too small is not: below the floor only an excess is seen)."""
    S = np.ones(16)
    S[3] = S[13] = 0.95e-10
    wrong = S.copy()
    wrong[3] = wrong[13] = 0.95e-9
    n = 200
    fails = rejected = 0
    for seed in range(200):
        psd = mc.empirical_psd(mc.gaussian_field(S, n, seed=seed))
        fails += not mc.psd_check(psd, S, n).passed
        rejected += not mc.psd_check(psd, wrong, n).passed
    assert fails == 0 and rejected == 200


def test_the_sum_of_squared_scores_catches_an_error_no_single_bin_resolves() -> None:
    """DDIM eta = 1 sampled, eta = 0.9 predicted (up to 7 % per bin, 16x16, n = 2000, K = 10): max |z| stays below its
    threshold, the chi-square sum (a chi2_m variable under the hypothesis) is far beyond; the correct eta passes."""
    S = symsched.spectra.power_law((16, 16), alpha=2.0)
    ab = schedules.standard_schedule("linear-leading", 10)
    n = 2000
    psd = mc.empirical_psd(mc.sample(S, ab, sampler="ddim", eta=1.0, n_samples=n, seed=1, progress=False))
    good = mc.psd_check(psd, symsched.output_spectrum(S, ab, sampler="ddim", eta=1.0), n)
    bad = mc.psd_check(psd, symsched.output_spectrum(S, ab, sampler="ddim", eta=0.9), n)
    assert good.passed and good.pvalue > 1e-3
    assert bad.max_abs_z < bad.z_crit  # the largest |z| alone would pass it
    assert not bad.passed and bad.chi2_pvalue < 1e-20


def test_chi2_pvalues_are_uniform_under_the_hypothesis() -> None:
    """300 seeded periodograms of a correct spectrum: the omnibus p-values are U(0, 1) (KS, false alarm 1e-4) and
    the reported family-wise p-value agrees with the verdict."""
    S = make_spectrum((8, 8), "bandpass")
    n = 40
    ps = []
    for seed in range(300):
        r = mc.psd_check(mc.empirical_psd(mc.gaussian_field(S, n, seed=seed)), S, n, alpha=0.2)
        ps.append(r.chi2_pvalue)
        assert r.passed == (r.pvalue > 0.2)
    assert stats.kstest(ps, "uniform").pvalue > 1e-4


def test_a_spectrum_entirely_below_the_rounding_floor_is_tested_for_an_excess_only() -> None:
    """S = 1e-21 with DDPM: the output (1e-38) lies under the simulation's rounding (~1e-36), so a 5x error cannot be
    seen; the check says so (n_floor = every bin) and still fails an excess above the floor (samples of data 1e21
    times larger). The same data at 1e21 scale are fully tested (and a 5x error rejected)."""
    S = np.full((8, 8), 1e-21)
    ab = schedules.standard_schedule("linear-leading", 10)
    psd = mc.empirical_psd(mc.sample(S, ab, sampler="ddpm", n_samples=500, seed=0, progress=False))
    P = symsched.output_spectrum(S, ab, sampler="ddpm")
    res = mc.psd_check(psd, P, 500)
    assert res.passed and res.n_floor == res.n_independent == 34
    assert not res.conclusive and res.verdict(short=True) == "INCONCLUSIVE"  # (passed, but nothing was tested)
    big = mc.empirical_psd(mc.sample(S * 1e21, ab, sampler="ddpm", n_samples=500, seed=0, progress=False))
    assert not mc.psd_check(big, P, 500).passed and mc.psd_check(big, P, 500).verdict(short=True) == "FAIL"
    P = symsched.output_spectrum(S * 1e21, ab, sampler="ddpm")
    res = mc.psd_check(big, P, 500)
    assert res.passed and res.n_floor == 0 and not mc.psd_check(big, 5 * P, 500).passed
    assert res.conclusive and res.verdict() == "PASS"


def test_a_faint_spectrum_is_inconclusive_not_a_pass(tmp_path, capsys) -> None:
    """Audit of 5 December: an 8x8 power law scaled by 1e-150 (DDIM output ~1e-298) lies wholly under the absolute
    floor atol = 1e-20, so psd_check passed 0.5x and 2x its closed form alike and `symsched validate` printed PASS
    (exit 0). It is INCONCLUSIVE now (exit 1). DDIM's last step returns x0_hat itself, so this simulation keeps the
    tiny output exact: without the floor (atol = 0) the same periodogram passes P and rejects 0.5 P (false alarm 1e-6
    each way), i.e. a real test was available and the verdict says how."""
    from symsched.cli import main

    S = 1e-150 * make_spectrum((8, 8), "power", exponent=2.0, scale=1.0)
    ab = schedules.standard_schedule("linear-leading", 10)
    n = 2000
    psd = mc.empirical_psd(mc.sample(S, ab, n_samples=n, seed=3, progress=False))
    P = symsched.output_spectrum(S, ab)
    for wrong in (0.5 * P, 2.0 * P):
        res = mc.psd_check(psd, wrong, n)
        assert res.passed and not res.conclusive and res.verdict().startswith("INCONCLUSIVE")
    assert mc.psd_check(psd, P, n, atol=0.0).verdict() == "PASS"
    assert not mc.psd_check(psd, 0.5 * P, n, atol=0.0).passed
    np.save(tmp_path / "faint.npy", S)
    code = main(["validate", "--spectrum", str(tmp_path / "faint.npy"), "--steps", "10", "--samples", "500",
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "INCONCLUSIVE: every bin lies at or below" in out and "PASS" not in out
    with pytest.raises(SystemExit):  # the help's exit codes name that case (it listed only PASS and FAIL)
        main(["validate", "--help"])
    assert "1 = closed form rejected at --alpha (FAIL) or not tested (INCONCLUSIVE" in \
        " ".join(capsys.readouterr().out.split())


def test_ve_simulation_at_huge_and_infinite_sigma() -> None:
    """sigma^2 overflowed to a bare OverflowError above 1.3e154 (and init='exact' too); sigma = inf cannot be
    simulated and says so. At 1e160 both starts match the closed form (false alarm 1e-6), and the white start is
    told apart from the exact one (their outputs differ)."""
    S = make_spectrum((8, 8), "power", exponent=2.0, scale=3.0)
    sig = np.array([1e160, 1.0, 0.1])
    n = 3000
    for init in ("white", "exact"):
        psd = mc.empirical_psd(mc.sample_ve(S, sig, init=init, n_samples=n, seed=2, progress=False))
        assert_psd_matches(psd, symsched.output_spectrum_ve(S, sig, init=init), n, what=f"ve from 1e160 ({init})")
    with pytest.raises(ValueError, match=r"sigmas\[0\] = inf: a simulation in signal space"):
        mc.sample_ve(S, [np.inf, 1.0], n_samples=2, seed=0)
    # audit of 5 December: the multichannel simulation said "euler step 1 of 2 ... produced non-finite samples"
    C = np.broadcast_to(np.eye(2), (8, 8, 2, 2)) * S[..., None, None]
    with pytest.raises(ValueError, match=r"^sigmas\[0\] = inf: a simulation in signal space"):
        mc.sample_multichannel_ve(C, [np.inf, 1.0], n_samples=2, seed=0)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: mc.psd_check(np.ones(4), np.ones(4), 10**30), ValueError, r"n_samples must be a positive integer up to"),
    (lambda: mc.psd_band(np.ones(4), 10**30), ValueError, r"n_samples must be a positive integer up to"),
    (lambda: mc.psd_check(np.ones(4), np.ones(4), 10, axes=(True,)), TypeError,
     r"axes entries must be an axis of a sample of 1 axis in \[-1, 1\) \(got True\)"),
    (lambda: mc.psd_check(np.ones(4), np.ones(4), 10, axes=(1,)), ValueError, r"axes entries .* \(got 1\)"),
    (lambda: mc.psd_check(np.ones(4), np.ones(4), 10, axes=0), TypeError, "axes must be a sequence"),
    (lambda: mc.psd_dof((4.5, 4)), ValueError, "shape entries must be a non-negative integer"),
    (lambda: mc.independent_bins(("a", 4)), TypeError, "shape entries must be a non-negative integer"),
    (lambda: mc.psd_dof("44"), TypeError, "shape must be an integer or a non-empty sequence"),
    (lambda: mc.psd_dof((10**6, 10**6)), ValueError, "shape asks for 1000000000000 modes, more than MAX_MODES"),
    (lambda: mc.independent_bins((10**6, 10**6)), ValueError, "MAX_MODES"),
    (lambda: mc.psd_check(np.ones(4), np.ones(4), 10, zero_tol=2), ValueError, r"zero_tol must lie in \[0, 1e-3\]"),
    (lambda: mc.psd_check(np.ones(4), np.ones(4), 10, atol=-1), ValueError, "atol must be >= 0"),
    (lambda: mc.empirical_psd(np.full((3, 4), np.nan)), ValueError, "samples must be finite"),
    (lambda: mc.empirical_psd(np.full((3, 4), 1e300)), ValueError, "values too large for their periodogram"),
    (lambda: mc.wiener_denoiser(np.full((2, 4), np.nan), np.ones(4), 0.5), ValueError, "x must be finite"),
])
def test_statistics_arguments_break_test(call, exc, match) -> None:
    """Each was accepted silently (truncated, read as axis 1, NaN through) or raised a bare OverflowError /
    TypeError without the argument's name."""
    with pytest.raises(exc, match=match):
        call()


def test_deficits_beyond_the_double_range_and_huge_sample_counts() -> None:
    """review: where the chi-square CDF underflows, Wilson-Hilferty understated the deficit (psd_hat = 0 at n = 1
    scored -1.65; 1e-300 at n = 3 scored -3.4 against -45.4 from mpmath); nu * psd_hat overflowed for psd_hat =
    1e300 and n = 1e9, failing a periodogram equal to the truth."""
    assert mc.psd_zscores([0.0], [1.0], 1, axes=())[0] == -np.inf
    with mpmath.workdps(50):  # z = Phi^-1(F_chi2_3(3e-300)) from the regularised incomplete gamma
        log_f = mpmath.log(mpmath.gammainc(mpmath.mpf(3) / 2, 0, mpmath.mpf("3e-300") / 2, regularized=True))
        z_ref = float(-mpmath.sqrt(-2 * log_f - mpmath.log(-4 * mpmath.pi * log_f)))  # leading asymptotics
    z = mc.psd_zscores([1e-300], [1.0], 3, axes=())[0]
    assert z == pytest.approx(z_ref, rel=2e-3)
    P = np.full((4, 4), 1e300)
    assert mc.psd_check(P, P, 10**9).passed


@pytest.mark.parametrize("q,v", [(1000.0, 1), (1500.0, 1), (1e5, 20_000), (1e6, 3), (1e7, 2), (5e5, 100_000),
                                 (225310.0, 200_000), (225320.0, 200_000)])  # (review: scipy's subnormal plateau there)
def test_excesses_beyond_the_double_range_score_their_exact_z(q, v) -> None:
    """Audit of 4 December: where the chi-square tail probability underflows, Wilson-Hilferty understated the
    excess by up to 2x (ratio 1500 at n = 1 scored 22.6 below ratio 1000's 31.6), so max |z| and its argmax named
    the wrong bin. z solves log Phi(-z) = log Q(v/2, q/2), here with mpmath at 60 digits."""
    with mpmath.workdps(60):
        log_p = mpmath.log(mpmath.gammainc(mpmath.mpf(v) / 2, mpmath.mpf(q) / 2, mpmath.inf, regularized=True))
        z_ref = float(mpmath.findroot(lambda z: mpmath.log(mpmath.ncdf(-z)) - log_p, mpmath.sqrt(-2 * log_p)))
    assert log_p < -500  # scipy's chi2.logsf is -inf from about here (below about -700 at the latest)
    z = mc.psd_zscores([q / v], [1.0], v, axes=(), zero_tol=0.0, atol=0.0)[0]  # (no rounding floor)
    assert z == pytest.approx(z_ref, rel=1e-11)


@pytest.mark.parametrize("ratio,v", [(0.01, 1000), (0.3, 100_000), (1e-300, 3), (0.02, 600), (0.6, 200_000)])
def test_deficits_beyond_the_double_range_score_their_exact_z(ratio, v) -> None:
    """Audit of 5 December: where the chi-square CDF underflows, the lower tail kept only the small-q series' leading
    term a log x - x - log Gamma(a + 1), dropping log sum_j x^j / ((a+1)...(a+j)): ratio 0.01 at v = 1000 scored
    -60.10983 against -60.10967. z solves log Phi(z) = log P(v/2, v ratio/2), here with mpmath at 60 digits."""
    with mpmath.workdps(60):
        a, x = mpmath.mpf(v) / 2, mpmath.mpf(v) * mpmath.mpf(ratio) / 2
        log_p = mpmath.log(mpmath.gammainc(a, 0, x, regularized=True))
        z_ref = float(mpmath.findroot(lambda z: mpmath.log(mpmath.ncdf(z)) - log_p, -mpmath.sqrt(-2 * log_p)))
    assert log_p < -700  # scipy's chi2.logcdf is -inf here
    z = mc.psd_zscores([ratio], [1.0], v, axes=(), zero_tol=0.0, atol=0.0)[0]  # (no rounding floor)
    assert z == pytest.approx(z_ref, rel=1e-11)


def test_far_excesses_keep_their_order() -> None:
    z = mc.psd_zscores([1000.0, 1500.0, 1e300], [1.0, 1.0, 1.0], 1, axes=())
    assert z[0] < z[1] < z[2] < np.inf
    n = 200_000  # where scipy's logsf plateaus in the subnormals (both scored 38.4494): still increasing
    z = mc.psd_zscores(np.array([225310.0, 225320.0]) / n, [1.0, 1.0], n, axes=(), zero_tol=0.0, atol=0.0)
    assert z[1] - z[0] == pytest.approx(0.0146, rel=0.01)
    check = mc.psd_check([1000.0, 1500.0], [1.0, 1.0], 1, axes=())
    assert check.argmax == (1,) and check.max_abs_z == pytest.approx(38.71194426, rel=1e-8)


def test_zero_dimensional_periodograms_still_work() -> None:
    """review: the one shape rule (as_shape) refused (), which psd_zscores / max_z_test reach for a 0-d input (one
    scalar mode): documented for arrays of any shape, they worked before and do again."""
    assert mc.psd_dof(()).shape == () and int(mc.psd_dof(())) == 1
    assert mc.psd_zscores(1.0, 1.0, 10) == 0.0
    assert mc.max_z_test(np.float64(1.5)).max_abs_z == 1.5


# ------------------------------------------------------------------------------------------
# audit: overflow-free Wiener filter and periodograms, arguments named, the interval pinned
# ------------------------------------------------------------------------------------------
def test_wiener_denoiser_near_the_float64_limit_is_the_closed_form() -> None:
    """Audit fault 2: x = 1e308 overflowed the FFT's sums and every output was NaN (1e200 was fine). A constant
    field is one DC mode and a cosine one frequency pair: the output is gain * x with the gains of docs/model.md
    §3 typed in here (eps: sqrt(1-ab)/lam, x0: sqrt(ab) S/lam, lam = ab S + 1 - ab)."""
    ab = 0.5
    S = np.full((8, 8), 0.25)
    S[0, 0], S[0, 2], S[0, 6] = 3.0, 7.0, 7.0  # Hermitian: the pair (0, 2), (0, -2) alike
    lam = lambda s: ab * s + 1 - ab  # noqa: E731
    const = np.full((8, 8), 1e308)
    np.testing.assert_allclose(mc.wiener_denoiser(const, S, ab), math.sqrt(1 - ab) / lam(3.0) * 1e308, rtol=1e-13)
    np.testing.assert_allclose(mc.wiener_denoiser(const, S, ab, output="x0"),
                               math.sqrt(ab) * 3.0 / lam(3.0) * 1e308, rtol=1e-13)
    cosine = 1.5e308 * np.cos(2 * np.pi * 2 * np.arange(8) / 8)[None, :] * np.ones((8, 1))
    np.testing.assert_allclose(mc.wiener_denoiser(cosine, S, ab), math.sqrt(1 - ab) / lam(7.0) * cosine,
                               rtol=1e-13, atol=1e-13 * 1.5e308)
    eig = mc.wiener_denoiser(np.full(3, 1e308), np.ones(3), ab, basis=np.eye(3))
    np.testing.assert_allclose(eig, math.sqrt(1 - ab) * 1e308, rtol=1e-13)
    # an output that really is beyond float64 (gain 1/sqrt(1-ab) ~ 31.6) is refused, naming x
    with pytest.raises(ValueError, match=r"^x: .*float64"):
        mc.wiener_denoiser(const, np.full((8, 8), 1e-3), 0.999)


def test_periodograms_of_huge_fields_are_exact_or_refused_by_name() -> None:
    """Siblings of audit fault 2: |fft|^2 overflowed by a factor N before its division by N (empirical_psd refused
    fields whose periodogram N x^2 is representable), and the cross-periodogram of 1e200 (or of NaN) came back
    inf + NaN j silently."""
    x = np.full((2, 64, 64), 1e152)
    psd = mc.empirical_psd(x)
    assert psd[0, 0] == pytest.approx(64 * 64 * 1e304, rel=1e-13)  # a constant field: N x^2 at DC, 0 elsewhere
    assert np.max(np.abs(psd.ravel()[1:])) <= 1e-13 * psd[0, 0]
    cross = mc.empirical_cross_spectrum(np.full((2, 2, 4, 4), 1e150))
    np.testing.assert_allclose(cross[0, 0], np.full((2, 2), 16 * 1e300), rtol=1e-13)
    with pytest.raises(ValueError, match=r"^samples: values too large"):
        mc.empirical_cross_spectrum(np.full((2, 2, 4, 4), 1e200))
    with pytest.raises(ValueError, match=r"^samples must be finite"):
        mc.empirical_cross_spectrum(np.full((2, 2, 4, 4), np.nan))
    with pytest.raises(ValueError, match=r"^cross_hat must be finite"):
        mc.mode_psd(np.full((4, 2, 2), np.nan), np.ones((4, 2, 2)))


@pytest.mark.parametrize("value", [1.5e308, np.finfo(np.float64).max])
def test_periodograms_of_fields_near_the_float64_limit_are_refused_by_name(value: float) -> None:
    """Review: a field near 1.8e308 is scaled by 2**-1024, so its squared scale is 2**2048, and the unscaling
    formed 2.0 ** 1025 with Python floats: OverflowError instead of the refusal naming ``samples``. A periodogram
    of such a field (16 x^2 at DC) is beyond float64, so the refusal is the right answer."""
    x = np.full((2, 4, 4), value)
    with pytest.raises(ValueError, match=r"^samples: values too large for their periodogram"):
        mc.empirical_psd(x)
    with pytest.raises(ValueError, match=r"^samples: values too large for their cross-periodogram"):
        mc.empirical_cross_spectrum(x[:, None])
    field = np.zeros((2, 4, 4))
    field[:, 0, 0] = 3e154  # 9e308 / 16 per bin: representable, though |X|^2 = 9e308 is not
    np.testing.assert_allclose(mc.empirical_psd(field), np.full((4, 4), 3e154 * (3e154 / 16)), rtol=1e-13)


@pytest.mark.parametrize("exponent", [499, -499])
def test_periodograms_whose_sums_over_samples_and_bins_leave_float64_unscaled_are_exact(exponent: int) -> None:
    """Review of 4 December: fields up to 2^500 were transformed unscaled, so |X|^2 = (N x)^2 = 2^1022 summed over 8
    samples overflowed and a periodogram of 2^1010 (representable) was refused as too large; 2^-499 squared is
    subnormal. The value at DC of a constant field x is N x^2 (every other bin 0), formed here with ldexp."""
    x = np.full((8, 64, 64), np.ldexp(1.0, exponent))
    expected = np.zeros((64, 64))
    expected[0, 0] = np.ldexp(1.0, 12 + 2 * exponent)  # N = 4096 = 2^12
    np.testing.assert_array_equal(mc.empirical_psd(x), expected)
    cross = mc.empirical_cross_spectrum(np.stack([x, -x], axis=1))
    np.testing.assert_array_equal(cross[0, 0], expected[0, 0] * np.array([[1.0, -1.0], [-1.0, 1.0]]))
    assert np.all(cross[1:] == 0) and np.all(cross[0, 1:] == 0)


@pytest.mark.parametrize("z", [np.array([]), np.zeros((0, 3))])
def test_max_z_test_names_an_empty_z(z) -> None:
    """Audit fault 6: an empty z raised NumPy's "attempt to get argmax of an empty sequence"."""
    with pytest.raises(ValueError, match=r"^z must not be empty"):
        mc.max_z_test(z)
    with pytest.raises(TypeError, match=r"^z must be an array of real numbers"):
        mc.max_z_test("ab")


@pytest.mark.parametrize("familywise", [False, True])
def test_psd_confidence_is_the_chi_square_quantile_interval(familywise: bool) -> None:
    """Audit fault 7a: only clo < P < chi was tested, so isf(a, nu) for isf(a / 2, nu) survived. The interval is
    nu psd_hat / chi2_nu.isf(a/2) .. nu psd_hat / chi2_nu.ppf(a/2), nu = n (the 4 self-conjugate bins of an 8 x 8
    grid) or 2n; familywise: a = alpha / m with m = (64 - 4) / 2 + 4 = 34 independent bins (Bonferroni)."""
    rng = np.random.default_rng(3)
    ph = rng.uniform(0.5, 2.0, (8, 8))
    n, alpha = 10, 0.05
    nu = np.full((8, 8), 2.0 * n)
    for i, j in itertools.product((0, 4), (0, 4)):
        nu[i, j] = n
    a = alpha / 34 if familywise else alpha
    lo, hi = mc.psd_confidence(ph, n, alpha=alpha, familywise=familywise)
    np.testing.assert_allclose(lo, nu * ph / stats.chi2.isf(a / 2, nu), rtol=1e-12)
    np.testing.assert_allclose(hi, nu * ph / stats.chi2.ppf(a / 2, nu), rtol=1e-12)


def test_zscores_of_ratios_beyond_float64_are_finite_and_exact() -> None:
    """Audit of 5 December: psd_hat / psd_true = 1e-600 or 1e600 under/overflowed to 0 / inf before the tails were
    taken in log space, so z was -inf / +inf. Exact: 50-digit mpmath of the chi2 lower tail (nu = 2 at DC and
    Nyquist of a length-4 real FFT with n = 2 samples, 4 elsewhere), and z = sqrt(q) (1 + O(log q / q)) far up."""
    from scipy import special

    nu = np.array([2.0, 4.0, 2.0, 4.0])
    z = mc.psd_zscores(np.full(4, 1e-300), np.full(4, 1e300), 2)
    with mpmath.workdps(50):
        want = [special.ndtri_exp(float(mpmath.log(mpmath.gammainc(v / 2, 0, v * mpmath.mpf("1e-600") / 2,
                                                                    regularized=True)))) for v in nu]
    np.testing.assert_allclose(z, want, rtol=1e-12, atol=0)
    z = mc.psd_zscores(np.full(4, 1e300), np.full(4, 1e-300), 2, atol=0, zero_tol=0)  # (no rounding floor)
    with mpmath.workdps(50):
        want = [float(mpmath.sqrt(v * mpmath.mpf("1e600"))) for v in nu]
    np.testing.assert_allclose(z, want, rtol=1e-12, atol=0)
    assert np.all(mc.psd_zscores(np.zeros(4), np.ones(4), 2) == -np.inf)  # psd_hat = 0 exactly: P = 0


@pytest.mark.parametrize("ph", [1e-154, 1e-160, 1e-163])
def test_zscores_of_subnormal_ratios_with_one_degree_of_freedom(ph) -> None:
    """Audit of 5 December: a subnormal q = psd_hat / psd_true (rounded to a few significant digits) still went to
    scipy's logcdf, off by up to 8e-6 relative; the series in log q is exact. One sample, no axes: nu = 1."""
    from scipy import special

    pt = 1e160
    z = mc.psd_zscores([ph], [pt], 1, axes=(), zero_tol=0, atol=0)
    with mpmath.workdps(50):
        q = mpmath.mpf(ph) / mpmath.mpf(pt)  # (the exact ratio of the floats given, 1e-314 ... 1e-323)
        want = special.ndtri_exp(float(mpmath.log(mpmath.gammainc(mpmath.mpf(1) / 2, 0, q / 2, regularized=True))))
    assert float(z[0]) == pytest.approx(want, rel=1e-12, abs=0)


@pytest.mark.parametrize("call", [
    lambda a: mc.psd_dof((4, 4), axes=a),
    lambda a: mc.independent_bins((4, 4), axes=a),
    lambda a: mc.empirical_psd(np.ones((2, 4, 4)), axes=a),
    lambda a: mc.psd_zscores(np.ones((4, 4)), np.ones((4, 4)), 10, axes=a),
    lambda a: mc.max_z_test(np.zeros((4, 4)), axes=a),
])
def test_axes_are_read_to_max_ndim_entries_at_most(call) -> None:
    """Audit of 5 December: _norm_axes listed ``axes`` whole (``axes=itertools.repeat(0)``: MemoryError)."""
    from symsched._validate import MAX_NDIM
    from limit_helpers import Endless

    with pytest.raises(ValueError, match=rf"^axes must hold at most {MAX_NDIM} values \(symsched._validate.MAX_NDIM"):
        call(Endless(0, MAX_NDIM, "axes"))
    with pytest.raises(ValueError, match=r"^axes must not repeat an axis"):
        call([0, 0])


def test_empirical_psd_refuses_a_stream_beyond_max_samples(monkeypatch) -> None:
    """Audit of 5 December: ``empirical_psd(itertools.repeat(batch))`` averaged forever (the count of streamed
    samples had no cap); it is held to MAX_SAMPLES, as every other Monte Carlo call."""
    from limit_helpers import Endless

    monkeypatch.setattr(mc, "MAX_SAMPLES", 100)  # the module's own bound, read per call
    batch = np.ones((1, 4))
    with pytest.raises(ValueError, match=r"^samples must hold at most MAX_SAMPLES = 100 samples"):
        mc.empirical_psd(iter(Endless(batch, 100, "batches")))
    with pytest.raises(ValueError, match=r"^samples must hold at most MAX_SAMPLES = 100 samples"):
        mc.empirical_psd(np.ones((101, 4)))
    assert np.allclose(mc.empirical_psd(iter([batch] * 100)), mc.empirical_psd(np.ones((100, 4))))


@pytest.mark.parametrize("call", [
    lambda a: mc.psd_check(np.ones(4), np.ones(4), 10, alpha=a),
    lambda a: mc.psd_band(np.ones(4), 10, alpha=a),
    lambda a: mc.psd_confidence(np.ones(4), 10, alpha=a),
])
def test_alpha_below_its_documented_floor_is_named_with_the_callers_value(call) -> None:
    """audit 5 Dec: alpha = 5e-324 lies in (0, 1) but psd_check halves it to 0.0 and refused "(got 0.0)"; the levels
    are [MIN_ALPHA, 1) (each test's Sidak level stays a normal float64), the message gives the caller's value."""
    assert mc.MIN_ALPHA == 1e-300
    with pytest.raises(ValueError, match=r"alpha must lie in \[1e-300, 1\) \(got 5e-324\)"):
        call(5e-324)
    call(1e-300)  # the floor itself is accepted
    z = mc.psd_check(np.ones(4), np.ones(4), 10, alpha=1e-300).z_crit  # threshold at level 1e-300/2 over m bins
    m = mc.independent_bins((4,)).sum()
    assert z == pytest.approx(stats.norm.isf(-math.expm1(math.log1p(-0.5e-300) / m) / 2), rel=1e-12)


@pytest.mark.parametrize(("fn", "sampler", "other"), [("sample", "euler", "sample_ve"), ("sample", "heun", "sample_ve"),
                                                     ("sample_ve", "ddim", "montecarlo.sample "),
                                                     ("sample_ve", "ddpm", "montecarlo.sample ")])
def test_a_sampler_of_the_other_family_is_pointed_to_its_function(fn, sampler, other) -> None:
    """mc.sample(S, ab, sampler="euler") said only "must be one of 'ddim', 'ddpm'", though the README lists EDM
    Euler/Heun among the simulated samplers: they live in sample_ve; the message names it (and the way back)."""
    levels = np.array([0.1, 0.5]) if fn == "sample" else np.array([3.0, 1.0])
    with pytest.raises(ValueError, match=rf"sampler '{sampler}' is a V[EP] sampler .*{other}"):
        getattr(mc, fn)(np.ones((4, 4)), levels, sampler=sampler, n_samples=2, seed=0, progress=False)
    with pytest.raises(ValueError, match="sampler must be one of"):  # anything else: the plain choice
        getattr(mc, fn)(np.ones((4, 4)), levels, sampler="lms", n_samples=2, seed=0, progress=False)


@pytest.mark.parametrize("fn", ["sample", "iter_sample", "sample_multichannel"])
@pytest.mark.parametrize("sampler, key, value", [("ddpm", "eta", 0.5), ("ddim", "variance", "beta")])
def test_the_other_samplers_setting_is_refused_not_dropped(fn, sampler, key, value) -> None:
    """Audit of 6 December: mc.sample(..., sampler="ddpm", eta=0.5) ran DDPM without it, bit-identical to eta=0,
    while output_spectrum refuses it; its neutral value (eta 0, variance "posterior") stays accepted, as there."""
    from symsched.spectra import power_law

    S = power_law((4, 4), alpha=2.0)
    field = S[..., None, None] * np.eye(2) if fn == "sample_multichannel" else S
    ab = [0.1, 0.5, 0.9]
    run = getattr(mc, fn)
    with pytest.raises(ValueError, match=rf"^sampler '{sampler}' has no setting '{key}'"):
        out = run(field, ab, sampler=sampler, n_samples=2, seed=0, **{key: value})
        next(iter(out)) if fn == "iter_sample" else None
    with pytest.raises(ValueError, match=rf"has no setting '{key}'"):  # the closed form's rule, the same
        symsched.output_spectrum(S, ab, sampler=sampler, **{key: value})
    neutral = {"eta": 0.0, "variance": "posterior"}[key]
    a = np.concatenate(list(run(field, ab, sampler=sampler, n_samples=2, seed=0, **{key: neutral}))) \
        if fn == "iter_sample" else run(field, ab, sampler=sampler, n_samples=2, seed=0, **{key: neutral})
    b = np.concatenate(list(run(field, ab, sampler=sampler, n_samples=2, seed=0))) if fn == "iter_sample" \
        else run(field, ab, sampler=sampler, n_samples=2, seed=0)
    np.testing.assert_array_equal(a, b)
