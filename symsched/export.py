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
* DDIM's last step goes to ``final_alpha_cumprod``: 1 with ``set_alpha_to_one=True``, else
  ``alphas_cumprod[0] < 1``, i.e. the output is still slightly noisy. The schedule then ends with
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_bool, as_levels, as_real, as_real_array, as_sigmas, as_spectrum

__all__ = [
    "DiffusersSchedule",
    "from_diffusers",
    "to_diffusers",
    "to_k_diffusion_sigmas",
    "from_k_diffusion_sigmas",
]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class DiffusersSchedule:
    """A diffusers scheduler's run, in symsched terms.

    Attributes
    ----------
    scheduler : str
        Class name (``"DDIMScheduler"``, ``"DDPMScheduler"``, ``"EulerDiscreteScheduler"``).
    sampler : {"ddim", "ddpm", "euler"}
    alpha_bar : ndarray, shape (K,)
        Levels visited (model levels, noisiest first; plus the final level if it is < 1).
    sigmas : ndarray, shape (K,)
        The same levels in VE coordinates ``sqrt((1 - alpha_bar) / alpha_bar)``.
    eta : float
        DDIM eta (0 for the others).
    variance : {"posterior", "beta"}
        DDPM injected variance.
    timesteps : ndarray
        ``scheduler.timesteps`` (diffusers order).
    steps : tuple of (float, float)
        What every ``step`` call does: (level the model is evaluated at, level it steps to).
    consistent : bool
        True when each step starts at the level the previous one reached (a symsched schedule).
    final_alpha_bar : float
        Level of diffusers' output (1 unless ``set_alpha_to_one=False`` / ``final_sigmas_type="sigma_min"``).
    final_noise_variance : float
        White-noise variance diffusers adds on its last step (DDPM ``fixed_large`` with ``t_last > 0``).
    init_variance : float
        Variance of the initial noise the pipeline uses (``init_noise_sigma ** 2``).
    notes : tuple of str
        Human-readable deviations from the plain symsched description.
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

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`symsched.output_spectrum` (VP) or ``output_spectrum_ve`` (Euler)."""
        if self.sampler == "euler":
            return dict(sampler="euler")
        if self.sampler == "ddim":
            return dict(sampler="ddim", eta=self.eta)
        return dict(sampler="ddpm", variance=self.variance)

    def output_spectrum(self, spectrum: ArrayLike) -> Array:
        """PSD of what the diffusers loop returns (started from its own white noise), per mode.

        ``P = output_spectrum(S, alpha_bar, **kwargs) + final_noise_variance`` (VP), or the VE
        Euler closed form scaled by ``init_variance / sigma_max^2`` (Euler is deterministic, so
        ``P`` is proportional to the initial variance). When ``final_alpha_bar < 1`` this is the PSD
        of :meth:`denoise_final` applied to the output. Shape of ``spectrum``.
        """
        from . import output_spectrum, output_spectrum_ve

        if not self.consistent:
            raise ValueError(
                "scheduler is not consistent (its steps do not chain: "
                + "; ".join(self.notes)
                + "): no symsched schedule describes it"
            )
        S = as_spectrum(spectrum)
        if self.sampler == "euler":
            P = output_spectrum_ve(S, self.sigmas, sampler="euler", init="white")
            return P * (self.init_variance / float(self.sigmas[0]) ** 2)
        P = output_spectrum(S, self.alpha_bar, init="white", **self.kwargs)
        return P + self.final_noise_variance

    def denoise_final(self, x: ArrayLike, spectrum: ArrayLike) -> Array:
        """Apply symsched's implicit final step (exact ``x0_hat``) when diffusers stops at ``final_alpha_bar < 1``.

        ``x`` are diffusers outputs (VP scaling for DDIM/DDPM, VE scaling ``x0 + sigma n`` for Euler),
        shape ``(..., *spectrum.shape)``; returned unchanged (as float64) when ``final_alpha_bar == 1``.
        """
        from .montecarlo import wiener_denoiser

        xa = as_real_array(x, "x")
        if self.final_alpha_bar >= 1.0:
            return xa
        ab = self.final_alpha_bar
        if self.sampler == "euler":  # VE sample -> VP sample
            xa = xa * math.sqrt(ab)
        return wiener_denoiser(xa, spectrum, ab, output="x0")


def _torch_to_numpy(t: Any) -> np.ndarray:
    try:
        import torch

        if isinstance(t, torch.Tensor):
            return t.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(t, dtype=np.float64)


def _vp_sigma(ab: np.ndarray) -> Array:
    return np.sqrt((1.0 - ab) / ab)


def from_diffusers(scheduler: Any, *, eta: float = 0.0, strict: bool = True) -> DiffusersSchedule:
    """Read the noise levels and sampler settings of a configured diffusers scheduler.

    alpha_bar[i] = scheduler.alphas_cumprod[t_i] for the timesteps t_i visited, noisiest first.

    Parameters
    ----------
    scheduler : diffusers.DDIMScheduler, DDPMScheduler or EulerDiscreteScheduler
        After ``set_timesteps`` (a DDPMScheduler without it runs all training steps).
    eta : float in [0, 1]
        The ``eta`` passed to ``DDIMScheduler.step`` (diffusers keeps it out of the config).
    strict : bool
        Raise ``ValueError`` for non-linear settings (``clip_sample``, ``thresholding``) and for
        DDIM timesteps that do not chain; with ``strict=False`` they are reported in ``notes``
        (and ``consistent=False``) instead.

    Returns
    -------
    DiffusersSchedule
    """
    from ._validate import check_eta

    name = type(scheduler).__name__
    cfg = getattr(scheduler, "config", None)
    if cfg is None or name not in ("DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler"):
        raise ValueError(
            f"scheduler must be a diffusers DDIMScheduler, DDPMScheduler or EulerDiscreteScheduler (got {name})"
        )
    eta = check_eta(eta)
    strict = as_bool(strict, "strict")
    notes: list[str] = []
    nonlinear = [k for k in ("clip_sample", "thresholding") if bool(cfg.get(k, False))]
    if nonlinear:
        msg = f"{', '.join(k + '=True' for k in nonlinear)} makes the step non-linear (the closed forms assume no clipping)"
        if strict:
            raise ValueError(f"scheduler: {msg}; configure it with clip_sample=False / thresholding=False")
        notes.append(msg)
    if name == "EulerDiscreteScheduler":
        return _from_euler(scheduler, notes)

    ac = _torch_to_numpy(scheduler.alphas_cumprod)
    T = int(cfg.num_train_timesteps)
    ts = np.asarray(_torch_to_numpy(scheduler.timesteps)).astype(np.int64)
    if np.any(ac[ts] <= 0.0):
        raise ValueError(
            "scheduler: a visited level has alphas_cumprod = 0 (zero terminal SNR, rescale_betas_zero_snr=True); "
            "symsched levels must lie in (0, 1)"
        )
    steps: list[tuple[float, float]] = []
    consistent = True
    final_noise = 0.0
    if name == "DDIMScheduler":
        if scheduler.num_inference_steps is None:
            raise ValueError("scheduler: call set_timesteps(num_inference_steps) before from_diffusers")
        K = int(scheduler.num_inference_steps)
        final = float(_torch_to_numpy(scheduler.final_alpha_cumprod))
        for i, t in enumerate(ts):
            prev = int(t) - T // K
            a_s = float(ac[prev]) if prev >= 0 else final
            steps.append((float(ac[t]), a_s))
            chained = prev == int(ts[i + 1]) if i + 1 < len(ts) else prev < 0
            if not chained:
                consistent = False
                where = f"timestep {int(ts[i + 1])}" if i + 1 < len(ts) else "the final level"
                notes.append(
                    f"DDIM step from t={int(t)} goes to t-T//K={prev} but the next model call is at {where} "
                    f"(timestep_spacing={cfg.timestep_spacing!r}, T={T}, K={K})"
                )
        if not consistent and strict:
            raise ValueError("scheduler: " + "; ".join(notes) + " -- not a DDIM schedule; use "
                             "timestep_spacing='leading', or 'trailing' with num_inference_steps dividing "
                             "num_train_timesteps (or strict=False to inspect)")
        sampler, variance, final_ab = "ddim", "posterior", final
        if final < 1.0:
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
    levels = np.array([a for a, _ in steps], dtype=np.float64)
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


def _from_euler(scheduler: Any, notes: list[str]) -> DiffusersSchedule:
    sig = _torch_to_numpy(scheduler.sigmas)
    if sig.ndim != 1 or sig.size < 2:
        raise ValueError("scheduler: call set_timesteps before from_diffusers")
    model_sig = sig[:-1]
    final_sig = float(sig[-1])
    steps = tuple((1.0 / (1.0 + float(a) ** 2), 1.0 / (1.0 + float(b) ** 2)) for a, b in zip(sig[:-1], sig[1:]))
    # a last step sigma_min -> sigma_min ('leading' spacing with final_sigmas_type='sigma_min') is the identity
    all_sig = np.append(model_sig, final_sig) if 0.0 < final_sig < float(model_sig[-1]) else model_sig
    all_sig = as_sigmas(all_sig, "sigmas (from the scheduler)")
    final_ab = 1.0 / (1.0 + final_sig**2)
    if final_sig > 0.0:
        notes.append(f"final_sigmas_type='sigma_min': the output is at sigma={final_sig:.6g} > 0 (slightly noisy)")
    init_sigma = float(_torch_to_numpy(scheduler.init_noise_sigma))
    return DiffusersSchedule(
        scheduler="EulerDiscreteScheduler", sampler="euler", alpha_bar=1.0 / (1.0 + all_sig**2), sigmas=all_sig,
        eta=0.0, variance="posterior", timesteps=_torch_to_numpy(scheduler.timesteps), steps=steps,
        consistent=True, final_alpha_bar=final_ab, final_noise_variance=0.0, init_variance=init_sigma**2,
        notes=tuple(notes),
    )


def to_diffusers(
    alpha_bar: ArrayLike,
    *,
    grid: ArrayLike | None = None,
    rtol: float = 1e-6,
) -> dict[str, list[Any]]:
    """What to pass to a diffusers ``set_timesteps`` to run a symsched schedule.

    Without ``grid``: ``{"sigmas": [sigma_K, ..., sigma_1, 0.0]}``, sigma = sqrt((1-ab)/ab), for
    ``EulerDiscreteScheduler.set_timesteps(**d)`` (Euler = deterministic DDIM; with its default
    ``timestep_spacing="linspace"`` it starts from ``sigma_max``, i.e. ``init="white"`` of
    :func:`symsched.output_spectrum_ve`).

    With ``grid`` (a model's ``alphas_cumprod``, index = training timestep): ``{"timesteps":
    [t_K, ..., t_1]}`` (descending ints) with ``grid[t_i] == alpha_bar[i]`` within ``rtol``, for
    ``DDPMScheduler.set_timesteps(**d)`` (also EulerDiscrete, DPMSolverMultistep, ...).
    ``DDIMScheduler`` accepts no custom timesteps. Levels not on the grid raise ``ValueError``
    (snap them first, e.g. with ``symsched.schedules``).

    Parameters
    ----------
    alpha_bar : array_like, shape (K,)
        Strictly increasing levels in (0, 1), noisiest first.
    grid : array_like or torch.Tensor, shape (T,), optional
    rtol : float
        Relative tolerance of the grid match (diffusers stores the grid in float32).

    Returns
    -------
    dict with one key, ``"sigmas"`` or ``"timesteps"``
    """
    ab = as_levels(alpha_bar)
    if grid is None:
        return {"sigmas": [float(s) for s in _vp_sigma(ab)] + [0.0]}
    g = as_real_array(_torch_to_numpy(grid) if hasattr(grid, "detach") else grid, "grid")
    rtol = as_real(rtol, "rtol")
    if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)):
        raise ValueError(f"grid must be a finite 1-D array of alphas_cumprod (got shape {g.shape})")
    out = []
    for i, a in enumerate(ab):
        t = int(np.argmin(np.abs(g - a)))
        if abs(g[t] - a) > rtol * a:
            raise ValueError(
                f"alpha_bar[{i}]={a!r} is not on the grid within rtol={rtol:g} (nearest: grid[{t}]={g[t]!r}); "
                "snap the schedule to the grid first"
            )
        out.append(t)
    if len(set(out)) != len(out):
        raise ValueError("alpha_bar maps two levels to the same grid timestep")
    return {"timesteps": out}


def to_k_diffusion_sigmas(alpha_bar: ArrayLike) -> Array:
    """k-diffusion sigmas: sigma_i = sqrt((1 - ab_i) / ab_i), noisiest first, with a trailing 0.

    Shape (K + 1,). k-diffusion samplers (``sample_euler``, ``sample_heun``, ...) take this array;
    its VE samplers are symsched's ``output_spectrum_ve(S, sigmas[:-1], sampler=...)``.
    """
    ab = as_levels(alpha_bar)
    return np.append(_vp_sigma(ab), 0.0)


def from_k_diffusion_sigmas(sigmas: ArrayLike) -> Array:
    """alpha_bar = 1 / (1 + sigma^2) of a k-diffusion sigma array (a trailing 0 is dropped). Shape (K,)."""
    s = as_real_array(sigmas, "sigmas")
    if s.ndim == 1 and s.size > 1 and s[-1] == 0.0:
        s = s[:-1]
    s = as_sigmas(s, "sigmas")
    return as_levels(1.0 / (1.0 + s**2), "alpha_bar (from sigmas)")
