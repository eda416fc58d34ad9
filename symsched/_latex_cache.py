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

Safety is :class:`symsched._datacache.DataCache`'s (as for the kernel cache: private 0700
directories, entries read only if they are regular files of the current user, not group/other-writable,
at most :data:`MAX_ENTRY_BYTES`, valid JSON of the shape above with the expected fingerprint and
``.tex`` names). Anything else is ignored: the LaTeX is rendered instead (an unsafe directory also
disables writing, with one :class:`LatexCacheWarning`). Entries are written atomically with mode 0600.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional

from ._datacache import MAX_ENTRY_BYTES, DataCache, source_digest

__all__ = ["render_all", "lookup", "cached", "cache_dir", "fingerprint", "LatexCacheWarning", "MAX_ENTRY_BYTES"]

_FORMAT = 2  # bump when the entry layout changes (2: sealed by a SHA-256 line)
_TEX = re.compile(r"[A-Za-z0-9_]{1,64}\.tex\Z")


class LatexCacheWarning(UserWarning):
    """The on-disk LaTeX cache was bypassed (unsafe directory); the derivations are rendered instead."""


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """Hash of what determines the rendered LaTeX: entry format, SymPy version, ``symsched/symbolic`` sources."""
    pkg = Path(__file__).resolve().parent
    return source_digest(f"latex-format={_FORMAT}", ("sympy",), pkg, sorted((pkg / "symbolic").rglob("*.py")))


_CACHE = DataCache("latex", _FORMAT, lambda: fingerprint(), LatexCacheWarning,
                   "the derivations are rendered instead", key_field="sampler")
_WARNED = _CACHE.warned


def cache_dir() -> Optional[Path]:
    """Directory of the LaTeX cache entries, or None when the disk cache is disabled."""
    return _CACHE.cache_dir()


def _valid(doc: dict[str, Any]) -> bool:
    files = doc.get("files")
    return (isinstance(files, dict) and bool(files)
            and all(isinstance(k, str) and _TEX.match(k) and isinstance(v, str) for k, v in files.items()))


def _key(sampler: Optional[str], options: Optional[dict[str, Any]] = None) -> str:
    """Entry key of :func:`render_all`'s output: ``all`` for every sampler, ``sampler_<name>`` for one (a prefix of
    its own, so that no sampler name, say ``all``, and no other owner's key, e.g. the report's ``report_...``,
    reads another's entry), followed by :func:`options_tag` of non-default settings."""
    return ("all" if sampler is None else f"sampler_{sampler}") + options_tag(options)


def options_tag(options: Optional[dict[str, Any]]) -> str:
    """``""`` without settings, else ``_o`` and 12 hex digits of a digest of the sorted settings: a key part in
    ``[a-z0-9_]`` that tells a sampler's sections under other settings apart (audit of 6 December: the report's
    derivations of ``algorithm_type=sde-dpmsolver++`` were the default's)."""
    if not options:
        return ""
    text = json.dumps(sorted((k, repr(v)) for k, v in options.items()))
    return "_o" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def lookup(key: str) -> Optional[dict[str, str]]:
    """The files cached under ``key`` by :func:`cached`, or None (no valid entry; nothing is rendered)."""
    doc = _CACHE.lookup(key, _valid)
    return None if doc is None else dict(doc["files"])


def cached(key: str, render: Callable[[], dict[str, str]]) -> dict[str, str]:
    """``render()`` (file name -> LaTeX), through the disk cache under ``key`` (``[a-z0-9_]``, <= 64)."""
    return dict(_CACHE.cached(key, lambda: {"files": render()}, _valid)["files"])


def render_all(sampler: Optional[str] = None, *, progress: Optional[Callable[[str], None]] = None,
               **options: Any) -> dict[str, str]:
    """File name -> LaTeX source, exactly as :func:`symsched.symbolic.latex.render_all`, cached on disk;
    ``progress(file_name)`` after each section rendered on a miss (never on a hit).

    Raises ValueError for an unknown ``sampler`` or setting (from the renderer).
    """

    def render() -> dict[str, str]:
        from .symbolic.latex import render_all as _render

        return _render(sampler, progress=progress, **options)

    return cached(_key(sampler, options), render)
