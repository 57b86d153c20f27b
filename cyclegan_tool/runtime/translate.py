"""Image in, image out: one decoded file -> network input -> output arrays.

Owns the size policy (native size padded to the model's multiple and cropped back,
`--size`/`--max-side` resizing, tiling beyond the engine profile) and hands alpha and
format policy to `imageio`. Arrays: float32 `[C, H, W]` in the model's value range (NumPy:
no torch on this path).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cyclegan_tool.conventions import padded_size, pixels_to_network
from cyclegan_tool.imageio import DecodedImage
from cyclegan_tool.runtime.base import ModelInfo
from cyclegan_tool.runtime.options import ConvertOptions


@dataclass
class Prepared:
    """A decoded image ready for the network: `x` is float32 `[C, h, w]` at the processing size."""

    x: np.ndarray
    alpha: np.ndarray | None
    padded: tuple[int, int]  # (H, W) the network sees
    tiled: bool
    out_size: tuple[int, int]  # (H, W) of the written output


# No side grows past this by --size (a 1x500 strip scaled to a shorter side of 128 would be
# 128x64000): the scale is lowered until the longer side fits. --max-side sets it explicitly.
MAX_SCALED_SIDE = 8192
# Images with more pixels than this are translated in tiles on every backend, whatever the
# options: a generator's activations take ~1 KB per input pixel, so ~4 MP is ~4 GB.
AUTO_TILE_PIXELS = 2048 * 2048


def target_size(h: int, w: int, opts: ConvertOptions) -> tuple[int, int]:
    """The processing size (H, W): --size scales the shorter side, --max-side (or the cap
    MAX_SCALED_SIDE when only --size is given) bounds the longer one."""
    scale = 1.0
    if opts.size:
        scale = opts.size / min(h, w)
    cap = opts.max_side or (MAX_SCALED_SIDE if scale > 1.0 else None)
    if cap and max(h, w) * scale > cap:
        scale = cap / max(h, w)
    return (max(1, round(h * scale)), max(1, round(w * scale))) if scale != 1.0 else (h, w)


def resize(x: np.ndarray, size: tuple[int, int], value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """float `[C, H, W]` -> float32 `[C, h, w]`: bicubic with antialiasing (PIL's float resampling,
    per channel), clamped to `value_range`."""
    if tuple(x.shape[-2:]) == size:
        return x
    from PIL import Image

    h, w = size
    out = np.stack([np.asarray(Image.fromarray(np.asarray(c, np.float32), mode="F").resize((w, h), Image.BICUBIC))
                    for c in x])
    return np.clip(out, *value_range, out=out)


def prepare(img: DecodedImage, info: ModelInfo, opts: ConvertOptions) -> Prepared:
    # A 1-channel model reads the luma of a color file; a 3-channel one a gray file replicated.
    x = pixels_to_network(img.rgb, channels=info.spec.input_nc, value_range=info.value_range)
    h, w = target_size(*img.size, opts)
    x = resize(x, (h, w), info.value_range)
    alpha = img.alpha
    out_size = img.size if opts.keep_size else (h, w)
    if alpha is not None and alpha.shape != out_size:
        a = resize(alpha.astype(np.float32)[None], out_size, (0.0, 255.0))[0]
        alpha = np.rint(a).astype(np.uint8)
    ph, pw = padded_size(h, w, info.pad_multiple)
    low = info.min_hw or (min_side(info),) * 2  # an engine profile's smallest accepted size
    ph, pw = max(ph, low[0]), max(pw, low[1])
    too_big = info.max_hw is not None and (ph > info.max_hw[0] or pw > info.max_hw[1])
    too_big = too_big or ph * pw > AUTO_TILE_PIXELS
    return Prepared(x=x, alpha=alpha, padded=(ph, pw), tiled=bool(opts.tile) or too_big, out_size=out_size)


def min_side(info: ModelInfo) -> int:
    """The smallest side the generator runs at (its metadata's); tiny images are padded up."""
    return max(info.min_side, info.pad_multiple)


def finish(y: np.ndarray, prep: Prepared, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """The network output `[1, C, H', W']` cropped to the processed size, then resized to the
    output size where they differ (--keep-size)."""
    y = y[..., : prep.x.shape[-2], : prep.x.shape[-1]]
    return y if tuple(y.shape[-2:]) == prep.out_size else resize(y[0], prep.out_size, value_range)[None]


def pad_batch(xs: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Stack `[C, h, w]` images, each reflect-padded bottom/right to `size` (H, W).

    Reflection needs the pad to be smaller than the side; tiny images use replicate (edge).
    """
    out = []
    for x in xs:
        h, w = x.shape[-2:]
        ph, pw = size[0] - h, size[1] - w
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "edge"
            x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode=mode)
        out.append(x)
    return np.stack(out)


def tile_size(info: ModelInfo, opts: ConvertOptions) -> int:
    """The tile side: --tile, else the engine's largest accepted side (or the side of an
    AUTO_TILE_PIXELS square); a multiple of the pad,
    within the engine profile (tiles of a padded image are never under its minimum)."""
    m = info.pad_multiple
    tile = opts.tile or (min(info.max_hw) if info.max_hw else int(AUTO_TILE_PIXELS ** 0.5))
    if info.max_hw:
        tile = min(tile, *info.max_hw)
    tile = max(m, tile // m * m)
    low = max(info.min_hw) if info.min_hw else min_side(info)
    if tile < low:
        tile = -(-low // m) * m
    return tile


def infer_within_limits(infer, x: np.ndarray, info: ModelInfo, batch: int) -> np.ndarray:
    """Run `infer` on `[n, C, H, W]` in chunks of at most `batch` (within the model's batch
    range); a chunk under the minimum batch is padded with copies of its last image."""
    outs = []
    for i in range(0, x.shape[0], batch):
        chunk = x[i : i + batch]
        k = chunk.shape[0]
        if k < info.min_batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], info.min_batch - k, axis=0)])
        outs.append(infer(chunk)[:k])
    return np.concatenate(outs)
