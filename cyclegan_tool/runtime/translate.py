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
    large: bool  # translated in parts: band by band (exact), or in tiles where only an engine's profile fits
    out_size: tuple[int, int]  # (H, W) of the written output


# No side grows past this by --size (a 1x500 strip scaled to a shorter side of 128 would be
# 128x64000): the scale is lowered until the longer side fits. --max-side sets it explicitly.
MAX_SCALED_SIDE = 8192
# One pass may take this share of the memory available when the run starts; larger images are
# translated in parts (runtime/banded.py: exact).
ONE_PASS_MEMORY_SHARE = 0.5


def available_memory() -> int:
    """Bytes the system can give without swapping (MemAvailable), or 8 GiB where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 << 30


def one_pass_pixels(info: ModelInfo) -> int:
    """The most pixels one pass of this runtime may take here (its measured bytes per pixel)."""
    return int(ONE_PASS_MEMORY_SHARE * available_memory() / info.bytes_per_pixel)


def target_size(h: int, w: int, opts: ConvertOptions) -> tuple[int, int]:
    """The processing size (H, W): --size scales the shorter side, --max-side (or the cap
    MAX_SCALED_SIDE when only --size is given) bounds the longer one; --preprocess scale_width
    is the reference test.py's rule (width --load-size, height int(load_size * h / w) but at
    least --crop-size; the reference leaves a width already at --load-size as it is when its
    height is at least --crop-size)."""
    if opts.preprocess == "scale_width":
        if w == opts.load_size and h >= opts.crop_size:
            return h, w
        return int(max(opts.load_size * h / w, opts.crop_size)), opts.load_size
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
    beyond_engine = info.max_hw is not None and (ph > info.max_hw[0] or pw > info.max_hw[1])
    beyond_tile = bool(opts.tile) and ph * pw > opts.tile**2
    large = beyond_engine or beyond_tile or ph * pw > one_pass_pixels(info)
    return Prepared(x=x, alpha=alpha, padded=(ph, pw), large=large, out_size=out_size)


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
    """The tile side where an engine translates in tiles: --tile, else the engine's largest
    accepted side; a multiple of the pad, within the engine profile (tiles of a padded image are
    never under its minimum)."""
    m = info.pad_multiple
    tile = opts.tile or (min(info.max_hw) if info.max_hw else int(one_pass_pixels(info) ** 0.5))
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
