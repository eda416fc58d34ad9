"""Variance recursion v_s = g^2 v_t + n over a schedule, its transfer function and its adjoint.

All functions take mode variances ``S`` (1-D float64) and VE-coordinate levels ``sig`` (1-D,
strictly decreasing, noisiest first; the step to the clean level is implicit) and work in place on
one buffer per quantity, so a long schedule allocates O(1) arrays of len(S).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy.linalg.blas import daxpy
from threadpoolctl import threadpool_limits

from .kernels import divergence_kernel, final_kernel, init_kernel, step_kernel

__all__ = ["output_variance", "transfer", "value_and_grad"]


def _dot(x: np.ndarray, y: Any) -> float:
    """sum(x * y); call inside ``threadpool_limits(1)``: a threaded BLAS dot stalls on a loaded machine."""
    if np.ndim(y):
        return float(np.dot(x, y))
    return float(np.sum(x)) * float(y)


def _steps(sig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigma_s, h) of the intermediate steps: sigma_s = sig[k+1], h = sig[k] - sig[k+1] > 0."""
    return sig[1:], sig[:-1] - sig[1:]


def _apply(v: np.ndarray, g: Any, n: Any, tmp: np.ndarray) -> None:
    """v <- g^2 v + n in place (g, n arrays or scalars)."""
    if np.ndim(g):
        np.multiply(g, g, out=tmp)
        v *= tmp
    else:
        v *= float(g) ** 2
    if np.ndim(n) or n != 0:
        v += n


def output_variance(
    S: np.ndarray, sig: np.ndarray, *, sampler: str, variant: str, params: tuple[float, ...],
    process: str, init: str,
) -> np.ndarray:
    """P = v after the final step, starting from the init variance at sig[0]."""
    step = step_kernel(sampler, variant)
    final = final_kernel(sampler, variant)
    v0, _ = init_kernel(process, init)(S, sig[0])
    v = np.array(np.broadcast_to(v0, S.shape), dtype=np.float64)
    tmp = np.empty_like(v)
    s_s, hh = _steps(sig)
    for k in range(len(s_s)):
        g, n = step(S, s_s[k], hh[k], *params)
        _apply(v, g, n, tmp)
    g, n = final(S, sig[-1], *params)
    _apply(v, g, n, tmp)
    return v


def transfer(S: np.ndarray, sig: np.ndarray, *, sampler: str, variant: str, params: tuple[float, ...]) -> np.ndarray:
    """H = prod_k g_k(S)."""
    step = step_kernel(sampler, variant)
    final = final_kernel(sampler, variant)
    H = np.ones_like(S)
    s_s, hh = _steps(sig)
    for k in range(len(s_s)):
        H *= step(S, s_s[k], hh[k], *params)[0]
    H *= final(S, sig[-1], *params)[0]
    return H


def value_and_grad(
    S: np.ndarray, sig: np.ndarray, weights: np.ndarray, *, divergence: str, sampler: str, variant: str,
    params: tuple[float, ...], process: str, init: str, mask: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """(J, dJ/dsig, P) with J = sum_modes weights * f(P(S), S); gradient by one backward sweep.

    With G_k = prod_{j>k} g_j^2 (suffix product) and R_k = sum_{i>=k} n_i G_i (the part of P injected
    at step k or later), dP/dlog(g_k^2) = v_k g_k^2 G_k = P - R_k and dP/dn_k = G_k. The sweep runs
    from the last step to the first, carrying G and R per mode: no forward history is stored, so
    memory is O(modes) for any K. ``mask`` marks modes whose term is defined as 0 (S = P = 0).
    """
    P = output_variance(S, sig, sampler=sampler, variant=variant, params=params, process=process, init=init)
    step_g = step_kernel(sampler, variant, grad=True)
    final_g = final_kernel(sampler, variant, grad=True)
    K = len(sig)

    keep = np.ones(S.shape, dtype=bool) if mask is None else ~mask
    f = np.zeros_like(S)
    a = np.zeros_like(S)
    fk, dfk = divergence_kernel(divergence)(P[keep], S[keep])
    f[keep] = fk
    a[keep] = dfk
    a *= weights
    J = float(np.sum(weights * f))

    grad = np.zeros(K, dtype=np.float64)
    AG = a.copy()  # a * G_k, G_k = prod_{j>k} g_j^2: dJ/dn_k for noise injected at step k
    D = a * P  # a * (P - R_k) = a * dP/dlog(g_k^2), updated as D <- D - n_k AG
    tmp = np.empty_like(S)

    def visit(g2: Any, n: Any, dl: tuple[tuple[int, Any, Any], ...], dn: tuple[tuple[int, Any], ...]) -> None:
        if np.ndim(n):
            np.multiply(AG, n, out=tmp)
            D[...] -= tmp
        elif n != 0:
            out = daxpy(AG, D, a=-float(n))  # D -= n AG in place (level-1 BLAS, single-threaded here)
            if out is not D:  # pragma: no cover - scipy copies only non-contiguous input
                D[...] = out
        sum_ag = None
        for j, dnj in dn:
            if np.ndim(dnj):
                grad[j] += float(_dot(AG, dnj))
            elif dnj != 0:
                sum_ag = float(np.sum(AG)) if sum_ag is None else sum_ag
                grad[j] += sum_ag * float(dnj)
        sum_d = None
        for j, arr, const in dl:  # dlog(g^2)/dsigma_j = arr(S) + const
            if np.ndim(arr):
                grad[j] += _dot(D, arr)
            elif arr != 0:
                const = const + arr
            if const != 0:
                sum_d = float(np.sum(D)) if sum_d is None else sum_d
                grad[j] += sum_d * float(const)
        if np.ndim(g2):
            AG[...] *= g2
        else:
            AG[...] *= float(g2)

    # per-level arrays L = S + sigma^2 and R = 1/L, in two ping-pong buffers: the level a step
    # leaves (t) is the level the next step of the backward sweep arrives at (s)
    L_t, R_t, L_s, R_s = (np.empty_like(S) for _ in range(4))

    def level(j: int, L: np.ndarray, R: np.ndarray) -> None:
        np.add(S, sig[j] * sig[j], out=L)
        np.divide(1.0, L, out=R)

    with threadpool_limits(limits=1, user_api="blas"):
        level(K - 1, L_t, R_t)
        g2, n, a_t, c_t, dn_t = final_g(S, L_t, R_t, sig[-1], *params)
        visit(g2, n, ((K - 1, a_t, c_t),), ((K - 1, dn_t),))
        s_s, hh = _steps(sig)
        for k in range(K - 2, -1, -1):
            L_s, R_s, L_t, R_t = L_t, R_t, L_s, R_s
            level(k, L_t, R_t)
            g2, n, a_t, a_s, c_t, c_s, dn_t, dn_s = step_g(S, L_s, L_t, R_s, R_t, s_s[k], hh[k], *params)
            visit(g2, n, ((k, a_t, c_t), (k + 1, a_s, c_s)), ((k, dn_t), (k + 1, dn_s)))
        _, dv0 = init_kernel(process, init)(S, sig[0])
        grad[0] += _dot(AG, dv0)
    return J, grad, P
