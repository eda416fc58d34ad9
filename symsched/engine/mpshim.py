"""The printed level functions evaluated in mpmath: a stand-in for the few NumPy names they call.

A level function (:mod:`symsched.engine.printer`) is plain arithmetic plus ``np.exp``, ``np.expm1``,
``np.sqrt``, ...; run on object arrays of ``mpmath.mpf`` with :data:`MP_NUMPY` as its ``np``, the same
source gives the step's level coefficients to any precision. The engine does so where a coefficient
formula cancels more digits than longdouble carries (:func:`symsched.engine.program.build_program`, e.g.
LMS's Lagrange weights on close levels), from levels computed in mpmath too: a formula ill-conditioned in
its arguments needs them consistent to the working precision, not only to longdouble's.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any, Callable

import mpmath as mp
import numpy as np

__all__ = ["MP_NUMPY", "mp_kernel", "to_mp", "from_mp"]


def _unary(f: Callable[[Any], Any]) -> Any:
    return np.frompyfunc(f, 1, 1)


def _binary(f: Callable[[Any, Any], Any]) -> Any:
    return np.frompyfunc(f, 2, 1)


MP_NUMPY = SimpleNamespace(
    inf=mp.inf, nan=mp.nan,
    exp=_unary(mp.exp), log=_unary(mp.log), expm1=_unary(mp.expm1), log1p=_unary(mp.log1p),
    sqrt=_unary(mp.sqrt), cbrt=_unary(mp.cbrt), abs=_unary(abs), sign=_unary(mp.sign),
    sin=_unary(mp.sin), cos=_unary(mp.cos), tan=_unary(mp.tan), sinh=_unary(mp.sinh), cosh=_unary(mp.cosh),
    tanh=_unary(mp.tanh), arcsin=_unary(mp.asin), arccos=_unary(mp.acos), arctan=_unary(mp.atan),
    arcsinh=_unary(mp.asinh), arccosh=_unary(mp.acosh), arctanh=_unary(mp.atanh),
    exp2=_unary(lambda v: mp.power(2, v)), log2=_unary(lambda v: mp.log(v, 2)), log10=_unary(mp.log10),
    floor=_unary(mp.floor), ceil=_unary(mp.ceil), hypot=_binary(mp.hypot), arctan2=_binary(mp.atan2),
    minimum=_binary(min), maximum=_binary(max), longdouble=mp.mpf, select=np.select,
    less=_binary(lambda a, b: a < b), less_equal=_binary(lambda a, b: a <= b),
    greater=_binary(lambda a, b: a > b), greater_equal=_binary(lambda a, b: a >= b),
    equal=_binary(lambda a, b: a == b), not_equal=_binary(lambda a, b: a != b),
    logical_and=np.logical_and, logical_or=np.logical_or, logical_not=np.logical_not,
)


def mp_kernel(fn: Any) -> Callable[..., list[Any]]:
    """The mpmath twin of a printed table-style kernel ``fn`` (compiled once from its source, kept on ``fn``);
    ValueError for a kernel without one."""
    twin = getattr(fn, "mp_twin", None)
    if twin is None:
        source = getattr(fn, "table_source", None)
        if source is None:
            raise ValueError("this kernel has no printed source to evaluate in mpmath")
        from scipy import special

        ns: dict[str, Any] = {"np": MP_NUMPY, "_special": special, "__builtins__": {"float": float}}
        exec(compile(source, "<symsched mpmath twin>", "exec"), ns)  # our own printed source, as compile_source
        twin = ns["_symsched_kernel"]
        fn.mp_twin = twin
    return twin


def to_mp(a: Any) -> Any:
    """Exact mpmath values of float64 or longdouble numbers (an object array, or a scalar)."""
    arr = np.asarray(a)
    conv = (lambda v: mp.mpf(np.format_float_scientific(v, unique=True)) if np.isfinite(v) else mp.mpf(float(v))) \
        if arr.dtype == np.longdouble else (lambda v: mp.mpf(float(v)))
    if arr.ndim == 0:
        return conv(arr[()])
    out = np.empty(arr.shape, dtype=object)
    for i, v in np.ndenumerate(arr):
        out[i] = conv(v)
    return out


def from_mp(a: Any, n: int) -> np.ndarray:
    """mpmath values (an object array or a scalar) as a longdouble array of length ``n``, correctly rounded (a value
    beyond the longdouble range becomes inf, silently: the callers check finiteness)."""
    vals = np.broadcast_to(np.asarray(a, dtype=object), (n,))
    with warnings.catch_warnings():  # NumPy warns on an overflowing string conversion (not an errstate case)
        warnings.filterwarnings("ignore", message="overflow encountered in conversion from string")
        return np.array([np.longdouble(mp.nstr(v, 25, strip_zeros=False)) if mp.isfinite(v)
                         else np.longdouble(float(v)) for v in vals], dtype=np.longdouble)
