"""The shipped patches16 weights are what the training code makes: a short re-run reproduces the
head of the shipped loss curve, and ``symsched train-demo`` writes loadable weights and a log."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from symsched import models  # noqa: E402
from symsched.cli import main  # noqa: E402
from symsched.models.train import LOG_HEAD, TrainConfig, train  # noqa: E402

HEAD = 40  # training steps re-run by the test
#: Relative tolerance on each of the first HEAD losses. Same seed, same data order (NumPy PCG64),
#: same initialisation and one thread with deterministic algorithms make a re-run on the same
#: machine bit-identical; across machines only the float32 rounding of the BLAS/elementwise kernels
#: differs (another ISA path or summation order). Re-running with MKL_CBWR=COMPATIBLE and
#: ATEN_CPU_CAPABILITY=default (SSE2 paths) moved the first 40 losses by at most 8e-8 relative, and
#: two threads instead of one by 1.5e-7; a change of seed, data, batch order or recipe moves them by
#: more than 1e-2 (the companion test). 1e-4 sits between, a factor of >= 100 from each side.
RTOL = 1e-4


@pytest.fixture(scope="module")
def shipped_log() -> dict:
    return json.loads(models.weights_path().with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def head() -> list[float]:
    return train(TrainConfig(), stop_after=HEAD).losses


def test_shipped_log_describes_the_default_recipe(shipped_log) -> None:
    assert shipped_log["train_config"] == TrainConfig().to_dict()
    steps = TrainConfig().steps
    assert shipped_log["steps_done"] == steps and len(shipped_log["loss_head"]) == min(steps, LOG_HEAD)
    assert len(shipped_log["loss_means"]) == -(-steps // shipped_log["loss_window"])


def test_rerun_reproduces_the_shipped_loss_curve_head(head, shipped_log) -> None:
    np.testing.assert_allclose(head, shipped_log["loss_head"][:HEAD], rtol=RTOL)


def test_loss_curve_check_rejects_another_seed(head) -> None:
    other = train(TrainConfig(seed=1), stop_after=HEAD).losses
    rel = np.abs(np.array(other) - np.array(head)) / np.array(head)
    assert rel.max() > 100 * RTOL


def test_train_demo_writes_loadable_weights_and_log(tmp_path, capsys) -> None:
    assert main(["train-demo", "--out", str(tmp_path), "--steps", "20", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "trained 20 steps" in out and "held-out MSE" in out and "final loss of the raw network" in out
    # (audit of 6 December) a short run says that it saved a moving average still 98 % initial: 0.999**20 = 0.980
    assert "note: the saved and scored weights are the moving average of the iterates (decay 0.999), which after " \
           "20 steps still holds 98% of the initial weights" in out, out
    log = json.loads((tmp_path / "patches16.json").read_text())
    assert len(log["loss_head"]) == 20 and log["train_config"]["steps"] == 20
    assert set(log["heldout_mse"]) == {"0.9", "0.5", "0.1"}
    m = models.load_model(tmp_path / "patches16.safetensors")
    assert np.all(np.isfinite(m.denoiser(np.zeros((2, 16, 16)), 0.0)))


@pytest.mark.parametrize("args, match", [(["--steps", "0"], "--steps"), (["--minutes", "-1"], "--minutes"),
                                         (["--threads", "0"], "--threads")])
def test_train_demo_bad_arguments_exit_2(tmp_path, capsys, args, match) -> None:
    assert main(["train-demo", "--out", str(tmp_path), *args]) == 2
    assert match in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ bad configurations
@pytest.mark.parametrize("change, match", [
    ({"sigma_data": 0.0}, r"sigma_data must be a positive finite number in \[0.001, 1000\]"),
    ({"grad_clip": float("nan")}, "grad_clip must be finite"),
    ({"level_sampling": "bogus"}, "level_sampling must be one of 'uniform', 'log_snr', 'mixed'"),
    ({"ema": 2.0}, r"ema must lie in \[0, 1\)"),
    ({"ema": 1.0}, r"ema must lie in \[0, 1\)"),
    ({"lr": float("nan")}, "lr must be finite"),
    ({"steps": 0}, "steps must be a positive integer up to MAX_TRAIN_STEPS = 1000000"),
    ({"steps": -3}, "steps must be a positive integer up to MAX_TRAIN_STEPS"),
    ({"steps": 10**20}, "steps must be a positive integer up to MAX_TRAIN_STEPS"),
    ({"steps": 2.5}, "steps must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"batch_size": 10**5}, "batch_size must be at most 65536"),
    ({"seed": 2**64}, "seed must be at most 18446744073709551615"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"num_train_timesteps": 1}, "num_train_timesteps must be an integer >= 2"),
    ({"beta_schedule": "nope"}, "beta_schedule must be one of"),
    ({"warmup": -1}, "warmup must be an integer in"),
])
def test_train_refuses_a_bad_configuration_before_any_step(change, match) -> None:
    """break-test (models) 5: sigma_data=0 gave losses [inf, nan] and NaN weights, grad_clip=nan NaN weights,
    level_sampling="bogus" ran as "mixed", ema=2 and steps <= 0 returned a network, batch_size=0 failed in NumPy."""
    from dataclasses import replace

    def no_step(step, loss):
        raise AssertionError(f"a training step ran (loss {loss})")

    with pytest.raises(ValueError, match=match):
        train(replace(TrainConfig(steps=2, warmup=1), **change), on_step=no_step)


def test_train_refuses_bad_run_arguments() -> None:
    from symsched._validate import ArgumentTypeError

    cfg = TrainConfig(steps=2, warmup=1)
    for kwargs, match in (({"stop_after": -1}, "stop_after must be a positive integer"),
                          ({"stop_after": 0}, "stop_after must be a positive integer"),
                          ({"minutes": -1}, "minutes must be positive"),
                          ({"minutes": float("nan")}, "minutes must be finite")):
        with pytest.raises(ValueError, match=match):
            train(cfg, **kwargs)
    for args, kwargs, match in (((None,), {}, "config must be a TrainConfig"),
                                ((cfg,), {"stop_after": "1"}, "stop_after must be a positive integer"),
                                ((cfg,), {"on_step": 3}, "on_step must be None or a callable"),
                                ((TrainConfig(seed="0"),), {}, "seed must be a non-negative integer")):
        with pytest.raises(ArgumentTypeError, match=match):
            train(*args, **kwargs)


@pytest.mark.parametrize("args, option, needle", [
    (["--seed", str(2**64)], "--seed", "seed must be at most 18446744073709551615"),
    (["--threads", "999"], "--threads", "threads must be an integer in [1, "),
    (["--steps", "99999999999999999999"], "--steps", "steps must be a positive integer up to MAX_TRAIN_STEPS"),
    (["--minutes", "nan"], "--minutes", "minutes must be finite"),
])
def test_train_demo_checks_every_argument_before_printing(tmp_path, capsys, args, option, needle) -> None:
    """break-test (models) 6: --seed 2**64 printed the banner, then "Overflow when unpacking long long" (no --seed);
    --threads 3 on a 2-CPU machine printed the banner, then the error."""
    # --minutes 0.01 unless the case gives its own (an option given twice is refused): a regression cannot train
    # for hours
    minutes = [] if "--minutes" in args else ["--minutes", "0.01"]
    assert main(["train-demo", "--out", str(tmp_path / "o"), "--no-progress", *minutes, *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"symsched train-demo: error: {option}: {needle}") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_train_demo_refuses_to_write_into_the_package_data_folder(tmp_path, capsys, monkeypatch) -> None:
    """break-test (models) 9: --out symsched/models/data (or a symlink into it) would overwrite the shipped weights.
    The package's data folder is stood in for by a copy, so that a regression cannot overwrite the real one."""
    import symsched.models
    from symsched.commands.train_demo import _check_not_shipped

    with pytest.raises(ValueError, match="would write into the installed package's data folder"):
        _check_not_shipped(models.weights_path().parent, [])  # the real one
    data = tmp_path / "pkg" / "data"
    data.mkdir(parents=True)
    (data / "patches16.safetensors").write_bytes(b"shipped")
    monkeypatch.setattr(symsched.models, "weights_path", lambda name="patches16": data / "patches16.safetensors")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "patches16.safetensors").symlink_to(data / "patches16.safetensors")
    for out in (data, data / "sub", linked):
        assert main(["train-demo", "--out", str(out), "--steps", "1", "--no-progress"]) == 2
        out_text, err = capsys.readouterr()
        assert out_text == "" and "would write into the installed package's data folder" in err, err
    assert (data / "patches16.safetensors").read_bytes() == b"shipped" and not (data / "sub").exists()


def test_train_demo_refuses_the_data_folder_of_another_copy_of_symsched(tmp_path, capsys) -> None:
    """Audit of 6 December: `train-demo --out <checkout>/symsched/models/data` run with another copy of symsched
    imported (PYTHONPATH on a clone) overwrote that checkout's shipped weights: only the imported package's folder
    was guarded. A stand-in checkout here, so that a regression cannot overwrite a real one."""
    data = tmp_path / "checkout" / "symsched" / "models" / "data"
    data.mkdir(parents=True)
    (data.parent / "builtin.py").write_text("")
    (data / "patches16.safetensors").write_bytes(b"shipped")
    for out in (data, data / "sub"):
        assert main(["train-demo", "--out", str(out), "--steps", "1", "--no-progress"]) == 2
        out_text, err = capsys.readouterr()
        assert out_text == "" and "the data folder of a copy of symsched" in err and err.count("\n") == 1, err
    assert (data / "patches16.safetensors").read_bytes() == b"shipped" and not (data / "sub").exists()
    plain = tmp_path / "elsewhere" / "models" / "data"  # (a folder merely named like it, outside symsched: allowed)
    from symsched.commands.train_demo import _check_not_shipped

    _check_not_shipped(plain, [plain / "patches16.safetensors"])


def _printed_comparison(out: str) -> str:
    return next(ln for ln in out.splitlines() if ln.startswith("against the shipped run: loss curve head"))


@pytest.mark.parametrize("args", [["--minutes", "0.002"], ["--steps", "12"]])
def test_train_demo_compares_a_short_run_with_the_shipped_loss_head(tmp_path, capsys, shipped_log, args) -> None:
    """audit 6: --minutes 0.25 printed "settings differ from the shipped run: no comparison" though its train_config
    is the shipped one (only the time budget differs) and its loss head matches the shipped one. A short run is now
    compared over the steps both runs took: a time budget stops the same run early, and --steps 12 changes the
    learning rate only after the 200-step warm-up. The runs stay short: 0.12 s of training, or 12 steps."""
    assert main(["train-demo", "--out", str(tmp_path), "--no-progress", *args]) == 0
    out = capsys.readouterr().out
    assert "settings differ" not in out
    log = json.loads((tmp_path / "patches16.json").read_text())
    n = log["steps_done"]
    assert 1 <= n < TrainConfig().warmup  # both runs short of the warm-up's end: every loss comparable
    if args[0] == "--minutes":
        assert log["train_config"] == shipped_log["train_config"]
    mine, ref = np.array(log["loss_head"][:n]), np.array(shipped_log["loss_head"][:n])
    rel = float(np.max(np.abs(mine - ref) / np.abs(ref)))
    assert rel <= RTOL  # what test_rerun_reproduces_the_shipped_loss_curve_head checks for 40 steps
    line = _printed_comparison(out)
    assert line.startswith(f"against the shipped run: loss curve head ({n} steps; the first {n} steps both runs took")
    assert line.endswith(f"matches it (max relative difference {rel:.2e}, within 0.0001)")
    assert f"(weights not compared: this run took {n} of the shipped run's 12000 steps" in out


def test_train_demo_with_another_seed_is_not_compared(tmp_path, capsys) -> None:
    assert main(["train-demo", "--out", str(tmp_path), "--no-progress", "--steps", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert ("(settings differ from the shipped run: seed, steps; no comparison with the shipped loss curve or "
            "weights)") in out
    assert "against the shipped run" not in out


def test_comparable_steps_of_a_run() -> None:
    """Loss i is made by updates 0..i-1: with another total step count those are the same only in the warm-up."""
    from dataclasses import replace

    from symsched.commands.train_demo import comparable_steps

    base = TrainConfig()
    assert comparable_steps(base, 12000, 12000, 200) == (200, [])
    assert comparable_steps(base, 57, 12000, 200) == (57, [])  # a time budget: the same run, stopped early
    assert comparable_steps(replace(base, steps=5000), 5000, 12000, 200) == (200, ["steps"])  # the logged head
    assert comparable_steps(replace(base, steps=5000), 5000, 12000, 400) == (base.warmup + 1, ["steps"])
    assert comparable_steps(replace(base, steps=30), 30, 12000, 200) == (30, ["steps"])
    assert comparable_steps(replace(base, seed=3, steps=30), 30, 12000, 200) == (0, ["seed", "steps"])


def test_train_demo_refuses_an_out_it_cannot_write_before_training(tmp_path, capsys) -> None:
    """audit of 4 December: a folder named patches16.safetensors in --out was found after the whole training (25
    minutes with the default steps): now one line naming --out, exit 2, before the banner."""
    (tmp_path / "patches16.safetensors").mkdir()
    assert main(["train-demo", "--out", str(tmp_path), "--steps", "20", "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no banner: no training started
    assert "--out" in captured.err and "patches16.safetensors' is a folder where" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_the_moving_average_note_is_left_out_once_the_start_is_forgotten() -> None:
    """0.999**4603 < 1 % <= 0.999**4602: a run of the shipped 12,000 steps prints no such note."""
    from symsched.commands.train_demo import ema_note

    assert ema_note(4602, 0.999) and not ema_note(4603, 0.999) and not ema_note(12000, 0.999)


def test_weight_files_of_identical_runs_are_identical_bytes(tmp_path) -> None:
    """Audit of 6 December: two identical `train-demo --steps 5` runs wrote files that differed at byte 27 (the
    safetensors header's keys in the order of a Rust hash map, per process): the header is now written with sorted
    keys, so the bytes depend on the weights and metadata alone. Checked on a permuted header (what another process
    may write) and on a saved file, which load_model still reads."""
    import struct

    from safetensors.torch import save as safetensors_bytes

    from symsched.models.train import _sorted_header, save

    torch = pytest.importorskip("torch")
    tensors = {"b": torch.ones(3), "a": torch.zeros(2, 2)}
    raw = safetensors_bytes(tensors, metadata={"z": "1", "y": "2"})
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    shuffled = json.dumps(dict(reversed(list(header.items())))).encode()
    shuffled += b" " * (-len(shuffled) % 8)
    other = struct.pack("<Q", len(shuffled)) + shuffled + raw[8 + n:]
    assert other != raw and _sorted_header(other) == _sorted_header(raw)
    res = train(TrainConfig(steps=3), progress=False)
    save(res, tmp_path / "a.safetensors")
    data = (tmp_path / "a.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    keys = list(json.loads(data[8:8 + n]))
    assert keys == sorted(keys) and n % 8 == 0
    loaded = models.load_model(tmp_path / "a.safetensors").net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in res.net.state_dict().items())
