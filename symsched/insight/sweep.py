r"""Optimal schedules over a family of spectra and/or step counts, in parallel with joblib.

:func:`sweep` runs :func:`symsched.optimize_schedule` for every (spectrum, K) pair. The pairs are
independent, so they run through :class:`joblib.Parallel` (default: every core, loky processes).
Each task is a pure function of its spectrum, K and the optimiser's keyword arguments (the
optimiser's random starts come from its own ``seed``), so a sweep is deterministic and gives the
same numbers serially and in parallel, on one machine or on a cluster.

Beyond one machine, joblib's dask backend sends the same tasks to a dask cluster
(``pip install "dask[distributed]"``)::

    import joblib
    from dask.distributed import Client

    client = Client("scheduler-address:8786")          # or Client() for a local cluster
    with joblib.parallel_config(backend="dask"):
        res = symsched.sweep(spectra, (5, 10, 20), n_jobs=-1)
"""

from __future__ import annotations

import cmath
import inspect
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import (
    ArgumentTypeError, _show, as_bool, as_int, as_spectrum, as_step_counts, check_choice, check_entries, is_sequence,
    numpy_error_defaults,
)
from ..optimize import (DEFAULT_DIVERGENCE, OBJECTIVE_NAMES, InfiniteObjective, OptimizeResult, at_step_count,
                        optimize_schedule)
from .._markdown import md_table
from .._tex import tex_text

__all__ = ["sweep", "SweepResult", "SweepFits"]

Array = NDArray[np.float64]
SpectraArg = Union[Sequence[ArrayLike], Mapping[Any, ArrayLike], Callable[[Any], ArrayLike], np.ndarray]


def _same_value(a: Any, b: Any) -> bool:
    """Whether :meth:`SweepResult.index` takes ``a`` and ``b`` for the same value: equal, or floats equal to
    ``math.isclose``'s relative 1e-9."""
    try:
        if bool(a == b):
            return True
    except (TypeError, ValueError):  # an array-like value: no single truth value
        return False
    return isinstance(a, float) and isinstance(b, float) and math.isclose(a, b)


def _finite_label(v: numbers.Number) -> str:
    """The rule a number label breaks ("" if none): finite, and (real ones) within float64, where tables and plots
    place it. decimal.Decimal by its own test (a signalling NaN raises in float(), == and math.isfinite)."""
    is_finite = getattr(v, "is_finite", None)
    if callable(is_finite) and not is_finite():
        return "finite"
    if isinstance(v, numbers.Complex) and not isinstance(v, numbers.Real):
        return "" if cmath.isfinite(v) else "finite"
    try:
        x = float(v)  # type: ignore[arg-type]
    except OverflowError:  # an int or Fraction beyond float64
        return "finite numbers within the float64 range"
    if math.isfinite(x):
        return ""
    # a float's own inf or nan; a finite Decimal beyond float64 converts to inf
    return "finite numbers within the float64 range" if callable(is_finite) else "finite"


def _check_values(vals: list[Any], name: str, keys: bool = False) -> None:
    """ValueError naming ``name`` for a NaN or infinite number among ``vals`` (``result(nan, K)`` could never find
    it), a value not equal to itself (an array of several numbers: no single truth value of ``==``), or a value
    repeated (equal, or floats within ``math.isclose``: ``result(v, K)`` would only ever return the
    first of them). With ``keys`` the values are a mapping's keys, named by themselves."""
    def entry(i: int) -> str:
        v = vals[i].item() if isinstance(vals[i], np.generic) else vals[i]  # nan, not np.float64(nan)
        return f"key {v!r}" if keys else f"{name}[{i}] = {v!r}"

    for i, v in enumerate(vals):
        if isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_)):
            rule = _finite_label(v)
            if rule:
                raise ValueError(f"{name} must be {rule} (got {entry(i)[:80]})")
        if not _same_value(v, v):  # e.g. an array of several numbers: ``==`` gives no single truth value
            raise ValueError(f"{name} must be labels equal to themselves, such as numbers, strings or tuples (got "
                             f"{entry(i)}, whose == has no single truth value: SweepResult.result(value, K) could "
                             "never find it)")
    for i, v in enumerate(vals):
        for j in range(i):
            if _same_value(vals[j], v):
                raise ValueError(f"{name} must be distinct: {entry(j)} and {entry(i)} are the "
                                 "same value (SweepResult.result(value, K) finds the first; floats within "
                                 "math.isclose count as the same)")


def _spectra_list(spectra: SpectraArg, values: Optional[Sequence[Any]]) -> tuple[list[Any], list[Array]]:
    if isinstance(values, Mapping):  # its keys would pass for the labels, its values be ignored
        raise ArgumentTypeError(f"values must be a sequence of labels, not a mapping (got {_show(values)}); pass "
                                "spectra as a mapping value -> spectrum instead")
    if callable(spectra) and not isinstance(spectra, np.ndarray):
        if values is None or not is_sequence(values):
            raise ValueError("values must be given (a sequence of parameter values) when spectra is a function")
        vals = check_entries(values, "values", why="each value's spectrum is a run of its own")
        if not vals:
            raise ValueError("values must not be empty")
        _check_values(vals, "values")
        arrays = []
        for v in vals:
            try:
                arrays.append(as_spectrum(spectra(v), f"spectra({v!r})"))
            except ValueError as exc:
                raise ValueError(f"spectra({v!r}): {exc}") from None
        return vals, arrays
    if isinstance(spectra, Mapping):
        if values is not None:
            raise ValueError("values must be None when spectra is a mapping (its keys are the values)")
        vals = check_entries(spectra.keys(), "spectra", why="each spectrum is a run of its own")
        _check_values(vals, "spectra's keys (its values)", keys=True)
        arrays = [as_spectrum(spectra[v], f"spectra[{v!r}]") for v in vals]
    elif isinstance(spectra, np.ndarray):
        if values is not None:
            raise ValueError("values must be None when spectra is a single array (its label is 0); pass "
                             "[spectrum] with values=[label] to label it")
        vals, arrays = [0], [as_spectrum(spectra)]
    elif isinstance(spectra, (list, tuple)):
        arrays = [as_spectrum(s, f"spectra[{i}]") for i, s in
                  enumerate(check_entries(spectra, "spectra", why="each spectrum is a run of its own"))]
        if values is not None and not is_sequence(values):
            raise ValueError(f"values must be a sequence of labels, one per spectrum (got {values!r})")
        vals = list(range(len(arrays))) if values is None else check_entries(
            values, "values", why="one label per spectrum, each a run of its own")
        if len(vals) != len(arrays):
            raise ValueError(f"values has {len(vals)} entries but spectra has {len(arrays)}")
        _check_values(vals, "values")
    else:
        raise TypeError(
            "spectra must be a list of spectra, a mapping value -> spectrum, an array, "
            f"or a function of a parameter (got {type(spectra).__name__})"
        )
    if not arrays:
        raise ValueError("spectra must not be empty")
    return vals, arrays


#: Largest number of joblib workers ``n_jobs`` may ask for (joblib itself refuses above 10**6, and
#: far fewer processes already exhaust a machine; a cluster is used with ``n_jobs=-1``).
MAX_JOBS = 4096


def check_n_jobs(n_jobs: Any, name: str = "n_jobs") -> Optional[int]:
    """joblib's worker count: None (joblib's default), -1 (every core), a negative -m (all cores but
    m - 1, joblib's convention) or a positive count, with ``|n_jobs| <= MAX_JOBS``. A bool, float,
    string or other type is a TypeError; 0 or out of range a ValueError (both name ``name``)."""
    if n_jobs is None:
        return None
    rule = f"-1 (every core), a positive number of workers or a negative -m (all cores but m - 1), at most {MAX_JOBS} in size"
    v = as_int(n_jobs, name, -MAX_JOBS, MAX_JOBS, rule=f"an integer: {rule}")
    if v == 0:
        raise ValueError(f"{name} must be {rule} (got 0)")
    return v


def joblib_backends() -> tuple[str, ...]:
    """The backend names joblib offers now: its registered backends (``joblib.parallel.BACKENDS``: loky,
    threading, multiprocessing, sequential and any registered with ``joblib.register_parallel_backend``) and
    those it registers on first use (``joblib.parallel.EXTERNAL_BACKENDS``: dask)."""
    from joblib import parallel

    names = list(parallel.BACKENDS) + list(getattr(parallel, "EXTERNAL_BACKENDS", {}))
    return tuple(dict.fromkeys(names))


def check_backend(backend: Any, name: str = "backend") -> Optional[str]:
    """None (follow ``joblib.parallel_config``) or the name of a joblib backend (:func:`joblib_backends`); checked
    whatever ``n_jobs`` is: a non-string is a TypeError, an unknown name a ValueError listing the choices."""
    if backend is None:
        return None
    return check_choice(backend, name, joblib_backends())


# optimize_schedule's named keyword arguments a sweep passes through (its own progress bar stays off); the others
# are the sampler's own settings (optimize_schedule's ``**settings``)
_OPT_PARAMS = tuple(p for p, v in inspect.signature(optimize_schedule).parameters.items()
                    if p not in ("spectrum", "steps", "progress") and v.kind is not inspect.Parameter.VAR_KEYWORD)


def _check_kw(kw: dict[str, Any], caller: str = "sweep") -> dict[str, Any]:
    """``kw`` for optimize_schedule: its named arguments and the sampler's own settings, checked before any work
    (TypeError naming a keyword that is neither; ValueError for a bad value, as optimize_schedule's)."""
    from .. import api
    from ..optimize import _check_sampler_args

    sampler = kw.get("sampler", "ddim")
    extra = {k: v for k, v in kw.items() if k not in _OPT_PARAMS}
    if extra:
        info = api.sampler_info(sampler)  # ValueError / TypeError naming a bad sampler
        settings = (*info["params"], *info["options"])
        unknown = sorted(set(extra) - set(settings))
        if unknown:
            raise TypeError(
                f"{caller}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; optimize_schedule "
                f"takes {', '.join(_OPT_PARAMS)} and the settings of sampler {sampler!r} "
                f"({', '.join(map(repr, settings)) or 'none'})"
            )
        _check_sampler_args(sampler, kw.get("eta"), kw.get("variance", "posterior"), extra)
    return dict(kw)


def settings_record(settings: dict[str, Any]) -> dict[str, Any]:
    """The optimiser settings of a sweep as JSON can hold them (arrays such as ``grid`` or ``weights`` by repr)."""
    return {k: (v if isinstance(v, (int, float, str, type(None), tuple, list)) else repr(v))
            for k, v in settings.items()}


def _task(S: Array, K: int, kw: dict[str, Any]) -> OptimizeResult:
    """One optimisation (runs in a worker process), single-threaded BLAS: the tasks are the parallelism."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        try:
            return optimize_schedule(S, K, **kw)
        except InfiniteObjective as exc:  # for one K of several: named
            raise at_step_count(exc, K) from None


def run_optimizations(
    tasks: Sequence[tuple[Array, int, dict[str, Any]]], *, n_jobs: Optional[int] = -1, backend: Optional[str] = None,
    bar: Any = None,
) -> list[OptimizeResult]:
    """``[optimize_schedule(S, K, **kw) for S, K, kw in tasks]``, through joblib unless ``n_jobs == 1``.

    Results come back in task order; ``bar`` (a tqdm bar, optional) advances as each one arrives.
    A backend that cannot return a generator (joblib's ``"multiprocessing"``) runs the tasks in
    batches of one per worker on one pool, and ``bar`` advances after each batch.
    BLAS runs single-threaded in every task (the tasks are the parallelism): a BLAS thread count
    that changed between runs, or between threads of one process, would change the rounding of
    its sums and so the optimiser's path. Held for the whole call, this also keeps the threading
    backend deterministic (threadpoolctl's limits are process-wide).
    Every task's arguments are checked (:func:`symsched.optimize.check_arguments`) before any task starts: a bad
    one is the ValueError / TypeError ``optimize_schedule`` raises, in this process, with no work done.
    """
    from threadpoolctl import threadpool_limits

    from ..optimize import check_arguments

    n_jobs = check_n_jobs(n_jobs)
    backend = check_backend(backend)
    for S, K, kw in tasks:
        check_arguments(S, K, **kw)
    results: list[OptimizeResult] = []

    def arrived(batch: Sequence[OptimizeResult]) -> None:
        results.extend(batch)
        if bar is not None:
            bar.update(len(batch))

    with threadpool_limits(limits=1):
        if n_jobs == 1 or len(tasks) <= 1:
            for S, K, kw in tasks:
                arrived([_task(S, K, kw)])
            return results
        from joblib import Parallel, delayed, effective_n_jobs

        try:
            parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")
        except ValueError:  # the backend returns lists only (joblib refuses in the constructor, before any work)
            parallel = None
        if parallel is not None:
            for res in parallel(delayed(_task)(S, K, kw) for S, K, kw in tasks):
                arrived([res])
            return results
        size = max(1, effective_n_jobs(n_jobs))
        with Parallel(n_jobs=n_jobs, backend=backend, return_as="list") as pool:  # one pool for every batch
            for i in range(0, len(tasks), size):
                arrived(pool(delayed(_task)(S, K, kw) for S, K, kw in tasks[i : i + size]))
    return results


@numpy_error_defaults
def sweep(
    spectra: SpectraArg,
    steps: Union[int, Sequence[int]],
    *,
    values: Optional[Sequence[Any]] = None,
    parameter: str = "parameter",
    n_jobs: Optional[int] = -1,
    backend: Optional[str] = None,
    progress: bool = False,
    **optimize_kw: Any,
) -> "SweepResult":
    r"""Optimal schedules :math:`\arg\min J(S_j; \bar\alpha)` for every spectrum :math:`S_j` and step count K.

    Parameters
    ----------
    spectra : list of array_like, mapping, array_like, or callable
        The spectra: a list (``values`` label them, default 0, 1, ...), a mapping ``value -> spectrum``,
        one array, or a function of a parameter called on every entry of ``values`` — e.g.
        ``lambda a: spectra.power_law((32, 32), alpha=a)`` with ``values=[1, 2, 3]``.
    steps : int or sequence of int
        Step counts K (each >= 1, distinct).
    values : sequence, optional
        Parameter values (required with a callable ``spectra``; labels for a list, one per spectrum,
        default 0, 1, ...; refused with a mapping or a single array, whose labels are its keys / 0).
        Distinct (floats within ``math.isclose`` count as the same value), equal to themselves (numbers,
        strings, tuples; not arrays of several numbers) and, where numbers, finite: a repeated, NaN / infinite
        or array value (or mapping key) is a ValueError naming ``values``; a mapping is a TypeError naming
        ``values`` (pass the spectra as a mapping instead). At most ``MAX_ENTRIES`` = 100 spectra (or values, or
        keys: each spectrum is a run of its own); more are refused without reading further.
        They key :meth:`SweepResult.result` and label ``to_dict`` records; the tables of a sweep of
        one spectrum have no parameter column.
    parameter : str
        Name of the parameter (table header and plot colour bar), e.g. ``"alpha"``.
    n_jobs : int or None
        joblib workers: -1 (default) every core, 1 serial in this process, -m all cores but m - 1
        (joblib's convention), None joblib's default; under ``joblib.parallel_config(backend="dask")``
        the dask cluster's workers. At most :data:`MAX_JOBS` in size; 0, a bool or a non-integer is
        refused (ValueError / TypeError naming ``n_jobs``) before any work starts.
    backend : str, optional
        joblib backend (``"loky"`` by default, ``"threading"``, ``"multiprocessing"``, ``"sequential"``,
        ``"dask"``, or one registered with ``joblib.register_parallel_backend``); None follows
        ``joblib.parallel_config``. Checked whatever ``n_jobs`` is (TypeError for a non-string, ValueError
        for a name joblib does not offer). A backend that returns no generator (``"multiprocessing"``) runs
        the tasks in batches of one per worker, and the progress bar advances batch by batch.
    progress : bool
        tqdm progress bar over the (spectrum, K) tasks (stderr).
    **optimize_kw
        Passed to :func:`symsched.optimize_schedule` (``sampler``, ``divergence``, ``endpoints``,
        ``grid``, ``weights``, ``seed``, ``restarts``, ..., and the sampler's own settings such as lms ``order``);
        checked for every spectrum and K before any work (:func:`symsched.optimize.check_arguments`): TypeError for
        a keyword that is neither, ValueError for a bad value (``weights`` of another shape than a spectrum, bad
        ``endpoints`` or ``grid`` for a K, ...).

    Returns
    -------
    SweepResult
        ``.result(value, K)``, ``.log_snr(K)``, ``.to_markdown()``, ``.to_latex()``, ``.to_dict()``,
        ``.to_arrays()``, ``.plot()``, ``.fit_heuristics()``.

    Raises
    ------
    ValueError
        Bad spectra, values (repeated or non-finite ones included; more than MAX_ENTRIES spectra or values), steps,
        backend, or optimiser arguments, all before any work starts. An optimisation that fails on its own (e.g.
        :class:`~symsched.optimize.InfiniteObjective`, named with its K) stops the sweep when it happens.
    TypeError
        An unknown keyword argument, ``spectra`` of the wrong type, ``values`` given as a mapping, or a ``backend``
        that is not a string.

    Notes
    -----
    Results are identical for every ``n_jobs`` and backend: each task is
    ``optimize_schedule(S_j, K, **optimize_kw)``, deterministic for a given ``seed``.
    Source: docs/model.md §8 (schedule design); joblib.
    """
    kw = _check_kw(optimize_kw)
    n_jobs = check_n_jobs(n_jobs)
    backend = check_backend(backend)
    ks = as_step_counts(steps, "steps")
    vals, arrays = _spectra_list(spectra, values)
    if not isinstance(parameter, str):
        raise TypeError(f"parameter must be a string (got {type(parameter).__name__})")
    tasks = [(j, K) for j in range(len(arrays)) for K in ks]
    bar = None
    if as_bool(progress, "progress"):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=f"sweep {parameter}", unit="schedule")
    try:
        out = run_optimizations([(arrays[j], K, kw) for j, K in tasks], n_jobs=n_jobs, backend=backend, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    results = dict(zip(tasks, out))
    # the divergence optimised, also when the optimiser's default was used (tables, plots and to_dict name it)
    settings = {"divergence": DEFAULT_DIVERGENCE, **kw}
    return SweepResult(parameter=parameter, values=vals, steps=ks, results=results, spectra=arrays, settings=settings)


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}" if isinstance(x, (int, float)) and math.isfinite(x) else str(x)


def _bare_tuple(v: Any) -> bool:
    """A tuple shown entry by entry (a namedtuple keeps its type and its own str)."""
    return isinstance(v, tuple) and not hasattr(v, "_fields")


def _plain(v: Any) -> Any:
    """``v`` with NumPy scalars and 0-d arrays as Python numbers, inside tuples too: what tables, legends and JSON
    show (``(1, 2)``, not ``(1, np.int64(2))``); the values themselves are kept as given."""
    if isinstance(v, (np.generic, np.ndarray)) and np.ndim(v) == 0:
        return v.item()
    return tuple(_plain(e) for e in v) if _bare_tuple(v) else v


def _label(v: Any, digits: int = 4) -> str:
    if _bare_tuple(v):
        inner = ", ".join(_label(e, digits) for e in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return _fmt(v, digits) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def value_labels(values: Sequence[Any]) -> list[str]:
    """One label per value for tables and legends, distinct for distinct values: numbers with 4 significant digits,
    or as many more as it takes to tell them apart (2.0 and 2.0001: "2" and "2.0001", not "2" twice); other values
    by ``str`` (tuples entry by entry), and by ``repr`` where two labels coincide (1 and "1")."""
    vals = [_plain(v) for v in values]
    for digits in range(4, 18):
        labels = [_label(v, digits) for v in vals]
        if len(set(labels)) == len(labels):
            return labels
    return [repr(v) if labels.count(lab) > 1 else lab for v, lab in zip(vals, labels)]


@dataclass
class SweepResult:
    """Optimal schedules of a :func:`sweep`.

    Attributes
    ----------
    parameter : str
    values : list
        Parameter values, one per spectrum.
    steps : list of int
    results : dict[(int, int), OptimizeResult]
        Keyed by (index into ``values``, K).
    spectra : list of ndarray
        The spectra (for the fits and plots).
    settings : dict
        The keyword arguments given to :func:`symsched.optimize_schedule`; :func:`sweep` adds the
        ``divergence`` it optimised when none was given (:data:`symsched.optimize.DEFAULT_DIVERGENCE`).
    Source: :func:`symsched.sweep`.
    """

    parameter: str
    values: list[Any]
    steps: list[int]
    results: dict[tuple[int, int], OptimizeResult]
    spectra: list[Array] = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def index(self, value: Any) -> int:
        """Position of ``value`` in :attr:`values` (ValueError if absent)."""
        for i, v in enumerate(self.values):
            if _same_value(v, value):
                return i
        raise ValueError(f"value {value!r} is not in this sweep's values {self.values}")

    def _steps(self, steps: Any) -> int:
        """``steps`` as one of :attr:`steps`: an integer (TypeError naming ``steps`` for an array, string, bool...)."""
        K = as_int(steps, "steps", rule="one integer step count")
        if K not in self.steps:
            raise ValueError(f"steps={steps!r} is not in this sweep's steps {self.steps}")
        return K

    def result(self, value: Any, steps: int) -> OptimizeResult:
        """The :class:`~symsched.OptimizeResult` for parameter ``value`` and K = ``steps``."""
        K = self._steps(steps)
        return self.results[(self.index(value), K)]

    def log_snr(self, steps: int) -> Array:
        """Optimal log-SNR levels for K = ``steps``: shape (len(values), K), noisiest first."""
        K = self._steps(steps)
        return np.stack([self.results[(j, K)].log_snr for j in range(len(self.values))])

    def _metric(self, key: str) -> Array:
        return np.array([[getattr(self.results[(j, K)], key) for K in self.steps] for j in range(len(self.values))])

    def to_arrays(self) -> dict[str, Any]:
        """Array form: ``values``, ``steps``, ``value``/``kl``/``w2`` (len(values), len(steps)), ``log_snr`` {K: (len(values), K)}."""
        return {
            "parameter": self.parameter,
            "values": _value_array(self.values),
            "steps": np.asarray(self.steps, dtype=np.int64),
            "value": self._metric("value"),
            "kl": self._metric("kl"),
            "w2": self._metric("w2"),
            "log_snr": {K: self.log_snr(K) for K in self.steps},
            "alpha_bar": {K: np.stack([self.results[(j, K)].alpha_bar for j in range(len(self.values))])
                          for K in self.steps},
        }

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready dict (:func:`symsched._io.json_ready`: Python numbers, non-finite floats as "inf"/"-inf"):
        one record per (value, K) with the levels and metrics, plus the settings."""
        from .._io import json_ready

        records = []
        for (j, K), r in sorted(self.results.items()):
            v = _plain(self.values[j])
            label = v if _numeric([v]) else str(v)
            records.append({self.parameter: label, "steps": K, "value": r.value,
                            "kl": r.kl, "w2": r.w2, "alpha_bar": r.alpha_bar.tolist(), "log_snr": r.log_snr.tolist()})
        return json_ready({"parameter": self.parameter, "steps": list(self.steps),
                           "settings": settings_record(self.settings), "results": records})

    def _rows(self, levels: bool) -> tuple[list[str], list[list[str]]]:
        div = self.settings.get("divergence", DEFAULT_DIVERGENCE)
        what = OBJECTIVE_NAMES.get(div, div)
        header = [self.parameter, "K", f"objective ({what})", "KL", "W2", "first log-SNR", "last log-SNR"]
        if levels:
            header.append("log-SNR levels (noisiest first)")
        rows = []
        labels = value_labels(self.values)
        for j, v in enumerate(self.values):
            for K in self.steps:
                r = self.results[(j, K)]
                row = [labels[j], str(K), _fmt(r.value), _fmt(r.kl), _fmt(r.w2), f"{r.log_snr[0]:.2f}",
                       f"{r.log_snr[-1]:.2f}"]
                if levels:
                    row.append(", ".join(f"{x:.2f}" for x in r.log_snr))
                rows.append(row)
        return header, rows

    def to_markdown(self, *, levels: bool = True) -> str:
        """Markdown table: one row per (value, K); ``levels`` adds every level's log-SNR (one value: no parameter column)."""
        header, rows = self._rows(as_bool(levels, "levels"))
        if len(self.values) == 1:
            header, rows = header[1:], [r[1:] for r in rows]
        return md_table(header, rows, "---:")

    def to_latex(self, *, levels: bool = False) -> str:
        """booktabs ``tabular`` of the same table."""
        header, rows = self._rows(as_bool(levels, "levels"))
        if len(self.values) == 1:
            header, rows = header[1:], [r[1:] for r in rows]

        lines = [r"\begin{tabular}{" + "r" * len(header) + "}", r"\toprule",
                 " & ".join(tex_text(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(tex_text(c) for c in r) + r" \\" for r in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_markdown(levels=False)

    def _repr_markdown_(self) -> str:
        return self.to_markdown(levels=False)

    def plot(self, *, steps: Union[int, Sequence[int], None] = None, title: Optional[str] = None,
             path: Any = None) -> Any:
        """Log-SNR vs step, one panel per K, coloured by the parameter; see :func:`~symsched.insight.plot_sweep`."""
        from .plots import plot_sweep

        return plot_sweep(self, steps=steps, title=title, path=path)

    def fit_heuristics(self, *, families: Optional[Sequence[str]] = None, endpoints: str = "match",
                       divergence: Optional[str] = None, sampler: Optional[str] = None, eta: Optional[float] = None,
                       variance: Optional[str] = None, init: Optional[str] = None,
                       weights: Optional[ArrayLike] = None) -> "SweepFits":
        """:func:`~symsched.insight.fit_heuristics` on every schedule against its own spectrum. A schedule whose only
        level is pure noise (K = 1 from ``alpha_bar = 0``, flow matching) has nothing to fit and is left out.

        ``divergence``, ``sampler``, ``eta``, ``variance``, ``init`` and ``weights`` replace each optimum's objective
        as they do for one :class:`~symsched.OptimizeResult` (None: the optimum's own; ``weights`` default to the
        sweep's ``weights``)."""
        from .fits import check_families, fit_heuristics

        families = check_families(families)  # read once (an iterator would serve the first schedule only)
        w = weights if weights is not None else self.settings.get("weights")
        objective = dict(divergence=divergence, sampler=sampler, eta=eta, variance=variance, init=init, weights=w)
        fits = {key: fit_heuristics(res, self.spectra[key[0]], families=families, endpoints=endpoints, **objective)
                for key, res in sorted(self.results.items()) if not np.all(np.asarray(res.alpha_bar) == 0.0)}
        return SweepFits(parameter=self.parameter, values=self.values, fits=fits)


def _value_array(values: Sequence[Any]) -> NDArray[Any]:
    """``values`` as an array of shape (len(values),): float64 for numbers, else objects (a tuple label stays one
    entry: ``np.asarray`` would make a 2-d array of equal-length tuples)."""
    if _numeric(values):
        return np.asarray(values, dtype=np.float64)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # (one by one: a slice assignment would unpack equal-length tuples)
        out[i] = _plain(v)
    return out


def _numeric(values: Sequence[Any]) -> bool:
    """Every value a real number (NumPy scalars and 0-d arrays included; not bool)."""
    return all(isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool)
               for p in map(_plain, values))


@dataclass
class SweepFits:
    """Heuristic fits of every schedule of a sweep: ``fits[(index, K)]`` is a :class:`~symsched.insight.HeuristicFit`.

    ``parameter``: the swept parameter's name; ``values``: its values (``index`` runs over them); ``fits``: one fit
    per (value index, step count K). Made by :meth:`SweepResult.fit_heuristics` / :func:`symsched.fit_heuristics` of
    a SweepResult. Source: as :func:`symsched.fit_heuristics`.
    """

    parameter: str
    values: list[Any]
    fits: dict[tuple[int, int], Any]

    def _rows(self) -> tuple[list[str], list[list[str]]]:
        from .fits import _fmt as _cell  # undefined cells (NaN) print "–", as in HeuristicFit's table
        from .fits import _fmt_params, _lost_cell

        header = [self.parameter, "K", "best family", "parameters", "RMS Δlog-SNR", "max |Δlog-SNR|", "lost (%)",
                  "runner-up (RMS)"]
        rows = []
        labels = value_labels(self.values)
        for (j, K), f in sorted(self.fits.items()):
            b = f.best
            second = f.fits[1] if len(f.fits) > 1 else None
            rows.append([labels[j], str(K), b.family, _fmt_params(b.params, b.notes), _cell(b.rms, 3),
                         _cell(b.max_abs, 3), _lost_cell(b, 100.0 * b.relative_loss),
                         f"{second.family} ({_cell(second.rms, 3)})" if second else "–"])
        return header, rows

    def to_markdown(self) -> str:
        """One row per schedule: the best family, its parameters, residual and objective lost."""
        header, rows = self._rows()
        align = ["---:", "---:", "---", "---", "---:", "---:", "---:", "---"]
        if len(self.values) == 1:
            header, rows, align = header[1:], [r[1:] for r in rows], align[1:]
        return md_table(header, rows, align)

    def to_latex(self) -> str:
        """booktabs ``tabular`` of the same table."""
        header, rows = self._rows()
        spec = "rrllrrrl"
        if len(self.values) == 1:
            header, rows, spec = header[1:], [r[1:] for r in rows], spec[1:]

        lines = [r"\begin{tabular}{" + spec + "}", r"\toprule", " & ".join(tex_text(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(tex_text(c) for c in r) + r" \\" for r in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()
