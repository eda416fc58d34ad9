"""Every Python example in README.md runs, and what it prints or returns is what the README says.

Each block runs as written (a user's files are replaced by the built-in spectrum) in a fresh, empty
namespace: nothing is injected, so a block that uses a name it does not import or define fails, as it
would for a reader who pastes it. The value of every top-level expression statement and of every
top-level assignment is recorded, and a check per block compares them with values computed here
independently: the update equations typed in ``tests/reference.py``, SciPy, and the formulas and
numbers the README states. A README block without a check fails ``test_every_block_has_a_check``.
"""

from __future__ import annotations

import ast
import contextlib
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import stats

import reference

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)

#: a user's files in the examples become the built-in default spectrum (a string substitution, no names injected)
BUILTIN = 'spectra.load_spectrum("builtin:natural-patches")'


@dataclass
class Run:
    ns: dict
    outputs: list  # values of the top-level expression statements, in order
    assigned: dict  # name -> every value assigned to it at top level, in order
    stdout: str


def run_block(code: str) -> Run:
    for user_file in ('"my_photos/"', '"spectrum.npy"'):
        code = code.replace(f"spectra.load_spectrum({user_file})", BUILTIN)
    tree = ast.parse(code)
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.Expr):  # record the value the example shows
            call = ast.parse("__outputs__.append(None)").body[0]
            call.value.args = [node.value]
            body.append(ast.copy_location(call, node))
            continue
        body.append(node)
        if isinstance(node, ast.Assign):
            names = [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            for name in names:
                body.append(ast.parse(f"__assigned__.setdefault({name!r}, []).append({name})").body[0])
    tree.body = body
    ast.fix_missing_locations(tree)
    ns: dict = {"__outputs__": [], "__assigned__": {}}  # nothing else: every block brings its own names
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(tree, "README.md block", "exec"), ns)
    return Run(ns, ns["__outputs__"], ns["__assigned__"], buf.getvalue())


def linear_grid() -> np.ndarray:
    """DDPM's training levels (Ho et al.): alpha_bar_t = prod_{s<=t} (1 - beta_s), beta linear 1e-4..0.02."""
    return np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))


def _fd(fun, x, rel=1e-6):
    out = np.empty_like(x)
    for i in range(x.size):
        h = rel * x[i]
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        out[i] = (fun(xp) - fun(xm)) / (2 * h)
    return out


# ---------------------------------------------------------------------------------------------
# one check per README block, found by a phrase of the block
# ---------------------------------------------------------------------------------------------
def check_api_tour(r: Run) -> None:
    S = r.assigned["S"][0]
    assert S.shape == (32, 32, 3) and np.all(S >= 0)  # "(32, 32, 3) colour-eigen PSD"
    ab = r.assigned["ab"][0]
    # "10 levels, noisiest first": diffusers' trailing timesteps 999, 899, ..., 99 of the linear grid
    np.testing.assert_allclose(ab, linear_grid()[np.arange(999, 0, -100)], rtol=1e-12)
    _, P_ref = reference.vp_output(S, ab, sampler="ddim", eta=0.0, init="white")
    P = r.assigned["P"][0]
    assert P.shape == S.shape  # "output PSD, shape of S"
    np.testing.assert_allclose(P, P_ref, rtol=1e-10)
    H_ref, _ = reference.vp_output(S, ab, sampler="ddpm", variance="posterior")
    np.testing.assert_allclose(r.assigned["H"][0], H_ref, rtol=1e-10)  # "gain product H(S)"
    kl_printed, w2_printed = map(float, r.stdout.split())
    assert kl_printed == pytest.approx(reference.kl(S, P_ref), rel=1e-9)  # KL(data || generated)
    assert w2_printed == pytest.approx(reference.w2(P_ref, S), rel=1e-9)
    # value and exact gradient: KL w.r.t. alpha_bar, then W2^2 w.r.t. log-SNR (central differences)
    (J_kl, J_w2), (grad,), (grad_l,) = r.assigned["J"], r.assigned["grad"], r.assigned["grad_l"]

    def kl_of(a):
        return reference.kl(S, reference.vp_output(S, a)[1])

    def w2sq_of_log_snr(l):
        return reference.w2(reference.vp_output(S, 1 / (1 + np.exp(-l)))[1], S) ** 2

    assert J_kl == pytest.approx(reference.kl(S, P_ref), rel=1e-9)
    fd = _fd(kl_of, ab)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))
    assert J_w2 == pytest.approx(reference.w2(P_ref, S) ** 2, rel=1e-9)
    fd = _fd(w2sq_of_log_snr, np.log(ab / (1 - ab)))
    np.testing.assert_allclose(grad_l, fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))
    _, P_ve = reference.ve_output(S, [80.0, 10.0, 1.0, 0.1], sampler="heun", init="exact")
    np.testing.assert_allclose(r.assigned["P_ve"][0], P_ve, rtol=1e-10)
    P_mp = np.array([float(x) for x in r.assigned["P_mp"][0]])
    np.testing.assert_allclose(P_mp, P_ref.ravel()[:3], rtol=1e-12)  # "the same ... at 50 digits"


def check_symbolic_layer(r: Run) -> None:
    from symsched.symbolic.symbols import S, alpha_bar, alpha_bar_s, alpha_bar_t, eta

    (gain, noise), psd = r.outputs
    assert gain.free_symbols == {S, alpha_bar_t, alpha_bar_s, eta}  # "SymPy expressions of S, ab_t, ab_s, eta"
    assert noise.free_symbols == {alpha_bar_t, alpha_bar_s, eta}
    assert psd.free_symbols == {S, alpha_bar(1), alpha_bar(2), eta}  # "closed form for a 2-level schedule"
    for s_val, a2, a1, e in [(2.0, 0.3, 0.8, 0.5), (0.05, 0.1, 0.95, 0.0), (7.0, 0.6, 0.7, 1.0)]:
        value = float(psd.evalf(30, subs={S: s_val, alpha_bar(2): a2, alpha_bar(1): a1, eta: e}))
        _, expected = reference.vp_output([s_val], [a2, a1], sampler="ddim", eta=e)
        assert value == pytest.approx(float(expected[0]), rel=1e-12)
    assert isinstance(psd, sp.Expr)


def check_spectra(r: Run) -> None:
    builtin, _, _, power, matern = r.assigned["S"]
    assert builtin.shape == (32, 32, 3)
    # "c / |f|^alpha, DC floored" with c = 1: |f| in cycles per sample, the floor is the fundamental 1/64
    assert power.shape == (64, 64)
    assert power[0, 1] == pytest.approx(64.0**2, rel=1e-12)
    assert power[3, 4] == pytest.approx(1.0 / ((3 / 64) ** 2 + (4 / 64) ** 2), rel=1e-12)
    assert power[0, 0] == power[0, 1]
    # "mean(S) = variance" (default 1), Matern shape (2 nu / l^2 + 4 pi^2 |f|^2)^-(nu + d/2)
    assert matern.shape == (64, 64) and matern.mean() == pytest.approx(1.0, rel=1e-12)

    def m(f2):
        return (2 * 1.5 / 16 + 4 * math.pi**2 * f2) ** -2.5

    assert matern[0, 1] / matern[5, 7] == pytest.approx(m(1 / 64**2) / m((25 + 49) / 64**2), rel=1e-12)


def check_schedules(r: Run) -> None:
    from symsched.schedules import STANDARD_SCHEDULES

    ays, karras, klopt = r.assigned["ab"]
    # Align Your Steps, SD1.5, 10 steps (Sabour et al.): the first and last sigma of the published table
    sig = np.sqrt((1 - ays) / ays)
    assert sig.shape == (10,)
    assert sig[0] == pytest.approx(14.6146412293, rel=1e-9) and sig[-1] == pytest.approx(0.1515232662, rel=1e-9)
    assert r.ns["name"] == STANDARD_SCHEDULES[-1]  # the loop visits every standard schedule
    # Karras et al. (rho = 7): sigma_i = (smax^(1/7) + i/(n-1) (smin^(1/7) - smax^(1/7)))^7
    i = np.arange(20) / 19
    want = (14.6 ** (1 / 7) + i * (0.03 ** (1 / 7) - 14.6 ** (1 / 7))) ** 7
    np.testing.assert_allclose(np.sqrt((1 - karras) / karras), want, rtol=1e-9)
    # kl_optimal on Stable Diffusion's grid: grid levels only, the grid's ends, equal angles to a grid cell
    grid = np.cumprod(1.0 - np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2)
    idx = [int(np.argmin(np.abs(grid - a))) for a in klopt]
    np.testing.assert_allclose(klopt, grid[idx], rtol=1e-12)
    assert idx[0] == 999 and idx[-1] == 0 and np.all(np.diff(idx) < 0)
    theta_grid = np.arctan(np.sqrt((1 - grid) / grid))
    theta = np.arctan(np.sqrt((1 - klopt) / klopt))
    equal = np.linspace(theta_grid[-1], theta_grid[0], 10)
    assert np.all(np.abs(theta - equal) <= np.max(np.abs(np.diff(theta_grid))))


def check_monte_carlo(r: Run) -> None:
    import symsched
    from symsched import montecarlo as mc

    max_abs_z, z_crit, passed = r.stdout.split()
    m = (32 * 32 + 4) // 2  # independent bins of a 32x32 real field: pairs {k, -k}
    with mpmath.workdps(40):  # Šidák at alpha / 2 (the largest-|z| half of psd_check): 1 - (1 - alpha/2)^(1/m)
        per_bin = float(1 - (1 - mpmath.mpf("5e-7")) ** (mpmath.mpf(1) / m))
    assert float(z_crit) == pytest.approx(stats.norm.isf(per_bin / 2), rel=1e-9)
    assert passed == "True" and float(max_abs_z) <= float(z_crit)
    ab = r.assigned["alpha_bar"][-1]
    np.testing.assert_allclose(ab, linear_grid()[np.arange(950, -1, -50)], rtol=1e-12)
    S, x = r.assigned["S"][-1], r.assigned["x"][0]
    assert x.shape == (4000, 32, 32)
    _, P_ref = reference.vp_output(S, ab, sampler="ddpm", variance="beta")
    res = mc.psd_check(mc.empirical_psd(x), P_ref, 4000)
    assert res.passed  # false-alarm probability <= 1e-6 (the check's alpha)
    # companion: the same periodogram rejects the other DDPM variance, by a wide margin
    wrong = symsched.output_spectrum(S, ab, sampler="ddpm", variance="posterior")
    res = mc.psd_check(mc.empirical_psd(x), wrong, 4000)
    assert res.max_abs_z >= 2 * res.z_crit


def check_sde(r: Run) -> None:
    from symsched import sde

    S = r.ns["S"]
    P, P_ode = r.assigned["P"][0], r.assigned["P_ode"][0]
    w2_printed, nfe = r.stdout.split()
    assert int(nfe) == 2 * (250 - 1) == 498  # N = 250 grid points, Heun: 2 denoiser calls per step
    assert float(w2_printed) == pytest.approx(reference.w2(P, S), rel=1e-9)
    modes = np.unique(S)[:: max(1, S.size // 200)]  # the Heun recursion, typed in, on ~200 distinct modes
    P_heun = sde.output_spectrum(modes, "heun", 250, eps=1e-4, init="exact")
    np.testing.assert_allclose(P_heun, reference.pf_ode_heun(modes, 250, eps=1e-4, init="exact"), rtol=1e-10)
    # "exact PF-ODE solution": P_ODE = v0 lambda(eps) / lambda(T), white start v0 = 1
    lam_eps, lam_T = reference.vp_sde_lambda(S, 1e-4), reference.vp_sde_lambda(S, 1.0)
    np.testing.assert_allclose(P_ode, lam_eps / lam_T, rtol=1e-11)
    table = r.assigned["table"][0]
    assert set(table.cells) == {(s, n, 1e-4, i) for s in sde.SCHEMES for n in (50, 250) for i in ("exact", "white")}
    assert table.cells[("heun", 250, 1e-4, "exact")] == pytest.approx(reference.w2(P, S), rel=1e-12)


def check_schedule_design(r: Run) -> None:
    from symsched import schedules as sch

    S = r.ns["S"]
    res = r.assigned["res"][0]
    ab = res.alpha_bar
    assert ab.shape == (10,) and np.all(np.diff(ab) > 0)
    assert res.value == pytest.approx(reference.w2(reference.vp_output(S, ab)[1], S) ** 2, rel=1e-9)  # default: W2²
    printed, shown, fair = r.outputs  # print(...) returns None; then the tuples of attributes
    assert printed is None
    feasible, (best_name, best_value) = fair
    assert set(feasible) == set(res.baselines) and feasible[best_name]
    assert best_value == min(v for n, v in res.baselines.items() if feasible[n]) >= res.value
    res20 = r.assigned["res20"][0]
    assert res20.alpha_bar.shape == (20,)
    assert res20.divergence == "kl"  # the README asks for KL here
    assert res20.value == pytest.approx(reference.kl(S, reference.vp_output(S, res20.alpha_bar)[1]), rel=1e-9)
    assert shown[0] is res.alpha_bar and shown[4] == res.baselines
    assert shown[3] is None  # "timesteps: with grid=... (None without)"
    np.testing.assert_allclose(shown[1], np.log(ab / (1 - ab)), rtol=1e-10)
    np.testing.assert_allclose(shown[2], np.sqrt((1 - ab) / ab), rtol=1e-10)
    # "the optimised value next to every standard schedule's"
    for name in ("karras", "linear-trailing", "ays-sd15", "kl_optimal"):
        value = reference.w2(reference.vp_output(S, sch.standard_schedule(name, 10))[1], S) ** 2
        assert res.baselines[name] == pytest.approx(value, rel=1e-9)
        assert name in r.stdout
    assert set(res.baselines) <= set(sch.STANDARD_SCHEDULES) and len(res.baselines) >= 10
    table = r.assigned["table"][0]
    assert table.steps_list == [5, 10, 20, 50]
    opt10 = next(row for row in table.rows if row["steps"] == 10 and row["schedule"] == "optimised")
    assert opt10["w2"] == pytest.approx(np.sqrt(res.value), rel=1e-9)  # same defaults, same optimum
    karras20 = next(row for row in table.rows if row["steps"] == 20 and row["schedule"] == "karras")
    _, P_k = reference.vp_output(S, sch.karras(20))
    assert karras20["kl"] == pytest.approx(reference.kl(S, P_k), rel=1e-9)
    assert karras20["w2"] == pytest.approx(reference.w2(P_k, S), rel=1e-9)


def check_insight(r: Run) -> None:
    S = r.ns["S"]
    res = r.assigned["res"][0]
    rows = r.stdout.split("\n")
    assert sum(1 for ln in rows if ln.startswith("| ") and ln.split("|")[1].strip() in ("1", "2", "3")) == 6
    for (i, k), opt in res.results.items():  # every entry is the W2 optimum of its own spectrum
        S_a = __import__("symsched").spectra.power_law((16, 16), alpha=[1.0, 2.0, 3.0][i])
        assert opt.alpha_bar.shape == (k,) and np.all(np.diff(opt.alpha_bar) > 0)
        assert opt.value == pytest.approx(reference.w2(reference.vp_output(S_a, opt.alpha_bar)[1], S_a) ** 2, rel=1e-9)
    opt, fit = r.assigned["opt"][0], r.assigned["fit"][0]
    assert fit.best.rms >= 0 and fit.best.relative_loss >= -1e-12  # no heuristic beats the optimum
    inter = r.assigned["inter"][0]
    assert inter.sample.shape == inter.x0_hat.shape == (10, *S.shape)
    np.testing.assert_allclose(inter.sample[-1], reference.vp_output(S, opt.alpha_bar)[1], rtol=1e-9)
    assert r.assigned["law"][0].findings()


def check_probe(r: Run) -> None:
    S, x = r.ns["S"], r.assigned["x"][0]
    assert x.shape == (500, 16, 16)
    # the Monte Carlo control: total periodogram power vs the closed form, 5 sd of its sampling distribution
    P = reference.vp_output(S, r.ns["schedules"].standard_schedule("linear-trailing", 5))[1]
    X = np.fft.fft2(x) / 16.0
    power = np.mean(np.abs(X) ** 2, axis=0)
    sd = math.sqrt(2.0 * np.sum(P**2) / 500)
    assert abs(power.sum() - P.sum()) < 5 * sd
    d = r.assigned["d"][0]
    assert 0 <= d.wins <= 2 and math.isfinite(d.mean)
    assert "optimised-w2" in r.stdout and "karras" in r.stdout


def check_models(r: Run) -> None:
    test = r.assigned["test"][0]
    assert test.shape[1:] == (16, 16) and test.min() >= -1 and test.max() <= 1
    assert r.outputs[0] == ((16, 16), "sample", (1000,))
    x0_hat = r.assigned["x0_hat"][0]
    assert x0_hat.shape == (8, 16, 16) and np.all(np.isfinite(x0_hat))
    # a denoiser, not the identity: closer to the clean patches than the noisy input is
    noisy = 0.5**0.5 * test[:8] + 0.5**0.5 * np.random.default_rng(0).standard_normal((8, 16, 16))
    assert np.mean((x0_hat - test[:8]) ** 2) < np.mean((noisy / 0.5**0.5 - test[:8]) ** 2)


def _dpmpp_2m_variance(S, sigmas):
    """k-diffusion's sample_dpmpp_2m typed in as a 2x2 covariance recursion on (x, D_{i-1}), white start."""
    sig = list(sigmas) + [0.0]
    C = [np.full_like(S, sig[0] ** 2), np.zeros_like(S), np.zeros_like(S)]
    for i in range(len(sigmas)):
        s, sn = sig[i], sig[i + 1]
        g = S / (S + s * s)
        if sn == 0.0:
            p, q = g, 0.0
        else:
            h = math.log(s / sn)
            a, b = sn / s, 1.0 - math.exp(-h)
            r = math.log(sig[i - 1] / s) / h if i > 0 else None
            p, q = (a + b * g, 0.0) if i == 0 else (a + b * (1 + 1 / (2 * r)) * g, -b / (2 * r))
        C = [p * p * C[0] + 2 * p * q * C[1] + q * q * C[2], g * (p * C[0] + q * C[1]), g * g * C[0]]
    return C[0]


def check_every_sampler(r: Run) -> None:
    S, sig = r.assigned["S"][-1], r.assigned["sigmas"][0]
    np.testing.assert_allclose(r.assigned["P"][0], _dpmpp_2m_variance(S, sig), rtol=1e-12)
    P_sde = r.assigned["P_sde"][0]
    assert P_sde.shape == S.shape and np.all(P_sde > 0)
    # DPM-Solver++ 2M in diffusers is k-diffusion's dpmpp_2m: from the exact start both give the same P
    import symsched

    np.testing.assert_allclose(r.assigned["P_dpm"][0],
                               symsched.output_spectrum_ve(S, sig, sampler="dpmpp_2m", init="exact"), rtol=1e-12)
    assert r.outputs[-1] == ("x", "D_{i-1}", "D_{i-2}")
def check_zero_snr_flow(r: Run) -> None:
    a = r.outputs
    assert a[0].tolist() == [-np.inf, 0.0] and a[1].tolist() == [np.inf, 1.0] and a[2].tolist() == [0.0, 0.5]
    S = r.ns["S"]
    grid = r.assigned["grid"][0]
    assert grid[-1] == 0.0 and np.all(np.diff(grid) < 0)
    ab = r.assigned["ab"][0]
    assert ab[0] == 0.0 and ab.size == 10
    # the zero-SNR step only scales (x0_hat = 0, eps_hat = x): P = (1 - ab_1) P(ab[1:]), independently typed DDIM
    np.testing.assert_allclose(r.assigned["P"][0], (1 - ab[1]) * reference.vp_output(S, ab[1:])[1], rtol=1e-10)
    # SD3: shift(linspace(1, shift(1/1000), 10)), shift(t) = 3t/(1 + 2t), diffusers' formula
    def shift(t):
        return 3 * t / (1 + 2 * t)

    t = shift(np.linspace(1.0, shift(1e-3), 10))
    ab_sd3 = r.assigned["ab_sd3"][0]
    np.testing.assert_allclose(ab_sd3, (1 - t) ** 2 / ((1 - t) ** 2 + t**2), rtol=1e-12, atol=0)
    mu = 1.15
    np.testing.assert_allclose(r.assigned["t_flux"][0], np.exp(mu) / (np.exp(mu) + 1 / np.linspace(1, 0.1, 10) - 1),
                               rtol=1e-14)
    # flow Euler = DDIM eta=0 from a white start (the README's claim), via the independent DDIM reference
    np.testing.assert_allclose(r.assigned["P_flow"][0], reference.vp_output(S, ab_sd3[1:])[1] * (1 - ab_sd3[1]),
                               rtol=1e-10)
    np.testing.assert_allclose(r.assigned["kw"][0]["sigmas"], t, rtol=1e-12)  # t -> alpha_bar -> t round trip


def check_cli_inputs(r: Run) -> None:
    """The files the command-line tour reads: float64 arrays of the documented meaning (written in the test's cwd)."""
    S, A, SIG = (np.load(name, allow_pickle=False) for name in ("S.npy", "A.npy", "SIG.npy"))
    assert S.dtype == A.dtype == SIG.dtype == np.float64 and S.shape == (64, 64) and np.all(S > 0)
    np.testing.assert_allclose(A, linear_grid()[np.arange(999, 0, -100)], rtol=1e-12)  # trailing 999, 899, ..., 99
    rho = 7.0  # Karras et al. 2022 eq. (5), sigma in [0.002, 80], 10 levels
    ramp = np.linspace(0, 1, 10)
    karras = (80.0 ** (1 / rho) + ramp * (0.002 ** (1 / rho) - 80.0 ** (1 / rho))) ** rho
    np.testing.assert_allclose(SIG, karras, rtol=1e-10)  # (through alpha_bar: 1 - ab rounds at sigma 0.002)


CHECKS = {
    'np.save("SIG.npy"': check_cli_inputs,
    "symsched.sampler_info(": check_every_sampler,
    "symsched.output_spectrum_mp(": check_api_tour,
    "compose.output_psd(": check_symbolic_layer,
    "spectra.matern(": check_spectra,
    "schedules.karras(": check_schedules,
    "mc.psd_check(": check_monte_carlo,
    "sde.error_table(": check_sde,
    "symsched.compare_schedules(": check_schedule_design,
    "symsched.sweep(": check_insight,
    "probe.probe_schedules(": check_probe,
    'models.load_model("builtin:patches16")': check_models,
    "schedules.flow_schedule(": check_zero_snr_flow,
}


def _check_for(block: str):
    found = [fn for phrase, fn in CHECKS.items() if phrase in block]
    assert len(found) == 1, (
        f"README block needs exactly one check in tests/test_readme.py (found {len(found)}):\n{block}"
    )
    return found[0]


def test_every_block_has_a_check() -> None:
    assert len(BLOCKS) >= len(CHECKS)
    used = [_check_for(b) for b in BLOCKS]
    assert sorted(f.__name__ for f in used) == sorted(f.__name__ for f in CHECKS.values())


#: optional extras a block needs (``pip install -e ".[torch]"``): without them the block is skipped, not failed
NEEDS = {check_probe: ("ot",), check_models: ("torch", "safetensors")}


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example(index: int, tmp_path, monkeypatch) -> None:
    block = BLOCKS[index]
    check = _check_for(block)
    for module in NEEDS.get(check, ()):
        pytest.importorskip(module, reason=f'this README block needs {module}: pip install -e ".[torch]"')
    if check is check_cli_inputs:  # it writes its files where it runs
        monkeypatch.chdir(tmp_path)
    check(run_block(block))
