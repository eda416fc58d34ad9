"""Every Python example in README.md runs, and what it prints or returns is what the README says.

Each block runs as written (a user's files are replaced by the built-in spectrum) in a fresh
namespace after ``PRELUDE``. The value of every top-level expression statement and of every
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

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import reference

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)

# names the examples take from context: a spectrum S, a schedule alpha_bar; user files become S
PRELUDE = """
import numpy as np
import symsched
from symsched import schedules, spectra
S = spectra.load_spectrum("builtin:natural-patches")
alpha_bar = schedules.standard_schedule("linear-leading", 10)
"""


@dataclass
class Run:
    ns: dict
    outputs: list  # values of the top-level expression statements, in order
    assigned: dict  # name -> every value assigned to it at top level, in order
    stdout: str


def run_block(code: str) -> Run:
    for user_file in ('"my_photos/"', '"spectrum.npy"'):
        code = code.replace(f"spectra.load_spectrum({user_file})", "S")
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
    ns: dict = {"__outputs__": [], "__assigned__": {}}
    exec(PRELUDE, ns)
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
    assert float(z_crit) == pytest.approx(stats.norm.isf(1e-6 / (2 * m)), rel=1e-9)
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
    printed, shown, *_ = r.outputs  # print(...) returns None; then the tuples of attributes
    assert printed is None
    assert shown[0] is res.alpha_bar and shown[4] == res.baselines
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


CHECKS = {
    "symsched.output_spectrum_mp(": check_api_tour,
    "compose.output_psd(": check_symbolic_layer,
    "spectra.matern(": check_spectra,
    "schedules.karras(": check_schedules,
    "mc.psd_check(": check_monte_carlo,
    "sde.error_table(": check_sde,
    "symsched.compare_schedules(": check_schedule_design,
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


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example(index: int) -> None:
    block = BLOCKS[index]
    check = _check_for(block)
    check(run_block(block))
