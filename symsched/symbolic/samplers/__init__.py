"""One module per sampler; each defines only its symbolic step. Add one here to register it."""

from __future__ import annotations

from typing import Callable

from ..step import Sampler
from . import ddim, ddpm, euler, heun

#: Sampler name -> factory taking the sampler's options (e.g. ``variance`` for DDPM).
REGISTRY: dict[str, Callable[..., Sampler]] = {
    "ddim": ddim.sampler,
    "ddpm": ddpm.sampler,
    "euler": euler.sampler,
    "heun": heun.sampler,
}

VP_SAMPLERS = ("ddim", "ddpm")
VE_SAMPLERS = ("euler", "heun")
