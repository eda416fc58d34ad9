r"""Schedule design: the K noise levels whose output spectrum is closest to the data's (MATH.md §8).

:func:`optimize_schedule` minimises a divergence of MATH.md §6 between the generated Gaussian
``N(0, P(S; schedule))`` and the data ``N(0, S)`` over the K levels of a sampler, with

* **exact gradients**: value and ``dJ/d(log-SNR)`` from :func:`symsched.divergence_and_grad`
  (symbolic per-step derivatives, one adjoint sweep), chained analytically through the
  parametrisation below; SciPy's L-BFGS-B does the descent. No finite differences.
* **a parametrisation that keeps the levels strictly increasing in (0, 1)**: in log-SNR
  ``l = log(ab/(1-ab))`` the levels and the free end(s) of an interval ``[a, b]`` are the partial
  sums of ``m`` positive gaps ``d = delta + (b - a - m delta) softmax(y)``, ``y`` unconstrained.
  A fixed endpoint is an end of the interval; a free one has a slack gap between it and the
  interval's end. The chain rule is ``dJ/dy = c p (u - <p, u>)`` with ``p = softmax(y)``,
  ``c = b - a - m delta`` and ``u_j = sum_{levels i after gap j} dJ/dl_i`` (a reverse cumulative sum).
* **several deterministic starts**: equal gaps, the standard schedules of
  :data:`symsched.schedules.STANDARD_SCHEDULES` (projected onto the constraints) and ``restarts``
  random gap vectors drawn from ``numpy.random.default_rng(seed)``; short L-BFGS-B runs from each,
  then the best ones are polished to convergence.
* **grid restriction** (``grid=alphas_cumprod``): the continuous optimum within the grid's range
  is rounded to K distinct grid timesteps, then improved by a coordinate pattern search over the
  timestep indices on exact objective values. The search also starts from the best standard
  schedule restricted to the grid that meets the endpoint constraints, so the result is never worse
  than any of them (with free endpoints: than every standard schedule on the grid).

Endpoints. ``endpoints=None`` (default) fixes the first (noisiest) level at the noisiest level of
the training grid (``grid``, or the 1000-step linear DDPM grid, ``alpha_bar = 4.04e-5``) and
leaves the last level free: a pre-trained denoiser has only seen levels it was trained on, and
every sampler used in practice starts there. ``endpoints=(None, None)`` frees both. In the
Gaussian model the free optimum often *starts from white noise at a low noise level* (a large
first ``alpha_bar``): the exact denoiser is a linear Wiener filter, so starting from ``N(0, I)``
at level ``ab`` only mis-scales each mode by its start variance ``1`` versus
``ab S + 1 - ab`` (MATH.md §7.4, ``P -> S / lambda``), and the spectrum-wide optimum trades that
mismatch against the discretisation error of covering a shorter log-SNR range with K steps. A
trained network fed white noise at a low noise level sees an input unlike anything in training
(no ``sqrt(ab) x0`` signal component) and does not produce data: only the Gaussian model rewards
such a start, which is why it is not the default.

VE samplers (``"euler"``, ``"heun"``) are optimised in the same log-SNR coordinates through
``sigma = exp(-l / 2)`` with :func:`symsched.divergence_and_grad_ve` (``dJ/dl = -sigma/2 dJ/dsigma``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

from . import schedules as _sch
from ._validate import (
    MAX_ITER, MAX_STEPS, as_bool, as_int, as_real, as_real_array, as_spectrum, check_choice, check_eta,
    check_same_shape,
)
from .api import (
    DIVERGENCES,
    INITS,
    VE_SAMPLERS,
    VP_SAMPLERS,
    divergence_and_grad,
    divergence_and_grad_ve,
    kl_divergence,
    output_spectrum,
    output_spectrum_ve,
    w2_distance,
)

__all__ = [
    "OptimizeResult",
    "optimize_schedule",
    "schedule_output",
    "schedule_metrics",
    "ComparisonTable",
    "compare_schedules",
    "default_grid",
    "SAMPLERS",
    "LOG_SNR_RANGE",
]

Array = NDArray[np.float64]

#: Every sampler :func:`optimize_schedule` accepts (VP ones take ``alpha_bar``, VE ones ``sigmas``).
SAMPLERS: tuple[str, ...] = VP_SAMPLERS + VE_SAMPLERS
#: Default log-SNR interval for free endpoints (widened to contain every standard schedule and any
#: fixed endpoint). At ``l = 20`` float64 still resolves ``1 - alpha_bar = 2e-9`` to ~1e-7.
LOG_SNR_RANGE: tuple[float, float] = (-20.0, 20.0)
_HARD_RANGE = 36.0  # |l| beyond this maps alpha_bar to 0 or 1 in float64
_MIN_GAP = 1e-5  # smallest log-SNR gap between adjacent levels (keeps alpha_bar distinct in float64)
_SCREEN_ITER = 60  # L-BFGS-B iterations of the screening runs
_N_POLISH = 2  # screened runs polished to convergence


def default_grid() -> Array:
    """The 1000-step linear DDPM training grid ``alphas_cumprod`` (Ho et al. 2020), training order, shape (1000,)."""
    return _sch.training_grid("linear")


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _check_grid(grid: ArrayLike, steps: int) -> Array:
    g = as_real_array(grid, "grid")
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"grid must be a non-empty 1-D array alphas_cumprod[t] (got shape {g.shape})")
    if not np.all(np.isfinite(g)) or np.any(g <= 0) or np.any(g >= 1):
        raise ValueError("grid must hold finite levels in the open interval (0, 1)")
    if g.size > 1 and np.any(np.diff(g) >= 0):
        i = int(np.argmax(np.diff(g) >= 0))
        raise ValueError(
            "grid must be strictly decreasing in the timestep t (training order, grid[t] = alphas_cumprod[t]): "
            f"grid[{i}]={g[i]!r} <= grid[{i + 1}]={g[i + 1]!r}"
        )
    if g.size < steps:
        raise ValueError(f"grid has {g.size} levels, fewer than steps={steps}: cannot choose {steps} distinct levels")
    return g


def _check_level(value: Any, name: str) -> float:
    try:
        v = as_real(value, name)
    except ValueError as exc:
        raise type(exc)(f"{name} must be a level in the open interval (0, 1) or None (got {value!r})") from None
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be a level in the open interval (0, 1) or None (got {value!r})")
    return v


def _check_endpoints(endpoints: Any, steps: int, grid: Optional[Array]) -> tuple[Optional[float], Optional[float]]:
    if endpoints is None:
        g = grid if grid is not None else default_grid()
        return float(g[-1]), None
    if isinstance(endpoints, (str, bytes)) or not hasattr(endpoints, "__len__") or len(endpoints) != 2:
        raise ValueError(
            f"endpoints must be None or a pair (first, last), each a level in (0, 1) or None (got {endpoints!r})"
        )
    first = None if endpoints[0] is None else _check_level(endpoints[0], "endpoints[0] (first level)")
    last = None if endpoints[1] is None else _check_level(endpoints[1], "endpoints[1] (last level)")
    if first is not None and last is not None:
        if steps == 1 and first != last:
            raise ValueError(
                f"endpoints: with steps=1 the first and last level are the same level (got {first!r} and {last!r})"
            )
        if steps > 1 and not first < last:
            raise ValueError(
                f"endpoints must satisfy first < last (the first level is the noisiest; got {first!r}, {last!r})"
            )
    return first, last


def _check_int(value: Any, name: str, minimum: int, maximum: int = MAX_ITER) -> int:
    return as_int(value, name, minimum, maximum, limit="MAX_STEPS" if maximum == MAX_STEPS else "MAX_ITER",
                  rule=f"an integer >= {minimum}")


_log_snr = _sch.alpha_bar_to_log_snr
_alpha_bar = _sch.log_snr_to_alpha_bar


# ---------------------------------------------------------------------------------------------
# objective: exact value and gradient with respect to the levels' log-SNR
# ---------------------------------------------------------------------------------------------


class _Objective:
    """J(l) and dJ/dl for log-SNR levels ``l`` (increasing), via divergence_and_grad[_ve]."""

    def __init__(
        self, S: Array, weights: Optional[Array], *, sampler: str, eta: float, variance: str, divergence: str,
        init: str,
    ) -> None:
        flat = S.ravel()
        w = np.ones(flat.size) if weights is None else weights.ravel()
        u, inv = np.unique(flat, return_inverse=True)
        # modes with equal S are one mode with summed weight: exactly what divergence_and_grad does
        self.S = u
        self.w = np.bincount(inv.reshape(-1), weights=w, minlength=u.size)
        self.sampler, self.eta, self.variance, self.divergence, self.init = sampler, eta, variance, divergence, init
        self.ve = sampler in VE_SAMPLERS
        self.n_evaluations = 0

    def __call__(self, l: Array) -> tuple[float, Array]:
        self.n_evaluations += 1
        if self.ve:
            sig = np.exp(-0.5 * l)
            J, gs = divergence_and_grad_ve(
                self.S, sig, divergence=self.divergence, sampler=self.sampler, init=self.init, weights=self.w
            )
            return float(J), np.asarray(gs, dtype=np.float64) * (-0.5 * sig)
        J, g = divergence_and_grad(
            self.S, _alpha_bar(l), divergence=self.divergence, sampler=self.sampler, eta=self.eta,
            variance=self.variance, init=self.init, weights=self.w, wrt="log_snr",
        )
        return float(J), np.asarray(g, dtype=np.float64)

    def value(self, l: Array) -> float:
        return self(l)[0]

    def value_ab(self, ab: Array) -> float:
        """Value at exact alpha_bar levels (grid levels are used as given)."""
        self.n_evaluations += 1
        if self.ve:
            J, _ = divergence_and_grad_ve(
                self.S, _sch.alpha_bar_to_sigmas(ab), divergence=self.divergence, sampler=self.sampler,
                init=self.init, weights=self.w,
            )
        else:
            J, _ = divergence_and_grad(
                self.S, ab, divergence=self.divergence, sampler=self.sampler, eta=self.eta,
                variance=self.variance, init=self.init, weights=self.w,
            )
        return float(J)


# ---------------------------------------------------------------------------------------------
# parametrisation: softmax gaps in log-SNR
# ---------------------------------------------------------------------------------------------


class _Gaps:
    r"""Levels l_1 < ... < l_K in [a, b] as partial sums of m gaps d = delta + c softmax(y).

    Points ``[a, free levels..., b]`` (a fixed endpoint *is* a or b, a free one sits one gap inside):
    m = K + 1 - (#fixed endpoints) gaps, ``c = b - a - m delta``.
    """

    def __init__(self, K: int, first: Optional[float], last: Optional[float], lo: float, hi: float) -> None:
        self.K = K
        self.first_fixed = first is not None
        self.last_fixed = last is not None
        self.a = float(first) if first is not None else lo
        self.b = float(last) if last is not None else hi
        self.m = K + 1 - int(self.first_fixed) - int(self.last_fixed)
        span = self.b - self.a
        self.delta = min(_MIN_GAP, span / (4.0 * max(self.m, 1)))
        self.c = span - self.m * self.delta

    @property
    def n_free(self) -> int:
        """Number of effective degrees of freedom (a single gap is fully determined)."""
        return max(self.m - 1, 0)

    def levels(self, y: Array) -> Array:
        z = np.exp(y - y.max())
        p = z / z.sum()
        q = self.a + np.cumsum(self.delta + self.c * p)
        if self.first_fixed:
            l = np.concatenate(([self.a], q[: self.K - 1]))
        else:
            l = q[: self.K].copy()
        if self.last_fixed:
            l[-1] = self.b
        return l

    def pullback(self, y: Array, g: Array) -> Array:
        """dJ/dy from dJ/dl (analytic chain rule through cumsum and softmax)."""
        z = np.exp(y - y.max())
        p = z / z.sum()
        gg = np.array(g, dtype=np.float64)
        if self.last_fixed:
            gg[-1] = 0.0
        G = np.cumsum(gg[::-1])[::-1]  # G_i = sum_{i' >= i} g_i'
        u = np.zeros(self.m)
        if self.first_fixed:
            u[: self.K - 1] = G[1:]
        else:
            u[: self.K] = G
        return self.c * p * (u - float(p @ u))

    def from_levels(self, l: Array) -> Array:
        """A y whose levels approximate ``l`` (projected onto [a, b] and the endpoint constraints)."""
        l = np.sort(np.asarray(l, dtype=np.float64))
        inner = l[1 if self.first_fixed else 0 : self.K - 1 if self.last_fixed else self.K]
        pts = np.concatenate(([self.a], np.clip(inner, self.a, self.b), [self.b]))
        gaps = np.maximum(np.diff(pts) - self.delta, 1e-3 * self.c / self.m)
        return np.log(gaps / gaps.sum())


# ---------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else str(x)


@dataclass
class OptimizeResult:
    """Outcome of :func:`optimize_schedule`.

    Attributes
    ----------
    alpha_bar : ndarray, shape (K,)
        Optimised levels, strictly increasing in (0, 1), noisiest first (grid levels with ``grid``).
    value : float
        Objective ``J`` at ``alpha_bar`` (as :func:`symsched.divergence_and_grad`: KL, reverse KL,
        or W2 *squared*; weighted when ``weights`` were given).
    log_snr : ndarray, shape (K,)
        ``log(alpha_bar / (1 - alpha_bar))``, increasing.
    sigmas : ndarray, shape (K,)
        VE levels ``sqrt((1 - alpha_bar) / alpha_bar)``, decreasing.
    timesteps : ndarray of int, shape (K,) or None
        Training timesteps ``t`` with ``grid[t] = alpha_bar`` (descending), when ``grid`` was given.
    baselines : dict[str, float]
        Objective of every standard schedule (same sampler, divergence, K; restricted to the grid
        when given); schedules that cannot be built (e.g. levels colliding on the grid) are absent.
    baseline_schedules : dict[str, ndarray]
        Their levels.
    kl, w2 : float
        Unweighted ``KL(data || generated)`` and ``W2`` (not squared) of the result.
    n_evaluations : int
        Objective evaluations (value + gradient, or value only in the grid search).
    success : bool
        Whether the best local run converged (L-BFGS-B's criterion) or the grid search finished.
    message : str
    steps, sampler, eta, variance, divergence, init : problem settings.
    endpoints : (float or None, float or None)
        The endpoints used (defaults resolved; snapped to the grid when ``grid`` was given).
    starts : dict[str, float]
        Objective after the screening run from each start that was screened (diagnostics).
    """

    alpha_bar: Array
    value: float
    log_snr: Array
    sigmas: Array
    timesteps: Optional[NDArray[np.int64]]
    baselines: dict[str, float]
    baseline_schedules: dict[str, Array]
    kl: float
    w2: float
    n_evaluations: int
    success: bool
    message: str
    steps: int
    sampler: str
    eta: float
    variance: str
    divergence: str
    init: str
    endpoints: tuple[Optional[float], Optional[float]]
    starts: dict[str, float] = field(default_factory=dict)

    @property
    def best_baseline(self) -> tuple[str, float]:
        """(name, value) of the best standard schedule, or ("", inf) if none could be built."""
        if not self.baselines:
            return "", math.inf
        name = min(self.baselines, key=lambda k: self.baselines[k])
        return name, self.baselines[name]

    def _rows(self) -> list[tuple[str, float, float]]:
        rows = [("optimised", self.value, 1.0)]
        for name, v in sorted(self.baselines.items(), key=lambda kv: kv[1]):
            ratio = v / self.value if self.value > 0 else (math.inf if v > 0 else 1.0)
            rows.append((name, v, ratio))
        return rows

    def summary(self) -> str:
        """Plain-text table: the optimised value and every baseline with its ratio to it."""
        what = {"kl": "KL(data||gen)", "kl-reverse": "KL(gen||data)", "w2": "W2^2"}[self.divergence]
        head = (
            f"symsched schedule: {self.sampler}"
            + (f" eta={self.eta:g}" if self.sampler == "ddim" else "")
            + f", K={self.steps}, {what}, init={self.init}; {self.n_evaluations} evaluations; {self.message}"
        )
        width = max([len("schedule")] + [len(r[0]) for r in self._rows()])
        lines = [head, f"{'schedule':<{width}}  {'value':>14}  {'ratio':>10}"]
        for name, v, r in self._rows():
            lines.append(f"{name:<{width}}  {_fmt(v):>14}  {_fmt(r):>10}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"OptimizeResult(steps={self.steps}, sampler={self.sampler!r}, divergence={self.divergence!r}, "
            f"value={self.value:.6g}, best_baseline={self.best_baseline}, success={self.success})"
        )

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{n}</td><td>{_fmt(v)}</td><td>{_fmt(r)}</td></tr>" for n, v, r in self._rows()
        )
        return (
            f"<p>{self.sampler}, K={self.steps}, divergence {self.divergence}: value {_fmt(self.value)}</p>"
            f"<table><tr><th>schedule</th><th>value</th><th>ratio</th></tr>{rows}</table>"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists and floats) of the schedule, its metrics and the baselines."""
        # betas of the K-level process in training order (t = 0 least noisy), as diffusers' trained_betas
        betas = _sch.alpha_bar_to_betas(self.alpha_bar[::-1])
        return {
            "steps": self.steps,
            "sampler": self.sampler,
            "eta": self.eta,
            "variance": self.variance,
            "divergence": self.divergence,
            "init": self.init,
            "endpoints": list(self.endpoints),
            "alpha_bar": self.alpha_bar.tolist(),
            "log_snr": self.log_snr.tolist(),
            "sigmas": self.sigmas.tolist(),
            "betas": betas.tolist(),
            "betas_order": "training (t = 0 least noisy first; diffusers trained_betas for a K-step grid)",
            "timesteps": None if self.timesteps is None else [int(t) for t in self.timesteps],
            "value": self.value,
            "kl": self.kl,
            "w2": self.w2,
            "baselines": dict(self.baselines),
            "n_evaluations": self.n_evaluations,
            "success": self.success,
            "message": self.message,
        }


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def schedule_output(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    sampler: str = "ddim",
    eta: float = 0.0,
    variance: str = "posterior",
    init: str = "white",
) -> Array:
    """Output PSD P(S) of any sampler of :data:`SAMPLERS` for levels ``alpha_bar`` (VE ones via sigma = sqrt((1-ab)/ab)).

    Shapes: ``spectrum`` any shape, ``alpha_bar`` (K,); returns the shape of ``spectrum``.
    """
    check_choice(sampler, "sampler", SAMPLERS)
    if sampler in VE_SAMPLERS:
        return output_spectrum_ve(spectrum, _sch.alpha_bar_to_sigmas(alpha_bar), sampler=sampler, init=init)
    return output_spectrum(spectrum, alpha_bar, sampler=sampler, eta=eta, variance=variance, init=init)


def schedule_metrics(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    sampler: str = "ddim",
    eta: float = 0.0,
    variance: str = "posterior",
    init: str = "white",
) -> dict[str, float]:
    """``{"kl": KL(data||gen), "kl_reverse": KL(gen||data), "w2": W2}`` of a schedule, unweighted.

    ``W2 = sqrt(sum (sqrt P - sqrt S)^2)`` (not squared); shapes as in :func:`schedule_output`.
    """
    S = as_spectrum(spectrum)
    P = schedule_output(S, alpha_bar, sampler=sampler, eta=eta, variance=variance, init=init)
    return {"kl": kl_divergence(S, P), "kl_reverse": kl_divergence(P, S), "w2": w2_distance(P, S)}


# ---------------------------------------------------------------------------------------------
# the optimiser
# ---------------------------------------------------------------------------------------------


def _standard(steps: int, grid: Optional[Array]) -> dict[str, Array]:
    out: dict[str, Array] = {}
    for name in _sch.STANDARD_SCHEDULES:
        try:
            out[name] = _sch.standard_schedule(name, steps, grid=grid)
        except ValueError:
            continue  # e.g. two levels snap to one grid timestep, or steps > grid length
    return out


def _lbfgs(
    obj: _Objective, par: _Gaps, y0: Array, scale: float, maxiter: int
) -> tuple[Array, float, bool, str]:
    def fun(y: Array) -> tuple[float, Array]:
        J, g = obj(par.levels(y))
        return J / scale, par.pullback(y, g) / scale

    res = minimize(
        fun, y0, jac=True, method="L-BFGS-B",
        options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-11, "maxcor": 20, "maxls": 40},
    )
    ok, msg = bool(res.success), str(res.message)
    if not ok and float(np.max(np.abs(res.jac), initial=0.0)) <= 1e-6 * abs(float(res.fun)):
        # the line search stalls at machine precision at a stationary point: that is convergence
        ok, msg = True, f"converged (projected gradient at round-off; L-BFGS-B: {msg})"
    return np.asarray(res.x, dtype=np.float64), float(res.fun) * scale, ok, msg


def _round_to_grid(l: Array, grid_l_inc: Array, fixed: dict[int, int]) -> NDArray[np.int64]:
    """Nearest distinct indices j (increasing) into the increasing grid log-SNR; fixed {k: j} kept."""
    T, K = grid_l_inc.size, l.size
    pos = np.clip(np.searchsorted(grid_l_inc, l), 1, T - 1)
    j = np.where(np.abs(l - grid_l_inc[pos - 1]) <= np.abs(grid_l_inc[pos] - l), pos - 1, pos).astype(np.int64)
    for k, v in fixed.items():
        j[k] = v
    lo_bound = np.arange(K)  # j_k >= k
    hi_bound = T - K + np.arange(K)  # j_k <= T - K + k
    j = np.clip(j, lo_bound, hi_bound)
    for k in range(1, K):  # forward: strictly increasing
        if j[k] <= j[k - 1] and k not in fixed:
            j[k] = j[k - 1] + 1
    for k in range(K - 2, -1, -1):  # backward: repair pushes past a fixed/upper neighbour
        if j[k] >= j[k + 1] and k not in fixed:
            j[k] = j[k + 1] - 1
    if np.any(np.diff(j) <= 0) or j[0] < 0 or j[-1] > T - 1:
        raise ValueError("endpoints: the fixed grid levels leave no room for the free levels on the grid")
    return j


def _pattern_search(
    j: NDArray[np.int64], free: Sequence[int], value: Callable[[NDArray[np.int64]], float], T: int,
    best: float, max_sweeps: int = 100,
) -> tuple[NDArray[np.int64], float, int]:
    """Coordinate pattern search over grid indices: moves of +-1, 2, 4, ... per level while improving."""
    j = j.copy()
    K = j.size
    sweeps = 0
    improved = True
    while improved and sweeps < max_sweeps:
        improved = False
        sweeps += 1
        for k in free:
            lo = j[k - 1] + 1 if k > 0 else 0
            hi = j[k + 1] - 1 if k < K - 1 else T - 1
            cands = set()
            s = 1
            while s <= hi - lo:
                for c in (j[k] + s, j[k] - s):
                    if lo <= c <= hi:
                        cands.add(int(c))
                s *= 2
            if not cands:
                continue
            trial = sorted(cands)
            vals = []
            for c in trial:
                jj = j.copy()
                jj[k] = c
                vals.append(value(jj))
            i = int(np.argmin(vals))
            if vals[i] < best:
                best = vals[i]
                j[k] = trial[i]
                improved = True
    return j, best, sweeps


def optimize_schedule(
    spectrum: ArrayLike,
    steps: int,
    *,
    sampler: Literal["ddim", "ddpm", "euler", "heun"] = "ddim",
    eta: float = 0.0,
    variance: Literal["posterior", "beta"] = "posterior",
    divergence: Literal["kl", "kl-reverse", "w2"] = "kl",
    init: Literal["white", "exact"] = "white",
    endpoints: Optional[tuple[Optional[float], Optional[float]]] = None,
    grid: Optional[ArrayLike] = None,
    weights: Optional[ArrayLike] = None,
    seed: int = 0,
    restarts: int = 4,
    standard_starts: bool = True,
    maxiter: int = 2000,
    progress: bool = False,
) -> OptimizeResult:
    r"""Levels ``alpha_bar`` (K, noisiest first) minimising J = D(N(0,S) , N(0,P(S; alpha_bar))) for a sampler.

    ``J`` is the divergence of :func:`symsched.divergence_and_grad` (``"kl"`` = KL(data||gen),
    ``"kl-reverse"``, ``"w2"`` = W2 squared), with per-mode ``weights``. See the module docstring
    for the parametrisation, the starts, the grid search and the meaning of the endpoints.

    Parameters
    ----------
    spectrum : array_like, any shape
        Mode variances ``S >= 0`` (zero modes contribute 0; tiny ones make KL large, as they should).
    steps : int
        K, the number of levels (sampling steps; a final step to the clean level follows), at most
        ``MAX_STEPS`` = 10,000 (:mod:`symsched._validate`).
    sampler : {"ddim", "ddpm", "euler", "heun"}
    eta : float in [0, 1]
        DDIM stochasticity (``sampler="ddim"`` only).
    variance : {"posterior", "beta"}
        DDPM injected variance (``sampler="ddpm"`` only).
    divergence : {"kl", "kl-reverse", "w2"}
    init : {"white", "exact"}
        Start from white noise (what samplers do) or from the exact noisy marginal.
    endpoints : None or (first, last)
        Each a level in (0, 1) (fixed) or None (free). ``None``: first level fixed at the noisiest
        level of ``grid`` (or of the 1000-step linear DDPM grid), last free. With ``grid`` a fixed
        level is moved to the nearest grid level (in log-SNR).
    grid : array_like, shape (T,), optional
        Training-order ``alphas_cumprod`` (strictly decreasing in t): choose K of its levels.
    weights : array_like, shape of ``spectrum``, optional
        Non-negative per-mode weights of the objective.
    seed : int
        Seed of the random starts (the result is deterministic for a given seed).
    restarts : int
        Number of random starts (besides equal gaps and the standard schedules).
    standard_starts : bool
        Also start from equal gaps and the standard schedules (default). ``False`` leaves only the
        ``restarts`` random starts (a plain multi-start search, e.g. to benchmark against).
    maxiter : int
        L-BFGS-B iteration limit of the polishing runs.
    progress : bool
        Show a tqdm progress bar (stderr).

    Returns
    -------
    OptimizeResult

    Raises
    ------
    ValueError
        Bad spectrum, steps, sampler, eta, variance, divergence, init, endpoints, grid, weights,
        seed or restarts (the message names the argument and the rule).
    """
    S = as_spectrum(spectrum)
    K = _check_int(steps, "steps", 1, MAX_STEPS)
    check_choice(sampler, "sampler", SAMPLERS)
    eta = check_eta(eta)
    check_choice(variance, "variance", ("posterior", "beta"))
    check_choice(divergence, "divergence", DIVERGENCES)
    check_choice(init, "init", INITS)
    seed = _check_int(seed, "seed", 0)
    restarts = _check_int(restarts, "restarts", 0)
    maxiter = _check_int(maxiter, "maxiter", 1)
    progress, standard_starts = as_bool(progress, "progress"), as_bool(standard_starts, "standard_starts")
    if sampler != "ddim" and eta != 0.0:
        raise ValueError(f"eta applies only to sampler='ddim' (got eta={eta!r} with sampler={sampler!r})")
    w = None
    if weights is not None:
        w = as_spectrum(weights, "weights")
        check_same_shape(w, S, "weights", "spectrum")
    g = None if grid is None else _check_grid(grid, K)
    first, last = _check_endpoints(endpoints, K, g)

    obj = _Objective(S, w, sampler=sampler, eta=eta, variance=variance, divergence=divergence, init=init)
    std = _standard(K, g)

    # ---- the interval and the endpoints in log-SNR
    lf = None if first is None else float(_log_snr(first))
    ll = None if last is None else float(_log_snr(last))
    if g is not None:
        grid_l_inc = _log_snr(g[::-1])  # increasing; index j <-> timestep T-1-j
        T = g.size
        fixed_j: dict[int, int] = {}
        if lf is not None:
            fixed_j[0] = int(np.argmin(np.abs(grid_l_inc - lf)))
            lf = float(grid_l_inc[fixed_j[0]])
        if ll is not None:
            fixed_j[K - 1] = int(np.argmin(np.abs(grid_l_inc - ll)))
            ll = float(grid_l_inc[fixed_j[K - 1]])
        if len(fixed_j) == 2 and K > 1 and fixed_j[K - 1] - fixed_j[0] < K - 1:
            raise ValueError(
                f"endpoints: the fixed first and last levels are {fixed_j[K - 1] - fixed_j[0]} grid steps apart, "
                f"too close for {K} distinct grid levels"
            )
        lo, hi = float(grid_l_inc[0]), float(grid_l_inc[-1])
    else:
        pool = [np.array(LOG_SNR_RANGE)] + [_log_snr(v) for v in std.values()]
        pool += [np.array([x]) for x in (lf, ll) if x is not None]
        allv = np.concatenate(pool)
        lo, hi = max(float(allv.min()), -_HARD_RANGE), min(float(allv.max()), _HARD_RANGE)
    if lf is not None:
        lo = min(lo, lf)
    if ll is not None:
        hi = max(hi, ll)

    baselines: dict[str, float] = {}
    for name, ab in std.items():
        try:
            baselines[name] = obj.value_ab(ab)
        except ValueError:
            continue

    # ---- continuous optimisation
    par = _Gaps(K, lf, ll, lo, hi)
    starts: dict[str, float] = {}
    if not standard_starts and restarts < 1:
        raise ValueError("restarts must be >= 1 when standard_starts=False (no start left)")
    total = (1 + len(std) if standard_starts else 0) + restarts + _N_POLISH + (1 if g is not None else 0)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"optimize K={K}", unit="stage", leave=False)

    def tick(n: int = 1) -> None:
        if bar is not None:
            bar.update(n)

    messages: list[str] = []
    try:
        if par.n_free == 0 or (K == 1 and lf is not None):
            y_best = np.zeros(max(par.m, 1))
            if K == 1 and lf is not None:
                l_best = np.array([lf])
            else:
                l_best = par.levels(y_best)
            best_val = obj.value(l_best)
            success, messages = True, ["levels fully determined by the endpoints"]
            tick(total - (1 if g is not None else 0))
        else:
            cand: list[tuple[str, Array]] = []
            if standard_starts:
                cand += [("equal gaps", np.zeros(par.m))]
                cand += [(name, par.from_levels(_log_snr(ab))) for name, ab in std.items()]
            rng = np.random.default_rng(seed)
            cand += [(f"random-{i}", rng.normal(0.0, 1.0, par.m)) for i in range(restarts)]
            init_vals = {}
            for name, y in cand:
                init_vals[name] = obj.value(par.levels(y))
            finite = [v for v in init_vals.values() if math.isfinite(v)]
            scale = max(min(finite) if finite else 1.0, 1e-300)
            # screen: equal gaps, the two best standard starts, every random start
            std_rank = sorted((n for n, _ in cand if n in std), key=lambda n: init_vals[n])
            chosen = {"equal gaps", *std_rank[:2], *(f"random-{i}" for i in range(restarts))}

            if standard_starts:
                tick(len(std) - len([n for n in chosen if n in std]))
            screened: list[tuple[float, str, Array, bool, str]] = []
            for name, y in cand:
                if name not in chosen:
                    continue
                y1, v1, ok1, msg1 = _lbfgs(obj, par, y, scale, _SCREEN_ITER)
                starts[name] = v1
                screened.append((v1, name, y1, ok1, msg1))
                tick()
            screened.sort(key=lambda t: t[0])
            polished: list[tuple[float, Array, bool, str, str]] = []
            for v1, name, y1, ok1, msg1 in screened[:_N_POLISH]:
                y2, v2, ok, msg = _lbfgs(obj, par, y1, max(v1, 1e-300), maxiter)
                polished.append((v2, y2, ok, msg, name))
                tick()
            polished.sort(key=lambda t: t[0])
            best_val, y_best, success, msg, from_name = polished[0]
            l_best = par.levels(y_best)
            best_val = obj.value(l_best)
            messages = [f"L-BFGS-B from {from_name!r}: {msg}"]

        timesteps = None
        if g is not None:
            j0 = _round_to_grid(l_best, grid_l_inc, fixed_j)
            free = [k for k in range(K) if k not in fixed_j]

            def value_j(jj: NDArray[np.int64]) -> float:
                return obj.value_ab(g[::-1][jj])

            searches = [("continuous optimum rounded", j0)]
            # standard grid schedules that meet the endpoint constraints (free endpoints: all of them)
            ok_std = []
            for name, ab in std.items():
                try:
                    jj = (T - 1) - _sch.nearest_timesteps(ab, g)[::-1]
                except ValueError:
                    continue
                if all(jj[k] == v for k, v in fixed_j.items()) and np.all(np.diff(jj) > 0):
                    ok_std.append((baselines.get(name, math.inf), name, jj.astype(np.int64)))
            if ok_std:
                ok_std.sort(key=lambda t: t[0])
                searches.append((f"grid {ok_std[0][1]}", ok_std[0][2]))
            results = []
            for label, jj in searches:
                v0 = value_j(jj)
                j_opt, v_opt, sweeps = _pattern_search(jj, free, value_j, T, v0)
                results.append((v_opt, label, j_opt, sweeps))
            results.sort(key=lambda t: t[0])
            best_val, label, j_best, sweeps = results[0]
            ab_best = g[::-1][j_best]
            timesteps = (T - 1 - j_best).astype(np.int64)
            messages.append(f"grid search from {label}: {sweeps} sweeps")
            tick()
        else:
            ab_best = _alpha_bar(l_best)
            if first is not None:
                ab_best[0] = first
            if last is not None:
                ab_best[-1] = last
            if sampler in VP_SAMPLERS:
                best_val = obj.value_ab(ab_best)  # the value at the returned levels, exactly
    finally:
        if bar is not None:
            bar.close()

    if sampler in VE_SAMPLERS and g is None:
        sig = np.exp(-0.5 * l_best)
    else:
        sig = _sch.alpha_bar_to_sigmas(ab_best)
    ab_best = np.asarray(ab_best, dtype=np.float64)
    metrics = schedule_metrics(S, ab_best, sampler=sampler, eta=eta, variance=variance, init=init)
    if g is None and lo < hi:
        edge = []
        if first is None and abs(float(_log_snr(ab_best[0])) - lo) < 1e-3:
            edge.append(f"first level at the log-SNR bound {lo:g} (fix endpoints to go beyond)")
        if last is None and abs(float(_log_snr(ab_best[-1])) - hi) < 1e-3:
            edge.append(f"last level at the log-SNR bound {hi:g} (fix endpoints to go beyond)")
        if edge:
            messages.append("; ".join(edge))
    return OptimizeResult(
        alpha_bar=ab_best,
        value=float(best_val),
        log_snr=_log_snr(ab_best),
        sigmas=np.asarray(sig, dtype=np.float64),
        timesteps=timesteps,
        baselines=baselines,
        baseline_schedules=std,
        kl=metrics["kl"],
        w2=metrics["w2"],
        n_evaluations=obj.n_evaluations,
        success=bool(success),
        message="; ".join(messages),
        steps=K,
        sampler=sampler,
        eta=eta,
        variance=variance,
        divergence=divergence,
        init=init,
        endpoints=(first if g is None or first is None else float(g[::-1][fixed_j[0]]),
                   last if g is None or last is None else float(g[::-1][fixed_j[K - 1]])),
        starts=starts,
    )


# ---------------------------------------------------------------------------------------------
# comparison table
# ---------------------------------------------------------------------------------------------


@dataclass
class ComparisonTable:
    """KL and W2 of every standard schedule and the optimised one, for several step counts.

    ``rows``: one dict per (steps, schedule) with keys ``steps``, ``schedule``, ``kl``, ``w2``
    (W2 not squared). ``results``: the :class:`OptimizeResult` per step count.
    """

    rows: list[dict[str, Any]]
    results: dict[int, OptimizeResult]
    divergence: str
    sampler: str

    @property
    def steps_list(self) -> list[int]:
        return sorted({int(r["steps"]) for r in self.rows})

    @property
    def schedules(self) -> list[str]:
        names = []
        for r in self.rows:
            if r["schedule"] not in names:
                names.append(r["schedule"])
        return ["optimised"] + [n for n in names if n != "optimised"]

    def _cell(self, name: str, K: int, key: str) -> Optional[float]:
        for r in self.rows:
            if r["schedule"] == name and r["steps"] == K:
                return float(r[key])
        return None

    def _grid(self) -> tuple[list[str], list[list[str]], list[list[bool]]]:
        header = ["schedule"] + [f"{m} (K={K})" for K in self.steps_list for m in ("KL", "W2")]
        body, best = [], []
        cols = [(K, key) for K in self.steps_list for key in ("kl", "w2")]
        mins = {}
        for K, key in cols:
            vals = [self._cell(n, K, key) for n in self.schedules]
            vals = [v for v in vals if v is not None]
            mins[(K, key)] = min(vals) if vals else None
        for n in self.schedules:
            cells, flags = [n], [False]
            for K, key in cols:
                v = self._cell(n, K, key)
                cells.append("–" if v is None else f"{v:.4g}")
                flags.append(v is not None and v == mins[(K, key)])
            body.append(cells)
            best.append(flags)
        return header, body, best

    def to_markdown(self) -> str:
        """GitHub Markdown table, best value per column in bold."""
        header, body, best = self._grid()
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        for cells, flags in zip(body, best):
            lines.append("| " + " | ".join(f"**{c}**" if f else c for c, f in zip(cells, flags)) + " |")
        return "\n".join(lines)

    def to_latex(self) -> str:
        """LaTeX ``tabular`` (booktabs), best value per column in bold."""
        header, body, best = self._grid()

        def esc(s: str) -> str:
            return s.replace("_", r"\_").replace("–", "--")

        lines = [
            r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
            r"\toprule",
            " & ".join(esc(h) for h in header) + r" \\",
            r"\midrule",
        ]
        for cells, flags in zip(body, best):
            lines.append(" & ".join(r"\textbf{" + esc(c) + "}" if f else esc(c) for c, f in zip(cells, flags)) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def compare_schedules(
    spectrum: ArrayLike,
    steps_list: Sequence[int] = (5, 10, 20, 50),
    *,
    sampler: Literal["ddim", "ddpm", "euler", "heun"] = "ddim",
    eta: float = 0.0,
    variance: Literal["posterior", "beta"] = "posterior",
    divergence: Literal["kl", "kl-reverse", "w2"] = "kl",
    init: Literal["white", "exact"] = "white",
    endpoints: Optional[tuple[Optional[float], Optional[float]]] = None,
    grid: Optional[ArrayLike] = None,
    weights: Optional[ArrayLike] = None,
    seed: int = 0,
    restarts: int = 4,
    progress: bool = False,
) -> ComparisonTable:
    """Optimise for every K in ``steps_list`` and tabulate KL and W2 of it and of every standard schedule.

    Arguments as :func:`optimize_schedule` (the schedule is optimised for ``divergence``; the
    table shows unweighted KL(data||generated) and W2 for all). Returns a :class:`ComparisonTable`.
    """
    if isinstance(steps_list, (str, bytes)) or not hasattr(steps_list, "__iter__"):
        raise ValueError(f"steps_list must be a sequence of positive integers (got {steps_list!r})")
    ks = [_check_int(k, "steps_list entries", 1, MAX_STEPS) for k in steps_list]
    if not ks:
        raise ValueError("steps_list must not be empty")
    S = as_spectrum(spectrum)
    rows: list[dict[str, Any]] = []
    results: dict[int, OptimizeResult] = {}
    it: Any = ks
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(ks, desc="compare", unit="K")
    for K in it:
        res = optimize_schedule(
            S, K, sampler=sampler, eta=eta, variance=variance, divergence=divergence, init=init,
            endpoints=endpoints, grid=grid, weights=weights, seed=seed, restarts=restarts,
        )
        results[K] = res
        rows.append({"steps": K, "schedule": "optimised", "kl": res.kl, "w2": res.w2})
        for name, ab in res.baseline_schedules.items():
            m = schedule_metrics(S, ab, sampler=sampler, eta=eta, variance=variance, init=init)
            rows.append({"steps": K, "schedule": name, "kl": m["kl"], "w2": m["w2"]})
    return ComparisonTable(rows=rows, results=results, divergence=divergence, sampler=sampler)
