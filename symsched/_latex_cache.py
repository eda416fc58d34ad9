"""The rendered LaTeX derivations, cached on disk like the compiled kernels.

Rendering every derivation with SymPy (simplifying, factoring, ``dsolve``) takes seconds; its
result only changes when a derivation does. :func:`render_all` returns what
:func:`symsched.symbolic.latex.render_all` returns, read from the cache when an entry for the same
sources exists, and renders (then stores) it otherwise. Looking an entry up never imports SymPy.

An entry is **plain text data**, never executed: a JSON object ``{"format", "fingerprint",
"sampler", "files": {name.tex: LaTeX}}``. It lives in ``<cache root>/latex/<fingerprint>/``, where
the cache root is the kernel cache's (``$SYMSCHED_CACHE_DIR``, default ``$XDG_CACHE_HOME/symsched``
or ``~/.cache/symsched``) and the fingerprint hashes the entry format, the SymPy version and the
source of :mod:`symsched.symbolic` (every derivation and both LaTeX renderers), so editing a
derivation invalidates it. ``SYMSCHED_DISK_CACHE=0`` disables the cache.

Safety, as for the kernel cache: directories are created 0700; the cache root and every directory
below it must be directories owned by the current user and not writable by group or others (the
root's ancestors: owned by root or the user, not group/other-writable unless sticky, like /tmp);
an entry is read only if it is a regular file (opened without following symlinks) owned by the
current user, not writable by group or others, at most :data:`MAX_ENTRY_BYTES`, valid JSON of the
shape above with the expected fingerprint and ``.tex`` names. Anything else is ignored: the LaTeX is
rendered instead (an unsafe directory also disables writing, with one :class:`LatexCacheWarning`).
Entries are written atomically (a temporary file renamed into place) with mode 0600.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional

from ._io import atomic_write_text

__all__ = ["render_all", "lookup", "cached", "cache_dir", "fingerprint", "LatexCacheWarning", "MAX_ENTRY_BYTES"]

_FORMAT = 1  # bump when the entry layout changes
#: largest entry that is read (all derivations together are ~60 kB today)
MAX_ENTRY_BYTES = 8 << 20
_KEY = re.compile(r"[a-z0-9_]{1,64}\Z")
_TEX = re.compile(r"[A-Za-z0-9_]{1,64}\.tex\Z")
_OFF = ("0", "false", "no", "off")


class LatexCacheWarning(UserWarning):
    """The on-disk LaTeX cache was bypassed (unsafe directory); the derivations are rendered instead."""


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """Hash of what determines the rendered LaTeX: entry format, SymPy version, ``symsched/symbolic`` sources."""
    import importlib.metadata

    pkg = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"latex-format={_FORMAT}".encode())
    try:
        digest.update(importlib.metadata.version("sympy").encode())
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        digest.update(b"sympy-unknown")
    for path in sorted((pkg / "symbolic").rglob("*.py")):
        digest.update(path.relative_to(pkg).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _cache_root() -> Path:
    root = os.environ.get("SYMSCHED_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "symsched"


def cache_dir() -> Optional[Path]:
    """Directory of the LaTeX cache entries, or None when the disk cache is disabled."""
    if os.environ.get("SYMSCHED_DISK_CACHE", "1").strip().lower() in _OFF:
        return None
    return _cache_root() / "latex" / fingerprint()


_WARNED: set[str] = set()


def _warn(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(f"symsched LaTeX cache: {message}; the derivations are rendered instead "
                      "(set SYMSCHED_CACHE_DIR to a private directory, or SYMSCHED_DISK_CACHE=0)",
                      LatexCacheWarning, stacklevel=4)


def _dir_problem(path: Path, st: os.stat_result, uid: int, inside: bool) -> Optional[str]:
    """Why a directory on the way to the cache must not be trusted (None: it may)."""
    if not inside:  # an ancestor of the cache root
        if st.st_uid not in (0, uid):
            return f"{str(path)!r} is owned by another user (uid {st.st_uid})"
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return f"{str(path)!r} is writable by group or others without the sticky bit"
        return None
    if not stat.S_ISDIR(st.st_mode):
        return f"{str(path)!r} is not a directory"
    if st.st_uid != uid:
        return f"directory {str(path)!r} is owned by uid {st.st_uid}, not by the current user (uid {uid})"
    if st.st_mode & 0o022:
        return f"directory {str(path)!r} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_mode & 0o700 != 0o700:
        return f"directory {str(path)!r} lacks owner rwx (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _trusted(directory: Path) -> Optional[Path]:
    """``directory`` (created 0700 where missing) if it and its ancestors are safe, else None (one warning)."""
    uid = os.geteuid() if hasattr(os, "geteuid") else -1
    if uid < 0:  # pragma: no cover - no POSIX ownership to check: do not cache on disk
        return None
    root = Path(os.path.realpath(_cache_root()))
    directory = root / directory.relative_to(_cache_root())
    try:
        for d in [*reversed(directory.parents), directory]:
            created = False
            if not os.path.lexists(d):
                try:
                    os.mkdir(d, 0o700)  # the umask can only remove bits
                    created = True
                except FileExistsError:
                    pass
            inside = d == root or root in d.parents
            problem = _dir_problem(d, os.lstat(d) if inside else os.stat(d), uid, inside or created)
            if problem:
                _warn(problem)
                return None
    except OSError as exc:
        _warn(f"cannot use {str(directory)!r} ({exc.strerror or exc})")
        return None
    return directory


def _read(path: Path, key: str) -> Optional[dict[str, str]]:
    """The files of a valid entry, or None (missing, unsafe, corrupt or stale)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022
                or st.st_size > MAX_ENTRY_BYTES):
            return None
        data = os.read(fd, MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or doc.get("fingerprint") != fingerprint():
        return None
    files = doc.get("files")
    if doc.get("sampler") != key or not isinstance(files, dict) or not files:
        return None
    if not all(isinstance(k, str) and _TEX.match(k) and isinstance(v, str) for k, v in files.items()):
        return None
    return dict(files)


def _entry_path(key: str) -> Optional[Path]:
    directory = cache_dir() if _KEY.match(key) else None
    trusted = None if directory is None else _trusted(directory)
    return None if trusted is None else trusted / f"{key}.json"


def lookup(sampler: Optional[str] = None) -> Optional[dict[str, str]]:
    """The cached :func:`render_all` output for ``sampler``, or None (no valid entry; nothing is rendered)."""
    key = "all" if sampler is None else str(sampler)
    path = _entry_path(key)
    return None if path is None else _read(path, key)


def cached(key: str, render: Callable[[], dict[str, str]]) -> dict[str, str]:
    """``render()`` (file name -> LaTeX), through the disk cache under ``key`` (``[a-z0-9_]``, <= 64)."""
    path = _entry_path(key)
    if path is not None:
        files = _read(path, key)
        if files is not None:
            return files
    files = render()
    if path is not None:
        doc: dict[str, Any] = {"format": _FORMAT, "fingerprint": fingerprint(), "sampler": key, "files": files}
        try:
            atomic_write_text(path, json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n", mode=0o600)
        except OSError:  # read-only file system etc.: the rendered LaTeX is still returned
            pass
    return files


def render_all(sampler: Optional[str] = None) -> dict[str, str]:
    """File name -> LaTeX source, exactly as :func:`symsched.symbolic.latex.render_all`, cached on disk.

    Raises ValueError for an unknown ``sampler`` (from the renderer).
    """

    def render() -> dict[str, str]:
        from .symbolic.latex import render_all as _render

        return _render(sampler)

    return cached("all" if sampler is None else str(sampler), render)
