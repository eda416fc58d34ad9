"""LaTeX section ``sde`` of ``symsched latex``: the continuous-time schemes of issue #5.

Every formula is printed by :func:`sympy.latex` from the expressions of :mod:`symsched.symbolic.sde`;
only the connecting sentences are prose. Importing this module registers :func:`render` as
``symsched.symbolic.latex.EXTRA_SECTIONS["sde"]``.
"""

from __future__ import annotations

import sympy as sp

from .. import latex as _master
from . import continuous, model
from .model import B, Delta, S, beta, eps, horizon, lam, tau, tau_k, tau_next, v_init, y
from .schemes import REGISTRY

__all__ = ["render", "display"]

_tau_mid = tau_k - Delta / 2


def _abbrev() -> dict[sp.Expr, sp.Symbol]:
    """beta(tau_k) -> beta_k, lambda(tau_{k+1}) -> lambda_{k+1}, ... (the issue's notation)."""
    pts = {tau_k: "k", tau_next: "k+1", _tau_mid: "k+1/2"}
    table: dict[sp.Expr, sp.Symbol] = {}
    for p, sub in pts.items():
        table[lam(p)] = sp.Symbol(rf"\lambda_{{{sub}}}")
        table[beta(p)] = sp.Symbol(rf"\beta_{{{sub}}}")
        table[B(p)] = sp.Symbol(rf"B_{{{sub}}}")
    return table


def display(expr: sp.Expr) -> sp.Expr:
    """``expr`` with the model functions at grid points abbreviated (lambda_k, beta_{k+1}, ...)."""
    return sp.sympify(expr).xreplace(_abbrev())


def _coefficient_symbol(sym: sp.Symbol) -> sp.Symbol:
    return sp.Symbol(f"c_{{{sp.latex(sym)}}}")


def _scheme_section(name: str) -> str:
    sch = REGISTRY[name]()
    eq_name = "reverse SDE" if sch.equation == "sde" else "probability-flow ODE"
    out = [f"\\subsection*{{{sch.title}}}\n"]
    evals = "one evaluation" if sch.evals_per_step == 1 else f"{sch.evals_per_step} evaluations"
    out.append(
        f"{sch.description} It discretises the {eq_name}, costs {evals} of the denoiser per step and "
        f"is of order {sch.order}. Reference: {sch.citation}. The update is\n"
    )
    for sym, value in sch.assignments:
        out.append(_master.equation(sp.latex(sym), display(value)))
    out.append(_master.equation("y_{k+1}", display(sch.final)))
    per_mode = "the step is $y_{k+1} = g_k(S)\\,y_k + \\sqrt{n_k}\\,z_k$ with\n"
    if sch.equation == "ode" and sch.assignments:
        coefs = sch.stage_coefficients()
        rename = {sym: _coefficient_symbol(sym) for sym, _ in coefs}
        out.append("Every stage is linear in $y = y_k$, stage $= c\\,y_k$, with the coefficients\n")
        for sym, coef in coefs:
            out.append(_master.equation(sp.latex(rename[sym]), display(coef.xreplace(rename))))
        gain = sch.staged_gain().xreplace(rename)
        out.append("so per mode " + per_mode)
        out.append(_master.equation("g_k(S)", gain))
    else:
        out.append("Per mode " + per_mode)
        out.append(_master.equation("g_k(S)", display(sch.step.gain)))
    out.append(_master.equation("n_k", display(sch.step.noise)))
    if sch.uses_end_point:
        out.append(
            "The step evaluates the score at $\\tau_{k+1}$, i.e.\\ at $\\varepsilon$ on the last step: "
            "with $\\varepsilon = 0$ a mode with $S = 0$ meets $\\lambda(0) = S = 0$ and $|g| \\to \\infty$ "
            "as $S \\to 0^+$; \\texttt{symsched} returns $P = +\\infty$ for such modes.\n"
        )
    return "".join(out)


def render() -> str:
    """The body of ``sde.tex``."""
    out = ["\\section{Continuous-time VP samplers}\n"]
    out.append(
        "The forward process is the VP SDE $dx = -\\beta(\\tau)\\,x\\,d\\tau + \\sqrt{2\\beta(\\tau)}\\,dw$ "
        "on $[0, T]$. Under the Gaussian model every scheme below acts on each mode of variance $S$ "
        "as a scalar linear map, so its output variance follows a two-term recursion "
        "(Pierret, Galerne, arXiv 2405.14250).\n\n"
    )
    out.append("\\subsection*{Model}\n")
    out.append("The rate is linear and $B$ is its integral:\n")
    out.append(_master.equation("\\beta(\\tau)", model.beta_def(tau)))
    out.append(_master.equation("B(\\tau) = \\int_0^\\tau \\beta", model.B_def(tau)))
    ode, sol = model.forward_variance_derivation()  # sol == lam_of_b(b): tests/test_sde.py
    out.append(
        "By It\\^o's formula the variance of a mode obeys $d\\lambda/d\\tau = 2\\beta(1-\\lambda)$; in the "
        "coordinate $b = B(\\tau)$ this is\n"
    )
    out.append(_master.equation(sp.latex(ode.lhs), ode.rhs))
    out.append("and \\texttt{dsolve} with $\\lambda = S$ at $b = 0$ gives $\\lambda = " + sp.latex(sol) + "$, i.e.\n")
    out.append(_master.equation("\\lambda(\\tau)", model.lam_of_b(B(tau))))
    out.append(
        "The score of $\\mathcal N(0, \\lambda(\\tau))$ is $-y/\\lambda(\\tau)$, so in reverse time "
        "$t = T - \\tau$ the reverse SDE and the probability-flow ODE are linear:\n"
    )
    out.append(_master.equation("dy", sp.latex(model.sde_drift(y, tau)) + "\\,dt + \\sqrt{" + sp.latex(model.sde_diffusion2(tau)) + "}\\,dw"))
    out.append(_master.equation("\\frac{dy}{dt}", model.ode_drift(y, tau)))
    out.append(
        "The schemes run on the reverse grid $t_k = (T-\\varepsilon)\\,k/(N-1)$, $k = 0, \\dots, N-1$ "
        "($N$ points, $N-1$ steps, $\\Delta = t_1 - t_0$) at forward times $\\tau_k = T - t_k$, with "
        "$\\beta_k = \\beta(\\tau_k)$, $\\lambda_k = \\lambda(\\tau_k)$, $B_k = B(\\tau_k)$ and the "
        "midpoint $\\tau_{k+1/2} = \\tau_k - \\Delta/2$; $z_k \\sim \\mathcal N(0, 1)$.\n"
    )
    for name in REGISTRY:
        out.append(_scheme_section(name))
    out.append("\\subsection*{Recursion and output spectrum}\n")
    out.append(
        "With $g_k, n_k$ the gain and injected variance of step $k$, the variance of a mode follows\n"
        "\\begin{equation*}\nv_0 = v_{\\mathrm{init}},\\qquad v_{k+1} = g_k(S)^2\\, v_k + n_k,"
        "\\qquad P(S) = v_{N-1},\n\\end{equation*}\n"
        "with $v_{\\mathrm{init}} = 1$ (white start) or $v_{\\mathrm{init}} = \\lambda(T)$ (exact start), "
        "and the error of the scheme is $W_2 = (\\sum_{\\text{modes}} (\\sqrt P - \\sqrt S)^2)^{1/2}$. "
        "A scheme with $e$ evaluations per step costs $e\\,(N-1)$ denoiser evaluations.\n"
    )
    out.append("\\subsection*{Exact continuous solutions}\n")
    out.append(
        "For $dy = a\\,y\\,dt + \\sigma\\,dw$ in reverse time the variance obeys $dv/dt = 2 a v + \\sigma^2$; "
        "in the coordinate $b = B(\\tau)$ (so $dv/db = -(2av + \\sigma^2)/\\beta$) the two equations are\n"
    )
    for kind, label in (("sde", "reverse SDE"), ("ode", "probability-flow ODE")):
        # the equality of closed_form with the dsolve solution is checked by tests/test_sde.py
        v, ode_k = continuous.variance_ode(kind)
        out.append(_master.equation(sp.latex(ode_k.lhs), ode_k.rhs))
        out.append(
            f"({label}). SymPy's \\texttt{{dsolve}} from $v = v_{{\\mathrm{{init}}}}$ at $b = B(T)$, evaluated at "
            "$b = B(\\varepsilon)$, simplifies to\n"
        )
        out.append(_master.equation(f"P_{{\\mathrm{{{kind.upper()}}}}}", continuous.closed_form(kind)))
    out.append(
        "(the equality with the \\texttt{dsolve} solution is checked symbolically). With the exact start "
        f"$v_{{\\mathrm{{init}}}} = \\lambda(T)$ both reduce to $P = {sp.latex(continuous.exact_start_variance())}$, "
        "the data variance up to the truncation at $\\varepsilon$; with the white start the PF-ODE gives "
        f"$P = {sp.latex(continuous.output_variance('ode', 'white'))}$. Both are finite for every $S \\ge 0$, "
        "also at $\\varepsilon = 0$.\n"
    )
    _ = (S, eps, horizon, v_init)
    return "".join(out)


_master.EXTRA_SECTIONS["sde"] = render
