"""What this machine has, as far as the planner (runtime/plan.py) needs it: GPUs, which
runtimes are installed and what they can do, the CPU's bf16 and int8 support. Read without importing
torch or a runtime that the run does not need: an NVIDIA GPU from the driver's files, OpenVINO
from its package metadata, ONNX Runtime's and torch's CUDA support only where a GPU is present."""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Facts:
    gpus: int = 0  # NVIDIA GPUs the driver shows
    ort_cuda: bool = False  # ONNX Runtime has its CUDA provider
    torch_cuda: bool = False  # torch is a CUDA build that sees a GPU
    openvino: str | None = None  # OpenVINO's version where it is installed
    native_bf16: bool = False  # the CPU computes bf16 natively (AVX512-BF16 or AMX)
    native_int8: bool = False  # the CPU has int8 dot products (VNNI or AMX)
    cpu: str = "cpu"

    def describe(self) -> str:
        return (f"{self.cpu}, native bf16 {'yes' if self.native_bf16 else 'no'}, native int8 "
                f"{'yes' if self.native_int8 else 'no'}, OpenVINO {self.openvino or 'absent'}, "
                f"{self.gpus} NVIDIA GPU(s)")


def package_version(name: str) -> str | None:
    """An installed distribution's version (None where it is missing or cannot be imported)."""
    module = {"openvino": "openvino", "onnxruntime": "onnxruntime"}.get(name, name)
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(name).split("-")[0]
    except importlib.metadata.PackageNotFoundError:
        return None


def gather(kind: str) -> Facts:
    """This machine's facts for a model of `kind` ("onnx", "checkpoint" or "engine")."""
    from cyclegan_tool.devices import cpu_has_native_bf16, cpu_has_native_int8, cpu_model, nvidia_gpu_present

    gpus = (len(glob.glob("/proc/driver/nvidia/gpus/*")) or 1) if nvidia_gpu_present() else 0
    ort_cuda = torch_cuda = False
    if gpus and kind == "onnx":
        import onnxruntime

        ort_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    if gpus and kind == "checkpoint":
        import torch

        torch_cuda = torch.cuda.is_available()
    return Facts(gpus=gpus, ort_cuda=ort_cuda, torch_cuda=torch_cuda, openvino=package_version("openvino"),
                 native_bf16=cpu_has_native_bf16(), native_int8=cpu_has_native_int8(), cpu=cpu_model())
