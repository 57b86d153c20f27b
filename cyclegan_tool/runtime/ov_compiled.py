"""The compiled forms of one ONNX model on OpenVINO's CPU plugin, and their blobs in the cache.

One form takes any input shape. A form compiled for one shape alone runs faster on the CPU
plugin (Winograd ResNet-9 ngf64 in bf16: 65 against 73 ms per 256x256 image; the shipped
horse2zebra int8 model: 14 against 18 ms), and its first inference skips the shape's set-up
(~50 ms). A model's first input shape on a machine
gets its own form, and so does every shape whose blob exists or that recurs `FIXED_AFTER` times
in a run; other shapes are served by the form for any shape (see `CompiledForms.request`).

Every compiled form is exported as a blob to `$XDG_CACHE_HOME/cyclegan-tool/openvino` and a
later run imports it instead of reading and compiling the graph (0.19 against 0.33 s for the
Winograd ResNet-9, whose graph has ~1,200 nodes). A blob's name is derived from the file's
identity (path, device, inode, size and modification and change times: a file replaced at the
same path, or rewritten in place, never gets an old blob), the compile settings, the OpenVINO
version and the CPU model. The least recently used blobs go once they pass `CACHE_BYTES`.
A blob that cannot be imported is removed and the graph compiled again.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

FIXED_AFTER = 8  # the n-th image of one shape in a run gets a form compiled for that shape
FIXED_MAX = 4  # forms for one shape each held by a run (each holds the weights; a folder of many sizes gets no more)
CACHE_BYTES = 4 << 30  # blobs kept, least recently used removed first


def cache_folder() -> Path | None:
    """The blob folder in the user cache, or None where it cannot be written."""
    from cyclegan_tool.fileio import user_cache_dir

    folder = user_cache_dir() / "openvino"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def blob_key(path: Path, config: dict, version: str) -> str:
    """What a blob of `path` compiled with `config` is named by (see the module docstring)."""
    from cyclegan_tool.devices import cpu_model

    st = os.stat(path)
    identity = (f"{os.path.realpath(path)}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
                f"|{sorted(config.items())}|openvino {version}|{cpu_model()}")
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def _shape_name(shape: tuple[int, ...] | None) -> str:
    return "any" if shape is None else "x".join(map(str, shape))


class CompiledForms:
    """The compiled forms of `path` with `config`: `request(shape)` gives an infer request for an
    input of that shape, importing or compiling the form it needs on first use."""

    def __init__(self, path: Path, config: dict):
        import openvino as ov

        self.path, self.config = Path(path), config
        self.core = ov.Core()
        self.folder = cache_folder()
        self.key = blob_key(self.path, config, ov.__version__)
        self.requests: dict = {}  # shape (None: any shape) -> (compiled model, infer request)
        self.seen: Counter = Counter()
        self.unfixed: set = set()  # shapes whose own form did not compile

    def cached(self) -> bool:
        """Whether a blob of this model and settings exists (it compiled on this machine before)."""
        return self.folder is not None and any(self.folder.glob(f"{self.key}.*.blob"))

    def request(self, shape: tuple[int, ...]):
        """The infer request for an input of `shape`. Its own form where that is cached, where the
        shape has recurred `FIXED_AFTER` times, or where nothing of this model was compiled here
        yet (one compilation either way; a folder of one size, the common case, needs no other),
        up to `FIXED_MAX` such forms; otherwise the form for any shape. A shape whose own form
        fails gets the latter."""
        if shape not in self.requests:
            self.seen[shape] += 1
            own = (self.seen[shape] >= FIXED_AFTER or self._blob(shape).is_file()
                   or not (self.requests or self.cached()))
            if own and shape not in self.unfixed and len(set(self.requests) - {None}) < FIXED_MAX:
                try:
                    return self._form(shape)
                except Exception:
                    self.unfixed.add(shape)
            return self._form(None)
        return self.requests[shape][1]

    def _form(self, shape):
        """The infer request of the form for `shape` (None: any shape), imported from its blob or
        compiled (and its blob written) on first use."""
        from cyclegan_tool.errors import BackendError

        if shape not in self.requests:
            try:
                compiled = self._imported(shape) or self._compile(shape)
            except Exception as e:
                raise BackendError(f"{self.path}: OpenVINO cannot compile it ({str(e).splitlines()[0]})") from None
            self.requests[shape] = (compiled, compiled.create_infer_request())
        return self.requests[shape][1]

    def close(self) -> None:
        self.requests.clear()

    def _blob(self, shape) -> Path:
        return (self.folder or Path("/nonexistent")) / f"{self.key}.{_shape_name(shape)}.blob"

    def _imported(self, shape):
        blob = self._blob(shape)
        if self.folder is None or not blob.is_file():
            return None
        try:
            compiled = self.core.import_model(blob.read_bytes(), "CPU", self.config)
            os.utime(blob)  # recently used
            return compiled
        except Exception:  # cut, foreign or from another build: compile again
            blob.unlink(missing_ok=True)
            return None

    def _compile(self, shape):
        model = self.core.read_model(str(self.path))
        if shape is not None:
            model.reshape(list(shape))
        compiled = self.core.compile_model(model, "CPU", self.config)
        if self.folder is not None:
            self._store(compiled, self._blob(shape))
        return compiled

    def _store(self, compiled, blob: Path) -> None:
        from cyclegan_tool.fileio import atomic_write, prune_lru

        try:
            data = compiled.export_model()
            data = data.getvalue() if hasattr(data, "getvalue") else bytes(data)
            atomic_write(blob, lambda f: f.write(data))
            prune_lru(self.folder, "*.blob", CACHE_BYTES)
        except Exception:  # a full or read-only cache only costs compiling again next time
            pass
