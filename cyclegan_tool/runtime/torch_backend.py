"""PyTorch backend: our checkpoints and reference `.pth` files, in FP32, FP16 (CUDA) or FP32
weights under bf16 autocast; the planner (runtime/plan.py) resolves device and precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cyclegan_tool.errors import BackendError
from cyclegan_tool.runtime.base import Backend, ModelInfo
from cyclegan_tool.specs import GeneratorSpec


# Peak memory of one pass per input pixel and ngf (bench/memory_bench.py: ResNet-9 ngf64, 910 bytes
# per pixel in FP32).
BYTES_PER_PIXEL_PER_NGF = {"fp32": 14.5, "bf16": 10.0, "fp16": 7.5}


class TorchBackend(Backend):
    name = "pytorch"

    def __init__(self, path: str | Path, *, device: str = "cpu", precision: str = "fp32",
                 direction: str | None = None, spec: GeneratorSpec | None = None,
                 channels_last: bool | None = None, ops: str = "auto", norm_stats: str = "auto"):
        """`device`: "cpu" or "cuda:N"; `precision`: fp32, fp16 (CUDA) or bf16 (autocast)."""
        super().__init__()
        if precision not in ("fp16", "fp32", "bf16"):
            raise BackendError(f"precision must be fp16, fp32 or bf16, not '{precision}'")
        self.ops, self.norm_stats = ops, norm_stats
        self.path, self.direction, self.spec = Path(path), direction, spec
        self.device, self.precision, self.channels_last = device, precision, channels_last

    def _open(self) -> ModelInfo:
        import torch

        from cyclegan_tool import checkpoints
        from cyclegan_tool.models import min_side, pad_multiple, value_range

        self.torch_device = torch.device(self.device)
        if self.precision == "fp16" and self.torch_device.type != "cuda":
            raise BackendError("FP16 PyTorch inference needs a CUDA device; use --precision fp32 on the CPU")
        self.autocast = self.precision == "bf16"  # FP32 weights, convolutions in bf16 (autocast's choice of ops)
        loaded = checkpoints.load_generator(self.path, direction=self.direction, spec=self.spec,
                                            norm_stats=self.norm_stats)
        self.dtype = torch.float16 if self.precision == "fp16" else torch.float32
        cl = self.torch_device.type == "cuda" if self.channels_last is None else self.channels_last
        self.memory_format = torch.channels_last if cl else torch.contiguous_format
        from cyclegan_tool.ops import apply_ops

        net = apply_ops(loaded.net, self.ops, self.torch_device)
        self.net = net.to(self.torch_device, dtype=self.dtype, memory_format=self.memory_format).eval()
        if self.precision == "fp16":
            # Instance norm in FP32 inside an FP16 network, as in the exported engines.
            from cyclegan_tool.runtime.fp32_norm import keep_norms_fp32

            keep_norms_fp32(self.net)
        return ModelInfo(spec=loaded.spec, direction=loaded.direction, precision=self.precision,
                         pad_multiple=pad_multiple(loaded.spec), min_side=min_side(loaded.spec), source=str(self.path),
                         bytes_per_pixel=BYTES_PER_PIXEL_PER_NGF[self.precision] * loaded.spec.ngf,
                         input_dtype="float16" if self.precision == "fp16" else "float32",
                         value_range=value_range(loaded.spec), norm_stats=loaded.norm_stats,
                         extra={"origin": loaded.origin, "epoch": loaded.epoch, "channels_last": cl,
                                "norm_stats": loaded.norm_stats})

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        import torch

        t = torch.from_numpy(x).to(self.torch_device, dtype=self.dtype, non_blocking=True)
        t = t.contiguous(memory_format=self.memory_format)
        with torch.no_grad():
            if self.autocast:
                with torch.autocast(self.torch_device.type, dtype=torch.bfloat16):
                    return self.net(t).float().cpu().numpy()
            return self.net(t).float().cpu().numpy()

    def _close(self) -> None:
        self.net = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def describe(self) -> str:
        return f"pytorch {self.info.precision} on {self.device}" if self.info else super().describe()
