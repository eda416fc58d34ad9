r"""Heuristic schedule families practitioners use, and the resolution rules they pair them with.

Every family here is written in *endpoint form*: K levels, noisiest first, whose log-SNR runs from
``log_snr_min`` (the first, noisiest level) to ``log_snr_max`` (the last level before the implicit
step to the clean image), with one *shape* parameter that decides how the steps are spread in
between. That is how the families are used (end points come from the model, the shape parameter is
the knob) and what :mod:`symsched.insight.fits` fits. ``r_i = i/(K-1)``, ``i = 0..K-1``.

Families that already exist in :mod:`symsched.schedules` are called from there (``karras``,
``kl_optimal`` inside :func:`tangent`, ``align_your_steps``); the new ones are:

* :func:`cosine_offset` — Nichol & Dhariwal's cosine schedule with offset ``s`` on a time interval;
* :func:`tangent` — the one-mode optimum (equal angle steps, docs/model.md §7.6) for a mode of variance S;
* :func:`flow_shift` — rectified-flow time, uniformly spaced, then SD3's time shift;
* :func:`polyexponential` — k-diffusion's polynomial-in-log-sigma schedule (``rho = 1``: log-linear);
* :func:`sigmoid` — the sigmoid schedule of Jabri et al. / Chen.

The *rules* (how practitioners shift a schedule with resolution) are the small functions at the end:
:func:`simple_diffusion_log_snr_shift`, :func:`sd3_time_shift`, :func:`shift_to_log_snr`,
:func:`flux_mu`, :func:`flux_image_seq_len`; all but the first are defined once in
:mod:`symsched.schedules` (with the flow-matching schedules) and re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, log_expit

from .. import schedules as _sch
from .._validate import (MAX_STEPS, as_levels, as_positive, as_positive_int, as_real, as_real_array, check_choice,
                         numpy_error_defaults)

__all__ = [
    "cosine_offset",
    "tangent",
    "flow_shift",
    "polyexponential",
    "sigmoid",
    "Family",
    "FAMILIES",
    "family_names",
    "get_family",
    "simple_diffusion_log_snr_shift",
    "sd3_time_shift",
    "shift_to_log_snr",
    "flux_mu",
    "flux_image_seq_len",
    "FLUX_DEFAULTS",
    "EDM_LOG_SNR_RANGE",
]

Array = NDArray[np.float64]

#: log-SNR of EDM's default sigma range (sigma_max = 80, sigma_min = 0.002): the default end points.
EDM_LOG_SNR_RANGE: tuple[float, float] = (-2.0 * math.log(80.0), -2.0 * math.log(0.002))


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def _steps(K: Any) -> int:
    """The number of levels: an integer in [1, MAX_STEPS] (every family, one rule)."""
    return as_positive_int(K, "K", MAX_STEPS, limit="MAX_STEPS")


def _ends(log_snr_min: Any, log_snr_max: Any, K: int) -> tuple[float, float]:
    lo = as_real(log_snr_min, "log_snr_min")
    hi = as_real(log_snr_max, "log_snr_max")
    if K > 1 and not hi > lo:
        raise ValueError(f"log_snr_max must be greater than log_snr_min (got {lo!r}, {hi!r})")
    for value, name in ((lo, "log_snr_min"), (hi, "log_snr_max")):
        # every family pins its end levels to lo and hi: an end whose alpha_bar float64 cannot hold (the conversion
        # of schedules.log_snr_to_alpha_bar rounds it to 0 or 1) is refused here, by its name, before a family's
        # own coordinate overflows (math.exp of a log-SNR beyond +-1420)
        if not 0.0 < float(_sch._alpha_bar_unchecked(np.float64(value))) < 1.0:
            raise ValueError(
                f"{name} must lie between about -745.13 and 37.43, where alpha_bar = expit(log-SNR) is a float64 "
                f"strictly between 0 and 1 (got {value!r})")
    return lo, hi


def _pin(l: Array, lo: float, hi: float) -> Array:
    """Exact end points (the round trip through a family's own coordinate moves them by ~1 ulp)."""
    l[0] = lo
    if l.size > 1:
        l[-1] = hi
    return l


def _to_levels(l: Array, label: str) -> Array:
    try:
        ab = _sch.log_snr_to_alpha_bar(l)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None
    return as_levels(ab, f"{label} alpha_bar")


# ---------------------------------------------------------------------------------------------
# the families in log-SNR (internal: (K, lo, hi, shape) -> log-SNR, increasing)
# ---------------------------------------------------------------------------------------------


def _cosine_l(K: int, lo: float, hi: float, phi0: float) -> Array:
    # alpha_bar = cos^2(phi) / cos^2(phi0) with phi linear in the step; 1 - alpha_bar =
    # sin(phi - phi0) sin(phi + phi0) / cos^2(phi0), so l = log cos^2 phi - log(sin(phi-phi0) sin(phi+phi0)).
    # phi is carried as its distances to both ends of its range, psi = pi/2 - phi and delta = phi - phi0 (each a
    # sum of positive terms along the ramp): l = 2 log sin psi - log sin delta - log sin(delta + 2 phi0), exact
    # where phi nears pi/2 (noisy levels) or phi0 (clean ones), which phi itself rounds away.
    r = _sch._ramp(K)
    (psi_a, delta_a), (psi_b, delta_b) = _cosine_angles(lo, phi0), _cosine_angles(hi, phi0)
    psi, delta = (1.0 - r) * psi_a + r * psi_b, (1.0 - r) * delta_a + r * delta_b
    l = 2.0 * np.log(np.sin(psi)) - np.log(np.sin(delta)) - np.log(np.sin(delta + 2.0 * phi0))
    return _pin(l, lo, hi)


def _cosine_angles(l: float, phi0: float) -> tuple[float, float]:
    """(psi, delta) = (pi/2 - phi, phi - phi0) of log-SNR ``l``, where tan^2 phi = (e^-l + sin^2 phi0) / cos^2 phi0:
    tan psi = c / A and tan delta = e^-l c / ((A + s)(c^2 + s A)), A = sqrt(e^-l + s^2), s, c = sin, cos phi0;
    for l < 0 both with numerator and denominator multiplied by q = e^(l/2) (by q^2 for delta), so nothing
    overflows for any finite l."""
    s, c = math.sin(phi0), math.cos(phi0)
    if l >= 0.0:
        A = math.sqrt(math.exp(-l) + s * s)
        return math.atan2(c, A), math.atan2(math.exp(-l) * c, (A + s) * (c * c + s * A))
    q = math.exp(0.5 * l)
    Aq = math.sqrt(1.0 + (s * q) ** 2)  # A q
    return math.atan2(c * q, Aq), math.atan2(c, (Aq + s * q) * (c * c * q + s * Aq))


def _tangent_l(K: int, lo: float, hi: float, log_s: float) -> Array:
    # sigma_i = sqrt(S) tan(theta_i), theta linear: schedules.kl_optimal in units of sqrt(S), carried in log sigma
    # (l = -2 log sigma - log S) so that no end overflows or underflows for any finite l and log S
    log_sig = _sch._equal_angle_log_sigmas(-0.5 * (lo + log_s), -0.5 * (hi + log_s), *_sch._log_weights(_sch._ramp(K)))
    return _pin(-2.0 * log_sig - log_s, lo, hi)


def _flow_shift_l(K: int, lo: float, hi: float, log_shift: float) -> Array:
    # rectified flow: l = 2 log((1-t)/t) - 2 log(shift) for the shifted time t = expit(-(l/2 + log shift)), t uniform
    # in the step (schedules' shared log-sum form, exact where t nears 0 or 1)
    l1r, lr = _sch._log_weights(_sch._ramp(K))
    l = _sch._uniform_flow_log_snr(0.5 * lo + log_shift, 0.5 * hi + log_shift, l1r, lr)
    return _pin(l - 2.0 * log_shift, lo, hi)


def _polyexp_l(K: int, lo: float, hi: float, log_rho: float) -> Array:
    # log sigma = log sigma_min + (1 - r)^rho (log sigma_max - log sigma_min), l = -2 log sigma
    return _pin(hi + (lo - hi) * (1.0 - _sch._ramp(K)) ** math.exp(log_rho), lo, hi)


def _karras_l(K: int, lo: float, hi: float, log_rho: float) -> Array:
    ab = _sch.karras(K, sigma_min=math.exp(-0.5 * hi), sigma_max=math.exp(-0.5 * lo), rho=math.exp(log_rho))
    return _pin(_sch.alpha_bar_to_log_snr(ab), lo, hi)


_SIGMOID_START, _SIGMOID_END = -3.0, 3.0


def _sigmoid_l(K: int, lo: float, hi: float, log_tau: float, start: float = _SIGMOID_START,
               end: float = _SIGMOID_END) -> Array:
    # gamma(t) = (v_end - sigmoid(a)) / (v_end - v_start), a = (t (end - start) + start) / tau;
    # l = log(v_end - sigmoid(a)) - log(sigmoid(a) - v_start); inverse: sigmoid(a) = (v_end + e^l v_start)/(1 + e^l).
    # a is carried as the logs of its distances to both ends, D = end/tau - a and D' = a - start/tau (each linear in
    # t, positive, ~e^l at a noisy end), and sigmoid(x) - sigmoid(y) = sigmoid(x) sigmoid(-y) (-expm1(y - x)): exact
    # where sigmoid(a) nears either end, for any finite l. a itself is interpolated between its values at the end
    # points, logit(sigmoid(a)) from log-sums (error ~ eps |a|); end/tau - D would lose a's digits to end/tau (audit
    # of 6 December: tau = 1e-16, end/tau = 3e16, moved the middle levels by up to 0.5 in log-SNR)
    tau = math.exp(log_tau)
    (D, log_D), (Dp, log_Dp) = _sigmoid_log_gaps(K, lo, hi, tau, start, end)
    r = _sch._ramp(K)
    a = (1.0 - r) * _sigmoid_logit(lo, tau, start, end) + r * _sigmoid_logit(hi, tau, start, end)
    log_top = log_expit(end / tau) + log_expit(-a) + _log_one_minus_exp_minus(log_D)  # log(v_end - sigmoid(a))
    log_bottom = log_expit(a) + log_expit(-start / tau) + _log_one_minus_exp_minus(log_Dp)  # log(sigmoid(a) - v_start)
    return _pin(log_top - log_bottom, lo, hi)


def _sigmoid_log_gaps(K: int, lo: float, hi: float, tau: float, start: float, end: float
                      ) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """((D, log D), (D', log D')) of the K levels, D and D' linear in the step between their values at ``lo`` and
    ``hi``: as sums of positive terms, and as log-sums where a sum falls below e^-600 (it underflows in float64)."""
    r = _sch._ramp(K)
    l1r, lr = _sch._log_weights(r)
    ends = _sigmoid_gaps(lo, tau, start, end), _sigmoid_gaps(hi, tau, start, end)
    out = []
    for (g_a, log_a), (g_b, log_b) in zip(*ends):
        g = (1.0 - r) * g_a + r * g_b
        with np.errstate(divide="ignore"):  # (log 0 where the sum underflowed: the log-sum is taken there)
            log_g = np.where(g > math.exp(-600.0), np.log(g), np.logaddexp(l1r + log_a, lr + log_b))
        out.append((g, log_g))
    return out[0], out[1]


def _log_one_minus_exp_minus(log_x: Array) -> Array:
    """log(1 - e^-x) from log x (x > 0): log x - x/2 where x < e^-30 (the series; its next term x^2/24 is below
    float64's reach), else log(-expm1(-x))."""
    x = np.exp(log_x)
    with np.errstate(divide="ignore"):
        return np.where(log_x < -30.0, log_x - 0.5 * x, np.log(-np.expm1(-x)))


def _sigmoid_gaps(l: float, tau: float, start: float, end: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """((D, log D), (D', log D')) for D = end/tau - a and D' = a - start/tau at log-SNR ``l``. With u = v_end - sigmoid(a) =
    (v_end - v_start) expit(l) and u' = sigmoid(a) - v_start = (v_end - v_start) expit(-l) (v_end - v_start formed
    without cancelling), 1 - sigmoid(a) = (1 - v_end) + u and sigmoid(a) = v_start + u' are sums of positive terms,
    and D = log((1 - sigmoid(a)) / (1 - v_end)) + log(v_end / sigmoid(a)), the second log by log1p of the small
    relative change while it is below 1/2, else as a difference of logs; D' likewise. All in logs: v = expit(x)
    underflows beyond |x| ~ 745 (a small tau), and D ~ u / (v_end (1 - v_end)) below e^-300 (l below ~ -700) is
    taken from its first-order term, log u - log v_end - log(1 - v_end)."""
    lv0, lw0, lv1, lw1, lu, lup = _sigmoid_logs(l, tau, start, end)

    def log_ratio(log_big: float, log_small: float, log_gap: float) -> float:  # log(big / small), small = big - gap
        if log_gap < log_big - math.log(2.0):
            return -math.log1p(-math.exp(log_gap - log_big))
        return log_big - log_small

    def gap(log_w: float, log_v: float, log_rest: float, lg: float) -> tuple[float, float]:  # log1p(g/w) + log(v/(v-g))
        if max(lg - log_w, lg - log_v) < -300.0:  # both relative changes below e^-300: g/w + g/v = g/(w v)
            return math.exp(lg - log_w - log_v), lg - log_w - log_v
        with np.errstate(under="ignore"):  # (log1p of a vanishing e^x: 0, as it should be)
            value = float(np.logaddexp(0.0, lg - log_w)) + log_ratio(log_v, log_rest, lg)
        return value, math.log(value)

    return gap(lw1, lv1, float(np.logaddexp(lv0, lup)), lu), gap(lv0, lw0, float(np.logaddexp(lw1, lu)), lup)


def _sigmoid_logs(l: float, tau: float, start: float, end: float) -> tuple[float, ...]:
    """(log v_start, log(1 - v_start), log v_end, log(1 - v_end), log u, log u') at log-SNR ``l``, for
    v = expit(x / tau), u = v_end - sigmoid(a) = (v_end - v_start) expit(l) and
    u' = sigmoid(a) - v_start = (v_end - v_start) expit(-l)."""
    x0, x1 = start / tau, end / tau
    lv0, lw0, lv1, lw1 = (float(log_expit(x)) for x in (x0, -x0, x1, -x1))
    log_span = lv1 + lw0 + math.log(-math.expm1(x0 - x1))  # log(v_end - v_start), not cancelling
    return lv0, lw0, lv1, lw1, log_span + float(log_expit(l)), log_span + float(log_expit(-l))


def _sigmoid_logit(l: float, tau: float, start: float, end: float) -> float:
    """a at log-SNR ``l``: log sigmoid(a) - log(1 - sigmoid(a)), as log(v_start + u') - log((1 - v_end) + u) (sums of
    positive terms)."""
    lv0, _, _, lw1, lu, lup = _sigmoid_logs(l, tau, start, end)
    return float(np.logaddexp(lv0, lup) - np.logaddexp(lw1, lu))


def _ays_l(model: str) -> Callable[[int, float, float], Array]:
    def levels(K: int, lo: float, hi: float) -> Array:
        base = _sch.alpha_bar_to_log_snr(_sch.align_your_steps(K, model=model))
        if K == 1:
            return np.array([lo])
        return _pin(lo + (hi - lo) * (base - base[0]) / (base[-1] - base[0]), lo, hi)

    return levels


# ---------------------------------------------------------------------------------------------
# public family functions (alpha_bar, noisiest first, like symsched.schedules)
# ---------------------------------------------------------------------------------------------


@numpy_error_defaults
def cosine_offset(
    K: int, *, s: float = 0.008, log_snr_min: float = EDM_LOG_SNR_RANGE[0],
    log_snr_max: float = EDM_LOG_SNR_RANGE[1],
) -> Array:
    r"""Cosine schedule :math:`\bar\alpha(t) = f(t)/f(0)`, :math:`f(t) = \cos^2\!\big(\tfrac{\pi}{2}\tfrac{t+s}{1+s}\big)`, t uniform.

    Nichol & Dhariwal, improved DDPM (arXiv 2102.09672), eq. (17). The K levels sit at times
    ``t_i`` spaced uniformly between the times whose log-SNR is ``log_snr_min`` and ``log_snr_max``
    (so the angle :math:`\varphi = \tfrac{\pi}{2}\tfrac{t+s}{1+s}` takes equal steps). ``s = 0`` is
    ``schedules.kl_optimal`` (the equal-angle schedule of a unit mode); ``s > 0`` slows the steps
    near the clean end.

    Parameters
    ----------
    K : int
        Number of levels.
    s : float
        Offset, ``s >= 0`` (0.008 in the paper).
    log_snr_min, log_snr_max : float
        Log-SNR of the first (noisiest) and last level (default: EDM's sigma range 80 .. 0.002).

    Returns
    -------
    ndarray, shape (K,), float64
        ``alpha_bar``, strictly increasing in (0, 1), noisiest first.

    Raises
    ------
    ValueError
        ``K`` not an integer in [1, MAX_STEPS], a negative or non-finite ``s``, or ``log_snr_max <= log_snr_min``.
    """
    K = _steps(K)
    s = as_real(s, "s")
    if s < 0:
        raise ValueError(f"s must be non-negative (got {s!r})")
    lo, hi = _ends(log_snr_min, log_snr_max, K)
    return _to_levels(_cosine_l(K, lo, hi, 0.5 * math.pi * s / (1.0 + s)), f"cosine_offset(K={K}, s={s:g})")


@numpy_error_defaults
def tangent(
    K: int, *, mode_variance: float = 1.0, log_snr_min: float = EDM_LOG_SNR_RANGE[0],
    log_snr_max: float = EDM_LOG_SNR_RANGE[1],
) -> Array:
    r"""Tangent law :math:`\sigma_i = \sqrt{S}\tan\theta_i`, :math:`\theta_i` equally spaced: the optimum for one mode of variance S.

    docs/model.md §7.6 (the angle form of deterministic DDIM, :math:`\theta = \arctan(\sigma/\sqrt S)`):
    for a single mode and fixed end levels the best schedule takes equal angle steps. Computed with
    :func:`symsched.schedules.kl_optimal` in units of :math:`\sqrt S`; ``mode_variance = 1`` is
    ``kl_optimal`` itself. In log-SNR it is the unit-mode schedule shifted by :math:`-\log S`.

    Parameters
    ----------
    K : int
    mode_variance : float
        S > 0.
    log_snr_min, log_snr_max : float
        Log-SNR of the first and last level.

    Returns
    -------
    ndarray, shape (K,), float64
        ``alpha_bar``, noisiest first.

    Raises
    ------
    ValueError
        ``K`` not in [1, MAX_STEPS], non-positive ``mode_variance``, non-finite end points or ``log_snr_max <=
        log_snr_min`` (K > 1), or a sigma ``exp(-(l + log S)/2)`` whose alpha_bar rounds to 0 or 1 in float64.
    """
    K = _steps(K)
    S = as_positive(mode_variance, "mode_variance")
    lo, hi = _ends(log_snr_min, log_snr_max, K)
    return _to_levels(_tangent_l(K, lo, hi, math.log(S)), f"tangent(K={K}, mode_variance={S:g})")


@numpy_error_defaults
def flow_shift(
    K: int, *, shift: float = 3.0, log_snr_min: float = EDM_LOG_SNR_RANGE[0],
    log_snr_max: float = EDM_LOG_SNR_RANGE[1],
) -> Array:
    r"""Rectified-flow time, uniform, shifted: :math:`t' = s t/(1+(s-1)t)`, :math:`\ell = 2\log\tfrac{1-t'}{t'}`.

    Esser et al., SD3 (arXiv 2403.03206), section 5.3.2; diffusers ``FlowMatchEulerDiscreteScheduler``
    (``shift``). The unshifted times ``t_i`` are uniform between the times whose *shifted* log-SNR is
    ``log_snr_min`` and ``log_snr_max``; the shift is the log-SNR offset :math:`-2\log s`
    (:func:`shift_to_log_snr`), so ``shift`` moves the interior levels towards more noise when > 1.
    ``symsched.schedules.shifted(base="flow")`` is the same family on the grid ``t = 1 - i/K``.

    Parameters
    ----------
    K : int
    shift : float
        s > 0 (SD3 uses 3.0).
    log_snr_min, log_snr_max : float

    Returns
    -------
    ndarray, shape (K,), float64
        ``alpha_bar``, noisiest first.

    Raises
    ------
    ValueError
        ``K`` not an integer in [1, MAX_STEPS], non-positive ``shift``, non-finite end points or ``log_snr_max <=
        log_snr_min`` (K > 1), or a level whose alpha_bar float64 cannot represent (log-SNR beyond about
        (-745, 36.7)) or that merges with its neighbour.
    """
    K = _steps(K)
    s = as_positive(shift, "shift")
    lo, hi = _ends(log_snr_min, log_snr_max, K)
    return _to_levels(_flow_shift_l(K, lo, hi, math.log(s)), f"flow_shift(K={K}, shift={s:g})")


@numpy_error_defaults
def polyexponential(
    K: int, *, rho: float = 1.0, log_snr_min: float = EDM_LOG_SNR_RANGE[0],
    log_snr_max: float = EDM_LOG_SNR_RANGE[1],
) -> Array:
    r"""Polynomial in log sigma: :math:`\log\sigma_i = \log\sigma_{min} + (1-r_i)^\rho(\log\sigma_{max}-\log\sigma_{min})`.

    k-diffusion ``get_sigmas_polyexponential`` (``rho = 1``: ``get_sigmas_exponential``, uniform
    steps in log-SNR, the log-linear schedule). ``rho > 1`` spends more steps at low noise.

    Parameters
    ----------
    K : int
    rho : float
        Positive exponent.
    log_snr_min, log_snr_max : float

    Returns
    -------
    ndarray, shape (K,), float64
        ``alpha_bar``, noisiest first.

    Raises
    ------
    ValueError
        ``K`` not an integer in [1, MAX_STEPS], non-positive ``rho``, non-finite end points or ``log_snr_max <=
        log_snr_min`` (K > 1), or a level whose alpha_bar float64 cannot represent (log-SNR beyond about
        (-745, 36.7)) or that merges with its neighbour.
    """
    K = _steps(K)
    rho = as_positive(rho, "rho")
    lo, hi = _ends(log_snr_min, log_snr_max, K)
    return _to_levels(_polyexp_l(K, lo, hi, math.log(rho)), f"polyexponential(K={K}, rho={rho:g})")


@numpy_error_defaults
def sigmoid(
    K: int, *, tau: float = 1.0, start: float = _SIGMOID_START, end: float = _SIGMOID_END,
    log_snr_min: float = EDM_LOG_SNR_RANGE[0], log_snr_max: float = EDM_LOG_SNR_RANGE[1],
) -> Array:
    r"""Sigmoid schedule :math:`\bar\alpha(t) = \frac{v_e - \mathrm{sig}((t(e-b)+b)/\tau)}{v_e - v_b}`, :math:`v_x = \mathrm{sig}(x/\tau)`, t uniform.

    Jabri, Fleet, Chen, RIN (arXiv 2212.11972) and Chen, "On the importance of noise scheduling for
    diffusion models" (arXiv 2301.10972), Algorithm 1 (``start`` b = -3, ``end`` e = 3 by default).
    The times are uniform between those of ``log_snr_min`` and ``log_snr_max``; a large ``tau``
    crowds the steps at the middle noise levels (the sigmoid's linear part: alpha_bar nearly linear in t), and as
    ``tau`` tends to 0 the levels tend to uniform in log-SNR (the sigmoid's exponential tails).

    Parameters
    ----------
    K : int
    tau : float
        Positive temperature.
    start, end : float
        ``start < end``.
    log_snr_min, log_snr_max : float

    Returns
    -------
    ndarray, shape (K,), float64
        ``alpha_bar``, noisiest first.

    Raises
    ------
    ValueError
        ``K`` not an integer in [1, MAX_STEPS], non-positive ``tau``, non-finite ``start``/``end`` or ``end <= start``,
        non-finite end points or ``log_snr_max <= log_snr_min`` (K > 1), or a level whose alpha_bar float64
        cannot represent (log-SNR beyond about (-745, 36.7)) or that merges with its neighbour.
    """
    K = _steps(K)
    tau = as_positive(tau, "tau")
    b, e = as_real(start, "start"), as_real(end, "end")
    if not e > b:
        raise ValueError(f"end must be greater than start (got start={b!r}, end={e!r})")
    lo, hi = _ends(log_snr_min, log_snr_max, K)
    return _to_levels(_sigmoid_l(K, lo, hi, math.log(tau), b, e), f"sigmoid(K={K}, tau={tau:g})")


# ---------------------------------------------------------------------------------------------
# the family table used by the fits
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A schedule family in endpoint form, for fitting.

    ``levels(K, lo, hi, *shape)`` gives the log-SNR of the K levels (increasing, exact end points
    ``lo`` and ``hi``); ``shape`` are internal coordinates (``bounds``, ``starts``);
    ``describe(lo, hi, shape)`` gives the parameters in the family's published form.
    """

    name: str
    formula: str
    source: str
    levels: Callable[..., Array]
    shape: tuple[str, ...] = ()
    bounds: tuple[tuple[float, float], ...] = ()
    starts: tuple[tuple[float, ...], ...] = ((),)
    describe: Optional[Callable[[float, float, Sequence[float]], dict[str, float]]] = None
    #: each shape coordinate's name in ``describe``'s published form (e.g. ``"tau"`` for ``"log tau"``)
    published: tuple[str, ...] = ()
    #: per shape coordinate, whether its (lower, upper) bound only limits the search (a fit there is not a
    #: value the data chose); ``False`` for a bound the family itself has (the cosine offset ``s >= 0``)
    search_edges: tuple[tuple[bool, bool], ...] = ()

    @property
    def n_shape(self) -> int:
        return len(self.shape)

    def params(self, lo: float, hi: float, shape: Sequence[float]) -> dict[str, float]:
        """Parameter name -> value in the family's published form (``describe(lo, hi, shape)``), for end points ``lo``
        and ``hi`` (log-SNR of the noisiest and of the cleanest level) and internal coordinates ``shape`` (one number
        per name of :attr:`shape`); an empty dict for a family without ``describe``. Source: :attr:`source`."""
        if self.describe is None:
            return {}
        return self.describe(lo, hi, shape)


def _sig(l: float) -> float:
    return math.exp(-0.5 * l)


def _describe_cosine(lo: float, hi: float, x: Sequence[float]) -> dict[str, float]:
    phi0 = float(x[0])  # the shape parameter _cosine_l takes: phi0 = pi/2 s/(1 + s)
    s = phi0 / (0.5 * math.pi - phi0)

    def t_of(l: float) -> float:  # phi = pi/2 (t + s)/(1 + s): t = delta (1 + s)/(pi/2) = 1 - psi (1 + s)/(pi/2)
        psi, delta = _cosine_angles(l, phi0)  # (from the nearer end: t stays within [0, 1])
        return 1.0 - psi * (1.0 + s) / (0.5 * math.pi) if psi < delta else delta * (1.0 + s) / (0.5 * math.pi)

    return {"s": s, "t_max": t_of(lo), "t_min": t_of(hi)}


def _describe_flow(lo: float, hi: float, x: Sequence[float]) -> dict[str, float]:
    ls = x[0]
    return {"shift": math.exp(ls), "t_max": float(expit(-(0.5 * lo + ls))), "t_min": float(expit(-(0.5 * hi + ls)))}


def _describe_sigmoid(lo: float, hi: float, x: Sequence[float]) -> dict[str, float]:
    tau = math.exp(x[0])

    def t_of(l: float) -> float:  # t = D' / (D + D'), D + D' = (end - start) / tau
        (_, log_d), (_, log_dp) = _sigmoid_gaps(l, tau, _SIGMOID_START, _SIGMOID_END)
        return float(expit(log_dp - log_d))

    return {"tau": tau, "start": _SIGMOID_START, "end": _SIGMOID_END, "t_max": t_of(lo), "t_min": t_of(hi)}


def _describe_sigmas(key: str, transform: Callable[[float], float]) -> Callable[..., dict[str, float]]:
    def describe(lo: float, hi: float, x: Sequence[float]) -> dict[str, float]:
        out = {key: transform(x[0])} if key else {}
        out.update(sigma_max=_sig(lo), sigma_min=_sig(hi))
        return out

    return describe


_LOG_RHO = (math.log(0.05), math.log(200.0))
#: Largest cosine offset angle fitted, phi0 = pi/2 s/(1 + s): s up to 100.
_COSINE_PHI0_MAX = 0.5 * math.pi * 100.0 / 101.0

#: Every family :func:`symsched.insight.fit_heuristics` fits, in tie-break order.
FAMILIES: tuple[Family, ...] = (
    Family("cosine", r"alpha_bar = cos^2(pi/2 (t+s)/(1+s)) / cos^2(pi/2 s/(1+s)), t uniform",
           "Nichol & Dhariwal 2021 (arXiv 2102.09672), eq. 17", _cosine_l,
           shape=("phi0",), bounds=((0.0, _COSINE_PHI0_MAX),),
           starts=tuple((0.5 * math.pi * s / (1 + s),) for s in (0.0, 0.008, 0.1, 0.5, 3.0)),
           describe=_describe_cosine, published=("s",), search_edges=((False, True),)),
    Family("tangent", r"sigma = sqrt(S) tan(theta), theta uniform (kl_optimal for S = 1)",
           "equal-angle DDIM for one mode (derivations/ddim.tex); symsched.schedules.kl_optimal", _tangent_l,
           shape=("log S",), bounds=((-15.0, 15.0),), starts=((-4.0,), (0.0,), (4.0,)),
           describe=_describe_sigmas("mode_variance", math.exp), published=("mode_variance",),
           search_edges=((True, True),)),
    Family("shift", r"t' = s t / (1 + (s-1) t), l = 2 log((1-t')/t'), t uniform",
           "Esser et al. 2024, SD3 (arXiv 2403.03206)", _flow_shift_l,
           shape=("log shift",), bounds=((-6.0, 6.0),), starts=((-1.0,), (0.0,), (math.log(3.0),)),
           describe=_describe_flow, published=("shift",), search_edges=((True, True),)),
    Family("loglinear", r"log sigma = log sigma_min + (1-r)^rho (log sigma_max - log sigma_min)",
           "k-diffusion get_sigmas_polyexponential (rho = 1: get_sigmas_exponential)", _polyexp_l,
           shape=("log rho",), bounds=(_LOG_RHO,), starts=((math.log(0.5),), (0.0,), (math.log(2.0),)),
           describe=_describe_sigmas("rho", math.exp), published=("rho",), search_edges=((True, True),)),
    Family("karras", r"sigma^(1/rho) = sigma_max^(1/rho) + r (sigma_min^(1/rho) - sigma_max^(1/rho))",
           "Karras et al. 2022 (arXiv 2206.00364), eq. 5; symsched.schedules.karras", _karras_l,
           shape=("log rho",), bounds=(_LOG_RHO,), starts=((0.0,), (math.log(3.0),), (math.log(7.0),), (math.log(30.0),)),
           describe=_describe_sigmas("rho", math.exp), published=("rho",), search_edges=((True, True),)),
    Family("sigmoid", r"alpha_bar = (v_e - sig((t(e-b)+b)/tau)) / (v_e - v_b), b = -3, e = 3, t uniform",
           "Jabri et al. 2022 (arXiv 2212.11972); Chen 2023 (arXiv 2301.10972), Alg. 1", _sigmoid_l,
           shape=("log tau",), bounds=((math.log(0.02), math.log(50.0)),),
           starts=((math.log(0.3),), (0.0,), (math.log(3.0),)), describe=_describe_sigmoid, published=("tau",),
           search_edges=((True, True),)),
    Family("ays-sd15", "Align Your Steps SD1.5 table, log-SNR mapped affinely onto the end points",
           "Sabour et al. 2024 (arXiv 2404.14507); symsched.schedules.align_your_steps", _ays_l("sd15"),
           describe=_describe_sigmas("", float)),
    Family("ays-sdxl", "Align Your Steps SDXL table, log-SNR mapped affinely onto the end points",
           "Sabour et al. 2024 (arXiv 2404.14507); symsched.schedules.align_your_steps", _ays_l("sdxl"),
           describe=_describe_sigmas("", float)),
)


def family_names() -> tuple[str, ...]:
    """Names of :data:`FAMILIES`, in tie-break order: ``tuple(f.name for f in FAMILIES)``.

    A tuple of 8 str; raises nothing. Source: each family's ``source`` (Nichol & Dhariwal 2021, docs/model.md §7.6,
    SD3, k-diffusion, Karras et al. 2022, Jabri et al. / Chen 2023, Align Your Steps).
    """
    return tuple(f.name for f in FAMILIES)


def get_family(name: str) -> Family:
    """The :class:`Family` called ``name``: the ``f`` of :data:`FAMILIES` with ``f.name == name``.

    Raises ValueError naming ``name`` and the choices for an unknown name, TypeError for a non-string.
    Source: ``f.source`` names the paper or library of each family.
    """
    name = check_choice(name, "name", family_names())
    return next(fam for fam in FAMILIES if fam.name == name)


# ---------------------------------------------------------------------------------------------
# practitioners' resolution rules
# ---------------------------------------------------------------------------------------------

# FLUX_DEFAULTS, sd3_time_shift, shift_to_log_snr, flux_mu and flux_image_seq_len live in symsched.schedules
# (one source) and are re-exported here.
FLUX_DEFAULTS = _sch.FLUX_DEFAULTS
sd3_time_shift = _sch.sd3_time_shift
shift_to_log_snr = _sch.shift_to_log_snr
flux_mu = _sch.flux_mu
flux_image_seq_len = _sch.flux_image_seq_len


@numpy_error_defaults
def simple_diffusion_log_snr_shift(resolution: ArrayLike, base_resolution: float) -> Array:
    r"""Simple diffusion's log-SNR shift :math:`-2\log(d/d_0)` for resolution d against base :math:`d_0`.

    Hoogeboom, Heek, Salimans, simple diffusion (arXiv 2301.11093), section 3.1: averaging
    :math:`(d/d_0)^2` pixels raises the SNR of the coarse image by that factor, so a schedule tuned at
    :math:`d_0` is shifted by :math:`-2\log(d/d_0)` in log-SNR at d (-1.386 per doubling). SD3's
    resolution-dependent shift :math:`\sqrt{m/n}` (Esser et al. 2024, eq. 23) is the same rule.

    Returns an array of the shape of ``resolution`` (float64). ValueError for non-positive input.
    """
    d = as_real_array(resolution, "resolution")
    d0 = as_positive(base_resolution, "base_resolution")
    if not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError("resolution must be positive and finite")
    return -2.0 * (np.log(d) - math.log(d0))  # (d / d0 overflowed to inf, or underflowed to 0, at extreme ratios)
