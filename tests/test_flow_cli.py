"""``symsched optimize --flow --shift-from-resolution`` (issue 11): an optimised flow schedule and its diffusers export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symsched
from symsched import schedules as sch

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "symsched.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_optimize_flow_with_resolution_shift(tmp_path: Path) -> None:
    out = tmp_path / "flow.json"
    r = run_cli("optimize", "--spectrum", "builtin:natural-patches", "--steps", "10", "--flow",
                "--shift-from-resolution", "--no-progress", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    ab = np.array(doc["alpha_bar"], dtype=float)
    assert doc["sampler"] == "flow_match_euler" and ab[0] == 0.0 and len(ab) == 10
    t = np.array(doc["diffusers"]["set_timesteps"]["sigmas"])
    assert doc["diffusers"]["scheduler"] == "FlowMatchEulerDiscreteScheduler" and t[0] == 1.0
    np.testing.assert_allclose(t, sch.alpha_bar_to_flow_t(ab), rtol=1e-15)
    np.testing.assert_allclose(doc["flow_t"], t, rtol=1e-15)
    table = doc["baseline_table"]
    for name in ("flow-uniform", "flow-sd3", "flow-flux 1024x1024 (mu=1.15)"):
        assert table[name]["value"] > doc["value"], name  # the optimum beats every standard flow schedule
    # the value is the KL of the written schedule, recomputed here from its levels
    from symsched.spectra import load_spectrum

    S = load_spectrum("builtin:natural-patches")
    P = symsched.output_spectrum(S, ab, sampler="flow_match_euler")
    assert doc["divergence"] == "w2"
    assert doc["value"] == pytest.approx(symsched.w2_distance(S, P) ** 2, rel=1e-9)
    assert "FlowMatchEulerDiscreteScheduler(shift=1.0).set_timesteps(sigmas=[1," in r.stdout
    # diffusers runs exactly these levels
    diffusers = pytest.importorskip("diffusers")
    s = diffusers.FlowMatchEulerDiscreteScheduler(**doc["diffusers"]["config"])
    s.set_timesteps(**doc["diffusers"]["set_timesteps"])
    np.testing.assert_allclose(s.sigmas[:-1].double().numpy(), t, rtol=1e-7)


@pytest.mark.parametrize("args,match", [
    (("--flow", "--grid", "1000"), "--flow takes no --grid"),
    (("--flow", "--sampler", "ddim"), "--flow runs a flow-matching sampler"),
    (("--shift-from-resolution", "512x512"), "--shift-from-resolution applies only with --flow"),
    # break-test: advised "--format diffusers (FlowMatchHeunDiscreteScheduler sigmas)", which takes no custom sigmas
    (("--sampler", "flow_match_heun", "--format", "k-diffusion"), "takes no custom sigmas either: export with --format json"),
    (("--flow", "--shift-from-resolution", "big"), "--shift-from-resolution must be HxW"),
    # mu = 6.6e9: used to print "numeric error: math range error"; now the option and mu are named
    (("--flow", "--shift-from-resolution", "100000000x100000000"),
     "--shift-from-resolution 100000000x100000000 (39062500000000 tokens): flux_t(K=3, mu=6.61214e+09)"),
])
def test_flow_option_errors_are_one_line(tmp_path: Path, args: tuple, match: str) -> None:
    r = run_cli("optimize", "--steps", "3", "--no-progress", "--out", str(tmp_path / "x.json"), *args, cwd=tmp_path)
    assert r.returncode == 2 and match in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_first_level_without_a_flow_time_is_refused_before_the_optimisation(tmp_path: Path) -> None:
    """break-test: --flow --endpoints 1e-40,none optimised and printed the table, then exited 2 (t rounds to 1)."""
    r = run_cli("optimize", "--steps", "3", "--flow", "--endpoints", "1e-40,none", "--no-progress", "--out",
                str(tmp_path / "f.json"), cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "" and not (tmp_path / "f.json").exists(), r.stdout
    assert "--endpoints: endpoints[0] (first level) with sampler 'flow_match_euler': alpha_bar=1e-40" in r.stderr
    with pytest.raises(ValueError, match=r"^endpoints\[0\] \(first level\) with sampler 'flow_match_heun'"):
        symsched.optimize_schedule(np.ones(3), 3, sampler="flow_match_heun", endpoints=(1e-40, None))


def test_one_step_from_pure_noise_is_saved(tmp_path: Path) -> None:
    """break-test: K = 1 from alpha_bar = 0 (the only level: nothing to optimise) ran, printed, then failed in
    alpha_bar_to_betas([0.0]) although betas_to_alpha_bar([1.0]) = [0.0]."""
    np.testing.assert_array_equal(sch.alpha_bar_to_betas([0.0]), [1.0])
    np.testing.assert_array_equal(sch.betas_to_alpha_bar(sch.alpha_bar_to_betas([0.0])), [0.0])
    r = run_cli("optimize", "--spectrum", "builtin:natural-patches", "--steps", "1", "--flow", "--no-progress",
                "--out", str(tmp_path / "o.json"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["alpha_bar"] == [0.0] and doc["betas"] == [1.0] and doc["flow_t"] == [1.0]


def test_zero_snr_grid_option(tmp_path: Path) -> None:
    """--grid with a zero-terminal-SNR alphas_cumprod (.npy): the optimiser keeps the first level at 0."""
    g = sch.training_grid("scaled_linear", rescale_zero_snr=True)
    np.save(tmp_path / "g.npy", g)
    out = tmp_path / "o.json"
    r = run_cli("optimize", "--steps", "6", "--grid", str(tmp_path / "g.npy"), "--no-progress", "--restarts", "1",
                "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["alpha_bar"][0] == 0.0 and doc["timesteps"][0] == 999
    assert np.all(np.isin(doc["alpha_bar"], g))


@pytest.mark.parametrize("endpoints, marked", [(None, False), ("0.5,none", True)])
def test_flow_baselines_off_the_constraint_are_marked(tmp_path: Path, endpoints, marked) -> None:
    """Standard flow schedules start at t = 1 (alpha_bar = 0): with a first level fixed elsewhere they are not a
    fair comparison and carry the same "†" as the other baselines (console and JSON)."""
    S = tmp_path / "S.npy"
    np.save(S, np.array([2.0, 1.0, 0.5, 0.25, 0.5, 1.0]))
    out = tmp_path / "f.json"
    extra = () if endpoints is None else ("--endpoints", endpoints)
    r = run_cli("optimize", "--flow", "--spectrum", str(S), "--steps", "4", "--restarts", "0", "--no-progress",
                "--out", str(out), *extra, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = json.loads(out.read_text())["baseline_table"]
    assert table["flow-uniform"]["feasible"] is (not marked) and table["flow-sd3"]["feasible"] is (not marked)
    flow_section = r.stdout.split("flow-matching schedules", 1)[1]
    assert ("flow-uniform †" in flow_section) is marked and ("not a fair comparison" in flow_section) is marked


def test_one_step_from_pure_noise_under_kl_is_a_one_line_error(tmp_path: Path) -> None:
    """break-test: K = 1 from t = 1 is the single deterministic step to P = 0, whose KL to S > 0 is +inf for every
    schedule: it printed a table of inf and "nanx the optimum", saved it and exited 0."""
    S = tmp_path / "S.npy"
    np.save(S, np.array([2.0, 1.0, 0.5]))
    out = tmp_path / "o.json"
    r = run_cli("optimize", "--spectrum", str(S), "--steps", "1", "--flow", "--divergence", "kl", "--no-progress",
                "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "the endpoints fix every level and the objective is +inf" in r.stderr and "nan" not in r.stdout
    assert not out.exists()


def test_flow_table_of_an_all_zero_spectrum_has_ratio_one(tmp_path: Path) -> None:
    """break-test: every schedule scores 0 on an all-zero spectrum; the flow table divided by the optimum's 0
    ("numeric error: float division by zero") instead of printing the ratio 1."""
    S = tmp_path / "Z.npy"
    np.save(S, np.zeros(8))
    out = tmp_path / "z.json"
    r = run_cli("optimize", "--spectrum", str(S), "--steps", "3", "--flow", "--no-progress", "--out", str(out),
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    flow_section = r.stdout.split("flow-matching schedules", 1)[1]
    assert flow_section.count("(1x the optimum)") == 2 and "nan" not in flow_section


def test_flow_baselines_are_in_the_json_s_fair_list_and_scored_with_the_weights(tmp_path: Path) -> None:
    """Audit of 5 December: `optimize --flow` printed the flow baselines but left them out of the figure and of the
    JSON's "baselines_meeting_constraints" (it listed none), and scored them unweighted next to a weighted optimum.
    They are now baselines of the search itself: fair, in the list, and valued with --weights (recomputed here)."""
    S = np.array([2.0, 1.0, 0.5, 0.25, 0.5, 1.0])
    w = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    np.save(tmp_path / "S.npy", S)
    np.save(tmp_path / "w.npy", w)
    out = tmp_path / "f.json"
    r = run_cli("optimize", "--flow", "--spectrum", str(tmp_path / "S.npy"), "--weights", str(tmp_path / "w.npy"),
                "--steps", "4", "--restarts", "0", "--no-progress", "--shift-from-resolution", "256x256",
                "--out", str(out), "--plot", str(tmp_path / "f.png"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    flux = next(n for n in doc["baselines"] if n.startswith("flow-flux 256x256"))
    mu = float(sch.flux_mu(sch.flux_image_seq_len(256, 256)))
    for name, ab in (("flow-uniform", sch.flow_schedule("flow-uniform", 4)),
                     ("flow-sd3", sch.flow_schedule("flow-sd3", 4, shift=3.0)),
                     (flux, sch.flow_schedule("flow-flux", 4, mu=mu))):
        assert name in doc["baselines_meeting_constraints"] and doc["baseline_table"][name]["feasible"] is True
        P = symsched.output_spectrum(S, ab, sampler="flow_match_euler")
        want = float(np.sum(w * (np.sqrt(P) - np.sqrt(S)) ** 2))  # weighted W2 squared, written here
        assert doc["baselines"][name] == pytest.approx(want, rel=1e-9), name
        assert doc["baseline_table"][name]["value"] == doc["baselines"][name]
    assert "weighted W2^2" in r.stdout and "flow-matching schedules (flow_match_euler, K=4, weighted w2)" in r.stdout
