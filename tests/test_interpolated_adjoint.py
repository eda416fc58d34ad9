"""The interpolated adjoint (issue 13): dJ/d(level) of a sum over many modes from one forward sweep over every mode
and an adjoint sweep over a few hundred nodes in ln S, carried there by the transpose of local Lagrange
interpolation (symsched.engine.interp). Checked against the full adjoint over every mode (the implementation before
it), the longdouble adjoint, central differences and the interpolation remainder formula; companions show that a
wrong transpose is caught and that a too coarse grid falls back to the full adjoint."""

from __future__ import annotations

import math

import numpy as np
import pytest

import symsched
from symsched.engine import interp, recursion

#: 20,000 distinct modes over ten decades (at least INTERPOLATED_MIN_MODES; about 250 nodes: more than
#: INTERPOLATED_MIN_RATIO times fewer), a zero mode and repeated values, as an FFT-grid PSD has
SPEC = np.concatenate([[0.0, 0.0], np.geomspace(1e-6, 1e4, 20000), np.geomspace(1e-6, 1e4, 20000)[::7]])
LOG_SNR = np.linspace(-10.0, 10.0, 80)  # K = 80 >= INTERPOLATED_MIN_LEVELS
AB = 1.0 / (1.0 + np.exp(-LOG_SNR))
CASES = [("ddpm", {}), ("ddim", {"eta": 0.5}), ("ddim", {}), ("dpmpp_2m", {}), ("euler_ancestral", {}),
         ("unipc_multistep", {})]


@pytest.fixture
def spy(monkeypatch):
    """Records the sizes of the spectra the gradient sweeps run on and how often the node weights are formed."""
    seen: dict[str, list[int]] = {"sweeps": [], "scatter": []}
    sweep, scatter = recursion._sweep_grad, interp.scatter

    def spy_sweep(prog, S, *args, **kw):
        seen["sweeps"].append(S.size)
        return sweep(prog, S, *args, **kw)

    def spy_scatter(first, L, c, n):
        seen["scatter"].append(n)
        return scatter(first, L, c, n)

    monkeypatch.setattr(recursion, "_sweep_grad", spy_sweep)
    monkeypatch.setattr(interp, "scatter", spy_scatter)
    return seen


def full_adjoint(monkeypatch, fn, *args, **kw):
    """``fn`` with the interpolated adjoint switched off: the full adjoint over every mode."""
    with monkeypatch.context() as m:
        m.setattr(recursion, "INTERPOLATED_MIN_LEVELS", math.inf)
        return fn(*args, **kw)


# -- the interpolation itself --------------------------------------------------------------------------------------
def _grid(u: np.ndarray) -> tuple[float, int, np.ndarray, np.ndarray]:
    start, n = interp.grid(u, interp.ORDER, interp.SPACING)
    first, L = interp.stencil(u, start, n, interp.ORDER, interp.SPACING)
    return start, n, first, L


def test_gather_reproduces_polynomials_of_its_degree_and_misses_the_next_by_the_remainder_formula() -> None:
    u = np.sort(np.random.default_rng(1).uniform(-3.0, 4.0, 500))
    start, n, first, L = _grid(u)
    p, h = interp.ORDER, interp.SPACING
    t_nodes, t = np.arange(n, dtype=float), (u - start) / h  # in node units
    coef = np.random.default_rng(2).normal(size=p + 1)
    poly = lambda x: np.polynomial.polynomial.polyval((x - n / 2) / n, coef)  # noqa: E731
    assert np.max(np.abs(interp.gather(first, L, poly(t_nodes)) - poly(t))) <= 1e-13
    # degree p + 1: the error is the node polynomial prod_i (t - first - i) exactly (leading coefficient 1); on the
    # modes of one stencil, centred there so that float64 holds the values to far better than the remainder
    one = first == first[u.size // 2]
    centre = first[u.size // 2] + p / 2
    remainder = np.prod(t[one, None] - (first[one, None] + np.arange(p + 1)), axis=1)
    missed = (t[one] - centre) ** (p + 1) - interp.gather(first[one], L[:, one], (t_nodes - centre) ** (p + 1))
    assert one.sum() >= 3 and np.min(np.abs(remainder)) > 1.0  # (a real miss: the test can tell)
    np.testing.assert_allclose(missed, remainder, rtol=1e-6)


def test_scatter_is_the_transpose_of_gather() -> None:
    rng = np.random.default_rng(3)
    u = np.sort(rng.uniform(-20.0, 10.0, 3000))
    _, n, first, L = _grid(u)
    c, f = rng.normal(size=u.size), rng.normal(size=n)
    lhs, rhs = float(np.dot(interp.scatter(first, L, c, n), f)), float(np.dot(c, interp.gather(first, L, f)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("centre", [-8.0, 0.0, 5.5])
def test_denoiser_factor_is_interpolated_in_log_s_to_rounding(centre: float) -> None:
    """S / (S + sigma^2) in u = ln S (poles at Im u = pi): the analyticity the interpolated adjoint rests on."""
    u = np.sort(np.random.default_rng(4).uniform(centre - 15.0, centre + 15.0, 4000))
    start, n, first, L = _grid(u)
    f = lambda x: 1.0 / (1.0 + np.exp(centre - x))  # noqa: E731
    nodes = start + interp.SPACING * np.arange(n)
    assert np.max(np.abs(interp.gather(first, L, f(nodes)) - f(u))) <= 2e-15


# -- the gradient --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler, kw", CASES)
@pytest.mark.parametrize("divergence", ["w2", "kl", "kl-reverse"])
def test_interpolated_gradient_matches_the_full_adjoint(monkeypatch, spy, sampler: str, kw: dict,
                                                        divergence: str) -> None:
    weights = np.random.default_rng(5).uniform(0.5, 2.0, SPEC.size)
    args = (SPEC, AB)
    opts = dict(divergence=divergence, sampler=sampler, wrt="log_snr", weights=weights, **kw)
    J, g = symsched.divergence_and_grad(*args, **opts)
    assert spy["scatter"] and max(spy["sweeps"]) < 400  # the interpolated adjoint ran, on the nodes only
    J_full, g_full = full_adjoint(monkeypatch, symsched.divergence_and_grad, *args, **opts)
    assert max(spy["sweeps"]) == np.unique(SPEC).size  # ... and the full one on every distinct mode
    assert J == pytest.approx(J_full, rel=1e-13)
    assert np.max(np.abs(g - g_full)) <= 1e-12 * np.max(np.abs(g_full))


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m_sde"])
def test_interpolated_ve_gradient_matches_the_full_adjoint(monkeypatch, spy, sampler: str) -> None:
    """In log-SNR: dJ/d sigma multiplies both sweeps' rounding by 2/sigma (the docstring's advice)."""
    sig = np.exp(-LOG_SNR / 2)
    J, g = symsched.divergence_and_grad_ve(SPEC, sig, sampler=sampler, divergence="w2", wrt="log_snr")
    assert spy["scatter"]
    J_full, g_full = full_adjoint(monkeypatch, symsched.divergence_and_grad_ve, SPEC, sig, sampler=sampler,
                                  divergence="w2", wrt="log_snr")
    assert J == pytest.approx(J_full, rel=1e-13)
    assert np.max(np.abs(g - g_full)) <= 1e-12 * np.max(np.abs(g_full))


def test_interpolated_gradient_error_is_of_the_size_of_the_full_adjoints_rounding(monkeypatch) -> None:
    """Both float64 gradients against the full adjoint in longdouble (11 more bits): the interpolation adds no more
    than a few times the float64 sweep's own rounding (measured on the ADSN PSD at K = 1000: 1x to 4x)."""
    opts = dict(divergence="kl", sampler="ddpm", wrt="log_snr")
    _, g = symsched.divergence_and_grad(SPEC, AB, **opts)
    _, g64 = full_adjoint(monkeypatch, symsched.divergence_and_grad, SPEC, AB, **opts)
    sweep = recursion._sweep_grad
    with monkeypatch.context() as m:
        m.setattr(recursion, "_sweep_grad", lambda *a, ld=False, **k: sweep(*a, ld=True, **k))
        _, g_ld = full_adjoint(monkeypatch, symsched.divergence_and_grad, SPEC, AB, **opts)
    scale = np.max(np.abs(g_ld))
    assert np.max(np.abs(g - g_ld)) <= 10 * np.max(np.abs(g64 - g_ld)) + 1e-15 * scale


def test_interpolated_gradient_matches_central_differences(spy) -> None:
    def J(ell):
        return symsched.divergence_and_grad(SPEC, 1.0 / (1.0 + np.exp(-ell)), divergence="w2", sampler="ddpm")[0]

    _, g = symsched.divergence_and_grad(SPEC, AB, divergence="w2", sampler="ddpm", wrt="log_snr")
    assert spy["scatter"]
    for k in (0, 17, 40, 79):
        e = np.zeros_like(LOG_SNR)
        e[k] = h = 1e-4
        fd = (J(LOG_SNR + e) - J(LOG_SNR - e)) / (2 * h)  # O(h^2) truncation: ~1e-8 relative here
        assert g[k] == pytest.approx(fd, rel=1e-6, abs=1e-9 * np.max(np.abs(g)))


# -- companions: what the checks catch -----------------------------------------------------------------------------
def test_a_wrong_transpose_is_caught_by_the_comparison_with_the_full_adjoint(monkeypatch) -> None:
    """A scatter that credits each weight to the next node (the check on P cannot see it: it only gathers) moves the
    gradient far beyond the tolerance of test_interpolated_gradient_matches_the_full_adjoint."""
    scatter = interp.scatter
    opts = dict(divergence="w2", sampler="ddpm", wrt="log_snr")
    _, g_full = full_adjoint(monkeypatch, symsched.divergence_and_grad, SPEC, AB, **opts)
    monkeypatch.setattr(interp, "scatter", lambda first, L, c, n: np.roll(scatter(first, L, c, n), 1))
    _, g_wrong = symsched.divergence_and_grad(SPEC, AB, **opts)
    assert np.max(np.abs(g_wrong - g_full)) > 1e-6 * np.max(np.abs(g_full))


def test_a_coarse_grid_fails_the_check_and_runs_the_full_adjoint(monkeypatch, spy) -> None:
    monkeypatch.setattr(interp, "SPACING", 1.5)  # degree 15 at h = 1.5: P interpolated to ~1e-4, not 1e-13
    opts = dict(divergence="w2", sampler="ddpm", wrt="log_snr")
    J, g = symsched.divergence_and_grad(SPEC, AB, **opts)
    assert spy["scatter"] and max(spy["sweeps"]) == np.unique(SPEC).size  # tried, rejected, the full adjoint ran
    J_full, g_full = full_adjoint(monkeypatch, symsched.divergence_and_grad, SPEC, AB, **opts)
    assert J == J_full and np.array_equal(g, g_full)


@pytest.mark.parametrize("case", ["few levels", "few modes", "wide range", "tiny modes", "huge modes"])
def test_the_full_adjoint_runs_where_interpolation_would_not_pay_or_kappa_enters(spy, case: str) -> None:
    S, ab = SPEC, AB
    if case == "few levels":
        ab = AB[::2]  # K = 40 < INTERPOLATED_MIN_LEVELS
    elif case == "few modes":
        S = SPEC[::2]  # 10,000 distinct modes: fewer than INTERPOLATED_MIN_MODES
    elif case == "wide range":
        S = np.geomspace(1e-99, 1e280, 20000)  # 873 in ln S: 8,750 nodes, more than 1/8 of the modes
    elif case == "tiny modes":
        S = np.concatenate([SPEC, [1e-120]])  # kappa = S below 1e-100
    else:
        S = np.concatenate([SPEC, [1e295]])  # longdouble above 1e290
    symsched.divergence_and_grad(S, ab, divergence="kl", sampler="ddpm")
    assert not spy["scatter"] and max(spy["sweeps"]) == np.unique(S).size


def test_blocks_of_modes_change_nothing_but_rounding(monkeypatch, spy) -> None:
    """to_nodes / from_nodes run the stencils in blocks of interp.BLOCK modes (memory bounded for 2^26 modes)."""
    opts = dict(divergence="w2", sampler="ddpm", wrt="log_snr")
    J, g = symsched.divergence_and_grad(SPEC, AB, **opts)
    monkeypatch.setattr(interp, "BLOCK", 997)
    J_b, g_b = symsched.divergence_and_grad(SPEC, AB, **opts)
    assert len(spy["scatter"]) >= 2 + np.unique(SPEC).size // 997  # one scatter per block in the second call
    # (the blocks reorder the scatter's sums: 1.1e-14 of the largest entry on an AVX2 machine, below 1e-14 on an
    # AVX-512 one; a block mis-indexed would move the gradient by O(1) of it)
    assert J_b == J and np.max(np.abs(g_b - g)) <= 1e-13 * np.max(np.abs(g))


# -- break-test of 7 December: close levels of samplers with memory, extreme weights ----------------------------
CLOSE_SPEC = np.geomspace(1e-6, 1e4, 17000)


def _close(at: int, gap: float) -> np.ndarray:
    return np.sort(np.append(LOG_SNR, LOG_SNR[at] + gap))


def _longdouble_full(monkeypatch, fn, *args, **kw):
    sweep = recursion._sweep_grad
    with monkeypatch.context() as m:
        m.setattr(recursion, "_sweep_grad", lambda *a, ld=False, **k: sweep(*a, ld=True, **k))
        return full_adjoint(monkeypatch, fn, *args, **kw)


@pytest.mark.parametrize("sampler, at, gap", [("dpmpp_2m", 60, 0.0025074224112451964),
                                              ("dpmsolver_multistep", 60, 0.005)])
def test_close_levels_of_a_sampler_with_memory_keep_the_full_adjoints_accuracy(monkeypatch, spy, sampler: str,
                                                                                at: int, gap: float) -> None:
    """A log-SNR gap of a few 1e-3 amplifies rounding ~1/gap: a float64 node sweep (each node carrying many modes'
    weight) erred 10-14x the float64 full adjoint; the node sweep now runs in longdouble there."""
    ell = _close(at, gap)
    if sampler == "dpmpp_2m":
        fn, levels, kw = symsched.divergence_and_grad_ve, np.exp(-ell / 2), {}
    else:
        fn, levels, kw = symsched.divergence_and_grad, 1.0 / (1.0 + np.exp(-ell)), {}
    _, g = fn(CLOSE_SPEC, levels, sampler=sampler, wrt="log_snr", **kw)
    assert spy["scatter"] and max(spy["sweeps"]) < 400  # the interpolated adjoint ran
    _, g64 = full_adjoint(monkeypatch, fn, CLOSE_SPEC, levels, sampler=sampler, wrt="log_snr", **kw)
    _, g_ld = _longdouble_full(monkeypatch, fn, CLOSE_SPEC, levels, sampler=sampler, wrt="log_snr", **kw)
    scale = np.max(np.abs(g_ld))
    assert np.max(np.abs(g - g_ld)) <= 4 * np.max(np.abs(g64 - g_ld)) + 1e-14 * scale


def _value_or_refusal(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except ValueError as exc:
        return str(exc)


def test_close_levels_give_the_full_adjoints_answer_or_its_refusal(monkeypatch) -> None:
    """dpmpp_3m_sde with two levels 9.5e-5 apart: the node sweep's rounding estimate (2.1e-13) crossed the limit
    1e-9 gap that the modes' own (7.1e-14 on an AVX-512 machine; 1.6e-13 on an AVX2 one, which refuses too), and
    only the interpolated path raised. Whatever the machine's rounding, the call answers as the full adjoint does."""
    sig = np.exp(-_close(25, 9.486832980505138e-05) / 2)
    got = _value_or_refusal(symsched.divergence_and_grad_ve, CLOSE_SPEC, sig, sampler="dpmpp_3m_sde", wrt="log_snr")
    full = full_adjoint(monkeypatch, _value_or_refusal, symsched.divergence_and_grad_ve, CLOSE_SPEC, sig,
                        sampler="dpmpp_3m_sde", wrt="log_snr")
    assert type(got) is type(full)
    if isinstance(full, str):
        assert got == full and "cancel in its gradient" in full
    else:
        assert got[0] == pytest.approx(full[0], rel=1e-12)
        assert np.max(np.abs(got[1] - full[1])) <= 1e-9 * np.max(np.abs(full[1]))


def test_a_refusal_of_the_node_sweep_leaves_the_call_to_the_full_adjoint(monkeypatch, spy) -> None:
    """Any ValueError of the node sweep (here forced: its rounding check refusing) is the full adjoint's to make:
    the call returns the full adjoint's value and gradient, not the error."""
    calls = []
    real = recursion._full_value_and_grad

    def refusing_on_nodes(prog, S, *a, **kw):
        calls.append(S.size)
        if S.size < np.unique(SPEC).size // 8:  # the node sweep (a few hundred nodes), not the modes' full adjoint
            raise ValueError("sigmas: forced refusal of the node sweep")
        return real(prog, S, *a, **kw)

    opts = dict(divergence="kl", sampler="dpmpp_2m", wrt="log_snr")
    J_full, g_full = full_adjoint(monkeypatch, symsched.divergence_and_grad, SPEC, AB, **opts)
    monkeypatch.setattr(recursion, "_full_value_and_grad", refusing_on_nodes)
    J, g = symsched.divergence_and_grad(SPEC, AB, **opts)
    assert spy["scatter"] and len(calls) == 2 and calls[0] < calls[1]  # the node sweep refused, then the full one ran
    assert J == J_full and np.array_equal(g, g_full)


def test_cotangents_beyond_float64_fall_back_without_a_warning(monkeypatch) -> None:
    """KL under weights 1e300: the objective's longdouble cotangents overflowed their float64 cast with a
    RuntimeWarning the full adjoint never printed; they now send the call to the full adjoint."""
    import warnings

    opts = dict(sampler="ddim", divergence="kl", weights=np.full(CLOSE_SPEC.size, 1e300), wrt="log_snr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J, g = symsched.divergence_and_grad(CLOSE_SPEC, AB, **opts)
    J_full, g_full = full_adjoint(monkeypatch, symsched.divergence_and_grad, CLOSE_SPEC, AB, **opts)
    assert J == J_full and np.array_equal(g, g_full)


def test_the_stencil_kept_by_to_nodes_is_the_one_from_nodes_would_compute() -> None:
    """to_nodes keeps the one block's stencil for from_nodes (the bench: 6.5 ms of a 320 ms gradient); more modes
    than a block keep nothing (memory stays bounded by a block's)."""
    u = np.log(np.unique(SPEC[SPEC > 0]))
    start, n = interp.grid(u, interp.ORDER, interp.SPACING)
    vals = np.random.default_rng(3).normal(size=n)
    kept: list = []
    interp.to_nodes(u, np.ones(u.size), start, n, interp.ORDER, interp.SPACING, keep=kept)
    assert len(kept) == 1 and u.size <= interp.BLOCK
    assert np.array_equal(interp.from_nodes(u, vals, start, n, interp.ORDER, interp.SPACING, kept=kept),
                          interp.from_nodes(u, vals, start, n, interp.ORDER, interp.SPACING))
    big = np.linspace(u[0], u[-1], interp.BLOCK + 1)
    kept = []
    interp.to_nodes(big, np.ones(big.size), start, n, interp.ORDER, interp.SPACING, keep=kept)
    assert kept == []
