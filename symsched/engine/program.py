"""A sampler's plan for one schedule, with every step's level coefficients evaluated (no SymPy).

:func:`build_program` turns (sampler, options, parameters, levels) into a :class:`Program`: the
list of steps, each with its compiled kernels (:func:`symsched.engine.kernels.step_kernels`) and
its level coefficients, computed once for all steps of the same kind in ``numpy.longdouble``
(vectorised over steps) and kept in float64 and extended precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from .kernels import StepKernels, gap_kernel, init_kernel, levels_kernel, pinned_step, step_kernels

__all__ = ["Program", "ProgramStep", "build_program", "canonical_levels", "NUMERIC_PARAMS", "LD"]

LD = np.longdouble
Array = NDArray[np.float64]

#: How a sampler parameter enters the kernels (see :mod:`symsched.engine.canonical`): eta as the pair
#: (zeta, eta) with zeta = 1 - eta^2 = (1 - eta)(1 + eta), so that DDIM's sqrt(1 - ab_s - sigma_t^2) is a sum of
#: positive terms and a small eta keeps its digits elsewhere.
NUMERIC_PARAMS: dict[str, Callable[[float], tuple[float, ...]]] = {"eta": lambda v: ((1.0 - v) * (1.0 + v), v)}


def numeric_params(values: Mapping[str, float]) -> list[float]:
    """The kernels' parameter arguments for ``{name: value}`` in order (:data:`NUMERIC_PARAMS`)."""
    return [a for p, v in values.items() for a in NUMERIC_PARAMS.get(p, lambda u: (u,))(float(v))]


@dataclass
class ProgramStep:
    """One step: its kernels, the global level index of each gradient slot, its coefficients."""

    kind: str
    modes: tuple[str, ...]
    kernels: StepKernels
    grad_levels: tuple[int, ...]
    coeffs: tuple[Any, ...]
    coeffs_ld: tuple[Any, ...]
    grad_kernels: Optional[StepKernels] = None
    grad_coeffs: tuple[Any, ...] = ()
    grad_coeffs_ld: tuple[Any, ...] = ()
    #: Gradient coefficients: rows = basis functions of the nonzero entries (in order), columns = grad slots.
    gamma: Optional[NDArray[np.float64]] = None
    #: The same in longdouble (for the longdouble sweeps: a coefficient may lie below the float64 range).
    gamma_ld: Optional[NDArray[Any]] = None
    #: The global level index of each slot of its kind (the sampler's plan entry; level K is the clean level).
    levels: tuple[int, ...] = ()
    #: The plan's per-step parameters of this step (k-diffusion's churn ``gamma``), as (name, value) pairs.
    step_params: tuple[tuple[str, float], ...] = ()


@dataclass
class Program:
    """Steps of one schedule for one sampler, plus what the sweeps need around them."""

    name: str
    process: str
    m: int
    steps: list[ProgramStep]
    c: NDArray[Any]  # longdouble, per level (the clean level last)
    s: NDArray[Any]
    l: NDArray[Any]
    grad: bool = False
    #: True when some level coefficient leaves the normal float64 range: the sweeps then run in
    #: numpy.longdouble (levels such as alpha_bar = 1e-320 or sigma = 1e300).
    extended: bool = False
    #: Worst relative disagreement of the level coefficients evaluated in float64 with the longdouble ones
    #: the sweeps use: large where the coefficient formulas cancel (e.g. LMS on clustered levels), which
    #: the sweeps' own rounding check cannot see (both precisions read the same coefficients).
    coefficient_loss: float = 0.0
    #: the user's name of the levels, for messages ("alpha_bar", "sigmas", "t")
    arg: str = "alpha_bar"
    extra: dict[str, Any] = field(default_factory=dict)
    #: the sampler's numeric parameters (eta, s_noise, ...), for messages
    params: dict[str, float] = field(default_factory=dict)

    @property
    def K(self) -> int:
        return len(self.l) - 1

    def init(self, init: str) -> Callable[..., list[Any]]:
        return init_kernel(self.process, init)


def canonical_levels(x: Any, coordinate: str) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """(c, s, l) in longdouble of levels ``x`` given in ``coordinate`` (see :func:`levels_kernel`)."""
    xx = np.asarray(x, dtype=LD)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        c, s, l = (np.asarray(np.broadcast_to(v, xx.shape), dtype=LD) for v in levels_kernel(coordinate)(xx))
    return c, s, l


class DerivedSigmas(np.ndarray):
    """Sigmas computed from other levels (the optimiser's ``exp(-l/2)`` of its log-SNR search variables), not given by
    a caller: k-diffusion's decisions on them take the plan's 1e-13 slack at a window end, as for levels given as
    alpha_bar (:func:`plan_levels`), since the sigmas that will run (``alpha_bar_to_sigmas`` of the result, its
    exports) lie a few ulp away."""


def derived_sigmas(sigmas: NDArray[Any]) -> NDArray[Any]:
    """``sigmas`` (a validated float64 array) marked as :class:`DerivedSigmas`."""
    return np.asarray(sigmas, dtype=np.float64).view(DerivedSigmas)


class Float32Sigmas(np.ndarray):
    """Sigmas a caller gave as float32 numbers (k-diffusion's ``get_sigmas_*`` return float32 tensors), widened to
    float64 exactly: k-diffusion decides its churn window and ancestral ``min`` on them in float32 arithmetic, where
    ``1 - r^2`` rounds to 1 from sigma_from/sigma_to ~ 4e3 on (float64: ~1e8), so the plans decide in float32 too
    (:class:`~symsched.symbolic.plan.PlanLevels`)."""


def float32_sigmas(sigmas: NDArray[Any]) -> NDArray[Any]:
    """``sigmas`` (a validated float64 array of float32 values) marked as :class:`Float32Sigmas`."""
    return np.asarray(sigmas, dtype=np.float64).view(Float32Sigmas)


def plan_levels(x: Any, coordinate: str, l: NDArray[Any]) -> Any:
    """The levels a sampler's plan sees: the float64 log-SNR ``l`` (shape (K,)), and with levels a caller gave as
    sigmas those sigmas beside them (:class:`~symsched.symbolic.plan.PlanLevels`: k-diffusion decides its churn
    window and ancestral ``min`` on those numbers, which ``exp(-l/2)`` reproduces only to a few ulp; not for
    :class:`DerivedSigmas`)."""
    ell = np.asarray(l, dtype=np.float64)
    if coordinate != "sigma" or isinstance(x, DerivedSigmas):
        return ell
    from ..symbolic.plan import PlanLevels

    return PlanLevels(ell.tolist(), np.asarray(x, dtype=np.float64)[: ell.size].tolist(),
                      float32=isinstance(x, Float32Sigmas))


def _modes(idx: Sequence[int], K: int, zero: Sequence[bool]) -> tuple[str, ...]:
    """Slot modes of a step; ``zero[i]``: level i is alpha_bar = 0 (log-SNR -inf)."""
    return tuple("clean" if i == K else ("zero" if zero[i] else "") for i in idx)


_TINY = np.finfo(np.float64).tiny


def _out_of_range(cols: list[NDArray[Any]], cols_ld: list[NDArray[Any]]) -> bool:
    """True when a coefficient is not finite or loses precision in float64 (subnormal or flushed to 0)."""
    for v, v_ld in zip(cols, cols_ld):
        if not np.all(np.isfinite(v)):
            return True
        if np.any((np.abs(v) < _TINY) & (v_ld != 0)):
            return True
    return False


class _Undefined(ValueError):
    """A step whose level coefficients are NaN even in longdouble (re-raised naming the levels and parameters)."""


def undefined_step_error(exc: ValueError, arg: str, name: str, kind: str, modes: Sequence[str]) -> ValueError:
    """``exc`` itself unless it is the symbolic limits' UndefinedStep; then the ValueError naming ``arg``, the
    sampler, the step and the level where it is undefined (the float64 and the mpmath paths say the same)."""
    from ..symbolic.limits import UndefinedStep

    if not isinstance(exc, UndefinedStep):
        return exc
    where = "alpha_bar = 0 (sigma = inf, pure noise)" if "zero" in modes else "the clean level"
    step = "its step" if kind == "step" else f"its {kind!r} step"
    return ValueError(f"{arg}: sampler {name!r} is undefined at {where}: for {step} {exc}; "
                      "start from a finite noise level")


def _undefined(arg: str, name: str, params: Mapping[str, float]) -> ValueError:
    given = ", ".join(f"{k}={v:g}" for k, v in params.items())
    return ValueError(f"{arg}: a step of this schedule is undefined for sampler {name!r}"
                      + (f" with {given}" if given else "")
                      + " (its coefficients are not finite in extended precision: an extreme level gap or parameter; "
                      "output_spectrum_mp / output_spectrum_ve_mp evaluate it with mpmath)")


def level_gaps(x: Any, coordinate: str) -> Callable[[NDArray[np.intp], NDArray[np.intp]], NDArray[Any]]:
    """``gaps(a, b) -> l[b] - l[a]`` in longdouble for index arrays of finite levels ``x`` in ``coordinate``,
    from the levels themselves (:func:`symsched.engine.kernels.gap_kernel`): the difference of two rounded
    log-SNRs keeps no digit of a gap near their rounding (levels one ulp apart)."""
    xx = np.asarray(x, dtype=LD)
    fn = gap_kernel(coordinate)

    def gaps(a: NDArray[np.intp], b: NDArray[np.intp]) -> NDArray[Any]:
        with np.errstate(all="ignore"):
            return np.asarray(np.broadcast_to(fn(xx[a], xx[b])[0], np.shape(a)), dtype=LD)

    return gaps


def _level_args(kern: StepKernels, group: list[tuple[tuple[int, ...], Mapping[str, float]]], modes: Sequence[str],
                c: NDArray[Any], s: NDArray[Any], l: NDArray[Any], gaps: Callable[[Any, Any], Any],
                params: Sequence[float], step_params: Sequence[str],
                numbers: Callable[[list[float]], NDArray[Any]]) -> list[Any]:
    """The level function's arguments for every step of one group: (c, s, l) of each ordinary slot, the log-SNR
    gaps between them (``gaps(a, b)``, index arrays of ordinary levels), then the parameters and step parameters
    as ``numbers(values)`` (one per step)."""
    args: list[Any] = []
    ordinary = []
    for pos, (j, mode) in enumerate(zip(kern.slots, modes)):
        if mode == "":
            idx = np.array([g[0][pos] for g in group])
            args += [c[idx], s[idx], l[idx]]
            ordinary.append((j, idx))
    ordinary.sort()
    args += [gaps(a, b) for (_, a), (_, b) in zip(ordinary[:-1], ordinary[1:])]
    args += [numbers([float(v)] * len(group)) for v in params]
    args += [numbers([float(g[1].get(p, 0.0)) for g in group]) for p in step_params]
    return args


def _evaluate(kern: StepKernels, group: list[tuple[tuple[int, ...], Mapping[str, float]]], modes: Sequence[str],
              c: NDArray[Any], s: NDArray[Any], l: NDArray[Any], gaps: Callable[[Any, Any], Any],
              params: Sequence[float], step_params: Sequence[str], measure_loss: bool = False
              ) -> tuple[list[tuple[tuple[Any, ...], tuple[Any, ...]]], bool, float]:
    """Level coefficients of every step of one (kind, modes) group: ([(float64 tuple, longdouble tuple)],
    whether some coefficient leaves the normal float64 range, the coefficients' float64 loss
    (:func:`_coefficient_loss`, with ``measure_loss``; else 0))."""
    args = _level_args(kern, group, modes, c, s, l, gaps, params, step_params, lambda v: np.array(v, dtype=LD))
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        raw = kern.level(*args)
    n = len(group)
    table_ld = np.empty((n, len(raw)), dtype=LD)  # one row per step, one column per coefficient
    for i, v in enumerate(raw):
        table_ld[:, i] = v
    if np.isnan(table_ld).any():
        raise _Undefined("alpha_bar: a step of this schedule is undefined (its coefficients are not finite)")
    with np.errstate(over="ignore", under="ignore"):
        table = table_ld.astype(np.float64)
    # one row per step: Python floats (float64) and a longdouble row (both unpack as kernel arguments)
    vals = list(zip(map(tuple, table.tolist()), table_ld))
    out = not np.isfinite(table).all() or bool(((np.abs(table) < _TINY) & (table_ld != 0)).any())
    return vals, out, (_coefficient_loss(kern, args, table_ld) if measure_loss else 0.0)


#: float64 loss of the level coefficients beyond which they are recomputed in mpmath (their longdouble values
#: are only about 2^11 times better, and a step's mode functions may amplify what is left, e.g. LMS on close levels)
MP_COEFFICIENT_LOSS = 1e-13
#: a one-entry sampler's level coefficients are checked for that loss only when some finite log-SNR gap lies below
#: the first or above the second of these (the loss costs one more evaluation of the level functions, ~10 % of an
#: optimiser's 10-level call): their formulas cancel between close levels (dpmpp_sde's noise split, sigma_i - sigma_s:
#: 4.6e-8 lost at a gap of 1e-10, 2e-15 at 1e-3; DDIM, DDPM, Euler, Heun, DPM-2 and Euler ancestral below 1e-15 at
#: every gap); a sampler with memory is always checked (recursion.rounding_check reads it)
LOSS_SCREEN_GAPS = (0.05, 20.0)


class _MpLevels:
    """(c, s, l) of the levels in mpmath, from the caller's levels ``x``, computed on first use."""

    def __init__(self, x: Any, coordinate: str) -> None:
        self.x, self.coordinate, self.value, self.xs = x, coordinate, None, None

    def __call__(self) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
        if self.value is None:
            import mpmath as mp

            from .mpshim import mp_kernel, to_mp

            xs = to_mp(np.atleast_1d(np.asarray(self.x)))
            c, s, l = (np.broadcast_to(np.asarray(v, dtype=object), xs.shape)
                       for v in mp_kernel(levels_kernel(self.coordinate))(xs))
            self.value = (np.append(c, mp.mpf(1)), np.append(s, mp.mpf(0)), np.append(l, mp.inf))
            self.xs = xs
        return self.value

    def gaps(self, a: NDArray[np.intp], b: NDArray[np.intp]) -> NDArray[Any]:
        """l[b] - l[a] in mpmath at the working precision, from the levels (as :func:`level_gaps`)."""
        from .mpshim import mp_kernel

        self()
        out = mp_kernel(gap_kernel(self.coordinate))(self.xs[a], self.xs[b])[0]
        return np.broadcast_to(np.asarray(out, dtype=object), np.shape(a))


def _evaluate_mp(kern: StepKernels, group: list[tuple[tuple[int, ...], Mapping[str, float]]], modes: Sequence[str],
                 levels: _MpLevels, params: Sequence[float], step_params: Sequence[str], loss: float
                 ) -> Optional[list[tuple[tuple[Any, ...], Any]]]:
    """The level coefficients of :func:`_evaluate` computed in mpmath (levels too), with enough digits for a
    formula that loses ``loss`` relative in float64; None when that fails (the longdouble ones then stay)."""
    import math

    import mpmath as mp

    from .mpshim import from_mp, mp_kernel

    n = len(group)
    lost = math.log10(max(loss, 1e-16) / 2.2e-16)
    try:
        with mp.workdps(int(min(30 + 2 * lost, 300))):
            args = _level_args(kern, group, modes, *levels(), levels.gaps, params, step_params,
                               lambda v: np.array([mp.mpf(x) for x in v], dtype=object))
            cols = [from_mp(v, n) for v in mp_kernel(kern.level)(*args)]
    except (ArithmeticError, ValueError, TypeError):  # e.g. a division by an exact 0 where NumPy gives inf
        return None
    table_ld = np.column_stack(cols) if cols else np.empty((n, 0), dtype=LD)
    if not np.isfinite(table_ld).all():
        return None
    return list(zip(map(tuple, table_ld.astype(np.float64).tolist()), table_ld))


def _confirmed_mp(kern: StepKernels, group: list[tuple[tuple[int, ...], Mapping[str, float]]], modes: Sequence[str],
                  levels: _MpLevels, params: Sequence[float], step_params: Sequence[str]
                  ) -> Optional[list[tuple[tuple[Any, ...], Any]]]:
    """:func:`_evaluate_mp` at about 30 digits, confirmed at about 60 (every coefficient within 1e-12 relative), for
    coefficients that are NaN in longdouble; None when they do not agree (DPM++ 2M SDE at eta = 1e300 needs more
    than 300 digits: its gradient came out 1e270 at 30), or mpmath fails."""
    low = _evaluate_mp(kern, group, modes, levels, params, step_params, 0.0)
    high = None if low is None else _evaluate_mp(kern, group, modes, levels, params, step_params, 0.1)
    if high is None:
        return None
    a = np.array([np.asarray(v[1], dtype=LD) for v in low])
    b = np.array([np.asarray(v[1], dtype=LD) for v in high])
    with np.errstate(all="ignore"):
        ok = (a == b) | (np.abs(a - b) <= 1e-12 * np.maximum(np.abs(a), np.abs(b)))
    return high if bool(np.all(ok)) else None


def _outside_float64(vals: list[tuple[tuple[Any, ...], Any]]) -> bool:
    """Whether coefficients from :func:`_evaluate_mp` leave the normal float64 range (as :func:`_evaluate` says)."""
    if not vals or not len(vals[0][0]):
        return False
    table = np.array([v[0] for v in vals], dtype=np.float64)
    table_ld = np.array([np.asarray(v[1], dtype=LD) for v in vals])
    return not np.isfinite(table).all() or bool(((np.abs(table) < _TINY) & (table_ld != 0)).any())


def finite_gaps(l: NDArray[Any]) -> NDArray[np.float64]:
    """|log-SNR gaps| between consecutive finite levels ``l`` (pure noise and the clean end left out; levels one ulp
    apart: a gap of 0)."""
    ell = np.asarray(l, dtype=np.float64)
    return np.abs(np.diff(ell[np.isfinite(ell)]))


def _gaps_outside(l: NDArray[Any], bounds: tuple[float, float]) -> bool:
    """Whether some :func:`finite_gaps` of ``l`` lies below ``bounds[0]`` or above ``bounds[1]``."""
    gaps = finite_gaps(l)
    return bool(gaps.size) and bool(gaps.min() < bounds[0] or gaps.max() > bounds[1])


def _coefficient_loss(kern: StepKernels, args: list[Any], table_ld: NDArray[Any]) -> float:
    """max relative disagreement of the level coefficients evaluated from float64 arguments with the
    longdouble ones (where both are normal floats): about 2^11 times the longdouble coefficients' own
    rounding error, since a formula that cancels amplifies both alike."""
    with np.errstate(all="ignore"):
        raw = kern.level(*[np.asarray(a, dtype=np.float64) for a in args])
        t64 = np.column_stack([np.broadcast_to(np.asarray(v, dtype=np.float64), (table_ld.shape[0],))
                               for v in raw]) if raw else np.empty(table_ld.shape)
        ref = table_ld.astype(np.float64)
        ok = np.isfinite(t64) & np.isfinite(ref) & (np.abs(ref) >= _TINY)
        d = np.abs(t64[ok] - ref[ok]) / np.abs(ref[ok])
    return float(np.max(d, initial=0.0))


def _grad_at_boundary(name: str, opts: tuple[tuple[str, Any], ...], kind: str, modes: tuple[str, ...],
                  params_used: Mapping[str, float], arg: str, evaluate: Callable[[StepKernels], Any]) -> Any:
    """(kernels, coefficients, extended) of a gradient step whose coefficients are NaN at a parameter that is
    exactly 0 or 1, derived with that parameter pinned to its value: e.g. the derivative of the SDE samplers' noise
    ``sigma sqrt(-expm1(-2 eta h))`` is ``eta e^{-2 eta h} / sqrt(...)``, 0/0 at eta = 0, where the noise and its
    derivative vanish; DPM++ SDE's ``r = 1`` (its intermediate level on the next one) is another such boundary.
    ValueError as :func:`_undefined` when no parameter is 0 or 1, or the pinned step fails too."""
    pins = tuple((p, "0" if v == 0.0 else repr(v)) for p, v in params_used.items()
                 if v in (0.0, 1.0)) if "zero" not in modes else ()
    if not pins:
        raise _undefined(arg, name, params_used) from None
    gkern = step_kernels(name, opts, kind, modes, grad=True, values=pins)
    try:
        gvals, ext, _ = evaluate(gkern)
    except _Undefined:
        raise _undefined(arg, name, params_used) from None
    return gkern, gvals, ext


def build_program(name: str, options: Mapping[str, Any], params: Mapping[str, float], x: Any, coordinate: str, *,
                  grad: bool = False) -> Program:
    """The :class:`Program` of sampler ``name`` on levels ``x`` (noisiest first) given in ``coordinate``.

    ``options`` are structural (complete, validated), ``params`` the numeric parameters by name.
    """
    from ..symbolic import kernel_options, sampler_module

    mod = sampler_module(name)
    c, s, l = canonical_levels(x, coordinate)
    gaps = level_gaps(x, coordinate)
    K = len(l)
    one, zero = np.ones(1, dtype=LD), np.zeros(1, dtype=LD)
    c, s, l = np.concatenate([c, one]), np.concatenate([s, zero]), np.concatenate([l, [LD(np.inf)]])
    opts = kernel_options(name, dict(options))
    pnames = tuple(getattr(mod, "PARAMS", ()))
    params_used = {p: float(params[p]) for p in pnames}
    pvals = numeric_params(params_used)
    step_params = tuple(getattr(mod, "STEP_PARAMS", ()))
    arg = {"sigma": "sigmas"}.get(coordinate, coordinate)
    try:
        plan = mod.plan(K, plan_levels(x, coordinate, l[:K]), dict(params), **dict(options))
    except ValueError as exc:  # the sampler modules speak of alpha_bar: name the levels as the caller gave them
        msg = str(exc)
        if arg != "alpha_bar" and msg.startswith("alpha_bar: "):
            raise ValueError(f"{arg}: {msg[len('alpha_bar: '):]}") from None
        raise

    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    items = []
    zero = np.isneginf(l).tolist()
    for n, item in enumerate(plan):
        kind, idx = item[0], tuple(item[1])
        prm = dict(item[2]) if len(item) > 2 else {}
        modes = _modes(idx, K, zero)
        items.append((kind, idx, prm, modes))
        groups.setdefault((kind, modes), []).append(n)

    steps: list[Optional[ProgramStep]] = [None] * len(items)
    by_value = bool(getattr(mod, "ZERO_LIMIT_BY_VALUE", False))
    extended, coefficient_loss = False, 0.0
    mp_levels = _MpLevels(x, coordinate)
    measure_loss = len(mod.ENTRIES) > 1 or _gaps_outside(l, LOSS_SCREEN_GAPS)
    for (kind, modes), members in groups.items():
        try:
            kern = pinned_step(lambda v: step_kernels(name, opts, kind, modes, values=v), modes, params_used,
                               by_value)
        except ValueError as exc:  # UndefinedStep from the symbolic limits
            raise undefined_step_error(exc, arg, name, kind, modes) from None
        group = [(items[n][1], items[n][2]) for n in members]
        # the loss decides mpmath coefficients for every sampler (one-entry ones on close or far levels too:
        # LOSS_SCREEN_GAPS); only a sampler with memory also reads it in recursion.rounding_check
        from_mp = None
        try:
            vals, ext, loss = _evaluate(kern, group, modes, c, s, l, gaps, pvals, step_params,
                                        measure_loss=measure_loss)
        except _Undefined:  # NaN in longdouble: finite in mpmath? (e^{eta h} e^{-eta h} split by the factorisation)
            from_mp = _confirmed_mp(kern, group, modes, mp_levels, pvals, step_params)
            if from_mp is None:
                raise _undefined(arg, name, params_used) from None
            vals, ext, loss = from_mp, _outside_float64(from_mp), 0.0
        exact, loss_before = from_mp, loss  # the gradient's forward coefficients then come from mpmath too
        if loss > MP_COEFFICIENT_LOSS:  # the formulas cancel: recompute the coefficients in mpmath (levels beyond
            # float64 too: dpmpp_sde on sigmas 7e98 and 7e98 (1 - 1e-12) then 1e-300 was 2.2e-8 off, unchecked)
            exact = _evaluate_mp(kern, group, modes, mp_levels, pvals, step_params, loss)
            if exact is not None:
                vals, loss = exact, 0.0
        extended, coefficient_loss = extended or ext, max(coefficient_loss, loss)
        gvals: list[Any] = [((), ())] * len(members)
        gkern = None
        if grad:
            gkern = pinned_step(lambda v: step_kernels(name, opts, kind, modes, grad=True, values=v), modes,
                                params_used, by_value)
            try:
                gvals, ext, _ = _evaluate(gkern, group, modes, c, s, l, gaps, pvals, step_params)
            except _Undefined:
                g_mp = _confirmed_mp(gkern, group, modes, mp_levels, pvals, step_params)
                if g_mp is not None:
                    gvals, ext, exact = g_mp, _outside_float64(g_mp), None  # confirmed: not evaluated again below
                else:
                    gkern, gvals, ext = _grad_at_boundary(name, opts, kind, modes, params_used, arg,
                                                      lambda gk: _evaluate(gk, group, modes, c, s, l, gaps, pvals,
                                                                           step_params))
            if exact is not None:  # the gradient sweep's own forward coefficients, from the same formulas
                gvals = _evaluate_mp(gkern, group, modes, mp_levels, pvals, step_params, loss_before) or gvals
            extended = extended or ext
        slot_pos = {j: pos for pos, j in enumerate(kern.slots)}
        gpos = [slot_pos[j] for j in (gkern.grad_slots if gkern else ())]
        if gkern is not None:
            nc, ng = gkern.n_coeffs, len(gkern.grad_slots)
            gammas = np.array([g[nc:] for g, _ in gvals], dtype=np.float64).reshape(len(members), -1, max(ng, 1))
            gammas_ld = np.array([np.asarray(g_ld, dtype=LD)[nc:] for _, g_ld in gvals],
                                 dtype=LD).reshape(len(members), -1, max(ng, 1))
        for i, (n, (co, co_ld), (gco, gco_ld)) in enumerate(zip(members, vals, gvals)):
            idx = items[n][1]
            grad_levels = tuple(idx[p] for p in gpos)
            gamma = gamma_ld = None
            if gkern is not None:
                gamma, gamma_ld = gammas[i, :, :ng], gammas_ld[i, :, :ng]
                gco, gco_ld = gco[:nc], gco_ld[:nc]
            steps[n] = ProgramStep(kind=kind, modes=modes, kernels=kern, grad_levels=grad_levels, coeffs=co,
                                   coeffs_ld=co_ld, grad_kernels=gkern, grad_coeffs=gco, grad_coeffs_ld=gco_ld,
                                   gamma=gamma, gamma_ld=gamma_ld, levels=idx,
                                   step_params=tuple((key, float(v)) for key, v in items[n][2].items()))
    return Program(name=name, process=mod.PROCESS, m=len(mod.ENTRIES), steps=[st for st in steps if st is not None],
                   c=c, s=s, l=l, grad=grad, extended=extended, coefficient_loss=coefficient_loss,
                   arg=arg, params=params_used)


def diverged(prog: Program, S: float, what: str = "output variance", where: str = "") -> ValueError:
    """The error for a mode whose ``what`` leaves the float64 range: it names the spectrum (the argument the mode
    belongs to) and the sampler's parameters, which may be the cause (``s_noise=1e200`` made the mode S = 7e-5
    diverge, and the message spoke of the spectrum alone)."""
    given = ", ".join(f"{k}={v:g}" for k, v in prog.params.items())
    return ValueError(f"spectrum: the {what} of the mode S={S:.6g}{' ' + where if where else ''} exceeds the float64 "
                      "range for this schedule"
                      + (f" with {given}" if given else "") + f" (the sampler {prog.name!r} diverges for this mode)")


def evaluate_step(name: str, kind: str, levels: Sequence[float], S: Any, *, coordinate: str = "alpha_bar",
                  options: Optional[Mapping[str, Any]] = None, params: Optional[Mapping[str, float]] = None,
                  step_params: Optional[Mapping[str, float]] = None, grad: bool = False) -> list[Any]:
    """The compiled entries of one step (for checks): ``levels`` are the kind's slot levels in
    ``coordinate`` (``None`` for the clean level, 0 / inf for zero SNR); returns the mode function's list."""
    from ..symbolic import check_options, kernel_options, sampler_module

    mod = sampler_module(name)
    opts = kernel_options(name, check_options(name, dict(options or {})))
    prm = {p: float((params or {}).get(p, d)) for p, d in getattr(mod, "PARAMS", {}).items()}
    x = np.array([np.nan if v is None else v for v in levels], dtype=np.float64)
    c, s, l = canonical_levels(np.nan_to_num(x, nan=0.5), coordinate)
    gaps = level_gaps(np.nan_to_num(x, nan=0.5), coordinate)
    modes = tuple("clean" if v is None else ("zero" if np.isneginf(li) else "") for v, li in zip(levels, l))
    kern = pinned_step(lambda v: step_kernels(name, opts, kind, modes, grad=grad, values=v), modes, prm,
                       bool(getattr(mod, "ZERO_LIMIT_BY_VALUE", False)))
    pvals = numeric_params(prm)
    group = [(tuple(range(len(levels))), dict(step_params or {}))]
    (co, co_ld), = _evaluate(kern, group, modes, c, s, l, gaps, pvals, tuple(getattr(mod, "STEP_PARAMS", ())))[0]
    S = np.asarray(S, dtype=np.float64)
    with np.errstate(all="ignore"):
        if np.all(S <= 1):
            fn, head = kern.mode_s, (S,)
        else:
            fn, head = kern.mode_t, (S, 1 / S)
        ws = [np.empty_like(S) for _ in range(max(1, getattr(fn, "n_workspace", 0)))]
        return [np.array(v, copy=True) if np.ndim(v) else v for v in fn(*head, *co, ws)]


def program_from_kernel(kern: StepKernels, level_args: Sequence[Any], *, name: str = "", process: str = "vp") -> Program:
    """A one-kind :class:`Program` whose steps share ``kern``; ``level_args[i]`` is an array over the
    steps (or a scalar) for the i-th argument of the level function (used by the continuous-time
    schemes of :mod:`symsched.sde`, whose levels are forward times rather than noise levels)."""
    n = max((np.size(a) for a in level_args), default=1)
    args = [np.broadcast_to(np.asarray(a, dtype=LD), (n,)) for a in level_args]
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        raw = kern.level(*args)
    cols_ld = [np.broadcast_to(np.asarray(v, dtype=LD), (n,)) for v in raw]
    with np.errstate(over="ignore", under="ignore"):
        cols = [v.astype(np.float64) for v in cols_ld]
    steps = [ProgramStep(kind="step", modes=("", ""), kernels=kern, grad_levels=(),
                         coeffs=tuple(float(v[i]) for v in cols), coeffs_ld=tuple(v[i] for v in cols_ld))
             for i in range(n)]
    one = np.ones(1, dtype=LD)
    return Program(name=name, process=process, m=kern.m, steps=steps, c=one, s=one * 0, l=one * 0,
                   extended=_out_of_range(cols, cols_ld))
