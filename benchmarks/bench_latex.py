"""Benchmark: ``symsched latex`` on an empty cache (every section rendered with SymPy), against a baseline.

The baseline is the package before the derivations were written in the libraries' notation and broken to fit
the page (git ``--baseline-ref``, default 34876d0), exported with ``git archive``. Both run
``python -m symsched.cli latex --out DIR --no-progress`` in fresh processes, each with a fresh, empty cache
directory, alternating baseline / current so that load drift hits both alike; the median wall and CPU times
over ``--repeats`` are printed with the ratio current / baseline. With pdflatex on the PATH, the master document
of each output is compiled once and its overfull lines counted (what the extra rendering time buys).

Run: ``python benchmarks/bench_latex.py [--repeats 3] [--baseline-ref REF]`` (about 3 minutes on a quiet
2-core machine with 3 repeats).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_report import ROOT, _load, baseline_and_current, run_cli  # (benchmarks/ is the script's folder: on sys.path)

DEFAULT_BASELINE = "34876d0"


def overfull_lines(folder: Path) -> str:
    """The number of overfull lines pdflatex reports for ``folder/symsched.tex`` (as text: "n/a" without pdflatex)."""
    if shutil.which("pdflatex") is None:
        return "n/a (no pdflatex)"
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "symsched.tex"], cwd=folder, capture_output=True,
                   timeout=600)
    log = (folder / "symsched.log").read_text(encoding="latin-1")
    return str(len(re.findall(r"Overfull \\hbox", log)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per implementation (default 3)")
    ap.add_argument("--baseline-ref", default=DEFAULT_BASELINE,
                    help=f"git ref of the baseline (default {DEFAULT_BASELINE})")
    args = ap.parse_args(argv)
    print(f"symsched latex, empty cache — current tree {ROOT} vs baseline {args.baseline_ref}; "
          f"{os.cpu_count()} CPUs; load average {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-latex-") as tmp:
        tmpd = Path(tmp)
        trees = baseline_and_current(args.baseline_ref, tmpd)
        if trees is None:
            return 1
        times: dict[str, list[tuple[float, float]]] = {}
        for rep in range(args.repeats):
            for name, tree in trees.items():
                cache = tmpd / f"cache-{name}-{rep}"
                wall, cpu = run_cli(tree, cache, tmpd / f"out-{name}", "latex")
                shutil.rmtree(cache, ignore_errors=True)
                times.setdefault(name, []).append((wall, cpu))
                print(f"  run {rep + 1}/{args.repeats} {name:8s}: wall {wall:6.1f} s, CPU {cpu:6.1f} s "
                      f"(load {_load()})", flush=True)
        print(f"\nmedians of {args.repeats} runs (load average now {_load()}):")
        print(f"{'':10s} {'baseline':>10s} {'current':>10s} {'ratio':>7s}")
        for k, what in ((0, "wall (s)"), (1, "CPU (s)")):
            b = statistics.median(t[k] for t in times["baseline"])
            c = statistics.median(t[k] for t in times["current"])
            print(f"{what:10s} {b:10.1f} {c:10.1f} {c / b:7.2f}")
        print("overfull lines in the compiled master: "
              + ", ".join(f"{name} {overfull_lines(tmpd / f'out-{name}')}" for name in trees))
    return 0


if __name__ == "__main__":
    sys.exit(main())
