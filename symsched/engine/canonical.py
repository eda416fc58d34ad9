"""Rewrite a sampler's step matrices into the canonical, cancellation-free coordinates of the kernels.

A sampler module writes its update in its own coordinates (VE ``sigma``, VP ``alpha_bar``, flow
``t``, k-diffusion's ``t = -log sigma``). The compiled kernels instead take, for every level slot
``j`` of a step, the point ``(c_j, s_j) = (sqrt(alpha_bar), sqrt(1 - alpha_bar))`` on the unit
circle and the log-SNR ``l_j = 2 log(c_j / s_j)``. These stay finite and exact for every level:
``alpha_bar = 0`` is ``(0, 1, -inf)``, the clean end ``(1, 0, +inf)``, ``sigma = 1.7e308`` is
``c = 5.9e-309``. The rewriting, chosen once here for every sampler:

1. levels: ``sigma = s/c``, ``alpha_bar = c^2/(c^2 + s^2)``, ``t = s/(c + s)``; ``log(c/s) = l/2``
   and ``exp`` of log-SNR combinations become monomials ``prod (c/s)^k``;
2. the sample entry moves to the VP scale ``x_vp = c x_ve = (c + s) x_flow``, where its variance is
   ``c^2 S + s^2 <= max(S, 1)`` (history entries keep their data or unit scale);
3. every difference of two positive monomials of equal degree in each level, such as
   ``c_s^2 s_t^2 - c_t^2 s_s^2 = alpha_bar_s - alpha_bar_t`` (after homogenising with
   ``c^2 + s^2 = 1``), becomes ``A (-expm1(L))`` with ``L`` a combination of log-SNRs, so close
   levels lose no digits (this is the gap that the old ``sigma_t = sigma_s + h`` form provided);
4. ``c^2 + s^2`` is replaced by 1.

Slots at the ends of the level range are substituted exactly: a *clean* slot (the level after the
last step) in native coordinates, a *zero-SNR* slot (``alpha_bar = 0``) by the limit ``c -> 0``
taken symbolically (:mod:`symsched.symbolic.limits`, shared with the mpmath reference and the LaTeX); a step
whose limit is unbounded raises :class:`UndefinedStep`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import sympy as sp
from sympy.codegen.cfunctions import expm1

from ..symbolic.seeding import seeded_sympy
from ..symbolic.limits import UndefinedStep, vp_step
from ..symbolic.statespace import Sampler
from ..symbolic.symbols import c_slot, eta, gap_slot, l_slot, s_slot, slot_level

__all__ = ["canonical_step", "CanonicalStep", "UndefinedStep", "stabilize", "zeta", "numeric_param_symbols"]

#: DDIM's eta enters as zeta = 1 - eta^2 = (1 - eta)(1 + eta): sqrt(1 - ab_s - sigma_t^2) is then a
#: sum of positive terms for every eta in [0, 1]. The kernels take eta itself too: whatever is left of
#: sqrt(1 - zeta) and 1 - zeta after that rewriting is eta and eta^2 again (see :func:`_eta_back`), so that a
#: small eta keeps its digits (1 - zeta rounds eta = 1e-9 to 0 in float64).
zeta = sp.Symbol("zeta", nonnegative=True)


def numeric_param_symbols(params: Sequence[sp.Symbol]) -> list[sp.Symbol]:
    """The symbols the kernels take for the sampler parameters (eta -> zeta, eta)."""
    return [q for p in params for q in ((zeta, eta) if p == eta else (p,))]


def _param_rewrite(expr: sp.Expr) -> sp.Expr:
    return expr.subs(eta, sp.sqrt(1 - zeta))


def _eta_back(expr: sp.Expr) -> sp.Expr:
    """``sqrt(1 - zeta) -> eta`` and ``1 - zeta -> eta^2`` wherever they are left whole after the stabilising
    rewrites (e.g. the ``exp(-eta h)`` damping of the k-diffusion SDE samplers), so that they keep eta's own
    digits; zeta stays only inside the sums it was introduced for."""
    return expr.xreplace({sp.sqrt(1 - zeta): eta, 1 - zeta: eta**2})


@dataclass(frozen=True)
class CanonicalStep:
    """A step in canonical coordinates: ``y_vp' = A y_vp + B z`` with A, B in S, c_j, s_j, l_j, params."""

    A: sp.Matrix
    B: sp.Matrix
    slots: tuple[int, ...]
    modes: tuple[str, ...]
    params: tuple[sp.Symbol, ...]

    @property
    def level_symbols(self) -> tuple[sp.Symbol, ...]:
        """The canonical level symbols that occur, slot by slot: (c_j, s_j, l_j)."""
        free = set().union(*(e.free_symbols for e in list(self.A) + list(self.B))) if (self.A or self.B) else set()
        out = []
        for j in self.slots:
            for sym in (c_slot(j), s_slot(j), l_slot(j)):
                if sym in free:
                    out.append(sym)
        return tuple(out)


# ---------------------------------------------------------------------------------------------
# 1. native levels -> (c, s, l)
# ---------------------------------------------------------------------------------------------
def _native_substitution(process: str, j: int) -> sp.Expr:
    c, s = c_slot(j), s_slot(j)
    if process == "vp":
        return c**2 / (c**2 + s**2)
    if process == "ve":
        return s / c
    return s / (c + s)


def _logs_and_exps(expr: sp.Expr, slots: Sequence[int]) -> sp.Expr:
    """log(c_j) - log(s_j) -> l_j / 2, and exp of log-SNR combinations -> monomials in c/s."""
    if not expr.has(sp.log, sp.exp):
        return expr
    cs = {c_slot(j): j for j in slots}
    # a log of a rational function of the levels (VP: 1 - alpha_bar = s^2/(c^2 + s^2)) is factored first,
    # so that it splits into logs of c, s and c^2 + s^2 = 1
    expr = expr.replace(lambda e: isinstance(e, sp.log), lambda e: sp.log(sp.factor(sp.together(e.args[0]))))
    expr = sp.expand_log(expr, force=True)
    expr = expr.subs({sp.log(c**2 + s_slot(j) ** 2): 0 for c, j in cs.items()})
    expr = expr.subs({sp.log(c): l_slot(j) / 2 + sp.log(s_slot(j)) for c, j in cs.items()})
    expr = sp.expand_log(expr, force=True)

    def to_monomial(arg: sp.Expr) -> sp.Expr:
        arg = sp.expand(arg)
        rest = arg
        mono = sp.Integer(1)
        for j in slots:
            k, _ = arg.coeff(l_slot(j)).as_coeff_Add()  # a symbolic power (e^{-eta h}) stays an exp of the gaps
            if k != 0:
                mono *= (c_slot(j) / s_slot(j)) ** (2 * k)
                rest -= k * l_slot(j)
        return mono * sp.exp(rest) if rest != 0 else mono

    return expr.replace(lambda e: isinstance(e, sp.exp), lambda e: to_monomial(e.args[0]))


def gap_substitution(slots: Sequence[int]) -> dict[sp.Symbol, sp.Expr]:
    """l_j = l_(first slot) + the gaps up to j: what is left of the log-SNRs after the rewriting is
    then written in the positive gaps delta_j = l_next - l_j (the reference cancels in every
    dimensionless combination such as k-diffusion's r = h_last / h)."""
    order = sorted(slots)
    out: dict[sp.Symbol, sp.Expr] = {}
    total = l_slot(order[0])
    for a, b in zip(order[:-1], order[1:]):
        total = total + gap_slot(a)
        out[l_slot(b)] = total
    return out


# ---------------------------------------------------------------------------------------------
# 3. stabilisation: balanced binomials -> expm1 of log-SNR gaps
# ---------------------------------------------------------------------------------------------
def _level_pairs(expr: sp.Expr) -> dict[int, tuple[sp.Symbol, sp.Symbol]]:
    out: dict[int, tuple[sp.Symbol, sp.Symbol]] = {}
    for sym in expr.free_symbols:
        name = sym.name
        if name.startswith(("c_{", "s_{")) and name[3:-1].lstrip("-").isdigit():  # not e.g. s_{\mathrm{noise}}
            j = int(name[3:-1])
            out[j] = (c_slot(j), s_slot(j))
    return out


def _degree(term: sp.Expr, c: sp.Symbol, s: sp.Symbol) -> sp.Expr:
    return sp.degree(term, c) + sp.degree(term, s) if term.is_polynomial(c, s) else None


def _homogenize(poly: sp.Expr, pairs: dict[int, tuple[sp.Symbol, sp.Symbol]]) -> sp.Expr:
    """Multiply terms by (c_j^2 + s_j^2)^k so every term has the same degree in each (c_j, s_j)."""
    terms = list(sp.Add.make_args(sp.expand(poly)))
    for c, s in pairs.values():
        degs = [_degree(t, c, s) for t in terms]
        if any(d is None for d in degs):
            return poly
        top = max(degs)
        if any((top - d) % 2 for d in degs):
            return poly
        terms = [sp.expand(t * (c**2 + s**2) ** ((top - d) // 2)) if d != top else t for t, d in zip(terms, degs)]
        terms = list(sp.Add.make_args(sp.Add(*terms)))
    return sp.Add(*terms)


def _log_ratio(num: sp.Expr, den: sp.Expr, pairs: dict[int, tuple[sp.Symbol, sp.Symbol]]) -> sp.Expr | None:
    """log(num/den) for two balanced monomials in the level pairs, as a combination of log-SNRs."""
    ratio = sp.powsimp(num / den)
    total = sp.Integer(0)
    rest = ratio
    for j, (c, s) in pairs.items():
        try:
            kc = sp.degree(sp.numer(ratio), c) - sp.degree(sp.denom(ratio), c)
            ks = sp.degree(sp.numer(ratio), s) - sp.degree(sp.denom(ratio), s)
        except sp.PolynomialError:  # a level inside a radical or a symbolic power: not a monomial
            return None
        if kc + ks != 0:
            return None
        total += kc * l_slot(j) / 2
        rest = rest / (c / s) ** kc
    rest = sp.simplify(rest)
    if rest != 1:
        return None
    return total


def _binomial(poly: sp.Expr, pairs: dict[int, tuple[sp.Symbol, sp.Symbol]]) -> sp.Expr:
    """a - b with a, b balanced positive monomials in the levels -> a * (-expm1(log(b/a)))."""
    terms = sp.Add.make_args(poly)
    if len(terms) != 2:
        return poly
    pos = [t for t in terms if not t.could_extract_minus_sign()]
    neg = [-t for t in terms if t.could_extract_minus_sign()]
    if len(pos) != 1 or len(neg) != 1:
        return poly
    a, b = pos[0], neg[0]
    if not (a.is_Mul or a.is_Pow or a.is_Symbol) or not (b.is_Mul or b.is_Pow or b.is_Symbol):
        return poly
    L = _log_ratio(b, a, pairs)
    if L is None:
        return poly
    if _positive(L):  # a < b: write it as b (exp(-L) - 1), an expm1 of a non-positive argument
        return b * expm1(-L)
    return -a * expm1(L)


def _positive(L: sp.Expr) -> bool:
    """True when the log-SNR combination L is known to be > 0: k (l_j - l_i) with k > 0 and j > i
    (slots are ordered by noise level: a larger slot index is less noisy, so has a larger log-SNR)."""
    coeffs = {int(sym.name.split("{")[1][:-1]): L.coeff(sym) for sym in L.free_symbols}
    if len(coeffs) != 2 or sum(coeffs.values()) != 0:
        return False
    (i, ki), (j, kj) = sorted(coeffs.items())
    return bool(kj > 0)


def _stabilize_poly(poly: sp.Expr) -> sp.Expr:
    """Rewrite a polynomial factor: homogenise, collect by non-level symbols, fix balanced binomials."""
    if not poly.is_Add or all(not t.could_extract_minus_sign() for t in poly.args):
        return poly
    pairs = _level_pairs(poly)
    if not pairs:
        return poly
    level_syms = {x for pr in pairs.values() for x in pr}
    hom = _homogenize(poly, pairs)
    groups: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(hom)):
        indep, dep = term.as_independent(*level_syms, as_Add=False)
        coeff, mono = indep.as_coeff_Mul()
        groups[mono] = groups.get(mono, sp.Integer(0)) + coeff * dep
    out = sp.Integer(0)
    for mono, coeff in groups.items():
        coeff = sp.factor(coeff)
        factors = []
        for f in sp.Mul.make_args(coeff):
            base, expo = f.as_base_exp()
            if base.is_Add:
                base = _binomial(base, pairs)
            factors.append(base**expo)
        out += mono * sp.Mul(*factors)
    return out


def _one(expr: sp.Expr) -> sp.Expr:
    """c_j^2 + s_j^2 -> 1."""
    targets = {c**2 + s**2 for c, s in _level_pairs(expr).values()}
    if not targets:
        return expr
    return expr.replace(lambda e: e.is_Add and e in targets, lambda e: sp.Integer(1))


@seeded_sympy()
def stabilize(expr: sp.Expr) -> sp.Expr:
    """Cancellation-free form of a canonical expression (see the module docstring, steps 3-4)."""
    expr = sp.sympify(expr)
    if expr.is_number:
        return expr

    def visit(e: sp.Expr) -> sp.Expr:
        if e.is_Atom:
            return e
        if e.is_Pow and not e.exp.is_Integer:  # sqrt(...) etc.: rewrite the radicand on its own
            return visit_rational(e.base) ** e.exp
        if isinstance(e, (expm1, sp.log, sp.exp)):
            return e
        return e.func(*[visit(a) for a in e.args]) if e.args else e

    def visit_rational(e: sp.Expr) -> sp.Expr:
        e = sp.factor(sp.cancel(sp.together(e)))
        num, den = sp.fraction(e)
        parts = []
        for part in (num, den):
            factors = []
            for f in sp.Mul.make_args(part):
                base, expo = f.as_base_exp()
                if base.is_Add:
                    base = _stabilize_poly(visit(base))
                elif not base.is_Atom:
                    base = visit(base)
                factors.append(base**expo)
            parts.append(sp.Mul(*factors))
        return _one(parts[0] / parts[1])

    return visit_rational(expr)


# ---------------------------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _canonical(smp: Sampler, kind: str, modes: tuple[str, ...], values: tuple[tuple[str, str], ...] = ()
               ) -> CanonicalStep:
    upd = smp.kinds[kind]
    proc = smp.process
    lv = {j: slot_level(proc, j) for j in upd.slots}
    ordinary = [j for j, mode in zip(upd.slots, modes) if mode == ""]
    gaps = gap_substitution(ordinary) if ordinary else {}

    def finish(e: sp.Expr) -> sp.Expr:
        """An entry after its end limits (VP scale, native levels) in the canonical coordinates."""
        if e == 0:
            return sp.Integer(0)
        e = _param_rewrite(e)  # (a parameter unpinned after a limit is eta again)
        e = e.subs({lv[j]: _native_substitution(proc, j) for j in ordinary})
        e = _logs_and_exps(e, ordinary)
        e = sp.expand_log(e.subs(gaps), force=True)
        e = stabilize(e)
        return _eta_back(stabilize(e.subs(gaps)) if e.has(*gaps) else e)

    A, B = vp_step(smp, kind, modes, values, pre=_param_rewrite)
    params = tuple(numeric_param_symbols(smp.params)) + tuple(smp.step_params)
    return CanonicalStep(A=A.applyfunc(finish), B=B.applyfunc(finish), slots=tuple(upd.slots), modes=tuple(modes),
                         params=params)


def canonical_step(smp: Sampler, kind: str, modes: Sequence[str] | None = None,
                   values: Sequence[tuple[str, str]] = ()) -> CanonicalStep:
    """The canonical A, B of ``smp.kinds[kind]``; ``modes[j]`` is "", "zero" or "clean" per slot.

    ``values`` pins sampler parameters to their class, ``(name, "0" | "+" | "inf")`` pairs, before the limits
    are taken: a limit at pure noise may depend on a parameter discontinuously (``(sigma_s/sigma_t)^eta -> 0``
    for eta > 0 but 1 at eta = 0, where SymPy, given a non-negative eta, answers ``oo`` or nothing), so the
    steps from alpha_bar = 0 are derived for 0 or for a positive parameter (which the kernels then take as an
    argument, like every other step's). Pinning the value itself instead made SymPy's limits take minutes
    for eta = 0.3 and fail on eta = 1e-300 (a rational with a 300-digit denominator).
    """
    upd = smp.kinds[kind]
    modes = tuple(modes) if modes is not None else tuple("" for _ in upd.slots)
    if len(modes) != len(upd.slots):
        raise ValueError(f"modes must give one entry per slot {upd.slots}")
    return _canonical(smp, kind, modes, tuple(values))


def explicit_levels(expr: Any, process: str, slots: Sequence[int]) -> Any:  # pragma: no cover - debugging aid
    """Canonical expression back in native levels (for checks): c, s, l from the native level."""
    out = sp.sympify(expr)
    for j in slots:
        lv = slot_level(process, j)
        if process == "vp":
            c, s = sp.sqrt(lv), sp.sqrt(1 - lv)
        elif process == "ve":
            c, s = 1 / sp.sqrt(1 + lv**2), lv / sp.sqrt(1 + lv**2)
        else:
            n = sp.sqrt((1 - lv) ** 2 + lv**2)
            c, s = (1 - lv) / n, lv / n
        out = out.subs({c_slot(j): c, s_slot(j): s, l_slot(j): 2 * sp.log(c / s)})
    return out
