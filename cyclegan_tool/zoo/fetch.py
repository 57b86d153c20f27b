"""Downloads: a published model's weights or a benchmark dataset, fetched over HTTP(S) once.

`fetch(url, dest, what=...)` writes `dest` atomically: the bytes go to `dest.part` beside it
(kept when the transfer breaks, so the next try resumes with an HTTP Range request), are checked
(`check(part)` raises for content that is not what was asked for), and only then renamed to
`dest`. Nothing half-written is ever under the final name. Every failure is one line naming what
was fetched and its URL: no network, a name that does not resolve, an HTTP error, a timeout, a
transfer cut short, an error page instead of the file, a full disk or an unwritable folder.

Progress goes to the reporter the front end installs (`reporting`): the CLI draws a bar, the GUI
a status line; the library itself prints nothing. `offline()` (`--offline`,
`CYCLEGAN_TOOL_OFFLINE=1` or the config file's `offline`) forbids any request.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from cyclegan_tool.errors import CycleGANError

TIMEOUT_S = 30.0  # per connection attempt and per read
CHUNK = 1 << 16

Reporter = Callable[[str, int, int | None], None]  # (what, bytes so far, total or None)
_reporter: list[Reporter | None] = [None]
_offline: list[bool] = [False]


class FetchError(CycleGANError):
    """A download failed; the message names what and from where."""


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Send download progress to `reporter` inside the block."""
    previous, _reporter[0] = _reporter[0], reporter
    try:
        yield
    finally:
        _reporter[0] = previous


def set_offline(value: bool) -> None:
    """`--offline`: no request at all for the rest of the process."""
    _offline[0] = value


def offline() -> bool:
    from cyclegan_tool.zoo.settings import setting

    if _offline[0] or os.environ.get("CYCLEGAN_TOOL_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    return bool(setting("offline", False))


def _reason(e: BaseException) -> str:
    import urllib.error

    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        inner = e.reason
        if isinstance(inner, socket.gaierror):
            return "the host name does not resolve (no network, or no such server)"
        if isinstance(inner, (socket.timeout, TimeoutError)):
            return f"no answer within {TIMEOUT_S:.0f} s"
        if isinstance(inner, ConnectionRefusedError):
            return "the connection was refused"
        return str(inner)
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"no data within {TIMEOUT_S:.0f} s"
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return "the disk is full"
    if isinstance(e, PermissionError):
        return f"cannot write {e.filename}"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def fetch(url: str, dest: Path, *, what: str, check: Callable[[Path], None] | None = None,
          max_bytes: int | None = None) -> Path:
    """Download `url` to `dest` (see the module docstring); returns `dest`."""
    import urllib.error
    import urllib.request

    if offline():
        raise FetchError(f"{what}: not downloaded from {url}: offline (--offline or CYCLEGAN_TOOL_OFFLINE); fetch "
                         "it from a copy of your own with a file:// URL in CYCLEGAN_TOOL_MODEL_URL or "
                         "CYCLEGAN_TOOL_DATASET_URL (docs/MODELS.md)")
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(url, headers={"User-Agent": "cyclegan-tool",
                                                       **({"Range": f"bytes={have}-"} if have else {})})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            if have and response.status != 206:  # the server ignores ranges: start again
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            if max_bytes is not None and total is not None and total > max_bytes:
                raise FetchError(f"{what}: {url} is {total / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB "
                                 "this download allows")
            done = have
            with open(part, "ab" if have else "wb") as f:
                while block := response.read(CHUNK):
                    f.write(block)
                    done += len(block)
                    if max_bytes is not None and done > max_bytes:
                        raise FetchError(f"{what}: {url} sends more than {max_bytes / 2**20:.0f} MiB; stopped")
                    if _reporter[0]:
                        _reporter[0](what, done, total)
                f.flush()
                os.fsync(f.fileno())
            if total is not None and done < total:
                raise FetchError(f"{what}: the download from {url} was cut short ({done} of {total} bytes); run "
                                 "again to resume it")
    except FetchError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        if isinstance(e, urllib.error.HTTPError) and e.code == 416 and part.is_file():
            part.unlink()  # a range past the end: the partial file is stale
        kept = " (the part received is kept; run again to resume)" if part.is_file() and part.stat().st_size else ""
        raise FetchError(f"{what}: cannot download {url}: {_reason(e)}{kept}") from None
    try:
        if check is not None:
            check(part)
        os.replace(part, dest)
    except CycleGANError:
        part.unlink(missing_ok=True)  # not what was asked for: nothing to resume
        raise
    except OSError as e:
        raise FetchError(f"{what}: cannot store it at {dest}: {_reason(e)}") from None
    return dest


def looks_like_html(path: Path) -> bool:
    """An error page served with status 200 instead of the file."""
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))
