"""``symsched latex``: write the derivations as LaTeX (one file per sampler and a master file)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "latex",
        help="write the symbolic derivations as LaTeX",
        description="Derive every sampler's step map, transfer function, output PSD, KL and W2 with "
        "SymPy and write one .tex per sampler plus a master symsched.tex that inputs them.",
    )
    p.add_argument("--sampler", default=None, help="only this sampler's section (default: all)")
    p.add_argument("--out", default="derivations", type=Path, help="output directory (default: derivations)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write_text
    from .._latex_cache import render_all  # cached on disk like the kernels; renders on a miss

    files = render_all(args.sampler)
    for name, text in files.items():
        atomic_write_text(Path(args.out) / name, text)
    print(f"wrote {len(files)} files to {args.out}: {', '.join(sorted(files))}")
    return 0
