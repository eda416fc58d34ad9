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

#: Angle coordinate of a level, theta = arctan(sigma / sqrt(S)) (docs/model.md §7.6).
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


# -- level slots of state-space steps (statespace.py) -----------------------------------------
def _slot_suffix(j: int) -> str:
    return "i" if j == 0 else (f"i+{j}" if j > 0 else f"i{j}")


def slot_level(process: str, j: int) -> sp.Symbol:
    """Native level symbol of slot ``j`` (0: the level a step leaves, 1: the one it reaches, -1: earlier).

    Slots 0 and 1 of VP and VE samplers are :data:`alpha_bar_t`/:data:`alpha_bar_s` and
    :data:`sigma_t`/:data:`sigma_s`, so one-step samplers read like the papers.
    """
    if process == "vp":
        if j in (0, 1):
            return (alpha_bar_t, alpha_bar_s)[j]
        return sp.Symbol(rf"\bar{{\alpha}}_{{{_slot_suffix(j)}}}", positive=True)
    if process == "ve":
        if j in (0, 1):
            return (sigma_t, sigma_s)[j]
        return sp.Symbol(rf"\sigma_{{{_slot_suffix(j)}}}", positive=True)
    if process == "flow":
        return sp.Symbol(rf"t_{{{_slot_suffix(j)}}}", positive=True)
    raise ValueError(f"process must be 'vp', 've' or 'flow' (got {process!r})")


#: Canonical level coordinates of slot j used by the compiled kernels: c = sqrt(alpha_bar),
#: s = sqrt(1 - alpha_bar) (a point on the unit circle, bounded for every level) and the log-SNR
#: l = log(alpha_bar / (1 - alpha_bar)) = 2 log(c / s) (-inf at alpha_bar = 0, +inf at the clean end).
def c_slot(j: int) -> sp.Symbol:
    return sp.Symbol(f"c_{{{j}}}", positive=True)


def s_slot(j: int) -> sp.Symbol:
    return sp.Symbol(f"s_{{{j}}}", positive=True)


def l_slot(j: int) -> sp.Symbol:
    return sp.Symbol(rf"\ell_{{{j}}}", real=True)


_PARAM_LATEX = {"eta": r"\eta", "s_noise": r"s_{\mathrm{noise}}", "r": "r", "gamma": r"\gamma",
                "s_churn": r"s_{\mathrm{churn}}", "s_tmin": r"s_{\mathrm{tmin}}", "s_tmax": r"s_{\mathrm{tmax}}"}


def param(name: str) -> sp.Symbol:
    """The symbol of the sampler parameter ``name`` (``param("eta") is eta``); non-negative reals."""
    if name == "eta":
        return eta
    return sp.Symbol(_PARAM_LATEX.get(name, name), nonnegative=True)


def gap_slot(j: int) -> sp.Symbol:
    """Log-SNR gap between slot j and the next slot of a step, l_{next} - l_j > 0 (kernels take it
    computed from the levels, so that differences of close levels lose no digits)."""
    return sp.Symbol(rf"\delta_{{{j}}}", positive=True)
