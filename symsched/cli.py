"""``symsched`` command-line interface.

Each sub-command lives in ``symsched/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
``argparse.Namespace`` and returning an exit code.

Errors are handled here, once, for every sub-command: a usage error or any failure caused by the
user's input (a bad value, a file that cannot be read or written, a truncated ``.npy``, a request
that does not fit in memory) prints **one line** naming the option and exits with code 2; ``--debug``
(before or after the sub-command, or ``SYMSCHED_DEBUG=1``) prints the traceback before that line, with the same
exit code. Any other exception is a bug: one line asking for a report, exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, Sequence

# One line per sub-command module (in the order `symsched --help` lists them).
COMMANDS: tuple[str, ...] = (
    "latex",
    "transfer",
    "validate",
    "optimize",
    "report",
    "sde_table",
    "explain",
    "probe",
    "train_demo",
)

#: exit code of a usage error or a failure caused by the user's input
EXIT_USAGE = 2
#: exit code of an unexpected internal error
EXIT_INTERNAL = 1


def _wrapper(width: int, indent: str = "") -> Any:
    """A ``textwrap.TextWrapper`` that breaks lines at spaces, and after a comma inside a long comma list
    (``optimised-w2,optimised-kl,...``), never inside a word: a word longer than the line overflows it."""
    import textwrap

    class Wrapper(textwrap.TextWrapper):
        def _split(self, text: str) -> list[str]:
            return [piece for chunk in super()._split(text) for piece in re.split(r"(?<=,)(?=\S)", chunk)]

    return Wrapper(width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False,
                   break_long_words=False)


class _Formatter(argparse.HelpFormatter):
    """argparse's help, wrapped at spaces (and after a comma of a long list) only: a value such as
    ``builtin:natural-patches``, ``final_sigmas_type=sigma_min`` or a default list ``linear-trailing,linear-leading`` is
    never split inside a word (copied from the help, it would be wrong; audits of 6 December)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _wrapper(width).wrap(self._whitespace_matcher.sub(" ", text).strip())

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return _wrapper(width, indent).fill(self._whitespace_matcher.sub(" ", text).strip())


#: an option with more choices than this shows a metavar in the usage and lists them in its help, wrapped (the
#: 19 samplers made one line of 270 characters)
_MAX_INLINE_CHOICES = 6


#: a word that is a negative number's value, not an option: ``-5``, ``-.5``, ``-1e-3``, ``-5,10``, ``-inf``, ``-NaN``,
#: ``-Infinity,none`` (float() reads inf, infinity and nan in any case)
_NEGATIVE_NUMBER = re.compile(r"^-(?:\.?\d|(?:inf(?:inity)?|nan)(?:,|$))", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (no usage dump) with exit code 2, wraps its help at spaces,
    and reads a value that looks like a negative number (``-1e-3``, ``-5,10``, ``-0.1,none``, and ``-inf``,
    ``-nan``, ``-Infinity`` in any case, alone or first in a comma list) as the value of the option before it:
    argparse took those for an unknown option ("expected one argument"), since its own test knows only ``-5`` and
    ``-0.5`` (audits of 6 December); symsched has no option that starts with a digit, inf or nan."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _non_empty(convert: Optional[Callable[[str], Any]]) -> Callable[[str], Any]:
    """Wrap an option's type so that an empty value is a usage error (an empty path would mean '.')."""

    def check(text: str) -> Any:
        if isinstance(text, str) and not text.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        return text if convert is None else convert(text)

    check.__name__ = getattr(convert, "__name__", "str")  # argparse names the type in its messages
    return check


class _StoreOnce(argparse._StoreAction):
    """An option that takes one value: given twice, a usage error (the second silently replaced the first: ``--steps 3
    --steps 4`` ran K = 4, a second ``--out`` wrote only there; break-test of 7 December)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        seen = namespace.__dict__.setdefault("_seen_options", set())
        if self.dest in seen:
            parser.error(f"{option_string or self.dest} given twice: give it once")
        seen.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


def _harden(p: argparse.ArgumentParser) -> None:
    """Add --debug, refuse empty option values, repeated single-value options and abbreviated option names (``--sp``
    was read as ``--spectrum``; a later option would change what an abbreviation means), and record option names
    for error messages."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback of an error")
    p.allow_abbrev = False
    options = {}
    for action in p._actions:
        if not action.option_strings:
            continue
        options[action.dest] = max(action.option_strings, key=len)
        if type(action) is argparse._StoreAction:
            action.__class__ = _StoreOnce
        if action.nargs != 0:
            action.type = _non_empty(action.type)
        if action.choices is not None and len(action.choices) > _MAX_INLINE_CHOICES and action.metavar is None:
            action.metavar = action.dest.upper()
            action.help = f"{action.help or ''} (one of: {', '.join(map(str, action.choices))})".lstrip()
    p.set_defaults(_options=options)


def build_parser() -> argparse.ArgumentParser:
    from symsched import __version__

    parser = _Parser(
        prog="symsched",
        allow_abbrev=False,
        description="Spectral transfer functions of diffusion samplers: derive, verify, optimise.",
        epilog="Errors print one line and exit with code 2; add --debug for the traceback.",
    )
    parser.add_argument("--version", action="version", version=f"symsched {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"symsched.commands.{name}")
        module.register(sub)
    for p in {id(p): p for p in sub.choices.values()}.values():
        _harden(p)
    return parser


def _same_or_under(path: Path, root: Path) -> int:
    """2 if ``path`` is ``root``, 1 if it lies under it, else 0 (lexically, on absolute paths)."""
    if path == root:
        return 2
    return 1 if root in path.parents else 0


def _option_for(filename: Any, args: argparse.Namespace) -> Optional[str]:
    """The option whose path value is ``filename``, contains it (an output folder) or lies under it."""
    if not filename:
        return None
    target = Path(os.path.abspath(os.fspath(filename)))
    best, score = None, 0
    for dest, option in getattr(args, "_options", {}).items():
        value = getattr(args, dest, None)
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            continue
        path = Path(os.path.abspath(os.fspath(value)))
        s = max(2 * _same_or_under(target, path), _same_or_under(path, target))  # 4, 2 or 2, 1
        if s > score:
            best, score = option, s
    return best


#: API argument names that a command's option carries under another name
_ALIASES = {"n_samples": "samples", "n_jobs": "jobs", "divergence": "divergences", "schedule": "schedules",
            "n_points": "nfe", "n_evals": "nfe", "num_train_timesteps": "grid", "shape": "resolutions",
            "source": "spectrum", "sizes": "nfe", "eps_values": "eps"}
_LEADING_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)")
#: a message led by the arguments at fault: "beta_min, beta_max: beta(t) must be positive ..."
_LEADING_NAMES = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:, [A-Za-z_][A-Za-z0-9_]*)*):")
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"")
#: phrases that name the argument at fault inside a message: "has no setting 'variance'", "weights has shape"
_NAMED = (re.compile(r"has no setting '([A-Za-z_][A-Za-z0-9_]*)'"), re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*) has shape\b"))
#: an argument quoted with its value inside a message ("fewer than steps=1001"): the last resort
_ASSIGNED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(?!=)")


def _dest_option(name: str, options: dict[str, str]) -> Optional[str]:
    """The option of the command for an API argument ``name`` (itself, an alias, or its plural), or None."""
    for dest in (name, _ALIASES.get(name), name + "s"):
        if dest in options and dest not in ("help", "debug"):
            return options[dest]
    return None


def _name_option(message: str, args: argparse.Namespace) -> str:
    """:func:`_blame` (the message led by the option it is about), saying so when that option was not on the command
    line (``args._given``: the words given): its default is what the message is about, and the user's fix usually lies
    in an option they did give ("--eps: eps must satisfy 0 <= eps < T (--eps was not given: the message is about its
    default)")."""
    text, option = _blame(message, args)
    given = getattr(args, "_given", None)
    if option is None or given is None or _was_given(option, given):
        return text
    return f"{text} ({option} was not given: the message is about its default)"


def _was_given(option: str, words: Sequence[str]) -> bool:
    """Whether ``option`` (e.g. ``--eps``) is among ``words``, also as ``--eps=...`` (or a word it starts with: the
    parser refuses abbreviations, so such a word never ran; counted as given, the note is left out)."""
    heads = (w.split("=", 1)[0] for w in words if w.startswith("--") and len(w) > 2)
    return any(option.startswith(h) for h in heads)


def _blame(message: str, args: argparse.Namespace) -> tuple[str, Optional[str]]:
    """(the ValueError message prefixed with the option it is about, that option or None).

    The API names its argument (``"steps must be at most 10000"``, ``"sampler 'ddim' has no setting
    'variance'"``, ``"weights has shape (3,) but ..."``); on the command line that is an option
    (``--steps``). In order: a quoted path that is an option's value (a spectrum file that cannot be
    used), an argument named at fault inside the message, the leading argument names (``"beta_min, beta_max:"``,
    when each is an option) or name, the first argument
    written with its value (``"fewer than steps=1001"``). Messages that
    already name an option of the command, or name no known argument, are left as they are.
    """
    options: dict[str, str] = getattr(args, "_options", {})
    if any(opt in message for opt in options.values() if opt not in ("--help", "--debug")):
        return message, None
    option = None
    for quoted in _QUOTED.finditer(message):
        text = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
        if os.sep in text or os.path.exists(text):
            option = _option_for(text, args)
            if option:
                break
    for pattern in _NAMED:
        if option is None:
            named = pattern.search(message)
            option = _dest_option(named.group(1), options) if named else None
    names = _LEADING_NAMES.match(message) if option is None else None
    named = [_dest_option(n, options) for n in names.group(1).split(", ")] if names else []
    if named and all(named):  # "beta_min, beta_max: ..." -> "--beta-min, --beta-max: ...", each name an option
        return ", ".join(o for o in named if o) + message[names.end() - 1 :], None
    if option is None:
        lead = _LEADING_NAME.match(message)
        option = _dest_option(lead.group(1), options) if lead else None
        if option and message[lead.end() : lead.end() + 1] == ":":  # "spectrum: ..." -> "--spectrum: ...", not both
            return option + message[lead.end() :], option
    for assigned in _ASSIGNED.finditer(message) if option is None else ():
        option = _dest_option(assigned.group(1), options)
        if option:
            break
    return (f"{option}: {message}", option) if option else (message, None)


def describe_error(exc: BaseException, args: argparse.Namespace) -> tuple[str, int]:
    """(one-line message, exit code) for an exception raised by a sub-command."""
    if isinstance(exc, OSError):
        option = _option_for(exc.filename, args)
        reason = exc.strerror or str(exc)
        if exc.filename:
            text = f"{option + ' ' if option else ''}{str(exc.filename)!r}: {reason}"
        else:
            text = reason
        return text, EXIT_USAGE
    if isinstance(exc, ValueError):  # bad values and types (ArgumentTypeError is both)
        return _name_option(str(exc), args), EXIT_USAGE
    if isinstance(exc, EOFError):
        return f"an input file ended unexpectedly ({exc})", EXIT_USAGE
    if isinstance(exc, MemoryError):
        sizes = _size_options(args)
        return ((f"{', '.join(sizes)}: " if sizes else "") + "out of memory: the inputs ask for more memory than is "
                f"available ({exc or 'reduce the sizes'})"), EXIT_USAGE
    if isinstance(exc, ArithmeticError):
        return f"numeric error: {exc}", EXIT_USAGE
    if type(exc).__name__ in ("BrokenProcessPool", "TerminatedWorkerError"):  # concurrent.futures, joblib (loky)
        return ("a worker process ended abruptly (killed by a signal, e.g. SIGTERM or the out-of-memory killer); "
                "nothing was published: run again, or with --jobs 0 for one process"), EXIT_INTERNAL
    return (f"internal error ({type(exc).__name__}: {exc}); please report it, with the traceback that "
            "--debug shows"), EXIT_INTERNAL


#: options that size a command's work (arrays, samples, images): named by an out-of-memory error
_SIZE_OPTIONS = ("spectrum", "shape", "samples", "reference_samples", "batch_size", "steps", "resolutions",
                 "image_resolutions", "images", "nfe")


def _size_options(args: argparse.Namespace) -> list[str]:
    """``--option value`` of every size option given on the command line (break-test of 7 December: "out of memory"
    named none, though ``--shape 8192x8192 --samples 100`` asked for it)."""
    options: dict[str, str] = getattr(args, "_options", {})
    words = list(getattr(args, "_given", ()))
    out = []
    for dest in (d for d in _SIZE_OPTIONS if d in options):
        opt = options[dest]
        for i, w in enumerate(words):  # as typed: "--shape 8192x8192" (the parsed value may be a tuple)
            if w == opt and i + 1 < len(words):
                out.append(f"{opt} {words[i + 1]}")
            elif w.startswith(opt + "="):
                out.append(f"{opt} {w.split('=', 1)[1]}")
    return out


#: commands whose --out is a folder (every other --out is a file)
_FOLDER_OUTPUTS = {"explain", "latex", "probe", "report", "train_demo", "train-demo"}


#: options whose value is a path the command writes (a file, or a folder for --out of _FOLDER_OUTPUTS)
_OUTPUT_OPTIONS = ("out", "plot")


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse an unwritable --out or --plot before the command runs (not after minutes of work)."""
    from ._io import check_output

    options: dict[str, str] = getattr(args, "_options", {})
    for dest in _OUTPUT_OPTIONS:
        path = getattr(args, dest, None)
        if isinstance(path, (str, os.PathLike)) and os.fspath(path).strip():
            _check_not_an_input(dest, path, args, options)
            check_output(path, directory=dest == "out" and args.command in _FOLDER_OUTPUTS)


#: options whose string value may name a file or folder the command reads (every option of type Path does too)
_INPUT_PATH_OPTIONS = ("spectrum", "model", "grid")


def _check_not_an_input(dest: str, path: Any, args: argparse.Namespace, options: dict[str, str]) -> None:
    """ValueError when an output option names the same file as another path option (an input, or the other
    output): writing it would overwrite that input, or the two outputs would clash. Only options that take paths
    are compared (``--sampler ddim --out ddim`` is fine)."""
    from ._io import check_apart

    for other, option in options.items():
        value = getattr(args, other, None)
        if other == dest or not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
            continue
        is_path = isinstance(value, os.PathLike) or other in _INPUT_PATH_OPTIONS or other in _OUTPUT_OPTIONS
        if not is_path or os.fspath(value).startswith("builtin:"):
            continue
        check_apart(path, options.get(dest, "--" + dest), value, option, inside=other not in _OUTPUT_OPTIONS)


def _signals_as_interrupts(received: list[int]) -> Optional[dict[int, Any]]:
    """SIGINT (Ctrl-C) and SIGTERM (``kill``, ``timeout``) raise KeyboardInterrupt (:class:`_Terminated` for SIGTERM)
    so that a command's cleanup runs (staging folders, half-written temporary files), and are recorded in
    ``received``: an interrupt that surfaces as another exception (a KeyboardInterrupt inside a C extension's
    import becomes ``ImportError: initialization failed``) is still reported as an interrupt. Returns the previous
    handlers, or None where no handler can be set (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    pid = os.getpid()

    def interrupt(signum: int, frame: Any) -> None:
        if os.getpid() != pid and signum == signal.SIGTERM:  # a forked worker: SIGTERM ends it as by default
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        received.append(signum)
        raise _Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    # a signal ignored at start stays ignored (a background job of a script: Ctrl-C at the terminal ended it, as
    # plain python does not; break-test of 7 December)
    return {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)
            if signal.getsignal(s) is not signal.SIG_IGN}


class _Terminated(KeyboardInterrupt):
    """SIGTERM as an interrupt (the same cleanup); the command exits 143 = 128 + SIGTERM, as a shell reports it."""


def _interrupted(command: str, signum: int) -> int:
    term = signum == signal.SIGTERM
    print(f"symsched{' ' + command if command else ''}: {'terminated' if term else 'interrupted'}", file=sys.stderr)
    return 128 + int(signum)


class _ClosedPipeSafe:
    """``sys.stdout`` for a command: once its reader is gone (``symsched sde-table ... | head``), further output is
    dropped instead of raising BrokenPipeError, so the command still writes its files and ends normally. Any other
    failure to write it (``> /dev/full``, an I/O error) is kept in ``error`` and the rest of the output dropped too:
    the command still writes its files, then :func:`main` reports the failure (:func:`_stdout_failed`)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.broken = False
        self.error: Optional[OSError] = None

    def _guard(self, call: Callable[[], Any]) -> None:
        if self.broken:
            return
        try:
            call()
        except OSError as exc:
            self.broken = True
            if not isinstance(exc, BrokenPipeError):
                self.error = exc

    def write(self, text: str) -> int:
        self._guard(lambda: self._put(text))
        return len(text)

    def _put(self, text: str) -> None:
        try:
            self._stream.write(text)
        except UnicodeEncodeError:  # a file name that is no text (b"P\xff.npy", held as surrogates), or a character
            enc = getattr(self._stream, "encoding", None) or "utf-8"  # the terminal lacks: escaped, as stderr does
            self._stream.write(text.encode(enc, "backslashreplace").decode(enc))

    def flush(self) -> None:
        self._guard(self._stream.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _stdout_failed(command: str, stdout: _ClosedPipeSafe,
                   lost: str = "the command ran to the end and wrote its files; what it printed was lost"
                   ) -> Optional[int]:
    """Exit code 2 with one line on stderr when the command's standard output could not be written (after the
    command ran to the end: its files are written), else None."""
    stdout.flush()
    if stdout.error is None:
        return None
    reason = stdout.error.strerror or str(stdout.error)
    print(f"symsched{' ' + command if command else ''}: error: standard output: {reason} ({lost})", file=sys.stderr)
    return EXIT_USAGE


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """``parser.parse_known_args(argv)``; where it prints ``--help`` or ``--version`` and exits 0, a standard output
    that could not take them (``> /dev/full``: argparse drops the error) exits 2 with one line instead."""
    stdout = sys.stdout
    wrapped = None if stdout is None else _ClosedPipeSafe(stdout)
    sys.stdout = wrapped  # type: ignore[assignment]
    try:
        return parser.parse_known_args(argv)
    except SystemExit as exc:
        if exc.code in (0, None) and wrapped is not None:
            code = _stdout_failed("", wrapped, "what --help or --version printed was lost")
            if code:
                raise SystemExit(code) from None
        raise
    finally:
        sys.stdout = stdout


def _extras_parser(parser: argparse.ArgumentParser, command: Optional[str], argv: list[str], extra: list[str]
                   ) -> argparse.ArgumentParser:
    """The parser that was given the unrecognised ``extra``: subcommand ``command``'s when they all follow it in
    ``argv``, else the top-level ``parser`` (``symsched --bogus latex``)."""
    after = argv[argv.index(command) + 1:] if command in argv else []
    if all(e in after for e in extra):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                return action.choices[command]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    received: list[int] = []
    previous = _signals_as_interrupts(received)  # first: building the parser imports NumPy, SciPy and the commands
    try:
        try:
            parser = build_parser()
        except (KeyboardInterrupt, Exception):  # (an interrupt inside an import may surface as ImportError)
            if not received or "--debug" in words or os.environ.get("SYMSCHED_DEBUG", "") not in ("", "0"):
                raise
            return _interrupted(_command_named(words), received[-1])
        return _main(parser, words, received)
    finally:
        if previous is not None:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _command_named(argv: Sequence[str]) -> str:
    """The sub-command ``argv`` names (its first word that is one), or "" (for a message before parsing)."""
    names = {c.replace("_", "-") for c in COMMANDS}
    return next((a for a in argv if a in names), "")


def _main(parser: argparse.ArgumentParser, words: list[str], received: list[int]) -> int:
    """:func:`main` once the parser is built: ``words`` are the arguments (``sys.argv[1:]`` by default)."""
    args, extra = _parse(parser, words)
    args._given = tuple(words)  # which options the user gave (an error about one left at its default says so)
    if extra:  # named by the parser that was given them ("symsched transfer: error: ..."), as its own errors are
        _extras_parser(parser, getattr(args, "command", None), words, extra).error(
            f"unrecognized arguments: {' '.join(extra)}")
    debug = bool(getattr(args, "debug", False)) or os.environ.get("SYMSCHED_DEBUG", "") not in ("", "0")
    if sys.stdout is None:  # started with `>&-`: nothing could be printed, and a file opened now could take its place
        print(f"symsched {args.command}: error: standard output is closed; redirect it instead (e.g. > /dev/null)",
              file=sys.stderr)
        return EXIT_USAGE
    stdout, formatwarning = sys.stdout, warnings.formatwarning
    sys.stdout = wrapped = _ClosedPipeSafe(stdout)  # type: ignore[assignment]
    if not debug:
        warnings.formatwarning = _warning_line(args.command, formatwarning)
    try:
        _check_outputs(args)
        code = int(args.func(args) or 0)
        return _stdout_failed(args.command, wrapped) or code
    except KeyboardInterrupt as exc:
        if debug:
            raise
        return _interrupted(args.command, signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT)
    except Exception as exc:
        if received and not debug:  # the interrupt surfaced as another exception: it is still the user's interrupt
            return _interrupted(args.command, received[-1])
        message, code = describe_error(exc, args)
        if debug:  # the traceback, then the same line and exit code as without --debug (scripts see no difference)
            traceback.print_exc(file=sys.stderr)
        message = " ".join(message.split())  # exactly one line
        print(f"symsched {args.command}: error: {message}", file=sys.stderr)
        return code
    finally:
        sys.stdout, warnings.formatwarning = stdout, formatwarning


def _warning_line(command: str, default: Callable[..., str]) -> Callable[..., str]:
    """``warnings.formatwarning`` for a command: a UserWarning (symsched's own and its caches') as one line,
    ``symsched <command>: warning: <message>``, like the errors; other categories as Python formats them (``--debug``
    keeps Python's format for all)."""
    def line(message: Any, category: type[Warning], filename: str, lineno: int, text: Optional[str] = None) -> str:
        if issubclass(category, UserWarning):
            return f"symsched {command}: warning: {' '.join(str(message).split())}\n"
        return default(message, category, filename, lineno, text)

    return line


def console_main() -> None:
    """The ``symsched`` script and ``python -m symsched``: :func:`main`, then the interpreter's shutdown (joblib's
    workers are joined there) ends quietly on a late Ctrl-C or SIGTERM: the command's output is complete, so the
    process exits 128 + signal at once instead of printing a traceback from the shutdown; and a reader of its
    standard output that left early (``| head``) costs no error message."""
    code = main()

    def leave(signum: int, frame: Any) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, leave)
    # output left in the buffer for a reader that is gone, or that a full disk refused (main reported it): dropped
    # (Python's recipe for a closed pipe), so that the interpreter's exit does not report it again
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console_main()
