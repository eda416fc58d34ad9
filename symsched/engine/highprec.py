"""High-precision reference path: the canonical symbolic expressions evaluated with mpmath.

This path uses the expressions exactly as derived in :mod:`symsched.symbolic` (in alpha_bar for VP
samplers, sigma for VE ones), not the rewritten forms the fast kernels use, so it is an independent
check of the numerics. It loops in Python: use it for a handful of modes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import mpmath
import numpy as np
from numpy.typing import ArrayLike

from .._validate import as_dps, as_levels, as_sigmas, as_spectrum, check_choice, check_eta

from .codegen import compile_mpmath

__all__ = ["output_spectrum_mp", "output_spectrum_ve_mp", "transfer_function_mp"]


@lru_cache(maxsize=None)
def _mp_functions(name: str, variant: str) -> tuple[Callable[..., Any], ...]:
    from ..symbolic import compose, get_sampler
    from ..symbolic.symbols import S, alpha_bar, alpha_bar_s, alpha_bar_t, sigma, sigma_s, sigma_t

    smp = get_sampler(name, variant)
    t, s = (alpha_bar_t, alpha_bar_s) if smp.process == "vp" else (sigma_t, sigma_s)
    args = [S, t, s, *smp.params]
    step = compile_mpmath(args, [smp.step.gain, smp.step.noise])
    final = compile_mpmath([S, t, *smp.params], [smp.final.gain, smp.final.noise])
    lvl = alpha_bar(1) if smp.process == "vp" else sigma(1)
    inits = tuple(
        compile_mpmath([S, lvl], compose.init_variance(smp, init, lvl)) for init in ("white", "exact")
    )
    return step, final, inits[0], inits[1]


def _run(S: np.ndarray, levels: np.ndarray, name: str, variant: str, params: tuple[Any, ...], init: str | None,
         dps: int) -> np.ndarray:
    step, final, white, exact = _mp_functions(name, variant)
    out = np.empty(S.shape, dtype=object)
    with mpmath.workdps(dps):
        lv = [mpmath.mpf(float(x)) for x in levels]  # the exact binary values of the inputs
        pv = [mpmath.mpf(float(x)) for x in params]
        for idx, s_val in np.ndenumerate(S):
            s_mp = mpmath.mpf(float(s_val))
            if init is None:
                v = mpmath.mpf(1)
            else:
                v = (white if init == "white" else exact)(s_mp, lv[0])
            for k in range(len(lv) - 1):
                g, n = step(s_mp, lv[k], lv[k + 1], *pv)
                v = g * v if init is None else g**2 * v + n
            g, n = final(s_mp, lv[-1], *pv)
            v = g * v if init is None else g**2 * v + n
            out[idx] = +v
    return out


def output_spectrum_mp(
    spectrum: ArrayLike, alpha_bar: ArrayLike, *, sampler: str = "ddim", eta: float = 0.0,
    variance: str = "posterior", init: str = "white", dps: int = 50,
) -> np.ndarray:
    """:func:`symsched.output_spectrum` at ``dps`` decimal digits (1..MAX_DPS); returns an object array of mpf."""
    dps = as_dps(dps)
    S = as_spectrum(spectrum)
    ab = as_levels(alpha_bar)
    check_choice(sampler, "sampler", ("ddim", "ddpm"))
    check_choice(variance, "variance", ("posterior", "beta"))
    check_choice(init, "init", ("white", "exact"))
    params = (check_eta(eta),) if sampler == "ddim" else ()
    return _run(S, ab, sampler, variance if sampler == "ddpm" else "", params, init, dps)


def transfer_function_mp(
    spectrum: ArrayLike, alpha_bar: ArrayLike, *, sampler: str = "ddim", eta: float = 0.0,
    variance: str = "posterior", dps: int = 50,
) -> np.ndarray:
    """:func:`symsched.transfer_function` at ``dps`` decimal digits (1..MAX_DPS; object array of mpf)."""
    dps = as_dps(dps)
    S = as_spectrum(spectrum)
    ab = as_levels(alpha_bar)
    check_choice(sampler, "sampler", ("ddim", "ddpm"))
    check_choice(variance, "variance", ("posterior", "beta"))
    params = (check_eta(eta),) if sampler == "ddim" else ()
    return _run(S, ab, sampler, variance if sampler == "ddpm" else "", params, None, dps)


def output_spectrum_ve_mp(
    spectrum: ArrayLike, sigmas: ArrayLike, *, sampler: str = "euler", init: str = "white", dps: int = 50
) -> np.ndarray:
    """:func:`symsched.output_spectrum_ve` at ``dps`` decimal digits (1..MAX_DPS; object array of mpf)."""
    dps = as_dps(dps)
    S = as_spectrum(spectrum)
    sig = as_sigmas(sigmas)
    check_choice(sampler, "sampler", ("euler", "heun"))
    check_choice(init, "init", ("white", "exact"))
    return _run(S, sig, sampler, "", (), init, dps)
