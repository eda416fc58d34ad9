"""One module per sampler; add one here to register it (see :mod:`symsched.symbolic.plan`).

Importing this package does not import SymPy: every module's metadata and plan are plain Python,
its update equations are built by its ``build()`` on first use.
"""

from __future__ import annotations

from types import ModuleType

from . import ddim, ddpm, dpmpp_2m, euler, heun

#: Sampler name -> its module (metadata, plan, build).
REGISTRY: dict[str, ModuleType] = {
    "ddim": ddim,
    "ddpm": ddpm,
    "euler": euler,
    "heun": heun,
    "dpmpp_2m": dpmpp_2m,
}

VP_SAMPLERS = tuple(name for name, mod in REGISTRY.items() if mod.PROCESS == "vp")
VE_SAMPLERS = tuple(name for name, mod in REGISTRY.items() if mod.PROCESS == "ve")
FLOW_SAMPLERS = tuple(name for name, mod in REGISTRY.items() if mod.PROCESS == "flow")
