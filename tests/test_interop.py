"""Break-test K (interop with diffusers and k-diffusion): runs the libraries cannot do, refused or flagged.

Found by driving diffusers' and k-diffusion's own loops with the exact denoiser against symsched's closed forms:

- zero-terminal-SNR DDIM/DDPM with ``prediction_type="epsilon"``: diffusers' x0 estimate divides by
  ``sqrt(alpha_bar) = 0`` and returns NaN, while ``from_diffusers`` described a finite run;
- ``from_diffusers(strict=False)`` of a clipping / thresholding scheduler said ``consistent=True`` and
  ``output_spectrum`` gave the linear closed form (25x off at S = 30 against diffusers' Monte Carlo);
- an integer option given as a whole float (``order=3.0``, ``solver_order=3.0``) was exported as a float, and
  k-diffusion's ``sample_lms`` and ``DPMSolverMultistepScheduler`` then crash on it;
- ``to_diffusers`` did not take ``HeunDiscreteScheduler`` although the CLI exports to it;
- SD-style ``leading`` + ``steps_offset=1`` at ``num_inference_steps = num_train_timesteps`` was refused by the sigma
  schedulers' readers with a message about the sigmas' order, not the timestep outside the grid;
- the zero-SNR note of ``symsched optimize --format diffusers`` claimed NaN for DPM-Solver, which runs diffusers'
  ``2**-24`` stand-in instead.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import symsched
from symsched.cli import main
from symsched.export import from_diffusers, to_diffusers

pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]

ZSNR = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True,
            timestep_spacing="trailing", clip_sample=False)


@pytest.mark.diffusers
@pytest.mark.parametrize("cls", ["DDIMScheduler", "DDPMScheduler"])
def test_zero_snr_with_epsilon_prediction_is_refused_as_diffusers_returns_nan(cls: str) -> None:
    diffusers = pytest.importorskip("diffusers")
    torch = pytest.importorskip("torch")
    sch = getattr(diffusers, cls)(**ZSNR)
    sch.set_timesteps(10)
    # the witness: diffusers' own first step, with the exact epsilon at alpha_bar = 0 (eps_hat = x_T)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    out = sch.step(x, sch.timesteps[0], x).prev_sample
    assert torch.isnan(out).all()
    with pytest.raises(ValueError, match="prediction_type='epsilon'.*NaN.*v_prediction"):
        from_diffusers(sch)
    info = from_diffusers(sch, strict=False)
    assert not info.consistent and any("prediction_type='epsilon'" in n for n in info.notes)
    with pytest.raises(ValueError, match="not consistent.*prediction_type='epsilon'"):
        info.output_spectrum(np.array([0.1, 1.0]))
    ok = getattr(diffusers, cls)(**ZSNR, prediction_type="v_prediction")
    ok.set_timesteps(10)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(ok.step(x, ok.timesteps[0], torch.zeros_like(x)).prev_sample).all()
    info = from_diffusers(ok)
    assert info.consistent and info.alpha_bar[0] == 0.0
    assert np.all(np.isfinite(info.output_spectrum(np.array([0.1, 1.0, 30.0]))))


@pytest.mark.diffusers
@pytest.mark.parametrize("cls,kw", [("DDIMScheduler", dict(clip_sample=True)),
                                    ("DPMSolverMultistepScheduler", dict(thresholding=True))])
def test_a_non_linear_scheduler_read_leniently_is_not_consistent(cls: str, kw: dict) -> None:
    diffusers = pytest.importorskip("diffusers")
    sch = getattr(diffusers, cls)(**kw)
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="non-linear"):
        from_diffusers(sch)
    info = from_diffusers(sch, strict=False)
    assert not info.consistent and any("non-linear" in n for n in info.notes)
    for call in (info.output_spectrum, info.transfer_function):
        with pytest.raises(ValueError, match="not consistent.*non-linear"):
            call(np.array([0.1, 1.0, 30.0]))


def test_integer_options_given_as_whole_floats_are_stored_as_integers() -> None:
    from symsched.symbolic import check_options

    opts = check_options("lms", {"order": 3.0})
    assert opts["order"] == 3 and type(opts["order"]) is int
    opts = check_options("dpmsolver_multistep", {"solver_order": np.float64(3.0)})
    assert type(opts["solver_order"]) is int
    sig = symsched.schedules.alpha_bar_to_sigmas(np.linspace(0.05, 0.95, 6))
    S = np.array([0.01, 1.0, 30.0])
    np.testing.assert_array_equal(symsched.output_spectrum_ve(S, sig, sampler="lms", order=4.0),
                                  symsched.output_spectrum_ve(S, sig, sampler="lms", order=4))
    with pytest.raises(ValueError, match="order must be one of"):
        check_options("lms", {"order": 3.5})


@pytest.mark.diffusers
def test_exported_integer_options_build_the_library_scheduler(tmp_path) -> None:
    diffusers = pytest.importorskip("diffusers")
    out = tmp_path / "d.json"
    assert main(["optimize", "--sampler", "dpmsolver_multistep", "--option", "solver_order=3.0", "--format",
                 "diffusers", "--steps", "5", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["config"]["solver_order"] == 3 and isinstance(doc["config"]["solver_order"], int)
    sch = diffusers.DPMSolverMultistepScheduler(**doc["config"])  # a float order raised TypeError in diffusers
    sch.set_timesteps(**doc["set_timesteps"])
    assert from_diffusers(sch).options["solver_order"] == 3


def test_exported_k_diffusion_order_is_an_integer(tmp_path) -> None:
    out = tmp_path / "k.json"
    assert main(["optimize", "--sampler", "lms", "--option", "order=3.0", "--format", "k-diffusion", "--steps", "5",
                 "--out", str(out)]) == 0
    kwargs = json.loads(out.read_text())["kwargs"]
    assert kwargs["order"] == 3 and isinstance(kwargs["order"], int)


@pytest.mark.diffusers
def test_to_diffusers_takes_the_heun_scheduler_and_it_runs_those_levels() -> None:
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.HeunDiscreteScheduler()
    grid = sch.alphas_cumprod.double().numpy()
    ab = grid[[980, 700, 400, 150, 20]]
    kw = to_diffusers(ab, scheduler=sch)
    assert kw == {"timesteps": [980, 700, 400, 150, 20]}
    sch.set_timesteps(**kw)
    np.testing.assert_allclose(from_diffusers(sch).alpha_bar, ab, rtol=1e-5)  # float32 sigmas
    karras = diffusers.HeunDiscreteScheduler(use_karras_sigmas=True)
    with pytest.raises(ValueError):  # the witness: diffusers itself refuses custom timesteps then
        karras.set_timesteps(timesteps=kw["timesteps"])
    with pytest.raises(ValueError, match="use_karras_sigmas=True takes no custom timesteps"):
        to_diffusers(ab, scheduler=karras)


@pytest.mark.diffusers
@pytest.mark.parametrize("cls,match", [("EulerDiscreteScheduler", "timestep 1000 .* outside the training grid"),
                                       ("HeunDiscreteScheduler", "timestep 1000 .* outside the training grid"),
                                       ("DPMSolverMultistepScheduler", "sigmas do not decrease at step 0"),
                                       ("UniPCMultistepScheduler", "sigmas do not decrease at step 0")])
def test_leading_with_steps_offset_at_every_training_step_names_the_cause(cls: str, match: str) -> None:
    diffusers = pytest.importorskip("diffusers")
    sch = getattr(diffusers, cls)(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                  timestep_spacing="leading", steps_offset=1)
    sch.set_timesteps(1000)
    with pytest.raises(ValueError, match=match + r".*steps_offset=1.*(fewer inference steps|steps_offset=0)"):
        from_diffusers(sch)


@pytest.mark.diffusers
@pytest.mark.parametrize("sampler,nan_note", [("ddpm", True), ("dpmsolver_multistep", False)])
def test_zero_snr_export_notes_nan_only_where_diffusers_gives_nan(tmp_path, capsys, sampler: str,
                                                                 nan_note: bool) -> None:
    out = tmp_path / "z.json"
    assert main(["optimize", "--sampler", sampler, "--endpoints", "0,none", "--format", "diffusers", "--steps", "4",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert ("sqrt(alpha_bar) = 0 (NaN)" in printed.out + printed.err) is nan_note


# -- numbers on the command line: a nonzero literal never becomes 0, an empty endpoint is not 'free' --------------
@pytest.mark.parametrize("argv,needle", [
    (["--endpoints", ",0.5"], "an empty item is refused"),
    (["--endpoints", ","], "an empty item is refused"),
    (["--endpoints", "1e-400,none"], "'1e-400' is not 0 but underflows to 0"),
    (["--eta", "1e-400"], "argument --eta: '1e-400' is not 0 but underflows"),
    (["--sampler", "euler_ancestral", "--option", "eta=1e-999"], "argument --option: eta: '1e-999' is not 0"),
])
def test_command_line_numbers_that_would_change_meaning_are_refused(tmp_path, capsys, argv, needle) -> None:
    try:
        code = main(["optimize", "--steps", "3", "--no-progress", "--out", str(tmp_path / "o.json"), *argv])
    except SystemExit as exc:  # argparse's own error exit (a bad value for an option's type)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o.json").exists()


def test_real_reads_zero_and_tiny_numbers_as_written() -> None:
    import argparse

    from symsched.commands._settings import real

    assert real("0") == 0.0 and real("-0.0") == 0.0 and real("0e5") == 0.0
    assert real("5e-324") == 5e-324 and real("1e-300") == 1e-300 and real("inf") == float("inf")
    with pytest.raises(argparse.ArgumentTypeError, match="underflows"):
        real("-2e-324")  # rounds to -0.0
    with pytest.raises(ValueError):
        real("abc")
