"""Anti-aliased resampling (Zhang, "Making Convolutional Networks Shift-Invariant Again",
ICML 2019), as the CUT code builds its generators and discriminators by default.

`BlurDownsample`: reflection pad 1, then a fixed 3x3 binomial blur ([1, 2, 1] outer product,
normalised) applied per channel with stride 2. It follows a stride-1 convolution where the
plain networks have a stride-2 one.
`BlurUpsample`: replication pad 1, a per-channel transposed convolution with the 4x4 filter
[1, 3, 3, 1] outer product (normalised, times 4) at stride 2, cropped to exactly 2x the input.
A stride-1 convolution follows it where the plain networks have a transposed convolution.

Both keep their filter in a buffer named `filt`, as the CUT code does, so its state_dicts
load unchanged; in ONNX they are a reflect/edge `Pad` plus a grouped `Conv`/`ConvTranspose`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

_BINOMIAL = {3: (1.0, 2.0, 1.0), 4: (1.0, 3.0, 3.0, 1.0)}


def binomial_filter(size: int) -> torch.Tensor:
    """`Tensor[size, size]`: the normalised outer product of a binomial row."""
    row = torch.tensor(_BINOMIAL[size])
    filt = row[:, None] * row[None, :]
    return filt / filt.sum()


class BlurDownsample(nn.Module):
    """`Tensor[N, C, H, W]` -> `Tensor[N, C, ceil(H/2), ceil(W/2)]`, blurred then subsampled."""

    def __init__(self, channels: int):
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.register_buffer("filt", binomial_filter(3)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt.to(x.dtype), stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """`Tensor[N, C, H, W]` -> `Tensor[N, C, 2H, 2W]` by a fixed bilinear-like kernel."""

    def __init__(self, channels: int):
        super().__init__()
        self.pad = nn.ReplicationPad2d(1)
        self.register_buffer("filt", (binomial_filter(4) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (H + 2 - 1) * 2 - 2 * 2 + 4 = 2H + 2 rows; dropping the first and the last leaves 2H.
        y = F.conv_transpose2d(self.pad(x), self.filt.to(x.dtype), stride=2, padding=2, groups=x.shape[1])
        return y[:, :, 1:-1, 1:-1]
