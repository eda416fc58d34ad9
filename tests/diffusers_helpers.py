"""Drive diffusers' own schedulers with the exact (Wiener) denoiser, one mode per tensor column.

A mode of variance ``S`` is one coordinate of the sample tensor (shape ``(batch, modes)``): the
exact denoiser acts on each coordinate on its own, so this is the per-mode recursion itself, run by
the library's ``set_timesteps`` / ``scale_model_input`` / ``step``. The model output is computed here
from the definitions (docs/model.md §3), independently of symsched: at the level ``sigma_i =
scheduler.sigmas[i]`` the scheduler uses for its update, ``alpha_bar = 1 / (1 + sigma_i^2)``,
``x0_hat = sqrt(ab) S / (ab S + 1 - ab) x`` and ``eps_hat = sqrt(1 - ab) / (ab S + 1 - ab) x`` on the
VP-scaled model input, returned as the scheduler's ``prediction_type`` asks.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

#: Probe tolerances |H_diffusers - H| <= rtol |H| + atol (x_T = 1 sets the unit scale), from where
#: diffusers rounds:
#: - float32 (its default): every level coefficient is float32 (``scheduler.sigmas`` is a float32
#:   tensor) and the phi-function weights such as (e^{-h} - 1 + h)/h^2 lose digits at small h
#:   (measured here up to 2.4e-4 relative, 4e-5 absolute, on a high-order last step to sigma_min);
#: - float64 levels (``sigmas`` upcast, float64 samples): UniPC and DEIS keep the sample's dtype, so
#:   the whole run is float64; DPM-Solver and Euler ancestral cast the sample to float32 inside ``step``
#:   (measured up to 7e-7 relative), the rest is float64.
F32_TOL = dict(rtol=5e-4, atol=5e-5)
F64_TOL = dict(rtol=1e-10, atol=1e-14)
F64_SAMPLE32_TOL = dict(rtol=2e-6, atol=5e-8)


def probe_tolerance(scheduler: Any, dtype: Any) -> dict[str, float]:
    """The tolerance of a probe of ``scheduler`` run in ``dtype`` (float64: with upcast sigmas)."""
    if dtype == torch.float32:
        return F32_TOL
    keeps_dtype = isinstance(scheduler, (diffusers.UniPCMultistepScheduler, diffusers.DEISMultistepScheduler))
    return F64_TOL if keeps_dtype else F64_SAMPLE32_TOL


def excess(H_lib: np.ndarray, H: np.ndarray, tol: dict[str, float]) -> float:
    """max |H_lib - H| / (rtol |H| + atol): <= 1 passes the probe."""
    return float(np.max(np.abs(H_lib - H) / (tol["rtol"] * np.abs(H) + tol["atol"])))


def model_output(x_vp: Any, S: Any, sigma: float, prediction_type: str) -> Any:
    """The exact model's output for a VP-scaled input ``x_vp`` at VE level ``sigma`` (float64 tensor)."""
    S_t = torch.as_tensor(S, dtype=torch.float64)
    ab = 1.0 / (1.0 + sigma * sigma)
    lam = ab * S_t + 1.0 - ab
    x = x_vp.to(torch.float64)
    x0 = np.sqrt(ab) * S_t / lam * x
    eps = np.sqrt(1.0 - ab) / lam * x
    if prediction_type == "epsilon":
        return eps
    if prediction_type == "sample":
        return x0
    if prediction_type == "v_prediction":
        return np.sqrt(ab) * eps - np.sqrt(1.0 - ab) * x0
    raise ValueError(prediction_type)


def stochastic(scheduler: Any) -> bool:
    return isinstance(scheduler, diffusers.EulerAncestralDiscreteScheduler) or str(
        getattr(scheduler.config, "algorithm_type", "")).startswith("sde")


def run(scheduler: Any, S: Any, x: Any, *, generator: Any = None, zero_noise: bool = False) -> np.ndarray:
    """diffusers' sampling loop from ``x`` (shape (batch, modes), its dtype kept); returns float64 numpy.

    ``zero_noise`` passes ``variance_noise=0`` to the SDE DPM-Solver (its documented way to supply the
    noise); for Euler ancestral use :func:`no_noise`.
    """
    pred = scheduler.config.prediction_type
    for i, t in enumerate(scheduler.timesteps):
        x_in = scheduler.scale_model_input(x, t)  # VP scaling (Euler ancestral divides by sqrt(sigma^2 + 1))
        sigma = float(scheduler.sigmas[i])
        out = model_output(x_in, S, sigma, pred).to(x.dtype)
        kw: dict[str, Any] = {}
        if stochastic(scheduler):
            kw["generator"] = generator
            if zero_noise and not isinstance(scheduler, diffusers.EulerAncestralDiscreteScheduler):
                kw["variance_noise"] = torch.zeros_like(x)
        x = scheduler.step(out, t, x, **kw).prev_sample
    return x.to(torch.float64).numpy()


@contextlib.contextmanager
def no_noise() -> Iterator[None]:
    """Euler ancestral with its ``randn_tensor`` returning zeros: the deterministic mean of its step."""
    mod = importlib.import_module("diffusers.schedulers.scheduling_euler_ancestral_discrete")
    orig = mod.randn_tensor
    mod.randn_tensor = lambda shape, **kw: torch.zeros(shape, dtype=kw.get("dtype"), device=kw.get("device"))
    try:
        yield
    finally:
        mod.randn_tensor = orig


def gain_probe(scheduler: Any, S: Any, *, dtype: Any = None, upcast_sigmas: bool = False) -> np.ndarray:
    """Noise-free probe: diffusers' output from x_T = 1 (one mode per column), i.e. H(S) in its sample scale."""
    dtype = dtype or torch.float32
    if upcast_sigmas:
        scheduler.sigmas = scheduler.sigmas.to(torch.float64)
    x = torch.ones((1, np.size(S)), dtype=dtype)
    with no_noise():
        return run(scheduler, S, x, generator=torch.Generator().manual_seed(0), zero_noise=True)[0]


def sample(scheduler: Any, S: Any, n: int, seed: int, *, dtype: Any = None) -> np.ndarray:
    """n samples of diffusers' loop from x_T = init_noise_sigma * randn: shape (n, modes), float64."""
    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, np.size(S)), generator=g, dtype=dtype) * float(scheduler.init_noise_sigma)
    return run(scheduler, S, x, generator=g)


def fresh(scheduler: Any, K: int) -> Any:
    """``set_timesteps(K)`` again (diffusers' schedulers keep their step index and history)."""
    scheduler.set_timesteps(K)
    return scheduler


def tiny_unet(seed: int = 0) -> Any:
    """A small diffusers ``UNet2DModel`` (one 8 x 8 channel, two blocks), initialised from ``torch.manual_seed(seed)``:
    the stand-in learned model of the probe's diffusers tests."""
    torch.manual_seed(seed)
    return diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), layers_per_block=1, norm_num_groups=4)
