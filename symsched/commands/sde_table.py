"""``symsched sde-table``: W2 errors of the continuous-time VP schemes (issue #5) as Markdown and LaTeX."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

SCHEME_LABELS = {"em": "EM", "ei": "EI", "ddpm": "DDPM", "euler": "Euler", "heun": "Heun", "rk4": "RK4"}


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers (got {text!r})") from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive integers (got {text!r})")
    return vals


def _float_list(text: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers (got {text!r})") from None
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one value")
    return vals


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sde-table",
        help="W2 errors of EM, EI, DDPM, Euler, Heun, RK4 and the exact reverse SDE/ODE",
        description="Exact W2 errors W2(N(0,P), N(0,S)) of the continuous-time VP schemes of issue #5 "
        "(EM, EI, DDPM on the reverse SDE; Euler, Heun, RK4 on the probability-flow ODE) for every "
        "size, truncation time eps and start (exact: lambda(T); white: 1), plus the exact continuous "
        "solutions. Prints a Markdown table and writes a booktabs LaTeX table.",
    )
    p.add_argument("--spectrum", required=True, help=".npy array of mode variances S >= 0, or builtin:natural-patches")
    p.add_argument("--nfe", type=_int_list, default=[50, 250, 500, 1000], metavar="N1,N2,...",
                   help="sizes, one column pair each (default 50,250,500,1000); see --count")
    p.add_argument("--eps", type=_float_list, default=[0.0, 1e-5, 1e-4, 1e-3], metavar="E1,E2,...",
                   help="truncation times eps (default 0,1e-5,1e-4,1e-3)")
    p.add_argument("--count", choices=["points", "nfe"], default="points",
                   help="what a size counts: 'points' = N grid points for every scheme (N-1 steps; default), "
                   "'nfe' = N denoiser evaluations (heun gets N/2+1 points, rk4 N/4+1)")
    p.add_argument("--beta-min", type=float, default=0.05, help="beta(0) (default 0.05)")
    p.add_argument("--beta-max", type=float, default=10.0,
                   help="beta(t) = beta_min + (beta_max - beta_min) t (default 10)")
    p.add_argument("--horizon", type=float, default=1.0, help="final forward time T (default 1)")
    p.add_argument("--digits", type=int, default=7, help="significant digits in the LaTeX table (default 7)")
    p.add_argument("--out", type=Path, default=Path("sde_table.tex"), help="LaTeX output (default sde_table.tex)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _load(source: str) -> Any:
    from .._io import load_npy

    if source.startswith("builtin:"):
        from .. import spectra

        loader = getattr(spectra, "load_spectrum", None)
        if loader is None:
            raise ValueError(f"--spectrum {source!r}: builtin spectra need symsched.spectra.load_spectrum")
        return loader(source)
    return load_npy(source, "--spectrum")


def _md_number(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.10g}"


def _tex_number(x: float, digits: int) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "$\\infty$"
    if x == 0:
        return "$0$"
    text = f"{x:.{digits}g}"
    if "e" in text:
        mant, exp = text.split("e")
        return f"${mant}\\times 10^{{{int(exp)}}}$"
    return f"${text}$"


def _tex_eps(e: float) -> str:
    if e == 0:
        return "$0$"
    exp = math.log10(e)
    if exp == int(exp):
        return f"$10^{{{int(exp)}}}$"
    return f"${e:g}$"


def _continuous_kind(scheme: str) -> str:
    from ..sde import SDE_SCHEMES

    return "sde" if scheme in SDE_SCHEMES else "ode"


def _size_label(table: Any, size: int) -> str:
    return f"N = {size}" if table.count == "points" else f"NFE = {size}"


def _notes(table: Any) -> list[str]:
    from ..sde import EVALS_PER_STEP

    notes = [
        f"W2(N(0,P), N(0,S)) over {table.n_modes} modes; beta(t) = {table.beta_min:g} + "
        f"({table.beta_max:g} - {table.beta_min:g}) t on [0, {table.horizon:g}]; start exact = N(0, lambda(T)), white = N(0, 1).",
        "Continuous: exact reverse SDE (EM, EI, DDPM rows) or probability-flow ODE (Euler, Heun, RK4 rows).",
    ]
    evals = ", ".join(f"{s} {EVALS_PER_STEP[s]}" for s in EVALS_PER_STEP)
    if table.count == "points":
        notes.append(f"Sizes count grid points N (N-1 steps) for every scheme; NFE = (N-1) x evaluations per step ({evals}).")
    else:
        notes.append(f"Sizes count denoiser evaluations (NFE); evaluations per step: {evals}. Grid points used:")
        for size in table.sizes:
            parts = []
            for s in SCHEME_LABELS:
                if (s, size) in table.points:
                    mark = "" if table.evals[(s, size)] == size else f" (NFE {table.evals[(s, size)]})"
                    parts.append(f"{s} {table.points[(s, size)]}{mark}")
            notes.append(f"  NFE = {size}: " + ", ".join(parts))
    if any(math.isinf(v) for v in table.cells.values()):
        notes.append("inf: heun/rk4 at eps = 0 evaluate the score at lambda(0) = S; S = 0 modes diverge (P = +inf).")
    if table.undefined:
        notes.append("n/a: the scheme is undefined on that grid (DDPM needs 2 Delta beta < 1).")
    return notes


def markdown(table: Any) -> str:
    """The table as Markdown (10 significant digits)."""
    head = ["scheme", "eps", "continuous exact", "continuous white"]
    for size in table.sizes:
        head += [f"{_size_label(table, size)} exact", f"{_size_label(table, size)} white"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    schemes = [s for s in SCHEME_LABELS if any(k[0] == s for k in table.cells)]
    for s in schemes:
        kind = _continuous_kind(s)
        for e in table.eps:
            row = [s, f"{e:g}", _md_number(table.continuous[(kind, e, "exact")]), _md_number(table.continuous[(kind, e, "white")])]
            for size in table.sizes:
                row += [_md_number(table.cells[(s, size, e, "exact")]), _md_number(table.cells[(s, size, e, "white")])]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(["\n".join(f"> {n}" for n in _notes(table)), "", *lines]) + "\n"


def latex(table: Any, digits: int = 7) -> str:
    """The table as a booktabs LaTeX ``table`` float (needs \\usepackage{booktabs})."""
    ncols = 4 + 2 * len(table.sizes)
    what = "grid points $N$" if table.count == "points" else "denoiser evaluations (NFE)"
    lines = [
        "% Generated by `symsched sde-table`; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{$W_2$ error of the continuous-time VP schemes ({table.n_modes} modes; sizes count {what}; "
        "start exact $= \\mathcal N(0, \\lambda(T))$ or white $= \\mathcal N(0, 1)$; "
        "continuous: exact reverse SDE for EM, EI, DDPM, probability-flow ODE for Euler, Heun, RK4).}",
        "\\label{tab:sde-w2}",
        "\\begin{tabular}{ll" + "r" * (ncols - 2) + "}",
        "\\toprule",
        " & & \\multicolumn{2}{c}{Continuous}"
        + "".join(
            f" & \\multicolumn{{2}}{{c}}{{{'$N = ' if table.count == 'points' else 'NFE $= '}{size}$}}"
            for size in table.sizes
        )
        + " \\\\",
        " ".join(f"\\cmidrule(lr){{{c}-{c + 1}}}" for c in range(3, ncols, 2)),
        "Scheme & $\\varepsilon$ & exact & white" + " & exact & white" * len(table.sizes) + " \\\\",
        "\\midrule",
    ]
    schemes = [s for s in SCHEME_LABELS if any(k[0] == s for k in table.cells)]
    for i, s in enumerate(schemes):
        kind = _continuous_kind(s)
        for j, e in enumerate(table.eps):
            cells = [SCHEME_LABELS[s] if j == 0 else "", _tex_eps(e)]
            cells += [_tex_number(table.continuous[(kind, e, init)], digits) for init in ("exact", "white")]
            for size in table.sizes:
                cells += [_tex_number(table.cells[(s, size, e, init)], digits) for init in ("exact", "white")]
            lines.append(" & ".join(cells) + " \\\\")
        if i < len(schemes) - 1:
            lines.append("\\midrule")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .._io import atomic_write_text
    from ..sde import error_table

    if args.digits < 1 or args.digits > 17:
        raise ValueError(f"--digits must be between 1 and 17 (got {args.digits})")
    S = np.asarray(_load(args.spectrum), dtype=np.float64)

    def progress(tasks: Any) -> Any:
        from tqdm import tqdm

        return tqdm(tasks, desc="sde-table", unit="run", file=sys.stderr, disable=True if args.no_progress else None)

    table = error_table(
        S, args.nfe, args.eps, count=args.count, beta_min=args.beta_min, beta_max=args.beta_max,
        horizon=args.horizon, progress=progress,
    )
    print(markdown(table), end="")
    atomic_write_text(args.out, latex(table, args.digits))
    print(f"\nwrote LaTeX table to {args.out}")
    return 0
