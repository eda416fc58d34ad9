"""``symsched sde-table``: W2 errors of the continuous-time VP schemes as Markdown and LaTeX."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._io import output_file
from . import _settings
from ._settings import positive_ints_type, reals_type

DEFAULT_EPS = [0.0, 1e-5, 1e-4, 1e-3]  # --eps when not given (compared by identity: given, the user named it)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sde-table",
        help="W2 errors of EM, EI, DDPM, Euler, Heun, RK4 and the exact reverse SDE/ODE",
        description="Exact W2 errors W2(N(0,P), N(0,S)) of the continuous-time VP schemes "
        "(EM, EI, DDPM on the reverse SDE; Euler, Heun, RK4 on the probability-flow ODE) for every "
        "size, truncation time eps and start (exact: lambda(T); white: 1), plus the exact continuous "
        "solutions. Prints a Markdown table and writes a booktabs LaTeX table.",
    )
    p.add_argument("--spectrum", required=True, help=".npy array of mode variances S >= 0, a folder of PNG/JPEG images "
                   "or builtin:natural-patches (read as every command reads --spectrum)")
    p.add_argument("--nfe", type=positive_ints_type, default=[50, 250, 500, 1000], metavar="N1,N2,...",
                   help="sizes, one column pair each (default 50,250,500,1000); see --count")
    p.add_argument("--eps", type=reals_type, default=DEFAULT_EPS, metavar="E1,E2,...",
                   help="truncation times eps (default 0,1e-5,1e-4,1e-3)")
    p.add_argument("--count", choices=["points", "nfe"], default="points",
                   help="what a size counts: 'points' = N grid points for every scheme (N-1 steps; default), "
                   "'nfe' = N denoiser evaluations (heun gets N/2+1 points, rk4 N/4+1)")
    p.add_argument("--beta-min", type=_settings.real, default=0.05, help="beta(0) (default 0.05)")
    p.add_argument("--beta-max", type=_settings.real, default=10.0,
                   help="beta(t) = beta_min + (beta_max - beta_min) t (default 10)")
    p.add_argument("--horizon", type=_settings.real, default=1.0, help="final forward time T (default 1)")
    p.add_argument("--digits", type=int, default=7, help="significant digits in the LaTeX table (default 7)")
    p.add_argument("--out", type=output_file("sde_table.tex"), default=Path("sde_table.tex"),
                   help="LaTeX output (default sde_table.tex)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write_text, check_suffix
    from ..sde import error_table
    from ..spectra import load_spectrum

    check_suffix(args.out, "--out", ".tex")
    if args.digits < 1 or args.digits > 17:
        raise ValueError(f"--digits must be between 1 and 17 (got {args.digits})")
    if args.eps is DEFAULT_EPS and 0 < args.horizon <= max(DEFAULT_EPS):  # (0, negative, nan: error_table's rule)
        raise ValueError(f"--horizon must exceed every truncation time of the default --eps list 0,1e-5,1e-4,1e-3 "
                         f"(got --horizon {args.horizon!r}): pass --eps with values below it")
    S = load_spectrum(args.spectrum)  # float64, checked (a long double beyond float64 refused, not cast to inf)

    def progress(tasks: Any) -> Any:
        from tqdm import tqdm

        return tqdm(tasks, desc="sde-table", unit="run", file=sys.stderr, disable=True if args.no_progress else None)

    table = error_table(
        S, args.nfe, args.eps, count=args.count, beta_min=args.beta_min, beta_max=args.beta_max,
        horizon=args.horizon, progress=progress,
    )
    atomic_write_text(args.out, table.to_latex(args.digits))  # before printing: a stdout that fails costs no file
    print(table.to_markdown(), end="")
    print(f"\nwrote LaTeX table to {args.out}")
    return 0
