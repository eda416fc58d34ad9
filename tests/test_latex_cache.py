"""The on-disk cache of the rendered LaTeX (symsched._latex_cache): hits, misses, and what it refuses.

The renderer is replaced by a cheap fake here (the real one takes seconds and is exercised by
tests/test_latex.py through `symsched latex`); the entries are data, so a fake renders the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cache_helpers import entry_doc, write_sealed
from symsched import _latex_cache as lc

FAKE = {"ddim.tex": "% fake\n\\section{DDIM}\n$g = 1$\n", "symsched.tex": "\\input{ddim}\n"}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache-root"
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(root))
    monkeypatch.delenv("SYMSCHED_DISK_CACHE", raising=False)
    lc._WARNED.clear()
    return root


class Renderer:
    def __init__(self, files: dict[str, str] = FAKE) -> None:
        self.files, self.calls = files, 0

    def __call__(self) -> dict[str, str]:
        self.calls += 1
        return dict(self.files)


def _entry(root: Path, key: str = "k") -> Path:
    return root / "latex" / lc.fingerprint() / f"{key}.json"


def test_miss_renders_and_stores_then_hit_reads_without_rendering(cache: Path) -> None:
    r = Renderer()
    assert lc.cached("k", r) == FAKE and r.calls == 1
    entry = _entry(cache)
    assert entry.is_file() and stat.S_IMODE(entry.stat().st_mode) == 0o600
    for d in (cache, cache / "latex", entry.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    doc = entry_doc(entry)
    assert doc["files"] == FAKE and doc["fingerprint"] == lc.fingerprint() and doc["sampler"] == "k"
    again = Renderer({"other.tex": "x"})
    assert lc.cached("k", again) == FAKE and again.calls == 0


def test_a_hit_does_not_import_sympy(cache: Path) -> None:
    lc.cached("all", Renderer())
    code = ("import sys, json; from symsched._latex_cache import render_all; "
            "files = render_all(); print(json.dumps([sorted(files), 'sympy' in sys.modules]))")
    env = dict(os.environ, SYMSCHED_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert json.loads(out.stdout) == [sorted(FAKE), False]


@pytest.mark.parametrize("damage", ["not json", "wrong fingerprint", "wrong key", "bad name", "not text",
                                    "empty files", "truncated"])
def test_corrupt_or_stale_entries_are_rendered_again_and_replaced(cache: Path, damage: str) -> None:
    lc.cached("k", Renderer())
    entry = _entry(cache)
    doc = entry_doc(entry)
    if damage == "not json":
        text = "{not json"
    elif damage == "truncated":
        text = json.dumps(doc)[:20]
    else:
        if damage == "wrong fingerprint":
            doc["fingerprint"] = "0" * 20
        elif damage == "wrong key":
            doc["sampler"] = "other"
        elif damage == "bad name":
            doc["files"] = {"../../evil.py": "import os"}
        elif damage == "not text":
            doc["files"] = {"ddim.tex": 42}
        else:
            doc["files"] = {}
        text = json.dumps(doc)
    write_sealed(entry, text)  # (sealed: the checks behind the seal are tested)
    r = Renderer()
    assert lc.cached("k", r) == FAKE and r.calls == 1
    assert entry_doc(entry)["files"] == FAKE  # repaired


def test_group_writable_or_symlinked_entries_are_not_read(cache: Path, tmp_path: Path) -> None:
    lc.cached("k", Renderer())
    entry = _entry(cache)
    evil = entry_doc(entry)
    evil["files"] = {"ddim.tex": "planted"}
    write_sealed(entry, json.dumps(evil))
    os.chmod(entry, 0o620)
    r = Renderer()
    with pytest.warns(lc.LatexCacheWarning, match="is writable by group or others; it was not read"):
        assert lc.cached("k", r) == FAKE and r.calls == 1  # the planted text is never returned
    outside = tmp_path / "planted.json"
    write_sealed(outside, json.dumps(evil))
    os.chmod(outside, 0o600)
    entry.unlink()
    entry.symlink_to(outside)
    r = Renderer()
    with pytest.warns(lc.LatexCacheWarning, match="cannot be opened .*symlink"):
        assert lc.cached("k", r) == FAKE and r.calls == 1
    assert not entry.is_symlink() and entry_doc(entry)["files"] == FAKE


def test_an_unsafe_directory_disables_the_cache_with_one_warning(cache: Path) -> None:
    cache.mkdir(mode=0o700)
    os.chmod(cache, 0o777)  # writable by anyone, no sticky bit
    r = Renderer()
    with pytest.warns(lc.LatexCacheWarning, match="writable by group or others"):
        assert lc.cached("k", r) == FAKE
    assert r.calls == 1 and not (cache / "latex").exists()  # nothing written there
    assert lc.cached("k", r) == FAKE and r.calls == 2  # still rendering (and warned once only)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_an_entry_owned_by_another_user_is_not_read(cache: Path) -> None:
    lc.cached("k", Renderer())
    entry = _entry(cache)
    planted = entry_doc(entry)
    planted["files"] = {"ddim.tex": "planted"}
    write_sealed(entry, json.dumps(planted))
    os.chown(entry, 12345, 12345)
    r = Renderer()
    with pytest.warns(lc.LatexCacheWarning, match="is owned by uid 12345, not by the current user"):
        assert lc.cached("k", r) == FAKE and r.calls == 1


def test_disabled_cache_writes_nothing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSCHED_DISK_CACHE", "0")
    assert lc.cache_dir() is None
    r = Renderer()
    assert lc.cached("k", r) == FAKE and lc.cached("k", r) == FAKE and r.calls == 2
    assert not cache.exists()


def test_keys_outside_the_safe_alphabet_are_not_cached(cache: Path) -> None:
    r = Renderer()
    assert lc.cached("../x", r) == FAKE and lc.cached("../x", r) == FAKE and r.calls == 2
    assert not (cache / "latex").exists()


def test_unknown_sampler_is_a_value_error(cache: Path) -> None:
    with pytest.raises(ValueError, match="sampler must be one of"):
        lc.render_all("plms")
    assert not any(cache.rglob("*.json"))


def test_fingerprint_tracks_the_derivation_sources_and_sympy(tmp_path: Path, monkeypatch) -> None:
    pkg = Path(lc.__file__).resolve().parent
    copy = tmp_path / "pkg" / "symsched"
    shutil.copytree(pkg, copy, ignore=shutil.ignore_patterns("__pycache__"))
    code = "from symsched._latex_cache import fingerprint; print(fingerprint())"

    def fp() -> str:
        env = dict(os.environ, PYTHONPATH=str(copy.parent))
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env=env, cwd=tmp_path).stdout.strip()

    same = fp()
    assert same == lc.fingerprint()
    target = copy / "symbolic" / "samplers" / "ddim.py"
    target.write_text(target.read_text() + "\n# edited\n")
    assert fp() != same
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0-other")
    assert lc.fingerprint.__wrapped__() != same


def test_an_entry_edited_after_it_was_written_is_rendered_again(cache: Path) -> None:
    """A changed byte (a formula edited in place, the seal left as written) is detected by the seal; the same
    edit resealed is accepted (the companion showing that only the seal catches it)."""
    lc.cached("k", Renderer())
    entry = _entry(cache)
    head, body = entry.read_bytes().split(b"\n", 1)
    edited = body.replace(b"$g = 1$", b"$g = 2$")
    assert edited != body
    entry.write_bytes(head + b"\n" + edited)
    r = Renderer()
    assert lc.cached("k", r) == FAKE and r.calls == 1 and entry_doc(entry)["files"] == FAKE
    write_sealed(entry, edited.decode("utf-8"))
    r = Renderer()
    assert lc.cached("k", r) != FAKE and r.calls == 0


def test_a_sampler_named_like_another_key_does_not_read_its_entry(cache: Path) -> None:
    """break-test: `symsched latex --sampler all` was refused on a cold cache but wrote every derivation once a full
    `symsched latex` had stored its entry under the key "all" (report keys could collide the same way): single
    samplers have keys of their own."""
    lc.cached("all", Renderer())
    assert lc.render_all() == FAKE  # the full set is served from its entry
    with pytest.raises(ValueError, match="sampler must be one of"):
        lc.render_all("all")
    lc.cached("sampler_ddim", Renderer({"ddim.tex": "cached ddim"}))
    assert lc.render_all("ddim") == {"ddim.tex": "cached ddim"}  # and a single sampler reads its own


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("kind", ["fifo", "link to a fifo", "link to /dev/null", "mode 0666"])
def test_an_unsafe_entry_is_named_in_a_warning_and_replaced(cache: Path, tmp_path: Path, kind: str) -> None:
    """break-test: a symlink to /dev/zero or a FIFO was skipped without a word and never replaced (the write
    followed the link and refused it), so every run rendered again in silence; the kernel cache warned."""
    import warnings

    lc.cached("k", Renderer())
    entry = _entry(cache)
    entry.unlink()
    if kind == "fifo":
        os.mkfifo(entry, 0o600)
    elif kind == "link to a fifo":
        os.mkfifo(tmp_path / "pipe", 0o600)
        entry.symlink_to(tmp_path / "pipe")
    elif kind == "link to /dev/null":
        entry.symlink_to("/dev/null")
    else:
        write_sealed(entry, json.dumps({"files": {"ddim.tex": "planted"}}))
        os.chmod(entry, 0o666)
    r = Renderer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert lc.cached("k", r) == FAKE and r.calls == 1
    msgs = [str(w.message) for w in caught if issubclass(w.category, lc.LatexCacheWarning)]
    assert len(msgs) == 1 and str(entry) in msgs[0] and "replaces it" in msgs[0], msgs
    assert stat.S_ISREG(os.lstat(entry).st_mode) and stat.S_IMODE(os.lstat(entry).st_mode) == 0o600
    again = Renderer()
    assert lc.cached("k", again) == FAKE and again.calls == 0  # read from the replaced entry
