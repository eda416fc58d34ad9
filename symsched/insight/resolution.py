r"""The resolution law: how the optimal schedule shifts when the same scene has more pixels.

A scene with continuous spectrum :math:`A/|\kappa|^\alpha` (:math:`\kappa` in cycles per image),
sampled on a d x d pixel grid, has the per-pixel PSD :math:`S_d(f) = A\,d^{2-\alpha}|f|^{-\alpha}`
(f in cycles per pixel, ``symsched.spectra`` normalisation): at a fixed :math:`\kappa` the PSD
grows as :math:`d^2`, because a DFT coefficient sums :math:`d^2` coherent pixels while the noise adds
incoherently. That :math:`d^2` is simple diffusion's argument for shifting the log-SNR by
:math:`-2\log(d/d_0)`; it holds exactly for the coarsest bands. :func:`resolution_law` measures what
the optimal schedule does instead, for each divergence, next to the rules practitioners use:

* simple diffusion (and SD3's resolution-dependent :math:`\sqrt{m/n}` shift): :math:`-2\log(d/d_0)`;
* SD3's static ``shift = 3``: the same offset :math:`-2\log 3` at every resolution (0 relative);
* Flux: :math:`-2\mu(n)`, :math:`\mu` linear in the token count n (:func:`~symsched.insight.families.flux_mu`),
  with the base resolution identified with Flux's base (256 tokens, a 256 x 256 image).

Spectra at several resolutions come from a power law (:func:`scene_power_law`, or
:func:`fit_power_law` of a measured spectrum) or from photographs resized with scikit-image
(:func:`image_spectra`, anti-aliased ``skimage.transform.resize``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import spectra as _spectra
from .._validate import (
    MAX_IMAGES, MAX_MODES, ArgumentTypeError, _first, as_bool, as_choices, as_positive, as_positive_int, as_real_array,
    as_spectrum, as_step_counts, check_choice, check_entries, is_sequence, numpy_error_defaults,
)
from ..api import DIVERGENCES, FLOW_SAMPLERS
from .families import FLUX_DEFAULTS, flux_mu, simple_diffusion_log_snr_shift
from .sweep import SweepResult
from .._tex import tex_text

__all__ = [
    "scene_power_law",
    "PowerLawFit",
    "fit_power_law",
    "image_spectra",
    "source_images",
    "resolution_law",
    "ResolutionLaw",
    "SD3_STATIC_SHIFT",
]

Array = NDArray[np.float64]
#: SD3's default ``shift`` of ``FlowMatchEulerDiscreteScheduler`` (stable-diffusion-3-medium config).
SD3_STATIC_SHIFT = 3.0


def _resolutions(values: Any, name: str = "resolutions", minimum: int = 2) -> list[int]:
    """Distinct positive integers, ascending, from a sequence of at least ``minimum`` (0, 1 or 2; a law compares two)
    and at most MAX_ENTRIES of them. A string, a number or a mapping is a TypeError naming ``name`` ("32,64" is the
    command line's form, not a sequence)."""
    if not is_sequence(values) or isinstance(values, Mapping):
        raise ArgumentTypeError(f"{name} must be a sequence of positive integers, e.g. [32, 64] (got {values!r})")
    entries = check_entries(values, name)
    out = sorted(as_step_counts(entries, name)) if entries else []
    if len(out) < minimum:
        raise ValueError(f"{name} must not be empty" if minimum == 1 else
                         f"{name} must hold at least two resolutions (got {out})")
    return out


def _divergences(values: Any, name: str = "divergences") -> list[str]:
    """Distinct names of :data:`symsched.api.DIVERGENCES` from a non-empty sequence of at most MAX_ENTRIES (read no
    further); a string, a mapping or a set is a TypeError naming ``name``. One check for every ``divergences``."""
    return as_choices(values, name, DIVERGENCES)


@numpy_error_defaults
def scene_power_law(
    resolution: int, *, alpha: Union[float, Sequence[float]] = 2.0, c: Union[float, Sequence[float]] = 1.0,
    base_resolution: int = 32,
) -> Array:
    r"""PSD of a power-law scene on a d x d grid: :math:`S_d(f) = c\,(d/d_0)^{2-\alpha}\,|f|^{-\alpha}`.

    The scene's continuous spectrum is fixed; ``c`` is the amplitude at ``base_resolution`` d0
    (:func:`symsched.spectra.power_law` with ``c (d/d0)^(2-alpha)``; DC floored at the fundamental).
    For ``alpha = 2`` the amplitude does not change with d. Sequences of ``alpha`` and ``c`` (equal
    length C; a number with a sequence holds for every channel) give a colour spectrum of shape (d, d, C),
    one power law per eigen-channel.

    Returns
    -------
    ndarray, shape (d, d) or (d, d, C), float64

    Raises
    ------
    ValueError
        Non-positive resolution or amplitude, non-finite exponent, or mismatched lengths.

    Source: the module docstring (``S_d`` of a fixed scene); :func:`symsched.spectra.power_law`.
    """
    d = as_positive_int(resolution, "resolution")
    d0 = as_positive_int(base_resolution, "base_resolution")
    a = np.atleast_1d(as_real_array(alpha, "alpha"))
    cc = np.atleast_1d(as_real_array(c, "c"))
    if np.ndim(alpha) == 0 and cc.ndim == 1:  # a number with a sequence: the number for every channel
        a = np.full(cc.shape, a[0])
    if np.ndim(c) == 0 and a.ndim == 1:
        cc = np.full(a.shape, cc[0])
    if a.ndim != 1 or cc.ndim != 1 or a.size != cc.size:
        raise ValueError(f"alpha and c must be numbers or 1-D sequences of equal length (got {a.shape}, {cc.shape})")
    bad = ~np.isfinite(a)
    if np.any(bad):
        raise ValueError(f"alpha must be finite (got {float(a[bad][0])!r})")
    amps = [as_positive(ci, "c") for ci in cc]
    if a.size == 0:
        raise ValueError("alpha and c must be numbers or sequences of at least one entry (got empty sequences)")
    if d * d * a.size > MAX_MODES:  # the stack, before any channel is computed
        raise ValueError(f"resolution {d} with {a.size} channel(s) of alpha and c asks for {d}*{d}*{a.size} = "
                         f"{d * d * a.size} values, more than MAX_MODES = {MAX_MODES} (symsched._validate.MAX_MODES)")
    chans = [_scene_channel(d, d0, float(ai), ci) for ai, ci in zip(a, amps)]
    if np.ndim(alpha) == 0 and np.ndim(c) == 0:
        return chans[0]
    return np.stack(chans, axis=-1)


def _scene_channel(d: int, d0: int, alpha: float, c: float) -> Array:
    """One channel of :func:`scene_power_law`: the amplitude ``c (d/d0)^(2 - alpha)`` formed in logs, and a PSD
    float64 cannot hold refused naming both ``alpha`` and ``c`` (either may be the extreme one)."""
    log_amp = math.log(c) + (2.0 - alpha) * math.log(d / d0)
    try:
        amp = math.exp(log_amp) if log_amp < 710.0 else math.inf
        if not 0.0 < amp < math.inf:
            raise ValueError(f"the amplitude c (d/d0)^(2 - alpha) = e^{log_amp:.6g} is not a positive float64")
        return _spectra.power_law((d, d), alpha=alpha, c=amp)
    except ValueError as exc:
        raise ValueError(f"alpha and c (alpha = {alpha:g}, c = {c:g}, base_resolution = {d0}) give a PSD at "
                         f"resolution {d} that overflows or underflows float64: {exc}") from None


@dataclass
class PowerLawFit:
    """``S(f) ~ c |f|^-alpha`` per channel, fitted on a d0 x d0 grid (:func:`fit_power_law`).

    ``alpha``, ``c``: arrays of shape (C,) (C = 1 for a grey spectrum), the exponent and the amplitude at ``f = 1``
    cycle per sample; ``base_resolution``: d0; ``channels``: whether the spectrum had a colour axis (``at`` then
    returns (d, d, C)). Source: the module docstring (a fixed scene's ``S_d``); van der Schaaf & van Hateren 1996.
    """

    alpha: Array
    c: Array
    base_resolution: int
    channels: bool

    def at(self, resolution: int) -> Array:
        """The fitted scene at ``resolution`` (:func:`scene_power_law`)."""
        if self.channels:
            return scene_power_law(resolution, alpha=self.alpha.tolist(), c=self.c.tolist(),
                                   base_resolution=self.base_resolution)
        return scene_power_law(resolution, alpha=float(self.alpha[0]), c=float(self.c[0]),
                               base_resolution=self.base_resolution)

    def __str__(self) -> str:
        parts = ", ".join(f"alpha={a + 0.0:.3g}, c={c + 0.0:.3g}" for a, c in zip(self.alpha, self.c))  # (no "-0")
        return f"power law on {self.base_resolution}x{self.base_resolution}: {parts}"


@numpy_error_defaults
def fit_power_law(spectrum: ArrayLike) -> PowerLawFit:
    r"""Fit :math:`\log S = \log c - \alpha \log|f|` to the modes of an FFT-grid spectrum, per channel.

    Least squares (``numpy.polyfit``) over every mode with ``0 < |f| <= 1/2`` and ``S > 0`` (DC and
    the corners beyond Nyquist left out; :func:`symsched.spectra.fft_frequencies`), so an exact
    power law is recovered exactly.

    Parameters
    ----------
    spectrum : array_like, shape (d, d) or (d, d, C)
        Square FFT-grid PSD (C eigen-channels on the last axis).

    Returns
    -------
    PowerLawFit
        ``alpha``, ``c`` (arrays of length C, or 1), ``base_resolution = d``; ``.at(d)`` rebuilds.

    Raises
    ------
    ValueError
        Not a square 2-D grid (with optional channels), or a channel with fewer than two usable modes.

    Source: ``numpy.polyfit`` in log-log coordinates.
    """
    S = as_spectrum(spectrum)
    if S.ndim not in (2, 3) or S.shape[0] != S.shape[1] or S.shape[0] < 4:
        raise ValueError(f"spectrum must be a square FFT grid (d, d) or (d, d, C) with d >= 4 (got shape {S.shape})")
    chans = S[..., None] if S.ndim == 2 else S
    f = _spectra.fft_frequencies(S.shape[:2])
    keep = (f > 0) & (f <= 0.5)
    alphas, cs = [], []
    for ch in range(chans.shape[-1]):
        ok = keep & (chans[..., ch] > 0)
        if ok.sum() < 2:
            raise ValueError(f"spectrum channel {ch} has fewer than two positive modes: cannot fit a power law")
        slope, icpt = np.polyfit(np.log(f[ok]), np.log(chans[..., ch][ok]), 1)
        alphas.append(-slope)
        cs.append(math.exp(icpt))
    return PowerLawFit(alpha=np.array(alphas), c=np.array(cs), base_resolution=int(S.shape[0]), channels=S.ndim == 3)


def _square(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    return img[top : top + m, left : left + m]


def source_images(source: Union[str, "os.PathLike[str]"]) -> list[np.ndarray]:
    """RGB images in [-1, 1] (H, W, 3) from ``"builtin:natural-patches"`` (the scikit-image photographs) or a folder.

    Folders: every PNG/JPEG, 8-bit, as :func:`symsched.spectra.load_spectrum` reads them, at most ``MAX_IMAGES`` =
    10,000 of them. ValueError for anything else (a ``.npy`` spectrum has no images) or a larger folder; TypeError
    for a ``source`` that is not a string or path. Returns a list of float64 arrays (H, W, 3), one per image.
    Source: ``skimage.data`` (the built-in photographs); :func:`symsched.spectra.load_spectrum`'s image reader.
    """
    if isinstance(source, str) and source.startswith("builtin:"):
        check_choice(source[len("builtin:"):], "source builtin name", _spectra.BUILTIN_SPECTRA)
        return [_spectra._to_signed_unit(img, f"skimage.data.{n}") for n, img in _spectra._natural_images()]
    if not isinstance(source, (str, bytes, os.PathLike)):
        raise ArgumentTypeError(f"source must be 'builtin:natural-patches' or a folder of images (got {source!r})")
    path = Path(os.fsdecode(source))
    if not path.is_dir():
        raise ValueError(f"source must be 'builtin:natural-patches' or a folder of images (got {str(source)!r})")
    files = _spectra._iter_image_files(path)
    if len(files) > MAX_IMAGES:  # refused before any is read
        raise ValueError(f"source must hold at most MAX_IMAGES = {MAX_IMAGES} images (symsched._validate.MAX_IMAGES; "
                         f"{str(source)!r} holds {len(files)}): every image is held in memory and resized at every "
                         "resolution; pass a subset")
    return [_spectra._to_signed_unit(_spectra.read_image(f, "RGB"), str(f)) for f in files]


@numpy_error_defaults
def image_spectra(images: Sequence[ArrayLike], resolutions: Iterable[int]) -> dict[int, Array]:
    r"""Colour eigen-mode PSD of whole images resized to d x d, for every d: ``{d: (d, d, C)}``.

    Each image (H, W, C) is centre-cropped to a square and resized with scikit-image's
    ``transform.resize(..., anti_aliasing=True)`` (a Gaussian pre-filter against aliasing when
    shrinking); the spectrum is :func:`symsched.spectra.colour_eigen_psd` of the resized set (mean
    removed over the set). Images smaller than d are refused: enlarging invents no detail.

    Per d: ``S_d[k] = eig(mean_n X_n[k] X_n[k]^H) / d^2``, ``X_n = fft2(resize(crop(image_n), d) - mean)``.
    Shapes: ``images`` a sequence of (H, W) or (H, W, C) arrays; the result maps each d to a (d, d, C) per-pixel
    PSD on the FFT grid (cycles per pixel). Source: docs/model.md §1; ``skimage.transform.resize``.

    Raises
    ------
    ValueError
        No images or more than ``MAX_IMAGES`` = 10,000 of them (an endless iterable is not read further),
        an image holding NaN or inf (naming it and the entry, before any resizing), inconsistent channels, or a
        resolution above the smallest crop; ``resolutions`` not at least two
        (at most MAX_ENTRIES) distinct positive integers.
    TypeError
        ``resolutions`` a string, a number or a mapping rather than a sequence; ``images`` not a sequence.
    """
    from skimage.transform import resize

    ds = _resolutions(resolutions)
    if not is_sequence(images):
        raise TypeError(f"images must be a sequence of (H, W) or (H, W, C) arrays (got {type(images).__name__}); "
                        "a folder or 'builtin:natural-patches' goes through source_images first")
    imgs = [as_real_array(im, "images entries") for im in
            check_entries(images, "images", limit=MAX_IMAGES, limit_name="MAX_IMAGES",
                          why="every image is held in memory and resized at every resolution")]
    if not imgs:
        raise ValueError("images must not be empty")
    for i, im in enumerate(imgs):  # before resizing: skimage warns on NaN, and a NaN image has no spectrum
        if not np.all(np.isfinite(im)):
            raise ValueError(f"images[{i}] must be finite (got {_first(im, ~np.isfinite(im), f'images[{i}]')})")
    imgs = [im[..., None] if im.ndim == 2 else im for im in imgs]
    if any(im.ndim != 3 for im in imgs) or len({im.shape[-1] for im in imgs}) != 1:
        raise ValueError("images must all be (H, W) or (H, W, C) with the same C")
    crops = [_square(im) for im in imgs]
    smallest = min(c.shape[0] for c in crops)
    if ds[-1] > smallest:
        raise ValueError(f"resolutions must not exceed the smallest square crop ({smallest} pixels; got {ds[-1]})")
    out = {}
    for d in ds:
        batch = np.stack([resize(c, (d, d), anti_aliasing=True, mode="reflect") for c in crops])
        out[d] = _spectra.colour_eigen_psd(batch, mean="dataset")
    return out


# ---------------------------------------------------------------------------------------------
# the law
# ---------------------------------------------------------------------------------------------


def _pm(x: float) -> str:
    """A signed table number to two decimals, without a "-0.00" (the reference row's -0.0, or a rounded -0.001); from
    1e6 on in exponent notation (to_latex prints it as a paper does), not hundreds of digits."""
    if abs(x) >= 1e6:
        return f"{x:+.4g}"
    s = f"{x:+.2f}"
    return "+0.00" if s == "-0.00" else s


def _count(x: float) -> str:
    """A token count: an integer below 1e7, exponent notation above."""
    return f"{x:.0f}" if x < 1e7 else f"{x:.4g}"


def _slope_per_doubling(d: Array, d0: float, y: Array) -> float:
    """Least-squares slope of y against log2(d/d0) through the origin (y(d0) = 0)."""
    x = np.log2(d / d0)
    den = float(x @ x)
    return float(x @ y) / den if den > 0 else math.nan


@dataclass
class ResolutionLaw:
    """Optimal log-SNR offsets against resolution, and the practitioners' rules (:func:`resolution_law`).

    Attributes
    ----------
    resolutions : list of int
        d (pixels per side), ascending; ``base`` is the first.
    sweeps : dict[str, SweepResult]
        The optimal schedules per divergence (parameter ``"resolution"``).
    offset, offset_first, offset_last : dict[str, ndarray]
        Per divergence, per resolution: the optimum's log-SNR minus the base optimum's, averaged over
        the levels (the least-squares constant shift between the two schedules), and at the first
        (noisiest) and last level. A first level pinned at alpha_bar = 0 (log-SNR -inf: flow matching,
        zero terminal SNR) is the same at every resolution and is left out; "first" is then the first
        finite level.
    slope : dict[str, float]
        Least-squares slope of ``offset`` per doubling of d (through 0 at the base).
    rules : dict[str, ndarray]
        The rules' log-SNR offsets relative to the base: ``"simple diffusion"`` (= SD3 sqrt(m/n)),
        ``"SD3 static shift"`` (0: the same ``-2 log 3`` everywhere) and ``"Flux mu"``.
    flux_tokens : ndarray
        The token counts the Flux rule was evaluated at (``flux_base_tokens (d/d0)^2``).
    undetermined : dict[str, list of bool]
        Per divergence, per resolution: whether the data do not determine the optimum there: a free end at the
        search's log-SNR bound (:attr:`symsched.OptimizeResult.at_bound`), an objective so flat that every
        standard schedule scores the same, or an optimum matching the data to rounding (white data: any levels
        near the clean end do). Offsets involving such an
        optimum (every offset, when it is the base's) measure the search, not a shift; tables mark them "‡".
        :meth:`monotone` tells whether the mean offset moves one way with resolution (tables mark a slope through
        offsets that do not "§").
    Source: :func:`symsched.resolution_law`; the rules: Hoogeboom et al. 2023 (simple diffusion), Esser et al.
    2024 (SD3), diffusers ``pipelines/flux/pipeline_flux.py`` ``calculate_shift`` (Flux).
    """

    resolutions: list[int]
    steps: int
    sweeps: dict[str, SweepResult]
    offset: dict[str, Array]
    offset_first: dict[str, Array]
    offset_last: dict[str, Array]
    slope: dict[str, float]
    rules: dict[str, Array]
    flux_tokens: Array
    source: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    undetermined: dict[str, list[bool]] = field(default_factory=dict)

    @property
    def base(self) -> int:
        return self.resolutions[0]

    def _divergence(self, divergence: Any) -> str:
        """``divergence`` if this law has it (ValueError naming ``divergence`` and the choices; TypeError for a
        non-string)."""
        return check_choice(divergence, "divergence", self.offset)

    def undetermined_offsets(self, divergence: str) -> list[bool]:
        """Per resolution: whether its offset for ``divergence`` involves an optimum the data do not determine (its
        own or the base's; see :attr:`undetermined`)."""
        hits = self.undetermined.get(self._divergence(divergence), [False] * len(self.resolutions))
        return [bool(h or hits[0]) for h in hits]

    def monotone(self, divergence: str) -> bool:
        """Whether the mean offset of ``divergence`` moves one way with resolution: False when it both rises and
        falls between neighbouring resolutions by more than :data:`NO_SHIFT_FRACTION` of what simple diffusion's
        rule moves there (then no slope per doubling summarises it; tables mark the slope "§")."""
        y = self.offset[self._divergence(divergence)]
        rule = np.abs(np.diff(self.rules["simple diffusion"]))
        steps = np.diff(y)
        return not (np.any(steps > NO_SHIFT_FRACTION * rule) and np.any(steps < -NO_SHIFT_FRACTION * rule))

    def first_level_pinned(self, divergence: str) -> bool:
        """Whether the optimum's first level is alpha_bar = 0 (log-SNR -inf: flow matching, zero terminal SNR) at
        every resolution: the offsets' "first" level is then the first level after pure noise."""
        return bool(np.isneginf(self.sweeps[self._divergence(divergence)].log_snr(self.steps)[:, 0]).all())

    def first_level_name(self, divergence: str) -> str:
        """"first level after pure noise" or "noisiest level" (:meth:`first_level_pinned`)."""
        return "first level after pure noise" if self.first_level_pinned(divergence) else "noisiest level"

    def rule_slope(self, rule: str) -> float:
        """Per-doubling slope of a rule over the same resolutions."""
        rule = check_choice(rule, "rule", self.rules)
        return _slope_per_doubling(np.array(self.resolutions, float), self.base, self.rules[rule])

    def equivalent_shift(self, divergence: str) -> Array:
        """The SD3-style shift factor of the optimum's mean offset: ``s = exp(-offset / 2)``."""
        return np.exp(-0.5 * self.offset[self._divergence(divergence)])

    def _rows(self) -> tuple[list[str], list[list[str]]]:
        divs = list(self.offset)
        header = ["d", "Flux tokens"]
        for dv in divs:
            name = dv.upper() if dv != "kl-reverse" else "rev. KL"
            header += [f"{name}: mean Δℓ", f"{name}: first / last Δℓ", f"{name}: shift s"]
        header += ["simple diffusion −2 log(d/d₀)", "Flux −2Δμ", "SD3 static (shift 3)"]
        n1 = FLUX_DEFAULTS["max_seq_len"]
        rows = []
        for i, d in enumerate(self.resolutions):
            row = [str(d), _count(float(self.flux_tokens[i]))]
            for dv in divs:
                mark = "‡" if self.undetermined_offsets(dv)[i] else ""
                row += [_pm(self.offset[dv][i]) + mark,
                        f"{_pm(self.offset_first[dv][i])} / {_pm(self.offset_last[dv][i])}{mark}",
                        f"{math.exp(-0.5 * self.offset[dv][i]):.2f}{mark}"]
            dag = "†" if self.flux_tokens[i] > n1 else ""
            row += [_pm(self.rules["simple diffusion"][i]), _pm(self.rules["Flux mu"][i]) + dag,
                    _pm(self.rules["SD3 static shift"][i])]
            rows.append(row)
        row = ["per doubling", ""]
        d = np.array(self.resolutions, float)
        for dv in divs:
            mark = "‡" if any(self.undetermined_offsets(dv)) else "" if self.monotone(dv) else "§"
            row += [_pm(self.slope[dv]) + mark,
                    f"{_pm(_slope_per_doubling(d, self.base, self.offset_first[dv]))} / "
                    f"{_pm(_slope_per_doubling(d, self.base, self.offset_last[dv]))}{mark}",
                    f"×{math.exp(-0.5 * self.slope[dv]):.2f}{mark}"]
        row += [_pm(self.rule_slope("simple diffusion")), _pm(self.rule_slope("Flux mu")),
                _pm(self.rule_slope("SD3 static shift"))]
        rows.append(row)
        return header, rows

    def to_markdown(self) -> str:
        """Markdown table: one row per resolution and a last row of slopes per doubling (Δℓ: log-SNR offset vs the base)."""
        from .._markdown import md_table

        header, rows = self._rows()
        return md_table(header, rows[:-1] + [[f"**{c}**" if c else c for c in rows[-1]]], "---:")

    def to_latex(self) -> str:
        """booktabs ``tabular`` of the same table."""
        header, rows = self._rows()

        lines = [r"\begin{tabular}{" + "r" * len(header) + "}", r"\toprule",
                 " & ".join(tex_text(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(tex_text(c) for c in r) + r" \\" for r in rows[:-1]]
        lines += [r"\midrule", " & ".join(tex_text(c) for c in rows[-1]) + r" \\", r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready dict (:func:`symsched._io.json_ready`) of the offsets, slopes, rules and the optimal schedules."""
        from .._io import json_ready
        from .sweep import settings_record

        d = np.array(self.resolutions, float)
        return json_ready({
            "resolutions": self.resolutions, "steps": self.steps, "source": self.source,
            "settings": settings_record(self.settings),
            "offset": {k: v.tolist() for k, v in self.offset.items()},
            "offset_first": {k: v.tolist() for k, v in self.offset_first.items()},
            "offset_last": {k: v.tolist() for k, v in self.offset_last.items()},
            "slope_per_doubling": dict(self.slope),
            "slope_first_per_doubling": {k: _slope_per_doubling(d, self.base, v) for k, v in self.offset_first.items()},
            "rules": {k: v.tolist() for k, v in self.rules.items()},
            "rule_slope_per_doubling": {k: self.rule_slope(k) for k in self.rules},
            "flux_tokens": self.flux_tokens.tolist(),
            "log_snr": {dv: self.sweeps[dv].log_snr(self.steps).tolist() for dv in self.sweeps},
            "undetermined": {dv: list(v) for dv, v in self.undetermined.items()},
            "monotone": {dv: self.monotone(dv) for dv in self.offset},
        })

    def findings(self) -> list[str]:
        """Plain sentences: where the optimum agrees with the rules and where it does not (from the numbers)."""
        d = np.array(self.resolutions, float)
        rule = self.rule_slope("simple diffusion")
        out = []
        for dv, s in self.slope.items():
            first = _slope_per_doubling(d, self.base, self.offset_first[dv])
            last = _slope_per_doubling(d, self.base, self.offset_last[dv])
            ratio = s / rule if rule else math.nan
            name = {"kl": "KL", "w2": "W2", "kl-reverse": "reverse KL"}[dv]
            hits = [d for d, h in zip(self.resolutions, self.undetermined.get(dv, [])) if h]
            if hits:
                out.append(self._bound_sentence(name, hits))
                continue
            if not self.monotone(dv):  # (break-test of 7 December: 0, -1.02, -0.61 read "-0.45 per doubling")
                moves = ", ".join(f"{_pm(v)} at d = {r}" for v, r in zip(self.offset[dv], self.resolutions))
                out.append(f"{name}: no steady shift: the optimum's mean offset is not monotone in resolution "
                           f"({moves}), so its least-squares slope, {_pm(s)} per doubling (marked §), does not "
                           f"summarise it.")
                continue
            way = _direction(s, rule)
            if way == "opposite":  # a percentage below zero hid a change of direction (audit of 5 December)
                versus = f"the opposite direction to simple diffusion's {_pm(rule)}"
            elif way == "none":  # (audit of 6 December: +0.01 read "opposite" here and "almost no shift" in explain)
                versus = f"almost no shift against simple diffusion's {_pm(rule)}"
            else:
                versus = f"{100 * ratio:.0f} % of simple diffusion's {_pm(rule)}"
            out.append(
                f"{name}: the optimum moves {_pm(s)} log-SNR per doubling on average ({versus}); its "
                f"{self.first_level_name(dv)} moves {_pm(first)}, its last level {_pm(last)}."
            )
        return out

    def _bound_sentence(self, name: str, hits: list[int]) -> str:
        where = ", ".join(f"d = {d}" for d in hits)
        return (f"{name}: no shift is identified: the data do not determine the optimum at {where} (a free end at the "
                f"search's log-SNR bound, a flat objective, or a match to rounding: e.g. white noise already matches the "
                f"data), so the offsets marked ‡ measure the search, not the data; fix endpoints or drop those "
                f"resolutions to compare.")

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def plot(self, *, title: Optional[str] = None, path: Any = None) -> Any:
        """Offsets vs resolution next to the rules, and the optimal schedules; see :func:`~symsched.insight.plot_resolution_law`."""
        from .plots import plot_resolution_law

        return plot_resolution_law(self, title=title, path=path)


@dataclass
class _LawPlan:
    """A validated resolution law: its optimisation tasks and how to assemble their results."""

    ds: list[int]
    table: dict[int, Array]
    steps: int
    divergences: list[str]
    kw: dict[str, Any]
    flux_base_tokens: float
    source: str

    def tasks(self) -> list[tuple[Array, int, dict[str, Any]]]:
        return [(self.table[d], self.steps, dict(self.kw, divergence=dv)) for dv in self.divergences for d in self.ds]

    def finish(self, results: Sequence[Any]) -> "ResolutionLaw":
        K, n = self.steps, len(self.ds)
        d = np.array(self.ds, dtype=np.float64)
        sweeps: dict[str, SweepResult] = {}
        offset, first, last, slope = {}, {}, {}, {}
        for i, dv in enumerate(self.divergences):
            res = {(j, K): results[i * n + j] for j in range(n)}
            sweeps[dv] = SweepResult(parameter="resolution", values=list(self.ds), steps=[K], results=res,
                                     spectra=[self.table[x] for x in self.ds], settings=dict(self.kw, divergence=dv))
            L = sweeps[dv].log_snr(K)
            free = np.all(np.isfinite(L), axis=0)  # a first level pinned at alpha_bar = 0 (log-SNR -inf) has no offset
            diff = L[:, free] - L[0, free]
            offset[dv], first[dv], last[dv] = diff.mean(axis=1), diff[:, 0], diff[:, -1]
            slope[dv] = _slope_per_doubling(d, d[0], offset[dv])
        tokens, mu = _flux_rule(self.flux_base_tokens, d)
        rules = {
            "simple diffusion": simple_diffusion_log_snr_shift(d, d[0]),
            "SD3 static shift": np.zeros(d.size),
            "Flux mu": -2.0 * (mu - mu[0]),
        }
        undetermined = {dv: [_undetermined(results[i * n + j], self.table[x]) for j, x in enumerate(self.ds)]
                        for i, dv in enumerate(self.divergences)}
        return ResolutionLaw(resolutions=list(self.ds), steps=K, sweeps=sweeps, offset=offset, offset_first=first,
                             offset_last=last, slope=slope, rules=rules, flux_tokens=tokens, source=self.source,
                             settings=dict(self.kw), undetermined=undetermined)


#: every standard schedule within this relative spread of the optimum: a flat objective
FLAT_SPREAD = 1e-6
#: an optimum below this per mode (in the divergence's unit: 1 for KL, the mean mode variance for W2) matches the data
#: to the engine's accuracy: both divergences are quadratic in the mismatch delta = P/S - 1 (KL ~ delta^2/4, W2 ~
#: S delta^2/4), and a trusted output spectrum is within 1e-9 relative of the exact one, so (1e-9)^2/4 per mode is
#: the rounding of P itself: the search cannot tell schedules apart there, and a continuum of them does as well (white
#: data: any levels near the clean end). An accurate sampler's genuine optimum (dpmpp_2m, K = 25, on a 16 x 16 power
#: law: KL 2.3e-16 per mode) stays above it. (It was 100 ulps while KL's ratio form lost its digits near P = S.)
ROUNDING_PER_MODE = (1e-9) ** 2 / 4


def _undetermined(res: Any, S: Array) -> bool:
    """Whether the data leave ``res``'s optimum undetermined: a free end at the search's bound, a flat objective
    (the optimum and every finite standard schedule within :data:`FLAT_SPREAD` relative), or an optimum that
    matches the data to rounding (:data:`ROUNDING_PER_MODE`)."""
    if any(res.at_bound):
        return True
    vals = np.array([res.value] + [v for v in res.baselines.values() if math.isfinite(v)])
    unit = float(np.mean(S)) if res.divergence == "w2" else 1.0
    return bool(np.ptp(vals) <= FLAT_SPREAD * float(np.max(np.abs(vals)))
                or abs(res.value) <= ROUNDING_PER_MODE * S.size * unit)


#: a mean shift per doubling below this fraction of the rule's size is "almost no shift" (either sign)
NO_SHIFT_FRACTION = 0.1


def _direction(slope: float, rule: float) -> str:
    """``"none"`` (below :data:`NO_SHIFT_FRACTION` of the rule's size), ``"same"`` or ``"opposite"``: how a
    measured shift per doubling goes against the rule's; the one reading of :meth:`ResolutionLaw.findings` and of
    ``symsched explain``'s verdict."""
    if not rule or not abs(slope) >= NO_SHIFT_FRACTION * abs(rule):
        return "none"
    return "same" if slope * rule > 0 else "opposite"


def _plan(
    spectra: Any, resolutions: Optional[Iterable[int]], steps: int, divergences: Sequence[str], endpoints: Any,
    flux_base_tokens: float, source: str, optimize_kw: dict[str, Any],
) -> _LawPlan:
    from .sweep import _check_kw

    if not isinstance(source, str):  # (a label: resolution_law(source=5) was kept as 5 and printed)
        raise ArgumentTypeError(f"source must be a string (a label for the tables; got {type(source).__name__})")
    if callable(spectra) and not isinstance(spectra, Mapping):
        if resolutions is None:
            raise ValueError("resolutions must be given when spectra is a function of the resolution")
        ds = _resolutions(resolutions)
        raw = {d: spectra(d) for d in ds}
    elif isinstance(spectra, Mapping):
        ds = _resolutions(spectra.keys() if resolutions is None else resolutions)
        missing = [d for d in ds if d not in spectra]
        if missing:
            raise ValueError(f"spectra has no entry for resolutions {missing}")
        raw = {d: spectra[d] for d in ds}
    else:
        raise TypeError(f"spectra must be a mapping d -> spectrum or a function of d (got {type(spectra).__name__})")
    made = callable(spectra) and not isinstance(spectra, Mapping)
    table = {}
    for d in ds:
        what = f"spectra({d}) (the callable's output for resolution {d})" if made else f"spectra[{d}]"
        table[d] = as_spectrum(raw[d], what)
        if table[d].ndim not in (2, 3) or table[d].shape[:2] != (d, d):  # a spectrum of another grid: a wrong law
            raise ValueError(f"{what} must be the (d, d) or (d, d, C) FFT-grid spectrum of resolution d = {d}, "
                             f"i.e. of leading shape ({d}, {d}) (got shape {table[d].shape})")
    divs = _divergences(divergences)
    K = as_positive_int(steps, "steps")
    if K < 2:
        raise ValueError("steps must be at least 2 for a resolution law")
    if "divergence" in optimize_kw:
        raise TypeError("resolution_law takes divergences=, not divergence=")
    kw = _check_kw(dict(optimize_kw, endpoints=endpoints), "resolution_law")
    tokens = as_positive(flux_base_tokens, "flux_base_tokens")
    _flux_rule(tokens, np.array(ds, dtype=np.float64))  # before any work
    return _LawPlan(ds=ds, table=table, steps=K, divergences=divs, kw=kw, flux_base_tokens=tokens, source=str(source))


def _flux_rule(base_tokens: float, d: Array) -> tuple[Array, Array]:
    """Flux's token counts ``base_tokens (d/d0)^2`` at resolutions ``d`` (``d[0]`` the base) and its ``mu`` there;
    ValueError naming ``flux_base_tokens`` where they leave float64."""
    with np.errstate(over="ignore"):
        tokens = base_tokens * (d / d[0]) ** 2
    if np.all(np.isfinite(tokens)):
        try:
            return tokens, flux_mu(tokens)
        except ValueError:  # a mu beyond float64
            pass
    raise ValueError(f"flux_base_tokens {base_tokens:g} times (d/d0)^2 = {float(np.max(d / d[0])) ** 2:g} at the "
                     "largest resolution gives Flux a token count or mu beyond float64; pass a smaller "
                     "flux_base_tokens")


@numpy_error_defaults
def resolution_law(
    spectra: Union[Mapping[int, ArrayLike], Callable[[int], ArrayLike]],
    resolutions: Optional[Iterable[int]] = None,
    *,
    steps: int = 10,
    divergences: Sequence[str] = ("kl", "w2"),
    endpoints: Any = None,
    flux_base_tokens: float = FLUX_DEFAULTS["base_seq_len"],
    n_jobs: Optional[int] = -1,
    backend: Optional[str] = None,
    progress: bool = False,
    source: str = "",
    **optimize_kw: Any,
) -> ResolutionLaw:
    r"""Optimal log-SNR offset against resolution, :math:`\Delta\ell(d) = \overline{\ell^*_d - \ell^*_{d_0}}`, with the rules.

    Parameters
    ----------
    spectra : mapping d -> spectrum, or callable d -> spectrum
        The same scene at each resolution, each an FFT-grid spectrum of shape (d, d) or (d, d, C), e.g. ``lambda d:
        scene_power_law(d, alpha=2)``,
        ``fit_power_law(S).at`` or :func:`image_spectra`.
    resolutions : iterable of int, optional
        Pixels per side (at least two; required with a callable). The smallest is the base d0.
    steps : int
        K of the optimised schedules.
    divergences : sequence of {"kl", "kl-reverse", "w2"}
        Each named once (each is a run of every resolution).
    endpoints : pair, optional
        Passed to :func:`symsched.optimize_schedule`. Default ``(None, None)``, free: a first level pinned at the
        training grid's noisiest level would hide the shift at the noisy end, where the rules act; for a
        flow-matching ``sampler`` (:data:`symsched.FLOW_SAMPLERS`) ``(0.0, None)``: it samples from pure noise,
        t = 1, as ``optimize_schedule``, ``sweep`` and ``explain`` start it.
    flux_base_tokens : float
        Flux token count identified with the base resolution (default 256, Flux's base: a 256 x 256
        image); the rule is evaluated at ``flux_base_tokens (d/d0)^2`` tokens.
    n_jobs, backend, progress
        As :func:`~symsched.insight.sweep`.
    source : str
        A label for the tables.
    **optimize_kw
        Further :func:`symsched.optimize_schedule` arguments (``sampler``, ``restarts``, ``seed``, ...).

    Returns
    -------
    ResolutionLaw

    Raises
    ------
    ValueError
        Fewer than two (or more than MAX_ENTRIES, or repeated) resolutions, bad spectra (the spectrum of resolution
        d, from the mapping or the callable, must be (d, d) or (d, d, C): another shape names ``spectra[d]`` or
        ``spectra(d)`` and d), divergences or optimiser arguments.
    TypeError
        ``resolutions`` a string, a number or a mapping rather than a sequence.

    Source: docs/model.md §8 (the optima), §10 (the rules); simple diffusion (arXiv 2301.11093), SD3
    (arXiv 2403.03206), diffusers ``calculate_shift`` (Flux).
    """
    from .sweep import check_backend, check_n_jobs, run_optimizations

    n_jobs = check_n_jobs(n_jobs)
    backend = check_backend(backend)
    if endpoints is None:  # (break-test 7 December: a flow sampler's law started at a finite level, unlike the rest)
        flow = isinstance(optimize_kw.get("sampler"), str) and optimize_kw["sampler"] in FLOW_SAMPLERS
        endpoints = (0.0, None) if flow else (None, None)
    plan = _plan(spectra, resolutions, steps, divergences, endpoints, flux_base_tokens, source, optimize_kw)
    tasks = plan.tasks()
    bar = None
    if as_bool(progress, "progress"):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc="resolution law", unit="schedule")
    try:
        results = run_optimizations(tasks, n_jobs=n_jobs, backend=backend, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    return plan.finish(results)
