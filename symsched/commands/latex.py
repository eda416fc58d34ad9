"""``symsched latex``: write the derivations as LaTeX (one file per sampler and a master file)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import _settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "latex",
        help="write the symbolic derivations as LaTeX",
        description="Derive every sampler's step map, transfer function, output PSD, KL and W2 with "
        "SymPy and write one .tex per sampler plus a master symsched.tex that inputs them.",
    )
    p.add_argument("--sampler", default=None,
                   help="only this sampler's section (default: all; a name of symsched.SAMPLERS, or sde for the "
                   "continuous-time schemes); the master symsched.tex in --out then inputs every section present "
                   "there")
    p.add_argument("--option", action="append", default=[], type=_settings.sampler_option, metavar="NAME=VALUE",
                   help="a structural setting of --sampler rendered instead of its default, e.g. --option "
                   "algorithm_type=sde-dpmsolver++ or --option order=2 (repeatable; numeric settings such as eta "
                   "stay symbols in the formulas)")
    p.add_argument("--out", default="derivations", type=Path, help="output directory (default: derivations)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (drawn while SymPy renders sections "
                   "that are not in the cache)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write_text, staged_folder
    from .._latex_cache import render_all  # cached on disk like the kernels; renders on a miss

    options = dict(args.option)
    if len(options) < len(args.option):
        raise ValueError("--option: each setting at most once")
    if options and args.sampler is None:
        raise ValueError(f"--option {args.option[0][0]}=...: give the sampler it sets with --sampler")
    from ..symbolic import REGISTRY, check_options, sampler_module

    mod = sampler_module(args.sampler) if args.sampler in REGISTRY else None
    numeric = [k for k in options if k in getattr(mod, "PARAMS", {})]
    if numeric:  # eta, s_noise...: a symbol of every formula, not a structural setting (as --help says)
        raise ValueError(f"--option {numeric[0]}=...: {numeric[0]} is a numeric setting of sampler {args.sampler!r}, "
                         "kept as a symbol in the formulas; --option takes only structural settings "
                         f"(of {args.sampler!r}: {tuple(getattr(mod, 'OPTIONS', {})) or 'none'})")
    if options and mod is not None:  # (no SymPy) named as the other commands name them: "--option order: ..."
        with _settings.option_named(options):
            check_options(args.sampler, dict(options))
    from tqdm.auto import tqdm

    # (no total: counting the sections imports SymPy, which a cache hit never needs)
    with tqdm(desc="symsched latex", unit="section", disable=not _settings.show_progress(args), leave=False) as bar:
        files = render_all(args.sampler, progress=lambda name: bar.update(1), **options)
    if args.sampler is not None:  # the master inputs every section in --out, this one and those already there
        from ..symbolic.latex import render_master, section_stems

        files["symsched.tex"] = render_master([stem for stem in section_stems()
                                               if f"{stem}.tex" in files or (Path(args.out) / f"{stem}.tex").is_file()])
    with staged_folder(Path(args.out), "symsched latex") as stage:  # every file, or none (an interrupt)
        for name, text in files.items():
            atomic_write_text(stage / name, text)
    print(f"wrote {len(files)} files to {args.out}: {', '.join(sorted(files))}")
    return 0
