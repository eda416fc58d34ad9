"""Benchmark: ``symsched report`` on its defaults, warm and cold, against the previous implementation.

The baseline is the package as it was before issue 13 (git ``--baseline-ref``, default the commit
this work started from), exported with ``git archive`` into a temporary directory. Both run the
same command, ``python -m symsched.cli report --out DIR --no-progress``, each in a fresh process:

* **cold**: a fresh, empty cache directory (``SYMSCHED_CACHE_DIR``) for every run, so every kernel
  (and, for the current implementation, the LaTeX) is built from scratch with SymPy;
* **warm**: a cache directory filled by one untimed run of the same implementation.

Runs alternate baseline / current so that load drift on a shared machine hits both alike. For each
figure the median wall time and the median CPU time (user + system of the process and its worker
processes, from ``getrusage(RUSAGE_CHILDREN)``) are printed with the ratio current / baseline. The
issue-13 targets (warm <= 10 s, cold <= 30 s wall on a 2-core machine) are reported, not asserted.
Finally the outputs are compared: the optimised values in the tables must agree (to 5e-4 relative, the
tables' rounding); the files and the derivations' text are listed where they differ, which they do by design
(issue 9's probe and issue 12's insight sections are new, the report writes only the derivations of the
samplers it runs, and issue 11 changed the derivations' text).

Run: ``python benchmarks/bench_report.py [--repeats 3] [--baseline-ref REF]`` (about 5-10 minutes on
a quiet 2-core machine with 3 repeats).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the last commit before issue 13 (the previous implementation)
DEFAULT_BASELINE = "8941cd5"
TARGETS = {"warm": 10.0, "cold": 30.0}


def export_tree(ref: str, dest: Path) -> Path:
    """``git archive REF`` of this repository into ``dest``; returns the tree root."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "tree.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], stdout=fh, check=True)
    root = dest / "tree"
    root.mkdir()
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(root)
    return root


def run_cli(tree: Path, cache: Path, out: Path, command: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``symsched COMMAND --out OUT --no-progress`` in a fresh process rooted at
    ``tree``, with the cache directory ``cache`` (``out`` is removed first)."""
    env = dict(os.environ, PYTHONPATH=str(tree), SYMSCHED_CACHE_DIR=str(cache), MPLBACKEND="Agg")
    env.pop("SYMSCHED_DISK_CACHE", None)
    if out.exists():
        shutil.rmtree(out)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "symsched.cli", command, "--out", str(out), "--no-progress"],
                          cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{command} failed in {tree}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run_report(tree: Path, cache: Path, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``symsched report`` in a fresh process rooted at ``tree``."""
    return run_cli(tree, cache, out, "report")


def _optimised_values(path: Path) -> list[float]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("| optimised |"):
            return [float(c.strip().strip("*").rstrip("†")) for c in line.strip("|").split("|")[1:]]
    return []


def compare_outputs(base: Path, cur: Path) -> tuple[list[str], list[str]]:
    """``(values, files)``: differences between two report directories in the optimised values (must be empty)
    and in the files and derivations' text (expected, by design)."""
    notes: list[str] = []
    values: list[str] = []
    files_b = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}
    files_c = {p.relative_to(cur).as_posix() for p in cur.rglob("*") if p.is_file()}
    if files_b != files_c:
        notes.append(f"files differ: only baseline {sorted(files_b - files_c)}, only current {sorted(files_c - files_b)}")
    for tex in sorted(f for f in files_b & files_c if f.startswith("derivations/")):
        if (base / tex).read_bytes() != (cur / tex).read_bytes():
            notes.append(f"{tex} differs")
    for table in ("table_kl.md", "table_w2.md"):
        vb, vc = _optimised_values(base / table), _optimised_values(cur / table)
        if len(vb) != len(vc) or any(abs(a - b) > 5e-4 * abs(b) for a, b in zip(vc, vb)):
            values.append(f"{table}: optimised values {vc} vs baseline {vb}")
    return values, notes


def baseline_and_current(ref: str, tmpd: Path) -> "dict[str, Path] | None":
    """{"baseline": the tree of git ``ref`` exported under ``tmpd``, "current": ROOT}; None (having said why) when git
    cannot export it: no baseline, no ratios."""
    try:
        return {"baseline": export_tree(ref, tmpd / "b"), "current": ROOT}
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"cannot export the baseline {ref!r} with git ({exc}): no baseline, no ratios")
        return None


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per implementation and mode (default 3)")
    ap.add_argument("--baseline-ref", default=DEFAULT_BASELINE, help=f"git ref of the baseline (default {DEFAULT_BASELINE})")
    ap.add_argument("--modes", default="warm,cold", help="comma-separated: warm, cold (default both)")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    print(f"symsched report (defaults) — current tree {ROOT} vs baseline {args.baseline_ref}; "
          f"{os.cpu_count()} CPUs; load average {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmpd = Path(tmp)
        trees = baseline_and_current(args.baseline_ref, tmpd)
        if trees is None:
            return 1
        warm_cache = {name: tmpd / f"cache-{name}" for name in trees}
        if "warm" in modes:
            for name, tree in trees.items():  # fill the caches (untimed)
                run_report(tree, warm_cache[name], tmpd / f"out-{name}")
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for rep in range(args.repeats):
            for mode in modes:
                for name, tree in trees.items():
                    cache = warm_cache[name] if mode == "warm" else tmpd / f"cold-{name}-{rep}"
                    wall, cpu = run_report(tree, cache, tmpd / f"out-{name}")
                    times.setdefault((mode, name), []).append((wall, cpu))
                    print(f"  run {rep + 1}/{args.repeats} {mode:4s} {name:8s}: wall {wall:6.1f} s, CPU {cpu:6.1f} s "
                          f"(load {_load()})", flush=True)
                    if mode == "cold":
                        shutil.rmtree(cache, ignore_errors=True)
        print(f"\nmedians of {args.repeats} runs (load average now {_load()}):")
        print(f"{'':6s} {'':10s} {'baseline':>10s} {'current':>10s} {'ratio':>7s}")
        for mode in modes:
            for k, what in ((0, "wall (s)"), (1, "CPU (s)")):
                b = statistics.median(t[k] for t in times[(mode, "baseline")])
                c = statistics.median(t[k] for t in times[(mode, "current")])
                print(f"{mode:6s} {what:10s} {b:10.1f} {c:10.1f} {c / b:7.2f}")
            c_wall = statistics.median(t[0] for t in times[(mode, "current")])
            verdict = "within" if c_wall <= TARGETS[mode] else "OVER"
            print(f"{mode:6s} target <= {TARGETS[mode]:.0f} s wall: current median {c_wall:.1f} s, {verdict} "
                  "(a target for a quiet 2-core machine)")
        values, notes = compare_outputs(tmpd / "out-baseline", tmpd / "out-current")
        print("\noptimised values: " + ("the same as the baseline's (table_kl.md, table_w2.md)" if not values
                                         else "DIFFERENT:\n  " + "\n  ".join(values)))
        print("files and derivations' text: " + ("the same" if not notes else "differing by design (new sections, "
              "derivations of the samplers run only, issue 11's text):\n  " + "\n  ".join(notes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
