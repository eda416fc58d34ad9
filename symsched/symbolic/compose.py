"""Composition of steps into the spectral transfer function and the output PSD (docs/model.md §5, §9).

Every sampler is a linear state-space recursion ``y <- A y + B z`` per mode (:mod:`.statespace`);
composing K steps of its plan gives the transfer function ``H = e_0^T A_K ... A_1 e_0`` (the
response of the output to the initial sample) and the output PSD ``P = C[0, 0]`` of the covariance
recursion ``C <- A C A^T + B B^T`` started from ``C = v_init e_0 e_0^T``. For one-entry samplers this
is ``v_s = g^2 v_t + n``.
"""

from __future__ import annotations

import numbers

import sympy as sp

from .forward import flow_variance, ve_variance, vp_variance
from .statespace import Sampler, clean_value
from .symbols import alpha_bar, sigma, slot_level

__all__ = [
    "level_symbols", "init_variance", "step_matrices", "step_pairs", "transfer_function", "output_psd",
    "output_psd_closed_form", "recursion_statement", "INITS", "MAX_SYMBOLIC_STEPS", "check_steps",
]

INITS = ("white", "exact")
#: most steps a symbolic composition unrolls (its expression grows with every step; the numeric engine takes
#: schedules of up to symsched._validate.MAX_STEPS levels)
MAX_SYMBOLIC_STEPS = 64


def check_steps(K: object) -> int:
    """``K`` as the number of levels of a symbolic schedule: an integer (TypeError naming ``K`` otherwise, a bool
    included) in [1, MAX_SYMBOLIC_STEPS] (ValueError naming ``K``). Audit of 6 December: K = 0 gave an IndexError
    from output_psd and H = 1 from transfer_function."""
    if isinstance(K, bool) or not isinstance(K, numbers.Integral):
        raise TypeError(f"K must be an integer number of levels (got {K!r} of type {type(K).__name__})")
    if not 1 <= int(K) <= MAX_SYMBOLIC_STEPS:
        raise ValueError(f"K must be an integer in [1, MAX_SYMBOLIC_STEPS = {MAX_SYMBOLIC_STEPS}] (got {K!r}): a "
                         "symbolic composition unrolls every step; evaluate longer schedules numerically "
                         "(symsched.output_spectrum)")
    return int(K)


def level_symbols(smp: Sampler, K: int) -> list[sp.Symbol]:
    """The K level symbols of a composed schedule, noisiest first: [lvl_K, ..., lvl_1]; ``K`` as
    :func:`check_steps` takes it."""
    K = check_steps(K)
    if smp.process == "vp":
        make = alpha_bar
    elif smp.process == "ve":
        make = sigma
    else:
        make = lambda i: sp.Symbol(f"t_{{({i})}}", positive=True)  # noqa: E731
    return [make(i) for i in range(K, 0, -1)]


def init_variance(smp: Sampler, init: str, level: sp.Expr) -> sp.Expr:
    """Variance of the starting sample at the noisiest level ``level`` (native coordinates).

    White: the sampler's own white start (VP 1, VE sigma^2, flow 1). Exact: the forward marginal
    (VP lambda = alpha_bar S + 1 - alpha_bar, VE S + sigma^2, flow (1 - t)^2 S + t^2).
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS} (got {init!r})")
    if init == "white":
        return sp.sympify(smp.white_variance).subs(slot_level(smp.process, 0), level)
    return {"vp": vp_variance, "ve": ve_variance, "flow": flow_variance}[smp.process](level)


def step_matrices(smp: Sampler, levels: list[sp.Symbol]) -> list[tuple[sp.Matrix, sp.Matrix]]:
    """(A_k, B_k) of each step of the plan for the schedule ``levels`` (noisiest first; clean level appended)."""
    full = list(levels) + [clean_value(smp.process)]
    out = []
    for kind, idx, prm in smp.steps_for(len(levels)):
        upd = smp.kinds[kind]
        sub = {slot_level(smp.process, j): full[i] for j, i in zip(upd.slots, idx)}
        sub.update({sp.Symbol(k, real=True): v for k, v in prm.items()})
        out.append((upd.A.subs(sub), upd.B.subs(sub)))
    return out


def step_pairs(smp: Sampler, levels: list[sp.Symbol]) -> list[tuple[sp.Expr, sp.Expr]]:
    """(gain_k, noise_k) of each step of a one-entry sampler's schedule ``levels`` (final step last)."""
    if not smp.is_scalar:
        raise ValueError(f"{smp.name!r} keeps a {smp.m}-entry state: use step_matrices")
    return [(A[0, 0], (B * B.T)[0, 0] if B.cols else sp.Integer(0)) for A, B in step_matrices(smp, levels)]


def transfer_function(smp: Sampler, K: int) -> sp.Expr:
    """H(S) = e_0^T A_K ... A_1 e_0 for a K-level schedule (K steps, the last one to the clean level).

    Parameters
    ----------
    smp : Sampler
        A symbolic sampler (:func:`symsched.symbolic.get_sampler`); its process (VP, VE or flow) fixes the level
        symbols and the scale of its samples.
    K : int
        Number of levels, in [1, MAX_SYMBOLIC_STEPS] (:func:`check_steps`).

    Returns
    -------
    sympy.Expr
        H as an expression in the mode variance ``S`` and the K level symbols of :func:`level_symbols` (noisiest
        first; VP ``alpha_bar``, VE ``sigma``, flow ``t``), with the sampler's own parameters (e.g. DDIM's ``eta``)
        left as symbols: the response of the output to the initial sample in the sampler's own scale
        (dimensionless). A one-entry sampler gives the product of its step gains ``prod_k g_k(S)``.

    Raises
    ------
    TypeError
        ``K`` not an integer (a bool included).
    ValueError
        ``K`` outside [1, MAX_SYMBOLIC_STEPS].

    Source: docs/model.md §5 (``H = prod_k g_k``), §9 (state-space form); each step's (A_k, B_k) from the
    sampler's update equations in ``symsched/symbolic/samplers/``.
    """
    levels = level_symbols(smp, K)  # (checks K)
    y = sp.zeros(smp.m, 1)
    y[0] = 1
    for A, _ in step_matrices(smp, levels):
        y = A * y
    return y[0] if smp.m > 1 else sp.Mul(*[A[0, 0] for A, _ in step_matrices(smp, levels)])


def output_psd(smp: Sampler, K: int, init: str = "white") -> sp.Expr:
    """P(S) = C[0, 0] after unrolling C <- A C A^T + B B^T from C = v_init e_0 e_0^T (scalar: v <- g^2 v + n).

    Parameters
    ----------
    smp : Sampler
        A symbolic sampler (:func:`symsched.symbolic.get_sampler`), one-entry or with memory.
    K : int
        Number of levels, in [1, MAX_SYMBOLIC_STEPS] (:func:`check_steps`).
    init : {"white", "exact"}
        ``v_init``: the sampler's own white start (VP 1, VE ``sigma_K^2``, flow 1) or the forward marginal at the
        noisiest level (:func:`init_variance`).

    Returns
    -------
    sympy.Expr
        The output variance of a mode of variance ``S``, in data units, as an expression in ``S`` and the K level
        symbols of :func:`level_symbols` (noisiest first), the sampler's own parameters (e.g. DDIM's ``eta``) left
        as symbols.

    Raises
    ------
    TypeError
        ``K`` not an integer (a bool included).
    ValueError
        ``K`` outside [1, MAX_SYMBOLIC_STEPS]; ``init`` not one of :data:`INITS`.

    Source: docs/model.md §5 (one-entry samplers), §9 (covariance recursion of samplers with memory); each step's
    (A_k, B_k) from the sampler's update equations in ``symsched/symbolic/samplers/``.
    """
    levels = level_symbols(smp, K)
    v0 = init_variance(smp, init, levels[0])
    if smp.is_scalar:
        v = v0
        for g, n in step_pairs(smp, levels):
            v = g**2 * v + n
        return v
    C = sp.zeros(smp.m, smp.m)
    C[0, 0] = v0
    for A, B in step_matrices(smp, levels):
        C = A * C * A.T + B * B.T
    return C[0, 0]


def output_psd_closed_form(smp: Sampler, K: int, init: str = "white") -> sp.Expr:
    """:func:`output_psd` of a one-entry sampler in the sum-of-products form of docs/model.md §5.

    ``P(S) = prod_k g_k^2 v_init + sum_k n_k prod_{j after k} g_j^2`` (steps k in the order they run).

    Parameters
    ----------
    smp : Sampler
        A one-entry symbolic sampler (``smp.is_scalar``; :func:`symsched.symbolic.get_sampler`).
    K : int
        Number of levels, in [1, MAX_SYMBOLIC_STEPS] (:func:`check_steps`).
    init : {"white", "exact"}
        ``v_init`` as in :func:`output_psd`.

    Returns
    -------
    sympy.Expr
        The same output variance as :func:`output_psd` (data units; in ``S``, the K level symbols and the
        sampler's own parameters), not expanded into the nested recursion.

    Raises
    ------
    TypeError
        ``K`` not an integer (a bool included).
    ValueError
        ``K`` outside [1, MAX_SYMBOLIC_STEPS]; a sampler with a multi-entry state (use :func:`output_psd`);
        ``init`` not one of :data:`INITS`.

    Source: docs/model.md §5 (composition); gains and injected variances from :func:`step_pairs`.
    """
    levels = level_symbols(smp, K)
    pairs = step_pairs(smp, levels)
    gains = [g for g, _ in pairs]
    total = sp.Mul(*[g**2 for g in gains]) * init_variance(smp, init, levels[0])
    for k, (_, n) in enumerate(pairs):
        total += n * sp.Mul(*[g**2 for g in gains[k + 1 :]])
    return total


def recursion_statement() -> str:
    """The recursion for any K, as LaTeX."""
    return (
        r"v_{K} = v_{\mathrm{init}},\qquad "
        r"v_{k-1} = g_k(S)^2\, v_{k} + n_k,\qquad P(S) = v_{0}"
    )
