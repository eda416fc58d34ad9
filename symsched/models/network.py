"""The ``patches16`` denoiser network F (torch): a residual MLP conditioned on the noise level.

``x̂0 = c_skip x_t + c_out F(c_in x_t; c_noise)`` (:mod:`symsched.models.precondition`). F sees the
patch as a vector of 256 pixels; every block is ``h <- h + W·SiLU(AdaLN(h; emb))`` with a
layer norm whose scale and shift come from the noise embedding (as in DiT's adaLN), and the noise
embedding is an MLP of Fourier features of ``c_noise``. A dense network of this size costs about
one multiply-add per parameter and sample, so a 2,000-sample, 20-step run takes a few seconds on
a CPU core, where a convolutional U-Net of the same size takes minutes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from .._validate import ArgumentTypeError, as_int

__all__ = ["NetConfig", "ResMLP", "NET_LIMITS", "MAX_NET_PARAMETERS", "MAX_ABS_WEIGHT", "net_config", "param_shapes"]

#: Accepted value of each :class:`NetConfig` field, ``(lowest, highest)``: ``pixels`` is a 16×16 patch (the data and
#: :class:`~symsched.models.LearnedModel` are 16×16).
NET_LIMITS: dict[str, tuple[int, int]] = {"pixels": (256, 256), "width": (1, 4096), "depth": (1, 64),
                                          "hidden": (1, 4096), "emb_dim": (1, 1024), "n_freqs": (0, 32)}
#: Most parameters of a network (2**26, 256 MiB of float32; the shipped one has 1,043,264).
MAX_NET_PARAMETERS = 1 << 26
#: Largest weight magnitude a weight file may hold: 200 times the shipped weights' largest (4.996). Far larger
#: ones overflow the float32 arithmetic of F on inputs of order 1 (3e38 at once, in the first layer).
MAX_ABS_WEIGHT = 1e3


@dataclass(frozen=True)
class NetConfig:
    """Architecture of :class:`ResMLP` (stored with the weights)."""

    pixels: int = 256  #: input/output size (16×16 patch, flattened)
    width: int = 384  #: hidden width
    depth: int = 4  #: number of residual blocks
    hidden: int = 384  #: inner width of a block (== width: one linear map per block)
    emb_dim: int = 64  #: noise-embedding width
    n_freqs: int = 6  #: Fourier features sin/cos(pi 2^k c_noise), k < n_freqs

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def net_config(value: Any, name: str = "net") -> NetConfig:
    """A checked :class:`NetConfig` from a NetConfig or a dict of all its fields (a weight file's ``net`` metadata).

    Raises ArgumentTypeError for another type or a non-integer field (``True``, ``"384"``, a float: ``384.0`` and
    ``384.5``), and ValueError for missing or unknown fields, a field outside :data:`NET_LIMITS` or more than
    :data:`MAX_NET_PARAMETERS` parameters; each message names ``name`` and the field.
    """
    if isinstance(value, NetConfig):
        value = value.to_dict()
    if not isinstance(value, dict):
        raise ArgumentTypeError(f"{name} must be a NetConfig or a dict of its fields (got {type(value).__name__})")
    names = [f.name for f in fields(NetConfig)]
    if set(value) != set(names):
        raise ValueError(f"{name} must have exactly the fields {names} (got {sorted(map(str, value))})")
    cfg = NetConfig(**{k: as_int(value[k], f"{name}.{k}", lo, hi, rule=f"an integer in [{lo}, {hi}]" if lo < hi
                                 else f"{lo} (16×16 patches)") for k, (lo, hi) in NET_LIMITS.items()})
    n = sum(math.prod(s) for s in param_shapes(cfg).values())
    if n > MAX_NET_PARAMETERS:
        raise ValueError(f"{name} describes a network of {n:,} parameters, more than MAX_NET_PARAMETERS = "
                         f"{MAX_NET_PARAMETERS:,} (symsched.models.network)")
    return cfg


def param_shapes(cfg: NetConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor of ``ResMLP(cfg).state_dict()``, computed without building the network."""
    w, e = cfg.width, cfg.emb_dim

    def linear(prefix: str, n_out: int, n_in: int) -> dict[str, tuple[int, ...]]:
        return {f"{prefix}.weight": (n_out, n_in), f"{prefix}.bias": (n_out,)}

    shapes = {**linear("emb.0", e, 2 * cfg.n_freqs + 1), **linear("emb.2", e, e), **linear("inp", w, cfg.pixels)}
    for i in range(cfg.depth):
        shapes.update(linear(f"blocks.{i}.ada.mod", 2 * w, e))
        if cfg.hidden == w:
            shapes.update(linear(f"blocks.{i}.mlp", w, w))
        else:
            shapes.update({**linear(f"blocks.{i}.mlp.0", cfg.hidden, w), **linear(f"blocks.{i}.mlp.2", w, cfg.hidden)})
    return {**shapes, **linear("out_ada.mod", 2 * w, e), **linear("out", cfg.pixels, w)}


class _AdaLN(nn.Module):
    """LayerNorm without affine parameters, then ``(1 + scale)·h + shift`` from the embedding."""

    def __init__(self, width: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.mod = nn.Linear(emb_dim, 2 * width)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.mod(emb).chunk(2, dim=-1)
        return self.norm(h) * (1.0 + scale) + shift


class _Block(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.ada = _AdaLN(cfg.width, cfg.emb_dim)
        if cfg.hidden == cfg.width:
            self.mlp: nn.Module = nn.Linear(cfg.width, cfg.width)
        else:
            self.mlp = nn.Sequential(nn.Linear(cfg.width, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.width))
        last = self.mlp if isinstance(self.mlp, nn.Linear) else self.mlp[-1]
        nn.init.zeros_(last.weight)  # each block starts as the identity
        nn.init.zeros_(last.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return h + self.mlp(nn.functional.silu(self.ada(h, emb)))


class ResMLP(nn.Module):
    """``F(x_in, c_noise)``: (B, pixels) float32 and (B,) float32 -> (B, pixels) float32."""

    def __init__(self, cfg: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(cfg.n_freqs, dtype=torch.float32),
                             persistent=False)
        self.emb = nn.Sequential(nn.Linear(2 * cfg.n_freqs + 1, cfg.emb_dim), nn.SiLU(),
                                 nn.Linear(cfg.emb_dim, cfg.emb_dim), nn.SiLU())
        self.inp = nn.Linear(cfg.pixels, cfg.width)
        self.blocks = nn.ModuleList([_Block(cfg) for _ in range(cfg.depth)])
        self.out_ada = _AdaLN(cfg.width, cfg.emb_dim)
        self.out = nn.Linear(cfg.width, cfg.pixels)
        nn.init.zeros_(self.out.weight)  # F = 0 at initialisation: x̂0 = c_skip x_t
        nn.init.zeros_(self.out.bias)

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        a = c_noise[:, None] * self.freqs
        emb = self.emb(torch.cat([c_noise[:, None], torch.sin(a), torch.cos(a)], dim=-1))
        h = self.inp(x_in)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(nn.functional.silu(self.out_ada(h, emb)))
