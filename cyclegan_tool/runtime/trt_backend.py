"""TensorRT / TensorRT for RTX backend: a `.plan` with its sidecar, torch CUDA tensors as
I/O on the current stream, input shapes set per batch, `execute_async_v3`."""

from __future__ import annotations

from pathlib import Path

import torch

from cyclegan_tool.devices import cuda_count, resolve_device
from cyclegan_tool.errors import BackendError
from cyclegan_tool.export import sidecar, trt_libs
from cyclegan_tool.conventions import value_range_of
from cyclegan_tool.models import GeneratorSpec
from cyclegan_tool.runtime.base import Backend, ModelInfo

TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32}


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

    def __init__(self, path: str | Path, *, device: str = "auto"):
        super().__init__()
        if device == "cpu":
            raise BackendError(f"{Path(path).name}: a TensorRT engine runs only on an NVIDIA GPU, not with --device "
                               "cpu; convert with the .onnx file instead")
        self.path, self.device_name = Path(path), device

    def _open(self) -> ModelInfo:
        if not self.path.is_file():
            raise BackendError(f"{self.path}: no such file")
        info = sidecar.read(self.path)
        lib = trt_libs.load(info["library"]["key"])
        if cuda_count():
            self.device = resolve_device("cuda" if self.device_name == "auto" else self.device_name)
            torch.cuda.set_device(self.device)
        check_compatible(info, lib, sidecar.current_gpu(), self.path)
        trt = lib.module
        self.lib = lib
        self.runtime = trt.Runtime(lib.logger())
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise BackendError(f"{self.path}: {lib.name} could not deserialize the engine")
        self.context = self.engine.create_execution_context()
        io = info["io"]
        self.input_name, self.output_name = io["input"], io["output"]
        self.in_dtype = TORCH_DTYPES[io["dtype"]]
        self.out_dtype = TORCH_DTYPES[io.get("output_dtype", io["dtype"])]
        return ModelInfo(spec=GeneratorSpec.from_dict(info["generator"]), direction=info["direction"],
                         precision=info["precision"], pad_multiple=int(info["pad_multiple"]), source=str(self.path),
                         value_range=value_range_of(info.get("conventions")), **sidecar.limits(info), extra={"library": f"{lib.name} {lib.version}", "sidecar": info})

    def _infer_impl(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, dtype=self.in_dtype, non_blocking=True).contiguous()
        out_shape = (x.shape[0], self.info.spec.output_nc, *x.shape[2:])
        out = torch.empty(out_shape, dtype=self.out_dtype, device=self.device)
        if not self.context.set_input_shape(self.input_name, tuple(x.shape)):
            raise BackendError(f"{self.path}: the engine rejects input shape {tuple(x.shape)}")
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise BackendError(f"{self.path}: execute_async_v3 failed")
        return out.float()

    def _close(self) -> None:
        self.context = self.engine = self.runtime = None  # releases the engine's GPU memory
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def describe(self) -> str:
        return f"{self.info.extra['library']} {self.info.precision} on {self.device}" if self.info else super().describe()
