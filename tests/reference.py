"""Independent reference values: each sampler's update equation typed in from docs/model.md §2-5 and the papers.

Nothing here imports symsched. With the exact (Wiener) denoiser every step is, per mode,
``x_s = g x_t + sqrt(n) z``, so the variance obeys ``v_s = g^2 v_t + n``; the functions below apply
the papers' update equations to that scalar map in plain float64 and are the expected values of
tests that must not take them from the code under test:

* DDIM(eta) (Song et al. 2021, eq. 12): ``x_s = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - s2) eps_hat + sqrt(s2) z``
  with ``s2 = eta^2 (1 - ab_s)/(1 - ab_t) (1 - ab_t/ab_s)``;
* DDPM (Ho et al. 2020, Alg. 2, on a sub-grid): mean ``(x_t - beta/sqrt(1 - ab_t) eps_hat)/sqrt(1 - beta)``,
  ``beta = 1 - ab_t/ab_s``, variance ``(1 - ab_s)/(1 - ab_t) beta`` ("posterior") or ``beta``; none on
  the final step;
* VE Euler (= VE DDIM) and EDM Heun (Karras et al. 2022, Alg. 1; plain Euler on the step to 0).

Levels are kept away from 0 and 1 by the callers; these are textbook formulas, not stable ones.
"""

from __future__ import annotations

import numpy as np


def vp_marginal(S, ab):
    """lambda = ab S + 1 - ab: variance of sqrt(ab) x0 + sqrt(1 - ab) eps."""
    return ab * S + 1.0 - ab


def wiener_vp(S, ab):
    """(c_x0, c_eps): x0_hat = c_x0 x_t, eps_hat = c_eps x_t (docs/model.md §3)."""
    lam = vp_marginal(S, ab)
    return np.sqrt(ab) * S / lam, np.sqrt(1.0 - ab) / lam


def ddim_step(S, a_t, a_s, eta):
    c_x0, c_eps = wiener_vp(S, a_t)
    s2 = eta**2 * (1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s)
    return np.sqrt(a_s) * c_x0 + np.sqrt(1.0 - a_s - s2) * c_eps, s2


def ddpm_step(S, a_t, a_s, variance, final):
    _, c_eps = wiener_vp(S, a_t)
    beta = 1.0 - a_t / a_s
    gain = (1.0 - beta / np.sqrt(1.0 - a_t) * c_eps) / np.sqrt(1.0 - beta)
    if final:
        return gain, 0.0
    return gain, ((1.0 - a_s) / (1.0 - a_t) * beta if variance == "posterior" else beta)


def vp_output(S, alpha_bar, *, sampler="ddim", eta=0.0, variance="posterior", init="white"):
    """(H, P) of a VP sampler on levels ``alpha_bar`` (noisiest first) plus the final step to 1."""
    S = np.asarray(S, dtype=np.float64)
    levels = [float(a) for a in alpha_bar] + [1.0]
    v = np.ones_like(S) if init == "white" else vp_marginal(S, levels[0])
    H = np.ones_like(S)
    for k in range(len(levels) - 1):
        a_t, a_s = levels[k], levels[k + 1]
        if sampler == "ddim":
            g, n = ddim_step(S, a_t, a_s, eta)
        else:
            g, n = ddpm_step(S, a_t, a_s, variance, final=(k == len(levels) - 2))
        v = g * g * v + n
        H = H * g
    return H, v


def ve_denoise_gain(S, sigma):
    return S / (S + sigma**2)


def euler_gain(S, s_t, s_s):
    """x_s = D + (s_s/s_t)(x_t - D), D = S/(S + s_t^2) x_t."""
    d = ve_denoise_gain(S, s_t)
    return d + s_s / s_t * (1.0 - d)


def heun_gain(S, s_t, s_s):
    """EDM Heun: slope d = (x - D(x; sigma))/sigma, Euler predictor, trapezoid of the two slopes."""
    d_t = (1.0 - ve_denoise_gain(S, s_t)) / s_t
    x_pred = 1.0 + (s_s - s_t) * d_t
    d_s = (1.0 - ve_denoise_gain(S, s_s)) / s_s * x_pred
    return 1.0 + (s_s - s_t) * (d_t + d_s) / 2.0


def ve_output(S, sigmas, *, sampler="euler", init="white"):
    """(H, P) of a VE sampler on ``sigmas`` (noisiest first) plus the final (Euler) step to sigma = 0."""
    S = np.asarray(S, dtype=np.float64)
    sig = [float(s) for s in sigmas]
    v = np.full_like(S, sig[0] ** 2) if init == "white" else S + sig[0] ** 2
    H = np.ones_like(S)
    step = heun_gain if sampler == "heun" else euler_gain
    for s_t, s_s in zip(sig[:-1], sig[1:]):
        g = step(S, s_t, s_s)
        v, H = g * g * v, H * g
    g = ve_denoise_gain(S, sig[-1])  # Euler to 0: x_0 = D(x; sigma_1)
    return H * g, g * g * v


def kl(p, q):
    """KL(N(0, p) || N(0, q)) summed over modes: 1/2 sum (p/q - 1 - log(p/q)) (docs/model.md §6)."""
    r = np.asarray(p, dtype=np.float64) / np.asarray(q, dtype=np.float64)
    return 0.5 * float(np.sum(r - 1.0 - np.log(r)))


def w2(p, q):
    """W2 between N(0, diag p) and N(0, diag q): sqrt(sum (sqrt p - sqrt q)^2) (docs/model.md §6)."""
    return float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def vp_sde_lambda(S, t, beta_min=0.05, beta_max=10.0):
    """lambda(t) = e^{-2B(t)} S + 1 - e^{-2B(t)}, B(t) = int_0^t beta, beta(t) linear (symsched.sde's model)."""
    E = np.exp(-2.0 * (beta_min * t + (beta_max - beta_min) * t * t / 2.0))
    return E * S + 1.0 - E


def pf_ode_heun(S, n_points, *, eps=0.0, init="white", beta_min=0.05, beta_max=10.0, horizon=1.0):
    """Heun on the PF-ODE slope beta(tau) (y - y / lambda(tau)), reverse time on t_k = (T - eps) k / (N - 1)."""
    S = np.asarray(S, dtype=np.float64)

    def f(y, tau):
        return (beta_min + (beta_max - beta_min) * tau) * (y - y / vp_sde_lambda(S, tau, beta_min, beta_max))

    tau = [horizon - (horizon - eps) * k / (n_points - 1) for k in range(n_points)]
    D = tau[0] - tau[1]
    v = np.ones_like(S) if init == "white" else vp_sde_lambda(S, horizon, beta_min, beta_max)
    for a, c in zip(tau[:-1], tau[1:]):
        d1 = f(1.0, a)
        g = 1.0 + D * (d1 + f(1.0 + D * d1, c)) / 2.0
        v = g * g * v
    return v
