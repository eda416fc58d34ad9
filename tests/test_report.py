"""`symsched report` end to end on the built-in default (small settings)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import symsched
from symsched.cli import main
from symsched.schedules import standard_schedule
from symsched.spectra import load_spectrum


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--out", str(out), "--steps", "5,10", "--samples", "2000", "--no-progress"]) == 0
    return out


def _table(path) -> dict[str, list[float]]:
    rows = {}
    for line in path.read_text().splitlines()[2:]:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        rows[cells[0]] = [float(c) for c in cells[1:]]
    return rows


def test_report_writes_everything(report) -> None:
    for name in ("summary.md", "summary.html", "validation.png", "table_kl.md", "table_kl.tex", "table_w2.md",
                 "schedule_kl_K5.json", "schedule_w2_K10.png", "derivations/symsched.tex", "derivations/ddim.tex"):
        assert (report / name).is_file(), name
    summary = (report / "summary.md").read_text()
    assert "PASS" in summary and "beats every standard schedule" in summary
    html = (report / "summary.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "validation.png" in html


@pytest.mark.parametrize("div", ["kl", "w2"])
def test_optimised_schedule_beats_every_listed_standard_schedule(report, div: str) -> None:
    rows = _table(report / f"table_{div}.md")
    opt = rows.pop("optimised")
    assert len(rows) >= 10
    for name, vals in rows.items():
        assert all(o <= v for o, v in zip(opt, vals)), name


def test_report_numbers_are_reproducible_from_the_api(report) -> None:
    """Recompute table entries independently from the exported levels and the standard schedules."""
    S = load_spectrum("builtin:natural-patches")
    res = json.loads((report / "schedule_kl_K10.json").read_text())
    P = symsched.output_spectrum(S, np.array(res["alpha_bar"]), sampler="ddim")
    kl_opt = symsched.kl_divergence(S, P)
    rows = _table(report / "table_kl.md")
    assert kl_opt == pytest.approx(rows["optimised"][1], rel=1e-3)
    P_k = symsched.output_spectrum(S, standard_schedule("karras", 10), sampler="ddim")
    assert symsched.kl_divergence(S, P_k) == pytest.approx(rows["karras"][1], rel=1e-3)


def test_report_rejects_bad_steps(tmp_path, capsys) -> None:
    assert main(["report", "--out", str(tmp_path), "--steps", "5,x"]) == 2
    assert re.search("--steps must be comma-separated positive integers", capsys.readouterr().err)
