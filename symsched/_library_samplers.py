"""Drive k-diffusion's own samplers with any denoiser: the learned probe's path to every k-diffusion sampler.

symsched's signal-space loops (:mod:`symsched._signal_samplers`) cover DDIM, DDPM, Euler and Heun. For
the other k-diffusion samplers (``euler_ancestral``, ``dpm_2``, ``lms``, ``dpmpp_2m``, ``dpmpp_sde``, ...)
the honest way to sample with a learned model is to run the library's own ``sample_<name>(model, x,
sigmas, **options)`` (``k_diffusion/sampling.py``, 0.1.1.post1) with ``model(x, sigma) = D(x; sigma)``,
the denoiser's x0 prediction at ``alpha_bar = 1 / (1 + sigma^2)`` on ``x / sqrt(1 + sigma^2)``.
k-diffusion 0.1.1.post1 imports torchvision in ``k_diffusion/utils.py`` (for PIL conversions that
sampling never calls); when torchvision cannot be imported, ``utils.py`` and ``sampling.py`` are loaded
as plain modules with a temporary stand-in for ``torchvision.transforms.functional`` that is removed
from ``sys.modules`` again. Nothing of k-diffusion's code is changed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from ._signal_samplers import check_finite_samples

Array = NDArray[np.float64]

#: symsched sampler name -> k-diffusion function (run by :func:`run_k_diffusion`)
K_DIFFUSION: dict[str, str] = {name: f"sample_{name}" for name in (
    "euler", "heun", "euler_ancestral", "dpm_2", "dpm_2_ancestral", "dpmpp_2s_ancestral", "lms", "dpmpp_2m",
    "dpmpp_2m_sde", "dpmpp_3m_sde", "dpmpp_sde")}
_HINT = "pip install torch torchsde torchdiffeq && pip install --no-deps k-diffusion==0.1.1.post1"

#: k-diffusion samplers that fail on fewer steps: 0.1.1.post1's sample_dpmpp_2m_sde / sample_dpmpp_3m_sde read the
#: previous step's ``h`` after a single step to sigma = 0 (``UnboundLocalError: h``); symsched's own closed form
#: runs one step (README, Limitations).
MIN_STEPS: dict[str, int] = {"dpmpp_2m_sde": 2, "dpmpp_3m_sde": 2}


def check_library_steps(sampler: str, K: int, name: str) -> None:
    """ValueError naming ``name`` when k-diffusion's ``sample_<sampler>`` cannot run ``K`` steps (:data:`MIN_STEPS`)."""
    need = MIN_STEPS.get(sampler, 1)
    if K < need:
        raise ValueError(f"{name}: k-diffusion 0.1.1's sample_{sampler} fails with {K} step"
                         f"{'s' if K != 1 else ''} (UnboundLocalError: h); give at least {need}")


#: k-diffusion samplers whose noise is by default a torchsde Brownian tree on [sigma_min, sigma_max]
#: (``BrownianTreeNoiseSampler``) -> the fewest levels at which it is queried strictly inside that interval
#: (``dpmpp_sde``'s half steps from 2 levels, the others' steps from 3)
_BROWNIAN_TREE: dict[str, int] = {"dpmpp_sde": 2, "dpmpp_2m_sde": 3, "dpmpp_3m_sde": 3}


def check_brownian_tree(sampler: str, sigmas: Sequence[float], options: Mapping[str, Any], name: str) -> None:
    """ValueError naming ``name``, the sampler and the reason, before any work, where k-diffusion's Brownian-tree noise
    would be NaN: torchsde's bridge at the first halving of [sigma_min, sigma_max] multiplies the two half lengths,
    ``((sigma_max - sigma_min)/2)^2``, beyond float64 for sigma_max above 2^513 ~ 2.7e154 (alpha_bar below ~1.4e-309),
    and a query strictly inside the interval needs that halving. A tree in rescaled time (k-diffusion's
    ``transform=``) would have the same law, but torchsde rounds its times to 1e-6, which would merge a schedule's
    small sigmas; so the schedule is refused, as k-diffusion itself cannot run it. Not refused: ``dpmpp_sde`` with
    ``noise_sampler="independent"``, ``dpmpp_2m_sde`` / ``dpmpp_3m_sde`` with ``eta = 0`` (no noise) or of fewer
    levels than :data:`_BROWNIAN_TREE` (no query inside the interval)."""
    need = _BROWNIAN_TREE.get(sampler)
    if need is None or len(sigmas) < need or options.get("noise_sampler") == "independent":
        return
    if sampler != "dpmpp_sde" and not options.get("eta", 1.0):
        return
    half = 0.5 * (float(sigmas[0]) - float(sigmas[-1]))
    if np.isfinite(half * half):
        return
    from .schedules import sigma_to_alpha_bar_unchecked

    ab0 = sigma_to_alpha_bar_unchecked(float(sigmas[0]))
    raise ValueError(
        f"{name}[0] = {ab0:.3g} (sigma = {float(sigmas[0]):.3g}): sampler {sampler!r} runs k-diffusion's "
        f"{K_DIFFUSION[sampler]}, whose Brownian-tree noise (torchsde) on [sigma_min, sigma_max] multiplies "
        f"(sigma_max - sigma_min)/2 by itself, beyond float64 for sigma_max > 2.7e154 (alpha_bar < 1.4e-309): its "
        "noise would be NaN. Start at alpha_bar >= 1.4e-309"
        + (" or pass options={'noise_sampler': 'independent'} (CLI: --option noise_sampler=independent)"
           if sampler == "dpmpp_sde" else " or pass options={'eta': 0} (CLI: --option eta=0)"))


def load_k_diffusion_sampling(sampler: str = "") -> Any:
    """``k_diffusion.sampling`` (imported cleanly without torchvision); ``ValueError`` naming ``sampler`` if missing."""
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    what = f"sampler {sampler!r} runs k-diffusion's own sample_{sampler}" if sampler else "k-diffusion"
    for dep in ("torch", "torchsde", "scipy"):
        if importlib.util.find_spec(dep) is None:
            raise ValueError(f"{what}: it needs {dep} and k-diffusion ({_HINT})")
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{what}: k-diffusion is not installed ({_HINT})")
    try:
        return importlib.import_module("k_diffusion.sampling")
    except ImportError:
        pass
    for name in [m for m in sys.modules if m == "k_diffusion" or m.startswith("k_diffusion.")]:
        del sys.modules[name]  # a half-imported package from the failed attempt
    fake = {}
    try:
        importlib.import_module("torchvision.transforms.functional")
    except Exception:  # noqa: BLE001 - any failure of torchvision's import: a stand-in for the import only
        tv, tr, fn = (types.ModuleType(n) for n in ("torchvision", "torchvision.transforms",
                                                     "torchvision.transforms.functional"))
        tv.transforms, tr.functional = tr, fn  # type: ignore[attr-defined]
        fake = {"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn}
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        root = spec.submodule_search_locations[0]
        pkg = types.ModuleType("k_diffusion")
        pkg.__path__ = [root]  # a bare package: its __init__ (models, torchvision, ...) is not run
        # with the installed package's spec, so importlib.util.find_spec("k_diffusion") keeps working afterwards
        pkg.__spec__ = spec
        pkg.__file__ = spec.origin
        sys.modules["k_diffusion"] = pkg
        for name in ("utils", "sampling"):
            sub = importlib.util.spec_from_file_location(f"k_diffusion.{name}", f"{root}/{name}.py")
            module = importlib.util.module_from_spec(sub)  # type: ignore[arg-type]
            sys.modules[f"k_diffusion.{name}"] = module
            sub.loader.exec_module(module)  # type: ignore[union-attr]
            setattr(pkg, name, module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:  # pragma: no cover
                sys.modules[k] = v
    return sys.modules["k_diffusion.sampling"]


#: k-diffusion samplers whose default noise is ``default_noise_sampler`` (independent draws): symsched passes its own
#: batch-size-invariant draws of the same law instead (the Brownian-tree samplers and churn keep k-diffusion's)
_INDEPENDENT_NOISE = ("euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral")


def check_settings(sampler: str, options: Mapping[str, Any]) -> None:
    """ValueError naming every key of ``options`` that k-diffusion's ``sample_<sampler>`` takes no keyword for
    (symsched's ``noise_sampler`` choice excepted: it is turned into k-diffusion's callable here)."""
    import inspect

    fn = getattr(load_k_diffusion_sampling(sampler), K_DIFFUSION[sampler])
    takes = [k for k, v in inspect.signature(fn).parameters.items()
             if v.default is not inspect.Parameter.empty and k not in ("extra_args", "callback", "disable",
                                                                        "noise_sampler")]
    extra = [k for k in options if k not in takes and k != "noise_sampler"]
    if extra:
        raise ValueError(f"options: k-diffusion's {K_DIFFUSION[sampler]} takes no {', '.join(map(repr, extra))} "
                         f"(its settings: {', '.join(takes) or 'none'})")


def run_k_diffusion(sampler: str, sigmas: Array, denoise: Callable[[Array, float], Array], *,
                    shape: Sequence[int], n: int, seed: int, batch: int, options: Mapping[str, Any],
                    progress: Optional[Callable[[int], None]] = None) -> Iterator[Array]:
    """Batches of k-diffusion's ``sample_<sampler>`` on ``sigmas`` + [0] from ``sigma_max * z``.

    ``denoise(x_sigma, sigma) -> D(x_sigma; sigma)`` (NumPy float64). The initial ``z`` comes from
    ``np.random.default_rng(seed)`` and independent step noise (the ancestral samplers, ``noise_sampler="independent"``)
    from :class:`symsched._signal_samplers.NoiseStreams` of it, so neither depends on ``batch``; k-diffusion's own
    draws (churn, the Brownian tree of the SDE samplers) come from torch's generator seeded with ``seed`` inside
    ``torch.random.fork_rng`` (the caller's torch RNG state is untouched) and do depend on ``batch``. ``options`` are
    the k-diffusion keyword arguments (eta, s_noise, s_churn, order, ...), checked by :func:`check_settings` (the probe
    does so before any work). ``progress(k)`` is called after every step with k = 1.
    """
    import torch

    from ._signal_samplers import NoiseStreams

    check_library_steps(sampler, len(sigmas), "alpha_bar")
    check_brownian_tree(sampler, sigmas, options, "alpha_bar")
    ks = load_k_diffusion_sampling(sampler)
    fn = getattr(ks, K_DIFFUSION[sampler])
    sig = torch.as_tensor(np.append(np.asarray(sigmas, dtype=np.float64), 0.0), dtype=torch.float64)
    opts = dict(options)
    # symsched's noise_sampler option names k-diffusion's two choices: "brownian_tree" is sample_dpmpp_sde's
    # default (None); "independent" is default_noise_sampler(x)'s law, drawn here per stream
    independent = opts.pop("noise_sampler", "brownian_tree") == "independent" or sampler in _INDEPENDENT_NOISE

    def model(x: Any, sigma: Any, **_: Any) -> Any:
        s = float(sigma.reshape(-1)[0])
        a = x.detach().cpu().numpy()
        if not np.all(np.isfinite(a)):  # k-diffusion's state, not an input fault of the denoiser's: say so
            raise ValueError(f"k-diffusion's {K_DIFFUSION[sampler]} produced non-finite samples (NaN or inf) before "
                             f"its denoiser call at sigma = {s:.3g}: its float64 update overflows on the denoiser's "
                             "outputs or on the levels of this schedule (alpha_bar)")
        return torch.from_numpy(denoise(a, s))

    rng = np.random.default_rng(int(seed))
    streams = NoiseStreams(rng)
    callback = (lambda _info: progress(1)) if progress is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        done = 0
        while done < n:
            b = min(batch, n - done)
            x = torch.from_numpy(rng.standard_normal((b, *shape))) * sig[0]
            extra: dict[str, Any] = {}
            if independent:
                calls = [0]

                def noise_sampler(_sigma: Any, _sigma_next: Any, b: int = b, calls: list[int] = calls) -> Any:
                    out = streams.fill((calls[0],), np.empty((b, *shape)))
                    calls[0] += 1
                    return torch.from_numpy(out)

                extra["noise_sampler"] = noise_sampler
            with warnings.catch_warnings():
                # torchsde's BrownianTree stores its interval ends rounded and clamps a query just outside them
                # ("Should have ta>=t0 but got ta=3.424136619044041 and t0=3.424137"), warning on every step of
                # k-diffusion's SDE samplers: the same clamped draw as in any k-diffusion run, so not repeated here
                warnings.filterwarnings("ignore", message=r"Should have (ta|tb)(>=t0|<=t1) but got", category=UserWarning)
                out = fn(model, x, sig, disable=True, callback=callback, **opts, **extra)
            samples = out.numpy()
            check_finite_samples(samples, lambda: f"k-diffusion's {K_DIFFUSION[sampler]}")
            done += b
            yield samples
