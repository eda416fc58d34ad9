"""Issue 14: every user-facing CLI failure is one line naming the option, exit code 2, no traceback."""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from symsched import cli
from symsched.cli import _name_option, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def files(tmp_path):
    f = types.SimpleNamespace(root=tmp_path)
    S = np.array([2.0, 1.0, 0.5, 0.25, 0.5, 1.0])  # Hermitian on a 6-point FFT grid
    np.save(tmp_path / "S.npy", S)
    np.save(tmp_path / "A.npy", np.array([0.05, 0.5, 0.9]))
    (tmp_path / "empty.npy").write_bytes(b"")
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += " " * (118 - len(header) - 1) + "\n"  # 10 + 118 = 128 bytes, then 16 bytes of data: 144
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(16))
    np.save(tmp_path / "bool.npy", np.array([True, False, True, False, True, False]))
    np.save(tmp_path / "str.npy", np.array(["1", "2", "3", "4", "5", "6"]))
    np.save(tmp_path / "complex.npy", S + 1j)
    np.save(tmp_path / "object.npy", np.array([1.0, None], dtype=object), allow_pickle=True)
    (tmp_path / "afile").write_text("not a directory")
    (tmp_path / "adir").mkdir()
    for name in ("S", "A", "empty", "huge", "bool", "str", "complex", "object"):
        setattr(f, name, str(tmp_path / f"{name}.npy"))
    f.file, f.dir = str(tmp_path / "afile"), str(tmp_path / "adir")
    return f


def _one_line_error(capsys, code: int, command: str, option: str, needle: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(f"symsched {command}: error:")]
    assert code == 2, err
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert option in errors[0] and needle in errors[0], errors[0]
    return errors[0]


# (command, option, extra arguments, the option takes a directory)
FILE_OUTPUTS = [
    ("transfer", "--out", lambda f: ["--spectrum", f.S, "--alpha-bar", f.A]),
    ("validate", "--plot", lambda f: ["--steps", "2", "--samples", "20", "--shape", "8", "--no-progress"]),
    ("optimize", "--out", lambda f: ["--spectrum", f.S, "--steps", "2", "--restarts", "0", "--no-progress"]),
    ("optimize", "--plot", lambda f: ["--spectrum", f.S, "--steps", "2", "--restarts", "0", "--no-progress",
                                      "--out", str(f.root / "ok.json")]),
    ("sde-table", "--out", lambda f: ["--spectrum", f.S, "--nfe", "10", "--eps", "0", "--no-progress"]),
]
DIR_OUTPUTS = [
    ("latex", "--out", lambda f: ["--sampler", "ddim"]),
    ("report", "--out", lambda f: ["--spectrum", f.S, "--steps", "2", "--samples", "20", "--no-progress"]),
]
ALL_OUTPUTS = FILE_OUTPUTS + DIR_OUTPUTS


@pytest.mark.parametrize("command, option, extra", FILE_OUTPUTS)
def test_output_that_is_an_existing_directory(files, capsys, command, option, extra) -> None:
    code = main([command, *extra(files), option, files.dir])
    _one_line_error(capsys, code, command, option, "is a directory")


@pytest.mark.parametrize("command, option, extra", DIR_OUTPUTS)
def test_output_folder_that_is_an_existing_file(files, capsys, command, option, extra) -> None:
    code = main([command, *extra(files), option, files.file])
    _one_line_error(capsys, code, command, option, "is a file, not a directory")


@pytest.mark.parametrize("command, option, extra", ALL_OUTPUTS)
def test_output_under_a_file(files, capsys, command, option, extra) -> None:
    code = main([command, *extra(files), option, os.path.join(files.file, "sub", "x.out")])
    _one_line_error(capsys, code, command, option, "is a file, not a directory")


@pytest.mark.parametrize("command, option, extra", ALL_OUTPUTS)
@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_output(files, capsys, command, option, extra, empty) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, *extra(files), option, empty])
    _one_line_error(capsys, exc.value.code, command, option, "must not be empty")


@pytest.mark.slow
@pytest.mark.parametrize("command, option, extra", ALL_OUTPUTS)
def test_output_in_a_read_only_directory(files, command, option, extra) -> None:
    """Run without the capabilities that let root ignore permissions, so the directory really is read-only."""
    ro = files.root / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    cmd = [sys.executable, "-m", "symsched.cli", command, *extra(files), option, str(ro / "out" / "x.json")]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop CAP_DAC_OVERRIDE")
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=files.root,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"})
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert lines[-1].startswith(f"symsched {command}: error: {option} ") and "Permission denied" in lines[-1]


# ------------------------------------------------------------------------------------ input files


@pytest.mark.parametrize(
    "name, needle",
    [("empty", "is empty"), ("huge", "header claims shape (1000000000000,)"), ("bool", "boolean array"),
     ("str", "string array"), ("complex", "complex array"), ("object", "never unpickles")],
)
def test_bad_npy_for_transfer(files, capsys, name, needle) -> None:
    code = main(["transfer", "--spectrum", getattr(files, name), "--alpha-bar", files.A])
    _one_line_error(capsys, code, "transfer", "--spectrum", needle)
    code = main(["transfer", "--spectrum", files.S, "--alpha-bar", getattr(files, name)])
    _one_line_error(capsys, code, "transfer", "--alpha-bar", needle)


@pytest.mark.parametrize(
    "argv, option",
    [
        (lambda f: ["optimize", "--spectrum", f.S, "--weights", f.empty, "--out", "x.json"], "--weights"),
        (lambda f: ["optimize", "--spectrum", f.S, "--grid", f.huge, "--out", "x.json"], "--grid"),
        (lambda f: ["optimize", "--spectrum", f.bool, "--out", "x.json"], "source"),
        (lambda f: ["sde-table", "--spectrum", f.complex], "--spectrum"),
        (lambda f: ["validate", "--spectrum", f.str], "--spectrum"),
        (lambda f: ["report", "--spectrum", f.empty, "--out", str(f.root / "rep")], "source"),
    ],
)
def test_bad_npy_in_every_subcommand(files, capsys, argv, option) -> None:
    code = main(argv(files))
    _one_line_error(capsys, code, argv(files)[0], option, "npy")


@pytest.mark.parametrize("shape", [(0, 10**30), (0, 2**63), (0, 2**62, 2**62), (2**63, 0), (-1, 0), (0, -10**30)])
def test_zero_size_npy_header_no_array_can_have(files, capsys, shape) -> None:
    """A zero-byte shape passes the size check; NumPy then overflows or refuses: a ValueError naming the file."""
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }" % (shape,)
    path = files.root / "zero.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    code = main(["transfer", "--spectrum", str(path), "--alpha-bar", files.A])
    _one_line_error(capsys, code, "transfer", "--spectrum", "zero.npy' is not a valid .npy file")
    from symsched import spectra

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's overflow RuntimeWarning is not reached either
        with pytest.raises(ValueError, match=r"zero\.npy' is not a valid \.npy file"):
            spectra.load_spectrum(path)


def test_missing_input_file_names_the_option(files, capsys) -> None:
    code = main(["transfer", "--spectrum", str(files.root / "nope.npy"), "--alpha-bar", files.A])
    _one_line_error(capsys, code, "transfer", "--spectrum", "does not exist")


# ------------------------------------------------------------------------------------ limits and usage


@pytest.mark.parametrize(
    "argv, needle",
    [
        (lambda f: ["optimize", "--spectrum", f.S, "--steps", "1000000", "--out", "x.json"], "steps must be at most"),
        (lambda f: ["validate", "--steps", "1000000"], "--steps must be an integer in [1, 1000]"),
        (lambda f: ["validate", "--samples", str(10**12)], "--samples must be at most"),
        (lambda f: ["validate", "--shape", "100000x100000"], "--shape asks for 10000000000 modes"),
        (lambda f: ["report", "--steps", "5,1000000", "--out", str(f.root / "r")], "--steps must be at most"),
        (lambda f: ["sde-table", "--spectrum", f.S, "--nfe", "10000000"], "n_points"),
    ],
)
def test_unbounded_work_is_refused(files, capsys, argv, needle) -> None:
    args = argv(files)
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err, err


def test_usage_errors_are_one_line(capsys) -> None:
    for argv in (["optimize", "--steps", "x", "--out", "o.json"], ["transfer"], ["nope"], ["latex", "--bogus"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "error:" in lines[0], lines


# ------------------------------------------------------------------------------------ --debug


def _traceback_then_line(err: str, line_start: str) -> None:
    """--debug's stderr: Python's traceback, then the one line the command prints without --debug, last."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[0] == "Traceback (most recent call last):" and lines[-1].startswith(line_start), err


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(files, where, capsys) -> None:
    """--debug adds the traceback and keeps the exit code (break test of 7 December: it re-raised, so an input error
    exited 1 under --debug and 2 without it)."""
    argv = ["transfer", "--spectrum", files.empty, "--alpha-bar", files.A]
    assert main(argv) == 2 and "Traceback" not in capsys.readouterr().err
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    _traceback_then_line(err, "symsched transfer: error: --spectrum")
    assert "ValueError" in err and "is empty" in err.splitlines()[-1]


def test_debug_from_the_environment(files, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SYMSCHED_DEBUG", "1")
    assert main(["transfer", "--spectrum", files.empty, "--alpha-bar", files.A]) == 2
    _traceback_then_line(capsys.readouterr().err, "symsched transfer: error: --spectrum")


def test_debug_keeps_a_bugs_exit_code(capsys, monkeypatch, files) -> None:
    """Companion: an unexpected exception under --debug is still exit 1, its report line after the traceback."""
    monkeypatch.setitem(sys.modules, "symsched.commands.fake", _fake_command(
        lambda a: (_ for _ in ()).throw(RuntimeError("boom"))))
    monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + ("fake",))
    assert main(["--debug", "fake", "--out", files.file]) == 1
    err = capsys.readouterr().err
    _traceback_then_line(err, "symsched fake: error: internal error (RuntimeError: boom)")
    assert "\nRuntimeError: boom\n" in err


# ------------------------------------------------------------------------------------ new sub-commands


def _fake_command(failure):
    def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        p = sub.add_parser("fake", help="a sub-command added later (probe, train-demo, explain, ...)")
        p.add_argument("--data", type=Path, default=None)
        p.add_argument("--out", type=Path, required=True)
        p.set_defaults(func=lambda args: failure(args))

    return types.SimpleNamespace(register=register)


@pytest.mark.parametrize(
    "failure, code, needle",
    [
        (lambda a: open(a.out / "inner" / "file.txt", "w"), 2, "--out"),
        (lambda a: (_ for _ in ()).throw(PermissionError(13, "Permission denied", str(a.data))), 2, "--data"),
        (lambda a: (_ for _ in ()).throw(MemoryError()), 2, "out of memory"),
        (lambda a: (_ for _ in ()).throw(EOFError("No data left in file")), 2, "ended unexpectedly"),
        (lambda a: (_ for _ in ()).throw(ValueError("--data must be finite")), 2, "--data must be finite"),
        (lambda a: (_ for _ in ()).throw(RuntimeError("boom")), 1, "internal error (RuntimeError: boom)"),
        # break-test J: a killed worker is not a bug to report
        (lambda a: (_ for _ in ()).throw(__import__("concurrent.futures.process").futures.process.BrokenProcessPool(
            "A process in the process pool was terminated abruptly")), 1, "a worker process ended abruptly"),
    ],
)
def test_new_subcommands_get_the_error_path_for_free(files, capsys, monkeypatch, failure, code, needle) -> None:
    monkeypatch.setitem(sys.modules, "symsched.commands.fake", _fake_command(failure))
    monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + ("fake",))
    got = main(["fake", "--data", files.S, "--out", files.file])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert got == code and len(lines) == 1 and lines[0].startswith("symsched fake: error:"), err
    assert needle in lines[0] and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["fake", "--out", ""])
    assert "argument --out: must not be empty" in capsys.readouterr().err


def test_every_subcommand_accepts_debug() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert "--debug" in p._option_string_actions, name


# ------------------------------------------------------------------------------------ errors name the option
@pytest.mark.parametrize(
    "argv, command, option, needle",
    [
        (lambda f: ["explain", "--spectrum", f.S, "--steps", "100000", "--out", str(f.root / "e")],
         "explain", "--steps:", "steps must be at most"),
        (lambda f: ["explain", "--spectrum", f.S, "--restarts", "-1", "--out", str(f.root / "e")],
         "explain", "--restarts:", "restarts must be"),
        (lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--eta", "2", "--out", str(f.root / "o.json")],
         "optimize", "--eta:", "eta must lie in [0, 1]"),
        (lambda f: ["optimize", "--spectrum", f.int, "--steps", "2", "--out", str(f.root / "o.json")],
         "optimize", "--spectrum:", "int64"),
        (lambda f: ["sde-table", "--spectrum", f.S, "--nfe", "10000000"], "sde-table", "--nfe:", "at most"),
        (lambda f: ["sde-table", "--spectrum", f.S, "--nfe", "3", "--count", "nfe"], "sde-table", "--nfe:", "the size 3 (evaluations, rk4 on N grid points) is refused"),
        (lambda f: ["transfer", "--spectrum", f.S, "--alpha-bar", f.A, "--variance", "beta"],
         "transfer", "--variance", "applies only to --sampler ddpm"),
        (lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--grid", "100001", "--out", str(f.root / "o.json")],
         "optimize", "--grid:", "num_train_timesteps must be at most"),
        (lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--weights", f.A, "--out", str(f.root / "o.json")],
         "optimize", "--weights:", "weights has shape (3,)"),
    ],
)
def test_api_errors_are_reported_under_the_option_name(files, capsys, argv, command, option, needle) -> None:
    """The API names its argument ("steps must be ..."); the CLI line names the option the user typed."""
    np.save(files.root / "int.npy", np.arange(6))
    files.int = str(files.root / "int.npy")
    code = main(argv(files))
    line = _one_line_error(capsys, code, command, option, needle)
    assert line.startswith(f"symsched {command}: error: {option} "), line


def test_messages_that_already_name_an_option_are_left_alone(capsys) -> None:
    from symsched.cli import _name_option

    args = types.SimpleNamespace(_options={"steps": "--steps", "samples": "--samples"})
    assert _name_option("--samples must be a positive integer (got 0)", args) == "--samples must be a positive integer (got 0)"
    assert _name_option("steps must be >= 1", args) == "--steps: steps must be >= 1"
    assert _name_option("the schedule diverges", args) == "the schedule diverges"  # no argument named: unchanged
    assert _name_option("n_samples must be >= 1", args) == "--samples: n_samples must be >= 1"  # API name -> option
    # the argument at fault named inside the message wins over the leading word
    args = types.SimpleNamespace(_options={"sampler": "--sampler", "variance": "--variance", "weights": "--weights"})
    assert _name_option("sampler 'ddim' has no setting 'variance'", args).startswith("--variance: ")
    assert _name_option("shape mismatch: weights has shape (3,)", args).startswith("--weights: ")
    assert _name_option("sampler 'nope' is unknown", args).startswith("--sampler: ")


def test_an_argument_written_with_its_value_names_the_option() -> None:
    """break3/user F14: "grid has 1000 levels, fewer than steps=1001" (probe --steps 1001) names --steps; the API's
    `source` of a spectrum is --spectrum."""
    from symsched.cli import _name_option

    args = types.SimpleNamespace(_options={"steps": "--steps", "spectrum": "--spectrum", "out": "--out"})
    msg = "grid has 1000 levels, fewer than steps=1001: cannot choose 1001 distinct levels"
    assert _name_option(msg, args) == f"--steps: {msg}"
    msg = "source 'builtin:foo' names no built-in spectrum: must be one of 'builtin:natural-patches'"
    assert _name_option(msg, args) == f"--spectrum: {msg}"
    assert _name_option("K=3 is fine but x == 2", args) == "K=3 is fine but x == 2"  # not an option: unchanged


def test_an_unknown_builtin_spectrum_names_spectrum(tmp_path, capsys) -> None:
    code = main(["optimize", "--spectrum", "builtin:foo", "--out", str(tmp_path / "o.json")])
    line = capsys.readouterr().err.strip()
    assert code == 2 and line.startswith("symsched optimize: error: --spectrum: source 'builtin:foo' names no "
                                         "built-in spectrum"), line


def test_an_unwritable_plot_is_refused_before_any_work(files, capsys) -> None:
    """--plot is checked with --out before the optimisation: the --out file is never written."""
    out = files.root / "never.json"
    code = main(["optimize", "--spectrum", files.S, "--steps", "2", "--restarts", "0", "--no-progress",
                 "--out", str(out), "--plot", files.dir])
    _one_line_error(capsys, code, "optimize", "--plot", "is a directory")
    assert not out.exists()
    code = main(["validate", "--steps", "2", "--samples", "20", "--shape", "8", "--no-progress", "--plot", files.file + "/x.png"])
    _one_line_error(capsys, code, "validate", "--plot", "not a directory")


@pytest.mark.parametrize("value, needle", [("-1", "0 (skip) or at least 2"), ("1", "0 (skip) or at least 2"),
                                           (str(10**11), "at most")])
def test_report_probe_samples_are_checked_before_any_work(files, capsys, value, needle) -> None:
    code = main(["report", "--probe-samples", value, "--out", str(files.root / "r"), "--no-progress"])
    _one_line_error(capsys, code, "report", "--probe-samples", needle)
    assert not (files.root / "r").exists()


# ------------------------------------------------------------------------------------ a fourth break-test round
@pytest.mark.parametrize("command, option, extra", FILE_OUTPUTS)
def test_a_file_output_ending_in_a_separator_names_a_folder(files, capsys, command, option, extra) -> None:
    """``--out results/`` for a folder that does not exist used to write a file called ``results``."""
    target = str(files.root / "newdir") + os.sep
    with pytest.raises(SystemExit) as exc:  # a usage error, found while parsing
        main([command, *extra(files), option, target])
    line = _one_line_error(capsys, exc.value.code, command, option, "names a folder")
    assert not (files.root / "newdir").exists()
    # review of 5 December: the hint was "e.g. results/out.json" for every option (a .json for a figure, a table or
    # transfer's .npy, which refuses it); following it must now work
    hint = line.rsplit("e.g. ", 1)[1].split(" (see ")[0]
    assert hint.startswith(target) and hint != target
    assert main([command, *extra(files), option, hint]) == 0, capsys.readouterr().err
    assert Path(hint).is_file()


@pytest.mark.parametrize("array, needle", [
    (np.linspace(0.99, 0.01, 20).reshape(4, 5), "1-D"), (np.array(0.5), "1-D"), (np.zeros(0), "empty"),
])
def test_a_grid_file_of_the_wrong_shape_is_a_usage_error(files, capsys, array, needle) -> None:
    np.save(files.root / "g.npy", array)
    code = main(["optimize", "--spectrum", files.S, "--steps", "2", "--restarts", "0", "--no-progress",
                 "--grid", str(files.root / "g.npy"), "--out", str(files.root / "o.json")])
    _one_line_error(capsys, code, "optimize", "--grid", needle)


@pytest.mark.parametrize("command, extra", [
    ("optimize", ["--steps", "2", "--restarts", "0", "--no-progress", "--out", "o.json"]),
    ("validate", ["--steps", "2", "--samples", "20", "--shape", "8", "--no-progress"]),
])
def test_an_unwritable_figure_format_is_refused_before_any_work(files, capsys, monkeypatch, command, extra) -> None:
    monkeypatch.chdir(files.root)
    code = main([command, "--spectrum", files.S, *extra, "--plot", "p.xyz"] if command == "optimize"
                else [command, *extra, "--plot", "p.xyz"])
    _one_line_error(capsys, code, command, "--plot", "'.xyz'")
    assert not (files.root / "o.json").exists() and not (files.root / "p.xyz").exists()


def test_validate_writes_the_figure_format_its_suffix_names(files, monkeypatch) -> None:
    monkeypatch.chdir(files.root)
    assert main(["validate", "--steps", "2", "--samples", "40", "--shape", "8", "--no-progress",
                 "--plot", "v.pdf"]) in (0, 1)
    assert (files.root / "v.pdf").read_bytes()[:5] == b"%PDF-"  # was PNG data in a .pdf file


def test_validate_exponent_overflow_names_exponent_not_alpha(capsys) -> None:
    code = main(["validate", "--exponent", "1e300", "--steps", "2", "--samples", "20", "--no-progress"])
    line = _one_line_error(capsys, code, "validate", "--exponent", "exponent=1e+300")
    assert "--alpha" not in line


@pytest.mark.parametrize("sampler", ["ddpm", "dpmsolver_multistep", "unipc_multistep", "deis_multistep",
                                     "euler_ancestral_discrete"])
def test_k_diffusion_format_is_refused_for_samplers_k_diffusion_lacks(files, capsys, sampler) -> None:
    code = main(["optimize", "--spectrum", files.S, "--steps", "2", "--sampler", sampler, "--format", "k-diffusion",
                 "--out", str(files.root / "s.npy"), "--no-progress"])
    _one_line_error(capsys, code, "optimize", "--format k-diffusion", sampler)
    assert not (files.root / "s.npy").exists()


def test_json_names_only_k_diffusion_functions_that_exist(files) -> None:
    import json

    from kdiffusion_helpers import load_sampling

    kds = load_sampling()

    for sampler in ("euler_ancestral_discrete", "euler_ancestral"):
        out = files.root / f"{sampler}.json"
        assert main(["optimize", "--spectrum", files.S, "--steps", "2", "--restarts", "0", "--sampler", sampler,
                     "--out", str(out), "--no-progress"]) == 0
        name = json.loads(out.read_text()).get("k_diffusion_function")
        if sampler == "euler_ancestral_discrete":
            assert name is None  # diffusers' scheduler: k-diffusion has no sample_euler_ancestral_discrete
        else:
            assert hasattr(kds, name.rsplit(".", 1)[1])


def test_variance_with_a_sampler_that_takes_none_is_refused_up_front(files, capsys) -> None:
    code = main(["optimize", "--spectrum", files.S, "--steps", "2", "--sampler", "ddim", "--variance", "beta",
                 "--out", str(files.root / "o.json"), "--no-progress"])
    line = _one_line_error(capsys, code, "optimize", "--variance", "ddpm")
    assert "refuses every schedule" not in line


def test_json_formats_refuse_a_npy_file_name(files, capsys) -> None:
    code = main(["optimize", "--spectrum", files.S, "--steps", "2", "--out", str(files.root / "x.npy"), "--no-progress"])
    _one_line_error(capsys, code, "optimize", "--out", ".json")
    assert not (files.root / "x.npy").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_folder_output_that_is_a_fifo_is_called_what_it_is(files, capsys) -> None:
    os.mkfifo(files.root / "fifo")
    code = main(["probe", "--out", str(files.root / "fifo"), "--no-progress"])
    line = _one_line_error(capsys, code, "probe", "--out", "not a directory")
    assert "is a file" not in line


@pytest.mark.parametrize("shape, needle", [("0x0", "1 or 2 sizes"), ("abc", "must look like 64x64"),
                                           ("100000x100000", "MAX_MODES"),
                                           ("4x4x4", "1 or 2 sizes, each >= 2 (got '4x4x4'; a 3-D field: --spectrum")])
def test_validate_shape_errors_name_shape(capsys, shape, needle) -> None:
    """A bad --shape is reported under --shape (it used to be prefixed with --exponent)."""
    code = main(["validate", "--shape", shape, "--steps", "2", "--samples", "20", "--no-progress"])
    line = _one_line_error(capsys, code, "validate", "--shape", needle)
    assert "--exponent" not in line


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("command, option, extra", [
    ("transfer", "--out", lambda f: ["--spectrum", f.S, "--alpha-bar", f.A]),
    ("optimize", "--plot", lambda f: ["--spectrum", f.S, "--steps", "2", "--no-progress", "--out",
                                      str(f.root / "o.json")]),
])
def test_an_output_the_file_system_refuses_is_found_before_any_work(files, capsys, command, option, extra) -> None:
    """/proc takes no new files even for root, whom os.access lets through: a probe file finds it up front, so
    nothing is computed, printed or written first (the JSON of optimize used to be written before --plot failed)."""
    code = main([command, *extra(files), option, "/proc/symsched-x.png"])
    err_line = _one_line_error(capsys, code, command, option, "/proc/symsched-x.png")
    assert "No such file" in err_line or "ermission" in err_line or "ead-only" in err_line
    assert not (files.root / "o.json").exists()
    assert not list(files.root.glob(".symsched-probe.*"))


@pytest.mark.parametrize("extra, option, needle", [(["--seed", "-5"], "--seed", "non-negative integer"),
                                                   (["--batch-size", "0"], "--batch-size", "positive integer")])
def test_validate_checks_seed_and_batch_size_before_its_header(capsys, extra, option, needle) -> None:
    code = main(["validate", "--steps", "2", "--samples", "20", "--no-progress", *extra])
    _one_line_error(capsys, code, "validate", option, needle)


def test_transfer_prints_a_total_beyond_float64_without_a_warning(files, tmp_path, capsys) -> None:
    import warnings

    huge = tmp_path / "huge.npy"
    np.save(huge, np.full(6, 1.7e308))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["transfer", "--spectrum", str(huge), "--alpha-bar", files.A]) == 0
    # (audit of 4 December: the total printed as inf; 6 x 1.7e308 = 1.02e309, exactly, by Python's integers)
    out = capsys.readouterr().out
    assert "total power: data 1.02e+309," in out


def test_validate_refuses_a_non_hermitian_spectrum_before_its_header(tmp_path, capsys) -> None:
    """break-test F7: the header line went to stdout before the one-line error."""
    np.save(tmp_path / "nh.npy", np.array([1.0, 2.0, 3.0, 4.0]))
    code = main(["validate", "--spectrum", str(tmp_path / "nh.npy"), "--steps", "3", "--samples", "10"])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert code == 2 and captured.err.strip().startswith("symsched validate: error: --spectrum must be Hermitian")
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["validate", "--samples", "10"], ["sde-table", "--nfe", "10", "--eps", "0"]])
@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
def test_an_integer_npy_spectrum_is_refused_by_every_command(tmp_path, capsys, command, dtype) -> None:
    """Audit of 4 December: validate (and sde-table) cast an integer .npy to float and ran it; the README and
    load_spectrum (optimize, transfer, report) refuse it: one rule, one loader."""
    np.save(tmp_path / "i.npy", np.ones((4, 4), dtype=dtype))
    code = main([command[0], "--spectrum", str(tmp_path / "i.npy"), *command[1:], "--no-progress"])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 2 and captured.out == "" and len(err) == 1
    assert "integer array" in err[0] and "must hold floating-point values" in err[0]


@pytest.mark.parametrize("scale", [1e-300, 1e-160])
def test_validate_of_a_spectrum_too_faint_to_simulate_names_the_spectrum(tmp_path, capsys, scale) -> None:
    """Audit of 4 December: the output spectrum (~S^2) underflows and the error named --samples, which no count of
    samples cures; it is refused before the header, naming --spectrum."""
    np.save(tmp_path / "f.npy", np.full((4, 4), scale))
    code = main(["validate", "--spectrum", str(tmp_path / "f.npy"), "--samples", "10", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith(f"symsched validate: error: --spectrum {tmp_path / 'f.npy'}: its output spectrum")
    assert "--samples" not in captured.err


def test_validate_labels_a_power_law_with_its_exponent_once(capsys) -> None:
    """break-test F7: --exponent -5 printed "|f|^--5"."""
    assert main(["validate", "--shape", "8", "--exponent", "-5", "--steps", "2", "--samples", "20",
                 "--no-progress"]) in (0, 1)
    out = capsys.readouterr().out
    assert "(power law |f|^5)" in out and "^--" not in out


@pytest.mark.parametrize("argv, option, other", [
    (lambda f: ["explain", "--spectrum", f.S, "--out", f.S], "--out", "--spectrum"),
    (lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--out", f.S], "--out", "--spectrum"),
    (lambda f: ["transfer", "--spectrum", f.S, "--alpha-bar", f.A, "--out", f.A], "--out", "--alpha-bar"),
    (lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--out", str(f.root / "o.json"), "--plot",
                str(f.root / "o.json")], "--out", "--plot"),
])
def test_an_output_that_is_an_input_is_refused_before_it_is_overwritten(files, capsys, argv, option, other) -> None:
    """break-test E: `explain --spectrum S.npy --out S.npy` blamed --spectrum; an output naming an input (or the other
    output) is refused up front, naming both options, and the input is left as it was."""
    before = Path(files.S).read_bytes(), Path(files.A).read_bytes()
    args = argv(files)
    code = main(args)
    line = _one_line_error(capsys, code, args[0], option, "would overwrite it")
    assert f"is also the {other} path" in line
    assert (Path(files.S).read_bytes(), Path(files.A).read_bytes()) == before
    assert main(["transfer", "--spectrum", files.S, "--alpha-bar", files.A, "--out", str(files.root / "P.npy")]) == 0


def test_an_output_named_like_a_non_path_option_is_fine(tmp_path, capsys, monkeypatch) -> None:
    """break-test G: `probe --sampler ddim --out ddim`, `explain --divergences w2 --out w2` were refused as "also the
    --sampler path"; only options that take paths are compared (the runs stop later, at a bad value given on purpose)."""
    monkeypatch.chdir(tmp_path)
    for argv, needle in ((["probe", "--sampler", "ddim", "--out", "ddim", "--samples", "1"], "--samples must be at least 2"),
                         (["explain", "--divergences", "w2", "--out", "w2", "--steps", "0"], "--steps"),
                         (["report", "--steps", "5,0", "--out", "5,0"], "--steps")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and "would overwrite" not in err, err


def test_python_dash_m_runs_the_same_command_line(tmp_path) -> None:
    """``python -m symsched`` is the ``symsched`` script: help exits 0, a usage error prints one line, exits 2."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ok = subprocess.run([sys.executable, "-m", "symsched", "--help"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "sde-table" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "symsched", "sde-table", "--spectrum", "x.npy", "--nfe", "10,10"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--nfe" in bad.stderr and "must not repeat" in bad.stderr


@pytest.mark.parametrize("nfe, needle", [("10,abc", "comma-separated positive integers"), ("0,10", "positive"),
                                         ("40,40", "must not repeat")])
def test_sde_table_step_lists_follow_the_shared_rule(capsys, nfe, needle) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sde-table", "--spectrum", "x.npy", "--nfe", nfe])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "argument --nfe:" in err and needle in err


@pytest.mark.parametrize("extra", [["--out", "q.json", "--plot", "imgs/0.png"], ["--out", "imgs/new.json"],
                                   ["--out", "q.json", "--plot", "imgs/sub/x.png"]])
def test_an_output_inside_an_input_image_folder_is_refused(tmp_path, capsys, monkeypatch, extra) -> None:
    """Break-test I: a --plot or --out inside the --spectrum folder replaced a photo or added one to the data set."""
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    before = {p.name: p.read_bytes() for p in (tmp_path / "imgs").iterdir()}
    code = main(["optimize", "--spectrum", "imgs", "--steps", "2", *extra])
    err = capsys.readouterr().err
    assert code == 2 and "lies inside the --spectrum folder 'imgs'" in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in (tmp_path / "imgs").iterdir()} == before
    assert main(["optimize", "--spectrum", "imgs", "--steps", "2", "--out", "imgs_schedule.json"]) == 0  # a sibling is fine


def _bomb(folder: Path, pixels: int) -> None:
    """A PNG whose header claims ``pixels`` pixels (PIL refuses beyond 2 x MAX_IMAGE_PIXELS, warns beyond it)."""
    from PIL import Image

    folder.mkdir(exist_ok=True)
    side = int(np.sqrt(pixels)) + 1
    Image.new("L", (side, side)).save(folder / "big.png", optimize=True)


@pytest.mark.parametrize("scale", [1.2, 2.5])  # PIL's warning band and its error band
def test_an_image_beyond_the_decompression_limit_is_a_usage_error(tmp_path, capsys, monkeypatch, scale) -> None:
    """Break-test I: PIL's DecompressionBombError ended as "internal error", exit 1; its warning decoded the image."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # the same checks at a size a test can afford
    _bomb(tmp_path / "imgs", int(scale * 10_000))
    np.save(tmp_path / "A.npy", np.array([0.1, 0.5, 0.9]))
    code = main(["transfer", "--spectrum", str(tmp_path / "imgs"), "--alpha-bar", str(tmp_path / "A.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "--spectrum" in err and "too large to decode safely" in err and err.count("\n") == 1


def test_every_image_reader_refuses_the_same_files(tmp_path, monkeypatch) -> None:
    """One reader (spectra.read_image) for --spectrum folders, resolution-law photos and --reference folders."""
    from PIL import Image

    from symsched import spectra
    from symsched.commands.probe import _image_folder
    from symsched.insight.resolution import source_images

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    _bomb(tmp_path / "imgs", 25_000)
    Image.new("L", (8, 8)).save(tmp_path / "imgs" / "small.png")
    for call in (lambda: spectra.load_spectrum(tmp_path / "imgs"), lambda: source_images(tmp_path / "imgs"),
                 lambda: _image_folder(tmp_path / "imgs", (8, 8))):
        with pytest.raises(ValueError, match="too large to decode safely"):
            call()
    (tmp_path / "one").mkdir()
    Image.new("I;16", (8, 8)).save(tmp_path / "one" / "a.png")
    with pytest.raises(ValueError, match="at least 2"):
        _image_folder(tmp_path / "one", (8, 8))  # one image: named as the --reference folder, not --samples
    Image.new("I;16", (8, 8)).save(tmp_path / "one" / "b.png")
    with pytest.raises(ValueError, match="--reference image .* only 8-bit images are supported"):
        _image_folder(tmp_path / "one", (8, 8))  # 16-bit is refused here too, not silently converted


def test_a_postscript_file_named_png_is_never_handed_to_ghostscript(tmp_path, monkeypatch, capsys) -> None:
    """hardening audit: read_image opened any format PIL knows whatever the suffix, so an EPS file named b.png went
    to PIL's EPS plugin, which runs Ghostscript on the file's bytes. Only PNG and JPEG (the documented image-folder
    formats) are decoded: the file is refused by name, and the EPS plugin is never asked."""
    from PIL import EpsImagePlugin

    from symsched import spectra
    from symsched.commands.probe import _image_folder

    calls = []

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(self)
        raise AssertionError("the EPS plugin was invoked")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", spy)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", spy)
    (tmp_path / "imgs").mkdir()
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
    for name in ("a.png", "b.png"):
        (tmp_path / "imgs" / name).write_bytes(eps)
    with pytest.raises(ValueError, match=r"b\.png' cannot be read"):
        spectra.read_image(tmp_path / "imgs" / "b.png")
    for call in (lambda: spectra.load_spectrum(tmp_path / "imgs"), lambda: _image_folder(tmp_path / "imgs", (8, 8))):
        with pytest.raises(ValueError, match=r"a\.png' cannot be read"):
            call()
    np.save(tmp_path / "A.npy", np.array([0.1, 0.5, 0.9]))
    code = main(["transfer", "--spectrum", str(tmp_path / "imgs"), "--alpha-bar", str(tmp_path / "A.npy")])
    _one_line_error(capsys, code, "transfer", "--spectrum", "a.png' cannot be read")
    assert calls == []



@pytest.mark.parametrize("argv, needle", [
    (["explain", "--spectrum", "x.npy", "--steps", "3,"],
     "--steps must be comma-separated positive integers, with no empty item"),
    (["explain", "--spectrum", "x.npy", "--steps", ",3"],
     "--steps must be comma-separated positive integers, with no empty item"),
    (["explain", "--spectrum", "x.npy", "--divergences", "kl,kl"], "--divergences must not repeat a value"),
    (["explain", "--spectrum", "x.npy", "--divergences", "kl,,w2"],
     "--divergences must be comma-separated divergences (kl, kl-reverse, w2), with no empty item"),
    (["sde-table", "--spectrum", "x.npy", "--eps", "0,0"], "argument --eps: the list must not repeat a value"),
    (["sde-table", "--spectrum", "x.npy", "--eps", "0,nan"], "argument --eps: the list must be comma-separated finite"),
    (["report", "--steps", "5,,10"], "--steps must be comma-separated positive integers, with no empty item"),
])
def test_every_comma_list_refuses_empty_items_and_repeats(capsys, argv, needle) -> None:
    """Break-test I: "--steps 3," ran as --steps 3, --divergences kl,kl and --eps 0,0 were accepted (README: refused)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage error
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1


def test_explain_api_refuses_a_repeated_divergence(tmp_path) -> None:
    from symsched.insight import explain

    with pytest.raises(ValueError, match="divergences must not repeat"):
        explain(np.array([0.5, 2.0]), tmp_path / "x", divergences=("kl", "kl"), progress=False)


@pytest.mark.parametrize("argv, needle", [
    (lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--out", str(f.root / "s.png")], "writes JSON text"),
    (lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--format", "k-diffusion", "--out",
                str(f.root / "s.npz")], "writes JSON text"),
    (lambda f: ["transfer", "--spectrum", f.S, "--alpha-bar", f.A, "--out", str(f.root / "P.npz")],
     "writes a NumPy array"),
    (lambda f: ["sde-table", "--spectrum", f.S, "--nfe", "10", "--eps", "0", "--out", str(f.root / "t.md")],
     "writes LaTeX"),
    (lambda f: ["transfer", "--spectrum", f.S, "--alpha-bar", f.A, "--out", str(f.root / "P.txt")],
     "writes a NumPy array, which a .txt file name would misname (it names plain text)"),
    # audit of 5 December: the k-diffusion sigmas' JSON went into sigmas.pt, which torch.load cannot read
    (lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--format", "k-diffusion", "--out",
                str(f.root / "sigmas.pt")], "writes JSON text, which a .pt file name would misname (it names a PyTorch"),
    (lambda f: ["transfer", "--spectrum", f.S, "--alpha-bar", f.A, "--out", str(f.root / "P.pkl")],
     "writes a NumPy array, which a .pkl file name would misname (it names a pickle)"),
])
def test_an_output_named_for_another_format_is_refused(files, capsys, argv, needle) -> None:
    """Break-test I: JSON went into .png / .npz names and a NumPy array into P.npz without a word (review of
    4 December: and a binary .npy into P.txt)."""
    args = argv(files)
    code = main(args)
    _one_line_error(capsys, code, args[0], "--out", needle)
    assert not Path(args[-1]).exists()


@pytest.mark.parametrize("argv", [
    lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--restarts", "0", "--no-progress", "--out",
               str(f.root / "s.txt")],
    lambda f: ["sde-table", "--spectrum", f.S, "--nfe", "10", "--eps", "0", "--no-progress", "--out",
               str(f.root / "t.txt")],
    lambda f: ["transfer", "--spectrum", f.S, "--alpha-bar", f.A, "--out", str(f.root / "P.dat")],
    # review of 5 December: JSON is YAML, and .bin names no one format
    lambda f: ["optimize", "--spectrum", f.S, "--steps", "2", "--restarts", "0", "--no-progress", "--out",
               str(f.root / "s.yaml")],
    lambda f: ["transfer", "--spectrum", f.S, "--alpha-bar", f.A, "--out", str(f.root / "P.bin")],
])
def test_a_text_name_for_a_text_format_and_a_neutral_name_are_kept(files, argv) -> None:
    """Plain text names JSON and LaTeX rightly; a suffix that names no format is the user's choice."""
    args = argv(files)
    assert main(args) == 0 and Path(args[-1]).stat().st_size > 0


def _png16(path: Path, arr: np.ndarray, color_type: int) -> None:
    """A minimal 16-bit PNG written by hand (PIL writes none in colour): colour type 0 grey, 2 RGB, 4 grey+alpha,
    6 RGBA; ``arr`` uint16 of shape (H, W, channels)."""
    import zlib

    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in arr)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", arr.shape[1], arr.shape[0], 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("color_type, channels", [(0, 1), (2, 3), (4, 2), (6, 4)])
def test_every_16_bit_png_is_refused(tmp_path, color_type, channels) -> None:
    """Break-test J: PIL opens 16-bit RGB and grey+alpha PNGs as 8-bit "RGB"/"RGBA" (dropping the low byte); only
    16-bit grey was refused."""
    from symsched.spectra import read_image

    arr = (np.random.default_rng(0).random((8, 8, channels)) * 65535).astype(np.uint16)
    _png16(tmp_path / "a.png", arr, color_type)
    with pytest.raises(ValueError, match="only 8-bit images are supported"):
        read_image(tmp_path / "a.png")
    _png16(tmp_path / "b.png", arr, color_type)  # the same bytes read back by PIL: the file is a valid PNG
    from PIL import Image

    with Image.open(tmp_path / "b.png") as im:
        im.load()


def test_validate_reads_a_colour_spectrum_by_its_first_channel(tmp_path, capsys) -> None:
    """break-test 45: (H, W, 3) from load_spectrum (what report validates) was refused as a non-Hermitian 3-D
    grid naming S[(0,0,1)] vs S[(0,0,2)]; now its first channel is validated (as report does), with a note. The
    output lists the channel-0 shape; a 3-D array that is Hermitian stays a 3-D field."""
    from symsched import spectra

    S = spectra.natural_patches_spectrum(patch_size=8)
    assert S.shape == (8, 8, 3) and not np.allclose(S[..., 1], S[..., 2])
    np.save(tmp_path / "c.npy", S)
    code = main(["validate", "--spectrum", str(tmp_path / "c.npy"), "--steps", "2", "--samples", "40",
                 "--no-progress"])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    assert "note:" in out and "validating the first channel" in out and "must be Hermitian-symmetric" not in err
    assert "note:" not in err, err  # every command's notes are on stdout with the rest of its report
    assert "8x8" in out.replace(" ", "") or "(8, 8)" in out, out


def test_an_interrupt_that_surfaces_as_another_exception_is_reported_as_an_interrupt(tmp_path, monkeypatch,
                                                                                      capsys) -> None:
    """break-test 49: a Ctrl-C inside a C extension's lazy import surfaces as 'ImportError: initialization failed',
    and the CLI printed 'internal error ... please report it' (exit 1) for the user's own Ctrl-C. An exception raised
    after an interrupt arrived is now the interrupt (130); the same exception without one stays a bug report
    (exit 1, the companion). The previous SIGINT handler is back after main."""
    import signal
    import time

    from symsched.commands import latex

    def interrupted_import(args):
        try:
            signal.raise_signal(signal.SIGINT)  # delivered to this (main) thread: main's handler raises
            time.sleep(0.05)
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None

    def plain_import_error(args):
        raise ImportError("initialization failed")

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(latex, "run", interrupted_import)
    assert main(["latex", "--out", str(tmp_path / "d")]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "symsched latex: interrupted", err
    assert signal.getsignal(signal.SIGINT) is before
    monkeypatch.setattr(latex, "run", plain_import_error)
    assert main(["latex", "--out", str(tmp_path / "d")]) == 1
    assert "internal error (ImportError: initialization failed)" in capsys.readouterr().err


def test_an_interrupt_while_the_commands_load_is_one_line(monkeypatch, capsys) -> None:
    """Audit of 5 December: Ctrl-C in the first second of `symsched transfer ...` printed 7-50 lines of traceback from
    the package's imports: `import symsched` loaded NumPy, SciPy and every module before cli.py set its handler, and
    main built the parser (importing every command) before installing it. A SIGINT while the parser is built is now
    "symsched transfer: interrupted", exit 130 (SIGTERM: 143); with --debug the interrupt propagates (companion)."""
    import signal

    from symsched import cli

    def loading(signum):
        def build():
            signal.raise_signal(signum)  # main thread: the handler raises here, as during an import
            raise AssertionError("the signal was not turned into an interrupt")
        return build

    def run(argv):
        try:
            return main(argv)
        except KeyboardInterrupt:  # (escaping, it would stop pytest instead of failing this test)
            pytest.fail("the interrupt escaped main as a traceback")

    monkeypatch.setattr(cli, "build_parser", loading(signal.SIGINT))
    assert run(["transfer", "--spectrum", "S.npy", "--alpha-bar", "0.5"]) == 130
    assert capsys.readouterr().err == "symsched transfer: interrupted\n"
    monkeypatch.setattr(cli, "build_parser", loading(signal.SIGTERM))
    assert run(["sde-table", "--out", "x.md"]) == 143
    assert capsys.readouterr().err == "symsched sde-table: terminated\n"
    monkeypatch.setattr(cli, "build_parser", loading(signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        main(["--debug", "transfer"])


def test_the_script_sets_up_its_interrupt_handling_before_the_heavy_imports() -> None:
    """What makes the window before the handler small: importing the script's module (symsched.cli, through the package)
    loads neither NumPy nor the package's modules; `import symsched` gives its public names and submodules on first
    use. (The handler itself is tested in-process above; timing a real Ctrl-C is not deterministic.)"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = ("import sys, symsched.cli; heavy = sorted(m for m in ('numpy', 'scipy', 'symsched.api', 'symsched.optimize') "
            "if m in sys.modules); print(heavy); import symsched; "
            "print(callable(symsched.output_spectrum), callable(symsched.schedules.training_grid), "
            "'optimize_schedule' in dir(symsched), {'api', 'spectra', 'insight'} <= set(dir(symsched))); "
            "from symsched import *; print(sorted(set(symsched.__all__) - set(dir())))")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["[]", "True True True True", "[]"]  # (dir lists the submodules: completion)
    missing = subprocess.run([sys.executable, "-c", "import symsched; symsched.no_such_name"], env=env,
                             capture_output=True, text=True)
    assert "AttributeError: module 'symsched' has no attribute 'no_such_name'" in missing.stderr


def test_the_console_entry_point_runs_main_and_exits_with_its_code(tmp_path) -> None:
    """The script and `python -m symsched` go through console_main (a late Ctrl-C during the interpreter's shutdown
    ends the process quietly): its exit code is main's."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ok = subprocess.run([sys.executable, "-m", "symsched", "--version"], env=env, capture_output=True, text=True)
    bad = subprocess.run([sys.executable, "-m", "symsched", "transfer", "--spectrum", str(tmp_path / "missing.npy"),
                          "--alpha-bar", "0.5"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("symsched")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing.npy" in bad.stderr


def test_a_reader_that_leaves_early_costs_no_output_file(tmp_path) -> None:
    """break-test 50: `symsched sde-table ... | true` (stdout a closed pipe) exited 2 with "error: Broken pipe" and
    wrote no file: the summary was printed before the file was saved. Output to a gone reader is dropped; the
    command writes its file and exits 0. Companion: the same run to an open pipe prints the summary."""
    np.save(tmp_path / "S.npy", np.geomspace(1e-3, 10.0, 20))
    np.save(tmp_path / "A.npy", np.array([0.05, 0.5, 0.9]))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    argv = [sys.executable, "-m", "symsched", "transfer", "--spectrum", str(tmp_path / "S.npy"), "--alpha-bar",
            str(tmp_path / "A.npy")]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command prints anything
    try:
        done = subprocess.run([*argv, "--out", str(tmp_path / "P.npy")], env=env, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert np.load(tmp_path / "P.npy").shape == (20,)
    shown = subprocess.run([*argv, "--out", str(tmp_path / "P2.npy")], env=env, capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0 and "modes 20" in shown.stdout and (tmp_path / "P2.npy").is_file()


@pytest.mark.parametrize("argv,prog", [
    (["transfer", "--spectrum", "S.npy", "--alpha-bar", "A.npy", "--no-progress"], "symsched transfer"),
    (["optimize", "--steps", "3", "--out", "o.json", "--bogus", "1"], "symsched optimize"),
    (["latex", "extra-arg"], "symsched latex"),
    (["--bogus", "latex"], "symsched")])  # review: given to the top-level parser, named by it
def test_unrecognised_arguments_are_named_by_their_subcommand(capsys, argv, prog) -> None:
    """break-test: 'symsched transfer ... --no-progress' said "symsched: error: unrecognized arguments" (the top-level
    parser) and pointed to 'symsched --help'; the subcommand given them names them and its own help."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(f"{prog}: error: unrecognized arguments: ") and \
        f"(see '{prog} --help')" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv, flag", [
    (["report", "--steps", ",".join(map(str, range(9000, 10001)))], "--steps"),
    (["explain", "--steps", ",".join(map(str, range(1, 2001)))], "--steps"),
    (["explain", "--steps", "5", "--resolutions", ",".join(map(str, range(8, 120)))], "--resolutions"),
])
def test_list_options_hold_at_most_max_entries_values(files, capsys, argv, flag) -> None:
    """Audit fault 5: the number of entries of a list option was never bounded (only each entry), and
    `report --steps 9000,...,10000` / `explain --steps 1,...,2000` ran until killed: one line, exit 2, before any
    input is read (the spectrum named here does not exist: the old code stopped there, with another message)."""
    argv = [argv[0], "--spectrum", str(files.root / "missing.npy"), *argv[1:], "--out", str(files.root / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"{flag} must hold at most 100 values (symsched._validate.MAX_ENTRIES" in err


def test_step_count_lists_of_the_api_are_bounded() -> None:
    """Audit fault 5 in the API: as_step_counts (optimize.optimize_many's steps_list, explain, sweep) takes at most
    MAX_ENTRIES values, and refuses range(10**9) without listing it."""
    from symsched._validate import MAX_ENTRIES, as_step_counts

    assert len(as_step_counts(range(1, MAX_ENTRIES + 1))) == MAX_ENTRIES
    with pytest.raises(ValueError, match=rf"^steps must hold at most {MAX_ENTRIES} values .*got 1000000000 values"):
        as_step_counts(range(1, 10**9 + 1))


def test_a_mode_that_diverges_names_the_sampler_parameters_too(files, capsys) -> None:
    """break-test: with --option s_noise=1e200 (noise of variance ~1e400 per step: beyond float64 for any schedule)
    the error spoke of --spectrum alone; it now names the parameters the sampler ran with."""
    import symsched

    with pytest.raises(ValueError, match=r"^spectrum: the output variance of the mode S=.* exceeds the float64 range "
                                         r"for this schedule with eta=1, s_noise=1e\+200 \(the sampler "
                                         r"'euler_ancestral' diverges"):
        symsched.output_spectrum_ve(np.array([1.0, 2.0]), np.array([10.0, 1.0]), sampler="euler_ancestral",
                                    s_noise=1e200)
    code = main(["transfer", "--spectrum", files.S, "--alpha-bar", files.A, "--sampler", "euler_ancestral",
                 "--option", "s_noise=1e200", "--out", str(files.root / "P.npy")])
    _one_line_error(capsys, code, "transfer", "--spectrum", "with eta=1, s_noise=1e+200")


# Audit of 6 December: validate and sde-table cast a .npy spectrum with np.asarray(..., float64), so a long double
# beyond float64's range warned (RuntimeWarning, 3 stderr lines) and was then called "inf"; they now read it with the
# loader every other command uses (symsched.spectra), which names the value in one line.
@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("value, needle", [
    ("1e400", "spectrum in '{}' holds finite values beyond the float64 range (e.g. 1e+400)"),
    ("1e-400", "spectrum in '{}' holds non-zero values below the float64 range (e.g. 1e-400)"),
])
@pytest.mark.parametrize("command", [["validate", "--steps", "3", "--samples", "10"],
                                     ["sde-table", "--nfe", "10", "--eps", "0"]])
def test_a_long_double_spectrum_beyond_float64_is_one_line_in_every_command(tmp_path, capsys, command, value,
                                                                            needle) -> None:
    path = tmp_path / "S_ld.npy"
    np.save(path, np.ones((8, 8), dtype=np.longdouble) * np.longdouble(value))
    assert np.all(np.isfinite(np.load(path))) and np.load(path).dtype.itemsize > 8  # finite where it was written
    argv = [command[0], "--spectrum", str(path), *command[1:]]
    if command[0] == "sde-table":
        argv += ["--out", str(tmp_path / "t.tex")]
    code = main(argv)
    _one_line_error(capsys, code, command[0], "--spectrum", needle.format(path))
    assert not (tmp_path / "t.tex").exists()


def test_validate_reads_the_builtin_spectrum_as_every_command_does(capsys) -> None:
    """Audit of 6 December: 'validate --spectrum builtin:natural-patches' said the file did not exist. The built-in
    (32, 32, 3) colour eigen-mode PSD is read as every command reads it, and its first channel, a 32 x 32 field,
    is checked (as the report does); --help says so."""
    code = main(["validate", "--spectrum", "builtin:natural-patches", "--steps", "2", "--samples", "40",
                 "--no-progress"])
    out, err = capsys.readouterr()
    assert code in (0, 1) and "error" not in err and "Traceback" not in err, err
    assert "40 samples on 32x32 (builtin:natural-patches, first channel)" in out, out
    assert "validating the first channel" in out and "note:" not in err, err
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "builtin:natural-patches" in help_text and "the first channel is checked" in help_text, help_text


def test_probe_reference_of_long_doubles_beyond_float64_is_refused_by_name(tmp_path) -> None:
    """The same kind as above for --reference (samples, cast with astype(float64): a RuntimeWarning, then "must be
    finite")."""
    from symsched.commands.probe import _load_reference

    np.save(tmp_path / "R.npy", np.ones((3, 4, 4), dtype=np.longdouble) * np.longdouble("1e400"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match=r"^--reference holds finite values beyond the float64 range \(e\.g\. "
                                             r"1e\+400\)"):
            _load_reference(tmp_path / "R.npy", (4, 4))


@pytest.mark.parametrize("value", ["5e-324", "0", "1"])
def test_validate_alpha_below_its_floor_is_one_line_naming_the_value(capsys, value) -> None:
    """audit 5 Dec: --alpha 5e-324 lies in (0, 1) but psd_check refused "alpha must lie in (0, 1) (got 0.0)"
    after sampling; the CLI refuses the documented range [1e-300, 1) before any work, with the user's value."""
    code = main(["validate", "--alpha", value, "--steps", "2", "--samples", "20", "--no-progress"])
    line = _one_line_error(capsys, code, "validate", "--alpha", "[1e-300, 1)")
    assert f"(got {float(value)!r})" in line


def test_validate_and_report_check_the_same_field_of_a_colour_spectrum(tmp_path, capsys) -> None:
    """Audit of 6 December: a (16, 16, 3) colour spectrum whose last two channels are equal looks Hermitian along
    its last axis, so validate simulated a 16x16x3 field (386 bins) while report checked the first channel (130 bins).
    Both now read the shape alone (commands._settings.colour_channels): the first channel; a 4-D spectrum is one
    field, and report no longer calls it a first channel."""
    from symsched import spectra
    from symsched.commands import _settings
    from symsched.commands.report import _montecarlo_field

    p = spectra.power_law((16, 16))
    col = np.stack([p, 0.1 * p, 0.1 * p], -1)
    np.save(tmp_path / "col.npy", col)
    code = main(["validate", "--spectrum", str(tmp_path / "col.npy"), "--steps", "2", "--samples", "40", "--seed",
                 "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    assert "first channel" in out and "16x16x3" not in out.replace(" ", ""), out
    field_, why = _montecarlo_field(col)
    assert why is None and np.array_equal(field_, p)
    four = np.ones((4, 4, 4, 4))
    assert not _settings.colour_channels(four) and _montecarlo_field(four)[0].shape == (4, 4, 4, 4)
    assert not _settings.colour_channels(np.ones((8, 8, 5))) and _settings.colour_channels(np.ones((8, 8, 1)))


def test_validate_refuses_a_run_beyond_max_sample_work_before_its_header(capsys, monkeypatch) -> None:
    """Break-test of 7 December: ``symsched validate --samples 10000000 --shape 8192x8192 --steps 1000`` (each within
    its own limit; 6.7e17 value-steps together) printed nothing and ran until killed at 4 GB. Now one line naming
    --samples, exit 2, before the header line and before any sampling (MAX_SAMPLE_WORK checked on a smaller grid
    here: the companion runs just inside it)."""
    from symsched import _validate, montecarlo

    monkeypatch.setattr(_validate, "MAX_SAMPLE_WORK", 20 * 64 * 3)  # 20 samples of 8 x 8 over 3 levels

    def no_sampling(*args, **kwargs):
        pytest.fail("sampling started")
        yield

    with monkeypatch.context() as m:
        m.setattr(montecarlo._loops, "run", no_sampling)
        code = main(["validate", "--steps", "3", "--samples", "21", "--shape", "8x8", "--no-progress"])
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in cap.err, cap.err
    assert lines[0].startswith("symsched validate: error: --samples:") and "MAX_SAMPLE_WORK" in lines[0], lines
    assert cap.out == "", cap.out  # not even the header line
    code = main(["validate", "--steps", "3", "--samples", "20", "--shape", "8x8", "--no-progress"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "20 samples" in out, out


@pytest.mark.parametrize("given, noted", [
    ((), True),  # the blamed --steps left at its default: said so
    (("--steps", "5"), False),
    (("--steps=5",), False),
    (("--ste", "5"), False),  # a word the option starts with counts as given (the parser refuses abbreviations)
    (("--spectrum", "S.npy"), True),  # another option given: still a note about --steps
])
def test_an_error_about_an_option_left_at_its_default_says_so(given: tuple, noted: bool) -> None:
    """A message blaming an option the user never typed read as if they had ("--image-resolutions: ... got 128" with
    no --image-resolutions given): the line now says the option was not given (review of 7 December)."""
    args = argparse.Namespace(_options={"steps": "--steps", "spectrum": "--spectrum"}, _given=given)
    line = _name_option("steps must be at most 10000 (got 20000)", args)
    assert line.startswith("--steps: steps must be at most 10000 (got 20000)"), line
    assert line.endswith("(--steps was not given: the message is about its default)") is noted, line
    assert _name_option("no option named here", args) == "no option named here"  # nothing blamed: nothing added


@pytest.mark.parametrize("words, message", [
    (["optimize", "--steps", "3", "--steps", "4"], "--steps given twice: give it once"),
    (["optimize", "--steps=3", "--steps", "4"], "--steps given twice: give it once"),
    (["transfer", "--spectrum", "a.npy", "--alpha-bar", "b.npy", "--spectrum", "c.npy"],
     "--spectrum given twice: give it once"),
    (["optimize", "--ste", "3"], "unrecognized arguments: --ste 3"),
    (["transfer", "--spectrum", "a.npy", "--alpha", "b.npy"], "one of the arguments --alpha-bar --sigmas is required"),
])
def test_repeated_and_abbreviated_options_are_refused(words: list, message: str, tmp_path, capsys) -> None:
    """break-test (7 December): `--steps 3 --steps 4` ran K = 4 and a second --out replaced the first, silently;
    `--sp` was read as --spectrum and `--alpha` as transfer's --alpha-bar (validate's --alpha is another option)."""
    with pytest.raises(SystemExit) as info:
        main(words + ["--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_repeated_flag_and_a_repeated_list_option_keep_their_own_rules(tmp_path, capsys) -> None:
    """Flags (no value) may repeat harmlessly; --option (a list) keeps its own "given twice" check per setting."""
    from symsched.cli import build_parser

    args = build_parser().parse_args(["optimize", "--no-progress", "--no-progress", "--option", "a=1", "--option",
                                      "b=2", "--out", str(tmp_path / "o.json")])
    assert args.no_progress is True and len(args.option) == 2


def test_a_signal_ignored_at_start_stays_ignored() -> None:
    """break-test (7 December): a background job of a script (SIGINT ignored) died on Ctrl-C at the terminal."""
    import signal

    from symsched.cli import _signals_as_interrupts

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        previous = _signals_as_interrupts([])
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.SIGINT not in previous
        assert signal.SIGTERM in previous and signal.getsignal(signal.SIGTERM) is not previous[signal.SIGTERM]
        signal.signal(signal.SIGTERM, previous[signal.SIGTERM])
    finally:
        signal.signal(signal.SIGINT, before)


def test_out_of_memory_names_the_size_options_given(monkeypatch, tmp_path, capsys) -> None:
    """break-test (7 December): `validate --shape 8192x8192 --samples 100` under a memory limit said "out of memory"
    naming no option."""
    from symsched.commands import validate as cmd_validate

    def no_memory(args):
        raise MemoryError("Unable to allocate 64.0 MiB")

    monkeypatch.setattr(cmd_validate, "run", no_memory)
    code = main(["validate", "--shape", "8192x8192", "--samples=100", "--steps", "1", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("symsched validate: error: --shape 8192x8192, --samples 100, --steps 1: out of memory"), err
