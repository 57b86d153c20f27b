"""A backend for one resolved way of running a model (`plan.Option`): the only place that
turns an option into a backend object."""

from __future__ import annotations

from pathlib import Path

from cyclegan_tool.runtime.base import Backend
from cyclegan_tool.runtime.plan import Option


def backend_for(option: Option, path: Path, device: str, *, direction: str | None = None, spec=None,
                norm_stats: str = "auto") -> Backend:
    """`path` is the file of `option.form` (the model itself, or its derived ONNX form)."""
    if option.runtime == "tensorrt":
        from cyclegan_tool.runtime.trt_backend import TensorRTBackend

        return TensorRTBackend(path, device=device)
    if option.runtime == "onnxruntime":
        from cyclegan_tool.runtime.ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, device=device)
    if option.runtime == "openvino":
        from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

        return OpenVINOBackend(path, compute="bf16" if option.compute in ("bf16", "int8-bf16") else "graph")
    from cyclegan_tool.runtime.torch_backend import TorchBackend

    return TorchBackend(path, device=device, precision=option.compute, direction=direction, spec=spec,
                        norm_stats=norm_stats)
