"""The data every sampler module defines: one step's gain and injected variance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import sympy as sp

Process = Literal["vp", "ve"]


@dataclass(frozen=True)
class Step:
    """One sampler step per mode, ``x_s = gain * x_t + sqrt(noise) * z``.

    ``gain`` and ``noise`` are SymPy expressions of ``S`` and the two levels of the step
    (``alpha_bar_t, alpha_bar_s`` for VP samplers, ``sigma_t, sigma_s`` for VE samplers) and of
    the sampler's parameters (e.g. ``eta``). The variance then obeys ``v_s = gain^2 v_t + noise``.
    """

    gain: sp.Expr
    noise: sp.Expr
    #: Extra expressions worth showing (e.g. the denoiser outputs or the DDIM sigma_t^2).
    parts: dict[str, sp.Expr] = field(default_factory=dict)

    def variance_map(self, v: sp.Expr) -> sp.Expr:
        """v_s = gain^2 v_t + noise."""
        return self.gain**2 * v + self.noise

    def _repr_latex_(self) -> str:
        return f"$g(S) = {sp.latex(self.gain)},\\quad n = {sp.latex(self.noise)}$"


@dataclass(frozen=True)
class Sampler:
    """A sampler = its step to an intermediate level and its final step to the clean level.

    ``step`` maps level t to level s; ``final`` maps level t to the clean end
    (``alpha_bar = 1`` or ``sigma = 0``) and is written in the t-level symbol only.
    """

    name: str
    process: Process
    title: str
    citation: str
    description: str
    step: Step
    final: Step
    #: Parameter symbols in the fixed argument order of compiled functions.
    params: tuple[sp.Symbol, ...] = ()
    #: Name of the option this instance was built with (e.g. "posterior"), for display.
    variant: str = ""

    def _repr_latex_(self) -> str:
        """Jupyter display: the step map of this sampler."""
        return (
            f"{self.title}: $x_s = g(S)\\,x_t + \\sqrt{{n}}\\,z$ with "
            f"$g(S) = {sp.latex(self.step.gain)}$ and $n = {sp.latex(self.step.noise)}$"
        )
