"""pdflatex for the tests that typeset what symsched writes: one way to compile a document and read its log."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

#: the preamble the LaTeX tables ask for in their header comment (report, explain, sde-table)
TABLES = "\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}"
#: the preamble of the derivations' master document (symsched.symbolic.latex.render_master)
DERIVATIONS = "\\documentclass[11pt]{article}\n\\usepackage{amsmath,amssymb}\n\\usepackage[margin=2cm]{geometry}\n"


def run_pdflatex(folder: Path, name: str = "doc") -> subprocess.CompletedProcess:
    """``pdflatex -halt-on-error NAME.tex`` in ``folder`` (output captured as text)."""
    return subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=300)


def compile_body(folder: Path, body: str, preamble: str = TABLES) -> subprocess.CompletedProcess:
    """Write ``preamble`` + ``body`` as ``folder/doc.tex`` and run :func:`run_pdflatex` on it."""
    (folder / "doc.tex").write_text(preamble + "\\begin{document}\n" + body + "\n\\end{document}\n", encoding="utf-8")
    return run_pdflatex(folder)


def overfull(folder: Path, name: str = "doc") -> list[str]:
    """The overfull-box reports (lines wider than the page) of ``folder/NAME.log``."""
    return re.findall(r"Overfull \\hbox.*", (folder / f"{name}.log").read_text(encoding="latin-1"))
