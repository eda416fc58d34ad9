"""Forward processes and the exact (Wiener) denoiser, per mode (docs/model.md §2–3)."""

from __future__ import annotations

import sympy as sp

from .symbols import S

__all__ = [
    "vp_variance",
    "ve_variance",
    "vp_denoiser",
    "ve_denoiser",
    "alpha_bar_from_sigma",
    "sigma_from_alpha_bar",
    "log_snr",
    "flow_variance",
    "flow_denoiser",
    "flow_velocity",
]


def vp_variance(alpha_bar: sp.Expr, s: sp.Expr = S) -> sp.Expr:
    """VP marginal variance of a mode: lambda = alpha_bar S + 1 - alpha_bar."""
    return alpha_bar * s + 1 - alpha_bar


def ve_variance(sigma: sp.Expr, s: sp.Expr = S) -> sp.Expr:
    """VE marginal variance of a mode: S + sigma^2."""
    return s + sigma**2


def vp_denoiser(alpha_bar: sp.Expr, s: sp.Expr = S) -> tuple[sp.Expr, sp.Expr]:
    """Wiener coefficients (c_x0, c_eps) with x0_hat = c_x0 x_t and eps_hat = c_eps x_t."""
    lam = vp_variance(alpha_bar, s)
    return sp.sqrt(alpha_bar) * s / lam, sp.sqrt(1 - alpha_bar) / lam


def ve_denoiser(sigma: sp.Expr, s: sp.Expr = S) -> sp.Expr:
    """VE Wiener gain: D(x; sigma) = S / (S + sigma^2) x."""
    return s / ve_variance(sigma, s)


def alpha_bar_from_sigma(sigma: sp.Expr) -> sp.Expr:
    """alpha_bar = 1 / (1 + sigma^2) (docs/model.md §2)."""
    return 1 / (1 + sigma**2)


def sigma_from_alpha_bar(alpha_bar: sp.Expr) -> sp.Expr:
    """sigma = sqrt((1 - alpha_bar) / alpha_bar)."""
    return sp.sqrt((1 - alpha_bar) / alpha_bar)


def log_snr(alpha_bar: sp.Expr) -> sp.Expr:
    """Log signal-to-noise ratio l = log(alpha_bar / (1 - alpha_bar)) = -2 log sigma."""
    return sp.log(alpha_bar / (1 - alpha_bar))


def flow_variance(t: sp.Expr, s: sp.Expr = S) -> sp.Expr:
    """Flow-matching marginal variance of a mode, x_t = (1 - t) x0 + t eps: (1 - t)^2 S + t^2."""
    return (1 - t) ** 2 * s + t**2


def flow_denoiser(t: sp.Expr, s: sp.Expr = S) -> tuple[sp.Expr, sp.Expr]:
    """Wiener coefficients (c_x0, c_eps) of x_t = (1 - t) x0 + t eps: x0_hat = c_x0 x_t, eps_hat = c_eps x_t."""
    lam = flow_variance(t, s)
    return (1 - t) * s / lam, t / lam


def flow_velocity(t: sp.Expr, s: sp.Expr = S) -> sp.Expr:
    """Exact velocity gain v_hat = E[eps - x0 | x_t] / x_t = (t - (1 - t) S) / ((1 - t)^2 S + t^2)."""
    c_x0, c_eps = flow_denoiser(t, s)
    return c_eps - c_x0


def canonical_levels(coordinate: str) -> tuple[sp.Symbol, list[sp.Expr]]:
    """(x, [c, s, l]): a level given in ``coordinate`` as the point (c, s) = (sqrt(ab), sqrt(1 - ab))
    and the log-SNR l = log(ab / (1 - ab)), in forms that stay exact at both ends of the range.

    ``"alpha_bar"``: ab; ``"sigma"``: VE sigma = sqrt((1 - ab)/ab) (sigma = inf is ab = 0);
    ``"t"``: flow matching x_t = (1 - t) x0 + t eps, ab = (1 - t)^2 / ((1 - t)^2 + t^2);
    ``"log_snr"``: l itself.
    """
    if coordinate == "alpha_bar":
        x = sp.Symbol("x", nonnegative=True)
        return x, [sp.sqrt(x), sp.sqrt(1 - x), sp.log(x / (1 - x))]
    if coordinate == "sigma":
        x = sp.Symbol("x", nonnegative=True)
        return x, [1 / sp.sqrt(1 + x**2), 1 / sp.sqrt(1 + x**-2), -2 * sp.log(x)]
    if coordinate == "t":
        x = sp.Symbol("x", nonnegative=True)
        n = sp.sqrt((1 - x) ** 2 + x**2)
        return x, [(1 - x) / n, x / n, 2 * sp.log((1 - x) / x)]
    if coordinate == "log_snr":
        x = sp.Symbol("x", real=True)
        return x, [sp.sqrt(1 / (1 + sp.exp(-x))), sp.sqrt(1 / (1 + sp.exp(x))), x]
    raise ValueError(f"coordinate must be 'alpha_bar', 'sigma', 't' or 'log_snr' (got {coordinate!r})")


def level_gap(coordinate: str) -> tuple[sp.Symbol, sp.Symbol, sp.Expr]:
    """(x_a, x_b, l_b - l_a): the log-SNR gap between two finite levels given in ``coordinate``, written so
    that nothing cancels when they are close (one ulp apart: the difference of two rounded log-SNRs of
    magnitude ~1 keeps no digit of a gap of 1e-16, while multistep coefficients divide by it).

    ``"alpha_bar"``: ``log1p((b - a) / (a (1 - b)))`` (``b (1 - a) - a (1 - b) = b - a``); ``"sigma"``:
    ``2 log1p((a - b) / b)``; ``"t"``: ``2 log1p((a - b) / ((1 - a) b))``; ``"log_snr"``: ``b - a``.
    The differences of nearby float64 inputs are exact (Sterbenz), so the gap is accurate to a few ulps.
    """
    from sympy.codegen.cfunctions import log1p

    x, _ = canonical_levels(coordinate)
    a, b = (sp.Symbol(f"x_{n}", **x.assumptions0) for n in ("a", "b"))
    if coordinate == "alpha_bar":
        return a, b, log1p((b - a) / (a * (1 - b)))
    if coordinate == "sigma":
        return a, b, 2 * log1p((a - b) / b)
    if coordinate == "t":
        return a, b, 2 * log1p((a - b) / ((1 - a) * b))
    return a, b, b - a
