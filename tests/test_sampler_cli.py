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
    flow = FLOW_SAMPLERS if register is opt_cmd.register else ()  # the report runs VP/VE samplers only
    assert sorted(_choices(register)) == sorted(VP_SAMPLERS + VE_SAMPLERS + flow)


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
