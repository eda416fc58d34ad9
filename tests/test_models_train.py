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
    assert "trained 20 steps" in out and "held-out MSE" in out
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
