"""High-precision reference path: the sampler's own update equations evaluated with mpmath.

This path uses the step matrices exactly as the sampler module writes them (in its native
coordinates: ``alpha_bar``, ``sigma`` or flow ``t``), not the canonical forms the fast kernels use,
so it is an independent check of the rewriting. Only the ends of the level range are special: a
level at ``alpha_bar = 0`` and the clean level enter through the same symbolic limits the kernels
use. It loops in Python: use it for a handful of modes. The working precision starts at ``dps`` plus the
decimal range of the inputs (levels and mode variances), and every result is confirmed by a second run at a
higher precision (raised until two runs agree to ``dps`` digits, at most :data:`MAX_WORK_DPS` working digits),
so cancellations in the native forms (e.g. LMS's Lagrange weights on close levels) cost no digits.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Optional

import mpmath
import numpy as np
from numpy.typing import ArrayLike

from .._validate import MAX_DPS, as_dps, as_levels, as_spectrum, check_choice, mp_modes, numpy_error_defaults

__all__ = ["output_spectrum_mp", "output_spectrum_ve_mp", "transfer_function_mp", "MAX_DPS"]


@lru_cache(maxsize=None)
def _mp_step(name: str, options: tuple[tuple[str, Any], ...], kind: str, modes: tuple[str, ...],
             values: tuple[tuple[str, str], ...] = ()) -> Callable[..., Any]:
    """mpmath ``(S, native levels of the ordinary slots, params, step params) -> (A, B)`` in the VP state scale;
    ``values`` pins parameters before the limits, as the kernels do (:func:`.kernels.pinned_values`)."""
    from ..symbolic import get_sampler
    from ..symbolic.limits import vp_step
    from ..symbolic.symbols import S, slot_level
    from .codegen import compile_mpmath

    smp = get_sampler(name, **dict(options))
    upd = smp.kinds[kind]
    lv = {j: slot_level(smp.process, j) for j in upd.slots}
    A2, B2 = vp_step(smp, kind, modes, values)
    args = [S] + [lv[j] for j, mode in zip(upd.slots, modes) if mode == ""] + list(smp.params) + list(smp.step_params)
    return compile_mpmath(args, [A2, B2])


def _native_levels(x: np.ndarray, coordinate: str, process: str) -> list[Any]:
    """The levels in the sampler's native coordinate, at the working precision (inputs exact)."""
    out = []
    for v in x:
        v = mpmath.mpf(float(v)) if np.isfinite(v) else mpmath.inf
        if coordinate == "alpha_bar":
            ab = v
        else:  # sigma
            ab = mpmath.mpf(0) if v == mpmath.inf else 1 / (1 + v * v)
        if process == "vp":
            out.append(ab)
        elif process == "ve":
            out.append(mpmath.inf if ab == 0 else (v if coordinate == "sigma" else mpmath.sqrt((1 - ab) / ab)))
        else:  # flow: t = sigma / (1 + sigma), sigma = sqrt((1 - ab)/ab)
            if ab == 0:
                out.append(mpmath.mpf(1))
            else:
                sg = v if coordinate == "sigma" else mpmath.sqrt((1 - ab) / ab)
                out.append(sg / (1 + sg))
    return out


def _init(process: str, init: str, S: Any, level: Any) -> Any:
    """Starting variance in the VP scale (see :func:`symsched.engine.kernels.init_kernel`)."""
    if process == "vp":
        ab = level
    elif process == "ve":
        ab = mpmath.mpf(0) if level == mpmath.inf else 1 / (1 + level**2)
    else:
        ab = (1 - level) ** 2 / ((1 - level) ** 2 + level**2)
    if init == "exact":
        return ab * S + 1 - ab
    if process == "vp":
        return mpmath.mpf(1)
    if process == "ve":
        return 1 - ab
    c, s = mpmath.sqrt(ab), mpmath.sqrt(1 - ab)
    return (c + s) ** 2


def _run(spectrum: ArrayLike, x: np.ndarray, coordinate: str, sampler: str, init: str | None, dps: int,
         settings: dict[str, Any], *, limit: bool = False) -> np.ndarray:
    """The mpmath evaluation of the public ``*_mp`` functions (``limit``: held to ``MAX_MP_EVALUATIONS``) and
    of the engine's exact fallback, on the distinct modes of ``spectrum`` (object array of its shape)."""
    dps = as_dps(dps)
    S_all = as_spectrum(spectrum)
    S, inv = mp_modes(S_all, len(x) if limit else 0, "levels")  # (0: the engine's own few modes are not held)
    return _settled(S, x, coordinate, sampler, init, dps, settings)[inv].reshape(S_all.shape)


def _settled(S: np.ndarray, x: np.ndarray, coordinate: str, sampler: str, init: str | None, dps: int,
             settings: dict[str, Any]) -> np.ndarray:
    """:func:`_run` on the 1-D modes ``S``: raised working precision until two runs agree to ``dps`` digits."""
    from ..api import _setup
    from ..symbolic import kernel_options, sampler_module

    name, options, params = _setup(sampler, settings)
    mod = sampler_module(name)
    opts = kernel_options(name, options)
    # the native updates cancel (e.g. 1 - (1 - ab)/lambda with lambda = ab S + 1 - ab cancels to ab S): carry
    # enough digits to span the dynamic range of the levels and of the modes together, on top of the requested ones
    span_S = [abs(np.log10(v)) for v in np.ravel(S) if np.isfinite(v) and v > 0]
    if coordinate == "alpha_bar":
        span_x = [abs(np.log10(v)) for v in x if v > 0] + [abs(np.log10(1 - v)) for v in x if 0 < v < 1]
    else:  # alpha_bar = 1/(1 + sigma^2): sigma^2 spans twice the decades of sigma
        span_x = [2 * abs(np.log10(v)) for v in x if np.isfinite(v) and v > 0]
    extra = int(max(span_S, default=0.0) + max(span_x, default=0.0)) + 10

    def once(work: int) -> np.ndarray:
        out = np.empty(S.shape, dtype=object)
        try:
            with mpmath.workdps(work):
                _sweep(out, S, x, coordinate, name, mod, options, params, opts, init)
        except ValueError as exc:  # Python's 4300-digit limit on int <-> str met inside mpmath at thousands of digits
            if "integer string conversion" not in str(exc):
                raise
            raise ValueError(f"dps: the {sampler!r} recursion on these levels did not settle to {int(dps)} digits "
                             f"within {work} working digits (mpmath)") from None
        return out

    def divided(work: int) -> tuple[np.ndarray, int]:
        """``(once(w), w)`` for the first ``w >= work`` (doubling) at which no quantity the native forms divide by
        cancels to an exact 0 (dpm_2_ancestral's sigma_down = sqrt(sigma_to^2 - sigma_up^2) from sigma = 1e155 to
        1e-155 needs 620 digits: mpmath's ZeroDivisionError reached the caller)."""
        while True:
            try:
                return once(work), work
            except ZeroDivisionError:
                if work >= MAX_WORK_DPS:
                    raise ValueError(f"dps: the {sampler!r} recursion on these levels divides by a quantity that "
                                     f"cancels to 0 within {MAX_WORK_DPS} working digits (mpmath)") from None
                work = min(MAX_WORK_DPS, 2 * work)

    # the margin above is a guess: close levels cancel more in the native forms (LMS's Lagrange weights on
    # levels 1e-9 apart need about 70 more digits), so every result is confirmed at a higher precision
    out, work = divided(int(dps) + extra)
    at_zero = np.broadcast_to(np.asarray(S) == 0, out.shape)
    shrank = np.zeros(out.shape, dtype=bool)
    while True:
        check, higher = divided(work + max(20, work // 2))
        shrinks = at_zero & _shrinking(out, check, higher - work)
        residue = shrank & shrinks  # fell with the working precision in two comparisons running: an exact 0
        if _agree(out, check, int(dps), work, residue):
            # at S = 0, two values below the floor that still differ are a residue too (they agreed as both tiny)
            return np.where(residue | (at_zero & _unsettled(out, check, int(dps))), mpmath.mpf(0), check)
        shrank = shrinks
        if higher > MAX_WORK_DPS:
            raise ValueError(f"dps: the {sampler!r} recursion on these levels did not settle to {int(dps)} digits "
                             f"within {MAX_WORK_DPS} working digits (mpmath)")
        out, work = check, higher


#: most working digits the mpmath path uses to confirm a result (:func:`_run`; below Python's 4300-digit
#: limit on integer-string conversions)
MAX_WORK_DPS = 4_000


def _agree(a: np.ndarray, b: np.ndarray, dps: int, work: int, residue: Optional[np.ndarray] = None) -> bool:
    """Every entry of ``a`` (computed at ``work`` digits) within 10**-dps relative of ``b`` (computed at more):
    equal values agree, and so do two values both below 10**-work, the rounding residue of a variance that is
    0 in exact arithmetic (e.g. P(S = 0) of a deterministic sampler, ~10**(-2 work) at each precision), and the
    entries marked ``residue`` (see :func:`_shrinking`)."""
    tol, floor = mpmath.mpf(10) ** (-dps), mpmath.mpf(10) ** (-work)
    marked = np.zeros(a.size, dtype=bool) if residue is None else np.ravel(residue)
    for u, v, z in zip(a.ravel(), b.ravel(), marked):
        if u == v or z:
            continue
        if not (mpmath.isfinite(u) and mpmath.isfinite(v)):
            return False
        if abs(u - v) > tol * max(abs(u), abs(v)) and max(abs(u), abs(v)) > floor:
            return False
    return True


def _unsettled(a: np.ndarray, b: np.ndarray, dps: int) -> np.ndarray:
    """Entries that differ by more than 10**-dps relative between the two precisions (a value has settled; the
    rounding residue of an exact 0, which :func:`_agree` lets through below its floor, moves with the precision:
    LMS's P(S = 0) on levels 1e-6 apart is 1e-159 at 50 digits and 6e-250 at 80)."""
    tol = mpmath.mpf(10) ** (-dps)
    out = np.zeros(a.shape, dtype=bool)
    for idx in np.ndindex(a.shape):
        u, v = a[idx], b[idx]
        out[idx] = bool(mpmath.isfinite(u) and mpmath.isfinite(v) and u != v
                        and abs(u - v) > tol * max(abs(u), abs(v)))
    return out


def _shrinking(a: np.ndarray, b: np.ndarray, gained: int) -> np.ndarray:
    """Entries of ``b`` smaller than ``a`` by at least 10**(gained/2), ``gained`` the digits added between the two
    runs: how the rounding residue of an exact 0 behaves (LMS on close levels amplifies H(S = 0) = 0's residue to
    ~10**(-work + 2), above the floor of :func:`_agree`, at every precision, and never settled), while a value,
    however small (DEIS's P(0) ~ sigma_last^2 = 1e-200), stays put once the precision suffices. :func:`_run`
    takes an entry for a residue (an exact 0) only when it shrank in two comparisons running, at S = 0."""
    drop = mpmath.mpf(10) ** (-(gained // 2))
    out = np.zeros(a.shape, dtype=bool)
    for idx in np.ndindex(a.shape):
        u, v = a[idx], b[idx]
        out[idx] = bool(mpmath.isfinite(u) and mpmath.isfinite(v) and u != 0 and abs(v) < drop * abs(u))
    return out


def _mp_steps(x: np.ndarray, coordinate: str, name: str, mod: Any, options: Any, params: Any,
              opts: Any) -> tuple[list[Any], list[Any]]:
    """The sampler's plan as mpmath steps ``(fn, levels, step params)`` at the current precision, and the native
    levels (``fn(S, *levels, *params, *step params)`` gives that step's ``(A, B)``)."""
    from .kernels import pinned_step
    from .program import canonical_levels, plan_levels, undefined_step_error  # the plan sees build_program's levels

    K = len(x)
    lv = _native_levels(x, coordinate, mod.PROCESS)
    zero = [bool(v == (mpmath.inf if mod.PROCESS == "ve" else (0 if mod.PROCESS == "vp" else 1))) for v in lv]
    ell = plan_levels(x, coordinate, canonical_levels(x, coordinate)[2])
    pnames = tuple(getattr(mod, "PARAMS", {}))
    pv = [mpmath.mpf(params[p]) for p in pnames]
    steps = []
    for item in mod.plan(K, ell, dict(params), **options):
        kind, idx = item[0], tuple(item[1])
        sp_ = dict(item[2]) if len(item) > 2 else {}
        modes = tuple("clean" if i == K else ("zero" if zero[i] else "") for i in idx)
        try:
            fn = pinned_step(lambda v: _mp_step(name, opts, kind, modes, v), modes,
                             {p: float(params[p]) for p in pnames}, bool(getattr(mod, "ZERO_LIMIT_BY_VALUE", False)))
        except ValueError as exc:  # a step undefined at pure noise: the float64 path's message
            raise undefined_step_error(exc, {"sigma": "sigmas"}.get(coordinate, coordinate), name, kind,
                                       modes) from None
        lev = [lv[i] for i, mo in zip(idx, modes) if mo == ""]
        steps.append((fn, [*lev, *pv, *(mpmath.mpf(sp_.get(p, 0.0)) for p in getattr(mod, "STEP_PARAMS", ()))]))
    return steps, lv


class _NotReal(ValueError):
    """A step coefficient that mpmath evaluates to a complex number (re-raised by :func:`_sweep` naming the step)."""


def _real(fn: Any, s_mp: Any, args: list[Any]) -> tuple[Any, Any]:
    """``fn(s_mp, *args)`` as real mpmath matrices ``(A, B)``: a coefficient with an imaginary part (a square root of a
    negative number in exact arithmetic, e.g. an ancestral sigma_down on a step whose float64 decision and exact
    arithmetic disagree) raises :class:`_NotReal` rather than reaching the result as an mpc."""
    out = []
    for M in fn(s_mp, *args):
        M = mpmath.matrix(M)
        for i in range(M.rows):
            for k in range(M.cols):
                v = M[i, k]
                if isinstance(v, mpmath.mpc):
                    if v.imag != 0:
                        raise _NotReal(mpmath.nstr(v, 6))
                    M[i, k] = v.real
        out.append(M)
    return out[0], out[1]


def _mp_gain(steps: list[Any], s_mp: Any, m: int, process: str, first: Any) -> Any:
    """The transfer function of one mode: the state's first entry after the steps from a unit start, in the
    signal's scale (VE: divided by sqrt(1 + sigma_0^2); flow: by sqrt((1 - t_0)^2 + t_0^2))."""
    y = mpmath.matrix(m, 1)
    y[0] = 1
    for fn, args in steps:
        A, _ = _real(fn, s_mp, args)
        y = A * y
    if process == "vp":
        return +y[0]
    if process == "ve":
        return +(y[0] / mpmath.sqrt(1 + first ** 2)) if first != mpmath.inf else mpmath.mpf(0)
    return +(y[0] / mpmath.sqrt((1 - first) ** 2 + first ** 2))


def _mp_variance(steps: list[Any], s_mp: Any, m: int, C00: Any) -> Any:
    """The output variance of one mode: ``C <- A C A^T + B B^T`` from ``C[0, 0] = C00``, then ``C[0, 0]``."""
    C = mpmath.matrix(m, m)
    C[0, 0] = C00
    for fn, args in steps:
        A, B = _real(fn, s_mp, args)
        C = A * C * A.T + (B * B.T if B.cols else 0)
    return +C[0, 0]


def _sweep(out: np.ndarray, S: np.ndarray, x: np.ndarray, coordinate: str, name: str, mod: Any, options: Any,
           params: Any, opts: Any, init: str | None) -> None:
    """One evaluation at the current mpmath precision, into ``out``: the transfer function (``init`` None) or
    the output variance of every mode."""
    steps, lv = _mp_steps(x, coordinate, name, mod, options, params, opts)
    m = len(mod.ENTRIES)
    for pos, s_val in np.ndenumerate(S):
        s_mp = mpmath.mpf(float(s_val))
        try:
            if init is None:
                out[pos] = _mp_gain(steps, s_mp, m, mod.PROCESS, lv[0])
            else:
                out[pos] = _mp_variance(steps, s_mp, m, _init(mod.PROCESS, init, s_mp, lv[0]))
        except _NotReal as exc:
            given = ", ".join(f"{k}={v:g}" for k, v in params.items())
            arg = {"sigma": "sigmas"}.get(coordinate, coordinate)
            raise ValueError(f"{arg}: a step of this schedule is not real for sampler {name!r}"
                             + (f" with {given}" if given else "") + f" (a coefficient is complex in exact arithmetic, "
                             f"{exc}: the branch taken on the float64 levels, e.g. get_ancestral_step's min not "
                             "binding, is not the exact one, by a rounding)") from None


@numpy_error_defaults
def output_spectrum_mp(spectrum: ArrayLike, alpha_bar: ArrayLike, *, sampler: str = "ddim", init: str = "white",
                       dps: int = 50, **settings: Any) -> np.ndarray:
    """:func:`symsched.output_spectrum` at ``dps`` decimal digits; returns an object array of mpf, shape of
    ``spectrum``. ``dps`` in [1, MAX_DPS]; the
    working precision is raised until two runs agree (ValueError if they do not within MAX_WORK_DPS digits, or
    for a bad argument, named, or beyond MAX_MP_EVALUATIONS distinct modes x levels; each distinct mode is evaluated
    once). Source: the same symbolic update equations, evaluated with mpmath."""
    check_choice(init, "init", ("white", "exact"))
    return _run(spectrum, as_levels(alpha_bar), "alpha_bar", sampler, init, dps, settings, limit=True)


@numpy_error_defaults
def transfer_function_mp(spectrum: ArrayLike, alpha_bar: ArrayLike, *, sampler: str = "ddim", dps: int = 50,
                         **settings: Any) -> np.ndarray:
    """:func:`symsched.transfer_function` at ``dps`` decimal digits (object array of mpf, shape of ``spectrum``).
    ``dps`` in [1, MAX_DPS]; the
    working precision is raised until two runs agree (ValueError if they do not within MAX_WORK_DPS digits, or
    for a bad argument, named, or beyond MAX_MP_EVALUATIONS distinct modes x levels; each distinct mode is evaluated
    once). Source: the same symbolic update equations, evaluated with mpmath."""
    return _run(spectrum, as_levels(alpha_bar), "alpha_bar", sampler, None, dps, settings, limit=True)


@numpy_error_defaults
def output_spectrum_ve_mp(spectrum: ArrayLike, sigmas: ArrayLike, *, sampler: str = "euler", init: str = "white",
                          dps: int = 50, **settings: Any) -> np.ndarray:
    """:func:`symsched.output_spectrum_ve` at ``dps`` decimal digits (object array of mpf, shape of ``spectrum``).
    ``dps`` in [1, MAX_DPS]; the
    working precision is raised until two runs agree (ValueError if they do not within MAX_WORK_DPS digits, or
    for a bad argument, named, or beyond MAX_MP_EVALUATIONS distinct modes x levels; each distinct mode is evaluated
    once). Source: the same symbolic update equations, evaluated with mpmath."""
    from ..api import _ve_levels  # (float32 sigmas keep their mark: k-diffusion decides on them in float32)

    check_choice(init, "init", ("white", "exact"))
    return _run(spectrum, _ve_levels(sigmas), "sigma", sampler, init, dps, settings, limit=True)
