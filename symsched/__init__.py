"""symsched: spectral transfer functions of diffusion samplers, derived with SymPy.

Under a Gaussian, shift-invariant data model every DDPM/DDIM-style sampler driven by the exact
(Wiener) denoiser acts on each Fourier mode independently. :mod:`symsched.symbolic` derives the
per-mode step, the transfer function and the output power spectrum; the functions here evaluate
NumPy code generated from those expressions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public names and the module each lives in. They load on first use (PEP 562), so that ``import symsched.cli`` (the
# ``symsched`` script) is quick and sets its Ctrl-C handling up before NumPy, SciPy and the kernels load: an
# interrupt in that second is then one line too, not a traceback from the imports (audit of 5 December).
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("DIVERGENCES", "FLOW_SAMPLERS", "INITS", "SAMPLERS", "VE_SAMPLERS", "VP_SAMPLERS",
                     "divergence_and_grad", "divergence_and_grad_ve", "kl_divergence", "output_spectrum",
                     "output_spectrum_ve", "sampler_info", "transfer_function", "transfer_function_ve", "w2_distance"),
                    ".api"),
    **dict.fromkeys(("output_spectrum_mp", "output_spectrum_ve_mp", "transfer_function_mp"), ".engine.highprec"),
    **dict.fromkeys(("ComparisonTable", "OptimizeResult", "compare_schedules", "optimize_schedule"), ".optimize"),
    # spectral insight (issue 12): sweeps, heuristic fits, resolution law, per-step spectra
    **dict.fromkeys(("HeuristicFit", "IntermediateSpectra", "ResolutionLaw", "SweepResult", "fit_heuristics",
                     "intermediate_spectra", "resolution_law", "sweep"), ".insight"),
}

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from .api import (DIVERGENCES, FLOW_SAMPLERS, INITS, SAMPLERS, VE_SAMPLERS, VP_SAMPLERS, divergence_and_grad,
                      divergence_and_grad_ve, kl_divergence, output_spectrum, output_spectrum_ve, sampler_info,
                      transfer_function, transfer_function_ve, w2_distance)
    from .engine.highprec import output_spectrum_mp, output_spectrum_ve_mp, transfer_function_mp
    from .insight import (HeuristicFit, IntermediateSpectra, ResolutionLaw, SweepResult, fit_heuristics,
                          intermediate_spectra, resolution_law, sweep)
    from .optimize import ComparisonTable, OptimizeResult, compare_schedules, optimize_schedule


def __getattr__(name: str) -> Any:
    """A public name from its module, or a submodule (``symsched.schedules``), imported on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":  # the submodule exists but one of its imports is missing
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names and the submodules (for tab completion; they load on first use)."""
    import pkgutil

    return sorted(set(globals()) | set(_EXPORTS) | {m.name for m in pkgutil.iter_modules(__path__)})


__version__ = "0.1.0"

__all__ = [
    "output_spectrum",
    "transfer_function",
    "output_spectrum_ve",
    "transfer_function_ve",
    "kl_divergence",
    "w2_distance",
    "divergence_and_grad",
    "divergence_and_grad_ve",
    "output_spectrum_mp",
    "output_spectrum_ve_mp",
    "transfer_function_mp",
    "optimize_schedule",
    "compare_schedules",
    "OptimizeResult",
    "ComparisonTable",
    "sampler_info",
    "SAMPLERS",
    "sweep",
    "SweepResult",
    "fit_heuristics",
    "HeuristicFit",
    "resolution_law",
    "ResolutionLaw",
    "intermediate_spectra",
    "IntermediateSpectra",
    "VP_SAMPLERS",
    "VE_SAMPLERS",
    "FLOW_SAMPLERS",
    "DIVERGENCES",
    "INITS",
    "__version__",
]
