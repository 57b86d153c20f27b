"""Pick the backend for a model file and this machine, and say why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from cyclegan_tool.devices import resolve_device
from cyclegan_tool.errors import ConfigError
from cyclegan_tool.models import GeneratorSpec
from cyclegan_tool.runtime.base import Backend

BACKENDS = ("auto", "tensorrt", "onnxruntime", "openvino", "pytorch")
PRECISIONS = ("auto", "fp16", "fp32", "bf16")  # bf16 on a CPU: PyTorch autocast, or OpenVINO for ONNX
KIND_BY_SUFFIX = {".plan": "tensorrt", ".engine": "tensorrt", ".onnx": "onnxruntime",
                  ".pt": "pytorch", ".pth": "pytorch"}


def make_backend(path: str | Path, *, backend: str = "auto", device: str = "auto", precision: str = "auto",
                 direction: str | None = None, spec: GeneratorSpec | None = None,
                 sample: Callable[[Backend], torch.Tensor | None] | None = None,
                 int8_form: Path | None = None, calibration: list[Path] | None = None) -> tuple[Backend, str]:
    """A backend for `path` and one line saying what was chosen and why.

    An ONNX model on the CPU with `backend="auto"` runs on the runtime measured fastest here
    (runtime/autotune.py): `sample(reference_backend)` gives the input to measure on when no
    measurement is cached (None: no measurement, ONNX Runtime unless one is cached).
    `int8_form`: the model's calibrated int8 file (shipped models), a candidate there too
    unless a precision is asked for. `calibration`: images of a large run to make a
    checkpoint's int8 form from (`derived.calibration_from`)."""
    path = Path(path)
    kind = KIND_BY_SUFFIX.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"{path}: unknown model type '{path.suffix}' (use .plan, .onnx, .pt or .pth)")
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, not '{precision}'")
    if backend == "openvino" and kind == "onnxruntime":  # the other runtime for ONNX files, CPU only
        from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

        return OpenVINOBackend(path, device=device), f"{path.name}: ONNX model -> openvino on CPU (asked for)"
    if backend != "auto" and backend != kind:
        raise ConfigError(f"--backend {backend} cannot run {path.name}; a {path.suffix} file runs on {kind}")
    where = "CUDA" if resolve_device(device).type == "cuda" else "CPU"
    tune_on_cpu = backend == "auto" and where == "CPU" and device in ("auto", "cpu")  # runtime/autotune.py
    if kind == "tensorrt":
        from cyclegan_tool.runtime.trt_backend import TensorRTBackend

        return TensorRTBackend(path, device=device), f"{path.name}: TensorRT engine -> tensorrt backend"
    if kind == "onnxruntime" and tune_on_cpu and precision == "bf16":  # on a CPU, bf16 arithmetic is OpenVINO's
        from cyclegan_tool.runtime import autotune

        if not autotune.openvino_version():
            raise ConfigError(f"{path.name}: --precision bf16 for an ONNX model needs OpenVINO (pip install openvino)")
        from cyclegan_tool.runtime.ov_backend import OpenVINOBackend

        return (OpenVINOBackend(path, device=device, compute="bf16"),
                f"{path.name}: ONNX model -> openvino computing in bf16 on CPU (asked for)")
    if kind == "onnxruntime" and tune_on_cpu:
        from cyclegan_tool.runtime import autotune, derived

        # The cache key holds the candidates' names; `variant` adds what they do not say.
        found, variant = autotune.onnx_candidates(path, device, fp32_only=precision == "fp32"), ""
        if int8_form and precision == "auto":
            found += autotune.onnx_candidates(int8_form, device, tag="int8-")
            variant = f"|int8 {derived.file_digest(int8_form)[:16]}"
        be, how = autotune.choose(found, path, sample, variant=variant)
        if int8_form and getattr(be, "path", None) == int8_form:
            how += f"; the model's int8 form {int8_form.name} (`--precision fp32` for the FP32 graph)"
        return be, f"{path.name}: ONNX model on CPU -> {how}{autotune.openvino_hint()}"
    if kind == "onnxruntime":
        from cyclegan_tool.runtime.ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, device=device), f"{path.name}: ONNX model -> onnxruntime on {where}"
    if tune_on_cpu and precision == "auto":
        from cyclegan_tool.runtime import autotune, derived

        found = autotune.torch_candidates(path, device, direction=direction, spec=spec, calibration=calibration)
        int8 = any(c.key.startswith("int8-") for c in found)
        be, how = autotune.choose(found, path, sample, variant=f"|{direction or 'default'}|{spec}")
        if int8 and getattr(be, "path", None) == derived.int8_onnx_path(path, direction, spec):
            how += f"; {derived.describe_int8(be.path)} (`--precision fp32` or `bf16` to run without it)"
        return be, f"{path.name}: PyTorch weights on CPU -> {how}{autotune.openvino_hint()}"
    from cyclegan_tool.runtime.torch_backend import TorchBackend

    return (TorchBackend(path, device=device, precision=precision, direction=direction, spec=spec),
            f"{path.name}: PyTorch weights -> pytorch on {where}")
