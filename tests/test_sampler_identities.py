"""Identities between samplers, their many-step limits and convergence orders, and their gradients.

- **VP <-> VE.** A VE sample x_ve at sigma is the VP sample x_vp / sqrt(alpha_bar) with
  alpha_bar = 1 / (1 + sigma^2) (docs/model.md §2); at the clean level both coincide. So from the exact start
  (the same law in both coordinates) DDIM(eta) on alpha_bar and k-diffusion's euler_ancestral(eta) on
  sigma have the same output spectrum, and their transfer functions differ by the start's scale:
  H_vp = H_ve / sqrt(alpha_bar_0) (diffusers' Euler ancestral works in VE coordinates: no factor). The same holds for DPM-Solver++ 2M (k-diffusion ``dpmpp_2m`` vs
  diffusers ``DPMSolverMultistepScheduler``), SDE-DPM-Solver++ 2M (``dpmpp_2m_sde`` at eta = 1 vs
  ``algorithm_type="sde-dpmsolver++"``), Euler ancestral (k-diffusion vs diffusers).
- **First order.** DPM-Solver++ of order 1 is DDIM (eta = 0), SDE-DPM-Solver++ of order 1 is DDIM
  with eta = 1 (the DDPM posterior step), LMS of order 1 is Euler.
- **Many-step limit.** From the exact start at sigma_max = 80, on K levels geometric down to
  sigma_min = 1e-6 (then the clean level): deterministic samplers follow the probability-flow ODE, which
  maps N(0, S + sigma_max^2) to N(0, S); stochastic ones solve the reverse SDE, whose marginal at the
  end is the data N(0, S). Either way P -> S, and the error max |P/S - 1| falls as K^-p with the
  method's order p, measured by the slope of log-error on log K over K = 80 .. 640 (the final jump from
  sigma_min costs <= sigma_min^2 / S = 1e-11 relative, far below the errors measured).
- **Gradients.** ``divergence_and_grad[_ve]`` (symbolic step derivatives + adjoint sweep) agree with
  central differences of the divergence, for every registered sampler.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import symsched
from symsched.symbolic.samplers import REGISTRY

S = np.logspace(-3, 3, 7)
SIG = np.array([14.6, 7.74, 3.91, 1.87, 0.837, 0.347, 0.130, 0.03])
AB = 1.0 / (1.0 + SIG**2)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a / b - 1.0)))


# ------------------------------------------------------------------------------------------------
# VP <-> VE and first-order identities
# ------------------------------------------------------------------------------------------------
#: (VP sampler, its settings, VE sampler, its settings)
VP_VE = [
    ("ddim", {"eta": 0.0}, "euler_ancestral", {"eta": 0.0}),
    ("ddim", {"eta": 0.4}, "euler_ancestral", {"eta": 0.4}),
    ("ddim", {"eta": 1.0}, "euler_ancestral", {"eta": 1.0}),
    ("ddim", {"eta": 0.0}, "euler", {}),
    ("euler_ancestral_discrete", {}, "euler_ancestral", {"eta": 1.0}),
    ("dpmsolver_multistep", {}, "dpmpp_2m", {}),
    ("dpmsolver_multistep", {"algorithm_type": "sde-dpmsolver++"}, "dpmpp_2m_sde", {"eta": 1.0}),
]


@pytest.mark.parametrize("vp,vp_kw,ve,ve_kw", VP_VE, ids=lambda v: str(v) if not isinstance(v, dict) else "")
def test_vp_and_ve_samplers_coincide_under_the_level_map(vp: str, vp_kw: dict, ve: str, ve_kw: dict) -> None:
    P_vp = symsched.output_spectrum(S, AB, sampler=vp, init="exact", **vp_kw)
    P_ve = symsched.output_spectrum_ve(S, SIG, sampler=ve, init="exact", **ve_kw)
    assert _rel(P_vp, P_ve) < 1e-12
    H_vp = symsched.transfer_function(S, AB, sampler=vp, **vp_kw)
    H_ve = symsched.transfer_function_ve(S, SIG, sampler=ve, **ve_kw)
    # the gain is from x_T in the first sampler's own coordinates (diffusers' Euler ancestral is VE)
    scale = np.sqrt(AB[0]) if REGISTRY[vp].PROCESS == "vp" else 1.0
    assert _rel(H_vp, H_ve / scale) < 1e-12


def test_vp_ve_check_tells_eta_apart() -> None:
    """Power: DDIM at eta = 0.4 is not euler_ancestral at eta = 0.5 (differs by > 1e-3)."""
    P_vp = symsched.output_spectrum(S, AB, sampler="ddim", eta=0.4, init="exact")
    P_ve = symsched.output_spectrum_ve(S, SIG, sampler="euler_ancestral", eta=0.5, init="exact")
    assert _rel(P_vp, P_ve) > 1e-3


@pytest.mark.parametrize("init", ["white", "exact"])
def test_first_order_samplers_are_ddim_and_euler(init: str) -> None:
    ddim0 = symsched.output_spectrum(S, AB, sampler="ddim", eta=0.0, init=init)
    ddim1 = symsched.output_spectrum(S, AB, sampler="ddim", eta=1.0, init=init)
    dpm1 = symsched.output_spectrum(S, AB, sampler="dpmsolver_multistep", solver_order=1, init=init)
    sde1 = symsched.output_spectrum(S, AB, sampler="dpmsolver_multistep", solver_order=1,
                                    algorithm_type="sde-dpmsolver++", init=init)
    assert _rel(dpm1, ddim0) < 1e-13 and _rel(sde1, ddim1) < 1e-13
    lms1 = symsched.output_spectrum_ve(S, SIG, sampler="lms", order=1, init=init)
    assert _rel(lms1, symsched.output_spectrum_ve(S, SIG, sampler="euler", init=init)) < 1e-13
    # power: second order is not DDIM, the SDE variant is not deterministic DDIM
    assert _rel(symsched.output_spectrum(S, AB, sampler="dpmsolver_multistep", init=init), ddim0) > 1e-2
    assert _rel(sde1, ddim0) > 1e-2


# ------------------------------------------------------------------------------------------------
# many-step limit and convergence order
# ------------------------------------------------------------------------------------------------
KS = np.array([80, 160, 320, 640])
S_LIMIT = np.array([0.1, 1.0, 10.0])

#: (sampler, settings, claimed order p, exact): the fitted slope must lie within 0.2 of p (exact) or be
#: >= p - 0.2 (p is a lower bound). Multistep methods whose first step is Euler (LMS, DPM-Solver++ 3M,
#: DEIS 3, 3M SDE) are globally of order <= 2 (the startup step's local error O(h^2) is not averaged
#: out); their higher nominal order shows on these K as a steeper slope, hence "at least 2". UniPC's
#: corrector lifts every step (the first included) by one order: UniPC-p is of order p + 1.
ORDERS: list[tuple[str, dict[str, Any], float, bool]] = [
    ("ddim", {}, 1, True),
    ("ddim", {"eta": 0.5}, 1, True),
    ("ddpm", {}, 1, True),
    ("euler", {}, 1, True),
    ("euler", {"s_churn": 10.0}, 1, True),
    ("heun", {}, 2, True),
    ("heun", {"s_churn": 10.0}, 2, True),
    ("dpm_2", {}, 2, True),
    ("dpm_2", {"s_churn": 10.0}, 2, True),
    ("euler_ancestral", {}, 1, True),
    ("euler_ancestral", {"eta": 0.5}, 1, True),
    ("dpm_2_ancestral", {}, 2, True),
    ("dpmpp_2s_ancestral", {}, 2, True),
    ("lms", {"order": 2}, 2, True),
    ("lms", {"order": 3}, 2, False),
    ("lms", {}, 2, False),
    ("dpmpp_2m", {}, 2, True),
    ("dpmpp_2m_sde", {}, 2, True),
    ("dpmpp_2m_sde", {"solver_type": "heun"}, 2, True),
    ("dpmpp_3m_sde", {}, 2, False),
    ("dpmpp_3m_sde", {"eta": 0.0}, 2, False),
    ("dpmpp_sde", {}, 2, True),
    ("dpmpp_sde", {"eta": 0.0}, 2, True),
    ("dpmsolver_multistep", {}, 2, True),
    ("dpmsolver_multistep", {"solver_type": "heun"}, 2, True),
    ("dpmsolver_multistep", {"solver_order": 3}, 2, False),
    ("dpmsolver_multistep", {"algorithm_type": "sde-dpmsolver++"}, 2, True),
    ("unipc_multistep", {"solver_order": 1}, 2, True),
    ("unipc_multistep", {}, 3, True),
    ("unipc_multistep", {"solver_type": "bh1"}, 3, True),
    ("unipc_multistep", {"solver_order": 3}, 3, False),
    ("deis_multistep", {}, 2, True),
    ("deis_multistep", {"solver_order": 3}, 2, False),
    ("euler_ancestral_discrete", {}, 1, True),
]


def _limit_errors(name: str, kw: dict[str, Any]) -> np.ndarray:
    errs = []
    for K in KS:
        sig = np.exp(np.linspace(np.log(80.0), np.log(1e-6), K))
        if REGISTRY[name].PROCESS == "ve":
            P = symsched.output_spectrum_ve(S_LIMIT, sig, sampler=name, init="exact", **kw)
        else:  # DEIS stops at its last level: sigma_min = 1e-6 leaves a floor of 1e-12 relative
            P = symsched.output_spectrum(S_LIMIT, 1.0 / (1.0 + sig**2), sampler=name, init="exact", **kw)
        errs.append(np.max(np.abs(P / S_LIMIT - 1.0)))
    return np.array(errs)


def _slope(errs: np.ndarray) -> float:
    return float(-np.polyfit(np.log(KS), np.log(errs), 1)[0])


def test_every_registered_sampler_has_an_order_check() -> None:
    assert {c[0] for c in ORDERS} >= set(REGISTRY) - {n for n, m in REGISTRY.items() if m.PROCESS == "flow"}


@pytest.mark.parametrize("name,kw,p,exact", ORDERS, ids=[f"{c[0]}-{c[1]}" for c in ORDERS])
def test_many_step_limit_reaches_the_data_with_the_claimed_order(name: str, kw: dict, p: float, exact: bool) -> None:
    errs = _limit_errors(name, kw)
    assert np.all(np.diff(errs) < 0) and errs[-1] < 0.05, errs
    slope = _slope(errs)
    if exact:
        assert abs(slope - p) <= 0.2, f"{name} {kw}: slope {slope:.2f}, claimed order {p}"
    else:
        assert slope >= p - 0.2, f"{name} {kw}: slope {slope:.2f}, claimed order >= {p}"


def test_diffusers_sde_dpmsolver_third_order_is_first_order() -> None:
    """diffusers 0.42's SDE-DPM-Solver++ order 3 (``multistep_dpm_solver_third_order_update``) weights D2 by
    alpha_t ((1 - e^{-2h} - 2h) / (2h)^2 - 1/2) -> -alpha_t as h -> 0 (the ODE branch's weight -> 0), and
    D2 = O(h^2): an O(h^2) error per step, order 1 overall. symsched reproduces what diffusers does
    (its probe and Monte Carlo witnesses pass); this records the measured consequence."""
    slope = _slope(_limit_errors("dpmsolver_multistep", {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}))
    assert abs(slope - 1.0) <= 0.25


# ------------------------------------------------------------------------------------------------
# gradients vs central differences
# ------------------------------------------------------------------------------------------------
S_GRAD = np.logspace(-2, 2, 9)
GRAD_CASES: list[tuple[str, dict[str, Any]]] = [(name, {}) for name, m in REGISTRY.items() if m.PROCESS != "flow"] + [
    ("euler", {"s_churn": 3.0}),
    ("heun", {"s_churn": 3.0, "s_tmin": 0.1, "s_tmax": 5.0}),
    ("lms", {"order": 2}),
    ("dpmpp_2m_sde", {"solver_type": "heun"}),
    ("dpmpp_sde", {"eta": 0.7, "r": 0.3}),
    ("dpmsolver_multistep", {"solver_order": 3, "algorithm_type": "sde-dpmsolver++"}),
    ("unipc_multistep", {"solver_order": 3, "solver_type": "bh1", "final_sigmas_type": "sigma_min"}),
    ("deis_multistep", {"solver_order": 3}),
]


@pytest.mark.parametrize("divergence", ["kl", "w2"])
@pytest.mark.parametrize("name,kw", GRAD_CASES, ids=[f"{c[0]}-{c[1]}" for c in GRAD_CASES])
def test_gradient_matches_central_differences(name: str, kw: dict, divergence: str) -> None:
    """Central differences with relative step 1e-6 in the level (error O(1e-12) truncation + 1e-10 rounding
    relative to J): the adjoint gradient agrees to 1e-6 of its largest entry."""
    sig = np.array([12.0, 6.5, 3.0, 1.6, 0.9, 0.45, 0.2, 0.07])
    ve = REGISTRY[name].PROCESS == "ve"
    if ve:
        levels = sig
        J, g = symsched.divergence_and_grad_ve(S_GRAD, levels, divergence=divergence, sampler=name, **kw)

        def f(x: np.ndarray) -> float:
            return symsched.divergence_and_grad_ve(S_GRAD, x, divergence=divergence, sampler=name, **kw)[0]
    else:
        levels = 1.0 / (1.0 + sig**2)
        J, g = symsched.divergence_and_grad(S_GRAD, levels, divergence=divergence, sampler=name, **kw)

        def f(x: np.ndarray) -> float:
            return symsched.divergence_and_grad(S_GRAD, x, divergence=divergence, sampler=name, **kw)[0]
    assert J == pytest.approx(f(levels), rel=1e-14)
    fd = np.empty_like(levels)
    for k in range(levels.size):
        d = 1e-6 * min(levels[k], 1.0 - levels[k]) if not ve else 1e-6 * levels[k]
        up, dn = levels.copy(), levels.copy()
        up[k] += d
        dn[k] -= d
        fd[k] = (f(up) - f(dn)) / (2 * d)
    scale = np.max(np.abs(g * levels))
    np.testing.assert_allclose(g * levels, fd * levels, rtol=0, atol=1e-6 * scale)
    assert scale > 0


def _lms_reference_gain(S: np.ndarray, sigmas: list[float], order: int) -> np.ndarray:
    """k-diffusion's ``sample_lms`` typed in (sampling.py, 0.1.1.post1): slopes d = (x - D) / sigma, the last
    min(i + 1, order) of them weighted by ``linear_multistep_coeff`` (scipy ``quad`` of the Lagrange basis), from
    x = 1 in every mode with the exact denoiser: the noise-free gain, without torch or k-diffusion."""
    from scipy import integrate

    t = list(sigmas) + [0.0]
    x, ds = np.ones_like(S), []
    for i in range(len(t) - 1):
        d = (x - S / (S + t[i] ** 2) * x) / t[i]
        ds = (ds + [d])[-order:]
        q = min(i + 1, order)

        def coeff(j: int) -> float:
            def fn(tau: float) -> float:
                return float(np.prod([(tau - t[i - k]) / (t[i - j] - t[i - k]) for k in range(q) if k != j]))
            return integrate.quad(fn, t[i], t[i + 1], epsrel=1e-4)[0]

        x = x + sum(coeff(j) * dd for j, dd in enumerate(reversed(ds)))
    return x


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_lms_gain_is_k_diffusions_lms_typed_in(order: int) -> None:
    """mutation run 5 Dec: LMS's plan capped at order 3 was caught only by the k-diffusion witness (skipped without
    torch); this reference needs neither. quad is exact for these low-degree polynomials (its 21-point rule)."""
    S = np.logspace(-3, 2, 11)
    sigmas = [14.6, 8.0, 4.1, 2.2, 1.1, 0.5, 0.21, 0.08]
    got = symsched.transfer_function_ve(S, sigmas, sampler="lms", order=order)
    np.testing.assert_allclose(got, _lms_reference_gain(S, sigmas, order), rtol=1e-10)
    if order == 4:  # power: the order-3 method misses the order-4 run by far more than the tolerance
        wrong = symsched.transfer_function_ve(S, sigmas, sampler="lms", order=3)
        assert np.max(np.abs(wrong / _lms_reference_gain(S, sigmas, 4) - 1)) > 1e-6


def test_float32_sigmas_are_decided_in_float32_without_torch() -> None:
    """k-diffusion audit of 5 Dec: sigmas given as float32 numbers (NumPy here; k-diffusion's get_sigmas_* tensors in
    tests/test_kdiffusion_witness.py) decide the churn window as torch does, with s_tmax cast to float32: float32(0.1)
    lies inside s_tmax = 0.1. Independent value: the float64 run whose window includes that level (s_tmax = 0.11)."""
    S = np.logspace(-3, 2, 6)
    sig32 = np.array([2.0, 0.1, 0.01], dtype=np.float32)
    kw = dict(s_churn=3.0, s_tmin=0.05)
    for name in ("euler", "heun", "dpm_2"):
        got = symsched.output_spectrum_ve(S, sig32, sampler=name, s_tmax=0.1, **kw)
        inside = symsched.output_spectrum_ve(S, sig32.astype(np.float64), sampler=name, s_tmax=0.11, **kw)
        outside = symsched.output_spectrum_ve(S, sig32.astype(np.float64), sampler=name, s_tmax=0.1, **kw)
        np.testing.assert_array_equal(got, inside)
        assert np.max(np.abs(outside / inside - 1)) > 1e-2, name
    # the ancestral min at eta = 1 binds in float32 (1 - r^2 rounds to 1 at r = 2.5e-5): the bound branch, which
    # does not depend on eta once it binds, is the float64 run at an eta that binds in exact arithmetic
    sig = np.array([80.0, 0.002], dtype=np.float32)
    bound = symsched.output_spectrum_ve(S, sig.astype(np.float64), sampler="dpm_2_ancestral", eta=1.5)
    np.testing.assert_allclose(symsched.output_spectrum_ve(S, sig, sampler="dpm_2_ancestral"), bound, rtol=1e-12)
    free = symsched.output_spectrum_ve(S, sig.astype(np.float64), sampler="dpm_2_ancestral")
    assert np.max(np.abs(free / bound - 1)) > 1.0


def test_float32_emulation_matches_numpy_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plans emulate float32 without NumPy (the symbolic layer imports none): f32 rounding and the ancestral
    decision agree with NumPy's float32 arithmetic on random sigmas around the switch and at the extremes. (The
    emulation itself: torch, which decides where a square root a few ulps off would flip it, is left out here.)"""
    from symsched.symbolic.samplers import _kdiffusion
    from symsched.symbolic.samplers._kdiffusion import _binds_float32, f32

    monkeypatch.setattr(_kdiffusion, "_torch_binds", lambda *a, **k: None)

    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.lognormal(0, 20, 2000), [0.0, 1e-45, 3.4e38, 3.5e38, 1e300, np.inf]])
    with np.errstate(over="ignore"):  # (NumPy's cast beyond float32's range warns; it gives inf, as f32 does)
        want = xs.astype(np.float32).astype(np.float64)
    assert [f32(float(x)) for x in xs] == want.tolist()

    def numpy_binds(a: float, b: float, eta: float) -> bool:
        f, t, e = np.float32(a), np.float32(b), np.float32(eta)
        with np.errstate(all="ignore"):
            up = e * np.sqrt(t * t * (f * f - t * t) / (f * f))
            su = up if up < t else t
            return bool(t * t - su * su == np.float32(0))

    ratios = np.exp(rng.uniform(np.log(1e2), np.log(1e6), 3000))  # around float32's switch (~4e3)
    tos = np.exp(rng.uniform(np.log(1e-20), np.log(1e15), 3000))
    seen = set()
    for r, t in zip(ratios, tos):
        for eta in (1.0, 0.7, 1.3):
            a, b = float(np.float32(r * t)), float(np.float32(t))
            got = _binds_float32(a, b, eta)
            assert got == numpy_binds(a, b, eta), (a, b, eta)
            seen.add(got)
    assert seen == {True, False}


@pytest.mark.parametrize("float32", [True, False])
def test_a_decision_a_few_ulps_from_the_switch_is_the_librarys(monkeypatch: pytest.MonkeyPatch, float32: bool) -> None:
    """Witness gap hunt of 6 December: torch 2.13.0's CPU square root is 1 ulp off on 19.5 % of float32 arguments
    (1.4 % of float64 ones), so k-diffusion's get_ancestral_step took the Euler branch on sigmas 120 -> 0.0292 (float32)
    where symsched's correctly rounded emulation did not (H 7.8e6x off). Where a square root within 2 ulps decides
    otherwise, the plan now asks torch (here a stand-in that records the call and answers the other way); elsewhere
    it decides alone, and without torch (None) the correctly rounded decision stands."""
    from symsched.symbolic.samplers import _kdiffusion

    calls: list[tuple] = []
    answer: list = [None]

    def torch_stand_in(s_from: float, s_to: float, eta: float, *, float32: bool) -> Any:
        calls.append((s_from, s_to, eta, float32))
        return answer[0]

    monkeypatch.setattr(_kdiffusion, "_torch_binds", torch_stand_in)
    rnd = _kdiffusion.f32 if float32 else float
    step = (lambda x, d: float(np.nextafter(np.float32(x), np.float32(d)))) if float32 else math.nextafter

    def decide(a: float, b: float, root_shift: int) -> bool:  # get_ancestral_step at eta = 1 typed in, with its
        up = rnd(math.sqrt(rnd(rnd(rnd(b * b) * rnd(rnd(a * a) - rnd(b * b))) / rnd(a * a))))  # root moved
        for _ in range(abs(root_shift)):  # root_shift ulps
            up = step(up, math.copysign(math.inf, root_shift))
        su = up if up < b else b
        return rnd(rnd(b * b) - rnd(su * su)) == 0.0

    def binds(a: float, b: float) -> bool:
        return _kdiffusion.ancestral_binds(-2 * math.log(a), -2 * math.log(b), 1.0, s_from=a, s_to=b, float32=float32)

    rng = np.random.default_rng(3)
    lo, hi = (3e2, 3e4) if float32 else (3e6, 3e9)  # around the switch (float32 ~4e3, float64 ~1e8)
    edge = robust = 0
    for _ in range(3000):
        b = rnd(float(rng.uniform(0.01, 10.0)))
        a = rnd(b * float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
        near = len({decide(a, b, k) for k in (-2, -1, 0, 1, 2)}) > 1
        calls.clear()
        answer[0] = None
        assert binds(a, b) == decide(a, b, 0)  # no torch: the correctly rounded decision
        assert bool(calls) == near, (a, b)  # torch is asked exactly where 2 ulps could flip it
        if near:
            answer[0] = not decide(a, b, 0)
            assert binds(a, b) == answer[0]  # and its answer is the decision
            edge += 1
        else:
            robust += 1
    assert edge >= 20 and robust >= 20  # both kinds were met


def test_float32_sigma_down_error_is_the_cancellation_of_sigma_to_squared(monkeypatch: pytest.MonkeyPatch) -> None:
    """At eta = 1, sigma_down = sigma_to^2 / sigma_from exactly, so the first-order relative error of k-diffusion's
    float32 sigma_to^2 - sigma_up^2 is 2^-24 (sigma_from / sigma_to)^2 (here by hand); a bound step (ratio 1e4 in
    float32: sigma_down = 0) and a float32 sigma_from^2 beyond float32's range are left out."""
    from symsched.symbolic.samplers import _kdiffusion

    monkeypatch.setattr(_kdiffusion, "_torch_binds", lambda *a, **k: None)
    a, b = float(np.float32(80.0)), float(np.float32(0.0292))
    err, at = _kdiffusion.float32_sigma_down_error([a, b, 0.0], 1.0)
    assert at == 0 and err == pytest.approx(2.0**-24 * (a / b) ** 2, rel=1e-12)
    err2, at2 = _kdiffusion.float32_sigma_down_error([200.0, a, b, 0.0], 1.0)  # the worst step is the second
    assert at2 == 1 and err2 == pytest.approx(err, rel=1e-12)
    assert _kdiffusion.float32_sigma_down_error([100.0, 0.01, 0.0], 1.0) == (0.0, -1)  # binds in float32
    assert _kdiffusion.float32_sigma_down_error([1e20, 1e17, 0.0], 1.0) == (0.0, -1)  # sigma_from^2 overflows
    assert _kdiffusion.float32_sigma_down_error([a, b, 0.0], 0.0) == (0.0, -1)  # no noise, no sigma_down
    # zero terminal SNR: a first sigma of inf is skipped (Fraction(inf) raised OverflowError: review of 6 December)
    err3, at3 = _kdiffusion.float32_sigma_down_error([math.inf, a, b, 0.0], 1.0)
    assert at3 == 1 and err3 == pytest.approx(err, rel=1e-12)
