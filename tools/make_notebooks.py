"""Write the notebooks in notebooks/ from the cell lists below (no outputs; CI executes them).

Run ``python tools/make_notebooks.py`` after editing; the notebooks hold no logic of their own:
every cell calls the package.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1] / "notebooks"

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}


def md(text: str) -> tuple[str, str]:
    return ("md", text.strip("\n"))


def code(text: str) -> tuple[str, str]:
    return ("code", text.strip("\n"))


NOTEBOOKS["01_derivation.ipynb"] = [
    md(r"""
# 1. Deriving the spectral transfer function

Under a Gaussian data model $x_0 \sim \mathcal N(0, \Sigma)$ with $\Sigma = U\,\mathrm{diag}(S)\,U^\top$
(for stationary data $U$ is the DFT and $S$ the power spectrum), a sampler driven by the exact
denoiser acts on each mode of variance $S$ independently. This notebook walks through the symbolic
derivation that `symsched` performs: the forward process, the Wiener denoiser, one DDPM/DDIM step,
the composition into the transfer function and output spectrum, the identities a correct
derivation must reproduce, and the LaTeX the package generates.
"""),
    code(r"""
import numpy as np
import sympy as sp
sp.init_printing()

import symsched
from symsched.symbolic import get_sampler, compose, angle, forward, divergences
from symsched.symbolic.symbols import S, alpha_bar_t, alpha_bar_s, eta, sigma_t, sigma_s, alpha_bar
"""),
    md(r"""
## The forward process and the Wiener denoiser

In the VP process $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ a mode has variance
$\lambda_t = \bar\alpha_t S + 1 - \bar\alpha_t$, and the MMSE denoiser is linear in $x_t$.
"""),
    code(r"""
lam = forward.vp_variance(alpha_bar_t)
x0_coef, eps_coef = forward.vp_denoiser(alpha_bar_t)
display(sp.Eq(sp.Symbol(r"\lambda_t"), lam), sp.Eq(sp.Symbol(r"\hat{x}_0 / x_t"), x0_coef), sp.Eq(sp.Symbol(r"\hat\varepsilon / x_t"), eps_coef))
"""),
    md(r"""
## One sampler step

A DDIM($\eta$) step from level $t$ to the less noisy level $s$ is
$x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-c^2}\,\hat\varepsilon + c\,z$,
$z \sim \mathcal N(0, 1)$, with
$c^2 = \eta^2\,\frac{1-\bar\alpha_s}{1-\bar\alpha_t}\left(1-\frac{\bar\alpha_t}{\bar\alpha_s}\right)$
(Song et al. 2021, eq. 16, where $c$ is called $\sigma_t$, the name the generated `ddim.tex` below keeps; in
the prose $\sigma$ alone is the VE noise level $\sqrt{(1-\bar\alpha)/\bar\alpha}$).
$\eta = 0$ is deterministic DDIM, $\eta = 1$ DDPM's ancestral step.
Per mode this is $x_s = g(S)\,x_t + \sqrt{n}\,z$; the sampler module defines only $g$ and $n$.
"""),
    code(r"""
ddim = get_sampler("ddim")
display(sp.Eq(sp.Symbol("g"), sp.simplify(ddim.step.gain)), sp.Eq(sp.Symbol("n"), sp.factor(ddim.step.noise)))
"""),
    md(r"""
DDPM with the posterior variance injects
$n = \tilde\beta = \frac{1-\bar\alpha_s}{1-\bar\alpha_t}\left(1-\frac{\bar\alpha_t}{\bar\alpha_s}\right)$
(Ho et al. 2020, $\tilde\beta_t$; `variance="beta"` takes $\beta = 1 - \bar\alpha_t/\bar\alpha_s$ instead):
"""),
    code(r"""
ddpm = get_sampler("ddpm", "posterior")
display(sp.Eq(sp.Symbol("g_{DDPM}"), sp.simplify(ddpm.step.gain)), sp.Eq(sp.Symbol(r"\tilde\beta"), sp.factor(ddpm.step.noise)))
"""),
    md(r"""
## Composition: transfer function and output spectrum

A schedule visits levels $\bar\alpha_K < \dots < \bar\alpha_1$ (numbered from the clean end), then the clean level. The variance
obeys $v_s = g^2 v_t + n$, so the output spectrum is $P(S) = H^2 v_{\text{init}} + \sum_k n_k\prod_{j<k} g_j^2$
with $H = \prod_k g_k$. $v_{\text{init}}$ is the starting variance: 1 for the white start $x \sim \mathcal N(0, 1)$
(`init="white"`, what samplers do), or the true noisy marginal $\lambda_K = \bar\alpha_K S + 1 - \bar\alpha_K$ for the
exact start (`init="exact"`, used below: it isolates the error of the steps from that of the start).
"""),
    code(r"""
H1 = sp.simplify(compose.transfer_function(ddim, 1))
P1_exact = sp.simplify(compose.output_psd(ddim, 1, "exact"))
display(sp.Eq(sp.Symbol("H"), H1), sp.Eq(sp.Symbol("P_{exact}"), P1_exact))
"""),
    md(r"""
## Identities

**1.** One DDIM step straight to the clean level from the exact start gives the Wiener-filter variance $\bar\alpha S^2/\lambda < S$:
"""),
    code(r"""
a = alpha_bar(1)
print(sp.simplify(P1_exact - a * S**2 / (a * S + 1 - a)) == 0)
"""),
    md(r"""
**2.** The DDPM mean equals the DDIM $\eta=1$ mean (checked on numbers here; `tests/test_symbolic.py` proves it symbolically):
"""),
    code(r"""
pt = {S: 0.7, alpha_bar_t: 0.3, alpha_bar_s: 0.8}
print(float(ddpm.step.gain.evalf(subs=pt)), float(ddim.step.gain.subs(eta, 1).evalf(subs=pt)))
"""),
    md(r"""
**3–4.** VE and VP DDIM agree, and many deterministic DDIM steps tend to the probability-flow ODE: with the exact start the output tends to $S$.
"""),
    code(r"""
spec = np.array([0.01, 0.1, 1.0, 10.0])
for K in (10, 100, 1000):
    ab = 1 / (1 + np.exp(-np.linspace(-8, 12, K)))
    P = symsched.output_spectrum(spec, ab, sampler="ddim", init="exact")
    P_ve = symsched.output_spectrum_ve(spec, np.sqrt((1 - ab) / ab), sampler="euler", init="exact")  # VE Euler
    print(K, np.round(P / spec, 5), "VE = VP:", np.allclose(P_ve, P, rtol=1e-12, atol=0))
"""),
    md(r"""
**5. The angle form.** With $\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}$ and $\theta = \arctan(\sigma/\sqrt S)$ each
deterministic step is a rotation; the output spectrum is a product of squared cosines of the angle steps.
"""),
    code(r"""
g_ve = get_sampler("euler").step.gain
g_theta = g_ve.subs({sigma_t: angle.sigma_of_theta(sp.Symbol(r"\theta_t")), sigma_s: angle.sigma_of_theta(sp.Symbol(r"\theta_s"))})
display(sp.simplify(g_theta), angle.output_psd_angle(3, "exact"))
"""),
    md(r"""
## Samplers with memory: one state-space step

Multistep and stochastic samplers (DPM-Solver++, UniPC, DEIS, LMS, the SDE samplers) keep a small state per mode:
the sample and the denoised values (or slopes) of earlier levels. Each sampler module writes its update equations
once; the engine reads off $y' = A(S)\,y + B\,z$ and propagates the covariance $C' = A C A^\top + B B^\top$, and
the output spectrum is $C[0, 0]$ after the last step. Here is diffusers' DPM-Solver++ 2M second-order step, shown
(as the derivations print it) in diffusers' notation $\alpha_j = \sqrt{\bar\alpha_j}$,
$\sigma_j = \sqrt{1-\bar\alpha_j}$, $h_j = \lambda_{j+1} - \lambda_j$ with $\lambda = \log(\alpha/\sigma)$:
"""),
    code(r"""
from symsched.symbolic import display as notation
from symsched.symbolic.symbols import slot_level

dpm = get_sampler("dpmsolver_multistep")  # DPMSolverMultistepScheduler: DPM-Solver++, solver_order=2
second = dpm.kinds["second"]
A, B = second.matrices
print("state y =", second.state, "; levels read (slots):", second.slots)
display(sp.Matrix(A.rows, A.cols, lambda r, c: notation.rewrite(A[r, c], "vp")))
"""),
    md(r"""
Composing these matrices along the sampler's plan by hand (three levels, then the clean level $\bar\alpha = 1$,
white start) reproduces `symsched.output_spectrum`:
"""),
    code(r"""
levels = np.array([0.05, 0.4, 0.9, 1.0])
spec = np.array([0.01, 1.0, 100.0])
C = np.zeros((spec.size, 3, 3))
C[:, 0, 0] = 1.0
for kind, idx, _ in dpm.plan(3):  # ("first", (0, 1)), ("second", (0, 1, 2)), ("first", (2, 3))
    upd = dpm.kinds[kind]
    A_k = upd.matrices[0].subs({slot_level("vp", j): levels[i] for j, i in zip(upd.slots, idx)})
    A_k = np.stack([np.array(A_k.subs(S, s), dtype=float) for s in spec])
    C = A_k @ C @ A_k.transpose(0, 2, 1)  # DPM-Solver++ draws no noise: B has no columns
P = symsched.output_spectrum(spec, levels[:3], sampler="dpmsolver_multistep")
print(C[:, 0, 0], P)
assert np.allclose(C[:, 0, 0], P, rtol=1e-12, atol=0)
"""),
    md(r"""
## The LaTeX the package generates

`symsched latex --out derivations` writes one file per sampler; here is the start of the DDIM one.
"""),
    code(r"""
from symsched.symbolic.latex import render_all
print(render_all("ddim")["ddim.tex"][:1500])
"""),
    md(r"""
## Numbers from the same expressions

The compiled NumPy kernels are generated from these expressions; the mpmath path evaluates them at 50 digits.
"""),
    code(r"""
spec = np.array([1e-6, 0.5, 3.0])
ab = np.array([1e-12, 0.2, 0.9, 1 - 1e-12])
print(symsched.output_spectrum(spec, ab, sampler="ddpm"))
print([float(x) for x in symsched.output_spectrum_mp(spec, ab, sampler="ddpm", dps=50)])
"""),
]


NOTEBOOKS["02_monte_carlo_validation.ipynb"] = [
    md(r"""
# 2. Monte Carlo validation: closed form vs simulation

A closed form is only as trustworthy as the evidence that it predicts what sampling code does. Here we
draw Gaussian random fields with a given power spectrum, run the samplers' actual update equations on
them (with the exact Wiener denoiser applied by FFT), measure the periodogram of the outputs, and
compare it with `symsched.output_spectrum` frequency by frequency, with confidence bands from the
$\chi^2$ law of averaged periodograms.
"""),
    code(r"""
import numpy as np
import matplotlib.pyplot as plt

import symsched
from symsched import montecarlo as mc, spectra, schedules
"""),
    md(r"""
## Gaussian random fields with a prescribed spectrum

`gaussian_field` filters white noise so that $E|\mathrm{fft}(x)[k]|^2/N = S[k]$.
"""),
    code(r"""
S = spectra.power_law((32, 32), alpha=2.0)
x = mc.gaussian_field(S, 2000, seed=0)
psd = mc.empirical_psd(x)
check = mc.psd_check(psd, S, 2000)
# psd_check runs two tests at family-wise false-alarm alpha = 1e-6, each at alpha / 2: the largest |z| over the
# independent bins (Šidák threshold z_crit) and the chi-square sum of the squared scores
print(f"max |z| = {check.max_abs_z:.2f} (threshold {check.z_crit:.2f}, at alpha/2 = {check.alpha / 2:g}), "
      f"chi-square p = {check.chi2_pvalue:.3f}  passed: {check.passed}")
assert check.passed
"""),
    md(r"""
## The sampler on real arrays vs the closed form

DDIM ($\eta = 0$ and $\eta = 1$) and DDPM (both variances) with 20 steps on the 1000-step linear training grid,
white start, each simulated and checked against its closed form by both tests of `psd_check` (max $|z|$ and the
$\chi^2$ sum). DDIM with $\eta = 1$ *is* DDPM with the posterior variance $\tilde\beta$: those two rows are one
sampler reached by two routes (same seed, same numbers), a check that the two code paths agree.
"""),
    code(r"""
ab = schedules.standard_schedule("linear-leading", 20)
n = 4000
for sampler, kw in [("ddim", {"eta": 0.0}), ("ddim", {"eta": 1.0}), ("ddpm", {"variance": "posterior"}), ("ddpm", {"variance": "beta"})]:
    samples = mc.sample(S, ab, sampler=sampler, n_samples=n, seed=1, progress=False, **kw)
    P = symsched.output_spectrum(S, ab, sampler=sampler, **kw)
    res = mc.psd_check(mc.empirical_psd(samples), P, n)
    print(f"{sampler:5s} {kw}: max|z| = {res.max_abs_z:.2f}, chi-square p = {res.chi2_pvalue:.3f} -> "
          f"{'consistent' if res.passed else 'REJECTED'}")
    assert res.passed, "the closed form must pass its own Monte Carlo check"
"""),
    md(r"""
## Power: the same check rejects a wrong formula

Swap DDPM's variance ($\beta$ instead of $\tilde\beta$) in the prediction while simulating $\tilde\beta$:
"""),
    code(r"""
samples = mc.sample(S, ab, sampler="ddpm", variance="posterior", n_samples=n, seed=2, progress=False)
wrong = symsched.output_spectrum(S, ab, sampler="ddpm", variance="beta")
res = mc.psd_check(mc.empirical_psd(samples), wrong, n)
print(f"wrong formula: max|z| = {res.max_abs_z:.1f}, chi-square p = {res.chi2_pvalue:.2g} -> "
      f"{'consistent' if res.passed else 'REJECTED'}")
assert not res.passed, "the check must reject the wrong variance"
"""),
    md(r"""
## Closed form vs empirical PSD with confidence bands

Left: ring averages of the data, the closed form and the Monte Carlo PSD. Right: every frequency bin's
empirical PSD over its closed form, against the family-wise band of `psd_band` (every bin inside it with
probability $1 - 10^{-6}$; its width depends only on the bin's degrees of freedom: the self-conjugate bins, with
half of them, have the wider band).
"""),
    code(r"""
P = symsched.output_spectrum(S, ab, sampler="ddpm")
samples = mc.sample(S, ab, sampler="ddpm", n_samples=n, seed=3, progress=False)
psd = mc.empirical_psd(samples)
lo, hi = mc.psd_band(P, n)
f, P_r = spectra.radial_psd(P)
_, psd_r = spectra.radial_psd(psd)
_, S_r = spectra.radial_psd(S)
fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
ax.loglog(f[1:], S_r[1:], "k--", label="data S")
ax.loglog(f[1:], P_r[1:], label="closed form P")
ax.loglog(f[1:], psd_r[1:], "o", ms=3, label=f"Monte Carlo ({n} samples)")
ax.set_xlabel("spatial frequency (cycles/pixel)"); ax.set_ylabel("radially averaged PSD"); ax.legend()
fr = spectra.fft_frequencies(S.shape).ravel()
order = np.argsort(fr, kind="stable")
bx.semilogx(fr[order][1:], (psd / P).ravel()[order][1:], ".", ms=2, label="empirical / closed form, per bin")
bx.semilogx(fr[order][1:], (lo / P).ravel()[order][1:], "k_", ms=4, label="family-wise band (psd_band)")
bx.semilogx(fr[order][1:], (hi / P).ravel()[order][1:], "k_", ms=4)
bx.axhline(1.0, color="tab:red", lw=0.8)
bx.set_xlabel("spatial frequency (cycles/pixel)"); bx.set_ylabel("PSD ratio"); bx.legend()
for a in (ax, bx):  # (the short log range would label every minor tick)
    a.xaxis.set_minor_formatter(plt.NullFormatter())
plt.show()
print("bins outside the family-wise band:", int(np.sum((psd < lo) | (psd > hi))))
"""),
    md(r"""
## A real sampler library as witness (diffusers)

When `diffusers` and `torch` are installed, drive `DDPMScheduler.step` with the exact denoiser as the
model and compare with the prediction symsched makes from the scheduler itself.
"""),
    code(r"""
try:
    import torch
    from diffusers import DDPMScheduler
except ImportError:
    print("diffusers/torch not installed: pip install -e '.[diffusers]' to run the witness")
else:
    from symsched.export import from_diffusers
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False, variance_type="fixed_small")
    sched.set_timesteps(10)
    info = from_diffusers(sched)
    S8 = spectra.power_law((16, 16), alpha=2.0)
    gen = torch.Generator().manual_seed(0)
    m = 3000
    x = torch.randn((m, 16, 16), generator=gen, dtype=torch.float64)
    for t in sched.timesteps:
        a_t = float(sched.alphas_cumprod[int(t)])
        eps = torch.from_numpy(mc.wiener_denoiser(x.numpy(), S8, a_t, output="eps"))
        x = sched.step(eps, t, x, generator=gen).prev_sample
    res = mc.psd_check(mc.empirical_psd(x.numpy()), info.output_spectrum(S8), m)
    print(f"diffusers DDPM vs symsched: max|z| = {res.max_abs_z:.2f} -> {'consistent' if res.passed else 'REJECTED'}")
    assert res.passed, "diffusers' DDPM must agree with symsched's prediction from the scheduler"
"""),
]


NOTEBOOKS["04_continuous_time.ipynb"] = [
    md(r"""
# 4. Continuous-time samplers: exact errors of SDE and ODE solvers

The VP forward SDE $dx = -\beta(t)\,x\,dt + \sqrt{2\beta(t)}\,dw$ with $\beta(t) = \beta_{\min} + (\beta_{\max}-\beta_{\min})t$
can be reversed with numerical schemes. With the exact score every scheme is a per-mode linear map, so
`symsched.sde` gives its exact output spectrum and its exact $W_2$ error to the data, derived symbolically.
"""),
    code(r"""
import numpy as np
import matplotlib.pyplot as plt

import symsched
from symsched import sde, spectra

S = spectra.load_spectrum("builtin:natural-patches")
print(S.shape, "modes:", S.size, " schemes:", sde.SCHEMES)
"""),
    md(r"""
## The error table

Every scheme on $N$ grid points, truncation times $\varepsilon$, both starts, next to the exact continuous
solutions (reverse SDE for EM/EI/DDPM, probability-flow ODE for Euler/Heun/RK4).
"""),
    code(r"""
table = sde.error_table(S, sizes=(50, 250, 1000), eps_values=(1e-5, 1e-3))
table
"""),
    md(r"""
## Error against cost

A multi-stage scheme pays several denoiser evaluations per step (Heun 2, RK4 4), so counting evaluations (NFE)
rather than grid points is the fair comparison. At the smallest budget this changes the ranking (at 20 NFE RK4
takes only 5 steps, 6 grid points); from about 40 NFE on the higher-order schemes lead under either count. With the exact
start the exact reverse SDE and the probability-flow ODE reproduce the same marginal, so their reference line is
one.
"""),
    code(r"""
nfes = [20, 40, 80, 160, 320, 640]
fig, ax = plt.subplots(figsize=(6, 4))
for scheme in sde.SCHEMES:
    errs = []
    for n in nfes:
        N = sde.n_points_for_nfe(scheme, n)
        try:
            P = sde.output_spectrum(S, scheme, N, eps=1e-3, init="exact")
            errs.append(symsched.w2_distance(P, S))
        except ValueError:
            errs.append(np.nan)
    ax.loglog(nfes, errs, "o-", label=scheme)
P_sde, P_ode = (sde.continuous_output_spectrum(S, kind, eps=1e-3, init="exact") for kind in ("sde", "ode"))
np.testing.assert_allclose(P_sde, P_ode, rtol=1e-9)  # (both give the marginal at eps from the exact start)
ax.axhline(symsched.w2_distance(P_sde, S), color="k", ls="--", lw=1, label="exact reverse SDE = ODE")
ax.set_xlabel("denoiser evaluations (NFE)"); ax.set_ylabel("W2 to the data"); ax.legend(ncol=2, fontsize=8)
ax.set_title("exact start, eps = 1e-3")
plt.show()
"""),
    md(r"""
## Where the error sits in frequency

The ratio of generated to data power, ring-averaged over each frequency band of the first colour mode
($P_r / S_r$), shows which frequencies each scheme gets wrong: $N = 50$ grid points, white start,
$\varepsilon = 10^{-3}$.
"""),
    code(r"""
f, S_r = spectra.radial_psd(S, channel_axis=-1)
fig, ax = plt.subplots(figsize=(6, 4))
for scheme in ("em", "euler", "heun"):
    P = sde.output_spectrum(S, scheme, 50, eps=1e-3, init="white")
    _, P_r = spectra.radial_psd(P, channel_axis=-1)
    ax.semilogx(f[1:], (P_r / S_r)[1:, 0], label=scheme)
ax.axhline(1, color="k", lw=0.8)
ax.set_xlabel("radial frequency (cycles/pixel)"); ax.set_ylabel("P_r / S_r (first colour mode)"); ax.legend()
ax.set_title("N = 50, white start, eps = 1e-3")
plt.show()
"""),
]


NOTEBOOKS["03_schedule_design.ipynb"] = [
    md(r"""
# 3. Designing a schedule from the data spectrum

The built-in spectrum is measured on 32×32 RGB patches of the photographs bundled with scikit-image
(the colour cross-spectrum's three eigen-modes at each frequency). For K sampling steps we find the noise
levels whose output spectrum is closest to the data's, compare them with the schedules people use, and
read off what the optimal curves say about the spectrum.
"""),
    code(r"""
import numpy as np
import matplotlib.pyplot as plt

import symsched
from symsched import spectra, schedules, plots

S = spectra.load_spectrum("builtin:natural-patches")
f, S_r = spectra.radial_psd(S, channel_axis=-1)
fig, ax = plt.subplots(figsize=(5, 3.5))
for c in range(3):
    ax.loglog(f[1:], S_r[1:, c], label=f"colour mode {c}")
ax.set_xlabel("radial frequency (cycles/pixel)"); ax.set_ylabel("PSD"); ax.legend(); plt.show()
"""),
    md(r"""
## Optimised vs standard schedules for K = 5 … 50

DDIM ($\eta=0$), white start, KL(data ‖ generated). The first level is fixed at the noisiest level of the
1000-step DDPM training grid (a pre-trained denoiser has only seen those levels); the last is free. A
standard schedule that starts elsewhere (e.g. `karras`, from $\sigma = 80$) does not meet that constraint:
it is marked † and is not a fair comparison; the optimum never loses to the ones that do.

KL is used here because its schedule reads clearly in frequency (below); it is *not* the package's default.
On a learned denoiser (notebook 6, README "Does it help a real model?") the KL-optimised schedule made samples
worse than all the standard schedules but `karras` (MMD² 2.5× that of the W2 optimum at K = 5), and the
W2-optimised one better than all of them:
`divergence="w2"` is the default, and the one to export for a model (last section).
"""),
    code(r"""
table = symsched.compare_schedules(S, (5, 10, 20, 50), sampler="ddim", divergence="kl")
for K, r in table.results.items():  # the claim above: the optimum never loses to a feasible baseline
    assert r.value <= r.best_feasible_baseline[1], (K, r.best_feasible_baseline)
table
"""),
    code(r"""
res = table.results[10]
print(res.summary())
plots.plot_result(res, S)
"""),
    md(r"""
## W2 asks for a different schedule

KL weighs every mode by its *relative* error, so the faint high frequencies matter as much as the bright
low ones; W2 weighs absolute errors in amplitude and is dominated by the high-variance modes.
"""),
    code(r"""
res_w2 = symsched.optimize_schedule(S, 10, sampler="ddim", divergence="w2")
print(res_w2.summary())
plots.plot_schedules({"optimised (KL)": res.alpha_bar, "optimised (W2)": res_w2.alpha_bar,
                      "karras": schedules.standard_schedule("karras", 10),
                      "linear-trailing": schedules.standard_schedule("linear-trailing", 10)})
"""),
    md(r"""
## Which frequencies does each step serve?

A mode of variance $S$ is decided when the noise level passes through it: at $\sigma^2 \approx S$
(angle $\theta = 45^\circ$ in the angle form of DDIM), the Wiener filter switches from "mostly noise"
to "mostly signal". Mapping each level $\sigma_k^2$ to the frequency where the (first colour mode's)
spectrum equals it shows which band of the image each step of the schedule works on.
"""),
    code(r"""
def served_frequency(sigma2, f, s_r):
    # the radial frequency whose ring-averaged spectrum equals sigma^2 (the rings sorted by value: the averages
    # fall with f, but not strictly)
    order = np.argsort(s_r)
    return np.interp(np.log(sigma2), np.log(s_r[order]), f[order], left=f.max(), right=0.0)

s0 = S_r[1:, 0]
ff = f[1:]
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, ab in [("optimised (KL)", res.alpha_bar), ("optimised (W2)", res_w2.alpha_bar),
                 ("linear-trailing", schedules.standard_schedule("linear-trailing", 10))]:
    sig2 = (1 - ab) / ab
    ax.plot(np.arange(1, 11), served_frequency(sig2, ff, s0), "o-", label=name)
ax.set_xlabel("step (noisiest first)"); ax.set_ylabel("frequency served (cycles/pixel)")
ax.set_title("where sigma_k^2 meets the data spectrum"); ax.legend(); plt.show()
served = {name: served_frequency((1 - ab) / ab, ff, s0)
          for name, ab in [("kl", res.alpha_bar), ("w2", res_w2.alpha_bar)]}
assert served["kl"][-1] == ff.max() and served["w2"][0] == 0.0  # the reading below
"""),
    md(r"""
Read this way, a schedule is an allocation of steps to frequency bands (measured on the ring averages of the
first colour mode, DC excluded: a served frequency of 0 means the noise is still above its brightest ring; the
top of the axis means it is below its faintest). The KL-optimal schedule sweeps through the spectrum — each
step moves the noise level past a band of frequencies — reaches the first colour mode's faintest ring after a
few steps and spends its last steps below it, refining the high frequencies of the fainter colour modes (whose
rings lie lower still: only the last level is below every mode) whose *relative* error KL counts as much as the
bright ones'. The W2 optimum (like `linear-trailing`) spends its first steps at noise levels above the first
colour mode's brightest ring, where the high-energy low frequencies are shaped, and reaches the mid frequencies
only at the end: W2 counts
absolute amplitude errors, which the bright low frequencies dominate.

**Caveat.** These are optimal for the Gaussian model of the data with the exact denoiser; a learned
denoiser's errors are not modelled. Use them as a principled starting point, and validate with your model.
"""),
    md(r"""
## Export

The W2-optimised levels (the objective to export for a model, see above), in the formats samplers take; then
the W2 optimum restricted to the 1000-step DDPM training grid, for samplers that take timesteps:
"""),
    code(r"""
from symsched.export import to_diffusers, to_k_diffusion_sigmas
print("diffusers (Euler-type):", {k: np.round(v, 4).tolist() for k, v in to_diffusers(res_w2.alpha_bar).items()})
print("k-diffusion sigmas:", np.round(to_k_diffusion_sigmas(res_w2.alpha_bar), 4))
grid = schedules.training_grid("linear")
on_grid = symsched.optimize_schedule(S, 10, grid=grid, divergence="w2")
print("W2 optimum on the 1000-step DDPM grid, timesteps:", on_grid.timesteps)
"""),
]


NOTEBOOKS["05_insight.ipynb"] = [
    md(r"""
# 5. What the optimal schedule says about the data

`symsched.insight` turns the optimiser into an instrument: sweep a family of spectra, ask which heuristic
schedule each optimum *is*, measure how the optimum moves with resolution next to the rules practitioners
use (simple diffusion, SD3, Flux), and watch the frequency bands being generated step by step. Everything
here is exact for Gaussian data with the exact denoiser (see the last section for what that does not cover).
"""),
    code(r"""
import math
import numpy as np
import matplotlib.pyplot as plt

import symsched
from symsched import spectra, schedules
from symsched.insight import (sweep, fit_heuristics, resolution_law, scene_power_law,
                              intermediate_spectra, family_names)
"""),
    md(r"""
## The anchor: one mode, and a flat spectrum

For a single mode of variance $S$ and fixed end levels, each level has an angle $\theta = \arctan(\sigma/\sqrt S)$
($\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}$), and a deterministic DDIM step from level $i$ to $i+1$ is a rotation by
$\theta_i - \theta_{i+1}$; the best schedule takes equal angle steps (docs/model.md §7.6): the *tangent law*
$\sigma_i = \sqrt S\tan\theta_i$ with $\theta_i$ evenly spaced. With $S = 1$ this is exactly the cosine schedule
without offset ($s = 0$, `kl_optimal`; the published cosine's $s = 0.008$ bends it slightly, and the fitted cosine
family's free offset goes to its bound 0: the fit gives $s \approx 10^{-10}$, a rounding off the family's own bound,
which the fit tables do not mark). The fit recovers it, and
names $S$:
"""),
    code(r"""
one = symsched.optimize_schedule([5.0], 6, endpoints=(1e-3, 0.995))
fit = fit_heuristics(one, [5.0])
print("best family:", fit.best.family, fit.best.params, "RMS", fit.best.rms)
flat = symsched.optimize_schedule(np.ones((8, 8)), 8, endpoints=(0.01, 0.99))
print("flat spectrum, cosine residual:", fit_heuristics(flat, np.ones((8, 8)))["cosine"].max_abs)
assert fit.best.family == "tangent" and fit_heuristics(flat, np.ones((8, 8)))["cosine"].max_abs < 1e-6
"""),
    md(r"""
## A sweep over the power-law exponent

Natural images have a PSD close to $c/|f|^\alpha$ with $\alpha \approx 2$. `sweep` optimises every spectrum
of a family (here for W2) in parallel with joblib; the result tabulates and plots.
"""),
    code(r"""
res = sweep(lambda a: spectra.power_law((16, 16), alpha=a), 8, values=[1.0, 2.0, 3.0],
            parameter="alpha", divergence="w2", restarts=0, n_jobs=2)
mean = [res.results[(i, 8)].log_snr.mean() for i in range(3)]
assert mean[0] > mean[1] > mean[2]  # steeper spectra: a noisier schedule (the claim below)
res.plot()
res
"""),
    md(r"""
Steeper spectra (more energy in the coarse bands) move the W2 optimum towards more noise. Which heuristic
is each optimum? Every family is fitted by least squares in log-SNR through the optimum's end points, and
the objective lost by using it is evaluated exactly:
"""),
    code(r"""
print("families:", ", ".join(family_names()))
res.fit_heuristics()
"""),
    md(r"""
## The built-in natural-image spectrum, K = 10
"""),
    code(r"""
S = spectra.load_spectrum("builtin:natural-patches")
opt = {d: symsched.optimize_schedule(S, 10, divergence=d, restarts=0) for d in ("kl", "w2")}
fits = {d: fit_heuristics(r, S) for d, r in opt.items()}
fits["w2"].plot()
fits["w2"]
"""),
    md(r"""
## The resolution law

The same scene at $d \times d$ pixels: at a fixed scene frequency the PSD grows as $d^2$ (`scene_power_law`),
which is simple diffusion's reason to shift log-SNR by $-2\log(d/d_0)$. What does the optimum do?
"""),
    code(r"""
law = resolution_law(lambda d: scene_power_law(d, alpha=2.0), [16, 32, 64], steps=6, restarts=0, n_jobs=2,
                     source="power law, alpha = 2")
for line in law.findings():
    print(line)
rule = law.rules["simple diffusion"][1:]  # the reading below, as fractions of the rule's shift
assert all(0.7 < law.offset_first["w2"][1:] / rule) and all(law.offset_first["w2"][1:] / rule < 0.9)
assert all(abs(law.offset["w2"][1:] / rule - 0.5) < 0.1) and all(abs(law.offset["kl"][1:] / rule) < 0.2)
law.plot()
law
"""),
    md(r"""
W2's noisiest level moves most, about four fifths of the rule (it serves the coarsest bands, whose SNR grows as
$(d/d_0)^2$); the last levels, which serve the fine bands, move much less, so the average W2 shift is about half the
rule's. KL, which weighs every band's relative error alike, moves little: its average about a tenth of the rule, its
noisiest level about a third, its last level almost nothing. SD3's static shift ignores
resolution; Flux's $\mu$ is linear in the token count (a log-SNR shift $-2\mu$): gentler than the rule up to about
11,500 tokens ($d/d_0 \approx 6.7$ from its 256-token base), steeper only beyond.

## Coarse to fine

`intermediate_spectra` follows the variance of the sample and of the denoised estimate $\hat x_0$ through
the schedule. The left panel shows *when* each frequency band is generated:
"""),
    code(r"""
inter = intermediate_spectra(S, opt["w2"].alpha_bar, sampler="ddim")
inter.plot()
x, gen = inter.radial("generated")
print("step at which each ring's estimate x0_hat reaches half of its final variance:",
      (gen >= 0.5).argmax(axis=0)[1:12] + 1)
"""),
    md(r"""
## What this does and does not justify

Exact for Gaussian data and the exact (Wiener) denoiser: the optima, the fits and their costs, the
generation order, the resolution law of a Gaussian scene. Not covered: non-Gaussian structure, the errors
of a learned denoiser, the choice between KL and W2 (measure it on your model), and latent-space models whose
rules are calibrated in tokens. `symsched explain --spectrum ...` writes all of the above for your data.
"""),
]

NOTEBOOKS["06_learned_model.ipynb"] = [
    md(r"""
# 6. Does it help a real model? The spectral probe

The closed forms are exact for Gaussian data and the exact (Wiener) denoiser. `symsched.probe` asks what a
schedule does for a *learned* denoiser: it runs the same sampler update equations as the Monte Carlo witness
with any denoiser $f(x_t, \bar\alpha_t)$, measures the samples' spectrum, and scores them against held-out data
(spectral KL/W2, MMD², sliced W2, Fréchet distance) with paired seeds. This notebook uses small sample counts;
`symsched probe` runs the full study.
"""),
    code(r"""
import numpy as np
from IPython.display import Markdown, display

import symsched
from symsched import montecarlo as mc, probe, schedules, spectra
"""),
    md(r"""
## The control: with the exact denoiser the probe *is* the Monte Carlo witness

Give `probe.sample` the Wiener filter as a v-predicting "network": the periodogram of its samples must match
`symsched.output_spectrum` at every frequency (exact $\chi^2$ z-scores, family-wise false-alarm probability $10^{-6}$).
"""),
    code(r"""
S = spectra.power_law((16, 16), alpha=2.0)
ab = schedules.standard_schedule("linear-trailing", 5)
n = 1500
x = probe.sample(probe.wiener_denoiser(S, prediction="v"), ab, n_samples=n, sampler="ddim", seed=0, progress=False)
check = mc.psd_check(probe.measured_spectrum(x), symsched.output_spectrum(S, ab, sampler="ddim"), n)
print(f"max |z| = {check.max_abs_z:.2f} (threshold {check.z_crit:.2f}) -> {'consistent' if check.passed else 'REJECTED'}")
assert check.passed, "with the exact denoiser the probe must match the closed form"
"""),
    md(r"""
## The built-in learned model

`builtin:patches16` is a small preconditioned denoiser trained on 16×16 greyscale patches of scikit-image's
photographs (left 80 % of each photograph; the right 20 % is held out). Its spectrum for the optimiser is
measured on the training patches. Without torch, a Gaussian stand-in with the exact denoiser takes its place.
"""),
    code(r"""
try:
    from symsched import models
    model = models.load_model("builtin:patches16")
    S = spectra.psd2d(models.patches16("train"))
    reference = models.patches16("test")
    denoiser, grid = model, model.grid
    print(model)
except (ImportError, ValueError) as exc:
    print(f"builtin:patches16 is not available here ({exc}); using a Gaussian stand-in")
    S = spectra.power_law((16, 16), alpha=2.0)
    reference = mc.gaussian_field(S, 2000, seed=1)
    denoiser, grid = probe.wiener_denoiser(S, prediction="sample"), schedules.training_grid("linear")
"""),
    md(r"""
## Optimised and standard schedules, the same seeds for each

Five DDIM steps on the model's 1000-step training grid: the schedules optimised for W2 and for KL (white-noise
start, both end points free on the grid: `probe.PROBE_ENDPOINTS`; the W2 one starts near t = 730) and two standard ones. Every schedule starts from the same noise for a given
seed, so differences between schedules are paired.
"""),
    code(r"""
scheds = probe.default_schedules(S, 5, grid=grid, names=["optimised-w2", "optimised-kl", "linear-trailing", "karras"])
result = probe.probe_schedules(denoiser, scheds, reference, n_samples=400, seeds=(0, 1), spectrum=S, grid=grid,
                               progress=False)
display(Markdown(result.to_markdown()))
"""),
    code(r"""
probe.plot_probe(result)
"""),
    md(r"""
## Reading it

Predicted spectral errors come from the closed form; measured ones from the samples' periodogram against the
held-out patches. A paired difference is `schedule − baseline` seed by seed: the noise the two schedules share
(the same seeds, the same reference) cancels, so for MMD² its sd is usually smaller than either schedule's
seed-to-seed spread (compare the paired sd with the columns above) and few seeds separate schedules. For the spectral KL
and the Fréchet distance it need not be (compare their paired sd with the columns too): judge each difference by its
own paired sd. With 400 samples
and 2 seeds this is a quick look; the README's table comes from 1,000 samples × 3 seeds (`benchmarks/bench_learned.py`,
sampling and scoring with `symsched.probe`, the code `symsched probe` runs).
"""),
    code(r"""
for name in scheds:
    if name != result.comparison.baseline:
        d = result.comparison.difference(name, "mmd2")
        print(f"MMD²({name}) − MMD²({d.b}) = {d.mean:+.3g} ± {d.sd:.2g} over {d.values.size} paired seeds")
"""),
]


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, text in cells:
        nb.cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{Path(name).stem[:2]}-{i:02d}"
    return nb


def main(argv: list[str]) -> int:
    ROOT.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        if argv and name not in argv:
            continue
        nbformat.write(build(name, cells), ROOT / name)
        print("wrote", ROOT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
