r"""Continuous-time VP samplers (issue #5): exact output spectra of EM, EI, DDPM, Euler, Heun, RK4
and of the exact reverse SDE / probability-flow ODE.

Model (per mode of data variance ``S``): forward SDE ``dx = -beta(t) x dt + sqrt(2 beta(t)) dw`` on
``[0, horizon]``, ``beta(t) = beta_min + (beta_max - beta_min) t``, ``B(t) = int_0^t beta``, marginal
variance ``lambda(t) = e^{-2B(t)} S + 1 - e^{-2B(t)}``. A scheme runs on the reverse grid
``t_k = (horizon - eps) k / (N - 1)``, ``k = 0..N-1`` (``N = n_points`` points, ``N - 1`` steps,
``Delta = t_1 - t_0``) at forward times ``tau_k = horizon - t_k``, from the white (variance 1) or
exact (``lambda(horizon)``) start; each step is per mode ``y <- g y + sqrt(n) z``, so the variance
obeys ``v <- g^2 v + n`` and the output spectrum is the variance after the last step.

The steps are derived in :mod:`symsched.symbolic.sde` and compiled by
:mod:`symsched.engine.sde_kernels`; nothing here retypes a formula.

Conventions decided here
------------------------
* **Zero modes at eps = 0.** ``heun`` and ``rk4`` evaluate the score at ``tau_{k+1}``, i.e. at
  forward time ``eps`` on the last step, where ``lambda(0) = S``. For a mode with ``S = 0`` and
  ``eps = 0`` that is a division by zero (the gain diverges like ``1/S`` as ``S -> 0+``): such modes
  get the documented value ``P = +inf`` (so their W2 error is infinite). ``em``, ``ei``, ``ddpm``,
  ``euler`` only evaluate the score at ``tau_k >= Delta > 0`` and the continuous solutions have a
  removable singularity there: they are finite (``P = 0`` for the exact start).
* **NFE.** ``nfe(scheme, N)`` = denoiser (score) evaluations = ``evals_per_step * (N - 1)`` with 1 per
  step for em, ei, ddpm, euler; 2 for heun (its second slope is taken at the Euler *predictor*, not at
  the accepted point, so it cannot be reused by the next step, and the last step is a full Heun
  step too); 4 for rk4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterable, Literal, Optional, Sequence

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._markdown import md_table
from ._tex import FIT_TO_LINE
from ._validate import (
    MAX_DPS, MAX_STEPS, ArgumentTypeError, _show, as_dps, as_int, as_real as _real, as_spectrum, check_choice,
    check_entries, mp_modes, numpy_error_defaults,
)
from .engine.recursion import EXACT_FALLBACK_MODES  # modes recomputed with mpmath at most, as in the engine


class _LazyKernels:
    """``symsched.engine.sde_kernels``, imported on first use (it needs SymPy; ``import symsched`` must not)."""

    def __getattr__(self, name: str) -> Any:
        from .engine import sde_kernels

        return getattr(sde_kernels, name)


K: Any = _LazyKernels()

__all__ = [
    "BeyondFloat64",
    "UndefinedUpdate",
    "SCHEMES",
    "SDE_SCHEMES",
    "ODE_SCHEMES",
    "KINDS",
    "INITS",
    "COUNTS",
    "EVALS_PER_STEP",
    "nfe",
    "n_points_for_nfe",
    "reverse_grid",
    "output_spectrum",
    "continuous_output_spectrum",
    "output_spectrum_mp",
    "continuous_output_spectrum_mp",
    "error_table",
    "ErrorTable",
]

Array = NDArray[np.float64]

#: The six schemes of issue #5, in table order.
SCHEMES: tuple[str, ...] = ("em", "ei", "ddpm", "euler", "heun", "rk4")
#: Discretisations of the reverse SDE / of the probability-flow ODE.
SDE_SCHEMES: tuple[str, ...] = ("em", "ei", "ddpm")
ODE_SCHEMES: tuple[str, ...] = ("euler", "heun", "rk4")
#: Exact continuous solutions: the reverse SDE and the probability-flow ODE.
KINDS: tuple[str, ...] = ("sde", "ode")
INITS: tuple[str, ...] = ("white", "exact")
#: What the sizes of :func:`error_table` count: grid points or denoiser evaluations.
COUNTS: tuple[str, ...] = ("points", "nfe")
#: Denoiser evaluations per step (see the module docstring).
EVALS_PER_STEP: dict[str, int] = {"em": 1, "ei": 1, "ddpm": 1, "euler": 1, "heun": 2, "rk4": 4}


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------
def _n_points(n_points: Any) -> int:
    rule = "an integer >= 2 (N grid points, N - 1 steps)"
    return as_int(n_points, "n_points", 2, MAX_STEPS, limit="MAX_STEPS", rule=rule)


def _horizon_eps(horizon: Any, eps: Any) -> tuple[float, float]:
    T = _real(horizon, "horizon")
    e = _real(eps, "eps")
    if T <= 0:
        raise ValueError(f"horizon must be positive (got {horizon!r})")
    if not 0 <= e < T:
        raise ValueError(f"eps must satisfy 0 <= eps < horizon (got eps={eps!r}, horizon={horizon!r})")
    return T, e


#: float64's smallest normal number: the larger of beta_min and beta_max must reach it (see :func:`_model`).
_BETA_TINY = float(np.finfo(np.float64).tiny)


def _model(beta_min: Any, beta_max: Any, horizon: Any, eps: Any) -> tuple[float, float, float, float]:
    """Validate the model parameters: beta > 0 on [0, horizon], horizon > 0, 0 <= eps < horizon, and
    max(beta_min, beta_max) a normal float64 (at least 2.2e-308)."""
    bmin = _real(beta_min, "beta_min")
    bmax = _real(beta_max, "beta_max")
    T, e = _horizon_eps(horizon, eps)
    with np.errstate(over="ignore"):  # beta(horizon) = inf is positive (the run itself then names the overflow)
        ends = np.asarray(K.beta_kernel()(np.array([0.0, T]), bmin, bmax)[0], dtype=np.float64)
    if not np.all(ends > 0):  # confirmed in exact arithmetic: float64 cancels at beta(horizon) below ~1e-17 beta_min
        exact = [K.beta_exact(t, bmin, bmax) for t in (0.0, T)]
        ends = np.array([float(v) for v in exact])
    if not np.all(ends > 0):
        raise ValueError(
            "beta_min, beta_max: beta(t) = beta_min + (beta_max - beta_min) t must be positive on "
            f"[0, horizon] (got beta(0) = {ends[0]:g}, beta(horizon) = {ends[-1]:g})"
        )
    if max(bmin, bmax) < _BETA_TINY:
        # the closed forms (the continuous solutions, the exponential integrator) scale by 1/max(beta_min, beta_max):
        # inf for a subnormal beta, and inf * 0 = NaN with a RuntimeWarning; no run is defined there
        raise ValueError(
            f"beta_min, beta_max: the larger of beta_min and beta_max must be at least {_BETA_TINY!r} (float64's "
            f"smallest normal number; the closed forms divide by it) (got beta_min={bmin!r}, beta_max={bmax!r})")
    return bmin, bmax, T, e


def _scheme(scheme: Any) -> str:
    return check_choice(scheme, "scheme", SCHEMES)


# ----------------------------------------------------------------------------------------------
# grid and counting
# ----------------------------------------------------------------------------------------------
def nfe(scheme: str, n_points: int) -> int:
    """Denoiser evaluations of ``scheme`` on ``n_points`` grid points: ``NFE = e (N - 1)``.

    Parameters
    ----------
    scheme : str
        One of :data:`SCHEMES`; ``e = EVALS_PER_STEP[scheme]`` (1, or 2 for heun, 4 for rk4).
    n_points : int >= 2
        Grid points N (N - 1 steps).

    Returns
    -------
    int
        A scalar count.

    Raises
    ------
    ValueError
        Unknown ``scheme``, or ``n_points`` not an integer in [2, MAX_STEPS] (a non-integer type, a float
        included, is an ArgumentTypeError).

    Source: the module docstring (NFE); the schemes of Pierret & Galerne (ICML 2025, arXiv 2405.14250).
    """
    return EVALS_PER_STEP[_scheme(scheme)] * (_n_points(n_points) - 1)


def n_points_for_nfe(scheme: str, n_evals: int) -> int:
    """Largest grid size with at most ``n_evals`` denoiser evaluations: ``N = n_evals // e + 1``.

    Parameters
    ----------
    scheme : str
        One of :data:`SCHEMES`.
    n_evals : int >= 1
        Budget of denoiser evaluations; ``nfe(scheme, N) == n_evals`` when ``e`` divides it.

    Returns
    -------
    int
        N in [2, MAX_STEPS], a scalar (the grid sizes :func:`nfe`, :func:`reverse_grid` and the spectra take).

    Raises
    ------
    ValueError
        Unknown ``scheme``, ``n_evals`` buys not even one step, or it buys more than MAX_STEPS grid points
        (``symsched._validate.MAX_STEPS``, the most :func:`nfe` and the spectra take).
    ArgumentTypeError
        ``n_evals`` not an integer (a float such as 10.0 too); a TypeError and a ValueError.

    Source: the inverse of :func:`nfe` (module docstring, NFE).
    """
    _scheme(scheme)
    n_evals = as_int(n_evals, "n_evals", 1)
    steps = int(n_evals) // EVALS_PER_STEP[scheme]
    if steps < 1:
        raise ValueError(
            f"n_evals={n_evals} is less than one {scheme} step ({EVALS_PER_STEP[scheme]} evaluations per step)"
        )
    if steps + 1 > MAX_STEPS:  # (nfe, reverse_grid and the spectra refuse such a grid: say so here, not later)
        raise ValueError(
            f"n_evals={n_evals} buys {steps + 1} grid points of scheme {scheme!r}, more than MAX_STEPS = {MAX_STEPS} "
            f"(symsched._validate.MAX_STEPS): at most {MAX_STEPS * EVALS_PER_STEP[scheme] - 1} evaluations"
        )
    return steps + 1


@numpy_error_defaults
def reverse_grid(n_points: int, *, horizon: float = 1.0, eps: float = 0.0) -> tuple[Array, float]:
    """Forward times of the reverse grid: ``tau_k = horizon - t_k``, ``t_k = (horizon - eps) k / (N - 1)``.

    Parameters
    ----------
    n_points : int >= 2
    horizon : float > 0
    eps : float in [0, horizon)

    Returns
    -------
    tau : ndarray, shape (N,)
        Decreasing from ``horizon`` to ``eps`` (the last point is set to ``eps`` exactly, its
        mathematical value, so rounding never makes it negative).
    Delta : float
        ``t_1 - t_0``.

    Raises
    ------
    ValueError
        ``n_points`` not an integer in [2, MAX_STEPS] (ArgumentTypeError for a non-integer type), ``horizon``
        not positive and finite, ``eps`` not in [0, horizon), or grid steps ``(horizon - eps) / (N - 1)`` too
        small for float64 to keep the N times distinct (``eps`` within a few ulps of ``horizon``).

    Source: the uniform reverse grid of Pierret & Galerne (ICML 2025, arXiv 2405.14250) (module docstring).
    """
    N = _n_points(n_points)
    T, e = _horizon_eps(horizon, eps)
    k = np.arange(N, dtype=np.float64)
    with np.errstate(over="ignore"):
        t = (T - e) * k / (N - 1)
    if not np.isfinite(t[-1]):  # (T - e) k overflows near the top of float64: divide first (within 1 ulp)
        t = k / (N - 1) * (T - e)
    tau = T - t
    tau[-1] = e
    same = np.flatnonzero(np.diff(tau) >= 0)
    if same.size:  # (audit of 5 December: repeated times made a step of zero, blamed on n_points being too small)
        k = int(same[0])
        raise ValueError(f"eps={e!r}, horizon={T!r}, n_points={N}: the grid step (horizon - eps) / (n_points - 1) = "
                         f"{(T - e) / (N - 1):.3g} is too small for float64 to keep the grid times apart (tau_{k} and "
                         f"tau_{k + 1} both round to {float(tau[k])!r}); move eps away from horizon or use fewer "
                         "n_points")
    return tau, float(t[1] - t[0])


def _checked_grid(scheme: str, n_points: int, bmin: float, bmax: float, T: float, e: float) -> tuple[Array, float]:
    """:func:`reverse_grid`, after checking that ``scheme`` is defined on it (:func:`_check_domain`)."""
    tau, delta = reverse_grid(n_points, horizon=T, eps=e)
    _check_domain(scheme, tau, delta, bmin, bmax, n_points, T, e)
    return tau, delta


def _domain_violation(scheme: str, tau: Array, delta: float, bmin: float, bmax: float
                      ) -> Optional[tuple[Any, int, float]]:
    """(radicand, step, its value) of the first radicand of the update that is not positive on the grid, or None."""
    exprs = K.domain_exprs(scheme)
    if not exprs:
        return None
    with np.errstate(over="ignore", invalid="ignore"):  # a radicand beyond float64 is +inf > 0: defined
        vals = K.domain_kernel(scheme)(tau[:-1], tau[1:], delta, bmin, bmax)
    for expr, val in zip(exprs, vals):
        val = np.broadcast_to(np.asarray(val, dtype=np.float64), tau[:-1].shape)
        if not np.all(val > 0):
            k = int(np.argmin(np.where(np.isnan(val), -np.inf, val)))
            return expr, k, float(val[k])
    return None


def _check_domain(scheme: str, tau: Array, delta: float, bmin: float, bmax: float, n_points: int, T: float,
                  e: float) -> None:
    """Every radicand of the update must be positive at every step (DDPM: 2 Delta beta_k < 1); ValueError naming
    n_points where more points help, else the model's arguments (no grid of MAX_STEPS points is fine either)."""
    bad = _domain_violation(scheme, tau, delta, bmin, bmax)
    if bad is None:
        return
    expr, k, val = bad
    _check_beta_representable(scheme, float(tau[k]), bmin, bmax)
    if n_points < MAX_STEPS:
        tau_max, delta_max = reverse_grid(MAX_STEPS, horizon=T, eps=e)
        bad_max = _domain_violation(scheme, tau_max, delta_max, bmin, bmax)
        if bad_max is not None:
            (expr, k, val), tau, n_points = bad_max, tau_max, MAX_STEPS
    if n_points == MAX_STEPS:  # (break-test of 7 December: horizon=1e308 asked for "more grid points")
        raise UndefinedUpdate(f"{_steep_culprit(bmin, bmax, T)}: scheme {scheme!r} needs {K.describe(expr)} > 0 at "
                              f"every step, and even {MAX_STEPS} grid points (MAX_STEPS) leave it {val:.6g} at step "
                              f"k={k} (tau_k={tau[k]:.6g}) with beta_min={bmin:g}, beta_max={bmax:g}, horizon={T:g}: a "
                              "smaller beta_max or a shorter horizon")
    raise UndefinedUpdate(
        f"n_points={n_points} is too small for scheme {scheme!r}: its update needs "
        f"{K.describe(expr)} > 0 at every step, but it is {val:.6g} at step k={k} "
        f"(tau_k={tau[k]:.6g}); use more grid points"
    )


def _check_beta_representable(scheme: str, tau: float, bmin: float, bmax: float) -> None:
    """ValueError when the update's rate ``beta(tau) > 0`` rounds to 0 or below in float64 (``beta_min + (beta_max -
    beta_min) tau`` cancels where ``beta(tau)`` is below ~1e-16 ``beta_min``): more grid points would not help."""
    with np.errstate(over="ignore", invalid="ignore"):  # beta = inf (horizon 1e308) is positive: not this fault
        if float(K.beta_kernel()(np.array([tau]), bmin, bmax)[0][0]) > 0:
            return
    exact = K.beta_exact(tau, bmin, bmax)
    if exact > 0:
        raise ValueError(
            f"beta_min, beta_max: scheme {scheme!r} needs beta(tau) > 0 at every step, and beta(tau={tau:.6g}) = "
            f"{float(exact):.3g} is positive but rounds to 0 in float64 (beta_min + (beta_max - beta_min) tau "
            f"cancels below ~1e-16 beta_min; got beta_min={bmin!r}, beta_max={bmax!r}): raise the smaller rate")


# ----------------------------------------------------------------------------------------------
# engine
# ----------------------------------------------------------------------------------------------
def _unique(S: Array) -> tuple[Array, NDArray[np.intp]]:
    u, inv = np.unique(S.ravel(), return_inverse=True)
    return u, inv.reshape(-1)


def _propagate(u: Array, scheme: str, tau: Array, delta: float, bmin: float, bmax: float) -> tuple[Array, Array]:
    """(G, R) with P = G v_init + R: G = prod_k g_k^2, R = variance injected by the steps.

    The scheme's steps run through the state-space engine (:mod:`symsched.engine.recursion`) like every
    sampler's: level coefficients for all N - 1 steps at once, then one sweep over the modes ``u``.
    """
    from .engine.program import program_from_kernel
    from .engine.recursion import scalar_affine

    prog = program_from_kernel(K.step_kernels(scheme), [tau[:-1], tau[1:], delta, bmin, bmax], name=scheme)
    return scalar_affine(prog, u)


def _pole_mask(scheme: str, u: Array, tau: Array) -> NDArray[np.bool_]:
    """Modes whose step divides by lambda = 0: S = 0 at a score evaluation at forward time 0."""
    if K.uses_end_point(scheme) and tau[-1] == 0.0:
        return u == 0.0
    return np.zeros(u.shape, dtype=bool)


def _scheme_variances(
    u: Array, scheme: str, n_points: int, bmin: float, bmax: float, T: float, e: float, inits: Sequence[str]
) -> dict[str, Array]:
    """Output variance of each start in ``inits`` for the unique modes ``u``."""
    tau, delta = _checked_grid(scheme, n_points, bmin, bmax, T, e)
    pole = _pole_mask(scheme, u, tau)
    ok = ~pole
    uu = u[ok] if pole.any() else u
    G, R = _propagate(uu, scheme, tau, delta, bmin, bmax)
    out: dict[str, Array] = {}
    for init in inits:
        with np.errstate(all="ignore"):  # the marginal's exponent may be -inf (lambda(T) = 1): its limit
            v0 = 1.0 if init == "white" else np.asarray(K.marginal_kernel()(uu, T, bmin, bmax)[0], dtype=np.float64)
            P = G * v0 + R
        if not np.all(np.isfinite(P)):
            P = _recompute_beyond_float64(P, uu, scheme, n_points, bmin, bmax, T, e, init)
        P = _recompute_faint_steps(P, uu, scheme, n_points, bmin, bmax, T, e, init)
        if pole.any():
            full = np.full(u.shape, np.inf)
            full[ok] = P
            P = full
        out[init] = P
    return out


class UndefinedUpdate(ValueError):
    """The scheme's update is undefined on this grid: one of its radicands (DDPM: ``1 - 2 Delta beta(tau_k)``) is not
    positive at some step (a ValueError; :func:`error_table` reports such a cell as undefined). Its message names
    ``n_points`` where more grid points help, else the model's arguments (``beta_max``, ``horizon``) when even
    ``MAX_STEPS`` points do not."""


class BeyondFloat64(ValueError):
    """The true output variance of a mode lies beyond the float64 range: the scheme diverges for it (a ValueError;
    :func:`error_table` reports such a cell as ``inf``). Raised by the SDE scheme functions of this module, its
    message naming the mode and the arguments to blame; it carries no fields beyond the message."""


#: the model's default beta(t) and horizon (every function here): an argument above its default is what steepens or
#: lengthens beta(t) when the recursion leaves float64
_DEFAULTS = {"beta_min": 0.05, "beta_max": 10.0, "horizon": 1.0}


def _steep_culprit(bmin: float, bmax: float, T: float) -> str:
    """The arguments to blame when ``e^(2 int beta)`` leaves float64 (a steep beta(t) or a long horizon): those set
    above their default (``"beta_max"`` for ``beta_max=1e300``), else ``"beta_max, horizon"``; the one wording of
    every such message (the command line turns each name into its option)."""
    raised = [name for name, v in (("beta_min", bmin), ("beta_max", bmax), ("horizon", T)) if v > _DEFAULTS[name]]
    return ", ".join(raised) or "beta_max, horizon"


def _recompute_beyond_float64(P: Array, u: Array, scheme: str, n_points: int, bmin: float, bmax: float, T: float,
                              e: float, init: str) -> Array:
    """``P`` with the modes whose float64 recursion overflowed (inf, or NaN from inf * 0: e^{2B} beyond float64 for a
    long horizon or a steep beta) recomputed with mpmath; ValueError where the true variance itself is beyond
    float64 (the scheme diverges) or too many modes need it (never a silent NaN or inf)."""
    bad = ~np.isfinite(P)
    where = f"scheme {scheme!r} with beta_min={bmin:g}, beta_max={bmax:g}, horizon={T:g}, eps={e:g}"
    if int(bad.sum()) > EXACT_FALLBACK_MODES:
        with np.errstate(over="ignore"):  # B = int_0^T beta: e^{2B} beyond float64 is a steep beta or a long horizon
            steep = bmin * T + 0.5 * (bmax - bmin) * T * T > 0.5 * math.log(np.finfo(np.float64).max)
        culprit = _steep_culprit(bmin, bmax, T) if steep else "spectrum"
        raise ValueError(f"{culprit}: the float64 recursion of {where} leaves the float64 range for "
                         f"{int(bad.sum())} modes (more than {EXACT_FALLBACK_MODES} to recompute exactly); "
                         "symsched.sde.output_spectrum_mp evaluates them" + (
                             "; a smaller beta_max or a shorter horizon keeps e^(2 int beta) in float64" if steep
                             else ""))
    exact = _scheme_mp(u[bad], scheme, n_points, bmin, bmax, T, e, init, 30, float64=True)
    with np.errstate(over="ignore"):
        vals = np.array([float(x) for x in exact], dtype=np.float64)
    if not np.all(np.isfinite(vals)):
        i = int(np.flatnonzero(~np.isfinite(vals))[0])
        s_bad = float(u[bad][i])
        # the last score evaluation at time eps divides by lambda(eps) = S e^{-2B(eps)} + 1 - e^{-2B(eps)} ~ S + 2
        # beta_min eps: next to the pole of S = 0 at time 0, P ~ (1/lambda)^p (eps = 1e-300 was blamed on the horizon)
        lam_eps = s_bad + 2.0 * bmin * e
        if lam_eps < 1e-100 and K.uses_end_point(scheme):
            fix = ("eps > 0 keeps it finite" if e == 0.0 else
                   f"a larger eps keeps it finite (lambda(eps) ~ S + 2 beta_min eps = {lam_eps:.3g} here)")
            raise BeyondFloat64(f"{'spectrum' if e == 0.0 else 'eps, spectrum'}: the output variance of the mode "
                                f"S={s_bad:.6g} exceeds the float64 range for {where}: the sampler's last step "
                                f"evaluates the score at time eps = {e:g}, next to the pole of S = 0 at time 0 (where "
                                f"P is inf), and this mode is too close to it; {fix}")
        raise BeyondFloat64(f"{_steep_culprit(bmin, bmax, T)}: the output variance of the mode S={s_bad:.6g} exceeds "
                            f"the float64 range for {where}: the scheme diverges for this mode over this horizon and "
                            "beta(t) (its true variance "
                            "lies beyond float64, computed with mpmath; a shorter horizon or a smaller beta_max "
                            "reduce it)")
    out = P.copy()
    out[bad] = vals
    return out


#: a step's noise ``Delta beta`` below this: the gains' float64 rounding can outweigh the noise a faint mode keeps
#: (measured against mpmath, N = 100: faint modes lose up to 2e-11 relative at Delta beta = 1e-13, 1e-9 at 1e-15,
#: 2e-7 at 1e-21 and every digit at 1e-40; from 1e-10 up, below 2e-12)
FAINT_STEP = 1e-14
#: the schemes whose gain or noise cancels there (EM and DDPM: 1 + D b - 2 D b / lambda; EI: its expm1 terms);
#: the ODE schemes keep ~1e-14 at every Delta beta
FAINT_SCHEMES = ("em", "ddpm", "ei")


def _recompute_faint_steps(P: Array, u: Array, scheme: str, n_points: int, bmin: float, bmax: float, T: float,
                           e: float, init: str) -> Array:
    """``P`` with the faint modes of a faint-step run recomputed with mpmath (a ValueError if too many).

    A gain ``1 + Delta beta - 2 Delta beta / lambda`` (EM; DDPM alike) is a difference of terms near ``2 Delta
    beta / lambda`` where ``lambda ~ 2 Delta beta``, i.e. for modes ``S`` below a few ``Delta beta``; its float64
    rounding, a few 1e-16 of those terms, then enters ``P`` as ``g^2 v ~ 1e-32``, while the mode's ``P`` is about the
    noise ``2 Delta beta``. Small above ``FAINT_STEP`` (see there); below it (beta_max = 1e-40 gave 2.2e-33 for the
    true 2.0e-42 at S = 0, audit of 5 December) the modes with ``S < 200 Delta beta_max`` of the schemes
    ``FAINT_SCHEMES`` are recomputed exactly."""
    if scheme not in FAINT_SCHEMES:
        return P
    with np.errstate(over="ignore", under="ignore"):
        b_hi = max(bmin, bmin + (bmax - bmin) * T)
        step = (T - e) / (n_points - 1) * b_hi  # the largest Delta beta (it may underflow to 0: every step faint)
        faint = u <= 200.0 * step
    if not step < FAINT_STEP or not faint.any():
        return P
    where = f"scheme {scheme!r} with beta_min={bmin:g}, beta_max={bmax:g}, horizon={T:g}, n_points={n_points}"
    if int(faint.sum()) > EXACT_FALLBACK_MODES:
        raise ValueError(f"beta_max, horizon: every step of {where} injects noise Delta beta = {step:.3g} < "
                         f"{FAINT_STEP:g}, where float64 rounding outweighs the variance of modes below {200 * step:.3g};"
                         f" {int(faint.sum())} distinct such modes are more than {EXACT_FALLBACK_MODES} to recompute "
                         "exactly (symsched.sde.output_spectrum_mp evaluates them)")
    exact = _scheme_mp(u[faint], scheme, n_points, bmin, bmax, T, e, init, 30)  # (arguments checked by the caller)
    out = P.copy()
    out[faint] = [float(x) for x in exact]
    return out


# ----------------------------------------------------------------------------------------------
# public
# ----------------------------------------------------------------------------------------------
@numpy_error_defaults
def output_spectrum(
    spectrum: ArrayLike,
    scheme: Literal["em", "ei", "ddpm", "euler", "heun", "rk4"],
    n_points: int,
    *,
    beta_min: float = 0.05,
    beta_max: float = 10.0,
    horizon: float = 1.0,
    eps: float = 0.0,
    init: Literal["white", "exact"] = "white",
) -> Array:
    r"""Output variance of a continuous-time scheme, per mode: ``P = v_{N-1}``, ``v_{k+1} = g_k(S)^2 v_k + n_k``.

    Parameters
    ----------
    spectrum : array_like, any shape
        Mode variances ``S >= 0``.
    scheme : {"em", "ei", "ddpm", "euler", "heun", "rk4"}
        Euler–Maruyama, exponential integrator, DDPM discretisation (reverse SDE); Euler, Heun,
        RK4 (probability-flow ODE) — the steps of issue #5, see :mod:`symsched.symbolic.sde`.
    n_points : int >= 2
        Grid points N (at most ``MAX_STEPS`` = 10,000) of ``t_k = (horizon - eps) k / (N - 1)`` (N - 1 steps; ``nfe(scheme, N)``
        denoiser evaluations).
    beta_min, beta_max : float
        Linear rate ``beta(t) = beta_min + (beta_max - beta_min) t``, positive on ``[0, horizon]``.
    horizon : float > 0
        Final forward time T (the sampler starts there).
    eps : float in [0, horizon)
        Truncation time: sampling stops at forward time ``eps``.
    init : {"white", "exact"}
        Start variance 1 or ``lambda(horizon)``.

    Returns
    -------
    ndarray, shape of ``spectrum``
        Generated variances ``P(S)``; ``+inf`` for ``S = 0`` modes of ``heun``/``rk4`` at ``eps = 0``
        (see the module docstring).

    Raises
    ------
    ValueError
        On bad input, or when the scheme is undefined on this grid (``ddpm`` needs
        ``2 Delta beta(tau_k) < 1`` at every step).

    Source: Pierret & Galerne (ICML 2025, arXiv 2405.14250); the steps of :mod:`symsched.symbolic.sde`.
    """
    S = as_spectrum(spectrum)
    scheme = _scheme(scheme)
    N = _n_points(n_points)
    bmin, bmax, T, e = _model(beta_min, beta_max, horizon, eps)
    check_choice(init, "init", INITS)
    u, inv = _unique(S)
    P = _scheme_variances(u, scheme, N, bmin, bmax, T, e, (init,))[init]
    return P[inv].reshape(S.shape)


@numpy_error_defaults
def continuous_output_spectrum(
    spectrum: ArrayLike,
    kind: Literal["sde", "ode"] = "sde",
    *,
    beta_min: float = 0.05,
    beta_max: float = 10.0,
    horizon: float = 1.0,
    eps: float = 0.0,
    init: Literal["white", "exact"] = "white",
) -> Array:
    r"""Exact output variance of the continuous reverse SDE or PF-ODE, stopped at forward time ``eps``.

    ``sde``: ``P = lambda(eps) + (v_init - lambda(T)) e^{-2(B(T) - B(eps))} lambda(eps)^2 / lambda(T)^2``;
    ``ode``: ``P = v_init lambda(eps) / lambda(T)`` (both derived with SymPy's dsolve in
    :mod:`symsched.symbolic.sde.continuous`).

    Parameters
    ----------
    spectrum : array_like, any shape
        Mode variances ``S >= 0``.
    kind : {"sde", "ode"}
        The reverse SDE or the probability-flow ODE.
    beta_min, beta_max, horizon, eps
        As in :func:`output_spectrum`.
    init : {"white", "exact"}
        ``v_init = 1`` or ``lambda(horizon)`` (then ``P = lambda(eps)`` for both kinds).

    Returns
    -------
    ndarray, shape of ``spectrum``
        Finite for every ``S >= 0``, also at ``eps = 0`` (``P = 0`` for ``S = 0``, ``eps = 0``).

    Raises
    ------
    ValueError
        A bad spectrum (empty, not finite, negative); unknown ``kind`` or ``init``; ``beta(t)`` not positive on
        ``[0, horizon]``; ``horizon`` not positive; ``eps`` not in [0, horizon).

    Source: Pierret & Galerne (ICML 2025, arXiv 2405.14250): exact solutions of the reverse SDE and PF-ODE
    for Gaussian data.
    """
    S = as_spectrum(spectrum)
    check_choice(kind, "kind", KINDS)
    bmin, bmax, T, e = _model(beta_min, beta_max, horizon, eps)
    check_choice(init, "init", INITS)
    u, inv = _unique(S)
    P = _continuous(u, kind, bmin, bmax, T, e)[init]
    return P[inv].reshape(S.shape)


def _continuous(u: Array, kind: str, bmin: float, bmax: float, T: float, e: float) -> dict[str, Array]:
    with np.errstate(over="ignore"):  # an exponent beyond float64 is -inf, e^{-inf} = 0: the right limit
        white, exact = K.continuous_kernel(kind)(u, e, T, bmin, bmax)
    if not (np.all(np.isfinite(white)) and np.all(np.isfinite(exact))):  # never silently: P is finite for S >= 0
        raise ValueError(f"beta_min, beta_max, horizon: the continuous {kind} solution is not representable in "
                         f"float64 for beta_min={bmin:g}, beta_max={bmax:g}, horizon={T:g}, eps={e:g}")
    return {
        "white": np.array(np.broadcast_to(white, u.shape), dtype=np.float64),
        "exact": np.array(np.broadcast_to(exact, u.shape), dtype=np.float64),
    }


# ----------------------------------------------------------------------------------------------
# mpmath reference
# ----------------------------------------------------------------------------------------------
@numpy_error_defaults
def output_spectrum_mp(
    spectrum: ArrayLike, scheme: str, n_points: int, *, beta_min: float = 0.05, beta_max: float = 10.0,
    horizon: float = 1.0, eps: float = 0.0, init: str = "white", dps: int = 50,
) -> NDArray[np.object_]:
    """:func:`output_spectrum` at ``dps`` digits with the canonical (unrewritten) symbolic step.

    The grid is built in mpmath from the float parameters (exact real grid). Object array of mpf;
    modes hitting the pole (S = 0 at forward time 0) are ``mpf('+inf')``. Loops in Python: use a
    handful of modes. Tiny inputs (``beta_max = 1e-300``, ``S = 1e-300``) are worked with that many more
    digits, and every result is confirmed by a run at twice the working precision.

    Same recursion ``v_{k+1} = g_k(S)^2 v_k + n_k``; returns an object array of the shape of ``spectrum``.
    ValueError as :func:`output_spectrum` (also where the scheme is undefined on the grid: ``ddpm`` needs
    ``2 Delta beta(tau_k) < 1``), for ``dps`` not in [1, MAX_DPS], and beyond MAX_MP_EVALUATIONS distinct modes x
    grid points (each distinct mode is evaluated once).
    Source: Pierret & Galerne (ICML 2025, arXiv 2405.14250).
    """
    dps = as_dps(dps)
    S = as_spectrum(spectrum)
    scheme = _scheme(scheme)
    N = _n_points(n_points)
    bmin, bmax, T, e = _model(beta_min, beta_max, horizon, eps)
    check_choice(init, "init", INITS)
    _checked_grid(scheme, N, bmin, bmax, T, e)  # as output_spectrum: a ValueError, never mpc values
    u, inv = mp_modes(S, N, "grid points")
    return _scheme_mp(u, scheme, N, bmin, bmax, T, e, init, dps)[inv].reshape(S.shape)


def _scheme_mp(S: Array, scheme: str, N: int, bmin: float, bmax: float, T: float, e: float, init: str, dps: int,
               float64: bool = False) -> NDArray[np.object_]:
    """:func:`output_spectrum_mp` of checked arguments (``float64``: see :func:`_confirmed`)."""
    run = partial(_sde_mp_run, S, scheme, N, T, e, bmin, bmax, init)
    return _confirmed(run, dps, _mp_extra_digits(S, bmin, bmax, T, e, N), float64=float64)


def _mp_extra_digits(S: Array, bmin: float, bmax: float, T: float, e: float, N: Optional[int] = None) -> int:
    """Digits the canonical forms lose at a fixed precision: ``1 - e^{-2B}`` and the like cancel to 0 when the
    exponent is tiny (beta = 1e-300 gave inf for a finite P; horizon = 1e-300 too, audit of 5 December: it was not
    counted). As many extra digits as the smallest decade among the inputs and the exponents ``2B`` they make: beta's
    smallest value on [0, T] times a grid step (``(T - eps)/(N - 1)``, or ``T - eps`` for the closed forms) and
    times ``eps`` (sums of logarithms: the products may underflow in float64)."""
    with np.errstate(over="ignore"):
        b_T = bmin + (bmax - bmin) * T
    b_low = min(bmin, b_T) if b_T > 0 else bmin
    span = (T - e) / (N - 1) if N else T - e
    logs = [math.log10(x) for x in (bmin, bmax, e, T, span, *S.ravel()) if 0 < x < 1]
    logs += [math.log10(b_low) + math.log10(x) for x in (span, e) if x > 0]
    low = min(logs, default=0.0)
    return int(-math.floor(low)) if low < 0 else 0


def _confirmed(run: Callable[[int], NDArray[np.object_]], dps: int, extra: int,
               float64: bool = False) -> NDArray[np.object_]:
    """``run(work)`` at ``dps + extra + 10`` digits, confirmed by a run at twice that agreeing to ``dps`` digits
    (doubling until two agree, up to MAX_DPS); rounded to ``dps`` digits. A NaN (a division by a quantity that
    cancelled to 0 at that precision) never agrees; one left at MAX_DPS is a ValueError, never returned.
    ``float64``: for the float64 fallback, two values both beyond the float64 range also agree (all it needs to
    know: a diverging mode's digits, e.g. e^(1e306) with beta_max = 1e308, took five runs to MAX_DPS of 3 s each
    and `symsched sde-table --beta-max 1e308` ran for more than 25 minutes, audit of 5 December)."""
    import mpmath

    top = mpmath.mpf(np.finfo(np.float64).max)

    def agree(a: Any, b: Any) -> bool:
        return _mp_agree(a, b, dps) or (float64 and abs(a) > top and abs(b) > top)

    work = min(dps + extra + 10, MAX_DPS)
    out = run(work)
    while work < MAX_DPS:
        more = run(min(2 * work, MAX_DPS))
        if all(agree(a, b) for a, b in zip(out.ravel(), more.ravel())):
            break
        out, work = more, min(2 * work, MAX_DPS)
    if any(mpmath.isnan(v) for v in out.ravel()):
        raise ValueError(f"dps: the canonical form still divides by a quantity that cancels to 0 at MAX_DPS = "
                         f"{MAX_DPS} digits for these inputs (they are too small to evaluate; the float64 function "
                         "uses the cancellation-free form)")
    with mpmath.workdps(dps):
        return np.vectorize(lambda v: +v, otypes=[object])(out) if out.size else out


def _mp_agree(a: Any, b: Any, dps: int) -> bool:
    """a and b equal to ``dps`` digits (both infinite alike counts as equal)."""
    import mpmath

    if mpmath.isinf(a) or mpmath.isinf(b):
        return a == b
    return abs(a - b) <= mpmath.mpf(10) ** (-dps) * max(abs(a), abs(b))


def _sde_mp_run(S: Array, scheme: str, N: int, T: float, e: float, bmin: float, bmax: float, init: str,
                work: int) -> NDArray[np.object_]:
    """The mpmath recursion of :func:`output_spectrum_mp` at ``work`` digits (a pole, S = 0 at time 0: inf)."""
    import mpmath

    step = K.step_mp(scheme)
    lam = K.marginal_mp()
    out = np.empty(S.shape, dtype=object)
    with mpmath.workdps(work):
        Tm, em, b0, b1 = (mpmath.mpf(x) for x in (T, e, bmin, bmax))
        t = [(Tm - em) * k / (N - 1) for k in range(N)]
        tau = [Tm - tk for tk in t]
        tau[-1] = em
        delta = t[1] - t[0]
        for idx, s in np.ndenumerate(S):
            sm = mpmath.mpf(float(s))
            v = mpmath.mpf(1) if init == "white" else lam(sm, Tm, b0, b1)
            try:
                for k in range(N - 1):
                    g, n = step(sm, tau[k], tau[k + 1], delta, b0, b1)
                    v = g**2 * v + n
            except ZeroDivisionError:  # the pole (S = 0 at time 0) is inf; anything else cancelled at this precision
                v = mpmath.inf if sm == 0 and em == 0 and K.uses_end_point(scheme) else mpmath.nan
            out[idx] = v
    return out


@numpy_error_defaults
def continuous_output_spectrum_mp(
    spectrum: ArrayLike, kind: str = "sde", *, beta_min: float = 0.05, beta_max: float = 10.0,
    horizon: float = 1.0, eps: float = 0.0, init: str = "white", dps: int = 50,
) -> NDArray[np.object_]:
    """:func:`continuous_output_spectrum` at ``dps`` digits (canonical closed form; object array of mpf).

    ``ode``: ``P = v_init lambda(eps) / lambda(T)``; ``sde``: ``P = lambda(eps) + (v_init - lambda(T))
    e^{-2(B(T) - B(eps))} lambda(eps)^2 / lambda(T)^2``. Object array of the shape of ``spectrum``.
    ValueError as :func:`continuous_output_spectrum`, for ``dps`` not in [1, MAX_DPS], and beyond
    MAX_MP_EVALUATIONS distinct modes.
    Source: Pierret & Galerne (ICML 2025, arXiv 2405.14250).
    """
    dps = as_dps(dps)
    S = as_spectrum(spectrum)
    check_choice(kind, "kind", KINDS)
    bmin, bmax, T, e = _model(beta_min, beta_max, horizon, eps)
    check_choice(init, "init", INITS)
    u, inv = mp_modes(S, 1, "closed-form evaluation")
    run = partial(_continuous_mp_run, u, kind, T, e, bmin, bmax, init)
    return _confirmed(run, dps, _mp_extra_digits(u, bmin, bmax, T, e))[inv].reshape(S.shape)


def _continuous_mp_run(S: Array, kind: str, T: float, e: float, bmin: float, bmax: float, init: str,
                       work: int) -> NDArray[np.object_]:
    """The closed form of :func:`continuous_output_spectrum_mp` at ``work`` digits (NaN where it divided by a
    quantity that cancelled to 0: horizon = 1e-60 raised a bare ZeroDivisionError, audit of 5 December)."""
    import mpmath

    f = K.continuous_mp(kind)
    lam = K.marginal_mp()
    out = np.empty(S.shape, dtype=object)
    with mpmath.workdps(work):
        Tm, em, b0, b1 = (mpmath.mpf(x) for x in (T, e, bmin, bmax))
        for idx, s in np.ndenumerate(S):
            sm = mpmath.mpf(float(s))
            try:
                v0 = mpmath.mpf(1) if init == "white" else lam(sm, Tm, b0, b1)
                out[idx] = f(sm, em, Tm, b0, b1, v0)
            except ZeroDivisionError:
                out[idx] = mpmath.nan
    return out


# ----------------------------------------------------------------------------------------------
# error table
# ----------------------------------------------------------------------------------------------
@dataclass
class ErrorTable:
    """W2 errors ``W2(N(0, P), N(0, S))`` of every scheme, size, eps and start.

    ``cells[(scheme, size, eps, init)]`` is the W2 error (``inf`` when some mode diverges: at the pole of S = 0, or
    beyond float64 with the reason in ``diverged``; ``nan`` when the scheme is undefined on that grid);
    ``points[(scheme, size)]`` the grid size used and ``evals[(scheme, size)]`` its NFE;
    ``continuous[(kind, eps, init)]`` the exact solutions' errors.
    Source: :func:`error_table` (docs/model.md §6; the schemes of this module).
    """

    sizes: tuple[int, ...]
    eps: tuple[float, ...]
    count: str
    beta_min: float
    beta_max: float
    horizon: float
    n_modes: int
    cells: dict[tuple[str, int, float, str], float] = field(default_factory=dict)
    points: dict[tuple[str, int], int] = field(default_factory=dict)
    evals: dict[tuple[str, int], int] = field(default_factory=dict)
    undefined: dict[tuple[str, int, float], str] = field(default_factory=dict)
    diverged: dict[tuple[str, int, float, str], str] = field(default_factory=dict)
    continuous: dict[tuple[str, float, str], float] = field(default_factory=dict)

    def to_markdown(self) -> str:
        """The table as Markdown (10 significant digits), preceded by notes on what N means."""
        return table_markdown(self)

    def to_latex(self, digits: int = 7) -> str:
        """The table as a booktabs LaTeX ``table`` float (needs ``\\usepackage{booktabs}``), ``digits`` significant
        digits per cell (an integer in [1, 17]; ValueError/TypeError otherwise)."""
        return table_latex(self, digits)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _w2(P: Array, S: Array) -> float:
    from .api import w2_distance

    if not np.all(np.isfinite(P)):
        return float("inf")
    return w2_distance(P, S)


def _items(values: Any, name: str, what: str) -> list[Any]:
    """The entries of a sequence argument (a list, tuple or 1-D array; a string or a scalar is a TypeError naming
    it), non-empty and at most MAX_ENTRIES of them (:func:`_unique_items` refuses repeats)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)) or np.ndim(values) != 1:
        raise ArgumentTypeError(f"{name} must be a sequence of {what} (got {values!r})")
    out = check_entries(values, name)  # at most MAX_ENTRIES: each is a column or row of runs
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


def _unique_items(out: Sequence[Any], name: str) -> tuple[Any, ...]:
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a value (got {list(out)!r}): a table has one column per value")
    return tuple(out)


def _sizes(values: Iterable[Any], name: str) -> tuple[int, ...]:
    out = []
    for v in _items(values, name, "positive integers"):
        try:
            out.append(as_int(v, name, 1))
        except ValueError as exc:
            raise type(exc)(f"{name} must be positive integers (got {_show(v)})") from None
    return _unique_items(out, name)


@numpy_error_defaults
def error_table(
    spectrum: ArrayLike,
    sizes: Sequence[int] = (50, 250, 500, 1000),
    eps_values: Sequence[float] = (0.0, 1e-5, 1e-4, 1e-3),
    *,
    count: Literal["points", "nfe"] = "points",
    schemes: Sequence[str] = SCHEMES,
    beta_min: float = 0.05,
    beta_max: float = 10.0,
    horizon: float = 1.0,
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> ErrorTable:
    """W2 errors of ``schemes`` x ``sizes`` x ``eps_values`` x both starts, plus the continuous solutions.

    ``count="points"``: every scheme runs on ``N = size`` grid points. ``count="nfe"``: every scheme
    gets ``N = n_points_for_nfe(scheme, size)`` points, i.e. at most ``size`` denoiser evaluations
    (exactly ``size`` when divisible by its evaluations per step). The modes are de-duplicated once;
    both starts share one pass (``P = G v_init + R``). ``progress`` wraps the task iterator (e.g. tqdm).
    W2 uses :func:`symsched.w2_distance`; a cell is ``inf`` when some mode diverges and ``nan`` when
    the scheme is undefined on the grid (reason in ``undefined``).

    Each cell is ``W2 = sqrt(sum_modes (sqrt P - sqrt S)^2)`` (docs/model.md §6). ``spectrum``: any shape (its
    modes); ``sizes`` and ``eps_values``: sequences of numbers; returns an :class:`ErrorTable` keyed by them.
    Raises ValueError for a bad spectrum, unknown ``count`` or scheme, empty ``sizes``/``eps_values`` or more than
    MAX_ENTRIES (100) of them (``symsched._validate.MAX_ENTRIES``; each is a row or column of runs), a size
    that is not a positive integer or gives a grid outside [2, MAX_STEPS] points, an ``eps`` not in
    [0, horizon), or ``beta(t)`` not positive on ``[0, horizon]``; ArgumentTypeError for a ``progress`` that is
    neither None nor callable. Source: Pierret & Galerne (ICML 2025,
    arXiv 2405.14250).
    """
    S = as_spectrum(spectrum)
    check_choice(count, "count", COUNTS)
    sizes_t = _sizes(sizes, "sizes")
    eps_t = _unique_items([_real(e, "eps_values") + 0.0 for e in _items(eps_values, "eps_values", "numbers")],
                          "eps_values")  # + 0.0: -0.0 is 0.0 (one row, printed "0")
    schemes_t = _unique_items([_scheme(s) for s in _items(schemes, "schemes", "scheme names")], "schemes")
    if progress is not None and not callable(progress):  # progress=1 failed late: "'int' object is not callable"
        raise ArgumentTypeError(f"progress must be None or a callable wrapping the task iterable, e.g. tqdm "
                                f"(got {progress!r})")
    for e in eps_t:
        try:
            _model(beta_min, beta_max, horizon, e)
        except ValueError as exc:  # ("eps must satisfy ...": error_table's argument is eps_values)
            if not str(exc).startswith("eps "):
                raise
            raise ValueError(f"eps_values: {exc}") from None
    bmin, bmax, T, _ = _model(beta_min, beta_max, horizon, eps_t[0])
    table = ErrorTable(sizes_t, eps_t, count, bmin, bmax, T, int(S.size))
    for scheme in schemes_t:
        for size in sizes_t:
            try:  # (both name their own argument, n_evals or n_points: the caller gave sizes)
                N = size if count == "points" else n_points_for_nfe(scheme, size)
                _n_points(N)
            except ValueError as exc:
                what = "grid points" if count == "points" else f"evaluations, {scheme} on N grid points"
                raise ValueError(f"sizes: the size {size} ({what}) is refused: {exc}") from None
            table.points[(scheme, size)] = N
            table.evals[(scheme, size)] = nfe(scheme, N)
    u, inv = _unique(S)
    flat = S.ravel()
    for kind in KINDS:
        for e in eps_t:
            res = _continuous(u, kind, bmin, bmax, T, e)
            for init in INITS:
                table.continuous[(kind, e, init)] = _w2(res[init][inv], flat)
    tasks = [(s, n, e) for s in schemes_t for n in sizes_t for e in eps_t]
    for scheme, size, e in progress(tasks) if progress is not None else tasks:
        N = table.points[(scheme, size)]
        try:
            res = _scheme_variances(u, scheme, N, bmin, bmax, T, e, INITS)
        except BeyondFloat64:  # some mode diverges for some start: each start on its own, inf where it diverges
            res = {}
            for init in INITS:
                try:
                    res[init] = _scheme_variances(u, scheme, N, bmin, bmax, T, e, (init,))[init]
                except BeyondFloat64 as exc:
                    res[init] = np.full(u.shape, np.inf)
                    table.diverged[(scheme, size, e, init)] = str(exc)
        except UndefinedUpdate as exc:
            table.undefined[(scheme, size, e)] = str(exc)
            for init in INITS:
                table.cells[(scheme, size, e, init)] = float("nan")
            continue
        for init in INITS:
            table.cells[(scheme, size, e, init)] = _w2(res[init][inv], flat)
    return table


# -- formatting of error tables (Markdown and booktabs LaTeX) ------------------------------------
SCHEME_LABELS = {"em": "EM", "ei": "EI", "ddpm": "DDPM", "euler": "Euler", "heun": "Heun", "rk4": "RK4"}


def _md_number(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.10g}"


def _tex_number(x: float, digits: int) -> str:
    """A cell as LaTeX: :func:`symsched._tex.tex_number` (the one number formatter of every LaTeX table)."""
    from ._tex import tex_number

    return tex_number(x, digits)


def _tex_math(x: float) -> str:
    """A number inside the caption's math (``:g``, 6 digits), as the cells print it: ``1e+07`` -> ``1\\times10^{7}``."""
    return _tex_number(x, 6).strip("$")


def _eps_digits(e: float) -> int:
    """The fewest significant digits (at least 6, as ``:g``) that give ``e`` back: the table refuses repeated eps
    values, so no two rows may print alike (1e-5 and 1.000000001e-5 both read 1e-05)."""
    return next((d for d in range(6, 17) if float(f"{e:.{d}g}") == e), 17)


def _eps_text(e: float) -> str:
    return f"{e:.{_eps_digits(e)}g}"


def _tex_eps(e: float) -> str:
    if e == 0:
        return "$0$"
    exp = math.log10(e)
    if exp == int(exp) and float(f"1e{int(exp)}") == e:
        return f"$10^{{{int(exp)}}}$"
    return _tex_number(e, _eps_digits(e))  # 3e-05 as $3\times10^{-5}$, as the cells


def _continuous_kind(scheme: str) -> str:
    return "sde" if scheme in SDE_SCHEMES else "ode"


def _size_label(table: Any, size: int) -> str:
    return f"N = {size}" if table.count == "points" else f"NFE = {size}"


def _notes(table: Any) -> list[str]:
    notes = [
        f"W2(N(0,P), N(0,S)) over {table.n_modes} modes; beta(t) = {table.beta_min:g} + "
        f"({table.beta_max:g} - {table.beta_min:g}) t on [0, {table.horizon:g}]; start exact = N(0, lambda(T)), white = N(0, 1).",
        "Continuous: exact reverse SDE (EM, EI, DDPM rows) or probability-flow ODE (Euler, Heun, RK4 rows).",
    ]
    evals = ", ".join(f"{s} {EVALS_PER_STEP[s]}" for s in EVALS_PER_STEP)
    if table.count == "points":
        notes.append(f"Sizes count grid points N (N-1 steps) for every scheme; NFE = (N-1) x evaluations per step ({evals}).")
    else:
        notes.append(f"Sizes count denoiser evaluations (NFE); evaluations per step: {evals}. Grid points used:")
        for size in table.sizes:
            parts = []
            for s in SCHEME_LABELS:
                if (s, size) in table.points:
                    mark = "" if table.evals[(s, size)] == size else f" (NFE {table.evals[(s, size)]})"
                    parts.append(f"{s} {table.points[(s, size)]}{mark}")
            notes.append(f"  NFE = {size}: " + ", ".join(parts))
    if any(math.isinf(v) for k, v in table.cells.items() if k not in table.diverged):
        notes.append("inf: heun/rk4 at eps = 0 evaluate the score at lambda(0) = S; S = 0 modes diverge (P = +inf).")
    for (s, size, e, init), why in table.diverged.items():
        notes.append(f"inf: {s}, size {size}, eps {_eps_text(e)}, {init} start: {why}")
    if table.undefined:
        notes.append("n/a: the scheme is undefined on that grid (DDPM needs 2 Delta beta < 1).")
    return notes


def table_markdown(table: Any) -> str:
    """The table as Markdown (10 significant digits)."""
    head = ["scheme", "eps", "continuous exact", "continuous white"]
    for size in table.sizes:
        head += [f"{_size_label(table, size)} exact", f"{_size_label(table, size)} white"]
    rows = []
    schemes = [s for s in SCHEME_LABELS if any(k[0] == s for k in table.cells)]
    for s in schemes:
        kind = _continuous_kind(s)
        for e in table.eps:
            row = [s, _eps_text(e), _md_number(table.continuous[(kind, e, "exact")]),
                   _md_number(table.continuous[(kind, e, "white")])]
            for size in table.sizes:
                row += [_md_number(table.cells[(s, size, e, "exact")]), _md_number(table.cells[(s, size, e, "white")])]
            rows.append(row)
    return "\n".join(f"> {n}" for n in _notes(table)) + "\n\n" + md_table(head, rows)


def _tex_points(table: Any) -> str:
    """For a table counted in NFE, the grid points each scheme used per column (as the Markdown notes list them)."""
    if table.count == "points":
        return ""
    cols = []
    for size in table.sizes:
        used = [f"{SCHEME_LABELS[s]} {table.points[(s, size)]}"
                + ("" if table.evals[(s, size)] == size else f" (NFE ${table.evals[(s, size)]}$)")
                for s in SCHEME_LABELS if (s, size) in table.points]
        cols.append(f"NFE ${size}$: " + ", ".join(used))
    return " (grid points $N$ used: " + "; ".join(cols) + ")"


def _tex_cell_notes(table: Any) -> str:
    """Why a cell is $\\infty$ or n/a (the Markdown notes), as caption sentences."""
    from ._tex import tex_text

    notes = []
    if any(math.isinf(v) for k, v in table.cells.items() if k not in table.diverged):
        notes.append("$\\infty$: Heun and RK4 at $\\varepsilon = 0$ evaluate the score at $\\lambda(0) = S$, where "
                     "modes with $S = 0$ diverge.")
    for (s, size, e, init), why in table.diverged.items():
        eps = _tex_eps(e).strip("$")
        notes.append(f"$\\infty$: {SCHEME_LABELS[s]}, size ${size}$, $\\varepsilon = {eps}$, {init} start: "
                     f"{tex_text(why)}.")
    if table.undefined:
        notes.append("n/a: the scheme is undefined on that grid (DDPM needs $2\\Delta\\beta < 1$).")
    return "".join(" " + n for n in notes)


def table_latex(table: Any, digits: int = 7) -> str:
    """The table as a booktabs LaTeX ``table`` float (needs \\usepackage{booktabs}); ``digits`` significant digits
    per cell, an integer in [1, 17] (the CLI's --digits)."""
    digits = as_int(digits, "digits", 1, 17)
    ncols = 4 + 2 * len(table.sizes)
    what = "grid points $N$" if table.count == "points" else "denoiser evaluations (NFE)"
    b0, b1 = _tex_math(table.beta_min), _tex_math(table.beta_max)
    lines = [
        "% Generated by `symsched sde-table`; needs \\usepackage{booktabs} and \\usepackage{graphicx}.",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{$W_2$ error of the continuous-time VP schemes ({table.n_modes} modes; "
        f"$\\beta(t) = {b0} + ({b1} - {b0})\\,t$ "
        f"on $[0, {_tex_math(table.horizon)}]$; "
        f"sizes count {what}{_tex_points(table)}; "
        "start exact $= \\mathcal N(0, \\lambda(T))$ or white $= \\mathcal N(0, 1)$; "
        "continuous: exact reverse SDE for EM, EI, DDPM, probability-flow ODE for Euler, Heun, RK4)."
        + _tex_cell_notes(table) + "}",
        "\\label{tab:sde-w2}",
        FIT_TO_LINE,  # (the default four sizes make 12 columns: shrunk to the text width, as symsched's other tables)
        "\\begin{tabular}{ll" + "r" * (ncols - 2) + "}",
        "\\toprule",
        " & & \\multicolumn{2}{c}{Continuous}"
        + "".join(
            f" & \\multicolumn{{2}}{{c}}{{{'$N = ' if table.count == 'points' else 'NFE $= '}{size}$}}"
            for size in table.sizes
        )
        + " \\\\",
        " ".join(f"\\cmidrule(lr){{{c}-{c + 1}}}" for c in range(3, ncols, 2)),
        "Scheme & $\\varepsilon$ & exact & white" + " & exact & white" * len(table.sizes) + " \\\\",
        "\\midrule",
    ]
    schemes = [s for s in SCHEME_LABELS if any(k[0] == s for k in table.cells)]
    for i, s in enumerate(schemes):
        kind = _continuous_kind(s)
        for j, e in enumerate(table.eps):
            cells = [SCHEME_LABELS[s] if j == 0 else "", _tex_eps(e)]
            cells += [_tex_number(table.continuous[(kind, e, init)], digits) for init in ("exact", "white")]
            for size in table.sizes:
                cells += [_tex_number(table.cells[(s, size, e, init)], digits) for init in ("exact", "white")]
            lines.append(" & ".join(cells) + " \\\\")
        if i < len(schemes) - 1:
            lines.append("\\midrule")
    lines += ["\\bottomrule", "\\end{tabular}%", "}", "\\end{table}"]
    return "\n".join(lines) + "\n"


