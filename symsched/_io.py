"""Small, safe file helpers: atomic writes that keep the target's mode, and pickle-free loading.

Every failure about a path raises an :class:`OSError` whose ``filename`` is the path the caller
asked for (not a temporary file), or a :class:`ValueError` naming the argument, so the CLI can turn
it into one line that names the option.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["output_file", "check_output", "check_apart", "check_not_a_folder",
           "check_suffix", "atomic_write", "atomic_write_text", "atomic_write_bytes",
           "save_npy", "load_npy", "staged_folder", "signals_deferred", "check_kind"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_target(path: Path) -> Optional[os.stat_result]:
    """Refuse a target that cannot be a file; return the status of an existing regular file (else None)."""
    if path.name in ("", ".", ".."):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None  # a parent is a file: reported below
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
        if stat.S_ISREG(st.st_mode):
            return st
        raise OSError(errno.EINVAL, "exists and is not a regular file", str(path))
    for parent in path.parents:  # the nearest existing ancestor must be a directory
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{str(parent)!r} is a file, not a directory", str(path))
            break
    return None


def output_file(example: str) -> Callable[[str], Path]:
    """argparse type of an output *file* whose usual name is ``example`` (``"psd.npy"``): a path that ends in a
    separator names a folder (``results/``, which ``Path`` would silently turn into a file called ``results``) and
    is a usage error whose hint is a file in that folder (``results/psd.npy``)."""
    import argparse

    def file_path(text: str) -> Path:
        if text.endswith(("/", os.sep)) or (os.altsep and text.endswith(os.altsep)):
            raise argparse.ArgumentTypeError(f"{text!r} names a folder (it ends in {text[-1]!r}), not a file: give a "
                                             f"file name, e.g. {text}{example}")
        return Path(text)

    return file_path


def check_output(path: PathLike, *, directory: bool = False) -> None:
    """Fail early, before any work, if ``path`` cannot be written: a file target that is a directory
    or not a regular file, a folder target that is a file, or a nearest existing ancestor that is a
    file or not writable (OSError with ``filename`` = ``path``)."""
    path = Path(path)
    if directory:
        _check_link(path)
        if path.exists() and not path.is_dir():
            what = "is a file, not a directory" if path.is_file() else \
                "exists and is not a directory (a FIFO, socket or device)"
            raise NotADirectoryError(errno.ENOTDIR, what, str(path))
        real = path
    else:  # a link to a file is written through (atomic_write): the folder that matters is its target's
        real = path
        if path.is_symlink():
            real = Path(os.path.realpath(path))
            _check_file_link(path, real)
        try:
            _check_target(real)
        except OSError as exc:
            raise _renamed(exc, str(path)) from None
    for parent in ([real] if directory else []) + list(real.parents):
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{str(parent)!r} is a file, not a directory", str(path))
            if not os.access(parent, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            _probe(parent, path)
            return


def _same_path(a: PathLike, b: PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare the absolute paths
        return os.path.abspath(os.fspath(a)) == os.path.abspath(os.fspath(b))


def _inside_folder(path: PathLike, folder: PathLike) -> bool:
    """Whether ``path`` lies below the existing folder ``folder`` (symbolic links resolved)."""
    if not os.path.isdir(folder):
        return False
    inner, outer = os.path.realpath(path), os.path.realpath(folder)
    return inner != outer and os.path.commonpath([inner, outer]) == outer


def check_not_a_folder(path: PathLike, name: str, example: str) -> None:
    """ValueError naming ``name`` when the file path ``path`` is an existing folder (its write would be an
    IsADirectoryError naming no argument); ``example`` is a file name to suggest in it (``plot.png``)."""
    if os.path.isdir(path):
        raise ValueError(f"{name} {os.fspath(path)!r} is a folder, not a file: give a file name, e.g. "
                         f"{os.path.join(os.fspath(path), example)}")


def check_apart(out: PathLike, out_name: str, source: PathLike, source_name: str, *, inside: bool = True) -> None:
    """ValueError naming both when the output ``out`` is the path ``source`` (writing it would overwrite that input,
    or clash with that other output) or, with ``inside``, lies inside the folder ``source`` that is read (the output
    would change that input: an image folder would read its own figures next time). The command line's checks of
    ``--out`` / ``--plot`` and the Python API's of ``out`` (``explain``) both go through here."""
    if _same_path(out, source):
        raise ValueError(f"{out_name} {os.fspath(out)!r} is also the {source_name} path: the output would overwrite "
                         "it; choose another path")
    if inside and _inside_folder(out, source):
        raise ValueError(f"{out_name} {os.fspath(out)!r} lies inside the {source_name} folder {os.fspath(source)!r}, "
                         "which is read as input: the output would change (or overwrite a file of) that input; choose "
                         "a path outside it")


def _check_file_link(path: Path, real: Path) -> None:
    """Refuse a file target that is a symbolic link which cannot be written through: a loop, or a link to a file
    whose folder does not exist (writing through would create folders wherever the link points: shell redirection
    refuses it too). A link to a missing file in an existing folder is written through, creating that file."""
    if path.exists() or real.parent.is_dir():
        try:
            os.stat(path)
        except FileNotFoundError:
            return
        except OSError as exc:  # ELOOP
            raise OSError(exc.errno, f"is a symbolic link that cannot be followed ({exc.strerror}): remove the link or "
                          "choose another path", str(path)) from None
        return
    raise FileNotFoundError(errno.ENOENT, f"is a dangling symbolic link (to {os.readlink(path)!r}, whose folder does "
                            "not exist): create that folder, remove the link, or choose another path", str(path))


def _check_link(path: Path) -> None:
    """Refuse a folder target that is a symbolic link to nothing (a missing target, or a loop): the finished folder
    could only replace the link itself, so it is refused before any work (OSError with ``filename`` = ``path``). A
    link to an existing folder is written through, as a link to a file is."""
    if path.is_symlink() and not path.exists():
        try:
            os.stat(path)
            why = "which cannot be reached"
        except OSError as exc:  # ENOENT, or ELOOP for a loop of links
            why = "which does not exist" if exc.errno == errno.ENOENT else f"which cannot be reached: {exc.strerror}"
        raise FileNotFoundError(errno.ENOENT, f"is a dangling symbolic link (to {os.readlink(path)!r}, {why}): create "
                                "that folder, remove the link, or choose another path", str(path))


#: file-name suffixes that name a format, and the format
_FORMATS = {".npy": "a NumPy array", ".npz": "a NumPy archive", ".json": "JSON text", ".tex": "LaTeX",
            ".md": "Markdown", ".html": "HTML", ".htm": "HTML", ".csv": "CSV", ".safetensors": "a weight file",
            **{s: "an image" for s in (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".eps", ".ps", ".tif", ".tiff",
                                        ".gif", ".bmp", ".webp")},
            # what a k-diffusion or diffusers user loads sigmas or weights from (audit of 5 December: JSON text was
            # written under sigmas.pt, which torch.load cannot read)
            # (.yaml/.yml are left out: JSON is YAML; .bin names no one format)
            **{s: "a PyTorch file" for s in (".pt", ".pth", ".ckpt")},
            ".pkl": "a pickle", ".pickle": "a pickle", ".h5": "an HDF5 file", ".hdf5": "an HDF5 file",
            ".mat": "a MATLAB file", ".toml": "TOML", ".xml": "XML"}


#: suffixes of plain text: fine for the text formats written (JSON, LaTeX), a misname for a binary one
_TEXT = (".txt", ".text")
_BINARY = (".npy", ".npz", ".safetensors")


def check_suffix(path: PathLike, option: str, writes: str) -> None:
    """ValueError naming ``option`` when the file name's suffix names another format than the one written
    (``writes``, a suffix such as ".json"): JSON text under ``schedule.png``, a NumPy array under ``P.npz`` or
    ``P.txt``. A suffix that names no format (``.dat``, none), or plain text for a text format, is left to the user."""
    suffix = Path(path).suffix.lower()
    named = "plain text" if suffix in _TEXT and writes in _BINARY else _FORMATS.get(suffix)
    if named is not None and named != _FORMATS[writes]:
        raise ValueError(f"{option} {os.fspath(path)!r}: this writes {_FORMATS[writes]}, which a {suffix} file name "
                         f"would misname (it names {named}); use a {writes} name")


def _probe(directory: Path, path: Path) -> None:
    """Create and remove an empty temporary file in ``directory``: what ``os.access`` cannot tell (a read-only
    or pseudo file system such as /proc, a full quota, root's permission bypass) fails here, before any work."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".symsched-probe.", dir=directory)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    os.unlink(tmp)


def _take_over(new: PathLike, old: Optional[os.stat_result]) -> None:
    """Give the file ``new``, about to replace a file of status ``old`` (None: no file), that file's permissions: its
    mode without set-user/group-ID bits, and (best effort: always as root, the group when the writer belongs to it) its
    owner and group, so that whoever could read the old file reads the new one; without ``old`` the file gets
    ``0666 & ~umask``."""
    if old is not None and hasattr(os, "chown") and hasattr(os, "geteuid"):  # (POSIX only)
        if os.geteuid() == 0 and old.st_uid != os.geteuid():
            with contextlib.suppress(OSError):
                os.chown(new, old.st_uid, -1)
        if old.st_gid != os.stat(new).st_gid:
            with contextlib.suppress(OSError):
                os.chown(new, -1, old.st_gid)
    # (after chown, which may clear set-id bits; they are never carried over: new contents are no program the owner
    # vetted, as a write() by anyone but root clears them too)
    os.chmod(new, stat.S_IMODE(old.st_mode) & ~(stat.S_ISUID | stat.S_ISGID) if old is not None else 0o666 & ~_umask())


def atomic_write(path: PathLike, writer: Callable[[str], None], *, suffix: str = "",
                 mode: Optional[int] = None, follow_symlinks: bool = True) -> Path:
    """Call ``writer(tmp_path)`` and rename the temporary file onto ``path`` (atomic on POSIX).

    The file gets ``mode`` if given, else the mode of the file it replaces (a 0600 file stays
    0600) and, as far as the writer may set them, its owner and group (:func:`_take_over`), else the usual
    ``0666 & ~umask``. Missing parent directories are created. A ``path`` that is a
    symbolic link is written through: the file it names is replaced (as its mode is the one kept), the link stays;
    with ``follow_symlinks=False`` (the caches: a planted link must not redirect a write) the link is replaced.
    """
    import secrets

    path = Path(path)
    shown = str(path)  # errors name the path given (a link, not the file it names: what the user can match)
    linked = follow_symlinks and path.is_symlink()
    if linked:
        path = Path(os.path.realpath(path))
    try:
        if linked:
            _check_file_link(Path(shown), path)  # (no folders are created where a link points)
        old = _check_target(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _renamed(exc, shown) from None
    # the temporary name is known before the file exists, so an interrupt at any point is cleaned up below
    tmp = str(path.parent / _temporary_name(path.name, f".{secrets.token_hex(8)}{suffix or path.suffix}"))
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        writer(tmp)
        if mode is not None:  # (the caches: their own mode, never another owner's group)
            os.chmod(tmp, mode)
        else:
            _take_over(tmp, old)
        os.replace(tmp, path)
    except BaseException as exc:
        if not (isinstance(exc, FileExistsError) and exc.filename == tmp):  # never remove another's file
            with contextlib.suppress(OSError):  # (not there, or never creatable: the first error is the one)
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename in (tmp, None, str(path)):
            raise _renamed(exc, shown) from None
        raise
    return path


def _renamed(exc: OSError, name: str) -> OSError:
    """``exc`` naming ``name``; one without an error number (NumPy's "4000 requested and 496 written" on a full
    disk) keeps its words as the reason (rebuilt from its number, it read "[Errno None] None")."""
    if exc.errno is None:
        new = type(exc)(str(exc))
        new.strerror, new.filename = str(exc), name
        return new
    return type(exc)(exc.errno, exc.strerror or str(exc), name)


#: the longest file name most file systems take (NAME_MAX); a temporary name stays within it
_NAME_MAX = 255


def _temporary_name(name: str, tail: str) -> str:
    """``.{name}{tail}``, the target's own name shortened (in UTF-8 bytes) so that the whole fits NAME_MAX: a valid
    234-255-byte output name otherwise failed after the work, its temporary name 22 bytes too long."""
    room = _NAME_MAX - 1 - len(tail.encode())
    raw = os.fsencode(name)  # (a name that is no UTF-8, e.g. b"P\xff.npy", is held as surrogates: its own bytes)
    if len(raw) > room:  # a UTF-8 name loses the character cut in half; any other keeps its bytes
        name = raw[:room].decode("utf-8", errors="ignore") if _is_utf8(raw) else os.fsdecode(raw[:room])
    return f".{name}{tail}"


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def atomic_write_text(path: PathLike, text: str, *, mode: Optional[int] = None, follow_symlinks: bool = True) -> Path:
    def _w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)

    return atomic_write(path, _w, mode=mode, follow_symlinks=follow_symlinks)


def json_ready(x: Any) -> Any:
    """``x`` with NumPy scalars and arrays as Python numbers and lists, and every non-finite float as the string
    ``"inf"``, ``"-inf"`` or ``"nan"``: strict JSON (RFC 8259 has no Infinity), as every JSON file symsched writes."""
    if isinstance(x, np.ndarray):
        return json_ready(x.tolist())
    if isinstance(x, (np.generic,)):
        x = x.item()
        if isinstance(x, np.floating):  # np.longdouble's item() is itself: to the nearest float64 (or inf)
            x = float(x)
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v) for v in x]
    return x


def atomic_write_json(path: PathLike, doc: Any, *, indent: Optional[int] = 2) -> Path:
    """Write ``doc`` as strict JSON (:func:`json_ready`), atomically, keeping the target's permissions."""
    import json

    return atomic_write_text(path, json.dumps(json_ready(doc), indent=indent, allow_nan=False) + "\n")


def atomic_write_bytes(path: PathLike, data: bytes, *, mode: Optional[int] = None,
                       follow_symlinks: bool = True) -> Path:
    def _w(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return atomic_write(path, _w, mode=mode, follow_symlinks=follow_symlinks)


def save_npy(path: PathLike, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` in .npy format, atomically, without pickle."""

    def _w(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)

    return atomic_write(path, _w, suffix=".npy")


_KIND_NAMES = {"b": "boolean", "c": "complex", "U": "string", "S": "bytes", "O": "object", "V": "structured",
               "M": "datetime", "m": "timedelta", "i": "integer", "u": "unsigned integer", "f": "floating-point"}


def _short(shape: tuple[int, ...]) -> str:
    """A header shape for a message, cut to 80 characters (a hostile one can be as long as the header)."""
    text = str(shape)
    return text if len(text) <= 80 else text[:77] + "..."


def _npy_header(fh, where: str) -> tuple[tuple[int, ...], np.dtype]:  # type: ignore[no-untyped-def]
    """Shape and dtype from a .npy header, checked against the bytes that follow it."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):  # 3.0 differs only in a UTF-8 header (field names of structured dtypes,
            shape, _, dtype = fmt.read_array_header_2_0(fh)  # refused below): a plain array's header is ASCII
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        size = os.fstat(fh.fileno()).st_size
        what = "is empty" if size == 0 else f"is not a valid .npy file ({exc})"
        raise ValueError(f"{where} {what}") from None
    if dtype.hasobject:
        raise ValueError(f"{where} is not a plain numeric .npy array: it holds Python objects, and symsched "
                         "never unpickles")
    # a hostile header's shape, e.g. (0, 10**30): zero bytes, so no size check catches it, but NumPy cannot build it
    # (OverflowError, or a RuntimeWarning then ValueError); every length and the byte count must fit an index
    big = int(np.iinfo(np.intp).max)
    if (any(d < 0 or d > big for d in shape)
            or math.prod(d or 1 for d in shape) * dtype.itemsize > big):
        raise ValueError(f"{where} is not a valid .npy file (impossible header shape {_short(shape)})")
    need = math.prod(shape) * dtype.itemsize
    have = os.fstat(fh.fileno()).st_size - fh.tell()
    if have < need:
        raise ValueError(
            f"{where} is truncated or corrupt: its header claims shape {shape} of {dtype} "
            f"({need} bytes) but only {have} bytes follow"
        )
    return shape, dtype


#: what a .npy spectrum must hold (every command's --spectrum and load_spectrum say the same)
SPECTRUM_NPY = ("mode variances (a .npy spectrum must hold floating-point values; estimate one from images with psd2d "
                "/ colour_eigen_psd first)")


def load_spectrum_npy(path: PathLike, name: str = "--spectrum") -> np.ndarray:
    """A .npy spectrum: :func:`load_npy` of floating-point values only (an integer array is no PSD estimate)."""
    return load_npy(path, name, kinds="f", expected=SPECTRUM_NPY)


def load_npy(path: PathLike, name: str = "file", *, kinds: str = "iuf", expected: str = "real numbers") -> np.ndarray:
    """Load a .npy array of real numbers; never unpickles.

    The header is read first: an empty or truncated file, a header that claims more data than the
    file holds (no huge allocation), object arrays, and dtypes whose kind is not in ``kinds``
    (default integers and floats: booleans, complex numbers and strings are refused; the message says
    ``expected``) raise a ValueError naming ``name``.
    """
    p = Path(path)
    where = f"{name} {str(p)!r}"
    if p.is_dir():
        raise ValueError(f"{where} is a folder; a .npy file is expected here")
    if not p.is_file():
        raise ValueError(f"{where} does not exist or is not a regular file")
    try:
        with open(p, "rb") as fh:
            _, dtype = _npy_header(fh, where)
            if dtype.kind not in kinds:
                kind = _KIND_NAMES.get(dtype.kind, str(dtype))
                article = "an" if kind[0] in "aeiou" else "a"
                raise ValueError(f"{where} holds {article} {kind} array ({dtype}); expected {expected}")
            fh.seek(0)
            arr = np.load(fh, allow_pickle=False)
    except (ValueError, EOFError, OverflowError) as exc:  # OverflowError: a header NumPy cannot represent
        msg = str(exc)
        raise ValueError(msg if msg.startswith(where) else f"{where} is not a valid .npy file ({msg})") from None
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(p)) from None
    return np.asarray(arr)


# ---------------------------------------------------------------------------------------------
# multi-file outputs: written into a staging folder, then published onto --out
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back for the block (main thread; Python runs signal handlers there): recorded, then
    raised again once the block ends and the previous handlers are back, so a KeyboardInterrupt cannot fall between
    creating a resource and recording it for cleanup. (A thread signal mask would not do: the process's other
    threads would take the signal.)"""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = {s: signal.signal(s, lambda signum, _frame: pending.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(pending):
            signal.raise_signal(s)


@contextlib.contextmanager
def staged_folder(out: PathLike, what: str = "the command") -> Iterator[Path]:
    """A new empty hidden folder next to ``out`` (same file system) to write a multi-file output into; when the
    block ends normally its files are published onto ``out`` (:func:`publish`), and on any error or interrupt
    (Ctrl-C, SIGTERM) it is removed: ``out`` is either as it was or holds the whole new output. ``what`` names
    the writer in the refusals of :func:`check_kind` (e.g. "the report")."""
    import shutil

    out = Path(out)
    stage: Optional[Path] = None
    done = False
    try:
        with signals_deferred():  # a Ctrl-C or SIGTERM now lands after the folder is known, so it is removed
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                stage = Path(tempfile.mkdtemp(prefix=_temporary_name(out.name, ".partial-XXXXXXXX")[:-8],
                                              dir=out.parent))  # (mkdtemp adds 8 characters)
            except OSError as exc:
                raise type(exc)(exc.errno, exc.strerror, str(out)) from None
        try:
            yield stage
        except OSError as exc:  # a file written into the stage is named as the file under out it was to become
            raise _naming_target(exc, stage, out) from None
        publish(stage, out, what)
        done = True
    finally:
        if not done and stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


def check_kind(out: Path, target: Path, folder: bool, what: str = "the command") -> None:
    """ValueError naming --out when ``target`` exists as the other kind than ``what`` writes there."""
    if folder and target.exists() and not target.is_dir():
        raise ValueError(f"--out {str(out)!r}: {str(target)!r} is a file where {what} writes a folder; move "
                         "it or choose another --out (nothing was written)")
    if not folder and target.is_dir():
        raise ValueError(f"--out {str(out)!r}: {str(target)!r} is a folder where {what} writes a file; move "
                         "it or choose another --out (nothing was written)")


def _publish_plan(stage: Path, out: Path, what: str) -> list[tuple[Path, Path, Optional[os.stat_result], Path]]:
    """Every move of the finished output onto an existing ``out``: ``(staged file, target, status of the file it
    replaces or None, the target's name under out that errors give)``, checked before anything moves
    (:func:`check_kind`, and each target must be replaceable): a failed publish leaves ``out`` as it was."""
    moves = []
    for root, dirs, files in os.walk(stage):
        target = out / Path(root).relative_to(stage)
        for name in dirs:
            check_kind(out, target / name, True, what)
        for name in files:
            check_kind(out, target / name, False, what)
            shown = dest = target / name
            if dest.is_symlink():  # written through, as atomic_write does: the file it names is replaced
                dest = Path(os.path.realpath(dest))
            try:
                moves.append((Path(root) / name, dest, _check_target(dest), shown))
            except OSError as exc:
                raise _renamed(exc, str(shown)) from None
    return moves


def publish(stage: Path, out: Path, what: str = "the command") -> None:
    """Move a finished output from ``stage`` onto ``out``: one rename when ``out`` does not exist, else file by
    file (each an atomic ``os.replace`` that keeps the permissions of the file it replaces, as :func:`atomic_write`
    does; files of an earlier output that this one does not write are kept), all or none: every file is first
    put next to its target (on its file system: a target reached through a link to another one could not be renamed
    onto) and every file it replaces kept as a hard link, so that a move that fails (a target no rename may
    replace) puts back the ones made before it."""
    import shutil

    try:
        _check_link(out)  # checked up front by the CLI; the link may have changed since
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes it 0700
        if not out.exists():
            try:
                os.replace(stage, out)
                return
            except OSError as exc:  # another writer made out since: published file by file onto it, as below
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not out.is_dir():
                    raise
        _move_all(_prepared(_publish_plan(stage, out, what)))
    except OSError as exc:
        raise _naming_target(exc, stage, out) from None
    shutil.rmtree(stage, ignore_errors=True)


def _prepared(moves: list[tuple[Path, Path, Optional[os.stat_result], Path]]
              ) -> list[tuple[Path, Path, Optional[Path], bool, Path]]:
    """``(file to rename, target, hard link to the file it replaces or None, whether the file is a copy made next to
    its target, the target's name under out)`` for every move, nothing visible yet
    (beyond missing folders): a file whose target lies on another file system is copied next to it first. On any
    failure the copies and links made are removed and the error raised, naming the target under out (not a hidden
    copy or link)."""
    import secrets
    import shutil

    made: list[Path] = []
    out: list[tuple[Path, Path, Optional[Path], bool, Path]] = []
    shown = None
    try:
        for source, target, old, shown in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            copied = os.stat(target.parent).st_dev != os.stat(source).st_dev
            if copied:
                copy = target.parent / _temporary_name(target.name, f".{secrets.token_hex(8)}")
                made.append(copy)
                shutil.copyfile(source, copy)
                source = copy
            keep = None
            if old is not None:
                _take_over(source, old)  # a 0600 file stays 0600 (and keeps its group)
                keep = target.parent / _temporary_name(target.name, f".{secrets.token_hex(8)}.old")
                os.link(target, keep)  # (refused for a file no rename may replace either, e.g. immutable)
                made.append(keep)
            out.append((source, target, keep, copied, shown))
    except BaseException as exc:
        for f in made:
            with contextlib.suppress(OSError):
                os.unlink(f)
        if isinstance(exc, OSError) and shown is not None:
            raise _renamed(exc, str(shown)) from None
        raise
    return out


def _move_all(moves: list[tuple[Path, Path, Optional[Path], bool, Path]]) -> None:
    """Rename every prepared file onto its target; if one fails, put back what the earlier ones replaced (or remove
    what they added) and raise, naming the target under out. The kept links are removed at the end either way."""
    done = 0
    try:
        for source, target, _, _, _ in moves:
            os.replace(source, target)
            done += 1
    except BaseException as exc:
        for source, target, keep, _, _ in moves[:done]:
            with contextlib.suppress(OSError):
                if keep is not None:
                    os.replace(keep, target)
                else:
                    os.unlink(target)
        for source, _, _, copied, _ in moves[done:]:
            if copied:  # a copy made next to its target (the staged files go with the stage)
                with contextlib.suppress(OSError):
                    os.unlink(source)
        if isinstance(exc, OSError):
            raise _renamed(exc, str(moves[done][4])) from None
        raise
    finally:
        for _, _, keep, _, _ in moves:
            if keep is not None:
                with contextlib.suppress(OSError):
                    os.unlink(keep)


def _naming_target(exc: OSError, stage: Path, out: Path) -> OSError:
    """``exc`` naming the target of the failed move (under ``out``), never the hidden staging folder ``stage``,
    which the user never named and which is removed."""
    names = [os.fspath(n) for n in (exc.filename, exc.filename2) if n is not None]
    outside = [n for n in names if n != os.fspath(stage) and Path(stage) not in Path(n).parents]
    inside = [str(out / Path(n).relative_to(stage)) for n in names if Path(stage) in Path(n).parents]
    return _renamed(exc, outside[-1] if outside else inside[-1] if inside else str(out))
