r"""Schedule design: the K noise levels whose output spectrum is closest to the data's (docs/model.md §8).

:func:`optimize_schedule` minimises a divergence of docs/model.md §6 between the generated Gaussian
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
* **many cheap starts, few descents**: the candidate starts are scored by their objective value
  alone (one forward pass each, no gradient): equal gaps, the equal-angle (tangent-law) schedules
  of docs/model.md §7.6 for several effective mode variances, every standard schedule of
  :data:`symsched.schedules.STANDARD_SCHEDULES` (projected onto the constraints), the
  ``warm_starts`` (e.g. the optimum at a neighbouring K or for another divergence, resampled to K
  levels) and ``restarts`` random gap vectors from ``numpy.random.default_rng(seed)``. L-BFGS-B
  then runs to convergence from the best start, and short guard runs from up to three other starts
  (the best different one, equal gaps, the best standard schedule) stop as soon as they join the basin
  already found; one that finds a better basin is polished. A first run stopped by ``maxiter`` is followed, for
  K >= 4, by one from the optimum at K // 2 levels (found the same way), resampled to K.
  ``standard_starts=False`` is a plain multi-start search instead (short runs from every random start and
  warm start, the best ones polished), e.g. to benchmark against.
* **grid restriction** (``grid=alphas_cumprod``): the continuous optimum within the grid's range
  is rounded to K distinct grid timesteps, then improved by a coordinate pattern search over the
  timestep indices on exact objective values. The search also starts from the best standard
  schedule restricted to the grid that meets the endpoint constraints, and from every warm start
  (rounded to the grid, its fixed ends moved onto the endpoints): the result is never worse than one that is on
  the grid and meets the constraints.

Fair comparisons. Every standard schedule is evaluated as a baseline (same sampler, divergence,
K; restricted to ``grid`` when given) and flagged by whether it meets the optimiser's endpoint
constraints (:attr:`OptimizeResult.feasible`). Those that do are starts of the search, and the
result is never worse than any of them; those that do not (e.g. a schedule starting from a less
noisy level than the fixed first level) are listed but marked, since the optimiser was not allowed
to use their levels.

Endpoints. ``endpoints=None`` (default) fixes the first (noisiest) level at the noisiest level of
the training grid (``grid``, or the 1000-step linear DDPM grid, ``alpha_bar = 4.04e-5``) and
leaves the last level free: a pre-trained denoiser has only seen levels it was trained on, and
every sampler used in practice starts there (a flow-matching sampler without ``grid`` starts at
``alpha_bar = 0``, t = 1, and is compared with the flow schedules of :data:`FLOW_BASELINES`).
``endpoints=(None, None)`` frees both. In the
Gaussian model the free optimum often *starts from white noise at a low noise level* (a large
first ``alpha_bar``): the exact denoiser is a linear Wiener filter, so starting from ``N(0, I)``
at level ``ab`` only mis-scales each mode by its start variance ``1`` versus
``ab S + 1 - ab`` (docs/model.md §7.4, ``P -> S / lambda``), and the spectrum-wide optimum trades that
mismatch against the discretisation error of covering a shorter log-SNR range with K steps. A
trained network fed white noise at a low noise level sees an input unlike anything in training
(no ``sqrt(ab) x0`` signal component) and does not produce data, which is why it is not the
default here. Moderate free starts do help a learned model: on ``builtin:patches16`` the free W2
optimum on the grid starts at t ~ 730-810 (alpha_bar ~ 1e-3) and beats the pinned one on sample
metrics, so :func:`symsched.probe.default_schedules` (``symsched probe``) frees both ends.

VE samplers (``"euler"``, ``"heun"``, k-diffusion's) are optimised in the same log-SNR coordinates through
``sigma = exp(-l / 2)``, as :func:`symsched.divergence_and_grad_ve` (whose engine gives ``dJ/dl`` directly).

The default divergence of :func:`optimize_schedule`, :func:`compare_schedules`, ``symsched
optimize`` and ``symsched report`` is :data:`DEFAULT_DIVERGENCE`.
"""

from __future__ import annotations

import inspect
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Literal, Mapping, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from . import api as _api
from . import schedules as _sch
from .engine import program as _program
from ._validate import (
    _show,
    MAX_ENTRIES, MAX_ITER, MAX_STEPS, ArgumentTypeError, as_bool, as_int, as_levels, as_real, as_spectrum,
    as_step_counts, check_choice, check_entries, check_eta, check_same_shape, is_sequence, numpy_error_defaults,
    renamed,
)
from .api import (
    DEFAULT_DIVERGENCE,
    DIVERGENCES,
    FLOW_SAMPLERS,
    INITS,
    VE_SAMPLERS,
    VP_SAMPLERS,
    output_spectrum,
    output_spectrum_ve,
)
from ._tex import tex_bold, tex_text

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
    "DEFAULT_DIVERGENCE",
    "InfiniteObjective",
]

Array = NDArray[np.float64]
Divergence = Literal["kl", "kl-reverse", "w2"]

#: Every sampler :func:`optimize_schedule` accepts (VP ones take ``alpha_bar``, VE ones ``sigmas``).
SAMPLERS: tuple[str, ...] = VP_SAMPLERS + VE_SAMPLERS + FLOW_SAMPLERS  # flow samplers take alpha_bar too
#: Default log-SNR interval for free endpoints (widened to contain every standard schedule and any
#: fixed endpoint). At ``l = 20`` float64 still resolves ``1 - alpha_bar = 2e-9`` to ~1e-7.
LOG_SNR_RANGE: tuple[float, float] = (-20.0, 20.0)
_HARD_RANGE = 36.0  # |l| beyond this maps alpha_bar to 0 or 1 in float64
_LOWEST_LOG_SNR = -700.0  # alpha_bar = e^-700 = 1e-304: the noisiest free level (below, e^l leaves the normal floats)
_MIN_GAP = 1e-5  # smallest log-SNR gap between adjacent levels (keeps alpha_bar distinct in float64)
_SCREEN_ITER = 60  # L-BFGS-B iterations of a short (screening or guard) run
_N_POLISH = 2  # short runs polished to convergence in the plain multi-start search
_DISTINCT = 0.25  # a second start must differ from the first by this much in some level's log-SNR
_SAME_BASIN = 0.05  # a guard run this close (max log-SNR difference) to the optimum found has joined it
_RUN_LIMITS = ("ITERATIONS REACHED LIMIT", "EVALUATIONS EXCEEDS LIMIT")  # L-BFGS-B stopped by maxiter or maxfun
_COARSE_MIN_STEPS = 4  # a search at K >= this that runs out of iterations tries the optimum at K // 2 levels
#: ... and so does one that ends in a near-duplicate ladder: a log-SNR gap below this fraction of the mean gap
#: (dpmpp_2m, K = 20, KL on builtin:natural-patches: gaps 2e-4, 1e-3, 5e-3, ... against a mean of 1.2; on an AVX2
#: machine L-BFGS-B *converged* there, at 8.2e-6, where an AVX-512 one ran out of iterations: 7 December)
_LADDER_GAP = 1e-2
#: the search on the other side of the step-ratio cap (:func:`_other_cap`) runs to maxiter / this: a basin, not a crawl
_TWIN_SHARE = 4
_TANGENT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)  # effective mode variances of the tangent-law starts
_FEASIBLE_TOL = 1e-9  # |log-SNR difference| up to which a baseline's end level counts as the fixed one


#: The message of a result on an all-zero spectrum that the sampler reproduces exactly (break-test 54: it was silent).
ALL_ZERO_NOTE = ("every mode of the spectrum is 0 (or has weight 0), which sampler {sampler!r} reproduces exactly "
                 "whatever the levels: every schedule scores 0, and this one is merely where the search stopped")


def default_grid() -> Array:
    """The 1000-step linear DDPM training grid ``alphas_cumprod`` (Ho et al. 2020), training order, shape (1000,)."""
    return _sch.training_grid("linear")


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _runs_zero_not_standin(sampler: Optional[str], eta: Optional[float]) -> bool:
    """Whether ``sampler``'s diffusers export is DDPMScheduler (ddpm, and ddim at eta = 1), which runs a zero-SNR
    timestep at alpha_bar = 0, not at the ``2**-24`` stand-in that EulerDiscrete (ddim's eta = 0 export), DPMSolver
    and UniPC schedulers keep in their alphas_cumprod and run."""
    return sampler == "ddpm" or (sampler == "ddim" and eta == 1.0)


#: what a grid's last level 2**-24 is (:data:`symsched.schedules.ZERO_SNR_STANDIN`), in the messages about it
_STANDIN = ("2**-24, diffusers' stand-in for zero terminal SNR in the alphas_cumprod of "
            "EulerDiscrete/DPMSolverMultistep/UniPC schedulers")


def _check_grid(grid: ArrayLike, steps: int, sampler: Optional[str] = None, eta: Optional[float] = None) -> Array:
    """A training grid (checked by :func:`symsched.schedules._as_grid`, the one set of grid rules) with at least
    ``steps`` levels; ValueError for diffusers' zero-SNR stand-in ``2**-24`` as the last level of a ``sampler``
    whose scheduler runs alpha_bar = 0 there (the optimised level would not be the one that runs)."""
    g = _sch._as_grid(grid, "grid")
    _sch._check_grid_size(g, steps)
    if _runs_zero_not_standin(sampler, eta) and g.size > 1 and g[-1] == _sch.ZERO_SNR_STANDIN:
        raise ValueError(
            f"grid ends in {_STANDIN}, which run that level; sampler {sampler!r} exports to "
            "DDPMScheduler, which runs alpha_bar = 0 there instead: set the grid's last entry to 0 (grid[-1] = 0), "
            "or use the grid of the scheduler you will run")
    return g


def no_zero_level(grid: Array, zero_grid: str, first_free: str) -> str:
    """Why a grid without alpha_bar = 0 cannot start at pure noise, and the fix, in the caller's words (``zero_grid``:
    how to pass a zero-SNR grid; ``first_free``: how to leave the first level to the grid). diffusers' stand-in
    ``2**-24`` is named as such (break-test of 7 December: it read as "no zero terminal SNR", with a fix to build
    another grid, where setting its last entry to 0 is the one)."""
    if float(grid[-1]) == _sch.ZERO_SNR_STANDIN:
        return (f"{_STANDIN} (they run that level): set the grid's last entry to 0 (grid[-1] = 0) for a scheduler that "
                f"runs alpha_bar = 0 there (DDPMScheduler), or, for one that runs the stand-in, use {first_free} to "
                "start there")
    return (f"alpha_bar = {float(grid[-1]):.4g} (no zero terminal SNR); pass {zero_grid}, or {first_free} for the "
            "grid's noisiest level")


def _check_level(value: Any, name: str, zero_ok: bool = False) -> float:
    where = "[0, 1) (0: pure noise)" if zero_ok else "the open interval (0, 1)"
    try:
        v = as_real(value, name)
    except ValueError as exc:
        raise type(exc)(f"{name} must be a level in {where} or None (got {_show(value)})") from None
    if zero_ok and v == 0.0:  # the first level at pure noise (zero terminal SNR, flow t = 1)
        return 0.0
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be a level in {where} or None (got {_show(value)})")
    return v


def _check_endpoints(endpoints: Any, steps: int, grid: Optional[Array], sampler: Optional[str] = None
                     ) -> tuple[Optional[float], Optional[float]]:
    if endpoints is None and grid is None and sampler in FLOW_SAMPLERS:
        return 0.0, None  # a flow-matching model samples from pure noise, t = 1 (as FlowMatchEulerDiscreteScheduler)
    first, last = _endpoint_levels(endpoints, steps, grid)
    if sampler in FLOW_SAMPLERS:  # a level whose flow time t rounds to 1 has no place in a flow schedule
        for v, name in ((first, "endpoints[0] (first level)"), (last, "endpoints[1] (last level)")):
            try:
                if v is not None:
                    _sch.alpha_bar_to_flow_t(v)
            except ValueError as exc:
                raise ValueError(f"{name} with sampler {sampler!r}: {str(exc).split(': ', 1)[-1]}") from None
    return first, last


def _endpoint_levels(endpoints: Any, steps: int, grid: Optional[Array]) -> tuple[Optional[float], Optional[float]]:
    if endpoints is None:
        g = grid if grid is not None else default_grid()
        return float(g[-1]), None
    if not is_sequence(endpoints) or not hasattr(endpoints, "__len__") or len(endpoints) != 2:
        raise ValueError(
            f"endpoints must be None or a pair (first, last) of levels or None: first in [0, 1) (0: pure noise), "
            f"last in (0, 1) (got {endpoints!r})"
        )
    first = None if endpoints[0] is None else _check_level(endpoints[0], "endpoints[0] (first level)", zero_ok=True)
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


def _check_levels_args(K: int, endpoints: Any, grid: Any, sampler: Optional[str] = None,
                       eta: Optional[float] = None) -> None:
    """For a caller that checks before any work (the CLI): the grid, the endpoints, and the room the fixed
    endpoints leave for the other levels (on the grid or in float64), as :func:`optimize_schedule` checks them
    (``_Box`` at the start of its search); ValueError naming the argument."""
    g = None if grid is None else _check_grid(grid, K, sampler, eta)
    first, last = _check_endpoints(endpoints, K, g, sampler)
    _Box(K, first, last, g, _standard(K, g, first))


def _check_int(value: Any, name: str, minimum: int, maximum: int = MAX_ITER) -> int:
    return as_int(value, name, minimum, maximum, limit="MAX_STEPS" if maximum == MAX_STEPS else "MAX_ITER",
                  rule=f"an integer >= {minimum}")


_log_snr = _sch.alpha_bar_to_log_snr
_alpha_bar = _sch.log_snr_to_alpha_bar


def _check_warm_starts(warm_starts: Any) -> list[Array]:
    if warm_starts is None:
        return []
    if isinstance(warm_starts, np.ndarray) and warm_starts.ndim == 1:
        warm_starts = [warm_starts]
    if not is_sequence(warm_starts):
        raise ValueError(f"warm_starts must be a sequence of schedules alpha_bar (got {warm_starts!r})")
    starts = check_entries(warm_starts, "warm_starts", why="the optimiser runs from each of them")
    return [as_levels(ab, f"warm_starts[{i}]") for i, ab in enumerate(starts)]


# ---------------------------------------------------------------------------------------------
# objective: exact value and gradient with respect to the levels' log-SNR
# ---------------------------------------------------------------------------------------------


def _settings(sampler: str, eta: Optional[float], variance: Optional[str],
              extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The engine keywords of ``sampler``: its own settings ``extra`` plus ``eta`` and ``variance`` where given.

    ``None`` leaves the sampler's own default (DDIM 0; k-diffusion's ancestral and SDE samplers 1); a sampler
    without the parameter ignores DDIM's and DDPM's neutral values (eta 0, posterior) and refuses any other
    (:func:`symsched.api._setup`).
    """
    out = dict(extra or {})
    if eta is not None:
        out["eta"] = eta
    if variance is not None:
        out["variance"] = variance
    return out


def _resolved(sampler: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Every parameter and option of ``sampler`` as the engine runs it with ``settings`` (ValueError naming a
    bad one): what a result records, so that it says which sampler settings its numbers belong to."""
    _, options, params = _api._setup(sampler, settings)
    return {**params, **options}


def _check_steps_for(sampler: str, K: int, eta: Optional[float], variance: Any, settings: dict[str, Any]) -> list[Any]:
    """The sampler's own plan of K levels (its steps: kind, level indices, parameters); ValueError naming ``steps``
    when the sampler runs no K-level schedule (DEIS and final_sigmas_type='sigma_min' need 2 levels: the last is the
    one their last step reaches), before any work."""
    from .symbolic import sampler_module

    name, options, params = _api._setup(sampler, _settings(sampler, eta, variance, settings))
    try:  # the plan of any K increasing log-SNR levels (some plans read them)
        return list(sampler_module(name).plan(K, np.linspace(-5.0, 5.0, K), dict(params), **dict(options)))
    except ValueError as exc:
        msg = str(exc)
        why = msg[len("alpha_bar: "):] if msg.startswith("alpha_bar: ") else msg
        raise ValueError(f"steps must suit sampler {sampler!r} (got {K}): {why}") from None


#: score of grid levels beyond the step-ratio cap, times 1 + the excess (above every finite objective value)
_BEYOND_CAP = 1e300

#: default cap on the ratio of a log-SNR step to the step before it, for samplers that reuse earlier denoiser outputs
#: (multistep): a tiny step before a large one lets the exact-denoiser objective buy a "free" derivative, which
#: multiplies a learned denoiser's error by about the ratio (see :func:`optimize_schedule`)
MAX_STEP_RATIO = 5.0


def _history_pairs(plan: Sequence[Any], K: int) -> tuple[int, ...]:
    """Levels ``i`` (1 <= i <= K - 2) whose step to ``i + 1`` reuses the denoiser output at an earlier level (the
    sampler's ``plan`` of K levels, :func:`_check_steps_for`, reads a level before ``i``): there the ratio
    ``h_i / h_{i-1}`` of consecutive log-SNR steps weights the extrapolation (DPM-Solver++(2M): ``h_i / (2 h_{i-1})``
    on the previous denoised value)."""
    pairs = set()
    for _, idx, _ in plan:
        idx = sorted(int(i) for i in idx)
        pairs.update(b for a, b, c in zip(idx, idx[1:], idx[2:]) if c <= K - 1)  # (steps into the clean level: none)
    return tuple(sorted(i for i in pairs if 1 <= i <= K - 2))


def _check_step_ratio(value: Any, pairs: tuple[int, ...]) -> float:
    """``max_step_ratio`` as a float > 1 (inf: no cap); None: :data:`MAX_STEP_RATIO` for a sampler with history."""
    if value is None:
        return MAX_STEP_RATIO if pairs else math.inf
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        if value == math.inf:
            return math.inf
        raise ValueError(f"max_step_ratio must be > 1 (math.inf: no cap; got {value!r})")  # NaN, -inf
    r = as_real(value, "max_step_ratio")
    if not r > 1.0:  # (NaN fails too)
        raise ValueError(f"max_step_ratio must be > 1 (math.inf: no cap; got {value!r})")
    return r


def _step_ratio_as_run(sampler: str, ks: Sequence[int], eta: Optional[float], variance: Any, settings: dict[str, Any],
                       value: Any) -> Optional[float]:
    """The step-ratio cap that runs of ``sampler`` over the step counts ``ks`` apply (inf: the uncapped optimum, asked
    for as such), or None when no K of ``ks`` has a step that reuses an earlier level (no cap applies)."""
    pairs = next((p for k in ks if (p := _history_pairs(_check_steps_for(sampler, k, eta, variance, settings), k))),
                 ())
    return _check_step_ratio(value, pairs) if pairs else None


def _ratio_excess(l: Array, pairs: Sequence[int], R: float) -> float:
    """``sum max(0, log(h_i / (R h_{i-1})))`` over ``pairs`` for increasing log-SNR levels ``l``: 0 within the cap."""
    if not pairs or R == math.inf:
        return 0.0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # (R h beyond float64 for R ~ 1e308: inf)
        h = np.diff(np.asarray(l, dtype=np.float64))
        return float(sum(math.log(h[i] / (R * h[i - 1])) for i in _beyond_cap(h, pairs, R)))


def _beyond_cap(h: Array, pairs: Sequence[int], R: float, rel: float = 0.0) -> list[int]:
    """The levels ``i`` of ``pairs`` whose log-SNR step ``h[i]`` exceeds ``R (1 + rel)`` times the one before it
    (a step after an infinite one, from pure noise, has no ratio)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return [i for i in pairs if i < h.size and np.isfinite(h[i - 1]) and h[i] > R * h[i - 1] * (1.0 + rel)]


def _ratio_ok(l: Array, pairs: Sequence[int], R: float) -> bool:
    """Whether increasing log-SNR levels ``l`` keep ``h_i <= R h_{i-1}`` at every level of ``pairs``."""
    return _ratio_excess(l, pairs, R) <= 1e-9


def _check_sampler_args(sampler: Any, eta: Any, variance: Any, settings: dict[str, Any]) -> Optional[float]:
    """The sampler, its ``eta`` (returned, checked), ``variance`` and other settings, checked before any work."""
    check_choice(sampler, "sampler", SAMPLERS)
    _with_eta(sampler, eta)
    if eta is not None and sampler == "ddim":
        eta = check_eta(eta)
    _check_variance(sampler, variance)
    _resolved(sampler, _settings(sampler, eta, variance, settings))
    return eta


def _check_variance(sampler: str, variance: Any) -> None:
    """ValueError unless ``variance`` is DDPM's ("posterior" or "beta") and "posterior" for every other sampler."""
    check_choice(variance, "variance", ("posterior", "beta"))
    if sampler != "ddpm" and variance != "posterior":
        raise ValueError(f"variance applies only to sampler='ddpm' (got variance={variance!r} with "
                         f"sampler={sampler!r})")


def _settings_text(sampler: str, settings: dict[str, Any]) -> str:
    """" eta=0 solver_order=3": ``eta`` when the sampler has one, and every setting that is not its default."""
    info = _api.sampler_info(sampler)
    default = {**info["params"], **{k: v[0] for k, v in info["options"].items()}}
    shown = {k: v for k, v in sorted(settings.items(), key=lambda kv: kv[0] != "eta")  # eta first
             if k == "eta" or default.get(k, v) != v}
    return "".join(f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}" for k, v in shown.items())


def _with_eta(sampler: str, eta: Any) -> None:
    """ValueError unless ``eta`` is None, 0 (DDIM's neutral value) or ``sampler`` has an ``eta`` parameter."""
    if eta is None or "eta" in _api.sampler_info(sampler)["params"]:
        return
    number = isinstance(eta, (int, float, np.integer, np.floating)) and not isinstance(eta, (bool, np.bool_))
    if number and eta == _api._NEUTRAL["eta"]:  # DDIM's default, which samplers without an eta ignore
        return
    have = ", ".join(n for n in SAMPLERS if "eta" in _api.sampler_info(n)["params"])
    raise ValueError(f"eta applies only to samplers with an eta parameter ({have}); got eta={eta!r} with "
                     f"sampler={sampler!r}")


class _Objective:
    """J(l) and dJ/dl for log-SNR levels ``l`` (increasing), as divergence_and_grad[_ve]; values alone cheaply.

    The modes are grouped once (:func:`symsched.api._grouped`). ``__call__`` gives value and gradient (one
    forward and one adjoint sweep). ``value_levels`` / ``value_ab`` give the value alone from one forward pass
    in the same ratio form (:func:`symsched.api.grouped_value`): the same number as the gradient path, exact
    for modes whose output variance underflows float64.
    """

    def __init__(
        self, S: Array, weights: Optional[Array], *, sampler: str, eta: Optional[float], variance: Optional[str],
        divergence: str, init: str, extra: Optional[dict[str, Any]] = None,
    ) -> None:
        flat = S.ravel()
        # modes with equal S are one mode with summed weight, as in divergence_and_grad (and scaled alike); the
        # search runs on the scaled objective J 2^-e (e = 0 for weights in [2^-64, 2^64]): unscaled, weights of
        # 2^-1074 gave L-BFGS-B a subnormal J of one or two digits, and a uniform weight moved the optimum
        grp = _api._grouped(flat, np.ones(flat.size) if weights is None else weights.ravel(), one_scale=True)
        self.e = grp.e
        self.grp = replace(grp, e=0)
        self.sampler, self.divergence, self.init = sampler, divergence, init
        self.weighted = weights is not None
        self.ve = sampler in VE_SAMPLERS
        # every parameter and option as the engine runs them (library defaults filled in): what the result records
        self.settings = _resolved(sampler, _settings(sampler, eta, variance, extra))
        self.n_evaluations = 0
        self.n_gradients = 0
        #: called after every evaluation (the progress bar's evaluation count), or None
        self.on_evaluation: Optional[Callable[[], None]] = None
        self.refusals: list[str] = []  # messages of the trial schedules the engine refused (infeasible points)
        self.beyond_float64 = 0  # how many of them only because the divergence itself left the float64 range

    def unscaled(self, value: float, *, strict: bool = False) -> float:
        """A value of the search in the user's units (``J 2^e``); with ``strict`` a ValueError naming ``weights``
        where that leaves float64 (a KL that is +inf for every weight stays inf)."""
        with np.errstate(over="ignore"):
            out = float(np.ldexp(value, self.e))
        if strict and not math.isfinite(out) and math.isfinite(value):
            raise ValueError(f"weights: with these weights (largest {self.grp.w_max:.6g}) the divergence exceeds the "
                             "float64 range (it is linear in the weights: scale them down)")
        return out

    def _refused(self, exc: ValueError) -> str:
        """Record a trial schedule the engine refused (an infeasible point); its message."""
        self.refusals.append(str(exc))
        self.beyond_float64 += isinstance(exc, _api.Unrepresentable)
        return str(exc)

    @property
    def S(self) -> Array:
        """The sorted unique modes."""
        return self.grp.u

    @property
    def w(self) -> Array:
        """Their summed (possibly power-of-two scaled) weights."""
        return self.grp.w

    def __call__(self, l: Array) -> tuple[float, Array]:
        """Value and gradient; raises :class:`_Refused` where the engine refuses the schedule."""
        try:
            return self._value_and_grad(l)
        except ValueError as exc:
            raise _Refused(self._refused(exc)) from None

    def _levels(self, ab: Optional[Array], sig: Optional[Array], derived: bool = False) -> tuple[Array, str]:
        """The validated levels in the engine's coordinate (sigmas for VE samplers). ``derived``: sigmas searched on
        log-SNR (``exp(-l/2)``, :func:`symsched.engine.program.derived_sigmas`), whose k-diffusion decisions (churn
        window, ancestral min) allow for the few ulp between them and the sigmas the result and its exports run (a
        level at s_tmax churned in the export and not in the search)."""
        if not self.ve:
            return _api._vp_levels(ab), "alpha_bar"
        x = _api._ve_levels(sig)
        return (_program.derived_sigmas(x) if derived else x), "sigma"

    def _counted(self) -> None:
        self.n_evaluations += 1
        if self.on_evaluation is not None:
            self.on_evaluation()

    def _value_and_grad(self, l: Array) -> tuple[float, Array]:
        self._counted()
        self.n_gradients += 1
        x, coord = self._levels(None if self.ve else _alpha_bar(l), np.exp(-0.5 * l) if self.ve else None,
                                derived=True)
        J, g = _api.grouped_value_and_grad(self.grp, x, coord, self.divergence, self.sampler, self.init,
                                           self.settings)  # dJ/d log-SNR in both coordinates
        return float(J), np.asarray(g, dtype=np.float64)

    def _value(self, ab: Optional[Array], sig: Optional[Array], derived: bool = False) -> float:
        """The value; inf where the engine refuses the schedule (an infeasible point of the search)."""
        try:
            return self._value_or_raise(ab, sig, derived)
        except ValueError as exc:
            self._refused(exc)
            return math.inf

    def _value_or_raise(self, ab: Optional[Array], sig: Optional[Array], derived: bool = False) -> float:
        self._counted()
        x, coord = self._levels(ab, sig, derived)
        return _api.grouped_value(self.grp, x, coord, self.divergence, self.sampler, self.init, self.settings)

    def value_levels(self, l: Array) -> float:
        """Value alone at log-SNR levels ``l``."""
        if self.ve:
            return self._value(None, np.exp(-0.5 * l), derived=True)
        return self._value(_alpha_bar(l), None)

    def value_ab(self, ab: Array) -> float:
        """Value alone at exact alpha_bar levels (grid levels are used as given)."""
        if self.ve:
            return self._value(None, _sch.alpha_bar_to_sigmas(ab))
        return self._value(ab, None)


# ---------------------------------------------------------------------------------------------
# parametrisation: softmax gaps in log-SNR
# ---------------------------------------------------------------------------------------------


class _Gaps:
    r"""Levels l_1 < ... < l_K in [a, b] as partial sums of m gaps d = delta + c softmax(y).

    Points ``[a, free levels..., b]`` (a fixed endpoint *is* a or b, a free one sits one gap inside):
    m = K + 1 - (#fixed endpoints) gaps, ``c = b - a - m delta``.
    """

    capped = False  # whether a step-ratio cap shapes the gaps (:class:`_RatioGaps`)

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

    @property
    def determined(self) -> bool:
        """True when the levels have no room to move: no free gap, or an interval [a, b] of zero width (a grid
        with one finite level below a zero-SNR one)."""
        return self.n_free == 0 or not self.b > self.a

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

    def equal_gaps(self) -> Array:
        """The y of equal gaps in log-SNR (all softmax logits equal)."""
        return np.zeros(self.m)

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


class _RatioGaps(_Gaps):
    r""":class:`_Gaps` whose constrained gaps stay below ``R`` times the gap before them: the softmax logits
    ``s`` of those gaps are ``s_{i-1} + log R - softplus(log R - y_i)`` (< ``s_{i-1} + log R``), the others ``y_i``,
    so ``p_i / p_{i-1} < R`` and, as ``delta >= 0``, ``(delta + c p_i) / (delta + c p_{i-1}) < R`` exactly."""

    def __init__(self, K: int, first: Optional[float], last: Optional[float], lo: float, hi: float,
                 pairs: Sequence[int], R: float) -> None:
        super().__init__(K, first, last, lo, hi)
        offset = 0 if self.first_fixed else 1  # gap index of the step from level i: i + offset
        self.chain = sorted(i + offset for i in pairs if 1 <= i + offset < self.m)
        self.log_r = math.log(R)
        self.capped = bool(self.chain)

    def _logits(self, y: Array) -> Array:
        s = np.array(y, dtype=np.float64)
        for i in self.chain:  # ascending: s[i - 1] is final
            s[i] = s[i - 1] + self.log_r - np.logaddexp(0.0, self.log_r - y[i])
        return s

    def equal_gaps(self) -> Array:
        """Equal logits: each capped ``y_i = -log(1 - 1/R)``, where ``log R - softplus(log R - y_i) = 0`` (y = 0 would
        shrink each capped gap by R / (R + 1): break-test of 7 December)."""
        y = np.zeros(self.m)
        y[self.chain] = -math.log1p(-1.0 / math.exp(self.log_r))
        return y

    def levels(self, y: Array) -> Array:
        return super().levels(self._logits(y))

    def pullback(self, y: Array, g: Array) -> Array:
        t = super().pullback(self._logits(y), g)  # dJ/ds
        for i in reversed(self.chain):
            t[i - 1] += t[i]
        for i in self.chain:
            t[i] *= 0.5 * (1.0 + math.tanh(0.5 * (self.log_r - float(y[i]))))  # sigmoid: d softplus
        return t

    def from_levels(self, l: Array) -> Array:
        s = super().from_levels(l)  # log of the gaps (up to a constant)
        y = s.copy()
        for i in self.chain:  # each increment kept below log R (a projection of levels that exceed it)
            inc = min(s[i] - s[i - 1], self.log_r - 1e-6)
            s[i] = s[i - 1] + inc
            v = self.log_r - inc  # > 0: y_i = log R - softplus^-1(v)
            y[i] = self.log_r - (v + math.log(-math.expm1(-v)))
        return y


def _gaps(K: int, first: Optional[float], last: Optional[float], lo: float, hi: float, pairs: Sequence[int] = (),
          R: float = math.inf) -> _Gaps:
    """:class:`_RatioGaps` when a step-ratio cap applies (``pairs`` and a finite ``R``), else :class:`_Gaps`."""
    return _RatioGaps(K, first, last, lo, hi, pairs, R) if pairs and R < math.inf else _Gaps(K, first, last, lo, hi)


def _max_diff(a: Array, b: Array) -> float:
    """max |a - b| over the levels, equal infinite levels (a fixed alpha_bar = 0) counting as 0."""
    same = a == b
    with np.errstate(invalid="ignore"):
        d = np.where(same, 0.0, np.abs(a - b))
    return float(np.max(d))


class _ZeroFirst:
    """Levels ``[-inf, l_2 < ... < l_K]``: the first level fixed at pure noise (alpha_bar = 0: a zero-SNR grid's
    noisiest level, or flow matching's t = 1), the other K - 1 parametrised by :class:`_Gaps` in [lo, hi]."""

    first_fixed = False  # no closed-form (tangent-law) starts from an infinite first level

    def __init__(self, K: int, last: Optional[float], lo: float, hi: float, pairs: Sequence[int] = (),
                 R: float = math.inf) -> None:
        self.K = K
        inner = [i - 1 for i in pairs if i >= 2]  # (the step from pure noise has an infinite gap: no ratio)
        self.inner = _gaps(K - 1, None, last, lo, hi, inner, R)
        self.m, self.last_fixed, self.a, self.b = self.inner.m, self.inner.last_fixed, -math.inf, self.inner.b
        self.capped = self.inner.capped

    @property
    def n_free(self) -> int:
        return self.inner.n_free

    @property
    def determined(self) -> bool:
        return self.inner.determined

    def equal_gaps(self) -> Array:
        return self.inner.equal_gaps()

    def levels(self, y: Array) -> Array:
        return np.concatenate(([-math.inf], self.inner.levels(y)))

    def pullback(self, y: Array, g: Array) -> Array:
        return self.inner.pullback(y, np.asarray(g)[1:])

    def from_levels(self, l: Array) -> Array:
        l = np.sort(np.asarray(l, dtype=np.float64))
        return self.inner.from_levels(l[-(self.K - 1):])


# ---------------------------------------------------------------------------------------------
# starts: cheap candidates, scored by value alone
# ---------------------------------------------------------------------------------------------


def _tangent_law(par: _Gaps, s_eff: float) -> Array:
    """Equal-angle log-SNR levels for one mode of variance ``s_eff`` (docs/model.md §7.6), noisiest first.

    ``theta = arctan(sigma / sqrt(s_eff))`` takes K equal steps from the first level to the fixed
    last level, or, with the last level free, K equal steps from the first level to the clean end
    (theta = 0), the optimum of the exact-start angle form for one mode.
    """
    half_log_s = 0.5 * math.log(s_eff)
    first = -0.5 * par.a - half_log_s  # log(sigma / sqrt(s_eff)) = log tan(theta)
    if par.last_fixed and par.K > 1:
        t, last = _sch._ramp(par.K), -0.5 * par.b - half_log_s
    else:
        t, last = np.arange(par.K) / par.K, -math.inf
    return -2.0 * (half_log_s + _sch._equal_angle_log_sigmas(first, last, *_sch._log_weights(t)))


def _resample(alpha_bar: Array, K: int) -> Optional[Array]:
    """A schedule of any length as K log-SNR levels (linear in the fractional step index); a first level of pure
    noise (alpha_bar = 0, log-SNR -inf) stays first and the finite levels are resampled to the K - 1 others."""
    l = _log_snr(alpha_bar)
    if l.size == K:
        return l
    head = l[:1] if l.size and l[0] == -math.inf else l[:0]  # (interpolating from -inf gives -inf or NaN)
    body, k = l[head.size:], K - head.size
    if body.size < 2 or k < 2:
        return None
    return np.concatenate((head, np.interp(np.linspace(0.0, 1.0, k), np.linspace(0.0, 1.0, body.size), body)))


def _weighted_quantiles(S: Array, w: Array, qs: Sequence[float]) -> list[float]:
    pos = (S > 0) & (w > 0)
    if not np.any(pos):
        return []
    s, ww = S[pos], w[pos]
    cum = np.cumsum(ww) / np.sum(ww)
    idx = np.minimum(np.searchsorted(cum, qs), s.size - 1)
    return sorted({float(s[i]) for i in idx})


def _candidates(
    par: _Gaps, obj: _Objective, std: dict[str, Array], warm: list[Array], *, standard_starts: bool,
    restarts: int, seed: int,
) -> list[tuple[str, Array]]:
    cands: list[tuple[str, Array]] = []
    if standard_starts:
        cands.append(("equal gaps", par.equal_gaps()))
        if par.capped:  # y = 0 under the cap: each capped gap R / (R + 1) times the one before (a start of its own)
            cands.append(("shrinking gaps", np.zeros(par.m)))
        if par.first_fixed:  # the closed form needs the first level (a free one would start at the range's end)
            for s in _weighted_quantiles(obj.S, obj.w, _TANGENT_QUANTILES):
                cands.append((f"tangent law S={s:.3g}", par.from_levels(_tangent_law(par, s))))
        cands += [(name, par.from_levels(_log_snr(ab))) for name, ab in std.items()]
    for i, ab in enumerate(warm):
        l = _resample(ab, par.K)
        if l is not None:
            cands.append((f"warm start {i}", par.from_levels(l)))
    rng = np.random.default_rng(seed)
    cands += [(f"random-{i}", rng.normal(0.0, 1.0, par.m)) for i in range(restarts)]
    return cands


# ---------------------------------------------------------------------------------------------
# local descents
# ---------------------------------------------------------------------------------------------


class _Refused(Exception):
    """The engine refused a trial schedule (e.g. multistep coefficients that cancel in float64)."""


class _SameBasin(Exception):
    """Raised inside a guard run that has reached the basin of the optimum already found."""

    def __init__(self, y: Array, value: float) -> None:
        super().__init__()
        self.y, self.value = y, value


def _lbfgs(
    obj: _Objective, par: _Gaps, y0: Array, scale: float, maxiter: int,
    known: Optional[tuple[Array, float]] = None,
) -> tuple[Array, float, bool, str]:
    """L-BFGS-B on J/scale from ``y0``. With ``known = (levels, value)`` of an optimum already found, stop
    as soon as the run is within ``_SAME_BASIN`` of those levels or matches that value to 1e-10."""

    memo: dict[bytes, tuple[float, Array]] = {}
    good: list[tuple[Array, float]] = []  # the last point the engine evaluated: (y, J / scale)
    lowest: list[tuple[float, Array]] = []  # the lowest J evaluated and its y (kept if the search leaves the floats)

    def fun(y: Array) -> tuple[float, Array]:
        hit = memo.get(y.tobytes())
        if hit is not None:
            return hit
        if not np.all(np.isfinite(y)):  # a step beyond the float64 range: higher than any point seen, never NaN levels
            return (good[-1][1] + max(1.0, abs(good[-1][1])) if good else math.inf), np.zeros_like(y)
        l = par.levels(y)
        try:
            J, g = obj(l)
        except _Refused:
            if not good:
                raise
            return _infeasible(y, *good[-1])
        good[:] = [(np.array(y, copy=True), J / scale)]
        if math.isfinite(J) and (not lowest or J < lowest[0][0]):
            lowest[:] = [(J, np.array(y, copy=True))]
        if known is not None and (
            _max_diff(l, known[0]) < _SAME_BASIN or abs(J - known[1]) <= 1e-10 * abs(known[1])
        ):
            raise _SameBasin(y, J)
        memo.clear()
        memo[y.tobytes()] = out = (J / scale, par.pullback(y, np.asarray(g) / scale))  # scaled first: no overflow
        return out

    try:
        y0 = np.asarray(y0, dtype=np.float64)
        try:
            f0, g0 = fun(y0)
        except _Refused as exc:
            return y0, math.inf, False, f"the start was refused ({exc})"
        if f0 == math.inf:  # KL's true +inf (P > 0 where S = 0, or P = 0 where S > 0): no schedule is better
            raise InfiniteObjective(
                "divergence: the objective is +inf at the start schedule, so it cannot be minimised: KL (either "
                "direction) is infinite for a mode with S = 0 that the sampler leaves with output variance P > 0 (a "
                "noise floor: DEIS, final_sigmas_type='sigma_min', ...), or with P = 0 where S > 0; use "
                "divergence='w2', drop the zero modes, or a sampler that ends at the clean level")
        if float(np.max(np.abs(g0), initial=0.0)) <= 1e-8 * abs(f0):  # e.g. a warm start at an optimum
            return y0, f0 * scale, True, "converged (the start is stationary)"
        res = minimize(
            fun, y0, jac=True, method="L-BFGS-B",
            options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-11, "maxcor": 20, "maxls": 20},
        )
    except _SameBasin as stop:
        return np.asarray(stop.y, dtype=np.float64), float(stop.value), True, "reached the known optimum's basin"
    ok, msg = bool(res.success), _lbfgs_reason(res.message)
    if not (np.all(np.isfinite(res.x)) and math.isfinite(float(res.fun))) and lowest:
        return lowest[0][1], lowest[0][0], False, f"stopped at the lowest finite point (L-BFGS-B: {msg})"
    if not ok and float(np.max(np.abs(res.jac), initial=0.0)) <= 1e-6 * abs(float(res.fun)):
        # the line search stalls at machine precision at a stationary point: that is convergence
        ok, msg = True, f"converged (projected gradient at round-off; L-BFGS-B: {msg})"
    return np.asarray(res.x, dtype=np.float64), float(res.fun) * scale, ok, msg


def _ratio_to_optimum(value: float, optimum: float) -> float:
    """``value / optimum`` of a divergence (both >= 0): 1 when both are 0, inf when only the optimum is 0."""
    if optimum > 0:
        return value / optimum if math.isfinite(optimum) else (1.0 if value == math.inf else 0.0)
    return math.inf if value > 0 else 1.0


class InfiniteObjective(ValueError):
    """The divergence is +inf at the optimiser's start, or at the only schedule the endpoints allow (KL with a
    mode the sampler cannot match): nothing to minimise. A ValueError; ``symsched report`` skips that divergence
    with its message. Source: :func:`optimize_schedule`, :func:`compare_schedules`."""


def at_step_count(exc: InfiniteObjective, K: int, name: str = "steps") -> InfiniteObjective:
    """``exc`` raised for one K of several, as one that names K and the argument that listed it (its advice gains
    "or drop K from <name>")."""
    head, sep, rest = str(exc).partition(": ")
    return InfiniteObjective(f"{head}{sep}at K={K} of {name} {rest} (or drop K={K} from {name})")


def _infeasible(y: Array, y_good: Array, f_good: float) -> tuple[float, Array]:
    """A refused trial point seen by L-BFGS-B: a steep bowl around the last evaluated point, f_good +
    max(1, |f_good|) at ``y``, whose gradient points back to it, so that the line search backtracks."""
    d = y - y_good
    rise = max(1.0, abs(f_good))
    c = rise / max(float(d @ d), 1e-300)
    return f_good + rise, 2.0 * c * d


def _lbfgs_reason(message: Any) -> str:
    """SciPy's L-BFGS-B message in words: its abnormal line-search stop is ``"ABNORMAL: "`` with an empty reason."""
    text = str(message).strip().rstrip(":").strip()
    if text.upper().startswith("ABNORMAL"):
        detail = text[len("ABNORMAL"):].lstrip(" :_").strip()
        known = detail.upper() in ("", "TERMINATION_IN_LNSRCH")
        return "ABNORMAL: the line search found no lower value" + ("" if known else f" ({detail})")
    return text


_Run = tuple[float, Array, bool, str, str]  # (value, y, converged, message, start name)
#: the fallback of :func:`_descend_best`: () -> (the optimum at K // 2 levels, its evaluations, its gradients) or None
_Coarse = Callable[[], Optional[tuple[Array, int, int]]]


def _scored(obj: _Objective, par: _Gaps, cands: list[tuple[str, Array]]) -> list[tuple[float, str, Array]]:
    """Candidates with a finite value at their levels, best first (ties keep the candidate order)."""
    out = []
    for i, (name, y) in enumerate(cands):
        v = obj.value_levels(par.levels(y))
        if math.isfinite(v):
            out.append((v, i, name, y))
    out.sort(key=lambda t: (t[0], t[1]))
    return [(v, name, y) for v, _, name, y in out]


def _guards(par: _Gaps, scored: list[tuple[float, str, Array]], std: Sequence[str]) -> list[tuple[float, str, Array]]:
    """Starts of the guard runs: the best start differing from the first, equal gaps, the best-scoring standard
    schedule and, under a step-ratio cap, shrinking gaps, each kept only if it differs (``_DISTINCT``) from every
    start already chosen."""
    chosen = [par.levels(scored[0][2])]
    out = []
    for accept in (lambda name: True, lambda name: name == "equal gaps", lambda name: name in std,
                   lambda name: name == "shrinking gaps"):
        for t in scored[1:]:
            if accept(t[1]) and all(_max_diff(par.levels(t[2]), c) > _DISTINCT for c in chosen):
                chosen.append(par.levels(t[2]))
                out.append(t)
                break
    return out


def _descend_best(
    obj: _Objective, par: _Gaps, cands: list[tuple[str, Array]], maxiter: int, starts: dict[str, float],
    tick: Callable[[], None], std: Sequence[str] = (), coarse: Optional[_Coarse] = None,
) -> _Run:
    """L-BFGS-B to convergence from the best-scoring start, then short guard runs (:func:`_guards`) that stop
    as soon as they join the best basin found so far; a guard that finds a better one is polished. When the
    first run ran out of iterations and ``coarse`` is given, one more run starts from ``coarse()`` (the optimum
    at about K/2 levels, resampled to K)."""
    scored = _scored(obj, par, cands) or [(math.inf, "equal gaps", par.equal_gaps())]
    tick()
    v0, name0, y0 = scored[0]
    scale = max(v0, 1e-300) if math.isfinite(v0) else 1.0
    y1, v1, ok1, msg1 = _lbfgs(obj, par, y0, scale, maxiter)
    starts[name0] = v1
    best: _Run = (v1, y1, ok1, msg1, name0)
    tick()
    guards = _guards(par, scored, std)
    for _, name, y in guards:
        y2, v2, ok2, msg2 = _lbfgs(obj, par, y, scale, _SCREEN_ITER, known=(par.levels(best[1]), best[0]))
        starts[name] = v2
        if v2 < best[0] * (1.0 - 1e-12):  # a better basin: polish it (J = 0 is the global minimum already)
            if v2 > 0.0:
                y2, v2, ok2, msg2 = _lbfgs(obj, par, y2, max(v2, 1e-300), maxiter)
            best = (v2, y2, ok2, msg2, name)
    stalled = not ok1 and not best[2] and any(w in msg1.upper() for w in _RUN_LIMITS)
    if coarse is not None and (stalled or _ladder(par.levels(best[1]))):
        descended = [par.levels(y) for y in [y0] + [g[2] for g in guards]]
        best = _from_coarse(obj, par, coarse, maxiter, starts, best, descended)
    tick()
    return best


def _ladder(l: Array) -> bool:
    """Whether the levels ``l`` (log-SNR) hold a near-duplicate ladder: a finite gap below :data:`_LADDER_GAP`
    times the mean finite gap."""
    with np.errstate(invalid="ignore"):
        gaps = np.abs(np.diff(l))
    gaps = gaps[np.isfinite(gaps)]
    return gaps.size > 1 and float(gaps.min()) < _LADDER_GAP * float(gaps.mean())


def _from_coarse(obj: _Objective, par: _Gaps, coarse: _Coarse, maxiter: int,
                 starts: dict[str, float], best: _Run, descended: Sequence[Array]) -> _Run:
    """``best``, or the run from the coarse optimum ``coarse()`` resampled to K levels when that one is lower
    (break-test of 7 December: dpmpp_2m, K = 20, KL on builtin:natural-patches crawled 2,000 iterations into a
    near-duplicate ladder at 8.2e-6; from the K = 10 optimum it converges to 2.2e-8). Not run from a start within
    ``_DISTINCT`` of one already ``descended``."""
    got = coarse()
    if got is None:
        return best
    ab, n_evaluations, n_gradients = got
    obj.n_evaluations += n_evaluations  # (the K // 2 search is part of this one's work)
    obj.n_gradients += n_gradients
    l = _resample(ab, par.K)
    if l is None:
        return best
    name, y0 = f"the K={np.size(ab)} optimum", par.from_levels(l)
    if any(_max_diff(par.levels(y0), d) <= _DISTINCT for d in descended):
        return best
    v0 = obj.value_levels(par.levels(y0))
    if not math.isfinite(v0):
        return best
    y, v, ok, msg = _lbfgs(obj, par, y0, max(v0, 1e-300), maxiter)
    starts[name] = v
    return (v, y, ok, msg, name) if v < best[0] else best


def _parametrise(box: "_Box", pairs: Sequence[int], ratio: float) -> Any:
    """The levels of the search in ``box`` as free parameters, with the step-ratio cap ``ratio`` on the steps
    ``pairs``: :class:`_ZeroFirst` for a first level of pure noise, else :func:`_gaps`."""
    if box.lf == -math.inf and box.K > 1:
        return _ZeroFirst(box.K, box.ll, box.lo, box.hi, pairs, ratio)
    return _gaps(box.K, box.lf, box.ll, box.lo, box.hi, pairs, ratio)


def _other_cap(obj: _Objective, box: "_Box", par: Any, cands: list[tuple[str, Array]], maxiter: int,
               starts: dict[str, float], std: Sequence[str], best: _Run) -> _Run:
    """``best``, or better: a multistep sampler's search repeated with the other side of the step-ratio cap (none
    when one applies, else :data:`MAX_STEP_RATIO`), its optimum projected onto this search's cap and descended.

    The cap reshapes the paths of the descents, not only the set they may reach: a basin the capped search cannot
    find from its starts may meet the cap (break-test of 7 December: dpmpp_2m, K = 4, W2 on six modes 1e2 ... 1e-3
    ended at 0.0296 under the default cap, whose own feasible optimum 0.0068 the uncapped search finds), and the
    uncapped search may miss a basin the capped one finds (dpmpp_2m_sde, K = 5: 3.3e-4 against 4.1e-6)."""
    if not box.history:
        return best
    pairs, ratio = ((), math.inf) if box.pairs else (box.history, MAX_STEP_RATIO)
    twin = _parametrise(box, pairs, ratio)
    if not (par.capped or twin.capped):  # no capped step among the free gaps: the same search
        return best
    twin_cands = [(name, twin.from_levels(par.levels(y))) for name, y in cands]
    v, y, ok_twin, _, _ = _descend_best(obj, twin, twin_cands, max(_SCREEN_ITER, maxiter // _TWIN_SHARE), {},
                                        lambda: None, std=std)
    name = "the search without the step-ratio cap" if box.pairs else f"the search under the cap {MAX_STEP_RATIO:g}"
    y0 = par.from_levels(twin.levels(y))
    v0 = obj.value_levels(par.levels(y0))
    if not (math.isfinite(v0) and v0 < best[0] * (1.0 - 1e-12)):
        return best
    y1, v1, ok, msg = _lbfgs(obj, par, y0, max(v0, 1e-300), maxiter) if v0 > 0.0 else (y0, v0, True, "J = 0")
    if not ok and ok_twin and msg.startswith("ABNORMAL"):  # nothing lower near the other search's converged optimum
        ok, msg = True, f"converged ({name} converged there; L-BFGS-B here: {msg})"
    starts[name] = v1
    return (v1, y1, ok, msg, name) if v1 < best[0] else best


def _multistart(
    obj: _Objective, par: _Gaps, cands: list[tuple[str, Array]], maxiter: int, starts: dict[str, float],
    tick: Callable[[], None],
) -> _Run:
    """Plain multi-start search: a short run from every start, the best ``_N_POLISH`` polished."""
    finite = [v for v, _, _ in _scored(obj, par, cands)]
    scale = max(min(finite) if finite else 1.0, 1e-300)
    tick()
    screened = []
    for name, y in cands:
        y1, v1, ok1, msg1 = _lbfgs(obj, par, y, scale, _SCREEN_ITER)
        starts[name] = v1
        screened.append((v1, name, y1))
    screened.sort(key=lambda t: t[0])
    tick()
    polished: list[_Run] = []
    for v1, name, y1 in screened[:_N_POLISH]:
        if v1 <= 0.0:  # J = 0 is the global minimum: nothing to polish
            polished.append((v1, y1, True, "converged (the divergence is 0)", name))
            continue
        y2, v2, ok, msg = _lbfgs(obj, par, y1, max(v1, 1e-300), maxiter)
        polished.append((v2, y2, ok, msg, name))
    polished.sort(key=lambda t: t[0])
    tick()
    return polished[0]


# ---------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else str(x)


def _level_text(ab: float) -> str:
    """A level in 4 digits, or all the digits it takes not to read as 0 or 1 (0.999996 is not "1")."""
    short = f"{ab:.4g}"
    return short if float(short) not in (0.0, 1.0) or ab in (0.0, 1.0) else repr(float(ab))


def _constraint_text(endpoints: tuple[Optional[float], Optional[float]], on_grid: bool,
                     ratio: float = math.inf) -> str:
    first, last = endpoints
    parts = []
    if first is not None:
        parts.append(f"first level alpha_bar = {_level_text(first)}")
    if last is not None:
        parts.append(f"last level alpha_bar = {_level_text(last)}")
    if on_grid:
        parts.append("levels on the training grid")
    if ratio < math.inf:
        parts.append(f"no log-SNR step over {ratio:g}x the one before it (max_step_ratio)")
    return ", ".join(parts) if parts else "none"


@dataclass
class OptimizeResult:
    """Outcome of :func:`optimize_schedule`.

    Attributes
    ----------
    alpha_bar : ndarray, shape (K,)
        Optimised levels, strictly increasing in [0, 1) (0 only as a first level fixed by ``endpoints``),
        noisiest first (grid levels with ``grid``).
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
        when given, plus ``"grid-leading"``, ``"grid-trailing"``, ``"grid-linspace"``: diffusers'
        timestep spacings on that grid, where no named schedule has the same levels); schedules that
        cannot be built (e.g. levels colliding on the grid) are absent.
    baseline_schedules : dict[str, ndarray]
        Their levels.
    feasible : dict[str, bool]
        For every baseline, whether it meets the endpoint constraints of the optimisation (its first
        and last level equal the fixed ones; with ``grid``, on the grid). The optimised schedule is
        never worse than a feasible baseline; an infeasible one is not a fair comparison (the
        optimiser was not allowed its levels) and is marked "†" in tables.
    kl, w2 : float
        Unweighted ``KL(data || generated)`` and ``W2`` (not squared) of the result.
    n_evaluations : int
        Objective evaluations (value + gradient, or value alone: baselines, scored starts, grid search).
    n_gradient_evaluations : int
        Of those, the ones with a gradient (one forward and one adjoint sweep each).
    success : bool
        Whether the best local run converged (L-BFGS-B's criterion) or the grid search finished.
    message : str
    steps, sampler, divergence, init : problem settings.
    eta : float or None
        The sampler's ``eta`` as run (DDIM's, or the ancestral/SDE sampler's own; None for samplers without one).
    variance : str or None
        DDPM's injected variance as run (None for other samplers).
    settings : dict
        Every parameter and option of the sampler as run (its library defaults filled in): pass
        ``**settings`` to :func:`symsched.output_spectrum` / :func:`schedule_output` to reproduce the numbers.
    endpoints : (float or None, float or None)
        The endpoints used (defaults resolved; snapped to the grid when ``grid`` was given).
    starts : dict[str, float]
        Objective after the L-BFGS-B run from each start that was run (diagnostics).
    at_bound : (bool, bool)
        Whether the free first / last level of a continuous search (no ``grid``) ended at the search's log-SNR
        bound: the optimum may lie beyond it, so that end is not determined by the data (e.g. white noise already
        matches a flat spectrum); :attr:`message` says the same. Fix ``endpoints`` to go beyond.
    weighted : bool
        Whether ``weights`` were given (``value`` and ``baselines`` are then the weighted objective).
    max_step_ratio : float
        The cap on ``h_i / h_{i-1}`` (consecutive log-SNR steps) that the search held at :attr:`history_steps`
        (inf: none; see ``max_step_ratio`` of :func:`optimize_schedule`); a baseline beyond it is not feasible.
    history_steps : tuple of int
        Levels ``i`` whose step reuses an earlier denoiser output (multistep samplers; empty for the others).
    indifferent : bool
        Whether every schedule scores the same 0 (an all-zero spectrum, which the sampler reproduces exactly whatever
        the levels): the levels are then merely where the search stopped; :attr:`message` says the same.
    Source: :func:`optimize_schedule` (docs/model.md §8; ``scipy.optimize.minimize``, L-BFGS-B).
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
    eta: Optional[float]
    variance: Optional[str]
    divergence: str
    init: str
    endpoints: tuple[Optional[float], Optional[float]]
    starts: dict[str, float] = field(default_factory=dict)
    feasible: dict[str, bool] = field(default_factory=dict)
    n_gradient_evaluations: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    at_bound: tuple[bool, bool] = (False, False)
    indifferent: bool = False
    weighted: bool = False
    max_step_ratio: float = math.inf
    history_steps: tuple[int, ...] = ()

    @property
    def best_baseline(self) -> tuple[str, float]:
        """(name, value) of the best standard schedule, or ("", inf) if none could be built."""
        if not self.baselines:
            return "", math.inf
        name = min(self.baselines, key=lambda k: self.baselines[k])
        return name, self.baselines[name]

    @property
    def best_feasible_baseline(self) -> tuple[str, float]:
        """(name, value) of the best standard schedule meeting the constraints, or ("", inf) if none does."""
        fair = {k: v for k, v in self.baselines.items() if self.feasible.get(k, True)}
        if not fair:
            return "", math.inf
        name = min(fair, key=lambda k: fair[k])
        return name, fair[name]

    def meets_constraint(self, alpha_bar: ArrayLike) -> bool:
        """Whether levels ``alpha_bar`` (shape (K,), noisiest first) meet this optimisation's endpoint
        constraints, by the rule of :attr:`feasible` (a schedule that does not is marked "†": not a fair
        comparison). ValueError for invalid levels."""
        first, last = self.endpoints
        lf = None if first is None else float(_log_snr(first))
        ll = None if last is None else float(_log_snr(last))
        ab = as_levels(alpha_bar, "alpha_bar")
        return _meets(ab, lf, ll) and _ratio_ok(_log_snr(ab), self.history_steps, self.max_step_ratio)

    @property
    def constraint(self) -> str:
        """The constraints in words, e.g. "first level alpha_bar = 4.035e-05"."""
        return _constraint_text(self.endpoints, self.timesteps is not None, self.max_step_ratio
                                if self.history_steps else math.inf)

    def _rows(self) -> list[tuple[str, float, float]]:
        rows = [("optimised", self.value, 1.0)]
        for name, v in sorted(self.baselines.items(), key=lambda kv: kv[1]):
            rows.append((name + ("" if self.feasible.get(name, True) else " †"), v, _ratio_to_optimum(v, self.value)))
        return rows

    def summary(self) -> str:
        """Plain-text table: the optimised value and every baseline with its ratio to it."""
        what = ("weighted " if self.weighted else "") + {"kl": "KL(data||gen)", "kl-reverse": "KL(gen||data)",
                                                         "w2": "W2^2"}[self.divergence]
        head = (
            f"symsched schedule: {self.sampler}"
            + _settings_text(self.sampler, self.settings)
            + f", K={self.steps}, {what}, init={self.init}; {self.n_evaluations} evaluations; {self.message}"
        )
        width = max([len("schedule")] + [len(r[0]) for r in self._rows()])
        lines = [head, f"{'schedule':<{width}}  {'value':>14}  {'ratio':>10}"]
        for name, v, r in self._rows():
            lines.append(f"{name:<{width}}  {_fmt(v):>14}  {_fmt(r):>10}")
        if not all(self.feasible.get(n, True) for n in self.baselines):
            lines.append(f"† does not meet the constraint ({self.constraint}): not a fair comparison")
            lower = [n for n, v in self.baselines.items() if not self.feasible.get(n, True) and v < self.value]
            if lower:
                lines.append(f"  ({', '.join(lower)} reach lower values outside the constraint; "
                             "free endpoints, endpoints=(None, None) or --endpoints free, search there too)")
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
            f"<p>{self.sampler}, K={self.steps}, {'weighted ' if self.weighted else ''}divergence {self.divergence}: "
            f"value {_fmt(self.value)}</p>"
            f"<table><tr><th>schedule</th><th>value</th><th>ratio</th></tr>{rows}</table>"
            + ("" if all(self.feasible.get(n, True) for n in self.baselines)
               else f"<p>† does not meet the constraint ({self.constraint}): not a fair comparison</p>")
        )

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready dict (lists and floats; :func:`symsched._io.json_ready`: a zero-SNR level's log-SNR and sigma
        as "-inf" and "inf") of the schedule, its metrics and the baselines; for a flow-matching sampler also
        ``"flow_t"``, the levels as flow times t (noisiest first, FlowMatchEulerDiscreteScheduler's sigmas).
        ``"max_step_ratio"`` is null for a sampler with no step to cap (empty ``"history_steps"``)."""
        from ._io import json_ready

        # betas of the K-level process in training order (t = 0 least noisy), as diffusers' trained_betas
        betas = _sch.alpha_bar_to_betas(self.alpha_bar[::-1])
        return json_ready({
            "steps": self.steps,
            "sampler": self.sampler,
            "eta": self.eta,
            "variance": self.variance,
            "settings": {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
                         for k, v in self.settings.items()},
            "divergence": self.divergence,
            "init": self.init,
            "endpoints": list(self.endpoints),
            # null where no step extrapolates from an earlier output (the cap does not apply: explain.json says the
            # same), "inf" for a multistep run asked for without a cap
            "max_step_ratio": self.max_step_ratio if self.history_steps else None,
            "history_steps": list(self.history_steps),
            "alpha_bar": self.alpha_bar.tolist(),
            "log_snr": self.log_snr.tolist(),
            "sigmas": self.sigmas.tolist(),
            "betas": betas.tolist(),
            "betas_order": "training (t = 0 least noisy first; diffusers trained_betas for a K-step grid)",
            "timesteps": None if self.timesteps is None else [int(t) for t in self.timesteps],
            "value": self.value,
            "kl": self.kl,
            "w2": self.w2,
            "units": _units(self.divergence, self.weighted),
            "weighted": self.weighted,
            "baselines": dict(self.baselines),
            "baselines_meeting_constraints": [n for n in self.baselines if self.feasible.get(n, True)],
            "constraint": self.constraint,
            "n_evaluations": self.n_evaluations,
            "n_gradient_evaluations": self.n_gradient_evaluations,
            "success": self.success,
            "message": self.message,
            "at_bound": list(self.at_bound),
            "indifferent": self.indifferent,
        } | ({"flow_t": _sch.alpha_bar_to_flow_t(self.alpha_bar).tolist()} if self.sampler in FLOW_SAMPLERS else {}))


#: what the objective ``value`` (and every baseline) measures, per divergence: (name, factor, per-mode term)
_OBJECTIVE_TERMS = {"kl": ("KL(data || generated)", "1/2 ", "S/P - 1 - log(S/P)"),
                    "kl-reverse": ("KL(generated || data)", "1/2 ", "P/S - 1 - log(P/S)"),
                    "w2": ("W2 squared", "", "(sqrt(P) - sqrt(S))^2")}


def _objective_text(divergence: str, weighted: bool = False) -> str:
    """``"W2 squared = sum((sqrt(P) - sqrt(S))^2)"``; weighted: every per-mode term times its weight."""
    name, factor, term = _OBJECTIVE_TERMS[divergence]
    if weighted:
        return f"weighted {name} = {factor}sum(weights * ({term}))"
    return f"{name} = {factor}sum({term})"


def _units(divergence: str, weighted: bool = False) -> dict[str, str]:
    """The JSON's ``"units"``: ``value`` and ``baselines`` are the objective (weighted per mode when ``weights`` were
    given), ``kl``/``w2`` the unweighted metrics themselves (the report's schedule_w2_K5.json put W2 = 8.6 next to
    baselines of W2 squared = 88 without a word, audit of 5 December)."""
    objective = _objective_text(divergence, weighted)
    return {"value": objective, "baselines": f"{objective}, as value", "kl": _objective_text("kl"),
            "w2": "W2 = sqrt(sum((sqrt(P) - sqrt(S))^2)), the square root of W2 squared"}


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


@numpy_error_defaults
def schedule_output(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    sampler: str = "ddim",
    eta: Optional[float] = None,
    variance: Optional[str] = None,
    init: str = "white",
    **settings: Any,
) -> Array:
    """Output PSD P(S) of any sampler of :data:`SAMPLERS` for levels ``alpha_bar`` (VE ones via sigma = sqrt((1-ab)/ab)).

    Shapes: ``spectrum`` any shape, ``alpha_bar`` (K,); returns the shape of ``spectrum``. ``eta``, ``variance``
    and ``settings`` are the sampler's own (None: its default; :func:`symsched.sampler_info` lists them).
    A VE sampler runs on the float64 sigmas of the levels, as the optimiser and the exports give them (levels an ulp
    apart can then differ from :func:`symsched.output_spectrum` on ``alpha_bar``, which converts exactly inside the
    engine). ValueError for bad levels (naming ``alpha_bar``, also where two levels give one float64 sigma),
    spectrum or settings (:func:`symsched.output_spectrum`). Source: docs/model.md §5, §9
    (:func:`symsched.output_spectrum` / :func:`symsched.output_spectrum_ve`).
    """
    check_choice(sampler, "sampler", SAMPLERS)
    kw = _settings(sampler, eta, variance, settings)
    if sampler in VE_SAMPLERS:
        with named_alpha_bar():
            return output_spectrum_ve(spectrum, _run_sigmas(alpha_bar, sampler), sampler=sampler, init=init, **kw)
    return output_spectrum(spectrum, alpha_bar, sampler=sampler, init=init, **kw)


@contextmanager
def named_alpha_bar() -> Iterator[None]:
    """Errors of the engine run on the sigmas of the caller's ``alpha_bar`` name ``alpha_bar`` (break-test of
    7 December: "sigmas: sampler 'heun' is undefined at alpha_bar = 0" from schedule_metrics, fit_heuristics)."""
    try:
        yield
    except ValueError as exc:
        raise renamed(exc, "sigmas", "alpha_bar") from None


def _run_sigmas(alpha_bar: ArrayLike, sampler: str) -> Array:
    """The float64 sigmas ``sqrt((1 - ab) / ab)`` a VE sampler runs for the levels ``alpha_bar`` (as the optimiser
    and the exports give them), validated; ValueError naming ``alpha_bar`` (audit of 6 December: a decreasing
    schedule or two levels that float64 sigmas merge were refused as "sigmas ...", no argument of the caller's)."""
    ab = _api._vp_levels(alpha_bar)  # alpha_bar's own rule first
    try:
        return _api._ve_levels(_sch.alpha_bar_to_sigmas(ab))
    except ValueError as exc:
        raise ValueError(f"alpha_bar: sampler {sampler!r} runs on the float64 sigmas sqrt((1 - alpha_bar) / "
                         f"alpha_bar) of the levels, and there {exc}") from None


@numpy_error_defaults
def schedule_metrics(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    sampler: str = "ddim",
    eta: Optional[float] = None,
    variance: Optional[str] = None,
    init: str = "white",
    **settings: Any,
) -> dict[str, float]:
    """``{"kl": KL(data||gen), "kl_reverse": KL(gen||data), "w2": W2}`` of a schedule, unweighted.

    ``W2 = sqrt(sum (sqrt P - sqrt S)^2)`` (not squared); shapes as in :func:`schedule_output`. Evaluated in the
    ratio form of :func:`symsched.divergence_and_grad` (one trusted forward sweep), so the numbers agree with it
    and stay exact for modes whose output variance underflows float64 (a tiny spectrum's KL is not ``inf``).
    A KL beyond the float64 range (spectra near 1e308) is ``inf``; W2 is then still exact (a scaled sum).
    Raises ValueError (TypeError for a wrong type) as :func:`schedule_output`. Source: docs/model.md §6.
    """
    S = as_spectrum(spectrum)
    check_choice(sampler, "sampler", SAMPLERS)
    if sampler in VE_SAMPLERS:
        x, coord = _run_sigmas(alpha_bar, sampler), "sigma"
    else:
        x, coord = _api._vp_levels(alpha_bar), "alpha_bar"
    kw = _settings(sampler, eta, variance, settings)
    with named_alpha_bar():
        value = _api._schedule_divergences(S, x, coord, sampler, init, kw,
                                           lambda: schedule_output(S, alpha_bar, sampler=sampler, init=init, **kw))
    return {"kl": value["kl"], "kl_reverse": value["kl-reverse"], "w2": value["w2"]}


# ---------------------------------------------------------------------------------------------
# the optimiser
# ---------------------------------------------------------------------------------------------


#: The flow-matching schedules that are baselines when the first level is fixed at alpha_bar = 0 (t = 1) off a grid
#: (:func:`symsched.schedules.flow_schedule`: uniform t, and SD3's shift 3); the VP ones start elsewhere.
FLOW_BASELINES: tuple[str, ...] = ("flow-uniform", "flow-sd3")


def _standard(steps: int, grid: Optional[Array], first: Optional[float] = None) -> dict[str, Array]:
    """Every standard schedule (on ``grid`` when given), plus, on a grid, diffusers' three timestep
    spacings applied to that grid itself (``"grid-<spacing>"``, run as schedules: see
    :func:`symsched.probe.ddim_scheduler_note` for where ``DDIMScheduler`` runs another) unless a named
    schedule already has the same levels; off a grid with the first level fixed at 0, the flow-matching ones of
    :data:`FLOW_BASELINES` (the only ones that start there)."""
    out: dict[str, Array] = {}
    if grid is None and first == 0.0:
        for name in FLOW_BASELINES:
            try:
                out[name] = _sch.flow_schedule(name, steps)
            except ValueError:
                continue  # levels that merge in float64 at this K
    for name in _sch.STANDARD_SCHEDULES:
        try:
            out[name] = _sch.standard_schedule(name, steps, grid=grid)
        except ValueError:
            continue  # e.g. two levels snap to one grid timestep, or steps > grid length
    if grid is not None:
        for spacing in _sch.SPACINGS:
            try:
                ab = _sch.from_grid(grid, _sch.timesteps(steps, spacing=spacing, num_train_timesteps=grid.size))
            except ValueError:
                continue
            if not any(v.shape == ab.shape and np.array_equal(v, ab) for v in out.values()):
                out[f"grid-{spacing}"] = ab
    return out


def _meets(ab: Array, lf: Optional[float], ll: Optional[float]) -> bool:
    """Whether levels ``ab`` have the fixed first / last log-SNR (``None``: free)."""
    l = _log_snr(ab)
    if lf is not None and not (float(l[0]) == lf or abs(float(l[0]) - lf) <= _FEASIBLE_TOL):  # -inf == -inf
        return False
    return ll is None or abs(float(l[-1]) - ll) <= _FEASIBLE_TOL


def _round_to_grid(l: Array, grid_l_inc: Array, fixed: dict[int, int]) -> NDArray[np.int64]:
    """Nearest distinct indices j (increasing) into the increasing grid log-SNR; fixed {k: j} kept."""
    T, K = grid_l_inc.size, l.size
    pos = np.clip(np.searchsorted(grid_l_inc, l), 1, T - 1)
    with np.errstate(invalid="ignore"):  # -inf - -inf: a fixed zero-SNR first level, set below
        j = np.where(np.abs(l - grid_l_inc[pos - 1]) <= np.abs(grid_l_inc[pos] - l), pos - 1, pos).astype(np.int64)
    j[l <= grid_l_inc[0]] = 0  # (at or below the noisiest grid level, -inf included: that level)
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


@numpy_error_defaults
def optimize_schedule(
    spectrum: ArrayLike,
    steps: int,
    *,
    sampler: str = "ddim",
    eta: Optional[float] = None,
    variance: Literal["posterior", "beta"] = "posterior",
    divergence: Divergence = DEFAULT_DIVERGENCE,
    init: Literal["white", "exact"] = "white",
    endpoints: Optional[tuple[Optional[float], Optional[float]]] = None,
    grid: Optional[ArrayLike] = None,
    weights: Optional[ArrayLike] = None,
    seed: int = 0,
    restarts: int = 4,
    standard_starts: bool = True,
    warm_starts: Optional[Sequence[ArrayLike]] = None,
    baselines: Optional[Mapping[str, ArrayLike]] = None,
    max_step_ratio: Optional[float] = None,
    maxiter: int = 2000,
    progress: bool = False,
    **settings: Any,
) -> OptimizeResult:
    r"""Levels ``alpha_bar`` (K, noisiest first) minimising J = D(N(0,S) , N(0,P(S; alpha_bar))) for a sampler.

    ``J`` is the divergence of :func:`symsched.divergence_and_grad` (``"kl"`` = KL(data||gen),
    ``"kl-reverse"``, ``"w2"`` = W2 squared), with per-mode ``weights``. See the module docstring
    for the parametrisation, the starts, the grid search, the fair comparison with the standard
    schedules and the meaning of the endpoints.

    Parameters
    ----------
    spectrum : array_like, any shape
        Mode variances ``S >= 0`` (zero modes contribute 0; tiny ones make KL large, as they should).
    steps : int
        K, the number of levels (sampling steps; a final step to the clean level follows), at most
        ``MAX_STEPS`` = 10,000 (:mod:`symsched._validate`).
    sampler : str
        Any of :data:`symsched.SAMPLERS` (VP, VE and flow-matching samplers of diffusers and k-diffusion, by
        their libraries' names); VE and flow samplers run on the levels' ``sigmas`` / ``t``.
    eta : float or None
        The sampler's ``eta``: DDIM's stochasticity in [0, 1], or the ``eta`` of k-diffusion's ancestral and SDE
        samplers. None (default): the sampler's own default (DDIM 0, k-diffusion 1). Refused for samplers
        without an ``eta`` (other than 0).
    variance : {"posterior", "beta"}
        DDPM injected variance (``sampler="ddpm"`` only).
    **settings
        The sampler's other parameters and options by their libraries' names (``s_noise``, ``s_churn``,
        ``order``, ``solver_order``, ``solver_type``, ``lower_order_final``, ...; :func:`symsched.sampler_info`
        lists them with their defaults). The result records every setting as run (:attr:`OptimizeResult.settings`).
    divergence : {"kl", "kl-reverse", "w2"}
        Default :data:`DEFAULT_DIVERGENCE`.
    init : {"white", "exact"}
        Start from white noise (what samplers do) or from the exact noisy marginal.
    endpoints : None or (first, last)
        Each a level (fixed) or None (free): the first in [0, 1) (0: pure noise, zero terminal SNR), the
        last in (0, 1). ``None``: first level fixed at the noisiest
        level of ``grid`` (or of the 1000-step linear DDPM grid; for a flow-matching sampler without ``grid``, at
        0: pure noise, t = 1, where its scheduler starts), last free. With ``grid`` a fixed
        level is moved to the nearest grid level (in log-SNR); a first level 0 needs a grid whose noisiest
        level is 0 (zero terminal SNR), else ValueError.
    grid : array_like, shape (T,), optional
        Training-order ``alphas_cumprod`` (strictly decreasing in t): choose K of its levels.
    weights : array_like, shape of ``spectrum``, optional
        Non-negative per-mode weights of the objective.
    seed : int
        Seed of the random starts (the result is deterministic for a given seed).
    restarts : int
        Number of random starts (besides equal gaps, the tangent-law and the standard schedules).
    standard_starts : bool
        Also start from equal gaps, the tangent-law and the standard schedules (default): every start
        is scored by its value, and L-BFGS-B runs from the best ones. ``False`` leaves only the
        ``restarts`` random starts and the ``warm_starts`` and runs from every one of them (a plain
        multi-start search, e.g. to benchmark against; ValueError when that leaves no start).
    warm_starts : sequence of array_like, optional
        Further start schedules ``alpha_bar`` of any length (e.g. the optimum at a neighbouring K,
        or for another divergence), resampled to K levels in log-SNR and projected onto the constraints; with
        ``grid`` the grid search also starts from each, rounded to the grid, so the result is never worse than a warm
        start of K grid levels that meets the constraints. A start that cannot be resampled is not used: one level
        for K >= 2, or several for K = 1 (no one level stands for them).
        At most ``MAX_ENTRIES`` = 100 schedules (each a run of the optimiser); more are refused without reading
        further.
    baselines : mapping of str to array_like, optional
        Further named schedules of K levels (noisiest first, e.g. your model's own) to compare with, scored like the
        standard ones (:attr:`OptimizeResult.baselines`, fair when they meet the constraints) and used as starts.
    max_step_ratio : float or None
        For a sampler that reuses earlier denoiser outputs (multistep: ``dpmpp_2m``, ``dpmpp_2m_sde``,
        ``dpmpp_3m_sde``, ``lms``, ``dpmsolver_multistep``, ``unipc_multistep``, ``deis_multistep``), the largest
        ratio ``h_i / h_{i-1}`` of a log-SNR step to the one before it wherever the step extrapolates from that
        earlier output. None (default): :data:`MAX_STEP_RATIO` = 5 for those samplers (about as far as the standard
        schedules go: see the README for the few beyond it, which are then not feasible), none for the others;
        ``math.inf``: no cap, the exact-denoiser optimum. Why: with the exact denoiser a tiny step before a large
        one buys a derivative for free, and the search takes it (on Stable Diffusion's grid, DPM-Solver++ at
        K = 8: timesteps 999, 998, 997, 268, ...), but the extrapolation multiplies a learned denoiser's error by
        about the ratio: diffusers' own scheduler with an epsilon error of 1e-2 then gave output errors up to 140
        against 0.04 for its default spacing (README, "Multistep samplers"). A float > 1. A sampler that
        reuses no earlier output (``ddim``, ``euler``, ...) has no step to cap, so it meets any cap as it is: the
        result is that of no cap (:attr:`OptimizeResult.max_step_ratio` inf, ``history_steps`` empty), so that
        one cap serves a loop over samplers. With ``standard_starts``, the search of a multistep sampler also runs
        on the other side of the cap (none, or the default 5) and descends from that optimum projected onto this
        cap when it is lower there: the cap reshapes the descents' paths (README, "both sides of the cap").
    maxiter : int
        L-BFGS-B iteration limit of the runs to convergence; a first run that reaches it is followed by one
        from the optimum at K // 2 levels (K >= 4, with ``standard_starts``).
    progress : bool
        Show a tqdm progress bar (stderr).

    Returns
    -------
    OptimizeResult

    Raises
    ------
    ValueError
        Bad spectrum, steps, sampler, eta, variance, settings, divergence, init, endpoints, grid, weights,
        seed, restarts, warm_starts or max_step_ratio (the message names the argument and the rule);
        :class:`InfiniteObjective` (a ValueError) when the divergence is +inf at the start: KL with a zero mode
        that the sampler leaves noisy (DEIS, ``final_sigmas_type="sigma_min"``), infinite for every schedule, or at
        the only schedule the endpoints allow (KL of K = 1 from pure noise, whose deterministic step outputs P = 0).
    TypeError
        A setting of the wrong type (e.g. ``eta="0.5"``).

    Source: the objective is :func:`symsched.divergence_and_grad`; the search is SciPy's L-BFGS-B (Byrd et al.
    1995) in log-SNR gaps (module docstring).
    """
    params = dict(locals())  # (its parameters: no other local exists yet)
    args, opts = _prepare(**params)
    # single-threaded BLAS for the whole search: L-BFGS-B's and the recursion's tiny vector operations
    # stall when a threaded BLAS competes for a loaded machine's cores (several times slower)
    with threadpool_limits(limits=1, user_api="blas"):
        return _optimize(*args, coarse=_coarse_search(params), **opts)


def _coarse_helps(par: Any) -> bool:
    """Whether the problem at K // 2 levels has a free level to optimise and resamples to K levels: not when the
    endpoints fix all of them (its optimum would be equal gaps), nor a pure-noise first level with one other."""
    half, zero_first = par.K // 2, isinstance(par, _ZeroFirst)
    return half - int(zero_first or par.first_fixed) - int(par.last_fixed) >= 1 and (half >= 3 or not zero_first)


def _coarse_search(params: dict[str, Any]) -> Optional[_Coarse]:
    """The fallback start of :func:`_descend_best`: a function giving the optimum of the same problem at K // 2
    levels (itself with this fallback; a warm start of K // 2 levels instead, e.g. the one ``compare_schedules``
    passes) and the evaluations it took, or None where that problem is refused; None below ``_COARSE_MIN_STEPS``
    and for the plain multi-start search."""
    K = int(params["steps"])
    if K < _COARSE_MIN_STEPS or not params["standard_starts"]:
        return None

    def run() -> Optional[tuple[Array, int, int]]:
        half = {**params, "steps": K // 2, "baselines": None, "progress": False}
        try:
            args, opts = _prepare(**half)
            known = [ab for ab in args[-1] if ab.size == K // 2]  # (args[-1]: the warm starts, checked)
            if known:
                return known[0], 0, 0
            res = _optimize(*args, coarse=_coarse_search(half), **opts)
        except ValueError:  # e.g. a sampler that takes more steps, or endpoints that fix all K // 2 levels
            return None
        return res.alpha_bar, res.n_evaluations, res.n_gradient_evaluations

    return run


def _prepare(spectrum: Any, steps: Any, sampler: Any, eta: Any, variance: Any, divergence: Any, init: Any,
             endpoints: Any, grid: Any, weights: Any, seed: Any, restarts: Any, standard_starts: Any, warm_starts: Any,
             baselines: Any, max_step_ratio: Any, maxiter: Any, progress: Any, settings: dict[str, Any]
             ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """:func:`optimize_schedule`'s arguments checked (ValueError / TypeError as it documents), as ``_optimize``'s
    positional and keyword arguments."""
    S = as_spectrum(spectrum)
    K = _check_int(steps, "steps", 1, MAX_STEPS)
    eta = _check_sampler_args(sampler, eta, variance, settings)
    plan = _check_steps_for(sampler, K, eta, variance, settings)
    check_choice(divergence, "divergence", DIVERGENCES)
    check_choice(init, "init", INITS)
    seed = as_int(seed, "seed", 0, rule="an integer >= 0")  # any size: numpy.random.default_rng takes every non-negative integer
    restarts = _check_int(restarts, "restarts", 0)
    maxiter = _check_int(maxiter, "maxiter", 1)
    progress, standard_starts = as_bool(progress, "progress"), as_bool(standard_starts, "standard_starts")
    warm = _check_warm_starts(warm_starts)
    if not standard_starts and restarts < 1 and not any(_resample(ab, K) is not None for ab in warm):
        raise ValueError("restarts must be >= 1 when standard_starts=False and no warm start resamples to K levels "
                         "(no start left; a warm start needs K levels or two finite ones)")
    extra_baselines = _check_baselines(baselines, K)
    w = check_weights(weights, S)
    g = None if grid is None else _check_grid(grid, K, sampler, eta)
    first, last = _check_endpoints(endpoints, K, g, sampler)
    pairs = _history_pairs(plan, K)
    ratio = _check_step_ratio(max_step_ratio, pairs)

    return (S, K, w, g, first, last, warm), dict(
        sampler=sampler, eta=eta, variance=variance, divergence=divergence, init=init, seed=seed, restarts=restarts,
        standard_starts=standard_starts, maxiter=maxiter, progress=progress, extra=settings,
        extra_baselines=extra_baselines, pairs=pairs, ratio=ratio)


def check_arguments(spectrum: ArrayLike, steps: int, **kw: Any) -> None:
    """Run every check of ``optimize_schedule(spectrum, steps, **kw)`` and nothing else (no optimisation): the
    ValueError / TypeError it would raise, raised now. A batch of optimisations (:func:`symsched.sweep`,
    ``explain``, ``resolution_law``) checks every task this way before starting any."""
    bound = inspect.signature(optimize_schedule).bind(spectrum, steps, **kw)
    bound.apply_defaults()
    _prepare(**bound.arguments)


def _check_baselines(baselines: Optional[Mapping[str, ArrayLike]], K: int) -> dict[str, Array]:
    """``baselines`` as named levels of K entries each (ValueError / TypeError naming the entry otherwise)."""
    if baselines is None:
        return {}
    if not isinstance(baselines, Mapping):
        raise ArgumentTypeError(f"baselines must be a mapping of names to schedules alpha_bar, not "
                                f"{type(baselines).__name__}")
    out: dict[str, Array] = {}
    for name, ab in baselines.items():
        if not isinstance(name, str) or not name or name == "optimised":
            raise ValueError(f"baselines: a name must be a non-empty string other than 'optimised' (got {name!r})")
        levels = as_levels(ab, f"baselines[{name!r}]")
        if levels.size != K:
            raise ValueError(f"baselines[{name!r}] must have steps = {K} levels (got {levels.size})")
        out[name] = levels
    return out


def check_weights(weights: Optional[ArrayLike], S: Array) -> Optional[Array]:
    """``weights`` as :func:`optimize_schedule` takes them (None stays None): real, finite, >= 0, of the spectrum's
    shape, some positive; ValueError naming ``weights`` otherwise."""
    if weights is None:
        return None
    w = as_spectrum(weights, "weights", "per-mode weights w >= 0")
    check_same_shape(w, S, "weights", "spectrum")
    if not np.any(w > 0):
        raise ValueError("weights must give some mode a positive weight (all zero: every schedule scores 0 and "
                         "there is nothing to optimise)")
    return w


def _optimize(
    S: Array, K: int, w: Optional[Array], g: Optional[Array], first: Optional[float], last: Optional[float],
    warm: list[Array], *, sampler: str, eta: Optional[float], variance: str, divergence: str, init: str, seed: int,
    restarts: int, standard_starts: bool, maxiter: int, progress: bool, extra: Optional[dict[str, Any]] = None,
    extra_baselines: Optional[dict[str, Array]] = None, pairs: tuple[int, ...] = (), ratio: float = math.inf,
    coarse: Optional[_Coarse] = None,
) -> OptimizeResult:
    """The search behind :func:`optimize_schedule` (arguments validated; the room the endpoints leave is
    checked by ``_Box``, before any work on the modes)."""
    extra_baselines = extra_baselines or {}
    std = _standard(K, g, first)
    clash = sorted(set(std) & set(extra_baselines))
    if clash:
        raise ValueError(f"baselines: {clash[0]!r} is the name of a standard schedule already compared (choose "
                         "another name)")
    std.update(extra_baselines)
    box = _Box(K, first, last, g, std, pairs, ratio)
    obj = _Objective(S, w, sampler=sampler, eta=eta, variance=variance, divergence=divergence, init=init,
                     extra=extra)
    baselines: dict[str, float] = {}
    feasible: dict[str, bool] = {}
    bar = None
    if progress:  # (from the baselines on: the first evaluations build the kernels, seconds on an empty cache)
        from tqdm.auto import tqdm

        bar = tqdm(total=4, desc=f"optimize K={K}", unit="stage", leave=False)
        obj.on_evaluation = _evaluation_counter(bar, obj)

    def tick() -> None:
        if bar is not None:
            bar.update()

    messages: list[str] = []
    starts: dict[str, float] = {}
    try:
        for name, ab in std.items():
            baselines[name] = obj.value_ab(ab)
            feasible[name] = _meets(ab, box.lf, box.ll) and _ratio_ok(_log_snr(ab), box.pairs, box.ratio)
        par = _parametrise(box, box.pairs, box.ratio)
        determined = par.determined or (K == 1 and box.lf is not None)
        if determined:
            l_best = np.array([box.lf]) if K == 1 and box.lf is not None else par.levels(np.zeros(max(par.m, 1)))
            success, messages = True, ["levels fully determined by the endpoints"]
        else:
            cands = _candidates(par, obj, std, warm, standard_starts=standard_starts, restarts=restarts, seed=seed)
            if standard_starts:
                run = _descend_best(obj, par, cands, maxiter, starts, tick, std=tuple(std),
                                    coarse=coarse if _coarse_helps(par) else None)
                run = _other_cap(obj, box, par, cands, maxiter, starts, tuple(std), run)
            else:
                run = _multistart(obj, par, cands, maxiter, starts, tick)
            _, y_best, success, msg, from_name = run
            l_best = par.levels(y_best)
            messages = [f"L-BFGS-B from {from_name!r}: {msg}"]
        if g is not None:
            ab_best, best_val, timesteps, note = _grid_phase(obj, box, l_best, std, baselines, feasible, warm)
        else:
            ab_best, best_val, note = _continuous_result(obj, box, l_best, first, last, std, baselines, feasible)
            timesteps = None
        messages += [note] if note else []
        if determined and best_val == math.inf and not obj.refusals:  # (a refusal is reported below, as it is)
            raise InfiniteObjective(
                "divergence: the endpoints fix every level and the objective is +inf there (KL of a mode with "
                "S = 0 left with P > 0, or P = 0 where S > 0: one deterministic step from pure noise outputs P = 0); "
                "use divergence='w2', free an endpoint, or take more steps")
        indifferent = not np.any(obj.S[obj.w > 0]) and bool(baselines) and all(v == 0.0 for v in baselines.values()) \
            and best_val == 0.0
        if indifferent:
            messages.append(ALL_ZERO_NOTE.format(sampler=sampler))
        messages += [n for n in (_gradient_note(obj, ab_best),) if n]
        if obj.refusals:
            if not math.isfinite(best_val):
                if obj.beyond_float64 == len(obj.refusals):  # no trial had a value in float64: nothing to descend
                    example, advice = (("W2 squared of modes near 1e308", "drop or rescale those modes")
                                       if obj.divergence == "w2" else
                                       ("KL ~ S / (2P) of modes far below 1e-300",
                                        "use divergence='w2' or drop those modes"))
                    raise InfiniteObjective(
                        f"divergence: the {obj.divergence!r} divergence of this spectrum lies beyond the float64 range "
                        f"for every schedule the search tried (first: {obj.refusals[0]}; e.g. {example}); {advice}")
                if obj.refusals[0].startswith(("weights:", "spectrum:")):  # the data, not the levels, is the cause
                    raise ValueError(f"{obj.refusals[0]} (for every schedule the search tried)")
                where = "endpoints: " if first == 0.0 else ""
                first_refusal = re.sub(r"^(sigmas|alpha_bar): ", "", obj.refusals[0])  # (the trial's, not the caller's)
                raise ValueError(f"{where}the sampler {sampler!r} refuses every schedule the search tried: "
                                 f"{first_refusal}")
            messages.append(f"{len(obj.refusals)} trial schedule(s) refused by the engine were treated as "
                            f"infeasible (first: {obj.refusals[0]})")
        tick()
    finally:
        if bar is not None:
            bar.close()

    best_val = obj.unscaled(best_val, strict=True)  # the search's values, in the user's units
    baselines = {k: obj.unscaled(v) for k, v in baselines.items()}
    starts = {k: obj.unscaled(v) for k, v in starts.items()}
    return _result(
        S, ab_best, best_val, box, obj, timesteps=timesteps, baselines=baselines, feasible=feasible, std=std,
        success=success, messages=messages, starts=starts, endpoints=(first, last), g=g, indifferent=indifferent,
    )


def _evaluation_counter(bar: Any, obj: "_Objective", interval: float = 0.5) -> Callable[[], None]:
    """A callback that shows the objective's evaluation count in ``bar``'s postfix, redrawn at most every
    ``interval`` seconds (audit of 6 December: the four-stage bar sat at 0 % for 6.5 s of an 11.7 s run)."""
    import time

    last = [0.0]

    def show() -> None:
        now = time.monotonic()
        if now - last[0] >= interval:
            last[0] = now
            bar.set_postfix_str(f"{obj.n_evaluations} evaluations", refresh=True)

    return show


#: the start of the note when divergence_and_grad refuses the returned schedule (the symsched optimize CLI prints it)
GRADIENT_NOTE = "divergence_and_grad refuses the gradient at this optimum"
GRADIENT_NOTE_END = "fewer steps give a schedule every function evaluates"


def _gradient_note(obj: _Objective, ab: Array) -> Optional[str]:
    """A note when :func:`symsched.divergence_and_grad` refuses the returned schedule although its value is known.

    The search scores trial schedules by value (output_spectrum's checked path, which falls back to longdouble and
    mpmath) and by gradient (whose sweeps have no such fallback); an optimum that merges two levels (a log-SNR gap
    near the search's smallest, 1e-5) can make a multistep sampler's coefficients cancel in the gradient sweep, so
    that the public value-and-gradient call refuses what the optimiser returns. Said, with the closest gap."""
    if not np.all(np.isfinite(ab)) or ab.size < 2:
        return None
    try:
        x, coord = obj._levels(None if obj.ve else ab, _sch.alpha_bar_to_sigmas(ab) if obj.ve else None)
        # (the weights' scale leaves the sweeps alone: only a cancellation refusal is noted below)
        _api.grouped_value_and_grad(obj.grp, x, coord, obj.divergence, obj.sampler, obj.init, obj.settings)
        return None
    except ValueError as exc:
        if "coefficients cancel" not in str(exc):  # another refusal (e.g. weights beyond float64) is raised elsewhere
            return None
        gaps = np.diff(np.asarray(_log_snr(ab), dtype=np.float64))
        i = int(np.argmin(np.where(np.isfinite(gaps), gaps, np.inf)))  # (a zero-SNR first level: an infinite gap)
        return (f"{GRADIENT_NOTE} ({exc}); its value is right (output_spectrum's checked path). The closest levels, "
                f"{i} and {i + 1}, are {gaps[i]:.2g} apart in log-SNR: the optimum all but merges them (effectively "
                f"{ab.size - 1} steps); {GRADIENT_NOTE_END}")


def _check_between(first: Any, last: Any, lf: float, ll: float, K: int) -> None:
    """Fixed first and last levels leave room for the K - 2 levels between them: at least K - 2 float64 numbers lie
    strictly between the two (ValueError naming ``endpoints`` otherwise: two levels one ulp apart were refused only
    after the search, as "the sampler refuses every schedule the search tried")."""
    a, b = np.array([float(first), float(last)], dtype=np.float64).view(np.int64)  # positive: ordered as the floats
    if int(b) - int(a) - 1 < K - 2:
        plural = "s" if K > 3 else ""
        raise ValueError(f"endpoints: the fixed first and last levels (alpha_bar {float(first)!r} and {float(last)!r}, "
                         f"{ll - lf:.2g} apart in log-SNR) leave no room for {K - 2} distinct level{plural} between "
                         "them in float64; move them apart or take fewer steps")


def _check_on_grid(level: Optional[float], first: bool, grid_l_inc: Array) -> None:
    """ValueError naming the endpoint (``first``: endpoints[0], else endpoints[1]) of log-SNR ``level`` beyond the grid's finite levels by more
    than the grid's own outermost log-SNR gap on that side: snapped to the grid's end it would move silently (audit
    of 6 December: a first level alpha_bar = 1e-80, log-SNR -184, became the grid's 4.0e-5, log-SNR -10.1). Within
    that reach (a rounded copy of the end level) it is snapped to the nearest grid level, as any fixed level is."""
    finite = grid_l_inc[np.isfinite(grid_l_inc)]
    if level is None or not np.isfinite(level) or finite.size < 2:
        return
    lo_gap, hi_gap = finite[1] - finite[0], finite[-1] - finite[-2]
    name = "endpoints[0] (first level)" if first else "endpoints[1] (last level)"
    for beyond, end, gap, what in ((finite[0] - level, finite[0], lo_gap, "noisiest"),
                                   (level - finite[-1], finite[-1], hi_gap, "cleanest")):
        if beyond > gap:
            other = ("None for the grid's noisiest level (0: pure noise, on a zero-SNR grid)" if first
                     else "None to leave the last level free")
            raise ValueError(
                f"{name}: alpha_bar = {float(_alpha_bar(level)):.10g} (log-SNR {level:.4g}) lies beyond the grid's "
                f"{what} level alpha_bar = {float(_alpha_bar(end)):.4g} (log-SNR {end:.4g}); a fixed level is "
                f"snapped to the nearest grid level, and this one would move by {beyond:.3g} in log-SNR: pass a level "
                f"within the grid, or {other}")


class _Box:
    """The log-SNR interval [lo, hi] of the search, the fixed endpoints lf / ll and, on a grid, their indices; the
    step-ratio cap (``pairs``, ``ratio``: none unless both are given)."""

    def __init__(self, K: int, first: Optional[float], last: Optional[float], g: Optional[Array],
                 std: dict[str, Array], pairs: tuple[int, ...] = (), ratio: float = math.inf) -> None:
        self.K = K
        capped = bool(pairs) and ratio < math.inf  # the step-ratio cap: levels i with h_i <= ratio h_{i-1}
        self.pairs, self.ratio = (tuple(pairs), ratio) if capped else ((), math.inf)
        self.history = tuple(pairs)  # the sampler's steps that extrapolate, capped or not
        lf = None if first is None else float(_log_snr(first))
        ll = None if last is None else float(_log_snr(last))
        self.fixed_j: dict[int, int] = {}
        self.grid_l_inc: Optional[Array] = None
        self.grid_ab_inc: Optional[Array] = None
        if g is not None:
            grid_l_inc = _log_snr(g[::-1])  # increasing; index j <-> timestep T-1-j
            self.grid_l_inc = grid_l_inc
            self.grid_ab_inc = g[::-1]  # exact grid levels, increasing
            if lf == -math.inf and grid_l_inc[0] != -math.inf:  # pure noise has no nearest level on this grid
                raise ValueError("endpoints: the first level alpha_bar = 0 (pure noise) is not on grid, whose noisiest "
                                 "level is " + no_zero_level(g, "a zero-SNR grid (schedules.training_grid(..., "
                                                            "rescale_zero_snr=True))", "a first endpoint None"))
            _check_on_grid(lf, True, grid_l_inc)
            _check_on_grid(ll, False, grid_l_inc)
            if lf is not None:
                self.fixed_j[0] = 0 if lf == -math.inf else int(np.argmin(np.abs(grid_l_inc - lf)))
                lf = float(grid_l_inc[self.fixed_j[0]])
            if ll is not None:
                self.fixed_j[K - 1] = int(np.argmin(np.abs(grid_l_inc - ll)))
                ll = float(grid_l_inc[self.fixed_j[K - 1]])
            if len(self.fixed_j) == 2 and K > 1 and self.fixed_j[K - 1] - self.fixed_j[0] < K - 1:
                raise ValueError(
                    f"endpoints: the fixed first and last levels are {self.fixed_j[K - 1] - self.fixed_j[0]} grid "
                    f"steps apart, too close for {K} distinct grid levels"
                )
            self._check_room(K, g)
            finite = grid_l_inc[np.isfinite(grid_l_inc)]  # a zero-SNR grid level (-inf) is only ever a fixed first level
            lo, hi = float(finite[0]), float(grid_l_inc[-1])
        else:
            pool = [np.array(LOG_SNR_RANGE)] + [_log_snr(v) for v in std.values()]
            pool += [np.array([x]) for x in (lf, ll) if x is not None]
            allv = np.concatenate(pool)
            allv = allv[np.isfinite(allv)]
            lo, hi = max(float(allv.min()), -_HARD_RANGE), min(float(allv.max()), _HARD_RANGE)
            # one fixed end beyond the other end of the range: room for the K - 1 free levels on its side
            last_alone = ll is not None and (lf is None or lf == -math.inf)
            first_alone = lf is not None and lf != -math.inf and ll is None
            if K > 1 and (last_alone and ll < _LOWEST_LOG_SNR + 2 or first_alone and lf > _HARD_RANGE - 2):
                end, v = ("last", ll) if last_alone else ("first", lf)
                raise ValueError(
                    f"endpoints: the fixed {end} level (log-SNR {v:.4g}) leaves no room for the other {K - 1} levels "
                    f"in float64 (free levels lie between log-SNR {_LOWEST_LOG_SNR:g} and {_HARD_RANGE:g}): fix both "
                    "endpoints or move this one")
            if K > 2 and lf is not None and ll is not None and math.isfinite(lf):
                _check_between(first, last, lf, ll, K)
            if last_alone:
                lo = max(min(lo, ll - (K - 1)), _LOWEST_LOG_SNR)
            if first_alone:
                hi = min(max(hi, lf + (K - 1)), _HARD_RANGE)
        self.lf, self.ll = lf, ll
        self.lo = lo if lf is None or lf == -math.inf else min(lo, lf)
        self.hi = hi if ll is None else max(hi, ll)

    def _check_room(self, K: int, g: Array) -> None:
        """A single fixed end on the grid leaves at least K - 1 grid levels on its free side (ValueError otherwise)."""
        if K == 1 or len(self.fixed_j) != 1:
            return
        (i, j), = self.fixed_j.items()
        room = j if i == K - 1 else g.size - 1 - j  # grid levels noisier than a fixed last / cleaner than a first
        if room < K - 1:
            which, side = (("endpoints[1] (last level)", "noisier") if i == K - 1 else
                           ("endpoints[0] (first level)", "cleaner"))
            t = g.size - 1 - j  # the timestep of increasing grid index j
            raise ValueError(
                f"{which} snaps to the grid level alpha_bar = {float(g[t]):.6g} (timestep {t}), which has {room} "
                f"{side} grid level(s): too few for steps={K}; move it or use fewer steps"
            )


def _fair_best(baselines: dict[str, float], feasible: dict[str, bool]) -> Optional[str]:
    fair = [n for n in baselines if feasible[n] and math.isfinite(baselines[n])]
    return min(fair, key=lambda n: baselines[n]) if fair else None


def _at_bound(box: _Box, ab: Array, first: Optional[float], last: Optional[float]) -> tuple[bool, bool]:
    """Whether the free first / last level of a continuous search's optimum lies at the search's log-SNR bound
    (within 1e-3): the optimum may lie beyond it, so that end is not determined by the data."""
    if box.grid_l_inc is not None or not box.lo < box.hi:
        return False, False
    return (first is None and float(_log_snr(ab[0])) < box.lo + 1e-3,  # (at or beyond: float64 rounding near
            last is None and float(_log_snr(ab[-1])) > box.hi - 1e-3)  # alpha_bar = 1 can move a level past it)


def _nudge(l_target: float, toward: float) -> float:
    """The float64 level nearest ``l_target`` (log-SNR) on the side of ``toward`` (0: at or below it, 1: at or
    above it)."""
    a = float(_alpha_bar(np.array([l_target]))[0])
    lt = float(_log_snr(np.array([a]))[0])
    while (lt > l_target if toward == 0.0 else lt < l_target) and 0.0 < a < 1.0:
        a = float(np.nextafter(a, toward))
        lt = float(_log_snr(np.array([a]))[0])
    return a


def _cap_in_float64(ab: Array, box: _Box, free: list[int]) -> Array:
    """``ab`` with its free levels moved by the least float64 amount that keeps the step-ratio cap on the levels as
    returned (audit of 5 December: the search keeps it on log-SNR, but above log-SNR ~30 alpha_bar's float64
    spacing moves log-SNR by up to ~0.05, and h_6 / h_5 came back 1.053 under R = 1.05): for the first step beyond
    its cap, the level after it is lowered to the cap if free, else the level before it raised. ValueError naming
    max_step_ratio when float64 holds no such levels here."""
    R, pairs = box.ratio, box.pairs
    if not pairs or R == math.inf:
        return ab
    ab = ab.copy()
    for _ in range(8 * ab.size):
        l = _log_snr(ab)
        with np.errstate(invalid="ignore"):  # (-inf - -inf cannot occur: the levels increase)
            h = np.diff(l)
        beyond = _beyond_cap(h, pairs, R, 1e-12)
        if not beyond:
            return ab
        i = beyond[0]
        if i + 1 in free:  # lower level i + 1 to l_i + R h_{i-1}
            a = _nudge(l[i] + R * h[i - 1], 0.0)
            if not a > ab[i]:
                break
            ab[i + 1] = a
        elif i in free:  # raise level i until h_i <= R h_{i-1}: l_i >= (l_{i+1} + R l_{i-1}) / (1 + R)
            a = _nudge((l[i + 1] + R * l[i - 1]) / (1.0 + R), 1.0)
            if not a < ab[i + 1]:
                break
            ab[i] = a
        else:
            break
    raise ValueError(f"max_step_ratio: near alpha_bar = 1 float64's spacing moves log-SNR by up to ~0.05, and no "
                     f"nudge of the optimum's levels kept every log-SNR step within {R:g} times the one before it; "
                     "raise max_step_ratio, or fix a lower last level with endpoints")


def _continuous_result(
    obj: _Objective, box: _Box, l_best: Array, first: Optional[float], last: Optional[float],
    std: dict[str, Array], baselines: dict[str, float], feasible: dict[str, bool],
) -> tuple[Array, float, str]:
    """The optimum's levels (fixed endpoints exact, the step-ratio cap kept in float64) and value; a better feasible
    baseline wins outright."""
    ab_best = _alpha_bar(l_best)
    if first is not None:
        ab_best[0] = first
    if last is not None:
        ab_best[-1] = last
    free = [k for k in range(ab_best.size) if not (k == 0 and first is not None or k == ab_best.size - 1
                                                    and last is not None)]
    ab_best = _cap_in_float64(ab_best, box, free)
    value = obj.value_ab(ab_best)
    lo_hit, hi_hit = _at_bound(box, ab_best, first, last)
    edge = []
    if lo_hit:
        edge.append(f"first level at the log-SNR bound {box.lo:g} (fix endpoints to go beyond)")
    if hi_hit:
        edge.append(f"last level at the log-SNR bound {box.hi:g} (fix endpoints to go beyond)")
    note = "; ".join(edge)
    fair = _fair_best(baselines, feasible)
    if fair is not None and baselines[fair] < value:  # only possible at round-off: it was a start
        return std[fair].copy(), baselines[fair], f"the standard schedule {fair!r} meets the constraints and is best"
    return ab_best, value, note


def _nearest_within_cap(l: Array, j0: NDArray[np.int64], box: _Box) -> Optional[NDArray[np.int64]]:
    """Increasing grid indices within ``box``'s step-ratio cap nearest (least squares in log-SNR) to the levels
    ``l``, each taken within a window around its rounding ``j0`` (dynamic programming over consecutive pairs of
    levels, the cap being a condition on three consecutive ones); None when the windows hold no such schedule."""
    assert box.grid_l_inc is not None
    T, K, R = box.grid_l_inc.size, box.K, box.ratio
    w = max(4, min(64, 512 // K))
    cand = [np.array([box.fixed_j[k]]) if k in box.fixed_j else np.arange(max(0, j0[k] - w), min(T, j0[k] + w + 1))
            for k in range(K)]
    lv = [box.grid_l_inc[c] for c in cand]
    with np.errstate(invalid="ignore"):  # (-inf - -inf: a zero-SNR first level scores 0; -inf - finite: inf)
        cost = [np.nan_to_num((lv[k] - l[k]) ** 2, nan=0.0, posinf=np.inf) for k in range(K)]
    pairs = set(box.pairs)
    D = cost[0][:, None] + cost[1][None, :] + np.where(cand[1][None, :] > cand[0][:, None], 0.0, np.inf)
    back = []
    for k in range(1, K - 1):
        ok = cand[k + 1][None, None, :] > cand[k][None, :, None]
        if k in pairs:
            with np.errstate(invalid="ignore", over="ignore"):
                ok = ok & ~((lv[k + 1][None, None, :] - lv[k][None, :, None])
                            > R * (lv[k][None, :, None] - lv[k - 1][:, None, None]))
        M = D[:, :, None] + np.where(ok, 0.0, np.inf)
        back.append(np.argmin(M, axis=0))
        D = np.min(M, axis=0) + cost[k + 1][None, :]
    if not np.isfinite(D.min()):
        return None
    a, b = np.unravel_index(int(np.argmin(D)), D.shape)
    idx = [int(b), int(a)]
    for bk in reversed(back):
        idx.append(int(bk[idx[-1], idx[-2]]))
    idx.reverse()
    return np.array([cand[k][i] for k, i in enumerate(idx)], dtype=np.int64)


def _feasible_within_cap(l: Array, box: _Box) -> Optional[NDArray[np.int64]]:
    """Increasing grid indices within ``box``'s step-ratio cap, each level the nearest to ``l`` that still admits
    the rest; None exactly when no grid schedule between the endpoints meets the cap.

    Dynamic programming over (level k, grid index j): ``G[k, j]``, the largest step into level k at j of any
    feasible schedule of levels 0..k, decides feasibility (the cap only bounds a step by R times the one before it,
    so a larger step before never hurts); the walk back from the last level then keeps, at each level, the grid
    index nearest to ``l`` among those that reach it within the cap. O(K T^2) work: the fallback when the window of
    :func:`_nearest_within_cap` holds no schedule."""
    assert box.grid_l_inc is not None
    L, K, R, pairs = box.grid_l_inc, box.K, box.ratio, set(box.pairs)
    T = L.size
    with np.errstate(invalid="ignore"):  # -inf - -inf on the diagonal of a zero-SNR grid: masked by i < j below
        step = L[None, :] - L[:, None]  # step[i, j]: the log-SNR step from grid index i up to j
    step = np.where(np.arange(T)[:, None] < np.arange(T)[None, :], step, np.nan)
    G = np.full((K, T), -np.inf)
    G[0] = -np.inf if 0 in box.fixed_j else np.inf
    if 0 in box.fixed_j:
        G[0, box.fixed_j[0]] = np.inf  # nothing before the first level limits its step

    def reach(k: int, cols: Any = slice(None)) -> NDArray[np.bool_]:
        """Whether a feasible level k-1 at grid index i (rows) steps to level k at index j (columns)."""
        prev, s = G[k - 1][:, None], step[:, cols]
        with np.errstate(invalid="ignore", over="ignore"):
            ok = (prev > -np.inf) & (s > 0)
            return ok & (s <= R * prev) if k - 1 in pairs else ok

    for k in range(1, K):
        G[k] = np.where(reach(k), step, -np.inf).max(axis=0)
        if k in box.fixed_j:
            keep = G[k, box.fixed_j[k]]
            G[k] = -np.inf
            G[k, box.fixed_j[k]] = keep
    if not np.any(G[K - 1] > -np.inf):
        return None
    ends = np.flatnonzero(G[K - 1] > -np.inf)
    j = int(ends[np.argmin(np.abs(L[ends] - l[K - 1]))])
    idx, need = [j], 0.0  # need: the smallest step into the current level the step after it allows
    for k in range(K - 1, 0, -1):
        cand = reach(k, [j])[:, 0] & (step[:, j] >= need)
        i = np.flatnonzero(cand)
        with np.errstate(invalid="ignore"):
            i = int(i[np.argmin(np.nan_to_num(np.abs(L[i] - l[k - 1]), nan=0.0))])
        need = step[i, j] / R if k - 1 in pairs else 0.0
        idx.append(i)
        j = i
    return np.array(idx[::-1], dtype=np.int64)


def _grid_phase(
    obj: _Objective, box: _Box, l_best: Array, std: dict[str, Array], baselines: dict[str, float],
    feasible: dict[str, bool], warm: Sequence[Array] = (),
) -> tuple[Array, float, NDArray[np.int64], str]:
    """Round the continuous optimum to grid indices, then pattern-search from it, from the best feasible baseline and
    from every warm start (resampled to K levels, rounded to the grid onto the endpoints, when within the cap)."""
    assert box.grid_l_inc is not None and box.grid_ab_inc is not None
    T, g_inc = box.grid_l_inc.size, box.grid_ab_inc
    j0 = _round_to_grid(l_best, box.grid_l_inc, box.fixed_j)
    free = [k for k in range(box.K) if k not in box.fixed_j]
    searches = [("continuous optimum rounded", j0)]
    if not _ratio_ok(box.grid_l_inc[j0], box.pairs, box.ratio):  # rounding left the step-ratio cap
        jc = _nearest_within_cap(l_best, j0, box)
        if jc is None:
            jc = _feasible_within_cap(l_best, box)
        if jc is None:
            raise ValueError(f"max_step_ratio: no {box.K} grid levels between the endpoints keep every log-SNR step "
                             f"at most {box.ratio:g} times the one before it; raise max_step_ratio (math.inf: no "
                             "cap), free an endpoint or change steps")
        searches.append(("continuous optimum, nearest grid levels within max_step_ratio", jc))
    fair = _fair_best(baselines, feasible)
    if fair is not None:
        jj = (T - 1) - _sch.nearest_timesteps(std[fair], g_inc[::-1])  # increasing grid indices
        searches.append((f"grid {fair}", jj.astype(np.int64)))
    for i, ab in enumerate(warm):  # (break-test 7 December: a warm start on the grid beat the result)
        l_warm = _resample(ab, box.K)
        if l_warm is not None:
            jw = _round_to_grid(l_warm, box.grid_l_inc, box.fixed_j)
            if _ratio_ok(box.grid_l_inc[jw], box.pairs, box.ratio):
                searches.append((f"warm_starts[{i}]", jw))

    def value_j(j: NDArray[np.int64]) -> float:
        # levels beyond the step-ratio cap are infeasible, scored above every feasible value by how far beyond (so
        # that the search walks into the cap from a rounded optimum that left it: 1e300 (1 + excess))
        excess = _ratio_excess(box.grid_l_inc[j], box.pairs, box.ratio)
        return obj.value_ab(g_inc[j]) if excess <= 1e-9 else _BEYOND_CAP * (1.0 + excess)

    results = []
    for label, jj in searches:
        j_opt, v_opt, sweeps = _pattern_search(jj, free, value_j, T, value_j(jj))
        results.append((v_opt, label, j_opt, sweeps))
    results.sort(key=lambda t: t[0])
    best_val, label, j_best, sweeps = results[0]
    if not _ratio_ok(box.grid_l_inc[j_best], box.pairs, box.ratio):
        raise ValueError(f"max_step_ratio: the grid search found no {box.K} grid levels within the endpoints that keep "
                         f"every log-SNR step at most {box.ratio:g} times the one before it (closest: timesteps "
                         f"{[int(t) for t in (T - 1 - j_best)]}); raise max_step_ratio (math.inf: no cap), free an "
                         "endpoint or change steps")
    return g_inc[j_best], best_val, (T - 1 - j_best).astype(np.int64), f"grid search from {label}: {sweeps} sweeps"


def _result(
    S: Array, ab_best: Array, best_val: float, box: _Box, obj: _Objective, *, timesteps: Optional[NDArray[np.int64]],
    baselines: dict[str, float], feasible: dict[str, bool], std: dict[str, Array], success: bool,
    messages: list[str], starts: dict[str, float], endpoints: tuple[Optional[float], Optional[float]],
    g: Optional[Array], indifferent: bool,
) -> OptimizeResult:
    ab_best = np.asarray(ab_best, dtype=np.float64)
    sig = _sch.alpha_bar_to_sigmas(ab_best)  # (the sigmas its value and exports run: schedule_metrics, to_*)
    metrics = schedule_metrics(S, ab_best, sampler=obj.sampler, init=obj.init, **obj.settings)
    first, last = endpoints
    if g is not None:
        first = None if first is None else float(g[::-1][box.fixed_j[0]])
        last = None if last is None else float(g[::-1][box.fixed_j[box.K - 1]])
    return OptimizeResult(
        alpha_bar=ab_best, value=float(best_val), log_snr=_log_snr(ab_best), sigmas=np.asarray(sig, dtype=np.float64),
        timesteps=timesteps, baselines=baselines, baseline_schedules=std, kl=metrics["kl"], w2=metrics["w2"],
        n_evaluations=obj.n_evaluations, success=bool(success), message="; ".join(messages), steps=box.K,
        sampler=obj.sampler, eta=obj.settings.get("eta"), variance=obj.settings.get("variance"),
        divergence=obj.divergence, init=obj.init, endpoints=(first, last), starts=starts, feasible=feasible,
        n_gradient_evaluations=obj.n_gradients, settings=dict(obj.settings),
        at_bound=_at_bound(box, ab_best, *endpoints) if g is None else (False, False), indifferent=indifferent,
        weighted=obj.weighted, max_step_ratio=box.ratio, history_steps=box.history,
    )


# ---------------------------------------------------------------------------------------------
# comparison table
# ---------------------------------------------------------------------------------------------


#: Short display name of each divergence (tables, explain's console lines): :data:`symsched.api.DIVERGENCE_NAMES`.
DIVERGENCE_NAMES = _api.DIVERGENCE_NAMES
#: the objective each divergence minimises, as tables and figures name it (W2's objective is its square)
OBJECTIVE_NAMES = {"kl": "KL", "kl-reverse": "reverse KL", "w2": "W2²"}


@dataclass
class ComparisonTable:
    """KL and W2 of every standard schedule and the optimised one, for several step counts.

    ``rows``: one dict per (steps, schedule) with keys ``steps``, ``schedule``, ``kl``, ``w2``
    (W2 not squared) and ``feasible`` (whether the schedule meets the optimiser's endpoint
    constraints; see :attr:`OptimizeResult.feasible`). ``results``: the :class:`OptimizeResult` per
    step count. In the rendered tables the best value per column among the schedules meeting the
    constraints is bold, and a value of a schedule that does not meet them is marked "†".
    Source: :func:`compare_schedules` (docs/model.md §6, §8).
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

    @property
    def note(self) -> str:
        """The footnote explaining "†" (empty when every schedule meets the constraints)."""
        if all(r.get("feasible", True) for r in self.rows):
            return ""
        constraints = sorted({res.constraint for res in self.results.values()})
        return (f"† does not meet the optimised schedule's constraint ({'; '.join(constraints)}): "
                "not a fair comparison")

    def _cell(self, name: str, K: int, key: str) -> tuple[Optional[float], bool]:
        for r in self.rows:
            if r["schedule"] == name and r["steps"] == K:
                return float(r[key]), bool(r.get("feasible", True))
        return None, True

    def _grid(self) -> tuple[list[str], list[list[str]], list[list[bool]]]:
        header = ["schedule"] + [f"{m} (K={K})" for K in self.steps_list for m in ("KL", "W2")]
        body, best = [], []
        cols = [(K, key) for K in self.steps_list for key in ("kl", "w2")]
        mins = {}
        for K, key in cols:
            vals = [v for v, ok in (self._cell(n, K, key) for n in self.schedules) if v is not None and ok]
            mins[(K, key)] = min(vals) if vals else None
        for n in self.schedules:  # (the optimised row says what it minimises: its other column is not its aim)
            label = f"optimised for {DIVERGENCE_NAMES.get(self.divergence, self.divergence)}" \
                if n == "optimised" else n
            cells, flags = [label], [False]
            for K, key in cols:
                v, ok = self._cell(n, K, key)
                cells.append("–" if v is None else f"{v:.4g}" + ("" if ok else "†"))
                flags.append(v is not None and ok and v == mins[(K, key)])
            body.append(cells)
            best.append(flags)
        return header, body, best

    def to_markdown(self) -> str:
        """GitHub Markdown table, best value per column (among schedules meeting the constraints) in bold."""
        from ._markdown import md_table

        header, body, best = self._grid()
        rows = [[f"**{c}**" if f else c for c, f in zip(cells, flags)] for cells, flags in zip(body, best)]
        text = md_table(header, rows, ["---"] + ["---:"] * (len(header) - 1)).rstrip("\n")
        return text + ("\n\n" + self.note if self.note else "")

    def to_latex(self) -> str:
        """LaTeX ``tabular`` (booktabs), best value per column (among schedules meeting the constraints) in bold."""
        header, body, best = self._grid()

        lines = [
            r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
            r"\toprule",
            " & ".join(tex_text(h) for h in header) + r" \\",
            r"\midrule",
        ]
        for cells, flags in zip(body, best):
            lines.append(" & ".join(tex_bold(tex_text(c)) if f else tex_text(c) for c, f in zip(cells, flags)) + r" \\")
        lines.append(r"\bottomrule")
        if self.note:
            lines.append(r"\multicolumn{%d}{l}{\footnotesize %s} \\" % (len(header), tex_text(self.note)))
        lines.append(r"\end{tabular}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


@numpy_error_defaults
def compare_schedules(
    spectrum: ArrayLike,
    steps_list: Sequence[int] = (5, 10, 20, 50),
    *,
    sampler: str = "ddim",
    eta: Optional[float] = None,
    variance: Literal["posterior", "beta"] = "posterior",
    divergence: Divergence = DEFAULT_DIVERGENCE,
    init: Literal["white", "exact"] = "white",
    endpoints: Optional[tuple[Optional[float], Optional[float]]] = None,
    grid: Optional[ArrayLike] = None,
    weights: Optional[ArrayLike] = None,
    seed: int = 0,
    restarts: int = 4,
    warm_starts: Optional[Sequence[ArrayLike]] = None,
    progress: bool = False,
    **settings: Any,
) -> ComparisonTable:
    """Optimise for every K in ``steps_list`` and tabulate KL and W2 of it and of every standard schedule.

    For each K: ``ab*_K = argmin J(P(S; ab), S)`` (:func:`optimize_schedule`), then ``KL(S || P)`` and
    ``W2(P, S)`` (docs/model.md §6) of ``ab*_K`` and of each :func:`~symsched.schedules.standard_schedule`.
    ``spectrum`` any shape (modes), ``steps_list`` a sequence of positive integers; ``ComparisonTable.rows``
    has one dict per (K, schedule), :attr:`ComparisonTable.results` one :class:`OptimizeResult` per K.
    Arguments as :func:`optimize_schedule` (the schedule is optimised for ``divergence``; the
    table shows unweighted KL(data||generated) and W2 for all, every schedule run with the same sampler
    settings). The step counts are optimised in increasing order, each warm-started from the optima
    already found (and ``warm_starts``; at most MAX_ENTRIES starts in all, the optima at the nearest smaller K
    kept). Returns a :class:`ComparisonTable` (one row per step count and
    schedule). ValueError / TypeError as :func:`optimize_schedule`, and for an empty ``steps_list`` or a repeated K;
    :class:`InfiniteObjective` (a ValueError) when the divergence is +inf for one K (e.g. K = 1 with the endpoints
    fixing its only level), naming that K: drop it from ``steps_list`` or change what the message advises.
    Source: docs/model.md §6, §8; Benita, Elad, Keshet (arXiv 2502.00180) for the comparison of schedules.
    """
    ks = sorted(as_step_counts(steps_list, "steps_list", MAX_STEPS))
    S = as_spectrum(spectrum)
    warm = _check_warm_starts(warm_starts)
    rows: list[dict[str, Any]] = []
    results: dict[int, OptimizeResult] = {}
    it: Any = ks
    if as_bool(progress, "progress"):
        from tqdm.auto import tqdm

        it = tqdm(ks, desc="compare", unit="K")
    for K in it:
        # the optima found so far, nearest K last; with the given starts at most MAX_ENTRIES in all
        found = [r.alpha_bar for r in results.values()][max(0, len(results) + len(warm) - MAX_ENTRIES):]
        try:
            res = optimize_schedule(
                S, K, sampler=sampler, eta=eta, variance=variance, divergence=divergence, init=init,
                endpoints=endpoints, grid=grid, weights=weights, seed=seed, restarts=restarts,
                warm_starts=warm + found, **settings,
            )
        except InfiniteObjective as exc:
            raise at_step_count(exc, K, "steps_list") from None
        results[K] = res
        rows.append({"steps": K, "schedule": "optimised", "kl": res.kl, "w2": res.w2, "feasible": True})
        for name, ab in res.baseline_schedules.items():
            m = schedule_metrics(S, ab, sampler=sampler, init=init, **res.settings)
            rows.append({"steps": K, "schedule": name, "kl": m["kl"], "w2": m["w2"],
                         "feasible": res.feasible.get(name, True)})
    return ComparisonTable(rows=rows, results=results, divergence=divergence, sampler=sampler)
