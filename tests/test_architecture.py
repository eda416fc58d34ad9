"""Layering rules: symbolic/ is SymPy only; one module turns expressions into functions."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "symsched"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_symbolic_layer_never_imports_numpy() -> None:
    for path in (PKG / "symbolic").rglob("*.py"):
        assert not ({"numpy", "scipy"} & _imports(path)), f"{path} imports numpy/scipy"


def test_only_codegen_calls_lambdify() -> None:
    offenders = [
        p for p in PKG.rglob("*.py")
        if "lambdify(" in p.read_text(encoding="utf-8") and p.name != "codegen.py"
    ]
    assert offenders == []


def test_numeric_layers_do_not_reach_into_sympy_outside_engine_and_symbolic() -> None:
    allowed = {"symbolic", "engine"}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] in allowed:
            continue
        src = path.read_text(encoding="utf-8")
        assert "import sympy" not in src and "from sympy" not in src, f"{rel} imports sympy directly"


def test_no_pickle_loading_of_user_files() -> None:
    for path in PKG.rglob("*.py"):
        assert "allow_pickle=True" not in path.read_text(encoding="utf-8"), path


def test_importing_the_package_does_not_import_sympy() -> None:
    """Numeric users (and the CLI) pay for SymPy only when a kernel must be built."""
    import subprocess
    import sys

    code = "import sys, symsched, symsched.sde; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
