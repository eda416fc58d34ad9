"""Import k-diffusion's ``sampling`` module without torchvision, and drive it with the exact denoiser.

k-diffusion 0.1.1.post1 (``pip install --no-deps k-diffusion==0.1.1.post1 torchsde torchdiffeq``)
imports torchvision in ``k_diffusion/utils.py`` only for PIL conversions, which sampling never
calls; PyPI's torchvision builds do not import beside the CPU torch wheel used here. The tests use
symsched's own loader (:func:`symsched._library_samplers.load_k_diffusion_sampling`), which loads
``k_diffusion.utils`` and ``k_diffusion.sampling`` as plain modules when torchvision cannot be
imported. Nothing of k-diffusion's sampling code is changed.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest


def load_sampling() -> Any:
    """``k_diffusion.sampling`` (symsched's own clean loader), or skip when a dependency is missing."""
    for mod in ("torch", "torchsde", "torchdiffeq", "scipy"):
        pytest.importorskip(mod)
    from symsched._library_samplers import load_k_diffusion_sampling

    try:
        return load_k_diffusion_sampling()
    except ValueError as e:  # k-diffusion itself is not installed
        pytest.skip(str(e))


def exact_denoiser(S: np.ndarray) -> Callable[..., Any]:
    """k-diffusion model ``model(x, sigma) -> D(x; sigma) = S/(S + sigma^2) x`` per mode (float64).

    ``x`` has shape (batch, modes); sigma is the per-sample tensor k-diffusion passes.
    """
    import torch

    S_t = torch.as_tensor(S, dtype=torch.float64)

    def model(x: Any, sigma: Any, **_: Any) -> Any:
        s = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(torch.float64)
        return S_t / (S_t + s * s) * x

    return model


def gain_probe(sampling: Any, sampler: str, S: np.ndarray, sigmas: np.ndarray, **kwargs: Any) -> np.ndarray:
    """Noise-free probe: run k-diffusion's ``sample_<sampler>`` from x = 1 (one mode per column): H(S)."""
    import torch

    x = torch.ones((1, S.size), dtype=torch.float64)
    sig = torch.as_tensor(np.append(sigmas, 0.0), dtype=torch.float64)
    fn = getattr(sampling, f"sample_{sampler}")
    out = fn(exact_denoiser(S), x, sig, disable=True, **kwargs)
    return out.numpy()[0]


def run(sampling: Any, sampler: str, S: np.ndarray, sigmas: np.ndarray, n: int, seed: int, **kwargs: Any) -> np.ndarray:
    """n samples of k-diffusion's ``sample_<sampler>`` from its white start x = sigma_max * randn: (n, modes)."""
    import torch

    torch.manual_seed(seed)
    sig = torch.as_tensor(np.append(sigmas, 0.0), dtype=torch.float64)
    x = torch.randn((n, S.size), dtype=torch.float64) * sig[0]
    fn = getattr(sampling, f"sample_{sampler}")
    return fn(exact_denoiser(S), x, sig, disable=True, **kwargs).numpy()


def comfyui_reads(text: str) -> np.ndarray:
    """What ComfyUI's ``ManualSigmas`` node (its own copy of k-diffusion's samplers takes these sigmas) makes of its
    text, transcribed from ``comfy_extras/nodes_custom_sampler.py`` for the tests: every match of
    ``[-+]?(?:\\d*\\.*\\d+)``, as float, in a float32 tensor."""
    import re

    return np.array([float(m) for m in re.findall(r"[-+]?(?:\d*\.*\d+)", text)], dtype=np.float32)
