"""Linear multistep (LMS) in sigma, k-diffusion ``sample_lms`` (k-diffusion 0.1.1.post1, ``sampling.py``).

d_i = (x - D(x; sigma_i))/sigma_i, x' = x + sum_{j < q} c_{ij} d_{i-j}, q = min(i + 1, order), with
c_{ij} = int_{sigma_i}^{sigma_{i+1}} prod_{k < q, k != j} (tau - sigma_{i-k})/(sigma_{i-j} - sigma_{i-k}) dtau
(Adams-Bashforth on the Karras ODE through the last q slopes). k-diffusion evaluates c_{ij} with
``scipy.integrate.quad(..., epsrel=1e-4)``; here the polynomial is integrated exactly by SymPy. quad
guarantees only ~1e-4 relative, but its first rule (21-point Gauss-Kronrod) is exact for polynomials
up to degree 31, so for these cubics it returns the exact integral to rounding
(tests/test_kdiffusion_witness.py checks both facts).

State. k-diffusion keeps the slopes d_{i-1}, d_{i-2}, d_{i-3}. Here the history is kept relative to the
current sample's pure-noise slope x/sigma_i: g_{i-j} = d_{i-j} - x/sigma_i (a change of variables, same
math). Since the Lagrange weights sum to sigma_{i+1} - sigma_i, x' = (sigma_{i+1}/sigma_i) x + sum_j c_{ij} g_{i-j}
with g_i = -D_i/sigma_i: every entry of the state then vanishes with the data (S -> 0), so tiny and
zero modes keep their relative accuracy (with raw slopes the history is collinear with x and P(S = 0)
comes out ~1e-38 instead of 0). The step into sigma = 0 (``final``) needs no history afterwards.
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step

PROCESS = "ve"
ENTRIES = (("x", "sample"), ("g_{i-1}", "unit"), ("g_{i-2}", "unit"), ("g_{i-3}", "unit"))
#: The order-q steps read sigma_{i-q+1}, ..., sigma_i, sigma_{i+1}; ``final<q>`` is the step into sigma = 0.
KINDS = {**{f"order{q}": tuple(range(1 - q, 2)) for q in (1, 2, 3, 4)},
         **{f"final{q}": tuple(range(1 - q, 2)) for q in (1, 2, 3, 4)}}
OPTIONS = {"order": (4, 1, 2, 3)}


def plan(K: int, levels: Any = None, params: Any = None, order: int = 4, **options: Any) -> list[PlanStep]:
    """k-diffusion: step i uses order min(i + 1, order); ``final`` kinds on the step into sigma = 0."""
    out = []
    for i in range(K):
        q = min(i + 1, int(order))
        out.append(step(f"{'final' if i == K - 1 else 'order'}{q}", *range(i - q + 1, i + 2)))
    return out


def lagrange_coefficients(q: int) -> list[Any]:
    """c_j, j < q: the integral over [sigma_i, sigma_{i+1}] of the Lagrange basis polynomial of node
    sigma_{i-j} through sigma_i, ..., sigma_{i-q+1} (SymPy, exact), as k-diffusion's linear_multistep_coeff."""
    import sympy as sp

    from ..symbols import slot_level

    tau = sp.Symbol("tau", real=True)
    nodes = [slot_level("ve", -k) for k in range(q)]  # sigma_{i-k}
    out = []
    for j in range(q):
        basis = sp.Mul(*[(tau - nodes[k]) / (nodes[j] - nodes[k]) for k in range(q) if k != j])
        out.append(sp.factor(sp.integrate(basis, (tau, slot_level("ve", 0), slot_level("ve", 1)))))
    return out


def build(order: int = 4):  # noqa: ANN201 - returns a Sampler
    import sympy as sp

    from ..forward import ve_denoiser
    from ..statespace import Update, from_module
    from ..symbols import sigma_s, sigma_t
    from ._kdiffusion import sym_to_d

    x, g1, g2, g3 = (sp.Symbol(name, real=True) for name, _ in ENTRIES)
    D, d0, d1, d2, d3, x_new = sp.symbols("D d_i d_{i-1} d_{i-2} d_{i-3} x'", real=True)
    slopes = (d0, d1, d2, d3)  # d_{i-j}

    def update(q: int, final: bool) -> Update:
        coeffs = lagrange_coefficients(q)
        stages = [(D, ve_denoiser(sigma_t) * x), (d0, sym_to_d(x, sigma_t, D))]
        stages += [(slopes[j], x / sigma_t + g) for j, g in zip((1, 2, 3), (g1, g2, g3)) if j < q]  # stored slopes
        stages += [(x_new, x + sum(c * slopes[j] for j, c in enumerate(coeffs)))]  # k-diffusion's update
        if final:  # nothing reads the history after the step into sigma = 0: keep it relative to x/sigma_i
            new = (x_new, d0 - x / sigma_t, g1, g2)
        else:  # the history relative to the new sample's x'/sigma_{i+1}
            hist = [slopes[j] if j < q else x / sigma_t + g for j, g in zip((0, 1, 2), (None, g1, g2))]
            new = (x_new, *(h - x_new / sigma_s for h in hist))
        return Update(state=(x, g1, g2, g3), new=new, stages=tuple(stages), slots=tuple(range(1 - q, 2)))

    return from_module(
        __name__,
        kinds={f"{'final' if fin else 'order'}{q}": update(q, fin) for fin in (False, True) for q in (1, 2, 3, 4)},
        title=f"LMS (k-diffusion, order {order})",
        citation="Crowson, k-diffusion sample_lms (linear multistep / Adams-Bashforth in sigma)",
        description=(
            "A linear multistep method on the Karras ODE $dx/d\\sigma = (x - D)/\\sigma$: the next sample "
            "integrates the Lagrange polynomial through the last $q = \\min(i+1, \\mathrm{order})$ slopes "
            "over $[\\sigma_i, \\sigma_{i+1}]$ (k-diffusion integrates it with scipy.quad, here exactly). The "
            "state keeps the slopes relative to the current $x/\\sigma_i$, $g_{i-j} = d_{i-j} - x/\\sigma_i$."
        ),
        options={"order": order},
        variant=str(order),
        order=min(int(order), 2),
    )
