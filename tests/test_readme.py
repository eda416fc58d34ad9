"""Every Python example in README.md runs (docs that match the code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)

# names the examples take from context: a spectrum S, a schedule alpha_bar; user files become S
PRELUDE = """
import numpy as np
import symsched
from symsched import schedules, spectra
S = spectra.load_spectrum("builtin:natural-patches")
alpha_bar = schedules.standard_schedule("linear-leading", 10)
"""


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, capsys) -> None:
    code = BLOCKS[index]
    for user_file in ('"my_photos/"', '"spectrum.npy"'):
        code = code.replace(f"spectra.load_spectrum({user_file})", "S")
    ns: dict = {}
    exec(PRELUDE, ns)
    exec(compile(code, f"README.md block {index}", "exec"), ns)
