"""The continuous-time VP model of issue #5, per mode: symbols, beta, B, lambda, score and drifts.

Forward SDE ``dx = -beta(tau) x dtau + sqrt(2 beta(tau)) dw`` on ``[0, T]`` with the linear rate
``beta(tau) = beta_min + (beta_max - beta_min) tau`` and ``B(tau) = int_0^tau beta``. A mode of data
variance ``S`` has the marginal variance ``lambda(tau) = e^{-2B(tau)} S + 1 - e^{-2B(tau)}`` and the
score ``-y / lambda(tau)``.

The schemes are written with the *undefined* functions :data:`beta`, :data:`B` and :data:`lam`
applied to grid points (``beta(tau_k)``, ``lam(tau_{k+1})``...), exactly as the issue states them;
:func:`explicit` substitutes the definitions below, and :mod:`symsched.engine.sde_kernels` substitutes
a cancellation-free form of the same definitions before compiling.
"""

from __future__ import annotations

import sympy as sp

from ..symbols import S

__all__ = [
    "S", "tau", "tau_k", "tau_next", "Delta", "beta_min", "beta_max", "horizon", "eps", "y", "z",
    "v_init", "b", "beta", "B", "lam", "beta_def", "B_def", "lam_def", "explicit", "score",
    "sde_drift", "ode_drift", "sde_diffusion2", "forward_variance_derivation", "FUNCTIONS",
]

#: Generic forward time tau (tau = T is pure noise, tau = 0 is the data).
tau = sp.Symbol(r"\tau", nonnegative=True)
#: Forward times of the two ends of reverse step k: tau_k > tau_{k+1}.
tau_k = sp.Symbol(r"\tau_k", nonnegative=True)
tau_next = sp.Symbol(r"\tau_{k+1}", nonnegative=True)
#: Reverse step size Delta = t_1 - t_0 = (T - eps)/(N - 1) (equal to tau_k - tau_{k+1}).
Delta = sp.Symbol(r"\Delta", positive=True)
#: Linear rate parameters and the horizon T.
beta_min = sp.Symbol(r"\beta_{\min}", positive=True)
beta_max = sp.Symbol(r"\beta_{\max}", positive=True)
horizon = sp.Symbol("T", positive=True)
#: Truncation time: sampling stops at forward time eps >= 0.
eps = sp.Symbol(r"\varepsilon", nonnegative=True)
#: Sample entering a step and the standard normal draw of the step.
y = sp.Symbol("y", real=True)
z = sp.Symbol("z", real=True)
#: Variance of the starting state at tau = T (1: white start, lambda(T): exact start).
v_init = sp.Symbol(r"v_{\mathrm{init}}", nonnegative=True)
#: The B coordinate b = B(tau): both variance ODEs are autonomous in it.
b = sp.Symbol("b", nonnegative=True)

#: Undefined functions in which the schemes are written (beta_k = beta(tau_k), lambda_k = lam(tau_k)).
beta = sp.Function(r"\beta")
B = sp.Function("B")
lam = sp.Function(r"\lambda")
FUNCTIONS = (beta, B, lam)

_s = sp.Symbol("s", nonnegative=True)


def beta_def(t: sp.Expr) -> sp.Expr:
    """beta(t) = beta_min + (beta_max - beta_min) t."""
    return beta_min + (beta_max - beta_min) * t


def B_def(t: sp.Expr) -> sp.Expr:
    """B(t) = int_0^t beta(s) ds (integrated by SymPy)."""
    return sp.integrate(beta_def(_s), (_s, 0, t))


def lam_of_b(bb: sp.Expr) -> sp.Expr:
    """lambda as a function of the B coordinate: e^{-2b} S + 1 - e^{-2b}."""
    return sp.exp(-2 * bb) * S + 1 - sp.exp(-2 * bb)


def lam_def(t: sp.Expr) -> sp.Expr:
    """lambda(t) = e^{-2B(t)} S + 1 - e^{-2B(t)} (marginal variance of a mode of variance S)."""
    return lam_of_b(B_def(t))


def explicit(expr: sp.Expr) -> sp.Expr:
    """Substitute the definitions of lambda, B and beta (the canonical, unsimplified forms)."""
    expr = sp.sympify(expr)
    expr = expr.replace(lam, lambda t: lam_def(t))
    expr = expr.replace(B, lambda t: B_def(t))
    return expr.replace(beta, lambda t: beta_def(t))


def score(yy: sp.Expr, t: sp.Expr) -> sp.Expr:
    """Score of N(0, lambda(t)) at yy: -yy / lambda(t)."""
    return -yy / lam(t)


def sde_drift(yy: sp.Expr, t: sp.Expr) -> sp.Expr:
    """Reverse-SDE drift (in reverse time): beta(t) (yy + 2 score) = beta(t) (yy - 2 yy/lambda(t)).

    Anderson's reversal of dx = f dtau + g dw: drift -f + g^2 score with f = -beta x, g^2 = 2 beta.
    """
    return beta(t) * (yy + 2 * score(yy, t))


def ode_drift(yy: sp.Expr, t: sp.Expr) -> sp.Expr:
    """Probability-flow ODE drift (reverse time): beta(t) (yy + score) = beta(t) (yy - yy/lambda(t))."""
    return beta(t) * (yy + score(yy, t))


def sde_diffusion2(t: sp.Expr) -> sp.Expr:
    """Squared diffusion coefficient of the reverse SDE: g^2 = 2 beta(t)."""
    return 2 * beta(t)


def forward_variance_derivation() -> tuple[sp.Eq, sp.Expr]:
    """(ODE, solution) of the forward variance in the B coordinate: dlambda/db = -2 lambda + 2, lambda(0) = S.

    Ito on dx = -beta x dtau + sqrt(2 beta) dw gives dlambda/dtau = -2 beta lambda + 2 beta; with
    db = beta dtau this is autonomous in b. SymPy's dsolve returns the solution, which equals
    :func:`lam_of_b` (checked by the tests and by the LaTeX renderer).
    """
    ode = sp.Eq(lam(b).diff(b), -2 * lam(b) + 2)
    sol = sp.dsolve(ode, lam(b), ics={lam(0): S}).rhs
    return ode, sol
