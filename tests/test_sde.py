"""Continuous-time VP schemes (issue #5): the definitions to the letter, mpmath, convergence, CLI.

The reference below is written straight from the text of issue #5 (each update equation typed in
as stated there), evaluated in extended precision (``np.longdouble``) so that its own rounding stays
far below the tolerances; it shares no code with :mod:`symsched.sde`.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symsched import sde, w2_distance
from symsched.cli import main
from symsched.symbolic import sde as ssde
from symsched.symbolic.sde import continuous, model
from tex_helpers import compile_body, overfull

LD = np.longdouble
SPEC = np.array([0.0, 1e-9, 1e-4, 0.03, 0.5, 1.0, 2.5, 40.0, 1e4])


# ----------------------------------------------------------------------------------------------
# independent reference: issue #5, "to the letter"
# ----------------------------------------------------------------------------------------------
def reference(S, scheme, N, *, beta_min=0.05, beta_max=10.0, horizon=1.0, eps=0.0, init="white"):
    """Output variance after the last step, every step typed in from the issue, in long double."""
    S = np.asarray(S, dtype=LD)
    T, bmin, bmax, e = LD(horizon), LD(beta_min), LD(beta_max), LD(eps)

    def beta(t):
        return bmin + (bmax - bmin) * t

    def B(t):  # int_0^t beta
        return bmin * t + (bmax - bmin) * t * t / 2

    def lam(t):
        E = np.exp(-2 * B(t))
        return E * S + 1 - E

    t = [(T - e) * k / (N - 1) for k in range(N)]
    tau = [T - tk for tk in t]
    D = t[1] - t[0]
    v = np.ones_like(S) if init == "white" else lam(T)

    def f(y, s):  # PF-ODE slope per unit sample: beta (y - y / lambda)
        return beta(s) * (y - y / lam(s))

    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(N - 1):
            a, c = tau[k], tau[k + 1]
            bk, lk = beta(a), lam(a)
            if scheme == "em":  # y + D b_k (y - 2y/l_k) + sqrt(2 D b_k) z
                g, n = 1 + D * bk * (1 - 2 / lk), 2 * D * bk
            elif scheme == "ei":  # y + g1 (y - 2y/l_k) + sqrt(2 g2) z
                g1 = np.exp(B(a) - B(c)) - 1
                g2 = (np.exp(2 * (B(a) - B(c))) - 1) / 2
                g, n = 1 + g1 * (1 - 2 / lk), 2 * g2
            elif scheme == "ddpm":  # (y - b y/l_k)/sqrt(1-b) + sqrt(b) z, b = 2 D b_k
                b = 2 * D * bk
                g, n = (1 - b / lk) / np.sqrt(1 - b), b
            elif scheme == "euler":  # y + D b_k (y - y/l_k)
                g, n = 1 + D * bk * (1 - 1 / lk), 0
            elif scheme == "heun":  # slope at tau_k, Euler predictor, trapezoid with its slope at tau_{k+1}
                d1 = f(1, a)
                d2 = f(1 + D * d1, c)
                g, n = 1 + D * (d1 + d2) / 2, 0
            elif scheme == "rk4":  # classic RK4, middle stages at tau_k - D/2
                m = a - D / 2
                k1 = f(1, a)
                k2 = f(1 + D * k1 / 2, m)
                k3 = f(1 + D * k2 / 2, m)
                k4 = f(1 + D * k3, c)
                g, n = 1 + D * (k1 + 2 * k2 + 2 * k3 + k4) / 6, 0
            else:  # pragma: no cover
                raise ValueError(scheme)
            v = g * g * v + n
    return v.astype(np.float64)


def assert_matches_reference(P, R, S, *, rtol=1e-10, what=""):
    """Same infinities; |P - R| <= rtol * max(R, S) per mode; same W2 to rtol.

    Per mode the scale is max(R, S): where a scheme's gain nearly cancels (P << S) float64 can
    only resolve P to ~1e-16 of the terms that cancel, which are of the size of S.
    """
    fin = np.isfinite(R)
    np.testing.assert_array_equal(np.isfinite(P), fin, err_msg=f"{what}: finiteness differs")
    np.testing.assert_array_equal(P[~fin], R[~fin], err_msg=f"{what}: infinities differ")
    scale = np.maximum(R[fin], S[fin])
    err = np.abs(P[fin] - R[fin])
    bad = err > rtol * scale
    assert not bad.any(), f"{what}: max error/scale {np.max(err / np.where(scale > 0, scale, 1)):.3g}"
    if fin.all():
        assert w2_distance(P, S) == pytest.approx(w2_distance(R, S), rel=rtol, abs=1e-300), what


@pytest.fixture(scope="module")
def adsn_subset(request) -> np.ndarray:
    """A deterministic slice of the ADSN PSD: 1,500 of its distinct values plus zeros."""
    full = request.getfixturevalue("adsn_spectrum")
    u = np.unique(full)
    idx = np.linspace(0, u.size - 1, 1500).astype(int)
    return np.concatenate([u[idx], np.zeros(5)])


# ----------------------------------------------------------------------------------------------
# contract: every registered scheme
# ----------------------------------------------------------------------------------------------
def test_registry_matches_the_public_lists() -> None:
    assert tuple(ssde.REGISTRY) == sde.SCHEMES
    for name in sde.SCHEMES:
        sch = ssde.get_scheme(name)
        assert sch.name == name
        assert (name in sde.SDE_SCHEMES) == (sch.equation == "sde") == (name in ssde.SDE_SCHEMES)
        assert sch.evals_per_step == sde.EVALS_PER_STEP[name]
        assert (sch.step.noise != 0) == (sch.equation == "sde")
        assert sch.uses_end_point == (name in ("heun", "rk4"))


@pytest.mark.parametrize("name", sde.SCHEMES)
def test_every_step_is_consistent_with_its_equation(name: str) -> None:
    """Order-Delta Taylor terms: g = 1 + Delta a(tau_k) + O(Delta^2), n = 2 Delta beta(tau_k) + O(Delta^2) (SDE).

    a = beta (1 - 2/lambda) for the reverse SDE, beta (1 - 1/lambda) for the PF-ODE; beta and B are
    substituted, lambda stays an undefined function (its derivatives only enter at O(Delta^2)).
    """
    sch = ssde.get_scheme(name)
    m = model

    def partial(e: sp.Expr) -> sp.Expr:
        e = e.replace(m.B, lambda t: m.B_def(t)).replace(m.beta, lambda t: m.beta_def(t))
        return e.subs(m.tau_next, m.tau_k - m.Delta)

    g, n = partial(sch.step.gain), partial(sch.step.noise)
    beta_k = m.beta_def(m.tau_k)
    a = beta_k * (1 - (2 if sch.equation == "sde" else 1) / m.lam(m.tau_k))
    g1 = sp.series(g, m.Delta, 0, 2).removeO().doit()
    assert sp.simplify(g1 - (1 + m.Delta * a)) == 0
    n1 = sp.series(n, m.Delta, 0, 2).removeO()
    assert sp.simplify(n1 - (2 * m.Delta * beta_k if sch.equation == "sde" else 0)) == 0


def test_nfe_counting() -> None:
    assert [sde.nfe(s, 11) for s in sde.SCHEMES] == [10, 10, 10, 10, 20, 40]
    assert sde.n_points_for_nfe("rk4", 50) == 13 and sde.nfe("rk4", 13) == 48
    assert sde.n_points_for_nfe("heun", 50) == 26 and sde.nfe("heun", 26) == 50
    assert sde.n_points_for_nfe("em", 50) == 51 and sde.nfe("em", 51) == 50


# ----------------------------------------------------------------------------------------------
# symbolic identities
# ----------------------------------------------------------------------------------------------
def test_model_lambda_solves_the_forward_variance_equation() -> None:
    ode, sol = model.forward_variance_derivation()
    assert sp.simplify(sol - model.lam_of_b(model.b)) == 0
    assert sp.simplify(sp.diff(model.B_def(model.tau), model.tau) - model.beta_def(model.tau)) == 0
    # lambda(tau) from the issue: e^{-2B} S + 1 - e^{-2B}, and d lambda/d tau = 2 beta (1 - lambda)
    lam = model.lam_def(model.tau)
    assert sp.simplify(sp.diff(lam, model.tau) - 2 * model.beta_def(model.tau) * (1 - lam)) == 0
    assert lam.subs(model.tau, 0) == model.S


@pytest.mark.parametrize("kind", continuous.KINDS)
def test_closed_forms_equal_dsolve_and_solve_the_variance_ode(kind: str) -> None:
    assert continuous.verify(kind)
    # independently of dsolve: P(tau) solves dv/dtau = -(2 a v + sigma^2) and P(T) = v_init,
    # checked at random points with 40-digit finite differences
    m = model
    P = m.explicit(continuous.closed_form(kind))
    f = sp.lambdify([m.eps, m.S, m.horizon, m.beta_min, m.beta_max, m.v_init], P, "mpmath")
    rng = np.random.default_rng(3)
    with mpmath.workdps(40):
        for _ in range(5):
            draws = (rng.lognormal(0, 1), rng.uniform(0.5, 2), rng.uniform(0.01, 1), rng.uniform(2, 20), rng.uniform(0.1, 3))
            s, T, b0, b1, v0 = (mpmath.mpf(float(x)) for x in draws)
            t = T * mpmath.mpf(float(rng.uniform(0.05, 0.95)))
            beta = b0 + (b1 - b0) * t
            Bt = b0 * t + (b1 - b0) * t**2 / 2
            lam = mpmath.exp(-2 * Bt) * s + 1 - mpmath.exp(-2 * Bt)
            a = beta * (1 - (2 if kind == "sde" else 1) / lam)
            sig2 = 2 * beta if kind == "sde" else 0
            v = f(t, s, T, b0, b1, v0)
            dv = mpmath.diff(lambda x: f(x, s, T, b0, b1, v0), t)
            assert abs(dv + 2 * a * v + sig2) < mpmath.mpf(10) ** -25 * (abs(dv) + 1)
            assert abs(f(T, s, T, b0, b1, v0) - v0) < mpmath.mpf(10) ** -30


# ----------------------------------------------------------------------------------------------
# the definitions to the letter, on real spectra
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", sde.SCHEMES)
def test_matches_the_issue_definitions_on_cifar10(scheme: str, cifar_spectrum: np.ndarray) -> None:
    S = cifar_spectrum
    for N in (50, 250):
        for eps in (0.0, 1e-5, 1e-3):
            for init in sde.INITS:
                P = sde.output_spectrum(S, scheme, N, eps=eps, init=init)
                R = reference(S, scheme, N, eps=eps, init=init)
                assert_matches_reference(P, R, S, what=f"{scheme} N={N} eps={eps} {init}")


def test_matches_the_issue_definitions_on_adsn(adsn_subset: np.ndarray) -> None:
    S = adsn_subset
    for scheme in sde.SCHEMES:
        for eps in (0.0, 1e-4):
            for init in sde.INITS:
                P = sde.output_spectrum(S, scheme, 120, eps=eps, init=init)
                R = reference(S, scheme, 120, eps=eps, init=init)
                assert_matches_reference(P, R, S, what=f"{scheme} eps={eps} {init}")


def test_other_model_parameters_match_the_definitions() -> None:
    S = SPEC
    kw = dict(beta_min=0.3, beta_max=4.0, horizon=2.5, eps=0.02)
    for scheme in sde.SCHEMES:
        for init in sde.INITS:
            P = sde.output_spectrum(S, scheme, 80, init=init, **kw)
            assert_matches_reference(P, reference(S, scheme, 80, init=init, **kw), S, what=scheme)


@settings(max_examples=40)
@given(
    scheme=st.sampled_from(sde.SCHEMES),
    n_points=st.integers(2, 60),
    beta_min=st.floats(0.01, 2.0),
    beta_span=st.floats(0.0, 20.0),
    horizon=st.floats(0.05, 3.0),
    eps_frac=st.sampled_from([0.0, 1e-7, 1e-3, 0.2, 0.9]),
    init=st.sampled_from(sde.INITS),
)
def test_random_parameters_match_the_definitions(scheme, n_points, beta_min, beta_span, horizon, eps_frac, init) -> None:
    kw = dict(beta_min=beta_min, beta_max=beta_min + beta_span, horizon=horizon, eps=eps_frac * horizon, init=init)
    R = reference(SPEC, scheme, n_points, **kw)
    try:
        P, error = sde.output_spectrum(SPEC, scheme, n_points, **kw), None
    except ValueError as exc:
        P, error = None, exc
    if error is not None:  # only DDPM can be undefined on a grid, and then the reference is not real
        assert scheme == "ddpm" and isinstance(error, sde.UndefinedUpdate), error
        assert not np.all(np.isfinite(R))
    else:
        assert_matches_reference(P, R, SPEC, what=f"{scheme} {n_points} {kw}")


def test_published_values_are_reproduced(cifar_spectrum: np.ndarray) -> None:
    """Pierret & Galerne's Table 2 (CIFAR-10, two decimals): EM 4.78, Euler 1.72, Heun 23.42 (eps=1e-5)."""
    S = cifar_spectrum
    assert round(w2_distance(sde.output_spectrum(S, "em", 50, init="exact"), S), 2) == 4.78
    assert round(w2_distance(sde.output_spectrum(S, "euler", 50, init="exact"), S), 2) == 1.72
    assert round(w2_distance(sde.output_spectrum(S, "heun", 50, eps=1e-5, init="exact"), S), 2) == 23.42
    assert round(w2_distance(sde.output_spectrum(S, "rk4", 12, eps=1e-5, init="exact"), S), 2) == 67.32
    assert round(w2_distance(sde.continuous_output_spectrum(S, "ode", init="white"), S), 2) == 0.07


def test_duplicated_modes_and_shapes() -> None:
    S = np.array([[0.5, 2.0, 0.5], [2.0, 0.0, 0.5]])
    for scheme in sde.SCHEMES:
        P = sde.output_spectrum(S, scheme, 30, eps=1e-3)
        assert P.shape == S.shape
        single = np.array([sde.output_spectrum([s], scheme, 30, eps=1e-3)[0] for s in S.ravel()])
        np.testing.assert_array_equal(P.ravel(), single)


# ----------------------------------------------------------------------------------------------
# mpmath and the continuous solutions
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", sde.SCHEMES)
def test_float_path_agrees_with_mpmath(scheme: str) -> None:
    S = SPEC[[0, 1, 2, 4, 6, 8]]
    for eps in (0.0, 1e-4):
        for init in sde.INITS:
            P = sde.output_spectrum(S, scheme, 25, eps=eps, init=init)
            M = sde.output_spectrum_mp(S, scheme, 25, eps=eps, init=init, dps=40)
            Mf = np.array([float(x) for x in M])
            assert_matches_reference(P, Mf, S, rtol=1e-11, what=f"{scheme} eps={eps} {init}")


@pytest.mark.parametrize("scheme", ["heun", "rk4"])
def test_huge_modes_keep_their_digits_where_the_rate_is_steep(scheme: str) -> None:
    """review of 4 December: for 1e160 < S < 1e290 (the float64 twin in T = 1/S) with beta_max = 300 or horizon 5,
    a grid point meets e^{-2B} ~ 1/S and T e^{-2B} underflowed: Heun and RK4 returned 4.6e56 for 1.858e68."""
    S = np.array([1e150, 1e200, 1e250, 1e280, 1e289, 1e291])
    for kw, N in ((dict(beta_max=300.0), 30), (dict(horizon=5.0), 20), (dict(horizon=3.0), 30)):
        P = sde.output_spectrum(S, scheme, N, eps=1e-3, **kw)
        M = np.array([float(x) for x in sde.output_spectrum_mp(S, scheme, N, eps=1e-3, dps=40, **kw)])
        np.testing.assert_allclose(P, M, rtol=1e-12, atol=0, err_msg=f"{scheme} {kw}")


#: long horizons and steep rates, where beta * Delta reaches 1e7: over a common denominator in S, RK4's and Heun's
#: gains cancelled to every digit (P = 2.5e4, 0 or 947 for S = 1 instead of 1)
STEEP = [dict(horizon=1000.0), dict(horizon=100.0), dict(beta_max=1e6), dict(beta_max=1e5), dict(horizon=1e6)]


@pytest.mark.parametrize("scheme", ["euler", "heun", "rk4"])
def test_the_mode_S_equal_1_is_kept_exactly_by_the_ode_schemes_on_any_grid(scheme: str) -> None:
    """S = 1 has lambda(tau) = 1 at every time: the PF-ODE slope beta (y - y/lambda) is 0 and every step is the
    identity, so P = 1 (white start) exactly whatever the horizon, rate or grid."""
    for kw in STEEP:
        for N in (2, 5, 50):
            P = sde.output_spectrum([1.0], scheme, N, eps=1e-3, **kw)
            assert P[0] == pytest.approx(1.0, rel=1e-12, abs=0), f"{scheme} {kw} N={N}: {P[0]}"


@pytest.mark.parametrize("scheme", sde.SCHEMES)
def test_long_horizons_and_steep_rates_agree_with_mpmath_and_the_reference(scheme: str) -> None:
    """Where beta * Delta is large the float path still agrees with the canonical forms at 60 digits (to 1e-12 of
    max(P, S)) and with the reference typed in from the issue (its own long-double rounding: 1e-9)."""
    S = np.array([0.0, 1e-6, 0.5, 0.999999, 1.0, 1.000001, 2.0, 100.0, 1e100, 1e300])
    for kw in STEEP[:4]:
        for N in (2, 5, 50):
            for init in sde.INITS:
                try:
                    P = sde.output_spectrum(S, scheme, N, eps=1e-3, init=init, **kw)
                except sde.BeyondFloat64:  # the SDE schemes diverge on long horizons: mpmath must agree
                    M = sde.output_spectrum_mp(S, scheme, N, eps=1e-3, init=init, dps=30, **kw)
                    assert max(M) > np.finfo(np.float64).max, f"{scheme} {kw} N={N} {init}"
                    continue
                except ValueError as exc:  # DDPM's update is undefined where 2 Delta beta_k >= 1
                    assert scheme == "ddpm" and isinstance(exc, sde.UndefinedUpdate), exc
                    continue
                M = np.array([float(x) for x in sde.output_spectrum_mp(S, scheme, N, eps=1e-3, init=init, dps=60,
                                                                       **kw)])
                what = f"{scheme} {kw} N={N} {init}"
                assert_matches_reference(P, M, S, rtol=1e-12, what=what)
                assert_matches_reference(P, reference(S, scheme, N, eps=1e-3, init=init, **kw), S, rtol=1e-9,
                                         what=what)


@pytest.mark.parametrize("kind", sde.KINDS)
def test_continuous_float_agrees_with_mpmath(kind: str) -> None:
    for eps in (0.0, 1e-9, 1e-4, 0.3):
        for init in sde.INITS:
            P = sde.continuous_output_spectrum(SPEC, kind, eps=eps, init=init)
            M = np.array([float(x) for x in sde.continuous_output_spectrum_mp(SPEC, kind, eps=eps, init=init)])
            np.testing.assert_allclose(P, M, rtol=1e-13, atol=0)


def test_continuous_exact_start_is_the_marginal() -> None:
    for kind in sde.KINDS:
        P = sde.continuous_output_spectrum(SPEC, kind, eps=0.0, init="exact")
        np.testing.assert_allclose(P, SPEC, rtol=1e-15, atol=0)  # lambda(0) = S
    P = sde.continuous_output_spectrum(SPEC, "ode", horizon=0.4, eps=0.1, init="white")
    lam = lambda t: np.exp(-2 * (0.05 * t + 9.95 * t * t / 2)) * (SPEC - 1) + 1  # noqa: E731
    np.testing.assert_allclose(P, lam(0.1) / lam(0.4), rtol=1e-13)


@pytest.mark.parametrize("kind,scheme", [("ode", "rk4"), ("sde", "ei"), ("sde", "em")])
def test_fine_grids_converge_to_the_continuous_solution(kind: str, scheme: str) -> None:
    """The reference schemes on fine grids approach the closed forms (two-level Richardson for order 1)."""
    S = np.array([0.0, 1e-3, 0.3, 1.7, 12.0])
    for init in sde.INITS:
        exact = sde.continuous_output_spectrum(S, kind, eps=0.05, init=init)
        if scheme == "rk4":
            np.testing.assert_allclose(reference(S, scheme, 1201, eps=0.05, init=init), exact, rtol=1e-9)
        else:  # first order: (8 P(h/4) - 6 P(h/2) + P(h)) / 3 removes the O(h) and O(h^2) terms
            p = [reference(S, scheme, n + 1, eps=0.05, init=init) for n in (2000, 4000, 8000)]
            np.testing.assert_allclose((8 * p[2] - 6 * p[1] + p[0]) / 3, exact, rtol=3e-7)
            assert np.all(np.abs(p[2] - exact) < np.abs(p[1] - exact))


ORDER_STEPS = {"rk4": [20, 40, 80, 160], "heun": [40, 80, 160, 320]}


@pytest.mark.parametrize("scheme", sde.SCHEMES)
def test_convergence_order(scheme: str) -> None:
    """Regress log-error on log-step against the exact solution (exact start, eps > 0: no start mismatch)."""
    S = np.array([0.3, 2.5, 8.0])
    kind = "sde" if scheme in sde.SDE_SCHEMES else "ode"
    exact = sde.continuous_output_spectrum(S, kind, eps=0.05, init="exact")
    steps = np.array(ORDER_STEPS.get(scheme, [80, 160, 320, 640]))
    errs = np.array([np.abs(sde.output_spectrum(S, scheme, n + 1, eps=0.05, init="exact") / exact - 1) for n in steps])
    order = ssde.get_scheme(scheme).order
    for j in range(S.size):
        slope = np.polyfit(np.log(1.0 / steps), np.log(errs[:, j]), 1)[0]
        assert abs(slope - order) < 0.25, f"{scheme} S={S[j]}: observed order {slope:.3f}, expected {order}"


# ----------------------------------------------------------------------------------------------
# the S = 0, eps = 0 convention
# ----------------------------------------------------------------------------------------------
def test_zero_modes_at_eps_zero() -> None:
    S = np.array([0.0, 1e-12, 0.5])
    for scheme in sde.SCHEMES:
        for init in sde.INITS:
            P = sde.output_spectrum(S, scheme, 40, eps=0.0, init=init)
            if scheme in ("heun", "rk4"):
                assert P[0] == np.inf  # documented value: lambda(0) = S = 0 in the last stage
                assert np.all(np.isfinite(P[1:]))
                assert P[1] > 1e6  # the pole is real: the gain blows up like 1/S
                assert sde.output_spectrum_mp(S[:1], scheme, 40, init=init)[0] == mpmath.inf
            else:
                assert np.all(np.isfinite(P))
            assert np.all(np.isfinite(sde.output_spectrum(S, scheme, 40, eps=1e-6, init=init)))
    for kind in sde.KINDS:
        for init in sde.INITS:
            P = sde.continuous_output_spectrum(S, kind, eps=0.0, init=init)
            assert np.all(np.isfinite(P)) and P[0] == 0.0


def test_table_reports_diverging_cells_as_inf() -> None:
    tab = sde.error_table(np.array([0.0, 0.4, 2.0]), [30], [0.0, 1e-3])
    assert tab.cells[("heun", 30, 0.0, "white")] == math.inf
    assert math.isfinite(tab.cells[("heun", 30, 1e-3, "white")])
    assert math.isfinite(tab.cells[("em", 30, 0.0, "white")])


def test_a_mode_whose_variance_leaves_float64_is_an_inf_cell_not_a_failed_table() -> None:
    """break-test 50: a mode of 1e-200 takes Heun and RK4 at eps = 0 beyond float64 near the pole of S = 0 (its true
    variance, computed with mpmath); the whole table was refused, though a diverging cell reads inf (the docstring).
    Now those cells are inf and every other cell is computed, equal to its own run (the companion)."""
    S = np.array([1e-200, 1.0])
    tab = sde.error_table(S, (10,), (0.0, 1e-3))
    for scheme in ("heun", "rk4"):
        with pytest.raises(sde.BeyondFloat64, match="pole of S = 0"):
            sde.output_spectrum(S, scheme, 10)
        assert tab.cells[(scheme, 10, 0.0, "white")] == math.inf
    for scheme, e in (("em", 0.0), ("heun", 1e-3), ("rk4", 1e-3)):
        P = sde.output_spectrum(S, scheme, 10, eps=e)
        assert tab.cells[(scheme, 10, e, "white")] == pytest.approx(w2_distance(P, S), rel=1e-12), (scheme, e)


def test_a_scheme_that_never_reaches_the_pole_is_not_told_eps_helps() -> None:
    """break-test 50: EI over horizon 30 diverges for S = 0 whatever eps (true variance ~1e3888); the message blamed
    the pole at time 0 and said eps > 0 keeps it finite (EI never evaluates the score there). Only schemes that use
    the end point get the pole message (the companion: heun above)."""
    for e in (0.0, 1e-3):
        with pytest.raises(sde.BeyondFloat64) as exc:
            sde.output_spectrum([0.0, 0.5], "ei", 100, horizon=30, eps=e)
        assert "pole" not in str(exc.value) and "eps > 0" not in str(exc.value)
        assert str(exc.value).startswith("horizon: ")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(sizes=10), TypeError, "sizes must be a sequence of positive integers"),
    (dict(eps_values=None), TypeError, "eps_values must be a sequence of numbers"),
    (dict(schemes=5), TypeError, "schemes must be a sequence of scheme names"),
    (dict(schemes="em"), TypeError, "schemes must be a sequence of scheme names"),  # not the letters 'e', 'm'
    (dict(sizes=(10, 10)), ValueError, "sizes must not repeat a value"),
    (dict(eps_values=(0.0, -0.0)), ValueError, "eps_values must not repeat a value"),
    (dict(schemes=("euler", "euler")), ValueError, "schemes must not repeat a value"),
])
def test_error_table_arguments_are_checked_by_name(kwargs, error, match) -> None:
    """break-test 50: raw 'int' object is not iterable TypeErrors, 'scheme ... (got 'e')' for schemes='em', and
    duplicate columns or a '-0' row for repeated values."""
    args = dict(sizes=(10,), eps_values=(1e-3,), schemes=("euler",))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sde.error_table([0.5, 2.0], **args)


def test_eps_values_print_in_latex_as_the_cells_do() -> None:
    """break-test 50: eps = 3e-5 printed as $3e-05$ in the LaTeX table."""
    from symsched.sde import _tex_eps

    assert _tex_eps(3e-5) == "$3\\times10^{-5}$" and _tex_eps(1e-4) == "$10^{-4}$" and _tex_eps(0.0) == "$0$"
    tex = sde.error_table([0.5, 2.0], (10,), (3e-5,), schemes=("euler",)).to_latex()
    assert "$3\\times10^{-5}$" in tex and "3e-05" not in tex


def test_error_table_names_eps_values_and_digits_and_tells_close_eps_rows_apart() -> None:
    """Audit of 5 December: a bad eps in error_table was blamed on 'eps' (it has eps_values); 1e-5 and
    1.000000001e-5 (not a repeat, so accepted) printed as two rows both labelled 1e-05 (LaTeX: $10^{-5}$ and
    $1\\times 10^{-5}$); to_latex(-1), (None), (2.5) failed inside str.format and (0) printed one digit."""
    with pytest.raises(ValueError, match=r"^eps_values: eps must satisfy 0 <= eps < horizon"):
        sde.error_table([0.5, 2.0], sizes=(10,), eps_values=(-1.0,), schemes=("euler",))
    close = (1e-5, 1.000000001e-5)
    table = sde.error_table([0.5, 2.0], (10,), close, schemes=("euler",))
    rows = [line.split(" | ")[1] for line in table.to_markdown().splitlines() if line.startswith("| euler |")]
    assert rows == ["1e-05", "1.000000001e-05"]
    tex = table.to_latex()
    assert "$10^{-5}$" in tex and "$1.000000001\\times10^{-5}$" in tex
    for bad, error in ((-1, ValueError), (0, ValueError), (18, ValueError), (2.5, ValueError), (None, TypeError),
                       ("3", TypeError)):
        with pytest.raises(error, match=r"^digits"):
            table.to_latex(bad)


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(scheme="euler_maruyama"), "scheme must be one of"),
        (dict(n_points=1), "n_points must be an integer >= 2"),
        (dict(n_points=10.0), "n_points must be an integer >= 2"),
        (dict(n_points=True), "n_points must be an integer >= 2"),
        (dict(eps=-1e-3), "eps must satisfy 0 <= eps < horizon"),
        (dict(eps=1.0), "eps must satisfy 0 <= eps < horizon"),
        (dict(eps=float("nan")), "eps must be finite"),
        (dict(horizon=0.0), "horizon must be positive"),
        (dict(beta_min=0.0), "beta\\(t\\) = beta_min \\+ \\(beta_max - beta_min\\) t must be positive"),
        (dict(beta_min=1.0, beta_max=-1.0), "must be positive on \\[0, horizon\\]"),
        (dict(beta_min="a"), "beta_min must be a real number"),
        (dict(init="noise"), "init must be one of"),
        (dict(spectrum=[1.0, -1.0]), "spectrum must be non-negative"),
        (dict(spectrum=[1.0, np.inf]), "spectrum must be finite"),
        (dict(scheme="ddpm", n_points=10), "n_points=10 is too small for scheme 'ddpm'.*1 - 2\\*Delta\\*beta"),
    ],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    args = dict(spectrum=[0.5, 1.0], scheme="em", n_points=20)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sde.output_spectrum(args.pop("spectrum"), args.pop("scheme"), args.pop("n_points"), **args)


def test_sde_table_names_nfe_for_a_size_below_one_step(tmp_path, capsys) -> None:
    """The API's sizes / eps_values are the command's --nfe / --eps (the message named --count, from its count='nfe')."""
    from symsched.cli import main

    np.save(tmp_path / "S.npy", np.ones(3))
    assert main(["sde-table", "--spectrum", str(tmp_path / "S.npy"), "--nfe", "3", "--count", "nfe",
                 "--out", str(tmp_path / "t.tex"), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("symsched sde-table: error: --nfe: the size 3 (evaluations, rk4 on N")


def test_bad_input_elsewhere() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        sde.continuous_output_spectrum([1.0], "pde")
    with pytest.raises(ValueError, match="eps must satisfy"):
        sde.continuous_output_spectrum([1.0], "sde", eps=2.0)
    with pytest.raises(ValueError, match="less than one rk4 step"):
        sde.n_points_for_nfe("rk4", 3)
    # audit of 4 December: error_table passed on n_points_for_nfe's "n_evals=3", an argument its caller never gave
    with pytest.raises(ValueError, match=r"^sizes: the size 3 \(evaluations, rk4 on N grid points\) is refused: .*"
                                         r"less than one rk4 step"):
        sde.error_table([1.0], [3], [0.0], count="nfe")
    with pytest.raises(ValueError, match=r"^sizes: the size 1 \(grid points\) is refused"):  # (it named n_points)
        sde.error_table([1.0], [1], [0.0])
    with pytest.raises(ValueError, match="count must be one of"):
        sde.error_table([1.0], [10], [0.0], count="steps")
    with pytest.raises(ValueError, match="sizes must be positive integers"):
        sde.error_table([1.0], [0], [0.0])
    tab = sde.error_table([0.5, 2.0], [10], [1e-3], schemes=["ddpm", "em"])
    assert math.isnan(tab.cells[("ddpm", 10, 1e-3, "white")]) and ("ddpm", 10, 1e-3) in tab.undefined
    assert math.isfinite(tab.cells[("em", 10, 1e-3, "white")])


# ----------------------------------------------------------------------------------------------
# LaTeX section
# ----------------------------------------------------------------------------------------------
def test_latex_section_is_registered_and_complete() -> None:
    from symsched.symbolic.latex import EXTRA_SECTIONS

    assert EXTRA_SECTIONS.get("sde") is ssde.latex.render
    text = ssde.latex.render()
    for sch in ssde.REGISTRY.values():
        assert sch().title in text
    for needle in ("P_{\\mathrm{SDE}}", "P_{\\mathrm{ODE}}", "v_{k+1} = g_k(S)^2", "c_{K_{4}}", "\\gamma_{1}"):
        assert needle in text
    assert "\\lambda_{k+1}" in ssde.get_scheme("heun")._repr_latex_()


# ----------------------------------------------------------------------------------------------
# the CLI end to end
# ----------------------------------------------------------------------------------------------
def _parse_markdown(out: str) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    body = {}
    for line in rows[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        body[(cells[0], cells[1])] = cells[2:]
    return head, body


def _value(text: str) -> float:
    return math.inf if text == "inf" else float(text)


@pytest.mark.parametrize("count", ["points", "nfe"])
def test_sde_table_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str], count: str) -> None:
    rng = np.random.default_rng(7)
    S = np.concatenate([rng.lognormal(-2, 2, 40), [0.0, 0.0]])
    np.save(tmp_path / "S.npy", S)
    out_tex = tmp_path / "table.tex"
    code = main(["sde-table", "--spectrum", str(tmp_path / "S.npy"), "--nfe", "40,80", "--eps", "0,1e-3",
                 "--count", count, "--out", str(out_tex), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    head, body = _parse_markdown(out)
    label = "N" if count == "points" else "NFE"
    assert head[2:4] == ["continuous exact", "continuous white"]
    assert head[4:] == [f"{label} = 40 exact", f"{label} = 40 white", f"{label} = 80 exact", f"{label} = 80 white"]
    assert len(body) == len(sde.SCHEMES) * 2
    for scheme in sde.SCHEMES:
        kind = "sde" if scheme in sde.SDE_SCHEMES else "ode"
        for eps in (0.0, 1e-3):
            cells = body[(scheme, f"{eps:g}")]
            for j, init in enumerate(("exact", "white")):
                cont = w2_distance(sde.continuous_output_spectrum(S, kind, eps=eps, init=init), S)
                # (sde from the exact start at eps = 0: W2 is 0, computed as ~1e-16 of rounding: an absolute bound)
                assert _value(cells[j]) == pytest.approx(cont, rel=1e-9, abs=1e-12)
            for i, size in enumerate((40, 80)):
                n_points = size if count == "points" else size // sde.EVALS_PER_STEP[scheme] + 1
                for j, init in enumerate(("exact", "white")):
                    R = reference(S, scheme, n_points, eps=eps, init=init)
                    expected = math.inf if not np.all(np.isfinite(R)) else w2_distance(R, S)
                    got = _value(cells[2 + 2 * i + j])
                    assert got == pytest.approx(expected, rel=1e-6), (scheme, size, eps, init)
    if count == "nfe":
        assert "rk4 21" in out and "heun 41" in out and "em 41" in out
    tex = out_tex.read_text()
    for needle in ("\\toprule", "\\midrule", "\\bottomrule", "\\cmidrule(lr){3-4}", "$\\infty$", "RK4"):
        assert needle in tex
    assert ("$N = 40$" in tex) == (count == "points") and ("NFE $= 40$" in tex) == (count == "nfe")


def test_sde_table_cli_continuous_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    S = np.array([0.0, 0.02, 0.7, 3.0])
    np.save(tmp_path / "S.npy", S)
    assert main(["sde-table", "--spectrum", str(tmp_path / "S.npy"), "--nfe", "30", "--eps", "1e-3",
                 "--out", str(tmp_path / "t.tex"), "--no-progress"]) == 0
    _, body = _parse_markdown(capsys.readouterr().out)
    # reverse SDE and PF-ODE from the white start, written out from their closed forms by hand
    lam = lambda t: np.exp(-2 * (0.05 * t + 9.95 * t * t / 2)) * (S - 1) + 1  # noqa: E731
    l_e, l_T = lam(1e-3), lam(1.0)
    B_T, B_e = 0.05 + 9.95 / 2, 0.05e-3 + 9.95e-6 / 2
    p_sde = l_e + (1 - l_T) * np.exp(-2 * (B_T - B_e)) * l_e**2 / l_T**2
    p_ode = l_e / l_T
    assert _value(body[("em", "0.001")][1]) == pytest.approx(w2_distance(p_sde, S), rel=1e-9)
    assert _value(body[("rk4", "0.001")][1]) == pytest.approx(w2_distance(p_ode, S), rel=1e-9)
    assert _value(body[("em", "0.001")][0]) == pytest.approx(w2_distance(l_e, S), rel=1e-9)


def test_sde_table_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "bad.npy", np.array([1.0, -1.0]))
    assert main(["sde-table", "--spectrum", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "t.tex")]) == 2
    # (read as every command reads --spectrum: the message names the file, as transfer's and optimize's do)
    assert f"--spectrum: spectrum in {str(tmp_path / 'bad.npy')!r} must be non-negative" in capsys.readouterr().err
    assert main(["sde-table", "--spectrum", str(tmp_path / "missing.npy")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sde-table", "--spectrum", "x.npy", "--nfe", "10,abc"])
    assert not (tmp_path / "t.tex").exists()


def test_sde_table_cli_builtin_spectrum(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    import symsched.spectra as spectra

    calls = []

    def fake(source, **kw):
        calls.append(source)
        return np.array([[0.1, 0.2], [0.3, 4.0]])

    monkeypatch.setattr(spectra, "load_spectrum", fake, raising=False)
    assert main(["sde-table", "--spectrum", "builtin:natural-patches", "--nfe", "30", "--eps", "1e-3",
                 "--out", str(tmp_path / "t.tex"), "--no-progress"]) == 0
    assert calls == ["builtin:natural-patches"] and "over 4 modes" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex installed: compile step skipped")
def test_sde_table_latex_compiles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The table compiles in a plain article with the packages its header names, and fits the page: with the
    default four sizes (12 columns) it overflowed by 395 pt (audit of 6 December); it is now shrunk to the text
    width, as the report's tables are."""
    np.save(tmp_path / "S.npy", np.array([0.0, 0.1, 2.0]))
    assert main(["sde-table", "--spectrum", str(tmp_path / "S.npy"), "--eps", "0,1e-4",
                 "--out", str(tmp_path / "table.tex"), "--no-progress"]) == 0
    tex = (tmp_path / "table.tex").read_text()
    assert tex.startswith("% Generated by `symsched sde-table`; needs \\usepackage{booktabs} and "
                          "\\usepackage{graphicx}.")
    proc = compile_body(tmp_path, "\\input{table}")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert overfull(tmp_path) == []


def _textbook_sde(S: np.ndarray, eps: float, T: float = 1.0, bmin: float = 0.05, bmax: float = 10.0) -> np.ndarray:
    """The reverse-SDE variance in its textbook order, typed in: lambda(eps) + (1 - lambda(T)) r lambda(eps)^2 /
    lambda(T)^2 with r = e^{-2(B(T) - B(eps))}, white start (what the package compiled before)."""
    B = lambda t: bmin * t + 0.5 * (bmax - bmin) * t * t  # noqa: E731
    lam = lambda t: np.exp(-2 * B(t)) * S + 1 - np.exp(-2 * B(t))  # noqa: E731
    with np.errstate(all="ignore"):
        return lam(eps) + (1 - lam(T)) * np.exp(-2 * (B(T) - B(eps))) * lam(eps) ** 2 / lam(T) ** 2


@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_continuous_sde_is_exact_for_huge_modes(eps: float) -> None:
    """For S -> inf the white-start reverse SDE gives P -> (2 - r)/r with r = e^{-2(B(T) - B(eps))} (lambda ~
    e^{-2B} S, so rho = lambda(eps)/lambda(T) -> 1/r): by hand, 2 e^{2 * 5.025} - 1 = 46310.57... at eps = 0.
    The textbook order cancels S - S and lost every digit from S ~ 1e16 (negative, then NaN, beyond)."""
    B = lambda t: 0.05 * t + 0.5 * 9.95 * t * t  # noqa: E731
    r = math.exp(-2 * (B(1.0) - B(eps)))
    limit = (2 - r) / r
    S = np.array([1e20, 1e50, 1e100, 1e200, 1e300])
    np.testing.assert_allclose(sde.continuous_output_spectrum(S, "sde", eps=eps), limit, rtol=1e-13)
    mp = sde.continuous_output_spectrum_mp(S, "sde", eps=eps)  # default dps = 50 suffices in this form
    np.testing.assert_allclose(np.array([float(x) for x in mp]), limit, rtol=1e-13)
    # the check can fail: the textbook order, evaluated in float64, is far off (or not finite) here
    old = _textbook_sde(S, eps)
    assert not np.all(np.isfinite(old)) or np.max(np.abs(old / limit - 1)) > 1e-3
    # and where the typed-in textbook order has its digits (S of order 1: its lambda(0) = S + 1 - 1 itself
    # loses digits for small S) both orders agree
    small = np.array([0.3, 1.0, 40.0])
    np.testing.assert_allclose(sde.continuous_output_spectrum(small, "sde", eps=eps), _textbook_sde(small, eps),
                               rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("scheme, kw", [("heun", dict(horizon=30.0)), ("euler", dict(horizon=100.0)),
                                        ("heun", dict(beta_max=1e4))])
def test_a_recursion_beyond_float64_is_recomputed_exactly(scheme: str, kw: dict) -> None:
    """A long horizon or a steep beta puts e^{2B} beyond float64: the float64 recursion gave NaN (inf * 0) for
    every mode, silently; the few such modes are now recomputed with mpmath (finite, as the mp path says)."""
    S = np.array([1.0, 100.0])
    P = sde.output_spectrum(S, scheme, 200, eps=1e-3, **kw)
    M = np.array([float(x) for x in sde.output_spectrum_mp(S, scheme, 200, eps=1e-3, dps=40, **kw)])
    assert np.all(np.isfinite(P)) and P[0] == pytest.approx(1.0, rel=1e-12)  # S = 1: lambda = 1 at every tau
    np.testing.assert_allclose(P, M, rtol=1e-12)


def test_a_scheme_that_truly_diverges_beyond_float64_is_an_error() -> None:
    """Euler-Maruyama over horizon 30 multiplies the variance past 1e700 (mpmath): a ValueError naming the scheme
    and its parameters, not a silent inf."""
    M = sde.output_spectrum_mp([1.0], "em", 200, eps=1e-3, horizon=30.0, dps=30)
    assert mpmath.mpf(M[0]) > mpmath.mpf("1e308")
    with pytest.raises(ValueError, match=r"^horizon: .*exceeds the float64 range for scheme 'em' .*horizon=30"):
        sde.output_spectrum([1.0, 100.0], "em", 200, eps=1e-3, horizon=30.0)


@pytest.mark.parametrize("n_points,horizon", [(10, 30.0), (5, 20.0), (10, 20.0)])
def test_a_divergent_scheme_leaks_no_warning_and_the_table_names_the_horizon(n_points, horizon, tmp_path,
                                                                             capsys) -> None:
    """break-test F4: the 'ei' domain check overflowed exp() (a RuntimeWarning, an error under -W error) before
    the ValueError, and the command line blamed --spectrum ("--spectrum: spectrum: ...") on three lines."""
    import warnings

    from symsched.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^horizon: the output variance of the mode S=0 exceeds"):
            sde.output_spectrum([0.0, 1.0], "ei", n_points, eps=1e-3, horizon=horizon)
    np.save(tmp_path / "S.npy", np.array([0.0, 1.0]))
    code = main(["sde-table", "--spectrum", str(tmp_path / "S.npy"), "--nfe", str(n_points), "--eps", "1e-3",
                 "--horizon", str(horizon), "--out", str(tmp_path / "t.tex"), "--no-progress"])
    # break-test 50: a diverging cell is inf (as the docstring says), not a refused table; its note names the horizon
    captured = capsys.readouterr()
    assert code == 0 and captured.err == "", captured.err
    note = next(line for line in captured.out.splitlines() if line.startswith("> inf: ei,"))
    assert "horizon: the output variance of the mode S=0 exceeds" in note
    assert "$\\infty$" in (tmp_path / "t.tex").read_text()


def test_exact_start_reduces_to_the_marginal_and_the_check_can_fail(monkeypatch) -> None:
    from symsched.symbolic.sde import continuous, model as m

    assert continuous.exact_start_reduces("sde") and continuous.exact_start_reduces("ode")
    continuous.exact_start_reduces.cache_clear()
    try:  # a closed form without its (1 - r) term does not reduce to lambda(eps): the check says so
        monkeypatch.setattr(continuous, "closed_form", lambda kind: m.v_init * m.lam(m.eps) ** 2 / m.lam(m.horizon) ** 2)
        assert not continuous.exact_start_reduces("sde")
    finally:
        continuous.exact_start_reduces.cache_clear()


def test_mp_path_checks_the_schemes_domain_like_the_float_path() -> None:
    """ddpm on 3 points has 1 - 2 Delta beta < 0: both paths refuse it (the mp path returned complex values)."""
    for f in (sde.output_spectrum, sde.output_spectrum_mp):
        with pytest.raises(ValueError, match="too small for scheme 'ddpm'"):
            f([1.0], "ddpm", 3, beta_max=20.0)


def test_mpmath_reference_works_tiny_inputs_at_enough_digits() -> None:
    """break-test B: with beta = 1e-300 the reference's 1 - e^{-2B} rounded to 0 at 40 digits and it returned inf
    for a finite P; it now works with the inputs' extra decades and confirms at twice the precision, and agrees
    with the float64 kernels (which never rounded it away)."""
    kw = dict(beta_min=1e-300, beta_max=1e-300, eps=1e-4, init="exact")
    ref = sde.output_spectrum_mp([0.0, 1e-300], "ddpm", 3, dps=40, **kw)
    assert all(mpmath.isfinite(v) for v in ref)
    np.testing.assert_allclose(sde.output_spectrum([0.0, 1e-300], "ddpm", 3, **kw), [float(v) for v in ref], rtol=1e-12)


def test_a_mode_too_close_to_the_pole_names_the_spectrum_and_eps() -> None:
    """break-test B: with eps = 0 a mode S = 1e-300 ends near the pole of S = 0 (P ~ 1e600): the error names the
    spectrum and eps, not the horizon (which was left at its default)."""
    with pytest.raises(ValueError, match=r"^spectrum: the output variance of the mode S=1e-300 .* eps > 0 keeps it"):
        sde.output_spectrum([1e-300, 1.0], "heun", 10, eps=0)


def test_a_tiny_eps_next_to_the_pole_is_named_not_the_horizon() -> None:
    """Audit of 5 December: Heun with eps = 1e-300 diverges for S = 0 (its last score evaluation divides by lambda(eps)
    ~ 2 beta_min eps = 1e-301), and the error said "horizon: ... a shorter horizon or a smaller beta_max reduce it",
    which cannot help; eps = 1e-3 (the companion) is finite."""
    with pytest.raises(sde.BeyondFloat64, match=r"^eps, spectrum: .* time eps = 1e-300, next to the pole of S = 0 .* "
                                                r"a larger eps keeps it finite") as exc:
        sde.output_spectrum([0.0], "heun", 100, eps=1e-300)
    assert "horizon:" not in str(exc.value) and "shorter horizon" not in str(exc.value)
    assert np.isfinite(sde.output_spectrum([0.0], "heun", 100, eps=1e-3)).all()


@pytest.mark.parametrize("beta", [1e-300, 1e-17, 1e-15])
def test_the_ei_domain_check_does_not_round_a_tiny_beta_to_zero(beta) -> None:
    """break-test C: the exponential integrator's radicand exp(2 Delta B)/2 - 1/2 rounded to 0 for tiny beta, and the
    refusal advised more grid points, which made it worse; as expm1 it is positive, and the float64 value agrees
    with the mpmath reference (worked at the inputs' decades) at every grid size."""
    for n in (2, 5, 1000):
        P = sde.output_spectrum(np.array([1.0, 1e-300]), "ei", n, beta_min=beta, beta_max=beta)
        ref = sde.output_spectrum_mp(np.array([1.0, 1e-300]), "ei", n, beta_min=beta, beta_max=beta)
        np.testing.assert_allclose(P, [float(v) for v in ref], rtol=1e-12)


def _continuous_mp(S: float, kind: str, init: str, bmin: float, bmax: float, T: float, eps: float) -> float:
    """The exact solutions typed in from their closed forms, at 60 digits: B(t) = bmin t + (bmax - bmin) t^2 / 2,
    lambda = e^{-2B} S + 1 - e^{-2B}; ODE P = v lambda(eps)/lambda(T); SDE P = lambda(eps) + (v - lambda(T))
    e^{-2(B(T) - B(eps))} lambda(eps)^2 / lambda(T)^2 (v = 1 white, lambda(T) exact)."""
    with mpmath.workdps(60):
        b0, b1, T_, e_, s = (mpmath.mpf(x) for x in (bmin, bmax, T, eps, S))
        B = lambda t: b0 * t + (b1 - b0) * t * t / 2  # noqa: E731
        lam = lambda t: mpmath.exp(-2 * B(t)) * s + 1 - mpmath.exp(-2 * B(t))  # noqa: E731
        v = mpmath.mpf(1) if init == "white" else lam(T_)
        if kind == "ode":
            return float(v * lam(e_) / lam(T_))
        return float(lam(e_) + (v - lam(T_)) * mpmath.exp(-2 * (B(T_) - B(e_))) * lam(e_) ** 2 / lam(T_) ** 2)


@pytest.mark.parametrize("bmin, bmax, T, eps", [
    (1e308, 1e308, 1.0, 0.0),  # 2 beta_min overflowed: -0 * inf = NaN at eps = 0
    (1e308, 1e308, 6.0, 0.0),  # T beta_max - T beta_min = inf - inf
    (1e300, 1e300, 1e10, 0.0),
    (1.0, 1.0, 1e300, 0.0),  # 2 + T beta_max - T beta_min cancelled to 0: lambda(T) = S, P = 1 instead of S
    (1e308, 1.5e308, 1.0, 1e-310),
    (0.05, 10.0, 1.0, 1e-3),
])
@pytest.mark.parametrize("kind", ["sde", "ode"])
def test_continuous_solutions_at_extreme_beta_and_horizon_agree_with_mpmath(bmin, bmax, T, eps, kind) -> None:
    """Audit fault 1: the beta-integral exponents overflowed (or cancelled) in float64 and the exact solutions came
    back NaN (beta = 1e308) or wrong (horizon 1e300); the mpmath closed forms typed in above are finite."""
    S = [0.0, 1e-3, 0.5, 2.0, 1e6]
    for init in ("white", "exact"):
        P = sde.continuous_output_spectrum(S, kind, beta_min=bmin, beta_max=bmax, horizon=T, eps=eps, init=init)
        ref = [_continuous_mp(s, kind, init, bmin, bmax, T, eps) for s in S]
        np.testing.assert_allclose(P, ref, rtol=1e-12, atol=1e-300, err_msg=f"{kind} {init}")


def test_sde_table_continuous_columns_at_beta_1e308(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Audit fault 1 on the command line: every "continuous" cell was inf (from the NaN); with beta = 1e308 both
    exact solutions return the data variances at eps = 0, so W2 = 0."""
    np.save(tmp_path / "S.npy", np.array([0.5, 2.0]))
    assert main(["sde-table", "--spectrum", str(tmp_path / "S.npy"), "--nfe", "5", "--eps", "0", "--beta-min", "1e308",
                 "--beta-max", "1e308", "--out", str(tmp_path / "t.tex"), "--no-progress"]) == 0
    _, body = _parse_markdown(capsys.readouterr().out)
    for scheme in sde.SCHEMES:
        assert [_value(c) for c in body[(scheme, "0")][:2]] == [0.0, 0.0], scheme


def test_error_table_bounds_its_lists_and_checks_progress() -> None:
    """Audit faults 5 and 6: 100,000 eps values (or 1,001 sizes of 9,000+ points) ran until killed, and progress=1
    failed late with "'int' object is not callable"; both are refused up front, by name."""
    from symsched._validate import MAX_ENTRIES, ArgumentTypeError

    with pytest.raises(ValueError, match=rf"^eps_values must hold at most {MAX_ENTRIES} values .*MAX_ENTRIES"):
        sde.error_table([1.0], sizes=[5], eps_values=np.linspace(0, 0.5, MAX_ENTRIES + 1), schemes=["euler"])
    with pytest.raises(ValueError, match=rf"^sizes must hold at most {MAX_ENTRIES} values"):
        sde.error_table([1.0], sizes=list(range(2, 3 + MAX_ENTRIES)), schemes=["euler"])
    with pytest.raises(ArgumentTypeError, match=r"^progress must be None or a callable"):
        sde.error_table([1.0], sizes=[5], eps_values=[0.0], progress=1)
    table = sde.error_table([1.0], sizes=list(range(2, 2 + MAX_ENTRIES)), eps_values=[1e-3], schemes=["euler"])
    assert len(table.sizes) == MAX_ENTRIES  # the limit itself is accepted


def test_sde_table_refuses_too_many_sizes_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Audit fault 5: --nfe 9000,...,10000 ran until killed; it is an argparse error (exit 2) naming --nfe, before
    any input is read (the spectrum named here does not exist: the old code stopped there, with another message)."""
    with pytest.raises(SystemExit) as exc:
        main(["sde-table", "--spectrum", str(tmp_path / "missing.npy"), "--nfe", ",".join(map(str, range(9000, 10001))),
              "--out", str(tmp_path / "t.tex")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --nfe: the list must hold at most 100 values" in err and "MAX_ENTRIES" in err


def _reference_mp(S, scheme, N, *, beta_min, beta_max, horizon=1.0, eps=0.0, dps=800):
    """EM / DDPM / EI typed in from the issue (as :func:`reference`), in mpmath at ``dps`` digits: exact enough for
    beta or horizon down to 1e-300, where 1 - e^{-2B} needs hundreds of digits and the gains cancel to 1e-300 more."""
    with mpmath.workdps(dps):
        S, T, b0, b1, e = (mpmath.mpf(x) for x in (S, horizon, beta_min, beta_max, eps))
        beta = lambda t: b0 + (b1 - b0) * t  # noqa: E731
        B = lambda t: b0 * t + (b1 - b0) * t * t / 2  # noqa: E731
        lam = lambda t: mpmath.exp(-2 * B(t)) * S + 1 - mpmath.exp(-2 * B(t))  # noqa: E731
        t = [(T - e) * k / (N - 1) for k in range(N)]
        tau = [T - tk for tk in t]
        D = t[1] - t[0]
        v = mpmath.mpf(1)
        for k in range(N - 1):
            a, c = tau[k], tau[k + 1]
            if scheme == "em":
                g, n = 1 + D * beta(a) * (1 - 2 / lam(a)), 2 * D * beta(a)
            elif scheme == "ddpm":
                b = 2 * D * beta(a)
                g, n = (1 - b / lam(a)) / mpmath.sqrt(1 - b), b
            else:  # ei
                g1 = mpmath.exp(B(a) - B(c)) - 1
                g, n = 1 + g1 * (1 - 2 / lam(a)), mpmath.exp(2 * (B(a) - B(c))) - 1
            v = g * g * v + n
        return float(v)


@pytest.mark.parametrize("scheme", ["em", "ddpm", "ei"])
@pytest.mark.parametrize("kw", [dict(beta_min=1e-40, beta_max=1e-40), dict(beta_min=1e-100, beta_max=1e-100),
                                dict(beta_min=1e-18, beta_max=1e-18), dict(horizon=1e-300),
                                dict(beta_min=1e-30, beta_max=1e-25, eps=1e-3)])
def test_faint_steps_keep_faint_modes_exact(scheme, kw) -> None:
    """Audit of 5 December: EM's and DDPM's gain 1 + D b - 2 D b / lambda cancels where lambda ~ 2 D b (modes S below a
    few D b); its float64 rounding (~1e-32 in g^2) outweighed P ~ 2 D b once D b was tiny: beta = 1e-40 gave 2.2e-33
    for 2.0e-42 at S = 0, and output_spectrum_mp returned inf for horizon = 1e-300 (its digits ignored the horizon).
    Both now agree with the recursion typed in here at 800 digits."""
    N = 100
    S = np.array([0.0, 1e-45, 1e-30, 1e-14, 1e-9, 0.5])
    expected = np.array([_reference_mp(s, scheme, N, **{"beta_min": 0.05, "beta_max": 10.0, **kw}) for s in S])
    np.testing.assert_allclose(sde.output_spectrum(S, scheme, N, **kw), expected, rtol=1e-12, atol=0)
    mp = sde.output_spectrum_mp(S[:3], scheme, N, dps=20, **kw)
    np.testing.assert_allclose([float(x) for x in mp], expected[:3], rtol=1e-15, atol=0)


def test_too_many_faint_modes_are_refused_not_wrong() -> None:
    """The exact recomputation of faint-step modes is bounded (EXACT_FALLBACK_MODES); beyond it, a ValueError naming
    beta_max and horizon instead of float64's rounding."""
    S = np.geomspace(1e-60, 1e-45, 40)
    with pytest.raises(ValueError, match=r"^beta_max, horizon: every step of scheme 'em'.*40 distinct such modes"):
        sde.output_spectrum(S, "em", 100, beta_min=1e-40, beta_max=1e-40)


@pytest.mark.parametrize("kind", ["ode", "sde"])
@pytest.mark.parametrize("kw", [dict(horizon=1e-60), dict(beta_min=1e-60, beta_max=1e-60)])
def test_continuous_mp_survives_tiny_exponents(kind, kw) -> None:
    """Audit of 5 December: continuous_output_spectrum_mp raised a bare ZeroDivisionError for horizon = 1e-60 (lambda(T)
    = 1 - e^{-2B(T)} cancelled to 0 at 50 digits for S = 0.25). Expected: the closed forms of the docstring, at 300
    digits here. (The tiny exponent leaves P = S/lambda(T) for the ODE and lambda(0) + ... for the SDE.)"""
    S = [0.0, 0.25, 3.0]
    p = {"beta_min": 0.05, "beta_max": 10.0, "horizon": 1.0, **kw}
    with mpmath.workdps(300):
        b0, b1, T = (mpmath.mpf(p[k]) for k in ("beta_min", "beta_max", "horizon"))
        E = mpmath.exp(-2 * (b0 * T + (b1 - b0) * T * T / 2))
        expected = []
        for s in map(mpmath.mpf, S):
            lT, l0 = E * s + 1 - E, s  # lambda(T), lambda(eps = 0) = S
            expected.append(float(l0 / lT if kind == "ode" else l0 + (1 - lT) * E * l0**2 / lT**2))
    got = sde.continuous_output_spectrum_mp(S, kind, **kw)
    np.testing.assert_allclose([float(x) for x in got], expected, rtol=1e-15, atol=0)
    np.testing.assert_allclose(sde.continuous_output_spectrum(S, kind, **kw), expected, rtol=1e-12, atol=0)


def test_a_diverging_mode_is_settled_by_two_mpmath_runs(monkeypatch) -> None:
    """Audit of 5 December: with beta_max = 1e308 the float64 fallback confirmed a diverging mode's digits
    (e^(1e306)) by doubling the precision to MAX_DPS, five runs of ~3 s each per call, and `symsched sde-table
    --beta-max 1e308` ran for over 25 minutes. Two runs that both lie beyond float64 settle it (counted here, not
    timed); the public output_spectrum_mp still confirms to its digits (the companion: a finite value)."""
    import symsched.sde as sde_mod

    runs = []
    real = sde_mod._sde_mp_run
    monkeypatch.setattr(sde_mod, "_sde_mp_run", lambda *a: runs.append(a[-1]) or real(*a))
    # (audit 3b B1: led by beta_max, the argument set above its default; it read "horizon:")
    with pytest.raises(sde.BeyondFloat64, match="^beta_max: the output variance of the mode S=0 exceeds"):
        sde.output_spectrum([0.0], "ei", 250, beta_max=1e308, eps=1e-5)
    assert len(runs) == 2 and runs[1] == 2 * runs[0]
    runs.clear()
    P = sde.output_spectrum_mp([0.5], "ei", 20, dps=30)
    assert len(runs) >= 2 and float(P[0]) == pytest.approx(sde.output_spectrum([0.5], "ei", 20)[0], rel=1e-12)


def test_ordinary_small_steps_are_not_recomputed(monkeypatch) -> None:
    """Review of 5 December: the faint-step recomputation fired at Delta beta = 6e-9 (horizon 1e-3, N = 10000: 39 s
    instead of 0.5 s for the same values) and refused 61 faint modes at horizon 1e-6. Below FAINT_STEP = 1e-14 only,
    and only for EM, DDPM and EI; there float64 agrees with mpmath (computed here) to 1e-10."""
    import symsched.sde as sde_mod

    calls = []
    monkeypatch.setattr(sde_mod, "_scheme_mp", lambda *a, **k: calls.append(a) or pytest.fail("recomputed"))
    S = np.geomspace(1e-12, 1e-8, 61)
    for scheme in ("em", "ei", "heun"):
        P = sde.output_spectrum(S, scheme, 1000, horizon=1e-6, eps=1e-9 if scheme == "heun" else 0.0)
        assert np.all(np.isfinite(P))
    monkeypatch.undo()
    ref = sde.output_spectrum_mp(S[::20], "em", 1000, horizon=1e-6, dps=20)
    np.testing.assert_allclose(sde.output_spectrum(S[::20], "em", 1000, horizon=1e-6), [float(x) for x in ref],
                               rtol=1e-10, atol=0)
    assert calls == []


def test_latex_caption_says_the_beta_schedule_horizon_grids_and_why_a_cell_is_empty() -> None:
    """Audit of 5 December: the LaTeX caption of a table run with --beta-max 20 --horizon 2 --count nfe read like the
    default table's (no beta(t), no horizon, no grid points per scheme), and cells of n/a or infinity had no
    explanation, all of which the Markdown notes gave. The caption now says them."""
    table = sde.error_table([0.0, 0.5, 2.0], (7,), (0.0,), count="nfe", beta_max=20.0, horizon=2.0)
    tex = table.to_latex()
    caption = next(line for line in tex.splitlines() if line.startswith("\\caption{"))
    assert "$\\beta(t) = 0.05 + (20 - 0.05)\\,t$ on $[0, 2]$" in caption
    # NFE 7: one evaluation per step gives 8 points; Heun (2 per step) fits 3 steps = 6 NFE on 4 points; RK4 1 step
    assert "NFE $7$: EM 8, EI 8, DDPM 8, Euler 8, Heun 4 (NFE $6$), RK4 2 (NFE $4$)" in caption
    assert "$S = 0$ diverge" in caption  # heun/rk4 at eps = 0 on a zero mode: infinity, explained
    assert "n/a: the scheme is undefined on that grid" in caption  # DDPM with 2 Delta beta >= 1 on this grid


def test_sde_table_reads_spectrum_as_every_command_reads_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Review of 5 December: the README says --spectrum is read as every command reads it (also a folder of images),
    but `sde-table --spectrum photos/` said "a .npy file is expected here". A folder's table now equals the table of
    the spectrum load_spectrum estimates from it, saved as .npy; an unknown built-in offers what it reads."""
    from PIL import Image

    from symsched.spectra import load_spectrum

    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"{k}.png")
    np.save(tmp_path / "S.npy", load_spectrum(tmp_path / "photos"))
    tables = []
    for source in ("photos", "S.npy"):
        argv = ["sde-table", "--spectrum", str(tmp_path / source), "--nfe", "10", "--eps", "0", "--no-progress",
                "--out", str(tmp_path / f"{source}.tex")]
        assert main(argv) == 0, capsys.readouterr().err
        tables.append(capsys.readouterr().out.replace(str(tmp_path / f"{source}.tex"), "OUT"))
    assert tables[0] == tables[1] and "| em |" in tables[0].lower().replace("**", ""), tables[0]
    assert main(["sde-table", "--spectrum", "builtin:foo", "--out", str(tmp_path / "t.tex"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("names no built-in spectrum: must be one of 'builtin:natural-patches', a .npy file or a "
                        "folder of images") and err.startswith("symsched sde-table: error: --spectrum"), err


@pytest.mark.parametrize("n_points,eps", [(1000, 1 - 1e-15), (10000, 1 - 1e-12), (3, 1 - 2**-53)])
def test_a_grid_float64_cannot_keep_apart_is_refused_naming_eps(n_points, eps) -> None:
    """Audit of 5 December: with eps within a few ulps of the horizon, neighbouring grid times rounded to one value;
    the exponential integrator's noise (e^{2 dB} - 1)/2 was then 0 and the error blamed n_points as too small
    (more points made it worse), and reverse_grid returned a grid that was not strictly decreasing."""
    t = (1.0 - eps) / (n_points - 1)
    assert t < 2.0 ** -52 * 1.0  # (the step is below the float64 spacing near tau = 1: the times cannot all differ)
    for call in (lambda: sde.reverse_grid(n_points, eps=eps), lambda: sde.output_spectrum([0.5, 2.0], "ei", n_points,
                                                                                         eps=eps)):
        with pytest.raises(ValueError, match=r"^eps=.*too small for float64 to keep the grid times apart"):
            call()
    tau, _ = sde.reverse_grid(1000, eps=1 - 1e-12)  # (a step of 1e-15: every time distinct, strictly decreasing)
    assert np.all(np.diff(tau) < 0)


def test_validate_does_not_suggest_a_basis_option_it_lacks(tmp_path, capsys) -> None:
    """Audit of 5 December: validate's refusal of a 1-D non-Hermitian spectrum said "pass basis=", which is an
    argument of the API, not an option of the command."""
    from symsched.cli import main

    np.save(tmp_path / "S.npy", np.arange(8.0))
    assert main(["validate", "--spectrum", str(tmp_path / "S.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Hermitian" in err and "basis=" not in err and "stationary fields" in err


@pytest.mark.parametrize("kind", ["sde", "ode"])
def test_the_exact_start_gives_the_marginal_itself(kind) -> None:
    """New-user audit of 5 December: sde-table's "continuous exact" W2 at eps = 0 read 5.8e-15 for the reverse-SDE rows
    (0 for the ODE rows): the unreduced closed form rounds. From the exact start both kinds give lambda(eps) (proved in
    test_exact_start_reduces_to_the_marginal_and_the_check_can_fail), which the kernel now evaluates: P = S at eps = 0,
    and lambda(eps) = S e^{-2B} + 1 - e^{-2B}, written here, at eps > 0."""
    from mpmath import mp, mpf

    from symsched.spectra import power_law

    S = np.concatenate([[0.0, 1e-300, 1e-12], power_law((16, 16), alpha=2.0).ravel(), [1e12, 1e300]])
    P0 = sde.continuous_output_spectrum(S, kind, init="exact", eps=0.0, beta_min=0.1, beta_max=20.0)
    np.testing.assert_array_equal(P0, S)  # exactly, every mode
    tab = sde.error_table(S[3:-2], [10], [0.0], beta_min=0.1, beta_max=20.0)
    assert tab.continuous[(kind, 0.0, "exact")] == 0.0
    with mp.workdps(40):
        e = mpf("1e-3")
        B = mpf("0.1") * e + (mpf(20) - mpf("0.1")) * e**2 / 2  # int_0^eps beta, beta(t) = beta_min + (max - min) t
        want = [float(mpf(float(s)) * mp.exp(-2 * B) + 1 - mp.exp(-2 * B)) for s in S]
    P = sde.continuous_output_spectrum(S, kind, init="exact", eps=1e-3, beta_min=0.1, beta_max=20.0)
    np.testing.assert_allclose(P, want, rtol=1e-14, atol=0)


@pytest.mark.parametrize("S, scheme, N, kw, name", [
    ([4.0, 1.0, 0.25, 0.01], "em", 10, dict(beta_max=1e300), "beta_max"),
    ([4.0, 1.0, 0.25, 0.01], "ei", 10, dict(beta_max=1e4), "beta_max"),
    ([1.0, 100.0], "em", 200, dict(horizon=30.0, eps=1e-3), "horizon"),
    ([1.0, 100.0], "em", 200, dict(beta_max=1e4, horizon=3.0, eps=1e-3), "beta_max, horizon")])
def test_a_divergence_beyond_float64_names_the_argument_at_fault(S, scheme, N, kw, name) -> None:
    """Audit 3b B1: beta_max=1e300 (or 1e4 for 'ei') was blamed on the horizon, left at its default; the message
    is led by the arguments set above their default, as the other beyond-float64 refusal (one helper)."""
    with pytest.raises(sde.BeyondFloat64, match=rf"^{name}: the output variance of the mode"):
        sde.output_spectrum(S, scheme, N, **kw)


def test_n_points_for_nfe_refuses_a_grid_beyond_max_steps() -> None:
    """Audit 3b D3: n_points_for_nfe('em', 10**12) returned 10**12 + 1, a grid nfe, reverse_grid and the spectra
    refuse; the limit is now its own, and the largest budget under it still works."""
    from symsched._validate import MAX_STEPS

    with pytest.raises(ValueError, match=rf"^n_evals=1000000000000 buys 1000000000001 grid points .*MAX_STEPS = "
                                         rf"{MAX_STEPS}"):
        sde.n_points_for_nfe("em", 10**12)
    for scheme in sde.SCHEMES:
        top = (MAX_STEPS - 1) * sde.EVALS_PER_STEP[scheme]
        assert sde.n_points_for_nfe(scheme, top) == MAX_STEPS
        assert sde.nfe(scheme, sde.n_points_for_nfe(scheme, top)) == top
        with pytest.raises(ValueError, match=r"MAX_STEPS"):
            sde.n_points_for_nfe(scheme, top + sde.EVALS_PER_STEP[scheme])


def test_a_tiny_end_rate_is_a_rate_not_a_cancellation() -> None:
    """New-user pass of 6 December: beta_max = 1e-40 (horizon 1) was refused as "beta(horizon) = 0", float64's
    beta_min + (beta_max - beta_min) * 1 cancelling; the rate is positive. Checked exactly now: the exponential
    integrator runs it (as mpmath, to 1e-12), and EM, whose update needs beta(tau) > 0 in float64, says why it cannot
    (not "use more grid points"); a rate that is zero or negative in exact arithmetic is still refused."""
    S = [0.0, 1e-3, 1.0]
    P = sde.output_spectrum(S, "ei", 50, beta_max=1e-40)
    ref = sde.output_spectrum_mp(S, "ei", 50, beta_max=1e-40, dps=30)
    np.testing.assert_allclose(P, [float(r) for r in ref], rtol=1e-12)
    with pytest.raises(ValueError, match=r"^beta_min, beta_max: scheme 'em' needs beta\(tau\) > 0 at every step, and "
                                         r"beta\(tau=1\) = 1e-40 is positive but rounds to 0 in float64"):
        sde.output_spectrum(S, "em", 50, beta_max=1e-40)
    for bad, shown in ((0.0, "0"), (-1e-40, "-1e-40")):
        with pytest.raises(ValueError, match=rf"must be positive on \[0, horizon\] .*beta\(horizon\) = {shown}\)"):
            sde.output_spectrum(S, "ei", 50, beta_max=bad)
