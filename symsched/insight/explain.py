r"""``symsched explain``: everything the spectral theory says about one dataset, written to a folder.

:func:`explain` runs, in one batch of parallel optimisations (joblib), the optimal schedules for
every K and divergence, the resolution law of the dataset's fitted power law (FFT-grid spectra) and
of its photographs resized (the built-in default or a folder of images), then fits the heuristic
families, follows the per-step spectra of the optimum, and writes ``explain.md`` with its figures
(PNG), LaTeX tables (``.tex``, booktabs) and every number in ``explain.json``.

:func:`report_section` is the short version that ``symsched report`` appends to its summary.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from .._html import inline, tables
from .._io import atomic_write_text, check_apart, json_ready, staged_folder
from .._tex import tex_table
from .._validate import ArgumentTypeError, _show, as_bool, as_int, as_step_counts, check_choice, numpy_error_defaults
from ..api import FLOW_SAMPLERS, VE_SAMPLERS, VP_SAMPLERS
from ..optimize import (
    DIVERGENCE_NAMES as _NAMES, OBJECTIVE_NAMES, _check_int, _check_sampler_args, _check_step_ratio, _settings,
    _settings_text, _step_ratio_as_run,
)
from .fits import HeuristicFit, _fmt_params, fit_heuristics
from .intermediate import IntermediateSpectra, first_step_reaching, intermediate_spectra
from .plots import band_profile
from .resolution import ResolutionLaw, _divergences, _plan, _resolutions, fit_power_law, image_spectra, source_images
from .sweep import SweepFits, SweepResult, check_n_jobs, run_optimizations

__all__ = ["explain", "Explanation", "report_section", "GAUSSIAN_SCOPE"]

Array = NDArray[np.float64]

#: What the Gaussian theory does and does not justify (README, explain.md and the report say it).
GAUSSIAN_SCOPE = """\
**What the Gaussian theory justifies.** For data with this spectrum and the exact (Wiener) denoiser,
everything above is exact, not a fit: the output spectrum of every schedule, the schedule that
minimises the chosen divergence, how far each heuristic family is from it and what it costs, the
order in which frequency bands are generated, and how the optimum moves when the same Gaussian scene
has more pixels. It explains the *shape* of the heuristics: the equal-angle (cosine / tangent) law is
exact for a single mode, a spectrum spreads the steps over the noise levels where its energy lies,
and a resolution shift follows because the coarse bands gain (d/d₀)² in SNR.

**What it does not justify.** It models second-order statistics only: no edges, objects or phase
structure, and no error of a *learned* denoiser, which is what limits real samplers at low noise. It
cannot choose the divergence: KL and W2 give different optima and different resolution laws, and
only measurements on learned models decide between them (the evidence so far favours W2 at low K).
Latent models (SD3, Flux) shift schedules for VAE latents, whose spectra differ from pixels'; their
rules are calibrated in tokens, not derived. Free end points can favour starting from white noise
at a low noise level, which only the linear Gaussian denoiser tolerates. Validate with your model.
"""


@dataclass
class Explanation:
    """What :func:`explain` computed and wrote.

    Attributes
    ----------
    out : Path
        The output folder; ``files`` lists what was written there.
    sweeps : dict[str, SweepResult]
        Optimal schedules per divergence, over K.
    fits : dict[str, SweepFits]
        Heuristic fits of every optimum; ``main_fits[div]`` the detailed fit at ``main_steps``.
    laws : dict[str, ResolutionLaw]
        ``"power law"`` (fitted to the spectrum) and/or ``"images"`` (photographs resized).
    intermediate : dict[str, IntermediateSpectra]
        Per-step spectra of the optimum at ``main_steps`` per divergence.
    elapsed : float
        Seconds.
    info : dict
        What ``explain.json`` records: the run's settings (``max_step_ratio``: the step-ratio cap of a sampler that
        extrapolates from earlier levels, else None), ``notes`` (sections left out), and ``warning``: None, or why
        the results say nothing about the data (an all-zero spectrum the sampler reproduces exactly, or one on which
        every heuristic family scores the optimum's value).
    Source: :func:`symsched.insight.explain`.
    """

    out: Path
    files: list[str]
    sweeps: dict[str, SweepResult]
    fits: dict[str, SweepFits]
    main_steps: int
    main_fits: dict[str, HeuristicFit]
    laws: dict[str, ResolutionLaw]
    intermediate: dict[str, IntermediateSpectra]
    elapsed: float
    info: dict[str, Any] = field(default_factory=dict)


def _band_order(inter: IntermediateSpectra) -> tuple[Array, Array]:
    """(band x, first step at which the band's x0_hat reaches half its final variance)."""
    x, gen = band_profile(inter, "generated")
    return x, first_step_reaching(gen, 0.5)  # the rule of IntermediateSpectra.generation_step, on bands


#: what the per-step heat maps (:func:`symsched.insight.plots.plot_intermediate`) show, under them in explain.md and
#: the report's summary
HEATMAP_CAPTION = (
    "Left: when each frequency band is generated (the denoised estimate x̂₀'s variance over its final value; "
    "white curve: the 0.5 contour, the step at which each band has half of its final variance, its generation "
    "step; black dots: the band whose mean variance equals the step's noise level σ², SNR 1); middle: how much "
    "of the data's variance x̂₀ has; right: the sample's variance against the true noisy marginal at its level.")


def _coarse_to_fine(inter: IntermediateSpectra) -> str:
    x, first = _band_order(inter)
    _, acc = band_profile(inter, "accuracy")
    K = inter.steps
    grid = inter.spectrum.ndim in (2, 3)
    if grid:  # skip DC and the corners beyond Nyquist (partial rings)
        keep = np.flatnonzero((x > 0) & (x <= 0.5))
        unit = "|f| = {:.3g}"
    else:
        keep = np.arange(x.size)
        unit = "mode rank {:.0f}"
    if keep.size < 2:
        return "too few bands to order."
    lo, hi = keep[0], keep[-1]
    mono = bool(np.all(np.diff(first[keep]) >= 0))
    return (f"the band at {unit.format(x[lo])} gets half of its final variance by step {first[lo]} of {K}, the band at "
            f"{unit.format(x[hi])} by step {first[hi]}"
            + ("; the order is monotone, coarse to fine" if mono else "; coarse to fine overall, not strictly")
            + f". At the end x̂₀ has {acc[-1, lo]:.0%} and {acc[-1, hi]:.0%} of their data variance (band sums: "
            "a mean of per-mode ratios P/S, as the schedule figures plot, weighs faint modes more).")


def fit_status(fit: HeuristicFit) -> tuple[str, Any]:
    """What a fit can say: ``("none", None)`` no family gave a valid schedule; ``("whole", None)`` the matched end
    points are the whole schedule (every family passes through it); ``("tied", runner_up)`` the best two agree to
    1e-12 in RMS (the families' order decides); ``("best", runner_up or None)``. explain.md and the console share
    it."""
    b = fit.best
    if not math.isfinite(b.rms):
        return "none", None
    if fit.endpoints == "match" and np.isfinite(fit.log_snr).sum() <= 2:
        return "whole", None
    second = fit.fits[1] if len(fit.fits) > 1 and math.isfinite(fit.fits[1].rms) else None
    if second and round(second.rms, 12) == round(b.rms, 12):  # equal to rounding: the families' order decides
        return "tied", second
    return "best", second


def _fit_sentence(div: str, K: int, fit: HeuristicFit) -> str:
    b = fit.best
    status, second = fit_status(fit)
    if status == "none":
        return f"{_NAMES[div]}, K = {K}: no heuristic family produced a valid schedule through these levels."
    if status == "whole":
        return (f"{_NAMES[div]}, K = {K}: the matched end points are the whole schedule, so every family passes "
                "through its levels: nothing to tell the families apart.")
    lost = (f"; using it costs {b.lost_text()} of the optimal {_NAMES[div]} objective"
            if math.isfinite(b.relative_loss) or b.loss_is_rounding else "")
    tail = f" (runner-up: {second.family}, RMS {second.rms:.3g})" if second else ""
    if status == "tied":
        tail = f" (tied with {second.family}, RMS {second.rms:.3g}: equal to 1e-12, the first family listed is shown)"
    params = f" ({_fmt_params(b.params, b.notes)})" if b.params else ""
    return (f"{_NAMES[div]}, K = {K}: best fitted by **{b.family}**{params}, RMS "
            f"{b.rms:.3g} / max {b.max_abs:.3g} in log-SNR{lost}{tail}.")  # (as the tables: 3 digits)


def check_flow_steps(ks: Sequence[int], sampler: str, name: str) -> None:
    """Refuse K = 1 for a flow-matching sampler before any work (the heuristic fits would refuse it after every
    optimisation): its only level is t = 1."""
    if sampler in FLOW_SAMPLERS and min(ks) == 1:
        raise ValueError(f"{name}: K = 1 with a flow-matching sampler is the single level t = 1 (pure noise, "
                         "alpha_bar = 0): nothing to optimise or fit; use K >= 2")


#: the smallest side the photographs are resized to: below it the d x d grid holds a few frequencies, and the resized
#: photograph is mostly the anti-aliasing blur (1,2 resized them to 1 x 1 and 2 x 2 pixels: audit of 6 December)
MIN_IMAGE_RESOLUTION = 8


def _resolution_list(values: Any, name: str) -> list[int]:
    """:func:`resolution._resolutions`, where None or an empty sequence is none (no law) and any other needs at least
    two."""
    if values is None:
        return []
    out = _resolutions(values, name, minimum=0)
    if len(out) == 1:
        raise ValueError(f"{name} must hold at least two resolutions, or none to skip the law (got {out})")
    return out


def _image_resolutions(values: Any) -> list[int]:
    """``image_resolutions``: at least two (a law compares two), each at least :data:`MIN_IMAGE_RESOLUTION`."""
    out = _resolutions(values, "image_resolutions")
    if out[0] < MIN_IMAGE_RESOLUTION:
        raise ValueError(f"image_resolutions must each be at least {MIN_IMAGE_RESOLUTION} pixels (got {out})")
    return out


def _check_out(out: Any) -> Path:
    """The output folder, refused before any work: not a path (TypeError), empty, a file or under a file (ValueError);
    an OSError (``filename`` = ``out``) when it cannot be written otherwise (permissions, a read-only file system)."""
    from .._io import check_output

    if not isinstance(out, (str, os.PathLike)):
        raise ArgumentTypeError(f"out must be a folder path (str or os.PathLike), got {type(out).__name__}")
    if not os.fspath(out).strip():
        raise ValueError("out must be a folder path (got an empty string)")
    try:
        check_output(out, directory=True)
    except NotADirectoryError as exc:  # out itself, or a folder above it, is a file
        raise ValueError(f"out {os.fspath(out)!r}: {exc.strerror}; explain writes a folder there (nothing was "
                         "written)") from None
    return Path(out)


@numpy_error_defaults
def explain(
    spectrum: Any = "builtin:natural-patches",
    out: Any = "explain",
    *,
    steps: Sequence[int] = (5, 10, 20),
    divergences: Sequence[str] = ("kl", "w2"),
    sampler: str = "ddim",
    eta: Optional[float] = None,
    variance: str = "posterior",
    resolutions: Sequence[int] = (32, 64, 128, 256),
    images: str = "auto",
    image_resolutions: Sequence[int] = (32, 64, 128),
    restarts: int = 0,
    seed: int = 0,
    n_jobs: Optional[int] = -1,
    progress: bool = True,
    max_step_ratio: Optional[float] = None,
    **settings: Any,
) -> Explanation:
    r"""Write the spectral insight of one dataset to ``out``: sweeps, heuristic fits, resolution law, per-step spectra.

    Parameters
    ----------
    spectrum : str, path-like or array_like
        ``"builtin:natural-patches"`` (default), a ``.npy`` spectrum, a folder of images
        (:func:`symsched.spectra.load_spectrum`), or an array.
    out : path-like
        Output folder (created). The files are written into a hidden staging folder next to it and moved onto
        ``out`` at the end (each an atomic rename keeping the mode of the file it replaces; other files in ``out``
        are kept): an error or interrupt (Ctrl-C, SIGTERM) leaves ``out`` as it was. Checked before any work, as
        every argument is.
    steps : sequence of int
        K of the optimal schedules; the fits and heat maps use K = 10 if listed, else the middle one.
    divergences : sequence of {"kl", "kl-reverse", "w2"}
        Each named once.
    sampler, eta, variance, **settings
        The sampler (any of :data:`symsched.optimize.SAMPLERS`) and its settings by the library's names, as
        :func:`symsched.optimize_schedule` takes them (``eta=None``: the sampler's own default; the other
        settings default to the library's). A flow-matching sampler (``"flow_match_euler"``,
        ``"flow_match_heun"``) starts every schedule from pure noise, t = 1 (alpha_bar = 0), as
        ``symsched optimize --flow`` does; the others start at the training grid's noisiest level.
    max_step_ratio : float or None
        As :func:`symsched.optimize_schedule` takes it (multistep samplers' step-ratio cap; None: its default).
    resolutions : sequence of int
        Resolutions of the power-law resolution law (FFT-grid spectra only; at least two, distinct; empty or None
        to skip).
    images : {"auto", "on", "off"}
        The resolution law of the photographs resized (``"auto"``: when the source is the built-in
        default or a folder of images; ``"on"`` with an array spectrum is a ValueError).
    image_resolutions : sequence of int
        Resolutions for the photographs, distinct, at least two, each at least :data:`MIN_IMAGE_RESOLUTION` = 8
        pixels (checked whatever ``images`` is): at most the smallest photograph's side (with ``images="auto"`` larger
        ones are left out with a note; with ``"on"`` a ValueError naming ``image_resolutions``). Fewer than two left
        skip the photographs' law with a note.
    restarts, seed
        :func:`symsched.optimize_schedule`'s random restarts (0: its deterministic standard starts,
        which find the same optima here) and seed.
    n_jobs : int
        joblib workers (-1: every core; as :func:`~symsched.insight.sweep`).
    progress : bool
        tqdm progress bar on stderr.

    Returns
    -------
    Explanation
        The sweeps, fits, resolution laws and per-step spectra (arrays of shape (N, *spectrum.shape)); the
        spectrum keeps its own shape (any, e.g. (p, p, 3) for the built-in), each schedule has shape (K,).

    Raises
    ------
    ValueError
        Bad spectrum, steps, divergences, sampler settings, max_step_ratio, resolutions, image_resolutions, restarts
        or seed, or an ``out`` that is a file or lies under one, or is the ``spectrum`` path or lies inside its folder
        (TypeError, as ArgumentTypeError is both, for a value of the wrong type: ``resolutions="32,64"``,
        ``out=None``), all before any work. A square spectrum
        without a power law to fit (fewer than two positive modes in a channel) skips the power-law resolution
        law with a note.
    OSError
        ``out`` cannot be written (permissions, a read-only file system), also before any work.

    Source: docs/model.md §8 (optima), §7.6 (tangent law), §9 (per-step spectra), §10 (resolution rules).
    """
    from ..plots import save_figure
    from ..spectra import load_spectrum

    t0 = time.perf_counter()
    n_jobs = check_n_jobs(n_jobs)
    ks = sorted(as_step_counts(steps, "steps"))
    divs = _divergences(divergences)
    check_choice(sampler, "sampler", VP_SAMPLERS + VE_SAMPLERS + FLOW_SAMPLERS)
    eta = _check_sampler_args(sampler, eta, variance, settings)
    ratio_kw = {} if max_step_ratio is None else {"max_step_ratio": _check_step_ratio(max_step_ratio, ())}
    flow = sampler in FLOW_SAMPLERS
    check_flow_steps(ks, sampler, "steps")
    check_choice(images, "images", ("auto", "on", "off"))
    progress = as_bool(progress, "progress")
    res_list = _resolution_list(resolutions, "resolutions")
    img_res = _image_resolutions(image_resolutions)
    restarts = _check_int(restarts, "restarts", 0)
    seed = as_int(seed, "seed", 0, rule="an integer >= 0")
    outp = _check_out(out)
    if isinstance(spectrum, (str, os.PathLike)):
        if not os.fspath(spectrum).startswith("builtin:"):  # as the command line refuses it (audit of 6 December)
            check_apart(out, "out", spectrum, "spectrum")
        label = str(spectrum)
        S = load_spectrum(spectrum)
    else:
        from .._validate import as_spectrum

        label, S = "array", as_spectrum(spectrum)
    main_k = 10 if 10 in ks else ks[len(ks) // 2]
    opt_kw: dict[str, Any] = dict(sampler=sampler, restarts=restarts, seed=seed, **ratio_kw,
                                  **_settings(sampler, eta, variance if sampler == "ddpm" else None, settings))
    # flow matching samples from pure noise, t = 1: every optimum (the resolution laws' too) starts there
    law_ends = (0.0, None) if flow else (None, None)
    data_kw = dict(opt_kw, endpoints=law_ends) if flow else opt_kw  # the dataset's optima (default endpoints)

    # ---- plan every optimisation, then run them in one parallel batch
    plans: dict[str, Any] = {}
    notes: list[str] = []
    power = None
    if res_list:
        if S.ndim in (2, 3) and S.shape[0] == S.shape[1]:
            try:
                power = fit_power_law(S)
            except ValueError as exc:  # e.g. fewer than two positive modes: nothing to extrapolate from
                notes.append(f"The power-law resolution law is skipped: {exc}.")
            else:
                plans["power law"] = _plan(power.at, res_list, main_k, divs, law_ends, 256,
                                           f"power law fitted to {label}", dict(opt_kw))
        else:
            notes.append("The power-law resolution law needs a square FFT-grid spectrum; skipped for this spectrum.")
    from_path = isinstance(spectrum, (str, os.PathLike))
    photos = from_path and (str(spectrum).startswith("builtin:") or Path(os.fspath(spectrum)).is_dir())
    if images == "on" and not photos:
        got = f"the file {os.fspath(spectrum)}" if from_path else "an array"  # unquoted: the CLI names --images
        raise ValueError("images='on' needs spectrum to be an image folder or 'builtin:natural-patches' (got "
                         f"{got}: it has no photographs to resize)")
    use_images = images == "on" or (images == "auto" and photos)
    if use_images:
        imgs = source_images(spectrum)
        smallest = min(min(np.shape(im)[:2]) for im in imgs)  # the side of the smallest square crop
        if images == "auto":  # keep the resolutions the photographs can provide without enlarging
            dropped = [d for d in img_res if d > smallest]
            img_res = [d for d in img_res if d <= smallest]
            if dropped:
                notes.append(f"Image resolutions {dropped} exceed the smallest photograph ({smallest} px): left out.")
        elif img_res[-1] > smallest:  # (image_spectra would name its own argument, resolutions)
            raise ValueError(f"image_resolutions must not exceed the smallest square crop of the photographs "
                             f"({smallest} pixels; got {img_res[-1]}): enlarging invents no detail")
        if len(img_res) >= 2:
            plans["images"] = _plan(image_spectra(imgs, img_res), None, main_k, divs, law_ends, 256,
                                    f"images of {label}, resized", dict(opt_kw))
        else:
            notes.append("Fewer than two image resolutions are available: the photographs' resolution law is skipped.")
    tasks = [(S, K, dict(data_kw, divergence=dv)) for dv in divs for K in ks]
    offsets = {"dataset": (0, len(tasks))}
    for name, plan in plans.items():
        t = plan.tasks()
        offsets[name] = (len(tasks), len(tasks) + len(t))
        tasks += t
    from tqdm.auto import tqdm

    stages = 3 + len(divs)  # fits, per-step spectra, each divergence's figures, writing
    bar = tqdm(total=len(tasks) + stages, desc="symsched explain", unit="step", file=sys.stderr,
               disable=not progress)
    try:
        bar.set_postfix_str(f"{len(tasks)} optimisations")
        results = run_optimizations(tasks, n_jobs=n_jobs, bar=bar)
        warning = None  # (review of 4 December: an all-zero spectrum read "best fitted by cosine", without a word)
        if any(r.indifferent for r in results[: len(divs) * len(ks)]):
            warning = (f"Every mode of the spectrum is 0, which sampler {sampler!r} reproduces exactly whatever the "
                       "levels: every schedule scores 0, so the optimal schedules, the fitted heuristics and the "
                       "generation order below are where the searches stopped, not a property of the data.")

        sweeps: dict[str, SweepResult] = {}
        for i, dv in enumerate(divs):
            chunk = results[i * len(ks) : (i + 1) * len(ks)]
            sweeps[dv] = SweepResult(parameter="spectrum", values=[label], steps=ks,
                                     results={(0, K): r for K, r in zip(ks, chunk)}, spectra=[S],
                                     settings=dict(data_kw, divergence=dv))
        laws = {name: plan.finish(results[offsets[name][0] : offsets[name][1]]) for name, plan in plans.items()}

        bar.set_postfix_str("heuristic fits")
        fits = {dv: sw.fit_heuristics() for dv, sw in sweeps.items()}
        main_fits = {dv: f.fits[(0, main_k)] for dv, f in fits.items()}
        warning = warning or _shape_free_warning(main_fits, main_k)
        bar.update()

        bar.set_postfix_str("per-step spectra")
        inter = {dv: intermediate_spectra(S, sweeps[dv].results[(0, main_k)].alpha_bar, sampler=sampler,
                                          **sweeps[dv].results[(0, main_k)].settings) for dv in divs}
        bar.update()

        files: list[str] = []
        with staged_folder(outp, "symsched explain") as stage:  # out gets all of it, or nothing new

            def put(name: str, text: str) -> None:
                atomic_write_text(stage / name, text)
                files.append(name)

            def fig(name: str, figure: Any) -> None:
                save_figure(figure, stage / name)
                files.append(name)

            both = SweepResult(parameter="divergence", values=[_NAMES[d] for d in divs], steps=ks,
                               results={(j, K): sweeps[d].results[(0, K)] for j, d in enumerate(divs) for K in ks},
                               spectra=[S] * len(divs), settings=dict(data_kw))
            fig("schedules.png", both.plot(title=f"optimal schedules for {label} ({sampler})"))
            # a sampler that extrapolates from earlier levels at some K: its cap as run, inf included (no cap)
            cap = _step_ratio_as_run(sampler, ks, eta, variance, settings, max_step_ratio)
            who = f"{_sampler_words(sampler, sweeps[divs[0]].results[(0, main_k)].settings, cap)}, white start"
            for dv in divs:
                bar.set_postfix_str(f"figures {_NAMES[dv]}")
                put(f"schedules_{dv}.md", sweeps[dv].to_markdown())
                put(f"schedules_{dv}.tex", tex_table(sweeps[dv].to_latex(levels=False), _sweep_caption(dv, who),
                                                     "explain"))
                put(f"fits_{dv}.md", fits[dv].to_markdown())
                put(f"fits_{dv}.tex", tex_table(fits[dv].to_latex(), _fits_caption(dv, fits[dv], who), "explain"))
                put(f"fits_{dv}_K{main_k}.md", main_fits[dv].to_markdown())
                put(f"fits_{dv}_K{main_k}.tex", tex_table(main_fits[dv].to_latex(),
                                                          _family_caption(dv, main_k, main_fits[dv], who), "explain"))
                fig(f"fits_{dv}_K{main_k}.png", main_fits[dv].plot(
                    title=f"{_NAMES[dv]}-optimal schedule, K={main_k}, and the heuristic families"))
                fig(f"intermediate_{dv}_K{main_k}.png", inter[dv].plot(
                    title=f"per-step spectra of the {_NAMES[dv]}-optimal schedule, K={main_k} ({sampler})"))
                bar.update()
            slug = {"power law": "resolution_powerlaw", "images": "resolution_images"}
            for name, law in laws.items():
                put(f"{slug[name]}.md", law.to_markdown())
                put(f"{slug[name]}.tex", tex_table(law.to_latex(), _law_caption(law, who), "explain"))
                fig(f"{slug[name]}.png", law.plot(title=f"resolution law: {law.source}"))

            bar.set_postfix_str("writing")
            elapsed = time.perf_counter() - t0
            main = sweeps[divs[0]].results[(0, main_k)]
            info = dict(spectrum=label, shape=list(S.shape), n_modes=int(S.size), sampler=sampler,
                        settings=main.settings, steps=ks, main_steps=main_k, divergences=divs, elapsed=elapsed,
                        max_step_ratio=cap,
                        power_law=str(power) if power is not None else None, notes=notes, warning=warning)
            result = Explanation(out=outp, files=files, sweeps=sweeps, fits=fits, main_steps=main_k, main_fits=main_fits,
                                 laws=laws, intermediate=inter, elapsed=elapsed, info=info)
            put("explain.md", _document(result, slug))
            put("explain.json", json.dumps(json_ready(_numbers(result)), indent=1, allow_nan=False) + "\n")
        bar.update()
    finally:
        bar.close()
    result.elapsed = time.perf_counter() - t0
    return result


def _shape_free_warning(main_fits: dict[str, HeuristicFit], K: int) -> Optional[str]:
    """Why the shapes below mean nothing when every fitted family, however far from the optimum in log-SNR, scores
    its value (to 1e-12): the objective does not depend on the levels between the ends (break-test of 7 December:
    a spectrum of 1e-300 everywhere read "best fitted by loglinear" with every family at "lost 0 %")."""
    flat = []
    for dv, fit in main_fits.items():
        rms = [f.rms for f in fit.fits if math.isfinite(f.rms)]
        same = all(abs(f.loss) <= 1e-12 * abs(fit.value) for f in fit.fits)
        if same and math.isfinite(fit.value) and len(rms) > 1 and max(rms) - min(rms) > 1e-3:
            flat.append(f"{_NAMES[dv]} (RMS {min(rms):.2g} to {max(rms):.2g} in log-SNR)")
    if not flat:
        return None
    return (f"At K = {K} every heuristic family, whatever its shape, scores the optimum's value to 1e-12 for "
            f"{' and '.join(flat)}: on this spectrum the objective hardly depends on the levels between the ends, so "
            "the optimal schedules' shape, the best-fitted heuristic and the generation order below are where the "
            "searches stopped, not a property of the data.")


def _numbers(res: Explanation) -> dict[str, Any]:
    return {
        "info": res.info,
        "schedules": {dv: sw.to_dict() for dv, sw in res.sweeps.items()},
        "fits": {dv: {str(K): f.to_dict() for (_, K), f in sf.fits.items()} for dv, sf in res.fits.items()},
        "resolution_law": {name: law.to_dict() for name, law in res.laws.items()},
        "intermediate": {dv: {"band_x": _band_order(it)[0].tolist(), "band_half_step": _band_order(it)[1].tolist()}
                         for dv, it in res.intermediate.items()},
    }


#: the marks of the fits tables' cells and what they mean (their captions say so when a table uses them)
_FIT_MARKS = {"≈0": "≈0: a loss at the evaluations' rounding (the family reproduces the optimum).",
              "–": "–: not defined (no valid schedule of the family, or no runner-up)."}


def _sampler_words(sampler: str, settings: Mapping[str, Any], cap: Optional[float]) -> str:
    """"ddim (eta=0)" or "dpmpp_2m (library defaults; max_step_ratio=5)": the sampler as run, with the step-ratio cap
    of a sampler that extrapolates from earlier levels (None: no cap applies)."""
    text = _settings_text(sampler, dict(settings)).strip() or "library defaults"
    return f"{sampler} ({text}" + (f"; max_step_ratio={cap:g})" if cap is not None else ")")


def _marks(cells: Sequence[Sequence[str]], meanings: Mapping[str, str]) -> str:
    """The sentences of ``meanings`` whose mark appears in a cell of ``cells`` (a table's rows), joined."""
    return " ".join(why for mark, why in meanings.items() if any(mark in c for row in cells for c in row))


def _sweep_caption(dv: str, who: str) -> str:
    return (f"Schedules optimised for {_NAMES[dv]}, {who}: for each number of steps K, the objective "
            f"({OBJECTIVE_NAMES[dv]}) of the optimum, its KL and W2, and the log-SNR of its first (noisiest) and last "
            "level.")


def _fits_caption(dv: str, fits: SweepFits, who: str) -> str:
    """Caption of a table of the best family of each optimum (explain's ``fits_<div>.tex``, the report's
    ``insight_fits_<div>.tex``)."""
    return (f"The heuristic family closest to each {_NAMES[dv]}-optimal schedule, {who}: least squares in log-SNR "
            "with the optimum's first and last level; RMS and max |Δlog-SNR|: the fit's residual; lost (%): how much "
            f"larger the {OBJECTIVE_NAMES[dv]} objective is with the fitted family than with the optimum, in percent "
            "of the optimum's; runner-up: the second-best family (its RMS residual). "
            + _marks(fits._rows()[1], _FIT_MARKS)).rstrip()


def _family_caption(dv: str, K: int, fit: HeuristicFit, who: str) -> str:
    """Caption of the table of every family fitted to one optimum (``fits_<div>_K<K>.tex``)."""
    obj = OBJECTIVE_NAMES[dv]
    return (f"Every heuristic family fitted to the {_NAMES[dv]}-optimal schedule, K = {K}, {who}, the best fit (bold) "
            "first: least squares in log-SNR with the optimum's first and last level; RMS and max |Δlog-SNR|: the "
            f"fit's residual; {obj}: the objective of the fitted schedule; lost: it minus the optimum's "
            f"({fit.value:.4g}); lost (%): in percent of the optimum's. "
            + _marks(fit._rows()[1], _FIT_MARKS)).rstrip()


def _law_caption(law: ResolutionLaw, who: str) -> str:
    """Caption of a resolution-law table (``resolution_<source>.tex``), with every mark its cells use."""
    from .families import FLUX_DEFAULTS

    after = ("; the first level is pure noise at every resolution, so \"first\" is the first level after it"
             if all(law.first_level_pinned(dv) for dv in law.sweeps) else "")
    marks = {"†": f"† Flux's μ extrapolated beyond its {FLUX_DEFAULTS['max_seq_len']:.0f}-token calibration "
                  "(max_seq_len).",
             "‡": "‡ The data do not determine the optimum at this resolution or at the base (a free end at the "
                  "search's log-SNR bound, a flat objective, or a match to rounding): the offset measures the "
                  "search, not the data.",
             "§": "§ The mean offset is not monotone in resolution: the slopes of this row do not summarise it."}
    return (f"Resolution law of the {law.source}, {who}, K = {law.steps}: the optimal schedule at d × d pixels "
            f"against the base d₀ = {law.base}. Δℓ: its log-SNR minus the base optimum's (mean over the levels; "
            f"first / last level{after}); shift s = exp(−Δℓ/2), the SD3-style factor; last row: the slope per "
            "doubling of d. Rules: simple diffusion's −2 log(d/d₀) (SD3's √(m/n)), Flux's μ, linear in the "
            f"token count from its base of {law.flux_tokens[0]:.0f} tokens (a log-SNR shift −2Δμ), and SD3's "
            "static shift 3 (the same at every resolution). " + _marks(law._rows()[1], marks)).rstrip()


def _document(res: Explanation, slug: dict[str, str]) -> str:
    i = res.info
    K = res.main_steps
    lines = [
        f"# What the optimal schedule says about `{i['spectrum']}`", "",
        f"Spectrum `{i['spectrum']}`: shape {tuple(i['shape'])}, {i['n_modes']} modes. Sampler "
        + _sampler_words(i["sampler"], i["settings"], i["max_step_ratio"])
        + f", white start; K = {', '.join(map(str, i['steps']))}. "
        f"Written by `symsched explain` in {i['elapsed']:.0f} s.",
        "", *([f"**Note.** {i['warning']}", ""] if i["warning"] else []),
        "## Optimal schedules", "",
        "The schedules that minimise each divergence between the generated and the data Gaussian "
        + ("(first level pure noise, t = 1, alpha_bar = 0, last level free):" if i["sampler"] in FLOW_SAMPLERS
           else "(first level at the training grid's noisiest level, last level free):"), "",
        "![optimal schedules](schedules.png)", "",
    ]
    for dv, sw in res.sweeps.items():
        lines += [f"**{_NAMES[dv]}** ([`schedules_{dv}.tex`](schedules_{dv}.tex)):", "", sw.to_markdown(), ""]
    lines += ["## Which heuristic is it?", "",
              "Each family (cosine with offset, the one-mode tangent law, SD3's shift, log-linear and Karras ρ, "
              "sigmoid, Align Your Steps) is fitted to the optimum by least squares in log-SNR, with the optimum's "
              "first and last level; *lost* is the objective of the fitted schedule minus the optimum's.", ""]
    for dv in res.fits:
        lines += [f"- {_fit_sentence(dv, K, res.main_fits[dv])}"]
    lines.append("")
    for dv, sf in res.fits.items():
        lines += [f"### {_NAMES[dv]}", "", sf.to_markdown(), f"All families at K = {K} "
                  f"([`fits_{dv}_K{K}.tex`](fits_{dv}_K{K}.tex)):", "", res.main_fits[dv].to_markdown(),
                  f"![fits {dv}](fits_{dv}_K{K}.png)", ""]
    if res.laws:
        lines += ["## The resolution law", "",
                  f"The same scene at d × d pixels, optimal schedules with {_law_ends(res.laws)}; Δℓ is the "
                  "optimum's log-SNR minus the base resolution's (mean over the levels; first / last level), "
                  "*shift s* the SD3-style factor exp(−Δℓ/2). Rules: simple diffusion (and SD3's √(m/n)) shift "
                  "log-SNR by −2 log(d/d₀); "
                  "SD3's static shift 3 is the same at every resolution; Flux's μ is linear in the token count, "
                  "with d₀ identified with its base of 256 tokens († beyond its 4096-token calibration).", ""]
        for name, law in res.laws.items():
            lines += [f"### {law.source}", "", law.to_markdown(), *[f"- {s}" for s in law.findings()], "",
                      f"LaTeX: [`{slug[name]}.tex`]({slug[name]}.tex).", "", f"![resolution law]({slug[name]}.png)", ""]
        lines += ["**Where the theory agrees and where it disagrees.** " + _verdict(res.laws), ""]
    for note in i["notes"]:
        lines += [f"_{note}_", ""]
    lines += ["## Coarse to fine: the per-step spectra", "", HEATMAP_CAPTION, ""]
    for dv, it in res.intermediate.items():
        lines += [f"- {_NAMES[dv]}-optimal, K = {K}: {_coarse_to_fine(it)}"]
    lines.append("")
    for dv in res.intermediate:
        lines += [f"![per-step spectra {dv}](intermediate_{dv}_K{K}.png)", ""]
    lines += ["## What the Gaussian theory does and does not justify", "", GAUSSIAN_SCOPE]
    return "\n".join(lines)


def _law_ends(laws: dict[str, ResolutionLaw]) -> str:
    """The resolution laws' end points in words: free, or the first pinned at pure noise (flow matching)."""
    pinned = [law.first_level_pinned(dv) for law in laws.values() for dv in law.sweeps]
    if all(pinned):
        return ("the first level pinned at pure noise (alpha_bar = 0) and the rest free; \"first\" below is the "
                "first level after it")
    return "both end points free" if not any(pinned) else "their end points free unless pinned at pure noise"


def _verdict(laws: dict[str, ResolutionLaw]) -> str:
    """One measured sentence per law and divergence: the optimum's shift per doubling against the rule's."""
    from .resolution import _direction, _slope_per_doubling

    parts = []
    for law in laws.values():
        d = np.array(law.resolutions, float)
        rule = law.rule_slope("simple diffusion")
        for dv, s in law.slope.items():
            if any(law.undetermined.get(dv, [])):
                parts.append(f"{law.source}, {_NAMES[dv]}: no shift identified (the data do not determine an "
                             "optimum, see the table's ‡)")
                continue
            if not law.monotone(dv):
                parts.append(f"{law.source}, {_NAMES[dv]}: no steady shift (the offset is not monotone in "
                             "resolution, see the table's §)")
                continue
            first = _slope_per_doubling(d, law.base, law.offset_first[dv])
            where = law.first_level_name(dv)
            agree = {"none": "almost no shift", "same": "same direction as the rule",
                     "opposite": "the opposite direction to the rule"}[_direction(s, rule)]
            parts.append(f"{law.source}, {_NAMES[dv]}: mean {s:+.2f} per doubling ({agree}, {abs(s / rule):.0%} of "
                         f"its size), {where} {first:+.2f}, against the rule's {rule:+.2f}")
    return ("Simple diffusion's rule moves every level by −2 log 2 ≈ −1.39 in log-SNR per doubling, because the "
            "coarsest bands' SNR grows as (d/d₀)²; the optimum moves each level by what the bands it serves need. "
            "SD3's static shift ignores resolution; Flux's μ, linear in tokens (a log-SNR shift −2μ), is gentler than "
            "the rule up to about 11,500 tokens (d/d₀ ≈ 6.7 from its 256-token base) and steeper only beyond. "
            "Measured: " + "; ".join(parts) + ".")


# ---------------------------------------------------------------------------------------------
# the section of `symsched report`
# ---------------------------------------------------------------------------------------------


def _report_results(results: Any) -> dict[str, dict[int, Any]]:
    """:func:`report_section`'s ``results`` checked: a non-empty mapping of divergence names to non-empty mappings of
    step counts K to :class:`~symsched.OptimizeResult` (TypeError / ValueError naming ``results`` otherwise)."""
    from ..optimize import OptimizeResult

    if not isinstance(results, Mapping):
        raise ArgumentTypeError(f"results must be a mapping divergence -> {{K: OptimizeResult}} (got {_show(results)})")
    if not results:
        raise ValueError("results must hold at least one divergence (got an empty mapping)")
    out: dict[str, dict[int, Any]] = {}
    for dv, by_k in results.items():
        if not isinstance(dv, str) or dv not in _NAMES:
            raise ValueError(f"results must be keyed by divergence names, {', '.join(map(repr, _NAMES))} (got the key "
                             f"{_show(dv)})")
        if not isinstance(by_k, Mapping):
            raise ArgumentTypeError(f"results[{dv!r}] must be a mapping K -> OptimizeResult (got {_show(by_k)})")
        if not by_k:
            raise ValueError(f"results[{dv!r}] must hold at least one step count K (got an empty mapping)")
        for K, r in by_k.items():
            if isinstance(K, bool) or not isinstance(K, (int, np.integer)):
                raise ArgumentTypeError(f"results[{dv!r}] must be keyed by step counts K (integers) (got the key "
                                        f"{_show(K)})")
            if not isinstance(r, OptimizeResult):
                raise ArgumentTypeError(f"results[{dv!r}][{K!r}] must be an OptimizeResult (got {_show(r)})")
        out[dv] = {int(K): r for K, r in by_k.items()}
    return out


@numpy_error_defaults
def report_section(spectrum: Any, results: dict[str, dict[int, Any]], out: Any, *,
                   sampler: Optional[str] = None, fits: Optional[dict[tuple[str, int], Any]] = None) -> tuple[str, str]:
    """Write the insight files of ``symsched report`` and return its (Markdown, HTML) section.

    ``results[div][K]`` are the report's :class:`~symsched.OptimizeResult` objects. Writes
    ``insight_fits_<div>.md/.tex`` (the best heuristic family of every optimum) and
    ``insight_intermediate.png`` (per-step spectra of the W2-optimal schedule, else the first
    divergence's, at the largest K <= 10).

    Each fit is ``min_x sum_i (l^fam_i(x) - l_i)^2`` in log-SNR with the optimum's end points
    (:func:`fit_heuristics`). ``spectrum``: the spectrum the results were optimised for (any shape);
    ``results[div][K]`` one result per divergence and K; returns two strings. The per-step spectra use that
    result's own sampler, start and settings (:attr:`~symsched.OptimizeResult.sampler`, ``init``, ``settings``).
    Raises ValueError for a bad spectrum or what :func:`fit_heuristics` / :func:`intermediate_spectra` refuse,
    and OSError when ``out`` cannot be written (missing folders on it are created, as every writer of symsched
    does). ``sampler`` (kept for earlier callers) must be the results' own, if
    given (a ValueError otherwise). ``fits[(div, K)]``: :func:`fit_heuristics` of ``results[div][K]`` already
    computed (``symsched report`` runs them in its workers); the others are computed here.
    Source: docs/model.md §2, §9.
    """
    from ..plots import save_figure
    from .._validate import as_spectrum

    S = as_spectrum(spectrum)
    results = _report_results(results)
    if not isinstance(out, (str, os.PathLike)):
        raise ArgumentTypeError(f"out must be a folder path (str or os.PathLike) (got {_show(out)})")
    outp = Path(out)
    own = {r.sampler for by_k in results.values() for r in by_k.values()}
    if sampler is not None and own != {sampler}:
        raise ValueError(f"sampler={sampler!r}: the results were optimised for {sorted(own)}; report_section uses "
                         "each result's own sampler (omit sampler=)")
    md = ["## Spectral insight", "",
          "Which heuristic family each optimised schedule is (least squares in log-SNR, same end points) and "
          "what using it instead costs; then the order in which the optimum generates the frequency bands. "
          "`symsched explain` adds K sweeps, the resolution law and more figures.", ""]
    body = ["<h2>Spectral insight</h2>", f"<p>{inline(md[2])}</p>"]
    done = fits or {}
    for dv, by_k in results.items():
        fitted = {(0, K): done[(dv, K)] if (dv, K) in done else fit_heuristics(r, S) for K, r in sorted(by_k.items())}
        sf = SweepFits(parameter="spectrum", values=["data"], fits=fitted)
        table = sf.to_markdown()
        atomic_write_text(outp / f"insight_fits_{dv}.md", table)
        r = by_k[max(by_k)]
        cap = r.max_step_ratio if any(x.history_steps for x in by_k.values()) else None
        who = f"{_sampler_words(r.sampler, r.settings, cap)}, {r.init} start"
        atomic_write_text(outp / f"insight_fits_{dv}.tex",
                          tex_table(sf.to_latex(), _fits_caption(dv, sf, who), "report"))
        sentences = [_fit_sentence(dv, K, f) for (_, K), f in sorted(fitted.items())]
        md += [f"**{_NAMES[dv]}** ([`insight_fits_{dv}.tex`](insight_fits_{dv}.tex)):", "", table,
               *[f"- {s}" for s in sentences], ""]
        body += [f"<h3>{_NAMES[dv]}</h3>", f"<p>{inline(f'LaTeX: [`insight_fits_{dv}.tex`](insight_fits_{dv}.tex)')}</p>",
                 tables(table),
                 "<ul>" + "".join(f"<li>{inline(s)}</li>" for s in sentences) + "</ul>"]
    dv = "w2" if "w2" in results else next(iter(results))
    ks = sorted(results[dv])
    K = max([k for k in ks if k <= 10] or ks[:1])
    r = results[dv][K]
    inter = intermediate_spectra(S, r.alpha_bar, sampler=r.sampler, init=r.init, **r.settings)
    save_figure(inter.plot(title=f"per-step spectra of the {_NAMES[dv]}-optimal schedule, K={K}"),
                outp / "insight_intermediate.png")
    sentence = f"{_NAMES[dv]}-optimal, K = {K}: {_coarse_to_fine(inter)}"
    md += [f"- {sentence}", "", "![per-step spectra](insight_intermediate.png)", "", HEATMAP_CAPTION, ""]
    body += [f"<p>{inline(sentence)}</p>",
             '<img src="insight_intermediate.png" alt="per-step spectra" width="900">',
             f"<p>{inline(HEATMAP_CAPTION)}</p>"]
    return "\n".join(md) + "\n", "\n".join(body) + "\n"
