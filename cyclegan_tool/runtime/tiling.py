"""Split a large image into overlapping tiles and blend the translated tiles back.

Seams are hidden by weights that ramp linearly across each overlap, so every output
pixel is a convex combination of the tiles covering it. Each tile is normalised with its own
instance-norm statistics, so the result only approximates one pass: this is for engines,
whose profile bounds the input; other backends translate large images exactly
(runtime/banded.py).
"""

from __future__ import annotations

import numpy as np


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step)) + [length - tile]
    return sorted(set(starts))


def tile_boxes(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(y, x, th, tw) boxes covering [h, w]; tiles are `tile` square (clipped to the image)."""
    step = tile - overlap
    th, tw = min(tile, h), min(tile, w)
    return [(y, x, th, tw) for y in _starts(h, th, step) for x in _starts(w, tw, step)]


def _ramp(n: int, overlap: int, lo_edge: bool, hi_edge: bool) -> np.ndarray:
    r = np.ones(n, np.float32)
    if overlap > 0:
        ramp = np.linspace(0, 1, overlap + 2, dtype=np.float32)[1:-1]
        if lo_edge:
            r[:overlap] = ramp
        if hi_edge:
            r[-overlap:] = ramp[::-1]
    return r


def blend_weights(box: tuple[int, int, int, int], h: int, w: int, overlap: int) -> np.ndarray:
    """`[th, tw]`: ramps only on sides that touch another tile."""
    y, x, th, tw = box
    wy = _ramp(th, min(overlap, th // 2), y > 0, y + th < h)
    wx = _ramp(tw, min(overlap, tw // 2), x > 0, x + tw < w)
    return wy[:, None] * wx[None, :]


def translate_tiled(x: np.ndarray, infer, tile: int, overlap: int, batch: int) -> np.ndarray:
    """`x`: `[1, C, H, W]` (H, W already valid for the model, as is `tile`); `infer(batch)`
    translates `[n, C, t, t]` to `[n, C', t, t]`. Returns float32 `[1, C', H, W]`."""
    h, w = x.shape[-2:]
    boxes = tile_boxes(h, w, tile, overlap)
    acc = None  # C' is the model's output channels, known after the first tile
    norm = np.zeros((1, 1, h, w), np.float32)
    # Tiles of one image share a size except at clipped edges; group by size for batching.
    groups: dict[tuple[int, int], list] = {}
    for box in boxes:
        groups.setdefault(box[2:], []).append(box)
    for group in groups.values():
        for i in range(0, len(group), batch):
            chunk = group[i : i + batch]
            tiles = np.concatenate([x[:, :, y : y + th, xx : xx + tw] for y, xx, th, tw in chunk])
            out = np.asarray(infer(tiles), np.float32)
            if acc is None:
                acc = np.zeros((1, out.shape[1], h, w), np.float32)
            for k, (y, xx, th, tw) in enumerate(chunk):
                wgt = blend_weights((y, xx, th, tw), h, w, overlap)
                acc[:, :, y : y + th, xx : xx + tw] += out[k : k + 1] * wgt
                norm[:, :, y : y + th, xx : xx + tw] += wgt
    return acc / np.maximum(norm, 1e-8)
