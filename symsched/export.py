"""Conversion between symsched schedules and diffusers / k-diffusion.

symsched describes a sampler by the noise levels it visits, ``alpha_bar`` (strictly increasing,
noisiest first) followed by an implicit final step to ``alpha_bar = 1``, plus the sampler keyword
arguments. :func:`from_diffusers` reads that description off a configured diffusers scheduler
(after ``set_timesteps``) and states every place where diffusers deviates from it;
:func:`to_diffusers` and :func:`to_k_diffusion_sigmas` go the other way.

What diffusers actually does (read from diffusers 0.42 ``scheduling_ddim.py``,
``scheduling_ddpm.py``, ``scheduling_euler_discrete.py``):

* ``DDIMScheduler.step`` jumps from ``t`` to ``t - T // K`` (``T`` training steps, ``K`` inference
  steps), not to the next entry of ``scheduler.timesteps``. With ``timestep_spacing="leading"``
  (any ``steps_offset``) or ``"trailing"`` with ``K`` dividing ``T`` the two agree; otherwise
  (``"linspace"``, ``"trailing"`` with ``T % K != 0``) the model is evaluated at a level the
  sample is not at, which is *not* a DDIM schedule: :func:`from_diffusers` refuses it
  (``strict=True``) or marks it ``consistent=False``.
* DDIM's last step goes to ``t_last - T // K`` too: below 0 that is ``final_alpha_cumprod``, 1 with
  ``set_alpha_to_one=True``, else ``alphas_cumprod[0] < 1``; at 0 or above (``steps_offset >= 1`` when
  ``T // K = 1``: Stable Diffusion's config at 501 to 999 steps) it is ``alphas_cumprod[t_last - T // K]``.
  Below 1, the output is still slightly noisy. The schedule then ends with
  that level and ``final_alpha_bar < 1``: symsched's output PSD describes the output *after* one
  more exact denoising step ``x0_hat`` at ``final_alpha_bar`` (:meth:`DiffusersSchedule.denoise_final`).
* ``DDPMScheduler`` steps to the next entry of ``scheduler.timesteps`` (any spacing, custom
  ``timesteps=``) and finally to ``alpha_bar = 1``. It adds noise whenever ``t > 0``: on the last
  step (from ``t_last``) that noise has variance ``clamp(beta_tilde = 0, 1e-20)`` for
  ``"fixed_small"`` but ``beta = 1 - alphas_cumprod[t_last]`` for ``"fixed_large"`` when
  ``t_last > 0`` (e.g. ``"trailing"`` spacing) -- symsched's DDPM has no noise on the final step,
  so that white variance is reported as ``final_noise_variance`` and added to the PSD.
  ``"fixed_small"``/``"fixed_small_log"`` = ``variance="posterior"``, ``"fixed_large"`` =
  ``variance="beta"``; ``"fixed_large_log"``/``"learned*"`` are not linear-Gaussian samplers here.
* ``EulerDiscreteScheduler`` (no churn) is the VE Euler step = deterministic DDIM; it starts from
  ``init_noise_sigma``: ``sigma_max`` (``"linspace"``/``"trailing"``) or
  ``sqrt(sigma_max^2 + 1)`` (``"leading"``, the VP white start).
* ``clip_sample=True`` (the DDIM/DDPM default!) or ``thresholding=True`` make the step
  non-linear; the closed forms assume neither.
* ``alphas_cumprod`` is float32 in diffusers; the levels are returned as those float32 values.

The multistep schedulers (diffusers 0.42 ``scheduling_dpmsolver_multistep.py``,
``scheduling_unipc_multistep.py``, ``scheduling_deis_multistep.py``,
``scheduling_euler_ancestral_discrete.py``) keep their levels in ``scheduler.sigmas`` (VE sigma,
float32, ``num_inference_steps + 1`` entries, the last one the level the last step reaches); the
samplers ``dpmsolver_multistep``, ``unipc_multistep``, ``deis_multistep`` and
``euler_ancestral_discrete`` run on exactly those sigmas (the trailing 0 dropped, a final ``sigma_min``
kept as the last level), with the scheduler's options, and describe diffusers' output as returned:

* ``final_sigmas_type="sigma_min"`` (DPM-Solver, UniPC) and DEIS (always) stop at
  ``sigma(alphas_cumprod[0]) > 0``: the output is still noisy, a noise floor ~ ``1 - alphas_cumprod[0]``.
* UniPC applies no corrector after its last predictor (there is no model call at the final level);
  with the exact denoiser a corrector at sigma = 0 would change nothing.
* DPM-Solver's last step ``sigma_min -> sigma_min`` (Karras sigmas or LU lambdas with
  ``final_sigmas_type="sigma_min"``) is the identity: the run before it is read, with diffusers' orders for
  those steps; refused where diffusers' own zero step is NaN or caps a third-order step before it. LU lambdas can
  end a float32 rounding below the sigma_min diffusers appends (cosine grid): still that zero step.
* Not modelled, refused with ``ValueError`` naming the setting: ``thresholding``, flow-matching sigmas
  or ``flow_prediction``, learned variances, DPM-Solver's ``algorithm_type="dpmsolver"``/``"sde-dpmsolver"``,
  UniPC's ``predict_x0=False``/``solver_p``/``disable_corrector``, solver orders above 3, DEIS with
  ``use_karras_sigmas``/``use_exponential_sigmas``/``use_beta_sigmas`` (diffusers then repeats the last
  sigma: a zero last step), and settings for which diffusers itself returns NaN or inf (UniPC
  ``solver_type="bh1"`` with ``final_sigmas_type="zero"``: ``B(h) = h = -inf`` times a zero correction on the
  last step; UniPC ``lower_order_final=False`` with ``final_sigmas_type="zero"``: a multistep step to sigma = 0).
* ``LMSDiscreteScheduler`` (diffusers 0.42.1 ``scheduling_lms_discrete.py``) steps ``sigmas[i] -> sigmas[i + 1]``
  (K levels and a final 0) with the linear multistep coefficients of k-diffusion's ``sample_lms`` (the same
  ``scipy.integrate.quad`` of the Lagrange polynomials, order ramping up ``min(i + 1, order)``): sampler ``lms``. Its
  ``order`` is an argument of ``step`` (default 4, which pipelines use), not of the config: read as ``order=4``,
  with a note.
* ``KDPM2DiscreteScheduler`` (``scheduling_k_dpm_2_discrete.py``) runs 2K - 1 step calls on the interleaved sigmas
  ``[s0, s1, s1, ..., s_(K-1), s_(K-1), 0, 0, 0]`` and ``sigmas_interpol`` (geometric midpoints): an Euler half step
  to the midpoint, then the full step with the midpoint's derivative, the last step (midpoint 0) plain Euler to 0:
  k-diffusion's ``sample_dpm_2`` without churn, sampler ``dpm_2``. ``prediction_type="sample"``, which its ``step``
  does not implement, is refused.
* Every other schedule diffusers' own float32 loop cannot run is refused too: :func:`from_diffusers` steps a copy
  of the scheduler once (zero model output, one-element sample) and refuses a non-finite step, whatever its cause
  (e.g. ``DDIMScheduler`` from a zero-terminal-SNR level with ``eta = 1``, where ``1 - alpha_prod_t_prev -
  std_dev_t**2`` rounds below 0 for some step counts).
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import schedules as _sch
from ._validate import _show, as_bool, as_levels, as_real, as_real_array, as_sigmas, as_spectrum, numpy_error_defaults

__all__ = [
    "DIFFUSERS_SCHEDULERS",
    "DiffusersSchedule",
    "from_diffusers",
    "to_diffusers",
    "to_k_diffusion_sigmas",
    "from_k_diffusion_sigmas",
    "to_comfyui_sigmas",
]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class DiffusersSchedule:
    """A diffusers scheduler's run, in symsched terms.

    Attributes
    ----------
    scheduler : str
        Class name (``"DDIMScheduler"``, ``"DDPMScheduler"``, ``"EulerDiscreteScheduler"``,
        ``"DPMSolverMultistepScheduler"``, ``"UniPCMultistepScheduler"``, ``"DEISMultistepScheduler"``,
        ``"EulerAncestralDiscreteScheduler"``, ``"LMSDiscreteScheduler"``, ``"KDPM2DiscreteScheduler"``).
    sampler : str
        The symsched sampler (``"ddim"``, ``"ddpm"``, ``"euler"``, ``"dpmsolver_multistep"``,
        ``"unipc_multistep"``, ``"deis_multistep"``, ``"euler_ancestral_discrete"``, ``"lms"``, ``"dpm_2"``).
    alpha_bar : ndarray, shape (K,)
        Levels visited (model levels, noisiest first; plus the final level if it is < 1).
    sigmas : ndarray, shape (K,)
        The same levels in VE coordinates ``sqrt((1 - alpha_bar) / alpha_bar)`` (for the multistep
        schedulers: ``scheduler.sigmas`` itself, without a trailing 0).
    eta : float
        DDIM eta (0 for the others).
    variance : {"posterior", "beta"}
        DDPM injected variance.
    timesteps : ndarray
        ``scheduler.timesteps`` (diffusers order).
    steps : tuple of (float, float)
        What every ``step`` call does: (level the model is evaluated at, level it steps to).
    consistent : bool
        True when a symsched schedule describes the run: each step starts at the level the previous one reached,
        the steps are linear (no ``clip_sample`` / ``thresholding``) and diffusers' own run is finite (see
        :func:`from_diffusers`'s ``strict``).
    final_alpha_bar : float
        Level of diffusers' output (1 unless ``set_alpha_to_one=False`` / ``final_sigmas_type="sigma_min"``).
    final_noise_variance : float
        White-noise variance diffusers adds on its last step (DDPM ``fixed_large`` with ``t_last > 0``).
    init_variance : float
        Variance of the initial noise the pipeline uses (``init_noise_sigma ** 2``).
    notes : tuple of str
        Human-readable deviations from the plain symsched description.
    options : dict
        The sampler's options read from the scheduler's config (``solver_order``, ``algorithm_type``, ...; LMS:
        ``order=4``, the default of its ``step``).
    raw_output : bool
        True when :meth:`output_spectrum` describes diffusers' output as returned, even when it stops
        at ``final_alpha_bar < 1`` (the multistep schedulers); False for DDIM/Euler, whose closed form
        describes the output after :meth:`denoise_final`.
    Source: :func:`from_diffusers` (the schedulers of diffusers ``schedulers/``).
    """

    scheduler: str
    sampler: str
    alpha_bar: Array
    sigmas: Array
    eta: float
    variance: str
    timesteps: NDArray[Any]
    steps: tuple[tuple[float, float], ...]
    consistent: bool
    final_alpha_bar: float
    final_noise_variance: float
    init_variance: float
    notes: tuple[str, ...] = field(default=())
    options: Mapping[str, Any] = field(default_factory=dict)
    raw_output: bool = False

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`symsched.output_spectrum` (VP) or ``output_spectrum_ve`` (Euler)."""
        if self.sampler == "euler":
            return dict(sampler="euler")
        if self.sampler == "ddim":
            return dict(sampler="ddim", eta=self.eta)
        if self.sampler == "ddpm":
            return dict(sampler="ddpm", variance=self.variance)
        return dict(sampler=self.sampler, **self.options)

    def transfer_function(self, spectrum: ArrayLike) -> Array:
        """Response H(S) of diffusers' output to its initial sample (x_T = 1, noise off), per mode.

        In diffusers' own sample scale: VP for DDIM, DDPM and the multistep schedulers, VE
        (``x0 + sigma n``) for the Euler schedulers, ``(1 - t) x0 + t n`` for the FlowMatch ones; after
        :meth:`denoise_final` when ``raw_output`` is False and ``final_alpha_bar < 1``. Shape of ``spectrum``.
        """
        from . import transfer_function, transfer_function_ve

        self._check_consistent()
        S = as_spectrum(spectrum)
        if self.raw_output or self.sampler == "euler" or self._flow:
            return transfer_function_ve(S, self.sigmas, **self.kwargs)
        return transfer_function(S, self.alpha_bar, **self.kwargs)

    @property
    def _flow(self) -> bool:
        """A flow-matching run: its levels are read from the flow times' ``sigmas = t / (1 - t)``, not from
        ``alpha_bar``, in which ``1 - alpha_bar ~ t^2`` keeps few digits of a small t (t = 1e-7: 4e-4 relative)."""
        from .symbolic import FLOW_SAMPLERS

        return self.sampler in FLOW_SAMPLERS

    def _check_consistent(self) -> None:
        if not self.consistent:
            raise ValueError(
                "scheduler is not consistent (" + "; ".join(self.notes)
                + "): no symsched schedule describes its run"
            )

    def output_spectrum(self, spectrum: ArrayLike) -> Array:
        """PSD of what the diffusers loop returns (started from its own white noise), per mode.

        ``P = output_spectrum(S, alpha_bar, **kwargs) + final_noise_variance`` (VP), or the VE
        Euler closed form scaled by ``init_variance / sigma_max^2`` (Euler is deterministic, so
        ``P`` is proportional to the initial variance). When ``final_alpha_bar < 1`` this is the PSD
        of :meth:`denoise_final` applied to the output. Shape of ``spectrum``.
        """
        from . import output_spectrum, output_spectrum_ve, transfer_function_ve
        from .symbolic import sampler_module

        self._check_consistent()
        S = as_spectrum(spectrum)
        if self.raw_output:
            # the sampler's own white start (VP: 1, VE: sigma_max^2), corrected to diffusers' initial
            # variance through the transfer function: P = P_white + H^2 (v_init - v_white)
            P = output_spectrum_ve(S, self.sigmas, init="white", **self.kwargs)
            v_white = 1.0 if sampler_module(self.sampler).PROCESS == "vp" else float(self.sigmas[0]) ** 2
            if self.init_variance != v_white:
                H = transfer_function_ve(S, self.sigmas, **self.kwargs)
                P = P + H * H * (self.init_variance - v_white)
            return P + self.final_noise_variance
        if self.sampler == "euler":
            P = output_spectrum_ve(S, self.sigmas, sampler="euler", init="white")
            return P * (self.init_variance / float(self.sigmas[0]) ** 2)
        if self._flow:  # (its white start: N(0, 1) in the flow scale, as diffusers' pipelines draw it)
            return output_spectrum_ve(S, self.sigmas, init="white", **self.kwargs) + self.final_noise_variance
        P = output_spectrum(S, self.alpha_bar, init="white", **self.kwargs)
        return P + self.final_noise_variance

    def denoise_final(self, x: ArrayLike, spectrum: ArrayLike, *, basis: ArrayLike | None = None) -> Array:
        """Apply symsched's implicit final step (exact ``x0_hat``) when diffusers stops at ``final_alpha_bar < 1``.

        ``x`` are diffusers outputs (VP scaling for DDIM/DDPM, VE scaling ``x0 + sigma n`` for Euler),
        shape ``(..., *spectrum.shape)`` for a PSD on an FFT grid, or ``(..., d)`` with ``basis`` (shape (d, d),
        orthonormal columns: the eigen-directions of the ``d`` variances ``spectrum``, e.g. a PCA; ``np.eye(d)``
        when ``x`` is already in those coordinates); returned unchanged (as float64) when ``final_alpha_bar == 1``
        or ``raw_output`` (the closed form already describes the noisy output). Errors as
        :func:`symsched.montecarlo.wiener_denoiser`.
        """
        from .montecarlo import wiener_denoiser

        xa = as_real_array(x, "x")
        if self.final_alpha_bar >= 1.0 or self.raw_output:
            return xa
        ab = self.final_alpha_bar
        if self.sampler == "euler":  # VE sample -> VP sample
            xa = xa * math.sqrt(ab)
        return wiener_denoiser(xa, spectrum, ab, output="x0", basis=basis)


def _torch_to_numpy(t: Any, what: str = "") -> np.ndarray:
    """``t`` (a tensor or array) as float64; ``what`` (the scheduler attribute it is): ValueError naming it where
    diffusers left NaN in it (FlowMatchEulerDiscreteScheduler's ``shift_terminal`` with one step divides 0 by 0)."""
    out: np.ndarray
    try:
        import torch

        if isinstance(t, torch.Tensor):
            out = t.detach().to("cpu", torch.float64).numpy()
        else:
            out = np.asarray(t, dtype=np.float64)
    except ImportError:  # pragma: no cover
        out = np.asarray(t, dtype=np.float64)
    if what and np.any(np.isnan(out)):
        raise ValueError(f"scheduler: {what} holds NaN at index {int(np.flatnonzero(np.isnan(out))[0])}, as diffusers "
                         "computed it for this configuration (e.g. shift_terminal with a single step divides 0 by 0); "
                         "no schedule can be read from it")
    return out


def _vp_sigma(ab: np.ndarray) -> Array:
    """VE sigma of VP levels (alpha_bar = 0 -> inf), exact at both ends (:func:`symsched.schedules.alpha_bar_to_sigmas`)."""
    from .schedules import alpha_bar_to_sigmas

    return alpha_bar_to_sigmas(ab)


def _finite_sigmas(ab: Array, target: str, float32: bool = False) -> list[float]:
    """VE sigmas of a schedule for a VE sampler's ``sigmas`` (with the trailing 0); ValueError at alpha_bar = 0,
    and with ``float32`` where ``target`` casts them to float32 and they leave its range or merge."""
    if ab[0] == 0.0:
        raise ValueError(
            f"alpha_bar: the first level is 0 (zero terminal SNR, sigma = inf), which {target} cannot take as a sigma "
            "(x + (sigma_next - sigma) d is inf * 0); export to DDPMScheduler timesteps on a zero-SNR grid (with the "
            "model's prediction_type), or give the level diffusers' EulerDiscreteScheduler(rescale_betas_zero_snr="
            "True) itself runs for it, alpha_bar = 2**-24 (sigma = 4096); a flow-matching model runs it as flow "
            "matching (to_diffusers(..., scheduler='flow_match_euler'))"
        )
    sig = _vp_sigma(ab)
    _distinct(sig, ab, "VE sigma", target)
    if float32:
        _float32_distinct(sig, ab, "VE sigma", target)
    return [float(v) for v in sig] + [0.0]


def _distinct(values: Array, ab: Array, what: str, target: str, float32: bool = False, cast: str = "") -> None:
    """ValueError when two levels of ``ab`` map to one exported value (``values``, strictly decreasing otherwise):
    rounding of the conversion merges them (in float64, or with ``float32`` in the float32 ``target`` casts them
    to: ``cast`` says how, by default ``target.set_timesteps``), and ``target`` would run a zero step."""
    same = np.flatnonzero(values[1:] >= values[:-1])
    if same.size:
        i = int(same[0])
        cast = cast or f"{target}.set_timesteps casts the sigmas it is given"
        where = (f"in float32, to which {cast}: it would run a zero step"
                 if float32 else f"in float64, which {target} would run as a zero step (h = 0; the multistep solvers "
                 "divide by it)")
        raise ValueError(
            f"alpha_bar: levels {i} and {i + 1} ({float(ab[i])!r}, {float(ab[i + 1])!r}) map to the same {what} "
            f"{float(values[i])!r} {where}; merge or separate the levels")


def _float32_distinct(values: Array, ab: Array, what: str, target: str) -> None:
    """ValueError when ``values`` (strictly decreasing in float64) leave the float32 range or two of them merge in
    float32: ``target`` casts the sigmas it is given to float32 (diffusers ``set_timesteps``:
    ``np.array(sigmas).astype(np.float32)``), and would start at sigma = inf (NaN samples) or run a zero step."""
    with np.errstate(over="ignore"):
        v32 = np.asarray(values, dtype=np.float64).astype(np.float32)
    big = np.flatnonzero(~np.isfinite(v32))
    if big.size:
        i = int(big[0])
        raise ValueError(
            f"alpha_bar: level {i} ({float(ab[i])!r}) has {what} {float(values[i]):.6g}, beyond float32 (max "
            f"{float(np.finfo(np.float32).max):.4g}), to which {target}.set_timesteps casts the sigmas it is given: "
            "it would run sigma = inf (NaN samples); use a first level alpha_bar above 1e-77")
    _distinct(v32, ab, what, target, float32=True)


def _nonlinear(cfg: Any) -> str:
    """Why a scheduler configuration's step is not the linear one symsched models ("" when it is): ``clip_sample``
    (DDPMScheduler's and DDIMScheduler's default) or ``thresholding`` clip the predicted x0."""
    keys = [k for k in ("clip_sample", "thresholding") if bool(cfg.get(k, False))]
    return (f"{', '.join(k + '=True' for k in keys)} makes the step non-linear (the closed forms assume no clipping)"
            if keys else "")


def _final_noise(name: str, cfg: Any, out: dict[str, list[Any]], grid: Any) -> str:
    """Why a DDPMScheduler run of exported timesteps adds noise on its last step ("" when it does not):
    ``variance_type="fixed_large"`` draws variance ``beta = 1 - alphas_cumprod[t]`` on a last timestep ``t > 0``
    (diffusers adds none only at ``t = 0``), which ``output_spectrum(..., sampler="ddpm", variance="beta")`` leaves
    out and :func:`from_diffusers` adds as ``final_noise_variance``."""
    ts = out.get("timesteps") or [0]
    if name != "DDPMScheduler" or str(cfg.get("variance_type", "fixed_small")) != "fixed_large" or int(ts[-1]) <= 0:
        return ""
    beta = 1.0 - float(_as_export_grid(grid)[int(ts[-1])])
    return (f"DDPMScheduler with variance_type='fixed_large' adds noise of variance beta = 1 - alpha_bar = {beta:.4g} "
            f"on its last step (timestep {int(ts[-1])} > 0), which the schedule's DDPM does not: its output is "
            "from_diffusers(scheduler).output_spectrum(S) (final_noise_variance), not output_spectrum(S, alpha_bar, "
            "sampler='ddpm', variance='beta'); end the schedule at timestep 0 to leave it out")


@numpy_error_defaults
def from_diffusers(scheduler: Any, *, eta: float = 0.0, strict: bool = True) -> DiffusersSchedule:
    """Read the noise levels and sampler settings of a configured diffusers scheduler.

    alpha_bar[i] = scheduler.alphas_cumprod[t_i] for the timesteps t_i visited, noisiest first
    (DDIM, DDPM), or 1 / (1 + sigma_i^2) for ``scheduler.sigmas`` (the Euler and multistep schedulers).

    Parameters
    ----------
    scheduler : a diffusers scheduler of :data:`DIFFUSERS_SCHEDULERS`
        After ``set_timesteps`` (a DDPMScheduler without it runs all training steps): DDIMScheduler,
        DDPMScheduler, EulerDiscreteScheduler, HeunDiscreteScheduler, DPMSolverMultistepScheduler (``algorithm_type``
        "dpmsolver++" or "sde-dpmsolver++"), UniPCMultistepScheduler, DEISMultistepScheduler,
        EulerAncestralDiscreteScheduler, LMSDiscreteScheduler (read with ``step``'s default ``order=4``) or
        KDPM2DiscreteScheduler.
    eta : float in [0, 1]
        The ``eta`` passed to ``DDIMScheduler.step`` (diffusers keeps it out of the config). Only
        ``DDIMScheduler.step`` takes one: a nonzero ``eta`` with any other scheduler is a ``ValueError``.
    strict : bool
        Raise ``ValueError`` for non-linear settings (``clip_sample``, ``thresholding``), for DDIM timesteps that
        do not chain, and for a DDIM/DDPM run diffusers itself returns inf or NaN for (a zero-terminal-SNR first level,
        ``alphas_cumprod = 0``, with ``prediction_type="epsilon"``: its x0 estimate divides by
        ``sqrt(alpha_bar) = 0``; any schedule on which a copy of the scheduler, stepped once in float32, gives a
        non-finite sample); with ``strict=False`` they are reported in ``notes`` (and ``consistent=False``:
        :meth:`DiffusersSchedule.output_spectrum` then refuses) instead.

    Returns
    -------
    DiffusersSchedule
        ``alpha_bar`` and ``sigmas`` 1-D, shape (K,), noisiest first (K: the levels visited, see
        :class:`DiffusersSchedule`); ``timesteps`` as ``scheduler.timesteps``; ``steps`` one pair per ``step`` call.

    Raises
    ------
    ValueError
        Another scheduler class, a scheduler before ``set_timesteps``, or a setting symsched does
        not model (named in the message; see the module docstring); ``eta`` outside [0, 1], or nonzero
        for a scheduler other than DDIMScheduler.

    Source: diffusers ``schedulers/scheduling_<name>.py`` of each class (``set_timesteps``, ``step``, the
    ``alphas_cumprod`` / ``sigmas`` they hold), diffusers 0.42; docs/model.md §2 (``alpha_bar = 1 / (1 + sigma^2)``).
    """
    from ._validate import ArgumentTypeError, _show, check_eta

    name = type(scheduler).__name__
    cfg = getattr(scheduler, "config", None)
    reader = _READERS.get(name)
    _not_a_class(scheduler, "after set_timesteps")
    if cfg is None:  # not a scheduler object at all (None, a class name, a number): a wrong type
        raise ArgumentTypeError(f"scheduler must be a diffusers scheduler instance, one of {', '.join(_READERS)}, "
                                f"after set_timesteps (got {_show(scheduler)})")
    if reader is None:
        raise ValueError(f"scheduler must be one of the diffusers schedulers {', '.join(_READERS)} (got {name})")
    eta = check_eta(eta)
    if eta != 0.0 and name != "DDIMScheduler":
        raise ValueError(f"eta={eta!r}: only DDIMScheduler.step takes an eta; {name}.step has none (diffusers refuses "
                         "the keyword), so its run has no eta to describe: leave eta=0")
    strict = as_bool(strict, "strict")
    notes: list[str] = []
    nonlinear = _nonlinear(cfg)
    if nonlinear:
        if strict:
            raise ValueError(f"scheduler: {nonlinear}; configure it with clip_sample=False / thresholding=False")
        notes.append(nonlinear)
    out = reader(scheduler, cfg, notes, eta=eta, strict=strict)
    if nonlinear:
        return replace(out, consistent=False)
    failure = _dry_run_failure(scheduler, eta) if out.consistent else None
    if failure is None:
        measured = _float32_measured_note(scheduler, out.notes) if out.consistent else None
        return out if measured is None else replace(out, notes=out.notes + (measured,))
    if strict:
        raise ValueError(f"scheduler: {failure} (strict=False to inspect)")
    return replace(out, consistent=False, notes=out.notes + (failure,))


#: The loop state diffusers' ``set_timesteps`` resets (diffusers 0.42.1: the step counter; Heun's derivative and dt;
#: the multistep solvers' order ramp and UniPC's last sample; DPMSolverSDE's half step), with its fresh values.
_LOOP_STATE = {"_step_index": None, "prev_derivative": None, "dt": None, "sample": None, "mid_point_sigma": None,
               "noise_sampler": None, "last_sample": None, "lower_order_nums": 0}


#: the extrapolating schedulers whose float32 coefficient rounding a note measures (:func:`_float32_measured_note`)
#: and the most timesteps it runs that measurement for (two loops of two copies: ~1 ms a step)
_EXTRAPOLATING = ("DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler",
                  "LMSDiscreteScheduler")
_MEASURE_STEPS = 250


def _float32_measured_note(scheduler: Any, notes: Sequence[str]) -> str | None:
    """A note when diffusers' float32 step coefficients move this run's output by more than :data:`_FLOAT32_NOTE`
    in units of the data, measured: its loop on a copy as configured and on a copy with its tensors cast to float64,
    both on a float64 sample driven by the model outputs 0 and ``x`` (the update is linear in them). Only for the
    extrapolating schedulers (:data:`_EXTRAPOLATING`) and when no sigma_max note was given: their higher-order steps
    amplify the rounding beyond the sigma_max x 6e-8 estimate (break-test of 8 December: DPM-Solver order 3,
    ``lower_order_final=False``, ``use_beta_sigmas``, K = 4: 1.3e-3 where sigma_max x 6e-8 is 9e-6; 19 % of the
    output at S = 0.01)."""
    name = type(scheduler).__name__
    if (type(scheduler).__module__.split(".")[0] != "diffusers" or name not in _EXTRAPOLATING
            or any("6e-8" in n for n in notes) or len(scheduler.timesteps) > _MEASURE_STEPS):
        return None
    import copy

    import torch

    wide = copy.deepcopy(scheduler)
    for key, value in vars(wide).items():
        if torch.is_tensor(value) and value.is_floating_point():
            setattr(wide, key, value.double())
    with _DEFAULT_DTYPE_LOCK:
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gap = max(abs(_linear_probe(scheduler, g) - _linear_probe(wide, g)) for g in (0.0, 1.0))
        except Exception:  # noqa: BLE001 -- a run the dry run accepted; a probe it cannot take measures nothing
            return None
        finally:
            torch.set_default_dtype(default)
    if not gap > _FLOAT32_NOTE:
        return None
    return (f"{name} forms its step coefficients in float32, which moves this run's output by up to {gap:.2g} in "
            "units of the data (measured: its loop on float32 and float64 copies of its tensors; its higher-order "
            "steps amplify the rounding): modes far below the data's scale differ by it (the closed form is the run "
            "in exact arithmetic; with its tensors cast to float64 diffusers runs it)")


def _linear_probe(scheduler: Any, gain: float) -> float:
    """The final sample of diffusers' loop on a copy of ``scheduler`` from ``init_noise_sigma``, in float64, with the
    model output ``gain`` times the (scaled) model input at every step."""
    import copy

    import torch

    sch = copy.deepcopy(scheduler)
    _fresh_loop(sch)
    if hasattr(sch, "set_begin_index"):
        sch.set_begin_index(0)
    x = torch.full((1, 1, 1, 1), float(getattr(sch, "init_noise_sigma", 1.0)), dtype=torch.float64)
    for t in sch.timesteps:
        model_in = sch.scale_model_input(x, t) if hasattr(sch, "scale_model_input") else x
        x = sch.step(gain * model_in.double(), t, x).prev_sample.double()
    return float(x.flatten()[0])


def _exported_run_failure(scheduler: Any, out: dict[str, Any]) -> str | None:
    """Why diffusers cannot run the exported ``set_timesteps`` arguments ``out`` on a copy of ``scheduler`` (its
    ``set_timesteps`` raises, or :func:`_dry_run_failure`), or None. Break-test of 8 December: a first level 0 went
    to HeunDiscrete / DPMSolverMultistep without the 2**-24 stand-in (sigma = inf) and to an epsilon DDPM (x0 divided
    by sqrt(0)), each returning NaN, while from_diffusers refused the same configured schedulers."""
    if type(scheduler).__module__.split(".")[0] != "diffusers":
        return None
    import copy

    sch = copy.deepcopy(scheduler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sch.set_timesteps(**out)
    except Exception as exc:  # diffusers' own refusal of the arguments, reported rather than its traceback
        return f"its set_timesteps raises {type(exc).__name__} ({exc})"
    return _dry_run_failure(sch, 0.0)


def _not_a_class(scheduler: Any, what: str) -> None:
    """ArgumentTypeError when a scheduler class was passed where its configured instance is needed (break-test of
    8 December: "scheduler must be one of ... (got type)" named neither the class nor the fix)."""
    if isinstance(scheduler, type):
        from ._validate import ArgumentTypeError

        raise ArgumentTypeError(f"scheduler must be a configured instance ({scheduler.__name__}(...), {what}), not the "
                                f"class {scheduler.__name__} itself")


def _fresh_loop(sch: Any) -> None:
    """Put a (copied) diffusers scheduler back at the start of its loop without recomputing its timesteps, as
    ``set_timesteps`` would: :data:`_LOOP_STATE`, the multistep history ``model_outputs`` (one None per order) and
    LMS's ``derivatives``; UniPC's predictor scheduler ``solver_p`` likewise."""
    for key, value in _LOOP_STATE.items():
        if key in vars(sch):
            setattr(sch, key, value)
    if isinstance(vars(sch).get("model_outputs"), list):
        sch.model_outputs = [None] * len(sch.model_outputs)
    if isinstance(vars(sch).get("derivatives"), list):
        sch.derivatives = []
    if vars(sch).get("solver_p") is not None:
        _fresh_loop(sch.solver_p)


_DEFAULT_DTYPE_LOCK = threading.Lock()


def _dry_run_failure(scheduler: Any, eta: float) -> str | None:
    """Run diffusers' own loop once, on a copy of ``scheduler``, in float32 (its default dtype) on a one-element
    sample with a zero model output, and describe its first non-finite step (``None`` if every step is finite).

    Every update is linear in (sample, model output, noise) with coefficients that depend only on the schedule, so
    a non-finite coefficient anywhere (a square root of a negative rounding error, ``-inf * 0``, a division by
    zero) shows as a non-finite sample whatever the model predicts: the closed form would describe a run that does
    not exist. Only a scheduler from the diffusers package is run (a stand-in object is not a witness)."""
    if type(scheduler).__module__.split(".")[0] != "diffusers":
        return None
    import copy
    import inspect

    import torch

    sch = copy.deepcopy(scheduler)
    params = inspect.signature(sch.step).parameters
    kwargs: dict[str, Any] = {"return_dict": True}
    if "generator" in params:
        kwargs["generator"] = torch.Generator().manual_seed(0)
    if "eta" in params:
        kwargs["eta"] = eta
    x = torch.ones(1, 1, 1, 1, dtype=torch.float32)
    name = type(scheduler).__name__
    _fresh_loop(sch)  # (a scheduler a pipeline has already run carries on from its last step: audit of 4 December)
    # torch's default dtype is diffusers' own float32 for the loop, so that tensors step() creates match the float32
    # sample (a caller's torch.set_default_dtype(torch.float64) made UniPC's linalg.solve fail on mixed dtypes). The
    # setting is process-wide: the lock keeps overlapping dry runs from restoring each other's value for good (another
    # thread creating tensors meanwhile would still see float32 for these few milliseconds).
    with _DEFAULT_DTYPE_LOCK:
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
        try:  # the libraries' warnings of this internal run are not the caller's (under -W error a NumPy 2
            with warnings.catch_warnings():  # DeprecationWarning from torch refused DEIS; audit of 6 December):
                warnings.simplefilter("ignore")  # what refuses a schedule is an exception or a non-finite step
                return _dry_loop(sch, x, kwargs, name, eta)
        finally:
            torch.set_default_dtype(default)


def _dry_loop(sch: Any, x: Any, kwargs: dict[str, Any], name: str, eta: float) -> str | None:
    """The loop of :func:`_dry_run_failure` on its copy ``sch`` from the sample ``x``."""
    import torch

    if hasattr(sch, "set_begin_index"):  # the loop from step 0 (a repeated first timestep is noted by the readers)
        sch.set_begin_index(0)
    scale = getattr(sch, "scale_model_input", None)  # the Euler-type loops call it before the model (flow: none)
    for i, t in enumerate(sch.timesteps):
        try:
            if scale is not None:
                scale(x, t)
            x = sch.step(torch.zeros_like(x), t, x, **kwargs).prev_sample
        except Exception as exc:  # diffusers' own failure, reported as a refusal rather than its traceback
            return f"{name}.step raises {type(exc).__name__} ({exc}) on step {i} (timestep {float(t):g})"
        if not bool(torch.isfinite(x).all()):
            how = f" with eta={eta!r}" if "eta" in kwargs else ""
            return (f"{name}.step{how} returns {float(x.flatten()[0])} on step {i} (timestep {float(t):g}) in "
                    "float32, whatever the model predicts (a non-finite coefficient of its update: e.g. the square root "
                    "of a negative rounding error): diffusers itself cannot run this schedule")
    return None


def _from_ddim_ddpm(scheduler: Any, cfg: Any, notes: list[str], *, eta: float, strict: bool) -> DiffusersSchedule:
    """DDIMScheduler and DDPMScheduler: levels alphas_cumprod[timesteps] (see the module docstring)."""
    name = type(scheduler).__name__
    ac = _torch_to_numpy(scheduler.alphas_cumprod, "scheduler.alphas_cumprod")
    T = int(cfg.num_train_timesteps)
    ts = _checked_timesteps(scheduler, T)
    steps: list[tuple[float, float]] = []
    consistent = True
    final_noise = 0.0
    if name == "DDIMScheduler":
        if scheduler.num_inference_steps is None:
            raise ValueError("scheduler: call set_timesteps(num_inference_steps) before from_diffusers")
        K = int(scheduler.num_inference_steps)
        final = float(_torch_to_numpy(scheduler.final_alpha_cumprod, "scheduler.final_alpha_cumprod"))
        for i, t in enumerate(ts):  # DDIMScheduler.step: to t - T//K, alphas_cumprod there or, below 0, final
            prev = int(t) - T // K
            steps.append((float(ac[t]), float(ac[prev]) if prev >= 0 else final))
            if i + 1 < len(ts) and prev != int(ts[i + 1]):
                consistent = False
                notes.append(
                    f"DDIM step from t={int(t)} goes to t-T//K={prev} but the next model call is at timestep "
                    f"{int(ts[i + 1])} (timestep_spacing={cfg.timestep_spacing!r}, T={T}, K={K})"
                )
        if not consistent and strict:
            raise ValueError("scheduler: " + "; ".join(notes) + " -- not a DDIM schedule; use "
                             "timestep_spacing='leading', or 'trailing' with num_inference_steps dividing "
                             "num_train_timesteps (or strict=False to inspect)")
        sampler, variance, final_ab = "ddim", "posterior", steps[-1][1]
        if prev >= 0 and final_ab != final:  # e.g. steps_offset=1, T//K = 1: the last step is 1 -> 0, and stops
            notes.append(f"the last step goes to t-T//K={prev} >= 0, so the output is at alphas_cumprod[{prev}] = "
                         f"{final_ab!r}, not final_alpha_cumprod (DDIMScheduler.step takes that only below t = 0)")
        elif final_ab < 1.0:
            notes.append(f"set_alpha_to_one=False: the output is at alpha_bar={final!r} < 1 (slightly noisy)")
    else:  # DDPM
        vt = str(cfg.variance_type)
        if vt in ("fixed_small", "fixed_small_log"):
            variance = "posterior"
        elif vt == "fixed_large":
            variance = "beta"
        else:
            raise ValueError(
                f"scheduler: variance_type={vt!r} is not supported (use 'fixed_small' = posterior beta_tilde "
                "or 'fixed_large' = beta)"
            )
        for i, t in enumerate(ts):
            steps.append((float(ac[t]), float(ac[ts[i + 1]]) if i + 1 < len(ts) else 1.0))
        t_last = int(ts[-1])
        if t_last > 0:
            if variance == "beta":
                final_noise = 1.0 - float(ac[t_last])
                notes.append(
                    f"DDPM fixed_large adds noise of variance beta={final_noise:.6g} on its last step (t={t_last} > 0); "
                    "added to the PSD as final_noise_variance"
                )
            else:
                final_noise = 1e-20  # clamp(beta_tilde = 0, min=1e-20)
        sampler, final_ab = "ddpm", 1.0
        eta = 0.0
    if steps and steps[0][0] == 0.0 and str(cfg.get("prediction_type", "epsilon")) == "epsilon":
        msg = (f"the first timestep t={int(ts[0])} has alphas_cumprod = 0 (zero terminal SNR) and prediction_type="
               f"'epsilon': {name}.step divides by sqrt(alpha_bar_t) = 0 for its x0 estimate and returns inf or NaN")
        if strict:
            raise ValueError(f"scheduler: {msg}; a zero-SNR model predicts v (prediction_type='v_prediction') or x0 "
                             "('sample'): configure the scheduler with your model's prediction_type (strict=False to "
                             "inspect)")
        notes.append(msg)
        consistent = False
    levels = np.array([a for a, _ in steps], dtype=np.float64)
    if levels[0] > 0.0:  # its x0 estimate (x - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) runs in float32
        _float32_note(notes, name, math.sqrt((1.0 - levels[0]) / levels[0]), "runs its update in float32",
                      "alphas_cumprod and the sample")
    if final_ab < 1.0 and final_ab > levels[-1]:
        levels = np.append(levels, final_ab)
    if consistent:
        levels = as_levels(levels, "alpha_bar (from the scheduler)")
    return DiffusersSchedule(
        scheduler=name, sampler=sampler, alpha_bar=levels, sigmas=_vp_sigma(levels), eta=eta,
        variance=variance, timesteps=ts, steps=tuple(steps), consistent=consistent, final_alpha_bar=final_ab,
        final_noise_variance=final_noise, init_variance=float(getattr(scheduler, "init_noise_sigma", 1.0)) ** 2,
        notes=tuple(notes),
    )


def _checked_timesteps(scheduler: Any, T: int) -> NDArray[np.int64]:
    """``scheduler.timesteps`` as integers, each checked to lie in [0, T - 1] (ValueError naming the first that does not)."""
    raw = np.asarray(_torch_to_numpy(scheduler.timesteps, "scheduler.timesteps"), dtype=np.float64)
    if raw.ndim != 1 or raw.size == 0:
        raise ValueError("scheduler: call set_timesteps(num_inference_steps) before from_diffusers")
    _on_grid(scheduler, raw, T, ("diffusers would index alphas_cumprod out of range",
                                 "torch's alphas_cumprod[-1] wraps to the noisiest level"), integer=True)
    return raw.astype(np.int64)


def _spacing_settings(scheduler: Any, n: int) -> str:
    """The settings that decide which timesteps a scheduler visits, for messages (``n``: its number of timesteps,
    when ``num_inference_steps`` is not set)."""
    cfg = scheduler.config
    return (f"num_inference_steps={getattr(scheduler, 'num_inference_steps', None) or n}, "
            f"timestep_spacing={cfg.get('timestep_spacing')!r}, steps_offset={cfg.get('steps_offset')!r}")


def _on_grid(scheduler: Any, ts: Any, T: int, consequence: tuple[str, str], *, integer: bool) -> None:
    """ValueError naming the first of the timesteps ``ts`` outside the training grid [0, T - 1] (or, with
    ``integer``, not a whole number), what diffusers then does (``consequence``: above the grid, below it), the
    settings that caused it and the remedy that fits them."""
    raw = np.asarray(ts, dtype=np.float64)
    bad = ~np.isfinite(raw) | (raw < 0) | (raw > T - 1) | ((raw != np.round(raw)) if integer else False)
    if not np.any(bad):
        return
    i = int(np.argmax(bad))
    if raw[i] < 0 and scheduler.config.get("timestep_spacing") == "trailing":  # break-test of 8 December: its
        # float arange made K + 1 timesteps ending at -1 for K = 61 (steps_offset=0 already; the remedy named it)
        cause = "trailing spacing's arange over a fractional step passed timestep 0, one timestep too many"
        remedy = "choose another num_inference_steps, or timestep_spacing='linspace'"
    elif raw[i] > T - 1 and scheduler.config.get("steps_offset"):
        cause, remedy = "", "use fewer inference steps or steps_offset=0"
    else:
        cause, remedy = "", "use fewer inference steps"
    what = consequence[1] if raw[i] < 0 else consequence[0]
    raise ValueError(
        f"scheduler: timestep {raw[i]:g} (scheduler.timesteps[{i}]) lies outside the training grid [0, {T - 1}] "
        f"(num_train_timesteps={T}, {_spacing_settings(scheduler, raw.size)}{': ' + cause if cause else ''}): "
        f"{what}, and the model is conditioned on a timestep it was never trained at; {remedy}"
    )


def _ab(sigmas: Any) -> Any:
    """alpha_bar of VE sigmas, by the package's one conversion (:func:`symsched.schedules.sigmas_to_alpha_bar`)."""
    from .schedules import sigmas_to_alpha_bar

    return sigmas_to_alpha_bar(np.asarray(sigmas, dtype=np.float64))


def _level_pairs(at: Any, to: Any) -> tuple[tuple[float, float], ...]:
    """``steps`` of a sigma scheduler: (alpha_bar the model is evaluated at, alpha_bar the step goes to) per call."""
    return tuple(zip(_ab(at).tolist(), _ab(to).tolist()))


_EPS32 = float(np.finfo(np.float32).eps) / 2  # float32 unit roundoff, 6e-8
#: sigma_max x float32 roundoff beyond which the Euler/Heun readers note that diffusers' float32 step sizes matter
#: (sigma_max above ~1700: squaredcos_cap_v2's 2e4, not the linear / scaled_linear grids' 157 or 14.6)
_FLOAT32_NOTE = 1e-4


#: diffusers schedulers whose ``step`` casts the VE-scaled sample (magnitude ~sigma) to float32 whatever its dtype
#: and adds the update to it (``sample = sample.to(torch.float32)``, then ``sample + derivative * dt``: diffusers
#: 0.42.1 ``scheduling_euler_discrete.py`` and ``scheduling_euler_ancestral_discrete.py``): no cast of the
#: scheduler's tensors makes their run exact. DPMSolverMultistepScheduler casts its VP-scaled sample (magnitude ~1),
#: which rounds by ~6e-8 only: with float64 sigmas its 1-step run on the linear grid agrees to 1e-8.
_ROUNDS_VE_SAMPLE = {"EulerDiscreteScheduler": "sample_euler", "EulerAncestralDiscreteScheduler":
                     "sample_euler_ancestral"}


def _float32_note(notes: list[str], name: str, sigma_max: float, how: str, cast: str) -> None:
    """The note, every reader's, when diffusers' float32 arithmetic matters for this schedule: its rounding at the
    noisiest level, about sigma_max x 6e-8, above :data:`_FLOAT32_NOTE` (squaredcos_cap_v2's sigma_max ~2e4)."""
    if sigma_max * _EPS32 > _FLOAT32_NOTE:
        if name in _ROUNDS_VE_SAMPLE:  # break-test of 7 December: the note promised the closed form from float64
            # sigmas, but with use_beta_sigmas (K = 3) that run was still 7 % off (k-diffusion's float64: 3e-10)
            exact = (f"{cast} cast to float64 bring diffusers closer, but {name}.step rounds the sample itself to "
                     f"float32 whatever its dtype; k-diffusion's {_ROUNDS_VE_SAMPLE[name]} in float64 on the same "
                     "sigmas runs it")
        else:
            exact = f"with {cast} cast to float64 diffusers runs it"
        notes.append(f"{name} {how} (sigma_max = {sigma_max:.4g}): the rounding, about sigma_max x 6e-8 = "
                     f"{sigma_max * _EPS32:.2g}, can change the output of modes far below the data's scale (the "
                     f"closed form is the run in exact arithmetic; {exact})")


def _stepped_sigmas(scheduler: Any, notes: list[str]) -> tuple[Array, Array]:
    """``(sigmas, timesteps)`` of the steps diffusers' loop runs: one ``step`` per timestep, ``sigmas[i] ->
    sigmas[i + 1]``. Sigmas beyond ``len(timesteps) + 1`` are never reached (EulerDiscreteScheduler with
    ``interpolation_type="log_linear"`` builds K + 2 for K timesteps): dropped, with a note; fewer is a
    ValueError (diffusers would index past its sigmas). Notes too when the model's timesteps sit at other
    training levels than the sigmas the update uses."""
    name = type(scheduler).__name__
    if getattr(scheduler, "num_inference_steps", None) is None:
        raise ValueError("scheduler: call set_timesteps(num_inference_steps) before from_diffusers")
    sig = _torch_to_numpy(scheduler.sigmas, "scheduler.sigmas")
    ts = _torch_to_numpy(scheduler.timesteps, "scheduler.timesteps")
    if sig.ndim != 1 or sig.size < 2 or ts.ndim != 1 or ts.size == 0:
        raise ValueError("scheduler: call set_timesteps before from_diffusers")
    n = ts.size
    if sig.size < n + 1:
        raise ValueError(f"scheduler: {name} has {n} timesteps but only {sig.size} sigmas; its loop would step past "
                         "its last sigma")
    if sig.size > n + 1:
        never = ", ".join(f"{float(v):.6g}" for v in sig[n + 1:])
        notes.append(f"{name} runs {n} steps (one per timestep) but holds {sig.size} sigmas: its loop stops at "
                     f"sigma={float(sig[n]):.6g}; the sigmas after it ({never}) are never reached")
        sig = sig[: n + 1]
    _float32_note(notes, name, float(np.max(sig)), "forms its step sizes from float32 sigmas", "scheduler.sigmas")
    _repeated_first_timestep(scheduler, ts, notes)
    _model_levels_note(scheduler, ts, sig[:-1], notes)
    return sig, ts


def _model_levels_note(scheduler: Any, ts: Array, model_sig: Array, notes: list[str]) -> None:
    """ValueError for timesteps ``ts`` off the training grid, and a note when the training levels of the timesteps
    the model is called at differ from the sigmas ``model_sig`` its updates use (one per timestep)."""
    name = type(scheduler).__name__
    ac = getattr(scheduler, "alphas_cumprod", None)
    continuous = str(getattr(scheduler.config, "timestep_type", "discrete")) == "continuous"
    if ac is not None and not continuous:  # the model is called at timesteps, the update uses sigmas (with
        # timestep_type="continuous" the timestep is 0.25 log sigma itself: the model sees the update's level)
        ac = _torch_to_numpy(ac, "scheduler.alphas_cumprod")
        _on_grid(scheduler, ts, ac.size, (f"{name} clamps its sigma to the grid's end, which two steps may then "
                 "share (a zero step)", f"{name} clamps its sigma to the grid's end (timestep 0's)"), integer=False)
        base = _vp_sigma(ac)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a fractional timestep's level is
            # diffusers' own linear (interpolation_type="linear") or log-linear (_sigma_to_t) interpolation
            grid = np.arange(base.size)
            lin = np.abs(np.interp(ts, grid, base) / model_sig - 1.0)
            log = np.abs(np.exp(np.interp(ts, grid, np.log(base))) / model_sig - 1.0)
            rel = float(np.max(np.fmin(lin, log)))
        _timestep_level_note(notes, rel, "rounded or interpolated timesteps")


def _timestep_level_note(notes: list[str], rel: float, why: str) -> None:
    """A note when the levels of the timesteps the model is conditioned on differ from the update's sigmas by more
    than 1e-3 relative (``rel``: the largest such difference)."""
    if rel > 1e-3:
        notes.append(
            f"the model is called at timesteps whose training levels differ from sigmas by up to {rel:.2g} "
            f"relative ({why}): the closed form assumes a denoiser at sigmas[i]; a model conditioned on the "
            "timestep denoises at the timestep's level, and the output spectrum of such a run can differ from the "
            "closed form by several times that on low-variance modes: treat it as approximate"
        )


def _repeated_first_timestep(scheduler: Any, ts: Array, notes: list[str]) -> None:
    """A note when the first timestep recurs and no begin index is set: diffusers' ``index_for_timestep`` then starts
    the loop at its *second* occurrence ("to avoid skipping a sigma when starting mid-schedule"), so a pipeline that
    does not call ``set_begin_index(0)`` skips the first sigma and steps past the last one (diffusers
    ``schedulers/scheduling_euler_discrete.py``, ``index_for_timestep``; the same rule in every sigma scheduler)."""
    count = int(np.count_nonzero(ts == ts[0]))
    if count < 2 or getattr(scheduler, "begin_index", None) is not None:
        return
    notes.append(
        f"scheduler.timesteps hold their first timestep {float(ts[0]):g} {count} times (sigmas beyond the training "
        "grid's end share its last timestep): diffusers' index_for_timestep starts a loop at the second of them unless "
        "the pipeline calls scheduler.set_begin_index(0) (StableDiffusionXLPipeline does, StableDiffusionPipeline does "
        "not), and such a loop skips the first sigma and fails at its last step (IndexError); the closed form "
        "describes the loop started at step 0 (call set_begin_index(0))"
    )


def _from_euler(scheduler: Any, cfg: Any, notes: list[str], **_: Any) -> DiffusersSchedule:
    sig, ts = _stepped_sigmas(scheduler, notes)
    _zero_steps(scheduler, sig, ts)
    model_sig = sig[:-1]
    final_sig = float(sig[-1])
    steps = _level_pairs(sig[:-1], sig[1:])
    # a last step sigma_min -> sigma_min ('leading' spacing with final_sigmas_type='sigma_min') is the identity
    all_sig = np.append(model_sig, final_sig) if 0.0 < final_sig < float(model_sig[-1]) else model_sig
    all_sig = as_sigmas(all_sig, "sigmas (from the scheduler)")
    final_ab = float(_ab(final_sig))
    if final_sig > 0.0:
        notes.append(f"the loop's output is at sigma={final_sig:.6g} > 0 (slightly noisy); output_spectrum "
                     "describes it after denoise_final")
    init_sigma = float(_torch_to_numpy(scheduler.init_noise_sigma, "scheduler.init_noise_sigma"))
    return DiffusersSchedule(
        scheduler="EulerDiscreteScheduler", sampler="euler", alpha_bar=_ab(all_sig), sigmas=all_sig,
        eta=0.0, variance="posterior", timesteps=ts, steps=steps,
        consistent=True, final_alpha_bar=final_ab, final_noise_variance=0.0, init_variance=init_sigma**2,
        notes=tuple(notes),
    )


def _from_heun(scheduler: Any, cfg: Any, notes: list[str], **_: Any) -> DiffusersSchedule:
    """HeunDiscreteScheduler: ``sigmas = [s0, s1, s1, ..., s_{K-1}, s_{K-1}, 0]`` and ``2K - 1`` step calls (a first-
    order predictor and a corrector per level pair, the last step to 0 an Euler step: Karras et al. 2022, Alg. 1, as
    k-diffusion's ``sample_heun``); the levels are the predictors' sigmas (diffusers
    ``schedulers/scheduling_heun_discrete.py``, ``set_timesteps`` and ``step``)."""
    name = type(scheduler).__name__
    if cfg.prediction_type not in ("epsilon", "v_prediction", "sample"):
        raise _refuse(name, f"prediction_type={cfg.prediction_type!r}",
                      "diffusers implements epsilon, v_prediction and sample")
    sig, ts = _stepped_sigmas(scheduler, notes)
    n = ts.size
    levels = sig[:-1:2]
    if sig.size != 2 * levels.size or float(sig[-1]) != 0.0 or not np.array_equal(sig[1:-1:2], sig[2::2]):
        raise ValueError(f"scheduler: {name}.sigmas must be [s0, s1, s1, ..., s_(K-1), s_(K-1), 0] as its "
                         f"set_timesteps builds them (got {sig.tolist()})")
    all_sig = as_sigmas(levels, "sigmas (from the scheduler)")

    # step i: model at sigmas[i]; a predictor (even i) steps to sigmas[i + 1], a corrector (odd i) completes the
    # step to sigmas[i], where its model call already stands
    steps = _level_pairs(sig[:n], np.where(np.arange(n) % 2 == 0, sig[1:n + 1], sig[:n]))
    init_sigma = float(_torch_to_numpy(scheduler.init_noise_sigma, "scheduler.init_noise_sigma"))
    return DiffusersSchedule(
        scheduler=name, sampler="heun", alpha_bar=_ab(all_sig), sigmas=all_sig, eta=0.0,
        variance="posterior", timesteps=ts, steps=steps, consistent=True, final_alpha_bar=1.0,
        final_noise_variance=0.0, init_variance=init_sigma**2, notes=tuple(notes), raw_output=True,
    )


# ------------------------------------------------------------------------------------------------
# the multistep schedulers: levels from scheduler.sigmas, options from the config
# ------------------------------------------------------------------------------------------------
def _refuse(name: str, setting: str, why: str) -> ValueError:
    return ValueError(f"scheduler: {name} with {setting} is not modelled: {why}")


def _common_refusals(name: str, cfg: Any) -> None:
    """Settings none of the multistep samplers model (flow matching, learned variances, high orders)."""
    if bool(cfg.get("use_flow_sigmas", False)) or cfg.get("prediction_type") == "flow_prediction":
        raise _refuse(name, "use_flow_sigmas=True / prediction_type='flow_prediction'",
                      "these are flow-matching samplers (x = (1 - t) x0 + t n), not the VP process")
    if cfg.get("variance_type") is not None:
        raise _refuse(name, f"variance_type={cfg.get('variance_type')!r}", "a learned-variance model output")
    order = cfg.get("solver_order")
    if order is not None and order not in (1, 2, 3):
        raise _refuse(name, f"solver_order={order!r}", "symsched models solver orders 1, 2 and 3")


def _zero_steps(scheduler: Any, sig: Array, ts: Array) -> None:
    """ValueError naming the first step between two model levels of a ``sigmas[i] -> sigmas[i + 1]`` loop that does
    not lower sigma, with the settings that make diffusers build such sigmas (the step to the final level has its
    own rules)."""
    cut = sig[:-1]
    flat = np.flatnonzero(cut[1:] >= cut[:-1])
    if flat.size and flat[0] == 0 and abs(float(cut[0]) / _standin_sigma() - 1.0) < _STANDIN_RTOL:  # float32 sigmas
        raise ValueError(
            f"scheduler: {type(scheduler).__name__} runs its first timestep {float(ts[0]):g} at diffusers' "
            f"zero-terminal-SNR stand-in alphas_cumprod[-1] = 2**-24 (sigma {float(cut[0]):.6g}), less noisy than "
            f"timestep {float(ts[1]):g} after it (sigma {float(cut[1]):.6g}): the noise rises at the first step, not a "
            "symsched schedule; start from a timestep whose level lies below the stand-in's noise, or run "
            "DDPMScheduler, which takes alpha_bar = 0 exactly")
    if flat.size:
        i = int(flat[0])
        raise ValueError(
            f"scheduler: {type(scheduler).__name__}.sigmas do not decrease at step {i} (sigma {float(cut[i]):.6g} -> "
            f"{float(cut[i + 1]):.6g}, timesteps {float(ts[i]):g} -> {float(ts[min(i + 1, ts.size - 1)]):g}): a zero "
            f"step, not a symsched schedule ({_spacing_settings(scheduler, ts.size)}); use fewer inference steps "
            "or steps_offset=0")


#: diffusers' configuration flags of the sigma families that replace the spacing of the timesteps (each ends at
#: sigma_min for every number of steps, and rewrites sigmas or timesteps a caller passes)
_SIGMA_FAMILIES = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


def _zero_last_step_remedy(scheduler: Any) -> str:
    """What removes a zero last step ``sigma_min -> sigma_min``: Karras/exponential/beta sigmas and LU lambdas end at
    sigma_min for every number of steps, so only ``final_sigmas_type='zero'`` does; timesteps that end at the first
    training timestep also go with fewer inference steps."""
    cfg = getattr(scheduler, "config", {})
    if any(cfg.get(k) for k in (*_SIGMA_FAMILIES, "use_lu_lambdas")):
        return "use final_sigmas_type='zero' (these sigmas end at sigma_min for every number of steps)"
    return "use final_sigmas_type='zero' or fewer inference steps"


def _sigma_min_rounding(sigma: float) -> float:
    """How far (relative) above the last sigma ``sigma`` of Karras/exponential/beta sigmas or LU lambdas the final
    ``sigma_min`` diffusers appends can land by rounding, when both are sigma_min in exact arithmetic.

    diffusers 0.42.1 ``DPMSolverMultistepScheduler.set_timesteps``: the training sigmas are float32 (torch,
    ``((1 - alphas_cumprod) / alphas_cumprod) ** 0.5``) and ``sigma_last`` is the same float32 expression at
    ``alphas_cumprod[0]``: the grid's own sigma_min s0, up to one float32 rounding (2^-24 relative) should the scalar
    and the vector kernel round apart. Karras, exponential and beta sigmas end at ``s0`` up to float64 rounding
    (``linspace`` ends exactly at 1 / at ``log s0``; ppf(0) = 0), which the final float32 cast removes: equal. LU
    lambdas end at ``exp(lambda_min)``, ``lambda_min = np.log(sigmas)[0]`` taken in float32, which NumPy keeps within
    4 ulps of ln s0 (the float32 tolerance of its own accuracy test, numpy/_core/tests/data/
    umath-validation-set-log.csv): an absolute error <= 4 * 2^-23 |ln s0|, which exp turns into that relative error
    (the float64 ``lambda_max + 1.0 * (lambda_min - lambda_max)`` and ``exp`` add ~1e-16); the cast to float32 adds
    2^-24. In all: |sigma_last / sigma - 1| <= 2^-23 (4 |ln sigma| + 1) (2.6e-6 at sigma = 0.0064; diffusers' LU
    sigmas on the cosine grid end 1.8 * 2^-23 below its sigma_last)."""
    return float(np.finfo(np.float32).eps) * (4.0 * abs(float(np.log(sigma))) + 1.0)


def _multistep(scheduler: Any, notes: list[str], sampler: str, options: dict[str, Any],
               identity_last: Optional[Callable[[int, bool], dict[str, Any]]] = None) -> DiffusersSchedule:
    """The schedule of a scheduler that steps ``sigmas[i] -> sigmas[i + 1]`` (the last entry: its final level).
    ``identity_last(K, exact)``: the options that model a last zero step ``sigma_min -> sigma_min`` as the identity
    after the run before it (K timesteps; ``exact``: the two sigmas are equal, not just within the float32 rounding
    of :func:`_sigma_min_rounding` above it; ValueError where it is not the identity), or None when such a step is
    refused. A final sigma rounded *below* the last is a step diffusers runs (h != 0), modelled as one."""
    name = type(scheduler).__name__
    sig, ts = _stepped_sigmas(scheduler, notes)
    _zero_steps(scheduler, sig, ts)
    final = float(sig[-1])
    last = float(sig[-2])
    if identity_last is not None and 0.0 < last <= final <= last * (1.0 + _sigma_min_rounding(last)) and sig.size > 2:
        options = identity_last(int(ts.size), final == last)
        how = ("" if final == last else f" (diffusers appends {final:.9g}, {final / last - 1.0:.2g} relative above "
               f"its last sigma {last:.9g}: the float32 rounding of the same sigma_min, within "
               f"{_sigma_min_rounding(last):.2g})")
        notes.append(f"the last step goes from sigma_min -> sigma_min = {final:.6g}{how} (these sigmas already end at "
                     "sigma_min): diffusers' step over h = 0 (or a rounding of it) is the identity and its model call "
                     "is unused; the closed form is the run before it, with the orders diffusers gives those steps")
        sig = sig[:-1]
        final = float(sig[-1])
    if 0.0 < final and final >= float(sig[-2]):
        raise ValueError(
            f"scheduler: the last step of this {name} goes from sigma={float(sig[-2]):.6g} to sigma_min={final:.6g} "
            "(a zero step: the timesteps end at the first training timestep, or Karras-type sigmas already end at "
            f"sigma_min); not modelled -- {_zero_last_step_remedy(scheduler)}"
        )
    levels = as_sigmas(sig if final > 0.0 else sig[:-1], "sigmas (from the scheduler)")
    steps = _level_pairs(sig[:-1], sig[1:])
    final_ab = float(_ab(final))
    if final > 0.0:
        notes.append(
            f"the last step reaches sigma={final:.6g} > 0 (alpha_bar={final_ab:.8g}), not the clean level: "
            f"the output keeps a noise floor of variance ~{1.0 - final_ab:.3g} (included in output_spectrum)"
        )
    return DiffusersSchedule(
        scheduler=name, sampler=sampler, alpha_bar=_ab(levels), sigmas=levels, eta=0.0,
        variance="posterior", timesteps=ts, steps=steps, consistent=True, final_alpha_bar=final_ab,
        final_noise_variance=0.0,
        init_variance=float(_torch_to_numpy(scheduler.init_noise_sigma, "scheduler.init_noise_sigma")) ** 2,
        notes=tuple(notes), options=options, raw_output=True,
    )


def _from_dpmsolver(scheduler: Any, cfg: Any, notes: list[str], **_: Any) -> DiffusersSchedule:
    name = type(scheduler).__name__
    _common_refusals(name, cfg)
    alg = cfg.algorithm_type
    if alg not in ("dpmsolver++", "sde-dpmsolver++"):
        raise _refuse(name, f"algorithm_type={alg!r}", "symsched models 'dpmsolver++' and 'sde-dpmsolver++' "
                      "(diffusers deprecates the noise-prediction variants)")
    options = dict(solver_order=int(cfg.solver_order), algorithm_type=alg, solver_type=cfg.solver_type,
                   lower_order_final=bool(cfg.lower_order_final), euler_at_final=bool(cfg.euler_at_final),
                   final_sigmas_type=cfg.final_sigmas_type)
    return _multistep(scheduler, notes, "dpmsolver_multistep", options,
                      identity_last=lambda K, exact: _dpmsolver_identity_last(name, options, K, exact))


def _dpmsolver_identity_last(name: str, options: dict[str, Any], K: int, exact: bool = True) -> dict[str, Any]:
    """The options of a DPMSolverMultistep run of K timesteps whose last step is the zero step sigma_min ->
    sigma_min, as the run of its first K - 1 steps (diffusers ``step``: ``lower_order_final`` and ``euler_at_final``
    act on the zero step alone, the step before it is capped at second order when ``lower_order_final`` and
    K < 15, which only changes third order). A third-order zero step is NaN in diffusers (``r0 / (r0 + r1)`` is
    inf / inf), and the cap on a third-order step before it has no symsched plan: ValueError. Not ``exact`` (the
    final sigma a float32 rounding above the last), the step is over a rounding-sized h that diffusers' float32 loop
    may or may not round to 0: where it does, the dry run of :func:`from_diffusers` refuses the NaN; where it does
    not, the third-order terms are O(h) (r0, r1 ~ 1 / h) and the step is the identity to ~1e-7."""
    lof, eaf, order = options["lower_order_final"], options["euler_at_final"], options["solver_order"]
    remedy = "use final_sigmas_type='zero' (these sigmas end at sigma_min for every number of steps)"
    if exact and order == 3 and K >= 3 and not (eaf or (lof and K < 15)):
        raise _refuse(name, "solver_order=3 and a last step sigma_min -> sigma_min",
                      "diffusers' own last step is then third order over h = 0, which divides 0 by 0 (its output "
                      f"is NaN); {remedy}, or euler_at_final=True")
    if order == 3 and lof and K < 15 and K >= 4:
        raise _refuse(name, "solver_order=3, lower_order_final=True and a last step sigma_min -> sigma_min",
                      "diffusers caps the step before that zero step at second order, which no symsched plan of "
                      f"these levels expresses; {remedy}")
    return dict(options, lower_order_final=False, euler_at_final=False)


def _from_unipc(scheduler: Any, cfg: Any, notes: list[str], **_: Any) -> DiffusersSchedule:
    name = type(scheduler).__name__
    _common_refusals(name, cfg)
    if not bool(cfg.get("predict_x0", True)):
        raise _refuse(name, "predict_x0=False", "symsched models the data-prediction (predict_x0=True) updates")
    if getattr(scheduler, "solver_p", None) is not None:
        raise _refuse(name, "solver_p", "another scheduler as predictor")
    if list(getattr(scheduler, "disable_corrector", []) or []):
        raise _refuse(name, f"disable_corrector={list(scheduler.disable_corrector)!r}", "every corrector is applied")
    options = dict(solver_order=int(cfg.solver_order), solver_type=cfg.solver_type,
                   lower_order_final=bool(cfg.lower_order_final), final_sigmas_type=cfg.final_sigmas_type)
    if options["final_sigmas_type"] == "zero":
        if options["solver_type"] == "bh1":
            raise _refuse(name, "solver_type='bh1' and final_sigmas_type='zero'",
                          "diffusers returns NaN: on the last step (to sigma = 0) B(h) = h = -inf multiplies a zero "
                          "correction; use final_sigmas_type='sigma_min' or solver_type='bh2' (symsched's "
                          "unipc_multistep gives the finite limit)")
        if not options["lower_order_final"] and options["solver_order"] > 1 and int(scheduler.num_inference_steps) > 1:
            raise _refuse(name, "lower_order_final=False and final_sigmas_type='zero'",
                          "its last step to sigma = 0 is multistep, where the log-SNR ratios r_k vanish: diffusers "
                          "returns inf (order 2) or cannot solve for the weights (order 3)")
    return _multistep(scheduler, notes, "unipc_multistep", options)


def _from_deis(scheduler: Any, cfg: Any, notes: list[str], **_: Any) -> DiffusersSchedule:
    name = type(scheduler).__name__
    _common_refusals(name, cfg)
    for key in _SIGMA_FAMILIES:
        if bool(cfg.get(key, False)):
            raise _refuse(name, f"{key}=True", "diffusers then repeats the last sigma, a zero last step whose order "
                          "still counts in the lower-order ramp")
    options = dict(solver_order=int(cfg.solver_order), lower_order_final=bool(cfg.lower_order_final))
    return _multistep(scheduler, notes, "deis_multistep", options)


def _from_euler_ancestral(scheduler: Any, cfg: Any, notes: list[str], **_: Any) -> DiffusersSchedule:
    name = type(scheduler).__name__
    if cfg.prediction_type not in ("epsilon", "v_prediction"):
        raise _refuse(name, f"prediction_type={cfg.prediction_type!r}", "diffusers implements epsilon and v_prediction")
    return _multistep(scheduler, notes, "euler_ancestral_discrete", {})


#: The order diffusers' pipelines run LMSDiscreteScheduler.step with: ``order`` is an argument of ``step``
#: (default 4), not of the configuration, and no pipeline passes it.
_LMS_ORDER = 4


def _from_lms(scheduler: Any, cfg: Any, notes: list[str], **_: Any) -> DiffusersSchedule:
    """LMSDiscreteScheduler: ``sigmas[i] -> sigmas[i + 1]`` (K levels and a final 0), each step a linear multistep
    step over the Lagrange polynomial through the last ``min(i + 1, order)`` derivatives, integrated by
    ``scipy.integrate.quad`` between the two sigmas: k-diffusion's ``sample_lms`` with the same ``order``
    (diffusers 0.42.1 ``schedulers/scheduling_lms_discrete.py``, ``get_lms_coefficient`` and ``step``)."""
    name = type(scheduler).__name__
    if cfg.prediction_type not in ("epsilon", "v_prediction", "sample"):
        raise _refuse(name, f"prediction_type={cfg.prediction_type!r}",
                      "diffusers implements epsilon, v_prediction and sample")
    notes.append(f"{name}.step takes the method's order as an argument, order={_LMS_ORDER} unless the caller passes "
                 f"another (diffusers' pipelines do not): read as k-diffusion's lms with order={_LMS_ORDER}; a loop "
                 "calling step(..., order=n) runs lms with order=n")
    return _multistep(scheduler, notes, "lms", {"order": _LMS_ORDER})


def _kdpm2_levels(scheduler: Any, name: str) -> tuple[Array, Array, Array]:
    """``(levels s_0..s_{K-1}, midpoints m_1..m_{K-1}, the 2K - 1 timesteps)`` of a KDPM2DiscreteScheduler, or
    ValueError when its ``sigmas`` / ``sigmas_interpol`` are not the layout :func:`_from_kdpm2` describes."""
    if getattr(scheduler, "num_inference_steps", None) is None:
        raise ValueError("scheduler: call set_timesteps(num_inference_steps) before from_diffusers")
    sig = _torch_to_numpy(scheduler.sigmas, "scheduler.sigmas")
    mid = _torch_to_numpy(scheduler.sigmas_interpol)  # (its first entry is NaN by construction: log 0 = -inf)
    ts = _torch_to_numpy(scheduler.timesteps, "scheduler.timesteps")
    n = ts.size
    K = (n + 1) // 2
    layout = (sig.ndim == 1 and ts.ndim == 1 and n % 2 == 1 and sig.size == 2 * K + 2 and mid.shape == sig.shape
              and np.array_equal(sig[1:2 * K - 1:2], sig[2:2 * K:2]) and not np.any(sig[2 * K - 1:])
              and mid[2 * K - 1] == 0.0)
    levels = sig[0:2 * K - 1:2] if layout else sig
    m = mid[1:2 * K - 2:2] if layout else mid
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # float32 log, lerp and exp: the log's
        # rounding, ~2^-24 |log s| absolute, is that relative error of the midpoint (8.4e-7 at the cosine grid's 2e4)
        lg = np.abs(np.log(levels))
        tol = 4.0 * _EPS32 * (2.0 + lg[:-1] + lg[1:])
        geometric = layout and bool(np.all(np.abs(m / np.sqrt(levels[:-1] * levels[1:]) - 1.0) <= tol))
    if not geometric:
        raise ValueError(f"scheduler: {name}.sigmas / sigmas_interpol must be [s0, s1, s1, ..., s_(K-1), s_(K-1), 0, "
                         "0, 0] and the geometric midpoints of those levels in the same layout, with 2K - 1 "
                         f"timesteps, as its set_timesteps builds them (got sigmas {sig.tolist()}, {n} timesteps)")
    return levels, m, ts


def _from_kdpm2(scheduler: Any, cfg: Any, notes: list[str], **_: Any) -> DiffusersSchedule:
    """KDPM2DiscreteScheduler: k-diffusion's ``sample_dpm_2`` without churn on its levels ``s_0 > ... > s_{K-1}``.

    diffusers 0.42.1 ``schedulers/scheduling_k_dpm_2_discrete.py``: ``set_timesteps`` builds ``sigmas = [s_0, s_1,
    s_1, ..., s_{K-1}, s_{K-1}, 0, 0, 0]``, ``sigmas_interpol`` in the same layout from the geometric midpoints
    ``m_j = exp(lerp(log s_j, log s_{j-1}, 1/2))`` (``m_K = 0``; its first entry is NaN, never used) and ``2K - 1``
    timesteps ``[t_0, t(m_1), t_1, ..., t(m_{K-1}), t_{K-1}]``. Step call ``2j`` (first order) evaluates the model at
    ``s_j`` and steps to ``m_{j+1}``, call ``2j + 1`` evaluates it at ``m_{j+1}`` and completes ``s_j -> s_{j+1}``
    from the saved sample with that derivative; the last call (``j = K - 1``, ``m_K = 0``) is an Euler step to 0:
    the DPM-Solver-2 step of ``sample_dpm_2``, its last step Euler."""
    name = type(scheduler).__name__
    if cfg.prediction_type not in ("epsilon", "v_prediction"):
        raise _refuse(name, f"prediction_type={cfg.prediction_type!r}",
                      "diffusers implements epsilon and v_prediction (its step raises NotImplementedError otherwise)")
    levels, m, ts = _kdpm2_levels(scheduler, name)
    n = ts.size
    _float32_note(notes, name, float(levels[0]), "forms its step sizes from float32 sigmas",
                  "scheduler.sigmas (and sigmas_interpol recomputed from them)")
    _repeated_first_timestep(scheduler, ts, notes)
    model_sig = np.empty(n)  # the levels the model is called at: s_0, m_1, s_1, ..., m_{K-1}, s_{K-1}
    model_sig[0::2], model_sig[1::2] = levels, m
    _model_levels_note(scheduler, ts, model_sig, notes)
    _zero_steps(scheduler, np.append(levels, 0.0), ts[0::2])
    all_sig = as_sigmas(levels, "sigmas (from the scheduler)")
    to = np.empty(n)  # call 2j steps to m_{j+1} (0 on the last), call 2j + 1 completes the step to s_{j+1}
    to[0::2], to[1::2] = np.append(m, 0.0), levels[1:]
    init_sigma = float(_torch_to_numpy(scheduler.init_noise_sigma, "scheduler.init_noise_sigma"))
    return DiffusersSchedule(
        scheduler=name, sampler="dpm_2", alpha_bar=_ab(all_sig), sigmas=all_sig, eta=0.0,
        variance="posterior", timesteps=ts, steps=_level_pairs(model_sig, to), consistent=True, final_alpha_bar=1.0,
        final_noise_variance=0.0, init_variance=init_sigma**2, notes=tuple(notes), raw_output=True,
    )


#: Flow times t[0] in (1, 1 + this / min(shift, 1)] are t = 1 rounded in float32 by diffusers
#: (``shift * t / (1 + (shift - 1) t)`` at t = 1 is up to ~8 float32 ulps / shift off 1: 1.0000006 for shift = 0.2,
#: 1.0000954 for shift = 0.01).
_FLOW_T_ROUNDING = 16 * float(np.finfo(np.float32).eps)


def _from_flow_match(scheduler: Any, cfg: Any, notes: list[str], **_: Any) -> DiffusersSchedule:
    """FlowMatchEuler/HeunDiscreteScheduler: flow times ``scheduler.sigmas`` (t = 1 is alpha_bar = 0)."""
    from .schedules import flow_t_to_alpha_bar, flow_t_to_sigmas

    name = type(scheduler).__name__
    heun = name == "FlowMatchHeunDiscreteScheduler"
    for key in ("invert_sigmas", "stochastic_sampling"):
        if bool(cfg.get(key, False)):
            raise _refuse(name, f"{key}=True", "not the deterministic flow ODE step symsched models")
    if getattr(scheduler, "num_inference_steps", None) is None:
        raise ValueError("scheduler: call set_timesteps before from_diffusers")
    sig = _torch_to_numpy(scheduler.sigmas, "scheduler.sigmas")
    if sig.ndim != 1 or sig.size < 2:
        raise ValueError("scheduler: call set_timesteps before from_diffusers")
    if float(sig[-1]) != 0.0:
        raise _refuse(name, f"a last sigma {float(sig[-1]):g} != 0", "symsched's flow samplers end at t = 0")
    # Heun repeats every interior level (its two model calls): [t0, t1, t1, ..., t_{K-1}, t_{K-1}, 0]
    t = np.concatenate((sig[:1], sig[1:-1:2])) if heun else sig[:-1]
    # the smaller of the shift __init__ built sigma_max with (the config's) and the one set_timesteps applied (live)
    shift = (min(float(cfg.get("shift", 1.0) or 1.0), float(_live_shift(scheduler, cfg) or 1.0))
             if not bool(cfg.get("use_dynamic_shifting", False)) else 1.0)
    if 1.0 < t[0] <= 1.0 + _FLOW_T_ROUNDING / min(max(shift, 1e-3), 1.0):  # diffusers' float32 shift rounding
        notes.append(f"the first flow time {float(t[0])!r} is 1 up to diffusers' float32 rounding: read as t = 1 "
                     "(pure noise, alpha_bar = 0)")
        t = np.concatenate(([1.0], t[1:]))
    if np.any(np.diff(t) >= 0) or np.any(t <= 0) or np.any(t > 1):
        raise ValueError(f"scheduler: {name}.sigmas must be flow times strictly decreasing in (0, 1] (got {t.tolist()})")
    ab = as_levels(flow_t_to_alpha_bar(t), "alpha_bar (from the scheduler's flow sigmas)")
    steps = tuple((float(a), float(b)) for a, b in zip(ab, np.append(ab[1:], 1.0)))
    notes.append("flow matching: x_t = (1 - t) x0 + t eps, scheduler.sigmas are the flow times t "
                 "(alpha_bar = (1 - t)^2 / ((1 - t)^2 + t^2)); the model predicts v = eps - x0")
    ts = _torch_to_numpy(scheduler.timesteps, "scheduler.timesteps")
    _flow_timestep_note(notes, ts, sig, float(cfg.get("num_train_timesteps", 1000) or 1000))
    return DiffusersSchedule(
        scheduler=name, sampler="flow_match_heun" if heun else "flow_match_euler", alpha_bar=ab,
        sigmas=flow_t_to_sigmas(t), eta=0.0, variance="posterior", timesteps=ts,
        steps=steps, consistent=True, final_alpha_bar=1.0, final_noise_variance=0.0,
        init_variance=float(getattr(scheduler, "init_noise_sigma", 1.0)) ** 2, notes=tuple(notes),
    )


def _flow_timestep_note(notes: list[str], ts: Array, sig: Array, n_train: float) -> None:
    """Flow schedulers condition the model on ``t = timestep / num_train_timesteps`` and step with ``sigmas``;
    ``set_timesteps(timesteps=...)`` keeps the timesteps and shifts only the sigmas (diffusers warns): note it."""
    n = min(ts.size, sig.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(ts[:n] / n_train / sig[:n] - 1.0)
    if n and ts.ndim == 1:
        _timestep_level_note(notes, float(np.max(np.where(np.isfinite(rel), rel, np.inf))),
                             "set_timesteps(timesteps=...) keeps them and shifts only the sigmas")


#: diffusers scheduler class -> reader (scheduler, config, notes, eta=, strict=) -> DiffusersSchedule.
#: A new scheduler family is one entry here (and one in :data:`_EXPORTERS`; LMSDiscreteScheduler and
#: KDPM2DiscreteScheduler have none there: their set_timesteps takes only num_inference_steps).
_READERS: dict[str, Callable[..., DiffusersSchedule]] = {
    "DDIMScheduler": _from_ddim_ddpm,
    "DDPMScheduler": _from_ddim_ddpm,
    "EulerDiscreteScheduler": _from_euler,
    "HeunDiscreteScheduler": _from_heun,
    "DPMSolverMultistepScheduler": _from_dpmsolver,
    "UniPCMultistepScheduler": _from_unipc,
    "DEISMultistepScheduler": _from_deis,
    "EulerAncestralDiscreteScheduler": _from_euler_ancestral,
    "LMSDiscreteScheduler": _from_lms,
    "KDPM2DiscreteScheduler": _from_kdpm2,
    "FlowMatchEulerDiscreteScheduler": _from_flow_match,
    "FlowMatchHeunDiscreteScheduler": _from_flow_match,
}

#: The diffusers schedulers :func:`from_diffusers` reads.
DIFFUSERS_SCHEDULERS = tuple(_READERS)


@numpy_error_defaults
def to_diffusers(
    alpha_bar: ArrayLike,
    *,
    grid: ArrayLike | None = None,
    rtol: float | None = None,
    scheduler: Any = None,
) -> dict[str, list[Any]]:
    """What to pass to a diffusers ``set_timesteps`` to run a symsched schedule.

    Without ``grid``: ``{"sigmas": [sigma_K, ..., sigma_1, 0.0]}``, sigma = sqrt((1-ab)/ab), for
    ``EulerDiscreteScheduler.set_timesteps(**d)`` (Euler = deterministic DDIM; with its default
    ``timestep_spacing="linspace"`` it starts from ``sigma_max``, i.e. ``init="white"`` of
    :func:`symsched.output_spectrum_ve`).

    With ``grid`` (a model's ``alphas_cumprod``, index = training timestep): ``{"timesteps":
    [t_K, ..., t_1]}`` (descending ints) with ``grid[t_i] == alpha_bar[i]`` within the tolerance, for
    ``DDPMScheduler.set_timesteps(**d)`` (also EulerDiscrete, DPMSolverMultistep, ...).
    ``DDIMScheduler`` accepts no custom timesteps. Levels not on the grid raise ``ValueError``
    (snap them first, e.g. with ``symsched.schedules``).

    With ``scheduler`` (a diffusers scheduler, or its class name with ``grid``): the arguments for
    that scheduler's ``set_timesteps``, or ``ValueError`` saying that it takes no custom schedule. A
    ``UserWarning`` when the instance's configuration makes the step non-linear: ``clip_sample=True``
    (DDPMScheduler's default) or ``thresholding=True`` (the timesteps are valid, but the run is not the one
    optimised; :func:`from_diffusers` refuses to predict it), and when ``DDPMScheduler(variance_type="fixed_large")``
    would end at a timestep ``t > 0``: it adds noise of variance ``1 - alphas_cumprod[t]`` on that last step, which
    ``output_spectrum(..., sampler="ddpm", variance="beta")`` leaves out (:func:`from_diffusers` predicts it).
    In diffusers 0.42: ``EulerDiscreteScheduler`` takes ``sigmas``; ``DDPMScheduler``, ``HeunDiscreteScheduler`` and
    ``DPMSolverMultistepScheduler`` take ``timesteps`` on their training grid (for DPM-Solver with
    ``final_sigmas_type="sigma_min"`` the last level must be that final level, ``alphas_cumprod[0]``,
    which diffusers appends itself); ``DDIMScheduler``, ``UniPCMultistepScheduler`` (custom ``sigmas``
    only with ``use_flow_sigmas``), ``DEISMultistepScheduler`` and ``EulerAncestralDiscreteScheduler`` take
    neither (nor do ``LMSDiscreteScheduler`` and ``KDPM2DiscreteScheduler``, which ``to_diffusers`` does not list).

    Parameters
    ----------
    alpha_bar : array_like, shape (K,)
        Strictly increasing levels in [0, 1), noisiest first (a first level 0: zero terminal SNR / flow t = 1).
    grid : array_like or torch.Tensor, shape (T,), optional
        Default with ``scheduler``: its ``alphas_cumprod``. Training order: strictly decreasing in (0, 1),
        the last entry may be 0 (zero terminal SNR); ValueError naming ``grid`` otherwise. diffusers' stand-in
        ``2**-24`` of EulerDiscrete / DPMSolverMultistep with ``rescale_betas_zero_snr=True`` matches a level 0
        for the timestep lookup, but that scheduler then *runs* its noisiest timestep at ``alpha_bar = 2**-24``,
        not at 0: its output differs from the schedule's (``from_diffusers`` of the configured scheduler
        describes what it runs; ``symsched optimize --format diffusers`` says so in a note with both values).
        FlowMatchEulerDiscrete, given flow times, uses no grid: an explicit ``grid`` is a ValueError there.
    rtol : float, optional
        Relative tolerance of the grid match; only with a grid match (``grid=``, or a scheduler that takes
        ``timesteps``): given without ``grid`` and ``scheduler``, or with a scheduler given ``sigmas``
        (EulerDiscrete, FlowMatchEulerDiscrete), it is a ValueError naming ``rtol`` (it would be ignored).
        Default: what float32 rounding allows. diffusers computes
        ``alphas_cumprod`` in float32 (betas, ``1 - betas``, ``torch.cumprod``; the zero-SNR rescale too), so its
        ``log alphas_cumprod[t]`` differs from the exact (float64) value by up to
        ``u * sum_{s <= t} (1 + 1/alpha_s)``, ``u = 2**-24``, ``alpha_s = grid[s] / grid[s-1]`` (``1 - beta_s``
        rounds with relative error ``u beta_s / alpha_s``, each product with ``u``): up to 4e-5 at
        ``t = 998`` of the zero-SNR scaled_linear grid. A level matches ``grid[t]`` when
        ``|log alpha_bar - log grid[t]| <= 2 u (sum_{s <= t} (1 + 1/alpha_s) + 8)`` (twice the first-order bound plus
        the rescale's roundings), never more than a quarter of the log-distance to a neighbouring timestep, so a
        level between two timesteps is refused. An explicit ``rtol`` (``|alpha_bar - grid[t]| <= rtol alpha_bar``)
        is held to the same quarter-gap cap. With a ``scheduler`` instance whose configuration names a beta family
        symsched knows (or ``trained_betas``), a level equal to that configuration's exact float64 grid at ``t``
        within 1e-12 relative also matches ``t`` (short zero-SNR grids, where float32 moves the levels farther).
    scheduler : diffusers scheduler or str, optional

    Returns
    -------
    dict with one key, ``"sigmas"`` or ``"timesteps"``

    Raises
    ------
    ValueError
        Bad levels, ``grid``, ``rtol`` or ``scheduler`` (named); levels not on the grid within the tolerance; an
        ``rtol`` or ``grid`` the export would ignore; a ``grid`` that is not the ``alphas_cumprod`` of the scheduler
        instance given (another length, or a level more than 1 % off); a scheduler that takes no custom schedule of
        that kind.

    Source: diffusers ``set_timesteps(timesteps=...)`` / ``set_timesteps(sigmas=...)`` of the schedulers in
    ``schedulers/`` (e.g. ``scheduling_euler_discrete.py``), diffusers 0.42; docs/model.md §2 (``sigma`` of a level).
    """
    ab = as_levels(alpha_bar)
    rtol = _as_rtol(rtol)  # on every path: a bad value is the caller's error first, whether rtol applies or not
    if grid is not None:
        _as_export_grid(grid)  # likewise before a scheduler that takes no custom schedule is refused
    if scheduler is None and grid is None and rtol is not None:  # (it would be ignored: nothing is matched)
        raise ValueError(f"rtol={rtol:g} needs grid=: it is the tolerance of matching the levels to a training grid's "
                         "timesteps, and without grid= the export is sigmas, matched to nothing (omit rtol or pass "
                         "grid=)")
    if scheduler is not None:
        _not_a_class(scheduler, "or its class name as a string")
        if not isinstance(scheduler, str) and getattr(scheduler, "config", None) is None:
            from ._validate import ArgumentTypeError

            raise ArgumentTypeError(f"scheduler must be a diffusers scheduler instance or its class name, one of "
                                    f"{', '.join(_EXPORTERS)} (got {_show(scheduler)})")
        name = scheduler if isinstance(scheduler, str) else type(scheduler).__name__
        export = _EXPORTERS.get(_ALIASES.get(name, name))
        if export is None:
            raise ValueError(f"scheduler must be one of the diffusers schedulers {', '.join(_EXPORTERS)}, or a "
                             f"flow-matching sampler name ({', '.join(_ALIASES)}) (got {name})")
        key = _ALIASES.get(name, name)
        if key in _SIGMA_EXPORTS:  # options such an export would ignore are refused, not dropped
            if rtol is not None:
                raise ValueError(f"rtol applies to timesteps matched on a training grid; {key} is given sigmas, "
                                 "matched to nothing (omit rtol)")
            if grid is not None and key == "FlowMatchEulerDiscreteScheduler":
                raise ValueError(f"grid: {key} is given flow times, which no training grid constrains (omit grid)")
        own = None if isinstance(scheduler, str) else getattr(scheduler, "alphas_cumprod", None)
        if grid is None:
            grid = own
        elif own is not None:
            _same_grid(grid, own, name)
        out = export(ab, scheduler, grid, rtol)  # (a scheduler that takes no custom schedule is refused first)
        failure = None if isinstance(scheduler, str) else _exported_run_failure(scheduler, out)
        if failure:
            hint = "" if ab[0] != 0.0 else "; for a first level 0 (zero terminal SNR) " + (
                "configure it with prediction_type='v_prediction' or 'sample' (an epsilon model's x0 divides by "
                "sqrt(0))" if getattr(scheduler, "sigmas", None) is None else
                "configure it with rescale_betas_zero_snr=True, which runs the 2**-24 stand-in instead of sigma = "
                "inf" if "rescale_betas_zero_snr" in scheduler.config else
                f"{name} has no zero-SNR setting (its sigma would be inf): start from the next level")
            raise ValueError(f"alpha_bar: this {name} cannot run the {', '.join(out)} exported for it: {failure}{hint}")
        nonlinear = "" if isinstance(scheduler, str) else _nonlinear(scheduler.config)
        if nonlinear:  # valid timesteps, but not the run optimised (from_diffusers refuses to predict it)
            from ._validate import warn_caller

            warn_caller(f"scheduler: {name} with {nonlinear}: it runs these levels, but not as the sampler symsched "
                        "optimised them for; configure clip_sample=False / thresholding=False")
        final = "" if isinstance(scheduler, str) else _final_noise(name, scheduler.config, out, grid)
        if final:  # valid timesteps; the run adds a last noise the schedule's DDPM does not (from_diffusers adds it)
            from ._validate import warn_caller

            warn_caller(f"scheduler: {final}")
        return out
    if grid is None:
        return {"sigmas": _finite_sigmas(ab, "EulerDiscreteScheduler", float32=True)}
    return {"timesteps": _grid_timesteps(ab, grid, rtol)}


#: float32 unit roundoff: diffusers computes ``alphas_cumprod`` in float32.
_F32_U = 2.0**-24


_ZERO_SNR_STANDIN = _sch.ZERO_SNR_STANDIN  # diffusers' zero-terminal-SNR stand-in 2**-24


def _standin_sigma() -> float:
    """The VE sigma diffusers runs for the stand-in level (4096)."""
    return float(_vp_sigma(np.array([_ZERO_SNR_STANDIN]))[0])


#: how close to the stand-in a level read back from a scheduler is: its float32 sigma 4096 gives
#: 1/(1 + 2**24), 6e-8 relative below 2**-24; the next grid level (~2e-7) is 3x away
_STANDIN_RTOL = 1e-6


def _is_standin(alpha_bar: float) -> bool:
    """Whether ``alpha_bar`` is diffusers' zero-SNR stand-in 2**-24, as given or as read back from float32 sigmas."""
    return abs(alpha_bar / _ZERO_SNR_STANDIN - 1.0) < _STANDIN_RTOL


def _as_export_grid(grid: Any) -> Array:
    """A training grid (torch or array): 1-D, strictly decreasing, in (0, 1) with an optional last 0.

    A last entry of exactly ``2**-24`` is diffusers' zero-terminal-SNR stand-in and reads as 0 (for matching
    timesteps only: the scheduler runs that timestep at ``2**-24``, see :func:`to_diffusers`).
    """
    from .schedules import _as_grid, _standin_as_zero

    if grid is None:
        raise ValueError("grid: pass the scheduler's alphas_cumprod (grid=...) to place the levels on its timesteps")
    g = as_real_array(_torch_to_numpy(grid) if hasattr(grid, "detach") else grid, "grid")
    return _as_grid(_standin_as_zero(g), "grid")


#: relative difference (in log) beyond which a ``grid`` given with a scheduler instance is not its alphas_cumprod:
#: far above float32's rounding of a grid (up to 4e-5, more on short zero-SNR grids), far below a wrong grid's
#: (the linear grid against scaled_linear: 115x at K = 5)
_GRID_MISMATCH = 0.01


def _same_grid(grid: Any, own: Any, name: str) -> None:
    """ValueError naming ``grid`` when it is not the scheduler's own ``alphas_cumprod`` ``own`` (other length, or a
    level off by more than :data:`_GRID_MISMATCH` in log; a last zero-SNR entry 0 against a stand-in is the same):
    the timesteps would be matched on one grid and run on another (break-test of 7 December: the linear grid with a
    scaled_linear DDPMScheduler gave timesteps whose levels lay up to 115x from the exported ones, silently)."""
    g, o = _as_export_grid(grid), _as_export_grid(own)
    if g.size != o.size:
        raise ValueError(f"grid: {g.size} timesteps, but the {name} given has {o.size} (its alphas_cumprod, which it "
                         "runs): omit grid, or pass scheduler.alphas_cumprod")
    both = (g > 0) & (o > 0)
    with np.errstate(divide="ignore"):
        off = np.abs(np.log(g[both]) - np.log(o[both]))
    if off.size and float(off.max()) > _GRID_MISMATCH:
        t = int(np.flatnonzero(both)[int(np.argmax(off))])
        raise ValueError(f"grid: grid[{t}] = {float(g[t]):.6g}, but the {name} given runs alphas_cumprod[{t}] = "
                         f"{float(o[t]):.6g} (another training grid): its timesteps would place the levels elsewhere; "
                         "omit grid (the scheduler's own is used), or configure the scheduler with the grid's betas")


def _float32_log_tolerance(g: Array) -> Array:
    """Per timestep (positive entries of ``g``), the largest ``|log level - log g[t]|`` accepted as a match.

    ``2 u (sum_{s <= t} (1 + 1/alpha_s) + 8)``: twice the first-order float32 error of a cumulative product of
    ``alpha_s = 1 - beta_s`` (see :func:`to_diffusers`), plus 8 roundings of the zero-SNR rescale; capped at a
    quarter of the log-distance to the neighbouring timesteps.
    """
    lg = np.log(g[g > 0])
    alpha = np.exp(np.diff(lg, prepend=0.0))  # grid[s] / grid[s-1], grid[-1] = 1
    bound = 2.0 * _F32_U * (np.cumsum(1.0 + 1.0 / alpha) + 8.0)
    return np.minimum(bound, _quarter_gap(g))


def _quarter_gap(g: Array) -> Array:
    """Per timestep (positive entries of ``g``), a quarter of the log-distance to the nearest neighbouring
    timestep: no tolerance, default or explicit, accepts a level farther than that from its timestep."""
    gap = np.abs(np.diff(np.log(g[g > 0])))
    return 0.25 * np.minimum(np.append(np.inf, gap), np.append(gap, np.inf))


#: A level within this relative distance of the exact (float64) grid's ``exact[t]`` is timestep ``t``: float64
#: rounding of a level carried through log-SNR or sigma and back (``symsched.schedules`` does that) stays far below.
_EXACT_RTOL = 1e-12


def _exact_grid(cfg: Any, g: Array) -> Array | None:
    """The float64 training grid that a diffusers scheduler configured by ``cfg`` computes in float32 as ``g``
    (its ``beta_schedule``, ``beta_start``, ``beta_end`` or ``trained_betas``, ``num_train_timesteps``,
    ``rescale_betas_zero_snr``, by :func:`symsched.schedules.training_grid`); None without a configuration, for
    a schedule symsched does not name, or when the result is not ``g`` within a quarter of its timestep gaps.

    Why: float32 moves ``log alphas_cumprod`` by more than the first-order bound of :func:`to_diffusers` where the
    zero-terminal-SNR rescale cancels (``sqrt(alpha_bar_t) - sqrt(alpha_bar_{T-1})`` on a short grid: 1.3e-5 at
    T = 3 against a bound of 1.6e-6), so symsched's own levels of that grid missed their timesteps."""
    from .schedules import betas_to_alpha_bar, rescale_zero_terminal_snr, training_grid

    if not cfg or not hasattr(cfg, "get"):
        return None
    names = {v: k for k, v in _DIFFUSERS_BETA_NAMES.items()} | {"sigmoid": "sigmoid"}
    try:
        T = int(cfg.get("num_train_timesteps", g.size))
        trained = cfg.get("trained_betas", None)
        if trained is not None:
            exact = betas_to_alpha_bar(np.asarray(trained, dtype=np.float64))
        elif cfg.get("beta_schedule") in names:
            name = names[cfg["beta_schedule"]]
            kw = {} if name == "cosine" else {"beta_start": float(cfg["beta_start"]), "beta_end": float(cfg["beta_end"])}
            exact = training_grid(name, num_train_timesteps=T, **kw)
        else:
            return None
        if bool(cfg.get("rescale_betas_zero_snr", False)):
            exact = rescale_zero_terminal_snr(exact)
    except (ValueError, TypeError, KeyError):
        return None
    if exact.shape != g.shape or (exact[-1] == 0.0) != (g[-1] == 0.0):
        return None
    n = int(np.count_nonzero(g > 0))
    if np.any(exact[:n] <= 0) or np.any(np.abs(np.log(exact[:n]) - np.log(g[:n])) > _quarter_gap(g)):
        return None
    return exact


def _match_timestep(a: float, i: int, g: Array, tol: Array, rtol: float | None, standin: bool = False,
                    exact: Array | None = None, configured: bool = True) -> int:
    """The timestep t with ``g[t] == a`` within the tolerance; ValueError naming ``alpha_bar[i]`` otherwise.
    ``standin``: the scheduler runs a zero-SNR timestep at diffusers' ``2**-24``, so that level is its timestep.
    ``exact``: the float64 grid that ``g`` (float32) computes, when its configuration says (:func:`_exact_grid`);
    a level equal to ``exact[t]`` within float64 rounding is timestep t, however far float32 moved ``g[t]``;
    ``configured``: a scheduler configuration was given (else the error suggests giving one)."""
    if standin and _is_standin(a) and g[-1] == 0.0:
        return g.size - 1
    if exact is not None and a > 0.0:
        t = int(np.argmin(np.abs(exact - a)))
        if abs(exact[t] - a) <= _EXACT_RTOL * a:
            return t
    if a == 0.0:
        if g[-1] == 0.0:
            return g.size - 1
        raise ValueError(f"alpha_bar[{i}]=0.0 is not on the grid: the grid has no zero-terminal-SNR level "
                         f"(its noisiest level is grid[{g.size - 1}]={float(g[-1])!r})")
    n = tol.size  # positive entries: g[:n]
    d = np.abs(np.log(g[:n]) - math.log(a))
    t = int(np.argmin(d))
    if rtol is None and d[t] <= tol[t]:
        return t
    if rtol is not None and abs(g[t] - a) <= rtol * a and d[t] <= _quarter_gap(g)[t]:
        return t
    rule = (f"within rtol={rtol:g} and a quarter of the way to the neighbouring timesteps" if rtol is not None else
            f"within float32 rounding of the cumulative product (|log alpha_bar - log grid[{t}]| = {d[t]:.3g} > "
            f"{tol[t]:.3g})")
    hint = "" if configured else (" or pass the scheduler instance as scheduler= (its configuration gives the "
                                  "grid in float64, which diffusers' float32 array only approximates)")
    raise ValueError(f"alpha_bar[{i}]={a!r} is not on the grid {rule} (nearest: grid[{t}]={float(g[t])!r}); "
                     f"snap the schedule to the grid first{hint}")


def _as_rtol(rtol: Any) -> float | None:
    """None, or a finite real ``rtol >= 0`` (a bool, string or NaN is refused naming ``rtol``)."""
    if rtol is None:
        return None
    value = as_real(rtol, "rtol")
    if value < 0:
        raise ValueError(f"rtol must be >= 0 (got {_show(rtol)})")
    return value


def _grid_timesteps(ab: Array, grid: Any, rtol: float | None, standin: bool = False, cfg: Any = None) -> list[int]:
    """Training timesteps t_i with grid[t_i] == ab[i] within the tolerance (ValueError otherwise); ``standin``: see
    :func:`_match_timestep`; ``cfg``: the scheduler's configuration, whose exact grid also matches
    (:func:`_exact_grid`)."""
    g = _as_export_grid(grid)
    rtol = _as_rtol(rtol)
    tol = _float32_log_tolerance(g)
    exact = _exact_grid(cfg, g)
    out = [_match_timestep(float(a), i, g, tol, rtol, standin, exact, bool(cfg)) for i, a in enumerate(ab)]
    if len(set(out)) != len(out):
        from .schedules import GridCollision

        raise GridCollision("alpha_bar maps two levels to the same grid timestep")
    return out


def _no_custom(name: str, how: str) -> Callable[..., dict[str, list[Any]]]:
    def export(*_: Any) -> dict[str, list[Any]]:
        raise ValueError(f"scheduler: {name}.set_timesteps takes no custom schedule in diffusers 0.42 ({how}); "
                         "symsched cannot export to it")

    return export


def _euler_sigmas(ab: Array, grid: Any) -> list[float]:
    """EulerDiscreteScheduler ``sigmas``; with the model's training grid, ValueError for a sigma above its largest
    training sigma: diffusers conditions the model on a timestep interpolated in log sigma and clamped to the
    grid, so that step would run the model at its last timestep's noise level, not the schedule's."""
    sig = _finite_sigmas(ab, "EulerDiscreteScheduler", float32=True)
    if grid is not None:
        g = _as_export_grid(grid)
        top = float(g[-1]) if g[-1] > 0 else float(_ZERO_SNR_STANDIN)  # diffusers' stand-in for alpha_bar = 0
        sig_max = float(_vp_sigma(np.array([top]))[0])
        if sig[0] > sig_max * (1 + 1e-3):  # float32 alphas_cumprod: up to ~1e-4 off after 1000 products
            raise ValueError(
                f"alpha_bar: the first sigma {sig[0]:.6g} exceeds the model's largest training sigma {sig_max:.6g} "
                f"(alphas_cumprod[{g.size - 1}] = {top:.6g}): EulerDiscreteScheduler would run the model there at "
                f"timestep {g.size - 1}'s noise level; optimise on the model's grid (symsched optimize --grid, "
                "optimize_schedule(..., grid=...)) so every level lies in its training range")
    return sig


def _to_heun(ab: Array, scheduler: Any, grid: Any, rtol: float | None) -> dict[str, list[Any]]:
    """HeunDiscreteScheduler: ``timesteps`` on its grid; diffusers refuses them with Karras, exponential or beta
    sigmas configured (``set_timesteps``: "Cannot use `timesteps` with `config.use_karras_sigmas = True`")."""
    cfg = _config(scheduler)
    for key in _SIGMA_FAMILIES:
        if bool(cfg.get(key, False)):
            raise ValueError(f"scheduler: HeunDiscreteScheduler with {key}=True takes no custom timesteps")
    return {"timesteps": _grid_timesteps(ab, grid, rtol, cfg=cfg)}


def _config(scheduler: Any) -> Any:
    """A diffusers scheduler's configuration (a mapping); ``{}`` for a class name."""
    return getattr(scheduler, "config", {}) if not isinstance(scheduler, str) else {}


def _to_dpmsolver(ab: Array, scheduler: Any, grid: Any, rtol: float | None) -> dict[str, list[Any]]:
    return dpmsolver_timesteps(ab, _config(scheduler), grid, rtol)


def dpmsolver_timesteps(ab: Array, cfg: Any, grid: Any, rtol: float | None = None) -> dict[str, list[Any]]:
    """``set_timesteps`` arguments of a DPMSolverMultistepScheduler configured by ``cfg`` (a mapping): the model
    levels' timesteps (without the final level with ``final_sigmas_type="sigma_min"``, which diffusers appends)."""
    rtol = _as_rtol(rtol)  # before the sigma_min check below, which reads a failed match as a misplaced last level
    for key in (*_SIGMA_FAMILIES, "use_lu_lambdas", "use_flow_sigmas"):
        if bool(cfg.get(key, False)):
            raise ValueError(f"scheduler: DPMSolverMultistepScheduler with {key}=True takes no custom timesteps")
    if cfg.get("final_sigmas_type", "zero") == "sigma_min":
        g = _as_export_grid(grid) if grid is not None else None
        try:
            last_is_first = ab.size >= 2 and g is not None and _grid_timesteps(ab[-1:], g, rtol, cfg=cfg) == [0]
        except ValueError:
            last_is_first = False
        if not last_is_first:
            raise ValueError(
                "alpha_bar: with final_sigmas_type='sigma_min' the last level is the one diffusers appends, "
                f"alphas_cumprod[0]{'' if g is None else f'={float(g[0])!r}'}; end the schedule with it (at least 2 levels)"
            )
        ab = ab[:-1]
    _standin_below_next(ab, "DPMSolverMultistepScheduler")
    return {"timesteps": _grid_timesteps(ab, grid, rtol, standin=True, cfg=cfg)}  # it runs 2**-24 at a zero-SNR timestep


def _standin_below_next(ab: Array, name: str) -> None:
    """ValueError when a first level alpha_bar = 0, which ``name`` runs at diffusers' stand-in ``2**-24``, is
    followed by a level at least as noisy: the run's noise would rise at its first step (sigma 4096 -> more)."""
    if ab.size >= 2 and ab[0] == 0.0 and ab[1] <= _ZERO_SNR_STANDIN:
        raise ValueError(
            f"alpha_bar: {name} runs the first level alpha_bar = 0 at diffusers' zero-terminal-SNR stand-in "
            f"alphas_cumprod[-1] = 2**-24 = {_ZERO_SNR_STANDIN:.6g} (sigma {_standin_sigma():.6g}), "
            f"and alpha_bar[1] = {float(ab[1]):.6g} is at least as noisy: its noise would rise at the first step. "
            f"Use a second level less noisy than that (alpha_bar[1] > {_ZERO_SNR_STANDIN:.6g}), or run DDPMScheduler "
            "(--sampler ddpm), which takes alpha_bar = 0 exactly")


def _to_flow_match(ab: Array, scheduler: Any, grid: Any, rtol: float | None) -> dict[str, Any]:
    """``set_timesteps(sigmas=t)`` of FlowMatchEulerDiscreteScheduler, undoing the scheduler's own shift.

    diffusers applies its shift to the ``sigmas`` it is given (``shift * t / (1 + (shift - 1) t)``, or with
    ``use_dynamic_shifting`` the ``time_shift`` with ``mu``): a static shift is inverted here
    (``t = t' / (t' + shift (1 - t'))``, no term cancels); with dynamic shifting the identity ``mu`` is returned
    too: ``mu = 0`` for ``time_shift_type="exponential"`` (``e^mu / (e^mu + 1/t - 1)``), ``mu = 1`` for ``"linear"``
    (``mu / (mu + (1/t - 1))``, diffusers ``_time_shift_linear`` with its exponent 1).
    """
    from .schedules import _time_shift, alpha_bar_to_flow_t

    t = alpha_bar_to_flow_t(ab)
    cfg = {} if isinstance(scheduler, str) else getattr(scheduler, "config", {})
    out: dict[str, Any] = {}
    if bool(cfg.get("use_dynamic_shifting", False)):
        kind = cfg.get("time_shift_type", "exponential")
        if kind not in ("exponential", "linear"):
            raise ValueError(f"scheduler: FlowMatchEulerDiscreteScheduler with time_shift_type={kind!r} is not "
                             "modelled; configure 'exponential' or 'linear'")
        # the identity of each shift: exp(0) / (exp(0) + 1/t - 1) = t; linear 1 / (1 + (1/t - 1)) = t
        out["mu"] = 0.0 if kind == "exponential" else 1.0
    else:  # the live shift set_timesteps applies (diffusers set_shift() changes it, not the config)
        s = 1.0 if isinstance(scheduler, str) else float(_live_shift(scheduler, cfg))
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"scheduler: FlowMatchEulerDiscreteScheduler with shift={s!r}: the shift must be a "
                             "finite number > 0 (shift * t / (1 + (shift - 1) t) maps the flow times into (0, 1] "
                             "only then)")
        if s != 1.0:
            t = _time_shift(t, s, inverse=True)  # t' / (t' + s (1 - t')): no cancellation at t' = 1
    for key in ("shift_terminal", *_SIGMA_FAMILIES, "invert_sigmas"):
        if cfg.get(key):
            raise ValueError(f"scheduler: FlowMatchEulerDiscreteScheduler with {key}={cfg.get(key)!r} rewrites the "
                             "sigmas it is given; configure it off to run a custom schedule")
    if cfg.get("stochastic_sampling"):  # as from_diffusers refuses it
        raise ValueError("scheduler: FlowMatchEulerDiscreteScheduler with stochastic_sampling=True re-noises every "
                         "step: not the deterministic flow ODE step symsched optimised for; configure it off")
    _distinct(np.asarray(t, dtype=np.float64), ab, "flow time", "FlowMatchEulerDiscreteScheduler")
    _float32_distinct(np.asarray(t, dtype=np.float64), ab, "flow time", "FlowMatchEulerDiscreteScheduler")
    runs = _flow_match_runs(np.asarray(t, dtype=np.float64), cfg, 1.0 if "mu" in out else s, out.get("mu"))
    _distinct(runs.astype(np.float64), ab, "flow time (after the scheduler's float32 shift)",
              "FlowMatchEulerDiscreteScheduler", float32=True)
    out["sigmas"] = [float(v) for v in t]
    return out


def _live_shift(scheduler: Any, cfg: Any) -> Any:
    """The shift FlowMatchEulerDiscreteScheduler.set_timesteps applies: its ``shift`` property (``self._shift``,
    which ``set_shift()`` changes), else the config's (FlowMatchHeun has no such property: its attribute access
    falls through to the config, with a FutureWarning)."""
    if isinstance(getattr(type(scheduler), "shift", None), property):
        return scheduler.shift
    return cfg.get("shift", 1.0)


def _flow_match_runs(t: Array, cfg: Any, shift: float, mu: Optional[float]) -> Array:
    """The flow times FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas=t, mu=mu) runs, in float32 as it computes
    them: the cast ``np.array(sigmas).astype(np.float32)``, then its shift on the float32 array (``time_shift`` with
    ``mu``, or ``shift * t / (1 + (shift - 1) t)``; diffusers scheduling_flow_match_euler_discrete.py steps 1-2).
    Near t = 1 the shift can round two distinct float32 times to one, or a level to pure noise."""
    t32 = t.astype(np.float32)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if mu is None:
            return np.asarray(shift * t32 / (1 + (shift - 1) * t32), dtype=np.float32)
        if cfg.get("time_shift_type", "exponential") == "linear":
            return np.asarray(mu / (mu + (1 / t32 - 1) ** 1.0), dtype=np.float32)
        return np.asarray(math.exp(mu) / (math.exp(mu) + (1 / t32 - 1) ** 1.0), dtype=np.float32)


#: diffusers scheduler class -> exporter (alpha_bar, scheduler, grid, rtol) -> set_timesteps keywords.
_EXPORTERS: dict[str, Callable[..., dict[str, list[Any]]]] = {
    "DDIMScheduler": _no_custom("DDIMScheduler", "use DDPMScheduler(...).set_timesteps(timesteps=...) for eta = 1 "
                                "or EulerDiscreteScheduler(...).set_timesteps(sigmas=...) for eta = 0"),
    "DDPMScheduler": lambda ab, sch, grid, rtol: {"timesteps": _grid_timesteps(ab, grid, rtol, cfg=_config(sch))},
    "EulerDiscreteScheduler": lambda ab, sch, grid, rtol: {"sigmas": _euler_sigmas(ab, grid)},
    "HeunDiscreteScheduler": _to_heun,
    "DPMSolverMultistepScheduler": _to_dpmsolver,
    "UniPCMultistepScheduler": _no_custom("UniPCMultistepScheduler",
                                          "for a VP model; it takes custom sigmas only with use_flow_sigmas=True, a "
                                          "flow-matching UniPC that symsched does not model"),
    "DEISMultistepScheduler": _no_custom("DEISMultistepScheduler", "only num_inference_steps"),
    "EulerAncestralDiscreteScheduler": _no_custom("EulerAncestralDiscreteScheduler", "only num_inference_steps"),
    "FlowMatchEulerDiscreteScheduler": _to_flow_match,
    "FlowMatchHeunDiscreteScheduler": _no_custom("FlowMatchHeunDiscreteScheduler", "only num_inference_steps"),
}
#: the exporters that return ``sigmas`` (no timestep matched on a grid, so no ``rtol``; the flow one no ``grid`` either)
_SIGMA_EXPORTS = ("EulerDiscreteScheduler", "FlowMatchEulerDiscreteScheduler")
#: symsched's flow-matching sampler names, taken for the diffusers class that runs them
_ALIASES = {"flow_match_euler": "FlowMatchEulerDiscreteScheduler", "flow_match_heun": "FlowMatchHeunDiscreteScheduler"}


@numpy_error_defaults
def to_k_diffusion_sigmas(alpha_bar: ArrayLike) -> Array:
    """k-diffusion sigmas: sigma_i = sqrt((1 - ab_i) / ab_i), noisiest first, with a trailing 0.

    Shape (K + 1,). k-diffusion samplers (``sample_euler``, ``sample_heun``, ...) take this array;
    its VE samplers are symsched's ``output_spectrum_ve(S, sigmas[:-1], sampler=...)``.
    Raises ValueError if ``alpha_bar`` is not a schedule (1-D, finite, strictly increasing in [0, 1)) or its
    first level is 0 (sigma = inf, which k-diffusion's steps cannot take). Source: docs/model.md §2 (the VE
    map); k-diffusion ``k_diffusion/sampling.py`` (samplers take ``sigmas`` ending in 0).
    """
    ab = as_levels(alpha_bar)
    return np.array(_finite_sigmas(ab, "a k-diffusion sampler"))


@numpy_error_defaults
def from_k_diffusion_sigmas(sigmas: ArrayLike) -> Array:
    """alpha_bar = 1 / (1 + sigma^2) of a k-diffusion sigma array (a trailing 0 is dropped). Shape (K,).

    ``sigmas``: shape (K,) or (K + 1,) with the trailing 0. Raises ValueError unless the sigmas are 1-D,
    positive and strictly decreasing (only the first may be inf: alpha_bar 0), or if a sigma is so small
    (below ~1e-8) that its alpha_bar rounds to 1, or so large (above ~6.4e161) that it rounds to 0 (only inf is pure
    noise). Source: docs/model.md §2 (the VE map), §10 (sigma = inf).
    """
    s = as_sigmas(sigmas, "sigmas")  # drops one trailing 0 (k-diffusion's end), refuses any other 0
    from .schedules import sigmas_to_alpha_bar  # the stable conversion (1/(1 + s^2) overflowed s^2 above 1e154)

    return as_levels(sigmas_to_alpha_bar(s), "alpha_bar (from sigmas)")


#: The largest VE sigma ComfyUI can start from: it scales the start noise by sqrt(1 + sigma^2) in float32.
_COMFYUI_MAX_SIGMA = float(np.sqrt(np.finfo(np.float32).max))

#: How ComfyUI's ``ManualSigmas`` node reads its text (``comfy_extras/nodes_custom_sampler.py``, ComfyUI 0.3.7x):
#: every match of this pattern, as float, into a float32 tensor. Positional notation only: an exponent
#: ("1.5e-05") would read as the two numbers 1.5 and -05.
COMFYUI_NUMBER = r"[-+]?(?:\d*\.*\d+)"


@numpy_error_defaults
def to_comfyui_sigmas(alpha_bar: ArrayLike, *, flow: bool = False) -> str:
    """The text of ComfyUI's ``ManualSigmas`` node: the schedule's sigmas, noisiest first, with the trailing 0.

    VE sigmas ``sigma_i = sqrt((1 - ab_i) / ab_i)`` (k-diffusion's, what ComfyUI's samplers take for SD-type models),
    or with ``flow`` the flow times ``t_i`` (ComfyUI's sigmas of flow-matching models, SD3 and Flux: ``x = (1 - t) x0 +
    t eps``, ``t = 1`` at ``alpha_bar = 0``). Each number in positional notation, as the float32 value the node makes
    of it (shortest digits that give it back), joined by ", ". Returns a str. Raises ValueError if ``alpha_bar`` is
    not a schedule, for a first level 0 without ``flow`` (sigma = inf) or a first sigma beyond 1.8e19 (ComfyUI's
    float32 ``sqrt(1 + sigma^2)`` overflows), or where the float32 values the node makes merge (a zero
    step). Source: ComfyUI ``comfy_extras/nodes_custom_sampler.py``
    (``ManualSigmas``: :data:`COMFYUI_NUMBER`, ``torch.FloatTensor``); docs/model.md §2, §10.
    """
    import re

    from .schedules import alpha_bar_to_flow_t

    ab = as_levels(alpha_bar)
    if as_bool(flow, "flow"):
        values = np.asarray(alpha_bar_to_flow_t(ab), dtype=np.float64)
        what = "flow time t"
    elif ab[0] == 0.0:
        raise ValueError("alpha_bar: the first level is 0 (zero terminal SNR, sigma = inf), which ComfyUI's samplers "
                         "cannot take as a VE sigma; a flow-matching model takes it as t = 1 (flow=True), and for a VP "
                         "model give a first level above 0 (diffusers' zero-SNR Euler runs alpha_bar = 2**-24)")
    else:
        values = np.array(_finite_sigmas(ab, "ComfyUI's samplers")[:-1])
        what = "VE sigma"
    if not flow and values[0] > _COMFYUI_MAX_SIGMA:
        raise ValueError(f"alpha_bar: level 0 ({float(ab[0])!r}) has VE sigma {float(values[0]):.6g}, beyond "
                         f"{_COMFYUI_MAX_SIGMA:.4g}, where ComfyUI's float32 start sqrt(1 + sigma^2) overflows (NaN "
                         "samples); use a first level alpha_bar above 3e-39")
    v32 = values.astype(np.float32)
    _distinct(v32, ab, what, "ComfyUI", float32=True, cast="ManualSigmas converts its text")
    text = ", ".join([np.format_float_positional(v, unique=True, trim="-") for v in v32] + ["0"])
    read = np.array([float(m) for m in re.findall(COMFYUI_NUMBER, text)], dtype=np.float32)
    if read.shape != (v32.size + 1,) or not np.array_equal(read[:-1], v32):  # pragma: no cover - a formatting fault
        raise AssertionError(f"to_comfyui_sigmas: {text!r} does not read back as the float32 values")
    return text


#: diffusers ``beta_schedule`` names of symsched's beta families (``"sigmoid"`` only DDPMScheduler knows).
_DIFFUSERS_BETA_NAMES = {"linear": "linear", "scaled_linear": "scaled_linear", "cosine": "squaredcos_cap_v2"}
#: Schedulers whose constructor takes ``rescale_betas_zero_snr`` (diffusers 0.42).
_RESCALE_ZERO_SNR = ("DDPMScheduler", "DDIMScheduler", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler")


def _diffusers_grid_config(grid: Any, scheduler: str) -> dict[str, Any]:
    """The constructor keywords that make a diffusers ``scheduler`` compute ``grid`` as its ``alphas_cumprod``.

    ``num_train_timesteps`` and either a named ``beta_schedule`` (with ``beta_start``/``beta_end``) when ``grid`` is
    one of symsched's named training grids (:func:`symsched.schedules.training_grid` with its default arguments), or
    ``trained_betas`` (``1 - grid[t] / grid[t-1]``) for any other grid. A zero-terminal-SNR grid (last entry 0) adds
    ``rescale_betas_zero_snr=True`` where the scheduler takes it (diffusers then uses its ``2**-24`` stand-in).
    Every key is set explicitly: the diffusers defaults differ between schedulers (diffusers 0.42: linear
    1e-4..0.02 for most, DDPM, DDIM, Euler and DPM-Solver included; Heun linear 0.00085..0.012).
    """
    from .schedules import BETA_RANGES, alpha_bar_to_betas, training_grid

    g = _as_export_grid(grid)
    T = int(g.size)
    zero = bool(g[-1] == 0.0)
    rescale = scheduler in _RESCALE_ZERO_SNR
    named = next((name for name in _DIFFUSERS_BETA_NAMES
                  if np.allclose(training_grid(name, num_train_timesteps=T, rescale_zero_snr=zero), g, rtol=1e-12, atol=0.0)),
                 None)
    cfg: dict[str, Any] = {"num_train_timesteps": T, "beta_schedule": _DIFFUSERS_BETA_NAMES.get(named, "linear"),
                           "trained_betas": None}
    if named in BETA_RANGES:
        cfg["beta_start"], cfg["beta_end"] = BETA_RANGES[named]
    if named is None or (zero and not rescale):  # no name, or a zero-SNR grid for a scheduler that cannot rescale:
        cfg["trained_betas"] = alpha_bar_to_betas(g).tolist()  # these take precedence over beta_schedule
    if rescale:
        cfg["rescale_betas_zero_snr"] = zero
    return cfg
