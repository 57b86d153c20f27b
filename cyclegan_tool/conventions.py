"""The one owner of tensor conventions.

Images enter the networks as `Tensor[N, C, H, W]`, float32, C = 3 (RGB) or 1 (luma), in
[-1, 1] (x / 255 - 0.5) / 0.5, exactly as the reference implementation normalises them, and
leave them in the same range (the Keras chapter's networks use [0, 1]: a model's range is in
its metadata); `padded_size` says what H and W a network is fed. Every
conversion between pixels and tensors goes through this module. (Padding, cropping and
resizing images are in runtime/translate.py; how each file mode becomes RGB is imageio.py.)
"""

from __future__ import annotations

import numpy as np

VALUE_RANGE = (-1.0, 1.0)  # the paper's networks (tanh); the Keras chapter's (sigmoid) use (0, 1)
LAYOUT = "NCHW"
COLOR = "RGB"


def luma(pixels: np.ndarray) -> np.ndarray:
    """`[H, W, 3]` uint8/uint16 RGB -> `[H, W, 1]` of the same dtype: ITU-R 601-2 luma with
    PIL's integer rounding (`Image.convert("L")`), so a gray image replicated to RGB comes back
    unchanged. This is how a 1-channel model reads a color image, as the reference's loader does."""
    rgb = pixels.astype(np.uint64)
    y = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 32768) >> 16
    return y.astype(pixels.dtype)[..., None]


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """`[H, W]`, `[H, W, 1]` or `[H, W, 3]` -> `[H, W, channels]` (1: luma; 3: gray replicated)."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    have = pixels.shape[-1]
    if have == channels:
        return pixels
    if channels == 1 and have == 3:
        return luma(pixels)
    if channels == 3 and have == 1:
        return np.repeat(pixels, 3, axis=2)
    raise ValueError(f"cannot turn {have}-channel pixels into {channels} channels")


def pixels_to_network(pixels: np.ndarray, *, channels: int | None = None,
                      value_range: tuple[float, float] = VALUE_RANGE) -> np.ndarray:
    """`uint8 or uint16 [H, W, C]` (or `[H, W]`) -> float32 `[channels, H, W]` in `value_range`
    (C by default; see `to_channels`)."""
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    if channels is not None or pixels.ndim == 2:
        pixels = to_channels(pixels, channels or 1)
    lo, hi = value_range
    x = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    x /= np.float32(scale / (hi - lo))
    x += np.float32(lo)
    return x


def network_to_pixels(y: np.ndarray, value_range: tuple[float, float] = VALUE_RANGE) -> np.ndarray:
    """float `[C, H, W]` in `value_range` -> `uint8 [H, W, C]`, clamped and rounded half to even
    (as torch's `round`)."""
    lo, hi = value_range
    y = np.clip(np.asarray(y, dtype=np.float32), lo, hi) - np.float32(lo)
    y *= np.float32(255.0 / (hi - lo))
    return np.rint(y).astype(np.uint8).transpose(1, 2, 0)


# The same conventions on torch tensors, for training and the PyTorch paths (torch imported here only).
def array_to_tensor(pixels: np.ndarray, *, channels: int | None = None, value_range: tuple[float, float] = VALUE_RANGE):
    """`uint8 or uint16 [H, W, C]` (or `[H, W]`) -> `Tensor[channels, H, W]` float32 in `value_range`."""
    import torch

    return torch.from_numpy(pixels_to_network(pixels, channels=channels, value_range=value_range))


def _to_uint8(t, value_range: tuple[float, float]):
    import torch

    lo, hi = value_range
    return t.detach().float().clamp(lo, hi).sub_(lo).mul_(255.0 / (hi - lo)).round_().to(torch.uint8)


def tensor_to_array(t, value_range: tuple[float, float] = VALUE_RANGE) -> np.ndarray:
    """`Tensor[C, H, W]` in `value_range` (any float dtype, any device) -> `uint8 [H, W, C]`, rounded."""
    return _to_uint8(t, value_range).permute(1, 2, 0).cpu().numpy()


def batch_to_arrays(t, value_range: tuple[float, float] = VALUE_RANGE) -> list[np.ndarray]:
    """`Tensor[N, C, H, W]` in `value_range` -> N arrays `uint8 [H, W, C]` (one device->host copy)."""
    host = _to_uint8(t, value_range).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return list(host)


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The smallest (H, W) at least as large that both divide by `multiple`."""
    return (-(-height // multiple) * multiple, -(-width // multiple) * multiple)


def describe(value_range: tuple[float, float] = VALUE_RANGE) -> dict:
    """The conventions as written into every artifact (checkpoints, ONNX metadata, sidecars).
    Channels: 3 is RGB, 1 is luma (ITU-R 601-2); the counts are in the generator spec."""
    lo, hi = value_range
    known = {(-1.0, 1.0): ("x / 255 * 2 - 1", "(y + 1) / 2 * 255"), (0.0, 1.0): ("x / 255", "y * 255")}
    normalize, denormalize = known.get((lo, hi), (f"x / 255 * {hi - lo:g} + {lo:g}", f"(y - {lo:g}) / {hi - lo:g} * 255"))
    return {
        "layout": LAYOUT,
        "color": COLOR,
        "value_range": [lo, hi],
        "normalize": normalize,
        "denormalize": denormalize,
    }


def value_range_of(conventions: dict | None) -> tuple[float, float]:
    """The value range an artifact's `conventions` entry states (files without one: the paper's)."""
    vr = (conventions or {}).get("value_range") or VALUE_RANGE
    return (float(vr[0]), float(vr[1]))
