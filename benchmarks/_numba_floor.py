"""Part (d) of bench_transfer.py: the DDPM variance recursion's value and adjoint as fused numba loops.

Imported only when numba is installed (it is not a symsched dependency). ``forward`` is one fused pass per
step; ``value_and_grad`` keeps every step's variance, then carries the adjoint weight backward and reduces
it against the four basis functions of the gain's derivative in the same loop (as
``bench_transfer.floor_value_and_grad`` does with NumPy passes); ``stored=True`` also keeps g and 1/D
from the forward so that the backward divides nothing.
"""
import numpy as np
from numba import njit


@njit(fastmath=True)
def forward(S, coef):
    v = np.ones_like(S)
    for k in range(coef.shape[0]):
        c0, c1, d0, d1, q = coef[k, 0], coef[k, 1], coef[k, 2], coef[k, 3], coef[k, 4]
        for i in range(S.size):
            g = (c0 + c1 * S[i]) / (d0 + d1 * S[i])
            v[i] = g * g * v[i] + q
    return v


@njit(fastmath=True)
def _backward(S, coef, V, G, ID, stored):
    K = coef.shape[0]
    AW = np.ones_like(S)
    grad = np.zeros((K, 5))
    for k in range(K - 1, -1, -1):
        c0, c1, d0, d1 = coef[k, 0], coef[k, 1], coef[k, 2], coef[k, 3]
        r0 = r1 = r2 = r3 = r4 = 0.0
        for i in range(S.size):
            s = S[i]
            if stored:
                idn, g = ID[k, i], G[k, i]
            else:
                idn = 1.0 / (d0 + d1 * s)
                g = (c0 + c1 * s) * idn
            r4 += AW[i]
            u = AW[i] * g
            y = u * V[k, i] * idn
            r0 += y
            r1 += y * s
            z = y * g
            r2 += z
            r3 += z * s
            AW[i] = u * g
        grad[k, 0], grad[k, 1], grad[k, 2], grad[k, 3], grad[k, 4] = 2 * r0, 2 * r1, -2 * r2, -2 * r3, r4
    return grad


@njit(fastmath=True)
def value_and_grad(S, coef, V, G, ID, stored):
    K = coef.shape[0]
    V[0, :] = 1.0
    for k in range(K):
        c0, c1, d0, d1, q = coef[k, 0], coef[k, 1], coef[k, 2], coef[k, 3], coef[k, 4]
        for i in range(S.size):
            idn = 1.0 / (d0 + d1 * S[i])
            g = (c0 + c1 * S[i]) * idn
            if stored:
                G[k, i], ID[k, i] = g, idn
            V[k + 1, i] = g * g * V[k, i] + q
    return V[K].sum(), _backward(S, coef, V, G, ID, stored)
