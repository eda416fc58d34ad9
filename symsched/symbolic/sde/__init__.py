"""Continuous-time VP samplers of issue #5, derived symbolically (SymPy only).

- :mod:`.model` — symbols, beta, B, lambda, score, reverse drifts;
- :mod:`.schemes` — one module per scheme (em, ei, ddpm, euler, heun, rk4), registry ``REGISTRY``;
- :mod:`.continuous` — exact output variances of the reverse SDE and the PF-ODE;
- :mod:`.latex` — the ``sde`` section of ``symsched latex`` (registered on import).
"""

from __future__ import annotations

from functools import lru_cache

from . import continuous, model
from .scheme import Scheme, linear_step
from .schemes import ODE_SCHEMES, REGISTRY, SDE_SCHEMES

__all__ = [
    "get_scheme", "scheme_names", "Scheme", "linear_step", "REGISTRY", "SDE_SCHEMES", "ODE_SCHEMES",
    "continuous", "model", "latex",
]


def get_scheme(name: str) -> Scheme:
    """The symbolic scheme ``name`` (one of :data:`REGISTRY`); ValueError naming ``scheme`` for any other value (an
    unhashable one included: a list raised lru_cache's "unhashable type", naming nothing; audit of 6 December)."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"scheme must be one of {tuple(REGISTRY)} (got {name!r})")
    return _scheme(name)


@lru_cache(maxsize=None)
def _scheme(name: str) -> Scheme:
    return REGISTRY[name]()


def scheme_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


from . import latex  # noqa: E402  (registers EXTRA_SECTIONS["sde"])
