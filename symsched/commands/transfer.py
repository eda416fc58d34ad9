"""``symsched transfer``: output PSD of a sampler for a spectrum and a schedule, with KL and W2."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from .._io import output_file
from . import _settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "transfer",
        help="output PSD of a sampler; prints KL and W2 to the data spectrum",
        description="Evaluate the closed-form output power spectrum of a sampler (DDIM, DDPM, diffusers' multistep "
        "and flow-matching schedulers, k-diffusion's samplers) driven by the exact denoiser, on alpha_bar levels "
        "or k-diffusion sigmas, print KL(data||generated), KL(generated||data) and W2, and optionally write the "
        "output PSD as .npy.",
    )
    from ..symbolic.samplers import FLOW_SAMPLERS, VE_SAMPLERS, VP_SAMPLERS

    p.add_argument("--spectrum", required=True,
                   help="FILE.npy (mode variances S >= 0), a folder of PNG/JPEG images, or builtin:natural-patches")
    levels = p.add_mutually_exclusive_group(required=True)
    levels.add_argument("--alpha-bar", type=Path, help=".npy 1-D levels in [0,1), noisiest first")
    levels.add_argument("--sigmas", type=Path, help=".npy 1-D k-diffusion sigmas, decreasing (trailing 0 optional; "
                        "inf first: pure noise)")
    p.add_argument("--sampler", default=None, choices=list(VP_SAMPLERS + VE_SAMPLERS + FLOW_SAMPLERS),
                   help="sampler (default ddim with --alpha-bar, euler with --sigmas; its library defaults unless "
                   "--eta/--option say otherwise; --variance applies to ddpm)")
    _settings.add_variance(p)
    _settings.add_arguments(p)
    _settings.add_init(p)
    p.add_argument("--out", default=None, type=output_file("psd.npy"), help="write the output PSD here (.npy)")
    p.set_defaults(func=run)


def _model_steps(x: Any, coord: str, sampler: str, settings: dict[str, Any]) -> int:
    """The sampler's steps on levels ``x`` (model calls at distinct levels): K, or K - 1 for a sampler whose last step
    stops at the last level (DEIS, ``final_sigmas_type="sigma_min"``), read off its program as intermediate_spectra
    reads its rows (break-test of 7 December: ``steps 10`` was printed for DEIS's 9)."""
    from ..api import _setup
    from ..engine.program import build_program
    from ..insight.intermediate import _arrivals

    name, options, params = _setup(sampler, dict(settings))
    return len(_arrivals(name, build_program(name, options, params, x, coord))[1])


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import output_spectrum, output_spectrum_ve
    from .._io import check_suffix, load_npy, save_npy
    from ..api import _schedule_divergences, _ve_levels, _vp_levels
    from ..spectra import load_spectrum

    if args.out is not None:
        check_suffix(args.out, "--out", ".npy")
    if args.sampler is None:
        args.sampler = "euler" if args.sigmas is not None else "ddim"
    if args.sampler != "ddpm" and args.variance != "posterior":
        raise ValueError(f"--variance applies only to --sampler ddpm (got --sampler {args.sampler})")
    kw = _settings.settings(args, args.variance)
    S = load_spectrum(args.spectrum)
    if args.sigmas is not None:
        levels = load_npy(args.sigmas, "--sigmas")
        P = output_spectrum_ve(S, levels, sampler=args.sampler, variance=args.variance, init=args.init, **kw)
        x, coord = _ve_levels(levels), "sigma"
    else:
        levels = load_npy(args.alpha_bar, "--alpha-bar")
        P = output_spectrum(S, levels, sampler=args.sampler, variance=args.variance, init=args.init, **kw)
        x, coord = _vp_levels(levels), "alpha_bar"
    settings = {"variance": args.variance, **kw}
    steps = _model_steps(x, coord, args.sampler, settings)
    S = np.asarray(S, dtype=np.float64)
    # the divergences in the ratio form (as divergence_and_grad): exact where P underflows (a KL of P alone is inf)
    d = _schedule_divergences(S, x, coord, args.sampler, args.init, settings, lambda: P)
    if args.out is not None:  # before printing: a stdout that fails costs no file
        save_npy(args.out, P)
    print(f"sampler {args.sampler}  steps {steps}  modes {S.size}  init {args.init}")
    print(f"KL(data || generated) = {d['kl']:.10g}")
    print(f"KL(generated || data) = {d['kl-reverse']:.10g}")
    print(f"W2                    = {d['w2']:.10g}")
    print(f"total power: data {_total(S)}, generated {_total(P)}")
    if args.out is not None:
        print(f"wrote output PSD to {args.out}")
    return 0


def _total(x: Any) -> str:
    """``sum(x)`` to 10 digits, also beyond float64 (4 modes of 1e308 total 4e+308, not inf): summed at a power-of-two
    scale (:mod:`symsched._pow2`), the power put back by mpmath where float64 cannot hold the total."""
    import numpy as np

    from .._pow2 import pow2_scaled, times_pow2

    scaled, k = pow2_scaled(x)
    total = float(np.sum(scaled))
    with np.errstate(over="ignore", under="ignore"):
        value = float(times_pow2(total, k))
    if math.isfinite(value) and (value >= np.finfo(np.float64).tiny or total == 0.0):
        return f"{value:.10g}"
    import mpmath

    return mpmath.nstr(mpmath.ldexp(mpmath.mpf(total), k), 10)
