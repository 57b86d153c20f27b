"""The compiled forms of one ONNX model on OpenVINO's CPU plugin, and their blobs in the cache.

Which form an input runs on is a function of its shape alone, so a model's output is a function
of the model and the image, never of the images a run met before or of what the cache holds:

- **The fixed form**: a batch of one image of a size in `FIXED_SIZES` (256x256, the size of the
  reference's test images and of the published datasets) runs on a form compiled for that shape
  alone, 8-11% faster than the any-shape form (bench/ov_forms_bench.py, two runs: 144-154 against
  157-170 ms for the Winograd ResNet-9 in bf16, 29 against 31-32 ms for the shipped int8 form).
- **The any-shape form** runs every other input. Its output differs from the fixed form's (the
  bf16 and int8 blockings differ by shape: 44 and 39 dB apart, about as far as each is from
  FP32), which is why the choice is by shape and not by what has been compiled: a form per size
  met would make an image's output depend on the sizes before it, and compiling one per size
  would cost a folder of mixed photos a compile per image.

Each form is compiled on first use and exported as a blob to the user cache (`cache.FileCache`
"openvino"); a later run imports it instead of reading and compiling the graph (~0.3 against
~1.2 s for the Winograd ResNet-9, whose folded graph has ~2,200 operations). A blob is named by
the content digest of the model's files (external data included), the compile settings, the
form, the OpenVINO version and the machine, so a replaced model never meets an old blob; past
`CACHE_BYTES` the least recently used blobs go. A blob that cannot be imported is removed and the
form compiled again.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cyclegan_tool.cache import FileCache, key, machine_id

CACHE_BYTES = 4 << 30  # blobs kept, least recently used removed first
FIXED_SIZES = frozenset({(256, 256)})  # (height, width) of single images with a form of their own
ANY = "any"


def form_for(shape: tuple[int, ...]) -> str:
    """The form an input of `shape` [N, C, H, W] runs on: "HxW" for one image of a fixed size, else "any"."""
    n, _, h, w = shape
    return size_name((h, w)) if n == 1 and (h, w) in FIXED_SIZES else ANY


BLOBS = FileCache("openvino", CACHE_BYTES)


def blob_key(path: Path, config: dict, version: str, fold: bool = False, form: str = ANY) -> str:
    """What the blob of `path`'s `form` compiled with `config` is named by (see the module docstring)."""
    from cyclegan_tool.model_files import digest

    return key(digest(path), sorted(config.items()), f"openvino {version}", machine_id(), *(["folded"] if fold else []),
               *([form] if form != ANY else []))


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
    """The compiled forms of `path` with `config`: `request(shape)` gives the infer request of
    the form for that input shape, importing or compiling it on first use."""

    def __init__(self, path: Path, config: dict, *, fold: bool = False):
        """`fold`: fold the graph's constant parts before compiling (float graphs; see `_compile`)."""
        import openvino as ov

        self.path, self.config, self.fold, self.version = Path(path), config, fold, ov.__version__
        self.core = ov.Core()
        self.model = None
        self.requests: dict[str, object] = {}  # form -> its infer request (which holds its compiled model)
        self.saving: list[threading.Thread] = []
        self.mapped: list = []  # the blobs imported, mapped into memory (`_import`)

    def key(self, form: str) -> str:
        return blob_key(self.path, self.config, self.version, self.fold, form)

    def read(self):
        """The graph as OpenVINO reads it, kept for the compilation that follows (read once)."""
        if self.model is None:
            self.model = self.core.read_model(str(self.path))
        return self.model

    def cached(self) -> bool:
        """Whether a blob of this model and settings exists (it was read and compiled here before)."""
        return any(BLOBS.path(self.key(form), suffix(form)).is_file() for form in (ANY, *map(size_name, FIXED_SIZES)))

    def request(self, shape: tuple[int, ...]):
        """The infer request of the form for inputs of `shape` (`form_for`), imported from its
        blob or compiled (and the blob written) on first use."""
        from cyclegan_tool.errors import ModelUnusable

        form = form_for(shape)
        if form not in self.requests:
            try:
                compiled = self._imported(form) or self._compile(form)
            except Exception as e:
                raise ModelUnusable(f"{self.path}: OpenVINO cannot compile it ({reason(e)})") from None
            self.requests[form] = compiled.create_infer_request()
        return self.requests[form]

    def close(self) -> None:
        for thread in self.saving:
            thread.join()
        self.requests, self.model, self.saving, self.mapped = {}, None, [], []

    def _imported(self, form: str):
        blob = BLOBS.get(self.key(form), suffix(form))
        if blob is None:
            return None
        try:
            return self._import(blob)
        except Exception:  # from another build: compile again
            BLOBS.remove(blob)
            return None

    def _import(self, blob: Path):
        """The blob's compiled form, its file mapped into memory rather than read (0.28 against
        0.37 s for the Winograd ResNet-9's 80 MB). The mapping is private (nothing written reaches
        the file) and stays as long as the forms do: the compiled model may point into it."""
        import mmap

        import numpy as np
        import openvino as ov

        with open(blob, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        try:
            compiled = self.core.import_model(ov.Tensor(np.frombuffer(mapped, np.uint8), shared_memory=True), "CPU",
                                              self.config)
        except TypeError:  # an OpenVINO before 2025 imports bytes only
            return self.core.import_model(blob.read_bytes(), "CPU", self.config)
        self.mapped.append(mapped)
        return compiled

    def _compile(self, form: str):
        model = self.read()
        if self.fold:
            fold_constants(model)
        channels = model.inputs[0].partial_shape[1]
        if form == ANY:
            model.reshape([-1, channels, -1, -1])
        else:
            model.reshape([1, channels, *map(int, form.split("x"))])
        compiled = self.core.compile_model(model, "CPU", self.config)
        self.model = None  # reshaped (and folded): the next form reads the graph again
        # The blob (~80 MB for ResNet-9) is written while the run goes on; `close` waits for it.
        thread = threading.Thread(target=self._save, args=(compiled, form), name="openvino-blob", daemon=True)
        thread.start()
        self.saving.append(thread)
        return compiled

    def _save(self, compiled, form: str) -> None:
        try:
            data = compiled.export_model()
            data = data.getvalue() if hasattr(data, "getvalue") else bytes(data)
            BLOBS.put_bytes(self.key(form), suffix(form), data)
        except Exception:  # a full or read-only cache only costs compiling again next time
            pass


def size_name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def suffix(form: str) -> str:
    return f".{form}.blob"
