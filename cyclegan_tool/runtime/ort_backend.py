"""ONNX Runtime backend: the CUDA provider where available, the CPU provider otherwise,
and a check that the provider asked for is the one running."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cyclegan_tool.devices import resolve_device
from cyclegan_tool.errors import BackendError, MissingDependencyError
from cyclegan_tool.conventions import value_range_of
from cyclegan_tool.models import GeneratorSpec
from cyclegan_tool.onnx_metadata import from_map, require
from cyclegan_tool.runtime.base import Backend, ModelInfo

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: str | Path, *, device: str = "auto", threads: int = 0):
        super().__init__()
        self.path, self.device_name, self.threads = Path(path), device, threads

    def _open(self) -> ModelInfo:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "Running .onnx models") from None
        if not self.path.is_file():
            raise BackendError(f"{self.path}: no such file")
        available = ort.get_available_providers()
        if self.device_name == "auto":  # the GPU only where this ONNX Runtime can use it
            self.device = resolve_device("auto" if CUDA in available else "cpu")
        else:
            self.device = resolve_device(self.device_name)
        want_cuda = self.device.type == "cuda"
        if want_cuda and CUDA not in available:
            raise BackendError(f"--device {self.device_name}: this ONNX Runtime has no CUDA provider "
                               f"(it has {', '.join(available)}); install onnxruntime-gpu or use --device cpu")
        provider = CUDA if want_cuda else CPU
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        providers = [(CUDA, {"device_id": self.device.index or 0})] if want_cuda else [CPU]
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as e:
            raise BackendError(f"{self.path}: ONNX Runtime cannot load it ({str(e).splitlines()[0]})") from None
        running = self.session.get_providers()[0]
        if running != provider:
            raise BackendError(f"asked ONNX Runtime for {provider} but it runs {running}")
        meta = require(from_map(self.session.get_modelmeta().custom_metadata_map), self.path)
        inp = self.session.get_inputs()[0]
        self.input_name, self.output_name = inp.name, self.session.get_outputs()[0].name
        self.np_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        return ModelInfo(spec=GeneratorSpec.from_dict(meta["generator"]), direction=meta["direction"],
                         precision=meta.get("precision", "fp32"), pad_multiple=int(meta["pad_multiple"]),
                         source=str(self.path), input_dtype="float16" if self.np_dtype == np.float16 else "float32",
                         value_range=value_range_of(meta.get("conventions")), extra={"provider": running, "metadata": meta})

    def _infer_impl(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            return self._infer_cuda(x)
        feed = x.detach().cpu().numpy().astype(self.np_dtype, copy=False)
        out = self.session.run([self.output_name], {self.input_name: feed})[0]
        return torch.from_numpy(out.astype(np.float32, copy=False))

    def _infer_cuda(self, x: torch.Tensor) -> torch.Tensor:
        dtype = torch.float16 if self.np_dtype == np.float16 else torch.float32
        x = x.to(self.device, dtype=dtype).contiguous()
        out = torch.empty_like(x)
        binding = self.session.io_binding()
        kind = np.float16 if dtype == torch.float16 else np.float32
        binding.bind_input(self.input_name, "cuda", self.device.index or 0, kind, tuple(x.shape), x.data_ptr())
        binding.bind_output(self.output_name, "cuda", self.device.index or 0, kind, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        return out.float()

    def _close(self) -> None:
        self.session = None  # the session owns the model's memory (and its GPU memory on CUDA)

    def describe(self) -> str:
        return f"onnxruntime {self.info.extra['provider']} ({self.info.precision})" if self.info else super().describe()
