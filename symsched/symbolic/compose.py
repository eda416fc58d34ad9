"""Composition of steps into the spectral transfer function and the output PSD (MATH.md §5)."""

from __future__ import annotations

import sympy as sp

from .forward import ve_variance, vp_variance
from .step import Sampler
from .symbols import alpha_bar, alpha_bar_s, alpha_bar_t, sigma, sigma_s, sigma_t

__all__ = ["level_symbols", "init_variance", "step_pairs", "transfer_function", "output_psd"]

INITS = ("white", "exact")


def level_symbols(smp: Sampler, K: int) -> list[sp.Symbol]:
    """The K level symbols of a composed schedule, noisiest first: [lvl_K, ..., lvl_1]."""
    make = alpha_bar if smp.process == "vp" else sigma
    return [make(i) for i in range(K, 0, -1)]


def init_variance(smp: Sampler, init: str, level: sp.Expr) -> sp.Expr:
    """Variance of the starting state at the noisiest level.

    VP: white 1, exact lambda = alpha_bar S + 1 - alpha_bar.  VE: white sigma^2, exact S + sigma^2.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS} (got {init!r})")
    if smp.process == "vp":
        return sp.Integer(1) if init == "white" else vp_variance(level)
    return level**2 if init == "white" else ve_variance(level)


def step_pairs(smp: Sampler, levels: list[sp.Symbol]) -> list[tuple[sp.Expr, sp.Expr]]:
    """(gain_k, noise_k) of each step of the schedule ``levels`` (noisiest first), final step last."""
    t_sym, s_sym = (alpha_bar_t, alpha_bar_s) if smp.process == "vp" else (sigma_t, sigma_s)
    out = []
    for lt, ls in zip(levels[:-1], levels[1:]):
        sub = {t_sym: lt, s_sym: ls}
        out.append((smp.step.gain.subs(sub), smp.step.noise.subs(sub)))
    sub = {t_sym: levels[-1]}
    out.append((smp.final.gain.subs(sub), smp.final.noise.subs(sub)))
    return out


def transfer_function(smp: Sampler, K: int) -> sp.Expr:
    """H(S) = prod_k g_k(S) for a K-level schedule (K steps, the last one to the clean level)."""
    levels = level_symbols(smp, K)
    return sp.Mul(*[g for g, _ in step_pairs(smp, levels)])


def output_psd(smp: Sampler, K: int, init: str = "white") -> sp.Expr:
    """P(S) = H^2 v_init + sum_k noise_k prod_{j after k} g_j^2, by unrolling v_s = g^2 v_t + noise."""
    levels = level_symbols(smp, K)
    v = init_variance(smp, init, levels[0])
    for g, n in step_pairs(smp, levels):
        v = g**2 * v + n
    return v


def output_psd_closed_form(smp: Sampler, K: int, init: str = "white") -> sp.Expr:
    """:func:`output_psd` in the sum-of-products form of MATH.md §5 (same value, other layout)."""
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
        r"v_{(K)} = v_{\mathrm{init}},\qquad "
        r"v_{(k-1)} = g_k(S)^2\, v_{(k)} + n_k,\qquad P(S) = v_{(0)}"
    )

