"""``symsched optimize --sampler NAME`` and ``symsched report --sampler NAME`` take every registered sampler;
the optimised schedule beats the best standard schedule for it, and exports say where a library cannot
take a custom schedule."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from symsched.cli import main
from symsched.commands import optimize as opt_cmd
from symsched.commands import report as rep_cmd
from symsched.symbolic.samplers import FLOW_SAMPLERS, VE_SAMPLERS, VP_SAMPLERS


def _choices(register) -> list[str]:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    (p,) = sub.choices.values()
    return next(a for a in p._actions if a.dest == "sampler").choices


@pytest.mark.parametrize("register", [opt_cmd.register, rep_cmd.register], ids=["optimize", "report"])
def test_sampler_choices_are_every_registered_sampler(register) -> None:
    assert sorted(_choices(register)) == sorted(VP_SAMPLERS + VE_SAMPLERS + FLOW_SAMPLERS)  # report: flow too


@pytest.mark.parametrize("sampler", ["dpmpp_2m", "unipc_multistep", "dpmpp_sde", "deis_multistep", "lms"])
def test_optimize_cli_any_sampler(tmp_path, capsys, sampler) -> None:
    spec = tmp_path / "S.npy"
    np.save(spec, np.logspace(-3, 2, 40))
    out = tmp_path / "s.json"
    code = main(["optimize", "--spectrum", str(spec), "--steps", "4", "--sampler", sampler, "--restarts", "1",
                 "--no-progress", "--out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["sampler"] == sampler
    best = min(doc["baselines"][k] for k in doc["baselines_meeting_constraints"])  # same first level
    assert doc["baseline_table"]["optimised"]["value"] <= best * (1 + 1e-9)
    sig = doc["k_diffusion_sigmas"]
    assert len(sig) == 5 and sig[-1] == 0.0 and all(a > b for a, b in zip(sig, sig[1:]))
    if sampler in VE_SAMPLERS:
        assert doc["k_diffusion_function"] == f"k_diffusion.sampling.sample_{sampler}"


@pytest.mark.parametrize("sampler", ["unipc_multistep", "dpmpp_sde"])
def test_optimize_cli_diffusers_format_says_why_not(tmp_path, capsys, sampler) -> None:
    spec = tmp_path / "S.npy"
    np.save(spec, np.logspace(-3, 2, 20))
    code = main(["optimize", "--spectrum", str(spec), "--steps", "3", "--sampler", sampler, "--restarts", "1",
                 "--no-progress", "--format", "diffusers", "--out", str(tmp_path / "d.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert sampler in err and ("takes" in err or "no scheduler" in err)


def test_transfer_takes_every_sampler() -> None:
    """break-test A F8: `symsched transfer` scores every registered sampler, k-diffusion's included."""
    from symsched.commands import transfer as tr_cmd

    assert sorted(_choices(tr_cmd.register)) == sorted(VP_SAMPLERS + VE_SAMPLERS + FLOW_SAMPLERS)


@pytest.mark.parametrize("trailing_zero", [True, False])
def test_transfer_scores_k_diffusion_sigmas(tmp_path, capsys, trailing_zero) -> None:
    """`--sigmas` (k-diffusion's array) with the VE Euler sampler (the default there) prints the KL and W2 of the
    independent reference recursion (tests/reference.py), and the output PSD it writes is that recursion's."""
    from reference import kl, ve_output, w2

    S = np.geomspace(1e-3, 1e2, 7)
    sig = np.array([14.6, 3.0, 0.5, 0.03] + ([0.0] if trailing_zero else []))
    np.save(tmp_path / "S.npy", S)
    np.save(tmp_path / "sig.npy", sig)
    out = tmp_path / "P.npy"
    assert main(["transfer", "--spectrum", str(tmp_path / "S.npy"), "--sigmas", str(tmp_path / "sig.npy"),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    _, P = ve_output(S, sig[:4])
    assert "sampler euler  steps 4 " in text
    assert f"KL(data || generated) = {kl(S, P):.10g}" in text and f"W2                    = {w2(P, S):.10g}" in text
    np.testing.assert_allclose(np.load(out), P, rtol=1e-12)


def test_transfer_needs_exactly_one_kind_of_levels(tmp_path, capsys) -> None:
    np.save(tmp_path / "a.npy", np.array([0.1, 0.5]))
    for extra in ([], ["--alpha-bar", str(tmp_path / "a.npy"), "--sigmas", str(tmp_path / "a.npy")]):
        with pytest.raises(SystemExit) as info:
            main(["transfer", "--spectrum", "builtin:natural-patches", *extra])
        assert info.value.code == 2
    err = capsys.readouterr().err
    assert "one of the arguments --alpha-bar --sigmas is required" in err and "not allowed with argument" in err


@pytest.mark.parametrize("extra, steps", [
    ([], 10),
    (["--sampler", "deis_multistep"], 9),  # stops at the last level: 9 steps on 10 levels
    (["--sampler", "dpmsolver_multistep", "--option", "final_sigmas_type=sigma_min"], 9),
    (["--sampler", "dpmsolver_multistep"], 10),  # final_sigmas_type="zero": the last step goes to the clean level
])
def test_transfer_counts_the_steps_the_sampler_takes(tmp_path, capsys, extra, steps) -> None:
    """Break-test of 7 December: `steps 10` was printed for DEIS's 9 steps on 10 levels."""
    np.save(tmp_path / "S.npy", np.linspace(0.1, 3.0, 16))
    np.save(tmp_path / "A.npy", np.linspace(0.05, 0.95, 10))
    assert main(["transfer", "--spectrum", str(tmp_path / "S.npy"), "--alpha-bar", str(tmp_path / "A.npy"),
                 *extra]) == 0
    assert f"  steps {steps}  modes 16" in capsys.readouterr().out
