"""Exact translation of images too large for one pass through the network.

The generator runs layer by layer. Each layer's whole output is kept (in memory, or past
`RAM_BYTES` in a memory-mapped file), and each layer is computed over horizontal bands of its
input, every band read with the rows its kernel reaches beyond it. An instance norm takes two
passes: the first sums each channel's values and squares over every band (in float64), the
second normalises the bands with the whole image's mean and variance. So the result is what one
pass gives, up to rounding, whatever the image's size; only one layer's input and output (and
a residual or skip input) are held at a time. Tiling with per-tile statistics, which this
replaces, put seams and colour shifts in large images (17.9 dB from one pass for a reference
ResNet-9 on a 4200x1000 image).

It reads the network's modules: sequential containers, the ResNet and U-Net generators and
their blocks, convolutions (any stride, padding, groups), transposed convolutions, pads,
instance norm, batch norm (running statistics), point-wise activations, and the anti-aliased
resampling layers. A network with anything else raises `NotBandable` (the caller then runs one
pass). Computation is FP32.
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np

RAM_BYTES = 2 << 30  # a layer output larger than this goes to a memory-mapped file
BAND_BYTES = 96 << 20  # a band's input, about


class NotBandable(Exception):
    """The network has a module this executor cannot run band by band."""


class _Stores:
    """Full-size layer outputs `float32 [C, H, W]`, memory-mapped in a temporary folder when large."""

    def __init__(self):
        self.folder: tempfile.TemporaryDirectory | None = None
        self.count = 0

    def new(self, shape: tuple[int, int, int]) -> np.ndarray:
        if math.prod(shape) * 4 <= RAM_BYTES:
            return np.empty(shape, np.float32)
        if self.folder is None:
            self.folder = tempfile.TemporaryDirectory(prefix="cyclegan-tool-bands-")
        self.count += 1
        return np.lib.format.open_memmap(os.path.join(self.folder.name, f"{self.count}.npy"), mode="w+",
                                         dtype=np.float32, shape=shape)

    def close(self) -> None:
        if self.folder is not None:
            self.folder.cleanup()


def translate_exact(net, x: np.ndarray) -> np.ndarray:
    """`net(x)` for one image `float32 [1, C, H, W]` (H, W valid for the network), band by band."""
    import torch

    if x.shape[0] != 1:
        return np.concatenate([translate_exact(net, x[i : i + 1]) for i in range(x.shape[0])])
    stores = _Stores()
    try:
        with torch.no_grad():
            out = _Runner(stores).run(net, np.ascontiguousarray(x[0], dtype=np.float32))
        return np.array(out[None])
    finally:
        stores.close()


def check_bandable(net) -> None:
    """Raises NotBandable naming the first module this executor cannot run."""
    _Runner(None).check(net)


class _Runner:
    def __init__(self, stores: _Stores | None):
        self.stores = stores

    # -- what runs how -----------------------------------------------------------------------
    def _kind(self, m) -> str:
        import torch.nn as nn

        from cyclegan_tool.models.antialias import BlurDownsample, BlurUpsample

        name = type(m).__name__
        if isinstance(m, nn.Sequential):
            return "sequence"
        if name in ("ResnetGenerator", "UnetGenerator"):
            return "inner"
        if name == "ResnetBlock":
            return "residual"
        if name == "UnetSkipConnectionBlock":
            return "skip"
        if isinstance(m, (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d)) or name == "CustomReflectionPad2d":
            return "pad"
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros" and m.dilation == (1, 1):
            return "conv"
        if isinstance(m, nn.ConvTranspose2d) and m.dilation == (1, 1):
            return "convt"
        if isinstance(m, BlurDownsample):
            return "blur_down"
        if isinstance(m, BlurUpsample):
            return "blur_up"
        if isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats or name == "FusedInstanceNorm":
            return "instance_norm"
        if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout, nn.BatchNorm2d)):
            return "pointwise"
        return ""

    def check(self, m) -> None:
        kind = self._kind(m)
        if not kind:
            raise NotBandable(type(m).__name__)
        if kind in ("sequence",):
            for child in m:
                self.check(child)
        elif kind == "inner":
            self.check(m.model)
        elif kind == "residual":
            self.check(m.conv_block)
        elif kind == "skip":
            self.check(m.model)

    def run(self, m, x: np.ndarray) -> np.ndarray:
        kind = self._kind(m)
        if kind == "sequence":
            for child in m:
                x = self.run(child, x)
            return x
        if kind == "inner":
            return self.run(m.model, x)
        if kind == "residual":
            y = self.run(m.conv_block, x)
            for r0, r1 in self._bands(y):
                y[:, r0:r1] += x[:, r0:r1]
            return y
        if kind == "skip":
            y = self.run(m.model, x)
            if m.outermost:
                return y
            out = self.stores.new((x.shape[0] + y.shape[0], *x.shape[1:]))
            for r0, r1 in self._bands(out):
                out[: x.shape[0], r0:r1] = x[:, r0:r1]
                out[x.shape[0] :, r0:r1] = y[:, r0:r1]
            return out
        if kind == "pad":
            return self._pad(m, x)
        if kind == "conv":
            return self._conv(x, m.weight, m.bias, m.stride, m.padding, m.groups)
        if kind == "convt":
            return self._convt(x, m.weight, m.bias, m.stride, m.padding, m.output_padding, m.groups)
        if kind == "blur_down":
            import torch.nn as nn

            padded = self._pad(nn.ReflectionPad2d(1), x)
            return self._conv(padded, m.filt.float(), None, (2, 2), (0, 0), x.shape[0])
        if kind == "blur_up":
            import torch.nn as nn

            padded = self._pad(nn.ReplicationPad2d(1), x)
            y = self._convt(padded, m.filt.float(), None, (2, 2), (2, 2), (0, 0), x.shape[0])
            return y[:, 1:-1, 1:-1]
        if kind == "instance_norm":
            return self._instance_norm(m, x)
        if kind == "pointwise":
            return self._pointwise(m, x)
        raise NotBandable(type(m).__name__)

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _bands(x: np.ndarray, rows: int | None = None):
        c, h, w = x.shape
        rows = rows or max(1, min(h, BAND_BYTES // max(1, c * w * 4)))
        for r0 in range(0, h, rows):
            yield r0, min(h, r0 + rows)

    def _pointwise(self, m, x: np.ndarray) -> np.ndarray:
        import torch

        out = self.stores.new(x.shape)
        for r0, r1 in self._bands(x):
            out[:, r0:r1] = m(torch.from_numpy(np.ascontiguousarray(x[:, r0:r1]))[None])[0].numpy()
        return out

    def _pad(self, m, x: np.ndarray) -> np.ndarray:
        left, right, top, bottom = (m.padding if len(m.padding) == 4 else (m.padding[0],) * 4)
        name = type(m).__name__
        mode = "edge" if "Replication" in name else "constant" if "Zero" in name else "reflect"
        c, h, w = x.shape
        out = self.stores.new((c, h + top + bottom, w + left + right))
        rows = np.arange(-top, h + bottom)
        if mode == "reflect":
            rows = np.abs(rows)
            rows = np.where(rows >= h, 2 * (h - 1) - rows, rows)
        elif mode == "edge":
            rows = np.clip(rows, 0, h - 1)
        for r0, r1 in self._bands(out):
            src = rows[r0:r1]
            valid = (src >= 0) & (src < h)
            band = np.zeros((c, r1 - r0, w), np.float32)
            band[:, valid] = x[:, src[valid]]
            out[:, r0:r1] = np.pad(band, ((0, 0), (0, 0), (left, right)), mode=mode)
        return out

    def _rows(self, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of `x`, zeros where they fall outside it."""
        c, h, w = x.shape
        band = np.zeros((c, stop - start, w), np.float32)
        lo, hi = max(start, 0), min(stop, h)
        if hi > lo:
            band[:, lo - start : hi - start] = x[:, lo:hi]
        return band

    def _conv(self, x: np.ndarray, weight, bias, stride, padding, groups) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        (sh, sw), (ph, pw) = stride, padding
        k = weight.shape[2]
        c, h, w = x.shape
        out_h, out_w = (h + 2 * ph - k) // sh + 1, (w + 2 * pw - weight.shape[3]) // sw + 1
        out = self.stores.new((weight.shape[0], out_h, out_w))
        rows = max(1, BAND_BYTES // max(1, c * w * 4 * sh))
        for r0 in range(0, out_h, rows):
            r1 = min(out_h, r0 + rows)
            band = self._rows(x, r0 * sh - ph, (r1 - 1) * sh - ph + k)
            y = F.conv2d(torch.from_numpy(band)[None], weight.float(), None if bias is None else bias.float(),
                         stride=(sh, sw), padding=(0, pw), groups=groups)
            out[:, r0:r1] = y[0].numpy()
        return out

    def _convt(self, x: np.ndarray, weight, bias, stride, padding, output_padding, groups) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
        k = weight.shape[2]
        c, h, w = x.shape
        out_h = (h - 1) * sh - 2 * ph + k + oph
        out_w = (w - 1) * sw - 2 * pw + weight.shape[3] + opw
        out = self.stores.new((weight.shape[1] * groups, out_h, out_w))
        rows = max(1, BAND_BYTES // max(1, c * w * 4 * sh * sh))
        for r0 in range(0, out_h, rows * sh):
            r1 = min(out_h, r0 + rows * sh)
            # every input row that reaches an output row of [r0, r1): o = i * s - p + t, 0 <= t < k
            i0 = max(0, (r0 + ph - k) // sh + 1)
            i1 = min(h, (r1 - 1 + ph) // sh + 1)
            y = F.conv_transpose2d(torch.from_numpy(np.ascontiguousarray(x[:, i0:i1]))[None], weight.float(),
                                   None if bias is None else bias.float(), stride=(sh, sw), padding=(0, pw),
                                   output_padding=(0, opw), groups=groups)[0].numpy()
            # local row t is output row i0 * s - p + t
            first = i0 * sh - ph
            band = np.zeros((out.shape[0], r1 - r0, out_w), np.float32)
            if bias is not None:
                band += bias.float().numpy()[:, None, None]
            lo, hi = max(r0, first), min(r1, first + y.shape[1])
            if hi > lo:
                band[:, lo - r0 : hi - r0] = y[:, lo - first : hi - first]
            out[:, r0:r1] = band
        return out

    def _instance_norm(self, m, x: np.ndarray) -> np.ndarray:
        c = x.shape[0]
        total = np.zeros(c, np.float64)
        squares = np.zeros(c, np.float64)
        for r0, r1 in self._bands(x):
            band = x[:, r0:r1].astype(np.float64)
            total += band.sum(axis=(1, 2))
            squares += (band * band).sum(axis=(1, 2))
        n = x.shape[1] * x.shape[2]
        mean = total / n
        var = np.maximum(squares / n - mean * mean, 0.0)
        scale = 1.0 / np.sqrt(var + m.eps)
        weight = m.weight.detach().float().numpy() if getattr(m, "weight", None) is not None else np.ones(c)
        bias = m.bias.detach().float().numpy() if getattr(m, "bias", None) is not None else np.zeros(c)
        a = (scale * weight).astype(np.float32)[:, None, None]
        b = (bias - mean * scale * weight).astype(np.float32)[:, None, None]
        relu = getattr(m, "relu", False)
        out = self.stores.new(x.shape)
        for r0, r1 in self._bands(x):
            y = x[:, r0:r1] * a + b
            out[:, r0:r1] = np.maximum(y, 0) if relu else y
        return out
