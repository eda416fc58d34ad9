"""The compile helper: lazy build, in-memory and on-disk caches, invalidation."""

from __future__ import annotations

import numpy as np
import pytest

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
    files = list(private_cache.rglob("*.py"))
    assert len(files) == 1 and files[0].read_text().startswith("# symsched kernel init:vp:exact")
    codegen.clear_memory_cache()
    reloaded = init_kernel("vp", "exact")(S, 0.3, 0.2, 0.1)
    for a, b in zip(fresh, reloaded):
        np.testing.assert_array_equal(a, b)


def test_corrupt_cache_entry_is_rebuilt(private_cache) -> None:
    S = np.array([0.5, 2.0])
    good = init_kernel("ve", "exact")(S, 0.5, 1.0, 0.1)[0]
    (path,) = list(private_cache.rglob("*.py"))
    path.write_text("garbage that is not a kernel")
    codegen.clear_memory_cache()
    again = init_kernel("ve", "exact")(S, 0.5, 1.0, 0.1)[0]
    np.testing.assert_array_equal(good, again)
    assert path.read_text().startswith("# symsched kernel")


def test_disk_cache_can_be_disabled(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SYMSCHED_DISK_CACHE", "0")
    codegen.clear_memory_cache()
    assert codegen.cache_dir() is None
    init_kernel("ve", "white")(np.array([1.0]), 0.5, 0.5, 0.1)
    assert list(tmp_path.rglob("*.py")) == []
    codegen.clear_memory_cache()


def test_fingerprint_tracks_sources() -> None:
    fp = codegen.source_fingerprint()
    assert len(fp) == 20 and all(c in "0123456789abcdef" for c in fp)


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
