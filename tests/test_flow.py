"""Flow matching (issue 11): x_t = (1 - t) x0 + t eps, the flow samplers, schedules, and diffusers as witness.

* SymPy proof that flow Euler (diffusers ``FlowMatchEulerDiscreteScheduler.step``) is DDIM eta = 0 under
  the map alpha_bar = (1 - t)^2 / ((1 - t)^2 + t^2);
* the flow schedules against diffusers' own ``set_timesteps`` and formulas written here from its source;
* noise-free gain probes of diffusers' FlowMatchEuler / FlowMatchHeun schedulers driven by the exact
  velocity (written here from the definitions) against :func:`symsched.transfer_function`;
* a Monte Carlo witness of ``FlowMatchEulerDiscreteScheduler(shift=3.0)`` at K = 10 (exact chi^2 z-scores,
  family-wise false alarm <= 1e-4) and its power test rejecting a wrong formula.
"""

from __future__ import annotations

import numpy as np
import pytest

import symsched
from symsched import schedules as sch
from symsched.export import from_diffusers, to_diffusers

from mc_helpers import assert_psd_matches, assert_psd_rejects

ALPHA = 1e-4  # family-wise false-alarm probability of each Monte Carlo check below


# ---------------------------------------------------------------------------------------------
# the symbolic equivalence
# ---------------------------------------------------------------------------------------------
def test_flow_euler_is_ddim_eta0_under_the_map_sympy() -> None:
    """A_flow(t, u) n(t)/n(u) == A_ddim(ab(t), ab(u)), n(t) = sqrt((1-t)^2 + t^2) = 1/(c + s), for every S.

    t = p/(1+p), u = q/(1+q) with VE noises p > q > 0 (so 1 - t > 0 is known to SymPy); the sample moves
    to the VP scale as x_vp = x_flow / n(t).
    """
    import sympy as sp

    from symsched.symbolic import get_sampler
    from symsched.symbolic.symbols import S, alpha_bar_s, alpha_bar_t, eta, slot_level

    flow = get_sampler("flow_match_euler").kinds["step"].matrices[0][0, 0]
    ddim = get_sampler("ddim").kinds["step"].matrices[0][0, 0].subs(eta, 0)
    p, q = sp.symbols("p q", positive=True)
    t_sym, u_sym = slot_level("flow", 0), slot_level("flow", 1)
    t, u = p / (1 + p), q / (1 + q)

    def n(x):
        return sp.sqrt((1 - x) ** 2 + x**2)

    lhs = flow.subs({t_sym: t, u_sym: u}) * n(t) / n(u)
    rhs = ddim.subs({alpha_bar_t: (1 - t) ** 2 / n(t) ** 2, alpha_bar_s: (1 - u) ** 2 / n(u) ** 2})
    assert sp.simplify(sp.radsimp(lhs - rhs)) == 0
    assert S in flow.free_symbols  # a real gain, not a constant


def test_flow_euler_equals_ddim_numerically_and_in_latex() -> None:
    S = np.geomspace(1e-4, 1e4, 9)
    ab = sch.flow_schedule("flow-sd3", 10)
    np.testing.assert_allclose(symsched.output_spectrum(S, ab, sampler="flow_match_euler"),
                               symsched.output_spectrum(S, ab, sampler="ddim", init="white"), rtol=1e-12)
    from symsched.symbolic import get_sampler

    assert "DDIM with $\\eta = 0$" in get_sampler("flow_match_euler").description


# ---------------------------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------------------------
def test_flow_schedules_from_their_formulas() -> None:
    K = 8
    np.testing.assert_array_equal(sch.uniform_flow_t(K), 1 - np.arange(K) / K)

    def shift(t, s):  # diffusers: shift * sigmas / (1 + (shift - 1) * sigmas)
        return s * t / (1 + (s - 1) * t)

    ref = shift(np.linspace(1.0, shift(1 / 1000, 3.0), K), 3.0)
    np.testing.assert_allclose(sch.flow_match_t(K, shift=3.0), ref, rtol=1e-15)
    mu = 0.5 + (1.15 - 0.5) / (4096 - 256) * (1024 - 256)  # calculate_shift at 1024 tokens (512 x 512)
    ref = np.exp(mu) / (np.exp(mu) + (1 / np.linspace(1.0, 1 / K, K) - 1))
    np.testing.assert_allclose(sch.flux_t(K, image_seq_len=sch.flux_image_seq_len(512, 512)), ref, rtol=1e-15)
    assert sch.flow_schedule("flow-uniform", K)[0] == 0.0
    assert sch.flow_schedule("flow-sd3", K)[0] == 0.0 and sch.flow_schedule("flow-flux", K)[0] == 0.0
    with pytest.raises(ValueError, match="exactly one of mu and image_seq_len"):
        sch.flux_t(K)


SHIFTS = [1e-300, 1e-17, 1e-3, 1.0, 3.0, 1e17, 1e300]
TIMES = [0.0, 5e-324, 1e-300, 1e-17, 1e-3, 0.5, 1 - 1e-3, 1 - 1e-15, float(np.nextafter(1.0, 0.0)), 1.0]


def _close_to_mp(got: float, ref, rtol: float = 4e-16) -> bool:
    """got == float(ref) to a few ulps; below the normal range (subnormal or 0) to 1e-323 absolute."""
    from mpmath import mpf

    ref = mpf(ref)
    if ref < mpf(2.2250738585072014e-308):
        return abs(mpf(got) - ref) <= mpf(1e-323)
    return abs(mpf(got) - ref) <= rtol * ref


def test_sd3_time_shift_matches_mpmath_at_extreme_shifts() -> None:
    """t' = s t / (1 + (s - 1) t) at 700 digits (the textbook form, exact there): no inf, no t' > 1, t = 0 -> 0 and
    t = 1 -> 1 exactly. s = 1e-17 used to give inf at t = 1 (and s = 1e-15 gave 1.0008): 1 + (s - 1) t cancels.
    """
    import warnings

    from mpmath import mp, mpf

    with mp.workdps(700):
        t = np.array(TIMES)
        for s in SHIFTS:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = sch.sd3_time_shift(t, s)
            assert np.all((got >= 0) & (got <= 1)), (s, got)
            assert got[0] == 0.0 and got[-1] == 1.0
            for ti, gi in zip(TIMES, got):
                ref = mpf(s) * mpf(ti) / (1 + (mpf(s) - 1) * mpf(ti))
                assert _close_to_mp(gi, ref), (s, ti, gi, ref)
        assert sch.sd3_time_shift(np.array([1.0]), 1e-17)[0] == 1.0


def test_flow_match_t_tiny_and_huge_shifts() -> None:
    """diffusers' recipe shift(linspace(1, shift(1/T), K)) at 700 digits; shifts that merge levels name ``shift``."""
    from mpmath import mp, mpf

    with mp.workdps(700):

        def shift(t, s):
            return s * t / (1 + (s - 1) * t)

        for s in (1e-17, 1e-15, 1e-6, 1e6):
            got = sch.flow_match_t(3, shift=s)
            t_min = shift(mpf(1) / 1000, mpf(s))
            grid = np.linspace(1.0, float(t_min), 3)  # diffusers' linspace of float64 end points
            assert got[0] == 1.0 and np.all(np.diff(got) < 0) and got[-1] > 0
            for gi, ti in zip(got, grid):
                assert _close_to_mp(gi, shift(mpf(float(ti)), mpf(s)), rtol=1e-15), (s, gi)
        for s in (1e-300, 1e17, 1e300):  # t' underflows to 0 or rounds to 1 = t'[0]
            with pytest.raises(ValueError, match=r"flow_match_t\(K=3, shift=.*not distinct; shift must be closer to 1"):
                sch.flow_match_t(3, shift=s)


@pytest.mark.parametrize("mu", [-1e6, -800.0, -744.0, -740.0, -708.0, -700.0, -30.0, 0.0, 1.15, 30.0, 36.0, 700.0, 709.0, 800.0, 1e6])
@pytest.mark.parametrize("K", [1, 2, 5])
def test_flux_t_extreme_mu_against_mpmath(mu: float, K: int) -> None:
    """e^mu / (e^mu + 1/t - 1) at 60 digits. Where the float64 values are distinct levels in (0, 1] they are
    returned (to a few ulps); otherwise a ValueError names ``mu`` (mu = 1e6 used to raise OverflowError,
    mu = -1e6 a message about ``shift``)."""
    from mpmath import exp, mp, mpf

    with mp.workdps(60):
        ts = np.linspace(1.0, 1.0 / K, K)
        ref = [exp(mpf(mu)) / (exp(mpf(mu)) + (1 / mpf(float(t)) - 1)) for t in ts]
        as_f64 = np.array([float(r) for r in ref])
        if np.all(as_f64 > 0) and np.all(np.diff(as_f64) < 0):
            got = sch.flux_t(K, mu=mu)
            assert all(_close_to_mp(g, r, rtol=1e-15) for g, r in zip(got, ref)), (got, as_f64)
        else:
            with pytest.raises(ValueError, match=rf"flux_t\(K={K}, mu=.*mu must be closer to 0"):
                sch.flux_t(K, mu=mu)


def test_flow_schedule_names_the_shift_that_breaks_it() -> None:
    with pytest.raises(ValueError, match=r"flow_schedule\('flow-flux', 5\) with mu=-700: .*rounds to 1"):
        sch.flow_schedule("flow-flux", 5, mu=-700.0)  # t ~ 1e-304: alpha_bar = 1 - t^2/... rounds to 1
    with pytest.raises(ValueError, match=r"flux_t\(K=5, mu=1e\+06\)"):
        sch.flow_schedule("flow-flux", 5, mu=1e6)


def test_flow_export_undoes_extreme_static_shifts() -> None:
    """to_diffusers(..., FlowMatchEulerDiscreteScheduler(shift=s)) inverts diffusers' shift without cancelling:
    t = t' / (s - (s - 1) t') at 700 digits (it used to divide by s - (s - 1) = 0 at t' = 1 for s = 1e17)."""
    from mpmath import mp, mpf

    with mp.workdps(700):
        d = _diffusers()
        ab = sch.flow_schedule("flow-uniform", 6)
        t = sch.alpha_bar_to_flow_t(ab)
        for s in (0.25, 3.0, 1e17):
            got = to_diffusers(ab, scheduler=d.FlowMatchEulerDiscreteScheduler(shift=s))["sigmas"]
            for gi, ti in zip(got, t):
                ref = mpf(float(ti)) / (mpf(s) - (mpf(s) - 1) * mpf(float(ti)))
                assert _close_to_mp(gi, ref, rtol=1e-15), (s, ti, gi)
        # s = 1e-8: the inverted times 1 - O(1e-8) are distinct in float64 but all 1.0 in the float32 diffusers casts
        # them to, where its shift divides by 1 + (s - 1) * 1.0 = 0 (sigmas inf: diffusers 0.42): refused
        with pytest.raises(ValueError, match="same flow time 1.0 in float32"):
            to_diffusers(ab, scheduler=d.FlowMatchEulerDiscreteScheduler(shift=1e-8))
        # s = 1e-17: every inverted time is 1 - O(1e-17), i.e. 1.0 in float64 (at 700 digits too): no schedule
        # diffusers could run (it re-shifts six equal sigmas into zero steps), refused rather than exported
        assert {float(mpf(float(ti)) / (mpf(1e-17) - (mpf(1e-17) - 1) * mpf(float(ti)))) for ti in t} == {1.0}
        with pytest.raises(ValueError, match="same flow time"):
            to_diffusers(ab, scheduler=d.FlowMatchEulerDiscreteScheduler(shift=1e-17))
        sched = d.FlowMatchEulerDiscreteScheduler(shift=0.25)  # diffusers re-applies its shift: back to t
        sched.set_timesteps(**to_diffusers(ab, scheduler=sched))
        np.testing.assert_allclose(sched.sigmas[:-1].double().numpy(), t, rtol=3e-7, atol=0)


def test_families_use_the_one_source() -> None:
    from symsched.insight import families

    assert families.flux_mu is sch.flux_mu and families.sd3_time_shift is sch.sd3_time_shift
    assert families.FLUX_DEFAULTS is sch.FLUX_DEFAULTS


# ---------------------------------------------------------------------------------------------
# diffusers: import / export and gain probes
# ---------------------------------------------------------------------------------------------
diffusers_mark = [pytest.mark.diffusers,
                  pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


def _diffusers():
    pytest.importorskip("torch")
    return pytest.importorskip("diffusers")


def velocity(x, S, t):
    """The exact flow-matching model output v_hat = E[eps - x0 | x_t] for x_t = (1-t) x0 + t eps, per mode."""
    import torch

    S_t = torch.as_tensor(S, dtype=torch.float64)
    lam = (1 - t) ** 2 * S_t + t**2
    x0_hat = (1 - t) * S_t / lam * x.to(torch.float64)
    eps_hat = t / lam * x.to(torch.float64)
    return eps_hat - x0_hat


def run_flow(scheduler, S, x):
    """diffusers' loop: the model at the level ``scheduler.sigmas[step_index]`` of each call (Heun's 2nd call:
    the predictor at sigma_next, which diffusers stores at that index)."""
    for i, tstep in enumerate(scheduler.timesteps):
        t = float(scheduler.sigmas[i])
        out = velocity(x, S, t).to(x.dtype)
        x = scheduler.step(out, tstep, x).prev_sample
    return x.to(__import__("torch").float64).numpy()


@pytest.mark.parametrize("cls,shift", [("FlowMatchEulerDiscreteScheduler", 3.0),
                                       ("FlowMatchEulerDiscreteScheduler", 1.0),
                                       ("FlowMatchHeunDiscreteScheduler", 3.0)])
@pytest.mark.parametrize("K", [4, 10])
def test_gain_probe_matches_diffusers(cls: str, shift: float, K: int) -> None:
    d = _diffusers()
    import torch

    sched = getattr(d, cls)(shift=shift)
    sched.set_timesteps(K)
    info = from_diffusers(sched)
    assert info.sampler == ("flow_match_heun" if "Heun" in cls else "flow_match_euler")
    assert info.alpha_bar[0] == 0.0 and len(info.alpha_bar) == K
    S = np.geomspace(1e-3, 1e3, 13)
    H_lib = run_flow(sched, S, torch.ones((1, S.size), dtype=torch.float32))[0]
    H = info.transfer_function(S)
    # diffusers' step works in float32 whatever the sample's dtype (``sample.to(torch.float32)``): K steps of
    # float32 round-off on top of the float32 levels that from_diffusers read
    np.testing.assert_allclose(H_lib, H, rtol=5e-5, atol=5e-6)


def test_export_round_trip_through_set_timesteps() -> None:
    d = _diffusers()
    ab = sch.flow_schedule("flow-flux", 10)
    t = sch.alpha_bar_to_flow_t(ab)
    for kw in ({}, {"shift": 3.0}, {"use_dynamic_shifting": True},
               {"use_dynamic_shifting": True, "time_shift_type": "linear"}):  # break-test 44 F1: refused before
        s = d.FlowMatchEulerDiscreteScheduler(**kw)
        args = to_diffusers(ab, scheduler=s)
        s.set_timesteps(**args)
        np.testing.assert_allclose(s.sigmas[:-1].double().numpy(), t, rtol=3e-7, atol=0)
        assert float(s.sigmas[-1]) == 0.0
    assert to_diffusers(ab, scheduler="flow_match_euler")["sigmas"][0] == 1.0
    for name in ("FlowMatchHeunDiscreteScheduler", "flow_match_heun"):  # (review: the sampler name was unknown)
        with pytest.raises(ValueError, match="FlowMatchHeunDiscreteScheduler.set_timesteps takes no custom schedule"):
            to_diffusers(ab, scheduler=name)
    with pytest.raises(ValueError, match=r"or a flow-matching sampler name \(flow_match_euler, flow_match_heun\) "
                                         r"\(got ddim\)"):
        to_diffusers(ab, scheduler="ddim")


def test_export_dynamic_shift_passes_the_identity_mu_of_each_shift_type() -> None:
    """diffusers' time shifts: exponential ``e^mu / (e^mu + 1/t - 1)`` (identity mu = 0), linear
    ``mu / (mu + (1/t - 1))`` (identity mu = 1); the identity evaluated here, not taken from the exporter."""
    import math

    def stand_in(kind: str) -> object:  # diffusers-free: the exporter reads only the class name and config
        cfg = {"use_dynamic_shifting": True, "time_shift_type": kind}
        return type("FlowMatchEulerDiscreteScheduler", (), {"config": cfg})()

    ab = sch.flow_schedule("flow-uniform", 5)
    t = sch.alpha_bar_to_flow_t(ab)
    shifts = {"exponential": lambda mu, t: math.exp(mu) / (math.exp(mu) + 1 / t - 1),
              "linear": lambda mu, t: mu / (mu + (1 / t - 1))}
    for kind, shift in shifts.items():
        out = to_diffusers(ab, scheduler=stand_in(kind))
        np.testing.assert_allclose([shift(out["mu"], float(v)) for v in out["sigmas"]], t, rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="time_shift_type='quadratic' is not modelled"):
        to_diffusers(ab, scheduler=stand_in("quadratic"))


@pytest.mark.parametrize("key", ["stochastic_sampling", "shift_terminal", "use_karras_sigmas", "invert_sigmas"])
def test_export_refuses_flow_schedulers_that_do_not_run_the_schedule(key: str) -> None:
    """break-test: stochastic_sampling=True was exported silently, though from_diffusers refuses that scheduler (it
    re-noises every step); the options that rewrite the sigmas were already refused."""
    cfg = {key: 0.5 if key == "shift_terminal" else True}
    stand_in = type("FlowMatchEulerDiscreteScheduler", (), {"config": cfg})()
    with pytest.raises(ValueError, match=f"FlowMatchEulerDiscreteScheduler with {key}="):
        to_diffusers(sch.flow_schedule("flow-uniform", 5), scheduler=stand_in)
    plain = type("FlowMatchEulerDiscreteScheduler", (), {"config": {key: False}})()
    assert len(to_diffusers(sch.flow_schedule("flow-uniform", 5), scheduler=plain)["sigmas"]) == 5


def test_diffusers_schedules_are_the_named_ones() -> None:
    d = _diffusers()
    s = d.FlowMatchEulerDiscreteScheduler(shift=3.0)
    s.set_timesteps(10)
    np.testing.assert_allclose(s.sigmas[:-1].double().numpy(), sch.flow_match_t(10, shift=3.0), rtol=1e-6)
    f = d.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    mu = float(sch.flux_mu(4096))
    f.set_timesteps(sigmas=np.linspace(1.0, 1 / 10, 10), mu=mu)  # what FluxPipeline passes
    np.testing.assert_allclose(f.sigmas[:-1].double().numpy(), sch.flux_t(10, mu=mu), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Monte Carlo witness: FlowMatchEulerDiscreteScheduler(shift=3.0), K = 10
# ---------------------------------------------------------------------------------------------
S_MC = np.geomspace(1e-2, 1e2, 6)
N_MC = 4000


def test_flow_match_euler_shift3_monte_carlo() -> None:
    """Output variance per mode from diffusers' own loop (randn start, exact velocity) vs output_spectrum.

    n = 4000 samples per mode, 6 independent modes: ``n var_hat / P ~ chi2_n`` exactly; every |z| <=
    Phi^-1(1 - 1e-4 / 12) gives family-wise false alarm <= 1e-4. The power test shows the same check rejects
    the closed form of the *unshifted* schedule (a wrong formula for what diffusers runs).
    """
    d = _diffusers()
    import torch

    sched = d.FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(10)
    info = from_diffusers(sched)
    g = torch.Generator().manual_seed(11)
    x = torch.randn((N_MC, S_MC.size), generator=g, dtype=torch.float64)
    out = run_flow(sched, S_MC, x)
    psd = np.mean(out**2, axis=0)
    P = symsched.output_spectrum(S_MC, info.alpha_bar, sampler="flow_match_euler")
    # (from_diffusers reads the flow times through sigma = t/(1 - t), which keeps digits alpha_bar loses near t = 0)
    np.testing.assert_allclose(P, info.output_spectrum(S_MC), rtol=1e-12)
    assert_psd_matches(psd, P, N_MC, alpha=ALPHA, axes=(), what="FlowMatchEuler shift=3")
    wrong = symsched.output_spectrum(S_MC, sch.flow_schedule("flow-uniform", 10), sampler="flow_match_euler")
    assert_psd_rejects(psd, wrong, N_MC, alpha=ALPHA, axes=(), what="unshifted schedule")


for _name in ("test_gain_probe_matches_diffusers", "test_export_round_trip_through_set_timesteps",
              "test_diffusers_schedules_are_the_named_ones", "test_flow_match_euler_shift3_monte_carlo"):
    for _m in diffusers_mark:
        globals()[_name] = _m(globals()[_name])


@pytest.mark.parametrize(
    "name, kw, exc, needle",
    [
        ("flow-flux", {"shift": True}, TypeError, "shift"),
        ("flow-flux", {"shift": float("nan")}, ValueError, "shift"),
        ("flow-uniform", {"shift": -1.0}, ValueError, "shift"),
        ("flow-sd3", {"mu": float("inf")}, ValueError, "mu applies to 'flow-flux' only"),
        ("flow-uniform", {"mu": 1.0}, ValueError, "mu applies to 'flow-flux' only"),
        ("flow-sd3", {"image_seq_len": -1}, ValueError, "image_seq_len"),
    ],
)
def test_flow_schedule_checks_arguments_its_schedule_does_not_use(name, kw, exc, needle) -> None:
    """An argument the named schedule ignores is still checked, never silently dropped."""
    with pytest.raises(exc, match=needle):
        sch.flow_schedule(name, 5, **kw)


@pytest.mark.diffusers
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize("cls", ["FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler"])
def test_from_diffusers_reads_a_first_flow_time_rounded_above_one(cls) -> None:
    """break-test E: diffusers' float32 shift puts t = 1 at 1.0000006 for shift = 0.2; that schedule (and a symsched
    export read back) is read as pure noise, not refused; a first time clearly above 1 still is."""
    d = _diffusers()  # skips without torch / diffusers (before torch is imported)
    import torch

    for shift in (0.01, 0.08, 0.2, 0.3, 3.0):  # t0 = 1.0000954, 1.000003, 1.0000006, 1, 1
        sched = getattr(d, cls)(shift=shift)
        sched.set_timesteps(10)
        got = from_diffusers(sched)
        assert got.alpha_bar[0] == 0.0 and got.sampler.startswith("flow_match")
        assert (float(sched.sigmas[0]) > 1.0) == any("float32 rounding" in n for n in got.notes)
    if cls == "FlowMatchEulerDiscreteScheduler":  # Heun's set_timesteps takes no custom sigmas
        ab = sch.flow_schedule("flow-uniform", 6)
        sched = getattr(d, cls)(shift=0.2)
        sched.set_timesteps(**to_diffusers(ab, scheduler=sched))
        np.testing.assert_allclose(from_diffusers(sched).alpha_bar[1:], ab[1:], rtol=3e-6)
    sched.sigmas = torch.cat((torch.tensor([1.01]), sched.sigmas[1:]))
    with pytest.raises(ValueError, match=r"sigmas must be flow times strictly decreasing in \(0, 1\]"):
        from_diffusers(sched)


@pytest.mark.diffusers
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")  # diffusers' own 0 / 0
def test_from_diffusers_names_nan_sigmas_that_diffusers_built() -> None:
    """break-test: FlowMatchEulerDiscreteScheduler(shift=3, shift_terminal=0.1) with one step builds NaN sigmas
    (0 / 0 in stretch_shift_to_terminal); the refusal said only "t must lie in [0, 1] (got min nan)"."""
    d = _diffusers()
    sched = d.FlowMatchEulerDiscreteScheduler(shift=3.0, shift_terminal=0.1)
    sched.set_timesteps(1)
    assert np.isnan(sched.sigmas.numpy()).any()  # diffusers' own behaviour: what makes this case
    with pytest.raises(ValueError, match=r"^scheduler: scheduler\.sigmas holds NaN at index 0, as diffusers computed"):
        from_diffusers(sched)
    sched.set_timesteps(4)  # the same configuration with more steps reads as before
    assert from_diffusers(sched).alpha_bar.size == 4


@pytest.mark.diffusers
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_from_diffusers_notes_flow_timesteps_that_are_not_the_sigmas_levels() -> None:
    """audit 5 Dec: FlowMatchEulerDiscreteScheduler(shift=3).set_timesteps(timesteps=[1000, 750, 500, 250]) keeps the
    timesteps (the model's conditioning, t = timestep / 1000) but shifts the sigmas the update uses to [1, 0.9, 0.75,
    0.5]: a model conditioned on its timestep denoises elsewhere (about 3x the predicted P at S = 1 in that run). The
    reader notes it, as its VP readers do; the schedulers diffusers builds from a step count are not noted."""
    d = _diffusers()
    sched = d.FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(timesteps=[1000.0, 750.0, 500.0, 250.0])
    np.testing.assert_allclose(sched.sigmas.numpy()[:4], [1.0, 0.9, 0.75, 0.5], rtol=1e-6)  # diffusers' own shift
    notes = [n for n in from_diffusers(sched).notes if "timesteps whose training levels" in n]
    assert len(notes) == 1 and "by up to 0.5 relative" in notes[0] and "treat it as approximate" in notes[0]
    for cls, kw in (("FlowMatchEulerDiscreteScheduler", dict(shift=3.0)), ("FlowMatchHeunDiscreteScheduler",
                    dict(shift=3.0)), ("FlowMatchEulerDiscreteScheduler", dict(use_dynamic_shifting=True))):
        sched = getattr(d, cls)(**kw)
        sched.set_timesteps(6, **({"mu": 1.15} if "use_dynamic_shifting" in kw else {}))
        assert not any("timesteps whose training levels" in n for n in from_diffusers(sched).notes), (cls, kw)


def test_flow_conversions_keep_full_precision_near_one_half_and_one() -> None:
    """Fuzz audit of 5 December: flow_t_to_log_snr was 2 (log1p(-t) - log t), which cancels near t = 1/2
    (-4.084675321758269e-06 at t = 0.5000005105844152 where the value is -4.084675321537644e-06: 5.4e-11 relative,
    ~2.6e5 ulps), and flow_t_to_alpha_bar went through that log-SNR (87 ulps at t = 1 - 2.4e-15). Both within 4 ulps
    of mpmath (40 digits) on t near 1/2 from either side, near 1, near 0 and at the audit's points."""
    from mpmath import log, mp, mpf

    ts = np.concatenate([0.5 + np.logspace(-16, -1, 60), 0.5 - np.logspace(-16, -1, 60), 1 - np.logspace(-16, -1, 60),
                         np.logspace(-300, -1, 60), [0.5000005105844152, 0.9999999999999976]])
    with mp.workdps(40):
        for t in ts:
            T = mpf(float(t))
            want_l = float(2 * log((1 - T) / T))
            assert abs(sch.flow_t_to_log_snr(t) - want_l) <= 4 * np.spacing(abs(want_l)), t
            if t > 1e-8:  # (below, alpha_bar rounds to 1 and is refused)
                want_ab = float((1 - T) ** 2 / ((1 - T) ** 2 + T**2))
                assert abs(sch.flow_t_to_alpha_bar(t) - want_ab) <= 4 * np.spacing(want_ab), t
    # the exact ends and the sign of the middle
    l = sch.flow_t_to_log_snr([0.0, 0.5, 1.0])
    assert l[0] == np.inf and l[1] == 0.0 and not np.signbit(l[1]) and l[2] == -np.inf
    np.testing.assert_array_equal(sch.flow_t_to_alpha_bar([0.0, 0.5, 1.0]), [1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="rounds to 1"):
        sch.flow_t_to_alpha_bar(1e-9)


def test_flow_match_t_blames_one_training_timestep_not_the_shift() -> None:
    """Audit 3b B2: flow_match_t(10, num_train_timesteps=1) said "shift must be closer to 1" with shift = 1: one
    training timestep makes sigma_min = sigma_max = 1 for any shift. One step on it is still t = 1."""
    with pytest.raises(ValueError, match=r"^num_train_timesteps must be at least 2 for K=10 > 1 steps \(got 1\)"):
        sch.flow_match_t(10, num_train_timesteps=1)
    with pytest.raises(ValueError, match=r"^num_train_timesteps must be at least 2"):
        sch.flow_match_t(2, shift=3.0, num_train_timesteps=1)
    np.testing.assert_array_equal(sch.flow_match_t(1, num_train_timesteps=1), [1.0])
    assert np.all(np.diff(sch.flow_match_t(10, num_train_timesteps=2)) < 0)


def test_flow_schedule_refuses_options_its_schedule_ignores() -> None:
    """Audit 3b C1: flow_schedule('flow-flux', 10, shift=5.0) ignored shift silently (mu= for 'flow-sd3' was
    refused); shift (default None: SD3's 3.0) now applies to 'flow-sd3' only, mu and image_seq_len to 'flow-flux'
    only, and not both at once."""
    with pytest.raises(ValueError, match=r"^shift applies to 'flow-sd3' only \(got shift=5.0 for 'flow-flux'"):
        sch.flow_schedule("flow-flux", 10, shift=5.0)
    with pytest.raises(ValueError, match=r"^shift applies to 'flow-sd3' only .*'flow-uniform'"):
        sch.flow_schedule("flow-uniform", 10, shift=3.0)
    with pytest.raises(ValueError, match=r"^image_seq_len applies to 'flow-flux' only .*'flow-sd3'"):
        sch.flow_schedule("flow-sd3", 10, image_seq_len=1024)
    with pytest.raises(ValueError, match=r"at most one of mu and image_seq_len"):
        sch.flow_schedule("flow-flux", 10, mu=1.0, image_seq_len=1024)
    with pytest.raises(ValueError, match=r"^shift must be positive"):
        sch.flow_schedule("flow-flux", 10, shift=-1.0)  # a bad value is refused as such first
    np.testing.assert_array_equal(sch.flow_schedule("flow-sd3", 10), sch.flow_schedule("flow-sd3", 10, shift=3.0))
    np.testing.assert_array_equal(sch.flow_schedule("flow-flux", 10),
                                  sch.flow_schedule("flow-flux", 10, image_seq_len=4096))
    np.testing.assert_array_equal(sch.flow_schedule("flow-flux", 10, image_seq_len=256),
                                  sch.flow_schedule("flow-flux", 10, mu=0.5))  # 256 tokens: mu = base_shift


@pytest.mark.parametrize("h, w, bad", [(10, 10, "height"), (1, 1, "height"), (1024, 15, "width"), (15, 64, "height")])
def test_flux_image_seq_len_refuses_an_image_below_one_token(h, w, bad) -> None:
    """Audit 3b D4: flux_image_seq_len(10, 10) returned 0 tokens, which flux_mu and flux_t refuse."""
    with pytest.raises(ValueError, match=rf"^{bad} must be at least vae_scale_factor \* patch_size = 8 \* 2 = 16 "):
        sch.flux_image_seq_len(h, w)
    assert sch.flux_image_seq_len(16, 16) == 1 and sch.flux_image_seq_len(4, 4, vae_scale_factor=1, patch_size=2) == 4


#: (height, width) in pixels and Flux's tokens, counted by hand: (h // 16) latent-token rows by (w // 16) columns
_FLUX_TOKENS = [((1024, 768), 64 * 48), ((768, 1360), 48 * 85), ((1000, 600), 62 * 37), ((512, 1024), 32 * 64),
                ((1024, 1024), 64 * 64)]


@pytest.mark.parametrize("size, tokens", _FLUX_TOKENS)
def test_flux_image_seq_len_of_non_square_images(size, tokens) -> None:
    """Audit of 6 December: every test used square images, where reading the height twice (or swapping it with the
    width) cannot show; here non-square sizes and sizes that are no multiple of 16, counted by hand as diffusers'
    FluxPipeline counts them (prepare_latents: 2 * (pixels // (8 * 2)) latents per side; _pack_latents: 2 x 2 per
    token; its module imports transformers, which CI does not install, so the count is typed in here)."""
    assert sch.flux_image_seq_len(*size) == tokens


@pytest.mark.diffusers
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_first_flow_time_rounding_bound_follows_the_live_shift_too() -> None:
    """A first flow time above 1 is read as t = 1 within 16 float32 ulps / min(shift, 1): diffusers' float32 shift
    rounding grows as 1/shift. set_shift() changes the shift set_timesteps applies but not config.shift, so the bound
    takes the smaller of the two (the config's built sigma_max in __init__, the live one shifted these sigmas)."""
    d = _diffusers()
    import torch

    for config, live in ((1.0, 0.01), (0.01, 1.0)):
        sched = d.FlowMatchEulerDiscreteScheduler(shift=config)
        sched.set_shift(live)
        sched.set_timesteps(10)
        sched.sigmas = torch.cat((torch.tensor([1.00005]), sched.sigmas[1:]))  # 420 ulps: within 16 / 0.01
        got = from_diffusers(sched)
        assert got.alpha_bar[0] == 0.0 and any("float32 rounding" in n for n in got.notes)
    sched = d.FlowMatchEulerDiscreteScheduler(shift=1.0)
    sched.set_timesteps(10)
    sched.sigmas = torch.cat((torch.tensor([1.00005]), sched.sigmas[1:]))  # shift 1 both ways: beyond 16 ulps
    with pytest.raises(ValueError, match=r"sigmas must be flow times strictly decreasing in \(0, 1\]"):
        from_diffusers(sched)


def test_flux_shift_beyond_float64_names_image_seq_len_when_that_was_given():
    """break-test (7 December): image_seq_len=10**9 was refused as "mu must be closer to 0", an argument never given."""
    for call in (lambda: sch.flux_t(5, image_seq_len=10**9),
                 lambda: sch.flow_schedule("flow-flux", 5, image_seq_len=10**9)):
        with pytest.raises(ValueError) as info:
            call()
        msg = str(info.value)
        assert "image_seq_len=1000000000" in msg and "use a smaller image_seq_len" in msg
        assert "mu must be" not in msg
