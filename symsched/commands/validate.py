"""``symsched validate``: closed-form output PSD vs a Monte Carlo run of the actual sampler.

Simulates the sampler on real arrays (exact Wiener denoiser by FFT, white noise in signal
space; :mod:`symsched.montecarlo`), measures the periodogram and compares it with
:func:`symsched.output_spectrum` bin by bin with exact chi^2 z-scores
(:func:`symsched.montecarlo.psd_check`). Prints the largest |z| over the independent frequency bins,
the sum of z^2, and their family-wise p-value. Exit code 0 when both pass at ``--alpha`` (each at
``--alpha / 2``), 1 when the closed form is rejected.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._io import output_file
from . import _settings

#: the DDPM training grid used for the default schedule (Ho et al.: betas linspace(1e-4, 0.02, 1000))
_TRAIN_STEPS = 1000


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "validate",
        help="check the closed-form output PSD against a Monte Carlo run of the sampler",
        description="Run the sampler on Gaussian fields with the exact (Wiener) denoiser, measure the "
        "periodogram and compare it with the closed-form output PSD at every frequency (exact chi^2 "
        "z-scores). Default data: a power-law PSD on the grid; default schedule: STEPS evenly spaced "
        "timesteps (DDIM 'uniform'/diffusers 'leading') of the 1000-step linear DDPM grid. "
        "Exit code 0 = consistent (PASS), 1 = closed form rejected at --alpha (FAIL) or not tested (INCONCLUSIVE: "
        "every bin at or below the simulation's rounding floor), 2 = bad arguments.",
    )
    p.add_argument("--sampler", default="ddim", choices=["ddim", "ddpm"], help="VP sampler (default ddim)")
    p.add_argument("--steps", default=20, type=int, help="number of sampler steps K (default 20; at most 1000)")
    p.add_argument("--samples", default=20000, type=int, help="Monte Carlo samples (default 20000)")
    p.add_argument("--shape", default=None,
                   help="FFT grid of the built-in power law, e.g. 64x64 or 256 (default 32x32; not with --spectrum, "
                   "which brings its own shape)")
    p.add_argument("--seed", default=0, type=int, help="random seed (default 0)")
    p.add_argument("--eta", default=0.0, type=_settings.real, help="DDIM eta in [0, 1] (default 0)")
    p.add_argument("--variance", default="posterior", choices=["posterior", "beta"],
                   help="DDPM injected variance: posterior beta_tilde or beta (--sampler ddpm only; "
                   "default posterior)")
    _settings.add_init(p, ve=False)  # (DDIM and DDPM only)
    p.add_argument("--exponent", default=None, type=_settings.real,
                   help="power-law exponent of the default spectrum S ~ 1/max(|f|, f0)^exponent (default 2; not "
                        "with --spectrum)")
    p.add_argument("--spectrum", default=None,
                   help="PSD on an FFT grid to use instead of the power law (overrides --shape): FILE.npy, a folder "
                        "of PNG/JPEG images or builtin:natural-patches, read as every command reads --spectrum; of an "
                        "(H, W, C) colour spectrum (a folder's, the built-in's 32x32x3; any 3-D array with C <= 4) "
                        "the first channel is checked, as symsched report does: each colour eigen-mode channel is an "
                        "independent field")
    p.add_argument("--alpha", default=1e-6, type=_settings.real,
                   help="family-wise false-alarm probability of the check (default 1e-6)")
    p.add_argument("--batch-size", default=None, type=int, help="samples simulated at once (default auto; the samples of a seed do not depend on it)")
    p.add_argument("--plot", default=None, type=output_file("psd.png"),
                   help="write a figure (format from the suffix: PNG, PDF, SVG, ...): closed form vs empirical PSD")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_shape(text: str) -> tuple[int, ...]:
    """'64x64' -> (64, 64); '128' -> (128,). Each size >= 2; at most two sizes (the power-law field's)."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        shape = tuple(int(s) for s in parts)
    except ValueError:
        raise ValueError(f"--shape must look like 64x64 or 256 (got {text!r})") from None
    if not 1 <= len(shape) <= 2 or any(s < 2 for s in shape):  # the power-law field is 1-D or 2-D (spectra.power_law)
        hint = "; a 3-D field: --spectrum FILE.npy" if len(shape) > 2 else ""
        raise ValueError(f"--shape must have 1 or 2 sizes, each >= 2 (got {text!r}{hint})")
    from .._validate import check_grid_size

    check_grid_size(shape, "--shape")
    return shape


def _samples(n: int) -> str:
    """``"1 sample"``, ``"40 samples"``."""
    return f"{n} sample{'' if n == 1 else 's'}"


def _first_channel(S: np.ndarray, label: str) -> tuple[np.ndarray, str]:
    """A (H, W, C) colour spectrum (:func:`._settings.colour_channels`: C <= 4, what ``load_spectrum`` gives for
    images) -> its first channel, as ``symsched report`` validates it, with a note; any other array as is."""
    if not _settings.colour_channels(S):
        return S, label
    print(f"note: {label} has shape {S.shape}: read as an H x W spectrum with {S.shape[-1]} colour channel(s) (a 3-D "
          f"field needs more than {_settings.MAX_CHANNELS} points on its last axis); validating the first channel, "
          "as symsched report does")
    return np.ascontiguousarray(S[..., 0]), f"{label}, first channel"


def power_law_spectrum(shape: tuple[int, ...], exponent: float = 2.0) -> np.ndarray:
    """S(f) = c / max(|f|, 1/max(shape))^exponent on the FFT grid with c chosen so mean(S) = 1."""
    from ..spectra import power_law

    S = power_law(shape, alpha=float(exponent))
    return S / S.mean()


def default_schedule(steps: int, train_steps: int = _TRAIN_STEPS) -> np.ndarray:
    """alpha_bar at the 'leading' timesteps i * (T // K) of the linear DDPM grid; noisiest first."""
    from ..schedules import from_grid, timesteps, training_grid

    if not 1 <= steps <= train_steps:
        raise ValueError(f"--steps must be an integer in [1, {train_steps}] (got {steps})")
    grid = training_grid("linear", num_train_timesteps=train_steps)
    return from_grid(grid, timesteps(steps, spacing="leading", num_train_timesteps=train_steps))


def _check_simulable(P: np.ndarray, S: np.ndarray, label: str) -> None:
    """ValueError naming --spectrum when the output spectrum ``P`` of a spectrum ``S`` that is not all 0 lies below
    float64's normal range everywhere (a faint spectrum: P ~ S^2): the samples' periodogram cannot be represented, so
    no number of samples can check it."""
    tiny = np.finfo(np.float64).tiny
    if np.any(S > 0) and not np.max(P) >= tiny:
        raise ValueError(f"--spectrum {label}: its output spectrum peaks at {float(np.max(P)):.3g} (largest mode "
                         f"{float(np.max(S)):.3g}), below float64's normal range ({tiny:.3g}), where the samples' "
                         "periodogram cannot be represented; Monte Carlo cannot check it (rescale the spectrum; "
                         "symsched.output_spectrum itself is exact there)")


def run(args: argparse.Namespace) -> int:
    from .. import output_spectrum
    from .._validate import MAX_SAMPLES, as_positive_int, check_eta
    from ..montecarlo import empirical_psd, iter_sample, psd_check, psd_zscores

    n = as_positive_int(args.samples, "--samples", MAX_SAMPLES, limit="MAX_SAMPLES")
    steps = as_positive_int(args.steps, "--steps")
    eta = check_eta(args.eta, "--eta")
    from ..montecarlo import _alpha

    _alpha(args.alpha, "--alpha")
    from .._validate import as_seed

    as_seed(args.seed, "--seed")  # checked here, before the header line below (iter_sample checks them again)
    if args.batch_size is not None:
        as_positive_int(args.batch_size, "--batch-size")
    if args.plot is not None:
        from ..plots import figure_format

        figure_format(args.plot, "--plot")  # before the Monte Carlo run
    if args.spectrum is not None:
        from ..montecarlo import _as_grid_spectrum

        if args.exponent is not None:  # it shapes the built-in power law only: silently unused, it would mislead
            raise ValueError(f"--exponent {args.exponent:g} applies only to the built-in power law, not to --spectrum "
                             f"{args.spectrum}")
        if args.shape is not None:  # as --exponent: the spectrum brings its own shape (audit of 6 December)
            raise ValueError(f"--shape {args.shape} applies only to the built-in power law, not to --spectrum "
                             f"{args.spectrum} (which brings its own shape)")

        from ..spectra import load_spectrum

        # the shared loader (a .npy, a folder of images, builtin:), which checks the values (finite and
        # non-negative, a long double within float64's range), then a PSD on an FFT grid (Hermitian), both
        # checked before the header line below
        S = load_spectrum(args.spectrum)
        label = str(args.spectrum)
        S, label = _first_channel(S, label)
        S = _as_grid_spectrum(S, "--spectrum")
    else:
        exponent = 2.0 if args.exponent is None else args.exponent
        if not math.isfinite(exponent):
            raise ValueError(f"--exponent must be finite (got {exponent})")
        shape = parse_shape("32x32" if args.shape is None else args.shape)  # its errors name --shape
        try:
            S = power_law_spectrum(shape, exponent)
        except ValueError as exc:  # power_law calls its exponent alpha, which here is another option
            raise ValueError(f"--exponent: {str(exc).replace('alpha=', 'exponent=')}") from None
        label = f"power law |f|^{0.0 - exponent:g}"
    ab = default_schedule(steps)
    from .._validate import check_sample_work

    check_sample_work(n, S.size, len(ab), "--samples")  # before the exact spectrum and the header line
    kw: dict[str, Any] = dict(sampler=args.sampler, eta=eta, variance=args.variance, init=args.init)
    t0 = time.perf_counter()
    P = output_spectrum(S, ab, **kw)  # checks the sampler settings too, before the header line
    _check_simulable(P, S, label)
    desc = _describe(args, eta)
    shape_txt = "x".join(map(str, S.shape))
    print(f"symsched validate: {desc}, {steps} steps, init {args.init}, {_samples(n)} on {shape_txt} ({label})")

    batches = iter_sample(S, ab, n_samples=n, seed=args.seed, batch_size=args.batch_size,
                          progress=False if args.no_progress else None, **kw)
    try:
        psd = empirical_psd(batches)
    except ValueError as exc:  # the samples it names are generated from the spectrum: their periodogram beyond
        if not str(exc).startswith("samples: "):  # float64 is a property of the spectrum
            raise
        raise ValueError(f"--spectrum {label}: {str(exc)[len('samples: '):]}") from None
    elapsed = time.perf_counter() - t0
    z = psd_zscores(psd, P, n)
    check = psd_check(psd, P, n, alpha=args.alpha)
    m = check.n_independent
    k = tuple(int(np.fft.fftfreq(size, 1.0 / size)[i]) for i, size in zip(check.argmax, S.shape))
    print(f"max |z| = {check.max_abs_z:.3f} at frequency index k = {k} over {m} independent bins "
          f"(Sidak p = {check.max_pvalue:.4g})")
    print(f"sum of z^2 = {check.chi2:.1f} over {m} bins (chi-square with {m} dof: p = {check.chi2_pvalue:.4g})")
    if check.n_floor:
        print(f"note: {check.n_floor} of {m} bins lie at or below the simulation's rounding floor; they are tested "
              "for an excess only")
    verdict = check.verdict()
    print(f"family-wise p-value (both tests) = {check.pvalue:.4g}; at alpha = {args.alpha:g}: |z| <= "
          f"{check.z_crit:.3f} and chi-square p > {args.alpha / 2:g} -> {verdict}")
    print(f"simulation time {elapsed:.1f} s")
    if args.plot is not None:
        plot_validation(args.plot, S, P, psd, z, n, alpha=args.alpha, title=f"{desc}, {steps} steps, "
                        f"init {args.init}, {_samples(n)}, {shape_txt}", check=check, pvalue=check.pvalue)
        print(f"wrote {args.plot}")
    return 0 if check.passed and check.conclusive else 1


def _describe(args: argparse.Namespace, eta: float) -> str:
    if args.sampler == "ddim":
        return f"DDIM (eta={eta:g})"
    return f"DDPM (variance {args.variance})"


def _radial_groups(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Group FFT bins by exact |f|^2 (bins of one annulus share |f|): (labels, |f| per group)."""
    grids = np.meshgrid(*[np.fft.fftfreq(m) * m for m in shape], indexing="ij")
    # exact integer key for |f|^2 = sum (k_i / n_i)^2: scale by lcm(n_i)^2
    L = int(np.lcm.reduce(np.array(shape, dtype=np.int64)))
    key = sum((np.rint(g).astype(np.int64) * (L // m)) ** 2 for g, m in zip(grids, shape))
    uniq, labels = np.unique(key, return_inverse=True)
    return labels.reshape(shape), np.sqrt(uniq.astype(np.float64)) / L


def radial_average(psd: np.ndarray, P: np.ndarray, n: int, *, alpha: float) -> dict[str, np.ndarray]:
    """Annulus averages of the periodogram and closed form, with a family-wise band for the ratio.

    Inside an annulus the average over all bins equals the dof-weighted average over independent
    bins, so when P is constant on the annulus ``nu_tot * avg / P ~ chi2_nu_tot`` exactly; otherwise
    a Satterthwaite effective dof is used. Bonferroni over the annuli.
    """
    from scipy import stats

    from ..montecarlo import independent_bins, psd_dof

    labels, f = _radial_groups(P.shape)
    G = f.size
    w = np.bincount(labels.ravel(), minlength=G).astype(np.float64)
    emp = np.bincount(labels.ravel(), psd.ravel(), minlength=G) / w
    cf = np.bincount(labels.ravel(), P.ravel(), minlength=G) / w
    ind = independent_bins(P.shape)
    nu = (n * psd_dof(P.shape)).astype(np.float64)
    # independent-bin weights: multiplicity / |annulus|, multiplicity 1 (self-conjugate) or 2
    mult = np.where(psd_dof(P.shape) == 1, 1.0, 2.0)
    wi = np.where(ind, mult, 0.0) / w[labels]
    # the relative variance of the annulus average, in P / cf (P itself squared overflows beyond S ~ 1e154)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(cf[labels] > 0, P / cf[labels], 0.0)
        rel_var = np.bincount(labels.ravel(), (wi**2 * 2 * rel**2 / nu).ravel(), minlength=G)
        nu_eff = np.where(rel_var > 0, 2.0 / rel_var, np.inf)
    a = alpha / G
    lo = np.where(np.isfinite(nu_eff), stats.chi2.ppf(a / 2, nu_eff) / nu_eff, 1.0)
    hi = np.where(np.isfinite(nu_eff), stats.chi2.isf(a / 2, nu_eff) / nu_eff, 1.0)
    return dict(f=f, empirical=emp, closed=cf, lo=lo, hi=hi)


def plot_validation(path: Path, S: np.ndarray, P: np.ndarray, psd: np.ndarray, z: np.ndarray, n: int, *,
                    alpha: float, title: str, check: Any, pvalue: float) -> Any:
    """Three panels: radial PSDs (log-log), empirical/closed-form ratio with band, per-bin z-scores (its legend in a
    strip above the scores and the threshold lines). Writes the figure to ``path`` and returns it."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no backend switch

    from ..plots import _clamp_log_limits, save_figure

    r = radial_average(psd, P, n, alpha=alpha)
    rs = radial_average(S, S, n, alpha=alpha)
    labels, f = _radial_groups(P.shape)
    pos = r["f"] > 0
    fig = Figure(figsize=(8, 10.5))
    axs = fig.subplots(3, 1, sharex=True, gridspec_kw=dict(height_ratios=[2.2, 1.2, 1.2]))
    ax = axs[0]
    ax.set_xscale("log")
    if any(np.any(y[pos] > 0) for y in (rs["closed"], r["closed"], r["empirical"])):  # (an all-zero spectrum and
        ax.set_yscale("log")  # its samples have nothing a log axis can show: matplotlib warned)
    ax.plot(rs["f"][pos], rs["closed"][pos], color="0.55", ls="--", lw=1.5, label="data spectrum S")
    ax.plot(r["f"][pos], r["closed"][pos], color="C0", lw=2, label="closed form P(S) (symsched)")
    ax.plot(r["f"][pos], r["empirical"][pos], "o", ms=3.5, color="C3", mfc="none",
            label=f"Monte Carlo periodogram ({n} samples)")
    ax.set_ylabel("PSD (annulus average)")
    _clamp_log_limits(ax)  # now: the panels below share x, and autoscale this one as they are drawn
    ax.legend(loc="lower left", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"symsched validate: {title}\nmax |z| = {check.max_abs_z:.2f} (threshold {check.z_crit:.2f}), "
                 f"sum z² = {check.chi2:.0f} on {check.n_independent} dof, family-wise p = {pvalue:.3g} -> "
                 f"{check.verdict(short=True)}", fontsize=10)

    ax = axs[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = r["empirical"] / r["closed"]
    ax.vlines(r["f"][pos], r["lo"][pos], r["hi"][pos], color="C0", alpha=0.3, lw=2.5,
              label=f"family-wise acceptance band (false alarm <= {alpha:g})")
    ax.axhline(1.0, color="C0", lw=1)
    ax.semilogx(r["f"][pos], ratio[pos], "o", ms=3.5, color="C3", mfc="none", label="periodogram / closed form")
    ax.set_ylabel("ratio (annulus)")
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)

    ax = axs[2]
    fb = f[labels]
    mask = fb > 0
    ax.semilogx(fb[mask], z[mask], ".", ms=2.5, color="C2", alpha=0.6, label="z-score per frequency bin")
    for s in (-1, 1):
        ax.axhline(s * check.z_crit, color="C3", ls="--", lw=1,
                   label=f"Šidák threshold ±{check.z_crit:.2f} (alpha/2)" if s == 1 else None)
    zmax = max(check.z_crit * 1.15, float(np.max(np.abs(z[np.isfinite(z)]), initial=0.0)) * 1.1)
    # a strip above every score and the +z_crit line for the legend (it sat on the threshold line)
    ax.set_ylim(-zmax, 1.6 * zmax)
    ax.set_yticks([t for t in ax.get_yticks() if abs(t) <= zmax])  # no score ticks in the legend's strip
    ax.set_ylabel("exact chi² z-score")
    ax.set_xlabel("spatial frequency |f| (cycles per pixel)")
    ax.legend(loc="upper left", fontsize=9, ncol=2, framealpha=0.9)
    ax.grid(True, which="both", alpha=0.3)
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    for a in axs:
        a.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        a.xaxis.set_major_formatter(ScalarFormatter())
        a.xaxis.set_minor_formatter(NullFormatter())
    if axs[0].get_yscale() == "log":
        axs[0].yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0), numticks=12))  # fewer artists to draw
    # fixed margins instead of tight_layout (a layout pass costs as much as drawing the figure again)
    fig.subplots_adjust(left=0.11, right=0.97, top=0.93, bottom=0.06, hspace=0.08)
    save_figure(fig, path, dpi=110)
    return fig
