"""Shared test configuration.

Hypothesis is derandomised everywhere (the same examples on every run, in CI and locally), so a
failing property is reproducible; Monte Carlo tests use fixed seeds for the same reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "symsched",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "symsched"))

#: $SYMSCHED_SHARED_DATA, else ../shared/data next to the checkout (present for developers and CI, absent in a user's
#: clone; the benchmarks look in the same place).
SHARED_DATA = Path(os.environ.get("SYMSCHED_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def _shared(name: str) -> np.ndarray:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real spectrum {name} not available ({SHARED_DATA} is absent; set SYMSCHED_SHARED_DATA)")
    return np.load(path, allow_pickle=False)


@pytest.fixture(scope="session")
def cifar_spectrum() -> np.ndarray:
    """CIFAR-10's 3,072 PCA eigenvalues (float64, -0.0 and tiny values included)."""
    return _shared("cifar10_pca_eigenvalues.npy").astype(np.float64) + 0.0


@pytest.fixture(scope="session")
def adsn_spectrum() -> np.ndarray:
    """196,608-mode ADSN texture PSD (256x256x3 FFT grid, flattened), 131,072 zeros."""
    return _shared("adsn_eigenvalues.npy").astype(np.float64)


@pytest.fixture(autouse=True, scope="session")
def _kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests build kernels into a private cache so they exercise the SymPy path from scratch. Under pytest-xdist the
    workers of one run share it (the cache is safe for concurrent cold builds, test_hardening_cache), so each kernel
    is generated once per run rather than once per worker."""
    if "SYMSCHED_CACHE_DIR" not in os.environ:
        base = tmp_path_factory.getbasetemp()
        shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        os.environ["SYMSCHED_CACHE_DIR"] = str(shared / "kernel-cache")


@pytest.fixture(autouse=True)
def _mpmath_precision():
    """Every test starts at mpmath's default 15 digits and leaves it there: a test that sets ``mp.dps`` globally
    (rather than ``mp.workdps``) no longer changes the precision of the mpmath references of the tests after it
    (test_extremes' DEIS check failed when it ran after test_zero_snr's ``mp.dps = 60``)."""
    from mpmath import mp

    mp.dps = 15
    yield
    mp.dps = 15


# pytest.approx's default absolute tolerance (1e-12) swallows any expected value below ~1e-11: approx(4.5e-18)
# accepted 0.0 (test_extremes' KL of order eps^2 passed on code that returned 0). Such a call must say its
# absolute tolerance (abs=0 for a value that is tiny on purpose), or it cannot fail; this guard makes it an error.
_APPROX = pytest.approx
_TINY_EXPECTED = 1e-11  # below it the default abs = 1e-12 accepts 10 % errors or worse, 0 among them


def _guarded_approx(expected, rel=None, abs=None, nan_ok=False):  # noqa: A002  (pytest's own argument name)
    if abs is None:
        try:
            values = np.abs(np.asarray(expected, dtype=np.float64))
        except (TypeError, ValueError):  # a mapping, or something else approx compares: not checked here
            values = np.zeros(0)
        tiny = values[(values > 0) & (values < _TINY_EXPECTED)]
        if tiny.size:
            raise AssertionError(f"pytest.approx({float(tiny[0]):.3g}, ...) without abs= cannot fail (its default "
                                 "abs = 1e-12 accepts 0): pass abs=0, or the absolute tolerance meant")
    return _APPROX(expected, rel=rel, abs=abs, nan_ok=nan_ok)


pytest.approx = _guarded_approx

