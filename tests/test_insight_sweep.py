"""Sweeps (issue 12, item 1): deterministic, serial == parallel, tables, arrays and plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

import symsched
from symsched import spectra
from symsched.insight import SweepResult, sweep

KW = dict(divergence="w2", restarts=1, seed=3)  # one random restart: the seeded RNG is exercised too


def _family(alpha: float) -> np.ndarray:
    return spectra.power_law((16, 16), alpha=alpha)


def _same(a: SweepResult, b: SweepResult) -> None:
    assert a.results.keys() == b.results.keys()
    for key in a.results:
        ra, rb = a.results[key], b.results[key]
        assert np.array_equal(ra.alpha_bar, rb.alpha_bar), key
        assert ra.value == rb.value and ra.kl == rb.kl and ra.w2 == rb.w2, key


@pytest.fixture(scope="module")
def serial() -> SweepResult:
    return sweep(_family, (3, 5), values=[1.0, 2.0, 3.0], parameter="alpha", n_jobs=1, **KW)


def test_serial_and_parallel_sweeps_are_identical(serial) -> None:
    """Acceptance: the same numbers with 1 process and with 2 loky workers (bit for bit)."""
    parallel = sweep(_family, (3, 5), values=[1.0, 2.0, 3.0], parameter="alpha", n_jobs=2, **KW)
    _same(serial, parallel)
    threads = sweep(_family, (3, 5), values=[1.0, 2.0, 3.0], parameter="alpha", n_jobs=2, backend="threading", **KW)
    _same(serial, threads)


def test_sweeps_are_deterministic_and_equal_direct_optimisation(serial) -> None:
    again = sweep([_family(a) for a in (1.0, 2.0, 3.0)], [3, 5], values=[1.0, 2.0, 3.0], parameter="alpha",
                  n_jobs=1, **KW)
    _same(serial, again)
    direct = symsched.optimize_schedule(_family(2.0), 5, **KW)
    assert np.array_equal(serial.result(2.0, 5).alpha_bar, direct.alpha_bar)


def test_result_forms(serial) -> None:
    arr = serial.to_arrays()
    assert arr["value"].shape == arr["kl"].shape == arr["w2"].shape == (3, 2)
    assert arr["log_snr"][5].shape == (3, 5) and np.array_equal(arr["values"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(serial.log_snr(3)[1], serial.result(2.0, 3).log_snr)
    d = serial.to_dict()
    json.dumps(d)
    assert len(d["results"]) == 6 and d["results"][0]["alpha"] == 1.0
    md = serial.to_markdown()
    lines = md.strip().splitlines()
    assert lines[0].startswith("| alpha | K | objective (W2²)") and len(lines) == 2 + 6
    assert r"\begin{tabular}" in serial.to_latex() and serial.to_latex().count(r"\\") == 1 + 6
    fig = serial.plot()
    assert len(fig.axes) == 3  # two panels and the colour bar of alpha
    fits = serial.fit_heuristics()
    assert len(fits.fits) == 6 and fits.to_markdown().count("\n") == 2 + 6
    assert r"\begin{tabular}" in fits.to_latex()


def test_steeper_spectra_put_the_w2_optimum_at_more_noise(serial) -> None:
    """A fact the sweep is for: more energy at low frequencies -> the W2 optimum spends its steps noisier."""
    mid = serial.log_snr(5).mean(axis=1)
    assert mid[0] > mid[1] > mid[2]


def test_mapping_array_and_list_inputs() -> None:
    S = _family(2.0)
    by_map = sweep({"a": S, "b": 2 * S}, 2, n_jobs=1, restarts=0)
    assert by_map.values == ["a", "b"] and by_map.steps == [2]
    one = sweep(S, 2, n_jobs=1, restarts=0)
    assert one.values == [0] and "| K |" in one.to_markdown()  # one spectrum: no parameter column
    assert np.array_equal(one.result(0, 2).alpha_bar, by_map.result("a", 2).alpha_bar)
    assert len(by_map.plot().axes) == 1


@pytest.mark.parametrize(
    "args,kwargs,exc,match",
    [
        ((_family, 3), {}, ValueError, "values must be given"),
        (([np.ones(4), np.ones(4)], 3), dict(values=[1]), ValueError, "values has 1 entries but spectra has 2"),
        (([np.ones(4)], 0), {}, ValueError, "steps must be a positive integer"),
        (([np.ones(4)], [3, 3]), {}, ValueError, "must not repeat"),
        (([-np.ones(4)], 3), {}, ValueError, "non-negative"),
        (([np.ones(4)], 3), dict(divergnce="w2"), TypeError, "unexpected keyword argument"),
        (([np.ones(4)], 3), dict(progress=True, n_jobs=1, restarts=0, sampler="ddim", eta=0.0, seed=0, grid=None,
                                  weights=None, init="white", maxiter=10, standard_starts=True, endpoints=None,
                                  divergence="kl", variance="posterior"), None, None),
        (("spectrum", 3), {}, TypeError, "spectra must be"),
        (({1: np.ones(4)}, 3), dict(values=[1]), ValueError, "values must be None when spectra is a mapping"),
    ],
)
def test_bad_input(args, kwargs, exc, match) -> None:
    if exc is None:  # every optimize_schedule keyword is accepted
        assert sweep(*args, **kwargs).steps == [3]
        return
    with pytest.raises(exc, match=match):
        sweep(*args, **kwargs)


def test_optimiser_errors_surface_from_the_workers() -> None:
    with pytest.raises(ValueError, match="divergence must be one of"):
        sweep([np.ones(4), 2 * np.ones(4)], 3, n_jobs=2, divergence="js")


def test_dask_backend_runs_the_same_sweep() -> None:
    """The documented cluster path: joblib's dask backend (skipped when dask.distributed is absent)."""
    pytest.importorskip("dask.distributed")
    import joblib
    from dask.distributed import Client

    with Client(processes=False, n_workers=1, threads_per_worker=2):
        with joblib.parallel_config(backend="dask"):
            res = sweep(_family, 3, values=[1.0, 2.0], n_jobs=-1, restarts=0)
    ref = sweep(_family, 3, values=[1.0, 2.0], n_jobs=1, restarts=0)
    _same(ref, res)


# ---------------------------------------------------------------------------------------------
# n_jobs (break-test item 7) and values with a list (item 12)
# ---------------------------------------------------------------------------------------------
_BAD_JOBS = [(0, ValueError, "n_jobs must be -1"), (10**9, ValueError, "at most 4096"),
             (-(10**9), ValueError, "at most 4096"), ("x", TypeError, "n_jobs must be an integer"),
             (True, TypeError, "n_jobs must be an integer"), (1.5, TypeError, "n_jobs must be an integer"),
             (2.0, TypeError, "n_jobs must be an integer"), (np.array([2]), TypeError, "n_jobs must be an integer")]


@pytest.mark.parametrize("n_spectra", [1, 2])
@pytest.mark.parametrize("bad,exc,match", _BAD_JOBS)
def test_n_jobs_is_checked_before_any_work(monkeypatch, n_spectra, bad, exc, match) -> None:
    import importlib

    sweep_mod = importlib.import_module("symsched.insight.sweep")

    def no_work(*a, **k):  # pragma: no cover - reached only if the check is missing
        raise AssertionError("an optimisation ran before n_jobs was checked")

    monkeypatch.setattr(sweep_mod, "_task", no_work)
    with pytest.raises(exc, match=match):
        sweep([np.ones(4)] * n_spectra, 3, n_jobs=bad, restarts=0)


@pytest.mark.parametrize("bad,exc,match", _BAD_JOBS[:4])
def test_n_jobs_of_resolution_law_and_explain_is_checked(tmp_path, bad, exc, match) -> None:
    from symsched.insight import explain, resolution_law, scene_power_law

    with pytest.raises(exc, match=match):
        resolution_law(lambda d: scene_power_law(d, alpha=2.0), [8, 16], steps=3, n_jobs=bad, restarts=0)
    with pytest.raises(exc, match=match):
        explain(np.ones((8, 8)), tmp_path / "o", steps=(3,), divergences=("w2",), resolutions=(), images="off",
                n_jobs=bad, progress=False)
    assert not (tmp_path / "o").exists()


def test_valid_n_jobs_give_the_serial_result() -> None:
    ref = sweep([_family(2.0), _family(3.0)], 3, n_jobs=1, restarts=0)
    for n in (-2, np.int64(2), None):
        _same(ref, sweep([_family(2.0), _family(3.0)], 3, n_jobs=n, backend="threading", restarts=0))


def test_values_label_a_list_and_are_refused_for_one_array() -> None:
    S = _family(2.0)
    one = sweep([S], 2, values=[1.5], parameter="alpha", n_jobs=1, restarts=0)
    direct = symsched.optimize_schedule(S, 2, restarts=0)
    assert one.values == [1.5] and np.array_equal(one.result(1.5, 2).alpha_bar, direct.alpha_bar)
    assert one.to_dict()["results"][0]["alpha"] == 1.5
    with pytest.raises(ValueError, match="values must be None when spectra is a single array"):
        sweep(S, 2, values=[1.5], n_jobs=1, restarts=0)
    with pytest.raises(ValueError, match="values must be a sequence of labels"):
        sweep([S], 2, values=1.5, n_jobs=1, restarts=0)


def test_default_divergence_is_labelled_as_optimised() -> None:
    """sweep() without divergence= optimises W2 (the optimiser's default) and its tables say W2², not KL."""
    res = sweep(_family, 3, values=[1.0, 2.0], parameter="alpha", n_jobs=1, restarts=0)
    r = res.result(1.0, 3)
    assert r.divergence == "w2" and r.value == pytest.approx(r.w2**2, rel=1e-9)  # the optimiser's own W2
    for table in (res.to_markdown(), res.to_latex()):
        assert "objective (W2" in table and "objective (KL)" not in table
    assert res.to_dict()["settings"]["divergence"] == "w2"
    kl = sweep(_family, 3, values=[1.0], n_jobs=1, restarts=0, divergence="kl")
    assert "objective (KL)" in kl.to_markdown()


# ---------------------------------------------------------------------------------------------
# backend (audit fault 3) and repeated / non-finite values (audit fault 4)
# ---------------------------------------------------------------------------------------------
def _no_work(monkeypatch) -> None:
    import importlib

    def no_work(*a, **k):  # pragma: no cover - reached only if the check is missing
        raise AssertionError("an optimisation ran before the arguments were checked")

    monkeypatch.setattr(importlib.import_module("symsched.insight.sweep"), "_task", no_work)


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("n_spectra", [1, 2])
def test_backend_is_checked_whatever_n_jobs(monkeypatch, n_jobs, n_spectra) -> None:
    """An unknown backend name is a ValueError naming backend and listing joblib's backends, a non-string a
    TypeError, before any work, also where no joblib pool would be started (n_jobs=1 or a single task)."""
    from joblib.parallel import BACKENDS

    from symsched.insight import resolution_law, scene_power_law

    _no_work(monkeypatch)
    with pytest.raises(ValueError, match="backend must be one of") as info:
        sweep([np.ones(4)] * n_spectra, 3, n_jobs=n_jobs, backend="foo", restarts=0)
    assert "'foo'" in str(info.value)
    for name in ("loky", "threading", "multiprocessing", "sequential", *BACKENDS):  # joblib's own registry
        assert repr(name) in str(info.value)
    with pytest.raises(TypeError, match="backend must be one of"):
        sweep([np.ones(4)] * n_spectra, 3, n_jobs=n_jobs, backend=3, restarts=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        resolution_law(lambda d: scene_power_law(d, alpha=2.0), [8, 16], steps=3, n_jobs=n_jobs, backend="foo",
                       restarts=0)
    with pytest.raises(TypeError, match="backend must be one of"):
        resolution_law(lambda d: scene_power_law(d, alpha=2.0), [8, 16], steps=3, n_jobs=n_jobs, backend=3,
                       restarts=0)


def test_a_registered_joblib_backend_is_accepted(monkeypatch) -> None:
    from joblib import parallel
    from joblib._parallel_backends import ThreadingBackend

    monkeypatch.setitem(parallel.BACKENDS, "my-threads", ThreadingBackend)  # as register_parallel_backend does
    ref = sweep([_family(2.0), _family(3.0)], 3, n_jobs=1, restarts=0)
    _same(ref, sweep([_family(2.0), _family(3.0)], 3, n_jobs=2, backend="my-threads", restarts=0))
    with pytest.raises(ValueError, match="'my-threads'"):  # listed among the choices
        sweep([np.ones(4)], 3, n_jobs=1, backend="foo", restarts=0)


@pytest.mark.parametrize(
    "spectra_arg,values,match",
    [
        (_family, [1, 1], r"values must be distinct: values\[0\] = 1 and values\[1\] = 1 "),
        (_family, [2, 2.0], r"values must be distinct: values\[0\] = 2 and values\[1\] = 2.0 "),
        (_family, [1.0, 2.0, 1.0 + 1e-12], r"values must be distinct: values\[0\] = 1.0 and values\[2\]"),
        (_family, [np.nan, 1.0], r"values must be finite \(got values\[0\] = nan\)"),
        (_family, [1.0, float("inf")], r"values must be finite \(got values\[1\] = inf\)"),
        (_family, [1.0, -np.inf], r"values must be finite \(got values\[1\] = -inf\)"),
        ([np.ones(4), np.ones(4)], ["a", "a"], r"values must be distinct: values\[0\] = 'a' and values\[1\] = 'a'"),
        ([np.ones(4), np.ones(4)], [0.5, np.nan], r"values must be finite \(got values\[1\] = nan\)"),
        ({1.0: np.ones(4), 1.0 + 1e-12: np.ones(4)}, None, r"spectra's keys \(its values\) must be distinct"),
        ({float("nan"): np.ones(4)}, None, r"spectra's keys \(its values\) must be finite \(got key nan\)"),
        ({np.float64("nan"): np.ones(4)}, None, r"must be finite \(got key nan\)"),  # a NumPy scalar printed plainly
        (_family, [np.float32(1.0), np.float64("inf")], r"values must be finite \(got values\[1\] = inf\)"),
        # audit 5 Dec: OverflowError from math.isfinite, and decimal's own message naming no argument
        ([np.ones(4), np.ones(4)], [10**400, 1], r"values must be finite numbers within the float64 range \(got "
                                                 r"values\[0\] = 1000"),
        ([np.ones(4)], [__import__("decimal").Decimal("sNaN")], r"values must be finite \(got values\[0\] = "
                                                                 r"Decimal\('sNaN'\)\)"),
    ],
)
def test_repeated_or_non_finite_values_are_refused(monkeypatch, spectra_arg, values, match) -> None:
    """result(1, K) of values=[1, 1] returned only the first; values=[nan, 1.0] was accepted and result(nan, K)
    then failed: both are refused before any work, naming values."""
    _no_work(monkeypatch)
    with pytest.raises(ValueError, match=match):
        sweep(spectra_arg, 3, values=values, n_jobs=1, restarts=0)


def test_distinct_values_of_mixed_kinds_are_kept() -> None:
    res = sweep([_family(2.0), _family(3.0), _family(2.0)], 2, values=["a", 1.0, 2], n_jobs=1, restarts=0)
    assert res.values == ["a", 1.0, 2]
    assert np.array_equal(res.result(2, 2).alpha_bar, res.result("a", 2).alpha_bar)  # the same spectrum


def test_the_multiprocessing_backend_runs_and_reports_progress() -> None:
    """Audit of the insight package (F3): backend="multiprocessing" was accepted and always failed (joblib's
    multiprocessing backend returns no generator); it now runs in batches with the serial result."""
    import joblib

    from symsched.insight import resolution_law, scene_power_law
    from symsched.insight.sweep import run_optimizations

    specs = [_family(a) for a in (1.5, 2.5, 3.5)]
    ref = sweep(specs, (2, 3), n_jobs=1, restarts=0)
    _same(ref, sweep(specs, (2, 3), n_jobs=2, backend="multiprocessing", restarts=0))
    with joblib.parallel_config(backend="multiprocessing"):
        _same(ref, sweep(specs, (2, 3), n_jobs=2, restarts=0))

    class Bar:
        n = 0

        def update(self, k: int) -> None:
            self.n += k

    bar = Bar()
    tasks = [(S, 3, {"restarts": 0}) for S in specs]
    out = run_optimizations(tasks, n_jobs=2, backend="multiprocessing", bar=bar)
    assert bar.n == len(tasks) and [r.value for r in out] == [ref.result(j, 3).value for j in range(3)]
    law = dict(steps=3, restarts=0, divergences=("w2",))
    a = resolution_law(lambda d: scene_power_law(d), [8, 16], n_jobs=1, **law)
    b = resolution_law(lambda d: scene_power_law(d), [8, 16], n_jobs=2, backend="multiprocessing", **law)
    assert np.array_equal(a.offset["w2"], b.offset["w2"])


def test_values_that_cannot_be_looked_up_are_refused(monkeypatch) -> None:
    """Audit of the insight package (F6): values=[array([1, 2]), array([3, 4])] were accepted, and result(array([1,
    2]), K) could never find them (== of two arrays has no single truth value); refused before any work."""
    _no_work(monkeypatch)
    with pytest.raises(ValueError, match=r"values must be labels equal to themselves.*values\[0\] = array\(\[1, 2\]\)"):
        sweep([np.ones(4), np.ones(4)], 3, values=[np.array([1, 2]), np.array([3, 4])], n_jobs=1, restarts=0)


def test_sweep_plot_arguments_are_named(serial) -> None:
    """Audit of the insight package (F6): plot(steps=3) ("'int' object is not iterable"), plot(steps=[]) ("Number of
    columns must be a positive integer") and plot(title=3) ("object of type 'int' has no len()") did not name the
    argument. steps takes one K, as sweep does."""
    from symsched.insight import fit_heuristics, intermediate_spectra, resolution_law, scene_power_law

    assert len(serial.plot(steps=3).axes) == 2  # one panel and its colour bar
    with pytest.raises(ValueError, match="^steps must not be empty"):
        serial.plot(steps=[])
    with pytest.raises(TypeError, match="^steps must be a positive integer or a sequence"):
        serial.plot(steps="3")
    with pytest.raises(ValueError, match=r"^steps: K=4 is not in the sweep's steps \[3, 5\]"):
        serial.plot(steps=[3, 4])
    opt = serial.result(2.0, 5)
    law = resolution_law(lambda d: scene_power_law(d), [8, 16], steps=3, restarts=0, n_jobs=1, divergences=("w2",))
    for obj in (serial, fit_heuristics(opt, _family(2.0)), law, intermediate_spectra(_family(2.0), opt.alpha_bar)):
        with pytest.raises(TypeError, match=r"^title must be a string or None \(got int: 3\)"):
            obj.plot(title=3)


@pytest.mark.parametrize("call", [
    lambda v: sweep(lambda a: spectra.power_law((8, 8), alpha=a), 3, values=v, n_jobs=1),
    lambda v: sweep([np.ones(4)], 3, values=v, n_jobs=1),
])
def test_values_are_read_to_max_entries_at_most(call) -> None:
    """Audit of 5 December: ``values=itertools.count(1)`` (or range(1, 10**9)) was listed whole: MemoryError."""
    from symsched._validate import MAX_ENTRIES
    from limit_helpers import Endless

    for bad in (Endless(lambda i: 1.0 + i, what="values"), range(1, 10**9)):
        with pytest.raises(ValueError, match=rf"^values must hold at most {MAX_ENTRIES} values \(symsched"):
            call(bad)


def test_spectra_are_capped_at_max_entries_and_values_must_not_be_a_mapping() -> None:
    """Audit of 5 December: each spectrum is a run, and 200 of them (list or mapping) were taken; a mapping for
    ``values`` silently labelled the spectra by its keys."""
    from symsched._validate import MAX_ENTRIES

    for bad in ([np.ones(4)] * (MAX_ENTRIES + 1), {i: np.ones(4) for i in range(MAX_ENTRIES + 1)}):
        with pytest.raises(ValueError, match=rf"^spectra must hold at most {MAX_ENTRIES} values \(symsched\."
                                             rf"_validate.MAX_ENTRIES; got {MAX_ENTRIES + 1} values\)"):
            sweep(bad, 3, n_jobs=1)
    with pytest.raises(TypeError, match=r"^values must be a sequence of labels, not a mapping"):
        sweep([np.ones(4)], 3, values={"a": 1}, n_jobs=1)
    assert len(sweep([np.ones(4)] * 2, 2, values=("a", "b"), n_jobs=1).values) == 2


def test_sweep_result_fit_heuristics_reads_families_once() -> None:
    """Audit of 5 December: SweepResult.fit_heuristics(families=itertools.repeat('cosine')) ran into MemoryError;
    the families are checked once for every schedule (an iterator would serve the first schedule only)."""
    from symsched._validate import MAX_ENTRIES
    from limit_helpers import Endless

    res = sweep([np.ones(4), 2 * np.ones(4)], 3, n_jobs=1)
    with pytest.raises(ValueError, match=rf"^families must hold at most {MAX_ENTRIES} values"):
        res.fit_heuristics(families=Endless("cosine", what="families"))
    fits = res.fit_heuristics(families=iter(["cosine", "karras"]))
    assert all(sorted(f.family for f in fit.fits) == ["cosine", "karras"] for fit in fits.fits.values())


def test_sampler_settings_pass_through_and_misspellings_are_named() -> None:
    """audit 5 Dec: every optimize_schedule argument passes through, the sampler's own settings too (lms ``order``,
    UniPC ``solver_type``...): sweep refused them as unexpected keywords and pointed to a literal ``settings=``.
    A name that is neither an optimize_schedule argument nor a setting of the sampler stays a TypeError."""
    got = sweep([_family(2.0)], 3, n_jobs=1, restarts=0, sampler="lms", order=2)
    direct = symsched.optimize_schedule(_family(2.0), 3, restarts=0, sampler="lms", order=2)
    assert np.array_equal(got.result(0, 3).alpha_bar, direct.alpha_bar)
    assert got.settings["order"] == 2 and got.result(0, 3).settings["order"] == 2
    other = symsched.optimize_schedule(_family(2.0), 3, restarts=0, sampler="lms", order=4)
    assert not np.array_equal(other.alpha_bar, direct.alpha_bar)  # the setting reached the optimiser
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'ordre'.*sampler 'lms'.*'order'"):
        sweep([_family(2.0)], 3, n_jobs=1, sampler="lms", ordre=2)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'settings'"):
        sweep([_family(2.0)], 3, n_jobs=1, sampler="lms", settings={"order": 2})
    with pytest.raises(ValueError, match="order"):  # a bad value of a real setting: checked before any work
        sweep([_family(2.0)], 3, n_jobs=1, sampler="lms", order=9)


def test_arrays_and_table_cells_are_each_results_own_numbers(serial) -> None:
    """mutation run 5 Dec: to_arrays()["w2"] holding the KL column, and the table's "last log-SNR" cell showing the
    level before the last, both passed (shape checks only)."""
    arr = serial.to_arrays()
    header, rows = serial._rows(levels=False)
    first, last = header.index("first log-SNR"), header.index("last log-SNR")
    for j, v in enumerate(serial.values):
        for k, K in enumerate(serial.steps):
            r = serial.result(v, K)
            for key in ("value", "kl", "w2"):
                assert arr[key][j, k] == getattr(r, key), (key, v, K)
            assert np.array_equal(arr["log_snr"][K][j], r.log_snr)
            assert np.array_equal(arr["alpha_bar"][K][j], r.alpha_bar)
            row = rows[j * len(serial.steps) + k]
            assert row[first] == f"{r.log_snr[0]:.2f}" and row[last] == f"{r.log_snr[-1]:.2f}", (v, K)
    assert arr["kl"].tolist() != arr["w2"].tolist()  # the two metrics differ here: a swap would show


# ---- audit of 6 December (insight): tables, labels, arrays, plots and argument checks of a sweep


def _cells(line: str) -> list[str]:
    """A Markdown table row's cells, split at unescaped pipes (as GitHub and symsched._html read them)."""
    import re

    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def test_pipes_in_labels_and_parameter_do_not_add_columns() -> None:
    """A label 'a|b' and a parameter 'p|q' gave rows with extra columns (the header was escaped in one table only)."""
    from symsched._html import tables

    res = sweep({"a|b": np.ones(3), "c": 2 * np.ones(3)}, 2, parameter="p|q", restarts=0, n_jobs=1)
    for md in (res.to_markdown(levels=False), res.to_markdown(), res.fit_heuristics().to_markdown()):
        lines = md.strip().splitlines()
        widths = {len(_cells(line)) for line in lines}
        assert widths == {len(_cells(lines[0]))}, md
        assert _cells(lines[0])[0] == r"p\|q" and _cells(lines[2])[0] == r"a\|b"
        assert "<td>a|b</td>" in tables(md) and "<th>p|q</th>" in tables(md)


def test_pipes_in_schedule_names_do_not_add_columns() -> None:
    """The same kind in the probe's tables: schedules named by the user."""
    from symsched import probe

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((64, 4, 4))
    comps = {name: probe.compare([rng.standard_normal((64, 4, 4)) for _ in range(2)], ref, metrics=("mmd2",))
             for name in ("mine|v2", "base")}
    md = probe.PairedComparison(comparisons=comps, baseline="base").to_markdown()
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert any(r"mine\|v2" in line for line in rows)
    for table in md.split("\n\n"):
        lines = [line for line in table.splitlines() if line.startswith("|")]
        assert len({len(_cells(line)) for line in lines}) <= 1, table


def test_distinct_values_get_distinct_labels() -> None:
    """2.0 and 2.0001 were both printed "2" (4 significant digits) in the sweep's and the fits' tables."""
    from symsched.insight.sweep import value_labels

    assert value_labels([2.0, 2.0001, 3]) == ["2", "2.0001", "3"]
    assert value_labels([0.1, 0.2]) == ["0.1", "0.2"]  # no more digits than needed
    assert value_labels([1, "1"]) == ["1", "'1'"]  # equal str of unequal values: by repr
    res = sweep(_family, 3, values=[2.0, 2.0001], restarts=0, n_jobs=1)
    for md in (res.to_markdown(levels=False), res.fit_heuristics().to_markdown()):
        assert [_cells(line)[0] for line in md.strip().splitlines()[2:]] == ["2", "2.0001"]


def test_array_values_have_one_entry_per_value() -> None:
    """Tuple labels of equal length made to_arrays()["values"] a 2-d array."""
    res = sweep({(1, 2): np.ones(3), (3, 4): 2 * np.ones(3)}, 2, restarts=0, n_jobs=1)
    vals = res.to_arrays()["values"]
    assert vals.shape == (2,) and vals[0] == (1, 2) and vals[1] == (3, 4)


def test_numpy_values_print_as_plain_numbers() -> None:
    """break-test of 7 December: a tuple label holding NumPy scalars was printed (tables, LaTeX, JSON) as
    "(1, np.int64(2))", and a 0-d array value went to JSON as the string "1.0"; np.longdouble failed json.dumps."""
    res = sweep({(1, np.int64(2)): np.ones(3), (np.float64(0.5), 3): 2 * np.ones(3)}, 2, restarts=0, n_jobs=1)
    md, tex = res.to_markdown(levels=False), res.to_latex()
    assert [_cells(line)[0] for line in md.strip().splitlines()[2:]] == ["(1, 2)", "(0.5, 3)"]
    assert "np." not in md + tex + json.dumps(res.to_dict())
    assert [r["parameter"] for r in res.to_dict()["results"]] == ["(1, 2)", "(0.5, 3)"]
    from symsched.insight.sweep import value_labels

    # 0-d arrays and float32 entries of a tuple get the numbers' 4 significant digits too ("1", not "1.0")
    assert value_labels([np.array(1.0), (np.float32(1.23456), np.array(2.0))]) == ["1", "(1.235, 2)"]
    res = sweep(lambda v: (1.0 + float(v)) * np.ones(3), 2, values=[np.array(1.0), np.longdouble(2.5)], restarts=0,
                n_jobs=1)
    doc = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert [r["parameter"] for r in doc["results"]] == [1.0, 2.5]
    assert res.to_arrays()["values"].dtype == np.float64 and res.result(np.array(1.0), 2) is res.results[(0, 2)]
    from symsched._io import json_ready

    assert json_ready([np.longdouble("1e4000"), np.longdouble(0.5), np.float32(2.0)]) == ["inf", 0.5, 2.0]


def test_plot_to_a_folder_is_a_value_error_naming_path(tmp_path) -> None:
    res = sweep([np.ones(3)], 2, restarts=0, n_jobs=1)
    with pytest.raises(ValueError, match=r"^path .* is a folder, not a file"):
        res.plot(path=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad, message", [
    (dict(weights=np.ones((4, 4))), "shape mismatch: weights"),  # right for the first spectrum only
    (dict(endpoints=(0.5, 0.4)), "endpoints must satisfy first < last"),
    (dict(steps=(3, 20000)), "steps"),
])
def test_every_task_is_checked_before_any_runs(monkeypatch, bad, message) -> None:
    """The docstring promised optimiser arguments "checked before any work"; weights of the wrong shape for the
    second spectrum were refused only after the first optimisation had run (in a worker, with joblib's traceback)."""
    import importlib

    sweep_mod = importlib.import_module("symsched.insight.sweep")  # (the package exports the function by that name)
    ran = []
    monkeypatch.setattr(sweep_mod, "_task", lambda S, K, kw: ran.append(K))
    kw = dict(bad)
    steps = kw.pop("steps", 3)
    with pytest.raises(ValueError, match=message):
        sweep([np.ones((4, 4)), np.ones((8, 8))], steps, restarts=0, n_jobs=1, **kw)
    assert ran == []
