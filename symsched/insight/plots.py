r"""Pictures of the insight results (matplotlib ``Figure`` objects, no pyplot state; ``path=`` writes atomically).

* :func:`plot_sweep` — optimal log-SNR per step, one panel per K, coloured by the swept parameter;
* :func:`plot_fits` — an optimum, its best heuristic fits, and their residuals;
* :func:`plot_resolution_law` — the optimum's log-SNR offset against resolution next to the rules;
* :func:`plot_intermediate` — frequency x step heat maps of the generated fraction (coarse to fine)
  and of the sample's variance against the true marginal.

Same conventions as :mod:`symsched.plots`: 2-D/3-D spectra are FFT grids (radially averaged, 3-D
summed over channels); 1-D spectra are modes, grouped by rank of decreasing S.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import numpy as np
from numpy.typing import NDArray

from .._validate import ArgumentTypeError, _show, as_positive_int, as_step_counts
from ..api import FLOW_SAMPLERS
from ..plots import _check_title, _figure, _integer_steps, _note_undrawn_levels, _suptitle, save_figure
from .sweep import _numeric, value_labels

__all__ = ["plot_sweep", "plot_fits", "plot_resolution_law", "plot_intermediate", "band_profile"]

Array = NDArray[np.float64]
_MAX_GROUPS = 48  # mode-rank groups for 1-D spectra


def _check_type(value: Any, name: str, cls: type, origin: str) -> None:
    """TypeError naming ``name`` unless ``value`` is an instance of ``cls`` (the callers import their result class
    when called: the result modules import this one's functions lazily too)."""
    if not isinstance(value, cls):
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        raise ArgumentTypeError(f"{name} must be {article} {cls.__name__} (from {origin}) (got {_show(value)})")


def _flow(sweep: Any) -> bool:
    """Whether a sweep's optimisations ran a flow-matching sampler (their pure-noise level is then t = 1)."""
    return any(getattr(r, "sampler", None) in FLOW_SAMPLERS for r in sweep.results.values())


def _colours(values: Sequence[Any], cmap: str = "viridis") -> tuple[list[Any], Any]:
    """One colour per value: by value (log scale if all positive and spanning > 10x) or by position."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize

    cm = colormaps[cmap]
    if _numeric(values) and len(values) > 1:
        v = np.asarray(values, dtype=np.float64)
        if np.all(v > 0) and v.max() / v.min() > 10:
            norm: Any = LogNorm(v.min(), v.max())
        else:
            norm = Normalize(v.min(), v.max() if v.max() > v.min() else v.min() + 1)
        return [cm(0.9 * norm(x)) for x in v], norm
    n = max(len(values) - 1, 1)
    return [cm(0.9 * i / n) for i in range(len(values))], None


def plot_sweep(result: Any, *, steps: Union[int, Sequence[int], None] = None, title: Optional[str] = None,
               path: Any = None) -> Any:
    """Optimal log-SNR against step index (noisiest first), one panel per K, one line per parameter value.

    Parameters
    ----------
    result : SweepResult
    steps : int or sequence of int, optional
        The K to draw (default: all of the sweep's), at most 4 panels (the first four).
    title : str, optional
    path : path-like, optional

    Returns
    -------
    matplotlib.figure.Figure

    Each line is ``l_i = log(ab_i/(1-ab_i))`` of one optimum against its step i = 1..K
    (``result.log_snr(K)``, shape (n_values, K)). Raises ValueError for ``steps`` empty, repeating a K or
    naming a K not in the sweep's steps, TypeError for ``steps`` or ``title`` of the wrong type, and
    ValueError, TypeError or OSError for ``path`` as :func:`symsched.plots.save_figure`. Source: docs/model.md §2, §8.
    """
    from .sweep import SweepResult

    _check_type(result, "result", SweepResult, "symsched.insight.sweep")
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable

    _check_title(title)
    ks = list(result.steps) if steps is None else as_step_counts(steps, "steps")
    for k in ks:
        if k not in result.steps:
            raise ValueError(f"steps: K={k!r} is not in the sweep's steps {result.steps}")
    ks = ks[:4]
    fig, ax = _figure(1, len(ks), width=4.6, height=3.9)
    flow = _flow(result)
    cols, norm = _colours(result.values)
    labels = value_labels(result.values)
    for a, K in zip(ax[0], ks):
        L = result.log_snr(K)
        for j, v in enumerate(result.values):
            a.plot(np.arange(1, K + 1), L[j], marker="o", ms=3, lw=1.4, color=cols[j],
                   label=f"{result.parameter}={labels[j]}" if _numeric([v]) else labels[j])
        a.set(xlabel="step (noisiest first)", ylabel="log-SNR of the level", title=f"K = {K}")
        _note_undrawn_levels(a, L, flow=flow)
        _integer_steps(a)
        a.grid(alpha=0.3)
    if norm is not None:
        sm = ScalarMappable(norm=norm, cmap=colormaps["viridis"])
        fig.colorbar(sm, ax=ax[0, -1], label=result.parameter)
    else:
        ax[0, -1].legend(fontsize=7)
    from ..optimize import DEFAULT_DIVERGENCE

    div = result.settings.get("divergence", DEFAULT_DIVERGENCE)
    _suptitle(fig, title or f"optimal schedules ({div.upper()}) across {result.parameter}")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_fits(fit: Any, *, n_families: int = 4, title: Optional[str] = None, path: Any = None) -> Any:
    """The target schedule and its ``n_families`` best fits (log-SNR per step), and the residuals.

    Parameters
    ----------
    fit : HeuristicFit
    n_families : int, at least 1
        How many of the best families to draw.
    title : str, optional
    path : path-like, optional

    Returns
    -------
    matplotlib.figure.Figure

    Right panel: the residual ``l^fam_i - l_i`` per step (``fit.log_snr`` and each fit's: shape (K,); at least
    one family is drawn, unless none produced a valid schedule). Raises only ValueError, TypeError or OSError for ``path`` as
    :func:`symsched.plots.save_figure`. Source: docs/model.md §2; :mod:`symsched.insight.fits`.
    """
    from .fits import HeuristicFit

    _check_type(fit, "fit", HeuristicFit, "symsched.insight.fit_heuristics")
    n_best = as_positive_int(n_families, "n_families")
    _check_title(title)
    fig, ax = _figure(1, 2, width=5.2, height=4.0)
    K = fit.log_snr.size
    x = np.arange(1, K + 1)
    ax[0, 0].plot(x, fit.log_snr, color="black", lw=2.4, marker="o", ms=4, label="optimum", zorder=5)
    for f in [g for g in fit.fits if math.isfinite(g.rms)][:n_best]:  # failed fits: no levels
        lab = f"{f.family} (RMS {f.rms:.2g})"
        ax[0, 0].plot(x, f.log_snr, lw=1.3, marker=".", label=lab)
        with np.errstate(invalid="ignore"):  # a fixed alpha_bar = 0 first level: -inf on both, residual 0
            res = np.where(f.log_snr == fit.log_snr, 0.0, f.log_snr - fit.log_snr)
        ax[0, 1].plot(x, res, lw=1.3, marker=".", label=f.family)
    ax[0, 0].set(xlabel="step (noisiest first)", ylabel="log-SNR", title="optimum and best heuristic fits")
    _note_undrawn_levels(ax[0, 0], [fit.log_snr], flow=fit.sampler in FLOW_SAMPLERS)
    ax[0, 1].axhline(0.0, color="black", lw=1)
    ax[0, 1].set(xlabel="step (noisiest first)", ylabel="fit − optimum (log-SNR)", title="residual")
    for a in ax[0]:
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    _integer_steps(*ax[0])
    _suptitle(fig, title or f"heuristic fits ({fit.divergence.upper()}, {fit.sampler}, K={K}, end points {fit.endpoints})")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_resolution_law(law: Any, *, title: Optional[str] = None, path: Any = None) -> Any:
    """Left: mean log-SNR offset of the optimum vs resolution (band: first to last level) and the rules.
    Right: the optimal schedules per resolution (for the last divergence).

    Left: ``Delta l(d) = mean_i (l*_{d,i} - l*_{d0,i})`` against d, next to ``-2 log(d/d0)`` and
    ``-2 (mu(n_d) - mu(n_d0))``; arrays of shape (R,) for R resolutions, the schedules (R, K).
    Returns the Figure. Raises only ValueError, TypeError or OSError for ``path`` as
    :func:`symsched.plots.save_figure`. Source: docs/model.md §10.
    """
    from .resolution import ResolutionLaw

    _check_type(law, "law", ResolutionLaw, "symsched.insight.resolution_law")
    _check_title(title)
    fig, ax = _figure(1, 2, width=5.4, height=4.2)
    a, b = ax[0, 0], ax[0, 1]
    d = np.array(law.resolutions, dtype=np.float64)
    styles = {"kl": ("tab:blue", "o"), "w2": ("tab:red", "s"), "kl-reverse": ("tab:purple", "^")}
    for dv, off in law.offset.items():
        col, mk = styles.get(dv, ("tab:gray", "o"))
        name = {"kl": "KL", "w2": "W2", "kl-reverse": "rev. KL"}[dv]
        a.plot(d, off, color=col, marker=mk, lw=2, label=f"optimum, {name}: mean ({law.slope[dv]:+.2f}/doubling)")
        a.fill_between(d, law.offset_first[dv], law.offset_last[dv], color=col, alpha=0.15,
                       label=f"{name}: {law.first_level_name(dv)} to last level")
    a.plot(d, law.rules["simple diffusion"], color="black", ls="--",
           label="simple diffusion / SD3 √(m/n): −2 log(d/d₀)")
    a.plot(d, law.rules["Flux mu"], color="tab:green", ls="-.",
           label=f"Flux μ ({law.flux_tokens[0]:.0f} tokens at d₀)")
    a.plot(d, law.rules["SD3 static shift"], color="tab:gray", ls=":", label="SD3 static shift (same at every d)")
    a.set_xscale("log", base=2)
    a.set_xticks(d, [f"{int(x)}" for x in d])
    a.set(xlabel="resolution d (pixels per side)", ylabel="log-SNR offset vs d₀", title="resolution law")
    a.grid(alpha=0.3)
    a.legend(fontsize=6.5)
    dv = list(law.sweeps)[-1]
    L = law.sweeps[dv].log_snr(law.steps)
    cols, _ = _colours(law.resolutions)
    for j, res in enumerate(law.resolutions):
        b.plot(np.arange(1, law.steps + 1), L[j], marker="o", ms=3, color=cols[j], label=f"d = {res}")
    b.set(xlabel="step (noisiest first)", ylabel="log-SNR", title=f"optimal schedules ({dv.upper()})")
    _note_undrawn_levels(b, L, flow=_flow(law.sweeps[dv]))
    _integer_steps(b)
    b.grid(alpha=0.3)
    b.legend(fontsize=7)
    if title or law.source:
        _suptitle(fig, title or f"resolution law: {law.source}")
    if path is not None:
        save_figure(fig, path)
    return fig


def _bands(S: Array) -> tuple[Array, list[Array], str]:
    """(x, index groups over the flattened modes, axis label) for band averages."""
    if S.ndim in (2, 3):
        from ..spectra import fft_frequencies

        grid = S.shape[:2]
        df = 1.0 / max(grid)
        labels = np.rint(fft_frequencies(grid) / df).astype(np.int64)
        if S.ndim == 3:
            labels = np.repeat(labels[..., None], S.shape[2], axis=2)
        flat = labels.ravel()
        bins = np.unique(flat)
        return bins * df, [np.flatnonzero(flat == b) for b in bins], "radial frequency |f| (cycles/pixel)"
    flat = S.ravel()
    order = np.argsort(flat, kind="stable")[::-1]
    groups = [g for g in np.array_split(order, min(_MAX_GROUPS, flat.size)) if g.size]
    pos = np.cumsum([0] + [g.size for g in groups])
    x = 0.5 * (pos[:-1] + pos[1:]) + 0.5
    return x, groups, "mode rank (sorted by data variance)"


def band_profile(result: Any, what: str = "generated") -> tuple[Array, Array]:
    """Band averages of an :class:`~symsched.insight.IntermediateSpectra`: ``(x (B,), values (K, B))``.

    ``what``:

    * ``"generated"``: sum of x0_hat over the band / its sum after the last step — when the band's
      content is generated (0 to 1, independent of how accurate it ends up);
    * ``"accuracy"``: sum of x0_hat / sum of S — how much of the data's variance the estimate has
      (both from ``x0_hat / S``, exact where ``x0_hat`` of a faint spectrum underflows);
    * ``"sample/marginal"``: sum of the sample's variance / sum of the forward marginal at its level;
    * ``"x0_hat"``, ``"sample"``: band means.

    Bands: rings of the FFT grid (channels pooled), or groups of modes by rank (1-D spectra).
    Bands whose denominator is 0 (zero modes) count as 1. ValueError for an unknown ``what``.
    """
    from .intermediate import IntermediateSpectra

    _check_type(result, "result", IntermediateSpectra, "symsched.insight.intermediate_spectra")
    from .._validate import check_choice

    check_choice(what, "what", ("generated", "accuracy", "sample/marginal", "x0_hat", "sample"))
    S = result.spectrum
    x, groups, _ = _bands(S)

    def band_sum(a: Array) -> Array:  # a: (rows, *S.shape) -> (rows, B)
        flat = a.reshape(a.shape[0], -1)
        return np.stack([flat[:, g].sum(axis=1) for g in groups], axis=1)

    def ratio(num: Array, den: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)

    if what in ("generated", "accuracy"):  # sums of S * (x0_hat / S), S divided by a power of two (exact): the
        # band sums of x0_hat without its underflow for faint spectra (x0_hat ~ S^2)
        peak = float(np.max(S))
        w = np.ldexp(S, -int(np.frexp(peak)[1])) if peak > 0 else S
        r = result.accuracy()
        num = band_sum(w[None] * r)
        return x, ratio(num, band_sum(w[None] * r[-1:]) if what == "generated" else band_sum(w[None]))
    if what == "sample/marginal":
        return x, ratio(band_sum(result.sample), band_sum(result.marginal))
    arr = result.x0_hat if what == "x0_hat" else result.sample
    return x, band_sum(arr) / np.array([g.size for g in groups], dtype=np.float64)[None, :]


def _edges(x: Array) -> Array:
    if x.size == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = 0.5 * (x[1:] + x[:-1])
    return np.concatenate(([x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]))


#: legend entries of :func:`plot_intermediate`'s left panel (explain.md and the report's summary describe them too)
HALF_CONTOUR_LABEL = "0.5: half of final variance"
SNR1_LABEL = "band mean S = σ² (SNR 1)"


def plot_intermediate(result: Any, *, title: Optional[str] = None, path: Any = None) -> Any:
    """Frequency x step heat maps of an :class:`~symsched.insight.IntermediateSpectra` (three panels).

    Left, *when* each band is generated: the denoised estimate's variance over its final value
    (0 to 1; the white curve, labelled in the legend, is the 0.5 contour: the step at which each band has
    half of its final variance, its generation step; black dots: the band whose mean variance equals the
    step's noise level sigma^2, SNR = 1, at the steps where some band above it is still below) — coarse bands
    first, fine bands last. Middle, *how much*: the estimate's variance over the data's (1 = exact). Right: the
    sample's variance over the forward marginal at its level (log2; 0 = exact), where the sampler's state is off
    along the way.

    Heat maps of :func:`band_profile` values, shape (N, B): N model calls by B bands. Returns the Figure.
    Raises only ValueError, TypeError or OSError for ``path`` as :func:`symsched.plots.save_figure`.
    Source: docs/model.md §9 (the state covariance per step).
    """
    from .intermediate import IntermediateSpectra

    _check_type(result, "result", IntermediateSpectra, "symsched.insight.intermediate_spectra")
    from matplotlib.colors import TwoSlopeNorm

    _check_title(title)
    S = result.spectrum
    x, gen = band_profile(result, "generated")
    _, acc = band_profile(result, "accuracy")
    _, ratio = band_profile(result, "sample/marginal")
    _, groups, ylabel = _bands(S)
    K = result.steps  # rows: model calls (K - 1 for samplers that stop at the last level, e.g. DEIS)
    steps = np.arange(1, K + 1)
    # colour bars with labels right of each panel: wider gaps and right margin than the line plots
    fig, ax = _figure(1, 3, width=4.6, height=4.0, margins=(0.8, 0.55, 0.6, 0.4), gap=(1.05, 0.75))
    a, m_ax, b = ax[0, 0], ax[0, 1], ax[0, 2]
    xe, ye = np.arange(0.5, K + 1.0), _edges(x)
    m = a.pcolormesh(xe, ye, gen.T, cmap="viridis", vmin=0.0, vmax=1.0, shading="flat")
    fig.colorbar(m, ax=a, label="var(x̂₀) / its final value")
    handles = []
    if K > 1 and x.size > 1:
        from matplotlib.lines import Line2D
        from matplotlib.patheffects import withStroke

        a.contour(steps, x, gen.T, levels=[0.5], colors="white", linewidths=1.5)
        # the curve's legend entry: white with a black edge, visible on the legend's light background
        edge = [withStroke(linewidth=3.0, foreground="black")]
        handles.append(Line2D([], [], color="white", lw=1.5, path_effects=edge, label=HALF_CONTOUR_LABEL))
    mean_S = np.array([S.ravel()[g].mean() for g in groups])
    # SNR >= 1, mean_S >= sigma^2 = (1 - ab) / ab, as mean_S ab >= 1 - ab: sigma^2 overflows for ab below ~1e-308
    ab = result.alpha_bar
    snr1 = [np.flatnonzero(mean_S * ab[k] >= 1.0 - ab[k]) for k in range(K)]
    # a dot where the crossing lies within the bands: the highest band at SNR >= 1 with a band above it still below
    # (once every band is past SNR 1 the top band is no crossing: audit of 7 December)
    pts = [(k + 1, x[hit.max()]) for k, hit in enumerate(snr1) if hit.size and hit.max() < mean_S.size - 1]
    if pts:
        px, py = zip(*pts)
        handles += a.plot(px, py, "o", color="black", ms=4, label=SNR1_LABEL)
    if handles:
        a.legend(handles=handles, fontsize=7, loc="upper left")
    a.set(xlabel="step (noisiest first)", ylabel=ylabel, title="when: coarse to fine")
    m1 = m_ax.pcolormesh(xe, ye, acc.T, cmap="magma", vmin=0.0, vmax=max(1.0, float(acc.max())), shading="flat")
    fig.colorbar(m1, ax=m_ax, label="var(x̂₀) / S")
    m_ax.set(xlabel="step (noisiest first)", title="how much of the data's variance")
    lr = np.log2(np.clip(ratio, 1e-300, None))
    lim = max(float(np.max(np.abs(lr))), 1e-3)
    m2 = b.pcolormesh(xe, ye, lr.T, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim), shading="flat")
    fig.colorbar(m2, ax=b, label="log2(var(sample) / marginal)")
    b.set(xlabel="step (noisiest first)", title="sample vs the true marginal")
    if S.ndim == 1 and 0 < 10.0 * ye[0] <= ye[-1]:  # mode ranks over a decade or more (a few modes: linear)
        for c in (a, m_ax, b):
            c.set_yscale("log")
    sampler = result.sampler + (f" η={result.eta:g}" if result.sampler == "ddim" else "")
    _integer_steps(a, m_ax, b)
    levels = result.alpha_bar.size  # K of the schedule, whatever the number of rows
    _suptitle(fig, title or f"per-step spectra: {sampler}, K={levels}, {result.init} start")
    if path is not None:
        save_figure(fig, path)
    return fig
