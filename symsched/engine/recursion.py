"""The sweeps of the linear state-space engine (MATH.md §9), for every sampler.

Per mode, a step maps the state ``y`` (VP-scaled sample plus history) to ``A y + B z``; the state
covariance obeys ``C <- A C A^T + B B^T``. Everything here is normalised by a per-mode scale
``kappa`` (``S`` for ``S > 0``, 1 for ``S = 0``) so that the ratio ``rho = P / kappa`` stays in range
when ``P`` itself would underflow (``P ~ S^2`` for tiny modes) or overflow.

- :func:`output_ratio` — ``rho`` by one *backward* sweep as a sum of squares,
  ``P = sum_k ||B_k^T w_{k+1}||^2 + v_0 (w_0 . e_0)^2`` with ``w_k = A_k^T w_{k+1}``, ``w_K = e_0``:
  positive by construction and exact for tiny modes (the square-root form of the covariance
  recursion, with no Cholesky factor to update);
- :func:`transfer` — ``H = e_0^T A_K ... A_1 e_0`` by a forward sweep;
- :func:`value_and_grad` — ``J = sum_modes weight f(P, S)`` and ``dJ/dl`` for every level: a forward
  sweep stores ``C_k``, a backward sweep carries ``w_k`` and accumulates
  ``dP/dl_j = sum_k 2 w_{k+1}^T (dA_k/dl_j) C_k w_k + 2 (w_{k+1}^T dB_k/dl_j)(B_k^T w_{k+1})``;
- :func:`state_variances` — the variance of the sample after every step.

Modes with ``S > 1`` run through the kernels' ``T = 1/S`` twins. Modes whose float64 result is not
finite are recomputed in ``numpy.longdouble``; what is still not representable raises ValueError.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import NDArray

from .program import LD, Program

__all__ = ["output_ratio", "output_variance", "transfer", "value_and_grad", "state_variances", "kappa"]

Array = NDArray[np.float64]
_MEMORY_BUDGET = 256 * 2**20  # bytes of stored forward covariances per chunk of modes


def kappa(S: Array) -> Array:
    """Per-mode scale: S for S > 0 (at least 1e-300, so 1/kappa stays finite), 1 for S = 0."""
    k = np.maximum(S, 1e-300)
    k[S == 0] = 1.0
    return k


#: Modes outside [_LOW, _HIGH] (S > 0) run in numpy.longdouble: their squares leave the float64 range.
_LOW, _HIGH = 1e-290, 1e290


def _groups(S: NDArray[Any], extended: bool = False) -> list[tuple[slice, bool, bool]]:
    """(slice, T-form, longdouble) for the sorted unique modes: S <= 1 runs the kernels in S, S > 1 in
    T = 1/S; extreme modes (and every mode of an ``extended`` program) in longdouble."""
    cuts = [0, int(np.searchsorted(S, 0.0, side="right")), int(np.searchsorted(S, _LOW, side="left")),
            int(np.searchsorted(S, 1.0, side="right")), int(np.searchsorted(S, _HIGH, side="right")), len(S)]
    kinds = [(False, extended), (False, True), (False, extended), (True, extended), (True, True)]
    out = []
    for (a, b), (tform, ld) in zip(zip(cuts[:-1], cuts[1:]), kinds):
        if b > a:
            if out and out[-1][1:] == (tform, ld) and out[-1][0].stop == a:
                out[-1] = (slice(out[-1][0].start, b), tform, ld)
            else:
                out.append((slice(a, b), tform, ld))
    return out


def _caller(S: NDArray[Any], tform: bool) -> Callable[[Any, tuple[Any, ...]], list[Any]]:
    if tform:
        T = 1 / S

        def call(fn: Any, co: tuple[Any, ...]) -> list[Any]:
            return fn.mode_t(S, T, *co)

        return call

    def call_s(fn: Any, co: tuple[Any, ...]) -> list[Any]:
        return fn.mode_s(S, *co)

    return call_s


def _nz(x: Any) -> bool:
    return bool(np.ndim(x)) or x != 0


# ---------------------------------------------------------------------------------------------
# value: backward sum of squares
# ---------------------------------------------------------------------------------------------
def _ratio_group(prog: Program, S: NDArray[Any], kap: NDArray[Any], v0: Any, tform: bool, ld: bool) -> NDArray[Any]:
    call = _caller(S, tform)
    m = prog.m
    dt = LD if ld else np.float64
    w: list[Any] = [1.0 / np.sqrt(kap)] + [0.0] * (m - 1)
    acc = np.zeros(S.shape, dtype=dt)
    for st in reversed(prog.steps):
        E = call(st.kernels, st.coeffs_ld if ld else st.coeffs)
        q = st.kernels.q
        for col in range(q):
            t: Any = 0.0
            for i in range(m):
                b = E[m * m + i * q + col]
                if _nz(b) and _nz(w[i]):
                    t = t + b * w[i]
            if _nz(t):
                acc += t * t
        new: list[Any] = []
        for k in range(m):
            t = 0.0
            for i in range(m):
                a = E[i * m + k]
                if _nz(a) and _nz(w[i]):
                    t = t + a * w[i]
            new.append(t)
        w = new
    return acc + v0 * (w[0] * w[0])


def _finish(rho: NDArray[Any], bad_fn: Callable[[NDArray[np.bool_]], NDArray[Any]]) -> Array:
    """float64 rho, recomputing non-finite modes in longdouble."""
    bad = ~np.isfinite(rho)
    if bad.any():
        rho = np.array(rho, dtype=np.float64)
        rho[bad] = bad_fn(bad)
    return np.asarray(rho, dtype=np.float64)


def output_ratio(prog: Program, S: Array, init: str) -> Array:
    """rho = P / kappa(S) for sorted unique modes ``S`` (see the module docstring)."""
    kap = kappa(S)
    out = np.empty_like(S)
    init_fn = prog.init(init)
    for sl, tform, ld in _groups(S, prog.extended):
        Sg = S[sl]
        with np.errstate(all="ignore"):
            if ld:
                Sl = Sg.astype(LD)
                v0 = init_fn(Sl, prog.c[0], prog.s[0], prog.l[0])[0]
                rho = _ratio_group(prog, Sl, kap[sl].astype(LD), v0, tform, ld=True)
            else:
                v0 = init_fn(Sg, float(prog.c[0]), float(prog.s[0]), float(prog.l[0]))[0]
                rho = _ratio_group(prog, Sg, kap[sl], v0, tform, ld=False)

        def redo(bad: NDArray[np.bool_], Sg: Array = Sg, tform: bool = tform, sl: slice = sl) -> NDArray[Any]:
            Sb = Sg[bad].astype(LD)
            with np.errstate(all="ignore"):
                v0b = init_fn(Sb, prog.c[0], prog.s[0], prog.l[0])[0]
                r = _ratio_group(prog, Sb, kappa(Sg[bad]).astype(LD), v0b, tform, ld=True)
            return np.asarray(r, dtype=np.float64)

        out[sl] = _finish(rho, redo)
    return out


def output_variance(prog: Program, S: Array, init: str) -> Array:
    """P for sorted unique modes ``S``; ValueError where P is not representable in float64."""
    rho = output_ratio(prog, S, init)
    with np.errstate(over="ignore"):
        P = rho * kappa(S)
    if not np.all(np.isfinite(P)):
        i = int(np.flatnonzero(~np.isfinite(P))[0])
        raise ValueError(
            f"spectrum: the output variance of the mode S={S[i]:.6g} is not representable in float64 "
            f"(P/S = {rho[i]:.6g}); the schedule makes the sampler diverge for this mode"
        )
    return P


# ---------------------------------------------------------------------------------------------
# transfer function: forward sweep
# ---------------------------------------------------------------------------------------------
def _transfer_group(prog: Program, S: NDArray[Any], tform: bool, ld: bool) -> NDArray[Any]:
    call = _caller(S, tform)
    m = prog.m
    y: list[Any] = [np.ones(S.shape, dtype=LD if ld else np.float64)] + [0.0] * (m - 1)
    for st in prog.steps:
        E = call(st.kernels, st.coeffs_ld if ld else st.coeffs)
        new = []
        for i in range(m):
            t: Any = 0.0
            for k in range(m):
                a = E[i * m + k]
                if _nz(a) and _nz(y[k]):
                    t = t + a * y[k]
            new.append(t)
        y = new
    return np.broadcast_to(np.asarray(y[0], dtype=LD if ld else np.float64), S.shape)


def transfer(prog: Program, S: Array) -> Array:
    """H = e_0^T prod A e_0 in the VP scale (multiply by the native scale of the first level for native H)."""
    out = np.empty_like(S)
    for sl, tform, ld in _groups(S, prog.extended):
        Sg = S[sl]
        with np.errstate(all="ignore"):
            H = _transfer_group(prog, Sg.astype(LD) if ld else Sg, tform, ld=ld)

        def redo(bad: NDArray[np.bool_], Sg: Array = Sg, tform: bool = tform) -> NDArray[Any]:
            with np.errstate(all="ignore"):
                return np.asarray(_transfer_group(prog, Sg[bad].astype(LD), tform, ld=True), dtype=np.float64)

        out[sl] = _finish(np.array(H), redo)
    if not np.all(np.isfinite(out)):
        i = int(np.flatnonzero(~np.isfinite(out))[0])
        raise ValueError(f"spectrum: the transfer function of the mode S={S[i]:.6g} is not representable in float64")
    return out


# ---------------------------------------------------------------------------------------------
# forward covariances (stored) and the gradient sweep
# ---------------------------------------------------------------------------------------------
def _pairs(m: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(m) for j in range(i, m)]


def _cov_step(C: dict[tuple[int, int], Any], E: list[Any], m: int, q: int, inv_kap: Any) -> dict[tuple[int, int], Any]:
    """C <- A C A^T + B B^T / kappa (upper triangle, scalar 0 for structural zeros)."""

    def get(i: int, j: int) -> Any:
        return C[(i, j)] if i <= j else C[(j, i)]

    AC: dict[tuple[int, int], Any] = {}
    for i in range(m):
        for j in range(m):
            t: Any = 0.0
            for k in range(m):
                a = E[i * m + k]
                if _nz(a):
                    c = get(k, j)
                    if _nz(c):
                        t = t + a * c
            AC[(i, j)] = t
    out: dict[tuple[int, int], Any] = {}
    for i, j in _pairs(m):
        t = 0.0
        for k in range(m):
            a = E[j * m + k]
            if _nz(a) and _nz(AC[(i, k)]):
                t = t + AC[(i, k)] * a
        for col in range(q):
            bi, bj = E[m * m + i * q + col], E[m * m + j * q + col]
            if _nz(bi) and _nz(bj):
                t = t + bi * bj * inv_kap
        out[(i, j)] = t
    return out


def state_variances(prog: Program, S: Array, init: str) -> Array:
    """Variance of the sample (VP scale) before every step and after the last: shape (len(steps) + 1, modes)."""
    out = np.empty((len(prog.steps) + 1, S.size))
    m = prog.m
    for sl, tform, _ in _groups(S):
        Sg = S[sl]
        call = _caller(Sg, tform)
        v0 = prog.init(init)(Sg, float(prog.c[0]), float(prog.s[0]), float(prog.l[0]))[0]
        C: dict[tuple[int, int], Any] = {p: 0.0 for p in _pairs(m)}
        C[(0, 0)] = np.broadcast_to(np.asarray(v0, dtype=np.float64), Sg.shape)
        with np.errstate(all="ignore"):
            for k, st in enumerate(prog.steps):
                out[k, sl] = C[(0, 0)]
                C = _cov_step(C, call(st.kernels, st.coeffs), m, st.kernels.q, 1.0)
        out[-1, sl] = C[(0, 0)]
    return out


def _grad_group(prog: Program, S: Array, kap: Array, v0: Any, dv0: Any, a_of_rho: Callable[[Array], tuple[Any, Array]],
                tform: bool, grad: Array) -> tuple[Any, Array]:
    """(J contribution, rho) for one group of modes; accumulates dJ/dl into ``grad``."""
    call = _caller(S, tform)
    m = prog.m
    inv_kap = 1.0 / kap
    C: dict[tuple[int, int], Any] = {p: 0.0 for p in _pairs(m)}
    C[(0, 0)] = v0 * inv_kap
    stored = []
    for st in prog.steps:
        stored.append(C)
        C = _cov_step(C, call(st.kernels, st.coeffs), m, st.kernels.q, inv_kap)
    rho = np.broadcast_to(np.asarray(C[(0, 0)], dtype=np.float64), S.shape)
    J, at = a_of_rho(rho)  # at = weight * df/dP * kappa per mode (the adjoint of rho)

    def cget(Ck: dict[tuple[int, int], Any], i: int, j: int) -> Any:
        return Ck[(i, j)] if i <= j else Ck[(j, i)]

    w: list[Any] = [np.ones(S.shape)] + [0.0] * (m - 1)
    for st, Ck in zip(reversed(prog.steps), reversed(stored)):
        gk = st.grad_kernels
        E = call(gk, st.grad_coeffs)
        q = gk.q
        nA, nB = m * m, m * q
        wk = []  # w_k = A^T w_{k+1}
        for k in range(m):
            t: Any = 0.0
            for i in range(m):
                a = E[i * m + k]
                if _nz(a) and _nz(w[i]):
                    t = t + a * w[i]
            wk.append(t)
        u = []  # u = C_k w_k
        for i in range(m):
            t = 0.0
            for k in range(m):
                c = cget(Ck, i, k)
                if _nz(c) and _nz(wk[k]):
                    t = t + c * wk[k]
            u.append(t)
        bw = []  # B^T w_{k+1}
        for col in range(q):
            t = 0.0
            for i in range(m):
                b = E[nA + i * q + col]
                if _nz(b) and _nz(w[i]):
                    t = t + b * w[i]
            bw.append(t)
        for blk, lev in enumerate(st.grad_levels):
            base = nA + nB + blk * (nA + nB)
            tot: Any = 0.0
            for i in range(m):
                if not _nz(w[i]):
                    continue
                for k in range(m):
                    d = E[base + i * m + k]
                    if _nz(d) and _nz(u[k]):
                        tot = tot + 2.0 * w[i] * d * u[k]
                for col in range(q):
                    d = E[base + nA + i * q + col]
                    if _nz(d) and _nz(bw[col]):
                        tot = tot + 2.0 * w[i] * d * bw[col] * inv_kap
            if _nz(tot):
                grad[lev] += float(np.sum(at * tot))
        w = wk
    if _nz(dv0) and _nz(w[0]):
        grad[0] += float(np.sum(at * w[0] * w[0] * dv0 * inv_kap))
    return J, rho


def value_and_grad(prog: Program, S: Array, init: str, a_of_rho: Callable[[Array, Array, Array], tuple[float, Array]]
                   ) -> tuple[float, Array, Array]:
    """(J, dJ/dl for each of the K levels, rho) for sorted unique modes ``S``.

    ``a_of_rho(rho, S_group, slice) -> (J_group, adjoint)`` gives the group's objective and the
    derivative of the objective with respect to rho, per mode.
    """
    grad = np.zeros(prog.K)
    rho_all = np.empty_like(S)
    J = 0.0
    kap = kappa(S)
    init_fn = prog.init(init)
    n_pairs = len(_pairs(prog.m))
    chunk = max(1024, int(_MEMORY_BUDGET // max(1, 8 * n_pairs * (len(prog.steps) + 1))))
    for sl, tform, _ in _groups(S):
        for start in range(sl.start, sl.stop, chunk):
            sub = slice(start, min(sl.stop, start + chunk))
            Sg = S[sub]
            with np.errstate(all="ignore"):
                v0, dv0 = init_fn(Sg, float(prog.c[0]), float(prog.s[0]), float(prog.l[0]))
                dv0 = 0.0 if np.isneginf(prog.l[0]) else dv0
                Jg, rho = _grad_group(prog, Sg, kap[sub], v0, dv0, lambda r, sub=sub, Sg=Sg: a_of_rho(r, Sg, sub),
                                      tform, grad)
            J += Jg
            rho_all[sub] = rho
    if not (np.isfinite(J) or J == np.inf) or not np.all(np.isfinite(grad)):
        bad = np.flatnonzero(~np.isfinite(grad))
        where = f"level {int(bad[0])}" if bad.size else "the objective"
        raise ValueError(f"alpha_bar: the gradient at {where} is not finite in float64 for this schedule and spectrum")
    return float(J), grad, rho_all
