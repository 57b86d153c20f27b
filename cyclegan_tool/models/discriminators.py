"""PatchGAN discriminators: `Tensor[N, C, H, W]` -> a map of real/fake logits.

`basic` is the 70x70 PatchGAN (n_layers = 3); `n_layers` takes `--n-layers-D`;
`pixel` is a 1x1 PatchGAN. Attribute names (`model`, `net`) match the reference.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cyclegan_tool.models.antialias import BlurDownsample
from cyclegan_tool.models.norms import NORMS, conv_bias
from cyclegan_tool.models.registry import DISCRIMINATORS
from cyclegan_tool.specs import DiscriminatorSpec


class NLayerDiscriminator(nn.Module):
    """With `spec.antialias` (the CUT code's default) every stride-2 convolution becomes a
    stride-1 one followed by a blurred subsampling, with the CUT code's module indices."""

    def __init__(self, spec: DiscriminatorSpec, n_layers: int):
        super().__init__()
        ndf, bias, make_norm = spec.ndf, conv_bias(spec.norm), NORMS.get(spec.norm)
        down = 1 if spec.antialias else 2
        seq: list[nn.Module] = [
            nn.Conv2d(spec.input_nc, ndf, kernel_size=4, stride=down, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        if spec.antialias:
            seq.append(BlurDownsample(ndf))
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = down if n < n_layers else 1
            seq += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
            if spec.antialias and n < n_layers:
                seq.append(BlurDownsample(ndf * mult))
        seq.append(nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    def __init__(self, spec: DiscriminatorSpec):
        super().__init__()
        ndf, bias = spec.ndf, conv_bias(spec.norm)
        self.net = nn.Sequential(
            nn.Conv2d(spec.input_nc, ndf, kernel_size=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, bias=bias),
            NORMS.get(spec.norm)(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@DISCRIMINATORS.register("basic")
def basic(spec: DiscriminatorSpec) -> nn.Module:
    return NLayerDiscriminator(spec, n_layers=3)


@DISCRIMINATORS.register("n_layers")
def n_layers(spec: DiscriminatorSpec) -> nn.Module:
    return NLayerDiscriminator(spec, n_layers=spec.n_layers)


@DISCRIMINATORS.register("pixel")
def pixel(spec: DiscriminatorSpec) -> nn.Module:
    return PixelDiscriminator(spec)
