"""The compiled forms of one ONNX model on OpenVINO's CPU plugin, and their blobs in the cache.

One form takes any input shape. A form compiled for one shape alone runs faster on the CPU
plugin (Winograd ResNet-9 ngf64 in bf16: 65 against 73 ms per 256x256 image; the shipped
horse2zebra int8 model: 14 against 18 ms), and its first inference skips the shape's set-up
(~50 ms). A model's first input shape on a machine
gets its own form, and so does every shape whose blob exists or that recurs `FIXED_AFTER` times
in a run; other shapes are served by the form for any shape (see `CompiledForms.request`).

Every compiled form is exported as a blob to the user cache (`cache.FileCache` "openvino") and
a later run imports it instead of reading and compiling the graph (0.19 against 0.33 s for the
Winograd ResNet-9, whose graph has ~1,200 nodes). A blob is named by the content digest of the
model's files (external data included), the compile settings, the OpenVINO version and the
machine, so a replaced model never meets an old blob; past `CACHE_BYTES` the least recently
used blobs go. A blob that cannot be imported is removed and the graph compiled again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cyclegan_tool.cache import FileCache, key, machine_id

FIXED_AFTER = 8  # the n-th image of one shape in a run gets a form compiled for that shape
FIXED_MAX = 4  # forms for one shape each held by a run (each holds the weights; a folder of many sizes gets no more)
CACHE_BYTES = 4 << 30  # blobs kept, least recently used removed first


BLOBS = FileCache("openvino", CACHE_BYTES)


def blob_key(path: Path, config: dict, version: str) -> str:
    """What the blobs of `path` compiled with `config` are named by (see the module docstring)."""
    from cyclegan_tool.model_files import digest

    return key(digest(path), sorted(config.items()), f"openvino {version}", machine_id())


def reason(e: BaseException) -> str:
    """The informative part of an OpenVINO error: its messages start with lines naming the C++
    source ("Exception from src/inference/src/cpp/core.cpp:84:"), which say nothing to a user."""
    import re

    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not re.match(r"^(Exception from |Check '.*' failed at |\[ GENERAL_ERROR \]$)", ln)]
    text = "; ".join(useful or lines) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _shape_name(shape: tuple[int, ...] | None) -> str:
    return "any" if shape is None else "x".join(map(str, shape))


class CompiledForms:
    """The compiled forms of `path` with `config`: `request(shape)` gives an infer request for an
    input of that shape, importing or compiling the form it needs on first use."""

    def __init__(self, path: Path, config: dict):
        import openvino as ov

        self.path, self.config = Path(path), config
        self.core = ov.Core()
        self.key = blob_key(self.path, config, ov.__version__)
        self.requests: dict = {}  # shape (None: any shape) -> (compiled model, infer request)
        self.seen: Counter = Counter()
        self.unfixed: set = set()  # shapes whose own form did not compile

    def cached(self) -> bool:
        """Whether a blob of this model and settings exists (it compiled on this machine before)."""
        return BLOBS.folder.is_dir() and any(BLOBS.folder.glob(f"{self.key}.*.blob"))

    def request(self, shape: tuple[int, ...]):
        """The infer request for an input of `shape`. Its own form where that is cached, where the
        shape has recurred `FIXED_AFTER` times, or where nothing of this model was compiled here
        yet (one compilation either way; a folder of one size, the common case, needs no other),
        up to `FIXED_MAX` such forms; otherwise the form for any shape. A shape whose own form
        fails gets the latter."""
        if shape not in self.requests:
            self.seen[shape] += 1
            own = (self.seen[shape] >= FIXED_AFTER or BLOBS.path(self.key, _blob_suffix(shape)).is_file()
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
        from cyclegan_tool.errors import ModelUnusable

        if shape not in self.requests:
            try:
                compiled = self._imported(shape) or self._compile(shape)
            except Exception as e:
                raise ModelUnusable(f"{self.path}: OpenVINO cannot compile it ({reason(e)})") from None
            self.requests[shape] = (compiled, compiled.create_infer_request())
        return self.requests[shape][1]

    def close(self) -> None:
        self.requests.clear()

    def _imported(self, shape):
        blob = BLOBS.get(self.key, _blob_suffix(shape))
        if blob is None:
            return None
        try:
            return self.core.import_model(blob.read_bytes(), "CPU", self.config)
        except Exception:  # from another build: compile again
            BLOBS.remove(blob)
            return None

    def _compile(self, shape):
        model = self.core.read_model(str(self.path))
        if shape is not None:
            model.reshape(list(shape))
        compiled = self.core.compile_model(model, "CPU", self.config)
        try:
            data = compiled.export_model()
            data = data.getvalue() if hasattr(data, "getvalue") else bytes(data)
            BLOBS.put_bytes(self.key, _blob_suffix(shape), data)
        except Exception:  # a full or read-only cache only costs compiling again next time
            pass
        return compiled


def _blob_suffix(shape) -> str:
    return f".{_shape_name(shape)}.blob"
