"""`symsched optimize` end to end: JSON, diffusers and k-diffusion exports, the figure, bad input."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

import symsched
from symsched import schedules as sch, spectra
from symsched.cli import main
from symsched.spectra import load_spectrum
from kdiffusion_helpers import comfyui_reads

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_builtin_default_writes_json_and_png(tmp_path, capsys, monkeypatch) -> None:
    """Its run time is measured by benchmarks/bench_cli.py, not asserted here."""
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)  # a terminal: the bar is drawn
    out, png = tmp_path / "schedule.json", tmp_path / "schedule.png"
    code = main(["optimize", "--out", str(out), "--plot", str(png)])
    assert code == 0
    captured = capsys.readouterr()
    assert "optimize K=10" in captured.err  # the progress bar
    doc = json.loads(out.read_text())
    for key in ("alpha_bar", "log_snr", "sigmas", "betas", "timesteps", "kl", "w2", "baselines",
                "baseline_table", "k_diffusion_sigmas", "diffusers", "value", "success"):
        assert key in doc
    ab = np.array(doc["alpha_bar"])
    assert ab.shape == (10,) and np.all(np.diff(ab) > 0) and 0 < ab[0] and ab[-1] < 1
    assert ab[0] == sch.training_grid("linear")[-1]  # default endpoint
    S = load_spectrum("builtin:natural-patches")
    P = symsched.output_spectrum(S, ab)
    assert doc["kl"] == pytest.approx(symsched.kl_divergence(S, P), rel=1e-10)
    assert doc["w2"] == pytest.approx(symsched.w2_distance(P, S), rel=1e-10)
    np.testing.assert_allclose(doc["log_snr"], np.log(ab / (1 - ab)), rtol=1e-12)
    np.testing.assert_allclose(doc["sigmas"], np.sqrt((1 - ab) / ab), rtol=1e-12)
    # betas in training order (least noisy first): beta_t = 1 - ab_t / ab_{t-1}, ab_{-1} = 1
    inc = ab[::-1]
    expected_betas = 1.0 - inc / np.concatenate(([1.0], inc[:-1]))
    np.testing.assert_allclose(doc["betas"], expected_betas, rtol=1e-9)
    np.testing.assert_allclose(np.cumprod(1.0 - np.array(doc["betas"]))[::-1], ab, rtol=1e-9)
    np.testing.assert_allclose(doc["k_diffusion_sigmas"][:-1], doc["sigmas"], rtol=1e-12)
    assert doc["k_diffusion_sigmas"][-1] == 0.0
    karras = sch.standard_schedule("karras", 10)
    Pk = symsched.output_spectrum(S, karras)
    assert doc["baseline_table"]["karras"]["kl"] == pytest.approx(symsched.kl_divergence(S, Pk), rel=1e-10)
    assert all(doc["value"] < v["value"] for k, v in doc["baseline_table"].items() if k != "optimised")
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


@pytest.fixture()
def small_spectrum(tmp_path):
    f = np.fft.fftfreq(16)
    S = 1.0 / np.maximum(f[:, None] ** 2 + f[None, :] ** 2, 1.0 / 256)
    S = S / S.mean()
    path = tmp_path / "S.npy"
    np.save(path, S)
    return path, S


@pytest.mark.diffusers
def test_diffusers_export_loads_into_ddpm_scheduler(tmp_path, small_spectrum) -> None:
    diffusers = pytest.importorskip("diffusers")
    path, S = small_spectrum
    out = tmp_path / "d.json"
    code = main(["optimize", "--spectrum", str(path), "--steps", "6", "--sampler", "ddpm", "--grid", "1000",
                 "--format", "diffusers", "--out", str(out), "--no-progress"])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["scheduler"] == "DDPMScheduler"
    sched = diffusers.DDPMScheduler(**doc["config"])
    sched.set_timesteps(**doc["set_timesteps"])
    levels = sched.alphas_cumprod.double().numpy()[sched.timesteps.numpy()]
    np.testing.assert_allclose(levels, doc["alpha_bar"], rtol=1e-6)


@pytest.mark.diffusers
def test_diffusers_export_loads_into_euler_scheduler(tmp_path, small_spectrum) -> None:
    diffusers = pytest.importorskip("diffusers")
    path, S = small_spectrum
    out = tmp_path / "e.json"
    assert main(["optimize", "--spectrum", str(path), "--steps", "5", "--sampler", "euler", "--format",
                 "diffusers", "--out", str(out), "--no-progress"]) == 0
    doc = json.loads(out.read_text())
    assert doc["scheduler"] == "EulerDiscreteScheduler"
    sched = diffusers.EulerDiscreteScheduler(**doc["config"])
    sched.set_timesteps(**doc["set_timesteps"])
    sig = sched.sigmas.double().numpy()
    ab = np.array(doc["alpha_bar"])
    np.testing.assert_allclose(sig[:-1], np.sqrt((1 - ab) / ab), rtol=1e-6)
    assert sig[-1] == 0.0


def test_k_diffusion_npy_and_endpoints(tmp_path, small_spectrum) -> None:
    path, S = small_spectrum
    out = tmp_path / "sig.npy"
    assert main(["optimize", "--spectrum", str(path), "--steps", "4", "--endpoints", "0.001,0.999",
                 "--format", "k-diffusion", "--out", str(out), "--no-progress"]) == 0
    sig = np.load(out)
    assert sig.shape == (5,) and sig[-1] == 0.0 and np.all(np.diff(sig) < 0)
    ab = 1.0 / (1.0 + sig[:-1] ** 2)
    np.testing.assert_allclose([ab[0], ab[-1]], [0.001, 0.999], rtol=1e-12)


def test_grid_json_has_timesteps(tmp_path, small_spectrum) -> None:
    path, S = small_spectrum
    out = tmp_path / "g.json"
    assert main(["optimize", "--spectrum", str(path), "--steps", "5", "--grid", "1000", "--endpoints", "free",
                 "--divergence", "w2", "--out", str(out), "--no-progress"]) == 0
    doc = json.loads(out.read_text())
    g = sch.training_grid("linear")
    ts = np.array(doc["timesteps"])
    np.testing.assert_array_equal(np.array(doc["alpha_bar"]), g[ts])
    assert doc["diffusers"]["timesteps"] == doc["timesteps"]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--endpoints", "0.1,0.2,0.3"], "--endpoints must be"),
        (["--endpoints", "abc,none"], "neither a level"),
        (["--endpoints", "0.9,0.1"], "first < last"),
        (["--grid", "1000", "--steps", "3", "--endpoints", "none,4.04e-5"],
         "--endpoints: endpoints[1] (last level) snaps"),
        (["--grid", "1000", "--steps", "3", "--endpoints", "none,1e-5"],
         "--endpoints: endpoints[1] (last level): alpha"),
        (["--steps", "0"], "steps must be an integer >= 1"),
        (["--grid", "0"], "--grid must be a positive"),
        (["--grid", "1e9"], "--grid must be a positive integer number of training steps or a .npy file (got '1e9': "
                            "not an integer, and no such file)"),  # (it read "'1e9' does not exist": a path)
        (["--grid", "1.5"], "(got '1.5': not an integer"),
        (["--grid", "1e9", "--grid-betas", "cosine"], "(got '1e9': not an integer, and no such file)"),
        (["--eta", "2"], "eta must lie in"),
        (["--eta", "0.5", "--sampler", "euler"], "eta applies only to samplers with an eta parameter"),
        (["--option", "s_noise=1.1"], "sampler 'ddim' has no setting 's_noise'"),
        (["--sampler", "dpmsolver_multistep", "--option", "solver_order=7"], "solver_order must be one of"),
        (["--option", "seed=3"], "seed is not a sampler setting"),
        (["--sampler", "euler", "--option", "s_noise=1", "--option", "s_noise=2"], "--option s_noise given twice"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, small_spectrum, capsys, extra, message) -> None:
    path, _ = small_spectrum
    code = main(["optimize", "--spectrum", str(path), "--out", str(tmp_path / "x.json"), "--no-progress", *extra])
    assert code == 2
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""  # refused before the spectrum line and any work
    assert not (tmp_path / "x.json").exists()


def test_missing_spectrum_exit_2(tmp_path, capsys) -> None:
    code = main(["optimize", "--spectrum", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "x.json")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("extra,names,forbidden", [
    (["--format", "diffusers", "--sampler", "dpmpp_2m"], ["--format diffusers", "--sampler dpmpp_2m"], ""),
    (["--format", "diffusers", "--sampler", "unipc_multistep"], ["--format diffusers", "--sampler unipc_multistep"], ""),
    (["--format", "diffusers", "--sampler", "lms"], ["--format diffusers", "--sampler lms"], ""),
    (["--flow", "--format", "k-diffusion"], ["--format k-diffusion", "--flow"], "flow matching"),
    (["--endpoints", "0,none", "--format", "k-diffusion"], ["--format k-diffusion", "alpha_bar = 0"], ""),
    (["--endpoints", "0,none", "--format", "diffusers"], ["--format diffusers", "--sampler ddim", "sigma = inf"], ""),
    # EulerDiscreteScheduler casts its sigmas to float32: sigma 1e40 would be inf
    (["--endpoints", "1e-80,none", "--format", "diffusers", "--sampler", "euler"], ["--endpoints 1e-80,none", "float32"],
     ""),
    # (and a first level outside [0, 1) is the endpoints' own refusal, not the float32 check's: it was an IndexError)
    (["--endpoints", "1.5,none", "--format", "diffusers", "--sampler", "euler"], ["--endpoints", "[0, 1)"], "float32"),
    (["--endpoints", "nan,none", "--format", "diffusers", "--sampler", "euler"], ["--endpoints"], "float32"),
    # a zero first level is checked with the sampler's settings: UniPC's bh1 has none there (bh2 has)
    (["--endpoints", "0,none", "--sampler", "unipc_multistep", "--option", "solver_type=bh1"],
     ["--endpoints 0,none", "--sampler unipc_multistep", "alpha_bar = 0"], ""),
    # audit of 5 December: the note on the zero-SNR grid --format diffusers would build came first, on stdout
    (["--endpoints", "0,none", "--format", "diffusers", "--sampler", "heun"],
     ["--endpoints 0,none", "--sampler heun", "undefined at alpha_bar = 0"], ""),
    (["--sampler", "dpmpp_2m", "--max-step-ratio", "1"], ["--max-step-ratio", "must be > 1"], ""),
])
def test_export_conflicts_are_refused_before_any_work(tmp_path, capsys, extra, names, forbidden) -> None:
    """Known from the arguments alone: refused before the spectrum is even read (a missing file is not reported),
    one line naming the options, exit 2, nothing printed on stdout (no optimisation, no table)."""
    code = main(["optimize", "--spectrum", str(tmp_path / "missing.npy"), "--steps", "3", "--no-progress",
                 "--out", str(tmp_path / "x.json"), *extra])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "missing.npy" not in lines[0]
    assert all(n in lines[0] for n in names), lines[0]
    if forbidden:  # the user already runs flow matching: no advice to do so
        assert forbidden not in lines[0].replace("--flow", "")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("extra,scheduler,note", [
    (["--sampler", "ddim", "--eta", "0.5"], "EulerDiscreteScheduler", "eta=0.5"),
    (["--flow", "--sampler", "flow_match_heun"], "FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler"),
])
def test_diffusers_export_of_another_sampler_says_so_on_the_console(tmp_path, small_spectrum, capsys, extra,
                                                                     scheduler, note) -> None:
    path, _ = small_spectrum
    out = tmp_path / "d.json"
    code = main(["optimize", "--spectrum", str(path), "--steps", "3", "--restarts", "0", "--no-progress",
                 "--format", "diffusers", "--out", str(out), *extra])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["scheduler"] == scheduler
    console = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note:") and note in ln]
    assert len(console) == 1 and "not the" in console[0] and "optimised for" in console[0], console
    assert console[0][len("note: "):] in doc["notes"]  # the same sentence as in the JSON


@pytest.mark.diffusers
def test_ddpm_export_on_a_zero_snr_grid(tmp_path, small_spectrum) -> None:
    """A first level alpha_bar = 0 has no VE sigma, but DDPMScheduler takes its timestep (999)."""
    diffusers = pytest.importorskip("diffusers")
    path, _ = small_spectrum
    np.save(tmp_path / "g.npy", sch.training_grid("scaled_linear", rescale_zero_snr=True))
    out = tmp_path / "d.json"
    assert main(["optimize", "--spectrum", str(path), "--steps", "4", "--restarts", "0", "--sampler", "ddpm",
                 "--grid", str(tmp_path / "g.npy"), "--format", "diffusers", "--out", str(out), "--no-progress"]) == 0
    doc = json.loads(out.read_text())
    assert doc["scheduler"] == "DDPMScheduler" and doc["sigmas"] is None and doc["alpha_bar"][0] == 0.0
    assert doc["config"]["beta_schedule"] == "scaled_linear" and doc["config"]["rescale_betas_zero_snr"] is True
    sched = diffusers.DDPMScheduler(**doc["config"])
    sched.set_timesteps(**doc["set_timesteps"])
    assert int(sched.timesteps[0]) == 999
    levels = sched.alphas_cumprod.double().numpy()[sched.timesteps.numpy()]
    np.testing.assert_allclose(levels, doc["alpha_bar"], rtol=1e-4, atol=0)  # float32 zero-SNR grid: 4e-5
    # break-test C: diffusers' default epsilon prediction has no x0 estimate at alpha_bar = 0 (NaN): a note says so
    assert any("prediction_type" in n and "'v_prediction'" in n for n in doc["notes"])


def _levels_from_export(diffusers, doc):
    """Build the exported scheduler from its JSON alone (as the README says) and read back the levels it runs."""
    cls = getattr(diffusers, doc["scheduler"])
    sched = cls(**doc["config"])
    sched.set_timesteps(**doc["set_timesteps"])
    if doc["scheduler"] == "DDPMScheduler":
        return "alpha_bar", sched.alphas_cumprod.double().numpy()[sched.timesteps.numpy()]
    sig = sched.sigmas.double().numpy()
    assert sig[-1] == 0.0  # final_sigmas_type="zero" / Heun's final step to sigma = 0
    if doc["scheduler"] == "HeunDiscreteScheduler":  # [s0, s1, s1, ..., s_{K-1}, s_{K-1}, 0]
        return "sigmas", sig[:-1:2]
    return "sigmas", sig[:-1]


@pytest.mark.diffusers
@pytest.mark.parametrize("betas", ["linear", "scaled_linear", "cosine"])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "euler", "heun", "dpmsolver_multistep"])
@pytest.mark.parametrize("fmt", ["diffusers", "json"])
def test_diffusers_export_config_reproduces_the_levels(tmp_path, small_spectrum, sampler, betas, fmt) -> None:
    """The scheduler built from ``config`` alone runs the optimised levels, on every training grid."""
    diffusers = pytest.importorskip("diffusers")
    out = tmp_path / "d.json"
    assert main(["optimize", "--spectrum", str(small_spectrum[0]), "--steps", "5", "--restarts", "0", "--sampler",
                 sampler, "--grid", "1000", "--grid-betas", betas, "--format", fmt, "--out", str(out),
                 "--no-progress"]) == 0
    full = json.loads(out.read_text())
    doc = full["diffusers"] if fmt == "json" else full
    ab = np.array(full["alpha_bar"])
    kind, got = _levels_from_export(diffusers, doc)
    # expected: the optimised levels, independently recomputed from symsched's float64 training grid
    grid = sch.training_grid(betas)
    np.testing.assert_allclose(ab, grid[np.array(full.get("timesteps") or doc["timesteps"])], rtol=1e-12)
    if kind == "sigmas":  # float32 alphas_cumprod near 1 leaves 1 - alpha_bar (so sigma) ~1e-4 relative off
        np.testing.assert_allclose(got, np.sqrt((1 - ab) / ab), rtol=1e-3)
        got = 1.0 / (1.0 + got * got)
    np.testing.assert_allclose(got, ab, rtol=1e-4)  # diffusers' float32 alphas_cumprod


@pytest.mark.diffusers
@pytest.mark.parametrize("sampler", ["heun", "euler"])
def test_diffusers_export_without_grid_carries_the_default_grid(tmp_path, small_spectrum, sampler) -> None:
    """Heun (timesteps) and Euler (sigmas; the model's timesteps come from the betas) on the default grid."""
    diffusers = pytest.importorskip("diffusers")
    path, _ = small_spectrum
    out = tmp_path / "d.json"
    assert main(["optimize", "--spectrum", str(path), "--steps", "4", "--restarts", "0", "--sampler", sampler,
                 "--format", "diffusers", "--out", str(out), "--no-progress"]) == 0
    doc = json.loads(out.read_text())
    assert doc["config"]["beta_schedule"] == "linear" and doc["config"]["num_train_timesteps"] == 1000
    ab = np.array(doc["alpha_bar"])
    _, got = _levels_from_export(diffusers, doc)
    np.testing.assert_allclose(got, np.sqrt((1 - ab) / ab), rtol=1e-4)
    if sampler == "euler":  # the model's timesteps: those of the levels on the linear grid (log-sigma interpolation)
        sched = diffusers.EulerDiscreteScheduler(**doc["config"])
        sched.set_timesteps(**doc["set_timesteps"])
        ls = 0.5 * np.log((1 - sch.training_grid("linear")) / sch.training_grid("linear"))
        want_t = np.interp(0.5 * np.log((1 - ab) / ab), ls, np.arange(1000.0))
        np.testing.assert_allclose(sched.timesteps.double().numpy(), want_t, atol=0.05)


# ------------------------------------------------------------------------------ break3 faults


@pytest.mark.diffusers
def test_zero_first_level_for_diffusers_without_grid_uses_a_zero_snr_grid(tmp_path, small_spectrum, capsys) -> None:
    """break3/user F1: --endpoints 0,none --format diffusers without --grid keeps the zero first level: the default
    grid rescaled to zero terminal SNR (said in a note), which DDPMScheduler built from the config runs at 0."""
    diffusers = pytest.importorskip("diffusers")
    from symsched.export import from_diffusers

    path, _ = small_spectrum
    out = tmp_path / "z.json"
    assert main(["optimize", "--spectrum", str(path), "--steps", "3", "--restarts", "0", "--no-progress",
                 "--endpoints", "0,none", "--sampler", "ddpm", "--format", "diffusers", "--out", str(out)]) == 0
    notes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note:")]
    assert any("--endpoints" in n and "zero terminal SNR" in n for n in notes), notes
    doc = json.loads(out.read_text())
    assert doc["alpha_bar"][0] == 0.0 and doc["config"]["rescale_betas_zero_snr"] is True
    s = diffusers.DDPMScheduler(**doc["config"], prediction_type="v_prediction")  # the model's, as the note asks
    s.set_timesteps(**doc["set_timesteps"])
    assert int(s.timesteps[0]) == 999 and from_diffusers(s).alpha_bar[0] == 0.0
    assert any("add your model's prediction_type" in n for n in notes)
    s = diffusers.DDPMScheduler(**doc["config"])  # diffusers' default epsilon: NaN at pure noise, refused
    s.set_timesteps(**doc["set_timesteps"])
    with pytest.raises(ValueError, match="prediction_type='epsilon'"):
        from_diffusers(s)


@pytest.mark.parametrize("extra,names", [
    (["--grid", "1000"], ["--endpoints 0,none", "--grid 1000", "zero-SNR grid"]),  # F1: not silently snapped
    (["--sampler", "heun"], ["--endpoints 0,none", "--sampler heun", "undefined at alpha_bar = 0"]),  # F14
])
def test_a_zero_first_level_that_cannot_be_run_is_refused_naming_endpoints(tmp_path, capsys, extra, names) -> None:
    """break3/user F1, F14: before any work (the spectrum is not even read), one line naming --endpoints."""
    code = main(["optimize", "--spectrum", str(tmp_path / "missing.npy"), "--steps", "3", "--no-progress",
                 "--endpoints", "0,none", "--out", str(tmp_path / "x.json"), *extra])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    line = captured.err.strip()
    assert "\n" not in line and line.startswith("symsched optimize: error: --endpoints 0,none")
    assert all(n in line for n in names) and "sigmas:" not in line, line


def test_a_zero_snr_grid_with_a_sampler_undefined_at_zero_names_the_grid(tmp_path, capsys) -> None:
    np.save(tmp_path / "g.npy", sch.training_grid("scaled_linear", rescale_zero_snr=True))
    code = main(["optimize", "--spectrum", str(tmp_path / "missing.npy"), "--steps", "3", "--no-progress",
                 "--grid", str(tmp_path / "g.npy"), "--sampler", "heun", "--out", str(tmp_path / "x.json")])
    line = capsys.readouterr().err.strip()
    assert code == 2 and line.startswith("symsched optimize: error: --grid ") and "zero terminal SNR" in line, line


@pytest.mark.diffusers
def test_dpmsolver_export_on_a_zero_snr_grid_reports_what_diffusers_runs(small_spectrum) -> None:
    """break3/user F2: DPMSolverMultistepScheduler runs diffusers' 2**-24 stand-in, not alpha_bar = 0: the export's
    notes say so (the CLI prints every note of a diffusers export), with the objective of what it runs, which is
    what diffusers' run gives, next to the optimised value."""
    diffusers = pytest.importorskip("diffusers")
    import re
    import types

    from symsched.commands.optimize import _export_diffusers, _value_of
    from symsched.export import from_diffusers

    _, S = small_spectrum
    grid = sch.training_grid("scaled_linear", rescale_zero_snr=True)
    ts = np.array([999, 600, 300])
    ab = grid[ts]
    res = types.SimpleNamespace(sampler="dpmsolver_multistep", alpha_bar=ab, timesteps=ts, eta=0.0,
                                variance="posterior", divergence="w2", init="white", settings={})
    value_of = _value_of(S, res, None)
    res.value = value_of(ab)
    doc = _export_diffusers(res, grid, value_of)
    notes = [n for n in doc["notes"] if "2**-24" in n]
    assert len(notes) == 1, doc["notes"]
    runs, opt = map(float, re.search(r"W2\^2 of what it runs = (\S+), of the optimised schedule = (\S+) ",
                                     notes[0]).groups())
    s = diffusers.DPMSolverMultistepScheduler(**doc["config"])
    s.set_timesteps(**doc["set_timesteps"])
    info = from_diffusers(s)
    assert info.alpha_bar[0] == pytest.approx(2.0**-24, rel=1e-6)
    w2sq = float(np.sum((np.sqrt(info.output_spectrum(S)) - np.sqrt(S)) ** 2))
    assert runs == pytest.approx(w2sq, rel=1e-4) and opt == pytest.approx(res.value, rel=1e-5)
    assert abs(runs / opt - 1) > 1e-3


def test_sampler_settings_reach_the_optimiser_and_the_json(tmp_path, small_spectrum, capsys) -> None:
    """k-diffusion's ancestral samplers keep their library eta = 1 unless --eta says otherwise; other settings
    come through --option; the JSON records every setting as run, and its value is that objective's."""
    path, S = small_spectrum
    out = tmp_path / "s.json"
    args = ["optimize", "--spectrum", str(path), "--steps", "4", "--no-progress", "--restarts", "0"]
    assert main([*args, "--sampler", "euler_ancestral", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["eta"] == 1.0 and doc["settings"] == {"eta": 1.0, "s_noise": 1.0}
    sig = np.sqrt((1 - np.array(doc["alpha_bar"])) / np.array(doc["alpha_bar"]))
    J1 = symsched.divergence_and_grad_ve(S, sig, sampler="euler_ancestral", eta=1.0, divergence="w2")[0]
    assert doc["value"] == pytest.approx(float(J1), rel=1e-9)
    assert main([*args, "--sampler", "euler_ancestral", "--eta", "0.25", "--option", "s_noise=1.003",
                 "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["settings"] == {"eta": 0.25, "s_noise": 1.003}
    sig = np.sqrt((1 - np.array(doc["alpha_bar"])) / np.array(doc["alpha_bar"]))
    J = symsched.divergence_and_grad_ve(S, sig, sampler="euler_ancestral", eta=0.25, s_noise=1.003,
                                        divergence="w2")[0]
    assert doc["value"] == pytest.approx(float(J), rel=1e-9)
    assert main([*args, "--sampler", "dpmsolver_multistep", "--option", "solver_order=3", "--option",
                 "lower_order_final=false", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["settings"]["solver_order"] == 3 and doc["settings"]["lower_order_final"] is False
    assert "solver_order=3 lower_order_final=False" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["s_noise", "=1", "s_noise="])
def test_malformed_option_is_a_usage_error(value, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["optimize", "--option", value, "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--option must be NAME=VALUE" in err and "Traceback" not in err


def _optimise(tmp_path, path, name, *extra) -> tuple[dict, str]:
    out = tmp_path / name
    steps = [] if "--steps" in extra else ["--steps", "5"]  # (an option given twice is refused)
    code = main(["optimize", "--spectrum", str(path), *steps, "--no-progress", "--restarts", "0",
                 "--out", str(out), *extra])
    assert code == 0
    return json.loads(out.read_text()), str(out)


def _runs_value(note: str) -> tuple[float, float]:
    import re

    m = re.search(r"of what it runs = (\S+), of the optimised schedule = (\S+) ", note)
    assert m, note
    return float(m.group(1)), float(m.group(2))


def _objective(S, P, divergence) -> float:
    """The objective written out here, independently of symsched's kernels."""
    if divergence == "kl":
        r = S / P
        return float(0.5 * np.sum(r - 1 - np.log(r)))
    return float(np.sum((np.sqrt(P) - np.sqrt(S)) ** 2))


@pytest.mark.diffusers
@pytest.mark.parametrize("sampler,extra", [
    ("dpmsolver_multistep", ["--option", "solver_order=3", "--option", "lower_order_final=false",
                             "--option", "algorithm_type=sde-dpmsolver++"]),
    ("dpmsolver_multistep", ["--option", "final_sigmas_type=sigma_min"]),
    ("dpmsolver_multistep", ["--option", "euler_at_final=true", "--option", "solver_type=heun"]),
    ("ddpm", ["--variance", "beta"]),
    ("ddpm", []),
])
def test_the_diffusers_export_runs_the_optimised_sampler_settings(tmp_path, small_spectrum, capsys, sampler,
                                                                   extra) -> None:
    """break-test A F1-F3: every sampler setting reaches the exported scheduler (its config, or the last level
    diffusers needs), so that diffusers' scheduler built from the file alone runs the optimised sampler: what
    from_diffusers reads off that scheduler has the optimised levels, settings and output spectrum."""
    diffusers = pytest.importorskip("diffusers")
    from symsched.export import from_diffusers

    path, S = small_spectrum
    doc, _ = _optimise(tmp_path, path, "d.json", "--sampler", sampler, "--grid", "1000", "--grid-betas",
                       "scaled_linear", "--divergence", "kl", "--format", "diffusers", *extra)
    full, _ = _optimise(tmp_path, path, "full.json", "--sampler", sampler, "--grid", "1000", "--grid-betas",
                        "scaled_linear", "--divergence", "kl", *extra)
    sched = getattr(diffusers, doc["scheduler"])(**doc["config"])
    sched.set_timesteps(**doc["set_timesteps"])
    info = from_diffusers(sched)
    np.testing.assert_allclose(info.alpha_bar, doc["alpha_bar"], rtol=1e-5)
    settings = {k: (float(v) if v in ("inf", "-inf") else v) for k, v in full["settings"].items()}
    P_opt = symsched.output_spectrum(S, np.array(doc["alpha_bar"]), sampler=sampler, **settings)
    np.testing.assert_allclose(info.output_spectrum(S), P_opt, rtol=1e-4)
    assert info.final_noise_variance <= 1e-20 and not any("what it runs" in n for n in doc["notes"])
    if doc["scheduler"] == "DPMSolverMultistepScheduler":  # "sigmas": what the scheduler runs (audit of 4 December:
        # with sigma_min the file listed a last sigma 0 the scheduler never reaches)
        np.testing.assert_allclose(doc["sigmas"], sched.sigmas.double().numpy(), rtol=1e-4)  # (float32 sigmas)
    if "beta" in extra or "final_sigmas_type=sigma_min" in extra:  # the last level had to be timestep 0
        assert sched.timesteps.numpy()[-1] == 0 or "sigma_min" in str(extra)
        assert "the last level is fixed at timestep 0" in capsys.readouterr().out


@pytest.mark.diffusers
def test_a_ddpm_fixed_large_export_with_a_fixed_last_level_gives_the_value_of_what_runs(tmp_path, small_spectrum,
                                                                                        capsys) -> None:
    """break-test A F3: DDPMScheduler(fixed_large) adds noise of variance beta on a last step at t > 0; with the
    last level fixed by --endpoints the export keeps it and the note gives the objective diffusers' run has."""
    diffusers = pytest.importorskip("diffusers")
    from symsched.export import from_diffusers

    path, S = small_spectrum
    grid = sch.training_grid("linear")
    doc, _ = _optimise(tmp_path, path, "d.json", "--sampler", "ddpm", "--variance", "beta", "--grid", "1000",
                       "--divergence", "kl", "--format", "diffusers", "--endpoints", f"none,{float(grid[40])!r}")
    notes = [n for n in doc["notes"] if "fixed_large" in n]
    assert len(notes) == 1 and f"note: {notes[0]}" in capsys.readouterr().out
    runs, opt = _runs_value(notes[0])
    sched = diffusers.DDPMScheduler(**doc["config"])
    sched.set_timesteps(**doc["set_timesteps"])
    info = from_diffusers(sched)
    assert info.final_noise_variance == pytest.approx(1 - grid[40], rel=1e-5)
    assert runs == pytest.approx(_objective(S, info.output_spectrum(S), "kl"), rel=1e-4)
    P_opt = symsched.output_spectrum(S, np.array(doc["alpha_bar"]), sampler="ddpm", variance="beta")
    assert opt == pytest.approx(_objective(S, P_opt, "kl"), rel=1e-5) and runs > 1.01 * opt


def test_a_churned_euler_export_to_diffusers_gives_the_value_without_churn(tmp_path, small_spectrum, capsys) -> None:
    """break-test A F4: diffusers has no k-diffusion churn; the note says so with the objective of the run without it."""
    path, S = small_spectrum
    doc, _ = _optimise(tmp_path, path, "d.json", "--sampler", "euler", "--option", "s_churn=1", "--divergence", "w2",
                       "--format", "diffusers")
    notes = [n for n in doc["notes"] if "churn" in n]
    assert len(notes) == 1 and "without churn" in notes[0] and "--format k-diffusion" in notes[0]
    assert f"note: {notes[0]}" in capsys.readouterr().out
    runs, opt = _runs_value(notes[0])
    ab = np.array(doc["alpha_bar"])
    assert runs == pytest.approx(_objective(S, symsched.output_spectrum(S, ab, sampler="euler"), "w2"), rel=1e-5)
    assert opt == pytest.approx(_objective(S, symsched.output_spectrum(S, ab, sampler="euler", s_churn=1.0), "w2"),
                                rel=1e-5)


@pytest.mark.parametrize("sampler,extra,kwargs", [
    ("euler_ancestral", ["--eta", "0.3"], {"eta": 0.3}),
    ("euler_ancestral", [], {}),
    ("lms", ["--option", "order=2"], {"order": 2}),
    ("dpmpp_2m_sde", ["--option", "solver_type=heun", "--option", "s_noise=1.01"], {"s_noise": 1.01,
                                                                                     "solver_type": "heun"}),
    ("euler", ["--option", "s_churn=0.5", "--option", "s_tmax=10"], {"s_churn": 0.5, "s_tmax": 10.0}),
])
@pytest.mark.parametrize("suffix", [".json", ".npy"])
def test_the_k_diffusion_export_carries_the_sampler_settings(tmp_path, small_spectrum, capsys, sampler, extra, kwargs,
                                                             suffix) -> None:
    """break-test A F5: the k-diffusion export names the function and the keyword arguments of every setting
    that differs from k-diffusion's default (in the JSON file, and on the console for a bare .npy)."""
    path, S = small_spectrum
    out = tmp_path / f"k{suffix}"
    assert main(["optimize", "--spectrum", str(path), "--steps", "4", "--no-progress", "--restarts", "0",
                 "--sampler", sampler, "--format", "k-diffusion", "--out", str(out), *extra]) == 0
    call = f"k_diffusion.sampling.sample_{sampler}(model, x, sigmas" + "".join(f", {k}={v!r}" for k, v in kwargs.items())
    assert f"note: run it as {call})" in capsys.readouterr().out
    if suffix == ".json":
        doc = json.loads(out.read_text())
        assert doc["function"] == f"k_diffusion.sampling.sample_{sampler}" and doc["kwargs"] == kwargs
        assert doc["sigmas"][-1] == 0.0


@pytest.mark.kdiffusion
@pytest.mark.parametrize("sampler", ["euler", "heun", "dpm_2", "euler_ancestral", "dpm_2_ancestral",
                                     "dpmpp_2s_ancestral", "lms", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde",
                                     "dpmpp_sde"])
def test_every_exported_k_diffusion_setting_is_a_keyword_of_its_function(sampler) -> None:
    """The names the k-diffusion export writes are the keyword arguments of k-diffusion's own function, and
    symsched's defaults are that function's defaults (so the settings left out are the ones it runs anyway)."""
    import inspect
    import types

    from kdiffusion_helpers import load_sampling
    from symsched.commands.optimize import k_diffusion_call

    info = symsched.sampler_info(sampler)
    defaults = {**info["params"], **{k: v[0] for k, v in info["options"].items() if k != "noise_sampler"}}
    settings = {k: (v + 1 if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                for k, v in defaults.items()}
    res = types.SimpleNamespace(sampler=sampler, alpha_bar=np.array([0.1, 0.5]), settings=settings)
    fn, kwargs, _ = k_diffusion_call(res)
    params = inspect.signature(getattr(load_sampling(), f"sample_{sampler}")).parameters
    assert fn == f"k_diffusion.sampling.sample_{sampler}" and set(kwargs) <= set(params)
    for name, value in defaults.items():
        assert params[name].default == value, (name, params[name].default, value)


@pytest.mark.diffusers
def test_the_ddim_export_starts_from_ddims_white_noise(tmp_path, small_spectrum, capsys) -> None:
    """break-test C F3: EulerDiscreteScheduler with timestep_spacing="linspace" starts from N(0, sigma_max^2), DDIM
    from N(0, 1 + sigma_max^2) (30 % low with a first level 0.3); "leading" sets init_noise_sigma to
    sqrt(1 + sigma_max^2), so the exported scheduler runs DDIM itself. The k-diffusion call starts there too."""
    diffusers = pytest.importorskip("diffusers")
    from reference import vp_output
    from symsched.export import from_diffusers

    path, S = small_spectrum
    doc, _ = _optimise(tmp_path, path, "d.json", "--sampler", "ddim", "--endpoints", "0.3,none", "--format", "diffusers")
    sched = diffusers.EulerDiscreteScheduler(**doc["config"])
    sched.set_timesteps(**doc["set_timesteps"])
    ab = np.array(doc["alpha_bar"])
    assert float(sched.init_noise_sigma) ** 2 == pytest.approx(1 / ab[0], rel=1e-6)  # 1 + sigma_max^2
    np.testing.assert_allclose(from_diffusers(sched).output_spectrum(S), vp_output(S, ab)[1], rtol=1e-5)
    assert main(["optimize", "--spectrum", str(path), "--steps", "5", "--no-progress", "--restarts", "0", "--sampler",
                 "ddim", "--endpoints", "0.3,none", "--format", "k-diffusion", "--out", str(tmp_path / "k.json")]) == 0
    assert "x = (1 + sigmas[0] ** 2) ** 0.5 * torch.randn(shape)" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["diffusers", "k-diffusion"])
def test_an_exact_start_optimum_exported_to_a_white_start_gives_the_value_of_what_runs(tmp_path, small_spectrum, capsys,
                                                                                       fmt) -> None:
    """break-test C F2: the libraries start from white noise; a schedule optimised with --init exact says so with the
    objective of the white start (the reference VE Euler recursion, tests/reference.py)."""
    from reference import ve_output

    path, S = small_spectrum
    out = tmp_path / "e.json"
    assert main(["optimize", "--spectrum", str(path), "--steps", "5", "--no-progress", "--restarts", "0", "--sampler",
                 "euler", "--init", "exact", "--endpoints", "0.3,none", "--divergence", "w2", "--format", fmt,
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    notes = [n for n in text.splitlines() if "--init exact" in n]
    assert len(notes) == 1, text
    runs, opt = _runs_value(notes[0])
    ab = np.array(json.loads(out.read_text())["alpha_bar"]) if fmt == "diffusers" else None
    if ab is None:
        sig = np.array(json.loads(out.read_text())["sigmas"][:-1])
    else:
        sig = np.sqrt((1 - ab) / ab)
    assert runs == pytest.approx(_objective(S, ve_output(S, sig, init="white")[1], "w2"), rel=1e-5)
    assert opt == pytest.approx(_objective(S, ve_output(S, sig, init="exact")[1], "w2"), rel=1e-5) and runs > opt


# ---------------------------------------------------------------------------------------------
# break-test 51
# ---------------------------------------------------------------------------------------------


def test_baselines_the_sampler_cannot_run_are_inf_with_the_reason_not_a_crash(tmp_path, capsys) -> None:
    """heun on a zero-SNR --grid: the baselines that start at alpha_bar = 0 (which Heun cannot run) were scored inf by
    the search, then their KL/W2 crashed the command after the whole optimisation (exit 2, no file). They are inf in
    the baseline table with the engine's reason; the others keep their numbers."""
    np.save(tmp_path / "S.npy", np.array([0.01, 0.1, 1.0, 10.0, 100.0]))
    np.save(tmp_path / "g.npy", sch.training_grid("scaled_linear", rescale_zero_snr=True))
    out = tmp_path / "h.json"
    assert main(["optimize", "--spectrum", str(tmp_path / "S.npy"), "--grid", str(tmp_path / "g.npy"), "--endpoints",
                 "0.001,none", "--sampler", "heun", "--steps", "4", "--no-progress", "--restarts", "0",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    table = json.loads(out.read_text())["baseline_table"]
    refused = {k: v for k, v in table.items() if "refused" in v}
    assert refused and all(v["w2"] == "inf" and "heun" in v["refused"] for v in refused.values())
    assert "grid-trailing" in refused and float(table["scaled_linear-trailing"]["w2"]) > 0


@pytest.mark.parametrize("sampler", ["flow_match_euler", "flow_match_heun"])
def test_flow_samplers_have_no_k_diffusion_function(tmp_path, capsys, monkeypatch, sampler) -> None:
    """`--format k-diffusion` named k_diffusion.sampling.sample_flow_match_euler, which does not exist; refused before
    any work, and no k_diffusion_function in the JSON of a flow sampler."""
    from symsched.commands import optimize as cmd

    def no_work(*args, **kwargs):
        raise AssertionError("optimised before refusing")

    monkeypatch.setattr("symsched.optimize.optimize_schedule", no_work)
    assert main(["optimize", "--sampler", sampler, "--format", "k-diffusion", "--steps", "3",
                 "--out", str(tmp_path / "k.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "k-diffusion has no flow-matching sampler" in err
    assert sampler in cmd._NO_K_DIFFUSION


def test_ddim_with_eta_is_exported_as_k_diffusions_ancestral_euler(tmp_path, capsys) -> None:
    """DDIM eta > 0 was exported as sample_euler (deterministic) with a note that k-diffusion has no DDIM eta; it is
    sample_euler_ancestral(eta) (Song et al. 2021, eq. 16; the identity of test_sampler_identities): the closed forms
    agree from the same start, and the export names that function and eta."""
    S = np.array([0.01, 0.1, 1.0, 10.0, 100.0])
    ab = np.array([0.05, 0.3, 0.7, 0.95])
    for eta in (0.3, 1.0):
        np.testing.assert_allclose(
            symsched.output_spectrum_ve(S, sch.alpha_bar_to_sigmas(ab), sampler="euler_ancestral", eta=eta,
                                        init="exact"),
            symsched.output_spectrum(S, ab, sampler="ddim", eta=eta, init="exact"), rtol=1e-12)
    np.save(tmp_path / "S.npy", S)
    out = tmp_path / "e.json"
    assert main(["optimize", "--spectrum", str(tmp_path / "S.npy"), "--sampler", "ddim", "--eta", "0.3", "--steps",
                 "4", "--format", "json", "--no-progress", "--restarts", "0", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["k_diffusion_function"] == "k_diffusion.sampling.sample_euler_ancestral"
    assert doc["k_diffusion_kwargs"] == {"eta": 0.3}
    assert not any("has no DDIM eta" in n for n in doc["k_diffusion_notes"])


@pytest.mark.parametrize("extra, message", [
    (["--sampler", "deis_multistep"], "DEIS needs at least 2 levels"),
    (["--sampler", "dpmsolver_multistep", "--option", "final_sigmas_type=sigma_min"], "needs at least 2 levels"),
])
def test_a_step_count_the_sampler_cannot_run_is_refused_before_any_work(tmp_path, capsys, monkeypatch, extra,
                                                                        message) -> None:
    """K = 1 with DEIS or final_sigmas_type='sigma_min' was refused only after the search ("refuses every schedule
    the search tried"); the sampler's own plan refuses it up front, naming --steps (CLI) and steps (API)."""
    import symsched.optimize as opt

    import re

    with pytest.raises(ValueError, match=r"steps must suit sampler .* \(got 1\): .*" + re.escape(message)):
        symsched.optimize_schedule(np.ones(3), 1, sampler=extra[1], **(
            {"final_sigmas_type": "sigma_min"} if "--option" in extra else {}))

    def no_work(*args, **kwargs):
        raise AssertionError("worked before refusing")

    monkeypatch.setattr(opt, "_Objective", no_work)
    monkeypatch.setattr("symsched.spectra.load_spectrum", no_work)
    assert main(["optimize", "--steps", "1", *extra, "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--steps" in err and message in err
    monkeypatch.undo()
    kw = {"final_sigmas_type": "sigma_min"} if "--option" in extra else {}  # K = 2 runs (the companion)
    assert symsched.optimize_schedule(np.ones(3), 2, sampler=extra[1], restarts=0, maxiter=3, **kw).alpha_bar.size == 2


def test_a_large_seed_is_taken(tmp_path, small_spectrum, capsys) -> None:
    """break-test 54: `--seed 20251203` was refused as above MAX_ITER (a bound on iterations, not seeds)."""
    out = tmp_path / "o.json"
    code = main(["optimize", "--spectrum", str(small_spectrum[0]), "--steps", "3", "--seed", "20251203",
                 "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert len(json.loads(out.read_text())["alpha_bar"]) == 3


@pytest.mark.parametrize("sampler", ["dpmpp_2m_sde", "dpmpp_3m_sde"])
def test_one_step_for_a_k_diffusion_sampler_that_cannot_run_it(tmp_path, small_spectrum, capsys, sampler) -> None:
    """break-test 54: `--steps 1 --format k-diffusion` for DPM++ 2M/3M SDE wrote sigmas and "run it as
    sample_dpmpp_2m_sde(...)", which k-diffusion 0.1.1 cannot run (UnboundLocalError: h; tests/test_kdiffusion_witness.py
    shows the library's failure). Now refused up front; a JSON document keeps the schedule with the library's limit
    among its k-diffusion notes."""
    code = main(["optimize", "--spectrum", str(small_spectrum[0]), "--steps", "1", "--sampler", sampler,
                 "--format", "k-diffusion", "--out", str(tmp_path / "s.npy"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"--steps: k-diffusion 0.1.1's sample_{sampler} fails with 1 step" in err
    assert not (tmp_path / "s.npy").exists()
    out = tmp_path / "s.json"
    assert main(["optimize", "--spectrum", str(small_spectrum[0]), "--steps", "1", "--sampler", sampler,
                 "--out", str(out), "--no-progress"]) == 0
    notes = json.loads(out.read_text())["k_diffusion_notes"]
    assert any(f"sample_{sampler} fails with 1 step" in n for n in notes), notes
    # two steps run in k-diffusion: no such note
    assert main(["optimize", "--spectrum", str(small_spectrum[0]), "--steps", "2", "--sampler", sampler,
                 "--out", str(out), "--no-progress"]) == 0
    assert not any("fails with" in n for n in json.loads(out.read_text())["k_diffusion_notes"])


@pytest.mark.parametrize("spectrum, noted", [(np.zeros(6), True), (np.array([0.0, 0.0, 1e-6]), False)])
def test_optimize_notes_an_all_zero_spectrum_from_the_results_flag(tmp_path, capsys, spectrum, noted) -> None:
    """An all-zero spectrum: every schedule scores 0 and the console says so (from OptimizeResult.indifferent, not
    from the wording of the result's message); one faint mode makes the schedules differ, and there is no note."""
    path = tmp_path / "s.npy"
    np.save(path, spectrum)
    _optimise(tmp_path, path, "z.json", "--steps", "3")
    out = capsys.readouterr().out
    assert ("note: every mode of the spectrum is 0 (or has weight 0), which sampler 'ddim' reproduces exactly" in out) is noted


# ---- audit of 4 December -------------------------------------------------------------------


def test_a_flow_matching_sampler_implies_flow(tmp_path, small_spectrum, capsys) -> None:
    """optimize --sampler flow_match_euler without --flow pinned the first level at the DDPM grid's noisiest level
    (t = 0.9937), compared with no flow schedule and accepted --grid; report and explain treat the sampler as flow
    matching. The sampler now implies --flow."""
    path, _ = small_spectrum
    doc, _ = _optimise(tmp_path, path, "f.json", "--sampler", "flow_match_euler")
    assert doc["alpha_bar"][0] == 0.0 and doc["flow_t"][0] == 1.0 and "flow-uniform" in doc["baseline_table"]
    assert main(["optimize", "--spectrum", str(path), "--steps", "3", "--sampler", "flow_match_heun", "--grid", "1000",
                 "--no-progress", "--out", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sampler flow_match_heun takes no --grid" in err[0]


@pytest.mark.parametrize("extra", [["--endpoints", "default"], ["--endpoints", "0,none"]])
def test_grid_betas_reach_the_grid_the_diffusers_export_picks(tmp_path, small_spectrum, capsys, extra) -> None:
    """--format diffusers picks a 1000-step grid for samplers that need timesteps; it dropped an explicit
    --grid-betas scaled_linear and said "(--grid 1000)", which with those betas is another grid."""
    path, _ = small_spectrum
    doc, _ = _optimise(tmp_path, path, "d.json", "--sampler", "ddpm", "--grid-betas", "scaled_linear", "--format",
                       "diffusers", *extra)
    grid = symsched.schedules.training_grid("scaled_linear", rescale_zero_snr=extra[-1] == "0,none")
    np.testing.assert_allclose(doc["alpha_bar"], grid[doc["timesteps"]], rtol=1e-12)
    assert doc["config"]["beta_schedule"] == "scaled_linear"
    assert "using the 1000-step scaled_linear DDPM grid" in capsys.readouterr().out


@pytest.mark.parametrize("extra,match", [
    (["--grid-betas", "cosine"], "--grid-betas cosine applies only with an integer --grid T"),
    (["--grid-betas", "cosine", "--grid", "G.npy"], "--grid-betas cosine applies to an integer --grid T, not to"),
])
def test_grid_betas_never_silently_unused(tmp_path, small_spectrum, capsys, extra, match) -> None:
    path, _ = small_spectrum
    np.save(tmp_path / "G.npy", symsched.schedules.training_grid("linear"))
    extra = [str(tmp_path / e) if e.endswith(".npy") else e for e in extra]
    assert main(["optimize", "--spectrum", str(path), "--steps", "3", "--no-progress", "--out",
                 str(tmp_path / "o.json"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_the_constraint_text_never_rounds_a_level_to_0_or_1() -> None:
    """"last level alpha_bar = 1" for a fixed 0.999996000016, which --endpoints itself refuses as outside (0, 1)."""
    from symsched.optimize import _constraint_text

    assert _constraint_text((1.5e-4, 0.999996000016), False) == ("first level alpha_bar = 0.00015, last level "
                                                                 "alpha_bar = 0.999996000016")
    assert _constraint_text((0.0, 0.5), True) == "first level alpha_bar = 0, last level alpha_bar = 0.5, levels on " \
                                                 "the training grid"


def test_a_k_diffusion_export_at_the_default_first_level_says_where_it_comes_from(tmp_path, small_spectrum) -> None:
    """The k-diffusion export started at sigma 157 (the default DDPM grid's top) without a word; an EDM model
    (sigma_max = 80) needs its own first level."""
    path, _ = small_spectrum
    _optimise(tmp_path, path, "k.json", "--sampler", "dpmpp_2m", "--format", "k-diffusion")
    doc = json.loads((tmp_path / "k.json").read_text())
    top = np.sqrt((1 - sch.training_grid("linear")[-1]) / sch.training_grid("linear")[-1])
    assert doc["sigmas"][0] == pytest.approx(top, rel=1e-12)
    assert any(n.startswith(f"the first sigma {top:.4g} is the noisiest level") and "--endpoints 0.000156226,none" in n
               for n in doc["notes"])
    _optimise(tmp_path, path, "e.json", "--sampler", "dpmpp_2m", "--format", "k-diffusion", "--endpoints",
              f"{1 / (1 + 80.0 ** 2)!r},none")
    doc = json.loads((tmp_path / "e.json").read_text())
    assert doc["sigmas"][0] == pytest.approx(80.0, rel=1e-12) and not any("first sigma" in n for n in doc["notes"])


@pytest.mark.diffusers
def test_flow_export_note_gives_the_identity_mu_of_each_time_shift(tmp_path, small_spectrum) -> None:
    """The note's mu, passed to FlowMatchEulerDiscreteScheduler with use_dynamic_shifting=True, leaves the exported
    flow times as they are, for both time_shift_types (linear's identity is mu = 1: mu = 0 gives NaN there)."""
    import re

    diffusers = pytest.importorskip("diffusers")
    path, _ = small_spectrum
    out = tmp_path / "f.json"
    assert main(["optimize", "--spectrum", str(path), "--steps", "4", "--restarts", "0", "--no-progress", "--flow",
                 "--format", "diffusers", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    note = next(n for n in doc["notes"] if "use_dynamic_shifting=True" in n)
    for kind in ("exponential", "linear"):
        mu = float(re.search(rf"mu=([0-9.]+) for (?:time_shift_type=)?'{kind}'", note).group(1))
        sch = diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, time_shift_type=kind)
        sch.set_timesteps(sigmas=doc["set_timesteps"]["sigmas"], mu=mu)
        np.testing.assert_allclose(sch.sigmas[:-1].double().numpy(), doc["sigmas"], rtol=1e-6, err_msg=kind)


def test_a_bad_weights_file_is_one_line_before_the_spectrum_line(tmp_path, capsys) -> None:
    """audit of 4 December: a --weights file of the wrong shape, with NaN, negative or all zero was refused after the
    spectrum line was printed (two lines)."""
    np.save(tmp_path / "S.npy", np.linspace(0.1, 2.0, 12))
    for name, w, rule in (("shape", np.ones(5), "shape"), ("nan", np.r_[np.ones(11), np.nan], "finite"),
                          ("neg", -np.ones(12), "non-negative"), ("zero", np.zeros(12), "positive weight")):
        np.save(tmp_path / f"{name}.npy", w)
        code = main(["optimize", "--spectrum", str(tmp_path / "S.npy"), "--steps", "3", "--no-progress",
                     "--weights", str(tmp_path / f"{name}.npy"), "--out", str(tmp_path / "x.json")])
        captured = capsys.readouterr()
        assert code == 2 and captured.out == "", (name, captured.out)
        assert len(captured.err.strip().splitlines()) == 1 and "--weights" in captured.err and rule in captured.err


def test_json_keeps_a_result_whose_levels_share_one_float64_sigma(tmp_path, capsys) -> None:
    """audit of 4 December: fixed end points one ulp apart give levels 0.3, 0.30000000000000004, 0.3000000000000001
    (distinct, so a valid result) whose last two sigmas are one float64 number: the JSON export failed after the
    search and wrote nothing. It now writes the result, with the export's reason instead of the sigma list."""
    np.save(tmp_path / "S.npy", np.linspace(0.1, 2.0, 12))
    out = tmp_path / "x.json"
    assert main(["optimize", "--spectrum", str(tmp_path / "S.npy"), "--steps", "3", "--no-progress", "--restarts",
                 "0", "--endpoints", "0.3,0.3000000000000001", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    ab = np.array(doc["alpha_bar"])
    assert np.all(np.diff(ab) > 0) and ab[0] == 0.3 and ab[-1] == 0.3000000000000001
    sig = np.sqrt((1 - ab) / ab)  # the premise, independently: two levels, one float64 sigma
    assert sig[1] == sig[2]
    assert "k_diffusion_sigmas" not in doc and "same VE sigma" in doc["k_diffusion_notes"][0]
    assert doc["diffusers"]["scheduler"] is None and "same VE sigma" in doc["diffusers"]["notes"][0]
    assert "sigmas" not in doc["diffusers"]


def test_json_of_a_sampler_without_a_diffusers_scheduler_holds_no_diffusers_sigmas(tmp_path, small_spectrum) -> None:
    """Audit of 6 December: for --sampler dpmpp_2m the JSON's "diffusers" entry held bare sigmas (with a note), which
    someone reading only "sigmas" would run as Euler; it now names no scheduler and holds the reason alone."""
    out = tmp_path / "x.json"
    assert main(["optimize", "--spectrum", str(small_spectrum[0]), "--steps", "3", "--no-progress", "--restarts", "0",
                 "--sampler", "dpmpp_2m", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["diffusers"]["scheduler"] is None and "sigmas" not in doc["diffusers"], doc["diffusers"]
    assert "dpmpp_2m" in doc["diffusers"]["notes"][0] and doc["k_diffusion_function"].endswith("sample_dpmpp_2m")


def test_progress_bar_only_on_a_terminal(tmp_path, small_spectrum, capsys, monkeypatch) -> None:
    """Audit of 5 December: `optimize ... 2>log` filled the log with carriage-return frames of its progress bar
    (validate and sde-table already drew theirs only on a terminal). The bar follows stderr: a terminal draws it,
    a file or pipe does not; --no-progress always hides it."""
    import sys

    out = tmp_path / "o.json"
    base = ["optimize", "--spectrum", str(small_spectrum[0]), "--steps", "3", "--restarts", "0", "--out", str(out)]
    for tty, extra, drawn in ((False, [], False), (True, [], True), (True, ["--no-progress"], False)):
        monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
        assert main(base + extra) == 0
        err = capsys.readouterr().err
        assert ("optimize K=3" in err) is drawn, (tty, extra)
        # audit of 6 December: the four stages left the bar at 0 % for seconds; it counts evaluations as it goes
        assert (" evaluations" in err) is drawn, err


def test_validate_refuses_exponent_with_a_spectrum_file(tmp_path, small_spectrum, capsys) -> None:
    """Audit of 5 December: `validate --spectrum S.npy --exponent 3` ran with exit 0 and ignored --exponent (it shapes
    only the built-in power law): a silently unused option is refused, naming both; without --spectrum it works."""
    path = small_spectrum[0]
    code = main(["validate", "--spectrum", str(path), "--exponent", "3", "--samples", "10", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].endswith(f"--exponent 3 applies only to the built-in power law, not to --spectrum {path}")
    assert main(["validate", "--exponent", "3", "--shape", "8x8", "--steps", "3", "--samples", "200",
                 "--no-progress"]) in (0, 1)  # ran (PASS or FAIL of the check itself), not refused
    assert "power law |f|^-3" in capsys.readouterr().out


def _pairs() -> list:
    from symsched.commands.optimize import DPM_K_DIFFUSION_PAIRS

    return list(DPM_K_DIFFUSION_PAIRS)


@pytest.mark.parametrize(("dpm", "k_sampler", "k_settings"), _pairs())
@pytest.mark.parametrize("K", [3, 5, 20])
def test_refusals_name_the_other_librarys_same_sampler(dpm, k_sampler, k_settings, K) -> None:
    """The refusal of --format k-diffusion for dpmsolver_multistep pointed every setting to sample_dpmpp_2m (the ODE
    sampler, also for sde-dpmsolver++), and that of --format diffusers for dpmpp_2m_sde said diffusers has none. Both
    are written from one table of pairs, which this checks: each pair runs the same steps (equal closed forms from
    the same exact start; each side is witnessed against its library in test_diffusers_multistep and
    test_kdiffusion_witness), and both refusals name its flags; a pair not in the table is not the same (third
    order midpoint against sample_dpmpp_3m_sde; sde-dpmsolver++ order 3)."""
    from symsched.commands import optimize as cmd

    S = np.array([0.01, 0.3, 1.0, 7.0])
    ab = sch.standard_schedule("linear-trailing", K)
    vp = symsched.output_spectrum(S, ab, sampler="dpmsolver_multistep", init="exact", **dpm)
    ve = symsched.output_spectrum_ve(S, sch.alpha_bar_to_sigmas(ab), sampler=k_sampler, init="exact", **k_settings)
    np.testing.assert_allclose(vp, ve, rtol=1e-12)
    if k_settings.get("eta", 0.0) == 0.0:  # from white noise the deterministic pairs differ by their starts alone:
        # variance 1 in diffusers, sigma_max^2 in k-diffusion (VE units; 1 + sigma_max^2 is the VP white start's)
        s0 = sch.alpha_bar_to_sigmas(ab)[0]
        w_vp = symsched.output_spectrum(S, ab, sampler="dpmsolver_multistep", **dpm)
        w_ve = symsched.output_spectrum_ve(S, sch.alpha_bar_to_sigmas(ab), sampler=k_sampler, **k_settings)
        np.testing.assert_allclose(w_vp / w_ve, (1 + s0**2) / s0**2 * np.ones(4), rtol=1e-11)
        assert "variance 1 in diffusers and sigma_max^2 in k-diffusion" in cmd._NO_K_DIFFUSION["dpmsolver_multistep"]
    assert cmd.optimize_flags(k_sampler, k_settings) in cmd._NO_K_DIFFUSION["dpmsolver_multistep"]
    if k_sampler != "euler":  # (diffusers' EulerDiscreteScheduler exports sample_euler's sigmas: not refused)
        assert cmd.optimize_flags("dpmsolver_multistep", dpm) in cmd._no_diffusers_scheduler(k_sampler)
    if K == 5 and dpm["solver_order"] == 3:  # the companion: a setting not named differs
        other = symsched.output_spectrum(S, ab, sampler="dpmsolver_multistep", init="exact", solver_order=3,
                                         lower_order_final=False)
        assert np.max(np.abs(other / ve - 1)) > 1e-3
    if K == 5 and k_sampler == "dpmpp_2m_sde" and k_settings == {"eta": 1.0}:  # nor is sde-dpmsolver++ order 3 3M SDE
        sde3 = symsched.output_spectrum(S, ab, sampler="dpmsolver_multistep", init="exact", solver_order=3,
                                        algorithm_type="sde-dpmsolver++", lower_order_final=False)
        m3 = symsched.output_spectrum_ve(S, sch.alpha_bar_to_sigmas(ab), sampler="dpmpp_3m_sde", init="exact")
        assert np.max(np.abs(sde3 / m3 - 1)) > 1e-2


@pytest.mark.parametrize(("sampler", "settings", "flags"), [
    ("dpmpp_2m_sde", {"eta": 0.0, "solver_type": "heun"}, "--sampler dpmpp_2m_sde --eta 0 --option solver_type=heun"),
    ("dpmsolver_multistep", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2},
     "--sampler dpmsolver_multistep --option algorithm_type=sde-dpmsolver++ --option solver_order=2"),
    ("dpmsolver_multistep", {"solver_order": 3, "solver_type": "heun", "lower_order_final": False},
     "--sampler dpmsolver_multistep --option solver_order=3 --option solver_type=heun "
     "--option lower_order_final=False"),
])
def test_the_refusals_flags_select_those_settings(sampler, settings, flags, tmp_path) -> None:
    """The flags a refusal names are the command line's own: written as a user types them (the expected strings are
    typed here), and read back by optimize's parser they select the same sampler and settings."""
    from symsched.cli import build_parser
    from symsched.commands import _settings
    from symsched.commands.optimize import optimize_flags

    assert optimize_flags(sampler, settings) == flags
    args = build_parser().parse_args(["optimize", *flags.split(), "--out", str(tmp_path / "o.json")])
    opts = _settings.options(args.option)
    if args.eta is not None:
        opts["eta"] = args.eta
    assert args.sampler == sampler and opts == settings


def test_dpmpp_2m_sde_diffusers_refusal_names_sde_dpmsolver(tmp_path, capsys) -> None:
    assert main(["optimize", "--sampler", "dpmpp_2m_sde", "--format", "diffusers", "--steps", "3",
                 "--out", str(tmp_path / "d.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--option algorithm_type=sde-dpmsolver++ --option solver_order=2" in err


def test_k_diffusion_export_notes_a_sigma_float32_moves_across_the_churn_window(tmp_path) -> None:
    """The optimum put a level 5e-8 above s_tmax = 2 (churn switches there in a jump); torch.tensor(d["sigmas"]) is
    float32, which rounds it to 2.0, inside k-diffusion's window s_tmin <= sigma <= s_tmax: that run churns at the
    step (W2^2 44.6 by k-diffusion's own Monte Carlo against 37.1 optimised). The export now says so."""
    from symsched.commands.optimize import churn_window_note

    spec = tmp_path / "S.npy"
    np.save(spec, spectra.power_law((8, 8), alpha=2.0))
    out = tmp_path / "k.json"
    assert main(["optimize", "--spectrum", str(spec), "--restarts", "1", "--steps", "6", "--sampler", "euler",
                 "--option", "s_churn=4", "--option", "s_tmin=0.3", "--option", "s_tmax=2", "--format", "k-diffusion",
                 "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    sig = np.array(d["sigmas"][:-1])
    flips = [i for i, s in enumerate(sig) if (0.3 <= s <= 2.0) != (np.float32(0.3) <= np.float32(s) <= np.float32(2.0))]
    note = [n for n in d["notes"] if "within float32 rounding of the churn window" in n]
    assert flips == [4], sig  # the premise (deterministic optimiser): the optimum sits 5e-8 above s_tmax
    assert len(note) == 1 and note[0].startswith("sigmas[4] = ") and "dtype=torch.float64" in note[0]
    S = np.load(spec).ravel()  # the float32 run's objective, from the closed form on float32 sigmas
    P32 = symsched.output_spectrum_ve(S, sig.astype(np.float32), sampler="euler", s_churn=4.0, s_tmin=0.3, s_tmax=2.0)
    assert f"W2^2 as float32 = {np.sum((np.sqrt(P32) - np.sqrt(S)) ** 2):.6g}," in note[0]
    res = types.SimpleNamespace(sampler="euler", settings={"s_churn": 4.0, "s_tmin": 0.3, "s_tmax": 2.0},
                                sigmas=np.array([157.4, 4.1, 2.0000001054570453, 0.67]), divergence="w2", value=1.0)
    text = churn_window_note(res)
    assert text is not None and text.startswith("sigmas[2] = 2.0000001054570453 ") and "step 2 churns" in text
    res.sigmas = np.array([157.4, 4.1, 2.00001, 0.67])  # float32 keeps it outside: nothing to say
    assert churn_window_note(res) is None
    res.sigmas = np.array([157.4, 4.1, 2.0000001054570453, 0.67])
    res.settings = {"s_churn": 0.0, "s_tmin": 0.3, "s_tmax": 2.0}  # no churn: no window to fall into
    assert churn_window_note(res) is None
    res.settings = {"s_churn": 4.0, "s_tmin": 0.3}  # k-diffusion's default s_tmax = inf; 0.3 - 1e-9 is float32(0.3)
    res.sigmas = np.array([157.4, 4.1, 0.3 - 1e-9, 0.1])
    assert np.float32(0.3 - 1e-9) == np.float32(0.3)  # the premise, independently
    text = churn_window_note(res)
    assert text is not None and text.startswith("sigmas[2] = ") and "[0.3, inf]" in text and "step 2 churns" in text
    del res.sigmas  # a result without sigmas: those of its levels, sigma = sqrt((1 - ab) / ab), noisiest first
    res.alpha_bar = 1.0 / (1.0 + np.array([157.4, 4.1, 0.3 - 1e-9, 0.1]) ** 2)
    assert churn_window_note(res).startswith("sigmas[2] = ")


def test_a_diffusers_euler_export_above_the_configs_grid_is_refused(tmp_path, capsys) -> None:
    """Audit of 6 December: `--format diffusers` of DDIM with --endpoints 1e-6,none wrote EulerDiscreteScheduler
    sigmas starting at 1000 next to a config of the 1000-step linear grid (largest training sigma 157.4), which
    conditions the model at timestep 999 for an input at sigma 1000, while `export.to_diffusers` refused the same
    levels with that grid. The command now refuses as the API does: one line, exit 2, no file."""
    out = tmp_path / "s.json"
    code = main(["optimize", "--steps", "5", "--sampler", "ddim", "--endpoints", "1e-6,none", "--format",
                 "diffusers", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2 and err.count("\n") == 1, err
    assert "the first sigma 999.999 exceeds the model's largest training sigma 157.4" in err, err
    assert not out.exists()
    assert "spectrum" not in captured.out  # refused up front, from the fixed endpoint (second audit of 6 December)
    assert main(["optimize", "--steps", "5", "--sampler", "ddim", "--format", "diffusers", "--out", str(out),
                 "--no-progress"]) == 0  # the default first level, the grid's noisiest, is exported
    sigmas = json.loads(out.read_text())["set_timesteps"]["sigmas"]
    top = float(symsched.schedules.alpha_bar_to_sigmas(sch.training_grid("linear")[-1:])[0])
    assert sigmas[0] <= top * (1 + 1e-12)


def test_an_integer_grid_without_betas_says_it_is_the_linear_ddpm_grid(tmp_path, small_spectrum, capsys) -> None:
    """Audit of 6 December: the README's `--grid 1000` is the linear-beta grid, not Stable Diffusion's; said up front.
    With --grid-betas or a .npy grid there is nothing to say."""
    path, _ = small_spectrum
    base = ["optimize", "--spectrum", str(path), "--steps", "3", "--restarts", "0", "--no-progress"]
    assert main(base + ["--grid", "1000", "--out", str(tmp_path / "a.json")]) == 0
    assert "note: --grid 1000 without --grid-betas is the 1000-step linear-beta DDPM grid" in capsys.readouterr().out
    np.save(tmp_path / "g.npy", sch.training_grid("scaled_linear"))
    for extra in (["--grid", "1000", "--grid-betas", "scaled_linear"], ["--grid", str(tmp_path / "g.npy")]):
        assert main(base + extra + ["--out", str(tmp_path / "b.json")]) == 0
        assert "without --grid-betas" not in capsys.readouterr().out


@pytest.mark.diffusers
def test_sigma_min_counts_levels_and_says_how_many_model_calls(tmp_path, small_spectrum, capsys) -> None:
    """Audit of 6 December: --steps 4 with final_sigmas_type='sigma_min' ran 3 model calls in diffusers; the command
    says so, and diffusers, given the exported timesteps, makes exactly that many."""
    diffusers = pytest.importorskip("diffusers")  # (the [dev] install has none: skipped there, as every such test)

    path, _ = small_spectrum
    out = tmp_path / "s.json"
    assert main(["optimize", "--spectrum", str(path), "--steps", "4", "--restarts", "0", "--no-progress",
                 "--grid", "1000", "--grid-betas", "scaled_linear", "--sampler", "dpmsolver_multistep", "--option",
                 "final_sigmas_type=sigma_min", "--format", "diffusers", "--out", str(out)]) == 0
    assert "note: --steps 4 counts levels: final_sigmas_type='sigma_min' stops at the last level" in (
        capsys.readouterr().out)
    doc = json.loads(out.read_text())
    sched = diffusers.DPMSolverMultistepScheduler(**doc["config"])
    sched.set_timesteps(**doc["set_timesteps"])
    assert len(sched.timesteps) == 3


def test_sigmas_below_the_grids_least_noisy_level_are_noted() -> None:
    """Audit of 6 December: --endpoints free exported Euler sigmas 0.00915 and 0.00414 below the linear grid's least
    training sigma 0.01 without a word (diffusers runs the model at timestep 0 there)."""
    from symsched.commands.optimize import _below_grid_note

    grid = sch.training_grid("linear")
    least = float(np.sqrt((1 - grid[0]) / grid[0]))
    assert _below_grid_note([14.6, 1.0, least, 0.0], grid) == []  # the grid's own level and the trailing 0
    (note,) = _below_grid_note([14.6, 0.5 * least, 0.25 * least, 0.0], grid)
    assert note.startswith("2 of the sigmas") and f"--endpoints none,{float(grid[0])!r}" in note


def test_zero_snr_ddim_refusal_does_not_send_a_vp_model_to_flow_matching(tmp_path, small_spectrum, capsys) -> None:
    """Audit of 6 December: the refusal suggested --flow for any model; a VP v-prediction model cannot run as flow
    matching. It now names what diffusers' zero-SNR Euler runs and keeps --flow for flow-matching models."""
    path, _ = small_spectrum
    assert main(["optimize", "--spectrum", str(path), "--steps", "4", "--sampler", "ddim", "--endpoints", "0,none",
                 "--format", "diffusers", "--out", str(tmp_path / "s.json"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2**-24" in err and "--flow only for a flow-matching model" in err, err


@pytest.mark.parametrize("extra, name, settings, first, node", [
    ([], "euler", {}, None, "KSamplerSelect(sampler_name='euler')"),
    (["--eta", "0.5"], "euler_ancestral", {"eta": 0.5}, None, "SamplerEulerAncestral(eta=0.5) in place of"),
    (["--eta", "1"], "euler_ancestral", {}, None, "KSamplerSelect(sampler_name='euler_ancestral')"),  # its default
    (["--sampler", "dpmpp_2m_sde", "--eta", "0.5"], "dpmpp_2m_sde", {"eta": 0.5}, None,
     "SamplerDPMPP_2M_SDE(eta=0.5) in place of KSamplerSelect"),
    (["--sampler", "euler", "--option", "s_churn=1"], "euler", {"s_churn": 1.0}, None,
     "ComfyUI has no node that sets s_churn for euler"),
    (["--flow"], "euler", {}, 1.0, "KSamplerSelect(sampler_name='euler')"),
])
def test_comfyui_export_names_the_node_text_and_sampler(tmp_path, small_spectrum, capsys, extra, name, settings,
                                                         first, node) -> None:
    """Audit of 6 December: no ComfyUI export. --format comfyui writes the ManualSigmas text (the optimised levels'
    float32 sigmas, or flow times with --flow) and the KSamplerSelect sampler_name, with the settings KSamplerSelect
    would not set: the node that sets them (ComfyUI's own, read for the table), or a note that none does."""

    out = tmp_path / "c.json"
    assert main(["optimize", "--spectrum", str(small_spectrum[0]), "--steps", "4", "--restarts", "0", "--no-progress",
                 "--format", "comfyui", "--out", str(out), *extra]) == 0
    doc = json.loads(out.read_text())
    assert doc["node"] == "ManualSigmas" and doc["sampler_name"] == name and doc["settings"] == settings
    ab = np.array(doc["alpha_bar"])
    levels = sch.alpha_bar_to_flow_t(ab) if first is not None else sch.alpha_bar_to_sigmas(ab)
    read = comfyui_reads(doc["sigmas"])  # ComfyUI's ManualSigmas rule
    np.testing.assert_array_equal(read, np.append(levels, 0.0).astype(np.float32))
    if first is not None:
        assert read[0] == first
    assert node in capsys.readouterr().out


@pytest.mark.parametrize("extra, match", [
    (["--sampler", "ddpm"], "--format comfyui with --sampler ddpm: symsched exports to ComfyUI the k-diffusion "
     "samplers it models"),
    (["--sampler", "flow_match_heun"], "ComfyUI's heun on flow times is k-diffusion's Heun"),
    (["--sampler", "ddim", "--endpoints", "0,none"], "--format comfyui: the first level is alpha_bar = 0"),
])
def test_comfyui_export_refusals_come_before_any_work(tmp_path, capsys, extra, match) -> None:
    assert main(["optimize", "--steps", "4", "--no-progress", "--format", "comfyui", "--out",
                 str(tmp_path / "c.json"), *extra]) == 2
    captured = capsys.readouterr()
    assert match in captured.err and captured.err.count("\n") == 1 and "spectrum" not in captured.out


def test_a_fixed_first_level_on_a_grid_is_checked_after_the_grid_snaps_it(tmp_path, small_spectrum, capsys) -> None:
    """Review of 6 December: the up-front check of a fixed first level against the grid's top refused 3.99e-5 on the
    linear grid (sigma 158.3 > 157.4), a level the optimiser snaps to the grid's noisiest, 4.0358e-5, whose export
    passes. With --grid the check is the export's, on the level the optimiser returns."""
    out = tmp_path / "s.json"
    assert main(["optimize", "--spectrum", str(small_spectrum[0]), "--steps", "3", "--restarts", "0", "--no-progress",
                 "--grid", "1000", "--endpoints", "3.99e-5,none", "--sampler", "ddim", "--format", "diffusers", "--out",
                 str(out)]) == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["alpha_bar"][0] == float(sch.training_grid("linear")[-1])
