"""Every bad-input rule raises a ValueError that names the argument and the rule."""

from __future__ import annotations

import numpy as np
import pytest

import symsched
from symsched._io import load_npy

AB = np.array([0.1, 0.5, 0.9])
SPEC = np.array([0.5, 1.0, 2.0])


@pytest.mark.parametrize(
    "spectrum,match",
    [
        ([0.5, -1.0], "spectrum must be non-negative"),
        ([0.5, np.nan], "spectrum must be finite"),
        ([0.5, np.inf], "spectrum must be finite"),
        ([], "spectrum must not be empty"),
        (["a", "b"], "spectrum must be an array of real numbers"),
    ],
)
def test_bad_spectrum(spectrum: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        symsched.output_spectrum(spectrum, AB)


@pytest.mark.parametrize(
    "alpha_bar,match",
    [
        ([0.5, 0.4], "alpha_bar must be strictly increasing"),
        ([0.5, 0.5], "alpha_bar must be strictly increasing"),
        ([0.5, 0.0], "alpha_bar must be strictly increasing"),
        ([0.5, 1.0], r"alpha_bar levels must lie in \[0, 1\)"),
        ([-0.1, 0.5], r"alpha_bar levels must lie in \[0, 1\)"),
        ([0.5, 1.5], r"alpha_bar levels must lie in \[0, 1\)"),
        ([0.1, np.nan], "alpha_bar must be finite"),
        ([[0.1, 0.2]], "alpha_bar must be 1-D"),
        ([], "alpha_bar must hold at least one level"),
    ],
)
def test_bad_alpha_bar(alpha_bar: list, match: str) -> None:
    for fn in (symsched.output_spectrum, symsched.transfer_function):
        with pytest.raises(ValueError, match=match):
            fn(SPEC, alpha_bar)
    with pytest.raises(ValueError, match=match):
        symsched.divergence_and_grad(SPEC, alpha_bar)


@pytest.mark.parametrize(
    "sigmas,match",
    [
        ([1.0, 2.0], "sigmas must be strictly decreasing"),
        ([2.0, 2.0], "sigmas must be strictly decreasing"),
        ([2.0, 0.0, 0.0], "sigmas must be positive"),
        ([2.0, -1.0], "sigmas must be positive"),
        ([2.0, np.inf], "only the first .noisiest. level may be inf"),
        ([np.nan, 1.0], r"sigmas must not be NaN \(sigmas\[0\] = nan\)"),
        ([], "sigmas must hold at least one level"),
    ],
)
def test_bad_sigmas(sigmas: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        symsched.output_spectrum_ve(SPEC, sigmas)


# the rule as the README and as_sigmas' docstring state it: strictly decreasing, positive; inf (zero terminal SNR)
# only as the first level. The NaN message said "must be finite (found NaN or inf)", though an inf first level is
# accepted: it states that rule now, and which entry broke it.
_SIGMA_RULE = "the levels are finite, except that the first (noisiest) level may be inf (zero terminal SNR)"


@pytest.mark.parametrize(
    "sigmas,message",
    [
        ([np.nan, 1.0], f"sigmas must not be NaN (sigmas[0] = nan); {_SIGMA_RULE}"),
        ([np.inf, np.nan], f"sigmas must not be NaN (sigmas[1] = nan); {_SIGMA_RULE}"),
        ([3.0, 2.0, np.nan, 0.0], f"sigmas must not be NaN (sigmas[2] = nan); {_SIGMA_RULE}"),
        ([2.0, np.inf], "sigmas: only the first (noisiest) level may be inf (zero terminal SNR; got sigmas[1] = inf)"),
        ([-np.inf, 1.0], "sigmas must be positive (the final step to sigma=0 is implicit; got min -inf)"),
    ],
)
def test_sigmas_messages_state_the_rule(sigmas: list, message: str) -> None:
    with pytest.raises(ValueError) as info:
        symsched.output_spectrum_ve(SPEC, sigmas)
    assert str(info.value) == message
    assert "found NaN or inf" not in str(info.value)


def test_an_inf_first_sigma_is_accepted_and_refused_where_inf_is_not_allowed() -> None:
    from symsched._validate import as_sigmas

    assert np.all(np.isfinite(symsched.output_spectrum_ve(SPEC, [np.inf, 1.0], sampler="euler_ancestral")))
    with pytest.raises(ValueError) as info:
        as_sigmas([np.inf, 1.0], allow_inf=False)
    assert str(info.value) == "sigmas must be finite (got sigmas[0] = inf)"
    with pytest.raises(ValueError) as info:
        as_sigmas([2.0, np.nan], allow_inf=False)
    assert str(info.value) == "sigmas must not be NaN (sigmas[1] = nan); the levels are finite"


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: symsched.output_spectrum(SPEC, [0.1, np.nan]), "alpha_bar must be finite (got alpha_bar[1] = nan)"),
        (lambda: symsched.output_spectrum(SPEC, [np.inf]), "alpha_bar must be finite (got alpha_bar[0] = inf)"),
        (lambda: symsched.output_spectrum([0.5, np.nan], AB), "spectrum must be finite (got spectrum[1] = nan)"),
        (lambda: symsched.output_spectrum([[0.5, 1.0], [2.0, -np.inf]], AB),
         "spectrum must be finite (got spectrum[1, 1] = -inf)"),
    ],
)
def test_non_finite_levels_and_spectra_name_the_entry(call, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sampler": "plms"}, "sampler must be one of"),
        ({"eta": -0.1}, r"eta must lie in \[0, 1\]"),
        ({"eta": 1.5}, r"eta must lie in \[0, 1\]"),
        ({"eta": float("nan")}, r"eta must lie in \[0, 1\]"),
        ({"sampler": "ddpm", "variance": "learned"}, "variance must be one of"),
        ({"sampler": "ddpm", "eta": 0.5}, "sampler 'ddpm' has no setting 'eta'"),
        ({"sampler": "euler", "order": 2}, "sampler 'euler' has no setting 'order'"),
        ({"init": "pink"}, "init must be one of"),
    ],
)
def test_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        symsched.output_spectrum(SPEC, AB, **kwargs)


def test_wrong_type_settings_are_type_errors() -> None:
    with pytest.raises(TypeError, match="eta must be a real number"):
        symsched.output_spectrum(SPEC, AB, eta="x")
    with pytest.raises(TypeError, match="eta must be a real number"):
        symsched.output_spectrum(SPEC, AB, eta=True)


def test_every_sampler_takes_every_level_coordinate() -> None:
    """A VE sampler given alpha_bar and a VP sampler given sigmas run the same steps (sigma^2 = (1-ab)/ab)."""
    sig = np.sqrt((1 - AB) / AB)
    for name in ("heun", "ddim"):
        a = symsched.output_spectrum(SPEC, AB, sampler=name)
        b = symsched.output_spectrum_ve(SPEC, sig, sampler=name)
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_bad_ve_options() -> None:
    with pytest.raises(ValueError, match="init must be one of"):
        symsched.output_spectrum_ve(SPEC, [2.0, 1.0], init="cold")


def test_bad_divergence_options() -> None:
    with pytest.raises(ValueError, match="divergence must be one of"):
        symsched.divergence_and_grad(SPEC, AB, divergence="tv")
    with pytest.raises(ValueError, match="wrt must be one of"):
        symsched.divergence_and_grad(SPEC, AB, wrt="sigma")
    with pytest.raises(ValueError, match="shape mismatch: weights"):
        symsched.divergence_and_grad(SPEC, AB, weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="weights must be non-negative"):
        symsched.divergence_and_grad(SPEC, AB, weights=[1.0, -2.0, 1.0])


def test_bad_divergence_arguments() -> None:
    with pytest.raises(ValueError, match="shape mismatch: p has shape"):
        symsched.kl_divergence([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="q must be non-negative"):
        symsched.w2_distance([1.0], [-1.0])


def test_load_npy_refuses_pickles_and_missing_files(tmp_path) -> None:
    obj = np.array([{"a": 1}], dtype=object)
    path = tmp_path / "evil.npy"
    np.save(path, obj, allow_pickle=True)
    with pytest.raises(ValueError, match="not a plain numeric .npy array"):
        load_npy(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_npy(tmp_path / "missing.npy")


def test_negative_zero_is_a_valid_zero_mode() -> None:
    P = symsched.output_spectrum([-0.0, 1.0], AB)
    assert P[0] == 0.0 and not np.signbit(P[0])


def test_step_counts_one_rule_for_sweep_and_explain() -> None:
    from symsched._validate import ArgumentTypeError, as_step_counts

    assert as_step_counts(7) == [7] and as_step_counts(np.int64(3)) == [3]
    assert as_step_counts((20, 5, 10)) == [20, 5, 10]  # the caller's order
    assert as_step_counts(np.array(3)) == [3] and as_step_counts([np.int32(5)]) == [5]
    for bad, kind, needle in [("5", ArgumentTypeError, "steps must be a positive integer or a sequence"),
                              (2.5, ValueError, "steps must be"), ([True], ArgumentTypeError, "steps entries"),
                              (5.0, ArgumentTypeError, "steps must be a positive integer, not a float"),
                              ([5.0], ArgumentTypeError, "steps entries must be a positive integer, not a float"),
                              ({3: 1}, ArgumentTypeError, "sequence"), ({3, 5}, ArgumentTypeError, "sequence"),
                              (np.array(0), ValueError, "steps must be a positive integer"),
                              ([5, 0], ValueError, "steps entries"), ([], ValueError, "must not be empty"),
                              ([5, 5], ValueError, "must not repeat")]:
        with pytest.raises(kind, match=needle):
            as_step_counts(bad)


def test_sweep_and_explain_refuse_the_same_step_lists(tmp_path) -> None:
    from symsched.insight import explain, sweep

    S = np.array([0.5, 2.0])
    for bad, needle in [("10", "steps must be"), ([4, 4], "must not repeat"), ([2.5], "steps entries"),
                        ({4: 1}, "steps must be a positive integer or a sequence")]:
        with pytest.raises(ValueError, match=needle):
            sweep([S], bad)
        with pytest.raises(ValueError, match=needle):
            explain(S, out=tmp_path / "x", steps=bad, progress=False)


def test_a_longdouble_level_that_rounds_to_one_is_named_as_such() -> None:
    """Fuzz audit of 5 December: alpha_bar = 1 - 2^-60 in longdouble (below 1) was refused as "levels must lie in
    [0, 1) (got min 1, max 1)", which says the caller passed 1. The message now says the level rounds to 1 in
    float64; a longdouble level that stays below 1 is taken as its float64 value."""
    near = np.longdouble(1) - np.longdouble(2) ** -60
    assert near < 1
    for ab in (np.array([near]), np.array([np.longdouble("0.5"), near])):
        with pytest.raises(ValueError, match=r"^alpha_bar holds levels below 1 that round to 1 in float64 "
                                             r"\(e.g. 1 - 8.67e-19\)"):
            symsched.output_spectrum([1.0], ab)
    with pytest.raises(ValueError, match=r"levels must lie in \[0, 1\) \(got min 0.5, max 1\)"):
        symsched.output_spectrum([1.0], np.array([0.5, 1.0]))  # a float64 1 is the caller's 1
    ok = np.array([np.longdouble("0.5"), np.longdouble(1) - np.longdouble(2) ** -40])
    np.testing.assert_array_equal(symsched.output_spectrum([1.0], ok),
                                  symsched.output_spectrum([1.0], ok.astype(np.float64)))


def test_a_longdouble_value_that_rounds_to_one_is_refused_by_every_unit_interval_conversion() -> None:
    """Break-test of 7 December: alpha_bar = 1 - 1e-19 in longdouble (log-SNR 43.75, sigma 3.2e-10) gave
    alpha_bar_to_log_snr inf, alpha_bar_to_sigmas 0; flow time t = 1 - 1e-19 (alpha_bar 1e-38) gave
    flow_t_to_alpha_bar 0, pure noise; beta = 1 - 1e-19 became the zero-terminal-SNR beta: the far end, silently.
    Each is refused, naming the argument; longdouble values that stay off 1 convert as their float64 copies (the
    companion)."""
    from symsched import schedules as sc

    near = np.longdouble(1) - np.longdouble("1e-19")
    assert near < 1
    cases = [(f, "alpha_bar") for f in (sc.alpha_bar_to_log_snr, sc.alpha_bar_to_sigmas, sc.alpha_bar_to_flow_t)]
    cases += [(f, "t") for f in (sc.flow_t_to_alpha_bar, sc.flow_t_to_sigmas, sc.flow_t_to_log_snr)]
    cases += [(lambda v: sc.sd3_time_shift(v, 3.0), "t"),
              (lambda v: sc.betas_to_alpha_bar(np.array([np.longdouble("0.1"), v])), "betas"),
              (lambda v: sc.from_grid(np.array([v, np.longdouble("0.5")]), [1]), "grid_alpha_bar")]
    for f, name in cases:
        with pytest.raises(ValueError, match=rf"^{name} holds \w+ below 1 that round to 1 in float64 "
                                             r"\(e.g. 1 - 1.08e-19\)"):
            f(np.array([near]) if name in ("alpha_bar", "t") else near)
    above = np.longdouble(1) + np.longdouble("1e-19")
    with pytest.raises(ValueError, match=r"^t holds values above 1 that round to 1 in float64"):
        sc.flow_t_to_alpha_bar(np.array([above]))
    ok = np.array([np.longdouble("0.25"), np.longdouble(1) - np.longdouble(2) ** -40, np.longdouble(1)])
    for f in (sc.alpha_bar_to_log_snr, sc.flow_t_to_alpha_bar, sc.flow_t_to_log_snr):
        np.testing.assert_array_equal(f(ok), f(ok.astype(np.float64)))


def test_longdouble_values_below_float64_are_refused_not_zeroed() -> None:
    """Break-test H: a positive longdouble mode of 1e-4000 silently became a zero mode (while 1e4000 was refused)."""
    tiny = np.array([np.longdouble("1e-4000"), 1.0], dtype=np.longdouble)
    with pytest.raises(ValueError, match="spectrum holds non-zero values below the float64 range"):
        symsched.output_spectrum(tiny, [0.1, 0.5])
    with pytest.raises(ValueError, match=r"^spectrum holds finite values beyond the float64 range \(e.g. 1e\+4000\)"):
        symsched.output_spectrum(np.array([np.longdouble("1e4000"), 1.0], dtype=np.longdouble), [0.1, 0.5])
    # break-test: a finite sigma of 1e400 became inf (pure noise) and the transfer ran
    with pytest.raises(ValueError, match=r"^sigmas holds finite values beyond the float64 range"):
        symsched.output_spectrum_ve([1.0, 2.0], np.array([np.longdouble("1e400"), 1.0], dtype=np.longdouble))
    ok = np.array([1e-300, 0.0, 1.0], dtype=np.longdouble)
    np.testing.assert_array_equal(symsched.output_spectrum(ok, [0.1, 0.5]),
                                  symsched.output_spectrum(ok.astype(np.float64), [0.1, 0.5]))


# break-test (7 December): an ascending k-diffusion array was blamed on its 0 ("must be positive ... got min 0")
# though the fault is its order, and a second trailing 0 was blamed on the rule that accepts one.
@pytest.mark.parametrize(
    "sigmas,message",
    [
        ([0.0, 0.1, 1.0, 10.0], "sigmas must be strictly decreasing (noisiest first): sigmas[0]=0.0 <= sigmas[1]=0.1"),
        ([10.0, 1.0, 0.0, 0.0], "sigmas must be positive, except the last entry, which may be 0 (k-diffusion's end): "
                                "the final step to sigma=0 is implicit (got sigmas[2] = 0.0)"),
        ([10.0, -1.0, 0.0], "sigmas must be positive (the final step to sigma=0 is implicit; got min -1)"),
    ],
)
def test_sigma_messages_blame_the_order_before_a_zero(sigmas: list, message: str) -> None:
    from symsched.export import from_k_diffusion_sigmas

    for call in (lambda: from_k_diffusion_sigmas(sigmas), lambda: symsched.output_spectrum_ve(SPEC, sigmas)):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message
