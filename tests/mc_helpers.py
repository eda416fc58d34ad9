"""Shared helpers for the Monte Carlo and diffusers-witness tests.

Tolerances come from the sampling distribution, not from a fudge factor
---------------------------------------------------------------------------
For ``n`` independent Gaussian samples with output PSD ``P``, the averaged periodogram obeys
``nu * psd_hat / P ~ chi2_nu`` exactly, ``nu = 2n`` at a generic bin and ``nu = n`` at a
self-conjugate bin (DC, Nyquist; every bin of a PCA basis). ``psd_zscores`` maps this law to an
exact N(0, 1) score. Bins ``k`` and ``-k`` of a real field are identical, so a grid holds ``m``
independent bins (one per conjugate pair, times channels). ``psd_check`` accepts when the largest
``|z|`` stays below Šidák's threshold and the sum of ``z^2`` below the chi2_m quantile, each at
``a / 2``: false-alarm probability ``<= a`` (the sum catches a few-per-cent error spread over
every bin, which no single bin resolves). A hypothesis test with
``E`` examples uses ``a = FAMILYWISE_ALPHA / E``, so the probability that a *correct* closed form
fails anywhere in one test function is ``<= FAMILYWISE_ALPHA = 1e-6``; every test is derandomised
and seeded, hence deterministic.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from symsched import montecarlo as mc

FAMILYWISE_ALPHA = 1e-6


def assert_psd_matches(psd_hat, psd_true, n_samples, *, alpha=FAMILYWISE_ALPHA, axes=None, what=""):
    """Fail unless the periodogram is consistent with ``psd_true`` at family-wise level ``alpha``."""
    res = mc.psd_check(psd_hat, psd_true, n_samples, alpha=alpha, axes=axes)
    assert res.passed, (
        f"{what}: max |z| = {res.max_abs_z:.2f} (z_crit = {res.z_crit:.2f}) at bin {res.argmax}, "
        f"sum z^2 = {res.chi2:.1f} (chi-square p = {res.chi2_pvalue:.3g}) "
        f"(m = {res.n_independent}, family-wise p = {res.pvalue:.3g}; "
        f"psd_hat = {np.asarray(psd_hat)[res.argmax]:.6g}, psd_true = {np.asarray(psd_true)[res.argmax]:.6g})"
    )
    return res


def assert_psd_rejects(psd_hat, psd_wrong, n_samples, *, alpha=FAMILYWISE_ALPHA, axes=None, margin=2.0, what=""):
    """Power check: the wrong closed form must be rejected with max |z| >= margin * z_crit."""
    res = mc.psd_check(psd_hat, psd_wrong, n_samples, alpha=alpha, axes=axes)
    assert res.max_abs_z >= margin * res.z_crit, (
        f"{what}: wrong closed form NOT rejected clearly: max |z| = {res.max_abs_z:.2f}, "
        f"z_crit = {res.z_crit:.2f}"
    )
    return res


# ------------------------------------------------------------------------------------------
# deterministic test spectra
# ------------------------------------------------------------------------------------------
def freq_radius(shape):
    """|k| in cycles per sample on the FFT grid of ``shape`` (symmetric: |k| == |-k|)."""
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    return np.sqrt(sum(g**2 for g in grids))


def symmetrise(S):
    """(S[k] + S[-k]) / 2: a Hermitian-symmetric PSD."""
    Sm = S
    for ax in range(S.ndim):
        Sm = np.roll(np.flip(Sm, axis=ax), 1, axis=ax)
    return 0.5 * (S + Sm)


def make_spectrum(shape, kind, *, exponent=2.0, scale=1.0, f0=0.25, width=0.1, seed=0):
    """Test PSDs: 'power' law, 'bandpass' ring, 'arbitrary' positive, 'zeros' (arbitrary with zeros)."""
    r = freq_radius(shape)
    rng = np.random.default_rng(seed)
    if kind == "power":
        S = (r + 1.0 / max(shape)) ** (-exponent)
    elif kind == "bandpass":
        S = np.exp(-0.5 * ((r - f0) / width) ** 2) + 1e-3
    elif kind == "arbitrary":
        S = symmetrise(rng.exponential(size=shape) ** 2)
    elif kind == "zeros":
        S = symmetrise(rng.exponential(size=shape))
        S = S * (symmetrise((rng.random(shape) < 0.6).astype(float)) == 1.0)
        S.flat[0] = 0.0  # a zero DC mode too
    else:  # pragma: no cover
        raise ValueError(kind)
    m = S.max()
    return scale * S / m if m > 0 else S


def random_cross_spectrum(grid, C, *, complex_=False, rank=None, seed=0):
    """Random Hermitian PSD cross-spectrum (*grid, C, C) with Sigma(-k) == conj(Sigma(k))."""
    rng = np.random.default_rng(seed)
    r = C if rank is None else rank
    A = rng.standard_normal((*grid, C, r))
    if complex_:
        A = A + 1j * rng.standard_normal((*grid, C, r))
    Sig = A @ np.conj(np.swapaxes(A, -1, -2)) / r
    Sneg = Sig
    for ax in range(len(grid)):
        Sneg = np.roll(np.flip(Sneg, axis=ax), 1, axis=ax)
    Sig = 0.5 * (Sig + np.conj(Sneg))
    return Sig if complex_ else Sig.real


def random_orthonormal(d, seed=0):
    Q, R = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def linear_ddpm_alphas_cumprod(n=1000, beta_start=1e-4, beta_end=0.02):
    return np.cumprod(1.0 - np.linspace(beta_start, beta_end, n))


# ------------------------------------------------------------------------------------------
# hypothesis strategies
# ------------------------------------------------------------------------------------------
GRID_1D = [(8,), (9,), (16,), (12,)]
GRID_2D = [(8, 8), (6, 8), (5, 7), (8, 4), (16, 16)]
KINDS = ["power", "bandpass", "arbitrary", "zeros"]


@st.composite
def spectra(draw, grids=GRID_1D + GRID_2D):
    shape = draw(st.sampled_from(grids))
    kind = draw(st.sampled_from(KINDS))
    exponent = draw(st.floats(0.5, 3.0))
    scale = 10.0 ** draw(st.integers(-2, 2))
    seed = draw(st.integers(0, 2**16))
    return make_spectrum(shape, kind, exponent=exponent, scale=scale, seed=seed)


@st.composite
def log_snrs(draw, max_k=30):
    """K in 1..max_k distinct log-SNR values in [logit(1e-4), logit(1 - 1e-4)], increasing."""
    k = draw(st.integers(1, max_k))
    lim = int(1000 * math.log((1 - 1e-4) / 1e-4)) - 1
    vals = draw(st.lists(st.integers(-lim, lim), min_size=k, max_size=k, unique=True))
    return np.sort(np.array(vals, dtype=np.float64) / 1000.0)


@st.composite
def alpha_bars(draw, max_k=30):
    """Strictly increasing levels in (1e-4, 1 - 1e-4), noisiest first."""
    ell = draw(log_snrs(max_k))
    ab = 1.0 / (1.0 + np.exp(-ell))
    assert np.all(np.diff(ab) > 0)
    return ab


@st.composite
def ve_sigmas(draw, max_k=30):
    """Strictly decreasing sigmas in (1e-2, 1e2) (the same log-SNR range), noisiest first."""
    ell = draw(log_snrs(max_k))
    return np.exp(-ell / 2.0)


@st.composite
def vp_settings(draw):
    sampler = draw(st.sampled_from(["ddim", "ddpm"]))
    return dict(
        sampler=sampler,
        eta=draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0)) if sampler == "ddim" else 0.0,
        variance=draw(st.sampled_from(["posterior", "beta"])) if sampler == "ddpm" else "posterior",
        init=draw(st.sampled_from(["white", "exact"])),
    )
