"""OpenVINO backend for exported `.onnx` models on the CPU (`pip install ".[openvino]"`).

It reads the same ONNX file and metadata as ONNX Runtime. It computes at the graph's precision
unless asked for bf16 (`compute="bf16"`, which `--backend auto` takes where the CPU computes
bf16 natively and the output stays within its fidelity bar): OpenVINO's CPU plugin would
otherwise choose bf16 by itself on CPUs that have it, so the precision is always set explicitly
(`INFERENCE_PRECISION_HINT`). The compiled forms (which input shape runs on which) and their
blobs in the user cache, which let later runs skip reading and compiling the graph, are
`ov_compiled.py`'s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cyclegan_tool.conventions import value_range_of
from cyclegan_tool.errors import BackendError, MissingDependencyError
from cyclegan_tool.onnx_metadata import min_side_of
from cyclegan_tool.runtime.base import Backend, ModelInfo
from cyclegan_tool.runtime.ov_compiled import CompiledForms
from cyclegan_tool.specs import GeneratorSpec


def onnx_metadata(path: Path) -> dict:
    """Our metadata of an ONNX file (its graph not parsed: OpenVINO reads that itself)."""
    from cyclegan_tool.onnx_metadata import read_metadata_file, require

    return require(read_metadata_file(path), path)


# Peak memory of one pass per input pixel and ngf (bench/memory_bench.py: ResNet-9 ngf64 took 650
# bytes per pixel computing in FP32 and 360 in bf16).
BYTES_PER_PIXEL_PER_NGF = {"graph": 10.5, "bf16": 6.0}


class OpenVINOBackend(Backend):
    name = "openvino"

    def __init__(self, path: str | Path, *, threads: int = 0, compute: str = "graph"):
        """`compute`: "graph" (the graph's own precision) or "bf16" (resolved by the planner)."""
        super().__init__()
        if compute not in ("graph", "bf16"):
            raise BackendError(f"OpenVINO compute precision must be 'graph' or 'bf16', not '{compute}'")
        self.path, self.threads, self.compute = Path(path), threads, compute

    def _open(self) -> ModelInfo:
        try:
            import openvino as ov
        except ImportError:
            raise MissingDependencyError("openvino", "--backend openvino") from None
        if not self.path.is_file():
            raise BackendError(f"{self.path}: no such file")
        meta = onnx_metadata(self.path)
        precision = meta.get("precision", "fp32")
        config = {"PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "bf16" if self.compute == "bf16" else
                  "f16" if precision == "fp16" else "f32"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        # Each form compiled (or imported from the cache) on first use (ov_compiled.py); a model
        # OpenVINO cannot read is refused now, once, not at every file.
        self.forms = CompiledForms(self.path, config, fold=precision != "int8")
        if not self.forms.cached():
            try:
                self.forms.read()
            except Exception as e:
                from cyclegan_tool.errors import ModelUnusable
                from cyclegan_tool.runtime.ov_compiled import reason

                raise ModelUnusable(f"{self.path}: OpenVINO cannot read it ({reason(e)})") from None
        # Our FP16 graphs take and give float16 (export/fp16.py); every other graph float32.
        self.np_dtype = np.float16 if precision == "fp16" else np.float32
        self.version = ov.__version__.split("-")[0]
        return ModelInfo(spec=GeneratorSpec.from_dict(meta["generator"]), direction=meta["direction"],
                         precision=precision, pad_multiple=int(meta["pad_multiple"]), min_side=min_side_of(meta),
                         source=str(self.path),
                         bytes_per_pixel=BYTES_PER_PIXEL_PER_NGF[self.compute] * meta["generator"].get("ngf", 64),
                         input_dtype="float16" if self.np_dtype == np.float16 else "float32",
                         value_range=value_range_of(meta.get("conventions")),
                         norm_stats=meta.get("norm_stats"),
                         extra={"runtime": f"OpenVINO {self.version}", "metadata": meta,
                                "compute": "bf16" if self.compute == "bf16" else precision})

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(x.astype(self.np_dtype, copy=False))
        out = self.forms.request(feed.shape).infer({0: feed})[0]
        return np.array(out, dtype=np.float32)

    def _close(self) -> None:
        self.forms.close()
        self.forms = None

    def describe(self) -> str:
        if not self.info:
            return super().describe()
        compute = self.info.extra["compute"]
        graph = "" if compute == self.info.precision else f" graph computed in {compute}"
        return f"openvino {self.info.precision}{graph} on cpu"
