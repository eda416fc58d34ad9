"""The sweeps of the linear state-space engine (docs/model.md §9), for every sampler.

Per mode, a step maps the state ``y`` (VP-scaled sample plus history) to ``A y + B z``; the state
covariance obeys ``C <- A C A^T + B B^T``. Tiny modes are normalised by ``kappa = S`` (``S < 1e-100``)
so that the ratio ``rho = P / kappa`` stays in range where ``P`` itself underflows (``P ~ S^2``).

- :func:`output_ratio` — ``rho``. One-entry samplers run ``v <- a (a v) + b^2 / kappa`` forward (every
  term positive, the product ordered so that no square underflows); samplers with memory run one
  *backward* sweep that sums squares, ``P = sum_k ||B_k^T w_{k+1}||^2 + v_0 (w_0 . e_0)^2`` with
  ``w_k = A_k^T w_{k+1}``: positive by construction and exact for tiny modes (the square-root form of
  the covariance recursion, without a Cholesky factor to update);
- :func:`transfer` — ``H = e_0^T A_K ... A_1 e_0`` by a forward sweep;
- :func:`value_and_grad` — ``J = sum_modes f(P, S)`` and ``dJ/dl`` for every level (in blocks of modes:
  cache-sized, and bounding memory): one-entry samplers store the forward variances ``v_k`` and sweep the adjoint
  back; samplers with memory never form ``C_k``: the backward sweep of ``w_k`` (stored) gives ``P``, then a forward
  sweep carries ``z_k = C_k w_k`` and adds
  ``dP/dl_j = sum_k 2 w_{k+1}^T (dA_k/dl_j) z_k + 2 (w_{k+1}^T dB_k/dl_j)(B_k^T w_{k+1})``; for long
  programs and many modes (:func:`_interpolated_value_and_grad`) the forward sweep runs over every mode and both
  sweeps over a few hundred nodes in ln S, weighted by the modes' cotangents carried there by :mod:`.interp`;
- :func:`state_variances` — the variance of the sample before every step and after the last.

Modes with ``S > 1`` run through the kernels' ``T = 1/S`` twins. Extreme modes (``S`` outside
[1e-150, 1e290]: the gradient kernels hold ``S^2`` terms, subnormal in float64 below about 1e-154),
programs whose level coefficients leave the float64 range, and any mode whose float64 result is not
finite run in ``numpy.longdouble``; what is still not representable raises ValueError.
"""

from __future__ import annotations

import math
import mmap
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

from . import interp
from .program import LD, Program, diverged, finite_gaps

__all__ = ["output_ratio", "checked_ratio", "output_variance", "transfer", "value_and_grad", "state_variances",
           "checked_state_variances", "below_float64", "kappa", "scalar_affine", "scalar_from"]

Array = NDArray[np.float64]
_MEMORY_BUDGET = 512 * 2**20  # bytes of stored forward covariances per chunk of modes (65,536 modes x 1000 steps: one chunk)
#: modes per block of the gradient sweeps and of the memory samplers' value sweep: a step's working arrays (a
#: dozen or two rows of 128 KiB) stay in a core's L2 cache. On the 2-core benchmark machine (2 MiB L2 per core,
#: benchmarks/bench_transfer.py) blocks of 16,384 modes ran the 1000-step DDPM gradient 1.4x and the dpmpp_2m
#: value 1.5x faster than blocks of 65,536; 8,192 and 32,768 were slower, and below ~4,096 the per-call overhead
#: of NumPy dominates. One-entry value sweeps (a few arrays) gain nothing and run unblocked.
BLOCK_MODES = 16384
_LOCAL = threading.local()  # per-thread reusable storage (threads may run sweeps concurrently)
_THREADPOOLS: list[Any] = []


def _single_threaded_blas() -> Any:
    """A context limiting BLAS to one thread (a threaded BLAS dot stalls on a loaded machine). The
    controller is built once: building it rescans the process's libraries, costly per call."""
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="blas")


def _storage(rows: int, n: int, dtype: Any) -> NDArray[Any]:
    """A (rows, n) array for the forward variances, reused across calls: its pages are mapped once per
    process, not once per gradient evaluation, and all at once (see :func:`_populated`)."""
    key = np.dtype(dtype)
    store = _LOCAL.__dict__.setdefault("store", {})
    buf = store.get(key)
    if buf is None or buf.size < rows * n:
        buf = _populated(rows * n, key)
        if key == np.float64:  # keep one float64 buffer; extended-precision ones are transient
            store[key] = buf
    return buf[: rows * n].reshape(rows, n)


def _populated(size: int, dtype: np.dtype) -> NDArray[Any]:
    """An uninitialised 1-D array whose pages are mapped when it is allocated (Linux ``MAP_POPULATE``).

    First-touch page faults on a fresh ``numpy.empty`` cost one trap per 4 KiB page: on the benchmark
    machine (a VM) 1.5 s for the 524 MB of a 1000-step gradient on 65,536 modes, against 0.2 s for one
    populating ``mmap`` (benchmarks/bench_transfer.py, regime (a)). Elsewhere: ``numpy.empty``.
    """
    nbytes = size * dtype.itemsize
    flags = getattr(mmap, "MAP_POPULATE", 0)
    if nbytes < 2**22 or not flags:
        return np.empty(size, dtype=dtype)
    try:
        region = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flags)
    except (OSError, ValueError):  # pragma: no cover - no anonymous mapping: numpy's allocator
        return np.empty(size, dtype=dtype)
    return np.frombuffer(region, dtype=dtype, count=size)  # the array keeps the mapping alive
#: Modes outside [_LOW, _HIGH] (S > 0) run in numpy.longdouble; below _SCALE they are normalised by S. _LOW keeps
#: S^2 (in the gradient kernels' basis functions) a normal float64: below it the gradients lost every digit.
_LOW, _SCALE, _HIGH = 1e-150, 1e-100, 1e290


def kappa(S: Array) -> Array:
    """Per-mode scale of the sweeps: S for 0 < S < 1e-100 (at least 1e-300), else 1."""
    k = np.ones_like(S)
    small = (S > 0) & (S < _SCALE)
    k[small] = np.maximum(S[small], 1e-300)
    return k


def _nz(x: Any) -> bool:
    """Not a structural zero: an array (of any values), or a nonzero scalar."""
    if isinstance(x, np.ndarray) and x.ndim:
        return True
    return bool(x != 0)


@dataclass
class _Group:
    """A slice of the sorted unique modes and how to run it."""

    sl: slice
    tform: bool  # kernels in T = 1/S (S > 1)
    ld: bool  # numpy.longdouble
    scaled: bool  # kappa = S (tiny modes)
    perturb: float = 0.0  # the value sweep's entries scaled by 1 + perturb * (i + 1) / n (see :func:`_condition`)

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
        self.S, self.ld, self.perturb = S, g.ld, g.perturb
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
        E = self(st.kernels, st.coeffs_ld if self.ld else st.coeffs)
        if not self.perturb:
            return E
        n = len(E)  # a distinct relative change per entry: no two cancelling entries keep their exact sum
        return [e * (1 + self.perturb * (i + 1) / n) if _nz(e) else e for i, e in enumerate(E)]

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
        for b in E[1:1 + st.kernels.q]:  # every noise column (dpmpp_sde draws two per step)
            if np.ndim(b) or np.ndim(inv_kap):
                np.multiply(b, b, out=tmp)
                tmp *= inv_kap
                v += tmp
            elif b != 0:
                v += b * b * inv_kap
    return v


def _ratio_memory(prog: Program, call: _Caller, S: NDArray[Any], inv_kap: Any, v0: Any) -> NDArray[Any]:
    """Samplers with memory: backward sum of squares, in preallocated buffers (two sets of ``w``, swapped
    each step, so that no step allocates its temporaries)."""
    m = prog.m
    w: list[Any] = [np.sqrt(np.broadcast_to(np.asarray(inv_kap, dtype=S.dtype), S.shape))] + [0.0] * (m - 1)
    acc = np.zeros(S.shape, dtype=S.dtype)
    bufs = [[np.empty_like(acc) for _ in range(m)] for _ in range(2)]
    t, tmp = np.empty_like(acc), np.empty_like(acc)
    for n, st in enumerate(reversed(prog.steps)):
        w = _back_row(st, call.step(st), m, w, acc, bufs[n % 2], t, tmp)
    return acc + v0 * (w[0] * w[0])


def _back_row(st: Any, E: list[Any], m: int, w: list[Any], acc: NDArray[Any], out: Any, t: NDArray[Any],
              tmp: NDArray[Any]) -> list[Any]:
    """One step of the backward sum of squares: ``acc += (B^T w)^2`` for every noise column, and ``A^T w`` into the
    rows of ``out`` (``t``, ``tmp`` scratch arrays; structural zeros stay the scalar 0.0)."""
    q = st.kernels.q
    for col in range(q):
        bt = _combine([(E[m * m + i * q + col], w[i]) for i in range(m)], t, tmp)
        if _nz(bt):
            np.multiply(bt, bt, out=tmp)
            acc += tmp
    return [_combine([(E[i * m + k], w[i]) for i in range(m)], out[k], tmp) for k in range(m)]


def _combine(terms: list[tuple[Any, Any]], out: NDArray[Any], tmp: NDArray[Any]) -> Any:
    """sum of c * x over ``terms`` into ``out`` (``tmp`` a scratch array; neither may alias an x); the structural
    zero 0.0 when every term has one (see :func:`_nz`)."""
    first = True
    for c, x in terms:
        if not (_nz(c) and _nz(x)):
            continue
        if first:
            np.multiply(x, c, out=out)
            first = False
        else:
            np.multiply(x, c, out=tmp)
            out += tmp
    return 0.0 if first else out


def _ratio_group(prog: Program, S: Array, g: _Group, init: str) -> NDArray[Any]:
    if prog.m > 1 and g.sl.stop - g.sl.start > BLOCK_MODES:  # in blocks whose working arrays stay in cache
        return np.concatenate([_ratio_group(prog, S, replace(g, sl=slice(a, min(a + BLOCK_MODES, g.sl.stop))), init)
                               for a in range(g.sl.start, g.sl.stop, BLOCK_MODES)])
    Sg, kap = g.arrays(S)
    call = _Caller(prog, Sg, g)
    v0, _ = _v0(prog, init, Sg, g.ld)
    inv_kap = 1.0 / kap
    with np.errstate(all="ignore"):
        if prog.m == 1:
            return _ratio_scalar(prog, call, Sg, inv_kap, v0)
        return _ratio_memory(prog, call, Sg, inv_kap, v0)


#: relative disagreement between the float64 and the longdouble sweep of a probe mode that is not trusted
MAX_ROUNDING = 1e-9
#: float64-vs-longdouble disagreement of the level coefficients beyond which the longdouble ones (2^11 times
#: more accurate) may be off by more than about MAX_ROUNDING (ordinary schedules: below 1e-7, LMS the worst)
MAX_COEFFICIENT_LOSS = 2e-6
_CONDITION_PROBES = 24
#: log-SNR gaps beyond which multistep coefficients may cancel (e^20 = 5e8), or neighbouring gaps this unequal,
#: or below which a history of nearly equal entries cancels in the step's combination (LMS on close levels)
_LARGE_GAP, _GAP_RATIO, _SMALL_GAP = 20.0, 50.0, 0.05
#: a sweep that ends at a noisy level (DEIS; final_sigmas_type="sigma_min") carries the start's noise, of VP amplitude
#: sigma_0, down to the output's sigma_out through histories of that size: its rounding is amplified by up to about
#: sigma_0 / sigma_out (DEIS ending at 1 - 2^-53 after 0.7: 5e7, and 7.6e-9 off with every gap below _LARGE_GAP).
#: Beyond this ratio (about 3e-10 of rounding in float64) the schedule is checked like one with a huge gap.
_FLOOR_RATIO = 2.0**10
#: a value-and-gradient sweep of a sampler with memory whose probe modes disagree with longdouble by more than this
#: (ordinary schedules, K = 10 to 1000 of every multistep sampler: below 2e-14) runs again in longdouble: its level
#: gradients multiply that rounding by the coefficients' derivatives (~1/gap). LMS order 3 with one log-SNR gap of
#: 1e-3 before a step of 2.5: J 6e-11 off (as output_spectrum) but a gradient entry 3e-5 off, 2e-8 after
GRAD_ROUNDING = 1e-12
#: the float64-longdouble disagreement divided by 2^11 (or the condition number times 2^-64) estimates the longdouble
#: sweep's error, not a bound: dpmpp_2m on levels 7.6e-10 apart in log-SNR, float64 1.2e-6 off and a condition
#: number of 6e9 (estimates 6e-10 and 3e-10), left the longdouble transfer function 2.2e-9 off (audit of 5 December).
#: Longdouble is trusted only this factor below MAX_ROUNDING; beyond, mpmath (few modes) or a ValueError
_LD_MARGIN = 8.0
#: a trusted float64 sweep whose probe modes disagree with longdouble by more than this reruns in longdouble: the
#: probes sample at most 24 modes, and the others can round a few times worse (dpmpp_2m with a log-SNR gap of
#: 4.5e-10 on 128 modes: probes within 1e-9, three other modes 1.4e-9 to 1.7e-9 off; audit of 5 December), so a
#: result returned as trusted stays within MAX_ROUNDING
TRUST_MARGIN = MAX_ROUNDING / _LD_MARGIN
#: longdouble carries 11 more bits than float64: a float64 sweep that disagrees with the longdouble one by
#: less than this (times MAX_ROUNDING) is replaced by the longdouble sweep, whose error is 2^-11 of it
_LD_GAIN = 2.0**11


def _may_cancel(prog: Program) -> bool:
    """Cheap screen: only schedules with a huge or a small finite log-SNR gap, or very unequal gaps within the
    reach of one step (the ``prog.m`` gaps a step with an ``m``-entry state reads), are checked further."""
    if prog.m == 1:
        return False
    a = finite_gaps(prog.l)  # a zero: distinct levels (checked on entry) within an ulp in float64 log-SNR, the
    # smallest gap of all (levels 1 ulp apart in sigma: dpmpp_2m came out 78 for 49 while zero gaps were left out here)
    if a.size == 0:
        return False
    if float(a.max()) > _LARGE_GAP or float(a.min()) < _SMALL_GAP or _floor_ratio(prog) > _FLOOR_RATIO:
        return True
    width = min(a.size, prog.m)
    if width < 2:
        return False
    windows = np.lib.stride_tricks.sliding_window_view(a, width)
    return float(np.max(windows.max(axis=1) / windows.min(axis=1))) > _GAP_RATIO


def _floor_ratio(prog: Program) -> float:
    """sigma_0 / sigma_out in VP units, sigma^2 = 1 / (1 + e^l), of a program whose last step ends at a noisy level
    (its output keeps a noise floor); 1 when it ends at the clean level."""
    if not prog.steps or prog.K in prog.steps[-1].levels:
        return 1.0
    out = max(prog.steps[-1].levels)
    with np.errstate(over="ignore", invalid="ignore"):
        lr = float(np.logaddexp(0.0, float(prog.l[out])) - np.logaddexp(0.0, float(prog.l[0])))
    return float(np.exp(lr / 2)) if np.isfinite(lr) else float("inf")


Sweep = Callable[[Array, "_Group"], Any]


def rounding_check(prog: Program, S: Array, init: str, rho: Array,
                   exact: Optional[Callable[[Array], Array]] = None, *, sweep: Optional[Sweep] = None,
                   scale: Callable[[Array], Any] = kappa) -> tuple[bool, float]:
    """(trusted, worst relative disagreement) of the float64 sweep of a sampler with memory.

    Multistep coefficients have mixed signs; across log-SNR gaps of very different or huge size (e.g.
    alpha_bar = 1e-320 next to 1e-200) they reach 1e30 and more and cancel, so the float64 result can be
    wrong in every digit. Schedules that pass :func:`_may_cancel` are trusted at once; the others re-run up
    to 24 probe modes in longdouble (11 more bits): a disagreement above :data:`MAX_ROUNDING` means
    rounding errors were amplified. The longdouble probe is itself checked, by perturbing its entries
    (:func:`_condition`): a condition number beyond :data:`_MAX_CONDITION` leaves longdouble no digit to compare
    with (levels one ulp apart, coefficients ~1e16 of opposite signs: the two sweeps agreed on an LMS P 0.2 %
    off; DEIS across huge gaps: both rounded to 0). Level coefficients of a sampler with memory whose own
    formulas cancel (``prog.coefficient_loss`` above :data:`MAX_COEFFICIENT_LOSS`) are untrusted whatever the
    gaps (one-entry samplers combine no coefficients of mixed sign; where their formulas cancel, on close or far
    levels, the program takes their coefficients from mpmath: ``program.LOSS_SCREEN_GAPS``). A program that already
    runs in longdouble (levels beyond the float64 range) is compared with ``exact`` (mpmath) at up to five positive
    modes spread in log S (:func:`_confirm_modes`), or reported as untrusted without it.
    ``sweep(S, group)`` computes the checked quantity (default: the output ratio rho of :func:`_ratio_group`; the
    transfer function for :func:`transfer`) and ``scale(S)`` turns it into what ``exact`` returns (kappa: P).
    """
    sweep = sweep or (lambda Sx, g: _ratio_group(prog, Sx, g, init))
    if S.size and prog.m > 1 and prog.coefficient_loss > MAX_COEFFICIENT_LOSS:  # the coefficients are lost
        return False, prog.coefficient_loss
    if not _may_cancel(prog) or S.size == 0:
        return True, 0.0
    if prog.extended:
        if exact is None:
            return False, float("inf")
        at = _confirm_modes(S)
        with np.errstate(all="ignore"):
            worst = _worst_disagreement(rho[at] * scale(S[at]), exact(S[at]))
        return worst <= MAX_ROUNDING, worst
    idx = np.unique(np.linspace(0, S.size - 1, min(S.size, _CONDITION_PROBES)).round().astype(np.intp))
    Sp = S[idx]
    worst = 0.0
    proxies, zeros = [], []
    with np.errstate(all="ignore"):
        for g in _groups(Sp, prog.extended):
            if g.ld:  # modes beyond the float64 kernels' range run in longdouble: probed at the range's edge below
                proxies.append(np.clip(Sp[g.sl], _LOW, _HIGH))
                continue
            hi = np.asarray(sweep(Sp, _Group(g.sl, g.tform, True, g.scaled)), dtype=np.float64)
            if (cond := _condition(sweep, Sp, replace(g, ld=True), hi)) > _MAX_CONDITION:
                return False, _conditioned_error(cond)
            ok = np.isfinite(hi) & (hi != 0)
            worst = max(worst, _worst_disagreement(rho[idx][g.sl][ok], hi[ok]))
            zeros.append(idx[g.sl][(hi == 0) & (Sp[g.sl] > 0)])
        if proxies:  # S = 1e300 cancels like S = _HIGH: there float64 and longdouble measure the amplification
            proxy, cond = _proxy_disagreement(np.unique(np.concatenate(proxies)), sweep)
            if cond > _MAX_CONDITION:
                return False, _conditioned_error(cond)
            worst = max(worst, proxy)
    if zeros and np.concatenate(zeros).size:
        worst = max(worst, _zero_disagreement(np.concatenate(zeros), S, rho, exact, scale))
    return worst <= MAX_ROUNDING, worst


#: relative change of the value sweep's entries by which :func:`_condition` perturbs them (2^-30)
_PERTURB = 2.0**-30
#: condition number beyond which even the longdouble probes cannot measure the float64 sweep's rounding: their own
#: error, ~2^-64 times it, would exceed MAX_ROUNDING (with the margin _LD_MARGIN: the estimate is not a bound)
_MAX_CONDITION = MAX_ROUNDING * 2.0**64 / _LD_MARGIN


def _conditioned_error(cond: float) -> float:
    """float64's relative rounding error for condition number ``cond`` (2^-53 of it, at most 1: every digit lost),
    beyond what a longdouble rerun may repair."""
    return min(1.0, max(cond * 2.0**-53, 2 * _LD_GAIN * MAX_ROUNDING))


def _condition(sweep: Sweep, Sp: Array, g: _Group, hi: Array) -> float:
    """The sweep's relative sensitivity to its entries, max over the probe modes: |sweep(entries (1 + 2^-30 (i+1)/n))
    - hi| / (|hi| 2^-30) in longdouble. A cancellation that longdouble loses as completely as float64 (DEIS across
    log-SNR gaps of ~160: coefficients -1.24e38 and +1.24e38 summing to O(1) rounded to exactly 0 in both, so the two
    sweeps agreed on H = -3.8e15 for 1.49e-8) shows as a huge condition number; inf where ``hi`` is 0 but the
    perturbed sweep is not (a cancelled output), or where either is not finite."""
    with np.errstate(all="ignore"):
        pert = np.asarray(sweep(Sp, replace(g, perturb=_PERTURB)), dtype=np.float64)  # (the group's modes, as hi)
        h = hi
        d = np.abs(pert - h)
        cond = np.where(d == 0, 0.0, d / (np.abs(h) * _PERTURB))
    if not (np.all(np.isfinite(pert)) and np.all(np.isfinite(h))):
        return float("inf")
    return float(np.max(np.where(np.isnan(cond), np.inf, cond), initial=0.0))


def _zero_disagreement(at: NDArray[np.intp], S: Array, rho: Array, exact: Optional[Callable[[Array], Array]],
                       scale: Callable[[Array], Any]) -> float:
    """Disagreement with ``exact`` (mpmath) at up to three positive modes (indices ``at``) whose longdouble probe is
    exactly 0: a cancelling sweep can round to 0 in both types (DEIS on alpha_bar = [1e-80, 1e-60, 0.5, 0.99] gave
    an all-zero spectrum, which float64 and longdouble agreed on), and a positive mode's output is 0 only in
    degenerate cases (a sampler that forgets its start and adds no noise), which ``exact`` confirms; inf without it."""
    if exact is None:
        return float("inf")
    pick = at[np.unique(np.linspace(0, at.size - 1, min(at.size, 3)).round().astype(np.intp))]
    with np.errstate(all="ignore"):
        return _worst_disagreement(rho[pick] * scale(S[pick]), exact(S[pick]))


def _proxy_disagreement(Sp: Array, sweep: Sweep) -> tuple[float, float]:
    """(float64-vs-longdouble disagreement, condition number :func:`_condition`) of the
    sweep at modes ``Sp`` within the float64 kernels' range (the stand-ins of longdouble-only modes, whose own sweep
    has no wider type to compare with)."""
    worst, cond = 0.0, 0.0
    for g in _groups(Sp, False):
        lo = np.asarray(sweep(Sp, g), dtype=np.float64)
        hi = np.asarray(sweep(Sp, replace(g, ld=True)), dtype=np.float64)
        cond = max(cond, _condition(sweep, Sp, replace(g, ld=True), hi))
        ok = np.isfinite(hi) & (hi != 0)
        worst = max(worst, _worst_disagreement(lo[ok], hi[ok]))
    return worst, cond


def _disagreements(values: Array, ref: Array) -> Array:
    """|values - ref| / |ref| per mode: 0 where they are equal (also inf == inf, 0 == 0), inf where undefined."""
    with np.errstate(all="ignore"):
        d = np.abs(values - ref) / np.abs(ref)
    return np.where(values == ref, 0.0, np.where(np.isnan(d), np.inf, d))


def _worst_disagreement(values: Array, ref: Array) -> float:
    """max of :func:`_disagreements` (0 for no modes)."""
    return float(np.max(_disagreements(values, ref), initial=0.0))


def scalar_affine(prog: Program, S: Array) -> tuple[Array, Array]:
    """(G, R) of a one-entry program with ``P = G v_init + R``: G = prod a^2, R = the injected variance."""
    if prog.m != 1:
        raise ValueError("scalar_affine needs a one-entry program")
    G = np.empty_like(S)
    R = np.empty_like(S)
    for g in _groups(S, prog.extended):
        Sg, _ = g.arrays(S)
        with np.errstate(all="ignore"):
            H, R[g.sl] = _affine_group(prog, _Caller(prog, Sg, g), Sg)
            G[g.sl] = np.asarray(H, dtype=np.float64) ** 2
    return G, R


def scalar_from(prog: Program, S: Array, v: Array, scale: Optional[Array] = None) -> tuple[Array, Array]:
    """(P, P / scale) of a one-entry program started from the variances ``v`` (VP scale, one per sorted unique
    mode of ``S``); ``scale``: positive, one per mode (default :func:`kappa`, the sweeps' own). The same forward
    sweep as :func:`output_ratio`, the division done before the steps (in longdouble for the faintest modes), so
    ``P / S`` keeps its digits for modes so faint that P itself underflows. A variance beyond float64 is inf (the
    caller names it)."""
    if prog.m != 1:
        raise ValueError("scalar_from needs a one-entry program")
    scale = kappa(S) if scale is None else np.asarray(scale, dtype=np.float64)
    rho = np.empty_like(S)
    for g in _groups(S, prog.extended):
        Sg, _ = g.arrays(S)
        with np.errstate(all="ignore"):
            rho[g.sl] = np.asarray(_ratio_scalar(prog, _Caller(prog, Sg, g), Sg, 1.0 / scale[g.sl].astype(Sg.dtype),
                                                 np.asarray(v[g.sl], dtype=Sg.dtype)), dtype=np.float64)
    with np.errstate(over="ignore"):
        return rho * scale, rho


def _affine_group(prog: Program, call: _Caller, Sg: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """(H, R) of a one-entry program in one sweep, each step's entries computed once: H = prod a (the transfer),
    R = the variance the steps inject (:func:`_ratio_scalar` from v = 0, kappa = 1). For the continuous-time schemes,
    whose gains are arrays (:func:`_transfer_group` also skips a structural 0 entry, which H here multiplies)."""
    H, R, tmp = np.ones_like(Sg), np.zeros_like(Sg), np.empty_like(Sg)
    for st in prog.steps:
        E = call.step(st)
        a = E[0]
        R *= a
        R *= a
        H *= a
        for b in E[1:1 + st.kernels.q]:
            if np.ndim(b):
                np.multiply(b, b, out=tmp)
                R += tmp
            elif b != 0:
                R += b * b
    return H, R


#: at most this many modes are recomputed with mpmath when the longdouble recursion overflows
EXACT_FALLBACK_MODES = 32


def output_ratio(prog: Program, S: Array, init: str, ld: bool = False) -> Array:
    """rho = P / kappa(S) for sorted unique modes ``S`` (see the module docstring); every mode in longdouble
    with ``ld``."""
    out = np.empty_like(S)
    for g in _groups(S, prog.extended or ld):
        with np.errstate(over="ignore"):
            rho = np.asarray(_ratio_group(prog, S, g, init), dtype=np.float64)
        bad = ~np.isfinite(rho) | _below_normal(S[g.sl], rho, prog)
        if bad.any() and not g.ld:  # recompute in longdouble the modes that left the float64 range
            idx = np.arange(g.sl.start, g.sl.stop)[bad]
            sub = _Group(slice(0, idx.size), g.tform, True, g.scaled)
            with np.errstate(over="ignore"):  # still beyond float64: inf, handled by the caller
                rho[bad] = np.asarray(_ratio_group(prog, S[idx], sub, init), dtype=np.float64)
        out[g.sl] = rho
    return out


#: margin of :func:`_underflow_floor`'s amplification bound (multistep extrapolation, constant factors of the steps)
_AMPLIFICATION_MARGIN = 2.0**64


def _underflow_floor(prog: Program) -> float:
    """A ratio rho = P/kappa below this may have passed below the float64 normal range on its way through the sweep
    and lost digits there (all of them: 0), though it is representable itself: the float64 normal floor times the
    most a sweep can amplify a variance, ``e^(l_max - l_min)`` over the program's finite log-SNR levels (a step
    scales a mode's signal variance by at most about alpha_bar_{i+1}/alpha_bar_i), times a margin. Audit of 6
    December: dpm_2_ancestral on alpha_bar = [1e-300, 1e-290, 1e-80] carries S = 1e144 through a variance of 1e-384
    (0 in float64) and scales it by 1e80 in the last step: P came out 0 for 1e-304, and 1e-5 off for S = 1e160."""
    ell = np.asarray(prog.l, dtype=np.float64)
    ell = ell[np.isfinite(ell)]
    span = float(np.ptp(ell)) if ell.size else 0.0
    log_floor = math.log(np.finfo(np.float64).tiny * _AMPLIFICATION_MARGIN) + span
    return math.exp(log_floor) if log_floor < 700.0 else math.inf  # (beyond: every positive mode is suspect)


def _below_normal(S: Array, rho: Array, prog: Program) -> NDArray[np.bool_]:
    """The positive modes whose ratio rho = P/kappa lies below :func:`_underflow_floor` (at most the float64 normal
    range times the sweep's amplification): float64 may have lost their digits on the way."""
    return (S > 0) & (np.abs(rho) < _underflow_floor(prog))


def below_float64(prog: Program, S: Array, init: str, rho: Array) -> Array:
    """``rho`` with the ratios of positive modes below :func:`_underflow_floor` (that fell below the float64 normal
    range, P ~ S^2 r for modes S < 1e-154: rho ~ S, subnormal or 0 for subnormal S, or may have on their way)
    recomputed and kept in longdouble; ``rho`` itself when there are none."""
    tiny = _below_normal(S, rho, prog)
    if not tiny.any():
        return rho
    out = rho.astype(LD)
    sub = S[tiny]
    for g in _groups(sub, True):
        with np.errstate(all="ignore"):
            out[np.flatnonzero(tiny)[g.sl]] = _ratio_group(prog, sub, g, init)
    return out


def _ill_conditioned(worst: float, arg: str = "alpha_bar", mp_name: str = "output_spectrum_mp") -> str:
    what = ("its levels lie beyond the float64 range and no wider type confirmed them" if worst == float("inf")
            else f"the float64 sweep's rounding error is about {worst:.1e} relative, measured against a wider type "
            "and by perturbing its coefficients")
    if arg == "sigmas":  # no transfer_function_ve_mp: the VP one on the same levels
        mp_name = ("output_spectrum_ve_mp" if mp_name == "output_spectrum_mp"
                   else f"{mp_name} (on alpha_bar = 1/(1 + sigmas^2))")
    return (f"{arg}: this schedule makes the sampler's multistep coefficients cancel in float64 (huge or very "
            f"unequal log-SNR gaps; {what}); {mp_name} evaluates it exactly")


def checked_ratio(prog: Program, S: Array, init: str, exact: Optional[Callable[[Array], Array]] = None) -> Array:
    """rho = P / kappa(S) for sorted unique modes ``S``, trusted: the float64 sweep where
    :func:`rounding_check` trusts it, else (at most :data:`EXACT_FALLBACK_MODES` modes) ``exact``; ValueError
    when it cannot be trusted. Modes whose sweep left the float64 range also go to ``exact`` (few of them)."""
    return _checked(prog, S, init, exact)[0]


def _checked(prog: Program, S: Array, init: str, exact: Optional[Callable[[Array], Array]]
             ) -> tuple[Array, Optional[NDArray[np.bool_]], Optional[Array]]:
    """(rho, modes taken from ``exact`` or None, their P) for :func:`checked_ratio` and :func:`output_variance`."""
    rho, trusted = _trusted_sweep(prog, S, lambda ld: output_ratio(prog, S, init, ld=ld), exact, init=init)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(rho * kappa(S))
    if not trusted:  # cancellation: float64 digits lost, every mode is suspect (exact takes them all)
        bad[:] = True
    if exact is not None and 0 < int(bad.sum()) <= EXACT_FALLBACK_MODES:
        P_exact = exact(S[bad])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            rho[bad] = P_exact / kappa(S[bad])
        return rho, bad, P_exact
    return rho, None, None


def _trusted_sweep(prog: Program, S: Array, run: Callable[[bool], Array], exact: Optional[Callable[[Array], Array]], *,
                   init: str = "", sweep: Optional[Sweep] = None, scale: Callable[[Array], Any] = kappa,
                   mp_name: str = "output_spectrum_mp", fallback: bool = True, ld_above: float = TRUST_MARGIN,
                   info: Optional[dict[str, Any]] = None) -> tuple[Array, bool]:
    """(values, trusted): ``run(False)`` (the float64 sweep) checked by :func:`rounding_check` (``sweep``, ``scale``
    as there), ``run(True)`` (longdouble) where its 11 more bits suffice, confirmed with ``exact``; also where the
    float64 sweep, though trusted, disagrees by more than ``ld_above``. Untrusted values come back only with
    ``fallback`` when ``exact`` can replace all of them (at most :data:`EXACT_FALLBACK_MODES` modes); otherwise
    ValueError naming the levels and ``mp_name``. ``info`` (a dict) receives the relative rounding error of the
    values returned: the float64 disagreement, divided by 2^11 after a longdouble rerun."""
    values = run(False)
    trusted, worst = rounding_check(prog, S, init, values, exact, sweep=sweep, scale=scale)
    error = worst
    if _longdouble_may_do(prog, trusted and worst <= ld_above, worst):
        values64, values = values, run(True)
        trusted, worst = _confirmed(values, S, exact, worst, scale, _most_amplified(values64, values))
        error = worst / _LD_GAIN
    if info is not None:
        info["error"] = error
    if not trusted and (not fallback or exact is None or S.size > EXACT_FALLBACK_MODES):
        raise ValueError(_ill_conditioned(worst, prog.arg, mp_name))
    return values, trusted


def _longdouble_may_do(prog: Program, trusted: bool, worst: float) -> bool:
    """An untrusted float64 sweep whose disagreement longdouble's 11 more bits bring below MAX_ROUNDING, with a
    margin of :data:`_LD_MARGIN`."""
    return not trusted and not prog.extended and worst <= _LD_GAIN * MAX_ROUNDING / _LD_MARGIN


#: how many positive modes, spread in log S, :func:`_confirm_modes` picks
_CONFIRM_MODES = 5


def _confirm_modes(S: Array) -> NDArray[np.intp]:
    """Indices of the sorted unique modes ``S`` at which ``exact`` (mpmath) confirms a longdouble sweep: the smallest
    and the largest positive mode and up to three between them, nearest to log-spaced points (S = 0 only when it is
    the only mode: no denoiser term reaches it, so nothing cancels there). A cancellation hits a band of modes
    (those near the variances of the close levels): the smallest mode, the middle index and the largest passed a
    dpmpp_2m sweep 1.1e-5 off at S = 1e-14 (levels 1e-12 apart, then 1e-200) when the call also held S = 0, 1 and
    1e20 (break-test of 7 December)."""
    pos = np.flatnonzero(S > 0)
    if pos.size == 0:
        return np.arange(min(S.size, 1), dtype=np.intp)
    logs = np.log(S[pos])
    targets = np.linspace(logs[0], logs[-1], min(pos.size, _CONFIRM_MODES))
    near = np.clip(np.searchsorted(logs, targets), 0, pos.size - 1)
    left = np.clip(near - 1, 0, pos.size - 1)
    pick = np.where(np.abs(logs[left] - targets) <= np.abs(logs[near] - targets), left, near)
    return np.unique(pos[np.concatenate([[0, pos.size - 1], pick])])


def _most_amplified(values64: Array, values_ld: Array) -> Optional[int]:
    """The mode where the float64 sweep ``values64`` disagrees most with the longdouble one (relative; None when they
    agree everywhere): where the schedule amplifies rounding most, so where longdouble's own is largest too."""
    d = _disagreements(values64, values_ld)
    d = np.where(np.isfinite(d), d, 0.0)  # (a mode float64 could not hold went to longdouble anyway)
    return int(np.argmax(d)) if d.size and float(d.max()) > 0.0 else None


def _confirmed(rho: Array, S: Array, exact: Optional[Callable[[Array], Array]], worst: float,
               scale: Callable[[Array], Any] = kappa, amplified: Optional[int] = None) -> tuple[bool, float]:
    """(trusted, worst) of a longdouble sweep ``rho``: confirmed with ``exact`` (mpmath) at :func:`_confirm_modes` and
    at the mode ``amplified`` (:func:`_most_amplified`), since coefficients whose formulas cancel carry fewer than
    longdouble's extra bits."""
    if exact is None:
        return True, worst
    at = np.unique(np.append(_confirm_modes(S), [] if amplified is None else [amplified]).astype(np.intp))
    with np.errstate(all="ignore"):
        confirm = _worst_disagreement(rho[at] * scale(S[at]), exact(S[at]))
    return confirm <= MAX_ROUNDING, max(worst, confirm)


def output_variance(prog: Program, S: Array, init: str,
                    exact: Optional[Callable[[Array], Array]] = None) -> Array:
    """P for sorted unique modes ``S``; ValueError where P is not representable in float64.

    ``exact(S_bad) -> P`` (optional) recomputes the few modes whose recursion leaves even the longdouble
    range although P itself may be representable (e.g. multistep coefficients across log-SNR gaps of
    hundreds of decades); the caller passes the mpmath reference path.
    """
    rho, from_exact, P_exact = _checked(prog, S, init, exact)
    with np.errstate(over="ignore", invalid="ignore"):
        P = rho * kappa(S)
    if from_exact is not None:
        # P itself, not rho * kappa: P may be representable where its ratio to a tiny mode's scale kappa = S is
        # not (EDM heun's corrector across sigma^2 ~ S: P = 1.6e18 for S = 1e-300)
        P[from_exact] = P_exact
    if not np.all(np.isfinite(P)):
        i = int(np.flatnonzero(~np.isfinite(P))[0])
        raise diverged(prog, float(S[i]))
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


def transfer(prog: Program, S: Array, exact: Optional[Callable[[Array], Array]] = None) -> Array:
    """H = e_0^T prod A e_0 in the VP scale (multiply by the native scale of the first level for native H), for
    sorted unique modes ``S``, checked like :func:`output_variance`: where multistep coefficients cancel (the
    float64 sweep disagreeing with longdouble probes, :func:`rounding_check`) the longdouble sweep confirmed by
    ``exact(S_few) -> H`` (mpmath, VP scale) or, for at most :data:`EXACT_FALLBACK_MODES` modes, ``exact`` itself;
    ValueError when it cannot be trusted (LMS on levels 1e-9 apart lost every digit here, unchecked)."""
    if _structurally_zero(prog):  # exactly 0 for every mode: nothing can cancel (and no mpmath is needed)
        return np.zeros_like(S)
    out, trusted = _trusted_sweep(prog, S, lambda ld: _transfer_values(prog, S, ld), exact,
                                  sweep=lambda Sx, g: _transfer_group(prog, Sx, g), scale=np.ones_like,
                                  mp_name="transfer_function_mp")
    if not trusted:  # exact is there and the modes are few (_trusted_sweep raised otherwise)
        with np.errstate(over="ignore"):
            out = np.asarray(exact(S), dtype=np.float64)  # type: ignore[misc]  (not None here)
    if not np.all(np.isfinite(out)):
        i = int(np.flatnonzero(~np.isfinite(out))[0])
        raise diverged(prog, float(S[i]), "transfer function")
    return out


def _structurally_zero(prog: Program) -> bool:
    """True when e_0^T prod A e_0 is 0 by the steps' sparsity alone (an entry SymPy derived as exactly 0, e.g. the
    start's weight e^{-eta h} -> 0 in an SDE sampler's step from alpha_bar = 0): H = 0 for every mode and level."""
    m = prog.m
    live = [True] + [False] * (m - 1)
    for st in prog.steps:
        nz = set(st.kernels.nonzero)
        live = [any(live[k] and i * m + k in nz for k in range(m)) for i in range(m)]
    return not live[0]


def _transfer_values(prog: Program, S: Array, ld: bool = False) -> Array:
    """H of :func:`transfer` unchecked: the float64 sweep (modes whose H leaves float64 again in longdouble), or
    every mode in longdouble with ``ld``."""
    out = np.empty_like(S)
    for g in _groups(S, prog.extended or ld):
        H = np.array(_transfer_group(prog, S, g), dtype=np.float64)
        bad = ~np.isfinite(H)
        if bad.any() and not g.ld:
            idx = np.arange(g.sl.start, g.sl.stop)[bad]
            H[bad] = np.asarray(_transfer_group(prog, S[idx], _Group(slice(0, idx.size), g.tform, True, False)),
                                dtype=np.float64)
        out[g.sl] = H
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
            out[-1, g.sl] = C[(0, 0)]  # a longdouble variance beyond float64 becomes inf (the caller names it)
    return out


def checked_state_variances(prog: Program, S: Array, init: str,
                            exact: Optional[Callable[[Array], Array]] = None) -> Array:
    """:func:`state_variances` for sorted unique modes ``S``, trusted, or ValueError; the last row is
    :func:`output_variance` itself (``exact``: its mpmath fallback for the whole schedule, ``S_few -> P``).

    One-entry samplers add positive terms only. With memory, the forward covariance sweep combines
    coefficients of mixed sign and can cancel (close or very uneven levels, LMS on consecutive timesteps), so
    its last row must agree with the checked :func:`output_variance` (positive backward sums of squares) to
    :data:`MAX_ROUNDING` and no row may be negative; otherwise every row after the start is recomputed as the
    checked output variance of the steps so far (each refused, as :func:`output_variance` refuses, where float64
    and longdouble cannot give it)."""
    rows = state_variances(prog, S, init)
    if S.size == 0 or not np.all(np.isfinite(rows)):  # a variance beyond float64: the caller names mode and step
        return rows
    P = output_variance(prog, S, init, exact)
    with np.errstate(invalid="ignore"):
        negative = bool(np.any(rows < 0))
    if prog.m > 1 and (negative or _worst_disagreement(rows[-1], P) > MAX_ROUNDING):
        for k in range(1, len(prog.steps)):
            rows[k] = output_variance(replace(prog, steps=prog.steps[:k]), S, init)
    rows[-1] = P  # the output exactly as output_spectrum gives it (checked, and its ratio form is the more accurate)
    return rows


def _gamma(st: Any, R: list[Any]) -> Any:
    """The step's gradient coefficients for the reduced inner products ``R``: in longdouble when a sweep in
    longdouble produced them (a coefficient below the float64 range, e.g. 1.5e-325 for Heun on alpha_bar ~ 1e-170,
    then meets an inner product ~1e325: the float64 copy, 0, lost that whole term), float64 otherwise."""
    if st.gamma_ld is not None and any(isinstance(r, np.longdouble) for r in R):
        return st.gamma_ld
    return st.gamma


def _num(x: Any) -> Any:
    """A sum of the sweeps as a number: float, but a longdouble one stays longdouble (the adjoint is scaled by a
    power of two, :func:`_adjoint_scales`, and a reduced level gradient below the float64 range keeps its digits
    until the scale is multiplied back)."""
    return x if isinstance(x, np.longdouble) else float(x)


def _reduce(X: Any, basis: list[Any], n: int) -> list[float]:
    """<X, G_r> for every basis function G_r (arrays or scalars) of one entry; X may be an array, a
    scalar, or (array, scalar factor)."""
    scale = 1.0
    if isinstance(X, tuple):
        X, scale = X
    out = []
    sx = None
    for G in basis:
        if np.ndim(G):
            out.append(scale * (_num(np.dot(X, G)) if np.ndim(X) else _num(X) * _num(np.sum(G))))
        else:
            if sx is None:
                sx = scale * (_num(np.sum(X)) if np.ndim(X) else _num(X) * n)
            out.append(sx * _num(G))
    return out


#: the modes one scale of the adjoint carries: those within 2^960 of the largest |dJ/drho| left (scaled by a power of
#: two near that largest, each is then at least 2^-960, 53 bits clear of the float64 underflow at 2^-1022)
_ADJOINT_BAND = 2.0**-960


def _exact_float(sc: Any) -> Any:
    """A power of two as a float where float64 holds it, else the longdouble itself (beyond 2^+-1022 and more)."""
    return float(sc) if float(sc) == sc else sc


def _adjoint_scales(at: Any) -> list[tuple[Any, Any]]:
    """[(at_b / 2^e_b, 2^e_b)], bands ``at_b`` of the adjoint (``at`` with the other modes' entries 0) that sum to
    ``at`` (rounded to float64): the backward sweep carries each band scaled by its power of two so that dJ/drho of
    huge or tiny modes (KL's 1/r^2 at r = 1e-155 is 1e310; the objective hands over longdouble where dJ/drho itself
    leaves float64) cannot overflow a product before the reduction; the reduced level gradients are multiplied back
    (a power of two: exact; longdouble when it is beyond float64, and the sum then rounds).

    One band, ``at`` itself, when max |at| lies within 2^+-64 (the common case) or is not finite. Otherwise one band
    per 2^960 of range: a single scale near max |at| flushed the modes far below it to 0, whose gradient is not
    small (reverse KL of S = [1e20, 1e250] from alpha_bar = 1e-300: dJ/drho = -5e259 and -5e-201, each mode's
    dJ/dlog-SNR -0.5; the gradient came out -0.5, the 1e250 mode's share lost)."""
    with np.errstate(all="ignore"):
        big = np.max(np.abs(at), initial=0.0) if np.ndim(at) else abs(at)
    if not np.isfinite(big) or big == 0 or 2.0 ** -64 < big < 2.0 ** 64:
        return [(np.asarray(at, dtype=np.float64) if np.ndim(at) else at, 1.0)]
    if not np.ndim(at):
        sc = np.ldexp(LD(1), int(np.frexp(LD(big))[1]))
        return [(float(at / sc), _exact_float(sc))]
    with np.errstate(all="ignore"):
        mag = np.abs(np.asarray(at, dtype=LD))
    left = mag > 0
    out: list[tuple[Any, Any]] = []
    while True:
        top = LD(mag[left].max())
        sc = np.ldexp(LD(1), int(np.frexp(top)[1]))
        band = left & (mag >= top * LD(_ADJOINT_BAND))
        left &= ~band
        with np.errstate(all="ignore"):
            part = at / sc if not (out or left.any()) else np.where(band, at, 0) / sc
            out.append((np.asarray(part, dtype=np.float64), _exact_float(sc)))
        if not left.any():
            return out


def _accumulate(st: Any, E: list[Any], X: list[Any], n: int, grad: Array, sc: float = 1.0) -> None:
    """grad[levels of the step] += Gamma^T R, R = the inner products of each entry's adjoint X_e with its basis."""
    kern = st.grad_kernels
    nA = kern.m * kern.m + kern.m * kern.q
    R: list[float] = []
    pos = nA
    for e, nb in zip(kern.nonzero, kern.n_basis):
        basis = E[pos:pos + nb]
        pos += nb
        R += _reduce(X[e], basis, n) if isinstance(X[e], tuple) or _nz(X[e]) else [0.0] * nb
    if R and st.gamma is not None and st.gamma.size:
        contrib = _gamma(st, R).T @ np.asarray(R)
        for lev, val in zip(st.grad_levels, contrib):
            grad[lev] += val * sc


def _grad_scalar(prog: Program, call: _Caller, Sg: NDArray[Any], inv_kap: Any, v0: Any, dv0: Any,
                 adjoint: Callable[[Array], tuple[float, Array]], grad: Array) -> tuple[float, Array]:
    """One-entry samplers: v_k stored forward, then the adjoint weight at w^2 carried backward.

    Per step the backward sweep forms ``u = (at w_{k+1}^2) a`` once and reuses it twice: ``X = u v_k``
    is the adjoint of ``a`` (up to the factor 2, applied to the reduced scalars) and ``u a`` the next
    adjoint weight; the adjoint of a scalar noise coefficient ``b`` is a scalar times ``at w_{k+1}^2``,
    so its inner products are those of the weight, formed once per step.
    """
    N = len(prog.steps)
    V = _storage(N + 1, Sg.size, Sg.dtype)
    V[0] = v0 * inv_kap
    scalar_kap = not np.ndim(inv_kap)
    for k, st in enumerate(prog.steps):
        E = call.step(st)
        a = E[0]
        np.multiply(V[k], a, out=V[k + 1])
        np.multiply(V[k + 1], a, out=V[k + 1])
        for b in E[1:1 + st.kernels.q]:
            if np.ndim(b):
                V[k + 1] += (b * b * inv_kap) if not scalar_kap else np.square(b) * inv_kap
            elif b != 0:
                V[k + 1] += b * b * inv_kap
    rho = np.array(V[N])  # in the sweep's own type: a longdouble ratio below the float64 range keeps its digits
    J, at = adjoint(rho)
    for at_b, sc in _adjoint_scales(at):  # one backward sweep per band of the adjoint (one band but in extremes)
        _back_scalar(prog, call, V, np.array(at_b, dtype=Sg.dtype), sc, inv_kap, dv0, grad)
    return J, np.asarray(rho, dtype=np.float64)


def _back_scalar(prog: Program, call: _Caller, V: NDArray[Any], AW: NDArray[Any], sc: Any, inv_kap: Any, dv0: Any,
                 grad: Array) -> None:
    """The backward sweep of :func:`_grad_scalar` from the (scaled) adjoint ``AW``, overwritten by at w_{k+1}^2 as it
    goes: ``grad += sc *`` the level gradients."""
    N = len(prog.steps)
    scalar_kap = not np.ndim(inv_kap)
    u = np.empty_like(AW)
    X = np.empty_like(AW)
    ones = np.ones_like(AW)
    arr = np.ndarray
    for k in range(N - 1, -1, -1):
        st = prog.steps[k]
        kern = st.grad_kernels
        E = call.grad_step(st)
        a = E[0]
        np.multiply(AW, a, out=u)
        np.multiply(u, V[k], out=X)
        sums: list[Any] = [None, None]  # sum(X), sum(AW), formed once per step when a basis function is a scalar
        R: list[float] = []
        pos = 1 + kern.q
        for e, nb in zip(kern.nonzero, kern.n_basis):
            basis = E[pos:pos + nb]
            pos += nb
            if e == 0:  # dJ/da = 2 X
                Y, f, slot = X, 2.0, 0
            else:
                b = E[e]
                if isinstance(b, arr) or not scalar_kap:  # dJ/db = 2 AW b / kappa, an array
                    Y, f, slot = AW * b * inv_kap, 2.0, -1
                elif b == 0:
                    R += [0.0] * nb
                    continue
                else:
                    Y, f, slot = AW, 2.0 * float(b) * float(inv_kap), 1
            for G in basis:
                if isinstance(G, arr):
                    R.append(f * _num(Y.dot(G)))
                else:
                    if slot < 0:
                        t = _num(Y.dot(ones))
                    elif sums[slot] is None:
                        t = sums[slot] = _num(Y.dot(ones))
                    else:
                        t = sums[slot]
                    R.append(f * t * _num(G))
        if R and st.gamma is not None and st.gamma.size:
            contrib = np.asarray(R) @ _gamma(st, R)
            for lev, val in zip(st.grad_levels, contrib.tolist() if contrib.dtype == np.float64 else contrib):
                grad[lev] += val * sc
        if isinstance(a, arr):
            np.multiply(u, a, out=AW)
        else:
            AW *= a * a
    if _nz(dv0):
        grad[0] += _num(np.sum(AW * dv0 * inv_kap)) * sc


def _grad_memory(prog: Program, call: _Caller, Sg: NDArray[Any], inv_kap: Any, v0: Any, dv0: Any,
                 adjoint: Callable[[Array], tuple[float, Array]], grad: Array) -> tuple[float, Array]:
    """Samplers with memory, never forming the state covariance ``C_k``: a backward sweep carries the output's
    row ``w_k = A_k^T w_{k+1}`` (``w_K = e_0``, kept in the reused store) and sums ``P / kappa`` as
    :func:`_ratio_memory` does; then one forward sweep per band of the adjoint carries ``z_k = C_k w_k``, which
    the adjoint of ``A_k`` needs, by ``z_{k+1} = A_k z_k + B_k (B_k^T w_{k+1}) / kappa`` (a linear recursion,
    like the value's). The covariance recursion ``C <- A C A^T + B B^T / kappa`` it replaces squared the
    cancellation of large multistep coefficients: DPM++ 2M one step 1e-3 in log-SNR after another (next
    coefficients ~1250) gave ``J`` 1.8e-10 relative off and gradient entries 6e-5 off (gradient audit, 5 Dec),
    where output_spectrum's backward sum of squares was 2e-13 off."""
    m, N = prog.m, len(prog.steps)
    store = _storage(N * m, Sg.size, Sg.dtype)
    W: list[list[Any]] = []  # W[k] = w_{k+1}, filled backward
    w: list[Any] = [np.ones(Sg.shape, dtype=Sg.dtype)] + [0.0] * (m - 1)
    acc = np.zeros(Sg.shape, dtype=Sg.dtype)
    t, tmp = np.empty_like(acc), np.empty_like(acc)
    for k in range(N - 1, -1, -1):
        st = prog.steps[k]
        W.append(w)
        w = _back_row(st, call.step(st), m, w, acc, store[k * m:(k + 1) * m], t, tmp)
    W.reverse()
    with np.errstate(all="ignore"):
        rho = np.array(np.broadcast_to((acc + v0 * (w[0] * w[0])) * inv_kap, Sg.shape))
    J, at = adjoint(rho)
    for at_b, sc in _adjoint_scales(at):  # one forward sweep per band of the adjoint, as in _grad_scalar
        _forward_adjoint(prog, call, Sg, W, w[0], at_b, sc, inv_kap, v0, grad)
        if _nz(dv0) and _nz(w[0]):
            grad[0] += _num(np.sum(at_b * w[0] * w[0] * dv0 * inv_kap)) * sc
    return J, np.asarray(rho, dtype=np.float64)


def _forward_adjoint(prog: Program, call: _Caller, Sg: NDArray[Any], W: list[list[Any]], w0: Any, at: Any, sc: Any,
                     inv_kap: Any, v0: Any, grad: Array) -> None:
    """The forward sweep of :func:`_grad_memory` from the (scaled) adjoint ``at``: the adjoint of ``A_k`` is
    ``2 at w_{k+1} z_k^T`` and of ``B_k`` is ``2 at w_{k+1} (B_k^T w_{k+1})^T / kappa``; ``grad += sc *`` the
    level gradients."""
    m, n = prog.m, Sg.size
    z: list[Any] = [v0 * inv_kap * w0 if _nz(v0) and _nz(w0) else 0.0] + [0.0] * (m - 1)  # z_0 = C_0 w_0
    for st, w in zip(prog.steps, W):
        E = call.grad_step(st)
        q = st.grad_kernels.q
        nA = m * m
        bw = []  # B^T w_{k+1} / kappa
        for col in range(q):
            s: Any = 0.0
            for i in range(m):
                b = E[nA + i * q + col]
                if _nz(b) and _nz(w[i]):
                    s = s + b * w[i]
            bw.append(s * inv_kap if _nz(s) else 0.0)
        aw = [at * w[i] if _nz(w[i]) else 0.0 for i in range(m)]
        X: list[Any] = [2.0 * aw[i] * z[j] if _nz(aw[i]) and _nz(z[j]) else 0.0 for i in range(m) for j in range(m)]
        X += [2.0 * aw[i] * bw[col] if _nz(aw[i]) and _nz(bw[col]) else 0.0 for i in range(m) for col in range(q)]
        _accumulate(st, E, X, n, grad, sc)
        znew = []
        for i in range(m):
            s = 0.0
            for j in range(m):
                a = E[i * m + j]
                if _nz(a) and _nz(z[j]):
                    s = s + a * z[j]
            for col in range(q):
                b = E[nA + i * q + col]
                if _nz(b) and _nz(bw[col]):
                    s = s + b * bw[col]
            znew.append(s)
        z = znew


def value_and_grad(prog: Program, S: Array, init: str,
                   objective: Callable[[Array, Array, Array, slice], tuple[float, Array]],
                   exact: Optional[Callable[[Array], Array]] = None) -> tuple[float, Array, Array]:
    """(J, dJ/dl for each of the K levels, rho = P / kappa) for sorted unique modes ``S``.

    ``objective(rho, kappa, S_chunk, chunk) -> (J_chunk, dJ/drho)`` gives a chunk's objective and its
    derivative with respect to rho, per mode.
    """
    fast = _interpolated_value_and_grad(prog, S, init, objective, exact)
    if fast is not None:
        return fast
    return _full_value_and_grad(prog, S, init, objective, exact)


def _full_value_and_grad(prog: Program, S: Array, init: str,
                         objective: Callable[[Array, Array, Array, slice], tuple[float, Array]],
                         exact: Optional[Callable[[Array], Array]] = None, longdouble: bool = False
                         ) -> tuple[float, Array, Array]:
    """:func:`value_and_grad` by the forward and adjoint sweeps over every mode; in longdouble from the start with
    ``longdouble``."""
    n_pairs = len(_pairs(prog.m))
    chunk = min(BLOCK_MODES, max(1024, int(_MEMORY_BUDGET // max(1, 8 * n_pairs * (len(prog.steps) + 1)))))
    swept: dict[str, Any] = {}

    def run(ld: bool) -> Array:  # checked, rerun in longdouble and confirmed as output_variance (no mpmath fallback)
        ld = ld or longdouble
        J, grad, rho = _sweep_grad(prog, S, init, objective, chunk, ld=ld)
        overflow = np.isfinite(J) and not np.all(np.isfinite(grad))
        if not ld and not prog.extended and (overflow or _below_normal(S, rho, prog).any()):
            # a product in the adjoint overflowed (e.g. S = 1e300 with a first level alpha_bar = 1e-300) though the
            # gradient itself may be representable, or a ratio P/kappa fell below the float64 normal range (P = 1e-500
            # for S = 1e-150: KL's log r came out -inf, or lost digits as a subnormal): the sweeps again in longdouble,
            # as below_float64 recomputes those ratios for the values alone
            J, grad, rho = _sweep_grad(prog, S, init, objective, chunk, ld=True)
        swept.update(J=J, grad=grad)
        return rho

    info: dict[str, Any] = {}
    rho_all, _ = _trusted_sweep(prog, S, run, exact, init=init, fallback=False, ld_above=GRAD_ROUNDING, info=info)
    _check_gradient_rounding(prog, info["error"])
    J, grad = swept["J"], swept["grad"]
    with np.errstate(over="ignore", invalid="ignore"):
        P = rho_all * kappa(S)
    if not np.all(np.isfinite(P)):  # as output_variance: P itself is not representable
        i = int(np.flatnonzero(~np.isfinite(P))[0])
        raise diverged(prog, float(S[i]))
    if not np.all(np.isfinite(grad)) and np.isfinite(J):  # (a J beyond float64 is the caller's to name)
        bad = int(np.flatnonzero(~np.isfinite(grad))[0])
        zero = _zero_output(rho_all, S)
        if zero.any():  # dJ/dP is infinite there (W2's sqrt P, KL's log P): no derivative, whatever the levels
            raise ValueError(f"{prog.arg}: the gradient at level {bad} is undefined: the output variance of the mode "
                             f"S={S[np.flatnonzero(zero)[0]]:.6g} is exactly 0 for this schedule (the sampler keeps "
                             "nothing of its start and adds no noise), where the divergence has no derivative in P; "
                             "output_spectrum and the divergence itself still evaluate the schedule")
        raise ValueError(f"{prog.arg}: the gradient at level {bad} lies beyond the float64 range for this schedule "
                         "(a mode's term near it, as KL's S/(2P) of a tiny mode the schedule all but erases, or adjoint "
                         "terms that overflow even in longdouble for a level this close to pure noise with modes this "
                         "large); output_spectrum and the divergence itself still evaluate the schedule")
    return float(J), grad, rho_all


#: the interpolated adjoint (:func:`_interpolated_value_and_grad`) runs on programs of at least this many levels,
#: with at least this many distinct positive modes and this many times as many as nodes: below, the full adjoint
#: costs little more than the forward sweep it needs anyway (1.0-1.3x at K = 10 on 196,608 modes), and on fewer
#: modes the sweeps' per-step overhead outweighs the arrays (3,072 modes, K = 64: 0.6-1.4x the full adjoint's time,
#: 16,384 and more: 0.4-0.8x; 7 December, loaded machine)
INTERPOLATED_MIN_LEVELS, INTERPOLATED_MIN_MODES, INTERPOLATED_MIN_RATIO = 64, 16384, 8
#: the interpolant of the node sweep's own P must reproduce every mode's forward-sweep P to this (relative), else
#: the full adjoint runs: the per-mode level derivatives share P's analyticity in ln S (module ``interp``)
INTERPOLATED_CHECK = 1e-13


def _interpolated_value_and_grad(prog: Program, S: Array, init: str, objective: Any,
                                 exact: Optional[Callable[[Array], Array]]) -> Optional[tuple[float, Array, Array]]:
    """:func:`value_and_grad` by one trusted forward sweep over every mode and the adjoint over a few hundred nodes
    in ln S (:mod:`.interp`): the cotangent dJ/drho of the modes, carried onto the nodes by the transpose of local
    Lagrange interpolation, weighs a value-and-gradient sweep of the nodes. None (the caller runs the full adjoint)
    for short programs, few modes, modes or nodes outside [1e-100, 1e290] (where kappa or longdouble enter), a
    value or cotangent that is not finite, or an interpolant of P that misses the forward sweep's P."""
    pos = S > 0
    u = np.log(S[pos]) if pos.any() else S[:0]
    if prog.extended or prog.K < INTERPOLATED_MIN_LEVELS or u.size < INTERPOLATED_MIN_MODES:
        return None
    order, h = interp.ORDER, interp.SPACING
    start, n = interp.grid(u, order, h)
    if n * INTERPOLATED_MIN_RATIO > u.size or math.exp(start) < _SCALE or math.exp(start + n * h) > _HIGH:
        return None
    info: dict[str, Any] = {}
    try:  # (any refusal is the full adjoint's to make, on its own sweeps: break-test of 7 December)
        rho, _ = _trusted_sweep(prog, S, lambda ld: output_ratio(prog, S, init, ld=ld), exact, init=init,
                                fallback=False, ld_above=GRAD_ROUNDING, info=info)
        _check_gradient_rounding(prog, info["error"])
    except ValueError:
        return None
    if not np.all(np.isfinite(rho)) or _below_normal(S, rho, prog).any():
        return None
    c = _cotangents(objective, rho, S)
    if c is None:
        return None
    J, c = c
    nodes = np.exp(start + h * np.arange(n))
    kept: list[Any] = []
    w = interp.to_nodes(u, c[pos], start, n, order, h, keep=kept)
    if not pos.all():  # S = 0 (sorted unique: the first mode) is a node of its own
        nodes, w = np.concatenate([[0.0], nodes]), np.concatenate([c[~pos], w])

    def weighted(r: Array, k: Array, s: Array, sl: slice) -> tuple[float, Array]:  # sum_j w_j rho_j: cotangent w
        return float(np.dot(w[sl], r)), w[sl]

    try:  # in longdouble where a small gap amplifies rounding (~1/gap): the nodes, each carrying many modes'
        # weight, do not average it out as the modes do (dpmpp_2m with a gap of 2.5e-3: 14x the full adjoint's error)
        _, grad, rho_nodes = _full_value_and_grad(prog, nodes, init, weighted, exact, longdouble=_may_cancel(prog))
    except ValueError:
        return None
    with np.errstate(all="ignore"):
        miss = np.abs(interp.from_nodes(u, rho_nodes[-n:], start, n, order, h, kept=kept) / rho[pos] - 1.0)
    # the interpolant need reproduce P only to the forward sweep's own rounding (info["error"], amplified ~1/gap where
    # levels are close: a check at 1e-13 there failed on rounding alone and wasted the sweeps)
    if not (np.all(np.isfinite(grad)) and float(miss.max()) <= max(INTERPOLATED_CHECK, 8.0 * info["error"])):
        return None
    return float(J), grad, rho


def _cotangents(objective: Any, rho: Array, S: Array) -> Optional[tuple[float, Array]]:
    """(J, dJ/drho as float64) of every mode, or None where either is not finite or a cotangent (longdouble under
    extreme weights) leaves the float64 normal range."""
    if hasattr(objective, "infinite"):
        objective.infinite = False
    with np.errstate(all="ignore"):
        J, c = objective(rho, np.ones_like(S), S, slice(None))
        c_ld = np.broadcast_to(np.asarray(c), S.shape)
        c = c_ld.astype(np.float64)
    if not (math.isfinite(J) and np.all(np.isfinite(c))):
        return None
    if np.any((c_ld != 0) & (np.abs(c) < np.finfo(np.float64).tiny)):
        return None
    return float(J), c


def _zero_output(rho: Array, S: Array) -> Array:
    """The positive modes whose output variance is exactly 0: rho = P/kappa is 0 (P = rho kappa itself may underflow
    float64 where rho does not, P = 2.9e-619 of LMS on S = 1e-310)."""
    return (rho == 0) & (S > 0)


def _check_gradient_rounding(prog: Program, error: float) -> None:
    """ValueError when the sweep's rounding ``error`` (relative), times the amplification of the level gradients,
    about 1/gap for the smallest log-SNR gap of a sampler with memory, exceeds :data:`MAX_ROUNDING`: DPM-Solver++ 3M
    with two levels 1e-6 apart had its value right to 5e-13 but gradient entries 4e-7 (of the largest) off."""
    if prog.m == 1:
        return
    gaps = finite_gaps(prog.l)
    gap = float(gaps.min()) if gaps.size else math.inf
    if gap == 0.0:  # two levels share one float64 log-SNR: the sweeps can agree exactly (error 0) on a wrong value
        raise ValueError(f"{prog.arg}: this schedule makes the sampler's multistep coefficients cancel in its gradient "
                         "(two levels share one float64 log-SNR, e.g. one ulp apart: LMS order 3 returned J 1e20 "
                         "times too large there, float64 and longdouble agreeing); output_spectrum evaluates its value")
    if error > MAX_ROUNDING * gap:
        raise ValueError(f"{prog.arg}: this schedule makes the sampler's multistep coefficients cancel in its gradient "
                         f"(two levels {gap:.1e} apart in log-SNR amplify the sweep's rounding, {error:.1e} relative, "
                         "about 1/gap in the level gradients); output_spectrum evaluates its value")


def _sweep_grad(prog: Program, S: Array, init: str, objective: Any, chunk: int, ld: bool = False
                ) -> tuple[float, Array, Array]:
    """(J, dJ/dl, rho) by the forward and adjoint sweeps; every mode in longdouble with ``ld``."""
    if hasattr(objective, "infinite"):  # KL's true +inf is what this sweep finds, not an earlier float64 one
        objective.infinite = False
    grad = np.zeros(prog.K)
    rho_all = np.empty_like(S)
    with _single_threaded_blas():
        _grad_groups(prog, S, init, objective, grad, rho_all, chunk, J_acc := [0.0], ld)
    return J_acc[0], grad, rho_all


def _grad_groups(prog: Program, S: Array, init: str, objective: Any, grad: Array, rho_all: Array, chunk: int,
                 J_acc: list[float], ld: bool = False) -> None:
    for g in _groups(S, prog.extended or ld):
        for start in range(g.sl.start, g.sl.stop, chunk):
            sub = slice(start, min(g.sl.stop, start + chunk))
            cg = _Group(sub, g.tform, g.ld, g.scaled)
            Sg, kap = cg.arrays(S)
            call = _Caller(prog, Sg, cg)
            v0, dv0 = _v0(prog, init, Sg, cg.ld)
            kap64 = np.broadcast_to(np.asarray(kap, dtype=np.float64), Sg.shape)
            fn = _grad_scalar if prog.m == 1 else _grad_memory
            with np.errstate(all="ignore"):
                Jg, rho = fn(prog, call, Sg, 1.0 / kap, v0, dv0,
                             lambda r, sub=sub, k=kap64: objective(r, k, S[sub], sub), grad)
            J_acc[0] += Jg
            rho_all[sub] = rho
