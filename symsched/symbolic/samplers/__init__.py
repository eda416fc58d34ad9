"""One module per sampler; add one here to register it (see :mod:`symsched.symbolic.plan`).

Importing this package does not import SymPy: every module's metadata and plan are plain Python,
its update equations are built by its ``build()`` on first use.
"""

from __future__ import annotations

from types import ModuleType

from . import ddim, ddpm, dpmpp_2m, euler, heun
from . import dpm_2, dpm_2_ancestral, dpmpp_2m_sde, dpmpp_2s_ancestral, dpmpp_3m_sde, dpmpp_sde, euler_ancestral, lms
from . import deis_multistep, dpmsolver_multistep, euler_ancestral_discrete, unipc_multistep
from . import flow_match_euler, flow_match_heun

#: Sampler name -> its module (metadata, plan, build).
REGISTRY: dict[str, ModuleType] = {
    "ddim": ddim,
    "ddpm": ddpm,
    "euler": euler,
    "heun": heun,
    "dpmpp_2m": dpmpp_2m,
    "euler_ancestral": euler_ancestral,
    "dpm_2": dpm_2,
    "dpm_2_ancestral": dpm_2_ancestral,
    "dpmpp_2s_ancestral": dpmpp_2s_ancestral,
    "lms": lms,
    "dpmpp_2m_sde": dpmpp_2m_sde,
    "dpmpp_3m_sde": dpmpp_3m_sde,
    "dpmpp_sde": dpmpp_sde,
    # diffusers schedulers
    "dpmsolver_multistep": dpmsolver_multistep,
    "unipc_multistep": unipc_multistep,
    "deis_multistep": deis_multistep,
    "euler_ancestral_discrete": euler_ancestral_discrete,
    # flow matching (diffusers FlowMatch*DiscreteScheduler)
    "flow_match_euler": flow_match_euler,
    "flow_match_heun": flow_match_heun,
}

VP_SAMPLERS = tuple(name for name, mod in REGISTRY.items() if mod.PROCESS == "vp")
VE_SAMPLERS = tuple(name for name, mod in REGISTRY.items() if mod.PROCESS == "ve")
FLOW_SAMPLERS = tuple(name for name, mod in REGISTRY.items() if mod.PROCESS == "flow")
