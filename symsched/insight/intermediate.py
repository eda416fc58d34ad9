r"""Per-step spectra: the variance of the sample and of the denoised estimate after every step.

Each step maps a mode's variance by ``v_s = g^2 v_t + n`` (MATH.md §4) and computes the denoised
estimate ``x0_hat = c(t) x_t`` with the Wiener coefficient ``c`` (MATH.md §3), whose variance is
``c^2 v_t``. Following these through the schedule shows *when* each frequency band is generated:
a band's ``x0_hat`` reaches its data variance once the noise level falls below it, so coarse
(large-S) bands appear in the first steps and fine ones in the last (coarse to fine).

Note: the variance of the sample at level k is *not* the output of the partial schedule that stops
there: a partial schedule ends with a step to the clean level, and that final step outputs
``x0_hat``, not the sample. Here the sample and the estimate are kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import schedules as _sch
from .._validate import as_levels, as_spectrum, check_choice, check_eta
from ..api import INITS, VE_SAMPLERS, VP_SAMPLERS

__all__ = ["intermediate_spectra", "IntermediateSpectra"]

Array = NDArray[np.float64]
_KEY = "insight-intermediate-v1"  # bump when the kernel builders below change (they are outside the cache hash)


def _step_kernels(sampler: str, variant: str, init: str) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """Compiled (start, step, final) kernels of ``sampler``, from its symbolic step.

    * ``start(S, sigma) -> [v0]``: variance of the initial state (``compose.init_variance``);
    * ``step(S, v, sigma_s, h, *p) -> [v_s, var(x0_hat), marginal_s]`` for the step
      ``sigma_t = sigma_s + h -> sigma_s``: the sampler's ``Step.variance_map(v)``, the Wiener
      estimate's variance ``c(sigma_t)^2 v`` and the forward marginal variance at ``sigma_s``;
    * ``final(S, v, sigma_t, *p) -> [v_out, var(x0_hat)]`` for the step to the clean level.

    Engine calls relied on (to port to the state-space engine): ``engine.codegen.compile_kernel``
    and the stable rewriting ``engine.stable.{to_sigma, to_gap, tidy, rewrite_params}`` (VP levels
    in the VE coordinate sigma, the step's upper level as ``sigma_s + h``), the same form the
    engine's own step kernels use; numeric parameters come from ``engine.kernels.numeric_params``.
    """
    from ..engine.codegen import compile_kernel

    def parts(which: str) -> tuple[Any, list[Any], Any, Any, Any]:
        from ..engine.stable import rewrite_params, tidy, to_gap, to_sigma
        from ..symbolic import forward, get_sampler
        from ..symbolic import symbols as sy
        from ..symbolic.step import Step

        smp = get_sampler(sampler, variant)
        st = smp.step if which == "step" else smp.final
        vp = smp.process == "vp"
        conv = to_sigma if vp else (lambda e: e)
        gap = to_gap if which == "step" else (lambda e: e)
        gain, numeric = rewrite_params(conv(st.gain), smp.params)
        noise, _ = rewrite_params(conv(st.noise), smp.params)
        stable = Step(gain=tidy(gap(gain)), noise=tidy(gap(noise)))
        c = forward.vp_denoiser(sy.alpha_bar_t)[0] if vp else forward.ve_denoiser(sy.sigma_t)
        x0_var = tidy(gap(conv(c**2))) * sy.v
        marginal = tidy(conv(forward.vp_variance(sy.alpha_bar_s) if vp else forward.ve_variance(sy.sigma_s)))
        return stable, numeric, x0_var, marginal, smp

    def build_step() -> Any:
        from ..symbolic import symbols as sy

        stable, numeric, x0_var, marginal, _ = parts("step")
        return [sy.S, sy.v, sy.sigma_s, sy.h, *numeric], [stable.variance_map(sy.v), x0_var, marginal], 2

    def build_final() -> Any:
        from ..symbolic import symbols as sy

        stable, numeric, x0_var, _, _ = parts("final")
        return [sy.S, sy.v, sy.sigma_t, *numeric], [stable.variance_map(sy.v), x0_var], 2

    def build_start() -> Any:
        from ..engine.stable import tidy, to_sigma
        from ..symbolic import compose, get_sampler
        from ..symbolic import symbols as sy

        smp = get_sampler(sampler, variant)
        if smp.process == "vp":
            v0 = to_sigma(compose.init_variance(smp, init, sy.alpha_bar_t))
        else:
            v0 = compose.init_variance(smp, init, sy.sigma_t)
        return [sy.S, sy.sigma_t], [tidy(v0)]

    tag = f"{_KEY}:{sampler}:{variant}"
    return (compile_kernel(f"{tag}:start:{init}", build_start), compile_kernel(f"{tag}:step", build_step),
            compile_kernel(f"{tag}:final", build_final))


def _full(x: Any, shape: tuple[int, ...]) -> Array:
    return np.array(np.broadcast_to(np.asarray(x, dtype=np.float64), shape), dtype=np.float64)


@dataclass
class IntermediateSpectra:
    """Per-step spectra of a sampler run (:func:`intermediate_spectra`).

    Attributes
    ----------
    spectrum : ndarray, shape ``shape``
        The data spectrum S.
    alpha_bar : ndarray, shape (K,)
        The schedule (noisiest first).
    sample : ndarray, shape (K, *shape)
        ``sample[k]``: variance of the sample after step k+1 (at level ``alpha_bar[k+1]``; the last
        row, after the step to the clean level, is the output spectrum P). VE samplers: in VE units.
    x0_hat : ndarray, shape (K, *shape)
        ``x0_hat[k]``: variance of the denoised estimate computed in step k+1 from the sample at
        ``alpha_bar[k]`` (diffusers' ``pred_original_sample``).
    marginal : ndarray, shape (K, *shape)
        The forward process's variance at the level of ``sample[k]`` (the last row is S): what a
        perfect sampler's state would have.
    start : ndarray, shape ``shape``
        Variance of the initial state (white or exact start).
    sampler, eta, variance, init : the sampler settings.
    """

    spectrum: Array
    alpha_bar: Array
    sample: Array
    x0_hat: Array
    marginal: Array
    start: Array
    sampler: str
    eta: float
    variance: str
    init: str

    @property
    def steps(self) -> int:
        return int(self.alpha_bar.size)

    def generated_fraction(self) -> Array:
        """``x0_hat / x0_hat[-1]`` per step and mode: the share of the mode's final variance generated by each step (1 where it ends at 0)."""
        final = self.x0_hat[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(final > 0, self.x0_hat / np.where(final > 0, final, 1.0), 1.0)

    def accuracy(self) -> Array:
        """``x0_hat / S`` per step and mode: how much of the data's variance the estimate has (1 where S = 0)."""
        S = self.spectrum
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(S > 0, self.x0_hat / np.where(S > 0, S, 1.0), 1.0)

    def generation_step(self, threshold: float = 0.5) -> NDArray[np.int64]:
        """First step (1-based) at which a mode's ``x0_hat`` reaches ``threshold`` of its final value: shape of S."""
        if not 0.0 < float(threshold) <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1] (got {threshold!r})")
        reached = self.generated_fraction() >= threshold * (1.0 - 1e-12)
        return (np.argmax(reached, axis=0) + 1).astype(np.int64)

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


def intermediate_spectra(
    spectrum: ArrayLike,
    alpha_bar: ArrayLike,
    *,
    sampler: str = "ddim",
    eta: float = 0.0,
    variance: str = "posterior",
    init: str = "white",
) -> IntermediateSpectra:
    r"""Spectrum of the sample and of the denoised estimate after every step: :math:`v_s = g^2 v_t + n`, :math:`\mathrm{var}\,\hat x_0 = c_t^2 v_t`.

    Parameters
    ----------
    spectrum : array_like, any shape
        Mode variances ``S >= 0``.
    alpha_bar : array_like, shape (K,)
        Levels, strictly increasing in (0, 1), noisiest first (a final step to the clean level
        follows). VE samplers (``"euler"``, ``"heun"``) run on ``sigmas = sqrt((1 - ab) / ab)``.
    sampler : {"ddim", "ddpm", "euler", "heun"}
    eta : float in [0, 1]
        DDIM stochasticity (``"ddim"`` only).
    variance : {"posterior", "beta"}
        DDPM injected variance (``"ddpm"`` only).
    init : {"white", "exact"}
        Start from white noise (variance 1; VE sigma_max^2) or from the true noisy marginal.

    Returns
    -------
    IntermediateSpectra
        ``sample``, ``x0_hat``, ``marginal``: arrays of shape (K, *spectrum.shape); ``sample[-1]``
        equals :func:`symsched.output_spectrum` of the whole schedule and ``x0_hat[k]`` equals the
        output of the partial schedule ``alpha_bar[:k+1]``.

    Raises
    ------
    ValueError
        Bad spectrum, levels, sampler, eta, variance or init.

    Notes
    -----
    The per-step maps are the samplers' symbolic steps (``Step.variance_map``) and the Wiener
    coefficient of :mod:`symsched.symbolic.forward`, compiled by ``engine.codegen.compile_kernel``
    in the engine's cancellation-free coordinates (see ``_step_kernels`` for the engine calls used).
    """
    S = as_spectrum(spectrum)
    ab = as_levels(alpha_bar)
    check_choice(sampler, "sampler", VP_SAMPLERS + VE_SAMPLERS)
    eta = check_eta(eta)
    check_choice(variance, "variance", ("posterior", "beta"))
    check_choice(init, "init", INITS)
    if sampler != "ddim" and eta != 0.0:
        raise ValueError(f"eta applies only to sampler='ddim' (got eta={eta!r} with sampler={sampler!r})")
    from ..engine.kernels import numeric_params

    variant = variance if sampler == "ddpm" else ""
    start, step, final = _step_kernels(sampler, variant, init)
    params = numeric_params(sampler, eta)
    sig = _sch.alpha_bar_to_sigmas(ab)
    u, inv = np.unique(S.ravel(), return_inverse=True)
    inv = inv.reshape(-1)
    K = ab.size
    sample = np.empty((K, u.size))
    x0 = np.empty((K, u.size))
    marg = np.empty((K, u.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        v = _full(start(u, float(sig[0]))[0], u.shape)
        v_start = v.copy()
        for k in range(K - 1):
            v_s, x0v, lam = step(u, v, float(sig[k + 1]), float(sig[k] - sig[k + 1]), *params)
            sample[k], x0[k], marg[k] = _full(v_s, u.shape), _full(x0v, u.shape), _full(lam, u.shape)
            v = sample[k]
        v_out, x0v = final(u, v, float(sig[-1]), *params)
        sample[K - 1], x0[K - 1], marg[K - 1] = _full(v_out, u.shape), _full(x0v, u.shape), u
    # S = 0 modes: the Wiener estimate is exactly 0 (0/0 only in the VE coordinate at sigma -> 0)
    zero = u == 0
    x0[:, zero] = 0.0
    for name, arr in (("sample", sample), ("x0_hat", x0)):
        if not np.all(np.isfinite(arr)):  # pragma: no cover - guarded by the stable kernels
            raise ValueError(f"intermediate_spectra: non-finite {name} variance (levels too extreme for float64)")
    shape = (K, *S.shape)
    return IntermediateSpectra(
        spectrum=S, alpha_bar=ab, sample=sample[:, inv].reshape(shape), x0_hat=x0[:, inv].reshape(shape),
        marginal=marg[:, inv].reshape(shape), start=v_start[inv].reshape(S.shape), sampler=sampler, eta=eta,
        variance=variance, init=init,
    )
