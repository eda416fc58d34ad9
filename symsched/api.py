"""Public numeric API: output spectra, transfer functions, divergences and their gradients.

All functions are generated from :mod:`symsched.symbolic` through :mod:`symsched.engine`; none
retypes a formula. Shapes: ``spectrum`` is any array of mode variances ``S >= 0``; schedules are 1-D.

Every sampler accepts its levels in any coordinate: ``alpha_bar`` (VP), ``sigmas`` (VE, as
k-diffusion takes them) or flow-matching ``t``; the sampler's own update equations fix what it does
(see :data:`SAMPLERS`). Sampler-specific settings are keyword arguments: numeric parameters
(``eta``, ``s_noise``, ...) and structural options (``variance``, ``order``, ``solver_type``, ...),
listed by :func:`sampler_info`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal, Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import (
    _show,
    ArgumentTypeError, as_levels, as_sigmas, as_spectrum, check_choice, check_same_shape, numpy_error_defaults,
    warn_caller,
)
from .engine import program as _program
from .engine import recursion
from .engine.divergence import KL_SERIES_RADIUS, divergence_kernel, kl_series_kernel, w2_amplitude_kernel
from .engine.kernels import kl_complement_mp, ratio_divergence_kernel, w2_complement_kernel
from .symbolic import FLOW_SAMPLERS, REGISTRY, VE_SAMPLERS, VP_SAMPLERS, check_options, sampler_module

__all__ = [
    "output_spectrum",
    "transfer_function",
    "output_spectrum_ve",
    "transfer_function_ve",
    "kl_divergence",
    "w2_distance",
    "divergence_and_grad",
    "divergence_and_grad_ve",
    "sampler_info",
    "SAMPLERS",
    "VP_SAMPLERS",
    "VE_SAMPLERS",
    "FLOW_SAMPLERS",
    "DIVERGENCES",
    "INITS",
]

#: Every registered sampler (each accepts alpha_bar, sigmas or flow t levels).
SAMPLERS = tuple(REGISTRY)
DIVERGENCES = ("kl", "kl-reverse", "w2")
#: The objective used when none is given: by :func:`divergence_and_grad`, :func:`optimize_schedule`,
#: :func:`compare_schedules`, ``symsched optimize --divergence`` and the first section of ``symsched report``.
#: W2 (squared), by evidence: on the learned ``builtin:patches16`` the W2-optimised schedule gives the best
#: sample metrics (MMD², sliced W2, FD) at K = 5, 10, 20 and the KL-optimised one far worse ones
#: (README, "Does it help a real model?"; ``tests/test_probe_learned.py``).
DEFAULT_DIVERGENCE = "w2"
INITS = ("white", "exact")
VARIANCES = ("posterior", "beta")

#: Keywords that samplers without them accept (and ignore) at these neutral values, for callers that
#: pass one set of settings to every sampler.
_NEUTRAL = {"eta": 0.0, "variance": "posterior"}

Array = NDArray[np.float64]


def sampler_info(sampler: str) -> dict[str, Any]:
    """What ``sampler`` is: a dict with ``name``, ``process`` ("vp", "ve" or "flow": the coordinate its equations
    step in), ``params`` (numeric parameter -> library default), ``options`` (structural option -> its choices,
    the default first), ``state`` (names of the entries of its per-mode state; its length is the state size)
    and ``doc`` (the module docstring's first paragraph, on one line). ValueError for an unknown name
    (:class:`ArgumentTypeError`, a TypeError too, for a non-string). Source: the sampler's module in
    ``symsched/symbolic/samplers/``."""
    mod = sampler_module(check_choice(sampler, "sampler", SAMPLERS))
    return {
        "name": sampler,
        "process": mod.PROCESS,
        "params": dict(getattr(mod, "PARAMS", {})),
        "options": {k: tuple(v) for k, v in getattr(mod, "OPTIONS", {}).items()},
        "state": tuple(name for name, _ in mod.ENTRIES),
        "doc": " ".join((mod.__doc__ or "").strip().split("\n\n")[0].split()),  # (the first paragraph, wrapped)
    }


def _setup(sampler: Any, settings: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, float]]:
    """(name, complete options, numeric parameters) for ``sampler`` and the caller's keywords."""
    if not isinstance(sampler, str):
        raise ArgumentTypeError(f"sampler must be a string naming a sampler (got {type(sampler).__name__})")
    check_choice(sampler, "sampler", SAMPLERS)
    mod = sampler_module(sampler)
    pdefs = dict(getattr(mod, "PARAMS", {}))
    bounds = dict(getattr(mod, "PARAM_BOUNDS", {}))
    odefs = dict(getattr(mod, "OPTIONS", {}))
    params: dict[str, float] = {}
    options: dict[str, Any] = {}
    for key, value in settings.items():
        if key in pdefs:
            if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
                value = value[()]  # a 0-d array is a number, as for every other real argument (_validate.as_real)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise ArgumentTypeError(f"{key} must be a real number (got {_show(value)})")
            try:
                v = float(value)
            except OverflowError:  # a Fraction beyond float64
                v = math.inf if value > 0 else -math.inf
            lo, hi = bounds.get(key, (0.0, np.inf))
            infinite_ok = np.isinf(float(pdefs[key]))  # a parameter whose default is inf (k-diffusion's s_tmax)
            if np.isnan(v) or v < lo or v > hi or (np.isinf(v) and not infinite_ok):
                top = f"{hi:g}]" if np.isfinite(hi) or infinite_ok else "inf), finite"
                raise ValueError(f"{key} must lie in [{lo:g}, {top} for sampler {sampler!r} (got {_show(value)})")
            params[key] = v
        elif key in odefs:
            options[key] = value
        elif key in _NEUTRAL and (value is None or value == _NEUTRAL[key]):
            continue
        elif key == "init":  # (transfer_function(..., init=...): "no setting 'init'" read as if init were wrong)
            raise ValueError("init is not a sampler setting: it sets the starting distribution of output_spectrum "
                             "(and its _ve / _mp forms); a transfer function H is the response to the initial "
                             "sample, whatever its distribution, and takes no init")
        else:
            known = tuple(pdefs) + tuple(odefs)
            raise ValueError(
                f"sampler {sampler!r} has no setting {key!r} (its parameters and options: {known or 'none'})"
            )
    for key, default in pdefs.items():
        params.setdefault(key, float(default))
    return sampler, check_options(sampler, options), params


def _unique(S: Array) -> tuple[Array, NDArray[np.intp], Array]:
    """Exact de-duplication of mode variances: (unique values, inverse index, multiplicities)."""
    flat = S.ravel()
    u, inv, counts = np.unique(flat, return_inverse=True, return_counts=True)
    return u, inv.reshape(-1), counts.astype(np.float64)


def _vp_levels(alpha_bar: ArrayLike) -> Array:
    return as_levels(alpha_bar, allow_zero=True)


def _ve_levels(sigmas: ArrayLike) -> Array:
    """The caller's sigmas, validated, as float64; marked :class:`~symsched.engine.program.Float32Sigmas` when they
    came as float32 numbers (a NumPy array or a torch tensor of that dtype): k-diffusion decides on them in float32."""
    out = as_sigmas(sigmas, allow_inf=True, allow_trailing_zero=True)
    return _program.float32_sigmas(out) if str(getattr(sigmas, "dtype", "")) in ("float32", "torch.float32") else out


def _native_scale(prog: _program.Program) -> float:
    """x_vp / x_native at the first level: 1 (VP), c (VE), c + s (flow)."""
    if prog.process == "ve":
        return float(prog.c[0])
    if prog.process == "flow":
        return float(prog.c[0] + prog.s[0])
    return 1.0


def _float32_note(name: str, x: Array, params: dict[str, Any]) -> None:
    """A ``UserWarning`` when float32 sigmas (k-diffusion's ``get_sigmas_*`` default) make k-diffusion's own
    ``sigma_down`` cancel beyond 1e-3 relative on a sampler whose output follows it: its run is then not this closed
    form (which is exact for those sigmas in float64)."""
    from .symbolic.samplers._kdiffusion import SIGMA_DOWN_SENSITIVE, float32_sigma_down_error

    if name not in SIGMA_DOWN_SENSITIVE or not isinstance(x, _program.Float32Sigmas):
        return
    err, i = float32_sigma_down_error(np.asarray(x).tolist(), float(params.get("eta", 1.0)))
    if err > 1e-3:
        size = f"~{err:.1g}" if err < 1 else "above 100 %"
        warn_caller(f"sigmas: float32 sigmas for {name}: k-diffusion computes get_ancestral_step's sigma_down = "
                    f"sqrt(sigma_to^2 - sigma_up^2) in float32, where it cancels on the step {float(x[i]):.6g} -> "
                    f"{float(x[i + 1]):.6g} (relative error {size}); its run can differ from this closed form by "
                    "up to that order (25 % for dpm_2_ancestral on get_sigmas_karras(2, 0.0292, 80)): pass the sigmas "
                    "as float64 (sigmas.double()) to k-diffusion and here")


def _output(S: Array, x: Array, coordinate: str, sampler: Any, init: Any, settings: dict[str, Any]) -> Array:
    name, options, params = _setup(sampler, settings)
    check_choice(init, "init", INITS)
    _float32_note(name, x, params)
    u, inv, _ = _unique(S)
    prog = _program.build_program(name, options, params, x, coordinate)
    P = recursion.output_variance(prog, u, init, _exact(x, coordinate, sampler, init, settings))
    return P[inv].reshape(S.shape)


def _exact(x: Array, coordinate: str, sampler: Any, init: Optional[str], settings: dict[str, Any]) -> Any:
    """``S -> P`` (``init=None``: ``S -> H``, the transfer function) from the sampler's own equations with mpmath,
    confirmed to 30 digits (the engine's fallback for the few modes or schedules float64 and longdouble cannot
    carry: :func:`recursion.output_variance`, :func:`recursion.transfer`)."""

    def exact(S_few: Array) -> Array:
        from .engine.highprec import _run

        with np.errstate(over="ignore"):
            return np.array([float(v) for v in _run(S_few, x, coordinate, sampler, init, 30, dict(settings))])

    return exact


def _transfer(S: Array, x: Array, coordinate: str, sampler: Any, settings: dict[str, Any]) -> Array:
    name, options, params = _setup(sampler, settings)
    _float32_note(name, x, params)
    u, inv, _ = _unique(S)
    prog = _program.build_program(name, options, params, x, coordinate)
    scale = _native_scale(prog)
    if scale == 0.0:  # a VE or flow sampler from sigma = inf: the native input's scale is infinite, H = H_vp * 0
        return np.zeros(S.shape)
    native = _exact(x, coordinate, sampler, None, settings)  # the mpmath path's H, in native scale
    H = recursion.transfer(prog, u, lambda S_few: native(S_few) / scale) * scale
    return H[inv].reshape(S.shape)


@numpy_error_defaults
def output_spectrum(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    sampler: str = "ddim",
    init: Literal["white", "exact"] = "white",
    **settings: Any,
) -> Array:
    """Output PSD P(S) of a sampler with the exact denoiser (docs/model.md §5, §9).

    ``P = C[0, 0]`` after the state-space recursion ``C <- A C A^T + B B^T`` of the sampler's steps;
    for one-entry samplers ``P = H^2 v_init + sum_k n_k prod_{j>k} g_j^2`` (steps k numbered in the order they run).

    Parameters
    ----------
    spectrum : array_like, any shape
        Mode variances ``S >= 0`` (a PSD on an FFT grid, or PCA eigenvalues).
    alpha_bar : array_like, shape (K,)
        Strictly increasing levels in [0, 1), noisiest first (``0`` = zero terminal SNR, pure noise);
        a final step to ``alpha_bar = 1`` follows, except for samplers that stop at the last level
        (``deis_multistep``; DPM-Solver and UniPC with ``final_sigmas_type="sigma_min"``), which keep its noise.
    sampler : str
        Any of :data:`SAMPLERS` (``"ddim"``, ``"ddpm"``, ``"euler"``, ``"heun"``, ...).
    init : {"white", "exact"}
        Start from the sampler's own white noise (VP ``N(0, 1)``; VE ``N(0, sigma_max^2)``; flow matching
        ``N(0, 1)`` in its own scale ``x_t = (1 - t) x0 + t eps``, i.e. variance ``(sqrt(alpha_bar) + sqrt(1 -
        alpha_bar))^2`` in VP units: 2 at ``alpha_bar = 0.5``, 1 at ``alpha_bar = 0``) or from the true noisy
        marginal.
    **settings
        The sampler's parameters and options, e.g. ``eta`` (DDIM, in [0, 1]), ``variance`` (DDPM:
        ``"posterior"`` or ``"beta"``); see :func:`sampler_info`.

    Returns
    -------
    ndarray, shape of ``spectrum``
        The generated PSD (float64; values below the float64 range round to 0).

    Raises
    ------
    ValueError
        Bad input (naming the argument), or an output that float64 cannot represent.
    """
    S = as_spectrum(spectrum)
    return _output(S, _vp_levels(alpha_bar), "alpha_bar", sampler, init, settings)


@numpy_error_defaults
def transfer_function(spectrum: ArrayLike, alpha_bar: ArrayLike, *, sampler: str = "ddim", **settings: Any) -> Array:
    """Transfer function H(S) = e_0^T A_K ... A_1 e_0: the response of the output to the initial sample.

    Shapes and sampler settings as in :func:`output_spectrum` (no ``init``: H does not depend on the starting
    distribution); returns an array with the shape of ``spectrum``.
    For VE samplers H is the response to the VE-scaled initial sample (``x = sigma_max n``).
    Raises ValueError (TypeError for a wrong type) naming a bad argument, or for a value float64 cannot
    represent. Source: the sampler's update equations in ``symsched/symbolic/samplers/``, composed as in
    docs/model.md §5, §9.
    """
    S = as_spectrum(spectrum)
    return _transfer(S, _vp_levels(alpha_bar), "alpha_bar", sampler, settings)


@numpy_error_defaults
def output_spectrum_ve(
    spectrum: ArrayLike,
    sigmas: ArrayLike,
    *,
    sampler: str = "euler",
    init: Literal["white", "exact"] = "white",
    **settings: Any,
) -> Array:
    """Output PSD of a sampler given k-diffusion-style ``sigmas`` (VE noise levels, ``D = S/(S + sigma^2) x``).

    ``sigmas``: shape (K,) or (K + 1,), strictly decreasing, noisiest first, positive (``inf`` allowed
    first: zero terminal SNR), optionally with k-diffusion's trailing 0 (same result). A final step to
    sigma = 0 follows. Every sampler takes its levels this way, the VP and flow ones too (``sigma^2 = (1 -
    alpha_bar) / alpha_bar``: the same result as :func:`output_spectrum` on those levels). ``init="white"`` starts
    from the sampler's own white noise, as in :func:`output_spectrum`: VE ``N(0, sigma_max^2)`` for the VE samplers
    (:data:`VE_SAMPLERS`, k-diffusion's), VP ``N(0, 1)`` (``N(0, 1 + sigma_max^2)`` in these VE units) for the VP
    ones, ``N(0, 1)`` in the flow scale for flow matching; ``"exact"`` from ``N(0, S + sigma_max^2)``. Returns an
    array with the shape of ``spectrum``. float32 sigmas (k-diffusion's ``get_sigmas_*`` default) are decided as
    k-diffusion decides on them (churn window, ancestral ``min``); a ``UserWarning`` when its float32 ``sigma_down``
    cancels beyond 1e-3 relative for ``dpm_2_ancestral`` or ``dpmpp_2s_ancestral`` (its run then differs from the
    closed form; README, k-diffusion samplers).
    Raises ValueError (TypeError for a wrong type) naming a bad argument, or for an output float64 cannot
    represent. Source: the sampler's update equations in ``symsched/symbolic/samplers/``, composed as in
    docs/model.md §5, §9 (k-diffusion ``sampling.py`` for its samplers).
    """
    S = as_spectrum(spectrum)
    return _output(S, _ve_levels(sigmas), "sigma", sampler, init, settings)


@numpy_error_defaults
def transfer_function_ve(spectrum: ArrayLike, sigmas: ArrayLike, *, sampler: str = "euler", **settings: Any) -> Array:
    """Transfer function H(S) of a sampler on ``sigmas``: ``x_out = H x`` for a start ``x`` in the sampler's own scale.

    The scale is the sampler's, as in :func:`output_spectrum_ve`'s white start: the VE samplers (:data:`VE_SAMPLERS`)
    take ``x = x0 + sigma_max eps``; the VP ones ``x = sqrt(alpha_bar_0) x0 + sqrt(1 - alpha_bar_0) eps`` (the same H
    as :func:`transfer_function` on those levels, ``alpha_bar = 1/(1 + sigma^2)``); flow matching
    ``x = (1 - t_0) x0 + t_0 eps``.

    ``spectrum`` any shape, ``sigmas`` (K,) or (K + 1,) as in :func:`output_spectrum_ve` (no ``init``: H does not
    depend on the starting distribution); returns an array with the shape of ``spectrum``; float32 sigmas as in
    :func:`output_spectrum_ve` (and its warning). Raises ValueError
    (TypeError for a wrong type) naming a bad argument, or for a value float64 cannot represent. Source: the
    sampler's update equations in ``symsched/symbolic/samplers/``, composed as in docs/model.md §5, §9 (k-diffusion
    ``sampling.py`` for its samplers).
    """
    S = as_spectrum(spectrum)
    return _transfer(S, _ve_levels(sigmas), "sigma", sampler, settings)


# ---------------------------------------------------------------------------------------------
# divergences
# ---------------------------------------------------------------------------------------------
def _divergence_terms(name: str, generated: Array, data: Array) -> Array:
    """Per-mode terms of a divergence (generated kernel); modes with generated == data (zeros included) give 0. A
    term that left float64 though both variances are positive is evaluated again in longdouble (KL's ratio p/q
    overflows beyond 1.8e308 while the term, about p/(2q), may not: ``kl_divergence([1.5e308], [0.5])`` was inf;
    audit of 6 December) and is inf only when the term itself is beyond float64."""
    kernel = divergence_kernel(name)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        f = kernel(generated, data)[0]
        f = np.array(np.broadcast_to(f, data.shape), dtype=np.float64)
        wide = ~np.isfinite(f) & (generated > 0) & (data > 0)
        if wide.any():
            g, d = generated[wide].astype(np.longdouble), data[wide].astype(np.longdouble)
            f[wide] = np.asarray(np.broadcast_to(kernel(g, d)[0], g.shape), dtype=np.float64)
    f[generated == data] = 0.0
    if name != "w2":  # a KL term where generated ~ data: from its series in m = generated/data - 1 (no cancellation)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            m = (generated - data) / data
        near = (np.abs(m) < KL_SERIES_RADIUS) & (generated != data)
        if near.any():
            f[near] = np.broadcast_to(kl_series_kernel(name)(m[near])[0], m[near].shape)
    return f


@numpy_error_defaults
def kl_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """KL(N(0, diag p) || N(0, diag q)) = 1/2 sum (p/q - 1 - log(p/q)), summed over all modes.

    ``p`` and ``q`` have the same shape, non-negative. Each mode is evaluated in the ratio form of
    :mod:`symsched.symbolic.divergences` (``log p - log q`` never overflows; the ratio may), so the
    value is right over the whole float64 range: ``kl_divergence([1e-200], [1e200]) = 460.0``; within 1 % of
    each other (``|q/p - 1| < 1e-2``, where ``r - 1 - log r`` cancels) a term is the generated Taylor series in
    ``m = (q - p)/p`` (:func:`symsched.engine.divergence.kl_series_kernel`): ``kl_divergence([1], [1 + 2**-52])``
    is 1.2326e-32, to the last digits.
    Modes with ``p == q`` (zero modes included) contribute 0; a mode where exactly one of them is 0,
    or whose term exceeds the float64 range, makes the divergence ``inf``.
    Raises ValueError (TypeError for a wrong type) naming ``p`` or ``q``. Source: docs/model.md §6 (the
    Gaussian KL with commuting covariances); the ratio form ``symsched/symbolic/divergences.py``.
    """
    P = as_spectrum(p, "p")
    Q = as_spectrum(q, "q")
    check_same_shape(P, Q, "p", "q")
    # kernel "kl" is KL(data || generated) with arguments (generated, data): KL(p||q) = kernel(q, p)
    with np.errstate(over="ignore"):  # finite terms whose sum exceeds float64: KL = inf, without a NumPy warning
        return float(np.sum(_divergence_terms("kl", Q.ravel(), P.ravel())))


@numpy_error_defaults
def w2_distance(p: ArrayLike, q: ArrayLike) -> float:
    """W2(N(0, diag p), N(0, diag q)) = sqrt(sum (sqrt p - sqrt q)^2) (not squared); same shapes.

    Formed as a scaled sum ``c * sqrt(sum (a/c)^2)`` of the amplitudes ``a = |sqrt p - sqrt q|``
    (``c = max a``; each as ``|p - q| / (sqrt p + sqrt q)``, which does not cancel where p ≈ q), so it neither
    overflows nor underflows nor loses digits: ``w2_distance([1.7e308]*2, [0, 0])`` is 1.84e154,
    ``w2_distance([1], [1 + 2**-52])`` 1.11e-16. Raises ValueError (TypeError for a wrong type) naming ``p`` or ``q``.
    Source: docs/model.md §6; Dowson & Landau 1982 (W2 between Gaussians, here with commuting covariances).
    """
    P = as_spectrum(p, "p")
    Q = as_spectrum(q, "q")
    check_same_shape(P, Q, "p", "q")
    with np.errstate(invalid="ignore", divide="ignore"):  # (0/0 of the branch p == q not taken, e.g. both 0)
        a = np.asarray(np.broadcast_to(w2_amplitude_kernel()(P.ravel(), Q.ravel())[0], P.size), dtype=np.float64)
    c = float(np.max(a))
    return 0.0 if c == 0.0 else c * math.sqrt(float(np.sum(np.square(a / c))))


def _weights(weights: ArrayLike | None, S: Array) -> Array:
    if weights is None:
        return np.ones(S.size)
    w = as_spectrum(weights, "weights", "per-mode weights w >= 0")
    check_same_shape(w, S, "weights", "spectrum")
    return w.ravel()


#: weights within [2^-ONE_SCALE, 2^ONE_SCALE] (the largest of them) are used as given, without a power-of-two scale
_ONE_SCALE = 2.0**64


@dataclass(frozen=True)
class Grouped:
    """Sorted unique modes ``u`` with their summed weights ``w * 2**-e``; ``w_max``: the user's largest weight, for
    messages. J and its gradient are linear in the weights, so the scale is exact and undone at the end.

    With the largest weight below 2^-64 all are scaled up (e < 0: none moves closer to underflow). With it above
    2^64 they are kept unscaled (e = 0, or the few powers of two that keep sums of equal modes' weights finite) and
    ``wide`` is set: the objective then forms in longdouble the weighted terms and slopes that leave the float64
    normal range. One scale 2^-e from the largest weight made the others' terms subnormal or 0 (weights
    [1e300, 1e-300] on modes of equal share gave J = 1 for 2; [1e308, 1] on S = [0, 1e-20] gave J = 0). ``alt``: the
    same modes under the other choice, run where this one raises (:func:`_with_alt`): a weighted J or gradient
    beyond float64 is then named ``weights`` as before, and a largest weight below 2^-64 that brings a term beyond
    float64 back into range is not refused."""

    u: Array
    w: Array
    e: int
    w_max: float
    wide: bool = False
    alt: Optional[Grouped] = None


def _summed(u: Array, inv: NDArray[np.intp], w: Array, e: int, w_max: float, wide: bool) -> Grouped:
    """The modes ``u`` with the weights ``w * 2**-e`` of equal modes summed; modes of weight 0 are dropped when
    another mode weighs: they contribute nothing, also where their term is +inf (KL of an S = 0 mode a sampler leaves
    noisy), which 0 * inf would turn into NaN."""
    with np.errstate(over="ignore"):
        ws = np.bincount(inv, weights=np.ldexp(w, -e) if e else w, minlength=u.size)
    keep = ws > 0.0
    if keep.any() and not keep.all():
        u, ws = u[keep], ws[keep]
    return Grouped(u, ws, e, w_max, wide)


def _grouped(S: Array, w: Array, *, one_scale: bool = False) -> Grouped:
    """De-duplicate modes, summing their weights (see :class:`Grouped` for the scale). ``one_scale``: every weight
    scaled by the one power of two 2^-e that brings the largest sum to at most 1 (e = 0 within [2^-64, 2^64]), the
    objective of the schedule search (whose J 2^-e must be one float64 function)."""
    u, inv, _ = _unique(S)
    w_max = float(w.max(initial=0.0))
    e = 0
    if w_max > 0.0 and not 1.0 / _ONE_SCALE <= w_max <= _ONE_SCALE:
        e = math.frexp(w_max)[1] + int(w.size).bit_length()  # every sum of scaled weights is at most 1
    one = _summed(u, inv, w, e, w_max, False)
    if one_scale or e == 0:
        return one
    if e < 0:  # scaled up: exact; unscaled where a tiny weight's term beyond float64 left it once scaled
        return replace(one, alt=_summed(u, inv, w, 0, w_max, True))
    grp = _summed(u, inv, w, 0, w_max, True)
    if not np.all(np.isfinite(grp.w)):  # equal modes' weights sum beyond float64: 2^-bit_length(n) keeps them below
        grp = _summed(u, inv, w, int(w.size).bit_length(), w_max, True)
    return replace(grp, alt=one)


def _with_alt(run: Callable[[Grouped], Any], grp: Grouped) -> Any:
    """``run(grp)``; where that raises ValueError and ``grp.alt`` exists, ``run(grp.alt)``. Where both raise, the
    error is the one-scale grouping's (``grp`` for scaled-up weights, ``grp.alt`` for large ones), as before."""
    try:
        return run(grp)
    except ValueError as first:
        if grp.alt is None:
            raise
        try:
            return run(grp.alt)
        except ValueError:
            if grp.e < 0:
                raise first from None
            raise


def _unscale(J: float, g: Optional[Array], grp: Grouped, infinite: bool) -> tuple[float, Optional[Array]]:
    """Undo the weights' power-of-two scale; ValueError naming ``weights`` where that leaves float64."""
    with np.errstate(over="ignore"):
        J = float(np.ldexp(J, grp.e))
        g = None if g is None else np.ldexp(g, grp.e)
    if (g is not None and not np.all(np.isfinite(g))) or not (math.isfinite(J) or infinite):
        raise ValueError(f"weights: with these weights (largest {grp.w_max:.6g}) the divergence or its gradient "
                         "exceeds the float64 range (both are linear in the weights: scale them down)")
    return J, g


#: ratios r = P/S beyond which the per-mode terms are evaluated in longdouble (r^2 leaves float64 near 2^512)
_WIDE_RATIO = 2.0**480


def _wide_terms(fn: Any, f: Array, d: Array, pos: Array, r: Array, rho: Array, S: Array, scale: Array
                ) -> tuple[Array, Array]:
    """Redo in longdouble the modes whose ratio r is extreme or whose term or dJ/drho = (dJ/dr)(kappa/S) left
    float64 on the way (e.g. KL's (r - 1)/(2 r^2): r^2 overflows at r = 1e160 and the slope came out 0; at
    r = 1e-155 it came out inf). Returns ``(f, d)``, each in longdouble when some of its entries lie beyond the
    float64 range themselves (KL's S/(2P) = 1e320 of a subnormal mode, which a small weight brings back into range;
    its slope -1/(2 r^2) = -5e595 at r = 1e-298): the caller sums ``w f`` in that type, and the backward sweep
    scales the adjoint before any product (``recursion._adjoint_scales``). ``r = rho[pos] scale`` (float64) picks the
    modes; for them r is formed again from ``rho`` (every mode's) and ``scale`` (the positive modes' kappa/S) in
    longdouble, where it may lie beyond float64 itself (P/S = 1e322 of a subnormal mode under a noise floor:
    KL(data||gen) ~ log(r)/2 is finite)."""
    with np.errstate(all="ignore"):
        at = ~np.isfinite(d[pos]) | ~np.isfinite(f[pos]) | (r > _WIDE_RATIO) | (r < 1.0 / _WIDE_RATIO)
    if not at.any():
        return f, d
    sel = np.flatnonzero(pos)[at]
    with np.errstate(all="ignore"):
        fk, dk = fn(rho[sel].astype(np.longdouble) * scale[at].astype(np.longdouble), S[sel].astype(np.longdouble))
        terms = np.asarray(fk, dtype=np.longdouble)
        if not np.all(np.isfinite(terms.astype(np.float64)) | ~np.isfinite(terms)):
            f = f.astype(np.longdouble)
        f[sel] = terms
        wide = np.asarray(dk, dtype=np.longdouble) * scale[at].astype(np.longdouble)
        if not np.all(np.isfinite(wide.astype(np.float64))):
            d = d.astype(np.longdouble)
        d[sel] = wide
    return f, d


#: the smallest normal float64: a weighted term or slope below it (and not an exact 0) has lost digits
_TINY = float(np.finfo(np.float64).tiny)


def _heavy_terms(fn: Any, f: Array, d: Array, pos: Array, r: Array, S: Array, scale: Array, ww: Array
                 ) -> tuple[Array, Array]:
    """With unscaled weights (``Grouped.wide``): redo in longdouble the terms and slopes of the modes weighing more
    than 1 whose term or slope lies below the float64 normal range (W2's S (sqrt r - 1)^2 of a subnormal mode S
    keeps a handful of bits, or none, that a weight of 1e300 would bring back into range). Returns ``(f, d)`` in
    longdouble where some mode was redone."""
    with np.errstate(all="ignore"):
        low = (ww[pos] > 1.0) & ((np.abs(f[pos]) < _TINY) | (np.abs(d[pos]) < _TINY))
    if not low.any():
        return f, d
    sel = np.flatnonzero(pos)[low]
    with np.errstate(all="ignore"):
        fk, dk = fn(r[low].astype(np.longdouble), S[sel].astype(np.longdouble))
        f, d = f.astype(np.longdouble), d.astype(np.longdouble)
        f[sel] = np.asarray(fk, dtype=np.longdouble)
        d[sel] = np.asarray(dk, dtype=np.longdouble) * scale[low].astype(np.longdouble)
    return f, d


def _lost(p: Array, w: Array, x: Array) -> bool:
    """Whether some product ``p = w x`` of a finite weight and a nonzero finite ``x`` left the float64 normal
    range (overflow to inf, or a subnormal or 0)."""
    a = np.abs(p)
    return bool(np.any((w > 0) & (x != 0) & np.isfinite(x) & ((a < _TINY) | np.isinf(a))))


def _weighted(w: Array, f: Array, d: Array) -> tuple[float, Array]:
    """(sum w f, w d) with unscaled weights (``Grouped.wide``): in float64 where every product stays in its normal
    range (so a uniform power-of-two weight still scales J and the gradient exactly), else in longdouble, whose range
    holds any product of two float64 (the backward sweep scales such an adjoint, ``recursion._adjoint_scales``)."""
    with np.errstate(all="ignore"):
        wf, wd = w * f, w * d
        if wf.dtype == np.float64 and not _lost(wf, w, f):
            J = float(np.sum(wf))
        else:
            J = float(np.sum(w.astype(np.longdouble) * f))
        if wd.dtype == np.float64 and _lost(wd, w, d):
            wd = w.astype(np.longdouble) * d
    return J, wd


#: relative rounding of r = P/S that the float64 sweeps may leave, per level (a bound: a few ulp per step)
_RATIO_ULP_PER_LEVEL = 8 * 2.0**-52
#: a term is unresolved when |P/S - 1| lies within this many of those roundings (3 digits or fewer) ...
_UNRESOLVED_RATIO = 1e3
#: ... and its rounding floor (W2: w S times the rounding squared; KL: w times it) could move the objective by more
#: than this fraction
#: (the bound is pessimistic: a sweep rounds r by a few ulp, not 8 per level; a tighter fraction refined hundreds
#: of modes of a good fit, Heun on 200 Karras levels, whose J float64 gives to 2e-5). The value is refined; the
#: gradient keeps the float64 sweep's sensitivities (divergence_and_grad's accuracy note)
_W2_RESOLVE = 1e-3
#: most distinct modes whose terms :func:`_refined` recomputes in mpmath (each a high-precision run)
MAX_REFINED_MODES = 32
#: a metric computed once (:func:`_schedule_divergences`, not an objective evaluated at every step of a search)
#: recomputes up to this many mode-levels (distinct modes times levels; about 1 ms each) in mpmath
MAX_REFINED_METRIC_STEPS = 5000


class W2Unresolved(ValueError):
    """More terms (of W2, or of a KL) than may be recomputed in mpmath are unresolved in float64
    (:func:`_unresolved`); ``count``: how many distinct modes."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


def _unresolved(divergence: str, rho: Array, S: Array, w: Array, n_levels: int, J: float, init: str,
                done: dict[float, float], max_refined: int = MAX_REFINED_MODES) -> Array:
    """The distinct modes S, other than those ``done``, whose term the rounded ratio cannot give: P/S within
    rounding of 1 for a mode whose rounding floor matters to J. W2's term S (sqrt(P/S) - 1)^2 has the floor S u^2
    (an exact start at S = 1e33 left J = 12.4 for 0.058, at 1e300 1.5e267; audit of 5 December), a KL's ~(P/S - 1)^2
    the floor u^2, which only a weight magnifies (w = 1e50 on S = 1e20 from the exact start: J = 497 for 1.7e13;
    audit of 6 December); both times the mode's weight. Decided on the whole
    objective ``J``, so that the value and the gradient paths, which sweep the modes in different chunks, agree
    (a ``J`` of 0, every ratio rounded to 1, refines every such mode). :class:`W2Unresolved` naming ``spectrum``
    beyond ``max_refined`` of them in all."""
    pos = (S > 0) & (w > 0) & ~np.isin(S, np.fromiter(done, dtype=np.float64))
    if not (math.isfinite(J) and pos.any()):
        return np.empty(0)
    Sp = S[pos]
    with np.errstate(over="ignore", invalid="ignore"):
        m = np.asarray(rho[pos] * recursion.kappa(Sp) / Sp, dtype=np.float64) - 1.0
        u = _RATIO_ULP_PER_LEVEL * n_levels
        floor = w[pos] * (Sp if divergence == "w2" else 1.0) * u * u
        near = np.abs(m) < _UNRESOLVED_RATIO * u
        # an unresolved term cannot vouch for itself: J without the near modes' own terms (their rounding made
        # dpmpp_2m's exact start at S = 1e26 give J = 7.4 for 5.5e-24, which then hid it; audit of 5 December)
        if not near.any():
            return np.empty(0)
        own = (w2_complement_kernel()(m[near], Sp[near]) if divergence == "w2"
               else ratio_divergence_kernel(divergence)(1.0 + m[near], Sp[near]))[0]
        rest = max(J - float(np.sum(w[pos][near] * np.asarray(own))), 0.0)
    out = Sp[near & (floor > _W2_RESOLVE * rest)]
    if out.size + len(done) > max_refined:
        advice = "use init='white' (where P/S stays away from 1) or" if init == "exact" else "use"
        raise W2Unresolved(
            f"spectrum: {out.size + len(done)} distinct modes (largest S = {float(out.max()):.4g}) have outputs equal "
            f"to their variance within float64 rounding, where the {divergence} term is not resolved (its rounding "
            f"floor exceeds {_W2_RESOLVE:g} of the objective); at most {max_refined} are "
            f"recomputed in mpmath: {advice} another divergence", out.size + len(done))
    return out


def _refined(S_sel: Array, x: Array, coordinate: str, sampler: Any, init: str, settings: dict[str, Any]
             ) -> dict[float, float]:
    """{S: m = P/S - 1} to full relative precision for the modes ``S_sel`` (mpmath: the same update equations, 30
    digits past the mode's own scale), for :func:`_objective`'s complement form of the terms."""
    import mpmath

    from .engine.highprec import _run

    todo = sorted({float(v) for v in S_sel})
    dps = int(math.log10(max(todo))) + 30 if max(todo) > 1.0 else 30
    P = _run(np.array(todo), x, coordinate, sampler, init, dps, settings)
    with mpmath.workdps(dps + 10):
        return {v: float(p / mpmath.mpf(v) - 1) for v, p in zip(todo, P)}


def _resolved(divergence: str, objective: Any, result: tuple[float, Any], rho: Array,
              run: Callable[[Any], tuple[float, Any]], grp: Grouped, x: Array, coordinate: str, sampler: Any, init: str,
              settings: dict[str, Any], max_refined: int = MAX_REFINED_MODES) -> tuple[Any, tuple[float, Any]]:
    """(objective, ``run(objective)``) once no term is left unresolved (:func:`_unresolved`): ``result`` =
    (J, ...) of the first run, rerun with the exact complement (:func:`_refined`) of every mode found, until none
    is new (a huge mode's rounding can hide a smaller one's: 1e300's J of 1e267 hid 1e40's 1e8)."""
    refined: dict[float, float] = {}
    while True:
        redo = _unresolved(divergence, rho, grp.u, grp.w, np.size(x), result[0], init, refined, max_refined)
        if not redo.size:
            return objective, result
        refined.update(_refined(redo, x, coordinate, sampler, init, settings))
        objective = _objective(divergence, grp.w, refined, wide=grp.wide)
        result = run(objective)


def _complement_terms(divergence: str, f: Array, d: Array, pos: Array, S: Array, scale: Array,
                      refined: dict[float, float]) -> tuple[Array, Array]:
    """``(f, d)`` with the terms and slopes of the modes in ``refined`` from their exact ``m = P/S - 1``
    (:func:`symsched.engine.kernels.w2_complement_kernel`, or :func:`~symsched.engine.kernels.kl_complement_mp`
    in mpmath with enough digits for its cancellation)."""
    keys = np.fromiter(refined, dtype=np.float64)
    hit = np.isin(S[pos], keys)
    if not hit.any():
        return f, d
    at = np.flatnonzero(pos)[hit]
    m = np.array([refined[float(v)] for v in S[at]], dtype=np.float64)
    if divergence == "w2":
        fk, dk = w2_complement_kernel()(m, S[at])
        f[at] = fk
        d[at] = np.asarray(dk) * scale[hit]
        return f, d
    fk, dk = _kl_complement(divergence, m)  # in longdouble: a term ~m^2/4 may lie below float64 (m = 6e-289)
    dk = dk * scale[hit].astype(np.longdouble)
    if np.any((fk.astype(np.float64) == 0) & (fk != 0)) or np.any((dk.astype(np.float64) == 0) & (dk != 0)):
        f, d = f.astype(np.longdouble), d.astype(np.longdouble)  # summed in that type (as _wide_terms)
    f[at] = fk
    d[at] = dk
    return f, d


def _kl_complement(divergence: str, m: Array) -> tuple[Array, Array]:
    """KL terms and slopes d/dm (longdouble) of exact complements ``m``, evaluated with 40 digits plus twice the
    digits the term's cancellation costs."""
    import mpmath

    fn = kl_complement_mp(divergence)
    out = np.empty((2, m.size), dtype=np.longdouble)
    for i, v in enumerate(m):
        digits = 40 + (2 * int(-math.log10(abs(v))) if v != 0 else 0)
        with mpmath.workdps(digits):
            out[:, i] = [np.longdouble(mpmath.nstr(e, 25, strip_zeros=False)) for e in fn(mpmath.mpf(float(v)))]
    return out[0], out[1]


def _objective(divergence: str, w: Array, refined: Optional[dict[float, float]] = None, *, wide: bool = False
               ) -> Any:
    """The objective for :func:`recursion.value_and_grad`: per-mode terms of the ratio r = P/S.

    The engine gives rho = P/kappa; r = rho kappa / S is exact (kappa = S) for tiny modes. ``refined``
    (:func:`_refined`) gives the exact ``P/S - 1`` of the modes whose terms the ratio cannot resolve.
    ``wide``: the weights ``w`` are unscaled and may lie anywhere in float64 (:class:`Grouped`): terms, slopes and
    their weighted products that leave the float64 normal range are formed in longdouble (:func:`_heavy_terms`,
    :func:`_weighted`).
    """
    fn = ratio_divergence_kernel(divergence)

    def objective(rho: Array, kap: Array, S: Array, sub: slice) -> tuple[float, Array]:
        ww = w[sub]
        kap = np.broadcast_to(kap, S.shape)
        pos = S > 0
        f = np.zeros_like(S)
        d = np.zeros_like(S)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scale = kap[pos] / S[pos]
            r = rho[pos] * scale
            fk, dk = fn(r, S[pos])
            f[pos] = fk
            d[pos] = np.asarray(dk) * scale
            f, d = _wide_terms(fn, f, d, pos, r, rho, S, scale)
            if wide:
                f, d = _heavy_terms(fn, f, d, pos, r, S, scale, ww)
            if refined:
                f, d = _complement_terms(divergence, f, d, pos, S, scale, refined)
            if divergence != "w2":  # nothing generated where there is data: KL is +inf (not inf - inf)
                f[pos] = np.where(r == 0, np.inf, f[pos])
        zero = ~pos  # S = 0: kappa = 1, rho = P
        if divergence == "w2":
            f[zero] = rho[zero]
            d[zero] = 1.0
        else:
            f[zero] = np.where(rho[zero] == 0, 0.0, np.inf)
        d[np.isinf(f)] = 0.0  # a mode whose own term is +inf (KL where nothing is generated) has no slope
        # KL's true +inf: nothing generated where there is data, or something where there is none (a finite term
        # beyond the float64 range, e.g. KL ~ S/(2P) of a subnormal mode, is not: the caller refuses that J)
        truly = np.zeros(S.shape, dtype=bool)
        if divergence != "w2":
            truly[pos] = r == 0
            truly[zero] = rho[zero] != 0
        if np.any(truly & (ww > 0)):
            objective.infinite = True  # type: ignore[attr-defined]
        if wide:
            return _weighted(ww, f, d)
        with np.errstate(over="ignore"):  # a sum beyond float64 is inf, which every caller checks and names
            return float(np.sum(ww * f)), ww * d

    objective.infinite = False  # type: ignore[attr-defined]  # set when a mode's own term is +inf
    return objective


def _value_and_grad(S: Array, x: Array, coordinate: str, divergence: Any, sampler: Any, init: Any,
                    weights: ArrayLike | None, settings: dict[str, Any],
                    convert: Callable[[Array], Array] = lambda g: g) -> tuple[float, Array]:
    """(J, convert(dJ/d log-SNR)) of a validated spectrum and levels (see :func:`grouped_value_and_grad`)."""
    return grouped_value_and_grad(_grouped(S, _weights(weights, S)), x, coordinate, divergence, sampler, init,
                                  settings, convert)


class Unrepresentable(ValueError):
    """A divergence whose value lies beyond the float64 range (the output spectrum itself is representable)."""


@numpy_error_defaults
def grouped_value_and_grad(grp: Grouped, x: Array, coordinate: str, divergence: Any, sampler: Any, init: Any,
                           settings: dict[str, Any], convert: Callable[[Array], Array] = lambda g: g
                           ) -> tuple[float, Array]:
    """(J, convert(dJ/d log-SNR)) on grouped modes: ``convert`` chains the gradient to the caller's coordinate
    before the weights' power-of-two scale is undone, so that no subnormal intermediate is rounded twice. Weights
    beyond [2^-64, 2^64] are run under the grouping's other scale where the first raises (:func:`_with_alt`)."""
    name, options, params = _setup(sampler, settings)
    check_choice(init, "init", INITS)
    check_choice(divergence, "divergence", DIVERGENCES)
    prog = _program.build_program(name, options, params, x, coordinate, grad=True)
    exact = _exact(x, coordinate, sampler, init, settings)

    def run(grp: Grouped) -> tuple[float, Array]:
        objective = _objective(divergence, grp.w, wide=grp.wide)
        J, g_l, rho = recursion.value_and_grad(prog, grp.u, init, objective, exact=exact)
        # (rarely) again, with the exact complement of the modes the ratio cannot resolve
        objective, (J, g_l) = _resolved(
            divergence, objective, (J, g_l), rho,
            lambda obj: recursion.value_and_grad(prog, grp.u, init, obj, exact=exact)[:2],
            grp, x, coordinate, sampler, init, settings)
        if not (math.isfinite(J) or (J == math.inf and objective.infinite)):  # KL's true +inf is kept
            raise Unrepresentable(f"spectrum: the divergence ({J}) is not representable in float64 for this schedule")
        try:
            J, g = _unscale(J, convert(g_l), grp, objective.infinite)
        except ValueError:  # the weights' fault, or the conversion's (dJ/d alpha_bar = g_l / 1e-150 under w = 1e100:
            _unscale(J, g_l, grp, objective.infinite)  # the log-SNR gradient is finite; audit of 6 December)
            with np.errstate(over="ignore"):
                convert(np.ldexp(g_l, grp.e))  # raises naming the levels (use wrt="log_snr") where that overflows
            raise
        assert g is not None
        if J == math.inf:  # an infinite KL (data without output, or output without data) has no slope: zero, as
            g = np.zeros(np.shape(g))  # documented (the finite modes' terms once gave DEIS a gradient beside inf)
        return J, g

    return _with_alt(run, grp)


@numpy_error_defaults
def grouped_value(grp: Grouped, x: Array, coordinate: str, divergence: Any, sampler: Any, init: Any,
                  settings: dict[str, Any]) -> float:
    """J alone on grouped modes (:func:`grouped_values` for one divergence)."""
    return grouped_values(grp, x, coordinate, (divergence,), sampler, init, settings)[divergence]


@numpy_error_defaults
def grouped_values(grp: Grouped, x: Array, coordinate: str, divergences: Any, sampler: Any, init: Any,
                   settings: dict[str, Any], max_refined: int = MAX_REFINED_MODES) -> dict[str, float]:
    """J of each divergence on grouped modes, from one trusted forward sweep in the ratio form rho = P / kappa (the
    terms of :func:`grouped_value_and_grad`, so exact where P itself underflows: modes far below 1e-154); at most
    ``max_refined`` distinct modes' terms recomputed in mpmath (:func:`_unresolved`)."""
    name, options, params = _setup(sampler, settings)
    check_choice(init, "init", INITS)
    for divergence in divergences:
        check_choice(divergence, "divergence", DIVERGENCES)
    prog = _program.build_program(name, options, params, x, coordinate)
    exact = _exact(x, coordinate, sampler, init, settings)

    def run(grp: Grouped) -> dict[str, float]:  # as in grouped_value_and_grad, under the grouping's other scale
        rho = recursion.checked_ratio(prog, grp.u, init, exact)
        if not np.all(np.isfinite(rho)):
            i = int(np.flatnonzero(~np.isfinite(rho))[0])
            raise _program.diverged(prog, float(grp.u[i]))
        rho = recursion.below_float64(prog, grp.u, init, rho)  # r ~ S for subnormal modes: kept in longdouble
        kap = recursion.kappa(grp.u)
        out = {}
        for divergence in divergences:
            objective = _objective(divergence, grp.w, wide=grp.wide)
            J, _ = objective(rho, kap, grp.u, slice(None))
            objective, (J, _) = _resolved(  # as grouped_value_and_grad
                divergence, objective, (J, None), rho, lambda obj: obj(rho, kap, grp.u, slice(None)),  # noqa: B023
                grp, x, coordinate, sampler, init, settings, max_refined)
            if not (math.isfinite(J) or (J == math.inf and objective.infinite)):
                raise Unrepresentable(
                    f"spectrum: the divergence ({J}) is not representable in float64 for this schedule")
            out[divergence] = _unscale(J, None, grp, objective.infinite)[0]
        return out

    return _with_alt(run, grp)


def _schedule_divergences(S: Array, x: Array, coordinate: str, sampler: Any, init: Any,
                          settings: dict[str, Any], output: Callable[[], Array]) -> dict[str, float]:
    """KL(data||gen), KL(gen||data) and W2 (not squared) of one schedule, unweighted, in the ratio form of
    :func:`grouped_values` (exact where P underflows); ``inf`` for a KL beyond the float64 range. Where W2 squared
    overflows W2 need not: then the scaled sum of :func:`w2_distance` on ``output()``, the output spectrum. Terms
    that float64 cannot resolve (P/S within rounding of 1) are recomputed in mpmath up to
    :data:`MAX_REFINED_METRIC_STEPS` mode-levels; beyond, that divergence is :func:`w2_distance` or
    :func:`kl_divergence` on ``output()`` with a :class:`UserWarning` (a schedule whose output matches the data to
    rounding: the other values are kept)."""
    grp = _grouped(S.ravel(), np.ones(S.size))
    cap = max(MAX_REFINED_MODES, MAX_REFINED_METRIC_STEPS // max(np.size(x), 1))
    try:
        out = grouped_values(grp, x, coordinate, DIVERGENCES, sampler, init, settings, cap)
    except (Unrepresentable, W2Unresolved):  # one of them lies beyond float64 or W2 below its rounding: each alone
        out, unresolved = {}, {}
        for d in DIVERGENCES:
            try:
                out[d] = grouped_values(grp, x, coordinate, (d,), sampler, init, settings, cap)[d]
            except Unrepresentable:
                out[d] = math.inf
            except W2Unresolved as exc:
                unresolved[d] = exc.count
        if unresolved:
            out.update(_unresolved_metrics(list(unresolved), output(), S, max(unresolved.values()), cap))
    out["w2"] = math.sqrt(out["w2"]) if math.isfinite(out["w2"]) else w2_distance(output(), S)
    return out


#: Short display name of each divergence (warnings; optimize's tables and explain's console lines).
DIVERGENCE_NAMES = {"kl": "KL", "kl-reverse": "reverse KL", "w2": "W2"}


def _unresolved_metrics(divergences: list[str], P: Array, S: Array, count: int, cap: int) -> dict[str, float]:
    """The float64 values of ``divergences`` on the output spectrum ``P`` (W2 squared), with one
    :class:`UserWarning` saying that ``count`` modes, more than ``cap``, lie within rounding of their variance."""
    shown_values = {d: w2_distance(P, S) if d == "w2" else kl_divergence(S, P) if d == "kl" else kl_divergence(P, S)
                    for d in divergences}  # (W2 itself, as the metrics give it)
    names = [DIVERGENCE_NAMES[d] for d in divergences]
    shown = ", ".join(f"{shown_values[d]:.3g}" for d in divergences)
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb, what = ("lies", "it is the float64 value") if len(names) == 1 else ("lie", "they are the float64 values")
    warn_caller(f"{joined} of this schedule ({shown}) {verb} at the level of float64 rounding: {count} distinct modes "
                f"have outputs equal to their variance within rounding, more than the {cap} a metric recomputes in "
                f"mpmath (symsched.api.MAX_REFINED_METRIC_STEPS = {MAX_REFINED_METRIC_STEPS} mode-levels): {what} "
                "of the output spectrum")
    return {d: v * v if d == "w2" else v for d, v in shown_values.items()}


@numpy_error_defaults
def divergence_and_grad(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    divergence: Literal["kl", "kl-reverse", "w2"] = DEFAULT_DIVERGENCE,
    sampler: str = "ddim",
    init: Literal["white", "exact"] = "white",
    weights: ArrayLike | None = None,
    wrt: Literal["alpha_bar", "log_snr"] = "alpha_bar",
    **settings: Any,
) -> tuple[float, Array]:
    """Divergence J between data and generated Gaussians and dJ/d(level) for every level.

    ``"kl"`` = KL(data || generated) = 1/2 sum w (S/P - 1 - log(S/P)), ``"kl-reverse"`` =
    KL(generated || data), ``"w2"`` = W2^2 = sum w (sqrt P - sqrt S)^2, with optional per-mode
    ``weights`` (shape of ``spectrum``, default 1); the default divergence is :data:`DEFAULT_DIVERGENCE` (W2, as
    everywhere in symsched). The gradient (shape (K,)) is taken with respect
    to ``alpha_bar`` or, with ``wrt="log_snr"``, to the levels' log-SNR; it chains the symbolic
    per-step derivatives through one forward and one backward (adjoint) sweep: O(K * modes) time. For K >= 64
    levels and many modes the backward sweep runs over a few hundred nodes in ln S instead, the modes' cotangents
    carried there by the transpose of local Lagrange interpolation (every per-mode derivative is analytic in ln S;
    checked on each call, errors the size of the full adjoint's own rounding; README "The interpolated adjoint").
    A level at ``alpha_bar = 0`` is a fixed end of the range: its derivative is reported as 0.
    Settings as in :func:`output_spectrum`. Returns ``(J, grad)``: a float and an array of shape (K,). J is
    ``inf`` (with a zero gradient) where a KL is infinite, a mode with data and no output (P = 0: DDIM from
    ``alpha_bar = 0`` in one step) or output and no data; a finite J beyond float64 is a ValueError instead.
    Accuracy: like any adjoint, each log-SNR entry carries an absolute rounding error of a few ulps of the
    per-mode terms it sums (float64 and longdouble sweeps agree to that), so an entry far below them (a level
    where J is flat) has few correct digits, and ``wrt="alpha_bar"`` divides that error by
    ``alpha_bar (1 - alpha_bar)``: at levels within ~1e-12 of 0 or 1 prefer ``wrt="log_snr"``, which the
    optimiser uses. Samplers with memory on two levels closer than ~0.05 in log-SNR are the exception: their
    coefficients' level derivatives cancel, and the entries at those levels can be off by far more (measured on
    6 December at a gap of 1e-3: LMS 1.5e-4 relative, DPM-Solver++ 2M 2.6e-6, UniPC 2e-8, DEIS exact; at a gap of
    0.05 LMS 5e-9); the value stays exact, and gaps below ~1e-6 are refused. A mode whose P/S float64 cannot tell
    from 1 (a huge mode with ``init="exact"``) has its term
    recomputed in mpmath where its rounding matters to J (W2's S (sqrt(P/S) - 1)^2; a KL term ~(P/S - 1)^2/4 under a
    large weight), but its gradient still comes from the float64 sweep, an absolute error of
    ~1e-15 w S |d(P/S)| (W2) or ~1e-15 w |d(P/S)| (KL) per entry: where such modes alone make J (S = 1e20 alone:
    J = 4e-18), the gradient is rounding (use ``init="white"``, or weigh the mode down). "Cannot tell" means P/S
    within ~1e3 roundings of 1 (3 digits or fewer); a term with a few more keeps float64's relative error
    ~1e-16/|P/S - 1| (``init="exact"`` at ``alpha_bar = 1 - 4e-12``, S = 1: W2 5.5e-5 off).
    Raises ValueError (TypeError for a wrong type) naming a bad argument (``weights`` of another shape or
    negative, an unknown divergence, ...), or for a value float64 cannot represent.
    Source: divergences of docs/model.md §6 (:mod:`symsched.symbolic.divergences`); adjoint of §9.
    """
    S = as_spectrum(spectrum)
    ab = _vp_levels(alpha_bar)
    check_choice(wrt, "wrt", ("alpha_bar", "log_snr"))
    if wrt == "log_snr":
        return _value_and_grad(S, ab, "alpha_bar", divergence, sampler, init, weights, settings)
    return _value_and_grad(S, ab, "alpha_bar", divergence, sampler, init, weights, settings,
                           convert=lambda g_l: _grad_alpha_bar(g_l, ab))


def _grad_alpha_bar(g_l: Array, ab: Array) -> Array:
    """dJ/d alpha_bar = dJ/d log_snr / (alpha_bar (1 - alpha_bar)); 0 at a fixed alpha_bar = 0 end.

    Raises ValueError (naming the level) where that derivative overflows float64 (alpha_bar below
    ~1e-308 with a non-zero log-SNR derivative): use ``wrt="log_snr"`` there.
    """
    g = np.zeros_like(g_l)
    live = ab > 0
    with np.errstate(over="ignore"):
        g[live] = (g_l[live] / (1.0 - ab[live])) / ab[live]
    bad = ~np.isfinite(g)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"alpha_bar: dJ/d alpha_bar at alpha_bar[{i}] = {ab[i]:.3g} overflows float64; "
                         "pass wrt='log_snr' for the derivative in log-SNR")
    return g


@numpy_error_defaults
def divergence_and_grad_ve(
    spectrum: ArrayLike,
    sigmas: ArrayLike,
    *,
    divergence: Literal["kl", "kl-reverse", "w2"] = DEFAULT_DIVERGENCE,
    sampler: str = "euler",
    init: Literal["white", "exact"] = "white",
    weights: ArrayLike | None = None,
    wrt: Literal["sigmas", "log_snr"] = "sigmas",
    **settings: Any,
) -> tuple[float, Array]:
    """As :func:`divergence_and_grad` on ``sigmas``; the gradient is with respect to ``sigmas`` or, with
    ``wrt="log_snr"``, to the levels' log-SNR ``-2 log sigma`` (shape (K,), without the trailing 0 if one was given;
    0 for a level at sigma = inf). ``dJ/d sigma = -2 dJ/d log_snr / sigma`` scales an entry's absolute rounding error
    (a few ulps of the per-mode terms) by ``2/sigma``: for tiny sigmas or a flat J prefer ``wrt="log_snr"``.
    Raises ValueError (TypeError for a wrong type) naming a bad argument, as :func:`divergence_and_grad`, and for an
    unknown ``wrt``. Source: the symbolic per-step derivatives and one adjoint sweep of the covariance recursion
    (docs/model.md §5, §6, §8), as :func:`divergence_and_grad`."""
    S = as_spectrum(spectrum)
    sig = _ve_levels(sigmas)
    check_choice(wrt, "wrt", ("sigmas", "log_snr"))
    if wrt == "log_snr":
        return _value_and_grad(S, sig, "sigma", divergence, sampler, init, weights, settings)
    return _value_and_grad(S, sig, "sigma", divergence, sampler, init, weights, settings,
                           convert=lambda g_l: _grad_sigma(g_l, sig))


def _grad_sigma(g_l: Array, sig: Array) -> Array:
    """dJ/d sigma = -2 dJ/d log_snr / sigma; 0 at a fixed sigma = inf end. Raises ValueError where it overflows."""
    g = np.zeros_like(g_l)
    live = np.isfinite(sig) & (g_l != 0)  # sigma = inf is a fixed end (derivative 0)
    with np.errstate(over="ignore"):
        g[live] = (-2.0 * g_l[live]) / sig[live]
    bad = ~np.isfinite(g)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"sigmas: dJ/d sigma at sigmas[{i}] = {sig[i]:.3g} overflows float64")
    return g
