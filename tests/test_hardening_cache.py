"""Issue 14: the on-disk kernel cache stores data, never runs code it did not generate, and refuses
directories and entries other users could have written (fallback: in-memory kernels, one warning)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from symsched._datacache import seal, unseal
from symsched.engine import codegen
from symsched.engine.codegen import KernelCacheWarning

ROOT = Path(__file__).resolve().parents[1]
KEY = "test:tiny"


def _build():
    import sympy as sp

    x = sp.Symbol("x", nonnegative=True)
    return [x], [sp.sqrt(x) + 1, x / 2]


def _kernel():
    return codegen.compile_kernel(KEY, _build)


def _entry(cache: Path) -> Path:
    return codegen._entry_path(cache / "kernels" / codegen.source_fingerprint(), KEY)


def _doc(data: bytes) -> dict:
    """The JSON of a sealed entry (raises if the seal is broken)."""
    body = unseal(data)
    assert body is not None, data[:80]
    return json.loads(body)


def _planted(offset: int) -> bytes:
    """A well-formed entry for KEY whose first output is sqrt(x) + offset (wrong unless offset == 1)."""
    import sympy as sp

    x = sp.Symbol("x", nonnegative=True)
    return codegen._entry_bytes(KEY, [x], [], [sp.sqrt(x) + offset, x / 2])


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(root))
    monkeypatch.delenv("SYMSCHED_DISK_CACHE", raising=False)
    codegen.clear_memory_cache()
    yield root
    codegen.clear_memory_cache()


def _fresh() -> list:
    codegen.clear_memory_cache()
    return _kernel()(np.array([4.0, 9.0]))


def _right(out) -> bool:
    return np.array_equal(out[0], [3.0, 4.0]) and np.array_equal(out[1], [2.0, 4.5])


def _cache_warnings() -> list[str]:
    """Build the test kernel afresh (asserting its values) and return the KernelCacheWarning messages it gave; the
    in-memory kernels are forgotten before and after."""
    import warnings

    codegen.clear_memory_cache()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert _right(_kernel()(np.array([4.0, 9.0])))
    finally:
        codegen.clear_memory_cache()
    return [str(w.message) for w in caught if issubclass(w.category, KernelCacheWarning)]


# ------------------------------------------------------------------------------------ layout


def test_directories_are_created_0700_and_entries_0600_even_with_umask_002(cache) -> None:
    old = os.umask(0o002)
    try:
        assert _right(_fresh())
    finally:
        os.umask(old)
    for d in (cache, cache / "kernels", cache / "kernels" / codegen.source_fingerprint()):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
    entry = _entry(cache)
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600
    doc = _doc(entry.read_bytes())  # data, not code
    assert doc["key"] == KEY and doc["symsched_kernel"] == codegen._FORMAT and "def " not in entry.read_text()


def test_a_trusted_entry_is_loaded_so_the_refusal_tests_can_fail(cache) -> None:
    _fresh()
    _entry(cache).write_bytes(_planted(41))
    os.chmod(_entry(cache), 0o600)
    out = _fresh()
    assert np.array_equal(out[0], [43.0, 44.0])  # the planted (owned, private) entry was used


# ------------------------------------------------------------------------------------ foreign entries


def test_foreign_owned_entry_is_not_executed_nor_loaded(cache, tmp_path) -> None:
    _fresh()
    entry = _entry(cache)
    marker = tmp_path / "pwned"
    entry.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    os.chown(entry, 12345, 12345)
    with pytest.warns(KernelCacheWarning, match="owned by uid 12345"):
        assert _right(_fresh())
    assert not marker.exists()
    # a well-formed but wrong entry owned by someone else is not used either
    entry.write_bytes(_planted(41))
    os.chown(entry, 12345, 12345)
    with pytest.warns(KernelCacheWarning, match="owned by uid 12345"):
        assert _right(_fresh())
    assert os.stat(entry).st_uid == os.geteuid()  # replaced by our own entry
    assert _doc(entry.read_bytes())["key"] == KEY


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_group_or_other_writable_entry_is_not_loaded(cache, mode) -> None:
    _fresh()
    entry = _entry(cache)
    entry.write_bytes(_planted(41))
    os.chmod(entry, mode)
    with pytest.warns(KernelCacheWarning, match="writable by group or others"):
        assert _right(_fresh())
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600


def test_entries_with_code_or_injection_attempts_never_run(cache, tmp_path) -> None:
    """Entries the cache would accept from its owner (sealed) still cannot smuggle code: every node is whitelisted."""
    _fresh()
    entry = _entry(cache)
    marker = tmp_path / "pwned"
    doc = _doc(_planted(1))
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"
    attacks = [
        # python source (the old cache format)
        f"# symsched kernel {KEY}\nimport pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n",
        # a code string as the name of an assignment target (printed verbatim by lambdify)
        {**doc, "nodes": doc["nodes"] + [["S", payload, {}]], "cse": [[len(doc["nodes"]), 0]]},
        # a function outside the whitelist
        {**doc, "nodes": doc["nodes"] + [["eval", 0]], "exprs": [len(doc["nodes"])]},
        {**doc, "nodes": doc["nodes"] + [["Function", payload]]},
        # a free symbol that is neither an argument nor assigned (would be looked up as a global)
        {**doc, "nodes": doc["nodes"] + [["S", "__import__", {}]], "exprs": [len(doc["nodes"])]},
        # malformed numbers and indices
        {**doc, "nodes": doc["nodes"] + [["I", payload]]},
        {**doc, "nodes": doc["nodes"] + [["F", 0, "4", 0, 3, 53]]},  # not normalised (4 = 1 * 2**2)
        {**doc, "exprs": [10**6]},
        {**doc, "key": "step:ddim::0"},
        {**doc, "fingerprint": "0" * 20},
    ]
    for attack in attacks:
        text = attack if isinstance(attack, str) else json.dumps(attack)
        entry.write_bytes(seal(text.encode()))
        os.chmod(entry, 0o600)
        fn = _fresh()
        assert _right(fn), text[:80]
        assert not marker.exists()
        # either rebuilt, or harmless data: names in an entry are never printed into code
        import inspect

        assert "__import__" not in inspect.getsource(codegen._MEMORY[KEY])


@pytest.mark.parametrize("sealed", [False, True])  # sealed: past the seal, to the JSON and format checks (review)
@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage", b"{", b"[1, 2, 3]", b'{"symsched_kernel": 2}',
                                     b"\x00" * 1000, b"[" * 100000])
def test_corrupt_entries_are_rebuilt_silently(cache, content, sealed, recwarn) -> None:
    _fresh()
    entry = _entry(cache)
    entry.write_bytes(seal(content) if sealed else content)
    os.chmod(entry, 0o600)
    assert _right(_fresh())
    assert _doc(entry.read_bytes())["key"] == KEY
    assert not [w for w in recwarn if issubclass(w.category, KernelCacheWarning)]


def test_oversized_entry_is_refused(cache, monkeypatch) -> None:
    _fresh()
    monkeypatch.setattr(codegen, "MAX_ENTRY_BYTES", 100)
    with pytest.warns(KernelCacheWarning, match="larger than 100 bytes"):
        assert _right(_fresh())


def test_symlink_to_dev_zero_is_not_followed(cache) -> None:
    _fresh()
    entry = _entry(cache)
    entry.unlink()
    entry.symlink_to("/dev/zero")
    with pytest.warns(KernelCacheWarning, match="cannot be opened"):
        assert _right(_fresh())
    assert entry.is_file() and not entry.is_symlink()
    assert Path("/dev/zero").is_char_device()


def test_fifo_entry_does_not_block(cache) -> None:
    """Run in a subprocess with a timeout: a blocking open of a FIFO would hang forever."""
    _fresh()
    entry = _entry(cache)
    entry.unlink()
    os.mkfifo(entry, 0o600)
    code = textwrap.dedent(f"""
        import warnings, numpy as np
        import sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_hardening_cache import _fresh, _right
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            ok = _right(_fresh())
        print(ok, any("not a regular file" in str(x.message) for x in w))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "SYMSCHED_CACHE_DIR": str(cache)})
    assert out.stdout.split() == ["True", "True"], out.stderr
    assert entry.is_file()


# ------------------------------------------------------------------------------------ unsafe directories


def test_foreign_owned_directory_is_bypassed(cache) -> None:
    kernels = cache / "kernels" / codegen.source_fingerprint()
    kernels.mkdir(parents=True, mode=0o700)
    os.chmod(cache, 0o700)
    os.chown(kernels, 12345, 12345)
    (kernels / _entry(cache).name).write_bytes(_planted(41))
    with pytest.warns(KernelCacheWarning, match="owned by uid 12345"):
        assert _right(_fresh())
    assert _doc(_entry(cache).read_bytes())["exprs"] == _doc(_planted(41))["exprs"]  # untouched


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_group_or_other_writable_directory_is_bypassed(cache, mode) -> None:
    cache.mkdir(mode=0o700)
    os.chmod(cache, mode)
    with pytest.warns(KernelCacheWarning, match="writable by group or others"):
        assert _right(_fresh())
    assert not (cache / "kernels").exists()


def test_writable_ancestor_without_sticky_bit_is_bypassed(tmp_path, monkeypatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(shared / "cache"))
    with pytest.warns(KernelCacheWarning, match="without the sticky bit"):
        assert _right(_fresh())
    os.chmod(shared, 0o1777)  # like /tmp: fine
    codegen.clear_memory_cache()
    assert _right(_fresh())
    assert (shared / "cache" / "kernels").is_dir()
    codegen.clear_memory_cache()


def test_unsearchable_directory_is_bypassed_with_one_warning(cache, recwarn) -> None:
    _fresh()
    os.chmod(cache, 0o000)
    try:
        codegen.clear_memory_cache()
        assert _right(_kernel()(np.array([4.0, 9.0])))
        codegen._MEMORY.pop(KEY)
        assert _right(_kernel()(np.array([4.0, 9.0])))  # a second kernel build: no second warning
        warned = [w for w in recwarn if issubclass(w.category, KernelCacheWarning)]
        assert len(warned) == 1 and "not readable, writable and searchable" in str(warned[0].message)
    finally:
        os.chmod(cache, 0o700)


def _unprivileged(code: str, env: dict) -> subprocess.CompletedProcess:
    """Run ``code`` as root without the capabilities that bypass file permissions (or as is, if not root)."""
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot drop CAP_DAC_OVERRIDE")
        cmd = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_mode_000_directory_without_privileges(cache) -> None:
    """As a user whom permission bits bind: a mode-000 cache is bypassed, never a PermissionError."""
    _fresh()
    os.chmod(cache, 0o000)
    try:
        code = ("import warnings, numpy as np, symsched\nwarnings.simplefilter('always')\n"
                "P = symsched.output_spectrum([0.5, 2.0], [0.2, 0.7])\nprint(np.all(np.isfinite(P)))")
        out = _unprivileged(code, {"SYMSCHED_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)})
    finally:
        os.chmod(cache, 0o700)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr
    assert "KernelCacheWarning" in out.stderr


def test_disabled_disk_cache_touches_nothing(cache, monkeypatch) -> None:
    monkeypatch.setenv("SYMSCHED_DISK_CACHE", "0")
    assert _right(_fresh())
    assert not cache.exists()


# ------------------------------------------------------------------------------------ what the cache saves


def _engine_kernels():
    from symsched.engine import divergence, kernels

    out = []
    cases = [("ddim", (), "step"), ("ddpm", (("variance", "posterior"),), "step"),
             ("ddpm", (("variance", "beta"),), "final"), ("euler", (), "step"), ("heun", (), "step"),
             ("dpmpp_2m", (), "second")]
    for name, opts, kind in cases:
        slots = len(kernels.step_kernels(name, opts, kind, ("",) * (3 if kind == "second" else 2)).slots)
        for grad in (False, True):
            for part in ("level", "mode_s", "mode_t"):
                out.append(lambda n=name, o=opts, k=kind, g=grad, p=part, m=("",) * slots:
                           getattr(kernels._step_kernels(n, o, k, m, g), p))
    out += [lambda p=p, i=i: kernels.init_kernel(p, i) for p in ("vp", "ve", "flow") for i in ("white", "exact")]
    out += [lambda c=c: kernels.levels_kernel(c) for c in ("alpha_bar", "sigma", "t", "log_snr")]
    out += [lambda d=d: divergence.divergence_kernel(d) for d in ("kl", "kl-reverse", "w2")]
    out += [divergence.w2_amplitude_kernel]
    return out


@pytest.mark.slow
def test_every_engine_kernel_reloads_identically_without_sympy_simplification(cache, monkeypatch) -> None:
    import inspect
    import re

    import sympy

    kernels_mod = __import__("symsched.engine.kernels", fromlist=["_"])
    codegen.clear_memory_cache()  # kernels compiled by earlier tests live in memory, not in this cache
    kernels_mod._step_kernels.cache_clear()
    cold = {}
    for make in _engine_kernels():
        fn = make()
        cold[make] = re.sub(r"_Dummy_\d+", "_D", inspect.getsource(fn))
    codegen.clear_memory_cache()

    def forbidden(*a, **k):
        raise AssertionError("a warm cache must not run SymPy's simplification or the CSE")

    monkeypatch.setattr(codegen, "_reduce", forbidden)
    monkeypatch.setattr(sympy, "simplify", forbidden)
    monkeypatch.setattr(sympy, "cse", forbidden)
    kernels_mod._step_kernels.cache_clear()
    for make, src in cold.items():
        assert re.sub(r"_Dummy_\d+", "_D", inspect.getsource(make())) == src


def test_unstorable_expression_stays_in_memory(cache) -> None:
    import sympy as sp

    x = sp.Symbol("x")
    fn = codegen.compile_kernel("test:unstorable", lambda: ([x], [sp.gamma(x)]))
    assert fn(5.0)[0] == pytest.approx(24.0)
    assert not codegen._entry_path(cache / "kernels" / codegen.source_fingerprint(), "test:unstorable").exists()


def test_whitelist_round_trips_every_listed_function(cache) -> None:
    """Each whitelisted node type is stored and printed (SymPy-free) to code that computes the same
    values as SymPy's own lambdify of the original expressions."""
    import sympy as sp
    from sympy.codegen import cfunctions as cf

    x, y = sp.symbols("x y", positive=True)
    z = sp.Symbol("z", real=True)
    exprs = [
        sp.exp(x) + sp.log(y) * sp.sin(z) - sp.cos(x) / sp.tan(y) + sp.cot(x) + sp.asin(z) + sp.acos(z),
        sp.atan(x) + sp.acot(y) + sp.atan2(y, x) + sp.sinh(z) * sp.cosh(z) + sp.tanh(x) + sp.asinh(z),
        sp.acosh(x + 1) + sp.atanh(z / 2) + sp.Abs(z) + sp.sign(z) + sp.Min(x, y) + sp.Max(x, y, z),
        sp.floor(z) + sp.ceiling(z) + sp.Heaviside(z) + sp.erf(x) + sp.erfc(y) + sp.sqrt(x) + x ** sp.Rational(-3, 2),
        cf.expm1(x) + cf.log1p(y) + cf.exp2(z) + cf.log2(x) + cf.log10(y) + cf.hypot(x, y) + cf.Sqrt(x) + cf.Cbrt(y),
        sp.Piecewise((x, sp.And(z < 1, z >= 0)), (y, sp.Or(sp.Eq(z, 2), sp.Ne(x, y))), (sp.oo, sp.Not(z > 5)),
                     (sp.pi + sp.E, True)),
        sp.Float("0.1") * x + sp.Float("1e-300") - sp.Float(2.5, 30) * sp.Integer(10) ** 400 + sp.nan * 0 + x * sp.zoo,
    ]
    nodes, table = codegen._encode([x, y, z], [], exprs)
    from symsched.engine.printer import compile_source, print_table

    src = print_table(json.loads(json.dumps(nodes)), table["args"], table["cse"], table["exprs"], "f")
    fn = compile_source(src, "f", "<round-trip>")
    def check(point, which):
        with np.errstate(invalid="ignore", divide="ignore"):  # |z| > 1 leaves arcsin/arctanh's domain: NaN, unchecked
            got = fn(*point)
        for k in which:  # SymPy's own value at 30 digits is the reference
            w = complex(sp.expand_func(exprs[k]).subs(dict(zip((x, y, z), point))).evalf(30))
            assert w.imag == 0 and got[k] == pytest.approx(w.real, rel=1e-13), (point, exprs[k], src)
        assert np.isnan(got[-1])  # nan * 0 + x * zoo is undefined

    for point in [(0.3, 1.7, 0.4), (2.0, 0.5, -0.9), (0.7, 0.9, 0.2)]:  # |z| < 1: real arcsin, arctanh
        check(point, range(6))
    for point in [(0.7, 0.7, 2.0), (1.1, 3.0, 6.0), (1.1, 3.0, 5.0)]:  # every branch of the Piecewise
        check(point, [5])


# ------------------------------------------------------------------------------------ concurrency


@pytest.mark.slow
def test_concurrent_cold_cache_processes_agree(tmp_path) -> None:
    code = textwrap.dedent("""
        import numpy as np, symsched
        S = np.geomspace(1e-6, 1e3, 50)
        P = symsched.output_spectrum(S, [0.01, 0.2, 0.6, 0.95], sampler="ddpm")
        J, g = symsched.divergence_and_grad(S, [0.01, 0.2, 0.6, 0.95], divergence="w2")
        print(P.tobytes().hex() + np.asarray(g).tobytes().hex())
    """)
    env = {**os.environ, "SYMSCHED_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    results = {o[0].strip() for o in outs} | {warm.stdout.strip()}
    assert len(results) == 1
    entries = list((tmp_path / "cache").rglob("*"))
    assert all(not e.name.startswith(".tmp") for e in entries)  # no temporary left behind
    for e in entries:
        if e.is_file():
            _doc(e.read_bytes())


# ------------------------------------------------------------------------------------ sealed entries


def test_an_entry_changed_after_it_was_written_is_rebuilt(cache, recwarn) -> None:
    """break-test: a flipped digit gave silently wrong spectra, a dropped output "not enough values to unpack",
    an infinite metadata value "cannot convert float infinity to integer". Every entry is sealed by the SHA-256 of
    its bytes: any change is detected and the entry rebuilt."""
    _fresh()
    entry = _entry(cache)
    good = entry.read_bytes()
    head, body = good.split(b"\n", 1)
    doc = json.loads(body)
    edits = [body.replace(b'["Q","1","2"]', b'["Q","1","3"]', 1),  # x/2 -> x/3: a digit
             json.dumps({**doc, "exprs": doc["exprs"][:1]}).encode(),  # a dropped output
             body[:-10]]  # truncated
    assert edits[0] != body
    for edited in edits:
        entry.write_bytes(head + b"\n" + edited)
        os.chmod(entry, 0o600)
        assert _right(_fresh())
        assert entry.read_bytes() == good  # rebuilt, the same bytes
    assert not [w for w in recwarn if issubclass(w.category, KernelCacheWarning)]


def test_the_seal_check_rejects_an_edit_that_the_parser_would_accept(cache) -> None:
    """Companion: the digit edit above, resealed, is a well-formed entry that is loaded and gives a wrong
    kernel (x/3): only the seal tells the edited entry from the one this process wrote."""
    _fresh()
    entry = _entry(cache)
    body = entry.read_bytes().split(b"\n", 1)[1]
    entry.write_bytes(seal(body.replace(b'["Q","1","2"]', b'["Q","1","3"]', 1)))
    os.chmod(entry, 0o600)
    assert np.allclose(_fresh()[1], [4 / 3, 3.0])


def test_huge_exponents_are_refused_before_anything_runs() -> None:
    """break-test: an entry computing 3 ** 9007199254740991 ran for ever; exponents beyond MAX_EXPONENT are
    refused when the entry is printed (the derivations use at most 6)."""
    from symsched.engine.printer import MAX_EXPONENT, BadEntry, print_table

    nodes = [["S", "x", {}], ["I", "3"], ["I", "9007199254740991"], ["Pow", 1, 2], ["I", "-9007199254740991"],
             ["Pow", 0, 4], ["Mul", 0, 5], ["I", str(MAX_EXPONENT)], ["Pow", 1, 7]]
    for out in (3, 6):
        with pytest.raises(BadEntry, match="exponent"):
            print_table(nodes, [0], [], [out], "f")
    assert f"(3.0) ** {MAX_EXPONENT}" in print_table(nodes, [0], [], [8], "f")  # the bound itself is allowed


def test_unsafe_entries_give_one_warning_that_says_they_are_replaced(cache) -> None:
    """break-test: 20 warnings for 20 group-writable entries, each saying "built in memory instead" although the
    rebuilt kernels were written back. One warning per process, and the entries are private again."""
    import warnings

    import sympy as sp

    def other():
        x = sp.Symbol("x", nonnegative=True)
        return [x], [x + 3]

    _fresh()
    codegen.compile_kernel("test:other", other)
    entries = sorted((cache / "kernels" / codegen.source_fingerprint()).glob("*.json"))
    assert len(entries) == 2
    for e in entries:
        os.chmod(e, 0o620)
    codegen.clear_memory_cache()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _right(_kernel()(np.array([4.0, 9.0])))
        assert codegen.compile_kernel("test:other", other)(np.array([1.0]))[0] == 4.0
    msgs = [str(w.message) for w in caught if issubclass(w.category, KernelCacheWarning)]
    assert len(msgs) == 1 and "rebuilt and replaced" in msgs[0] and "in memory" not in msgs[0], msgs
    assert all(stat.S_IMODE(os.stat(e).st_mode) == 0o600 for e in entries)


# ------------------------------------------------------------------------------------ where the cache lives


@pytest.mark.parametrize("env, want", [
    ({"SYMSCHED_CACHE_DIR": "~/sym"}, "HOME/sym"),
    ({"SYMSCHED_CACHE_DIR": "rel/sym"}, "CWD/rel/sym"),
    ({"XDG_CACHE_HOME": "relative"}, "HOME/.cache/symsched"),  # a relative XDG value is ignored (XDG spec)
    ({"XDG_CACHE_HOME": "ABS"}, "ABS/symsched"),
    ({}, "HOME/.cache/symsched"),
])
def test_the_cache_root_is_absolute_and_follows_the_xdg_rules(tmp_path, monkeypatch, env, want) -> None:
    """break-test: XDG_CACHE_HOME=relcache created ./relcache/symsched in the working directory, and
    SYMSCHED_CACHE_DIR='~/symcache' a literal ./~/symcache."""
    from symsched._datacache import cache_root

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for var in ("SYMSCHED_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    for var, value in env.items():
        monkeypatch.setenv(var, str(tmp_path / "abs") if value == "ABS" else value)
    expect = want.replace("HOME", str(home)).replace("CWD", str(cwd)).replace("ABS", str(tmp_path / "abs"))
    assert cache_root() == Path(expect)


@pytest.mark.parametrize("home", ["", "relative/home", None])
def test_without_a_home_directory_kernels_are_built_in_memory_with_one_warning(tmp_path, monkeypatch, home) -> None:
    """break-test: HOME unset for a uid without a password entry raised RuntimeError from Path.home() in every
    command ("internal error"), and HOME= (empty) made Python read "/" (root wrote /.cache/symsched)."""
    import pwd

    for var in ("SYMSCHED_CACHE_DIR", "XDG_CACHE_HOME", "SYMSCHED_DISK_CACHE"):
        monkeypatch.delenv(var, raising=False)
    if home is None:
        monkeypatch.delenv("HOME", raising=False)

        def no_entry(uid):
            raise KeyError(f"getpwuid(): uid not found: {uid}")

        monkeypatch.setattr(pwd, "getpwuid", no_entry)
    else:
        monkeypatch.setenv("HOME", home)
    monkeypatch.chdir(tmp_path)
    msgs = _cache_warnings()
    assert len(msgs) == 1 and "no cache location" in msgs[0] and "in memory" in msgs[0], msgs
    assert not any(tmp_path.iterdir())  # nothing written in the working directory


def test_computed_exponents_and_far_float_exponents_cannot_stall_the_printer_or_the_kernel() -> None:
    """break-test: a sealed entry whose exponent was Mul(2**52, 2**52) (each factor within the literal-exponent
    bound) ran 3 ** 2**104 on Python integers for ever; 200,000 float nodes with binary exponent -2**20 took
    5.8 ms each to print (a 2**(2**20) Fraction). A computed exponent is a float, and far exponents round at once."""
    from fractions import Fraction

    from symsched.engine import printer
    from symsched.engine.printer import _float_literal, compile_source, print_table

    nodes = [["S", "x", {}], ["I", "3"], ["I", "4503599627370496"], ["Mul", 2, 2], ["Pow", 1, 3],
             ["Add", 0, 4]]
    src = print_table(nodes, [0], [], [5], "f")
    assert "** np.multiply(1.0, " in src
    fn = compile_source(src, "f", "<test>")
    with np.errstate(over="ignore"):
        assert np.isinf(fn(np.array([1.0]))[0]).all()  # 3.0 ** 2.03e31: inf at once

    class SmallPowers(Fraction):  # refuses the million-bit powers that made printing slow
        def __pow__(self, k):
            assert abs(k) <= 4096, f"2 ** {k} built"
            return Fraction(self) ** k

    monkey = pytest.MonkeyPatch()
    monkey.setattr(printer, "Fraction", SmallPowers)
    try:
        got = [_float_literal(s, m, e) for s, m, e in [(0, "3", -(1 << 20)), (1, "3", 1 << 20), (0, "0", 1 << 20)]]
    finally:
        monkey.undo()
    assert got == ["0.0", "(-np.inf)", "0.0"]
    for sign, man, exp, want in [(0, "1", -1074, 5e-324), (0, "1", -1075, 0.0), (0, "3", -1075, 1e-323),
                                 (0, str(2**53 - 1), 971, 1.7976931348623157e308), (0, "1", 1023, 2.0**1023)]:
        assert float(_float_literal(sign, man, exp)) == want  # the edges of the range, rounded once (exactly)
    assert _float_literal(0, str(2**53 - 1) + "1", 971) == "np.inf"


def test_integer_nodes_are_floats_so_no_chain_of_them_runs_for_ever() -> None:
    """review: literals below 2^53 were Python ints, so forty Pow(t, 2) nodes from 3 (t * t each) built 3 ** 2 ** 40 in
    Python integers and never ended; a negative literal base printed as -2 ** x read -(2 ** x)."""
    from symsched.engine.printer import compile_source, print_table

    nodes = [["S", "x", {}], ["I", "3"], ["I", "2"]]
    prev = 1
    for _ in range(40):
        nodes.append(["Pow", prev, 2])
        prev = len(nodes) - 1
    nodes.append(["Add", 0, prev])
    fn = compile_source(print_table(nodes, [0], [], [len(nodes) - 1], "f"), "f", "<test>")
    assert np.isinf(fn(np.array([1.0]))[0]).all()  # 3.0 squared 40 times: inf, at once
    nodes = [["S", "x", {}], ["I", "-2"], ["Pow", 1, 0]]
    fn = compile_source(print_table(nodes, [0], [], [2], "f"), "f", "<test>")
    assert fn(np.array([2.0, 3.0]))[0].tolist() == [4.0, -8.0]  # (-2) ** x
    nodes = [["S", "x", {}], ["I", "-2"], ["I", "-4"], ["Pow", 1, 2], ["Mul", 0, 3]]
    fn = compile_source(print_table(nodes, [0], [], [4], "f"), "f", "<test>")
    assert fn(np.array([16.0]))[0].tolist() == [1.0]  # x / (-2) ** 4


def test_an_entry_of_another_style_is_rebuilt_not_called(cache) -> None:
    """break-test: an entry stored with style "inplace" under a "table" kernel's key was loaded and then failed on
    every call ("takes 7 positional arguments but 8 were given") until the cache was cleared."""
    codegen.compile_kernel("test:inplace", _build, style="inplace")  # a valid entry of the other style ...
    other = codegen._entry_path(cache / "kernels" / codegen.source_fingerprint(), "test:inplace")
    doc = _doc(other.read_bytes())
    assert doc["style"] == "inplace"
    doc["key"] = KEY  # ... planted under the table kernel's key
    entry = _entry(cache)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(seal(json.dumps(doc, separators=(",", ":")).encode()))
    os.chmod(entry, 0o600)
    assert _right(_fresh())
    assert _doc(entry.read_bytes())["style"] == "table"  # rebuilt and replaced


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to lchown")
def test_a_symlink_planted_by_another_user_is_not_followed(tmp_path, monkeypatch) -> None:
    """break-test: os.path.realpath resolved a link planted by another user in a sticky directory (as /tmp), which
    the kernel's fs.protected_symlinks would refuse, and the cache went wherever it pointed (a private directory of
    the victim). Links owned by the user or root are still followed."""
    sticky = tmp_path / "shared"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    victim = tmp_path / "private"
    victim.mkdir(mode=0o700)
    planted = sticky / "cache"
    planted.symlink_to(victim)
    os.lchown(planted, 12345, 12345)
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(planted))
    monkeypatch.delenv("SYMSCHED_DISK_CACHE", raising=False)
    msgs = _cache_warnings()
    assert len(msgs) == 1 and "is a symlink owned by another user (uid 12345)" in msgs[0], msgs
    assert not any(victim.iterdir())  # nothing written where the link points
    os.lchown(planted, os.geteuid(), os.getegid())  # the user's own link: followed as before
    assert _cache_warnings() == []
    assert any(victim.rglob("*.json"))


@pytest.mark.parametrize("env", [{"SYMSCHED_CACHE_DIR": "~/sym", "HOME": ""},
                                 {"SYMSCHED_CACHE_DIR": "~/sym", "HOME": "relative"},
                                 {"SYMSCHED_CACHE_DIR": "~no_such_user_xyz/sym"}])
def test_a_home_relative_cache_dir_without_a_usable_home_has_no_location(monkeypatch, env) -> None:
    """review: '~/x' with HOME= (empty) gave /x, and with HOME=rel the working directory's rel/x: the very homes the
    default location refuses."""
    from symsched._datacache import NoCacheLocation, cache_root

    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(NoCacheLocation):
        cache_root()


def test_a_relative_cache_dir_in_a_deleted_working_directory_builds_in_memory(tmp_path, monkeypatch) -> None:
    """review: os.path.abspath raised FileNotFoundError from getcwd, which nothing caught: every kernel compile
    crashed. It is now one warning and kernels in memory."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", "relative/cache")
    monkeypatch.delenv("SYMSCHED_DISK_CACHE", raising=False)
    msgs = _cache_warnings()
    assert len(msgs) == 1 and "working directory cannot be read" in msgs[0], msgs
