"""Writes that matter go through a temp file in the same folder and an atomic rename."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(fileobj)` on a temp file next to `path`, fsync, then rename over `path`.

    A crash leaves either the old file or the new one, never a partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: object) -> Path:
    data = (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()
    return atomic_write(path, lambda f: f.write(data))


def used_stamp(path: Path) -> Path:
    """The empty file whose modification time says when `path` was last used, for files whose
    own times must not change (a compiled OpenVINO form is keyed by its model file's mtime)."""
    return path.with_name(f".{path.name}.used")


def mark_used(path: Path) -> None:
    """Stamp `path` as used now for `prune_lru(..., stamps=True)` (a read-only cache is left as it is)."""
    try:
        used_stamp(path).touch()
    except OSError:
        pass


def prune_lru(folder: Path, pattern: str, limit: int, keep: tuple[Path, ...] = (), min_age_s: float = 0,
              stamps: bool = False) -> None:
    """Remove the least recently used files matching `pattern` in `folder` until they take at
    most `limit` bytes; never those in `keep` or used in the last `min_age_s` seconds. Last use
    is the modification time, or with `stamps` the later of it and its `used_stamp`'s (removed
    with the file)."""
    import time

    recent = time.time() - min_age_s
    found = []
    for p in folder.glob(pattern):
        try:
            st = p.stat()
        except OSError:
            continue
        used = st.st_mtime
        if stamps:
            try:
                used = max(used, used_stamp(p).stat().st_mtime)
            except OSError:
                pass
        found.append((used, st.st_size, p))
    total = sum(size for _, size, _ in found)
    kept = {Path(k).resolve() for k in keep}
    for used, size, p in sorted(found, key=lambda f: f[0]):
        if total <= limit:
            break
        if p.resolve() in kept or (min_age_s and used > recent):
            continue
        try:
            p.unlink(missing_ok=True)
            if stamps:
                used_stamp(p).unlink(missing_ok=True)
        except OSError:
            continue
        total -= size


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def user_cache_dir() -> Path:
    """The tool's folder in the user cache: `$XDG_CACHE_HOME/cyclegan-tool` (or `~/.cache/...`)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cyclegan-tool"
