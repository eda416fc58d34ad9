"""Public numeric API: output spectra, transfer functions, divergences and their gradients.

All functions are generated from :mod:`symsched.symbolic` through :mod:`symsched.engine`; none
retypes a formula. Shapes: ``spectrum`` is any array of mode variances ``S >= 0``; schedules are 1-D.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_levels, as_sigmas, as_spectrum, check_choice, check_eta, check_same_shape
from .engine import recursion
from .engine.divergence import divergence_kernel, w2_amplitude_kernel
from .engine.kernels import level_kernel, numeric_params
from .schedules import alpha_bar_to_log_snr

__all__ = [
    "output_spectrum",
    "transfer_function",
    "output_spectrum_ve",
    "transfer_function_ve",
    "kl_divergence",
    "w2_distance",
    "divergence_and_grad",
    "divergence_and_grad_ve",
    "VP_SAMPLERS",
    "VE_SAMPLERS",
    "DIVERGENCES",
    "INITS",
]

VP_SAMPLERS = ("ddim", "ddpm")
VE_SAMPLERS = ("euler", "heun")
DIVERGENCES = ("kl", "kl-reverse", "w2")
INITS = ("white", "exact")
VARIANCES = ("posterior", "beta")

Array = NDArray[np.float64]


def _unique(S: Array) -> tuple[Array, NDArray[np.intp], Array]:
    """Exact de-duplication of mode variances: (unique values, inverse index, multiplicities)."""
    flat = S.ravel()
    u, inv, counts = np.unique(flat, return_inverse=True, return_counts=True)
    return u, inv.reshape(-1), counts.astype(np.float64)


def _sigma(alpha_bar: Array) -> Array:
    """VE coordinate of validated VP levels, sigma = sqrt((1 - alpha_bar) / alpha_bar) (generated kernel)."""
    return np.asarray(level_kernel("alpha_bar")(alpha_bar)[0], dtype=np.float64)


def _vp_setup(sampler: str, eta: float, variance: str) -> tuple[str, tuple[float, ...]]:
    check_choice(sampler, "sampler", VP_SAMPLERS + VE_SAMPLERS)
    if sampler in VE_SAMPLERS:
        raise ValueError(
            f"sampler {sampler!r} is a VE sampler: use output_spectrum_ve(spectrum, sigmas, sampler={sampler!r})"
        )
    eta = check_eta(eta)
    check_choice(variance, "variance", VARIANCES)
    return (variance if sampler == "ddpm" else ""), numeric_params(sampler, eta)


def _ve_setup(sampler: str) -> None:
    check_choice(sampler, "sampler", VE_SAMPLERS + VP_SAMPLERS)
    if sampler in VP_SAMPLERS:
        raise ValueError(
            f"sampler {sampler!r} is a VP sampler: use output_spectrum(spectrum, alpha_bar, sampler={sampler!r})"
        )


def output_spectrum(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    sampler: Literal["ddim", "ddpm"] = "ddim",
    eta: float = 0.0,
    variance: Literal["posterior", "beta"] = "posterior",
    init: Literal["white", "exact"] = "white",
) -> Array:
    """Output PSD P(S) of a VP sampler with the exact denoiser: P = H^2 v_init + sum_k n_k prod_{j>k} g_j^2.

    Parameters
    ----------
    spectrum : array_like, any shape
        Mode variances ``S >= 0`` (a PSD on an FFT grid, or PCA eigenvalues).
    alpha_bar : array_like, shape (K,)
        Strictly increasing levels in (0, 1), noisiest first; a final step to ``alpha_bar = 1`` follows.
    sampler : {"ddim", "ddpm"}
    eta : float in [0, 1]
        DDIM stochasticity (``sampler="ddim"`` only).
    variance : {"posterior", "beta"}
        DDPM injected variance: the posterior ``beta_tilde`` or ``beta`` (``sampler="ddpm"`` only).
    init : {"white", "exact"}
        Start from N(0, I) or from the true noisy marginal N(0, alpha_bar S + 1 - alpha_bar).

    Returns
    -------
    ndarray, shape of ``spectrum``
        The generated PSD.
    """
    S = as_spectrum(spectrum)
    ab = as_levels(alpha_bar)
    variant, params = _vp_setup(sampler, eta, variance)
    check_choice(init, "init", INITS)
    u, inv, _ = _unique(S)
    P = recursion.output_variance(
        u, _sigma(ab), sampler=sampler, variant=variant, params=params, process="vp", init=init
    )
    return P[inv].reshape(S.shape)


def transfer_function(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    sampler: Literal["ddim", "ddpm"] = "ddim",
    eta: float = 0.0,
    variance: Literal["posterior", "beta"] = "posterior",
) -> Array:
    """Transfer function H(S) = prod_k g_k(S): the response of the output to the initial noise.

    Shapes as in :func:`output_spectrum`; returns an array with the shape of ``spectrum``.
    """
    S = as_spectrum(spectrum)
    ab = as_levels(alpha_bar)
    variant, params = _vp_setup(sampler, eta, variance)
    u, inv, _ = _unique(S)
    H = recursion.transfer(u, _sigma(ab), sampler=sampler, variant=variant, params=params)
    return H[inv].reshape(S.shape)


def output_spectrum_ve(
    spectrum: ArrayLike,
    sigmas: ArrayLike,
    *,
    sampler: Literal["euler", "heun"] = "euler",
    init: Literal["white", "exact"] = "white",
) -> Array:
    """Output PSD of a VE sampler (EDM parametrisation) with the exact denoiser D = S/(S + sigma^2) x.

    ``sigmas``: shape (K,), positive, strictly decreasing, noisiest first; a final step to sigma = 0
    follows. ``init="white"`` starts from N(0, sigma_max^2 I), ``"exact"`` from N(0, S + sigma_max^2).
    Returns an array with the shape of ``spectrum``.
    """
    S = as_spectrum(spectrum)
    sig = as_sigmas(sigmas)
    _ve_setup(sampler)
    check_choice(init, "init", INITS)
    u, inv, _ = _unique(S)
    P = recursion.output_variance(u, sig, sampler=sampler, variant="", params=(), process="ve", init=init)
    return P[inv].reshape(S.shape)


def transfer_function_ve(
    spectrum: ArrayLike, sigmas: ArrayLike, *, sampler: Literal["euler", "heun"] = "euler"
) -> Array:
    """Transfer function H(S) = prod_k g_k(S) of a VE sampler; shapes as in :func:`output_spectrum_ve`."""
    S = as_spectrum(spectrum)
    sig = as_sigmas(sigmas)
    _ve_setup(sampler)
    u, inv, _ = _unique(S)
    H = recursion.transfer(u, sig, sampler=sampler, variant="", params=())
    return H[inv].reshape(S.shape)


def _divergence_terms(name: str, generated: Array, data: Array) -> Array:
    """Per-mode terms of a divergence (generated kernel); modes with generated == data (zeros included) give 0."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        f = divergence_kernel(name)(generated, data)[0]
    f = np.array(np.broadcast_to(f, data.shape), dtype=np.float64)
    f[generated == data] = 0.0
    return f


def kl_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """KL(N(0, diag p) || N(0, diag q)) = 1/2 sum (p/q - 1 - log(p/q)), summed over all modes.

    ``p`` and ``q`` have the same shape, non-negative. Each mode is evaluated in the ratio form of
    :mod:`symsched.symbolic.divergences` (``log p - log q`` never overflows; the ratio may), so the
    value is right over the whole float64 range: ``kl_divergence([1e-200], [1e200]) = 460.0``.
    Modes with ``p == q`` (zero modes included) contribute 0; a mode where exactly one of them is 0,
    or whose term exceeds the float64 range, makes the divergence ``inf``.
    Raises ValueError (TypeError for a wrong type) naming ``p`` or ``q``.
    """
    P = as_spectrum(p, "p")
    Q = as_spectrum(q, "q")
    check_same_shape(P, Q, "p", "q")
    # kernel "kl" is KL(data || generated) with arguments (generated, data): KL(p||q) = kernel(q, p)
    return float(np.sum(_divergence_terms("kl", Q.ravel(), P.ravel())))


def w2_distance(p: ArrayLike, q: ArrayLike) -> float:
    """W2(N(0, diag p), N(0, diag q)) = sqrt(sum (sqrt p - sqrt q)^2) (not squared); same shapes.

    Formed as a scaled sum ``c * sqrt(sum (a/c)^2)`` of the amplitudes ``a = |sqrt p - sqrt q|``
    (``c = max a``), so it neither overflows nor underflows: ``w2_distance([1.7e308]*2, [0, 0])``
    is 1.84e154. Raises ValueError (TypeError for a wrong type) naming ``p`` or ``q``.
    """
    P = as_spectrum(p, "p")
    Q = as_spectrum(q, "q")
    check_same_shape(P, Q, "p", "q")
    a = np.asarray(w2_amplitude_kernel()(P.ravel(), Q.ravel())[0], dtype=np.float64)
    c = float(np.max(a))
    return 0.0 if c == 0.0 else c * math.sqrt(float(np.sum(np.square(a / c))))


def _weights(weights: ArrayLike | None, S: Array) -> Array:
    if weights is None:
        return np.ones(S.size)
    w = as_spectrum(weights, "weights")
    check_same_shape(w, S, "weights", "spectrum")
    return w.ravel()


def _grouped(S: Array, w: Array) -> tuple[Array, Array]:
    """De-duplicate modes, summing their weights."""
    u, inv, _ = _unique(S)
    return u, np.bincount(inv, weights=w, minlength=u.size)


def divergence_and_grad(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    divergence: Literal["kl", "kl-reverse", "w2"] = "kl",
    sampler: Literal["ddim", "ddpm"] = "ddim",
    eta: float = 0.0,
    variance: Literal["posterior", "beta"] = "posterior",
    init: Literal["white", "exact"] = "white",
    weights: ArrayLike | None = None,
    wrt: Literal["alpha_bar", "log_snr"] = "alpha_bar",
) -> tuple[float, Array]:
    """Divergence J between data and generated Gaussians and dJ/d(level) for every level.

    ``"kl"`` = KL(data || generated) = 1/2 sum w (S/P - 1 - log(S/P)), ``"kl-reverse"`` =
    KL(generated || data), ``"w2"`` = W2^2 = sum w (sqrt P - sqrt S)^2, with optional per-mode
    ``weights`` (shape of ``spectrum``, default 1). The gradient (shape (K,)) is taken with respect
    to ``alpha_bar`` or, with ``wrt="log_snr"``, to the levels' log-SNR; it chains the symbolic
    per-step derivatives in one backward (adjoint) sweep: O(K * modes) time.
    Modes with S = 0 are generated exactly (P = 0) by every sampler here and contribute 0.
    """
    S = as_spectrum(spectrum)
    ab = as_levels(alpha_bar)
    variant, params = _vp_setup(sampler, eta, variance)
    check_choice(init, "init", INITS)
    check_choice(divergence, "divergence", DIVERGENCES)
    check_choice(wrt, "wrt", ("alpha_bar", "log_snr"))
    u, w = _grouped(S, _weights(weights, S))
    sig, dsig_dab = level_kernel("alpha_bar")(ab)
    J, g_sig, _ = recursion.value_and_grad(
        u, np.asarray(sig, dtype=np.float64), w, divergence=divergence, sampler=sampler, variant=variant,
        params=params, process="vp", init=init, mask=(u == 0),
    )
    if wrt == "alpha_bar":
        return J, g_sig * dsig_dab
    dsig_dl = level_kernel("log_snr")(alpha_bar_to_log_snr(ab))[1]
    return J, g_sig * np.asarray(dsig_dl, dtype=np.float64)


def divergence_and_grad_ve(
    spectrum: ArrayLike,
    sigmas: ArrayLike,
    *,
    divergence: Literal["kl", "kl-reverse", "w2"] = "kl",
    sampler: Literal["euler", "heun"] = "euler",
    init: Literal["white", "exact"] = "white",
    weights: ArrayLike | None = None,
) -> tuple[float, Array]:
    """As :func:`divergence_and_grad` for a VE sampler; the gradient is with respect to ``sigmas``."""
    S = as_spectrum(spectrum)
    sig = as_sigmas(sigmas)
    _ve_setup(sampler)
    check_choice(init, "init", INITS)
    check_choice(divergence, "divergence", DIVERGENCES)
    u, w = _grouped(S, _weights(weights, S))
    J, g_sig, _ = recursion.value_and_grad(
        u, sig, w, divergence=divergence, sampler=sampler, variant="", params=(), process="ve",
        init=init, mask=(u == 0),
    )
    return J, g_sig
