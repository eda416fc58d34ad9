"""CLI edge cases: the report's worker start method and Ctrl-C, dangling --out links, a standard output that
cannot be written, and error lines that name the option at fault."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import symsched
from symsched import _io
from symsched.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (one thread: nothing an earlier test started runs there)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=600)


# ---------------------------------------------------------------------------------------------
# 1. the report's workers: forked whatever the progress bar, and started with Ctrl-C blocked
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
@pytest.mark.parametrize("progress", [["--no-progress"], []])
def test_report_forks_its_workers_whatever_the_progress_bar(tmp_path, progress) -> None:
    """Break-test: the report created its tqdm bar before the worker pool; tqdm's monitor thread (started by every
    bar, a disabled one too) made _start_method see two threads and spawn the workers, which then imported symsched
    before ignoring SIGINT (an early Ctrl-C printed their tracebacks). The report's sections are left out here: only
    the start method of the pool, as run() creates it, is under test."""
    done = _python(f"""
        import threading
        from symsched.commands import report
        chosen = []
        real = report._start_method
        report._start_method = lambda: chosen.append((real(), threading.active_count())) or chosen[-1][0]
        report.SECTIONS = []
        from symsched.cli import main
        code = main(["report", "--out", "r", "--probe-samples", "0", "--jobs", "1", *{progress!r}])
        print(code, chosen)
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 [('fork', 1)]", done.stdout
    assert (tmp_path / "r" / "summary.md").is_file()


def test_the_report_bar_starts_no_monitor_thread() -> None:
    """The report's bar class runs no monitor thread (tqdm's own class keeps its setting)."""
    from tqdm import tqdm

    from symsched.commands import report

    cls = report._bar_class()
    assert issubclass(cls, tqdm) and tqdm.monitor_interval != 0
    before = set(threading.enumerate())
    bar = cls(total=2, disable=True)
    try:
        assert set(threading.enumerate()) <= before and "monitor" not in cls.__dict__
        bar.update()
    finally:
        bar.close()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_report_workers_start_with_sigint_blocked(tmp_path, method) -> None:
    """A spawned worker imports symsched (to unpickle its initializer) before _worker_init ignores SIGINT: a Ctrl-C
    then printed a traceback from it. Workers are started with SIGINT blocked, which they inherit through fork and
    exec: the mask read inside a worker holds SIGINT (and its handler ignores it), while the parent's is as before."""
    if method == "fork" and not sys.platform.startswith("linux"):
        pytest.skip("workers are forked on Linux only")
    done = _python(f"""
        import signal
        from symsched.commands import report
        report._start_method = lambda: {method!r}
        if __name__ == "__main__":
            jobs = report._Jobs(1)
            try:
                mask = jobs.submit(signal.pthread_sigmask, signal.SIG_BLOCK, []).result()
                handler = jobs.submit(signal.getsignal, signal.SIGINT).result()
            finally:
                jobs.close(cancel=False)
            print(jobs.method, signal.SIGINT in mask, handler == signal.SIG_IGN,
                  signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [method, "True", "True", "False"], done.stdout


def test_sigint_blocked_delivers_the_signal_when_the_block_ends() -> None:
    """The parent loses no Ctrl-C: one raised inside the block arrives (as KeyboardInterrupt) when it ends."""
    from symsched.commands import report

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    reached = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with report._sigint_blocked():
                signal.raise_signal(signal.SIGINT)
                reached.append("after the signal")
            reached.append("after the block")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert reached == ["after the signal"]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


# ---------------------------------------------------------------------------------------------
# 2. a dangling symbolic link as a folder --out
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["report", "latex", "explain"])
def test_a_dangling_link_as_folder_out_is_refused_before_any_work(tmp_path, monkeypatch, capsys, command) -> None:
    """Break-test: `report --out dangling` ran to the end, then said "error: '.dangling.partial-1d06g5xm': Not a
    directory" (the hidden staging folder). It is refused up front, naming --out and the link."""
    import symsched.spectra

    def no_work(*args, **kwargs):
        raise AssertionError("the command started its work")

    monkeypatch.setattr(symsched.spectra, "load_spectrum", no_work)
    monkeypatch.chdir(tmp_path)
    os.symlink(tmp_path / "missing_dir", tmp_path / "dangling")
    assert main([command, "--out", "dangling"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"symsched {command}: error: --out 'dangling': is a dangling symbolic link" in err
    assert "missing_dir" in err and "partial" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling"]


def test_a_file_out_link_into_a_missing_folder_or_a_loop_is_refused(tmp_path, monkeypatch, capsys) -> None:
    """Audit of 5 December: `optimize --out dl.json`, dl.json a link to /nonexistent/x.json, created /nonexistent at
    the filesystem root and wrote there. A file --out that is a link is written through only where the file it
    names can be created: its folder exists (the companion, a link to a missing file in an existing folder)."""
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "S.npy", np.array([0.5, 1.0, 2.0]))
    argv = ["optimize", "--spectrum", "S.npy", "--steps", "3", "--restarts", "0", "--no-progress", "--out"]
    os.symlink(tmp_path / "missing_dir" / "x.json", tmp_path / "dl.json")
    os.symlink("loop_b", tmp_path / "loop_a")
    os.symlink("loop_a", tmp_path / "loop_b")
    assert main(argv + ["dl.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out 'dl.json': is a dangling symbolic link" in err and "missing_dir" in err
    assert not (tmp_path / "missing_dir").exists()
    assert main(argv + ["loop_a"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out 'loop_a': is a symbolic link that cannot be followed" in err
    os.symlink(tmp_path / "target.json", tmp_path / "new.json")
    assert main(argv + ["new.json"]) == 0
    assert (tmp_path / "new.json").is_symlink() and "alpha_bar" in (tmp_path / "target.json").read_text()
    with pytest.raises(FileNotFoundError, match="dangling symbolic link"):  # the writer itself, not only the CLI
        _io.atomic_write_text(tmp_path / "dl.json", "x")
    assert not (tmp_path / "missing_dir").exists()


def test_a_link_to_a_folder_as_out_is_written_through(tmp_path) -> None:
    """The companion: a link to an existing folder is written into, the link kept."""
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert main(["latex", "--out", str(tmp_path / "link"), "--sampler", "ddim"]) == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "ddim.tex").is_file()


def test_an_oserror_at_publish_names_out_not_the_staging_folder(tmp_path, monkeypatch, capsys) -> None:
    """Any OSError while the staged output moves onto --out names --out (or the file under it), never the hidden
    staging folder, which the user never named and which is removed."""
    real = os.replace

    def refuse_folders(src, dst, *args, **kwargs):
        if os.path.isdir(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link", src, dst)
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(_io.os, "replace", refuse_folders)
    assert main(["latex", "--out", str(tmp_path / "tex"), "--sampler", "ddim"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "partial" not in err, err
    assert f"--out {str(tmp_path / 'tex')!r}: Invalid cross-device link" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing published, no staging folder left


def test_publish_refuses_a_link_that_went_dangling_during_the_work(tmp_path) -> None:
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError) as caught:
        with _io.staged_folder(out) as stage:
            (stage / "a.txt").write_text("a")
            os.symlink(tmp_path / "gone", out)
    assert caught.value.filename == str(out) and "dangling symbolic link" in caught.value.strerror
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and out.is_symlink()


def test_an_output_name_that_is_no_utf8_is_written(tmp_path, capsys) -> None:
    """Audit of 5 December: a valid Linux file name that is no UTF-8 (b"P\\xff.npy", which Python holds as
    "P\\udcff.npy") crashed every command after the work ("'utf-8' codec can't encode character '\\udcff'"): the
    temporary name encoded it strictly. It is written, as a file and as a folder."""
    np.save(tmp_path / "S.npy", np.array([1.0, 0.5]))
    np.save(tmp_path / "A.npy", np.array([0.1, 0.9]))
    out = os.fsdecode(os.fsencode(str(tmp_path)) + b"/P\xff.npy")
    assert main(["transfer", "--spectrum", str(tmp_path / "S.npy"), "--alpha-bar", str(tmp_path / "A.npy"),
                 "--out", out]) == 0
    assert main(["latex", "--sampler", "ddim", "--out", os.fsdecode(os.fsencode(str(tmp_path)) + b"/d\xff")]) == 0
    capsys.readouterr()
    assert sorted(os.listdir(os.fsencode(str(tmp_path)))) == [b"A.npy", b"P\xff.npy", b"S.npy", b"d\xff"]
    assert sorted(os.listdir(os.fsencode(str(tmp_path)) + b"/d\xff")) == [b"ddim.tex", b"symsched.tex"]
    np.testing.assert_array_equal(np.load(out), symsched.output_spectrum([1.0, 0.5], [0.1, 0.9]))
    # a terminal that takes strict UTF-8 gets the name escaped, as stderr does, not an error after the work
    env = {**ENV, "PYTHONIOENCODING": "utf-8"}
    run = subprocess.run([sys.executable, "-m", "symsched", "transfer", "--spectrum", "S.npy", "--alpha-bar",
                          "A.npy", "--out", b"Q\xff.npy"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0 and "wrote output PSD to Q\\udcff.npy" in run.stdout, run.stderr
    assert os.path.isfile(os.fsencode(str(tmp_path)) + b"/Q\xff.npy")


def test_a_link_to_a_file_is_checked_where_it_points_and_named_as_given(tmp_path, capsys) -> None:
    """Audit of 5 December: --out given as a link was checked in the link's folder, so a target that cannot be
    written (here: under a regular file) passed the early check and failed after the work, named by the resolved
    path, which no option matched (no '--out'). Refused up front, naming --out and the link."""
    np.save(tmp_path / "S.npy", np.array([1.0, 0.5]))
    (tmp_path / "afile").write_text("x")
    os.symlink(tmp_path / "afile" / "o.json", tmp_path / "link.json")
    assert main(["optimize", "--spectrum", str(tmp_path / "S.npy"), "--steps", "3", "--no-progress", "--out",
                 str(tmp_path / "link.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {str(tmp_path / 'link.json')!r}: " in err, err


def test_a_failed_publish_names_the_file_under_out_not_a_hidden_copy(tmp_path, monkeypatch, capsys) -> None:
    """Audit of 5 December: a file of a folder output that could not be replaced (seen: an immutable target) was
    named by the hidden hard link kept of it ('.ddim.tex.6516a4f3cbdbe9e5.old'), not by --out's file."""
    out = tmp_path / "tex"
    assert main(["latex", "--sampler", "ddim", "--out", str(out)]) == 0
    before = (out / "ddim.tex").read_bytes()

    def refuse(src, dst, *args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted", src, None, dst)  # (as os.link names both)

    monkeypatch.setattr(_io.os, "link", refuse)
    assert main(["latex", "--sampler", "ddim", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".old" not in err, err
    named = "|".join(re.escape(f"--out {str(out / name)!r}: Operation not permitted") for name in ("ddim.tex",
                                                                                                 "symsched.tex"))
    assert re.search(named, err), err
    assert (out / "ddim.tex").read_bytes() == before and sorted(p.name for p in out.iterdir()) == [
        "ddim.tex", "symsched.tex"]


def test_a_folder_output_published_while_another_writer_creates_out(tmp_path, monkeypatch) -> None:
    """Audit of 5 December: two writers of a new --out folder: the one whose rename of its finished folder found
    the other's already there failed with 'Directory not empty'. It publishes file by file onto it instead."""
    out = tmp_path / "out"
    real = os.replace

    def racing(src, dst, *args, **kwargs):
        if os.path.isdir(src) and not os.path.exists(dst):  # the other writer wins the race just now
            os.mkdir(dst)
            Path(dst, "other.txt").write_text("theirs")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(_io.os, "replace", racing)
    with _io.staged_folder(out) as stage:
        (stage / "mine.txt").write_text("mine")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "mine.txt").read_text() == "mine" and (out / "other.txt").read_text() == "theirs"


def test_save_figure_refuses_an_empty_or_folder_path(tmp_path) -> None:
    """Audit of 5 December: save_figure(fig, "x.png/") silently wrote a file x.png and "" was reported as '.'."""
    from matplotlib.figure import Figure

    from symsched.plots import save_figure

    with pytest.raises(ValueError, match=r"^path '.*x\.png/' names a folder"):
        save_figure(Figure(), str(tmp_path / "x.png") + "/")
    with pytest.raises(ValueError, match=r"^path must name a file \(got ''\)"):
        save_figure(Figure(), "")
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------------------------------------
# 3. a standard output that is closed or cannot be written
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def inputs(tmp_path):
    np.save(tmp_path / "S.npy", np.array([1.0, 0.5, 0.1]))
    np.save(tmp_path / "A.npy", np.array([0.05, 0.5, 0.9]))
    return tmp_path


def _symsched(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "symsched", *args], cwd=cwd, env=ENV, stderr=subprocess.PIPE,
                          text=True, timeout=600, **kwargs)


def test_a_closed_stdout_is_one_line_and_exit_2(inputs) -> None:
    """Break-test: `symsched transfer ... >&-` printed "internal error (AttributeError: 'NoneType' object has no
    attribute 'write')", exit 1, and then a traceback from console_main's flush."""
    argv = ["transfer", "--spectrum", "S.npy", "--alpha-bar", "A.npy", "--out", "P.npy"]
    done = subprocess.run([sys.executable, "-m", "symsched", *argv], cwd=inputs, env=ENV, stdin=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=600, close_fds=True,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("symsched transfer: error: standard output is closed; redirect it instead "
                           "(e.g. > /dev/null)\n")
    assert not (inputs / "P.npy").exists()  # refused before any work


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv,written", [
    (["sde-table", "--spectrum", "S.npy", "--nfe", "50", "--eps", "0", "--out", "t.tex", "--no-progress"], "t.tex"),
    (["transfer", "--spectrum", "S.npy", "--alpha-bar", "A.npy", "--out", "P.npy"], "P.npy"),
    (["optimize", "--spectrum", "S.npy", "--steps", "3", "--restarts", "0", "--no-progress", "--out", "o.json"],
     "o.json"),
])
def test_a_full_stdout_names_stdout_and_costs_no_file(inputs, argv, written) -> None:
    """Break-test: `sde-table ... > /dev/full` exited 2 with only "No space left on device" (not naming stdout), and
    t.tex was never written (the table was printed first). The files are written, then one line names stdout."""
    with open("/dev/full", "w") as full:
        done = _symsched(argv, inputs, stdout=full)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"symsched {argv[0]}: error: standard output: No space left on device")
    assert (inputs / written).is_file() and (inputs / written).stat().st_size > 0


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["optimize", "--help"]])
def test_help_and_version_into_a_full_stdout_exit_2(inputs, argv) -> None:
    """review of 4 December: `symsched --version > /dev/full` exited 0 with nothing on stderr (argparse drops the
    write error); into a working stdout they still print and exit 0."""
    with open("/dev/full", "w") as full:
        done = _symsched(argv, inputs, stdout=full)
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("symsched: error: standard output: No space left on device (what --help or --version "
                           "printed was lost)\n")
    ok = _symsched(argv, inputs, stdout=subprocess.PIPE)
    assert ok.returncode == 0 and ok.stderr == "" and ("usage: symsched" in ok.stdout or "symsched 0." in ok.stdout)


def test_sde_table_writes_its_file_before_printing(inputs, monkeypatch, capsys) -> None:
    """In-process companion: when the first line reaches stdout, the LaTeX file is already there."""
    seen = []

    class Watch:
        def write(self, text):
            seen.append((inputs / "t.tex").is_file())
            return len(text)

        def flush(self):
            pass

    monkeypatch.chdir(inputs)
    monkeypatch.setattr(sys, "stdout", Watch())
    assert main(["sde-table", "--spectrum", "S.npy", "--nfe", "50", "--eps", "0", "--out", "t.tex",
                 "--no-progress"]) == 0
    assert seen and all(seen)


# ---------------------------------------------------------------------------------------------
# 4. error lines name the option at fault
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra,option", [(["--beta-max", "1e308"], "--beta-max"), (["--horizon", "1e5"], "--horizon"),
                                          (["--horizon", "1e5", "--beta-min", "0.01"], "--horizon")])
def test_sde_table_range_errors_name_the_scale_option(tmp_path, capsys, extra, option) -> None:
    """Break-test: `sde-table --beta-max 1e308` (or --horizon 1e5) said "error: --spectrum: the float64 recursion
    ... leaves the float64 range": the option at fault is the one that steepens or lengthens beta(t)."""
    np.save(tmp_path / "S.npy", np.linspace(0.01, 1.0, 64))  # more modes than are recomputed with mpmath
    argv = ["sde-table", "--spectrum", str(tmp_path / "S.npy"), "--nfe", "50", "--eps", "0", "--no-progress",
            "--out", str(tmp_path / "t.tex")]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"symsched sde-table: error: {option}: the float64 recursion of scheme"), err
    assert "--spectrum" not in err and "--beta-min" not in err


def test_a_message_led_by_several_arguments_names_each_option(tmp_path, capsys) -> None:
    """The companion: the CLI maps every argument of a leading list to its option ("beta_min, beta_max: beta(t)
    ... must be positive" was "--beta-min: beta_min, beta_max: ..."), and a lead naming no option is left."""
    import argparse

    from symsched.cli import _name_option

    np.save(tmp_path / "S.npy", np.array([0.5, 1.0]))
    assert main(["sde-table", "--spectrum", str(tmp_path / "S.npy"), "--beta-min", "20", "--beta-max", "-30",
                 "--out", str(tmp_path / "t.tex"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symsched sde-table: error: --beta-min, --beta-max: beta(t) = beta_min"), err
    args = argparse.Namespace(_options={"spectrum": "--spectrum", "beta_max": "--beta-max"})
    assert _name_option("spectrum: too many modes", args) == "--spectrum: too many modes"
    assert _name_option("beta_max, eta: x", args) == "--beta-max: beta_max, eta: x"  # eta: no option here


def test_model_error_offers_the_safetensors_form(tmp_path, capsys) -> None:
    """Break-test: `--model retrained/patches16.json` said "must be builtin:patches16 or a folder with a diffusers
    model", leaving out the weight file of 'symsched train-demo' that --help offers."""
    assert main(["probe", "--model", "retrained/patches16.json", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--model must be builtin:patches16, a patches16.safetensors written by 'symsched train-demo', or a " \
           "folder with a diffusers model (got 'retrained/patches16.json')" in err


@pytest.mark.diffusers
def test_a_one_channel_model_takes_a_spectrum_without_the_channel_axis(tmp_path) -> None:
    """Break-test: a 1-channel diffusers model accepted a reference of shape (N, H, W) but refused a (H, W) spectrum
    (the PSD of greyscale data): "--spectrum must have shape (1, H, W) for this model". Both shapes are taken."""
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers_helpers import tiny_unet

    from symsched.commands import probe as cmd

    folder = tmp_path / "model"
    tiny_unet().save_pretrained(folder / "unet", safe_serialization=True)
    diffusers.DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
    np.save(tmp_path / "ref.npy", np.random.default_rng(0).uniform(-1, 1, (50, 8, 8)))
    S = np.random.default_rng(1).uniform(0.1, 2.0, (8, 8))
    np.save(tmp_path / "S2.npy", S)
    np.save(tmp_path / "S3.npy", S[None])
    for name in ("S2.npy", "S3.npy"):
        pm = cmd.load_probe_model(str(folder), tmp_path / "ref.npy", str(tmp_path / name))
        assert pm.spectrum.shape == (1, 8, 8)
        np.testing.assert_array_equal(pm.spectrum[0], S)
    np.save(tmp_path / "bad.npy", S[:4])
    with pytest.raises(ValueError, match=r"--spectrum must have shape \(1, 8, 8\) or \(8, 8\) for this model "
                                         r"\(got \(4, 8\)\)"):
        cmd.load_probe_model(str(folder), tmp_path / "ref.npy", str(tmp_path / "bad.npy"))


# --- audit of 6 December: help layout, negative-looking values, PostScript's logged notice ----------------------
_COMMANDS = ("transfer", "validate", "optimize", "report", "explain", "probe", "latex", "sde-table", "train-demo")


@pytest.mark.parametrize("command", _COMMANDS)
@pytest.mark.parametrize("columns", [80, 100])
def test_help_fits_the_terminal_and_never_splits_a_value_at_its_hyphen(command, columns, monkeypatch,
                                                                         capsys) -> None:
    """The 19-sampler choice list made usage and option lines of 270 characters, and wrapping split literal values
    (``linear-`` / ``leading``, ``builtin:natural-`` / ``patches``) at their hyphens."""
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= columns, [ln for ln in lines if len(ln) > columns]
    assert not [ln for ln in lines if re.search(r"[a-z]-$", ln)]  # a word broken at a hyphen ends a line


def test_every_sampler_is_still_listed_in_the_help(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["transfer", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--sampler SAMPLER" in text
    for name in symsched.SAMPLERS:
        assert re.search(rf"[ ,:]{name}[,)]", text), name


@pytest.mark.parametrize("argv, needle", [
    (["transfer", "--spectrum", "{S}", "--alpha-bar", "{A}", "--eta", "-1e-3"], "--eta: eta must lie in [0, 1]"),
    (["report", "--steps", "-5,10", "--out", "{out}"], "--steps must be comma-separated positive integers"),
    (["optimize", "--spectrum", "{S}", "--out", "{out}.json", "--endpoints", "-0.1,none"],
     "--endpoints: endpoints[0] (first level) must be a level in [0, 1)"),
])
def test_a_value_that_looks_like_a_negative_number_is_the_options_value(argv, needle, tmp_path, capsys) -> None:
    """``-1e-3`` or ``-5,10`` after an option was read as an unknown option ("expected one argument"), not as the
    value the user gave, whose range was then never named."""
    np.save(tmp_path / "S.npy", np.ones(4))
    np.save(tmp_path / "A.npy", np.array([0.3, 0.9]))
    subs = {"{S}": str(tmp_path / "S.npy"), "{A}": str(tmp_path / "A.npy"), "{out}": str(tmp_path / "o")}
    argv = [subs.get(a, a.replace("{out}", str(tmp_path / "o"))) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "expected one argument" not in err, err


def test_an_eps_figure_prints_no_bare_postscript_notice(tmp_path, capsys, caplog) -> None:
    """matplotlib logs "The PostScript backend does not support transparency" (no longer a warning), which reached
    stderr as a bare line without the command's prefix (through logging's last-resort handler; under pytest its
    log capture takes the record instead, so both are checked)."""
    import logging

    np.save(tmp_path / "S.npy", np.ones(4))
    argv = ["optimize", "--spectrum", str(tmp_path / "S.npy"), "--steps", "2", "--restarts", "0", "--no-progress",
            "--out", str(tmp_path / "o.json"), "--plot", str(tmp_path / "o.eps")]
    with caplog.at_level(logging.WARNING):
        assert main(argv) == 0
    assert "PostScript" not in capsys.readouterr().err
    assert not [r for r in caplog.records if "PostScript" in r.getMessage()]
    assert (tmp_path / "o.eps").read_bytes().startswith(b"%!PS")
