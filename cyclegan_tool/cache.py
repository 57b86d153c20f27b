"""The one owner of the user cache: where it lives, how entries are named, verified, kept
and removed. Nothing in the cache can go stale, because nothing is named by a path or a time:

- **Keys** (`key`): a hash of everything a cached thing depends on: the content digest of every
  file it was made from (`digest_files`; an ONNX model's external data files are among its
  files, `model_files.files_of`), the library versions that made it, the machine where that
  matters (`machine_id`), and the form's version.
- **Entries** (`FileCache`): one folder per kind (`onnx` forms, `openvino` blobs, `fid`
  features). Each entry `NAME` has a record `.NAME.rec` holding its size and SHA-256, written
  when it is made; every use checks the size (and the SHA-256 whenever the file's times moved),
  so a truncated, zero-byte or rewritten entry is removed and made again, never used. The
  record's modification time is the entry's last use; past the folder's byte limit the least
  recently used entries go, except those used in the last `IN_USE_S` seconds. Temporary files
  of writes a killed process left behind are swept once they are an hour old.
- **Records** (`JsonCache`): small JSON values (measurements) in one file; the reader
  validates each record and ignores what is malformed.

`$XDG_CACHE_HOME/cyclegan-tool` (or `~/.cache/cyclegan-tool`); `CYCLEGAN_TOOL_CACHE` overrides it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from cyclegan_tool.fileio import atomic_write_json, sha256_file

IN_USE_S = 120  # an entry used this recently is never removed (this run's others, another process's)
STALE_TMP_S = 3600  # temporary files older than this belong to a killed write


def user_cache_dir() -> Path:
    """The tool's folder in the user cache."""
    if os.environ.get("CYCLEGAN_TOOL_CACHE"):
        return Path(os.environ["CYCLEGAN_TOOL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cyclegan-tool"


def file_identity(path: str | os.PathLike) -> tuple:
    """What tells one file's content apart from another's without reading it, as far as the
    file system can: device, inode, size, modification and change times (a change time cannot
    be set back, so a file rewritten in place with its mtime restored still differs)."""
    st = os.stat(path)
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=64)
def _digest(identities: tuple) -> str:
    h = hashlib.sha256()
    for ident in identities:
        h.update(sha256_file(ident[0]).encode())
    return h.hexdigest()


def digest_files(paths: Iterable[str | os.PathLike]) -> str:
    """The SHA-256 of the files' contents (in order); hashed once per process while every
    file's identity (`file_identity`) is unchanged."""
    return _digest(tuple(file_identity(p) for p in paths))


def entry_digest(path: str | os.PathLike) -> str | None:
    """`digest_files([path])` without reading the file, for an entry of a `FileCache` in the user
    cache whose size and modification time still match its record (the rule `FileCache.get`
    trusts): the SHA-256 the record took when the entry was made. None for any other file."""
    path = Path(path)
    try:
        if user_cache_dir().resolve() not in path.resolve().parents:
            return None
        record = json.loads(FileCache._record(path).read_text(encoding="utf-8"))
        st = path.stat()
        if not (isinstance(record, dict) and isinstance(record.get("sha256"), str)
                and st.st_size == record.get("size") and st.st_mtime_ns == record.get("mtime_ns")):
            return None
    except (OSError, ValueError):
        return None
    return hashlib.sha256(record["sha256"].encode()).hexdigest()


def key(*parts: object) -> str:
    """A cache key: 32 hex digits of the SHA-256 of `parts` (digests, versions, settings)."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def machine_id() -> str:
    """The CPU (model name with family/model/stepping), core count and native bf16: what a
    measurement or a compiled form depends on."""
    from cyclegan_tool.devices import cpu_has_native_bf16, cpu_model

    return f"{cpu_model()}|{os.cpu_count()} cpus|bf16 {cpu_has_native_bf16()}"


class FileCache:
    """Verified, bounded files in `user_cache_dir()/name` (see the module docstring)."""

    def __init__(self, name: str, limit_bytes: int, root: Path | None = None):
        """`root`: a folder of the caller's instead of `user_cache_dir()/name`."""
        self.name, self.limit, self.root = name, limit_bytes, root

    @property
    def folder(self) -> Path:
        return self.root if self.root is not None else user_cache_dir() / self.name

    def path(self, key_: str, suffix: str) -> Path:
        return self.folder / f"{key_}{suffix}"

    @staticmethod
    def _record(path: Path) -> Path:
        return path.with_name(f".{path.name}.rec")

    def get(self, key_: str, suffix: str) -> Path | None:
        """The entry, verified and stamped as used; None where it is missing or bad (a bad one is
        removed)."""
        path = self.path(key_, suffix)
        if not path.is_file():
            return None
        rec = self._record(path)
        try:
            record = json.loads(rec.read_text(encoding="utf-8"))
            st = path.stat()
            good = isinstance(record, dict) and st.st_size == record.get("size")
            if good and st.st_mtime_ns != record.get("mtime_ns"):  # touched since: check the content
                good = sha256_file(path) == record.get("sha256")
        except (OSError, ValueError):
            good = False
        if not good:
            self.remove(path)
            return None
        try:
            os.utime(rec)  # used now
        except OSError:
            pass
        return path

    def make(self, key_: str, suffix: str, write: Callable[[Path], object]) -> Path:
        """Make the entry: `write(tmp)` writes the file at a temporary path in the folder, which is
        then recorded and renamed into place; least recently used entries past the limit go."""
        path = self.path(key_, suffix)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sweep()
        tmp = self.folder / f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        try:
            write(tmp)
            if not tmp.is_file():
                raise OSError(f"{tmp}: nothing was written")
            st = tmp.stat()
            atomic_write_json(self._record(path), {"size": st.st_size, "sha256": sha256_file(tmp),
                                                   "mtime_ns": st.st_mtime_ns, "made": time.time()})
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.prune(keep=(path,))
        return path

    def get_or_make(self, key_: str, suffix: str, write: Callable[[Path], object]) -> Path:
        return self.get(key_, suffix) or self.make(key_, suffix, write)

    def put_bytes(self, key_: str, suffix: str, data: bytes) -> Path:
        return self.make(key_, suffix, lambda tmp: tmp.write_bytes(data))

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._record(path).unlink(missing_ok=True)

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, size, path) of every recorded entry; files without a record are removed."""
        found = []
        if not self.folder.is_dir():
            return found
        for p in self.folder.iterdir():
            if p.name.startswith("."):
                continue
            try:
                size = p.stat().st_size
                used = self._record(p).stat().st_mtime
            except OSError:  # no record: made by an older version or cut short
                self.remove(p)
                continue
            found.append((used, size, p))
        return found

    def prune(self, keep: tuple[Path, ...] = ()) -> None:
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        recent = time.time() - IN_USE_S
        for used, size, p in sorted(entries):
            if total <= self.limit:
                break
            if p in keep or used > recent:
                continue
            self.remove(p)
            total -= size

    def sweep(self) -> None:
        """Remove temporary files (and records without their entry) that killed writes left."""
        if not self.folder.is_dir():
            return
        old = time.time() - STALE_TMP_S
        for p in self.folder.glob(".*"):
            try:
                if p.name.endswith(".tmp") and p.stat().st_mtime < old:
                    p.unlink(missing_ok=True)
                elif p.name.endswith(".rec") and not (self.folder / p.name[1:-4]).exists():
                    p.unlink(missing_ok=True)
            except OSError:
                continue


class JsonCache:
    """A file of small JSON records: `get(key, valid)` returns a record only if `valid(record)`."""

    def __init__(self, name: str):
        self.name = name

    @property
    def path(self) -> Path:
        return user_cache_dir() / self.name

    def _all(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key_: str, valid: Callable[[object], bool]):
        record = self._all().get(key_)
        try:
            return record if record is not None and valid(record) else None
        except Exception:  # a validator that meets a record of the wrong shape
            return None

    def put(self, key_: str, record: object) -> None:
        data = self._all()
        data[key_] = record
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, data)
        except OSError:
            pass  # a full or read-only cache only costs measuring again
