"""Signal-space sampler update equations, shared by :mod:`symsched.montecarlo` and :mod:`symsched.probe`.

One function per sampler writes one step of its paper's update on a batch of arrays; the table
:data:`SAMPLERS` maps sampler names to steps, and :func:`run` drives any of them over a schedule.
The denoiser enters only through a small protocol (:class:`Model`):

* ``model.vp(x_t, alpha_bar_t, want) -> [x0_hat or eps_hat for each entry of want]`` in VP
  coordinates ``x_t = sqrt(ab) x0 + sqrt(1 - ab) eps``;
* ``model.ve(x_sigma, sigma) -> D(x_sigma; sigma)``, the denoised estimate in VE (EDM)
  coordinates ``x_sigma = x0 + sigma n``, and ``model.ve_slope(x_sigma, sigma) -> (D, (x_sigma - D)/sigma)``.

The Monte Carlo witness is the case "model = exact Wiener filter" (:class:`symsched.montecarlo`
builds it from the data spectrum); the probe wraps any denoiser ``f(x_t, alpha_bar_t)`` that
returns an epsilon, sample or v prediction (:class:`PredictionModel`). Adding a sampler = one step
function + one :data:`SAMPLERS` entry; a multistep sampler keeps its history in ``state`` (a dict
private to one batch's trajectory).
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import dataclass
from typing import AbstractSet, Any, Callable, Iterator, Literal, Mapping, Protocol, Sequence

import numpy as np
from numpy.typing import NDArray

from ._validate import ArgumentTypeError

__all__ = [
    "Model",
    "PredictionModel",
    "SignalSampler",
    "SAMPLERS",
    "PREDICTIONS",
    "PREDICTION_ALIASES",
    "to_x0_eps",
    "run",
    "NoiseStreams",
    "progress_bar",
]

Array = NDArray[np.float64]
AddNoise = Callable[[Array, float], Array]

#: what a denoiser may return: the noise, the clean sample, or the velocity v = sqrt(ab) eps - sqrt(1-ab) x0
PREDICTIONS: tuple[str, ...] = ("epsilon", "sample", "v")
#: other spellings accepted for :data:`PREDICTIONS` (diffusers' ``prediction_type`` values and short forms)
PREDICTION_ALIASES: dict[str, str] = {"eps": "epsilon", "x0": "sample", "v_prediction": "v"}


class Model(Protocol):
    """What a sampler step needs from a denoiser (see the module docstring). ``eps_native``: its ``eps_hat`` is
    what it computes and ``x0_hat`` is derived by dividing by ``sqrt(alpha_bar)`` (an epsilon-prediction network),
    so a step that can be written either way uses ``eps_hat``."""

    eps_native: bool

    def vp(self, x: Array, alpha_bar: float, want: tuple[str, ...]) -> list[Array]: ...

    def ve(self, x: Array, sigma: float) -> Array: ...

    def ve_slope(self, x: Array, sigma: float) -> tuple[Array, Array]:
        """``(D, d)`` with the ODE slope ``d = (x - D)/sigma``, computed without its cancellation where the model can
        (the Wiener denoiser's ``sigma/(S + sigma^2)`` per mode)."""
        ...


# --------------------------------------------------------------------------------------------
# prediction types
# --------------------------------------------------------------------------------------------
#: below this level an epsilon-prediction's x0 = (x - sqrt(1-ab) eps)/sqrt(ab) magnifies eps's float64 rounding
#: (2^-53) by 1/sqrt(ab) > 1e8: past 1e-8 of x, half of float64's digits (at 1e-32 it reaches x itself)
_EPS_X0_FLOOR = 1e-16


def check_prediction_level(prediction: str, alpha_bar: float, where: str = "") -> None:
    """ValueError when an ``"epsilon"`` model cannot give ``x0_hat`` at level ``alpha_bar``: at 0 (zero terminal SNR)
    or below :data:`_EPS_X0_FLOOR` (:func:`to_x0_eps`). ``where`` (e.g. ``"schedules['a']: "``) starts the message."""
    if prediction != "epsilon" or alpha_bar >= _EPS_X0_FLOOR:
        return
    if not alpha_bar > 0.0:
        raise ValueError(f"{where}prediction='epsilon' cannot give x0_hat at alpha_bar_t = 0 (zero terminal SNR: x_t "
                         "is pure noise, x0 = (x_t - eps)/sqrt(alpha_bar) is 0/0); use a 'v' or 'sample' model there "
                         "or start the schedule at alpha_bar > 0")
    raise ValueError(f"{where}prediction='epsilon' cannot give x0_hat at alpha_bar_t={alpha_bar:.3g}: x0 = (x_t - "
                     "sqrt(1-ab) eps)/sqrt(ab) amplifies the rounding of eps by 1/sqrt(ab) = "
                     f"{alpha_bar ** -0.5:.2g} > 1e8, to more than half of float64's 16 digits; use a "
                     f"'v' or 'sample' model there or start the schedule at alpha_bar >= {_EPS_X0_FLOOR:g}")


def to_x0_eps(prediction: str, x: Array, out: Array, alpha_bar: float) -> tuple[Array, Array]:
    r"""``(x0_hat, eps_hat)`` from a network output, using ``x = sqrt(ab) x0 + sqrt(1-ab) eps``.

    * ``"epsilon"``: ``eps = out``, ``x0 = (x - sqrt(1-ab) eps) / sqrt(ab)``;
    * ``"sample"``: ``x0 = out``, ``eps = (x - sqrt(ab) x0) / sqrt(1-ab)``;
    * ``"v"`` (Salimans & Ho 2022, ``v = sqrt(ab) eps - sqrt(1-ab) x0``):
      ``x0 = sqrt(ab) x - sqrt(1-ab) v``, ``eps = sqrt(1-ab) x + sqrt(ab) v``.

    As diffusers' ``DDIMScheduler.step`` (``scheduling_ddim.py``, step 3). ``ab`` in [0, 1]: at the
    ends only the exact limits are returned (``"v"`` everywhere; ``"sample"`` for ``ab < 1``;
    ``"epsilon"`` for ``ab > 0``). An ε-prediction at ``ab = 0`` (zero terminal SNR: ``x = eps``,
    no signal left) determines no ``x0``, and an ``x0``-prediction at ``ab = 1`` no ``eps``: both
    raise ``ValueError`` rather than divide by zero; so does an ε-prediction below ``ab = 1e-16``, where
    ``1/sqrt(ab) > 1e8`` magnifies the rounding of ``eps`` past half of float64's digits (at 1e-30 a Wiener
    ε-model's output PSD was already 8-22 % off).
    """
    check_prediction_level(prediction, alpha_bar)
    if prediction == "sample" and not alpha_bar < 1.0:
        raise ValueError("prediction='sample' cannot give eps_hat at alpha_bar_t = 1 (no noise: "
                         "eps = (x_t - x0)/sqrt(1 - alpha_bar) is 0/0)")
    a, b = math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)
    if prediction == "epsilon":
        return (x - b * out) / a, out
    if prediction == "sample":
        return out, (x - a * out) / b
    if prediction == "v":
        return a * x - b * out, b * x + a * out
    raise ValueError(f"prediction must be one of {', '.join(map(repr, PREDICTIONS))} (got {prediction!r})")


class PredictionModel:
    """:class:`Model` around ``fn(x_t, alpha_bar_t) -> prediction`` (VP-scaled batch in, same shape out).

    The output is copied to float64 and checked (real, shape of ``x_t``, finite), so a denoiser that
    returns NaN or the wrong shape raises ``ValueError`` naming the level instead of spreading NaN, and
    one that returns a complex or boolean array raises :class:`~symsched._validate.ArgumentTypeError`
    (a ValueError) instead of losing the imaginary part.
    VE steps call it at ``ab = 1/(1+sigma^2)`` (:func:`interior_alpha_bar`) on ``x_sigma / sqrt(1+sigma^2)``.
    The denoiser gets a copy of the batch, so writing into its input changes nothing.
    """

    def __init__(self, fn: Callable[[Array, float], Any], prediction: str, name: str = "denoiser") -> None:
        self.fn = fn
        self.prediction = prediction
        self.eps_native = prediction == "epsilon"
        self.name = name
        self.calls = 0

    def predict(self, x: Array, alpha_bar: float) -> Array:
        self.calls += 1
        raw = self.fn(x.copy(), alpha_bar)  # a copy: a denoiser that writes into its input (x *= c, an in-place
        # ReLU on a tensor sharing the array's memory) must not change the sampler's state
        if hasattr(raw, "detach"):  # a torch tensor slipped through; float16/bfloat16 (no NumPy twin) as float64
            raw = raw.detach().cpu()
            if getattr(raw, "is_floating_point", lambda: False)():
                raw = raw.double()
            raw = raw.numpy()
        kind = getattr(getattr(raw, "dtype", None), "kind", None)  # a NumPy array (a list is checked as converted)
        if kind is None and isinstance(raw, (list, tuple, complex, bool)):
            try:
                kind = np.asarray(raw).dtype.kind
            except (TypeError, ValueError):  # ragged: refused by the conversion below
                kind = None
        if kind in ("c", "b", "i", "u"):  # (integers: break-test of 7 December, a module returning x.long() ran)
            what = {"c": "complex (the imaginary part would be lost)", "b": "boolean"}.get(
                kind, "integer (a prediction truncated by a cast?)")
            raise ArgumentTypeError(f"{self.name} output must be a real array, not {what} "
                                    f"(at alpha_bar_t={alpha_bar:.6g})")
        try:
            out = np.array(raw, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.name} must return a real array (got {type(raw).__name__}: {exc})") from None
        if out.shape != x.shape:
            raise ValueError(
                f"{self.name} must return an array of the input's shape {x.shape} (got {out.shape} "
                f"at alpha_bar_t={alpha_bar:.6g})"
            )
        if not np.all(np.isfinite(out)):
            raise ValueError(f"{self.name} returned non-finite values (NaN or inf) at alpha_bar_t={alpha_bar:.6g}")
        return out

    def vp(self, x: Array, alpha_bar: float, want: tuple[str, ...]) -> list[Array]:
        out = self.predict(x, alpha_bar)
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            x0, eps = to_x0_eps(self.prediction, x, out, alpha_bar)
        got = [x0 if w == "x0" else eps for w in want]
        for w, v in zip(want, got):
            if not np.all(np.isfinite(v)):
                raise ValueError(
                    f"{self.name}: its {self.prediction!r} output at alpha_bar_t={alpha_bar:.6g} (largest |value| "
                    f"{float(np.max(np.abs(out))):.3g}) gives a non-finite {w}_hat: it overflows float64 in the "
                    "conversion (x = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps)")
        return got

    def ve(self, x: Array, sigma: float) -> Array:
        c = math.hypot(1.0, sigma)  # sqrt(1 + sigma^2): x_VP = x_VE / c
        return self.vp(x / c, interior_alpha_bar(sigma), ("x0",))[0]

    def ve_slope(self, x: Array, sigma: float) -> tuple[Array, Array]:
        D = self.ve(x, sigma)
        return D, (x - D) / sigma  # as k-diffusion's to_d: what a sampler driving this network computes


def interior_alpha_bar(sigma: float) -> float:
    """alpha_bar = 1/(1 + sigma^2) (schedules' one formula), kept inside (0, 1) for 0 < sigma < inf: a level the
    caller gave strictly inside reaches the denoiser strictly inside (1 - 2**-53 round-trips through its sigma to
    1 - 2**-53, not 1.0; sigma above ~6.4e161, where the formula rounds to 0, gives the smallest positive float)."""
    from .schedules import sigma_to_alpha_bar_unchecked

    ab = sigma_to_alpha_bar_unchecked(sigma)
    if sigma > 0.0 and ab >= 1.0:
        return 1.0 - 2.0**-53
    if math.isfinite(sigma) and ab <= 0.0:
        return math.ulp(0.0)
    return ab


# --------------------------------------------------------------------------------------------
# one step of each sampler: (x_t, level_t, level_s) -> x_s
# --------------------------------------------------------------------------------------------
def _one_minus_ratio(a_t: float, a_s: float) -> float:
    """beta = 1 - a_t / a_s without cancellation; exactly 1 from ``a_t = 0`` (zero terminal SNR)."""
    if a_t == 0.0:
        return 1.0
    return -math.expm1(math.log(a_t) - math.log(a_s))


def ddim_step(x: Array, a_t: float, a_s: float, *, model: Model, add_noise: AddNoise, last: bool,
              state: dict[str, Any], eta: float = 0.0) -> Array:
    """DDIM(eta), Song et al. 2021 eq. (12): x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s - s^2) eps_hat + s z.

    ``s^2 = eta^2 (1-a_s)/(1-a_t) (1 - a_t/a_s)``.
    """
    x0_hat, eps_hat = model.vp(x, a_t, ("x0", "eps"))
    sig2 = eta**2 * (1.0 - a_s) / (1.0 - a_t) * _one_minus_ratio(a_t, a_s)
    x0_hat *= math.sqrt(a_s)
    eps_hat *= math.sqrt(max(1.0 - a_s - sig2, 0.0))
    return add_noise(np.add(x0_hat, eps_hat, out=x0_hat), sig2)


def ddpm_step(x: Array, a_t: float, a_s: float, *, model: Model, add_noise: AddNoise, last: bool,
              state: dict[str, Any], variance: str = "posterior") -> Array:
    """DDPM, Ho et al. 2020 Alg. 2: x_s = (x_t - beta/sqrt(1-a_t) eps_hat)/sqrt(1-beta) + sqrt(v) z.

    ``beta = 1 - a_t/a_s``; ``v = (1-a_s)/(1-a_t) beta`` (``"posterior"``) or ``beta``; no noise on the last step.
    The same mean as the posterior mean (Ho et al. eq. 7; diffusers' ``DDPMScheduler.step``)
    ``sqrt(a_s) beta/(1-a_t) x0_hat + sqrt(1-beta)(1-a_s)/(1-a_t) x_t``, which is how it is evaluated unless the
    model is ``eps_native``: at small ``a_t`` the eps form cancels ``x_t`` against ``eps_hat`` (``beta`` ~ 1) and
    then multiplies by ``1/sqrt(a_t)``, losing a sample or v model's ``x0_hat`` entirely below ``a_t`` ~ 1e-32.
    From ``a_t = 0`` (zero terminal SNR: ``beta = 1``) the posterior mean is ``sqrt(a_s) x0_hat``, which an
    epsilon-prediction model cannot give (``ValueError``).
    """
    beta = _one_minus_ratio(a_t, a_s)
    if a_t == 0.0 or not model.eps_native:
        (x0_hat,) = model.vp(x, a_t, ("x0",))
        x0_hat *= math.sqrt(a_s) * beta / (1.0 - a_t)
        x = np.add(x0_hat, (math.sqrt(a_t) / math.sqrt(a_s) * (1.0 - a_s) / (1.0 - a_t)) * x, out=x0_hat)
    else:
        (eps_hat,) = model.vp(x, a_t, ("eps",))
        eps_hat *= beta / math.sqrt(1.0 - a_t)
        x = np.subtract(x, eps_hat, out=eps_hat)
        x *= math.sqrt(a_s) / math.sqrt(a_t)  # 1/sqrt(1 - beta): 1 - beta itself rounds to 0 for a_t < 1e-16 a_s
    noise_var = 0.0 if last else (beta if variance == "beta" else (1.0 - a_s) / (1.0 - a_t) * beta)
    return add_noise(x, noise_var)


def euler_step(x: Array, s_t: float, s_s: float, *, model: Model, add_noise: AddNoise, last: bool,
               state: dict[str, Any]) -> Array:
    """VE Euler = VE DDIM, Karras et al. 2022 Alg. 1 (no churn, no corrector): x_s = x + (s - t) (x - D)/t.

    Evaluated as ``D + s ((x - D)/t)``, the same number without the cancellation of ``x`` against ``-(t/t) x``
    that loses every digit of the O(1) result once ``t`` is above ~1e16 (and without the ratio ``s/t``, subnormal
    or 0 for t/s > 1e308 where the result is a normal number)."""
    D = model.ve(x, s_t)
    return D + s_s * ((x - D) / s_t)


def heun_step(x: Array, s_t: float, s_s: float, *, model: Model, add_noise: AddNoise, last: bool,
              state: dict[str, Any]) -> Array:
    """EDM Heun, Karras et al. 2022 Alg. 1 (no churn): Euler predictor, trapezoidal corrector unless s = 0.

    ``x_s = x + (s - t)(d + d')/2`` with ``d = (x - D_t)/t``, ``d' = (x_e - D_s)/s``. Evaluated after the predictor
    ``x_e = D_t + s d`` (:func:`euler_step`) as ``x_e + ((s - t)/2)(d' - d)``, or, where ``d'`` and ``d``
    cancel more than the denoised values do, as its equal ``x_e + ((t - s)/(2s))(D_s - D_t)``: the textbook order
    cancels ``x`` (~ t) against ``(s - t) d`` and lost every digit of the O(1) result once ``t`` is above ~1e16;
    each of the two forms alone loses digits at one end (``D_s ~ D_t`` as ``s -> 0``; ``d' ~ d`` for a faint mode
    at huge ``t``)."""
    D, d = model.ve_slope(x, s_t)
    x_next = D + s_s * d
    if s_s == 0.0:
        return x_next
    D2, d2 = model.ve_slope(x_next, s_s)  # d2 as x_next - D2 over s_s lost every digit for s_s < ~1e-15 (break-test
    # of 8 December: the Wiener denoiser's FFT rounding, 1e-16 |x|, divided by s_s)
    with np.errstate(over="ignore", invalid="ignore"):  # the form not chosen may overflow; the chosen one is checked
        via_d = (d2 - d) * (0.5 * (s_s - s_t))
        via_D = (D2 - D) * (0.5 * (s_t - s_s)) / s_s  # multiplied first: (t - s)/s overflows for t/s > 1.8e308
        use_D = np.abs(D2) + np.abs(D) < s_s * (np.abs(d2) + np.abs(d))
    return x_next + np.where(use_D, via_D, via_d)


@dataclass(frozen=True)
class SignalSampler:
    """A sampler as data: its step, its coordinates, the keyword options the step takes, a citation.

    ``family="vp"`` steps walk ``alpha_bar`` levels up to 1 and start from ``N(0, I)``;
    ``family="ve"`` steps walk ``sigmas`` down to 0 and start from ``N(0, sigma_max^2 I)``.
    """

    step: Callable[..., Array]
    family: Literal["vp", "ve"]
    options: tuple[str, ...]
    reference: str


#: sampler name -> definition (the names of :data:`symsched.VP_SAMPLERS` and :data:`symsched.VE_SAMPLERS`)
SAMPLERS: dict[str, SignalSampler] = {
    "ddim": SignalSampler(ddim_step, "vp", ("eta",), "Song, Meng, Ermon 2021 (DDIM), eq. (12)"),
    "ddpm": SignalSampler(ddpm_step, "vp", ("variance",), "Ho, Jain, Abbeel 2020 (DDPM), Alg. 2"),
    "euler": SignalSampler(euler_step, "ve", (), "Karras et al. 2022 (EDM), Alg. 1, Euler"),
    "heun": SignalSampler(heun_step, "ve", (), "Karras et al. 2022 (EDM), Alg. 1"),
}


# --------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------
class _External:
    """A caller's progress bar: updated, never closed here."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, k: int = 1) -> None:
        self.bar.update(k)

    def close(self) -> None:
        pass


def check_finite_samples(x: Any, where: Callable[[], str]) -> None:
    """ValueError naming ``where()`` (the sampler, or its step) when samples are not all finite: the denoiser's
    finite outputs overflowed float64 in the update. Never NaN or inf samples returned."""
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where()} produced non-finite samples: the denoiser's outputs are finite but overflow "
                         "float64 in the sampler's update")


def _is_bar(progress: Any) -> bool:
    """A caller's progress bar: an object with ``update(n)`` (tqdm-like), not a bool, mapping or set (whose
    ``update`` merges entries)."""
    if progress is None or isinstance(progress, (bool, np.bool_, Mapping, AbstractSet)):
        return False
    return callable(getattr(progress, "update", None))


def check_progress(progress: Any) -> None:
    """ArgumentTypeError unless ``progress`` is None, a boolean or a caller's bar (what :func:`progress_bar`
    takes): for a generator's caller to check before its first step."""
    if progress is not None and not _is_bar(progress):
        from ._validate import as_bool

        as_bool(progress, "progress")


def progress_bar(total: int, progress: Any, desc: str, unit: str = "step") -> Any:
    """A tqdm bar (``progress`` True/False, or None = only when stderr is a terminal), or a caller's bar."""
    if _is_bar(progress):
        return _External(progress)
    from tqdm.auto import tqdm

    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    from ._validate import as_bool

    progress = as_bool(progress, "progress")
    return tqdm(total=total, disable=not progress, desc=desc, unit=unit, leave=False)


class NoiseStreams:
    """Step noise that does not depend on the batch size: one generator per key (a step and a draw within it),
    each consumed only by its draw, batch after batch, in sample order.

    NumPy fills consecutive draws of one generator as one long draw, so batches of 3 then 7 samples get the
    noise one batch of 10 would; a single generator shared by every draw would interleave them by batch. The
    streams are seeded from a digest of ``rng``'s bit-generator *state* when the run starts (nothing is drawn
    from ``rng`` and its seed sequence is not touched): the same seed, SeedSequence or restored state gives the
    same samples, and a Generator passed again (its state advanced by the first run) gives new noise.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        digest = hashlib.sha256(_state_bytes(rng.bit_generator.state)).digest()
        self._root = np.random.SeedSequence(int.from_bytes(digest, "little"))
        self._gens: dict[tuple[int, ...], np.random.Generator] = {}

    def generator(self, key: tuple[int, ...]) -> np.random.Generator:
        g = self._gens.get(key)
        if g is None:
            ss = np.random.SeedSequence(self._root.entropy, spawn_key=self._root.spawn_key + key)
            g = self._gens[key] = np.random.Generator(np.random.PCG64(ss))
        return g

    def fill(self, key: tuple[int, ...], out: Array) -> Array:
        """``out`` filled with standard normal noise of stream ``key`` (continuing where the last batch stopped)."""
        return self.generator(key).standard_normal(out=out)


def _state_bytes(state: Any) -> bytes:
    """A bit generator's state (nested dicts of ints, strings and arrays) as bytes, exactly."""
    if isinstance(state, dict):
        return b"{" + b",".join(repr(k).encode() + b":" + _state_bytes(state[k]) for k in sorted(state)) + b"}"
    if isinstance(state, np.ndarray):
        return repr((state.dtype.str, state.shape)).encode() + state.tobytes()
    return repr(state).encode()


def run(
    sampler: str,
    levels: Array,
    model: Model,
    *,
    shape: Sequence[int],
    n: int,
    rng: np.random.Generator,
    batch: int,
    options: Mapping[str, Any],
    init: Callable[[Array], Array] | None = None,
    progress: Any = None,
    desc: str | None = None,
    coords: tuple[Callable[[Array], Any], Callable[[Any], Array]] | None = None,
) -> Iterator[Array]:
    """Run ``SAMPLERS[sampler]`` over ``levels`` (noisiest first) on ``n`` samples, ``batch`` at a time.

    Yields arrays of shape ``(b, *shape)``. Per batch: ``z ~ N(0, I)`` is drawn from ``rng``, ``x = init(z)``
    (default: ``z`` for VP, ``levels[0] z`` for VE), then every step in turn; the j-th noise a step injects
    is drawn from its own stream (:class:`NoiseStreams`, key (step, j)) into the same buffer, so that the
    samples of a seed do not depend on ``batch``. Options not in the sampler's ``options`` are ignored
    (callers validate them). ``coords = (forward, inverse)``: the steps run on ``forward`` of the signals (a
    linear change of coordinates the model works in, e.g. mode coefficients): ``init`` then returns coefficients,
    each noise is added as ``forward(sqrt(var) z)`` and each batch is yielded as ``inverse`` of its coefficients.
    """
    forward, inverse = coords if coords is not None else (None, None)
    spec = SAMPLERS[sampler]
    opts = {k: v for k, v in options.items() if k in spec.options}
    final = 1.0 if spec.family == "vp" else 0.0
    targets = np.append(levels[1:], final)
    K = int(levels.size)
    bar = progress_bar(-(-n // batch) * K, progress, desc or f"{sampler} sampling")
    streams = NoiseStreams(rng)
    try:
        done = 0
        while done < n:
            b = min(batch, n - done)
            z = rng.standard_normal((b, *shape))
            if init is not None:
                x = init(z)
            else:
                x = z.copy() if spec.family == "vp" else float(levels[0]) * z
                x = x if forward is None else forward(x)

            draws = [0, 0]  # [step, draws so far in the step]: the key of the next noise stream

            def add_noise(x: Array, var: float, z: Array = z) -> Array:
                key = (draws[0], draws[1])
                draws[1] += 1
                if var > 0.0:
                    streams.fill(key, z)  # white real noise in signal space
                    z *= math.sqrt(var)
                    x += z if forward is None else forward(z)
                return x

            state: dict[str, Any] = {}
            for i in range(K):
                draws[:] = [i, 0]
                with np.errstate(over="ignore", invalid="ignore"):  # checked below
                    x = spec.step(x, float(levels[i]), float(targets[i]), model=model, add_noise=add_noise,
                                  last=i == K - 1, state=state, **opts)
                check_finite_samples(x, lambda: f"{sampler} step {i + 1} of {K} (level {float(levels[i]):.6g} -> "
                                               f"{float(targets[i]):.6g})")
                bar.update(1)
            done += b
            yield x if inverse is None else inverse(x)
    finally:
        bar.close()
