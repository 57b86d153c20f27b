"""The compiled form of one ONNX model on OpenVINO's CPU plugin, and its blob in the cache.

One form takes any input shape, and it is the only one: a form compiled for one shape alone
runs 6-15% faster for some graphs here, but for others (the Winograd form in bf16, int8 graphs
with FP32 float parts) its output differs from the any-shape form's in the last bits, so which
forms a run had compiled before (or found in the cache) would change the numbers it writes.
One form keeps a model's output a function of the model and the image alone.

The compiled form is exported as a blob to the user cache (`cache.FileCache` "openvino") and a
later run imports it instead of reading and compiling the graph (0.19 against 0.33 s for the
Winograd ResNet-9, whose graph has ~1,200 nodes). A blob is named by the content digest of the
model's files (external data included), the compile settings, the OpenVINO version and the
machine, so a replaced model never meets an old blob; past `CACHE_BYTES` the least recently
used blobs go. A blob that cannot be imported is removed and the graph compiled again.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cyclegan_tool.cache import FileCache, key, machine_id

CACHE_BYTES = 4 << 30  # blobs kept, least recently used removed first


BLOBS = FileCache("openvino", CACHE_BYTES)


def blob_key(path: Path, config: dict, version: str, fold: bool = False) -> str:
    """What the blobs of `path` compiled with `config` are named by (see the module docstring)."""
    from cyclegan_tool.model_files import digest

    return key(digest(path), sorted(config.items()), f"openvino {version}", machine_id(), *(["folded"] if fold else []))


def reason(e: BaseException) -> str:
    """The informative part of an OpenVINO error: its messages start with lines naming the C++
    source ("Exception from src/inference/src/cpp/core.cpp:84:"), which say nothing to a user."""
    import re

    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not re.match(r"^(Exception from |Check '.*' failed at |\[ GENERAL_ERROR \]$)", ln)]
    text = "; ".join(useful or lines) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def fold_constants(model) -> None:
    """Fold `model`'s constant parts in place. OpenVINO's ONNX reader gives each grouped
    convolution's weights a subgraph of shape arithmetic (ShapeOf, Divide, Reshape): the Winograd
    form's 360 depthwise steps made 5,577 operations of its 1,275 nodes. Folding them first
    (0.05 s) leaves 2,198 and shortens compiling by 0.3-0.5 s; the output stays bit-identical
    (tests/test_ov_compiled.py). Not for int8 graphs: folding fuses their quantize-dequantize
    pairs away and changes the output."""
    from openvino import passes

    manager = passes.Manager()
    manager.register_pass(passes.ConstantFolding())
    manager.run_passes(model)


class CompiledForms:
    """The compiled form of `path` with `config`: `request()` gives its infer request, importing
    or compiling the form on first use."""

    def __init__(self, path: Path, config: dict, *, fold: bool = False):
        """`fold`: fold the graph's constant parts before compiling (float graphs; see `_compile`)."""
        import openvino as ov

        self.path, self.config, self.fold = Path(path), config, fold
        self.core = ov.Core()
        self.key = blob_key(self.path, config, ov.__version__, fold)
        self.compiled = self.infer_request = self.model = self.saving = None

    def read(self):
        """The graph as OpenVINO reads it, kept for the compilation that follows (read once)."""
        if self.model is None:
            self.model = self.core.read_model(str(self.path))
        return self.model

    def cached(self) -> bool:
        """Whether the blob of this model and settings exists (it compiled on this machine before)."""
        return BLOBS.path(self.key, BLOB_SUFFIX).is_file()

    def request(self):
        """The infer request (for any input shape), imported from the blob or compiled (and the
        blob written) on first use."""
        from cyclegan_tool.errors import ModelUnusable

        if self.infer_request is None:
            try:
                self.compiled = self._imported() or self._compile()
            except Exception as e:
                raise ModelUnusable(f"{self.path}: OpenVINO cannot compile it ({reason(e)})") from None
            self.infer_request = self.compiled.create_infer_request()
        return self.infer_request

    def close(self) -> None:
        if self.saving is not None:
            self.saving.join()
        self.compiled = self.infer_request = self.model = self.saving = None

    def _imported(self):
        blob = BLOBS.get(self.key, BLOB_SUFFIX)
        if blob is None:
            return None
        try:
            return self.core.import_model(blob.read_bytes(), "CPU", self.config)
        except Exception:  # from another build: compile again
            BLOBS.remove(blob)
            return None

    def _compile(self):
        model, self.model = self.read(), None
        if self.fold:
            fold_constants(model)
        model.reshape([-1, model.inputs[0].partial_shape[1], -1, -1])
        compiled = self.core.compile_model(model, "CPU", self.config)
        # The blob (~80 MB for ResNet-9) is written while the run goes on; `close` waits for it.
        self.saving = threading.Thread(target=self._save, args=(compiled,), name="openvino-blob", daemon=True)
        self.saving.start()
        return compiled

    def _save(self, compiled) -> None:
        try:
            data = compiled.export_model()
            data = data.getvalue() if hasattr(data, "getvalue") else bytes(data)
            BLOBS.put_bytes(self.key, BLOB_SUFFIX, data)
        except Exception:  # a full or read-only cache only costs compiling again next time
            pass


BLOB_SUFFIX = ".any.blob"
