"""Exact power-of-two rescaling for quantities homogeneous in the data (transforms, second moments, distances).

One mechanism for every estimator that squares or sums user data: where the largest |value| lies beyond a band
(default 2^+-250) the data are divided by a power of two first (exact), the quantity is computed at unit scale and
the power of two is put back; a result beyond float64, or a second moment whose every value falls below its normal
range though the data are not all 0, is a ValueError naming the argument.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

#: data whose largest |value| lies within [1 / WITHIN, WITHIN] are used as they are: their second moments (even
#: 2^-500 of the largest one's) stay normal, and sums of up to 2^500 of them stay finite
WITHIN = 2.0**250

_TINY = np.finfo(np.float64).tiny


def _peak(*arrays: Any) -> float:
    return max((float(np.max(np.abs(a))) if np.size(a) else 0.0) for a in arrays)


def _exponent(peak: float, within: float) -> int:
    return 0 if peak == 0.0 or 1.0 / within <= peak <= within else math.frexp(peak)[1]


def pow2_exponent(*arrays: Any, within: float = WITHIN) -> int:
    """``k`` with the largest |value| of ``arrays`` divided by ``2^k`` in [0.5, 1) when it lies beyond ``within`` or
    below ``1 / within`` (but not 0); else 0 (used as they are)."""
    return _exponent(_peak(*arrays), within)


def pow2_scale(*arrays: Any, within: float = WITHIN) -> float:
    """1.0, or the power of two ``c`` (a float: ``c <= `` the largest |value|, so never inf) to divide ``arrays`` by
    (``X / c``, exact) for a quantity homogeneous in them, when their largest |value| lies beyond ``within`` or below
    its reciprocal."""
    k = pow2_exponent(*arrays, within=within)
    return 1.0 if k == 0 else math.ldexp(1.0, k - 1)


def pow2_scaled(x: np.ndarray, within: float = WITHIN) -> tuple[np.ndarray, int]:
    """``(x / 2^k, k)`` with :func:`pow2_exponent` ``k`` (``(x, 0)``, no copy, within the band); exact, except that
    entries below 2^-1022 of the largest one underflow (silently)."""
    k = pow2_exponent(x, within=within)
    return times_pow2(x, -k), k


def times_pow2(y: Any, k: int) -> Any:
    """``y * 2^k`` exactly for any integer ``k`` (``2.0**k`` itself overflows beyond k = 1023, e.g. the squared scale
    2k of data near 1.8e308); inf where the product is beyond float64, 0 or subnormal below it; complex ``y`` part by
    part."""
    y = np.asarray(y)
    if k == 0:
        return y
    with np.errstate(over="ignore", under="ignore"):  # an overflow is inf, refused by check_representable
        if not np.iscomplexobj(y):
            return np.ldexp(y, k)
        out = np.empty_like(y)
        out.real, out.imag = np.ldexp(y.real, k), np.ldexp(y.imag, k)
        return out


def check_representable(out: Any, name: str, what: str, *, nonzero: bool = False, peak: Optional[float] = None,
                        hint: str = "rescale them") -> None:
    """ValueError naming ``name`` when ``out`` (the quantity ``what``) is not finite, or when ``nonzero`` (a second
    moment computed from data not all 0) and every |value| of ``out`` falls below the float64 normal range;
    ``peak`` (the data's largest |value|) adds the reason to the message."""
    if not np.all(np.isfinite(out)):
        why = f" (largest |value| {peak:.3g}: second moments ~{peak:.3g}^2 overflow)" if peak is not None else ""
        raise ValueError(f"{name}: values too large for {what} to be represented in float64{why}; {hint}")
    if nonzero and not np.max(np.abs(out), initial=0.0) >= _TINY:
        why = f"largest |value| {peak:.3g}: second moments ~{peak:.3g}^2 fall below" if peak is not None else "below"
        raise ValueError(f"{name}: values too small for {what} to be represented in float64 ({why} its normal "
                         f"range, 2.2e-308); {hint}")


def at_unit_scale(estimate: Callable[[np.ndarray], np.ndarray], x: np.ndarray, source: str,
                  what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``(spec, unit, e)``: a second-moment estimate ``spec = estimate(x)`` computed as ``2^(2e) unit`` with
    ``unit = estimate(x / 2^e)`` (``e`` as :func:`pow2_exponent`; ``e = 0``, no copy, within the band).

    ``estimate`` is quadratic in ``x`` (a periodogram, a covariance) and scaling by a power of two is exact, so this
    is the same estimate without squaring ``x`` itself beyond float64 or below its normal range; ``unit`` keeps every
    mode for scale-free quantities where ``spec`` is subnormal or 0. ValueError naming ``source`` when ``spec``
    lies beyond float64 or all of it below its normal range though ``x`` is not all 0.
    """
    peak = _peak(x)  # (one pass over the data: the scale and the message's reason)
    e = _exponent(peak, WITHIN)
    unit = estimate(times_pow2(x, -e))
    spec = times_pow2(unit, 2 * e)
    check_representable(spec, source, what, nonzero=bool(np.max(unit, initial=0.0) > 0), peak=peak,
                        hint=f"rescale {source} (e.g. to unit variance)")
    return spec, unit, e
