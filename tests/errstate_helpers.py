"""Shared check that a caller's global NumPy error state (``np.seterr``) cannot change a result."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def assert_unchanged_under_seterr_raise(calls: dict[str, Callable[[], Any]]) -> None:
    """Each call returns under ``np.seterr(all="raise")`` exactly what it returns under NumPy's defaults (no
    FloatingPointError from an underflow or overflow the package handles); the caller's state is restored."""
    expected = {k: f() for k, f in calls.items()}
    old = np.seterr(all="raise")
    try:
        for k, f in calls.items():
            np.testing.assert_array_equal(f(), expected[k], err_msg=k)
    finally:
        np.seterr(**old)
