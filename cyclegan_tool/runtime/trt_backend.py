"""TensorRT / TensorRT for RTX backend: a `.plan` with its sidecar. NumPy arrays in and out;
inside, the batch lives in torch CUDA tensors on the current stream (torch is this backend's
CUDA memory manager, imported only when an engine runs), input shapes set per batch,
`execute_async_v3`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cyclegan_tool import sidecar, trt_libs
from cyclegan_tool.conventions import value_range_of
from cyclegan_tool.errors import BackendError
from cyclegan_tool.runtime.base import Backend, ModelInfo
from cyclegan_tool.specs import GeneratorSpec


def check_compatible(info: dict, lib: trt_libs.TrtLib, gpu: dict | None, plan: Path) -> None:
    """A clear error if the engine was built for another library version or GPU."""
    built = info["library"]
    if lib.version != built["version"]:
        raise BackendError(f"{plan}: built with {built['name']} {built['version']} but {lib.version} is "
                           "installed; engines only run on the version that built them (re-run export)")
    if gpu is None:
        raise BackendError(f"{plan}: TensorRT engines need an NVIDIA GPU and a CUDA build of PyTorch; on this "
                           "machine convert with the .onnx file (ONNX Runtime) instead")
    cc = gpu["compute_capability"]
    targets = [t for t in info.get("target_compute_capabilities", []) if t[0].isdigit()]
    if targets and cc not in targets:
        raise BackendError(f"{plan}: built for compute capability {', '.join(targets)}, but this GPU "
                           f"({gpu['name']}) is {cc}; rebuild it on or for this GPU")


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, path: str | Path, *, device: str = "cuda:0"):
        """`device`: "cuda:N" (resolved by the planner)."""
        super().__init__()
        self.path, self.device = Path(path), device

    def _open(self) -> ModelInfo:
        from cyclegan_tool.devices import cuda_gpu

        if not self.path.is_file():
            raise BackendError(f"{self.path}: no such file")
        info = sidecar.read(self.path)
        lib = trt_libs.load(info["library"]["key"], what=f"{sidecar.path_for(self.path)}: library key")
        gpu = cuda_gpu()
        check_compatible(info, lib, gpu, self.path)
        import torch

        self.torch = torch
        torch.cuda.set_device(torch.device(self.device))
        trt = lib.module
        self.lib = lib
        self.runtime = trt.Runtime(lib.logger())
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise BackendError(f"{self.path}: {lib.name} could not deserialize the engine")
        self.context = self.engine.create_execution_context()
        io = info["io"]
        self.input_name, self.output_name = io["input"], io["output"]
        dtypes = {"float16": torch.float16, "float32": torch.float32}
        self.in_dtype = dtypes[io["dtype"]]
        self.out_dtype = dtypes[io.get("output_dtype", io["dtype"])]
        return ModelInfo(spec=GeneratorSpec.from_dict(info["generator"]), direction=info["direction"],
                         precision=info["precision"], pad_multiple=int(info["pad_multiple"]),
                         min_side=int(info.get("min_side", 8)), source=str(self.path),
                         value_range=value_range_of(info.get("conventions")), **sidecar.limits(info),
                         extra={"library": f"{lib.name} {lib.version}", "sidecar": info})

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        t = torch.from_numpy(x).to(self.device, dtype=self.in_dtype, non_blocking=True).contiguous()
        out = torch.empty((t.shape[0], self.info.spec.output_nc, *t.shape[2:]), dtype=self.out_dtype,
                          device=self.device)
        if not self.context.set_input_shape(self.input_name, tuple(t.shape)):
            raise BackendError(f"{self.path}: the engine rejects input shape {tuple(t.shape)}")
        self.context.set_tensor_address(self.input_name, t.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        stream = torch.cuda.current_stream(torch.device(self.device))
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise BackendError(f"{self.path}: execute_async_v3 failed")
        return out.float().cpu().numpy()

    def _close(self) -> None:
        self.context = self.engine = self.runtime = None  # releases the engine's GPU memory
        if getattr(self, "torch", None) is not None:
            self.torch.cuda.empty_cache()

    def describe(self) -> str:
        return f"{self.info.extra['library']} {self.info.precision} on {self.device}" if self.info else super().describe()
