"""Safe on-disk caches of plain JSON data: the rendered LaTeX and the report's learned-model probe.

A :class:`DataCache` stores one JSON object per key in ``<cache root>/<namespace>/<fingerprint>/``,
where the cache root is the kernel cache's (``$SYMSCHED_CACHE_DIR``, default
``$XDG_CACHE_HOME/symsched`` or ``~/.cache/symsched``) and the fingerprint hashes whatever
determines the cached value (the owner passes it in), so a change of that input starts a new
directory. ``SYMSCHED_DISK_CACHE=0`` disables every cache. Entries are data: they are parsed as
JSON and checked by the owner's validator, never executed.

Safety, as for the kernel cache: directories are created 0700; the cache root and every directory
below it must be directories owned by the current user, with owner rwx and not writable by group or
others (the root's ancestors: owned by root or the user, not group/other-writable unless sticky,
like /tmp); an entry is read only if it is a regular file (opened without following symlinks or
blocking on a FIFO) owned by the current user, not writable by group or others, at most
:data:`MAX_ENTRY_BYTES`, sealed (its first line is the SHA-256 of the rest, :func:`seal`: a flipped digit or
a truncated or hand-edited entry is detected), valid UTF-8 JSON with the expected format, fingerprint and
key, and accepted by the validator. Anything else is ignored and the value is computed instead (an unsafe directory
also disables writing, with one warning of the owner's class). Entries are written atomically (a
temporary file renamed into place) with mode 0600; a failed write (read-only file system) is ignored.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

__all__ = ["DataCache", "MAX_ENTRY_BYTES", "NoCacheLocation", "UnsafeEntry", "cache_root", "cache_subdir", "disabled",
           "read_entry", "seal", "source_digest", "trusted_dir", "unseal", "write_entry"]

#: largest entry that is read
MAX_ENTRY_BYTES = 8 << 20
_KEY = re.compile(r"[a-z0-9_]{1,64}\Z")
_OFF = ("0", "false", "no", "off")


class NoCacheLocation(OSError):
    """No cache root can be determined (no ``SYMSCHED_CACHE_DIR``, no absolute ``XDG_CACHE_HOME``, no usable home)."""


def _home() -> str:
    """``$HOME``, else the password entry's home directory; NoCacheLocation unless it is an absolute path (Python
    reads an empty ``HOME`` as ``/`` and raises RuntimeError without a password entry)."""
    home = os.environ.get("HOME")
    if home is None:
        try:
            home = str(Path.home())
        except (RuntimeError, KeyError, OSError):
            home = ""
    if not os.path.isabs(home):
        raise NoCacheLocation(f"no cache location: the home directory ({home!r}) is unknown or not absolute")
    return home


def cache_root() -> Path:
    """The absolute cache root: ``$SYMSCHED_CACHE_DIR`` (a leading ``~`` is the home directory; a relative path is
    taken from the working directory), else ``$XDG_CACHE_HOME/symsched`` when that is absolute (a relative one is
    ignored, as the XDG Base Directory specification says), else ``$HOME/.cache/symsched``. The path is not
    normalised (``link/..`` is resolved on the file system by :func:`trusted_dir`).

    Raises :class:`NoCacheLocation` when none applies: a home directory that is needed and unknown, empty or
    relative, a ``~user`` that does not exist, or a relative ``SYMSCHED_CACHE_DIR`` in a deleted working directory.
    """
    root = os.environ.get("SYMSCHED_CACHE_DIR")
    if root:
        if root == "~" or root.startswith("~/"):
            root = _home() + root[1:]
        elif root.startswith("~"):
            root = os.path.expanduser(root)
            if root.startswith("~"):
                raise NoCacheLocation(f"SYMSCHED_CACHE_DIR={root!r} names a user whose home directory is unknown")
        if os.path.isabs(root):
            return Path(root)
        try:
            return Path(os.getcwd()) / root
        except OSError as exc:  # (the working directory was removed)
            raise NoCacheLocation(f"SYMSCHED_CACHE_DIR={root!r} is relative and the working directory cannot be "
                                  f"read ({exc.strerror or exc})") from None
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "symsched"
    try:
        return Path(_home()) / ".cache" / "symsched"
    except NoCacheLocation:
        raise NoCacheLocation("no cache location: SYMSCHED_CACHE_DIR is unset, XDG_CACHE_HOME is unset or relative, "
                              "and the home directory is unknown or not absolute") from None


def cache_subdir(*parts: str, warn: Callable[[str], None]) -> Optional[Path]:
    """``cache_root() / parts``, or None when the disk cache is disabled or has no location (``warn(reason)``)."""
    if disabled():
        return None
    try:
        return cache_root().joinpath(*parts)
    except NoCacheLocation as exc:
        warn(str(exc))
        return None


def disabled() -> bool:
    """True when ``SYMSCHED_DISK_CACHE`` is 0/false/no/off."""
    return os.environ.get("SYMSCHED_DISK_CACHE", "1").strip().lower() in _OFF


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
        return (f"directory {str(path)!r} is not readable, writable and searchable by its owner "
                f"(mode {stat.S_IMODE(st.st_mode):04o})")
    return None


_SEAL = b"symsched-sha256:"


def seal(body: bytes) -> bytes:
    """``body`` behind a first line holding its SHA-256, so that any later change of a byte is detected by
    :func:`unseal` (corruption, truncation, an edit by hand; not a defence against the cache's owner)."""
    return _SEAL + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


def unseal(data: bytes) -> Optional[bytes]:
    """The body of a :func:`seal`-ed entry, or None if its first line is not the SHA-256 of the rest."""
    head, sep, body = data.partition(b"\n")
    if not sep or head != _SEAL + hashlib.sha256(body).hexdigest().encode("ascii"):
        return None
    return body


class UnsafeEntry(Exception):
    """A cache entry that must not be read; the message says why."""


def read_entry(path: Path, max_bytes: int = MAX_ENTRY_BYTES) -> Optional[bytes]:
    """The bytes of the entry at ``path``, or None if it does not exist.

    Raises :class:`UnsafeEntry` unless it is a regular file (opened without following a symlink or blocking
    on a FIFO) owned by the current user, not writable by group or others, of at most ``max_bytes``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnsafeEntry(f"entry {str(path)!r} cannot be opened ({exc.strerror}; a symlink?)") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeEntry(f"entry {str(path)!r} is not a regular file")
        if st.st_uid != os.geteuid():
            raise UnsafeEntry(f"entry {str(path)!r} is owned by uid {st.st_uid}, not by the current user")
        if st.st_mode & 0o022:
            raise UnsafeEntry(f"entry {str(path)!r} is writable by group or others")
        if st.st_size > max_bytes:
            raise UnsafeEntry(f"entry {str(path)!r} is larger than {max_bytes} bytes")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise UnsafeEntry(f"entry {str(path)!r} is larger than {max_bytes} bytes")
        return data
    except OSError as exc:
        raise UnsafeEntry(f"entry {str(path)!r} cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def write_entry(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` (whatever it was: a FIFO or a symlink is replaced, never followed or written
    through) with a 0600 file holding ``data`` (a temporary file in the same directory, renamed into place)."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)  # (mkstemp creates it 0600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def source_digest(label: str, dists: Sequence[str], pkg: Path, files: Iterable[Path]) -> str:
    """20 hex digits of SHA-256 over ``label``, the installed versions of ``dists`` (``none`` when missing)
    and the relative path and bytes of every file (under the package directory ``pkg``), in order."""
    import hashlib
    import importlib.metadata

    digest = hashlib.sha256(label.encode())
    for dist in dists:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "none"
        digest.update(f";{dist}={version}".encode())
    for path in files:
        digest.update(path.relative_to(pkg).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _resolve(path: Path, uid: int) -> tuple[Path, Optional[str]]:
    """``os.path.realpath(path)`` (``path`` absolute), resolved one component at a time so that every symlink on the
    way is seen: (the path, None), or (path, why) for a link owned by neither root nor ``uid`` (as the kernel's
    ``fs.protected_symlinks`` refuses for a link planted in a sticky directory such as /tmp; realpath followed it)."""
    todo, cur, hops = list(path.parts[1:]), Path(path.anchor or "/"), 0
    while todo:
        name = todo.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            cur = cur.parent
            continue
        nxt = cur / name
        try:
            st = os.lstat(nxt)
        except (FileNotFoundError, NotADirectoryError):  # the rest does not exist yet: trusted_dir creates it
            return Path(os.path.normpath(nxt.joinpath(*todo))), None
        if not stat.S_ISLNK(st.st_mode):
            cur = nxt
            continue
        if st.st_uid not in (0, uid):
            return nxt, f"{str(nxt)!r} is a symlink owned by another user (uid {st.st_uid})"
        hops += 1
        if hops > 40:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", str(path))
        target = Path(os.readlink(nxt))
        if target.is_absolute():
            cur = Path(target.anchor)
        todo = list(target.parts[1:] if target.is_absolute() else target.parts) + todo
    return cur, None


def trusted_dir(directory: Path, warn: Callable[[str], None]) -> Optional[Path]:
    """``directory`` (under :func:`cache_root`, created 0700 where missing) if it and its ancestors are safe,
    else None after ``warn(reason)``: the cache root and every directory below it must be directories owned
    by the current user with owner rwx and no group/other write; the root's ancestors must be owned by root
    or the current user and not group/other-writable unless sticky (like /tmp)."""
    uid = os.geteuid() if hasattr(os, "geteuid") else -1
    if uid < 0:  # pragma: no cover - no POSIX ownership to check: do not cache on disk
        return None
    try:
        given = cache_root()
        rel = directory.relative_to(given)
    except (NoCacheLocation, ValueError):  # the environment changed since ``directory`` was named
        warn(f"cannot use {str(directory)!r} (the cache location changed while it was in use)")
        return None
    try:
        root, problem = _resolve(given, uid)
    except OSError as exc:
        warn(f"cannot use {str(directory)!r} ({exc.strerror or exc})")
        return None
    if problem:
        warn(problem)
        return None
    directory = root / rel
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
                warn(problem)
                return None
    except OSError as exc:
        warn(f"cannot use {str(directory)!r} ({exc.strerror or exc})")
        return None
    return directory


class DataCache:
    """JSON entries under ``<cache root>/<namespace>/<fingerprint()>/<key>.json``.

    ``fingerprint()`` returns the hash of what determines the values; ``key_field`` names the entry
    field holding the key; ``warning`` is the class of the one warning an unsafe directory gives;
    ``instead`` says what happens then (e.g. "the derivations are rendered instead").
    """

    def __init__(self, namespace: str, fmt: int, fingerprint: Callable[[], str], warning: type[Warning],
                 instead: str, key_field: str = "key") -> None:
        self.namespace, self.format, self.fingerprint = namespace, fmt, fingerprint
        self.warning, self.instead, self.key_field = warning, instead, key_field
        self.warned: set[str] = set()

    def cache_dir(self) -> Optional[Path]:
        """Directory of the entries, or None when the disk cache is disabled or has no location (one warning)."""
        return None if disabled() else cache_subdir(self.namespace, self.fingerprint(), warn=self._warn)

    def _warn(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            warnings.warn(f"symsched {self.namespace} cache: {message}; {self.instead} "
                          "(set SYMSCHED_CACHE_DIR to a private directory, or SYMSCHED_DISK_CACHE=0)",
                          self.warning, stacklevel=5)

    def check(self) -> Optional[Path]:
        """The entry directory if the cache is enabled and safe (created 0700), else None (one warning if unsafe)."""
        directory = self.cache_dir()
        return None if directory is None else trusted_dir(directory, self._warn)

    def entry_path(self, key: str) -> Optional[Path]:
        """Path of the entry for ``key`` (``[a-z0-9_]``, at most 64), or None (disabled, unsafe, bad key)."""
        directory = self.check() if _KEY.match(key) else None
        return None if directory is None else directory / f"{key}.json"

    def read(self, path: Path, key: str, valid: Callable[[dict[str, Any]], bool]) -> Optional[dict[str, Any]]:
        """The entry at ``path`` if it is safe, current, for ``key`` and ``valid``; else None."""
        try:
            data = read_entry(path)
        except UnsafeEntry as exc:  # not read; the value is computed, and store() replaces the entry
            self._warn(f"{exc}; it was not read, and a value computed again replaces it by a private 0600 file "
                       "where the cache is writable")
            return None
        data = None if data is None else unseal(data)
        if data is None:
            return None
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            return None
        if (not isinstance(doc, dict) or type(doc.get("format")) is not int or doc.get("format") != self.format
                or doc.get("fingerprint") != self.fingerprint() or doc.get(self.key_field) != key):
            return None
        try:
            return doc if valid(doc) else None
        except (TypeError, ValueError, KeyError, AttributeError):
            return None

    def lookup(self, key: str, valid: Callable[[dict[str, Any]], bool]) -> Optional[dict[str, Any]]:
        """The valid entry for ``key``, or None (nothing is computed)."""
        path = self.entry_path(key)
        return None if path is None else self.read(path, key, valid)

    def store(self, key: str, payload: dict[str, Any], path: Optional[Path] = None) -> None:
        """Write ``payload`` (JSON-able) as the entry for ``key``; silently skipped when it cannot be."""
        path = path or self.entry_path(key)
        if path is None:
            return
        doc = {**payload, "format": self.format, "fingerprint": self.fingerprint(), self.key_field: key}
        try:
            body = (json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
            write_entry(path, seal(body))  # a planted link or FIFO is replaced, never written through
        except OSError:  # read-only file system etc.: the computed value is still returned
            pass

    def cached(self, key: str, compute: Callable[[], dict[str, Any]],
               valid: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The entry for ``key`` if a valid one exists, else ``compute()`` (a payload dict), stored."""
        path = self.entry_path(key)
        if path is not None:
            doc = self.read(path, key, valid)
            if doc is not None:
                return doc
        payload = compute()
        self.store(key, payload, path)
        return payload
