"""symsched.plots: what the figures show (fair-comparison marks, thinned curves) and that they render."""

from __future__ import annotations

import numpy as np
import pytest

import symsched
from symsched import plots
from symsched.optimize import optimize_schedule
from symsched.spectra import power_law

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_plot_result_marks_baselines_outside_the_constraint(tmp_path) -> None:
    S = power_law((32, 32), alpha=2.0)
    res = optimize_schedule(S, 5)
    fig = plots.plot_result(res, S, n_baselines=13, path=tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes().startswith(PNG_MAGIC)
    labels = _lines(fig.axes[1])
    for name, ok in res.feasible.items():
        assert (name in labels) == ok and (f"{name} †" in labels) == (not ok), name
    title = fig._suptitle.get_text()
    fair_name, fair_value = res.best_feasible_baseline
    assert f"best standard meeting the constraint {fair_name} {fair_value:.4g}" in title
    assert fig.get_layout_engine() is None  # fixed margins, no layout pass


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_schedule_plots_say_that_a_pure_noise_level_is_not_drawn() -> None:
    """New-user audit: `optimize --flow --plot` drew the schedules from step 2 on, without a word: step 1 (t = 1,
    alpha_bar = 0) has log-SNR -inf, which no line can draw. Every log-SNR-per-step panel now says so."""
    from symsched.insight import fit_heuristics
    from symsched.insight.plots import plot_fits
    from symsched.insight.sweep import SweepResult

    S = power_law((8, 8), alpha=2.0)
    flow = optimize_schedule(S, 4, sampler="flow_match_euler", restarts=0)
    assert flow.alpha_bar[0] == 0.0
    note = "levels at t = 1 (log-SNR = −∞, step 1): not drawn"
    fig = plots.plot_result(flow, S)
    assert _texts(fig.axes[0]) == [note]
    assert all(not _texts(a) for a in fig.axes[1:])  # the PSD panels draw every level's output
    sweep = SweepResult(parameter="divergence", values=["W2"], steps=[4], results={(0, 4): flow}, spectra=[S],
                        settings={})
    assert _texts(sweep.plot().axes[0]) == [note]
    assert _texts(plot_fits(fit_heuristics(flow, S)).axes[0]) == [note]
    vp = plots.plot_schedules({"zero-snr": [0.0, 0.3, 0.9], "finite": [0.01, 0.3, 0.9]})
    assert _texts(vp.axes[1]) == ["levels at ᾱ = 0 (log-SNR = −∞, step 1): not drawn"] and not _texts(vp.axes[0])
    res = optimize_schedule(S, 4, restarts=0)  # every level finite: no note
    assert all(not _texts(a) for a in plots.plot_result(res, S).axes)
    # the resolution law's schedules panel too (review of 5 December: explain --flow's resolution_*.png)
    from symsched.insight import resolution_law, scene_power_law

    law = resolution_law(lambda d: scene_power_law(d, alpha=2.0), [8, 16], steps=3, restarts=0, n_jobs=1,
                         divergences=("w2",), sampler="flow_match_euler", endpoints=(0.0, None))
    assert np.all(np.isneginf(law.sweeps["w2"].log_snr(3)[:, 0]))
    assert _texts(law.plot().axes[1]) == [note]


@pytest.mark.parametrize("scale", [1.0, 1.6])  # the closed form itself (PASS), and 1.6 times it (scores beyond)
def test_validation_z_score_legend_covers_no_score_and_no_threshold_line(tmp_path, scale) -> None:
    """New-user audit: the bottom panel of validate.png / report/validation.png put its legend on the +z_crit line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from symsched import output_spectrum
    from symsched.commands.validate import plot_validation
    from symsched.montecarlo import empirical_psd, iter_sample, psd_check, psd_zscores
    from symsched.schedules import standard_schedule

    S = power_law((16, 16), alpha=2.0)
    ab = standard_schedule("linear-leading", 5)
    P = output_spectrum(S, ab, sampler="ddpm")
    n = 200
    psd = scale * empirical_psd(iter_sample(S, ab, sampler="ddpm", n_samples=n, seed=0, progress=False))
    check = psd_check(psd, P, n, alpha=1e-6)  # the suite's false-alarm probability (it was 1e-3 here)
    z = psd_zscores(psd, P, n)
    assert (check.max_abs_z > check.z_crit) == (scale > 1)
    fig = plot_validation(tmp_path / "v.png", S, P, psd, z, n, alpha=1e-6, title="t", check=check,
                          pvalue=check.pvalue)
    assert (tmp_path / "v.png").read_bytes().startswith(PNG_MAGIC)
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[2]
    box = ax.get_legend().get_window_extent()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0] == "z-score per frequency bin" and texts[1].startswith("Šidák threshold ±")
    thresholds = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(thresholds) == 2
    for ln in thresholds:  # each line's height on screen lies outside the legend's box
        y = ax.transData.transform((1.0, ln.get_ydata()[0]))[1]
        assert not box.y0 <= y <= box.y1, (y, box)
    points = ax.transData.transform(ax.get_lines()[0].get_xydata())
    inside = (points[:, 0] >= box.x0) & (points[:, 0] <= box.x1) & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1)
    assert not inside.any(), points[inside]
    assert all(abs(t) <= ax.get_ylim()[0] * -1 for t in ax.get_yticks())  # no score ticks beside the legend


def test_plot_result_refuses_a_nonsense_n_baselines() -> None:
    """F15: n_baselines=-1 and 1.5 used to draw a figure without complaint."""
    S = power_law((4, 4), alpha=2.0)
    res = optimize_schedule(S, 3, restarts=0)
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="n_baselines must be a non-negative integer"):
            plots.plot_result(res, S, n_baselines=bad)
    for bad in ("2", True, None):
        with pytest.raises(TypeError, match="n_baselines must be a non-negative integer"):
            plots.plot_result(res, S, n_baselines=bad)
    fig = plots.plot_result(res, S, n_baselines=0)
    assert set(_lines(fig.axes[1])) >= {"optimised"}


def test_long_sorted_mode_curves_are_thinned_to_log_spaced_ranks() -> None:
    rng = np.random.default_rng(0)
    S = np.sort(rng.lognormal(0.0, 2.0, 100_000))[::-1]
    ab = np.array([1e-3, 0.3, 0.9])
    fig = plots.plot_output_psd(S, {"a": ab})
    for line in fig.axes[0].get_lines():
        x = np.asarray(line.get_xdata())
        assert 1000 <= x.size <= plots._MAX_POINTS
        assert x[0] == 1 and x[-1] == S.size  # first and last rank kept
        assert np.all(np.diff(np.log(x)) <= np.log(S.size) / 1000 + np.log(2))  # no gap wider than 2x
    short = plots.plot_output_psd(S[:500], {"a": ab})
    assert all(len(line.get_xdata()) == 500 for line in short.axes[0].get_lines())


def test_thinning_keeps_the_curve_where_the_eye_looks() -> None:
    x = np.arange(1, 50_001, dtype=float)
    y = 1.0 / x
    xt, yt = plots._thin(x, y)
    # linear interpolation of the thinned curve on the log axis reproduces the full one to 1e-3
    back = np.exp(np.interp(np.log(x), np.log(xt), np.log(yt)))
    assert np.max(np.abs(back / y - 1)) < 1e-3


@pytest.mark.parametrize("call", [
    lambda ab, S: plots.plot_schedules({"optimised": ab, "other": ab[::-1][::-1] * 0.999}, title="t"),
    lambda ab, S: plots.plot_output_psd(S, {"a": ab}),
    lambda ab, S: plots.plot_frequency_error(S, {"a": ab}),
])
def test_every_figure_writes_a_png(tmp_path, call) -> None:
    S = power_law((16, 16), alpha=2.0)
    fig = call(np.array([0.01, 0.2, 0.8]), S)
    path = plots.save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    for ax in fig.axes:  # titles inside the figure, axes inside the canvas
        x0, y0, x1, y1 = ax.get_position().extents
        assert 0 < x0 < x1 < 1 and 0 < y0 < y1 < 1


def test_save_figure_refuses_unknown_formats_and_non_paths(tmp_path) -> None:
    """Every figure goes through save_figure: an unknown suffix is a ValueError naming path (not matplotlib's
    own error after the figure was drawn), a non-path a TypeError; nothing is written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from symsched.plots import save_figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    with pytest.raises(ValueError, match=r"^path: .*'\.xyz'"):
        save_figure(fig, tmp_path / "f.xyz")
    with pytest.raises(TypeError, match="path must be a file path"):
        save_figure(fig, 3)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
    out = save_figure(fig, tmp_path / "f.svg")
    assert out.read_text().lstrip().startswith("<?xml")  # the suffix picks the format


@pytest.mark.parametrize("fig", [None, "figure.png", 3])
def test_save_figure_refuses_a_non_figure_naming_fig(tmp_path, fig) -> None:
    """hardening audit: save_figure(None, "x.png") raised AttributeError ('NoneType' object has no attribute
    'get_axes'); a TypeError naming fig, as models.train.save and probe.plot_probe say of their arguments."""
    from symsched.plots import save_figure

    with pytest.raises(TypeError, match=r"^fig must be a matplotlib Figure, got "):
        save_figure(fig, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_result_names_a_result_of_the_wrong_type() -> None:
    """break3/user F9: plot_result(None, S) raised AttributeError; now the documented ArgumentTypeError."""
    from symsched._validate import ArgumentTypeError

    with pytest.raises(ArgumentTypeError, match="result must be an OptimizeResult"):
        plots.plot_result(None, power_law((8, 8), alpha=2.0))


# -- an all-zero spectrum: nothing to draw on a log axis (break-test K: the figure failed to draw) --------------
@pytest.mark.parametrize("shape", [(5,), (4, 4)])
def test_figures_of_an_all_zero_spectrum_are_written(tmp_path, shape) -> None:
    import matplotlib.pyplot as plt

    from symsched import optimize_schedule, plots

    S = np.zeros(shape)
    res = optimize_schedule(S, 2, restarts=0)
    for name, make in (("result", lambda p: plots.plot_result(res, S, path=p)),
                       ("psd", lambda p: plots.plot_output_psd(S, {"opt": res.alpha_bar}, path=p))):
        path = tmp_path / f"{name}.png"
        fig = make(path)
        assert path.stat().st_size > 0
        texts = [t.get_text() for a in fig.axes for t in a.texts]
        assert any("no positive value to draw" in t for t in texts)
        plt.close(fig)


def test_a_log_axis_with_positive_data_stays_logarithmic(tmp_path) -> None:
    from symsched import plots

    fig = plots.plot_output_psd(np.array([0.0, 1e-3, 1.0]), {"a": [0.05, 0.5, 0.9]}, path=tmp_path / "p.png")
    assert fig.axes[0].get_yscale() == "log"
    assert not any("no positive value" in t.get_text() for a in fig.axes for t in a.texts)


@pytest.mark.parametrize("S", [np.full(16, 1e-320), np.zeros(16), np.full((4, 4), 1e-320)])
def test_frequency_error_with_nothing_drawable_on_its_log_axes(tmp_path, S) -> None:
    """Review of break-test K: positive x but all-NaN ratios (P underflows to 0 at S = 1e-320) left a log x axis
    without a drawable point; the figure failed to draw."""
    import matplotlib.pyplot as plt

    from symsched import plots

    for fn in (plots.plot_frequency_error, plots.plot_output_psd):
        fig = fn(S, {"lin": np.linspace(0.05, 0.99, 8)}, path=tmp_path / "f.png")
        assert (tmp_path / "f.png").stat().st_size > 0
        plt.close(fig)


def test_insight_titles_fit_and_steps_tick_at_whole_numbers() -> None:
    """break-test 45: fits_*.png's figure title overlapped the panel titles, a one-panel explain figure clipped its
    title, and K = 5 step axes showed ticks at 1.5, 2.5, ... Measured on the drawn figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from symsched import insight

    S = power_law((16, 16), alpha=2.0)
    fit = insight.fit_heuristics(optimize_schedule(S, 5, divergence="w2"))
    sweep = insight.sweep([S], 5, divergence="w2")
    for fig in (insight.plot_fits(fit), insight.plot_sweep(sweep, title="optimal schedules for builtin:natural-patches "
                                                                         "(flow_match_euler), a long title")):
        FigureCanvasAgg(fig).draw()
        r = fig.canvas.get_renderer()
        top = fig._suptitle.get_window_extent(r)
        W = fig.bbox
        assert top.x0 >= W.x0 and top.x1 <= W.x1, "figure title clipped"
        for ax in fig.axes:
            if ax.get_title():
                assert not top.overlaps(ax.title.get_window_extent(r)), "figure title over a panel title"
            if ax.get_xlabel().startswith("step"):
                ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
                assert ticks and all(float(t).is_integer() for t in ticks), ticks


@pytest.mark.parametrize("case", ["one-mode", "fft", "one-step", "deis"])
def test_per_step_heat_maps_keep_their_text_inside_and_apart(case) -> None:
    """break-test 49: plot_intermediate clipped its colour-bar label at the right edge and, for a one-mode spectrum,
    its y label at the left; log-axis minor labels (6×10⁻¹) ran into the colour bar; one step ticked 0.5 ... 1.5 in
    tenths; and DEIS's 6-level schedule was titled K=5 (its rows, not its levels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import symsched
    from symsched.spectra import power_law

    S, ab, sampler = {
        "one-mode": (np.array([3.0]), [0.05, 0.2, 0.5, 0.8, 0.95, 0.99], "ddpm"),
        "fft": (power_law((8, 8), alpha=2.0), [0.05, 0.2, 0.5, 0.8, 0.95], "ddim"),
        "one-step": (power_law((8, 8), alpha=2.0), [0.05], "ddim"),
        "deis": (np.geomspace(1e-3, 10, 50), [0.05, 0.2, 0.5, 0.8, 0.95, 0.99], "deis_multistep"),
    }[case]
    fig = symsched.intermediate_spectra(S, ab, sampler=sampler).plot()
    FigureCanvasAgg(fig).draw()
    r = fig.canvas.get_renderer()
    W = fig.bbox
    assert f"K={len(ab)}," in fig._suptitle.get_text()
    boxes = [ax.get_tightbbox(r) for ax in fig.axes]  # each panel and colour bar with its drawn ticks and labels
    for ax, e in zip(fig.axes, boxes):
        assert e.x0 >= W.x0 - 0.5 and e.x1 <= W.x1 + 0.5 and e.y0 >= W.y0 - 0.5, f"{ax.get_label()!r} clipped"
        if ax.get_xlabel().startswith("step"):
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
    for i, e1 in enumerate(boxes):  # a panel's labels never run into a colour bar's, nor into another panel's
        for e2 in boxes[i + 1:]:
            assert not e1.overlaps(e2), (e1, e2)


def test_per_step_heat_map_legend_explains_the_white_curve_and_the_black_dots() -> None:
    """New-user audit: the left panel's white curve (the 0.5 contour: the step at which a band has half of its final
    variance) was explained only in a docstring; the legend named the black dots alone."""
    import symsched
    from symsched.spectra import power_law

    fig = symsched.intermediate_spectra(power_law((8, 8), alpha=2.0), [0.05, 0.2, 0.5, 0.8, 0.95]).plot()
    legend = fig.axes[0].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["0.5: half of final variance", "band mean S = σ² (SNR 1)"], texts
    curve = legend.legend_handles[0]
    assert curve.get_color() == "white" and curve.get_path_effects(), "the entry is drawn as the curve is"
    assert len(fig.axes[0].collections) >= 2  # the heat map and the contour the entry explains


def test_per_step_heat_map_dots_only_steps_whose_snr1_crossing_lies_within_the_bands() -> None:
    """Audit of 7 December: once every band was past SNR 1, the top band got a dot, as if it were crossing there.
    Expected crossings from the band means and the levels, computed here (bands: power_law's, via band_profile)."""
    import symsched
    from symsched.insight.plots import _bands
    from symsched.spectra import power_law

    S, ab = power_law((8, 8), alpha=2.0), np.array([0.05, 0.2, 0.5, 0.8, 0.95, 0.9999])
    res = symsched.intermediate_spectra(S, ab)
    fig = res.plot()
    _, groups, _ = _bands(S)
    mean_S = np.array([S.ravel()[g].mean() for g in groups])
    crossing = [k + 1 for k in range(ab.size) if 0 < np.sum(mean_S >= (1 - ab[k]) / ab[k]) < mean_S.size]
    assert np.all(mean_S >= (1 - ab[-1]) / ab[-1])  # (the last step: every band past SNR 1, so no dot there)
    dots = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "o"]
    assert len(dots) == 1 and list(dots[0].get_xdata()) == crossing and crossing


def test_pgf_needs_its_tex_engine_and_postscript_writes_quietly(tmp_path, monkeypatch) -> None:
    """break-test 54: `--plot f.pgf` passed the up-front suffix check and failed after the work ('xelatex' not
    found, exit 1); `--plot f.eps` printed matplotlib's transparency warning on success."""
    import shutil
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from symsched.plots import figure_format, save_figure

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match=r"^--plot: '\.pgf' figures need matplotlib's TeX engine 'xelatex'"):
        figure_format(tmp_path / "f.pgf", "--plot")
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert figure_format(tmp_path / "f.pgf", "--plot") == "pgf"  # the engine present: accepted
    monkeypatch.undo()
    fig = Figure()
    ax = fig.add_subplot()
    ax.fill_between([0, 1], [0, 1], alpha=0.3)  # translucent, as the report's bands
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_figure(fig, tmp_path / "f.eps")
    assert (tmp_path / "f.eps").read_bytes().startswith(b"%!PS")
    assert not [w for w in caught if "transparency" in str(w.message)], [str(w.message) for w in caught]


def test_a_spectrum_of_four_dimensions_is_drawn_at_its_data_ranks() -> None:
    """audit of 4 December: for a 4-D spectrum each curve was sorted by its own values, so the P/S panel's point i
    was not the ratio of the i-th largest data mode. Every curve is now drawn at the ranks of the data modes."""
    S = np.random.default_rng(3).gamma(0.5, 1.0, size=(2, 3, 4, 2))
    ab = np.array([0.05, 0.4, 0.9])
    fig = plots.plot_frequency_error(S, {"s": ab})
    ratio = symsched.output_spectrum(S, ab).ravel() / S.ravel()
    want = ratio[np.argsort(S.ravel())[::-1]]
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if len(ln.get_ydata()) == S.size]
    assert any(np.allclose(ln.get_ydata(), want, rtol=1e-12) for ln in lines)
    assert not any(np.allclose(ln.get_ydata(), np.sort(ratio)[::-1], rtol=1e-12) for ln in lines)


def test_a_short_log_axis_labels_enough_values_to_read_its_curves() -> None:
    """Audit of 5 December: a P/S axis from 0.21 to 1 (schedule_w2_K20.png) was labelled at 1 and 0.5 only; below one
    decade every digit is labelled (0.3, 0.4, ...); over 1-2 decades 1-2-5 stay (the companion)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from symsched.plots import _tidy_log_axes

    def labels(lo: float, hi: float) -> list[str]:
        fig, ax = plt.subplots()
        ax.plot([1, 2], [lo, hi])
        ax.set_yscale("log")
        _tidy_log_axes(ax)
        fig.canvas.draw()
        y0, y1 = ax.get_ylim()
        out = [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks()) if y0 <= v <= y1]
        plt.close(fig)
        return out

    short = labels(0.21, 1.0)
    assert {"0.3", "0.4", "0.5", "1"} <= set(short), short
    assert {"0.2", "0.5", "1", "2"} <= set(labels(0.15, 3.0)) and "0.3" not in labels(0.15, 3.0)


def test_figures_of_a_spectrum_near_float64_s_end_draw_every_panel_quietly(tmp_path) -> None:
    """Audit of 5 December: `optimize`/`validate --plot` on S ~ 1e300 (outputs near 1e4 from a white start) left the
    PSD panel empty with RuntimeWarnings: matplotlib's log margins ran past 1.8e308 and its autoscale fell back to
    1..10. Now the view holds every data point, and nothing warns (warnings are errors here)."""
    import warnings

    from matplotlib.figure import Figure

    from symsched.commands.validate import radial_average

    S = power_law((8, 8), alpha=2.0) * 1e300
    res = optimize_schedule(S, 4, restarts=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.plot_result(res, S, path=tmp_path / "r.png")
        b = fig.axes[1]  # output PSD vs data: the data (near 1e300) and the outputs (near 1e4) both inside
        lo, hi = b.get_ylim()
        assert lo <= float(np.min(symsched.output_spectrum(S, res.alpha_bar))) and hi >= S.max()
        fig2 = Figure()
        ax = fig2.subplots()
        ax.loglog([0.1, 0.5], [1e3, 1.7e308])
        plots.save_figure(fig2, tmp_path / "edge.png")
        assert ax.get_ylim()[1] >= 1.7e308 * 0.999
        # validate's band depends on the spectrum's shape only: the same at 1e300 as at 1 (P^2 overflowed before)
        P = symsched.output_spectrum(S / 1e300, [0.1, 0.5, 0.9])
        a, b2 = radial_average(P, P, 100, alpha=1e-6), radial_average(P * 1e300, P * 1e300, 100, alpha=1e-6)
        np.testing.assert_allclose(b2["lo"], a["lo"], rtol=1e-12)
        np.testing.assert_allclose(b2["hi"], a["hi"], rtol=1e-12)


def test_every_figure_writer_creates_missing_folders_as_documented(tmp_path) -> None:
    """Audit 3b B5: plot_probe created missing parent folders, undocumented. Every writer goes through
    _io.atomic_write, which creates them (as the README's "Files" says and the command line's --out does): the
    figure writers do so alike, refuse a folder on the path that is a file, and their docstrings say so."""
    import matplotlib.figure

    from symsched import probe

    fig = matplotlib.figure.Figure()
    fig.add_subplot().plot([1, 2])
    target = tmp_path / "a" / "b" / "f.png"
    plots.save_figure(fig, target)
    assert target.is_file()
    plots.plot_schedules({"k": symsched.schedules.karras(4)}, path=tmp_path / "c" / "s.png")
    assert (tmp_path / "c" / "s.png").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        plots.save_figure(fig, tmp_path / "file" / "f.png")
    for fn in (plots.save_figure, probe.plot_probe):
        assert "missing folders" in " ".join(fn.__doc__.split()).lower(), fn.__name__


@pytest.mark.parametrize("suffix", ["pdf", "svg", "svgz", "ps", "eps", "png"])
def test_saved_figures_hold_no_date_and_repeat_byte_for_byte(tmp_path, suffix) -> None:
    """Audit of 6 December: `validate --plot x.pdf` differed between identical runs (the PDF's /CreationDate); SVG
    ids were random, PostScript recorded its date and the temporary file's name as its title, SVGZ's gzip header a
    time. Two saves of the same figure are now the same bytes, and none records a date."""
    import gzip

    import matplotlib.pyplot as plt

    def draw(path):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], alpha=0.5)
        ax.set_title("t")
        plots.save_figure(fig, path)
        plt.close(fig)
        return path.read_bytes()

    a, b = draw(tmp_path / f"a.{suffix}"), draw(tmp_path / f"b.{suffix}")
    assert a == b
    text = gzip.decompress(a) if suffix == "svgz" else a
    assert b"CreationDate" not in text and b"<dc:date>" not in text and b"%%Title" not in text
    if suffix == "svgz":
        assert a[4:8] == b"\0\0\0\0"  # gzip's MTIME field


def test_save_figure_refuses_a_raster_too_large_naming_dpi(tmp_path) -> None:
    """New-user pass of 6 December: save_figure(fig, "f.png", dpi=1e6) raised matplotlib's own "Image size of
    15000000x4300000 pixels is too large" (or ran out of memory) naming no argument. A raster beyond MAX_PIXELS or
    65536 pixels a side is a ValueError naming dpi, before any drawing; a vector format takes that dpi."""
    import matplotlib.pyplot as plt

    from symsched.plots import MAX_PIXELS, save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([1, 2], [1, 3])
    try:
        for name, dpi in (("f.png", 1e6), ("f.jpg", 2e4), ("f.png", 16384)):  # 16384: 98304 px wide
            with pytest.raises(ValueError, match=r"^dpi=.* pixels: a (png|jpg) is at most"):
                save_figure(fig, tmp_path / name, dpi=dpi)
            assert not (tmp_path / name).exists()
        side = (MAX_PIXELS / 24) ** 0.5  # 6 x 4 inches: the largest dpi within MAX_PIXELS
        assert save_figure(fig, tmp_path / "ok.png", dpi=50).is_file()
        with pytest.raises(ValueError, match=r"^dpi="):
            save_figure(fig, tmp_path / "big.png", dpi=side * 1.01)
        assert save_figure(fig, tmp_path / "f.pdf", dpi=1e6).is_file()
    finally:
        plt.close(fig)
