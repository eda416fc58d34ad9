"""The compile helper: lazy build, in-memory and on-disk caches, invalidation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cache_helpers import entry_doc
from symsched.engine import codegen
from symsched.engine.kernels import init_kernel, step_kernels


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(tmp_path))
    codegen.clear_memory_cache()
    yield tmp_path
    codegen.clear_memory_cache()


def test_kernel_is_written_to_disk_and_reloaded_identically(private_cache) -> None:
    S = np.linspace(0, 5, 11)
    fresh = init_kernel("vp", "exact")(S, 0.3, 0.2, 0.1)
    files = list(private_cache.rglob("*.json"))
    assert len(files) == 1 and entry_doc(files[0])["key"] == "init:vp:exact"
    codegen.clear_memory_cache()
    reloaded = init_kernel("vp", "exact")(S, 0.3, 0.2, 0.1)
    for a, b in zip(fresh, reloaded):
        np.testing.assert_array_equal(a, b)


def test_corrupt_cache_entry_is_rebuilt(private_cache) -> None:
    S = np.array([0.5, 2.0])
    good = init_kernel("ve", "exact")(S, 0.5, 1.0, 0.1)[0]
    (path,) = list(private_cache.rglob("*.json"))
    path.write_text("garbage that is not a kernel")
    codegen.clear_memory_cache()
    again = init_kernel("ve", "exact")(S, 0.5, 1.0, 0.1)[0]
    np.testing.assert_array_equal(good, again)
    assert entry_doc(path)["key"] == "init:ve:exact"


def test_disk_cache_can_be_disabled(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SYMSCHED_DISK_CACHE", "0")
    codegen.clear_memory_cache()
    assert codegen.cache_dir() is None
    init_kernel("ve", "white")(np.array([1.0]), 0.5, 0.5, 0.1)
    assert list(tmp_path.rglob("*")) == []
    codegen.clear_memory_cache()


# ------------------------------------------------------------------------------------------------
# the cache key follows the derivation sources: a copy of the package, edited, run in subprocesses
# ------------------------------------------------------------------------------------------------
PKG = Path(codegen.__file__).resolve().parents[1]


def _copy_package(root: Path) -> Path:
    shutil.copytree(PKG, root / "symsched", ignore=shutil.ignore_patterns("__pycache__"))
    return root / "symsched"


def _run_copy(root: Path, code: str, **env: str) -> list[str]:
    """Run ``code`` in a fresh interpreter that imports the package copy under ``root``."""
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SYMSCHED_DISK_CACHE")}
    full.update(PYTHONPATH=str(root), **env)
    code = f"import symsched; assert symsched.__file__.startswith({str(root)!r}), symsched.__file__\n{code}"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=full, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split()


FINGERPRINT = "from symsched.engine import codegen; print(codegen.source_fingerprint())"


#: the only sources whose edits keep the kernel-cache key: they use kernels (the recursion, the mpmath path) or
#: render LaTeX, and never shape a generated kernel (written here, not read from codegen, so a module wrongly
#: added to codegen's exclusions fails the test below)
KEEP_KEY = {"engine/recursion.py", "engine/highprec.py", "symbolic/latex.py", "symbolic/sde/latex.py"}

#: in a copy: each source of symbolic/ and engine/ edited in turn, the key recomputed, the file restored
EDIT_EACH = """
from pathlib import Path
from symsched.engine import codegen
pkg = Path(codegen.__file__).resolve().parents[1]
for path in sorted(pkg.joinpath("symbolic").rglob("*.py")) + sorted(pkg.joinpath("engine").glob("*.py")):
    original = path.read_bytes()
    path.write_bytes(original + b"\\n# an edit\\n")
    codegen.source_fingerprint.cache_clear()
    print(path.relative_to(pkg).as_posix(), codegen.source_fingerprint())
    path.write_bytes(original)
"""


def test_fingerprint_tracks_sources(tmp_path) -> None:
    """Editing any derivation source (every sampler, the forward model, every engine module that shapes a kernel)
    changes the key, each to a key of its own; editing the modules that only use kernels or render LaTeX keeps it;
    an identical copy elsewhere has the same key (the key is the content, not the location)."""
    fp = codegen.source_fingerprint()
    assert len(fp) == 20 and all(c in "0123456789abcdef" for c in fp)
    _copy_package(tmp_path)
    assert _run_copy(tmp_path, FINGERPRINT) == [fp]
    out = _run_copy(tmp_path, EDIT_EACH)
    keys = dict(zip(out[::2], out[1::2]))
    assert len(keys) > 40 and {"engine/kernels.py", "engine/stable.py", "symbolic/forward.py"} <= set(keys)
    assert KEEP_KEY <= set(keys)
    kept = {name for name, key in keys.items() if key == fp}
    assert kept == KEEP_KEY, f"edits that keep the key: {sorted(kept)}"
    changed = [key for name, key in keys.items() if name not in KEEP_KEY]
    assert len(set(changed)) == len(changed)
    assert _run_copy(tmp_path, FINGERPRINT) == [fp]  # every file restored


#: appended to symbolic/forward.py of a copy: a different (deliberately wrong) VE denoiser, D/2
HALF_DENOISER = """

_exact_ve_denoiser = ve_denoiser


def ve_denoiser(sigma, s=S):  # appended by tests/test_codegen.py
    return _exact_ve_denoiser(sigma, s) / 2
"""
EULER_RUN = (
    "import numpy as np; from symsched import output_spectrum_ve; "
    "print(*output_spectrum_ve(np.array([0.1, 1.0, 5.0]), [3.0, 0.5], sampler='euler').tolist())"
)


def test_edited_derivation_is_not_served_from_a_stale_kernel_cache(tmp_path) -> None:
    """Two checkouts share one on-disk cache; after a derivation changes, the new formula is what runs."""
    cache = str(tmp_path / "cache")
    old_root, new_root = tmp_path / "old", tmp_path / "new"
    _copy_package(old_root)
    forward = _copy_package(new_root) / "symbolic" / "forward.py"
    forward.write_text(forward.read_text() + HALF_DENOISER)
    S = np.array([0.1, 1.0, 5.0])

    def euler(d):  # VE Euler 3.0 -> 0.5 -> 0 from a white start, denoiser gain d(sigma), typed in here
        g1 = d(3.0) + 0.5 / 3.0 * (1 - d(3.0))
        return 9.0 * g1**2 * d(0.5) ** 2

    exact = euler(lambda s: S / (S + s * s))
    half = euler(lambda s: S / (S + s * s) / 2)
    P_old = np.array(_run_copy(old_root, EULER_RUN, SYMSCHED_CACHE_DIR=cache), dtype=float)
    np.testing.assert_allclose(P_old, exact, rtol=1e-12)
    P_new = np.array(_run_copy(new_root, EULER_RUN, SYMSCHED_CACHE_DIR=cache), dtype=float)
    np.testing.assert_allclose(P_new, half, rtol=1e-12, err_msg="stale kernels served after a derivation changed")
    # and the first checkout still gets its own kernels from the shared cache
    np.testing.assert_allclose(np.array(_run_copy(old_root, EULER_RUN, SYMSCHED_CACHE_DIR=cache), dtype=float),
                               exact, rtol=1e-12)


def test_mode_functions_do_no_scalar_work() -> None:
    """Level-only work lives in the level function (once for all steps); the per-mode function only
    combines S with ready coefficients: a step of DDPM is k0 (S k1 + k2)/(S k3 + k4)-shaped."""
    import inspect

    codegen.clear_memory_cache()
    step_kernels.cache_clear()
    kern = step_kernels("ddpm", (("variance", "posterior"),), "step", ("", ""))
    src = inspect.getsource(kern.mode_s)
    assert "sqrt" not in src and "expm1" not in src and "exp(" not in src
    assert "expm1" in inspect.getsource(kern.level)


@pytest.mark.parametrize("k", [-5, -3, -2, 2, 3, 4, 7])
def test_integer_powers_are_lowered_to_multiplications(k: int) -> None:
    """numpy.power with a float exponent runs libm pow per element (~20x a multiplication): integer
    powers become square-and-multiply and one division, and agree with exact rational arithmetic."""
    from fractions import Fraction

    import sympy as sp

    x, c = sp.Symbol("x", positive=True), sp.Symbol("c", real=True)
    doc = codegen._build_doc(f"test-power-{k}", lambda: ([x, c], [(c * x + 1) ** k, x**k], 1), "inplace")
    names = [op[0] for op in doc["ops"]]
    assert "power" not in names, names
    assert names.count("divide") == (2 if k < 0 else 0), names
    fn = codegen._generate(doc)
    xs = np.array([0.5, 1.25, 3.0, 1e-3, 7.5])
    got = fn(xs, 0.75, [np.empty_like(xs) for _ in range(fn.n_workspace)])
    for X, g1, g2 in zip(xs, np.asarray(got[0]), np.asarray(got[1])):
        fx = Fraction(float(X))
        assert g1 == pytest.approx(float((Fraction(3, 4) * fx + 1) ** k), rel=1e-14)
        assert g2 == pytest.approx(float(fx**k), rel=1e-14, abs=0)


# ------------------------------------------------------------------------------------------------
# derivations draw SymPy's random points from a fixed seed and leave the user's stream alone
# ------------------------------------------------------------------------------------------------
def test_derivations_seed_sympy_random_and_restore_it() -> None:
    """Wang's factorisation draws evaluation points from sympy.core.random.rng: inside a derivation the
    draws are the same every time (so a cold build costs the same in every process); outside, the
    caller's stream continues exactly where it was."""
    import sympy as sp
    from sympy.core.random import rng

    from symsched.symbolic.seeding import seeded_sympy
    from symsched.engine.canonical import stabilize

    rng.seed(12345)
    expected_next = rng.random()
    rng.seed(12345)
    with seeded_sympy():
        first = [rng.random() for _ in range(3)]
        with seeded_sympy():  # nested: the outer sequence goes on, not restarted
            inner = rng.random()
    assert rng.random() == expected_next
    with seeded_sympy():
        again = [rng.random() for _ in range(4)]
    assert again == first + [inner]
    c0, s0, c1, s1 = sp.symbols("c_{0} s_{0} c_{1} s_{1}", positive=True)
    expr = (c1**2 * s0**2 - c0**2 * s1**2) / (c0 * s1 + 1)  # a derivation that factors a polynomial
    rng.seed(7)
    expected_next = rng.random()
    rng.seed(7)
    stabilize(expr)
    assert rng.random() == expected_next


def test_seeded_sympy_restores_the_stream_when_the_body_raises() -> None:
    from sympy.core.random import rng

    from symsched.symbolic.seeding import seeded_sympy

    rng.seed(99)
    expected_next = rng.random()
    rng.seed(99)
    with pytest.raises(RuntimeError):
        with seeded_sympy():
            rng.random()
            raise RuntimeError("boom")
    assert rng.random() == expected_next


def test_tree_entry_and_its_twin_in_T_are_the_step_without_growing_terms() -> None:
    """The continuous-time schemes' entries stay expression trees (over a common denominator in S, RK4's gain
    cancelled to every digit for a long horizon): the tree is the expression, its twin in T = 1/S is the same
    function, and in the twin every product's powers of T cancel (no 1/T left: nothing grows with S up to
    1.7e308). A twin that merely substituted S = 1/T, or lost a factor, fails."""
    import sympy as sp
    from sympy.codegen.cfunctions import expm1

    from symsched.engine.kernels import _TreeEntry

    S, T, a, b = sp.symbols("S T a b", positive=True)
    E = sp.exp(-a)
    lam = E * S - expm1(-a)  # lambda = e^{-a} S + 1 - e^{-a}, as the schemes' stable form writes it
    slope = b * E * (S - 1) / lam  # b (1 - 1/lambda) with lambda - 1 = e^{-a} (S - 1)
    expr = 1 + slope + slope * (1 + slope / 2) ** 2 / 3  # nested stages, like a Runge-Kutta gain
    entry = _TreeEntry(expr)
    assert entry.value(S) == expr
    twin = entry.value(S, T)
    assert not twin.has(S) and not any(p.exp.is_negative for p in twin.atoms(sp.Pow) if p.base == T)
    for point in ({S: 0.3, a: 0.7, b: 1.9}, {S: 40.0, a: 1e-3, b: 0.2}, {S: 1e-4, a: 5.0, b: 3.0}):
        want = complex(expr.evalf(30, subs=point))
        got = complex(twin.evalf(30, subs={T: 1 / point[S], a: point[a], b: point[b]}))
        assert got == pytest.approx(want, rel=1e-20)


@pytest.mark.parametrize("scheme", ["em", "ei", "ddpm", "euler", "heun", "rk4"])
def test_every_continuous_time_twin_keeps_no_power_of_one_over_T(scheme: str) -> None:
    """review of 4 December: Heun's and RK4's gains are Delta (S - 1) (a sum of ratios); their twin kept an outer
    1/T over a sum whose every term carried T, and T * e^{-2B} underflowed for S ~ 1e250 (every digit lost). The
    common power of T is taken out of the sum, so no 1/T survives in any scheme's twin."""
    import sympy as sp

    from symsched.engine.kernels import _Coefficients, _coefficientize, _TreeEntry
    from symsched.engine.sde_kernels import gain_tree, stable_form
    from symsched.symbolic.symbols import S

    T = sp.Symbol("T", positive=True)
    twin = _TreeEntry(_coefficientize(stable_form(gain_tree(scheme), factored=True), S, _Coefficients())).value(S, T)
    assert not twin.has(S)
    assert not [p for p in twin.atoms(sp.Pow) if p.base == T and p.exp.is_negative], twin
