"""Loading learned denoisers: the built-in ``builtin:patches16`` and weight files written by
``symsched train-demo``. torch is imported only here, inside :func:`load_model`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import ArgumentTypeError, as_real_array
from .precondition import coefficients

__all__ = ["load_model", "LearnedModel", "BUILTIN_MODELS", "weights_path"]

_DATA = Path(__file__).resolve().parent / "data"
#: Built-in models accepted by :func:`load_model` (after the ``"builtin:"`` prefix) -> weight file.
BUILTIN_MODELS: dict[str, str] = {"patches16": "patches16.safetensors"}
_CHUNK = 8192  # samples per forward pass


def weights_path(name: str = "patches16") -> Path:
    """Path of a built-in model's shipped weight file (safetensors).

    ``symsched/models/data/BUILTIN_MODELS[name]`` (a :class:`~pathlib.Path`; the file is not opened).
    Raises ValueError for a name not in :data:`BUILTIN_MODELS`. Source: the weights ``symsched train-demo``
    writes (:mod:`symsched.models.train`).
    """
    if name not in BUILTIN_MODELS:
        raise ValueError(f"unknown built-in model {name!r}; choose from {sorted(BUILTIN_MODELS)}")
    return _DATA / BUILTIN_MODELS[name]


class LearnedModel:
    r"""A learned denoiser on 16×16 patches with EDM preconditioning, evaluated in NumPy float64.

    Attributes
    ----------
    name : str
    shape : tuple of int
        Sample shape, ``(16, 16)``.
    grid : ndarray, shape (T,)
        Training ``alphas_cumprod`` (training order, ``grid[0]`` least noisy): the 1000-step
        linear DDPM grid.
    prediction : str
        ``"sample"``: :meth:`denoiser` returns ``x̂0``.
    sigma_data : float
        σ_d of the preconditioning.
    log_snr_range : (float, float)
        Log-SNR range of ``grid``; the noise condition is clipped to it.
    net : torch.nn.Module
        The raw network F (float32, eval mode).
    n_parameters : int
    metadata : dict
        The weight file's metadata (format, architecture, training configuration).
    """

    def __init__(self, name: str, net: Any, meta: dict[str, str]) -> None:
        from ..schedules import training_grid

        cfg = json.loads(meta["train_config"])
        self.name = name
        self.net = net
        self.metadata = dict(meta)
        self.shape: tuple[int, int] = (16, 16)
        self.prediction = "sample"
        self.sigma_data = float(meta["sigma_data"])
        if not (math.isfinite(self.sigma_data) and self.sigma_data > 0):
            raise ValueError(f"sigma_data must be a positive finite number (got {meta['sigma_data']!r})")
        lo, hi = json.loads(meta["log_snr_range"])
        self.log_snr_range = (float(lo), float(hi))
        if not (math.isfinite(self.log_snr_range[0]) and math.isfinite(self.log_snr_range[1]) and lo < hi):
            raise ValueError(f"log_snr_range must be two finite log-SNRs, low < high (got {meta['log_snr_range']!r})")
        self.grid: NDArray[np.float64] = training_grid(cfg["beta_schedule"],
                                                       num_train_timesteps=int(cfg["num_train_timesteps"]))
        self.n_parameters = int(sum(p.numel() for p in net.parameters()))

    def __repr__(self) -> str:
        return (f"LearnedModel({self.name!r}, shape={self.shape}, prediction={self.prediction!r}, "
                f"{self.n_parameters:,} parameters, grid of {self.grid.size} levels)")

    def denoiser(self, x_t: ArrayLike, alpha_bar_t: Union[float, ArrayLike]) -> NDArray[np.float64]:
        r"""``x̂0 = c_skip x_t + c_out F(c_in x_t; c_noise)`` for a VP-scaled noisy batch.

        Parameters
        ----------
        x_t : array_like, shape (N, 16, 16)
            ``√ᾱ x0 + √(1-ᾱ) ε``, finite real values.
        alpha_bar_t : float or array_like of shape (N,)
            Noise level(s) ``ᾱ`` in [0, 1]; 0 is pure noise (``x̂0 = σ_d F(x_t)``), 1 returns ``x_t``.

        Returns
        -------
        ndarray, shape (N, 16, 16), float64
            The denoised estimate ``x̂0`` (``prediction == "sample"``).

        Raises
        ------
        ValueError
            On a wrong shape, a non-finite value, a level outside [0, 1], or values so large (~1e19) that the
            network's float32 arithmetic overflows.
        TypeError
            On non-numeric input.
        """
        import torch

        x = _as_batch(x_t, self.shape)
        ab = _as_levels(alpha_bar_t, x.shape[0])
        if x.shape[0] == 0:
            return np.empty(x.shape)
        c_skip, c_out, c_in, c_noise = coefficients(ab, sigma_data=self.sigma_data,
                                                    log_snr_range=self.log_snr_range)
        flat = x.reshape(x.shape[0], -1)
        out = np.empty_like(flat)
        with torch.inference_mode():
            for i in range(0, flat.shape[0], _CHUNK):
                s = slice(i, i + _CHUNK)
                F = self.net(torch.from_numpy((c_in[s, None] * flat[s]).astype(np.float32)),
                             torch.from_numpy(c_noise[s].astype(np.float32)))
                out[s] = c_skip[s, None] * flat[s] + c_out[s, None] * F.numpy().astype(np.float64)
        if not np.all(np.isfinite(out)):  # the network computes in float32: inputs near its range overflow it
            raise ValueError(f"x_t: values up to {float(np.max(np.abs(x))):.3g} overflow the network's float32 "
                             "arithmetic (NaN or inf in x0_hat); a VP-scaled batch has values of order 1")
        return out.reshape(x.shape)

    __call__ = denoiser


def _as_batch(x_t: ArrayLike, shape: tuple[int, int]) -> NDArray[np.float64]:
    x = as_real_array(x_t, "x_t")  # ArgumentTypeError for None, strings, boolean / complex / string arrays
    if x.ndim != 3 or x.shape[1:] != shape:
        raise ValueError(f"x_t must have shape (N, {shape[0]}, {shape[1]}) (got {x.shape}); "
                         f"pass one sample as x[None]")
    if not np.all(np.isfinite(x)):
        raise ValueError("x_t must be finite (got NaN or inf)")
    return x


def _as_levels(alpha_bar_t: Union[float, ArrayLike], n: int) -> NDArray[np.float64]:
    ab = as_real_array(alpha_bar_t, "alpha_bar_t")  # ArgumentTypeError for None, a string or a boolean
    if ab.ndim == 0:
        ab = np.full(n, float(ab))
    elif ab.shape != (n,):
        raise ValueError(f"alpha_bar_t must be a number or have shape ({n},) (got {ab.shape})")
    if not np.all(np.isfinite(ab)) or np.any(ab < 0.0) or np.any(ab > 1.0):
        bad = ab[~(np.isfinite(ab) & (ab >= 0.0) & (ab <= 1.0))][0]
        raise ValueError(f"alpha_bar_t must lie in [0, 1] (got {bad!r})")
    return ab


def load_model(name: Union[str, "Path"] = "builtin:patches16") -> LearnedModel:
    r"""Load a learned denoiser without unpickling anything.

    The model computes ``x̂0 = c_skip x_t + c_out F(c_in x_t; c_noise)`` (EDM preconditioning in VP
    coordinates, Karras et al. 2022, arXiv 2206.00364, Table 1; :mod:`symsched.models.precondition`,
    docs/model.md §2), on batches of shape (N, 16, 16). Weights read with ``safetensors``.

    Parameters
    ----------
    name : str or path
        ``"builtin:patches16"`` (the shipped model: a 16×16 greyscale patch denoiser, see
        ``symsched.models``), or a ``.safetensors`` file written by ``symsched train-demo``.

    Returns
    -------
    LearnedModel
        ``m.denoiser(x_t, alpha_bar_t) -> x̂0``, ``m.shape``, ``m.grid``, ``m.prediction``.

    Raises
    ------
    ImportError
        If torch or safetensors is missing (``pip install "symsched[torch]"``).
    ValueError
        For an unknown built-in name, a missing file, or a file that is not a symsched weight
        file (wrong format tag, missing or mismatched tensors).
    """
    src = str(name)
    if src.startswith("builtin:"):
        path, label = weights_path(src.split(":", 1)[1]), src
    else:
        path, label = Path(src), src
        if path.suffix != ".safetensors":
            raise ValueError(f"model must be 'builtin:patches16' or a .safetensors file from "
                             f"`symsched train-demo` (got {src!r})")
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    try:
        import torch  # noqa: F401
        from safetensors import safe_open
    except ImportError as exc:
        raise ImportError(f"load_model({src!r}) needs torch and safetensors: "
                          f'pip install "symsched[torch]" ({exc})') from None
    from .network import NetConfig, ResMLP
    from .train import WEIGHTS_FORMAT

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types on corrupt headers
        raise ValueError(f"model file {str(path)!r} is not a readable safetensors file ({exc})") from None
    if meta.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"model file {str(path)!r} is not a symsched weight file "
                         f"(metadata format {meta.get('format')!r}, expected {WEIGHTS_FORMAT!r})")
    bad = sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all()))
    if bad:
        raise ValueError(f"model file {str(path)!r} holds non-finite weights (NaN or inf in {', '.join(bad[:3])})")
    try:
        net = ResMLP(NetConfig(**json.loads(meta["net"])))
        net.load_state_dict(tensors, strict=True)
        net.eval()
        net.requires_grad_(False)
        return LearnedModel(label, net, meta)  # reads the training metadata (train_config, log_snr_range)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"model file {str(path)!r} does not match the patches16 network or its metadata is "
                         f"malformed ({type(exc).__name__}: {exc})") from None
