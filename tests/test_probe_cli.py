"""`symsched probe` and the report section, with a stub model (the exact Wiener denoiser) and a tiny diffusers UNet."""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
import pytest

import symsched
from cache_helpers import entry_doc, write_sealed
from symsched import montecarlo as mc
from symsched import probe, schedules
from symsched.cli import main
from symsched.commands import probe as cmd

from mc_helpers import make_spectrum

S8 = make_spectrum((8, 8), "power", exponent=2.0, scale=4.0)


@pytest.fixture()
def stub(monkeypatch):
    """`--model builtin:...` returns the exact denoiser of a Gaussian field with its own held-out data."""
    pytest.importorskip("ot", reason='the probe\'s sliced W2 needs POT: pip install -e ".[torch]"')

    def fake(name):
        return cmd.ProbeModel(name, probe.wiener_denoiser(S8, prediction="sample"), mc.gaussian_field(S8, 300, seed=9),
                              S8, schedules.training_grid("linear"), None)

    monkeypatch.setattr(cmd, "_builtin", fake)
    # the report section caches builtin-model results on disk: keep the stub's apart from the real model's
    monkeypatch.setattr(cmd, "_probe_fingerprint", lambda token=uuid.uuid4().hex[:16]: f"stub{token}")


def test_cli_probe_runs_and_writes_table_json_figure(stub, tmp_path, capsys):
    out = tmp_path / "p"
    args = ["probe", "--out", str(out), "--steps", "4", "--samples", "200", "--seeds", "2", "--no-progress",
            "--schedules", "optimised-w2,optimised-kl,linear-trailing,karras"]
    assert main(args) == 0
    text = capsys.readouterr().out
    for name in ("optimised-w2", "optimised-kl", "linear-trailing", "karras", "MMD²", "sliced W2", "FD",
                 "Paired differences"):
        assert name in text
    for f in ("probe.md", "probe.json", "probe.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0
    info = json.loads((out / "probe.json").read_text())
    assert info["seeds"] == [0, 1] and info["n_samples"] == 200 and info["baseline"] == "optimised-w2"
    assert info["variance"] is None and info["eta"] == 0.0  # DDIM takes no variance: none recorded (audit, 5 Dec.)
    g = schedules.training_grid("linear")
    for name, ab in info["schedules"].items():
        ab = np.array(ab)
        assert ab.size == 4 and all(np.min(np.abs(g - a)) == 0 for a in ab), name  # on the model's grid
        P = symsched.output_spectrum(S8, ab, sampler="ddim")
        pred = info["comparisons"][name]["predicted"]
        assert pred["spectral_w2"] == pytest.approx(symsched.w2_distance(P, S8), rel=1e-9)
        assert pred["spectral_kl"] == pytest.approx(symsched.kl_divergence(S8, P), rel=1e-9)
        assert len(info["comparisons"][name]["values"]["mmd2"]) == 2
        assert info["timesteps"][name] == [int(probe.grid_timestep(a, g)) for a in ab]
    # the paired seeds are reproducible from the API
    den = probe.wiener_denoiser(S8, prediction="sample")
    ab = np.array(info["schedules"]["karras"])
    x = probe.sample(den, ab, n_samples=200, seed=1)
    ref = mc.gaussian_field(S8, 300, seed=9)
    assert info["comparisons"]["karras"]["values"]["mmd2"][1] == pytest.approx(probe.mmd2(x, ref), rel=1e-9)


def test_cli_probe_rejects_bad_arguments(stub, tmp_path, capsys):
    cases = [
        (["--schedules", "optimised-w2,best"], "--schedules must be comma-separated names"),
        (["--schedules", "karras,karras"], "must not repeat"),
        (["--samples", "1"], "--samples must be at least 2"),
        (["--samples", "20000001"], r"--samples must be at most 10000000 \(symsched._validate.MAX_SAMPLES\)"),
        (["--steps", "0"], "--steps must be a positive integer"),
        # break-test 54: k-diffusion's own sample_dpmpp_2m_sde crashed mid-run ("internal error", exit 1)
        (["--sampler", "dpmpp_2m_sde", "--steps", "1"], r"--steps: k-diffusion 0.1.1's sample_dpmpp_2m_sde fails"),
        (["--sampler", "dpmpp_3m_sde", "--steps", "1"], r"--steps: .*sample_dpmpp_3m_sde fails with 1 step"),
        (["--eta", "2"], "--eta must lie in"),
        (["--reference-samples", "1"], "--reference-samples must be 0 \\(all\\) or an integer >= 2"),
        # break-test (probe): -1 was called "must be a positive integer" (0 is allowed); --steps beyond the grid
        # surfaced timesteps()' own "num_steps must not exceed" without the option
        (["--seed", "-1"], "^symsched probe: error: --seed must be a non-negative integer"),
        (["--reference-samples", "-1"], "--reference-samples must be 0 \\(all\\) or an integer >= 2"),
        (["--steps", "1001", "--schedules", "grid-leading"], "--steps must be at most the 1000 training timesteps"),
        # audit of 4 December: --seeds had no bound (10**8 seeds ran until killed); each seed runs every schedule
        (["--seeds", "101"], r"--seeds must be at most 100 \(symsched._validate.MAX_ENTRIES\)"),
        (["--reference", str(tmp_path / "nan.npy")], "--reference must be finite \\(sample 3 holds NaN or inf\\)"),
        (["--model", str(tmp_path / "nope")],
         "--model must be builtin:patches16, a patches16.safetensors written by .symsched train-demo., or a folder"),
        (["--model", str(tmp_path / "m")], "needs torch and diffusers|is not a diffusers model folder.*config.json"),
        (["--model", str(tmp_path)], "--out .* lies inside the --model folder"),
    ]
    (tmp_path / "m").mkdir()
    nan = mc.gaussian_field(S8, 50, seed=1)
    nan[3, 2, 5] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    for extra, msg in cases:
        assert main(["probe", "--out", str(tmp_path / "o"), "--no-progress", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("symsched probe: error:") and len(err.strip().splitlines()) == 1, err
        assert __import__("re").search(msg, err), (msg, err)


def test_cli_probe_names_the_options_when_a_schedule_does_not_fit_the_grid(monkeypatch, tmp_path, capsys):
    """break-test F5: on a model trained with 50 timesteps, --steps 30 printed "karras schedule on the given grid:
    levels alpha_bar[18] and alpha_bar[19] snap to the same grid timestep 4: ... (use fewer steps or a finer grid)",
    naming no option and a fix the command line does not have. The line now names --steps and --schedules, says
    which step count fits and that the schedule can be dropped, before any optimisation."""
    pytest.importorskip("ot", reason='the probe\'s sliced W2 needs POT: pip install -e ".[torch]"')
    g = schedules.training_grid("linear", num_train_timesteps=50)
    monkeypatch.setattr(cmd, "_builtin", lambda name: cmd.ProbeModel(
        name, probe.wiener_denoiser(S8, prediction="sample"), mc.gaussian_field(S8, 300, seed=9), S8, g, None))
    base = ["probe", "--out", str(tmp_path / "o"), "--no-progress", "--samples", "10", "--seeds", "1"]
    for extra in ([], ["--schedules", "grid-trailing,karras"]):  # the default schedules, and karras given by name
        assert main(base + ["--steps", "30", *extra]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("symsched probe: error: --steps 30 / --schedules karras: 30 levels of karras do not "
                              "fit the 50-timestep training grid of --model builtin:"), err
        assert "snap to the same grid timestep" in err and "finer grid" not in err
        assert err.rstrip().endswith("use fewer --steps (--steps 10 fits) or drop karras from --schedules"), err
    with pytest.raises(schedules.GridCollision):  # the count named is the largest that fits
        schedules.standard_schedule("karras", 11, grid=g)
    assert main(base + ["--steps", "10", "--schedules", "grid-trailing,karras"]) == 0
    assert main(base + ["--steps", "30", "--schedules", "grid-trailing,kl_optimal"]) == 0  # (the others fit)


def test_cli_probe_header_names_the_ddpm_variance(stub, tmp_path, capsys):
    """break-test (probe): --variance beta ran, but the header and probe.md said just "ddpm"."""
    args = ["probe", "--out", str(tmp_path / "p"), "--steps", "3", "--samples", "50", "--seeds", "1", "--no-progress",
            "--schedules", "karras,linear-trailing", "--sampler", "ddpm", "--variance", "beta"]
    assert main(args) == 0
    assert "ddpm (variance=beta)" in capsys.readouterr().out
    assert "ddpm (variance=beta)" in (tmp_path / "p" / "probe.md").read_text()


def test_reference_subset_is_fixed_and_in_order():
    ref = np.arange(50.0)[:, None] * np.ones((1, 3))
    sub = cmd.subset(ref, 20)
    assert sub.shape == (20, 3) and np.all(np.diff(sub[:, 0]) > 0)
    np.testing.assert_array_equal(sub, cmd.subset(ref, 20))
    assert cmd.subset(ref, 0) is ref and cmd.subset(ref, 80) is ref


def test_reference_loading(tmp_path):
    from PIL import Image

    arr = np.random.default_rng(0).uniform(-1, 1, (5, 8, 8))
    np.save(tmp_path / "r.npy", arr)
    np.testing.assert_array_equal(cmd._load_reference(tmp_path / "r.npy", (8, 8)), arr)
    np.testing.assert_array_equal(cmd._load_reference(tmp_path / "r.npy", (1, 8, 8)), arr[:, None])
    rgb = np.random.default_rng(1).uniform(-1, 1, (4, 8, 8, 3))
    np.save(tmp_path / "c.npy", rgb)
    np.testing.assert_array_equal(cmd._load_reference(tmp_path / "c.npy", (3, 8, 8)), np.moveaxis(rgb, -1, 1))
    with pytest.raises(ValueError, match=r"--reference must have shape \(N, 3, 4, 4\)"):
        cmd._load_reference(tmp_path / "c.npy", (3, 4, 4))
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 60 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    imgs = cmd._load_reference(folder, (3, 8, 8))
    assert imgs.shape == (3, 3, 8, 8)
    np.testing.assert_allclose(imgs[:, 0, 0, 0], [2 * 60 * i / 255 - 1 for i in range(3)], atol=1e-9)
    assert cmd._load_reference(folder, (8, 8)).shape == (3, 8, 8)


def test_report_section_with_and_without_the_model(stub, tmp_path, monkeypatch):
    sec = cmd.report_section(tmp_path, steps=3, n_samples=100, seeds=(0, 1))
    assert sec.markdown.startswith("## Does it help a real model?")
    assert "| optimised-w2 |" in sec.markdown and "Paired differences" in sec.markdown
    assert "<table>" in sec.html and (tmp_path / "probe.png").is_file() and sec.figure == "probe.png"

    def missing(*a, **k):
        raise ImportError("No module named 'torch'")

    monkeypatch.setattr(cmd, "load_probe_model", missing)
    sec = cmd.report_section(tmp_path / "x")
    assert "Skipped" in sec.markdown and 'pip install "symsched[torch]"' in sec.markdown
    assert not (tmp_path / "x" / "probe.png").exists()


def test_report_section_reads_a_repeated_probe_from_the_cache(stub, tmp_path, monkeypatch):
    """A second identical probe is read from the disk cache (no sampling): the same tables and the same figure
    bytes, and a note saying so; other settings, a corrupt entry or SYMSCHED_DISK_CACHE=0 measure again."""
    runs = []
    real = cmd.probe_run
    monkeypatch.setattr(cmd, "probe_run", lambda *a, **k: runs.append(k) or real(*a, **k))
    first = cmd.report_section(tmp_path / "a", steps=3, n_samples=60, seeds=(0, 1))
    second = cmd.report_section(tmp_path / "b", steps=3, n_samples=60, seeds=(0, 1))
    assert len(runs) == 1
    assert "read from the cache" in second.markdown and "read from the cache" not in first.markdown
    strip = lambda t: t.replace("; read from the cache of an earlier identical run, SYMSCHED_DISK_CACHE=0 "  # noqa: E731
                                "measures again", "")
    assert strip(second.markdown) == first.markdown and strip(second.html) == first.html
    assert (tmp_path / "b" / "probe.png").read_bytes() == (tmp_path / "a" / "probe.png").read_bytes()

    cmd.report_section(tmp_path / "c", steps=3, n_samples=60, seeds=(1, 2))  # other seeds: another entry
    assert len(runs) == 2
    entries = sorted((cmd._probe_cache().cache_dir()).glob("*.json"))
    assert len(entries) == 2 and all(e.stat().st_mode & 0o777 == 0o600 for e in entries)
    import base64

    good = entry_doc(entries[0])
    header_only = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    for bad in ({"png": "PHNjcmlwdD4="},  # base64 of "<script>"
                {"png": header_only}, {"png": good["png"][:len(good["png"]) // 2]},  # not a whole PNG
                {"seconds": float("nan")}, {"seconds": True}, {"format": True}, {"verdicts": "x"}):
        assert cmd._valid_probe_entry(good) and cmd._probe_cache().read(entries[0], good["key"], cmd._valid_probe_entry)
        planted = {**good, **bad}
        write_sealed(entries[0], json.dumps(planted))  # sealed: the checks behind the seal
        assert cmd._probe_cache().read(entries[0], good["key"], cmd._valid_probe_entry) is None, bad
        write_sealed(entries[0], json.dumps(good))
    write_sealed(entries[0], "[" * 100000 + "]" * 100000)  # nested beyond the JSON decoder's recursion limit
    assert cmd._probe_cache().read(entries[0], good["key"], cmd._valid_probe_entry) is None
    for e in entries:  # a planted entry whose figure is not a PNG is ignored, and replaced
        doc = entry_doc(e) if e != entries[0] else dict(good)
        doc["png"] = "PHNjcmlwdD4="
        write_sealed(e, json.dumps(doc))
    third = cmd.report_section(tmp_path / "d", steps=3, n_samples=60, seeds=(0, 1))
    assert len(runs) == 3 and "read from the cache" not in third.markdown
    monkeypatch.setenv("SYMSCHED_DISK_CACHE", "0")
    cmd.report_section(tmp_path / "e", steps=3, n_samples=60, seeds=(0, 1))
    assert len(runs) == 4


def test_report_reads_the_probe_cache_in_its_own_process(stub, tmp_path):
    """Audit of 6 December: with workers (report's default --jobs) an unsafe probe-cache entry (mode 0666) was
    bypassed and replaced without the promised warning: the worker that read it silences the cache warnings (the
    parent gives them once), and the parent checked only the directory. The report now reads the cache itself: a
    valid entry needs no worker, an unsafe one warns here and the worker measures."""
    import argparse
    import warnings

    from symsched.commands import report

    class Ctx:  # what start_probe uses of report.Context; submit records what would go to a worker
        args = argparse.Namespace(probe_samples=60, seed=0)
        ks, out = [3], tmp_path / "r"

        def __init__(self):
            self.data, self.jobs = {}, []

        def submit(self, fn, *a, **k):
            self.jobs.append(fn)
            return "submitted"

    cmd.report_section(tmp_path / "a", steps=3, n_samples=60, seeds=(0, 1))  # measured: one entry
    ctx = Ctx()
    report.start_probe(ctx)
    assert ctx.jobs == [] and "read from the cache" in ctx.data["probe"].result().markdown
    assert (ctx.out / "probe.png").read_bytes() == (tmp_path / "a" / "probe.png").read_bytes()
    (entry,) = cmd._probe_cache().cache_dir().glob("*.json")
    entry.chmod(0o666)
    ctx = Ctx()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report.start_probe(ctx)
    said = [str(w.message) for w in caught if issubclass(w.category, cmd.ProbeCacheWarning)]
    assert len(said) == 1 and "is writable by group or others; it was not read" in said[0], said
    assert ctx.jobs == [cmd.report_section] and ctx.data["probe"] == "submitted"
    entry.parent.chmod(0o777)  # an unsafe directory: said here too, and the worker measures
    ctx = Ctx()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report.start_probe(ctx)
    finally:
        entry.parent.chmod(0o700)
    said = [str(w.message) for w in caught if issubclass(w.category, cmd.ProbeCacheWarning)]
    assert len(said) == 1 and "writable by group or others" in said[0] and "entry" not in said[0], said
    assert ctx.jobs == [cmd.report_section]


def test_report_has_the_probe_section(stub, tmp_path, monkeypatch):
    import symsched._latex_cache
    import symsched.symbolic.latex

    monkeypatch.setattr(symsched.symbolic.latex, "render_all", lambda *a: {"symsched.tex": "% stub\n"})  # not under test
    # ... and not stored in the session's LaTeX cache, where a later report would read the stub as its derivations
    monkeypatch.setattr(symsched._latex_cache, "cached", lambda key, render: render())
    out = tmp_path / "rep"
    np.save(tmp_path / "S.npy", S8)  # a small spectrum keeps the report's own optimisations quick
    assert main(["report", "--out", str(out), "--spectrum", str(tmp_path / "S.npy"), "--steps", "3",
                 "--samples", "200", "--no-progress", "--probe-samples", "100", "--jobs", "0"]) == 0  # the stub
    # is patched in this process: run the report's jobs here (with workers the probe loads the real model)
    summary = (out / "summary.md").read_text()
    assert "## Does it help a real model?" in summary and "probe.png" in summary
    # the section says what it samples: not the report's schedules (the report's spectrum, first level pinned) but
    # schedules optimised again for the model's own data (the stub's 8x8 spectrum) on its 1000-level DDPM grid,
    # with both ends free
    para = next(ln for ln in summary.splitlines() if "A learned denoiser samples" in ln)
    assert "samples with them" not in para and "pinned" not in para
    assert ("These are not the schedules above (optimised for the report's spectrum): optimised-w2, optimised-kl "
            "are optimised again, for the 8×8 spectrum of the training patches of `builtin:patches16` (white-noise "
            "start), on the model's training grid (1000 levels) with both ends free (the optimiser chooses the "
            "first and the last level); linear-trailing, karras are taken on the same grid.") in para
    assert "Does it help a real model?" in (out / "summary.html").read_text()
    assert (out / "probe.png").is_file()


def test_report_rejects_bad_probe_samples(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path), "--probe-samples", "1"]) == 2
    assert "--probe-samples must be 0 (skip) or at least 2" in capsys.readouterr().err
    # audit of 4 December: beyond MMD²'s bound the refusal named the probe command's --samples, not this option
    assert main(["report", "--out", str(tmp_path), "--probe-samples", "20001"]) == 2
    err = capsys.readouterr().err
    assert "--probe-samples must be at most 20000" in err and "MAX_MMD_SAMPLES" in err and " --samples" not in err


@pytest.mark.diffusers
def test_cli_probe_with_a_diffusers_folder(tmp_path, capsys):
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    unet = tiny_unet()
    folder = tmp_path / "model"
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    diffusers.DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
    np.save(tmp_path / "ref.npy", np.random.default_rng(0).uniform(-1, 1, (50, 8, 8)))
    args = ["probe", "--model", str(folder), "--out", str(tmp_path / "o"), "--steps", "3", "--samples", "20",
            "--seeds", "2", "--no-progress", "--schedules", "optimised-w2,linear-trailing"]
    assert main(args) == 2
    assert "--reference is required" in capsys.readouterr().err
    assert main(args + ["--reference", str(tmp_path / "ref.npy")]) == 0
    info = json.loads((tmp_path / "o" / "probe.json").read_text())
    assert info["model"] == str(folder) and set(info["schedules"]) == {"optimised-w2", "linear-trailing"}
    assert (tmp_path / "o" / "probe.png").is_file()


@pytest.mark.diffusers
def test_cli_probe_model_folder_faults_name_model(tmp_path, capsys):
    """Break-test I: pickled .bin weights printed diffusers' own log line before ours; a config whose betas give no
    grid said "grid must not be empty" without naming --model."""
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    unet = tiny_unet()
    np.save(tmp_path / "ref.npy", np.random.default_rng(0).uniform(-1, 1, (50, 8, 8)))
    pickled = tmp_path / "pickled"
    unet.save_pretrained(pickled / "unet", safe_serialization=False)
    diffusers.DDPMScheduler(num_train_timesteps=1000).save_pretrained(pickled / "scheduler")
    base = ["probe", "--reference", str(tmp_path / "ref.npy"), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main(base + ["--model", str(pickled)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no safetensors weights" in err and "never unpickles" in err
    bad = tmp_path / "bad"
    unet.save_pretrained(bad / "unet", safe_serialization=True)
    for cfg in ({"beta_end": 2.0}, {"beta_start": float("nan")}):
        diffusers.DDPMScheduler(num_train_timesteps=1000, **cfg).save_pretrained(bad / "scheduler")
        assert main(base + ["--model", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--model {str(bad)!r}: its scheduler config gives no usable" in err, cfg


@pytest.mark.diffusers
def test_cli_probe_names_the_prediction_type_of_a_model_folder(tmp_path, capsys):
    """break-test F7a: a scheduler config with "prediction_type": "flow" was reported as "its scheduler config gives
    no usable training grid (scheduler.config.prediction_type must be ...)": the grid is fine, the prediction type
    is not. The line says so."""
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    folder = tmp_path / "flow"
    tiny_unet().save_pretrained(folder / "unet", safe_serialization=True)
    diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type="flow").save_pretrained(folder / "scheduler")
    np.save(tmp_path / "ref.npy", np.random.default_rng(0).uniform(-1, 1, (50, 8, 8)))
    assert main(["probe", "--model", str(folder), "--reference", str(tmp_path / "ref.npy"), "--out",
                 str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"--model {str(folder)!r}: its scheduler config's prediction_type is not one symsched probe drives" in err
    assert "(got 'flow')" in err and "'v_prediction'" in err and "training grid" not in err


@pytest.mark.diffusers
@pytest.mark.parametrize("ptype", ["v", "x0", "eps"])
def test_cli_probe_refuses_symscheds_aliases_in_a_scheduler_config(tmp_path, capsys, ptype):
    """New-user pass of 6 December: "prediction_type": "v" (or "x0", "eps": symsched's own aliases) in a model folder's
    scheduler config was probed as v-prediction (x0, epsilon), though diffusers' schedulers refuse these names and the
    folder cannot run in diffusers; the README says only epsilon, sample and v_prediction are taken."""
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    folder = tmp_path / ptype
    tiny_unet().save_pretrained(folder / "unet", safe_serialization=True)
    diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type=ptype).save_pretrained(folder / "scheduler")
    np.save(tmp_path / "ref.npy", np.random.default_rng(0).uniform(-1, 1, (50, 8, 8)))
    assert main(["probe", "--model", str(folder), "--reference", str(tmp_path / "ref.npy"), "--out",
                 str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "its scheduler config's prediction_type is not one symsched probe drives" in err and f"(got {ptype!r})" in err


def test_a_retrained_weight_file_is_a_probe_model(tmp_path, capsys):
    """break-test: `symsched probe --model retrained/patches16.safetensors` (what `symsched train-demo` writes) was
    refused as "not a diffusers folder"; it is the built-in network on the same patches, so it probes like it."""
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from symsched import models

    f = tmp_path / "retrained" / "patches16.safetensors"
    f.parent.mkdir()
    f.write_bytes(models.weights_path("patches16").read_bytes())
    pm = cmd.load_probe_model(str(f))
    ref = cmd.load_probe_model("builtin:patches16")
    assert pm.label == str(f) and pm.denoiser.name == str(f)
    np.testing.assert_array_equal(pm.grid, ref.grid)
    np.testing.assert_array_equal(pm.spectrum, ref.spectrum)
    x = np.random.default_rng(0).normal(size=(4, 16, 16))
    np.testing.assert_array_equal(pm.denoiser(x, 0.5), ref.denoiser(x, 0.5))  # the same weights, the same denoiser
    assert main(["probe", "--model", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--model" in err and "does not exist" in err


def test_probe_refuses_an_out_it_cannot_write_before_loading_the_model(tmp_path, capsys) -> None:
    """audit of 4 December: a folder named probe.md in --out was found after the sampling. Checked first now: the
    refusal names --out, not the (missing) --model that the sampling would have needed."""
    (tmp_path / "probe.md").mkdir()
    code = main(["probe", "--model", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path), "--steps", "2",
                 "--samples", "4", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err and "probe.md' is a folder where" in err and "missing" not in err, err
    file_out = tmp_path / "f"
    file_out.write_text("")
    assert main(["probe", "--out", str(file_out), "--steps", "2", "--samples", "4", "--no-progress"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("sampler,extra", [("ddpm", ["--variance", "beta"]), ("euler", []),
                                           ("euler", ["--option", "s_churn=1"]), ("heun", [])])
def test_cli_probe_records_no_eta_for_a_sampler_without_one(stub, tmp_path, sampler, extra):
    """Audit of 5 December: probe.json said "eta": 0.0 for ddpm, euler and heun, which take no eta (dpmpp_2m,
    which has none either, said null)."""
    if extra[:1] == ["--option"]:  # churn runs k-diffusion's own sampler: torch and k-diffusion
        from kdiffusion_helpers import load_sampling

        load_sampling()
    out = tmp_path / "p"
    assert main(["probe", "--out", str(out), "--steps", "3", "--samples", "20", "--seeds", "2", "--no-progress",
                 "--schedules", "linear-trailing,karras", "--sampler", sampler, *extra]) == 0
    info = json.loads((out / "probe.json").read_text())
    assert info["sampler"] == sampler and info["eta"] is None


@pytest.mark.diffusers
def test_cli_probe_model_folder_load_failures_are_one_line_and_exp_betas_load(tmp_path, capsys):
    """learned-model audit of 5 Dec: a config.json whose shapes differ from the safetensors weights (RuntimeError) and
    a beta_schedule DDPMScheduler lacks (NotImplementedError: HeunDiscreteScheduler's "exp") ended in "internal
    error", exit 1. The first is refused in one line naming --model; the second loads with the config's own class
    (its training grid is fine, as the Python API's diffusers_denoiser accepts it); a typo is refused."""
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    np.save(tmp_path / "ref.npy", np.random.default_rng(0).uniform(-1, 1, (50, 8, 8)))
    base = ["probe", "--reference", str(tmp_path / "ref.npy"), "--out", str(tmp_path / "o"), "--no-progress",
            "--steps", "3", "--samples", "20", "--seeds", "1", "--schedules", "linear-trailing"]
    folder = tmp_path / "m"
    tiny_unet().save_pretrained(folder / "unet", safe_serialization=True)
    cfg = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps(dict(cfg, block_out_channels=[32, 64])))
    diffusers.DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
    assert main(base + ["--model", str(folder)]) == 2
    err = capsys.readouterr().err
    # (refused before diffusers allocates the model; so is a smaller one, which diffusers would load in part)
    assert err.count("\n") == 1 and len(err) < 600 and "config and weights do not match" in err
    (folder / "unet" / "config.json").write_text(json.dumps(dict(cfg, block_out_channels=[8, 8])))
    assert main(base + ["--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 600 and "config and weights do not match" in err
    (folder / "unet" / "config.json").write_text(json.dumps(cfg))
    heun = diffusers.HeunDiscreteScheduler(num_train_timesteps=1000, beta_schedule="exp")
    heun.save_config(folder / "scheduler")
    assert main(base + ["--model", str(folder)]) == 0
    capsys.readouterr()
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(dict(sched, beta_schedule="foo")))
    assert main(base + ["--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NotImplementedError" in err and "foo" in err


def test_an_integer_pixel_reference_gets_a_note(tmp_path, capsys):
    """learned-model audit of 5 Dec: a uint8 .npy of pixels 0..255 was used silently against samples in [-1, 1]
    (FD ~ 6.5e6), while a folder of images is rescaled: the .npy stays as given (its scale is the user's), with a
    note; a float array or integers within [-1, 1] get none."""
    from symsched.commands.probe import _load_reference

    np.save(tmp_path / "u8.npy", np.random.default_rng(0).integers(0, 256, (5, 16, 16), dtype=np.uint8))
    np.save(tmp_path / "f.npy", np.random.default_rng(0).uniform(0, 255, (5, 16, 16)))
    arr = _load_reference(tmp_path / "u8.npy", (16, 16))
    assert arr.dtype == np.float64 and arr.max() > 1
    assert "note: --reference holds integers up to 255 (dtype uint8), used as given" in capsys.readouterr().out
    _load_reference(tmp_path / "f.npy", (16, 16))
    np.save(tmp_path / "i8.npy", np.ones((5, 16, 16), dtype=np.int8))
    _load_reference(tmp_path / "i8.npy", (16, 16))
    assert capsys.readouterr().out == ""


def _tiny_model_folder(tmp_path):
    """A saved tiny diffusers pipeline folder (unet/ + scheduler/) and the probe's arguments for it."""
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    folder = tmp_path / "m"
    tiny_unet().save_pretrained(folder / "unet", safe_serialization=True)
    diffusers.DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
    np.save(tmp_path / "ref.npy", np.random.default_rng(0).uniform(-1, 1, (50, 8, 8)))
    base = ["probe", "--model", str(folder), "--reference", str(tmp_path / "ref.npy"), "--out", str(tmp_path / "o"),
            "--no-progress", "--steps", "3", "--samples", "20", "--seeds", "1", "--schedules", "linear-trailing"]
    return folder, base


@pytest.mark.diffusers
@pytest.mark.parametrize("where, edit, needle", [
    ("scheduler", "[" * 200000, "as JSON (nested too deeply)"),
    ("scheduler", {"num_train_timesteps": 1000.5}, "num_train_timesteps must be an integer (got 1000.5)"),
    ("scheduler", {"num_train_timesteps": None}, "num_train_timesteps must be an integer (got null)"),
    ("scheduler", {"num_train_timesteps": "1000"}, "num_train_timesteps must be an integer"),
    ("scheduler", {"num_train_timesteps": [1000]}, "num_train_timesteps must be an integer"),
    ("scheduler", {"beta_start": "x"}, 'beta_start must be a number (got "x")'),
    ("unet", '{"a": ' * 100000, "as JSON (nested too deeply)"),
    ("unet", {"in_channels": "1"}, 'in_channels must be an integer (got "1")'),
    ("unet", {"sample_size": "8"}, 'sample_size must be an integer or a list of integers or null (got "8")'),
    ("unet", {"block_out_channels": "ab"}, "block_out_channels must be a list of integers"),
    # audit of 6 December: diffusers built a 10**9-step grid (out of memory at 23.5 GB) before anything refused it;
    # a unet config of far more parameters than its weights hold is allocated before the mismatch shows
    ("scheduler", {"num_train_timesteps": 10**9}, "num_train_timesteps must give 2 to 100000 training timesteps "
     "(symsched._validate.MAX_TRAIN_TIMESTEPS; got 1000000000)"),
    ("scheduler", {"num_train_timesteps": 1}, "num_train_timesteps must give 2 to 100000 training timesteps"),
    ("scheduler", {"trained_betas": [0.01] * 100001}, "trained_betas must give 2 to 100000 training timesteps "
     "(symsched._validate.MAX_TRAIN_TIMESTEPS; got 100001 values)"),
    ("unet", {"block_out_channels": [8, 10**9]}, "describes a UNet2DModel of more than 2**63 bytes of parameters, "
     "but its safetensors weights hold "),
    ("unet", {"block_out_channels": [8, 10**5]}, "describes a UNet2DModel of 1"),
    ("unet", {"block_out_channels": [8, 32]}, "parameters, but its safetensors weights hold "),
    ("unet", {"layers_per_block": 10**6}, "layers_per_block must give at most 64 layers (got 1000000)"),
    # ... and one of fewer (layers_per_block -1 failed while sampling, "internal error"; add_attention false sampled
    # with the mid-block's attention weights dropped), zero sizes (three lines: torch's zero-element warnings) and a
    # group size 0 ("numeric error: integer modulo by zero", naming nothing)
    ("unet", {"layers_per_block": -1}, "parameters, but its safetensors weights hold 41,609 values"),
    ("unet", {"add_attention": False}, "parameters, but its safetensors weights hold 41,609 values"),
    ("unet", {"in_channels": 0}, "config and weights do not match"),
    ("unet", {"block_out_channels": [0, 16]}, "config and weights do not match"),
    ("unet", {"norm_num_groups": 0}, "does not describe a UNet2DModel diffusers can build (ZeroDivisionError: "),
    ("scheduler", " " * (17 << 20) + "{}", "is larger than 16777216 bytes"),
])
def test_cli_probe_malformed_model_configs_are_one_line_naming_file_and_key(tmp_path, capsys, where, edit, needle):
    """hardening audit: a scheduler config nested 200000 deep (RecursionError), num_train_timesteps 1000.5 / null /
    "1000" / [1000] or beta_start "x" (TypeError from torch.linspace) and a unet config's in_channels "1" (TypeError
    inside UNet2DModel) ended in "internal error", exit 1. Each is one usage line naming the file and the key; sizes
    beyond the limits are refused before diffusers allocates anything."""
    pytest.importorskip("torch")
    folder, base = _tiny_model_folder(tmp_path)
    path = folder / where / ("config.json" if where == "unet" else "scheduler_config.json")
    text = edit if isinstance(edit, str) else json.dumps(dict(json.loads(path.read_text()), **edit))
    path.write_text(text)
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("symsched probe: error: --model "), err
    assert f"{str(path)!r}" in err and needle in err and "internal error" not in err, err


@pytest.mark.diffusers
def test_cli_probe_prints_its_grid_notes_after_the_run_and_none_before_a_refusal(tmp_path, capsys):
    """Audit of 6 December: 100 trained_betas of 0.5 (alphas_cumprod down to 8e-31) printed two "note: linear-... does
    not fit this model's grid" lines and then the refusal (an epsilon model cannot start there): three lines. The
    notes now follow a run that happened; a refusal is one line."""
    pytest.importorskip("torch")
    folder, base = _tiny_model_folder(tmp_path)
    base = [a for a in base if a not in ("--schedules", "linear-trailing")]  # the defaults, which the notes are for
    path = folder / "scheduler" / "scheduler_config.json"
    cfg = json.loads(path.read_text())
    path.write_text(json.dumps(dict(cfg, trained_betas=[0.5] * 100, num_train_timesteps=100)))
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "prediction='epsilon' cannot give x0_hat" in err and "note:" not in err, err
    path.write_text(json.dumps(dict(cfg, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)))
    assert main([a if a != "3" else "4" for a in base]) == 0  # --steps 4: linear-trailing collides at timestep 999
    captured = capsys.readouterr()
    assert "note: linear-trailing does not fit this model's grid" in captured.out and "grid-trailing" in captured.out
    assert "note:" not in captured.err, captured.err  # notes are on stdout, as every command's


@pytest.mark.diffusers
@pytest.mark.parametrize("where", ["unet/config.json", "scheduler/scheduler_config.json"])
def test_cli_probe_names_a_config_that_is_no_regular_file(tmp_path, capsys, where):
    """Audit of 6 December: a scheduler/scheduler_config.json that is a FIFO was reported as "m/scheduler_config.json
    is missing" (the subfolder was not recognised); it is named, as what it is, and nothing blocks on it."""
    import os

    pytest.importorskip("torch")
    folder, base = _tiny_model_folder(tmp_path)
    (folder / where).unlink()
    os.mkfifo(folder / where)
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{str(folder / where)!r} is not a regular file" in err, err


@pytest.mark.diffusers
def test_cli_probe_blames_the_unet_config_for_a_bad_sample_shape(tmp_path, capsys):
    """hardening audit: a unet config whose sample_size gives no sample shape ([8, 8, 8]) was reported as "its
    scheduler config gives no usable training grid (unet.config: ...)"; the unet config is at fault."""
    pytest.importorskip("torch")
    folder, base = _tiny_model_folder(tmp_path)
    path = folder / "unet" / "config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), sample_size=[8, 8, 8])))
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"its unet config {str(path)!r} gives no usable sample shape" in err, err
    assert "scheduler config" not in err


@pytest.mark.diffusers
@pytest.mark.parametrize("fault", ["renamed", "fifo", "dev-zero"])
def test_cli_probe_unloadable_unet_weights_print_one_line(tmp_path, capfd, fault):
    """hardening audit: unet weights under another name (model.safetensors), a FIFO or a symlink to /dev/zero made
    diffusers log "An error occurred while trying to fetch ..." before our error line. Its logging is silenced
    around the load (and its verbosity restored): one line."""
    pytest.importorskip("torch")
    from diffusers.utils import logging as dlog

    folder, base = _tiny_model_folder(tmp_path)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    if fault == "renamed":
        weights.rename(weights.with_name("model.safetensors"))
    elif fault == "fifo":
        weights.unlink()
        os.mkfifo(weights)
    else:
        weights.unlink()
        weights.symlink_to("/dev/zero")
    before = dlog.get_verbosity()
    capfd.readouterr()
    assert main(base) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith("symsched probe: error: --model "), err
    assert "cannot load a UNet2DModel" in err and "An error occurred" not in err
    assert dlog.get_verbosity() == before


@pytest.mark.diffusers
def test_cli_probe_says_it_does_not_clip_where_the_models_config_would(tmp_path, capsys) -> None:
    """Audit of 6 December: a DDPMScheduler config at its default clip_sample=True was run unclipped without a word
    (export.from_diffusers refuses such a config); the probe now says which setting it does not apply."""
    pytest.importorskip("torch")
    import json

    folder, base = _tiny_model_folder(tmp_path)
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "its scheduler config's clip_sample=True is not applied: the probe runs the linear sampler" in out, out
    path = folder / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), clip_sample=False)))
    assert main(base) == 0
    assert "is not applied" not in capsys.readouterr().out


def test_the_clipping_note_reads_the_configs_own_class() -> None:
    """Review of 6 December: the note read the config loaded as a DDPMScheduler, whose clip_sample=True default
    fired for an EulerDiscreteScheduler config that never clips; the config's own class decides now."""
    diffusers = pytest.importorskip("diffusers")
    from pathlib import Path

    from symsched.commands.probe import _clipping_notes

    m = Path("m")
    assert _clipping_notes(m, diffusers.EulerDiscreteScheduler, {}) == ()
    assert "clip_sample=True is not applied" in _clipping_notes(m, diffusers.DDPMScheduler, {})[0]
    assert _clipping_notes(m, diffusers.DDPMScheduler, {"clip_sample": False}) == ()
    assert "thresholding=True" in _clipping_notes(m, diffusers.DDIMScheduler, {"clip_sample": False,
                                                                                "thresholding": True})[0]


def test_cli_probe_notes_where_ddimscheduler_runs_another_schedule(stub, tmp_path, capsys):
    """break-test (7 December): the docs said grid-linspace is what DDIMScheduler runs; it steps by T//K instead."""
    base = ["probe", "--out", str(tmp_path / "p"), "--samples", "20", "--seeds", "1", "--no-progress"]
    assert main(base + ["--steps", "5", "--schedules", "grid-linspace,grid-leading,grid-trailing"]) == 0
    out = capsys.readouterr().out
    assert "note: grid-linspace is probed as a schedule" in out and "T//K = 200 (T = 1000)" in out
    assert "note: grid-leading" not in out and "note: grid-trailing" not in out
    assert main(base + ["--steps", "7", "--schedules", "grid-trailing"]) == 0  # 7 does not divide 1000
    assert "note: grid-trailing is probed as a schedule" in capsys.readouterr().out
    assert main(base + ["--steps", "5", "--schedules", "grid-linspace", "--sampler", "ddpm"]) == 0
    assert "note: grid-linspace" not in capsys.readouterr().out  # DDPMScheduler steps to the next timestep
