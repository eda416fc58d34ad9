"""Spectral insight: what the optimal schedule says about the data (issue 12).

* :func:`sweep` — optimal schedules over a family of spectra and/or step counts (joblib-parallel);
* :func:`fit_heuristics` — which heuristic family (cosine, shift, log-linear, Karras, sigmoid, AYS,
  the tangent law) the optimum is, with which parameters, and what using it costs;
* :func:`resolution_law` — how the optimum shifts with resolution, next to simple diffusion's,
  SD3's and Flux's rules;
* :func:`intermediate_spectra` — the spectrum of the sample and of the denoised estimate after
  every step (coarse-to-fine generation);
* :func:`explain` — all of it for one dataset, written as Markdown, figures and LaTeX tables
  (``symsched explain``).
"""

from .explain import Explanation, explain, report_section
from .families import FAMILIES, family_names
from .fits import FamilyFit, HeuristicFit, fit_heuristics
from .intermediate import IntermediateSpectra, intermediate_spectra
from .plots import plot_fits, plot_intermediate, plot_resolution_law, plot_sweep
from .resolution import (PowerLawFit, ResolutionLaw, fit_power_law, image_spectra, resolution_law, scene_power_law,
                         source_images)
from .sweep import SweepFits, SweepResult, sweep

__all__ = [
    "sweep",
    "SweepResult",
    "SweepFits",
    "fit_heuristics",
    "HeuristicFit",
    "FamilyFit",
    "FAMILIES",
    "family_names",
    "resolution_law",
    "ResolutionLaw",
    "scene_power_law",
    "fit_power_law",
    "PowerLawFit",
    "image_spectra",
    "source_images",
    "intermediate_spectra",
    "IntermediateSpectra",
    "plot_sweep",
    "plot_fits",
    "plot_resolution_law",
    "plot_intermediate",
    "explain",
    "Explanation",
    "report_section",
]
