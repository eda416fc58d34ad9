"""DPM-Solver++ (stochastic), k-diffusion ``sample_dpmpp_sde`` (k-diffusion 0.1.1.post1, ``sampling.py``).

With t = -log sigma, h = t_{i+1} - t_i, s = t_i + r h, fac = 1/(2r) and get_ancestral_step (sd, su):
step 1 to sigma_s: x_2 = (sd_1/sigma_i) x - expm1(t_i - t(sd_1)) D_i + s_noise su_1 z_1, D_2 = D(x_2; sigma_s);
step 2: D_d = (1 - fac) D_i + fac D_2, x' = (sd_2/sigma_i) x - expm1(t_i - t(sd_2)) D_d + s_noise su_2 z_2;
Euler (x' = D_i) on the step to sigma = 0.

The two draws come from ONE Brownian tree W over sigma (``BrownianTreeNoiseSampler``):
z_1 = (W(sigma_s) - W(sigma_i))/sqrt(sigma_i - sigma_s), z_2 = (W(sigma_{i+1}) - W(sigma_i))/sqrt(sigma_i - sigma_{i+1}).
With the independent increments a = (W(sigma_s) - W(sigma_i))/sqrt(sigma_i - sigma_s) and
b = (W(sigma_{i+1}) - W(sigma_s))/sqrt(sigma_s - sigma_{i+1}): z_1 = a, z_2 = rho a + sqrt(1 - rho^2) b,
rho = sqrt((sigma_i - sigma_s)/(sigma_i - sigma_{i+1})). ``noise_sampler="independent"`` models k-diffusion run
with ``noise_sampler=default_noise_sampler(x)`` (independent z_1, z_2).
"""

from __future__ import annotations

import math
from typing import Any, Optional

from ..plan import PlanStep, step
from ._kdiffusion import ANCESTRAL_PURE_NOISE_NOTE, ancestral_binds, f32, param_values

PROCESS = "ve"
ENTRIES = (("x", "sample"),)
#: "step": neither get_ancestral_step min binds; "bound_second": only the second one (to sigma_{i+1});
#: "bound": both (eta > 1 only); "bound_first": only the first, which exact arithmetic never gives but float64
#: does, where the half step's sigma_s^2 sigma_i^2 overflows (sigma_i ~ 1e80) and the full step's product does not;
#: "final": Euler into sigma = 0.
KINDS = {"step": (0, 1), "bound_second": (0, 1), "bound": (0, 1), "bound_first": (0, 1), "final": (0, 1)}
PARAMS = {"eta": 1.0, "s_noise": 1.0, "r": 0.5}
#: the LaTeX section's note on the first step from sigma = inf (eta = 1 in float64)
PURE_NOISE_NOTE = ANCESTRAL_PURE_NOISE_NOTE
#: r in (0, 1] keeps sigma_s in [sigma_{i+1}, sigma_i) (the nested Brownian intervals above); r -> 0 makes
#: fac = 1/(2r) blow up.
PARAM_BOUNDS = {"r": (1e-3, 1.0)}
OPTIONS = {"noise_sampler": ("brownian_tree", "independent")}
#: the step from sigma = inf is derived for the parameter values themselves: SymPy takes no limit of the half-step
#: for a symbolic positive eta (engine.kernels.pinned_step; every other sampler is derived per class, 0 or > 0)
ZERO_LIMIT_BY_VALUE = True


def _step_sigmas(levels: Any, i: int, r: float) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """The sigmas k-diffusion's step i decides its two ``get_ancestral_step`` calls on, from the caller's own sigmas
    (:class:`~symsched.symbolic.plan.PlanLevels`): ``sigma_fn(t)``, ``sigma_fn(t + r h)``, ``sigma_fn(t_next)`` with
    ``t = -log sigma``, ``sigma_fn(t) = exp(-t)``, as ``sample_dpmpp_sde`` computes them; else None (from the log-SNR)."""
    sigmas = getattr(levels, "sigmas", None)
    if sigmas is None or not 0.0 < sigmas[i] < math.inf or not sigmas[i + 1] > 0.0:
        return None, None, None
    if getattr(levels, "float32", False):  # float32 sigmas: k-diffusion's t_fn / sigma_fn run in float32
        t32, n32, r32 = f32(-math.log(sigmas[i])), f32(-math.log(sigmas[i + 1])), f32(r)
        s32 = f32(t32 + f32(f32(n32 - t32) * r32))
        return f32(math.exp(-t32)), f32(math.exp(-s32)), f32(math.exp(-n32))
    t, t_next = -math.log(sigmas[i]), -math.log(sigmas[i + 1])
    return math.exp(-t), math.exp(-(t + (t_next - t) * r)), math.exp(-t_next)


#: the kind of a step by whether (first, second) get_ancestral_step min binds
_KIND = {(False, False): "step", (False, True): "bound_second", (True, True): "bound", (True, False): "bound_first"}


def plan(K: int, levels: Any = None, params: Any = None, **options: Any) -> list[PlanStep]:
    """Which of get_ancestral_step's two mins bind (only for eta > 1); Euler on the step to sigma = 0."""
    prm = param_values(PARAMS, params)
    out = []
    for i in range(K):
        if i == K - 1:
            out.append(step("final", i, i + 1))
            continue
        kind = "step"
        if levels is not None:
            l_i, l_n = float(levels[i]), float(levels[i + 1])
            l_s = l_n if not math.isfinite(l_i) else l_i + prm["r"] * (l_n - l_i)  # sigma_s = sigma_i^(1-r) sigma_{i+1}^r
            s_i, s_s, s_n = _step_sigmas(levels, i, prm["r"])
            single = bool(getattr(levels, "float32", False))
            # each decided as k-diffusion decides it (break-test of 7 December: the first binding was taken to imply
            # the second, which float64 overflow in the first alone breaks: eta = 0.5 on [1e80, 1e73])
            first = ancestral_binds(l_i, l_s, prm["eta"], s_from=s_i, s_to=s_s, float32=single)
            second = ancestral_binds(l_i, l_n, prm["eta"], s_from=s_i, s_to=s_n, float32=single)
            kind = _KIND[first, second]
        out.append(step(kind, i, i + 1))
    return out


def build(noise_sampler: str = "brownian_tree"):  # noqa: ANN201 - returns a Sampler
    import sympy as sp
    from sympy.codegen.cfunctions import expm1

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import param, sigma_s as s_next, sigma_t as s_i
    from ._kdiffusion import ANCESTRAL_TEX, sym_ancestral_step, sym_to_d

    if noise_sampler not in OPTIONS["noise_sampler"]:
        raise ValueError(f"noise_sampler must be one of {OPTIONS['noise_sampler']} (got {noise_sampler!r})")
    eta, s_noise, r = param("eta"), param("s_noise"), param("r")
    x, a, b = sp.symbols("x a b", real=True)
    D, x_2, D_2, D_d, d = sp.symbols("D x_2 D_2 D_d d", real=True)
    sigma_fn = lambda t: sp.exp(-t)  # noqa: E731
    t_fn = lambda sigma: -sp.log(sigma)  # noqa: E731
    t, t_next = t_fn(s_i), t_fn(s_next)
    h = t_next - t
    s = t + h * r
    sig_s = sigma_fn(s)
    fac = 1 / (2 * r)
    # The two normalised Brownian increments in independent normals a, b (module docstring). The interval
    # lengths are written without cancellation: sigma_i - sigma_s = -sigma_i expm1(-r h),
    # sigma_s - sigma_{i+1} = sigma_{i+1} expm1((1 - r) h), sigma_i - sigma_{i+1} = -sigma_i expm1(-h).
    len_1, len_2 = -s_i * expm1(-r * h), s_next * expm1((1 - r) * h)
    len_12 = -s_i * expm1(-h)
    rho = sp.sqrt(len_1 / len_12)
    z_1 = a
    z_2 = rho * a + sp.sqrt(len_2 / len_12) * b if noise_sampler == "brownian_tree" else b

    def update(bound_1: bool, bound_2: bool) -> Update:
        sd, su = sym_ancestral_step(sigma_fn(t), sig_s, eta, bound_1)
        if bound_1:  # sd = 0: t(sd) = inf, the step lands on the denoised value
            x2 = D + z_1 * s_noise * su
        else:
            s_ = t_fn(sd)
            x2 = (sigma_fn(s_) / sigma_fn(t)) * x - expm1(t - s_) * D + z_1 * s_noise * su
        sd2, su2 = sym_ancestral_step(sigma_fn(t), sigma_fn(t_next), eta, bound_2)
        if bound_2:
            new = D_d + z_2 * s_noise * su2
        else:
            t_next_ = t_fn(sd2)
            new = (sigma_fn(t_next_) / sigma_fn(t)) * x - expm1(t - t_next_) * D_d + z_2 * s_noise * su2
        return Update(
            state=(x,), new=(new,), noises=(a, b),
            stages=((D, ve_denoiser(s_i) * x), (x_2, x2), (D_2, ve_denoiser(sig_s) * x_2),
                    (D_d, (1 - fac) * D + fac * D_2)),
            parts={r"\sigma_s": sig_s, r"\rho": rho} if noise_sampler == "brownian_tree" else {r"\sigma_s": sig_s},
        )

    final = Update(state=(x,), new=(x + d * (s_next - s_i),),
                   stages=((D, ve_denoiser(s_i) * x), (d, sym_to_d(x, s_i, D))))
    label = "" if noise_sampler == "brownian_tree" else ", independent draws"
    return from_module(
        __name__,
        kinds={"step": update(False, False), "bound_second": update(False, True), "bound": update(True, True),
               "bound_first": update(True, False), "final": final},
        title=f"DPM-Solver++ SDE (k-diffusion{label})",
        citation="Lu, Zhou, Bao, Chen, Li, Zhu. DPM-Solver++ (arXiv 2211.01095); k-diffusion sample_dpmpp_sde",
        description=(
            "A stochastic single-step DPM-Solver++: an ancestral half step to $\\sigma_s = \\sigma_i^{1-r}\\sigma_{i+1}^r$ "
            "($r$: k-diffusion's parameter, default $\\tfrac12$), the denoiser there ($D = D(x; \\sigma_i)$, "
            "$D_2 = D(x_2; \\sigma_s)$), then an ancestral step to $\\sigma_{i+1}$ with the mixed denoised value "
            "$D_d = (1 - \\tfrac1{2r})D + \\tfrac1{2r}D_2$; $(\\sigma_{\\downarrow}, \\sigma_{\\uparrow})$ of each "
            f"ancestral step as in k-diffusion's \\texttt{{get\\_ancestral\\_step}}: {ANCESTRAL_TEX}; each adds "
            "$s_{\\mathrm{noise}}\\,\\sigma_{\\uparrow}$ times its draw. "
            + ("Both noises are increments of one Brownian path in $\\sigma$ over nested intervals, hence correlated "
               "with $\\rho = \\sqrt{(\\sigma_i - \\sigma_s)/(\\sigma_i - \\sigma_{i+1})}$: with independent "
               "$a, b \\sim \\mathcal N(0, 1)$ (the columns of $B$) the first is $a$, the second "
               "$\\rho\\,a + \\sqrt{1 - \\rho^2}\\,b$."
               if noise_sampler == "brownian_tree" else
               "The two noises are independent draws $a, b \\sim \\mathcal N(0, 1)$ (the columns of $B$).")
        ),
        options={"noise_sampler": noise_sampler},
        variant=noise_sampler,
        order=2,
        stochastic=True,
    )
