"""Symbolic layer: SymPy derivations of every per-mode formula (no NumPy here).

Public API used by the rest of the package:

- :func:`get_sampler` — a registered sampler's symbolic :class:`Sampler` (step + final step);
- :mod:`.compose` — transfer function and output PSD for K symbolic levels;
- :mod:`.divergences` — per-mode KL and W2;
- :mod:`.forward` — forward marginals and the Wiener denoiser;
- :mod:`.angle` — the angle form of deterministic DDIM;
- :mod:`.latex` — rendering.
"""

from __future__ import annotations

from functools import lru_cache

from . import angle, compose, divergences, forward, symbols
from .samplers import REGISTRY, VE_SAMPLERS, VP_SAMPLERS
from .step import Sampler, Step

__all__ = [
    "get_sampler",
    "sampler_names",
    "Sampler",
    "Step",
    "REGISTRY",
    "VP_SAMPLERS",
    "VE_SAMPLERS",
    "angle",
    "compose",
    "divergences",
    "forward",
    "symbols",
]


@lru_cache(maxsize=None)
def get_sampler(name: str, variant: str = "") -> Sampler:
    """The symbolic sampler ``name``; ``variant`` is DDPM's variance ("posterior" or "beta")."""
    if name not in REGISTRY:
        raise ValueError(f"sampler must be one of {tuple(REGISTRY)} (got {name!r})")
    if name == "ddpm":
        return REGISTRY[name](variance=variant or "posterior")
    return REGISTRY[name]()


def sampler_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


from . import sde  # noqa: E402,F401  (continuous-time schemes; registers the "sde" LaTeX section)
