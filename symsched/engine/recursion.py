"""The sweeps of the linear state-space engine (MATH.md §9), for every sampler.

Per mode, a step maps the state ``y`` (VP-scaled sample plus history) to ``A y + B z``; the state
covariance obeys ``C <- A C A^T + B B^T``. Tiny modes are normalised by ``kappa = S`` (``S < 1e-100``)
so that the ratio ``rho = P / kappa`` stays in range where ``P`` itself underflows (``P ~ S^2``).

- :func:`output_ratio` — ``rho``. One-entry samplers run ``v <- a (a v) + b^2 / kappa`` forward (every
  term positive, the product ordered so that no square underflows); samplers with memory run one
  *backward* sweep that sums squares, ``P = sum_k ||B_k^T w_{k+1}||^2 + v_0 (w_0 . e_0)^2`` with
  ``w_k = A_k^T w_{k+1}``: positive by construction and exact for tiny modes (the square-root form of
  the covariance recursion, without a Cholesky factor to update);
- :func:`transfer` — ``H = e_0^T A_K ... A_1 e_0`` by a forward sweep;
- :func:`value_and_grad` — ``J = sum_modes f(P, S)`` and ``dJ/dl`` for every level: a forward sweep
  stores ``C_k`` (chunked over modes to bound memory), a backward sweep carries ``w_k`` and adds
  ``dP/dl_j = sum_k 2 w_{k+1}^T (dA_k/dl_j) C_k w_k + 2 (w_{k+1}^T dB_k/dl_j)(B_k^T w_{k+1})``;
- :func:`state_variances` — the variance of the sample before every step and after the last.

Modes with ``S > 1`` run through the kernels' ``T = 1/S`` twins. Extreme modes (``S`` outside
[1e-290, 1e290]), programs whose level coefficients leave the float64 range, and any mode whose
float64 result is not finite run in ``numpy.longdouble``; what is still not representable raises
ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import NDArray

from .program import LD, Program

__all__ = ["output_ratio", "output_variance", "transfer", "value_and_grad", "state_variances", "kappa"]

Array = NDArray[np.float64]
_MEMORY_BUDGET = 256 * 2**20  # bytes of stored forward covariances per chunk of modes
#: Modes outside [_LOW, _HIGH] (S > 0) run in numpy.longdouble; below _SCALE they are normalised by S.
_LOW, _SCALE, _HIGH = 1e-290, 1e-100, 1e290


def kappa(S: Array) -> Array:
    """Per-mode scale of the sweeps: S for 0 < S < 1e-100 (at least 1e-300), else 1."""
    k = np.ones_like(S)
    small = (S > 0) & (S < _SCALE)
    k[small] = np.maximum(S[small], 1e-300)
    return k


def _nz(x: Any) -> bool:
    return bool(np.ndim(x)) or x != 0


@dataclass
class _Group:
    """A slice of the sorted unique modes and how to run it."""

    sl: slice
    tform: bool  # kernels in T = 1/S (S > 1)
    ld: bool  # numpy.longdouble
    scaled: bool  # kappa = S (tiny modes)

    def arrays(self, S: Array) -> tuple[NDArray[Any], Any]:
        """(S, kappa) of the group in its dtype; kappa is the scalar 1 when unscaled."""
        Sg = S[self.sl].astype(LD) if self.ld else S[self.sl]
        if not self.scaled:
            return Sg, 1.0
        return Sg, kappa(S[self.sl]).astype(Sg.dtype)


def _groups(S: Array, extended: bool = False) -> list[_Group]:
    """Groups of the sorted unique modes: S = 0 | tiny (longdouble) | small (scaled) | <= 1 | > 1 | huge."""
    cuts = [0, int(np.searchsorted(S, 0.0, side="right")), int(np.searchsorted(S, _LOW, side="left")),
            int(np.searchsorted(S, _SCALE, side="left")), int(np.searchsorted(S, 1.0, side="right")),
            int(np.searchsorted(S, _HIGH, side="right")), len(S)]
    kinds = [(False, extended, False), (False, True, True), (False, extended, True), (False, extended, False),
             (True, extended, False), (True, True, False)]
    out: list[_Group] = []
    for a, b, (tform, ld, scaled) in zip(cuts[:-1], cuts[1:], kinds):
        if b > a:
            if out and (out[-1].tform, out[-1].ld, out[-1].scaled) == (tform, ld, scaled) and out[-1].sl.stop == a:
                out[-1].sl = slice(out[-1].sl.start, b)
            else:
                out.append(_Group(slice(a, b), tform, ld, scaled))
    return out


class _Caller:
    """Calls the mode functions of one group of modes with a workspace allocated once per sweep."""

    def __init__(self, prog: Program, S: NDArray[Any], g: _Group) -> None:
        self.S, self.ld = S, g.ld
        self.T = 1 / S if g.tform else None
        n = 1
        for st in prog.steps:
            for kern in (st.kernels, st.grad_kernels):
                if kern is not None:
                    n = max(n, getattr(kern.mode_s, "n_workspace", 0), getattr(kern.mode_t, "n_workspace", 0))
        self.ws = [np.empty(S.shape, dtype=S.dtype) for _ in range(n)]

    def __call__(self, kern: Any, co: tuple[Any, ...]) -> list[Any]:
        if self.T is not None:
            return kern.mode_t(self.S, self.T, *co, self.ws)
        return kern.mode_s(self.S, *co, self.ws)

    def step(self, st: Any) -> list[Any]:
        return self(st.kernels, st.coeffs_ld if self.ld else st.coeffs)

    def grad_step(self, st: Any) -> list[Any]:
        return self(st.grad_kernels, st.grad_coeffs_ld if self.ld else st.grad_coeffs)


def _v0(prog: Program, init: str, S: NDArray[Any], ld: bool) -> tuple[Any, Any]:
    c, s, l = (prog.c[0], prog.s[0], prog.l[0]) if ld else (float(prog.c[0]), float(prog.s[0]), float(prog.l[0]))
    with np.errstate(all="ignore"):
        v0, dv0 = prog.init(init)(S, c, s, l)
    return v0, (0.0 if np.isneginf(prog.l[0]) else dv0)


# ---------------------------------------------------------------------------------------------
# value
# ---------------------------------------------------------------------------------------------
def _ratio_scalar(prog: Program, call: _Caller, S: NDArray[Any], inv_kap: Any, v0: Any) -> NDArray[Any]:
    """One-entry samplers: v <- a (a v) + b^2 / kappa forward, in place."""
    v = np.array(np.broadcast_to(v0 * inv_kap, S.shape), dtype=S.dtype)
    tmp = np.empty_like(v)
    for st in prog.steps:
        E = call.step(st)
        a = E[0]
        if np.ndim(a):
            np.multiply(v, a, out=v)
            np.multiply(v, a, out=v)
        else:
            v *= a * a
        if st.kernels.q:
            b = E[1]
            if np.ndim(b) or np.ndim(inv_kap):
                np.multiply(b, b, out=tmp)
                tmp *= inv_kap
                v += tmp
            elif b != 0:
                v += b * b * inv_kap
    return v


def _ratio_memory(prog: Program, call: _Caller, S: NDArray[Any], inv_kap: Any, v0: Any) -> NDArray[Any]:
    """Samplers with memory: backward sum of squares."""
    m = prog.m
    w: list[Any] = [np.sqrt(np.broadcast_to(np.asarray(inv_kap, dtype=S.dtype), S.shape))] + [0.0] * (m - 1)
    acc = np.zeros(S.shape, dtype=S.dtype)
    for st in reversed(prog.steps):
        E = call.step(st)
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


def _ratio_group(prog: Program, S: Array, g: _Group, init: str) -> NDArray[Any]:
    Sg, kap = g.arrays(S)
    call = _Caller(prog, Sg, g)
    v0, _ = _v0(prog, init, Sg, g.ld)
    inv_kap = 1.0 / kap
    with np.errstate(all="ignore"):
        if prog.m == 1:
            return _ratio_scalar(prog, call, Sg, inv_kap, v0)
        return _ratio_memory(prog, call, Sg, inv_kap, v0)


def output_ratio(prog: Program, S: Array, init: str) -> Array:
    """rho = P / kappa(S) for sorted unique modes ``S`` (see the module docstring)."""
    out = np.empty_like(S)
    for g in _groups(S, prog.extended):
        rho = np.asarray(_ratio_group(prog, S, g, init), dtype=np.float64)
        bad = ~np.isfinite(rho)
        if bad.any() and not g.ld:  # recompute in longdouble the modes that left the float64 range
            idx = np.arange(g.sl.start, g.sl.stop)[bad]
            sub = _Group(slice(0, idx.size), g.tform, True, g.scaled)
            rho[bad] = np.asarray(_ratio_group(prog, S[idx], sub, init), dtype=np.float64)
        out[g.sl] = rho
    return out


def output_variance(prog: Program, S: Array, init: str) -> Array:
    """P for sorted unique modes ``S``; ValueError where P is not representable in float64."""
    rho = output_ratio(prog, S, init)
    with np.errstate(over="ignore", invalid="ignore"):
        P = rho * kappa(S)
    if not np.all(np.isfinite(P)):
        i = int(np.flatnonzero(~np.isfinite(P))[0])
        raise ValueError(
            f"spectrum: the output variance of the mode S={S[i]:.6g} exceeds the float64 range for this "
            f"schedule (the sampler diverges for this mode)"
        )
    return P


# ---------------------------------------------------------------------------------------------
# transfer function: forward sweep
# ---------------------------------------------------------------------------------------------
def _transfer_group(prog: Program, S: Array, g: _Group) -> NDArray[Any]:
    Sg, _ = g.arrays(S)
    call = _Caller(prog, Sg, g)
    m = prog.m
    y: list[Any] = [np.ones(Sg.shape, dtype=Sg.dtype)] + [0.0] * (m - 1)
    with np.errstate(all="ignore"):
        for st in prog.steps:
            E = call.step(st)
            new = []
            for i in range(m):
                t: Any = 0.0
                for k in range(m):
                    a = E[i * m + k]
                    if _nz(a) and _nz(y[k]):
                        t = t + a * y[k]
                new.append(t)
            y = new
    return np.broadcast_to(np.asarray(y[0], dtype=Sg.dtype), Sg.shape)


def transfer(prog: Program, S: Array) -> Array:
    """H = e_0^T prod A e_0 in the VP scale (multiply by the native scale of the first level for native H)."""
    out = np.empty_like(S)
    for g in _groups(S, prog.extended):
        H = np.array(_transfer_group(prog, S, g), dtype=np.float64)
        bad = ~np.isfinite(H)
        if bad.any() and not g.ld:
            idx = np.arange(g.sl.start, g.sl.stop)[bad]
            H[bad] = np.asarray(_transfer_group(prog, S[idx], _Group(slice(0, idx.size), g.tform, True, False)),
                                dtype=np.float64)
        out[g.sl] = H
    if not np.all(np.isfinite(out)):
        i = int(np.flatnonzero(~np.isfinite(out))[0])
        raise ValueError(f"spectrum: the transfer function of the mode S={S[i]:.6g} exceeds the float64 range")
    return out


# ---------------------------------------------------------------------------------------------
# forward covariances and the gradient sweep
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
    """Variance of the sample (VP scale) before every step and after the last: shape (steps + 1, modes)."""
    out = np.empty((len(prog.steps) + 1, S.size))
    m = prog.m
    for g in _groups(S, prog.extended):
        Sg, _ = g.arrays(S)
        call = _Caller(prog, Sg, g)
        v0, _ = _v0(prog, init, Sg, g.ld)
        C: dict[tuple[int, int], Any] = {p: 0.0 for p in _pairs(m)}
        C[(0, 0)] = np.broadcast_to(np.asarray(v0, dtype=Sg.dtype), Sg.shape)
        with np.errstate(all="ignore"):
            for k, st in enumerate(prog.steps):
                out[k, g.sl] = C[(0, 0)]
                C = {key: (np.array(v, copy=True) if np.ndim(v) else v) for key, v in
                     _cov_step(C, call.step(st), m, st.kernels.q, 1.0).items()}
        out[-1, g.sl] = C[(0, 0)]
    return out


def _grad_chunk(prog: Program, Sg: NDArray[Any], g: _Group, kap: Any, init: str,
                adjoint: Callable[[Array, Array], tuple[float, Array]], grad: Array) -> tuple[float, Array]:
    """(J, rho) of one chunk of modes; adds dJ/dl into ``grad``."""
    call = _Caller(prog, Sg, g)
    m = prog.m
    inv_kap = 1.0 / kap
    v0, dv0 = _v0(prog, init, Sg, g.ld)
    C: dict[tuple[int, int], Any] = {p: 0.0 for p in _pairs(m)}
    C[(0, 0)] = np.broadcast_to(np.asarray(v0 * inv_kap, dtype=Sg.dtype), Sg.shape)
    stored = []
    for st in prog.steps:
        stored.append(C)
        C = {key: (np.array(v, copy=True) if np.ndim(v) else v) for key, v in
             _cov_step(C, call.step(st), m, st.kernels.q, inv_kap).items()}
    rho = np.asarray(np.broadcast_to(C[(0, 0)], Sg.shape), dtype=np.float64)
    J, at = adjoint(rho, np.asarray(kap, dtype=np.float64))  # at: dJ/drho per mode

    def cget(Ck: dict[tuple[int, int], Any], i: int, j: int) -> Any:
        return Ck[(i, j)] if i <= j else Ck[(j, i)]

    w: list[Any] = [np.ones(Sg.shape, dtype=Sg.dtype)] + [0.0] * (m - 1)
    for st, Ck in zip(reversed(prog.steps), reversed(stored)):
        E = call.grad_step(st)
        q = st.grad_kernels.q
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
                grad[lev] += float(np.sum(at * np.broadcast_to(tot, Sg.shape)))
        w = [np.array(v, copy=True) if np.ndim(v) else v for v in wk]
    if _nz(dv0) and _nz(w[0]):
        grad[0] += float(np.sum(at * np.broadcast_to(w[0] * w[0] * dv0 * inv_kap, Sg.shape)))
    return J, rho


def value_and_grad(prog: Program, S: Array, init: str,
                   objective: Callable[[Array, Array, Array, slice], tuple[float, Array]]) -> tuple[float, Array, Array]:
    """(J, dJ/dl for each of the K levels, rho = P / kappa) for sorted unique modes ``S``.

    ``objective(rho, kappa, S_chunk, chunk) -> (J_chunk, dJ/drho)`` gives a chunk's objective and its
    derivative with respect to rho, per mode.
    """
    grad = np.zeros(prog.K)
    rho_all = np.empty_like(S)
    J = 0.0
    n_pairs = len(_pairs(prog.m))
    chunk = max(1024, int(_MEMORY_BUDGET // max(1, 8 * n_pairs * (len(prog.steps) + 1))))
    for g in _groups(S, prog.extended):
        for start in range(g.sl.start, g.sl.stop, chunk):
            sub = slice(start, min(g.sl.stop, start + chunk))
            cg = _Group(sub, g.tform, g.ld, g.scaled)
            Sg, kap = cg.arrays(S)
            with np.errstate(all="ignore"):
                Jg, rho = _grad_chunk(prog, Sg, cg, kap, init,
                                      lambda r, k, sub=sub: objective(r, k, S[sub], sub), grad)
            J += Jg
            rho_all[sub] = rho
    if not np.all(np.isfinite(grad)):
        bad = int(np.flatnonzero(~np.isfinite(grad))[0])
        raise ValueError(f"alpha_bar: the gradient at level {bad} is not finite in float64 for this schedule")
    return float(J), grad, rho_all
