"""The ``patches16`` data set: 16×16 greyscale patches of scikit-image's bundled photographs.

Offline and deterministic: the photographs ship inside the scikit-image wheel, patches are cut on
a fixed stride, and there is no randomness. The split is *spatial*, so no pixel is shared between
the two parts: the left 80 % of every photograph (columns ``[0, floor(0.8 W))``) is the training
part, the right 20 % is held out.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .._validate import check_choice

__all__ = ["patches16", "PATCHES16_IMAGES", "PATCH_SIZE", "PATCH_STRIDE", "TRAIN_FRACTION", "SPLITS"]

#: The natural photographs bundled with scikit-image used by :func:`patches16` (greyscale or
#: converted to grey; text scans, microscopy, astronomy and synthetic images are left out).
PATCHES16_IMAGES: tuple[str, ...] = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "moon", "rocket",
)
#: Patch side in pixels.
PATCH_SIZE = 16
#: Offset between neighbouring patches (pixels, both directions): neighbours overlap by half.
PATCH_STRIDE = 8
#: Fraction of each photograph's width (from the left) that forms the training split.
TRAIN_FRACTION = 0.8
#: Accepted values of ``split``.
SPLITS: tuple[str, ...] = ("train", "test")


def _grey_signed(img: np.ndarray) -> NDArray[np.float64]:
    """uint8 grey or RGB image -> float64 grey in [-1, 1] (``2 * rgb2gray(img) - 1``)."""
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    grey = rgb2gray(img) if img.ndim == 3 else img_as_float(img)
    return 2.0 * np.asarray(grey, dtype=np.float64) - 1.0


def _cut(region: np.ndarray, p: int, stride: int) -> NDArray[np.float64]:
    """All p×p windows of ``region`` whose top-left corner lies on the stride lattice, row-major."""
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(region, (p, p))[::stride, ::stride]
    return np.ascontiguousarray(win.reshape(-1, p, p))


@functools.lru_cache(maxsize=2)
def _split_cached(split: str) -> NDArray[np.float64]:
    from skimage import data

    parts = []
    for name in PATCHES16_IMAGES:
        grey = _grey_signed(np.asarray(getattr(data, name)()))
        cut = int(TRAIN_FRACTION * grey.shape[1])
        region = grey[:, :cut] if split == "train" else grey[:, cut:]
        parts.append(_cut(region, PATCH_SIZE, PATCH_STRIDE))
    out = np.concatenate(parts, axis=0)
    out.setflags(write=False)
    return out


def patches16(split: Literal["train", "test"] = "train") -> NDArray[np.float64]:
    r"""16×16 greyscale patches of natural photographs in [-1, 1]: shape (N, 16, 16), float64.

    Each photograph of :data:`PATCHES16_IMAGES` (scikit-image's bundled copies, no download) is
    converted to grey (``skimage.color.rgb2gray``, ITU-R BT.709 luma, for RGB images) and scaled
    to ``[-1, 1]`` by ``2 * x - 1`` (as :func:`symsched.spectra.natural_patches`; no mean is
    removed, so the patches are what a diffusion model is trained on). Its columns are split at
    ``c = floor(0.8 W)``: ``"train"`` cuts patches from columns ``[0, c)``, ``"test"`` from
    ``[c, W)``, so the two splits share no pixel. Patches are cut on an 8-pixel stride (half
    overlap) from each part's top-left corner, in image order then row-major order; nothing is
    random. Sizes: N = 27,983 (train) and 6,272 (test).

    Parameters
    ----------
    split : {"train", "test"}
        The left 80 % of every photograph (training) or the right 20 % (held out).

    Returns
    -------
    ndarray, shape (N, 16, 16), float64
        A fresh, writable copy (the cached array is read-only).

    Raises
    ------
    ValueError
        If ``split`` is not ``"train"`` or ``"test"``.

    Source: the photographs bundled with scikit-image (``skimage.data.<name>()``, files in ``skimage/data/`` of its
    wheel; each function's docstring describes its photograph), converted by ``skimage.color.rgb2gray``.
    """
    check_choice(split, "split", SPLITS)
    return np.array(_split_cached(split))
