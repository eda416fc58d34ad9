"""Diffusers-free stand-ins for diffusers' DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler and
HeunDiscreteScheduler.

Each exposes what :func:`symsched.export.from_diffusers` reads -- the class name, ``config`` (a dict
with attribute access, like diffusers' ``FrozenDict``), ``alphas_cumprod``, ``timesteps``,
``num_inference_steps``, ``final_alpha_cumprod`` (DDIM), ``init_noise_sigma`` and ``sigmas``
(Euler) -- computed the way diffusers 0.42 computes them in ``__init__``, ``set_timesteps`` and
``init_noise_sigma`` (``schedulers/scheduling_ddim.py``, ``scheduling_ddpm.py``,
``scheduling_euler_discrete.py``, ``scheduling_heun_discrete.py``), in float32 like diffusers' tensors, as NumPy arrays. They have no
``step``: the tests type in what diffusers' ``step`` does where they need it.
``tests/test_diffusers_witness.py`` checks every attribute against the real classes when diffusers
is installed.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32


class Config(dict):
    """diffusers' FrozenDict: a dict whose keys are also attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _cosine_betas(T: int, max_beta: float = 0.999) -> np.ndarray:
    """diffusers' betas_for_alpha_bar(T) with the 'cosine' transform (squaredcos_cap_v2)."""

    def f(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return np.array([min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)], dtype=F32)


def _betas(cfg: Config) -> np.ndarray:
    T = cfg.num_train_timesteps
    if cfg.trained_betas is not None:
        return np.asarray(cfg.trained_betas, dtype=F32)
    if cfg.beta_schedule == "linear":
        return np.linspace(cfg.beta_start, cfg.beta_end, T, dtype=F32)
    if cfg.beta_schedule == "scaled_linear":
        return np.linspace(cfg.beta_start**0.5, cfg.beta_end**0.5, T, dtype=F32) ** 2
    if cfg.beta_schedule == "squaredcos_cap_v2":
        return _cosine_betas(T)
    raise NotImplementedError(cfg.beta_schedule)


def _spaced_timesteps(cfg: Config, K: int, dtype=np.int64) -> np.ndarray:
    """set_timesteps(K) of the three schedulers: 'linspace', 'leading' (+ steps_offset), 'trailing'."""
    T = cfg.num_train_timesteps
    if K > T:
        raise ValueError(f"num_inference_steps {K} cannot be larger than {T}")
    if cfg.timestep_spacing == "linspace":
        return np.linspace(0, T - 1, K).round()[::-1].copy().astype(dtype)
    if cfg.timestep_spacing == "leading":
        return (np.arange(0, K) * (T // K)).round()[::-1].copy().astype(dtype) + cfg.steps_offset
    if cfg.timestep_spacing == "trailing":
        return np.round(np.arange(T, 0, -T / K)).astype(dtype) - 1
    raise ValueError(cfg.timestep_spacing)


def _init_noise_sigma(sch):
    """init_noise_sigma of the sigma schedulers (Euler, Heun): sigma_max for "linspace" / "trailing" spacing, else
    sqrt(sigma_max^2 + 1)."""
    max_sigma = sch.sigmas.max()
    if sch.config.timestep_spacing in ("linspace", "trailing"):
        return max_sigma
    return (max_sigma**2 + 1) ** 0.5


class _Base:
    _defaults: dict = {}

    def __init__(self, **kw):
        unknown = set(kw) - set(self._defaults)
        if unknown:
            raise TypeError(f"unexpected arguments {sorted(unknown)}")
        self.config = Config({**self._defaults, **kw})
        self.betas = _betas(self.config)
        # torch.cumprod accumulates a float32 tensor in double precision
        self.alphas_cumprod = np.cumprod((F32(1.0) - self.betas).astype(np.float64)).astype(F32)
        self.num_inference_steps = None
        self.timesteps = np.arange(0, self.config.num_train_timesteps)[::-1].copy()


_COMMON = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
               trained_betas=None, prediction_type="epsilon", timestep_spacing="leading", steps_offset=0)
_CLIPPING = dict(clip_sample=True, thresholding=False)  # DDIM and DDPM only


class DDIMScheduler(_Base):
    _defaults = dict(_COMMON, **_CLIPPING, set_alpha_to_one=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.init_noise_sigma = 1.0
        self.final_alpha_cumprod = F32(1.0) if self.config.set_alpha_to_one else self.alphas_cumprod[0]

    def set_timesteps(self, num_inference_steps: int) -> None:
        self.num_inference_steps = num_inference_steps
        self.timesteps = _spaced_timesteps(self.config, num_inference_steps)


class DDPMScheduler(_Base):
    _defaults = dict(_COMMON, **_CLIPPING, variance_type="fixed_small")

    def __init__(self, **kw):
        super().__init__(**kw)
        self.init_noise_sigma = 1.0
        self.custom_timesteps = False

    def set_timesteps(self, num_inference_steps: int | None = None, timesteps=None) -> None:
        if timesteps is not None:
            self.custom_timesteps = True
            self.timesteps = np.array(timesteps, dtype=np.int64)
        else:
            self.num_inference_steps = num_inference_steps
            self.timesteps = _spaced_timesteps(self.config, num_inference_steps)


class EulerDiscreteScheduler(_Base):
    _defaults = dict(_COMMON, timestep_spacing="linspace", final_sigmas_type="zero", interpolation_type="linear")

    def __init__(self, **kw):
        super().__init__(**kw)
        sig = (((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5)[::-1]
        self.sigmas = np.concatenate([sig, np.zeros(1, dtype=F32)]).astype(F32)
        self.timesteps = np.linspace(0, self.config.num_train_timesteps - 1, self.config.num_train_timesteps,
                                     dtype=float)[::-1].astype(F32)

    init_noise_sigma = property(lambda self: _init_noise_sigma(self))

    def _sigma_to_t(self, sigma, log_sigmas):
        log_sigma = np.log(np.maximum(sigma, 1e-10))
        dists = log_sigma - log_sigmas[:, np.newaxis]
        low = np.cumsum(dists >= 0, axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
        lo, hi = log_sigmas[low], log_sigmas[low + 1]
        w = np.clip((lo - log_sigma) / (lo - hi), 0, 1)
        return ((1 - w) * low + w * (low + 1)).reshape(np.shape(sigma))

    def set_timesteps(self, num_inference_steps: int | None = None, sigmas=None) -> None:
        ac = self.alphas_cumprod
        base = np.array(((1 - ac) / ac) ** 0.5)
        if sigmas is not None:
            self.num_inference_steps = len(sigmas) - 1
            sig = np.array(sigmas).astype(F32)
            timesteps = np.array([self._sigma_to_t(s, np.log(base)) for s in sig[:-1]])
        else:
            self.num_inference_steps = num_inference_steps
            timesteps = _spaced_timesteps(self.config, num_inference_steps, dtype=F32)
            if self.config.timestep_spacing == "linspace":  # float32 linspace, not rounded
                T = self.config.num_train_timesteps
                timesteps = np.linspace(0, T - 1, num_inference_steps, dtype=F32)[::-1].copy()
            if self.config.interpolation_type == "log_linear":  # K + 1 sigmas for K timesteps (torch.linspace, float32)
                sig = np.exp(np.linspace(np.log(base[-1]), np.log(base[0]), num_inference_steps + 1, dtype=F32))
            else:
                sig = np.interp(timesteps, np.arange(0, len(base)), base)
            last = base[0] if self.config.final_sigmas_type == "sigma_min" else 0.0
            sig = np.concatenate([sig, [last]]).astype(F32)
        self.timesteps = np.asarray(timesteps).astype(F32)
        self.sigmas = sig


class HeunDiscreteScheduler(_Base):
    """``scheduling_heun_discrete.py``: Euler's sigmas at the spaced timesteps (linspace not rounded), then every
    interior sigma and timestep repeated (a predictor and a corrector call per level): ``[s0, s1, s1, ..., 0]``."""

    _defaults = dict(_COMMON, beta_start=0.00085, beta_end=0.012, timestep_spacing="linspace", clip_sample=False)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.set_timesteps(self.config.num_train_timesteps)  # as diffusers' __init__ does

    init_noise_sigma = property(lambda self: _init_noise_sigma(self))

    def set_timesteps(self, num_inference_steps: int) -> None:
        T = self.config.num_train_timesteps
        self.num_inference_steps = num_inference_steps
        if self.config.timestep_spacing == "linspace":
            ts = np.linspace(0, T - 1, num_inference_steps, dtype=F32)[::-1].copy()
        else:
            ts = _spaced_timesteps(self.config, num_inference_steps, dtype=F32)
        ac = self.alphas_cumprod
        base = np.array(((1 - ac) / ac) ** 0.5)
        sig = np.concatenate([np.interp(ts, np.arange(0, len(base)), base), [0.0]]).astype(F32)
        self.sigmas = np.concatenate([sig[:1], np.repeat(sig[1:-1], 2), sig[-1:]])
        self.timesteps = np.concatenate([ts[:1], np.repeat(ts[1:], 2)]).astype(F32)
