"""Linear state-space form of a sampler step (docs/model.md §9): a sampler written as data.

With the exact denoiser every sampler in use is, per mode, a linear recursion on a small state
``y`` (the current sample plus the history the method keeps) driven by independent standard
normal draws ``z``:

    y_{i+1} = A_i(S) y_i + B_i(S) z_i,   so   C_{i+1} = A_i C_i A_i^T + B_i B_i^T.

A sampler module writes each *kind* of step literally, as the paper or the library writes it
(:class:`Update`: stages such as denoiser calls, then the new state), in its own coordinates
(VE ``sigma``, VP ``alpha_bar``, flow ``t``) with the exact denoiser substituted; this module
extracts ``A`` and ``B`` by differentiation (checking that the update really is linear), and
:class:`Sampler` says which kind of step is taken where (:attr:`Sampler.plan`). Composition,
LaTeX, compiled kernels, gradients and the contract tests all work from these two matrices.

Levels. A step of kind ``k`` reads the levels of a few *slots* relative to the current level
``i``: slot 0 is the level the step leaves (``sigma_i``), slot 1 the level it reaches
(``sigma_{i+1}``), slots -1, -2, ... earlier levels (multistep history). A schedule of K levels
``L_0 (noisiest) ... L_{K-1}`` is followed by the clean level ``L_K`` (``sigma = 0``,
``alpha_bar = 1``, ``t = 0``); the plan maps every step's slots to indices in ``0..K``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Literal, Mapping, Optional, Sequence

import sympy as sp

from .plan import PlanStep, default_plan
from .symbols import param, slot_level

__all__ = [
    "Entry",
    "Update",
    "Sampler",
    "Step",
    "PlanStep",
    "default_plan",
    "clean_value",
    "Process",
    "from_module",
]

Process = Literal["vp", "ve", "flow"]


def clean_value(process: str) -> sp.Expr:
    """The clean level in native coordinates: alpha_bar = 1 (VP), sigma = 0 (VE), t = 0 (flow)."""
    return {"vp": sp.Integer(1), "ve": sp.Integer(0), "flow": sp.Integer(0)}[process]


@dataclass(frozen=True)
class Entry:
    """One entry of the state.

    ``kind`` fixes how the entry scales with the noise level, so that the engine can move it to a
    common scale: ``"sample"`` is the current sample (at slot 0 before the step, slot 1 after it,
    in the sampler's own coordinates: VE ``x = x0 + sigma n``, VP ``x = sqrt(ab) x0 + sqrt(1-ab) n``,
    flow ``x = (1-t) x0 + t n``); ``"data"`` is a denoised estimate (scale of ``x0``); ``"unit"`` is
    a noise-like quantity of unit scale (predicted noise, ODE slope ``(x - D)/sigma``).
    """

    name: str
    kind: Literal["sample", "data", "unit"] = "data"

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name, real=True)


@dataclass(frozen=True)
class Step:
    """Scalar view of a one-entry update: ``x_s = gain * x_t + sqrt(noise) * z`` (so v_s = gain^2 v_t + noise)."""

    gain: sp.Expr
    noise: sp.Expr
    #: Extra expressions worth showing (e.g. the denoiser outputs or the DDIM sigma_t^2).
    parts: dict[str, sp.Expr] = field(default_factory=dict)

    def variance_map(self, v: sp.Expr) -> sp.Expr:
        """v_s = gain^2 v_t + noise."""
        return self.gain**2 * v + self.noise

    def _repr_latex_(self) -> str:
        return f"$g(S) = {sp.latex(self.gain)},\\quad n = {sp.latex(self.noise)}$"


@dataclass(frozen=True, eq=False)
class Update:
    """One kind of step, written literally.

    ``stages`` are assignments ``(symbol, expression)`` evaluated in order (denoiser calls,
    predictors, ...), each in the state symbols, the noise symbols, earlier stages, the slot levels,
    ``S`` and the sampler's parameters; ``new`` gives every state entry after the step. ``noises``
    are independent N(0, 1) draws (correlated library draws are written as combinations of them).
    """

    state: tuple[sp.Symbol, ...]
    new: tuple[sp.Expr, ...]
    noises: tuple[sp.Symbol, ...] = ()
    stages: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()
    #: Level slots the step reads (0: the level it leaves, 1: the level it reaches, -1: the one before, ...).
    slots: tuple[int, ...] = (0, 1)
    #: Expressions worth displaying next to the step (LaTeX only).
    parts: Mapping[str, sp.Expr] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.new) != len(self.state):
            raise ValueError(f"an update needs one new value per state entry ({len(self.state)}), got {len(self.new)}")

    @cached_property
    def resolved(self) -> tuple[sp.Expr, ...]:
        """The new state with every stage substituted (last stage first)."""
        out = []
        for expr in self.new:
            e = sp.sympify(expr)
            for sym, value in reversed(self.stages):
                e = e.subs(sym, value)
            out.append(e)
        return tuple(out)

    @cached_property
    def matrices(self) -> tuple[sp.Matrix, sp.Matrix]:
        """(A, B) with new = A state + B noises; ValueError if the update is not linear in them."""
        m, q = len(self.state), len(self.noises)
        A = sp.zeros(m, m)
        B = sp.zeros(m, q)
        free = set(self.state) | set(self.noises)
        for i, e in enumerate(self.resolved):
            for j, y in enumerate(self.state):
                A[i, j] = sp.diff(e, y)
            for j, z in enumerate(self.noises):
                B[i, j] = sp.diff(e, z)
            coeffs = list(A.row(i)) + list(B.row(i))
            # derivatives free of the state and noises: the update is affine, e = A y + B z + e(0)
            rest = e.subs({y: 0 for y in free})
            if any(c.has(*free) for c in coeffs if free) or sp.simplify(rest) != 0:
                raise ValueError(f"the update of entry {i} is not linear in the state and the noises: {e}")
        return A, B

    @property
    def A(self) -> sp.Matrix:
        return self.matrices[0]

    @property
    def B(self) -> sp.Matrix:
        return self.matrices[1]

    @property
    def Q(self) -> sp.Matrix:
        """Injected covariance B B^T."""
        return self.B * self.B.T

    def scalar(self) -> Step:
        """The :class:`Step` view of a one-entry update (gain A, noise variance B B^T)."""
        if len(self.state) != 1:
            raise ValueError("scalar() needs a one-entry state")
        return Step(gain=self.A[0, 0], noise=self.Q[0, 0], parts=dict(self.parts))


@dataclass(frozen=True, eq=False)
class Sampler:
    """A sampler = its state, its kinds of step, and the plan saying which kind runs where.

    ``process`` names the coordinates the updates are written in (``"vp"``: ``alpha_bar``,
    ``"ve"``: ``sigma``, ``"flow"``: ``t``); ``white`` is the variance of the sampler's own white
    start at the noisiest level (slot 0 of the first step), in those coordinates (VP 1, VE
    ``sigma^2``: k-diffusion's ``x = randn * sigmas[0]``, flow 1).
    """

    name: str
    process: Process
    title: str
    citation: str
    description: str
    entries: tuple[Entry, ...]
    kinds: Mapping[str, Update]
    plan: Callable[[int], Sequence[PlanStep]] = default_plan
    #: Parameter symbols in the fixed argument order of compiled functions.
    params: tuple[sp.Symbol, ...] = ()
    #: Per-step parameters (values supplied by the plan, e.g. churn's gamma_i).
    step_params: tuple[sp.Symbol, ...] = ()
    #: Options this instance was built with (e.g. {"variance": "posterior"}), for display and keys.
    options: Mapping[str, object] = field(default_factory=dict)
    #: Variance of the white start in native coordinates, written in the slot-0 level symbol.
    white: Optional[sp.Expr] = None
    #: Order of convergence the method claims (deterministic: to the probability-flow ODE).
    order: int = 1
    #: True when the sampler injects fresh noise (it then tends to the data spectrum, not the ODE's).
    stochastic: bool = False
    #: Name of the option this instance was built with (e.g. "posterior"), for display.
    variant: str = ""

    def __post_init__(self) -> None:
        if not self.entries or self.entries[0].kind != "sample":
            raise ValueError("the first state entry must be the sample (kind 'sample')")
        for name, upd in self.kinds.items():
            if tuple(upd.state) != tuple(e.symbol for e in self.entries):
                raise ValueError(f"kind {name!r}: its state must be {tuple(e.name for e in self.entries)}")

    # -- views --------------------------------------------------------------------------------
    @property
    def m(self) -> int:
        """Number of state entries."""
        return len(self.entries)

    @property
    def is_scalar(self) -> bool:
        return self.m == 1

    @property
    def white_variance(self) -> sp.Expr:
        if self.white is not None:
            return self.white
        return slot_level(self.process, 0) ** 2 if self.process == "ve" else sp.Integer(1)

    @property
    def step(self) -> Step:
        """Scalar view of the ``step`` kind (one-entry samplers)."""
        return self.kinds["step"].scalar()

    @property
    def final(self) -> Step:
        """Scalar view of the ``final`` kind, with the clean level substituted for slot 1."""
        upd = self.kinds["final"]
        st = upd.scalar()
        sub = {slot_level(self.process, 1): clean_value(self.process)}
        return Step(gain=st.gain.subs(sub), noise=st.noise.subs(sub), parts=dict(st.parts))

    def steps_for(self, K: int, levels: Optional[Sequence[float]] = None, params: Optional[Mapping[str, float]] = None
                  ) -> tuple[PlanStep, ...]:
        """The plan for a K-level schedule, validated (``levels``/``params``: numeric values, if known)."""
        out = []
        for item in self.plan(K, levels, params, **dict(self.options)):
            kind, idx = item[0], tuple(item[1])
            prm = dict(item[2]) if len(item) > 2 else {}
            if kind not in self.kinds:
                raise ValueError(f"plan of {self.name!r} names an unknown kind {kind!r}")
            if len(idx) != len(self.kinds[kind].slots):
                raise ValueError(f"plan of {self.name!r}: kind {kind!r} reads {len(self.kinds[kind].slots)} levels")
            out.append((kind, idx, prm))
        return tuple(out)

    def _repr_latex_(self) -> str:
        """Jupyter display: the step map of this sampler."""
        upd = self.kinds["step"] if "step" in self.kinds else next(iter(self.kinds.values()))
        if self.is_scalar:
            st = upd.scalar()
            return (
                f"{self.title}: $x_s = g(S)\\,x_t + \\sqrt{{n}}\\,z$ with "
                f"$g(S) = {sp.latex(st.gain)}$ and $n = {sp.latex(st.noise)}$"
            )
        return f"{self.title}: $y_{{i+1}} = A\\,y_i + B\\,z$ with $A = {sp.latex(upd.A)}$"


def from_module(module_name: str, *, kinds: Mapping[str, Update], title: str, citation: str, description: str,
                options: Optional[Mapping[str, object]] = None, **extra: object) -> Sampler:
    """A :class:`Sampler` whose name, process, entries, plan and parameters come from a sampler
    module's metadata (see :mod:`symsched.symbolic.plan`); checks the kinds against ``KINDS``."""
    import sys

    module = sys.modules[module_name]
    declared = dict(getattr(module, "KINDS"))
    for name, upd in kinds.items():
        if declared.get(name) != tuple(upd.slots):
            raise ValueError(f"{module.__name__}: kind {name!r} reads slots {upd.slots}, KINDS says {declared.get(name)}")
    if set(declared) != set(kinds):
        raise ValueError(f"{module.__name__}: KINDS {sorted(declared)} but build() made {sorted(kinds)}")
    return Sampler(
        name=getattr(module, "NAME", module.__name__.rsplit(".", 1)[-1]),
        process=getattr(module, "PROCESS"),
        title=title,
        citation=citation,
        description=description,
        entries=tuple(Entry(n, k) for n, k in getattr(module, "ENTRIES")),
        kinds=dict(kinds),
        plan=getattr(module, "plan", default_plan),
        params=tuple(param(p) for p in getattr(module, "PARAMS", ())),
        step_params=tuple(param(p) for p in getattr(module, "STEP_PARAMS", ())),
        options=dict(options or {}),
        **extra,  # type: ignore[arg-type]
    )
