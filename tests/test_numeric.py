"""The compiled engine against the symbolic source: evalf, mpmath at 50 digits, finite differences."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symsched
from symsched.schedules import alpha_bar_to_sigmas
from symsched.engine.program import evaluate_step
from symsched.symbolic import get_sampler
from symsched.symbolic.symbols import S, alpha_bar_s, alpha_bar_t, eta, sigma_s, sigma_t

VP_CASES = [
    ("ddim", {"eta": 0.0}),
    ("ddim", {"eta": 0.37}),
    ("ddim", {"eta": 1.0}),
    ("ddpm", {"variance": "posterior"}),
    ("ddpm", {"variance": "beta"}),
]
INITS = ["white", "exact"]


def extreme_schedule(K: int = 1000) -> np.ndarray:
    """K levels from 1e-12 to 1 - 1e-12, dense at both ends (log-SNR uniform plus end clusters)."""
    core = 1 / (1 + np.exp(-np.linspace(-25, 25, K - 6)))
    ends = np.array([1e-12, 3e-12, 1e-11, 1 - 1e-11, 1 - 3e-12, 1 - 1e-12])
    ab = np.unique(np.concatenate([core, ends]))
    assert ab.size == K and ab[0] == 1e-12 and ab[-1] == 1 - 1e-12
    return ab


SPEC = np.array([0.0, 1e-10, 1e-4, 0.03, 0.5, 1.0, 2.5, 40.0, 1e4, 1e9])


# -- compiled kernels against expr.evalf ----------------------------------------------------------
def _vp_scale(process: str, level: float) -> float:
    """x_vp / x_native of the sample at a native level (1 for VP, 1/sqrt(1 + sigma^2) for VE)."""
    return 1.0 if process == "vp" else 1.0 / np.sqrt(1.0 + level**2)


@pytest.mark.parametrize("name,kw", VP_CASES + [("euler", {}), ("heun", {})])
@pytest.mark.parametrize("kind", ["step", "final"])
def test_kernels_match_evalf(name: str, kw: dict, kind: str) -> None:
    """Compiled A, B (canonical coordinates, VP scale) against the sampler's own update, evaluated by evalf."""
    smp = get_sampler(name, **({"variance": kw["variance"]} if "variance" in kw else {}))
    upd = smp.kinds[kind]
    A, B = upd.matrices
    rng = np.random.default_rng(1)
    for _ in range(10):
        if smp.process == "vp":
            lv = np.sort(rng.uniform(0.001, 0.999, 2))
            x = list(lv) if kind == "step" else [lv[0], None]
            sub = {alpha_bar_t: lv[0], alpha_bar_s: lv[1] if kind == "step" else 1}
            coord = "alpha_bar"
        else:
            lv = np.sort(rng.lognormal(0, 2, 2))[::-1]
            x = list(lv) if kind == "step" else [lv[0], None]
            sub = {sigma_t: lv[0], sigma_s: lv[1] if kind == "step" else 0}
            coord = "sigma"
        s_val = float(rng.lognormal(0, 2))
        sub.update({S: s_val, eta: kw.get("eta", 0.0)})
        got = evaluate_step(name, kind, x, np.array([s_val]), coordinate=coord,
                            options={k: v for k, v in kw.items() if k == "variance"},
                            params={k: v for k, v in kw.items() if k == "eta"})
        scale = _vp_scale(smp.process, float(sub[sigma_s if smp.process == "ve" else alpha_bar_s])) / _vp_scale(
            smp.process, float(sub[sigma_t if smp.process == "ve" else alpha_bar_t]))
        want_a = float(sp.re(A[0, 0].evalf(30, subs=sub))) * scale
        assert float(np.ravel(got[0])[0]) == pytest.approx(want_a, rel=1e-12, abs=1e-60)
        if B.cols:
            want_b = abs(float(sp.re(B[0, 0].evalf(30, subs=sub)))) * _vp_scale(
                smp.process, float(sub[sigma_s if smp.process == "ve" else alpha_bar_s]))
            assert abs(float(np.ravel(got[1])[0])) == pytest.approx(want_b, rel=1e-12, abs=1e-60)


# -- mpmath at 50 digits ---------------------------------------------------------------------------
def _rel_err(x: np.ndarray, ref: np.ndarray) -> float:
    ref_f = np.array([float(r) for r in ref.ravel()])
    x = x.ravel()
    scale = np.where(ref_f == 0, 1.0, np.abs(ref_f))
    return float(np.max(np.abs(x - ref_f) / scale))


@pytest.mark.parametrize("name,kw", VP_CASES)
@pytest.mark.parametrize("init", INITS)
def test_extreme_schedule_K1000_matches_mpmath(name: str, kw: dict, init: str) -> None:
    ab = extreme_schedule(1000)
    P = symsched.output_spectrum(SPEC, ab, sampler=name, init=init, **kw)
    assert np.all(np.isfinite(P))
    ref = symsched.output_spectrum_mp(SPEC, ab, sampler=name, init=init, dps=50, **kw)
    assert _rel_err(P, ref) <= 1e-9


@pytest.mark.parametrize("name,kw", VP_CASES)
def test_transfer_function_matches_mpmath(name: str, kw: dict) -> None:
    ab = extreme_schedule(1000)
    H = symsched.transfer_function(SPEC, ab, sampler=name, **kw)
    ref = symsched.transfer_function_mp(SPEC, ab, sampler=name, dps=50, **kw)
    assert _rel_err(H, ref) <= 1e-9


@pytest.mark.parametrize("name", ["euler", "heun"])
@pytest.mark.parametrize("init", INITS)
def test_ve_extreme_schedule_matches_mpmath(name: str, init: str) -> None:
    sig = alpha_bar_to_sigmas(extreme_schedule(1000))  # 1e6 ... 1e-6
    P = symsched.output_spectrum_ve(SPEC, sig, sampler=name, init=init)
    ref = symsched.output_spectrum_ve_mp(SPEC, sig, sampler=name, init=init, dps=50)
    assert _rel_err(P, ref) <= 1e-9


levels = st.lists(st.floats(1e-4, 1 - 1e-4), min_size=1, max_size=30, unique=True).map(sorted)


@settings(max_examples=25)
@given(
    ab=levels,
    spec=st.lists(st.floats(0, 1e3), min_size=1, max_size=6),
    case=st.sampled_from(VP_CASES),
    init=st.sampled_from(INITS),
)
def test_random_schedules_match_mpmath(ab: list, spec: list, case: tuple, init: str) -> None:
    ab_arr = np.array(ab)
    assume(np.all(np.diff(ab_arr) > 0))
    name, kw = case
    P = symsched.output_spectrum(spec, ab_arr, sampler=name, init=init, **kw)
    ref = symsched.output_spectrum_mp(spec, ab_arr, sampler=name, init=init, dps=40, **kw)
    assert _rel_err(P, ref) <= 1e-9


# -- gradients against central finite differences -----------------------------------------------
def _fd(fun, x: np.ndarray, rel: float) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.size):
        h = rel * max(abs(x[i]), 1e-300)
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        out[i] = (fun(xp) - fun(xm)) / (2 * h)
    return out


@pytest.mark.parametrize("name,kw", VP_CASES)
@pytest.mark.parametrize("divergence", ["kl", "kl-reverse", "w2"])
@pytest.mark.parametrize("init", INITS)
def test_gradient_matches_finite_differences(name: str, kw: dict, divergence: str, init: str) -> None:
    rng = np.random.default_rng(7)
    spec = np.concatenate([[0.0], rng.lognormal(0, 2, 40)])
    ab = np.sort(rng.uniform(0.02, 0.98, 7))
    opts = dict(sampler=name, divergence=divergence, init=init, **kw)
    J, g = symsched.divergence_and_grad(spec, ab, **opts)
    # the value agrees with the public divergences
    P = symsched.output_spectrum(spec, ab, sampler=name, init=init, **kw)
    direct = {
        "kl": symsched.kl_divergence(spec, P),
        "kl-reverse": symsched.kl_divergence(P, spec),
        "w2": symsched.w2_distance(P, spec) ** 2,
    }[divergence]
    assert J == pytest.approx(direct, rel=1e-10)
    fd = _fd(lambda a: symsched.divergence_and_grad(spec, a, **opts)[0], ab, 1e-6)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))
    # and with respect to log-SNR
    lsnr = np.log(ab / (1 - ab))
    _, gl = symsched.divergence_and_grad(spec, ab, wrt="log_snr", **opts)
    fdl = _fd(lambda l: symsched.divergence_and_grad(spec, 1 / (1 + np.exp(-l)), **opts)[0], lsnr, 1e-6)
    np.testing.assert_allclose(gl, fdl, rtol=1e-5, atol=1e-6 * np.max(np.abs(fdl)))


@pytest.mark.parametrize("name", ["euler", "heun"])
@pytest.mark.parametrize("divergence", ["kl", "w2"])
@pytest.mark.parametrize("init", INITS)
def test_ve_gradient_matches_finite_differences(name: str, divergence: str, init: str) -> None:
    rng = np.random.default_rng(8)
    spec = rng.lognormal(0, 2, 30)
    sig = np.sort(rng.lognormal(0, 2, 6))[::-1].copy()
    opts = dict(sampler=name, divergence=divergence, init=init)
    _, g = symsched.divergence_and_grad_ve(spec, sig, **opts)
    fd = _fd(lambda s: symsched.divergence_and_grad_ve(spec, s, **opts)[0], sig, 1e-6)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))


def test_weights_scale_the_objective_per_mode() -> None:
    spec = np.array([0.5, 2.0, 8.0])
    ab = np.array([0.1, 0.6])
    J1, g1 = symsched.divergence_and_grad(spec[:1], ab)
    J2, g2 = symsched.divergence_and_grad(spec, ab, weights=[1.0, 0.0, 0.0])
    assert J1 == pytest.approx(J2, rel=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-12)


def test_gradient_at_K1000_extreme_levels_is_finite() -> None:
    ab = extreme_schedule(1000)
    J, g = symsched.divergence_and_grad(np.abs(SPEC) + 1e-3, ab, divergence="w2", sampler="ddpm")
    assert np.isfinite(J) and np.all(np.isfinite(g))


@pytest.mark.parametrize("sampler", ["ddpm", "dpmpp_2m"])
def test_gradient_storage_from_a_populated_mapping_changes_nothing(monkeypatch, sampler: str) -> None:
    """The forward store of a large gradient (variances, or covariances for a sampler with memory) is
    an anonymous mapping populated at once (one trap, not one per page); the result is the same, bit
    for bit, as with numpy's allocator, over several chunks of modes."""
    from symsched.engine import recursion

    buf = recursion._populated(2**20, np.dtype(np.float64))
    assert buf.shape == (2**20,) and buf.dtype == np.float64 and buf.flags.writeable
    buf[:] = 1.5
    assert float(buf.sum()) == 1.5 * 2**20
    rng = np.random.default_rng(9)
    spec = rng.lognormal(0, 3, 6000)
    ab = np.sort(rng.uniform(0.01, 0.99, 200))

    def run() -> tuple[float, np.ndarray]:
        recursion._LOCAL.__dict__.pop("store", None)
        if sampler == "ddpm":
            return symsched.divergence_and_grad(spec, ab, sampler=sampler, divergence="w2")
        return symsched.divergence_and_grad_ve(spec, alpha_bar_to_sigmas(ab), sampler=sampler, divergence="w2")

    monkeypatch.setattr(recursion, "_MEMORY_BUDGET", 2**23)  # 8 MiB: 2 (ddpm) or 5 chunks, each store mapped
    J1, g1 = run()
    monkeypatch.setattr(recursion, "_populated", lambda size, dtype: np.empty(size, dtype=dtype))
    J2, g2 = run()
    recursion._LOCAL.__dict__.pop("store", None)
    assert np.isfinite(J1) and J1 == J2
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("sampler", ["ddpm", "dpmpp_2m", "dpmpp_3m_sde"])
def test_sweeps_in_blocks_of_modes_change_nothing(monkeypatch, sampler: str) -> None:
    """The sweeps run the modes in blocks (recursion.BLOCK_MODES, sized for the cache): each mode's value is the
    same bit for bit as in one block (modes never mix), and the gradient (block sums added up) agrees to rounding."""
    from symsched.engine import recursion

    rng = np.random.default_rng(11)
    spec = rng.lognormal(0, 3, 5000)
    sig = alpha_bar_to_sigmas(np.linspace(0.01, 0.99, 40))  # even gaps: the multistep terms do not cancel

    def run() -> tuple[np.ndarray, float, np.ndarray]:
        P = symsched.output_spectrum_ve(spec, sig, sampler=sampler)
        return (P, *symsched.divergence_and_grad_ve(spec, sig, sampler=sampler, divergence="w2"))

    P1, J1, g1 = run()
    monkeypatch.setattr(recursion, "BLOCK_MODES", 1024)  # 5 blocks (4 below 1 and 1 above: every group split)
    P2, J2, g2 = run()
    np.testing.assert_array_equal(P1, P2)
    assert J2 == pytest.approx(J1, rel=1e-13)
    # a block lost is O(1); summing the per-mode terms in another order moves an entry by a few ulps of the
    # largest terms (up to ~max |g|), which for a small entry (0.21 next to 6e3) is ~1e-13 max |g|
    np.testing.assert_allclose(g2, g1, rtol=1e-10, atol=1e-12 * np.max(np.abs(g1)))


# -- shapes, de-duplication and divergences -------------------------------------------------------
def test_output_keeps_shape_and_deduplication_is_exact() -> None:
    rng = np.random.default_rng(4)
    base = rng.lognormal(0, 1, (8, 8, 3))
    spec = np.concatenate([base, base[::-1]], axis=0)  # every value twice
    ab = np.sort(rng.uniform(0.01, 0.99, 12))
    P = symsched.output_spectrum(spec, ab, sampler="ddpm")
    assert P.shape == spec.shape
    one_by_one = np.array([symsched.output_spectrum([s], ab, sampler="ddpm")[0] for s in spec.ravel()])
    np.testing.assert_array_equal(P.ravel(), one_by_one)


def test_kl_and_w2_against_textbook_formulas() -> None:
    rng = np.random.default_rng(5)
    p, q = rng.lognormal(0, 1, 50), rng.lognormal(0, 1, 50)
    kl = 0.5 * np.sum(p / q - 1 - np.log(p / q))
    w2 = np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))
    assert symsched.kl_divergence(p, q) == pytest.approx(kl, rel=1e-12)
    assert symsched.w2_distance(p, q) == pytest.approx(w2, rel=1e-12)
    # zero modes: equal zeros contribute nothing; a one-sided zero makes KL infinite
    assert symsched.kl_divergence([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert symsched.kl_divergence([0.0, 1.0], [1.0, 1.0]) == np.inf
    assert symsched.w2_distance([0.0, 4.0], [1.0, 1.0]) == pytest.approx(np.sqrt(2.0))


def test_mp_path_is_independent_of_the_compiled_kernels() -> None:
    """The mpmath path evaluates the canonical expressions at 50 digits, beyond float64."""
    P = symsched.output_spectrum_mp([2.0], [0.3], sampler="ddim", init="exact", dps=50)[0]
    with mpmath.workdps(50):
        a = mpmath.mpf(0.3)  # the float64 level, exactly
        expected = a * 4 / (a * 2 + 1 - a)  # identity 1: a S^2 / (a S + 1 - a), at a level != 1/2
        assert abs(P - expected) < mpmath.mpf(10) ** -45


def test_eta_zero_and_ddpm_posterior_are_different_samplers() -> None:
    spec, ab = np.array([0.3, 3.0]), np.array([0.05, 0.5, 0.9])
    a = symsched.output_spectrum(spec, ab, sampler="ddim", eta=0.0)
    b = symsched.output_spectrum(spec, ab, sampler="ddpm")
    c = symsched.output_spectrum(spec, ab, sampler="ddim", eta=1.0)
    assert np.all(np.abs(a - b) > 1e-3)
    np.testing.assert_allclose(b, c, rtol=1e-13)  # DDPM(beta_tilde) == DDIM(eta=1), identity 2


_ = sp


@pytest.mark.parametrize("divergence", ["kl", "kl-reverse", "w2"])
@pytest.mark.parametrize("sampler,kw", [("deis_multistep", {}),
                                       ("dpmsolver_multistep", {"final_sigmas_type": "sigma_min"})])
def test_a_zero_weight_drops_a_mode_whose_term_is_infinite(divergence, sampler, kw) -> None:
    """gradient audit of 5 Dec: these samplers stop at sigma_min > 0, leaving an S = 0 mode noisy (P = 0.111 on
    these levels), whose KL term is +inf; with weight 0 that mode contributes nothing, but 0 * inf made the sum NaN
    and the call refused. Independent value: the same call without that mode."""
    ab = [0.1, 0.5, 0.9]
    got = symsched.divergence_and_grad([0.0, 1.0], ab, divergence=divergence, sampler=sampler, weights=[0.0, 1.0],
                                       **kw)
    want = symsched.divergence_and_grad([1.0], ab, divergence=divergence, sampler=sampler, **kw)
    assert got[0] == want[0] and np.array_equal(got[1], want[1])
    assert symsched.output_spectrum([0.0], ab, sampler=sampler, **kw)[0] > 0.1  # the dropped mode is really noisy


# -- samplers with memory on close levels: the gradient sweep keeps the value sweep's accuracy -----------------
def _w2_mp(spec: np.ndarray, lsnr: np.ndarray, **kw) -> float:
    """W2^2 of output_spectrum_mp (40 digits) on the levels of these log-SNRs: the reference, not the engine."""
    return _divergence_mp(spec, 1 / (1 + np.exp(-lsnr)), "w2", **kw)


@pytest.mark.parametrize("name,kw", [("dpmpp_2m", {}), ("dpmpp_2m_sde", {"eta": 1.0}), ("lms", {"order": 3}),
                                     ("dpmsolver_multistep", {}), ("unipc_multistep", {}),
                                     ("deis_multistep", {"lower_order_final": False})])
def test_memory_sampler_gradient_on_close_levels_matches_mpmath_differences(name: str, kw: dict) -> None:
    """Two levels 1e-3 apart in log-SNR, then a step of 2.5: the next multistep coefficients are ~h/h_prev = 1250.
    A forward covariance sweep C <- A C A^T squares that amplification of its rounding (1250^2 x 1e-16): DPM++ 2M's
    J came out 1.8e-10 relative off and two gradient entries 1.3e-5 (6e-5 relative; gradient audit, 5 Dec), while
    output_spectrum, summing squares backward, was 2e-13 off. LMS's own mode functions cancel here (6e-11 in J, 3e-5
    in a gradient entry, though its value was trusted): the gradient sweep then runs in longdouble.
    Reference: Richardson-extrapolated central differences (h = 1e-6 and 5e-7 in log-SNR, error O(h^4)) of
    output_spectrum_mp at 40 digits; the level rounding over 2h adds below 1e-9 relative to the largest entry."""
    spec = np.logspace(-3, 2, 7)
    lsnr = np.array([-4.0, -1.0, -0.999, 1.5, 4.0])
    ab = 1 / (1 + np.exp(-lsnr))
    J, g = symsched.divergence_and_grad(spec, ab, divergence="w2", sampler=name, wrt="log_snr", **kw)
    assert J == pytest.approx(_w2_mp(spec, lsnr, sampler=name, **kw), rel=1e-12)
    fd1, fd2 = (_fd(lambda l: _w2_mp(spec, l, sampler=name, **kw), lsnr, h) for h in (1e-6, 5e-7))
    fd = (4 * fd2 - fd1) / 3
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-7 * np.max(np.abs(fd)))


def _divergence_mp(spec: np.ndarray, ab: np.ndarray, divergence: str, **kw) -> float:
    """W2 / KL / reverse KL of output_spectrum_mp (40 digits) on these levels: the reference, not the engine."""
    with mpmath.workdps(40):
        total = mpmath.mpf(0)
        for s, p in zip(spec, symsched.output_spectrum_mp(spec, ab, dps=40, **kw)):
            s, p = mpmath.mpf(float(s)), mpmath.mpf(p)
            r = {"w2": None, "kl": s / p, "kl-reverse": p / s}[divergence]
            total += (mpmath.sqrt(p) - mpmath.sqrt(s)) ** 2 if r is None else (r - 1 - mpmath.log(r)) / 2
        return float(total)


#: audit of 5 December: two levels one float64 ulp apart (log-SNR gap ~1.5e-16) make the next multistep coefficients
#: ~1e16 with opposite signs; the longdouble probe sweep, the float64 sweep's reference, loses 16 of its 19 digits
#: to that cancellation too, and the two can agree on a wrong value (LMS: J 4.27e-6 where it is 8.25e-5)
ULP_APART = [
    ("lms", {}, [0.24533262173672032], [50.0], "exact", "w2"),
    ("unipc_multistep", {}, [0.4758979013693631, 0.95], [1000.0], "exact", "w2"),
    ("unipc_multistep", {}, [0.09962620579644438, 0.95], [50.0], "exact", "kl-reverse"),
    ("dpmsolver_multistep", {}, [0.021419673242045544, 0.95], [1.0], "white", "w2"),
    ("dpmpp_2m", {}, [0.07088457563213285, 0.95], [1.0], "white", "w2"),
]


@pytest.mark.parametrize("name,kw,levels,spec,init,divergence", ULP_APART)
def test_levels_one_ulp_apart_give_the_right_value_or_a_refusal(name, kw, levels, spec, init, divergence) -> None:
    """The value-and-gradient call returns the divergence of output_spectrum_mp (40 digits) or refuses; output_spectrum
    returns mpmath's spectrum (it falls back for few modes). The audit's values were 95 %, 98 %, 3.9 %, 3.3e-4 and
    1.9e-4 off, with no error."""
    ab = np.array([levels[0], np.nextafter(levels[0], 1.0), *levels[1:]])
    spec = np.array(spec)
    want = _divergence_mp(spec, ab, divergence, sampler=name, init=init, **kw)
    try:
        J, _ = symsched.divergence_and_grad(spec, ab, divergence=divergence, sampler=name, init=init, **kw)
    except ValueError as exc:
        assert "cancel" in str(exc)
    else:
        assert J == pytest.approx(want, rel=1e-9)
    P = symsched.output_spectrum(spec, ab, sampler=name, init=init, **kw)
    np.testing.assert_allclose(P, np.array(symsched.output_spectrum_mp(spec, ab, sampler=name, init=init, **kw),
                                           dtype=float), rtol=1e-9)


@pytest.mark.parametrize("name,kw", [("lms", {}), ("dpmpp_2m", {}), ("unipc_multistep", {}), ("dpmpp_3m_sde", {})])
def test_a_scan_of_ulp_apart_levels_never_returns_a_wrong_value(name, kw) -> None:
    """The audit's scan: 450 LMS two-level one-mode cases, 17 wrong values returned. Here 24 levels x 2 modes per
    sampler (fixed seed), ulp-adjacent first pair, then 0.95: each call is right to 1e-9 or refused."""
    rng = np.random.default_rng(20261205)
    for a in rng.uniform(0.02, 0.8, 24):
        ab = np.array([a, np.nextafter(a, 1.0), 0.95])
        spec = np.array([rng.choice([0.2, 1.0, 50.0, 1e3])])
        try:
            J, _ = symsched.divergence_and_grad(spec, ab, divergence="w2", sampler=name, init="exact", **kw)
        except ValueError as exc:
            assert "cancel" in str(exc)
            continue
        assert J == pytest.approx(_divergence_mp(spec, ab, "w2", sampler=name, init="exact", **kw), rel=1e-9), a


def test_lms_on_levels_sharing_one_float64_log_snr_is_refused_or_right() -> None:
    """Near-duplicate audit of 5 December: LMS order 3 with two middle levels one ulp apart (one float64 log-SNR)
    returned W2 1.3e26 for 9.1e5 (KL 58.8 for 1283, reverse KL 1.8e21 for 6.7) with gradients ~1e43: the float64
    sweep and the longdouble probe agreed exactly, so the check saw no error. Right to 1e-9 or refused."""
    ab = np.array([float.fromhex(h) for h in ["0x1.31ecbf2b01efap-11", "0x1.3db30f2b82572p-9",
                                              "0x1.3db30f2b82573p-9", "0x1.53cf5be1b0914p-3", "0x1.fe77320b2f6b0p-1"]])
    assert ab[2] == np.nextafter(ab[1], 1.0)
    spec = np.array([1.4625918554719593e-06, 16700.176714197376, 977427.7137231812])
    kw = dict(sampler="lms", order=3, init="white")
    for divergence in ("w2", "kl", "kl-reverse"):
        want = _divergence_mp(spec, ab, divergence, **kw)
        try:
            J, _ = symsched.divergence_and_grad(spec, ab, divergence=divergence, **kw)
        except ValueError as exc:
            assert "cancel" in str(exc)
        else:
            assert J == pytest.approx(want, rel=1e-9)


#: near-duplicate audit of 5 December: close levels, 128-256 modes (no mpmath fallback), a trusted result whose
#: unprobed modes were 1.7e-9 and 2.2e-9 off (the README promises 1e-9)
NEAR_PAIRS = [
    ("output_spectrum", "exact", ["0x1.c2535f5d46a61p-16", "0x1.c2535f60b66a1p-16", "0x1.7d59c2ab50c9fp-11",
                                  "0x1.51167688e6918p-9", "0x1.1c4913903af83p-4", "0x1.f0496afb5452ep-1"], 128),
    ("transfer_function", None, ["0x1.cf02e30b0b769p-13", "0x1.cf02e310ee3b2p-13", "0x1.f652cdb9fb200p-1"], 256),
]


@pytest.mark.parametrize("fn,init,levels,n", NEAR_PAIRS)
def test_a_trusted_result_on_close_levels_is_within_1e_9_at_every_mode(fn, init, levels, n) -> None:
    ab = np.array([float.fromhex(h) for h in levels])
    spec = np.logspace(-6, 6, n)
    kw = {} if init is None else {"init": init}
    try:
        got = getattr(symsched, fn)(spec, ab, sampler="dpmpp_2m", **kw)
    except ValueError as exc:
        assert "cancel" in str(exc)
        return
    want = np.array(getattr(symsched, fn + "_mp")(spec, ab, sampler="dpmpp_2m", dps=40, **kw), dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-9)
