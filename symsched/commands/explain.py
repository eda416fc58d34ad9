"""``symsched explain``: what the optimal schedule says about one dataset (issue 12).

Writes ``explain.md`` with figures and LaTeX tables: the optimal schedules for each K and
divergence, the heuristic family each one is (with its parameters, residual and cost), the
resolution law next to simple diffusion's, SD3's and Flux's rules, and the per-step spectra
(coarse-to-fine heat maps). See :func:`symsched.insight.explain`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import _settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "explain",
        help="sweeps, heuristic fits, resolution law and per-step spectra of one dataset",
        description="Explain a dataset's optimal schedules: optimise for each K and divergence (in parallel), "
        "fit the heuristic families (cosine, shift, log-linear, Karras, sigmoid, AYS, tangent law), measure "
        "how the optimum shifts with resolution next to the practitioners' rules, and show the order in "
        "which frequency bands are generated. Writes Markdown, PNG figures, LaTeX tables and explain.json (every "
        "number) to --out.",
    )
    p.add_argument("--spectrum", default="builtin:natural-patches",
                   help="FILE.npy, a folder of PNG/JPEG images, or builtin:natural-patches (default)")
    p.add_argument("--out", default=Path("explain"), type=Path, help="output directory (default: explain)")
    p.add_argument("--steps", default="5,10,20", help="comma-separated step counts K (default 5,10,20)")
    p.add_argument("--divergences", default="kl,w2", help="comma-separated: kl, kl-reverse, w2 (default kl,w2)")
    _settings.add_sampler_arguments(
        p, sampler_help="sampler (default ddim; flow_match_euler with --flow; its library defaults unless "
        "--eta/--option say otherwise); VE samplers run on the levels' sigmas, flow-matching samplers start from "
        "pure noise t = 1",
        flow_help="flow matching (SD3/Flux): every schedule starts from pure noise t = 1 (alpha_bar = 0); "
        "sampler flow_match_euler unless --sampler names flow_match_heun")
    _settings.add_variance(p)
    _settings.add_arguments(p)
    p.add_argument("--resolutions", default="32,64,128,256",
                   help="resolutions of the fitted power law's resolution law ('none' to skip; default 32,64,128,256)")
    p.add_argument("--images", default="auto", choices=["auto", "on", "off"],
                   help="resolution law of the source photographs resized (default auto: when the spectrum is "
                   "builtin or a folder)")
    p.add_argument("--image-resolutions", default="32,64,128",
                   help="resolutions for the photographs: at least two, each at least 8 pixels "
                   "(default 32,64,128; unused with --images off)")
    _settings.add_max_step_ratio(p)
    p.add_argument("--restarts", default=0, type=int, help="random restarts of each optimisation (default 0)")
    p.add_argument("--seed", default=0, type=int, help="seed of the random restarts (default 0)")
    p.add_argument("--jobs", default=-1, type=int,
                   help=f"parallel optimisations: {_settings.JOBS_RULE} (default -1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..insight.explain import _NAMES, explain, fit_status

    steps = _settings.positive_ints(args.steps, "--steps")
    res = _settings.positive_ints(args.resolutions, "--resolutions", allow_none=True)
    img = _settings.positive_ints(args.image_resolutions, "--image-resolutions")
    divs = _settings.comma_list(args.divergences, "--divergences", str,
                                "comma-separated divergences (kl, kl-reverse, w2)")
    n_jobs = _settings.jobs(args.jobs) or 1  # (0, in this process: joblib's n_jobs=1 runs there)
    _settings.resolve_sampler(args)
    settings = _settings.settings(args, args.variance)
    out = explain(args.spectrum, args.out, steps=steps, divergences=divs, sampler=args.sampler,
                  variance=args.variance, resolutions=res, images=args.images, image_resolutions=img,
                  restarts=args.restarts, seed=args.seed, n_jobs=n_jobs, max_step_ratio=args.max_step_ratio,
                  progress=_settings.show_progress(args), **settings)
    print(f"symsched explain: wrote {out.out}/explain.md and {len(out.files) - 1} more files ({out.elapsed:.1f} s)")
    if out.info["warning"]:
        print(f"  note: {out.info['warning']}")
    for note in out.info["notes"]:  # sections left out (resolutions beyond the photographs, ...): not only in the file
        print(f"  note: {note}")
    for dv, fit in out.main_fits.items():  # what explain.md says of the fit (fit_status), in one line
        b = fit.best
        status, second = fit_status(fit)
        head = f"  {_NAMES[dv]} K={out.main_steps}: "
        if status == "none":
            print(head + "no heuristic family produced a valid schedule")
        elif status == "whole":
            print(head + "the matched end points are the whole schedule: nothing to tell the families apart")
        else:
            tie = f", tied with {second.family}" if status == "tied" else ""
            print(head + f"best heuristic {b.family}{tie} (RMS {b.rms:.2g} log-SNR, lost {b.lost_text()})")
    for name, law in out.laws.items():  # a slope the data do not determine is no shift (explain.md's ‡)
        slopes = ", ".join(f"{_NAMES[dv]} " + ("not identified ‡" if any(law.undetermined_offsets(dv)) else
                                               f"{s:+.2f}" + ("" if law.monotone(dv) else " (not monotone §)"))
                           for dv, s in law.slope.items())
        print(f"  resolution law ({name}): optimum per doubling {slopes}; simple diffusion "
              f"{law.rule_slope('simple diffusion'):+.2f}")
    return 0
