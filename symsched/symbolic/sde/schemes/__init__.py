"""One module per continuous-time scheme; each defines only its update. Add one here to register it."""

from __future__ import annotations

from typing import Callable

from ..scheme import Scheme
from . import ddpm, ei, em, euler, heun, rk4

#: Scheme name -> factory (the order is the order of tables and documents).
REGISTRY: dict[str, Callable[[], Scheme]] = {
    "em": em.scheme,
    "ei": ei.scheme,
    "ddpm": ddpm.scheme,
    "euler": euler.scheme,
    "heun": heun.scheme,
    "rk4": rk4.scheme,
}

#: Schemes of the reverse SDE and of the probability-flow ODE (``Scheme.equation``; a test checks).
SDE_SCHEMES = ("em", "ei", "ddpm")
ODE_SCHEMES = ("euler", "heun", "rk4")
