"""Monte Carlo witness for the continuous-time schemes of issue #5.

Every scheme is run in signal space, literally: ``y`` of shape (n_samples, n_modes) holds independent
samples of each mode, the update equations of the issue are applied to it as written, with the
Wiener-filter score ``-y / lambda(tau)`` and fresh standard normal draws ``z``. Nothing here calls the
closed forms except to obtain the value under test.

Tolerance from the sampling distribution
----------------------------------------
The samples of one mode are i.i.d. N(0, sigma^2) (a linear map of Gaussians), so with the sample
variance ``s^2`` (ddof = 1), ``q = (n - 1) s^2 / sigma^2 ~ chi2_{n-1}`` exactly. A check of ``m``
(mode, start) pairs accepts when every ``q`` lies in ``[chi2.ppf(a/2), chi2.isf(a/2)]`` with
``a = FAP / m`` (Bonferroni), so a correct closed form fails a test function with probability at most
``FAP = 1e-6``. Seeds are fixed, so every run is the same. Power companions show that the same check
rejects a wrong formula by a wide margin (``|z| >= 2 z_crit`` after the probability-integral transform).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from symsched import sde

FAP = 1e-6
SPEC = np.array([0.0, 1e-3, 0.05, 0.5, 1.0, 3.0, 40.0])
N_SAMPLES = 40_000
# scheme runs: a short horizon makes the white and exact starts differ visibly
RUN = dict(beta_min=0.05, beta_max=10.0, horizon=0.6, eps=1e-3)
N_POINTS = 25


# ----------------------------------------------------------------------------------------------
# the model and the update equations, typed in from the issue
# ----------------------------------------------------------------------------------------------
def _model(beta_min: float, beta_max: float):
    def beta(t):
        return beta_min + (beta_max - beta_min) * t

    def B(t):
        return beta_min * t + (beta_max - beta_min) * t * t / 2

    def lam(t):
        E = np.exp(-2 * B(t))
        return E * SPEC + 1 - E

    return beta, B, lam


def simulate(scheme: str, init: str, *, n_points: int, rng: np.random.Generator, n: int = N_SAMPLES,
             beta_min: float, beta_max: float, horizon: float, eps: float, wrong: str = "") -> np.ndarray:
    """Samples after the last step, shape (n, len(SPEC)); ``wrong`` selects a deliberately wrong update."""
    beta, B, lam = _model(beta_min, beta_max)

    def score(y, t):  # Wiener-filter score of N(0, lambda(t))
        return -y / lam(t)

    def f(y, t):  # PF-ODE drift (reverse time)
        return beta(t) * (y + score(y, t))

    t = [(horizon - eps) * k / (n_points - 1) for k in range(n_points)]
    tau = [horizon - tk for tk in t]
    D = t[1] - t[0]
    v0 = np.ones_like(SPEC) if init == "white" else lam(horizon)
    y = np.sqrt(v0) * rng.standard_normal((n, SPEC.size))
    for k in range(n_points - 1):
        a, c = tau[k], tau[k + 1]
        if scheme in ("em", "ei", "ddpm"):
            z = rng.standard_normal(y.shape)
        if scheme == "em":
            noise = np.sqrt(D * beta(a)) if wrong == "half-noise" else np.sqrt(2 * D * beta(a))
            y = y + D * beta(a) * (y - 2 * y / lam(a)) + noise * z
        elif scheme == "ei":
            g1 = np.exp(B(a) - B(c)) - 1
            g2 = (np.exp(2 * (B(a) - B(c))) - 1) / 2
            y = y + g1 * (y - 2 * y / lam(a)) + np.sqrt(2 * g2) * z
        elif scheme == "ddpm":
            b = 2 * D * beta(a)
            y = (y - b * y / lam(a)) / np.sqrt(1 - b) + np.sqrt(b) * z
        elif scheme == "euler":
            y = y + D * f(y, a)
        elif scheme == "heun":
            d1 = f(y, a)
            y_pred = y + D * d1
            y = y + D * (d1 + f(y_pred, c)) / 2
        elif scheme == "rk4":
            m = a - D / 2
            k1 = f(y, a)
            k2 = f(y + D * k1 / 2, m)
            k3 = f(y + D * k2 / 2, m)
            k4 = f(y + D * k3, c)
            y = y + D * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        else:  # pragma: no cover
            raise ValueError(scheme)
    return y


# ----------------------------------------------------------------------------------------------
# the chi^2 check
# ----------------------------------------------------------------------------------------------
def z_scores(y: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """Standard normal scores of q = (n-1) s^2 / sigma^2 under chi2_{n-1} (probability-integral transform)."""
    n = y.shape[0]
    q = (n - 1) * y.var(axis=0, ddof=1) / sigma2
    lower = stats.chi2.logcdf(q, n - 1)
    upper = stats.chi2.logsf(q, n - 1)
    # z = Phi^-1(cdf), computed from the smaller tail for precision
    return np.where(lower < upper, special.ndtri(np.exp(lower)), -special.ndtri(np.exp(upper)))


def z_crit(alpha: float) -> float:
    """Two-sided critical value: |z| > z_crit has probability alpha under the chi^2 law."""
    return float(-special.ndtri(alpha / 2))


def assert_variances_match(runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], what: str) -> None:
    """Every (samples, sigma^2, relative bias bound b) passes; b widens the acceptance region exactly.

    With a known bound b on |sigma_true^2 / sigma^2 - 1| the statistic q lies in
    [chi2.ppf(a/2) (1 - b), chi2.isf(a/2) (1 + b)] with probability >= 1 - a.
    """
    m = sum(s.size for _, s, _ in runs)
    alpha = FAP / m
    for y, sigma2, b in runs:
        n = y.shape[0]
        q = (n - 1) * y.var(axis=0, ddof=1) / sigma2
        lo = stats.chi2.ppf(alpha / 2, n - 1) * (1 - b)
        hi = stats.chi2.isf(alpha / 2, n - 1) * (1 + b)
        bad = (q < lo) | (q > hi)
        assert not bad.any(), (
            f"{what}: q = {q[bad]} outside [{lo[bad] if np.ndim(lo) else lo}, {hi[bad] if np.ndim(hi) else hi}] "
            f"for S = {SPEC[bad]} (sample var {y.var(axis=0, ddof=1)[bad]}, closed form {sigma2[bad]})"
        )


def assert_rejected(y: np.ndarray, sigma2_wrong: np.ndarray, n_checks: int, what: str) -> None:
    z = z_scores(y, sigma2_wrong)
    zc = z_crit(FAP / n_checks)
    assert np.max(np.abs(z)) >= 2 * zc, f"{what}: wrong formula not rejected clearly (max|z| = {np.max(np.abs(z)):.2f}, z_crit = {zc:.2f})"


# ----------------------------------------------------------------------------------------------
# every scheme
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", sde.SCHEMES)
def test_scheme_matches_its_closed_form(scheme: str) -> None:
    rng = np.random.default_rng(20_250_500 + sde.SCHEMES.index(scheme))
    runs = []
    for init in sde.INITS:
        y = simulate(scheme, init, n_points=N_POINTS, rng=rng, **RUN)
        P = sde.output_spectrum(SPEC, scheme, N_POINTS, init=init, **RUN)
        runs.append((y, P, np.zeros_like(P)))
    assert_variances_match(runs, scheme)


def test_power_em_with_half_the_noise_is_rejected() -> None:
    rng = np.random.default_rng(11)
    y = simulate("em", "white", n_points=N_POINTS, rng=rng, wrong="half-noise", **RUN)
    assert_rejected(y, sde.output_spectrum(SPEC, "em", N_POINTS, **RUN), SPEC.size, "em with sqrt(Delta beta) noise")


@pytest.mark.parametrize("simulated,claimed", [("ei", "em"), ("heun", "euler"), ("rk4", "heun"), ("ddpm", "em")])
def test_power_another_schemes_closed_form_is_rejected(simulated: str, claimed: str) -> None:
    rng = np.random.default_rng(12)
    y = simulate(simulated, "white", n_points=N_POINTS, rng=rng, **RUN)
    assert_rejected(y, sde.output_spectrum(SPEC, claimed, N_POINTS, **RUN), SPEC.size, f"{simulated} vs {claimed}")


# ----------------------------------------------------------------------------------------------
# the exact continuous solutions
# ----------------------------------------------------------------------------------------------
CONT = dict(beta_min=0.05, beta_max=10.0, horizon=0.3, eps=0.1)
FINE = {"sde": ("em", 1001), "ode": ("rk4", 101)}


def _fine_run(kind: str, init: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of a fine-grid simulation, the closed form, and the bias bound b of the fine grid.

    b = |P_N / P - 1| per mode, with P_N the exact output variance of the fine-grid scheme (checked
    against the issue's definitions in test_sde.py and against simulation above) and P the closed form.
    """
    scheme, n_points = FINE[kind]
    y = simulate(scheme, init, n_points=n_points, rng=rng, n=20_000, **CONT)
    P = sde.continuous_output_spectrum(SPEC, kind, init=init, **CONT)
    P_fine = sde.output_spectrum(SPEC, scheme, n_points, init=init, **CONT)
    b = np.abs(P_fine / P - 1)
    assert np.all(b < 5e-3), f"fine grid too coarse for {kind}: bias {b.max():.2e}"
    return y, P, b


@pytest.mark.parametrize("kind", sde.KINDS)
def test_continuous_solution_matches_a_fine_grid_simulation(kind: str) -> None:
    rng = np.random.default_rng(31 + sde.KINDS.index(kind))
    runs = [_fine_run(kind, init, rng) for init in sde.INITS]
    assert_variances_match(runs, f"continuous {kind}")
    # power: the other equation's closed form is rejected (white start, short horizon)
    other = "ode" if kind == "sde" else "sde"
    y_white = runs[0][0]
    assert_rejected(y_white, sde.continuous_output_spectrum(SPEC, other, init="white", **CONT), SPEC.size,
                    f"{kind} simulation vs {other} closed form")
