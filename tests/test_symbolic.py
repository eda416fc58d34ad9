"""Identities of docs/model.md §7 proved with SymPy (exact) or checked numerically (limits)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

import symsched
from symsched.schedules import alpha_bar_to_sigmas
from symsched.symbolic import angle, compose, get_sampler
from symsched.symbolic.forward import alpha_bar_from_sigma, ve_denoiser, ve_variance, vp_denoiser, vp_variance
from symsched.symbolic.samplers import REGISTRY
from symsched.symbolic.symbols import (
    S,
    alpha_bar,
    alpha_bar_s,
    alpha_bar_t,
    eta,
    sigma,
    sigma_s,
    sigma_t,
    theta,
    theta_s,
    theta_t,
)

import reference


def in_unit_interval(expr: sp.Expr) -> sp.Expr:
    """Encode alpha_bar in (0, 1) by writing every VP level as 1/(1 + sigma^2) with sigma > 0."""
    subs = {}
    for sym in expr.free_symbols:
        name = sym.name
        if name.startswith(r"\bar{\alpha}_"):
            subs[sym] = alpha_bar_from_sigma(sp.Symbol("u_" + name[len(r"\bar{\alpha}_"):], positive=True))
    return expr.subs(subs)


def is_zero(expr: sp.Expr) -> bool:
    """Exact identity for alpha_bar levels in (0, 1) (radicands factored so square roots split)."""
    e = sp.simplify(in_unit_interval(expr))
    if e == 0:
        return True
    return sp.simplify(sp.factor(e, deep=True)) == 0


# -- identity 1 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("eta_value", [0, sp.Rational(1, 3), 1])
def test_identity1_one_ddim_step_exact_start_is_wiener_variance(eta_value: sp.Expr) -> None:
    a = alpha_bar(1)
    P = compose.output_psd(get_sampler("ddim"), 1, "exact").subs(eta, eta_value)
    expected = a * S**2 / (a * S + 1 - a)  # docs/model.md §7.1, typed from the text
    assert is_zero(P - expected)


def test_identity1_wiener_variance_is_below_data_variance() -> None:
    a = alpha_bar(1)
    P = compose.output_psd(get_sampler("ddim"), 1, "exact")
    gap = sp.factor(sp.simplify(S - P))
    # S - P = S (1 - a) / lambda >= 0 for S >= 0, a in (0, 1)
    assert is_zero(gap - S * (1 - a) / (a * S + 1 - a))


# -- identity 3 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("K", [1, 2])
def test_identity3_same_output_psd_exact_start(K: int) -> None:
    vp = compose.output_psd(get_sampler("ddim"), K, "exact").subs(eta, 0)
    vp = vp.subs({alpha_bar(i): alpha_bar_from_sigma(sigma(i)) for i in range(1, K + 1)})
    ve = compose.output_psd(get_sampler("euler"), K, "exact")
    assert is_zero(vp - ve)


def test_identity3_numeric_many_steps_and_white_start_scaling() -> None:
    rng = np.random.default_rng(3)
    spec = rng.lognormal(0, 2, 200)
    ab = np.sort(rng.uniform(1e-3, 0.999, 25))
    sig = alpha_bar_to_sigmas(ab)[::1]
    vp = symsched.output_spectrum(spec, ab, sampler="ddim", init="exact")
    ve = symsched.output_spectrum_ve(spec, sig, sampler="euler", init="exact")
    np.testing.assert_allclose(vp, ve, rtol=1e-12)
    # a white VP start N(0, 1) is a VE start of variance 1 + sigma_max^2; VE white is sigma_max^2
    vp_white = symsched.output_spectrum(spec, ab, sampler="ddim", init="white")
    ve_white = symsched.output_spectrum_ve(spec, sig, sampler="euler", init="white")
    H = symsched.transfer_function_ve(spec, sig, sampler="euler")
    np.testing.assert_allclose(vp_white, ve_white + H**2, rtol=1e-12)


# -- identity 4 ---------------------------------------------------------------------------------
def _dense(lo: float, hi: float, K: int) -> np.ndarray:
    """K levels uniform in log-SNR between alpha_bar lo and hi."""
    l0, l1 = np.log(lo / (1 - lo)), np.log(hi / (1 - hi))
    return 1 / (1 + np.exp(-np.linspace(l0, l1, K)))


def test_identity4_ddim_tends_to_probability_flow_ode() -> None:
    spec = np.array([1e-3, 0.1, 1.0, 10.0, 300.0])
    lo, hi = 1e-3, 1 - 1e-10
    lam = lo * spec + 1 - lo
    errs = []
    for K in (250, 1000, 4000):
        ab = _dense(lo, hi, K)
        P_white = symsched.output_spectrum(spec, ab, sampler="ddim", init="white")
        P_exact = symsched.output_spectrum(spec, ab, sampler="ddim", init="exact")
        errs.append(np.max(np.abs(P_exact / spec - 1)))
        np.testing.assert_allclose(P_white, spec / lam, rtol=5e-2)
    # first-order convergence in the number of steps (error ~ 1/K), to the exact answer S
    assert errs[-1] < 5e-3
    assert errs[0] / errs[1] > 3 and errs[1] / errs[2] > 3


def test_identity4_ddpm_tends_to_data_spectrum() -> None:
    spec = np.array([1e-2, 0.1, 1.0, 10.0, 100.0])
    errs = []
    for K in (250, 1000, 4000):
        ab = _dense(1e-4, 1 - 1e-6, K)
        P = symsched.output_spectrum(spec, ab, sampler="ddpm", init="exact")
        errs.append(np.max(np.abs(P / spec - 1)))
    assert errs[-1] < 2e-2
    assert errs[0] > errs[1] > errs[2]


# -- identity 6 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("init", ["white", "exact"])
def test_identity6_angle_form_of_output_psd(init: str) -> None:
    """Numerically, at 40 digits: composed VP DDIM(eta=0) equals the angle formula of docs/model.md §7.6."""
    rng = np.random.default_rng(6)
    K = 4
    for _ in range(5):
        s_val = float(rng.lognormal(0, 1.5))
        ab = np.sort(rng.uniform(0.01, 0.99, K))
        P = symsched.output_spectrum_mp([s_val], ab, sampler="ddim", init=init, dps=40)[0]
        with mpmath.workdps(40):
            sig = [mpmath.sqrt((1 - mpmath.mpf(a)) / mpmath.mpf(a)) for a in ab[::-1]]  # least noisy first
            th = [mpmath.mpf(0)] + [mpmath.atan(x / mpmath.sqrt(s_val)) for x in sig]
            rot = mpmath.fprod(mpmath.cos(th[i + 1] - th[i]) ** 2 for i in range(K))
            if init == "exact":
                expected = s_val * rot
            else:
                expected = rot * (mpmath.cos(th[K]) ** 2 + s_val * mpmath.sin(th[K]) ** 2)
            assert abs(P / expected - 1) < mpmath.mpf(10) ** -30


def test_identity6_symbolic_angle_expression_matches_definition() -> None:
    """angle.output_psd_angle(K) with theta substituted back equals the composed DDIM for K=2."""
    K = 2
    ve = compose.output_psd(get_sampler("euler"), K, "exact")
    ang = angle.output_psd_angle(K, "exact")
    pts = [(0.7, 0.3, 1.2), (2.0, 0.1, 0.25)]
    for s_val, s1, s2 in pts:
        subs_ve = {S: s_val, sigma(1): s1, sigma(2): s2}
        subs_th = {S: s_val, theta(1): sp.atan(s1 / sp.sqrt(s_val)), theta(2): sp.atan(s2 / sp.sqrt(s_val))}
        assert abs(float(ve.evalf(30, subs=subs_ve)) - float(ang.evalf(30, subs=subs_th))) < 1e-12


def test_equal_angle_sigmas_are_a_tangent_law() -> None:
    levels = angle.equal_angle_sigmas(4, sp.Rational(1, 10), sp.Integer(10), sp.Integer(1))
    th = [float(sp.atan(x)) for x in levels]
    steps = np.diff(th)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-12)
    assert abs(float(levels[0]) - 10) < 1e-12 and abs(float(levels[-1]) - 0.1) < 1e-12


# -- structure: every sampler against its update equations ------------------------------------
#: (sampler, options) covering every registered sampler; eta = 0.37 tells eta from eta^2
CONTRACT = [
    ("ddim", {"eta": 0.0}),
    ("ddim", {"eta": 0.37}),
    ("ddim", {"eta": 1.0}),
    ("ddpm", {"variance": "posterior"}),
    ("ddpm", {"variance": "beta"}),
    ("euler", {}),
    ("heun", {}),
]


#: Samplers checked against their library's own code instead of typed-in equations (tests/test_kdiffusion_*.py,
#: tests/test_diffusers_*.py): their updates are long enough that re-typing them would copy the library.
def _library_witnessed() -> set[str]:
    """Registered samplers named (as a string literal) in a library witness test file."""
    import pathlib
    import re

    here = pathlib.Path(__file__).parent
    files = [p for pat in ("test_kdiffusion_*.py", "test_diffusers_*.py", "test_flow*.py", "test_zero_snr*.py")
             for p in here.glob(pat)]
    text = "\n".join(p.read_text() for p in files)
    classes = {"unipc_multistep": "UniPCMultistepScheduler", "euler_ancestral_discrete": "EulerAncestralDiscreteScheduler",
               "deis_multistep": "DEISMultistepScheduler", "dpmsolver_multistep": "DPMSolverMultistepScheduler"}
    return {name for name in REGISTRY
            if re.search(rf"[\"']{re.escape(name)}[\"']", text) or (name in classes and classes[name] in text)}


LIBRARY_WITNESSED = _library_witnessed()


def test_contract_covers_every_registered_sampler() -> None:
    assert {name for name, _ in CONTRACT} | (LIBRARY_WITNESSED & set(REGISTRY)) == set(REGISTRY)


@pytest.mark.parametrize("name,kw", CONTRACT, ids=lambda x: x if isinstance(x, str) else "-".join(map(str, x.values())) or "plain")
@pytest.mark.parametrize("init", ["white", "exact"])
def test_every_sampler_matches_its_update_equations(name: str, kw: dict, init: str) -> None:
    """The composed closed form (symbolic and compiled) equals the papers' update equations
    iterated on the variance (``tests/reference.py``, typed in independently), at interior levels
    where a wrong gain, noise, eta power or Heun sign changes the value."""
    smp = get_sampler(name, kw.get("variance", ""))
    ve = smp.process == "ve"
    K = 3
    P_sym = compose.output_psd(smp, K, init)
    rng = np.random.default_rng(17)
    for _ in range(3):
        spec = rng.lognormal(0.0, 1.5, 4)
        ab = np.sort(rng.uniform(0.05, 0.95, K))
        sig = np.sqrt((1 - ab) / ab)  # decreasing: the same levels in VE coordinates
        if ve:
            _, ref = reference.ve_output(spec, sig, sampler=name, init=init)
            num = symsched.output_spectrum_ve(spec, sig, sampler=name, init=init)
            levels = {sigma(K - i): sig[i] for i in range(K)}
        else:
            _, ref = reference.vp_output(spec, ab, sampler=name, init=init, **kw)
            num = symsched.output_spectrum(spec, ab, sampler=name, init=init, **kw)
            levels = {alpha_bar(K - i): ab[i] for i in range(K)}
        np.testing.assert_allclose(num, ref, rtol=1e-12)
        sym = [float(P_sym.evalf(30, subs={S: s_val, eta: kw.get("eta", 0.0), **levels})) for s_val in spec]
        np.testing.assert_allclose(sym, ref, rtol=1e-12)


def test_vp_marginal_variance_and_denoiser_from_the_forward_process() -> None:
    """lambda = Var(sqrt(a) x0 + sqrt(1-a) eps) and the Wiener coefficients Cov(., x_t)/lambda, derived
    here from the definitions, at every level (not only a in {0, 1}, where e.g. a^2 S + 1 - a agrees)."""
    a = alpha_bar_t
    lam_def = a * S + (1 - a) * 1  # Var x0 = S, Var eps = 1, independent
    lam = vp_variance(a)
    assert sp.expand(lam - lam_def) == 0
    c_x0, c_eps = vp_denoiser(a)
    assert sp.simplify(c_x0 - sp.sqrt(a) * S / lam_def) == 0  # Cov(x0, x_t) = sqrt(a) S
    assert sp.simplify(c_eps - sp.sqrt(1 - a) / lam_def) == 0  # Cov(eps, x_t) = sqrt(1 - a)
    for a_val, s_val in [(0.25, 3.0), (0.5, 0.2), (0.9, 7.0)]:
        assert float(lam.subs({a: a_val, S: s_val})) == pytest.approx(a_val * s_val + 1 - a_val, rel=1e-15)
    assert lam.subs(a, 1) == S and lam.subs(a, 0) == 1
    assert sp.simplify(ve_variance(sigma_t) - (S + sigma_t**2)) == 0
    assert sp.simplify(ve_denoiser(sigma_t) - S / (S + sigma_t**2)) == 0
    assert alpha_bar_from_sigma(sp.Integer(2)) == sp.Rational(1, 5)  # 1 / (1 + sigma^2)


def test_closed_form_equals_recursion_for_K3() -> None:
    smp = get_sampler("ddpm", "posterior")
    a = compose.output_psd(smp, 3, "white")
    b = compose.output_psd_closed_form(smp, 3, "white")
    pt = {S: sp.Rational(3, 2), alpha_bar(1): sp.Rational(9, 10), alpha_bar(2): sp.Rational(1, 2), alpha_bar(3): sp.Rational(1, 20)}
    assert sp.simplify(a.subs(pt) - b.subs(pt)) == 0


def test_heun_is_second_order_euler_first_order() -> None:
    """Convergence order to the exact PF-ODE solution (S with the exact start), by log-log regression."""
    spec = np.array([0.05, 0.5, 2.0])
    Ks = np.array([20, 40, 80, 160])
    errs = {"euler": [], "heun": []}
    for K in Ks:
        sig = np.exp(np.linspace(np.log(20.0), np.log(0.05), K))
        for name in errs:
            P = symsched.output_spectrum_ve(spec, sig, sampler=name, init="exact")
            # the exact ODE keeps the marginal S + sigma_min^2; the shared last step to sigma = 0
            # applies the Wiener gain S / (S + sigma_min^2) (identity 1 in VE form)
            exact = spec**2 / (spec + sig[-1] ** 2)
            errs[name].append(np.max(np.abs(P / exact - 1)))
    order = {n: -np.polyfit(np.log(Ks), np.log(e), 1)[0] for n, e in errs.items()}
    assert 0.8 < order["euler"] < 1.3
    assert 1.7 < order["heun"] < 2.4


# -- tests that read Step.gain / Step.noise directly ---------------------------------------------
# The per-step expressions of the scalar samplers. When a step becomes a state-space pair (A, Q),
# port exactly this group (gain -> A, noise -> Q); everything above goes through compose/public API.


# identity 2
@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_identity2_ddpm_mean_equals_ddim_eta1_mean(variance: str) -> None:
    ddpm = get_sampler("ddpm", variance)
    ddim = get_sampler("ddim")
    assert is_zero(ddpm.step.gain - ddim.step.gain.subs(eta, 1))
    assert is_zero(ddpm.final.gain - ddim.final.gain.subs(eta, 1))


def test_ddpm_posterior_variance_equals_ddim_eta1_noise() -> None:
    assert is_zero(get_sampler("ddpm", "posterior").step.noise - get_sampler("ddim").step.noise.subs(eta, 1))


def test_ddpm_final_step_has_no_noise_for_both_variances() -> None:
    assert get_sampler("ddpm", "posterior").final.noise == 0
    assert get_sampler("ddpm", "beta").final.noise == 0
    # ... whereas the beta variance of an intermediate step is beta = 1 - a_t / a_s
    assert is_zero(get_sampler("ddpm", "beta").step.noise - (1 - alpha_bar_t / alpha_bar_s))


def test_identity3_vp_and_ve_ddim_gain_relation() -> None:
    """VP DDIM(eta=0) gain = sqrt((1+s_t^2)/(1+s_s^2)) * VE Euler gain under a = 1/(1+sigma^2)."""
    vp = get_sampler("ddim").step.gain.subs(eta, 0)
    vp = vp.subs({alpha_bar_t: alpha_bar_from_sigma(sigma_t), alpha_bar_s: alpha_bar_from_sigma(sigma_s)})
    ve = get_sampler("euler").step.gain
    assert is_zero(vp - sp.sqrt((1 + sigma_t**2) / (1 + sigma_s**2)) * ve)


def test_identity6_ddim_step_is_a_rotation() -> None:
    g = get_sampler("euler").step.gain  # = VE DDIM
    g = g.subs({sigma_t: angle.sigma_of_theta(theta_t), sigma_s: angle.sigma_of_theta(theta_s)})
    rot = sp.cos(theta_t - theta_s) * sp.cos(theta_t) / sp.cos(theta_s)
    assert sp.simplify(sp.expand_trig(sp.simplify(g) - rot)) == 0


def test_identity_checker_rejects_a_wrong_identity() -> None:
    """The simplifier-based check has power: DDPM's mean is not DDIM's at eta = 1/2."""
    assert not is_zero(get_sampler("ddpm").step.gain - get_sampler("ddim").step.gain.subs(eta, sp.Rational(1, 2)))
    assert not is_zero(get_sampler("ddpm", "beta").step.noise - get_sampler("ddim").step.noise.subs(eta, 1))


def test_plan_options_reach_the_symbolic_sampler() -> None:
    """Audit of 5 December: get_sampler kept only the options that change the update equations, so the symbolic
    plan (steps_for, compose, the LaTeX "Plan" line) silently used order 2 for solver_order=1. First-order
    DPM-Solver++ is DDIM (eta 0): its composed symbolic PSD must equal DDIM's, and every step is a first-order one;
    order-1 UniPC and DEIS take no second-order step; final_sigmas_type="sigma_min" stops before the clean level."""
    for name, K in (("dpmsolver_multistep", 4), ("deis_multistep", 4), ("unipc_multistep", 3)):
        kinds = {kind for kind, _, _ in get_sampler(name, solver_order=1).steps_for(K)}
        assert not kinds & {"second", "third", "p2", "c2", "p3", "c3"}, (name, kinds)
    smp = get_sampler("dpmsolver_multistep", solver_order=1)
    levels = [0.05, 0.4, 0.8]
    P = compose.output_psd(smp, 3, "white").subs(dict(zip(compose.level_symbols(smp, 3), levels))).subs(S, 0.3)
    ddim = symsched.output_spectrum([0.3], levels, sampler="ddim")[0]
    assert float(P) == pytest.approx(ddim, rel=1e-12)
    last = get_sampler("dpmsolver_multistep", final_sigmas_type="sigma_min").steps_for(7)[-1]
    assert last[1][-1] == 6  # ends at the last level, not the clean one (index 7)


@pytest.mark.parametrize("fn", ["transfer_function", "output_psd", "output_psd_closed_form"])
def test_symbolic_composition_checks_its_number_of_levels(fn) -> None:
    """Audit of 6 December: K = 0 gave an IndexError (output_psd) or H = 1 (transfer_function); K = 1.5 a TypeError
    naming nothing."""
    from symsched.symbolic import compose, get_sampler

    run = getattr(compose, fn)
    d = get_sampler("ddim")
    for bad in (0, -1, compose.MAX_SYMBOLIC_STEPS + 1):
        with pytest.raises(ValueError, match=r"^K must be an integer in \[1, MAX_SYMBOLIC_STEPS"):
            run(d, bad)
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match=r"^K must be an integer"):
            run(d, bad)
    assert run(d, 2) == run(d, np.int64(2))  # a NumPy integer is an integer


def test_symbolic_scheme_names_an_unhashable_argument() -> None:
    from symsched.symbolic.sde import get_scheme

    with pytest.raises(ValueError, match=r"^scheme must be one of .* \(got \['em'\]\)"):
        get_scheme(["em"])
    assert get_scheme("em") is get_scheme("em")  # still built once
