"""Pieces shared by the k-diffusion sampler modules (k-diffusion 0.1.1.post1, ``k_diffusion/sampling.py``).

Plain Python at module level (no SymPy import): the plan helpers decide, from the numeric levels
and parameters, which branch of k-diffusion's control flow a step takes; the ``sym_*`` builders
write k-diffusion's helpers (``to_d``, ``get_ancestral_step``, churn) in SymPy.

Levels reach a plan as float64 log-SNR ``l = -2 log sigma`` (``-inf`` for sigma = inf), noisiest
first, with the caller's own sigmas when it gave sigmas (:class:`~symsched.symbolic.plan.PlanLevels`);
index ``K`` is the clean level sigma = 0.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from typing import Any, Mapping, Optional, Sequence

from ..plan import level_sigma

__all__ = [
    "CHURN_PARAMS",
    "ANCESTRAL_PURE_NOISE_NOTE",
    "CHURN_BOUNDS",
    "ANCESTRAL_TEX",
    "CHURN_TEX",
    "churn_gammas",
    "ancestral_binds",
    "float32_sigma_down_error",
    "level_binds",
    "param_values",
    "sym_to_d",
    "sym_ancestral_step",
    "sym_churn",
]

_TINY = 2.2250738585072014e-308  # smallest normal float64

#: k-diffusion's churn arguments of ``sample_euler``/``sample_heun``/``sample_dpm_2`` with their defaults.
CHURN_PARAMS = {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": float("inf"), "s_noise": 1.0}
CHURN_BOUNDS = {"s_churn": (0.0, float("inf")), "s_tmin": (0.0, float("inf")), "s_tmax": (0.0, float("inf")),
                "s_noise": (0.0, float("inf"))}

#: Relative slack of the churn window test s_tmin <= sigma_i <= s_tmax where the plan sees sigma_i only through
#: its float64 log-SNR (levels given as alpha_bar or log-SNR), a few ulp away from the sigma: a level equal to
#: s_tmin or s_tmax (k-diffusion includes both ends) is still counted as inside. Sigmas given as such
#: (:class:`~symsched.symbolic.plan.PlanLevels`) are tested exactly, as k-diffusion tests them.
_WINDOW_RTOL = 1e-13


#: k-diffusion's ``get_ancestral_step(sigma_from, sigma_to, eta)`` in LaTeX, for the sections that use it.
ANCESTRAL_TEX = ("$\\sigma_{\\uparrow} = \\min(\\sigma_{\\mathrm{to}}, \\eta\\,\\sigma_{\\mathrm{to}}"
                 "\\sqrt{1 - \\sigma_{\\mathrm{to}}^2/\\sigma_{\\mathrm{from}}^2})$, "
                 "$\\sigma_{\\downarrow} = \\sqrt{\\sigma_{\\mathrm{to}}^2 - \\sigma_{\\uparrow}^2}$")
#: Why k-diffusion's ancestral samplers at eta = 1 take their sigma_down = 0 branch from sigma = inf (the LaTeX
#: sections' "From pure noise" note; :func:`ancestral_binds` decides it so).
ANCESTRAL_PURE_NOISE_NOTE = (
    "At $\\eta = 1$ exactly, \\texttt{get\\_ancestral\\_step} gives $\\sigma_{\\downarrow} = "
    "\\sigma_{\\mathrm{to}}^2/\\sigma_{\\mathrm{from}} > 0$ for every finite $\\sigma_{\\mathrm{from}}$, but "
    "k-diffusion computes it in float64, where $1 - \\sigma_{\\mathrm{to}}^2/\\sigma_{\\mathrm{from}}^2$ rounds to 1 "
    "once $\\sigma_{\\mathrm{from}}/\\sigma_{\\mathrm{to}} > 10^8$: $\\sigma_{\\downarrow}$ is then 0 (for a few per "
    "cent of such levels a rounding residue near $10^{-8}\\sigma_{\\mathrm{to}}$) and the library takes its step "
    "with $\\sigma_{\\downarrow} = 0$. From $\\sigma_0 = \\infty$ symsched takes that step for every $\\eta \\ge 1$: "
    "the limit of the library's float64 decision, not the limit $\\eta \\to 1$ of the other branch.")
#: k-diffusion's churn (``sample_euler`` / ``sample_heun`` / ``sample_dpm_2``) in LaTeX.
CHURN_TEX = ("churn $\\gamma_i = \\min(s_{\\mathrm{churn}}/K, \\sqrt2 - 1)$ where $s_{\\mathrm{tmin}} \\le \\sigma_i "
             "\\le s_{\\mathrm{tmax}}$, else 0: the sample is first noised up to $\\hat\\sigma = \\sigma_i(1 + "
             "\\gamma_i)$ with $s_{\\mathrm{noise}}\\sqrt{\\hat\\sigma^2 - \\sigma_i^2}\\,z$, and the step starts "
             "from $\\hat\\sigma$")


def param_values(defaults: Mapping[str, float], params: Optional[Mapping[str, Any]]) -> dict[str, float]:
    """The numeric parameters of a plan call, ``defaults`` filled in (``params`` is None for symbolic plans)."""
    out = {k: float(v) for k, v in defaults.items()}
    out.update({k: float(v) for k, v in dict(params or {}).items()})
    return out


def churn_gammas(K: int, levels: Optional[Sequence[float]], prm: Mapping[str, float]) -> list[float]:
    """k-diffusion's per-step churn for a K-level schedule (K + 1 sigmas with the trailing 0):

    gamma_i = min(s_churn / K, sqrt(2) - 1) if s_tmin <= sigma_i <= s_tmax else 0.

    Without numeric levels (symbolic plans) no step churns. At a level sigma = inf (zero SNR) the
    churn step is its limit (k-diffusion itself computes inf - inf there).
    """
    s_churn = prm.get("s_churn", 0.0)
    if levels is None or s_churn <= 0.0:
        return [0.0] * K
    gamma = min(s_churn / K, math.sqrt(2.0) - 1.0)
    lo, hi = prm.get("s_tmin", 0.0), prm.get("s_tmax", math.inf)
    rtol = 0.0 if getattr(levels, "sigmas", None) is not None else _WINDOW_RTOL
    if getattr(levels, "float32", False):  # torch compares a float32 sigma with s_tmin / s_tmax cast to float32
        lo, hi = f32(lo), f32(hi)
    out = []
    for i in range(len(levels)):
        sig = level_sigma(levels, i)
        inside = lo * (1 - rtol) <= sig <= hi * (1 + rtol)
        out.append(gamma if inside else 0.0)
    return out


def level_binds(levels: Sequence[float], i: int, j: int, eta: float) -> bool:
    """:func:`ancestral_binds` from level ``i`` to level ``j`` of a plan call, on the caller's own sigmas when it gave
    them (:class:`~symsched.symbolic.plan.PlanLevels`)."""
    return ancestral_binds(float(levels[i]), float(levels[j]), eta, s_from=level_sigma(levels, i),
                           s_to=level_sigma(levels, j), float32=bool(getattr(levels, "float32", False)))


def ancestral_binds(l_from: float, l_to: float, eta: float, *, s_from: Optional[float] = None,
                    s_to: Optional[float] = None, float32: bool = False) -> bool:
    """True when k-diffusion's ``get_ancestral_step`` gives sigma_down = 0 (its min picks sigma_to, sigma_up = sigma_to),
    the branch its samplers take on ``sigma_down == 0``, decided as k-diffusion decides it, in float64 on the sigmas
    ``exp(-l/2)``:

    sigma_up = min(sigma_to, eta sqrt(sigma_to^2 (sigma_from^2 - sigma_to^2) / sigma_from^2)),
    sigma_down = sqrt(sigma_to^2 - sigma_up^2).

    In exact arithmetic the min binds only for eta > 1; in float64 it binds at eta = 1 too once
    sigma_from/sigma_to > ~1e8 (1 - r^2 rounds to 1), and there the library runs the Euler branch: so does symsched
    (the other branch's output grows as sigma_from^2 for dpm_2_ancestral). Within a factor ~2 of that switch the
    decision is the rounding of the particular sigmas: ``s_from`` / ``s_to`` are the caller's own sigmas when it gave
    them (:func:`level_binds`), decided exactly as k-diffusion decides; from ``exp(-l/2)`` (levels given as alpha_bar
    or log-SNR), an ulp away, the branch there can differ (2.126e8 / 3). A level sigma_from = inf (l_from = -inf) is
    the limit of that decision: binding for eta >= 1. Where sigma_to^2 or sigma_to^2 (sigma_from^2 - sigma_to^2)
    underflows (sigma_to below ~1.5e-154, or sigmas ~1e-120), it binds where float64 or exact arithmetic binds: below
    sigma_to ~ 1.5e-162 k-diffusion's sigma_to^2 is 0, so are its sigma_up and sigma_down, and it runs the Euler branch
    for every eta (deciding it in exact arithmetic there, as symsched did, took the DPM-2 branch: H = 1 for S = 1e-20
    on [1, 1e-199] where k-diffusion gives 1e-20); the float64 decision alone would leave sigma_up = eta sigma_to
    sqrt(1 - r^2) > sigma_to unbound for eta > 1 on sigmas ~1e-120. The step to the clean level (sigma_to = 0)
    has sigma_down = 0. Above sigma_to ~ 1.3e154 (sigma_to^2 overflows: k-diffusion's sigma_down is inf - inf = NaN,
    and so is its output) it is decided in exact arithmetic too (:func:`_exact_binds`), as in float32 above
    sigma_to ~ 1.8e19 (eta > 1 on [1e200, 1e190] binds: sigma_up = sigma_to, sigma_down = 0). With ``float32`` (the
    caller's sigmas were float32, as k-diffusion's ``get_sigmas_*`` return them) the decision is k-diffusion's on
    float32 tensors: the same formula in float32 arithmetic (:func:`_binds_float32`). Where a square root a few ulps
    off would decide the other way, torch itself decides when installed (:func:`_as_torch_decides`: its square root
    is not correctly rounded on every build, and k-diffusion's decision is torch's).
    """
    if not math.isfinite(l_to) and l_to > 0:
        return True
    if eta == 0.0:
        return False
    if not math.isfinite(l_from):
        return eta >= 1.0
    if float32 and s_from is not None and s_to is not None:
        return _binds_float32(s_from, s_to, eta)
    s_to = math.exp(-0.5 * float(l_to)) if s_to is None else float(s_to)
    try:  # Python floats are IEEE doubles: products overflow to inf, underflow to 0, as in torch's float64
        s_from = math.exp(-0.5 * float(l_from)) if s_from is None else float(s_from)
        numerator = s_to * s_to * (s_from * s_from - s_to * s_to)
        root = math.sqrt(numerator / (s_from * s_from))
    except (OverflowError, ZeroDivisionError):  # where IEEE arithmetic gives inf/inf or 0/0 = NaN
        numerator, root = math.inf, math.nan
    exact = _exact_binds(l_from, l_to, eta, s_from, s_to)
    if s_to * s_to == math.inf:  # sigma_to > ~1.3e154: k-diffusion's float64 sigma_down is inf - inf = NaN (and its
        return exact  # output, for every eta); decided in exact arithmetic (eta > 1 would run an imaginary sigma_down)
    def decide(r: float) -> bool:  # the rest of get_ancestral_step from the square root r, in float64
        up = float(eta) * r
        sigma_up = up if up < s_to else s_to  # Python's min(sigma_to, up): sigma_to unless up is smaller (so for NaN)
        return s_to * s_to - sigma_up * sigma_up == 0.0

    binds = _as_torch_decides(root, decide, math.nextafter, s_from, s_to, eta, float32=False)
    # where sigma_to^2 or sigma_to^2 (sigma_from^2 - sigma_to^2) underflows, the float64 decision stands where it binds
    # (as k-diffusion's does: sigma_to^2 = 0 leaves sigma_up = sigma_down = 0, its Euler branch) and the exact one where
    # the underflow would leave sigma_up unbound (eta > 1)
    return binds or (min(s_to * s_to, numerator) < _TINY and exact)


#: how many ulps a library square root may be off: torch 2.13.0's CPU (AVX2) ``sqrt`` / ``** 0.5`` is not correctly
#: rounded, 1 ulp off on 19.5 % of float32 and 1.4 % of float64 arguments (measured, 6 December 2026); twice that
_SQRT_ULPS = 2


def _as_torch_decides(root: float, decide: Any, nextafter: Any, s_from: float, s_to: float, eta: float, *,
                      float32: bool) -> bool:
    """``decide(root)``, the ancestral ``min``'s branch from get_ancestral_step's square root ``root`` (correctly
    rounded), unless a root within :data:`_SQRT_ULPS` ulps decides otherwise: the library's own square root may be
    that far off (torch's is on some builds), so there the decision is torch's own run of the formula
    (:func:`_torch_binds`) when torch is installed, else the correctly rounded one."""
    ref = decide(root)
    if not math.isfinite(root) or root == 0.0:
        return ref
    up = down = root
    for _ in range(_SQRT_ULPS):
        up, down = nextafter(up, math.inf), nextafter(down, -math.inf)
        if decide(up) != ref or decide(down) != ref:
            torch_says = _torch_binds(s_from, s_to, eta, float32=float32)
            return ref if torch_says is None else torch_says
    return ref


def _torch_binds(s_from: float, s_to: float, eta: float, *, float32: bool) -> Optional[bool]:
    """k-diffusion's ``get_ancestral_step`` run by torch on 0-d tensors of the sigmas' dtype (its sampling loops index
    ``sigmas[i]``): whether ``sigma_down == 0``; None without torch."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - no torch (or a broken one): the correctly rounded decision stands
        return None
    sig = torch.tensor([s_from, s_to], dtype=torch.float32 if float32 else torch.float64)
    f, t = sig[0], sig[1]
    sigma_up = min(t, eta * (t**2 * (f**2 - t**2) / f**2) ** 0.5)
    return bool((t**2 - sigma_up**2) ** 0.5 == 0)


#: samplers whose output follows get_ancestral_step's sigma_down closely (it sets their midpoint): k-diffusion's float32
#: sigma_down moved their output by 0.13 % to 25 % on 2- and 3-step Karras float32 sigmas (sigma_from/sigma_to 750 to
#: 4e3), euler_ancestral's by at most 1.3e-4 (measured, 6 December 2026)
SIGMA_DOWN_SENSITIVE = ("dpm_2_ancestral", "dpmpp_2s_ancestral")


def float32_sigma_down_error(sigmas: Sequence[float], eta: float) -> tuple[float, int]:
    """The largest first-order relative error of k-diffusion's float32 ``sigma_down = sqrt(sigma_to^2 - sigma_up^2)``
    over the steps of float32 ``sigmas`` (noisiest first) where get_ancestral_step's min does not bind, and its step:
    ``2^-24 sigma_to^2 / sigma_down^2`` (the difference cancels to ``sigma_down^2``; at eta = 1, ``sigma_down =
    sigma_to^2 / sigma_from``, so ``2^-24 (sigma_from / sigma_to)^2``). (0.0, -1) without such a step. Steps whose
    float32 ``sigma_from^2`` overflows (sigma_from > ~1.8e19; there torch's own arithmetic gives inf or NaN,
    :func:`ancestral_binds`) are left out."""
    worst, at = 0.0, -1
    if eta == 0.0:  # no noise: sigma_down = sigma_to
        return worst, at
    for i, (a, b) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        a, b = float(a), float(b)
        if not 0.0 < b < a or f32(a * a) == math.inf:  # (sigma_from = inf, or a float32 sigma_from^2 beyond float32's
            continue  # range: the min binds, or NaN; ancestral_binds)
        if ancestral_binds(-2 * math.log(a), -2 * math.log(b), eta, s_from=a, s_to=b, float32=True):
            continue
        f, t = Fraction(a), Fraction(b)
        down2 = t * t - Fraction(eta) ** 2 * t * t * (f * f - t * t) / (f * f)
        if down2 <= 0:
            continue
        err = float(t * t / down2) * 2.0**-24
        if err > worst:
            worst, at = err, i
    return worst, at


def _nextafter32(x: float, toward: float) -> float:
    """The float32 next to a positive finite float32 ``x`` toward ``toward`` (as a Python float; no NumPy in this
    layer): its bit pattern plus or minus one."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0] + (1 if toward > x else -1)
    return float(struct.unpack("<f", struct.pack("<I", bits))[0])


def _exact_binds(l_from: float, l_to: float, eta: float, s_from: Optional[float], s_to: Optional[float]) -> bool:
    """get_ancestral_step's min binds in exact arithmetic: eta^2 (sigma_from^2 - sigma_to^2) >= sigma_from^2 (only for
    eta > 1), on the float64 sigmas as rationals (as the mpmath path reads them: no sigma_down^2 < 0 on the step it
    then runs), else (a sigma beyond the float64 range) on the log-SNR gap."""
    if not eta > 1.0:
        return False
    if s_from is not None and s_to is not None and 0.0 < s_from < math.inf and 0.0 <= s_to < math.inf \
            and math.isfinite(eta):
        f, t, e = Fraction(s_from), Fraction(s_to), Fraction(eta)
        return e * e * (f * f - t * t) >= f * f
    return float(l_from) - float(l_to) <= math.log1p(-1.0 / (eta * eta))


def f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (as a Python float; beyond float32's range: inf). One IEEE operation of
    float32 numbers carried out in float64 and rounded by this is the float32 operation's own result (53 >= 2 x 24 +
    2 bits: double rounding is innocuous for +, -, x, / and sqrt), so float32 arithmetic needs no NumPy here."""
    try:
        return float(struct.unpack("f", struct.pack("f", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


def _binds_float32(s_from: float, s_to: float, eta: float) -> bool:
    """k-diffusion's ``get_ancestral_step`` on float32 sigmas: ``sigma_up = min(sigma_to, eta (sigma_to^2
    (sigma_from^2 - sigma_to^2) / sigma_from^2) ** 0.5)`` in float32 (torch casts ``eta`` to the tensors' dtype),
    binding where ``sigma_to^2 - sigma_up^2`` is 0 (its ``sigma_down == 0`` branch); every operation rounded to
    float32 (:func:`f32`), IEEE inf and NaN as in torch."""
    f, t, e = f32(s_from), f32(s_to), f32(eta)

    def div(a: float, b: float) -> float:  # (Python raises on / 0 where IEEE gives inf or NaN; its * is IEEE's)
        if b == 0.0:
            return math.nan if a == 0.0 or math.isnan(a) else math.copysign(math.inf, a)
        return f32(a / b)

    tt, ff = f32(t * t), f32(f * f)
    if tt == math.inf:  # sigma_to > ~1.8e19: torch's float32 sigma_down is inf - inf = NaN; exact arithmetic decides
        return _exact_binds(-2.0 * math.log(f), -2.0 * math.log(t), eta, f, t)
    inner = div(f32(tt * f32(ff - tt)), ff)

    def decide(r: float) -> bool:  # the rest of get_ancestral_step from the square root r, in float32
        up = f32(e * r)
        sigma_up = up if up < t else t  # Python's min(sigma_to, up): sigma_to unless up is smaller (so for NaN)
        return f32(tt - f32(sigma_up * sigma_up)) == 0.0

    root = f32(math.sqrt(inner)) if inner >= 0 else math.nan
    return _as_torch_decides(root, decide, _nextafter32, f, t, eta, float32=True)


# ---------------------------------------------------------------------------------------------
# SymPy builders (import SymPy inside)
# ---------------------------------------------------------------------------------------------
def sym_to_d(x: Any, sigma: Any, denoised: Any) -> Any:
    """k-diffusion ``to_d``: the Karras ODE slope (x - D) / sigma."""
    return (x - denoised) / sigma


def sym_ancestral_step(sigma_from: Any, sigma_to: Any, eta: Any, bound: bool) -> tuple[Any, Any]:
    """k-diffusion ``get_ancestral_step``: (sigma_down, sigma_up), on one side of its min.

    ``bound=False``: sigma_up = eta sqrt(sigma_to^2 (sigma_from^2 - sigma_to^2) / sigma_from^2) (< sigma_to),
    sigma_down = sqrt(sigma_to^2 - sigma_up^2); ``bound=True``: sigma_up = sigma_to, sigma_down = 0.
    """
    import sympy as sp

    if bound:
        return sp.Integer(0), sigma_to
    sigma_up = eta * sp.sqrt(sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2)
    sigma_down = sp.sqrt(sigma_to**2 - sigma_up**2)
    return sigma_down, sigma_up


def sym_churn(x: Any, sigma: Any, gamma: Any, s_noise: Any, z: Any) -> tuple[Any, Any]:
    """k-diffusion's churn (EDM Algorithm 2): (sigma_hat, x_hat) with sigma_hat = sigma (gamma + 1) and
    x_hat = x + s_noise z sqrt(sigma_hat^2 - sigma^2)."""
    import sympy as sp

    sigma_hat = sigma * (gamma + 1)
    return sigma_hat, x + s_noise * z * sp.sqrt(sigma_hat**2 - sigma**2)
