"""What every continuous-time scheme module defines: its update, written literally, and the per-mode step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import sympy as sp
from sympy.core.function import AppliedUndef

from ..step import Step
from .model import lam, tau_next, y, z

__all__ = ["Scheme", "linear_step"]

Equation = Literal["sde", "ode"]


def linear_step(update: sp.Expr) -> Step:
    """The per-mode :class:`Step` of an update ``y_{k+1} = update(y, z)`` that is linear in (y, z).

    gain = d update / dy, noise = (d update / dz)^2, so ``y_{k+1} = gain y + sqrt(noise) z``; raises
    ValueError if the update is not of that form (a scheme written wrongly).
    """
    gain = sp.diff(update, y)
    sd = sp.diff(update, z)
    if gain.has(y, z) or sd.has(y, z) or sp.expand(update - gain * y - sd * z) != 0:
        raise ValueError(f"update is not linear in (y, z): {update}")
    return Step(gain=gain, noise=sd**2)


@dataclass(frozen=True)
class Scheme:
    """A reverse-time scheme on the grid tau_0 = T > tau_1 > ... > tau_{N-1} = eps.

    The update is written as the paper writes it: a sequence of ``assignments`` (stage symbol,
    expression in ``y``, ``z``, earlier stage symbols, the grid quantities ``tau_k, tau_{k+1}, Delta``
    and the model functions ``beta, B, lambda``), then ``final`` = ``y_{k+1}``. :attr:`update` is
    ``final`` with the stages substituted back; ``step`` is its per-mode form
    ``y_{k+1} = g y_k + sqrt(n) z``, so the variance obeys ``v_{k+1} = g^2 v_k + n``.
    """

    name: str
    title: str
    #: Which continuous equation the scheme discretises ("sde": reverse SDE, "ode": PF-ODE).
    equation: Equation
    #: Denoiser (score) evaluations per step.
    evals_per_step: int
    #: Convergence order of the output variance to the exact continuous solution.
    order: int
    description: str
    citation: str
    final: sp.Expr
    assignments: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()
    step: Step = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "step", linear_step(self.update))

    @property
    def update(self) -> sp.Expr:
        """``y_{k+1}`` as one expression of y and z (stages substituted, last assigned first)."""
        expr = self.final
        for sym, value in reversed(self.assignments):
            expr = expr.subs(sym, value)
        return expr

    def _stand_ins(self) -> tuple[list[tuple[sp.Symbol, sp.Expr]], dict[sp.Symbol, sp.Expr]]:
        """(the stages linear in y with their factored coefficients, what stands for every stage in later ones:
        ``symbol * y`` for those, its value for a stage free of y, a level quantity such as EI's gamma_1)."""
        out: list[tuple[sp.Symbol, sp.Expr]] = []
        stand: dict[sp.Symbol, sp.Expr] = {}
        for sym, value in self.assignments:
            v = value.subs(stand)
            if v.has(y):
                out.append((sym, sp.factor(sp.diff(v, y))))
                stand[sym] = sym * y
            else:
                stand[sym] = v
        return out, stand

    def stage_coefficients(self) -> list[tuple[sp.Symbol, sp.Expr]]:
        """Each stage linear in y as c * y, c factored and written in the earlier stages' coefficients.

        Returns ``[(symbol, c), ...]`` where ``c`` contains the symbols of earlier stages standing
        for *their* coefficients (stage value = coefficient * y); a stage free of y (a level quantity) is
        substituted by its value.
        """
        return self._stand_ins()[0]

    def staged_gain(self) -> sp.Expr:
        """``d y_{k+1}/d y`` in the symbols of :meth:`stage_coefficients` (each standing for its coefficient): the
        gain as the stages compose it."""
        return sp.diff(self.final.subs(self._stand_ins()[1]), y)

    def _repr_latex_(self) -> str:
        """Jupyter display: the update as the paper writes it (lambda_k = lambda(tau_k), ...)."""
        from .latex import display

        lines = [f"{sp.latex(sym)} = {sp.latex(display(val))}" for sym, val in self.assignments]
        lines.append(f"y_{{k+1}} = {sp.latex(display(self.final))}")
        return f"{self.title}: $" + ",\\quad ".join(lines) + "$"

    @property
    def score_points(self) -> tuple[sp.Expr, ...]:
        """The forward times at which the step evaluates lambda (i.e. the score), sorted by string."""
        pts = {f.args[0] for f in self.step.gain.atoms(AppliedUndef) if f.func == lam}
        return tuple(sorted(pts, key=str))

    @property
    def uses_end_point(self) -> bool:
        """True when the step evaluates the score at tau_{k+1} (so at eps on the last step)."""
        return tau_next in self.score_points
