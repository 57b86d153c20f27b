"""The user cache (cyclegan_tool/cache.py): entries verified on every use, bounded by size with
the least recently used going first, temporary files of killed writes swept, malformed records
ignored, and names that follow content, never paths or times."""

from __future__ import annotations

import hashlib
import json
import os
import time

from cyclegan_tool import cache
from cyclegan_tool.cache import FileCache, JsonCache


def test_a_damaged_entry_is_never_returned(tmp_path):
    c = FileCache("x", 1 << 20, tmp_path)
    path = c.make("k", ".bin", lambda tmp: tmp.write_bytes(b"payload" * 100))
    assert c.get("k", ".bin") == path
    path.write_bytes(b"payload")  # truncated
    assert c.get("k", ".bin") is None and not path.exists()
    path = c.make("k", ".bin", lambda tmp: tmp.write_bytes(b"payload" * 100))
    time.sleep(0.01)
    path.write_bytes(b"PAYLOAD" * 100)  # same size, other bytes: the content is checked when times moved
    assert c.get("k", ".bin") is None
    path = c.make("k", ".bin", lambda tmp: tmp.write_bytes(b""))
    assert c.get("k", ".bin") == path  # an entry that is empty by design is fine; a record says so


def test_least_recently_used_go_past_the_limit_except_those_in_use(tmp_path):
    c = FileCache("x", 250, tmp_path)
    past = time.time() - 2 * cache.IN_USE_S
    for i in range(3):
        p = c.make(f"k{i}", ".bin", lambda tmp: tmp.write_bytes(b"x" * 100))
        os.utime(c._record(p), (past + i, past + i))
    c.make("k3", ".bin", lambda tmp: tmp.write_bytes(b"x" * 100))
    assert sorted(p.name for p in tmp_path.glob("k*")) == ["k2.bin", "k3.bin"]
    assert c.get("k2", ".bin") is not None  # used now: it stays whatever the limit
    c.limit = 0
    c.make("k4", ".bin", lambda tmp: tmp.write_bytes(b"x"))
    assert sorted(p.name for p in tmp_path.glob("k*")) == ["k2.bin", "k3.bin", "k4.bin"]


def test_files_left_by_killed_writes_are_swept(tmp_path):
    c = FileCache("x", 1 << 20, tmp_path)
    old = tmp_path / ".k.bin.123.456.tmp"
    old.write_bytes(b"half")
    fresh = tmp_path / ".j.bin.789.1.tmp"
    fresh.write_bytes(b"being written")
    stamp = time.time() - 2 * cache.STALE_TMP_S
    os.utime(old, (stamp, stamp))
    orphan = tmp_path / "lost.bin"  # an entry without its record (a write cut short before it)
    orphan.write_bytes(b"?")
    c.make("k", ".bin", lambda tmp: tmp.write_bytes(b"ok"))
    assert not old.exists() and fresh.exists() and not orphan.exists()


def test_malformed_records_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    store = JsonCache("m.json")
    store.path.parent.mkdir(parents=True)
    for content in ("{not json", "[1]", '"x"'):
        store.path.write_text(content)
        assert store.get("k", lambda r: True) is None
    store.path.write_text('{"k": "a string"}')
    assert store.get("k", lambda r: r["ms"] > 0) is None  # a validator that meets the wrong shape
    store.put("k", {"ms": 1.0})
    assert store.get("k", lambda r: r["ms"] > 0) == {"ms": 1.0}


def test_digests_follow_content_not_path_or_time(tmp_path):
    a, b = tmp_path / "a" / "m.pth", tmp_path / "b" / "m.pth"
    for p, data in ((a, b"one"), (b, b"two")):
        p.parent.mkdir()
        p.write_bytes(data)
        os.utime(p, ns=(1, 1))
    assert cache.digest_files([a]) != cache.digest_files([b])
    before = cache.digest_files([a])
    st = os.stat(a)
    a.write_bytes(b"six")  # same size, mtime put back: the change time still moves
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.digest_files([a]) != before


def test_a_cache_entry_is_named_by_its_record_until_it_changes(tmp_path, monkeypatch):
    from cyclegan_tool.model_files import digest

    monkeypatch.setenv("CYCLEGAN_TOOL_CACHE", str(tmp_path / "c"))
    forms = cache.FileCache("onnx", 1 << 20)
    entry = forms.put_bytes("k", ".blob", b"graph bytes")
    outside = tmp_path / "copy.blob"
    outside.write_bytes(b"graph bytes")
    os.utime(outside, ns=(1, 1))
    assert cache.entry_digest(entry) == cache.digest_files([entry])
    assert cache.entry_digest(outside) is None  # a user's file is hashed, whatever lies beside it
    # The record answers without the file being read: a different record gives a different name.
    rec = entry.with_name(f".{entry.name}.rec")
    record = json.loads(rec.read_text())
    rec.write_text(json.dumps({**record, "sha256": "0" * 64}))
    assert digest(entry) == hashlib.sha256(("0" * 64).encode()).hexdigest()
    entry.write_bytes(b"other bytes")  # changed since its record: hashed again
    assert digest(entry) == cache.digest_files([entry]) != hashlib.sha256(("0" * 64).encode()).hexdigest()
