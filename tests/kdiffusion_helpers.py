"""Import k-diffusion's ``sampling`` module without torchvision, and drive it with the exact denoiser.

k-diffusion 0.1.1.post1 (``pip install --no-deps k-diffusion==0.1.1.post1 torchsde torchdiffeq``)
imports torchvision in ``k_diffusion/utils.py`` only for PIL conversions, which sampling never
calls; PyPI's torchvision builds do not import beside the CPU torch wheel used here. We therefore
load ``k_diffusion.utils`` and ``k_diffusion.sampling`` as plain modules with a stand-in for
``torchvision.transforms.functional`` when the real one cannot be imported. Nothing of
k-diffusion's sampling code is changed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any, Callable

import numpy as np
import pytest


def load_sampling() -> Any:
    """``k_diffusion.sampling``, or skip when torch, torchsde, torchdiffeq or k-diffusion is missing."""
    for mod in ("torch", "torchsde", "torchdiffeq", "scipy"):
        pytest.importorskip(mod)
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("k-diffusion is not installed (pip install --no-deps k-diffusion==0.1.1.post1)")
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    try:
        importlib.import_module("torchvision.transforms.functional")
    except Exception:  # noqa: BLE001 - any import failure of torchvision: use the stand-in
        tv = types.ModuleType("torchvision")
        tr = types.ModuleType("torchvision.transforms")
        fn = types.ModuleType("torchvision.transforms.functional")
        tv.transforms, tr.functional = tr, fn  # type: ignore[attr-defined]
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn})
    root = spec.submodule_search_locations[0]
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = [root]  # a bare package: its __init__ (which imports models, torchvision...) is not run
    sys.modules["k_diffusion"] = pkg
    for name in ("utils", "sampling"):
        sub = importlib.util.spec_from_file_location(f"k_diffusion.{name}", f"{root}/{name}.py")
        module = importlib.util.module_from_spec(sub)
        sys.modules[f"k_diffusion.{name}"] = module
        sub.loader.exec_module(module)  # type: ignore[union-attr]
        setattr(pkg, name, module)
    return sys.modules["k_diffusion.sampling"]


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
