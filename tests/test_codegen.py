"""The compile helper: lazy build, in-memory and on-disk caches, invalidation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from symsched.engine import codegen
from symsched.engine.kernels import step_kernel


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(tmp_path))
    codegen.clear_memory_cache()
    yield tmp_path
    codegen.clear_memory_cache()


def test_kernel_is_written_to_disk_and_reloaded_identically(private_cache) -> None:
    S = np.linspace(0, 5, 11)
    fresh = step_kernel("ddpm", "beta")(S, 0.3, 0.2)
    files = list(private_cache.rglob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["key"] == "step:ddpm:beta:0"
    codegen.clear_memory_cache()
    reloaded = step_kernel("ddpm", "beta")(S, 0.3, 0.2)
    for a, b in zip(fresh, reloaded):
        np.testing.assert_array_equal(a, b)


def test_corrupt_cache_entry_is_rebuilt(private_cache) -> None:
    S = np.array([0.5, 2.0])
    good = step_kernel("euler")(S, 0.5, 1.0)[0]
    (path,) = list(private_cache.rglob("*.json"))
    path.write_text("garbage that is not a kernel")
    codegen.clear_memory_cache()
    again = step_kernel("euler")(S, 0.5, 1.0)[0]
    np.testing.assert_array_equal(good, again)
    assert json.loads(path.read_text())["key"] == "step:euler::0"


def test_disk_cache_can_be_disabled(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SYMSCHED_DISK_CACHE", "0")
    codegen.clear_memory_cache()
    assert codegen.cache_dir() is None
    step_kernel("heun")(np.array([1.0]), 0.5, 0.5)
    assert list(tmp_path.rglob("*")) == []
    codegen.clear_memory_cache()


def test_fingerprint_tracks_sources() -> None:
    fp = codegen.source_fingerprint()
    assert len(fp) == 20 and all(c in "0123456789abcdef" for c in fp)


def test_generated_source_hoists_scalar_work() -> None:
    """Scalar-only parts of sums/products are formed once, outside the array expression."""
    import inspect

    codegen.clear_memory_cache()
    src = inspect.getsource(step_kernel("ddpm", "posterior", grad=True))
    assert "_h0" in src
