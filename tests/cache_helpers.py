"""Reading and planting sealed cache entries in tests (symsched._datacache.seal / unseal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from symsched._datacache import seal, unseal


def entry_doc(path: Path) -> Any:
    """The JSON document of the sealed entry at ``path`` (fails the test if the seal is broken)."""
    data = path.read_bytes()
    body = unseal(data)
    assert body is not None, f"{path}: broken seal ({data[:60]!r})"
    return json.loads(body.decode("utf-8"))


def write_sealed(path: Path, text: str) -> None:
    """Plant ``text`` as an entry its owner could have written (a valid seal), to reach the checks behind it."""
    path.write_bytes(seal(text.encode("utf-8")))
