"""Input validation shared by every public function.

Every rule raises :class:`ValueError` whose message names the argument and the rule broken, so bad
input never turns into a silent NaN further down. An argument of the wrong *type* (``None``, a
string or a boolean where a number is due, a complex or boolean array where real numbers are due,
an array where a name is due) raises :class:`ArgumentTypeError`, which is a :class:`TypeError` (the
Python convention) and also a :class:`ValueError` (so ``except ValueError`` keeps catching every bad
argument, as it did before the distinction was made).

Limits on requested work (module constants, stated in the README and the docstrings): a request
beyond them is refused with a ValueError naming the argument, instead of running until killed.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import numbers
import operator
import re
import sys
from collections.abc import Mapping, Set
from typing import Any, Callable, Iterable, Optional, Sequence, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ArgumentTypeError",
    "MAX_STEPS",
    "MAX_TRAIN_TIMESTEPS",
    "MAX_SAMPLES",
    "MAX_DPS",
    "MAX_MODES",
    "MAX_ITER",
    "MAX_VALUES",
    "MAX_MP_EVALUATIONS",
    "MAX_SAMPLE_WORK",
    "MAX_ENTRIES",
    "MAX_PROJECTIONS",
    "MAX_MMD_SAMPLES",
    "MAX_NDIM",
    "MAX_IMAGES",
    "as_real_array",
    "check_entries",
    "as_choices",
    "as_spectrum",
    "as_levels",
    "as_sigmas",
    "check_choice",
    "check_names",
    "check_eta",
    "as_int",
    "as_axis",
    "as_positive_int",
    "as_step_counts",
    "as_seed",
    "as_bool",
    "as_dps",
    "check_grid_size",
    "check_values",
    "mp_modes",
    "check_sample_work",
    "check_same_shape",
    "as_real",
    "as_positive",
]

#: most levels of one sampling schedule built from a count (K steps, SDE grid points N)
MAX_STEPS = 10_000
#: most timesteps of a training grid (T)
MAX_TRAIN_TIMESTEPS = 100_000
#: most Monte Carlo samples of one call
MAX_SAMPLES = 10_000_000
#: most decimal digits of an mpmath evaluation
MAX_DPS = 1_000
#: most modes of a grid the package allocates from a shape (2**26: one 8192 x 8192 image)
MAX_MODES = 1 << 26
#: most iterations / random restarts of an optimisation
MAX_ITER = 1_000_000
#: most float64 values of one array returned whole (2**30: 8 GiB), e.g. n_samples x modes of a sampler
#: run; larger runs use the batch iterators (``symsched.montecarlo.iter_sample``)
MAX_VALUES = 1 << 30
#: most entries of one list of runs: step counts (``steps``, ``--steps``, ``--nfe``, ``sizes``), resolutions, eps
#: values and every other comma-separated list of the command line (each entry is a run of its own)
MAX_ENTRIES = 100
#: most random directions of a sliced W2 distance (``n_projections``; POT's default is 50)
MAX_PROJECTIONS = 10_000
#: most samples per set of an MMD² (``probe.mmd2``: its cost is O((m + n)^2 d), every pair of samples; 20,000
#: samples of 3 x 32 x 32 values each are about 10^13 flops, a minute or two on two cores)
MAX_MMD_SAMPLES = 20_000
#: most value-steps (n_samples x values per sample x levels) of one Monte Carlo run of symsched.montecarlo
#: (``sample*``, ``iter_sample*``, ``symsched validate``): 2^40 = 1.1e12, about 13 hours at the 2.3e7 value-steps
#: per second measured on a 2-core machine (``symsched validate --samples 10000000 --shape 8192x8192`` asked for
#: 6.7e17, centuries, and ran until killed: break-test of 7 December)
MAX_SAMPLE_WORK = 1 << 40
#: most mode-levels (distinct modes x levels or grid points) of one mpmath evaluation (``output_spectrum_mp``,
#: ``output_spectrum_ve_mp``, ``transfer_function_mp``, ``sde.output_spectrum_mp``): each is a Python-level update
#: at the working precision, run twice or more (confirmed at a higher one); 10^5 took 16 s at dps = 15 on a 2-core
#: machine, 10^6 ran 183 s, and 10^5 at dps = 1000 ran on unbounded (break-test of 7 December)
MAX_MP_EVALUATIONS = 100_000
#: most axes of a ``shape`` argument (NumPy 1.x's own limit; a grid of more axes of size >= 2 would pass MAX_MODES)
MAX_NDIM = 32
#: most images of one set held in memory and resized at every resolution (``insight.image_spectra``, a folder read
#: by ``insight.source_images`` / ``symsched explain``): 10,000 RGB images at 128 x 128 are about 4 GiB of float64
MAX_IMAGES = 10_000


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type; both a TypeError and a ValueError."""


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the first frame outside the symsched package (Python 3.12's
    ``skip_file_prefixes``, by hand): the user's line, however deep inside symsched the warning arises."""
    import os
    import warnings

    pkg = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2  # level 2: warn_caller's caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _show(value: Any) -> str:
    """A short description of ``value`` for an error message."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":  # a plain number: nan, not np.float64(nan)
        value = value.item()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_error(name: str, expected: str, value: Any) -> ArgumentTypeError:
    return ArgumentTypeError(f"{name} must be {expected} (got {_show(value)})")


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


_F = TypeVar("_F", bound=Callable[..., Any])
_NUMPY_DEFAULT_ERRORS = {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"}


def _tamed() -> dict[str, str]:
    """The caller's NumPy error settings with ``"raise"`` and ``"call"`` replaced by NumPy's defaults."""
    return {k: _NUMPY_DEFAULT_ERRORS[k] if v in ("raise", "call") else v for k, v in np.geterr().items()}


def numpy_error_defaults(fn: _F) -> _F:
    """Run ``fn`` with any floating-point error the caller set to ``"raise"`` or ``"call"`` (``np.seterr``) reset to
    NumPy's default for it (warn; underflow ignored): symsched's numerics handle overflow and underflow themselves
    (longdouble, rescaling, named refusals), and their results must not change with a global
    ``np.seterr(all="raise")``. Settings ``"ignore"``/``"warn"``/``"print"``/``"log"`` are kept."""
    if inspect.isgeneratorfunction(fn):  # each step of the iteration, not only the generator's creation
        @functools.wraps(fn)
        def steps(*args: Any, **kwargs: Any) -> Any:
            it = fn(*args, **kwargs)
            while True:
                with np.errstate(**_tamed()):
                    try:
                        value = next(it)
                    except StopIteration as stop:
                        return stop.value
                yield value

        return steps  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(**_tamed()):
            return fn(*args, **kwargs)

    return run  # type: ignore[return-value]


def as_real_array(value: ArrayLike, name: str, *, complex_ok: bool = False) -> NDArray[Any]:
    """``value`` as a float64 array of real numbers (any shape; finiteness is not checked here).

    Refused with :class:`ArgumentTypeError`: ``None``, strings, boolean / complex / string / object
    arrays (a complex array would lose its imaginary part, a boolean one would pass as 0 and 1); with
    ValueError: a masked array with masked entries (the mask would be ignored).
    With ``complex_ok`` a complex array is returned as complex128.
    """
    if value is None or isinstance(value, (str, bytes)):
        raise _type_error(name, "an array of real numbers", value)
    check_range(value, name)
    if isinstance(value, np.ma.MaskedArray) and np.ma.is_masked(value):  # np.asarray would drop the mask
        raise ValueError(f"{name} is a masked array with masked entries, whose mask would be ignored: pass "
                         f"{name}.filled(value) or {name}.compressed()")
    try:
        arr = np.asarray(_detached(value))
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:  # (RuntimeError: an object's own __array__)
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
    kind = arr.dtype.kind
    if kind == "O":
        if not all(isinstance(v, numbers.Real) and not _is_bool(v) for v in arr.flat):
            raise _type_error(name, "an array of real numbers", value)
    elif kind == "b":
        raise _type_error(name, "an array of real numbers, not booleans", arr)
    elif kind == "c":
        if complex_ok:
            return np.asarray(arr, dtype=np.complex128)
        raise _type_error(name, "an array of real numbers, not complex (the imaginary part would be lost)", arr)
    elif kind not in "iuf":
        raise _type_error(name, "an array of real numbers", arr)
    try:
        with np.errstate(over="ignore", under="ignore"):
            out = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name} must be an array of finite real numbers ({exc})") from None
    if kind == "f" and arr.dtype.itemsize > 8:  # longdouble values beyond float64 would become 0 or inf
        if np.any((out == 0) & (arr != 0)):
            raise ValueError(f"{name} holds non-zero values below the float64 range (e.g. "
                             f"{np.min(np.abs(arr[arr != 0]))!s}), which would become 0; symsched computes in float64")
        big = np.isinf(out) & np.isfinite(arr)
        if np.any(big):
            raise ValueError(f"{name} holds finite values beyond the float64 range (e.g. {arr[big].flat[0]!s}), which "
                             "would become inf; symsched computes in float64")
    return out


def refuse_rounded_to_one(value: Any, arr: NDArray[np.float64], name: str, what: str, meaning: str) -> None:
    """ValueError where a longdouble entry of ``value`` other than 1 became 1 in ``arr`` (its float64 copy, from
    :func:`as_real_array`): on the unit interval 1 is an end with its own meaning (``meaning``: alpha_bar = 1 is the
    clean end, flow time t = 1 pure noise, beta = 1 zero terminal SNR), which the conversions would have returned
    silently (break-test of 7 December: ``alpha_bar_to_log_snr(1 - 1e-19)`` in longdouble gave inf, not 43.75)."""
    orig = value if isinstance(value, (np.ndarray, np.generic)) else None
    if orig is None or orig.dtype.kind != "f" or orig.dtype.itemsize <= 8 or not np.any(arr == 1):
        return
    orig = np.asarray(orig)
    rounded = (arr == 1) & (orig != 1)
    if rounded.any():
        v = orig[rounded].flat[0]
        side = f"below 1 that round to 1 in float64 (e.g. 1 - {float(1 - v):.3g})" if v < 1 else \
            f"above 1 that round to 1 in float64 (e.g. 1 + {float(v - 1):.3g})"
        raise ValueError(f"{name} holds {what} {side}, {meaning}; symsched computes in float64")


def _detached(value: Any) -> Any:
    """A torch tensor's values on the host, detached from autograd (``np.asarray`` raises RuntimeError on a tensor
    that requires grad, and on one on a GPU); anything else as given. torch is not imported for this."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return value


def check_range(value: Any, name: str) -> None:
    """ValueError naming ``name`` for a ``range`` of more than MAX_MODES values (the largest array argument symsched
    takes), before NumPy lists it: ``range(1, 10**9)`` costs nothing to pass and 8 GiB to convert."""
    if isinstance(value, range):
        try:
            n: Any = len(value)
        except OverflowError:  # beyond sys.maxsize entries
            n = f"more than {sys.maxsize}"
        if isinstance(n, str) or n > MAX_MODES:
            raise ValueError(f"{name} must hold at most {MAX_MODES} values (symsched._validate.MAX_MODES, the largest "
                             f"array argument; got a range of {n} values)")


def as_spectrum(spectrum: ArrayLike, name: str = "spectrum", what: str = "mode variances S >= 0"
                ) -> NDArray[np.float64]:
    """Return ``spectrum`` as a float64 array of mode variances ``S >= 0`` (any shape, not empty); ``what`` names
    the rule in messages (e.g. ``"per-mode weights >= 0"``)."""
    arr = as_real_array(spectrum, name)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got {_first(arr, ~np.isfinite(arr), name)})")
    if np.any(arr < 0):
        bad = float(arr.min())
        raise ValueError(f"{name} must be non-negative: {what} (minimum is {bad:g})")
    # -0.0 is a valid zero mode; normalise it so that log/sqrt see +0.0 (an array also of shape (): NumPy's
    # scalar arithmetic would return a scalar there, audit of 6 December)
    return np.asarray(arr + 0.0)


def _entry(name: str) -> str:
    """The array's own name in a described one, for naming its entries once: "karras(K=5, rho=2) alpha_bar" and
    "alpha_bar (from the scheduler)" both give "alpha_bar"."""
    bare = re.sub(r"\s*\([^()]*\)$", "", name).strip()
    return bare.split()[-1] if bare.split() else name


def _at(name: str, where: Any) -> str:
    """The entry ``where`` of the array named ``name``: ``alpha_bar[3]``; ``entry [3]`` when the name ends in a
    quoted file name (``spectrum in 'S.npy'``: ``'S.npy'[3]`` would read as an index into the path)."""
    entry = _entry(name)
    return f"entry [{where}]" if entry[:1] in "'\"" and entry else f"{entry}[{where}]"


def _first(arr: np.ndarray, bad: np.ndarray, name: str) -> str:
    """``"name[i] = value"`` for the first entry (flat index for an array of more than one axis) where ``bad``."""
    i = int(np.argmax(bad.ravel()))
    where = str(i) if arr.ndim <= 1 else ", ".join(map(str, np.unravel_index(i, arr.shape)))
    return f"{_at(name, where)} = {float(arr.ravel()[i])!r}"


def as_levels(alpha_bar: ArrayLike, name: str = "alpha_bar", *, allow_zero: bool = True) -> NDArray[np.float64]:
    """Return 1-D strictly increasing noise levels in [0, 1) (``allow_zero``) or (0, 1), noisiest first.

    ``alpha_bar = 0`` (zero terminal SNR, pure noise) can only be the first level.
    """
    arr = as_real_array(alpha_bar, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (got shape {arr.shape})")
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one level")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got {_first(arr, ~np.isfinite(arr), name)})")
    refuse_rounded_to_one(alpha_bar, arr, name, "levels", "the clean end rather than a level")
    if np.any(arr < 0) or np.any(arr >= 1) or (not allow_zero and np.any(arr == 0)):
        interval = "[0, 1)" if allow_zero else "the open interval (0, 1)"
        raise ValueError(
            f"{name} levels must lie in {interval} (got min {arr.min():.17g}, max {arr.max():.17g})"
        )
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        i = int(np.argmin(np.diff(arr)))
        raise ValueError(
            f"{name} must be strictly increasing (noisiest first): "
            f"{_at(name, i)}={float(arr[i])!r} >= {_at(name, i + 1)}={float(arr[i + 1])!r}"
        )
    return arr


def as_sigmas(sigmas: ArrayLike, name: str = "sigmas", *, allow_inf: bool = True,
              allow_trailing_zero: bool = True) -> NDArray[np.float64]:
    """Return 1-D strictly decreasing, positive VE noise levels, noisiest first.

    ``inf`` (zero terminal SNR) is accepted as the first level when ``allow_inf``; a trailing 0 (as
    k-diffusion's ``sigmas`` end) is dropped when ``allow_trailing_zero`` (the step to 0 is implicit).
    """
    arr = as_real_array(sigmas, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (got shape {arr.shape})")
    if allow_trailing_zero and arr.size > 1 and arr[-1] == 0:
        arr = arr[:-1]
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one level")
    inf_rule = ("finite, except that the first (noisiest) level may be inf (zero terminal SNR)" if allow_inf
                else "finite")
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not be NaN ({_first(arr, np.isnan(arr), name)}); the levels are {inf_rule}")
    if np.any(np.isposinf(arr)) and not allow_inf:
        raise ValueError(f"{name} must be {inf_rule} (got {_first(arr, np.isposinf(arr), name)})")
    if arr.size > 1 and np.any(np.isposinf(arr[1:])):
        i = 1 + int(np.argmax(np.isposinf(arr[1:])))
        raise ValueError(f"{name}: only the first (noisiest) level may be inf (zero terminal SNR; got "
                         f"{_at(name, i)} = inf)")
    if np.any(arr < 0):
        raise ValueError(
            f"{name} must be positive (the final step to sigma=0 is implicit; got min {arr.min():g})"
        )
    # the order before the zeros: an ascending array that starts at 0 (k-diffusion's, reversed) is out of order
    if arr.size > 1 and np.any(np.diff(arr) >= 0):
        i = int(np.argmax(np.diff(arr) >= 0))
        raise ValueError(
            f"{name} must be strictly decreasing (noisiest first): "
            f"{_at(name, i)}={float(arr[i])!r} <= {_at(name, i + 1)}={float(arr[i + 1])!r}"
        )
    if np.any(arr == 0):
        end = ", except the last entry, which may be 0 (k-diffusion's end)" if allow_trailing_zero else ""
        raise ValueError(f"{name} must be positive{end}: the final step to sigma=0 is implicit "
                         f"(got {_first(arr, arr == 0, name)})")
    return arr


def renamed(exc: BaseException, old: str, new: str) -> BaseException:
    """``exc`` (same type), its message's leading ``"old:"`` now ``"new:"``: the argument the caller passed, where
    an inner call checked a converted one (``sigmas`` computed from the caller's ``alpha_bar``)."""
    text = str(exc)
    if text.startswith(old + ":"):
        exc.args = (new + text[len(old):],)
    return exc


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of the strings ``choices``; a non-string is an :class:`ArgumentTypeError`."""
    choices = tuple(choices)
    listed = ", ".join(map(repr, choices))
    if not isinstance(value, str):
        raise _type_error(name, f"one of {listed}", value)
    if value not in choices:
        raise ValueError(f"{name} must be one of {listed} (got {value!r})")
    return str(value)


def check_names(mapping: Mapping[Any, Any], name: str) -> None:
    """:class:`ArgumentTypeError` naming ``name`` for a key of ``mapping`` (name -> schedule, or samples) that is not a
    string: names label tables, figures and a baseline by name (1 and "1" would print alike and collide)."""
    for key in mapping:
        if not isinstance(key, str):
            raise ArgumentTypeError(f"{name} must be keyed by schedule names (strings), got the key {_show(key)} of "
                                    f"type {type(key).__name__}")


def as_real(value: Any, name: str) -> float:
    """A finite real number. Booleans, strings (numeric ones too), None, complex numbers and arrays
    of more than one element are :class:`ArgumentTypeError`; NaN and inf are ValueError."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if value is None or _is_bool(value) or isinstance(value, (str, bytes, np.ndarray)):
        raise _type_error(name, "a real number", value)
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise _type_error(name, "a real number, not complex", value)
    try:
        val = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite (got {_show(value)})") from None
    except (TypeError, ValueError):
        raise _type_error(name, "a real number", value) from None
    if not math.isfinite(val):
        raise ValueError(f"{name} must be finite (got {_show(value)})")
    return val


def as_positive(value: Any, name: str) -> float:
    """A finite real number > 0."""
    val = as_real(value, name)
    if val <= 0:
        raise ValueError(f"{name} must be positive (got {_show(value)})")
    return val


def check_eta(eta: Any, name: str = "eta") -> float:
    """DDIM stochasticity: a finite number in [0, 1] (beyond 1 the DDIM direction term is imaginary)."""
    try:
        val = as_real(eta, name)
    except ArgumentTypeError:
        raise ArgumentTypeError(f"{name} must be a number in [0, 1] (got {_show(eta)})") from None
    except ValueError:
        raise ValueError(f"{name} must lie in [0, 1] (got {_show(eta)})") from None
    if val < 0 or val > 1:
        raise ValueError(f"{name} must lie in [0, 1] (got {_show(eta)})")
    return val


def as_int(value: Any, name: str, minimum: Optional[int] = None, maximum: Optional[int] = None,
           *, limit: str = "", rule: Optional[str] = None) -> int:
    """An integer in ``[minimum, maximum]``: a Python or NumPy integer (or an object with ``__index__``).

    Booleans, None, strings, floats (10.0 included: a count is an integer, as ``range(10.0)`` and
    ``np.linspace(0, 1, 10.0)`` refuse it too) and other types are :class:`ArgumentTypeError`; values out of
    range are ValueError. ``limit`` names the module constant behind ``maximum``; ``rule`` replaces the default
    wording of the rule in messages.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    custom_rule = rule is not None
    if rule is None:
        rule = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
    if value is None or _is_bool(value) or isinstance(value, (str, bytes, np.ndarray)):
        raise _type_error(name, rule, value)
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, numbers.Real):  # 10.0, 1.5, NaN: a count is an integer (Python's and NumPy's rule)
        raise _type_error(name, f"{rule}, not a {'float' if isinstance(value, float) else 'non-integer number'}",
                          value)
    else:
        try:
            v = operator.index(value)
        except TypeError:
            raise _type_error(name, rule, value) from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be {rule} (got {_show(value)})")
    if maximum is not None and v > maximum:
        why = f" (symsched._validate.{limit})" if limit else ""
        if custom_rule and not limit:
            raise ValueError(f"{name} must be {rule} (got {_show(value)})")
        raise ValueError(f"{name} must be at most {maximum}{why} (got {_show(value)})")
    return v


def as_axis(value: Any, name: str, ndim: int, of: str) -> int:
    """An axis of an array of ``ndim`` axes (``of`` describes it), in [-ndim, ndim), as :func:`as_int` reads integers
    (a bool is an :class:`ArgumentTypeError`); returned non-negative."""
    return as_int(value, name, -ndim, ndim - 1, rule=f"an axis of {of} in [-{ndim}, {ndim})") % ndim


def as_positive_int(value: Any, name: str, maximum: Optional[int] = None, *, limit: str = "") -> int:
    """An integer >= 1 (see :func:`as_int`)."""
    return as_int(value, name, 1, maximum, limit=limit)


def as_step_counts(values: Any, name: str = "steps", maximum: Optional[int] = None) -> list[int]:
    """Distinct positive integers (each at most ``maximum``), in the order given: one step count or a non-empty
    sequence of at most MAX_ENTRIES of them."""
    if isinstance(values, np.ndarray) and values.ndim == 0:
        values = values[()]  # a 0-d array is a number, as everywhere
    if isinstance(values, numbers.Real) and not _is_bool(values):  # one count (5; 5.0 refused, as as_positive_int)
        return [as_positive_int(values, name, maximum)]
    if isinstance(values, (str, bytes, Mapping, Set)) or not hasattr(values, "__iter__"):
        raise _type_error(name, "a positive integer or a sequence of them", values)
    vals = [as_positive_int(v, f"{name} entries", maximum) for v in check_entries(values, name)]
    if not vals:
        raise ValueError(f"{name} must not be empty")
    if len(set(vals)) != len(vals):
        raise ValueError(f"{name} must not repeat a value (got {vals})")
    return vals


def is_sequence(value: Any) -> bool:
    """True for a collection of entries (list, tuple, array of at least one axis, other iterable); False for a
    string, bytes, a 0-d array (a number) or a scalar. What a ``not a sequence`` error tests."""
    if isinstance(value, (str, bytes)):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    return hasattr(value, "__iter__")


def check_entries(values: Iterable[Any], name: str, *, limit: int = MAX_ENTRIES, limit_name: str = "MAX_ENTRIES",
                  why: str = "each is a run of its own") -> list[Any]:
    """The entries of ``values`` as a list, ValueError naming ``name`` beyond ``limit`` (MAX_ENTRIES) of them (read no
    further: ``range(10**9)`` or ``itertools.count()`` is refused without being listed); ``limit_name`` names the
    module constant and ``why`` the reason in the message."""
    vals = list(itertools.islice(iter(values), limit + 1))
    if len(vals) > limit:
        size = f"{len(values)} values" if hasattr(values, "__len__") else "more values"
        raise ValueError(f"{name} must hold at most {limit} values (symsched._validate.{limit_name}; got "
                         f"{size}): {why}")
    return vals


def as_choices(values: Any, name: str, choices: Iterable[str], *, empty_ok: bool = False) -> list[str]:
    """Distinct names from ``choices``, in the order given: a sequence (any iterable but a mapping or a set) of at
    most MAX_ENTRIES strings. A bare string (``"kl"``: not read as its letters), a non-sequence, a mapping,
    a set or a non-string entry is an :class:`ArgumentTypeError` naming ``name``; an unknown or repeated name, or
    none (unless ``empty_ok``), a ValueError; more than MAX_ENTRIES entries are refused without reading further."""
    choices = tuple(choices)
    listed = ", ".join(map(repr, choices))
    if not is_sequence(values) or isinstance(values, (Mapping, Set)):  # (a str is not a sequence here)
        raise _type_error(name, f"a sequence of names from {listed}", values)
    vals = [check_choice(v, f"{name} entries", choices) for v in
            check_entries(values, name, why="each names a computation of its own")]
    if not vals and not empty_ok:
        raise ValueError(f"{name} must name at least one of {listed}")
    seen = [v for i, v in enumerate(vals) if v in vals[:i]]
    if seen:
        raise ValueError(f"{name} must not repeat a value (got {seen[0]!r} more than once)")
    return vals


def as_seed(seed: Any, name: str = "seed") -> Any:
    """A NumPy seed: None, an integer >= 0, or a Generator / SeedSequence / BitGenerator (passed through)."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator)):
        return seed
    return as_int(seed, name, 0)


def as_bool(value: Any, name: str) -> bool:
    """True or False (a NumPy bool too); anything else, 'no' and 0 included, is :class:`ArgumentTypeError`."""
    if not _is_bool(value):
        raise _type_error(name, "True or False", value)
    return bool(value)


def as_dps(dps: Any, name: str = "dps") -> int:
    """Decimal digits of an mpmath evaluation: an integer in [1, MAX_DPS]."""
    return as_int(dps, name, 1, MAX_DPS, limit="MAX_DPS")


def as_shape(value: Any, name: str = "shape", *, minimum: int = 1, ndims: Optional[Sequence[int]] = None,
             hint: str = "", empty_ok: bool = False) -> tuple[int, ...]:
    """A grid shape: an integer (one axis) or a non-empty sequence of integers >= ``minimum`` (4.5, True or "a"
    refused, not truncated; ``()``, a scalar's, with ``empty_ok``), with a number of axes in ``ndims`` when given
    and at most MAX_MODES modes, checked before anything of this shape is allocated; more than MAX_NDIM axes are
    refused without reading further (``itertools.count(1)`` is no shape). ``hint`` follows the message
    on a wrong number of axes."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    rule = f"an integer or a non-empty sequence of integers >= {minimum}"
    if isinstance(value, numbers.Real) and not _is_bool(value):
        value = (value,)
    if isinstance(value, (str, bytes, Mapping, Set)) or not isinstance(value, Iterable):
        raise _type_error(name, rule, value)
    dims = tuple(check_entries(value, name, limit=MAX_NDIM, limit_name="MAX_NDIM", why="one size per axis"))
    if not dims and not empty_ok:
        raise ValueError(f"{name} must be {rule} (got {_show(value)})")
    if ndims is not None and len(dims) not in ndims:
        axes = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name} must have {axes} axes (got {len(dims)}: {_show(value)}){hint}")
    shape = tuple(as_int(d, f"{name} entries", minimum) for d in dims)
    check_grid_size(shape, name)
    return shape


def check_grid_size(shape: Iterable[int], name: str = "shape") -> None:
    """Refuse a grid of more than MAX_MODES modes before it is allocated."""
    size = math.prod(int(s) for s in shape)
    if size > MAX_MODES:
        raise ValueError(
            f"{name} asks for {size} modes, more than MAX_MODES = {MAX_MODES} (symsched._validate.MAX_MODES)"
        )


def check_values(n_samples: int, shape: Iterable[int], name: str = "n_samples") -> None:
    """Refuse an output of ``n_samples`` arrays of ``shape`` with more than MAX_VALUES values, before it is allocated."""
    per = math.prod(int(s) for s in shape)
    if n_samples * per > MAX_VALUES:
        raise ValueError(
            f"{name} = {n_samples} samples of {per} values each is {n_samples * per} values, more than MAX_VALUES = "
            f"{MAX_VALUES} (8 GiB of float64; symsched._validate.MAX_VALUES) in one array: use fewer samples or "
            "the batch iterators (symsched.montecarlo.iter_sample, iter_sample_ve)"
        )


def check_sample_work(n_samples: int, per_sample: int, n_levels: int, name: str = "n_samples") -> None:
    """Refuse a Monte Carlo run of more than :data:`MAX_SAMPLE_WORK` value-steps before it starts."""
    work = int(n_samples) * int(per_sample) * int(n_levels)
    if work > MAX_SAMPLE_WORK:
        raise ValueError(
            f"{name}: {n_samples} samples of {per_sample} values each over {n_levels} levels is {work:.3g} "
            f"value-steps, more than MAX_SAMPLE_WORK = 2**40 = {MAX_SAMPLE_WORK:.3g} (symsched._validate; about 13 "
            "hours on a 2-core machine) for one Monte Carlo run: use fewer samples, a smaller field or fewer steps"
        )


def mp_modes(S: NDArray[np.float64], n_levels: int, levels: str) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """``(u, inv)``: the distinct modes of the validated spectrum ``S`` (``-0.0`` as 0), each evaluated once by an
    mpmath path, and ``u[inv]`` = ``S.ravel()``; ValueError naming ``spectrum`` beyond :data:`MAX_MP_EVALUATIONS`
    distinct modes x ``n_levels`` (``levels`` names them: "levels", "grid points"), before any work starts."""
    u, inv = np.unique(S.ravel() + 0.0, return_inverse=True)
    if u.size * n_levels > MAX_MP_EVALUATIONS:
        raise ValueError(
            f"spectrum: {u.size} distinct modes x {n_levels} {levels} = {u.size * n_levels} mode-levels, more than "
            f"MAX_MP_EVALUATIONS = {MAX_MP_EVALUATIONS} (symsched._validate) for one mpmath evaluation, which is "
            "meant for a handful of modes: pass fewer modes (the float64 functions take any number)"
        )
    return u, inv.reshape(-1)


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {name_a} has shape {a.shape} but {name_b} has shape {b.shape}")
