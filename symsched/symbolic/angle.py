"""Angle form of deterministic DDIM (docs/model.md §7.6).

With sigma_i = sqrt((1 - ab_i)/ab_i) = sqrt(S) tan(theta_i), each deterministic DDIM step is a
rotation: the VE gain is cos(theta_t - theta_s) cos(theta_t)/cos(theta_s), so products telescope.
"""

from __future__ import annotations

import sympy as sp

from .symbols import S, theta

__all__ = ["sigma_of_theta", "rotation_gain", "output_psd_angle", "equal_angle_sigmas"]


def sigma_of_theta(th: sp.Expr) -> sp.Expr:
    """sigma = sqrt(S) tan(theta)."""
    return sp.sqrt(S) * sp.tan(th)


def rotation_gain(th_t: sp.Expr, th_s: sp.Expr) -> sp.Expr:
    """The VE DDIM gain as a rotation: cos(theta_t - theta_s) cos(theta_t) / cos(theta_s)."""
    return sp.cos(th_t - th_s) * sp.cos(th_t) / sp.cos(th_s)


def output_psd_angle(K: int, init: str = "white") -> sp.Expr:
    """P = prod cos^2(theta_i - theta_{i+1}) * (S | cos^2 theta_K + S sin^2 theta_K), theta_0 = 0."""
    ths = [sp.Integer(0)] + [theta(i) for i in range(1, K + 1)]
    rot = sp.Mul(*[sp.cos(ths[i + 1] - ths[i]) ** 2 for i in range(K)])
    if init == "exact":
        return S * rot
    if init == "white":
        return rot * (sp.cos(ths[K]) ** 2 + S * sp.sin(ths[K]) ** 2)
    raise ValueError(f"init must be 'white' or 'exact' (got {init!r})")


def equal_angle_sigmas(K: int, sigma_min: sp.Expr, sigma_max: sp.Expr, s: sp.Expr = S) -> list[sp.Expr]:
    """Tangent law: K levels with equal angle steps between theta(sigma_max) and theta(sigma_min)."""
    a = sp.atan(sigma_max / sp.sqrt(s))
    b = sp.atan(sigma_min / sp.sqrt(s))
    if K == 1:
        return [sigma_max]
    return [sp.sqrt(s) * sp.tan(a + (b - a) * sp.Rational(i, K - 1)) for i in range(K)]
