r"""Pictures of schedules and of the spectra they produce (matplotlib, Agg-safe, no pyplot state).

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot``, so it works
headless and never touches a global figure list), returns it, and with ``path=`` also writes it
atomically (the format follows the suffix: ``.png``, ``.pdf``, ``.svg``) with :func:`save_figure`: missing
folders on the path are created (as ``mkdir -p``, as every writer of symsched does); a folder on it that is a
file (``/dev/null/x.png``) is an OSError.

Spectra are drawn according to their shape:

* 2-D ``(H, W)`` or 3-D ``(H, W, C)`` arrays are FFT-grid PSDs: radially averaged with
  :func:`symsched.spectra.radial_psd` (3-D: the channel-summed PSD, i.e. total power per ring),
  plotted against the radial frequency;
* 1-D arrays (PCA eigenvalues, or any list of modes) are plotted as sorted modes: the target
  ``S`` sorted in decreasing order and the generated ``P`` of the same modes, against the mode rank.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._io import atomic_write, check_not_a_folder
from ._validate import ArgumentTypeError, _show, as_int, as_levels, as_positive, as_spectrum, check_names
from .schedules import alpha_bar_to_log_snr

__all__ = [
    "plot_schedules",
    "plot_output_psd",
    "plot_frequency_error",
    "plot_result",
    "save_figure",
]

Array = NDArray[np.float64]
PathLike = Union[str, Path]

_OPT_STYLE = dict(color="black", lw=2.2, zorder=5)


#: Margins of every figure, in inches (left, right, bottom, top; top grows by _SUPTITLE with a suptitle)
#: and the gap between panels. Fixed margins instead of a layout engine: these figures always have
#: the same furniture, and a layout pass costs as much as drawing the figure once more.
_MARGINS = (0.8, 0.2, 0.6, 0.4)
_SUPTITLE = 0.35
_GAP = (0.85, 0.75)  # (between columns, between rows)
#: Curves of more points than this (sorted PCA modes) are thinned to log-spaced ranks: on a log axis
#: at figure resolution the eye cannot tell the difference.
_MAX_POINTS = 2000


def _figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.2,
            margins: tuple[float, float, float, float] = _MARGINS, gap: tuple[float, float] = _GAP) -> tuple[Any, Any]:
    """A Figure of ``nrows x ncols`` panels of ``width x height`` inches each, placed with fixed ``margins`` (left,
    right, bottom, top) and ``gap`` (between columns, rows) in inches: wider ones for panels with colour bars."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows))
    fig._symsched_layout = (margins, gap)  # kept for _arrange (a suptitle re-arranges the panels)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    _arrange(fig, suptitle=False)
    return fig, axes


def _arrange(fig: Any, *, suptitle: bool) -> Any:
    """Place the panels with the fixed margins; titles sit at the top of their axes (no tick labels there)."""
    w, h = fig.get_size_inches()
    margins, gap = getattr(fig, "_symsched_layout", (_MARGINS, _GAP))
    left, right, bottom, top = margins
    top += _SUPTITLE if suptitle else 0.0
    gs = fig.axes[0].get_subplotspec().get_gridspec() if fig.axes else None
    nrows, ncols = (gs.nrows, gs.ncols) if gs is not None else (1, 1)
    aw = (w - left - right - (ncols - 1) * gap[0]) / ncols
    ah = (h - bottom - top - (nrows - 1) * gap[1]) / nrows
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=gap[0] / aw, hspace=gap[1] / ah)
    for ax in fig.axes:
        ax._autotitlepos = False  # the automatic title placement measures every tick label: skip it
    return fig


def _suptitle(fig: Any, text: str) -> Any:
    """``fig.suptitle(text)`` in the top margin :func:`_arrange` reserves for it (panel titles no longer overlap), at a
    font size that fits the figure's width (a one-panel figure clipped a long title at 12 pt)."""
    width = fig.get_size_inches()[0]
    size = min(12.0, max(7.0, 12.0 * (width - 0.2) / max(0.1, 0.1 * len(text))))  # ~0.1 in per char at 12 pt
    fig.suptitle(text, fontsize=size)
    return _arrange(fig, suptitle=True)


def _integer_steps(*axes: Any) -> None:
    """Step axes tick at whole steps only (K = 5 showed 1.5, 2.5, ...; one step, 0.5 to 1.5 in tenths)."""
    from matplotlib.ticker import MaxNLocator

    for a in axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _note_undrawn_levels(ax: Any, log_snrs: Any, *, flow: bool = False) -> Optional[Any]:
    """Say in ``ax`` (lower right, small print) which steps of the log-SNR curves ``log_snrs`` are at log-SNR -inf
    (alpha_bar = 0, pure noise: flow matching's t = 1, a zero-terminal-SNR start), which no line can draw: a flow
    figure started at step 2 without a word. Returns the Text, or None when every level is finite."""
    steps = sorted({int(i) + 1 for ls in log_snrs for i in np.flatnonzero(np.isneginf(np.asarray(ls, float)))})
    if not steps:
        return None
    where = "t = 1" if flow else "ᾱ = 0"
    text = f"levels at {where} (log-SNR = −∞, step {', '.join(map(str, steps))}): not drawn"
    return ax.text(0.98, 0.03, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
                   bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9))


def _thin(x: Array, *ys: Array) -> tuple[Array, ...]:
    """(x, *ys) with at most about _MAX_POINTS log-spaced points of a long sorted-mode curve."""
    if x.size <= _MAX_POINTS:
        return (x, *ys)
    idx = np.unique(np.round(np.geomspace(1, x.size, _MAX_POINTS)).astype(np.int64) - 1)
    return (x[idx], *(y[idx] for y in ys))


def figure_format(path: PathLike, name: str = "path") -> str:
    """The figure format of ``path`` from its suffix (none: ``"png"``); ValueError naming ``name`` when matplotlib
    writes no such figure. Cheap enough to run before any work (no figure is made)."""
    from matplotlib.backend_bases import FigureCanvasBase

    text = os.fspath(path)
    if not text.strip():
        raise ValueError(f"{name} must name a file (got {text!r})")
    if text.endswith(("/", os.sep)) or (os.altsep and text.endswith(os.altsep)):  # Path() would drop the separator
        raise ValueError(f"{name} {text!r} names a folder (it ends in {text[-1]!r}), not a file: give a file name, "
                         "e.g. figures/plot.png")
    check_not_a_folder(path, name, "plot.png")  # (audit of 6 December: SweepResult.plot(path=folder))
    p = Path(path)
    fmt = p.suffix.lstrip(".").lower() or "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"{name}: matplotlib writes no '.{fmt}' figures ({str(p)!r}); use one of "
                         f"{', '.join('.' + k for k in sorted(supported))}")
    if fmt == "pgf":  # the pgf backend measures text with a TeX engine (rcParams["pgf.texsystem"], xelatex by default)
        import shutil

        import matplotlib

        tex = str(matplotlib.rcParams["pgf.texsystem"])
        if shutil.which(tex) is None:
            raise ValueError(f"{name}: '.pgf' figures need matplotlib's TeX engine {tex!r} (rcParams['pgf.texsystem']),"
                             f" which is not on PATH ({str(p)!r}); use .pdf or .svg, or install {tex}")
    return fmt


def save_figure(fig: Any, path: PathLike, *, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix, Agg canvas for raster); returns the path.

    ``fig.savefig(tmp, format=suffix or "png", dpi=dpi)`` to a temporary file in the target folder, then
    ``os.replace(tmp, path)``. ``fig``: a matplotlib Figure; ``dpi``: dots per inch (raster size = figure
    inches x dpi). Raises TypeError when ``fig`` is no Figure (no ``savefig``), ``path`` is not a str or
    path-like or ``dpi`` is not a real number, ValueError when ``dpi`` is not a finite number > 0 (or makes a raster
    format larger than :data:`MAX_PIXELS` or 65536 pixels a side), ``path`` is
    empty, ends in a separator or names an existing folder, or matplotlib writes no figure of its suffix, and
    OSError (``filename`` = ``path``) when it cannot be written (an unwritable folder, a folder on the path that
    is a file). Missing folders on the path are created (as ``mkdir -p``): every writer of
    symsched (figures, tables, weights, ``explain``'s folder, the command line's ``--out``) goes through
    :func:`symsched._io.atomic_write`, which does so.
    Source: ``matplotlib.figure.Figure.savefig``; :func:`symsched._io.atomic_write`.
    """
    if not callable(getattr(fig, "savefig", None)) or not callable(getattr(fig, "get_axes", None)):
        raise ArgumentTypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
    dpi = as_positive(dpi, "dpi")
    fmt = figure_format(path)
    _check_raster_size(fig, fmt, dpi)
    for ax in fig.get_axes():
        _clamp_log_limits(ax)

    def write(tmp: Path) -> None:
        import logging

        # PostScript draws translucent artists opaque, and says so every time: as a warning in older matplotlib,
        # through its logger in newer ones (a bare line on stderr under the command line: audit of 6 December)
        ps_log = logging.getLogger("matplotlib.backends.backend_ps")
        quiet = _DropMessage("The PostScript backend does not support transparency")
        ps_log.addFilter(quiet)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The PostScript backend does not support transparency")
                _reproducible_savefig(fig, tmp, fmt, dpi)
        finally:
            ps_log.removeFilter(quiet)

    return atomic_write(Path(path), write)


#: the largest raster a figure is written as: 2^27 pixels (512 MiB as RGBA), each side below Agg's 2^16
MAX_PIXELS = 2**27
_RASTER_FORMATS = frozenset({"png", "jpg", "jpeg", "tif", "tiff", "webp", "raw", "rgba", "gif"})


def _check_raster_size(fig: Any, fmt: str, dpi: float) -> None:
    """ValueError naming ``dpi`` when a raster format at ``dpi`` exceeds :data:`MAX_PIXELS` or Agg's 2^16 per side
    (matplotlib's own error names no argument, or it runs out of memory)."""
    if fmt not in _RASTER_FORMATS:
        return
    wi, hi = (float(v) for v in fig.get_size_inches())
    w, h = wi * dpi, hi * dpi
    if max(w, h) >= 2**16 or w * h > MAX_PIXELS:
        raise ValueError(f"dpi={dpi:g} makes this {wi:g} x {hi:g} inch figure {w:.0f} x {h:.0f} pixels: a {fmt} is at "
                         f"most {MAX_PIXELS} pixels and below 65536 per side (lower dpi, or write a vector format)")


#: savefig metadata that leaves out the date a vector format would record (PNG records none)
_NO_DATE = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}


def _reproducible_savefig(fig: Any, tmp: Path, fmt: str, dpi: float) -> None:
    """``fig.savefig`` whose bytes depend on the figure alone (audit of 6 December: ``validate --plot x.pdf`` differed
    between identical runs by its creation date): no date in PDF and SVG metadata, SVG element ids from a fixed salt
    instead of random ones, and PostScript written through a buffer (its title would be the temporary file's name)
    with its ``%%CreationDate`` comment line left out (matplotlib writes one unless ``SOURCE_DATE_EPOCH`` is set)."""
    import gzip
    import io

    import matplotlib

    drawn = "svg" if fmt == "svgz" else fmt  # (svgz: the SVG, compressed below)
    kw = {"metadata": _NO_DATE[drawn]} if drawn in _NO_DATE else {}
    with matplotlib.rc_context({"svg.hashsalt": "symsched"}):
        if fmt not in ("ps", "eps", "svgz"):
            fig.savefig(tmp, format=fmt, dpi=dpi, **kw)
            return
        buf = io.BytesIO()
        fig.savefig(buf, format=drawn, dpi=dpi, **kw)
    if fmt == "svgz":  # (gzip's header holds a time too)
        Path(tmp).write_bytes(gzip.compress(buf.getvalue(), mtime=0))
        return
    lines = buf.getvalue().splitlines(keepends=True)
    Path(tmp).write_bytes(b"".join(x for x in lines if not x.startswith(b"%%CreationDate:")))


class _DropMessage:
    """A logging filter that drops the records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def filter(self, record: Any) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)


def _nice_log(axis: Any, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """1-2-5 (or ``subs``) major ticks labelled as plain numbers, unlabelled minor ticks (short log ranges stay
    readable)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10.0, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


#: log10 of the widest view a log axis may take: matplotlib adds margins in log space and maps them back with exp,
#: which overflows (and leaves the panel empty, with a RuntimeWarning) beyond float64's range
_LOG10_VIEW = (math.log10(np.finfo(np.float64).tiny), math.log10(np.finfo(np.float64).max))


def _clamp_log_limits(ax: Any) -> None:
    """Fix the limits of a log axis whose autoscaled view (data range plus matplotlib's margins, in decades) would
    leave float64: data spanning 1e4 to 6e301 (a white start on a spectrum near 1e300) gave an empty panel. Other
    axes keep autoscaling."""
    from matplotlib.ticker import FixedLocator, NullLocator

    for name in ("x", "y"):
        axis = ax.xaxis if name == "x" else ax.yaxis
        if axis.get_scale() != "log" or not (ax.get_autoscalex_on() if name == "x" else ax.get_autoscaley_on()):
            continue
        lo, hi = ax.dataLim.intervalx if name == "x" else ax.dataLim.intervaly
        lo = max(float(lo), float(ax.dataLim.minposx if name == "x" else ax.dataLim.minposy))
        if not (0.0 < lo <= float(hi) < math.inf):
            continue
        l0, l1 = math.log10(lo), math.log10(float(hi))
        pad = (ax.margins()[0 if name == "x" else 1]) * (l1 - l0)
        if l0 - pad < _LOG10_VIEW[0] or l1 + pad > _LOG10_VIEW[1]:
            v0, v1 = max(l0 - pad, _LOG10_VIEW[0]), min(l1 + pad, _LOG10_VIEW[1])
            (ax.set_autoscalex_on if name == "x" else ax.set_autoscaley_on)(False)  # first: set_*lim autoscales
            top = float(np.finfo(np.float64).max) if v1 >= _LOG10_VIEW[1] else 10.0**v1  # (10**log10(max) overflows)
            (ax.set_xlim if name == "x" else ax.set_ylim)(10.0**v0, top)
            # ticks at whole decades inside the view (LogLocator's candidates run a stride past it, to inf)
            step = max(1, math.ceil((math.floor(v1) - math.ceil(v0)) / 8))
            axis.set_major_locator(FixedLocator([10.0**d for d in range(math.ceil(v0), math.floor(v1) + 1, step)]))
            axis.set_minor_locator(NullLocator())


def _no_empty_log_axis(ax: Any) -> None:
    """A log axis without one drawable point (e.g. an all-zero spectrum, whose curves are all masked, or curves whose
    values are all NaN) becomes linear, with a note in the panel: matplotlib cannot scale it and would fail when the
    figure is drawn. A point counts for an axis when every coordinate it has in data units is finite, and positive
    on a log axis (matplotlib's data limits skip the others)."""
    logs = {"x": ax.xaxis.get_scale() == "log", "y": ax.yaxis.get_scale() == "log"}
    if not any(logs.values()):
        return
    drawable = {"x": False, "y": False}
    for line in ax.get_lines():
        tr = line.get_transform()
        in_data = {"x": tr in (ax.transData, ax.get_xaxis_transform()),  # axhline: x in axes fraction, y in data
                   "y": tr in (ax.transData, ax.get_yaxis_transform())}
        xy = {"x": np.asarray(line.get_xdata(), dtype=np.float64), "y": np.asarray(line.get_ydata(), dtype=np.float64)}
        ok = np.ones(np.broadcast(xy["x"], xy["y"]).shape, dtype=bool)
        for c in ("x", "y"):
            if in_data[c]:
                ok &= np.isfinite(xy[c]) & ((xy[c] > 0) if logs[c] else True)
        for c in ("x", "y"):
            drawable[c] |= bool(in_data[c] and ok.any())
    empty = [c for c in ("x", "y") if logs[c] and not drawable[c]]
    for c in empty:
        (ax.set_xscale if c == "x" else ax.set_yscale)("linear")
    if empty:
        ax.text(0.5, 0.5, "no positive value to draw on this log axis\n(e.g. every mode's variance is 0)",
                transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.3")


def _tidy_log_axes(ax: Any) -> None:
    """No overlapping minor tick labels on log axes; short ranges (< 2 decades) get 1-2-5 labels (a vertical axis
    below one decade every digit 1-9, so that a curve from 0.2 to 1 has labels near it), longer
    ones unlabelled minor ticks at 2 and 5 only (each tick and grid line is an artist drawn per figure:
    the default eight per decade made tick drawing most of a figure's cost)."""
    from matplotlib.ticker import LogLocator, NullFormatter

    _no_empty_log_axis(ax)
    _clamp_log_limits(ax)
    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log":
            continue
        lo, hi = sorted(lim)
        decades = math.log10(hi) - math.log10(lo) if lo > 0 else math.inf
        if decades < 1.0 and axis is ax.yaxis:  # (a P/S axis from 0.21 to 1 showed only 1 and 0.5, audit of
            # 5 December; on a horizontal axis nine labels per decade would overlap)
            _nice_log(axis, subs=tuple(float(s) for s in range(1, 10)))
        elif decades < 2.0:
            _nice_log(axis)
        else:
            axis.set_minor_locator(LogLocator(base=10.0, subs=(2.0, 5.0), numticks=12))
            axis.set_minor_formatter(NullFormatter())


def _ratio_axes(ax: Any, *, log_x: bool) -> None:
    """Axes for P/S: log y, the exact ratio 1 marked."""
    ax.axhline(1.0, color="tab:red", ls="--", lw=1.2, label="exact (P = S)")
    ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set_ylabel("P / S  (1 = exact; ring mean for FFT grids)")
    ax.grid(alpha=0.3, which="both")
    _tidy_log_axes(ax)


def _check_schedules(schedules: Mapping[str, ArrayLike]) -> dict[str, Array]:
    if not isinstance(schedules, Mapping):
        raise ArgumentTypeError(
            f"schedules must be a non-empty mapping name -> alpha_bar levels (got {_show(schedules)})")
    if not schedules:
        raise ValueError("schedules must be a non-empty mapping name -> alpha_bar levels")
    check_names(schedules, "schedules")  # (str(k) merged the schedules 1 and "1" into one silently)
    return {k: as_levels(v, f"schedules[{k!r}]") for k, v in schedules.items()}


def _check_title(title: Any) -> Optional[str]:
    """``title``: None (the plot's own) or a string; anything else a TypeError naming it."""
    if title is not None and not isinstance(title, str):
        raise ArgumentTypeError(f"title must be a string or None (got {type(title).__name__}: {_show(title)})")
    return title


def _style(name: str) -> dict[str, Any]:
    return dict(_OPT_STYLE) if name.lower().startswith("optim") else dict(lw=1.2, alpha=0.85)


def plot_schedules(
    schedules: Mapping[str, ArrayLike], *, title: Optional[str] = None, path: Optional[PathLike] = None
) -> Any:
    r"""Two panels: ``alpha_bar`` and log-SNR ``log(ab/(1-ab))`` per step, noisiest step first.

    Parameters
    ----------
    schedules : mapping str -> array_like, each shape (K_i,)
        Levels (strictly increasing in [0, 1)); a name starting with "optim" is drawn in bold black.
    title : str, optional
    path : path-like, optional
        Also write the figure there (atomically).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        ``schedules`` not a non-empty mapping (:class:`~symsched._validate.ArgumentTypeError` for a name that is not a
        string), or a schedule that is not 1-D strictly increasing in [0, 1);
        ``path`` errors as :func:`save_figure`.

    Source: docs/model.md §2 (log-SNR), §5 (levels, noisiest first).
    """
    _check_title(title)
    sch = _check_schedules(schedules)
    fig, ax = _figure(1, 2, width=5.2)
    for name, ab in sch.items():
        steps = np.arange(1, ab.size + 1)
        st = _style(name)
        ax[0, 0].plot(steps, ab, marker="o", ms=3, label=name, **st)
        ax[0, 1].plot(steps, alpha_bar_to_log_snr(ab), marker="o", ms=3, label=name, **st)
    ax[0, 0].set(xlabel="step (noisiest first)", ylabel=r"$\bar\alpha$", title=r"levels $\bar\alpha$")
    ax[0, 1].set(xlabel="step (noisiest first)", ylabel=r"log-SNR $\log(\bar\alpha/(1-\bar\alpha))$",
                 title="log-SNR")
    _note_undrawn_levels(ax[0, 1], [alpha_bar_to_log_snr(ab) for ab in sch.values()])
    for a in ax[0]:
        a.grid(alpha=0.3)
    ax[0, 1].legend(fontsize=7, loc="best")
    _integer_steps(*ax[0])
    if title:
        _suptitle(fig, title)
    if path is not None:
        save_figure(fig, path)
    return fig


def _outputs(S: Array, schedules: dict[str, Array], sampler: str, init: str, **settings: Any) -> dict[str, Array]:
    from .optimize import schedule_output

    return {n: schedule_output(S, ab, sampler=sampler, init=init, **settings) for n, ab in schedules.items()}


def _sorted_modes(S: Array) -> Optional[NDArray[np.intp]]:
    """Unless S is an FFT grid ((H, W) or (H, W, C): drawn as radial profiles, None): indices into ``S.ravel()`` of
    the non-zero modes by decreasing S (zero modes are exact, not drawn), so that every curve is drawn at the rank
    of the data mode it belongs to (a 4-D spectrum's P/S was sorted by its own values)."""
    if S.ndim in (2, 3):
        return None
    flat = S.ravel()
    order = np.argsort(flat)[::-1]
    return order[flat[order] > 0]


def _ranked(a: Array, order: Optional[NDArray[np.intp]]) -> Array:
    """``a`` as drawn: its modes in the order of :func:`_sorted_modes` (``a`` itself for an FFT grid)."""
    return a if order is None else np.asarray(a).ravel()[order]


def _positive(y: Array) -> Array:
    """NaN where y <= 0 (not drawable on a log axis)."""
    return np.where(y > 0, y, np.nan)


def _profile(spec: Array) -> tuple[Array, Array, str]:
    """(x, y, xlabel): radial average for FFT grids, sorted modes for 1-D."""
    from .spectra import radial_psd

    if spec.ndim == 1:
        return np.arange(1, spec.size + 1, dtype=np.float64), spec, "mode rank (sorted by data variance)"
    if spec.ndim == 2:
        f, p = radial_psd(spec)
        return f, p, "radial frequency |f| (cycles/pixel)"
    if spec.ndim == 3:
        f, p = radial_psd(spec, channel_axis=-1)
        return f, p.sum(axis=-1), "radial frequency |f| (cycles/pixel)"
    raise ValueError(f"a profile is drawn of a 1-D, (H, W) or (H, W, C) spectrum (got shape {spec.shape}); "
                     "rank other shapes with _ranked first")  # pragma: no cover (every caller ranks them)


def plot_output_psd(
    spectrum: ArrayLike,
    schedules: Mapping[str, ArrayLike],
    *,
    sampler: str = "ddim",
    eta: Optional[float] = None,
    variance: str = "posterior",
    init: str = "white",
    title: Optional[str] = None,
    path: Optional[PathLike] = None,
) -> Any:
    r"""Output PSD ``P(S)`` of each schedule against the target ``S`` (log-log).

    2-D/3-D FFT-grid spectra are radially averaged (3-D: channel sum); 1-D spectra (and any other shape, taken as
    a flat list of modes) are plotted as modes sorted by decreasing ``S`` (``P`` in the same order).

    Parameters
    ----------
    spectrum : array_like, shape (d,), (H, W) or (H, W, C) (other shapes: modes by rank)
    schedules : mapping str -> alpha_bar levels
    sampler, eta, variance, init
        As :func:`symsched.optimize.optimize_schedule` (VE samplers through sigma = sqrt((1-ab)/ab); ``eta``
        None: the sampler's own default).
    title : str, optional
    path : path-like, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        A bad spectrum (empty, not finite, negative) or schedules (as :func:`plot_schedules`); an unknown sampler
        or init, or settings the sampler refuses (:func:`symsched.optimize.schedule_output`); ``path`` errors as
        :func:`save_figure`.

    Source: docs/model.md §5 (``P(S)``); :func:`symsched.spectra.radial_psd` for FFT grids.
    """
    _check_title(title)
    S = as_spectrum(spectrum)
    sch = _check_schedules(schedules)
    outs = _outputs(S, sch, sampler, init, eta=eta, variance=variance)
    fig, ax = _figure()
    a = ax[0, 0]
    order = _sorted_modes(S)
    x, y, xlabel = _profile(_ranked(S, order))
    pos = x > 0
    a.loglog(*_thin(x[pos], _positive(y[pos])), color="tab:red", lw=2.5, ls="--", label="data S", zorder=6)
    for name, P in outs.items():
        _, yp, _ = _profile(_ranked(P, order))
        a.loglog(*_thin(x[pos], _positive(yp[pos])), label=name, **_style(name))
    a.set(xlabel=xlabel, ylabel="PSD" + (" (sum over channels)" if S.ndim == 3 else ""),
          title=title or f"output PSD vs data ({sampler})")
    _tidy_log_axes(a)
    a.grid(alpha=0.3, which="both")
    a.legend(fontsize=7)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_frequency_error(
    spectrum: ArrayLike,
    schedules: Mapping[str, ArrayLike],
    *,
    sampler: str = "ddim",
    eta: Optional[float] = None,
    variance: str = "posterior",
    init: str = "white",
    title: Optional[str] = None,
    path: Optional[PathLike] = None,
) -> Any:
    r"""Per-frequency error: the ratio ``P/S`` of each schedule (ring mean for FFT grids, per mode for 1-D).

    Zero modes (``S = 0``, generated exactly) count as ratio 1. Log y axis with the exact ratio 1
    marked, so under-dispersion (``P/S < 1``) and over-dispersion read symmetrically.

    Shapes and arguments as :func:`plot_output_psd`. Returns the Figure. Raises ValueError as
    :func:`plot_output_psd` (and ``path`` errors as :func:`save_figure`). Source: docs/model.md §5.
    """
    _check_title(title)
    S = as_spectrum(spectrum)
    sch = _check_schedules(schedules)
    outs = _outputs(S, sch, sampler, init, eta=eta, variance=variance)
    fig, ax = _figure()
    a = ax[0, 0]
    order = _sorted_modes(S)
    for name, P in outs.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(S > 0, P / np.where(S > 0, S, 1.0), 1.0)
        if S.ndim == 3:
            from .spectra import radial_psd

            x, r = radial_psd(ratio, channel_axis=-1)
            r = r.mean(axis=-1)
            xlabel = "radial frequency |f| (cycles/pixel)"
        else:
            x, r, xlabel = _profile(_ranked(ratio, order))
        a.plot(*_thin(x, _positive(r)), label=name, **_style(name))
    _ratio_axes(a, log_x=S.ndim not in (2, 3))  # ranks (log), or radial frequency
    a.set(xlabel=xlabel, title=title or f"per-frequency error ({sampler})")
    a.grid(alpha=0.3, which="both")
    a.legend(fontsize=7)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_result(
    result: Any,
    spectrum: ArrayLike,
    *,
    n_baselines: int = 3,
    path: Optional[PathLike] = None,
) -> Any:
    r"""One figure for an :class:`~symsched.optimize.OptimizeResult`: schedules, output PSD, error.

    Panels: ``l_k = log(ab_k/(1-ab_k))`` per step, ``P(S)`` against ``S``, and the ratio ``P/S``
    (docs/model.md §2, §5); the title gives the optimised and best standard divergence (§6).

    Shows the optimised schedule and the ``n_baselines`` best standard schedules (those that meet the constraints
    first) in three panels (levels' log-SNR per step; output PSD vs data; the ratio ``P/S`` per frequency). A standard
    schedule that does not meet the optimiser's endpoint constraint is marked "†"; the title compares
    with the best one that does.

    Parameters
    ----------
    result : OptimizeResult
    spectrum : array_like
        The spectrum it was optimised for (same shape conventions as :func:`plot_output_psd`).
    n_baselines : int >= 0
        How many baselines to draw (0: only the optimised schedule); a negative, non-integral or
        non-numeric value raises ValueError (:class:`~symsched._validate.ArgumentTypeError` for a wrong type).
    path : path-like, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        A bad spectrum or ``n_baselines``; an ArgumentTypeError when ``result`` is not an OptimizeResult;
        ``path`` errors as :func:`save_figure`.
    """
    from .optimize import OBJECTIVE_NAMES, OptimizeResult

    if not isinstance(result, OptimizeResult):
        raise ArgumentTypeError(f"result must be an OptimizeResult (from optimize_schedule), not {type(result).__name__}")
    S = as_spectrum(spectrum)
    k = as_int(n_baselines, "n_baselines", 0)
    feasible = getattr(result, "feasible", {})  # the best fair baselines first: unfair ones only fill up
    best = sorted(result.baselines.items(), key=lambda kv: (not feasible.get(kv[0], True), kv[1]))[:k]
    sch = {"optimised": result.alpha_bar}
    sch.update({n: result.baseline_schedules[n] for n, _ in best})
    outs = _outputs(S, sch, result.sampler, result.init, **result.settings)
    fig, ax = _figure(1, 3, width=5.0, height=4.3)
    _arrange(fig, suptitle=True)
    what = ("weighted " if result.weighted else "") + OBJECTIVE_NAMES[result.divergence]
    tag = {n: n + ("" if feasible.get(n, True) else " †") for n in sch}
    fair_name, fair_value = getattr(result, "best_feasible_baseline", best[0] if best else ("", math.inf))
    same = " meeting the constraint" if not all(feasible.get(n, True) for n in result.baselines) else ""
    fig.suptitle(
        f"{result.sampler}" + (f" η={result.eta:g}" if result.eta is not None else "")
        + f", K={result.steps}, {what}: optimised {result.value:.4g}"
        + (f" vs best standard{same} {fair_name} {fair_value:.4g}" if fair_name else "")
        + ("   († other endpoint)" if any(t.endswith("†") for t in tag.values()) else "")
    )
    a = ax[0, 0]
    for name, ab in sch.items():
        a.plot(np.arange(1, ab.size + 1), alpha_bar_to_log_snr(ab), marker="o", ms=3,
               label=f"{tag[name]} ({result.value if name == 'optimised' else result.baselines[name]:.3g})",
               **_style(name))
    a.set(xlabel="step (noisiest first)", ylabel="log-SNR", title="schedules")
    from .api import FLOW_SAMPLERS

    _note_undrawn_levels(a, [alpha_bar_to_log_snr(ab) for ab in sch.values()], flow=result.sampler in FLOW_SAMPLERS)
    _integer_steps(a)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)

    order = _sorted_modes(S)
    x, y, xlabel = _profile(_ranked(S, order))
    pos = x > 0
    b = ax[0, 1]
    b.loglog(*_thin(x[pos], _positive(y[pos])), color="tab:red", lw=2.5, ls="--", label="data S", zorder=6)
    c = ax[0, 2]
    for name, P in outs.items():
        _, yp, _ = _profile(_ranked(P, order))
        b.loglog(*_thin(x[pos], _positive(yp[pos])), label=tag[name], **_style(name))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(S > 0, P / np.where(S > 0, S, 1.0), 1.0)
        if S.ndim == 3:
            from .spectra import radial_psd

            xr, r = radial_psd(ratio, channel_axis=-1)
            r = r.mean(axis=-1)
        else:
            xr, r, _ = _profile(_ranked(ratio, order))
        c.plot(*_thin(xr, _positive(r)), label=tag[name], **_style(name))
    b.set(xlabel=xlabel, ylabel="PSD" + (" (sum over channels)" if S.ndim == 3 else ""), title="output PSD vs data")
    b.grid(alpha=0.3, which="both")
    b.legend(fontsize=7)
    _ratio_axes(c, log_x=S.ndim not in (2, 3))
    c.set(xlabel=xlabel, title="error per " + ("mode" if order is not None else "frequency") + ": P/S")
    _tidy_log_axes(b)
    if path is not None:
        save_figure(fig, path)
    return fig
