"""Kernel builders: which symbolic expressions become which compiled functions.

Every step of every sampler becomes two compiled functions (built from :mod:`.canonical`):

- a **level function** ``coeffs(c_j, s_j, l_j for each slot..., params...) -> [k_0, k_1, ...]``: every
  quantity of the step that depends on the levels only, evaluated once for all steps of the same
  kind (arrays over steps) in ``numpy.longdouble``, whose exponent range (x86-64: 1e+-4932) holds
  every square and product of float64 levels (``c^2`` for ``alpha_bar = 1e-320``, ``sigma^2`` for
  ``sigma = 1.7e308``) without underflow or overflow;
- a **mode function** ``entries(S, k_0, k_1, ...) -> [A_00, A_01, ..., B_00, ...]``: the state-space
  matrices of the step for every mode, each entry ``K S^n prod_i F_i(S)^{e_i}`` with polynomial
  factors ``F_i`` in Horner form. A twin in ``T = 1/S`` (``F_i(S) = S^{deg} F~_i(T)``) serves modes
  with ``S > 1``, so no power of ``S`` overflows up to the float64 maximum.

With ``grad`` the mode function also returns the derivative of every entry with respect to the
log-SNR of every slot (``dA/dl_j``, product rule on the factors, no division by a numerator), and
the level function the coefficients it needs. ``init`` kernels give the starting variance and its
derivative; ``levels`` kernels map a user's level coordinate to ``(c, s, l)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

from .codegen import compile_kernel
from .divergence import divergence_kernel  # generated from the stable ratio form (issue 14)

__all__ = [
    "StepKernels",
    "step_kernels",
    "init_kernel",
    "levels_kernel",
    "gap_kernel",
    "divergence_kernel",
    "ratio_divergence_kernel",
    "w2_complement_kernel",
    "denoiser_kernel",
    "marginal_kernel",
    "native_scale_kernel",
    "kernel_key",
]

Kernel = Callable[..., list[Any]]


def kernel_key(name: str, options: Sequence[tuple[str, Any]], kind: str, modes: Sequence[str]) -> str:
    opts = ",".join(f"{k}={v}" for k, v in options)
    return f"{name}[{opts}]:{kind}:{'/'.join(m or '-' for m in modes)}"


# ---------------------------------------------------------------------------------------------
# splitting an entry into level coefficients and a polynomial structure in S
# ---------------------------------------------------------------------------------------------
class _Coefficients:
    """Level-only expressions, each given one symbol ``{prefix}{i}`` (equal expressions share it)."""

    def __init__(self, prefix: str = "k") -> None:
        self.exprs: list[Any] = []
        self.index: dict[Any, int] = {}
        self.prefix = prefix

    def symbol(self, expr: Any) -> Any:
        import sympy as sp

        if expr.is_number:
            return expr
        key = sp.srepr(expr)
        if key not in self.index:
            self.index[key] = len(self.exprs)
            self.exprs.append(expr)
        return sp.Symbol(f"{self.prefix}{self.index[key]}", real=True)


def _structure(expr: Any, S: Any, _retry: bool = True) -> tuple[Any, Any, list[tuple[list[Any], Any]], list[Any]]:
    """expr = K S^n prod F_i(S)^e_i: (K, n, [(coefficients of F_i, low to high), e_i], other factors).

    An expression that is rational in S but not written as a product of polynomials is first put
    over a common denominator (numerator and denominator polynomials in S)."""
    import sympy as sp

    K = sp.Integer(1)
    n = sp.Integer(0)
    polys: list[tuple[list[Any], Any]] = []
    other: list[Any] = []
    for f in sp.Mul.make_args(expr):
        base, e = f.as_base_exp()
        if not base.has(S):
            K *= f
        elif base == S:
            n += e
        elif base.is_polynomial(S) and e.is_Integer:
            poly = sp.Poly(sp.expand(base), S)
            coeffs = list(reversed(poly.all_coeffs()))
            if coeffs[0] == 0:  # a factor S^k inside the polynomial
                k = next(i for i, c in enumerate(coeffs) if c != 0)
                n += k * e
                coeffs = coeffs[k:]
            polys.append((coeffs, e))
        else:
            other.append(f)
    if other and _retry:
        num, den = sp.fraction(sp.together(expr))
        if num.is_polynomial(S) and den.is_polynomial(S):
            return _structure(sp.Mul(num, sp.Pow(den, -1), evaluate=False), S, _retry=False)
    return K, n, polys, other


def _horner(coeffs: Sequence[Any], x: Any) -> Any:
    import sympy as sp

    out = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        out = sp.Add(c, sp.Mul(x, out, evaluate=False), evaluate=False)
    return out


#: Derivatives larger than this (SymPy count_ops) are not passed through sympy.simplify, whose cost grows
#: steeply with size (minutes for LMS's order-4 Lagrange weights); they are evaluated as differentiated.
_SIMPLIFY_MAX_OPS = 150


def _simplify(expr: Any) -> Any:
    """sympy.simplify for small expressions, the expression itself for large ones."""
    import sympy as sp

    return sp.simplify(expr) if sp.count_ops(expr) <= _SIMPLIFY_MAX_OPS else expr


def _d_level(expr: Any, j: int, ordinary: Sequence[int] = ()) -> Any:
    """d expr / d l_j with c_j = sqrt(sigmoid(l_j)), s_j = sqrt(sigmoid(-l_j)) (dc = c s^2/2,
    ds = -s c^2/2) and the gaps delta_a = l_b - l_a between consecutive ``ordinary`` slots a < b."""
    import sympy as sp

    from ..symbolic.symbols import c_slot, gap_slot, l_slot, s_slot

    c, s, l = c_slot(j), s_slot(j), l_slot(j)
    out = sp.diff(expr, l) + c * s**2 / 2 * sp.diff(expr, c) - s * c**2 / 2 * sp.diff(expr, s)
    srt = sorted(ordinary)
    for a, b in zip(srt[:-1], srt[1:]):
        if a == j:
            out -= sp.diff(expr, gap_slot(a))
        elif b == j:
            out += sp.diff(expr, gap_slot(a))
    return out


@dataclass(frozen=True)
class _Entry:
    """One entry in split form, its coefficient symbols already allocated."""

    K: Any
    n: Any
    polys: tuple[tuple[tuple[Any, ...], Any], ...]
    other: tuple[Any, ...]

    def value(self, x: Any, T: Any = None) -> Any:
        """The mode expression in S (``T=None``) or in T = 1/S (``x`` then is S, the net power only)."""
        import sympy as sp

        if T is None:
            parts = [self.K, x**self.n] + [_horner(c, x) ** e for c, e in self.polys] + list(self.other)
            return sp.Mul(*parts)
        net = self.n + sum((len(c) - 1) * e for c, e in self.polys)
        parts = [self.K, x**net] + [_horner(list(reversed(c)), T) ** e for c, e in self.polys]
        parts += [o.subs(x, 1 / T) for o in self.other]
        return sp.Mul(*parts)


@dataclass(frozen=True)
class _TreeEntry:
    """One entry kept as its expression tree, every maximal S-free subexpression a level coefficient: for steps
    whose polynomial form in S cancels (the continuous-time schemes: a Runge-Kutta gain over a common
    denominator has coefficients ~ (Delta beta)^4 that cancel to the value 1 at S = 1, losing every digit for a
    long horizon). The mode code then evaluates the stages as the scheme composes them."""

    expr: Any

    def value(self, x: Any, T: Any = None) -> Any:
        """The tree in S (``T=None``), or its twin in T = 1/S: every sum linear in S, ``a S + b``, becomes
        ``(a + b T)/T``, so that the powers of T cancel inside each product (``E (S - 1)/(E S + M)`` becomes
        ``E (1 - T)/(E + M T)``) and no intermediate grows with S."""
        return self.expr if T is None else _over_T(self.expr, x, T)


def _over_T(e: Any, S: Any, T: Any) -> Any:
    import sympy as sp

    if e == S:
        return 1 / T
    if not e.has(S):
        return e
    if e.is_Add:
        lin = [a for a in e.args if a.has(S)]
        if all(not (a / S).has(S) for a in lin):
            slope = sp.Add(*[a / S for a in lin])
            rest = sp.Add(*[a for a in e.args if not a.has(S)])
            return (slope + rest * T) / T
        terms = [_over_T(a, S, T) for a in e.args]  # a power of T common to every term is taken out of the sum, so
        powers = [a.as_powers_dict().get(T, 0) for a in terms]  # that it cancels the factors around it:
        p = min(powers) if all(x > 0 for x in powers) else max(powers) if all(x < 0 for x in powers) else 0
        return T**p * sp.Add(*[a / T**p for a in terms])  # (1 - T)/T * (T a + T b) is (1 - T)(a + b)
    return e.func(*[_over_T(a, S, T) for a in e.args])


def _split_entry(expr: Any, S: Any, coeffs: _Coefficients) -> _Entry:
    import sympy as sp

    K, n, polys, other = _structure(expr, S)
    for i, (cs, e) in enumerate(polys):  # fold K into a numerator factor: one multiplication less per mode
        if e == 1 and K != 1:
            polys[i] = ([K * c for c in cs], e)
            K = sp.Integer(1)
            break
    return _Entry(
        K=coeffs.symbol(K),
        n=n,
        polys=tuple((tuple(coeffs.symbol(c) for c in cs), e) for cs, e in polys),
        other=tuple(_coefficientize(o, S, coeffs) for o in other),
    )


def _coefficientize(expr: Any, S: Any, coeffs: _Coefficients) -> Any:
    """Replace every maximal S-free subexpression by a level coefficient (so mode code sees only S and k's)."""
    if not expr.has(S):
        return coeffs.symbol(expr)
    if expr == S or not expr.args:
        return expr
    return expr.func(*[_coefficientize(a, S, coeffs) for a in expr.args])


def _gradient_basis(expr: Any, S: Any, T: Any, coeffs: _Coefficients, gslots: Sequence[int]
                    ) -> tuple[list[Any], list[Any], list[list[Any]]]:
    """d expr/d l_j = sum_r Gamma[r][j] G_r(S): (basis G_r in S, basis in T = 1/S, Gamma level coefficients).

    With expr = K S^n prod F_i^{e_i}: G_0 = S^n prod F^e (coefficient dK/dl_j) and, for every factor i
    and degree d, G_{i,d} = K S^{n+d} F_i^{e_i - 1} prod_{l != i} F_l^{e_l} (coefficient e_i dk_{i,d}/dl_j).
    The basis does not depend on j, so the adjoint sweep forms one inner product per basis function
    for all levels of the step at once, and no numerator factor is ever divided by.
    """
    import sympy as sp

    K, n, polys, other = _structure(expr, S)
    for i, (cs, e) in enumerate(polys):  # same folding of K as _split_entry
        if e == 1 and K != 1:
            polys[i] = ([K * c for c in cs], e)
            K = sp.Integer(1)
            break
    sym = coeffs.symbol
    if other:  # not polynomial in S: one basis function per slot, the derivative itself
        d = [_simplify(_d_level(expr, j, gslots)) for j in gslots]
        eye = [[sp.Integer(int(a == b)) for b in range(len(gslots))] for a in range(len(gslots))]
        return d, [x.subs(S, 1 / T) for x in d], eye
    net = n + sum((len(cs) - 1) * e for cs, e in polys)
    F_s = [_horner([sym(c) for c in cs], S) for cs, _ in polys]
    F_t = [_horner([sym(c) for c in reversed(cs)], T) for cs, _ in polys]
    exps = [e for _, e in polys]
    bs, bt, gamma = [], [], []
    dK = [_simplify(_d_level(K, j, gslots)) for j in gslots]
    if any(d != 0 for d in dK):
        bs.append(S**n * sp.Mul(*[F**e for F, e in zip(F_s, exps)]))
        bt.append(S**net * sp.Mul(*[F**e for F, e in zip(F_t, exps)]))
        gamma.append([sym(d) for d in dK])
    for i, (cs, e) in enumerate(polys):
        rest_s = sp.Mul(*[F**f for k, (F, f) in enumerate(zip(F_s, exps)) if k != i])
        rest_t = sp.Mul(*[F**f for k, (F, f) in enumerate(zip(F_t, exps)) if k != i])
        deg = len(cs) - 1
        for d, c in enumerate(cs):
            dc = [_simplify(_d_level(c, j, gslots)) for j in gslots]
            if all(x == 0 for x in dc):
                continue
            bs.append(sym(K) * S ** (n + d) * F_s[i] ** (e - 1) * rest_s)
            bt.append(sym(K) * S**net * T ** (deg - d) * F_t[i] ** (e - 1) * rest_t)
            gamma.append([sym(e * x) for x in dc])
    return bs, bt, gamma


# ---------------------------------------------------------------------------------------------
# step kernels
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepKernels:
    """The compiled functions of one (sampler, options, kind, slot modes).

    ``level(*level_args)`` -> the ``n_coeffs`` mode coefficients, then (with ``grad``) the gradient
    coefficients ``Gamma`` (``n_basis[e]`` rows per nonzero entry e, ``len(grad_slots)`` columns each,
    flattened row-major); ``mode_s(S, *coeffs, ws)`` / ``mode_t(S, T, *coeffs, ws)`` -> ``m*m`` entries
    of A (row-major) then ``m*q`` of B, then with ``grad`` the basis functions of every nonzero entry
    (``dA_e/dl_j = sum_r Gamma[e][r, j] G_{e,r}``). Zero entries come back as the number 0.
    """

    m: int
    q: int
    slots: tuple[int, ...]
    grad_slots: tuple[int, ...]
    level_args: tuple[str, ...]
    level: Kernel
    mode_s: Kernel
    mode_t: Kernel
    n_coeffs: int = 0
    n_basis: tuple[int, ...] = ()
    #: indices of the structurally nonzero entries (A then B), in the order of ``n_basis``
    nonzero: tuple[int, ...] = ()


def _gamma_exprs(b: dict[str, Any]) -> list[Any]:
    """The Gamma coefficients of the gradient basis as level expressions (coefficient symbols resolved)."""
    import sympy as sp

    sub = {sp.Symbol(f"k{i}", real=True): e for i, e in enumerate(b["coeffs"])}
    return [sp.sympify(g).xreplace(sub) for g in b["gammas"]]


def _level_arg_symbols(slots: Sequence[int], modes: Sequence[str], params: Sequence[Any]) -> list[Any]:
    """Level-function arguments: (c_j, s_j, l_j) of every ordinary slot, then the gaps l_next - l_j
    between consecutive ordinary slots (sorted), then the parameters."""
    from ..symbolic.symbols import c_slot, gap_slot, l_slot, s_slot

    ordinary = [j for j, mode in zip(slots, modes) if mode == ""]
    out: list[Any] = []
    for j in ordinary:
        out += [c_slot(j), s_slot(j), l_slot(j)]
    srt = sorted(ordinary)
    out += [gap_slot(a) for a in srt[:-1]]
    return out + list(params)


_UNDEFINED: dict[tuple[Any, ...], Exception] = {}


def step_kernels(name: str, options: tuple[tuple[str, Any], ...], kind: str, modes: tuple[str, ...],
                 grad: bool = False, values: tuple[tuple[str, str], ...] = ()) -> StepKernels:
    """Compiled kernels of ``kind`` of sampler ``name``; a step found undefined (an unbounded limit at an
    end of the level range) raises the same error again without redoing the symbolic limit. ``values``
    pins parameters to their class (``(name, "0" | "+" | "inf")``; see :func:`pinned_values`)."""
    key = (name, options, kind, modes, values)
    if key in _UNDEFINED:
        raise _UNDEFINED[key]
    try:
        return _step_kernels(name, options, kind, modes, grad, values)
    except ValueError as exc:
        from ..symbolic.limits import UndefinedStep

        if isinstance(exc, UndefinedStep):
            _UNDEFINED[key] = exc
        raise


def pinned_step(build: Callable[[tuple[tuple[str, str], ...]], Any], modes: Sequence[str],
                params: Mapping[str, float], by_value: bool = False) -> Any:
    """``build(values)`` with the parameter classes of :func:`pinned_values`; where the limit at pure noise for
    a positive parameter of unknown size fails (a limit that depends on more than the sign), again with the
    values themselves as exact rationals (slower to derive, once per value; its error stands then; ValueError
    naming the parameters whose rational is too long to print, e.g. eta = 1e-300). ``by_value``: the sampler's
    ``ZERO_LIMIT_BY_VALUE`` (``dpmpp_sde``, whose half-step SymPy cannot take per class), values at once."""
    from .codegen import _BadEntry

    values = pinned_values(modes, params)
    if not by_value:
        try:
            return build(values)
        except ValueError as exc:
            from ..symbolic.limits import UndefinedStep  # SymPy is imported only when a derivation failed

            if not isinstance(exc, UndefinedStep) or "+" not in dict(values).values():
                raise
    exact = tuple((p, repr(float(v)) if c == "+" else c) for (p, c), v in zip(values, params.values()))
    try:
        return build(exact)
    except _BadEntry:
        given = ", ".join(f"{p}={v}" for p, v in exact if v not in ("0", "inf"))
        raise ValueError(f"{given}: the step from alpha_bar = 0 is derived for these values, too extreme to derive "
                         "exactly; use 0 or a value nearer 1, or start from a finite level") from None


step_kernels.cache_clear = lambda: _step_kernels.cache_clear()  # type: ignore[attr-defined]


def pinned_values(modes: Sequence[str], params: Mapping[str, float]) -> tuple[tuple[str, str], ...]:
    """The parameter classes a step's kernels are derived for: for a step from alpha_bar = 0 (its limit may
    depend on whether a parameter is 0, see :func:`canonical.canonical_step`) each parameter's ``"0"``, ``"+"``
    or ``"inf"``; none otherwise. The kernels take every parameter's value as an argument."""
    if "zero" not in modes:
        return ()
    from ..symbolic.plan import param_classes

    return param_classes({p: float(v) for p, v in params.items()})


@lru_cache(maxsize=None)
def _step_kernels(name: str, options: tuple[tuple[str, Any], ...], kind: str, modes: tuple[str, ...],
                  grad: bool = False, values: tuple[tuple[str, str], ...] = ()) -> StepKernels:
    """Compiled kernels of ``kind`` of sampler ``name`` (built with ``options``) for slot ``modes``.

    ``modes[j]`` is ``""`` for an ordinary level, ``"zero"`` for alpha_bar = 0 and ``"clean"`` for the
    clean end. Nothing is imported from SymPy when the kernels are in the disk cache.
    """
    from ..symbolic import sampler_module

    mod = sampler_module(name)
    slots = tuple(mod.KINDS[kind])

    def source() -> dict[str, Any]:
        from ..symbolic import get_sampler
        from .canonical import canonical_step

        cs = canonical_step(get_sampler(name, **dict(options)), kind, modes, values)
        return dict(entries=list(cs.A) + list(cs.B), q=cs.B.cols,
                    level_args=_level_arg_symbols(slots, modes, cs.params),
                    gslots=[j for j, mo in zip(slots, modes) if mo == ""] if grad else [])

    key = kernel_key(name, options, kind, modes) + (":grad" if grad else "")
    if values:
        key += "{" + ",".join(f"{p}={v}" for p, v in values) + "}"
    return compile_step(key, source, m=len(mod.ENTRIES), slots=slots, grad=grad)


def compile_step(key: str, source: Callable[[], dict[str, Any]], *, m: int, slots: Sequence[int] = (0, 1),
                 grad: bool = False) -> StepKernels:
    """The :class:`StepKernels` of one step given by ``source() -> {entries, q, level_args, gslots}``:
    the ``m*m + m*q`` entries of A then B (SymPy, in ``S`` and the level arguments), the level
    function's argument symbols and, with ``grad``, the slots whose log-SNR the gradient is taken in
    (optional ``tree``: keep each entry as its expression tree, :class:`_TreeEntry`, not as a rational
    function of S; no gradient).
    ``source`` runs (and SymPy is imported) only when a kernel is not in the cache."""
    built: dict[str, Any] = {}

    def build_all() -> dict[str, Any]:
        if built:
            return built
        import sympy as sp

        from ..symbolic.symbols import S

        src = source()
        T = sp.Symbol("T", positive=True)
        coeffs = _Coefficients()
        entries = src["entries"]
        tree = bool(src.get("tree", False))
        if tree and grad:
            raise ValueError(f"{key}: a tree entry has no gradient basis")
        split = [None if e == 0 else _TreeEntry(_coefficientize(e, S, coeffs)) if tree
                 else _split_entry(e, S, coeffs) for e in entries]
        outs_s = [sp.Integer(0) if s is None else s.value(S) for s in split]
        outs_t = [sp.Integer(0) if s is None else s.value(S, T) for s in split]
        gslots = list(src["gslots"]) if grad else []
        n_coeffs = len(coeffs.exprs)
        gammas: list[Any] = []
        n_basis: list[int] = []
        if grad:
            gco = _Coefficients()
            gco.exprs, gco.index = list(coeffs.exprs), dict(coeffs.index)
            for e in entries:
                if e == 0:
                    continue
                bs, bt, gamma = _gradient_basis(e, S, T, gco, gslots)
                outs_s += bs
                outs_t += bt
                n_basis.append(len(bs))
                gammas += [g for row in gamma for g in row]
            coeffs = gco
        built.update(
            q=src["q"], gslots=tuple(gslots), coeffs=coeffs.exprs, n_coeffs=n_coeffs, gammas=gammas,
            n_basis=n_basis, nonzero=[i for i, e in enumerate(entries) if e != 0],
            level_args=list(src["level_args"]), outs_s=outs_s, outs_t=outs_t, T=T, S=S,
        )
        return built

    def build_level() -> tuple[list[Any], list[Any], int]:
        import sympy as sp

        b = build_all()
        args = b["level_args"]
        return args, (list(b["coeffs"]) or [sp.Integer(0)]) + _gamma_exprs(b), len(args)

    def build_mode(which: str) -> Callable[[], tuple[list[Any], list[Any], int]]:
        def build() -> tuple[list[Any], list[Any], int]:
            import sympy as sp

            b = build_all()
            ks = [sp.Symbol(f"k{i}", real=True) for i in range(max(1, len(b["coeffs"])))]
            if which == "s":
                return [b["S"], *ks], b["outs_s"], 1
            return [b["S"], b["T"], *ks], b["outs_t"], 2

        return build

    def build_meta() -> tuple[list[Any], list[Any], int]:
        import sympy as sp

        b = build_all()
        nargs = len(b["level_args"])
        head = [b["q"], nargs, max(1, len(b["coeffs"])), len(b["gslots"]), len(b["nonzero"]), *b["gslots"],
                *b["nonzero"], *b["n_basis"]]
        return [], [sp.Integer(v) for v in head], 0

    meta = [int(v) for v in compile_kernel(f"meta:{key}", build_meta)()]
    q, nargs, n_coeffs, ng, nnz = meta[:5]
    return StepKernels(
        m=m,
        q=q,
        slots=tuple(slots),
        grad_slots=tuple(meta[5:5 + ng]),
        level_args=tuple(str(i) for i in range(nargs)),
        level=compile_kernel(f"level:{key}", build_level),
        mode_s=compile_kernel(f"mode_s:{key}", build_mode("s"), style="inplace"),
        mode_t=compile_kernel(f"mode_t:{key}", build_mode("t"), style="inplace"),
        n_coeffs=n_coeffs,
        nonzero=tuple(meta[5 + ng:5 + ng + nnz]),
        n_basis=tuple(meta[5 + ng + nnz:]),
    )


# ---------------------------------------------------------------------------------------------
# starting variance, level conversions, denoiser
# ---------------------------------------------------------------------------------------------
def init_kernel(process: str, init: str) -> Kernel:
    """``init(S, c0, s0, l0) -> [v0, dv0/dl0]``: variance of the starting sample in the VP scale.

    White: the sampler's own white start moved to the VP scale (VP 1, VE ``sigma^2 c^2 = s^2``,
    flow ``(c + s)^2``); exact: the forward marginal ``c^2 S + s^2``.
    """

    def build() -> tuple[list[Any], list[Any], int]:
        import sympy as sp

        from ..symbolic.symbols import S, c_slot, l_slot, s_slot

        c, s, l = c_slot(0), s_slot(0), l_slot(0)
        if init == "exact":
            v0 = _vp_marginal(c, s)
        else:
            v0 = {"vp": sp.Integer(1), "ve": s**2, "flow": (c + s) ** 2}[process]
        return [S, c, s, l], [v0, _d_level(v0, 0)], 1

    return compile_kernel(f"init:{process}:{init}", build)


def levels_kernel(coordinate: str) -> Kernel:
    """``levels(x) -> [c, s, l]`` for x in ``"alpha_bar"``, ``"sigma"``, ``"t"`` (flow) or ``"log_snr"``.

    Written in forms that are exact at both ends (alpha_bar = 0: c = 0, s = 1, l = -inf; sigma = inf
    likewise; the clean end c = 1, s = 0, l = +inf); evaluate in ``numpy.longdouble``.
    """

    def build() -> tuple[list[Any], list[Any], int]:
        from ..symbolic.forward import canonical_levels

        x, exprs = canonical_levels(coordinate)
        return [x], exprs, 1

    return compile_kernel(f"levels:{coordinate}", build)


def gap_kernel(coordinate: str) -> Kernel:
    """``gap(x_a, x_b) -> [l_b - l_a]``: the log-SNR gap of two finite levels in ``coordinate``, without the
    cancellation of subtracting two log-SNRs (:func:`symsched.symbolic.forward.level_gap`)."""

    def build() -> tuple[list[Any], list[Any], int]:
        from ..symbolic.forward import level_gap

        a, b, gap = level_gap(coordinate)
        return [a, b], [gap], 2

    return compile_kernel(f"gap:{coordinate}", build)


def denoiser_kernel() -> Kernel:
    """``x0(S, c, s) -> [c S / (c^2 S + s^2)]``: the Wiener coefficient of x0_hat on the VP sample."""

    def build() -> tuple[list[Any], list[Any], int]:
        from ..symbolic.forward import vp_denoiser
        from ..symbolic.symbols import S, c_slot, s_slot

        c, s = c_slot(0), s_slot(0)
        x0, _ = vp_denoiser(c**2 / (c**2 + s**2))
        from .canonical import stabilize

        return [S, c, s], [stabilize(x0)], 1

    return compile_kernel("denoiser:x0", build)


def _vp_marginal(c: Any, s: Any) -> Any:
    """The forward marginal variance of a mode at the level (c, s) = (sqrt(ab), sqrt(1 - ab)), in the VP scale:
    :func:`symsched.symbolic.forward.vp_variance` written in the canonical coordinates, ``c^2 S + s^2``."""
    import sympy as sp

    from ..symbolic.forward import vp_variance

    return sp.expand(sp.cancel(vp_variance(c**2 / (c**2 + s**2)) * (c**2 + s**2)))


def marginal_kernel() -> Kernel:
    """``marginal(S, c, s) -> [c^2 S + s^2]``: the forward (VP-scale) marginal variance of a mode at a level,
    from :func:`symsched.symbolic.forward.vp_variance` (the same expression the exact start uses)."""

    def build() -> tuple[list[Any], list[Any], int]:
        from ..symbolic.symbols import S, c_slot, s_slot

        c, s = c_slot(0), s_slot(0)
        return [S, c, s], [_vp_marginal(c, s)], 1

    return compile_kernel("marginal:vp", build)


def native_scale_kernel(process: str) -> Kernel:
    """``scale(c, s) -> [var(x_native) / var(x_vp)]`` at a level: 1 (VP), ``1 + sigma^2`` (VE), ``(1 - t)^2 + t^2``
    (flow); the inverse square of :func:`symsched.symbolic.limits.native_scale` (the factor the state-space
    steps are converted with), in the canonical coordinates. Infinite at VE's ``c = 0`` (sigma = inf)."""

    def build() -> tuple[list[Any], list[Any], int]:
        from ..symbolic.symbols import c_slot, s_slot
        from ..symbolic.limits import native_scale
        from .canonical import _native_substitution

        c, s = c_slot(0), s_slot(0)
        return [c, s], [1 / native_scale(process, _native_substitution(process, 0)) ** 2], 2

    return compile_kernel(f"native-scale:{process}", build)


# ---------------------------------------------------------------------------------------------
# divergences
# ---------------------------------------------------------------------------------------------
def ratio_divergence_kernel(name: str) -> Kernel:
    """``f(rho, S) -> [term, dterm/drho]`` with the generated variance written ``P = rho S`` (S > 0).

    KL(data||gen) = (1/rho - 1 + log rho)/2 and reverse KL = (rho - 1 - log rho)/2 do not involve S at
    all, W2^2 = S (sqrt(rho) - 1)^2: no ratio of two tiny or huge numbers is ever formed. KL is
    :func:`symsched.symbolic.divergences.kl_of_ratio` of its ratio ``r`` with ``r - 1`` written ``(1 - rho)/rho``
    (forward) or ``rho - 1`` (reverse), exact differences near rho = 1, so that a KL of order (rho - 1)^2 keeps its
    digits (the simplified ``(rho (log rho - 1) + 1)/(2 rho)`` rounded ``log rho - 1`` and returned 0 for 4.5e-18).
    """

    def build() -> tuple[Sequence[Any], Sequence[Any], int]:
        import sympy as sp

        from ..symbolic.divergences import divergence, kl_of_ratio
        from ..symbolic.symbols import S

        rho = sp.Symbol("rho", positive=True)
        if name == "w2":
            f = sp.simplify(sp.expand_log(divergence(name, rho * S, S), force=True))
        else:  # (the check: it equals the divergence itself)
            r_minus_1, t = ((1 - rho) / rho, -sp.log(rho)) if name == "kl" else (rho - 1, sp.log(rho))
            f = kl_of_ratio(r_minus_1 + 1, t)
            assert sp.simplify(sp.expand_log(f - divergence(name, rho * S, S), force=True)) == 0
        return [rho, S], [f, sp.simplify(sp.diff(f, rho))], 2

    return compile_kernel(f"ratio-divergence:{name}", build)


def w2_complement_kernel() -> Kernel:
    """``f(m, S) -> [term, dterm/dm]``: W2^2's per-mode term in the complement ``m = P/S - 1`` of the ratio,
    ``S m^2 / (1 + sqrt(1 + m))^2`` (= S (sqrt(1 + m) - 1)^2 without the cancellation): for a mode whose output
    matches it to within rounding, given ``m`` to full relative precision (``symsched.api``'s mpmath refinement).
    Evaluated as ``q^2`` and ``2 q dq/dm`` from the compiled root ``q = sqrt(S) m / (1 + sqrt(1 + m))``: ``S m^2``
    would square ``m`` first, which underflows for a huge mode (m ~ 3e-163 at S = 1e165: a term of 2e-163 came out
    0)."""
    root = _w2_root_kernel()

    def kernel(m: Any, S: Any) -> list[Any]:
        q, dq = root(m, S)
        return [q * q, 2.0 * q * dq]

    return kernel


@lru_cache(maxsize=None)
def kl_complement_mp(name: str) -> Callable[[Any], Any]:
    """mpmath ``f(m) -> [term, dterm/dm]``: KL's per-mode term in the complement ``m = P/S - 1`` of the ratio,
    :func:`symsched.symbolic.divergences.kl_of_ratio` of ``r = 1/(1 + m)`` (``"kl"``, KL(data||gen)) or ``1 + m``
    (``"kl-reverse"``), checked against the divergence's own formula when derived. For a mode whose output matches
    it to within rounding, given ``m`` to full relative precision (``symsched.api``'s mpmath refinement); the term,
    ~m^2/4, cancels in any fixed precision: evaluate it with about ``2 log10(1/|m|)`` more digits than wanted."""
    import sympy as sp

    from ..symbolic.divergences import divergence, kl_of_ratio
    from ..symbolic.symbols import S
    from .codegen import compile_mpmath

    m = sp.Symbol("m", real=True)
    r = 1 / (1 + m) if name == "kl" else 1 + m
    f = kl_of_ratio(r, sp.log(r))
    assert sp.simplify(sp.expand_log(f - divergence(name, (1 + m) * S, S), force=True)) == 0
    return compile_mpmath([m], [f, sp.diff(f, m)])


def _w2_root_kernel() -> Kernel:
    """``f(m, S) -> [q, dq/dm]``, ``q = sqrt(S) m / (1 + sqrt(1 + m))``, the square root of W2^2's complement term
    (checked against the divergence's own formula when derived)."""

    def build() -> tuple[Sequence[Any], Sequence[Any], int]:
        import sympy as sp

        from ..symbolic.divergences import divergence
        from ..symbolic.symbols import S

        m = sp.Symbol("m", real=True)
        q = sp.sqrt(S) * m / (1 + sp.sqrt(1 + m))
        assert sp.simplify(sp.expand_log(q**2 - divergence("w2", (1 + m) * S, S), force=True)) == 0
        return [m, S], [q, sp.simplify(sp.diff(q, m))], 2

    return compile_kernel("w2-complement-root", build)
