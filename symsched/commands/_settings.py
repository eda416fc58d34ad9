"""The sampler flags shared by the commands: ``--eta`` and ``--option`` (``optimize``, ``report``, ``explain``,
``transfer``), and ``--sampler`` with ``--flow`` (``optimize``, ``explain``).

Each command runs the sampler as its library does unless these say otherwise; the values are checked
up front by :func:`symsched.optimize._check_sampler_args` (the API's own rule and message), with a
setting given by ``--option`` named as such.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from typing import Any, Callable, Iterator, Optional


#: the most entries a 3-D spectrum's last axis may have to be read as colour channels (:func:`colour_channels`)
MAX_CHANNELS = 4


def colour_channels(S: Any) -> bool:
    """Whether ``validate`` and ``report`` read the spectrum ``S`` as an (H, W, C) colour spectrum and check its first
    channel: 3-D with 1 <= C <= :data:`MAX_CHANNELS` (what ``load_spectrum`` gives for a folder of colour images and
    the built-in, 32x32x3). A 3-D FFT field is read as one when its last axis has more points; the shape decides, so
    both commands check the same field (a Hermitian test confused a colour spectrum whose last two channels are equal
    with a 3-D field: audit of 6 December)."""
    return getattr(S, "ndim", 0) == 3 and 1 <= S.shape[-1] <= MAX_CHANNELS


def show_progress(args: argparse.Namespace) -> bool:
    """Whether a command draws its progress bar: not with --no-progress, nor when stderr is not a terminal (a log
    file or a pipe would fill with carriage-return frames), as tqdm's ``disable=None`` decides."""
    return not args.no_progress and sys.stderr.isatty()


def real(text: str) -> float:
    """A number of the command line, as ``float(text)``, but a literal that is not zero yet rounds to 0 in float64
    (``1e-400``: below 5e-324) is refused: 0 means something else (a level 0 is pure noise). ValueError naming it;
    as an argparse ``type=`` (argparse then names the option: "invalid real value" for a word)."""
    v = float(text)
    if v == 0.0:
        from decimal import Decimal, InvalidOperation

        try:
            nonzero = Decimal(str(text).strip()) != 0
        except (InvalidOperation, ValueError):
            nonzero = False
        if nonzero:
            raise argparse.ArgumentTypeError(f"{text!r} is not 0 but underflows to 0 in float64 (its magnitude is "
                                             "below 5e-324)")
    return v


def sampler_option(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, value): VALUE read as true/false, an integer, a number (inf allowed) or a word."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"--option must be NAME=VALUE, e.g. s_noise=1.003 (got {text!r})")
    name, value = name.strip(), value.strip()
    if value.lower() in ("true", "false"):
        return name, value.lower() == "true"
    for kind in (int, real):
        try:
            return name, kind(value)
        except argparse.ArgumentTypeError as exc:  # a number that underflows to 0
            raise argparse.ArgumentTypeError(f"{name}: {exc}") from None
        except ValueError:
            pass
    return name, value


def comma_list(text: str, flag: str, convert: Callable[[str], Any], rule: str, *,
               allow_none: bool = False) -> list[Any]:
    """Every comma-separated list of the command line: ``"5,10,20"`` -> ``[convert("5"), ...]``. ValueError naming
    ``flag`` with ``rule`` (e.g. "comma-separated positive integers") for an empty list or item (``"5,"``) or an
    item ``convert`` refuses, for a repeated value and for more than MAX_ENTRIES values (``allow_none``: ``"none"``
    or empty -> [])."""
    t = str(text).strip()
    if allow_none and t.lower() in ("none", ""):
        return []
    from .._validate import check_entries

    items = check_entries([s.strip() for s in t.split(",")], flag)  # each a run of its own: refused before converting
    message = f"{flag} must be {rule} (got {text!r})"
    if not t or any(not s for s in items):
        raise ValueError(f"{flag} must be {rule}, with no empty item (got {text!r})")
    try:
        vals = [convert(s) for s in items]
    except ValueError:
        raise ValueError(message) from None
    if len(set(vals)) != len(vals):
        raise ValueError(f"{flag} must not repeat a value (got {text!r})")
    return vals


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise ValueError(text)
    return v


def positive_ints(text: str, flag: str, *, allow_none: bool = False) -> list[int]:
    """``"5,10,20"`` -> [5, 10, 20] (:func:`comma_list` of positive integers)."""
    return comma_list(text, flag, _positive_int, "comma-separated positive integers", allow_none=allow_none)


def positive_ints_type(text: str) -> list[int]:
    """:func:`positive_ints` as an argparse ``type=`` (argparse names the option in front of the rule)."""
    try:
        return positive_ints(text, "the list")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def reals_type(text: str) -> list[float]:
    """Comma-separated finite real numbers, distinct, as an argparse ``type=`` (:func:`comma_list`)."""

    def finite(s: str) -> float:
        v = real(s)
        if not math.isfinite(v):
            raise ValueError(s)
        return v

    try:
        return comma_list(text, "the list", finite, "comma-separated finite numbers")
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"the list: {exc}") from None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_sampler_arguments(p: argparse.ArgumentParser, *, sampler_help: str, flow_help: str) -> None:
    """Add ``--sampler`` (every registered sampler; default None, see :func:`resolve_sampler`) and ``--flow``."""
    from ..symbolic.samplers import FLOW_SAMPLERS, VE_SAMPLERS, VP_SAMPLERS

    p.add_argument("--sampler", default=None, choices=list(VP_SAMPLERS + VE_SAMPLERS + FLOW_SAMPLERS),
                   help=sampler_help)
    p.add_argument("--flow", action="store_true", help=flow_help)


def resolve_sampler(args: argparse.Namespace) -> str:
    """``--sampler`` as run: given, or ``flow_match_euler`` with ``--flow`` and ``ddim`` without (set on ``args``);
    ValueError for ``--flow`` with a sampler that is not flow matching. A flow-matching ``--sampler`` implies
    ``--flow`` (set on ``args``): every command then treats the model as one (its schedules start at t = 1)."""
    from ..symbolic.samplers import FLOW_SAMPLERS

    if args.sampler is None:
        args.sampler = "flow_match_euler" if args.flow else "ddim"
    elif args.flow and args.sampler not in FLOW_SAMPLERS:
        raise ValueError("--flow runs a flow-matching sampler (flow_match_euler, flow_match_heun), not "
                         f"{args.sampler!r}")
    args.flow = args.sampler in FLOW_SAMPLERS
    return args.sampler


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--eta`` (default: the sampler's own) and the repeatable ``--option NAME=VALUE`` to ``p``."""
    p.add_argument("--eta", default=None, type=real,
                   help="the sampler's eta: DDIM's in [0, 1], or that of k-diffusion's ancestral and SDE samplers "
                   "(default: the sampler's own, 0 for ddim and 1 for k-diffusion)")
    p.add_argument("--option", action="append", default=[], type=sampler_option, metavar="NAME=VALUE",
                   help="another setting of the sampler by its library's name, e.g. --option s_noise=1.003 or "
                   "--option solver_order=3 (repeatable; `python -c \"import symsched; "
                   "print(symsched.sampler_info('dpmsolver_multistep'))\"` lists a sampler's settings)")


#: what --jobs means in every command that has it (joblib's n_jobs, and 0 = in this process)
JOBS_RULE = ("0 = everything in this process, a positive number of worker processes, -1 = one per core, -m = one "
             "per core but m - 1 (joblib's n_jobs)")


def jobs(value: int) -> int:
    """``--jobs`` as a number of worker processes, 0 for none (in this process): a positive count as given, -m as
    joblib counts it, ``max(1, cores + 1 - m)``. ValueError naming --jobs beyond MAX_JOBS in size."""
    import os

    from ..insight.sweep import MAX_JOBS

    if abs(value) > MAX_JOBS:
        raise ValueError(f"--jobs must be {JOBS_RULE}, at most {MAX_JOBS} in size (got {value})")
    return value if value >= 0 else max(1, (os.cpu_count() or 1) + 1 + value)


def add_variance(p: argparse.ArgumentParser) -> None:
    """Add ``--variance {posterior,beta}`` (DDPM's injected variance; default posterior)."""
    p.add_argument("--variance", default="posterior", choices=["posterior", "beta"],
                   help="DDPM variance (--sampler ddpm only; default posterior)")


def add_init(p: argparse.ArgumentParser, ve: bool = True) -> None:
    """Add ``--init {white,exact}`` (the API's ``init``; default white); ``ve``: the command runs VE samplers too."""
    white = "variance 1; VE samplers sigma_max^2" if ve else "variance 1"
    p.add_argument("--init", default="white", choices=["white", "exact"],
                   help=f"the sampler's start: white noise ({white}: what samplers do) or "
                   "the exact noisy marginal of the data (default white)")


def add_max_step_ratio(p: argparse.ArgumentParser) -> None:
    """Add ``--max-step-ratio R`` (``optimize_schedule``'s ``max_step_ratio``; default None: its own default)."""
    p.add_argument("--max-step-ratio", default=None, type=float, metavar="R",
                   help="multistep samplers: no log-SNR step over R times the one before it where the sampler "
                   "extrapolates from it (default 5; inf: the exact-denoiser optimum, which can amplify a learned "
                   "model's error a thousandfold)")


def options(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The --option settings as keywords (ValueError for one given twice or naming a command argument)."""
    import inspect

    from ..insight.explain import explain
    from ..optimize import compare_schedules, optimize_schedule

    reserved = {name for f in (optimize_schedule, compare_schedules, explain)
                for name, par in inspect.signature(f).parameters.items() if par.kind != par.VAR_KEYWORD}
    out: dict[str, Any] = {}
    for name, value in pairs:
        flag = "--" + name.replace("_", "-")
        if name in ("eta", "variance"):
            raise ValueError(f"--option {name}=...: give it as {flag}")
        if name in reserved:
            raise ValueError(f"--option {name}=...: {name} is not a sampler setting (use {flag} if the command has it)")
        if name in out:
            raise ValueError(f"--option {name} given twice")
        out[name] = value
    return out


def check(sampler: str, eta: Optional[float], variance: str, opts: dict[str, Any]) -> None:
    """optimize_schedule's checks of the sampler settings (same messages), made before any work."""
    from ..optimize import _check_sampler_args

    with option_named(opts):
        _check_sampler_args(sampler, eta, variance, opts)


@contextlib.contextmanager
def option_named(opts: dict[str, Any]) -> Iterator[None]:
    """A ValueError about one of the settings ``opts`` given by --option, raised inside, names it as such:
    ``--option order: order must be one of ...``, ``--option eta: sampler 'ddim' has no option 'eta' ...``."""
    try:
        yield
    except ValueError as exc:
        key = next((k for k in opts if str(exc).startswith(f"{k} ") or f"'{k}'" in str(exc)), None)
        if key is None:
            raise
        raise type(exc)(f"--option {key}: {exc}") from None


def settings(args: argparse.Namespace, variance: str = "posterior") -> dict[str, Any]:
    """``args.eta`` and ``args.option`` as checked keywords of the API (``eta`` only when given)."""
    opts = options(args.option)
    check(args.sampler, args.eta, variance, opts)
    return opts if args.eta is None else {"eta": args.eta, **opts}
