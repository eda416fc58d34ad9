"""symsched: spectral transfer functions of diffusion samplers, derived with SymPy.

Under a Gaussian, shift-invariant data model every DDPM/DDIM-style sampler driven by the exact
(Wiener) denoiser acts on each Fourier mode independently. :mod:`symsched.symbolic` derives the
per-mode step, the transfer function and the output power spectrum; the functions here evaluate
NumPy code generated from those expressions.
"""

from .api import (
    DIVERGENCES,
    FLOW_SAMPLERS,
    INITS,
    SAMPLERS,
    VE_SAMPLERS,
    VP_SAMPLERS,
    divergence_and_grad,
    divergence_and_grad_ve,
    kl_divergence,
    output_spectrum,
    output_spectrum_ve,
    sampler_info,
    transfer_function,
    transfer_function_ve,
    w2_distance,
)
from .engine.highprec import output_spectrum_mp, output_spectrum_ve_mp, transfer_function_mp
from .optimize import ComparisonTable, OptimizeResult, compare_schedules, optimize_schedule

# spectral insight (issue 12): sweeps, heuristic fits, resolution law, per-step spectra
from .insight import (
    HeuristicFit,
    IntermediateSpectra,
    ResolutionLaw,
    SweepResult,
    fit_heuristics,
    intermediate_spectra,
    resolution_law,
    sweep,
)

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
