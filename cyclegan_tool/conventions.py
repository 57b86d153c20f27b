"""The one owner of tensor conventions.

Images enter the networks as `Tensor[N, 3, H, W]`, float32, RGB, in [-1, 1]
(x / 255 - 0.5) / 0.5, exactly as the reference implementation normalises them, and
leave them in the same range; `padded_size` says what H and W a network is fed. Every
conversion between pixels and tensors goes through this module. (Padding, cropping and
resizing images are in runtime/translate.py; how each file mode becomes RGB is imageio.py.)
"""

from __future__ import annotations

import numpy as np
import torch

VALUE_RANGE = (-1.0, 1.0)
LAYOUT = "NCHW"
COLOR = "RGB"


def array_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """`uint8 or uint16 [H, W, 3]` -> `Tensor[3, H, W]` float32 in [-1, 1]."""
    scale = 65535.0 if rgb.dtype == np.uint16 else 255.0
    rgb = rgb if rgb.flags.writeable and rgb.flags.c_contiguous else np.array(rgb)
    t = torch.from_numpy(rgb).permute(2, 0, 1).float()
    return t.div_(scale / 2.0).sub_(1.0)


def tensor_to_array(t: torch.Tensor) -> np.ndarray:
    """`Tensor[3, H, W]` in [-1, 1] (any float dtype, any device) -> `uint8 [H, W, 3]`, rounded."""
    t = t.detach().float().clamp_(-1.0, 1.0).add_(1.0).mul_(127.5).round_()
    return t.to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def batch_to_arrays(t: torch.Tensor) -> list[np.ndarray]:
    """`Tensor[N, 3, H, W]` in [-1, 1] -> N arrays `uint8 [H, W, 3]` (one device->host copy)."""
    t = t.detach().float().clamp(-1.0, 1.0).add_(1.0).mul_(127.5).round_().to(torch.uint8)
    host = t.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return list(host)


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The smallest (H, W) at least as large that both divide by `multiple`."""
    return (-(-height // multiple) * multiple, -(-width // multiple) * multiple)


def describe() -> dict:
    """The conventions as written into every artifact (checkpoints, ONNX metadata, sidecars)."""
    return {
        "layout": LAYOUT,
        "color": COLOR,
        "value_range": list(VALUE_RANGE),
        "normalize": "x / 255 * 2 - 1",
        "denormalize": "(y + 1) / 2 * 255",
    }
