"""Linear multistep (LMS) in sigma, k-diffusion ``sample_lms`` (k-diffusion 0.1.1.post1, ``sampling.py``).

d_i = (x - D(x; sigma_i))/sigma_i, x' = x + sum_{j < q} c_{ij} d_{i-j}, q = min(i + 1, order), with
c_{ij} = int_{sigma_i}^{sigma_{i+1}} prod_{k < q, k != j} (tau - sigma_{i-k})/(sigma_{i-j} - sigma_{i-k}) dtau
(Adams-Bashforth on the Karras ODE through the last q slopes). k-diffusion evaluates c_{ij} with
``scipy.integrate.quad(..., epsrel=1e-4)``; here the polynomial is integrated exactly by SymPy. quad's
guaranteed accuracy is only ~1e-4 relative, but its first rule (21-point Gauss-Kronrod) integrates
polynomials up to degree 31 exactly, so for these cubics it returns the exact value to rounding
(tests/test_kdiffusion_witness.py checks both facts). State: the sample and the last order - 1 slopes.
"""

from __future__ import annotations

from typing import Any

from ..plan import PlanStep, step

PROCESS = "ve"
ENTRIES = (("x", "sample"), ("d_{i-1}", "unit"), ("d_{i-2}", "unit"), ("d_{i-3}", "unit"))
#: The step of each order q reads sigma_{i-q+1}, ..., sigma_i, sigma_{i+1}.
KINDS = {"order1": (0, 1), "order2": (-1, 0, 1), "order3": (-2, -1, 0, 1), "order4": (-3, -2, -1, 0, 1)}
OPTIONS = {"order": (4, 1, 2, 3)}


def plan(K: int, levels: Any = None, params: Any = None, order: int = 4, **options: Any) -> list[PlanStep]:
    """k-diffusion: step i uses order min(i + 1, order)."""
    out = []
    for i in range(K):
        q = min(i + 1, int(order))
        out.append(step(f"order{q}", *range(i - q + 1, i + 2)))
    return out


def lagrange_coefficients(q: int) -> list[Any]:
    """c_j, j < q: the integral over [sigma_i, sigma_{i+1}] of the Lagrange basis polynomial of node
    sigma_{i-j} through sigma_i, ..., sigma_{i-q+1} (SymPy, exact)."""
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
    from ..symbols import sigma_t
    from ._kdiffusion import sym_to_d

    x, d1, d2, d3 = (sp.Symbol(name, real=True) for name, _ in ENTRIES)
    D, d = sp.symbols("D d_i", real=True)
    history = (d, d1, d2, d3)  # d_{i-j}

    def update(q: int) -> Update:
        coeffs = lagrange_coefficients(q)
        return Update(
            state=(x, d1, d2, d3),
            new=(x + sum(c * history[j] for j, c in enumerate(coeffs)), d, d1, d2),
            stages=((D, ve_denoiser(sigma_t) * x), (d, sym_to_d(x, sigma_t, D))),
            slots=tuple(range(-q + 1, 2)),
        )

    return from_module(
        __name__,
        kinds={f"order{q}": update(q) for q in (1, 2, 3, 4)},
        title=f"LMS (k-diffusion, order {order})",
        citation="Crowson, k-diffusion sample_lms (linear multistep / Adams-Bashforth in sigma)",
        description=(
            "A linear multistep method on the Karras ODE $dx/d\\sigma = (x - D)/\\sigma$: the next sample "
            "integrates the Lagrange polynomial through the last $q = \\min(i+1, \\mathrm{order})$ slopes "
            "over $[\\sigma_i, \\sigma_{i+1}]$; k-diffusion integrates it with scipy.quad, here exactly."
        ),
        options={"order": order},
        variant=str(order),
        order=min(int(order), 2),
    )
