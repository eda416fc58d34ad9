"""Loading learned denoisers: the built-in ``builtin:patches16`` and weight files written by
``symsched train-demo``. torch is imported only here, inside :func:`load_model`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import ArgumentTypeError, as_real, as_real_array
from .precondition import check_sigma_data, coefficients, grid_log_snr_range

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

    Raises ValueError naming the metadata key at fault for metadata :func:`load_model` would refuse.
    """

    def __init__(self, name: str, net: Any, meta: dict[str, str]) -> None:
        settings = _read_metadata(meta, "LearnedModel")  # ValueError naming the metadata key at fault
        self.name = name
        self.net = net
        self.metadata = dict(meta)
        self.shape: tuple[int, int] = (16, 16)
        self.prediction = "sample"
        self.sigma_data = settings.sigma_data
        self.log_snr_range = settings.log_snr_range
        self.grid: NDArray[np.float64] = settings.grid
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
            network's float32 arithmetic overflows (should it overflow on values below 1e6, the message blames
            the model's weights, not ``x_t``).
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
        with torch.inference_mode(), np.errstate(over="ignore", invalid="ignore"):  # a non-finite x0_hat is refused
            for i in range(0, flat.shape[0], _CHUNK):  # by name below (the float32 cast warned first)
                s = slice(i, i + _CHUNK)
                F = self.net(torch.from_numpy((c_in[s, None] * flat[s]).astype(np.float32)),
                             torch.from_numpy(c_noise[s].astype(np.float32)))
                out[s] = c_skip[s, None] * flat[s] + c_out[s, None] * F.numpy().astype(np.float64)
        if not np.all(np.isfinite(out)):  # the network computes in float32: inputs near its range overflow it
            raise _overflow(float(np.max(np.abs(x))), self.name)
        return out.reshape(x.shape)

    __call__ = denoiser


def _overflow(largest: float, name: str) -> ValueError:
    """The error for a non-finite x0_hat: x_t's values, or (for values below 1e6, far from the ~1e19 that overflow
    a network of sane weights) the model's weights."""
    if largest < 1e6:
        return ValueError(f"model {name!r}: the network's float32 arithmetic overflows (NaN or inf in x0_hat) on "
                          f"x_t values of at most {largest:.3g}: its weights, not x_t, are out of range")
    return ValueError(f"x_t: values up to {largest:.3g} overflow the network's float32 "
                      "arithmetic (NaN or inf in x0_hat); a VP-scaled batch has values of order 1")


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


def load_model(name: Union[str, "os.PathLike[str]"] = "builtin:patches16") -> LearnedModel:
    r"""Load a learned denoiser without unpickling anything.

    The model computes ``x̂0 = c_skip x_t + c_out F(c_in x_t; c_noise)`` (EDM preconditioning in VP
    coordinates, Karras et al. 2022, arXiv 2206.00364, Table 1; :mod:`symsched.models.precondition`,
    docs/model.md §2), on batches of shape (N, 16, 16). Weights read with ``safetensors``; the file's header
    (metadata, tensor names, shapes and dtypes) is checked before any tensor is read or the network is built.

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
    ArgumentTypeError
        (a TypeError and a ValueError) If ``name`` is not a string or a path (``None``, 3).
    ValueError
        Naming the file: an unknown built-in name or another suffix; a file that does not exist or is not a
        regular file (a directory, a FIFO); not a readable safetensors file; not a symsched weight file (metadata
        ``format``); metadata that cannot work (naming the key): ``net`` outside
        ``symsched.models.network.NET_LIMITS`` (``pixels`` must be 256) or beyond ``MAX_NET_PARAMETERS``,
        ``prediction`` other than ``"sample"``, ``sigma_data`` outside ``precondition.SIGMA_DATA_RANGE``,
        ``train_config`` whose ``beta_schedule`` / ``num_train_timesteps`` (an integer in [2, 100000]) give no
        training grid, ``log_snr_range`` not that grid's log-SNR range; tensors (naming the tensor) missing,
        unexpected, of another shape than ``net`` implies or another dtype than float32; a NaN or inf weight or one
        beyond ``network.MAX_ABS_WEIGHT`` = 1e3 in magnitude (it would overflow the float32 arithmetic).
    """
    path, label = _model_path(name)
    where = f"model file {str(path)!r}"
    _require_torch(label)
    from .network import ResMLP, param_shapes

    with _open(path, where) as fh:
        meta = dict(fh.metadata() or {})
        settings = _read_metadata(meta, where)
        _check_header(where, {k: fh.get_slice(k) for k in fh.keys()}, param_shapes(settings.net))
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    _check_values(where, tensors)
    net = ResMLP(settings.net)
    net.load_state_dict(tensors, strict=True)  # names, shapes and dtype checked above
    net.eval()
    net.requires_grad_(False)
    return LearnedModel(label, net, meta)


def _model_path(name: Any) -> tuple[Path, str]:
    """(weight file, label) of a model name; the file must be a regular file."""
    if not isinstance(name, (str, os.PathLike)) or isinstance(os.fspath(name), bytes):
        raise ArgumentTypeError(f"model must be 'builtin:patches16' or the path of a .safetensors file (got "
                                f"{type(name).__name__} {name!r:.60})")
    src = os.fspath(name)
    if src.startswith("builtin:"):
        return weights_path(src.split(":", 1)[1]), src
    path = Path(src)
    if path.suffix != ".safetensors":
        raise ValueError(f"model must be 'builtin:patches16' or a .safetensors file from "
                         f"`symsched train-demo` (got {src!r})")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ValueError(f"model file {src!r} does not exist") from None
    except OSError as exc:
        raise ValueError(f"model file {src!r} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a socket or device"
        raise ValueError(f"model file {src!r} is {kind}, not a regular file")
    return path, src


def _require_torch(label: str) -> None:
    import importlib

    try:
        for module in ("torch", "safetensors"):
            importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"load_model({label!r}) needs torch and safetensors: "
                          f'pip install "symsched[torch]" ({exc})') from None


def _open(path: Path, where: str) -> Any:
    """safetensors' reader of ``path`` (header parsed, no tensor read); ValueError for an unreadable file."""
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework="pt")
    except Exception as exc:  # safetensors raises its own error types on corrupt headers
        raise ValueError(f"{where} is not a readable safetensors file ({exc})") from None


class _Settings(NamedTuple):
    net: Any  # NetConfig
    sigma_data: float
    log_snr_range: tuple[float, float]
    grid: NDArray[np.float64]


def _read_metadata(meta: dict[str, str], where: str) -> _Settings:
    """The settings a weight file's metadata gives, every key checked: ValueError naming ``where`` and the key."""
    from .network import net_config
    from .train import WEIGHTS_FORMAT

    if meta.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{where} is not a symsched weight file "
                         f"(metadata format {meta.get('format')!r}, expected {WEIGHTS_FORMAT!r})")

    def read(key: str, parse: Any) -> Any:
        if key not in meta:
            raise ValueError(f"{where}: metadata {key!r} is missing")
        try:
            return parse(meta[key])
        except ValueError as exc:  # ArgumentTypeError is one too
            raise ValueError(f"{where}: metadata {key!r}: {exc}") from None

    read("prediction", _prediction)
    net = read("net", lambda text: net_config(_json(text, dict), "net"))
    sigma_data = read("sigma_data", lambda text: check_sigma_data(_number(text)))
    grid = read("train_config", lambda text: _grid(_json(text, dict)))
    lrange = read("log_snr_range", lambda text: _log_snr_range(_json(text, list), grid))
    return _Settings(net, sigma_data, lrange, grid)


def _json(text: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"malformed JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, kind):
        raise ValueError(f"must be a JSON {'object' if kind is dict else 'list'} (got {text[:60]!r})")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ValueError(f"sigma_data must be a number (got {text[:60]!r})") from None


def _prediction(text: str) -> None:
    if text != "sample":
        raise ValueError(f"prediction must be 'sample', what the EDM-preconditioned network predicts (x̂0; got "
                         f"{text[:60]!r})")


def _grid(cfg: dict[str, Any]) -> NDArray[np.float64]:
    from .train import training_levels

    return training_levels(cfg.get("beta_schedule"), cfg.get("num_train_timesteps"))


def _log_snr_range(value: list[Any], grid: NDArray[np.float64]) -> tuple[float, float]:
    """Two finite log-SNRs, low < high, equal (to 1e-9 relative) to the range of the training ``grid``."""
    try:
        lo, hi = (as_real(v, "log_snr_range") for v in value) if len(value) == 2 else (np.nan, np.nan)
    except ValueError:  # a string, a boolean, NaN, an integer beyond float64
        lo = hi = np.nan
    if not lo < hi:  # NaN fails too
        raise ValueError(f"log_snr_range must be two finite log-SNRs, low < high (got {json.dumps(value)[:80]})")
    expected = grid_log_snr_range(grid)
    if not np.allclose((lo, hi), expected, rtol=1e-9, atol=0.0):
        raise ValueError(f"log_snr_range must be the training grid's log-SNR range {list(expected)} "
                         f"(got {[lo, hi]})")
    return lo, hi


def _check_header(where: str, slices: dict[str, Any], expected: dict[str, tuple[int, ...]]) -> None:
    """The tensors' names, dtypes and shapes from the header (nothing read) against those ``net`` implies."""
    missing, extra = sorted(set(expected) - set(slices)), sorted(set(slices) - set(expected))
    if missing or extra:
        raise ValueError(f"{where} does not hold the tensors its metadata 'net' describes (missing: "
                         f"{', '.join(missing[:3]) or 'none'}; unexpected: {', '.join(extra[:3]) or 'none'})")
    for key in sorted(expected):
        dtype, shape = slices[key].get_dtype(), tuple(slices[key].get_shape())
        if dtype != "F32":
            raise ValueError(f"{where}: tensor {key!r} has dtype {dtype}; a symsched weight file holds float32 "
                             "(F32) tensors")
        if shape != expected[key]:
            raise ValueError(f"{where}: tensor {key!r} has shape {shape}, where the metadata 'net' implies "
                             f"{expected[key]}")


def _check_values(where: str, tensors: dict[str, Any]) -> None:
    """Every weight finite and at most MAX_ABS_WEIGHT in magnitude."""
    from .network import MAX_ABS_WEIGHT

    bad = sorted(k for k, v in tensors.items() if not bool(v.isfinite().all()))
    if bad:
        raise ValueError(f"{where} holds non-finite weights (NaN or inf in {', '.join(bad[:3])})")
    for key in sorted(tensors):
        largest = float(tensors[key].abs().max()) if tensors[key].numel() else 0.0
        if largest > MAX_ABS_WEIGHT:
            raise ValueError(f"{where}: tensor {key!r} holds a weight of magnitude {largest:.3g}, beyond "
                             f"MAX_ABS_WEIGHT = {MAX_ABS_WEIGHT:g} (symsched.models.network): the network's float32 "
                             "arithmetic would overflow on inputs of order 1")
