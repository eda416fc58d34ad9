"""Data spectra: parametric models, estimators from data, and loaders.

A *spectrum* is an array of mode variances ``S >= 0`` (docs/model.md §1). For stationary data the
modes are the Fourier modes and ``S`` is the power spectral density on the FFT grid; for colour
images the modes are the ``C`` eigen-directions of the colour cross-spectrum at each frequency;
for non-stationary data they are the principal components.

Conventions used throughout:

* FFT-grid arrays are in NumPy FFT order (DC at index 0, frequencies from ``np.fft.fftfreq``,
  in cycles per sample); use ``np.fft.fftshift`` for display.
* PSD normalisation: ``S[k] = E |fft(x)[k]|^2 / n`` with ``n`` the number of samples of one
  signal/image (per channel). A white field of variance 1 has ``S = 1`` everywhere, and the
  per-pixel variance is ``mean(S)`` (Parseval).
* Spectra of real data are Hermitian symmetric, ``S[k] == S[-k]``; the estimators enforce it
  exactly by averaging ``k`` and ``-k`` (which are equal in exact arithmetic).
* Every estimator returns a float64, finite, non-negative array.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._io import load_spectrum_npy
from ._pow2 import at_unit_scale, pow2_scaled, times_pow2
from ._validate import (
    ArgumentTypeError, _show, as_axis, as_bool, as_int, as_positive as _positive, as_real as _real, as_real_array,
    as_positive_int, as_shape, as_spectrum, check_choice, numpy_error_defaults,
)

__all__ = [
    "fft_frequencies",
    "power_law",
    "band_limited",
    "matern",
    "gaussian",
    "psd2d",
    "radial_psd",
    "colour_eigen_psd",
    "pca_spectrum",
    "welch_psd",
    "natural_patches",
    "natural_patches_spectrum",
    "load_spectrum",
    "BUILTIN_SPECTRA",
    "NATURAL_PATCH_IMAGES",
    "MEAN_MODES",
]

Array = NDArray[np.float64]

#: Names accepted by :func:`load_spectrum` after the ``"builtin:"`` prefix.
BUILTIN_SPECTRA: tuple[str, ...] = ("natural-patches",)
#: scikit-image photographs (RGB, shipped inside the scikit-image wheel: no download) used by
#: :func:`natural_patches`.
NATURAL_PATCH_IMAGES: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket")
#: Mean handling of the image estimators.
MEAN_MODES: tuple[str, ...] = ("none", "dataset", "image")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: the formats PIL may decode those files as, whatever their suffix says: never PostScript/EPS (PIL hands those to
#: Ghostscript, an interpreter of the file's bytes) or any other format PIL knows
_IMAGE_FORMATS = ("PNG", "JPEG")
_CHUNK_ELEMENTS = 1 << 22  # complex values per FFT chunk (64 MiB)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _grid_shape(shape: Union[int, Sequence[int]]) -> tuple[int, ...]:
    return as_shape(shape, "shape", ndims=(1, 2),
                    hint=" (a 1-D signal or a 2-D image); for colour images build one spectrum per channel")


@numpy_error_defaults
def fft_frequencies(shape: Union[int, Sequence[int]]) -> Array:
    r"""Radial frequency :math:`|f| = \sqrt{\sum_i f_i^2}` on the FFT grid, cycles per sample.

    Source: ``numpy.fft.fftfreq`` per axis; the FFT-grid modes of docs/model.md §1.

    Parameters
    ----------
    shape : int or tuple of 1 or 2 ints
        Grid shape ``(n,)`` or ``(H, W)``; each axis uses ``np.fft.fftfreq``.

    Returns
    -------
    ndarray, shape ``shape``, float64
        ``|f|`` in ``[0, sqrt(ndim)/2]``, DC at index 0.

    Raises
    ------
    ValueError
        If ``shape`` is not 1 or 2 positive integers, or holds more than MAX_MODES points.
    """
    dims = _grid_shape(shape)
    axes = np.meshgrid(*[np.fft.fftfreq(n) for n in dims], indexing="ij")
    return np.sqrt(sum(a * a for a in axes))


def _reflect(a: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """``a`` at the negated frequency ``-k mod n`` along ``axes``."""
    out = np.flip(a, axis=tuple(axes))
    return np.roll(out, 1, axis=tuple(axes))


def _hermitian(a: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """Average of ``a[k]`` and ``a[-k]``: exactly Hermitian symmetric (``+`` is commutative)."""
    return 0.5 * (a + _reflect(a, axes))


def _finish(spec: np.ndarray, name: str) -> Array:
    """Clip round-off negatives, check and return a float64 spectrum (estimates from data are checked for the
    float64 range by :func:`symsched._pow2.at_unit_scale` first)."""
    spec = np.asarray(spec, dtype=np.float64)
    return as_spectrum(np.maximum(spec, 0.0), name)


# ---------------------------------------------------------------------------------------------
# parametric models
# ---------------------------------------------------------------------------------------------


@numpy_error_defaults
def power_law(
    shape: Union[int, Sequence[int]],
    *,
    alpha: float = 2.0,
    c: float = 1.0,
    floor: Optional[float] = None,
) -> Array:
    r"""Power-law PSD :math:`S(f) = c / \max(|f|, f_0)^\alpha` on the FFT grid.

    Natural images have :math:`\alpha \approx 2` in 2-D. The frequency floor :math:`f_0`
    regularises the singular DC term: DC (and any :math:`|f| < f_0`) gets :math:`c/f_0^\alpha`.
    Source: the :math:`1/|f|^2` power spectrum of natural images (Field 1987, JOSA A 4(12)); docs/model.md §1.

    Parameters
    ----------
    shape : int or tuple of 1 or 2 ints
        Grid shape ``(n,)`` or ``(H, W)``.
    alpha : float
        Finite exponent (0 is white; negative values give blue noise).
    c : float
        Positive amplitude: the PSD at ``|f| = 1`` cycle per sample.
    floor : float, optional
        Frequency floor :math:`f_0 > 0` in cycles per sample. Default ``1 / max(shape)``, the
        fundamental, so DC gets the value of the lowest non-zero frequency along the longest axis.

    Returns
    -------
    ndarray, shape ``shape``, float64
        Positive, Hermitian symmetric.

    Raises
    ------
    ValueError
        Bad ``shape`` (as :func:`fft_frequencies`), non-finite ``alpha``, non-positive ``c`` or ``floor``, or a PSD
        that overflows to inf or underflows to 0 in float64.
    """
    dims = _grid_shape(shape)
    alpha = _real(alpha, "alpha")
    c = _positive(c, "c")
    f0 = 1.0 / max(dims) if floor is None else _positive(floor, "floor")
    f = np.maximum(fft_frequencies(dims), f0)
    with np.errstate(over="ignore"):
        spec = c * f ** (-alpha)
    if not np.all(np.isfinite(spec)) or np.any(spec <= 0):
        raise ValueError(
            f"power_law overflows/underflows in float64 for alpha={alpha:g}, c={c:g}, floor={f0:g}"
        )
    return _finish(spec, "power_law spectrum")


@numpy_error_defaults
def band_limited(
    shape: Union[int, Sequence[int]],
    *,
    cutoff: float = 0.25,
    level: float = 1.0,
    floor: float = 0.0,
) -> Array:
    r"""Ideal low-pass PSD: :math:`S = \text{level}` for :math:`|f| \le f_c`, else ``floor``.

    Source: a test spectrum on the FFT grid of docs/model.md §1 (:func:`fft_frequencies`).

    Parameters
    ----------
    shape : int or tuple of 1 or 2 ints
        Grid shape ``(n,)`` or ``(H, W)``.
    cutoff : float
        Cut-off :math:`f_c` in cycles per sample, ``0 <= f_c``; ``0`` keeps only DC.
    level : float
        Positive in-band PSD.
    floor : float
        Out-of-band PSD, ``0 <= floor`` (0 gives exactly zero modes).

    Returns
    -------
    ndarray, shape ``shape``, float64
        Non-negative, Hermitian symmetric.

    Raises
    ------
    ValueError
        Bad ``shape`` (as :func:`fft_frequencies`), a negative or non-finite ``cutoff`` or ``floor``, or a
        non-positive ``level``.
    """
    dims = _grid_shape(shape)
    fc = _real(cutoff, "cutoff")
    if fc < 0:
        raise ValueError(f"cutoff must be non-negative (cycles per sample; got {cutoff!r})")
    level = _positive(level, "level")
    floor = _real(floor, "floor")
    if floor < 0:
        raise ValueError(f"floor must be non-negative (got {_show(floor)})")
    spec = np.where(fft_frequencies(dims) <= fc, level, floor)
    return _finish(spec, "band_limited spectrum")


@numpy_error_defaults
def matern(
    shape: Union[int, Sequence[int]],
    *,
    nu: float = 1.5,
    length_scale: float = 4.0,
    variance: float = 1.0,
) -> Array:
    r"""Matérn PSD :math:`S(f) \propto (2\nu/\ell^2 + 4\pi^2|f|^2)^{-(\nu + d/2)}`, normalised so ``mean(S) = variance``.

    The PSD of a stationary field with Matérn covariance of smoothness :math:`\nu` and length
    scale :math:`\ell` (in samples) in ``d = len(shape)`` dimensions (Rasmussen & Williams eq.
    4.15). ``nu = inf`` is the Gaussian (squared-exponential) kernel,
    :math:`S \propto \exp(-2\pi^2\ell^2|f|^2)`. The normalisation makes the per-pixel variance of
    the periodic field equal ``variance``.

    Parameters
    ----------
    shape : int or tuple of 1 or 2 ints
        Grid shape ``(n,)`` or ``(H, W)``.
    nu : float
        Positive smoothness, or ``np.inf``.
    length_scale : float
        Positive length scale in samples.
    variance : float
        Positive per-sample variance (``mean(S)``).

    Returns
    -------
    ndarray, shape ``shape``, float64
        Non-negative (far tails may underflow to 0 for the Gaussian), Hermitian symmetric.

    Raises
    ------
    ValueError
        Bad ``shape`` (as :func:`fft_frequencies`), ``nu`` neither positive nor ``inf``, a non-positive
        ``length_scale`` or ``variance``, or a ``variance`` so large that the spectrum's peak (at most
        ``variance`` times the number of modes) exceeds float64. Any positive ``length_scale`` is computed: the
        shape is evaluated in logs of ``length_scale * |f|`` (``1e300`` puts every mode but DC at 0).
    """
    from scipy.special import logsumexp

    dims = _grid_shape(shape)
    try:
        nu_f = math.inf if isinstance(nu, (float, np.floating)) and nu == math.inf else _positive(nu, "nu")
    except ValueError as exc:
        raise type(exc)(f"nu must be a positive number or inf (got {_show(nu)})") from None
    ell = _positive(length_scale, "length_scale")
    var = _positive(variance, "variance")
    log_s = _matern_log_shape(fft_frequencies(dims), nu_f, ell, len(dims))
    log_s = log_s - (logsumexp(log_s) - math.log(log_s.size))
    with np.errstate(over="ignore"):
        spec = var * np.exp(log_s)
    if not np.all(np.isfinite(spec)):
        raise ValueError(f"variance: the matern spectrum of variance {var:g} exceeds float64 at its peak "
                         f"({var:g} x {float(np.exp(np.max(log_s))):.6g}); use a smaller variance")
    return _finish(spec, "matern spectrum")


def _matern_log_shape(f: Array, nu: float, ell: float, d: int) -> Array:
    """log S up to a constant, in logs of ell |f| (ell**2 overflowed from ell ~ 1e155, 1 / ell**2 below 1e-154):
    ``-(nu + d/2) log1p(2 pi^2 (ell f)^2 / nu)`` (nu = inf: ``-2 pi^2 (ell f)^2``); f = 0 gives 0."""
    with np.errstate(divide="ignore", over="ignore"):
        u = math.log(2.0 * math.pi**2) + 2.0 * (math.log(ell) + np.log(f))  # log(2 pi^2 (ell f)^2), -inf at DC
        if math.isinf(nu):
            return -np.exp(u)
        return -(nu + d / 2.0) * np.logaddexp(0.0, u - math.log(nu))


@numpy_error_defaults
def gaussian(shape: Union[int, Sequence[int]], *, length_scale: float = 4.0, variance: float = 1.0) -> Array:
    r"""Gaussian-kernel PSD :math:`S \propto \exp(-2\pi^2\ell^2|f|^2)`, ``mean(S) = variance``.

    Same as ``matern(shape, nu=np.inf, ...)``; see :func:`matern`. Returns shape ``shape``, float64;
    ``length_scale`` in samples, frequencies in cycles per sample. ValueError for a bad ``shape`` or a
    non-positive ``length_scale`` / ``variance``. Source: the squared-exponential kernel's spectral density
    (Rasmussen & Williams 2006, §4.2).
    """
    return matern(shape, nu=np.inf, length_scale=length_scale, variance=variance)


# ---------------------------------------------------------------------------------------------
# estimators
# ---------------------------------------------------------------------------------------------


def _real_data(x: ArrayLike, name: str) -> np.ndarray:
    arr = as_real_array(x, name)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return arr


def _image_batch(images: ArrayLike, name: str = "images") -> np.ndarray:
    """N×H×W -> N×H×W×1; N×H×W×C kept."""
    arr = _real_data(images, name)
    if arr.ndim == 3:
        return arr[..., None]
    if arr.ndim == 4:
        return arr
    raise ValueError(
        f"{name} must be a batch N×H×W or N×H×W×C (got shape {arr.shape}); pass one image as x[None]"
    )


class _CrossSpectrum:
    """Streaming accumulator of ``sum_n X_n[k] X_n[k]^H`` (or its diagonal) over images.

    ``X_n = fft2(x_n)`` per channel. Also accumulates the DC vector so that the dataset mean
    can be removed at the end (it only changes the DC term). With ``mean="dataset"`` the pixels are first
    shifted by the first batch's per-channel mean (the covariance is shift-invariant): the final subtraction then
    removes a small remainder, where for data far from zero (mean/std ~ 1e6) it cancelled two huge second moments
    and lost every digit of the DC term.
    """

    def __init__(self, full: bool) -> None:
        self.full = full
        self.n = 0
        self.shape: Optional[tuple[int, int, int]] = None
        self.acc: Optional[np.ndarray] = None
        self.dc_sum: Optional[np.ndarray] = None
        self.shift: Optional[np.ndarray] = None

    def add(self, batch: np.ndarray, mean: str) -> None:
        n, h, w, c = batch.shape
        if self.shape is None:
            self.shape = (h, w, c)
            self.acc = np.zeros((h, w, c, c) if self.full else (h, w, c), dtype=np.complex128 if self.full else np.float64)
            self.dc_sum = np.zeros(c, dtype=np.complex128)
            self.shift = batch.mean(axis=(0, 1, 2)) if mean == "dataset" else None
        step = max(1, _CHUNK_ELEMENTS // max(1, h * w * c))
        for i in range(0, n, step):
            chunk = batch[i : i + step] if self.shift is None else batch[i : i + step] - self.shift
            X = np.fft.fft2(chunk, axes=(1, 2))
            if mean == "image":
                X[:, 0, 0, :] = 0.0
            self.dc_sum += X[:, 0, 0, :].sum(axis=0)
            if self.full:
                for a in range(c):  # upper triangle; the lower one is its conjugate
                    for b in range(a, c):
                        self.acc[..., a, b] += (X[..., a] * X[..., b].conj()).sum(axis=0)
            else:
                self.acc += (X.real**2 + X.imag**2).sum(axis=0)
            self.n += X.shape[0]

    def result(self, mean: str) -> np.ndarray:
        assert self.shape is not None and self.acc is not None and self.dc_sum is not None
        h, w, c = self.shape
        out = self.acc / (self.n * h * w)
        if self.full:
            iu = np.triu_indices(c, 1)
            out[..., iu[1], iu[0]] = out[..., iu[0], iu[1]].conj()
        if mean == "dataset":
            m = self.dc_sum / self.n
            if self.full:
                out[0, 0] -= np.outer(m, m.conj()) / (h * w)
            else:
                out[0, 0] -= (np.abs(m) ** 2) / (h * w)
        return out


@numpy_error_defaults
def psd2d(images: ArrayLike, *, mean: str = "none") -> Array:
    r"""Averaged periodogram :math:`S[k] = \frac{1}{N}\sum_n |\mathrm{fft2}(x_n)[k]|^2 / (HW)`, per channel.

    Source: ``numpy.fft.fft2``; the PSD normalisation of this module and docs/model.md §1.

    Parameters
    ----------
    images : array_like, shape (N, H, W) or (N, H, W, C)
        A batch of real images (a single image must be passed as ``x[None]``).
    mean : {"none", "dataset", "image"}
        ``"none"``: the raw second moment (the PSD a zero-mean Gaussian model needs, DC includes
        the mean); ``"dataset"``: subtract the per-channel mean over the whole batch;
        ``"image"``: subtract each image's own per-channel mean (DC becomes 0).

    Returns
    -------
    ndarray, shape (H, W) or (H, W, C), float64
        FFT order, Hermitian symmetric. White noise of variance 1 gives 1.

    Raises
    ------
    ValueError
        Unknown ``mean``, or ``images`` empty, not finite, or not of shape (N, H, W) / (N, H, W, C), or of values
        whose PSD lies beyond float64 or all below its normal range (not all 0).
    """
    check_choice(mean, "mean", MEAN_MODES)
    batch = _image_batch(images)

    def estimate(b: np.ndarray) -> np.ndarray:
        acc = _CrossSpectrum(full=False)
        acc.add(b, mean)
        return _hermitian(acc.result(mean), (0, 1))

    spec = at_unit_scale(estimate, batch, "images", "the psd2d result")[0]
    if np.ndim(images) == 3:
        spec = spec[..., 0]
    return _finish(spec, "psd2d result")


@numpy_error_defaults
def colour_eigen_psd(images: ArrayLike, *, mean: str = "none") -> Array:
    r"""Eigenvalues of the colour cross-spectral matrix at each frequency: shape (H, W, C).

    :math:`M_{ij}[k] = \frac{1}{N}\sum_n X_{n,i}[k]\,\overline{X_{n,j}[k]} / (HW)` with
    :math:`X_{n,i} = \mathrm{fft2}(x_{n,\cdot,\cdot,i})` is a C×C Hermitian positive
    semi-definite matrix per frequency; its C real eigenvalues are the variances of the C modes
    at that frequency (docs/model.md §1), so the result is a symsched spectrum of ``H*W*C`` modes.
    For C = 1 this equals :func:`psd2d`.

    Parameters
    ----------
    images : array_like, shape (N, H, W, C)
        Real image batch (channels last).
    mean : {"none", "dataset", "image"}
        Mean handling, as in :func:`psd2d`.

    Returns
    -------
    ndarray, shape (H, W, C), float64
        Eigenvalues in descending order along the last axis, clipped at 0 (and exactly 0 below
        ``_RANK_TOL`` = 4096 eps times the largest at their frequency: rounding of data of lower colour
        rank); FFT order; Hermitian symmetric over (H, W).

    Raises
    ------
    ValueError
        Unknown ``mean``, or ``images`` empty, not finite, or not 4-D (N, H, W, C), or of values whose spectrum
        lies beyond float64 or all below its normal range (not all 0).
    """
    check_choice(mean, "mean", MEAN_MODES)
    arr = _real_data(images, "images")
    if arr.ndim != 4:
        raise ValueError(f"images must be a batch N×H×W×C (got shape {arr.shape})")

    def estimate(b: np.ndarray) -> np.ndarray:
        acc = _CrossSpectrum(full=True)
        acc.add(b, mean)
        return _eigenvalues(acc.result(mean))

    return _finish(at_unit_scale(estimate, arr, "images", "the colour eigen-mode spectrum")[0],
                   "colour eigen-mode spectrum")


#: colour eigen-modes below this fraction of the largest one at their frequency are rounding (data of lower colour
#: rank, e.g. grey images tinted B = G + 1, gave 1e-19..2e-15 where the exact value is 0, and KL divided by them):
#: they become exact zeros. 8-bit quantisation alone puts a real mode above ~1e-6 of it.
_RANK_TOL = 4096 * float(np.finfo(np.float64).eps)


def _eigenvalues(M: np.ndarray) -> np.ndarray:
    """Eigenvalues of the Hermitian cross-spectral matrices ``M`` (H, W, C, C), descending, round-off ranks 0."""
    M = 0.5 * (M + np.conj(np.swapaxes(M, -1, -2)))
    ev = np.linalg.eigvalsh(M)[..., ::-1]
    return _hermitian(np.where(ev > _RANK_TOL * ev[..., :1], ev, 0.0), (0, 1))


@numpy_error_defaults
def radial_psd(psd: ArrayLike, *, channel_axis: Optional[int] = None) -> tuple[Array, Array]:
    r"""Radially averaged PSD: mean of ``psd`` over rings :math:`|f| \approx r\,\Delta f`.

    A grid point with radial frequency :math:`|f|` (see :func:`fft_frequencies`) goes to bin
    ``r = round(|f| / df)`` with ``df = 1 / max(grid shape)``; empty bins are dropped (they only
    occur for non-square grids). Ring means by ``scipy.ndimage.mean``.

    Parameters
    ----------
    psd : array_like
        A 1-D or 2-D FFT-grid spectrum in FFT order, optionally with one channel axis.
    channel_axis : int, optional
        Axis holding channels (e.g. ``-1`` for ``(H, W, C)``); averaged per channel.

    Returns
    -------
    freq : ndarray, shape (B,), float64
        Bin frequencies ``r * df`` in cycles per sample, increasing from 0.
    psd : ndarray, shape (B,) or (B, C), float64
        Ring means.

    Raises
    ------
    ValueError
        If ``psd`` is empty, not finite or negative, ``channel_axis`` is out of range, or the grid (without the
        channel axis) is not 1-D or 2-D.

    Source: the radial average of natural images' isotropic power spectra (van der Schaaf & van Hateren 1996,
    *Vision Research* 36(17)); ``scipy.ndimage.mean`` with ring labels.
    """
    from scipy import ndimage

    spec = as_spectrum(psd, "psd")
    if channel_axis is not None:
        spec = np.moveaxis(spec, as_axis(channel_axis, "channel_axis", spec.ndim, f"psd of shape {spec.shape}"), -1)
        grid = spec.shape[:-1]
    else:
        grid = spec.shape
    if len(grid) not in (1, 2):
        raise ValueError(
            f"psd must be a 1-D or 2-D grid (got grid shape {grid}); set channel_axis for channels"
        )
    df = 1.0 / max(grid)
    labels = np.rint(fft_frequencies(grid) / df).astype(np.int64)
    bins = np.unique(labels)

    def ring_means(x: Array) -> Array:
        with np.errstate(over="ignore", invalid="ignore"):
            m = np.asarray(ndimage.mean(x, labels=labels, index=bins), dtype=np.float64)
        over = ~np.isfinite(m)  # a ring sum of values near 1.8e308 overflows: that ring at a power-of-two scale
        if over.any():  # (only there: the scale would flush the tiny values of other rings to 0)
            xs, k = pow2_scaled(x)
            m[over] = times_pow2(np.asarray(ndimage.mean(xs, labels=labels, index=bins[over]), dtype=np.float64), k)
        return m

    if channel_axis is None:
        return bins * df, ring_means(spec)
    return bins * df, np.stack([ring_means(spec[..., ch]) for ch in range(spec.shape[-1])], axis=-1)


@numpy_error_defaults
def pca_spectrum(data: ArrayLike, *, center: bool = True) -> Array:
    r"""Eigenvalues of the sample covariance of ``data`` (N×D): shape (D,), descending, >= 0.

    ``center=True``: covariance :math:`\frac{1}{N-1}\sum_n (x_n-\bar x)(x_n-\bar x)^T` (as
    ``np.cov``); ``center=False``: second moment :math:`\frac{1}{N}\sum_n x_n x_n^T` (for data
    already modelled as zero-mean). Computed from the singular values of the data matrix
    (``scipy.linalg.svdvals``), which is more accurate than eigen-decomposing the covariance.
    When D > N the D - N eigenvalues beyond the N singular values are exact zeros (centring
    removes one more rank: that eigenvalue is zero up to round-off).

    Parameters
    ----------
    data : array_like, shape (N, D)
        N samples of dimension D (N >= 2 when centring).
    center : bool

    Returns
    -------
    ndarray, shape (D,), float64
        PCA variances (the modes of non-stationary data, docs/model.md §1), descending.

    Raises
    ------
    ValueError
        If ``data`` is empty, not finite or not 2-D, its variances lie beyond float64 or all below its normal range
        (not all 0), or it has fewer than 2 samples with ``center=True``
        (a non-boolean ``center`` is an ArgumentTypeError).
    """
    from scipy.linalg import svdvals

    x = _real_data(data, "data")
    center = as_bool(center, "center")
    if x.ndim != 2:
        raise ValueError(f"data must be 2-D, N samples × D features (got shape {x.shape})")
    n, d = x.shape
    if center and n < 2:
        raise ValueError(f"data needs at least 2 samples to estimate a centred covariance (got N={n})")

    def estimate(y: np.ndarray) -> np.ndarray:
        if center:
            y = y - y.mean(axis=0)
        sv = svdvals(y, check_finite=False)
        ev = np.zeros(d)
        ev[: sv.size] = sv**2 / (n - 1 if center else n)
        return np.sort(ev)[::-1]

    return _finish(at_unit_scale(estimate, x, "data", "the pca_spectrum result")[0], "pca_spectrum result")


@numpy_error_defaults
def welch_psd(
    x: ArrayLike,
    *,
    fs: float = 1.0,
    nperseg: int = 256,
    noverlap: Optional[int] = None,
    window: Any = "hann",
    detrend: Any = False,
) -> tuple[Array, Array]:
    r"""Two-sided Welch PSD of 1-D signals via ``scipy.signal.welch``, on the FFT grid of ``nperseg``.

    Normalised per sample, like every symsched PSD: white noise of variance :math:`\sigma^2`
    gives :math:`\sigma^2` at every frequency, whatever ``fs`` (i.e. scipy's ``'density'`` PSD
    times ``fs``). The result is directly a symsched spectrum of a length-``nperseg`` signal.
    Source: Welch 1967 (IEEE Trans. Audio Electroacoust. 15(2)); ``scipy.signal.welch``.

    Parameters
    ----------
    x : array_like, shape (n,) or (B, n)
        One signal, or B signals (e.g. audio clips or channels) whose PSDs are averaged.
    fs : float
        Sampling rate; only scales the returned frequencies.
    nperseg : int
        Segment length, ``nperseg <= n``.
    noverlap : int, optional
        Overlap (default ``nperseg // 2``), ``0 <= noverlap < nperseg``.
    window : str or tuple or array_like
        A ``scipy.signal.get_window`` name or (name, parameter) tuple (default Hann), or ``nperseg`` values.
    detrend : False, "constant" or "linear"
        Per-segment detrending passed to scipy. Default ``False`` keeps the raw second moment,
        as :func:`psd2d` with ``mean="none"``.

    Returns
    -------
    freq : ndarray, shape (nperseg,), float64
        Frequencies in units of ``fs``, in FFT order (``np.fft.fftfreq(nperseg) * fs``).
    psd : ndarray, shape (nperseg,), float64
        Two-sided PSD, Hermitian symmetric.

    Raises
    ------
    ValueError
        If ``x`` is empty, not finite or not 1-D/2-D, ``fs`` is not positive, ``nperseg`` is not a positive
        integer or exceeds n, ``noverlap`` is not in [0, nperseg), ``detrend`` is not one of the three, or
        ``window`` is neither a window scipy knows (its message is kept) nor a finite array of ``nperseg`` values
        with some nonzero value, or the PSD lies beyond float64 or all below its normal range (``x`` not all 0).
    """
    from scipy.signal import welch

    arr = _real_data(x, "x")
    if arr.ndim not in (1, 2):
        raise ValueError(f"x must be 1-D (n,) or 2-D (B, n) (got shape {arr.shape})")
    fs = _positive(fs, "fs")
    nper = as_positive_int(nperseg, "nperseg")
    if nper > arr.shape[-1]:
        raise ValueError(f"nperseg={nper} exceeds the signal length n={arr.shape[-1]}")
    if noverlap is not None:
        noverlap = as_int(noverlap, "noverlap", 0, nper - 1, rule="an integer in [0, nperseg)")
    if not (isinstance(detrend, (bool, str)) and detrend in (False, "constant", "linear")):
        raise ValueError(f"detrend must be False, 'constant' or 'linear' (got {detrend!r})")
    window = _welch_window(window, nper)
    freq = np.fft.fftfreq(nper) * fs  # scipy's two-sided frequencies, k fs / n (1/fs overflows for subnormal fs)

    def estimate(y: np.ndarray) -> np.ndarray:
        try:  # the density at fs = 1 is the spectrum for every fs (fs only labels the frequencies, built above):
            # scipy's own 1/fs scaling, multiplied back, went subnormal or overflowed at extreme fs
            p = welch(y, fs=1.0, window=window, nperseg=nper, noverlap=noverlap, detrend=detrend,
                      return_onesided=False, scaling="density", axis=-1)[1]
        except ValueError as exc:
            raise ValueError(f"welch_psd: {exc}") from None
        p = np.asarray(p, dtype=np.float64)
        return _hermitian(p.mean(axis=0) if p.ndim == 2 else p, (0,))

    return freq, _finish(at_unit_scale(estimate, arr, "x", "the welch_psd result")[0], "welch_psd result")


def _welch_window(window: Any, nper: int) -> Array:
    """``window`` as the length-``nperseg`` array scipy's Welch uses (``scipy.signal.get_window`` of a name or
    (name, parameter) tuple, periodic); ValueError naming ``window`` unless it is such a name or a finite real
    1-D array of length ``nperseg`` with some nonzero value."""
    from scipy.signal import get_window

    if isinstance(window, (str, tuple)):
        try:
            return np.asarray(get_window(window, nper), dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"window: scipy.signal.get_window refuses {window!r} ({exc})") from None
    w = as_real_array(window, "window")  # (None, a bool: ArgumentTypeError; a number: the shape check below)
    if w.shape != (nper,):
        raise ValueError(f"window must have shape (nperseg,) = ({nper},) (got {w.shape})")
    if not np.all(np.isfinite(w)) or not np.any(w != 0):
        raise ValueError("window must be finite with some nonzero value (its energy normalises the PSD)")
    return w


# ---------------------------------------------------------------------------------------------
# image patches and loaders
# ---------------------------------------------------------------------------------------------


def _to_signed_unit(img: np.ndarray, name: str) -> np.ndarray:
    """uint8/uint16/float image -> float64 in [-1, 1] (``2 * img_as_float - 1``), RGB."""
    from skimage.util import img_as_float

    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        raise ValueError(f"{name}: expected an RGB(A) or grey image (got shape {img.shape})")
    img = img[..., :3]
    return 2.0 * img_as_float(img).astype(np.float64) - 1.0


def _patches(img: np.ndarray, patch_size: int) -> np.ndarray:
    """Non-overlapping patch_size² patches from the top-left corner: (n, p, p, 3); (0, 0, 0, 3) when none fits
    (no array of a huge ``patch_size`` is ever shaped)."""
    from skimage.util import view_as_blocks

    p = patch_size
    h, w = (img.shape[0] // p) * p, (img.shape[1] // p) * p
    if h == 0 or w == 0:
        return np.empty((0, 0, 0, img.shape[-1]))
    blocks = view_as_blocks(np.ascontiguousarray(img[:h, :w]), (p, p, img.shape[-1]))
    return blocks.reshape(-1, p, p, img.shape[-1])


def _natural_images() -> Iterator[tuple[str, np.ndarray]]:
    from skimage import data

    for name in NATURAL_PATCH_IMAGES:
        yield name, np.asarray(getattr(data, name)())


@functools.lru_cache(maxsize=4)
def _natural_patches_cached(patch_size: int) -> np.ndarray:
    parts = [_patches(_to_signed_unit(img, f"skimage.data.{n}"), patch_size) for n, img in _natural_images()]
    parts = [q for q in parts if q.shape[0]]
    if not parts:
        raise ValueError(f"patch_size={_show(patch_size)} is larger than every built-in photograph "
                         f"({', '.join(NATURAL_PATCH_IMAGES)}; the largest fits 512x512 patches)")
    out = np.concatenate(parts, axis=0)
    out -= out.mean(axis=(0, 1, 2))
    out.setflags(write=False)
    return out


@numpy_error_defaults
def natural_patches(*, patch_size: int = 32) -> Array:
    r"""Deterministic RGB patches of natural photographs: shape (N, p, p, 3), float64.

    The scikit-image photographs :data:`NATURAL_PATCH_IMAGES` (astronaut, chelsea, coffee,
    rocket; all shipped inside the scikit-image package, no download) are converted to
    ``[-1, 1]`` (``2 * img_as_float(img) - 1``, the usual diffusion-model convention), cut into
    non-overlapping ``p × p`` patches from the top-left corner (remainders dropped), and the
    per-channel mean over all patches and pixels is subtracted. For p = 32 this gives N = 858.
    Source: ``skimage.data`` (the images) and ``skimage.util.view_as_blocks`` (the patches).

    Parameters
    ----------
    patch_size : int
        Patch side p.

    Returns
    -------
    ndarray, shape (N, p, p, 3), float64
        A fresh copy (the cached array is read-only).

    Raises
    ------
    ValueError
        If ``patch_size`` is not a positive integer or is larger than every photograph (p > 512).
    """
    p = as_positive_int(patch_size, "patch_size")
    return np.array(_natural_patches_cached(p))


@functools.lru_cache(maxsize=4)
def _natural_spectrum_cached(patch_size: int) -> np.ndarray:
    spec = colour_eigen_psd(_natural_patches_cached(patch_size), mean="none")
    spec.setflags(write=False)
    return spec


@numpy_error_defaults
def natural_patches_spectrum(*, patch_size: int = 32) -> Array:
    r"""Colour eigen-mode PSD of :func:`natural_patches`: shape (p, p, 3), symsched's default spectrum.

    ``colour_eigen_psd(natural_patches(patch_size=p))`` (already mean-removed per channel), i.e.
    :math:`S[k] = \operatorname{eig}\big(\frac{1}{N}\sum_n X_n[k] X_n[k]^H / p^2\big)` over the N patches.
    Cached in memory; deterministic. ValueError as :func:`natural_patches` (``patch_size`` not a positive
    integer, or above 512). Source: docs/model.md §1 (colour eigen-modes); :func:`colour_eigen_psd`.
    """
    p = as_positive_int(patch_size, "patch_size")
    return np.array(_natural_spectrum_cached(p))


def _iter_image_files(folder: Path) -> list[Path]:
    files = sorted(
        (f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES),
        key=lambda f: f.name,
    )
    if not files:
        raise ValueError(
            f"source folder {str(folder)!r} holds no PNG/JPEG images ({', '.join(_IMAGE_SUFFIXES)})"
        )
    return files


#: The PIL modes :func:`read_image` converts to: 8-bit channels, read as uint8.
IMAGE_MODES: tuple[str, ...] = ("L", "LA", "RGB", "RGBA")


def read_image(path: Union[str, "os.PathLike[str]"], mode: str = "RGB",
               what: str = "source image") -> NDArray[np.uint8]:
    """An 8-bit image file as a uint8 array in PIL ``mode`` ("RGB": (H, W, 3); "L": (H, W)).

    Raises ValueError naming ``what`` and the file: unreadable, not 8-bit (PIL modes I, I;16, F: their values are
    not 0..255), or beyond PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``; decoding it would take
    gigabytes), or not a PNG or JPEG file whatever its suffix (PIL decodes only those here: a PostScript file named
    ``.png`` is refused, never handed to Ghostscript). Every image the package reads goes through here. ``path``
    must be a str, bytes or os.PathLike and ``mode`` one of :data:`IMAGE_MODES` (TypeError naming the argument
    otherwise; an unknown mode string is a ValueError listing them).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ArgumentTypeError(f"path must be a file path (str or os.PathLike) (got {_show(path)})")
    if not isinstance(what, str):
        raise ArgumentTypeError(f"what must be a str (got {_show(what)})")
    mode = check_choice(mode, "mode", IMAGE_MODES)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=_IMAGE_FORMATS) as im:
                raw = [tile.args[0] if isinstance(tile.args, tuple) and tile.args else tile.args
                       for tile in (im.tile or [])]
                wide = [r for r in raw if isinstance(r, str) and (";16" in r or ";32" in r)]
                if im.mode in ("I", "F") or im.mode.startswith("I;") or wide:  # PIL opens 16-bit RGB as "RGB"
                    depth = f"PIL mode {im.mode!r}" + (f", stored as {wide[0]!r}" if wide else "")
                    raise ValueError(f"{what} {str(path)!r} has {depth}: only 8-bit images are supported")
                return np.asarray(im.convert(mode))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"{what} {str(path)!r} is too large to decode safely ({exc})") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{what} {str(path)!r} cannot be read ({exc})") from None


def _folder_spectrum(folder: Path, patch_size: int) -> Array:
    """(p, p, 3) colour eigen-mode PSD of a folder; (p, p), the PSD of the one grey channel, when every image that
    gives patches is grey (R = G = B: two of the three colour eigen-modes would be round-off, e.g. 1e-15, which KL
    divides by; the third is 3 times the grey PSD, the variance of R + G + B over sqrt(3))."""
    acc = _CrossSpectrum(full=True)
    grey = True  # every image that gave patches so far has R = G = B
    for f in _iter_image_files(folder):
        img = read_image(f, "RGB")
        patches = _patches(_to_signed_unit(img, str(f)), patch_size)
        if not patches.shape[0]:  # smaller than a patch: neither its pixels nor its colours count
            continue
        grey = grey and np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])
        acc.add(patches, "none")
    if acc.n == 0:
        raise ValueError(
            f"source folder {str(folder)!r}: no image is at least {_show(patch_size)}×{_show(patch_size)} pixels"
        )
    M = acc.result("dataset")
    ev = _eigenvalues(M[..., :1, :1])[..., 0] if grey else _eigenvalues(M)  # grey: the one channel's PSD
    return _finish(ev, "colour eigen-mode spectrum")


def _npy_spectrum(path: Union[str, "os.PathLike[str]"], name: str = "source") -> Array:
    """A ``.npy`` spectrum as :func:`load_spectrum` reads one, for every command that reads ``--spectrum``:
    :func:`symsched._io.load_spectrum_npy` (floating point, never unpickled; the file's faults name ``name``), then
    :func:`symsched._validate.as_spectrum` naming ``spectrum in 'PATH'`` (finite, non-negative, not empty; a long
    double beyond float64's range is refused, not cast to inf or 0 with a RuntimeWarning). Returns float64, the
    file's shape. ValueError as those two; OSError when the file cannot be opened."""
    return as_spectrum(load_spectrum_npy(path, name), f"spectrum in {os.fspath(path)!r}")


def _holds_npy(path: Path) -> bool:
    """Whether ``path`` is a regular file that starts with .npy's magic string (read as a .npy whatever its name, as
    every other .npy input of symsched is; audit of 6 December: ``--spectrum P`` refused what ``--out P`` wrote)."""
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as fh:
            return fh.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX
    except OSError:  # (unreadable: the rules below report it)
        return False


@numpy_error_defaults
def load_spectrum(source: Union[str, "os.PathLike[str]"], *, patch_size: int = 32) -> Array:
    r"""Load or estimate a spectrum from ``source``: a file's ``S`` as is, or a folder's colour eigen-mode PSD.

    Rules, in order:

    * ``"builtin:natural-patches"``: :func:`natural_patches_spectrum` (shape (p, p, 3)).
    * A ``.npy`` file (by its suffix, or under another name by its first bytes, .npy's magic string): loaded
      without unpickling (:func:`symsched._io.load_npy`). A
      floating-point array is taken as the spectrum itself (any shape, must be finite and
      non-negative); any other dtype is refused.
    * A folder: every ``*.png``, ``*.jpg``, ``*.jpeg`` file (sorted by name, case-insensitive
      suffix) is opened with PIL (8-bit images; grey and palette images are converted to RGB,
      alpha is dropped; 16-bit and float images are refused), scaled to ``[-1, 1]``
      (``2 * x / 255 - 1`` for 8-bit), cut into non-overlapping ``p × p`` patches from the
      top-left corner (no resizing; images smaller than p are skipped), the per-channel mean over
      all patches is removed, and the colour eigen-mode PSD (:func:`colour_eigen_psd`) of all
      patches is returned, shape (p, p, 3); when every image is grey (R = G = B) the PSD of the
      grey channel, shape (p, p): the spectrum of a one-channel model, p² modes (the colour
      eigen-modes would be 3 times it and two round-off channels).
      Patches are streamed image by image, so large folders do not need to fit in memory.

    Parameters
    ----------
    source : str, bytes or path-like
    patch_size : int
        Patch side p for folders and the builtin.

    Returns
    -------
    ndarray, float64
        Finite, non-negative spectrum: the file's shape, or (p, p, 3) for a folder ((p, p) if all grey) or the
        builtin.

    Raises
    ------
    ValueError
        ``patch_size`` not a positive integer; an unknown ``builtin:`` name; a path that does not exist or is
        neither a folder nor a ``.npy`` file; a ``.npy`` that cannot be read, is not floating point, or is empty,
        not finite or negative; a folder with no PNG/JPEG, an unreadable or non-8-bit image, or no image of at
        least p x p pixels.
    OSError
        If a ``.npy`` file exists but cannot be opened (e.g. permissions).

    Source: docs/model.md §1 (modes and colour eigen-modes); images read with PIL.
    """
    p = as_positive_int(patch_size, "patch_size")
    if isinstance(source, bytes):  # a file-system name as bytes (os.listdir(b".")), as open() takes it
        source = os.fsdecode(source)
    if isinstance(source, str) and source.startswith("builtin:"):
        name = source[len("builtin:") :]
        if name not in BUILTIN_SPECTRA:
            raise ValueError(f"source {source!r} names no built-in spectrum: must be one of "
                             f"{', '.join(repr('builtin:' + n) for n in BUILTIN_SPECTRA)}, a .npy file or a folder of images")
        return natural_patches_spectrum(patch_size=p)
    try:
        text = os.fsdecode(source)
    except TypeError:
        raise ArgumentTypeError(
            f"source must be 'builtin:natural-patches', a .npy file or a folder of images (got {source!r})"
        ) from None
    if not text:  # Path("") is the working directory: an empty name is no folder the caller chose
        raise ValueError("source must not be empty: 'builtin:natural-patches', a .npy file or a folder of images")
    path = Path(text)
    if path.is_dir():
        return _folder_spectrum(path, p)
    if path.suffix.lower() == ".npy" or _holds_npy(path):  # (a .npy under another name: transfer --out P writes one)
        return _npy_spectrum(path, "source")
    if not path.exists():
        raise ValueError(f"source {str(path)!r} does not exist")
    raise ValueError(
        f"source {str(path)!r} is neither a folder nor a .npy file "
        "(accepted: 'builtin:natural-patches', a .npy spectrum, a folder of PNG/JPEG images)"
    )
