r"""Per-step spectra: the variance of the sample and of the denoised estimate after every step.

Each step maps a mode's variance by ``v_s = g^2 v_t + n`` (docs/model.md §4) and computes the denoised
estimate ``x0_hat = c(t) x_t`` with the Wiener coefficient ``c`` (docs/model.md §3), whose variance is
``c^2 v_t`` (with k-diffusion's churn, on the churned sample at ``sigma_hat`` instead). Following these through
the schedule shows *when* each frequency band is generated: a band's ``x0_hat`` reaches its data variance once the
noise level falls below it, so coarse (large-S) bands appear in the first steps and fine ones in the last (coarse
to fine).

Note: the variance of the sample at level k is *not* the output of the partial schedule that stops
there: a partial schedule ends with a step to the clean level, and that final step outputs
``x0_hat``, not the sample. Here the sample and the estimate are kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import MAX_VALUES, as_levels, as_real, as_spectrum, check_choice, numpy_error_defaults
from ..api import INITS, _exact, _setup

__all__ = ["intermediate_spectra", "IntermediateSpectra"]

Array = NDArray[np.float64]
def _full(x: Any, shape: tuple[int, ...]) -> Array:
    return np.array(np.broadcast_to(np.asarray(x, dtype=np.float64), shape), dtype=np.float64)


def _arrivals(name: str, prog: Any) -> tuple[list[int], list[int]]:
    """Rows of ``state_variances`` (state after program step n = row n + 1) at which the sample first
    and last stands at each level 1..N that the sampler's steps reach (a step reaches the level of its
    kind's slot 1, read off the program's steps). Most samplers reach every level once; UniPC reaches
    each level twice (prediction, then correction with the model output at the predicted sample); DEIS
    and ``final_sigmas_type="sigma_min"`` stop at the last schedule level (N = K - 1) instead of the
    clean level (N = K)."""
    from ..symbolic import sampler_module

    kinds = sampler_module(name).KINDS
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for n, st in enumerate(prog.steps):
        reached = int(st.levels[tuple(kinds[st.kind]).index(1)])
        first.setdefault(reached, n + 1)
        last[reached] = n + 1
    N = max(last)
    if sorted(last) != list(range(1, N + 1)):  # pragma: no cover - plans advance one level at a time
        raise RuntimeError(f"{name}: its plan does not reach the levels 1..{N} in turn")
    return [first[j] for j in range(1, N + 1)], [last[j] for j in range(1, N + 1)]


def _check_finite(sample: Array, x0: Array, start: Array, rows: Array, last: list[int], u: Array, ab: Array,
                  prog: Any) -> None:
    """ValueError naming what cannot be represented: a variance the sampler really lets diverge (spectrum), or a
    finite one whose native (VE) units exceed the float64 range at a level so noisy (alpha_bar). A VE start at
    alpha_bar = 0 (sigma = inf) has infinite variance exactly: that is its value, not an overflow."""
    if ab[0] == 0.0:
        start = np.where(np.isinf(start), 0.0, start)
    for label, arr, vp in (("sample", sample, rows[last]), ("x0_hat", x0, None), ("start", start[None], rows[:1])):
        if np.all(np.isfinite(arr)):
            continue
        k, i = (int(v) for v in np.argwhere(~np.isfinite(arr))[0])
        where = "at the start" if label == "start" else f"after step {k + 1}"
        if vp is not None and np.isfinite(vp[k, i]):
            lev = 0 if label == "start" else k + 1
            raise ValueError(f"alpha_bar: the {label} variance of the mode S={u[i]:.6g} {where} is {vp[k, i]:.6g} on "
                             f"the VP scale, but level alpha_bar[{lev}] = {ab[lev]:.6g} is so noisy that in VE units "
                             "(x0 + sigma eps, variance times 1 + sigma^2) it exceeds the float64 range")
        from ..engine.program import diverged

        raise diverged(prog, float(u[i]), f"{label} variance", where)


def _churned_estimates(name: str, options: Any, params: Any, prog: Any, ab: Array, u: Array, rows: Array,
                       calls: list[int], x0: Array, ratio: Array) -> None:
    """Replace, in place, the estimates of churned steps (k-diffusion's ``euler``/``heun``/``dpm_2`` with churn
    gamma > 0): their model call is on the churned sample at sigma_hat = sigma (1 + gamma), not on the sample at the
    level. That estimate is the output of the one-level schedule at the same level with the same churn (``s_churn`` =
    gamma, the window open), whose only step is k-diffusion's Euler step to sigma = 0:
    ``x_hat + (0 - sigma_hat) (x_hat - D) / sigma_hat = D``; the sampler's own compiled step, started from the
    sample's variance before the churn (``rows[calls[k]]``)."""
    from ..engine.program import build_program
    from ..engine.recursion import scalar_from

    for k, n in enumerate(calls):
        gamma = dict(prog.steps[n].step_params).get("gamma", 0.0)
        if gamma <= 0.0:
            continue
        one = build_program(name, options, {**params, "s_churn": gamma, "s_tmin": 0.0, "s_tmax": float("inf")},
                            ab[k:k + 1], "alpha_bar")
        if dict(one.steps[0].step_params).get("gamma") != gamma:  # pragma: no cover - churn_gammas(1) is s_churn
            raise RuntimeError(f"{name}: the one-level churn step does not reproduce gamma = {gamma!r}")
        # x0 / S directly, exact where x0 underflows (S = 0, divided by 1 here, is set to 1 by the caller)
        x0[k], ratio[k] = scalar_from(one, u, rows[n], np.where(u > 0, u, 1.0))


@dataclass
class IntermediateSpectra:
    """Per-step spectra of a sampler run (:func:`intermediate_spectra`).

    Attributes
    ----------
    spectrum : ndarray, shape ``shape``
        The data spectrum S.
    alpha_bar : ndarray, shape (K,)
        The schedule (noisiest first).
    sample : ndarray, shape (N, *shape)
        ``sample[k]``: variance of the sample after step k+1 (at level ``alpha_bar[k+1]``; the last
        row, after the last step, is the output spectrum P). In the sampler's own scale (VE units, flow
        matching's). N = K when the last step goes to the clean level; N = K - 1 for samplers whose last step stops at
        ``alpha_bar[-1]`` (``deis_multistep``, ``final_sigmas_type="sigma_min"``). A
        predictor-corrector (``unipc_multistep``) holds the *corrected* sample here.
    x0_hat : ndarray, shape (N, *shape)
        ``x0_hat[k]``: variance of the denoised estimate computed in step k+1 from the sample at
        ``alpha_bar[k]`` (diffusers' ``pred_original_sample``; UniPC: the model call on the
        predicted sample, before its correction; k-diffusion's churn: the model call on the churned sample at
        sigma_hat, its callback's ``denoised``).
    marginal : ndarray, shape (N, *shape)
        The forward process's variance at the level of ``sample[k]`` (the last row is S when the
        last step reaches the clean level): what a perfect sampler's state would have.
    start : ndarray, shape ``shape``
        Variance of the initial state (white or exact start).
    sampler, init : the sampler and its start.
    eta : float or None
        The sampler's ``eta`` as run (None for a sampler without one), as :attr:`symsched.OptimizeResult.eta`.
    variance : str or None
        DDPM's injected variance as run (None for other samplers).
    x0_hat_ratio : ndarray, shape (N, *shape)
        ``x0_hat / S`` (1 where S = 0), computed without forming ``x0_hat``: it stays exact for modes so faint
        (S below ~1e-160) that ``x0_hat``, of order S², underflows to 0. :meth:`accuracy`,
        :meth:`generated_fraction` and the band profiles use it.
    Source: :func:`symsched.intermediate_spectra` (docs/model.md §3, §5).
    """

    spectrum: Array
    alpha_bar: Array
    sample: Array
    x0_hat: Array
    marginal: Array
    start: Array
    sampler: str
    eta: Optional[float]
    variance: Optional[str]
    init: str
    x0_hat_ratio: Optional[Array] = None

    def _ratio(self) -> Array:
        if self.x0_hat_ratio is not None:
            return self.x0_hat_ratio
        S = self.spectrum
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(S > 0, self.x0_hat / np.where(S > 0, S, 1.0), 1.0)

    @property
    def steps(self) -> int:
        """Number of rows N: the steps (model calls), K or K - 1 (see the class docstring)."""
        return int(self.sample.shape[0])

    def generated_fraction(self) -> Array:
        """``x0_hat / x0_hat[-1]`` per step and mode: the share of the mode's final variance generated by each step
        (1 where it ends at 0); from :attr:`x0_hat_ratio`, exact where ``x0_hat`` itself underflows."""
        r = self._ratio()
        final = r[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(final > 0, r / np.where(final > 0, final, 1.0), 1.0)

    def accuracy(self) -> Array:
        """``x0_hat / S`` per step and mode: how much of the data's variance the estimate has (1 where S = 0)."""
        return self._ratio().copy()

    def generation_step(self, threshold: float = 0.5) -> NDArray[np.int64]:
        """First step (1-based) at which a mode's ``x0_hat`` reaches ``threshold`` of its final value: shape of S."""
        t = as_real(threshold, "threshold")
        if not 0.0 < t <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1] (got {threshold!r})")
        return first_step_reaching(self.generated_fraction(), t)

    def radial(self, what: str = "generated") -> tuple[Array, Array]:
        """Band profile ``(x (B,), values (K, B))``: rings of an FFT grid or groups of modes by rank.

        ``what``: ``"generated"``, ``"accuracy"``, ``"sample/marginal"``, ``"x0_hat"`` or ``"sample"``
        (see :func:`symsched.insight.plots.band_profile`).
        """
        from .plots import band_profile

        return band_profile(self, what)

    def plot(self, *, title: Optional[str] = None, path: Any = None) -> Any:
        """Frequency x step heat maps (coarse-to-fine); see :func:`symsched.insight.plot_intermediate`."""
        from .plots import plot_intermediate

        return plot_intermediate(self, title=title, path=path)


def first_step_reaching(fraction: Array, threshold: float) -> NDArray[np.int64]:
    """First step (1-based) at which ``fraction`` (K, ...) reaches ``threshold`` (to 1e-12 relative, so that a final
    value of exactly 1 counts as reached): the generation step of a mode or a band; K if only the last step does."""
    reached = np.asarray(fraction) >= threshold * (1.0 - 1e-12)
    return (np.argmax(reached, axis=0) + 1).astype(np.int64)


@numpy_error_defaults
def intermediate_spectra(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    sampler: str = "ddim",
    init: str = "white",
    **settings: Any,
) -> IntermediateSpectra:
    r"""Spectrum of the sample and of the denoised estimate after every step: :math:`C_{k+1} = A_k C_k A_k^\top + B_k B_k^\top`, :math:`\mathrm{var}\,\hat x_0 = c_k^2 C_k[0, 0]`.

    Parameters
    ----------
    spectrum : array_like, any shape
        Mode variances ``S >= 0``.
    alpha_bar : array_like, shape (K,)
        Levels, strictly increasing in [0, 1), noisiest first (a final step to the clean level
        follows, except for samplers that stop at the last level). Every sampler of
        :data:`symsched.SAMPLERS` takes them (VE samplers on ``sigmas = sqrt((1 - ab) / ab)``).
    sampler : str
        Any registered sampler; its settings (``eta``, ``variance``, ...) as keyword arguments.
    init : {"white", "exact"}
        Start from the sampler's white noise or from the true noisy marginal.
    **settings
        The sampler's parameters and options, as in :func:`symsched.output_spectrum`, e.g. ``eta`` (DDIM, in
        [0, 1]), ``variance`` (DDPM: ``"posterior"`` or ``"beta"``); see :func:`symsched.sampler_info`.

    Returns
    -------
    IntermediateSpectra
        ``sample``, ``x0_hat``, ``marginal``: arrays of shape (N, *spectrum.shape), one row per
        model call: N = K, or K - 1 for samplers that stop at ``alpha_bar[-1]`` (DEIS,
        ``final_sigmas_type="sigma_min"``); ``sample[-1]`` equals :func:`symsched.output_spectrum`
        of the whole schedule. ``sample``, ``marginal`` and ``start`` are in the sampler's own scale: VP
        (``x = sqrt(ab) x0 + sqrt(1 - ab) eps``), VE units (``x = x0 + sigma eps``) or flow matching's
        (``x = (1 - t) x0 + t eps``); ``x0_hat`` has one scale.

    Raises
    ------
    ValueError
        Bad spectrum, levels, sampler, settings or init; levels x modes above ``MAX_VALUES`` = 2**30 (each result
        array's size, refused before any work, naming ``alpha_bar``); a variance beyond the float64 range (``spectrum``:
        the sampler diverges for that mode; ``alpha_bar``: a level so noisy that its VE units overflow); a
        schedule whose multistep coefficients cancel beyond what float64 and longdouble can recover (``alpha_bar``,
        as :func:`symsched.output_spectrum` refuses it; :func:`symsched.output_spectrum_mp` evaluates its output).

    Notes
    -----
    The state covariance is propagated by the state-space engine
    (:func:`symsched.engine.recursion.checked_state_variances`) through the sampler's own compiled steps, checked
    against the output variance and recomputed step by step where the forward sweep cancels;
    the estimate's variance uses the Wiener coefficient of :mod:`symsched.symbolic.forward`
    (:func:`symsched.engine.kernels.denoiser_kernel`), both in the engine's canonical coordinates; a churned step's
    estimate (k-diffusion's ``euler``/``heun``/``dpm_2``, the model call on the churned sample) is the output of the
    sampler's own one-level churned step to the clean level (:func:`_churned_estimates`).

    Source: docs/model.md §3 (the Wiener estimate), §5 and §9 (composition, samplers with memory); the heat map of
    generated frequency bands after Dieleman, *Diffusion is spectral autoregression* (2024).
    """
    from ..engine import program as _program
    from ..engine import recursion
    from ..engine.kernels import denoiser_kernel, marginal_kernel, native_scale_kernel

    S = as_spectrum(spectrum)
    ab = as_levels(alpha_bar)
    if ab.size * S.size > MAX_VALUES:  # each of sample, x0_hat and marginal holds (levels x modes) values
        raise ValueError(f"alpha_bar: {ab.size} levels x {S.size} modes of spectrum is {ab.size * S.size} values per "
                         f"result array, more than MAX_VALUES = {MAX_VALUES} (8 GiB of float64; "
                         "symsched._validate.MAX_VALUES): use fewer levels or a smaller spectrum (output_spectrum "
                         "gives the last row alone)")
    check_choice(init, "init", INITS)
    name, options, params = _setup(sampler, settings)
    prog = _program.build_program(name, options, params, ab, "alpha_bar")
    u, inv = np.unique(S.ravel(), return_inverse=True)
    inv = inv.reshape(-1)
    # (program steps + 1, modes), VP scale; the output confirmed by the mpmath path where output_spectrum's is
    exact = _exact(ab, "alpha_bar", sampler, init, settings)
    rows = recursion.checked_state_variances(prog, u, init, exact)
    first, last = _arrivals(name, prog)
    N = len(last)  # levels reached: K (then the clean level), or K - 1 (the last step stops at ab[-1])
    c, s_ = prog.c.astype(np.float64), prog.s.astype(np.float64)
    lev = np.arange(1, N + 1)  # the levels of sample[0..N-1]
    d = np.empty((N, u.size))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(N):  # the model call at level k, on the sample as it first arrives there
            d[k] = _full(denoiser_kernel()(u, c[k], s_[k])[0], u.shape)
        calls = [0] + first[:-1]  # the step that makes the model call at level k (row: the sample before it)
        x0 = d**2 * rows[calls]
        ratio = np.where(u > 0, d / np.where(u > 0, u, 1.0), 0.0) * d * rows[calls]  # x0 / S, no S^2
        sample = rows[last].copy()
        marg = _full(marginal_kernel()(u[None, :], c[lev, None], s_[lev, None])[0], (N, u.size))  # levels 1..N
        # variance of x_native / x_vp per level, from the symbolic conversion the engine's steps use
        scale = _full(native_scale_kernel(prog.process)(prog.c, prog.s)[0], c.shape)
        sample *= scale[lev, None]
        marg *= scale[lev, None]
        start = rows[0] * scale[0]
    _churned_estimates(name, options, params, prog, ab, u, rows, calls, x0, ratio)
    sample[-1] = rows[-1]  # the output: C[0, 0] after the last step, as output_spectrum returns it
    if N == prog.K:  # the last step reaches the clean level, where the marginal is S itself
        marg[-1] = u
    x0[:, u == 0] = 0.0
    ratio[:, u == 0] = 1.0
    _check_finite(sample, x0, start, rows, last, u, ab, prog)
    shape = (N, *S.shape)
    return IntermediateSpectra(
        spectrum=S, alpha_bar=ab, sample=sample[:, inv].reshape(shape), x0_hat=x0[:, inv].reshape(shape),
        marginal=marg[:, inv].reshape(shape), start=_full(start, u.shape)[inv].reshape(S.shape), sampler=name,
        eta=float(params["eta"]) if "eta" in params else None,  # (None: a sampler without it, as OptimizeResult)
        variance=str(options["variance"]) if "variance" in options else None, init=init,
        x0_hat_ratio=ratio[:, inv].reshape(shape),
    )
