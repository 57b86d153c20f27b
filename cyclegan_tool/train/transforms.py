"""Training-time preprocessing, as the reference's `get_transform`, without torchvision.

Every random choice comes from the `np.random.Generator` passed in, so augmentation is a
pure function of (seed, epoch, index): identical across worker counts, ranks and resumes.
"""

from __future__ import annotations

import numpy as np
import torch

from cyclegan_tool.conventions import VALUE_RANGE, array_to_tensor


def _bicubic():
    from PIL import Image

    return Image.Resampling.BICUBIC


def _scale_width(img, target_width: int, crop_size: int):
    ow, oh = img.size
    if ow == target_width and oh >= crop_size:
        return img
    h = int(max(target_width * oh / ow, crop_size))
    return img.resize((target_width, h), _bicubic())


def _random_crop(img, size: int, rng: np.random.Generator):
    w, h = img.size
    if w < size or h < size:  # as torchvision's RandomCrop would fail; pad-free upscale instead
        scale = size / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), _bicubic())
        w, h = img.size
    x = int(rng.integers(0, w - size + 1))
    y = int(rng.integers(0, h - size + 1))
    return img.crop((x, y, x + size, y + size))


def _make_multiple(img, base: int = 4):
    ow, oh = img.size
    w, h = max(base, round(ow / base) * base), max(base, round(oh / base) * base)
    return img if (w, h) == (ow, oh) else img.resize((w, h), _bicubic())


def preprocess(img, *, mode: str, load_size: int, crop_size: int, flip: bool, rng: np.random.Generator,
               channels: int = 3, value_range: tuple[float, float] = VALUE_RANGE) -> torch.Tensor:
    """PIL RGB image -> `Tensor[channels, H, W]` float32 in `value_range`, augmented per `mode`
    (1 channel: the luma, as the reference's loader reads gray domains)."""
    if mode == "resize_and_crop":
        img = img.resize((load_size, load_size), _bicubic())
        img = _random_crop(img, crop_size, rng)
    elif mode == "crop":
        img = _random_crop(img, crop_size, rng)
    elif mode == "scale_width":
        img = _scale_width(img, load_size, crop_size)
    elif mode == "scale_width_and_crop":
        img = _random_crop(_scale_width(img, load_size, crop_size), crop_size, rng)
    img = _make_multiple(img, 4)  # the reference makes every size a multiple of 4
    if flip and rng.random() < 0.5:
        from PIL import Image

        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return array_to_tensor(np.asarray(img), channels=channels, value_range=value_range)
