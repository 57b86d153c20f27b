"""ONNX Runtime backend: the CPU provider, or the CUDA provider on `cuda:N`, with a check that
the provider asked for is the one running (ONNX Runtime would fall back to the CPU in silence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cyclegan_tool.conventions import value_range_of
from cyclegan_tool.errors import BackendError, MissingDependencyError
from cyclegan_tool.onnx_metadata import from_map, min_side_of, require
from cyclegan_tool.runtime.base import Backend, ModelInfo
from cyclegan_tool.specs import GeneratorSpec

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
BYTES_PER_PIXEL_PER_NGF = 23.0  # peak memory of one pass (bench/memory_bench.py: ResNet-9 ngf64, 1.45 KB/px)


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: str | Path, *, device: str = "cpu", threads: int = 0):
        """`device`: "cpu" or "cuda:N" (resolved by the planner)."""
        super().__init__()
        self.path, self.device, self.threads = Path(path), device, threads

    def _open(self) -> ModelInfo:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "Running .onnx models") from None
        if not self.path.is_file():
            raise BackendError(f"{self.path}: no such file")
        want_cuda = self.device.startswith("cuda")
        if want_cuda and CUDA not in ort.get_available_providers():
            raise BackendError(f"{self.device}: this ONNX Runtime has no CUDA provider (install onnxruntime-gpu)")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        index = int(self.device.split(":")[1]) if ":" in self.device else 0
        providers = [(CUDA, {"device_id": index})] if want_cuda else [CPU]
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as e:
            raise BackendError(f"{self.path}: ONNX Runtime cannot load it ({str(e).splitlines()[0]})") from None
        running = self.session.get_providers()[0]
        if running != (CUDA if want_cuda else CPU):
            raise BackendError(f"{self.path}: asked ONNX Runtime for {CUDA if want_cuda else CPU} but it runs {running}")
        meta = require(from_map(self.session.get_modelmeta().custom_metadata_map), self.path)
        inp = self.session.get_inputs()[0]
        self.input_name, self.output_name = inp.name, self.session.get_outputs()[0].name
        self.np_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        return ModelInfo(spec=GeneratorSpec.from_dict(meta["generator"]), direction=meta["direction"],
                         precision=meta.get("precision", "fp32"), pad_multiple=int(meta["pad_multiple"]),
                         min_side=min_side_of(meta), source=str(self.path),
                         bytes_per_pixel=BYTES_PER_PIXEL_PER_NGF * meta["generator"].get("ngf", 64),
                         input_dtype="float16" if self.np_dtype == np.float16 else "float32",
                         value_range=value_range_of(meta.get("conventions")),
                         norm_stats=meta.get("norm_stats"), extra={"provider": running, "metadata": meta})

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: x.astype(self.np_dtype, copy=False)})[0]
        return out.astype(np.float32, copy=False)

    def _close(self) -> None:
        self.session = None  # the session owns the model's memory (and its GPU memory on CUDA)

    def describe(self) -> str:
        return f"onnxruntime {self.info.extra['provider']} ({self.info.precision})" if self.info else super().describe()
