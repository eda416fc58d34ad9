"""Plans: which kind of step a sampler takes where (pure Python, no SymPy).

A sampler module (``symsched/symbolic/samplers/*.py``) declares, at module level and without
importing SymPy, its metadata and its plan; its update equations are built by ``build()`` in SymPy:

- ``PROCESS``: the coordinates its updates are written in, ``"vp"`` (alpha_bar), ``"ve"`` (sigma)
  or ``"flow"`` (t);
- ``ENTRIES``: ``((name, kind), ...)``, the state (first entry the sample; kinds "sample", "data",
  "unit", see :class:`symsched.symbolic.statespace.Entry`);
- ``KINDS``: kind name -> the level slots it reads (0: the level it leaves, 1: the one it reaches,
  -1, -2, ...: earlier levels);
- ``PARAMS``: its numeric parameters, name -> default (keyword arguments of ``output_spectrum``), in the
  order of the symbols of ``build()``; ``PARAM_BOUNDS``: name -> (low, high) (default [0, inf));
  ``STEP_PARAMS``: parameters whose value the plan sets per step;
- ``OPTIONS``: structural options with their allowed values, the first being the default;
- ``plan(K, levels, params, **options)``: the steps of a K-level schedule (see :data:`PlanStep`);
- ``build(**options)``: the :class:`~symsched.symbolic.statespace.Sampler`.

The numeric engine reads the metadata and the plan without SymPy, so a process with a warm kernel
cache never imports SymPy.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

__all__ = ["PlanLevels", "PlanStep", "default_plan", "level_sigma", "param_classes", "step"]

#: One step of a plan: (kind, level indices of the kind's slots in 0..K, per-step parameter values).
#: Index K is the clean level that follows the K schedule levels (sigma = 0, alpha_bar = 1, t = 0).
PlanStep = tuple[str, tuple[int, ...], Mapping[str, float]]


class PlanLevels(tuple):
    """The log-SNR levels of a plan call (floats, noisiest first) and, when the caller gave the schedule as sigmas
    (``output_spectrum_ve``), those ``sigmas`` themselves: k-diffusion takes its churn window
    (``s_tmin <= sigmas[i] <= s_tmax``) and its ancestral ``min`` on its own float64 sigmas, which
    ``exp(-l/2)`` reproduces only to a few ulp (a Karras sigma of 10.000000000000002 lies outside ``s_tmax = 10``)."""

    sigmas: Optional[tuple[float, ...]]
    #: the caller's sigmas were float32 (k-diffusion's ``get_sigmas_*`` default): the library then decides its churn
    #: window and ancestral ``min`` in float32 arithmetic, and so do the plans
    float32: bool

    def __new__(cls, log_snr: Sequence[float], sigmas: Optional[Sequence[float]] = None,
                float32: bool = False) -> "PlanLevels":
        obj = super().__new__(cls, (float(v) for v in log_snr))
        obj.sigmas = None if sigmas is None else tuple(float(v) for v in sigmas)
        obj.float32 = bool(float32) and obj.sigmas is not None
        if obj.sigmas is not None and len(obj.sigmas) != len(obj):
            raise ValueError(f"sigmas must have one entry per level ({len(obj)}; got {len(obj.sigmas)})")
        return obj


def level_sigma(levels: Sequence[float], i: int) -> float:
    """sigma of level ``i`` of a plan call: the caller's own (:class:`PlanLevels`), else ``exp(-l/2)`` of its log-SNR
    (inf at l = -inf, 0 at l = +inf)."""
    sigmas = getattr(levels, "sigmas", None)
    if sigmas is not None:
        return sigmas[i]
    l = float(levels[i])
    return math.exp(-0.5 * l) if math.isfinite(l) else (math.inf if l < 0 else 0.0)


def step(kind: str, *indices: int, **params: float) -> PlanStep:
    """A plan step: ``step("final", K - 1, K)``."""
    return (kind, tuple(indices), dict(params))


def default_plan(K: int, levels: Optional[Sequence[float]] = None, params: Optional[Mapping[str, Any]] = None,
                 **options: Any) -> list[PlanStep]:
    """``step`` from level i to i + 1 for i < K - 1, then ``final`` from level K - 1 to the clean level K."""
    return [step("step", i, i + 1) for i in range(K - 1)] + [step("final", K - 1, K)]


def param_classes(params: Mapping[str, float]) -> tuple[tuple[str, str], ...]:
    """``(name, class)`` of every parameter for the limits at pure noise, which may depend on whether a parameter
    is 0, positive or infinite (``(sigma_s/sigma_t)^eta -> 0`` for eta > 0 but 1 at eta = 0): ``"0"``, ``"+"``
    or ``"inf"`` (:func:`symsched.symbolic.limits.pinned_params` turns them into substitutions)."""
    return tuple((p, "0" if v == 0.0 else ("inf" if v == float("inf") else "+")) for p, v in params.items())
