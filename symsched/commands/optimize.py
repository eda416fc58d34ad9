"""``symsched optimize``: the noise schedule whose output spectrum is closest to the data's.

Loads a spectrum (``.npy``, a folder of images, or ``builtin:natural-patches``), runs
:func:`symsched.optimize.optimize_schedule` with a progress bar, prints the comparison with the
standard schedules, and writes the schedule as JSON (levels, log-SNR, VE sigmas, betas, training
timesteps, KL/W2 and the baseline table), as diffusers ``set_timesteps`` arguments, or as a
k-diffusion sigma array; optionally a PNG of schedules, output PSD and per-frequency error.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .._io import output_file
from . import _settings

FORMATS = ("json", "diffusers", "k-diffusion", "comfyui")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "optimize",
        help="design the noise schedule whose output spectrum best matches the data",
        description="Minimise KL or W2 between the data Gaussian N(0, S) and the sampler's output "
        "N(0, P(S; schedule)) over the K noise levels (exact gradients, L-BFGS-B, several starts), "
        "compare with the standard schedules and export the result.",
    )
    p.add_argument("--spectrum", default="builtin:natural-patches",
                   help="FILE.npy (mode variances), a folder of PNG/JPEG images, or builtin:natural-patches "
                   "(default)")
    p.add_argument("--steps", default=10, type=int,
                   help="number of noise levels K of the schedule (default 10): one model call each, except that DEIS "
                   "and final_sigmas_type=sigma_min stop at the last level (K - 1 calls) and two-stage samplers (heun, "
                   "dpm_2, ...) call the model twice per step but once on the last (2K - 1 calls)")
    _settings.add_sampler_arguments(
        p, sampler_help="sampler to optimise for (default ddim; flow_match_euler with --flow): diffusers' DDIM/DDPM, "
        "multistep and flow-matching schedulers, k-diffusion's samplers (their library defaults unless "
        "--eta/--option say otherwise); VE samplers are optimised over the same levels and exported as sigmas",
        flow_help="flow matching (x_t = (1-t) x0 + t eps, SD3/Flux): the first level is pure noise t = 1 "
        "(alpha_bar = 0), sampler flow_match_euler, compared with the uniform, SD3 (shift 3) and "
        "resolution-shifted schedules, exported as FlowMatchEulerDiscreteScheduler sigmas (implied by a "
        "flow_match_* --sampler)")
    p.add_argument("--shift-from-resolution", default=None, nargs="?", const="1024x1024", metavar="HxW",
                   help="with --flow: also compare with Flux's resolution-dependent shift mu for HxW-pixel images "
                   "(mu = calculate_shift(image_seq_len), (H/16)(W/16) tokens; a single N means NxN; default 1024x1024)")
    from ..optimize import DEFAULT_DIVERGENCE

    p.add_argument("--divergence", default=DEFAULT_DIVERGENCE, choices=["kl", "kl-reverse", "w2"],
                   help=f"kl = KL(data||generated), kl-reverse, w2 = W2 squared (default {DEFAULT_DIVERGENCE})")
    _settings.add_variance(p)
    _settings.add_arguments(p)
    _settings.add_init(p)
    p.add_argument("--grid", default=None,
                   help="restrict to a training grid: an integer T (T-step grid of --grid-betas) or a .npy "
                   "alphas_cumprod (training order)")
    p.add_argument("--grid-betas", default=None, choices=["linear", "scaled_linear", "cosine", "sigmoid"],
                   help="beta family of an integer --grid, or of the 1000-step grid --format diffusers picks for "
                   "samplers that need timesteps (default linear, DDPM; refused where no such grid is built)")
    p.add_argument("--endpoints", default="default",
                   help="'default' (first level = noisiest training level, last free), 'free' (both free), "
                   "or 'A,B' with levels alpha_bar A in [0,1) (0: pure noise), B in (0,1), or 'none' "
                   "(e.g. 0.0001,none or 0,none)")
    p.add_argument("--weights", default=None, type=Path, help=".npy per-mode weights (shape of the spectrum)")
    p.add_argument("--seed", default=0, type=int, help="seed of the random starts (default 0)")
    p.add_argument("--restarts", default=4, type=int, help="number of random starts (default 4)")
    _settings.add_max_step_ratio(p)
    p.add_argument("--out", required=True, type=output_file("schedule.json"),
                   help="output file (.json; .npy for --format k-diffusion)")
    p.add_argument("--format", default="json", choices=list(FORMATS),
                   help="export format (default json): diffusers (scheduler, config, set_timesteps arguments), "
                   "k-diffusion (sigma array), comfyui (the text of a ManualSigmas node and the KSamplerSelect "
                   "sampler_name)")
    p.add_argument("--plot", default=None, type=output_file("schedule.png"),
                   help="write a figure (PNG/PDF/SVG) of the result")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_endpoints(text: str) -> Optional[tuple[Optional[float], Optional[float]]]:
    """'default' -> None; 'free' -> (None, None); 'A,B' -> (A or None, B or None)."""
    t = str(text).strip().lower()
    if t == "default":
        return None
    if t == "free":
        return (None, None)
    parts = [s.strip() for s in t.split(",")]
    if len(parts) != 2:
        raise ValueError(f"--endpoints must be 'default', 'free' or 'A,B' (got {text!r})")
    out: list[Optional[float]] = []
    for s in parts:
        if s in ("none", "free"):
            out.append(None)
            continue
        try:
            out.append(_settings.real(s))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"--endpoints: {exc}") from None
        except ValueError:
            raise ValueError(f"--endpoints: {s!r} is neither a level (first in [0, 1), last in (0, 1)) nor 'none' "
                             "(an empty item is refused: write none)") from None
    return out[0], out[1]


def parse_grid(text: Optional[str], betas: Optional[str]) -> Optional[np.ndarray]:
    """None -> None; an integer T -> the T-step training grid of ``betas`` (default linear); a path -> its .npy
    array (ValueError with ``betas``, which it would ignore)."""
    if text is None:
        return None
    from .. import schedules
    from .._io import load_npy

    try:
        T = int(text)
    except ValueError:
        if not Path(text).exists():  # "1e9", "1.5": a number that is no integer, not a missing file
            try:
                float(text)
            except ValueError:
                pass
            else:
                raise ValueError(f"--grid must be a positive integer number of training steps or a .npy file "
                                 f"(got {text!r}: not an integer, and no such file)") from None
        if betas is not None:
            raise ValueError(f"--grid-betas {betas} applies to an integer --grid T, not to the .npy grid {text!r}, "
                             "whose alphas_cumprod are given") from None
        return schedules._as_grid(load_npy(Path(text), "--grid"), "--grid")  # checked before anything reads it
    if T < 1:
        raise ValueError(f"--grid must be a positive number of training steps or a .npy file (got {text!r})")
    return schedules.training_grid(betas or "linear", num_train_timesteps=T)


#: Samplers whose diffusers scheduler takes no custom schedule (diffusers 0.42 ``set_timesteps``).
_NO_CUSTOM_DIFFUSERS = {
    "unipc_multistep": "UniPCMultistepScheduler.set_timesteps takes no custom schedule for a VP model (custom sigmas "
    "only with use_flow_sigmas=True, a flow-matching UniPC that symsched does not model)",
    "deis_multistep": "DEISMultistepScheduler.set_timesteps takes only num_inference_steps",
    "euler_ancestral_discrete": "EulerAncestralDiscreteScheduler.set_timesteps takes only num_inference_steps; "
    "k-diffusion's sample_euler_ancestral (--sampler euler_ancestral) takes the sigmas",
}

#: DPMSolverMultistepScheduler settings and the k-diffusion sampler, with its settings, that runs the same steps
#: (tests/test_optimize_cli.py checks each pair for equal closed forms): both libraries' refusals are written from it.
DPM_K_DIFFUSION_PAIRS: tuple[tuple[dict[str, Any], str, dict[str, Any]], ...] = (
    ({"solver_order": 1}, "euler", {}),
    ({"solver_order": 2}, "dpmpp_2m", {}),
    ({"solver_order": 2, "solver_type": "heun"}, "dpmpp_2m_sde", {"eta": 0.0, "solver_type": "heun"}),
    ({"solver_order": 3, "solver_type": "heun", "lower_order_final": False}, "dpmpp_3m_sde", {"eta": 0.0}),
    ({"algorithm_type": "sde-dpmsolver++", "solver_order": 1}, "euler_ancestral", {"eta": 1.0}),
    ({"algorithm_type": "sde-dpmsolver++", "solver_order": 2}, "dpmpp_2m_sde", {"eta": 1.0}),
    ({"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "solver_type": "heun"}, "dpmpp_2m_sde",
     {"eta": 1.0, "solver_type": "heun"}),
)


#: why the optimum of a pair can differ a little with --init white
_STARTS = ("their white starts differ, variance 1 in diffusers and sigma_max^2 in k-diffusion, so --init white "
           "optimises for the library that runs it")


def _text(value: Any) -> str:
    """A setting as the command line writes it: 0 for 0.0, heun for 'heun', False."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def optimize_flags(sampler: str, settings: dict[str, Any]) -> str:
    """The ``optimize`` flags that select ``sampler`` with ``settings``: ``--sampler S --eta E --option NAME=VALUE``."""
    return " ".join([f"--sampler {sampler}"] + [f"--eta {_text(v)}" if n == "eta" else f"--option {n}={_text(v)}"
                                               for n, v in settings.items()])


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{n}={v!r}" if isinstance(v, str) else f"{n}={_text(v)}" for n, v in settings.items())


def _no_k_diffusion_dpm() -> str:
    """The refusal of --format k-diffusion for dpmsolver_multistep: k-diffusion's sampler for each setting."""
    same = "; ".join(f"{_settings_text(dpm)}: {optimize_flags(k, k_set)}" for dpm, k, k_set in DPM_K_DIFFUSION_PAIRS)
    return ("k-diffusion has no DPMSolverMultistepScheduler, but runs the same steps (tests/test_optimize_cli.py "
            f"checks each pair; {_STARTS}); optimise with the flags for your settings, then export: {same}")


#: Samplers without a k-diffusion function: --format k-diffusion is refused before the optimisation.
_NO_K_DIFFUSION = {
    "ddpm": "k-diffusion has no DDPM sampler; export with --format diffusers (DDPMScheduler timesteps)",
    "dpmsolver_multistep": _no_k_diffusion_dpm(),
    "unipc_multistep": "k-diffusion has no UniPC sampler (and diffusers' UniPCMultistepScheduler takes no custom "
    "timesteps): the levels are in --format json",
    "deis_multistep": "k-diffusion has no DEIS sampler (and diffusers' DEISMultistepScheduler takes no custom "
    "timesteps): the levels are in --format json",
    "euler_ancestral_discrete": "k-diffusion's ancestral Euler is sample_euler_ancestral: optimise with --sampler "
    "euler_ancestral",
    "flow_match_euler": "k-diffusion has no flow-matching sampler (its samplers step VE sigmas); the same Euler steps "
    "on alpha_bar are DDIM: optimise with --sampler ddim for sample_euler, or export with --format diffusers "
    "(FlowMatchEulerDiscreteScheduler sigmas)",
    "flow_match_heun": "k-diffusion has no flow-matching sampler (its samplers step VE sigmas, and Heun's steps depend "
    "on the time variable), and diffusers' FlowMatchHeunDiscreteScheduler takes no custom sigmas either: export with "
    "--format json (the levels and flow times), or optimise with --flow (flow_match_euler) for --format diffusers",
}


def parse_resolution(text: str) -> tuple[int, int]:
    """'HxW' (or a single 'N' for N x N) -> (H, W) pixels."""
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        hw = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--shift-from-resolution must be HxW in pixels, e.g. 1024x1024 (got {text!r})") from None
    if len(hw) == 1:
        hw = hw * 2
    if len(hw) != 2 or min(hw) < 16:
        raise ValueError(f"--shift-from-resolution must be HxW with H, W >= 16 pixels (got {text!r})")
    return hw[0], hw[1]


def flow_baselines(steps: int, resolution: Optional[str]) -> dict[str, np.ndarray]:
    """The standard flow-matching schedules (alpha_bar, first level 0): uniform t, SD3 shift 3, Flux at a resolution."""
    from .. import schedules

    out = {"flow-uniform": schedules.flow_schedule("flow-uniform", steps),
           "flow-sd3": schedules.flow_schedule("flow-sd3", steps, shift=3.0)}
    if resolution is not None:
        h, w = parse_resolution(resolution)
        n = schedules.flux_image_seq_len(h, w)
        mu = float(schedules.flux_mu(n))
        try:
            out[f"flow-flux {h}x{w} (mu={mu:.3g})"] = schedules.flow_schedule("flow-flux", steps, mu=mu)
        except ValueError as exc:  # a shift so large that the levels collapse in float64
            raise ValueError(f"--shift-from-resolution {h}x{w} ({n} tokens): {exc} (choose a smaller HxW)") from None
    return out


def _no_diffusers_scheduler(sampler: str) -> str:
    """The refusal of --format diffusers for a k-diffusion sampler, naming diffusers' equivalent where there is one."""
    same = "; ".join(f"with {_settings_text(k_set) or 'its defaults'}: {optimize_flags('dpmsolver_multistep', dpm)}"
                     for dpm, k, k_set in DPM_K_DIFFUSION_PAIRS if k == sampler)
    also = f"; diffusers' DPMSolverMultistepScheduler runs its steps ({_STARTS}), {same}" if same else ""
    return (f"--format diffusers with --sampler {sampler}: diffusers has no scheduler for k-diffusion's "
            f"sample_{sampler}; use --format k-diffusion (sigmas for sample_{sampler}){also}")


#: why a sampler symsched models has no --format comfyui export, where the k-diffusion reason does not fit
_COMFYUI_OTHERWISE = {
    "flow_match_heun": "ComfyUI's heun on flow times is k-diffusion's Heun, which symsched has not compared with "
    "diffusers' FlowMatchHeunDiscreteScheduler: use --sampler flow_match_euler, or --format json for the levels",
    "ddpm": "ComfyUI's own ddpm sampler is not among them: use --format diffusers (DDPMScheduler timesteps)",
}

#: ComfyUI's nodes that set a k-diffusion sampler's parameters (comfy_extras/nodes_custom_sampler.py, read for this
#: table): KSamplerSelect runs a sampler with its defaults; the other samplers' settings (churn, dpm_2_ancestral's
#: eta) have no node.
COMFYUI_SAMPLER_NODES = {
    "euler_ancestral": ("SamplerEulerAncestral", ("eta", "s_noise")),
    "dpmpp_2s_ancestral": ("SamplerDPMPP_2S_Ancestral", ("eta", "s_noise")),
    "dpmpp_sde": ("SamplerDPMPP_SDE", ("eta", "s_noise", "r")),
    "dpmpp_2m_sde": ("SamplerDPMPP_2M_SDE", ("solver_type", "eta", "s_noise")),
    "dpmpp_3m_sde": ("SamplerDPMPP_3M_SDE", ("eta", "s_noise")),
    "lms": ("SamplerLMS", ("order",)),
}

#: Samplers --format diffusers exports (every other one is refused before the optimisation).
_DIFFUSERS_EXPORTS = ("ddim", "euler", "ddpm", "heun", "dpmsolver_multistep", "flow_match_euler", "flow_match_heun")


def _first_level_zero(endpoints: Any, grid: Optional[np.ndarray]) -> bool:
    """True when the optimised schedule starts at alpha_bar = 0 (a fixed zero endpoint or a zero-SNR --grid)."""
    if endpoints is None:
        return grid is not None and float(grid[-1]) == 0.0
    return endpoints[0] == 0.0


def check_export(args: argparse.Namespace, endpoints: Any, grid: Optional[np.ndarray], given_flow: bool = False) -> None:
    """Refuse a --format that cannot hold the result, from the arguments alone (before any work); ``given_flow``:
    the user passed --flow (else a flow sampler's own message)."""
    fmt, sampler = args.format, args.sampler
    from .._io import check_suffix

    if fmt != "k-diffusion" or Path(args.out).suffix.lower() != ".npy":  # k-diffusion: a .npy name gets the array
        check_suffix(args.out, "--out", ".json")
    if fmt == "k-diffusion":
        _check_k_diffusion(sampler, endpoints, grid, given_flow)
    elif fmt == "comfyui":
        _check_comfyui(sampler, endpoints, grid)
    elif fmt == "diffusers":
        _check_diffusers(args, endpoints, grid)
    if fmt in ("k-diffusion", "comfyui") and isinstance(args.steps, int) and args.steps >= 1:  # (else _check_settings)
        from .._library_samplers import check_library_steps

        check_library_steps(sampler, args.steps, "--steps")


def _check_k_diffusion(sampler: str, endpoints: Any, grid: Optional[np.ndarray], given_flow: bool) -> None:
    """--format k-diffusion: a sampler k-diffusion has, VE sigmas (no flow times, no sigma = inf)."""
    if given_flow:
        raise ValueError("--format k-diffusion with --flow: k-diffusion's samplers take VE sigmas, not flow times "
                         "(a flow schedule from pure noise starts at t = 1, sigma = inf); use --format diffusers "
                         "(FlowMatchEulerDiscreteScheduler sigmas) or --format json")
    if sampler in _NO_K_DIFFUSION:  # (the flow samplers among them)
        raise ValueError(f"--format k-diffusion with --sampler {sampler}: {_NO_K_DIFFUSION[sampler]}")
    if _first_level_zero(endpoints, grid):
        raise ValueError("--format k-diffusion: the first level is alpha_bar = 0 (zero terminal SNR: --endpoints 0,... "
                         "or a zero-SNR --grid), sigma = inf, which no k-diffusion sigma array holds; use --format "
                         "diffusers with --sampler ddpm (timesteps on the grid), --flow, or --format json")


def _check_comfyui(sampler: str, endpoints: Any, grid: Optional[np.ndarray]) -> None:
    """--format comfyui: a k-diffusion sampler symsched models or flow_match_euler; no VE sigma = inf."""
    if sampler in _NO_K_DIFFUSION and sampler != "flow_match_euler":
        raise ValueError(f"--format comfyui with --sampler {sampler}: symsched exports to ComfyUI the k-diffusion "
                         "samplers it models (ComfyUI runs its own copy of them) and flow_match_euler (ComfyUI's euler "
                         f"on flow times); {_COMFYUI_OTHERWISE.get(sampler, _NO_K_DIFFUSION[sampler])}")
    if sampler != "flow_match_euler" and _first_level_zero(endpoints, grid):
        raise ValueError("--format comfyui: the first level is alpha_bar = 0 (zero terminal SNR), sigma = inf, which "
                         "ComfyUI's samplers cannot take as a VE sigma; fix a first level above 0 with --endpoints, or "
                         "for a flow-matching model use --flow (ComfyUI's sigmas are then flow times, t = 1 there)")


def _check_diffusers(args: argparse.Namespace, endpoints: Any, grid: Optional[np.ndarray]) -> None:
    """--format diffusers: a scheduler that takes the levels, and a first level EulerDiscreteScheduler can run."""
    sampler = args.sampler
    if sampler in _NO_CUSTOM_DIFFUSERS:
        raise ValueError(f"--format diffusers with --sampler {sampler}: {_NO_CUSTOM_DIFFUSERS[sampler]}")
    if sampler not in _DIFFUSERS_EXPORTS:
        raise ValueError(_no_diffusers_scheduler(sampler))
    if sampler in ("ddim", "euler") and args.eta != 1.0 and _first_level_zero(endpoints, grid):
        raise ValueError(f"--format diffusers with --sampler {sampler}: the first level is alpha_bar = 0 (sigma = inf), "
                         "which EulerDiscreteScheduler cannot take as a sigma (with rescale_betas_zero_snr=True it "
                         "runs alpha_bar = 0 as 2**-24 itself); fix a first level above 0 with --endpoints A,none "
                         "(on a --grid, its nearest training level), or use --sampler ddpm (DDPMScheduler timesteps "
                         "on the zero-SNR grid, with your model's prediction_type); --flow only for a flow-matching "
                         "model")
    first = None if endpoints is None else endpoints[0]
    if sampler in ("ddim", "euler") and args.eta != 1.0 and first is not None and 0.0 < first < 1.0:
        # (with --grid the optimiser snaps the level to the grid first; the export checks the level it returns)
        from .. import export
        from ..optimize import default_grid

        try:  # the fixed first level's sigma, cast to float32 by EulerDiscreteScheduler.set_timesteps and within the
            # config grid's largest training sigma, as the export checks it after the optimisation (audit of 6
            # December: refused only then); a first level outside (0, 1) is refused with the endpoints' own checks
            if grid is None:
                export.to_diffusers(np.array([first]), scheduler="EulerDiscreteScheduler", grid=default_grid())
            else:
                export.to_diffusers(np.array([first]))  # (the float32 cast alone)
        except ValueError as exc:
            raise ValueError(f"--endpoints {args.endpoints}: {str(exc).removeprefix('alpha_bar: ')}") from None


def substitution_note(res: Any, value_of: Optional[Callable[..., float]] = None) -> Optional[str]:
    """The note when the diffusers export runs another sampler than the one optimised, with the objective of what
    it runs when ``value_of`` is given (else None)."""
    if res.sampler == "flow_match_heun":
        return runs_note("FlowMatchHeunDiscreteScheduler takes no custom sigmas: the diffusers export runs these levels "
                         "with FlowMatchEulerDiscreteScheduler (flow Euler), not the flow Heun sampler they were "
                         "optimised for", res, value_of, sampler="flow_match_euler", settings={})
    if res.sampler == "ddim" and 0.0 < res.eta < 1.0:
        return runs_note(f"DDIM eta={res.eta:g} has no diffusers scheduler with custom levels: the diffusers export runs "
                         "these levels with EulerDiscreteScheduler (deterministic DDIM, eta=0), not the "
                         f"eta={res.eta:g} sampler they were optimised for", res, value_of, sampler="ddim",
                         settings={"eta": 0.0})
    return None


def churn_note(res: Any, scheduler: str, value_of: Optional[Callable[..., float]] = None) -> Optional[str]:
    """The note when an ``euler``/``heun`` schedule optimised with k-diffusion's churn is exported to diffusers,
    which runs it without churn (else None)."""
    if res.sampler not in ("euler", "heun") or not res.settings.get("s_churn", 0.0) > 0.0:
        return None
    churn = ", ".join(f"{k}={res.settings[k]:g}" for k in ("s_churn", "s_tmin", "s_tmax", "s_noise"))
    how = ("EulerDiscreteScheduler.step(s_churn=...) evaluates the model before it adds the churn noise, another "
           "sampler" if scheduler == "EulerDiscreteScheduler" else f"{scheduler} has no churn")
    return runs_note(f"k-diffusion's churn ({churn}) has no diffusers equivalent ({how}): the diffusers export runs "
                     "these levels without churn", res, value_of, settings={**res.settings, "s_churn": 0.0}) + (
        f"; --format k-diffusion runs them as optimised (sample_{res.sampler} with these settings)")


def init_note(res: Any, value_of: Optional[Callable[..., float]] = None) -> Optional[str]:
    """The note when the schedule was optimised from the exact start (noised data) and the sampler libraries
    start from white noise (else None)."""
    if getattr(res, "init", "white") != "exact":
        return None
    return runs_note("optimised with --init exact (the noised data's marginal N(0, S + sigma_max^2) as the start); "
                     "the libraries' samplers start from white noise, as this export does", res, value_of,
                     init="white") + "; optimise with --init white for the start they run"


def final_noise_note(res: Any, timesteps: list[int], value_of: Optional[Callable[..., float]] = None) -> Optional[str]:
    """The note when DDPMScheduler(variance_type='fixed_large') adds noise on a last step at a timestep > 0, which
    the optimised DDPM does not (else None)."""
    if not (res.sampler == "ddpm" and res.variance == "beta" and timesteps and timesteps[-1] > 0):
        return None
    beta = 1.0 - float(res.alpha_bar[-1])
    return runs_note(f"DDPMScheduler(variance_type='fixed_large') adds noise of variance beta = 1 - alpha_bar = "
                     f"{beta:.6g} on its last step (timestep {timesteps[-1]} > 0; scheduling_ddpm.py adds noise when "
                     "t > 0), which the optimised DDPM does not add", res, value_of, final_noise=beta) + (
        "; --format diffusers ends the schedule at timestep 0 unless --endpoints fixes the last level"
        if len(res.alpha_bar) >= 2 else "; a one-level schedule has no other level to end at timestep 0")


def _ve_sigmas(alpha_bar: np.ndarray) -> Optional[list[float]]:
    """The levels as EulerDiscreteScheduler sigmas, or None when the first is alpha_bar = 0 (sigma = inf)."""
    from .. import export

    if alpha_bar[0] == 0:
        return None
    try:  # float64, as listed; None where two levels share one float64 sigma (the export's own error says so)
        return export.to_k_diffusion_sigmas(alpha_bar).tolist()
    except ValueError:
        return None


def _export_flow(res: Any, value_of: Optional[Callable[..., float]] = None) -> dict[str, Any]:
    """FlowMatchEulerDiscreteScheduler(shift=1.0).set_timesteps(sigmas=t): the flow times, noisiest first."""
    from .. import export

    notes = ["diffusers applies its own shift to the sigmas it is given: configure shift=1.0 and "
             "use_dynamic_shifting=False, as here (with use_dynamic_shifting=True pass the identity mu: mu=0.0 for "
             "time_shift_type='exponential', mu=1.0 for 'linear')"]
    notes += [n for n in (substitution_note(res, value_of), init_note(res, value_of)) if n]
    kw = export.to_diffusers(res.alpha_bar, scheduler="FlowMatchEulerDiscreteScheduler")
    return {"scheduler": "FlowMatchEulerDiscreteScheduler",
            "config": {"shift": 1.0, "use_dynamic_shifting": False},
            "set_timesteps": kw, "sigmas": kw["sigmas"], "notes": notes}


_DIVERGENCE_WORDS = {"kl": "KL(data||gen)", "kl-reverse": "KL(gen||data)", "w2": "W2^2"}


def runs_note(text: str, res: Any, value_of: Optional[Callable[..., float]], alpha_bar: Optional[np.ndarray] = None,
              **what: Any) -> str:
    """``text`` with the objective of what the export runs (``value_of(alpha_bar, **what)``) next to the optimised
    value, when ``value_of`` is given."""
    if value_of is None:
        return text
    v = value_of(res.alpha_bar if alpha_bar is None else alpha_bar, **what)
    name = _DIVERGENCE_WORDS[res.divergence]
    if res.value > 0:
        return (f"{text}: {name} of what it runs = {v:.6g}, of the optimised schedule = {res.value:.6g} "
                f"({v / res.value:.4g}x)")
    return f"{text}: {name} of what it runs = {v:.6g}"


def standin_note(res: Any, config: dict[str, Any], value_of: Optional[Callable[..., float]]) -> Optional[str]:
    """The note when the exported DPMSolverMultistepScheduler runs diffusers' ``2**-24`` stand-in instead of the
    optimised first level alpha_bar = 0 (``rescale_betas_zero_snr=True``), with the objective of both (else None)."""
    from ..export import _ZERO_SNR_STANDIN

    if not (config.get("rescale_betas_zero_snr") and res.alpha_bar[0] == 0.0):
        return None
    runs = res.alpha_bar.copy()
    runs[0] = _ZERO_SNR_STANDIN
    text = (f"DPMSolverMultistepScheduler with rescale_betas_zero_snr=True runs its noisiest timestep at diffusers' "
            f"stand-in alphas_cumprod[-1] = 2**-24 = {_ZERO_SNR_STANDIN:.6g}, not at the optimised alpha_bar = 0, so "
            "its output is not the optimised one")
    if runs[0] < runs[1]:
        text = runs_note(text, res, value_of, runs)
    return text + "; --sampler ddpm (DDPMScheduler) runs alpha_bar = 0 exactly"


def _diffusers_scheduler(res: Any) -> tuple[str, dict[str, Any], list[str]]:
    """The diffusers scheduler that runs ``res`` with custom levels, its sampler settings as constructor arguments,
    and the notes on what it runs differently; ValueError for a sampler without one."""
    if res.sampler in ("ddpm", "heun") or (res.sampler == "ddim" and res.eta == 1.0):
        if res.sampler == "heun":
            return "HeunDiscreteScheduler", {}, ["HeunDiscreteScheduler takes timesteps only; k-diffusion's "
                                                 "sample_heun takes the sigmas"]
        beta = res.sampler == "ddpm" and res.variance == "beta"
        notes = [] if res.sampler == "ddpm" else [
            "DDIM eta=1 is DDPM with the posterior variance (DDIMScheduler takes no custom timesteps)"]
        return "DDPMScheduler", {"variance_type": "fixed_large" if beta else "fixed_small", "clip_sample": False}, notes
    if res.sampler == "dpmsolver_multistep":  # every option is a constructor argument by the same name
        from .. import sampler_info

        options = sampler_info(res.sampler)["options"]
        return "DPMSolverMultistepScheduler", {k: res.settings.get(k, v[0]) for k, v in options.items()}, []
    if res.sampler in _NO_CUSTOM_DIFFUSERS:
        raise ValueError(f"--format diffusers with --sampler {res.sampler}: {_NO_CUSTOM_DIFFUSERS[res.sampler]}")
    if res.sampler not in ("ddim", "euler"):
        raise ValueError(_no_diffusers_scheduler(res.sampler))
    if res.sampler == "euler":  # init_noise_sigma = sigma_max: k-diffusion's white start N(0, sigma_max^2)
        return "EulerDiscreteScheduler", {"timestep_spacing": "linspace", "final_sigmas_type": "zero"}, []
    # VE Euler is deterministic DDIM (Karras et al. 2022, arXiv 2206.00364, §3); with custom sigmas
    # timestep_spacing only sets init_noise_sigma, sqrt(sigma_max^2 + 1) for "leading": DDIM's white start
    return "EulerDiscreteScheduler", {"timestep_spacing": "leading", "final_sigmas_type": "zero"}, [
        "VE Euler is deterministic DDIM (Karras et al. 2022, arXiv 2206.00364, §3); timestep_spacing='leading' makes "
        "the pipeline start from init_noise_sigma = sqrt(1 + sigma_max^2), DDIM's white start"]


def _below_grid_note(sigmas: list[float], grid: np.ndarray) -> list[str]:
    """A note when sigmas lie below the grid's least noisy training level (audit of 6 December: exported silently,
    while a sigma above its top is refused): EulerDiscreteScheduler conditions the model on timestep 0 there."""
    from ..schedules import alpha_bar_to_sigmas

    least = float(alpha_bar_to_sigmas(grid[:1])[0])
    below = [v for v in sigmas if 0.0 < v < least * (1 - 1e-6)]  # (float32 casts the grid's own sigma by ~1e-7)
    if not below:
        return []
    return [f"{len(below)} of the sigmas ({', '.join(f'{v:.4g}' for v in below)}) lie below the grid's least noisy "
            f"training level (sigma {least:.4g}, timestep 0): EulerDiscreteScheduler runs the model there at timestep "
            f"0, a noise level it was not trained at; fix the last level at the grid's with --endpoints "
            f"none,{float(grid[0])!r} (or A,{float(grid[0])!r})"]


def _export_diffusers(res: Any, grid: Optional[np.ndarray],
                      value_of: Optional[Callable[..., float]] = None) -> dict[str, Any]:
    """Scheduler class, its config and ``set_timesteps`` keyword arguments that run ``res`` in diffusers.

    ``value_of(alpha_bar, **what)``: the optimisation's objective of what diffusers runs, for the notes on
    what it runs differently (:func:`runs_note`)."""
    from .. import export
    from ..optimize import default_grid

    if res.sampler.startswith("flow_match"):
        return _export_flow(res, value_of)
    sched, config, notes = _diffusers_scheduler(res)
    timesteps = None if res.timesteps is None else [int(t) for t in res.timesteps]
    # the training grid the config carries (num_train_timesteps, beta_schedule / trained_betas,
    # rescale_betas_zero_snr): the timestep exports read their levels off it, and EulerDiscreteScheduler derives the
    # model's timesteps from it
    config_grid = default_grid() if grid is None else grid
    if sched == "EulerDiscreteScheduler":  # ValueError at alpha_bar = 0, and for a sigma above the config's grid
        # (which conditions the model: audit of 6 December)
        kwargs: dict[str, Any] = {"sigmas": export.to_diffusers(res.alpha_bar, scheduler=sched,
                                                                grid=config_grid)["sigmas"]}
        notes += _below_grid_note(kwargs["sigmas"], config_grid)
    elif grid is None:
        raise ValueError(f"{sched} runs training timesteps, and this schedule was optimised off any grid: rerun with "
                         "--grid (e.g. --grid 1000), or with --format diffusers, which uses the 1000-step linear DDPM "
                         "grid by default")
    elif sched == "DPMSolverMultistepScheduler":
        kwargs = export.dpmsolver_timesteps(res.alpha_bar, config, grid)
    else:
        kwargs = {"timesteps": timesteps}
    notes += [n for n in (substitution_note(res, value_of), churn_note(res, sched, value_of),
                          final_noise_note(res, kwargs.get("timesteps", []), value_of), init_note(res, value_of)) if n]
    if grid is None:
        notes.append("config holds symsched's default training grid (1000-step linear DDPM betas): the timesteps "
                     "passed to the model come from it, and a sigma above a model's largest training sigma runs at "
                     "its last timestep; for your model re-run with its grid, --grid T --grid-betas FAMILY (Stable "
                     "Diffusion 1.x/2.x and SDXL: --grid 1000 --grid-betas scaled_linear) or --grid "
                     "alphas_cumprod.npy (np.save of its scheduler's alphas_cumprod), so that every level lies in "
                     "its training range")
    config = {**export._diffusers_grid_config(config_grid, sched), **config}
    if res.alpha_bar[0] == 0.0 and sched == "DDPMScheduler":  # its default prediction_type="epsilon" has no x0
        # estimate at pure noise (DPMSolverMultistep runs its 2**-24 stand-in instead: standin_note)
        notes.append("the first level is alpha_bar = 0 (zero terminal SNR): add your model's prediction_type to config "
                     "('v_prediction' or 'sample'); with diffusers' default 'epsilon' its x0 estimate divides by "
                     "sqrt(alpha_bar) = 0 (NaN)")
    if sched == "DPMSolverMultistepScheduler":
        note = standin_note(res, config, value_of)
        if note:
            notes.append(note)
    sigmas = _ve_sigmas(res.alpha_bar)
    if sigmas is not None and res.settings.get("final_sigmas_type") == "sigma_min":
        sigmas = sigmas[:-1]  # the scheduler stops at its last level (alphas_cumprod[0]): no step to sigma = 0
    d: dict[str, Any] = {} if timesteps is None else {"timesteps": timesteps}
    d.update({"scheduler": sched, "config": config, "set_timesteps": kwargs, "sigmas": sigmas, "notes": notes})
    return d


def k_diffusion_call(res: Any, value_of: Optional[Callable[..., float]] = None,
                     args: Optional[argparse.Namespace] = None) -> tuple[str, dict[str, Any], list[str]]:
    """The k-diffusion function that runs ``res``'s sigmas, the keyword arguments of its settings that differ from
    the function's defaults (symsched's defaults are k-diffusion's), and the notes on what it runs differently (with
    the command's ``args``, also where its first sigma comes from: :func:`range_note`)."""
    from .. import sampler_info

    init = [n for n in (init_note(res, value_of), None if args is None else range_note(args, res.sigmas)) if n]
    if res.sampler == "ddim":  # VE Euler is deterministic DDIM; ancestral Euler with eta is DDIM(eta)
        start = ("from DDIM's white start N(0, 1 + sigma_max^2): x = (1 + sigmas[0] ** 2) ** 0.5 * torch.randn(shape), "
                 "not sigmas[0] * torch.randn(shape)")
        if res.eta > 0.0:  # the identity of tests/test_sampler_identities.py (sigma^2 = (1 - alpha_bar) / alpha_bar)
            return ("k_diffusion.sampling.sample_euler_ancestral", {"eta": res.eta},
                    [f"sample_euler_ancestral(eta={res.eta:g}) is DDIM eta={res.eta:g} (Song et al. 2021, eq. 16) "
                     + start] + init)
        note = ["sample_euler is deterministic DDIM (Karras et al. 2022, §3) " + start]
        return "k_diffusion.sampling.sample_euler", {}, note + init
    info = sampler_info(res.sampler)
    defaults = {**info["params"], **{k: v[0] for k, v in info["options"].items()}}
    kwargs = {k: v for k, v in res.settings.items() if k in defaults and k != "noise_sampler" and v != defaults[k]}
    notes = init
    from .._library_samplers import MIN_STEPS

    if len(res.alpha_bar) < MIN_STEPS.get(res.sampler, 1):  # a JSON document still records the schedule
        notes.append(f"k-diffusion 0.1.1's sample_{res.sampler} fails with {len(res.alpha_bar)} step(s) "
                     f"(UnboundLocalError: h): these sigmas cannot run there; optimise --steps "
                     f"{MIN_STEPS[res.sampler]} or more for it")
    window = churn_window_note(res, value_of)
    if window:
        notes.append(window)
    if res.settings.get("noise_sampler") == "independent":
        notes.append("noise_sampler='independent': pass noise_sampler=k_diffusion.sampling.default_noise_sampler(x) "
                     "(without it sample_dpmpp_sde draws from a Brownian tree)")
    return f"k_diffusion.sampling.sample_{res.sampler}", kwargs, notes


def _export_comfyui(args: argparse.Namespace, res: Any, value_of: Optional[Callable[..., float]] = None
                    ) -> dict[str, Any]:
    """ComfyUI's ManualSigmas text (:func:`symsched.export.to_comfyui_sigmas`), the KSamplerSelect sampler_name
    that runs it, the settings that differ from that sampler's defaults and the notes (what ComfyUI runs otherwise).
    ComfyUI runs its own copy of k-diffusion's samplers on these sigmas (``comfy/k_diffusion/sampling.py``); its
    flow-matching models (SD3, Flux) take flow times t as sigmas, on which euler is the flow-matching Euler step."""
    from .. import export, sampler_info

    flow = res.sampler == "flow_match_euler"
    text = export.to_comfyui_sigmas(res.alpha_bar, flow=flow)
    if flow:
        name, kwargs = "euler", {}
        notes = ["sigmas are flow times t (ComfyUI's sigmas for flow-matching models such as SD3 and Flux, x = (1 - t) "
                 "x0 + t eps): its euler sampler steps x + (t_next - t)(x - x0_hat)/t, the flow-matching Euler step"]
        notes += [n for n in (init_note(res, value_of), _comfyui_flow_start(res)) if n]
    else:
        fn, kwargs, notes = k_diffusion_call(res, value_of, args)
        name = fn.rsplit("sample_", 1)[1]
        defaults = sampler_info(name)["params"]  # (DDIM eta=1 runs as euler_ancestral's default eta=1)
        kwargs = {k: v for k, v in kwargs.items() if defaults.get(k, None) != v}
        # k-diffusion's own start and noise-sampler advice does not apply: ComfyUI scales the noise itself
        notes = [n for n in notes if not n.startswith(("sample_euler", "noise_sampler="))]
        notes += _comfyui_start(res) + (["noise_sampler='independent' has no ComfyUI setting: its dpmpp_sde draws the "
                                         "two half-step noises from a Brownian tree, as symsched's default"]
                                        if res.settings.get("noise_sampler") == "independent" else [])
    how, unset = _comfyui_how(name, kwargs)
    notes = [how, *unset, *notes, "ComfyUI runs its own copy of k-diffusion's samplers; symsched's witnesses are "
             "k-diffusion 0.1.1 and diffusers, not ComfyUI itself"]
    return {"node": "ManualSigmas", "sigmas": text, "sampler_name": name, "settings": kwargs, "notes": notes,
            "alpha_bar": res.alpha_bar.tolist()}


def _comfyui_how(name: str, kwargs: dict[str, Any]) -> tuple[str, list[str]]:
    """The nodes that run sampler ``name`` with ``kwargs`` in ComfyUI, and a note for settings no node sets."""
    node, params = COMFYUI_SAMPLER_NODES.get(name, (None, ()))
    settable = {k: v for k, v in kwargs.items() if k in params}
    sampler = (f"{node}({', '.join(f'{k}={v!r}' for k, v in settable.items())}) in place of KSamplerSelect"
               if settable else f"KSamplerSelect(sampler_name='{name}')")
    how = f"in ComfyUI: a ManualSigmas node with this text as its sigmas and {sampler}, into SamplerCustom or " \
          "SamplerCustomAdvanced"
    unset = sorted(set(kwargs) - set(settable))
    return how, ([f"ComfyUI has no node that sets {', '.join(unset)} for {name}: it runs {name} with its defaults, not "
                  "the settings these sigmas were optimised for; optimise without them for ComfyUI"] if unset else [])


def _comfyui_start(res: Any) -> list[str]:
    """ComfyUI's start for SD-type (eps/v) models against the one the VE sigmas were optimised for."""
    if getattr(res, "init", "white") == "exact":  # (break-test 7 December: this said "optimised for k-diffusion's
        return ["ComfyUI starts SD-type models from white noise, N(0, 1 + sigmas[0]^2) when the first sigma is at "
                "or above the model's sigma_max and N(0, sigmas[0]^2) below it, not from the --init exact start "
                "these sigmas were optimised for"]  # start" after the note that they were optimised from the exact one)
    if res.sampler == "ddim":
        return ["ComfyUI starts from N(0, 1 + sigmas[0]^2), the DDIM white start these sigmas were optimised for, "
                "when the first sigma is at or above the model's sigma_max, and from N(0, sigmas[0]^2) below it"]
    return ["these sigmas were optimised for k-diffusion's start N(0, sigmas[0]^2); ComfyUI starts SD-type models from "
            "N(0, 1 + sigmas[0]^2) when the first sigma is at or above the model's sigma_max (a variance larger by "
            f"{1 / float(res.sigmas[0]) ** 2:.3g} relative)"]


def _comfyui_flow_start(res: Any) -> Optional[str]:
    """ComfyUI starts a flow model from t_0 noise (an empty latent): variance t_0^2, not 1, below t_0 = 1."""
    from ..schedules import alpha_bar_to_flow_t

    t0 = float(alpha_bar_to_flow_t(res.alpha_bar[:1])[0])
    if t0 == 1.0:
        return None
    return (f"the first flow time is {t0:.6g} < 1: ComfyUI starts an empty latent there from t0 * noise (variance "
            f"{t0 * t0:.4g}), while symsched's flow start has variance 1; fix the first level at pure noise "
            "(--endpoints 0,...) for ComfyUI")


def churn_window_note(res: Any, value_of: Optional[Callable[..., float]] = None) -> Optional[str]:
    """The note when a sigma lies so close to an edge of k-diffusion's churn window ``s_tmin <= sigma <= s_tmax`` that
    float32 decides it the other way (torch compares a float32 sigma with the edges cast to float32: ``torch.tensor``
    of the JSON list is float32 by default): the optimum often sits at an edge, where churn switches in a jump."""
    if res.sampler not in ("euler", "heun", "dpm_2") or not res.settings.get("s_churn", 0.0) > 0.0:
        return None
    from ..symbolic.samplers._kdiffusion import f32

    lo, hi = float(res.settings.get("s_tmin", 0.0)), float(res.settings.get("s_tmax", math.inf))
    from ..schedules import alpha_bar_to_sigmas

    sig = np.asarray(getattr(res, "sigmas", None) if getattr(res, "sigmas", None) is not None
                     else alpha_bar_to_sigmas(res.alpha_bar), dtype=np.float64)
    s32 = sig.astype(np.float32).astype(np.float64)
    flip = np.flatnonzero(((lo <= sig) & (sig <= hi)) != ((f32(lo) <= s32) & (s32 <= f32(hi))))
    if not flip.size:
        return None
    i = int(flip[0])
    text = (f"sigmas[{i}] = {float(sig[i])!r} is within float32 rounding of the churn window [s_tmin, s_tmax] = "
            f"[{lo:g}, {hi:g}]: sample_{res.sampler} decides churn in the sigmas' dtype, and as float32 "
            f"(torch.tensor's default) step {i} {'does not churn' if lo <= sig[i] <= hi else 'churns'}, unlike the "
            "float64 sigmas optimised; "
            "load them with torch.tensor(sigmas, dtype=torch.float64)")
    if value_of is None:
        return text
    v = value_of(None, sigmas=sig.astype(np.float32))
    return f"{text} ({_DIVERGENCE_WORDS[res.divergence]} as float32 = {v:.6g}, as optimised = {res.value:.6g})"


def range_note(args: argparse.Namespace, sigmas: Any) -> Optional[str]:
    """The note of a k-diffusion export whose first sigma is symsched's default (the 1000-step linear DDPM grid's
    noisiest level, sigma ~157): a model trained on another sigma range should fix its own (None otherwise)."""
    if parse_endpoints(args.endpoints) is not None or args.grid is not None:
        return None
    edm = 1.0 / (1.0 + 80.0**2)
    return (f"the first sigma {float(sigmas[0]):.4g} is the noisiest level of symsched's default 1000-step linear DDPM "
            "grid (--endpoints default); for a model trained on another range pass its sigma_max as --endpoints "
            f"A,none with A = 1/(1 + sigma_max^2) (EDM's sigma_max = 80: --endpoints {edm:.6g},none)")


def _call_text(function: str, kwargs: dict[str, Any], vp_start: bool = False, independent: bool = False) -> str:
    """``function(model, x, sigmas, k=v, ...)``, the way to run an exported k-diffusion schedule (``vp_start``:
    from DDIM's white start N(0, 1 + sigma_max^2) instead of k-diffusion's N(0, sigma_max^2))."""
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    if independent:  # code, not a value: the JSON kwargs cannot hold it (its note says so)
        args += ", noise_sampler=k_diffusion.sampling.default_noise_sampler(x)"
    x = "(1 + sigmas[0] ** 2) ** 0.5" if vp_start else "sigmas[0]"
    return f"run it as {function}(model, x, sigmas{args}), x = {x} * torch.randn(shape)"


def _prepare(args: argparse.Namespace, notes: list[str]) -> tuple[Any, Optional[np.ndarray], dict[str, np.ndarray]]:
    """Check every option before any work: (endpoints, grid, flow baselines); what the run will do differently from
    what was asked goes to ``notes`` (printed once every check has passed)."""
    endpoints = parse_endpoints(args.endpoints)
    grid = parse_grid(args.grid, args.grid_betas)
    given_flow = args.flow
    _settings.resolve_sampler(args)  # a flow_match_* sampler implies --flow
    if args.flow:
        if grid is not None:
            raise ValueError(f"--{'flow' if given_flow else 'sampler ' + args.sampler} takes no --grid: flow-matching "
                             "models are trained on continuous t")
        if endpoints is None:  # sampling starts from pure noise, t = 1
            endpoints = (0.0, None)
    elif args.shift_from_resolution is not None:
        raise ValueError("--shift-from-resolution applies only with --flow (or a flow_match_* --sampler)")
    check_export(args, endpoints, grid, given_flow)
    if args.plot is not None:
        from ..plots import figure_format

        figure_format(args.plot, "--plot")  # before the optimisation
    _check_zero_level(args, endpoints, grid)
    flow_std = flow_baselines(args.steps, args.shift_from_resolution) if args.flow else {}
    needs_timesteps = args.sampler in ("ddpm", "heun", "dpmsolver_multistep") or (args.sampler == "ddim" and args.eta == 1.0)
    if args.format == "diffusers" and grid is None and needs_timesteps:
        from ..schedules import training_grid

        betas = args.grid_betas or "linear"
        if endpoints is not None and endpoints[0] == 0.0:  # keep the requested zero first level: a zero-SNR grid
            grid = training_grid(betas, rescale_zero_snr=True)
            notes.append(f"--format diffusers needs training timesteps and --endpoints asks for a first level "
                         f"alpha_bar = 0: using the 1000-step {betas} DDPM grid rescaled to zero terminal SNR "
                         "(rescale_betas_zero_snr=True in the exported config); pass --grid FILE.npy for your model's "
                         "own zero-SNR grid")
        else:
            grid = training_grid(betas)
            notes.append(f"--format diffusers needs training timesteps: using the 1000-step {betas} DDPM grid (--grid "
                         f"1000 --grid-betas {betas})")
    elif args.grid_betas is not None and grid is None:
        raise ValueError(f"--grid-betas {args.grid_betas} applies only with an integer --grid T (or with --format "
                         "diffusers for a sampler that needs training timesteps): no grid is built here")
    return endpoints, grid, flow_std


def _check_zero_level(args: argparse.Namespace, endpoints: Any, grid: Optional[np.ndarray]) -> None:
    """Refuse, before any work and naming the option, a first level alpha_bar = 0 that --grid cannot hold."""
    if endpoints is not None and endpoints[0] == 0.0 and grid is not None and float(grid[-1]) != 0.0:
        from ..optimize import no_zero_level

        raise ValueError(
            f"--endpoints {args.endpoints}: the first level alpha_bar = 0 (pure noise) is not on --grid {args.grid}, "
            "whose noisiest level is " + no_zero_level(grid, "a zero-SNR grid as --grid FILE.npy (e.g. np.save of "
                                                        "symsched.schedules.training_grid(..., rescale_zero_snr=True))",
                                                        "--endpoints default")
        )


def _check_zero_start(args: argparse.Namespace, options: dict[str, Any], endpoints: Any, grid: Any) -> None:
    """Refuse, before any work and naming the option, a first level alpha_bar = 0 that --sampler with its settings
    (--eta, --variance, --option) cannot start from."""
    if not _first_level_zero(endpoints, grid):
        return
    from .. import output_spectrum

    kw = dict(options)
    if args.eta is not None:
        kw["eta"] = args.eta
    if args.sampler == "ddpm":
        kw["variance"] = args.variance
    try:  # a one-mode, two-level run is cheap and raises where the sampler has no value at alpha_bar = 0
        output_spectrum(np.ones(1), np.array([0.0, 0.5]), sampler=args.sampler, **kw)
    except ValueError as exc:
        why = str(exc).split(": ", 1)[1] if str(exc).startswith(("alpha_bar: ", "sigmas: ")) else str(exc)
        source = (f"--endpoints {args.endpoints}" if endpoints is not None else
                  f"--grid {args.grid} (zero terminal SNR: its noisiest level is alpha_bar = 0)")
        raise ValueError(f"{source} with --sampler {args.sampler}: {why}") from None


def _extra_baselines(flow_std: dict[str, np.ndarray], endpoints: Any, grid: Optional[np.ndarray]) -> dict[str, Any]:
    """The flow schedules ``optimize_schedule`` does not compare with by itself (it takes uniform t and SD3's shift
    when the first level is 0 off a grid: :data:`symsched.optimize.FLOW_BASELINES`): Flux at a resolution, or all of
    them, marked unfair, when --endpoints fixes the first level elsewhere."""
    from ..optimize import FLOW_BASELINES

    native = FLOW_BASELINES if grid is None and endpoints is not None and endpoints[0] == 0.0 else ()
    return {k: v for k, v in flow_std.items() if k not in native}


def _baseline_table(S: np.ndarray, res: Any, flow_std: dict[str, np.ndarray]) -> dict[str, Any]:
    """Value, KL and W2 of the optimum and of every baseline (with whether it meets the constraints); prints the
    flow-matching comparison."""
    from .. import export
    from ..optimize import _ratio_to_optimum, schedule_metrics

    kw = dict(sampler=res.sampler, init=res.init, **res.settings)

    def metrics(ab: np.ndarray) -> dict[str, Any]:
        """KL and W2 of a baseline; inf, with the reason, where the sampler cannot run it (Heun from alpha_bar = 0,
        a baseline of a zero-terminal-SNR grid), as the search scored it."""
        try:
            return schedule_metrics(S, ab, **kw)
        except ValueError as exc:
            return {"kl": math.inf, "w2": math.inf, "refused": " ".join(str(exc).split())}

    table = {"optimised": {"value": res.value, "kl": res.kl, "w2": res.w2}}
    for name, ab in res.baseline_schedules.items():
        if name in res.baselines:
            m = metrics(ab)
            table[name] = {"value": res.baselines[name], "kl": m["kl"], "w2": m["w2"],
                           "feasible": bool(res.feasible.get(name, True))}
            if "refused" in m:
                table[name]["refused"] = m["refused"]
    if flow_std:
        what = ("weighted " if res.weighted else "") + res.divergence
        print(f"flow-matching schedules ({res.sampler}, K={len(res.alpha_bar)}, {what}):")
        print(f"  {'optimised':34s} {res.value:12.6g}")
        unfair = False
        for name in (n for n in flow_std if n in res.baselines):
            v, fair = res.baselines[name], bool(res.feasible.get(name, True))
            unfair = unfair or not fair
            ratio = _ratio_to_optimum(v, res.value)
            print(f"  {name + ('' if fair else ' †'):34s} {v:12.6g}   ({ratio:.3g}x the optimum)")
        if unfair:
            print(f"  † does not meet the constraint ({res.constraint}): not a fair comparison")
        t = export.to_diffusers(res.alpha_bar, scheduler="flow_match_euler")["sigmas"]
        print("FlowMatchEulerDiscreteScheduler(shift=1.0).set_timesteps(sigmas=[" + ", ".join(f"{v:.6g}" for v in t)
              + "])")
    return table


def _value_of(S: np.ndarray, res: Any, weights: Optional[np.ndarray]) -> Callable[..., float]:
    """The optimisation's objective (divergence, init, weights) at levels ``alpha_bar``: of the optimised sampler
    and settings, or of another ``sampler``/``settings``/``init`` that an export runs, plus ``final_noise`` (a
    variance added to every mode after the last step)."""
    from .. import divergence_and_grad, output_spectrum
    from ..api import _divergence_terms, _weights

    def value(alpha_bar: Optional[np.ndarray], *, sampler: Optional[str] = None,
              settings: Optional[dict[str, Any]] = None, final_noise: float = 0.0, init: Optional[str] = None,
              sigmas: Optional[np.ndarray] = None) -> float:
        kw = dict(res.settings if settings is None else settings, sampler=res.sampler if sampler is None else sampler,
                  init=res.init if init is None else init)
        if sigmas is not None:  # a VE sampler's own sigmas (their dtype decides k-diffusion's churn window)
            from .. import output_spectrum_ve

            P = output_spectrum_ve(S, sigmas, **kw)
            return float(np.sum(_weights(weights, S) * _divergence_terms(res.divergence, P.ravel(), S.ravel())))
        if final_noise == 0.0:
            return float(divergence_and_grad(S, alpha_bar, divergence=res.divergence, weights=weights, **kw)[0])
        P = output_spectrum(S, alpha_bar, **kw) + final_noise
        return float(np.sum(_weights(weights, S) * _divergence_terms(res.divergence, P.ravel(), S.ravel())))

    return value


def _json_doc(args: argparse.Namespace, S: np.ndarray, res: Any, grid: Optional[np.ndarray],
              table: dict[str, Any], value_of: Optional[Callable[..., float]] = None) -> dict[str, Any]:
    """The --format json document: the result, the baseline table and every export that applies."""
    from .. import __version__, export

    doc = {"symsched_version": __version__, "spectrum": str(args.spectrum), "modes": int(S.size)}
    doc.update(res.to_dict())
    doc["baseline_table"] = table
    k_sigmas = None  # sigma = inf (alpha_bar = 0) is no k-diffusion sigma
    if res.alpha_bar[0] > 0:
        try:
            k_sigmas = export.to_k_diffusion_sigmas(res.alpha_bar).tolist()
        except ValueError as exc:  # two levels share one float64 sigma: the result stays usable, with the reason
            doc["k_diffusion_notes"] = [str(exc)]
    if k_sigmas is not None:
        doc["k_diffusion_sigmas"] = k_sigmas
    if k_sigmas is not None and res.sampler not in _NO_K_DIFFUSION and not args.flow:
        fn, kwargs, notes = k_diffusion_call(res, value_of, args)
        doc.update({"k_diffusion_function": fn, "k_diffusion_kwargs": kwargs, "k_diffusion_notes": notes})
    try:
        doc["diffusers"] = _export_diffusers(res, grid, value_of)
    except ValueError as exc:
        # no diffusers scheduler runs this result: no sigma list here either (audit of 6 December: bare sigmas
        # under "diffusers" read as an Euler schedule); the levels are the document's own alpha_bar / sigmas
        doc["diffusers"] = {"scheduler": None, "notes": [str(exc)]}
    return doc


def _write(args: argparse.Namespace, S: np.ndarray, res: Any, grid: Optional[np.ndarray],
           table: dict[str, Any], weights: Optional[np.ndarray] = None) -> None:
    from .. import export
    from .._io import atomic_write_json, atomic_write_text, save_npy

    out: Path = args.out
    value_of = _value_of(S, res, weights)
    notes: list[str] = []
    if args.format == "json":
        doc = _json_doc(args, S, res, grid, table, value_of)
        atomic_write_json(out, doc)
        # the console shows the diffusers call with --flow; a changed first level matters wherever it is used
        notes = [n for n in doc["diffusers"].get("notes", []) if n.startswith("DPMSolverMultistepScheduler with")]
        sub = substitution_note(res, value_of)
        notes += [sub] if sub and args.flow else []
    elif args.format == "diffusers":
        doc = _export_diffusers(res, grid, value_of)
        doc["alpha_bar"] = res.alpha_bar.tolist()
        atomic_write_json(out, doc)
        notes = list(doc["notes"])  # every note of the file, also on the console
    elif args.format == "comfyui":
        doc = _export_comfyui(args, res, value_of)
        atomic_write_json(out, doc)
        notes = list(doc["notes"])
    else:
        sig = export.to_k_diffusion_sigmas(res.alpha_bar)
        fn, kwargs, notes = k_diffusion_call(res, value_of, args)
        if out.suffix.lower() == ".npy":
            save_npy(out, sig)
        else:  # inf as Infinity (s_tmax, a first sigma): json.load gives the float k-diffusion takes
            text = json.dumps({"function": fn, "sigmas": sig.tolist(), "kwargs": kwargs, "notes": notes}, indent=2)
            atomic_write_text(out, text + "\n")
        notes = [_call_text(fn, kwargs, vp_start=res.sampler == "ddim",
                            independent=res.settings.get("noise_sampler") == "independent"), *notes]
    print(f"wrote {args.format} schedule to {out}")
    for note in notes:
        print(f"note: {note}")


def _diffusers_last_level(args: argparse.Namespace, options: dict[str, Any], endpoints: Any, grid: Any,
                          notes: list[str]) -> Any:
    """--format diffusers with a scheduler that must end at timestep 0 to run the optimised sampler: the last level
    pinned to ``grid[0]`` when --endpoints leaves it free (a note in ``notes`` says so), else ``endpoints`` unchanged.

    DDPMScheduler(variance_type='fixed_large') adds noise of variance beta on a last step at a timestep > 0 (the
    optimised DDPM adds none); DPMSolverMultistepScheduler(final_sigmas_type='sigma_min') appends alphas_cumprod[0]
    itself as the final level. A fixed last level elsewhere is refused (sigma_min) or noted (fixed_large)."""
    if args.format != "diffusers" or grid is None or args.steps < 2:
        return endpoints
    if args.sampler == "ddpm" and args.variance == "beta":
        why = "DDPMScheduler(variance_type='fixed_large') adds noise of variance beta on a last step at a timestep > 0"
    elif args.sampler == "dpmsolver_multistep" and options.get("final_sigmas_type") == "sigma_min":
        why = "DPMSolverMultistepScheduler(final_sigmas_type='sigma_min') ends at alphas_cumprod[0], which it appends"
    else:
        return endpoints
    first, last = (float(grid[-1]), None) if endpoints is None else endpoints
    if last is None:
        notes.append(f"--format diffusers: {why}, so the last level is fixed at timestep 0, alpha_bar = "
                     f"{float(grid[0]):.6g} (fix it yourself with --endpoints)")
        return first, float(grid[0])
    if why.startswith("DPM") and last != float(grid[0]):
        raise ValueError(f"--endpoints {args.endpoints}: {why}; the last level must be alpha_bar = {float(grid[0])!r} "
                         "(or 'none')")
    return endpoints


def _check_settings(args: argparse.Namespace, options: dict[str, Any], endpoints: Any, grid: Any) -> None:
    """The checks of optimize_schedule on the command's scalar arguments (same messages), made up front."""
    from .._validate import as_int
    from ..optimize import MAX_STEPS, _check_int, _check_levels_args, _check_step_ratio, _check_steps_for

    K = _check_int(args.steps, "steps", 1, MAX_STEPS)
    as_int(args.seed, "seed", 0, rule="an integer >= 0")
    _check_int(args.restarts, "restarts", 0)
    _check_step_ratio(args.max_step_ratio, ())  # (None, the default, passes)
    _settings.check(args.sampler, args.eta, args.variance, options)
    _check_steps_for(args.sampler, K, args.eta, args.variance, options)
    _check_levels_args(K, endpoints, grid, args.sampler, args.eta)
    _check_zero_start(args, options, endpoints, grid)


def _grid_family_note(args: argparse.Namespace) -> list[str]:
    """An integer --grid without --grid-betas is the linear-beta DDPM grid: say so (audit of 6 December: a Stable
    Diffusion user following the README's --grid 1000 got sigmas up to 157 where the model's grid ends at 14.6)."""
    if args.grid is None or args.grid_betas is not None or not str(args.grid).strip().isdigit():
        return []
    return [f"--grid {args.grid} without --grid-betas is the {args.grid}-step linear-beta DDPM grid (beta_schedule "
            "'linear'); Stable Diffusion 1.x/2.x and SDXL were trained on --grid-betas scaled_linear, and any other "
            "model's grid is its scheduler's alphas_cumprod saved as .npy (--grid FILE.npy)"]


def _model_calls_note(args: argparse.Namespace, options: dict[str, Any]) -> list[str]:
    """--steps counts levels: a sampler whose plan stops at its last level (DEIS, final_sigmas_type='sigma_min')
    makes one model call fewer (audit of 6 December: diffusers ran 3 calls for --steps 4 with sigma_min)."""
    from ..symbolic import sampler_module

    plan = sampler_module(args.sampler).plan(args.steps, None, None, **options)
    if plan[-1][1][-1] == args.steps:  # (the last step reaches level K, the clean level)
        return []
    given = options.get("final_sigmas_type")
    why = f"final_sigmas_type={given!r} stops" if given is not None else f"{args.sampler} stops"
    return [f"--steps {args.steps} counts levels: {why} at the last level, with no step to the clean level, so the "
            f"sampler makes {args.steps - 1} model call{'s' if args.steps != 2 else ''}; use --steps "
            f"{args.steps + 1} for {args.steps}"]


def run(args: argparse.Namespace) -> int:
    from .._io import load_npy
    from ..optimize import check_weights, optimize_schedule
    from ..spectra import load_spectrum

    notes: list[str] = []
    endpoints, grid, flow_std = _prepare(args, notes)
    options = _settings.options(args.option)
    endpoints = _diffusers_last_level(args, options, endpoints, grid, notes)
    _check_settings(args, options, endpoints, grid)  # one error line, before the spectrum line below and any work
    notes += _grid_family_note(args) + _model_calls_note(args, options)
    for note in notes:  # (only now: a note on a plan that a check then refuses would mislead)
        print(f"note: {note}")
    S = load_spectrum(args.spectrum)
    weights = None if args.weights is None else load_npy(args.weights, "--weights")
    check_weights(weights, S)  # before the spectrum line: one error line
    print(f"spectrum {args.spectrum}: shape {S.shape}, {S.size} modes, {int(np.sum(S == 0))} zero")
    res = optimize_schedule(
        S, args.steps, sampler=args.sampler, eta=args.eta, variance=args.variance, divergence=args.divergence,
        init=args.init, endpoints=endpoints, grid=grid, weights=weights, seed=args.seed, restarts=args.restarts,
        max_step_ratio=args.max_step_ratio,
        baselines=_extra_baselines(flow_std, endpoints, grid), progress=_settings.show_progress(args), **options,
    )
    print(res.summary())
    from ..optimize import ALL_ZERO_NOTE, GRADIENT_NOTE, GRADIENT_NOTE_END

    if res.indifferent:
        print(f"note: {ALL_ZERO_NOTE.format(sampler=res.sampler)}")
    if not res.success:  # (break-test of 7 December: said only inside the summary line and the JSON)
        print(f"note: the search did not converge ({res.message.split('; ')[0]}): the schedule is the lowest point "
              "it reached, not a verified optimum")
    if GRADIENT_NOTE in res.message:  # the note runs to its fixed last words (its inner message holds "; ")
        start = res.message.index(GRADIENT_NOTE)
        end = res.message.index(GRADIENT_NOTE_END, start) + len(GRADIENT_NOTE_END)
        print(f"note: {res.message[start:end]}")
    _write(args, S, res, grid, _baseline_table(S, res, flow_std), weights)
    if args.plot is not None:
        from ..plots import plot_result

        plot_result(res, S, path=args.plot)
        print(f"wrote figure to {args.plot}")
    return 0
