"""One module per sampler; add one here to register it (see :mod:`symsched.symbolic.plan`).

Importing this package does not import SymPy: every module's metadata and plan are plain Python,
its update equations are built by its ``build()`` on first use.
"""

from __future__ import annotations

from types import ModuleType

from . import ddim, ddpm, dpmpp_2m, euler, heun
from . import deis_multistep, dpmsolver_multistep, euler_ancestral_discrete, unipc_multistep  # diffusers (i10d)

#: Sampler name -> its module (metadata, plan, build).
REGISTRY: dict[str, ModuleType] = {
    "ddim": ddim,
    "ddpm": ddpm,
    "euler": euler,
    "heun": heun,
    "dpmpp_2m": dpmpp_2m,
    # diffusers schedulers (i10d)
    "dpmsolver_multistep": dpmsolver_multistep,
    "unipc_multistep": unipc_multistep,
    "deis_multistep": deis_multistep,
    "euler_ancestral_discrete": euler_ancestral_discrete,
}

VP_SAMPLERS = tuple(name for name, mod in REGISTRY.items() if mod.PROCESS == "vp")
VE_SAMPLERS = tuple(name for name, mod in REGISTRY.items() if mod.PROCESS == "ve")
FLOW_SAMPLERS = tuple(name for name, mod in REGISTRY.items() if mod.PROCESS == "flow")
