"""Iterables that fail the test when read further than a validator may read them."""

from __future__ import annotations

from typing import Any, Callable, Optional

import pytest


class Endless:
    """``item(i)`` (or ``item`` itself when not callable) for i = 0, 1, ... up to ``limit + 2`` entries, then
    :func:`pytest.fail`: a validator that caps ``limit`` entries reads at most ``limit + 1``, and one that lists the
    iterable whole fails the test at once rather than hanging (``itertools.repeat`` would) or exhausting memory.
    ``limit`` defaults to MAX_ENTRIES."""

    def __init__(self, item: Any, limit: Optional[int] = None, what: str = "entries") -> None:
        from symsched._validate import MAX_ENTRIES

        self.item: Callable[[int], Any] = item if callable(item) else (lambda i: item)
        self.limit = MAX_ENTRIES if limit is None else limit
        self.what = what

    def __iter__(self):
        for i in range(self.limit + 2):
            yield self.item(i)
        pytest.fail(f"{self.what} were read beyond {self.limit} + 1 entries")

    def __repr__(self) -> str:
        return f"Endless({self.what})"
