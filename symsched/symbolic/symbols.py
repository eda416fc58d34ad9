"""The symbols of symsched, defined once with their assumptions.

Every expression in :mod:`symsched.symbolic` is written in these symbols, and every compiled
function takes its arguments in the order fixed here.
"""

from __future__ import annotations

import sympy as sp

#: Mode variance S >= 0 (one eigenvalue of the data covariance, or one PSD value).
S = sp.Symbol("S", nonnegative=True)

#: VP noise levels of one step t -> s (s is less noisy): alpha_bar_t < alpha_bar_s.
alpha_bar_t = sp.Symbol(r"\bar{\alpha}_t", positive=True)
alpha_bar_s = sp.Symbol(r"\bar{\alpha}_s", positive=True)

#: VE noise levels of one step: sigma_t > sigma_s >= 0.
sigma_t = sp.Symbol(r"\sigma_t", positive=True)
sigma_s = sp.Symbol(r"\sigma_s", positive=True)

#: DDIM stochasticity eta in [0, 1].
eta = sp.Symbol(r"\eta", nonnegative=True)

#: Gap between the two VE levels of a step, h = sigma_t - sigma_s > 0 (numerically safe coordinate).
h = sp.Symbol("h", positive=True)

#: Variance of the state entering a step (per mode).
v = sp.Symbol("v", nonnegative=True)

#: Generated (p) and reference (q) mode variances in the divergences.
p = sp.Symbol("p", positive=True)
q = sp.Symbol("q", positive=True)

#: Angle coordinate of a level, theta = arctan(sigma / sqrt(S)) (MATH.md §7.6).
theta_t = sp.Symbol(r"\theta_t", positive=True)
theta_s = sp.Symbol(r"\theta_s", positive=True)


def alpha_bar(i: int) -> sp.Symbol:
    """Level symbol alpha_bar_(i) of a composed schedule (i = 1 least noisy ... K noisiest)."""
    return sp.Symbol(rf"\bar{{\alpha}}_{{{i}}}", positive=True)


def sigma(i: int) -> sp.Symbol:
    """VE level symbol sigma_(i) of a composed schedule (i = 1 least noisy ... K noisiest)."""
    return sp.Symbol(rf"\sigma_{{{i}}}", positive=True)


def theta(i: int) -> sp.Symbol:
    """Angle symbol theta_(i) of a composed schedule."""
    return sp.Symbol(rf"\theta_{{{i}}}", positive=True)
