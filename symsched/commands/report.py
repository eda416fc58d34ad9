"""``symsched report``: the main job in one command.

On a spectrum (default: the built-in natural-image patches) it writes

- ``derivations/``: the LaTeX derivations of the samplers the report runs (``--sampler`` and DDPM,
  as ``symsched latex --sampler``; read from the on-disk cache when the derivation sources have not
  changed, see :mod:`symsched._latex_cache`);
- ``validation.png``: a quick Monte Carlo check of the closed form (DDPM, 20 steps);
- for each divergence (the default one first) and each K: the optimised schedule as JSON and a
  figure, and a comparison table (Markdown and LaTeX) of the optimised schedule against every
  standard schedule (those not meeting the optimiser's endpoint constraint marked "†");
- ``summary.md`` and ``summary.html`` tying them together.

The report is a list of sections (:data:`SECTIONS`): each is a function of the shared
:class:`Context` returning one or more :class:`Section` objects, whose Markdown and HTML are
produced when the summary is written. Work that does not need the main process (rendering LaTeX on
a cache miss, the Monte Carlo check, every figure) runs in ``--jobs`` worker processes while the
schedules are optimised here; :meth:`Context.submit` hands it over and returns a future.
"""

from __future__ import annotations

import argparse
import html
import math
import os
import sys
import time
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from .. import _html
from .._io import check_kind, staged_folder
from . import _settings

DIVERGENCE_LABEL = {"kl": "KL(data ‖ generated)", "w2": "W2"}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "report",
        help="derivations, Monte Carlo check, optimised schedules and a summary, in one command",
        description="Run the main job on a spectrum (default: builtin:natural-patches): write the LaTeX "
        "derivations, a quick Monte Carlo validation with its plot, optimised schedules for each K "
        "with comparison tables and plots, and summary.md / summary.html tying them together.",
    )
    p.add_argument("--out", default=Path("report"), type=Path, help="output directory (default: report)")
    p.add_argument("--spectrum", default="builtin:natural-patches",
                   help="FILE.npy, a folder of images, or builtin:natural-patches (default)")
    p.add_argument("--steps", default="5,10,20", help="comma-separated step counts K (default 5,10,20)")
    from ..symbolic.samplers import FLOW_SAMPLERS, VE_SAMPLERS, VP_SAMPLERS

    p.add_argument("--sampler", default="ddim", choices=list(VP_SAMPLERS + VE_SAMPLERS + FLOW_SAMPLERS),
                   help="sampler to optimise for (default ddim; every registered diffusers / k-diffusion sampler, "
                   "with its library defaults unless --eta/--option say otherwise; a flow-matching sampler starts "
                   "every schedule from pure noise, t = 1, and is also compared with the flow schedules, as "
                   "optimize --flow)")
    _settings.add_variance(p)
    _settings.add_arguments(p)
    _settings.add_max_step_ratio(p)
    p.add_argument("--samples", default=4000, type=int, help="Monte Carlo samples of the check (default 4000)")
    p.add_argument("--seed", default=0, type=int, help="seed of the Monte Carlo check and the random starts (default 0)")
    p.add_argument("--probe-samples", default=500, type=int,
                   help="samples per schedule and seed of the learned-model probe, DDIM eta=0 on the built-in model "
                   "whatever --sampler (default 500; 0 skips it; at most MAX_MMD_SAMPLES = 20,000: MMD² compares "
                   "every pair)")
    p.add_argument("--jobs", default=None, type=int,
                   help="worker processes for figures, the Monte Carlo check and LaTeX rendering: "
                   f"{_settings.JOBS_RULE} (default: min(2, CPU count); at most the CPU count are started)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _steps(text: str) -> list[int]:
    from .._validate import MAX_STEPS
    from ._settings import positive_ints

    ks = positive_ints(text, "--steps")
    if max(ks) > MAX_STEPS:
        raise ValueError(f"--steps must be at most MAX_STEPS = {MAX_STEPS} (got {max(ks)})")
    return sorted(ks)


def _jobs(value: Optional[int]) -> int:
    """--jobs as a count of worker processes (0: none); None: min(2, CPU count). At most the CPU count: the workers
    are forked all at once (a ProcessPoolExecutor of the fork method), and more than there are cores only compete for
    them (--jobs 40 started 40 processes on a 2-core machine for a report of about ten jobs; audit of 6 December)."""
    cores = os.cpu_count() or 1
    return min(2, cores) if value is None else min(_settings.jobs(value), cores)


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


# ---------------------------------------------------------------------------------------------
# the frame: context, sections, background jobs
# ---------------------------------------------------------------------------------------------


@dataclass
class Section:
    """One part of the summary. ``markdown`` / ``html`` / ``console`` are called when the summary is
    written, after every background job has finished, and return lines (Markdown, HTML, stdout)."""

    markdown: Callable[[], list[str]]
    html: Callable[[], list[str]]
    console: Callable[[], list[str]] = field(default=lambda: [])


class _Jobs:
    """Background jobs in ``n`` worker processes, or run at once in this process when ``n == 0``.

    Workers are forked (:func:`_start_method`) right away, after importing what the jobs use, so that
    they inherit the imported modules instead of importing them again (about 1.5 s of CPU each). Create
    it before any thread (a progress bar's monitor) starts, or they are spawned. ``method`` is the start
    method used (None without workers).
    """

    def __init__(self, n: int) -> None:
        self.futures: list[Future[Any]] = []
        self.executor = None
        self.method: Optional[str] = None
        if n > 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.method = method = _start_method()
            if method == "fork":
                _preload()
                sys.stdout.flush()  # a forked child must not inherit (and flush again) buffered output
                sys.stderr.flush()
            with _sigint_blocked():
                self.executor = ProcessPoolExecutor(
                    max_workers=n, mp_context=multiprocessing.get_context(method), initializer=_worker_init
                )
                if method == "fork":  # fork every worker now, while this process has one thread
                    self.executor.submit(os.getpid).result()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        if self.executor is not None:
            with _sigint_blocked():  # a spawned worker starts here
                fut = self.executor.submit(fn, *args, **kwargs)
        else:
            fut = Future()
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # re-raised by .result(), as from a worker
                fut.set_exception(exc)
        self.futures.append(fut)
        return fut

    def wait(self) -> None:
        for fut in self.futures:
            fut.result()

    def close(self, cancel: bool) -> None:
        if self.executor is not None:
            if cancel:  # interrupted or failed: stop the workers now rather than finish their jobs
                for proc in list((getattr(self.executor, "_processes", None) or {}).values()):
                    proc.terminate()
            self.executor.shutdown(wait=True, cancel_futures=cancel)


def _start_method() -> str:
    """``fork`` on Linux when this process runs a single thread (forking a threaded process can deadlock),
    else ``spawn`` (macOS and Windows, or e.g. inside a Jupyter kernel)."""
    import multiprocessing
    import threading

    linux = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
    return "fork" if linux and threading.active_count() == 1 and not _openmp_loaded() else "spawn"


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread while worker processes start: a worker inherits the mask (through fork, and
    through the exec of a spawned one), so a Ctrl-C cannot interrupt its start-up (a spawned worker imports symsched
    before :func:`_worker_init` ignores SIGINT) and print a traceback from it; here the signal is delivered when the
    block ends (or at once, by another thread). :mod:`multiprocessing` starts its resource tracker the same way."""
    import signal

    if not hasattr(signal, "pthread_sigmask"):  # Windows: no such mask
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _openmp_loaded() -> bool:
    """True when an OpenMP runtime (libgomp, libiomp5, libomp: torch, MKL, ...) is mapped into this process:
    its native thread pool is invisible to :mod:`threading` and a forked child that uses it deadlocks.
    (NumPy's and SciPy's OpenBLAS use pthreads with fork handlers and are safe.)"""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            maps = fh.read()
    except OSError:  # no /proc: assume the worst
        return True
    return any(name in maps for name in ("/libgomp", "/libiomp5", "/libomp"))


def _preload() -> None:
    """Import, before forking the workers, the modules their jobs use (figures, Monte Carlo, probe section)."""
    import matplotlib.backends.backend_agg  # noqa: F401

    from .. import montecarlo, plots  # noqa: F401
    from . import probe, validate  # noqa: F401


def _worker_init() -> None:
    """Worker processes: headless matplotlib, single-threaded BLAS and torch (the cores are shared with the
    parent; torch reads OMP_NUM_THREADS when a job first imports it), SIGINT ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops the workers)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import warnings

    from threadpoolctl import threadpool_limits

    from .._latex_cache import LatexCacheWarning
    from ..engine.codegen import KernelCacheWarning
    from .probe import ProbeCacheWarning

    for kind in (KernelCacheWarning, LatexCacheWarning, ProbeCacheWarning):  # the parent has said it once
        warnings.simplefilter("ignore", kind)
    threadpool_limits(limits=1)


@dataclass
class Context:
    """What every section sees: the arguments, the output directory, the spectrum and the job pool."""

    args: argparse.Namespace
    out: Path
    S: np.ndarray
    ks: list[int]
    settings: dict[str, Any]  # the sampler's eta and --option settings as given (compare_schedules keywords)
    n: int
    jobs: _Jobs
    bar: Any
    started: float
    data: dict[str, Any] = field(default_factory=dict)  # shared results (e.g. the optimised schedules)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` (a module-level function; arguments picklable) in a worker."""
        return self.jobs.submit(fn, *args, **kwargs)

    def stage(self, label: str) -> None:
        self.bar.set_postfix_str(label)


SectionMaker = Callable[[Context], Union[Section, list[Section]]]


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------


def _write_derivations(out: Path, files: dict[str, str]) -> list[str]:
    from .._io import atomic_write_text

    for name, text in files.items():
        atomic_write_text(out / "derivations" / name, text)
    return sorted(files)


def _report_samplers(ctx: "Context") -> list[str]:
    """The samplers whose derivations the report writes: the one it optimises and DDPM (its Monte Carlo check)."""
    return sorted({ctx.args.sampler, "ddpm"})


def _report_options(ctx: "Context") -> dict[str, Any]:
    """The structural settings of the optimised sampler (``--option``: DPM-Solver's ``algorithm_type``, LMS's
    ``order``, ...) that its derivation renders; numeric ones (``eta``, ``s_noise``) stay symbols there."""
    from ..symbolic import sampler_module

    structural = getattr(sampler_module(ctx.args.sampler), "OPTIONS", {})
    return {k: v for k, v in ctx.settings.items() if k in structural}


def _latex_key(samplers: list[str], options: Optional[dict[str, Any]] = None) -> str:
    from .._latex_cache import options_tag

    return "report_" + "_".join(samplers) + options_tag(options)


def _render_samplers(samplers: list[str], sampler: str = "", options: Optional[dict[str, Any]] = None
                     ) -> dict[str, str]:
    """The LaTeX sections of ``samplers`` (as ``symsched latex --sampler``; ``sampler``'s under ``options``) and a
    master file inputting them."""
    from ..symbolic.latex import render_all, render_master

    files: dict[str, str] = {}
    for name in samplers:
        kw = (options or {}) if name == sampler else {}
        files.update({f: t for f, t in render_all(name, **kw).items() if f != "symsched.tex"})
    files["symsched.tex"] = render_master([f[:-4] for f in files])
    return files


def _render_derivations_job(out: Path, samplers: list[str], sampler: str = "",
                            options: Optional[dict[str, Any]] = None) -> list[str]:
    """Worker: render (and cache) the LaTeX derivations of ``samplers``, write them; returns the file names."""
    from .._latex_cache import cached

    return _write_derivations(out, cached(_latex_key(samplers, options),
                                          lambda: _render_samplers(samplers, sampler, options)))


def derivations_section(ctx: Context) -> Section:
    """The LaTeX derivations of the samplers the report runs: from the cache at once, else rendered by a
    worker. (Rendering every registered sampler, as ``symsched latex`` does, takes 13-20 s with SymPy.)"""
    from .._latex_cache import lookup

    ctx.stage("derivations")
    samplers, options = _report_samplers(ctx), _report_options(ctx)
    files = lookup(_latex_key(samplers, options))
    fut = (ctx.submit(_render_derivations_job, ctx.out, samplers, ctx.args.sampler, options)
           if files is None else None)
    names = _write_derivations(ctx.out, files) if files is not None else []
    ctx.bar.update()

    def _names() -> list[str]:
        return fut.result() if fut is not None else names

    def md() -> list[str]:
        given = ", ".join(f"{k}={v!r}" for k, v in options.items())
        runs = ", ".join(samplers) + (f"; {ctx.args.sampler} with {given}" if given else "")
        lines = ["## Derivations", "",
                 f"LaTeX of the samplers this report runs ({runs}), derived with SymPy "
                 "(`derivations/symsched.tex` inputs the rest; compile with pdflatex; `symsched latex` "
                 "writes every sampler's):", ""]
        return lines + [f"- [`derivations/{f}`](derivations/{f})" for f in _names()] + [""]

    def htm() -> list[str]:
        esc = html.escape
        return (["<h2>Derivations</h2><ul>"]
                + [f'<li><a href="derivations/{esc(f)}">derivations/{esc(f)}</a></li>' for f in _names()]
                + ["</ul>"])

    return Section(md, htm)


def _montecarlo_job(field_: np.ndarray, n: int, seed: int, path: Path, shape_txt: str) -> dict[str, Any]:
    """Worker: DDPM (20 steps) on ``n`` Gaussian fields vs the closed form, and the validation figure."""
    from .. import output_spectrum
    from ..montecarlo import empirical_psd, iter_sample, psd_check, psd_zscores
    from ..schedules import standard_schedule
    from .validate import plot_validation

    ab = standard_schedule("linear-leading", 20)
    P = output_spectrum(field_, ab, sampler="ddpm")
    psd = empirical_psd(iter_sample(field_, ab, sampler="ddpm", n_samples=n, seed=seed, progress=False))
    check = psd_check(psd, P, n, alpha=1e-6)
    plot_validation(path, field_, P, psd, psd_zscores(psd, P, n), n, alpha=1e-6,
                    title=f"DDPM, 20 steps (linear-leading), {n} samples, {shape_txt}",
                    check=check, pvalue=check.pvalue)
    return {"check": check}


def _montecarlo_field(S: np.ndarray) -> tuple[np.ndarray, Optional[str]]:
    """The field the Monte Carlo check samples (the first channel of a (H, W, C) spectrum,
    :func:`._settings.colour_channels`, as ``validate`` reads it), and why it cannot (None when it can): the check
    draws stationary fields by FFT, so its PSD must be Hermitian-symmetric on the FFT grid; PCA eigenvalues
    (:func:`symsched.spectra.pca_spectrum`) and other non-FFT spectra are not."""
    from ..montecarlo import _as_grid_spectrum

    field_ = S[..., 0] if _settings.colour_channels(S) else S
    try:
        _as_grid_spectrum(field_, "spectrum")
    except ValueError as exc:
        return field_, str(exc)
    return field_, None


def montecarlo_section(ctx: Context) -> Section:
    """A quick Monte Carlo check of the closed form on the spectrum's first channel (in a worker); skipped with a
    note for a spectrum that is not a PSD on an FFT grid (e.g. PCA eigenvalues)."""
    field_, why = _montecarlo_field(ctx.S)
    if why is not None:
        ctx.bar.update()
        return _montecarlo_skipped(why)
    shape_txt = "x".join(map(str, field_.shape)) + (", first channel" if field_.ndim < ctx.S.ndim else "")
    fut = ctx.submit(_montecarlo_job, np.ascontiguousarray(field_), ctx.n, ctx.args.seed,
                     ctx.out / "validation.png", shape_txt)
    ctx.bar.update()

    def md() -> list[str]:
        check = fut.result()["check"]
        return [
            "## Monte Carlo check", "",
            f"DDPM with 20 steps of the 1000-step linear grid, run on {ctx.n} Gaussian fields of the "
            f"spectrum ({shape_txt}) with the exact denoiser; periodogram vs closed form.",
            "",
            f"- max |z| over {check.n_independent} independent frequency bins: **{check.max_abs_z:.2f}** "
            f"(threshold {check.z_crit:.2f}; Šidák p = {check.max_pvalue:.3g})",
            f"- sum of z² over those bins: {check.chi2:.1f} (χ² with {check.n_independent} degrees of freedom: "
            f"p = {check.chi2_pvalue:.3g})",
            f"- family-wise p-value of both tests: {check.pvalue:.3g} at false-alarm probability 1e-6 → "
            f"**{check.verdict(short=True)}**",
            *([f"- {check.n_floor} of {check.n_independent} bins lie at or below the simulation's rounding floor and "
               "are tested for an excess only"] if check.n_floor else []),
            "", "![Monte Carlo check](validation.png)", "",
        ]

    def htm() -> list[str]:
        check = fut.result()["check"]
        return [
            "<h2>Monte Carlo check</h2>",
            f"<p>DDPM, 20 steps, {ctx.n} samples of the spectrum ({html.escape(shape_txt)}). "
            f"max |z| = <b>{check.max_abs_z:.2f}</b> over {check.n_independent} bins (threshold {check.z_crit:.2f}), "
            f"sum of z² = {check.chi2:.1f}; family-wise p = {check.pvalue:.3g} at false-alarm 1e-6 &rarr; "
            f"<b>{check.verdict(short=True)}</b></p>",
            '<img src="validation.png" alt="Monte Carlo check" width="640">',
        ]

    def console() -> list[str]:
        check = fut.result()["check"]
        return [f"  Monte Carlo check: max |z| = {check.max_abs_z:.2f} (threshold {check.z_crit:.2f}), sum z² = "
                f"{check.chi2:.0f} on {check.n_independent} dof -> {check.verdict(short=True)}"]

    return Section(md, htm, console)


def _montecarlo_skipped(why: str) -> Section:
    note = ("Skipped: this check draws stationary Gaussian fields by FFT, and the spectrum is not a PSD on an FFT "
            f"grid ({why}); PCA eigenvalues (`spectra.pca_spectrum`) are checked in their eigenbasis with "
            "`symsched.montecarlo.sample(..., basis=U)`. Every other section holds for any spectrum.")
    return Section(lambda: ["## Monte Carlo check", "", note, ""],
                   lambda: ["<h2>Monte Carlo check</h2>", f"<p>{_html.inline(note)}</p>"],
                   lambda: ["  Monte Carlo check: skipped (the spectrum is not a PSD on an FFT grid)"])


def divergence_table(table: Any, divergence: str) -> tuple[list[str], list[list[str]], str]:
    """(header, rows, verdict) for one divergence of a ComparisonTable; ``verdict`` is "beats" (the optimum is
    below every standard schedule), "matches" (at most equal to every one, equal to some within 1e-9 relative:
    e.g. K = 1 with the first level fixed, or an all-zero spectrum) or "loses".

    A schedule not meeting the optimiser's endpoint constraint is marked "†" and is neither bold
    nor counted in the verdict (it is not a fair comparison).
    """
    key = "kl" if divergence == "kl" else "w2"
    ks = sorted({r["steps"] for r in table.rows})
    names = list(dict.fromkeys(r["schedule"] for r in table.rows))
    value = {(r["schedule"], r["steps"]): r[key] for r in table.rows}
    fair = {(r["schedule"], r["steps"]): r.get("feasible", True) for r in table.rows}
    beats, ties = True, False
    best = {}
    for k in ks:
        vals = [value[(n, k)] for n in names if (n, k) in value and fair[(n, k)]]
        best[k] = min(vals)
        opt = value.get(("optimised", k), math.inf)
        others = [value[(n, k)] for n in names if n != "optimised" and (n, k) in value and fair[(n, k)]]
        beats &= all(opt <= v for v in others)
        ties |= any(v == opt or abs(v - opt) <= 1e-9 * abs(opt) for v in others)
    header = ["schedule"] + [f"K={k}" for k in ks]
    rows = []
    for n in names:
        cells = [n]
        for k in ks:
            v = value.get((n, k))
            if v is None:
                cells.append("–")
            elif not fair[(n, k)]:
                cells.append(_fmt(v) + "†")
            else:
                text = _fmt(v)
                cells.append(f"**{text}**" if v == best[k] else text)
        rows.append(cells)
    return header, rows, ("matches" if ties else "beats") if beats else "loses"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    from .._markdown import md_table

    return md_table(header, rows, ["---"] + ["---:"] * (len(header) - 1))


def _latex(header: list[str], rows: list[list[str]], caption: str) -> str:
    from .._tex import tex_bold, tex_table, tex_text

    def cell(text: str) -> str:
        t = tex_text(text)
        return tex_bold(t[2:-2]) if t.startswith("**") else t

    lines = [
        "\\begin{tabular}{l" + "r" * (len(header) - 1) + "}", "\\toprule",
        " & ".join(cell(h).replace("K=", "$K=") + ("$" if h.startswith("K=") else "") for h in header) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(cell(c) for c in r) + " \\\\" for r in rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return tex_table("\n".join(lines), caption, "report")


def _figure_job(result: Any, S: np.ndarray, path: Path) -> str:
    """Worker: the figure of one optimised schedule (:func:`symsched.plots.plot_result`)."""
    from ..plots import plot_result

    plot_result(result, S, path=path)
    return path.name


def _divergences() -> list[str]:
    from ..optimize import DEFAULT_DIVERGENCE

    return [DEFAULT_DIVERGENCE] + [d for d in DIVERGENCE_LABEL if d != DEFAULT_DIVERGENCE]


def schedules_section(ctx: Context) -> list[Section]:
    """For each divergence: optimised schedules for every K (JSON, figure) and the comparison table."""
    from .._io import atomic_write_json, atomic_write_text
    from ..insight.fits import fit_heuristics
    from ..optimize import InfiniteObjective, compare_schedules

    sections = []
    # flow matching samples from pure noise, t = 1 (as optimize --flow), where optimize_schedule starts a flow sampler
    # and compares it with the flow schedules (symsched.optimize.FLOW_BASELINES)
    warm: list[np.ndarray] = []
    for div in _divergences():
        ctx.stage(f"optimise {div.upper()}")
        try:
            table = compare_schedules(ctx.S, ctx.ks, sampler=ctx.args.sampler, divergence=div,
                                      seed=ctx.args.seed, warm_starts=warm, max_step_ratio=ctx.args.max_step_ratio,
                                      variance=ctx.args.variance, **ctx.settings)
        except InfiniteObjective as exc:  # e.g. KL with zero modes and a sampler that ends with a noise floor
            ctx.bar.update()
            why = str(exc).removeprefix("divergence: ").replace("steps_list", "--steps")  # the report's own names
            sections.append(_skipped_section(DIVERGENCE_LABEL[div], why))
            continue
        warm += [res.alpha_bar for res in table.results.values()]  # the next divergence starts from these too
        ctx.data[f"table_{div}"] = table
        header, rows, verdict = divergence_table(table, div)
        label, stem = DIVERGENCE_LABEL[div], f"table_{div}"
        atomic_write_text(ctx.out / f"{stem}.md", _markdown(header, rows) + (f"\n{table.note}\n" if table.note else ""))
        caption = (f"{label} between the data and the generated Gaussian, {_sampler_label(ctx)}"
                   f", white start: the schedule optimised for {label} and the standard schedules."
                   + (f" {table.note}." if table.note else ""))
        atomic_write_text(ctx.out / f"{stem}.tex", _latex(header, rows, caption))
        figures, jsons = [], []
        for k in ctx.ks:
            res = table.results[k]
            figures.append(f"schedule_{div}_K{k}.png")
            ctx.submit(_figure_job, res, ctx.S, ctx.out / figures[-1])
            # the insight section's heuristic fits, in the workers meanwhile (2-3 s of the parent's time otherwise)
            ctx.data.setdefault("fits", {})[(div, k)] = ctx.submit(fit_heuristics, res, ctx.S)
            jsons.append(f"schedule_{div}_K{k}.json")
            atomic_write_json(ctx.out / jsons[-1], res.to_dict())
        ctx.bar.update()
        sections.append(_schedule_section(div, label, stem, header, rows, verdict, table.note, figures, jsons,
                                          ctx.ks))
    return sections


def _skipped_section(label: str, why: str) -> Section:
    """A divergence the report cannot optimise for, with the reason."""
    text = f"Skipped: {why}."
    return Section(lambda: [f"## Schedules optimised for {label}", "", text, ""],
                   lambda: [f"<h2>Schedules optimised for {html.escape(label)}</h2>", f"<p>{_html.inline(text)}</p>"],
                   lambda: [f"{label}: skipped ({why})"])


#: what the optimised schedule does against the standard schedules (``divergence_table``'s verdict), in words
_VERDICT_WORDS = {"beats": "beats every standard schedule", "loses": "does NOT beat every standard schedule",
                  "matches": "matches or beats every standard schedule"}
_TIE = ", and equals at least one (the endpoints leave little to optimise, or every schedule scores the same)"


#: what a section's figures show next to its table, where the units differ (audit of 6 December: the table's W2
#: 4.785 beside the figure's "W2²: optimised 22.9")
_UNITS = {"w2": "The table gives W2, the distance; the figures' titles and legends give the objective the optimiser "
                "minimises, W2² (the table's values squared)."}


def _schedule_section(div: str, label: str, stem: str, header: list[str], rows: list[list[str]], outcome: str,
                      note: str, figures: list[str], jsons: list[str], ks: list[int]) -> Section:
    fair = " that meets its endpoint constraint" if note else ""
    tie = _TIE if outcome == "matches" else ""
    verdict = (f"The optimised schedule {_VERDICT_WORDS[outcome]} listed{fair}{tie}." if outcome != "loses"
               else "Note: the optimised schedule does not beat every standard schedule.")

    def md() -> list[str]:
        lines = [f"## Schedules optimised for {label}", "",
                 f"{label} of the generated spectrum to the data, for the optimised schedule and the "
                 f"standard schedules (best per column among the schedules that meet the endpoint constraint, i.e. without †, in bold). {verdict}", "", _markdown(header, rows)]
        lines += [note, ""] if note else []
        lines += [f"Also as LaTeX: [`{stem}.tex`]({stem}.tex). Schedules as JSON: "
                  + ", ".join(f"[`{j}`]({j})" for j in jsons) + ".", ""]
        lines += [_UNITS[div], ""] if div in _UNITS else []
        for fig in figures:
            lines += [f"![{fig}]({fig})", ""]
        return lines

    def htm() -> list[str]:
        esc = html.escape
        out = [f"<h2>Schedules optimised for {esc(label)}</h2>",
               f"<p>{esc(label)} to the data (best per column among the schedules without †, in bold). {_html.inline(verdict)}</p>",
               _html.table(header, rows)]
        out += [f"<p>{_html.inline(note)}</p>"] if note else []
        out.append(f'<p>Also as LaTeX: <a href="{esc(stem)}.tex">{esc(stem)}.tex</a>. Schedules as JSON: '
                   + ", ".join(f'<a href="{esc(j)}">{esc(j)}</a>' for j in jsons) + ".</p>")
        out += [f"<p>{_html.inline(_UNITS[div])}</p>"] if div in _UNITS else []
        return out + [f'<img src="{esc(f)}" alt="{esc(f)}" width="900">' for f in figures]

    def console() -> list[str]:
        what = _VERDICT_WORDS[outcome] + (" meeting its constraint" if note and outcome != "loses" else "")
        return [f"  {label}: the optimised schedule {what} for K = {', '.join(map(str, ks))}"]

    return Section(md, htm, console)


def start_probe(ctx: Context) -> None:
    """Start the learned-model probe in a worker at once: it does not depend on the report's spectrum."""
    from .probe import cached_report_section, report_section

    if ctx.args.probe_samples:
        kw = dict(steps=min(ctx.ks), n_samples=ctx.args.probe_samples, seeds=(ctx.args.seed, ctx.args.seed + 1))
        hit = cached_report_section(ctx.out, **kw)  # an unsafe cache directory or entry is reported here, once
        if hit is None:
            ctx.data["probe"] = ctx.submit(report_section, ctx.out, **kw)
        else:  # a warm report reads the section here: no worker
            ctx.data["probe"] = fut = Future()
            fut.set_result(hit)


def probe_section(ctx: Context) -> list[Section]:
    """Does the optimised schedule help a learned model? (:mod:`symsched.commands.probe`; a note when torch is
    missing). Runs in a worker from the start of the report (:func:`start_probe`)."""
    fut = ctx.data.get("probe")
    if fut is None:
        return []
    ctx.bar.update()
    return [Section(lambda: [fut.result().markdown, ""], lambda: [fut.result().html])]


def insight_section(ctx: Context) -> Section:
    """Spectral insight (:func:`symsched.insight.explain.report_section`) on the optimised schedules."""
    from ..insight.explain import report_section

    results = {div: ctx.data[f"table_{div}"].results for div in _divergences() if f"table_{div}" in ctx.data}
    if not results:
        return Section(lambda: [], lambda: [])
    fits = {key: fut.result() for key, fut in ctx.data.get("fits", {}).items()}  # (from the workers)
    md, htm = report_section(ctx.S, results, ctx.out, fits=fits)
    return Section(lambda: [md], lambda: [htm])


def reading_section(ctx: Context) -> Section:
    """How to read the figures."""
    text = ("In each figure the left panel shows the schedules (log-SNR per step, noisiest first), the middle "
            "one the output PSD against the data, the right one the per-frequency ratio P/S. Low-frequency modes "
            "(large S) are decided early, at high noise; high-frequency modes (small S) only emerge when the "
            "noise level drops below their variance, so the steps a schedule spends at low noise are what "
            "the fine detail receives.")
    return Section(lambda: ["## Reading the curves", "", text, ""],
                   lambda: ["<h2>Reading the curves</h2>", f"<p>{html.escape(text)}</p>"])


#: The report, in order. Each entry maps the :class:`Context` to a Section or a list of them.
SECTIONS: list[SectionMaker] = [derivations_section, montecarlo_section, schedules_section, probe_section,
                                insight_section, reading_section]


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------


def _sampler_label(ctx: Any) -> str:
    """"ddim (eta=0)", "euler_ancestral (eta=1)" or "dpmpp_2m (library defaults; max_step_ratio=5)": the sampler as
    the report ran it, with the step-ratio cap of a sampler that extrapolates from earlier levels."""
    from ..optimize import _resolved, _settings_text, _step_ratio_as_run

    sampler, variance = ctx.args.sampler, ctx.args.variance
    text = _settings_text(sampler, _resolved(sampler, ctx.settings)).strip()
    text = " ".join(t for t in (text, "variance=beta" if variance == "beta" else "") if t) or "library defaults"
    other = {k: v for k, v in ctx.settings.items() if k != "eta"}
    ratio = _step_ratio_as_run(sampler, ctx.ks, ctx.settings.get("eta"), variance, other, ctx.args.max_step_ratio)
    cap = f"; max_step_ratio={ratio:g}" if ratio is not None else ""  # (inf: the uncapped optimum, said as such)
    return f"{sampler} ({text}{cap})"


def run(args: argparse.Namespace) -> int:
    from .._validate import MAX_MMD_SAMPLES, MAX_SAMPLES, as_positive_int
    from ..insight.explain import check_flow_steps
    from ..spectra import load_spectrum

    started = time.perf_counter()
    ks = _steps(args.steps)
    check_flow_steps(ks, args.sampler, "--steps")
    n = as_positive_int(args.samples, "--samples", MAX_SAMPLES, limit="MAX_SAMPLES")
    settings = _settings.settings(args, args.variance)
    from ..optimize import _check_step_ratio

    _check_step_ratio(args.max_step_ratio, ())  # (None, the default, passes)
    if args.probe_samples != 0:
        if args.probe_samples < 2:
            raise ValueError(f"--probe-samples must be 0 (skip) or at least 2 (got {args.probe_samples})")
        # (MMD² of the probe sums over every pair of samples: its bound, named here, not as the probe's --samples)
        as_positive_int(args.probe_samples, "--probe-samples", MAX_MMD_SAMPLES, limit="MAX_MMD_SAMPLES")
    n_jobs = _jobs(getattr(args, "jobs", None))
    # the spectrum is read and checked before any work (a bad file is one line, nothing written)
    S = np.asarray(load_spectrum(args.spectrum), dtype=np.float64)
    out = Path(args.out)
    _precheck(out)
    bar = None
    failed = True
    try:
        with staged_folder(out, "the report") as stage:  # a failed run leaves --out as it was
            jobs = _Jobs(n_jobs)  # first: the workers are forked while this process runs one thread
            try:  # the figure workers stop before the staging folder goes (they write into it)
                bar = _progress_bar(args)
                ctx = Context(args=args, out=stage, S=S, ks=ks, settings=settings, n=n, jobs=jobs, bar=bar,
                              started=started)
                sections = _run_sections(ctx, out)
                failed = False
            finally:
                jobs.close(cancel=failed)
        bar.update()
    finally:
        if bar is not None:
            bar.close()
    _print_console(ctx, sections, out)
    return 0


def _run_sections(ctx: Context, out: Path) -> list[Section]:
    """Every section of :data:`SECTIONS`, then the figures and the summary (into the staging folder ``ctx.out``)."""
    sections: list[Section] = []
    start_probe(ctx)
    for make in SECTIONS:
        made = make(ctx)
        sections += made if isinstance(made, list) else [made]
    ctx.stage("figures")
    ctx.jobs.wait()
    ctx.bar.update()
    ctx.stage("summary")
    _write_summary(ctx, sections, out)
    return sections


def _progress_bar(args: argparse.Namespace) -> Any:
    """The report's progress bar on stderr (tqdm; off with --no-progress, or when stderr is not a terminal)."""
    total = len(_divergences()) + 4 + (1 if args.probe_samples else 0)
    return _bar_class()(total=total, desc="symsched report", unit="stage", file=sys.stderr,
                        disable=True if args.no_progress else None)


@lru_cache(maxsize=None)
def _bar_class() -> Any:
    """tqdm without its monitor thread (for this class only; it is started by every bar, disabled ones too): a
    thread running while the workers start would make them spawned, not forked (:func:`_start_method`), and the
    report's bar, updated per stage, needs no monitor."""
    from tqdm import tqdm

    return type("ReportBar", (tqdm,), {"monitor_interval": 0})


#: names every report writes in --out, as a folder (True) or a file (False): checked before the work
_ALWAYS_WRITTEN = {"derivations": True, "summary.md": False, "summary.html": False}


def _precheck(out: Path) -> None:
    """ValueError naming --out before any work when a name every report writes exists there as the other kind
    (:func:`symsched._io.publish` checks every name again at the end, when the whole list is known)."""
    for name, folder in _ALWAYS_WRITTEN.items():
        check_kind(out, out / name, folder, "the report")


def _intro(ctx: Context, elapsed: float) -> list[str]:
    from ..optimize import DEFAULT_DIVERGENCE

    return [
        f"Spectrum: `{ctx.args.spectrum}` — shape {tuple(ctx.S.shape)}, {ctx.S.size} modes. "
        f"Sampler: {_sampler_label(ctx)}, white start; steps K = "
        f"{', '.join(map(str, ctx.ks))}; default objective: {DIVERGENCE_LABEL.get(DEFAULT_DIVERGENCE, DEFAULT_DIVERGENCE)}. "
        f"Generated in {elapsed:.1f} s.",
        "",
        "Under a Gaussian model of the data every sampler driven by the exact denoiser acts on each "
        "mode independently, so its output spectrum P(S) and its distance to the data follow in closed "
        "form. The schedules below minimise that distance; they are optimal *for the Gaussian model of "
        "this spectrum* (see Limitations in the README).",
    ]


def _write_summary(ctx: Context, sections: list[Section], final: Optional[Path] = None) -> None:
    """Write ``summary.md`` / ``summary.html`` into ``ctx.out`` (the staging folder of the report ``final``)."""
    from .._io import atomic_write_text

    elapsed = time.perf_counter() - ctx.started
    ctx.data["elapsed"] = elapsed
    intro = _intro(ctx, elapsed)
    md = ["# symsched report", "", *intro, ""]
    body = ["<h1>symsched report</h1>",
            f"<p>{_html.inline(intro[0])}</p><p>{_html.inline(intro[2])}</p>"]
    for sec in sections:
        md += sec.markdown()
        body += sec.html()
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{display:block;margin:1em 0}")
    atomic_write_text(ctx.out / "summary.md", "\n".join(md))
    atomic_write_text(ctx.out / "summary.html", "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                      f"<title>symsched report</title><style>{style}</style></head><body>\n"
                      + "\n".join(body) + "\n</body></html>\n")
    if final is None:  # written in place
        _print_console(ctx, sections, ctx.out)


def _print_console(ctx: Context, sections: list[Section], out: Path) -> None:
    """The closing lines on stdout: where the summary is, and each section's console lines."""
    elapsed = ctx.data.get("elapsed", time.perf_counter() - ctx.started)
    print(f"symsched report: wrote {out}/summary.md and {out}/summary.html ({elapsed:.1f} s)")
    for sec in sections:
        for line in sec.console():
            print(line)
