r"""Which heuristic schedule is the optimum? Least-squares fits in log-SNR by the families in use.

:func:`fit_heuristics` fits each family of :data:`symsched.insight.families.FAMILIES` to a schedule
(usually an :class:`~symsched.OptimizeResult`) by least squares in log-SNR
(``scipy.optimize.least_squares``, trust-region reflective, bounded, from a few fixed starts), and
reports for each family its fitted parameters in their published form, the residual in log-SNR
(RMS and max), and — given the spectrum — the objective of the fitted schedule and what is lost
against the optimum: ``J(fit) - J(opt)``, evaluated exactly as the value of :func:`symsched.divergence_and_grad`
(``divergence_and_grad_ve`` for VE samplers).

End points. ``endpoints="match"`` (default) pins every family to the optimum's first and last level,
so each family is a one-parameter warp of the same interval (AYS: none) and the fit compares shapes;
``endpoints="free"`` fits the two end points too.

Zero terminal SNR. A first level at ``alpha_bar = 0`` (log-SNR -inf: pure noise; flow matching's
t = 1) is a fixed end, like the clean level after the last one: every family keeps it and is fitted
to the K - 1 finite levels that follow (its end points are those of the finite levels, matched or
free). The residuals (RMS, max) are over the fitted, finite levels; the fitted schedules start at
``alpha_bar = 0`` and their objective is evaluated with it.

Samplers. Every sampler of :data:`symsched.SAMPLERS`: VP and flow-matching samplers are evaluated on
``alpha_bar`` (flow levels ``t`` are ``alpha_bar`` through :func:`symsched.schedules.flow_t_to_alpha_bar`,
as :func:`symsched.optimize_schedule` reports them), VE samplers on ``sigmas``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from .. import schedules as _sch
from .._validate import as_choices, as_levels, as_spectrum, check_choice, check_eta, numpy_error_defaults
from ..api import DIVERGENCES, INITS, SAMPLERS, VE_SAMPLERS
from ..optimize import DEFAULT_DIVERGENCE, OBJECTIVE_NAMES
from .families import FAMILIES, Family, get_family
from .._markdown import md_table
from .._tex import tex_bold, tex_text

__all__ = ["FamilyFit", "HeuristicFit", "fit_heuristics", "schedule_objective", "ENDPOINT_MODES", "ROUNDING"]

Array = NDArray[np.float64]
ENDPOINT_MODES = ("match", "free")
_L_BOUND = 33.0  # |log-SNR| of fitted end points (alpha_bar stays representable in float64)
_PENALTY = 1e3  # residual per level when a family cannot produce valid levels at a trial point
ROUNDING = 1e-12  # a loss below this fraction of the objective is the evaluations' rounding (printed "≈0")


@dataclass
class FamilyFit:
    """One family fitted to a schedule.

    Attributes
    ----------
    family : str
    params : dict[str, float]
        Fitted parameters in the family's published form (e.g. ``s``, ``shift``, ``rho``, ``tau``,
        ``sigma_max``, ``sigma_min``, ``t_max``, ``t_min``).
    log_snr, alpha_bar : ndarray, shape (K,)
        The fitted schedule (noisiest first).
    rms, max_abs : float
        Residual ``log_snr - target`` in log-SNR: root mean square and maximum absolute value (over
        the finite levels: a first level at ``alpha_bar = 0`` is fixed, its residual is 0).
    value : float
        Objective of the fitted schedule (NaN without a spectrum).
    loss : float
        ``value - optimum``: the objective lost by using this family instead of the optimum.
    n_params : int
        Fitted parameters (shape parameters, plus 2 end points with ``endpoints="free"``); 0 for one or two finite
        levels (every family passes through them: nothing is fitted).
    notes : dict[str, str]
        Shape parameters (published names) whose value the fit did not choose: ``"at search bound"`` (the fit
        stopped at the edge of the searched range, e.g. Karras ``rho = 200``) or ``"not determined"`` (when the
        parameter moves by 2 % of its searched range one way, the residual changes by less than 1e-9 relative, or
        the fitted levels by less than 1e-9 of the target's log-SNR span: a limit of the family, e.g. the sigmoid's
        small-``tau`` limit, uniform in log-SNR). With ``endpoints="free"``, also ``"end points"`` when the fit beats
        the target (a negative ``loss`` beyond rounding) with end points other than the target's: its objective is
        lower at other end points (e.g. noisier than an optimum's first level, which its optimiser pinned), not a
        better shape. Printed after the parameters; read a shape value so marked as "any in that direction", the
        residual is what counts.

    Source: :func:`symsched.fit_heuristics`; each family's paper in :mod:`symsched.insight.families`.
    """

    family: str
    params: dict[str, float]
    log_snr: Array
    alpha_bar: Array
    rms: float
    max_abs: float
    value: float = math.nan
    loss: float = math.nan
    n_params: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def relative_loss(self) -> float:
        """``loss / (value - loss)``: the objective lost as a fraction of the optimum's.

        0 when nothing is lost against an optimum of 0 (e.g. an all-zero spectrum, which every
        schedule generates exactly); NaN (printed "–") when undefined: a positive loss against an
        optimum of 0, or no objective (no spectrum)."""
        opt = self.value - self.loss
        if opt > 0:
            return self.loss / opt
        if opt == 0 and self.loss == 0:
            return 0.0
        return math.nan

    @property
    def loss_is_rounding(self) -> bool:
        """``|loss|`` within :data:`ROUNDING` of the objective: the fitted schedule is the optimum to rounding
        (a tiny negative loss is the two evaluations' rounding, not a gain); printed "≈0"."""
        top = max(abs(self.value), abs(self.value - self.loss))
        return math.isfinite(self.loss) and 0 < abs(self.loss) <= ROUNDING * top  # an exact 0 prints "0"

    def lost_text(self) -> str:
        """The relative loss for a sentence: ``"0.52 %"``, ``"≈0 % (the optimum, to rounding)"``, a negative one
        with its reason (``"-17 % (lower at other end points than the target's)"``), or ``"–"`` with the reason it is
        undefined (no objective for the fitted levels, or a positive loss against an optimum of 0)."""
        if self.loss_is_rounding:
            return "≈0 % (the optimum, to rounding)"
        if math.isfinite(self.relative_loss):  # (from 100 % on without an exponent: "1.2e+02 %" read as code)
            pct = 100 * self.relative_loss
            text = f"{pct:.2g} %" if abs(pct) < 100 else f"{pct:.0f} %"
            if pct < 0:
                why = "at other end points than the target's" if "end points" in self.notes else "than the target's"
                text += f" (a lower objective {why})"
            return text
        if not math.isfinite(self.value):
            return "– (undefined: no objective for the fitted levels)"
        return "– (undefined: the optimum is 0)"


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x + 0.0:.{digits}g}"  # (+ 0.0: a -0.0 prints "0", not "-0")


def _lost_cell(f: FamilyFit, x: float) -> str:
    """A table cell of the loss ``x`` (absolute or in %): "≈0" where it is rounding (:attr:`FamilyFit.loss_is_rounding`)."""
    return "≈0" if f.loss_is_rounding else _fmt(x, 3)


def _fmt_params(p: dict[str, float], notes: Optional[dict[str, str]] = None) -> str:
    text = ", ".join(f"{k}={_fmt(v, 3)}" for k, v in p.items())
    extra = "; ".join(f"{k} {v}" for k, v in (notes or {}).items())
    return f"{text} ({extra})" if extra else text


class FamilyKeyError(KeyError):
    """A :class:`KeyError` (the mapping convention of ``fit[family]``) whose message reads as written: KeyError's own
    ``str`` shows its argument's repr, quotes and escapes included."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class HeuristicFit:
    """Every family fitted to one schedule, sorted by RMS residual (best first).

    Attributes
    ----------
    log_snr : ndarray, shape (K,)
        The target schedule's log-SNR (``-inf`` first for a zero-terminal-SNR schedule).
    value : float
        The target's objective on the spectrum passed to :func:`fit_heuristics`; without one, an
        OptimizeResult's own ``value`` (on the spectrum it was optimised for), else NaN.
    fits : list of FamilyFit
        Best first (ties broken by the order of :data:`~symsched.insight.families.FAMILIES`).
    endpoints : {"match", "free"}
    divergence, sampler : str
        The objective the losses are measured in.
    Source: :func:`symsched.fit_heuristics`.
    """

    log_snr: Array
    value: float
    fits: list[FamilyFit]
    endpoints: str
    divergence: str
    sampler: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> FamilyFit:
        """The family with the smallest RMS residual (RMS values equal to 12 decimals are a tie, broken by the
        order of :data:`~symsched.insight.families.FAMILIES`: exact fits that differ by rounding are not ranked)."""
        return self.fits[0]

    def __getitem__(self, family: str) -> FamilyFit:
        for f in self.fits:
            if isinstance(family, str) and f.family == family:
                return f
        raise FamilyKeyError(f"family {family!r} is not among this fit's families "
                             f"({', '.join(repr(f.family) for f in self.fits)})")

    def _rows(self) -> tuple[list[str], list[list[str]]]:
        what = OBJECTIVE_NAMES.get(self.divergence, self.divergence)
        header = ["family", "parameters", "RMS Δlog-SNR", "max |Δlog-SNR|", what, "lost", "lost (%)"]
        rows = []
        for f in self.fits:
            rows.append([f.family, _fmt_params(f.params, f.notes), _fmt(f.rms, 3), _fmt(f.max_abs, 3), _fmt(f.value),
                         _lost_cell(f, f.loss), _lost_cell(f, 100.0 * f.relative_loss)])
        return header, rows

    def to_markdown(self) -> str:
        """Markdown table, best family first (in bold)."""
        header, rows = self._rows()
        rows = [[f"**{r[0]}**" if i == 0 else r[0]] + r[1:] for i, r in enumerate(rows)]
        return md_table(header, rows, ["---", "---"] + ["---:"] * (len(header) - 2))

    def to_latex(self) -> str:
        """booktabs ``tabular``, best family first (in bold)."""
        header, rows = self._rows()

        lines = [r"\begin{tabular}{ll" + "r" * (len(header) - 2) + "}", r"\toprule",
                 " & ".join(tex_text(h) for h in header) + r" \\", r"\midrule"]
        for i, r in enumerate(rows):
            cells = [tex_text(c) for c in r]
            if i == 0:
                cells[0] = tex_bold(cells[0])
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready dict (:func:`symsched._io.json_ready`: non-finite floats as "inf"/"-inf"/"nan")."""
        from .._io import json_ready

        return json_ready({
            "target_log_snr": self.log_snr.tolist(), "value": self.value, "endpoints": self.endpoints,
            "divergence": self.divergence, "sampler": self.sampler, "best": self.best.family,
            "fits": [{"family": f.family, "params": f.params, "log_snr": f.log_snr.tolist(), "rms": f.rms,
                      "max_abs": f.max_abs, "value": f.value, "loss": f.loss, "n_params": f.n_params,
                      "notes": f.notes}
                     for f in self.fits],
        })

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def plot(self, *, n_families: int = 4, title: Optional[str] = None, path: Any = None) -> Any:
        """Target and the ``n_families`` best fits (log-SNR per step), and their residuals; see :func:`plot_fits`."""
        from .plots import plot_fits

        return plot_fits(self, n_families=n_families, title=title, path=path)


@numpy_error_defaults
def schedule_objective(
    spectrum: ArrayLike, alpha_bar: ArrayLike, *, divergence: str = DEFAULT_DIVERGENCE, sampler: str = "ddim",
    eta: Optional[float] = None,
    variance: Optional[str] = "posterior", init: str = "white", weights: Optional[ArrayLike] = None,
    **settings: Any,
) -> float:
    """Objective J of a schedule, as :func:`symsched.optimize_schedule` measures it (VE samplers via sigmas);
    the value alone, equal to ``divergence_and_grad(...)[0]``.

    ``divergence`` defaults to :data:`symsched.optimize.DEFAULT_DIVERGENCE` (``"w2"``, W2 squared), as the optimiser;
    ``eta`` (None: the sampler's default), ``variance`` and ``settings`` are the sampler's own.
    """
    from .. import api as _api
    from ..optimize import _run_sigmas, _settings, named_alpha_bar

    S = as_spectrum(spectrum)
    check_choice(sampler, "sampler", SAMPLERS)
    kw = _settings(sampler, eta, variance, settings)
    if sampler in VE_SAMPLERS:  # (the float64 sigmas the optimiser and the exports run)
        x, coord = _run_sigmas(alpha_bar, sampler), "sigma"
    else:
        x, coord = _api._vp_levels(alpha_bar), "alpha_bar"
    # the value alone (one forward sweep, the gradient path's ratio form): a gradient that overflows float64
    # where J is near its top (S near 1e300) must not refuse a value that is representable
    grp = _api._grouped(S.ravel(), _api._weights(weights, S).ravel())
    with named_alpha_bar():  # (break-test 7 December: a VE sampler's refusal named sigmas, never passed)
        return float(_api.grouped_value(grp, x, coord, divergence, sampler, init, kw))


def _family_levels(fam: Family, K: int, x: Array, ends: Optional[tuple[float, float]]) -> Optional[Array]:
    lo, hi = ends if ends is not None else (float(x[0]), float(x[1]))
    shape = x if ends is not None else x[2:]
    if K == 1:  # one level is its own end point: every family passes through it (e.g. karras refuses
        return np.array([lo])  # sigma_min == sigma_max, but its one-level schedule is that level)
    if not hi > lo:
        return None
    try:
        with np.errstate(all="ignore"):
            l = np.asarray(fam.levels(K, lo, hi, *shape), dtype=np.float64)
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
    if not np.all(np.isfinite(l)) or np.any(np.diff(l) <= 0):
        return None
    try:  # every level must be a float64 alpha_bar (free end points may wander past log-SNR 36.7)
        ab = _sch.log_snr_to_alpha_bar(l)
    except ValueError:
        return None
    if np.any(np.diff(ab) <= 0):  # distinct in log-SNR but equal in float64 alpha_bar (near 1): no schedule
        return None
    return l


def _fit_family(fam: Family, target: Array, ends: Optional[tuple[float, float]]
                ) -> tuple[Array, Array, dict[str, str]]:
    """(internal parameters, fitted log-SNR, :attr:`FamilyFit.notes`) minimising the sum of squared log-SNR
    residuals."""
    K = target.size
    if ends is not None:
        bounds = list(fam.bounds)
        starts = [np.array(s, dtype=np.float64) for s in fam.starts]
    else:
        span = max(_L_BOUND, float(np.max(np.abs(target))) + 1.0)
        bounds = [(-span, span), (-span, span)] + list(fam.bounds)
        starts = [np.concatenate(([target[0], target[-1]], s)) for s in fam.starts]

    def resid(x: Array) -> Array:
        l = _family_levels(fam, K, x, ends)
        return np.full(K, _PENALTY) if l is None else l - target

    if not bounds:  # nothing to fit (AYS with matched end points)
        x = np.zeros(0)
        return x, target + resid(x), {}
    lb = np.array([b[0] for b in bounds])
    ub = np.array([b[1] for b in bounds])
    best: Optional[tuple[float, Array]] = None
    for x0 in starts:
        x0 = np.clip(x0, lb, ub)
        r0 = resid(x0)
        if best is None or float(r0 @ r0) < best[0]:
            best = (float(r0 @ r0), x0)
        sol = least_squares(resid, x0, bounds=(lb, ub), method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15,
                            max_nfev=400 * (len(x0) + 1))
        cost = float(sol.fun @ sol.fun)
        if cost < best[0]:
            best = (cost, sol.x)
    assert best is not None
    x = best[1]
    return x, target + resid(x), _shape_notes(fam, x, best[0], lb, ub, resid, float(target[-1] - target[0]))


_FLAT = 1e-9  # relative change of the squared residual (or of the levels, in units of the target's log-SNR span)
_PROBE = 0.02  # ... below which a shape parameter is not determined, when it moves by this fraction of its range


def _shape_notes(fam: Family, x: Array, cost: float, lb: Array, ub: Array, resid: Callable[[Array], Array],
                 span: float) -> dict[str, str]:
    """:attr:`FamilyFit.notes` of the fitted point ``x``, whose squared residual is ``cost`` (the shape coordinates
    are the last ``fam.n_shape``). A fit to rounding (cost ~1e-18) makes any change of the cost large relative to
    it: the levels' own change decides there (audit of 6 December: sigmoid tau = 0.03 came back as an unmarked
    0.11, whose levels differ by ~1e-11)."""
    notes: dict[str, str] = {}
    r0 = resid(x)
    for j, name in enumerate(fam.published):
        i = x.size - fam.n_shape + j
        width = ub[i] - lb[i]
        low_edge, high_edge = fam.search_edges[j]
        if (low_edge and x[i] - lb[i] <= 1e-6 * width) or (high_edge and ub[i] - x[i] <= 1e-6 * width):
            notes[name] = "at search bound"
            continue
        flat = []
        for xi in (max(lb[i], x[i] - _PROBE * width), min(ub[i], x[i] + _PROBE * width)):
            if abs(xi - x[i]) <= 1e-6 * width:  # at (or a rounding off) the family's own bound, e.g. the cosine
                # offset s = 0: no move that way (break-test of 7 December: s = 6e-11 was probed by 6e-11 and marked)
                continue
            y = x.copy()
            y[i] = xi
            ry = resid(y)
            flat.append(abs(float(ry @ ry) - cost) <= _FLAT * cost or float(np.max(np.abs(ry - r0))) <= _FLAT * span)
        if any(flat):  # flat on one side: the family's limit that way (any value beyond gives these levels)
            notes[name] = "not determined"
    return notes


def _moved_ends(fitted: Array, target: Array) -> str:
    """The ``"end points"`` note of a free fit that beats its target: where its end points lie, against the target's."""
    return (f"first log-SNR {fitted[0]:.3g}, last {fitted[-1]:.3g}, not the target's {target[0]:.3g}, "
            f"{target[-1]:.3g}: lower there, not a better shape")


def check_families(families: Optional[Sequence[str]]) -> list[str]:
    """The family names of ``families`` (None: all, in :data:`FAMILIES`' order): a non-empty sequence of at most
    MAX_ENTRIES distinct names of :func:`~symsched.insight.families.family_names` (a string, a mapping or a set is a
    TypeError naming ``families``; an unknown or repeated name a ValueError naming ``families entries`` /
    ``families``; an endless iterable is refused without being read past MAX_ENTRIES + 1 entries)."""
    if families is None:
        return [f.name for f in FAMILIES]
    return as_choices(families, "families", [f.name for f in FAMILIES])


@numpy_error_defaults
def fit_heuristics(
    schedule: Any,
    spectrum: Optional[ArrayLike] = None,
    *,
    families: Optional[Sequence[str]] = None,
    endpoints: str = "match",
    divergence: Optional[str] = None,
    sampler: Optional[str] = None,
    eta: Optional[float] = None,
    variance: Optional[str] = None,
    init: Optional[str] = None,
    weights: Optional[ArrayLike] = None,
) -> Any:
    r"""Fit the heuristic families to a schedule by least squares in log-SNR: :math:`\min \sum_i (\ell^{fam}_i - \ell_i)^2`.

    Parameters
    ----------
    schedule : OptimizeResult, array_like of shape (K,), or SweepResult
        An optimised schedule (its sampler, eta, variance, divergence and init are used unless given
        here), plain levels ``alpha_bar`` (noisiest first), or a :class:`~symsched.insight.SweepResult`
        (every schedule of the sweep is fitted against its own spectrum; returns a
        :class:`~symsched.insight.SweepFits`).
    spectrum : array_like, optional
        The data spectrum, to evaluate the objective of the target and of each fitted schedule, and the
        loss between them. Everything is measured on this spectrum: for an OptimizeResult (which does
        not keep the spectrum it was optimised for) the target's ``value`` is re-evaluated on it, so a
        different spectrum gives that spectrum's values, never a mix (there a family's ``relative_loss`` can be
        negative: the schedule is not optimal for it). Without it the families'
        ``value`` and ``loss`` are NaN (and ``weights`` must be None); the target's ``value`` is then an
        OptimizeResult's own ``value``, or NaN for plain levels.
    families : sequence of str, optional
        Subset of :func:`~symsched.insight.families.family_names` (default: all), each named once; at most
        ``MAX_ENTRIES`` = 100 entries are read.
    endpoints : {"match", "free"}
        Pin every family to the target's first and last level (default), or fit them too.
    divergence, sampler, eta, variance, init, weights
        The objective (defaults: from an OptimizeResult, else
        :data:`symsched.optimize.DEFAULT_DIVERGENCE` (``"w2"``), ``"ddim"``, the sampler's own ``eta``, ``"posterior"``,
        ``"white"``; an OptimizeResult's other sampler settings are kept while its sampler is). Given here, they
        replace the optimum's (the target's ``value`` is then re-evaluated in the objective asked for, so that the
        losses compare one objective). ``weights`` as in :func:`symsched.divergence_and_grad`; an OptimizeResult
        optimised with weights (``weighted``) does not keep them, so with a spectrum they must be passed again
        (a ValueError naming ``weights`` otherwise). For a SweepResult every one of these applies to each of its
        schedules (``weights`` default to the sweep's own).

    Returns
    -------
    HeuristicFit
        Families sorted by RMS residual; ``.best``, ``.to_markdown()``, ``.to_latex()``, ``.plot()``.
        (``SweepFits`` for a SweepResult.)

    Raises
    ------
    ValueError
        Bad levels, spectrum, endpoints mode or objective settings; ``families`` empty, naming an unknown family or
        one twice, or holding more than MAX_ENTRIES entries (TypeError for a string, a mapping or a set);
        ``weights`` without a spectrum; a weighted OptimizeResult with a spectrum but no ``weights``; a schedule
        whose only level is ``alpha_bar = 0``.

    Notes
    -----
    Each fit starts from a few fixed points of the family's shape parameter (deterministic); the
    trust-region reflective solver keeps the parameters in their bounds (e.g. the cosine offset
    ``s >= 0``, parametrised by its angle :math:`\varphi_0 = \tfrac{\pi}{2}\tfrac{s}{1+s}` in
    :math:`[0, \tfrac{\pi}{2}\tfrac{100}{101}]`, so that ``s = 0`` lies inside the search, reached to the
    solver's tolerance (about 1e-10), and ``s`` runs up to 100).
    A first level at ``alpha_bar = 0`` (zero terminal SNR, flow t = 1) is kept fixed and the families
    are fitted to the finite levels after it (module docstring); the parameters describe that part
    (e.g. ``sigma_max`` is the sigma of the second level).
    With both end points matched the cosine offset ``s`` is weakly identified (it mostly moves the
    end points, which are pinned): read its value with care; the residual is what counts.

    Source: the families of :mod:`symsched.insight.families` (each cites its paper: Nichol & Dhariwal 2021 cosine,
    Karras et al. 2022 EDM ``rho``, Esser et al. 2024 SD3 shift, Sabour et al. 2024 AYS); the fit is
    :func:`scipy.optimize.least_squares` (``method="trf"``, bounded).
    """
    from .sweep import SweepResult

    if isinstance(schedule, SweepResult):
        if spectrum is not None:
            raise ValueError("spectrum must be None when fitting a SweepResult (each schedule uses its own)")
        return schedule.fit_heuristics(families=families, endpoints=endpoints, divergence=divergence,
                                       sampler=sampler, eta=eta, variance=variance, init=init, weights=weights)

    check_choice(endpoints, "endpoints", ENDPOINT_MODES)
    settings: dict[str, Any] = dict(divergence=DEFAULT_DIVERGENCE, sampler="ddim", eta=None, variance="posterior",
                                    init="white")
    if hasattr(schedule, "alpha_bar") and hasattr(schedule, "divergence"):
        settings.update(divergence=schedule.divergence, sampler=schedule.sampler, init=schedule.init)
        if sampler is None or sampler == schedule.sampler:  # the sampler's settings as optimised
            settings.update(eta=schedule.eta, variance=schedule.variance or "posterior")
            settings.update({k: v for k, v in (getattr(schedule, "settings", None) or {}).items()
                             if k not in ("eta", "variance")})
        levels = np.asarray(schedule.alpha_bar, dtype=np.float64)
        target_value = float(schedule.value)
        if getattr(schedule, "weighted", False) and spectrum is not None and weights is None:
            # its objective weighs the modes, and the result does not keep the weights: measured without them, the
            # fits' losses would compare the unweighted objective against a schedule optimised for another one
            raise ValueError("weights: the schedule was optimised with weights (OptimizeResult.weighted), which the "
                             "result does not keep; pass the same weights= to measure the fits in its objective")
    else:
        levels = schedule
        target_value = math.nan
    overrides = {k: v for k, v in dict(divergence=divergence, sampler=sampler, eta=eta, variance=variance,
                                        init=init).items() if v is not None}
    if overrides:
        settings.update(overrides)
        target_value = math.nan  # recomputed below for the objective asked for
    check_choice(settings["divergence"], "divergence", DIVERGENCES)
    check_choice(settings["sampler"], "sampler", SAMPLERS)
    if settings["eta"] is not None and settings["sampler"] == "ddim":
        settings["eta"] = check_eta(settings["eta"])
    check_choice(settings["variance"], "variance", ("posterior", "beta"))
    check_choice(settings["init"], "init", INITS)
    ab = as_levels(levels, "schedule alpha_bar")
    target = _sch.alpha_bar_to_log_snr(ab)
    # a first level at alpha_bar = 0 (log-SNR -inf) is a fixed end: the families fit the finite levels
    fixed = 1 if ab[0] == 0.0 else 0
    if fixed and ab.size == 1:
        raise ValueError("schedule: its only level is alpha_bar = 0 (log-SNR -inf, a fixed end); a heuristic "
                         "fit needs at least one level with alpha_bar > 0")
    free = target[fixed:]
    fams = [get_family(n) for n in check_families(families)]

    S = None
    if spectrum is not None:
        S = as_spectrum(spectrum)
        # always on this spectrum (and weights): the result's own value may belong to another spectrum
        target_value = schedule_objective(S, ab, weights=weights, **settings)
    elif weights is not None:
        raise ValueError("weights: given without a spectrum, they would weight nothing (the objective is only "
                         "evaluated with a spectrum); pass the spectrum too, or drop weights")
    ends = (float(free[0]), float(free[-1])) if endpoints == "match" else None

    fits = []
    for fam in fams:
        x, lf, notes = _fit_family(fam, free, ends)
        lo, hi = (ends if ends is not None else (float(x[0]), float(x[1])))
        shape = x if ends is not None else x[2:]
        res = lf - free
        ok = bool(np.all(np.isfinite(lf)) and np.all(np.abs(res) < _PENALTY / 2))
        if not ok:  # no valid schedule anywhere: no levels to report either (not the penalty's)
            lf = np.full(lf.shape, np.nan)
        l = np.concatenate((target[:fixed], lf))
        fab = _sch.log_snr_to_alpha_bar(l) if ok else np.full(l.size, np.nan)
        value = loss = math.nan
        if S is not None and ok:
            try:
                value = schedule_objective(S, as_levels(fab), weights=weights, **settings)
                loss = value - target_value
            except ValueError:  # levels that collapse in float64 (extreme fits): no objective
                pass
        # one or two finite levels: every family passes through them (its end points) and its shape is
        # undetermined (not reported); a family that produced no valid levels anywhere has no residual (NaN,
        # printed "–"), not the penalty
        shaped = free.size > 2
        fit = FamilyFit(
            family=fam.name, params=fam.params(lo, hi, shape) if ok and shaped else {}, log_snr=l,
            alpha_bar=fab, rms=float(np.sqrt(np.mean(res**2))) if ok else math.nan,
            max_abs=float(np.max(np.abs(res))) if ok else math.nan, value=value, loss=loss,
            n_params=len(x) if shaped else 0, notes=notes if ok and shaped else {},
        )
        if ends is None and loss < 0 and not fit.loss_is_rounding:  # lower only by leaving the target's end points
            fit.notes["end points"] = _moved_ends(lf, free)
        fits.append(fit)
    order = {f.name: i for i, f in enumerate(fams)}
    fits.sort(key=lambda f: (not math.isfinite(f.rms), round(f.rms, 12) if math.isfinite(f.rms) else 0.0,
                             order[f.family]))
    return HeuristicFit(log_snr=target, value=target_value, fits=fits, endpoints=endpoints,
                        divergence=settings["divergence"], sampler=settings["sampler"], settings=settings)
