"""Small, safe file helpers: atomic writes and pickle-free loading."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_bytes", "save_npy", "load_npy"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: PathLike, writer: Callable[[str], None], *, suffix: str = "",
                 mode: Optional[int] = None) -> Path:
    """Call ``writer(tmp_path)`` and rename the temporary file onto ``path`` (atomic on POSIX).

    The file gets ``mode`` if given, else the usual ``0666 & ~umask``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: PathLike, text: str, *, mode: Optional[int] = None) -> Path:
    def _w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)

    return atomic_write(path, _w, mode=mode)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    def _w(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return atomic_write(path, _w)


def save_npy(path: PathLike, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` in .npy format, atomically, without pickle."""

    def _w(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)

    return atomic_write(path, _w, suffix=".npy")


def load_npy(path: PathLike, name: str = "file") -> np.ndarray:
    """Load a numeric .npy file; never unpickles (object arrays are refused with a ValueError)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{name} {str(p)!r} does not exist or is not a file")
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{name} {str(p)!r} is not a plain numeric .npy array ({exc})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):  # pragma: no cover - np.load on .npz
        raise ValueError(f"{name} {str(p)!r} is an .npz archive; pass a single .npy array")
    return np.asarray(arr)
