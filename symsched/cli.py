"""``symsched`` command-line interface.

Each sub-command lives in ``symsched/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
``argparse.Namespace`` and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# One line per sub-command module (in the order `symsched --help` lists them).
COMMANDS: tuple[str, ...] = (
    "latex",
    "transfer",
    "validate",
    "optimize",
    "report",
    "sde_table",
    "train_demo",
)


def build_parser() -> argparse.ArgumentParser:
    from symsched import __version__

    parser = argparse.ArgumentParser(
        prog="symsched",
        description="Spectral transfer functions of diffusion samplers: derive, verify, optimise.",
    )
    parser.add_argument("--version", action="version", version=f"symsched {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"symsched.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"symsched {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
