"""Symbolic layer: SymPy derivations of every per-mode formula (no NumPy here).

Public API used by the rest of the package:

- :func:`get_sampler` — a registered sampler's symbolic :class:`Sampler` (its kinds of step as
  linear state-space updates, and its plan);
- :mod:`.compose` — transfer function and output PSD for K symbolic levels;
- :mod:`.divergences` — per-mode KL and W2;
- :mod:`.forward` — forward marginals and the Wiener denoiser;
- :mod:`.angle` — the angle form of deterministic DDIM;
- :mod:`.latex` — rendering.

Importing this package does not import SymPy (the sampler registry and plans are plain Python);
the submodules above do, on first access.
"""

from __future__ import annotations

import dataclasses
import importlib
import numbers
from functools import lru_cache
from typing import Any

from .samplers import FLOW_SAMPLERS, REGISTRY, VE_SAMPLERS, VP_SAMPLERS

__all__ = [
    "get_sampler",
    "kernel_options",
    "sampler_names",
    "sampler_module",
    "Sampler",
    "Step",
    "Update",
    "Entry",
    "REGISTRY",
    "VP_SAMPLERS",
    "VE_SAMPLERS",
    "FLOW_SAMPLERS",
    "angle",
    "compose",
    "divergences",
    "forward",
    "symbols",
    "statespace",
]

_SUBMODULES = ("angle", "compose", "divergences", "forward", "symbols", "statespace", "latex", "sde", "step", "plan")
_CLASSES = {"Sampler": "statespace", "Step": "statespace", "Update": "statespace", "Entry": "statespace"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _CLASSES:
        return getattr(importlib.import_module(f"{__name__}.{_CLASSES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sampler_module(name: str) -> Any:
    """The module of sampler ``name`` (metadata and plan; no SymPy needed)."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"sampler must be one of {tuple(REGISTRY)} (got {name!r})")
    return REGISTRY[name]


def _same_kind(value: Any, choice: Any) -> bool:
    """Whether ``value`` is a single value of the kind of ``choice``: a bool, a str, or a real number that is neither
    (``3 + 0j == 3`` in Python, and an array has no single truth value: both are refused, not compared)."""
    if isinstance(choice, (bool, str)):
        return isinstance(value, type(choice))
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _choices_text(choices: Any) -> str:
    """An option's choices for a message: numbers in increasing order, strings as declared, the default named (the
    first choice, which the declaration order keeps; "2, 1, 3" read as a misprint)."""
    shown = sorted(choices) if all(_same_kind(c, 0.0) for c in choices) else list(choices)
    return f"{', '.join(map(repr, shown))} (default {choices[0]!r})"


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` completed with the defaults of sampler ``name``, each value as the choice it equals (an integer
    option given as 3.0 becomes 3, which the libraries' loops need); ValueError on unknown names or values,
    ArgumentTypeError (a TypeError and a ValueError) on a value of the wrong kind (a bool or string where the
    choices are numbers, or the reverse)."""
    mod = sampler_module(name)
    allowed = getattr(mod, "OPTIONS", {})
    out = {}
    for key, value in options.items():
        if key not in allowed:
            raise ValueError(f"sampler {name!r} has no option {key!r} (options: {tuple(allowed) or 'none'})")
        choices = allowed[key]
        if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()  # NumPy scalars (np.False_, np.int64(3)) as the Python values they hold
        message = f"{key} must be one of {_choices_text(choices)} for sampler {name!r} (got {value!r})"
        if not _same_kind(value, choices[0]):
            from .._validate import ArgumentTypeError  # a TypeError that `except ValueError` also catches

            raise ArgumentTypeError(message)  # a bool for an integer option, a string, complex or array for a number...
        if value not in choices:
            raise ValueError(message)
        out[key] = choices[list(choices).index(value)]  # the choice itself: 3.0 is stored (and exported) as 3
    for key, choices in allowed.items():
        out.setdefault(key, choices[0])
    return out


def kernel_options(name: str, options: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The options of sampler ``name`` that change its update equations, sorted (the key of its compiled
    kernels): those in its module's ``BUILD_OPTIONS``, or all when it declares none. The others (e.g. a
    multistep solver's order ramp) only change its plan, so they share the kernels."""
    keep = getattr(sampler_module(name), "BUILD_OPTIONS", None)
    return tuple(sorted((k, v) for k, v in options.items() if keep is None or k in keep))


def get_sampler(name: str, variant: str = "", **options: Any) -> Any:
    """The symbolic sampler ``name`` built with ``options`` (structural choices such as DDPM's
    ``variance``, LMS's ``order`` or DPM-Solver's ``solver_type``); ``variant`` is DDPM's variance
    ("posterior" or "beta"), kept for compatibility.

    Parameters
    ----------
    name : str
        One of :func:`sampler_names`.
    variant : str
        DDPM's ``variance`` when ``options`` does not give it; ignored for every other sampler.
    **options
        The sampler's options (its module's ``OPTIONS``), each one of its declared choices; the ones not given take
        their defaults (the first choice).

    Returns
    -------
    Sampler
        Its kinds of step as linear state-space updates and its plan, carrying every option (cached: the same
        object for the same name and options).

    Raises
    ------
    ValueError
        ``name`` not a registered sampler; an option the sampler does not have; an option value not among its
        choices (a bad ``variant`` for DDPM included).
    ArgumentTypeError
        (a TypeError and a ValueError) an option value of the wrong kind (a bool or string where the choices are
        numbers, or the reverse).

    Source: the sampler's module ``symsched/symbolic/samplers/<name>.py`` (which cites the paper or library file its
    update equations follow); its derivation in ``derivations/<name>.tex`` (``ddpm_beta.tex`` for DDPM's ``"beta"``).
    """
    if name == "ddpm" and variant and "variance" not in options:
        options["variance"] = variant
    opts = check_options(name, options)
    return _get_sampler(name, tuple(sorted(opts.items())))


@lru_cache(maxsize=None)
def _get_sampler(name: str, options: tuple[tuple[str, Any], ...]) -> Any:
    """The built sampler, carrying every option: those its build ignores (a multistep solver's ``solver_order``,
    ``lower_order_final``, ``final_sigmas_type``) still choose its plan (:meth:`Sampler.steps_for`)."""
    smp = REGISTRY[name].build(**dict(options))
    plan_only = {k: v for k, v in options if k not in smp.options}
    return dataclasses.replace(smp, options={**smp.options, **plan_only}) if plan_only else smp


def sampler_names() -> tuple[str, ...]:
    """Names of every registered sampler, in registration order (the keys of :data:`REGISTRY`): VP, VE and flow
    samplers alike. Source: ``symsched/symbolic/samplers/__init__.py``."""
    return tuple(REGISTRY)
