"""Back-compatible home of :class:`Step` and :class:`Sampler` (now defined in :mod:`.statespace`)."""

from __future__ import annotations

from .statespace import Process, Sampler, Step

__all__ = ["Step", "Sampler", "Process"]
