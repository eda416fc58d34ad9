"""diffusers ``UniPCMultistepScheduler`` (UniP predictor + UniC corrector, B(h) = h or e^h - 1), with the exact denoiser.

Written from diffusers 0.42 ``schedulers/scheduling_unipc_multistep.py`` (``multistep_uni_p_bh_update``,
``multistep_uni_c_bh_update``, ``step``) with ``predict_x0=True`` (the default: the model output is
converted to x0, which is the same x0_hat for every ``prediction_type`` with the exact denoiser), in
diffusers' VP coordinates alpha = sqrt(ab), sigma = sqrt(1 - ab), lambda = log(alpha / sigma).
Zhao, Bai, Rao, Zhou, Lu. UniPC (arXiv 2302.04867), Algorithms 2-3 (B(h) variants bh1, bh2).

Every ``step`` call at level i first *corrects* the sample the previous step predicted, using the
model output m_i at that predicted sample (UniC of the previous step's order), then *predicts* the
next level (UniP). The model output is not re-evaluated at the corrected sample, and no corrector
follows the last predictor (there is no model call at the final level). Here a diffusers step is two
kinds of step: ``c<p>`` (model call at level i, correction of the sample at level i from level i-1; the
sample entry stays at level i, which is harmless in the level-independent VP scale) and ``p<p>``
(prediction from level i to i+1); ``first`` is the first model call and its order-1 prediction.
State at the start of a step that leaves level i: the sample, the last corrected sample x^c_i (``last_sample``),
the model outputs m_i, m_{i-1}, m_{i-2} at levels i, i-1, i-2.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..plan import PlanStep, step

PROCESS = "vp"
#: at the start of a step that leaves level i: the sample, the last corrected sample x^c_i (at level i), and the model
#: outputs at levels i, i-1, i-2
ENTRIES = (("x", "sample"), ("x^c_i", "unit"), ("m_i", "data"), ("m_{i-1}", "data"), ("m_{i-2}", "data"))
KINDS = {
    "first": (0, 1),
    "c1": (0, 1), "c2": (-1, 0, 1), "c3": (-2, -1, 0, 1),
    "p1": (0, 1), "p2": (-1, 0, 1), "p3": (-2, -1, 0, 1),
}
OPTIONS = {
    "solver_order": (2, 1, 3),
    "solver_type": ("bh2", "bh1"),
    "lower_order_final": (True, False),
    "final_sigmas_type": ("zero", "sigma_min"),
}
#: Options that change the update equations (the others only change the plan).
BUILD_OPTIONS = ("solver_type",)


def plan(K: int, levels: Optional[Sequence[float]] = None, params: Any = None, *, solver_order: int = 2,
         lower_order_final: bool = True, final_sigmas_type: str = "zero", **_: Any) -> list[PlanStep]:
    """diffusers' ``step``: predictor order min(solver_order, steps left (lower_order_final, any number of
    steps), steps so far + 1); from the second call on, a corrector of the previous predictor's order."""
    from .dpmsolver_multistep import model_levels

    N = model_levels(K, final_sigmas_type)
    if final_sigmas_type == "zero" and not lower_order_final and solver_order > 1 and N > 1:
        raise ValueError(
            "alpha_bar: unipc_multistep with lower_order_final=False and final_sigmas_type='zero' takes a "
            f"multistep step (order {min(solver_order, N)}) to the clean level, where its weights divide by the "
            "vanishing log-SNR ratios r_k (diffusers returns inf or fails); use lower_order_final=True or "
            "final_sigmas_type='sigma_min'"
        )
    out = [step("first", 0, 1)]
    prev = 1
    for i in range(1, N):
        out.append(step(f"c{prev}", *range(i - prev, i + 1)))  # levels i - prev .. i - 1, then i
        order = min(solver_order, N - i) if lower_order_final else solver_order
        order = min(order, i + 1)  # warm-up: lower_order_nums + 1
        out.append(step(f"p{order}", *range(i - order + 1, i + 2)))
        prev = order
    return out


def build(solver_type: str = "bh2", **_: Any):  # noqa: ANN201 - returns a Sampler
    """The kinds of step of UniPC with ``solver_type`` "bh1" (B(h) = h) or "bh2" (B(h) = e^h - 1)."""
    import sympy as sp

    from ..forward import vp_denoiser
    from ..statespace import Update, from_module
    from ..symbols import slot_level

    if solver_type not in OPTIONS["solver_type"]:
        raise ValueError(f"solver_type must be one of {OPTIONS['solver_type']} (got {solver_type!r})")
    x, xc, m1, m2, m3 = (sp.Symbol(n, real=True) for n, _ in ENTRIES)
    state = (x, xc, m1, m2, m3)
    ab = {j: slot_level("vp", j) for j in (-2, -1, 0, 1)}
    alpha = {j: sp.sqrt(a) for j, a in ab.items()}
    sigma = {j: sp.sqrt(1 - a) for j, a in ab.items()}
    lam = {j: sp.log(alpha[j]) - sp.log(sigma[j]) for j in ab}
    h = lam[1] - lam[0]
    # The weights are rational in h, e^{-h} and the ratios r_k: they are derived on placeholder symbols
    # and cancelled there (same values, a much smaller expression for the canonical rewriting).
    hs, Es = sp.Symbol("h", positive=True), sp.Symbol("E", positive=True)
    rs = [sp.Symbol(f"r_{k}", real=True) for k in (1, 2)]
    place = {hs: h, Es: sp.exp(-h), rs[0]: (lam[-1] - lam[0]) / h, rs[1]: (lam[-2] - lam[0]) / h}
    hh = -hs  # predict_x0
    h_phi_1 = Es - 1  # torch.expm1(hh)
    B_h = hh if solver_type == "bh1" else Es - 1

    def system(order: int) -> tuple[sp.Matrix, sp.Matrix]:
        """R (rows rks^(i-1)) and b (h_phi_k k! / B(h)) for i = 1..order, as the source builds them."""
        rows, b = [], []
        h_phi_k = h_phi_1 / hh - 1
        factorial = 1
        for i in range(1, order + 1):
            rows.append([r ** (i - 1) for r in rs[: order - 1] + [sp.Integer(1)]])
            b.append(h_phi_k * factorial / B_h)
            factorial *= i + 1
            h_phi_k = h_phi_k / hh - sp.Rational(1, factorial)
        return sp.Matrix(rows), sp.Matrix(b)

    def weights(rhos: list[sp.Expr], order: int) -> tuple[sp.Expr, list[sp.Expr]]:
        """alpha' B(h) rho_k / r_k: the weight of (m_k - m0) for k = 1..order-1 (placeholders resolved)."""
        out = [sp.factor(sp.cancel(B_h * r / rk)).subs(place) for r, rk in zip(rhos, rs[: order - 1])]
        return out

    m_new = sp.Symbol("m_{i+1}", real=True)  # a corrector's model call, at the level it reaches (slot 1)
    m_first = sp.Symbol("\\hat m_i", real=True)  # the first model call, at the level it leaves (slot 0)
    hist = [m1, m2, m3]  # model outputs at slots 0, -1, -2 when a step starts
    phi1 = h_phi_1.subs(place)

    def predictor(order: int) -> Update:
        """UniP of ``order`` from slot 0 to slot 1: x' = (sigma'/sigma) x - alpha' h_phi_1 m0 - alpha' B(h) sum rho_p D1."""
        m0 = hist[0]
        R, b = system(order)
        if order == 1:
            rhos: list[sp.Expr] = []
        elif order == 2:
            rhos = [sp.Rational(1, 2)]
        else:
            rhos = list(R[:-1, :-1].LUsolve(b[:-1, :]))
        w = weights(rhos, order)  # D1_k = (m_k - m0) / r_k
        new_x = sigma[1] / sigma[0] * x - alpha[1] * phi1 * m0
        new_x -= alpha[1] * sum((wk * (hist[k] - m0) for k, wk in zip(range(1, order), w)), sp.Integer(0))
        return Update(state=state, new=(new_x, x, m1, m2, m3), slots=tuple(range(1 - order, 2)))

    def corrector(order: int) -> Update:
        """Model call m_i at the predicted sample (level of slot 1), then UniC of ``order`` from slot 0 (the
        previous corrected sample x^c) to slot 1; the model outputs shift by one."""
        m0 = m1  # the previous model output (before the shift)
        prev = [m1, m2, m3]
        R, b = system(order)
        rhos = [sp.Rational(1, 2)] if order == 1 else list(R.LUsolve(b))
        w = weights(rhos[:-1], order)
        w_t = sp.factor(sp.cancel(B_h * rhos[-1])).subs(place)  # weight of D1_t = m_i - m0
        new_x = sigma[1] / sigma[0] * xc - alpha[1] * phi1 * m0
        new_x -= alpha[1] * (sum((wk * (prev[k] - m0) for k, wk in zip(range(1, order), w)), sp.Integer(0))
                             + w_t * (m_new - m0))
        return Update(state=state, new=(new_x, xc, m_new, m1, m2), stages=((m_new, vp_denoiser(ab[1])[0] * x),),
                      slots=tuple(range(1 - order, 2)))

    p1 = predictor(1)
    first = Update(  # the first model call (level of slot 0) and its order-1 prediction
        state=state,
        new=(sigma[1] / sigma[0] * x - alpha[1] * phi1 * m_first, x, m_first, m1, m2),
        stages=((m_first, vp_denoiser(ab[0])[0] * x),),
        slots=(0, 1),
    )
    kinds = {"first": first, "c1": corrector(1), "c2": corrector(2), "c3": corrector(3),
             "p1": p1, "p2": predictor(2), "p3": predictor(3)}
    return from_module(
        __name__,
        kinds=kinds,
        title=f"UniPCMultistepScheduler ({solver_type})",
        citation="Zhao, Bai, Rao, Zhou, Lu. UniPC (arXiv 2302.04867); diffusers scheduling_unipc_multistep.py",
        description=(
            "A predictor-corrector multistep solver in half the log-SNR, $\\tfrac12\\ell = \\log(\\sqrt{\\bar\\alpha}"
            "/\\sqrt{1 - \\bar\\alpha})$ (diffusers' $\\lambda$): each model call first corrects the sample "
            "predicted by the previous step (UniC: the step from the last corrected sample $x^c_i$ to level $i+1$ again, "
            "with the model output $m_{i+1}$ at the predicted sample), then predicts the next level (UniP). With "
            "$h = \\tfrac12(\\ell_{i+1} - \\ell_i) > 0$, $B_h = -h$ (bh1) or $e^{-h} - 1$ (bh2) (diffusers' "
            "$h_h = -h$); $m_i, m_{i-1}, m_{i-2}$ are the model's $x_0$ outputs at levels $i, i-1, i-2$."
        ),
        options={"solver_type": solver_type},
        variant=solver_type,
        order=3,
    )
