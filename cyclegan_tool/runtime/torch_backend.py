"""PyTorch backend: our checkpoints and reference `.pth` files; CUDA FP16/FP32, CPU FP32, or FP32
weights under bf16 autocast (`precision="bf16"`, for CPUs with native bf16)."""

from __future__ import annotations

from pathlib import Path

import torch

from cyclegan_tool import checkpoints
from cyclegan_tool.devices import resolve_device
from cyclegan_tool.errors import BackendError
from cyclegan_tool.models import GeneratorSpec, pad_multiple, value_range
from cyclegan_tool.runtime.base import Backend, ModelInfo


class TorchBackend(Backend):
    name = "pytorch"

    def __init__(self, path: str | Path, *, device: str = "auto", precision: str = "auto",
                 direction: str | None = None, spec: GeneratorSpec | None = None,
                 channels_last: bool | None = None, ops: str = "auto"):
        super().__init__()
        self.ops = ops
        self.path, self.direction, self.spec = Path(path), direction, spec
        self.device_name, self.precision, self.channels_last = device, precision, channels_last

    def _open(self) -> ModelInfo:
        self.device = resolve_device(self.device_name)
        precision = self.precision
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        if precision == "fp16" and self.device.type != "cuda":
            raise BackendError("FP16 PyTorch inference needs a CUDA device; use --precision fp32 on the CPU")
        if precision not in ("fp16", "fp32", "bf16"):
            raise BackendError(f"precision must be fp16, fp32 or bf16, not '{precision}'")
        self.autocast = precision == "bf16"  # FP32 weights, convolutions in bf16 (autocast's choice of ops)
        loaded = checkpoints.load_generator(self.path, direction=self.direction, spec=self.spec)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        cl = self.device.type == "cuda" if self.channels_last is None else self.channels_last
        self.memory_format = torch.channels_last if cl else torch.contiguous_format
        from cyclegan_tool.ops import apply_ops

        net = apply_ops(loaded.net, self.ops, self.device)
        self.net = net.to(self.device, dtype=self.dtype, memory_format=self.memory_format).eval()
        if precision == "fp16":
            # Instance norm in FP32 inside an FP16 network, as in the exported engines.
            from cyclegan_tool.runtime.fp32_norm import keep_norms_fp32

            keep_norms_fp32(self.net)
        return ModelInfo(spec=loaded.spec, direction=loaded.direction, precision=precision,
                         pad_multiple=pad_multiple(loaded.spec), source=str(self.path),
                         input_dtype="float16" if precision == "fp16" else "float32",
                         value_range=value_range(loaded.spec), extra={"origin": loaded.origin, "epoch": loaded.epoch, "channels_last": cl})

    def _infer_impl(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, dtype=self.dtype, non_blocking=True).contiguous(memory_format=self.memory_format)
        if self.autocast:
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return self.net(x).float()
        return self.net(x).float()

    def _close(self) -> None:
        self.net = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def describe(self) -> str:
        return f"pytorch {self.info.precision} on {self.device}" if self.info else super().describe()
