"""The suite's guard against pytest.approx comparisons that cannot fail (tests/conftest.py)."""

from __future__ import annotations

import pytest


def test_the_approx_guard_refuses_a_tiny_expected_value_without_abs() -> None:
    """tests/conftest.py's guard is live (a test of its own, so that the suite fails if it is ever dropped)."""
    with pytest.raises(AssertionError, match="cannot fail"):
        _ = 0.0 == pytest.approx(4.5e-18, rel=1e-6)
    assert not (0.0 == pytest.approx(4.5e-18, rel=1e-6, abs=0))
    assert 1.0 == pytest.approx(1.0 + 1e-13) and 0.0 == pytest.approx(0.0)
