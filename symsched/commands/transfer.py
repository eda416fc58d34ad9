"""``symsched transfer``: output PSD of a sampler for a spectrum and a schedule, with KL and W2."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._io import file_path
from . import _settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "transfer",
        help="output PSD of a sampler; prints KL and W2 to the data spectrum",
        description="Evaluate the closed-form output power spectrum of a sampler on alpha_bar levels (DDIM, DDPM, "
        "diffusers' multistep and flow-matching schedulers) driven by the exact denoiser, print "
        "KL(data||generated), KL(generated||data) and W2, and optionally write the output PSD as .npy.",
    )
    from ..symbolic.samplers import FLOW_SAMPLERS, VP_SAMPLERS

    p.add_argument("--spectrum", required=True,
                   help="FILE.npy (mode variances S >= 0), a folder of PNG/JPEG images, or builtin:natural-patches")
    p.add_argument("--alpha-bar", required=True, type=Path, help=".npy 1-D levels in [0,1), noisiest first")
    p.add_argument("--sampler", default="ddim", choices=list(VP_SAMPLERS + FLOW_SAMPLERS),
                   help="sampler on alpha_bar levels (default ddim; its library defaults unless --eta/--option say "
                   "otherwise; --variance applies to ddpm)")
    p.add_argument("--variance", default="posterior", choices=["posterior", "beta"], help="DDPM variance")
    _settings.add_arguments(p)
    p.add_argument("--init", default="white", choices=["white", "exact"])
    p.add_argument("--out", default=None, type=file_path, help="write the output PSD here (.npy)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import kl_divergence, output_spectrum, w2_distance
    from .._io import load_npy, save_npy

    from ..spectra import load_spectrum

    if args.sampler != "ddpm" and args.variance != "posterior":
        raise ValueError(f"--variance applies only to --sampler ddpm (got --sampler {args.sampler})")
    kw = _settings.settings(args, args.variance)
    S = load_spectrum(args.spectrum)
    ab = load_npy(args.alpha_bar, "--alpha-bar")
    P = output_spectrum(S, ab, sampler=args.sampler, variance=args.variance, init=args.init, **kw)
    S = np.asarray(S, dtype=np.float64)
    print(f"sampler {args.sampler}  steps {np.size(ab)}  modes {S.size}  init {args.init}")
    print(f"KL(data || generated) = {kl_divergence(S, P):.10g}")
    print(f"KL(generated || data) = {kl_divergence(P, S):.10g}")
    print(f"W2                    = {w2_distance(P, S):.10g}")
    with np.errstate(over="ignore"):  # a total beyond float64 prints as inf (it is), without a NumPy warning
        print(f"total power: data {S.sum():.10g}, generated {P.sum():.10g}")
    if args.out is not None:
        save_npy(args.out, P)
        print(f"wrote output PSD to {args.out}")
    return 0
