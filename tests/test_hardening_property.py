"""Issue 14 property: over the public API, with arbitrary finite float64 spectra and levels, every call
returns finite values or raises ValueError / TypeError whose message names an argument.

Hypothesis is derandomised (tests/conftest.py). Every registered sampler is drawn (VP and flow-matching samplers
on ``alpha_bar``, VE samplers on ``sigmas``) with its library defaults, DDIM's eta and DDPM's variance drawn too.
Three properties, each strict: over the full float64 range a failure is an error naming an argument; over a
moderate range and over the full range every output is finite (KL may be +inf where nothing is generated).
"""

from __future__ import annotations

import math
import re
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import symsched

FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _arrays(elements, max_size: int = 6):
    return hnp.arrays(np.float64, st.integers(1, max_size), elements=elements)


def _sorted_unique(elements, max_size: int = 4, reverse: bool = False):
    return st.lists(elements, min_size=1, max_size=max_size, unique=True).map(
        lambda v: np.array(sorted(v, reverse=reverse), dtype=np.float64))


def _levels(unit, anything, max_size: int = 4):
    """Valid levels most of the time, arbitrary floats (mostly invalid) otherwise."""
    return st.one_of(_sorted_unique(unit, max_size), _arrays(anything, max_size))


def _sigmas(positive, anything, max_size: int = 4):
    return st.one_of(_sorted_unique(positive, max_size, reverse=True), _arrays(anything, max_size))


FULL_UNIT = st.floats(min_value=0.0, max_value=1.0, exclude_min=True, exclude_max=True)
FULL_POS = st.floats(min_value=0.0, max_value=1.7e308, exclude_min=True)
FULL_S = _arrays(st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1.7e308), FINITE))

MOD_UNIT = st.floats(min_value=1e-6, max_value=1 - 1e-6)
MOD_POS = st.floats(min_value=1e-3, max_value=1e3)
MOD_ANY = st.one_of(st.floats(-1e3, -1e-3), st.just(0.0), st.floats(1e-3, 1e3))
MOD_S = _arrays(st.one_of(st.just(0.0), st.floats(min_value=1e-20, max_value=1e20)))

VP = dict(sampler=st.sampled_from(symsched.VP_SAMPLERS + symsched.FLOW_SAMPLERS), init=st.sampled_from(["white", "exact"]),
          variance=st.sampled_from(["posterior", "beta"]))
VE = dict(sampler=st.sampled_from(symsched.VE_SAMPLERS), init=st.sampled_from(["white", "exact"]))

#: public function -> (call(S, levels, kwargs), the names its messages may use)
CALLS = {
    "output_spectrum": (lambda S, L, kw: symsched.output_spectrum(S, L, **kw), "vp"),
    "transfer_function": (lambda S, L, kw: symsched.transfer_function(
        S, L, **{k: v for k, v in kw.items() if k != "init"}), "vp"),
    "divergence_and_grad": (lambda S, L, kw: symsched.divergence_and_grad(S, L, **kw), "vp"),
    "output_spectrum_ve": (lambda S, L, kw: symsched.output_spectrum_ve(S, L, **kw), "ve"),
    "transfer_function_ve": (lambda S, L, kw: symsched.transfer_function_ve(S, L, sampler=kw["sampler"]), "ve"),
    "divergence_and_grad_ve": (lambda S, L, kw: symsched.divergence_and_grad_ve(S, L, **kw), "ve"),
}
NAMES = ("spectrum", "alpha_bar", "sigmas", "sampler", "eta", "variance", "init", "divergence", "weights", "p", "q")


def _names_an_argument(message: str) -> bool:
    return any(re.search(rf"(^|[^\w]){re.escape(n)}([^\w]|$)", message) for n in NAMES)


def _values(out) -> np.ndarray:
    if isinstance(out, tuple):
        return np.concatenate([np.atleast_1d(np.asarray(o, dtype=np.float64)).ravel() for o in out])
    return np.asarray(out, dtype=np.float64).ravel()


def _call(name: str, S, L, kw, *, check_finite: bool) -> None:
    fn, _ = CALLS[name]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = fn(S, L, kw)
    except (ValueError, TypeError) as exc:
        assert _names_an_argument(str(exc)), f"{name}: {exc!r}"
        return
    if check_finite:
        v = _values(out)
        if name.startswith("divergence_and_grad") and kw["divergence"] != "w2" and v[0] == np.inf:
            # KL is +inf, rightly, where a mode with data variance gets none (a one-level schedule at
            # alpha_bar = 0 generates nothing): the value is +inf, never NaN, and the gradient finite
            v = v[1:]
        assert np.all(np.isfinite(v)), f"{name}(S={S!r}, levels={L!r}, {kw}) -> {out!r}"


def _kwargs(draw, family: str, eta) -> dict:
    kw = {k: draw(s) for k, s in (VP if family == "vp" else VE).items()}
    if family == "vp":
        if kw["sampler"] == "ddim":
            kw["eta"] = draw(eta)
        if kw["sampler"] != "ddpm":
            kw.pop("variance")
    return kw


def _property(name: str, S_strategy, unit, positive, anything, eta, check_finite: bool, examples: int):
    family = CALLS[name][1]
    levels = _levels(unit, anything) if family == "vp" else _sigmas(positive, anything)

    @settings(max_examples=examples)
    @given(S=S_strategy, L=levels, data=st.data())
    def run(S, L, data) -> None:
        kw = _kwargs(data.draw, family, eta)
        if name.startswith("divergence_and_grad"):
            kw["divergence"] = data.draw(st.sampled_from(["kl", "kl-reverse", "w2"]))
        _call(name, S, L, kw, check_finite=check_finite)

    run()


@pytest.mark.parametrize("name", list(CALLS))
def test_errors_name_an_argument_over_the_float64_range(name) -> None:
    """Full range: whatever the inputs, a failure is a ValueError/TypeError that names an argument."""
    _property(name, FULL_S, FULL_UNIT, FULL_POS, FINITE, FINITE, check_finite=False, examples=150)


@pytest.mark.parametrize("name", list(CALLS))
def test_outputs_are_finite_in_the_moderate_range(name) -> None:
    """S in {0} u [1e-20, 1e20], alpha_bar in [1e-6, 1 - 1e-6], sigmas in [1e-3, 1e3]: finite or a named error."""
    _property(name, MOD_S, MOD_UNIT, MOD_POS, MOD_ANY, st.floats(0.0, 1.0), check_finite=True, examples=100)


@pytest.mark.parametrize("name", list(CALLS))
def test_outputs_are_finite_over_the_float64_range(name) -> None:
    """Full float64 range: finite (KL may be +inf where nothing is generated) or a named error."""
    _property(name, FULL_S, FULL_UNIT, FULL_POS, FINITE, st.floats(0.0, 1.0), check_finite=True, examples=150)


# ------------------------------------------------------------------------------------ divergences


def _exact(p: np.ndarray, q: np.ndarray, kind: str) -> mpmath.mpf:
    with mpmath.workdps(40):
        if kind == "w2":
            return mpmath.sqrt(mpmath.fsum((mpmath.sqrt(mpmath.mpf(a)) - mpmath.sqrt(mpmath.mpf(b))) ** 2
                                           for a, b in zip(p, q)))
        total = mpmath.mpf(0)
        for a, b in zip(p, q):
            if a == b:
                continue
            if a == 0 or b == 0:
                return mpmath.inf
            r = mpmath.mpf(a) / mpmath.mpf(b)
            total += (r - 1 - mpmath.log(r)) / 2
        return total


@settings(max_examples=300)
@given(data=st.data(), kind=st.sampled_from(["kl", "w2"]))
def test_divergences_are_finite_unless_the_true_value_overflows(data, kind) -> None:
    n = data.draw(st.integers(1, 5))
    p = data.draw(hnp.arrays(np.float64, n, elements=FINITE))
    q = data.draw(hnp.arrays(np.float64, data.draw(st.sampled_from([n, n, n, n + 1])), elements=FINITE))
    fn = symsched.kl_divergence if kind == "kl" else symsched.w2_distance
    try:
        value = fn(p, q)
    except (ValueError, TypeError) as exc:
        assert re.search(r"(^|[^\w])(p|q)([^\w]|$)", str(exc)), str(exc)
        return
    exact = _exact(p, q, kind)
    big = mpmath.mpf(np.finfo(float).max)
    if exact > big * (1 + 1e-12):
        assert value == math.inf
    elif exact == 0:
        assert value == 0
    else:
        # KL terms near p = q are small differences: absolute accuracy ~ eps per mode
        assert math.isfinite(value) and abs(mpmath.mpf(value) - exact) <= 1e-12 * exact + 2e-15 * n, (p, q, value, exact)
